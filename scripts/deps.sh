#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh - install what giltrace's build and test suite need on Debian 12,
# only what is missing: one `apt-get update` when something is, then one
# quiet install. Idempotent; a no-op (and fast) when all is present.
set -euo pipefail

PKGS=(clang llvm libbpf-dev bpftool libelf-dev libdw-dev elfutils bpftrace
      libjansson-dev libcmocka-dev libcapstone-dev libzstd-dev zstd pkg-config
      cmake make gcc binutils python3 python3.11 python3.11-dbg util-linux
      protobuf-c-compiler libprotobuf-c-dev golang-github-google-pprof-dev
      zlib1g-dev golang-go)

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done

web() {
	# The HTML report's chart library and the browser tests (chromium,
	# npm packages from the committed lockfile).
	"$(dirname "$0")/deps-web.sh"
}

if ((${#missing[@]} == 0)); then
	web
	exit 0
fi

echo "deps.sh: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages (${missing[*]}) and not root: run as root or install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
web
