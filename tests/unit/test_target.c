/* SPDX-License-Identifier: MIT */
/*
 * test_target: target discovery and GIL state on real interpreters.
 *
 * For every CPython found on this machine (pyenv 3.6-3.13 shared builds,
 * Debian's static /usr/bin/python3.11), start a real Python process that
 * prints "ready PID" once it is set up, and check what target__open and
 * py_state__read_gil find against what the interpreter says of itself.
 * Interpreters that are absent are skipped with a printed reason. Every
 * child runs in its own process group, killed at the end of each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "py_state.h"
#include "target.h"
#include "unit_helpers.h"

#define PY2 PYENV "2.7.18/bin/python"

/* Scripts that run on Python 2 and 3 alike; "ready PID" once set up. */
#define READY "sys.stdout.write('ready %d\\n' % os.getpid()); sys.stdout.flush()\n"
#define S_SLEEP "import os, sys, time\nsys.setswitchinterval(0.002)\n" READY \
	"time.sleep(30)\n"
/* A thread started and joined first: 3.6 creates the GIL lazily. */
#define S_SPIN_MAIN "import os, sys, threading\n" \
	"t = threading.Thread(target=lambda: None); t.start(); t.join()\n" \
	"sys.setswitchinterval(0.002)\n" READY "while True: pass\n"
#define S_SPIN_THREAD "import os, sys, threading\n" \
	"def spin():\n    while True: pass\n" \
	"t = threading.Thread(target=spin); t.daemon = True; t.start()\n" \
	"sys.setswitchinterval(0.002)\n" READY "t.join()\n"
#define S_PY2 "import os, sys, time\n" READY "time.sleep(30)\n"

/* ---- child processes --------------------------------------------------- */

struct child {
	pid_t pid;     /* what we forked: a process group leader */
	pid_t ready;   /* the PID printed in the ready line */
	int fd;        /* its stdout */
};

#define MAX_CHILDREN 16
static struct child children[MAX_CHILDREN];
static int nchildren;

static void kill_all(void)
{
	int i;

	for (i = 0; i < nchildren; i++) {
		kill(-children[i].pid, SIGKILL);
		waitpid(children[i].pid, NULL, 0);
		if (children[i].fd >= 0)
			close(children[i].fd);
	}
	nchildren = 0;
}

static int teardown(void **state)
{
	kill_all();
	return 0;
}

/* Fork @argv in a new process group, stdout to a pipe. */
static struct child *spawn(char *const argv[], char *const envp[])
{
	struct child *c;
	int p[2];
	pid_t pid;

	assert_true(nchildren < MAX_CHILDREN);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		dup2(p[1], 1);
		if (envp)
			execve(argv[0], argv, envp);
		else
			execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(p[1]);
	c = &children[nchildren++];
	c->pid = pid;
	c->ready = 0;
	c->fd = p[0];
	return c;
}

/* Read the child's stdout until "ready PID"; 60 s at most. */
static pid_t wait_ready(struct child *c)
{
	char buf[256];
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		ssize_t n;
		char *nl;

		if (poll(&pfd, 1, 60000) <= 0)
			fail_msg("child %d printed no ready line", (int)c->pid);
		n = read(c->fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			fail_msg("child %d exited before ready", (int)c->pid);
		len += (size_t)n;
		buf[len] = '\0';
		nl = strstr(buf, "ready ");
		if (nl && strchr(nl, '\n')) {
			c->ready = (pid_t)atoi(nl + 6);
			return c->ready;
		}
	}
	fail_msg("child %d: no ready line", (int)c->pid);
	return 0;
}

static pid_t start_python(const char *python, const char *script)
{
	char *argv[] = { (char *)python, "-c", (char *)script, NULL };

	return wait_ready(spawn(argv, NULL));
}

/* What the interpreter says its version is. */
static void python_version(const char *python, char *out, size_t len)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "%s -c \"import platform, sys; sys.stdout.write(platform.python_version())\"",
		 python);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, (int)len, f));
	pclose(f);
}

/* Tasks of @pid other than the main one; returns how many, first in *tid. */
static int other_tasks(pid_t pid, pid_t *tid)
{
	char p[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	dir = opendir(p);
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		pid_t t = (pid_t)atoi(d->d_name);

		if (t > 0 && t != pid) {
			*tid = t;
			n++;
		}
	}
	closedir(dir);
	return n;
}

/* ---- per-interpreter checks -------------------------------------------- */

static void assert_layouts_agree(struct py_target *t, const char *label)
{
	struct gil_layout d, tb, dbg;
	char err[256];

	assert_int_equal(py_state__layout(t, GIL_LAYOUT_TABLE, &tb, err, sizeof(err)), 0);
	if (py_state__layout(t, GIL_LAYOUT_DWARF, &d, err, sizeof(err)) != 0) {
		print_message("[  SKIP    ] %s: no DWARF to check the table against\n", label);
	} else {
		assert_int_equal(d.where, tb.where);
		assert_int_equal(d.rt_gil, tb.rt_gil);
		assert_int_equal(d.rt_main_interp, tb.rt_main_interp);
		assert_int_equal(d.interp_gil, tb.interp_gil);
		assert_int_equal(d.g_interval, tb.g_interval);
		assert_int_equal(d.g_last_holder, tb.g_last_holder);
		assert_int_equal(d.g_locked, tb.g_locked);
		assert_int_equal(d.g_switch_number, tb.g_switch_number);
		assert_int_equal(d.ts_thread_id, tb.ts_thread_id);
		assert_int_equal(d.ts_native_thread_id, tb.ts_native_thread_id);
		print_message("[  INFO    ] %s: DWARF == table (ceval.gil 0x%llx, interpreters.main 0x%llx, interp ceval.gil 0x%llx, thread_id %llu, native_thread_id %llu)\n",
			      label, (unsigned long long)d.rt_gil,
			      (unsigned long long)d.rt_main_interp,
			      (unsigned long long)d.interp_gil,
			      (unsigned long long)d.ts_thread_id,
			      (unsigned long long)d.ts_native_thread_id);
	}
	if (t->major == 3 && t->minor >= 13) {
		assert_int_equal(py_state__layout(t, GIL_LAYOUT_DEBUG_OFFSETS, &dbg, err, sizeof(err)), 0);
		assert_int_equal(dbg.rt_main_interp, tb.rt_main_interp);
		assert_int_equal(dbg.interp_gil, tb.interp_gil);
		assert_int_equal(dbg.g_last_holder, tb.g_last_holder);
		assert_int_equal(dbg.g_locked, tb.g_locked);
		assert_int_equal(dbg.ts_thread_id, tb.ts_thread_id);
		assert_int_equal(dbg.ts_native_thread_id, tb.ts_native_thread_id);
		print_message("[  INFO    ] %s: _Py_DebugOffsets == table\n", label);
	}
}

static void test_sleeping(void **state)
{
	const struct interp *in = *state;
	char want[64], err[512];
	struct py_target t;
	struct gil_state st;
	pid_t pid;

	if (!present(in->python, in->label))
		skip();
	python_version(in->python, want, sizeof(want));
	pid = start_python(in->python, S_SLEEP);

	assert_int_equal(target__open(pid, &t, err, sizeof(err)), 0);
	assert_string_equal(t.version, want);
	assert_int_equal(t.is_library, in->is_library);
	assert_false(t.free_threaded);
	assert_non_null(t.img);
	if (in->is_library) {
		assert_true(t.load_bias != 0);
		assert_int_equal(t.load_bias & 0xfff, 0);
	}
	assert_int_equal(target__exe_needs_libpython(pid), in->is_library);

	assert_int_equal(py_state__read_gil(&t, &st, err, sizeof(err)), 0);
	assert_int_equal(st.interval_us, 2000);
	assert_true(st.gil_addr != 0);
	/* 3.6 creates its GIL with the first thread: -1 before */
	if (t.minor == 6)
		assert_true(st.locked >= -1 && st.locked <= 1);
	else
		assert_true(st.locked == 0 || st.locked == 1);
	print_message("[  INFO    ] %s: PID %d %s %s bias 0x%llx gil 0x%llx locked %d switches %llu\n",
		      in->label, (int)pid, t.version, t.interp,
		      (unsigned long long)t.load_bias,
		      (unsigned long long)st.gil_addr, st.locked,
		      (unsigned long long)st.switch_number);
	assert_layouts_agree(&t, in->label);
	target__close(&t);
}

/* Read the GIL until @done says so, for 10 s at most. */
static void poll_gil(struct py_target *t, struct gil_state *st,
		     bool (*done)(const struct gil_state *, pid_t), pid_t want)
{
	char err[512];
	double t0 = now();

	do {
		assert_int_equal(py_state__read_gil(t, st, err, sizeof(err)), 0);
		if (done(st, want))
			return;
		sched_yield();
	} while (now() - t0 < 10);
}

static bool held_by(const struct gil_state *st, pid_t tid)
{
	return st->locked == 1 && st->holder_tid == tid;
}

static void test_spin_main(void **state)
{
	const struct interp *in = *state;
	struct py_target t;
	struct gil_state st;
	char err[512];
	pid_t pid;

	if (!present(in->python, in->label))
		skip();
	pid = start_python(in->python, S_SPIN_MAIN);
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), 0);
	poll_gil(&t, &st, held_by, pid);
	print_message("[  INFO    ] %s: main thread spins: locked %d holder 0x%llx -> TID %d (PID %d)\n",
		      in->label, st.locked, (unsigned long long)st.last_holder,
		      (int)st.holder_tid, (int)pid);
	assert_int_equal(st.locked, 1);
	assert_int_equal(st.interval_us, 2000);
	assert_int_equal(st.holder_tid, pid);
	target__close(&t);
}

static void test_spin_thread(void **state)
{
	const struct interp *in = *state;
	struct py_target t;
	struct gil_state st;
	char err[512];
	pid_t pid, tid = 0;

	if (!present(in->python, in->label))
		skip();
	pid = start_python(in->python, S_SPIN_THREAD);
	assert_int_equal(other_tasks(pid, &tid), 1);
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), 0);
	poll_gil(&t, &st, held_by, tid);
	print_message("[  INFO    ] %s: second thread spins: locked %d -> TID %d (spinner %d)\n",
		      in->label, st.locked, (int)st.holder_tid, (int)tid);
	assert_int_equal(st.locked, 1);
	assert_int_equal(st.holder_tid, tid);
	target__close(&t);
}

/* ---- error paths ------------------------------------------------------- */

static void test_no_such_pid(void **state)
{
	struct py_target t;
	char err[256], want[64];
	pid_t pid;

	for (pid = 4194000; pid > 1000; pid--)
		if (kill(pid, 0) != 0 && errno == ESRCH)
			break;
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), TARGET_ENOPROC);
	snprintf(want, sizeof(want), "giltrace: no process with PID %d", (int)pid);
	assert_string_equal(err, want);
	assert_int_equal(target__open(0, &t, err, sizeof(err)), TARGET_ENOPROC);
	assert_int_equal(target__open(-5, &t, err, sizeof(err)), TARGET_ENOPROC);
}

static void test_not_python(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "echo ready $$; exec sleep 30", NULL };
	struct py_target t;
	char err[256], comm[32] = "", p[64];
	double t0;
	pid_t pid;
	FILE *f;

	pid = wait_ready(spawn(argv, NULL));
	/* until the exec of sleep has happened */
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	for (t0 = now(); now() - t0 < 10 && strcmp(comm, "sleep\n") != 0;) {
		f = fopen(p, "r");
		assert_non_null(f);
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
	}
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), TARGET_ENOTPY);
	print_message("[  INFO    ] %s\n", err);
	assert_non_null(strstr(err, "(sleep) is not a Python process: no libpython or CPython interpreter mapped"));
	assert_false(target__exe_needs_libpython(pid));
	assert_null(t.img);
}

static void test_python2(void **state)
{
	struct py_target t;
	char err[256], want[128];
	pid_t pid;

	if (!present(PY2, "pyenv 2.7.18"))
		skip();
	pid = start_python(PY2, S_PY2);
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), TARGET_EPY2);
	snprintf(want, sizeof(want),
		 "giltrace: PID %d runs Python 2.7.18; Python 2.7 has no take_gil: not supported",
		 (int)pid);
	assert_string_equal(err, want);
	assert_null(t.img);
}

static const struct interp *first_present(void)
{
	size_t i;

	for (i = 0; i < sizeof(interps) / sizeof(interps[0]); i++)
		if (access(interps[i].python, X_OK) == 0)
			return &interps[i];
	return NULL;
}

/* An unprivileged user may not read a root process's maps. */
static void test_eacces(void **state)
{
	const struct interp *in = first_present();
	struct py_target t;
	char err[256];
	int status, r;
	pid_t pid, c;

	if (!in || geteuid() != 0) {
		print_message("[  SKIP    ] EACCES: needs root and an interpreter\n");
		skip();
	}
	pid = start_python(in->python, S_SLEEP);
	c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		if (setresgid(65534, 65534, 65534) != 0 ||
		    setresuid(65534, 65534, 65534) != 0)
			_exit(2);
		r = target__open(pid, &t, err, sizeof(err));
		if (r == TARGET_EACCES && strstr(err, "root"))
			_exit(0);
		fprintf(stderr, "target__open as nobody: %d %s\n", r, err);
		_exit(1);
	}
	assert_int_equal(waitpid(c, &status, 0), c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A version no layout source knows: -ENOTSUP with a reason. */
static void test_unknown_layout(void **state)
{
	const struct interp *in = first_present();
	struct gil_layout l;
	struct py_target t;
	char err[512];
	pid_t pid;

	if (!in) {
		print_message("[  SKIP    ] unknown layout: no interpreter\n");
		skip();
	}
	pid = start_python(in->python, S_SLEEP);
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), 0);
	t.minor = 5;   /* pretend: 3.5 predates every layout */
	assert_int_equal(py_state__layout(&t, GIL_LAYOUT_ANY, &l, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "no GIL layout for Python 3.5"));
	print_message("[  INFO    ] %s\n", err);
	target__close(&t);
}

/* ---- where the library is not at its path ------------------------------ */

static const char *pyenv_lib(int minor, char *lib, size_t len, char *py,
			     size_t plen)
{
	char v[32];

	snprintf(v, sizeof(v), minor == 12 ? "3.12.1" : "3.13.0");
	snprintf(lib, len, PYENV "%s/lib/libpython3.%d.so.1.0", v, minor);
	snprintf(py, plen, PYENV "%s/bin/python3", v);
	return access(lib, R_OK) == 0 && access(py, X_OK) == 0 ? lib : NULL;
}

/*
 * Start @py on S_SLEEP with its libpython from a copy of @lib in a new
 * temporary directory (changed by @patch first, unless NULL), deleted with
 * the directory once the child is ready. The copy's path in @copy.
 */
static pid_t start_on_lib_copy(char *py, const char *lib,
			       void (*patch)(const char *copy),
			       char *copy, size_t len)
{
	char dir[] = "/tmp/gt-target-XXXXXX", env[700];
	char *argv[] = { py, "-c", S_SLEEP, NULL };
	char *envp[] = { env, NULL };
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	snprintf(copy, len, "%s/%s", dir, strrchr(lib, '/') + 1);
	copy_file(lib, copy);
	if (patch)
		patch(copy);
	snprintf(env, sizeof(env), "LD_LIBRARY_PATH=%s", dir);
	pid = wait_ready(spawn(argv, envp));
	unlink(copy);
	rmdir(dir);
	return pid;
}

/* The mapped libpython was deleted: opened through /proc/PID/map_files. */
static void test_deleted_library(void **state)
{
	char lib[512], py[512], copy[600], err[512];
	struct py_target t;
	struct gil_state st;
	pid_t pid;

	if (!pyenv_lib(12, lib, sizeof(lib), py, sizeof(py))) {
		print_message("[  SKIP    ] deleted library: no pyenv 3.12.1\n");
		skip();
	}
	pid = start_on_lib_copy(py, lib, NULL, copy, sizeof(copy));
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), 0);
	assert_string_equal(t.interp, copy);
	assert_true(strncmp(t.interp_open, "/proc/", 6) == 0 &&
		    strstr(t.interp_open, "/map_files/") != NULL);
	assert_string_equal(t.version, "3.12.1");
	assert_int_equal(py_state__read_gil(&t, &st, err, sizeof(err)), 0);
	assert_int_equal(st.interval_us, 2000);
	print_message("[  INFO    ] deleted %s opened as %s\n", t.interp, t.interp_open);
	target__close(&t);
}

/* The library lives in another mount namespace: opened via /proc/PID/root. */
static void test_other_mount_ns(void **state)
{
	char lib[512], py[512], script[1600], err[512];
	struct py_target t;
	struct gil_state st;
	pid_t pid;

	if (!pyenv_lib(12, lib, sizeof(lib), py, sizeof(py)) ||
	    access("/usr/bin/unshare", X_OK) != 0 || geteuid() != 0) {
		print_message("[  SKIP    ] mount namespace: needs root, unshare and pyenv 3.12.1\n");
		skip();
	}
	snprintf(script, sizeof(script),
		 "mount -t tmpfs gt-target /mnt && cp '%s' /mnt/ && LD_LIBRARY_PATH=/mnt exec '%s' -c \"%s\"",
		 lib, py,
		 "import os, sys, time; sys.setswitchinterval(0.002); sys.stdout.write('ready %d\\\\n' % os.getpid()); sys.stdout.flush(); time.sleep(30)");
	{
		char *argv[] = { "/usr/bin/unshare", "--mount", "--propagation",
				 "private", "--fork", "--kill-child", "/bin/sh",
				 "-c", script, NULL };

		pid = wait_ready(spawn(argv, NULL));
	}
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), 0);
	assert_string_equal(t.interp, "/mnt/libpython3.12.so.1.0");
	snprintf(lib, sizeof(lib), "/proc/%d/root/mnt/libpython3.12.so.1.0", (int)pid);
	assert_string_equal(t.interp_open, lib);
	assert_int_equal(py_state__read_gil(&t, &st, err, sizeof(err)), 0);
	assert_int_equal(st.interval_us, 2000);
	target__close(&t);
}

/* _Py_DebugOffsets.free_threaded (16 bytes past the cookie's start) = 1. */
static void set_free_threaded(const char *copy)
{
	uint64_t one = 1;

	patch_after(copy, py313_debug_cookie, sizeof(py313_debug_cookie), 16,
		    &one, sizeof(one));
}

/*
 * A free-threaded build: none exists here, so a copy of pyenv's 3.13.0
 * libpython gets _Py_DebugOffsets.free_threaded set to 1 (nothing in the
 * interpreter reads that field; it is for debuggers).
 */
static void test_free_threaded(void **state)
{
	char lib[512], py[512], copy[600], err[512];
	struct py_target t;
	pid_t pid;

	if (!pyenv_lib(13, lib, sizeof(lib), py, sizeof(py))) {
		print_message("[  SKIP    ] free-threaded: no pyenv 3.13.0\n");
		skip();
	}
	pid = start_on_lib_copy(py, lib, set_free_threaded, copy, sizeof(copy));
	assert_int_equal(target__open(pid, &t, err, sizeof(err)), TARGET_EFREE);
	print_message("[  INFO    ] %s\n", err);
	assert_non_null(strstr(err, "free-threaded build (libpython3.13.so.1.0): it has no GIL to trace"));
}

#define ALL_INTERPS(fn) \
	PER_INTERP(fn, 0), PER_INTERP(fn, 1), PER_INTERP(fn, 2), \
	PER_INTERP(fn, 3), PER_INTERP(fn, 4), PER_INTERP(fn, 5), \
	PER_INTERP(fn, 6), PER_INTERP(fn, 7), PER_INTERP(fn, 8)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ALL_INTERPS(test_sleeping),
		ALL_INTERPS(test_spin_main),
		ALL_INTERPS(test_spin_thread),
		cmocka_unit_test_teardown(test_no_such_pid, teardown),
		cmocka_unit_test_teardown(test_not_python, teardown),
		cmocka_unit_test_teardown(test_python2, teardown),
		cmocka_unit_test_teardown(test_eacces, teardown),
		cmocka_unit_test_teardown(test_unknown_layout, teardown),
		cmocka_unit_test_teardown(test_deleted_library, teardown),
		cmocka_unit_test_teardown(test_other_mount_ns, teardown),
		cmocka_unit_test_teardown(test_free_threaded, teardown),
	};

	_Static_assert(sizeof(interps) / sizeof(interps[0]) == 9,
		       "ALL_INTERPS lists 9 interpreters");
	atexit(kill_all);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
