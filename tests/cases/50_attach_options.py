# SPDX-License-Identifier: MIT
"""
Attach mode's outputs and options: report on stdout, the progress line,
-q, -o, --json -, --tid, --top, --hist, -i.
"""
import json
import os
import re

import gtlib
from gtlib import Skip
from suite import TRACING_RX, check_json, parse_kv, test, tids


def spinners(ctx, n=3):
    w = ctx.python(ctx.env.default, "spin.py", "--threads", n)
    kv = parse_kv(w.wait_out(r"^ready ", 30).string)
    return w, tids(kv["tids"]), int(kv["main"])


def stop(ctx, w):
    w.close_stdin()
    rc = w.wait(30, what="spin.py")
    ctx.expect(rc == 0 and "ok" in w.stdout.split(), "spin.py did not finish well: rc %s %r" % (rc, w.stdout[-200:]))


def row_tids(text):
    """TIDs that start a report row ("  1234 name ...")."""
    return set(int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+\S", text, re.M))


def find_json(text):
    """The giltrace/1 object in text (alone, or among report lines)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    dec = json.JSONDecoder()
    for m in re.finditer(r"^\{", text, re.M):
        try:
            obj, end = dec.raw_decode(text, m.start())
            if isinstance(obj, dict) and obj.get("schema"):
                return obj
        except ValueError:
            continue
    return None


@test("attach_report_on_stdout", budget=40)
def report_stdout(ctx):
    w, sp, main = spinners(ctx)
    g = ctx.attach(w.pid, ["-d", "0.5"])
    ver = g.tracing.group(2)
    ctx.expect(ver == ctx.env.default.version, "tracing line says Python %s, not %s" % (ver, ctx.env.default.version))
    ctx.expect(int(g.tracing.group(3)) >= 2, "tracing line says %s probes" % g.tracing.group(3))
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    out = g.stdout
    ctx.expect(len(out.strip().splitlines()) >= 4, "report on stdout is too short: %r" % out[:300])
    missing = [t for t in sp if t not in row_tids(out)]
    ctx.expect(not missing, "no report rows for spinners %s" % missing)
    ctx.expect(re.search(r"GIL", out), "report does not mention the GIL")
    err = [l for l in g.stderr.splitlines() if l.strip()]
    ctx.expect(len(err) == 1 and re.match(TRACING_RX, err[0]), "stderr should be just the tracing line: %r" % err[:4])
    ctx.expect("\x1b[" not in out, "colour escapes in a report that is not on a tty")
    stop(ctx, w)


@test("attach_quiet", budget=40)
def quiet(ctx):
    w, sp, main = spinners(ctx)
    g = ctx.attach(w.pid, ["-q", "-d", "0.4"], quiet=True)
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    ctx.expect(not g.stderr.strip(), "-q: stderr not empty: %r" % g.stderr[:300])
    ctx.expect(g.stdout.strip(), "-q: no report on stdout")
    stop(ctx, w)


@test("attach_output_file", budget=40)
def output_file(ctx):
    w, sp, main = spinners(ctx)
    rf = ctx.tmp("report.txt")
    g = ctx.attach(w.pid, ["-d", "0.4", "-o", rf])
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    ctx.expect(not g.stdout.strip(), "-o: stdout not empty: %r" % g.stdout[:300])
    text = open(rf).read() if os.path.exists(rf) else ""
    ctx.expect(all(t in row_tids(text) for t in sp), "-o file lacks rows for the spinners: %r" % text[:300])
    stop(ctx, w)


@test("attach_json_stdout", budget=40)
def json_stdout(ctx):
    w, sp, main = spinners(ctx)
    g = ctx.attach(w.pid, ["-q", "-d", "0.4", "--json", "-"], quiet=True)
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    doc = find_json(g.stdout)
    ctx.require(doc is not None, "--json -: no JSON object on stdout: %r" % g.stdout[:300])
    check_json(ctx, doc)
    ths = gtlib.threads_by_tid(doc)
    ctx.expect(all(t in ths for t in sp), "JSON lacks spinners %s: %s" % (sp, sorted(ths)))
    ctx.expect(doc.get("threads_total", 0) >= len(sp), "threads_total %r" % doc.get("threads_total"))
    stop(ctx, w)


@test("attach_tid_filter", budget=40)
def tid_filter(ctx):
    w, sp, main = spinners(ctx, 3)
    jf = ctx.tmp("tid.json")
    keep = sp[:2]
    g = ctx.attach(w.pid, ["-d", "0.5", "--json", jf, "--tid", ",".join(str(t) for t in keep)])
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    got = sorted(gtlib.threads_by_tid(doc))
    ctx.expect(got == sorted(keep), "--tid %s: JSON threads %s" % (keep, got))
    ctx.expect(doc.get("threads_total", 0) >= 3, "threads_total %r, expected >= 3 (seen before filtering)" % doc.get("threads_total"))
    ctx.expect(sp[2] not in row_tids(g.stdout), "--tid: the filtered-out spinner %d has a report row" % sp[2])
    ctx.expect(all(t in row_tids(g.stdout) for t in keep), "--tid: report lacks rows for %s" % keep)
    stop(ctx, w)


@test("attach_top", budget=40)
def top(ctx):
    w, sp, main = spinners(ctx, 3)
    jf = ctx.tmp("top.json")
    g = ctx.attach(w.pid, ["-d", "0.5", "--top", "1", "--json", jf])
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    shown = [t for t in sp if t in row_tids(g.stdout)]
    ctx.expect(len(shown) == 1, "--top 1: report has rows for spinners %s" % shown)
    ctx.expect(re.search(r"\b[23]\b.*(more|left out|not shown|omitted|hidden)|(more|left out|not shown|omitted|hidden).*\b[23]\b",
                         g.stdout, re.I),
               "--top 1: no line saying how many threads were left out: %r" % g.stdout[-400:])
    doc = gtlib.load_json(jf)
    ctx.expect(len(doc.get("threads", [])) >= 3, "--top must not cut the JSON (has %d threads)" % len(doc.get("threads", [])))
    stop(ctx, w)


@test("attach_hist", budget=40)
def hist(ctx):
    w, sp, main = spinners(ctx, 2)
    g = ctx.attach(w.pid, ["-d", "0.5", "--hist"])
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    rows = [l for l in g.stdout.splitlines() if re.search(r"\S+\s*->\s*\S+\s*:\s*\d+\s*\|", l)]
    ctx.expect(len(rows) >= 4, "--hist: no libbpf-tools style histogram rows ('lo -> hi : count |***|'): %r" % g.stdout[-500:])
    stop(ctx, w)


@test("attach_interval_reports", budget=40)
def interval(ctx):
    w, sp, main = spinners(ctx, 2)
    g = ctx.attach(w.pid, ["-i", "0.25", "-d", "1.1"])
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    n = len(re.findall(r"^\s*%d\s" % sp[0], g.stdout, re.M))
    ctx.expect(n >= 4, "-i 0.25 -d 1.1: spinner %d has a row in %d reports, expected >= 4" % (sp[0], n))
    stop(ctx, w)


@test("attach_verbose_probe_list", budget=40)
def verbose(ctx):
    w, sp, main = spinners(ctx, 2)
    g = ctx.attach(w.pid, ["-v", "-d", "0.3"])
    rc = ctx.finish(g)
    ctx.expect(rc == 0, "exit %s%s" % (rc, g.tail()))
    ctx.expect(re.search(r"take_gil", g.stderr) and re.search(r"drop_gil", g.stderr),
               "-v: no probe list (take_gil, drop_gil) on stderr: %r" % g.stderr[-400:])
    stop(ctx, w)


@test("attach_colour_only_on_tty", budget=40)
def colour_tty(ctx):
    """The report is coloured on a terminal (and, per attach_report_on_stdout, not elsewhere)."""
    import pty
    import select
    import subprocess
    w, sp, main = spinners(ctx, 2)
    master, slave = pty.openpty()
    p = subprocess.Popen([ctx.gt, "-q", "-p", str(w.pid), "-d", "0.3"], stdin=subprocess.DEVNULL,
                         stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(30)
    ctx.expect(rc == 0, "exit %s: %r" % (rc, p.stderr.read()[-300:]))
    ctx.expect(b"\x1b[" in out, "no colour (ANSI escapes) in the report on a tty: %r" % out[:300])
    stop(ctx, w)


@test("attach_other_mount_namespace", budget=60)
def other_mntns(ctx):
    """
    A target in another mount namespace whose interpreter paths exist only
    there (a bind mount of a pyenv build, libpython loaded from it through
    LD_LIBRARY_PATH): giltrace must open them through /proc/PID/root.
    """
    import shutil
    interp = ctx.env.default
    if not interp.lib or not shutil.which("unshare"):
        raise Skip("needs a shared-libpython interpreter and unshare")
    prefix = os.path.dirname(os.path.dirname(interp.real))
    dst = ctx.tmp("ns-py")
    os.mkdir(dst)
    exe = os.path.join(dst, "bin", os.path.basename(interp.real))
    libdir = os.path.join(dst, "lib")
    script = 'mount --bind "$1" "$2" || exit 99; export LD_LIBRARY_PATH="$3"; shift 3; exec "$@"'
    w = ctx.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", prefix, dst, libdir,
                   exe, "-u", gtlib.workload("spin.py"), "--threads", "2"], name="spin-in-mntns")
    kv = w.wait_out(r"^ready ", 30).string
    sp = [int(x) for x in re.search(r"tids=([\d,]+)", kv).group(1).split(",")]
    ctx.require(not os.path.exists(exe), "%s is visible outside the namespace: the test proves nothing" % exe)
    jf = ctx.tmp("ns.json")
    g = ctx.attach(w.pid, ["-d", "0.5", "--json", jf])
    rc = ctx.finish(g)
    ctx.require(rc == 0, "exit %s%s" % (rc, g.tail()))
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    t = doc["target"]
    ctx.expect(t.get("python_version") == interp.version, "python_version %r" % t.get("python_version"))
    ctx.expect((t.get("library") or "").startswith(dst), "target.library %r, expected the namespace's path under %s" % (t.get("library"), dst))
    ths = gtlib.threads_by_tid(doc)
    ctx.expect(all(ths.get(x, {}).get("acquisitions", 0) > 0 for x in sp), "spinners %s without acquisitions" % sp)
    held = doc["gil"]["held_ns"]
    ctx.expect(held >= 0.95 * doc["interval_ns"], "GIL held %.1f%%" % gtlib.pct(held, doc["interval_ns"]))
    stop(ctx, w)
