# SPDX-License-Identifier: MIT
"""
Launch mode: giltrace -- COMMAND, through pyenv's shim, env, sh; the
command's output untouched, its exit status passed on, traced from its
first bytecode.
"""
import os
import re
import signal

import gtlib
from gtlib import Fail, Skip
from suite import check_json, check_target, test

OUT = b"first line\n\xc3\xbcn\xc3\xafc\xc3\xb6de \xe2\x9c\x93\n\ttabbed\r\nlast line, no newline"
ERR = b"stderr line 1\nstderr line 2\n"
FIRST_READS = 500


def interp_for(ctx, path):
    """The discovered Interp that `path` runs (through shims and env)."""
    r = gtlib.run([path, "-c", "import os, sys; print(os.path.realpath(sys.executable))"], timeout=30)
    if r.rc != 0:
        raise Skip("%s does not run: %s" % (path, r.stderr.strip()[-200:]))
    real = r.stdout.strip()
    for i in ctx.env.interps:
        if i.real == real:
            return i
    raise Skip("%s runs %s, which is not among the discovered interpreters" % (path, real))


def check_first_bytecode(ctx, doc, pid, interp):
    """launch_target.py's first statements make 500 releases of the GIL."""
    if interp.vt < (3, 7):
        ctx.note("3.6 creates the GIL only with the first thread: first-bytecode count not checked")
        return
    m = gtlib.threads_by_tid(doc).get(pid)
    if not ctx.expect(m is not None, "main thread %d not in the JSON threads %s" % (pid, sorted(gtlib.threads_by_tid(doc)))):
        return
    # +1: the interpreter takes the GIL once at start-up, before any bytecode.
    ctx.expect(m["acquisitions"] >= FIRST_READS + 1 and m["hold"]["count"] >= FIRST_READS,
               "main thread: %d acquisitions / %d releases, expected >= %d / %d (traced from the first bytecode)" % (
                   m["acquisitions"], m["hold"]["count"], FIRST_READS + 1, FIRST_READS))


def launch(ctx, cmd, extra=(), timeout=60, env=None):
    jf = ctx.tmp("launch.json")
    rf = ctx.tmp("report.txt")
    r = ctx.giltrace(["-q", "-o", rf, "--json", jf] + list(extra) + ["--"] + cmd, timeout=timeout, env=env)
    return r, jf, rf


def pid_from_json(doc):
    return doc.get("target", {}).get("pid")


@test("launch_pyenv_shim", budget=60)
def pyenv_shim(ctx):
    shim = "/root/.pyenv/shims/python3"
    if not os.access(shim, os.X_OK):
        raise Skip("no pyenv shim at %s" % shim)
    interp = interp_for(ctx, shim)
    r, jf, rf = launch(ctx, [shim, gtlib.workload("launch_target.py"), "--exit", "0"])
    ctx.expect(r.rc == 0, "exit %s, expected 0%s" % (r.rc, r.tail()))
    ctx.expect(r.out == OUT, "stdout changed: %r" % r.out[:200])
    ctx.expect(r.err == ERR, "stderr changed (with -q -o): %r" % r.err[:300])
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    check_target(ctx, doc, interp)
    check_first_bytecode(ctx, doc, pid_from_json(doc), interp)
    ctx.expect(doc.get("exit_status") == 0, "exit_status %r" % doc.get("exit_status"))
    ctx.expect(os.path.getsize(rf) > 0, "-o report file is empty")


@test("launch_env", budget=60)
def via_env(ctx):
    interp = ctx.env.default
    d = os.path.dirname(interp.path)
    name = os.path.basename(interp.path)
    env = dict(os.environ, PATH=d + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    r, jf, rf = launch(ctx, ["env", name, gtlib.workload("launch_target.py"), "--exit", "0"], env=env)
    ctx.expect(r.rc == 0, "exit %s%s" % (r.rc, r.tail()))
    ctx.expect(r.out == OUT, "stdout changed: %r" % r.out[:200])
    ctx.expect(r.err == ERR, "stderr changed: %r" % r.err[:300])
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    check_target(ctx, doc, interp)
    check_first_bytecode(ctx, doc, pid_from_json(doc), interp)


@test("launch_sh_forks_python", budget=60)
def via_sh(ctx):
    """sh -c 'python ...; exit 5': python is a forked child of the shell."""
    interp = ctx.env.default
    cmd = ["sh", "-c", '"$0" "$1" --exit 0; exit 5', interp.path, gtlib.workload("launch_target.py")]
    r, jf, rf = launch(ctx, cmd)
    ctx.expect(r.rc == 5, "exit %s, expected the shell's 5%s" % (r.rc, r.tail()))
    ctx.expect(r.out == OUT, "stdout changed: %r" % r.out[:200])
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    check_target(ctx, doc, interp)
    check_first_bytecode(ctx, doc, pid_from_json(doc), interp)


@test("launch_exit_status", budget=60)
def exit_status(ctx):
    interp = ctx.env.default
    wl = gtlib.workload("launch_target.py")
    for args, want in ((["--exit", "7"], 7), (["--exit", "0"], 0),
                       (["--signal", str(int(signal.SIGKILL))], 128 + 9),
                       (["--signal", str(int(signal.SIGTERM))], 128 + 15)):
        r, jf, rf = launch(ctx, [interp.path, wl] + args)
        ctx.expect(r.rc == want, "%s: giltrace exit %s, expected %d%s" % (" ".join(args), r.rc, want, r.tail(3)))
        ctx.expect(r.out == OUT, "%s: stdout changed" % " ".join(args))
        try:
            doc = gtlib.load_json(jf)
            ctx.expect(doc.get("exit_status") == want, "%s: JSON exit_status %r, expected %d" % (" ".join(args), doc.get("exit_status"), want))
        except Fail as e:
            ctx.expect(False, "%s: %s" % (" ".join(args), e))


@test("launch_command_without_python", budget=30)
def no_python(ctx):
    """A command that never becomes Python: its status is passed on."""
    r = ctx.giltrace(["-q", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30)
    ctx.expect(r.rc == 3, "exit %s, expected 3%s" % (r.rc, r.tail()))
    ctx.expect(r.out == b"out\n", "stdout %r" % r.out)
    ctx.expect(r.err.startswith(b"err\n"), "stderr %r" % r.err[:200])


@test("launch_report_on_stderr", budget=60)
def report_stderr(ctx):
    """Without -o the report goes to stderr, after the command's own stderr; stdout stays the command's."""
    interp = ctx.env.default
    r = ctx.giltrace(["--", interp.path, gtlib.workload("launch_target.py"), "--thread"], timeout=60)
    ctx.expect(r.rc == 0, "exit %s%s" % (r.rc, r.tail()))
    ctx.expect(r.out == OUT, "stdout is not exactly the command's: %r" % r.out[-200:])
    i = r.err.find(ERR)
    ctx.expect(i >= 0, "the command's stderr is not intact in giltrace's stderr: %r" % r.err[:300])
    if i >= 0:
        rest = r.err[i + len(ERR):].decode("utf-8", "replace")
        ctx.expect(len(rest.strip().splitlines()) >= 3, "no report after the command's stderr: %r" % rest[:300])
        ctx.expect(re.search(r"GIL", rest), "report does not mention the GIL: %r" % rest[:300])
        before = r.err[:i].decode("utf-8", "replace")
        ctx.expect(re.search(r"^giltrace: tracing PID \d+ \(Python ", before, re.M),
                   "no 'giltrace: tracing PID' progress line before the output: %r" % before[:300])


@test("launch_duration_keeps_waiting", budget=60)
def duration(ctx):
    """-d 0.3 in launch mode stops tracing after 0.3 s and still waits for the command."""
    interp = ctx.env.default
    jf = ctx.tmp("d.json")
    r = ctx.giltrace(["-q", "-d", "0.3", "--json", jf, "--", interp.path, gtlib.workload("spin.py"),
                      "--threads", "2", "--seconds", "1.5"], timeout=60)
    ctx.expect(r.rc == 0, "exit %s%s" % (r.rc, r.tail()))
    ctx.expect(r.stdout.rstrip().endswith("ok"), "the command did not finish its work: %r" % r.stdout[-200:])
    ctx.expect(r.elapsed >= 1.5, "giltrace returned after %.2fs, before the 1.5 s command ended" % r.elapsed)
    doc = gtlib.load_json(jf)
    check_json(ctx, doc, launch=True)
    iv = doc.get("interval_ns", 0)
    ctx.expect(0.25e9 <= iv <= 0.6e9, "interval_ns %.3fs for -d 0.3" % (iv / 1e9))
