/* SPDX-License-Identifier: MIT */
/*
 * giltrace.h - the one header shared by the BPF programs (bpf/giltrace.bpf.c)
 * and userspace (src/). Only types, constants and pure inline helpers that
 * both sides need live here.
 */
#ifndef GILTRACE_H
#define GILTRACE_H

#ifdef __bpf__
/* vmlinux.h provides __u64 and friends. */
#else
#include <linux/types.h>
#endif

#define GT_COMM_LEN 16

/*
 * Durations are bucketed log-linearly, as HdrHistogram does: every power of
 * two [2^p, 2^(p+1)) is split into GT_SUB_BUCKETS equal sub-buckets, so a
 * bucket is at most 1/16 = 6.25% of its lower bound wide and a percentile
 * read as the bucket's midpoint is within ~3.2% of the exact value.
 * Values below GT_SUB_BUCKETS ns get one bucket each (exact).
 * The log2 histogram of the report is the sum of each power's sub-buckets.
 */
#define GT_SUB_BITS 4
#define GT_SUB_BUCKETS (1 << GT_SUB_BITS)
#define GT_MAX_POW 40 /* 2^41 ns ~ 36 min; longer durations land in the last bucket */
#define GT_NBUCKETS ((GT_MAX_POW - GT_SUB_BITS + 2) * GT_SUB_BUCKETS)
#define GT_LOG2_SLOTS (GT_MAX_POW + 1)

/* floor(log2(v)) for v > 0, branchy so it compiles for BPF (no clz insn). */
static inline __u32 gt_log2(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Index of the log-linear bucket holding duration v (ns). */
static inline __u32 gt_bucket(__u64 v)
{
	__u32 p, idx;

	if (v < GT_SUB_BUCKETS)
		return (__u32)v;
	p = gt_log2(v);
	if (p > GT_MAX_POW)
		return GT_NBUCKETS - 1;
	idx = (p - GT_SUB_BITS + 1) * GT_SUB_BUCKETS +
	      (__u32)((v >> (p - GT_SUB_BITS)) & (GT_SUB_BUCKETS - 1));
	return idx < GT_NBUCKETS ? idx : GT_NBUCKETS - 1;
}

/* Figures of one kind of interval (waits or holds) of one thread. */
struct gt_dist {
	__u64 count;  /* completed intervals */
	__u64 sum_ns; /* their total duration */
	__u64 max_ns;
	__u32 buckets[GT_NBUCKETS]; /* log-linear, see gt_bucket() */
};

/* Where a thread is, as far as the probes have seen it. */
enum gt_state {
	GT_UNKNOWN = 0, /* not seen since tracing began */
	GT_RUNNING = 1, /* runs without the GIL */
	GT_WAITING = 2, /* inside take_gil, GIL not yet held */
	GT_HOLDING = 3, /* holds the GIL */
	GT_EXITED = 4,  /* exited; its record could not be sent, userspace drains it */
};

/*
 * One traced thread: in-flight state plus aggregated figures. Lives in the
 * BPF hash map `threads`, keyed by TID (not by PyThreadState: from 3.12 one
 * OS thread can drop the GIL as one thread state and take it as another).
 */
struct gt_thread {
	__u32 tid;
	__u32 state;          /* enum gt_state */
	__u64 since_ns;       /* when the current state began (WAITING: take_gil entry) */
	__u64 wait_begin_ns;  /* take_gil entry of the cycle in progress */
	__u64 woke_ns;        /* WAITING: last return from the wait loop's timed wait, 0 none */
	__u64 tstate;         /* PyThreadState* passed to take_gil, 0 unknown */
	__u32 cyc_flags;      /* GT_CYC_* of the cycle in progress */
	__u32 busy;           /* 1 while one of the thread's probes runs: a
			       * holder sample (perf_event) can interrupt a
			       * uprobe program on its CPU, and skips then */
	__u64 first_seen_ns;
	__u64 acquisitions;   /* times this thread came to hold the GIL */
	__u64 waits_abandoned;    /* waits ended by the thread's exit */
	__u64 waits_abandoned_ns;
	__u64 waits_clipped;  /* waits that began before tracing began */
	__u64 inconsistent;   /* transitions that contradict the state (missed probe) */
	__u64 exit_ns;        /* set in the exit record */
	/* --stacks: stack ids (struct gt_stack), 0 none */
	__u64 wait_stack;     /* of the wait in progress */
	__u64 pending_hold_ns; /* the last hold, whose stack the next take_gil
				* walks (no Python code runs in between) */
	__u64 pending_tstate;  /* the thread state of that release */
	__u64 pending_release_ns; /* when it was */
	__u64 hold_mark_ns;   /* the hold in progress is attributed to stacks up
			       * to here (holder samples) */
	__u64 sample_stack;   /* stack of the last holder sample of this hold */
	__u64 sampled_ns;     /* of the hold in progress, what samples attributed:
			       * the release gives stacks only the rest, so a
			       * sample that misjudged the acquisition cannot
			       * make weights exceed the hold */
	/* Weights not yet in the map stack_weights, per enum gt_weight: a
	 * thread that waits and holds with the same stacks cycle after cycle
	 * (the common case) adds to these, and the map is updated only when
	 * the stack changes. Userspace adds them to the map's. */
	__u64 acc_stack[2];
	__u64 acc_ns[2];
	__u32 acc_cnt[2];
	__u32 acc_used;       /* bit per kind: acc_* hold something */
	__u32 pad2;
	/* --mode contention */
	__u64 block_ns;       /* the timed wait in progress began (0 none) */
	__u32 block_holder;   /* TID holding the GIL when it began, 0 unknown */
	__u32 pad1;
	__u64 hold_samples;   /* CPU-clock samples that found this thread holding */
	char comm[GT_COMM_LEN];
	struct gt_dist wait;
	struct gt_dist hold;
};

/* Process-wide counters, in the BPF program's .bss (struct gt_globals). */
struct gt_globals {
	__u64 holder_switches;  /* holder changed to a different TID */
	__u64 acquisitions;
	__u64 dropped_events;   /* transitions not recorded: per-thread map full */
	__u64 exits_deferred;   /* exit records not sent (ring buffer full): left in the map for userspace */
	__u64 records_lost;     /* event-stream records the ring buffer could not take */
	__u64 lost_first_ns;    /* first loss not yet reported by a GT_REC_LOST */
	__u64 lost_last_ns;
	__u64 lost_pending;     /* losses not yet reported */
	__u64 last_release_ns;  /* latest drop_gil entry by any thread */
	__u32 last_holder_tid;
	__u32 pad;
	/* --stacks */
	__u64 stack_weights_lost; /* weight updates the map could not take */
	__u64 stacks_lost;        /* new-stack records the ring buffer could not take */
	__u64 samples;            /* holder samples taken */
	__u64 samples_skipped;    /* ... not taken: they interrupted the thread's own probe */
	__u64 walks_interrupted;  /* stack walks whose per-CPU scratch another walk
				     reused meanwhile: their stack is unknown (0) */
	/* --mode contention */
	__u64 gil_samples;        /* CPU-clock samples in a target thread */
	__u64 gil_samples_locked; /* ... that found the GIL held */
};

/* Typed records on the one ring buffer. Every record starts with a
 * __u32 type. */
enum gt_rec_type {
	GT_REC_THREAD_EXIT = 1, /* struct gt_rec_thread_exit: final figures */
	GT_REC_CYCLE = 2,       /* struct gt_rec_cycle: one wait+hold, sent at release */
	GT_REC_ABANDONED = 3,   /* struct gt_rec_cycle: a wait ended by the thread's exit */
	GT_REC_LOST = 4,        /* struct gt_rec_lost: records the buffer could not take */
	GT_REC_STACK = 5,       /* struct gt_rec_stack: a stack seen for the first time */
	GT_REC_HOLD_STACK = 6,  /* struct gt_rec_hold_stack: the stack of a thread's
				   last release, known only after it (--stacks) */
	GT_REC_STACK_NATIVE = 7, /* struct gt_rec_stack_native: GT_REC_STACK with
				    the registers and stack to unwind (--native) */
};

/* bpf_cookie of a take_gil entry probe: which argument (1-6) is the
 * PyThreadState*; 0 = unknown. */
#define GT_COOKIE_TSTATE_ARG_MASK 0x7

/* struct gt_rec_cycle.flags */
#define GT_CYC_CLIPPED  0x1 /* the wait began before tracing: wait_begin_ns = t0 */
#define GT_CYC_INFERRED 0x2 /* acquisition inferred, not seen (see giltrace.bpf.c) */
#define GT_CYC_AT_START 0x4 /* held when tracing began: no wait, held_ns = t0 */
#define GT_CYC_PARTIAL  0x8 /* the thread's earlier events were lost (map full):
			       its wait's start is unknown and not counted */

/* The GIL, for BPF (see struct gil_ref in src/py_state.h). */
struct gt_gil_ref {
	__u64 base;
	__u64 nderef;
	__u64 off[2];
	__u64 locked_off, holder_off;
	/* A thread state's TID: 3.11+ *(tstate + ts_native_tid_off); before,
	 * glibc's struct pthread at *(tstate + ts_thread_id_off) holds it at
	 * pthread_tid_off. 0 / -1: unknown. */
	__u64 ts_native_tid_off;
	__u64 ts_thread_id_off;
	__s64 pthread_tid_off;
};

/*
 * One GIL cycle of one thread: it entered take_gil at wait_begin_ns, held
 * the GIL from held_ns, released it at release_ns (drop_gil entry). Sent
 * once per cycle, at release, only when the event stream is on. For
 * GT_REC_ABANDONED, held_ns = release_ns = the thread's exit.
 */
struct gt_rec_cycle {
	__u32 type;
	__u32 tid;
	__u64 wait_begin_ns;
	__u64 held_ns;
	__u64 release_ns;
	__u32 cpu;   /* CPU of the release */
	__u32 flags; /* GT_CYC_* */
	__u64 wait_stack; /* stack id (struct gt_stack) of the wait, 0 none */
	__u64 hold_stack; /* stack id at the release, 0: the same thread's next
			     cycle's wait_stack (taken at its take_gil entry) */
};

/* --stacks with the event stream: a cycle's hold_stack is its thread's next
 * wait_stack; the last cycle of a thread (it exits, or tracing ends) gets
 * its hold stack from this record. */
struct gt_rec_hold_stack {
	__u32 type; /* GT_REC_HOLD_STACK */
	__u32 tid;
	__u64 release_ns; /* the cycle's release */
	__u64 stack;
};

/* Records lost between first_ns and last_ns (ring buffer full). */
struct gt_rec_lost {
	__u32 type;
	__u32 pad;
	__u64 count;
	__u64 first_ns;
	__u64 last_ns;
};

struct gt_rec_thread_exit {
	__u32 type; /* GT_REC_THREAD_EXIT */
	__u32 pad;
	struct gt_thread thread;
};

/*
 * Python frame layout for the BPF stack walker.
 *
 * Where, in one interpreter build, a thread's innermost Python frame is,
 * and in each frame its code object, its caller and its instruction
 * position; plus what userspace needs to name a code object (names, first
 * line, line table) and to read str and bytes objects. Filled by
 * src/py_layout.c from _Py_DebugOffsets (3.13+), DWARF, or a versioned
 * table, and copied as is into BPF. Offsets are in bytes from the start of
 * the object; GT_PY_NONE marks what the version does not have.
 *
 * Walk (BPF): f = tstate; for i < ts_frame_nderef: f = *(u64 *)(f +
 * ts_frame_off[i]). While f: if fr_owner != GT_PY_NONE and
 * *(u8 *)(f + fr_owner) == fr_owner_skip, the frame is a C-stack shim
 * (skip it); else capture code = *(u64 *)(f + fr_code) & fr_code_mask and
 * the fr_instr_size bytes at f + fr_instr (enum gt_py_instr). Then
 * f = *(u64 *)(f + fr_back).
 */
#define GT_PY_NONE 0xffffffffu
#define GT_PY_TS_PATH_MAX 2

/* How the instruction position a frame holds is read. */
enum gt_py_instr {
	GT_PY_INSTR_LASTI_BYTES = 1, /* int f_lasti: byte offset, -1 before the first (3.6-3.9) */
	GT_PY_INSTR_LASTI_UNITS = 2, /* int f_lasti: index of 2-byte code units (3.10) */
	GT_PY_INSTR_PREV_INSTR = 3,  /* _Py_CODEUNIT *prev_instr (3.11-3.12) */
	GT_PY_INSTR_PTR = 4,         /* _Py_CODEUNIT *instr_ptr (3.13+) */
};

/* Format of the code object's line table. */
enum gt_py_lines {
	GT_PY_LINES_LNOTAB = 1,    /* co_lnotab: (byte delta, signed line delta) pairs (3.6-3.9) */
	GT_PY_LINES_PEP626 = 2,    /* co_linetable, 3.10: (byte delta, line delta | -128) pairs */
	GT_PY_LINES_LOCATIONS = 3, /* co_linetable, location table (3.11+, Objects/locations.md) */
};

struct gt_py_frame_layout {
	__u32 py_version;    /* (major << 8) | minor, e.g. 0x030c */
	__u32 source;        /* where the offsets came from: enum py_layout_source (src/py_layout.h) */
	/* PyThreadState -> innermost frame */
	__u32 ts_frame_nderef;
	__u32 ts_frame_off[GT_PY_TS_PATH_MAX];
	/* frame: PyFrameObject up to 3.10, _PyInterpreterFrame from 3.11 */
	__u32 fr_code;       /* f_code; f_executable 3.13+ */
	__u32 fr_back;       /* f_back; previous 3.11+ */
	__u32 fr_instr;      /* f_lasti; prev_instr 3.11-3.12; instr_ptr 3.13+ */
	__u32 fr_instr_size; /* bytes at fr_instr: 4 (int) or 8 (pointer) */
	__u32 fr_instr_kind; /* enum gt_py_instr */
	__u32 fr_owner;      /* char owner, 3.11+ */
	__u32 fr_owner_skip; /* owner value of C-stack shim frames (3.12+), else GT_PY_NONE */
	__u64 fr_code_mask;  /* ~0; ~3 from 3.14 (f_executable is a tagged _PyStackRef) */
	/* PyObject, PyVarObject, PyBytesObject */
	__u32 ob_type;
	__u32 ob_size;
	__u32 bytes_data;    /* ob_sval */
	/* PyCodeObject */
	__u32 co_filename;
	__u32 co_name;
	__u32 co_qualname;   /* 3.11+ */
	__u32 co_firstlineno;   /* int */
	__u32 co_linetable;  /* co_lnotab up to 3.9, co_linetable 3.10+: a bytes object */
	__u32 co_lines_kind; /* enum gt_py_lines */
	__u32 co_code;       /* up to 3.10: the bytecode, a bytes object */
	__u32 co_code_adaptive; /* 3.11+: the bytecode, inline; ob_size = its length in code units */
	/* str (PyASCIIObject, PyCompactUnicodeObject) */
	__u32 str_length;
	__u32 str_state;     /* the 32-bit state bit-field word */
	__u32 str_ascii_data;   /* sizeof(PyASCIIObject): data of compact ASCII strings */
	__u32 str_compact_data; /* sizeof(PyCompactUnicodeObject): data of other compact strings,
				 * data.any pointer of non-compact ones */
	__u8 str_kind_shift;    /* state: kind (3 bits: 1, 2 or 4 bytes a char) */
	__u8 str_compact_shift; /* state: compact (1 bit) */
	__u8 str_ascii_shift;   /* state: ascii (1 bit) */
	__u8 str_ready_shift;   /* state: ready (1 bit, up to 3.11), 0xff from 3.12 */
	__u32 fr_span;          /* bytes of a frame the walker reads at once: covers
				 * fr_code, fr_back, fr_instr and fr_owner */
	__u32 pad1;             /* no implicit padding: 128 bytes */
};

/*
 * Python stacks (--stacks). The BPF walker (struct gt_py_frame_layout)
 * reads at most GT_STACK_MAX frames, innermost first, each as the code
 * object's address and the raw instruction position; a stack's id is a
 * 64-bit hash of its frames and flags (0 is never an id). A stack is sent
 * to userspace once, as a GT_REC_STACK record, the first time it is seen;
 * userspace names its frames while the process still has them.
 */
#define GT_STACK_MAX 64

#define GT_STK_TRUNCATED  0x1 /* deeper than GT_STACK_MAX: outer frames missing */
#define GT_STK_UNREADABLE 0x2 /* a frame could not be read: the walk stopped there */
#define GT_STK_NO_TSTATE  0x4 /* the thread state was unknown: no frames */

/* A stack's id: FNV-1a over its frames (innermost first), then its flags
 * and depth; never 0. Shared so that userspace walks get the same ids. */
#define GT_FNV_OFFSET 0xcbf29ce484222325ULL
#define GT_FNV_PRIME 0x100000001b3ULL

static inline __u64 gt_hash_frame(__u64 h, __u64 code, __u64 pos)
{
	h = (h ^ code) * GT_FNV_PRIME;
	return (h ^ pos) * GT_FNV_PRIME;
}

static inline __u64 gt_hash_end(__u64 h, __u32 flags, __u32 depth)
{
	h = (h ^ flags) * GT_FNV_PRIME;
	h = (h ^ depth) * GT_FNV_PRIME;
	return h ? h : 1;
}

struct gt_frame {
	__u64 code; /* code object (masked with fr_code_mask) */
	__u64 pos;  /* instruction position as the frame holds it (enum gt_py_instr) */
};

struct gt_stack {
	__u64 id;
	__u32 depth; /* frames[0..depth) valid, innermost first */
	__u32 flags; /* GT_STK_* */
	struct gt_frame frames[GT_STACK_MAX];
	/* Filled when the stack is sent (new stacks only): each frame's code
	 * object's co_name pointer then, 0 unread. Userspace names a frame
	 * only if the code object it reads (or cached) still has it: a code
	 * object freed and its address reused before naming is told apart. */
	__u64 co_name[GT_STACK_MAX];
};

struct gt_rec_stack {
	__u32 type; /* GT_REC_STACK */
	__u32 pad;
	struct gt_stack s;
};

/*
 * Native stacks (--native): with a new Python stack, the thread's user
 * registers at the probe and a copy of its user stack from rsp, unwound in
 * userspace with CFI (src/native_unwind.c).
 */
#define GT_NATIVE_STACK 8192 /* bytes of user stack copied from rsp (--native) */
/* x86-64 user registers in DWARF numbering (0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 16 rip) */
#define GT_NATIVE_NREGS 17
struct gt_native {
	__u64 regs[GT_NATIVE_NREGS];
	__u32 stack_len;   /* bytes valid in stack[], 0: no native capture */
	__u32 pad;
	__u8 stack[GT_NATIVE_STACK]; /* user memory [regs[7], regs[7] + stack_len) */
};

/* --native: a new stack, with what userspace needs to unwind the native
 * frames of its first occurrence (at a take_gil entry). */
struct gt_rec_stack_native {
	__u32 type; /* GT_REC_STACK_NATIVE */
	__u32 pad;
	struct gt_stack s;
	struct gt_native n;
};

/* What a stack's weight measures. */
enum gt_weight {
	GT_W_WAIT = 0, /* waited for the GIL with this stack */
	GT_W_HOLD = 1, /* held the GIL with this stack */
};

/* --mode contention: time each waiter spent blocked behind each holder
 * (map blocked_by), holder 0 = unknown. */
struct gt_blocked_key {
	__u32 waiter;
	__u32 holder;
};

struct gt_blocked_val {
	__u64 ns;
	__u64 count; /* timed waits */
};

/* Per-thread stack weights, aggregated in the kernel (map stack_weights). */
struct gt_stack_key {
	__u32 tid;
	__u32 kind; /* enum gt_weight */
	__u64 first_seen_ns; /* with tid: the thread (TIDs are reused) */
	__u64 stack_id;
};

struct gt_stack_val {
	__u64 count;
	__u64 ns;
};

#endif /* GILTRACE_H */
