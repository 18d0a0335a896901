#!/usr/bin/env bash
# Command (c): install Zero on this Debian machine as a package: build the
# .deb from this repository (dpkg-buildpackage) and install it with its
# dependencies (apt). Afterwards: zero, man zero, mount -t fuse.zero, fstab,
# systemctl enable zero@MOUNTPOINT. Remove with: apt remove zero
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
scripts/deps.sh
need=()
for p in debhelper dpkg-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ "${#need[@]}" -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
work=$(mktemp -d /tmp/zero-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/zero"
git ls-files -z | tar --null -T - -cf - | tar xf - -C "$work/zero"
(cd "$work/zero" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
	{ tail -30 "$work/build.log"; exit 1; }
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$work"/zero_*.deb
echo "installed: $(zero --version) (man zero; remove with: apt remove zero)"
