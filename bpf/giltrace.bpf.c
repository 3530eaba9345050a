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
				       __u64 held, __u64 release, __u32 flags)
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
	/* No wake-up per record: the collector polls. A wake-up only when
	 * the buffer is getting full, so that nothing is lost. */
	bpf_ringbuf_submit(r, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
			      bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2 ?
			      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
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

SEC("uprobe")
int take_enter(struct pt_regs *ctx)
{
	struct gt_thread *t;
	__u64 now;
	__u32 tid;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
	if (t->state == GT_HOLDING) {
		/* take_gil while holding: a release site we do not probe. */
		t->inconsistent++;
		dist_add(&t->hold, now - t->since_ns);
	}
	t->state = GT_WAITING;
	t->since_ns = now;
	t->wait_begin_ns = now;
	t->woke_ns = 0;
	t->cyc_flags = 0;
	t->tstate = tstate_arg(ctx, bpf_get_attach_cookie(ctx));
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
	if (t->state != GT_WAITING)
		unseen_wait(t, now);
	t->woke_ns = now;
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
	switch (t->state) {
	case GT_WAITING:
		break;
	case GT_HOLDING:
		t->inconsistent++;
		return 0;
	default:
		unseen_wait(t, now);
		break;
	}
	acquired(t, tid, t->wait_begin_ns, now);
	return 0;
}

SEC("uprobe")
int drop_enter(struct pt_regs *ctx)
{
	__u64 now, acq, begin, last;
	__u32 tid, flags;
	struct gt_thread *t;

	t = this_thread(&tid, &now);
	if (!t)
		return 0;
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
			return 0;
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
	if (emit_cycles)
		emit_cycle(GT_REC_CYCLE, tid, begin ? begin : acq, acq, now, flags);
	t->state = GT_RUNNING;
	t->since_ns = now;
	t->wait_begin_ns = 0;
	t->woke_ns = 0;
	t->cyc_flags = 0;
	g.last_release_ns = now;
	g.last_holder_tid = tid;
	return 0;
}

/* Whether the GIL is held by @tstate now, from the GIL's own fields:
 * 1 yes, 0 no, -1 unknown. */
static __always_inline int gil_held_by(__u64 tstate)
{
	__u64 p = gil_ref.base, holder = 0;
	int locked = 0;

	if (!tstate || (!gil_ref.base && !gil_ref.locked_off))
		return -1;
	for (int i = 0; i < 2; i++) {
		if (i >= gil_ref.nderef)
			break;
		if (bpf_probe_read_user(&p, sizeof(p), (void *)p) || !p)
			return -1;
		p += gil_ref.off[i & 1];
	}
	if (bpf_probe_read_user(&locked, sizeof(locked),
				(void *)(p + gil_ref.locked_off)) ||
	    bpf_probe_read_user(&holder, sizeof(holder),
				(void *)(p + gil_ref.holder_off)))
		return -1;
	return locked == 1 && holder == tstate;
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
	if (!t)
		return 0;
	now = bpf_ktime_get_ns();
	if (t->state == GT_WAITING) {
		/* Exiting inside take_gil (a daemon thread at interpreter
		 * exit), or exiting with the GIL taken but not yet released
		 * (the thread that ends the process): ask the GIL. */
		if (gil_held_by(t->tstate) == 1) {
			acq = t->woke_ns ? t->woke_ns : t->since_ns;
			if (g.last_release_ns > acq && !t->woke_ns)
				acq = g.last_release_ns;
			acquired(t, tid, t->since_ns, acq);
		} else {
			t->waits_abandoned++;
			t->waits_abandoned_ns += now - t->since_ns;
			if (emit_cycles)
				emit_cycle(GT_REC_ABANDONED, tid, t->since_ns, now,
					   now, t->cyc_flags);
		}
	}
	if (t->state == GT_HOLDING) {
		dist_add(&t->hold, now - t->since_ns);
		if (emit_cycles)
			emit_cycle(GT_REC_CYCLE, tid, t->wait_begin_ns ?
				   t->wait_begin_ns : t->since_ns, t->since_ns,
				   now, t->cyc_flags);
	}
	t->exit_ns = now;
	bpf_get_current_comm(t->comm, sizeof(t->comm));

	t->state = GT_EXITED;
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
