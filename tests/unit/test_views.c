// SPDX-License-Identifier: MIT
/*
 * test_views.c - unit tests of the timeline views (report_timeline.c,
 * report_perfetto.c, report_html.c) and of blocked_by in report_json.c and
 * report_text.c, on a timeline and model built by hand: a simulated GIL
 * shared by three CPU-bound threads and one I/O thread (FIFO hand-off,
 * 5 ms switch interval).
 *
 * `test_views --sample DIR` writes that sample's views instead of testing:
 * DIR/sample.json (giltrace/1 + blocked_by), DIR/sample.perfetto.json,
 * DIR/sample.html (assets from $GILTRACE_ASSETS or the build's) and
 * DIR/sample.txt (terminal report + timeline); DIR/edge.* the same for a
 * trace ending with open and abandoned intervals and with records lost.
 * `test_views --sample DIR SECONDS` writes DIR/long.* for a standard
 * sample of that length (from ~400 s on, the HTML is downsampled). For
 * tests/web/check_html.js, tests/lib/perfetto_check.py and docs/views.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include "model.h"
#include "report.h"
#include "timeline.h"
#include "unit_helpers.h"
#include "views_helpers.h"

#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (100 * SEC)

/* ---- a simulated GIL ------------------------------------------------------ */

struct sim_thread {
	uint32_t tid;
	const char *name;
	bool cpu;          /* CPU-bound: wants the GIL back right away */
	uint64_t start, stop; /* wants the GIL from start, gives up at stop */
	uint64_t want;     /* when it next enters take_gil */
	struct tl_cycle *cyc;
	size_t n, cap;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void)
{
	return splitmix64(&rng_state);
}

/* @v +- @pct percent. */
static uint64_t jitter(uint64_t v, unsigned pct)
{
	uint64_t span = v * pct / 100;

	return span ? v - span + rng_next() % (2 * span + 1) : v;
}

static void push_cycle(struct sim_thread *t, uint64_t wb, uint64_t held,
		       uint64_t rel, uint32_t flags)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->cyc = realloc(t->cyc, t->cap * sizeof(*t->cyc));
		assert_non_null(t->cyc);
	}
	t->cyc[t->n++] = (struct tl_cycle){ wb, held, rel, (uint32_t)(t->n % 2), flags };
}

/*
 * Run the GIL from T0 to T0 + @len: the holder keeps it for the switch
 * interval (CPU-bound) or ~80 µs (I/O); the longest waiter gets it 30 µs
 * after the release; a thread that nobody else waits behind takes it back.
 */
static void simulate(struct sim_thread *th, size_t n, uint64_t len, bool edge)
{
	uint64_t t = T0, end = T0 + len;
	struct sim_thread *h = NULL;

	for (size_t i = 0; i < n; i++)
		th[i].want = T0 + th[i].start;
	for (;;) {
		struct sim_thread *next = NULL;
		uint64_t held, rel;

		for (size_t i = 0; i < n; i++)
			if (th[i].want < T0 + th[i].stop &&
			    (!next || th[i].want < next->want))
				next = &th[i];
		if (!next)
			break;
		held = next->want > t ? next->want : t;
		if (h && h != next && held < t + 30 * US)
			held = t + 30 * US;
		if (held >= end)
			break;
		rel = held + (next->cpu ? jitter(5 * MS, 10) : jitter(80 * US, 50));
		if (rel > end)
			rel = end;
		push_cycle(next, next->want, held, rel, 0);
		next->want = rel + (next->cpu ? 2 * US : jitter(20 * MS, 30));
		h = next;
		t = rel;
		if (rel == end)
			break;
	}
	if (!edge)
		return;
	/* At the end: the holder's hold and the waits in progress are open;
	 * threads that stopped die in take_gil (their wait is abandoned). */
	if (h && h->n && h->cyc[h->n - 1].release == end)
		h->cyc[h->n - 1].flags |= TL_OPEN_HOLD;
	for (size_t i = 0; i < n; i++) {
		if (&th[i] == h)
			continue;
		if (th[i].want < end && th[i].want < T0 + th[i].stop)
			push_cycle(&th[i], th[i].want, end, end, TL_OPEN_WAIT);
		else if (th[i].stop < len && th[i].want + 3 * MS < end)
			push_cycle(&th[i], th[i].want, th[i].want + 3 * MS,
				   th[i].want + 3 * MS, TL_ABANDONED);
	}
}

/* ---- timeline and model from the simulation -------------------------------- */

struct sample {
	struct timeline tl;
	struct model m;
};

static void add_probe(struct model *m, const char *fn, const char *role,
		      const char *kind, uint64_t off)
{
	struct model_probe p = { 0 };

	snprintf(p.function, sizeof(p.function), "%s", fn);
	snprintf(p.symbol, sizeof(p.symbol), "%s", fn);
	snprintf(p.file, sizeof(p.file), "%s", m->library);
	p.offset = off;
	p.address = off + 0x1000;
	snprintf(p.kind, sizeof(p.kind), "%s", kind);
	snprintf(p.role, sizeof(p.role), "%s", role);
	assert_int_equal(model__add_probe(m, &p), 0);
}

/* Timeline and model of @n simulated threads over @len ns. Takes the
 * threads' cycle arrays. */
static void build(struct sample *s, struct sim_thread *th, size_t n,
		  uint64_t len)
{
	struct model *m = &s->m;

	views_sample_init(m, &s->tl, 4242, true, T0, n);
	add_probe(m, "take_gil", "wait_begin", "uprobe", 0x1f3a30);
	add_probe(m, "take_gil", "held", "uretprobe", 0x1f3a30);
	add_probe(m, "drop_gil", "hold_end", "uprobe", 0x1f5100);
	s->tl.t_end = T0 + len;
	for (size_t i = 0; i < n; i++) {
		struct tl_thread *t = &s->tl.threads[i];

		t->tid = th[i].tid;
		snprintf(t->name, sizeof(t->name), "%s", th[i].name);
		t->cycles = th[i].cyc;
		t->ncycles = th[i].n;
	}
	views_sample_close(m, &s->tl);
}

static void sample_free(struct sample *s)
{
	views_sample_free(&s->m, &s->tl);
}

/* The standard sample: main thread alone for 100 ms (it re-takes the GIL
 * it drops), then two CPU-bound workers and an I/O thread; worker-2 stops
 * at 1.5 s. */
static void sample_run(struct sample *s, uint64_t len, bool edge)
{
	struct sim_thread th[] = {
		{ 4242, "python3.12", true, 0, UINT64_MAX / 2 },
		{ 4243, "worker-1", true, 100 * MS, UINT64_MAX / 2 },
		{ 4244, "worker-2", true, 100 * MS, 1500 * MS },
		{ 4245, "io-thread", false, 50 * MS, UINT64_MAX / 2 },
	};

	rng_state = 0x9E3779B97F4A7C15ULL;
	simulate(th, 4, len, edge);
	build(s, th, 4, len);
}

static void sample_standard(struct sample *s, uint64_t len)
{
	sample_run(s, len, false);
}

/* The same, ending with open and abandoned intervals, and 37 records lost
 * around 1 s. */
static void sample_edge(struct sample *s, uint64_t len)
{
	sample_run(s, len, true);
	s->tl.lost = calloc(1, sizeof(*s->tl.lost));
	assert_non_null(s->tl.lost);
	s->tl.lost[0] = (struct tl_span){ T0 + 1000 * MS, T0 + 1040 * MS, 37 };
	s->tl.nlost = 1;
	s->tl.lost_records = 37;
}

/* ---- helpers ---------------------------------------------------------------- */

/* Render with @fn into a string (free it). */
static char *render_timeline(const struct sample *s, const struct report_opts *o,
			     int width)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(report_timeline(f, &s->m, &s->tl, o, width), 0);
	fclose(f);
	return buf;
}

static int ucols(const char *s, size_t n)
{
	int c = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

static int max_line_cols(const char *s)
{
	int max = 0;

	while (*s) {
		size_t n = strcspn(s, "\n");
		int c = ucols(s, n);

		max = c > max ? c : max;
		s += n + (s[n] == '\n');
	}
	return max;
}

/* The line of @out holding @needle (a copy in @line). */
static bool find_line(const char *out, const char *needle, char *line,
		      size_t len)
{
	const char *p = strstr(out, needle), *b, *e;

	if (!p)
		return false;
	for (b = p; b > out && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	if (!e)
		e = p + strlen(p);
	snprintf(line, len, "%.*s", (int)(e - b), b);
	return true;
}

/* ---- terminal timeline ----------------------------------------------------- */

static void test_timeline_lanes(void **state)
{
	struct sample s;
	struct report_opts o = { 0 };
	char line[512];

	sample_standard(&s, 2 * SEC);
	for (int width = 60; width <= 160; width += 50) {
		char *out = render_timeline(&s, &o, width);

		assert_true(max_line_cols(out) <= width);
		for (size_t i = 0; i < s.tl.nthreads; i++) {
			char label[96];

			snprintf(label, sizeof(label), "%" PRIu32 " %s",
				 s.tl.threads[i].tid, s.tl.threads[i].name);
			assert_true(find_line(out, label, line, sizeof(line)));
			assert_int_equal(ucols(line, strlen(line)), width);
		}
		/* CPU-bound threads hold and wait; the I/O thread mostly runs */
		assert_true(find_line(out, "worker-1", line, sizeof(line)));
		assert_non_null(strchr(line, '#'));
		assert_non_null(strchr(line, '-'));
		assert_non_null(strstr(out, "holds the GIL"));
		assert_non_null(strstr(out, "waits for it"));
		assert_non_null(strstr(out, "runs without it"));
		assert_true(find_line(out, "0s", line, sizeof(line)));
		assert_non_null(strstr(line, "1s"));
		assert_null(strchr(out, '\033'));
		assert_null(strchr(out, '?'));
		free(out);
	}
	sample_free(&s);
}

static void test_timeline_color_filter_top(void **state)
{
	struct sample s;
	pid_t one = 4244;
	struct report_opts o = { .color = true };
	char *out;

	sample_standard(&s, 2 * SEC);
	out = render_timeline(&s, &o, 80);
	assert_non_null(strstr(out, "\033[1;31m#"));
	free(out);

	o = (struct report_opts){ .tids = &one, .ntids = 1 };
	out = render_timeline(&s, &o, 80);
	assert_non_null(strstr(out, "4244 worker-2"));
	assert_null(strstr(out, "worker-1"));
	free(out);

	o = (struct report_opts){ .top = 2 };
	out = render_timeline(&s, &o, 80);
	assert_non_null(strstr(out, "2 more threads not shown"));
	assert_null(strstr(out, "io-thread")); /* the least busy */
	free(out);
	sample_free(&s);
}

static void test_timeline_lost_truncated(void **state)
{
	struct sample s;
	struct report_opts o = { 0 };
	char *out, line[512];

	sample_standard(&s, 2 * SEC);
	s.tl.lost = calloc(1, sizeof(*s.tl.lost));
	s.tl.lost[0] = (struct tl_span){ T0 + 1000 * MS, T0 + 1100 * MS, 42 };
	s.tl.nlost = 1;
	s.tl.lost_records = 42;
	/* keep the cycles before 1.6 s only */
	for (size_t i = 0; i < s.tl.nthreads; i++)
		while (s.tl.threads[i].ncycles &&
		       s.tl.threads[i].cycles[s.tl.threads[i].ncycles - 1].release >
		       T0 + 1600 * MS)
			s.tl.threads[i].ncycles--;
	s.tl.truncated = true;
	s.tl.max_cycles = 1234;
	out = render_timeline(&s, &o, 100);
	assert_true(find_line(out, "worker-1", line, sizeof(line)));
	assert_non_null(strchr(line, '?'));
	assert_non_null(strchr(line, '~'));
	assert_true(strchr(line, '?') < strchr(line, '~'));
	assert_non_null(strstr(out, "records lost"));
	assert_non_null(strstr(out, "42 records were lost"));
	assert_non_null(strstr(out, "first 1234 GIL cycles"));
	free(out);
	sample_free(&s);
}

static void test_timeline_degenerate(void **state)
{
	struct timeline tl = { .t0 = T0, .t_end = T0 };
	struct tl_cycle bad[] = {
		{ T0 + 10, T0 + 5, T0 + 20, 0, 0 },   /* held < wait_begin */
		{ T0 + 30, T0 + 40, T0 + 35, 0, 0 },  /* release < held */
		{ T0 - 50, T0 + 60, UINT64_MAX, 0, 0 },
	};
	struct tl_thread t = { .tid = 7, .cycles = bad, .ncycles = 3 };
	struct report_opts o = { 0 };
	struct model m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	model__init(&m);
	assert_int_equal(report_timeline(f, &m, NULL, &o, 80), -EINVAL);
	assert_int_equal(report_timeline(f, &m, &tl, &o, 80), 0); /* empty */
	tl.t_end = T0 + SEC;
	assert_int_equal(report_timeline(f, &m, &tl, &o, 80), 0); /* no threads */
	tl.threads = &t;
	tl.nthreads = 1;
	assert_int_equal(report_timeline(f, &m, &tl, &o, 3), 0); /* tiny width */
	assert_int_equal(report_perfetto(f, &m, &tl), 0);
	fclose(f);
	assert_non_null(strstr(buf, "nothing to show"));
	assert_non_null(strstr(buf, "no thread took"));
	assert_non_null(strstr(buf, "      7 ?"));
	free(buf);
	model__free(&m);
}

/* Garbage in (times in any order, any flags, huge values, empty names,
 * lost spans anywhere): every view renders without crashing. */
static void test_views_random_input(void **state)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/assets", unit_tmpdir);
	rng_state = 42;
	for (int round = 0; round < 200; round++) {
		struct tl_thread th[3] = { 0 };
		struct tl_span lost[2];
		struct tl_blocked bl[2] = { { 1, 0, 5, 1 }, { 2, 1, 7, 2 } };
		struct tl_cycle cyc[3][6];
		struct timeline tl = { .threads = th, .nthreads = 1 + round % 3,
				       .lost = lost, .nlost = round % 3,
				       .blocked = bl, .nblocked = 2 };
		struct report_opts o = { .color = round % 2, .tl = &tl };
		struct model m;
		char err[512], *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		uint64_t span = round % 5 ? 1000000 : UINT64_MAX / 2;

		model__init(&m);
		m.pid = round;
		tl.t0 = rng_next() % span;
		tl.t_end = rng_next() % span;
		tl.truncated = round % 4 == 0;
		for (size_t i = 0; i < 2; i++)
			lost[i] = (struct tl_span){ rng_next() % span, rng_next() % span, i };
		for (size_t i = 0; i < tl.nthreads; i++) {
			th[i].tid = (uint32_t)(rng_next() % 4);
			th[i].cycles = cyc[i];
			th[i].ncycles = rng_next() % 7;
			if (round % 7 == 0)
				memset(th[i].name, 0xff, sizeof(th[i].name) - 1);
			for (size_t j = 0; j < th[i].ncycles; j++)
				cyc[i][j] = (struct tl_cycle){ rng_next() % span,
					rng_next() % span, rng_next() % span,
					(uint32_t)rng_next(), (uint32_t)rng_next() };
		}
		assert_int_equal(report_timeline(f, &m, &tl, &o, (int)(rng_next() % 300)), 0);
		assert_int_equal(report_perfetto(f, &m, &tl), 0);
		assert_int_equal(report_json(f, &m, &o), 0);
		assert_int_equal(report_text(f, &m, &o), 0);
		assert_int_equal(report_html(f, &m, &tl, dir, err, sizeof(err)), 0);
		fclose(f);
		free(buf);
		model__free(&m);
	}
}

/* ---- Perfetto ------------------------------------------------------------- */

/* ns of a µs figure written by report_perfetto (exact after rounding). */
static uint64_t ns_of(json_t *v)
{
	return (uint64_t)llround(json_number_value(v) * 1000.0);
}

/* The ns a slice lasts: its end (ts + dur, exact in binary) less its
 * start, each rounded to the ns. */
static uint64_t x_ns(json_t *e)
{
	double ts = json_number_value(json_object_get(e, "ts"));
	double dur = json_number_value(json_object_get(e, "dur"));

	return (uint64_t)(llround((ts + dur) * 1000.0) - llround(ts * 1000.0));
}

static const struct tl_thread *tl_find(const struct timeline *tl, uint32_t tid)
{
	for (size_t i = 0; i < tl->nthreads; i++)
		if (tl->threads[i].tid == tid)
			return &tl->threads[i];
	return NULL;
}

static void test_perfetto_sums_flows_counter(void **state)
{
	struct sample s;
	json_t *root, *ev, *e;
	uint64_t hold[4] = { 0 }, wait[4] = { 0 }, last_c = 0;
	size_t i, nflow_s = 0, nflow_f = 0, nnames = 0, ncounter = 0;
	uint64_t expect_flows = 0;

	sample_standard(&s, 2 * SEC);
	root = render_perfetto(&s.m, &s.tl);
	assert_string_equal(json_string_value(json_object_get(root, "displayTimeUnit")), "ns");
	assert_true(json_is_object(json_object_get(root, "metadata")));
	ev = json_object_get(root, "traceEvents");
	assert_true(json_is_array(ev));
	json_array_foreach(ev, i, e) {
		const char *ph = json_string_value(json_object_get(e, "ph"));
		const char *name = json_string_value(json_object_get(e, "name"));
		uint32_t tid = (uint32_t)json_integer_value(json_object_get(e, "tid"));
		size_t k;

		assert_non_null(ph);
		assert_int_equal(json_integer_value(json_object_get(e, "pid")), 4242);
		for (k = 0; k < s.tl.nthreads && s.tl.threads[k].tid != tid; k++)
			;
		if (!strcmp(ph, "X") && !strcmp(name, "holds GIL"))
			hold[k] += x_ns(e);
		if (!strcmp(ph, "X") && !strcmp(name, "waits for GIL"))
			wait[k] += x_ns(e);
		if (!strcmp(ph, "s"))
			nflow_s++;
		if (!strcmp(ph, "f")) {
			nflow_f++;
			assert_string_equal(json_string_value(json_object_get(e, "bp")), "e");
		}
		if (!strcmp(ph, "C")) {
			uint64_t ts = ns_of(json_object_get(e, "ts"));

			assert_string_equal(name, "threads waiting for the GIL");
			assert_true(ts >= last_c);
			last_c = ts;
			ncounter++;
		}
		if (!strcmp(ph, "M") && !strcmp(name, "thread_name")) {
			const struct tl_thread *t = tl_find(&s.tl, tid);
			char want[96];

			assert_non_null(t);
			snprintf(want, sizeof(want), "%" PRIu32 " %s", t->tid, t->name);
			assert_string_equal(json_string_value(json_object_get(
				json_object_get(e, "args"), "name")), want);
			nnames++;
		}
	}
	assert_int_equal(nnames, s.tl.nthreads);
	for (i = 0; i < s.tl.nthreads; i++) {
		assert_int_equal(hold[i], s.tl.threads[i].hold_ns);
		assert_int_equal(wait[i], s.tl.threads[i].wait_ns);
		assert_int_equal(hold[i], s.m.threads[i].hold_ns);
		assert_int_equal(wait[i], s.m.threads[i].wait_ns);
	}
	/* one flow per holder switch: the simulation's hand-offs */
	expect_flows = s.tl.holder_switches;
	assert_true(expect_flows > 100);
	assert_int_equal(nflow_s, expect_flows);
	assert_int_equal(nflow_f, expect_flows);
	assert_true(ncounter > 100);
	json_decref(root);
	sample_free(&s);
}

/* A thread re-taking the GIL it just dropped gets no flow arrow. */
static void test_perfetto_self_retake(void **state)
{
	struct tl_cycle a[] = {
		{ T0 + 0, T0 + 0, T0 + 100, 0, 0 },
		{ T0 + 101, T0 + 102, T0 + 200, 0, 0 },  /* re-takes: no flow */
		{ T0 + 201, T0 + 400, T0 + 500, 0, 0 },  /* after b: flow b->a */
	};
	struct tl_cycle b[] = {
		{ T0 + 150, T0 + 230, T0 + 390, 0, 0 },  /* a->b */
		{ T0 + 600, T0 + 600, T0 + 700, 0, TL_OPEN_HOLD },
	};
	struct tl_thread th[] = {
		{ .tid = 10, .name = "a", .cycles = a, .ncycles = 3 },
		{ .tid = 11, .name = "b", .cycles = b, .ncycles = 2 },
	};
	struct sample s = { .tl = { .t0 = T0, .t_end = T0 + 700, .threads = th,
				    .nthreads = 2 } };
	json_t *root, *e;
	size_t i, ns = 0, nf = 0;
	uint64_t s_ts[8], f_ts[8];
	uint32_t s_tid[8], f_tid[8];

	model__init(&s.m);
	s.m.pid = 10;
	root = render_perfetto(&s.m, &s.tl);
	json_array_foreach(json_object_get(root, "traceEvents"), i, e) {
		const char *ph = json_string_value(json_object_get(e, "ph"));
		uint32_t tid = (uint32_t)json_integer_value(json_object_get(e, "tid"));

		if (!strcmp(ph, "s")) {
			s_ts[ns] = ns_of(json_object_get(e, "ts"));
			s_tid[ns++] = tid;
		} else if (!strcmp(ph, "f")) {
			f_ts[nf] = ns_of(json_object_get(e, "ts"));
			f_tid[nf++] = tid;
		}
	}
	assert_int_equal(ns, 3); /* a->b, b->a, a->b */
	assert_int_equal(nf, 3);
	assert_int_equal(s_tid[0], 10);
	assert_int_equal(f_tid[0], 11);
	assert_int_equal(s_ts[0], 197);  /* inside a's second hold */
	assert_int_equal(f_ts[0], 233);  /* inside b's hold */
	assert_int_equal(s_tid[1], 11);
	assert_int_equal(f_tid[1], 10);
	assert_int_equal(s_tid[2], 10);
	assert_int_equal(f_tid[2], 11);
	json_decref(root);
	model__free(&s.m);
}

/* ---- JSON and terminal: blocked_by ---------------------------------------- */

static void test_json_blocked_by(void **state)
{
	struct sample s;
	struct report_opts o = { 0 };
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f;
	json_t *root, *bb, *e;
	uint64_t sum[8] = { 0 };
	bool handoff = false;

	sample_standard(&s, 2 * SEC);
	f = open_memstream(&buf, &len);
	assert_int_equal(report_json(f, &s.m, &o), 0);
	fclose(f);
	assert_null(strstr(buf, "blocked_by"));
	free(buf);

	o.tl = &s.tl;
	f = open_memstream(&buf, &len);
	assert_int_equal(report_json(f, &s.m, &o), 0);
	fclose(f);
	root = json_loads(buf, 0, NULL);
	assert_non_null(root);
	bb = json_object_get(root, "blocked_by");
	assert_true(json_is_array(bb));
	assert_int_equal(json_array_size(bb), s.tl.nblocked);
	json_array_foreach(bb, i, e) {
		uint32_t w = (uint32_t)json_integer_value(json_object_get(e, "waiter"));
		json_t *h = json_object_get(e, "holder");

		assert_true(json_is_null(h) || json_is_integer(h));
		handoff |= json_is_null(h);
		assert_true(json_integer_value(json_object_get(e, "count")) > 0);
		sum[w - 4242] += (uint64_t)json_integer_value(json_object_get(e, "wait_ns"));
	}
	assert_true(handoff);
	for (i = 0; i < s.tl.nthreads; i++)
		assert_int_equal(sum[s.tl.threads[i].tid - 4242], s.tl.threads[i].wait_ns);
	json_decref(root);
	free(buf);
	sample_free(&s);
}

static void test_text_blocked(void **state)
{
	struct sample s;
	struct report_opts o = { .top = 20 };
	char *buf = NULL, line[1024];
	size_t len = 0;
	FILE *f;

	sample_standard(&s, 2 * SEC);
	o.tl = &s.tl;
	f = open_memstream(&buf, &len);
	assert_int_equal(report_text(f, &s.m, &o), 0);
	fclose(f);
	assert_non_null(strstr(buf, "who waited behind whom"));
	assert_true(find_line(strstr(buf, "who waited behind whom"),
			      "   4243 worker-1", line, sizeof(line)));
	assert_non_null(strstr(line, "TID 4242 python3.12"));
	assert_non_null(strstr(buf, "hand-off (nobody held it)"));
	free(buf);
	sample_free(&s);
}

/* ---- HTML ------------------------------------------------------------------ */

static void test_html_missing_assets(void **state)
{
	struct sample s;
	char err[512];
	int rc;
	char *out;

	sample_standard(&s, SEC);
	out = render_html(&s.m, &s.tl, "/nonexistent/giltrace-assets", &rc, err, sizeof(err));
	assert_true(rc < 0);
	assert_non_null(strstr(err, "/nonexistent/giltrace-assets/echarts.min.js"));
	assert_non_null(strstr(err, "scripts/deps-web.sh"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(strlen(out), 0); /* nothing written */
	free(out);
	sample_free(&s);
}

static void test_html_inlines_and_escapes(void **state)
{
	struct sample s;
	const char *dir;
	char err[512];
	json_t *d, *t, *th;
	size_t i;
	int rc;
	char *out;

	/* assets/, for the HTML tests after this one too */
	dir = fake_assets("assets", "var LIB='</script><!--<script>';/*LIBMARK*/",
			  "var APP='</SCRIPT>';/*APPMARK*/",
			  "body{content:'</style>'}/*CSSMARK*/", NULL, NULL);
	sample_standard(&s, SEC);
	snprintf(s.tl.threads[1].name, sizeof(s.tl.threads[1].name),
		 "</script><b>&x");
	out = render_html(&s.m, &s.tl, dir, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "LIBMARK"));
	assert_non_null(strstr(out, "APPMARK"));
	assert_non_null(strstr(out, "CSSMARK"));
	assert_non_null(strstr(out, "var LIB='<\\/script><\\!--<script>'"));
	assert_non_null(strstr(out, "var APP='<\\/SCRIPT>'"));
	assert_non_null(strstr(out, "content:'<\\/style>'"));
	/* only our own closing tags */
	assert_int_equal(count_of(out, "</script"), 3);
	assert_int_equal(count_of(out, "</style"), 1);
	assert_null(strstr(out, "<b>&x"));
	assert_non_null(strstr(out, "<title>giltrace: PID 4242 python3.12</title>"));

	d = html_data(out);
	assert_string_equal(json_string_value(json_object_get(d, "schema")), "giltrace/1");
	assert_true(json_array_size(json_object_get(d, "threads")) == 4);
	assert_true(json_array_size(json_object_get(d, "blocked_by")) > 0);
	t = json_object_get(d, "timeline");
	assert_false(json_is_true(json_object_get(t, "downsampled")));
	json_array_foreach(json_object_get(t, "threads"), i, th) {
		const struct tl_thread *x = &s.tl.threads[i];
		json_t *seg = json_object_get(th, "seg");
		uint64_t hold = 0, wait = 0;

		assert_int_equal(json_integer_value(json_object_get(th, "tid")), x->tid);
		assert_string_equal(json_string_value(json_object_get(th, "name")), x->name);
		for (size_t j = 0; j + 2 < json_array_size(seg); j += 3) {
			uint64_t len = (uint64_t)(json_integer_value(json_array_get(seg, j + 1)) -
						  json_integer_value(json_array_get(seg, j)));

			if (json_integer_value(json_array_get(seg, j + 2)) == 1)
				hold += len;
			else
				wait += len;
		}
		assert_int_equal(hold, x->hold_ns);
		assert_int_equal(wait, x->wait_ns);
	}
	json_decref(d);
	free(out);
	sample_free(&s);
}

/* Without the event stream: the page has no timeline and no blocked_by. */
static void test_html_no_timeline(void **state)
{
	struct sample s;
	char err[512], dir[128], *buf = NULL;
	size_t len = 0;
	json_t *d;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/assets", unit_tmpdir);
	sample_standard(&s, SEC);
	f = open_memstream(&buf, &len);
	assert_int_equal(report_html(f, &s.m, NULL, dir, err, sizeof(err)), 0);
	fclose(f);
	d = html_data(buf);
	assert_true(json_is_null(json_object_get(d, "timeline")));
	assert_null(json_object_get(d, "blocked_by"));
	assert_int_equal(json_array_size(json_object_get(d, "threads")), 4);
	json_decref(d);
	free(buf);
	assert_int_equal(report_html(NULL, &s.m, NULL, dir, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "giltrace: --html"));
	sample_free(&s);
}

/* Huge traces are downsampled to a bounded page. */
static void test_html_downsampled(void **state)
{
	struct sample s;
	char err[512], dir[128];
	json_t *d, *t, *th;
	size_t i, nseg = 0;
	int rc;
	char *out;

	snprintf(dir, sizeof(dir), "%s/assets", unit_tmpdir);
	sample_standard(&s, 1200 * SEC); /* ~240k cycles */
	out = render_html(&s.m, &s.tl, dir, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	d = html_data(out);
	t = json_object_get(d, "timeline");
	assert_true(json_is_true(json_object_get(t, "downsampled")));
	assert_true(json_integer_value(json_object_get(t, "bucket_ns")) > 0);
	json_array_foreach(json_object_get(t, "threads"), i, th)
		nseg += json_array_size(json_object_get(th, "seg")) / 3;
	assert_true(nseg > 0 && nseg <= 200000);
	json_decref(d);
	free(out);
	sample_free(&s);
}

/* With the build's real assets (skipped when they were not installed). */
static void test_html_real_assets(void **state)
{
#ifdef GILTRACE_ASSETS_DIR
	struct sample s;
	char err[512];
	int rc;
	char *out;

	if (access(GILTRACE_ASSETS_DIR "/echarts.min.js", R_OK)) {
		print_message("skipped: no %s/echarts.min.js (scripts/deps-web.sh)\n",
			      GILTRACE_ASSETS_DIR);
		skip();
	}
	sample_standard(&s, SEC);
	out = render_html(&s.m, &s.tl, GILTRACE_ASSETS_DIR, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "echarts"));
	assert_non_null(strstr(out, "giltrace-data"));
	assert_true(strlen(out) > 500000);
	assert_int_equal(count_of(out, "</script"), 3);
	free(out);
	sample_free(&s);
#else
	skip();
#endif
}

/* ---- --sample --------------------------------------------------------------- */

/* DIR/sample.* (the standard sample) and DIR/edge.* (open, abandoned,
 * lost). */
static int write_sample(const char *dir)
{
	struct sample s;
	int rc;

	sample_standard(&s, 2 * SEC);
	rc = write_views(dir, "sample", &s.m, &s.tl, true);
	sample_free(&s);
	sample_edge(&s, 2 * SEC);
	rc |= write_views(dir, "edge", &s.m, &s.tl, true);
	sample_free(&s);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeline_lanes),
		cmocka_unit_test(test_timeline_color_filter_top),
		cmocka_unit_test(test_timeline_lost_truncated),
		cmocka_unit_test(test_timeline_degenerate),
		cmocka_unit_test(test_perfetto_sums_flows_counter),
		cmocka_unit_test(test_perfetto_self_retake),
		cmocka_unit_test(test_json_blocked_by),
		cmocka_unit_test(test_text_blocked),
		cmocka_unit_test(test_html_missing_assets),
		cmocka_unit_test(test_html_inlines_and_escapes),
		cmocka_unit_test(test_html_no_timeline),
		cmocka_unit_test(test_html_downsampled),
		cmocka_unit_test(test_html_real_assets),
		cmocka_unit_test(test_views_random_input),
	};

	if (argc == 3 && !strcmp(argv[1], "--sample"))
		return write_sample(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "--sample")) { /* DIR SECONDS */
		struct sample s;
		int rc;

		sample_standard(&s, (uint64_t)(atof(argv[3]) * SEC));
		rc = write_views(argv[2], "long", &s.m, &s.tl, true);
		sample_free(&s);
		return rc ? 1 : 0;
	}
	return cmocka_run_group_tests(tests, unit_tmpdir_setup, unit_tmpdir_teardown);
}
