#!/usr/bin/env bash
# Installs the Debian packages portal needs when they are missing.
# Arguments name more commands a target needs, each from the package of the
# same name (e.g. `hack/deps.sh dnsperf` for make bench-dns), or as
# COMMAND:PACKAGE when they differ (`dig:bind9-dnsutils`).
set -euo pipefail
need=()
for extra in "$@"; do
	cmd=${extra%%:*}
	pkg=${extra#*:}
	command -v "$cmd" >/dev/null || need+=("$pkg")
done
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
command -v nft >/dev/null || need+=(nftables)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v curl >/dev/null || need+=(curl)
command -v busybox >/dev/null || need+=(busybox)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "missing packages: ${need[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "go is required (Go 1.26)" >&2; exit 1; }
