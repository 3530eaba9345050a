# SPDX-License-Identifier: MIT
"""
--threads N (default 1000) short-lived threads, started in batches of
--batch B (default 20) that are all alive at once (each waits on an Event,
then sums range(2000) and exits). Prints "done threads=N total=T" where
T must equal N * sum(range(2000)), then "ok".
"""
import threading

from wlcommon import arg, say

n = arg("threads", 1000, int)
b = arg("batch", 20, int)
results = []
lock = threading.Lock()


def work(ev):
    ev.wait()
    s = sum(range(2000))
    with lock:
        results.append(s)


started = 0
while started < n:
    ev = threading.Event()
    batch = [threading.Thread(target=work, args=(ev,)) for _ in range(min(b, n - started))]
    for t in batch:
        t.start()
    ev.set()
    for t in batch:
        t.join()
    started += len(batch)
total = sum(results)
say("done", "threads=%d" % len(results), "total=%d" % total)
say("ok" if total == n * sum(range(2000)) and len(results) == n else "BAD")
