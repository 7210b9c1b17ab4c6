#!/usr/bin/env bash
# Builds the API server benchmark and runs it against bin/portal (built by
# `make build`; `make bench` does both) inside a fresh network namespace
# with only loopback. Extra arguments go to the benchmark, see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
"${GO:-go}" build -o bin/bench-apiserver ./bench/apiserver
exec unshare --net -- hack/in-netns.sh bin/bench-apiserver -portal "$PWD/bin/portal" "$@"
