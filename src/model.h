/* SPDX-License-Identifier: MIT */
/*
 * model: the one trace model every renderer reads. The collector fills it
 * from the kernel's per-thread figures (struct gt_thread); renderers
 * (report_text, report_json, ...) only read it.
 */
#ifndef GILTRACE_MODEL_H
#define GILTRACE_MODEL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "giltrace.h"

struct model_probe {
	char function[16];   /* "take_gil" / "drop_gil" */
	char symbol[128];    /* ELF symbol, or the function name for inlined */
	char file[PATH_MAX]; /* the ELF probed, as the target names it */
	uint64_t offset;     /* file offset */
	uint64_t address;    /* link-time virtual address in that ELF */
	char kind[16];       /* "uprobe", "uretprobe" */
	char role[16];       /* "wait_begin", "wake", "held", "hold_end" */
	bool inlined;
	char caller[128];    /* function an inlined instance is inlined into */
	uint64_t site_address; /* the function entry / inlined entry pc this
				  probe stands for (== address unless moved) */
	char insn[64];       /* the probed instruction, disassembled */
	bool emulated;       /* the kernel emulates it (cheap) */
};

struct model_thread {
	struct gt_thread k;  /* the kernel's figures (closed intervals) */
	char name[64];       /* comm, or the Python thread name where known */
	bool exited;         /* the thread exited while traced */
	uint64_t hold_ns;    /* k.hold.sum_ns + the hold still open at the end */
	uint64_t wait_ns;    /* k.wait.sum_ns + the wait still open at the end */
	uint64_t open_hold_ns, open_wait_ns;
};

struct model {
	/* target */
	pid_t pid;
	char exe[PATH_MAX];
	char library[PATH_MAX];   /* "" when the interpreter is the executable */
	char python_version[32];
	char mode[16];            /* "exact" or "contention" */
	uint32_t sample_hz;       /* contention: holds estimated from samples at this rate */
	struct model_probe *probes;
	size_t nprobes;

	/* time */
	uint64_t t0_ns, t_end_ns; /* CLOCK_MONOTONIC: probes live .. detach/exit */
	uint64_t switch_interval_ns; /* 0 when it could not be read */
	bool target_exited;       /* tracing ended with the target's exit */

	/* process-wide */
	uint64_t acquisitions, holder_switches;
	uint64_t dropped_events;  /* transitions lost: per-thread map full */
	uint64_t exits_deferred;

	struct model_thread *threads;
	size_t nthreads, cap;

	bool launch_mode;
	int exit_status;          /* launch mode: the command's status */

	/* Where threads waited and held (--stacks): NULL when stacks were not
	 * captured. Owned by the model. */
	struct model_stacks *stacks;
};

void model__init(struct model *m);
void model__free(struct model *m);

/* Add a probe description. Returns 0 or -ENOMEM. */
int model__add_probe(struct model *m, const struct model_probe *p);

/*
 * Add one thread's figures. A thread is identified by (tid,
 * first_seen_ns): a TID reused by a later thread is a new entry; adding the
 * same thread again replaces its figures. Returns the entry or NULL
 * (ENOMEM).
 */
struct model_thread *model__put_thread(struct model *m,
				       const struct gt_thread *k, bool exited);

/*
 * Close the model at @t_end_ns: figures of threads still waiting or holding
 * get their open interval up to the end added to wait_ns / hold_ns (not to
 * the distributions' counts). Call after the last model__put_thread.
 */
void model__close(struct model *m, uint64_t t_end_ns);

/* Interval traced, in ns. */
uint64_t model__interval_ns(const struct model *m);
/* Sum of every thread's hold_ns. */
uint64_t model__held_ns(const struct model *m);

/*
 * @cur minus @prev, thread by thread (both closed): the figures of one
 * reporting interval. max_ns of a distribution becomes the upper bound of
 * its highest non-empty bucket in the difference, capped by the cumulative
 * max. @out must be freed with model__free.
 */
int model__diff(const struct model *cur, const struct model *prev,
		struct model *out);

/* --mode contention: each thread's hold_ns estimated from its CPU-clock
 * samples (k.hold_samples at @hz per CPU); open_hold_ns 0. */
void model__estimate_holds(struct model *m, uint32_t hz);

/* Copy of @m (probes and threads duplicated; stacks are not copied: the
 * copy's stacks is NULL). */
int model__copy(const struct model *m, struct model *out);

/* Distribution helpers. */
/* Value at quantile q in [0,1] (midpoint of the bucket holding that rank,
 * capped by max_ns). 0 when empty. */
uint64_t gt_dist_quantile(const struct gt_dist *d, double q);
/* Fold the log-linear buckets into log2 slots: slot i counts [2^i, 2^(i+1)),
 * slot 0 also counts durations of 0 ns. */
void gt_dist_log2(const struct gt_dist *d, uint64_t out[GT_LOG2_SLOTS]);
/* Lower and upper (exclusive) bound of bucket @idx in ns. */
uint64_t gt_bucket_low(uint32_t idx);
uint64_t gt_bucket_high(uint32_t idx);

#endif
