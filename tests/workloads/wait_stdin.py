# SPDX-License-Identifier: MIT
"""
A Python process that idles: prints "ready pid=P", then echoes every stdin
line back as "echo LINE" until EOF, then "bye". Used by the error tests to
show the target is still alive and answering after giltrace gave up.
Also runs on Python 2.7.
"""
import os
import sys

sys.stdout.write("ready pid=%d\n" % os.getpid())
sys.stdout.flush()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    sys.stdout.write("echo " + line)
    sys.stdout.flush()
sys.stdout.write("bye\n")
sys.stdout.flush()
