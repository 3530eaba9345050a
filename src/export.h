/* SPDX-License-Identifier: MIT */
/*
 * export: the stacks of the trace model (struct model_stacks) in formats
 * other tools read: folded stacks for flame graphs (flamegraph.pl, inferno,
 * speedscope) and pprof's profile.proto (go tool pprof, Pyroscope, Parca).
 */
#ifndef GILTRACE_EXPORT_H
#define GILTRACE_EXPORT_H

#include <stddef.h>
#include <stdio.h>
#include "giltrace.h"

struct model;
struct report_opts;

enum export_weight {
	EXPORT_WAIT = 0,  /* microseconds waited for the GIL (GT_W_WAIT) */
	EXPORT_HOLD = 1,  /* microseconds the GIL was held (GT_W_HOLD) */
	EXPORT_COUNT = 2, /* number of waits */
};

/* "wait", "hold", "count" -> enum export_weight; -1 when none. */
int export__weight(const char *name);

/*
 * Brendan Gregg's collapsed format, one line per (thread, stack):
 *   name-tid;frame;...;frame VALUE
 * root first, frames as model_stacks__label() names them (';' in a name
 * becomes ','), VALUE an integer (microseconds, or a count). Lines whose
 * value rounds to 0 are left out. Threads as @o selects (NULL: all).
 * Returns 0, or a negative errno with a one-line reason in @err (-ENODATA:
 * the model has no stacks).
 */
int export_folded(FILE *out, const struct model *m, enum export_weight w,
		  const struct report_opts *o, char *err, size_t errlen);

/*
 * pprof: gzip-compressed profile.proto with sample types wait/nanoseconds
 * and hold/nanoseconds (and the counts), one sample per (thread, stack),
 * labels "thread" (name) and "tid", locations and functions with file and
 * line. Returns 0, or a negative errno with a one-line reason in @err.
 */
int export_pprof(FILE *out, const struct model *m, const struct report_opts *o,
		 char *err, size_t errlen);

#endif
