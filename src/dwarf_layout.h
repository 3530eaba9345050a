/* SPDX-License-Identifier: MIT */
/*
 * dwarf_layout: struct layouts read from DWARF with libdw: find a complete
 * struct by tag or typedef name, member offsets along a dotted path
 * (through anonymous struct/union members), struct sizes and bit-field
 * positions. Shared by py_state (where the GIL lives) and py_layout (frame
 * walking). Nothing here knows about CPython.
 */
#ifndef GILTRACE_DWARF_LAYOUT_H
#define GILTRACE_DWARF_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <elfutils/libdw.h>

/*
 * The first complete struct named @name: a "struct @name" or the struct a
 * typedef named @name stands for, among the top-level DIEs of all units.
 * Returns 0, or -ENOENT.
 */
int dwarf_layout__find_struct(Dwarf *dw, const char *name, Dwarf_Die *out);

/* The same, trying name @a, then @b (may be NULL). */
int dwarf_layout__find_struct2(Dwarf *dw, const char *a, const char *b,
			       Dwarf_Die *out);

/*
 * Several structs in one pass over the units: @names[i] ("tag" or
 * "tag|typedef": either name matches) goes to @out[i], @found[i] says
 * whether it was. Returns how many were found.
 */
size_t dwarf_layout__find_structs(Dwarf *dw, const char *const names[],
				  Dwarf_Die out[], bool found[], size_t n);

/* offsetof(struct, a.b.c) from DWARF. Returns 0, or -ENOENT. */
int dwarf_layout__offset(Dwarf_Die *type, const char *path, uint64_t *off);

/* sizeof(struct). Returns 0, or -ENOENT. */
int dwarf_layout__size(Dwarf_Die *type, uint64_t *size);

/*
 * Position of bit-field a.b.c inside struct @type: *bit_off counts bits from
 * the struct's first byte, least significant bit first (little-endian), and
 * *bit_size is its width. Handles DW_AT_data_bit_offset (DWARF 4+) and
 * DW_AT_bit_offset (DWARF 2-3). Returns 0, -ENOENT, or -EINVAL when the
 * member is not a bit-field.
 */
int dwarf_layout__bitfield(Dwarf_Die *type, const char *path,
			   uint64_t *bit_off, uint64_t *bit_size);

#endif
