#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps-web.sh - what giltrace's HTML report and its browser tests need, only
# what is missing (idempotent, quiet, fast when all is there):
#
#   - Debian's chromium (the headless browser of tests/web/check_html.js)
#     and nodejs/npm, with apt;
#   - the npm packages of web/package.json, installed from the committed
#     web/package-lock.json (npm ci): echarts (inlined into --html reports;
#     the build copies it to build/assets), playwright-core and speedscope
#     (tests only). Redone only when the lockfile changed since.
#
# Nothing is downloaded at run time: giltrace --html reads the assets the
# build copied. Run the build (cmake) after this script so they are copied.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
WEB=$HERE/web
STAMP=$WEB/node_modules/.giltrace-lock.sha256

missing=()
for p in chromium nodejs npm; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] && continue
	# node and npm may come from elsewhere (e.g. nodesource): fine if on PATH
	[[ $p == nodejs ]] && command -v node >/dev/null && continue
	[[ $p == npm ]] && command -v npm >/dev/null && continue
	missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps-web.sh: missing packages (${missing[*]}) and not root: run as root or install them" >&2
		exit 1
	fi
	echo "deps-web.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" &&
      -f $WEB/node_modules/echarts/dist/echarts.min.js ]]; then
	exit 0
fi
echo "deps-web.sh: npm ci in web/" >&2
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "$want" >"$STAMP"
