// SPDX-License-Identifier: MIT
/*
 * export_pprof.c - the stacks of the trace model as a pprof profile
 * (github.com/google/pprof, proto/profile.proto), gzip-compressed as
 * `go tool pprof`, Pyroscope and Parca read it.
 *
 * Sample types, in this order (pprof's convention: a count first, so
 * `-mean` divides by it):
 *   waits/count        waits that ended with the stack (the weight's count)
 *   wait/nanoseconds   time waited for the GIL with the stack
 *   holds/count        hold pieces with the stack (a hold the holder
 *                      sampler split counts once per piece)
 *   hold/nanoseconds   time the GIL was held with the stack
 * default_sample_type "wait"; period_type wait/nanoseconds, period 1 (the
 * times are measured, not sampled).
 *
 * One Sample per (thread, stack) with all four values (0 for a kind the
 * thread never had with that stack), labels "thread" (its name) and "tid"
 * (num). Location ids leaf (innermost) first, as profile.proto requires;
 * the model keeps stacks root first. One Location per model frame, one
 * Line each; Functions shared by the frames of one function (frames differ
 * by line). Function names:
 *   Python  "module:function" (pprof's default granularity merges
 *           functions by name alone, so a bare "run" of ten files would be
 *           one line); system_name the interpreter's own name, filename
 *           the file, Line.line the line
 *   native  "function [module]", a Mapping per module (has_functions)
 *   marks   the mark itself ("[truncated]", "[unknown]", ...)
 * Mapping 1 is the traced executable, so pprof's "File:" header names it.
 *
 * time_nanos is the trace's start in wall-clock time when the profile is
 * written within a minute of the trace's end (live tracing); 0 otherwise,
 * since a trace file keeps only CLOCK_MONOTONIC times. duration_nanos is
 * the interval traced.
 *
 * The message is packed straight into zlib's deflate (gzip header), so no
 * serialized copy is held in memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include "export.h"
#include "model.h"
#include "model_stacks.h"
#include "oa_index.h"
#include "profile.pb-c.h"
#include "report.h"

typedef Perftools__Profiles__Profile PProfile;
typedef Perftools__Profiles__ValueType PValueType;
typedef Perftools__Profiles__Sample PSample;
typedef Perftools__Profiles__Label PLabel;
typedef Perftools__Profiles__Mapping PMapping;
typedef Perftools__Profiles__Location PLocation;
typedef Perftools__Profiles__Line PLine;
typedef Perftools__Profiles__Function PFunction;

/* Sample values, in sample_type order. */
enum { V_WAITS, V_WAIT_NS, V_HOLDS, V_HOLD_NS, NV };

static const char *const vtype[NV][2] = {
	[V_WAITS] = { "waits", "count" },
	[V_WAIT_NS] = { "wait", "nanoseconds" },
	[V_HOLDS] = { "holds", "count" },
	[V_HOLD_NS] = { "hold", "nanoseconds" },
};

/* ---- interning: string -> dense index --------------------------------- */

struct intern {
	char **v;
	size_t n, cap;
	struct oa_index idx; /* v's entries by content */
};

static uint64_t intern_hash(const void *t, size_t e)
{
	return oa_hash_str(0, ((const struct intern *)t)->v[e]);
}

static bool intern_is(const void *t, size_t e, const void *key)
{
	return !strcmp(((const struct intern *)t)->v[e], key);
}

static const struct oa_ops intern_ops = { intern_hash, intern_is, NULL };

/* Index of @s in @t, added when new; -ENOMEM. */
static int64_t intern(struct intern *t, const char *s)
{
	size_t j;
	char *c;

	if (oa_reserve(&t->idx, t->n, &intern_ops, t))
		return -ENOMEM;
	j = oa_probe(&t->idx, oa_hash_str(0, s), &intern_ops, t, s);
	if (oa_entry(&t->idx, j) != OA_NONE)
		return (int64_t)oa_entry(&t->idx, j);
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		char **v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	c = strdup(s);
	if (!c)
		return -ENOMEM;
	t->v[t->n] = c;
	oa_set(&t->idx, j, t->n);
	return (int64_t)t->n++;
}

static void intern_free(struct intern *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	oa_free(&t->idx);
}

/* ---- the profile being built ------------------------------------------ */

struct psample {
	uint32_t stack;   /* index into ms->stacks */
	uint32_t thread;  /* index into the selected threads */
	int64_t v[NV];
};

struct thread_labels {
	PLabel l[2];
	PLabel *lp[2];
};

struct pp {
	const struct model *m;
	const struct model_stacks *ms;
	int rc;                  /* first error (sticky): -ENOMEM */

	struct intern str;       /* the string table */
	struct intern fkeys;     /* "name sys file" string ids -> function */
	struct intern mkeys;     /* module -> mapping */

	PFunction *fn;
	size_t nfn, capfn;
	PMapping *map;
	size_t nmap, capmap;
	PLocation *loc;
	PLine *line, **linep;    /* one Line per location */
	size_t nloc;
	uint64_t *loc_of_frame;  /* model frame -> location id, 0 unused */
	uint64_t **stack_locs;   /* model stack -> location ids, leaf first */
	uint32_t *stack_nlocs;   /* how many (frame indices out of range left out) */

	struct psample *s;
	size_t ns, caps;
	int32_t *slot;           /* stack -> sample of the current thread, -1 */
	struct thread_labels *tl;
};

static int64_t str_id(struct pp *p, const char *s)
{
	int64_t id;

	if (p->rc)
		return 0;
	id = intern(&p->str, s);
	if (id < 0) {
		p->rc = (int)id;
		return 0;
	}
	return id;
}

/* Grow @*v (element size @sz, capacity @*cap) to hold @need; sticky rc. */
static bool grow(struct pp *p, void **v, size_t *cap, size_t need, size_t sz)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (p->rc)
		return false;
	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	q = realloc(*v, n * sz);
	if (!q) {
		p->rc = -ENOMEM;
		return false;
	}
	*v = q;
	*cap = n;
	return true;
}

/* Mapping id (1-based) of ELF @file, added when new; 0 on error. */
static uint64_t mapping_id(struct pp *p, const char *file)
{
	int64_t k;
	PMapping *mp;

	if (p->rc)
		return 0;
	k = intern(&p->mkeys, file);
	if (k < 0) {
		p->rc = (int)k;
		return 0;
	}
	if ((size_t)k < p->nmap)
		return (uint64_t)k + 1;
	if (!grow(p, (void **)&p->map, &p->capmap, p->nmap + 1, sizeof(*p->map)))
		return 0;
	mp = &p->map[p->nmap++];
	perftools__profiles__mapping__init(mp);
	mp->id = p->nmap;
	mp->filename = str_id(p, file);
	mp->has_functions = 1;
	return mp->id;
}

/* Function id (1-based) of (name, system name, file), added when new. */
static uint64_t function_id(struct pp *p, const char *name, const char *sys,
			    const char *file)
{
	int64_t n = str_id(p, name), s = str_id(p, sys), f = str_id(p, file), k;
	char key[64];
	PFunction *fp;

	if (p->rc)
		return 0;
	snprintf(key, sizeof(key), "%lld %lld %lld", (long long)n,
		 (long long)s, (long long)f);
	k = intern(&p->fkeys, key);
	if (k < 0) {
		p->rc = (int)k;
		return 0;
	}
	if ((size_t)k < p->nfn)
		return (uint64_t)k + 1;
	if (!grow(p, (void **)&p->fn, &p->capfn, p->nfn + 1, sizeof(*p->fn)))
		return 0;
	fp = &p->fn[p->nfn++];
	perftools__profiles__function__init(fp);
	fp->id = p->nfn;
	fp->name = n;
	fp->system_name = s;
	fp->filename = f;
	return fp->id;
}

/* The location of model frame @fi, made on first use. */
static uint64_t location_id(struct pp *p, uint32_t fi)
{
	const struct model_frame *f = &p->ms->frames[fi];
	char name[2048], mod[256];
	uint64_t mid = 0, fid;
	PLocation *l;
	PLine *ln;

	if (p->loc_of_frame[fi] || p->rc)
		return p->loc_of_frame[fi];
	switch (f->kind) {
	case MF_PYTHON:
		model_stacks__module(f, mod, sizeof(mod));
		snprintf(name, sizeof(name), "%s%s%s", mod, mod[0] ? ":" : "",
			 f->function);
		fid = function_id(p, name, f->function, f->file);
		break;
	case MF_NATIVE:
		model_stacks__label(f, name, sizeof(name));
		fid = function_id(p, name, f->function, f->file);
		if (f->module[0])
			mid = mapping_id(p, f->module);
		break;
	default:
		fid = function_id(p, f->function, f->function, "");
		break;
	}
	if (p->rc)
		return 0;
	/* p->loc, p->line are sized for every frame up front. */
	l = &p->loc[p->nloc];
	ln = &p->line[p->nloc];
	perftools__profiles__location__init(l);
	perftools__profiles__line__init(ln);
	ln->function_id = fid;
	ln->line = f->line > 0 ? f->line : 0;
	p->linep[p->nloc] = ln;
	l->id = ++p->nloc;
	l->mapping_id = mid;
	l->n_line = 1;
	l->line = &p->linep[p->nloc - 1];
	p->loc_of_frame[fi] = l->id;
	return l->id;
}

/* Location ids of model stack @si, leaf first (made on first use). */
static void stack_locations(struct pp *p, uint32_t si)
{
	const struct model_stack *st = &p->ms->stacks[si];
	uint32_t n = 0;
	uint64_t *v;

	if (p->stack_locs[si] || p->rc)
		return;
	v = calloc(st->nframes ? st->nframes : 1, sizeof(*v));
	if (!v) {
		p->rc = -ENOMEM;
		return;
	}
	for (uint32_t j = st->nframes; j-- > 0 && !p->rc;)
		if (st->frames[j] < p->ms->nframes)
			v[n++] = location_id(p, st->frames[j]);
	p->stack_locs[si] = v;
	p->stack_nlocs[si] = n;
}

/* Add thread @ti's weights of @kind to its samples. */
static void thread_kind(struct pp *p, const struct model_thread *t,
			uint32_t ti, uint32_t kind)
{
	const struct model_stack_weight **w;
	int vc = kind == GT_W_HOLD ? V_HOLDS : V_WAITS;
	ssize_t n;

	n = model_stacks__thread(p->ms, t->k.tid, t->k.first_seen_ns, kind, &w);
	if (n < 0) {
		p->rc = (int)n;
		return;
	}
	for (ssize_t i = 0; i < n && !p->rc; i++) {
		uint32_t si = w[i]->stack;
		struct psample *s;

		if (si >= p->ms->nstacks || (!w[i]->count && !w[i]->ns))
			continue;
		if (p->slot[si] < 0) {
			if (p->ns >= INT32_MAX) {
				p->rc = -E2BIG;
				break;
			}
			if (!grow(p, (void **)&p->s, &p->caps, p->ns + 1, sizeof(*p->s)))
				break;
			stack_locations(p, si);
			p->slot[si] = (int32_t)p->ns;
			s = &p->s[p->ns++];
			memset(s, 0, sizeof(*s));
			s->stack = si;
			s->thread = ti;
		}
		s = &p->s[p->slot[si]];
		s->v[vc] += (int64_t)w[i]->count;
		s->v[vc + 1] += (int64_t)w[i]->ns;
	}
	free(w);
}

static void thread_samples(struct pp *p, const struct model_thread *t,
			   uint32_t ti)
{
	struct thread_labels *tl = &p->tl[ti];
	size_t first = p->ns;

	perftools__profiles__label__init(&tl->l[0]);
	perftools__profiles__label__init(&tl->l[1]);
	tl->l[0].key = str_id(p, "thread");
	tl->l[0].str = str_id(p, t->name[0] ? t->name : "thread");
	tl->l[1].key = str_id(p, "tid");
	tl->l[1].num = t->k.tid;
	tl->lp[0] = &tl->l[0];
	tl->lp[1] = &tl->l[1];
	thread_kind(p, t, ti, GT_W_WAIT);
	thread_kind(p, t, ti, GT_W_HOLD);
	for (size_t i = first; i < p->ns; i++)
		p->slot[p->s[i].stack] = -1;
}

/* ---- output: protobuf-c packs into deflate, deflate writes the file --- */

struct gz_sink {
	ProtobufCBuffer base;
	z_stream z;
	FILE *out;
	int rc;
	unsigned char buf[64 * 1024];
};

static void gz_run(struct gz_sink *g, const uint8_t *data, size_t len, int flush)
{
	int zr;

	g->z.next_in = (Bytef *)data;
	g->z.avail_in = (uInt)len;
	do {
		size_t have;

		g->z.next_out = g->buf;
		g->z.avail_out = sizeof(g->buf);
		zr = deflate(&g->z, flush);
		if (zr == Z_STREAM_ERROR) {
			g->rc = -EIO;
			return;
		}
		have = sizeof(g->buf) - g->z.avail_out;
		if (have && fwrite(g->buf, 1, have, g->out) != have) {
			g->rc = -EIO;
			return;
		}
	} while (g->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
}

static void gz_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct gz_sink *g = (struct gz_sink *)b;

	/* avail_in is a uInt: feed huge appends in pieces. */
	while (len && !g->rc) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		gz_run(g, data, n, Z_NO_FLUSH);
		data += n;
		len -= n;
	}
}

static int write_gz(FILE *out, const PProfile *prof)
{
	struct gz_sink *g = calloc(1, sizeof(*g));
	int rc;

	if (!g)
		return -ENOMEM;
	g->base.append = gz_append;
	g->out = out;
	/* windowBits 15 + 16: a gzip header and trailer. */
	if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		free(g);
		return -ENOMEM;
	}
	protobuf_c_message_pack_to_buffer(&prof->base, &g->base);
	if (!g->rc)
		gz_run(g, NULL, 0, Z_FINISH);
	deflateEnd(&g->z);
	rc = g->rc;
	free(g);
	if (!rc && (fflush(out) || ferror(out)))
		rc = -EIO;
	return rc;
}

/* ---- assembling the message ------------------------------------------- */

/* Wall-clock ns of the trace's start, when it ended less than a minute ago
 * on this boot's CLOCK_MONOTONIC; else 0 (unknown). */
static int64_t start_wall_ns(const struct model *m)
{
	struct timespec mono, real;
	uint64_t now, wall;

	if (clock_gettime(CLOCK_MONOTONIC, &mono) ||
	    clock_gettime(CLOCK_REALTIME, &real) || !m->t0_ns)
		return 0;
	now = (uint64_t)mono.tv_sec * 1000000000ULL + (uint64_t)mono.tv_nsec;
	wall = (uint64_t)real.tv_sec * 1000000000ULL + (uint64_t)real.tv_nsec;
	if (m->t_end_ns > now || now - m->t_end_ns > 60000000000ULL ||
	    m->t0_ns > now || now - m->t0_ns > wall)
		return 0;
	return (int64_t)(wall - (now - m->t0_ns));
}

static void add_comment(struct pp *p, int64_t *v, size_t *n, const char *fmt,
			unsigned long long x)
{
	char buf[256];

	snprintf(buf, sizeof(buf), fmt, x);
	v[(*n)++] = str_id(p, buf);
}

/* Comments (`go tool pprof -comments`): what was traced, what was lost. */
static size_t comments(struct pp *p, int64_t *v)
{
	const struct model *m = p->m;
	char buf[PATH_MAX + 128];
	size_t n = 0;

	snprintf(buf, sizeof(buf), "giltrace %s: PID %d, Python %s, %s",
		 GILTRACE_VERSION, (int)m->pid,
		 m->python_version[0] ? m->python_version : "?", m->exe);
	v[n++] = str_id(p, buf);
	if (p->ms->stacks_lost)
		add_comment(p, v, &n, "%llu stacks lost (ring buffer full): their "
			    "time is under [stack lost]", p->ms->stacks_lost);
	if (p->ms->weights_lost)
		add_comment(p, v, &n, "%llu stack weight updates lost (map full)",
			    p->ms->weights_lost);
	if (p->ms->frames_unresolved)
		add_comment(p, v, &n, "%llu frames could not be named",
			    p->ms->frames_unresolved);
	return n;
}

static int build_and_write(struct pp *p, FILE *out,
			   const struct model_thread **th, size_t nth)
{
	PValueType vt[NV], *vtp[NV], period;
	PProfile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	PSample *smp = NULL, **smpp = NULL;
	PLocation **locp = NULL;
	PFunction **fnp = NULL;
	PMapping **mapp = NULL;
	int64_t com[4];
	int rc;

	str_id(p, ""); /* string_table[0] */
	for (int i = 0; i < NV; i++) {
		perftools__profiles__value_type__init(&vt[i]);
		vt[i].type = str_id(p, vtype[i][0]);
		vt[i].unit = str_id(p, vtype[i][1]);
		vtp[i] = &vt[i];
	}
	perftools__profiles__value_type__init(&period);
	period.type = vt[V_WAIT_NS].type;
	period.unit = vt[V_WAIT_NS].unit;
	if (p->m->exe[0])
		mapping_id(p, p->m->exe);
	for (size_t i = 0; i < nth && !p->rc; i++)
		thread_samples(p, th[i], (uint32_t)i);
	prof.n_comment = comments(p, com);
	prof.comment = com;
	if (p->rc)
		return p->rc;

	smp = calloc(p->ns ? p->ns : 1, sizeof(*smp));
	smpp = calloc(p->ns ? p->ns : 1, sizeof(*smpp));
	locp = calloc(p->nloc ? p->nloc : 1, sizeof(*locp));
	fnp = calloc(p->nfn ? p->nfn : 1, sizeof(*fnp));
	mapp = calloc(p->nmap ? p->nmap : 1, sizeof(*mapp));
	if (!smp || !smpp || !locp || !fnp || !mapp) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->ns; i++) {
		const struct psample *s = &p->s[i];

		perftools__profiles__sample__init(&smp[i]);
		smp[i].n_location_id = p->stack_nlocs[s->stack];
		smp[i].location_id = p->stack_locs[s->stack];
		smp[i].n_value = NV;
		smp[i].value = (int64_t *)s->v;
		smp[i].n_label = 2;
		smp[i].label = p->tl[s->thread].lp;
		smpp[i] = &smp[i];
	}
	for (size_t i = 0; i < p->nloc; i++)
		locp[i] = &p->loc[i];
	for (size_t i = 0; i < p->nfn; i++)
		fnp[i] = &p->fn[i];
	for (size_t i = 0; i < p->nmap; i++)
		mapp[i] = &p->map[i];

	prof.n_sample_type = NV;
	prof.sample_type = vtp;
	prof.n_sample = p->ns;
	prof.sample = smpp;
	prof.n_mapping = p->nmap;
	prof.mapping = mapp;
	prof.n_location = p->nloc;
	prof.location = locp;
	prof.n_function = p->nfn;
	prof.function = fnp;
	prof.n_string_table = p->str.n;
	prof.string_table = p->str.v;
	prof.time_nanos = start_wall_ns(p->m);
	prof.duration_nanos = (int64_t)model__interval_ns(p->m);
	prof.period_type = &period;
	prof.period = 1;
	prof.default_sample_type = vt[V_WAIT_NS].type;
	rc = write_gz(out, &prof);
out:
	free(smp);
	free(smpp);
	free(locp);
	free(fnp);
	free(mapp);
	return rc;
}

static void pp_free(struct pp *p)
{
	if (p->stack_locs)
		for (size_t i = 0; i < p->ms->nstacks; i++)
			free(p->stack_locs[i]);
	free(p->stack_locs);
	free(p->stack_nlocs);
	intern_free(&p->str);
	intern_free(&p->fkeys);
	intern_free(&p->mkeys);
	free(p->fn);
	free(p->map);
	free(p->loc);
	free(p->line);
	free(p->linep);
	free(p->loc_of_frame);
	free(p->s);
	free(p->slot);
	free(p->tl);
}

static int pp_alloc(struct pp *p, size_t nth)
{
	size_t nf = p->ms->nframes ? p->ms->nframes : 1;
	size_t nst = p->ms->nstacks ? p->ms->nstacks : 1;

	p->loc = calloc(nf, sizeof(*p->loc));
	p->line = calloc(nf, sizeof(*p->line));
	p->linep = calloc(nf, sizeof(*p->linep));
	p->loc_of_frame = calloc(nf, sizeof(*p->loc_of_frame));
	p->stack_locs = calloc(nst, sizeof(*p->stack_locs));
	p->stack_nlocs = calloc(nst, sizeof(*p->stack_nlocs));
	p->slot = malloc(nst * sizeof(*p->slot));
	p->tl = calloc(nth ? nth : 1, sizeof(*p->tl));
	if (!p->loc || !p->line || !p->linep || !p->loc_of_frame ||
	    !p->stack_locs || !p->stack_nlocs || !p->slot || !p->tl)
		return -ENOMEM;
	memset(p->slot, 0xff, nst * sizeof(*p->slot));
	return 0;
}

int export_pprof(FILE *out, const struct model *m, const struct report_opts *o,
		 char *err, size_t errlen)
{
	const struct model_thread **th = NULL;
	struct pp p = { .m = m, .ms = m->stacks };
	ssize_t n;
	int rc;

	if (!m->stacks) {
		snprintf(err, errlen, "giltrace: this trace has no stacks: record "
			 "it with --stacks");
		return -ENODATA;
	}
	if (m->stacks->nstacks > INT32_MAX) {
		snprintf(err, errlen, "giltrace: too many stacks for --pprof");
		return -E2BIG;
	}
	n = report__threads(m, o, &th);
	rc = n < 0 ? (int)n : pp_alloc(&p, (size_t)n);
	if (!rc)
		rc = build_and_write(&p, out, th, (size_t)n);
	free(th);
	pp_free(&p);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "giltrace: out of memory writing the pprof "
			 "profile");
	else if (rc == -E2BIG)
		snprintf(err, errlen, "giltrace: too many stacks for --pprof");
	else if (rc)
		snprintf(err, errlen, "giltrace: cannot write the pprof profile: %s",
			 strerror(-rc));
	return rc;
}
