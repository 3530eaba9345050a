"""io_heavy.py - bench workload: many tiny GIL releases beside CPU work.

Two reader threads each make N one-byte os.read() calls on their own pipe
(every call drops and retakes the GIL) while one thread spins in pure
Python until both readers are done: about 2*N GIL cycles in all.  The pipes
are enlarged (F_SETPIPE_SZ) and filled before the clock starts, so no read
ever blocks and no writer thread adds cycles; if a pipe cannot hold N bytes
the reader reads a temporary file instead (os.read releases the GIL the
same way).
Prints one line for scripts/bench/bench.py:
    giltrace-bench: elapsed=S cpu=S maxrss_kb=K
elapsed is time.perf_counter() around the threads' start-to-join only; cpu
is time.process_time() (all threads) over the same span; maxrss_kb is the
process's peak RSS.
Python 3.6+.  Usage: python io_heavy.py [N]
"""
import fcntl
import os
import resource
import sys
import tempfile
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ from Python 3.10; Linux value


def filled_fd(n):
	"""A readable fd holding n bytes that reads without blocking."""
	r, w = os.pipe()
	try:
		size = fcntl.fcntl(w, F_SETPIPE_SZ, n)
		if size >= n:
			data = b"x" * n
			done = 0
			while done < n:
				done += os.write(w, data[done:])
			os.close(w)
			return r
	except OSError:
		pass
	os.close(r)
	os.close(w)
	f = tempfile.TemporaryFile()
	f.write(b"x" * n)
	f.flush()
	fd = os.dup(f.fileno())
	f.close()
	os.lseek(fd, 0, os.SEEK_SET)
	return fd


def reader(fd, n, out, i):
	got = 0
	read = os.read
	for _ in range(n):
		got += len(read(fd, 1))
	out[i] = got


def spinner(stop, out):
	x = 0
	while not stop.is_set():
		for _ in range(100):
			x += 1
	out[2] = x


def main():
	fds = [filled_fd(N), filled_fd(N)]
	out = [0, 0, 0]
	stop = threading.Event()
	spin = threading.Thread(target=spinner, args=(stop, out), name="spin")
	readers = [threading.Thread(target=reader, args=(fds[i], N, out, i),
				    name="reader-%d" % i) for i in range(2)]
	t0, c0 = time.perf_counter(), time.process_time()
	spin.start()
	for t in readers:
		t.start()
	for t in readers:
		t.join()
	stop.set()
	spin.join()
	elapsed = time.perf_counter() - t0
	cpu = time.process_time() - c0
	for fd in fds:
		os.close(fd)
	if out[0] != N or out[1] != N:
		print("io_heavy: short reads: %d %d of %d" % (out[0], out[1], N),
		      file=sys.stderr)
		sys.exit(1)
	ru = resource.getrusage(resource.RUSAGE_SELF)
	print("giltrace-bench: elapsed=%.6f cpu=%.6f maxrss_kb=%d"
	      % (elapsed, cpu, ru.ru_maxrss), flush=True)


if __name__ == "__main__":
	main()
