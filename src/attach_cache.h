/* SPDX-License-Identifier: MIT */
/*
 * attach_cache: what an attach learns from the interpreter binary, kept
 * per build so that the next attach skips that work. Finding the probe plan
 * (symbols, the DWARF walk for inlined drop_gil instances, disassembly for
 * placement) and the GIL layout (DWARF) takes 0.1-0.5 s; reading them back
 * takes about a millisecond.
 *
 * Key: the binary's build-id, whether a separate debug file was used,
 * the plan's mode (enum plan_mode), the kernel's major.minor (placement follows the
 * kernel's emulation rules) and the cache format. A binary without a
 * build-id is never cached. On load, every probe's instruction bytes are
 * compared with the binary's: a stale or corrupt entry is ignored (and
 * rewritten). Files live in $XDG_CACHE_HOME/giltrace (else
 * $HOME/.cache/giltrace), mode 0600, written atomically.
 * GILTRACE_NO_CACHE=1 disables the cache.
 */
#ifndef GILTRACE_ATTACH_CACHE_H
#define GILTRACE_ATTACH_CACHE_H

#include <stdbool.h>

struct py_target;
struct probe_plan;
struct gil_layout;

/* Returns 0 and fills @plan (and @l with *@have_layout) on a valid hit;
 * -ENOENT on a miss or an entry that fails validation. */
int attach_cache__load(struct py_target *t, int mode,
		       struct probe_plan *plan, struct gil_layout *l,
		       bool *have_layout);

/* Store @plan and, when not NULL, @l. Failures are not errors for the
 * caller (the next attach just does the work again); returns 0 or a
 * negative errno. */
int attach_cache__store(struct py_target *t, int mode,
			const struct probe_plan *plan,
			const struct gil_layout *l);

struct gt_py_frame_layout;
/* --stacks: the Python frame layout of @t's build (py_layout__get), kept
 * the same way (its own file, same key and checks: build-id, version).
 * load: 0 or -ENOENT; store: 0 or a negative errno, not an error for the
 * caller. */
int attach_cache__load_frames(struct py_target *t, struct gt_py_frame_layout *l);
int attach_cache__store_frames(struct py_target *t,
			       const struct gt_py_frame_layout *l);

#endif
