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

struct probes_opts {
	pid_t tgid;
	uint32_t max_threads;   /* per-thread map size */
	uint32_t ringbuf_bytes; /* power of two, >= page size */
	bool emit_cycles;       /* the event stream: one record per GIL cycle */
	bool uretprobe;         /* time acquisitions with a uretprobe on take_gil and
				   probe every site where it is (no placement) */
	bool verbose;
};

struct probes;

/* Check privileges and kernel support (BTF, uprobes) before anything is
 * loaded. Returns 0, or a negative errno with a one-line, actionable
 * reason in @err. */
int probes__check_system(char *err, size_t errlen);

/* Open and load the BPF object. NULL with a reason in @err on failure. */
struct probes *probes__load(const struct probes_opts *o, char *err,
			    size_t errlen);

/*
 * Attach take_gil entry, the wait loop's wake points (or a uretprobe on
 * take_gil where none are found), drop_gil entry at every site (moved to
 * an emulated instruction of the same basic block where needed), and the
 * thread-exit tracepoint. Each attached probe is described in
 * @m->probes. Returns 0, or a negative errno with a reason (everything
 * already attached stays until probes__destroy).
 */
int probes__attach(struct probes *p, const struct py_target *t,
		   const struct gil_sites *s, struct model *m, char *err,
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
