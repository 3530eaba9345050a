# SPDX-License-Identifier: MIT
"""
The pprof export (--pprof, issue 5) read by pprof itself, on the default
interpreter:

- a launch-mode trace of spinning threads with --pprof and --json:
  `go tool pprof -top -sample_index=wait` (and hold) totals equal the
  JSON's per-thread stack totals exactly (one model, two renderers) and
  the threads' wait_ns (hold_ns) within 1% (the capture: every wait and
  hold goes to a stack); the default sample type is wait; `-traces` shows
  the spinners' waits with Spinner.run as the leaf, labelled with their
  thread and TID; pprof neither warns nor tries to symbolize;
- `giltrace record --stacks` + `giltrace report FILE --pprof` gives the
  same totals; a trace recorded without --stacks gives one error line and
  no file.

Skipped when `go` is not installed (Debian: golang-go).
"""
import os
import re
import shutil

import gtlib
from gtlib import Skip
from suite import check_json, parse_kv, test, tids

TOTAL_RX = re.compile(r"Showing nodes accounting for \S+, [\d.]+% of (\d+)(?:ns)? total")


def go_pprof(ctx, args, path):
    """`go tool pprof ARGS PATH` offline, with a private HOME and cache."""
    go = shutil.which("go") or ("/usr/lib/go/bin/go" if os.path.exists("/usr/lib/go/bin/go") else None)
    if not go:
        raise Skip("go is not installed (apt-get install golang-go): pprof cannot read the profile here")
    env = dict(os.environ, HOME=ctx.dir, GOCACHE=ctx.tmp("gocache"), GOPROXY="off", GOFLAGS="",
               GOTOOLCHAIN="local", PPROF_TMPDIR=ctx.dir, PPROF_BINARY_PATH=ctx.dir)
    r = gtlib.run([go, "tool", "pprof"] + list(args) + [path], timeout=60, env=env, cwd=ctx.dir)
    ctx.require(r.rc == 0, "go tool pprof %s exited %s%s" % (" ".join(args), r.rc, r.tail()))
    for bad in ("symbolization failed", "binary filename not available", "Fetching", "parsing profile"):
        ctx.expect(bad not in r.stdout + r.stderr,
                   "go tool pprof %s says %r:%s" % (" ".join(args), bad, r.tail()))
    return r.stdout


def pprof_total(ctx, out, what):
    m = TOTAL_RX.search(out)
    ctx.require(m, "%s: no 'Showing nodes accounting for ... total' line in:\n%s" % (what, out[:600]))
    return int(m.group(1))


def stack_totals(doc, kind):
    """(sum of stacks.<kind>.total_ns, sum of <kind>_ns) over threads with stacks."""
    ths = [t for t in doc["threads"] if "stacks" in t]
    return sum(t["stacks"][kind]["total_ns"] for t in ths), sum(t["%s_ns" % kind] for t in ths)


def check_totals(ctx, path, doc, what):
    for kind in ("wait", "hold"):
        args = ["-top", "-unit=ns", "-sample_index=" + kind]
        total = pprof_total(ctx, go_pprof(ctx, args, path), "%s -sample_index=%s" % (what, kind))
        stacks, figures = stack_totals(doc, kind)
        ctx.expect(total == stacks, "%s: go tool pprof's total %s %d ns, the JSON's stacks say %d ns" % (
            what, kind, total, stacks))
        ctx.expect(abs(total - figures) <= 0.01 * figures,
                   "%s: go tool pprof's total %s %d ns, the threads' %s_ns add up to %d ns (%.2f%% apart)" % (
                       what, kind, total, kind, figures, 100.0 * abs(total - figures) / max(figures, 1)))
    # No -sample_index: the default sample type, wait.
    out = go_pprof(ctx, ["-top", "-unit=ns"], path)
    ctx.expect("Type: wait" in out, "%s: the default sample type is not wait:\n%s" % (what, out[:300]))
    return out


def spin_cmd(ctx):
    return [ctx.env.default.path, "-u", gtlib.workload("spin.py"), "--threads", "2", "--work", "1500000",
            "--switch-interval", "0.005"]


@test("pprof_totals_agree_with_json", budget=90)
def pprof_launch(ctx):
    if not ctx.env.default:
        raise Skip("no interpreter")
    pb, jf = ctx.tmp("gil.pb.gz"), ctx.tmp("gil.json")
    r = ctx.giltrace(["-q", "--pprof", pb, "--json", jf, "--"] + spin_cmd(ctx), timeout=90)
    ctx.require(r.rc == 0, "giltrace --pprof -- spin.py exited %s%s" % (r.rc, r.tail()))
    ctx.require(os.path.getsize(pb) > 20, "--pprof wrote %d bytes" % os.path.getsize(pb))
    with open(pb, "rb") as f:
        ctx.expect(f.read(2) == b"\x1f\x8b", "%s is not gzip-compressed" % pb)
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    ctx.require(doc.get("stacks"), "the JSON has no stacks summary: --pprof did not imply --stacks")
    check_totals(ctx, pb, doc, "launch")

    # Each spinner: its waits' leaf is Spinner.run, labelled with its name and TID.
    kv = parse_kv([l for l in r.stdout.splitlines() if l.startswith("ready ")][0])
    names = dict((t["tid"], t["name"]) for t in doc["threads"])
    for tid in tids(kv["tids"]):
        out = go_pprof(ctx, ["-traces", "-sample_index=wait", "-tagfocus=tid=%d" % tid], pb)
        traces = [t for t in out.split("-----------+") if "tid:" in t]
        if not ctx.expect(traces, "spinner %d: no trace in go tool pprof -traces:\n%s" % (tid, out[:600])):
            continue
        # The heaviest trace (pprof lists by weight): its first frame line is the leaf.
        first = traces[0].splitlines()
        frames = [l for l in first if l.strip() and not re.match(r"^(\s+(thread|tid):|-+$)", l)]
        ctx.expect(frames and "Spinner.run" in frames[0],
                   "spinner %d: the leaf of its heaviest wait is not Spinner.run: %r" % (tid, frames[:3]))
        ctx.expect(re.search(r"^\s+tid:\s+%d\s*$" % tid, traces[0], re.M),
                   "spinner %d: no 'tid: %d' label in %r" % (tid, tid, traces[0][:300]))
        ctx.expect(re.search(r"^\s+thread:\s+%s\s*$" % re.escape(names.get(tid, "?")), traces[0], re.M),
                   "spinner %d: no 'thread: %s' label in %r" % (tid, names.get(tid), traces[0][:300]))


@test("pprof_from_a_trace_file", budget=90)
def pprof_report(ctx):
    if not ctx.env.default:
        raise Skip("no interpreter")
    gil, pb, jf = ctx.tmp("app.gil"), ctx.tmp("r.pb.gz"), ctx.tmp("r.json")
    r = ctx.giltrace(["record", "--stacks", "-o", gil, "--"] + spin_cmd(ctx), timeout=90)
    ctx.require(r.rc == 0, "giltrace record --stacks exited %s%s" % (r.rc, r.tail()))
    r = ctx.giltrace(["report", gil, "--pprof", pb, "--json", jf], timeout=60)
    ctx.require(r.rc == 0, "giltrace report --pprof exited %s%s" % (r.rc, r.tail()))
    doc = gtlib.load_json(jf)
    check_totals(ctx, pb, doc, "report")

    # Recorded without --stacks: one line naming the fix, no file left.
    plain, pb2 = ctx.tmp("plain.gil"), ctx.tmp("none.pb.gz")
    r = ctx.giltrace(["record", "-o", plain, "--"] + spin_cmd(ctx), timeout=90)
    ctx.require(r.rc == 0, "giltrace record exited %s%s" % (r.rc, r.tail()))
    r = ctx.giltrace(["report", plain, "--pprof", pb2], timeout=60)
    ctx.expect(r.rc not in (0, None) and 0 < r.rc < 128, "report --pprof of a trace without stacks exited %s" % r.rc)
    ctx.expect("--stacks" in r.stderr, "no hint to record with --stacks:%s" % r.tail())
    ctx.expect(not re.search(r"Sanitizer|core dumped|Segmentation|Aborted", r.stderr), "crash:%s" % r.tail())
    ctx.expect(not os.path.exists(pb2), "a profile was left behind for a trace without stacks")
