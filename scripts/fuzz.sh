#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fuzz.sh [SECONDS] - build the trace-file reader fuzzer
# (tests/fuzz/fuzz_trace_reader.c: clang's libFuzzer with ASan and UBSan)
# and run it for SECONDS (default 60) from a seed corpus of small valid
# traces written by the real writer. Not part of scripts/test.sh.
# Needs clang and libclang-rt-14-dev (Debian 12), libzstd-dev, libjansson-dev.
# Crashes are saved as $OUT/crash-*; re-run one with
#   $OUT/fuzz_trace_reader $OUT/crash-...
set -euo pipefail

secs=${1:-60}
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${FUZZ_OUT:-$ROOT/build/fuzz}
CC=${CC_FUZZ:-clang}
mkdir -p "$OUT/corpus" "$OUT/seeds"

CFLAGS=(-std=c11 -g -O1 -D_GNU_SOURCE -DGILTRACE_VERSION='"fuzz"'
	-I"$ROOT/include" -I"$ROOT/src")
SRC=("$ROOT/src/trace_file.c" "$ROOT/src/timeline.c" "$ROOT/src/model.c")
LIBS=(-ljansson -lzstd)

"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined \
	"$ROOT/tests/fuzz/fuzz_trace_reader.c" "${SRC[@]}" "${LIBS[@]}" \
	-o "$OUT/fuzz_trace_reader"
"$CC" "${CFLAGS[@]}" "$ROOT/tests/fuzz/make_corpus.c" "${SRC[@]}" \
	"${LIBS[@]}" -o "$OUT/make_corpus"
"$OUT/make_corpus" "$OUT/seeds"

echo "fuzz.sh: running for ${secs}s (corpus $OUT/corpus)"
"$OUT/fuzz_trace_reader" -max_total_time="$secs" -max_len=16384 \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-dict="$ROOT/tests/fuzz/trace.dict" -artifact_prefix="$OUT/" \
	"$OUT/corpus" "$OUT/seeds"
