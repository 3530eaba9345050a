"""demo.py - giltrace's bundled demo workload: spinning threads and I/O threads.

    giltrace -- python3 examples/demo.py [--seconds S] [--spinners N]

For about 3 seconds:
  spin-1..N   pure-Python loops. Only one can hold the GIL at a time, so each
              one waits for it about (N-1)/N of the time.
  ticker      sleeps 2 ms, then writes 5 bytes to a pipe, in a loop.
  reader      reads that pipe in small os.read() calls (blocks in between).
  logger      writes short lines to a temporary file, 1 ms apart.
The I/O threads hold the GIL for almost nothing, but every time one wakes up
it must wait for a spinner to give the GIL back (up to the 5 ms switch
interval): the report shows them waiting, and the ticker makes fewer ticks
than its sleeps alone would allow.

The OS threads are named after their role (prctl PR_SET_NAME) so that the
report's thread names say who is who. Python 3.6+, Linux.
"""
import argparse
import os
import sys
import tempfile
import threading
import time

TICK_S = 0.002
LOG_S = 0.001


def name_os_thread(name):
	"""Give the calling OS thread a comm the report can show; best effort."""
	try:
		import ctypes
		libc = ctypes.CDLL(None, use_errno=True)
		libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
	except Exception:
		pass


def spinner(name, deadline, out):
	name_os_thread(name)
	n = 0
	now = time.monotonic
	while now() < deadline:
		for _ in range(1000):
			n += 1
	out[name] = n


def ticker(wfd, stop, out):
	name_os_thread("ticker")
	ticks = 0
	while not stop.is_set():
		time.sleep(TICK_S)
		os.write(wfd, b"tick\n")
		ticks += 1
	os.close(wfd)
	out["ticker"] = ticks


def reader(rfd, out):
	name_os_thread("reader")
	reads = nbytes = 0
	while True:
		data = os.read(rfd, 64)
		if not data:
			break
		reads += 1
		nbytes += len(data)
	os.close(rfd)
	out["reader"] = (reads, nbytes)


def logger(stop, out):
	name_os_thread("logger")
	lines = 0
	with tempfile.TemporaryFile() as f:
		fd = f.fileno()
		while not stop.is_set():
			os.write(fd, b"demo log line %d\n" % lines)
			lines += 1
			time.sleep(LOG_S)
	out["logger"] = lines


def main():
	ap = argparse.ArgumentParser(description="giltrace demo workload")
	ap.add_argument("--seconds", type=float, default=3.0)
	ap.add_argument("--spinners", type=int, default=3)
	args = ap.parse_args()

	out = {}
	stop = threading.Event()
	rfd, wfd = os.pipe()
	t0 = time.monotonic()
	deadline = t0 + args.seconds
	spinners = [threading.Thread(target=spinner, name="spin-%d" % (i + 1),
				     args=("spin-%d" % (i + 1), deadline, out))
		    for i in range(args.spinners)]
	io = [threading.Thread(target=ticker, name="ticker", args=(wfd, stop, out)),
	      threading.Thread(target=reader, name="reader", args=(rfd, out)),
	      threading.Thread(target=logger, name="logger", args=(stop, out))]
	for t in io + spinners:
		t.start()
	for t in spinners:
		t.join()
	stop.set()
	for t in io:
		t.join()
	elapsed = time.monotonic() - t0

	ticks = out.get("ticker", 0)
	reads, nbytes = out.get("reader", (0, 0))
	print("demo (Python %s): %d spinning threads and 3 I/O threads for %.1f s"
	      % (sys.version.split()[0], args.spinners, elapsed))
	for i in range(args.spinners):
		name = "spin-%d" % (i + 1)
		print("  %-7s %6.1f M loop iterations" % (name, out.get(name, 0) / 1e6))
	print("  ticker  %6d ticks (sleep %g ms + pipe write); %d if the GIL never made it wait"
	      % (ticks, TICK_S * 1e3, int(elapsed / TICK_S)))
	print("  reader  %6d reads, %d bytes from the pipe" % (reads, nbytes))
	print("  logger  %6d lines written to a temporary file, %g ms apart"
	      % (out.get("logger", 0), LOG_S * 1e3))
	sys.stdout.flush()


if __name__ == "__main__":
	main()
