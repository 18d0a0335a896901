#!/bin/sh
# store_bench.sh - throughput of the s3 backend against curl, same server.
#
#   bench/store_bench.sh [BUILD_DIR] [SIZE_MIB]
#
# Starts a fresh s3rver on a free 127.0.0.1 port (from tests/integration,
# installed with npm ci on first use), then PUTs and GETs one SIZE_MIB
# (default 256) object through `zero bucket put/get` and through curl
# --aws-sigv4, RUNS (default 5) interleaved runs each, and prints the
# median and best MB/s (10^6 bytes per second) and zero's ratio to curl.
# curl sends UNSIGNED-PAYLOAD and no checksum; zero, with its defaults,
# sends UNSIGNED-PAYLOAD plus a signed x-amz-checksum-crc32c of the body
# (so it reads the data twice), and uploads in one PUT below the
# multipart threshold (512 MiB by default).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-build}
SIZE_MIB=${2:-256}
RUNS=${RUNS:-5}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ZERO=${ZERO_BIN:-$BUILD/zero}
[ -x "$ZERO" ] || { echo "store_bench: $ZERO not found; build first" >&2; exit 2; }
INTEG=$ROOT/tests/integration
[ -f "$INTEG/node_modules/s3rver/package.json" ] ||
	(cd "$INTEG" && npm ci --no-audit --no-fund --loglevel=error) >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zero-bench.XXXXXX")
S3PID=
cleanup() {
	[ -n "$S3PID" ] && kill "$S3PID" 2>/dev/null && wait "$S3PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node --openssl-legacy-provider "$INTEG/s3rver_main.js" -d "$WORK/s3" \
	-a 127.0.0.1 -p "$PORT" --silent --configure-bucket bench >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" \
		2>/dev/null && break
	sleep 0.1
done

cat >"$WORK/config.yml" <<CONF
backend: s3
endpoint: http://127.0.0.1:$PORT
bucket: bench
accessKeyId: S3RVER
secretAccessKey: S3RVER
CONF
chmod 600 "$WORK/config.yml"

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/data"
BYTES=$((SIZE_MIB * 1024 * 1024))
URL=http://127.0.0.1:$PORT/bench

now() { date +%s.%N; }
# MB/s of one run of "$@"; sync first so that one run's dirty pages don't slow the next.
rate() {
	sync
	t0=$(now)
	"$@" >/dev/null
	t1=$(now)
	/usr/bin/python3 -c "print($BYTES / 1e6 / ($t1 - $t0))"
}
curl_put() {
	curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$WORK/data" "$URL/curl-object"
}
curl_get() {
	curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$WORK/curl.out" "$URL/curl-object"
}
zero_put() { "$ZERO" bucket --config "$WORK/config.yml" put zero-object "$WORK/data"; }
zero_get() { "$ZERO" bucket --config "$WORK/config.yml" get zero-object "$WORK/zero.out"; }

# Interleave the two clients so that both see the same server and disk state.
: >"$WORK/rates"
for _ in $(seq "$RUNS"); do
	echo "put curl $(rate curl_put)" >>"$WORK/rates"
	echo "put zero $(rate zero_put)" >>"$WORK/rates"
done
for _ in $(seq "$RUNS"); do
	echo "get curl $(rate curl_get)" >>"$WORK/rates"
	echo "get zero $(rate zero_get)" >>"$WORK/rates"
done
cmp -s "$WORK/data" "$WORK/zero.out" || { echo "store_bench: zero's GET returned other bytes" >&2; exit 1; }
cmp -s "$WORK/data" "$WORK/curl.out" || { echo "store_bench: curl's GET returned other bytes" >&2; exit 1; }

/usr/bin/python3 - "$SIZE_MIB" "$RUNS" "$WORK/rates" <<'PY'
import statistics, sys
size, runs, path = sys.argv[1], sys.argv[2], sys.argv[3]
r = {}
for line in open(path):
    op, who, v = line.split()
    r.setdefault((op, who), []).append(float(v))
print("object: %s MiB, s3rver on 127.0.0.1, %s interleaved runs each (MB/s = 10^6 B/s)"
      % (size, runs))
print("        curl median   zero median   ratio  |  curl best   zero best   ratio")
for op in ("put", "get"):
    c, z = r[(op, "curl")], r[(op, "zero")]
    cm, zm, cb, zb = statistics.median(c), statistics.median(z), max(c), max(z)
    print("%-4s %13.1f %13.1f %7.2f  | %10.1f %11.1f %7.2f"
          % (op.upper(), cm, zm, zm / cm, cb, zb, zb / cb))
PY
