#!/usr/bin/env bash
# Runs fuzz targets one after another for SECONDS each with cargo fuzz
# (libFuzzer, stable toolchain: --sanitizer none needs no -Z flag), then
# prints one line per target: runs, runs/s, coverage, corpus, findings.
#
#   fuzz/run.sh SECONDS TARGET...
#
# New inputs go to $FUZZ_WORK/<target> (default fuzz/work, not in git);
# the committed seeds in fuzz/corpus/<target> are only read. A crash,
# panic, timeout or out-of-memory input lands in fuzz/artifacts/<target>/
# and makes the script exit 1 after the remaining targets ran.
# Extra libFuzzer flags: FUZZ_ARGS="-jobs=2 ..." .
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/run.sh SECONDS TARGET...}
shift
work=${FUZZ_WORK:-fuzz/work}
logs=$work/logs
mkdir -p "$logs"

cargo fuzz build --sanitizer none || exit 1

failed=()
summary=()
for target in "$@"; do
	mkdir -p "$work/$target" "fuzz/artifacts/$target"
	dict=()
	case $target in
	config | process) dict=(-dict=fuzz/dict/config.dict) ;;
	seccomp) dict=(-dict=fuzz/dict/seccomp.dict) ;;
	esac
	log=$logs/$target.log
	echo "== fuzz $target for ${seconds}s (log: $log)"
	start=$(date +%s)
	# shellcheck disable=SC2086
	cargo fuzz run --sanitizer none "$target" "$work/$target" "fuzz/corpus/$target" -- \
		-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		"${dict[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1)
	line="$target: ${runs:-?} runs in ${took}s (${rate:-?}/s), ${cov:-no coverage line}"
	if [ $rc -ne 0 ]; then
		line="$line; FAILED (exit $rc): $(grep -m1 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log")"
		failed+=("$target")
		tail -40 "$log"
		ls -l "fuzz/artifacts/$target"
	fi
	summary+=("$line")
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: findings in ${failed[*]}: see fuzz/artifacts/ and $logs/"
	exit 1
fi
