// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * giltrace.bpf.c - exact GIL wait and hold per thread, aggregated in the
 * kernel, optionally streamed as one record per GIL cycle.
 *
 * Probes share one per-thread state machine (enum gt_state):
 *   take_enter  take_gil entry                     -> WAITING (a wait begins)
 *   wait_wake   take_gil, right after the wait loop's timed wait returns
 *               (the blocking path only)           -> remembers the time
 *   gil_held    take_gil return (uretprobe), where no wake point is known
 *                                                  -> HOLDING
 *   drop_enter  drop_gil entry, every copy and every inlined instance
 *                                                  -> RUNNING (hold ends)
 *   thread_exit sched_process_exit: final figures to userspace
 *
 * With a wake point, a cycle costs two probe hits when take_gil does not
 * block: the acquisition is resolved at release. take_gil only leaves its
 * wait loop right after a timed wait returns and finds the GIL free, so a
 * thread that blocked took the GIL at its last wake; one that never
 * blocked took it when it entered, or, if the GIL was released after that
 * (it lost the race for the mutex but the holder let go before it
 * checked), at that release. (Python/ceval_gil.h 3.6-3.11,
 * Python/ceval_gil.c 3.12-3.13: take_gil's `while (locked) COND_TIMED_WAIT`.)
 *
 * Transitions the probes did not see are inferred from the GIL's
 * exclusivity: a thread that releases the GIL without having been seen
 * taking it took it no earlier than the last release by anyone (or, when
 * nobody released since tracing began, held it at that moment). This covers
 * the thread holding the GIL at attach, threads waiting in take_gil at
 * attach, and 3.9+'s take_gil, which at finalization calls drop_gil and
 * exits the thread without returning.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "giltrace.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u32 targ_tgid = 0;
const volatile bool emit_cycles = false; /* the event stream is on */
const volatile bool capture_stacks = false; /* --stacks */
const volatile bool capture_native = false; /* --native */
const volatile bool contention = false; /* --mode contention */
/* How this interpreter's frames are walked (src/py_layout.c): read-only,
 * so the verifier sees every offset as a constant. */
const volatile struct gt_py_frame_layout pyl = {};

/* Set by userspace once every probe is attached (retsnoop's pattern):
 * nothing is recorded from a half-attached session. */
volatile __u32 ready = 0;
volatile __u64 t0_ns = 0; /* tracing began (CLOCK_MONOTONIC) */
struct gt_gil_ref gil_ref = {};

struct gt_globals g = {};
static struct gt_thread zero_thread = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* --max-threads */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct gt_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct gt_blocked_key);
	__type(value, struct gt_blocked_val);
} blocked_by SEC(".maps");

/* --stacks: the stack being walked, and a frame's bytes (per CPU: too big
 * for the BPF stack). */
#define GT_FRAME_BUF 256
struct walk_scratch {
	struct gt_stack s;
	__u8 fbuf[GT_FRAME_BUF];
	/* Walks begun on this CPU. A uprobe program can be preempted, or
	 * interrupted by a sample, and its CPU's scratch reused meanwhile:
	 * a walk whose number changed under it does not send its frames. */
	__u64 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_scratch);
} scratch SEC(".maps");

/* Stacks already sent to userspace. An evicted id is sent again: harmless,
 * userspace keeps the first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} stacks_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct gt_stack_key);
	__type(value, struct gt_stack_val);
} stack_weights SEC(".maps");

/*
 * Whether the current thread was created after tracing began. Such a
 * thread is first seen at its first take_gil; seen in any other state, its
 * earlier events were lost (the map was full), and nothing about them may
 * be inferred from the start of tracing. task->start_time is
 * CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
 */
static __always_inline bool born_after_t0(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, start_time) > t0_ns;
}

/* Where the GIL's fields are: *p such that they are at *p + locked_off /
 * holder_off (3.6's statics: *p = 0, the offsets are addresses). False
 * when unknown or not created yet. */
static __always_inline bool gil_base(__u64 *p)
{
	*p = gil_ref.base;
	if (!gil_ref.base && !gil_ref.locked_off)
		return false;
	for (int i = 0; i < 2; i++) {
		if (i >= gil_ref.nderef)
			break;
		if (bpf_probe_read_user(p, sizeof(*p), (void *)*p) || !*p)
			return false;
		*p += gil_ref.off[i & 1];
	}
	return true;
}

static __always_inline bool ours(__u64 pid_tgid)
{
	return ready && (__u32)(pid_tgid >> 32) == targ_tgid;
}

static __always_inline struct gt_thread *thread_get(__u32 tid, __u64 now)
{
	struct gt_thread *t;

	t = bpf_map_lookup_elem(&threads, &tid);
	if (t) {
		if (t->state != GT_EXITED)
			return t;
		/* The TID was reused before userspace drained the record of
		 * its previous thread: this event cannot be kept apart. */
		__sync_fetch_and_add(&g.dropped_events, 1);
		return NULL;
	}
	bpf_map_update_elem(&threads, &tid, &zero_thread, BPF_NOEXIST);
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t) {
		__sync_fetch_and_add(&g.dropped_events, 1);
		return NULL;
	}
	t->tid = tid;
	t->first_seen_ns = now;
	bpf_get_current_comm(t->comm, sizeof(t->comm));
	return t;
}

/* Every uprobe program starts here: the calling thread's entry, or NULL
 * when the event is not ours (other process, tracing not ready, map full). */
static __always_inline struct gt_thread *this_thread(__u32 *tid, __u64 *now)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!ours(id))
		return NULL;
	*tid = (__u32)id;
	*now = bpf_ktime_get_ns();
	return thread_get(*tid, *now);
}

/* The calling thread's entry if it has one (samples create none). */
static __always_inline struct gt_thread *this_thread_lookup(__u32 *tid,
							    __u64 *now)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct gt_thread *t;

	if (!ours(id))
		return NULL;
	*tid = (__u32)id;
	t = bpf_map_lookup_elem(&threads, tid);
	if (!t || t->state == GT_EXITED)
		return NULL;
	*now = bpf_ktime_get_ns();
	return t;
}

/*
 * A holder sample (perf_event) can interrupt one of the thread's own uprobe
 * programs on its CPU: the kernel keeps perf_event programs from nesting in
 * kprobe and tracepoint programs (bpf_prog_active), not in uprobe ones. One
 * that lands between drop_enter's reset of the hold's samples and its end
 * would attribute the whole hold a second time. The thread's probes mark
 * it busy while they run; a sample that finds it so is skipped. Only the
 * thread's own CPU writes and reads the flag, one after the other: a
 * compiler barrier keeps the stores around the work.
 */
static __always_inline void busy_begin(struct gt_thread *t)
{
	if (!capture_stacks) /* no holder samples: nothing to keep out */
		return;
	*(volatile __u32 *)&t->busy = 1;
	asm volatile("" ::: "memory");
}

static __always_inline void busy_end(struct gt_thread *t)
{
	if (!capture_stacks)
		return;
	asm volatile("" ::: "memory");
	*(volatile __u32 *)&t->busy = 0;
}

static __always_inline void dist_add(struct gt_dist *d, __u64 ns)
{
	__u64 idx = gt_bucket(ns);

	d->count++;
	d->sum_ns += ns;
	if (ns > d->max_ns)
		d->max_ns = ns;
	/* Keep the bound check the compiler would prove away: the verifier
	 * cannot follow gt_bucket's arithmetic. */
	asm volatile("" : "+r"(idx));
	if (idx < GT_NBUCKETS)
		d->buckets[idx]++;
}

/* The thread came to hold the GIL at @at, after waiting since @begin. */
static __always_inline void acquired(struct gt_thread *t, __u32 tid,
				     __u64 begin, __u64 at)
{
	__u32 last = g.last_holder_tid;

	if (begin)
		dist_add(&t->wait, at - begin);
	t->state = GT_HOLDING;
	t->since_ns = at;
	t->acquisitions++;
	__sync_fetch_and_add(&g.acquisitions, 1);
	if (last && last != tid)
		__sync_fetch_and_add(&g.holder_switches, 1);
	g.last_holder_tid = tid;
}

/* Report records lost since the last report, once the buffer has room. */
static __always_inline void flush_lost(void)
{
	struct gt_rec_lost *l;

	if (!g.lost_pending)
		return;
	l = bpf_ringbuf_reserve(&events, sizeof(*l), 0);
	if (!l)
		return;
	l->type = GT_REC_LOST;
	l->pad = 0;
	l->count = g.lost_pending;
	l->first_ns = g.lost_first_ns;
	l->last_ns = g.lost_last_ns;
	g.lost_pending = 0;
	bpf_ringbuf_submit(l, BPF_RB_NO_WAKEUP);
}

static __always_inline void emit_cycle(__u32 type, __u32 tid, __u64 begin,
				       __u64 held, __u64 release, __u32 flags,
				       __u64 wait_stack, __u64 hold_stack)
{
	struct gt_rec_cycle *r;

	flush_lost();
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&g.records_lost, 1);
		if (!g.lost_pending)
			g.lost_first_ns = release;
		g.lost_last_ns = release;
		g.lost_pending++;
		return;
	}
	r->type = type;
	r->tid = tid;
	r->wait_begin_ns = begin;
	r->held_ns = held;
	r->release_ns = release;
	r->cpu = bpf_get_smp_processor_id();
	r->flags = flags;
	r->wait_stack = wait_stack;
	r->hold_stack = hold_stack;
	/* No wake-up per record: the collector polls. A wake-up only when
	 * the buffer is getting full, so that nothing is lost. */
	bpf_ringbuf_submit(r, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
			      bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2 ?
			      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void emit_hold_stack(__u32 tid, __u64 release, __u64 stack)
{
	struct gt_rec_hold_stack *r;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&g.records_lost, 1);
		return;
	}
	r->type = GT_REC_HOLD_STACK;
	r->tid = tid;
	r->release_ns = release;
	r->stack = stack;
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

static __always_inline __u64 tstate_arg(struct pt_regs *ctx, __u64 cookie)
{
	/* Read all three first: the verifier refuses a ctx pointer the
	 * compiler would otherwise offset by a variable amount. */
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx),
	      a3 = PT_REGS_PARM3(ctx);

	asm volatile("" : "+r"(a1), "+r"(a2), "+r"(a3));
	switch (cookie & GT_COOKIE_TSTATE_ARG_MASK) {
	case 1: return a1;
	case 2: return a2;
	case 3: return a3;
	default: return 0;
	}
}

/*
 * The thread is inside take_gil but its entry was not seen: it entered
 * before tracing was ready (the wait is counted from the start of
 * tracing), or, born after that, its entry was lost because the map was
 * full (the wait's start is unknown and the wait is not counted).
 */
static __always_inline void unseen_wait(struct gt_thread *t, __u64 now)
{
	t->state = GT_WAITING;
	if (born_after_t0()) {
		t->since_ns = now;
		t->wait_begin_ns = 0;
		t->cyc_flags = GT_CYC_PARTIAL;
	} else {
		t->since_ns = t0_ns;
		t->wait_begin_ns = t0_ns;
		t->cyc_flags = GT_CYC_CLIPPED;
		t->waits_clipped++;
	}
}

/* ---- --stacks ---------------------------------------------------------- */

static __always_inline __u64 buf_u64(const __u8 *b, __u32 off)
{
	if (off > GT_FRAME_BUF - 8)
		return 0;
	return *(const __u64 *)(b + off);
}

static __always_inline __u32 buf_u32(const __u8 *b, __u32 off)
{
	if (off > GT_FRAME_BUF - 4)
		return 0;
	return *(const __u32 *)(b + off);
}

/*
 * --native: the user registers at the probe, in DWARF order, and the user
 * stack from rsp: up to the end of its page, then one more page when it
 * is mapped (a main thread's stack may end within 8 KiB of rsp).
 */
static __always_inline void native_regs(struct gt_native *n, struct pt_regs *r)
{
	__u64 sp = PT_REGS_SP(r);
	__u32 first = 4096 - (sp & 4095);

	n->regs[0] = r->ax;  n->regs[1] = r->dx;  n->regs[2] = r->cx;
	n->regs[3] = r->bx;  n->regs[4] = r->si;  n->regs[5] = r->di;
	n->regs[6] = r->bp;  n->regs[7] = sp;     n->regs[8] = r->r8;
	n->regs[9] = r->r9;  n->regs[10] = r->r10; n->regs[11] = r->r11;
	n->regs[12] = r->r12; n->regs[13] = r->r13; n->regs[14] = r->r14;
	n->regs[15] = r->r15; n->regs[16] = r->ip;
	n->pad = 0;
	n->stack_len = 0;
	if (first > 4096)
		return;
	if (bpf_probe_read_user(n->stack, first, (void *)sp))
		return;
	n->stack_len = first;
	if (!bpf_probe_read_user(n->stack + first, 4096, (void *)(sp + first)))
		n->stack_len = first + 4096;
}

/* bpf_loop callback: the co_name token of frame @i of the stack being
 * sent (the per-CPU scratch's: bpf_loop's context must be on the stack). */
static long name_one(__u32 i, void *data)
{
	struct walk_scratch *w;
	struct gt_stack *s;
	__u32 zero = 0;
	__u64 code;

	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!w)
		return 1;
	s = &w->s;
	if (i >= s->depth)
		return 1;
	/* Keep the mask the compiler would prove away: the verifier needs it. */
	asm volatile("" : "+r"(i));
	i &= GT_STACK_MAX - 1;
	code = s->frames[i].code;
	if (!code || pyl.co_name == GT_PY_NONE ||
	    bpf_probe_read_user(&s->co_name[i], sizeof(__u64),
				(void *)(code + pyl.co_name)))
		s->co_name[i] = 0;
	return 0;
}

/* Send stack @s to userspace unless it was sent already; with --native
 * and user registers @ur, what its native frames need too. */
static __always_inline void send_stack(struct gt_stack *s, struct pt_regs *ur,
				       __u64 *seq, __u64 mine)
{
	bool native = capture_native && ur;
	struct gt_rec_stack *r;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&stacks_seen, &s->id))
		return;
	/* New stacks only (@s is the scratch's): one read a frame, to tell
	 * code objects apart. */
	bpf_loop(GT_STACK_MAX, name_one, &one, 0);
	/* gt_rec_stack_native begins as gt_rec_stack does. */
	r = native ? bpf_ringbuf_reserve(&events, sizeof(struct gt_rec_stack_native), 0) :
		     bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&g.stacks_lost, 1);
		return;
	}
	r->type = native ? GT_REC_STACK_NATIVE : GT_REC_STACK;
	r->pad = 0;
	bpf_probe_read_kernel(&r->s, sizeof(r->s), s);
	if (*(volatile __u64 *)seq != mine) {
		/* Another walk used the scratch meanwhile: the frames may be
		 * its. The next occurrence of this stack sends it. */
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		__sync_fetch_and_add(&g.stacks_lost, 1);
		return;
	}
	if (native)
		native_regs(&((struct gt_rec_stack_native *)r)->n, ur);
	/* Woken now: userspace must name the frames while the process still
	 * has the code objects. New stacks are rare. */
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	bpf_map_update_elem(&stacks_seen, &s->id, &one, BPF_ANY);
}

/* The walk in progress (bpf_loop's context). One bpf_probe_read_user a
 * frame: reading 2 KiB of 3.11+'s data stack at once to get several frames
 * cost more (3 us against 1.1 us a walk: copies from user memory cost
 * about 1 ns a byte here). */
struct walk_ctx {
	__u64 f;     /* the next frame to read, 0 at the end */
	__u64 h;     /* hash so far */
	__u32 depth;
	__u32 flags;
};

/* One frame of the walk (bpf_loop callback: the verifier checks the body
 * once instead of once per iteration). Returns 1 to stop. */
static long walk_one(__u32 i, void *data)
{
	struct walk_ctx *c = data;
	struct walk_scratch *w;
	__u32 zero = 0, span = pyl.fr_span, d;
	__u64 code, pos, back;

	if (!c->f)
		return 1;
	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!w)
		return 1;
	if (span == 0 || span > GT_FRAME_BUF ||
	    bpf_probe_read_user(w->fbuf, span, (void *)c->f)) {
		c->flags |= GT_STK_UNREADABLE;
		c->f = 0;
		return 1;
	}
	back = buf_u64(w->fbuf, pyl.fr_back);
	if (pyl.fr_owner < GT_FRAME_BUF &&
	    w->fbuf[pyl.fr_owner & (GT_FRAME_BUF - 1)] == pyl.fr_owner_skip) {
		c->f = back; /* a shim frame of the C stack (3.12+) */
		return 0;
	}
	d = c->depth;
	if (d >= GT_STACK_MAX)
		return 1; /* c->f still set: truncated */
	code = buf_u64(w->fbuf, pyl.fr_code) & pyl.fr_code_mask;
	pos = pyl.fr_instr_size == 4 ? buf_u32(w->fbuf, pyl.fr_instr) :
				       buf_u64(w->fbuf, pyl.fr_instr);
	w->s.frames[d & (GT_STACK_MAX - 1)].code = code;
	w->s.frames[d & (GT_STACK_MAX - 1)].pos = pos;
	c->h = gt_hash_frame(c->h, code, pos);
	c->depth = d + 1;
	c->f = back;
	return 0;
}

/*
 * The Python stack of thread state @tstate (struct gt_py_frame_layout
 * says how to walk it), as a stack id; the stack itself goes to userspace
 * the first time it is seen. Innermost frame first; C-stack shim frames
 * (3.12+) skipped. Consistent only while the thread runs no Python code,
 * or is the current thread.
 */
static __always_inline __u64 walk_stack(__u64 tstate, struct pt_regs *ur,
					 __u64 known)
{
	struct walk_ctx c = { .f = tstate, .h = GT_FNV_OFFSET };
	struct walk_scratch *w;
	__u32 zero = 0;
	__u64 id, mine;

	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!w)
		return 0;
	mine = ++w->seq;
	if (!tstate) {
		c.flags = GT_STK_NO_TSTATE;
	}
	for (int i = 0; i < GT_PY_TS_PATH_MAX && c.f; i++) {
		if (i >= pyl.ts_frame_nderef)
			break;
		if (bpf_probe_read_user(&c.f, sizeof(c.f),
					(void *)(c.f + pyl.ts_frame_off[i & 1]))) {
			c.flags |= GT_STK_UNREADABLE;
			c.f = 0;
		}
	}
	/* Up to 16 shim frames beyond the frames kept. */
	bpf_loop(GT_STACK_MAX + 16, walk_one, &c, 0);
	if (c.f)
		c.flags |= GT_STK_TRUNCATED;
	if (capture_native && ur) {
		/* --native: a stack's native frames are those of its first
		 * occurrence; the caller of take_gil (the return address at
		 * the entry's rsp) keeps different C paths apart, e.g. a new
		 * thread's first take_gil from the interpreter's own. */
		__u64 ra = 0;

		bpf_probe_read_user(&ra, sizeof(ra), (void *)PT_REGS_SP(ur));
		c.h = gt_hash_frame(c.h, ra, 0);
	}
	if (*(volatile __u64 *)&w->seq != mine) {
		/* Preempted, and the scratch reused: what was read may be
		 * another walk's. Unknown rather than wrong. */
		__sync_fetch_and_add(&g.walks_interrupted, 1);
		return 0;
	}
	id = gt_hash_end(c.h, c.flags, c.depth);
	w->s.id = id;
	w->s.depth = c.depth;
	w->s.flags = c.flags;
	/* The same stack as the thread's last: sent already (no lookup). */
	if (id != known)
		send_stack(&w->s, ur, &w->seq, mine);
	return id;
}

/* Add @ns to the thread's weight of @kind at @stack: one interval when
 * @cnt is 1, or a sample of one (0). */
static __always_inline void add_weight_n(struct gt_thread *t, __u32 kind,
					 __u64 stack, __u64 ns, __u64 cnt)
{
	struct gt_stack_key k = {
		.tid = t->tid,
		.kind = kind,
		.first_seen_ns = t->first_seen_ns,
		.stack_id = stack,
	};
	struct gt_stack_val *v, nv = { cnt, ns };

	v = bpf_map_lookup_elem(&stack_weights, &k);
	if (!v) {
		if (!bpf_map_update_elem(&stack_weights, &k, &nv, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&stack_weights, &k);
		if (!v) {
			__sync_fetch_and_add(&g.stack_weights_lost, 1);
			return;
		}
	}
	/* Atomic: a holder sample may come from another CPU. */
	if (cnt)
		__sync_fetch_and_add(&v->count, cnt);
	__sync_fetch_and_add(&v->ns, ns);
}

/*
 * The same through the thread's accumulator: only a change of stack costs
 * a map update. Only the thread itself (its probes, its samples, its
 * exit) calls this, and BPF programs do not nest on a CPU, so the
 * accumulator needs no atomics.
 */
static __always_inline void acc_weight(struct gt_thread *t, __u32 kind,
				       __u64 stack, __u64 ns, __u32 cnt)
{
	__u32 k = kind & 1;

	if ((t->acc_used & (1u << k)) && t->acc_stack[k] == stack) {
		t->acc_ns[k] += ns;
		t->acc_cnt[k] += cnt;
		return;
	}
	if (t->acc_used & (1u << k))
		add_weight_n(t, k, t->acc_stack[k], t->acc_ns[k], t->acc_cnt[k]);
	t->acc_stack[k] = stack;
	t->acc_ns[k] = ns;
	t->acc_cnt[k] = cnt;
	t->acc_used |= 1u << k;
}

static __always_inline void add_weight(struct gt_thread *t, __u32 kind,
				       __u64 stack, __u64 ns)
{
	acc_weight(t, kind, stack, ns, 1);
}

/*
 * take_gil entry, --stacks: one walk gives two stacks. No Python code runs
 * between drop_gil and take_gil, so the stack now is both this wait's and
 * the one the thread released the GIL with, whose hold drop_enter left
 * pending: walking here, where the thread holds nothing, keeps the walk
 * off the GIL's critical path (at drop_gil entry it delays every waiter:
 * measured 2.8x the cost on the I/O-heavy benchmark). A changed thread
 * state (3.12+ can swap them) gets its own walk.
 */
static __always_inline void stacks_at_take(struct gt_thread *t, __u64 ts,
					   struct pt_regs *ur)
{
	__u64 stack = walk_stack(ts ?: t->tstate, ur, (t->acc_used & 1) ?
				  t->acc_stack[GT_W_WAIT] : 0);

	if (t->pending_hold_ns) {
		__u64 hs = !t->pending_tstate || !ts || ts == t->pending_tstate ?
			   stack : walk_stack(t->pending_tstate, NULL, 0);

		add_weight(t, GT_W_HOLD, hs, t->pending_hold_ns);
		t->pending_hold_ns = 0;
	}
	t->wait_stack = stack;
}

/* The thread state that holds the GIL now (gil->last_holder), 0 unknown. */
static __always_inline __u64 gil_holder_tstate(void)
{
	__u64 p, holder = 0;

	if (!gil_base(&p) || bpf_probe_read_user(&holder, sizeof(holder),
						 (void *)(p + gil_ref.holder_off)))
		return 0;
	return holder;
}

/*
 * drop_gil entry, --stacks: the wait that ended at @acq (from @begin, 0
 * when not counted) goes to the wait's stack; the hold, from @acq or the
 * last holder sample if later, waits for its stack, which the thread's
 * next take_gil walks (stacks_at_take).
 */
static __always_inline void stacks_at_drop(struct gt_thread *t, __u64 begin,
					   __u64 acq, __u64 now)
{
	__u64 hold = now > acq ? now - acq : 0;

	if (begin)
		add_weight(t, GT_W_WAIT, t->wait_stack, acq > begin ? acq - begin : 0);
	t->pending_hold_ns += hold > t->sampled_ns ? hold - t->sampled_ns : 0;
	t->pending_tstate = t->tstate ?: gil_holder_tstate();
	t->pending_release_ns = now;
	t->hold_mark_ns = 0;
	t->sampled_ns = 0;
	t->sample_stack = 0;
}

SEC("uprobe")
int take_enter(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u64 now, ts;
	__u32 tid;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	busy_begin(t);
	if (t->state == GT_HOLDING) {
		/* take_gil while holding: a release site we do not probe. */
		t->inconsistent++;
		dist_add(&t->hold, now - t->since_ns);
		/* Its weight and samples too, as a release would. */
		if (capture_stacks)
			stacks_at_drop(t, 0, t->since_ns, now);
	}
	t->state = GT_WAITING;
	t->since_ns = now;
	t->wait_begin_ns = now;
	t->woke_ns = 0;
	t->cyc_flags = 0;
	ts = tstate_arg(ctx, bpf_get_attach_cookie(ctx));
	if (capture_stacks)
		stacks_at_take(t, ts, ctx);
	if (ts)
		t->tstate = ts;
	busy_end(t);
	return 0;
}

SEC("uprobe")
int wait_wake(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u64 now;
	__u32 tid;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	busy_begin(t);
	if (t->state != GT_WAITING)
		unseen_wait(t, now);
	t->woke_ns = now;
	busy_end(t);
	return 0;
}

/* Attached as a uretprobe on take_gil where no wake point is known. */
SEC("uprobe")
int gil_held(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u64 now;
	__u32 tid;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	if (t->state == GT_HOLDING) {
		t->inconsistent++;
		return 0;
	}
	busy_begin(t);
	if (t->state != GT_WAITING)
		unseen_wait(t, now);
	acquired(t, tid, t->wait_begin_ns, now);
	busy_end(t);
	return 0;
}

/* drop_gil entry: thread @t (@tid) releases the GIL at @now. */
static __always_inline void released(struct gt_thread *t, __u32 tid, __u64 now)
{
	__u64 acq, begin, last;
	__u32 flags;

	last = g.last_release_ns;
	flags = t->cyc_flags;
	switch (t->state) {
	case GT_HOLDING:
		/* Seen taking it (uretprobe). */
		begin = t->wait_begin_ns;
		acq = t->since_ns;
		break;
	case GT_WAITING:
		begin = t->since_ns;
		if (t->woke_ns)
			acq = t->woke_ns;     /* blocked: its last wake */
		else
			acq = last > begin ? last : begin;
		if (flags & GT_CYC_PARTIAL)
			begin = 0;
		acquired(t, tid, begin, acq);
		break;
	default:
		if (t->state == GT_UNKNOWN && born_after_t0()) {
			/* Its earlier events were lost (map full): this
			 * cycle cannot be told; follow from here on. */
			t->state = GT_RUNNING;
			t->since_ns = now;
			t->wait_begin_ns = 0;
			t->woke_ns = 0;
			t->cyc_flags = 0;
			g.last_release_ns = now;
			g.last_holder_tid = tid;
			return;
		}
		if (t->state == GT_RUNNING)
			t->inconsistent++;
		flags |= GT_CYC_INFERRED;
		if (last > t0_ns) {
			/* Waited in take_gil since before tracing began. */
			begin = t0_ns;
			acq = last;
			t->waits_clipped++;
			flags |= GT_CYC_CLIPPED;
		} else {
			/* Held the GIL when tracing began. */
			begin = 0;
			acq = t0_ns;
			flags |= GT_CYC_AT_START;
		}
		acquired(t, tid, begin, acq);
		break;
	}
	dist_add(&t->hold, now > acq ? now - acq : 0);
	if (capture_stacks)
		stacks_at_drop(t, begin, acq, now);
	/* The hold's stack is the next cycle's wait stack (stacks_at_take). */
	if (emit_cycles)
		emit_cycle(GT_REC_CYCLE, tid, begin ? begin : acq, acq, now, flags,
			   t->wait_stack, 0);
	t->state = GT_RUNNING;
	t->since_ns = now;
	t->wait_begin_ns = 0;
	t->woke_ns = 0;
	t->cyc_flags = 0;
	t->wait_stack = 0;
	g.last_release_ns = now;
	g.last_holder_tid = tid;
	return;
}

SEC("uprobe")
int drop_enter(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u32 tid;
	__u64 now;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	busy_begin(t);
	released(t, tid, now);
	busy_end(t);
	return 0;
}

/* Whether the GIL is held by @tstate now, from the GIL's own fields:
 * 1 yes, 0 no, -1 unknown. */
static __always_inline int gil_held_by(__u64 tstate)
{
	__u64 p, holder = 0;
	int locked = 0;

	if (!tstate || !gil_base(&p))
		return -1;
	if (bpf_probe_read_user(&locked, sizeof(locked),
				(void *)(p + gil_ref.locked_off)) ||
	    bpf_probe_read_user(&holder, sizeof(holder),
				(void *)(p + gil_ref.holder_off)))
		return -1;
	return locked == 1 && holder == tstate;
}

/*
 * --stacks: a CPU-clock sample on every CPU (--sample-hz). When it lands
 * on a thread of the target that holds the GIL, the hold so far (since its
 * acquisition or the previous sample) goes to the stack it runs now, so a
 * long hold shows where it was spent, not only where it ended. A holder
 * that sleeps with the GIL held is not on a CPU: the release attributes it.
 */
SEC("perf_event")
int sample_holder(void *ctx)
{
	__u64 now, acq, from, last;
	struct gt_thread *t;
	__u32 tid;
	__u64 stack;

	t = this_thread_lookup(&tid, &now);
	if (!t)
		return 0;
	if (*(volatile __u32 *)&t->busy) {
		/* In one of its probes, which may be changing the figures
		 * this reads: the next sample takes the time. */
		__sync_fetch_and_add(&g.samples_skipped, 1);
		return 0;
	}
	last = g.last_release_ns;
	if (t->state == GT_HOLDING) {
		acq = t->since_ns;
	} else if (t->state == GT_WAITING && gil_held_by(t->tstate) == 1) {
		/* Took the GIL; the acquisition is resolved at release as
		 * drop_enter does. */
		acq = t->woke_ns ? t->woke_ns :
		      last > t->since_ns ? last : t->since_ns;
	} else {
		return 0;
	}
	stack = walk_stack(t->tstate, NULL, t->sample_stack);
	from = t->hold_mark_ns > acq ? t->hold_mark_ns : acq;
	if (now > from) {
		acc_weight(t, GT_W_HOLD, stack, now - from, 0);
		t->sampled_ns += now - from;
	}
	t->hold_mark_ns = now;
	t->sample_stack = stack;
	__sync_fetch_and_add(&g.samples, 1);
	return 0;
}

/* ---- --mode contention ------------------------------------------------ */

/* The TID of thread state @ts, 0 unknown (see struct gt_gil_ref). */
static __always_inline __u32 tstate_tid(__u64 ts)
{
	__u64 v = 0;
	__s32 tid = 0;

	if (!ts)
		return 0;
	if (gil_ref.ts_native_tid_off) {
		if (bpf_probe_read_user(&v, sizeof(v),
					(void *)(ts + gil_ref.ts_native_tid_off)))
			return 0;
		return (__u32)v;
	}
	if (!gil_ref.ts_thread_id_off || gil_ref.pthread_tid_off < 0 ||
	    bpf_probe_read_user(&v, sizeof(v),
				(void *)(ts + gil_ref.ts_thread_id_off)) || !v ||
	    bpf_probe_read_user(&tid, sizeof(tid),
				(void *)(v + gil_ref.pthread_tid_off)))
		return 0;
	return tid > 0 ? (__u32)tid : 0;
}

/* The GIL now: *locked (1 held, 0 free, -1 unknown) and its holder's TID. */
static __always_inline __u32 gil_now(int *locked)
{
	__u64 p, holder = 0;

	*locked = -1;
	if (!gil_base(&p) || bpf_probe_read_user(locked, sizeof(*locked),
				      (void *)(p + gil_ref.locked_off)) ||
	    bpf_probe_read_user(&holder, sizeof(holder),
				(void *)(p + gil_ref.holder_off)))
		return 0;
	return tstate_tid(holder);
}

static __always_inline void blocked_add(__u32 waiter, __u32 holder, __u64 ns)
{
	struct gt_blocked_key k = { .waiter = waiter, .holder = holder };
	struct gt_blocked_val *v, nv = { ns, 1 };

	v = bpf_map_lookup_elem(&blocked_by, &k);
	if (v) {
		v->ns += ns; /* only the waiter itself writes its keys */
		v->count++;
		return;
	}
	if (bpf_map_update_elem(&blocked_by, &k, &nv, BPF_NOEXIST))
		__sync_fetch_and_add(&g.dropped_events, 1);
}

/*
 * take_gil's call to the condition variable's timed wait: the thread
 * found the GIL held and blocks. The first block of a take_gil call begins
 * its wait; each block remembers who held the GIL then. Only threads
 * that block ever reach this: acquisitions that find the GIL free cost
 * nothing. (Python/ceval_gil.h 3.6-3.11, ceval_gil.c 3.12-3.13: `while
 * (locked) COND_TIMED_WAIT(...)`, entered with gil->mutex held.)
 */
SEC("uprobe")
int c_block(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u64 now;
	__u32 tid;
	int locked;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	if (t->state != GT_WAITING) {
		t->state = GT_WAITING;
		t->since_ns = now;
		t->wait_begin_ns = now;
		t->cyc_flags = 0;
	}
	t->block_ns = now;
	t->block_holder = gil_now(&locked);
	return 0;
}

/*
 * The timed wait returned (with gil->mutex held again, so `locked` cannot
 * change under us): the thread takes the GIL now if it is free, else it
 * blocks again.
 */
SEC("uprobe")
int c_wake(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u64 now, from;
	__u32 tid;
	int locked;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	if (t->state != GT_WAITING) {
		/* Blocked since before tracing began. */
		t->state = GT_WAITING;
		t->since_ns = t->wait_begin_ns = t0_ns;
		t->cyc_flags = GT_CYC_CLIPPED;
		t->waits_clipped++;
		t->block_ns = t0_ns;
		t->block_holder = 0;
	}
	from = t->block_ns ? t->block_ns : t->since_ns;
	blocked_add(tid, t->block_holder, now > from ? now - from : 0);
	t->block_ns = 0;
	gil_now(&locked);
	if (locked != 0)
		return 0; /* still held (or unknown): it waits on */
	dist_add(&t->wait, now - t->wait_begin_ns);
	t->acquisitions++;
	__sync_fetch_and_add(&g.acquisitions, 1);
	if (emit_cycles)
		emit_cycle(GT_REC_CYCLE, tid, t->wait_begin_ns, now, now,
			   t->cyc_flags, 0, 0);
	t->state = GT_RUNNING; /* holds, for a time this mode does not see */
	t->since_ns = now;
	t->wait_begin_ns = 0;
	t->cyc_flags = 0;
	return 0;
}

/*
 * --mode contention, CPU-clock samples on every CPU: when a thread of the
 * target runs, is the GIL held, and by this thread? Hold times are
 * estimated from these (samples x period): on-CPU holds only.
 */
SEC("perf_event")
int c_sample(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	struct gt_thread *t;
	__u32 tid = (__u32)id, holder;
	int locked;

	if (!ours(id))
		return 0;
	__sync_fetch_and_add(&g.gil_samples, 1);
	holder = gil_now(&locked);
	if (locked != 1)
		return 0;
	__sync_fetch_and_add(&g.gil_samples_locked, 1);
	if (holder != tid)
		return 0;
	t = this_thread(&tid, &now);
	if (t)
		t->hold_samples++;
	return 0;
}

/* A BTF-enabled raw tracepoint: attaching it needs no tracefs (which is
 * often not mounted), unlike SEC("tracepoint/..."). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid(), now, acq;
	__u32 tid = (__u32)id;
	struct gt_rec_thread_exit *rec;
	struct gt_thread *t;

	if ((__u32)(id >> 32) != targ_tgid)
		return 0;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t || t->state == GT_EXITED)
		return 0;
	busy_begin(t); /* raw tracepoints do not keep samples out either */
	now = bpf_ktime_get_ns();
	if (t->state == GT_WAITING) {
		/* Exiting inside take_gil (a daemon thread at interpreter
		 * exit), or exiting with the GIL taken but not yet released
		 * (the thread that ends the process): ask the GIL. */
		if (gil_held_by(t->tstate) == 1) {
			acq = t->woke_ns ? t->woke_ns : t->since_ns;
			if (g.last_release_ns > acq && !t->woke_ns)
				acq = g.last_release_ns;
			if (capture_stacks)
				add_weight(t, GT_W_WAIT, t->wait_stack,
					   acq - t->since_ns);
			acquired(t, tid, t->since_ns, acq);
		} else {
			t->waits_abandoned++;
			t->waits_abandoned_ns += now - t->since_ns;
			if (emit_cycles)
				emit_cycle(GT_REC_ABANDONED, tid, t->since_ns, now,
					   now, t->cyc_flags, t->wait_stack, 0);
		}
	}
	if (t->state == GT_HOLDING) {
		dist_add(&t->hold, now - t->since_ns);
		/* The thread state is gone: the stack is the last sample's,
		 * if any (0: unknown). */
		if (capture_stacks) {
			__u64 hold = now - t->since_ns;

			add_weight(t, GT_W_HOLD, t->sample_stack, hold > t->sampled_ns ?
				   hold - t->sampled_ns : 0);
			t->sampled_ns = 0;
		}
		if (emit_cycles)
			emit_cycle(GT_REC_CYCLE, tid, t->wait_begin_ns ?
				   t->wait_begin_ns : t->since_ns, t->since_ns,
				   now, t->cyc_flags, t->wait_stack, t->sample_stack);
	}
	if (capture_stacks && t->pending_hold_ns) {
		/* Its last release had no take_gil after it: walk now. */
		__u64 hs = walk_stack(t->pending_tstate, NULL, 0);

		add_weight(t, GT_W_HOLD, hs, t->pending_hold_ns);
		t->pending_hold_ns = 0;
		if (emit_cycles)
			emit_hold_stack(tid, t->pending_release_ns, hs);
	}
	t->exit_ns = now;
	bpf_get_current_comm(t->comm, sizeof(t->comm));

	t->state = GT_EXITED; /* samples ignore it from here */
	busy_end(t);
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		/* Keep the figures in the map; userspace drains GT_EXITED. */
		__sync_fetch_and_add(&g.exits_deferred, 1);
		return 0;
	}
	rec->type = GT_REC_THREAD_EXIT;
	rec->pad = 0;
	bpf_probe_read_kernel(&rec->thread, sizeof(rec->thread), t);
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	bpf_map_delete_elem(&threads, &tid);
	return 0;
}
