// SPDX-License-Identifier: MIT
/*
 * test_views_stacks.c - the stacks in the views (issue 5): the flame graph
 * data of the HTML report (report_html.c, "flame") and the "stack" args of
 * the Perfetto slices (report_perfetto.c), on a model and timeline built by
 * hand: four threads passing the GIL round-robin, each wait and hold with
 * a stack (Python frames, a native frame, a 41-frame recursion cut by the
 * walker, a frame whose name tries to close the page's <script>), the
 * stack weights the sums of the cycles, as the collector keeps them.
 *
 * `test_views_stacks --sample DIR` writes that sample's views instead of
 * testing: DIR/stacks.json (giltrace/1 + blocked_by), DIR/stacks.perfetto.json
 * and DIR/stacks.html (assets from $GILTRACE_ASSETS or the build's), for
 * tests/web/check_html.js and tests/lib/perfetto_check.py
 * (tests/web/run_views.sh).
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "model.h"
#include "model_stacks.h"
#include "report.h"
#include "timeline.h"
#include "unit_helpers.h"

#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (200 * SEC)
#define NTH 4
#define DEEP 40 /* recursion depth of worker-2's wait stack */

/* ---- the sample ----------------------------------------------------------- */

struct sample {
	struct model m;
	struct timeline tl;
	/* per thread: its wait stacks and hold stacks (ids), two each */
	uint64_t wait_id[NTH][2], hold_id[NTH][2];
};

static const char *names[NTH] = { "python3.12", "worker-1", "worker-2", "io-thread" };
static const uint32_t tids[NTH] = { 5150, 5151, 5152, 5153 };

static int frame(struct model_stacks *ms, enum model_frame_kind k,
		 const char *fn, const char *file, int line, const char *mod)
{
	int r = model_stacks__frame(ms, k, fn, file, line, mod);

	assert_true(r >= 0);
	return r;
}

static uint64_t stack(struct model_stacks *ms, uint64_t id, uint32_t flags,
		      const int *f, uint32_t n)
{
	uint32_t v[64];

	assert_true(n <= 64);
	for (uint32_t i = 0; i < n; i++)
		v[i] = (uint32_t)f[i];
	assert_true(model_stacks__add(ms, id, flags, v, n) >= 0);
	return id;
}

/* The stacks: frames root first. */
static void make_stacks(struct sample *s)
{
	struct model_stacks *ms = model_stacks__new();
	const char *app = "/srv/app/pipeline.py", *thr = "/usr/lib/python3.12/threading.py";
	int mod, mainf, parse, sum, boot, inner, run, worker, compress, zlib, io,
	    recv, fib, trunc, evil, sleep;
	int deep[DEEP + 1];

	assert_non_null(ms);
	s->m.stacks = ms;
	mod = frame(ms, MF_PYTHON, "<module>", app, 90, "");
	mainf = frame(ms, MF_PYTHON, "main", app, 80, "");
	parse = frame(ms, MF_PYTHON, "parse", app, 22, "");
	sum = frame(ms, MF_PYTHON, "checksum", app, 12, "");
	boot = frame(ms, MF_PYTHON, "Thread._bootstrap", thr, 1030, "");
	inner = frame(ms, MF_PYTHON, "Thread._bootstrap_inner", thr, 1073, "");
	run = frame(ms, MF_PYTHON, "Thread.run", thr, 1010, "");
	worker = frame(ms, MF_PYTHON, "worker", app, 40, "");
	compress = frame(ms, MF_PYTHON, "compress", "/srv/app/codec.py", 55, "");
	zlib = frame(ms, MF_NATIVE, "zlib_compress", "", 0,
		     "/root/.pyenv/versions/3.12.1/lib/python3.12/lib-dynload/zlib.so");
	io = frame(ms, MF_PYTHON, "io_loop", app, 70, "");
	recv = frame(ms, MF_NATIVE, "sock_recv", "", 0,
		     "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0");
	fib = frame(ms, MF_PYTHON, "fib", "/srv/app/recurse.py", 0, "");
	trunc = frame(ms, MF_MARK, MS_TRUNCATED, "", 0, "");
	evil = frame(ms, MF_PYTHON, "</script><b>&x", "/srv/app/<evil>&.py", 3, "");
	sleep = frame(ms, MF_NATIVE, "time_sleep", "", 0,
		      "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0");

	{ /* main thread */
		int w0[] = { mod, mainf, parse, sum }, w1[] = { mod, mainf, sleep };
		int h0[] = { mod, mainf, parse }, h1[] = { mod, mainf };

		s->wait_id[0][0] = stack(ms, 0x1001, 0, w0, 4);
		s->wait_id[0][1] = stack(ms, 0x1002, 0, w1, 3);
		s->hold_id[0][0] = stack(ms, 0x1003, 0, h0, 3);
		s->hold_id[0][1] = stack(ms, 0x1004, 0, h1, 2);
	}
	{ /* worker-1 */
		int w0[] = { boot, inner, run, worker, compress, zlib };
		int w1[] = { boot, inner, run, worker, parse };
		int h0[] = { boot, inner, run, worker, compress };

		s->wait_id[1][0] = stack(ms, 0x2001, 0, w0, 6);
		s->wait_id[1][1] = stack(ms, 0x2002, 0, w1, 5);
		s->hold_id[1][0] = s->hold_id[1][1] = stack(ms, 0x2003, 0, h0, 5);
	}
	{ /* worker-2: a recursion deeper than the walk, and the evil frame */
		int h0[] = { boot, inner, run, evil };

		deep[0] = trunc;
		for (int i = 1; i <= DEEP; i++)
			deep[i] = fib;
		s->wait_id[2][0] = stack(ms, 0x3001, GT_STK_TRUNCATED, deep, DEEP + 1);
		s->wait_id[2][1] = stack(ms, 0x3002, 0, deep + 1, 10);
		s->hold_id[2][0] = s->hold_id[2][1] = stack(ms, 0x3003, 0, h0, 4);
	}
	{ /* io-thread */
		int w0[] = { boot, inner, run, io, recv }, h0[] = { boot, inner, run, io };

		s->wait_id[3][0] = s->wait_id[3][1] = stack(ms, 0x4001, 0, w0, 5);
		s->hold_id[3][0] = s->hold_id[3][1] = stack(ms, 0x4002, 0, h0, 4);
	}
}

static void push(struct tl_thread *t, size_t *cap, struct tl_cycle c)
{
	if (t->ncycles == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		t->cycles = realloc(t->cycles, *cap * sizeof(*t->cycles));
		assert_non_null(t->cycles);
	}
	t->cycles[t->ncycles++] = c;
}

/* Who waited behind whom, as timeline.c computes it (quadratic: the sample
 * is small). */
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

static void compute_blocked(struct timeline *tl)
{
	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++) {
			uint64_t b = t->cycles[j].wait_begin, e = t->cycles[j].held;
			uint64_t covered = 0;

			if (e <= b)
				continue;
			for (size_t x = 0; x < tl->nthreads; x++) {
				const struct tl_thread *o = &tl->threads[x];

				if (o == t)
					continue;
				for (size_t y = 0; y < o->ncycles; y++) {
					uint64_t lo = o->cycles[y].held, hi = o->cycles[y].release;

					lo = lo > b ? lo : b;
					hi = hi < e ? hi : e;
					if (hi > lo) {
						add_blocked(tl, t->tid, o->tid, hi - lo);
						covered += hi - lo;
					}
				}
			}
			if (covered < e - b)
				add_blocked(tl, t->tid, 0, e - b - covered);
		}
	}
	qsort(tl->blocked, tl->nblocked, sizeof(*tl->blocked), blocked_order);
}

/*
 * @ncycles holds in turn by the four threads (the I/O thread takes every
 * fourth turn only), 30 µs hand-offs; the waits and holds get their
 * thread's stacks (the second one every third cycle), and the weights
 * their sums.
 */
static void sample_build(struct sample *s, size_t nholds)
{
	struct timeline *tl = &s->tl;
	struct model *m = &s->m;
	uint64_t t = T0 + 10 * US, ready[NTH], rng = 0x5eed; /* all wait */
	size_t cap[NTH] = { 0 };
	uint32_t last = 0;

	memset(s, 0, sizeof(*s));
	model__init(m);
	m->pid = 5150;
	snprintf(m->exe, sizeof(m->exe), "/root/.pyenv/versions/3.12.1/bin/python3.12");
	snprintf(m->python_version, sizeof(m->python_version), "3.12.1");
	snprintf(m->mode, sizeof(m->mode), "exact");
	m->t0_ns = T0;
	m->switch_interval_ns = 5 * MS;
	make_stacks(s);
	tl->t0 = T0;
	tl->max_cycles = 4000000;
	tl->nthreads = NTH;
	tl->threads = calloc(NTH, sizeof(*tl->threads));
	assert_non_null(tl->threads);
	for (int i = 0; i < NTH; i++) {
		tl->threads[i].tid = tids[i];
		snprintf(tl->threads[i].name, sizeof(tl->threads[i].name), "%s", names[i]);
		ready[i] = T0 + (uint64_t)i * 100 * US;
	}
	for (size_t k = 0; k < nholds; k++) {
		int i = (int)(k % NTH);
		struct tl_thread *th = &tl->threads[i];
		uint64_t held, rel, dur;
		int alt;

		if (i == 3 && k % (4 * NTH) != 3)
			continue; /* the I/O thread is mostly away */
		held = t + (last && last != th->tid ? 30 * US : 0);
		held = held > ready[i] ? held : ready[i];
		dur = (i == 3 ? 80 * US : (2 + (uint64_t)i) * MS) +
		      splitmix64(&rng) % (500 * US);
		rel = held + dur;
		alt = th->ncycles % 3 == 2;
		push(th, &cap[i], (struct tl_cycle){
			.wait_begin = ready[i], .held = held, .release = rel,
			.cpu = (uint32_t)(k % 2), .wait_stack = s->wait_id[i][alt],
			.hold_stack = s->hold_id[i][alt] });
		if (last && last != th->tid)
			tl->holder_switches++;
		last = th->tid;
		ready[i] = rel + (i == 3 ? 15 * MS : 2 * US);
		t = rel;
	}
	tl->t_end = t;
	for (int i = 0; i < NTH; i++) {
		struct tl_thread *th = &tl->threads[i];
		struct gt_thread g = { 0 };

		g.tid = th->tid;
		g.state = GT_RUNNING;
		g.first_seen_ns = th->ncycles ? th->cycles[0].wait_begin : T0;
		snprintf(g.comm, sizeof(g.comm), "%s", names[i]);
		for (size_t j = 0; j < th->ncycles; j++) {
			const struct tl_cycle *c = &th->cycles[j];
			int ws = model_stacks__find(m->stacks, c->wait_stack);
			int hs = model_stacks__find(m->stacks, c->hold_stack);

			th->wait_ns += c->held - c->wait_begin;
			th->hold_ns += c->release - c->held;
			dist_add(&g.wait, c->held - c->wait_begin);
			dist_add(&g.hold, c->release - c->held);
			g.acquisitions++;
			assert_true(ws >= 0 && hs >= 0);
			assert_int_equal(model_stacks__add_weight(m->stacks, g.tid,
				g.first_seen_ns, GT_W_WAIT, (uint32_t)ws, 1,
				c->held - c->wait_begin), 0);
			assert_int_equal(model_stacks__add_weight(m->stacks, g.tid,
				g.first_seen_ns, GT_W_HOLD, (uint32_t)hs, 1,
				c->release - c->held), 0);
		}
		m->acquisitions += g.acquisitions;
		assert_non_null(model__put_thread(m, &g, false));
	}
	m->holder_switches = tl->holder_switches;
	model__close(m, tl->t_end);
	compute_blocked(tl);
}

static void sample_free(struct sample *s)
{
	for (size_t i = 0; i < s->tl.nthreads; i++)
		free(s->tl.threads[i].cycles);
	free(s->tl.threads);
	free(s->tl.blocked);
	model__free(&s->m);
}

/* ---- helpers ---------------------------------------------------------------- */

static char tmpdir[64];

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

/* Fake assets in tmpdir/@sub: each file a marker (and a "</script" to be
 * escaped); without the flame graph libraries unless @flame. */
static const char *fake_assets(const char *sub, bool flame)
{
	static char dir[128];

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
	mkdir(dir, 0755);
	write_file(dir, "echarts.min.js", "var LIB='</script>';/*ECHARTSMARK*/");
	write_file(dir, "giltrace-report.js", "/*APPMARK*/");
	write_file(dir, "giltrace-report.css", "/*CSSMARK*/");
	if (flame) {
		write_file(dir, "d3.min.js", "var D3='</script>';/*D3MARK*/");
		write_file(dir, "d3-flamegraph.umd.min.js", "/*FLAMEMARK*/");
	}
	return dir;
}

static char *render_html(const struct sample *s, const char *assets, int *rc,
			 char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = report_html(f, &s->m, &s->tl, assets, err, errlen);
	fclose(f);
	return buf;
}

static json_t *html_data(const char *html)
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

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s++;
	}
	return n;
}

static json_t *render_perfetto(const struct model *m, const struct timeline *tl)
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

static int64_t ival(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* ---- HTML: the flame graph data -------------------------------------------- */

/* "flame": frames as model_stacks__label names them, stacks root first,
 * per-thread weights whose sums are the threads' waits and holds. */
static void test_html_flame_data(void **state)
{
	struct sample s;
	const struct model_stacks *ms;
	char err[512], label[2048];
	json_t *d, *fl, *a, *x;
	uint64_t tw = 0, th = 0;
	size_t i;
	int rc;
	char *out;

	sample_build(&s, 400);
	ms = s.m.stacks;
	out = render_html(&s, fake_assets("a1", true), &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	/* the libraries in order: echarts, d3, d3-flame-graph, then ours */
	assert_true(strstr(out, "ECHARTSMARK") < strstr(out, "D3MARK"));
	assert_true(strstr(out, "D3MARK") < strstr(out, "FLAMEMARK"));
	assert_true(strstr(out, "FLAMEMARK") < strstr(out, "APPMARK"));
	assert_non_null(strstr(out, "var D3='<\\/script>'"));
	assert_int_equal(count(out, "</script"), 5);
	assert_null(strstr(out, "<b>&x")); /* the evil frame stays data */
	assert_null(strstr(out, "<evil>"));

	d = html_data(out);
	fl = json_object_get(d, "flame");
	assert_true(json_is_object(fl));
	a = json_object_get(fl, "frames");
	assert_int_equal(json_array_size(a), ms->nframes);
	json_array_foreach(a, i, x) {
		model_stacks__label(&ms->frames[i], label, sizeof(label));
		assert_string_equal(json_string_value(json_object_get(x, "name")), label);
		assert_string_equal(json_string_value(json_object_get(x, "function")),
				    ms->frames[i].function);
	}
	x = json_array_get(a, 0);
	assert_string_equal(json_string_value(json_object_get(x, "name")),
			    "pipeline:<module> (/srv/app/pipeline.py:90)");
	assert_string_equal(json_string_value(json_object_get(x, "kind")), "python");
	assert_string_equal(json_string_value(json_object_get(x, "module")), "pipeline");
	assert_int_equal(ival(x, "line"), 90);
	a = json_object_get(fl, "stacks");
	assert_int_equal(json_array_size(a), ms->nstacks);
	json_array_foreach(a, i, x) {
		json_t *fr = json_object_get(x, "frames");

		assert_int_equal(json_array_size(fr), ms->stacks[i].nframes);
		for (size_t j = 0; j < ms->stacks[i].nframes; j++) /* root first */
			assert_int_equal(json_integer_value(json_array_get(fr, j)),
					 ms->stacks[i].frames[j]);
		assert_int_equal(ival(x, "flags"), ms->stacks[i].flags);
	}
	a = json_object_get(fl, "threads");
	assert_int_equal(json_array_size(a), NTH);
	json_array_foreach(a, i, x) {
		const struct tl_thread *t = NULL;
		uint64_t sum = 0, prev = UINT64_MAX;
		size_t j;
		json_t *w;

		for (int k = 0; k < NTH; k++)
			if (s.tl.threads[k].tid == (uint32_t)ival(x, "tid"))
				t = &s.tl.threads[k];
		assert_non_null(t);
		assert_string_equal(json_string_value(json_object_get(x, "name")), t->name);
		assert_int_equal(ival(x, "wait_ns"), t->wait_ns);
		assert_int_equal(ival(x, "hold_ns"), t->hold_ns);
		assert_int_equal(ival(x, "wait_count"), t->ncycles);
		json_array_foreach(json_object_get(x, "wait"), j, w) {
			uint64_t ns = (uint64_t)json_integer_value(json_array_get(w, 2));

			assert_true(json_integer_value(json_array_get(w, 0)) < (json_int_t)ms->nstacks);
			assert_true(ns <= prev); /* heaviest first */
			prev = ns;
			sum += ns;
		}
		assert_int_equal(sum, t->wait_ns);
		tw += t->wait_ns;
		th += t->hold_ns;
	}
	/* busiest first, as the threads table */
	assert_int_equal(ival(json_array_get(a, 0), "tid"),
			 ival(json_array_get(json_object_get(d, "threads"), 0), "tid"));
	assert_int_equal(ival(fl, "wait_ns"), tw);
	assert_int_equal(ival(fl, "hold_ns"), th);
	assert_int_equal(ival(fl, "max_depth"), GT_STACK_MAX);
	json_decref(d);
	free(out);
	sample_free(&s);
}

/* Without stacks: "flame" is null, the flame graph libraries are neither
 * needed nor inlined. */
static void test_html_no_stacks(void **state)
{
	struct sample s;
	char err[512];
	json_t *d;
	int rc;
	char *out;

	sample_build(&s, 40);
	model_stacks__free(s.m.stacks);
	s.m.stacks = NULL;
	out = render_html(&s, fake_assets("a2", false), &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(count(out, "</script"), 3);
	assert_null(strstr(out, "D3MARK"));
	d = html_data(out);
	assert_true(json_is_null(json_object_get(d, "flame")));
	json_decref(d);
	free(out);
	sample_free(&s);
}

/* With stacks, missing flame graph assets: one line saying what to run. */
static void test_html_flame_assets_missing(void **state)
{
	struct sample s;
	char err[512], want[256];
	const char *dir;
	int rc;
	char *out;

	sample_build(&s, 40);
	dir = fake_assets("a3", false);
	out = render_html(&s, dir, &rc, err, sizeof(err));
	assert_true(rc < 0);
	snprintf(want, sizeof(want), "%s/d3.min.js is missing", dir);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "scripts/deps-web.sh"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(strlen(out), 0);
	free(out);
	sample_free(&s);
}

/* An empty stacks part (--stacks, but nothing captured) still renders. */
static void test_html_empty_stacks(void **state)
{
	struct sample s;
	char err[512];
	json_t *d, *fl;
	int rc;
	char *out;

	sample_build(&s, 40);
	model_stacks__free(s.m.stacks);
	s.m.stacks = model_stacks__new();
	assert_non_null(s.m.stacks);
	out = render_html(&s, fake_assets("a4", true), &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	d = html_data(out);
	fl = json_object_get(d, "flame");
	assert_true(json_is_object(fl));
	assert_int_equal(json_array_size(json_object_get(fl, "threads")), 0);
	assert_int_equal(ival(fl, "wait_ns"), 0);
	json_decref(d);
	free(out);
	sample_free(&s);
}

/* With the build's real assets (skipped when they were not installed). */
static void test_html_flame_real_assets(void **state)
{
#ifdef GILTRACE_ASSETS_DIR
	struct sample s;
	char err[512];
	int rc;
	char *out;

	if (access(GILTRACE_ASSETS_DIR "/d3-flamegraph.umd.min.js", R_OK) ||
	    access(GILTRACE_ASSETS_DIR "/d3.min.js", R_OK)) {
		print_message("skipped: no d3 / d3-flame-graph in %s (scripts/deps-web.sh)\n",
			      GILTRACE_ASSETS_DIR);
		skip();
	}
	sample_build(&s, 100);
	out = render_html(&s, GILTRACE_ASSETS_DIR, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "d3js.org"));
	assert_non_null(strstr(out, "flamegraph"));
	assert_int_equal(count(out, "</script"), 5);
	free(out);
	sample_free(&s);
#else
	skip();
#endif
}

/* ---- Perfetto: stacks as slice args ------------------------------------------ */

/* The labels of stack @id, innermost first, at most 32. */
static void expect_stack(const struct model_stacks *ms, uint64_t id, json_t *args)
{
	const struct model_stack *st = &ms->stacks[model_stacks__find(ms, id)];
	json_t *a = json_object_get(args, "stack");
	char label[2048];
	size_t n = st->nframes < 32 ? st->nframes : 32;

	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), n);
	for (size_t k = 0; k < n; k++) {
		model_stacks__label(&ms->frames[st->frames[st->nframes - 1 - k]],
				    label, sizeof(label));
		assert_string_equal(json_string_value(json_array_get(a, k)), label);
	}
	if (st->nframes > 32)
		assert_int_equal(ival(args, "stack_depth"), st->nframes);
	else
		assert_null(json_object_get(args, "stack_depth"));
}

static void test_perfetto_stack_args(void **state)
{
	struct sample s;
	json_t *root, *ev, *e;
	size_t i, seen[NTH][2] = { { 0 } }, deep = 0;

	sample_build(&s, 200);
	root = render_perfetto(&s.m, &s.tl);
	assert_non_null(strstr(json_string_value(json_object_get(
		json_object_get(root, "metadata"), "stack_note")), "innermost frame first"));
	ev = json_object_get(root, "traceEvents");
	json_array_foreach(ev, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		uint32_t tid = (uint32_t)json_integer_value(json_object_get(e, "tid"));
		json_t *args = json_object_get(e, "args");
		bool wait = !strcmp(name, "waits for GIL"), hold = !strcmp(name, "holds GIL");
		const struct tl_thread *t = NULL;
		const struct tl_cycle *c;
		int k;

		if (strcmp(json_string_value(json_object_get(e, "ph")), "X") || (!wait && !hold)) {
			assert_null(json_object_get(args, "stack"));
			continue;
		}
		for (k = 0; k < NTH; k++)
			if (s.tl.threads[k].tid == tid)
				t = &s.tl.threads[k];
		assert_non_null(t);
		k = (int)(t - s.tl.threads);
		/* every cycle of the sample waits, then holds */
		assert_true(seen[k][hold] < t->ncycles);
		c = &t->cycles[seen[k][hold]++];
		expect_stack(s.m.stacks, wait ? c->wait_stack : c->hold_stack, args);
		deep += json_object_get(args, "stack_depth") != NULL;
	}
	for (int k = 0; k < NTH; k++) {
		assert_int_equal(seen[k][0], s.tl.threads[k].ncycles);
		assert_int_equal(seen[k][1], s.tl.threads[k].ncycles);
	}
	assert_true(deep > 0); /* worker-2's 41-frame recursion was cut */
	json_decref(root);
	sample_free(&s);
}

/* A stack id the model does not know is "[stack lost]"; id 0 adds nothing;
 * without stacks in the model, no slice has a "stack". */
static void test_perfetto_stack_lost_none(void **state)
{
	struct sample s;
	json_t *root, *ev, *e, *a;
	size_t i, nlost = 0, nstack = 0, ncycles = 0;

	sample_build(&s, 40);
	for (int k = 0; k < NTH; k++)
		ncycles += s.tl.threads[k].ncycles;
	s.tl.threads[0].cycles[0].wait_stack = 0xdeadbeef;
	s.tl.threads[0].cycles[0].hold_stack = 0;
	root = render_perfetto(&s.m, &s.tl);
	ev = json_object_get(root, "traceEvents");
	json_array_foreach(ev, i, e) {
		a = json_object_get(json_object_get(e, "args"), "stack");
		if (!a)
			continue;
		nstack++;
		if (json_array_size(a) == 1 &&
		    !strcmp(json_string_value(json_array_get(a, 0)), MS_LOST))
			nlost++;
	}
	assert_int_equal(nlost, 1);
	assert_int_equal(nstack, 2 * ncycles - 1);
	json_decref(root);

	model_stacks__free(s.m.stacks);
	s.m.stacks = NULL;
	root = render_perfetto(&s.m, &s.tl);
	ev = json_object_get(root, "traceEvents");
	json_array_foreach(ev, i, e)
		assert_null(json_object_get(json_object_get(e, "args"), "stack"));
	assert_null(json_object_get(json_object_get(root, "metadata"), "stack_note"));
	json_decref(root);
	sample_free(&s);
}

/* ---- --sample ------------------------------------------------------------------ */

static int write_sample(const char *dir)
{
	struct sample s;
	struct report_opts o = { .top = 20 };
	char path[4096], err[1024];
	FILE *f;
	int rc = 0;

	sample_build(&s, 1200);
	o.tl = &s.tl;
	snprintf(path, sizeof(path), "%s/stacks.json", dir);
	f = fopen(path, "w");
	rc |= !f || report_json(f, &s.m, &o);
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/stacks.perfetto.json", dir);
	f = fopen(path, "w");
	rc |= !f || report_perfetto(f, &s.m, &s.tl);
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/stacks.html", dir);
	f = fopen(path, "w");
	if (!f || report_html(f, &s.m, &s.tl, NULL, err, sizeof(err))) {
		fprintf(stderr, "%s\n", f ? err : "cannot write the HTML sample");
		rc = 1;
	}
	if (f)
		fclose(f);
	sample_free(&s);
	return rc ? 1 : 0;
}

static int setup_tmp(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_views_stacks.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	return remove_tree(tmpdir) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_html_flame_data),
		cmocka_unit_test(test_html_no_stacks),
		cmocka_unit_test(test_html_flame_assets_missing),
		cmocka_unit_test(test_html_empty_stacks),
		cmocka_unit_test(test_html_flame_real_assets),
		cmocka_unit_test(test_perfetto_stack_args),
		cmocka_unit_test(test_perfetto_stack_lost_none),
	};

	if (argc == 3 && !strcmp(argv[1], "--sample"))
		return write_sample(argv[2]);
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
