#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run_views.sh [BUILD_DIR] - the views' format and browser checks on the
# samples of the unit tests (build/test_views --sample: a simulated GIL, and
# a trace ending with open, abandoned and lost intervals;
# build/test_views_stacks --sample: a trace with stacks, for the flame
# graphs and the Perfetto stack args), no root needed:
#
#   tests/lib/perfetto_check.py --self-test, then on each Perfetto file
#   against its JSON;
#   tests/web/check_html.js on each HTML report (headless Chromium) and
#   Perfetto file (speedscope).
#
# Prints the checkers' PASS/FAIL lines, then `N passed, N failed, N skipped`.
# The browser checks are skipped, with the reason, when node, chromium or
# web/node_modules are missing (scripts/deps-web.sh installs them).
# Exit status 1 if anything failed.
set -uo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-${BUILD:-build}}
passed=0 failed=0 skipped=0
dir=$(mktemp -d /tmp/giltrace-views.XXXXXX)
trap 'rm -rf "$dir"' EXIT

if ! "$BUILD/test_views" --sample "$dir" >"$dir/sample.log" 2>&1; then
	echo "FAIL views_sample: $BUILD/test_views --sample: $(tail -1 "$dir/sample.log")"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

if ! "$BUILD/test_views_stacks" --sample "$dir" >"$dir/stacks.log" 2>&1; then
	echo "FAIL views_sample: $BUILD/test_views_stacks --sample: $(tail -1 "$dir/stacks.log")"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
samples="sample edge stacks"

if out=$(python3 tests/lib/perfetto_check.py --self-test 2>&1); then
	echo "PASS perfetto_check finds slices that overlap, unpaired flows, counters back in time, wrong sums, bad stack args"
	passed=$((passed + 1))
else
	echo "FAIL perfetto_check --self-test: $out"
	failed=$((failed + 1))
fi
for v in $samples; do
	if out=$(python3 tests/lib/perfetto_check.py "$dir/$v.perfetto.json" --json "$dir/$v.json" 2>&1); then
		echo "PASS perfetto_check $v: ${out#perfetto_check: }"
		passed=$((passed + 1))
	else
		echo "FAIL perfetto_check $v:"
		sed 's/^/    /' <<<"$out" | head -20
		failed=$((failed + 1))
	fi
done

why=
command -v node >/dev/null || why="node is not installed"
[[ -z $why && ! -x ${CHROMIUM:-/usr/bin/chromium} ]] && why="${CHROMIUM:-/usr/bin/chromium} is missing"
[[ -z $why && ! -d web/node_modules/playwright-core ]] && why="web/node_modules is missing"
if [[ -n $why ]]; then
	echo "SKIP browser checks: $why (run scripts/deps-web.sh)"
	skipped=$((skipped + 3))
else
	for v in $samples; do
		out=$(node tests/web/check_html.js --html "$dir/$v.html" --json "$dir/$v.json" \
			--perfetto "$dir/$v.perfetto.json" 2>&1)
		rc=$?
		sed "s/^\(PASS\|FAIL\) /\1 $v: /" <<<"$out" | grep -E '^(PASS|FAIL)|check_html:'
		p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$out")
		f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$out")
		if [[ -z $p ]]; then p=0 f=1; fi
		((rc != 0 && f == 0)) && f=1
		passed=$((passed + p)) failed=$((failed + f))
	done
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
