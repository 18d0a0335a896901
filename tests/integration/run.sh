#!/bin/sh
# run.sh - the object-store integration suite.
#
#   tests/integration/run.sh [BUILD_DIR] [PYTEST ARGS...]
#
# Uses BUILD_DIR/zero (default: build), or $ZERO_BIN. Installs s3rver from
# package-lock.json into tests/integration/node_modules on first use (npm
# ci), then runs pytest with Debian's python3 (botocore for the verifying
# proxy). The tests start and stop their own servers on free 127.0.0.1
# ports. Prints pytest's closing summary line; exits with pytest's status.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
[ $# -gt 0 ] && shift
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ZERO_BIN=${ZERO_BIN:-$BUILD/zero}
if [ ! -x "$ZERO_BIN" ]; then
	echo "run.sh: $ZERO_BIN not found; build first (meson setup build && ninja -C build)" >&2
	exit 2
fi
if [ ! -f "$HERE/node_modules/s3rver/package.json" ]; then
	(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
export ZERO_BIN
cd "$HERE"
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE "$@" "$HERE"
