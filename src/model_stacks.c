// SPDX-License-Identifier: MIT
/*
 * model_stacks.c - the stacks part of the trace model: interned frames,
 * stacks by id, and per-thread weights. Four open-addressing indexes, all
 * of one type (struct oa_index): frames by content, stacks and aliases by
 * id, stacks by content, weights by (thread, kind, stack). The tables only
 * grow while tracing; nothing is ever removed (weights are cleared whole).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_stacks.h"

/* Grow @*v (element size @sz) to hold @need; 0 or -ENOMEM. */
static int grow(void **v, size_t *cap, size_t need, size_t sz)
{
	size_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*v, n * sz);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

/*
 * Each table's entries, hash and match. A key is an element of the table
 * with its key fields set (a lookup only reads it), or for ids the id.
 */

/* Frames by content: entry = index into frames[]. */
static uint64_t frame_hash(const struct model_frame *f)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = oa_hash_str(oa_mix(h, f->kind), f->function);
	h = oa_hash_str(h, f->file);
	h = oa_hash_str(h, f->module);
	return oa_mix(h, (uint64_t)(uint32_t)f->line);
}

static uint64_t frame_hash_of(const void *ms_, size_t e)
{
	const struct model_stacks *ms = ms_;

	return frame_hash(&ms->frames[e]);
}

static bool frame_is(const void *ms_, size_t e, const void *key)
{
	const struct model_stacks *ms = ms_;
	const struct model_frame *f = &ms->frames[e], *k = key;

	return f->kind == k->kind && f->line == k->line &&
	       !strcmp(f->function, k->function) && !strcmp(f->file, k->file) &&
	       !strcmp(f->module, k->module);
}

static const struct oa_ops frame_ops = { frame_hash_of, frame_is, NULL };

/* Stacks by content (flags, frames): entry = index into stacks[]. */
static uint64_t content_hash(const struct model_stack *s)
{
	uint64_t h = oa_mix(0x51ed27, s->flags);

	for (uint32_t i = 0; i < s->nframes; i++)
		h = oa_mix(h, s->frames[i]);
	return oa_mix(h, s->nframes);
}

static uint64_t content_hash_of(const void *ms_, size_t e)
{
	const struct model_stacks *ms = ms_;

	return content_hash(&ms->stacks[e]);
}

static bool content_is(const void *ms_, size_t e, const void *key)
{
	const struct model_stacks *ms = ms_;
	const struct model_stack *s = &ms->stacks[e], *k = key;

	return s->flags == k->flags && s->nframes == k->nframes &&
	       (!k->nframes || !memcmp(s->frames, k->frames,
				       k->nframes * sizeof(*k->frames)));
}

static const struct oa_ops content_ops = { content_hash_of, content_is, NULL };

/* Stacks and aliases by id: entry = index into stacks[], or ALIAS | index
 * into aliases[]. */
#define ALIAS ((size_t)1 << (sizeof(size_t) * 8 - 1))

static size_t nids(const struct model_stacks *ms)
{
	return ms->nstacks + ms->naliases;
}

/* The @i-th id: the stacks' own, then the aliases. */
static size_t id_entry(const void *ms_, size_t i)
{
	const struct model_stacks *ms = ms_;

	return i < ms->nstacks ? i : ALIAS | (i - ms->nstacks);
}

static uint64_t id_of(const struct model_stacks *ms, size_t e)
{
	return e & ALIAS ? ms->aliases[e & ~ALIAS].id : ms->stacks[e].id;
}

static uint32_t stack_of(const struct model_stacks *ms, size_t e)
{
	return e & ALIAS ? ms->aliases[e & ~ALIAS].stack : (uint32_t)e;
}

static uint64_t id_hash(uint64_t id)
{
	return oa_mix(0, id);
}

static uint64_t id_hash_of(const void *ms, size_t e)
{
	return id_hash(id_of(ms, e));
}

static bool id_is(const void *ms, size_t e, const void *key)
{
	return id_of(ms, e) == *(const uint64_t *)key;
}

static const struct oa_ops id_ops = { id_hash_of, id_is, id_entry };

/* Weights by (tid, first_seen_ns, kind, stack): entry = index into w[]. */
static uint64_t weight_hash(const struct model_stack_weight *w)
{
	return oa_mix(oa_mix(oa_mix(oa_mix(0, w->tid), w->first_seen_ns), w->kind),
		   w->stack);
}

static uint64_t weight_hash_of(const void *ms_, size_t e)
{
	const struct model_stacks *ms = ms_;

	return weight_hash(&ms->w[e]);
}

static bool weight_is(const void *ms_, size_t e, const void *key)
{
	const struct model_stacks *ms = ms_;
	const struct model_stack_weight *w = &ms->w[e], *k = key;

	return w->tid == k->tid && w->first_seen_ns == k->first_seen_ns &&
	       w->kind == k->kind && w->stack == k->stack;
}

static const struct oa_ops weight_ops = { weight_hash_of, weight_is, NULL };

struct model_stacks *model_stacks__new(void)
{
	struct model_stacks *ms = calloc(1, sizeof(*ms));

	if (ms)
		ms->max_depth = GT_STACK_MAX;
	return ms;
}

void model_stacks__free(struct model_stacks *ms)
{
	if (!ms)
		return;
	for (size_t i = 0; i < ms->nframes; i++) {
		free(ms->frames[i].function);
		free(ms->frames[i].file);
		free(ms->frames[i].module);
	}
	for (size_t i = 0; i < ms->nstacks; i++)
		free(ms->stacks[i].frames);
	free(ms->frames);
	free(ms->stacks);
	free(ms->aliases);
	free(ms->w);
	oa_free(&ms->fidx);
	oa_free(&ms->sidx);
	oa_free(&ms->cidx);
	oa_free(&ms->widx);
	free(ms);
}

int model_stacks__frame(struct model_stacks *ms, enum model_frame_kind kind,
			const char *function, const char *file, int line,
			const char *module)
{
	struct model_frame k = {	/* a key: only read */
		.kind = kind, .line = line,
		.function = (char *)(function ? function : ""),
		.file = (char *)(file ? file : ""),
		.module = (char *)(module ? module : ""),
	};
	struct model_frame *f;
	size_t j;

	if (oa_reserve(&ms->fidx, ms->nframes, &frame_ops, ms))
		return -ENOMEM;
	j = oa_probe(&ms->fidx, frame_hash(&k), &frame_ops, ms, &k);
	if (oa_entry(&ms->fidx, j) != OA_NONE)
		return (int)oa_entry(&ms->fidx, j);
	if (ms->nframes >= INT32_MAX ||
	    grow((void **)&ms->frames, &ms->cap_frames, ms->nframes + 1,
		 sizeof(*ms->frames)))
		return -ENOMEM;
	f = &ms->frames[ms->nframes];
	f->kind = kind;
	f->line = line;
	f->function = strdup(k.function);
	f->file = strdup(k.file);
	f->module = strdup(k.module);
	if (!f->function || !f->file || !f->module) {
		free(f->function);
		free(f->file);
		free(f->module);
		return -ENOMEM;
	}
	oa_set(&ms->fidx, j, ms->nframes);
	return (int)ms->nframes++;
}

int model_stacks__find(const struct model_stacks *ms, uint64_t id)
{
	size_t j, e;

	if (!ms || !ms->sidx.slot)
		return -1;
	j = oa_probe(&ms->sidx, id_hash(id), &id_ops, ms, &id);
	e = oa_entry(&ms->sidx, j);
	return e == OA_NONE ? -1 : (int)stack_of(ms, e);
}

uint64_t model_stacks__hold_id(const struct model_stacks *ms, uint64_t id)
{
	uint64_t v = model_stacks__variant_id(id);

	return id && model_stacks__find(ms, v) >= 0 ? v : id;
}

/* @id becomes another id of stack @stack. Returns @stack or -ENOMEM. */
static int add_alias(struct model_stacks *ms, uint64_t id, uint32_t stack)
{
	size_t k = ms->naliases;

	if (grow((void **)&ms->aliases, &ms->cap_aliases, k + 1,
		 sizeof(*ms->aliases)) ||
	    oa_reserve(&ms->sidx, nids(ms), &id_ops, ms))
		return -ENOMEM;
	ms->aliases[k].id = id;
	ms->aliases[k].stack = stack;
	ms->naliases++;
	oa_insert(&ms->sidx, id_hash(id), ALIAS | k);
	return (int)stack;
}

int model_stacks__add(struct model_stacks *ms, uint64_t id, uint32_t flags,
		      const uint32_t *frames, uint32_t n)
{
	struct model_stack k = { .flags = flags, .nframes = n,
				 .frames = (uint32_t *)frames }; /* a key */
	struct model_stack *s;
	int found = model_stacks__find(ms, id);
	size_t j;

	if (found >= 0)
		return found;
	for (uint32_t i = 0; i < n; i++)
		if (frames[i] >= ms->nframes)
			return -EINVAL;
	if (oa_reserve(&ms->cidx, ms->nstacks, &content_ops, ms))
		return -ENOMEM;
	j = oa_probe(&ms->cidx, content_hash(&k), &content_ops, ms, &k);
	if (oa_entry(&ms->cidx, j) != OA_NONE)
		return add_alias(ms, id, (uint32_t)oa_entry(&ms->cidx, j));
	if (ms->nstacks >= INT32_MAX ||
	    oa_reserve(&ms->sidx, nids(ms), &id_ops, ms) ||
	    grow((void **)&ms->stacks, &ms->cap_stacks, ms->nstacks + 1,
		 sizeof(*ms->stacks)))
		return -ENOMEM;
	s = &ms->stacks[ms->nstacks];
	s->id = id;
	s->flags = flags;
	s->nframes = n;
	s->frames = malloc((n ? n : 1) * sizeof(*s->frames));
	if (!s->frames)
		return -ENOMEM;
	memcpy(s->frames, frames, n * sizeof(*frames));
	oa_set(&ms->cidx, j, ms->nstacks);
	oa_insert(&ms->sidx, id_hash(id), ms->nstacks);
	return (int)ms->nstacks++;
}

int model_stacks__add_weight(struct model_stacks *ms, uint32_t tid,
			     uint64_t first_seen_ns, uint32_t kind,
			     uint32_t stack, uint64_t count, uint64_t ns)
{
	struct model_stack_weight k = { .tid = tid, .kind = kind, /* a key */
					.first_seen_ns = first_seen_ns,
					.stack = stack };
	struct model_stack_weight *w;
	size_t j;

	if (stack >= ms->nstacks || kind > GT_W_HOLD)
		return -EINVAL;
	if (oa_reserve(&ms->widx, ms->nw, &weight_ops, ms))
		return -ENOMEM;
	j = oa_probe(&ms->widx, weight_hash(&k), &weight_ops, ms, &k);
	if (oa_entry(&ms->widx, j) != OA_NONE) {
		w = &ms->w[oa_entry(&ms->widx, j)];
		w->count += count;
		w->ns += ns;
		return 0;
	}
	if (grow((void **)&ms->w, &ms->cap_w, ms->nw + 1, sizeof(*ms->w)))
		return -ENOMEM;
	w = &ms->w[ms->nw];
	memset(w, 0, sizeof(*w));
	w->tid = tid;
	w->first_seen_ns = first_seen_ns;
	w->kind = kind;
	w->stack = stack;
	w->count = count;
	w->ns = ns;
	oa_set(&ms->widx, j, ms->nw++);
	return 0;
}

void model_stacks__clear_weights(struct model_stacks *ms)
{
	ms->nw = 0;
	oa_clear(&ms->widx);
}

static int heavier(const void *a, const void *b)
{
	const struct model_stack_weight *x = *(const struct model_stack_weight *const *)a;
	const struct model_stack_weight *y = *(const struct model_stack_weight *const *)b;

	if (x->ns != y->ns)
		return x->ns < y->ns ? 1 : -1;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

ssize_t model_stacks__thread(const struct model_stacks *ms, uint32_t tid,
			     uint64_t first_seen_ns, uint32_t kind,
			     const struct model_stack_weight ***out)
{
	const struct model_stack_weight **v;
	size_t n = 0;

	*out = NULL;
	if (!ms)
		return 0;
	v = malloc((ms->nw ? ms->nw : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < ms->nw; i++)
		if (ms->w[i].tid == tid && ms->w[i].first_seen_ns == first_seen_ns &&
		    ms->w[i].kind == kind)
			v[n++] = &ms->w[i];
	qsort(v, n, sizeof(*v), heavier);
	*out = v;
	return (ssize_t)n;
}

void model_stacks__thread_total(const struct model_stacks *ms, uint32_t tid,
				uint64_t first_seen_ns, uint32_t kind,
				uint64_t *count, uint64_t *ns)
{
	*count = *ns = 0;
	if (!ms)
		return;
	for (size_t i = 0; i < ms->nw; i++)
		if (ms->w[i].tid == tid && ms->w[i].first_seen_ns == first_seen_ns &&
		    ms->w[i].kind == kind) {
			*count += ms->w[i].count;
			*ns += ms->w[i].ns;
		}
}

void model_stacks__module(const struct model_frame *f, char *buf, size_t len)
{
	const char *src = f->kind == MF_NATIVE ? f->module : f->file;
	const char *base = strrchr(src, '/');
	size_t n;

	if (!len)
		return;
	base = base ? base + 1 : src;
	n = strlen(base);
	if (f->kind == MF_PYTHON && n > 3 && !strcmp(base + n - 3, ".py"))
		n -= 3;
	if (n >= len)
		n = len - 1;
	memcpy(buf, base, n);
	buf[n] = '\0';
}

void model_stacks__label(const struct model_frame *f, char *buf, size_t len)
{
	char mod[256];

	switch (f->kind) {
	case MF_PYTHON:
		model_stacks__module(f, mod, sizeof(mod));
		if (f->line > 0)
			snprintf(buf, len, "%s%s%s (%s:%d)", mod, mod[0] ? ":" : "",
				 f->function, f->file[0] ? f->file : MS_UNKNOWN,
				 f->line);
		else
			snprintf(buf, len, "%s%s%s (%s)", mod, mod[0] ? ":" : "",
				 f->function, f->file[0] ? f->file : MS_UNKNOWN);
		break;
	case MF_NATIVE:
		model_stacks__module(f, mod, sizeof(mod));
		if (mod[0])
			snprintf(buf, len, "%s [%s]", f->function, mod);
		else
			snprintf(buf, len, "%s", f->function);
		break;
	default:
		snprintf(buf, len, "%s", f->function);
		break;
	}
}

struct model_stacks *model_stacks__copy(const struct model_stacks *ms)
{
	struct model_stacks *c;
	int r = 0;

	if (!ms || !(c = model_stacks__new()))
		return NULL;
	c->max_depth = ms->max_depth;
	c->samples = ms->samples;
	c->samples_skipped = ms->samples_skipped;
	c->walks_interrupted = ms->walks_interrupted;
	c->weights_lost = ms->weights_lost;
	c->stacks_lost = ms->stacks_lost;
	c->frames_unresolved = ms->frames_unresolved;
	c->native_failed = ms->native_failed;
	for (size_t i = 0; i < ms->nframes && r >= 0; i++) {
		const struct model_frame *f = &ms->frames[i];

		r = model_stacks__frame(c, f->kind, f->function, f->file,
					f->line, f->module);
	}
	for (size_t i = 0; i < ms->nstacks && r >= 0; i++)
		r = model_stacks__add(c, ms->stacks[i].id, ms->stacks[i].flags,
				      ms->stacks[i].frames, ms->stacks[i].nframes);
	for (size_t i = 0; i < ms->naliases && r >= 0; i++) {
		const struct model_stack *st = &ms->stacks[ms->aliases[i].stack];

		r = model_stacks__add(c, ms->aliases[i].id, st->flags, st->frames,
				      st->nframes);
	}
	for (size_t i = 0; i < ms->nw && r >= 0; i++) {
		const struct model_stack_weight *w = &ms->w[i];

		r = model_stacks__add_weight(c, w->tid, w->first_seen_ns,
					     w->kind, w->stack, w->count, w->ns);
	}
	if (r < 0) {
		model_stacks__free(c);
		return NULL;
	}
	return c;
}
