# SPDX-License-Identifier: MIT
"""
Every interpreter found: spinners' physics (attach, 1 s) and exactness
where the GIL moves often (launch): a thread making N calls of each
releasing kind beside a spinner shows at least that many acquisitions and
releases, and acquisitions and releases agree within 1% over all threads
(for Debian's python3.11 that needs its inlined drop_gil copies probed).
"""
import gtlib
from suite import (ENV, add, check_detached, check_json, check_probes_against_symbols,
                   check_spin_physics, check_target, parse_kv, tids, with_retry)

N_OPS = 400
OPS = ["read", "sleep0", "stat", "listdir", "write"]


def spin4(interp):
    def fn(ctx):
        with_retry(ctx, one)

    def one(ctx):
        w = ctx.python(interp, "spin.py", "--threads", 4)
        kv = parse_kv(w.wait_out(r"^ready ", 30).string)
        sp = tids(kv["tids"])
        jf = ctx.tmp("s4.json")
        starve = gtlib.CpuStarvation(w.pid, sp)
        g = ctx.attach(w.pid, ["-d", "1", "--json", jf])
        ctx.expect(g.tracing.group(2) == interp.version, "tracing line says Python %s" % g.tracing.group(2))
        rc = ctx.finish(g, timeout=90)
        ctx.starved = starve.worst()
        ctx.require(rc == 0, "giltrace exit %s%s" % (rc, g.tail()))
        doc = gtlib.load_json(jf)
        check_json(ctx, doc)
        check_target(ctx, doc, interp, w.pid)
        check_probes_against_symbols(ctx, doc, interp)
        check_spin_physics(ctx, doc, sp, 4, duration=1.0, switch_s=0.005)
        check_detached(ctx, w.pid, doc)
        w.close_stdin()
        ctx.expect(w.wait(30) == 0 and w.stdout.rstrip().endswith("ok"), "spin.py did not finish well: %r" % w.stdout[-200:])
    return fn


def exactness(interp):
    def fn(ctx):
        jf = ctx.tmp("ex.json")
        r = ctx.giltrace(["-q", "-o", ctx.tmp("ex.txt"), "--json", jf, "--", interp.path,
                          gtlib.workload("release.py"), "--n", N_OPS, "--ops", ",".join(OPS)], timeout=120)
        ctx.require(r.rc == 0, "exit %s%s" % (r.rc, r.tail()))
        line = [l for l in r.stdout.splitlines() if l.startswith("tids ")]
        ctx.require(line and r.stdout.rstrip().endswith("ok"), "workload output %r" % r.stdout[-300:])
        kv = parse_kv(line[0])
        rel = int(kv["releaser"])
        doc = gtlib.load_json(jf)
        check_json(ctx, doc, launch=True)
        check_target(ctx, doc, interp)
        check_probes_against_symbols(ctx, doc, interp)
        ths = gtlib.threads_by_tid(doc)
        t = ths.get(rel)
        ctx.require(t, "releaser %d not in the JSON threads %s" % (rel, sorted(ths)))
        n = N_OPS * len(OPS)
        ctx.expect(t["acquisitions"] >= n, "releaser: %d acquisitions for %d GIL-releasing calls" % (t["acquisitions"], n))
        ctx.expect(t["hold"]["count"] >= n, "releaser: %d releases (hold.count) for %d GIL-releasing calls" % (t["hold"]["count"], n))
        acq = sum(x["acquisitions"] for x in doc["threads"])
        rels = sum(x["hold"]["count"] for x in doc["threads"])
        ctx.expect(abs(acq - rels) <= 0.01 * acq + 1,
                   "acquisitions %d vs releases %d differ by more than 1%%" % (acq, rels))
        ctx.expect(doc["gil"]["acquisitions"] == acq, "gil.acquisitions %d != sum over threads %d" % (doc["gil"]["acquisitions"], acq))
        probes = doc["target"]["probes"]
        inl = [p for p in probes if p.get("inlined")]
        if interp.debian and interp.vt[:2] == (3, 11):
            # Debian 12's LTO build inlines drop_gil into PyEval_SaveThread,
            # _Py_read, os.stat, os.listdir and FileIO.write.
            callers = set(p.get("caller") for p in inl if p.get("function") == "drop_gil")
            ctx.expect(len(callers) >= 5, "Debian 3.11: inlined drop_gil probes in %s, expected 5 callers" % sorted(callers, key=str))
        if interp.vt[:2] == (3, 13) and not interp.debian:
            ctx.expect(any(p.get("function") == "drop_gil" for p in inl),
                       "3.13: no probe on drop_gil inlined into PyEval_ReleaseLock")
        ctx.note("releaser %d acq / %d rel; total %d / %d; %d probes (%d inlined)" % (
            t["acquisitions"], t["hold"]["count"], acq, rels, len(probes), len(inl)))
    return fn


for _i in ENV.interps:
    add("interp_%s_spin4" % _i.label, spin4(_i), budget=90, group="interpreters")
    add("interp_%s_exactness" % _i.label, exactness(_i), budget=120, group="interpreters")
