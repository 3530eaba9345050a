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
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "model.h"
#include "model_stacks.h"
#include "report.h"
#include "timeline.h"
#include "unit_helpers.h"
#include "views_helpers.h"

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

/* The stack weights of @th's cycles, as the collector sums them. */
static void add_weights(struct model_stacks *ms, const struct tl_thread *th)
{
	uint64_t first_seen = th->ncycles ? th->cycles[0].wait_begin : T0;

	for (size_t j = 0; j < th->ncycles; j++) {
		const struct tl_cycle *c = &th->cycles[j];
		int ws = model_stacks__find(ms, c->wait_stack);
		int hs = model_stacks__find(ms, c->hold_stack);

		assert_true(ws >= 0 && hs >= 0);
		assert_int_equal(model_stacks__add_weight(ms, th->tid, first_seen,
			GT_W_WAIT, (uint32_t)ws, 1, c->held - c->wait_begin), 0);
		assert_int_equal(model_stacks__add_weight(ms, th->tid, first_seen,
			GT_W_HOLD, (uint32_t)hs, 1, c->release - c->held), 0);
	}
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
	views_sample_init(m, tl, 5150, false, T0, NTH);
	make_stacks(s);
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
		last = th->tid;
		ready[i] = rel + (i == 3 ? 15 * MS : 2 * US);
		t = rel;
	}
	tl->t_end = t;
	for (int i = 0; i < NTH; i++)
		add_weights(m->stacks, &tl->threads[i]);
	views_sample_close(m, tl);
}

static void sample_free(struct sample *s)
{
	views_sample_free(&s->m, &s->tl);
}

/* ---- helpers ---------------------------------------------------------------- */

/* Fake assets in unit_tmpdir/@sub: each file a marker (and a "</script" to
 * be escaped); without the flame graph libraries unless @flame. */
static const char *stacks_assets(const char *sub, bool flame)
{
	return fake_assets(sub, "var LIB='</script>';/*ECHARTSMARK*/",
			   "/*APPMARK*/", "/*CSSMARK*/",
			   flame ? "var D3='</script>';/*D3MARK*/" : NULL,
			   flame ? "/*FLAMEMARK*/" : NULL);
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
	out = render_html(&s.m, &s.tl, stacks_assets("a1", true), &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	/* the libraries in order: echarts, d3, d3-flame-graph, then ours */
	assert_true(strstr(out, "ECHARTSMARK") < strstr(out, "D3MARK"));
	assert_true(strstr(out, "D3MARK") < strstr(out, "FLAMEMARK"));
	assert_true(strstr(out, "FLAMEMARK") < strstr(out, "APPMARK"));
	assert_non_null(strstr(out, "var D3='<\\/script>'"));
	assert_int_equal(count_of(out, "</script"), 5);
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
	/* The summary fields are the JSON report's, field for field. */
	{
		json_t *sum = json_object();
		const char *k;
		json_t *v;

		assert_int_equal(report__stacks_summary(sum, ms), 0);
		assert_true(json_object_size(sum) >= 9);
		json_object_foreach(sum, k, v)
			assert_true(json_equal(json_object_get(fl, k), v));
		json_decref(sum);
	}
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
	out = render_html(&s.m, &s.tl, stacks_assets("a2", false), &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(count_of(out, "</script"), 3);
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
	dir = stacks_assets("a3", false);
	out = render_html(&s.m, &s.tl, dir, &rc, err, sizeof(err));
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
	out = render_html(&s.m, &s.tl, stacks_assets("a4", true), &rc, err, sizeof(err));
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
	out = render_html(&s.m, &s.tl, GILTRACE_ASSETS_DIR, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "d3js.org"));
	assert_non_null(strstr(out, "flamegraph"));
	assert_int_equal(count_of(out, "</script"), 5);
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
	int rc;

	sample_build(&s, 1200);
	rc = write_views(dir, "stacks", &s.m, &s.tl, false);
	sample_free(&s);
	return rc;
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
	return cmocka_run_group_tests(tests, unit_tmpdir_setup, unit_tmpdir_teardown);
}
