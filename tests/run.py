#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
giltrace's integration suite: real eBPF, real CPython processes.

    tests/run.py [--giltrace PATH] [-k REGEX] [--list] [--full] [-v] [--keep]

Discovers the CPython interpreters on the machine, runs every test case in
tests/cases/*.py one after the other (the physics tests must not share the
2 CPUs with each other) and prints one line per test:

    PASS name (1.2s)
    FAIL name (3.4s): reason
    SKIP name: reason

and last `N passed, N failed, N skipped`. Exit status 1 if any failed.
GILTRACE_FULL=1 (or --full) adds the slow variants: CPython's threading
tests and the bpftrace cross-check on every interpreter.
Needs root (eBPF), like giltrace.
"""
import argparse
import glob
import importlib
import os
import re
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(HERE, "cases"))

import gtlib  # noqa: E402
import suite  # noqa: E402
from gtlib import Fail, Skip  # noqa: E402


class Budget(Exception):
    pass


def _alarm(signum, frame):
    raise Budget()


def load_cases():
    for f in sorted(glob.glob(os.path.join(HERE, "cases", "*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(f))[0])


def default_signals():
    """
    A suite started as a background job of a non-interactive shell
    (`scripts/test.sh &`) inherits SIGINT and SIGQUIT ignored, and so would
    every process it starts: CPython's own test_threading then hangs
    (its interrupt_main tests wait for a SIGINT that never comes), and a
    shell may not trap an ignored signal. A handler here is reset to the
    default across exec, so the tests' processes start as from a terminal.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def main():
    default_signals()
    ap = argparse.ArgumentParser(description="giltrace integration tests")
    ap.add_argument("--giltrace", default=os.environ.get("GILTRACE", os.path.join(gtlib.REPO, "build", "giltrace")))
    ap.add_argument("-k", dest="pattern", help="only tests whose name matches this regex")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--full", action="store_true", default=os.environ.get("GILTRACE_FULL") == "1",
                    help="also the slow variants (same as GILTRACE_FULL=1)")
    ap.add_argument("-v", "--verbose", action="store_true", help="notes of passing tests, tracebacks")
    ap.add_argument("--keep", action="store_true", help="keep each test's temporary directory")
    opts = ap.parse_args()

    t_start = time.monotonic()
    interps, skipped = gtlib.discover_interpreters()
    env = suite.Env(os.path.abspath(opts.giltrace), interps, skipped, opts.full, opts.verbose, opts.keep)
    suite.ENV = env
    load_cases()

    cases = [c for c in suite.TESTS if not opts.pattern or re.search(opts.pattern, c.name)]
    if opts.list:
        for c in cases:
            print("%-44s budget %3ds%s" % (c.name, c.budget, "  (full only)" if c.full_only else ""))
        return 0

    print("giltrace: %s" % env.giltrace)
    print("interpreters tested (%d):" % len(interps))
    for i in interps:
        print("  %-12s %s%s%s" % (i.label, i.path,
                                  "" if i.path == i.real else " -> " + i.real,
                                  "  [default]" if i is env.default else ""))
    print("interpreter candidates skipped (%d):" % len(skipped))
    for path, why in skipped:
        print("  %s: %s" % (path, why))
    print("mode: %s" % ("full (GILTRACE_FULL=1)" if env.full else
                        "quick (slow variants on the default interpreter only; GILTRACE_FULL=1 for all)"))
    sys.stdout.flush()

    have_binary = os.access(env.giltrace, os.X_OK)
    if os.geteuid() != 0:
        print("not root: giltrace needs root (or CAP_BPF+CAP_PERFMON) to trace")
    passed = failed = skipped_n = 0
    results = []
    signal.signal(signal.SIGALRM, _alarm)
    for c in cases:
        if c.full_only and not env.full:
            status, why, dt = "SKIP", "slow variant: set GILTRACE_FULL=1", 0.0
        elif not have_binary and c.name != "binary":
            status, why, dt = "SKIP", "no giltrace binary at %s" % env.giltrace, 0.0
        else:
            status, why, dt, notes = run_case(env, c)
            if status == "PASS" and notes:
                shown = notes if env.verbose or c.slow else [n for n in notes if n.startswith("retried")]
                why = "; ".join(shown)
        if status == "PASS":
            passed += 1
            line = "PASS %s (%.1fs)%s" % (c.name, dt, (": " + why) if why else "")
        elif status == "FAIL":
            failed += 1
            line = "FAIL %s (%.1fs): %s" % (c.name, dt, why)
        else:
            skipped_n += 1
            line = "SKIP %s: %s" % (c.name, why)
        print(line)
        sys.stdout.flush()
        results.append((c.name, status, dt))
    total = time.monotonic() - t_start
    slow = sorted(results, key=lambda r: -r[2])[:5]
    print("slowest: " + ", ".join("%s %.1fs" % (n, d) for n, s, d in slow))
    print("total time %.1fs" % total)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped_n))
    return 1 if failed else 0


def run_case(env, case):
    ctx = suite.Ctx(env, case)
    t0 = time.monotonic()
    status, why = "PASS", ""
    signal.alarm(int(case.budget))
    try:
        case.fn(ctx)
        signal.alarm(0)
        if ctx.failures:
            status = "FAIL"
            why = "; ".join(ctx.failures[:6])
            if len(ctx.failures) > 6:
                why += "; (+%d more)" % (len(ctx.failures) - 6)
    except Skip as e:
        signal.alarm(0)
        status, why = "SKIP", str(e)
    except Fail as e:
        signal.alarm(0)
        status = "FAIL"
        why = "; ".join([str(e)] + ctx.failures[:4])
    except Budget:
        status = "FAIL"
        why = "over its %ds budget" % case.budget
        if ctx.failures:
            why += "; " + "; ".join(ctx.failures[:4])
        for p in ctx.procs:
            if p.poll() is None:
                why += " [%s still running]%s" % (p.name, p.tail(3))
    except Exception as e:  # a bug in the test itself
        signal.alarm(0)
        status = "FAIL"
        why = "test error: %s: %s" % (type(e).__name__, e)
        if env.verbose:
            traceback.print_exc()
    finally:
        signal.alarm(0)
        try:
            ctx.cleanup()
        except Exception as e:  # pragma: no cover
            why += " (cleanup: %s)" % e
    return status, why, time.monotonic() - t0, ctx.notes


if __name__ == "__main__":
    sys.exit(main())
