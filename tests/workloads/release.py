# SPDX-License-Identifier: MIT
"""
Exactness workload: one thread makes --n calls of each GIL-releasing kind
(--ops read,sleep0,stat,listdir,write: os.read of one byte from /dev/zero,
time.sleep(0), os.stat, os.listdir, an unbuffered FileIO.write to
/dev/null) beside --spinners K spinning threads (default 1). Each call
releases the GIL and takes it back, so the releaser shows at least
n * len(ops) acquisitions and releases.
Prints "tids releaser=R spinners=a,b main=M" then "done ops=TOTAL".
--switch-interval S (default 5e-5, so the hand-backs are quick),
--tail S: then let the spinners alone spin S more seconds (long holds);
--go: wait for a stdin line before starting; --linger: print "done", then
wait for a stdin line before exiting.
"""
import os
import sys
import tempfile
import threading
import time

from wlcommon import arg, flag, gettid, read_line, report_spinners, say, start_spinners

n = arg("n", 500, int)
ops = arg("ops", "read,sleep0,stat,listdir,write").split(",")
k = arg("spinners", 1, int)
sys.setswitchinterval(arg("switch-interval", 5e-5, float))

fd = os.open("/dev/zero", os.O_RDONLY)
null = open("/dev/null", "wb", buffering=0)
empty = tempfile.mkdtemp(prefix="gt-release-")  # listdir: one release per call


def do_read():
    for _ in range(n):
        os.read(fd, 1)


def do_sleep0():
    for _ in range(n):
        time.sleep(0)


def do_stat():
    for _ in range(n):
        os.stat("/")


def do_listdir():
    for _ in range(n):
        os.listdir(empty)


def do_write():
    for _ in range(n):
        null.write(b"x")


table = {"read": do_read, "sleep0": do_sleep0, "stat": do_stat,
         "listdir": do_listdir, "write": do_write}
done = []
info = {}


def releaser():
    info["tid"] = gettid()
    info["ev"].set()
    go.wait()
    for op in ops:
        table[op]()
        done.append(op)


if flag("go"):
    say("waiting", "main=%d" % gettid())
    read_line()
info["ev"] = threading.Event()
go = threading.Event()
stop = [False]
sp = start_spinners(k, stop)
r = threading.Thread(target=releaser, name="releaser")
r.start()
info["ev"].wait()
say("tids", "releaser=%d" % info["tid"], "spinners=" + ",".join(str(t.tid) for t in sp),
    "main=%d" % gettid())
go.set()
r.join()
tail = arg("tail", 0.0, float)
if tail:
    time.sleep(tail)
stop[0] = True
for t in sp:
    t.join()
good = report_spinners(sp) and len(done) == len(ops)
os.rmdir(empty)
say("done", "ops=%d" % (n * len(done)))
if flag("linger"):
    read_line()
say("ok" if good else "BAD")
sys.exit(0 if good else 3)
