#!/usr/bin/env bash
# Command (a): install what is missing, build, and mount Zero on its embedded
# default (a local directory as the bucket).
# Usage: scripts/run.sh [MOUNTPOINT]   (default ~/zero)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
mnt="${1:-$HOME/zero}"
mkdir -p "$mnt"
exec build/zero mount "$mnt"
