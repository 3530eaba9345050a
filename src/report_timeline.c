// SPDX-License-Identifier: MIT
/*
 * report_timeline.c - the terminal timeline (--timeline): one lane per
 * thread, labelled with its TID and name, across the terminal's width. Each
 * cell is one time bucket and shows the state the thread spent most of that
 * bucket in: holding the GIL, waiting for it, or running without it. A
 * legend and a time axis (seconds from the start of tracing) follow.
 * Buckets that overlap records lost in the kernel are marked '?' on every
 * lane; when the timeline was truncated, the part after the last cycle
 * kept is marked '~'. ASCII only (any terminal, any locale); colour only
 * when o->color. docs/views.md shows an example.
 *
 * Also home of report__bucket_cycles(), which the HTML report uses to
 * downsample huge traces the same way.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "report.h"
#include "timeline.h"

#define MIN_WIDTH 40
#define NAME_COLS 14     /* name part of a lane label */
#define TID_COLS 7
#define LABEL_COLS (TID_COLS + 1 + NAME_COLS + 1)
#define AXIS_GAP 10      /* columns between two axis labels, at least */
#define DEFAULT_TOP 20

#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_HOLD "\033[1;31m"
#define C_WAIT "\033[33m"
#define C_LOST "\033[35m"
#define C_OFF "\033[0m"

enum cell { CELL_RUN, CELL_HOLD, CELL_WAIT, CELL_LOST, CELL_CUT };

static const char cell_char[] = { ' ', '#', '-', '?', '~' };
static const char *const cell_color[] = { "", C_HOLD, C_WAIT, C_LOST, C_DIM };

/* ---- buckets ---------------------------------------------------------- */

/* Add the overlap of [b, e) with each of the @n buckets of [t0, t1)
 * (@w ns each) to @acc. */
static void spread(uint64_t *acc, size_t n, uint64_t t0, uint64_t t1,
		   double w, uint64_t b, uint64_t e)
{
	size_t i, last;

	if (!n || w <= 0)
		return;
	b = b < t0 ? t0 : b;
	e = e > t1 ? t1 : e;
	if (e <= b)
		return;
	i = (size_t)((double)(b - t0) / w);
	last = (size_t)((double)(e - t0) / w);
	if (i >= n)
		return;
	if (last >= n)
		last = n - 1;
	for (; i <= last; i++) {
		uint64_t lo = t0 + (uint64_t)((double)i * w);
		uint64_t hi = i + 1 == n ? UINT64_MAX : t0 + (uint64_t)((double)(i + 1) * w);
		uint64_t x = b > lo ? b : lo, y = e < hi ? e : hi;

		if (y > x)
			acc[i] += y - x;
	}
}

void report__bucket_cycles(const struct tl_thread *t, uint64_t t0,
			   uint64_t t1, size_t n, uint64_t *hold,
			   uint64_t *wait)
{
	double w = n && t1 > t0 ? (double)(t1 - t0) / (double)n : 0;

	memset(hold, 0, n * sizeof(*hold));
	memset(wait, 0, n * sizeof(*wait));
	for (size_t i = 0; t && i < t->ncycles; i++) {
		const struct tl_cycle *c = &t->cycles[i];

		if (c->held < c->wait_begin || c->release < c->held)
			continue; /* corrupt: never shown */
		if (c->flags & TL_ABANDONED) {
			spread(wait, n, t0, t1, w, c->wait_begin, c->release);
			continue;
		}
		spread(wait, n, t0, t1, w, c->wait_begin, c->held);
		if (!(c->flags & TL_OPEN_WAIT))
			spread(hold, n, t0, t1, w, c->held, c->release);
	}
}

/* The dominant state of a bucket of @w ns; ties go to hold, then wait. */
static enum cell dominant(uint64_t hold, uint64_t wait, double w)
{
	double run = w - (double)hold - (double)wait;

	if (!hold && !wait)
		return CELL_RUN;
	if ((double)hold >= (double)wait && (double)hold >= run)
		return CELL_HOLD;
	if ((double)wait >= run)
		return CELL_WAIT;
	return CELL_RUN;
}

/* ---- lanes ------------------------------------------------------------ */

struct lane {
	const struct tl_thread *t;
	const char *name;
	uint64_t first;
};

static bool tid_wanted(const struct report_opts *o, uint32_t tid)
{
	if (!o || !o->tids || !o->ntids)
		return true;
	for (size_t i = 0; i < o->ntids; i++)
		if ((uint32_t)o->tids[i] == tid)
			return true;
	return false;
}

static const char *model_name(const struct model *m, uint32_t tid)
{
	for (size_t i = 0; m && i < m->nthreads; i++)
		if (m->threads[i].k.tid == tid && m->threads[i].name[0])
			return m->threads[i].name;
	return "?";
}

/* Lanes in order of the threads' first cycle (then TID). */
static int by_first(const void *a, const void *b)
{
	const struct lane *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (x->t->tid > y->t->tid) - (x->t->tid < y->t->tid);
}

/* Busiest (hold + wait) first, to pick the --top lanes. */
static int by_busy(const void *a, const void *b)
{
	const struct lane *x = a, *y = b;
	uint64_t bx = x->t->hold_ns + x->t->wait_ns;
	uint64_t by = y->t->hold_ns + y->t->wait_ns;

	if (bx != by)
		return bx > by ? -1 : 1;
	return by_first(a, b);
}

/* The threads @o selects, the @top busiest of them in order of their
 * first cycle first. Returns how many were selected. */
static size_t collect_lanes(const struct model *m, const struct timeline *tl,
			    const struct report_opts *o, struct lane *v,
			    size_t top)
{
	size_t n = 0;

	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		if (!tid_wanted(o, t->tid))
			continue;
		v[n].t = t;
		v[n].name = t->name[0] ? t->name : model_name(m, t->tid);
		v[n].first = t->ncycles ? t->cycles[0].wait_begin : UINT64_MAX;
		n++;
	}
	qsort(v, n, sizeof(*v), by_busy);
	qsort(v, n < top ? n : top, sizeof(*v), by_first);
	return n;
}

/* ---- drawing ---------------------------------------------------------- */

struct canvas {
	FILE *out;
	bool color;
	int width;          /* columns in all */
	size_t ncols;
	uint64_t t0, t1;
	double w;           /* ns per column */
	unsigned char *mark; /* per column: CELL_LOST / CELL_CUT / CELL_RUN */
	uint64_t *hold, *wait;
};

static void put_cells(struct canvas *c, const unsigned char *cells)
{
	enum cell cur = CELL_RUN;

	fputc('|', c->out);
	for (size_t i = 0; i < c->ncols; i++) {
		enum cell k = cells[i];

		if (c->color && k != cur) {
			fputs(C_OFF, c->out);
			fputs(cell_color[k], c->out);
			cur = k;
		}
		fputc(cell_char[k], c->out);
	}
	if (c->color && cur != CELL_RUN)
		fputs(C_OFF, c->out);
	fputs("|\n", c->out);
}

/* Terminal columns of a UTF-8 string. */
static int ucols(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* "   4243 spin-0         " in LABEL_COLS columns; a longer name is cut
 * on a UTF-8 boundary with '~'; control bytes print as '?'. */
static void put_label(FILE *out, uint32_t tid, const char *name)
{
	int max = ucols(name) > NAME_COLS ? NAME_COLS - 1 : NAME_COLS, cols = 0;

	fprintf(out, "%*" PRIu32 " ", TID_COLS, tid);
	for (size_t i = 0; name[i]; i++) {
		unsigned char ch = (unsigned char)name[i];

		if ((ch & 0xC0) != 0x80 && cols++ == max) {
			cols--;
			break;
		}
		fputc(ch < 0x20 || ch == 0x7f ? '?' : (int)ch, out);
	}
	if (max < NAME_COLS) {
		fputc('~', out);
		cols++;
	}
	fprintf(out, "%*s ", NAME_COLS - cols, "");
}

static void draw_lane(struct canvas *c, const struct lane *l,
		      unsigned char *cells)
{
	report__bucket_cycles(l->t, c->t0, c->t1, c->ncols, c->hold, c->wait);
	for (size_t i = 0; i < c->ncols; i++)
		cells[i] = c->mark[i] != CELL_RUN ? c->mark[i] :
			   dominant(c->hold[i], c->wait[i], c->w);
	put_label(c->out, l->t->tid, l->name);
	put_cells(c, cells);
}

/* Columns touched by [b, e) get @k. */
static void mark_span(struct canvas *c, uint64_t b, uint64_t e, enum cell k)
{
	size_t i, last;

	if (e < b || e < c->t0 || b >= c->t1)
		return;
	b = b < c->t0 ? c->t0 : b;
	i = (size_t)((double)(b - c->t0) / c->w);
	last = e >= c->t1 ? c->ncols - 1 : (size_t)((double)(e - c->t0) / c->w);
	for (; i <= last && i < c->ncols; i++)
		c->mark[i] = (unsigned char)k;
}

/* Where the kept cycles end, for a truncated timeline. */
static uint64_t kept_until(const struct timeline *tl)
{
	uint64_t end = 0;

	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++)
			if (t->cycles[j].release > end)
				end = t->cycles[j].release;
	}
	return end;
}

/* Smallest 1, 2 or 5 x 10^k ns that is >= @ns. */
static uint64_t nice_step(double ns)
{
	uint64_t p = 1;

	for (;;) {
		if ((double)p >= ns)
			return p;
		if ((double)(2 * p) >= ns)
			return 2 * p;
		if ((double)(5 * p) >= ns)
			return 5 * p;
		if (p > UINT64_MAX / 100)
			return p * 10;
		p *= 10;
	}
}

static void fmt_rel(char *buf, size_t len, uint64_t ns, uint64_t span)
{
	if (span >= 1000000000ULL)
		snprintf(buf, len, "%gs", (double)ns / 1e9);
	else if (span >= 1000000ULL)
		snprintf(buf, len, "%gms", (double)ns / 1e6);
	else if (span >= 1000ULL)
		snprintf(buf, len, "%gus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%" PRIu64 "ns", ns);
}

/* Tick marks and relative-time labels under the lanes. */
static void draw_axis(struct canvas *c)
{
	uint64_t span = c->t1 - c->t0, step = nice_step(c->w * AXIS_GAP);
	size_t n = c->ncols + 2, last_end = 0;
	char *ticks = malloc(n + 1), *labels = malloc(n + 1), b[32];

	if (!ticks || !labels)
		goto out;
	memset(ticks, ' ', n);
	memset(labels, ' ', n);
	for (uint64_t t = 0; t <= span; t += step) {
		size_t col = 1 + (size_t)((double)t / c->w), len;

		if (col > c->ncols)
			col = c->ncols;
		ticks[col] = '+';
		fmt_rel(b, sizeof(b), t, span);
		len = strlen(b);
		if ((t && col < last_end + 1) || col + len > n)
			continue;
		memcpy(labels + col, b, len);
		last_end = col + len;
		if (t > UINT64_MAX - step)
			break;
	}
	ticks[n] = '\0';
	for (size_t k = n; k && ticks[k - 1] == ' '; k--)
		ticks[k - 1] = '\0';
	while (n && labels[n - 1] == ' ')
		n--;
	labels[n] = '\0';
	fprintf(c->out, "%*s%s\n%*s%s\n", LABEL_COLS, "", ticks, LABEL_COLS, "",
		labels);
out:
	free(ticks);
	free(labels);
}

/* Print @s at column *@col, first wrapping to a new line indented by
 * @indent when it would pass the canvas width. */
static void put_wrapped(struct canvas *c, int *col, int indent, const char *s,
			int len)
{
	if (*col > indent && *col + len > c->width) {
		fprintf(c->out, "\n%*s", indent, "");
		*col = indent;
	}
	fputs(s, c->out);
	*col += len;
}

static void legend_item(struct canvas *c, int *col, enum cell k,
			const char *what)
{
	char buf[128];
	int len;

	len = snprintf(buf, sizeof(buf), "  %c %s", cell_char[k], what);
	if (c->color && k != CELL_RUN) /* colour the symbol only */
		snprintf(buf, sizeof(buf), "  %s%c%s %s", cell_color[k],
			 cell_char[k], C_OFF, what);
	put_wrapped(c, col, LABEL_COLS - 2, buf, len);
}

static void draw_legend(struct canvas *c, const struct timeline *tl,
			bool cut)
{
	int col = LABEL_COLS - 2;

	fprintf(c->out, "%*s", col, "");
	legend_item(c, &col, CELL_HOLD, "holds the GIL");
	legend_item(c, &col, CELL_WAIT, "waits for it");
	put_wrapped(c, &col, LABEL_COLS - 2, "  (blank) runs without it", 25);
	if (tl->nlost)
		legend_item(c, &col, CELL_LOST, "records lost");
	if (cut)
		legend_item(c, &col, CELL_CUT, "not shown (truncated)");
	fputc('\n', c->out);
}

/* A note, word-wrapped to the canvas width. */
static void note(struct canvas *c, const char *color, const char *fmt, ...)
{
	char buf[1024], *p = buf;
	int col = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->color && color)
		fputs(color, c->out);
	while (*p) {
		int len = (int)strcspn(p, " ");

		if (col && col + 1 + len > c->width) {
			fputs("\n  ", c->out);
			col = 2;
		} else if (col) {
			fputc(' ', c->out);
			col++;
		}
		fwrite(p, 1, (size_t)len, c->out);
		col += len;
		p += len;
		while (*p == ' ')
			p++;
	}
	if (c->color && color)
		fputs(C_OFF, c->out);
	fputc('\n', c->out);
}

static void fmt_span(char *buf, size_t len, double ns)
{
	if (ns >= 1e9)
		snprintf(buf, len, "%.3gs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, len, "%.3gms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, len, "%.3gus", ns / 1e3);
	else
		snprintf(buf, len, "%.3gns", ns);
}

static void draw_notes(struct canvas *c, const struct timeline *tl,
		       size_t hidden)
{
	char a[32], b[32];

	if (hidden)
		note(c, NULL, "... %zu more thread%s not shown (--top, --tid)",
		     hidden, hidden == 1 ? "" : "s");
	if (tl->nlost) {
		uint64_t first = tl->lost[0].begin, last = tl->lost[0].end;

		for (size_t i = 1; i < tl->nlost; i++) {
			first = tl->lost[i].begin < first ? tl->lost[i].begin : first;
			last = tl->lost[i].end > last ? tl->lost[i].end : last;
		}
		fmt_span(a, sizeof(a), first > c->t0 ? (double)(first - c->t0) : 0);
		fmt_span(b, sizeof(b), last > c->t0 ? (double)(last - c->t0) : 0);
		note(c, C_LOST, "warning: %" PRIu64 " records were lost in the"
		     " kernel (ring buffer full) between %s and %s: '?' marks the"
		     " time they affect", tl->lost_records, a, b);
	}
	if (tl->truncated)
		note(c, C_DIM, "note: the timeline keeps the first %zu GIL cycles"
		     " only (truncated); the figures above count them all",
		     tl->max_cycles);
}

static void draw(struct canvas *c, const struct timeline *tl,
		 struct lane *lanes, size_t nlanes, size_t shown)
{
	unsigned char *cells = malloc(c->ncols);
	uint64_t cut = tl->truncated ? kept_until(tl) : UINT64_MAX;
	char a[32], b[32];

	if (!cells)
		return;
	memset(c->mark, CELL_RUN, c->ncols);
	if (cut < c->t1)
		mark_span(c, cut, c->t1, CELL_CUT);
	for (size_t i = 0; i < tl->nlost; i++)
		mark_span(c, tl->lost[i].begin, tl->lost[i].end, CELL_LOST);

	fmt_span(a, sizeof(a), (double)(c->t1 - c->t0));
	fmt_span(b, sizeof(b), c->w);
	fprintf(c->out, "\n%sGIL timeline%s  %s traced, one column = %s\n",
		c->color ? C_BOLD : "", c->color ? C_OFF : "", a, b);
	fprintf(c->out, "%s%*s NAME%s\n", c->color ? C_BOLD : "", TID_COLS,
		"TID", c->color ? C_OFF : "");
	for (size_t i = 0; i < shown; i++)
		draw_lane(c, &lanes[i], cells);
	draw_axis(c);
	draw_legend(c, tl, cut < c->t1);
	draw_notes(c, tl, nlanes - shown);
	free(cells);
}

int report_timeline(FILE *out, const struct model *m,
		    const struct timeline *tl, const struct report_opts *o,
		    int width)
{
	struct canvas c = { .out = out };
	struct lane *lanes;
	size_t nlanes, shown;
	int top = o && o->top > 0 ? o->top : DEFAULT_TOP;

	if (!out || !tl)
		return -EINVAL;
	c.color = o && o->color;
	c.t0 = tl->t0 ? tl->t0 : m ? m->t0_ns : 0;
	c.t1 = tl->t_end ? tl->t_end : m ? m->t_end_ns : 0;
	if (c.t1 <= c.t0) {
		fprintf(out, "\nGIL timeline: nothing to show (empty interval)\n");
		return ferror(out) ? -EIO : 0;
	}
	if (width < MIN_WIDTH)
		width = MIN_WIDTH;
	c.width = width;
	c.ncols = (size_t)width - LABEL_COLS - 2;
	c.w = (double)(c.t1 - c.t0) / (double)c.ncols;
	lanes = calloc(tl->nthreads ? tl->nthreads : 1, sizeof(*lanes));
	c.mark = malloc(c.ncols);
	c.hold = calloc(c.ncols, sizeof(*c.hold));
	c.wait = calloc(c.ncols, sizeof(*c.wait));
	if (!lanes || !c.mark || !c.hold || !c.wait) {
		free(lanes);
		free(c.mark);
		free(c.hold);
		free(c.wait);
		return -ENOMEM;
	}
	nlanes = collect_lanes(m, tl, o, lanes, (size_t)top);
	shown = nlanes < (size_t)top ? nlanes : (size_t)top;
	if (nlanes)
		draw(&c, tl, lanes, nlanes, shown);
	else
		fprintf(out, "\nGIL timeline: no %sthread took or waited for the"
			" GIL\n", o && o->ntids ? "selected (--tid) " : "");
	free(lanes);
	free(c.mark);
	free(c.hold);
	free(c.wait);
	fflush(out);
	return ferror(out) ? -EIO : 0;
}
