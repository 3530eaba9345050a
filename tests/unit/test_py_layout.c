/* SPDX-License-Identifier: MIT */
/*
 * test_py_layout: the frame-walk layout of every interpreter found (pyenv
 * 3.6-3.13 shared builds, Debian's static python3.11 with its debug file;
 * absent ones are skipped with a reason), from each source: the built-in
 * table, DWARF and _Py_DebugOffsets (3.13) must agree field for field, and
 * agree with the live interpreter: the pointers a code object holds at the
 * layout's offsets are the id()s of its name, file, qualified name and line
 * table; the thread state leads to the running frame; the str and bytes
 * header sizes are what sys.getsizeof() says. A 3.14-shaped
 * _Py_DebugOffsets (planted in a copy of libpython3.13) checks the parser
 * on a layout no interpreter here has.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf_image.h"
#include "py_layout.h"
#include "target.h"
#include "unit_helpers.h"

/*
 * Prints "I code name file qualname firstlineno linetable tstate
 * module_code sizeof('') sizeof(chr(256)) sizeof(b'')", then "ready PID",
 * and blocks in readline() at module level (so the module frame is the
 * innermost one).
 */
#define SCRIPT \
	"import sys, os, ctypes\n" \
	"def f():\n" \
	"    return 1\n" \
	"c = f.__code__\n" \
	"lt = c.co_linetable if sys.version_info >= (3, 10) else c.co_lnotab\n" \
	"q = c.co_qualname if sys.version_info >= (3, 11) else None\n" \
	"ts = ctypes.pythonapi.PyThreadState_Get\n" \
	"ts.restype = ctypes.c_void_p\n" \
	"sys.stdout.write('I %d %d %d %d %d %d %d %d %d %d %d\\n' % (id(c), id(c.co_name), " \
	"id(c.co_filename), id(q), c.co_firstlineno, id(lt), ts(), " \
	"id(sys._getframe().f_code), sys.getsizeof(''), sys.getsizeof(chr(256)), " \
	"sys.getsizeof(b'')))\n" \
	"sys.stdout.write('ready %d\\n' % os.getpid()); sys.stdout.flush(); sys.stdin.readline()\n"

/* ---- the child --------------------------------------------------------- */

static pid_t kid;
static int kid_in = -1;

static void kill_kid(void)
{
	if (kid > 0) {
		kill(-kid, SIGKILL);
		waitpid(kid, NULL, 0);
	}
	if (kid_in >= 0)
		close(kid_in);
	kid = 0;
	kid_in = -1;
}

static int teardown(void **state)
{
	kill_kid();
	return 0;
}

/* Starts @python on SCRIPT; returns its "I ..." line in @line. */
static void spawn(const char *python, char *line, size_t len)
{
	int in[2], out[2];
	char buf[1024];
	size_t n = 0;
	pid_t pid;

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { (char *)python, "-c", SCRIPT, NULL };

		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		execv(python, argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	kid = pid;
	kid_in = in[1];
	while (!strstr(buf, "ready ") || !strchr(strstr(buf, "ready "), '\n')) {
		struct pollfd p = { out[0], POLLIN, 0 };
		ssize_t r;

		if (n + 1 >= sizeof(buf) || poll(&p, 1, 60000) <= 0)
			fail_msg("child %d printed no ready line", (int)pid);
		r = read(out[0], buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			fail_msg("child %d exited before ready", (int)pid);
		n += (size_t)r;
		buf[n] = '\0';
	}
	close(out[0]);
	assert_non_null(strchr(buf, '\n'));
	snprintf(line, len, "%.*s", (int)(strchr(buf, '\n') - buf), buf);
}

static uint64_t rd64(pid_t pid, uint64_t addr)
{
	uint64_t v = 0;
	struct iovec l = { &v, 8 }, r = { (void *)(uintptr_t)addr, 8 };

	assert_int_equal(process_vm_readv(pid, &l, 1, &r, 1, 0), 8);
	return v;
}

static uint8_t rd8(pid_t pid, uint64_t addr)
{
	uint8_t v = 0;
	struct iovec l = { &v, 1 }, r = { (void *)(uintptr_t)addr, 1 };

	assert_int_equal(process_vm_readv(pid, &l, 1, &r, 1, 0), 1);
	return v;
}

/* ---- checks ------------------------------------------------------------ */

static void assert_same(const struct gt_py_frame_layout *a,
			const struct gt_py_frame_layout *b, const char *what,
			const char *label)
{
	struct gt_py_frame_layout x = *a, y = *b;

	x.source = y.source = 0;
	if (memcmp(&x, &y, sizeof(x)) != 0) {
		const uint32_t *p = (const uint32_t *)&x, *q = (const uint32_t *)&y;
		size_t i;

		for (i = 0; i < sizeof(x) / 4; i++)
			if (p[i] != q[i])
				print_message("[  INFO    ] %s: %s: word %zu (byte %zu): %u != %u\n",
					      label, what, i, 4 * i, p[i], q[i]);
		fail_msg("%s: %s differ", label, what);
	}
}

struct live {
	uint64_t code, name, file, qual, first, lines, tstate, module_code;
	uint64_t sz_empty, sz_ucs2, sz_bytes;
};

/* The layout read against the live interpreter. */
static void check_live(pid_t pid, const struct gt_py_frame_layout *l,
		       const struct live *v, int minor)
{
	uint64_t f = v->tstate, code;
	size_t i;

	assert_int_equal(rd64(pid, v->code + l->co_name), v->name);
	assert_int_equal(rd64(pid, v->code + l->co_filename), v->file);
	assert_int_equal(rd64(pid, v->code + l->co_linetable), v->lines);
	assert_int_equal((uint32_t)rd64(pid, v->code + l->co_firstlineno), v->first);
	if (minor >= 11)
		assert_int_equal(rd64(pid, v->code + l->co_qualname), v->qual);
	/* the objects' types: the name's is the filename's (both str) */
	assert_int_equal(rd64(pid, v->name + l->ob_type),
			 rd64(pid, v->file + l->ob_type));
	/* str and bytes headers: sizeof(PyASCIIObject) + 1, compact + 2 * 2,
	 * offsetof(PyBytesObject, ob_sval) + 1 */
	assert_int_equal(l->str_ascii_data + 1, v->sz_empty);
	assert_int_equal(l->str_compact_data + 4, v->sz_ucs2);
	assert_int_equal(l->bytes_data + 1, v->sz_bytes);
	/* the innermost frame runs the module's code */
	for (i = 0; i < l->ts_frame_nderef; i++)
		f = rd64(pid, f + l->ts_frame_off[i]);
	assert_true(f != 0);
	if (l->fr_owner != GT_PY_NONE)
		assert_true(rd8(pid, f + l->fr_owner) != l->fr_owner_skip);
	code = rd64(pid, f + l->fr_code) & l->fr_code_mask;
	assert_int_equal(code, v->module_code);
	assert_int_equal(rd64(pid, v->code + l->ob_type),
			 rd64(pid, code + l->ob_type));
}

static void print_layout(const char *label, const char *src,
			 const struct gt_py_frame_layout *l)
{
	char path[64];

	if (l->ts_frame_nderef == 2)
		snprintf(path, sizeof(path), "*(tstate+%u)+%u", l->ts_frame_off[0],
			 l->ts_frame_off[1]);
	else
		snprintf(path, sizeof(path), "tstate+%u", l->ts_frame_off[0]);
	print_message("[  INFO    ] %s: %s: frame *(%s), code +%u, back +%u, instr +%u (kind %u), owner %d skip %d; co name +%u file +%u qual %d first +%u lines +%u (kind %u) adaptive %d; str ascii +%u compact +%u\n",
		      label, src, path, l->fr_code, l->fr_back, l->fr_instr, l->fr_instr_kind,
		      (int)l->fr_owner, (int)l->fr_owner_skip, l->co_name,
		      l->co_filename, (int)l->co_qualname, l->co_firstlineno,
		      l->co_linetable, l->co_lines_kind, (int)l->co_code_adaptive,
		      l->str_ascii_data, l->str_compact_data);
}

static void test_sources_agree(void **state)
{
	const struct interp *in = *state;
	struct gt_py_frame_layout tb, dw, dbg, best;
	struct py_target t;
	struct live v;
	const char *src = NULL;
	char line[1024], err[512];
	int r;

	if (!present(in->python, in->label))
		skip();
	spawn(in->python, line, sizeof(line));
	assert_int_equal(sscanf(line, "I %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
				" %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
				" %" SCNu64 " %" SCNu64 " %" SCNu64,
				&v.code, &v.name, &v.file, &v.qual, &v.first, &v.lines,
				&v.tstate, &v.module_code, &v.sz_empty, &v.sz_ucs2,
				&v.sz_bytes), 11);
	wait_blocked_pid(kid);
	assert_int_equal(target__open(kid, &t, err, sizeof(err)), 0);

	assert_int_equal(py_layout__from(&t, PY_LAYOUT_TABLE, &tb, err, sizeof(err)), 0);
	assert_int_equal(tb.source, PY_LAYOUT_TABLE);
	check_live(kid, &tb, &v, t.minor);
	r = py_layout__from(&t, PY_LAYOUT_DWARF, &dw, err, sizeof(err));
	if (r) {
		print_message("[  SKIP    ] %s: no DWARF to check the table against: %s\n",
			      in->label, err);
	} else {
		assert_int_equal(dw.source, PY_LAYOUT_DWARF);
		assert_same(&dw, &tb, "DWARF and table", in->label);
		print_message("[  INFO    ] %s: DWARF == table\n", in->label);
	}
	r = py_layout__from(&t, PY_LAYOUT_DEBUG_OFFSETS, &dbg, err, sizeof(err));
	if (t.minor >= 13) {
		assert_int_equal(r, 0);
		assert_same(&dbg, &tb, "_Py_DebugOffsets and table", in->label);
		print_message("[  INFO    ] %s: _Py_DebugOffsets == table\n", in->label);
	} else {
		assert_int_equal(r, -ENOENT);
		assert_non_null(strstr(err, "no debug-offsets frame layout for Python"));
	}
	assert_int_equal(py_layout__get(&t, &best, &src, err, sizeof(err)), 0);
	assert_string_equal(src, t.minor >= 13 ? "debug-offsets" : "dwarf");
	assert_string_equal(src, py_layout__source_name(best.source));
	assert_int_equal(best.py_version, 0x0300 | t.minor);
	print_layout(in->label, src, &best);
	target__close(&t);
}

/* Versions no layout knows, and the free-threaded build. */
static void test_unsupported(void **state)
{
	const struct interp *in = &interps[5];
	struct gt_py_frame_layout l;
	struct py_target t;
	char line[1024], err[512];
	int minor;

	if (!present(in->python, in->label))
		skip();
	spawn(in->python, line, sizeof(line));
	assert_int_equal(target__open(kid, &t, err, sizeof(err)), 0);
	minor = t.minor;
	t.minor = 5;
	assert_int_equal(py_layout__get(&t, &l, NULL, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "no Python frame layout for Python 3.5"));
	print_message("[  INFO    ] %s\n", err);
	t.minor = 15;
	assert_int_equal(py_layout__from(&t, PY_LAYOUT_DWARF, &l, err, sizeof(err)), -ENOTSUP);
	t.minor = minor;
	t.free_threaded = true;
	assert_int_equal(py_layout__get(&t, &l, NULL, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "free-threaded"));
	t.free_threaded = false;
	assert_int_equal(py_layout__from(&t, (enum py_layout_source)9, &l, err, sizeof(err)), -EINVAL);
	assert_int_equal(py_layout__get(NULL, &l, NULL, err, sizeof(err)), -EINVAL);
	target__close(&t);
}

/* ---- a 3.14-shaped _Py_DebugOffsets ------------------------------------ */

/*
 * The 3.14 layout of Include/internal/pycore_debug_offsets.h: the sections
 * 3.13 has, with threads_main added to interpreter_state, stackpointer to
 * interpreter_frame, set_object before dict_object, and gen_object and
 * debugger_support at the end. The values are made up but plausible.
 */
static const uint64_t dbg314[] = {
	0, 0x030e00f0, 0,                      /* cookie, version, free_threaded */
	0x452b8, 0x260, 0x278,                 /* runtime_state */
	0x2f998, 0x1c68, 0x1c60, 0x1cb0, 0x1cb8, 0x1ce8, 0x1de8, 0x1dd8,
	0x1de0, 0x10, 0x1e48, 0, 0x1e58, 0x1e50,    /* interpreter_state (14) */
	0x150, 0, 8, 16, 0x48, 0x98, 0xa0, 0xe8, 0x20, /* thread_state */
	0x58, 8, 0, 0x38, 0x50, 0x4a, 0x40,    /* interpreter_frame (7) */
	0xe0, 0x70, 0x78, 0x80, 0x88, 0x44, 0x34, 0x60, 0x68, 0xd8, /* code_object */
	16, 8,                                 /* pyobject */
	0x1a0, 0x18, 0x58, 0xa8,               /* type_object */
	0x20, 0x18, 0x10,                      /* tuple_object */
	0x28, 0x18, 0x10,                      /* list_object */
	0xc8, 0x18, 0x28, 0x20,                /* set_object */
	0x30, 0x20, 0x28,                      /* dict_object */
	0x18, 0x10,                            /* float_object */
	0x20, 0x10, 0x18,                      /* long_object */
	0x28, 0x10, 0x20,                      /* bytes_object */
	0x40, 0x20, 0x10, 0x28,                /* unicode_object */
	0xf0, 0xc8,                            /* gc */
	0x90, 0x30, 0x50, 0x43,                /* gen_object */
	0x18, 0x120, 0x2000, 0, 8, 512,        /* debugger_support */
};

static char lib314[64];

static void copy_lib(const char *lib)
{
	int fd;

	if (!lib314[0]) {
		snprintf(lib314, sizeof(lib314), "/tmp/gt-pylayout-XXXXXX");
		fd = mkstemp(lib314);
		assert_true(fd >= 0);
		close(fd);
	}
	copy_file(lib, lib314);
}

/* A copy of pyenv's libpython3.13 whose _Py_DebugOffsets is @words. */
static bool plant(const uint64_t *words, size_t n)
{
	static const char *lib = PYENV "3.13.0/lib/libpython3.13.so.1.0";

	if (access(lib, R_OK) != 0)
		return false;
	copy_lib(lib);
	/* words[0] stands for the cookie's 8 bytes: the rest follow it */
	patch_after(lib314, py313_debug_cookie, sizeof(py313_debug_cookie), 8,
		    words + 1, (n - 1) * sizeof(*words));
	return true;
}

static void fake_target(struct py_target *t, int minor)
{
	char err[256];

	memset(t, 0, sizeof(*t));
	t->pid = getpid();
	t->major = 3;
	t->minor = minor;
	snprintf(t->version, sizeof(t->version), "3.%d.0", minor);
	snprintf(t->interp, sizeof(t->interp), "%s", lib314);
	t->img = elf_image__open(lib314, "", err, sizeof(err));
	assert_non_null(t->img);
}

static void test_debug_offsets_314(void **state)
{
	struct gt_py_frame_layout l;
	struct py_target t;
	uint64_t bad[sizeof(dbg314) / 8];
	char err[512];

	if (!plant(dbg314, sizeof(dbg314) / 8)) {
		print_message("[  SKIP    ] 3.14 debug offsets: no pyenv 3.13.0 libpython to plant them in\n");
		skip();
	}
	fake_target(&t, 14);
	assert_int_equal(py_layout__from(&t, PY_LAYOUT_DEBUG_OFFSETS, &l, err, sizeof(err)), 0);
	assert_int_equal(l.py_version, 0x030e);
	assert_int_equal(l.ts_frame_nderef, 1);
	assert_int_equal(l.ts_frame_off[0], 0x48);
	assert_int_equal(l.fr_back, 8);
	assert_int_equal(l.fr_code, 0);
	assert_int_equal(l.fr_instr, 0x38);
	assert_int_equal(l.fr_instr_kind, GT_PY_INSTR_PTR);
	assert_int_equal(l.fr_owner, 0x4a);
	assert_int_equal(l.fr_owner_skip, 3);   /* FRAME_OWNED_BY_INTERPRETER */
	assert_int_equal(l.fr_code_mask, ~(uint64_t)3);
	assert_int_equal(l.co_filename, 0x70);
	assert_int_equal(l.co_name, 0x78);
	assert_int_equal(l.co_qualname, 0x80);
	assert_int_equal(l.co_linetable, 0x88);
	assert_int_equal(l.co_firstlineno, 0x44);
	assert_int_equal(l.co_code_adaptive, 0xd8);
	assert_int_equal(l.co_lines_kind, GT_PY_LINES_LOCATIONS);
	assert_int_equal(l.ob_type, 8);
	assert_int_equal(l.bytes_data, 0x20);
	assert_int_equal(l.str_ascii_data, 0x28);
	assert_int_equal(l.str_compact_data, 0x38);
	/* no table row for 3.14: DWARF or _Py_DebugOffsets only */
	assert_int_equal(py_layout__from(&t, PY_LAYOUT_TABLE, &l, err, sizeof(err)), -ENOENT);
	/* the block says 3.14: not taken for a 3.13 */
	t.minor = 13;
	snprintf(t.version, sizeof(t.version), "3.13.0");
	assert_int_equal(py_layout__from(&t, PY_LAYOUT_DEBUG_OFFSETS, &l, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "it says version 0x30e00f0"));
	print_message("[  INFO    ] %s\n", err);
	elf_image__close(t.img);

	/* a shape that is not there: thread_state without prev/next/interp */
	memcpy(bad, dbg314, sizeof(bad));
	bad[21] = 24;
	assert_true(plant(bad, sizeof(bad) / 8));
	fake_target(&t, 14);
	assert_int_equal(py_layout__from(&t, PY_LAYOUT_DEBUG_OFFSETS, &l, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "no thread_state section of the expected shape"));
	print_message("[  INFO    ] %s\n", err);
	elf_image__close(t.img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PER_INTERP(test_sources_agree, 0), PER_INTERP(test_sources_agree, 1),
		PER_INTERP(test_sources_agree, 2), PER_INTERP(test_sources_agree, 3),
		PER_INTERP(test_sources_agree, 4), PER_INTERP(test_sources_agree, 5),
		PER_INTERP(test_sources_agree, 6), PER_INTERP(test_sources_agree, 7),
		PER_INTERP(test_sources_agree, 8),
		cmocka_unit_test_teardown(test_unsupported, teardown),
		cmocka_unit_test(test_debug_offsets_314),
	};
	int r;

	_Static_assert(sizeof(interps) / sizeof(interps[0]) == 9,
		       "PER_INTERP lists 9 interpreters");
	_Static_assert(sizeof(struct gt_py_frame_layout) % 8 == 0,
		       "the layout goes into BPF as is");
	atexit(kill_kid);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	if (lib314[0])
		unlink(lib314);
	return r;
}
