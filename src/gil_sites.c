/* SPDX-License-Identifier: MIT */
/*
 * gil_sites: the addresses to probe for CPython's take_gil and drop_gil.
 *
 * Both functions are static (Python/ceval_gil.h 3.6-3.11, Python/ceval_gil.c
 * 3.12-3.13), so they only exist in .symtab, of the binary or of its debug
 * file. Two kinds of site:
 *
 * - Out-of-line copies: ELF FUNC symbols named take_gil/drop_gil or a
 *   compiler clone of them (gcc: take_gil.constprop.0 in pyenv 3.8.18,
 *   take_gil.lto_priv.0 in Debian 12's LTO python3.11). `.cold` and `.part.N`
 *   pieces are not entries and are skipped.
 * - Inlined instances: DW_TAG_inlined_subroutine DIEs whose abstract origin
 *   (followed through chains, across CUs with LTO) is named take_gil or
 *   drop_gil, probed at their entry pc. Debian 12's python3.11 inlines
 *   drop_gil into PyEval_SaveThread, _Py_read, os_stat, os_listdir and
 *   _io_FileIO_write; pyenv 3.13.0 into PyEval_ReleaseLock.
 *
 * The DWARF walk only descends into subprograms that have code, lexical
 * blocks and inlined subroutines, and caches the classification of each
 * abstract origin, so the whole of a libpython is scanned in well under a
 * second.
 */
#include "gil_sites.h"
#include "errbuf.h"
#include "elf_image.h"

#include <ctype.h>
#include <dwarf.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALK_MAX_DEPTH 256

const char *gil_func__name(enum gil_func f)
{
	return f == GIL_TAKE ? "take_gil" : "drop_gil";
}

/* ---- the site list ----------------------------------------------------- */

struct finder {
	struct elf_image *img;
	struct gil_sites *out;
	size_t cap;
	int err;
};

static struct gil_site *site_at(const struct gil_sites *s, enum gil_func f,
				uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].vaddr == vaddr && s->v[i].func == f)
			return &s->v[i];
	return NULL;
}

static bool any_site_at(const struct gil_sites *s, uint64_t vaddr)
{
	return site_at(s, GIL_TAKE, vaddr) || site_at(s, GIL_DROP, vaddr);
}

static struct gil_site *site_new(struct finder *f)
{
	struct gil_sites *s = f->out;

	if (s->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 8;
		void *p = realloc(s->v, nc * sizeof(*s->v));

		if (!p) {
			f->err = -ENOMEM;
			return NULL;
		}
		s->v = p;
		f->cap = nc;
	}
	memset(&s->v[s->n], 0, sizeof(s->v[0]));
	return &s->v[s->n++];
}

/* ---- out-of-line copies ------------------------------------------------ */

/*
 * Is @s (what follows "take_gil"/"drop_gil") empty or a chain of gcc/clang
 * clone suffixes? ".constprop.N", ".isra.N", ".lto_priv.N", ".llvm.N",
 * ".localalias" are entries; ".cold", ".part.N" and anything unknown are not.
 */
static bool clone_suffix(const char *s)
{
	static const char *const ok[] = {
		"constprop", "isra", "lto_priv", "llvm", "localalias",
	};
	size_t i, n;

	while (*s) {
		bool known = false;

		if (*s++ != '.')
			return false;
		n = strcspn(s, ".");
		for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			if (strlen(ok[i]) == n && strncmp(s, ok[i], n) == 0)
				known = true;
		if (!known)
			return false;
		s += n;
		if (s[0] == '.' && isdigit((unsigned char)s[1]))
			for (s++; isdigit((unsigned char)*s); s++)
				;
	}
	return true;
}

static bool gil_symbol(const char *name, enum gil_func *f)
{
	if (strncmp(name, "take_gil", 8) == 0)
		*f = GIL_TAKE;
	else if (strncmp(name, "drop_gil", 8) == 0)
		*f = GIL_DROP;
	else
		return false;
	return clone_suffix(name + 8);
}

static int on_symbol(const char *name, uint64_t vaddr, uint64_t size,
		     int type, int bind, void *ctx)
{
	struct finder *f = ctx;
	struct gil_site *site;
	enum gil_func fn;
	uint64_t off;

	if (type != STT_FUNC || !gil_symbol(name, &fn))
		return 0;
	if (elf_image__vaddr_to_offset(f->img, vaddr, &off) != 0)
		return 0;       /* not in an executable segment: not code */
	site = site_at(f->out, fn, vaddr);
	if (site) {
		/* An alias at the same address: keep the plain name. */
		if (strlen(name) < strlen(site->symbol))
			snprintf(site->symbol, sizeof(site->symbol), "%s", name);
		return 0;
	}
	site = site_new(f);
	if (!site)
		return f->err;
	site->func = fn;
	snprintf(site->symbol, sizeof(site->symbol), "%s", name);
	site->vaddr = vaddr;
	site->offset = off;
	site->size = size;
	return 0;
}

/* ---- inlined instances (DWARF) ----------------------------------------- */

enum { CLS_OTHER = 2 };  /* else an enum gil_func */

/* Classification of abstract-origin DIEs, keyed by their address in the
 * mapped debug section (unique across CUs and alt files). */
struct origin_cache {
	const void **key;
	unsigned char *cls;
	size_t cap, n;
};

struct walk {
	struct finder *f;
	struct origin_cache cache;
	size_t n_inlined_dies;
};

static int cache_grow(struct origin_cache *c)
{
	size_t nc = c->cap ? c->cap * 2 : 1024, i;
	const void **k = calloc(nc, sizeof(*k));
	unsigned char *v = calloc(nc, 1);

	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < c->cap; i++) {
		size_t h;

		if (!c->key[i])
			continue;
		h = ((uintptr_t)c->key[i] >> 3) * 0x9E3779B97F4A7C15ull & (nc - 1);
		while (k[h])
			h = (h + 1) & (nc - 1);
		k[h] = c->key[i];
		v[h] = c->cls[i];
	}
	free(c->key);
	free(c->cls);
	c->key = k;
	c->cls = v;
	c->cap = nc;
	return 0;
}

/* Slot of @key: its own, or the empty one where it belongs. */
static size_t cache_slot(struct origin_cache *c, const void *key)
{
	size_t h = ((uintptr_t)key >> 3) * 0x9E3779B97F4A7C15ull & (c->cap - 1);

	while (c->key[h] && c->key[h] != key)
		h = (h + 1) & (c->cap - 1);
	return h;
}

/* Name of a subprogram-like DIE, following abstract_origin/specification. */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;

	if (!dwarf_attr_integrate(die, DW_AT_name, &a))
		return NULL;
	return dwarf_formstring(&a);
}

static int classify_name(const char *name)
{
	if (!name)
		return CLS_OTHER;
	if (strcmp(name, "take_gil") == 0)
		return GIL_TAKE;
	if (strcmp(name, "drop_gil") == 0)
		return GIL_DROP;
	return CLS_OTHER;
}

static int classify(struct walk *w, Dwarf_Die *origin)
{
	struct origin_cache *c = &w->cache;
	size_t h;
	int cls;

	if ((c->n + 1) * 2 > c->cap && cache_grow(c) != 0)
		return classify_name(die_name(origin));
	h = cache_slot(c, origin->addr);
	if (c->key[h])
		return c->cls[h];
	cls = classify_name(die_name(origin));
	c->key[h] = origin->addr;
	c->cls[h] = (unsigned char)cls;
	c->n++;
	return cls;
}

/* Entry address of an inlined instance: DW_AT_entry_pc (an address, or in
 * DWARF 5 a constant offset from the instance's base), else its lowest pc. */
static int entry_pc(Dwarf_Die *die, uint64_t *pc)
{
	Dwarf_Addr low = 0, base, start, end, best = (Dwarf_Addr)-1;
	bool have_low = dwarf_lowpc(die, &low) == 0;
	Dwarf_Attribute a;
	Dwarf_Word off;
	ptrdiff_t it = 0;

	while ((it = dwarf_ranges(die, it, &base, &start, &end)) > 0)
		if (start < best && start < end)
			best = start;
	if (have_low && low < best)
		best = low;

	if (dwarf_attr(die, DW_AT_entry_pc, &a)) {
		unsigned int form = dwarf_whatform(&a);
		Dwarf_Addr addr;

		if (form == DW_FORM_addr || form == DW_FORM_addrx ||
		    form == DW_FORM_GNU_addr_index ||
		    (form >= DW_FORM_addrx1 && form <= DW_FORM_addrx4)) {
			if (dwarf_formaddr(&a, &addr) == 0) {
				*pc = addr;
				return 0;
			}
		} else if (dwarf_formudata(&a, &off) == 0 &&
			   best != (Dwarf_Addr)-1) {
			*pc = (have_low ? low : best) + off;
			return 0;
		}
	}
	if (best == (Dwarf_Addr)-1)
		return -ENOENT;
	*pc = best;
	return 0;
}

static void add_inlined(struct walk *w, Dwarf_Die *die, Dwarf_Die *sub,
			enum gil_func fn)
{
	struct finder *f = w->f;
	struct gil_site *site;
	const char *caller;
	uint64_t pc, off;

	if (entry_pc(die, &pc) != 0 || pc == 0)
		return;         /* optimized away, or discarded at link time */
	if (any_site_at(f->out, pc))
		return;         /* the out-of-line entry, or seen already */
	if (sub && classify_name(die_name(sub)) == (int)fn)
		return;         /* inside an out-of-line copy of itself */
	if (elf_image__vaddr_to_offset(f->img, pc, &off) != 0)
		return;
	caller = sub ? die_name(sub) : NULL;
	site = site_new(f);
	if (!site)
		return;
	site->func = fn;
	site->inlined = true;
	snprintf(site->symbol, sizeof(site->symbol), "%s", gil_func__name(fn));
	snprintf(site->caller, sizeof(site->caller), "%s",
		 caller ? caller : "?");
	site->vaddr = pc;
	site->offset = off;
}

static void check_inlined(struct walk *w, Dwarf_Die *die, Dwarf_Die *sub)
{
	Dwarf_Attribute a;
	Dwarf_Die origin;
	int cls;

	w->n_inlined_dies++;
	if (!dwarf_attr(die, DW_AT_abstract_origin, &a) ||
	    !dwarf_formref_die(&a, &origin))
		return;
	cls = classify(w, &origin);
	if (cls != CLS_OTHER)
		add_inlined(w, die, sub, (enum gil_func)cls);
}

static bool has_code(Dwarf_Die *die)
{
	return dwarf_hasattr(die, DW_AT_low_pc) ||
	       dwarf_hasattr(die, DW_AT_ranges);
}

/* Visit the children of @parent; @sub is the nearest enclosing subprogram. */
static void walk_children(struct walk *w, Dwarf_Die *parent, Dwarf_Die *sub,
			  int depth)
{
	Dwarf_Die child;

	if (depth > WALK_MAX_DEPTH || w->f->err ||
	    dwarf_child(parent, &child) != 0)
		return;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_subprogram:
			/* abstract instances and declarations have no code */
			if (has_code(&child))
				walk_children(w, &child, &child, depth + 1);
			break;
		case DW_TAG_inlined_subroutine:
			check_inlined(w, &child, sub);
			walk_children(w, &child, sub, depth + 1);
			break;
		case DW_TAG_lexical_block:
		case DW_TAG_namespace:
			walk_children(w, &child, sub, depth + 1);
			break;
		default:
			break;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
}

static void find_inlined(struct finder *f, Dwarf *dw)
{
	struct walk w = { .f = f };
	Dwarf_CU *cu = NULL;
	Dwarf_Die cudie;
	uint8_t unit_type;
	Dwarf_Half ver;

	while (!f->err &&
	       dwarf_get_units(dw, cu, &cu, &ver, &unit_type, &cudie, NULL) == 0) {
		if (unit_type != DW_UT_compile && unit_type != DW_UT_partial)
			continue;
		walk_children(&w, &cudie, NULL, 0);
	}
	free(w.cache.key);
	free(w.cache.cls);
}

/* ---- errors ------------------------------------------------------------ */

/*
 * Debian package holding the debug symbols of a system Python, or NULL.
 * Debian 12's python3.11-dbg ships them for both /usr/bin/python3.11 and
 * libpython3.11.so.1.0 (libpython3.11-dbg is the separate debug *build*).
 */
static const char *dbg_package(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/');
	unsigned int major, minor;
	int n = 0;

	if (strncmp(path, "/usr/bin/", 9) && strncmp(path, "/usr/lib/", 9) &&
	    strncmp(path, "/bin/", 5) && strncmp(path, "/lib/", 5))
		return NULL;
	base = base ? base + 1 : path;
	if (strncmp(base, "lib", 3) == 0)
		base += 3;
	if (sscanf(base, "python%u.%u%n", &major, &minor, &n) != 2 || !n)
		return NULL;
	snprintf(buf, len, "python%u.%u-dbg", major, minor);
	return buf;
}

#define MISSING "giltrace: %s is stripped and its debug symbols are missing: install "

static void missing_symbols_err(struct elf_image *img, bool take, bool drop,
				char *err, size_t errlen)
{
	const char *path = elf_image__path(img), *id = elf_image__build_id(img);
	const char *dbg = elf_image__debug_path(img), *root = elf_image__root(img);
	const char *rel = path;
	char pkg[64], want[320];

	if (root[0] && strncmp(path, root, strlen(root)) == 0)
		rel = path + strlen(root);
	if (!elf_image__stripped(img) && !take && !drop) {
		errbuf_set(err, errlen, "giltrace: %s has no take_gil/drop_gil symbols: "
			"it is not a CPython 3 interpreter or libpython (Python 2 "
			"uses a different GIL lock)", path);
	} else if (!elf_image__stripped(img)) {
		errbuf_set(err, errlen, "giltrace: %s has %s but no %s symbol: "
			"unsupported CPython build", path,
			take ? "take_gil" : "drop_gil", take ? "drop_gil" : "take_gil");
	} else if (dbg) {
		errbuf_set(err, errlen, "giltrace: %s is stripped and its debug file %s "
			"has no symbols: install the full debug symbols of this build",
			path, dbg);
	} else {
		if (id && strlen(id) > 2)
			snprintf(want, sizeof(want),
				 " (expected /usr/lib/debug/.build-id/%.2s/%s.debug)",
				 id, id + 2);
		else
			snprintf(want, sizeof(want), " (it has no build-id)");
		if (dbg_package(rel, pkg, sizeof(pkg)))
			errbuf_set(err, errlen, MISSING "%s%s", path, pkg, want);
		else
			errbuf_set(err, errlen, MISSING "its debug symbols or use an "
				"unstripped build%s", path, want);
	}
}

/* ---- entry point ------------------------------------------------------- */

static int site_cmp(const void *a, const void *b)
{
	const struct gil_site *x = a, *y = b;

	if (x->func != y->func)
		return x->func < y->func ? -1 : 1;
	if (x->inlined != y->inlined)
		return x->inlined ? 1 : -1;
	if (x->vaddr != y->vaddr)
		return x->vaddr < y->vaddr ? -1 : 1;
	return 0;
}

int gil_sites__find(struct elf_image *img, struct gil_sites *out,
		    char *err, size_t errlen)
{
	struct finder f = { .img = img, .out = out };
	bool take = false, drop = false;
	size_t i;
	Dwarf *dw;
	int r;

	memset(out, 0, sizeof(*out));
	r = elf_image__foreach_symbol(img, on_symbol, &f);
	if (r || f.err) {
		r = r ? r : f.err;
		errbuf_set(err, errlen, "giltrace: reading the symbols of %s: %s",
			elf_image__path(img), strerror(-r));
		goto fail;
	}
	for (i = 0; i < out->n; i++) {
		take |= out->v[i].func == GIL_TAKE;
		drop |= out->v[i].func == GIL_DROP;
	}
	if (!take || !drop) {
		missing_symbols_err(img, take, drop, err, errlen);
		r = -ENOENT;
		goto fail;
	}
	dw = elf_image__dwarf(img);
	if (dw) {
		find_inlined(&f, dw);
		if (f.err) {
			r = f.err;
			errbuf_set(err, errlen, "giltrace: reading the DWARF of %s: %s",
				elf_image__path(img), strerror(-r));
			goto fail;
		}
		out->used_dwarf = true;
	}
	qsort(out->v, out->n, sizeof(*out->v), site_cmp);
	return 0;
fail:
	gil_sites__free(out);
	return r;
}

void gil_sites__free(struct gil_sites *s)
{
	if (!s)
		return;
	free(s->v);
	s->v = NULL;
	s->n = 0;
	s->used_dwarf = false;
}
