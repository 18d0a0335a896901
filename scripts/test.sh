#!/usr/bin/env bash
# Command (b): install what is missing, build (plain and ASan+UBSan), and run
# every test: unit, integration (real s3rver on 127.0.0.1), and the system
# suite on a plain directory, on a Zero mount, and on a Zero mount built
# with sanitizers. Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh --test || exit 1
scripts/build.sh --asan || exit 1

PY=/usr/bin/python3
logdir=$(mktemp -d /tmp/zero-test-logs.XXXXXX)
total_pass=0
total_fail=0
failed_steps=()

# count NAME RC: add up the counts of the closing line of NAME's log
count() {
	local name=$1 rc=$2
	local last p f e
	last=$(grep -E '([0-9]+ (passed|failed))' "$logdir/$name.log" | tail -n 1)
	p=$(grep -oE '[0-9]+ passed' <<<"$last" | grep -oE '[0-9]+' || true)
	f=$(grep -oE '[0-9]+ failed' <<<"$last" | grep -oE '[0-9]+' || true)
	e=$(grep -oE '[0-9]+ errors?' <<<"$last" | grep -oE '[0-9]+' || true)
	total_pass=$((total_pass + ${p:-0}))
	total_fail=$((total_fail + ${f:-0} + ${e:-0}))
	if [ "$rc" -ne 0 ]; then
		failed_steps+=("$name")
		[ -n "${f:-}${e:-}" ] || total_fail=$((total_fail + 1))
	fi
}

# timed NAME COMMAND...: run, then say how long it took; its status
timed() {
	local name=$1 t0=$SECONDS rc=0
	shift
	"$@" || rc=$?
	echo "=== $name took $((SECONDS - t0)) s"
	return $rc
}

# step NAME COMMAND...: run, show output, count
step() {
	local name=$1
	shift
	echo "=== $name"
	timed "$name" "$@" 2>&1 | tee "$logdir/$name.log"
	count "$name" "${PIPESTATUS[0]}"
}

# step_start NAME COMMAND...: run in the background (its output to its log);
# step_finish NAME: wait for it, show its output, count. The integration
# suites wait on timers and servers far more than they compute (about a
# quarter of two cores), so two of them share the machine well.
declare -A bg_pid
step_start() {
	local name=$1
	shift
	echo "=== $name (started in the background)"
	timed "$name" "$@" >"$logdir/$name.log" 2>&1 &
	bg_pid[$name]=$!
}
step_finish() {
	local name=$1 rc=0
	wait "${bg_pid[$name]}" || rc=$?
	echo "=== $name"
	cat "$logdir/$name.log"
	count "$name" "$rc"
}

unit() {
	local build=$1 rc=0
	for t in "$build"/tests/unit/test_* "$build"/tests/unit/store/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		echo "--- $(basename "$t")"
		"$t" || rc=1
	done
	return $rc
}

# unit tests print "N passed, N failed" each; add them up into one line
unit_all() {
	local out rc
	out=$(unit "$1" 2>&1)
	rc=$?
	echo "$out"
	local p f
	p=$(grep -oE '^[0-9]+ passed' <<<"$out" | awk '{s+=$1} END {print s+0}')
	f=$(grep -oE '[0-9]+ failed$' <<<"$out" | awk '{s+=$1} END {print s+0}')
	echo "unit: $p passed, $f failed"
	return $rc
}

step unit unit_all build
step unit-asan unit_all build-asan
# s3rver is installed before the two integration suites start side by side
(cd tests/integration && [ -f node_modules/s3rver/package.json ] ||
	npm ci --no-audit --no-fund --loglevel=error) || exit 1
# the kill -9 loops: 20 cycles each in the plain build, 5 under the sanitizers (3-4x slower);
# the journal's loss window 3 cycles per backend, 1 under the sanitizers
# (each with a pytest base directory of its own); the sanitizers' run without the
# kernel's writeback cache, the plain one with it (the default): both write paths
step_start integration-asan env ASAN_OPTIONS=detect_leaks=1 ZERO_CRASH_CYCLES=5 \
	ZERO_JOURNAL_CYCLES=1 ZERO_MOUNT_ARGS=--no-writeback-cache \
	tests/integration/run.sh build-asan --durations=25 \
	--basetemp="$logdir/tmp-asan"
step integration env ZERO_CRASH_CYCLES=20 tests/integration/run.sh build --durations=25 \
	--basetemp="$logdir/tmp-plain"
step_finish integration-asan
step cli env ZERO_BIN="$root/build/zero" $PY -m pytest -q -p no:cacheprovider tests/cli
# the Debian package: built, checked by lintian, installed, used, removed
step package $PY -m pytest -q -p no:cacheprovider tests/package
# the system suite three times: under the sanitizers with the kernel's writeback
# cache (the default) in the background, beside a plain directory and the plain
# build without the cache: both write paths run the whole suite
step_start system-zero-asan env ZERO_BIN="$root/build-asan/zero" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	$PY -m pytest -q -p no:cacheprovider tests/system
plain=$(mktemp -d /tmp/zero-plain.XXXXXX)
step system-plain env ZERO_TEST_DIR="$plain" $PY -m pytest -q -p no:cacheprovider tests/system
rm -rf "$plain"
step system-zero env ZERO_BIN="$root/build/zero" ZERO_MOUNT_ARGS=--no-writeback-cache \
	$PY -m pytest -q -p no:cacheprovider tests/system
step_finish system-zero-asan

echo "=== summary (after $SECONDS s)"
rm -rf "$logdir"/tmp-plain "$logdir"/tmp-asan # the suites' mounts and caches
if [ "${#failed_steps[@]}" -gt 0 ]; then
	echo "failed steps: ${failed_steps[*]} (logs in $logdir)"
fi
echo "$total_pass passed, $total_fail failed"
[ "${#failed_steps[@]}" -eq 0 ]
