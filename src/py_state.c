/* SPDX-License-Identifier: MIT */
/*
 * py_state: the GIL's own state (struct _gil_runtime_state) read from the
 * live target with process_vm_readv. Nothing is ever written.
 *
 * Where the GIL lives (x86-64 offsets of the pyenv release builds in the
 * tables below; other builds need DWARF or _Py_DebugOffsets):
 * - 3.6: static variables gil_interval, gil_last_holder, gil_locked,
 *   gil_switch_number (Python/ceval_gil.h 3.6), found in .symtab.
 * - 3.7-3.11: inside the runtime, &_PyRuntime.ceval.gil
 *   (Include/internal/pycore_runtime.h, pycore_ceval.h 3.7-3.11).
 * - 3.12+: per interpreter; the main interpreter's interp->ceval.gil is a
 *   pointer (to interp->_gil for interpreters with their own GIL,
 *   Python/ceval_gil.c _PyEval_InitGIL 3.12+).
 * Offsets come, in this order, from _Py_DebugOffsets (3.13+, at the start of
 * _PyRuntime), from DWARF (member offsets summed along a path such as
 * "ceval.gil"), and from the tables.
 *
 * struct _gil_runtime_state is { interval; last_holder; locked;
 * switch_number; ... } at 0/8/16/24 in 3.7-3.14 default builds
 * (Include/internal/pycore_gil.h); free-threaded builds prepend `int enabled`.
 *
 * The holder's TID: 3.11+ tstate->native_thread_id. Before 3.11 only
 * tstate->thread_id = pthread_self() exists; with glibc that is the address
 * of the thread's struct pthread, whose `tid` member is found at the offset
 * where this process's own struct pthread holds gettid() (0x2d0 on x86-64
 * glibc 2.36). Best effort: a value that is not a task of the target is
 * dropped (holder_tid 0), e.g. with musl.
 */
#include "py_state.h"
#include "errbuf.h"
#include "target.h"
#include "elf_image.h"
#include "dwarf_layout.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static bool ver_ge(const struct py_target *t, int major, int minor)
{
	return t->major > major || (t->major == major && t->minor >= minor);
}

/* ---- reading the target ------------------------------------------------ */

static int rread(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t n;

	if (!addr)
		return -EFAULT;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int rread_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return rread(pid, addr, v, sizeof(*v));
}

/* ---- DWARF (helpers in dwarf_layout.c) ------------------------------- */

static void dwarf_ts_offsets(Dwarf *dw, struct gil_layout *l)
{
	Dwarf_Die ts;
	uint64_t o;

	if (dwarf_layout__find_struct2(dw, "_ts", "PyThreadState", &ts) != 0)
		return;
	if (dwarf_layout__offset(&ts, "thread_id", &o) == 0)
		l->ts_thread_id = o;
	if (dwarf_layout__offset(&ts, "native_thread_id", &o) == 0)
		l->ts_native_thread_id = o;
}

static int dwarf_gil_members(Dwarf *dw, struct gil_layout *l)
{
	Dwarf_Die g;

	if (dwarf_layout__find_struct(dw, "_gil_runtime_state", &g) != 0)
		return -ENOENT;
	if (dwarf_layout__offset(&g, "interval", &l->g_interval) ||
	    dwarf_layout__offset(&g, "last_holder", &l->g_last_holder) ||
	    dwarf_layout__offset(&g, "locked", &l->g_locked) ||
	    dwarf_layout__offset(&g, "switch_number", &l->g_switch_number))
		return -ENOENT;
	return 0;
}

static int layout_dwarf(struct py_target *t, struct gil_layout *l)
{
	Dwarf *dw = elf_image__dwarf(t->img);
	Dwarf_Die rt, is;

	if (!dw)
		return -ENOENT;
	dwarf_ts_offsets(dw, l);
	if (l->where == GIL_WHERE_STATICS)
		return l->ts_thread_id ? 0 : -ENOENT;
	if (dwarf_gil_members(dw, l) != 0 ||
	    dwarf_layout__find_struct2(dw, "pyruntimestate", "_PyRuntimeState", &rt) != 0)
		return -ENOENT;
	if (l->where == GIL_WHERE_RUNTIME)
		return dwarf_layout__offset(&rt, "ceval.gil", &l->rt_gil);
	if (dwarf_layout__offset(&rt, "interpreters.main", &l->rt_main_interp) != 0 ||
	    dwarf_layout__find_struct2(dw, "_is", "PyInterpreterState", &is) != 0)
		return -ENOENT;
	return dwarf_layout__offset(&is, "ceval.gil", &l->interp_gil);
}

/* ---- _Py_DebugOffsets (3.13+) ------------------------------------------ */

/*
 * Byte positions inside _Py_DebugOffsets (every field a uint64_t):
 * cookie 0, version 8, free_threaded 16, runtime_state {size 24,
 * finalizing 32, interpreters_head 40}, interpreter_state from 48:
 * 3.13 (Include/internal/pycore_runtime.h): size, id, next, threads_head,
 *   gc, imports_modules, sysdict, builtins, ceval_gil (112),
 *   gil_runtime_state (120), _enabled, _locked (136), _holder (144).
 * 3.14 (Include/internal/pycore_debug_offsets.h) adds threads_main after
 *   threads_head, so ceval_gil 120, gil_runtime_state 128, _locked 144,
 *   _holder 152 (later 3.14 adds more fields after _holder).
 * thread_state starts with {size, prev, next, interp, current_frame,
 * thread_id, native_thread_id}; prev/next/interp are 0/8/16 in PyThreadState
 * (Include/cpython/pystate.h 3.13-3.14), which is how it is found.
 */
#define DBGOFF_LEN 512

static uint64_t dbg_u64(const unsigned char *b, size_t pos)
{
	uint64_t v;

	memcpy(&v, b + pos, 8);
	return v;
}

static int read_debug_offsets(struct py_target *t, uint64_t runtime,
			      unsigned char *b)
{
	if (elf_image__read(t->img, runtime, b, DBGOFF_LEN) != 0 &&
	    rread(t->pid, runtime + t->load_bias, b, DBGOFF_LEN) != 0)
		return -ENOENT;
	return memcmp(b, "xdebugpy", 8) == 0 ? 0 : -ENOENT;
}

static int layout_debug_offsets(struct py_target *t, struct gil_layout *l)
{
	unsigned char b[DBGOFF_LEN];
	size_t base, ts, ts_from;
	uint64_t ver, isize, gil, locked, holder;

	if (!ver_ge(t, 3, 13) || read_debug_offsets(t, l->runtime, b) != 0)
		return -ENOENT;
	ver = dbg_u64(b, 8);
	if ((ver >> 24) != 3 || ((ver >> 16) & 0xff) < 13)
		return -ENOENT;
	base = ((ver >> 16) & 0xff) == 13 ? 112 : 120;  /* ceval_gil */
	isize = dbg_u64(b, 48);
	l->interp_gil = dbg_u64(b, base);
	gil = dbg_u64(b, base + 8);
	locked = dbg_u64(b, base + 24);
	holder = dbg_u64(b, base + 32);
	/* interval and last_holder, then locked and switch_number */
	if (holder <= gil || locked != holder + 8 || l->interp_gil >= isize ||
	    locked >= isize)
		return -EINVAL;
	l->g_last_holder = holder - gil;
	l->g_interval = l->g_last_holder - 8;
	l->g_locked = locked - gil;
	l->g_switch_number = l->g_locked + 8;
	/* struct pyinterpreters { mutex; head; main; ... } 3.12-3.14 */
	l->rt_main_interp = dbg_u64(b, 40) + 8;

	ts_from = base + 40;
	for (ts = ts_from; ts + 7 * 8 <= DBGOFF_LEN && ts < ts_from + 128; ts += 8) {
		uint64_t size = dbg_u64(b, ts);

		if (size >= 64 && size < 65536 && dbg_u64(b, ts + 8) == 0 &&
		    dbg_u64(b, ts + 16) == 8 && dbg_u64(b, ts + 24) == 16) {
			l->ts_thread_id = dbg_u64(b, ts + 40);
			l->ts_native_thread_id = dbg_u64(b, ts + 48);
			break;
		}
	}
	return 0;
}

/* ---- tables ------------------------------------------------------------ */

/*
 * x86-64, gcc, default (release, non-debug) builds; read from the DWARF
 * of pyenv's 3.6.15-3.13.0 and Debian's 3.11.2 and checked by
 * tests/unit/test_target.c against DWARF on every build it finds.
 */
struct layout_row {
	int minor;
	uint64_t rt_gil, rt_main_interp, interp_gil;
	uint64_t ts_thread_id, ts_native_thread_id;
};

static const struct layout_row table[] = {
	/* minor  rt_gil  rt_main  interp_gil  thread_id  native_tid */
	{ 6,  0,     0,     0,     152, 0 },   /* gil_* statics */
	{ 7,  0x4f0, 0,     0,     176, 0 },
	{ 8,  0x480, 0,     0,     176, 0 },
	{ 9,  0x160, 0,     0,     176, 0 },
	{ 10, 0x160, 0,     0,     176, 0 },
	{ 11, 0x168, 0,     0,     152, 160 },
	{ 12, 0,     0x30,  0x180, 136, 144 },
	{ 13, 0,     0x280, 0x10,  152, 160 },
};

static int layout_table(struct py_target *t, struct gil_layout *l)
{
	size_t i;

#if !defined(__x86_64__)
	return -ENOENT;
#endif
	if (t->major != 3)
		return -ENOENT;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct layout_row *r = &table[i];

		if (r->minor != t->minor)
			continue;
		l->rt_gil = r->rt_gil;
		l->rt_main_interp = r->rt_main_interp;
		l->interp_gil = r->interp_gil;
		l->ts_thread_id = r->ts_thread_id;
		l->ts_native_thread_id = r->ts_native_thread_id;
		if (t->minor >= 7) {  /* Include/internal/pycore_gil.h */
			l->g_interval = 0;
			l->g_last_holder = 8;
			l->g_locked = 16;
			l->g_switch_number = 24;
		}
		return 0;
	}
	return -ENOENT;
}

/* ---- layout ------------------------------------------------------------ */

/* What the symbols give: where, _PyRuntime, and 3.6's statics. */
static int layout_symbols(struct py_target *t, struct gil_layout *l,
			  char *err, size_t errlen)
{
	struct elf_image *img = t->img;

	memset(l, 0, sizeof(*l));
	if (t->major != 3 || t->minor < 6) {
		errbuf_set(err, errlen,
			"giltrace: no GIL layout for Python %d.%d: only 3.6 and later are supported",
			t->major, t->minor);
		return -ENOTSUP;
	}
	if (t->minor == 6) {
		l->where = GIL_WHERE_STATICS;
		if (elf_image__find_symbol(img, "gil_interval", &l->s_interval, NULL) ||
		    elf_image__find_symbol(img, "gil_last_holder", &l->s_last_holder, NULL) ||
		    elf_image__find_symbol(img, "gil_locked", &l->s_locked, NULL) ||
		    elf_image__find_symbol(img, "gil_switch_number", &l->s_switch_number, NULL)) {
			errbuf_set(err, errlen,
				"giltrace: no GIL layout for Python 3.6: the static gil_* variables are not in the symbol table of %s; install its debug symbols",
				t->interp);
			return -ENOTSUP;
		}
		return 0;
	}
	l->where = t->minor <= 11 ? GIL_WHERE_RUNTIME : GIL_WHERE_INTERP;
	if (elf_image__find_symbol(img, "_PyRuntime", &l->runtime, NULL) != 0) {
		errbuf_set(err, errlen,
			"giltrace: no GIL layout for Python %d.%d: %s has no _PyRuntime symbol; install its debug symbols",
			t->major, t->minor, t->interp);
		return -ENOTSUP;
	}
	return 0;
}

static int layout_from(struct py_target *t, enum gil_layout_source src,
		       struct gil_layout *l)
{
	struct gil_layout save = *l;
	int r = -ENOENT;

	switch (src) {
	case GIL_LAYOUT_DEBUG_OFFSETS:
		l->source = "debug-offsets";
		r = layout_debug_offsets(t, l);
		break;
	case GIL_LAYOUT_DWARF:
		l->source = "dwarf";
		r = layout_dwarf(t, l);
		break;
	case GIL_LAYOUT_TABLE:
		l->source = "table";
		r = layout_table(t, l);
		break;
	default:
		break;
	}
	if (r)
		*l = save;
	return r;
}

int py_state__layout(struct py_target *t, enum gil_layout_source src,
		     struct gil_layout *l, char *err, size_t errlen)
{
	static const enum gil_layout_source order[] = {
		GIL_LAYOUT_DEBUG_OFFSETS, GIL_LAYOUT_DWARF, GIL_LAYOUT_TABLE,
	};
	size_t i;
	int r;

	if (!t || !t->img) {
		errbuf_set(err, errlen, "giltrace: no target");
		return -EINVAL;
	}
	r = layout_symbols(t, l, err, errlen);
	if (r)
		return r;
	if (src != GIL_LAYOUT_ANY) {
		r = layout_from(t, src, l);
		if (r)
			errbuf_set(err, errlen, "no %s layout for Python %s",
				src == GIL_LAYOUT_DWARF ? "DWARF" :
				src == GIL_LAYOUT_TABLE ? "table" : "_Py_DebugOffsets",
				t->version);
		return r ? -ENOENT : 0;
	}
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (layout_from(t, order[i], l) == 0)
			return 0;
	}
	errbuf_set(err, errlen,
		"giltrace: no GIL layout for Python %d.%d (no DWARF, no _Py_DebugOffsets, not in the built-in table); install the interpreter's debug symbols",
		t->major, t->minor);
	return -ENOTSUP;
}

/* A small cache: the layout of the last build asked about. */
static struct {
	char key[PATH_MAX + 80];
	struct gil_layout l;
	bool valid;
} cache;

static int cached_layout(struct py_target *t, struct gil_layout *l,
			 char *err, size_t errlen)
{
	const char *id = elf_image__build_id(t->img);
	char key[sizeof(cache.key)];
	int r;

	snprintf(key, sizeof(key), "%s|%s", id ? id : "", t->interp_open);
	if (cache.valid && strcmp(cache.key, key) == 0) {
		*l = cache.l;
		return 0;
	}
	r = py_state__layout(t, GIL_LAYOUT_ANY, l, err, errlen);
	if (r)
		return r;
	snprintf(cache.key, sizeof(cache.key), "%s", key);
	cache.l = *l;
	cache.valid = true;
	return 0;
}

int py_state__cached_layout(struct py_target *t, struct gil_layout *l,
			    char *err, size_t errlen)
{
	return cached_layout(t, l, err, errlen);
}

void py_state__preset_layout(struct py_target *t, const struct gil_layout *l)
{
	const char *id = elf_image__build_id(t->img);

	snprintf(cache.key, sizeof(cache.key), "%s|%s", id ? id : "",
		 t->interp_open);
	cache.l = *l;
	cache.valid = true;
}

/* ---- holder TID -------------------------------------------------------- */

static bool is_task(pid_t pid, pid_t tid)
{
	char p[64];
	struct stat st;

	if (tid <= 0)
		return false;
	snprintf(p, sizeof(p), "/proc/%d/task/%d", (int)pid, (int)tid);
	return stat(p, &st) == 0;
}

/*
 * Offset of `tid` in glibc's struct pthread, measured on this process:
 * where its own struct pthread (pthread_self()) holds gettid(). The scan
 * stays well inside the struct (about 0x900 bytes on x86-64 glibc 2.36).
 */
static long pthread_tid_offset(void)
{
	static long off = -2;
	const unsigned char *self;
	pid_t tid;
	long o;

	if (off != -2)
		return off;
	off = -1;
	self = (const unsigned char *)pthread_self();
	tid = gettid();
	for (o = 0x2d0; o < 0x2d4; o += 4) {  /* x86-64 glibc 2.2x-2.3x */
		pid_t v;

		memcpy(&v, self + o, sizeof(v));
		if (v == tid)
			return off = o;
	}
	for (o = 0; o < 0x400; o += 4) {
		pid_t v;

		memcpy(&v, self + o, sizeof(v));
		if (v == tid)
			return off = o;
	}
	return off;
}

static pid_t holder_tid(struct py_target *t, const struct gil_layout *l,
			uint64_t tstate)
{
	uint64_t v;
	int32_t tid;
	long off;

	if (!tstate)
		return 0;
	if (l->ts_native_thread_id) {
		if (rread_u64(t->pid, tstate + l->ts_native_thread_id, &v) != 0)
			return 0;
		return is_task(t->pid, (pid_t)v) ? (pid_t)v : 0;
	}
	off = pthread_tid_offset();
	if (!l->ts_thread_id || off < 0 ||
	    rread_u64(t->pid, tstate + l->ts_thread_id, &v) != 0 ||
	    rread(t->pid, v + (uint64_t)off, &tid, sizeof(tid)) != 0)
		return 0;
	return is_task(t->pid, tid) ? tid : 0;
}

/* ---- reading the GIL --------------------------------------------------- */

static int read_fields(struct py_target *t, uint64_t interval,
		       uint64_t last_holder, uint64_t locked,
		       uint64_t switch_number, struct gil_state *st)
{
	int32_t lk;
	int r;

	r = rread_u64(t->pid, interval, &st->interval_us);
	if (!r)
		r = rread_u64(t->pid, last_holder, &st->last_holder);
	if (!r)
		r = rread(t->pid, locked, &lk, sizeof(lk));
	if (!r)
		r = rread_u64(t->pid, switch_number, &st->switch_number);
	st->locked = lk;
	return r;
}

/* 3.12+: the main interpreter's GIL pointer; 0 while not created. */
static int interp_gil(struct py_target *t, const struct gil_layout *l,
		      uint64_t *gil)
{
	uint64_t interp = 0;
	int r;

	*gil = 0;
	r = rread_u64(t->pid, l->runtime + t->load_bias + l->rt_main_interp,
		      &interp);
	if (r || !interp)
		return r;
	return rread_u64(t->pid, interp + l->interp_gil, gil);
}

static int read_errno(struct py_target *t, int r, char *err, size_t errlen)
{
	if (r == -EPERM || r == -EACCES)
		errbuf_set(err, errlen,
			"giltrace: cannot read the memory of PID %d: %s; run giltrace as root",
			(int)t->pid, strerror(-r));
	else if (r == -ESRCH)
		errbuf_set(err, errlen, "giltrace: PID %d has exited", (int)t->pid);
	else
		errbuf_set(err, errlen,
			"giltrace: cannot read the GIL of PID %d: %s", (int)t->pid,
			strerror(-r));
	return r;
}

int py_state__read_gil(struct py_target *t, struct gil_state *st,
		       char *err, size_t errlen)
{
	struct gil_layout l;
	uint64_t gil = 0, b;
	int r;

	memset(st, 0, sizeof(*st));
	st->locked = -1;
	r = cached_layout(t, &l, err, errlen);
	if (r)
		return r;
	b = t->load_bias;
	if (l.where == GIL_WHERE_STATICS) {
		/* 3.6 has no struct: gil_addr is the address of gil_locked */
		st->gil_addr = l.s_locked + b;
		r = read_fields(t, l.s_interval + b, l.s_last_holder + b,
				l.s_locked + b, l.s_switch_number + b, st);
	} else {
		if (l.where == GIL_WHERE_RUNTIME)
			gil = l.runtime + b + l.rt_gil;
		else
			r = interp_gil(t, &l, &gil);
		if (!r && !gil)
			return 0;   /* interpreter not initialised yet */
		st->gil_addr = gil;
		if (!r)
			r = read_fields(t, gil + l.g_interval, gil + l.g_last_holder,
					gil + l.g_locked, gil + l.g_switch_number, st);
	}
	if (r)
		return read_errno(t, r, err, errlen);
	if (st->locked < -1 || st->locked > 1) {
		errbuf_set(err, errlen,
			"giltrace: the GIL of PID %d reads locked=%d at 0x%llx (layout from %s): this build's layout differs",
			(int)t->pid, st->locked, (unsigned long long)st->gil_addr,
			l.source);
		return -EPROTO;
	}
	if (st->locked == 1)
		st->holder_tid = holder_tid(t, &l, st->last_holder);
	return 0;
}

int py_state__gil_ref(struct py_target *t, struct gil_ref *r, char *err,
		      size_t errlen)
{
	struct gil_layout l;
	uint64_t b = t->load_bias;
	int e;

	memset(r, 0, sizeof(*r));
	e = cached_layout(t, &l, err, errlen);
	if (e)
		return e;
	switch (l.where) {
	case GIL_WHERE_STATICS: /* 3.6: separate static variables */
		r->locked_off = l.s_locked + b;
		r->holder_off = l.s_last_holder + b;
		break;
	case GIL_WHERE_RUNTIME: /* 3.7-3.11: _PyRuntime.ceval.gil */
		r->base = l.runtime + b + l.rt_gil;
		r->locked_off = l.g_locked;
		r->holder_off = l.g_last_holder;
		break;
	case GIL_WHERE_INTERP: /* 3.12+: main interpreter -> ceval.gil */
		r->base = l.runtime + b + l.rt_main_interp;
		r->nderef = 2;
		r->off[0] = l.interp_gil;
		r->off[1] = 0;
		r->locked_off = l.g_locked;
		r->holder_off = l.g_last_holder;
		break;
	}
	r->ts_native_tid_off = l.ts_native_thread_id;
	r->ts_thread_id_off = l.ts_thread_id;
	r->pthread_tid_off = pthread_tid_offset();
	return 0;
}
