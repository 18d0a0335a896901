#!/bin/sh
# Run the system tests. Extra arguments go to pytest (e.g. -k rename, -x).
#
#   tests/system/run.sh                       # mount build/zero and test it
#   ZERO_BIN=build-asan/zero tests/system/run.sh
#   ZERO_TEST_DIR=$(mktemp -d) tests/system/run.sh   # a plain directory
#
# Prints pytest's closing summary line and exits with pytest's status.
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$here/../.." || exit 2
"$PYTHON" -m pytest -q -rfEs -p no:cacheprovider "$@" tests/system
