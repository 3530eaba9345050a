#!/usr/bin/python3
"""bench.py - scripts/bench.sh's driver: what giltrace costs the program it traces.

One run prints one table: workload x interpreter x tracer (untraced, the
floor, giltrace, giltrace with its event stream on, with Python stacks,
in contention mode, the bpftrace equivalent), each the median of ROUNDS interleaved rounds (A B C A B C ...),
with the ratio to untraced. The floor is a bpftrace script with empty
actions at giltrace's own take_gil entries and drop_gil sites: what two
probe hits per GIL cycle cost whatever their programs do. Every variant launches
the interpreter binary the same way (directly, as the tracer's child), and
the elapsed time is the one the workload prints itself (time.perf_counter
around its threads), so tracer start-up is excluded and the ratio is the
perturbation of the traced program alone.

Environment (all optional):
  ROUNDS=5            interleaved rounds (the performance issue asks for >= 9)
  CPU_ROUNDS=ROUNDS   rounds of the cpu workload (the issue asks for 15); rounds
                      past ROUNDS run the cpu workload alone, still interleaved
  VARIANTS=...        which tracers, default untraced,floor,giltrace,
                      giltrace+stream,giltrace+stacks,contention,bpftrace
                      (untraced is always run)
  WORKLOADS=cpu,io    which workloads
  PYTHONS=a,b         interpreter binaries instead of the default set
  GILTRACE=path       default: build/giltrace
  BPFTRACE=path       default: bpftrace on PATH
  CPU_ITER=2500000    loop iterations per CPU thread (4 threads)
  IO_N=200000         one-byte reads per reader thread (2 threads)
  RUN_TIMEOUT=300     seconds before one run is killed
  IO_CPUS=LIST        run the io workload on these CPUs only (taskset -c LIST),
                      e.g. 0: on a 2-CPU VM the io workload has two regimes
                      (readers hand the GIL to each other in microseconds, or
                      the spinner wins every hand-off and each read waits a
                      switch interval: 100x slower), and which one a run
                      falls into depends on the host; one CPU always gives
                      the first
  KEEP=dir            keep the generated bpftrace scripts and each run's output
"""
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IO_CPUS = os.environ.get("IO_CPUS", "")
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
RESULT_RE = re.compile(rb"giltrace-bench: elapsed=([0-9.]+) cpu=([0-9.]+)")
BT_COUNT_RE = re.compile(rb"^@(acq|rel): (\d+)", re.M)
ATTACH_RE = b"giltrace: tracing PID"
BT_ATTACH_RE = re.compile(rb"^Attaching (\d+) probes?", re.M)
ALL_VARIANTS = ("untraced", "floor", "giltrace", "giltrace+stream", "giltrace+stacks",
		"contention", "bpftrace")
GILTRACE_VARIANTS = ("giltrace", "giltrace+stream", "giltrace+stacks", "contention")


def env_int(name, default):
	try:
		v = int(os.environ.get(name, default))
	except ValueError:
		v = 0
	if v < 1:
		sys.exit("bench: %s must be a positive integer" % name)
	return v


ROUNDS = env_int("ROUNDS", 5)
CPU_ROUNDS = env_int("CPU_ROUNDS", ROUNDS)
CPU_ITER = env_int("CPU_ITER", 2500000)
IO_N = env_int("IO_N", 200000)
RUN_TIMEOUT = env_int("RUN_TIMEOUT", 300)
KEEP = os.environ.get("KEEP")

WORKLOADS = {
	"cpu": ("cpu: 4 threads x %d iterations of pure Python, 5 ms switch interval" % CPU_ITER,
		os.path.join(HERE, "cpu_bound.py"), [str(CPU_ITER), "4"]),
	"io": ("io: 2 threads x %d one-byte os.read on pipes + 1 spinning thread" % IO_N,
	       os.path.join(HERE, "io_heavy.py"), [str(IO_N)]),
}


def note(msg):
	print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- one run

class Run:
	"""One process (tracer or interpreter) run to completion and measured."""
	current = None  # the Popen running now, for stop_current()

	def __init__(self, cmd, log=None):
		self.cmd = cmd
		self.log = log
		self.elapsed = None   # the workload's own figure (s)
		self.work_cpu = None  # the workload's CPU time over the same span (s)
		self.attach_s = None  # start -> "giltrace: tracing PID" on stderr
		self.cpu_s = None     # the launched process's own CPU, not its children's
		self.hwm_kb = 0       # its peak RSS (VmHWM, polled)
		self.samples = []     # [(monotonic s, its CPU ns)], polled
		self.t_result = None  # when its stdout showed the result line
		self.cpu_result = None  # its CPU ns at that moment
		self.pid = None
		self.rc = None
		self.out = b""
		self.err = b""
		self.error = None
		self.collector_pct = None

	def _read(self, stream, sink, t0):
		chunks = []
		for line in stream:
			if self.attach_s is None and ATTACH_RE in line:
				self.attach_s = time.monotonic() - t0
			if self.t_result is None and RESULT_RE.search(line):
				self.cpu_result = self._task_cpu_ns(self.pid)
				self.t_result = time.monotonic()
			chunks.append(line)
		sink.append(b"".join(chunks))

	@staticmethod
	def _task_cpu_ns(pid):
		"""CPU time of the live process @pid, all its threads, in ns
		(/proc/PID/task/*/schedstat: sum_exec_runtime), or None."""
		total, seen = 0, False
		try:
			tids = os.listdir("/proc/%d/task" % pid)
		except OSError:
			return None
		for tid in tids:
			try:
				with open("/proc/%d/task/%s/schedstat" % (pid, tid), "rb") as f:
					total += int(f.read().split()[0])
					seen = True
			except (OSError, ValueError, IndexError):
				continue
		return total if seen else None

	def _poll_hwm(self, pid, done):
		path = "/proc/%d/status" % pid
		while not done.is_set():
			c = self._task_cpu_ns(pid)
			if c is not None:
				self.samples.append((time.monotonic(), c))
			try:
				with open(path, "rb") as f:
					for line in f:
						if line.startswith(b"VmHWM:"):
							self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))
							break
			except (OSError, ValueError):
				return
			done.wait(0.02)

	def _own_cpu(self, pid):
		"""utime+stime of the exited (zombie, not yet reaped) process:
		its own threads only; its children's time is in cutime/cstime."""
		try:
			with open("/proc/%d/stat" % pid) as f:
				st = f.read()
			fields = st[st.rindex(")") + 2:].split()
			return (int(fields[11]) + int(fields[12])) / CLK_TCK
		except (OSError, ValueError, IndexError):
			return None

	def go(self):
		t0 = time.monotonic()
		try:
			p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
					     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
					     start_new_session=True)
		except OSError as e:
			self.error = "cannot run %s: %s" % (self.cmd[0], e)
			return self
		Run.current = p
		self.pid = p.pid
		outs, errs, done = [], [], threading.Event()
		readers = [threading.Thread(target=self._read, args=(p.stdout, outs, t0), daemon=True),
			   threading.Thread(target=self._read, args=(p.stderr, errs, t0), daemon=True),
			   threading.Thread(target=self._poll_hwm, args=(p.pid, done), daemon=True)]
		for t in readers:
			t.start()

		def kill():
			self.error = "timed out after %d s" % RUN_TIMEOUT
			try:
				os.killpg(p.pid, signal.SIGKILL)
			except OSError:
				pass
		timer = threading.Timer(RUN_TIMEOUT, kill)
		timer.daemon = True
		timer.start()
		try:
			os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
			self.cpu_s = self._own_cpu(p.pid)
		except ChildProcessError:
			pass
		self.rc = p.wait()
		Run.current = None
		timer.cancel()
		done.set()
		for t in readers:
			t.join()
		self.out, self.err = outs[0], errs[0]
		m = RESULT_RE.search(self.out)
		if m:
			self.elapsed = float(m.group(1))
			self.work_cpu = float(m.group(2))
			self.collector_pct = self._collector_pct()
		elif not self.error:
			self.error = "exit status %d, no result line%s" % (self.rc, self._last_err())
		if self.log:
			with open(self.log, "wb") as f:
				f.write(b"$ " + " ".join(self.cmd).encode() + b"\n" + self.out + self.err)
		return self

	def _collector_pct(self):
		"""The launched process's CPU over the workload's own measured
		span (its threads' start to join, which ended when the result
		line appeared), as % of one core; None when not sampled. The span
		starts elapsed s before the result line; the CPU there is
		interpolated between the 20 ms samples around it."""
		if self.t_result is None or self.cpu_result is None or not self.elapsed:
			return None
		t_start = self.t_result - self.elapsed
		before = [s for s in self.samples if s[0] <= t_start]
		after = [s for s in self.samples if t_start < s[0] <= self.t_result]
		if not before:
			return None
		t0, c0 = before[-1]
		if after:
			t1, c1 = after[0]
			c0 += (c1 - c0) * (t_start - t0) / (t1 - t0)
		return max(0.0, (self.cpu_result - c0) / 1e9 / self.elapsed * 100)

	def _last_err(self):
		lines = [l for l in self.err.decode(errors="replace").splitlines()
			 if l.strip() and "RLIMIT_MEMLOCK" not in l]
		return ": " + lines[-1].strip() if lines else ""


def stop_current():
	"""Ctrl-C or SIGTERM during a run: stop the run's process group (the
	tracer and its workload; a tracer detaches its probes as it exits)."""
	p = Run.current
	if p is None or p.poll() is not None:
		return
	for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 0)):
		try:
			os.killpg(p.pid, sig)
			p.wait(grace or None)
			return
		except subprocess.TimeoutExpired:
			continue
		except OSError:
			return


# ---------------------------------------------------------------- interpreters

def py_version(py):
	try:
		return subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
				      capture_output=True, text=True, timeout=30).stdout.strip()
	except (OSError, subprocess.SubprocessError):
		return ""


def interpreters():
	"""[(label, path)]: pyenv 3.12.1 and Debian's python3.11, or $PYTHONS."""
	found = []
	if os.environ.get("PYTHONS"):
		for py in os.environ["PYTHONS"].split(","):
			v = py_version(py)
			if v:
				found.append(("%s %s" % (os.path.basename(py), v), py))
			else:
				note("skipped %s: does not run" % py)
		return found
	root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
	vdir = os.path.join(root, "versions")
	versions = sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []
	want = "3.12.1" if "3.12.1" in versions else \
		next((v for v in reversed(versions) if v.startswith("3.12.")), None)
	if want:
		py = os.path.join(vdir, want, "bin", "python3.12")
		if os.access(py, os.X_OK):
			found.append(("pyenv " + want, py))
		if want != "3.12.1":
			note("pyenv 3.12.1 not found; using pyenv %s" % want)
	else:
		note("skipped pyenv 3.12.1: not installed under %s" % vdir)
	others = [v for v in versions if v != want]
	if others:
		note("skipped pyenv %s: not in the bench set (pyenv 3.12 + Debian 3.11)"
		     % " ".join(others))
	deb = "/usr/bin/python3.11"
	if os.access(deb, os.X_OK):
		found.append(("debian " + (py_version(deb) or "3.11"), deb))
	else:
		note("skipped Debian python3.11: %s not found" % deb)
	return found


# ---------------------------------------------------------------- bpftrace script

def giltrace_probes(giltrace, py, tmp):
	"""The probes giltrace attaches to @py, from --json of a short run."""
	jpath = os.path.join(tmp, "probes.json")
	r = Run([giltrace, "-q", "-o", "/dev/null", "--json", jpath, "--",
		 py, WORKLOADS["io"][1], "2000"]).go()
	if r.error:
		return None, None, "giltrace --json failed: " + r.error
	try:
		with open(jpath) as f:
			j = json.load(f)
		return j["target"]["probes"], j["gil"]["acquisitions"], None
	except (OSError, ValueError, KeyError, TypeError) as e:
		return None, None, "giltrace --json unreadable: %s" % e


def min_load_vaddr(path):
	"""Lowest PT_LOAD virtual address of an ELF64 file, or None."""
	try:
		with open(path, "rb") as f:
			eh = f.read(64)
			if eh[:4] != b"\x7fELF" or eh[4] != 2:
				return None
			end = "<" if eh[5] == 1 else ">"
			phoff, = struct.unpack_from(end + "Q", eh, 32)
			phentsize, phnum = struct.unpack_from(end + "HH", eh, 54)
			f.seek(phoff)
			ph = f.read(phentsize * phnum)
	except (OSError, struct.error, IndexError):
		return None
	loads = []
	for i in range(phnum):
		p_type, = struct.unpack_from(end + "I", ph, i * phentsize)
		if p_type == 1:
			loads.append(struct.unpack_from(end + "Q", ph, i * phentsize + 16)[0])
	return min(loads) if loads else None


def bt_site(p):
	"""How bpftrace 0.17 must name giltrace's probe @p, and whether that
	needs --unsafe.

	bpftrace takes uprobe:FILE:0xN as an ELF virtual address and looks up the
	symbol around it, with the debug file (so it finds Debian python3.11's
	symbols in python3.11-dbg). At a symbol's start that is fine. Inside a
	function (the inlined drop_gil sites) Debian's bpftrace, built without
	ALLOW_UNSAFE_PROBE, refuses ("Can't check if uprobe is in proper place")
	even with --unsafe. But with --unsafe, a number that falls in no symbol
	is used as the file offset as is. So where a file's virtual addresses
	start above its file offsets (non-PIE executables: 0x400000), giltrace's
	file offset is given raw with --unsafe: same site, no symbol lookup.
	Where addresses equal offsets (shared libraries), the address is given."""
	off, addr = p.get("offset"), p.get("address")
	try:
		addr_n = int(addr, 16)
	except (TypeError, ValueError):
		addr_n = None
	if off is not None and addr_n is not None and off != addr_n:
		base = min_load_vaddr(p["file"])
		if base is not None and off < base:
			return "0x%x" % off, True
	return addr or p.get("symbol"), False


def bt_script(probes, path):
	"""Write gil.bt.in with its @ROLE@ lines replaced by giltrace's sites.
	Returns (reason it cannot, needs --unsafe).

	The script keeps the classic three-probe logic whatever giltrace does:
	wait_begin and hold_end at giltrace's own sites (every drop_gil copy
	and inlined instance), and "held" as a uretprobe on each function that
	holds a wait_begin site, named by its symbol so that bpftrace puts it
	on the function's entry (a uretprobe anywhere else would corrupt the
	stack). giltrace's own "held" probes are used when it reports some;
	probes with other roles ("wake": giltrace's probe on take_gil's blocking
	path) have no part in this logic and are left out."""
	groups = {"wait_begin": [], "held": [], "hold_end": []}
	ret_syms = []
	unsafe = False
	for p in probes:
		kind, role = p.get("kind"), p.get("role")
		if role not in groups:
			continue
		if kind not in ("uprobe", "uretprobe"):
			return "probe %s/%s at %s: no bpftrace equivalent" % (
				kind, role, p.get("address")), False
		where, raw = bt_site(p)
		unsafe |= raw
		groups[role].append("%s:%s:%s" % (kind, p["file"], where))
		if role == "wait_begin":
			if not p.get("symbol") or p.get("inlined"):
				return "wait_begin site %s is not a function's entry" % p.get("address"), False
			site = "uretprobe:%s:%s" % (p["file"], p["symbol"])
			if site not in ret_syms:
				ret_syms.append(site)
	if not groups["held"]:
		groups["held"] = ret_syms
	for role, sites in groups.items():
		if not sites:
			return "giltrace reported no %s probe" % role, False
	with open(os.path.join(HERE, "gil.bt.in")) as f:
		text = f.read()
	for role, sites in groups.items():
		text = text.replace("@%s@" % role.upper(), ",\n".join(sites))
	with open(path, "w") as f:
		f.write(text)
	return None, unsafe


def floor_script(probes, path):
	"""Write the floor: empty bpftrace actions at exactly giltrace's
	take_gil entries (role wait_begin) and drop_gil sites (role hold_end,
	at the address giltrace probes, which for an inlined drop_gil may be
	an emulated instruction a few bytes past the inlined entry). Two probe
	hits per GIL cycle whose programs do nothing: the cost of the probes
	alone, below which no exact two-probe tracer can go.
	Returns (reason it cannot, needs --unsafe, number of sites)."""
	sites, unsafe = [], False
	for p in probes:
		if p.get("role") not in ("wait_begin", "hold_end"):
			continue
		if p.get("kind") != "uprobe":
			return "%s probe %s/%s: the floor wants plain uprobes" % (
				p.get("role"), p.get("kind"), p.get("address")), False, 0
		where, raw = bt_site(p)
		unsafe |= raw
		site = "uprobe:%s:%s" % (p["file"], where)
		if site not in sites:
			sites.append(site)
	roles = {p.get("role") for p in probes}
	for role in ("wait_begin", "hold_end"):
		if role not in roles:
			return "giltrace reported no %s probe" % role, False, 0
	with open(path, "w") as f:
		f.write("/* the floor: giltrace's take_gil entries and drop_gil sites, "
			"empty actions (scripts/bench/bench.py) */\n")
		f.write(",\n".join(sites) + "\n{ }\n")
	return None, unsafe, len(sites)


def probe_summary(probes):
	roles = {}
	for p in probes:
		key = p.get("role", "?")
		roles.setdefault(key, [0, 0, set()])
		roles[key][0] += 1
		roles[key][1] += 1 if p.get("inlined") else 0
		roles[key][2].add(p.get("kind"))
	return ", ".join("%d %s%s (%s)" % (n, r, " incl. %d inlined" % i if i else "",
					   "/".join(sorted(k)))
			 for r, (n, i, k) in roles.items())


def bt_counts(run):
	return {k.decode(): int(v) for k, v in BT_COUNT_RE.findall(run.out)}


# ---------------------------------------------------------------- the bench

def median(xs):
	xs = [x for x in xs if x is not None]
	return statistics.median(xs) if xs else None


def rel_mad(xs):
	"""Median absolute deviation relative to the median: the noise of a cell."""
	m = median(xs)
	if not m or len(xs) < 3:
		return 0.0
	return statistics.median(abs(x - m) for x in xs) / m


def ms(s):
	return None if s is None else s * 1e3


def fmt(x, spec, dash="-"):
	return dash if x is None else format(x, spec)


def main():
	giltrace = os.environ.get("GILTRACE") or os.path.join(ROOT, "build", "giltrace")
	bpftrace = os.environ.get("BPFTRACE") or shutil.which("bpftrace")
	wl_names = [w for w in os.environ.get("WORKLOADS", "cpu,io").split(",") if w]
	for w in wl_names:
		if w not in WORKLOADS:
			sys.exit("bench: unknown workload %r (cpu, io)" % w)
	if os.geteuid() != 0:
		note("not root: tracing will fail unless this user has CAP_BPF+CAP_PERFMON")
	tmp = KEEP or tempfile.mkdtemp(prefix="giltrace-bench.")
	os.makedirs(tmp, exist_ok=True)
	try:
		bench(giltrace, bpftrace, wl_names, tmp)
	finally:
		if not KEEP:
			shutil.rmtree(tmp, ignore_errors=True)


def prepare(label, py, giltrace, bpftrace, tmp):
	"""giltrace's probe sites on @py -> the bpftrace script, checked on a
	short run against giltrace's own acquisition count."""
	s = {"bt": None, "bt_argv": None, "why_no_bt": None, "probes": None,
	     "floor": None, "floor_argv": None, "why_no_floor": None}
	d = os.path.join(tmp, re.sub(r"\W+", "_", label))
	os.makedirs(d, exist_ok=True)
	probes, acq, why = giltrace_probes(giltrace, py, d)
	if why:
		s["why_no_bt"] = s["why_no_floor"] = why
		note("%s: %s" % (label, why))
		return s
	s["probes"] = probe_summary(probes)
	note("%s: giltrace probes: %s" % (label, s["probes"]))
	if not bpftrace:
		s["why_no_bt"] = s["why_no_floor"] = "bpftrace not installed"
		return s
	prepare_floor(s, label, py, probes, bpftrace, d)
	bt = os.path.join(d, "gil.bt")
	why, unsafe = bt_script(probes, bt)
	if why:
		s["why_no_bt"] = why
		note("%s: bpftrace skipped: %s" % (label, why))
		return s
	argv = [bpftrace] + (["--unsafe"] if unsafe else [])
	r = Run(argv + ["-c", "%s %s 2000" % (py, WORKLOADS["io"][1]), bt]).go()
	c = bt_counts(r)
	if r.error or "acq" not in c:
		s["why_no_bt"] = "bpftrace check run failed: %s" % (r.error or "no @acq")
		note("%s: %s" % (label, s["why_no_bt"]))
		return s
	note("%s: bpftrace script %s checked on io 2000: %d acquisitions, "
	     "%d releases (giltrace: %d)" % (label, bt, c["acq"], c.get("rel", 0), acq))
	s["bt"], s["bt_argv"] = bt, argv
	return s


def prepare_floor(s, label, py, probes, bpftrace, d):
	"""The floor script for @py, checked on a short run: bpftrace must
	attach every site and the workload must finish."""
	path = os.path.join(d, "floor.bt")
	why, unsafe, n = floor_script(probes, path)
	if not why:
		argv = [bpftrace] + (["--unsafe"] if unsafe else [])
		r = Run(argv + ["-c", "%s %s 2000" % (py, WORKLOADS["io"][1]), path]).go()
		m = BT_ATTACH_RE.search(r.out)
		if r.error:
			why = "floor check run failed: " + r.error
		elif not m or int(m.group(1)) != n:
			why = "floor check run attached %s of %d probes" % (
				m.group(1) if m else "no", n)
	if why:
		s["why_no_floor"] = why
		note("%s: floor skipped: %s" % (label, why))
		return
	note("%s: floor script %s checked on io 2000: %d probes attached" % (label, path, n))
	s["floor"], s["floor_argv"] = path, argv


def command(variant, py, wl, giltrace, setup, jpath):
	"""The same launch for every variant: the tracer runs the interpreter."""
	_, script, args = WORKLOADS[wl]
	argv = [py, script] + args
	if wl == "io" and IO_CPUS:
		# Every variant alike: the tracers follow taskset's exec.
		argv = [shutil.which("taskset") or "/usr/bin/taskset", "-c", IO_CPUS] + argv
	if variant == "untraced":
		return argv
	if variant == "giltrace":
		# Not -q: the "tracing PID" line times the attach. The report
		# goes to /dev/null; --json gives the counts afterwards.
		return [giltrace, "-o", "/dev/null", "--json", jpath, "--"] + argv
	if variant == "giltrace+stream":
		# The event stream on: --perfetto makes giltrace record every
		# GIL cycle from the ring buffer to its temporary trace file
		# while tracing, then render it (here to /dev/null) at the end.
		return [giltrace, "-o", "/dev/null", "--json", jpath,
			"--perfetto", "/dev/null", "--"] + argv
	if variant == "giltrace+stacks":
		# Python stacks at every wait and hold, folded at the end.
		return [giltrace, "-o", "/dev/null", "--json", jpath,
			"--folded", "/dev/null", "--"] + argv
	if variant == "contention":
		return [giltrace, "--mode", "contention", "-o", "/dev/null",
			"--json", jpath, "--"] + argv
	if variant == "floor":
		return setup["floor_argv"] + ["-c", " ".join(argv), setup["floor"]]
	return setup["bt_argv"] + ["-c", " ".join(argv), setup["bt"]]


def one_run(variant, py, wl, giltrace, setup, tmp, tag):
	jpath = os.path.join(tmp, tag + ".json")
	log = os.path.join(tmp, tag + ".log") if KEEP else None
	r = Run(command(variant, py, wl, giltrace, setup, jpath), log).go()
	r.acq = None
	if variant in GILTRACE_VARIANTS and not r.error:
		try:
			with open(jpath) as f:
				r.acq = json.load(f)["gil"]["acquisitions"]
		except (OSError, ValueError, KeyError, TypeError):
			pass
		if not KEEP:
			try:
				os.unlink(jpath)
			except OSError:
				pass
	elif variant == "bpftrace":
		r.acq = bt_counts(r).get("acq")
	return r


def wanted_variants(have_gt, bpftrace):
	want = [v.strip() for v in os.environ.get("VARIANTS", ",".join(ALL_VARIANTS)).split(",")
		if v.strip()]
	for v in want:
		if v not in ALL_VARIANTS:
			sys.exit("bench: unknown variant %r (%s)" % (v, ", ".join(ALL_VARIANTS)))
	out = []
	for v in ALL_VARIANTS:
		if v != "untraced" and v not in want:
			continue
		if v != "untraced" and not have_gt:
			continue  # the floor and bpftrace use giltrace's probe sites
		if v in ("floor", "bpftrace") and not bpftrace:
			continue
		out.append(v)
	return out


def rounds_of(wl):
	return CPU_ROUNDS if wl == "cpu" else ROUNDS


def runnable(v, setup):
	if v == "bpftrace":
		return bool(setup.get("bt"))
	if v == "floor":
		return bool(setup.get("floor"))
	return True


def bench(giltrace, bpftrace, wl_names, tmp):
	pys = interpreters()
	if not pys:
		sys.exit("bench: no interpreter to run")
	have_gt = os.access(giltrace, os.X_OK)
	if not have_gt:
		note("no %s: build it first (cmake -S . -B build && make -C build); "
		     "giltrace, floor and bpftrace rows skipped" % giltrace)
	if not bpftrace:
		note("bpftrace not found (apt-get install bpftrace): floor and bpftrace rows skipped")
	variants = wanted_variants(have_gt, bpftrace)
	setups = {label: prepare(label, py, giltrace, bpftrace, tmp) if have_gt else {}
		  for label, py in pys}

	cells = {}   # (wl, label, variant) -> [Run that gave a result]
	errors = {}  # (wl, label, variant) -> [error message]
	nrounds = max(rounds_of(w) for w in wl_names)
	note("%s rounds x %d variants x %d interpreters, interleaved; workload output in %s" % (
		", ".join("%s %d" % (w, rounds_of(w)) for w in wl_names), len(variants),
		len(pys), tmp))
	for rnd in range(nrounds):
		t_round = time.monotonic()
		for wl in wl_names:
			if rnd >= rounds_of(wl):
				continue
			for label, py in pys:
				for v in variants:
					if not runnable(v, setups[label]):
						continue
					tag = "%s_%s_%s_%d" % (wl, re.sub(r"\W+", "_", label), v, rnd)
					r = one_run(v, py, wl, giltrace, setups[label], tmp, tag)
					key = (wl, label, v)
					if r.error:
						errors.setdefault(key, []).append(r.error)
					cells.setdefault(key, []).append(r)
		note("round %d/%d done in %.0f s" % (rnd + 1, nrounds, time.monotonic() - t_round))

	print_table(wl_names, pys, variants, cells, errors, setups)


FOOTER = (
	"elapsed: the workload's own perf_counter() around its threads (tracer start-up "
	"excluded); ratio: median traced / median untraced; CPU: the workload's "
	"process_time() over the same span (includes its BPF programs' cost); acquisitions: GIL "
	"acquisitions the tracer counted; attach: giltrace start to its \"tracing PID\" "
	"line; tracer CPU, RSS: the tracer process alone, CPU in 10 ms ticks over its whole "
	"life (start-up and final report included; its BPF programs run in, and are "
	"charged to, the workload's threads); collector CPU %: the tracer process's CPU "
	"(all its threads, ns from /proc/PID/task/*/schedstat) during the workload's "
	"measured span only, as % of one core.",
	"floor: bpftrace with EMPTY actions at exactly giltrace's take_gil entries and "
	"drop_gil sites (the same addresses, inlined sites included): two probe hits per "
	"GIL cycle whose programs do nothing, the cost no exact tracer can go below; "
	"giltrace+stream: giltrace with its event stream on (--perfetto /dev/null: every "
	"GIL cycle goes through the ring buffer to its temporary trace file while tracing, "
	"rendered at exit, after the workload's span); giltrace+stacks: --folded (a Python "
	"stack walk per GIL cycle, holder samples); contention: --mode contention (only "
	"blocking waits probed, holds sampled).",
)


def cell_runs(cells, key):
	return [r for r in cells.get(key, []) if r.elapsed is not None]


def print_table(wl_names, pys, variants, cells, errors, setups):
	uname = os.uname()
	rounds = ("%d interleaved rounds" % ROUNDS if CPU_ROUNDS == ROUNDS or "cpu" not in wl_names
		  else "interleaved rounds: cpu %d, others %d" % (CPU_ROUNDS, ROUNDS))
	print("giltrace bench, %s; %d CPUs, kernel %s; %s, medians"
	      % (time.strftime("%Y-%m-%d %H:%M %Z"), os.cpu_count(), uname.release, rounds))
	for w in wl_names:
		print("  " + WORKLOADS[w][0] + (" (taskset -c %s)" % IO_CPUS if w == "io" and IO_CPUS else ""))
	hdr = ("workload", "python", "tracer", "elapsed s", "min-max", "ratio",
	       "CPU s", "CPU ratio", "acquisitions", "attach ms", "tracer CPU s",
	       "tracer RSS MB", "collector CPU %")
	rows, notes, verdicts, goals = [], [], [], []
	for wl in wl_names:
		for label, _ in pys:
			base = cpu_base = None
			ratios, cpu_ratios, meds, coll, attach = {}, {}, {}, {}, {}
			for v in variants:
				runs = cell_runs(cells, (wl, label, v))
				errs = errors.get((wl, label, v), [])
				if errs:
					notes.append("%s/%s/%s: %d of %d runs failed: %s" % (
						wl, label, v, len(errs), rounds_of(wl), errs[0]))
				if not runs:
					if not errs:
						why = setups[label].get("why_no_floor" if v == "floor"
									else "why_no_bt")
						notes.append("%s/%s/%s: not run: %s" % (wl, label, v, why or "?"))
					rows.append((wl, label, v, "n/a") + ("",) * (len(hdr) - 4))
					continue
				el = [r.elapsed for r in runs]
				med = median(el)
				cpu = median([r.work_cpu for r in runs])
				if v == "untraced":
					base, cpu_base = med, cpu
				ratio = med / base if base else None
				cpu_ratio = cpu / cpu_base if cpu_base and cpu else None
				ratios[v], cpu_ratios[v], meds[v] = ratio, cpu_ratio, med
				traced = v != "untraced"
				coll[v] = median([r.collector_pct for r in runs]) if traced else None
				attach[v] = ms(median([r.attach_s for r in runs]))
				rows.append((
					wl, label, v, "%.3f" % med,
					"%.2f-%.2f" % (min(el), max(el)),
					fmt(ratio, ".2f") + "x" if ratio else "-",
					fmt(cpu, ".3f"),
					fmt(cpu_ratio, ".2f") + "x" if cpu_ratio else "-",
					fmt(median([getattr(r, "acq", None) for r in runs]), ",.0f")
					if v in GILTRACE_VARIANTS or v == "bpftrace" else "",
					fmt(attach[v], ".0f") if v in GILTRACE_VARIANTS else "",
					fmt(median([r.cpu_s for r in runs]), ".2f") if traced else "",
					fmt(max(r.hwm_kb for r in runs) / 1024, ".1f") if traced else "",
					fmt(coll[v], ".2f") if traced else ""))
			if "giltrace" in ratios and "bpftrace" in ratios:
				verdicts.append(issue2_verdict(wl, label, ratios, cpu_ratios, cells))
			goals.extend(issue3_goals(wl, label, ratios, meds, coll, attach, cells))
	widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]

	def line(r):
		return "  ".join(str(c).rjust(w) if i >= 3 else str(c).ljust(w)
				 for i, (c, w) in enumerate(zip(r, widths))).rstrip()
	print(line(hdr))
	print(line(tuple("-" * w for w in widths)))
	prev = (None, None)
	for r in rows:
		shown = list(r)
		if (r[0], r[1]) == prev:
			shown[0] = shown[1] = ""
		prev = (r[0], r[1])
		print(line(shown))
	for f in FOOTER:
		print(f)
	for label, _ in pys:
		if setups[label].get("probes"):
			print("probes on %s: %s" % (label, setups[label]["probes"]))
	for n in notes:
		print("note: " + n)
	if verdicts:
		print("issue-2 target, giltrace no worse than bpftrace:")
		for v in verdicts:
			print("  " + v)
	if goals:
		print("issue-3 goals (read them from a quiet machine and enough rounds):")
		for g in goals:
			print("  " + g)
	sys.stdout.flush()


def noise_of(cells, wl, label, vs):
	"""The largest relative median absolute deviation among @vs's cells."""
	return max([rel_mad([r.elapsed for r in cell_runs(cells, (wl, label, v))]) for v in vs]
		   or [0.0])


def issue2_verdict(wl, label, ratios, cpu_ratios, cells):
	g, b = ratios["giltrace"], ratios["bpftrace"]
	noise = noise_of(cells, wl, label, ("untraced", "giltrace", "bpftrace"))
	word = "met" if round(g, 2) <= round(b, 2) else "NOT met"
	if abs(g - b) <= noise * max(g, b):
		word += " (the difference is within the run-to-run noise, %.0f%%)" % (noise * 100)
	return "%s/%s: giltrace %.2fx, bpftrace %.2fx (CPU %s, %s): %s" % (
		wl, label, g, b, fmt(cpu_ratios.get("giltrace"), ".2f") + "x",
		fmt(cpu_ratios.get("bpftrace"), ".2f") + "x", word)


def met(x, goal):
	return "met" if round(x, 2) <= goal else "NOT met"


def issue3_goals(wl, label, ratios, meds, coll, attach, cells):
	"""Issue 3's goals that this run measures, one line each."""
	out = []
	n = rounds_of(wl)
	where = "%s/%s: " % (wl, label)
	g = ratios.get("giltrace")
	if wl == "io" and "untraced" in meds:
		# About 2 * IO_N GIL cycles. Untraced, a cycle takes well under
		# 2 us when the readers hand the GIL to each other; far more means
		# the spinner won the hand-offs (each read then waits for a switch
		# interval), and a tracer that slows the hand-off changes that
		# race: the ratios measure the race, not the tracer's cost.
		us = meds["untraced"] / (2 * IO_N) * 1e6
		if us > 5:
			out.append(where + "io: untraced %.1f us per GIL cycle: the slow regime "
				   "(the spinner wins the hand-offs); the io ratios are not "
				   "comparable: rerun with IO_CPUS=0" % us)
	if wl == "io" and g:
		goal = 4.0 if "debian" in label else 3.5 if "3.12" in label else None
		fl = ratios.get("floor")
		if goal:
			out.append(where + "io: giltrace %.2fx (goal ≤ %.1fx, median of ≥ 9 rounds; "
				   "here %d): %s%s" % (g, goal, n, met(g, goal),
				   "; the floor alone is %.2fx here, so no exact tracer "
				   "with two probe hits per cycle can meet it" % fl
				   if fl and round(fl, 2) > goal else ""))
	if "giltrace" in meds and "floor" in meds:
		x = meds["giltrace"] / meds["floor"]
		noise = noise_of(cells, wl, label, ("giltrace", "floor"))
		out.append(where + "exact mode vs floor: giltrace/floor = %.2f (goal ≤ 1.25): %s%s"
			   % (x, met(x, 1.25), " (run-to-run noise %.0f%%)" % (noise * 100)
			      if noise else ""))
	st = ratios.get("giltrace+stacks")
	if st and g:
		out.append(where + "stacks: giltrace+stacks / giltrace = %.2f (issue 5 goal ≤ 1.3): %s"
			   % (st / g, met(st / g, 1.3)))
	ct = ratios.get("contention")
	if wl == "io" and ct:
		out.append(where + "io: --mode contention %.2fx (goal ≤ 1.2x): %s" % (ct, met(ct, 1.2)))
	if wl == "cpu" and g:
		noise = noise_of(cells, wl, label, ("untraced", "giltrace"))
		out.append(where + "cpu: giltrace ≤ 1.03x: %.2fx, median of %d rounds (the goal "
			   "asks 15), run-to-run noise %.0f%%: %s" % (g, n, noise * 100, met(g, 1.03)))
	c = coll.get("giltrace+stream")
	if wl == "cpu" and c is not None:
		out.append(where + "collector CPU with the event stream on: %.2f%% of one core "
			   "(goal ≤ 2%%; without the stream: %s%%): %s" % (
				   c, fmt(coll.get("giltrace"), ".2f"), met(c, 2.0)))
	a = attach.get("giltrace")
	if a is not None and wl == "cpu":
		out.append(where + "attach: %.0f ms, median (goal ≤ 100 ms once the per-build "
			   "cache is warm): %s" % (a, "met" if a <= 100 else "NOT met"))
	return out


def on_sigterm(signum, frame):
	signal.signal(signal.SIGTERM, signal.SIG_DFL)
	raise KeyboardInterrupt


if __name__ == "__main__":
	signal.signal(signal.SIGTERM, on_sigterm)
	try:
		main()
	except KeyboardInterrupt:
		stop_current()
		print("bench: interrupted", file=sys.stderr)
		sys.exit(130)
