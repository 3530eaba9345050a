# SPDX-License-Identifier: MIT
"""
CPython's own threading tests (python -m test test_threading test_queue
test_thread) pass under giltrace exactly as they do without it: same exit
status, same per-test verdicts. Slow (~25 s untraced on 3.12 here): the
default interpreter only unless GILTRACE_FULL=1. Both durations are
printed as a note (-v) and in the failure message.
"""
import os
import re

import gtlib
from gtlib import Fail, Skip
from suite import ENV, add

TESTS = ["test_threading", "test_queue", "test_thread"]


def verdicts(text):
    """
    {test id: verdict} from unittest's -v output. A test's verdict may come
    lines after its "test_x (mod.Class) ... " header when the test prints,
    so each header's verdict is looked for up to the next header.
    """
    hdr = list(re.finditer(r"^(test\w*) \(([\w.]+)\)", text, re.M))
    out = {}
    for i, m in enumerate(hdr):
        end = hdr[i + 1].start() if i + 1 < len(hdr) else len(text)
        v = re.search(r"(?:\.\.\.\s*|^)(ok|FAIL|ERROR|skipped|expected failure|unexpected success)\b",
                      text[m.end():end], re.M)
        out["%s.%s" % (m.group(2), m.group(1))] = v.group(1) if v else "?"
    return out


def summary(text):
    m = re.search(r"^(?:== )?Tests? result: (\S+)", text, re.M)
    return m.group(1) if m else None


def cpython_suite(interp):
    def fn(ctx):
        r = gtlib.run([interp.path, "-c", "import test.test_threading, test.test_queue, test.test_thread"], timeout=60)
        if r.rc != 0:
            raise Skip("%s has no test.test_threading (%s)" % (interp.label, "Debian ships it in libpython3.X-testsuite" if interp.debian else r.stderr.strip()[-120:]))
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        args = ["-m", "test", "-v"] + TESTS
        base = gtlib.run([interp.path] + args, timeout=300, env=env, cwd=ctx.dir)
        jf = ctx.tmp("cp.json")
        traced = gtlib.run([ctx.gt, "-q", "-o", ctx.tmp("cp.txt"), "--json", jf, "--", interp.path] + args,
                           timeout=600, env=env, cwd=ctx.dir)
        times = "untraced %.1fs, traced %.1fs" % (base.elapsed, traced.elapsed)
        ctx.note(times)
        ctx.expect(traced.rc == base.rc, "exit status %s under giltrace, %s without (%s)%s" % (traced.rc, base.rc, times, traced.tail(8)))
        sb, st = summary(base.stdout), summary(traced.stdout)
        ctx.expect(sb is not None and st == sb, "result %s under giltrace, %s without (%s)" % (st, sb, times))
        vb, vt = verdicts(base.stdout), verdicts(traced.stdout)
        diff = ["%s: %s -> %s" % (k, vb.get(k), vt.get(k)) for k in sorted(set(vb) | set(vt)) if vb.get(k) != vt.get(k)]
        ctx.expect(not diff, "%d tests changed verdict under giltrace: %s" % (len(diff), "; ".join(diff[:5])))
        ctx.expect(len(vb) >= 100, "only %d test verdicts parsed from the untraced run" % len(vb))
        try:
            doc = gtlib.load_json(jf)
            ctx.expect(doc.get("exit_status") == base.rc, "JSON exit_status %r" % doc.get("exit_status"))
            ctx.expect(sum(t["acquisitions"] for t in doc.get("threads", [])) > 1000,
                       "fewer than 1000 acquisitions traced over the threading tests")
        except Fail as e:
            ctx.expect(False, str(e))
    return fn


for _i in ENV.interps:
    add("cpython_threading_tests_%s" % _i.label, cpython_suite(_i), budget=400, group="cpython",
        full_only=_i is not ENV.default, slow=True)
