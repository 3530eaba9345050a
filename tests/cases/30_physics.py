# SPDX-License-Identifier: MIT
"""
Figures grounded in physics, on the default interpreter:
- N spinning threads (N = 1, 2, 4) share one GIL;
- threads that sleep or block in reads barely touch it;
- a C call that sleeps while holding it (ctypes.PyDLL usleep);
- waits nobody made (no contention) read 0, not the probes' own cost.
Attach mode on workloads already running (steady state), ~1 s windows;
the last two launch.
"""
import gtlib
from suite import (check_detached, check_json, check_spin_physics, check_target,
                   parse_kv, test, tids, with_retry)

WINDOW = 1.0


def spin_run(ctx, interp, n, window=WINDOW, switch=None, extra=()):
    """Start N spinners, trace them for `window` s with -p/-d, stop them."""
    args = ["--threads", n]
    if switch:
        args += ["--switch-interval", switch]
    w = ctx.python(interp, "spin.py", *args)
    ready = parse_kv(w.wait_out(r"^ready ", 30).string)
    spinners = tids(ready["tids"])
    jf = ctx.tmp("spin%d.json" % n)
    starve = gtlib.CpuStarvation(w.pid, spinners)
    g = ctx.attach(w.pid, ["-d", window, "--json", jf, "-q"] + list(extra), quiet=True)
    rc = ctx.finish(g, timeout=window + 60)
    ctx.starved = starve.worst()
    ctx.require(rc == 0, "giltrace -p -d %g exited %s%s" % (window, rc, g.tail()))
    doc = gtlib.load_json(jf)
    check_detached(ctx, w.pid, doc)
    w.close_stdin()
    wrc = w.wait(30, what="spin.py")
    ctx.expect(wrc == 0 and "ok" in w.stdout.split(), "spin.py after tracing: exit %s, output %r" % (wrc, w.stdout[-200:]))
    return doc, spinners, int(ready["main"]), w


def spin_test(n, switch=None):
    def fn(ctx):
        with_retry(ctx, one)

    def one(ctx):
        interp = ctx.env.default
        doc, spinners, main, w = spin_run(ctx, interp, n, switch=switch)
        check_json(ctx, doc)
        check_target(ctx, doc, interp, w.pid)
        check_spin_physics(ctx, doc, spinners, n, duration=WINDOW,
                           switch_s=switch if switch else 0.005)
        m = gtlib.threads_by_tid(doc).get(main)
        if m:
            ctx.expect(m["hold_ns"] + m["wait_ns"] < 0.01 * doc["interval_ns"],
                       "main thread (blocked on stdin) holds %d ns, waits %d ns" % (m["hold_ns"], m["wait_ns"]))
        if n == 1:
            # Nobody asks the lone spinner to drop: it may never release in
            # the window. Seeding from the GIL's own state is what counts
            # its hold from the attach.
            t = gtlib.threads_by_tid(doc).get(spinners[0])
            if t:
                ctx.note("lone spinner: %d acquisitions, hold %.3fs" % (t["acquisitions"], t["hold_ns"] / 1e9))
    return fn


# Non-default switch intervals check that switch_interval_ns is read from
# the target's GIL state. The multi-spinner runs use a long one (20 ms):
# every change of holder costs a hand-off inside drop_gil (FORCE_SWITCHING:
# the old holder waits there until the new one runs), which is neither a
# wait nor a hold; on a loaded 2-CPU VM one hand-off can take a millisecond,
# so fewer switches keep the wait/(wait+hold) physics measurable. The
# interpreter matrix runs the default 5 ms.
test("physics_spin1", budget=90)(spin_test(1, switch=0.002))
test("physics_spin2", budget=90)(spin_test(2, switch=0.02))
test("physics_spin4", budget=90)(spin_test(4, switch=0.02))


@test("physics_sleepers_and_blocked_readers", budget=60)
def sleepers(ctx):
    """Threads in time.sleep or blocked in read(2): hold and wait near zero."""
    interp = ctx.env.default
    w = ctx.python(interp, "sleepers.py", "--sleepers", 2, "--readers", 2)
    r = parse_kv(w.wait_out(r"^ready ", 30).string)
    jf = ctx.tmp("sleepers.json")
    g = ctx.attach(w.pid, ["-d", WINDOW, "--json", jf])
    rc = ctx.finish(g, timeout=WINDOW + 60)
    ctx.require(rc == 0, "giltrace exited %s%s" % (rc, g.tail()))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    iv = doc["interval_ns"]
    ths = gtlib.threads_by_tid(doc)
    for kind in ("sleepers", "readers"):
        for tid in tids(r[kind]):
            t = ths.get(tid, {"hold_ns": 0, "wait_ns": 0, "acquisitions": 0})
            ctx.expect(t["hold_ns"] < 0.01 * iv and t["wait_ns"] < 0.01 * iv,
                       "%s thread %d: hold %.2f ms, wait %.2f ms in %.2fs (expected near zero)" % (
                           kind[:-1], tid, t["hold_ns"] / 1e6, t["wait_ns"] / 1e6, iv / 1e9))
            if kind == "readers":
                ctx.expect(t["acquisitions"] == 0, "blocked reader %d: %d acquisitions" % (tid, t["acquisitions"]))
            else:
                # time.sleep(0.01) in a loop: about 100 wake-ups a second.
                ctx.expect(20 <= t["acquisitions"] * 1e9 / iv <= 150,
                           "sleeper %d: %d acquisitions in %.2fs, expected ~100/s" % (tid, t["acquisitions"], iv / 1e9))
    ctx.expect(doc["gil"]["held_ns"] < 0.05 * iv, "GIL held %.1f%% with only sleepers" % gtlib.pct(doc["gil"]["held_ns"], iv))
    check_detached(ctx, w.pid, doc)
    w.close_stdin()
    ctx.expect(w.wait(20) == 0 and "ok" in w.stdout.split(), "sleepers.py did not end well: %r" % w.stdout[-200:])


@test("physics_pydll_usleep_holds_gil", budget=60)
def pydll(ctx):
    """
    ctypes.PyDLL usleep(200 ms) x3 keeps the GIL: the main thread's holds
    include the sleeps, and the spinner's waits cover them.
    """
    interp = ctx.env.default
    jf = ctx.tmp("pydll.json")
    usec, times = 200000, 3
    r = ctx.giltrace(["-q", "--json", jf, "--", interp.path, gtlib.workload("pydll_sleep.py"),
                      "--usec", usec, "--times", times], timeout=60)
    ctx.require(r.rc == 0, "exit %s%s" % (r.rc, r.tail()))
    kv = parse_kv([l for l in r.stdout.splitlines() if l.startswith("tids ")][0])
    main, spinner = int(kv["main"]), int(kv["spinner"])
    ctx.expect(r.stdout.rstrip().endswith("ok"), "workload output: %r" % r.stdout[-200:])
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    ths = gtlib.threads_by_tid(doc)
    m, s = ths.get(main), ths.get(spinner)
    ctx.require(m and s, "main %d or spinner %d missing from %s" % (main, spinner, sorted(ths)))
    sleep_ns = usec * 1000
    ctx.expect(m["hold"]["max_ns"] >= 0.97 * sleep_ns,
               "main's longest hold %.1f ms, shorter than one %d ms usleep" % (m["hold"]["max_ns"] / 1e6, usec // 1000))
    ctx.expect(m["hold_ns"] >= times * 0.97 * sleep_ns,
               "main holds %.1f ms in all, less than %d x %d ms of usleep" % (m["hold_ns"] / 1e6, times, usec // 1000))
    ctx.expect(s["wait"]["max_ns"] >= 0.9 * sleep_ns,
               "spinner's longest wait %.1f ms does not cover a %d ms usleep" % (s["wait"]["max_ns"] / 1e6, usec // 1000))
    ctx.expect(s["wait_ns"] >= times * 0.9 * sleep_ns,
               "spinner waits %.1f ms in all, less than the %d ms main slept holding the GIL" % (
                   s["wait_ns"] / 1e6, times * usec // 1000))
    # Each usleep is one long hold: [2^27, 2^29) ns holds 134-537 ms.
    h = m["hold"]["log2_hist"]
    ctx.expect(sum(h[27:29]) >= 1, "main's hold log2_hist has nothing in [2^27, 2^29) ns: %s" % h[20:30])
    ctx.expect(doc.get("exit_status") == 0, "exit_status %r" % doc.get("exit_status"))


@test("physics_uncontended_waits_read_zero", budget=60)
def uncontended(ctx):
    """
    One thread releases and retakes the GIL 6,000 times (os.read of
    /dev/zero, time.sleep(0)) while no other thread wants it (main is
    blocked in join): take_gil never finds it held, so every one of those
    waits is 0, and giltrace must read 0, not the probes' own cost. For
    contrast, --uretprobe (timing the acquisition at take_gil's return)
    measures that cost as a wait: its median is recorded (a note), and
    must be above 0, so the check above tells the two apart.
    """
    interp = ctx.env.default
    n = 3000
    argv = [interp.path, gtlib.workload("release.py"), "--spinners", "0", "--n", str(n),
            "--ops", "read,sleep0"]
    p50 = {}
    for mode, extra in (("default", []), ("uretprobe", ["--uretprobe"])):
        jf = ctx.tmp("%s.json" % mode)
        r = ctx.giltrace(["-q", "-o", "/dev/null", "--json", jf] + extra + ["--"] + argv, timeout=60)
        ctx.require(r.rc == 0, "giltrace %s exited %s%s" % (mode, r.rc, r.tail()))
        kv = parse_kv([l for l in r.stdout.splitlines() if l.startswith("tids ")][0])
        rel = gtlib.threads_by_tid(gtlib.load_json(jf)).get(int(kv["releaser"]))
        ctx.require(rel, "%s: releaser %s missing from the JSON" % (mode, kv["releaser"]))
        w = rel["wait"]
        ctx.expect(rel["acquisitions"] >= 2 * n, "%s: releaser acquired %d times, expected >= %d" % (
            mode, rel["acquisitions"], 2 * n))
        p50[mode] = w["p50_ns"]
        if mode == "default":
            # Its first take_gil (thread start) may wait for main: one.
            ctx.expect(w["p99_ns"] == 0 and w["log2_hist"][0] >= w["count"] - 1,
                       "uncontended waits read %d ns (p50), %d ns (p99), %d of %d not 0" % (
                           w["p50_ns"], w["p99_ns"], w["count"] - w["log2_hist"][0], w["count"]))
            ctx.expect(w["sum_ns"] <= w["max_ns"], "uncontended waits sum to %d ns over %d waits" % (
                w["sum_ns"], w["count"]))
    ctx.expect(p50["uretprobe"] > 0, "--uretprobe reads uncontended waits as %d ns: the check cannot "
               "tell a biased wait from an exact one" % p50["uretprobe"])
    ctx.note("median uncontended wait: %d ns exact, %d ns with --uretprobe (its probe's own cost)" % (
        p50["default"], p50["uretprobe"]))
