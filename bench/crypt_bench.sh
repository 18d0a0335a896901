#!/usr/bin/env bash
# crypt_bench.sh - what encryption costs: uploads and cold reads of Zero with
# and without encryption, on one local S3 server (s3rver on 127.0.0.1), in
# one run, rounds interleaved.
#
#   bench/crypt_bench.sh [BUILD_DIR] [SIZE_MIB] [ROUNDS]
#
# Two mounts of the same binary on two buckets of the server: "plain"
# (encryption: false) and "sealed" (the default for a bucket). Each round,
# for each mount in turn (the order alternates between rounds):
#   upload    a new file of SIZE_MIB random bytes is written (dd, fsync);
#             timed from the start of the write until the daemon reports
#             nothing dirty and nothing uploading (uploadDelay: 0): the MB/s
#             at which the file reaches the bucket
#   cold read the file is evicted from the cache (user.zero.evict), the
#             page cache dropped, and read back (dd bs=1M)
# Prints the medians, each round's figures, and sealed/plain ratios; the
# daemon's CPU seconds per operation (medians) show where the cost lands.
# MB/s is 10^6 bytes per second. Run as root (mounts, drop_caches).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-build}
SIZE_MIB=${2:-256}
ROUNDS=${3:-5}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ZERO=${ZERO_BIN:-$BUILD/zero}
[ -x "$ZERO" ] || { echo "crypt_bench: $ZERO not found; build first" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "crypt_bench: run as root (mounts, drop_caches)" >&2; exit 2; }
INTEG=$ROOT/tests/integration
[ -f "$INTEG/node_modules/s3rver/package.json" ] ||
	(cd "$INTEG" && npm ci --no-audit --no-fund --loglevel=error) >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zero-cryptbench.XXXXXX")
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
	--silent --configure-bucket plain --configure-bucket sealed >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" \
		2>/dev/null && break
	sleep 0.1
done
BYTES=$((SIZE_MIB * 1024 * 1024))
export ZERO_PASSPHRASE="crypt_bench passphrase"

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }'; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_since() { awk -v a="$2" -v b="$(cpu_s "$1")" 'BEGIN { printf "%.2f", b - a }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
status_field() { getfattr --only-values -n user.zero.status "$1" 2>/dev/null |
	/usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

declare -A PID UP COLD UPCPU COLDCPU
for t in plain sealed; do
	mkdir -p "$WORK/$t-mnt"
	enc=true
	[ "$t" = plain ] && enc=false
	cat >"$WORK/$t.yml" <<CONF
backend: s3
endpoint: http://127.0.0.1:$PORT
bucket: $t
accessKeyId: S3RVER
secretAccessKey: S3RVER
uploadDelay: 0
encryption: $enc
CONF
	chmod 600 "$WORK/$t.yml"
	"$ZERO" mount "$WORK/$t-mnt" "$WORK/$t-cache" --config "$WORK/$t.yml" >/dev/null ||
		{ echo "crypt_bench: zero did not mount ($t)" >&2; exit 1; }
	MOUNTS+=("$WORK/$t-mnt")
	PID[$t]=$(pgrep -f "zero mount $WORK/$t-mnt" | head -n 1)
	[ "$(status_field "$WORK/$t-mnt" encryption)" = "$([ $enc = true ] && echo xchacha20poly1305 || echo none)" ] ||
		{ echo "crypt_bench: $t: unexpected encryption" >&2; exit 1; }
done

one_round() {
	local t=$1 r=$2 mnt=$WORK/$1-mnt t0 t1 c0
	drop
	c0=$(cpu_s "${PID[$t]}")
	t0=$(now)
	dd if="$WORK/data$r" of="$mnt/f$r" bs=1M conv=fsync status=none
	# one getfattr per poll: the poll itself must not compete for the CPU
	until getfattr --only-values -n user.zero.status "$mnt" 2>/dev/null |
		grep -q '"dirty_chunks":0,.*"uploading":0,'; do
		sleep 0.02
	done
	t1=$(now)
	UP[$t]+=" $(mbps "$BYTES" "$t0" "$t1")"
	UPCPU[$t]+=" $(cpu_since "${PID[$t]}" "$c0")"
	setfattr -n user.zero.evict -v 1 "$mnt/f$r"
	drop
	c0=$(cpu_s "${PID[$t]}")
	t0=$(now)
	dd if="$mnt/f$r" of=/dev/null bs=1M status=none
	t1=$(now)
	COLD[$t]+=" $(mbps "$BYTES" "$t0" "$t1")"
	COLDCPU[$t]+=" $(cpu_since "${PID[$t]}" "$c0")"
}

for r in $(seq "$ROUNDS"); do
	head -c "$BYTES" /dev/urandom >"$WORK/data$r"
	if [ $((r % 2)) = 1 ]; then order="plain sealed"; else order="sealed plain"; fi
	for t in $order; do one_round "$t" "$r"; done
	rm -f "$WORK/data$r"
done

printf '\n%s MiB of random bytes per file, medians of %s interleaved rounds (MB/s)\n' "$SIZE_MIB" "$ROUNDS"
printf '%-8s %8s %10s %12s %14s\n' mount upload "cold read" "upload CPU s" "cold read CPU s"
for t in plain sealed; do
	# shellcheck disable=SC2086
	printf '%-8s %8s %10s %12s %14s\n' "$t" "$(median ${UP[$t]})" "$(median ${COLD[$t]})" \
		"$(median ${UPCPU[$t]})" "$(median ${COLDCPU[$t]})"
done
printf '\nevery round: upload |cold read\n'
for t in plain sealed; do
	printf '  %-7s%s |%s\n' "$t" "${UP[$t]}" "${COLD[$t]}"
done
# shellcheck disable=SC2086
awk -v su="$(median ${UP[sealed]})" -v pu="$(median ${UP[plain]})" \
	-v sc="$(median ${COLD[sealed]})" -v pc="$(median ${COLD[plain]})" \
	'BEGIN { printf "sealed/plain: upload %.2f, cold read %.2f\n", su / pu, sc / pc }'
