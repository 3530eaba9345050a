/* SPDX-License-Identifier: MIT */
/*
 * dwarf_layout: struct layouts from DWARF (see dwarf_layout.h). The member
 * helpers moved here from py_state.c unchanged in behaviour.
 */
#include "dwarf_layout.h"

#include <dwarf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Strip typedefs and qualifiers. */
static bool peel_type(Dwarf_Die *die)
{
	Dwarf_Attribute a;

	for (;;) {
		int tag = dwarf_tag(die);

		if (tag != DW_TAG_typedef && tag != DW_TAG_const_type &&
		    tag != DW_TAG_volatile_type && tag != DW_TAG_atomic_type &&
		    tag != DW_TAG_restrict_type)
			return true;
		if (!dwarf_attr_integrate(die, DW_AT_type, &a) ||
		    !dwarf_formref_die(&a, die))
			return false;
	}
}

static bool is_definition(Dwarf_Die *die)
{
	return !dwarf_hasattr(die, DW_AT_declaration) && dwarf_haschildren(die);
}

/*
 * Whether top-level DIE @die is a complete struct called @name, directly or
 * through a typedef; *out gets the struct.
 */
static bool struct_named(Dwarf_Die *die, const char *name, Dwarf_Die *out)
{
	int tag = dwarf_tag(die);
	const char *n;

	if (tag != DW_TAG_structure_type && tag != DW_TAG_typedef)
		return false;
	n = dwarf_diename(die);
	if (!n || strcmp(n, name) != 0)
		return false;
	*out = *die;
	if (tag == DW_TAG_typedef &&
	    (!peel_type(out) || dwarf_tag(out) != DW_TAG_structure_type))
		return false;
	return is_definition(out);
}

/* Calls @cb on every top-level DIE of every unit until it returns true. */
static void foreach_top_die(Dwarf *dw, bool (*cb)(Dwarf_Die *, void *),
			    void *ctx)
{
	Dwarf_Off off = 0, next;
	size_t hsize;

	while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu, die;

		if (dwarf_offdie(dw, off + hsize, &cu) &&
		    dwarf_child(&cu, &die) == 0) {
			do {
				if (cb(&die, ctx))
					return;
			} while (dwarf_siblingof(&die, &die) == 0);
		}
		off = next;
	}
}

struct find_one {
	const char *name;
	Dwarf_Die *out;
	bool found;
};

static bool find_one_cb(Dwarf_Die *die, void *ctx)
{
	struct find_one *f = ctx;

	f->found = struct_named(die, f->name, f->out);
	return f->found;
}

int dwarf_layout__find_struct(Dwarf *dw, const char *name, Dwarf_Die *out)
{
	struct find_one f = { name, out, false };

	if (!dw || !name)
		return -ENOENT;
	foreach_top_die(dw, find_one_cb, &f);
	return f.found ? 0 : -ENOENT;
}

int dwarf_layout__find_struct2(Dwarf *dw, const char *a, const char *b,
			       Dwarf_Die *out)
{
	if (dwarf_layout__find_struct(dw, a, out) == 0)
		return 0;
	return b ? dwarf_layout__find_struct(dw, b, out) : -ENOENT;
}

struct find_many {
	const char *const *names;
	Dwarf_Die *out;
	bool *found;
	size_t n, left;
};

/* Whether @die is the struct of "tag|typedef" spec @spec. */
static bool matches_spec(Dwarf_Die *die, const char *spec, Dwarf_Die *out)
{
	const char *bar = strchr(spec, '|');
	char first[128];

	if (!bar)
		return struct_named(die, spec, out);
	snprintf(first, sizeof(first), "%.*s", (int)(bar - spec), spec);
	return struct_named(die, first, out) || struct_named(die, bar + 1, out);
}

static bool find_many_cb(Dwarf_Die *die, void *ctx)
{
	struct find_many *f = ctx;
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (f->found[i] || !matches_spec(die, f->names[i], &f->out[i]))
			continue;
		f->found[i] = true;
		f->left--;
	}
	return f->left == 0;
}

size_t dwarf_layout__find_structs(Dwarf *dw, const char *const names[],
				  Dwarf_Die out[], bool found[], size_t n)
{
	struct find_many f = { names, out, found, n, n };
	size_t i;

	for (i = 0; i < n; i++)
		found[i] = false;
	if (!dw || !n)
		return 0;
	foreach_top_die(dw, find_many_cb, &f);
	return n - f.left;
}

static int member_location(Dwarf_Die *m, uint64_t *off)
{
	Dwarf_Attribute a;
	Dwarf_Word w;
	Dwarf_Op *ops;
	size_t nops;

	if (!dwarf_attr_integrate(m, DW_AT_data_member_location, &a)) {
		*off = 0;   /* union members, DW_AT_data_bit_offset bit-fields */
		return 0;
	}
	if (dwarf_formudata(&a, &w) == 0) {
		*off = w;
		return 0;
	}
	if (dwarf_getlocation(&a, &ops, &nops) == 0 && nops == 1 &&
	    ops[0].atom == DW_OP_plus_uconst) {
		*off = ops[0].number;
		return 0;
	}
	return -EINVAL;
}

/*
 * Member @name of struct/union @type, looked for also inside anonymous
 * struct/union members. Adds its offset to *off and sets *mtype (the
 * member's type, peeled) and, if @mdie, *mdie (the member itself).
 */
static int find_member(Dwarf_Die *type, const char *name, uint64_t *off,
		       Dwarf_Die *mtype, Dwarf_Die *mdie)
{
	Dwarf_Die m, t;
	Dwarf_Attribute a;

	if (dwarf_child(type, &m) != 0)
		return -ENOENT;
	do {
		const char *n;
		uint64_t o, sub = 0;

		if (dwarf_tag(&m) != DW_TAG_member)
			continue;
		if (!dwarf_attr_integrate(&m, DW_AT_type, &a) ||
		    !dwarf_formref_die(&a, &t) || !peel_type(&t))
			continue;
		n = dwarf_diename(&m);
		if (n && strcmp(n, name) == 0) {
			if (member_location(&m, &o) != 0)
				return -EINVAL;
			*off += o;
			*mtype = t;
			if (mdie)
				*mdie = m;
			return 0;
		}
		if (!n && (dwarf_tag(&t) == DW_TAG_structure_type ||
			   dwarf_tag(&t) == DW_TAG_union_type) &&
		    find_member(&t, name, &sub, mtype, mdie) == 0) {
			if (member_location(&m, &o) != 0)
				return -EINVAL;
			*off += o + sub;
			return 0;
		}
	} while (dwarf_siblingof(&m, &m) == 0);
	return -ENOENT;
}

/* Follows @path from @type; the last member's DIE goes to *last. */
static int walk_path(Dwarf_Die *type, const char *path, uint64_t *off,
		     Dwarf_Die *last)
{
	char buf[128], *comp, *save = NULL;
	Dwarf_Die cur = *type, mt;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENOENT;
	*off = 0;
	for (comp = strtok_r(buf, ".", &save); comp;
	     comp = strtok_r(NULL, ".", &save)) {
		if (find_member(&cur, comp, off, &mt, last) != 0)
			return -ENOENT;
		cur = mt;
	}
	return 0;
}

int dwarf_layout__offset(Dwarf_Die *type, const char *path, uint64_t *off)
{
	Dwarf_Die last;

	return walk_path(type, path, off, &last);
}

int dwarf_layout__size(Dwarf_Die *type, uint64_t *size)
{
	Dwarf_Word w;

	if (dwarf_aggregate_size(type, &w) != 0)
		return -ENOENT;
	*size = w;
	return 0;
}

static int attr_udata(Dwarf_Die *die, int name, Dwarf_Word *w)
{
	Dwarf_Attribute a;

	if (!dwarf_attr_integrate(die, name, &a))
		return -ENOENT;
	return dwarf_formudata(&a, w) == 0 ? 0 : -EINVAL;
}

int dwarf_layout__bitfield(Dwarf_Die *type, const char *path,
			   uint64_t *bit_off, uint64_t *bit_size)
{
	Dwarf_Die m, mt;
	Dwarf_Attribute a;
	Dwarf_Word bsize, dbo, bo, storage;
	uint64_t off;

	if (walk_path(type, path, &off, &m) != 0)
		return -ENOENT;
	if (attr_udata(&m, DW_AT_bit_size, &bsize) != 0)
		return -EINVAL;
	*bit_size = bsize;
	if (attr_udata(&m, DW_AT_data_bit_offset, &dbo) == 0) {
		/* DWARF 4+: bits from the start of the containing struct;
		 * @off holds the containing structs' byte offsets only. */
		*bit_off = off * 8 + dbo;
		return 0;
	}
	if (attr_udata(&m, DW_AT_bit_offset, &bo) != 0)
		return -EINVAL;
	/* DWARF 2-3: bo counts from the most significant bit of the storage
	 * unit (DW_AT_byte_size, or the type's size) at the member's
	 * location; little-endian: LSB position = size*8 - bo - bsize. */
	if (attr_udata(&m, DW_AT_byte_size, &storage) != 0) {
		if (!dwarf_attr_integrate(&m, DW_AT_type, &a) ||
		    !dwarf_formref_die(&a, &mt) || !peel_type(&mt) ||
		    attr_udata(&mt, DW_AT_byte_size, &storage) != 0)
			return -EINVAL;
	}
	if (storage * 8 < bo + bsize)
		return -EINVAL;
	*bit_off = off * 8 + (storage * 8 - bo - bsize);
	return 0;
}
