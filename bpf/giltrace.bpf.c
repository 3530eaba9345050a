// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * giltrace.bpf.c - exact GIL wait and hold per thread, aggregated in the
 * kernel.
 *
 * Three probe kinds share one per-thread state machine (enum gt_state):
 *   take_enter  take_gil entry                  -> WAITING (a wait begins)
 *   gil_held    take_gil return (or a point     -> HOLDING (wait ends, hold begins)
 *               after the GIL is taken)
 *   drop_enter  drop_gil entry, every copy and  -> RUNNING (hold ends)
 *               every inlined instance
 * plus sched_process_exit, which hands an exiting thread's figures to
 * userspace over the ring buffer and frees its slot.
 *
 * Transitions the probes did not see are inferred from the fact that the
 * GIL is exclusive: a thread that releases the GIL without having been seen
 * taking it took it no earlier than the last release by anyone (or, when
 * nobody released since tracing began, held it at that moment). This covers
 * the thread holding the GIL at attach, threads waiting in take_gil at
 * attach (their uretprobe was never armed), and 3.9+'s take_gil, which on
 * finalization calls drop_gil and exits the thread without returning.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "giltrace.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u32 targ_tgid = 0;

/* Set by userspace once every probe is attached (retsnoop's pattern):
 * nothing is recorded from a half-attached session. */
volatile __u32 ready = 0;
volatile __u64 t0_ns = 0; /* tracing began (CLOCK_MONOTONIC) */

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

/* The thread has come to hold the GIL at @at. */
static __always_inline void acquired(struct gt_thread *t, __u32 tid, __u64 at)
{
	__u32 last = g.last_holder_tid;

	t->state = GT_HOLDING;
	t->since_ns = at;
	t->acquisitions++;
	__sync_fetch_and_add(&g.acquisitions, 1);
	if (last && last != tid)
		__sync_fetch_and_add(&g.holder_switches, 1);
	g.last_holder_tid = tid;
}

SEC("uprobe")
int take_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	struct gt_thread *t;

	if (!ours(id))
		return 0;
	now = bpf_ktime_get_ns();
	t = thread_get((__u32)id, now);
	if (!t)
		return 0;
	if (t->state == GT_HOLDING) {
		/* take_gil while holding: a release site we do not probe. */
		t->inconsistent++;
		dist_add(&t->hold, now - t->since_ns);
	}
	t->state = GT_WAITING;
	t->since_ns = now;
	return 0;
}

/* Attached as a uretprobe on take_gil, or as a uprobe at an instruction
 * inside take_gil that runs only once the GIL is held. */
SEC("uprobe")
int gil_held(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 tid = (__u32)id;
	struct gt_thread *t;

	if (!ours(id))
		return 0;
	now = bpf_ktime_get_ns();
	t = thread_get(tid, now);
	if (!t)
		return 0;
	switch (t->state) {
	case GT_WAITING:
		dist_add(&t->wait, now - t->since_ns);
		break;
	case GT_HOLDING:
		t->inconsistent++;
		return 0;
	default:
		/* Entered take_gil before tracing was ready: clipped wait. */
		t->waits_clipped++;
		dist_add(&t->wait, now > t0_ns ? now - t0_ns : 0);
		break;
	}
	acquired(t, tid, now);
	return 0;
}

SEC("uprobe")
int drop_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now, acq, last;
	__u32 tid = (__u32)id;
	struct gt_thread *t;

	if (!ours(id))
		return 0;
	now = bpf_ktime_get_ns();
	t = thread_get(tid, now);
	if (!t)
		return 0;
	last = g.last_release_ns;
	switch (t->state) {
	case GT_HOLDING:
		dist_add(&t->hold, now - t->since_ns);
		break;
	case GT_WAITING:
		/* Took the GIL inside take_gil and releases it before
		 * returning (3.9+: the thread is told to exit). */
		acq = last > t->since_ns ? last : t->since_ns;
		dist_add(&t->wait, acq - t->since_ns);
		acquired(t, tid, acq);
		dist_add(&t->hold, now - acq);
		break;
	default:
		if (t->state == GT_RUNNING)
			t->inconsistent++;
		if (last > t0_ns) {
			/* Waited in take_gil since before tracing began. */
			acq = last;
			t->waits_clipped++;
			dist_add(&t->wait, acq - t0_ns);
		} else {
			/* Held the GIL when tracing began. */
			acq = t0_ns;
		}
		acquired(t, tid, acq);
		dist_add(&t->hold, now > acq ? now - acq : 0);
		break;
	}
	t->state = GT_RUNNING;
	t->since_ns = now;
	g.last_release_ns = now;
	g.last_holder_tid = tid;
	return 0;
}

/* A BTF-enabled raw tracepoint: attaching it needs no tracefs (which is
 * often not mounted), unlike SEC("tracepoint/..."). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
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
		t->waits_abandoned++;
		t->waits_abandoned_ns += now - t->since_ns;
	} else if (t->state == GT_HOLDING) {
		dist_add(&t->hold, now - t->since_ns);
	}
	t->exit_ns = now;
	bpf_get_current_comm(t->comm, sizeof(t->comm));

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		/* Keep the figures in the map; userspace drains GT_EXITED. */
		t->state = GT_EXITED;
		__sync_fetch_and_add(&g.exits_deferred, 1);
		return 0;
	}
	rec->type = GT_REC_THREAD_EXIT;
	rec->pad = 0;
	t->state = GT_EXITED;
	bpf_probe_read_kernel(&rec->thread, sizeof(rec->thread), t);
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	bpf_map_delete_elem(&threads, &tid);
	return 0;
}
