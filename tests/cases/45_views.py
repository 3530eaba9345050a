# SPDX-License-Identifier: MIT
"""
The event stream and its views (issue 4), on the default interpreter:

- the per-thread figures of the event stream (Perfetto slices: every wait
  and hold the kernel sent as a record) agree with the kernel's in-kernel
  aggregates stored in the same trace (the JSON): sums, counts, maxima and
  log2 histograms, exactly; flows = holder switches; a terminal timeline
  lane per thread. Launch mode (clean ends) and attach mode (waits and
  holds open at both ends);
- a two-thread ping-pong: holds strictly alternate, one change of holder
  per turn, as the workload's own count of hand-offs says;
- record then report is the direct form: the direct form's own trace file
  (hard-linked while it runs) rendered by `giltrace report` gives the same
  JSON, text, Perfetto and HTML, byte for byte; `giltrace record --json`
  must not silently drop the option;
- `giltrace report` without root;
- truncated, corrupt and half-written (killed) trace files: one line on
  stderr, never a crash;
- the HTML report in headless Chromium (tests/web/check_html.js) and the
  Perfetto file (tests/lib/perfetto_check.py) on a real trace; with
  --stacks: the flame graphs and the Perfetto slices' stack args;
- `giltrace record` memory stays bounded however many cycles.

Every step waits for a real event (a workload's line, giltrace's tracing
line, a process's exit, the first frame on disk: polled), never a sleep.
"""
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from decimal import Decimal

import gtlib
import perfetto_check
from gtlib import Fail, Skip
from suite import TRACING_RX, check_gil_code_restored, check_json, parse_kv, test, tids

HOLD, WAIT = perfetto_check.HOLD, perfetto_check.WAIT
WEB = os.path.join(gtlib.REPO, "web")
CHECK_HTML = os.path.join(gtlib.TESTS, "web", "check_html.js")
PERFETTO_CHECK = os.path.join(gtlib.TESTS, "lib", "perfetto_check.py")
NOBODY = 65534


# ------------------------------------------------------------------ helpers

def load_perfetto(ctx, path):
    try:
        with open(path) as f:
            return json.load(f, parse_float=Decimal)
    except (OSError, ValueError) as e:
        raise Fail("Perfetto file %s: %s" % (path, e))


def pf_ns(v):
    """A Perfetto µs figure as the exact ns giltrace wrote (docs/views.md)."""
    return perfetto_check.rns(v)


class Stream:
    """What the Perfetto file says, per thread, in ns from t0."""

    def __init__(self, pf):
        self.md = pf.get("metadata") or {}
        self.holds, self.waits, self.abandoned = {}, {}, {}
        self.flows_s, self.flows_f = {}, {}
        self.lanes = {}
        for e in pf.get("traceEvents", []):
            ph, name = e.get("ph"), e.get("name")
            if ph == "X":
                b = pf_ns(e["ts"])
                d = pf_ns(Decimal(e["ts"]) + Decimal(e["dur"])) - b
                a = e.get("args") or {}
                s = (b, d, a)
                if name == HOLD:
                    self.holds.setdefault(e["tid"], []).append(s)
                elif name == WAIT:
                    self.waits.setdefault(e["tid"], []).append(s)
                elif name.startswith(WAIT):
                    self.abandoned.setdefault(e["tid"], []).append(s)
            elif ph == "s":
                self.flows_s[e["id"]] = (e["tid"], pf_ns(e["ts"]))
            elif ph == "f":
                self.flows_f[e["id"]] = (e["tid"], pf_ns(e["ts"]))
            elif ph == "M" and name == "thread_name":
                self.lanes[e["tid"]] = (e.get("args") or {}).get("name")
        for v in list(self.holds.values()) + list(self.waits.values()):
            v.sort(key=lambda s: s[0])

    def flows(self):
        """[(from_tid, to_tid, start_ns, finish_ns)] in time order."""
        out = []
        for i, (t, ts) in self.flows_s.items():
            if i in self.flows_f:
                out.append((t, self.flows_f[i][0], ts, self.flows_f[i][1]))
        out.sort(key=lambda f: f[2])
        return out


def slot(d):
    """json.md's log2_hist slot of a duration in ns."""
    return 0 if d < 2 else min(d.bit_length() - 1, 40)


def hist(durs):
    h = [0] * 41
    for d in durs:
        h[slot(d)] += 1
    while h and not h[-1]:
        h.pop()
    return h


def pad(h, n=41):
    return list(h) + [0] * (n - len(h))


def check_stream_vs_kernel(ctx, doc, pf, attach, what=""):
    """
    The event stream (the Perfetto file, built from the cycle records)
    against the kernel's aggregates (the JSON, from the trace file's
    metadata), thread by thread. Exact in launch mode; in attach mode a
    hold already going on when tracing began is in the stream (from the
    GIL's own state) and a wait begun before it is clipped to t0.
    """
    errors, stats = perfetto_check.check(pf, doc)
    for e in errors[:10]:
        ctx.expect(False, "%sperfetto_check: %s" % (what, e))
    if len(errors) > 10:
        ctx.expect(False, "%sperfetto_check: %d more problems" % (what, len(errors) - 10))
    ctx.expect(not stats.get("sums_skipped_truncated"), "%sPerfetto file says the timeline was truncated" % what)
    ctx.expect(stats.get("threads_summed", 0) == len(doc["threads"]),
               "%sperfetto_check summed %d threads, the JSON has %d" % (
                   what, stats.get("threads_summed", 0), len(doc["threads"])))
    st = Stream(pf)
    ctx.expect(st.md.get("records_lost") == 0, "%srecords lost: %r" % (what, st.md.get("records_lost")))
    ctx.expect(doc.get("dropped_events") == 0, "%sdropped_events %r" % (what, doc.get("dropped_events")))
    for t in doc["threads"]:
        tid = t["tid"]
        w = "%sthread %d: " % (what, tid)
        holds = st.holds.get(tid, [])
        waits = st.waits.get(tid, [])
        # Every slice's own figure is its length.
        for b, d, a in holds:
            if a.get("hold_ns") != d:
                ctx.expect(False, w + "hold slice at %d ns lasts %d ns, its hold_ns says %r" % (b, d, a.get("hold_ns")))
                break
        for b, d, a in waits:
            if a.get("wait_ns") != d:
                ctx.expect(False, w + "wait slice at %d ns lasts %d ns, its wait_ns says %r" % (b, d, a.get("wait_ns")))
                break
        at_start = [s for s in holds if s[2].get("held_when_tracing_began")]
        ctx.expect(attach or not at_start, w + "a hold 'held when tracing began' in launch mode")
        # Acquisitions: one hold slice each. A hold going on when tracing
        # began counts as one too (giltrace.bpf.c drop_enter, AT_START;
        # collector__seed_holder), as json.md's hold.count rule implies.
        ctx.expect(len(holds) == t["acquisitions"], w + "%d hold slices (%d held at start), the kernel counted %d acquisitions" % (
            len(holds), len(at_start), t["acquisitions"]))
        # Completed holds: count, sum, max and log2 histogram, exactly.
        done = [d for b, d, a in holds if not a.get("open_at_end")]
        kh = t["hold"]
        ctx.expect(len(done) == kh["count"], w + "%d completed hold slices, hold.count %d" % (len(done), kh["count"]))
        ctx.expect(sum(done) == kh["sum_ns"], w + "completed holds sum to %d ns in the stream, hold.sum_ns %d" % (
            sum(done), kh["sum_ns"]))
        ctx.expect((max(done) if done else 0) == kh["max_ns"], w + "longest hold %d ns in the stream, hold.max_ns %d" % (
            max(done) if done else 0, kh["max_ns"]))
        ctx.expect(pad(hist(done)) == pad(kh["log2_hist"]), w + "hold log2 histogram %s in the stream, %s in the kernel" % (
            hist(done), kh["log2_hist"]))
        open_h = [d for b, d, a in holds if a.get("open_at_end")]
        ctx.expect(sum(open_h) == t["open_hold_ns"], w + "open hold %d ns in the stream, open_hold_ns %d" % (
            sum(open_h), t["open_hold_ns"]))
        # Completed waits: a wait of 0 ns has no slice (it did not wait),
        # and lands in slot 0 of the histogram.
        wdone = [d for b, d, a in waits if not a.get("open_at_end")]
        kw = t["wait"]
        zero = kw["count"] - len(wdone)
        ctx.expect(zero >= 0, w + "%d completed wait slices, wait.count only %d" % (len(wdone), kw["count"]))
        ctx.expect(sum(wdone) == kw["sum_ns"], w + "completed waits sum to %d ns in the stream, wait.sum_ns %d" % (
            sum(wdone), kw["sum_ns"]))
        ctx.expect((max(wdone) if wdone else 0) == kw["max_ns"], w + "longest wait %d ns in the stream, wait.max_ns %d" % (
            max(wdone) if wdone else 0, kw["max_ns"]))
        hw, kwh = pad(hist(wdone)), pad(kw["log2_hist"])
        ctx.expect(hw[1:] == kwh[1:] and kwh[0] - hw[0] == zero,
                   w + "wait log2 histogram %s in the stream (+%d waits of 0 ns), %s in the kernel" % (
                       hist(wdone), zero, kw["log2_hist"]))
        open_w = [d for b, d, a in waits if a.get("open_at_end")]
        ctx.expect(sum(open_w) == t["open_wait_ns"], w + "open wait %d ns in the stream, open_wait_ns %d" % (
            sum(open_w), t["open_wait_ns"]))
        ab = st.abandoned.get(tid, [])
        ctx.expect(len(ab) == t["waits_abandoned"] and sum(d for b, d, a in ab) == t["waits_abandoned_ns"],
                   w + "%d abandoned waits (%d ns) in the stream, %d (%d ns) in the kernel" % (
                       len(ab), sum(d for b, d, a in ab), t["waits_abandoned"], t["waits_abandoned_ns"]))
        lane = st.lanes.get(tid) or ""
        ctx.expect(lane == "%d %s" % (tid, t["name"]), w + "Perfetto track named %r, expected '%d %s'" % (lane, tid, t["name"]))
    # Process-wide: acquisitions and holder switches.
    nh = sum(len(v) for v in st.holds.values())
    if doc.get("threads_total") == len(doc["threads"]):
        ctx.expect(nh == doc["gil"]["acquisitions"], "%s%d hold slices, gil.acquisitions %d" % (
            what, nh, doc["gil"]["acquisitions"]))
    flows = st.flows()
    ctx.expect(len(flows) == st.md.get("holder_switches"), "%s%d flows, Perfetto metadata holder_switches %r" % (
        what, len(flows), st.md.get("holder_switches")))
    ctx.expect(all(a != b for a, b, s, f in flows), "%sa flow from a thread to itself" % what)
    # The kernel counts a change of holder at each acquisition (the hold
    # going on at attach is the first one, with no switch): the same
    # changes the stream shows, in both modes.
    hs = doc["gil"]["holder_switches"]
    ctx.expect(len(flows) == hs, "%s%d flows (changes of holder in the stream), the kernel counted %d holder switches" % (
        what, len(flows), hs))
    check_blocked_by(ctx, doc, what)
    return st


def check_blocked_by(ctx, doc, what=""):
    """Each waiter's parts add up to its wait_ns; holders are known threads."""
    bb = doc.get("blocked_by")
    if not ctx.expect(isinstance(bb, list), "%sno blocked_by in a JSON with the event stream on" % what):
        return
    known = set(t["tid"] for t in doc["threads"])
    for t in doc["threads"]:
        parts = [b for b in bb if b["waiter"] == t["tid"]]
        s = sum(b["wait_ns"] for b in parts)
        ctx.expect(s == t["wait_ns"], "%sthread %d: blocked_by parts sum to %d ns, wait_ns %d" % (
            what, t["tid"], s, t["wait_ns"]))
        for b in parts:
            ctx.expect(b["holder"] != t["tid"], "%sthread %d waited behind itself" % (what, t["tid"]))
            ctx.expect(b["holder"] is None or b["holder"] in known or doc.get("threads_total", 0) > len(known),
                       "%sthread %d waited behind unknown holder %r" % (what, t["tid"], b["holder"]))
            ctx.expect(b["count"] >= 1 and b["wait_ns"] >= 0, "%sblocked_by entry %r" % (what, b))


TL_HEAD = re.compile(r"^GIL timeline\s+(\S+) traced, one column = (\S+)$")
TL_LANE = re.compile(r"^\s*(\d+) (.*?)\s*\|(.*)\|$")


def parse_dur(s):
    m = re.match(r"^([\d.]+)(ns|µs|us|ms|s)$", s)
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]


def check_timeline_text(ctx, text, doc, what=""):
    """The terminal timeline: a lane per thread, 80 columns, legend, no colour."""
    lines = text.splitlines()
    head = [i for i, l in enumerate(lines) if TL_HEAD.match(l)]
    if not ctx.expect(len(head) == 1, "%s%d 'GIL timeline' headers in the output" % (what, len(head))):
        return {}, None
    m = TL_HEAD.match(lines[head[0]])
    bucket = parse_dur(m.group(2))
    lanes = {}
    for l in lines[head[0] + 1:]:
        lm = TL_LANE.match(l)
        if lm:
            lanes[int(lm.group(1))] = (lm.group(2), lm.group(3))
            ctx.expect(len(l) <= 80, "%stimeline lane wider than 80 columns (not a tty): %r" % (what, l))
    want = set(t["tid"] for t in doc["threads"])
    ctx.expect(set(lanes) == want, "%stimeline lanes %s, JSON threads %s" % (what, sorted(lanes), sorted(want)))
    names = dict((t["tid"], t["name"]) for t in doc["threads"])
    for tid, (name, cells) in lanes.items():
        ctx.expect(name and names.get(tid, "").startswith(name.rstrip(".…")),
                   "%slane %d labelled %r, thread name %r" % (what, tid, name, names.get(tid)))
        ctx.expect(set(cells) <= set("#- ?~"), "%slane %d has cells %r" % (what, tid, sorted(set(cells))))
    ctx.expect(any("holds the GIL" in l and "waits for it" in l for l in lines), "%sno timeline legend" % what)
    ctx.expect("\x1b[" not in text, "%scolour escapes in output that is not a tty" % what)
    return dict((tid, cells) for tid, (name, cells) in lanes.items()), bucket


def spinners_from(out):
    kv = parse_kv([l for l in out.splitlines() if l.startswith("ready ")][0])
    return tids(kv["tids"]), int(kv["main"])


def report(ctx, path, args=(), **kw):
    return ctx.giltrace(["report", path] + list(args), timeout=60, **kw)


def one_line_error(ctx, r, what, path=None, keywords=()):
    """rc 1..127 (no signal), one stderr line 'giltrace: ...', no stdout."""
    lines = [l for l in r.stderr.splitlines()]
    ok = ctx.expect(r.rc is not None and 0 < r.rc < 128,
                    "%s: exit status %s, expected a failure (not a signal, not success)%s" % (what, r.rc, r.tail(3)))
    ok = ctx.expect(len(lines) == 1 and lines[0].startswith("giltrace: "),
                    "%s: stderr should be one line 'giltrace: ...', got %r" % (what, r.stderr[:400])) and ok
    ok = ctx.expect(not r.out, "%s: wrote to stdout on failure: %r" % (what, r.stdout[:200])) and ok
    ok = ctx.expect(not re.search(r"Sanitizer|core dumped|Segmentation|Aborted|runtime error", r.stderr),
                    "%s: crash report on stderr: %r" % (what, r.stderr[:300])) and ok
    if lines and path:
        ok = ctx.expect(path in lines[0], "%s: the error does not name the file: %r" % (what, lines[0])) and ok
    if lines and keywords:
        ok = ctx.expect(any(k in lines[0] for k in keywords),
                        "%s: error %r says none of %s" % (what, lines[0], list(keywords))) and ok
    return ok


def record_launch(ctx, path, cmd, extra=(), timeout=60):
    r = ctx.giltrace(["record", "-o", path] + list(extra) + ["--"] + cmd, timeout=timeout)
    ctx.require(r.rc == 0, "giltrace record exited %s%s" % (r.rc, r.tail()))
    ctx.require(os.path.getsize(path) > 64, "giltrace record wrote %d bytes" % os.path.getsize(path))
    return r


def pingpong_cmd(ctx, rounds, *extra):
    return [ctx.env.default.path, "-u", gtlib.workload("pingpong.py"), "--rounds", str(rounds)] + list(extra)


def spin_cmd(ctx, n, work, switch, *extra):
    return [ctx.env.default.path, "-u", gtlib.workload("spin.py"), "--threads", str(n), "--work", str(work),
            "--switch-interval", str(switch)] + list(extra)


# ------------------------------------------------------------------ 1. stream vs kernel

@test("views_stream_agrees_with_kernel_launch", budget=60)
def stream_launch(ctx):
    """
    One launch-mode run, --json + --perfetto + --timeline: the JSON's figures
    are the kernel's aggregates (stored in the trace file's metadata), the
    Perfetto slices are the cycle records: they agree exactly. A 100 ms
    switch interval makes every hold and wait of the two spinners cover
    a timeline column (at most 50 ms here), so both show '#' and '-'.
    Each spinner's work must outlast two switch intervals (the first
    spinner holds one alone while main starts the second, then one with
    the second waiting) or it can end without ever waiting: 6M iterations
    took ~200 ms of hold on this VM and failed so, 20M take ~650 ms.
    """
    jf, pf = ctx.tmp("s.json"), ctx.tmp("s.perfetto.json")
    r = ctx.giltrace(["--json", jf, "--perfetto", pf, "--timeline", "--"] +
                     spin_cmd(ctx, 2, 20000000, 0.1), timeout=90)
    ctx.require(r.rc == 0, "giltrace -- spin.py exited %s%s" % (r.rc, r.tail()))
    spinners, main = spinners_from(r.stdout)
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    ctx.require("blocked_by" in doc, "no blocked_by in the JSON of a trace with --perfetto")
    check_stream_vs_kernel(ctx, doc, load_perfetto(ctx, pf), attach=False)
    ths = gtlib.threads_by_tid(doc)
    for tid in spinners + [main]:
        ctx.expect(tid in ths, "thread %d missing from the JSON (threads %s)" % (tid, sorted(ths)))
    lanes, bucket = check_timeline_text(ctx, r.stderr, doc)
    if bucket and bucket <= 50e6:
        for tid in spinners:
            cells = lanes.get(tid, "")
            ctx.expect("#" in cells and "-" in cells,
                       "spinner %d's lane %r shows no hold or no wait (one column = %.1f ms, 100 ms switch interval)" % (
                           tid, cells, bucket / 1e6))
    else:
        ctx.note("timeline columns of %s ns (> half the switch interval): lane contents not checked" % bucket)


@test("views_stream_agrees_with_kernel_attach", budget=60)
def stream_attach(ctx):
    """
    Attach to 3 running spinners for 0.6 s: waits begun before tracing,
    the hold going on at attach, and waits and holds still open at the end.
    """
    w = ctx.python(ctx.env.default, "spin.py", "--threads", 3, "--switch-interval", 0.01)
    spinners, main = spinners_from(w.wait_out(r"^ready ", 30).string)
    jf, pf = ctx.tmp("a.json"), ctx.tmp("a.perfetto.json")
    g = ctx.attach(w.pid, ["-d", "0.6", "--json", jf, "--perfetto", pf, "--timeline"])
    rc = ctx.finish(g, timeout=60)
    ctx.require(rc == 0, "giltrace -p exited %s%s" % (rc, g.tail()))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    st = check_stream_vs_kernel(ctx, doc, load_perfetto(ctx, pf), attach=True)
    ths = gtlib.threads_by_tid(doc)
    for tid in spinners:
        ctx.expect(tid in ths, "spinner %d missing from the JSON" % tid)
    # Three spinners never all run without the GIL: at the end one holds
    # it (open hold) and the others wait (open waits), unless the last
    # hand-off was under way.
    opened = sum(1 for tid in spinners if ths.get(tid, {}).get("open_hold_ns") or ths.get(tid, {}).get("open_wait_ns"))
    ctx.expect(opened >= 1, "no spinner has an open hold or wait at the end of an attach")
    check_timeline_text(ctx, g.stdout, doc)
    w.close_stdin()
    ctx.expect(w.wait(30) == 0 and w.stdout.rstrip().endswith("ok"), "spin.py after tracing: %r" % w.stdout[-200:])


# ------------------------------------------------------------------ 2. ping-pong

def in_window(slices, lo, hi):
    return [s for s in slices if lo <= s[0] <= hi]


@test("views_pingpong_alternates", budget=60)
def pingpong(ctx):
    """
    pingpong.py: the main thread and its partner hand the GIL to each other
    K times each way (2K hand-offs). Recorded once, reported twice (all
    threads; --tid partner). Between the workload's own begin/end
    timestamps (CLOCK_MONOTONIC, the clock of the records) the holds
    strictly alternate, each hold there begins with a flow from the other
    thread, each thread holds K times (more only if a holder was forced to
    drop at a switch interval), and the kernel's holder switches are the
    2K of the window plus the few at thread start and exit (measured: +2
    on 3.11-3.13, +4 on 3.6-3.7).
    """
    K = 3000
    gil = ctx.tmp("pp.gil")
    r = record_launch(ctx, gil, pingpong_cmd(ctx, K))
    kv = parse_kv([l for l in r.stdout.splitlines() if l.startswith("ready ")][0])
    pp = parse_kv([l for l in r.stdout.splitlines() if l.startswith("pingpong ")][0])
    main, partner = int(kv["main"]), int(kv["partner"])
    handoffs, begin, end = int(pp["handoffs"]), int(pp["begin_ns"]), int(pp["end_ns"])
    ctx.expect(handoffs == 2 * K and r.stdout.rstrip().endswith("ok"), "pingpong.py output %r" % r.stdout[-300:])
    ctx.expect(re.search(r"^giltrace: wrote %s \((\d+) GIL cycles\)" % re.escape(gil), r.stderr, re.M),
               "record's stderr has no 'wrote %s (N GIL cycles)' line: %r" % (gil, r.stderr[-300:]))

    jf, pf = ctx.tmp("pp.json"), ctx.tmp("pp.perfetto.json")
    rr = report(ctx, gil, ["--json", jf, "--perfetto", pf])
    ctx.require(rr.rc == 0, "giltrace report exited %s%s" % (rr.rc, rr.tail()))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    ctx.expect(doc.get("exit_status") == 0, "exit_status %r from the trace file, the command exited 0" % doc.get("exit_status"))
    ctx.expect(set(gtlib.threads_by_tid(doc)) == {main, partner},
               "threads %s, expected main %d and partner %d" % (sorted(gtlib.threads_by_tid(doc)), main, partner))
    st = check_stream_vs_kernel(ctx, doc, load_perfetto(ctx, pf), attach=False, what="pingpong: ")

    t0 = st.md.get("t0_ns")
    ctx.require(isinstance(t0, int) and t0 <= begin < end, "Perfetto t0_ns %r, window [%d, %d]" % (t0, begin, end))
    lo, hi = begin - t0, end - t0
    seq = sorted([(b, tid) for tid in (main, partner) for b, d, a in in_window(st.holds.get(tid, []), lo, hi)])
    n_main = sum(1 for b, tid in seq if tid == main)
    n_partner = len(seq) - n_main
    repeats = sum(1 for i in range(1, len(seq)) if seq[i][1] == seq[i - 1][1])
    ctx.expect(repeats == 0, "holds in the ping-pong window do not alternate: %d times a thread held twice in a row" % repeats)
    ctx.expect(seq and seq[0][1] == partner, "the first hold in the window is %r, expected the partner's" % (seq[:1],))
    ctx.expect(n_partner >= K and n_main >= K, "in the window: %d holds of the partner, %d of main, expected >= %d each" % (
        n_partner, n_main, K))
    forced = n_partner - K
    if forced:
        ctx.note("%d extra turns: a holder forced to drop at the switch interval" % forced)
    ctx.expect(abs(n_main - n_partner) <= 1, "in the window: %d holds of main, %d of the partner" % (n_main, n_partner))
    fl = [f for f in st.flows() if lo <= f[3] <= hi]
    ctx.expect(len(fl) == len(seq), "%d flows end in the window, %d holds begin there" % (len(fl), len(seq)))
    ctx.expect(all(f[0] in (main, partner) and f[1] in (main, partner) for f in fl), "a flow in the window involves another thread")
    hs = doc["gil"]["holder_switches"]
    ctx.expect(len(seq) <= hs <= len(seq) + 8,
               "kernel holder_switches %d; the window alone has %d (2K = %d hand-offs, %d forced), expected a few more at most" % (
                   hs, len(seq), handoffs, forced))
    th = gtlib.threads_by_tid(doc)
    # The partner holds the GIL only to start and to play; the main thread
    # also ran the interpreter's start-up (imports release the GIL to read).
    a = th.get(partner, {}).get("acquisitions", 0)
    ctx.expect(n_partner <= a <= n_partner + 4, "partner: %d acquisitions, %d holds in the window" % (a, n_partner))
    a = th.get(main, {}).get("acquisitions", 0)
    ctx.expect(n_main <= a, "main: %d acquisitions, %d holds in the window" % (a, n_main))
    # Each waits only behind the other, or for the hand-off.
    for b in doc.get("blocked_by", []):
        ctx.expect(b["holder"] in (None, main, partner) and b["holder"] != b["waiter"], "blocked_by entry %r" % b)

    # The same file, --tid partner: only the partner's row and waits, the
    # process-wide figures unchanged; and the JSON does not depend on
    # which other views were asked for.
    jt = ctx.tmp("pp-tid.json")
    rt = report(ctx, gil, ["--tid", partner, "--json", jt, "--timeline"])
    ctx.require(rt.rc == 0, "report --tid exited %s%s" % (rt.rc, rt.tail()))
    dt = gtlib.load_json(jt)
    ctx.expect([t["tid"] for t in dt["threads"]] == [partner], "--tid %d: threads %s" % (partner, [t["tid"] for t in dt["threads"]]))
    ctx.expect(dt["gil"] == doc["gil"], "--tid changed the gil figures: %r vs %r" % (dt["gil"], doc["gil"]))
    ctx.expect(dt.get("threads_total") == 2, "--tid: threads_total %r" % dt.get("threads_total"))
    want = [b for b in doc["blocked_by"] if b["waiter"] == partner]
    ctx.expect(dt.get("blocked_by") == want, "--tid: blocked_by %r, expected the partner's entries %r" % (dt.get("blocked_by"), want))
    ctx.expect(th.get(partner) == gtlib.threads_by_tid(dt).get(partner), "--tid: the partner's row differs")
    lanes, _ = check_timeline_text(ctx, rt.stdout, dt, "--tid: ")
    j2 = ctx.tmp("pp-again.json")
    r2 = report(ctx, gil, ["--json", j2, "--hist", "--top", "1"])
    ctx.expect(r2.rc == 0 and open(j2, "rb").read() == open(jf, "rb").read(),
               "report --json with other options (--hist --top 1) gives another JSON (rc %s)" % r2.rc)


# ------------------------------------------------------------------ 3. record/report = direct

@test("views_direct_equals_report_of_its_trace_file", budget=60)
def direct_same_run(ctx):
    """
    The direct form records to a temporary file in $TMPDIR and renders it
    (src/main.c render_trace_file). While it traces, the test hard-links
    that file; `giltrace report` of the link must then print the same
    report and timeline and write the same JSON, Perfetto and HTML files,
    byte for byte: record then report is the direct form, for the same
    run. giltrace removes its temporary file (the link keeps the data).
    """
    tmpdir = ctx.tmp("tmpdir")
    os.mkdir(tmpdir)
    env = dict(os.environ, TMPDIR=tmpdir)
    d = dict((k, ctx.tmp("direct." + k)) for k in ("json", "perfetto.json", "html"))
    g = ctx.giltrace_proc(["--json", d["json"], "--perfetto", d["perfetto.json"], "--html", d["html"], "--timeline",
                           "--"] + spin_cmd(ctx, 2, 1500000, 0.005, "--go"), env=env)
    g.wait_err(TRACING_RX, 30, what="giltrace -- spin.py --go")
    files = [f for f in os.listdir(tmpdir) if f.startswith("giltrace-")]
    ctx.require(len(files) == 1, "giltrace's temporary trace file in $TMPDIR=%s: %s" % (tmpdir, os.listdir(tmpdir)))
    kept = ctx.tmp("kept.gil")
    os.link(os.path.join(tmpdir, files[0]), kept)
    g.wait_out(r"^waiting ", 30, what="spin.py --go")
    g.send("go\n")
    rc = g.wait(90, what="giltrace -- spin.py")
    if rc != 0 and "--html needs the browser assets" in g.stderr:
        raise Skip("the HTML assets are missing: %s" % g.stderr.strip().splitlines()[-1])
    ctx.require(rc == 0, "giltrace exited %s%s" % (rc, g.tail()))
    ctx.expect(os.listdir(tmpdir) == [], "giltrace left %s in $TMPDIR" % os.listdir(tmpdir))
    direct_text = "\n".join(l for l in g.stderr.splitlines() if not l.startswith("giltrace: ")) + "\n"

    p = dict((k, ctx.tmp("report." + k)) for k in d)
    r = report(ctx, kept, ["--json", p["json"], "--perfetto", p["perfetto.json"], "--html", p["html"], "--timeline"])
    ctx.require(r.rc == 0, "giltrace report of the kept file exited %s%s" % (r.rc, r.tail()))
    doc = gtlib.load_json(d["json"])
    check_json(ctx, doc, launch=True)
    for k in d:
        a, b = open(d[k], "rb").read(), open(p[k], "rb").read()
        if a != b:
            i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            ctx.expect(False, "%s: direct (%d bytes) and report (%d bytes) differ from byte %d: %r vs %r" % (
                k, len(a), len(b), i, a[max(0, i - 40):i + 40], b[max(0, i - 40):i + 40]))
    ctx.expect(r.stdout == direct_text, "report's text differs from the direct form's:\n--- direct\n%s\n--- report\n%s" % (
        direct_text[:600], r.stdout[:600]))
    ctx.expect(doc.get("exit_status") == 0, "exit_status %r" % doc.get("exit_status"))
    check_timeline_text(ctx, r.stdout, doc)


@test("views_record_json_option_not_ignored", budget=40)
def record_json(ctx):
    """
    `giltrace record -o F --json J` must not silently drop --json: either
    it writes J from the same run (then J equals `giltrace report F
    --json`), or it refuses the option with a one-line error.
    """
    gil, jf = ctx.tmp("r.gil"), ctx.tmp("r.json")
    r = ctx.giltrace(["record", "-o", gil, "--json", jf, "--"] + spin_cmd(ctx, 2, 200000, 0.005), timeout=60)
    if r.rc == 0:
        if not ctx.expect(os.path.exists(jf), "record -o F --json J exited 0, recorded %s, and silently ignored --json "
                          "(no %s written, nothing said)" % (
                              "F" if os.path.exists(gil) else "nothing", os.path.basename(jf))):
            return
        jr = ctx.tmp("rep.json")
        rr = report(ctx, gil, ["--json", jr])
        ctx.expect(rr.rc == 0 and open(jr, "rb").read() == open(jf, "rb").read(),
                   "record's --json differs from report's JSON of the same file")
    else:
        one_line_error(ctx, r, "record --json", keywords=("--json",))


# ------------------------------------------------------------------ 4. without root

def world_readable_dir(ctx):
    """A directory inside the test's own (0700) one that nobody may use."""
    os.chmod(ctx.dir, 0o711)
    d = ctx.tmp("shared")
    os.mkdir(d)
    os.chmod(d, 0o777)
    return d


def as_nobody():
    if not shutil.which("setpriv"):
        raise Skip("setpriv (util-linux) is missing")
    return ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]


@test("views_report_without_root", budget=60)
def report_no_root(ctx):
    """
    `giltrace report` as nobody (setpriv: no capabilities) on a world-
    readable copy of a recorded trace: every view, the same JSON and
    Perfetto file as root's.
    """
    pre = as_nobody()
    caps = gtlib.run(pre + ["grep", "^CapEff:", "/proc/self/status"], timeout=10)
    ctx.require(caps.rc == 0 and caps.stdout.split()[-1].strip("0") == "",
                "setpriv as uid %d still has capabilities: %r" % (NOBODY, caps.stdout))
    gil = ctx.tmp("nr.gil")
    record_launch(ctx, gil, spin_cmd(ctx, 2, 300000, 0.005))
    d = world_readable_dir(ctx)
    copy = os.path.join(d, "trace.gil")
    shutil.copyfile(gil, copy)
    os.chmod(copy, 0o444)
    gt = ctx.gt
    exe = gtlib.run(pre + ["test", "-x", gt], timeout=10)
    env = None
    if exe.rc != 0:
        # The build directory is not reachable by nobody: run a copy.
        gt = os.path.join(d, "giltrace")
        shutil.copy(ctx.gt, gt)
        assets = os.path.join(os.path.dirname(ctx.gt), "assets")
        if os.path.isdir(assets):
            shutil.copytree(assets, os.path.join(d, "assets"))
            env = dict(os.environ, GILTRACE_ASSETS=os.path.join(d, "assets"))
        ctx.note("nobody cannot reach %s: ran a copy" % ctx.gt)
    outs = dict((k, os.path.join(d, "out." + k)) for k in ("json", "perfetto.json", "html"))
    args = ["--json", outs["json"], "--perfetto", outs["perfetto.json"], "--timeline"]
    assets_ok = os.path.exists(os.path.join(os.path.dirname(ctx.gt), "assets", "echarts.min.js")) or \
        os.environ.get("GILTRACE_ASSETS")
    if assets_ok:
        args += ["--html", outs["html"]]
    else:
        ctx.note("no HTML assets next to %s: --html not run" % ctx.gt)
    r = gtlib.run(pre + [gt, "report", copy] + args, timeout=60, env=env)
    ctx.require(r.rc == 0, "giltrace report as uid %d exited %s%s" % (NOBODY, r.rc, r.tail()))
    doc = gtlib.load_json(outs["json"])
    check_json(ctx, doc, launch=True)
    for k in outs:
        if k == "html" and not assets_ok:
            continue
        st = os.stat(outs[k])
        ctx.expect(st.st_uid == NOBODY and st.st_size > 0, "%s: owner %d, %d bytes" % (k, st.st_uid, st.st_size))
    check_timeline_text(ctx, r.stdout, doc)
    jr, pr = ctx.tmp("root.json"), ctx.tmp("root.perfetto.json")
    rr = report(ctx, gil, ["--json", jr, "--perfetto", pr])
    ctx.require(rr.rc == 0, "report as root exited %s" % rr.rc)
    ctx.expect(open(jr, "rb").read() == open(outs["json"], "rb").read(), "nobody's JSON differs from root's")
    ctx.expect(open(pr, "rb").read() == open(outs["perfetto.json"], "rb").read(), "nobody's Perfetto file differs from root's")
    # A trace file nobody may not read: a one-line error.
    os.chmod(copy, 0o400)
    os.chown(copy, 0, 0)
    r = gtlib.run(pre + [gt, "report", copy, "--json", outs["json"]], timeout=30, env=env)
    one_line_error(ctx, r, "report of an unreadable file as nobody", copy)


# ------------------------------------------------------------------ 5. bad trace files

def layout(blob):
    """(metadata offset, metadata length) from the trailer (trace-format.md)."""
    off, ln = struct.unpack_from("<QQ", blob, len(blob) - 32)
    return off, ln


def zstd_frames(blob, start, end):
    """[(offset, size)] of the zstd frames in blob[start:end] (RFC 8878)."""
    out, p = [], start
    while p < end:
        if blob[p:p + 4] != b"\x28\xb5\x2f\xfd":
            raise Fail("no zstd frame magic at byte %d of a fresh trace file" % p)
        fhd = blob[p + 4]
        fcs_flag, single, checksum, did = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        q = p + 5 + (0 if single else 1) + (0, 1, 2, 4)[did]
        q += (1 if single else 0, 2, 4, 8)[fcs_flag]
        while True:
            bh = blob[q] | blob[q + 1] << 8 | blob[q + 2] << 16
            last, btype, bsize = bh & 1, (bh >> 1) & 3, bh >> 3
            q += 3 + (1 if btype == 1 else bsize)
            if last:
                break
        q += 4 if checksum else 0
        out.append((p, q - p))
        p = q
    if p != end:
        raise Fail("zstd frames overrun the metadata offset")
    return out


def with_meta(blob, fn):
    """The file with its metadata JSON changed by fn (CRC and trailer kept right)."""
    off, ln = layout(blob)
    meta = json.loads(blob[off:off + ln].decode())
    fn(meta)
    nm = json.dumps(meta).encode()
    trailer = struct.pack("<QQII", off, len(nm), zlib.crc32(nm) & 0xffffffff, 0) + b"GILTEND!"
    return blob[:off] + nm + trailer


def put(blob, at, data):
    return blob[:at] + data + blob[at + len(data):]


def flip(blob, at):
    return put(blob, at, bytes([blob[at] ^ 0xff]))


@test("views_bad_trace_files", budget=90)
def bad_files(ctx):
    """
    A real recording (several zstd frames), cut at offsets in each part of
    the layout and damaged in each field: `giltrace report` fails with one
    line naming the file and what is wrong, never a crash; fields the
    format says readers ignore (header flags, unknown metadata keys) are
    ignored; random byte flips either fail that way or render.
    """
    gil = ctx.tmp("good.gil")
    record_launch(ctx, gil, pingpong_cmd(ctx, 6000))
    blob = open(gil, "rb").read()
    size = len(blob)
    moff, mlen = layout(blob)
    ctx.require(blob[:8] == b"GILTRACE" and blob[-8:] == b"GILTEND!" and moff + mlen == size - 32,
                "fresh trace file does not follow docs/trace-format.md: %r ... %r" % (blob[:16], blob[-32:]))
    frames = zstd_frames(blob, 32, moff)
    ctx.note("%d bytes, %d frames" % (size, len(frames)))
    ctx.expect(len(frames) >= 2, "12000 cycles fit in %d frame(s): the writer closes a block at 8192 records" % len(frames))
    good = ctx.tmp("good.json")
    r = report(ctx, gil, ["--json", good])
    ctx.require(r.rc == 0, "report of the good file exited %s%s" % (r.rc, r.tail()))
    good_json = open(good, "rb").read()
    bad = ctx.tmp("bad.gil")
    out = ctx.tmp("bad.json")

    def try_file(data, what, keywords=(), ok=False, at=None):
        with open(bad, "wb") as f:
            f.write(data)
        if os.path.exists(out):
            os.unlink(out)
        r = report(ctx, bad, ["--json", out, "--timeline"])
        if ok:
            ctx.expect(r.rc == 0 and open(out, "rb").read() == good_json,
                       "%s: should be read as the good file (the format says readers ignore it): rc %s%s" % (what, r.rc, r.tail(2)))
            return r
        if one_line_error(ctx, r, what, bad, keywords) and at is not None:
            m = re.search(r"corrupt at byte (\d+)", r.stderr)
            if ctx.expect(m, "%s: error does not say where: %r" % (what, r.stderr.strip())):
                n = int(m.group(1))
                ctx.expect(at[0] <= n < at[1], "%s: 'corrupt at byte %d', the damage is in [%d, %d)" % (what, n, at[0], at[1]))
        ctx.expect(not os.path.exists(out) or os.path.getsize(out) == 0, "%s: JSON written from a bad file" % what)
        return r

    # Cut at each part of the layout.
    f1 = frames[1][0] if len(frames) > 1 else frames[0][0] + frames[0][1] // 2
    cuts = [(0, "empty file"), (5, "inside the magic"), (20, "inside the header"), (32, "header only"),
            (33, "first byte of the stream"), (frames[0][0] + frames[0][1] // 2, "inside the first frame"),
            (f1, "between two frames"), (moff, "end of the stream, no metadata"),
            (moff + mlen // 2, "inside the metadata"), (size - 32, "no trailer"), (size - 20, "inside the trailer"),
            (size - 1, "last byte missing")]
    for n, what in cuts:
        kw = ("truncated",) if n >= 32 else ("truncated", "not a giltrace trace file")
        try_file(blob[:n], "cut at %d bytes (%s)" % (n, what), kw)

    # One field at a time.
    corrupt = ("corrupt",)
    try_file(flip(blob, 0), "magic damaged", ("not a giltrace trace file",))
    try_file(put(blob, 8, struct.pack("<I", 3)), "format version 3", ("newer giltrace", "format 3"))
    try_file(put(blob, 8, struct.pack("<I", 0)), "format version 0")
    try_file(put(blob, 16, struct.pack("<I", 64)), "header length 64")
    try_file(put(blob, 12, struct.pack("<I", 0xffffffff)), "header flags set", ok=True)
    fo, fs = frames[-1]
    try_file(flip(blob, fo), "last frame's magic damaged", corrupt, at=(fo, fo + fs))
    try_file(flip(blob, fo + fs // 2), "byte inside the last frame flipped", corrupt, at=(fo, fo + fs))
    try_file(flip(blob, fo + fs - 1), "last frame's checksum damaged", corrupt, at=(fo, fo + fs))
    try_file(flip(blob, 32 + 6), "first frame's header damaged", corrupt, at=(32, 32 + frames[0][1]))
    a, b = frames[0], frames[-1]
    dup = blob[:moff] + blob[b[0]:b[0] + b[1]] + blob[moff:]
    dup = dup[:len(dup) - 32] + struct.pack("<Q", moff + b[1]) + dup[len(dup) - 24:]
    try_file(dup, "a frame written twice", corrupt)
    drop = blob[:a[0]] + blob[a[0] + a[1]:]
    drop = drop[:len(drop) - 32] + struct.pack("<Q", moff - a[1]) + drop[len(drop) - 24:]
    try_file(drop, "first frame missing", corrupt)
    try_file(flip(blob, moff + mlen // 2), "metadata byte flipped (CRC)", corrupt)
    try_file(flip(blob, size - 32 + 16), "metadata CRC damaged", corrupt)
    try_file(put(blob, size - 32, struct.pack("<Q", size)), "metadata offset past the end")
    try_file(put(blob, size - 32, struct.pack("<Q", 5)), "metadata offset inside the header")
    try_file(put(blob, size - 24, struct.pack("<Q", 1 << 40)), "metadata length 1 TiB")
    try_file(flip(blob, size - 1), "trailer magic damaged", ("truncated", "corrupt"))

    # Metadata with a good CRC and bad contents.
    def setk(*path_val):
        def fn(meta):
            *path, val = path_val
            o = meta
            for k in path[:-1]:
                o = o[k]
            if val is KeyError:
                del o[path[-1]]
            else:
                o[path[-1]] = val
        return fn
    meta = json.loads(blob[moff:moff + mlen].decode())
    for what, fn in (
            ("records count off by one", setk("records", meta["records"] + 1)),
            ("frames count off by one", setk("frames", meta["frames"] - 1)),
            ("format giltrace-trace/2", setk("format", "giltrace-trace/2")),
            ("no threads key", setk("threads", KeyError)),
            ("threads is a string", setk("threads", "x")),
            ("t_end_ns before t0_ns", setk("time", "t_end_ns", meta["time"]["t0_ns"] - 1)),
            ("pid negative", setk("target", "pid", -5)),
            ("hold bucket index 700", lambda m: m["threads"][0]["hold"].__setitem__("buckets", [[700, 1]])),
            ("hold buckets out of order", lambda m: m["threads"][0]["hold"].__setitem__("buckets", [[60, 1], [50, 1]])),
            ("thread state 9", lambda m: m["threads"][0].__setitem__("state", 9)),
            ("thread hold_ns a string", lambda m: m["threads"][0].__setitem__("hold_ns", "lots")),
            ("counters.acquisitions 2^64 as a string", setk("counters", "acquisitions", "18446744073709551616")),
            ("probes not a list", setk("probes", {})),
            ("metadata is a JSON array", None)):
        if fn is None:
            nm = b"[1, 2, 3]"
            data = blob[:moff] + nm + struct.pack("<QQII", moff, len(nm), zlib.crc32(nm) & 0xffffffff, 0) + b"GILTEND!"
        else:
            data = with_meta(blob, fn)
        try_file(data, "metadata: " + what, corrupt)
    try_file(with_meta(blob, setk("future_key", {"x": [1, 2]})), "metadata: an unknown key", ok=True)

    # Random single-byte damage: fail with one line, or render; never crash.
    rnd = random.Random(4)
    fails = renders = 0
    for i in range(60):
        at = rnd.randrange(size)
        data = put(blob, at, bytes([blob[at] ^ rnd.randrange(1, 256)]))
        with open(bad, "wb") as f:
            f.write(data)
        r = report(ctx, bad, ["--json", out, "--perfetto", ctx.tmp("bad.perfetto.json"), "--timeline"])
        if r.rc == 0:
            renders += 1
            continue
        fails += 1
        if not one_line_error(ctx, r, "random flip at byte %d of %d" % (at, size), bad):
            break
    ctx.note("random flips: %d refused, %d rendered" % (fails, renders))

    # Not a file at all.
    one_line_error(ctx, report(ctx, ctx.dir), "report of a directory", ctx.dir)
    missing = ctx.tmp("missing.gil")
    one_line_error(ctx, report(ctx, missing), "report of a missing file", missing)


@test("views_killed_recording", budget=60)
def killed_recording(ctx):
    """
    `giltrace record -p` killed with SIGKILL once a frame is on disk: the
    target goes on unharmed with its GIL code restored, the file has no
    trailer, `giltrace report` says it is truncated in one line, and its
    whole frames still decompress with zstd as trace-format.md says.
    """
    w = ctx.python(ctx.env.default, "spin.py", "--threads", 2, "--switch-interval", 0.001)
    spinners, main = spinners_from(w.wait_out(r"^ready ", 30).string)
    gil = ctx.tmp("killed.gil")
    g = ctx.attach(w.pid, ["record", "-o", gil])
    # The writer closes a frame about once a second while records come:
    # wait for the first one to reach the file (a real event, polled).
    deadline = time.monotonic() + 20
    while os.path.exists(gil) and os.path.getsize(gil) <= 32 and time.monotonic() < deadline and g.poll() is None:
        time.sleep(0.02)
    size = os.path.getsize(gil) if os.path.exists(gil) else 0
    ctx.require(size > 32, "no frame written to %s within 20 s (%d bytes)" % (gil, size))
    g.signal(signal.SIGKILL)
    ctx.expect(g.wait(10) == -signal.SIGKILL, "giltrace did not die of SIGKILL")
    ctx.expect(w.poll() is None, "the target died with giltrace")
    check_gil_code_restored(ctx, w.pid, ctx.env.default, "after giltrace record was killed")
    r = report(ctx, gil, ["--json", ctx.tmp("k.json")])
    one_line_error(ctx, r, "report of a killed recording", gil, ("truncated",))
    blob = open(gil, "rb").read()
    ctx.expect(blob[:8] == b"GILTRACE" and blob[-8:] != b"GILTEND!", "killed recording: header %r, tail %r" % (blob[:8], blob[-8:]))
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-dc"], input=blob[32:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        recs, p, bad = 0, 0, None
        data = z.stdout
        while p + 4 <= len(data):
            n = struct.unpack_from("<I", data, p)[0]
            typ = struct.unpack_from("<I", data, p + 4)[0] if p + 8 <= len(data) else None
            if (typ, n) not in ((2, 40), (3, 40), (4, 32)) or p + 4 + n > len(data):
                bad = (p, typ, n)
                break
            if typ == 2:
                tid = struct.unpack_from("<I", data, p + 8)[0]
                if tid not in spinners + [main]:
                    bad = (p, "tid", tid)
                    break
            recs += 1
            p += 4 + n
        ctx.expect(bad is None and p == len(data) and recs > 0,
                   "zstd -dc of the killed file's stream: %d records, %d of %d bytes parsed, problem %r" % (
                       recs, p, len(data), bad))
    else:
        ctx.note("zstd CLI missing: frames of the killed file not decompressed")
    w.close_stdin()
    ctx.expect(w.wait(30) == 0 and w.stdout.rstrip().endswith("ok"), "spin.py after the killed recording: %r" % w.stdout[-200:])


# ------------------------------------------------------------------ 6. browser

def browser_missing():
    if not shutil.which("node"):
        return "node is not installed (apt-get install nodejs; scripts/deps-web.sh)"
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        return "%s is missing (apt-get install chromium; scripts/deps-web.sh)" % chromium
    if not os.path.isdir(os.path.join(WEB, "node_modules", "playwright-core")):
        return "web/node_modules/playwright-core is missing (scripts/deps-web.sh runs npm ci in web/)"
    if not os.path.isdir(os.path.join(WEB, "node_modules", "speedscope")):
        return "web/node_modules/speedscope is missing (scripts/deps-web.sh runs npm ci in web/)"
    return None


@test("views_html_and_perfetto_checkers", budget=120)
def browser(ctx):
    """
    A real trace (launch, 3 spinners and the main thread): the Perfetto
    file through perfetto_check.py (the CLI), the HTML report's embedded
    data equal to the JSON, and tests/web/check_html.js (headless
    Chromium: loads offline with no error, every thread labelled, figures
    equal the JSON, the Perfetto file imports into speedscope).
    """
    jf, pf, hf = ctx.tmp("b.json"), ctx.tmp("b.perfetto.json"), ctx.tmp("b.html")
    r = ctx.giltrace(["-q", "--json", jf, "--perfetto", pf, "--html", hf, "--"] +
                     spin_cmd(ctx, 3, 600000, 0.005), timeout=90)
    if r.rc != 0 and "--html needs the browser assets" in r.stderr:
        raise Skip("giltrace --html: %s" % r.stderr.strip().splitlines()[-1])
    ctx.require(r.rc == 0, "giltrace exited %s%s" % (r.rc, r.tail()))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    pc = gtlib.run([sys.executable, PERFETTO_CHECK, pf, "--json", jf], timeout=120)
    ctx.expect(pc.rc == 0 and "hold/wait sums match for %d threads" % len(doc["threads"]) in pc.stdout,
               "perfetto_check.py: rc %s: %s" % (pc.rc, pc.stdout.strip()[-600:]))
    html = open(hf, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="giltrace-data">(.*?)</script>', html, re.S)
    if ctx.expect(m, "no giltrace-data script in the HTML"):
        data = json.loads(m.group(1))
        for k, v in doc.items():
            ctx.expect(data.get(k) == v, "HTML data %r differs from the JSON's" % k)
        tl = data.get("timeline", {})
        pfmd = load_perfetto(ctx, pf).get("metadata", {})
        ctx.expect(tl.get("holder_switches") == pfmd.get("holder_switches"),
                   "HTML timeline.holder_switches %r, Perfetto %r" % (tl.get("holder_switches"), pfmd.get("holder_switches")))
    ctx.expect(not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html), "the HTML loads something from the network")
    why = browser_missing()
    if why:
        raise Skip("browser check not run: " + why)
    c = gtlib.run(["node", CHECK_HTML, "--html", hf, "--json", jf, "--perfetto", pf], timeout=180, cwd=WEB)
    lines = c.stdout.splitlines()
    for l in lines:
        if l.startswith("FAIL "):
            ctx.expect(False, "check_html.js: " + l[5:])
    ctx.expect(c.rc == 0 and any(re.match(r"^\d+ passed, 0 failed$", l) for l in lines),
               "check_html.js: rc %s: %s %s" % (c.rc, c.stdout.strip()[-400:], c.stderr.strip()[-400:]))
    ctx.note("check_html.js: %s" % (lines[-1] if lines else "no output"))


@test("views_stacks_flame_and_perfetto_args", budget=60)
def stacks_views(ctx):
    """
    --stacks in the views (issue 5), one launch of tests/workloads/stacks.py
    --mode known (threads spinning in spin_a, spin_b, spin_c): every wait
    and hold slice of those threads in the Perfetto file has args.stack,
    innermost frame first, and more than half of each thread's waited and
    held time has its spin function at its line innermost (the rest: the
    barrier before, the thread's exit after, a larger share in this short
    run than in 75_stacks, so the spinning must outweigh them: 1M
    iterations a thread gave 42-46% on this VM once it ran 2.5x faster,
    4M give each thread about 0.1 s of spinning; perfetto_check.py
    validates the args); the HTML
    report's flame data has the JSON's
    per-thread stack totals exactly; check_html.js draws both flame graphs
    (root = total within 1%, tooltips, no console error), and speedscope
    imports the folded stacks of the same run.
    """
    rx = re.compile(r"^thread (\S+) (\d+) (\S+) (\S+) (\d+)$")
    jf, pf, hf, ff = ctx.tmp("s.json"), ctx.tmp("s.perfetto.json"), ctx.tmp("s.html"), ctx.tmp("s.folded")
    r = ctx.giltrace(["-q", "--stacks", "--json", jf, "--perfetto", pf, "--html", hf, "--folded", ff, "--",
                      ctx.env.default.path, "-u", gtlib.workload("stacks.py"), "--mode", "known",
                      "--work", "4000000"], timeout=90)
    if r.rc != 0 and "--html needs the browser assets" in r.stderr:
        raise Skip("giltrace --html: %s" % r.stderr.strip().splitlines()[-1])
    ctx.require(r.rc == 0, "giltrace exited %s%s" % (r.rc, r.tail()))
    spinners = {}
    for l in r.stdout.splitlines():
        m = rx.match(l)
        if m:
            spinners[int(m.group(2))] = (m.group(3), m.group(4), int(m.group(5)))
    ctx.require(len(spinners) == 3, "workload threads: %r" % r.stdout[-300:])
    doc = gtlib.load_json(jf)
    ctx.require(doc.get("stacks"), "the JSON has no stacks summary")
    pc = gtlib.run([sys.executable, PERFETTO_CHECK, pf, "--json", jf], timeout=60)
    ctx.expect(pc.rc == 0 and "slices with stacks" in pc.stdout,
               "perfetto_check.py: rc %s: %s" % (pc.rc, pc.stdout.strip()[-600:]))
    at, total, bare = {}, {}, []
    for e in load_perfetto(ctx, pf).get("traceEvents", []):
        if e.get("ph") != "X" or e.get("name") not in (HOLD, WAIT) or e["tid"] not in spinners:
            continue
        func, file, line = spinners[e["tid"]]
        st = (e.get("args") or {}).get("stack")
        key = (e["tid"], e["name"])
        total[key] = total.get(key, 0) + pf_ns(Decimal(e["ts"]) + Decimal(e["dur"])) - pf_ns(e["ts"])
        if not st:
            bare.append("%s of %d at %s" % (e["name"], e["tid"], e["ts"]))
        elif st[0].endswith(" (%s:%d)" % (file, line)) and (":" + func + " (") in st[0]:
            at[key] = at.get(key, 0) + pf_ns(Decimal(e["ts"]) + Decimal(e["dur"])) - pf_ns(e["ts"])
    ctx.expect(not bare, "%d slices of the spinners without a stack, e.g. %s" % (len(bare), bare[:3]))
    for (tid, name), ns in sorted(total.items()):
        share = at.get((tid, name), 0) / ns if ns else 1.0
        ctx.expect(share > 0.5, "TID %d %s: %.1f%% of its time innermost in %s, want > 50%%" % (
            tid, name, 100 * share, spinners[tid][0]))
    html = open(hf, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="giltrace-data">(.*?)</script>', html, re.S)
    ctx.require(m, "no giltrace-data script in the HTML")
    flame = json.loads(m.group(1)).get("flame")
    ctx.require(isinstance(flame, dict), "the HTML data has no flame object")
    ft = {t["tid"]: t for t in flame.get("threads", [])}
    for t in doc["threads"]:
        st = t.get("stacks") or {}
        for k in ("wait", "hold"):
            want = (st.get(k) or {}).get("total_ns", 0)
            got = ft.get(t["tid"], {}).get(k + "_ns", 0)
            ctx.expect(got == want, "TID %d: flame %s_ns %s, JSON stacks.%s.total_ns %s" % (t["tid"], k, got, k, want))
    why = browser_missing()
    if why:
        raise Skip("browser check not run: " + why)
    c = gtlib.run(["node", CHECK_HTML, "--html", hf, "--json", jf, "--folded", ff], timeout=120, cwd=WEB)
    lines = c.stdout.splitlines()
    for l in lines:
        if l.startswith("FAIL "):
            ctx.expect(False, "check_html.js: " + l[5:])
    ctx.expect(c.rc == 0 and any(l.startswith("PASS flame graphs (all threads)") for l in lines),
               "check_html.js: rc %s: %s %s" % (c.rc, c.stdout.strip()[-400:], c.stderr.strip()[-400:]))
    ctx.note("check_html.js: %s" % (lines[-1] if lines else "no output"))


# ------------------------------------------------------------------ 7. bounded memory

def record_rss(ctx, pid, seconds, path):
    """Peak RSS (KiB) of `giltrace record -p PID -d S`, and its record count."""
    p = subprocess.Popen([ctx.gt, "record", "-o", path, "-d", str(seconds), "-p", str(pid)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, status, ru = os.wait4(p.pid, 0)
    except BaseException:
        p.kill()
        raise
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stdout.close()
    p.stderr.close()
    ctx.require(p.returncode == 0, "record -d %s exited %s: %s" % (seconds, p.returncode, err.strip()[-300:]))
    m = re.search(r"\((\d+) GIL cycles\)", err)
    ctx.require(m, "record said no cycle count: %r" % err[-300:])
    return ru.ru_maxrss, int(m.group(1))


@test("views_record_memory_bounded", budget=60)
def memory(ctx):
    """
    `giltrace record` streams to the file: its peak RSS does not grow with
    the number of cycles. A thread reads /dev/zero byte by byte (each read
    releases the GIL: ~100k cycles a second traced here); recorded 0.3 s,
    then 2 s. Kept in memory, 150k+ more records of 44 bytes would show
    as 6 MB or more; allowed: 16 bytes a cycle (the 4 MiB ring buffer's
    pages, touched as records pass, are counted in RSS).
    """
    w = ctx.python(ctx.env.default, "release.py", "--ops", "read", "--n", 10 ** 10, "--spinners", 0)
    w.wait_out(r"^tids ", 30)
    small, n_small = record_rss(ctx, w.pid, 0.3, ctx.tmp("small.gil"))
    big, n_big = record_rss(ctx, w.pid, 2.0, ctx.tmp("big.gil"))
    w.kill()
    more = n_big - n_small
    ctx.note("peak RSS %d KiB for %d cycles, %d KiB for %d cycles" % (small, n_small, big, n_big))
    if more < 150000:
        raise Skip("the machine made too few GIL cycles to tell (%d in 0.3 s, %d in 2 s; load average %s)" % (
            n_small, n_big, open("/proc/loadavg").read().split()[0]))
    grown = big - small
    ctx.expect(grown * 1024.0 < 16 * more,
               "record's peak RSS grew by %d KiB for %d more cycles (%.1f bytes a cycle): not bounded" % (
                   grown, more, grown * 1024.0 / more))
