# SPDX-License-Identifier: MIT
"""
Daemon threads still spinning when the interpreter exits: --threads K
daemon spinners (default 3) start, the main thread lets them run for
--seconds S (default 0.3, in time.sleep), prints "main exiting" and
returns. At finalisation the daemons are stuck in take_gil (3.9+ exits
them there; older versions die with the process). Exit status 0.
--hard: end with os._exit(0) instead, which keeps the GIL: every daemon
is then inside take_gil when the process dies.
"""
import os
import time

from wlcommon import arg, flag, say, start_spinners

k = arg("threads", 3, int)
stop = [False]
sp = start_spinners(k, stop, daemon=True)
say("ready", "tids=" + ",".join(str(t.tid) for t in sp))
time.sleep(arg("seconds", 0.3, float))
say("main exiting")
if flag("hard"):
    os._exit(0)
