#!/usr/bin/env bash
# Installs the Debian packages the tests, the benches (dpdk-dev: DPDK's tools
# as yardsticks) and the QEMU run need, and Netmiko from PyPI in a virtual
# environment under target/ (tests/netmiko.rs); does nothing when they are
# all present. Needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(qemu-system-x86 iproute2 iputils-ping iperf3 curl netcat-openbsd python3 python3-venv cpio ethtool ovmf e2fsprogs systemd-boot-efi binutils openssh-client hping3 traceroute nginx-light socat keepalived prometheus chrony mosquitto mosquitto-clients python3-pymodbus python3-serial python3-serial-asyncio nftables openssl wireguard-go wireguard-tools dpdk-dev frr dnsmasq-base)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The automation client IOS operators use, as they install it (Debian 12 has
# no netmiko 4); the venv keeps it out of the system's Python.
venv=target/netmiko-venv
if ! "$venv/bin/python" -c 'import netmiko' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'netmiko==4.*'
fi
