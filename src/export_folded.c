// SPDX-License-Identifier: MIT
/*
 * export_folded.c - folded ("collapsed") stacks, the input of
 * flamegraph.pl, inferno and speedscope: one line per (thread, stack),
 *   name-tid;root frame;...;innermost frame VALUE
 * VALUE an integer: microseconds waited or held, or a count. The thread's
 * name and TID are the root frame, so threads that share a name stay apart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "export.h"
#include "model.h"
#include "model_stacks.h"
#include "report.h"

int export__weight(const char *name)
{
	if (!strcmp(name, "wait"))
		return EXPORT_WAIT;
	if (!strcmp(name, "hold"))
		return EXPORT_HOLD;
	if (!strcmp(name, "count"))
		return EXPORT_COUNT;
	return -1;
}

/* A folded line's frame must not hold ';' (the separator) or a line break;
 * the value is whatever follows the last space, so spaces are kept. */
static void put_frame(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc(*s == ';' ? ',' : (*s == '\n' || *s == '\r') ? ' ' : *s, out);
}

/* The ns -> us rounding keeps each thread's sum within half a microsecond
 * a line of the exact total. */
static uint64_t value(const struct model_stack_weight *w, enum export_weight wt)
{
	return wt == EXPORT_COUNT ? w->count : (w->ns + 500) / 1000;
}

static int thread_lines(FILE *out, const struct model *m,
			const struct model_thread *t, enum export_weight wt)
{
	const struct model_stacks *ms = m->stacks;
	const struct model_stack_weight **v;
	uint32_t kind = wt == EXPORT_HOLD ? GT_W_HOLD : GT_W_WAIT;
	char label[2048];
	ssize_t n;

	n = model_stacks__thread(ms, t->k.tid, t->k.first_seen_ns, kind, &v);
	if (n < 0)
		return (int)n;
	for (ssize_t i = 0; i < n; i++) {
		const struct model_stack *st = &ms->stacks[v[i]->stack];
		uint64_t val = value(v[i], wt);

		if (!val)
			continue;
		put_frame(out, t->name[0] ? t->name : "thread");
		fprintf(out, "-%u", t->k.tid);
		for (uint32_t j = 0; j < st->nframes; j++) {
			model_stacks__label(&ms->frames[st->frames[j]], label,
					    sizeof(label));
			fputc(';', out);
			put_frame(out, label);
		}
		fprintf(out, " %llu\n", (unsigned long long)val);
	}
	free(v);
	return 0;
}

int export_folded(FILE *out, const struct model *m, enum export_weight w,
		  const struct report_opts *o, char *err, size_t errlen)
{
	const struct model_thread **v;
	ssize_t n;
	int rc = 0;

	if (!m->stacks) {
		snprintf(err, errlen, "giltrace: this trace has no stacks: record "
			 "it with --stacks");
		return -ENODATA;
	}
	n = report__threads(m, o, &v);
	if (n < 0) {
		snprintf(err, errlen, "giltrace: out of memory");
		return (int)n;
	}
	for (ssize_t i = 0; i < n && !rc; i++)
		rc = thread_lines(out, m, v[i], w);
	free(v);
	if (!rc && ferror(out))
		rc = -EIO;
	if (rc)
		snprintf(err, errlen, "giltrace: cannot write the folded stacks: %s",
			 strerror(-rc));
	return rc;
}
