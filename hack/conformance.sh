#!/usr/bin/env bash
# Runs the upstream Kubernetes e2e test binary against portal in a lab of
# network namespaces: a bridge in this (isolated) namespace holding the
# server's address, NODES node namespaces with an agent each, and an
# "outside" client namespace. Meant to run inside
#   unshare --net --mount --pid --fork --mount-proc --kill-child -- hack/in-netns.sh
# (make conformance does that): the namespaces, mounts and processes made
# here vanish with it, also when the run fails or times out.
#
# Usage: hack/conformance.sh -portal BIN -e2e E2E_TEST -out DIR
#          [-focus REGEX] [-skip REGEX] [-nodes N] [-timeout DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."

portal=bin/portal e2e=bin/kube-e2e.test out=_output/conformance nodes=2 timeout=90m
# Issue 10's set: sig-network's conformance specs and sig-apps' workload ones.
focus='\[sig-network\].*\[Conformance\]|\[sig-apps\].*(DaemonSet|Deployment|ReplicaSet|ReplicationController|StatefulSet).*\[Conformance\]'
skip=''
while [ $# -gt 0 ]; do
	case "$1" in
	-portal) portal=$2 ;;
	-e2e) e2e=$2 ;;
	-out) out=$2 ;;
	-focus) focus=$2 ;;
	-skip) skip=$2 ;;
	-nodes) nodes=$2 ;;
	-timeout) timeout=$2 ;;
	*) echo "unknown flag $1" >&2; exit 2 ;;
	esac
	shift 2
done
portal=$(readlink -f "$portal")
e2e=$(readlink -f "$e2e")
mkdir -p "$out"
out=$(readlink -f "$out")
work=$(mktemp -d /tmp/portal-conformance.XXXXXX)
trap 'rc=$?; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; exit $rc' EXIT

# 198.18.0.0/24 (RFC 2544, benchmarking): only ever inside this namespace.
net=198.18.0
# `ip netns add` leaves files in /run/netns: a tmpfs private to this mount
# namespace keeps them off the host.
mkdir -p /run/netns
mount -t tmpfs tmpfs /run/netns
# A fixed MAC: a bridge otherwise takes its lowest port's MAC and changes
# it as ports come, leaving the nodes' ARP entries for the server stale.
ip link add lab0 address 02:00:5e:1a:b0:03 type bridge
ip addr add $net.1/24 dev lab0
ip link set lab0 up
sysctl -qw net.ipv4.ip_forward=1
attach() { # attach NS HOSTIF ADDR
	ip netns add "$1"
	ip link add "$2" type veth peer name eth0 netns "$1"
	ip link set "$2" master lab0 up
	ip -n "$1" addr add "$3/24" dev eth0
	ip -n "$1" link set lo up
	ip -n "$1" link set eth0 up
}
for i in $(seq 1 "$nodes"); do attach "node$i" "lab$i" "$net.1$i"; done
attach outside labout "$net.200"

echo "conformance: starting portal server and $nodes agents (logs in $out)" >&2
"$portal" server --data-dir "$work/server" --bind-address 0.0.0.0 --tls-san $net.1 \
	--lb-pool $net.240-$net.250 >"$out/server.log" 2>&1 &
for _ in $(seq 1 300); do
	[ -s "$work/server/join-token" ] && [ -s "$work/server/kubeconfig" ] && break
	sleep 0.2
done
kubeconfig=$work/server/kubeconfig
kc() { "$portal" kubectl --kubeconfig "$kubeconfig" "$@"; }
for _ in $(seq 1 150); do kc get --raw /readyz >/dev/null 2>&1 && break; sleep 0.2; done
token=$(cat "$work/server/join-token")
for i in $(seq 1 "$nodes"); do
	ip netns exec "node$i" "$portal" agent --node-name "node-$i" --node-ip "$net.1$i" \
		--server "https://$net.1:6443" --token "$token" \
		--root-dir "$work/node$i/root" --run-dir "$work/node$i/run" >"$out/node-$i.log" 2>&1 &
done
for _ in $(seq 1 300); do
	[ "$(kc get nodes -o name 2>/dev/null | wc -l)" -ge "$nodes" ] && break
	sleep 0.2
done
kc wait --for=condition=Ready node --all --timeout=120s >&2 || { kc get nodes >&2; exit 1; }
# Pods reach nodes' pod networks through the nodes; the runner (here)
# needs the same routes for the specs that dial pods from outside.
for i in $(seq 1 "$nodes"); do
	cidr=$(kc get node "node-$i" -o jsonpath='{.spec.podCIDR}')
	[ -n "$cidr" ] && ip route replace "$cidr" via "$net.1$i"
done

echo "conformance: running e2e.test (focus $focus, timeout $timeout)" >&2
start=$(date +%s)
set +e
# The specs' kubectl commands use portal's kubectl (a host kubectl may be
# any version); portal is kubectl when invoked by that name.
kubectl=$work/kubectl
ln -s "$portal" "$kubectl"
"$e2e" --kubeconfig "$kubeconfig" --kubectl-path "$kubectl" \
	--provider skeleton --report-dir "$out" \
	--ginkgo.focus "$focus" ${skip:+--ginkgo.skip "$skip"} \
	--ginkgo.timeout "$timeout" --ginkgo.no-color --ginkgo.v \
	--num-nodes "$nodes" --allowed-not-ready-nodes 0 \
	>"$out/e2e.log" 2>&1
rc=$?
set -e
took=$(( $(date +%s) - start ))
# Specs only ([It]); a skip with the bare message "skipped" is a spec the
# focus left out, any other skip message is a spec that skipped itself.
tally=$(cat "$out"/junit*.xml 2>/dev/null | awk '
	/<testcase name="\[It\]/ {
		match($0, /status="[a-z]*"/); st = substr($0, RSTART + 8, RLENGTH - 9)
		if (st == "skipped") { pending = 1; next }
		if (st == "passed") p++; else f++
		next
	}
	pending && /<skipped/ { if ($0 !~ /message="skipped"/) s++; pending = 0 }
	END { printf "%d passed, %d failed, %d skipped", p, f, s }')
echo "conformance: $tally (e2e.test exit $rc, ${took}s; JUnit and logs in $out)"
exit $rc
