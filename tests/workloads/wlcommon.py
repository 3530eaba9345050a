# SPDX-License-Identifier: MIT
"""
Shared bits of the test workloads. Runs on CPython 3.6+: no walrus, no
threading.get_native_id before 3.8 (gettid through ctypes instead).
"""
import platform
import sys
import threading

_SYS_GETTID = {"x86_64": 186, "aarch64": 178, "i686": 224, "armv7l": 224,
               "ppc64le": 207, "s390x": 236, "riscv64": 178}
_libc = None


def gettid():
    """The OS thread id (what giltrace reports as tid)."""
    f = getattr(threading, "get_native_id", None)
    if f is not None:
        return f()
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc.syscall(_SYS_GETTID[platform.machine()])


def say(*args):
    """One line on stdout, flushed at once (the harness waits for it)."""
    sys.stdout.write(" ".join(str(a) for a in args) + "\n")
    sys.stdout.flush()


def read_line():
    """Block in read(2) on stdin (GIL released) for one line; '' at EOF."""
    return sys.stdin.readline().strip()


def arg(name, default, conv=str):
    """--name VALUE from sys.argv, else default."""
    flag = "--" + name
    if flag in sys.argv:
        i = sys.argv.index(flag)
        if i + 1 < len(sys.argv):
            return conv(sys.argv[i + 1])
    return default


def flag(name):
    return ("--" + name) in sys.argv


class Spinner(threading.Thread):
    """
    Pure-Python CPU loop holding the GIL whenever it runs: s += i, i += 1,
    until stop[0] is set or `work` iterations are done. The result is
    checkable: s == i * (i - 1) // 2.
    """

    def __init__(self, idx, stop, work=0, daemon=False):
        threading.Thread.__init__(self, name="spinner-%d" % idx)
        self.daemon = daemon
        self.idx = idx
        self.stop = stop
        self.work = work
        self.tid = None
        self.started_ev = threading.Event()
        self.iters = 0
        self.total = 0

    def run(self):
        self.tid = gettid()
        self.started_ev.set()
        i = 0
        s = 0
        stop = self.stop
        if self.work:
            n = self.work
            while i < n:
                s += i
                i += 1
        else:
            while not stop[0]:
                s += i
                i += 1
        self.iters = i
        self.total = s

    def ok(self):
        return self.total == self.iters * (self.iters - 1) // 2


def start_spinners(n, stop, work=0, daemon=False):
    sp = [Spinner(k, stop, work, daemon) for k in range(n)]
    for t in sp:
        t.start()
    for t in sp:
        t.started_ev.wait()
    return sp


def report_spinners(sp):
    good = True
    for t in sp:
        say("result", t.idx, t.tid, t.iters, t.total, "ok" if t.ok() else "BAD")
        good = good and t.ok()
    return good
