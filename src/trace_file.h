/* SPDX-License-Identifier: MIT */
/*
 * trace_file: the giltrace trace file (`giltrace record`, read back by
 * `giltrace report`). A versioned, documented format (docs/trace-format.md):
 * a fixed header, the ring-buffer records (struct gt_rec_* of giltrace.h)
 * compressed with zstd in independent frames, and a trailing metadata
 * block (JSON) holding the closed aggregate model: target, probes, traced
 * interval, per-thread figures and names. Written while tracing, so memory
 * stays bounded however long the trace.
 *
 * The reader validates everything: a truncated or corrupt file gives a
 * negative errno and a one-line message, never a crash.
 */
#ifndef GILTRACE_TRACE_FILE_H
#define GILTRACE_TRACE_FILE_H

#include <stddef.h>
#include <stdint.h>

struct model;
struct trace_writer;
struct trace_reader;

/* Create @path (truncating). NULL with a one-line reason in @err. */
struct trace_writer *trace_writer__open(const char *path, char *err,
					size_t errlen);
/* Append one ring-buffer record as received (starts with its __u32 type).
 * Returns 0 or a negative errno. */
int trace_writer__record(struct trace_writer *w, const void *rec, size_t size);
/* Compress and write the records buffered so far as one frame, so that a
 * crash loses none of them (the writer also does this every 8192 records
 * and about every second while records come). 0 or a negative errno. */
int trace_writer__flush(struct trace_writer *w);
/* Write the metadata of the closed model @m, flush and close. Returns 0
 * or a negative errno (with @err). Frees @w either way. */
int trace_writer__finish(struct trace_writer *w, const struct model *m,
			 char *err, size_t errlen);
/* Close without finishing (the file is left incomplete). */
void trace_writer__abort(struct trace_writer *w);

/* Open and validate header and metadata. NULL with a reason in @err. */
struct trace_reader *trace_reader__open(const char *path, char *err,
					size_t errlen);
/* The aggregate model stored in the file (as trace_writer__finish got it).
 * @m must be model__init'ed; free with model__free. */
int trace_reader__model(struct trace_reader *r, struct model *m, char *err,
			size_t errlen);
/* Stream every record in file order. @cb returns nonzero to stop (that
 * value is returned). Returns 0, or a negative errno with @err on a
 * corrupt or truncated record stream. */
int trace_reader__foreach(struct trace_reader *r,
			  int (*cb)(const void *rec, size_t size, void *ctx),
			  void *ctx, char *err, size_t errlen);
void trace_reader__close(struct trace_reader *r);

#endif
