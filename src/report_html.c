// SPDX-License-Identifier: MIT
/*
 * report_html.c - the self-contained HTML report (--html FILE): one file,
 * no network needed, to mail to a colleague (docs/views.md). It inlines
 *
 *   - the chart library (Apache ECharts, echarts.min.js from npm) and the
 *     report's own script and style (web/src/), read from the assets
 *     directory the build fills (cmake/CopyAssets.cmake); when the model
 *     has stacks (--stacks), also d3 and d3-flame-graph (npm) for the
 *     flame graphs;
 *   - the data: the giltrace/1 JSON of report_json() (with blocked_by),
 *     plus "timeline": each thread's hold and wait segments, exact up to
 *     MAX_SEGMENTS, beyond that downsampled to the dominant state of equal
 *     time buckets (report__bucket_cycles), which the page says; plus
 *     "flame": the stacks (frames table, stacks as frame indices root
 *     first, per-thread weighted stacks), null without stacks.
 *
 * The page is drawn in the browser by giltrace-report.js from that data:
 * summary and verdict, per-thread table, zoomable timeline, histograms,
 * who-blocks-whom matrix, flame graphs of waits and holds, probes.
 *
 * Inlined text cannot close its element early: in scripts and styles
 * "</script", "</style" and "<!--" get a backslash after the '<' (the same
 * string in JS and CSS), and in the JSON every '<', '>' and '&' is written
 * as a \u escape.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <jansson.h>
#include "model.h"
#include "model_stacks.h"
#include "report.h"
#include "json_util.h"
#include "timeline.h"

#ifndef GILTRACE_VERSION
#define GILTRACE_VERSION "0.0.0"
#endif

#define ASSET_LIB "echarts.min.js"
#define ASSET_JS "giltrace-report.js"
#define ASSET_CSS "giltrace-report.css"
#define ASSET_D3 "d3.min.js"                  /* with stacks only */
#define ASSET_FLAME "d3-flamegraph.umd.min.js" /* with stacks only */
#define MAX_ASSET (64u << 20)
#define MAX_SEGMENTS 200000   /* exact segments in the page, at most */
#define MIN_BUCKETS 200       /* per thread when downsampling */
#define MAX_BUCKETS 20000

enum seg_kind { SEG_HOLD = 1, SEG_WAIT = 2, SEG_WAIT_ABANDONED = 3 };

struct hb {
	int err;
};

/* ---- assets --------------------------------------------------------------- */

struct asset {
	char *data;
	size_t len;
};

static const char *assets_dir(const char *assets)
{
	const char *env = getenv("GILTRACE_ASSETS");

	if (assets && assets[0])
		return assets;
	if (env && env[0])
		return env;
#ifdef GILTRACE_ASSETS_DIR
	return GILTRACE_ASSETS_DIR;
#else
	return "assets";
#endif
}

static void missing(const char *path, const char *why, char *err,
		    size_t errlen)
{
	snprintf(err, errlen, "giltrace: --html needs the browser assets and %s"
		 " is %s: run scripts/deps-web.sh (npm ci in web/) and rebuild,"
		 " or set GILTRACE_ASSETS to a directory holding %s, %s, %s,"
		 " %s and %s", path, why, ASSET_LIB, ASSET_D3, ASSET_FLAME,
		 ASSET_JS, ASSET_CSS);
}

static int read_asset(const char *dir, const char *name, struct asset *a,
		      char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		int e = errno ? errno : ENOENT;

		missing(path, e == ENOENT ? "missing" : strerror(e), err, errlen);
		return -e;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > MAX_ASSET) {
		fclose(f);
		missing(path, "unusable (empty, too big or not a file)", err, errlen);
		return -EINVAL;
	}
	a->len = (size_t)st.st_size;
	a->data = malloc(a->len + 1);
	if (!a->data) {
		fclose(f);
		snprintf(err, errlen, "giltrace: --html: out of memory");
		return -ENOMEM;
	}
	if (fread(a->data, 1, a->len, f) != a->len) {
		free(a->data);
		a->data = NULL;
		fclose(f);
		snprintf(err, errlen, "giltrace: --html: cannot read %s", path);
		return -EIO;
	}
	a->data[a->len] = '\0';
	fclose(f);
	return 0;
}

/* ---- the data: giltrace/1 JSON + timeline ---------------------------------- */

static void put(struct hb *b, json_t *o, const char *key, json_t *v)
{
	if (!o || !v) {
		json_decref(v);
		b->err = b->err ? b->err : -ENOMEM;
		return;
	}
	if (json_object_set_new(o, key, v))
		b->err = b->err ? b->err : -ENOMEM;
}

static void add(struct hb *b, json_t *a, json_t *v)
{
	if (!a || !v) {
		json_decref(v);
		b->err = b->err ? b->err : -ENOMEM;
		return;
	}
	if (json_array_append_new(a, v))
		b->err = b->err ? b->err : -ENOMEM;
}

/* [b, e, kind] relative to @t0, appended to @seg. */
static void seg_add(struct hb *b, json_t *seg, uint64_t t0, uint64_t s,
		    uint64_t e, enum seg_kind k)
{
	add(b, seg, jint(s > t0 ? s - t0 : 0));
	add(b, seg, jint(e > t0 ? e - t0 : 0));
	add(b, seg, json_integer(k));
}

static json_t *exact_segments(struct hb *b, const struct tl_thread *t,
			      uint64_t t0)
{
	json_t *seg = json_array();
	uint64_t prev = 0;

	for (size_t i = 0; i < t->ncycles && !b->err; i++) {
		const struct tl_cycle *c = &t->cycles[i];
		uint64_t wb = c->wait_begin, held = c->held, rel = c->release;

		if (held < wb || rel < held)
			continue; /* corrupt */
		wb = wb < prev ? prev : wb;
		held = held < wb ? wb : held;
		rel = rel < held ? held : rel;
		if (c->flags & TL_ABANDONED) {
			seg_add(b, seg, t0, wb, rel, SEG_WAIT_ABANDONED);
			prev = rel;
			continue;
		}
		if (held > wb)
			seg_add(b, seg, t0, wb, held, SEG_WAIT);
		prev = held;
		if (c->flags & TL_OPEN_WAIT)
			continue;
		seg_add(b, seg, t0, held, rel, SEG_HOLD);
		prev = rel;
	}
	return seg;
}

/* Runs of equal dominant state over @n buckets of [t0, t1). */
static json_t *bucket_segments(struct hb *b, const struct tl_thread *t,
			       uint64_t t0, uint64_t t1, size_t n,
			       uint64_t *hold, uint64_t *wait)
{
	json_t *seg = json_array();
	double w = (double)(t1 - t0) / (double)n;
	int run_kind = 0;
	size_t run_start = 0;

	report__bucket_cycles(t, t0, t1, n, hold, wait);
	for (size_t i = 0; i <= n && !b->err; i++) {
		int k = 0;

		if (i < n) {
			double idle = w - (double)hold[i] - (double)wait[i];

			if ((hold[i] || wait[i]) && (double)hold[i] >= (double)wait[i] &&
			    (double)hold[i] >= idle)
				k = SEG_HOLD;
			else if (wait[i] && (double)wait[i] >= idle)
				k = SEG_WAIT;
		}
		if (k == run_kind)
			continue;
		if (run_kind)
			seg_add(b, seg, t0, t0 + (uint64_t)((double)run_start * w),
				t0 + (uint64_t)((double)i * w), run_kind);
		run_kind = k;
		run_start = i;
	}
	return seg;
}

static json_t *timeline_json(struct hb *b, const struct model *m,
			     const struct timeline *tl)
{
	json_t *o = json_object(), *threads = json_array(), *lost = json_array();
	uint64_t t0 = tl->t0 ? tl->t0 : m->t0_ns, t1 = tl->t_end ? tl->t_end : m->t_end_ns;
	size_t total = 0, nb = 0;
	uint64_t *hold = NULL, *wait = NULL;
	bool down;

	if (t1 < t0)
		t1 = t0;
	for (size_t i = 0; i < tl->nthreads; i++)
		total += 2 * tl->threads[i].ncycles;
	down = total > MAX_SEGMENTS && t1 > t0;
	if (down) {
		nb = MAX_SEGMENTS / (tl->nthreads ? tl->nthreads : 1);
		nb = nb < MIN_BUCKETS ? MIN_BUCKETS : nb > MAX_BUCKETS ? MAX_BUCKETS : nb;
		hold = calloc(nb, sizeof(*hold));
		wait = calloc(nb, sizeof(*wait));
		if (!hold || !wait)
			b->err = -ENOMEM;
	}
	put(b, o, "t0_ns", jint(t0));
	put(b, o, "t_end_ns", jint(t1));
	put(b, o, "interval_ns", jint(t1 - t0));
	put(b, o, "truncated", json_boolean(tl->truncated));
	put(b, o, "max_cycles", jint(tl->max_cycles));
	put(b, o, "records_lost", jint(tl->lost_records));
	put(b, o, "holder_switches", jint(tl->holder_switches));
	put(b, o, "downsampled", json_boolean(down));
	put(b, o, "bucket_ns", jint(down ? (t1 - t0) / nb : 0));
	for (size_t i = 0; i < tl->nlost; i++) {
		json_t *s = json_array();
		const struct tl_span *l = &tl->lost[i];

		add(b, s, jint(l->begin > t0 ? l->begin - t0 : 0));
		add(b, s, jint(l->end > t0 ? l->end - t0 : 0));
		add(b, s, jint(l->count));
		add(b, lost, s);
	}
	put(b, o, "lost", lost);
	for (size_t i = 0; i < tl->nthreads && !b->err; i++) {
		const struct tl_thread *t = &tl->threads[i];
		json_t *th = json_object();

		put(b, th, "tid", jint(t->tid));
		put(b, th, "name", jstr(t->name));
		put(b, th, "hold_ns", jint(t->hold_ns));
		put(b, th, "wait_ns", jint(t->wait_ns));
		put(b, th, "cycles", jint(t->ncycles));
		put(b, th, "seg", down ? bucket_segments(b, t, t0, t1, nb, hold, wait)
				       : exact_segments(b, t, t0));
		add(b, threads, th);
	}
	put(b, o, "threads", threads);
	free(hold);
	free(wait);
	return o;
}

/* report_json() with blocked_by, read back as a tree. */
static json_t *report_tree(const struct model *m, const struct timeline *tl,
			   int *rc)
{
	struct report_opts o = { .tl = tl };
	char *buf = NULL;
	size_t len = 0;
	json_t *root = NULL;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = report_json(f, m, &o);
	if (fclose(f) && !*rc)
		*rc = -ENOMEM;
	if (!*rc) {
		root = json_loadb(buf, len, 0, NULL);
		if (!root)
			*rc = -ENOMEM;
	}
	free(buf);
	return root;
}

/* ---- the data: stacks for the flame graphs -------------------------------- */

static const char *frame_kind(uint32_t kind)
{
	switch (kind) {
	case MF_PYTHON: return "python";
	case MF_NATIVE: return "native";
	default: return "mark";
	}
}

/* frames[]: each frame as every exporter names it, and its parts. */
static json_t *frames_json(struct hb *b, const struct model_stacks *ms)
{
	json_t *a = json_array();
	char label[2048], mod[256];

	for (size_t i = 0; i < ms->nframes && !b->err; i++) {
		const struct model_frame *f = &ms->frames[i];
		json_t *o = json_object();

		model_stacks__label(f, label, sizeof(label));
		model_stacks__module(f, mod, sizeof(mod));
		put(b, o, "name", jstr(label));
		put(b, o, "kind", json_string(frame_kind(f->kind)));
		put(b, o, "function", jstr(f->function));
		put(b, o, "module", jstr(mod));
		put(b, o, "file", jstr(f->file));
		put(b, o, "line", json_integer(f->line > 0 ? f->line : 0));
		add(b, a, o);
	}
	return a;
}

/* stacks[]: frame indices, root first, and GT_STK_* flags. */
static json_t *stack_list_json(struct hb *b, const struct model_stacks *ms)
{
	json_t *a = json_array();

	for (size_t i = 0; i < ms->nstacks && !b->err; i++) {
		const struct model_stack *st = &ms->stacks[i];
		json_t *o = json_object(), *fr = json_array();

		for (uint32_t j = 0; j < st->nframes; j++)
			add(b, fr, json_integer(st->frames[j]));
		put(b, o, "frames", fr);
		put(b, o, "flags", json_integer(st->flags));
		add(b, a, o);
	}
	return a;
}

/* One thread's weights of @kind, heaviest first: [[stack, count, ns], ...];
 * their sums added to @count and @ns. */
static json_t *weights_json(struct hb *b, const struct model_stacks *ms,
			    const struct model_thread *t, uint32_t kind,
			    uint64_t *count, uint64_t *ns)
{
	const struct model_stack_weight **v;
	json_t *a = json_array();
	ssize_t n = model_stacks__thread(ms, t->k.tid, t->k.first_seen_ns,
					 kind, &v);

	*count = *ns = 0;
	if (n < 0) {
		b->err = b->err ? b->err : (int)n;
		return a;
	}
	for (ssize_t i = 0; i < n && !b->err; i++) {
		json_t *w = json_array();

		add(b, w, json_integer(v[i]->stack));
		add(b, w, jint(v[i]->count));
		add(b, w, jint(v[i]->ns));
		add(b, a, w);
		*count += v[i]->count;
		*ns += v[i]->ns;
	}
	free(v);
	return a;
}

/*
 * "flame": the stacks of the model for the flame graphs (docs/views.md):
 * frames, stacks (frame indices, root first), and per thread (busiest
 * first, threads with no weight left out) its weighted wait and hold
 * stacks with their sums; the totals over all threads.
 */
static json_t *flame_json(struct hb *b, const struct model *m)
{
	const struct model_stacks *ms = m->stacks;
	json_t *o = json_object(), *threads = json_array();
	const struct model_thread **v;
	uint64_t tot[2][2] = { { 0 } }; /* [kind][count, ns] */
	ssize_t n = report__threads(m, NULL, &v);
	int r;

	if (n < 0) {
		b->err = b->err ? b->err : (int)n;
		json_decref(threads);
		return o;
	}
	r = report__stacks_summary(o, ms);
	if (r && !b->err)
		b->err = r;
	put(b, o, "frames", frames_json(b, ms));
	put(b, o, "stacks", stack_list_json(b, ms));
	for (ssize_t i = 0; i < n && !b->err; i++) {
		const struct model_thread *t = v[i];
		json_t *th = json_object(), *w[2];
		uint64_t c[2], ns[2];

		for (uint32_t k = GT_W_WAIT; k <= GT_W_HOLD; k++)
			w[k] = weights_json(b, ms, t, k, &c[k], &ns[k]);
		if (!json_array_size(w[0]) && !json_array_size(w[1])) {
			json_decref(w[0]);
			json_decref(w[1]);
			json_decref(th);
			continue;
		}
		put(b, th, "tid", jint(t->k.tid));
		put(b, th, "name", jstr(t->name[0] ? t->name : "thread"));
		put(b, th, "first_seen_ns", jint(t->k.first_seen_ns));
		put(b, th, "wait_ns", jint(ns[0]));
		put(b, th, "wait_count", jint(c[0]));
		put(b, th, "hold_ns", jint(ns[1]));
		put(b, th, "hold_count", jint(c[1]));
		put(b, th, "wait", w[0]);
		put(b, th, "hold", w[1]);
		add(b, threads, th);
		for (int k = 0; k < 2; k++) {
			tot[k][0] += c[k];
			tot[k][1] += ns[k];
		}
	}
	free(v);
	put(b, o, "wait_ns", jint(tot[0][1]));
	put(b, o, "wait_count", jint(tot[0][0]));
	put(b, o, "hold_ns", jint(tot[1][1]));
	put(b, o, "hold_count", jint(tot[1][0]));
	put(b, o, "threads", threads);
	return o;
}

/* ---- writing -------------------------------------------------------------- */

/* Text inlined in <script> or <style>: "</script", "</style" and "<!--"
 * (any case) get a backslash after '<', which JS strings and regexps and
 * CSS strings read as the same text. */
static void put_inline(FILE *out, const char *s, size_t len)
{
	size_t from = 0;

	for (size_t i = 0; i < len; i++) {
		const char *p = s + i;
		size_t left = len - i;

		if (*p != '<')
			continue;
		if ((left >= 8 && !strncasecmp(p, "</script", 8)) ||
		    (left >= 7 && !strncasecmp(p, "</style", 7)) ||
		    (left >= 4 && !strncmp(p, "<!--", 4))) {
			fwrite(s + from, 1, i + 1 - from, out);
			fputc('\\', out);
			from = i + 1;
		}
	}
	fwrite(s + from, 1, len - from, out);
}

/* JSON for a <script type="application/json">: '<', '>', '&' only occur
 * inside strings, where \u003c and friends mean the same. */
static void put_json(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("\\u003c", out); break;
		case '>': fputs("\\u003e", out); break;
		case '&': fputs("\\u0026", out); break;
		default: fputc(*s, out);
		}
	}
}

static void put_html_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		default: fputc(*s, out);
		}
	}
}

/* @libs: the libraries, inlined in this order before the page's script
 * (those with no data are left out). */
static void write_page(FILE *out, const struct model *m, const char *data,
		       const struct asset *libs, size_t nlibs,
		       const struct asset *js, const struct asset *css)
{
	const char *exe = m->exe[0] ? m->exe : "python";
	const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	char title[PATH_MAX + 64];

	snprintf(title, sizeof(title), "giltrace: PID %d %s", (int)m->pid, base);
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<meta name=\"generator\" content=\"giltrace " GILTRACE_VERSION "\">\n"
	      "<title>", out);
	put_html_text(out, title);
	fputs("</title>\n<style>\n", out);
	put_inline(out, css->data, css->len);
	fputs("\n</style>\n</head>\n<body>\n"
	      "<noscript><p>This report draws its charts with JavaScript:"
	      " open it in a browser with JavaScript enabled.</p></noscript>\n"
	      "<div id=\"app\"></div>\n"
	      "<script type=\"application/json\" id=\"giltrace-data\">", out);
	put_json(out, data);
	fputs("</script>\n", out);
	for (size_t i = 0; i < nlibs; i++) {
		if (!libs[i].data)
			continue;
		fputs("<script>\n", out);
		put_inline(out, libs[i].data, libs[i].len);
		fputs("\n</script>\n", out);
	}
	fputs("<script>\n", out);
	put_inline(out, js->data, js->len);
	fputs("\n</script>\n</body>\n</html>\n", out);
}

int report_html(FILE *out, const struct model *m, const struct timeline *tl,
		const char *assets, char *err, size_t errlen)
{
	/* echarts, then (with stacks) d3 and d3-flame-graph, which needs d3 */
	struct asset libs[3] = { { 0 } }, js = { 0 }, css = { 0 };
	const char *dir = assets_dir(assets);
	struct hb b = { 0 };
	json_t *root = NULL;
	char *data = NULL;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!err || !errlen) {
		static char dummy[2];

		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!out || !m) {
		snprintf(err, errlen, "giltrace: --html: nothing to report");
		return -EINVAL;
	}
	rc = read_asset(dir, ASSET_LIB, &libs[0], err, errlen);
	if (!rc && m->stacks)
		rc = read_asset(dir, ASSET_D3, &libs[1], err, errlen);
	if (!rc && m->stacks)
		rc = read_asset(dir, ASSET_FLAME, &libs[2], err, errlen);
	if (!rc)
		rc = read_asset(dir, ASSET_JS, &js, err, errlen);
	if (!rc)
		rc = read_asset(dir, ASSET_CSS, &css, err, errlen);
	if (rc)
		goto out;
	root = report_tree(m, tl, &rc);
	if (rc) {
		snprintf(err, errlen, "giltrace: --html: cannot build the report"
			 " data: %s", strerror(-rc));
		goto out;
	}
	put(&b, root, "timeline", tl ? timeline_json(&b, m, tl) : json_null());
	put(&b, root, "flame", m->stacks ? flame_json(&b, m) : json_null());
	data = b.err ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER |
					 JSON_REAL_PRECISION(6));
	if (!data) {
		rc = b.err ? b.err : -ENOMEM;
		snprintf(err, errlen, "giltrace: --html: out of memory building"
			 " the report data");
		goto out;
	}
	write_page(out, m, data, libs, 3, &js, &css);
	if (fflush(out) || ferror(out)) {
		rc = -EIO;
		snprintf(err, errlen, "giltrace: --html: write error: %s",
			 strerror(errno ? errno : EIO));
	}
out:
	free(data);
	json_decref(root);
	for (size_t i = 0; i < 3; i++)
		free(libs[i].data);
	free(js.data);
	free(css.data);
	return rc;
}
