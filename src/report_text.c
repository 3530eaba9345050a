// SPDX-License-Identifier: MIT
/*
 * report_text.c - the terminal report: header, per-thread table, optional
 * log2 histograms, warnings and the one-line verdict. It only reads a
 * closed struct model (model.h); docs/reading-the-report.md explains every
 * figure it prints. Also home of the helpers both renderers share: thread
 * selection (--tid, busiest first) and the verdict. With the event stream
 * (o->tl), a "who waited behind whom" section (docs/views.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model.h"
#include "model_stacks.h"
#include "report.h"
#include "timeline.h"

#ifndef GILTRACE_VERSION
#define GILTRACE_VERSION "0.0.0"
#endif

#define DEFAULT_TOP 20
/* Verdict thresholds (docs/reading-the-report.md, "The verdict"). */
#define WAIT_SUBSTANTIAL 0.10 /* a thread "waits" at >= 10% of its time */
#define HELD_HIGH 0.80
#define HELD_LOW 0.20
#define HINT_WAIT 0.25        /* average wait share that earns the hint */
#define LIST_MAX 5            /* threads named in one warning line */
#define HIST_STARS 40

#define C_BOLD "\033[1m"
#define C_DIM "\033[2m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_OFF "\033[0m"

static const struct report_opts default_opts = { .top = DEFAULT_TOP };

static const char *col(const struct report_opts *o, const char *c)
{
	return o->color ? c : "";
}

/* ---- formatting ---------------------------------------------------- */

/* Print @v with 3 significant digits (no exponent). */
static void fmt_sig3(char *buf, size_t len, double v, const char *unit)
{
	if (v < 9.995)
		snprintf(buf, len, "%.2f%s", v, unit);
	else if (v < 99.95)
		snprintf(buf, len, "%.1f%s", v, unit);
	else
		snprintf(buf, len, "%.0f%s", v, unit);
}

/* Human duration: ns below 1 µs, then µs, ms, s with 3 significant digits. */
static void fmt_dur(char *buf, size_t len, uint64_t ns)
{
	static const struct { double div; const char *unit; } units[] = {
		{ 1e3, "µs" }, { 1e6, "ms" }, { 1e9, "s" },
	};
	size_t i = 0, n = sizeof(units) / sizeof(units[0]);

	if (ns < 1000) {
		snprintf(buf, len, "%" PRIu64 "ns", ns);
		return;
	}
	while (i + 1 < n && (double)ns >= units[i + 1].div)
		i++;
	/* 999.7µs would print as "1000µs": say 1.00ms instead. */
	if (i + 1 < n && (double)ns / units[i].div >= 999.5)
		i++;
	fmt_sig3(buf, len, (double)ns / units[i].div, units[i].unit);
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

/* Terminal columns of a UTF-8 string (µ is two bytes, one column). */
static int columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Print @s in @width columns, right-aligned (or left when @width < 0). */
static void put_col(FILE *out, const char *s, int width)
{
	int left = width < 0, pad = (left ? -width : width) - columns(s);

	if (!left)
		fprintf(out, "%*s", pad > 0 ? pad : 0, "");
	fputs(s, out);
	if (left)
		fprintf(out, "%*s", pad > 0 ? pad : 0, "");
}

static void put_dur(FILE *out, uint64_t ns, int width)
{
	char b[32];

	fmt_dur(b, sizeof(b), ns);
	put_col(out, b, width);
}

/* ---- thread selection ---------------------------------------------- */

static bool tid_wanted(const struct report_opts *o, uint32_t tid)
{
	if (!o->tids || !o->ntids)
		return true;
	for (size_t i = 0; i < o->ntids; i++)
		if ((uint32_t)o->tids[i] == tid)
			return true;
	return false;
}

static int busier_first(const void *a, const void *b)
{
	const struct model_thread *x = *(const struct model_thread *const *)a;
	const struct model_thread *y = *(const struct model_thread *const *)b;
	uint64_t bx = x->hold_ns + x->wait_ns, by = y->hold_ns + y->wait_ns;

	if (bx != by)
		return bx > by ? -1 : 1;
	if (x->k.tid != y->k.tid)
		return x->k.tid < y->k.tid ? -1 : 1;
	return x->k.first_seen_ns < y->k.first_seen_ns ? -1 :
	       x->k.first_seen_ns > y->k.first_seen_ns;
}

ssize_t report__threads(const struct model *m, const struct report_opts *o,
			const struct model_thread ***out)
{
	const struct model_thread **v;
	size_t n = 0;

	if (!o)
		o = &default_opts;
	*out = NULL;
	v = calloc(m->nthreads ? m->nthreads : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->nthreads; i++)
		if (tid_wanted(o, m->threads[i].k.tid))
			v[n++] = &m->threads[i];
	qsort(v, n, sizeof(*v), busier_first);
	*out = v;
	return (ssize_t)n;
}

static bool thread_active(const struct model_thread *t)
{
	return t->hold_ns || t->wait_ns || t->k.acquisitions ||
	       t->k.hold.count || t->k.wait.count || t->k.waits_abandoned;
}

/* ---- verdict -------------------------------------------------------- */

/*
 * The time a thread was there to be measured: from the later of the start
 * of tracing and its first GIL event to the earlier of its exit and the end
 * of tracing; never less than its own hold + wait (a thread holding or
 * waiting when tracing began has figures from before its first event).
 */
static uint64_t thread_span(const struct model *m, const struct model_thread *t)
{
	uint64_t start = t->k.first_seen_ns > m->t0_ns ? t->k.first_seen_ns : m->t0_ns;
	uint64_t end = m->t_end_ns, span, busy = t->hold_ns + t->wait_ns;

	if (t->exited && t->k.exit_ns && t->k.exit_ns < end)
		end = t->k.exit_ns;
	span = end > start ? end - start : 0;
	if (span < busy)
		span = busy;
	if (span > model__interval_ns(m))
		span = model__interval_ns(m);
	return span;
}

double report__wait_share(const struct model *m, const struct model_thread *t)
{
	double s = share(t->wait_ns, thread_span(m, t));

	return s > 1.0 ? 1.0 : s;
}

static double held_share(const struct model *m)
{
	double s = share(model__held_ns(m), model__interval_ns(m));

	return s > 1.0 ? 1.0 : s;
}

static const char hint[] =
	" (processes, a free-threaded build, or C extensions that release"
	" the GIL would help)";

void report_verdict(const struct model *m, const struct report_opts *o,
		    char *buf, size_t len)
{
	const struct model_thread **v = NULL, *top = NULL;
	uint64_t interval = model__interval_ns(m), held = model__held_ns(m);
	double held_pct = 100.0 * held_share(m), sum = 0, wmax = 0;
	size_t nwait = 0;
	ssize_t n;

	if (!buf || !len)
		return;
	if (!interval) {
		snprintf(buf, len, "nothing was traced (empty interval)");
		return;
	}
	if (!held && !m->acquisitions && strcmp(m->mode, "contention")) {
		snprintf(buf, len, "the GIL was not taken while traced: no Python"
			 " code ran (the threads were idle or blocked)");
		return;
	}
	n = report__threads(m, o, &v);
	if (n < 0) {
		snprintf(buf, len, "GIL held %.0f%% of the time", held_pct);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		double w = report__wait_share(m, v[i]);

		if (w >= WAIT_SUBSTANTIAL) {
			nwait++;
			sum += w;
		}
		if (w > wmax)
			wmax = w;
		if (!top || v[i]->hold_ns > top->hold_ns)
			top = v[i];
	}
	free(v);

	if (!strcmp(m->mode, "contention") && !m->sample_hz) {
		/* Holds were not measured: say only what the waits say. */
		if (nwait)
			snprintf(buf, len, "%zu thread%s spent %.0f%% of %s time "
				 "waiting for the GIL (holds not measured)", nwait,
				 nwait == 1 ? "" : "s", 100.0 * sum / (double)nwait,
				 nwait == 1 ? "its" : "their");
		else
			snprintf(buf, len, "no thread waited much for the GIL "
				 "(holds not measured)");
		return;
	}
	if (nwait) {
		double avg = sum / (double)nwait;
		bool high = held_pct >= 100.0 * HELD_HIGH && nwait >= 2;

		snprintf(buf, len, "GIL held %.0f%% of the time; %zu thread%s spent"
			 " %.0f%% of %s time waiting for it: %s%s",
			 held_pct, nwait, nwait == 1 ? "" : "s", 100.0 * avg,
			 nwait == 1 ? "its" : "their",
			 high ? "threads give no parallel speed-up here" :
			 nwait == 1 ? "waiting for the GIL slows it down" :
				"waiting for the GIL slows them down",
			 avg >= HINT_WAIT ? hint : "");
	} else if (held_pct < 100.0 * HELD_LOW) {
		snprintf(buf, len, "GIL held %.0f%% of the time: it is not the"
			 " bottleneck here; threads mostly run without it (I/O,"
			 " sleep, or C code that releases it)", held_pct);
	} else if (top && top->hold_ns >= held - held / 10) {
		snprintf(buf, len, "one thread holds the GIL %.0f%% of the time"
			 " and %s: the GIL costs %s here",
			 100.0 * share(top->hold_ns, interval),
			 wmax < 0.01 ? "nobody waits" : "the others rarely wait",
			 wmax < 0.01 ? "nothing" : "little");
	} else {
		snprintf(buf, len, "GIL held %.0f%% of the time, shared by several"
			 " threads, and no thread waits much for it: the GIL costs"
			 " little here", held_pct);
	}
}

/* ---- sections ------------------------------------------------------- */

/* CLOCK_MONOTONIC ns -> local wall-clock "HH:MM:SS.mmm". */
static void fmt_mono(char *buf, size_t len, uint64_t mono_ns)
{
	struct timespec rt, mt;
	struct tm tm;
	int64_t wall_ns;
	time_t s;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	wall_ns = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec -
		  ((int64_t)mt.tv_sec * 1000000000LL + mt.tv_nsec) + (int64_t)mono_ns;
	s = (time_t)(wall_ns / 1000000000LL);
	if (!localtime_r(&s, &tm)) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
		 tm.tm_sec, (int)(wall_ns % 1000000000LL / 1000000));
}

static void print_header(FILE *out, const struct model *m,
			 const struct report_opts *o)
{
	uint64_t interval = model__interval_ns(m), held = model__held_ns(m);
	char a[32], b[32];

	fprintf(out, "%sgiltrace %s%s  PID %d  %s  Python %s\n",
		col(o, C_BOLD), GILTRACE_VERSION, col(o, C_OFF), (int)m->pid,
		m->exe[0] ? m->exe : "?",
		m->python_version[0] ? m->python_version : "?");
	if (m->library[0])
		fprintf(out, "library   %s\n", m->library);
	fmt_dur(a, sizeof(a), interval);
	if (o->interval) {
		fmt_mono(b, sizeof(b), m->t0_ns);
		fprintf(out, "%sinterval report%s %s .. ", col(o, C_BOLD),
			col(o, C_OFF), b);
		fmt_mono(b, sizeof(b), m->t_end_ns);
		fprintf(out, "%s (%s)", b, a);
	} else {
		fprintf(out, "traced    %s%s", a,
			m->target_exited ? " (until the target exited)" : "");
	}
	if (m->switch_interval_ns) {
		fmt_dur(b, sizeof(b), m->switch_interval_ns);
		fprintf(out, ", switch interval %s\n", b);
	} else {
		fprintf(out, ", switch interval unknown\n");
	}
	fmt_dur(a, sizeof(a), held);
	if (!strcmp(m->mode, "contention")) {
		if (m->sample_hz)
			fprintf(out, "mode      contention: waits that blocked, exact; "
				"holds estimated from CPU samples (%u Hz a CPU)\n",
				m->sample_hz);
		else
			fprintf(out, "mode      contention: waits that blocked, exact; "
				"holds not measured (no CPU samples)\n");
		if (m->sample_hz)
			fprintf(out, "GIL       %sheld ~%.1f%% of the traced time%s "
				"(~%s, estimated), %" PRIu64 " acquisitions after a "
				"blocking wait\n", col(o, C_BOLD),
				100.0 * held_share(m), col(o, C_OFF), a,
				m->acquisitions);
		else
			fprintf(out, "GIL       %" PRIu64 " acquisitions after a "
				"blocking wait\n", m->acquisitions);
		return;
	}
	fprintf(out, "GIL       %sheld %.1f%% of the traced time%s (%s),"
		" %" PRIu64 " acquisitions, %" PRIu64 " holder switches\n",
		col(o, C_BOLD), 100.0 * held_share(m), col(o, C_OFF), a,
		m->acquisitions, m->holder_switches);
}

/* "----- hold -----": @label centred in dashes over @width columns. */
static void put_span(FILE *out, const char *label, int width)
{
	int len = (int)strlen(label) + 2, left = (width - len) / 2;

	for (int i = 0; i < left; i++)
		fputc('-', out);
	fprintf(out, " %s ", label);
	for (int i = left + len; i < width; i++)
		fputc('-', out);
}

/*
 * Table columns: TID(7) NAME(16) | hold time(7) %(7) | wait time(7) %(7) |
 * ACQ(9) | wait p50 p99 max (7 each) | hold p50 p99 max.
 */
#define W_NAME 16
#define W_DUR 7
#define W_SPAN (2 * W_DUR)
#define W_PCTL (3 * W_DUR + 2)

static void print_table_head(FILE *out, const struct report_opts *o)
{
	fprintf(out, "\n%s%*s ", col(o, C_BOLD), 7 + 1 + W_NAME, "");
	put_span(out, "hold", W_SPAN);
	fputc(' ', out);
	put_span(out, "wait", W_SPAN);
	fprintf(out, " %8s  ", "");
	put_span(out, "each wait", W_PCTL);
	fputs("  ", out);
	put_span(out, "each hold", W_PCTL);
	fprintf(out, "%s\n%s%7s %-*s %*s%*s %*s%*s %8s  %*s %*s %*s  %*s %*s %*s%s\n",
		col(o, C_OFF), col(o, C_BOLD), "TID", W_NAME, "NAME",
		W_DUR, "time", W_DUR, "%", W_DUR, "time", W_DUR, "%", "ACQ",
		W_DUR, "p50", W_DUR, "p99", W_DUR, "max",
		W_DUR, "p50", W_DUR, "p99", W_DUR, "max", col(o, C_OFF));
}

static void put_pct(FILE *out, double s, int width)
{
	char b[16];

	snprintf(b, sizeof(b), "%.1f%%", 100.0 * s);
	put_col(out, b, width);
}

/* " p50 p99 max" of a distribution, "-" when it has no interval. */
static void put_dist(FILE *out, const struct gt_dist *d)
{
	if (!d->count) {
		fprintf(out, " %*s %*s %*s", W_DUR, "-", W_DUR, "-", W_DUR, "-");
		return;
	}
	fputc(' ', out);
	put_dur(out, gt_dist_quantile(d, 0.50), W_DUR);
	fputc(' ', out);
	put_dur(out, gt_dist_quantile(d, 0.99), W_DUR);
	fputc(' ', out);
	put_dur(out, d->max_ns, W_DUR);
}

/* @s cut to @width columns ("~" marks a cut), on a UTF-8 boundary. */
static void fit(char *buf, size_t len, const char *s, int width)
{
	size_t i = 0;
	int cols = 0;

	if (columns(s) <= width) {
		snprintf(buf, len, "%s", s);
		return;
	}
	while (s[i] && i + 2 < len) {
		if (((unsigned char)s[i] & 0xC0) != 0x80 && ++cols == width)
			break;
		buf[i] = s[i];
		i++;
	}
	buf[i++] = '~';
	buf[i] = '\0';
}

static void print_row(FILE *out, const struct model *m,
		      const struct model_thread *t, const struct report_opts *o)
{
	uint64_t interval = model__interval_ns(m);
	double w = report__wait_share(m, t);
	const char *wc = w >= 0.5 ? C_RED : w >= WAIT_SUBSTANTIAL ? C_YELLOW : "";
	char name[4 * W_NAME + 2];

	fit(name, sizeof(name), t->name[0] ? t->name : "?", W_NAME);
	fprintf(out, "%7" PRIu32 " ", t->k.tid);
	put_col(out, name, -W_NAME);
	fputc(' ', out);
	put_dur(out, t->hold_ns, W_DUR);
	put_pct(out, share(t->hold_ns, interval), W_DUR);
	fputc(' ', out);
	fputs(col(o, wc), out);
	put_dur(out, t->wait_ns, W_DUR);
	put_pct(out, share(t->wait_ns, interval), W_DUR);
	fputs(*wc ? col(o, C_OFF) : "", out);
	fprintf(out, " %8" PRIu64 " ", (uint64_t)t->k.acquisitions);
	put_dist(out, &t->k.wait);
	fputc(' ', out);
	put_dist(out, &t->k.hold);
	if (t->exited)
		fprintf(out, "  %s(exited)%s", col(o, C_DIM), col(o, C_OFF));
	fputc('\n', out);
}

static void print_stars(FILE *out, uint64_t val, uint64_t vmax)
{
	int stars = vmax ? (int)(val * HIST_STARS / vmax) : 0;

	fputc('|', out);
	for (int i = 0; i < HIST_STARS; i++)
		fputc(i < stars ? '*' : ' ', out);
	fputs("|\n", out);
}

/*
 * One log2 histogram in libbpf-tools style. Slot i is [2^i, 2^(i+1)) ns
 * (slot 0 also holds 0 ns, the last slot everything longer); bounds are
 * printed as human durations, from the lowest to the highest non-empty
 * slot.
 */
static void print_hist(FILE *out, const char *what, const struct gt_dist *d)
{
	uint64_t slots[GT_LOG2_SLOTS], vmax = 0;
	int lo = -1, hi = -1;
	char a[32], b[32];

	gt_dist_log2(d, slots);
	for (int i = 0; i < GT_LOG2_SLOTS; i++) {
		if (!slots[i])
			continue;
		if (lo < 0)
			lo = i;
		hi = i;
		if (slots[i] > vmax)
			vmax = slots[i];
	}
	if (lo < 0) {
		fprintf(out, "     %s: none completed\n", what);
		return;
	}
	fprintf(out, "     %-19s : count    distribution\n", what);
	for (int i = lo; i <= hi; i++) {
		fmt_dur(a, sizeof(a), i ? 1ULL << i : 0);
		if (i == GT_LOG2_SLOTS - 1)
			snprintf(b, sizeof(b), "longer");
		else
			fmt_dur(b, sizeof(b), (1ULL << (i + 1)) - 1);
		put_col(out, a, 10);
		fputs(" -> ", out);
		put_col(out, b, -10);
		fprintf(out, " : %-8" PRIu64 " ", slots[i]);
		print_stars(out, slots[i], vmax);
	}
}

static void print_hists(FILE *out, const struct model_thread **v, size_t n,
			const struct report_opts *o)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "\n%sTID %" PRIu32 " %s%s%s\n", col(o, C_BOLD),
			v[i]->k.tid, v[i]->name, v[i]->exited ? " (exited)" : "",
			col(o, C_OFF));
		print_hist(out, "wait", &v[i]->k.wait);
		print_hist(out, "hold", &v[i]->k.hold);
	}
}

/* ---- who waited behind whom (event stream only) ---------------------- */

#define BLOCKED_TOP 3 /* holders named per waiting thread */

static const char *name_of(const struct model *m, uint32_t tid)
{
	for (size_t i = 0; i < m->nthreads; i++)
		if (m->threads[i].k.tid == tid && m->threads[i].name[0])
			return m->threads[i].name;
	return "?";
}

/* "2.50s (34%) TID 4244 spin-1, ..., +2 more (1.20s)" for @waiter;
 * tl->blocked is sorted by waiter, then wait_ns descending. */
static void print_blocked_row(FILE *out, const struct model *m,
			      const struct timeline *tl,
			      const struct model_thread *t)
{
	size_t shown = 0, more = 0;
	uint64_t rest = 0;
	char name[4 * W_NAME + 2], d[32];

	fit(name, sizeof(name), t->name[0] ? t->name : "?", W_NAME);
	fprintf(out, "%7" PRIu32 " ", t->k.tid);
	put_col(out, name, -W_NAME);
	fputc(' ', out);
	put_dur(out, t->wait_ns, W_DUR);
	fputs("  ", out);
	for (size_t i = 0; i < tl->nblocked; i++) {
		const struct tl_blocked *b = &tl->blocked[i];

		if (b->waiter != t->k.tid)
			continue;
		if (shown == BLOCKED_TOP) {
			more++;
			rest += b->wait_ns;
			continue;
		}
		fmt_dur(d, sizeof(d), b->wait_ns);
		fprintf(out, "%s%s (%.0f%%) ", shown ? ", " : "", d,
			100.0 * share(b->wait_ns, t->wait_ns));
		if (b->holder) {
			fit(name, sizeof(name), name_of(m, b->holder), W_NAME);
			fprintf(out, "TID %" PRIu32 " %s", b->holder, name);
		} else if (!strcmp(m->mode, "contention")) {
			fputs("holder unknown", out);
		} else {
			fputs("hand-off (nobody held it)", out);
		}
		shown++;
	}
	if (more) {
		fmt_dur(d, sizeof(d), rest);
		fprintf(out, ", +%zu more (%s)", more, d);
	}
	fputc('\n', out);
}

static void print_blocked(FILE *out, const struct model *m,
			  const struct model_thread **v, size_t n,
			  const struct report_opts *o)
{
	bool any = false;

	for (size_t i = 0; i < n && !any; i++)
		any = v[i]->wait_ns > 0;
	if (!any)
		return;
	fprintf(out, "\n%swho waited behind whom%s (the GIL's holders during each"
		" thread's waits, longest first)\n", col(o, C_BOLD), col(o, C_OFF));
	fprintf(out, "%s%7s %-*s %*s  %s%s\n", col(o, C_BOLD), "TID", W_NAME,
		"NAME", W_DUR, "waited", "behind", col(o, C_OFF));
	for (size_t i = 0; i < n; i++)
		if (v[i]->wait_ns)
			print_blocked_row(out, m, o->tl, v[i]);
}

/* Offsets of a per-thread counter in struct gt_thread, for the warnings. */
enum tcount { TC_ABANDONED, TC_INCONSISTENT, TC_CLIPPED };

static uint64_t tcount(const struct model_thread *t, enum tcount c)
{
	switch (c) {
	case TC_ABANDONED: return t->k.waits_abandoned;
	case TC_INCONSISTENT: return t->k.inconsistent;
	default: return t->k.waits_clipped;
	}
}

/* ", TID 12 (3), TID 14 (1) and 7 more threads" for threads with @c > 0. */
static void print_tid_list(FILE *out, const struct model_thread **v, size_t n,
			   enum tcount c)
{
	size_t shown = 0, more = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t x = tcount(v[i], c);

		if (!x)
			continue;
		if (shown == LIST_MAX) {
			more++;
			continue;
		}
		fprintf(out, "%sTID %" PRIu32 " (%" PRIu64 ")", shown ? ", " : "",
			v[i]->k.tid, x);
		shown++;
	}
	if (more)
		fprintf(out, " and %zu more thread%s", more, more == 1 ? "" : "s");
}

/* A blank line before the first warning of the section. */
static void gap(FILE *out, bool *first)
{
	if (*first)
		fputc('\n', out);
	*first = false;
}

static void print_warnings(FILE *out, const struct model *m,
			   const struct model_thread **v, size_t n,
			   const struct report_opts *o)
{
	uint64_t ab = 0, ab_ns = 0, inc = 0, clip = 0;
	const char *w = col(o, C_YELLOW), *off = col(o, C_OFF);
	bool first = true;
	char d[32];

	for (size_t i = 0; i < n; i++) {
		ab += v[i]->k.waits_abandoned;
		ab_ns += v[i]->k.waits_abandoned_ns;
		inc += v[i]->k.inconsistent;
		clip += v[i]->k.waits_clipped;
	}
	for (size_t i = 0; o->tids && i < o->ntids; i++) {
		bool seen = false;

		for (size_t j = 0; j < m->nthreads && !seen; j++)
			seen = m->threads[j].k.tid == (uint32_t)o->tids[i];
		if (seen)
			continue;
		gap(out, &first);
		fprintf(out, "note: TID %d (--tid) was not seen taking or"
			" releasing the GIL\n", (int)o->tids[i]);
	}
	if (m->dropped_events) {
		gap(out, &first);
		fprintf(out, "%swarning: %" PRIu64 " GIL transitions were not"
			" recorded: the per-thread map was full (--max-threads)%s\n",
			w, m->dropped_events, off);
	}
	if (ab) {
		gap(out, &first);
		fmt_dur(d, sizeof(d), ab_ns);
		fprintf(out, "%swarning: %" PRIu64 " waits (%s in all) were cut"
			" short by their thread's exit and are not in the wait"
			" figures: ", w, ab, d);
		print_tid_list(out, v, n, TC_ABANDONED);
		fprintf(out, "%s\n", off);
	}
	if (inc) {
		gap(out, &first);
		fprintf(out, "%swarning: %" PRIu64 " probe sequence anomalies (a GIL"
			" transition contradicted the thread's known state: a probe"
			" was missed), so these threads' figures may be off by a few"
			" intervals: ", w, inc);
		print_tid_list(out, v, n, TC_INCONSISTENT);
		fprintf(out, "%s\n", off);
	}
	if (clip) {
		gap(out, &first);
		fprintf(out, "note: %" PRIu64 " waits began before tracing did and"
			" are counted from its start: ", clip);
		print_tid_list(out, v, n, TC_CLIPPED);
		fputc('\n', out);
	}
	if (o && o->tl && o->tl->lost_records) {
		const struct timeline *tl = o->tl;

		gap(out, &first);
		fprintf(out, "%swarning:%s %" PRIu64 " GIL cycles of the event stream"
			" were lost (ring buffer full) in %zu time range%s, from %.3fs"
			" to %.3fs of the trace: the timeline views mark them"
			" incomplete; the figures above come from the kernel's"
			" aggregates and are complete\n", col(o, C_YELLOW),
			col(o, C_OFF), tl->lost_records, tl->nlost,
			tl->nlost == 1 ? "" : "s",
			tl->nlost ? (tl->lost[0].begin - tl->t0) / 1e9 : 0.0,
			tl->nlost ? (tl->lost[tl->nlost - 1].end - tl->t0) / 1e9 : 0.0);
	}
	if (m->exits_deferred) {
		gap(out, &first);
		fprintf(out, "note: %" PRIu64 " thread-exit records waited in the"
			" map (ring buffer full) and were drained from there:"
			" nothing lost\n", m->exits_deferred);
	}
}

/* CPython's own path to take_gil / drop_gil (3.6-3.13), not what the
 * Python code called. */
static bool gil_machinery(const char *fn)
{
	static const char *const names[] = {
		"take_gil", "drop_gil", "PyEval_RestoreThread", "PyEval_SaveThread",
		"PyEval_AcquireThread", "PyEval_ReleaseThread", "_PyThreadState_Attach",
		"_PyThreadState_Detach", "_PyEval_AcquireLock", "_PyEval_ReleaseLock",
		"_Py_HandlePending", "eval_frame_handle_pending", "PyEval_AcquireLock",
		"PyGILState_Ensure", "PyGILState_Release",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		size_t n = strlen(names[i]);

		if (!strncmp(fn, names[i], n) && (!fn[n] || fn[n] == '.'))
			return true;
	}
	return false;
}

/* The innermost Python frame (else the innermost frame that is not a
 * mark), and with --native the first C frame it called (*@call, or NULL). */
static const struct model_frame *where(const struct model_stacks *ms,
				       const struct model_stack *st,
				       const struct model_frame **call)
{
	const struct model_frame *any = NULL;

	*call = NULL;
	for (uint32_t j = st->nframes; j-- > 0;) {
		const struct model_frame *f = &ms->frames[st->frames[j]];

		if (f->kind == MF_PYTHON) {
			/* The C function that released or took the GIL: the
			 * innermost native frame that is not CPython's GIL
			 * machinery itself. */
			for (uint32_t k = st->nframes; k-- > j + 1;) {
				const struct model_frame *n = &ms->frames[st->frames[k]];

				if (n->kind == MF_NATIVE && !gil_machinery(n->function)) {
					*call = n;
					break;
				}
			}
			return f;
		}
		if (!any && f->kind != MF_MARK)
			any = f;
	}
	if (any)
		return any;
	return st->nframes ? &ms->frames[st->frames[st->nframes - 1]] : NULL;
}

static bool has_native(const struct model_stacks *ms)
{
	for (size_t i = 0; i < ms->nframes; i++)
		if (ms->frames[i].kind == MF_NATIVE)
			return true;
	return false;
}

/* --stacks: per thread, the stacks it waited and held in most (innermost
 * frame and share); the full stacks are in --folded, --json, --html. */
static void print_stacks(FILE *out, const struct model *m,
			 const struct model_thread **v, size_t n,
			 const struct report_opts *o)
{
	static const char *const kinds[] = { "waits", "holds" };
	const struct model_stacks *ms = m->stacks;
	char label[1024];

	fprintf(out, "\n%swhere:%s top stacks per thread, innermost Python frame%s "
		"(--folded for flame graphs)\n", col(o, C_BOLD), col(o, C_OFF),
		ms->nframes && has_native(ms) ? " > the C call that released or took the GIL" : "");
	for (size_t i = 0; i < n; i++) {
		const struct model_thread *t = v[i];

		for (uint32_t kind = GT_W_WAIT; kind <= GT_W_HOLD; kind++) {
			const struct model_stack_weight **w;
			uint64_t count, ns;
			ssize_t k;

			model_stacks__thread_total(ms, t->k.tid, t->k.first_seen_ns,
						   kind, &count, &ns);
			if (!ns)
				continue;
			k = model_stacks__thread(ms, t->k.tid, t->k.first_seen_ns,
						 kind, &w);
			for (ssize_t j = 0; j < k && j < 3; j++) {
				const struct model_frame *call, *f =
					where(ms, &ms->stacks[w[j]->stack], &call);
				double share = (double)w[j]->ns / (double)ns;

				if (!f || (j && share < 0.05))
					break;
				model_stacks__label(f, label, sizeof(label));
				fprintf(out, "  %7u %-5s %5.1f%%  %s%s%s\n", t->k.tid,
					j ? "" : kinds[kind], 100.0 * share, label,
					call ? " > " : "", call ? call->function : "");
			}
			free(w);
		}
	}
}

static void print_verdict(FILE *out, const struct model *m,
			  const struct report_opts *o)
{
	char buf[512];
	const char *c = C_GREEN;

	report_verdict(m, o, buf, sizeof(buf));
	if (strstr(buf, "no parallel speed-up") || strstr(buf, "slows"))
		c = C_RED;
	fprintf(out, "\n%sverdict:%s %s%s%s\n", col(o, C_BOLD), col(o, C_OFF),
		col(o, c), buf, col(o, C_OFF));
}

int report_text(FILE *out, const struct model *m, const struct report_opts *o)
{
	const struct model_thread **v;
	size_t rows = 0, shown = 0, limit;
	ssize_t n;

	if (!out || !m)
		return -EINVAL;
	if (!o)
		o = &default_opts;
	n = report__threads(m, o, &v);
	if (n < 0)
		return (int)n;
	/* Interval reports leave out threads idle in the interval. */
	for (ssize_t i = 0; i < n; i++)
		if (!o->interval || thread_active(v[i]))
			v[rows++] = v[i];
	limit = o->top > 0 ? (size_t)o->top : rows;

	print_header(out, m, o);
	if (rows) {
		print_table_head(out, o);
		for (shown = 0; shown < rows && shown < limit; shown++)
			print_row(out, m, v[shown], o);
		if (rows > shown)
			fprintf(out, "... %zu more thread%s not shown (--top)\n",
				rows - shown, rows - shown == 1 ? "" : "s");
	} else {
		fprintf(out, "\nno %sthread took or waited for the GIL%s\n",
			o->ntids ? "selected (--tid) " : "",
			o->interval ? " in this interval" : "");
	}
	if (o->hist)
		print_hists(out, v, shown, o);
	if (o->tl)
		print_blocked(out, m, v, shown, o);
	if (m->stacks && !o->interval)
		print_stacks(out, m, v, shown, o);
	print_warnings(out, m, v, rows, o);
	print_verdict(out, m, o);
	free(v);
	fflush(out);
	return ferror(out) ? -EIO : 0;
}
