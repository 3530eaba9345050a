# SPDX-License-Identifier: MIT
"""
gtlib: the helpers giltrace's integration suite is built on.

- Proc: a child process whose stdout/stderr are read line by line in the
  background, so a test can wait for a line (a real event) with a timeout.
- run(): run a command to completion with a timeout.
- Interpreter discovery (pyenv builds, Debian's /usr/bin/python3.1?, python3
  on PATH), deduplicated by the real executable behind each candidate.
- ELF helpers built on binutils (readelf), independent of giltrace: the GIL
  functions' addresses, file offsets, separate debug files by build-id.
- /proc helpers: a probe address's runtime byte in a live process, to check
  that every uprobe is gone after giltrace exits.
- giltrace/1 JSON validation.

Runs on Debian's /usr/bin/python3 (3.11); the workloads it starts run on
any CPython 3.6+.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)
WORKLOADS = os.path.join(TESTS, "workloads")


class Fail(Exception):
    """The test failed; the message says what was expected and what came."""


class Skip(Exception):
    """The test cannot run here; the message says why."""


def workload(name):
    return os.path.join(WORKLOADS, name)


# ---------------------------------------------------------------- processes

class _Reader(threading.Thread):
    """Reads one pipe to EOF, keeping every byte and a queue of lines."""

    def __init__(self, pipe, name):
        threading.Thread.__init__(self, name=name, daemon=True)
        self.pipe = pipe
        self.data = bytearray()
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.start()

    def run(self):
        partial = b""
        while True:
            try:
                chunk = os.read(self.pipe.fileno(), 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    if partial:
                        self.lines.append(partial.decode("utf-8", "replace"))
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                partial += chunk
                while b"\n" in partial:
                    line, partial = partial.split(b"\n", 1)
                    self.lines.append(line.decode("utf-8", "replace"))
                self.cond.notify_all()

    def wait_line(self, pattern, timeout, start=0):
        """First line at index >= start matching the regex; (index, match)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return i, m
                    i += 1
                if self.eof:
                    return None, None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, None
                self.cond.wait(left)


class Proc:
    """A child process with background readers on stdout and stderr."""

    def __init__(self, argv, env=None, cwd=None, stdin=True, name=None,
             preexec_fn=None, registry=None):
        self.argv = list(argv)
        self.name = name or os.path.basename(argv[0])
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
            preexec_fn=preexec_fn)
        self.pid = self.p.pid
        self.out = _Reader(self.p.stdout, "out-%d" % self.pid)
        self.err = _Reader(self.p.stderr, "err-%d" % self.pid)
        self.rc = None
        self.elapsed = None
        if registry is not None:
            registry.append(self)

    # lines
    def wait_out(self, pattern, timeout=20, what=None):
        i, m = self.out.wait_line(pattern, timeout)
        if m is None:
            raise Fail("%s: no stdout line matching %r within %.0fs (rc=%s)%s" % (
                what or self.name, pattern, timeout, self.poll(), self.tail()))
        return m

    def wait_err(self, pattern, timeout=20, what=None):
        i, m = self.err.wait_line(pattern, timeout)
        if m is None:
            raise Fail("%s: no stderr line matching %r within %.0fs (rc=%s)%s" % (
                what or self.name, pattern, timeout, self.poll(), self.tail()))
        return m

    def send(self, text):
        try:
            self.p.stdin.write(text.encode())
            self.p.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except (BrokenPipeError, ValueError, AttributeError):
            pass

    def signal(self, sig):
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def poll(self):
        if self.rc is None:
            rc = self.p.poll()
            if rc is not None:
                self._done(rc)
        return self.rc

    def _done(self, rc):
        self.rc = rc
        self.elapsed = time.monotonic() - self.t0

    def wait(self, timeout=30, what=None):
        """Wait for exit; the exit code, or -N when killed by signal N."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Fail("%s did not exit within %.0fs%s" % (
                what or self.name, timeout, self.tail()))
        if self.rc is None:
            self._done(rc)
        self.out.join(5)
        self.err.join(5)
        return self.rc

    def kill(self):
        if self.poll() is None:
            try:
                self.p.kill()
            except ProcessLookupError:
                pass
            try:
                self.wait(10)
            except Fail:
                pass

    @property
    def stdout(self):
        return bytes(self.out.data).decode("utf-8", "replace")

    @property
    def stderr(self):
        return bytes(self.err.data).decode("utf-8", "replace")

    def tail(self, n=6):
        s = ""
        for label, r in (("stdout", self.out), ("stderr", self.err)):
            for l in [l for l in r.lines if l.strip()][-n:]:
                s += "\n    [%s %s] %s" % (self.name, label, l)
        return s


class Result:
    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err, self.elapsed = argv, rc, out, err, elapsed

    @property
    def stdout(self):
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def tail(self, n=6):
        s = ""
        for label, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            for l in [l for l in text.splitlines() if l.strip()][-n:]:
                s += "\n    [%s] %s" % (label, l)
        return s


def run(argv, timeout=60, env=None, input=None, cwd=None, preexec_fn=None):
    """
    Run to completion. rc is the exit code or -N if killed by signal N.
    The command runs in a session of its own, and a timeout kills the whole
    process group: a test process's own children (CPython's test runner
    starts one per test file) must not outlive it and load the machine for
    the tests after (one spun at 100% of a CPU for half an hour).
    """
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                 cwd=cwd, preexec_fn=preexec_fn, start_new_session=True)
    try:
        out, err = p.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            p.kill()
        out, err = p.communicate()
        raise Fail("%s did not finish within %.0fs" % (" ".join(argv[:6]), timeout) +
               Result(argv, None, out, err, 0).tail())
    return Result(argv, p.returncode, out, err, time.monotonic() - t0)


def exit_status(rc):
    """Popen's rc (-N for signal N) as a shell would show it (128+N)."""
    return 128 - rc if rc is not None and rc < 0 else rc


# ---------------------------------------------------------------- interpreters

class Interp:
    def __init__(self, path, real, version, impl_lib):
        self.path = path          # how we run it
        self.real = real          # realpath of sys.executable
        self.version = version    # "3.12.1"
        self.vt = tuple(int(x) for x in re.findall(r"\d+", version)[:3])
        self.debian = real.startswith("/usr/bin/")
        self.label = ("debian-%d.%d" % self.vt[:2]) if self.debian else version
        self.lib = impl_lib       # libpython it maps, or None (static)

    def __repr__(self):
        return "%s (%s)" % (self.label, self.path)


_PROBE_SRC = ("import sys, os, platform\n"
          "print(os.path.realpath(sys.executable))\n"
          "print(platform.python_version())\n"
          "print(getattr(sys, '_is_gil_enabled', lambda: True)())\n")


def _candidates():
    cands = []
    for pat in ("/root/.pyenv/versions/*/bin/python[0-9].*", "/usr/bin/python3.1?",
            "/usr/bin/python3.[6-9]", "/usr/local/bin/python3.*"):
        cands.extend(sorted(glob.glob(pat)))
    which = shutil.which("python3")
    if which:
        cands.append(which)
    return cands


def discover_interpreters():
    """(tested, skipped): tested = [Interp], skipped = [(path, reason)]."""
    tested, skipped, seen_real, seen_ino = [], [], {}, {}
    for c in _candidates():
        base = os.path.basename(c)
        if not re.match(r"^python\d(\.\d+)?[dmu]*$", base):
            skipped.append((c, "not an interpreter (%s)" % base))
            continue
        if not os.access(c, os.X_OK):
            skipped.append((c, "not executable"))
            continue
        try:
            st = os.stat(c)
        except OSError as e:
            skipped.append((c, str(e)))
            continue
        if (st.st_dev, st.st_ino) in seen_ino:
            skipped.append((c, "same file as %s" % seen_ino[(st.st_dev, st.st_ino)]))
            continue
        seen_ino[(st.st_dev, st.st_ino)] = c
        try:
            r = run([c, "-c", _PROBE_SRC], timeout=30)
        except Fail as e:
            skipped.append((c, "does not run: %s" % e))
            continue
        if r.rc != 0:
            err = r.stderr.strip().splitlines()
            skipped.append((c, "does not run: rc=%s %s" % (r.rc, err[-1] if err else "")))
            continue
        lines = r.stdout.split("\n")
        if len(lines) < 2:
            skipped.append((c, "python 2 or unexpected output"))
            continue
        real, ver = lines[0].strip(), lines[1].strip()
        if not ver.startswith("3."):
            skipped.append((c, "Python %s: giltrace supports 3.6+ (used by the Python 2 error test)" % ver))
            continue
        if real in seen_real:
            skipped.append((c, "same interpreter as %s" % seen_real[real]))
            continue
        if len(lines) > 2 and lines[2].strip() == "False":
            skipped.append((c, "free-threaded build (no GIL)"))
            continue
        vt = tuple(int(x) for x in re.findall(r"\d+", ver)[:2])
        if vt < (3, 6):
            skipped.append((c, "Python %s is older than 3.6" % ver))
            continue
        seen_real[real] = c
        tested.append(Interp(c, real, ver, _needed_libpython(real)))
    tested.sort(key=lambda i: (i.vt, i.debian))
    return tested, skipped


def _needed_libpython(exe):
    r = run(["ldd", exe], timeout=20)
    for line in r.stdout.splitlines():
        m = re.search(r"(libpython\S+)\s+=>\s+(\S+)", line)
        if m:
            return os.path.realpath(m.group(2))
    return None


def python2():
    for c in sorted(glob.glob("/root/.pyenv/versions/2.*/bin/python2.?")) + \
         [shutil.which("python2.7") or "", shutil.which("python2") or ""]:
        if c and os.access(c, os.X_OK):
            return c
    return None


# ---------------------------------------------------------------- ELF (binutils)

def _readelf(args, path):
    r = run(["readelf", "-W"] + args + [path], timeout=60)
    return r.stdout


def build_id(path):
    m = re.search(r"Build ID:\s*([0-9a-f]+)", _readelf(["-n"], path))
    return m.group(1) if m else None


def debug_file(path):
    bid = build_id(path)
    if not bid:
        return None
    f = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
    return f if os.path.exists(f) else None


def gil_symbols(path):
    """
    The GIL functions' out-of-line copies from .symtab, read with readelf
    (independent of giltrace): {name: (vaddr, size)}. Names are take_gil,
    drop_gil and compiler clones (take_gil.constprop.0, *.lto_priv.0);
    .cold fragments are not function entries. Falls back to the separate
    debug file found by build-id when the binary is stripped.
    """
    syms = {}
    for f in (path, debug_file(path)):
        if not f:
            continue
        for line in _readelf(["-s"], f).splitlines():
            parts = line.split()
            if len(parts) < 8 or parts[3] != "FUNC":
                continue
            name = parts[7]
            if not re.match(r"^(take_gil|drop_gil)(\.|$)", name) or ".cold" in name:
                continue
            if parts[6] == "UND":
                continue
            syms[name] = (int(parts[1], 16), int(parts[2]))
        if syms:
            return syms
    return syms


def load_segments(path):
    """[(p_offset, p_vaddr, p_filesz)] of the PT_LOAD segments."""
    segs = []
    for line in _readelf(["-l"], path).splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            segs.append((int(parts[1], 16), int(parts[2], 16), int(parts[4], 16)))
    return segs


def vaddr_to_offset(path, vaddr):
    for off, va, sz in load_segments(path):
        if va <= vaddr < va + sz:
            return vaddr - va + off
    raise Fail("%s: vaddr 0x%x in no LOAD segment" % (path, vaddr))


def interp_elf(interp):
    """The ELF that holds the interpreter: libpython, or the executable."""
    return interp.lib or interp.real


# ---------------------------------------------------------------- /proc

def maps(pid):
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6:
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append((lo, hi, int(parts[2], 16), parts[5].strip()))
    return out


def runtime_addr(pid, path, offset):
    real = os.path.realpath(path)
    for lo, hi, off, name in maps(pid):
        if name and (name == path or name == real) and off <= offset < off + (hi - lo):
            return lo + offset - off
    return None


def code_byte(pid, path, offset):
    """(byte in the live process, byte in the file) at file offset."""
    addr = runtime_addr(pid, path, offset)
    if addr is None:
        return None, None
    with open("/proc/%d/mem" % pid, "rb") as m:
        m.seek(addr)
        live = m.read(1)
    with open(path, "rb") as f:
        f.seek(offset)
        disk = f.read(1)
    return live, disk


def code_diff(pid, path, offset, size):
    """File offsets in [offset, offset+size) whose live bytes differ from the file."""
    addr = runtime_addr(pid, path, offset)
    if addr is None:
        return None
    with open("/proc/%d/mem" % pid, "rb") as m:
        m.seek(addr)
        live = m.read(size)
    with open(path, "rb") as f:
        f.seek(offset)
        disk = f.read(size)
    return [offset + i for i in range(min(len(live), len(disk))) if live[i] != disk[i]]


def leftover_probes(pid, probes):
    """Probes whose code byte in the live process differs from the file."""
    bad = []
    for p in probes:
        path, off = p.get("file"), p.get("offset")
        if not path or off is None:
            continue
        try:
            live, disk = code_byte(pid, path, int(off))
        except OSError as e:
            bad.append("%s+0x%x: cannot read (%s)" % (path, int(off), e))
            continue
        if live is None:
            continue
        if live != disk:
            bad.append("%s %s+0x%x: live byte %s, file byte %s" % (
                p.get("function"), os.path.basename(path), int(off), live.hex(), disk.hex()))
    return bad


def schedstat(pid, tid):
    """(ns on a CPU, ns runnable waiting for a CPU) of one thread."""
    try:
        f = open("/proc/%d/task/%d/schedstat" % (pid, tid)).read().split()
        return int(f[0]), int(f[1])
    except (OSError, IndexError, ValueError):
        return None


class CpuStarvation:
    """
    How long the given threads sat runnable without a CPU between start()
    and worst(): the share of wall time, for the worst thread. GIL physics
    assumes a thread runs when it may; on an oversubscribed machine that
    does not hold and the figures are not measurable.
    """

    def __init__(self, pid, tids):
        self.pid, self.tids = pid, list(tids)
        self.t0 = time.monotonic()
        self.s0 = dict((t, schedstat(pid, t)) for t in self.tids)

    def worst(self):
        dt = (time.monotonic() - self.t0) * 1e9
        w = 0.0
        for t in self.tids:
            a, b = self.s0.get(t), schedstat(self.pid, t)
            if a and b and dt > 0:
                w = max(w, (b[1] - a[1]) / dt)
        return w


def unused_pid():
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    for pid in range(pid_max - 1, 300, -1):
        if not os.path.exists("/proc/%d" % pid):
            return pid
    raise Skip("no unused pid")


def thread_ids(pid):
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return []


# ---------------------------------------------------------------- JSON

def load_json(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise Fail("JSON %s not written: %s" % (path, e))
    try:
        return json.loads(text)
    except ValueError as e:
        raise Fail("JSON %s does not parse: %s: %r" % (path, e, text[:200]))


def validate_json(doc, launch=False):
    """Problems with a giltrace/1 document, as a list of strings."""
    errs = []

    def need(obj, key, types, where):
        if not isinstance(obj, dict) or key not in obj:
            errs.append("%s: missing %r" % (where, key))
            return None
        v = obj[key]
        tys = types if isinstance(types, tuple) else (types,)
        if not isinstance(v, tys) or (isinstance(v, bool) and bool not in tys):
            errs.append("%s.%s: %r has the wrong type" % (where, key, v))
            return None
        return v

    num = (int,)
    if doc.get("schema") != "giltrace/1":
        errs.append("schema is %r, not 'giltrace/1'" % doc.get("schema"))
    need(doc, "giltrace_version", str, "top")
    mode = doc.get("mode")
    if mode not in ("exact", "contention"):
        errs.append("mode is %r, not 'exact' or 'contention'" % mode)
    est = need(doc, "estimated", list, "top")
    if est is not None and (mode == "exact") != (est == []):
        errs.append("mode %r with estimated figures %r" % (mode, est))
    t = need(doc, "target", dict, "top")
    if t is not None:
        need(t, "pid", num, "target")
        need(t, "exe", str, "target")
        need(t, "python_version", str, "target")
        if "library" not in t or not (t["library"] is None or isinstance(t["library"], str)):
            errs.append("target.library: missing or not a string/null")
        probes = need(t, "probes", list, "target")
        if probes is not None:
            if not probes:
                errs.append("target.probes is empty")
            for i, p in enumerate(probes):
                w = "probes[%d]" % i
                for k, ty in (("function", str), ("symbol", str), ("file", str),
                          ("offset", num), ("address", str), ("kind", str), ("inlined", bool)):
                    need(p, k, ty, w)
                if "caller" not in p:
                    errs.append("%s: missing 'caller'" % w)
                if isinstance(p.get("address"), str) and not re.match(r"^0x[0-9a-fA-F]+$", p["address"]):
                    errs.append("%s.address %r is not 0x-hex" % (w, p["address"]))
            funcs = set(p.get("function") for p in probes if isinstance(p, dict))
            # Contention mode probes take_gil's blocking path only.
            for f in (("take_gil",) if mode == "contention" else ("take_gil", "drop_gil")):
                if f not in funcs:
                    errs.append("no probe on %s (functions: %s)" % (f, sorted(funcs, key=str)))
    iv = need(doc, "interval_ns", num, "top")
    need(doc, "switch_interval_ns", num, "top")
    g = need(doc, "gil", dict, "top")
    if g is not None:
        for k in ("held_ns", "acquisitions", "holder_switches"):
            need(g, k, num, "gil")
    need(doc, "dropped_events", num, "top")
    need(doc, "threads_total", num, "top")
    if launch:
        need(doc, "exit_status", num, "top")
    ths = need(doc, "threads", list, "top")
    for th in ths or []:
        w = "thread %s" % th.get("tid")
        for k, ty in (("tid", num), ("name", str), ("hold_ns", num), ("wait_ns", num),
                  ("acquisitions", num), ("waits_abandoned", num), ("waits_abandoned_ns", num)):
            need(th, k, ty, w)
        for kind in ("hold", "wait"):
            d = need(th, kind, dict, w)
            if d is None:
                continue
            ok = True
            for k in ("count", "p50_ns", "p99_ns", "max_ns"):
                ok = need(d, k, num, "%s.%s" % (w, kind)) is not None and ok
            h = need(d, "log2_hist", list, "%s.%s" % (w, kind))
            if not ok or h is None:
                continue
            if sum(h) != d["count"]:
                errs.append("%s.%s: sum(log2_hist)=%d != count=%d" % (w, kind, sum(h), d["count"]))
            if d["count"] and not (d["p50_ns"] <= d["p99_ns"] <= d["max_ns"] * 1.1 + 16):
                errs.append("%s.%s: p50 %d, p99 %d, max %d out of order" % (
                    w, kind, d["p50_ns"], d["p99_ns"], d["max_ns"]))
            if d["count"] and d["max_ns"] and h:
                top = max(i for i, c in enumerate(h) if c) if any(h) else 0
                if not (2 ** top <= d["max_ns"] < 2 ** (top + 1)) and top < len(h) - 1:
                    errs.append("%s.%s: max %d not in the highest log2 bucket [2^%d, 2^%d)" % (
                        w, kind, d["max_ns"], top, top + 1))
        if mode == "exact" and isinstance(th.get("hold"), dict) and isinstance(th.get("acquisitions"), int):
            hc = th["hold"].get("count")
            if isinstance(hc, int) and not (th["acquisitions"] - 1 <= hc <= th["acquisitions"] + 1):
                errs.append("%s: hold.count %d vs acquisitions %d differ by more than one open hold" % (
                    w, hc, th["acquisitions"]))
        if isinstance(iv, int) and iv > 0:
            for k in ("hold_ns", "wait_ns"):
                v = th.get(k)
                if isinstance(v, int) and v > iv * 1.02 + 2e6:
                    errs.append("%s: %s %d exceeds the traced time %d" % (w, k, v, iv))
    return errs


def threads_by_tid(doc):
    return dict((t["tid"], t) for t in doc.get("threads", []))


def pct(a, b):
    return 100.0 * a / b if b else float("nan")
