/* SPDX-License-Identifier: MIT */
/*
 * py_symbolize: code object + instruction position -> names, file, line
 * (see py_symbolize.h).
 *
 * Line numbers, as CPython computes them (PyCode_Addr2Line; a negative
 * offset gives co_firstlineno in every version):
 * - 3.6-3.9, co_lnotab (Objects/lnotab_notes.txt): pairs (address delta,
 *   line delta), the line delta signed since 3.6; walk while the running
 *   address is <= the offset.
 * - 3.10, co_linetable (Objects/lnotab_notes.txt 3.10, PEP 626): pairs
 *   (unsigned start delta, signed line delta), -128 = no line for that
 *   range (the running line is unchanged); zero-width ranges are skipped
 *   (_PyLineTable_NextAddressRange, Objects/codeobject.c 3.10).
 * - 3.11+, the location table (Objects/locations.md): entries whose first
 *   byte has bit 7 set, bits 3-6 a code, bits 0-2 the length - 1 in code
 *   units. Code 15: no location; 14 (long) and 13 (no columns): a signed
 *   varint line delta follows; 10-12: line delta 0-2; 0-9: same line.
 *   Varints are 6-bit chunks, bit 6 = more; signed: bit 0 = sign.
 */
#include "py_symbolize.h"
#include "target.h"
#include "elf_image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define NBUCKETS 4096
#define DEFAULT_CAP 4096             /* code objects cached */
#define MAX_BYTES (64 << 20)         /* bytes cached, all entries together */
#define MAX_LINETABLE (256 * 1024)   /* longer line tables are not read: line 0 */
#define LCACHE 8                     /* (offset, line) pairs per code object */

struct token {              /* what identifies one code object's contents */
	uint64_t filename, name, qualname, linetable;
	int32_t firstlineno;
};

struct entry {
	uint64_t code;
	struct token tok;
	char *function, *qualname, *file;
	uint8_t *lines;             /* the line table, NULL if unreadable */
	size_t nlines;
	int64_t code_len;           /* bytecode length in bytes, -1 unknown */
	size_t bytes;               /* memory this entry holds */
	struct { int64_t off; int line; bool used; } lc[LCACHE];
	struct entry *hnext;        /* hash chain */
	struct entry *prev, *next;  /* LRU list, most recent first */
};

struct py_symbolizer {
	pid_t pid;
	struct gt_py_frame_layout l;
	uint64_t code_type, str_type, bytes_type;   /* runtime addresses */
	size_t hdr_len;             /* bytes of a code object read each lookup */
	struct entry *buckets[NBUCKETS];
	struct entry *head, *tail;
	size_t count, cap, bytes;
	struct py_symbolize_stats st;
};

/* ---- reading the target ----------------------------------------------- */

static int rread(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t n;

	if (!addr || addr + len < addr)
		return -EFAULT;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return errno == ESRCH || errno == EPERM ? -errno : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

static uint64_t get_u64(const uint8_t *b, uint32_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static int32_t get_i32(const uint8_t *b, uint32_t off)
{
	int32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

/* ---- strings ---------------------------------------------------------- */

/* Appends code point @c to @out (room @len incl. NUL) at *pos; false when
 * it does not fit. Invalid code points become U+FFFD. */
static bool put_utf8(char *out, size_t len, size_t *pos, uint32_t c)
{
	char b[4];
	size_t n;

	if (c == 0 || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		c = 0xfffd;
	if (c < 0x80) {
		b[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | (c >> 6));
		b[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	if (*pos + n >= len)
		return false;
	memcpy(out + *pos, b, n);
	*pos += n;
	return true;
}

/* Code points of kind @kind (1, 2, 4 bytes) to UTF-8, "..." when cut. */
static void encode(const uint8_t *data, size_t nchars, unsigned int kind,
		   bool cut, char *out, size_t len)
{
	size_t i, pos = 0;

	for (i = 0; i < nchars; i++) {
		uint32_t c;

		if (kind == 1)
			c = data[i];
		else if (kind == 2)
			c = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
		else
			memcpy(&c, data + 4 * i, 4);
		if (!put_utf8(out, len - 3, &pos, c)) {
			cut = true;
			break;
		}
	}
	if (cut)
		memcpy(out + pos, "...", 3), pos += 3;
	out[pos] = '\0';
}

/*
 * Reads str object @addr into @out as UTF-8. The object must be an exact
 * str (ob_type == &PyUnicode_Type), ready (up to 3.11), of kind 1, 2 or 4.
 */
static int read_str(struct py_symbolizer *s, uint64_t addr, char *out,
		    size_t len)
{
	const struct gt_py_frame_layout *l = &s->l;
	uint8_t hdr[160], *data;
	uint32_t state, kind;
	int64_t n;
	uint64_t where;
	size_t take, hlen = l->str_compact_data + 8;
	bool compact, ascii;
	int r;

	out[0] = '\0';
	if (hlen > sizeof(hdr) || (addr & 7))
		return -EINVAL;
	r = rread(s->pid, addr, hdr, l->str_ascii_data);
	if (r)
		return r;
	if (get_u64(hdr, l->ob_type) != s->str_type)
		return -EINVAL;
	memcpy(&state, hdr + l->str_state, 4);
	memcpy(&n, hdr + l->str_length, 8);
	kind = (state >> l->str_kind_shift) & 7;
	compact = (state >> l->str_compact_shift) & 1;
	ascii = (state >> l->str_ascii_shift) & 1;
	if (n < 0 || n > (1 << 30) || (kind != 1 && kind != 2 && kind != 4) ||
	    (ascii && kind != 1) ||
	    (l->str_ready_shift != 0xff && !((state >> l->str_ready_shift) & 1)))
		return -EINVAL;
	/* a character takes at least one byte of @out */
	take = (size_t)n < len ? (size_t)n : len;
	if (compact && ascii) {
		where = addr + l->str_ascii_data;
	} else if (compact) {
		where = addr + l->str_compact_data;
	} else {
		/* legacy string: PyUnicodeObject.data.any after the compact part */
		r = rread(s->pid, addr, hdr, hlen);
		if (r)
			return r;
		where = get_u64(hdr, l->str_compact_data);
	}
	if (take == 0)
		return 0;
	data = malloc(take * kind);
	if (!data)
		return -ENOMEM;
	r = rread(s->pid, where, data, take * kind);
	if (!r && ascii) {
		size_t i;

		for (i = 0; i < take; i++)
			if (data[i] >= 0x80)
				r = -EINVAL;
	}
	if (!r)
		encode(data, take, kind, take < (size_t)n, out, len);
	free(data);
	return r;
}

/* Reads bytes object @addr; *buf is malloc'd. */
static int read_bytes(struct py_symbolizer *s, uint64_t addr, uint8_t **buf,
		      size_t *len)
{
	const struct gt_py_frame_layout *l = &s->l;
	uint8_t hdr[64];
	int64_t n;
	int r;

	*buf = NULL;
	*len = 0;
	if ((addr & 7) || l->bytes_data > sizeof(hdr))
		return -EINVAL;
	r = rread(s->pid, addr, hdr, l->bytes_data);
	if (r)
		return r;
	if (get_u64(hdr, l->ob_type) != s->bytes_type)
		return -EINVAL;
	memcpy(&n, hdr + l->ob_size, 8);
	if (n < 0 || n > MAX_LINETABLE)
		return -E2BIG;
	*buf = malloc(n ? (size_t)n : 1);
	if (!*buf)
		return -ENOMEM;
	r = n ? rread(s->pid, addr + l->bytes_data, *buf, (size_t)n) : 0;
	if (r) {
		free(*buf);
		*buf = NULL;
		return r;
	}
	*len = (size_t)n;
	return 0;
}

/* Length of bytes object @addr (co_code up to 3.10), or -1. */
static int64_t bytes_len(struct py_symbolizer *s, uint64_t addr)
{
	uint8_t hdr[64];
	int64_t n;

	if ((addr & 7) || s->l.ob_size + 8 > sizeof(hdr) ||
	    rread(s->pid, addr, hdr, s->l.ob_size + 8) != 0 ||
	    get_u64(hdr, s->l.ob_type) != s->bytes_type)
		return -1;
	memcpy(&n, hdr + s->l.ob_size, 8);
	return n >= 0 ? n : -1;
}

/* ---- line tables ------------------------------------------------------ */

/* 3.6-3.9: co_lnotab */
static int line_lnotab(const uint8_t *p, size_t n, int first, int64_t off)
{
	int64_t addr = 0;
	int line = first;
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		addr += p[i];
		if (addr > off)
			break;
		line += (int8_t)p[i + 1];
	}
	return line;
}

/* 3.10: co_linetable, PEP 626 pairs */
static int line_pep626(const uint8_t *p, size_t n, int first, int64_t off)
{
	int64_t start = -1, end = 0;
	int computed = first, line = -1;
	size_t i = 0;

	while (end <= off) {
		if (i + 1 >= n)
			return -1;
		do {    /* advance; zero-width ranges are skipped */
			start = end;
			end += p[i];
			if ((int8_t)p[i + 1] == -128) {
				line = -1;
			} else {
				computed += (int8_t)p[i + 1];
				line = computed;
			}
			i += 2;
		} while (start == end && i + 1 < n);
	}
	return start <= off ? line : -1;
}

static int varint(const uint8_t *p, size_t n, size_t *i, uint32_t *v)
{
	unsigned int shift = 0;
	uint32_t b;

	*v = 0;
	do {
		if (*i >= n || shift > 28)
			return -1;
		b = p[(*i)++];
		*v |= (b & 63) << shift;
		shift += 6;
	} while (b & 64);
	return 0;
}

static int svarint(const uint8_t *p, size_t n, size_t *i, int *v)
{
	uint32_t u;

	if (varint(p, n, i, &u))
		return -1;
	*v = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
	return 0;
}

/* 3.11+: the location table; offsets in bytes (2 per code unit) */
static int line_locations(const uint8_t *p, size_t n, int first, int64_t off)
{
	int64_t end = 0;
	int computed = first, line = -1;
	size_t i = 0;

	while (end <= off) {
		unsigned int b, code;
		size_t j;
		int d = 0;

		if (i >= n || !(p[i] & 128))
			return -1;
		b = p[i];
		code = (b >> 3) & 15;
		j = i + 1;
		if (code == 13 || code == 14) {
			if (svarint(p, n, &j, &d))
				return -1;
		} else if (code >= 10 && code <= 12) {
			d = (int)code - 10;
		}
		computed += d;
		line = code == 15 ? -1 : computed;
		end += ((b & 7) + 1) * 2;
		/* the next entry starts at the next byte with bit 7 set */
		for (i++; i < n && !(p[i] & 128); i++)
			;
	}
	return line;
}

static int compute_line(const struct entry *e, unsigned int kind, int64_t off)
{
	int line;

	if (off < 0)
		return e->tok.firstlineno;
	if (!e->lines || (e->code_len >= 0 && off >= e->code_len))
		return 0;
	switch (kind) {
	case GT_PY_LINES_LNOTAB:
		line = line_lnotab(e->lines, e->nlines, e->tok.firstlineno, off);
		break;
	case GT_PY_LINES_PEP626:
		line = line_pep626(e->lines, e->nlines, e->tok.firstlineno, off);
		break;
	case GT_PY_LINES_LOCATIONS:
		line = line_locations(e->lines, e->nlines, e->tok.firstlineno, off);
		break;
	default:
		return 0;
	}
	return line > 0 ? line : 0;
}

static int cached_line(struct entry *e, unsigned int kind, int64_t off)
{
	unsigned int slot = (unsigned int)((uint64_t)off >> 1) % LCACHE;

	if (e->lc[slot].used && e->lc[slot].off == off)
		return e->lc[slot].line;
	e->lc[slot].off = off;
	e->lc[slot].line = compute_line(e, kind, off);
	e->lc[slot].used = true;
	return e->lc[slot].line;
}

/* ---- cache ------------------------------------------------------------ */

static size_t bucket(uint64_t code)
{
	return (size_t)((code >> 4) * 0x9e3779b97f4a7c15ULL >> 52) % NBUCKETS;
}

static void lru_unlink(struct py_symbolizer *s, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(struct py_symbolizer *s, struct entry *e)
{
	e->next = s->head;
	e->prev = NULL;
	if (s->head)
		s->head->prev = e;
	s->head = e;
	if (!s->tail)
		s->tail = e;
}

static void entry_free(struct entry *e)
{
	free(e->function);
	free(e->qualname);
	free(e->file);
	free(e->lines);
	free(e);
}

static void drop(struct py_symbolizer *s, struct entry *e)
{
	struct entry **pp = &s->buckets[bucket(e->code)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(s, e);
	s->bytes -= e->bytes;
	entry_free(e);
	s->count--;
}

static struct entry *lookup(struct py_symbolizer *s, uint64_t code)
{
	struct entry *e;

	for (e = s->buckets[bucket(code)]; e; e = e->hnext)
		if (e->code == code)
			return e;
	return NULL;
}

static void insert(struct py_symbolizer *s, struct entry *e)
{
	size_t b = bucket(e->code);

	while ((s->count >= s->cap || s->bytes + e->bytes > MAX_BYTES) && s->tail) {
		drop(s, s->tail);
		s->st.evictions++;
	}
	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	lru_front(s, e);
	s->count++;
	s->bytes += e->bytes;
}

/* ---- code objects ----------------------------------------------------- */

static bool same_token(const struct token *a, const struct token *b)
{
	return a->filename == b->filename && a->name == b->name &&
	       a->qualname == b->qualname && a->linetable == b->linetable &&
	       a->firstlineno == b->firstlineno;
}

static char *dup_str(struct py_symbolizer *s, uint64_t addr, size_t max,
		     int *err)
{
	char *buf = malloc(max), *r;

	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = read_str(s, addr, buf, max);
	if (*err) {
		free(buf);
		return NULL;
	}
	r = strdup(buf);
	free(buf);
	if (!r)
		*err = -ENOMEM;
	return r;
}

/* A new entry for code object @code with header @hdr; NULL + *err. */
static struct entry *load(struct py_symbolizer *s, uint64_t code,
			  const uint8_t *hdr, const struct token *tok, int *err)
{
	const struct gt_py_frame_layout *l = &s->l;
	struct entry *e = calloc(1, sizeof(*e));
	int r;

	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	e->code = code;
	e->tok = *tok;
	e->function = dup_str(s, tok->name, sizeof(((struct py_frame_info *)0)->function), err);
	if (!e->function) {
		free(e);
		return NULL;
	}
	/* a file or qualified name that cannot be read is marked, not left out */
	e->file = dup_str(s, tok->filename, sizeof(((struct py_frame_info *)0)->file), &r);
	if (!e->file)
		e->file = strdup(PY_UNKNOWN);
	if (l->co_qualname != GT_PY_NONE) {
		e->qualname = dup_str(s, tok->qualname, sizeof(((struct py_frame_info *)0)->qualname), &r);
		if (!e->qualname)
			e->qualname = strdup(PY_UNKNOWN);
	}
	if (read_bytes(s, tok->linetable, &e->lines, &e->nlines) != 0)
		e->lines = NULL;
	if (l->co_code_adaptive != GT_PY_NONE) {
		/* 3.11+: ob_size is the bytecode's length in code units */
		int64_t units;

		memcpy(&units, hdr + l->ob_size, 8);
		e->code_len = units >= 0 && units < (1LL << 30) ? units * 2 : -1;
	} else {
		e->code_len = bytes_len(s, get_u64(hdr, l->co_code));
	}
	e->bytes = sizeof(*e) + strlen(e->function) + 1 + e->nlines +
		   (e->file ? strlen(e->file) + 1 : 0) +
		   (e->qualname ? strlen(e->qualname) + 1 : 0);
	*err = 0;
	return e;
}

static void fill(const struct entry *e, int line, struct py_frame_info *out)
{
	out->known = true;
	snprintf(out->function, sizeof(out->function), "%s", e->function);
	snprintf(out->qualname, sizeof(out->qualname), "%s",
		 e->qualname ? e->qualname : "");
	snprintf(out->file, sizeof(out->file), "%s",
		 e->file ? e->file : PY_UNKNOWN);
	out->line = line;
}

static int unknown(struct py_symbolizer *s, struct py_frame_info *out, int r)
{
	memset(out, 0, sizeof(*out));
	out->known = false;
	snprintf(out->function, sizeof(out->function), "%s", PY_UNKNOWN);
	s->st.failures++;
	return r;
}

/* Byte offset of the position, INT64_MIN when there is none. */
static int64_t byte_offset(const struct py_symbolizer *s, uint64_t code,
			   int64_t pos, enum py_pos_mode mode)
{
	const struct gt_py_frame_layout *l = &s->l;
	uint64_t base;

	if (mode == PY_POS_NONE)
		return INT64_MIN;
	if (mode == PY_POS_BYTES)
		return pos < 0 ? -1 : pos;
	switch (l->fr_instr_kind) {
	case GT_PY_INSTR_LASTI_BYTES:
		return (int32_t)(uint32_t)pos < 0 ? -1 : (int32_t)(uint32_t)pos;
	case GT_PY_INSTR_LASTI_UNITS:
		return (int32_t)(uint32_t)pos < 0 ? -1 :
		       2 * (int64_t)(int32_t)(uint32_t)pos;
	case GT_PY_INSTR_PREV_INSTR:
	case GT_PY_INSTR_PTR:
		base = code + l->co_code_adaptive;
		/* a new frame's prev_instr is one code unit before the first
		 * (3.11-3.12); anything further off is not a position */
		if ((uint64_t)pos + 2 < base)
			return INT64_MIN;
		return (int64_t)((uint64_t)pos - base);
	default:
		return INT64_MIN;
	}
}

static int frame_tok(struct py_symbolizer *s, uint64_t code, int64_t pos,
		     enum py_pos_mode mode, uint64_t name_tok,
		     struct py_frame_info *out);

int py_symbolize__frame_as(struct py_symbolizer *s, uint64_t code,
			   int64_t pos, enum py_pos_mode mode,
			   struct py_frame_info *out)
{
	return frame_tok(s, code, pos, mode, 0, out);
}

int py_symbolize__frame_tok(struct py_symbolizer *s, uint64_t code_addr,
			    uint64_t instr_pos_raw, uint64_t name_tok,
			    struct py_frame_info *out)
{
	return frame_tok(s, code_addr, (int64_t)instr_pos_raw, PY_POS_RAW,
			 name_tok, out);
}

static int frame_tok(struct py_symbolizer *s, uint64_t code, int64_t pos,
		     enum py_pos_mode mode, uint64_t name_tok,
		     struct py_frame_info *out)
{
	const struct gt_py_frame_layout *l = &s->l;
	uint8_t hdr[512];
	struct token tok;
	struct entry *e;
	int64_t off;
	int r;

	s->st.lookups++;
	if (!code || (code & 7))
		return unknown(s, out, -EINVAL);
	r = rread(s->pid, code, hdr, s->hdr_len);
	/* A process that is gone (-ESRCH) cannot confirm a cached entry:
	 * the address may have held another code object when it was cached
	 * (seen: a freed "<string>" module's name on a later function). The
	 * co_name pointer the BPF walker read at capture (@name_tok) can: a
	 * cached entry with the same one is that code object. */
	if (r == -ESRCH && name_tok && (e = lookup(s, code)) &&
	    e->tok.name == name_tok) {
		s->st.hits++;
		off = byte_offset(s, code, pos, mode);
		fill(e, off == INT64_MIN ? 0 : cached_line(e, l->co_lines_kind, off), out);
		return 0;
	}
	if (r)
		return unknown(s, out, r);
	if (get_u64(hdr, l->ob_type) != s->code_type)
		return unknown(s, out, -EINVAL);
	memset(&tok, 0, sizeof(tok));
	tok.filename = get_u64(hdr, l->co_filename);
	tok.name = get_u64(hdr, l->co_name);
	tok.linetable = get_u64(hdr, l->co_linetable);
	tok.firstlineno = get_i32(hdr, l->co_firstlineno);
	if (l->co_qualname != GT_PY_NONE)
		tok.qualname = get_u64(hdr, l->co_qualname);
	if (name_tok && tok.name != name_tok) {
		/* Not the code object captured: freed, address reused. */
		s->st.stale++;
		return unknown(s, out, -EINVAL);
	}
	e = lookup(s, code);
	if (e && !same_token(&e->tok, &tok)) {
		s->st.stale++;
		drop(s, e);
		e = NULL;
	}
	if (e) {
		s->st.hits++;
		lru_unlink(s, e);
		lru_front(s, e);
	} else {
		e = load(s, code, hdr, &tok, &r);
		if (!e)
			return unknown(s, out, r);
		insert(s, e);
	}
	off = byte_offset(s, code, pos, mode);
	fill(e, off == INT64_MIN ? 0 : cached_line(e, l->co_lines_kind, off), out);
	return 0;
}

int py_symbolize__frame(struct py_symbolizer *s, uint64_t code_addr,
			uint64_t instr_pos_raw, struct py_frame_info *out)
{
	return py_symbolize__frame_as(s, code_addr, (int64_t)instr_pos_raw,
				      PY_POS_RAW, out);
}

/* ---- frames ----------------------------------------------------------- */

static int rread_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return rread(pid, addr, v, sizeof(*v));
}

int py_symbolize__walk(struct py_symbolizer *s, uint64_t tstate,
		       uint64_t *code, uint64_t *pos, size_t max, size_t *n)
{
	const struct gt_py_frame_layout *l = &s->l;
	uint64_t f = tstate;
	size_t i, steps = 0;
	int r;

	*n = 0;
	for (i = 0; i < l->ts_frame_nderef && i < GT_PY_TS_PATH_MAX; i++) {
		r = rread_u64(s->pid, f + l->ts_frame_off[i], &f);
		if (r)
			return r;
	}
	/* shim frames count against a bound too: a corrupt chain cannot loop */
	while (f && *n < max && steps++ < 2 * max + 16) {
		uint64_t raw = 0;
		uint8_t owner;

		if (l->fr_owner != GT_PY_NONE) {
			r = rread(s->pid, f + l->fr_owner, &owner, 1);
			if (r)
				return r;
			if (owner == l->fr_owner_skip) {
				r = rread_u64(s->pid, f + l->fr_back, &f);
				if (r)
					return r;
				continue;
			}
		}
		r = rread_u64(s->pid, f + l->fr_code, &code[*n]);
		if (!r && l->fr_instr_size <= sizeof(raw))
			r = rread(s->pid, f + l->fr_instr, &raw, l->fr_instr_size);
		if (r)
			return r;
		code[*n] &= l->fr_code_mask;
		pos[(*n)++] = raw;
		r = rread_u64(s->pid, f + l->fr_back, &f);
		if (r)
			return r;
	}
	return f ? 1 : 0;
}

/* ---- lifecycle -------------------------------------------------------- */

static size_t header_len(const struct gt_py_frame_layout *l)
{
	const __u32 offs[] = { l->ob_type, l->ob_size, l->co_filename,
			       l->co_name, l->co_qualname, l->co_firstlineno,
			       l->co_linetable, l->co_code };
	size_t i, max = 0;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (offs[i] != GT_PY_NONE && offs[i] + 8 > max)
			max = offs[i] + 8;
	return max;
}

static int type_addr(struct py_target *t, const char *name, uint64_t *addr)
{
	uint64_t v;

	if (elf_image__find_symbol(t->img, name, &v, NULL) != 0)
		return -ENOENT;
	*addr = v + t->load_bias;
	return 0;
}

struct py_symbolizer *py_symbolize__new(struct py_target *t,
					const struct gt_py_frame_layout *l)
{
	struct py_symbolizer *s;

	if (!t || !t->img || !l) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->pid = t->pid;
	s->l = *l;
	s->cap = DEFAULT_CAP;
	s->hdr_len = header_len(l);
	if (s->hdr_len > 512 || s->hdr_len < 16 ||
	    type_addr(t, "PyCode_Type", &s->code_type) ||
	    type_addr(t, "PyUnicode_Type", &s->str_type) ||
	    type_addr(t, "PyBytes_Type", &s->bytes_type)) {
		free(s);
		errno = ENOENT;
		return NULL;
	}
	return s;
}

void py_symbolize__free(struct py_symbolizer *s)
{
	if (!s)
		return;
	while (s->head)
		drop(s, s->head);
	free(s);
}

void py_symbolize__stats(const struct py_symbolizer *s,
			 struct py_symbolize_stats *st)
{
	*st = s->st;
	st->entries = s->count;
}

void py_symbolize__set_capacity(struct py_symbolizer *s, size_t n)
{
	s->cap = n ? n : 1;
	while (s->count > s->cap && s->tail) {
		drop(s, s->tail);
		s->st.evictions++;
	}
}
