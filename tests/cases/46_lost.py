# SPDX-License-Identifier: MIT
"""
Records the kernel could not deliver: with a ring buffer far too small
for the event stream (--ring-buffer 4096: about a hundred cycles), records
are lost; the loss is counted, its time ranges are marked incomplete in
the JSON, the text report and the terminal timeline, and the aggregate
figures (kept in the kernel, not in the stream) stay exact.
"""
import gtlib
from suite import check_json, test

N = 40000  # one-byte reads: each releases and retakes the GIL

# One thread, no contention: nothing here can starve (a spinner beside
# readers can hold the GIL for minutes on a busy machine).
READER = ("import os\n"
          "fd = os.open('/dev/zero', os.O_RDONLY)\n"
          "for _ in range(%d):\n"
          "    os.read(fd, 1)\n"
          "print('read-done', flush=True)\n" % N)


@test("lost_records_counted_and_marked", budget=60)
def lost_records(ctx):
    interp = ctx.env.default
    jf = ctx.tmp("lost.json")
    r = ctx.giltrace(["--ring-buffer", 4096, "--json", jf, "--timeline", "--color", "never",
                      "--", interp.path, "-c", READER], timeout=120)
    ctx.require(r.rc == 0, "giltrace exited %s%s" % (r.rc, r.tail()))
    ctx.expect("read-done" in r.stdout, "workload output: %r" % r.stdout[-200:])
    doc = gtlib.load_json(jf)
    check_json(ctx, doc)
    lost = doc.get("records_lost", 0)
    ctx.require(lost > 0, "no record lost with a 4 KiB ring buffer (records_lost=%r)" % lost)
    ranges = doc.get("incomplete_ranges", [])
    ctx.expect(ranges and sum(x["count"] for x in ranges) == lost,
               "incomplete_ranges %r do not add up to records_lost %d" % (ranges[:3], lost))
    for x in ranges:
        ctx.expect(0 <= x["begin_ns"] <= x["end_ns"] <= doc["interval_ns"],
                   "incomplete range %r outside the traced interval %d" % (x, doc["interval_ns"]))
    # The aggregates come from the kernel's maps, not from the stream.
    ctx.expect(doc["gil"]["acquisitions"] >= N,
               "acquisitions %d < the workload's %d releases" % (doc["gil"]["acquisitions"], N))
    ctx.expect("were lost (ring buffer full)" in r.stderr, "the report does not warn about lost records")
    lanes = [l for l in r.stderr.splitlines() if "|" in l and "python" in l]
    ctx.expect(any("?" in l for l in lanes), "no '?' (lost) cell in the timeline lanes: %r" % lanes[:3])
    ctx.note("%d of about %d cycle records lost in %d ranges" % (lost, doc["gil"]["acquisitions"], len(ranges)))
