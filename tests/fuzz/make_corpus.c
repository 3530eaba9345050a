// SPDX-License-Identifier: MIT
/*
 * make_corpus.c - seed corpus for fuzz_trace_reader: small valid trace
 * files written with the real writer, each also in the fuzzer's
 * structured form ([u32 json length][json][uncompressed record block]).
 * Usage: make_corpus DIR
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "model.h"
#include "trace_file.h"

static void add_thread(struct model *m, uint32_t tid, uint32_t state,
		       const char *name, bool exited)
{
	struct gt_thread k = { 0 };
	struct model_thread *t;

	k.tid = tid;
	k.state = state;
	k.since_ns = 1000 + tid;
	k.wait_begin_ns = 990 + tid;
	k.first_seen_ns = 100 + tid;
	k.exit_ns = exited ? 5000 : 0;
	k.tstate = 0x7f0000001000ULL + tid;
	snprintf(k.comm, sizeof(k.comm), "%.15s", name);
	k.hold.count = 2;
	k.hold.sum_ns = 300;
	k.hold.max_ns = 200;
	k.hold.buckets[gt_bucket(100)]++;
	k.hold.buckets[gt_bucket(200)]++;
	k.wait.count = 1;
	k.wait.sum_ns = 50;
	k.wait.max_ns = 50;
	k.wait.buckets[gt_bucket(50)]++;
	t = model__put_thread(m, &k, exited);
	if (t)
		snprintf(t->name, sizeof(t->name), "%s", name);
}

/* Writes DIR/NAME.gil; returns 0. */
static int write_one(const char *dir, const char *name, int nthreads,
		     int ncycles, bool lost)
{
	struct model m;
	struct model_probe p = { 0 };
	char path[4096], err[512];
	struct trace_writer *w;
	uint64_t t = 1000;

	model__init(&m);
	m.pid = 1234;
	snprintf(m.exe, sizeof(m.exe), "/usr/bin/python3");
	snprintf(m.python_version, sizeof(m.python_version), "3.11.2");
	m.t0_ns = 1000;
	if (nthreads) {
		snprintf(p.function, sizeof(p.function), "take_gil");
		snprintf(p.symbol, sizeof(p.symbol), "take_gil");
		snprintf(p.file, sizeof(p.file), "/usr/bin/python3");
		snprintf(p.kind, sizeof(p.kind), "uprobe");
		snprintf(p.role, sizeof(p.role), "wait_begin");
		model__add_probe(&m, &p);
	}
	for (int i = 0; i < nthreads; i++)
		add_thread(&m, 100 + (uint32_t)i, (uint32_t)(i % 5),
			   i == 1 ? "w\xff" : "thr", i == 4);
	snprintf(path, sizeof(path), "%s/%s.gil", dir, name);
	w = trace_writer__open(path, err, sizeof(err));
	if (!w) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int i = 0; i < ncycles; i++) {
		struct gt_rec_cycle c = {
			.type = i % 7 == 6 ? GT_REC_ABANDONED : GT_REC_CYCLE,
			.tid = 100 + (uint32_t)(i % (nthreads ? nthreads : 1)),
			.wait_begin_ns = t, .held_ns = t + 3,
			.release_ns = t + 10, .cpu = 1,
			.flags = i == 0 ? GT_CYC_AT_START : 0,
		};

		trace_writer__record(w, &c, sizeof(c));
		t += 10;
		if (lost && (i == 2 || i % 3 == 1)) {
			struct gt_rec_lost l = { .type = GT_REC_LOST, .count = 4,
						 .first_ns = t, .last_ns = t + 5 };

			trace_writer__record(w, &l, sizeof(l));
		}
	}
	model__close(&m, t + 100);
	if (trace_writer__finish(w, &m, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	model__free(&m);
	return 0;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* DIR/NAME.gil -> DIR/NAME.s (structured form). */
static int structured(const char *dir, const char *name)
{
	char path[4096];
	uint8_t *buf, *blk = malloc(1 << 20);
	size_t n, bl = 0;
	uint64_t off, len, at = 32;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.gil", dir, name);
	f = fopen(path, "rb");
	if (!f || !blk)
		return 1;
	fseek(f, 0, SEEK_END);
	n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n);
	if (!buf || fread(buf, 1, n, f) != n)
		return 1;
	fclose(f);
	off = le(buf + n - 32, 8);
	len = le(buf + n - 24, 8);
	while (at < off) {
		size_t c = ZSTD_findFrameCompressedSize(buf + at, off - at);
		size_t d = ZSTD_decompress(blk + bl, (1 << 20) - bl, buf + at, c);

		if (ZSTD_isError(c) || ZSTD_isError(d))
			return 1;
		bl += d;
		at += c;
	}
	snprintf(path, sizeof(path), "%s/%s.s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return 1;
	for (int i = 0; i < 4; i++)
		fputc((int)(len >> (8 * i)) & 0xFF, f);
	fwrite(buf + off, 1, len, f);
	fwrite(blk, 1, bl, f);
	fclose(f);
	free(buf);
	free(blk);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int threads, cycles;
		bool lost;
	} seeds[] = {
		{ "empty", 0, 0, false },
		{ "one", 1, 1, false },
		{ "small", 2, 8, true },
		{ "five", 5, 30, true },
		{ "many", 3, 90, true }, /* past the fuzzer's max_cycles (64) */
	};
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		rc |= write_one(argv[1], seeds[i].name, seeds[i].threads,
				seeds[i].cycles, seeds[i].lost) ||
		      structured(argv[1], seeds[i].name);
	return rc;
}
