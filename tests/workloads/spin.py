# SPDX-License-Identifier: MIT
"""
N spinning threads. Prints "ready tids=a,b,... main=M switch=S" once every
spinner runs. Stops on a stdin line or EOF (--stdin, the default), after
--seconds S (main sleeps), or after --work ITER iterations each.
--go: wait for a stdin line before starting the spinners ("waiting" first).
--linger: after the results, print "done" and wait for one more stdin line.
--switch-interval S: sys.setswitchinterval(S) before starting.
Ends with one "result idx tid iters sum ok" line per spinner and "ok".
"""
import sys
import time

from wlcommon import arg, flag, gettid, read_line, report_spinners, say, start_spinners

n = arg("threads", 2, int)
seconds = arg("seconds", 0.0, float)
work = arg("work", 0, int)
si = arg("switch-interval", 0.0, float)
if si:
    sys.setswitchinterval(si)
if flag("go"):
    say("waiting", "main=%d" % gettid())
    read_line()
stop = [False]
sp = start_spinners(n, stop, work)
say("ready", "tids=" + ",".join(str(t.tid) for t in sp), "main=%d" % gettid(),
    "switch=%g" % sys.getswitchinterval())
if work:
    pass
elif seconds:
    time.sleep(seconds)
else:
    read_line()
stop[0] = True
for t in sp:
    t.join()
good = report_spinners(sp)
if flag("linger"):
    say("done")
    read_line()
say("ok" if good else "BAD")
sys.exit(0 if good else 3)
