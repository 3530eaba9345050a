/* SPDX-License-Identifier: MIT */
/*
 * native_unwind: native (C) stacks for --native. The BPF side copies, once
 * per new Python stack, a thread's user registers and GT_NATIVE_STACK bytes
 * of its user stack from rsp (struct gt_native, include/giltrace.h); this
 * module unwinds that copy with the CFI (.eh_frame, then .debug_frame) of
 * the process's modules, as `perf --call-graph dwarf` does (none of the
 * interpreters keeps frame pointers), and names the pcs found.
 *
 * Built on elfutils libdwfl: one Dwfl session per process, its modules
 * from /proc/PID/maps (dwfl_linux_proc_report), every ELF file opened when
 * the session is made (so a process that dies later is still named from
 * them) as /proc/PID/root/PATH (the process's mount namespace); a file
 * deleted since it was mapped ("python3 (deleted)") and the vDSO are read
 * from the process's memory. Separate debug files are found by build-id
 * under /usr/lib/debug (.build-id/xx/rest.debug, as Debian's python3.11-dbg
 * installs), then by .gnu_debuglink. The session's thread state is our own
 * (dwfl_attach_state): one thread whose registers and memory are the copy.
 *
 * Memory: the unwinder reads ONLY the copy in struct gt_native, never the
 * live process's memory: the copy is the thread's state at the probe, the
 * live stack has moved on since, and mixing the two would give frames that
 * never existed. A walk that needs a word outside the copy (a stack deeper
 * than GT_NATIVE_STACK) stops there with -EFAULT. The live process is only
 * read for its module list (/proc/PID/maps, /proc/PID/stat) and, when a
 * session is made, the images of the vDSO and of deleted files
 * (/proc/PID/mem, read-only); it is never stopped, traced or written.
 *
 * Module list: refreshed (a new session replaces the old one) when a pc
 * lies in no module, at most once per NATIVE_REFRESH_MIN_MS, and only while
 * /proc/PID/stat still shows the same process (start time checked: a
 * reused PID is not taken for the traced process). A dead process keeps
 * the last list.
 *
 * Not thread-safe: use one unwinder per thread, or a lock.
 */
#ifndef GILTRACE_NATIVE_UNWIND_H
#define GILTRACE_NATIVE_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "giltrace.h"

#define NATIVE_UNKNOWN "[unknown]"
/* Minimum interval between two refreshes of the module list. */
#define NATIVE_REFRESH_MIN_MS 100

struct native_unwinder;

/*
 * A libdwfl session with @pid's modules. NULL with a one-line reason in
 * @err (and errno set: ESRCH no such process, EACCES /proc/PID/maps not
 * readable, ENOMEM, EIO libdwfl failed).
 */
struct native_unwinder *native_unwind__new(pid_t pid, char *err, size_t errlen);
void native_unwind__free(struct native_unwinder *u);

/*
 * Unwind the stack copy in @n (see above: the copy only). @pcs receives at
 * most @max pcs, innermost first: pcs[0] = regs[16] (the probed
 * instruction), every later one a return address (look it up as pc - 1).
 * A frame interrupted by a signal is not a return address: it is stored
 * as its pc + 1 so that the same pc - 1 lookup names it. *@npcs is set to
 * the number stored. Returns
 *   0        the walk reached the outermost frame (_start, clone3),
 *   1        it was cut at @max,
 *   -EFAULT  it needed memory outside the copy (stack deeper than the copy),
 *   -ENOENT  a pc lies in no module (junk, or JIT code); that pc is stored,
 *   -EIO     no usable CFI for a pc, or the CFI gave an impossible frame,
 *   -ENODATA no capture (stack_len 0), -EINVAL bad arguments or pc 0.
 * On error the frames stored so far are valid. Never crashes on junk.
 */
int native_unwind__stack(struct native_unwinder *u, const struct gt_native *n,
			 uint64_t *pcs, size_t max, size_t *npcs);

/* A pc, named. Strings are always NUL-terminated, cut when too long. */
struct native_frame {
	char function[256]; /* symbol name, without a symbol version
			     * (@@GLIBC_2.34); NATIVE_UNKNOWN when none */
	char module[256];   /* ELF base name as mapped ("libc.so.6", "[vdso]",
			     * "python3 (deleted)"); NATIVE_UNKNOWN when none */
	uint64_t offset;    /* pc - function start; with no symbol, the pc as an
			     * address in the module's ELF (pc - load bias, what
			     * `addr2line -e module` takes); with no module, pc */
	bool known;         /* a symbol covers the pc */
};

/*
 * Name @pc. With @is_return_address (every pc of a walk but the first) the
 * symbol is that of pc - 1, as perf does: a call that ends a function has
 * its return address past the function's end. Results are cached per
 * (pc, is_return_address). Returns 0 with @out filled, -ENOENT when no
 * symbol covers the pc (@out still filled: known false, module and offset
 * when a module does), -EINVAL on bad arguments.
 */
int native_unwind__symbolize(struct native_unwinder *u, uint64_t pc,
			     bool is_return_address, struct native_frame *out);

/* Counters, for tests and --verbose. */
struct native_unwind_stats {
	uint64_t refreshes;       /* module list re-read */
	uint64_t cache_hits, cache_misses;
};
void native_unwind__stats(const struct native_unwinder *u,
			  struct native_unwind_stats *out);

#endif /* GILTRACE_NATIVE_UNWIND_H */
