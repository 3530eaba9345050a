# SPDX-License-Identifier: MIT
"""
Two threads hand the GIL to each other --rounds K times each way: the main
thread and one partner thread take turns through two locks, a_turn and
b_turn, both locked at first:

    main:    K x { b_turn.release(); a_turn.acquire() }
    partner: K x { b_turn.acquire(); a_turn.release() }

Releasing a lock never drops the GIL; acquiring a locked one blocks with
the GIL released (threading's acquire_timed: Py_BEGIN_ALLOW_THREADS,
3.6-3.12; PyMutex parking with the thread state detached, 3.13+). So each
turn ends with the thread that holds the GIL blocking on its lock, and the
other one, already woken by the release, takes the GIL: every turn is one
change of holder, 2K in all, and nobody else holds the GIL in between
(the process has no other thread). Should the turn's owner be pre-empted
and forced to drop the GIL at a switch interval, the partner takes it and
gives it back at once: the holds still alternate.

Prints "ready main=M partner=P" once the partner runs, then (after a stdin
line with --go) "pingpong rounds=K handoffs=2K begin_ns=B end_ns=E" with
the CLOCK_MONOTONIC times (the clock of bpf_ktime_get_ns) taken by the
main thread right before its first release and right after its last
acquisition, and "ok".
"""
import sys
import threading
import time

from wlcommon import arg, flag, gettid, read_line, say

rounds = arg("rounds", 1000, int)
a_turn = threading.Lock()
b_turn = threading.Lock()
a_turn.acquire()
b_turn.acquire()
info = {}
started = threading.Event()


def mono_ns():
    f = getattr(time, "monotonic_ns", None)  # 3.7+
    return f() if f else int(time.monotonic() * 1e9)


def partner():
    info["tid"] = gettid()
    started.set()
    for _ in range(rounds):
        b_turn.acquire()
        a_turn.release()
    info["done"] = True


main_tid = gettid()  # before 3.8 the first call imports ctypes: not in the partner
t = threading.Thread(target=partner, name="partner")
t.start()
started.wait()
say("ready", "main=%d" % main_tid, "partner=%d" % info["tid"])
if flag("go"):
    read_line()
begin = mono_ns()
for _ in range(rounds):
    b_turn.release()
    a_turn.acquire()
end = mono_ns()
t.join()
say("pingpong", "rounds=%d" % rounds, "handoffs=%d" % (2 * rounds),
    "begin_ns=%d" % begin, "end_ns=%d" % end)
say("ok" if info.get("done") else "BAD")
sys.exit(0 if info.get("done") else 3)
