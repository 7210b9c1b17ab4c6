#!/usr/bin/env bash
# Builds the benchmarks and runs them against bin/portal (built by `make
# build`; `make bench` does both) inside a fresh network namespace with only
# loopback. Usage: hack/bench.sh [apiserver|controllers] [flags of that
# benchmark]; without a name both run with their defaults. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
	local name=$1
	shift
	"${GO:-go}" build -o "bin/bench-$name" "./bench/$name"
	unshare --net -- hack/in-netns.sh "bin/bench-$name" -portal "$PWD/bin/portal" "$@"
}
case "${1:-}" in
apiserver | controllers)
	name=$1
	shift
	run "$name" "$@"
	;;
"")
	run apiserver
	run controllers
	;;
*)
	echo "usage: $0 [apiserver|controllers] [flags]" >&2
	exit 2
	;;
esac
