# SPDX-License-Identifier: MIT
"""
Lifecycle: attach, detach, attach again; giltrace stopped by SIGINT and
SIGTERM; the target killed mid-trace (attach and launch mode). Each ends
with a report, every probe gone from the target, and the target (when it
survives) finishing its work with the right result.
"""
import os
import signal
import time

import gtlib
from suite import (check_detached, check_json, check_spin_physics, parse_kv,
                   modified_gil_code, check_gil_code_restored, test, tids, with_retry)


def spin_target(ctx, n=2, switch=None):
    w = ctx.python(ctx.env.default, "spin.py", "--threads", n, *(["--switch-interval", switch] if switch else []))
    kv = parse_kv(w.wait_out(r"^ready ", 30).string)
    return w, tids(kv["tids"])


def finish_target(ctx, w, n):
    w.close_stdin()
    rc = w.wait(30, what="spin.py")
    results = [l for l in w.stdout.splitlines() if l.startswith("result ")]
    ctx.expect(rc == 0, "target exit %s after tracing" % rc)
    ctx.expect(len(results) == n and all(l.endswith(" ok") for l in results) and w.stdout.rstrip().endswith("ok"),
               "target results wrong: %r" % w.stdout[-300:])
    for l in results:
        iters = int(l.split()[3])
        ctx.expect(iters > 1000, "spinner made only %d iterations: %r" % (iters, l))


@test("lifecycle_attach_detach_attach", budget=60)
def attach_twice(ctx):
    w, sp = spin_target(ctx, 2, switch=0.02)  # see physics_spin2
    for k in (1, 2):
        jf = ctx.tmp("a%d.json" % k)

        def one(ctx):
            starve = gtlib.CpuStarvation(w.pid, sp)
            g = ctx.attach(w.pid, ["-q", "-d", "0.8", "--json", jf], quiet=True)
            rc = ctx.finish(g)
            ctx.starved = starve.worst()
            ctx.require(rc == 0, "attach %d: exit %s%s" % (k, rc, g.tail()))
            doc = gtlib.load_json(jf)
            check_json(ctx, doc, what="attach %d" % k)
            check_spin_physics(ctx, doc, sp, 2, duration=0.8, switch_s=0.02, what="attach %d: " % k)
            check_detached(ctx, w.pid, doc, "after attach %d" % k)
            check_gil_code_restored(ctx, w.pid, ctx.env.default, "after attach %d" % k)
        with_retry(ctx, one)
        ctx.expect(w.poll() is None, "target died during attach %d" % k)
    finish_target(ctx, w, 2)


def stop_by_signal(ctx, sig):
    w, sp = spin_target(ctx, 2)
    jf = ctx.tmp("sig.json")
    g = ctx.attach(w.pid, ["--json", jf])
    live = modified_gil_code(w.pid, ctx.env.default)
    ctx.expect(any(n.startswith("take_gil") for n in live) and any(n.startswith("drop_gil") for n in live),
               "while tracing, no uprobe (modified byte) in the target's take_gil and drop_gil: %s" % live)
    # Let figures accumulate; the stop itself needs no synchronisation.
    time.sleep(0.5)
    g.signal(sig)
    rc = ctx.finish(g, timeout=30)
    ctx.expect(rc == 0, "giltrace exit %s after %s, expected 0%s" % (rc, signal.Signals(sig).name, g.tail()))
    ctx.expect(len(g.stdout.strip().splitlines()) >= 3, "no report on stdout after %s: %r" % (signal.Signals(sig).name, g.stdout[:300]))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    iv = doc.get("interval_ns", 0)
    ctx.expect(0.4e9 <= iv <= 5e9, "interval_ns %.3fs" % (iv / 1e9))
    ths = gtlib.threads_by_tid(doc)
    ctx.expect(all(ths.get(t, {}).get("hold_ns", 0) > 0 for t in sp), "spinners without holds: %s" % sp)
    check_detached(ctx, w.pid, doc)
    check_gil_code_restored(ctx, w.pid, ctx.env.default)
    finish_target(ctx, w, 2)


@test("lifecycle_sigint", budget=60)
def sigint(ctx):
    stop_by_signal(ctx, signal.SIGINT)


@test("lifecycle_sigterm", budget=60)
def sigterm(ctx):
    stop_by_signal(ctx, signal.SIGTERM)


@test("lifecycle_target_killed_attach", budget=60)
def killed_attach(ctx):
    """kill -9 the target mid-trace: giltrace reports up to its death and exits 0."""
    w, sp = spin_target(ctx, 2)
    jf = ctx.tmp("k.json")
    g = ctx.attach(w.pid, ["--json", jf])
    time.sleep(0.4)
    w.signal(signal.SIGKILL)
    w.wait(10)
    rc = ctx.finish(g, timeout=20, what="giltrace after the target's death")
    ctx.expect(rc == 0, "exit %s, expected 0%s" % (rc, g.tail()))
    ctx.expect(g.stdout.strip(), "no report after the target died")
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    iv = doc.get("interval_ns", 0)
    ctx.expect(0.3e9 <= iv <= 5e9, "interval_ns %.3fs" % (iv / 1e9))
    held = doc.get("gil", {}).get("held_ns", 0)
    ctx.expect(held >= 0.9 * iv, "GIL held %.1f%% with 2 spinners until the kill" % gtlib.pct(held, iv))


@test("lifecycle_target_killed_launch", budget=60)
def killed_launch(ctx):
    """Launch mode, the command SIGKILLed from outside: giltrace exits 137 with a report."""
    interp = ctx.env.default
    jf = ctx.tmp("kl.json")
    g = ctx.giltrace_proc(["--json", jf, "--", interp.path, "-u", gtlib.workload("spin.py"), "--threads", "2"])
    kv = parse_kv(g.wait_out(r"^ready ", 60, what="the launched spin.py").string)
    pid = int(kv["main"])
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    rc = ctx.finish(g, timeout=20)
    ctx.expect(rc == 137, "exit %s, expected 137 (128+SIGKILL)%s" % (rc, g.tail()))
    ctx.expect(len(g.stderr.strip().splitlines()) >= 3, "no report on stderr: %r" % g.stderr[-300:])
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    ctx.expect(doc.get("exit_status") == 137, "exit_status %r" % doc.get("exit_status"))
