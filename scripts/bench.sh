#!/bin/bash
# bench.sh - what giltrace costs the program it traces, beside bpftrace.
#
# Installs what is missing (scripts/deps.sh), builds build/giltrace, then
# runs scripts/bench/bench.py, which prints one table from one run:
# workload (cpu, io) x interpreter (pyenv 3.12.1, Debian python3.11) x
# tracer (untraced; the floor: bpftrace with empty actions at giltrace's own
# take_gil entry and drop_gil sites; giltrace; giltrace with its event
# stream on; the equivalent bpftrace script), medians of interleaved rounds
# and the ratio to untraced, plus giltrace's attach time, CPU time, peak RSS
# and collector CPU % over the traced span, and issue 3's goals as measured.
# See docs/performance.md.
#
#   scripts/bench.sh                 5 rounds
#   ROUNDS=9 CPU_ROUNDS=15 scripts/bench.sh   the performance issue's standard
#   WORKLOADS=io PYTHONS=/usr/bin/python3.11 KEEP=/tmp/b scripts/bench.sh
#   VARIANTS=floor,giltrace scripts/bench.sh  fewer rows (untraced always runs)
# Other knobs (CPU_ITER, IO_N, RUN_TIMEOUT, GILTRACE, BPFTRACE): see bench.py.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ "$(id -u)" != 0 ]; then
	echo "bench.sh: run as root: giltrace and bpftrace attach eBPF uprobes" >&2
	exit 1
fi

if [ -f scripts/deps.sh ]; then
	bash scripts/deps.sh >&2
else
	echo "bench.sh: scripts/deps.sh not found; assuming dependencies are installed" >&2
fi

if [ -z "${GILTRACE:-}" ]; then
	mkdir -p build
	echo "bench.sh: building build/giltrace (log: build/build.log)" >&2
	if ! { cmake -S . -B build && make -C build -j2 giltrace; } >build/build.log 2>&1; then
		tail -n 30 build/build.log >&2
		echo "bench.sh: build failed; full log in build/build.log" >&2
		exit 1
	fi
fi

exec /usr/bin/python3 "$ROOT/scripts/bench/bench.py" "$@"
