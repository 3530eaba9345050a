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
#include "probes.h"
#include "trace_file.h"
#include "giltrace.skel.h"

struct collector {
	struct probes *p;
	struct model *m;
	struct ring_buffer *rb;
	struct gt_thread *buf; /* one map value, too large for the stack */
	uint64_t last_exit_ns;
	struct trace_writer *w;
	uint64_t records, write_errors;
};

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
		return 1;
	}
	return 0;
}
