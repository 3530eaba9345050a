/* SPDX-License-Identifier: MIT */
/*
 * report: renderers of the trace model. Each reads a closed struct model
 * and writes one view; none changes the model.
 */
#ifndef GILTRACE_REPORT_H
#define GILTRACE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct json_t; /* jansson's json_t */
struct model;
struct model_stacks;
struct model_thread;
struct timeline;
struct tl_thread;

struct report_opts {
	const pid_t *tids;   /* only these threads (NULL: all) */
	size_t ntids;
	int top;             /* terminal: at most this many threads (default 20) */
	bool hist;           /* terminal: log2 histograms per thread */
	bool color;          /* terminal: ANSI colours (only when a tty) */
	bool interval;       /* terminal: an interval report (header says so, idle threads skipped) */
	const struct timeline *tl; /* event-level model when the stream was on (JSON: blocked_by) */
};

/* Terminal report: summary, per-thread table, optional histograms,
 * dropped-event warnings, one-line verdict. Returns 0 or -errno. */
int report_text(FILE *out, const struct model *m, const struct report_opts *o);

/* The verdict sentence, e.g. "GIL held 99% of the time; 4 threads spent
 * 74% of their time waiting for it: threads give no parallel speed-up
 * here". Writes at most @len bytes. */
void report_verdict(const struct model *m, const struct report_opts *o,
		    char *buf, size_t len);

/* giltrace/1 JSON (docs/json.md). Returns 0 or -errno. */
int report_json(FILE *out, const struct model *m, const struct report_opts *o);

/* The stacks summary (docs/json.md, `stacks`: the walk's limit, distinct
 * stacks, holder samples, what was lost) added to object @o: one builder
 * for the JSON and the HTML report's flame data. 0, or -ENOMEM. */
int report__stacks_summary(struct json_t *o, const struct model_stacks *ms);

/* Shared by the renderers (report_text.c). */
/* Threads of @m that @o->tids selects (@o may be NULL: all), busiest
 * (hold + wait) first. *@out (free it) points into @m. Returns how many,
 * or -ENOMEM. */
ssize_t report__threads(const struct model *m, const struct report_opts *o,
			const struct model_thread ***out);
/* A thread's wait as a share (0..1) of the time it was there to be
 * measured: the verdict's measure (docs/reading-the-report.md). */
double report__wait_share(const struct model *m, const struct model_thread *t);
/* Time thread @t spent holding and waiting (abandoned waits included) in
 * each of @n equal buckets of [@t0, @t1): @hold[i], @wait[i] in ns
 * (report_timeline.c; the HTML report downsamples with it). */
void report__bucket_cycles(const struct tl_thread *t, uint64_t t0,
			   uint64_t t1, size_t n, uint64_t *hold,
			   uint64_t *wait);

/*
 * Terminal timeline: one lane per thread (TID and name), @width columns
 * (80 when not a tty), each cell showing hold / wait / running without the
 * GIL for its time bucket; legend and time axis; colour only if o->color.
 */
int report_timeline(FILE *out, const struct model *m,
		    const struct timeline *tl, const struct report_opts *o,
		    int width);

/* Perfetto / Chrome Trace Event Format JSON (docs/views.md). */
int report_perfetto(FILE *out, const struct model *m,
		    const struct timeline *tl);

/* Self-contained HTML report. @assets: directory of the bundled npm
 * assets (NULL: the built-in default). Returns 0, or a negative errno with
 * a one-line reason (e.g. which assets to install) in @err. */
int report_html(FILE *out, const struct model *m, const struct timeline *tl,
		const char *assets, char *err, size_t errlen);

#endif
