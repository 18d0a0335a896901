#!/usr/bin/env bash
# Install what Zero needs to build and test on Debian 12, only what is missing.
# Usage: scripts/deps.sh [--test]   (--test adds what the test suites need)
set -euo pipefail

pkgs=(build-essential meson ninja-build pkg-config libfuse3-dev fuse3 libsqlite3-dev
      libcurl4-openssl-dev libssl-dev libsodium-dev libzstd-dev libyaml-dev libexpat1-dev
      libjansson-dev libsystemd-dev libmicrohttpd-dev libmount-dev)
if [ "${1:-}" = "--test" ]; then
	pkgs+=(python3 python3-pytest python3-botocore nodejs npm attr curl acl rsync e2fsprogs
	       python3-prometheus-client debhelper dpkg-dev lintian groff-base man-db systemd)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node may come from elsewhere than Debian's package; accept any working node and npm
if [ "${1:-}" = "--test" ] && command -v node >/dev/null && command -v npm >/dev/null; then
	missing=("${missing[@]/nodejs}")
	missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
	echo "installing: ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
