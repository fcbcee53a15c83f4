#!/usr/bin/env bash
# Installs the Debian packages the tests and the local stack need, when they
# are missing. Everything else is built from the Go module proxy.
set -euo pipefail
packages=(git make ca-certificates curl openssl postgresql-15 postgresql-client-15 mariadb-server mariadb-client age zstd pigz gzip
	# the local cluster (test/cluster): the node's runtime, CNI plugins, kube-proxy's tools, the client image's rootfs
	containerd runc containernetworking-plugins iptables conntrack iproute2 debootstrap)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
