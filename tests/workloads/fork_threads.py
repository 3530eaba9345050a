# SPDX-License-Identifier: MIT
"""
fork() while threads run: --threads K spinners (default 2) run, the main
thread forks. The child (only the forking thread survives in it) starts a
thread of its own, computes a checksum, prints "child ok PID" and exits 0.
The parent waits for it, stops its spinners and prints
"parent ok child_status=S" (S is the child's wait status, 0 when unharmed).
"""
import os
import sys
import threading
import time
import warnings

from wlcommon import arg, report_spinners, say, start_spinners

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
stop = [False]
sp = start_spinners(arg("threads", 2, int), stop)
time.sleep(0.1)
pid = os.fork()
if pid == 0:
    box = []
    t = threading.Thread(target=lambda: box.append(sum(range(100000))))
    t.start()
    t.join()
    good = box == [sum(range(100000))]
    say("child", "ok" if good else "BAD", os.getpid())
    sys.exit(0 if good else 4)
_, status = os.waitpid(pid, 0)
stop[0] = True
for t in sp:
    t.join()
good = report_spinners(sp)
say("parent", "ok" if good else "BAD", "child_status=%d" % status)
sys.exit(0 if good and status == 0 else 3)
