// SPDX-License-Identifier: MIT
/*
 * model_stacks.c - the stacks part of the trace model: interned frames,
 * stacks by id, and per-thread weights, each with an open-addressing index
 * (the tables only grow while tracing; nothing is ever removed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_stacks.h"

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

static uint64_t str_hash(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return mix(h, 0);
}

static uint64_t frame_hash(uint32_t kind, const char *fn, const char *file,
			   int line, const char *mod)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = str_hash(mix(h, kind), fn);
	h = str_hash(h, file);
	h = str_hash(h, mod);
	return mix(h, (uint64_t)(uint32_t)line);
}

static uint64_t weight_hash(uint32_t tid, uint64_t first, uint32_t kind,
			    uint32_t stack)
{
	return mix(mix(mix(mix(0, tid), first), kind), stack);
}

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

/* Rebuild index @*h (capacity @*hcap, a power of two) for @n items
 * hashed by @hf when it is more than half full. */
static int reindex(size_t **h, size_t *hcap, size_t n,
		   uint64_t (*hf)(const struct model_stacks *, size_t),
		   const struct model_stacks *ms)
{
	size_t cap = *hcap ? *hcap : 256, *v;

	if (*h && (n + 1) * 2 <= *hcap)
		return 0;
	while ((n + 1) * 2 > cap)
		cap *= 2;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t j = hf(ms, i) & (cap - 1);

		while (v[j])
			j = (j + 1) & (cap - 1);
		v[j] = i + 1;
	}
	free(*h);
	*h = v;
	*hcap = cap;
	return 0;
}

static uint64_t fh_of(const struct model_stacks *ms, size_t i)
{
	const struct model_frame *f = &ms->frames[i];

	return frame_hash(f->kind, f->function, f->file, f->line, f->module);
}

static uint64_t content_hash(uint32_t flags, const uint32_t *fr, uint32_t n)
{
	uint64_t h = mix(0x51ed27, flags);

	for (uint32_t i = 0; i < n; i++)
		h = mix(h, fr[i]);
	return mix(h, n);
}

static uint64_t ch_of(const struct model_stacks *ms, size_t i)
{
	const struct model_stack *s = &ms->stacks[i];

	return content_hash(s->flags, s->frames, s->nframes);
}

/* The id index holds stacks (entry i + 1) and aliases (ALIAS | k + 1). */
#define ALIAS ((size_t)1 << (sizeof(size_t) * 8 - 1))

static size_t nids(const struct model_stacks *ms)
{
	return ms->nstacks + ms->naliases;
}

static uint64_t id_of_entry(const struct model_stacks *ms, size_t e)
{
	return e & ALIAS ? ms->aliases[(e & ~ALIAS) - 1].id : ms->stacks[e - 1].id;
}

static uint32_t stack_of_entry(const struct model_stacks *ms, size_t e)
{
	return e & ALIAS ? ms->aliases[(e & ~ALIAS) - 1].stack : (uint32_t)(e - 1);
}



static uint64_t wh_of(const struct model_stacks *ms, size_t i)
{
	const struct model_stack_weight *w = &ms->w[i];

	return weight_hash(w->tid, w->first_seen_ns, w->kind, w->stack);
}

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
	free(ms->w);
	free(ms->fhash);
	free(ms->shash);
	free(ms->chash);
	free(ms->aliases);
	free(ms->whash);
	free(ms);
}

int model_stacks__frame(struct model_stacks *ms, enum model_frame_kind kind,
			const char *function, const char *file, int line,
			const char *module)
{
	struct model_frame *f;
	uint64_t h;
	size_t j;

	function = function ? function : "";
	file = file ? file : "";
	module = module ? module : "";
	if (reindex(&ms->fhash, &ms->fhash_cap, ms->nframes, fh_of, ms))
		return -ENOMEM;
	h = frame_hash(kind, function, file, line, module);
	for (j = h & (ms->fhash_cap - 1); ms->fhash[j];
	     j = (j + 1) & (ms->fhash_cap - 1)) {
		f = &ms->frames[ms->fhash[j] - 1];
		if (f->kind == kind && f->line == line &&
		    !strcmp(f->function, function) && !strcmp(f->file, file) &&
		    !strcmp(f->module, module))
			return (int)(ms->fhash[j] - 1);
	}
	if (ms->nframes >= INT32_MAX ||
	    grow((void **)&ms->frames, &ms->cap_frames, ms->nframes + 1,
		 sizeof(*ms->frames)))
		return -ENOMEM;
	f = &ms->frames[ms->nframes];
	f->kind = kind;
	f->line = line;
	f->function = strdup(function);
	f->file = strdup(file);
	f->module = strdup(module);
	if (!f->function || !f->file || !f->module) {
		free(f->function);
		free(f->file);
		free(f->module);
		return -ENOMEM;
	}
	ms->fhash[j] = ++ms->nframes;
	return (int)(ms->nframes - 1);
}

int model_stacks__find(const struct model_stacks *ms, uint64_t id)
{
	if (!ms || !ms->shash)
		return -1;
	for (size_t j = mix(0, id) & (ms->shash_cap - 1); ms->shash[j];
	     j = (j + 1) & (ms->shash_cap - 1))
		if (id_of_entry(ms, ms->shash[j]) == id)
			return (int)stack_of_entry(ms, ms->shash[j]);
	return -1;
}

static void index_id(struct model_stacks *ms, size_t e)
{
	size_t j;

	for (j = mix(0, id_of_entry(ms, e)) & (ms->shash_cap - 1); ms->shash[j];
	     j = (j + 1) & (ms->shash_cap - 1))
		;
	ms->shash[j] = e;
}

/* Make room in the id index for one more id. */
static int room_for_id(struct model_stacks *ms)
{
	size_t cap = ms->shash_cap ? ms->shash_cap : 256, *old = ms->shash,
	       ocap = ms->shash_cap;

	if (old && (nids(ms) + 2) * 2 <= ocap)
		return 0;
	while ((nids(ms) + 2) * 2 > cap)
		cap *= 2;
	ms->shash = calloc(cap, sizeof(*ms->shash));
	if (!ms->shash) {
		ms->shash = old;
		return -ENOMEM;
	}
	ms->shash_cap = cap;
	for (size_t j = 0; j < ocap; j++)
		if (old[j])
			index_id(ms, old[j]);
	free(old);
	return 0;
}

static int find_content(const struct model_stacks *ms, uint32_t flags,
			const uint32_t *fr, uint32_t n)
{
	if (!ms->chash)
		return -1;
	for (size_t j = content_hash(flags, fr, n) & (ms->chash_cap - 1);
	     ms->chash[j]; j = (j + 1) & (ms->chash_cap - 1)) {
		const struct model_stack *s = &ms->stacks[ms->chash[j] - 1];

		if (s->flags == flags && s->nframes == n &&
		    !memcmp(s->frames, fr, n * sizeof(*fr)))
			return (int)(ms->chash[j] - 1);
	}
	return -1;
}

int model_stacks__add(struct model_stacks *ms, uint64_t id, uint32_t flags,
		      const uint32_t *frames, uint32_t n)
{
	struct model_stack *s;
	int found = model_stacks__find(ms, id);
	size_t j;

	if (found >= 0)
		return found;
	for (uint32_t i = 0; i < n; i++)
		if (frames[i] >= ms->nframes)
			return -EINVAL;
	if (reindex(&ms->chash, &ms->chash_cap, ms->nstacks, ch_of, ms))
		return -ENOMEM;
	found = find_content(ms, flags, frames, n);
	if (found >= 0) {
		if (grow((void **)&ms->aliases, &ms->cap_aliases,
			 ms->naliases + 1, sizeof(*ms->aliases)))
			return -ENOMEM;
		if (room_for_id(ms))
			return -ENOMEM;
		ms->aliases[ms->naliases].id = id;
		ms->aliases[ms->naliases].stack = (uint32_t)found;
		ms->naliases++;
		index_id(ms, ALIAS | ms->naliases);
		return found;
	}
	if (ms->nstacks >= INT32_MAX || room_for_id(ms) ||
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
	ms->nstacks++;
	for (j = ch_of(ms, ms->nstacks - 1) & (ms->chash_cap - 1); ms->chash[j];
	     j = (j + 1) & (ms->chash_cap - 1))
		;
	ms->chash[j] = ms->nstacks;
	index_id(ms, ms->nstacks);
	return (int)(ms->nstacks - 1);
}

int model_stacks__add_weight(struct model_stacks *ms, uint32_t tid,
			     uint64_t first_seen_ns, uint32_t kind,
			     uint32_t stack, uint64_t count, uint64_t ns)
{
	struct model_stack_weight *w;
	size_t j;

	if (stack >= ms->nstacks || kind > GT_W_HOLD)
		return -EINVAL;
	if (reindex(&ms->whash, &ms->whash_cap, ms->nw, wh_of, ms))
		return -ENOMEM;
	for (j = weight_hash(tid, first_seen_ns, kind, stack) &
		 (ms->whash_cap - 1);
	     ms->whash[j]; j = (j + 1) & (ms->whash_cap - 1)) {
		w = &ms->w[ms->whash[j] - 1];
		if (w->tid == tid && w->first_seen_ns == first_seen_ns &&
		    w->kind == kind && w->stack == stack) {
			w->count += count;
			w->ns += ns;
			return 0;
		}
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
	ms->whash[j] = ++ms->nw;
	return 0;
}

void model_stacks__clear_weights(struct model_stacks *ms)
{
	ms->nw = 0;
	if (ms->whash)
		memset(ms->whash, 0, ms->whash_cap * sizeof(*ms->whash));
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
