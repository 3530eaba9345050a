/* SPDX-License-Identifier: MIT */
/*
 * py_layout: how to walk one interpreter build's Python frames and read its
 * code objects, as data (struct gt_py_frame_layout in giltrace.h) for the
 * BPF stack walker and for py_symbolize. The offsets come, in this order,
 * from _Py_DebugOffsets (3.13+, at the start of _PyRuntime), from the
 * interpreter's DWARF (libdw), and from a table of x86-64 release builds
 * (3.6-3.13); what each field means in a version (how the instruction
 * position is encoded, which frames are shims, the line table format)
 * follows from the version, which target.c reads from the binary.
 */
#ifndef GILTRACE_PY_LAYOUT_H
#define GILTRACE_PY_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "giltrace.h"

struct py_target;

enum py_layout_source {
	PY_LAYOUT_ANY = 0,           /* best available, in the order below */
	PY_LAYOUT_DEBUG_OFFSETS = 1, /* _Py_DebugOffsets, 3.13+ */
	PY_LAYOUT_DWARF = 2,         /* the interpreter's (or its debug file's) DWARF */
	PY_LAYOUT_TABLE = 3,         /* built-in table: x86-64 release builds 3.6-3.13 */
};

/* "debug-offsets", "dwarf", "table", or "?" */
const char *py_layout__source_name(unsigned int src);

/*
 * The frame layout of @t's interpreter from the best source available.
 * On success returns 0, fills @out and, if @source_name, sets it to the
 * source's name (a static string). Returns -ENOTSUP (a version this code
 * does not know: before 3.6, after 3.14, free-threaded) or -ENOENT (no
 * source has this build) with a one-line reason in @err.
 */
int py_layout__get(struct py_target *t, struct gt_py_frame_layout *out,
		   const char **source_name, char *err, size_t errlen);

/*
 * The layout from one source only (for tests: sources checked against
 * each other). Returns 0, -ENOENT when that source has nothing for this
 * build, -EPROTO when what it has fails the sanity checks, or -ENOTSUP.
 */
int py_layout__from(struct py_target *t, enum py_layout_source src,
		    struct gt_py_frame_layout *out, char *err, size_t errlen);

#endif
