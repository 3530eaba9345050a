// SPDX-License-Identifier: MIT
/*
 * trace_file.c - the giltrace trace file, format 2 (docs/trace-format.md):
 *
 *   header    32 bytes: "GILTRACE", u32 version, u32 flags, u32 header
 *             length, u32 reserved, u64 reserved
 *   records   zstd frames, each holding one block of length-prefixed
 *             records (u32 length, then the record's fields, little-endian)
 *   metadata  JSON (jansson): the closed aggregate model
 *   trailer   32 bytes: u64 metadata offset, u64 metadata length, u32 CRC-32
 *             of the metadata, u32 reserved, "GILTEND!"
 *
 * Every integer is little-endian; records are encoded field by field, so
 * the file does not depend on the host's struct layout. The writer
 * compresses a block every BLOCK_RECORDS records, when the block reaches
 * BLOCK_TARGET bytes, every FLUSH_NS of tracing and on trace_writer__flush:
 * a crash leaves a header and whole frames, readable with zstd.
 *
 * The reader trusts nothing: sizes are checked against the file's size and
 * fixed bounds before anything is allocated, frames against zstd's own
 * checksum, the metadata against its CRC, and every metadata field against
 * its type and range.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <zstd.h>
#include "model.h"
#include "model_stacks.h"
#include "trace_file.h"

#define FORMAT_VERSION 2 /* 2: cycles may carry stack ids; metadata "stacks" */
#define HDR_LEN 32
#define TRAILER_LEN 32
static const char MAGIC[8] = { 'G', 'I', 'L', 'T', 'R', 'A', 'C', 'E' };
static const char END_MAGIC[8] = { 'G', 'I', 'L', 'T', 'E', 'N', 'D', '!' };

/* Encoded sizes of the records (u32 type included, length prefix not). */
#define REC_CYCLE_LEN 40        /* a cycle without stack ids */
#define REC_CYCLE_STACKS_LEN 56 /* with them (format 2, --stacks) */
#define REC_LOST_LEN 32
#define REC_HOLD_STACK_LEN 24
#define REC_MAX_LEN 56

/* Blocks: the writer's targets, and the reader's hard limit. */
#define BLOCK_RECORDS 8192
#define BLOCK_TARGET (256 * 1024)
#define BLOCK_MAX (1024 * 1024)
#define FLUSH_NS 1000000000ULL
#define ZSTD_LEVEL 3

/* Metadata bounds (far above any real trace). */
#define META_MAX (1ULL << 30)
#define MAX_PROBES 4096
#define STACK_ITEMS_MAX (1 << 24) /* frames, stacks, weights */
#define STACK_DEPTH_MAX 4096
#define STACK_STR_MAX 4096        /* bytes of a frame's function, file or module */
#define MAX_THREADS (1 << 20)

/* ---- little-endian helpers and CRC-32 --------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's crc32),
 * four bits at a time. */
static uint32_t crc32_ieee(const void *buf, size_t len)
{
	static const uint32_t tab[16] = {
		0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
		0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
		0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
		0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
	};
	const uint8_t *p = buf;
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		c = (c >> 4) ^ tab[c & 15];
		c = (c >> 4) ^ tab[c & 15];
	}
	return c ^ 0xFFFFFFFFu;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 0 or -errno; -ENODATA when the file ends before @len bytes. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void rerr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void rerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* One line, whatever the path or the JSON parser quoted. */
	for (char *p = err; errlen && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* ---- records ---------------------------------------------------------- */

/* The encoded length of a record of @type; a cycle's may also be
 * REC_CYCLE_STACKS_LEN (rec_len_ok). */
static size_t rec_encoded_len(uint32_t type)
{
	switch (type) {
	case GT_REC_CYCLE:
	case GT_REC_ABANDONED:
		return REC_CYCLE_LEN;
	case GT_REC_LOST:
		return REC_LOST_LEN;
	case GT_REC_HOLD_STACK:
		return REC_HOLD_STACK_LEN;
	default:
		return 0;
	}
}

static size_t rec_struct_size(uint32_t type)
{
	switch (type) {
	case GT_REC_LOST:
		return sizeof(struct gt_rec_lost);
	case GT_REC_HOLD_STACK:
		return sizeof(struct gt_rec_hold_stack);
	default:
		return sizeof(struct gt_rec_cycle);
	}
}

static void encode_hold_stack(uint8_t *p, const struct gt_rec_hold_stack *h)
{
	put_le32(p, h->type);
	put_le32(p + 4, h->tid);
	put_le64(p + 8, h->release_ns);
	put_le64(p + 16, h->stack);
}

static void decode_hold_stack(const uint8_t *p, struct gt_rec_hold_stack *h)
{
	memset(h, 0, sizeof(*h));
	h->type = get_le32(p);
	h->tid = get_le32(p + 4);
	h->release_ns = get_le64(p + 8);
	h->stack = get_le64(p + 16);
}

static bool rec_len_ok(uint32_t type, size_t len)
{
	return len == rec_encoded_len(type) ||
	       (len == REC_CYCLE_STACKS_LEN &&
		(type == GT_REC_CYCLE || type == GT_REC_ABANDONED));
}

static bool cycle_has_stacks(const struct gt_rec_cycle *c)
{
	return c->wait_stack || c->hold_stack;
}

static void encode_cycle(uint8_t *p, const struct gt_rec_cycle *c)
{
	put_le32(p, c->type);
	put_le32(p + 4, c->tid);
	put_le64(p + 8, c->wait_begin_ns);
	put_le64(p + 16, c->held_ns);
	put_le64(p + 24, c->release_ns);
	put_le32(p + 32, c->cpu);
	put_le32(p + 36, c->flags);
	if (cycle_has_stacks(c)) {
		put_le64(p + 40, c->wait_stack);
		put_le64(p + 48, c->hold_stack);
	}
}

static void decode_cycle(const uint8_t *p, size_t len, struct gt_rec_cycle *c)
{
	memset(c, 0, sizeof(*c));
	c->type = get_le32(p);
	c->tid = get_le32(p + 4);
	c->wait_begin_ns = get_le64(p + 8);
	c->held_ns = get_le64(p + 16);
	c->release_ns = get_le64(p + 24);
	c->cpu = get_le32(p + 32);
	c->flags = get_le32(p + 36);
	if (len >= REC_CYCLE_STACKS_LEN) {
		c->wait_stack = get_le64(p + 40);
		c->hold_stack = get_le64(p + 48);
	}
}

static void encode_lost(uint8_t *p, const struct gt_rec_lost *l)
{
	put_le32(p, l->type);
	put_le32(p + 4, 0);
	put_le64(p + 8, l->count);
	put_le64(p + 16, l->first_ns);
	put_le64(p + 24, l->last_ns);
}

static void decode_lost(const uint8_t *p, struct gt_rec_lost *l)
{
	memset(l, 0, sizeof(*l));
	l->type = get_le32(p);
	l->count = get_le64(p + 8);
	l->first_ns = get_le64(p + 16);
	l->last_ns = get_le64(p + 24);
}

/* ---- writer ----------------------------------------------------------- */

struct trace_writer {
	int fd;
	char *path;
	ZSTD_CCtx *cctx;
	uint8_t *blk;        /* block being filled (uncompressed) */
	size_t blen;
	uint32_t brecs;
	uint8_t *cbuf;       /* compressed frame */
	size_t ccap;
	uint64_t off;        /* bytes written so far */
	uint64_t records, frames;
	uint64_t last_flush_ns;
	int error;           /* sticky: first write error */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void writer_free(struct trace_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	ZSTD_freeCCtx(w->cctx);
	free(w->blk);
	free(w->cbuf);
	free(w->path);
	free(w);
}

struct trace_writer *trace_writer__open(const char *path, char *err,
					size_t errlen)
{
	struct trace_writer *w = calloc(1, sizeof(*w));
	uint8_t hdr[HDR_LEN] = { 0 };
	int rc;

	if (!w)
		goto nomem;
	w->fd = -1;
	w->path = strdup(path);
	w->ccap = ZSTD_compressBound(BLOCK_MAX);
	w->blk = malloc(BLOCK_MAX);
	w->cbuf = malloc(w->ccap);
	w->cctx = ZSTD_createCCtx();
	if (!w->path || !w->blk || !w->cbuf || !w->cctx)
		goto nomem;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel,
						ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1))) {
		rerr(err, errlen, "giltrace: cannot set up zstd compression "
			 "(libzstd too old?)");
		writer_free(w);
		return NULL;
	}
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rerr(err, errlen, "giltrace: cannot create %s: %s", path,
			 strerror(errno));
		writer_free(w);
		return NULL;
	}
	memcpy(hdr, MAGIC, 8);
	put_le32(hdr + 8, FORMAT_VERSION);
	put_le32(hdr + 12, 0);
	put_le32(hdr + 16, HDR_LEN);
	rc = write_all(w->fd, hdr, sizeof(hdr));
	if (rc) {
		rerr(err, errlen, "giltrace: cannot write %s: %s", path,
			 strerror(-rc));
		writer_free(w);
		return NULL;
	}
	w->off = HDR_LEN;
	w->last_flush_ns = mono_ns();
	return w;
nomem:
	rerr(err, errlen, "giltrace: out of memory");
	if (w)
		writer_free(w);
	return NULL;
}

int trace_writer__flush(struct trace_writer *w)
{
	size_t n;
	int rc;

	if (w->error)
		return w->error;
	w->last_flush_ns = mono_ns();
	if (!w->blen)
		return 0;
	n = ZSTD_compress2(w->cctx, w->cbuf, w->ccap, w->blk, w->blen);
	if (ZSTD_isError(n))
		return w->error = -EIO;
	rc = write_all(w->fd, w->cbuf, n);
	if (rc)
		return w->error = rc;
	w->off += n;
	w->frames++;
	w->blen = 0;
	w->brecs = 0;
	return 0;
}

int trace_writer__record(struct trace_writer *w, const void *rec, size_t size)
{
	uint32_t type;
	size_t len;
	uint8_t *p;

	if (w->error)
		return w->error;
	if (size < sizeof(type))
		return -EINVAL;
	memcpy(&type, rec, sizeof(type));
	len = rec_encoded_len(type);
	if (!len)
		return -EINVAL;
	if (size != rec_struct_size(type))
		return -EINVAL;
	if (w->blen + 4 + REC_MAX_LEN > BLOCK_TARGET && trace_writer__flush(w))
		return w->error;
	p = w->blk + w->blen;
	if (type == GT_REC_CYCLE || type == GT_REC_ABANDONED) {
		struct gt_rec_cycle c;

		memcpy(&c, rec, sizeof(c));
		if (cycle_has_stacks(&c))
			len = REC_CYCLE_STACKS_LEN;
	}
	put_le32(p, (uint32_t)len);
	if (type == GT_REC_LOST) {
		struct gt_rec_lost l;

		memcpy(&l, rec, sizeof(l));
		encode_lost(p + 4, &l);
	} else if (type == GT_REC_HOLD_STACK) {
		struct gt_rec_hold_stack h;

		memcpy(&h, rec, sizeof(h));
		encode_hold_stack(p + 4, &h);
	} else {
		struct gt_rec_cycle c;

		memcpy(&c, rec, sizeof(c));
		encode_cycle(p + 4, &c);
	}
	w->blen += 4 + len;
	w->brecs++;
	w->records++;
	if (w->brecs >= BLOCK_RECORDS || mono_ns() - w->last_flush_ns >= FLUSH_NS)
		return trace_writer__flush(w);
	return 0;
}

/* ---- metadata: model -> JSON ------------------------------------------ */

/* u64 as a JSON integer; above INT64_MAX (jansson's json_int_t) as a
 * decimal string. */
static json_t *ju64(uint64_t v)
{
	char buf[24];

	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_string(buf);
}

/* A C string, possibly not UTF-8 (thread names, paths): a JSON string when
 * it is valid UTF-8, else {"hex": "..."} of its bytes. */
static json_t *jbytes(const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	json_t *j = json_stringn(s, len), *o;
	char *hex;

	if (j)
		return j;
	hex = malloc(2 * len + 1);
	if (!hex)
		return NULL;
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
	o = json_object();
	if (o && json_object_set_new(o, "hex", json_string(hex))) {
		json_decref(o);
		o = NULL;
	}
	free(hex);
	return o;
}

/* json_object_set_new that remembers a failure in *@bad. */
static void jset(json_t *o, const char *key, json_t *v, bool *bad)
{
	if (!v || json_object_set_new(o, key, v))
		*bad = true;
}

static json_t *dist_json(const struct gt_dist *d, bool *bad)
{
	json_t *o = json_object(), *b = json_array();

	if (!o || !b) {
		json_decref(o);
		json_decref(b);
		*bad = true;
		return NULL;
	}
	jset(o, "count", ju64(d->count), bad);
	jset(o, "sum_ns", ju64(d->sum_ns), bad);
	jset(o, "max_ns", ju64(d->max_ns), bad);
	for (uint32_t i = 0; i < GT_NBUCKETS; i++) {
		json_t *pair;

		if (!d->buckets[i])
			continue;
		pair = json_pack("[II]", (json_int_t)i, (json_int_t)d->buckets[i]);
		if (!pair || json_array_append_new(b, pair))
			*bad = true;
	}
	jset(o, "buckets", b, bad);
	return o;
}

static json_t *thread_json(const struct model_thread *t, bool *bad)
{
	const struct gt_thread *k = &t->k;
	json_t *o = json_object();

	if (!o) {
		*bad = true;
		return NULL;
	}
	jset(o, "tid", ju64(k->tid), bad);
	jset(o, "name", jbytes(t->name, sizeof(t->name)), bad);
	jset(o, "comm", jbytes(k->comm, sizeof(k->comm)), bad);
	jset(o, "exited", json_boolean(t->exited), bad);
	jset(o, "state", ju64(k->state), bad);
	jset(o, "since_ns", ju64(k->since_ns), bad);
	jset(o, "wait_begin_ns", ju64(k->wait_begin_ns), bad);
	jset(o, "woke_ns", ju64(k->woke_ns), bad);
	jset(o, "tstate", ju64(k->tstate), bad);
	jset(o, "cyc_flags", ju64(k->cyc_flags), bad);
	jset(o, "first_seen_ns", ju64(k->first_seen_ns), bad);
	jset(o, "exit_ns", ju64(k->exit_ns), bad);
	jset(o, "acquisitions", ju64(k->acquisitions), bad);
	jset(o, "waits_abandoned", ju64(k->waits_abandoned), bad);
	jset(o, "waits_abandoned_ns", ju64(k->waits_abandoned_ns), bad);
	jset(o, "waits_clipped", ju64(k->waits_clipped), bad);
	jset(o, "inconsistent", ju64(k->inconsistent), bad);
	jset(o, "hold_ns", ju64(t->hold_ns), bad);
	jset(o, "wait_ns", ju64(t->wait_ns), bad);
	jset(o, "open_hold_ns", ju64(t->open_hold_ns), bad);
	jset(o, "open_wait_ns", ju64(t->open_wait_ns), bad);
	jset(o, "wait", dist_json(&k->wait, bad), bad);
	jset(o, "hold", dist_json(&k->hold, bad), bad);
	return o;
}

static json_t *probe_json(const struct model_probe *p, bool *bad)
{
	json_t *o = json_object();

	if (!o) {
		*bad = true;
		return NULL;
	}
	jset(o, "function", jbytes(p->function, sizeof(p->function)), bad);
	jset(o, "symbol", jbytes(p->symbol, sizeof(p->symbol)), bad);
	jset(o, "file", jbytes(p->file, sizeof(p->file)), bad);
	jset(o, "offset", ju64(p->offset), bad);
	jset(o, "address", ju64(p->address), bad);
	jset(o, "kind", jbytes(p->kind, sizeof(p->kind)), bad);
	jset(o, "role", jbytes(p->role, sizeof(p->role)), bad);
	jset(o, "inlined", json_boolean(p->inlined), bad);
	jset(o, "caller", jbytes(p->caller, sizeof(p->caller)), bad);
	return o;
}

/*
 * The stacks part of the model (model_stacks.h), compact:
 *   frames:  [kind, function, file, line, module], ...
 *   stacks:  [id, flags, [frame index, ... root first]], ...
 *   weights: [tid, first_seen_ns, kind, stack index, count, ns], ...
 *   aliases: [id, stack index], ... (other ids of the same stack)
 */
static json_t *stacks_json(const struct model_stacks *ms, bool *bad)
{
	json_t *o = json_object(), *fa = json_array(), *sa = json_array(),
	       *wa = json_array(), *aa;

	if (!o || !fa || !sa || !wa) {
		json_decref(o);
		json_decref(fa);
		json_decref(sa);
		json_decref(wa);
		*bad = true;
		return NULL;
	}
	jset(o, "max_depth", ju64(ms->max_depth), bad);
	jset(o, "samples", ju64(ms->samples), bad);
	jset(o, "samples_skipped", ju64(ms->samples_skipped), bad);
	jset(o, "walks_interrupted", ju64(ms->walks_interrupted), bad);
	jset(o, "weights_lost", ju64(ms->weights_lost), bad);
	jset(o, "stacks_lost", ju64(ms->stacks_lost), bad);
	jset(o, "frames_unresolved", ju64(ms->frames_unresolved), bad);
	jset(o, "native_failed", ju64(ms->native_failed), bad);
	for (size_t i = 0; i < ms->nframes && !*bad; i++) {
		const struct model_frame *f = &ms->frames[i];
		json_t *e = json_array();

		if (!e || json_array_append_new(e, ju64(f->kind)) ||
		    json_array_append_new(e, jbytes(f->function, SIZE_MAX)) ||
		    json_array_append_new(e, jbytes(f->file, SIZE_MAX)) ||
		    json_array_append_new(e, json_integer(f->line)) ||
		    json_array_append_new(e, jbytes(f->module, SIZE_MAX)) ||
		    json_array_append_new(fa, e))
			*bad = true;
	}
	for (size_t i = 0; i < ms->nstacks && !*bad; i++) {
		const struct model_stack *st = &ms->stacks[i];
		json_t *e = json_array(), *fr = json_array();

		for (uint32_t j = 0; fr && j < st->nframes; j++)
			if (json_array_append_new(fr, ju64(st->frames[j])))
				*bad = true;
		if (!e || !fr || json_array_append_new(e, ju64(st->id)) ||
		    json_array_append_new(e, ju64(st->flags)) ||
		    json_array_append_new(e, fr) ||
		    json_array_append_new(sa, e))
			*bad = true;
	}
	for (size_t i = 0; i < ms->nw && !*bad; i++) {
		const struct model_stack_weight *w = &ms->w[i];
		json_t *e = json_array();

		if (!e || json_array_append_new(e, ju64(w->tid)) ||
		    json_array_append_new(e, ju64(w->first_seen_ns)) ||
		    json_array_append_new(e, ju64(w->kind)) ||
		    json_array_append_new(e, ju64(w->stack)) ||
		    json_array_append_new(e, ju64(w->count)) ||
		    json_array_append_new(e, ju64(w->ns)) ||
		    json_array_append_new(wa, e))
			*bad = true;
	}
	jset(o, "frames", fa, bad);
	jset(o, "stacks", sa, bad);
	jset(o, "weights", wa, bad);
	aa = json_array();
	for (size_t i = 0; aa && i < ms->naliases && !*bad; i++) {
		json_t *e = json_pack("[oo]", ju64(ms->aliases[i].id),
				      ju64(ms->aliases[i].stack));

		if (!e || json_array_append_new(aa, e))
			*bad = true;
	}
	jset(o, "aliases", aa, bad);
	return o;
}

static json_t *model_json(const struct model *m, uint64_t records,
			  uint64_t frames)
{
	json_t *root = json_object(), *tg = json_object(), *tm = json_object(),
	       *ct = json_object(), *pa = json_array(), *ta = json_array();
	bool bad = !root || !tg || !tm || !ct || !pa || !ta;

	if (bad)
		goto out;
	jset(root, "format", json_string("giltrace-trace/1"), &bad);
	jset(root, "giltrace_version", json_string(GILTRACE_VERSION), &bad);
	jset(root, "records", ju64(records), &bad);
	jset(root, "frames", ju64(frames), &bad);

	jset(tg, "pid", json_integer(m->pid), &bad);
	jset(tg, "exe", jbytes(m->exe, sizeof(m->exe)), &bad);
	jset(tg, "library", jbytes(m->library, sizeof(m->library)), &bad);
	jset(tg, "python_version",
	     jbytes(m->python_version, sizeof(m->python_version)), &bad);
	jset(tg, "mode", jbytes(m->mode, sizeof(m->mode)), &bad);
	jset(tg, "launch_mode", json_boolean(m->launch_mode), &bad);
	jset(tg, "exit_status", json_integer(m->exit_status), &bad);
	jset(tg, "target_exited", json_boolean(m->target_exited), &bad);

	jset(tm, "t0_ns", ju64(m->t0_ns), &bad);
	jset(tm, "t_end_ns", ju64(m->t_end_ns), &bad);
	jset(tm, "switch_interval_ns", ju64(m->switch_interval_ns), &bad);

	jset(ct, "acquisitions", ju64(m->acquisitions), &bad);
	jset(ct, "holder_switches", ju64(m->holder_switches), &bad);
	jset(ct, "dropped_events", ju64(m->dropped_events), &bad);
	jset(ct, "exits_deferred", ju64(m->exits_deferred), &bad);

	for (size_t i = 0; i < m->nprobes && !bad; i++) {
		json_t *p = probe_json(&m->probes[i], &bad);

		if (!p || json_array_append_new(pa, p))
			bad = true;
	}
	for (size_t i = 0; i < m->nthreads && !bad; i++) {
		json_t *t = thread_json(&m->threads[i], &bad);

		if (!t || json_array_append_new(ta, t))
			bad = true;
	}
	jset(root, "target", tg, &bad);
	jset(root, "time", tm, &bad);
	jset(root, "counters", ct, &bad);
	jset(root, "probes", pa, &bad);
	jset(root, "threads", ta, &bad);
	if (m->stacks)
		jset(root, "stacks", stacks_json(m->stacks, &bad), &bad);
	return bad ? (json_decref(root), NULL) : root;
out:
	json_decref(root);
	json_decref(tg);
	json_decref(tm);
	json_decref(ct);
	json_decref(pa);
	json_decref(ta);
	return NULL;
}

int trace_writer__finish(struct trace_writer *w, const struct model *m,
			 char *err, size_t errlen)
{
	uint8_t tr[TRAILER_LEN] = { 0 };
	char *meta = NULL;
	json_t *root;
	size_t len;
	int rc;

	rc = trace_writer__flush(w);
	if (rc)
		goto fail;
	root = model_json(m, w->records, w->frames);
	if (root)
		meta = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!meta) {
		writer_free(w);
		rerr(err, errlen, "giltrace: out of memory writing the "
			 "trace metadata");
		return -ENOMEM;
	}
	len = strlen(meta);
	put_le64(tr, w->off);
	put_le64(tr + 8, len);
	put_le32(tr + 16, crc32_ieee(meta, len));
	memcpy(tr + 24, END_MAGIC, 8);
	rc = write_all(w->fd, meta, len);
	if (!rc)
		rc = write_all(w->fd, tr, sizeof(tr));
	free(meta);
	if (close(w->fd) && !rc)
		rc = -errno;
	w->fd = -1;
	if (rc)
		goto fail;
	writer_free(w);
	return 0;
fail:
	rerr(err, errlen, "giltrace: cannot write %s: %s", w->path,
		 strerror(-rc));
	writer_free(w);
	return rc;
}

void trace_writer__abort(struct trace_writer *w)
{
	if (w)
		writer_free(w);
}

/* ---- reader ------------------------------------------------------------ */

struct trace_reader {
	int fd;
	char *path;
	uint64_t size;
	uint64_t meta_off, meta_len;
	uint64_t records, frames; /* as the metadata says */
	struct model m;
};

#define CORRUPT(r, at, fmt, ...)                                             \
	rerr(err, errlen, "giltrace: %s is corrupt at byte %" PRIu64 ": " fmt, \
	     (r)->path, (uint64_t)(at), ##__VA_ARGS__)

/* Metadata field checks. @where names the field for the message. */
struct jctx {
	struct trace_reader *r;
	char *err;
	size_t errlen;
	char where[96];
};

static int jfail(struct jctx *c, const char *key, const char *what)
{
	char *err = c->err;
	size_t errlen = c->errlen;

	CORRUPT(c->r, c->r->meta_off, "metadata: %s%s%s%s%s", c->where,
		c->where[0] && key[0] ? "." : "", key,
		c->where[0] || key[0] ? " " : "", what);
	return -EINVAL;
}

static int parse_u64(json_t *v, uint64_t *out)
{
	const char *s;
	char *end;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	/* Values above INT64_MAX are written as decimal strings. */
	s = json_string_value(v);
	if (json_string_length(v) < 1 || json_string_length(v) > 20 ||
	    strspn(s, "0123456789") != json_string_length(v))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static int get_u64(struct jctx *c, json_t *o, const char *key, uint64_t max,
		   uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return jfail(c, key, "is missing");
	if (parse_u64(v, out))
		return jfail(c, key, "is not an unsigned integer");
	if (*out > max)
		return jfail(c, key, "is out of range");
	return 0;
}

static int get_u32(struct jctx *c, json_t *o, const char *key, uint32_t max,
		   uint32_t *out)
{
	uint64_t v;
	int rc = get_u64(c, o, key, max, &v);

	if (!rc)
		*out = (uint32_t)v;
	return rc;
}

/* The same for the kernel's __u64 (unsigned long long) fields. */
static int get_k64(struct jctx *c, json_t *o, const char *key, __u64 *out)
{
	uint64_t v;
	int rc = get_u64(c, o, key, UINT64_MAX, &v);

	if (!rc)
		*out = v;
	return rc;
}

static int get_int(struct jctx *c, json_t *o, const char *key, int64_t lo,
		   int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return jfail(c, key, "is missing");
	if (!json_is_integer(v))
		return jfail(c, key, "is not an integer");
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return jfail(c, key, "is out of range");
	return 0;
}

static int get_bool(struct jctx *c, json_t *o, const char *key, bool *out)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return jfail(c, key, "is missing");
	if (!json_is_boolean(v))
		return jfail(c, key, "is not a boolean");
	*out = json_is_true(v);
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* A string of at most @size - 1 bytes, no NUL inside, into @buf (zero
 * filled). Accepts what jbytes() writes. @size 0 would be a bug. */
static int get_str(struct jctx *c, json_t *o, const char *key, char *buf,
		   size_t size)
{
	json_t *v = json_object_get(o, key), *h;
	const char *s;
	size_t len;

	if (!v)
		return jfail(c, key, "is missing");
	memset(buf, 0, size);
	if (json_is_string(v)) {
		s = json_string_value(v);
		len = json_string_length(v);
		if (len >= size)
			return jfail(c, key, "is too long");
		if (memchr(s, '\0', len))
			return jfail(c, key, "holds a NUL character");
		memcpy(buf, s, len);
		return 0;
	}
	h = json_is_object(v) ? json_object_get(v, "hex") : NULL;
	if (!json_is_string(h))
		return jfail(c, key, "is not a string");
	s = json_string_value(h);
	len = json_string_length(h);
	if (len % 2 || len / 2 >= size)
		return jfail(c, key, "has a bad hex form");
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0 || (hi | lo) == 0)
			return jfail(c, key, "has a bad hex form");
		buf[i] = (char)(hi << 4 | lo);
	}
	return 0;
}

static json_t *get_obj(struct jctx *c, json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		jfail(c, key, "is missing");
	else if (!json_is_object(v))
		jfail(c, key, "is not an object");
	else
		return v;
	return NULL;
}

static json_t *get_arr(struct jctx *c, json_t *o, const char *key,
		       size_t max)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		jfail(c, key, "is missing");
	else if (!json_is_array(v))
		jfail(c, key, "is not an array");
	else if (json_array_size(v) > max)
		jfail(c, key, "has too many entries");
	else
		return v;
	return NULL;
}

static int parse_dist(struct jctx *c, json_t *o, const char *key,
		      struct gt_dist *d)
{
	char saved[sizeof(c->where)];
	json_t *dj, *b, *pair;
	size_t i;
	int64_t prev = -1;
	int rc;

	dj = get_obj(c, o, key);
	if (!dj)
		return -EINVAL;
	memcpy(saved, c->where, sizeof(saved));
	snprintf(c->where + strlen(c->where),
		 sizeof(c->where) - strlen(c->where), ".%s", key);
	rc = get_k64(c, dj, "count", &d->count) ?:
	     get_k64(c, dj, "sum_ns", &d->sum_ns) ?:
	     get_k64(c, dj, "max_ns", &d->max_ns);
	if (rc)
		return rc;
	b = get_arr(c, dj, "buckets", GT_NBUCKETS);
	if (!b)
		return -EINVAL;
	json_array_foreach(b, i, pair) {
		json_t *ij = json_array_get(pair, 0), *nj = json_array_get(pair, 1);
		uint64_t idx, n;

		if (!json_is_array(pair) || json_array_size(pair) != 2 ||
		    parse_u64(ij, &idx) || parse_u64(nj, &n))
			return jfail(c, "buckets", "has an entry that is not "
				     "[index, count]");
		if (idx >= GT_NBUCKETS || (int64_t)idx <= prev || n > UINT32_MAX)
			return jfail(c, "buckets", "has an entry out of range "
				     "or out of order");
		d->buckets[idx] = (uint32_t)n;
		prev = (int64_t)idx;
	}
	memcpy(c->where, saved, sizeof(saved));
	return 0;
}

static int parse_thread(struct jctx *c, json_t *o, struct model_thread *t)
{
	struct gt_thread *k = &t->k;
	int rc;

	if (!json_is_object(o))
		return jfail(c, "", "is not an object");
	rc = get_u32(c, o, "tid", UINT32_MAX, &k->tid) ?:
	     get_str(c, o, "name", t->name, sizeof(t->name)) ?:
	     get_bool(c, o, "exited", &t->exited) ?:
	     get_u32(c, o, "state", GT_EXITED, &k->state) ?:
	     get_k64(c, o, "since_ns", &k->since_ns) ?:
	     get_k64(c, o, "wait_begin_ns", &k->wait_begin_ns) ?:
	     get_k64(c, o, "woke_ns", &k->woke_ns) ?:
	     get_k64(c, o, "tstate", &k->tstate) ?:
	     get_u32(c, o, "cyc_flags", UINT32_MAX, &k->cyc_flags) ?:
	     get_k64(c, o, "first_seen_ns", &k->first_seen_ns) ?:
	     get_k64(c, o, "exit_ns", &k->exit_ns) ?:
	     get_k64(c, o, "acquisitions", &k->acquisitions) ?:
	     get_k64(c, o, "waits_abandoned", &k->waits_abandoned) ?:
	     get_k64(c, o, "waits_abandoned_ns", &k->waits_abandoned_ns) ?:
	     get_k64(c, o, "waits_clipped", &k->waits_clipped) ?:
	     get_k64(c, o, "inconsistent", &k->inconsistent) ?:
	     get_u64(c, o, "hold_ns", UINT64_MAX, &t->hold_ns) ?:
	     get_u64(c, o, "wait_ns", UINT64_MAX, &t->wait_ns) ?:
	     get_u64(c, o, "open_hold_ns", UINT64_MAX, &t->open_hold_ns) ?:
	     get_u64(c, o, "open_wait_ns", UINT64_MAX, &t->open_wait_ns) ?:
	     parse_dist(c, o, "wait", &k->wait) ?:
	     parse_dist(c, o, "hold", &k->hold);
	if (rc)
		return rc;
	/* comm is char[16] and may use all 16 bytes (no NUL). */
	{
		char comm[GT_COMM_LEN + 1];

		rc = get_str(c, o, "comm", comm, sizeof(comm));
		if (rc)
			return rc;
		memcpy(k->comm, comm, GT_COMM_LEN);
	}
	return 0;
}

static int parse_probe(struct jctx *c, json_t *o, struct model_probe *p)
{
	if (!json_is_object(o))
		return jfail(c, "", "is not an object");
	return get_str(c, o, "function", p->function, sizeof(p->function)) ?:
	       get_str(c, o, "symbol", p->symbol, sizeof(p->symbol)) ?:
	       get_str(c, o, "file", p->file, sizeof(p->file)) ?:
	       get_u64(c, o, "offset", UINT64_MAX, &p->offset) ?:
	       get_u64(c, o, "address", UINT64_MAX, &p->address) ?:
	       get_str(c, o, "kind", p->kind, sizeof(p->kind)) ?:
	       get_str(c, o, "role", p->role, sizeof(p->role)) ?:
	       get_bool(c, o, "inlined", &p->inlined) ?:
	       get_str(c, o, "caller", p->caller, sizeof(p->caller));
}

static int parse_target(struct jctx *c, json_t *root, struct model *m)
{
	json_t *tg = get_obj(c, root, "target");
	int64_t pid, status;
	int rc;

	if (!tg)
		return -EINVAL;
	snprintf(c->where, sizeof(c->where), "target");
	rc = get_int(c, tg, "pid", 0, INT32_MAX, &pid) ?:
	     get_str(c, tg, "exe", m->exe, sizeof(m->exe)) ?:
	     get_str(c, tg, "library", m->library, sizeof(m->library)) ?:
	     get_str(c, tg, "python_version", m->python_version,
		     sizeof(m->python_version)) ?:
	     get_str(c, tg, "mode", m->mode, sizeof(m->mode)) ?:
	     get_bool(c, tg, "launch_mode", &m->launch_mode) ?:
	     get_int(c, tg, "exit_status", INT_MIN, INT_MAX, &status) ?:
	     get_bool(c, tg, "target_exited", &m->target_exited);
	if (rc)
		return rc;
	m->pid = (pid_t)pid;
	m->exit_status = (int)status;
	return 0;
}

static int parse_time_counters(struct jctx *c, json_t *root, struct model *m)
{
	json_t *tm = get_obj(c, root, "time"), *ct;
	int rc;

	if (!tm)
		return -EINVAL;
	snprintf(c->where, sizeof(c->where), "time");
	rc = get_u64(c, tm, "t0_ns", UINT64_MAX, &m->t0_ns) ?:
	     get_u64(c, tm, "t_end_ns", UINT64_MAX, &m->t_end_ns) ?:
	     get_u64(c, tm, "switch_interval_ns", UINT64_MAX,
		     &m->switch_interval_ns);
	if (rc)
		return rc;
	if (m->t_end_ns < m->t0_ns)
		return jfail(c, "t_end_ns", "is before t0_ns");
	c->where[0] = '\0';
	ct = get_obj(c, root, "counters");
	if (!ct)
		return -EINVAL;
	snprintf(c->where, sizeof(c->where), "counters");
	return get_u64(c, ct, "acquisitions", UINT64_MAX, &m->acquisitions) ?:
	       get_u64(c, ct, "holder_switches", UINT64_MAX,
		       &m->holder_switches) ?:
	       get_u64(c, ct, "dropped_events", UINT64_MAX, &m->dropped_events) ?:
	       get_u64(c, ct, "exits_deferred", UINT64_MAX, &m->exits_deferred);
}

static int parse_lists(struct jctx *c, json_t *root, struct model *m)
{
	json_t *pa, *ta, *v;
	size_t i;
	int rc;

	c->where[0] = '\0';
	pa = get_arr(c, root, "probes", MAX_PROBES);
	ta = pa ? get_arr(c, root, "threads", MAX_THREADS) : NULL;
	if (!ta)
		return -EINVAL;
	if (json_array_size(pa)) {
		m->probes = calloc(json_array_size(pa), sizeof(*m->probes));
		if (!m->probes)
			return -ENOMEM;
	}
	json_array_foreach(pa, i, v) {
		snprintf(c->where, sizeof(c->where), "probes[%zu]", i);
		rc = parse_probe(c, v, &m->probes[i]);
		if (rc)
			return rc;
		m->nprobes++;
	}
	if (json_array_size(ta)) {
		m->threads = calloc(json_array_size(ta), sizeof(*m->threads));
		if (!m->threads)
			return -ENOMEM;
		m->cap = json_array_size(ta);
	}
	json_array_foreach(ta, i, v) {
		snprintf(c->where, sizeof(c->where), "threads[%zu]", i);
		rc = parse_thread(c, v, &m->threads[i]);
		if (rc)
			return rc;
		m->nthreads++;
	}
	return 0;
}

/* Element @i of array @a as an unsigned integer <= @max. */
static int arr_u64(struct jctx *c, json_t *a, size_t i, uint64_t max,
		   uint64_t *out)
{
	char key[24];

	snprintf(key, sizeof(key), "[%zu]", i);
	if (parse_u64(json_array_get(a, i), out))
		return jfail(c, key, "is not an unsigned integer");
	if (*out > max)
		return jfail(c, key, "is out of range");
	return 0;
}

/* Element @i of array @a as a string (or jbytes' hex form), malloc'ed. */
static int arr_str(struct jctx *c, json_t *a, size_t i, char **out)
{
	json_t *wrap = json_object();
	char key[24], *buf = malloc(STACK_STR_MAX);
	int rc;

	snprintf(key, sizeof(key), "[%zu]", i);
	if (!wrap || !buf || json_object_set(wrap, key, json_array_get(a, i))) {
		json_decref(wrap);
		free(buf);
		return -ENOMEM;
	}
	rc = get_str(c, wrap, key, buf, STACK_STR_MAX);
	json_decref(wrap);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

static int parse_frame(struct jctx *c, json_t *e, struct model_stacks *ms)
{
	char *fn = NULL, *file = NULL, *mod = NULL;
	uint64_t kind;
	json_t *line;
	int rc;

	if (!json_is_array(e) || json_array_size(e) != 5)
		return jfail(c, "", "is not [kind, function, file, line, module]");
	line = json_array_get(e, 3);
	if (!json_is_integer(line) || json_integer_value(line) < 0 ||
	    json_integer_value(line) > INT32_MAX)
		return jfail(c, "[3]", "is not a line number");
	rc = arr_u64(c, e, 0, MF_MARK, &kind) ?:
	     arr_str(c, e, 1, &fn) ?: arr_str(c, e, 2, &file) ?:
	     arr_str(c, e, 4, &mod);
	if (!rc) {
		rc = model_stacks__frame(ms, (enum model_frame_kind)kind, fn, file,
					 (int)json_integer_value(line), mod);
		if (rc >= 0 && (size_t)rc != ms->nframes - 1)
			rc = jfail(c, "", "repeats an earlier frame");
	}
	free(fn);
	free(file);
	free(mod);
	return rc < 0 ? rc : 0;
}

static int parse_stack(struct jctx *c, json_t *e, struct model_stacks *ms)
{
	uint32_t *fr = NULL;
	uint64_t id, flags, v;
	json_t *fa;
	size_t j;
	int rc;

	if (!json_is_array(e) || json_array_size(e) != 3)
		return jfail(c, "", "is not [id, flags, frames]");
	fa = json_array_get(e, 2);
	if (!json_is_array(fa) || json_array_size(fa) > STACK_DEPTH_MAX)
		return jfail(c, "[2]", "is not an array of frames");
	rc = arr_u64(c, e, 0, UINT64_MAX, &id) ?: arr_u64(c, e, 1, UINT32_MAX, &flags);
	if (rc)
		return rc;
	fr = malloc((json_array_size(fa) + 1) * sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	for (j = 0; j < json_array_size(fa) && !rc; j++) {
		rc = arr_u64(c, fa, j, ms->nframes ? ms->nframes - 1 : 0, &v);
		if (!rc && !ms->nframes)
			rc = jfail(c, "[2]", "names frames that are not there");
		fr[j] = (uint32_t)v;
	}
	if (!rc && model_stacks__find(ms, id) >= 0)
		rc = jfail(c, "[0]", "repeats an earlier stack");
	if (!rc) {
		rc = model_stacks__add(ms, id, (uint32_t)flags, fr,
				       (uint32_t)json_array_size(fa));
		rc = rc < 0 ? rc : 0;
	}
	free(fr);
	return rc;
}

static int parse_weight(struct jctx *c, json_t *e, struct model_stacks *ms)
{
	uint64_t tid, first, kind, stack, count, ns;
	int rc;

	if (!json_is_array(e) || json_array_size(e) != 6)
		return jfail(c, "", "is not [tid, first_seen_ns, kind, stack, count, ns]");
	rc = arr_u64(c, e, 0, UINT32_MAX, &tid) ?:
	     arr_u64(c, e, 1, UINT64_MAX, &first) ?:
	     arr_u64(c, e, 2, GT_W_HOLD, &kind) ?:
	     arr_u64(c, e, 3, ms->nstacks ? ms->nstacks - 1 : 0, &stack) ?:
	     arr_u64(c, e, 4, UINT64_MAX, &count) ?:
	     arr_u64(c, e, 5, UINT64_MAX, &ns);
	if (!rc && !ms->nstacks)
		rc = jfail(c, "[3]", "names a stack that is not there");
	if (!rc)
		rc = model_stacks__add_weight(ms, (uint32_t)tid, first,
					      (uint32_t)kind, (uint32_t)stack,
					      count, ns);
	return rc;
}

static int parse_stacks(struct jctx *c, json_t *root, struct model *m)
{
	struct model_stacks *ms;
	json_t *o, *fa, *sa, *wa, *aa, *e;
	uint64_t depth;
	size_t i;
	int rc;

	if (!json_object_get(root, "stacks"))
		return 0; /* recorded without --stacks */
	c->where[0] = '\0';
	o = get_obj(c, root, "stacks");
	if (!o)
		return -EINVAL;
	snprintf(c->where, sizeof(c->where), "stacks");
	fa = get_arr(c, o, "frames", STACK_ITEMS_MAX);
	sa = fa ? get_arr(c, o, "stacks", STACK_ITEMS_MAX) : NULL;
	wa = sa ? get_arr(c, o, "weights", STACK_ITEMS_MAX) : NULL;
	if (!wa)
		return -EINVAL;
	ms = m->stacks = model_stacks__new();
	if (!ms)
		return -ENOMEM;
	rc = get_u64(c, o, "max_depth", STACK_DEPTH_MAX, &depth) ?:
	     get_u64(c, o, "samples", UINT64_MAX, &ms->samples) ?:
	     get_u64(c, o, "weights_lost", UINT64_MAX, &ms->weights_lost) ?:
	     get_u64(c, o, "stacks_lost", UINT64_MAX, &ms->stacks_lost) ?:
	     get_u64(c, o, "frames_unresolved", UINT64_MAX, &ms->frames_unresolved);
	if (!rc && json_object_get(o, "native_failed"))
		rc = get_u64(c, o, "native_failed", UINT64_MAX, &ms->native_failed);
	/* Optional: files written before these counters existed. */
	if (!rc && json_object_get(o, "samples_skipped"))
		rc = get_u64(c, o, "samples_skipped", UINT64_MAX, &ms->samples_skipped);
	if (!rc && json_object_get(o, "walks_interrupted"))
		rc = get_u64(c, o, "walks_interrupted", UINT64_MAX, &ms->walks_interrupted);
	ms->max_depth = (uint32_t)depth;
	json_array_foreach(fa, i, e) {
		if (rc)
			break;
		snprintf(c->where, sizeof(c->where), "stacks.frames[%zu]", i);
		rc = parse_frame(c, e, ms);
	}
	json_array_foreach(sa, i, e) {
		if (rc)
			break;
		snprintf(c->where, sizeof(c->where), "stacks.stacks[%zu]", i);
		rc = parse_stack(c, e, ms);
	}
	json_array_foreach(wa, i, e) {
		if (rc)
			break;
		snprintf(c->where, sizeof(c->where), "stacks.weights[%zu]", i);
		rc = parse_weight(c, e, ms);
	}
	aa = json_object_get(o, "aliases");
	if (!rc && aa && (!json_is_array(aa) || json_array_size(aa) > STACK_ITEMS_MAX))
		rc = jfail(c, "aliases", "is not an array");
	json_array_foreach(aa, i, e) {
		uint64_t id, idx;
		const struct model_stack *st;

		if (rc)
			break;
		snprintf(c->where, sizeof(c->where), "stacks.aliases[%zu]", i);
		if (!json_is_array(e) || json_array_size(e) != 2) {
			rc = jfail(c, "", "is not [id, stack]");
			break;
		}
		rc = arr_u64(c, e, 0, UINT64_MAX, &id) ?:
		     arr_u64(c, e, 1, ms->nstacks ? ms->nstacks - 1 : 0, &idx);
		if (!rc && (!ms->nstacks || model_stacks__find(ms, id) >= 0))
			rc = jfail(c, "", "names no stack, or an id already there");
		if (rc)
			break;
		st = &ms->stacks[idx];
		rc = model_stacks__add(ms, id, st->flags, st->frames, st->nframes);
		rc = rc < 0 ? rc : 0;
	}
	return rc;
}

static int parse_meta(struct trace_reader *r, const char *buf, size_t len,
		      char *err, size_t errlen)
{
	struct jctx c = { .r = r, .err = err, .errlen = errlen };
	json_error_t je;
	json_t *root, *f;
	int rc;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		CORRUPT(r, r->meta_off + (uint64_t)(je.position > 0 ?
						    je.position : 0),
			"metadata is not valid JSON (%s)", je.text);
		return -EINVAL;
	}
	rc = -EINVAL;
	if (!json_is_object(root)) {
		jfail(&c, "", "the metadata is not a JSON object");
		goto out;
	}
	f = json_object_get(root, "format");
	if (!json_is_string(f) || strcmp(json_string_value(f), "giltrace-trace/1")) {
		jfail(&c, "format", "is not \"giltrace-trace/1\"");
		goto out;
	}
	rc = get_u64(&c, root, "records", UINT64_MAX, &r->records) ?:
	     get_u64(&c, root, "frames", UINT64_MAX, &r->frames) ?:
	     parse_target(&c, root, &r->m) ?:
	     parse_time_counters(&c, root, &r->m) ?:
	     parse_lists(&c, root, &r->m) ?:
	     parse_stacks(&c, root, &r->m);
	if (rc == -ENOMEM)
		rerr(err, errlen, "giltrace: out of memory reading %s", r->path);
	if (!rc && r->frames > (r->meta_off - HDR_LEN) / 9) {
		/* A zstd frame takes at least 9 bytes. */
		jfail(&c, "frames", "does not fit the record stream");
		rc = -EINVAL;
	}
out:
	json_decref(root);
	return rc;
}

static int check_header(struct trace_reader *r, char *err, size_t errlen)
{
	uint8_t hdr[HDR_LEN];
	uint32_t version, hlen;
	int rc;

	if (r->size < sizeof(MAGIC)) {
		rerr(err, errlen, "giltrace: %s is truncated (%" PRIu64 " bytes: "
		     "not even a header)", r->path, r->size);
		return -EINVAL;
	}
	rc = pread_all(r->fd, hdr, r->size < HDR_LEN ? r->size : HDR_LEN, 0);
	if (rc) {
		rerr(err, errlen, "giltrace: cannot read %s: %s", r->path,
		     strerror(rc == -ENODATA ? EIO : -rc));
		return rc;
	}
	if (memcmp(hdr, MAGIC, sizeof(MAGIC))) {
		rerr(err, errlen, "giltrace: %s is not a giltrace trace file "
		     "(no GILTRACE header)", r->path);
		return -EINVAL;
	}
	if (r->size < HDR_LEN) {
		rerr(err, errlen, "giltrace: %s is truncated (%" PRIu64 " bytes: "
		     "the header alone takes %d)", r->path, r->size, HDR_LEN);
		return -EINVAL;
	}
	version = get_le32(hdr + 8);
	if (version > FORMAT_VERSION) {
		rerr(err, errlen, "giltrace: %s was written by a newer giltrace "
		     "(format %u); this giltrace reads format %d: upgrade it",
		     r->path, version, FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (version == 0) {
		CORRUPT(r, 8, "format version 0");
		return -EINVAL;
	}
	hlen = get_le32(hdr + 16);
	if (hlen != HDR_LEN) {
		CORRUPT(r, 16, "header length %u, the format has %d", hlen, HDR_LEN);
		return -EINVAL;
	}
	return 0;
}

static int check_trailer(struct trace_reader *r, char *err, size_t errlen)
{
	uint8_t tr[TRAILER_LEN];
	uint64_t at;
	int rc;

	if (r->size < HDR_LEN + TRAILER_LEN) {
		rerr(err, errlen, "giltrace: %s is truncated (%" PRIu64 " bytes, "
		     "no trailer: the recording did not finish)", r->path,
		     r->size);
		return -EINVAL;
	}
	at = r->size - TRAILER_LEN;
	rc = pread_all(r->fd, tr, sizeof(tr), at);
	if (rc) {
		rerr(err, errlen, "giltrace: cannot read %s: %s", r->path,
		     strerror(rc == -ENODATA ? EIO : -rc));
		return rc;
	}
	if (memcmp(tr + 24, END_MAGIC, sizeof(END_MAGIC))) {
		rerr(err, errlen, "giltrace: %s is truncated (%" PRIu64 " bytes, "
		     "no trailer: the recording did not finish or the file was "
		     "cut)", r->path, r->size);
		return -EINVAL;
	}
	r->meta_off = get_le64(tr);
	r->meta_len = get_le64(tr + 8);
	if (r->meta_off < HDR_LEN || r->meta_off > at ||
	    r->meta_len != at - r->meta_off) {
		CORRUPT(r, at, "the trailer places the metadata at %" PRIu64
			" (+%" PRIu64 " bytes), outside the file", r->meta_off,
			r->meta_len);
		return -EINVAL;
	}
	if (r->meta_len == 0 || r->meta_len > META_MAX) {
		CORRUPT(r, at, "metadata length %" PRIu64 " out of range",
			r->meta_len);
		return -EINVAL;
	}
	return 0;
}

static int read_meta(struct trace_reader *r, char *err, size_t errlen)
{
	uint8_t tr[4];
	char *buf;
	int rc;

	buf = malloc(r->meta_len);
	if (!buf) {
		rerr(err, errlen, "giltrace: out of memory reading %s", r->path);
		return -ENOMEM;
	}
	rc = pread_all(r->fd, buf, r->meta_len, r->meta_off) ?:
	     pread_all(r->fd, tr, 4, r->size - TRAILER_LEN + 16);
	if (rc) {
		rerr(err, errlen, "giltrace: cannot read %s: %s", r->path,
		     strerror(rc == -ENODATA ? EIO : -rc));
		free(buf);
		return rc;
	}
	if (crc32_ieee(buf, r->meta_len) != get_le32(tr)) {
		CORRUPT(r, r->meta_off, "the metadata's CRC-32 does not match");
		free(buf);
		return -EINVAL;
	}
	rc = parse_meta(r, buf, r->meta_len, err, errlen);
	free(buf);
	return rc;
}

void trace_reader__close(struct trace_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	model__free(&r->m);
	free(r->path);
	free(r);
}

struct trace_reader *trace_reader__open(const char *path, char *err,
					size_t errlen)
{
	struct trace_reader *r = calloc(1, sizeof(*r));
	struct stat st;

	if (!r || !(r->path = strdup(path))) {
		free(r);
		rerr(err, errlen, "giltrace: out of memory");
		return NULL;
	}
	model__init(&r->m);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rerr(err, errlen, "giltrace: cannot open %s: %s", path,
		     strerror(errno));
		goto fail;
	}
	if (fstat(r->fd, &st)) {
		rerr(err, errlen, "giltrace: cannot read %s: %s", path,
		     strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rerr(err, errlen, "giltrace: %s is not a regular file", path);
		goto fail;
	}
	r->size = (uint64_t)st.st_size;
	if (check_header(r, err, errlen) || check_trailer(r, err, errlen) ||
	    read_meta(r, err, errlen))
		goto fail;
	return r;
fail:
	trace_reader__close(r);
	return NULL;
}

int trace_reader__model(struct trace_reader *r, struct model *m, char *err,
			size_t errlen)
{
	model__free(m);
	if (model__copy(&r->m, m) ||
	    (r->m.stacks && !(m->stacks = model_stacks__copy(r->m.stacks)))) {
		model__free(m);
		model__init(m);
		rerr(err, errlen, "giltrace: out of memory reading %s", r->path);
		return -ENOMEM;
	}
	return 0;
}

/* Records of one decompressed block. @at: the frame's file offset. */
static int parse_block(struct trace_reader *r, const uint8_t *p, size_t n,
		       uint64_t at, uint64_t *nrec,
		       int (*cb)(const void *, size_t, void *), void *ctx,
		       char *err, size_t errlen)
{
	size_t pos = 0;

	while (pos < n) {
		uint32_t len, type;

		if (n - pos < 8) {
			CORRUPT(r, at, "a record is cut at byte %zu of its block",
				pos);
			return -EINVAL;
		}
		len = get_le32(p + pos);
		type = get_le32(p + pos + 4);
		if (len > n - pos - 4) {
			CORRUPT(r, at, "a record of %u bytes at byte %zu of its "
				"block overruns the block", len, pos);
			return -EINVAL;
		}
		if (!rec_encoded_len(type)) {
			CORRUPT(r, at, "unknown record type %u at byte %zu of its "
				"block", type, pos);
			return -EINVAL;
		}
		if (!rec_len_ok(type, len)) {
			CORRUPT(r, at, "a record of type %u has %u bytes, not %zu",
				type, len, rec_encoded_len(type));
			return -EINVAL;
		}
		(*nrec)++;
		if (type == GT_REC_LOST) {
			struct gt_rec_lost l;
			int rc;

			decode_lost(p + pos + 4, &l);
			rc = cb(&l, sizeof(l), ctx);
			if (rc)
				return rc;
		} else if (type == GT_REC_HOLD_STACK) {
			struct gt_rec_hold_stack h;
			int rc;

			decode_hold_stack(p + pos + 4, &h);
			rc = cb(&h, sizeof(h), ctx);
			if (rc)
				return rc;
		} else {
			struct gt_rec_cycle c;
			int rc;

			decode_cycle(p + pos + 4, len, &c);
			rc = cb(&c, sizeof(c), ctx);
			if (rc)
				return rc;
		}
		pos += 4 + len;
	}
	return 0;
}

/* One frame at @at (the stream ends at r->meta_off): decompress into
 * @dbuf, return its compressed size in *@csize and content size in *@dlen. */
static int read_frame(struct trace_reader *r, ZSTD_DCtx *dctx, uint64_t at,
		      uint8_t *cbuf, size_t ccap, uint8_t *dbuf, size_t *csize,
		      size_t *dlen, char *err, size_t errlen)
{
	uint64_t left = r->meta_off - at;
	size_t n = left < ccap ? (size_t)left : ccap, c, d;
	unsigned long long content;
	int rc;

	rc = pread_all(r->fd, cbuf, n, at);
	if (rc) {
		rerr(err, errlen, "giltrace: cannot read %s: %s", r->path,
		     strerror(rc == -ENODATA ? EIO : -rc));
		return rc;
	}
	/* Only current zstd frames: no skippable or legacy ones. */
	content = n >= 4 && get_le32(cbuf) == ZSTD_MAGICNUMBER ?
		  ZSTD_getFrameContentSize(cbuf, n) : ZSTD_CONTENTSIZE_ERROR;
	if (content == ZSTD_CONTENTSIZE_ERROR) {
		CORRUPT(r, at, "not a zstd frame");
		return -EINVAL;
	}
	if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == 0 ||
	    content > BLOCK_MAX) {
		CORRUPT(r, at, "a zstd frame of a bad content size");
		return -EINVAL;
	}
	c = ZSTD_findFrameCompressedSize(cbuf, n);
	if (ZSTD_isError(c)) {
		CORRUPT(r, at, "zstd: %s", ZSTD_getErrorName(c));
		return -EINVAL;
	}
	d = ZSTD_decompressDCtx(dctx, dbuf, BLOCK_MAX, cbuf, c);
	if (ZSTD_isError(d)) {
		CORRUPT(r, at, "zstd: %s", ZSTD_getErrorName(d));
		return -EINVAL;
	}
	if (d != content) {
		CORRUPT(r, at, "a zstd frame holds %zu bytes, its header says %llu",
			d, content);
		return -EINVAL;
	}
	*csize = c;
	*dlen = d;
	return 0;
}

int trace_reader__foreach(struct trace_reader *r,
			  int (*cb)(const void *rec, size_t size, void *ctx),
			  void *ctx, char *err, size_t errlen)
{
	size_t ccap = ZSTD_compressBound(BLOCK_MAX), csize, dlen;
	uint8_t *cbuf = malloc(ccap), *dbuf = malloc(BLOCK_MAX);
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	uint64_t at = HDR_LEN, nrec = 0, nframes = 0;
	int rc = 0;

	if (!cbuf || !dbuf || !dctx) {
		rerr(err, errlen, "giltrace: out of memory reading %s", r->path);
		rc = -ENOMEM;
		goto out;
	}
	while (at < r->meta_off) {
		rc = read_frame(r, dctx, at, cbuf, ccap, dbuf, &csize, &dlen,
				err, errlen);
		if (rc)
			goto out;
		rc = parse_block(r, dbuf, dlen, at, &nrec, cb, ctx, err, errlen);
		if (rc)
			goto out;
		at += csize;
		nframes++;
	}
	if (nrec != r->records || nframes != r->frames) {
		CORRUPT(r, at, "%" PRIu64 " records in %" PRIu64 " frames, the "
			"metadata says %" PRIu64 " in %" PRIu64, nrec, nframes,
			r->records, r->frames);
		rc = -EINVAL;
	}
out:
	ZSTD_freeDCtx(dctx);
	free(cbuf);
	free(dbuf);
	return rc;
}
