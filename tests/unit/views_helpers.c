/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the views' unit tests: one copy of what test_views.c
 * and test_views_stacks.c both need (see views_helpers.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "unit_helpers.h"
#include "views_helpers.h"

/* ---- the sample ------------------------------------------------------------ */

void views_sample_init(struct model *m, struct timeline *tl, pid_t pid,
		       bool library, uint64_t t0, size_t nthreads)
{
	model_py312(m, pid, t0, library);
	snprintf(m->mode, sizeof(m->mode), "exact");
	memset(tl, 0, sizeof(*tl));
	tl->t0 = t0;
	tl->max_cycles = 4000000;
	tl->threads = calloc(nthreads, sizeof(*tl->threads));
	assert_non_null(tl->threads);
	tl->nthreads = nthreads;
}

/* The model's view of thread @t: what the BPF side counts of its cycles. */
static void put_thread(struct model *m, struct tl_thread *t, uint64_t t0)
{
	struct gt_thread k = { 0 };

	k.tid = t->tid;
	k.state = GT_RUNNING;
	k.first_seen_ns = t->ncycles ? t->cycles[0].wait_begin : t0;
	snprintf(k.comm, sizeof(k.comm), "%.*s", (int)sizeof(k.comm) - 1, t->name);
	for (size_t j = 0; j < t->ncycles; j++) {
		const struct tl_cycle *c = &t->cycles[j];

		if (c->flags & TL_ABANDONED) {
			k.waits_abandoned++;
			k.waits_abandoned_ns += c->release - c->wait_begin;
			continue;
		}
		t->wait_ns += c->held - c->wait_begin;
		if (c->flags & TL_OPEN_WAIT) { /* model__close adds it */
			k.state = GT_WAITING;
			k.since_ns = c->wait_begin;
			continue;
		}
		dist_add(&k.wait, c->held - c->wait_begin);
		t->hold_ns += c->release - c->held;
		k.acquisitions++;
		if (c->flags & TL_OPEN_HOLD) {
			k.state = GT_HOLDING;
			k.since_ns = c->held;
			continue;
		}
		dist_add(&k.hold, c->release - c->held);
	}
	m->acquisitions += k.acquisitions;
	assert_non_null(model__put_thread(m, &k, false));
}

static int by_held(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Every hold as (held, release, tid), by held; their count in *@n. */
static uint64_t *holds(const struct timeline *tl, size_t *n)
{
	size_t total = 0, k = 0;
	uint64_t *h;

	for (size_t i = 0; i < tl->nthreads; i++)
		total += tl->threads[i].ncycles;
	h = calloc(3 * (total + 1), sizeof(*h));
	assert_non_null(h);
	for (size_t i = 0; i < tl->nthreads; i++)
		for (size_t j = 0; j < tl->threads[i].ncycles; j++, k++) {
			h[3 * k] = tl->threads[i].cycles[j].held;
			h[3 * k + 1] = tl->threads[i].cycles[j].release;
			h[3 * k + 2] = tl->threads[i].tid;
		}
	qsort(h, k, 3 * sizeof(*h), by_held);
	*n = k;
	return h;
}

static void add_blocked(struct timeline *tl, uint32_t waiter, uint32_t holder,
			uint64_t ns)
{
	size_t i;

	for (i = 0; i < tl->nblocked; i++)
		if (tl->blocked[i].waiter == waiter && tl->blocked[i].holder == holder)
			break;
	if (i == tl->nblocked) {
		tl->blocked = realloc(tl->blocked, (i + 1) * sizeof(*tl->blocked));
		assert_non_null(tl->blocked);
		tl->blocked[i] = (struct tl_blocked){ waiter, holder, 0, 0 };
		tl->nblocked++;
	}
	tl->blocked[i].wait_ns += ns;
	tl->blocked[i].count++;
}

static int blocked_order(const void *a, const void *b)
{
	const struct tl_blocked *x = a, *y = b;

	if (x->waiter != y->waiter)
		return x->waiter < y->waiter ? -1 : 1;
	return (x->wait_ns < y->wait_ns) - (x->wait_ns > y->wait_ns);
}

/* What timeline.c computes: each wait split by overlap with the other
 * threads' holds (@h, @k of them, by held); the rest goes to holder 0. */
static void compute_blocked(struct timeline *tl, const uint64_t *h, size_t k)
{
	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++) {
			uint64_t b = t->cycles[j].wait_begin, e = t->cycles[j].held;
			uint64_t covered = 0;
			size_t lo = 0, hi = k;

			if (e <= b)
				continue;
			while (lo < hi) { /* first hold from b on; then back a few */
				size_t mid = lo + (hi - lo) / 2;

				if (h[3 * mid] < b)
					lo = mid + 1;
				else
					hi = mid;
			}
			lo = lo > 4 ? lo - 4 : 0;
			for (size_t x = lo; x < k; x++) {
				uint64_t lo = h[3 * x] > b ? h[3 * x] : b;
				uint64_t hi = h[3 * x + 1] < e ? h[3 * x + 1] : e;

				if (h[3 * x] >= e)
					break;
				if (hi <= lo || h[3 * x + 2] == t->tid)
					continue;
				add_blocked(tl, t->tid, (uint32_t)h[3 * x + 2], hi - lo);
				covered += hi - lo;
			}
			if (covered < e - b)
				add_blocked(tl, t->tid, 0, e - b - covered);
		}
	}
	qsort(tl->blocked, tl->nblocked, sizeof(*tl->blocked), blocked_order);
}

void views_sample_close(struct model *m, struct timeline *tl)
{
	uint32_t last = 0;
	uint64_t *h;
	size_t k;

	for (size_t i = 0; i < tl->nthreads; i++)
		put_thread(m, &tl->threads[i], tl->t0);
	h = holds(tl, &k);
	for (size_t i = 0; i < k; i++) { /* holder switches, in time order */
		if (last && h[3 * i + 2] != last)
			tl->holder_switches++;
		last = (uint32_t)h[3 * i + 2];
	}
	m->holder_switches = tl->holder_switches;
	model__close(m, tl->t_end);
	compute_blocked(tl, h, k);
	free(h);
}

void views_sample_free(struct model *m, struct timeline *tl)
{
	for (size_t i = 0; i < tl->nthreads; i++)
		free(tl->threads[i].cycles);
	free(tl->threads);
	free(tl->blocked);
	free(tl->lost);
	model__free(m);
}

/* ---- rendering ---------------------------------------------------------------- */

char *render_html(const struct model *m, const struct timeline *tl,
		  const char *assets, int *rc, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = report_html(f, m, tl, assets, err, errlen);
	fclose(f);
	return buf;
}

json_t *html_data(const char *html)
{
	const char *tag = "id=\"giltrace-data\">", *b = strstr(html, tag), *e;
	json_error_t je;
	json_t *v;

	assert_non_null(b);
	b += strlen(tag);
	e = strstr(b, "</script>");
	assert_non_null(e);
	v = json_loadb(b, (size_t)(e - b), 0, &je);
	if (!v)
		fail_msg("page data does not parse: %s", je.text);
	return v;
}

json_t *render_perfetto(const struct model *m, const struct timeline *tl)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_error_t je;
	json_t *root;

	assert_non_null(f);
	assert_int_equal(report_perfetto(f, m, tl), 0);
	fclose(f);
	root = json_loads(buf, 0, &je);
	if (!root)
		fail_msg("perfetto JSON does not parse: %s (line %d)", je.text, je.line);
	free(buf);
	return root;
}

size_t count_of(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s++;
	}
	return n;
}

/* ---- files -------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

const char *fake_assets(const char *sub, const char *echarts, const char *app,
			const char *css, const char *d3, const char *flame)
{
	static char dir[128];

	snprintf(dir, sizeof(dir), "%s/%s", unit_tmpdir, sub);
	mkdir(dir, 0755);
	write_file(dir, "echarts.min.js", echarts);
	write_file(dir, "giltrace-report.js", app);
	write_file(dir, "giltrace-report.css", css);
	if (d3 && flame) {
		write_file(dir, "d3.min.js", d3);
		write_file(dir, "d3-flamegraph.umd.min.js", flame);
	}
	return dir;
}

/* @dir/@name@ext opened for writing, or NULL. */
static FILE *open_view(const char *dir, const char *name, const char *ext)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
	return fopen(path, "w");
}

int write_views(const char *dir, const char *name, const struct model *m,
		const struct timeline *tl, bool text)
{
	struct report_opts o = { .top = 20, .tl = tl };
	char err[1024];
	FILE *f;
	int rc = 0;

	f = open_view(dir, name, ".json");
	rc |= !f || report_json(f, m, &o);
	if (f)
		fclose(f);
	f = open_view(dir, name, ".perfetto.json");
	rc |= !f || report_perfetto(f, m, tl);
	if (f)
		fclose(f);
	if (text) {
		f = open_view(dir, name, ".txt");
		rc |= !f || report_text(f, m, &o) ||
		      report_timeline(f, m, tl, &o, 100);
		if (f)
			fclose(f);
	}
	f = open_view(dir, name, ".html");
	if (!f || report_html(f, m, tl, NULL, err, sizeof(err))) {
		fprintf(stderr, "%s\n", f ? err : "cannot write the HTML sample");
		rc = 1;
	}
	if (f)
		fclose(f);
	return rc ? 1 : 0;
}
