# SPDX-License-Identifier: MIT
"""
A C call that sleeps while holding the GIL: the main thread calls
ctypes.PyDLL(libc).usleep(--usec, default 200000) --times times (default 3)
beside one spinning thread. PyDLL functions keep the GIL, so the main
thread's holds include the sleeps and the spinner waits through them.
Prints "tids main=M spinner=S", then "slept usec=U times=T" and "ok".
"""
import ctypes

from wlcommon import arg, gettid, report_spinners, say, start_spinners

usec = arg("usec", 200000, int)
times = arg("times", 3, int)
libc = ctypes.PyDLL(None)
stop = [False]
sp = start_spinners(1, stop)
say("tids", "main=%d" % gettid(), "spinner=%d" % sp[0].tid)
for _ in range(times):
    libc.usleep(usec)
say("slept", "usec=%d" % usec, "times=%d" % times)
stop[0] = True
sp[0].join()
say("ok" if report_spinners(sp) else "BAD")
