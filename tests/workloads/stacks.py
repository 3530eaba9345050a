# SPDX-License-Identifier: MIT
"""
Threads that wait for and hold the GIL in known functions on known lines,
for the stacks tests (issue 5). Every spinning loop is one line, so where
a thread waits or holds is one (function, line). Prints, per thread,
"thread KIND TID FUNCTION FILE LINE" before the spinning starts (behind a
barrier, so all threads contend), then "ok".

  --mode known    spin_a, spin_b, spin_c: three threads, one function each
  --mode deep     a thread recursing --depth frames deep (beyond the BPF
                  walk's limit), then spinning, beside a plain spinner
  --mode runtime  code made at run time: a function defined by exec(), a
                  lambda, a generator and a coroutine (driven by send)

--work N: loop iterations per thread (default 8,000,000).
"""
import sys
import threading

from wlcommon import arg, gettid, say

WORK = arg("work", 8000000, int)
MODE = arg("mode", "known")
DEPTH = arg("depth", 200, int)
CHUNKS = 4


def spin_a(n):
    while n: n -= 1
    return n


def spin_b(n):
    while n: n -= 1
    return n


def spin_c(n):
    while n: n -= 1
    return n


def deep(k, n):
    if k:
        return deep(k - 1, n)
    return spin_a(n)


_ns = {}
exec("def made_by_exec(n):\n    while n: n -= 1\n    return n\n", _ns)
made_by_exec = _ns["made_by_exec"]

spin_lambda = lambda n: spin_c(n)


def gen_spin(n):
    while n: n -= 1
    yield n


async def coro_spin(n):
    while n: n -= 1
    return n


def run_coro(n):
    c = coro_spin(n)
    try:
        c.send(None)
    except StopIteration:
        pass


def run_gen(n):
    for _ in gen_spin(n):
        pass


def loop_line(f):
    """The line of f's one-line loop: the line after its def."""
    return f.__code__.co_firstlineno + 1


def worker(kind, fn, report, barrier, work):
    say("thread", kind, gettid(), report.__name__, report.__code__.co_filename,
        loop_line(report))
    barrier.wait()
    for _ in range(CHUNKS):
        fn(work // CHUNKS)


def main():
    if MODE == "known":
        jobs = [("a", spin_a, spin_a), ("b", spin_b, spin_b), ("c", spin_c, spin_c)]
    elif MODE == "deep":
        jobs = [("deep", lambda n: deep(DEPTH, n), spin_a), ("plain", spin_b, spin_b)]
    elif MODE == "runtime":
        jobs = [("exec", made_by_exec, made_by_exec), ("lambda", spin_lambda, spin_c),
                ("generator", run_gen, gen_spin), ("async", run_coro, coro_spin)]
    else:
        sys.exit("unknown --mode %s" % MODE)
    if MODE == "deep":
        sys.setrecursionlimit(DEPTH + 100)
    barrier = threading.Barrier(len(jobs))
    ts = [threading.Thread(target=worker, args=(k, f, r, barrier, WORK), name=k)
          for k, f, r in jobs]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    say("ok")


main()
