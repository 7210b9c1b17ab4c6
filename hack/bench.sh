#!/usr/bin/env bash
# Builds the benchmarks and runs them against bin/portal (built by `make
# build`; `make bench` does both) inside a fresh network namespace with only
# loopback. Usage: hack/bench.sh [apiserver|controllers|agent|proxy|lb] [flags of
# that benchmark]; without a name all run with their defaults. See
# bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
	local name=$1
	shift
	"${GO:-go}" build -o "bin/bench-$name" "./bench/$name"
	local ns=(--net)
	if [ "$name" = agent ] || [ "$name" = proxy ] || [ "$name" = lb ]; then
		# Pods (and the proxy and lb benchmarks' labs) make network namespaces,
		# mounts and processes: in fresh mount and PID namespaces they all
		# vanish with the benchmark.
		ns=(--net --mount --pid --fork --mount-proc --kill-child)
	fi
	unshare "${ns[@]}" -- hack/in-netns.sh "bin/bench-$name" -portal "$PWD/bin/portal" "$@"
}
case "${1:-}" in
apiserver | controllers | agent | proxy | lb)
	name=$1
	shift
	run "$name" "$@"
	;;
"")
	run apiserver
	run controllers
	run agent
	run proxy
	;;
*)
	echo "usage: $0 [apiserver|controllers|agent|proxy|lb] [flags]" >&2
	exit 2
	;;
esac
