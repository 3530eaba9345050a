/* SPDX-License-Identifier: MIT */
/*
 * py_symbolize: (code object address, instruction position) captured from
 * a live CPython process -> function name, qualified name, file and line.
 * Reads the target's memory with process_vm_readv (never writes), checks
 * every object's type before trusting it (a code object's ob_type must be
 * &PyCode_Type, a string's &PyUnicode_Type, a line table's &PyBytes_Type),
 * and computes the line from the code object's line table as CPython's
 * PyCode_Addr2Line does for that version. Results are cached per code
 * object, revalidated at every lookup against the object's current
 * contents (so a freed code object whose address was reused is noticed),
 * in a bounded LRU cache. A symbolizer is not thread-safe: use one per
 * thread, or a lock.
 */
#ifndef GILTRACE_PY_SYMBOLIZE_H
#define GILTRACE_PY_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giltrace.h"

struct py_target;
struct py_symbolizer;

#define PY_UNKNOWN "[unknown]"

/* What py_symbolize__frame resolves a frame to. Strings are UTF-8, cut at
 * a character boundary with "..." when longer than the buffer. */
struct py_frame_info {
	bool known;          /* false: function is PY_UNKNOWN, nothing else set */
	char function[256];  /* co_name */
	char qualname[512];  /* co_qualname (3.11+); "" before 3.11 */
	char file[1024];     /* co_filename; PY_UNKNOWN if unreadable */
	int line;            /* 1-based; 0 when unknown (no position, no line) */
};

/* How the instruction position passed in is to be read. */
enum py_pos_mode {
	PY_POS_RAW = 0,   /* as the BPF walker captured it: the layout's
			   * fr_instr_size bytes at fr_instr, zero-extended
			   * (f_lasti, prev_instr or instr_ptr) */
	PY_POS_BYTES = 1, /* a byte offset into the bytecode (what Python's
			   * frame.f_lasti gives in every version); -1 = not started */
	PY_POS_NONE = 2,  /* no position: names only, line 0 */
};

/*
 * A symbolizer for @t using layout @l (copied). The target must stay open
 * while it is used. Returns NULL with errno set: ENOENT when the
 * interpreter has no PyCode_Type, PyUnicode_Type or PyBytes_Type symbol,
 * ENOMEM.
 */
struct py_symbolizer *py_symbolize__new(struct py_target *t,
					const struct gt_py_frame_layout *l);
void py_symbolize__free(struct py_symbolizer *s);

/*
 * Resolve one frame: @code_addr as the walker read it (already masked with
 * fr_code_mask), @instr_pos_raw as PY_POS_RAW above. Returns 0 with @out
 * filled, or a negative errno with out->known = false and out->function =
 * PY_UNKNOWN: -EINVAL (not a code object now), -EFAULT (unreadable),
 * -ESRCH (the process is gone: a cached name is not trusted then, the
 * address may have been reused since), -EPERM.
 */
int py_symbolize__frame(struct py_symbolizer *s, uint64_t code_addr,
			uint64_t instr_pos_raw, struct py_frame_info *out);

/*
 * The same, checked against @name_tok, the code object's co_name pointer
 * as the BPF walker read it at capture (struct gt_stack co_name; 0:
 * none): a different one means the address now holds another code object
 * (-EINVAL, unknown). It also lets a cached entry name the frame after
 * the process has exited (-ESRCH otherwise).
 */
int py_symbolize__frame_tok(struct py_symbolizer *s, uint64_t code_addr,
			    uint64_t instr_pos_raw, uint64_t name_tok,
			    struct py_frame_info *out);

/* The same with the position read as @mode says. */
int py_symbolize__frame_as(struct py_symbolizer *s, uint64_t code_addr,
			   int64_t pos, enum py_pos_mode mode,
			   struct py_frame_info *out);

/*
 * Walk a thread's Python frames from userspace, as the BPF walker does
 * (see struct gt_py_frame_layout): from PyThreadState @tstate, innermost
 * first, shim frames skipped; @code[i] and @pos[i] are what
 * py_symbolize__frame takes. At most @max frames go to *n. Returns 0 when
 * the walk reached the outermost frame, 1 when it stopped at @max (more
 * frames follow), or a negative errno when a frame could not be read (the
 * *n frames before it are valid). Consistent only while the thread runs no
 * Python code (waiting for the GIL, or in a call that released it).
 */
int py_symbolize__walk(struct py_symbolizer *s, uint64_t tstate,
		       uint64_t *code, uint64_t *pos, size_t max, size_t *n);

struct py_symbolize_stats {
	uint64_t lookups;
	uint64_t hits;          /* code object found in the cache, still the same */
	uint64_t stale;         /* cached, but the address now holds another object */
	uint64_t evictions;     /* dropped for room (LRU) */
	uint64_t failures;      /* lookups that gave [unknown] */
	uint64_t entries;       /* in the cache now */
};

void py_symbolize__stats(const struct py_symbolizer *s,
			 struct py_symbolize_stats *st);

/* Cache capacity in code objects (default 4096; at least 1). The cache
 * also holds at most 64 MiB, whatever the count. */
void py_symbolize__set_capacity(struct py_symbolizer *s, size_t n);

#endif
