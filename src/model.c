// SPDX-License-Identifier: MIT
/* model.c - the trace model: per-thread figures and distribution helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "model_stacks.h"

void model__init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->mode, "exact");
	m->exit_status = -1;
}

void model__free(struct model *m)
{
	free(m->probes);
	free(m->threads);
	model_stacks__free(m->stacks);
	m->stacks = NULL;
	m->probes = NULL;
	m->threads = NULL;
	m->nprobes = m->nthreads = m->cap = 0;
}

int model__add_probe(struct model *m, const struct model_probe *p)
{
	struct model_probe *v;

	v = realloc(m->probes, (m->nprobes + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->probes = v;
	m->probes[m->nprobes++] = *p;
	return 0;
}

static struct model_thread *find_thread(struct model *m, uint32_t tid,
					uint64_t first_seen)
{
	for (size_t i = 0; i < m->nthreads; i++)
		if (m->threads[i].k.tid == tid &&
		    m->threads[i].k.first_seen_ns == first_seen)
			return &m->threads[i];
	return NULL;
}

struct model_thread *model__put_thread(struct model *m,
				       const struct gt_thread *k, bool exited)
{
	struct model_thread *t = find_thread(m, k->tid, k->first_seen_ns);

	if (!t) {
		if (m->nthreads == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 16;
			struct model_thread *v = realloc(m->threads, cap * sizeof(*v));

			if (!v)
				return NULL;
			m->threads = v;
			m->cap = cap;
		}
		t = &m->threads[m->nthreads++];
		memset(t, 0, sizeof(*t));
	}
	t->k = *k;
	t->exited = exited;
	if (!t->name[0] || exited) {
		memcpy(t->name, k->comm, GT_COMM_LEN);
		t->name[GT_COMM_LEN] = '\0';
	}
	return t;
}

void model__close(struct model *m, uint64_t t_end_ns)
{
	m->t_end_ns = t_end_ns;
	for (size_t i = 0; i < m->nthreads; i++) {
		struct model_thread *t = &m->threads[i];
		uint64_t open = 0;

		if (!t->exited && t_end_ns > t->k.since_ns &&
		    (t->k.state == GT_HOLDING || t->k.state == GT_WAITING))
			open = t_end_ns - t->k.since_ns;
		t->open_hold_ns = t->k.state == GT_HOLDING ? open : 0;
		t->open_wait_ns = t->k.state == GT_WAITING ? open : 0;
		t->hold_ns = t->k.hold.sum_ns + t->open_hold_ns;
		t->wait_ns = t->k.wait.sum_ns + t->open_wait_ns;
	}
}

uint64_t model__interval_ns(const struct model *m)
{
	return m->t_end_ns > m->t0_ns ? m->t_end_ns - m->t0_ns : 0;
}

uint64_t model__held_ns(const struct model *m)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < m->nthreads; i++)
		sum += m->threads[i].hold_ns;
	return sum;
}

uint64_t gt_bucket_low(uint32_t idx)
{
	uint32_t p, sub;

	if (idx < GT_SUB_BUCKETS)
		return idx;
	p = idx / GT_SUB_BUCKETS + GT_SUB_BITS - 1;
	sub = idx % GT_SUB_BUCKETS;
	return (1ULL << p) + ((uint64_t)sub << (p - GT_SUB_BITS));
}

uint64_t gt_bucket_high(uint32_t idx)
{
	if (idx + 1 >= GT_NBUCKETS)
		return UINT64_MAX;
	return gt_bucket_low(idx + 1);
}

uint64_t gt_dist_quantile(const struct gt_dist *d, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (uint32_t i = 0; i < GT_NBUCKETS; i++)
		total += d->buckets[i];
	if (!total)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	/* The smallest value with at least q of the samples at or below it. */
	rank = (uint64_t)(q * total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (uint32_t i = 0; i < GT_NBUCKETS; i++) {
		seen += d->buckets[i];
		if (seen >= rank) {
			uint64_t lo = gt_bucket_low(i), hi = gt_bucket_high(i);
			uint64_t v = hi == UINT64_MAX ? lo : lo + (hi - 1 - lo) / 2;

			if (d->max_ns && v > d->max_ns)
				v = d->max_ns;
			return v;
		}
	}
	return d->max_ns;
}

void gt_dist_log2(const struct gt_dist *d, uint64_t out[GT_LOG2_SLOTS])
{
	memset(out, 0, GT_LOG2_SLOTS * sizeof(out[0]));
	for (uint32_t i = 0; i < GT_NBUCKETS; i++) {
		uint64_t lo = gt_bucket_low(i);
		uint32_t slot = lo ? gt_log2(lo) : 0;

		if (slot >= GT_LOG2_SLOTS)
			slot = GT_LOG2_SLOTS - 1;
		out[slot] += d->buckets[i];
	}
}

static void dist_sub(struct gt_dist *out, const struct gt_dist *cur,
		     const struct gt_dist *prev)
{
	int top = -1;

	out->count = cur->count - prev->count;
	out->sum_ns = cur->sum_ns - prev->sum_ns;
	for (uint32_t i = 0; i < GT_NBUCKETS; i++) {
		out->buckets[i] = cur->buckets[i] - prev->buckets[i];
		if (out->buckets[i])
			top = (int)i;
	}
	out->max_ns = 0;
	if (top >= 0) {
		uint64_t hi = gt_bucket_high((uint32_t)top);

		out->max_ns = hi == UINT64_MAX ? cur->max_ns : hi - 1;
		if (out->max_ns > cur->max_ns)
			out->max_ns = cur->max_ns;
	}
}

int model__copy(const struct model *m, struct model *out)
{
	*out = *m;
	out->probes = NULL;
	out->threads = NULL;
	out->stacks = NULL;
	if (m->nprobes) {
		out->probes = malloc(m->nprobes * sizeof(*m->probes));
		if (!out->probes)
			return -ENOMEM;
		memcpy(out->probes, m->probes, m->nprobes * sizeof(*m->probes));
	}
	if (m->nthreads) {
		out->threads = malloc(m->nthreads * sizeof(*m->threads));
		if (!out->threads) {
			free(out->probes);
			return -ENOMEM;
		}
		memcpy(out->threads, m->threads, m->nthreads * sizeof(*m->threads));
	}
	out->cap = m->nthreads;
	return 0;
}

int model__diff(const struct model *cur, const struct model *prev,
		struct model *out)
{
	int err = model__copy(cur, out);

	if (err)
		return err;
	out->t0_ns = prev->t_end_ns;
	out->acquisitions -= prev->acquisitions;
	out->holder_switches -= prev->holder_switches;
	out->dropped_events -= prev->dropped_events;
	for (size_t i = 0; i < out->nthreads; i++) {
		struct model_thread *t = &out->threads[i];
		const struct model_thread *p = NULL;

		for (size_t j = 0; j < prev->nthreads; j++)
			if (prev->threads[j].k.tid == t->k.tid &&
			    prev->threads[j].k.first_seen_ns == t->k.first_seen_ns)
				p = &prev->threads[j];
		if (!p)
			continue;
		dist_sub(&t->k.wait, &cur->threads[i].k.wait, &p->k.wait);
		dist_sub(&t->k.hold, &cur->threads[i].k.hold, &p->k.hold);
		t->k.acquisitions -= p->k.acquisitions;
		t->k.waits_abandoned -= p->k.waits_abandoned;
		t->k.waits_abandoned_ns -= p->k.waits_abandoned_ns;
		t->k.waits_clipped -= p->k.waits_clipped;
		t->k.inconsistent -= p->k.inconsistent;
		t->k.hold_samples -= p->k.hold_samples;
		/* Open intervals: only the part inside this interval counts. */
		t->hold_ns = t->k.hold.sum_ns + t->open_hold_ns - p->open_hold_ns;
		t->wait_ns = t->k.wait.sum_ns + t->open_wait_ns - p->open_wait_ns;
	}
	return 0;
}

void model__estimate_holds(struct model *m, uint32_t hz)
{
	for (size_t i = 0; i < m->nthreads; i++) {
		struct model_thread *t = &m->threads[i];

		t->hold_ns = hz ? t->k.hold_samples * (1000000000ULL / hz) : 0;
		t->open_hold_ns = 0;
	}
}
