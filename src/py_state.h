/* SPDX-License-Identifier: MIT */
/*
 * py_state: read the GIL's own state (struct _gil_runtime_state) from the
 * live target's memory with process_vm_readv. Where the GIL lives, per
 * version, comes from the interpreter's DWARF (member offsets of
 * _PyRuntimeState / PyInterpreterState), from _Py_DebugOffsets in 3.13+,
 * and from a cited table as the last resort.
 */
#ifndef GILTRACE_PY_STATE_H
#define GILTRACE_PY_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct py_target;

struct gil_state {
	uint64_t gil_addr;        /* runtime address of struct _gil_runtime_state */
	uint64_t interval_us;     /* switch interval, what sys.getswitchinterval()*1e6 gives */
	int locked;               /* 1 held, 0 free, -1 not created yet */
	uint64_t last_holder;     /* PyThreadState* of the last holder */
	uint64_t switch_number;
	pid_t holder_tid;         /* TID of last_holder when locked and known, else 0 */
};

/*
 * Read the GIL state of @t. Returns 0, or a negative errno with a one-line
 * reason in @err (for instance when no layout is known for this build).
 */
int py_state__read_gil(struct py_target *t, struct gil_state *st,
		       char *err, size_t errlen);

/*
 * Where the GIL and the thread ids live in one build, for py_state__layout
 * (and tests). Addresses are link-time; offsets are in bytes.
 */
enum gil_where {
	GIL_WHERE_STATICS = 1, /* 3.6: static variables gil_interval, gil_locked... */
	GIL_WHERE_RUNTIME,     /* 3.7-3.11: _PyRuntime.ceval.gil */
	GIL_WHERE_INTERP,      /* 3.12+: *_PyRuntime.interpreters.main->ceval.gil */
};

enum gil_layout_source {
	GIL_LAYOUT_ANY = 0,         /* best available: debug offsets, DWARF, table */
	GIL_LAYOUT_DEBUG_OFFSETS,   /* _Py_DebugOffsets, 3.13+ */
	GIL_LAYOUT_DWARF,
	GIL_LAYOUT_TABLE,           /* built-in x86-64 table, release builds */
};

struct gil_layout {
	enum gil_where where;
	const char *source;       /* "debug-offsets", "dwarf", "table" */
	uint64_t runtime;         /* 3.7+: address of _PyRuntime */
	uint64_t rt_gil;          /* 3.7-3.11: offsetof(_PyRuntimeState, ceval.gil) */
	uint64_t rt_main_interp;  /* 3.12+: offsetof(_PyRuntimeState, interpreters.main) */
	uint64_t interp_gil;      /* 3.12+: offsetof(PyInterpreterState, ceval.gil), a pointer */
	/* 3.6: addresses of gil_interval, gil_last_holder, gil_locked, gil_switch_number */
	uint64_t s_interval, s_last_holder, s_locked, s_switch_number;
	/* 3.7+: members of struct _gil_runtime_state */
	uint64_t g_interval, g_last_holder, g_locked, g_switch_number;
	uint64_t ts_thread_id;        /* offsetof(PyThreadState, thread_id), 0 unknown */
	uint64_t ts_native_thread_id; /* 3.11+: offsetof(PyThreadState, native_thread_id), 0 unknown */
};

/*
 * The layout of @t's build from one source. Returns 0, -ENOENT when that
 * source has nothing for this build, or -ENOTSUP when no source has.
 */
int py_state__layout(struct py_target *t, enum gil_layout_source src,
		     struct gil_layout *l, char *err, size_t errlen);

/*
 * How BPF finds the GIL's `locked` and `last_holder` fields at run time,
 * without a syscall: start at runtime address @base, then @nderef times
 * p = *(u64 *)p + off[i]; the fields are at p + locked_off and
 * p + holder_off. 3.6's separate statics: base 0, nderef 0, the offsets
 * are their absolute runtime addresses. Valid from the exec on, before the
 * interpreter has initialised (the pointers are then NULL).
 */
struct gil_ref {
	uint64_t base;
	uint32_t nderef;
	uint64_t off[2];
	uint64_t locked_off, holder_off;
	uint64_t ts_native_tid_off; /* 3.11+: PyThreadState.native_thread_id, else 0 */
	uint64_t ts_thread_id_off;  /* PyThreadState.thread_id (pthread_t), 0 unknown */
	int64_t pthread_tid_off;    /* glibc: the tid's offset in struct pthread, -1 unknown */
};

/* The layout py_state uses for @t (found once per build, then kept). */
int py_state__cached_layout(struct py_target *t, struct gil_layout *l,
			    char *err, size_t errlen);
/* Use @l for @t's build from now on (a layout from the attach cache). */
void py_state__preset_layout(struct py_target *t, const struct gil_layout *l);

int py_state__gil_ref(struct py_target *t, struct gil_ref *r, char *err,
		      size_t errlen);

#endif
