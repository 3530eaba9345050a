// SPDX-License-Identifier: MIT
/*
 * test_trace_file.c - unit tests of the trace file (src/trace_file.c,
 * docs/trace-format.md): a hand-built model and records written and read
 * back field by field; every truncation of a small file, random byte
 * flips, a newer format, and hand-made corruptions give a clean one-line
 * error.
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
#include <zstd.h>
#include "model.h"
#include "trace_file.h"
#include "unit_helpers.h"

#define T0 5000000000ULL

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rng_next(void)
{
	/* splitmix64: fixed seed, same flips on every run */
	return splitmix64(&rng_state);
}

static const char *path_of(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", unit_tmpdir, name);
	return buf[k];
}

/* CRC-32 bit by bit: an independent check of the file's CRC. */
static uint32_t crc32_ref(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = 0xFFFFFFFF;

	for (size_t i = 0; i < n; i++) {
		c ^= b[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320 & -(c & 1));
	}
	return ~c;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len ? (size_t)len : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return buf;
}

static void spit(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
}

/* A model that uses every field, with awkward values. */
static void make_model(struct model *m)
{
	struct model_probe p = { 0 };
	struct gt_thread k;
	struct model_thread *t;

	model__init(m);
	m->pid = 4242;
	snprintf(m->exe, sizeof(m->exe), "/usr/bin/python3.12");
	snprintf(m->library, sizeof(m->library), "/opt/py/lib/libpython3.12.so.1.0");
	snprintf(m->python_version, sizeof(m->python_version), "3.12.1");
	m->t0_ns = T0;
	m->switch_interval_ns = 5000000;
	m->target_exited = true;
	m->acquisitions = 12345;
	m->holder_switches = 678;
	m->dropped_events = 3;
	m->exits_deferred = 1;
	m->launch_mode = true;
	m->exit_status = -7;

	snprintf(p.function, sizeof(p.function), "take_gil");
	snprintf(p.symbol, sizeof(p.symbol), "take_gil");
	snprintf(p.file, sizeof(p.file), "/opt/py/lib/libpython3.12.so.1.0");
	p.offset = 0x1a2b3c;
	p.address = 0xFFFFFFFFFFFFF000ULL; /* above INT64_MAX */
	snprintf(p.kind, sizeof(p.kind), "uprobe");
	snprintf(p.role, sizeof(p.role), "wait_begin");
	assert_int_equal(model__add_probe(m, &p), 0);
	memset(&p, 0, sizeof(p));
	snprintf(p.function, sizeof(p.function), "drop_gil");
	snprintf(p.symbol, sizeof(p.symbol), "PyEval_SaveThread");
	snprintf(p.file, sizeof(p.file), "/tmp/d\xe9j\xe0 vu/python"); /* latin-1 */
	p.offset = 77;
	p.address = 0x400077;
	snprintf(p.kind, sizeof(p.kind), "uprobe");
	snprintf(p.role, sizeof(p.role), "hold_end");
	p.inlined = true;
	snprintf(p.caller, sizeof(p.caller), "PyEval_SaveThread");
	assert_int_equal(model__add_probe(m, &p), 0);

	/* A thread that exited, every field set, a 16-byte comm. */
	memset(&k, 0, sizeof(k));
	k.tid = 4242;
	k.state = GT_EXITED;
	k.since_ns = T0 + 100;
	k.wait_begin_ns = T0 + 90;
	k.woke_ns = T0 + 95;
	k.tstate = 0x8000000000000001ULL;
	k.cyc_flags = GT_CYC_CLIPPED;
	k.first_seen_ns = T0 + 1;
	k.acquisitions = 99;
	k.waits_abandoned = 2;
	k.waits_abandoned_ns = 1234;
	k.waits_clipped = 1;
	k.inconsistent = 4;
	k.exit_ns = T0 + 900000;
	memcpy(k.comm, "0123456789abcdef", 16);
	for (int i = 0; i < 1000; i++) {
		dist_add(&k.wait, (uint64_t)i * 7919 % 100000);
		dist_add(&k.hold, (uint64_t)i * 104729 % 10000000);
	}
	/* Every bucket, the last one too. */
	for (int i = 0; i < GT_NBUCKETS; i++)
		k.hold.buckets[i] += (uint32_t)i + 1;
	k.hold.buckets[GT_NBUCKETS - 1] = UINT32_MAX;
	t = model__put_thread(m, &k, true);
	assert_non_null(t);
	snprintf(t->name, sizeof(t->name), "MainThread");

	/* Live threads: one holding, one waiting at the end; a reused TID
	 * with a name that is not UTF-8. */
	memset(&k, 0, sizeof(k));
	k.tid = 4243;
	k.state = GT_HOLDING;
	k.since_ns = T0 + 500;
	k.wait_begin_ns = T0 + 400;
	k.first_seen_ns = T0 + 2;
	dist_add(&k.wait, 100);
	memcpy(k.comm, "worker", 7);
	t = model__put_thread(m, &k, false);
	snprintf(t->name, sizeof(t->name), "w\xff\xfe-\xc3\xa9t\xc3\xa9");

	memset(&k, 0, sizeof(k));
	k.tid = 4243;
	k.state = GT_WAITING;
	k.since_ns = T0 + 700;
	k.wait_begin_ns = T0 + 700;
	k.first_seen_ns = T0 + 600;
	memcpy(k.comm, "\xe2\x82\xac", 4); /* UTF-8 euro sign */
	assert_non_null(model__put_thread(m, &k, false));
	model__close(m, T0 + 1000000);
}

static void assert_dist_equal(const struct gt_dist *a, const struct gt_dist *b)
{
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->sum_ns, b->sum_ns);
	assert_int_equal(a->max_ns, b->max_ns);
	assert_memory_equal(a->buckets, b->buckets, sizeof(a->buckets));
}

static void assert_model_equal(const struct model *a, const struct model *b)
{
	assert_int_equal(a->pid, b->pid);
	assert_string_equal(a->exe, b->exe);
	assert_string_equal(a->library, b->library);
	assert_string_equal(a->python_version, b->python_version);
	assert_string_equal(a->mode, b->mode);
	assert_int_equal(a->t0_ns, b->t0_ns);
	assert_int_equal(a->t_end_ns, b->t_end_ns);
	assert_int_equal(a->switch_interval_ns, b->switch_interval_ns);
	assert_int_equal(a->target_exited, b->target_exited);
	assert_int_equal(a->acquisitions, b->acquisitions);
	assert_int_equal(a->holder_switches, b->holder_switches);
	assert_int_equal(a->dropped_events, b->dropped_events);
	assert_int_equal(a->exits_deferred, b->exits_deferred);
	assert_int_equal(a->launch_mode, b->launch_mode);
	assert_int_equal(a->exit_status, b->exit_status);
	assert_int_equal(a->nprobes, b->nprobes);
	for (size_t i = 0; i < a->nprobes; i++) {
		const struct model_probe *p = &a->probes[i], *q = &b->probes[i];

		assert_string_equal(p->function, q->function);
		assert_string_equal(p->symbol, q->symbol);
		assert_string_equal(p->file, q->file);
		assert_int_equal(p->offset, q->offset);
		assert_int_equal(p->address, q->address);
		assert_string_equal(p->kind, q->kind);
		assert_string_equal(p->role, q->role);
		assert_int_equal(p->inlined, q->inlined);
		assert_string_equal(p->caller, q->caller);
	}
	assert_int_equal(a->nthreads, b->nthreads);
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct model_thread *s = &a->threads[i], *t = &b->threads[i];

		assert_int_equal(s->k.tid, t->k.tid);
		assert_int_equal(s->k.state, t->k.state);
		assert_int_equal(s->k.since_ns, t->k.since_ns);
		assert_int_equal(s->k.wait_begin_ns, t->k.wait_begin_ns);
		assert_int_equal(s->k.woke_ns, t->k.woke_ns);
		assert_int_equal(s->k.tstate, t->k.tstate);
		assert_int_equal(s->k.cyc_flags, t->k.cyc_flags);
		assert_int_equal(s->k.first_seen_ns, t->k.first_seen_ns);
		assert_int_equal(s->k.acquisitions, t->k.acquisitions);
		assert_int_equal(s->k.waits_abandoned, t->k.waits_abandoned);
		assert_int_equal(s->k.waits_abandoned_ns, t->k.waits_abandoned_ns);
		assert_int_equal(s->k.waits_clipped, t->k.waits_clipped);
		assert_int_equal(s->k.inconsistent, t->k.inconsistent);
		assert_int_equal(s->k.exit_ns, t->k.exit_ns);
		assert_memory_equal(s->k.comm, t->k.comm, GT_COMM_LEN);
		assert_dist_equal(&s->k.wait, &t->k.wait);
		assert_dist_equal(&s->k.hold, &t->k.hold);
		assert_string_equal(s->name, t->name);
		assert_int_equal(s->exited, t->exited);
		assert_int_equal(s->hold_ns, t->hold_ns);
		assert_int_equal(s->wait_ns, t->wait_ns);
		assert_int_equal(s->open_hold_ns, t->open_hold_ns);
		assert_int_equal(s->open_wait_ns, t->open_wait_ns);
	}
}

/* Records: @n cycles of a few threads, an abandoned wait, losses. */
struct recs {
	struct gt_rec_cycle *c;
	size_t n;
};

static int write_trace(const char *path, const struct model *m, size_t n,
		       struct recs *out)
{
	char err[512];
	struct trace_writer *w = trace_writer__open(path, err, sizeof(err));
	uint64_t t = T0;

	assert_non_null(w);
	if (out) {
		out->c = calloc(n ? n : 1, sizeof(*out->c));
		out->n = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct gt_rec_cycle c = {
			.type = i % 97 == 5 ? GT_REC_ABANDONED : GT_REC_CYCLE,
			.tid = 4242 + (uint32_t)(i % 3),
			.wait_begin_ns = t,
			.held_ns = t + rng_next() % 1000,
			.cpu = (uint32_t)(i & 1),
			.flags = (uint32_t)(i % 5 == 0 ? GT_CYC_INFERRED : 0),
		};

		c.release_ns = c.held_ns + rng_next() % 100000;
		t = c.release_ns;
		if (i % 50 == 7) {
			struct gt_rec_lost l = { .type = GT_REC_LOST, .count = i,
						 .first_ns = t, .last_ns = t + 9 };

			assert_int_equal(trace_writer__record(w, &l, sizeof(l)), 0);
			c.type = GT_REC_LOST; /* marks it in @out */
			c.tid = (uint32_t)i;
		} else {
			assert_int_equal(trace_writer__record(w, &c, sizeof(c)), 0);
		}
		if (out)
			out->c[i] = c;
		if (i % 1000 == 999)
			assert_int_equal(trace_writer__flush(w), 0);
	}
	return trace_writer__finish(w, m, err, sizeof(err));
}

struct check {
	const struct recs *want;
	size_t seen;
	int stop_at;
};

static int check_rec(const void *rec, size_t size, void *ctx)
{
	struct check *ck = ctx;
	const struct gt_rec_cycle *w = &ck->want->c[ck->seen];
	uint32_t type;

	memcpy(&type, rec, 4);
	assert_true(ck->seen < ck->want->n);
	if (w->type == GT_REC_LOST) {
		const struct gt_rec_lost *l = rec;

		assert_int_equal(type, GT_REC_LOST);
		assert_int_equal(size, sizeof(*l));
		assert_int_equal(l->count, w->tid);
		assert_int_equal(l->first_ns, w->release_ns);
		assert_int_equal(l->last_ns, w->release_ns + 9);
	} else {
		assert_int_equal(size, sizeof(*w));
		assert_memory_equal(rec, w, sizeof(*w));
	}
	ck->seen++;
	if (ck->stop_at && (int)ck->seen == ck->stop_at)
		return 42;
	return 0;
}

static void test_crc_reference(void **state)
{
	assert_int_equal(crc32_ref("123456789", 9), 0xCBF43926);
}

static void test_round_trip(void **state)
{
	const char *path = path_of("rt.gil");
	struct model m, back;
	struct recs recs;
	struct check ck = { .want = &recs };
	struct trace_reader *r;
	char err[512] = "";

	make_model(&m);
	/* Enough records for several frames (8192 a block, and flushes). */
	assert_int_equal(write_trace(path, &m, 30000, &recs), 0);
	r = trace_reader__open(path, err, sizeof(err));
	if (!r)
		fail_msg("%s", err);
	model__init(&back);
	assert_int_equal(trace_reader__model(r, &back, err, sizeof(err)), 0);
	assert_model_equal(&m, &back);
	assert_int_equal(trace_reader__foreach(r, check_rec, &ck, err,
					       sizeof(err)), 0);
	assert_int_equal(ck.seen, recs.n);
	/* Again (foreach restarts), stopping early: the callback's value. */
	ck.seen = 0;
	ck.stop_at = 12345;
	assert_int_equal(trace_reader__foreach(r, check_rec, &ck, err,
					       sizeof(err)), 42);
	assert_int_equal(ck.seen, 12345);
	/* The model can be read twice. */
	assert_int_equal(trace_reader__model(r, &back, err, sizeof(err)), 0);
	assert_model_equal(&m, &back);
	trace_reader__close(r);
	model__free(&back);
	model__free(&m);
	free(recs.c);
}

static void test_empty_trace(void **state)
{
	const char *path = path_of("empty.gil");
	struct model m, back;
	struct recs recs;
	struct check ck = { .want = &recs };
	struct trace_reader *r;
	char err[512];

	model__init(&m);
	assert_int_equal(write_trace(path, &m, 0, &recs), 0);
	r = trace_reader__open(path, err, sizeof(err));
	assert_non_null(r);
	model__init(&back);
	assert_int_equal(trace_reader__model(r, &back, err, sizeof(err)), 0);
	assert_model_equal(&m, &back);
	assert_int_equal(trace_reader__foreach(r, check_rec, &ck, err,
					       sizeof(err)), 0);
	assert_int_equal(ck.seen, 0);
	trace_reader__close(r);
	model__free(&back);
	free(recs.c);
}

static void test_writer_rejects(void **state)
{
	char err[512];
	struct trace_writer *w = trace_writer__open(path_of("rej.gil"), err,
						    sizeof(err));
	struct gt_rec_cycle c = { .type = GT_REC_CYCLE };
	struct gt_rec_thread_exit x = { .type = GT_REC_THREAD_EXIT };
	uint32_t bad = 99;

	assert_non_null(w);
	assert_int_equal(trace_writer__record(w, &c, sizeof(c) - 1), -EINVAL);
	assert_int_equal(trace_writer__record(w, &x, sizeof(x)), -EINVAL);
	assert_int_equal(trace_writer__record(w, &bad, sizeof(bad)), -EINVAL);
	assert_int_equal(trace_writer__record(w, &bad, 2), -EINVAL);
	assert_int_equal(trace_writer__record(w, &c, sizeof(c)), 0);
	trace_writer__abort(w);

	assert_null(trace_writer__open("/nonexistent-dir/x.gil", err,
				       sizeof(err)));
	assert_non_null(strstr(err, "cannot create /nonexistent-dir/x.gil"));
	/* A full disk: said at once, not at the end. */
	if (access("/dev/full", W_OK) == 0) {
		assert_null(trace_writer__open("/dev/full", err, sizeof(err)));
		assert_non_null(strstr(err, "cannot write /dev/full: No space left"));
	}
}

static int accept_any(const void *rec, size_t size, void *ctx)
{
	uint32_t type;

	assert_true(size >= 4);
	memcpy(&type, rec, 4);
	assert_true(type == GT_REC_CYCLE || type == GT_REC_ABANDONED ||
		    type == GT_REC_LOST);
	(*(size_t *)ctx)++;
	return 0;
}

/* Open, read the model and every record: 0, or a clean error. */
static int read_everything(const char *path, char *err, size_t errlen)
{
	struct trace_reader *r = trace_reader__open(path, err, errlen);
	struct model m;
	size_t n = 0;
	int rc;

	if (!r)
		return -1;
	model__init(&m);
	rc = trace_reader__model(r, &m, err, errlen);
	model__free(&m);
	if (!rc)
		rc = trace_reader__foreach(r, accept_any, &n, err, errlen);
	trace_reader__close(r);
	return rc;
}

static void assert_one_line(const char *err)
{
	assert_true(strncmp(err, "giltrace: ", 10) == 0);
	assert_null(strchr(err, '\n'));
	assert_true(strlen(err) > 20);
}

static void test_truncated_everywhere(void **state)
{
	const char *path = path_of("small.gil"), *cut = path_of("cut.gil");
	struct model m;
	uint8_t *buf;
	size_t n;
	char err[1024];

	make_model(&m);
	assert_int_equal(write_trace(path, &m, 40, NULL), 0);
	model__free(&m);
	buf = slurp(path, &n);
	assert_int_equal(read_everything(path, err, sizeof(err)), 0);
	for (size_t len = 0; len < n; len++) {
		spit(cut, buf, len);
		err[0] = '\0';
		assert_int_not_equal(read_everything(cut, err, sizeof(err)), 0);
		assert_one_line(err);
		if (!strstr(err, "truncated"))
			fail_msg("cut at %zu of %zu: %s", len, n, err);
	}
	free(buf);
}

static void test_byte_flips(void **state)
{
	const char *path = path_of("flip-src.gil"), *flip = path_of("flip.gil");
	struct model m;
	uint8_t *buf, *copy;
	size_t n, ok = 0, bad = 0;
	char err[1024];

	make_model(&m);
	assert_int_equal(write_trace(path, &m, 300, NULL), 0);
	model__free(&m);
	buf = slurp(path, &n);
	copy = malloc(n);
	for (int iter = 0; iter < 3000; iter++) {
		int flips = 1 + (int)(rng_next() % 4);

		memcpy(copy, buf, n);
		for (int k = 0; k < flips; k++) {
			size_t at = rng_next() % n;

			/* Half of them in the header, record stream start or
			 * trailer, where the structure is. */
			if (iter & 1)
				at = rng_next() % 2 ? rng_next() % 64 :
						      n - 1 - rng_next() % 48;
			copy[at] ^= (uint8_t)(1 + rng_next() % 255);
		}
		spit(flip, copy, n);
		err[0] = '\0';
		if (read_everything(flip, err, sizeof(err)) == 0) {
			ok++;
		} else {
			assert_one_line(err);
			bad++;
		}
	}
	/* Checksums catch nearly every flip. */
	assert_true(bad > ok);
	free(buf);
	free(copy);
}

static void test_newer_version(void **state)
{
	const char *path = path_of("v3.gil");
	struct model m;
	uint8_t *buf;
	size_t n;
	char err[1024];

	model__init(&m);
	assert_int_equal(write_trace(path, &m, 3, NULL), 0);
	buf = slurp(path, &n);
	buf[8] = 3; /* version, little-endian u32 */
	spit(path, buf, n);
	assert_null(trace_reader__open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "was written by a newer giltrace (format 3)"));
	assert_one_line(err);
	/* Cut as well: the version is still what the user must hear. */
	spit(path, buf, 40);
	assert_null(trace_reader__open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "newer giltrace"));
	free(buf);
}

static void test_not_a_trace(void **state)
{
	const char *path = path_of("notrace.gil");
	char err[1024];

	spit(path, "{\"version\": \"giltrace/1\"}\n", 26);
	assert_null(trace_reader__open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "is not a giltrace trace file"));
	assert_null(trace_reader__open(path_of("missing.gil"), err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	assert_null(trace_reader__open(unit_tmpdir, err, sizeof(err)));
	assert_one_line(err);
}

/* Replace the metadata of @path with @json (CRC recomputed). */
static void rewrite_meta(const char *path, const char *json)
{
	size_t n, len = strlen(json);
	uint8_t *buf = slurp(path, &n), *out, *tr;
	uint64_t off = 0;

	for (int i = 0; i < 8; i++)
		off |= (uint64_t)buf[n - 32 + i] << (8 * i);
	out = malloc(off + len + 32);
	memcpy(out, buf, off);
	memcpy(out + off, json, len);
	tr = out + off + len;
	memset(tr, 0, 32);
	for (int i = 0; i < 8; i++) {
		tr[i] = (uint8_t)(off >> (8 * i));
		tr[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		tr[16 + i] = (uint8_t)(crc32_ref(json, len) >> (8 * i));
	memcpy(tr + 24, "GILTEND!", 8);
	spit(path, out, off + len + 32);
	free(buf);
	free(out);
}

static char *meta_of(const char *path)
{
	size_t n;
	uint8_t *buf = slurp(path, &n);
	uint64_t off = 0, len = 0;
	char *s;

	for (int i = 0; i < 8; i++) {
		off |= (uint64_t)buf[n - 32 + i] << (8 * i);
		len |= (uint64_t)buf[n - 24 + i] << (8 * i);
	}
	s = malloc(len + 1);
	memcpy(s, buf + off, len);
	s[len] = '\0';
	free(buf);
	return s;
}

/* @json with the first @from replaced by @to. */
static char *replace(const char *json, const char *from, const char *to)
{
	const char *at = strstr(json, from);
	char *out;

	if (!at)
		fail_msg("'%s' not in the metadata", from);
	out = malloc(strlen(json) + strlen(to) + 1);
	memcpy(out, json, (size_t)(at - json));
	strcpy(out + (at - json), to);
	strcat(out, at + strlen(from));
	return out;
}

static void test_bad_metadata(void **state)
{
	static const struct {
		const char *from, *to, *says;
	} cases[] = {
		{ "\"tid\":4242", "\"tid\":-1", "threads[0].tid is not an unsigned integer" },
		{ "\"tid\":4242", "\"tid\":4294967296", "threads[0].tid is out of range" },
		{ "\"state\":4", "\"state\":5", "threads[0].state is out of range" },
		{ "\"tid\":4242", "\"tid\":\"4242x\"", "threads[0].tid is not an unsigned integer" },
		{ "\"t0_ns\":", "\"t0_nz\":", "time.t0_ns is missing" },
		{ "\"pid\":4242", "\"pid\":4242.5", "target.pid is not an integer" },
		{ "\"exited\":true", "\"exited\":1", "threads[0].exited is not a boolean" },
		{ "\"buckets\":[[", "\"buckets\":[[9999,1],[", "threads[0].wait.buckets has an entry out of range" },
		{ "\"buckets\":[[", "\"buckets\":[[608,1],[", "threads[0].wait.buckets has an entry out of range" },
		{ "\"buckets\":[[", "\"buckets\":[[0,4294967296],[", "threads[0].wait.buckets has an entry out of range" },
		{ "\"buckets\":[[", "\"buckets\":[[1],[", "threads[0].wait.buckets has an entry that is not" },
		{ "\"name\":\"MainThread\"", "\"name\":\"" "0123456789012345678901234567890123456789012345678901234567890123" "\"", "threads[0].name is too long" },
		{ "\"name\":\"MainThread\"", "\"name\":\"a\\u0000b\"", "not valid JSON" },
		{ "\"name\":\"MainThread\"", "\"name\":{\"hex\":\"4g\"}", "threads[0].name has a bad hex form" },
		{ "\"name\":\"MainThread\"", "\"name\":{\"hex\":\"0041\"}", "threads[0].name has a bad hex form" },
		{ "\"format\":\"giltrace-trace/1\"", "\"format\":\"x\"", "format is not" },
		{ "\"records\":", "\"records\":9,\"records\":", "duplicate" },
		{ "{", "[", "not valid JSON" },
		/* jansson quotes the input: still one line */
		{ "\"format\":\"giltrace-trace/1\"", "\"format\":\"x\\\n\"", "not valid JSON" },
		{ "\"probes\":[", "\"probes\":[7,", "probes[0] is not an object" },
		{ "\"t_end_ns\":", "\"t_end_ns\":1,\"x\":", "t_end_ns is before t0_ns" },
	};
	const char *path = path_of("meta.gil");
	struct model m;
	char *orig, err[1024];

	make_model(&m);
	assert_int_equal(write_trace(path, &m, 10, NULL), 0);
	model__free(&m);
	orig = meta_of(path);
	/* A rewrite of the same text reads back. */
	rewrite_meta(path, orig);
	assert_int_equal(read_everything(path, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *j = replace(orig, cases[i].from, cases[i].to);

		rewrite_meta(path, j);
		err[0] = '\0';
		assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
		assert_one_line(err);
		if (!strstr(err, "is corrupt at byte") ||
		    !strstr(err, cases[i].says))
			fail_msg("case %zu: %s", i, err);
		free(j);
		/* Restore. */
		rewrite_meta(path, orig);
	}
	/* A u64 above INT64_MAX is a decimal string; a bad one is refused. */
	{
		char *j = replace(orig, "\"address\":\"18446744073709547520\"",
				  "\"address\":\"18446744073709551616\"");

		rewrite_meta(path, j);
		assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "probes[0].address is not an unsigned"));
		free(j);
	}
	/* The CRC guards the metadata. */
	{
		size_t n;
		uint8_t *buf;

		rewrite_meta(path, orig);
		buf = slurp(path, &n);
		buf[n - 40] ^= 1;
		spit(path, buf, n);
		assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "CRC-32 does not match"));
		free(buf);
	}
	free(orig);
}

/* A file whose one frame holds @block as is; the metadata says @records
 * records in one frame. */
static void write_raw_block(const char *path, const uint8_t *block, size_t n,
			    unsigned records)
{
	size_t cap = ZSTD_compressBound(n), c, ml;
	uint8_t *out = malloc(32 + cap), tr[32] = { 0 };
	char rf[64], *meta, *k;
	struct model m;
	uint64_t off;
	FILE *f;

	model__init(&m);
	assert_int_equal(write_trace(path, &m, 0, NULL), 0);
	meta = meta_of(path);
	snprintf(rf, sizeof(rf), "\"records\":%u,\"frames\":1", records);
	k = replace(meta, "\"records\":0,\"frames\":0", rf);
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fread(out, 1, 32, f), 32);
	fclose(f);
	c = ZSTD_compress(out + 32, cap, block, n, 1);
	assert_false(ZSTD_isError(c));
	off = 32 + c;
	ml = strlen(k);
	for (int i = 0; i < 8; i++) {
		tr[i] = (uint8_t)(off >> (8 * i));
		tr[8 + i] = (uint8_t)((uint64_t)ml >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		tr[16 + i] = (uint8_t)(crc32_ref(k, ml) >> (8 * i));
	memcpy(tr + 24, "GILTEND!", 8);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(out, 1, off, f);
	fwrite(k, 1, ml, f);
	fwrite(tr, 1, 32, f);
	fclose(f);
	free(meta);
	free(k);
	free(out);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_bad_records(void **state)
{
	const char *path = path_of("rec.gil");
	uint8_t blk[256] = { 0 };
	char err[1024];

	/* A good cycle record: reads back. */
	put32(blk, 40);
	put32(blk + 4, GT_REC_CYCLE);
	write_raw_block(path, blk, 44, 1);
	assert_int_equal(read_everything(path, err, sizeof(err)), 0);
	/* Count mismatch with the metadata. */
	write_raw_block(path, blk, 44, 2);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "1 records in 1 frames, the metadata says 2"));
	/* Unknown type. */
	put32(blk + 4, 77);
	write_raw_block(path, blk, 44, 1);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "is corrupt at byte 32: unknown record type 77"));
	/* Thread-exit records are not part of the stream. */
	put32(blk + 4, GT_REC_THREAD_EXIT);
	write_raw_block(path, blk, 44, 1);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "unknown record type 1"));
	/* Wrong size for its type. */
	put32(blk, 32);
	put32(blk + 4, GT_REC_CYCLE);
	write_raw_block(path, blk, 36, 1);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "has 32 bytes, not 40"));
	/* Longer than the block. */
	put32(blk, 4000000000u);
	write_raw_block(path, blk, 44, 1);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "overruns the block"));
	/* A cut record header. */
	write_raw_block(path, blk, 6, 1);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "a record is cut"));
}

static void test_bad_frame(void **state)
{
	const char *path = path_of("frame.gil");
	struct model m;
	uint8_t *buf;
	size_t n;
	char err[1024];

	model__init(&m);
	assert_int_equal(write_trace(path, &m, 20, NULL), 0);
	buf = slurp(path, &n);
	buf[32] ^= 0xFF; /* the zstd magic */
	spit(path, buf, n);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "is corrupt at byte 32: not a zstd frame"));
	buf[32] ^= 0xFF;
	buf[60] ^= 0x10; /* inside the compressed data */
	spit(path, buf, n);
	assert_int_not_equal(read_everything(path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "is corrupt at byte 32: "));
	assert_one_line(err);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_reference),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_trace),
		cmocka_unit_test(test_writer_rejects),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_byte_flips),
		cmocka_unit_test(test_newer_version),
		cmocka_unit_test(test_not_a_trace),
		cmocka_unit_test(test_bad_metadata),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_bad_frame),
	};

	return cmocka_run_group_tests(tests, unit_tmpdir_setup, unit_tmpdir_teardown);
}
