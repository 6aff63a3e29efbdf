#!/usr/bin/env bash
# Installs the Debian packages the tests and the QEMU run need; does nothing
# when they are all present. Needs root (CI runs as root).
set -euo pipefail
packages=(qemu-system-x86 iproute2 iputils-ping iperf3 curl netcat-openbsd python3 cpio ethtool ovmf e2fsprogs systemd-boot-efi binutils openssh-client hping3 traceroute nginx-light socat keepalived prometheus chrony)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
