#!/bin/bash
# demo.sh - install what is missing, build giltrace, and trace the bundled
# demo workload (examples/demo.py: three spinning threads, three I/O threads,
# about 3 seconds). The demo's own output comes first, giltrace's report
# (on stderr) follows. Run as root; PY=/path/to/python picks the interpreter.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: run as root: giltrace attaches eBPF uprobes (sudo $0)" >&2
	exit 1
fi

if [ -f scripts/deps.sh ]; then
	bash scripts/deps.sh
else
	echo "demo.sh: scripts/deps.sh not found; assuming dependencies are installed" >&2
fi

mkdir -p build
echo "demo.sh: building build/giltrace (log: build/build.log)"
if ! { cmake -S . -B build && make -C build -j2 giltrace; } >build/build.log 2>&1; then
	tail -n 30 build/build.log >&2
	echo "demo.sh: build failed; full log in build/build.log" >&2
	exit 1
fi

# The interpreter: $PY, else pyenv's newest 3.12, else Debian's python3.
pick_python() {
	local root=${PYENV_ROOT:-$HOME/.pyenv} d
	if [ -n "${PY:-}" ]; then
		echo "$PY"
		return
	fi
	for d in $(ls -d "$root"/versions/3.12* 2>/dev/null | sort -rV); do
		if [ -x "$d/bin/python3.12" ]; then
			echo "$d/bin/python3.12"
			return
		fi
	done
	echo /usr/bin/python3
}
PY=$(pick_python)

echo "demo.sh: build/giltrace --stacks -- $PY examples/demo.py"
echo
rc=0
build/giltrace --stacks -- "$PY" examples/demo.py || rc=$?
echo
echo "Try also: --hist (histograms), -p PID -d 5 (a running process), --json FILE," \
	"--folded FILE (flame graphs), --native (C frames), --html FILE," \
	"--mode contention (cheapest); scripts/bench.sh (what tracing costs)"
exit $rc
