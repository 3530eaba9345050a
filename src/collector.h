/* SPDX-License-Identifier: MIT */
/*
 * collector: moves the kernel's figures into the trace model. Exited
 * threads arrive as ring-buffer records (or, when the buffer was full, stay
 * in the map marked GT_EXITED and are drained from there); live threads
 * and process-wide counters are read from the maps on demand.
 */
#ifndef GILTRACE_COLLECTOR_H
#define GILTRACE_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

struct probes;
struct model;
struct collector;

/* NULL with errno set on failure. */
struct collector *collector__new(struct probes *p, struct model *m);
void collector__free(struct collector *c);

/* A descriptor that polls readable when the kernel asks for the ring
 * buffer to be drained (it does so only when the buffer is half full). */
int collector__fd(const struct collector *c);

/* Consume every ring-buffer record available now. Returns records
 * consumed, or a negative errno. */
int collector__consume(struct collector *c);

/*
 * Read process-wide counters and every live thread into the model, and
 * drain exited threads left in the map. Thread names are refreshed from
 * /proc. Does not close the model. Returns 0 or a negative errno.
 */
int collector__snapshot(struct collector *c);

/*
 * Tracing ends while thread @tid holds the GIL (read from the GIL's own
 * state). If the probes still show it waiting (it took the GIL without
 * blocking and has not released it yet: its acquisition is only resolved
 * at release), resolve it now as drop_enter would. Call after
 * collector__snapshot, before model__close.
 */
int collector__resolve_holder(struct collector *c, uint32_t tid);

struct trace_writer;
/* Also append every event-stream record (cycles, abandoned waits, losses)
 * to @w. Write errors are counted in collector__write_errors. */
void collector__set_writer(struct collector *c, struct trace_writer *w);
uint64_t collector__write_errors(const struct collector *c);
/* Event-stream records received. */
uint64_t collector__records(const struct collector *c);

struct py_target;
struct gt_py_frame_layout;
/*
 * --stacks: name the frames of every new stack the BPF walker sends (while
 * the process still has its code objects) into a new model->stacks, and
 * read the per-thread weights at every snapshot. @t must stay open.
 * Returns 0 or a negative errno.
 */
int collector__enable_stacks(struct collector *c, struct py_target *t,
			     const struct gt_py_frame_layout *l);

/*
 * --native: unwind the native frames of each new stack (from the
 * registers and stack copy the BPF program sent with it) and put the C
 * frames between the innermost Python frame and the GIL call after the
 * Python frames. Call after collector__enable_stacks. Returns 0 or a
 * negative errno with a one-line reason in @err.
 */
int collector__enable_native(struct collector *c, int pid, char *err,
			     size_t errlen);

/* Work that can wait for a quiet moment (--native: unwinding the native
 * frames of new stacks). Call when the ring buffer is drained. */
void collector__idle(struct collector *c);

/*
 * --stacks, at the end (after the last collector__snapshot): the
 * kernel's per-thread stack weights into model->stacks. Returns 0 or a
 * negative errno.
 */
int collector__read_stacks(struct collector *c);

/*
 * --stacks, after model__close: the waits and holds still open at the end
 * go to their stacks too (a hold to its last sample's stack, or, while the
 * process lives, to the stack it runs now), so that each thread's weights
 * add up to its wait_ns and hold_ns.
 */
void collector__close_stacks(struct collector *c);

struct timeline;
/*
 * --mode contention, after model__close: each thread's hold estimated as
 * its CPU-clock samples found it holding the GIL times the sampling period
 * (1 / @hz per CPU), and who blocked whom from the kernel's map into
 * @tl->blocked (only that part of @tl is set; free it with
 * timeline__free). Returns 0 or a negative errno.
 */
int collector__contention(struct collector *c, uint32_t hz, struct timeline *tl);

/* Latest thread-exit time seen (0 if none). */
uint64_t collector__last_exit_ns(const struct collector *c);



/*
 * The GIL was held by @tid when tracing began (read from the GIL's own
 * state) and nobody released it while tracing: record that thread as
 * holding since @t0_ns. Call after collector__snapshot.
 */
int collector__seed_holder(struct collector *c, uint32_t tid, uint64_t t0_ns);
#endif
