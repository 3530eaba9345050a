# SPDX-License-Identifier: MIT
"""
Threads that barely touch the GIL: --sleepers K threads loop on
time.sleep(0.01), --readers K threads block in os.read on pipes nobody
writes to (until the end). The main thread blocks on stdin.
Prints "ready sleepers=a,b readers=c,d main=M"; on a stdin line or EOF
it wakes everything, joins, and prints "ok".
"""
import os
import threading
import time

from wlcommon import arg, gettid, read_line, say

ks = arg("sleepers", 2, int)
kr = arg("readers", 2, int)
stop = [False]
tids = {}
ready = threading.Semaphore(0)


def sleeper(i):
    tids[("s", i)] = gettid()
    ready.release()
    while not stop[0]:
        time.sleep(0.01)


pipes = [os.pipe() for _ in range(kr)]
got = []


def reader(i):
    tids[("r", i)] = gettid()
    ready.release()
    got.append(os.read(pipes[i][0], 1))


ths = [threading.Thread(target=sleeper, args=(i,)) for i in range(ks)]
ths += [threading.Thread(target=reader, args=(i,)) for i in range(kr)]
for t in ths:
    t.start()
for _ in ths:
    ready.acquire()
say("ready", "sleepers=" + ",".join(str(tids[("s", i)]) for i in range(ks)),
    "readers=" + ",".join(str(tids[("r", i)]) for i in range(kr)), "main=%d" % gettid())
read_line()
stop[0] = True
for i in range(kr):
    os.write(pipes[i][1], b"x")
for t in ths:
    t.join()
say("ok" if len(got) == kr else "BAD")
