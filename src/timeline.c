// SPDX-License-Identifier: MIT
/*
 * timeline.c - the event-level trace model (timeline.h), built from the
 * records of a trace file and the closed aggregate model of the same trace.
 *
 * Sums agree with the aggregate model (model.c) because both count the
 * same intervals (bpf/giltrace.bpf.c):
 *   - a GT_REC_CYCLE is sent once per cycle at release; its wait
 *     (wait_begin..held) and hold (held..release) are the values the
 *     kernel added to the thread's wait and hold distributions;
 *   - a wait or hold still open when tracing ended is counted by
 *     model__close() from the thread's state (since_ns .. t_end), only for
 *     threads that did not exit: the same open cycles are added here;
 *   - a GT_REC_ABANDONED wait (the thread exited inside take_gil) is kept
 *     as a cycle flagged TL_ABANDONED so views can draw it, but, like the
 *     aggregate model (waits_abandoned), it is not in wait_ns nor in
 *     blocked_by.
 * They differ only when records were lost (GT_REC_LOST, shown as lost
 * spans), or when the kernel counted a hold it sent no record for (a
 * take_gil entry while holding: the thread's `inconsistent` counter).
 *
 * Who blocked whom: every wait [wait_begin, held) is split by overlap with
 * the holds [held, release) of other threads. Holds are first flattened
 * into disjoint segments in time order (should two overlap, which the GIL
 * forbids but a missed probe can produce, the earlier holder keeps the
 * GIL until its release), then each wait finds its first segment by binary
 * search: O(n log n) plus the overlaps themselves. What no other thread
 * covered goes to holder 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "timeline.h"
#include "model_stacks.h"
#include "oa_index.h"
#include "trace_file.h"

#define DEFAULT_MAX_CYCLES 4000000
/* Threads seen only in records (not in the model), kept at most. */
#define MAX_EXTRA_THREADS 65536

struct hold {
	uint64_t held, release;
	uint32_t tid;
};

/* (waiter, holder) -> entry of tl->blocked; open addressing. */
struct pair_map {
	struct oa_index idx; /* tl->blocked's entries by (waiter, holder) */
	uint64_t *stamp;  /* per entry: last wait counted, plus 1 */
};

/* A model thread, for finding the one a record belongs to. */
struct tkey {
	uint32_t tid;
	uint64_t first_seen;
	size_t idx;
};

struct builder {
	struct timeline *tl;
	const struct model *m;
	size_t tcap;          /* capacity of tl->threads */
	size_t *ccap;         /* per thread: capacity of its cycles */
	struct tkey *keys;    /* model threads by (tid, first_seen) */
	/* TIDs seen only in records: tid -> thread (open addressing) */
	uint32_t *xkeys;
	long *xidx;
	size_t xcap, xn;
	size_t stored;
	size_t lcap;
	uint32_t last_tid;    /* holder switches in file order */
	uint64_t stream_switches;
	struct gt_rec_hold_stack *hs; /* --stacks: last holds' stacks */
	size_t nhs, hscap;
};

/* ---- threads ------------------------------------------------------------ */

/* Append a thread; returns its index or -ENOMEM. */
static long add_thread(struct builder *b, uint32_t tid, const char *name)
{
	struct timeline *tl = b->tl;
	size_t i = tl->nthreads;

	if (i == b->tcap) {
		size_t nc = b->tcap ? b->tcap * 2 : 16;
		struct tl_thread *t = realloc(tl->threads, nc * sizeof(*t));
		size_t *cc;

		if (!t)
			return -ENOMEM;
		tl->threads = t;
		cc = realloc(b->ccap, nc * sizeof(*cc));
		if (!cc)
			return -ENOMEM;
		b->ccap = cc;
		b->tcap = nc;
	}
	memset(&tl->threads[i], 0, sizeof(tl->threads[i]));
	tl->threads[i].tid = tid;
	snprintf(tl->threads[i].name, sizeof(tl->threads[i].name), "%s", name);
	b->ccap[i] = 0;
	tl->nthreads++;
	return (long)i;
}

static int cmp_tkey(const void *pa, const void *pb)
{
	const struct tkey *a = pa, *b = pb;

	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->first_seen != b->first_seen)
		return a->first_seen < b->first_seen ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* One lane per model thread, in the model's order. */
static int add_model_threads(struct builder *b)
{
	const struct model *m = b->m;

	b->keys = malloc((m->nthreads ? m->nthreads : 1) * sizeof(*b->keys));
	if (!b->keys)
		return -ENOMEM;
	for (size_t i = 0; i < m->nthreads; i++) {
		long ti = add_thread(b, m->threads[i].k.tid, m->threads[i].name);

		if (ti < 0)
			return (int)ti;
		b->keys[i] = (struct tkey){ m->threads[i].k.tid,
					    m->threads[i].k.first_seen_ns, i };
	}
	qsort(b->keys, m->nthreads, sizeof(*b->keys), cmp_tkey);
	return 0;
}

/* First key with tid >= @tid. */
static size_t key_lower(const struct builder *b, uint32_t tid)
{
	size_t lo = 0, hi = b->m->nthreads;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->keys[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First key after (@tid, @at). */
static size_t key_upper(const struct builder *b, uint32_t tid, uint64_t at)
{
	size_t lo = 0, hi = b->m->nthreads;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct tkey *k = &b->keys[mid];

		if (k->tid < tid || (k->tid == tid && k->first_seen <= at))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t xslot(const struct builder *b, uint32_t tid)
{
	size_t h = (size_t)(tid * 2654435761u) & (b->xcap - 1);

	while (b->xidx[h] >= 0 && b->xkeys[h] != tid)
		h = (h + 1) & (b->xcap - 1);
	return h;
}

static int xgrow(struct builder *b)
{
	size_t oc = b->xcap, nc = oc ? oc * 2 : 64;
	uint32_t *ok = b->xkeys;
	long *oi = b->xidx;

	b->xkeys = calloc(nc, sizeof(*b->xkeys));
	b->xidx = malloc(nc * sizeof(*b->xidx));
	if (!b->xkeys || !b->xidx) {
		free(b->xkeys);
		free(b->xidx);
		b->xkeys = ok;
		b->xidx = oi;
		return -ENOMEM;
	}
	for (size_t i = 0; i < nc; i++)
		b->xidx[i] = -1;
	b->xcap = nc;
	for (size_t i = 0; i < oc; i++) {
		if (oi[i] >= 0) {
			size_t h = xslot(b, ok[i]);

			b->xkeys[h] = ok[i];
			b->xidx[h] = oi[i];
		}
	}
	free(ok);
	free(oi);
	return 0;
}

/*
 * The thread a record of @tid released at @at belongs to. A TID can be
 * reused: of the model's threads with this TID, the one seen last at or
 * before @at (first_seen_ns is the thread's first probe hit, never after
 * its first release), else the earliest. A TID the model does not know
 * gets a lane of its own. Returns the index, -ENOSPC past
 * MAX_EXTRA_THREADS, or -ENOMEM.
 */
static long find_thread(struct builder *b, uint32_t tid, uint64_t at)
{
	size_t lo = key_lower(b, tid), hi = key_upper(b, tid, at), h;
	long ti;

	if (hi > lo)
		return (long)b->keys[hi - 1].idx;
	if (lo < b->m->nthreads && b->keys[lo].tid == tid)
		return (long)b->keys[lo].idx;
	if (b->xcap) {
		h = xslot(b, tid);
		if (b->xidx[h] >= 0)
			return b->xidx[h];
	}
	if (b->xn >= MAX_EXTRA_THREADS)
		return -ENOSPC;
	if ((b->xn + 1) * 2 > b->xcap && xgrow(b))
		return -ENOMEM;
	ti = add_thread(b, tid, "");
	if (ti < 0)
		return ti;
	h = xslot(b, tid);
	b->xkeys[h] = tid;
	b->xidx[h] = ti;
	b->xn++;
	return ti;
}

/* ---- cycles ------------------------------------------------------------- */

/* Count @c in @t's sums; keep it while under max_cycles. */
static int add_cycle(struct builder *b, size_t ti, const struct tl_cycle *c)
{
	struct timeline *tl = b->tl;
	struct tl_thread *t = &tl->threads[ti];

	if (!(c->flags & TL_ABANDONED)) {
		t->wait_ns += c->held - c->wait_begin;
		t->hold_ns += c->release - c->held;
	}
	if (b->stored >= tl->max_cycles) {
		tl->truncated = true;
		return 0;
	}
	if (t->ncycles == b->ccap[ti]) {
		size_t room = tl->max_cycles - b->stored;
		size_t nc = b->ccap[ti] ? b->ccap[ti] * 2 : 16;
		struct tl_cycle *v;

		if (nc - b->ccap[ti] > room)
			nc = b->ccap[ti] + room;
		v = realloc(t->cycles, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->cycles = v;
		b->ccap[ti] = nc;
	}
	t->cycles[t->ncycles++] = *c;
	b->stored++;
	return 0;
}

static int on_cycle(struct builder *b, const struct gt_rec_cycle *r)
{
	struct tl_cycle c = {
		.wait_begin = r->wait_begin_ns,
		.held = r->held_ns,
		.release = r->release_ns,
		.cpu = r->cpu,
		.wait_stack = r->wait_stack,
		.hold_stack = r->hold_stack,
		.flags = r->flags & ~(uint32_t)(TL_OPEN_HOLD | TL_OPEN_WAIT |
						 TL_ABANDONED),
	};
	long ti;

	/* The kernel reads its clock before the last release by another
	 * CPU and may see held > release by a few ns; its hold is then 0
	 * (giltrace.bpf.c, drop_enter). */
	if (c.release < c.held)
		c.release = c.held;
	if (c.wait_begin > c.held)
		c.wait_begin = c.held;
	if (r->type == GT_REC_ABANDONED) {
		c.flags |= TL_ABANDONED;
		c.held = c.release; /* no hold: the wait ends at the exit */
	}
	ti = find_thread(b, r->tid, c.release);
	if (ti == -ENOSPC)
		return 0; /* more unknown TIDs than any process has */
	if (ti < 0)
		return (int)ti;
	if (r->type == GT_REC_CYCLE) {
		if (b->last_tid && b->last_tid != r->tid)
			b->stream_switches++;
		b->last_tid = r->tid;
	}
	return add_cycle(b, (size_t)ti, &c);
}

/* Kept until the cycles are sorted (apply_hold_stacks). */
static int on_hold_stack(struct builder *b, const struct gt_rec_hold_stack *r)
{
	if (b->nhs == b->hscap) {
		size_t nc = b->hscap ? b->hscap * 2 : 16;
		struct gt_rec_hold_stack *v = realloc(b->hs, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		b->hs = v;
		b->hscap = nc;
	}
	b->hs[b->nhs++] = *r;
	return 0;
}

/* The cycle of thread @t released at @release, or NULL. */
static struct tl_cycle *cycle_released_at(struct tl_thread *t, uint64_t release)
{
	size_t lo = 0, hi = t->ncycles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->cycles[mid].release < release)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->ncycles && t->cycles[lo].release == release ? &t->cycles[lo] : NULL;
}

static void apply_hold_stacks(struct builder *b)
{
	struct timeline *tl = b->tl;

	for (size_t i = 0; i < b->nhs; i++)
		for (size_t j = 0; j < tl->nthreads; j++) {
			struct tl_cycle *c;

			if (tl->threads[j].tid != b->hs[i].tid)
				continue;
			c = cycle_released_at(&tl->threads[j], b->hs[i].release_ns);
			if (c && !c->hold_stack)
				c->hold_stack = b->hs[i].stack;
		}
}

static int on_lost(struct builder *b, const struct gt_rec_lost *r)
{
	struct timeline *tl = b->tl;
	uint64_t lo = r->first_ns < r->last_ns ? r->first_ns : r->last_ns;
	uint64_t hi = r->first_ns < r->last_ns ? r->last_ns : r->first_ns;

	tl->lost_records += r->count;
	if (tl->nlost == tl->max_cycles && tl->nlost) {
		/* Bounded too: widen the last span. */
		struct tl_span *s = &tl->lost[tl->nlost - 1];

		s->begin = lo < s->begin ? lo : s->begin;
		s->end = hi > s->end ? hi : s->end;
		s->count += r->count;
		return 0;
	}
	if (tl->nlost == b->lcap) {
		size_t nc = b->lcap ? b->lcap * 2 : 8;
		struct tl_span *v;

		if (nc > tl->max_cycles)
			nc = tl->max_cycles;
		v = realloc(tl->lost, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		tl->lost = v;
		b->lcap = nc;
	}
	tl->lost[tl->nlost++] = (struct tl_span){ lo, hi, r->count };
	return 0;
}

static int on_record(const void *rec, size_t size, void *ctx)
{
	struct builder *b = ctx;
	uint32_t type;

	if (size < sizeof(type))
		return 0;
	memcpy(&type, rec, sizeof(type));
	switch (type) {
	case GT_REC_CYCLE:
	case GT_REC_ABANDONED:
		if (size != sizeof(struct gt_rec_cycle))
			return 0;
		return on_cycle(b, rec);
	case GT_REC_LOST:
		if (size != sizeof(struct gt_rec_lost))
			return 0;
		return on_lost(b, rec);
	case GT_REC_HOLD_STACK:
		if (size != sizeof(struct gt_rec_hold_stack))
			return 0;
		return on_hold_stack(b, rec);
	default:
		return 0;
	}
}

/*
 * Intervals still open at the end, as model__close() counts them: only for
 * threads that did not exit; a hold runs to t_end (its wait, already in
 * the kernel's figures, from wait_begin_ns), a wait from since_ns to t_end.
 */
static int add_open(struct builder *b)
{
	const struct model *m = b->m;

	for (size_t i = 0; i < m->nthreads; i++) {
		const struct gt_thread *k = &m->threads[i].k;
		uint64_t t_end = m->t_end_ns;
		struct tl_cycle c = { .flags = k->cyc_flags };
		int rc;

		if (m->threads[i].exited)
			continue;
		if (k->state == GT_HOLDING) {
			c.held = k->since_ns;
			c.wait_begin = k->wait_begin_ns &&
				       k->wait_begin_ns <= k->since_ns ?
				       k->wait_begin_ns : k->since_ns;
			c.release = t_end > k->since_ns ? t_end : k->since_ns;
			c.flags |= TL_OPEN_HOLD;
			if (c.release == c.held && c.wait_begin == c.held)
				continue;
		} else if (k->state == GT_WAITING && t_end > k->since_ns) {
			c.wait_begin = k->since_ns;
			c.held = c.release = t_end;
			c.flags |= TL_OPEN_WAIT;
		} else {
			continue;
		}
		rc = add_cycle(b, i, &c);
		if (rc)
			return rc;
		if (k->state == GT_HOLDING) {
			if (b->last_tid && b->last_tid != k->tid)
				b->stream_switches++;
			b->last_tid = k->tid;
		}
	}
	return 0;
}

static int cmp_cycle(const void *pa, const void *pb)
{
	const struct tl_cycle *a = pa, *b = pb;

	if (a->held != b->held)
		return a->held < b->held ? -1 : 1;
	if (a->wait_begin != b->wait_begin)
		return a->wait_begin < b->wait_begin ? -1 : 1;
	if (a->release != b->release)
		return a->release < b->release ? -1 : 1;
	return 0;
}

static int cmp_hold(const void *pa, const void *pb)
{
	const struct hold *a = pa, *b = pb;

	if (a->held != b->held)
		return a->held < b->held ? -1 : 1;
	if (a->release != b->release)
		return a->release < b->release ? -1 : 1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

static int cmp_span(const void *pa, const void *pb)
{
	const struct tl_span *a = pa, *b = pb;

	if (a->begin != b->begin)
		return a->begin < b->begin ? -1 : 1;
	return a->end < b->end ? -1 : a->end > b->end;
}

static int cmp_blocked(const void *pa, const void *pb)
{
	const struct tl_blocked *a = pa, *b = pb;

	if (a->waiter != b->waiter)
		return a->waiter < b->waiter ? -1 : 1;
	if (a->wait_ns != b->wait_ns)
		return a->wait_ns > b->wait_ns ? -1 : 1;
	return a->holder < b->holder ? -1 : a->holder > b->holder;
}

/* Every hold (also of length 0: still an acquisition), sorted by held. */
static int collect_holds(const struct timeline *tl, struct hold **out,
			 size_t *n)
{
	size_t total = 0, k = 0;
	struct hold *h;

	for (size_t i = 0; i < tl->nthreads; i++)
		total += tl->threads[i].ncycles;
	h = malloc((total ? total : 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++) {
			const struct tl_cycle *c = &t->cycles[j];

			if (c->flags & (TL_ABANDONED | TL_OPEN_WAIT))
				continue;
			h[k++] = (struct hold){ c->held, c->release, t->tid };
		}
	}
	qsort(h, k, sizeof(*h), cmp_hold);
	*out = h;
	*n = k;
	return 0;
}

/* Holds made disjoint, in place: returns the number of segments. */
static size_t flatten(struct hold *h, size_t n)
{
	uint64_t cursor = 0;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t s = h[i].held > cursor ? h[i].held : cursor;

		if (h[i].release <= s)
			continue;
		h[k] = (struct hold){ s, h[i].release, h[i].tid };
		cursor = h[k].release;
		k++;
	}
	return k;
}

/* ---- who blocked whom --------------------------------------------------- */

static void pm_free(struct pair_map *pm)
{
	oa_free(&pm->idx);
	free(pm->stamp);
}

static uint64_t pair_hash(uint32_t waiter, uint32_t holder)
{
	return oa_mix(oa_mix(0, waiter), holder);
}

static uint64_t pm_hash(const void *tl, size_t e)
{
	const struct tl_blocked *b = &((const struct timeline *)tl)->blocked[e];

	return pair_hash(b->waiter, b->holder);
}

static bool pm_is(const void *tl, size_t e, const void *key)
{
	const struct tl_blocked *b = &((const struct timeline *)tl)->blocked[e];
	const struct tl_blocked *k = key;

	return b->waiter == k->waiter && b->holder == k->holder;
}

static const struct oa_ops pm_ops = { pm_hash, pm_is, NULL };

/* Add @ns of @waiter's wait number @seq behind @holder. */
static int blame(struct timeline *tl, struct pair_map *pm, size_t *bcap,
		 uint32_t waiter, uint32_t holder, uint64_t ns, uint64_t seq)
{
	struct tl_blocked k = { .waiter = waiter, .holder = holder }, *e;
	size_t j, i;

	if (oa_reserve(&pm->idx, tl->nblocked, &pm_ops, tl))
		return -ENOMEM;
	j = oa_probe(&pm->idx, pair_hash(waiter, holder), &pm_ops, tl, &k);
	i = oa_entry(&pm->idx, j);
	if (i == OA_NONE) {
		if (tl->nblocked == *bcap) {
			size_t nc = *bcap ? *bcap * 2 : 16;
			struct tl_blocked *v = realloc(tl->blocked, nc * sizeof(*v));
			uint64_t *st = realloc(pm->stamp, nc * sizeof(*st));

			if (v)
				tl->blocked = v;
			if (st)
				pm->stamp = st;
			if (!v || !st)
				return -ENOMEM;
			*bcap = nc;
		}
		i = tl->nblocked++;
		oa_set(&pm->idx, j, i);
		pm->stamp[i] = 0;
		tl->blocked[i] = k;
	}
	e = &tl->blocked[i];
	e->wait_ns += ns;
	if (pm->stamp[i] != seq + 1) {
		pm->stamp[i] = seq + 1;
		e->count++;
	}
	return 0;
}

/* First segment whose end is after @at (segments are disjoint, so their
 * ends are sorted too). */
static size_t first_seg(const struct hold *seg, size_t n, uint64_t at)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (seg[mid].release > at)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int split_wait(struct timeline *tl, struct pair_map *pm, size_t *bcap,
		      const struct hold *seg, size_t nseg, uint32_t waiter,
		      uint64_t a, uint64_t b, uint64_t seq)
{
	uint64_t c = a;
	int rc;

	for (size_t i = first_seg(seg, nseg, a); i < nseg && seg[i].held < b;
	     i++) {
		uint64_t s, e;

		if (seg[i].tid == waiter)
			continue; /* its own hold: nobody else held it */
		s = seg[i].held > c ? seg[i].held : c;
		e = seg[i].release < b ? seg[i].release : b;
		if (e <= s)
			continue;
		if (s > c && (rc = blame(tl, pm, bcap, waiter, 0, s - c, seq)))
			return rc;
		rc = blame(tl, pm, bcap, waiter, seg[i].tid, e - s, seq);
		if (rc)
			return rc;
		c = e;
	}
	if (c < b)
		return blame(tl, pm, bcap, waiter, 0, b - c, seq);
	return 0;
}

static int blocked_by(struct timeline *tl, const struct hold *seg,
		      size_t nseg)
{
	struct pair_map pm = { 0 };
	size_t bcap = 0;
	uint64_t seq = 0;
	int rc = 0;

	for (size_t i = 0; i < tl->nthreads && !rc; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles && !rc; j++) {
			const struct tl_cycle *c = &t->cycles[j];

			if ((c->flags & TL_ABANDONED) || c->held <= c->wait_begin)
				continue;
			rc = split_wait(tl, &pm, &bcap, seg, nseg, t->tid,
					c->wait_begin, c->held, seq++);
		}
	}
	pm_free(&pm);
	if (!rc && tl->nblocked)
		qsort(tl->blocked, tl->nblocked, sizeof(*tl->blocked),
		      cmp_blocked);
	return rc;
}

/* Sort, recount switches, split waits. */
static int analyse(struct builder *b)
{
	struct timeline *tl = b->tl;
	struct hold *h;
	size_t n;
	int rc;

	for (size_t i = 0; i < tl->nthreads; i++) {
		struct tl_thread *t = &tl->threads[i];

		if (t->ncycles > 1)
			qsort(t->cycles, t->ncycles, sizeof(struct tl_cycle),
			      cmp_cycle);
		/* --stacks: a hold's stack is taken at the thread's next
		 * take_gil entry, as that cycle's wait stack (giltrace.h). */
		for (size_t j = 0; j + 1 < t->ncycles; j++)
			if (!t->cycles[j].hold_stack)
				t->cycles[j].hold_stack =
					model_stacks__hold_id(b->m ? b->m->stacks : NULL,
							      t->cycles[j + 1].wait_stack);
	}
	apply_hold_stacks(b);
	if (tl->nlost > 1)
		qsort(tl->lost, tl->nlost, sizeof(*tl->lost), cmp_span);
	rc = collect_holds(tl, &h, &n);
	if (rc)
		return rc;
	tl->holder_switches = 0;
	for (size_t i = 1; i < n; i++)
		if (h[i].tid != h[i - 1].tid)
			tl->holder_switches++;
	/* Beyond the cycles kept, only the file order is known. */
	if (tl->truncated)
		tl->holder_switches = b->stream_switches;
	n = flatten(h, n);
	rc = blocked_by(tl, h, n);
	free(h);
	return rc;
}

/* ---- interface ---------------------------------------------------------- */

static void builder_free(struct builder *b)
{
	free(b->ccap);
	free(b->keys);
	free(b->xkeys);
	free(b->xidx);
	free(b->hs);
}

int timeline__build(struct timeline *tl, struct trace_reader *r,
		    const struct model *m, size_t max_cycles, char *err,
		    size_t errlen)
{
	struct builder b = { .tl = tl, .m = m };
	int rc = 0;

	memset(tl, 0, sizeof(*tl));
	tl->t0 = m->t0_ns;
	tl->t_end = m->t_end_ns;
	tl->max_cycles = max_cycles ? max_cycles : DEFAULT_MAX_CYCLES;
	if (errlen)
		err[0] = '\0';
	rc = add_model_threads(&b);
	if (!rc) {
		rc = trace_reader__foreach(r, on_record, &b, err, errlen);
		if (rc > 0)
			rc = -EIO;
	}
	if (!rc)
		rc = add_open(&b);
	if (!rc)
		rc = analyse(&b);
	builder_free(&b);
	if (rc) {
		if (errlen && !err[0])
			snprintf(err, errlen, "giltrace: out of memory building "
				 "the timeline");
		timeline__free(tl);
	}
	return rc;
}

void timeline__free(struct timeline *tl)
{
	for (size_t i = 0; i < tl->nthreads; i++)
		free(tl->threads[i].cycles);
	free(tl->threads);
	free(tl->blocked);
	free(tl->lost);
	memset(tl, 0, sizeof(*tl));
}

int timeline__waiting_at(const struct timeline *tl, uint64_t ts)
{
	int n = 0;

	for (size_t i = 0; i < tl->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];

		for (size_t j = 0; j < t->ncycles; j++) {
			if (t->cycles[j].wait_begin <= ts && ts < t->cycles[j].held) {
				n++;
				break;
			}
		}
	}
	return n;
}
