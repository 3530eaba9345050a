/* SPDX-License-Identifier: MIT */
/*
 * gil_sites: where to probe CPython's GIL in one interpreter binary.
 *
 * take_gil and drop_gil are static, so they are found in .symtab (of the
 * binary or its debug file), under their plain names or compiler clones
 * (take_gil.constprop.0 in 3.8, take_gil.lto_priv.0 in Debian's LTO
 * build...). `.cold` and `.part` pieces are not function entries and are
 * skipped. Inlined instances of drop_gil (Debian 12's python3.11 inlines it
 * into PyEval_SaveThread, _Py_read, os.stat, os.listdir and FileIO.write;
 * pyenv 3.13.0 into PyEval_ReleaseLock) are found in DWARF as
 * DW_TAG_inlined_subroutine whose abstract origin is drop_gil, at their
 * entry pc.
 */
#ifndef GILTRACE_GIL_SITES_H
#define GILTRACE_GIL_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_image;

enum gil_func {
	GIL_TAKE = 0, /* take_gil: its entry starts a wait */
	GIL_DROP = 1, /* drop_gil: its entry ends a hold */
};

struct gil_site {
	enum gil_func func;
	bool inlined;        /* an inlined instance, found in DWARF */
	char symbol[128];    /* out-of-line: the ELF symbol, e.g. "drop_gil.lto_priv.0";
				inlined: the function's name, "drop_gil" */
	char caller[128];    /* inlined: the function it is inlined into; else "" */
	uint64_t vaddr;      /* link-time virtual address of the first instruction */
	uint64_t offset;     /* file offset of that instruction (uprobe offset) */
	uint64_t size;       /* out-of-line: symbol size; inlined: 0 */
};

struct gil_sites {
	struct gil_site *v;
	size_t n;
	bool used_dwarf;     /* inlined instances were searched for in DWARF */
};

/*
 * Find every site of take_gil and drop_gil in @img. Requires at least one
 * out-of-line take_gil and one drop_gil. Returns 0, or a negative errno
 * with a one-line reason in @err that says what to install when symbols
 * are missing (e.g. "install python3.11-dbg" for a stripped Debian binary,
 * naming the expected /usr/lib/debug/.build-id/ file).
 */
int gil_sites__find(struct elf_image *img, struct gil_sites *out,
		    char *err, size_t errlen);
void gil_sites__free(struct gil_sites *s);

const char *gil_func__name(enum gil_func f);

#endif
