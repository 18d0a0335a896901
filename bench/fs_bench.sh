#!/usr/bin/env bash
# fs_bench.sh - Zero against the native disk and its peers (s3fs, rclone
# mount) on one local S3 server (s3rver on 127.0.0.1), in one run.
#
#   bench/fs_bench.sh [BUILD_DIR] [SIZE_MIB] [NFILES]
#
# Workloads, each timed once per target:
#   write     SIZE_MIB of random bytes, dd bs=1M, then fsync
#   warm read the same file again, dd bs=1M (page cache and local cache)
#   cold read after the data left the machine: Zero evicts the file to the
#             bucket (user.zero.evict) and the page cache is dropped; peers
#             drop the page cache (rclone runs without a VFS cache, so it
#             reads from the server; s3fs without its local cache)
#   small     NFILES files of 4 KiB created, then all read back
# plus curl's GET of a SIZE_MIB object, the ceiling for a cold read.
# Peers that cannot be installed (apt-get) are skipped with a note.
# Prints one table; MB/s is 10^6 bytes per second.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-build}
SIZE_MIB=${2:-256}
NFILES=${3:-1000}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ZERO=${ZERO_BIN:-$BUILD/zero}
[ -x "$ZERO" ] || { echo "fs_bench: $ZERO not found; build first" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "fs_bench: run as root (mounts, drop_caches)" >&2; exit 2; }
INTEG=$ROOT/tests/integration
[ -f "$INTEG/node_modules/s3rver/package.json" ] ||
	(cd "$INTEG" && npm ci --no-audit --no-fund --loglevel=error) >&2
for p in s3fs rclone; do
	command -v $p >/dev/null ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null 2>&1 ||
		echo "fs_bench: $p not installable; skipping it" >&2
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zero-fsbench.XXXXXX")
S3PID=
MOUNTS=()
cleanup() {
	for m in "${MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	[ -n "$S3PID" ] && kill "$S3PID" 2>/dev/null && wait "$S3PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node --openssl-legacy-provider "$INTEG/node_modules/s3rver/bin/s3rver.js" -d "$WORK/s3" \
	-a 127.0.0.1 -p "$PORT" --silent --configure-bucket zero --configure-bucket s3fs \
	--configure-bucket rclone --configure-bucket curl >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" \
		2>/dev/null && break
	sleep 0.1
done
URL=http://127.0.0.1:$PORT
BYTES=$((SIZE_MIB * 1024 * 1024))
head -c "$BYTES" /dev/urandom >"$WORK/data"

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }'; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

declare -A RES
# run TARGET DIR [EVICT-COMMAND]
run() {
	local name=$1 dir=$2 evict=${3:-} t0 t1
	drop
	t0=$(now)
	dd if="$WORK/data" of="$dir/big" bs=1M conv=fsync status=none
	t1=$(now)
	RES[$name,write]=$(mbps "$BYTES" "$t0" "$t1")
	cat "$dir/big" >/dev/null
	t0=$(now)
	dd if="$dir/big" of=/dev/null bs=1M status=none
	t1=$(now)
	RES[$name,warm]=$(mbps "$BYTES" "$t0" "$t1")
	[ -n "$evict" ] && $evict "$dir/big"
	drop
	t0=$(now)
	dd if="$dir/big" of=/dev/null bs=1M status=none
	t1=$(now)
	RES[$name,cold]=$(mbps "$BYTES" "$t0" "$t1")
	mkdir -p "$dir/small"
	head -c 4096 /dev/urandom >"$WORK/small"
	t0=$(now)
	for i in $(seq "$NFILES"); do cp "$WORK/small" "$dir/small/f$i"; done
	cat "$dir"/small/* >/dev/null
	t1=$(now)
	RES[$name,small]=$(awk -v n="$NFILES" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", n / (e - s) }')
}

zero_evict() {
	# wait for the upload, then push the file out of the cache
	for _ in $(seq 600); do
		grep -q 'dirty=0 ' <(getfattr --only-values -n user.zero.residency "$1" 2>/dev/null) && break
		sleep 0.1
	done
	setfattr -n user.zero.evict -v 1 "$1"
}

# native disk
mkdir -p "$WORK/native"
run native "$WORK/native"

# Zero on the same S3 server
mkdir -p "$WORK/zmnt"
cat >"$WORK/zero.yml" <<CONF
backend: s3
endpoint: $URL
bucket: zero
accessKeyId: S3RVER
secretAccessKey: S3RVER
uploadDelay: 0
CONF
chmod 600 "$WORK/zero.yml"
if "$ZERO" mount "$WORK/zmnt" "$WORK/zcache" --config "$WORK/zero.yml" >/dev/null; then
	MOUNTS+=("$WORK/zmnt")
	run zero "$WORK/zmnt" zero_evict
else
	echo "fs_bench: zero did not mount" >&2
fi

# s3fs
if command -v s3fs >/dev/null; then
	echo "S3RVER:S3RVER" >"$WORK/s3fs.passwd"
	chmod 600 "$WORK/s3fs.passwd"
	mkdir -p "$WORK/s3fsmnt"
	if s3fs s3fs "$WORK/s3fsmnt" -o url="$URL" -o use_path_request_style \
		-o passwd_file="$WORK/s3fs.passwd" -o allow_other 2>"$WORK/s3fs.log"; then
		MOUNTS+=("$WORK/s3fsmnt")
		sleep 1
		run s3fs "$WORK/s3fsmnt"
	fi
fi

# rclone mount, no VFS cache for reads
if command -v rclone >/dev/null; then
	mkdir -p "$WORK/rclonemnt"
	export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$URL \
		RCLONE_CONFIG_B_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_B_SECRET_ACCESS_KEY=S3RVER
	if env -u AWS_CA_BUNDLE rclone mount b:rclone "$WORK/rclonemnt" --daemon --vfs-cache-mode writes \
		--allow-other 2>"$WORK/rclone.log"; then
		MOUNTS+=("$WORK/rclonemnt")
		sleep 1
		run rclone "$WORK/rclonemnt"
	fi
fi

# curl: the ceiling for a cold read
curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	-T "$WORK/data" "$URL/curl/data" >/dev/null
drop
t0=$(now)
curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	"$URL/curl/data" -o /dev/null
t1=$(now)
CURL_GET=$(mbps "$BYTES" "$t0" "$t1")

printf '\n%s MiB file, %s small files; MB/s (small: files/s)\n' "$SIZE_MIB" "$NFILES"
printf '%-8s %8s %8s %8s %8s\n' target write warm cold small
for t in native zero s3fs rclone; do
	[ -n "${RES[$t,write]:-}" ] || continue
	printf '%-8s %8s %8s %8s %8s\n' "$t" "${RES[$t,write]}" "${RES[$t,warm]}" "${RES[$t,cold]}" \
		"${RES[$t,small]}"
done
printf '%-8s %8s %8s %8s %8s\n' curl - - "$CURL_GET" -
if [ -n "${RES[zero,cold]:-}" ]; then
	awk -v z="${RES[zero,cold]}" -v c="$CURL_GET" -v zw="${RES[zero,warm]}" \
		-v nw="${RES[native,warm]}" -v zs="${RES[zero,small]}" -v ns="${RES[native,small]}" \
		'BEGIN { printf "zero/curl cold read %.2f, zero/native warm read %.2f, zero/native small files %.2f\n", z / c, zw / nw, zs / ns }'
fi
