// SPDX-License-Identifier: MIT
/*
 * report_json.c - the machine-readable result, schema "giltrace/1"
 * (docs/json.md), built with jansson. --tid filters the threads; --top does
 * not (every selected thread is written, busiest first). With the event
 * stream (o->tl), also who waited behind whom ("blocked_by").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "model.h"
#include "model_stacks.h"
#include "report.h"
#include "json_util.h"
#include "timeline.h"

#ifndef GILTRACE_VERSION
#define GILTRACE_VERSION "0.0.0"
#endif

/* Builder state: the first failure sticks, later calls do nothing. */
struct jb {
	int err;
};

/* Set @key of @obj to @v (a new reference, NULL on allocation failure).
 * The reference is always consumed. */
static void put(struct jb *b, json_t *obj, const char *key, json_t *v)
{
	if (b->err || !obj || !v) {
		json_decref(v);
		b->err = b->err ? b->err : -ENOMEM;
		return;
	}
	/* json_object_set_new drops @v itself when it fails. */
	if (json_object_set_new(obj, key, v))
		b->err = -ENOMEM;
}

static void append(struct jb *b, json_t *arr, json_t *v)
{
	if (b->err || !arr || !v) {
		json_decref(v);
		b->err = b->err ? b->err : -ENOMEM;
		return;
	}
	if (json_array_append_new(arr, v))
		b->err = -ENOMEM;
}

/* A string, or null when empty. */
static json_t *jstr_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

/* json_string() refuses invalid UTF-8 (a comm can hold any bytes): fall
 * back to a copy with the offending bytes replaced by '?'. */
static json_t *probe_json(struct jb *b, const struct model_probe *p)
{
	json_t *o = json_object();
	char addr[24];

	snprintf(addr, sizeof(addr), "0x%" PRIx64, p->address);
	put(b, o, "function", jstr(p->function));
	put(b, o, "symbol", jstr(p->symbol));
	put(b, o, "file", jstr(p->file));
	put(b, o, "offset", jint(p->offset));
	put(b, o, "address", json_string(addr));
	put(b, o, "kind", jstr(p->kind));
	put(b, o, "inlined", json_boolean(p->inlined));
	put(b, o, "caller", p->caller[0] ? jstr(p->caller) : json_null());
	put(b, o, "role", jstr_or_null(p->role));
	return o;
}

static json_t *target_json(struct jb *b, const struct model *m)
{
	json_t *o = json_object(), *probes = json_array();

	put(b, o, "pid", json_integer(m->pid));
	put(b, o, "exe", jstr(m->exe));
	put(b, o, "python_version", jstr(m->python_version));
	put(b, o, "library", m->library[0] ? jstr(m->library) : json_null());
	for (size_t i = 0; i < m->nprobes; i++)
		append(b, probes, probe_json(b, &m->probes[i]));
	put(b, o, "probes", probes);
	return o;
}

/* log2_hist: slot i counts [2^i, 2^(i+1)) ns; trailing empty slots cut. */
static json_t *dist_json(struct jb *b, const struct gt_dist *d)
{
	json_t *o = json_object(), *h = json_array();
	uint64_t slots[GT_LOG2_SLOTS];
	int top = -1;

	gt_dist_log2(d, slots);
	for (int i = 0; i < GT_LOG2_SLOTS; i++)
		if (slots[i])
			top = i;
	for (int i = 0; i <= top; i++)
		append(b, h, jint(slots[i]));
	put(b, o, "count", jint(d->count));
	put(b, o, "sum_ns", jint(d->sum_ns));
	put(b, o, "p50_ns", jint(gt_dist_quantile(d, 0.50)));
	put(b, o, "p99_ns", jint(gt_dist_quantile(d, 0.99)));
	put(b, o, "max_ns", jint(d->max_ns));
	put(b, o, "log2_hist", h);
	return o;
}

#define JSON_TOP_STACKS 10

static json_t *frame_json(struct jb *b, const struct model_frame *f)
{
	static const char *const kinds[] = { "python", "native", "mark" };
	json_t *o = json_object();

	put(b, o, "function", jstr(f->function));
	put(b, o, "file", f->file[0] ? jstr(f->file) : json_null());
	put(b, o, "line", f->line > 0 ? json_integer(f->line) : json_null());
	if (f->kind == MF_NATIVE)
		put(b, o, "module", jstr(f->module));
	put(b, o, "kind", json_string(kinds[f->kind <= MF_MARK ? f->kind : MF_MARK]));
	return o;
}

/* One thread's heaviest stacks of @kind: totals, and the top ones with
 * their frames innermost first. */
static json_t *stacks_of(struct jb *b, const struct model_stacks *ms,
			 const struct model_thread *t, uint32_t kind)
{
	const struct model_stack_weight **v;
	json_t *o = json_object(), *top = json_array();
	uint64_t count, ns;
	ssize_t n;

	model_stacks__thread_total(ms, t->k.tid, t->k.first_seen_ns, kind,
				   &count, &ns);
	put(b, o, "total_ns", jint(ns));
	put(b, o, "count", jint(count));
	n = model_stacks__thread(ms, t->k.tid, t->k.first_seen_ns, kind, &v);
	if (n < 0) {
		b->err = (int)n;
		n = 0;
	}
	put(b, o, "distinct", jint((uint64_t)n));
	for (ssize_t i = 0; i < n && i < JSON_TOP_STACKS; i++) {
		const struct model_stack *st = &ms->stacks[v[i]->stack];
		json_t *e = json_object(), *fr = json_array();

		put(b, e, "ns", jint(v[i]->ns));
		put(b, e, "count", jint(v[i]->count));
		put(b, e, "share", json_real(ns ? (double)v[i]->ns / (double)ns : 0.0));
		put(b, e, "truncated", json_boolean(st->flags & GT_STK_TRUNCATED));
		for (uint32_t j = st->nframes; j-- > 0;)
			append(b, fr, frame_json(b, &ms->frames[st->frames[j]]));
		put(b, e, "frames", fr);
		append(b, top, e);
	}
	free(v);
	put(b, o, "top", top);
	return o;
}

static json_t *thread_stacks_json(struct jb *b, const struct model *m,
				  const struct model_thread *t)
{
	json_t *o = json_object();

	put(b, o, "wait", stacks_of(b, m->stacks, t, GT_W_WAIT));
	put(b, o, "hold", stacks_of(b, m->stacks, t, GT_W_HOLD));
	return o;
}

int report__stacks_summary(json_t *o, const struct model_stacks *ms)
{
	struct jb b = { 0 };

	if (!o)
		return -ENOMEM;
	put(&b, o, "max_depth", jint(ms->max_depth));
	put(&b, o, "distinct", jint(ms->nstacks));
	put(&b, o, "holder_samples", jint(ms->samples));
	put(&b, o, "holder_samples_skipped", jint(ms->samples_skipped));
	put(&b, o, "walks_interrupted", jint(ms->walks_interrupted));
	put(&b, o, "weights_lost", jint(ms->weights_lost));
	put(&b, o, "stacks_lost", jint(ms->stacks_lost));
	put(&b, o, "frames_unresolved", jint(ms->frames_unresolved));
	put(&b, o, "native_failed", jint(ms->native_failed));
	return b.err;
}

static json_t *stacks_summary(struct jb *b, const struct model_stacks *ms)
{
	json_t *o = json_object();
	int err = report__stacks_summary(o, ms);

	if (err && !b->err)
		b->err = err;
	return o;
}

static json_t *thread_json(struct jb *b, const struct model *m,
			   const struct model_thread *t)
{
	json_t *o = json_object();

	put(b, o, "tid", jint(t->k.tid));
	put(b, o, "name", jstr(t->name));
	put(b, o, "hold_ns", jint(t->hold_ns));
	put(b, o, "wait_ns", jint(t->wait_ns));
	put(b, o, "acquisitions", jint(t->k.acquisitions));
	put(b, o, "hold", dist_json(b, &t->k.hold));
	put(b, o, "wait", dist_json(b, &t->k.wait));
	put(b, o, "open_hold_ns", jint(t->open_hold_ns));
	put(b, o, "open_wait_ns", jint(t->open_wait_ns));
	put(b, o, "waits_abandoned", jint(t->k.waits_abandoned));
	put(b, o, "waits_abandoned_ns", jint(t->k.waits_abandoned_ns));
	put(b, o, "waits_clipped", jint(t->k.waits_clipped));
	put(b, o, "inconsistent", jint(t->k.inconsistent));
	put(b, o, "wait_share", json_real(report__wait_share(m, t)));
	put(b, o, "exited", json_boolean(t->exited));
	if (m->stacks)
		put(b, o, "stacks", thread_stacks_json(b, m, t));
	return o;
}

static json_t *gil_json(struct jb *b, const struct model *m)
{
	json_t *o = json_object();
	uint64_t held = model__held_ns(m), interval = model__interval_ns(m);
	double s = interval ? (double)held / (double)interval : 0.0;

	put(b, o, "held_ns", jint(held));
	put(b, o, "acquisitions", jint(m->acquisitions));
	put(b, o, "holder_switches", jint(m->holder_switches));
	put(b, o, "held_share", json_real(s > 1.0 ? 1.0 : s));
	if (!strcmp(m->mode, "contention"))
		put(b, o, "sample_hz", jint(m->sample_hz));
	return o;
}

/* Is @tid one of the @n threads of @v (the selected ones)? */
static bool selected(const struct model_thread **v, ssize_t n, uint32_t tid)
{
	for (ssize_t i = 0; i < n; i++)
		if (v[i]->k.tid == tid)
			return true;
	return false;
}

/* Who waited behind whom (timeline.h): one object per (waiter, holder),
 * holder null for the hand-off gaps when nobody held the GIL. Only the
 * waiters --tid selects. */
static json_t *blocked_json(struct jb *b, const struct timeline *tl,
			    const struct model_thread **v, ssize_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < tl->nblocked; i++) {
		const struct tl_blocked *x = &tl->blocked[i];
		json_t *o;

		if (!selected(v, n, x->waiter))
			continue;
		o = json_object();
		put(b, o, "waiter", jint(x->waiter));
		put(b, o, "holder", x->holder ? jint(x->holder) : json_null());
		put(b, o, "wait_ns", jint(x->wait_ns));
		put(b, o, "count", jint(x->count));
		append(b, a, o);
	}
	return a;
}

/* The figures that are estimates, not measurements (docs/json.md): in
 * contention mode, every hold figure (sampled) and what depends on it. */
static json_t *estimated_json(struct jb *b, const struct model *m)
{
	static const char *const contention[] = {
		"gil.held_ns", "gil.held_share", "threads[].hold_ns",
		"threads[].open_hold_ns", "verdict",
	};
	json_t *a = json_array();

	if (!strcmp(m->mode, "contention"))
		for (size_t i = 0; i < sizeof(contention) / sizeof(*contention); i++)
			append(b, a, json_string(contention[i]));
	return a;
}

/* Figures this mode does not measure at all (they read 0 or empty). */
static json_t *not_measured_json(struct jb *b, const struct model *m)
{
	json_t *a = json_array();

	if (!strcmp(m->mode, "contention")) {
		append(b, a, json_string("gil.holder_switches"));
		append(b, a, json_string("threads[].hold"));
		if (!m->sample_hz) {
			append(b, a, json_string("gil.held_ns"));
			append(b, a, json_string("threads[].hold_ns"));
		}
	}
	return a;
}

static json_t *build(struct jb *b, const struct model *m,
		     const struct report_opts *o)
{
	const struct model_thread **v = NULL;
	json_t *root = json_object(), *threads = json_array();
	char verdict[512];
	ssize_t n;

	n = report__threads(m, o, &v);
	if (n < 0) {
		b->err = (int)n;
		n = 0;
	}
	put(b, root, "schema", json_string("giltrace/1"));
	put(b, root, "giltrace_version", json_string(GILTRACE_VERSION));
	put(b, root, "mode", jstr(m->mode));
	put(b, root, "estimated", estimated_json(b, m));
	put(b, root, "not_measured", not_measured_json(b, m));
	put(b, root, "target", target_json(b, m));
	put(b, root, "interval_ns", jint(model__interval_ns(m)));
	put(b, root, "switch_interval_ns", jint(m->switch_interval_ns));
	put(b, root, "target_exited", json_boolean(m->target_exited));
	put(b, root, "gil", gil_json(b, m));
	for (ssize_t i = 0; i < n; i++)
		append(b, threads, thread_json(b, m, v[i]));
	put(b, root, "threads", threads);
	put(b, root, "stacks", m->stacks ? stacks_summary(b, m->stacks) : json_null());
	if (o && o->tl) {
		json_t *ranges = json_array();

		put(b, root, "blocked_by", blocked_json(b, o->tl, v, n));
		/* Event-stream records lost in the kernel: the time ranges the
		 * timeline views mark incomplete (aggregates are complete). */
		put(b, root, "records_lost", jint(o->tl->lost_records));
		for (size_t i = 0; i < o->tl->nlost; i++) {
			json_t *r = json_object();

			put(b, r, "begin_ns", jint(o->tl->lost[i].begin - o->tl->t0));
			put(b, r, "end_ns", jint(o->tl->lost[i].end - o->tl->t0));
			put(b, r, "count", jint(o->tl->lost[i].count));
			append(b, ranges, r);
		}
		put(b, root, "incomplete_ranges", ranges);
	}
	put(b, root, "threads_total", jint(m->nthreads));
	put(b, root, "dropped_events", jint(m->dropped_events));
	put(b, root, "exits_deferred", jint(m->exits_deferred));
	put(b, root, "exit_status", m->launch_mode ?
	    json_integer(m->exit_status) : json_null());
	report_verdict(m, o, verdict, sizeof(verdict));
	put(b, root, "verdict", json_string(verdict));
	free(v);
	return root;
}

int report_json(FILE *out, const struct model *m, const struct report_opts *o)
{
	struct jb b = { 0 };
	json_t *root;

	if (!out || !m)
		return -EINVAL;
	root = build(&b, m, o);
	if (!b.err && json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
					 JSON_REAL_PRECISION(6)))
		b.err = -EIO;
	json_decref(root);
	if (b.err)
		return b.err;
	if (fputc('\n', out) == EOF || fflush(out) || ferror(out))
		return -EIO;
	return 0;
}
