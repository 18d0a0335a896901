#!/usr/bin/env bash
# fsync_bench.sh - what the two fsync levels cost on a small-file workload:
# NFILES files of 4 KiB, each written and fsync'ed, on the native disk, on
# Zero (fsync durable on the local disk) and on Zero with syncUpload
# (fsync returns once the file and the metadata naming it are in the
# bucket), against one local S3 server (s3rver on 127.0.0.1).
#
#   bench/fsync_bench.sh [BUILD_DIR] [NFILES]
#
# Prints one line per target: files per second and the median and 95th
# percentile of one fsync, in ms; and the ratio to the native disk.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-build}
NFILES=${2:-300}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ZERO=${ZERO_BIN:-$BUILD/zero}
[ -x "$ZERO" ] || { echo "fsync_bench: $ZERO not found; build first" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "fsync_bench: run as root (mounts)" >&2; exit 2; }
INTEG=$ROOT/tests/integration
[ -f "$INTEG/node_modules/s3rver/package.json" ] ||
	(cd "$INTEG" && npm ci --no-audit --no-fund --loglevel=error) >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zero-fsyncbench.XXXXXX")
S3PID=
MOUNTS=()
cleanup() {
	for m in "${MOUNTS[@]}"; do
		"$ZERO" umount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null
	done
	[ -n "$S3PID" ] && kill "$S3PID" 2>/dev/null && wait "$S3PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node --openssl-legacy-provider "$INTEG/s3rver_main.js" -d "$WORK/s3" -a 127.0.0.1 -p "$PORT" \
	--silent --configure-bucket zero1 --configure-bucket zero2 >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" \
		2>/dev/null && break
	sleep 0.1
done

# one run: NFILES x (create, write 4 KiB, fsync, close); prints files/s, median and p95 ms
workload() {
	/usr/bin/python3 - "$1" "$NFILES" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(d, "fsync"), exist_ok=True)
data = os.urandom(4096)
lat = []
t0 = time.monotonic()
for i in range(n):
    fd = os.open(os.path.join(d, "fsync", "f%05d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    t = time.monotonic()
    os.fsync(fd)
    lat.append(time.monotonic() - t)
    os.close(fd)
total = time.monotonic() - t0
lat.sort()
print("%.1f %.2f %.2f" % (n / total, 1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.95)]))
PY
}

mount_zero() { # NAME BUCKET [-o sync_upload]
	local name=$1 bucket=$2
	shift 2
	mkdir -p "$WORK/$name.mnt"
	cat >"$WORK/$name.yml" <<CONF
backend: s3
endpoint: http://127.0.0.1:$PORT
bucket: $bucket
accessKeyId: S3RVER
secretAccessKey: S3RVER
CONF
	chmod 600 "$WORK/$name.yml"
	"$ZERO" mount "$WORK/$name.mnt" "$WORK/$name.cache" --config "$WORK/$name.yml" "$@" \
		>/dev/null || { echo "fsync_bench: zero did not mount" >&2; exit 1; }
	MOUNTS+=("$WORK/$name.mnt")
}

mkdir -p "$WORK/native"
read -r nat_rate nat_p50 nat_p95 < <(workload "$WORK/native")
mount_zero local zero1
read -r loc_rate loc_p50 loc_p95 < <(workload "$WORK/local.mnt")
mount_zero bucket zero2 -o sync_upload
read -r up_rate up_p50 up_p95 < <(workload "$WORK/bucket.mnt")

printf "%-26s %10s %12s %12s %14s\n" target files/s "fsync p50 ms" "fsync p95 ms" "vs native"
printf "%-26s %10s %12s %12s %14s\n" native "$nat_rate" "$nat_p50" "$nat_p95" 1.00
for t in "zero (fsync: local disk)|$loc_rate|$loc_p50|$loc_p95" \
	"zero -o sync_upload|$up_rate|$up_p50|$up_p95"; do
	IFS='|' read -r name rate p50 p95 <<<"$t"
	printf "%-26s %10s %12s %12s %14s\n" "$name" "$rate" "$p50" "$p95" \
		"$(/usr/bin/python3 -c "print('%.2f' % ($rate / $nat_rate))")"
done
echo "($NFILES files of 4 KiB, each written and fsync'ed; s3rver on 127.0.0.1)"
