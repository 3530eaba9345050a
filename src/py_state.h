/* SPDX-License-Identifier: MIT */
/*
 * py_state: read the GIL's own state (struct _gil_runtime_state) from the
 * live target's memory with process_vm_readv. Where the GIL lives, per
 * version, comes from the interpreter's DWARF (member offsets of
 * _PyRuntimeState / PyInterpreterState), from _Py_DebugOffsets in 3.13+,
 * and from a cited table as the last resort.
 */
#ifndef GILTRACE_PY_STATE_H
#define GILTRACE_PY_STATE_H

#include <stdint.h>
#include <sys/types.h>

struct py_target;

struct gil_state {
	uint64_t gil_addr;        /* runtime address of struct _gil_runtime_state */
	uint64_t interval_us;     /* switch interval, what sys.getswitchinterval()*1e6 gives */
	int locked;               /* 1 held, 0 free, -1 not created yet */
	uint64_t last_holder;     /* PyThreadState* of the last holder */
	uint64_t switch_number;
	pid_t holder_tid;         /* TID of last_holder when locked and known, else 0 */
};

/*
 * Read the GIL state of @t. Returns 0, or a negative errno with a one-line
 * reason in @err (for instance when no layout is known for this build).
 */
int py_state__read_gil(struct py_target *t, struct gil_state *st,
		       char *err, size_t errlen);

#endif
