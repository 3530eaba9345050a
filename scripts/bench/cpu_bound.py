"""cpu_bound.py - bench workload: a fixed amount of pure-Python work on 4 threads.

Each thread runs the same countdown loop; the GIL lets one run at a time,
switching every sys.getswitchinterval() (5 ms by default, left as is).
Prints one line for scripts/bench/bench.py:
    giltrace-bench: elapsed=S cpu=S maxrss_kb=K
elapsed is time.perf_counter() around the threads' start-to-join only, so
interpreter and tracer start-up are excluded; cpu is time.process_time()
(all threads) over the same span; maxrss_kb is the process's peak RSS.
Python 3.6+.  Usage: python cpu_bound.py [ITERATIONS_PER_THREAD] [THREADS]
"""
import resource
import sys
import threading
import time

ITER = int(sys.argv[1]) if len(sys.argv) > 1 else 2500000
NTHREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4


def work(n):
	x = 0
	while n:
		x += n & 3
		n -= 1
	return x


def main():
	threads = [threading.Thread(target=work, args=(ITER,), name="cpu-%d" % i)
		   for i in range(NTHREADS)]
	t0, c0 = time.perf_counter(), time.process_time()
	for t in threads:
		t.start()
	for t in threads:
		t.join()
	elapsed = time.perf_counter() - t0
	cpu = time.process_time() - c0
	ru = resource.getrusage(resource.RUSAGE_SELF)
	print("giltrace-bench: elapsed=%.6f cpu=%.6f maxrss_kb=%d"
	      % (elapsed, cpu, ru.ru_maxrss), flush=True)


if __name__ == "__main__":
	main()
