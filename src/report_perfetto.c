// SPDX-License-Identifier: MIT
/*
 * report_perfetto.c - the timeline as a Chrome Trace Event Format JSON file
 * (--perfetto FILE), for ui.perfetto.dev and chrome://tracing
 * (docs/views.md):
 *
 *   - the target is one process (pid), named after its executable;
 *   - one thread track per traced thread, named "TID name";
 *   - complete slices ("ph":"X") "waits for GIL" (args: the holders it
 *     waited behind) and "holds GIL", one of each per GIL cycle; with
 *     stacks (--stacks), a slice whose cycle has a stack gets it as args
 *     "stack": frame labels (model_stacks__label), innermost first, at most
 *     MAX_STACK_ARGS of them ("stack_depth" then gives the whole depth);
 *     one JSON array per distinct stack, built once and shared;
 *   - a flow arrow (v1: "s" then "f" with "bp":"e") from each release to
 *     the next acquisition by another thread; a thread re-taking the GIL it
 *     just dropped gets none;
 *   - a counter "threads waiting for the GIL" with a value at every change;
 *   - records lost in the kernel, and the truncation of the timeline, on a
 *     "giltrace" track.
 *
 * Times are µs from the start of tracing, in multiples of 1/1024 µs
 * (0.98 ns), the ns rounded to the nearest. Such numbers are exact in
 * binary floating point, so readers that compute with doubles (speedscope
 * rebases every ts on the first one, chrome://tracing computes ends as
 * ts + dur) see a wait end exactly where its hold begins, never an
 * overlap; a "dur" is the difference of two such times, exactly. Rounding
 * a time * 1000 gives back the exact ns; Perfetto, which cuts decimals
 * after the ns, may show one ns less, and touching slices stay touching or
 * 1 ns apart.
 *
 * Events are streamed one by one (each built and written with jansson), so
 * memory stays bounded by the timeline itself.
 */
#include <errno.h>
#include <inttypes.h>
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

/* The "giltrace" track: a TID above any pid_max (2^22), so never a real
 * thread's. */
#define GILTRACE_TID 99999999
#define MAX_HOLDERS 16        /* listed in a wait slice's args */
#define MAX_SCAN 100000       /* holds looked at for one wait */
#define MAX_STACK_ARGS 32     /* innermost frames of a stack in a slice's args */
/* 17 significant digits: every double is read back exactly. */
#define JFLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))

#define N_WAIT "waits for GIL"
#define N_WAIT_ABANDONED "waits for GIL (abandoned at thread exit)"
#define N_HOLD "holds GIL"
#define N_FLOW "GIL hand-off"
#define N_COUNTER "threads waiting for the GIL"

struct pw {
	FILE *out;
	int err;
	size_t nevents;
	uint64_t t0;
	int pid;
	const struct model_stacks *ms; /* NULL: no stacks */
	json_t **stack_args;          /* per stack index, built on first use */
};

/* A hold of any thread, for flows and for the holders of each wait. */
struct hold {
	uint64_t held, release;
	uint32_t tid;
};

/* ---- output ------------------------------------------------------------ */

/* Set @key of @o to @v; the reference to @v is always consumed. The first
 * failure sticks in w->err. */
static void set(struct pw *w, json_t *o, const char *key, json_t *v)
{
	if (!o || !v) {
		json_decref(v);
		w->err = w->err ? w->err : -ENOMEM;
		return;
	}
	if (json_object_set_new(o, key, v))
		w->err = w->err ? w->err : -ENOMEM;
}

/* Write event @ev (consumed) to the traceEvents array. */
static void emit(struct pw *w, json_t *ev)
{
	if (!ev && !w->err)
		w->err = -ENOMEM;
	if (!w->err) {
		if (fputs(w->nevents ? ",\n" : "\n", w->out) == EOF ||
		    json_dumpf(ev, w->out, JFLAGS))
			w->err = -EIO;
		w->nevents++;
	}
	json_decref(ev);
}

/* µs from the start of tracing, a multiple of 1/1024 (see the header). */
static double us_at(const struct pw *w, uint64_t t)
{
	uint64_t d = t >= w->t0 ? t - w->t0 : w->t0 - t;
	double q;

	d = d > UINT64_MAX / 1024 ? UINT64_MAX / 1024 : d;
	q = (double)((d * 1024 + 500) / 1000) / 1024.0;
	return t >= w->t0 ? q : -q;
}

static json_t *jts(const struct pw *w, uint64_t t)
{
	return json_real(us_at(w, t));
}

/* ts + dur is the end's ts, exactly. */
static json_t *jdur(const struct pw *w, uint64_t b, uint64_t e)
{
	return json_real(us_at(w, e) - us_at(w, b));
}

/* A new event {"name", "cat", "ph", "pid", "tid"}. */
static json_t *event(struct pw *w, const char *name, const char *ph,
		     uint32_t tid)
{
	json_t *e = json_object();

	set(w, e, "name", jstr(name));
	set(w, e, "cat", json_string("gil"));
	set(w, e, "ph", json_string(ph));
	set(w, e, "pid", json_integer(w->pid));
	set(w, e, "tid", json_integer(tid));
	return e;
}

static void meta(struct pw *w, const char *what, uint32_t tid, const char *key,
		 json_t *v)
{
	json_t *e = event(w, what, "M", tid), *args = json_object();

	set(w, args, key, v);
	set(w, e, "args", args);
	emit(w, e);
}

/* ---- the process and its threads --------------------------------------- */

static const char *thread_name(const struct model *m, const struct tl_thread *t)
{
	if (t->name[0])
		return t->name;
	for (size_t i = 0; m && i < m->nthreads; i++)
		if (m->threads[i].k.tid == t->tid && m->threads[i].name[0])
			return m->threads[i].name;
	return "?";
}

static int by_first_cycle(const void *a, const void *b)
{
	const struct tl_thread *x = *(const struct tl_thread *const *)a;
	const struct tl_thread *y = *(const struct tl_thread *const *)b;
	uint64_t fx = x->ncycles ? x->cycles[0].wait_begin : UINT64_MAX;
	uint64_t fy = y->ncycles ? y->cycles[0].wait_begin : UINT64_MAX;

	if (fx != fy)
		return fx < fy ? -1 : 1;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

static void names(struct pw *w, const struct model *m,
		  const struct timeline *tl)
{
	const struct tl_thread **v = calloc(tl->nthreads + 1, sizeof(*v));
	const char *exe = m && m->exe[0] ? m->exe : "python", *base;
	char buf[PATH_MAX + 96];

	if (!v) {
		w->err = -ENOMEM;
		return;
	}
	base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	snprintf(buf, sizeof(buf), "%s (PID %d)%s%s", base, w->pid,
		 m && m->python_version[0] ? ", Python " : "",
		 m ? m->python_version : "");
	meta(w, "process_name", (uint32_t)w->pid, "name", jstr(buf));
	for (size_t i = 0; i < tl->nthreads; i++)
		v[i] = &tl->threads[i];
	qsort(v, tl->nthreads, sizeof(*v), by_first_cycle);
	for (size_t i = 0; i < tl->nthreads; i++) {
		snprintf(buf, sizeof(buf), "%" PRIu32 " %s", v[i]->tid,
			 thread_name(m, v[i]));
		meta(w, "thread_name", v[i]->tid, "name", jstr(buf));
		meta(w, "thread_sort_index", v[i]->tid, "sort_index",
		     json_integer((json_int_t)i));
	}
	if (tl->nlost || tl->truncated) {
		meta(w, "thread_name", GILTRACE_TID, "name", json_string("giltrace"));
		meta(w, "thread_sort_index", GILTRACE_TID, "sort_index",
		     json_integer(-1));
	}
	free(v);
}

/* ---- holds of every thread, in time order -------------------------------- */

static bool is_hold(const struct tl_cycle *c)
{
	return !(c->flags & (TL_OPEN_WAIT | TL_ABANDONED)) &&
	       c->release >= c->held && c->held >= c->wait_begin;
}

static int by_held(const void *a, const void *b)
{
	const struct hold *x = a, *y = b;

	if (x->held != y->held)
		return x->held < y->held ? -1 : 1;
	if (x->release != y->release)
		return x->release < y->release ? -1 : 1;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

static struct hold *collect_holds(const struct timeline *tl, size_t *n)
{
	size_t total = 0, k = 0;
	struct hold *h;

	for (size_t i = 0; i < tl->nthreads; i++)
		total += tl->threads[i].ncycles;
	h = calloc(total + 1, sizeof(*h));
	if (!h)
		return NULL;
	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++)
			if (is_hold(&t->cycles[j]))
				h[k++] = (struct hold){ t->cycles[j].held,
					t->cycles[j].release, t->tid };
	}
	qsort(h, k, sizeof(*h), by_held);
	*n = k;
	return h;
}

/* The threads other than @tid that held the GIL during [b, e), in order. */
static json_t *holders(struct pw *w, const struct hold *h, size_t n,
		       uint32_t tid, uint64_t b, uint64_t e)
{
	json_t *a = json_array();
	uint32_t seen[MAX_HOLDERS];
	size_t lo = 0, hi = n, nseen = 0, scanned = 0;

	while (lo < hi) { /* first hold that begins at or after b */
		size_t mid = lo + (hi - lo) / 2;

		if (h[mid].held < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Holds are (nearly) disjoint: the ones that began before b and
	 * still ran are just before. */
	for (size_t back = 0; lo > 0 && back < 16 && h[lo - 1].release > b; back++)
		lo--;
	for (size_t i = lo; i < n && h[i].held < e && scanned < MAX_SCAN;
	     i++, scanned++) {
		bool dup = false;

		if (h[i].tid == tid || h[i].release <= b)
			continue;
		for (size_t j = 0; j < nseen && !dup; j++)
			dup = seen[j] == h[i].tid;
		if (dup)
			continue;
		seen[nseen++] = h[i].tid;
		if (json_array_append_new(a, json_integer(h[i].tid)) && !w->err)
			w->err = -ENOMEM;
		if (nseen == MAX_HOLDERS)
			break;
	}
	return a;
}

/* ---- slices -------------------------------------------------------------- */

static void slice(struct pw *w, const char *name, uint32_t tid, uint64_t b,
		  uint64_t e, json_t *args)
{
	json_t *ev = event(w, name, "X", tid);

	set(w, ev, "ts", jts(w, b));
	set(w, ev, "dur", jdur(w, b, e));
	set(w, ev, "args", args);
	emit(w, ev);
}

static void flag_args(struct pw *w, json_t *args, uint32_t flags)
{
	if (flags & GT_CYC_CLIPPED)
		set(w, args, "began_before_tracing", json_true());
	if (flags & GT_CYC_AT_START)
		set(w, args, "held_when_tracing_began", json_true());
	if (flags & GT_CYC_INFERRED)
		set(w, args, "inferred", json_true());
	if (flags & (TL_OPEN_HOLD | TL_OPEN_WAIT))
		set(w, args, "open_at_end", json_true());
}

/* ---- stacks ------------------------------------------------------------- */

/* The innermost MAX_STACK_ARGS frames of stack @idx, innermost first. */
static json_t *stack_labels(struct pw *w, size_t idx)
{
	const struct model_stack *st = &w->ms->stacks[idx];
	json_t *a = json_array();
	char label[2048];

	for (uint32_t k = 0; k < st->nframes && k < MAX_STACK_ARGS && a; k++) {
		uint32_t f = st->frames[st->nframes - 1 - k];

		if (f >= w->ms->nframes)
			snprintf(label, sizeof(label), "%s", MS_UNKNOWN);
		else
			model_stacks__label(&w->ms->frames[f], label, sizeof(label));
		if (json_array_append_new(a, jstr(label)))
			w->err = w->err ? w->err : -ENOMEM;
	}
	return a;
}

/* args "stack" (and "stack_depth" when cut) of the stack with id @id: a
 * stack id the model does not know is "[stack lost]"; id 0, or no stacks
 * in the model, add nothing. */
static void stack_arg(struct pw *w, json_t *args, uint64_t id)
{
	const struct model_stack *st;
	json_t *a;
	int idx;

	if (!id || !w->ms || !args)
		return;
	idx = model_stacks__find(w->ms, id);
	if (idx < 0) {
		a = json_array();
		if (a && json_array_append_new(a, json_string(MS_LOST)))
			w->err = w->err ? w->err : -ENOMEM;
		set(w, args, "stack", a);
		return;
	}
	st = &w->ms->stacks[idx];
	if (!st->nframes)
		return;
	if (w->stack_args && !w->stack_args[idx])
		w->stack_args[idx] = stack_labels(w, (size_t)idx);
	a = w->stack_args ? w->stack_args[idx] : stack_labels(w, (size_t)idx);
	set(w, args, "stack", w->stack_args ? json_incref(a) : a);
	if (st->nframes > MAX_STACK_ARGS)
		set(w, args, "stack_depth", json_integer(st->nframes));
}

/* One cycle: its wait slice (if it waited), then its hold slice. @prev
 * keeps one thread's slices from overlapping each other whatever the
 * input. */
static void cycle_slices(struct pw *w, const struct tl_thread *t,
			 const struct tl_cycle *c, const struct hold *h,
			 size_t nh, uint64_t *prev)
{
	uint64_t wb = c->wait_begin, held = c->held, rel = c->release;
	json_t *args;

	if (held < wb || rel < held)
		return; /* corrupt */
	if (wb < *prev)
		wb = *prev;
	if (held < wb)
		held = wb;
	if (rel < held)
		rel = held;
	if (c->flags & TL_ABANDONED) {
		args = json_object();
		set(w, args, "wait_ns", jint(rel - wb));
		set(w, args, "holders", holders(w, h, nh, t->tid, wb, rel));
		stack_arg(w, args, c->wait_stack);
		slice(w, N_WAIT_ABANDONED, t->tid, wb, rel, args);
		*prev = rel;
		return;
	}
	if (held > wb) {
		args = json_object();
		set(w, args, "wait_ns", jint(held - wb));
		set(w, args, "holders", holders(w, h, nh, t->tid, wb, held));
		flag_args(w, args, c->flags & ~TL_OPEN_HOLD);
		stack_arg(w, args, c->wait_stack);
		slice(w, N_WAIT, t->tid, wb, held, args);
	}
	*prev = held;
	if (c->flags & TL_OPEN_WAIT)
		return;
	args = json_object();
	set(w, args, "hold_ns", jint(rel - held));
	set(w, args, "cpu", json_integer(c->cpu));
	flag_args(w, args, c->flags & ~TL_OPEN_WAIT);
	stack_arg(w, args, c->hold_stack);
	slice(w, N_HOLD, t->tid, held, rel, args);
	*prev = rel;
}

static void slices(struct pw *w, const struct timeline *tl,
		   const struct hold *h, size_t nh)
{
	for (size_t i = 0; i < tl->nthreads && !w->err; i++) {
		const struct tl_thread *t = &tl->threads[i];
		uint64_t prev = 0;

		for (size_t j = 0; j < t->ncycles && !w->err; j++)
			cycle_slices(w, t, &t->cycles[j], h, nh, &prev);
	}
}

/* ---- flows: release -> the next acquisition by another thread ------------ */

static void flow_end(struct pw *w, const char *ph, uint32_t tid, uint64_t ts,
		     uint64_t id)
{
	json_t *e = event(w, N_FLOW, ph, tid);

	set(w, e, "ts", jts(w, ts));
	set(w, e, "id", jint(id));
	if (ph[0] == 'f')
		set(w, e, "bp", json_string("e"));
	emit(w, e);
}

/* How far inside a slice of @dur ns a flow end goes: 3 ns, or the middle. */
static uint64_t min3(uint64_t dur)
{
	return dur >= 6 ? 3 : dur / 2;
}

static void flows(struct pw *w, const struct hold *h, size_t n)
{
	uint64_t id = 0;

	for (size_t i = 1; i < n && !w->err; i++) {
		const struct hold *a = &h[i - 1], *b = &h[i];
		uint64_t s, f;

		if (a->tid == b->tid)
			continue;
		/* Inside both slices, so each binds to its slice, whatever
		 * the 1 ns a reader may lose to rounding (see the header). */
		s = a->release - min3(a->release - a->held);
		f = b->held + min3(b->release - b->held);
		if (f < s)
			f = s;
		flow_end(w, "s", a->tid, s, ++id);
		flow_end(w, "f", b->tid, f, id);
	}
}

/* ---- counter: threads waiting ------------------------------------------- */

struct step {
	uint64_t ts;
	int delta;
};

static int by_ts(const void *a, const void *b)
{
	const struct step *x = a, *y = b;

	return (x->ts > y->ts) - (x->ts < y->ts);
}

static void counter_value(struct pw *w, uint64_t ts, long v)
{
	json_t *e = event(w, N_COUNTER, "C", (uint32_t)w->pid), *args = json_object();

	set(w, e, "ts", jts(w, ts));
	set(w, args, "count", json_integer(v));
	set(w, e, "args", args);
	emit(w, e);
}

static void counter(struct pw *w, const struct timeline *tl)
{
	size_t total = 0, n = 0;
	struct step *s;
	long v = 0, last = -1;

	for (size_t i = 0; i < tl->nthreads; i++)
		total += 2 * tl->threads[i].ncycles;
	s = calloc(total + 1, sizeof(*s));
	if (!s) {
		w->err = w->err ? w->err : -ENOMEM;
		return;
	}
	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++) {
			const struct tl_cycle *c = &t->cycles[j];
			uint64_t e = c->flags & TL_ABANDONED ? c->release : c->held;

			if (e <= c->wait_begin || c->release < c->held)
				continue;
			s[n++] = (struct step){ c->wait_begin, +1 };
			s[n++] = (struct step){ e, -1 };
		}
	}
	qsort(s, n, sizeof(*s), by_ts);
	counter_value(w, tl->t0 ? tl->t0 : w->t0, 0);
	last = 0;
	for (size_t i = 0; i < n && !w->err;) {
		uint64_t ts = s[i].ts;

		for (; i < n && s[i].ts == ts; i++)
			v += s[i].delta;
		if (v != last)
			counter_value(w, ts, v < 0 ? 0 : v);
		last = v;
	}
	free(s);
}

/* ---- the giltrace track: lost records, truncation ------------------------ */

static void giltrace_track(struct pw *w, const struct timeline *tl,
			   const struct hold *h, size_t nh)
{
	uint64_t prev = 0;
	json_t *args, *e;

	for (size_t i = 0; i < tl->nlost; i++) {
		uint64_t b = tl->lost[i].begin, end = tl->lost[i].end;

		b = b < prev ? prev : b;
		end = end < b ? b : end;
		args = json_object();
		set(w, args, "records_lost", jint(tl->lost[i].count));
		slice(w, "records lost (ring buffer full)", GILTRACE_TID, b, end,
		      args);
		prev = end;
	}
	if (tl->truncated) {
		uint64_t at = 0;

		for (size_t i = 0; i < nh; i++)
			at = h[i].release > at ? h[i].release : at;
		e = event(w, "timeline truncated: later GIL cycles not shown",
			  "i", GILTRACE_TID);
		set(w, e, "ts", jts(w, at));
		set(w, e, "s", json_string("t"));
		args = json_object();
		set(w, args, "max_cycles", jint(tl->max_cycles));
		set(w, e, "args", args);
		emit(w, e);
	}
}

/* ---- the file ------------------------------------------------------------- */

static json_t *metadata(struct pw *w, const struct model *m,
			const struct timeline *tl)
{
	json_t *o = json_object();

	set(w, o, "tool", json_string("giltrace"));
	set(w, o, "giltrace_version", json_string(GILTRACE_VERSION));
	set(w, o, "pid", json_integer(w->pid));
	set(w, o, "exe", jstr(m && m->exe[0] ? m->exe : ""));
	set(w, o, "python_version", jstr(m ? m->python_version : ""));
	set(w, o, "t0_ns", jint(w->t0));
	set(w, o, "interval_ns", jint(tl->t_end > w->t0 ? tl->t_end - w->t0 : 0));
	set(w, o, "records_lost", jint(tl->lost_records));
	set(w, o, "truncated", json_boolean(tl->truncated));
	set(w, o, "max_cycles", jint(tl->max_cycles));
	set(w, o, "holder_switches", jint(tl->holder_switches));
	set(w, o, "time_note", json_string("ts and dur: microseconds from"
		" t0_ns in multiples of 1/1024 (exact in floating point);"
		" round(x * 1000) is the ns"));
	if (w->ms)
		set(w, o, "stack_note", json_string("args.stack: the stack of a"
			" wait (at take_gil) or of a hold (at its release),"
			" innermost frame first, at most 32 frames"
			" (args.stack_depth: the whole depth when cut)"));
	return o;
}

int report_perfetto(FILE *out, const struct model *m,
		    const struct timeline *tl)
{
	struct pw w = { .out = out };
	struct hold *h;
	size_t nh = 0;
	json_t *md;

	if (!out || !tl)
		return -EINVAL;
	w.t0 = tl->t0 ? tl->t0 : m ? m->t0_ns : 0;
	w.pid = m && m->pid > 0 ? m->pid : 1;
	w.ms = m ? m->stacks : NULL;
	if (w.ms && w.ms->nstacks)
		w.stack_args = calloc(w.ms->nstacks, sizeof(*w.stack_args));
	h = collect_holds(tl, &nh);
	if (!h) {
		free(w.stack_args);
		return -ENOMEM;
	}
	md = metadata(&w, m, tl);
	if (!w.err && (fputs("{\"displayTimeUnit\":\"ns\",\"metadata\":", out) == EOF ||
		       json_dumpf(md, out, JFLAGS) ||
		       fputs(",\"traceEvents\":[", out) == EOF))
		w.err = -EIO;
	json_decref(md);
	names(&w, m, tl);
	slices(&w, tl, h, nh);
	flows(&w, h, nh);
	counter(&w, tl);
	giltrace_track(&w, tl, h, nh);
	free(h);
	for (size_t i = 0; w.stack_args && i < w.ms->nstacks; i++)
		json_decref(w.stack_args[i]);
	free(w.stack_args);
	if (!w.err && fputs("\n]}\n", out) == EOF)
		w.err = -EIO;
	if (!w.err && (fflush(out) || ferror(out)))
		w.err = -EIO;
	return w.err;
}
