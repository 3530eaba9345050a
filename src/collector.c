// SPDX-License-Identifier: MIT
/* collector.c - ring buffer and map drain into the trace model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "collector.h"
#include "model.h"
#include "model_stacks.h"
#include "py_symbolize.h"
#include "native_unwind.h"
#include "probes.h"
#include "trace_file.h"
#include "timeline.h"
#include "giltrace.skel.h"

struct collector {
	struct probes *p;
	struct model *m;
	struct ring_buffer *rb;
	struct gt_thread *buf; /* one map value, too large for the stack */
	uint64_t last_exit_ns;
	struct trace_writer *w;
	uint64_t records, write_errors;
	struct py_symbolizer *sym; /* --stacks */
	struct py_frame_info fi;   /* scratch: large */
	struct native_unwinder *nu; /* --native */
	struct pending_native **pending;
	size_t npending, cap_pending;
};

/* Native frames: room for the C path and a thread's whole stack. */
#define NATIVE_MAX 128

/* A new stack whose native frames are not unwound yet. */
struct pending_native {
	uint64_t id;
	uint32_t flags, n;
	bool python;              /* it has Python frames */
	uint32_t fr[GT_STACK_MAX + 2 + NATIVE_MAX]; /* frames so far */
	struct gt_native nat;
};

/* ---- --stacks ---------------------------------------------------------- */

static int mark_frame(struct model_stacks *ms, const char *mark)
{
	return model_stacks__frame(ms, MF_MARK, mark, "", 0, "");
}

/*
 * A stack as the BPF walker captured it (innermost first) -> model frames,
 * root first, with marks where the walk was cut: "[truncated]" at the root
 * when it was deeper than the walk, "[unknown]" where a frame could not be
 * read, "[no Python frames]" for a thread that ran none.
 */
/* Is @fn CPython's bytecode interpreter loop (the C frame that runs
 * Python frames)? _PyEval_EvalFrameDefault 3.6-3.13, with an LTO suffix
 * in some builds. */
static bool eval_loop(const char *fn)
{
	return !strncmp(fn, "_PyEval_EvalFrameDefault", 24) ||
	       !strncmp(fn, "PyEval_EvalFrameEx", 18);
}

/*
 * --native: the C frames to put after the Python ones, root first in
 * @fr: the frames between the innermost interpreter loop and the GIL
 * call (what the Python code called that released or took the GIL), or,
 * for a thread with no Python frames, its whole native stack. Nothing
 * when the stack cannot be unwound as far as the interpreter loop.
 */
static uint32_t native_frames(struct collector *c, const struct gt_native *n,
			      bool has_python, uint32_t *fr, uint32_t room)
{
	struct model_stacks *ms = c->m->stacks;
	uint64_t pcs[NATIVE_MAX];
	struct native_frame nf;
	size_t np = 0, top;
	uint32_t k = 0;
	int r, f;

	r = native_unwind__stack(c->nu, n, pcs, NATIVE_MAX, &np);
	if (np == 0) {
		c->m->stacks->native_failed++;
		return 0;
	}
	top = np;
	for (size_t i = 0; i < np; i++) {
		if (native_unwind__symbolize(c->nu, pcs[i], i > 0, &nf) == 0 &&
		    eval_loop(nf.function)) {
			top = i;
			break;
		}
	}
	if (has_python && top == np) {
		/* No interpreter loop in what could be unwound. */
		c->m->stacks->native_failed++;
		return 0;
	}
	if (!has_python && r != 0) {
		/* Cut (an unwinding error, or more than NATIVE_MAX frames):
		 * the outermost frames are missing. */
		if ((f = mark_frame(ms, MS_TRUNCATED)) >= 0 && k < room)
			fr[k++] = (uint32_t)f;
	}
	for (size_t i = top; i-- > 0 && k < room;) {
		native_unwind__symbolize(c->nu, pcs[i], i > 0, &nf);
		f = model_stacks__frame(ms, MF_NATIVE, nf.function, "", 0,
					nf.module);
		if (f < 0)
			break;
		fr[k++] = (uint32_t)f;
	}
	return k;
}

static int add_stack_n(struct collector *c, const struct gt_stack *st,
		       const struct gt_native *nat);

static int grow_pending(struct collector *c)
{
	struct pending_native **v;
	size_t n;

	if (c->npending < c->cap_pending)
		return 0;
	n = c->cap_pending ? 2 * c->cap_pending : 16;
	v = realloc(c->pending, n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->pending = v;
	c->cap_pending = n;
	return 0;
}

static int add_stack(struct collector *c, const struct gt_stack *st)
{
	return add_stack_n(c, st, NULL);
}

static int add_stack_n(struct collector *c, const struct gt_stack *st,
		       const struct gt_native *nat)
{
	struct model_stacks *ms = c->m->stacks;
	uint32_t fr[GT_STACK_MAX + 2 + NATIVE_MAX], n = 0, depth = st->depth;
	int f;

	if (model_stacks__find(ms, st->id) >= 0)
		return 0;
	if (depth > GT_STACK_MAX)
		depth = GT_STACK_MAX;
	if (st->flags & GT_STK_TRUNCATED) {
		if ((f = mark_frame(ms, MS_TRUNCATED)) < 0)
			return f;
		fr[n++] = (uint32_t)f;
	}
	if (st->flags & (GT_STK_UNREADABLE | GT_STK_NO_TSTATE)) {
		if ((f = mark_frame(ms, MS_UNKNOWN)) < 0)
			return f;
		fr[n++] = (uint32_t)f;
	}
	if (!depth && !n) {
		if ((f = mark_frame(ms, MS_NO_FRAMES)) < 0)
			return f;
		fr[n++] = (uint32_t)f;
	}
	for (uint32_t i = depth; i-- > 0;) {
		struct py_frame_info *fi = &c->fi;

		if (py_symbolize__frame_tok(c->sym, st->frames[i].code,
					    st->frames[i].pos, st->co_name[i],
					    fi) || !fi->known) {
			ms->frames_unresolved++;
			f = mark_frame(ms, MS_UNKNOWN);
		} else {
			f = model_stacks__frame(ms, MF_PYTHON, fi->qualname[0] ?
						fi->qualname : fi->function,
						fi->file, fi->line, "");
		}
		if (f < 0)
			return f;
		fr[n++] = (uint32_t)f;
	}
	if (nat && c->nu && nat->stack_len) {
		/* The Python frames are named now, while the process has
		 * them; the native ones later (collector__idle): unwinding
		 * needs only the copy and the ELF files, and the first
		 * symbolization may load a large debug file. */
		struct pending_native *pn = malloc(sizeof(*pn));

		if (!pn || grow_pending(c)) {
			free(pn);
			return -ENOMEM;
		}
		pn->id = st->id;
		pn->flags = st->flags;
		pn->python = depth > 0;
		pn->n = n;
		memcpy(pn->fr, fr, n * sizeof(*fr));
		memcpy(&pn->nat, nat, sizeof(*nat));
		c->pending[c->npending++] = pn;
		return 0;
	}
	f = model_stacks__add(ms, st->id, st->flags, fr, n);
	return f < 0 ? f : 0;
}

/* Finish the stacks whose native frames wait (add_stack_n). */
static void finish_native(struct collector *c)
{
	struct model_stacks *ms = c->m->stacks;

	for (size_t i = 0; i < c->npending; i++) {
		struct pending_native *pn = c->pending[i];
		uint32_t n = pn->n;
		int f;

		if (!pn->python && n == 1)
			n = 0; /* native frames instead of "[no Python frames]" */
		n += native_frames(c, &pn->nat, pn->python, pn->fr + n,
				   (uint32_t)(sizeof(pn->fr) / sizeof(pn->fr[0])) - n);
		if (!n && (f = mark_frame(ms, MS_NO_FRAMES)) >= 0)
			pn->fr[n++] = (uint32_t)f;
		model_stacks__add(ms, pn->id, pn->flags, pn->fr, n);
		free(pn);
	}
	c->npending = 0;
}

void collector__idle(struct collector *c)
{
	if (c->npending)
		finish_native(c);
}

/* The model's index of stack @id; ids never received become a mark:
 * 0 "[unknown]" (the wait began before tracing, or no stack could be
 * taken), others "[stack lost]" (the ring buffer was full). */
static int stack_index(struct collector *c, uint64_t id)
{
	struct model_stacks *ms = c->m->stacks;
	int i = model_stacks__find(ms, id), f;
	uint32_t fr;

	if (i >= 0)
		return i;
	f = mark_frame(ms, id ? MS_LOST : MS_UNKNOWN);
	if (f < 0)
		return f;
	fr = (uint32_t)f;
	return model_stacks__add(ms, id, 0, &fr, 1);
}

/*
 * --native: a hold's stack is the next wait's, whose native frames are the
 * C path that took the GIL, not the one that released it: holds get the
 * Python frames only (a variant of the stack, id with the top bit flipped).
 */
static int hold_variant(struct collector *c, int si)
{
	struct model_stacks *ms = c->m->stacks;
	const struct model_stack *st = &ms->stacks[si];
	uint32_t n = st->nframes, *fr;
	int v;

	if (!c->nu || !n || ms->frames[st->frames[n - 1]].kind != MF_NATIVE)
		return si;
	v = model_stacks__find(ms, model_stacks__variant_id(st->id));
	if (v >= 0)
		return v;
	while (n && ms->frames[st->frames[n - 1]].kind == MF_NATIVE)
		n--;
	fr = malloc((n + 1) * sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	memcpy(fr, st->frames, n * sizeof(*fr));
	if (!n) {
		int f = mark_frame(ms, MS_NO_FRAMES);

		if (f < 0) {
			free(fr);
			return f;
		}
		fr[n++] = (uint32_t)f;
	}
	/* stacks may move: st is not used after this */
	v = model_stacks__add(ms, model_stacks__variant_id(st->id), st->flags, fr, n);
	free(fr);
	return v;
}

static int weight_stack(struct collector *c, uint32_t kind, uint64_t id)
{
	int si = stack_index(c, id);

	return si >= 0 && kind == GT_W_HOLD ? hold_variant(c, si) : si;
}

static int read_weights(struct collector *c)
{
	struct giltrace_bpf *skel = probes__skel(c->p);
	struct model_stacks *ms = c->m->stacks;
	int fd = bpf_map__fd(skel->maps.stack_weights);
	struct gt_stack_key key, next, *prev = NULL;
	struct gt_stack_val v;
	int i, rc;

	ms->samples = skel->bss->g.samples;
	ms->samples_skipped = skel->bss->g.samples_skipped;
	ms->walks_interrupted = skel->bss->g.walks_interrupted;
	ms->weights_lost = skel->bss->g.stack_weights_lost;
	ms->stacks_lost = skel->bss->g.stacks_lost;
	model_stacks__clear_weights(ms);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		i = weight_stack(c, key.kind, key.stack_id);
		if (i < 0)
			return i;
		rc = model_stacks__add_weight(ms, key.tid, key.first_seen_ns,
					      key.kind, (uint32_t)i, v.count, v.ns);
		if (rc)
			return rc;
	}
	/* What the threads' accumulators hold (struct gt_thread acc_*). */
	for (size_t j = 0; j < c->m->nthreads; j++) {
		const struct gt_thread *k = &c->m->threads[j].k;

		for (uint32_t kind = GT_W_WAIT; kind <= GT_W_HOLD; kind++) {
			if (!(k->acc_used & (1u << kind)))
				continue;
			i = weight_stack(c, kind, k->acc_stack[kind]);
			if (i < 0)
				return i;
			rc = model_stacks__add_weight(ms, k->tid, k->first_seen_ns,
						      kind, (uint32_t)i,
						      k->acc_cnt[kind], k->acc_ns[kind]);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int collector__enable_stacks(struct collector *c, struct py_target *t,
			     const struct gt_py_frame_layout *l)
{
	c->sym = py_symbolize__new(t, l);
	if (!c->sym)
		return -errno;
	c->m->stacks = model_stacks__new();
	return c->m->stacks ? 0 : -ENOMEM;
}

int collector__enable_native(struct collector *c, int pid, char *err,
			     size_t errlen)
{
	char e[512] = "";

	c->nu = native_unwind__new(pid, e, sizeof(e));
	if (!c->nu) {
		snprintf(err, errlen, "giltrace: --native: %s", e[0] ? e : strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* The stack thread @t runs now, walked from userspace; 0 if unreadable. */
static uint64_t walk_now(struct collector *c, uint64_t tstate)
{
	uint64_t code[GT_STACK_MAX], pos[GT_STACK_MAX], h = GT_FNV_OFFSET;
	struct gt_stack *st;
	size_t n = 0;
	int r;

	if (!tstate)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return 0;
	r = py_symbolize__walk(c->sym, tstate, code, pos, GT_STACK_MAX, &n);
	st->flags = r == 1 ? GT_STK_TRUNCATED : r < 0 ? GT_STK_UNREADABLE : 0;
	for (size_t i = 0; i < n; i++) {
		st->frames[i].code = code[i];
		st->frames[i].pos = pos[i];
		h = gt_hash_frame(h, code[i], pos[i]);
	}
	st->depth = (uint32_t)n;
	st->id = gt_hash_end(h, st->flags, st->depth);
	h = add_stack(c, st) ? 0 : st->id;
	free(st);
	return h;
}

void collector__close_stacks(struct collector *c)
{
	struct model_stacks *ms = c->m->stacks;

	if (!ms)
		return;
	for (size_t i = 0; i < c->m->nthreads; i++) {
		struct model_thread *t = &c->m->threads[i];
		const struct gt_thread *k = &t->k;
		uint64_t hold, id;
		int si;

		if (t->open_wait_ns && (si = stack_index(c, k->wait_stack)) >= 0)
			model_stacks__add_weight(ms, k->tid, k->first_seen_ns,
						 GT_W_WAIT, (uint32_t)si, 0,
						 t->open_wait_ns);
		if (k->pending_hold_ns && !t->exited) {
			/* Released, and no take_gil since: the thread runs no
			 * Python code, its stack is still the release's. */
			id = c->m->target_exited ? 0 :
			     walk_now(c, k->pending_tstate ? k->pending_tstate : k->tstate);
			si = weight_stack(c, GT_W_HOLD, id);
			if (si >= 0)
				model_stacks__add_weight(ms, k->tid, k->first_seen_ns,
							 GT_W_HOLD, (uint32_t)si, 1,
							 k->pending_hold_ns);
			if (c->w && id) {
				struct gt_rec_hold_stack r = {
					.type = GT_REC_HOLD_STACK, .tid = k->tid,
					.release_ns = k->pending_release_ns,
					.stack = id,
				};

				if (trace_writer__record(c->w, &r, sizeof(r)))
					c->write_errors++;
			}
		}
		if (!t->open_hold_ns)
			continue;
		/* What samples did not attribute of the open hold. */
		hold = c->m->t_end_ns > k->since_ns ? c->m->t_end_ns - k->since_ns : 0;
		if (hold <= k->sampled_ns)
			continue;
		id = k->sample_stack;
		if (!id && !c->m->target_exited)
			id = walk_now(c, k->tstate);
		si = weight_stack(c, GT_W_HOLD, id);
		if (si >= 0)
			model_stacks__add_weight(ms, k->tid, k->first_seen_ns,
						 GT_W_HOLD, (uint32_t)si, 0,
						 hold - k->sampled_ns);
	}
}

static void put_exited(struct collector *c, const struct gt_thread *k)
{
	model__put_thread(c->m, k, true);
	if (k->exit_ns > c->last_exit_ns)
		c->last_exit_ns = k->exit_ns;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct collector *c = ctx;
	const struct gt_rec_thread_exit *r = data;

	if (size < sizeof(r->type))
		return 0;
	switch (r->type) {
	case GT_REC_THREAD_EXIT:
		if (size >= sizeof(*r))
			put_exited(c, &r->thread);
		break;
	case GT_REC_STACK:
		if (c->sym && size >= sizeof(struct gt_rec_stack))
			add_stack(c, &((const struct gt_rec_stack *)data)->s);
		break;
	case GT_REC_STACK_NATIVE:
		if (c->sym && size >= sizeof(struct gt_rec_stack_native)) {
			const struct gt_rec_stack_native *r = data;

			add_stack_n(c, &r->s, &r->n);
		}
		break;
	case GT_REC_HOLD_STACK:
		if (c->w && trace_writer__record(c->w, data, size))
			c->write_errors++;
		break;
	case GT_REC_CYCLE:
	case GT_REC_ABANDONED:
	case GT_REC_LOST:
		c->records++;
		if (c->w && trace_writer__record(c->w, data, size))
			c->write_errors++;
		break;
	default:
		break;
	}
	return 0;
}

struct collector *collector__new(struct probes *p, struct model *m)
{
	struct collector *c = calloc(1, sizeof(*c));
	struct giltrace_bpf *skel = probes__skel(p);

	if (!c)
		return NULL;
	c->p = p;
	c->m = m;
	c->buf = malloc(sizeof(*c->buf));
	c->rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, c,
				 NULL);
	if (!c->buf || !c->rb) {
		collector__free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

void collector__free(struct collector *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	py_symbolize__free(c->sym);
	for (size_t i = 0; i < c->npending; i++)
		free(c->pending[i]);
	free(c->pending);
	native_unwind__free(c->nu);
	free(c->buf);
	free(c);
}

int collector__fd(const struct collector *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int collector__consume(struct collector *c)
{
	return ring_buffer__consume(c->rb);
}

static void refresh_name(struct collector *c, struct model_thread *t)
{
	char path[64], name[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%u/comm", c->m->pid,
		 t->k.tid);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(name, sizeof(name), f)) {
		name[strcspn(name, "\n")] = '\0';
		if (name[0])
			snprintf(t->name, sizeof(t->name), "%s", name);
	}
	fclose(f);
}

int collector__snapshot(struct collector *c)
{
	struct giltrace_bpf *skel = probes__skel(c->p);
	int fd = bpf_map__fd(skel->maps.threads);
	uint32_t key, next, *prev = NULL;
	const struct gt_globals *g = &skel->bss->g;

	collector__consume(c);
	c->m->acquisitions = g->acquisitions;
	c->m->holder_switches = g->holder_switches;
	c->m->dropped_events = g->dropped_events;
	c->m->exits_deferred = g->exits_deferred;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, c->buf))
			continue; /* exited and deleted meanwhile */
		if (c->buf->state == GT_EXITED) {
			put_exited(c, c->buf);
			bpf_map_delete_elem(fd, &key);
			prev = NULL; /* restart: the iteration lost its place */
			continue;
		}
		struct model_thread *t = model__put_thread(c->m, c->buf, false);
		if (!t)
			return -ENOMEM;
		refresh_name(c, t);
	}
	return 0;
}

int collector__read_stacks(struct collector *c)
{
	collector__consume(c);
	collector__idle(c);
	return c->m->stacks ? read_weights(c) : 0;
}

void collector__set_writer(struct collector *c, struct trace_writer *w)
{
	c->w = w;
}

uint64_t collector__write_errors(const struct collector *c)
{
	return c->write_errors;
}

uint64_t collector__records(const struct collector *c)
{
	return c->records;
}

uint64_t collector__last_exit_ns(const struct collector *c)
{
	return c->last_exit_ns;
}

int collector__seed_holder(struct collector *c, uint32_t tid, uint64_t t0_ns)
{
	struct giltrace_bpf *skel = probes__skel(c->p);
	struct model_thread *t;

	if (skel->bss->g.last_release_ns)
		return 0; /* someone released: the probes saw the holder */
	for (size_t i = 0; i < c->m->nthreads; i++)
		if (c->m->threads[i].k.tid == tid && !c->m->threads[i].exited)
			return 0;
	memset(c->buf, 0, sizeof(*c->buf));
	c->buf->tid = tid;
	c->buf->state = GT_HOLDING;
	c->buf->since_ns = t0_ns;
	c->buf->first_seen_ns = t0_ns;
	c->buf->acquisitions = 1;
	t = model__put_thread(c->m, c->buf, false);
	if (!t)
		return -ENOMEM;
	refresh_name(c, t);
	c->m->acquisitions++;
	return 0;
}

int collector__resolve_holder(struct collector *c, uint32_t tid)
{
	struct giltrace_bpf *skel = probes__skel(c->p);
	uint64_t last = skel->bss->g.last_release_ns, acq, w;

	for (size_t i = 0; i < c->m->nthreads; i++) {
		struct model_thread *t = &c->m->threads[i];

		if (t->k.tid != tid || t->exited || t->k.state != GT_WAITING)
			continue;
		/* The same rule as drop_enter in giltrace.bpf.c. */
		acq = t->k.woke_ns ? t->k.woke_ns :
		      (last > t->k.since_ns ? last : t->k.since_ns);
		w = acq - t->k.since_ns;
		t->k.wait.count++;
		t->k.wait.sum_ns += w;
		if (w > t->k.wait.max_ns)
			t->k.wait.max_ns = w;
		t->k.wait.buckets[gt_bucket(w)]++;
		t->k.acquisitions++;
		c->m->acquisitions++;
		if (skel->bss->g.last_holder_tid &&
		    skel->bss->g.last_holder_tid != tid)
			c->m->holder_switches++;
		t->k.state = GT_HOLDING;
		t->k.since_ns = acq;
		if (c->m->stacks) {
			int si = stack_index(c, t->k.wait_stack);

			if (si >= 0)
				model_stacks__add_weight(c->m->stacks, tid,
							 t->k.first_seen_ns,
							 GT_W_WAIT, (uint32_t)si,
							 1, w);
		}
		return 1;
	}
	return 0;
}

/* ---- --mode contention ------------------------------------------------- */

static int by_waiter_then_ns(const void *a, const void *b)
{
	const struct tl_blocked *x = a, *y = b;

	if (x->waiter != y->waiter)
		return x->waiter < y->waiter ? -1 : 1;
	if (x->wait_ns != y->wait_ns)
		return x->wait_ns > y->wait_ns ? -1 : 1;
	return x->holder < y->holder ? -1 : x->holder > y->holder;
}

int collector__contention(struct collector *c, uint32_t hz, struct timeline *tl)
{
	struct giltrace_bpf *skel = probes__skel(c->p);
	int fd = bpf_map__fd(skel->maps.blocked_by);
	struct gt_blocked_key key, next, *prev = NULL;
	struct gt_blocked_val v;
	size_t cap = 0;

	memset(tl, 0, sizeof(*tl));
	tl->t0 = c->m->t0_ns;
	tl->t_end = c->m->t_end_ns;
	model__estimate_holds(c->m, hz);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		if (tl->nblocked == cap) {
			size_t n = cap ? 2 * cap : 64;
			struct tl_blocked *b = realloc(tl->blocked, n * sizeof(*b));

			if (!b)
				return -ENOMEM;
			tl->blocked = b;
			cap = n;
		}
		tl->blocked[tl->nblocked++] = (struct tl_blocked){
			.waiter = key.waiter, .holder = key.holder,
			.wait_ns = v.ns, .count = v.count,
		};
	}
	if (tl->nblocked)
		qsort(tl->blocked, tl->nblocked, sizeof(*tl->blocked),
		      by_waiter_then_ns);
	return 0;
}
