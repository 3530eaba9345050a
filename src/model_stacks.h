/* SPDX-License-Identifier: MIT */
/*
 * model_stacks: the stacks part of the trace model (issue 5). Where each
 * thread waited for the GIL and where it held it, as symbolized stacks
 * weighted by time and count:
 *
 *   frames   interned (kind, function, file, line): one entry per distinct
 *            frame, shared by every stack that has it
 *   stacks   one per distinct stack the BPF walker captured (keyed by its
 *            id, a hash of the raw frames), frames root first, flags
 *            GT_STK_* (truncated, unreadable frame, ...)
 *   weights  (thread, kind, stack) -> count, ns: the time each thread
 *            waited (GT_W_WAIT) or held (GT_W_HOLD) with that stack
 *
 * Filled by the collector (symbolizing what the BPF walker captured while
 * the process lives) or read back from a trace file; renderers and
 * exporters (export_folded, export_pprof, report_json, report_html,
 * report_perfetto) only read it. A thread is (tid, first_seen_ns), as in
 * struct model_thread.
 */
#ifndef GILTRACE_MODEL_STACKS_H
#define GILTRACE_MODEL_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "giltrace.h"
#include "oa_index.h"

enum model_frame_kind {
	MF_PYTHON = 0, /* a Python function: function (qualified name where the
			  version has one), file, line */
	MF_NATIVE = 1, /* a native function: function, module = ELF */
	MF_MARK = 2,   /* not a frame: "[truncated]", "[unknown]", "[no Python frames]" */
};

/* Marks (MF_MARK frames' function). */
#define MS_TRUNCATED "[truncated]"       /* the stack was deeper than the walk */
#define MS_UNKNOWN "[unknown]"           /* a frame that could not be read */
#define MS_NO_FRAMES "[no Python frames]" /* the thread ran no Python code */
#define MS_LOST "[stack lost]"           /* the stack's frames never reached userspace */

struct model_frame {
	uint32_t kind;    /* enum model_frame_kind */
	int line;         /* 1-based, 0 unknown */
	char *function;   /* never NULL */
	char *file;       /* never NULL; "" unknown */
	char *module;     /* never NULL; "" for Python frames (see
			     model_stacks__module), the ELF's name for native */
};

struct model_stack {
	uint64_t id;      /* the BPF walker's id (hash of the raw frames) */
	uint32_t flags;   /* GT_STK_* */
	uint32_t nframes;
	uint32_t *frames; /* indices into frames[], root (outermost) first */
};

struct model_stack_weight {
	uint32_t tid;
	uint32_t kind;    /* enum gt_weight: GT_W_WAIT, GT_W_HOLD */
	uint64_t first_seen_ns;
	uint32_t stack;   /* index into stacks[] */
	uint32_t pad;
	uint64_t count;   /* intervals (or samples) */
	uint64_t ns;      /* their time */
};

/* Another id of a stack: the walker tells stacks apart by instruction
 * position, and two positions on one line give the same frames. */
struct model_stack_alias {
	uint64_t id;
	uint32_t stack;   /* index into stacks[] */
};

struct model_stacks {
	struct model_frame *frames;
	size_t nframes;
	struct model_stack *stacks;  /* distinct (flags, frames) */
	size_t nstacks;
	struct model_stack_alias *aliases;
	size_t naliases;
	struct model_stack_weight *w;
	size_t nw;

	uint32_t max_depth;        /* the BPF walk's limit (GT_STACK_MAX) */
	uint64_t samples;          /* holder samples taken during long holds */
	uint64_t samples_skipped;  /* ... skipped: they interrupted the thread's own probe */
	uint64_t walks_interrupted; /* walks whose scratch was reused meanwhile: [unknown] */
	uint64_t weights_lost;     /* weight updates the kernel could not keep (map full) */
	uint64_t stacks_lost;      /* stack records the ring buffer could not take */
	uint64_t frames_unresolved; /* captured frames that could not be named */
	uint64_t native_failed;    /* --native: stacks whose C frames could not be had */

	/* private: capacities and indexes (read only by model_stacks.c) */
	size_t cap_frames, cap_stacks, cap_w, cap_aliases;
	struct oa_index fidx,      /* frames by content */
	  sidx,                    /* ids: stack i, alias k (top bit | k) */
	  cidx,                    /* stacks by content */
	  widx;                    /* weights by (thread, kind, stack) */
};

struct model_stacks *model_stacks__new(void);
void model_stacks__free(struct model_stacks *ms);

/* Index of the frame (interned: the same frame gives the same index), or
 * a negative errno. NULL strings are taken as "". */
int model_stacks__frame(struct model_stacks *ms, enum model_frame_kind kind,
			const char *function, const char *file, int line,
			const char *module);

/* Add stack @id with @n frame indices, root first. When @id is already
 * there, the existing index is returned and nothing changes; when a stack
 * with the same flags and frames is, @id becomes its alias. Returns the
 * index or a negative errno. */
int model_stacks__add(struct model_stacks *ms, uint64_t id, uint32_t flags,
		      const uint32_t *frames, uint32_t n);

/* Index of stack @id (or of the stack it is an alias of), or -1. */
int model_stacks__find(const struct model_stacks *ms, uint64_t id);

/*
 * --native: a wait stack's native frames are the C path that took the GIL,
 * not the one that released it, so the hold that ends with the same stack
 * gets its Python-only variant, stored under this id (the collector makes
 * it; readers find it with model_stacks__hold_id()).
 */
static inline uint64_t model_stacks__variant_id(uint64_t id)
{
	return id ^ (1ULL << 63);
}

/* The id a hold ending with stack @id gets: its Python-only variant when
 * @ms has one, else @id. */
uint64_t model_stacks__hold_id(const struct model_stacks *ms, uint64_t id);

/* Add @count intervals of @ns to (thread, @kind, stack @stack).
 * Returns 0 or a negative errno. */
int model_stacks__add_weight(struct model_stacks *ms, uint32_t tid,
			     uint64_t first_seen_ns, uint32_t kind,
			     uint32_t stack, uint64_t count, uint64_t ns);

/* Forget every weight (the collector re-reads the kernel's cumulative
 * figures). Frames and stacks stay. */
void model_stacks__clear_weights(struct model_stacks *ms);

/*
 * The weights of one thread and kind, heaviest first (by ns, then count).
 * *@out (free it) points into @ms. Returns how many, or -ENOMEM.
 */
ssize_t model_stacks__thread(const struct model_stacks *ms, uint32_t tid,
			     uint64_t first_seen_ns, uint32_t kind,
			     const struct model_stack_weight ***out);

/* Sum of one thread's weights of @kind (count and ns). */
void model_stacks__thread_total(const struct model_stacks *ms, uint32_t tid,
				uint64_t first_seen_ns, uint32_t kind,
				uint64_t *count, uint64_t *ns);

/*
 * A frame's module: for Python frames the file's base name without ".py"
 * (e.g. "pipeline" for "/srv/app/pipeline.py", "<string>" kept whole), for
 * native frames the ELF's base name. Writes at most @len bytes.
 */
void model_stacks__module(const struct model_frame *f, char *buf, size_t len);

/*
 * A frame as one line of text, as every exporter names it:
 *   Python:  "module:function (file:line)", "(file)" when the line is unknown
 *   native:  "function [module]"
 *   mark:    the mark itself
 * Writes at most @len bytes.
 */
void model_stacks__label(const struct model_frame *f, char *buf, size_t len);

/* Deep copy (for model__copy). NULL when @ms is NULL or out of memory. */
struct model_stacks *model_stacks__copy(const struct model_stacks *ms);

#endif
