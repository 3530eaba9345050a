#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
perfetto_check.py - our own checker of the Trace Event Format JSON that
`giltrace --perfetto FILE` writes (docs/views.md). Python 3, stdlib only.

    perfetto_check.py TRACE.json [--json GILTRACE.json] [-q]
    perfetto_check.py --self-test

Checks, all of which ui.perfetto.dev and chrome://tracing rely on:

  - the file is one JSON object with a "traceEvents" array; every event has
    a "ph", a "name", integer "pid"/"tid" and, except metadata, a numeric
    "ts"; complete slices ("X") have a "dur" >= 0;
  - slices on one track (pid, tid) nest or are disjoint, never partially
    overlap, both in ns (as Perfetto reads them) and in floating-point µs
    (ts + dur, as speedscope and chrome://tracing compute ends);
  - every flow start ("s") has exactly one finish ("f") with the same
    (cat, name, id), at a ts >= the start's; each binds to a slice: the
    start lies inside a slice of its thread, and so does a finish with
    "bp":"e";
  - counter values ("C") are in non-decreasing time order per counter,
    with numeric values;
  - thread_name / process_name metadata name something;
  - stacks (giltrace --stacks): a slice's args "stack", where present, is on
    a wait or hold slice and is a non-empty list of at most 32 non-empty
    strings (frame labels, innermost first); "stack_depth", only with a
    stack cut to 32 frames, is the larger whole depth; the metadata then
    says how to read them ("stack_note");
  - with --json (giltrace's --json of the same trace): per thread, the sum
    of the "holds GIL" slices equals its hold_ns, and of "waits for GIL"
    its wait_ns, within rounding (1 ns per slice); skipped, and said, when
    the trace says the timeline was truncated.

Numbers are read as exact decimals. Perfetto's view: ns = the decimal cut
after 3 places, end = ts_ns + dur_ns. The floating-point view: ts and
ts + dur as doubles. Sums: round((ts + dur) * 1000) - round(ts * 1000) per
slice. Exit status 0 when all is well, 1 with one line per problem (the
first 30) otherwise.

Also importable: check(trace_obj, giltrace_json_obj=None) -> (errors, stats),
trace_obj loaded with json.load(f, parse_float=decimal.Decimal).
"""
import argparse
import json
import sys
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal

HOLD = "holds GIL"
WAIT = "waits for GIL"
WAIT_ABANDONED = "waits for GIL (abandoned at thread exit)"
MAX_STACK = 32  # frames of a stack in a slice's args (report_perfetto.c)


def ns(v):
    """A µs figure as Perfetto reads it: the decimal cut after the ns."""
    return int(Decimal(v) * 1000)


def rns(v):
    """A µs figure rounded to the ns."""
    return int((Decimal(v) * 1000).to_integral_value(rounding=ROUND_HALF_EVEN))


def slice_ns(e):
    """How long slice e lasts, in ns: its rounded end less its rounded start."""
    return rns(Decimal(e["ts"]) + Decimal(e["dur"])) - rns(e["ts"])


def _num(v):
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


class Checker:
    def __init__(self):
        self.errors = []
        self.stats = defaultdict(int)

    def err(self, msg):
        self.errors.append(msg)

    def events(self, trace):
        if not isinstance(trace, dict):
            self.err("top level is not a JSON object")
            return []
        ev = trace.get("traceEvents")
        if not isinstance(ev, list):
            self.err('no "traceEvents" array')
            return []
        unit = trace.get("displayTimeUnit")
        if unit is not None and unit not in ("ms", "ns"):
            self.err("displayTimeUnit %r is neither ms nor ns" % unit)
        good = []
        for i, e in enumerate(ev):
            where = "event %d" % i
            if not isinstance(e, dict):
                self.err("%s is not an object" % where)
                continue
            ph = e.get("ph")
            if not isinstance(ph, str) or len(ph) != 1:
                self.err("%s: bad ph %r" % (where, ph))
                continue
            if not isinstance(e.get("name"), str):
                self.err("%s (%s): no name" % (where, ph))
                continue
            if not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int):
                self.err("%s (%s %r): pid/tid not integers" % (where, ph, e["name"]))
                continue
            if ph != "M" and not _num(e.get("ts")):
                self.err("%s (%s %r): no numeric ts" % (where, ph, e["name"]))
                continue
            if ph == "X" and (not _num(e.get("dur")) or e["dur"] < 0):
                self.err("%s (X %r): dur missing or negative" % (where, e["name"]))
                continue
            good.append(e)
        self.stats["events"] = len(ev)
        return good

    def _nest(self, key, sl, unit):
        """Slices sorted by (start, -length) must form a stack."""
        sl.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        stack = []
        for b, end, name in sl:
            while stack and stack[-1][1] <= b:
                stack.pop()
            if stack and end > stack[-1][1]:
                top = stack[-1]
                self.err("track pid %d tid %d: %r [%r, %r) partially overlaps %r [%r, %r) (%s)"
                         % (key[0], key[1], name, b, end, top[2], top[0], top[1], unit))
                continue
            stack.append((b, end, name))

    def slices(self, ev):
        tracks, floats = defaultdict(list), defaultdict(list)
        for e in ev:
            if e["ph"] == "X":
                b = ns(e["ts"])
                tracks[(e["pid"], e["tid"])].append((b, b + ns(e["dur"]), e["name"]))
                f = float(e["ts"])
                floats[(e["pid"], e["tid"])].append((f, f + float(e["dur"]), e["name"]))
        for key, sl in tracks.items():
            self._nest(key, sl, "ns")
            self._nest(key, floats[key], "float us, ts + dur")
            self.stats["slices"] += len(sl)
        self.stats["tracks"] = len(tracks)
        return tracks

    @staticmethod
    def _inside(track, ts):
        """Is ts inside (begin <= ts < end, or == begin of an empty one) a slice of track?"""
        lo, hi = 0, len(track)
        while lo < hi:  # last slice beginning at or before ts
            mid = (lo + hi) // 2
            if track[mid][0] <= ts:
                lo = mid + 1
            else:
                hi = mid
        for k in range(lo - 1, max(lo - 64, -1), -1):
            b, end, _ = track[k]
            if b <= ts < end or b == ts == end:
                return True
        return False

    def flows(self, ev, tracks):
        starts, finishes = {}, defaultdict(list)
        for e in ev:
            if e["ph"] not in ("s", "f"):
                continue
            if "id" not in e:
                self.err("flow %s %r without id" % (e["ph"], e["name"]))
                continue
            key = (e.get("cat"), e["name"], str(e["id"]))
            if e["ph"] == "s":
                if key in starts:
                    self.err("flow id %s started twice" % (key,))
                starts[key] = e
            else:
                finishes[key].append(e)
        for key, s in starts.items():
            f = finishes.get(key, [])
            if len(f) != 1:
                self.err("flow %s: %d finishes, expected 1" % (key, len(f)))
                continue
            f = f[0]
            if ns(f["ts"]) < ns(s["ts"]):
                self.err("flow %s finishes (%s) before it starts (%s)" % (key, f["ts"], s["ts"]))
            st = tracks.get((s["pid"], s["tid"]), [])
            if not self._inside(st, ns(s["ts"])):
                self.err("flow %s: start at %s is in no slice of tid %d" % (key, s["ts"], s["tid"]))
            if f.get("bp") == "e":
                ft = tracks.get((f["pid"], f["tid"]), [])
                if not self._inside(ft, ns(f["ts"])):
                    self.err("flow %s: finish at %s is in no slice of tid %d" % (key, f["ts"], f["tid"]))
        for key in finishes:
            if key not in starts:
                self.err("flow %s finishes without a start" % (key,))
        self.stats["flows"] = len(starts)

    def counters(self, ev):
        last = {}
        for e in ev:
            if e["ph"] != "C":
                continue
            args = e.get("args")
            if not isinstance(args, dict) or not args or not all(_num(v) for v in args.values()):
                self.err("counter %r at %s: args not numeric" % (e["name"], e["ts"]))
            key = (e["pid"], e["name"], e.get("id"))
            t = ns(e["ts"])
            if key in last and t < last[key]:
                self.err("counter %r goes back in time: %s after %.3f" % (e["name"], e["ts"], last[key] / 1000))
            last[key] = t
            self.stats["counter_values"] += 1
        self.stats["counters"] = len(last)

    def metadata(self, ev):
        for e in ev:
            if e["ph"] == "M" and e["name"] in ("thread_name", "process_name"):
                name = (e.get("args") or {}).get("name")
                if not isinstance(name, str) or not name:
                    self.err("%s of tid %d names nothing" % (e["name"], e["tid"]))
                else:
                    self.stats[e["name"]] += 1

    def stacks(self, trace, ev):
        n = 0
        for e in ev:
            args = e.get("args")
            if not isinstance(args, dict) or ("stack" not in args and "stack_depth" not in args):
                continue
            where = "%s %r at %s (tid %d)" % (e["ph"], e["name"], e.get("ts"), e["tid"])
            if e["ph"] != "X" or e["name"] not in (HOLD, WAIT, WAIT_ABANDONED):
                self.err("%s: a stack on something that is no wait or hold slice" % where)
                continue
            st = args.get("stack")
            if not isinstance(st, list) or not st:
                self.err("%s: args.stack is not a non-empty list: %r" % (where, st))
                continue
            if len(st) > MAX_STACK:
                self.err("%s: args.stack has %d frames, more than %d" % (where, len(st), MAX_STACK))
            if not all(isinstance(f, str) and f.strip() for f in st):
                self.err("%s: args.stack holds something that is no frame label" % where)
            depth = args.get("stack_depth")
            if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                                      or len(st) != MAX_STACK or depth <= len(st)):
                self.err("%s: args.stack_depth %r with %d frames shown" % (where, depth, len(st)))
            n += 1
        if n and not (trace.get("metadata") or {}).get("stack_note"):
            self.err("%d slices have stacks, but the metadata has no stack_note" % n)
        self.stats["slices_with_stack"] = n

    def sums(self, trace, ev, gj):
        md = trace.get("metadata") or {}
        if md.get("truncated"):
            self.stats["sums_skipped_truncated"] = 1
            return
        hold, wait, nh, nw = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
        for e in ev:
            if e["ph"] != "X":
                continue
            if e["name"] == HOLD:
                hold[e["tid"]] += slice_ns(e)
                nh[e["tid"]] += 1
            elif e["name"] == WAIT:
                wait[e["tid"]] += slice_ns(e)
                nw[e["tid"]] += 1
        want_hold, want_wait = defaultdict(int), defaultdict(int)
        for t in gj.get("threads", []):
            want_hold[t["tid"]] += t["hold_ns"]
            want_wait[t["tid"]] += t["wait_ns"]
        for tid in want_hold:
            if abs(hold[tid] - want_hold[tid]) > max(1, nh[tid]):
                self.err("tid %d: holds GIL slices sum to %d ns, the JSON says hold_ns %d"
                         % (tid, hold[tid], want_hold[tid]))
            if abs(wait[tid] - want_wait[tid]) > max(1, nw[tid]):
                self.err("tid %d: waits for GIL slices sum to %d ns, the JSON says wait_ns %d"
                         % (tid, wait[tid], want_wait[tid]))
            self.stats["threads_summed"] += 1


def check(trace, giltrace_json=None):
    c = Checker()
    ev = c.events(trace)
    tracks = c.slices(ev)
    c.flows(ev, tracks)
    c.counters(ev)
    c.metadata(ev)
    c.stacks(trace, ev)
    if giltrace_json is not None:
        c.sums(trace, ev, giltrace_json)
    return c.errors, dict(c.stats)


def self_test():
    """The checker finds what it must: one good trace, then one fault each."""
    def x(tid, ts, dur, name=HOLD):
        return {"ph": "X", "name": name, "pid": 1, "tid": tid, "ts": Decimal(ts), "dur": Decimal(dur)}

    def flow(ph, tid, ts, fid=1):
        e = {"ph": ph, "name": "GIL hand-off", "cat": "gil", "pid": 1, "tid": tid, "ts": Decimal(ts), "id": fid}
        if ph == "f":
            e["bp"] = "e"
        return e

    def counter(ts, v):
        return {"ph": "C", "name": "threads waiting for the GIL", "pid": 1, "tid": 1,
                "ts": Decimal(ts), "args": {"count": v}}

    def stacked(e, stack, depth=None):
        e = dict(e, args={"stack": stack})
        if depth is not None:
            e["args"]["stack_depth"] = depth
        return e

    deep = ["recurse:fib (/srv/recurse.py:5)"] * MAX_STACK
    good = [stacked(x(1, "0", "1", WAIT), ["app:f (/srv/app.py:3)", "app:<module> (/srv/app.py:9)"]),
            x(1, "1", "2"), stacked(x(2, "0", "3.5", WAIT), deep, 41),
            stacked(x(2, "3.5", "1"), ["time_sleep [libpython3.12.so.1.0]", "[truncated]"]),
            flow("s", 1, "2.9"), flow("f", 2, "3.6"), counter("0", 1), counter("1", 0)]
    gj = {"threads": [{"tid": 1, "hold_ns": 2000, "wait_ns": 1000}, {"tid": 2, "hold_ns": 1000, "wait_ns": 3500}]}
    faults = {
        "partial overlap": [x(1, "1.5", "2", WAIT)],
        "float overlap": [x(3, "0.1", "0.2", WAIT), x(3, "0.3", "1")],
        "flow without finish": [flow("s", 1, "2.5", 7)],
        "flow back in time": [flow("s", 1, "2.9", 8), flow("f", 2, "0.5", 8)],
        "flow outside slices": [flow("s", 1, "9", 9), flow("f", 2, "9.5", 9)],
        "counter back in time": [counter("0.5", 2)],
        "sums": [x(1, "5", "1")],
        "stack not a list": [stacked(x(4, "0", "1"), "app:f (/srv/app.py:3)")],
        "empty stack": [stacked(x(4, "0", "1"), [])],
        "stack too deep": [stacked(x(4, "0", "1"), deep + ["app:f (/srv/app.py:3)"])],
        "stack with a non-string": [stacked(x(4, "0", "1"), ["app:f (/srv/app.py:3)", 7])],
        "stack_depth without a cut": [stacked(x(4, "0", "1"), ["app:f (/srv/app.py:3)"], 40)],
        "stack on another slice": [stacked(x(4, "0", "1", "records lost (ring buffer full)"), ["x"])],
    }
    ok = True
    meta = {"stack_note": "args.stack: innermost frame first"}
    errors, _ = check({"traceEvents": good, "metadata": meta}, gj)
    if errors:
        print("perfetto_check self-test: the good trace fails: %s" % errors[0])
        ok = False
    for what, extra in faults.items():
        errors, _ = check({"traceEvents": good + extra, "metadata": meta}, gj)
        if not errors:
            print("perfetto_check self-test: %s not found" % what)
            ok = False
    errors, _ = check({"traceEvents": good}, gj)
    if not errors:
        print("perfetto_check self-test: stacks without a stack_note not found")
        ok = False
    print("perfetto_check self-test: %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description="check a giltrace --perfetto file"
                                 " (perfetto_check.py --self-test: check the checker)")
    ap.add_argument("trace")
    ap.add_argument("--json", help="giltrace --json of the same trace: compare hold/wait sums")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args()
    try:
        with open(a.trace) as f:
            trace = json.load(f, parse_float=Decimal)
        gj = None
        if a.json:
            with open(a.json) as f:
                gj = json.load(f)
    except (OSError, ValueError) as e:
        print("perfetto_check: %s" % e)
        return 1
    errors, st = check(trace, gj)
    for e in errors[:30]:
        print("perfetto_check: %s" % e)
    if len(errors) > 30:
        print("perfetto_check: ... %d more problems" % (len(errors) - 30))
    if errors:
        return 1
    if not a.quiet:
        msg = ("perfetto_check: OK: %d events, %d slices on %d tracks, %d flows, %d counter values"
               % (st.get("events", 0), st.get("slices", 0), st.get("tracks", 0), st.get("flows", 0),
                  st.get("counter_values", 0)))
        if st.get("slices_with_stack"):
            msg += ", %d slices with stacks" % st["slices_with_stack"]
        if gj is not None:
            msg += (", sums skipped (timeline truncated)" if st.get("sums_skipped_truncated")
                    else ", hold/wait sums match for %d threads" % st.get("threads_summed", 0))
        print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
