#!/usr/bin/env bash
# Runs a command inside the fresh network namespace `unshare --net` made:
# only loopback exists (brought up here), plus a TEST-NET-1 address on lo
# so servers have a non-loopback address to advertise. There is no route
# out of this namespace.
set -euo pipefail
# Tests see this and know they may create interfaces and namespaces here.
export PORTAL_NETNS_ISOLATED=1
ip link set lo up
ip addr add 192.0.2.10/32 dev lo
exec "$@"
