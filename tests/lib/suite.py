# SPDX-License-Identifier: MIT
"""
suite: test registration, the per-test context, and the checks shared by
several test files (physics of spinning threads, probe clean-up, target
identity).

A test is a function f(ctx) registered with @test(name, budget=seconds).
It raises gtlib.Skip(reason) when it cannot run here, gtlib.Fail(reason)
to stop at once, or records soft failures with ctx.expect(cond, msg); the
test fails when any expectation failed. Every process a test starts
through ctx is killed when the test ends.
"""
import os
import re
import shlex
import shutil
import signal
import tempfile
import time

import gtlib
from gtlib import Fail, Skip, Proc

TESTS = []
ENV = None  # the Env, set by run.py before the case files are imported
TRACING_RX = r"^giltrace: tracing PID (\d+) \(Python (\S+), (\d+) probes\); Ctrl-C to stop$"


class Case:
    def __init__(self, name, fn, budget, group, full_only=False, slow=False):
        self.name, self.fn, self.budget, self.group = name, fn, budget, group
        self.full_only, self.slow = full_only, slow


def test(name, budget=30, full_only=False, slow=False):
    def deco(fn):
        TESTS.append(Case(name, fn, budget, fn.__module__, full_only, slow))
        return fn
    return deco


def add(name, fn, budget=30, group="generated", full_only=False, slow=False):
    TESTS.append(Case(name, fn, budget, group, full_only, slow))


class Env:
    """What every test may need: the binary, interpreters, options."""

    def __init__(self, giltrace, interps, skipped_interps, full, verbose, keep):
        self.giltrace = giltrace
        self.interps = interps
        self.skipped_interps = skipped_interps
        self.full = full
        self.verbose = verbose
        self.keep = keep
        self.default = None
        for want in ((3, 12), (3, 11), (3, 13), (3, 10)):
            for i in interps:
                if i.vt[:2] == want and not i.debian:
                    self.default = i
                    break
            if self.default:
                break
        if not self.default and interps:
            self.default = interps[-1]

    def interp(self, major_minor=None, debian=None):
        for i in self.interps:
            if (major_minor is None or i.vt[:2] == major_minor) and \
               (debian is None or i.debian == debian):
                return i
        return None


class Ctx:
    def __init__(self, env, case):
        self.env = env
        self.case = case
        self.gt = env.giltrace
        self.dir = tempfile.mkdtemp(prefix="gt-%s-" % re.sub(r"[^\w.-]", "_", case.name))
        self.procs = []
        self.failures = []
        self.notes = []

    # ---------------------------------------------------------- bookkeeping
    def expect(self, cond, msg):
        if not cond:
            self.failures.append(msg)
        return bool(cond)

    def require(self, cond, msg):
        if not cond:
            raise Fail(msg)

    def note(self, msg):
        self.notes.append(msg)

    def tmp(self, name):
        return os.path.join(self.dir, name)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                # giltrace first gets SIGINT so it detaches; workloads die.
                if p.argv and p.argv[0] == self.gt:
                    p.signal(signal.SIGINT)
                    try:
                        p.wait(10)
                        continue
                    except Fail:
                        pass
                p.kill()
        if not self.env.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------- processes
    def spawn(self, argv, **kw):
        kw.setdefault("registry", self.procs)
        return Proc(argv, **kw)

    def python(self, interp, script, *args, **kw):
        """Start a workload under interp; stdin is a pipe."""
        return self.spawn([interp.path, "-u", gtlib.workload(script)] + [str(a) for a in args],
                          name="%s[%s]" % (script, interp.label), **kw)

    def gt_argv(self, args):
        """giltrace, GILTRACE_ARGS (e.g. --uretprobe, for comparison runs), args."""
        return [self.gt] + shlex.split(os.environ.get("GILTRACE_ARGS", "")) + [str(a) for a in args]

    def giltrace(self, args, timeout=60, **kw):
        """Run giltrace to completion."""
        return gtlib.run(self.gt_argv(args), timeout=timeout, **kw)

    def giltrace_proc(self, args, **kw):
        return self.spawn(self.gt_argv(args), name="giltrace", **kw)

    def attach(self, pid, args=(), timeout=60, quiet=False):
        """
        giltrace -p PID ARGS, returned once its "tracing" line is on stderr
        (every probe live). With quiet=True (-q) there is no such line and
        the caller must synchronise otherwise.
        """
        g = self.giltrace_proc(list(args) + ["-p", pid], stdin=False)
        if not quiet:
            m = g.wait_err(TRACING_RX, timeout, what="giltrace -p %d" % pid)
            self.expect(int(m.group(1)) == pid, "tracing line names PID %s, not %d" % (m.group(1), pid))
            g.tracing = m
        return g

    def finish(self, g, timeout=60, what="giltrace"):
        rc = g.wait(timeout, what=what)
        return rc


# ------------------------------------------------------------------ shared checks

def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


STARVED = 0.10  # share of the window a spinner may wait for a CPU


def with_retry(ctx, fn, attempts=3):
    """
    Physics on a shared 2-CPU VM is noisy: when fn(ctx) records failed
    expectations, run it again from scratch (up to `attempts` in all). A
    pass after a retry is reported on the PASS line ("retried: ..."), never
    hidden; a final failure says how loaded the machine was. fn sets
    ctx.starved (gtlib.CpuStarvation): when the last attempt failed while
    the spinners waited more than STARVED of the window for a CPU, the test
    is skipped with that reason instead (other helpers' builds and
    benchmarks on a 2-CPU VM), as long as nothing else failed before.
    """
    saved = ctx.failures
    for k in range(1, attempts + 1):
        ctx.failures = []
        ctx.starved = 0.0
        fn(ctx)
        if not ctx.failures:
            break
        if k == attempts:
            if ctx.starved > STARVED and not saved:
                # Not a verdict on giltrace: the spinners could not run.
                raise Skip("CPU-starved machine, physics not measurable: the spinners sat runnable without a CPU "
                           "%.0f%% of the window (load average %s on %d CPUs); last attempt: %s" % (
                               100 * ctx.starved, loadavg(), os.cpu_count() or 0, "; ".join(ctx.failures[:2])))
            ctx.failures.append("(%d attempts; load average %s on %d CPUs; spinners runnable without a CPU %.0f%% of the window)" % (
                attempts, loadavg(), os.cpu_count() or 0, 100 * ctx.starved))
            break
        ctx.note("retried: attempt %d failed (load %s, CPU-starved %.0f%%): %s" % (
            k, loadavg(), 100 * ctx.starved, "; ".join(ctx.failures[:2])))
    ctx.failures = saved + ctx.failures


def parse_kv(line):
    """'ready tids=1,2 main=3' -> {'tids': '1,2', 'main': '3'}"""
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


def tids(s):
    return [int(x) for x in s.split(",") if x]


def check_json(ctx, doc, launch=False, what="JSON"):
    errs = gtlib.validate_json(doc, launch=launch)
    for e in errs[:8]:
        ctx.expect(False, "%s: %s" % (what, e))
    if len(errs) > 8:
        ctx.expect(False, "%s: %d more schema problems" % (what, len(errs) - 8))
    return not errs


def check_target(ctx, doc, interp, pid=None):
    t = doc.get("target", {})
    if pid is not None:
        ctx.expect(t.get("pid") == pid, "target.pid %r != %d" % (t.get("pid"), pid))
    ctx.expect(t.get("python_version") == interp.version,
               "target.python_version %r != %s" % (t.get("python_version"), interp.version))
    exe = t.get("exe") or ""
    ctx.expect(exe and os.path.realpath(exe) == interp.real,
               "target.exe %r is not %s" % (exe, interp.real))
    lib = t.get("library")
    if interp.lib:
        ctx.expect(lib and os.path.realpath(lib) == interp.lib,
                   "target.library %r is not %s" % (lib, interp.lib))
    else:
        ctx.expect(lib is None, "target.library %r should be null (static interpreter)" % (lib,))


def check_probes_against_symbols(ctx, doc, interp):
    """
    Every out-of-line take_gil/drop_gil copy readelf sees carries a probe:
    at its entry, or a few instructions in (giltrace may move a probe onto
    an instruction the kernel emulates), i.e. inside the symbol's range.
    """
    elf = gtlib.interp_elf(interp)
    syms = gtlib.gil_symbols(elf)
    if not syms:
        ctx.expect(False, "readelf finds no take_gil/drop_gil in %s or its debug file" % elf)
        return
    probes = doc.get("target", {}).get("probes", [])
    offs = []
    for p in probes:
        try:
            if os.path.realpath(p.get("file", "")) == os.path.realpath(elf):
                offs.append(int(p.get("offset", -1)))
        except (TypeError, ValueError):
            pass
    for name, (va, size) in sorted(syms.items()):
        off = gtlib.vaddr_to_offset(elf, va)
        ctx.expect(any(off <= o < off + max(size, 1) for o in offs),
                   "no probe in %s (%s vaddr 0x%x, file offsets 0x%x-0x%x); probes: %s" % (
                       name, os.path.basename(elf), va, off, off + size,
                       ", ".join("%s@0x%x" % (p.get("symbol"), p.get("offset", 0)) for p in probes[:12])))


def check_spin_physics(ctx, doc, spinner_tids, n, duration=None, switch_s=None, what=""):
    """
    N spinners share one GIL: it is held nearly all the time, the holds add
    up to the traced time, and each spinner waits (N-1)/N of it.
    """
    iv = doc.get("interval_ns", 0)
    ctx.require(iv > 0, "%sinterval_ns is %r" % (what, iv))
    if duration:
        ctx.expect(0.9 * duration * 1e9 <= iv <= duration * 1e9 * 1.25 + 0.1e9,
                   "%sinterval_ns %.3fs for -d %.2f" % (what, iv / 1e9, duration))
    held = doc["gil"]["held_ns"]
    ctx.expect(held >= 0.95 * iv, "%sGIL held %.1f%% of the traced time, expected >= 95%%" % (
        what, gtlib.pct(held, iv)))
    ctx.expect(held <= 1.01 * iv, "%sGIL held %.1f%% of the traced time (> 100%%)" % (what, gtlib.pct(held, iv)))
    ths = gtlib.threads_by_tid(doc)
    sum_hold = sum(t.get("hold_ns", 0) for t in doc["threads"])
    ctx.expect(abs(sum_hold - iv) <= 0.05 * iv,
               "%ssum of holds %.3fs vs traced time %.3fs (%.1f%%), expected within 5%%" % (
                   what, sum_hold / 1e9, iv / 1e9, gtlib.pct(sum_hold, iv)))
    acq = sum(t.get("acquisitions", 0) for t in doc["threads"])
    if doc.get("threads_total") == len(doc["threads"]):
        ctx.expect(doc["gil"]["acquisitions"] == acq,
                   "%sgil.acquisitions %d != sum over threads %d" % (what, doc["gil"]["acquisitions"], acq))
    expect = (n - 1.0) / n
    for tid in spinner_tids:
        t = ths.get(tid)
        if not ctx.expect(t is not None, "%sspinner %d missing from threads %s" % (what, tid, sorted(ths))):
            continue
        w, h = t["wait_ns"], t["hold_ns"]
        r = w / float(w + h) if w + h else float("nan")
        ctx.expect(expect - 0.10 <= r <= expect + 0.05,
                   "%sspinner %d: wait/(wait+hold) = %.3f, expected %.3f (a bit below is fine)" % (
                       what, tid, r, expect))
        # The rest is time inside drop_gil: with FORCE_SWITCHING a holder
        # asked to drop waits there until another thread has taken the GIL
        # (measured here with bpftrace: ~5% of the time at 5 ms, 2 spinners;
        # more at shorter switch intervals). Neither a wait nor a hold.
        ctx.expect(w + h >= 0.80 * iv, "%sspinner %d: wait+hold %.3fs covers only %.1f%% of %.3fs" % (
            what, tid, (w + h) / 1e9, gtlib.pct(w + h, iv), iv / 1e9))
    si = doc.get("switch_interval_ns", 0)
    if switch_s is not None:
        ctx.expect(si == int(round(switch_s * 1e9)),
                   "%sswitch_interval_ns %r, the target set %g s" % (what, si, switch_s))
    if n >= 2 and si:
        # Holds last about one switch interval: the waiter's timed wait
        # expires and asks the holder to drop (FORCE_SWITCHING makes every
        # such drop a change of holder).
        ratio = acq / (iv / float(si))
        ctx.expect(0.4 <= ratio <= 2.5, "%s%d acquisitions in %.3fs at a %.1f ms switch interval (%.2f x expected)" % (
            what, acq, iv / 1e9, si / 1e6, ratio))
        hs = doc["gil"]["holder_switches"]
        ctx.expect(hs >= 0.8 * acq and hs <= acq, "%sholder_switches %d for %d acquisitions" % (what, hs, acq))
        for tid in spinner_tids:
            t = ths.get(tid)
            if t and t["hold"]["count"] >= 10:
                p50 = t["hold"]["p50_ns"]
                ctx.expect(si / 4.0 <= p50 <= si * 4.0, "%sspinner %d: hold p50 %.2f ms, switch interval %.2f ms" % (
                    what, tid, p50 / 1e6, si / 1e6))


def check_detached(ctx, pid, doc, what="after giltrace exit"):
    """
    No probe byte is left modified in the live target. Uprobes live on the
    file (inode), so a system-wide probe by another tracer running on the
    machine at the same time (bpftrace -c, perf probe...) also writes int3
    into our target; when a fresh, untraced process of the same interpreter
    shows the same modified bytes, the check is inconclusive, not failed.
    """
    if not os.path.exists("/proc/%d" % pid):
        return
    probes = doc.get("target", {}).get("probes", []) if doc else []
    bad = gtlib.leftover_probes(pid, probes)
    for _ in range(10):
        if not bad:
            return
        time.sleep(0.05)  # unregistration may lag the exit a little
        bad = gtlib.leftover_probes(pid, probes)
    exe = doc.get("target", {}).get("exe")
    if exe and os.access(exe, os.X_OK):
        c = ctx.spawn([exe, "-c", "import sys; print('control'); sys.stdout.flush(); sys.stdin.readline()"], name="control")
        try:
            c.wait_out("^control$", 20)
            other = gtlib.leftover_probes(c.pid, probes)
        finally:
            c.kill()
        if other:
            ctx.note("%s: probe bytes modified, but also in an untraced process (another tracer on the machine): %s" % (
                what, "; ".join(other[:2])))
            return
    ctx.expect(False, "%s, probes still in the target: %s" % (what, "; ".join(bad[:4])))


def gil_ranges(interp):
    """[(name, file, file offset, size)] of the GIL functions, from readelf."""
    elf = gtlib.interp_elf(interp)
    return [(n, elf, gtlib.vaddr_to_offset(elf, va), size)
            for n, (va, size) in sorted(gtlib.gil_symbols(elf).items())]


def modified_gil_code(pid, interp):
    """{function: [file offsets]} of GIL-function bytes the kernel changed (uprobes)."""
    out = {}
    for name, elf, off, size in gil_ranges(interp):
        d = gtlib.code_diff(pid, elf, off, size)
        if d:
            out[name] = d
    return out


def _control_process(ctx, exe):
    c = ctx.spawn([exe, "-c", "import sys; print('control'); sys.stdout.flush(); sys.stdin.readline()"], name="control")
    c.wait_out("^control$", 20)
    return c


def check_gil_code_restored(ctx, pid, interp, what="after giltrace exited"):
    """
    No byte of take_gil/drop_gil differs from the file in the live target.
    As in check_detached, bytes also modified in a fresh untraced process
    belong to another tracer's system-wide probes: inconclusive, noted.
    """
    left = modified_gil_code(pid, interp)
    for _ in range(10):
        if not left:
            return
        time.sleep(0.05)
        left = modified_gil_code(pid, interp)
    c = _control_process(ctx, interp.path)
    try:
        other = modified_gil_code(c.pid, interp)
    finally:
        c.kill()
    mine = dict((n, [o for o in offs if o not in other.get(n, [])]) for n, offs in left.items())
    mine = dict((n, o) for n, o in mine.items() if o)
    if not mine:
        ctx.note("%s: GIL code modified, but also in an untraced process (another tracer): %s" % (what, left))
        return
    ctx.expect(False, "%s, GIL-function bytes still modified in the target (file offsets): %s" % (what, mine))
