// SPDX-License-Identifier: MIT
/*
 * fuzz_trace_reader.c - libFuzzer target for the trace file reader
 * (src/trace_file.c) and the timeline built from it (src/timeline.c).
 * Built and run by scripts/fuzz.sh.
 *
 * Two kinds of input:
 *   - a whole trace file (starts with "GILTRACE"), read as is;
 *   - anything else: [u32 LE json length][metadata JSON][record block],
 *     wrapped into a file with a valid header, one zstd frame holding the
 *     block and a trailer with the right CRC, so that mutations reach the
 *     metadata validation and the record parser past the checksums.
 * Every input must either read cleanly or fail with one line starting
 * "giltrace: "; anything else aborts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>
#include "model.h"
#include "timeline.h"
#include "trace_file.h"

static int fd = -1;
static char path[64];
static uint8_t *file;
static size_t file_cap;

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

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void check_err(const char *err)
{
	if (strncmp(err, "giltrace: ", 10) || strchr(err, '\n') ||
	    strlen(err) < 16) {
		fprintf(stderr, "bad error message: '%s'\n", err);
		abort();
	}
}

static int on_rec(const void *rec, size_t size, void *ctx)
{
	uint32_t type;

	if (size < 4)
		abort();
	memcpy(&type, rec, 4);
	if (!((type == GT_REC_CYCLE || type == GT_REC_ABANDONED) &&
	      size == sizeof(struct gt_rec_cycle)) &&
	    !(type == GT_REC_LOST && size == sizeof(struct gt_rec_lost)))
		abort();
	(*(size_t *)ctx)++;
	return 0;
}

/* The structured input as a trace file in @file; its size. */
static size_t wrap(const uint8_t *data, size_t size)
{
	uint32_t jlen;
	size_t blen, need, c = 0;
	const uint8_t *json, *blk;

	if (size < 4)
		return 0;
	jlen = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
	       (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
	if (jlen > size - 4)
		jlen = (uint32_t)(size - 4);
	json = data + 4;
	blk = json + jlen;
	blen = size - 4 - jlen;
	need = 32 + ZSTD_compressBound(blen) + jlen + 32;
	if (need > file_cap) {
		free(file);
		file = malloc(need);
		file_cap = need;
	}
	memset(file, 0, 32);
	memcpy(file, "GILTRACE", 8);
	put_le(file + 8, 1, 4);
	put_le(file + 16, 32, 4);
	if (blen) {
		c = ZSTD_compress(file + 32, ZSTD_compressBound(blen), blk, blen, 1);
		if (ZSTD_isError(c))
			return 0;
	}
	memcpy(file + 32 + c, json, jlen);
	put_le(file + 32 + c + jlen, 32 + c, 8);
	put_le(file + 32 + c + jlen + 8, jlen, 8);
	put_le(file + 32 + c + jlen + 16, crc32_ref(json, jlen), 4);
	put_le(file + 32 + c + jlen + 20, 0, 4);
	memcpy(file + 32 + c + jlen + 24, "GILTEND!", 8);
	return 32 + c + jlen + 32;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace_reader *r;
	struct timeline tl;
	struct model m;
	char err[4096 + 512];
	size_t n = 0;

	if (fd < 0) {
		fd = memfd_create("fuzz.gil", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0))
		abort();
	if (size >= 8 && !memcmp(data, "GILTRACE", 8)) {
		if (pwrite(fd, data, size, 0) != (ssize_t)size)
			abort();
	} else {
		size_t len = wrap(data, size);

		if (!len)
			return 0;
		if (pwrite(fd, file, len, 0) != (ssize_t)len)
			abort();
	}
	err[0] = '\0';
	r = trace_reader__open(path, err, sizeof(err));
	if (!r) {
		check_err(err);
		return 0;
	}
	model__init(&m);
	if (trace_reader__model(r, &m, err, sizeof(err))) {
		check_err(err);
		goto out;
	}
	if (trace_reader__foreach(r, on_rec, &n, err, sizeof(err)))
		check_err(err);
	if (timeline__build(&tl, r, &m, 64, err, sizeof(err)) == 0) {
		timeline__waiting_at(&tl, tl.t0);
		timeline__waiting_at(&tl, tl.t_end);
		timeline__free(&tl);
	} else {
		check_err(err);
	}
out:
	model__free(&m);
	trace_reader__close(r);
	return 0;
}
