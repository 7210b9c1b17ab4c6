#!/usr/bin/env bash
# Runs the benchmarks inside a fresh network namespace (only loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/bench-apiserver ./bench/apiserver
unshare --net -- hack/in-netns.sh bin/bench-apiserver -portal "$PWD/bin/portal" "$@"
