/* SPDX-License-Identifier: MIT */
/*
 * timeline: the event-level side of the trace model, built from the
 * GT_REC_CYCLE / GT_REC_ABANDONED / GT_REC_LOST records of a trace (read
 * back from the trace file) and the closed aggregate model of the same
 * trace. Every view that shows time (terminal timeline, Perfetto, HTML,
 * who-blocks-whom) reads this.
 *
 * Per thread: the sequence of GIL cycles (wait, then hold) in time order;
 * between cycles the thread runs without the GIL. For every wait, the
 * holders it waited behind: a wait is split by overlap with the holds of
 * other threads; the parts when nobody held the GIL (hand-off latency) go
 * to holder 0 ("null" in JSON), so each thread's parts sum to its wait.
 */
#ifndef GILTRACE_TIMELINE_H
#define GILTRACE_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct model;
struct trace_reader;

struct tl_cycle {
	uint64_t wait_begin; /* == held when it did not wait */
	uint64_t held;       /* GIL held from here */
	uint64_t release;    /* to here (drop_gil entry) */
	uint32_t cpu;
	uint32_t flags;      /* GT_CYC_*, plus TL_OPEN_* below */
	uint64_t wait_stack; /* stack ids (model_stacks__find), 0 none: the */
	uint64_t hold_stack; /* wait's, and the one at the release */
};

/* The cycle is still open when tracing ended (from the aggregate model's
 * per-thread state): release = the end of the trace. */
#define TL_OPEN_HOLD 0x100
/* A wait still open at the end: held = release = the end of the trace. */
#define TL_OPEN_WAIT 0x200
/* A wait ended by the thread's exit (GT_REC_ABANDONED). */
#define TL_ABANDONED 0x400

struct tl_thread {
	uint32_t tid;
	char name[64];
	struct tl_cycle *cycles; /* time order */
	size_t ncycles;
	uint64_t hold_ns, wait_ns; /* sums over cycles (must equal the model's) */
};

struct tl_blocked {
	uint32_t waiter;
	uint32_t holder; /* 0: nobody held the GIL (hand-off latency) */
	uint64_t wait_ns;
	uint64_t count;  /* waits of @waiter that overlapped @holder at all */
};

struct tl_span {
	uint64_t begin, end;
	uint64_t count;
};

struct timeline {
	uint64_t t0, t_end;
	struct tl_thread *threads;
	size_t nthreads;
	struct tl_blocked *blocked; /* sorted by waiter, then wait_ns desc */
	size_t nblocked;
	struct tl_span *lost;       /* ranges with records lost in the kernel */
	size_t nlost;
	uint64_t lost_records;
	bool truncated;             /* more than max_cycles: views show the first ones */
	size_t max_cycles;
	uint64_t holder_switches;   /* recomputed from the cycles */
};

/*
 * Build from the records of @r and the closed aggregate model @m (for
 * t0/t_end, thread names and open intervals at the end). At most
 * @max_cycles cycles are kept in memory (0: a default of 4,000,000);
 * beyond that `truncated` is set. Returns 0 or a negative errno with @err.
 */
int timeline__build(struct timeline *tl, struct trace_reader *r,
		    const struct model *m, size_t max_cycles, char *err,
		    size_t errlen);
void timeline__free(struct timeline *tl);

/* Threads waiting at time @ts (for counters); linear, for tests. */
int timeline__waiting_at(const struct timeline *tl, uint64_t ts);

#endif
