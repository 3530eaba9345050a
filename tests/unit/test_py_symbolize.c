/* SPDX-License-Identifier: MIT */
/*
 * test_py_symbolize: code objects of a live Python process resolved to
 * names, files and lines, and its main thread's frames walked with the
 * frame layout, on every interpreter found (pyenv 3.6-3.13, Debian's
 * python3.11; absent ones are skipped with a reason).
 *
 * The workload (SCRIPT below, written to a temporary file) calls down
 * through a method, a nested function, a generator, a lambda, code from
 * exec() (file "<string>"), functions named with non-ASCII letters of each
 * str kind (café: 1 byte, 函数: 2 bytes, 𠀀: 4 bytes a character) and a
 * coroutine into block(), which prints what Python itself says (each
 * frame's code object id, f_lasti, f_lineno, names and file; the line of
 * every bytecode offset of each code object; traceback.extract_stack())
 * and blocks in sys.stdin.readline(); also the line of every offset of
 * big(), compiled from a string with multi-line expressions and a 300-line
 * gap (negative and multi-entry line deltas). The test then resolves the
 * same code objects with py_symbolize and walks the frames from the thread
 * state (PyThreadState_Get() through ctypes) with process_vm_readv, and
 * compares.
 * A second phase frees a code object and creates another at the same
 * address, which the cache must notice.
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
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "py_layout.h"
#include "py_symbolize.h"
#include "target.h"
#include "unit_helpers.h"

/* The workload; see the header comment. */
static const char SCRIPT[] =
	"# -*- coding: utf-8 -*-\n"
	"import sys, os, ctypes, traceback, dis, types\n"
	"\n"
	"\n"
	"def lines_of(code):\n"
	"    \"\"\"Line of every even byte offset, as Python computes it.\"\"\"\n"
	"    n = len(code.co_code)\n"
	"    out = [0] * (n // 2)\n"
	"    if hasattr(code, 'co_lines'):\n"
	"        for start, end, line in code.co_lines():\n"
	"            for off in range(start, end, 2):\n"
	"                if off // 2 < len(out):\n"
	"                    out[off // 2] = line or 0\n"
	"    else:\n"
	"        starts = list(dis.findlinestarts(code))\n"
	"        for i in range(len(out)):\n"
	"            line = code.co_firstlineno\n"
	"            for off, ln in starts:\n"
	"                if off <= 2 * i:\n"
	"                    line = ln\n"
	"            out[i] = line\n"
	"    return out\n"
	"\n"
	"\n"
	"def emit(stack):\n"
	"    ts = ctypes.pythonapi.PyThreadState_Get\n"
	"    ts.restype = ctypes.c_void_p\n"
	"    out = ['T %d' % ts()]\n"
	"    f = sys._getframe(1)\n"
	"    while f is not None:\n"
	"        c = f.f_code\n"
	"        out.append('F %d %d %d %s|%s|%s' % (id(c), f.f_lasti, f.f_lineno or 0,\n"
	"                   c.co_name, getattr(c, 'co_qualname', ''), c.co_filename))\n"
	"        out.append('L %d %s' % (id(c), ' '.join(str(x) for x in lines_of(c))))\n"
	"        f = f.f_back\n"
	"    for fs in stack:\n"
	"        out.append('S %d %s' % (fs[1], fs[2]))\n"
	"    out.append('L %d %s' % (id(big.__code__), ' '.join(str(x) for x in lines_of(big.__code__))))\n"
	"    out.append('X %d' % id('not a code object'))\n"
	"    out.append('ready %d' % os.getpid())\n"
	"    sys.stdout.write('\\n'.join(out) + '\\n')\n"
	"    sys.stdout.flush()\n"
	"\n"
	"\n"
	"def block():\n"
	"    emit(traceback.extract_stack()); sys.stdin.readline()\n"
	"\n"
	"\n"
	"async def coro_fn():\n"
	"    block()\n"
	"\n"
	"\n"
	"def 函数():\n"
	"    c = coro_fn()\n"
	"    try:\n"
	"        c.send(None)\n"
	"    except StopIteration:\n"
	"        pass\n"
	"\n"
	"\n"
	"def café():\n"
	"    函数()\n"
	"\n"
	"\n"
	"def 𠀀():\n"
	"    café()\n"
	"\n"
	"\n"
	"exec(compile(\"def from_exec():\\n    g['𠀀']()\\n\", '<string>', 'exec'), globals())\n"
	"g = globals()\n"
	"\n"
	"lam = lambda: from_exec()\n"
	"\n"
	"\n"
	"def gen():\n"
	"    yield lam()\n"
	"\n"
	"\n"
	"def outer():\n"
	"    def inner():\n"
	"        return next(gen())\n"
	"    return inner()\n"
	"\n"
	"\n"
	"class Class:\n"
	"    def method(self):\n"
	"        return outer()\n"
	"\n"
	"\n"
	"# big(): multi-line expressions, a loop, branches and a 300-line gap, so\n"
	"# that line deltas are negative and larger than one table entry holds.\n"
	"exec(compile('def big(a):\\n'\n"
	"             '    x = (a +\\n'\n"
	"             '         a)\\n'\n"
	"             '    for i in range(3):\\n'\n"
	"             '        x += i\\n'\n"
	"             '    if x > 1000:\\n'\n"
	"             '        x = 0\\n'\n"
	"             '    else:\\n'\n"
	"             '        x = (\\n'\n"
	"             '            x\\n'\n"
	"             '            * 2)\\n' + '\\n' * 300 +\n"
	"             '    y = [i\\n'\n"
	"             '         for i in range(\\n'\n"
	"             '             x)]\\n'\n"
	"             '    return (x,\\n'\n"
	"             '            y)\\n', '<big>', 'exec'), globals())\n"
	"\n"
	"\n"
	"Class().method()\n"
	"\n"
	"\n"
	"# ---- phase 2: a code object freed, its address reused --------------------\n"
	"def tmpl():\n"
	"    return 1\n"
	"\n"
	"\n"
	"def clone(code, name, line):\n"
	"    if sys.version_info >= (3, 11):\n"
	"        return code.replace(co_name=name, co_qualname=name, co_firstlineno=line)\n"
	"    if hasattr(code, 'replace'):\n"
	"        return code.replace(co_name=name, co_firstlineno=line)\n"
	"    c = code\n"
	"    return types.CodeType(c.co_argcount, c.co_kwonlyargcount, c.co_nlocals,\n"
	"                          c.co_stacksize, c.co_flags, c.co_code, c.co_consts,\n"
	"                          c.co_names, c.co_varnames, c.co_filename, name, line,\n"
	"                          c.co_lnotab, c.co_freevars, c.co_cellvars)\n"
	"\n"
	"\n"
	"a = clone(tmpl.__code__, 'first', 1000)\n"
	"addr = id(a)\n"
	"sys.stdout.write('A %d %d\\nready %d\\n' % (addr, lines_of(a)[0], os.getpid()))\n"
	"sys.stdout.flush()\n"
	"sys.stdin.readline()\n"
	"del a\n"
	"keep = []\n"
	"for k in range(1, 1000):\n"
	"    b = clone(tmpl.__code__, 'second', 2000 + k)\n"
	"    if id(b) == addr:\n"
	"        break\n"
	"    keep.append(b)\n"
	"    b = None\n"
	"if b is not None:\n"
	"    sys.stdout.write('B %d %d\\n' % (id(b), lines_of(b)[0]))\n"
	"else:\n"
	"    sys.stdout.write('B 0 0\\n')\n"
	"sys.stdout.write('ready %d\\n' % os.getpid())\n"
	"sys.stdout.flush()\n"
	"sys.stdin.readline()\n";

/* ---- the child --------------------------------------------------------- */

struct child {
	pid_t pid;
	int in;      /* its stdin */
	int out;     /* its stdout */
	char buf[1 << 16];
	size_t len;  /* bytes in buf not yet returned as lines */
};

static struct child kid = { .in = -1, .out = -1 };
static char script_path[64];

static void kill_kid(void)
{
	if (kid.pid > 0) {
		kill(-kid.pid, SIGKILL);
		waitpid(kid.pid, NULL, 0);
	}
	if (kid.in >= 0)
		close(kid.in);
	if (kid.out >= 0)
		close(kid.out);
	kid.pid = 0;
	kid.in = kid.out = -1;
	kid.len = 0;
}

static int teardown(void **state)
{
	kill_kid();
	return 0;
}

static void write_script(void)
{
	int fd;

	if (script_path[0])
		return;
	snprintf(script_path, sizeof(script_path), "/tmp/gt-pysym-XXXXXX.py");
	fd = mkstemps(script_path, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, SCRIPT, sizeof(SCRIPT) - 1),
			 (ssize_t)sizeof(SCRIPT) - 1);
	close(fd);
}

static void cleanup_script(void)
{
	if (script_path[0])
		unlink(script_path);
}

static void spawn(const char *python)
{
	int in[2], out[2];
	pid_t pid;

	write_script();
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { (char *)python, script_path, NULL };

		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		setenv("PYTHONIOENCODING", "utf-8", 1);
		execv(python, argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	kid.pid = pid;
	kid.in = in[1];
	kid.out = out[0];
	kid.len = 0;
}

/* Lines the child prints before its next "ready", in @buf (NUL-separated
 * lines, @n of them). */
struct output {
	char *lines[4096];
	size_t n;
};

static void free_output(struct output *o)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		free(o->lines[i]);
	o->n = 0;
}

/* One line of the child's stdout (malloc'd, no newline); 60 s at most. */
static char *read_line(void)
{
	for (;;) {
		struct pollfd p = { kid.out, POLLIN, 0 };
		char *nl = memchr(kid.buf, '\n', kid.len), *line;
		ssize_t n;

		if (nl) {
			line = strndup(kid.buf, (size_t)(nl - kid.buf));
			kid.len -= (size_t)(nl + 1 - kid.buf);
			memmove(kid.buf, nl + 1, kid.len);
			assert_non_null(line);
			return line;
		}
		if (kid.len == sizeof(kid.buf))
			fail_msg("child %d: line too long", (int)kid.pid);
		if (poll(&p, 1, 60000) <= 0)
			fail_msg("child %d printed no ready line", (int)kid.pid);
		n = read(kid.out, kid.buf + kid.len, sizeof(kid.buf) - kid.len);
		if (n <= 0)
			fail_msg("child %d exited before ready", (int)kid.pid);
		kid.len += (size_t)n;
	}
}

static void read_until_ready(struct output *o)
{
	char *line;

	o->n = 0;
	while ((line = read_line()) != NULL) {
		if (strncmp(line, "ready ", 6) == 0) {
			free(line);
			return;
		}
		assert_true(o->n < sizeof(o->lines) / sizeof(o->lines[0]));
		o->lines[o->n++] = line;
	}
}

static void resume(void)
{
	assert_int_equal(write(kid.in, "\n", 1), 1);
}

/* ---- what the child said ------------------------------------------------ */

struct pyframe {
	uint64_t code;
	int64_t lasti;
	int line;
	char name[256], qual[512], file[1024];
};

struct said {
	uint64_t tstate, not_code;
	struct pyframe f[64];
	size_t nf;
	struct { int line; char name[256]; } s[64];   /* extract_stack, root first */
	size_t ns;
};

static void parse_frame(const char *l, struct pyframe *f)
{
	char rest[2048], *a, *b;
	int n = 0;

	assert_int_equal(sscanf(l, "F %" SCNu64 " %" SCNd64 " %d %n", &f->code,
				&f->lasti, &f->line, &n), 3);
	snprintf(rest, sizeof(rest), "%s", l + n);
	a = strchr(rest, '|');
	assert_non_null(a);
	*a++ = '\0';
	b = strchr(a, '|');
	assert_non_null(b);
	*b++ = '\0';
	snprintf(f->name, sizeof(f->name), "%.255s", rest);
	snprintf(f->qual, sizeof(f->qual), "%.511s", a);
	snprintf(f->file, sizeof(f->file), "%.1023s", b);
}

static void parse(const struct output *o, struct said *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < o->n; i++) {
		const char *l = o->lines[i];
		int n = 0;

		if (l[0] == 'T')
			assert_int_equal(sscanf(l, "T %" SCNu64, &s->tstate), 1);
		else if (l[0] == 'X')
			assert_int_equal(sscanf(l, "X %" SCNu64, &s->not_code), 1);
		else if (l[0] == 'F' && s->nf < 64)
			parse_frame(l, &s->f[s->nf++]);
		else if (l[0] == 'S' && s->ns < 64) {
			assert_int_equal(sscanf(l, "S %d %n", &s->s[s->ns].line, &n), 1);
			snprintf(s->s[s->ns].name, sizeof(s->s[0].name), "%s", l + n);
			s->ns++;
		}
	}
	assert_true(s->tstate != 0);
	assert_true(s->nf >= 12);
	assert_int_equal(s->ns, s->nf);
}

/* ---- checks ------------------------------------------------------------- */

/* Each frame's code object: names, file, and the line at its f_lasti. */
static void check_frames(struct py_target *t, struct py_symbolizer *sym,
			 const struct said *s, const char *label)
{
	struct py_frame_info fi;
	size_t i;

	for (i = 0; i < s->nf; i++) {
		const struct pyframe *f = &s->f[i];

		assert_int_equal(py_symbolize__frame_as(sym, f->code, f->lasti,
							PY_POS_BYTES, &fi), 0);
		assert_true(fi.known);
		assert_string_equal(fi.function, f->name);
		assert_string_equal(fi.file, f->file);
		if (t->minor >= 11)
			assert_string_equal(fi.qualname, f->qual);
		else
			assert_string_equal(fi.qualname, "");
		assert_int_equal(fi.line, f->line);
		print_message("[  INFO    ] %s: %-9s %-24s %s:%d\n", label,
			      i == 0 ? "frames" : "", t->minor >= 11 ? fi.qualname : fi.function,
			      strrchr(fi.file, '/') ? strrchr(fi.file, '/') + 1 : fi.file,
			      fi.line);
	}
	/* the names the brief asks for, as Python names them */
	assert_string_equal(s->f[0].name, "block");
	assert_string_equal(s->f[5].file, "<string>");
	if (t->minor >= 11) {
		assert_string_equal(s->f[8].qual, "outer.<locals>.inner");
		assert_string_equal(s->f[10].qual, "Class.method");
	}
}

/* "L id line line ...": the line of every even offset of one code object. */
static size_t check_line_tables(struct py_symbolizer *sym,
				const struct output *o)
{
	struct py_frame_info fi;
	size_t i, checked = 0;

	for (i = 0; i < o->n; i++) {
		const char *p = o->lines[i];
		uint64_t code;
		int64_t off = 0;
		char *end;

		if (p[0] != 'L')
			continue;
		code = strtoull(p + 2, &end, 10);
		for (p = end; *p; off += 2) {
			long want = strtol(p, &end, 10);

			if (end == p)
				break;
			p = end;
			assert_int_equal(py_symbolize__frame_as(sym, code, off,
								PY_POS_BYTES, &fi), 0);
			if (fi.line != want)
				fail_msg("code 0x%" PRIx64 " (%s) offset %" PRId64 ": line %d, Python says %ld",
					 code, fi.function, off, fi.line, want);
			checked++;
		}
	}
	return checked;
}

static int rd(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* The BPF walker's algorithm (giltrace.h), here with process_vm_readv. */
static size_t walk(pid_t pid, const struct gt_py_frame_layout *l,
		   uint64_t tstate, uint64_t *code, uint64_t *pos, size_t max,
		   size_t *skipped)
{
	uint64_t f = tstate;
	size_t n = 0, i;

	*skipped = 0;
	for (i = 0; i < l->ts_frame_nderef; i++)
		assert_int_equal(rd(pid, f + l->ts_frame_off[i], &f, 8), 0);
	while (f && n < max) {
		uint8_t owner;
		uint64_t raw = 0;

		if (l->fr_owner != GT_PY_NONE) {
			assert_int_equal(rd(pid, f + l->fr_owner, &owner, 1), 0);
			if (owner == l->fr_owner_skip) {
				(*skipped)++;
				assert_int_equal(rd(pid, f + l->fr_back, &f, 8), 0);
				continue;
			}
		}
		assert_int_equal(rd(pid, f + l->fr_code, &code[n], 8), 0);
		code[n] &= l->fr_code_mask;
		assert_int_equal(rd(pid, f + l->fr_instr, &raw, l->fr_instr_size), 0);
		pos[n++] = raw;
		assert_int_equal(rd(pid, f + l->fr_back, &f, 8), 0);
	}
	return n;
}

static void check_walk(struct py_target *t, const struct gt_py_frame_layout *l,
		       struct py_symbolizer *sym, const struct said *s,
		       const char *label)
{
	uint64_t code[128], pos[128], code2[128], pos2[128];
	struct py_frame_info fi;
	size_t n, n2, i, skipped;
	char seq[2048] = "";

	n = walk(t->pid, l, s->tstate, code, pos, 128, &skipped);
	assert_int_equal(n, s->ns);
	/* py_symbolize__walk does the same */
	assert_int_equal(py_symbolize__walk(sym, s->tstate, code2, pos2, 128, &n2), 0);
	assert_int_equal(n2, n);
	assert_memory_equal(code2, code, n * 8);
	assert_memory_equal(pos2, pos, n * 8);
	assert_int_equal(py_symbolize__walk(sym, s->tstate, code2, pos2, 3, &n2), 1);
	assert_int_equal(n2, 3);
	assert_memory_equal(code2, code, 3 * 8);
	for (i = 0; i < n; i++) {
		const char *want = s->s[s->ns - 1 - i].name;

		assert_int_equal(py_symbolize__frame(sym, code[i], pos[i], &fi), 0);
		assert_true(fi.known);
		assert_string_equal(fi.function, want);
		assert_int_equal(fi.line, s->s[s->ns - 1 - i].line);
		assert_int_equal(code[i], s->f[i].code);
		if (strlen(seq) + strlen(fi.function) + 16 < sizeof(seq))
			snprintf(seq + strlen(seq), sizeof(seq) - strlen(seq),
				 "%s%s:%d", i ? " < " : "", fi.function, fi.line);
	}
	print_message("[  INFO    ] %s: walk from tstate 0x%" PRIx64 " (%u derefs, %zu shim frames skipped): %s\n",
		      label, s->tstate, l->ts_frame_nderef, skipped, seq);
}

static void check_not_code(struct py_symbolizer *sym, const struct said *s)
{
	struct py_frame_info fi;
	const uint64_t bad[] = { s->not_code, 0, 1, 0x1000, s->tstate };
	size_t i;

	uint64_t a, base = s->f[0].code & ~(uint64_t)4095;
	size_t hits = 0;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = py_symbolize__frame_as(sym, bad[i], 0, PY_POS_BYTES, &fi);

		assert_true(r == -EINVAL || r == -EFAULT);
		assert_false(fi.known);
		assert_string_equal(fi.function, PY_UNKNOWN);
	}
	/* every 8-byte step of the heap around a code object: only code
	 * objects resolve, the known ones to their names */
	for (a = base - 8192; a < base + 8192; a += 8) {
		int r = py_symbolize__frame_as(sym, a, 2, PY_POS_BYTES, &fi);

		if (r) {
			assert_false(fi.known);
			continue;
		}
		hits++;
		for (i = 0; i < s->nf; i++)
			if (s->f[i].code == a)
				assert_string_equal(fi.function, s->f[i].name);
	}
	assert_true(hits >= 1);
	print_message("[  INFO    ] %zu of 2048 addresses around a code object resolve (code objects)\n", hits);
}

/* A small cache evicts, and what it gives stays right. */
static void check_capacity(struct py_symbolizer *sym, const struct said *s)
{
	struct py_symbolize_stats a, b;
	struct py_frame_info fi;
	size_t i;

	py_symbolize__stats(sym, &a);
	py_symbolize__set_capacity(sym, 2);
	for (i = 0; i < 6; i++) {
		assert_int_equal(py_symbolize__frame_as(sym, s->f[i].code, s->f[i].lasti,
							PY_POS_BYTES, &fi), 0);
		assert_string_equal(fi.function, s->f[i].name);
		assert_int_equal(fi.line, s->f[i].line);
	}
	py_symbolize__stats(sym, &b);
	assert_int_equal(b.entries, 2);
	assert_true(b.evictions >= a.evictions + 4);
	py_symbolize__set_capacity(sym, 4096);
}

/* Phase 2: the code object at address A is freed and another takes it. */
static void check_reuse(struct py_target *t, struct py_symbolizer *sym,
			const char *label)
{
	struct py_symbolize_stats st0, st1;
	struct output o;
	struct py_frame_info fi;
	uint64_t a = 0, b = 0;
	int la = 0, lb = 0;

	resume();
	read_until_ready(&o);
	assert_int_equal(o.n, 1);
	assert_int_equal(sscanf(o.lines[0], "A %" SCNu64 " %d", &a, &la), 2);
	free_output(&o);
	assert_int_equal(py_symbolize__frame_as(sym, a, 0, PY_POS_BYTES, &fi), 0);
	assert_string_equal(fi.function, "first");
	assert_int_equal(fi.line, la);
	py_symbolize__stats(sym, &st0);

	resume();
	read_until_ready(&o);
	assert_int_equal(o.n, 1);
	assert_int_equal(sscanf(o.lines[0], "B %" SCNu64 " %d", &b, &lb), 2);
	free_output(&o);
	if (b != a) {
		print_message("[  SKIP    ] %s: no code object reused address 0x%" PRIx64 "\n",
			      label, a);
		return;
	}
	assert_int_equal(py_symbolize__frame_as(sym, b, 0, PY_POS_BYTES, &fi), 0);
	assert_string_equal(fi.function, "second");
	if (t->minor >= 11)
		assert_string_equal(fi.qualname, "second");
	assert_int_equal(fi.line, lb);
	py_symbolize__stats(sym, &st1);
	assert_int_equal(st1.stale, st0.stale + 1);
	print_message("[  INFO    ] %s: address 0x%" PRIx64 " reused: first:%d, then second:%d\n",
		      label, a, la, lb);
}

static void test_symbolize(void **state)
{
	const struct interp *in = *state;
	struct gt_py_frame_layout l;
	struct py_symbolizer *sym;
	struct py_symbolize_stats st;
	struct py_frame_info fi;
	struct py_target t;
	struct output o;
	struct said *s;
	const char *src = NULL;
	char err[512];
	size_t nlines;
	uint64_t code0;

	if (!present(in->python, in->label))
		skip();
	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	spawn(in->python);
	read_until_ready(&o);
	parse(&o, s);
	wait_blocked_pid(kid.pid);
	assert_int_equal(target__open(kid.pid, &t, err, sizeof(err)), 0);
	assert_int_equal(py_layout__get(&t, &l, &src, err, sizeof(err)), 0);
	sym = py_symbolize__new(&t, &l);
	assert_non_null(sym);
	print_message("[  INFO    ] %s: Python %s, layout from %s\n", in->label,
		      t.version, src);

	check_frames(&t, sym, s, in->label);
	check_walk(&t, &l, sym, s, in->label);
	nlines = check_line_tables(sym, &o);
	assert_true(nlines > 300);
	check_not_code(sym, s);
	check_capacity(sym, s);
	py_symbolize__stats(sym, &st);
	print_message("[  INFO    ] %s: %zu offsets' lines agree with Python; %" PRIu64 " lookups, %" PRIu64 " hits, %" PRIu64 " evictions, %" PRIu64 " failures\n",
		      in->label, nlines, st.lookups, st.hits, st.evictions,
		      st.failures);
	free_output(&o);

	check_reuse(&t, sym, in->label);

	/* The process is gone: nothing is answered from the cache. */
	code0 = s->f[0].code;
	kill_kid();
	assert_true(py_symbolize__frame_as(sym, code0, 0, PY_POS_BYTES, &fi) < 0);
	assert_false(fi.known);
	assert_string_equal(fi.function, PY_UNKNOWN);

	py_symbolize__free(sym);
	target__close(&t);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PER_INTERP(test_symbolize, 0), PER_INTERP(test_symbolize, 1),
		PER_INTERP(test_symbolize, 2), PER_INTERP(test_symbolize, 3),
		PER_INTERP(test_symbolize, 4), PER_INTERP(test_symbolize, 5),
		PER_INTERP(test_symbolize, 6), PER_INTERP(test_symbolize, 7),
		PER_INTERP(test_symbolize, 8),
	};
	int r;

	_Static_assert(sizeof(interps) / sizeof(interps[0]) == 9,
		       "PER_INTERP lists 9 interpreters");
	atexit(kill_kid);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	cleanup_script();
	return r;
}
