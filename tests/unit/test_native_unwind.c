/* SPDX-License-Identifier: MIT */
/*
 * test_native_unwind: native stacks of live Python processes, captured as
 * the BPF side of --native captures them (user registers + GT_NATIVE_STACK
 * bytes from rsp, struct gt_native), unwound with CFI by native_unwind and
 * named, on every interpreter found (pyenv 3.6-3.13, Debian's python3.11;
 * absent ones are skipped with a reason).
 *
 * A capture here: PTRACE_SEIZE + PTRACE_INTERRUPT of one thread blocked in
 * a system call, PTRACE_GETREGS, process_vm_readv of the stack from rsp,
 * PTRACE_DETACH (the system call restarts: the child is not disturbed).
 *
 * - main thread blocked in os.read() two Python calls deep: the walk is
 *   complete (reaches _start), passes through the eval loop and main /
 *   Py_BytesMain / Py_Main, and its pcs equal gdb's backtrace of the same
 *   process (an independent unwinder), when gdb is installed; on Debian,
 *   names of static functions prove the debug file is used;
 * - a non-main thread blocked in os.read(): the walk ends at the thread's
 *   start (start_thread / clone3);
 * - a thread waiting for the GIL (main spins, the other sleeps(0) in a
 *   loop): take_gil is on its stack, as at the --native probe;
 * - a library loaded after the unwinder was made (ctypes, libffi): one
 *   refresh of the module list finds it;
 * - 60 nested Python calls: deeper than the copy up to 3.10 (-EFAULT,
 *   the frames found named), complete from 3.11;
 * - the binary deleted while it runs: read from the process, named from
 *   the debug file;
 * - the process gone: a new unwinder fails with ESRCH, an existing one
 *   still unwinds and names;
 * - junk: zero and random registers, random and mutated stacks, bad
 *   lengths and arguments: an error or a short stack, no crash;
 * - symbolize: offsets, return addresses (pc - 1), the cache;
 * - the cost of one unwind, printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "native_unwind.h"
#include "unit_helpers.h"

#define MAXPCS 128

/* Two Python calls deep, blocked in read(0). */
#define S_MAIN "import os\n" \
	"def inner():\n    os.read(0, 1)\n" \
	"def outer():\n    inner()\n" \
	"outer()\n"
/* The worker blocks in read(0); main in join(). */
#define S_THREAD "import os, threading\n" \
	"def work():\n    os.read(0, 1)\n" \
	"t = threading.Thread(target=work)\nt.start()\nt.join()\n"
/* Main spins holding the GIL; the worker keeps dropping and retaking it. */
#define S_GIL "import sys, threading, time\n" \
	"sys.setswitchinterval(0.005)\n" \
	"def work():\n    while True:\n        time.sleep(0)\n" \
	"t = threading.Thread(target=work)\nt.daemon = True\nt.start()\n" \
	"while True:\n    pass\n"
/* 60 Python calls deep, blocked in read(0). */
#define S_DEEP "import os\n" \
	"def f(k):\n    os.read(0, 1) if k == 0 else f(k - 1)\n" \
	"f(60)\n"
/* read(0) twice: by os.read, then (after one byte) through ctypes. */
#define S_CTYPES "import os\nos.read(0, 1)\nimport ctypes\n" \
	"ctypes.CDLL(None).read(0, ctypes.create_string_buffer(1), 1)\n"

/* ---- children ---------------------------------------------------------- */

static pid_t child = -1;
static int child_in = -1; /* its stdin */

static int teardown(void **state)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (child_in >= 0)
		close(child_in);
	child = -1;
	child_in = -1;
	return 0;
}

/* Start `@python -c @script`, stdin a pipe we hold, stdout to /dev/null. */
static pid_t start_python(const char *python, const char *script)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(p[0], 0);
		if (null >= 0)
			dup2(null, 1);
		execl(python, python, "-c", script, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	child_in = p[1];
	return child;
}

/* A task of @pid (not @pid itself unless @main_ok) whose
 * /proc/PID/task/TID/syscall starts with @prefix, waited for up to
 * @timeout s; 0 if none. */
static pid_t find_task(pid_t pid, const char *prefix, bool main_ok, double timeout)
{
	double t0 = now();
	char path[128], buf[256];

	do {
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		d = opendir(path);
		if (!d)
			return 0;
		while ((de = readdir(d))) {
			pid_t tid = (pid_t)atoi(de->d_name);
			FILE *f;
			bool hit = false;

			if (tid <= 0 || (tid == pid && !main_ok))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall",
				 (int)pid, (int)tid);
			f = fopen(path, "r");
			if (f) {
				hit = fgets(buf, sizeof(buf), f) &&
				      strncmp(buf, prefix, strlen(prefix)) == 0;
				fclose(f);
			}
			if (hit) {
				closedir(d);
				return tid;
			}
		}
		closedir(d);
		usleep(2000);
	} while (now() - t0 < timeout);
	return 0;
}

/*
 * Capture thread @tid of @pid as the BPF side would: registers in DWARF
 * order and up to GT_NATIVE_STACK bytes from rsp (less at the top of the
 * stack mapping). Also the system call the thread was in (orig_rax).
 * Returns 0, or -1 when the thread could not be stopped.
 */
static int capture(pid_t pid, pid_t tid, struct gt_native *n, long *syscall_nr)
{
	struct user_regs_struct r;
	struct iovec local, remote;
	ssize_t got;
	int status;

	memset(n, 0, sizeof(*n));
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0)
		return -1;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0 ||
	    waitpid(tid, &status, __WALL) != tid ||
	    ptrace(PTRACE_GETREGS, tid, 0, &r) != 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -1;
	}
	n->regs[0] = r.rax;
	n->regs[1] = r.rdx;
	n->regs[2] = r.rcx;
	n->regs[3] = r.rbx;
	n->regs[4] = r.rsi;
	n->regs[5] = r.rdi;
	n->regs[6] = r.rbp;
	n->regs[7] = r.rsp;
	n->regs[8] = r.r8;
	n->regs[9] = r.r9;
	n->regs[10] = r.r10;
	n->regs[11] = r.r11;
	n->regs[12] = r.r12;
	n->regs[13] = r.r13;
	n->regs[14] = r.r14;
	n->regs[15] = r.r15;
	n->regs[16] = r.rip;
	if (syscall_nr)
		*syscall_nr = (long)r.orig_rax;
	local.iov_base = n->stack;
	local.iov_len = GT_NATIVE_STACK;
	remote.iov_base = (void *)(uintptr_t)r.rsp;
	remote.iov_len = GT_NATIVE_STACK;
	got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	n->stack_len = got > 0 ? (uint32_t)got : 0;
	ptrace(PTRACE_DETACH, tid, 0, 0);
	return 0;
}

/* Start `@python -c @script`; wait until its main thread blocks in read(0). */
static pid_t start_blocked(const char *python, const char *script)
{
	pid_t pid = start_python(python, script);

	wait_blocked_pid(pid);
	return pid;
}

/* An unwinder of @pid; fails the test without one. */
static struct native_unwinder *unwinder_of(const struct interp *in, pid_t pid)
{
	struct native_unwinder *u;
	char err[256];

	u = native_unwind__new(pid, err, sizeof(err));
	if (!u)
		fail_msg("%s: %s", in->label, err);
	return u;
}

/*
 * @in's python on @script, blocked in read(0), and an unwinder of it; its
 * pid in *@pid. NULL (the test skipped) when @in is not installed.
 */
static struct native_unwinder *start_unwinder(const struct interp *in,
					      const char *script, pid_t *pid)
{
	if (!present(in->python, in->label))
		return NULL;
	*pid = start_blocked(in->python, script);
	return unwinder_of(in, *pid);
}

/* ---- names ------------------------------------------------------------- */

struct named {
	uint64_t pcs[MAXPCS];
	size_t n;
	int rc;
	struct native_frame f[MAXPCS];
};

static void unwind_and_name(struct native_unwinder *u, const struct gt_native *n,
			    struct named *s)
{
	size_t i;

	s->rc = native_unwind__stack(u, n, s->pcs, MAXPCS, &s->n);
	assert_true(s->n <= MAXPCS);
	for (i = 0; i < s->n; i++)
		native_unwind__symbolize(u, s->pcs[i], i > 0, &s->f[i]);
}

/* Capture thread @tid of @pid (it must stop), unwind and name it into @s. */
static void capture_named(struct native_unwinder *u, pid_t pid, pid_t tid,
			  struct gt_native *n, struct named *s)
{
	assert_int_equal(capture(pid, tid, n, NULL), 0);
	unwind_and_name(u, n, s);
}

/* @sym is @base, or @base + "." + a compiler suffix (.lto_priv.0, .cold) */
static bool name_is(const char *sym, const char *base)
{
	size_t l = strlen(base);

	return strncmp(sym, base, l) == 0 && (sym[l] == '\0' || sym[l] == '.');
}

/* Index of the first frame named one of @names (NULL-terminated), or -1. */
static int find_frame(const struct named *s, const char *const *names)
{
	size_t i;
	int k;

	for (i = 0; i < s->n; i++)
		for (k = 0; names[k]; k++)
			if (name_is(s->f[i].function, names[k]))
				return (int)i;
	return -1;
}

static void print_stack(const char *label, const struct named *s)
{
	size_t i;

	print_message("  %s: rc %d, %zu frames\n", label, s->rc, s->n);
	for (i = 0; i < s->n; i++)
		print_message("    #%-2zu %#014" PRIx64 " %s+%#" PRIx64 " (%s)\n",
			      i, s->pcs[i], s->f[i].function, s->f[i].offset,
			      s->f[i].module);
}

static const char *const EVAL[] = {
	"_PyEval_EvalFrameDefault", "_PyEval_EvalFrame", "PyEval_EvalFrameEx", NULL
};
static const char *const ENTRY[] = {
	"main", "Py_RunMain", "Py_Main", "Py_BytesMain", "_Py_UnixMain", NULL
};
static const char *const THREAD_START[] = { "start_thread", "clone3", "clone", NULL };
static const char *const TAKE_GIL[] = { "take_gil", NULL };

/*
 * gdb's backtrace of @pid's main thread: the pc of every physical frame
 * (inline frames carry none) into @pcs. Returns the count, or -1 without
 * gdb.
 */
static int gdb_pcs(pid_t pid, uint64_t *pcs, int max)
{
	char *out, *line, *save = NULL;
	int n = 0;

	if (access("/usr/bin/gdb", X_OK) != 0)
		return -1;
	out = run("gdb -nx -batch -iex 'set debuginfod enabled off' "
		  "-iex 'set auto-load off' -ex 'set backtrace past-main on' "
		  "-p %d -ex bt 2>/dev/null", (int)pid);
	if (!out)
		return -1;
	for (line = strtok_r(out, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long pc;
		int fno;

		if (sscanf(line, "#%d 0x%llx in ", &fno, &pc) == 2 && fno > 0)
			pcs[n++] = pc;
	}
	free(out);
	return n;
}

/* Is the instruction before @pc in @pid a jmp (rel32 or rel8)? */
static bool after_jmp(pid_t pid, uint64_t pc)
{
	unsigned char b[5];
	struct iovec local = { b, sizeof(b) };
	struct iovec remote = { (void *)(uintptr_t)(pc - 5), sizeof(b) };

	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != sizeof(b))
		return false;
	return b[0] == 0xe9 || b[3] == 0xeb;
}

/* The shortest copy (to 64 bytes) with which @n's walk still completes. */
static unsigned bytes_needed(struct native_unwinder *u, const struct gt_native *n)
{
	static struct gt_native c;
	uint64_t pcs[MAXPCS];
	unsigned lo = 0, hi = n->stack_len;
	size_t np;

	c = *n;
	while (hi - lo > 64) {
		c.stack_len = (lo + hi) / 2;
		if (native_unwind__stack(u, &c, pcs, MAXPCS, &np) == 0)
			hi = c.stack_len;
		else
			lo = c.stack_len;
	}
	return hi;
}

/* ---- tests ------------------------------------------------------------- */

/* Main thread in os.read(): complete walk, eval loop, main, = gdb. */
static void test_main_thread(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	struct native_unwinder *u;
	uint64_t g[MAXPCS];
	pid_t pid;
	int ng, i, e;

	u = start_unwinder(in, S_MAIN, &pid);
	if (!u)
		return;
	capture_named(u, pid, pid, &n, &s);
	assert_true(n.stack_len > 0);
	print_stack(in->label, &s);
	assert_int_equal(s.rc, 0);
	assert_int_equal(s.pcs[0], n.regs[16]);
	assert_true(find_frame(&s, EVAL) >= 0);
	e = find_frame(&s, ENTRY);
	assert_true(e > find_frame(&s, EVAL));
	for (i = 0; i < (int)s.n; i++)
		assert_true(s.f[i].known);
	if (!in->is_library) {
		/* stripped binary: static functions are named only from the
		 * debug file (.symtab), never from .dynsym */
		char *dyn = run("nm -D --defined-only %s", in->python);
		bool from_debug = false;

		assert_non_null(dyn);
		for (i = 0; i < (int)s.n; i++) {
			char pat[300];

			snprintf(pat, sizeof(pat), " %s\n", s.f[i].function);
			if (strcmp(s.f[i].module, "python3.11") == 0 && !strstr(dyn, pat))
				from_debug = true;
		}
		free(dyn);
		assert_true(from_debug);
	}
	print_message("  copied %u bytes, the walk needs %u\n", n.stack_len,
		      bytes_needed(u, &n));
	ng = gdb_pcs(pid, g, MAXPCS);
	if (ng < 0) {
		print_message("  gdb not installed: no cross-check\n");
	} else {
		size_t k = 1;
		int tail = 0;

		/* ours = gdb's, but for the tail-call frames gdb makes up from
		 * DWARF call-site info: a "return address" after a jmp */
		for (i = 0; i < ng; i++) {
			if (k < s.n && g[i] == s.pcs[k]) {
				k++;
				continue;
			}
			if (!after_jmp(pid, g[i]))
				fail_msg("%s: gdb frame #%d %#llx is not ours (#%zu %#llx)",
					 in->label, i + 1, (unsigned long long)g[i], k,
					 (unsigned long long)(k < s.n ? s.pcs[k] : 0));
			tail++;
		}
		print_message("  gdb: %d frames below #0, %d of them tail calls\n",
			      ng, tail);
		assert_int_equal(k, s.n);
	}
	native_unwind__free(u);
}

/* A non-main thread: the walk ends at the thread's start. */
static void test_thread(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	struct native_unwinder *u;
	pid_t pid, tid;

	if (!present(in->python, in->label))
		return;
	pid = start_python(in->python, S_THREAD);
	tid = find_task(pid, "0 0x0 ", false, 10);
	assert_true(tid > 0);
	u = unwinder_of(in, pid);
	capture_named(u, pid, tid, &n, &s);
	print_stack(in->label, &s);
	assert_int_equal(s.rc, 0);
	assert_true(find_frame(&s, EVAL) >= 0);
	assert_true(find_frame(&s, THREAD_START) > find_frame(&s, EVAL));
	native_unwind__free(u);
}

/* A thread waiting in take_gil, as the --native probes see it. */
static void test_gil_wait(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	struct native_unwinder *u;
	double t0;
	pid_t pid;
	int tries = 0;
	bool found = false;

	if (!present(in->python, in->label))
		return;
	pid = start_python(in->python, S_GIL);
	assert_true(find_task(pid, "202 ", true, 10) > 0); /* futex */
	u = unwinder_of(in, pid);
	t0 = now();
	while (!found && now() - t0 < 3) {
		pid_t tid = find_task(pid, "202 ", true, 1);
		long nr = -1;

		if (tid <= 0 || capture(pid, tid, &n, &nr) != 0 || nr != 202)
			continue;
		tries++;
		unwind_and_name(u, &n, &s);
		found = find_frame(&s, TAKE_GIL) >= 0 && find_frame(&s, EVAL) >= 0;
	}
	print_stack(in->label, &s);
	print_message("  take_gil found after %d captures\n", tries);
	assert_true(found);
	assert_true(s.rc == 0);
	native_unwind__free(u);
}

/* ctypes and libffi loaded after the unwinder was made: one refresh. */
static void test_dlopen(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	static const char *const CTYPES[] = { "_ctypes_callproc", "ffi_call", NULL };
	struct native_unwind_stats st;
	struct native_unwinder *u;
	char *maps;
	double t0;
	pid_t pid;

	u = start_unwinder(in, S_CTYPES, &pid);
	if (!u)
		return;
	assert_int_equal(write(child_in, "x", 1), 1);
	t0 = now();
	for (;;) { /* _ctypes mapped, then blocked in read(0) again */
		maps = run("grep -c _ctypes /proc/%d/maps", (int)pid);
		if (maps && atoi(maps) > 0) {
			free(maps);
			break;
		}
		free(maps);
		if (now() - t0 > 10)
			fail_msg("%s: _ctypes never loaded", in->label);
		usleep(10000);
	}
	wait_blocked_pid(pid);
	usleep(300 * 1000); /* past NATIVE_REFRESH_MIN_MS of anything */
	capture_named(u, pid, pid, &n, &s);
	print_stack(in->label, &s);
	native_unwind__stats(u, &st);
	assert_int_equal(st.refreshes, 1);
	assert_true(find_frame(&s, CTYPES) >= 0);
	assert_true(find_frame(&s, ENTRY) > find_frame(&s, CTYPES));
	native_unwind__free(u);
}

/*
 * 60 nested Python calls: up to 3.10 each is a C recursion of the eval
 * loop, deeper than the copy: the walk stops at its end with -EFAULT, the
 * frames found named; from 3.11 Python calls do not recurse in C: complete.
 */
static void test_deep(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	struct native_unwinder *u;
	pid_t pid;
	size_t i;

	u = start_unwinder(in, S_DEEP, &pid);
	if (!u)
		return;
	capture_named(u, pid, pid, &n, &s);
	print_message("  %s: 60 Python calls deep: rc %d, %zu frames, last %s\n",
		      in->label, s.rc, s.n, s.n ? s.f[s.n - 1].function : "-");
	assert_true(find_frame(&s, EVAL) >= 0);
	for (i = 0; i < s.n; i++)
		assert_true(s.f[i].known);
	if (strstr(in->label, "3.10"))
		assert_int_equal(s.rc, -EFAULT);
	else
		assert_int_equal(s.rc, 0);
	native_unwind__free(u);
}

/* The binary deleted while it runs (a package upgrade): its image is read
 * from the process, its symbols from the debug file by build-id. */
static void test_deleted(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	struct native_unwinder *u;
	char dir[] = "/tmp/gt-native-XXXXXX", copy[64];
	pid_t pid;
	int e;

	if (!present(in->python, in->label))
		return;
	assert_non_null(mkdtemp(dir));
	snprintf(copy, sizeof(copy), "%s/python3", dir);
	copy_file(in->python, copy);
	pid = start_blocked(copy, S_MAIN);
	assert_int_equal(unlink(copy), 0);
	remove_tree(dir);
	u = unwinder_of(in, pid);
	capture_named(u, pid, pid, &n, &s);
	print_stack(in->label, &s);
	assert_int_equal(s.rc, 0);
	assert_true(find_frame(&s, EVAL) >= 0);
	e = find_frame(&s, ENTRY);
	assert_true(e >= 0);
	assert_string_equal(s.f[e].module, "python3 (deleted)");
	native_unwind__free(u);
}

/* The process gone: new() fails; an existing unwinder still works. */
static void test_dead(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	static struct named s;
	struct native_unwinder *u;
	char err[256];
	pid_t pid;

	u = start_unwinder(in, S_MAIN, &pid);
	if (!u)
		return;
	assert_int_equal(capture(pid, pid, &n, NULL), 0);
	teardown(NULL); /* killed and reaped */
	unwind_and_name(u, &n, &s);
	assert_int_equal(s.rc, 0);
	assert_true(find_frame(&s, EVAL) >= 0);
	assert_true(find_frame(&s, ENTRY) >= 0);
	native_unwind__free(u);
	errno = 0;
	assert_null(native_unwind__new(pid, err, sizeof(err)));
	assert_int_equal(errno, ESRCH);
	print_message("  after exit: %s\n", err);
	assert_null(native_unwind__new(0, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
}

/* Junk never crashes: an error or a short stack. */
static void test_junk(void **state)
{
	const struct interp *in = *state;
	static struct gt_native real, n;
	uint64_t pcs[MAXPCS], rng = 42;
	struct native_unwinder *u;
	struct native_frame f;
	size_t np, i, k;
	pid_t pid;
	int r;

	u = start_unwinder(in, S_MAIN, &pid);
	if (!u)
		return;
	assert_int_equal(capture(pid, pid, &real, NULL), 0);

	/* arguments */
	assert_int_equal(native_unwind__stack(NULL, &real, pcs, MAXPCS, &np), -EINVAL);
	assert_int_equal(native_unwind__stack(u, NULL, pcs, MAXPCS, &np), -EINVAL);
	assert_int_equal(native_unwind__stack(u, &real, NULL, MAXPCS, &np), -EINVAL);
	assert_int_equal(native_unwind__stack(u, &real, pcs, MAXPCS, NULL), -EINVAL);
	assert_int_equal(native_unwind__stack(u, &real, pcs, 0, &np), 1);
	assert_int_equal(np, 0);
	r = native_unwind__stack(u, &real, pcs, 3, &np);
	assert_int_equal(r, 1);
	assert_int_equal(np, 3);
	assert_int_equal(native_unwind__symbolize(u, 1, false, NULL), -EINVAL);
	assert_int_equal(native_unwind__symbolize(NULL, 1, false, &f), -EINVAL);

	/* no capture; zero registers */
	memset(&n, 0, sizeof(n));
	assert_int_equal(native_unwind__stack(u, &n, pcs, MAXPCS, &np), -ENODATA);
	n.stack_len = GT_NATIVE_STACK;
	assert_int_equal(native_unwind__stack(u, &n, pcs, MAXPCS, &np), -EINVAL);
	assert_int_equal(np, 0);

	/* a length past the buffer is clamped */
	n = real;
	n.stack_len = 0xffffffffu;
	r = native_unwind__stack(u, &n, pcs, MAXPCS, &np);
	assert_true(r == 0 || r == -EFAULT);

	/* the real stack cut short: stops at the end of the copy */
	n = real;
	n.stack_len = 256;
	r = native_unwind__stack(u, &n, pcs, MAXPCS, &np);
	print_message("  copy cut to 256 bytes: rc %d, %zu frames\n", r, np);
	assert_true(r == -EFAULT || r == -EIO);
	assert_true(np >= 1 && np < MAXPCS);

	for (k = 0; k < 3000; k++) {
		n = real;
		switch (k % 4) {
		case 0: /* random registers, random stack */
			for (i = 0; i < GT_NATIVE_NREGS; i++)
				n.regs[i] = splitmix64(&rng);
			for (i = 0; i < GT_NATIVE_STACK; i += 8) {
				uint64_t v = splitmix64(&rng);

				memcpy(n.stack + i, &v, 8);
			}
			break;
		case 1: /* real pc and sp, random stack words */
			for (i = 0; i < GT_NATIVE_STACK; i += 8) {
				uint64_t v = splitmix64(&rng);

				memcpy(n.stack + i, &v, 8);
			}
			break;
		case 2: /* the real stack, a few words changed */
			for (i = 0; i < 8; i++) {
				uint64_t v = splitmix64(&rng), at = splitmix64(&rng) %
					(GT_NATIVE_STACK / 8);

				memcpy(n.stack + at * 8, &v, 8);
			}
			break;
		case 3: /* real stack, random other registers, short copy */
			for (i = 0; i < GT_NATIVE_NREGS; i++)
				if (i != 7 && i != 16)
					n.regs[i] = splitmix64(&rng);
			n.stack_len = (uint32_t)(splitmix64(&rng) % (GT_NATIVE_STACK + 1));
			break;
		}
		r = native_unwind__stack(u, &n, pcs, MAXPCS, &np);
		assert_true(r == 0 || r == 1 || r == -EFAULT || r == -ENOENT ||
			    r == -EIO || r == -EINVAL || r == -ENODATA);
		assert_true(np <= MAXPCS);
		for (i = 0; i < np; i++)
			native_unwind__symbolize(u, pcs[i], i > 0, &f);
	}
	native_unwind__free(u);
}

/* Offsets, return addresses and the cache, on Debian's non-PIE binary
 * (its addresses are its symbols' values). */
static void test_symbolize(void **state)
{
	const struct interp *in = *state;
	struct native_unwind_stats st;
	struct native_unwinder *u;
	struct native_frame f;
	struct nm_tab t;
	uint64_t a;
	char *dbg;

	if (!present(in->python, in->label))
		return;
	dbg = run("eu-readelf -n %s | awk '/Build ID/ {print $3}'", in->python);
	assert_non_null(dbg);
	{
		char path[512];
		size_t l = strcspn(dbg, "\n");

		dbg[l] = '\0';
		snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%.2s/%s.debug",
			 dbg, dbg + 2);
		free(dbg);
		if (access(path, R_OK) != 0) {
			print_message("[  SKIP    ] %s: no debug file %s\n", in->label, path);
			return;
		}
		nm_load(path, &t, true);
	}
	a = nm_addr(&t, "_PyEval_EvalFrameDefault");
	u = unwinder_of(in, start_blocked(in->python, S_MAIN));

	assert_int_equal(native_unwind__symbolize(u, a + 5, false, &f), 0);
	assert_string_equal(f.function, "_PyEval_EvalFrameDefault");
	assert_string_equal(f.module, "python3.11");
	assert_int_equal(f.offset, 5);
	assert_true(f.known);
	/* as a return address: the call ending the previous function */
	native_unwind__symbolize(u, a, true, &f);
	assert_string_not_equal(f.function, "_PyEval_EvalFrameDefault");
	assert_int_equal(native_unwind__symbolize(u, a, false, &f), 0);
	assert_int_equal(f.offset, 0);
	/* cached: same answer */
	assert_int_equal(native_unwind__symbolize(u, a + 5, false, &f), 0);
	assert_int_equal(f.offset, 5);
	native_unwind__stats(u, &st);
	assert_true(st.cache_hits >= 1);
	/* in no module */
	assert_int_equal(native_unwind__symbolize(u, 16, false, &f), -ENOENT);
	assert_false(f.known);
	assert_string_equal(f.function, NATIVE_UNKNOWN);
	assert_string_equal(f.module, NATIVE_UNKNOWN);
	assert_int_equal(f.offset, 16);
	free(t.v);
	native_unwind__free(u);
}

/* µs per unwind (walk only; walk + names from the cache). */
static void test_cost(void **state)
{
	const struct interp *in = *state;
	static struct gt_native n;
	uint64_t pcs[MAXPCS];
	struct native_unwinder *u;
	struct native_frame f;
	double t0, walk_us, all_us, new_ms;
	size_t np = 0, i;
	pid_t pid;
	int k, iters = 2000;

	if (!present(in->python, in->label))
		return;
	pid = start_blocked(in->python, S_MAIN);
	t0 = now();
	u = unwinder_of(in, pid);
	new_ms = (now() - t0) * 1e3;
	assert_int_equal(capture(pid, pid, &n, NULL), 0);
	t0 = now();
	assert_int_equal(native_unwind__stack(u, &n, pcs, MAXPCS, &np), 0);
	for (i = 0; i < np; i++)
		native_unwind__symbolize(u, pcs[i], i > 0, &f);
	print_message("  %s: new %.1f ms, first unwind + names %.1f ms\n",
		      in->label, new_ms, (now() - t0) * 1e3);
	t0 = now();
	for (k = 0; k < iters; k++)
		native_unwind__stack(u, &n, pcs, MAXPCS, &np);
	walk_us = (now() - t0) * 1e6 / iters;
	t0 = now();
	for (k = 0; k < iters; k++) {
		native_unwind__stack(u, &n, pcs, MAXPCS, &np);
		for (i = 0; i < np; i++)
			native_unwind__symbolize(u, pcs[i], i > 0, &f);
	}
	all_us = (now() - t0) * 1e6 / iters;
	print_message("  %s: %zu frames: unwind %.1f us/stack, + cached names %.1f us/stack\n",
		      in->label, np, walk_us, all_us);
	native_unwind__free(u);
}

#define DEBIAN 8
#define PYENV_312 6

int main(void)
{
	const struct CMUnitTest tests[] = {
		PER_INTERP(test_main_thread, 0), PER_INTERP(test_main_thread, 1),
		PER_INTERP(test_main_thread, 2), PER_INTERP(test_main_thread, 3),
		PER_INTERP(test_main_thread, 4), PER_INTERP(test_main_thread, 5),
		PER_INTERP(test_main_thread, 6), PER_INTERP(test_main_thread, 7),
		PER_INTERP(test_main_thread, 8),
		PER_INTERP(test_thread, 0), PER_INTERP(test_thread, PYENV_312),
		PER_INTERP(test_thread, DEBIAN),
		PER_INTERP(test_gil_wait, 0), PER_INTERP(test_gil_wait, 3),
		PER_INTERP(test_gil_wait, PYENV_312), PER_INTERP(test_gil_wait, 7),
		PER_INTERP(test_gil_wait, DEBIAN),
		PER_INTERP(test_dlopen, PYENV_312), PER_INTERP(test_dlopen, DEBIAN),
		PER_INTERP(test_deep, 4), PER_INTERP(test_deep, PYENV_312),
		PER_INTERP(test_deep, DEBIAN),
		PER_INTERP(test_deleted, DEBIAN),
		PER_INTERP(test_dead, PYENV_312), PER_INTERP(test_dead, DEBIAN),
		PER_INTERP(test_junk, PYENV_312), PER_INTERP(test_junk, DEBIAN),
		PER_INTERP(test_symbolize, DEBIAN),
		PER_INTERP(test_cost, 2), PER_INTERP(test_cost, PYENV_312),
		PER_INTERP(test_cost, DEBIAN),
	};

	if (geteuid() != 0) {
		print_message("[  SKIP    ] test_native_unwind: needs root (ptrace, /proc/PID/mem)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
