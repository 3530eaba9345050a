/* SPDX-License-Identifier: MIT */
/*
 * probes: the BPF side as userspace sees it. Opens the skeleton, sizes its
 * maps, loads it, attaches one probe per GIL site of the target and the
 * thread-exit tracepoint, and marks tracing ready only once every probe is
 * live. Destroying it detaches everything.
 */
#ifndef GILTRACE_PROBES_H
#define GILTRACE_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct py_target;
struct gil_sites;
struct model;
struct giltrace_bpf;
struct gt_py_frame_layout;

struct probes_opts {
	pid_t tgid;
	uint32_t max_threads;   /* per-thread map size */
	uint32_t ringbuf_bytes; /* power of two, >= page size */
	bool emit_cycles;       /* the event stream: one record per GIL cycle */
	bool verbose;
	/* --stacks: how to walk this interpreter's frames (NULL: no stacks) */
	const struct gt_py_frame_layout *stack_layout;
	uint32_t sample_hz;     /* --stacks: holder samples a second per CPU, 0 none */
	bool contention;        /* --mode contention */
	bool native;            /* --native: registers and stack copies for unwinding */
};

struct probes;

/* Check privileges and kernel support (BTF, uprobes) before anything is
 * loaded. Returns 0, or a negative errno with a one-line, actionable
 * reason in @err. */
int probes__check_system(char *err, size_t errlen);

/* Open and load the BPF object. NULL with a reason in @err on failure. */
struct probes *probes__load(const struct probes_opts *o, char *err,
			    size_t errlen);

/* The BPF program a probe runs. */
enum probe_prog {
	PROG_TAKE_ENTER = 0, /* take_gil entry: a wait begins */
	PROG_WAKE,           /* take_gil wait loop, after the timed wait returns */
	PROG_HELD_RET,       /* uretprobe on take_gil: the GIL is held */
	PROG_DROP,           /* drop_gil site: the hold ends */
	PROG_BLOCK,          /* --mode contention: take_gil's call to the timed wait */
	PROG_CWAKE,          /* --mode contention: the timed wait returned */
};

/* What a plan probes. */
enum plan_mode {
	PLAN_URETPROBE = 0,  /* take_gil entry and return, every drop_gil site */
	PLAN_PLACED = 1,     /* exact (default): entries, wake points, drop
				sites on emulated instructions */
	PLAN_CONTENTION = 2, /* only take_gil's blocking path */
};
const char *probe_prog__role(enum probe_prog p);

/* One probe: the GIL site it stands for and where it goes. */
struct probe_spec {
	enum probe_prog prog;
	int func;            /* enum gil_func */
	bool inlined;
	char symbol[128];
	char caller[128];
	uint64_t site_vaddr; /* the function entry / inlined entry pc */
	uint64_t vaddr;      /* the probed instruction (== site unless moved) */
	uint64_t offset;     /* its file offset */
	uint64_t cookie;     /* bpf_cookie: take_gil's tstate argument */
};

struct probe_plan {
	struct probe_spec *v;
	size_t n;
};

/*
 * Decide every probe for @s: take_gil entries, the wait loop's wake points
 * (or a uretprobe on take_gil where none are found), and drop_gil sites
 * moved to an emulated instruction of the same basic block where needed.
 * PLAN_URETPROBE: entries and a uretprobe, no moving. PLAN_CONTENTION:
 * the wait loop's timed-wait calls and wake points only (-ENOENT when
 * they cannot be found). Depends only
 * on the interpreter binary (and the kernel's emulation rules), so it can
 * be cached (attach_cache). Returns 0 or a negative errno.
 */
int probes__plan(const struct py_target *t, const struct gil_sites *s,
		 enum plan_mode mode, struct probe_plan *plan);
void probe_plan__free(struct probe_plan *plan);

/*
 * Attach the thread-exit tracepoint, then every probe of @plan. Each
 * attached probe is described in @m->probes. Returns 0, or a negative errno
 * with a reason (everything already attached stays until probes__destroy).
 */
int probes__attach(struct probes *p, const struct py_target *t,
		   const struct probe_plan *plan, struct model *m, char *err,
		   size_t errlen);

/*
 * --stacks (or --mode contention) with sample_hz: a CPU-clock perf event
 * on every online CPU runs the holder sampler (the GIL sampler). Returns how many CPUs are sampled, or a negative
 * errno with a reason in @err (tracing works without it).
 */
int probes__attach_sampler(struct probes *p, uint32_t hz, char *err,
			   size_t errlen);

struct gil_ref;
/* Tell the BPF programs where the GIL's fields are (to tell, when a thread
 * exits, whether it held the GIL). Optional. */
void probes__set_gil(struct probes *p, const struct gil_ref *r);

/* Make tracing live: record t0 and set the ready flag. Returns t0 (ns,
 * CLOCK_MONOTONIC). */
uint64_t probes__start(struct probes *p);
/* Stop recording: clear the ready flag. Returns the end time. */
uint64_t probes__stop(struct probes *p);

struct giltrace_bpf *probes__skel(struct probes *p);

/* Detach every probe and free everything. NULL is fine. */
void probes__destroy(struct probes *p);

/* CLOCK_MONOTONIC in ns (the clock of bpf_ktime_get_ns). */
uint64_t now_ns(void);

#endif
