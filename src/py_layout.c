/* SPDX-License-Identifier: MIT */
/*
 * py_layout: the frame-walk layout of one CPython build (see py_layout.h).
 *
 * The walk, per version (x86-64 offsets of the pyenv release builds in the
 * table below; every other build needs DWARF or _Py_DebugOffsets):
 * - 3.6-3.10: tstate->frame is the innermost PyFrameObject; f_back links
 *   callers; f_lasti is the last instruction's byte offset up to 3.9 and
 *   its index in 2-byte code units in 3.10 (Objects/frameobject.c 3.10:
 *   frame_getlasti multiplies by sizeof(_Py_CODEUNIT)); -1 = not started.
 *   struct _frame: Include/frameobject.h 3.6-3.8,
 *   Include/cpython/frameobject.h 3.9-3.10.
 * - 3.11-3.12: tstate->cframe->current_frame is the innermost
 *   _PyInterpreterFrame (Include/cpython/pystate.h, _PyCFrame), `previous`
 *   links callers and prev_instr points at the code unit before the next
 *   instruction (Include/internal/pycore_frame.h 3.11-3.12).
 * - 3.13: tstate->current_frame; f_executable (a code object, or None in
 *   the C-stack entry frame) and instr_ptr (Include/internal/pycore_frame.h
 *   3.13).
 * - 3.14: as 3.13, but f_executable is a _PyStackRef whose low bit tags
 *   deferred references (Include/internal/pycore_stackref.h 3.14,
 *   Py_TAG_BITS = 1): masked with ~3.
 * - Shim frames: from 3.12 the eval loop pushes an entry frame on the C
 *   stack, owner FRAME_OWNED_BY_CSTACK = 3 (pycore_frame.h 3.12-3.13;
 *   renamed FRAME_OWNED_BY_INTERPRETER = 3 in 3.14,
 *   pycore_interpframe_structs.h); its `previous` continues the chain, so
 *   the walker skips it and goes on. 3.11 has no such frame (its enum ends
 *   at FRAME_OWNED_BY_FRAME_OBJECT = 2; is_entry marks cframe roots).
 * - Instruction offsets 3.11+: (ptr - (code + co_code_adaptive)) bytes
 *   (_PyInterpreterFrame_LASTI, pycore_frame.h 3.11-3.13); the frame's
 *   line is PyCode_Addr2Line(code, offset). Frames Python calls incomplete
 *   (_PyFrame_IsIncomplete: pushed, first instruction not yet run) are not
 *   skipped: the call is real; their position is before or at the first
 *   instruction, so their line is in practice the def line.
 * - Line tables: co_lnotab up to 3.9, the PEP 626 table in 3.10
 *   (Objects/lnotab_notes.txt 3.10), the location table from 3.11
 *   (Objects/locations.md).
 * - str: compact ASCII data follows PyASCIIObject (48 bytes up to 3.11 with
 *   its wstr pointer, 40 from 3.12: Include/unicodeobject.h 3.6-3.7,
 *   Include/cpython/unicodeobject.h 3.8+); other compact strings follow
 *   PyCompactUnicodeObject (72 / 56). state bits:
 *   interned:2, kind:3, compact:1, ascii:1, ready:1 (3.3-3.11; bit 7 is
 *   statically_allocated from 3.12, no ready bit).
 */
#include "py_layout.h"
#include "errbuf.h"
#include "target.h"
#include "elf_image.h"
#include "dwarf_layout.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

_Static_assert(sizeof(struct gt_py_frame_layout) == 128,
	       "gt_py_frame_layout: no implicit padding (copied into BPF)");

const char *py_layout__source_name(unsigned int src)
{
	switch (src) {
	case PY_LAYOUT_DEBUG_OFFSETS: return "debug-offsets";
	case PY_LAYOUT_DWARF: return "dwarf";
	case PY_LAYOUT_TABLE: return "table";
	default: return "?";
	}
}

#define V(minor) (0x0300 | (minor))

/* ---- what follows from the version ------------------------------------ */

/*
 * Everything that is not an offset, and every offset set to GT_PY_NONE,
 * from the version alone. Also the str and object header constants that
 * no minor version changed (Include/object.h, Include/cpython/bytesobject.h,
 * Include/cpython/unicodeobject.h 3.6-3.14, default x86-64 builds): the
 * sources overwrite them with what they know.
 */
static void semantics(unsigned int v, struct gt_py_frame_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->py_version = v;
	l->ts_frame_nderef = v >= V(11) && v <= V(12) ? 2 : 1;
	l->ts_frame_off[0] = l->ts_frame_off[1] = GT_PY_NONE;
	l->fr_code = l->fr_back = l->fr_instr = GT_PY_NONE;
	l->fr_owner = GT_PY_NONE;
	l->fr_owner_skip = v >= V(12) ? 3 : GT_PY_NONE;
	l->fr_code_mask = v >= V(14) ? ~(__u64)3 : ~(__u64)0;
	if (v <= V(9))
		l->fr_instr_kind = GT_PY_INSTR_LASTI_BYTES;
	else if (v == V(10))
		l->fr_instr_kind = GT_PY_INSTR_LASTI_UNITS;
	else if (v <= V(12))
		l->fr_instr_kind = GT_PY_INSTR_PREV_INSTR;
	else
		l->fr_instr_kind = GT_PY_INSTR_PTR;
	l->fr_instr_size = v <= V(10) ? 4 : 8;
	l->co_lines_kind = v <= V(9) ? GT_PY_LINES_LNOTAB :
			   v == V(10) ? GT_PY_LINES_PEP626 : GT_PY_LINES_LOCATIONS;
	l->co_filename = l->co_name = l->co_qualname = GT_PY_NONE;
	l->co_firstlineno = l->co_linetable = GT_PY_NONE;
	l->co_code = l->co_code_adaptive = GT_PY_NONE;
	l->ob_type = 8;
	l->ob_size = 16;
	l->bytes_data = 32;
	l->str_length = 16;
	l->str_state = 32;
	l->str_ascii_data = v <= V(11) ? 48 : 40;
	l->str_compact_data = v <= V(11) ? 72 : 56;
	l->str_kind_shift = 2;
	l->str_compact_shift = 5;
	l->str_ascii_shift = 6;
	l->str_ready_shift = v <= V(11) ? 7 : 0xff;
}

/* Offsets must be small and every field this version has must be set. */
static int check(const struct gt_py_frame_layout *l, char *why, size_t len)
{
	unsigned int v = l->py_version;
	const struct { const char *name; __u32 val; bool need; } f[] = {
		{ "ts frame", l->ts_frame_off[0], true },
		{ "ts cframe->current_frame", l->ts_frame_off[1], l->ts_frame_nderef == 2 },
		{ "frame code", l->fr_code, true },
		{ "frame back", l->fr_back, true },
		{ "frame instr", l->fr_instr, true },
		{ "frame owner", l->fr_owner, v >= V(11) },
		{ "co_filename", l->co_filename, true },
		{ "co_name", l->co_name, true },
		{ "co_qualname", l->co_qualname, v >= V(11) },
		{ "co_firstlineno", l->co_firstlineno, true },
		{ "co_linetable", l->co_linetable, true },
		{ "co_code", l->co_code, v <= V(10) },
		{ "co_code_adaptive", l->co_code_adaptive, v >= V(11) },
	};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].need && (f[i].val == GT_PY_NONE || f[i].val >= 4096)) {
			snprintf(why, len, "%s: %s", f[i].name,
				 f[i].val == GT_PY_NONE ? "missing" : "out of range");
			return -EPROTO;
		}
	}
	if (l->ob_type > 64 || l->ob_size != l->ob_type + 8 ||
	    l->bytes_data < l->ob_size + 8 || l->bytes_data > 96 ||
	    l->str_state >= l->str_ascii_data || l->str_ascii_data < 32 || l->str_compact_data <= l->str_ascii_data ||
	    l->str_compact_data > 128 || l->str_kind_shift > 29 ||
	    l->str_compact_shift > 31 || l->str_ascii_shift > 31) {
		snprintf(why, len, "object/str header offsets out of range");
		return -EPROTO;
	}
	return 0;
}

/* Bytes from a frame's start that hold every field the walker reads, so
 * that BPF reads a frame with one bpf_probe_read_user. */
static __u32 frame_span(const struct gt_py_frame_layout *l)
{
	__u32 span = l->fr_code + 8;

	if (l->fr_back + 8 > span)
		span = l->fr_back + 8;
	if (l->fr_instr + l->fr_instr_size > span)
		span = l->fr_instr + l->fr_instr_size;
	if (l->fr_owner != GT_PY_NONE && l->fr_owner + 1 > span)
		span = l->fr_owner + 1;
	return span;
}

/* ---- table ------------------------------------------------------------ */

/*
 * x86-64, gcc, default (release, non-debug) builds. Read from the DWARF of
 * pyenv's 3.6.15-3.13.0 and Debian's 3.11.2 (and checked against it by
 * tests/unit/test_py_layout.c on every build found); the members are those
 * of, per version: Include/pystate.h (3.6-3.7), Include/cpython/pystate.h
 * (3.8-3.13) for struct _ts and (3.11-3.12) _PyCFrame;
 * Include/frameobject.h (3.6-3.8), Include/cpython/frameobject.h
 * (3.9-3.10) for struct _frame; Include/internal/pycore_frame.h
 * (3.11-3.13) for _PyInterpreterFrame; Include/code.h (3.6-3.8),
 * Include/cpython/code.h (3.9-3.13) for PyCodeObject.
 */
struct table_row {
	int minor;
	__u32 ts0, ts1;              /* frame path */
	__u32 code, back, instr, owner;
	__u32 filename, name, qualname, firstlineno, linetable, co_code, adaptive;
};

#define NO GT_PY_NONE
static const struct table_row table[] = {
	/* minor ts0  ts1  code back instr owner  file name qual first lines code adapt */
	{ 6,  24,  NO,  32, 24, 120, NO,  96, 104, NO,  36, 112, 40, NO },
	{ 7,  24,  NO,  32, 24, 104, NO,  96, 104, NO,  36, 112, 40, NO },
	{ 8,  24,  NO,  32, 24, 104, NO,  104, 112, NO, 40, 120, 48, NO },
	{ 9,  24,  NO,  32, 24, 104, NO,  104, 112, NO, 40, 120, 48, NO },
	{ 10, 24,  NO,  32, 24, 96,  NO,  104, 112, NO, 40, 120, 48, NO },
	{ 11, 56,  8,   32, 48, 56,  69,  112, 120, 128, 72, 136, NO, 184 },
	{ 12, 56,  0,   0,  8,  56,  70,  112, 120, 128, 68, 136, NO, 192 },
	{ 13, 72,  NO,  0,  8,  56,  70,  112, 120, 128, 68, 136, NO, 200 },
};
#undef NO

static int from_table(struct py_target *t, struct gt_py_frame_layout *l)
{
	size_t i;

#if !defined(__x86_64__)
	return -ENOENT;
#endif
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct table_row *r = &table[i];

		if (r->minor != t->minor)
			continue;
		l->ts_frame_off[0] = r->ts0;
		l->ts_frame_off[1] = r->ts1;
		l->fr_code = r->code;
		l->fr_back = r->back;
		l->fr_instr = r->instr;
		l->fr_owner = r->owner;
		l->co_filename = r->filename;
		l->co_name = r->name;
		l->co_qualname = r->qualname;
		l->co_firstlineno = r->firstlineno;
		l->co_linetable = r->linetable;
		l->co_code = r->co_code;
		l->co_code_adaptive = r->adaptive;
		return 0;
	}
	return -ENOENT;
}

/* ---- DWARF ------------------------------------------------------------ */

enum { S_TS, S_FRAME, S_CFRAME, S_CODE, S_ASCII, S_COMPACT, S_BYTES,
       S_OBJECT, S_VAROBJ, S_N };

/* Member @path of @die into *out (as __u32); false if absent. */
static bool member(Dwarf_Die *die, const char *path, __u32 *out)
{
	uint64_t off;

	if (dwarf_layout__offset(die, path, &off) != 0 || off >= GT_PY_NONE)
		return false;
	*out = (__u32)off;
	return true;
}

/* Bit position of state.@name, relative to the state word. */
static bool state_bit(Dwarf_Die *ascii, const char *name, __u32 state_off,
		      __u8 *shift)
{
	uint64_t bit, size;
	char path[32];

	snprintf(path, sizeof(path), "state.%s", name);
	if (dwarf_layout__bitfield(ascii, path, &bit, &size) != 0 ||
	    bit < (uint64_t)state_off * 8 || bit - state_off * 8 > 31)
		return false;
	*shift = (__u8)(bit - state_off * 8);
	return true;
}

static bool dwarf_frame(Dwarf_Die *s, unsigned int v,
			struct gt_py_frame_layout *l)
{
	if (v <= V(10))
		return member(&s[S_TS], "frame", &l->ts_frame_off[0]) &&
		       member(&s[S_FRAME], "f_code", &l->fr_code) &&
		       member(&s[S_FRAME], "f_back", &l->fr_back) &&
		       member(&s[S_FRAME], "f_lasti", &l->fr_instr);
	if (v <= V(12) &&
	    !(member(&s[S_TS], "cframe", &l->ts_frame_off[0]) &&
	      member(&s[S_CFRAME], "current_frame", &l->ts_frame_off[1]) &&
	      member(&s[S_FRAME], "f_code", &l->fr_code) &&
	      member(&s[S_FRAME], "prev_instr", &l->fr_instr)))
		return false;
	if (v >= V(13) &&
	    !(member(&s[S_TS], "current_frame", &l->ts_frame_off[0]) &&
	      member(&s[S_FRAME], "f_executable", &l->fr_code) &&
	      member(&s[S_FRAME], "instr_ptr", &l->fr_instr)))
		return false;
	return member(&s[S_FRAME], "previous", &l->fr_back) &&
	       member(&s[S_FRAME], "owner", &l->fr_owner);
}

static bool dwarf_code(Dwarf_Die *c, unsigned int v,
		       struct gt_py_frame_layout *l)
{
	if (!member(c, "co_filename", &l->co_filename) ||
	    !member(c, "co_name", &l->co_name) ||
	    !member(c, "co_firstlineno", &l->co_firstlineno) ||
	    !member(c, v <= V(9) ? "co_lnotab" : "co_linetable", &l->co_linetable))
		return false;
	if (v <= V(10))
		return member(c, "co_code", &l->co_code);
	return member(c, "co_qualname", &l->co_qualname) &&
	       member(c, "co_code_adaptive", &l->co_code_adaptive);
}

static bool dwarf_str(Dwarf_Die *s, unsigned int v,
		      struct gt_py_frame_layout *l)
{
	uint64_t asz, csz;

	if (!member(&s[S_OBJECT], "ob_type", &l->ob_type) ||
	    !member(&s[S_VAROBJ], "ob_size", &l->ob_size) ||
	    !member(&s[S_BYTES], "ob_sval", &l->bytes_data) ||
	    !member(&s[S_ASCII], "length", &l->str_length) ||
	    !member(&s[S_ASCII], "state", &l->str_state) ||
	    dwarf_layout__size(&s[S_ASCII], &asz) != 0 ||
	    dwarf_layout__size(&s[S_COMPACT], &csz) != 0 ||
	    !state_bit(&s[S_ASCII], "kind", l->str_state, &l->str_kind_shift) ||
	    !state_bit(&s[S_ASCII], "compact", l->str_state, &l->str_compact_shift) ||
	    !state_bit(&s[S_ASCII], "ascii", l->str_state, &l->str_ascii_shift))
		return false;
	if (v <= V(11) &&
	    !state_bit(&s[S_ASCII], "ready", l->str_state, &l->str_ready_shift))
		return false;
	l->str_ascii_data = (__u32)asz;
	l->str_compact_data = (__u32)csz;
	return true;
}

static int from_dwarf(struct py_target *t, struct gt_py_frame_layout *l)
{
	unsigned int v = l->py_version;
	const char *names[S_N] = {
		[S_TS] = "_ts|PyThreadState",
		[S_FRAME] = v <= V(10) ? "_frame|PyFrameObject" : "_PyInterpreterFrame",
		[S_CFRAME] = "_PyCFrame",
		[S_CODE] = "PyCodeObject",
		[S_ASCII] = "PyASCIIObject",
		[S_COMPACT] = "PyCompactUnicodeObject",
		[S_BYTES] = "PyBytesObject",
		[S_OBJECT] = "_object|PyObject",
		[S_VAROBJ] = "PyVarObject",
	};
	Dwarf *dw = elf_image__dwarf(t->img);
	Dwarf_Die s[S_N];
	bool found[S_N];
	size_t i;

	if (!dw)
		return -ENOENT;
	/* _PyCFrame is looked for always, needed in 3.11-3.12 only */
	dwarf_layout__find_structs(dw, names, s, found, S_N);
	for (i = 0; i < S_N; i++)
		if (!found[i] && (i != S_CFRAME || (v >= V(11) && v <= V(12))))
			return -ENOENT;
	if (!dwarf_frame(s, v, l) || !dwarf_code(&s[S_CODE], v, l) ||
	    !dwarf_str(s, v, l))
		return -ENOENT;
	return 0;
}

/* ---- _Py_DebugOffsets (3.13+) ----------------------------------------- */

/*
 * _Py_DebugOffsets is the first member of _PyRuntime (section .PyRuntime),
 * "xdebugpy" then PY_VERSION_HEX then free_threaded, then sections of
 * uint64_t fields, each starting with the size of its struct
 * (Include/internal/pycore_runtime.h 3.13, pycore_debug_offsets.h 3.14).
 * The sections this code reads keep their leading fields in both, but the
 * number of fields before them differs (3.14 adds threads_main to
 * interpreter_state, stackpointer to interpreter_frame, set_object before
 * dict_object), so each is found by its shape, in order:
 *   thread_state      {size, prev 0, next 8, interp 16, current_frame, ...}
 *   interpreter_frame {size, previous 8, executable 0, instr_ptr, localsplus, owner}
 *   code_object       {size, filename f, name f+8, qualname f+16, linetable,
 *                      firstlineno, argcount, localsplusnames,
 *                      localspluskinds, co_code_adaptive}
 *   pyobject          {16, ob_type 8}
 *   bytes_object      {size, ob_size 16, ob_sval 32}
 *   unicode_object    {size, state 32, length 16, asciiobject_size}
 * and every value is checked against its struct's size.
 */
#define DBG_LEN 1024
#define DBG_WORDS (DBG_LEN / 8)

static int read_dbg(struct py_target *t, uint64_t *w)
{
	uint64_t rt;
	struct iovec local = { w, DBG_LEN }, remote;

	if (elf_image__find_symbol(t->img, "_PyRuntime", &rt, NULL) != 0)
		return -ENOENT;
	if (elf_image__read(t->img, rt, w, DBG_LEN) == 0 &&
	    memcmp(w, "xdebugpy", 8) == 0)
		return 0;
	remote.iov_base = (void *)(uintptr_t)(rt + t->load_bias);
	remote.iov_len = DBG_LEN;
	if (process_vm_readv(t->pid, &local, 1, &remote, 1, 0) != DBG_LEN)
		return -ENOENT;
	return memcmp(w, "xdebugpy", 8) == 0 ? 0 : -ENOENT;
}

static size_t find_ts(const uint64_t *w, size_t from)
{
	size_t i;

	for (i = from; i + 5 < DBG_WORDS; i++)
		if (w[i] >= 64 && w[i] < 65536 && w[i + 1] == 0 &&
		    w[i + 2] == 8 && w[i + 3] == 16 && w[i + 4] < w[i])
			return i;
	return 0;
}

static size_t find_iframe(const uint64_t *w, size_t from)
{
	size_t i;

	for (i = from; i < from + 8 && i + 6 < DBG_WORDS; i++)
		if (w[i] >= 48 && w[i] <= 512 && w[i + 1] == 8 &&
		    w[i + 2] == 0 && w[i + 3] < w[i] && w[i + 5] < w[i])
			return i;
	return 0;
}

static size_t find_code(const uint64_t *w, size_t from)
{
	size_t i;

	for (i = from; i < from + 8 && i + 10 < DBG_WORDS; i++)
		if (w[i] >= 96 && w[i] <= 1024 && w[i + 1] >= 16 &&
		    w[i + 2] == w[i + 1] + 8 && w[i + 3] == w[i + 1] + 16 &&
		    w[i + 4] < w[i] && w[i + 5] < w[i] && w[i + 9] < w[i] &&
		    w[i + 9] > w[i + 1])
			return i;
	return 0;
}

/*
 * The first i >= from with w[i] in [lo, hi] (a struct size) and
 * w[i+1..i+n] == pat.
 */
static size_t find_shape(const uint64_t *w, size_t from, uint64_t lo,
			 uint64_t hi, const uint64_t *pat, size_t n)
{
	size_t i, k;

	for (i = from; i + n + 1 < DBG_WORDS; i++) {
		if (w[i] < lo || w[i] > hi)
			continue;
		for (k = 0; k < n; k++)
			if (w[i + 1 + k] != pat[k])
				break;
		if (k == n)
			return i;
	}
	return 0;
}

static int dbg_objects(const uint64_t *w, size_t from,
		       struct gt_py_frame_layout *l)
{
	static const uint64_t pyobj[] = { 8 };       /* ob_type */
	static const uint64_t bytes[] = { 16, 32 };  /* ob_size, ob_sval */
	static const uint64_t uni[] = { 32, 16 };    /* state, length */
	size_t o, b, u;

	o = find_shape(w, from, 16, 16, pyobj, 1);
	b = o ? find_shape(w, o + 2, 33, 48, bytes, 2) : 0;
	u = b ? find_shape(w, b + 3, 48, 128, uni, 2) : 0;
	if (!u || (w[u + 3] != 40 && w[u + 3] != 48))
		return -EPROTO;
	l->ob_type = (__u32)w[o + 1];
	l->ob_size = (__u32)w[b + 1];
	l->bytes_data = (__u32)w[b + 2];
	l->str_state = (__u32)w[u + 1];
	l->str_length = (__u32)w[u + 2];
	l->str_ascii_data = (__u32)w[u + 3];
	/* PyUnicodeObject = PyCompactUnicodeObject + the data.any union
	 * (Include/cpython/unicodeobject.h 3.12-3.14) */
	l->str_compact_data = (__u32)(w[u] - 8);
	/* PyCompactUnicodeObject = PyASCIIObject + utf8_length + utf8 */
	return l->str_compact_data == l->str_ascii_data + 16 ? 0 : -EPROTO;
}

static int from_debug_offsets(struct py_target *t,
			      struct gt_py_frame_layout *l, char *why,
			      size_t len)
{
	uint64_t w[DBG_WORDS];
	size_t ts, fr, co;

	if (l->py_version < V(13) || read_dbg(t, w) != 0)
		return -ENOENT;
	if ((w[1] >> 24) != 3 || ((w[1] >> 16) & 0xff) != (uint64_t)t->minor ||
	    w[2] != 0) {
		snprintf(why, len, "it says version 0x%llx%s",
			 (unsigned long long)w[1], w[2] ? ", free-threaded" : "");
		return -EPROTO;
	}
	ts = find_ts(w, 6);
	fr = ts ? find_iframe(w, ts + 5) : 0;
	co = fr ? find_code(w, fr + 6) : 0;
	if (!co) {
		snprintf(why, len, "no %s section of the expected shape",
			 !ts ? "thread_state" : !fr ? "interpreter_frame" : "code_object");
		return -EPROTO;
	}
	l->ts_frame_off[0] = (__u32)w[ts + 4];
	l->fr_back = (__u32)w[fr + 1];
	l->fr_code = (__u32)w[fr + 2];
	l->fr_instr = (__u32)w[fr + 3];
	l->fr_owner = (__u32)w[fr + 5];
	l->co_filename = (__u32)w[co + 1];
	l->co_name = (__u32)w[co + 2];
	l->co_qualname = (__u32)w[co + 3];
	l->co_linetable = (__u32)w[co + 4];
	l->co_firstlineno = (__u32)w[co + 5];
	l->co_code_adaptive = (__u32)w[co + 9];
	if (dbg_objects(w, co + 10, l) != 0) {
		snprintf(why, len, "no pyobject/bytes_object/unicode_object sections of the expected shape");
		return -EPROTO;
	}
	return 0;
}

/* ---- entry points ----------------------------------------------------- */

static int supported(struct py_target *t, char *err, size_t errlen)
{
	if (!t || !t->img) {
		errbuf_set(err, errlen, "giltrace: no target");
		return -EINVAL;
	}
	if (t->major != 3 || t->minor < 6 || t->minor > 14) {
		errbuf_set(err, errlen,
			"giltrace: no Python frame layout for Python %d.%d: only 3.6 to 3.14 are known",
			t->major, t->minor);
		return -ENOTSUP;
	}
	if (t->free_threaded) {
		errbuf_set(err, errlen,
			"giltrace: no Python frame layout for the free-threaded build of Python %s",
			t->version);
		return -ENOTSUP;
	}
	return 0;
}

int py_layout__from(struct py_target *t, enum py_layout_source src,
		    struct gt_py_frame_layout *out, char *err, size_t errlen)
{
	struct gt_py_frame_layout l;
	char why[128] = "";
	int r;

	r = supported(t, err, errlen);
	if (r)
		return r;
	semantics(V((unsigned int)t->minor), &l);
	l.source = src;
	switch (src) {
	case PY_LAYOUT_DEBUG_OFFSETS:
		r = from_debug_offsets(t, &l, why, sizeof(why));
		break;
	case PY_LAYOUT_DWARF:
		r = from_dwarf(t, &l);
		break;
	case PY_LAYOUT_TABLE:
		r = from_table(t, &l);
		break;
	default:
		return -EINVAL;
	}
	if (r == 0)
		r = check(&l, why, sizeof(why));
	if (r == 0)
		l.fr_span = frame_span(&l);
	if (r == -ENOENT)
		errbuf_set(err, errlen, "giltrace: no %s frame layout for Python %s (%s)",
			py_layout__source_name(src), t->version, t->interp);
	else if (r)
		errbuf_set(err, errlen,
			"giltrace: the %s frame layout of Python %s (%s) fails its checks: %s",
			py_layout__source_name(src), t->version, t->interp, why);
	else
		*out = l;
	return r;
}

int py_layout__get(struct py_target *t, struct gt_py_frame_layout *out,
		   const char **source_name, char *err, size_t errlen)
{
	static const enum py_layout_source order[] = {
		PY_LAYOUT_DEBUG_OFFSETS, PY_LAYOUT_DWARF, PY_LAYOUT_TABLE,
	};
	size_t i;
	int r;

	r = supported(t, err, errlen);
	if (r)
		return r;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (py_layout__from(t, order[i], out, NULL, 0) == 0) {
			if (source_name)
				*source_name = py_layout__source_name(order[i]);
			return 0;
		}
	}
	errbuf_set(err, errlen,
		"giltrace: no Python frame layout for Python %s (%s): no _Py_DebugOffsets, no DWARF, not in the built-in table; install the interpreter's debug symbols",
		t->version, t->interp);
	return -ENOENT;
}
