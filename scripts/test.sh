#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test.sh - install what is missing, build, run the cmocka unit tests
# (build/test_*) and the integration suite (tests/run.py); print one
# `N passed, N failed, N skipped` over everything and exit 0 only if
# nothing failed. GILTRACE_FULL=1 adds the slow integration variants.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build}
start=$(date +%s)

scripts/deps.sh || { echo "test.sh: scripts/deps.sh failed" >&2; exit 1; }

passed=0 failed=0 skipped=0

echo "== build"
# giltrace first: without it nothing can be tested. Then everything else
# (unit tests) with -k: a unit test that does not build is one failure,
# and the integration suite still runs.
if ! { cmake -S "$ROOT" -B "$BUILD" >/dev/null && make -C "$BUILD" -j2 --no-print-directory giltrace >"$BUILD/make.log" 2>&1; }; then
	tail -30 "$BUILD/make.log" 2>/dev/null
	echo "FAIL build of giltrace (see $BUILD/make.log): nothing tested"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
if ! make -C "$BUILD" -j2 -k --no-print-directory >>"$BUILD/make.log" 2>&1; then
	grep -E 'error|Error [0-9]' "$BUILD/make.log" | head -10 | sed 's/^/    /'
	echo "FAIL build of the unit tests (see $BUILD/make.log)"
	failed=$((failed + 1))
fi

echo "== unit tests"
shopt -s nullglob
for t in "$BUILD"/test_*; do
	[[ -x $t && -f $t ]] || continue
	name=$(basename "$t")
	out=$("$t" 2>&1)
	rc=$?
	# cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)..."
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
	if [[ -z $p && -z $f ]]; then
		# Not cmocka's summary: the binary counts as one test.
		if ((rc == 0)); then p=1 f=0; else p=0 f=1; fi
	fi
	p=${p:-0} f=${f:-0} s=${s:-0}
	if ((rc != 0 && f == 0)); then f=1; fi   # crashed or failed outside cmocka
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if ((f > 0)); then
		echo "FAIL $name: $p passed, $f failed (exit $rc)"
		grep -E '^\[  (FAILED|ERROR) |^\[  FAILED  \] |error:|Assert|Segmentation' <<<"$out" | head -20 | sed 's/^/    /'
	else
		echo "PASS $name: $p passed${s:+, $s skipped}"
	fi
done

echo "== integration tests"
log=$(mktemp)
python3=/usr/bin/python3
[[ -x $python3 ]] || python3=python3
"$python3" tests/run.py --giltrace "$BUILD/giltrace" "$@" | tee "$log"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
rm -f "$log"
if [[ -n $summary ]]; then
	read -r ip _ if_ _ is _ <<<"${summary//,/}"
	passed=$((passed + ip)) failed=$((failed + if_)) skipped=$((skipped + is))
else
	echo "FAIL tests/run.py ended without a summary line"
	failed=$((failed + 1))
fi

echo "== all ($(( $(date +%s) - start ))s)"
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
