// SPDX-License-Identifier: MIT
/*
 * test_timeline.c - unit tests of the event-level model (src/timeline.c):
 * traces written with the trace writer from hand-made GIL schedules, with
 * the aggregate model built as the kernel builds it (bpf/giltrace.bpf.c:
 * a wait is counted at acquisition, a hold at release, open intervals by
 * model__close). Checks who-blocked-whom exactly, sums against the model,
 * holder switches, lost spans, open intervals, abandoned waits, TID reuse
 * and truncation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "model.h"
#include "timeline.h"
#include "trace_file.h"
#include "unit_helpers.h"

#define T0 1000000ULL
#define A 100
#define B 200

static uint64_t rng_state = 0xD1B54A32D192ED03ULL;

static uint64_t rng_next(void)
{
	/* splitmix64: fixed seed, same schedules on every run */
	return splitmix64(&rng_state);
}

/* ---- a trace under construction --------------------------------------- */

#define MAXREC 20000
#define MAXTHR 16

struct trace {
	struct model m;
	struct gt_thread k[MAXTHR];
	bool exited[MAXTHR];
	char name[MAXTHR][64];
	int nk;
	/* records in file order */
	union {
		struct gt_rec_cycle c;
		struct gt_rec_lost l;
	} rec[MAXREC];
	int nrec;
	uint32_t last_holder;
	uint64_t switches;
};

static struct trace *trace_new(void)
{
	struct trace *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	model__init(&t->m);
	t->m.t0_ns = T0;
	return t;
}

static int thread(struct trace *t, uint32_t tid, uint64_t first_seen,
		  const char *name)
{
	int i = t->nk++;

	assert_true(i < MAXTHR);
	t->k[i].tid = tid;
	t->k[i].state = GT_RUNNING;
	t->k[i].first_seen_ns = first_seen;
	snprintf(t->k[i].comm, sizeof(t->k[i].comm), "%.15s", name);
	snprintf(t->name[i], sizeof(t->name[i]), "%s", name);
	return i;
}

/* What the kernel does for one whole cycle (times relative to T0). */
static void cycle(struct trace *t, int i, uint64_t wb, uint64_t held,
		  uint64_t rel, uint32_t flags)
{
	struct gt_thread *k = &t->k[i];
	struct gt_rec_cycle *c = &t->rec[t->nrec++].c;

	assert_true(t->nrec <= MAXREC);
	if (!(flags & GT_CYC_AT_START))
		dist_add(&k->wait, held - wb);
	dist_add(&k->hold, rel - held);
	k->acquisitions++;
	t->m.acquisitions++;
	if (t->last_holder && t->last_holder != k->tid)
		t->switches++;
	t->last_holder = k->tid;
	*c = (struct gt_rec_cycle){ .type = GT_REC_CYCLE, .tid = k->tid,
				    .wait_begin_ns = T0 + wb, .held_ns = T0 + held,
				    .release_ns = T0 + rel, .cpu = 1,
				    .flags = flags };
}

/* The thread took the GIL at @held after waiting since @wb and still holds
 * it when tracing ends. */
static void open_hold(struct trace *t, int i, uint64_t wb, uint64_t held)
{
	struct gt_thread *k = &t->k[i];

	dist_add(&k->wait, held - wb);
	k->acquisitions++;
	t->m.acquisitions++;
	if (t->last_holder && t->last_holder != k->tid)
		t->switches++;
	t->last_holder = k->tid;
	k->state = GT_HOLDING;
	k->wait_begin_ns = T0 + wb;
	k->since_ns = T0 + held;
}

static void open_wait(struct trace *t, int i, uint64_t wb)
{
	t->k[i].state = GT_WAITING;
	t->k[i].wait_begin_ns = t->k[i].since_ns = T0 + wb;
}

static void abandoned(struct trace *t, int i, uint64_t wb, uint64_t exit)
{
	struct gt_thread *k = &t->k[i];

	k->waits_abandoned++;
	k->waits_abandoned_ns += exit - wb;
	k->exit_ns = T0 + exit;
	k->state = GT_EXITED;
	t->exited[i] = true;
	t->rec[t->nrec++].c = (struct gt_rec_cycle){
		.type = GT_REC_ABANDONED, .tid = k->tid,
		.wait_begin_ns = T0 + wb, .held_ns = T0 + exit,
		.release_ns = T0 + exit };
}

static void lost(struct trace *t, uint64_t count, uint64_t first,
		 uint64_t last)
{
	t->rec[t->nrec++].l = (struct gt_rec_lost){
		.type = GT_REC_LOST, .count = count,
		.first_ns = T0 + first, .last_ns = T0 + last };
}

/* Close the model at @t_end, write the file, read it back, build. */
static void build(struct trace *t, uint64_t t_end, size_t max_cycles,
		  struct model *back, struct timeline *tl)
{
	char path[256], err[512];
	struct trace_writer *w;
	struct trace_reader *r;

	for (int i = 0; i < t->nk; i++) {
		struct model_thread *mt = model__put_thread(&t->m, &t->k[i],
							    t->exited[i]);

		assert_non_null(mt);
		snprintf(mt->name, sizeof(mt->name), "%s", t->name[i]);
	}
	t->m.holder_switches = t->switches;
	model__close(&t->m, T0 + t_end);
	snprintf(path, sizeof(path), "%s/t.gil", unit_tmpdir);
	w = trace_writer__open(path, err, sizeof(err));
	assert_non_null(w);
	for (int i = 0; i < t->nrec; i++) {
		size_t size = t->rec[i].c.type == GT_REC_LOST ?
			      sizeof(struct gt_rec_lost) :
			      sizeof(struct gt_rec_cycle);

		assert_int_equal(trace_writer__record(w, &t->rec[i], size), 0);
	}
	assert_int_equal(trace_writer__finish(w, &t->m, err, sizeof(err)), 0);
	r = trace_reader__open(path, err, sizeof(err));
	if (!r)
		fail_msg("%s", err);
	model__init(back);
	assert_int_equal(trace_reader__model(r, back, err, sizeof(err)), 0);
	if (timeline__build(tl, r, back, max_cycles, err, sizeof(err)))
		fail_msg("%s", err);
	trace_reader__close(r);
}

static void trace_free(struct trace *t)
{
	model__free(&t->m);
	free(t);
}

static const struct tl_thread *tl_thread(const struct timeline *tl,
					 uint32_t tid)
{
	for (size_t i = 0; i < tl->nthreads; i++)
		if (tl->threads[i].tid == tid)
			return &tl->threads[i];
	fail_msg("no thread %u", tid);
	return NULL;
}

static const struct tl_blocked *blocked(const struct timeline *tl,
					uint32_t waiter, uint32_t holder)
{
	for (size_t i = 0; i < tl->nblocked; i++)
		if (tl->blocked[i].waiter == waiter &&
		    tl->blocked[i].holder == holder)
			return &tl->blocked[i];
	return NULL;
}

static void assert_blocked(const struct timeline *tl, uint32_t waiter,
			   uint32_t holder, uint64_t ns, uint64_t count)
{
	const struct tl_blocked *b = blocked(tl, waiter, holder);

	if (!b)
		fail_msg("no blocked_by entry %u behind %u", waiter, holder);
	assert_int_equal(b->wait_ns, ns);
	assert_int_equal(b->count, count);
}

/* Sums of the timeline == the model's, and each waiter's parts == its
 * wait. */
static void assert_sums(const struct timeline *tl, const struct model *m)
{
	for (size_t i = 0; i < m->nthreads; i++) {
		const struct tl_thread *t = &tl->threads[i];
		uint64_t parts = 0, hold = 0, wait = 0;

		assert_int_equal(t->tid, m->threads[i].k.tid);
		assert_string_equal(t->name, m->threads[i].name);
		assert_int_equal(t->hold_ns, m->threads[i].hold_ns);
		assert_int_equal(t->wait_ns, m->threads[i].wait_ns);
		if (tl->truncated)
			continue;
		for (size_t j = 0; j < t->ncycles; j++) {
			const struct tl_cycle *c = &t->cycles[j];

			assert_true(c->wait_begin <= c->held);
			assert_true(c->held <= c->release);
			if (j)
				assert_true(t->cycles[j - 1].held <= c->held);
			if (c->flags & TL_ABANDONED)
				continue;
			wait += c->held - c->wait_begin;
			hold += c->release - c->held;
		}
		assert_int_equal(hold, t->hold_ns);
		assert_int_equal(wait, t->wait_ns);
		for (size_t j = 0; j < tl->nblocked; j++)
			if (tl->blocked[j].waiter == t->tid)
				parts += tl->blocked[j].wait_ns;
		assert_int_equal(parts, t->wait_ns);
	}
	for (size_t j = 1; j < tl->nblocked; j++) {
		const struct tl_blocked *p = &tl->blocked[j - 1], *q = &tl->blocked[j];

		assert_true(p->waiter < q->waiter ||
			    (p->waiter == q->waiter && p->wait_ns >= q->wait_ns));
	}
}

/* ---- tests ------------------------------------------------------------ */

/*
 * Ping-pong with a hand-off gap and intervals open at the end (t_end 50):
 *   A holds [0,10)           (held when tracing began)
 *   B waits [2,11) holds [11,20)   A released at 10: 1 ns behind nobody
 *   A waits [12,20) holds [20,30)
 *   B waits [22,30) holds [30,40)
 *   A waits [32,40) holds [40, end)        open hold
 *   B waits [42, end)                      open wait
 */
static struct trace *ping_pong(void)
{
	struct trace *t = trace_new();
	int a = thread(t, A, T0, "MainThread"), b = thread(t, B, T0 + 2, "worker");

	cycle(t, a, 0, 0, 10, GT_CYC_AT_START | GT_CYC_INFERRED);
	cycle(t, b, 2, 11, 20, 0);
	cycle(t, a, 12, 20, 30, 0);
	cycle(t, b, 22, 30, 40, 0);
	open_hold(t, a, 32, 40);
	open_wait(t, b, 42);
	return t;
}

static void test_ping_pong(void **state)
{
	struct trace *t = ping_pong();
	struct timeline tl;
	struct model m;
	const struct tl_thread *ta, *tb;

	build(t, 50, 0, &m, &tl);
	assert_int_equal(tl.t0, T0);
	assert_int_equal(tl.t_end, T0 + 50);
	assert_false(tl.truncated);
	assert_int_equal(tl.max_cycles, 4000000);
	assert_int_equal(tl.nthreads, 2);
	ta = tl_thread(&tl, A);
	tb = tl_thread(&tl, B);
	assert_string_equal(ta->name, "MainThread");
	assert_string_equal(tb->name, "worker");

	/* Cycles, in time order, the open ones from the model. */
	assert_int_equal(ta->ncycles, 3);
	assert_int_equal(ta->cycles[0].held, T0);
	assert_int_equal(ta->cycles[0].flags, GT_CYC_AT_START | GT_CYC_INFERRED);
	assert_int_equal(ta->cycles[2].wait_begin, T0 + 32);
	assert_int_equal(ta->cycles[2].held, T0 + 40);
	assert_int_equal(ta->cycles[2].release, T0 + 50);
	assert_int_equal(ta->cycles[2].flags, TL_OPEN_HOLD);
	assert_int_equal(tb->ncycles, 3);
	assert_int_equal(tb->cycles[2].wait_begin, T0 + 42);
	assert_int_equal(tb->cycles[2].held, T0 + 50);
	assert_int_equal(tb->cycles[2].release, T0 + 50);
	assert_int_equal(tb->cycles[2].flags, TL_OPEN_WAIT);

	/* Sums: A holds 10+10+10, waits 8+8; B holds 9+10, waits 9+8+8. */
	assert_int_equal(ta->hold_ns, 30);
	assert_int_equal(ta->wait_ns, 16);
	assert_int_equal(tb->hold_ns, 19);
	assert_int_equal(tb->wait_ns, 25);
	assert_sums(&tl, &m);

	/* Who blocked whom, exactly. */
	assert_int_equal(tl.nblocked, 3);
	assert_blocked(&tl, A, B, 16, 2);
	assert_blocked(&tl, B, A, 24, 3);
	assert_blocked(&tl, B, 0, 1, 1);
	assert_int_equal(tl.blocked[0].waiter, A);
	assert_int_equal(tl.blocked[1].waiter, B);
	assert_int_equal(tl.blocked[1].holder, A);
	assert_int_equal(tl.blocked[2].holder, 0);

	/* A0 B11 A20 B30 A40: four switches, as the kernel counts. */
	assert_int_equal(tl.holder_switches, 4);
	assert_int_equal(tl.holder_switches, m.holder_switches);

	assert_int_equal(timeline__waiting_at(&tl, T0), 0);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 2), 1);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 10), 1);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 11), 0);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 15), 1);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 45), 1);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 50), 0);
	assert_int_equal(tl.nlost, 0);
	assert_int_equal(tl.lost_records, 0);

	timeline__free(&tl);
	assert_null(tl.threads);
	model__free(&m);
	trace_free(t);
}

/* A wait behind several holders in turn, with gaps between them. */
static void test_split_wait(void **state)
{
	struct trace *t = trace_new();
	int a = thread(t, A, T0, "a"), b = thread(t, B, T0, "b"),
	    c = thread(t, 300, T0, "c");
	struct timeline tl;
	struct model m;

	cycle(t, a, 0, 0, 10, GT_CYC_AT_START);
	cycle(t, b, 1, 12, 20, 0);     /* behind A 9, nobody 2 */
	cycle(t, a, 15, 20, 25, 0);    /* behind B 5 */
	/* C waits [5,40): A [5,10) 5, gap 2, B 8, A 5, gap 3, B [28,35) 7,
	 * gap 5 */
	cycle(t, b, 21, 28, 35, 0);    /* behind A 4, nobody 3 */
	cycle(t, c, 5, 40, 50, 0);
	build(t, 60, 0, &m, &tl);
	assert_sums(&tl, &m);
	assert_blocked(&tl, 300, A, 10, 1);
	assert_blocked(&tl, 300, B, 15, 1);
	assert_blocked(&tl, 300, 0, 10, 1);
	assert_blocked(&tl, B, A, 13, 2);
	assert_blocked(&tl, B, 0, 5, 2);
	assert_blocked(&tl, A, B, 5, 1);
	assert_null(blocked(&tl, A, 0));
	assert_int_equal(tl.nblocked, 6);
	assert_int_equal(timeline__waiting_at(&tl, T0 + 22), 2); /* B and C */
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);
}

/* Random valid GIL schedules: blocked_by against a brute force. */
struct brute {
	uint64_t ns[MAXTHR][MAXTHR + 1];
	uint64_t count[MAXTHR][MAXTHR + 1];
};

static void test_random_schedules(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct trace *t = trace_new();
		int nthr = 2 + (int)(rng_next() % 6), ncyc = 200 + (int)(rng_next() % 800);
		uint64_t now = 0, prev_rel[MAXTHR] = { 0 };
		struct brute *bf = calloc(1, sizeof(*bf));
		struct timeline tl;
		struct model m;
		int first;

		for (int i = 0; i < nthr; i++)
			thread(t, 1000 + (uint32_t)i, T0, "w");
		first = t->nrec;
		for (int n = 0; n < ncyc; n++) {
			int h = (int)(rng_next() % nthr);
			uint64_t held = now + rng_next() % 4;
			uint64_t wb = prev_rel[h] + rng_next() % (held - prev_rel[h] + 1);
			uint64_t rel = held + 1 + rng_next() % 100;

			if (n == 0)
				wb = held;
			cycle(t, h, wb, held, rel, n == 0 ? GT_CYC_AT_START : 0);
			prev_rel[h] = rel;
			now = rel;
		}
		/* Brute force over every pair (wait, hold). */
		for (int i = first; i < t->nrec; i++) {
			const struct gt_rec_cycle *w = &t->rec[i].c;
			int wi = (int)(w->tid - 1000);
			uint64_t covered = 0;

			if (w->held_ns == w->wait_begin_ns)
				continue;
			for (int j = first; j < t->nrec; j++) {
				const struct gt_rec_cycle *h = &t->rec[j].c;
				uint64_t s, e;

				if (h->tid == w->tid)
					continue;
				s = h->held_ns > w->wait_begin_ns ? h->held_ns : w->wait_begin_ns;
				e = h->release_ns < w->held_ns ? h->release_ns : w->held_ns;
				if (e <= s)
					continue;
				bf->ns[wi][h->tid - 1000 + 1] += e - s;
				covered += e - s;
				bf->count[wi][h->tid - 1000 + 1]++;
			}
			if (covered < w->held_ns - w->wait_begin_ns) {
				bf->ns[wi][0] += w->held_ns - w->wait_begin_ns - covered;
				bf->count[wi][0]++;
			}
		}
		build(t, now + 10, 0, &m, &tl);
		assert_sums(&tl, &m);
		assert_int_equal(tl.holder_switches, m.holder_switches);
		for (int wi = 0; wi < nthr; wi++) {
			for (int hi = 0; hi <= nthr; hi++) {
				const struct tl_blocked *e =
					blocked(&tl, 1000 + (uint32_t)wi,
						hi ? 1000 + (uint32_t)hi - 1 : 0);

				if (!bf->ns[wi][hi]) {
					assert_null(e);
					continue;
				}
				assert_non_null(e);
				assert_int_equal(e->wait_ns, bf->ns[wi][hi]);
				/* The same holder twice in one wait counts once:
				 * the brute force counted each hold. */
				assert_true(e->count <= bf->count[wi][hi]);
				assert_true(e->count >= 1);
			}
		}
		timeline__free(&tl);
		model__free(&m);
		trace_free(t);
		free(bf);
	}
}

static void test_lost_and_abandoned(void **state)
{
	struct trace *t = trace_new();
	int a = thread(t, A, T0, "a"), b = thread(t, B, T0, "b"),
	    c = thread(t, 300, T0 + 3, "daemon");
	struct timeline tl;
	struct model m;
	const struct tl_thread *tc;

	cycle(t, a, 0, 0, 10, GT_CYC_AT_START);
	lost(t, 3, 100, 200);
	cycle(t, b, 2, 10, 20, 0);
	lost(t, 1, 50, 60);
	abandoned(t, c, 5, 25); /* C exits inside take_gil at 25 */
	build(t, 30, 0, &m, &tl);
	assert_int_equal(tl.nlost, 2);
	assert_int_equal(tl.lost_records, 4);
	assert_int_equal(tl.lost[0].begin, T0 + 50);
	assert_int_equal(tl.lost[0].end, T0 + 60);
	assert_int_equal(tl.lost[0].count, 1);
	assert_int_equal(tl.lost[1].begin, T0 + 100);
	assert_int_equal(tl.lost[1].count, 3);
	/* The abandoned wait is drawn, not counted (as waits_abandoned). */
	tc = tl_thread(&tl, 300);
	assert_int_equal(tc->ncycles, 1);
	assert_int_equal(tc->cycles[0].flags, TL_ABANDONED);
	assert_int_equal(tc->cycles[0].wait_begin, T0 + 5);
	assert_int_equal(tc->cycles[0].held, T0 + 25);
	assert_int_equal(tc->cycles[0].release, T0 + 25);
	assert_int_equal(tc->wait_ns, 0);
	assert_int_equal(tc->hold_ns, 0);
	assert_null(blocked(&tl, 300, A));
	assert_null(blocked(&tl, 300, 0));
	assert_int_equal(timeline__waiting_at(&tl, T0 + 6), 2); /* B and C */
	assert_sums(&tl, &m);
	assert_int_equal(tl.holder_switches, 1);
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);
}

/* A TID reused by a later thread: records go to the thread alive then;
 * a TID the model does not know gets its own lane. */
static void test_tid_reuse(void **state)
{
	struct trace *t = trace_new();
	int a = thread(t, A, T0, "main"), x1 = thread(t, 300, T0 + 10, "first"),
	    x2;
	struct timeline tl;
	struct model m;

	cycle(t, a, 0, 0, 10, GT_CYC_AT_START);
	cycle(t, x1, 10, 10, 20, 0);
	t->k[x1].exit_ns = T0 + 25;
	t->k[x1].state = GT_EXITED;
	t->exited[x1] = true;
	x2 = thread(t, 300, T0 + 30, "second");
	cycle(t, x2, 30, 30, 45, 0);
	cycle(t, a, 20, 45, 50, 0);
	t->rec[t->nrec++].c = (struct gt_rec_cycle){
		.type = GT_REC_CYCLE, .tid = 999, .wait_begin_ns = T0 + 50,
		.held_ns = T0 + 50, .release_ns = T0 + 55 };
	build(t, 60, 0, &m, &tl);
	assert_int_equal(tl.nthreads, 4);
	assert_int_equal(tl.threads[1].tid, 300);
	assert_string_equal(tl.threads[1].name, "first");
	assert_int_equal(tl.threads[1].ncycles, 1);
	assert_int_equal(tl.threads[1].hold_ns, 10);
	assert_int_equal(tl.threads[2].tid, 300);
	assert_string_equal(tl.threads[2].name, "second");
	assert_int_equal(tl.threads[2].ncycles, 1);
	assert_int_equal(tl.threads[2].hold_ns, 15);
	assert_int_equal(tl.threads[3].tid, 999);
	assert_string_equal(tl.threads[3].name, "");
	assert_int_equal(tl.threads[3].hold_ns, 5);
	assert_sums(&tl, &m);
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);
}

static void test_truncated(void **state)
{
	struct trace *t = ping_pong();
	struct timeline tl;
	struct model m;
	size_t stored = 0;

	build(t, 50, 3, &m, &tl);
	assert_true(tl.truncated);
	assert_int_equal(tl.max_cycles, 3);
	for (size_t i = 0; i < tl.nthreads; i++)
		stored += tl.threads[i].ncycles;
	assert_int_equal(stored, 3);
	/* Sums still count every cycle. */
	assert_sums(&tl, &m);
	assert_int_equal(tl.threads[0].hold_ns, 30);
	assert_int_equal(tl.threads[1].wait_ns, 25);
	/* Switches from the file order when truncated. */
	assert_int_equal(tl.holder_switches, 4);
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);

	/* Exactly at the limit is not truncated. */
	t = ping_pong();
	build(t, 50, 6, &m, &tl);
	assert_false(tl.truncated);
	assert_sums(&tl, &m);
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);
}

/* Records that break the kernel's invariants: normalised, never crash. */
static void test_odd_records(void **state)
{
	struct trace *t = trace_new();
	int a = thread(t, A, T0, "a");
	struct timeline tl;
	struct model m;
	const struct tl_thread *ta;

	/* held after release (the kernel then counts a 0 ns hold). */
	t->rec[t->nrec++].c = (struct gt_rec_cycle){
		.type = GT_REC_CYCLE, .tid = A, .wait_begin_ns = T0 + 1,
		.held_ns = T0 + 9, .release_ns = T0 + 7 };
	/* wait_begin after held. */
	t->rec[t->nrec++].c = (struct gt_rec_cycle){
		.type = GT_REC_CYCLE, .tid = A, .wait_begin_ns = T0 + 30,
		.held_ns = T0 + 20, .release_ns = T0 + 25 };
	(void)a;
	build(t, 40, 0, &m, &tl);
	ta = tl_thread(&tl, A);
	assert_int_equal(ta->ncycles, 2);
	assert_int_equal(ta->cycles[0].release, T0 + 9);
	assert_int_equal(ta->hold_ns, 5);
	assert_int_equal(ta->wait_ns, 8);
	assert_int_equal(ta->cycles[1].wait_begin, T0 + 20);
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);
}

/* Memory stays bounded on a long trace. */
static void test_many_cycles(void **state)
{
	struct trace *t = trace_new();
	int a = thread(t, A, T0, "a"), b = thread(t, B, T0, "b");
	struct timeline tl;
	struct model m;

	for (int i = 0; i < MAXREC; i++)
		cycle(t, i % 2 ? b : a, i ? 10 * (uint64_t)i - 5 : 0,
		      10 * (uint64_t)i, 10 * (uint64_t)i + 10,
		      i ? 0 : GT_CYC_AT_START);
	build(t, 10 * MAXREC + 10, 1000, &m, &tl);
	assert_true(tl.truncated);
	assert_int_equal(tl.threads[0].ncycles + tl.threads[1].ncycles, 1000);
	assert_sums(&tl, &m);
	assert_int_equal(tl.holder_switches, MAXREC - 1);
	timeline__free(&tl);
	model__free(&m);
	trace_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_split_wait),
		cmocka_unit_test(test_random_schedules),
		cmocka_unit_test(test_lost_and_abandoned),
		cmocka_unit_test(test_tid_reuse),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_odd_records),
		cmocka_unit_test(test_many_cycles),
	};

	return cmocka_run_group_tests(tests, unit_tmpdir_setup, unit_tmpdir_teardown);
}
