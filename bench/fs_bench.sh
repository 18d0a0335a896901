#!/usr/bin/env bash
# fs_bench.sh - Zero against the native disk and its peers (s3fs, rclone
# mount) on one local S3 server (s3rver on 127.0.0.1), in one run.
#
#   bench/fs_bench.sh [BUILD_DIR] [SIZE_MIB] [NFILES]
#
# Workloads:
#   write     SIZE_MIB of random bytes, dd bs=1M, then fsync (once)
#   warm read the same file again, dd bs=1M (page cache and local cache; once)
#   cold read after the data left the machine: Zero evicts the file to the
#             bucket (user.zero.evict) and the page cache is dropped; peers
#             drop the page cache (rclone runs without a VFS cache, so it
#             reads from the server; s3fs without its local cache)
#   small     NFILES files of 4 KiB created, then all read back (once)
# plus curl's GET of a SIZE_MIB object: to /dev/null, the ceiling for a cold
# read, and to a file on the disk that holds Zero's cache (what a download
# to that disk costs).
# Cold reads are taken twice over: with the server's disk cold too (its page
# cache dropped with ours: "cold") and with the server's objects in its page
# cache ("srv-warm": after the drop the server's files of that bucket are
# read once). With a cold server disk one GET is bound by the server's
# sequential disk reads; with a warm one by the server's CPU, which on a
# small machine it shares with the client under test.
# Cold reads vary most from run to run, so they are taken ROUNDS times
# (default 5), each round every target and curl in turn, and the table gives
# the median; the CPU seconds that Zero's daemon and the server spent per
# cold read are medians too.
# Peers that cannot be installed (apt-get) are skipped with a note.
# Prints one table; MB/s is 10^6 bytes per second.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-build}
SIZE_MIB=${2:-256}
NFILES=${3:-1000}
ROUNDS=${ROUNDS:-5}
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
node --openssl-legacy-provider "$INTEG/s3rver_main.js" -d "$WORK/s3" \
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

declare -A RES DIRS EVICT
TARGETS=()
# run TARGET DIR [EVICT-COMMAND]
run() {
	local name=$1 dir=$2 evict=${3:-} t0 t1
	TARGETS+=("$name")
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
	[ -n "$evict" ] && EVICT[$name]=$evict
	DIRS[$name]=$dir
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
# encrypted, as a bucket is by default
if ZERO_PASSPHRASE=${ZERO_PASSPHRASE:-bench} "$ZERO" mount "$WORK/zmnt" "$WORK/zcache" --config "$WORK/zero.yml" >/dev/null; then
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
CURL=(curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER
	-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
"${CURL[@]}" -T "$WORK/data" "$URL/curl/data" >/dev/null

# CPU seconds (user + system) a process has used so far; and since an earlier reading
cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_since() { awk -v a="$2" -v b="$(cpu_s "$1")" 'BEGIN { printf "%.2f", b - a }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ZPID=$(pgrep -f "zero mount $WORK/zmnt" | head -n 1)

# cold NAME [warm]: one cold read of target NAME (or curl, curl-file), with
# the server's disk cold or warm; MB/s into COLD[NAME] or COLD[NAME,warm]
declare -A COLD ZCPU SCPU
cold() {
	local name=$1 warm=${2:-} key=$1 bucket=$1 t0 t1 z0 s0
	case $name in
	curl | curl-file)
		rm -f "$WORK/download"
		bucket=curl
		;;
	*) [ -n "${EVICT[$name]:-}" ] && ${EVICT[$name]} "${DIRS[$name]}/big" ;;
	esac
	drop
	if [ -n "$warm" ]; then
		key=$name,warm
		find "$WORK/s3/$bucket" -type f -exec cat {} + >/dev/null
	fi
	z0=$(cpu_s "${ZPID:-0}")
	s0=$(cpu_s "$S3PID")
	t0=$(now)
	case $name in
	curl) "${CURL[@]}" "$URL/curl/data" -o /dev/null ;;
	curl-file) "${CURL[@]}" "$URL/curl/data" -o "$WORK/download" ;;
	*) dd if="${DIRS[$name]}/big" of=/dev/null bs=1M status=none ;;
	esac
	t1=$(now)
	COLD[$key]+=" $(mbps "$BYTES" "$t0" "$t1")"
	SCPU[$key]+=" $(cpu_since "$S3PID" "$s0")"
	[ "$name" = zero ] && ZCPU[$key]+=" $(cpu_since "$ZPID" "$z0")"
	return 0
}
for _ in $(seq "$ROUNDS"); do
	for t in "${TARGETS[@]}" curl curl-file; do
		cold "$t"
		[ "$t" = native ] || cold "$t" warm
	done
done
for t in "${TARGETS[@]}" curl curl-file; do
	# shellcheck disable=SC2086
	RES[$t,cold]=$(median ${COLD[$t]})
	# shellcheck disable=SC2086
	[ "$t" = native ] && RES[$t,warmsrv]=- || RES[$t,warmsrv]=$(median ${COLD[$t,warm]})
done

printf '\n%s MiB file, %s small files; MB/s (small: files/s); cold reads: median of %s rounds\n' \
	"$SIZE_MIB" "$NFILES" "$ROUNDS"
printf '%-9s %8s %8s %8s %9s %8s\n' target write warm cold srv-warm small
for t in "${TARGETS[@]}"; do
	printf '%-9s %8s %8s %8s %9s %8s\n' "$t" "${RES[$t,write]}" "${RES[$t,warm]}" \
		"${RES[$t,cold]}" "${RES[$t,warmsrv]}" "${RES[$t,small]}"
done
for t in curl curl-file; do
	printf '%-9s %8s %8s %8s %9s %8s\n' "$t" - - "${RES[$t,cold]}" "${RES[$t,warmsrv]}" -
done
printf '\ncold reads, every round (MB/s; server cold | server warm):\n'
for t in "${TARGETS[@]}" curl curl-file; do
	printf '  %-9s%s |%s\n' "$t" "${COLD[$t]}" "${COLD[$t,warm]:-}"
done
if [ -n "${RES[zero,cold]:-}" ]; then
	# shellcheck disable=SC2086
	printf 'CPU seconds per cold read (median; server cold | warm): zero daemon %s | %s; server for zero %s | %s, for curl %s | %s\n' \
		"$(median ${ZCPU[zero]})" "$(median ${ZCPU[zero,warm]})" \
		"$(median ${SCPU[zero]})" "$(median ${SCPU[zero,warm]})" \
		"$(median ${SCPU[curl]})" "$(median ${SCPU[curl,warm]})"
	awk -v z="${RES[zero,cold]}" -v c="${RES[curl,cold]}" -v cf="${RES[curl-file,cold]}" \
		-v zw="${RES[zero,warmsrv]}" -v cw="${RES[curl,warmsrv]}" \
		'BEGIN { printf "zero/curl cold read %.2f with the server cold, %.2f with it warm (zero/curl-to-file %.2f)\n", z / c, zw / cw, z / cf }'
	awk -v zw="${RES[zero,warm]}" -v nw="${RES[native,warm]}" -v zs="${RES[zero,small]}" \
		-v ns="${RES[native,small]}" \
		'BEGIN { printf "zero/native warm read %.2f, zero/native small files %.2f\n", zw / nw, zs / ns }'
fi
