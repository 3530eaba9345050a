// SPDX-License-Identifier: MIT
/*
 * test_report.c - unit tests of the renderers (report_text.c,
 * report_json.c) and of the distribution helpers of model.c, on models
 * built by hand. `test_report --sample [--hist|--json]` prints the sample
 * report of docs/reading-the-report.md (or its JSON, docs/json.md) instead
 * of running the tests.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "model.h"
#include "report.h"
#include "unit_helpers.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (100 * SEC)

/* ---- helpers --------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void)
{
	/* splitmix64: fixed seed, same samples on every run */
	return splitmix64(&rng_state);
}

static double rng_unit(void)
{
	return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)
{
	return sqrt(-2.0 * log(rng_unit())) * cos(2.0 * M_PI * rng_unit());
}

/* @n intervals of @each ns +-10% each, in pairs around @each so that they
 * add up to exactly @n * @each whatever the random draws. */
static void dist_fill(struct gt_dist *d, uint64_t n, uint64_t each)
{
	for (uint64_t i = 0; i + 1 < n; i += 2) {
		uint64_t delta = (uint64_t)(rng_unit() * (double)(each / 10));

		dist_add(d, each + delta);
		dist_add(d, each - delta);
	}
	if (n % 2)
		dist_add(d, each);
}

static struct gt_thread *kthread(uint32_t tid, const char *comm)
{
	struct gt_thread *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	k->tid = tid;
	k->state = GT_RUNNING;
	k->first_seen_ns = T0;
	snprintf(k->comm, sizeof(k->comm), "%s", comm);
	return k;
}

/* A thread that held @hold_ns in @nacq holds and waited @wait_ns in as many
 * waits. */
static void add_busy(struct model *m, uint32_t tid, const char *comm,
		     uint64_t hold_ns, uint64_t wait_ns, uint64_t nacq, bool exited)
{
	struct gt_thread *k = kthread(tid, comm);

	if (nacq) {
		dist_fill(&k->hold, nacq, hold_ns / nacq);
		if (wait_ns)
			dist_fill(&k->wait, nacq, wait_ns / nacq);
	}
	k->acquisitions = nacq;
	if (exited) {
		k->state = GT_EXITED;
		k->exit_ns = m->t0_ns + (hold_ns + wait_ns) * 11 / 10;
	}
	m->acquisitions += nacq;
	m->holder_switches += nacq;
	assert_non_null(model__put_thread(m, k, exited));
	free(k);
}

static void model_start(struct model *m)
{
	model_py312(m, 4242, T0, true);
}

static void add_probes(struct model *m)
{
	struct model_probe p = { .function = "take_gil", .symbol = "take_gil",
				 .offset = 0x1f2a30, .address = 0x1f3a30,
				 .kind = "uprobe", .role = "wait_begin" };

	snprintf(p.file, sizeof(p.file), "%s", m->library);
	assert_int_equal(model__add_probe(m, &p), 0);
	snprintf(p.kind, sizeof(p.kind), "uretprobe");
	snprintf(p.role, sizeof(p.role), "held");
	assert_int_equal(model__add_probe(m, &p), 0);
	snprintf(p.function, sizeof(p.function), "drop_gil");
	snprintf(p.symbol, sizeof(p.symbol), "drop_gil");
	snprintf(p.kind, sizeof(p.kind), "uprobe");
	snprintf(p.role, sizeof(p.role), "hold_end");
	p.offset = 0x1f2800;
	p.address = 0x1f3800;
	assert_int_equal(model__add_probe(m, &p), 0);
	p.inlined = true;
	snprintf(p.caller, sizeof(p.caller), "PyEval_ReleaseLock");
	p.offset = 0x1f4100;
	p.address = 0x1f5100;
	assert_int_equal(model__add_probe(m, &p), 0);
}

/* 4 spinners over 10 s: GIL held 99%, each spinner waits 74%. */
static void model_spinners(struct model *m)
{
	char name[16];

	model_start(m);
	add_probes(m);
	add_busy(m, 4242, "python3.12", 2 * MS, 0, 3, false);
	for (uint32_t i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "spin-%u", i);
		add_busy(m, 4243 + i, name, 2475 * MS, 7400 * MS, 495, false);
	}
	model__close(m, T0 + 10 * SEC);
}

/* Threads sleeping in time.sleep: held 1%. */
static void model_sleepers(struct model *m)
{
	model_start(m);
	add_busy(m, 500, "python3", 40 * MS, 1 * MS, 100, false);
	add_busy(m, 501, "sleeper-1", 30 * MS, 1 * MS, 100, false);
	add_busy(m, 502, "sleeper-2", 30 * MS, 1 * MS, 100, false);
	model__close(m, T0 + 10 * SEC);
}

/* One spinner, the main thread joins it: held 98%, nobody waits. */
static void model_single(struct model *m)
{
	model_start(m);
	add_busy(m, 600, "python3", 1 * MS, 0, 2, false);
	add_busy(m, 601, "spinner", 9800 * MS, 100000, 1960, false);
	model__close(m, T0 + 10 * SEC);
}

/* Output of a renderer as a string (free it). */
static char *render(int (*fn)(FILE *, const struct model *,
			      const struct report_opts *),
		    const struct model *m, const struct report_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(fn(f, m, o), 0);
	fclose(f);
	return buf;
}

static json_t *render_json(const struct model *m, const struct report_opts *o)
{
	char *s = render(report_json, m, o);
	json_error_t e;
	json_t *root = json_loads(s, 0, &e);

	if (!root)
		fail_msg("JSON does not parse: %s (line %d)", e.text, e.line);
	free(s);
	return root;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- distribution helpers (model.c) --------------------------------- */

static void test_quantile_accuracy(void **state)
{
	enum { N = 10000 };
	static const double qs[] = { 0.01, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99, 0.999 };
	uint64_t *v = calloc(N, sizeof(*v));
	struct gt_dist *d = calloc(1, sizeof(*d));

	assert_non_null(v);
	assert_non_null(d);
	/* lognormal around 50 µs, spanning ns to tens of ms */
	for (int i = 0; i < N; i++) {
		v[i] = (uint64_t)(50000.0 * exp(1.5 * rng_normal()));
		dist_add(d, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t rank = (size_t)ceil(qs[i] * N);
		uint64_t exact = v[rank ? rank - 1 : 0];
		uint64_t got = gt_dist_quantile(d, qs[i]);
		double err = fabs((double)got - (double)exact) / (double)exact;

		/* The issue asks for 10%; the buckets give ~3.2%. */
		if (err > 0.035)
			fail_msg("q=%.3f: exact %llu, from buckets %llu (%.1f%%)",
				 qs[i], (unsigned long long)exact,
				 (unsigned long long)got, 100 * err);
	}
	assert_int_equal(gt_dist_quantile(d, 1.0), d->max_ns);
	free(v);
	free(d);
}

static void test_quantile_small_and_empty(void **state)
{
	struct gt_dist *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	assert_int_equal(gt_dist_quantile(d, 0.5), 0);
	for (uint64_t i = 1; i <= 9; i++)
		dist_add(d, i);     /* below 16 ns: one bucket per value */
	assert_int_equal(gt_dist_quantile(d, 0.5), 5);
	assert_int_equal(gt_dist_quantile(d, 0.99), 9);
	free(d);
}

static void test_log2_fold(void **state)
{
	struct gt_dist *d = calloc(1, sizeof(*d));
	uint64_t s[GT_LOG2_SLOTS], total = 0;

	assert_non_null(d);
	dist_add(d, 0);
	dist_add(d, 1);          /* slot 0: 0 and [1, 2) */
	dist_add(d, 2);
	dist_add(d, 3);          /* slot 1 */
	dist_add(d, 15);         /* slot 3 */
	dist_add(d, 16);         /* slot 4 */
	dist_add(d, 1023);       /* slot 9 */
	dist_add(d, 1024);       /* slot 10 */
	dist_add(d, 5 * MS);     /* slot 22: [4.19 ms, 8.39 ms) */
	dist_add(d, 1ULL << 50); /* beyond the last bucket: last slot */
	gt_dist_log2(d, s);
	assert_int_equal(s[0], 2);
	assert_int_equal(s[1], 2);
	assert_int_equal(s[2], 0);
	assert_int_equal(s[3], 1);
	assert_int_equal(s[4], 1);
	assert_int_equal(s[9], 1);
	assert_int_equal(s[10], 1);
	assert_int_equal(s[22], 1);
	assert_int_equal(s[GT_LOG2_SLOTS - 1], 1);
	for (int i = 0; i < GT_LOG2_SLOTS; i++)
		total += s[i];
	assert_int_equal(total, d->count);
	/* every log-linear bucket folds into the power of two of its bounds */
	for (uint32_t i = 0; i + 1 < GT_NBUCKETS; i++) {
		uint64_t lo = gt_bucket_low(i), hi = gt_bucket_high(i) - 1;

		assert_int_equal(gt_bucket(lo), i);
		assert_int_equal(gt_bucket(hi), i);
		if (lo > 1)
			assert_int_equal(gt_log2(lo), gt_log2(hi));
	}
	free(d);
}

/* ---- JSON ------------------------------------------------------------ */

static void expect(json_t *o, const char *key, json_type type)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		fail_msg("JSON key \"%s\" missing", key);
	if (json_typeof(v) != type)
		fail_msg("JSON key \"%s\": type %d, expected %d", key,
			 json_typeof(v), type);
}

static void expect_dist(json_t *d)
{
	json_t *h = json_object_get(d, "log2_hist"), *x;
	size_t i;

	expect(d, "count", JSON_INTEGER);
	expect(d, "p50_ns", JSON_INTEGER);
	expect(d, "p99_ns", JSON_INTEGER);
	expect(d, "max_ns", JSON_INTEGER);
	expect(d, "log2_hist", JSON_ARRAY);
	json_array_foreach(h, i, x)
		assert_true(json_is_integer(x));
	/* trailing empty slots are cut */
	if (json_array_size(h))
		assert_true(json_integer_value(json_array_get(h, json_array_size(h) - 1)) > 0);
}

static void test_json_schema(void **state)
{
	struct model m;
	json_t *root, *t, *p, *x, *th;
	size_t i;
	double held;

	model_spinners(&m);
	root = render_json(&m, NULL);
	expect(root, "schema", JSON_STRING);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "giltrace/1");
	assert_string_equal(json_string_value(json_object_get(root, "giltrace_version")), "0.1.0");
	assert_string_equal(json_string_value(json_object_get(root, "mode")), "exact");
	expect(root, "target", JSON_OBJECT);
	t = json_object_get(root, "target");
	expect(t, "pid", JSON_INTEGER);
	assert_int_equal(json_integer_value(json_object_get(t, "pid")), 4242);
	expect(t, "exe", JSON_STRING);
	expect(t, "python_version", JSON_STRING);
	expect(t, "library", JSON_STRING);
	expect(t, "probes", JSON_ARRAY);
	assert_int_equal(json_array_size(json_object_get(t, "probes")), 4);
	json_array_foreach(json_object_get(t, "probes"), i, p) {
		expect(p, "function", JSON_STRING);
		expect(p, "symbol", JSON_STRING);
		expect(p, "file", JSON_STRING);
		expect(p, "offset", JSON_INTEGER);
		expect(p, "address", JSON_STRING);
		assert_memory_equal(json_string_value(json_object_get(p, "address")), "0x", 2);
		expect(p, "kind", JSON_STRING);
		expect(p, "role", JSON_STRING);
		assert_true(json_is_boolean(json_object_get(p, "inlined")));
		x = json_object_get(p, "caller");
		assert_true(json_is_boolean(json_object_get(p, "inlined")) &&
			    (json_is_true(json_object_get(p, "inlined")) ?
			     json_is_string(x) : json_is_null(x)));
	}
	p = json_array_get(json_object_get(t, "probes"), 0);
	assert_string_equal(json_string_value(json_object_get(p, "address")), "0x1f3a30");
	assert_int_equal(json_integer_value(json_object_get(p, "offset")), 0x1f2a30);

	expect(root, "interval_ns", JSON_INTEGER);
	assert_int_equal(json_integer_value(json_object_get(root, "interval_ns")), 10 * SEC);
	expect(root, "switch_interval_ns", JSON_INTEGER);
	assert_int_equal(json_integer_value(json_object_get(root, "switch_interval_ns")), 5 * MS);
	expect(root, "gil", JSON_OBJECT);
	x = json_object_get(root, "gil");
	expect(x, "held_ns", JSON_INTEGER);
	expect(x, "acquisitions", JSON_INTEGER);
	expect(x, "holder_switches", JSON_INTEGER);
	expect(x, "held_share", JSON_REAL);
	held = json_real_value(json_object_get(x, "held_share"));
	assert_true(held > 0.98 && held <= 1.0);
	assert_int_equal(json_integer_value(json_object_get(x, "held_ns")), model__held_ns(&m));

	expect(root, "threads", JSON_ARRAY);
	assert_int_equal(json_array_size(json_object_get(root, "threads")), 5);
	json_array_foreach(json_object_get(root, "threads"), i, th) {
		expect(th, "tid", JSON_INTEGER);
		expect(th, "name", JSON_STRING);
		expect(th, "hold_ns", JSON_INTEGER);
		expect(th, "wait_ns", JSON_INTEGER);
		expect(th, "acquisitions", JSON_INTEGER);
		expect(th, "hold", JSON_OBJECT);
		expect(th, "wait", JSON_OBJECT);
		expect_dist(json_object_get(th, "hold"));
		expect_dist(json_object_get(th, "wait"));
		expect(th, "waits_abandoned", JSON_INTEGER);
		expect(th, "waits_abandoned_ns", JSON_INTEGER);
		expect(th, "waits_clipped", JSON_INTEGER);
		assert_true(json_is_boolean(json_object_get(th, "exited")));
	}
	/* busiest first */
	th = json_array_get(json_object_get(root, "threads"), 4);
	assert_int_equal(json_integer_value(json_object_get(th, "tid")), 4242);
	expect(root, "threads_total", JSON_INTEGER);
	expect(root, "dropped_events", JSON_INTEGER);
	assert_true(json_is_null(json_object_get(root, "exit_status")));
	expect(root, "verdict", JSON_STRING);
	assert_non_null(strstr(json_string_value(json_object_get(root, "verdict")),
			       "no parallel speed-up"));
	json_decref(root);

	/* library null when the interpreter is the executable; launch mode */
	m.library[0] = '\0';
	m.launch_mode = true;
	m.exit_status = 3;
	root = render_json(&m, NULL);
	assert_true(json_is_null(json_object_get(json_object_get(root, "target"), "library")));
	assert_int_equal(json_integer_value(json_object_get(root, "exit_status")), 3);
	json_decref(root);
	model__free(&m);
}

static void test_json_tid_filter_and_no_top(void **state)
{
	struct model m;
	struct report_opts o = { .top = 5 };
	pid_t tids[] = { 4244, 4246, 99999 };
	json_t *root, *th;
	char name[16];
	size_t i;

	model_start(&m);
	for (uint32_t t = 0; t < 30; t++) {
		snprintf(name, sizeof(name), "w-%u", t);
		add_busy(&m, 4242 + t, name, (t + 1) * MS, (t + 1) * MS, 10, false);
	}
	model__close(&m, T0 + SEC);

	root = render_json(&m, &o);  /* --top does not limit JSON */
	assert_int_equal(json_array_size(json_object_get(root, "threads")), 30);
	assert_int_equal(json_integer_value(json_object_get(root, "threads_total")), 30);
	json_decref(root);

	o.tids = tids;
	o.ntids = 3;
	root = render_json(&m, &o);
	assert_int_equal(json_array_size(json_object_get(root, "threads")), 2);
	assert_int_equal(json_integer_value(json_object_get(root, "threads_total")), 30);
	json_array_foreach(json_object_get(root, "threads"), i, th) {
		json_int_t tid = json_integer_value(json_object_get(th, "tid"));

		assert_true(tid == 4244 || tid == 4246);
	}
	/* process-wide figures stay process-wide */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "gil"), "held_ns")),
			 model__held_ns(&m));
	json_decref(root);
	model__free(&m);
}

/* A hold still open at the end counts in hold_ns, not in hold.count. */
static void test_open_hold(void **state)
{
	struct model m;
	struct gt_thread *k;
	json_t *root, *th;
	uint64_t end = T0 + SEC;
	char *txt;

	model_start(&m);
	k = kthread(700, "holder");
	dist_fill(&k->hold, 10, 5 * MS);
	k->acquisitions = 11;
	k->state = GT_HOLDING;
	k->since_ns = end - 3 * MS;
	assert_non_null(model__put_thread(&m, k, false));
	free(k);
	/* a thread waiting at the end, and one whose wait was cut by its exit */
	k = kthread(701, "waiter");
	k->state = GT_WAITING;
	k->since_ns = end - 2 * MS;
	assert_non_null(model__put_thread(&m, k, false));
	k->tid = 702;
	k->state = GT_EXITED;
	k->waits_abandoned = 1;
	k->waits_abandoned_ns = 7 * MS;
	k->exit_ns = end - MS;
	assert_non_null(model__put_thread(&m, k, true));
	free(k);
	model__close(&m, end);

	assert_int_equal(m.threads[0].hold_ns, m.threads[0].k.hold.sum_ns + 3 * MS);
	assert_int_equal(m.threads[1].wait_ns, 2 * MS);
	assert_int_equal(m.threads[2].wait_ns, 0);
	root = render_json(&m, NULL);
	th = json_array_get(json_object_get(root, "threads"), 0);
	assert_int_equal(json_integer_value(json_object_get(th, "tid")), 700);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(th, "hold"), "count")), 10);
	assert_int_equal(json_integer_value(json_object_get(th, "acquisitions")), 11);
	assert_int_equal(json_integer_value(json_object_get(th, "hold_ns")),
			 m.threads[0].k.hold.sum_ns + 3 * MS);
	assert_int_equal(json_integer_value(json_object_get(th, "open_hold_ns")), 3 * MS);
	th = json_array_get(json_object_get(root, "threads"), 2);
	assert_int_equal(json_integer_value(json_object_get(th, "tid")), 702);
	assert_int_equal(json_integer_value(json_object_get(th, "waits_abandoned")), 1);
	assert_true(json_is_true(json_object_get(th, "exited")));
	json_decref(root);

	txt = render(report_text, &m, NULL);
	assert_non_null(strstr(txt, "1 waits (7.00ms in all) were cut short"));
	assert_non_null(strstr(txt, "TID 702 (1)"));
	assert_non_null(strstr(txt, "(exited)"));
	free(txt);
	model__free(&m);
}

/* ---- text ------------------------------------------------------------ */

static void test_text_threads(void **state)
{
	struct model m;
	struct report_opts o = { .top = 20, .hist = true };
	char *txt, tidbuf[16], held[64];

	model_spinners(&m);
	add_busy(&m, 4300, "gone", 1 * MS, 1 * MS, 2, true);
	model__close(&m, m.t_end_ns);
	txt = render(report_text, &m, &o);
	for (size_t i = 0; i < m.nthreads; i++) {
		snprintf(tidbuf, sizeof(tidbuf), "%u ", m.threads[i].k.tid);
		assert_non_null(strstr(txt, tidbuf));
		assert_non_null(strstr(txt, m.threads[i].name));
	}
	assert_non_null(strstr(txt, "PID 4242"));
	assert_non_null(strstr(txt, "Python 3.12.1"));
	assert_non_null(strstr(txt, "libpython3.12.so.1.0"));
	assert_non_null(strstr(txt, "switch interval 5.00ms"));
	snprintf(held, sizeof(held), "held %.1f%% of the traced time",
		 100.0 * model__held_ns(&m) / model__interval_ns(&m));
	assert_non_null(strstr(txt, held));
	assert_non_null(strstr(txt, "(exited)"));
	assert_non_null(strstr(txt, ": count    distribution"));
	assert_non_null(strstr(txt, "|****"));
	assert_null(strstr(txt, "\033["));  /* no colour unless asked */
	assert_null(strstr(txt, "not shown"));
	free(txt);

	o.color = true;
	txt = render(report_text, &m, &o);
	assert_non_null(strstr(txt, "\033["));
	free(txt);
	model__free(&m);
}

static void test_text_tid_filter(void **state)
{
	struct model m;
	pid_t tids[] = { 4244 };
	struct report_opts o = { .top = 20, .tids = tids, .ntids = 1 };
	char *txt;

	model_spinners(&m);
	txt = render(report_text, &m, &o);
	assert_non_null(strstr(txt, "spin-1"));
	assert_null(strstr(txt, "spin-0"));
	assert_null(strstr(txt, "spin-2"));
	free(txt);
	model__free(&m);
}

static void test_text_top(void **state)
{
	struct model m;
	struct report_opts o = { .top = 20 };
	char *txt, name[16];

	model_start(&m);
	for (uint32_t t = 0; t < 25; t++) {
		snprintf(name, sizeof(name), "w-%u", t);
		add_busy(&m, 1000 + t, name, (t + 1) * MS, MS, 10, false);
	}
	model__close(&m, T0 + SEC);
	txt = render(report_text, &m, &o);
	assert_non_null(strstr(txt, "... 5 more threads not shown (--top)"));
	assert_non_null(strstr(txt, "w-24 "));   /* busiest shown */
	assert_null(strstr(txt, "w-4 "));        /* 5 idlest left out */
	assert_null(strstr(txt, "w-0 "));
	free(txt);
	o.top = 0;
	txt = render(report_text, &m, &o);
	assert_null(strstr(txt, "not shown"));
	assert_non_null(strstr(txt, "w-0 "));
	free(txt);
	model__free(&m);
}

static void test_text_warnings_and_interval(void **state)
{
	struct model m;
	struct report_opts o = { .top = 20 };
	char *txt;

	model_sleepers(&m);
	add_busy(&m, 503, "idle", 0, 0, 0, false);
	model__close(&m, m.t_end_ns);
	txt = render(report_text, &m, &o);
	assert_null(strstr(txt, "warning"));
	assert_non_null(strstr(txt, "idle"));
	free(txt);

	m.dropped_events = 17;
	m.threads[1].k.inconsistent = 2;
	m.exits_deferred = 4;
	o.interval = true;
	txt = render(report_text, &m, &o);
	assert_non_null(strstr(txt, "warning: 17 GIL transitions were not recorded:"
				     " the per-thread map was full (--max-threads)"));
	assert_non_null(strstr(txt, "2 probe sequence anomalies"));
	assert_non_null(strstr(txt, "note: 4 thread-exit records"));
	assert_non_null(strstr(txt, "interval report"));
	assert_null(strstr(txt, "idle"));   /* no activity in the interval */
	free(txt);
	model__free(&m);
}

static void test_verdicts(void **state)
{
	struct model m;
	char v[512];

	model_spinners(&m);
	report_verdict(&m, NULL, v, sizeof(v));
	assert_non_null(strstr(v, "GIL held 99% of the time; 4 threads spent 74% of"
				  " their time waiting for it: threads give no"
				  " parallel speed-up here"));
	assert_non_null(strstr(v, "free-threaded"));
	model__free(&m);

	model_sleepers(&m);
	report_verdict(&m, NULL, v, sizeof(v));
	assert_non_null(strstr(v, "GIL held 1% of the time: it is not the bottleneck"));
	model__free(&m);

	model_single(&m);
	report_verdict(&m, NULL, v, sizeof(v));
	assert_non_null(strstr(v, "one thread holds the GIL 98% of the time and"
				  " nobody waits: the GIL costs nothing here"));
	model__free(&m);

	/* middle ground: one I/O thread waits behind a spinner */
	model_start(&m);
	add_busy(&m, 800, "spinner", 5000 * MS, 0, 1000, false);
	add_busy(&m, 801, "reader", 50 * MS, 3000 * MS, 1000, false);
	model__close(&m, T0 + 10 * SEC);
	report_verdict(&m, NULL, v, sizeof(v));
	assert_non_null(strstr(v, "GIL held 50% of the time; 1 thread spent 30% of"
				  " its time waiting for it: waiting for the GIL"
				  " slows it down (processes"));
	model__free(&m);

	/* a short-lived thread: its wait share is of its own lifetime */
	model_start(&m);
	add_busy(&m, 810, "python3", 3000 * MS, 0, 100, false);
	add_busy(&m, 811, "worker-a", 250 * MS, 750 * MS, 50, true);
	add_busy(&m, 812, "worker-b", 250 * MS, 750 * MS, 50, true);
	model__close(&m, T0 + 10 * SEC);
	report_verdict(&m, NULL, v, sizeof(v));
	assert_non_null(strstr(v, "GIL held 35% of the time; 2 threads spent 68% of"
				  " their time waiting for it: waiting for the GIL"
				  " slows them down"));
	model__free(&m);

	/* nothing ran */
	model_start(&m);
	add_busy(&m, 900, "python3", 0, 0, 0, false);
	model__close(&m, T0 + SEC);
	report_verdict(&m, NULL, v, sizeof(v));
	assert_non_null(strstr(v, "not taken"));
	model__free(&m);
}

/* The sample of docs/reading-the-report.md. */
static int sample(const char *how)
{
	struct model m;
	struct report_opts o = { .top = 20, .hist = how && !strcmp(how, "--hist") };

	model_spinners(&m);
	add_busy(&m, 4250, "io-reader", 40 * MS, 3100 * MS, 620, false);
	model__close(&m, m.t_end_ns);
	m.target_exited = true;
	if (how && !strcmp(how, "--json"))
		report_json(stdout, &m, &o);
	else
		report_text(stdout, &m, &o);
	model__free(&m);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantile_accuracy),
		cmocka_unit_test(test_quantile_small_and_empty),
		cmocka_unit_test(test_log2_fold),
		cmocka_unit_test(test_json_schema),
		cmocka_unit_test(test_json_tid_filter_and_no_top),
		cmocka_unit_test(test_open_hold),
		cmocka_unit_test(test_text_threads),
		cmocka_unit_test(test_text_tid_filter),
		cmocka_unit_test(test_text_top),
		cmocka_unit_test(test_text_warnings_and_interval),
		cmocka_unit_test(test_verdicts),
	};

	if (argc > 1 && !strcmp(argv[1], "--sample"))
		return sample(argc > 2 ? argv[2] : NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
