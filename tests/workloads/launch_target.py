# SPDX-License-Identifier: MIT
# Launch-mode target. Its first statements make 500 GIL-releasing calls
# (os.read of one byte), so a tracer attached before the first bytecode
# counts at least 500 acquisitions of the main thread; then it writes known
# bytes to stdout and stderr and ends as told:
#   --exit N    exit status N
#   --signal N  kill itself with signal N
#   --thread    start and join one thread first (3.6 creates the GIL lazily)
import os
_fd = os.open("/dev/zero", os.O_RDONLY)
for _i in range(500):
    os.read(_fd, 1)
os.close(_fd)

import sys

OUT = b"first line\n\xc3\xbcn\xc3\xafc\xc3\xb6de \xe2\x9c\x93\n\ttabbed\r\nlast line, no newline"
ERR = b"stderr line 1\nstderr line 2\n"


def main():
    argv = sys.argv[1:]
    if "--thread" in argv:
        import threading
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
    os.write(1, OUT)
    os.write(2, ERR)
    if "--signal" in argv:
        os.kill(os.getpid(), int(argv[argv.index("--signal") + 1]))
    if "--exit" in argv:
        return int(argv[argv.index("--exit") + 1])
    return 0


sys.exit(main())
