/* SPDX-License-Identifier: MIT */
/*
 * elf_image: one ELF file as a traced process maps it, plus its separate
 * debug file. Built on elfutils (libelf for symbols and program headers,
 * libdw for DWARF). Used by symbol resolution (gil_sites) and by the GIL
 * state reader (py_state).
 */
#ifndef GILTRACE_ELF_IMAGE_H
#define GILTRACE_ELF_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <elfutils/libdw.h>

struct elf_image;

/*
 * Open the ELF at @path. @root is the prefix under which paths of the
 * target's mount namespace are visible from here ("/proc/PID/root", or ""
 * for this namespace); @path already includes it. The separate debug file
 * is looked for by build-id at <root>/usr/lib/debug/.build-id/xx/rest.debug
 * (then /usr/lib/debug/.build-id/... in this namespace), then by
 * .gnu_debuglink next to the file and under /usr/lib/debug. A debug file is
 * only used when its build-id equals the binary's.
 * Returns NULL on failure with a one-line reason in @err.
 */
struct elf_image *elf_image__open(const char *path, const char *root,
				  char *err, size_t errlen);
void elf_image__close(struct elf_image *img);

const char *elf_image__path(const struct elf_image *img);
/* The @root given to elf_image__open ("" for this namespace). */
const char *elf_image__root(const struct elf_image *img);
/* Path of the separate debug file in use, or NULL. */
const char *elf_image__debug_path(const struct elf_image *img);
/* Lower-case hex build-id, or NULL if the file has none. */
const char *elf_image__build_id(const struct elf_image *img);
/* ET_DYN (PIE executable or shared library) vs ET_EXEC. */
bool elf_image__is_dyn(const struct elf_image *img);
/* True when neither the file nor its debug file has a .symtab. */
bool elf_image__stripped(const struct elf_image *img);

/*
 * Call @cb for every function and object symbol of .symtab (of the debug
 * file when the binary has none) and of .dynsym. A symbol present in both
 * tables is reported once. @cb returns nonzero to stop; that value is
 * returned. Returns 0 when all were visited.
 */
typedef int (*elf_sym_cb)(const char *name, uint64_t vaddr, uint64_t size,
			  int type /* STT_* */, int bind /* STB_* */, void *ctx);
int elf_image__foreach_symbol(struct elf_image *img, elf_sym_cb cb, void *ctx);

/* Exact-name lookup. Returns 0, or -ENOENT. */
int elf_image__find_symbol(struct elf_image *img, const char *name,
			   uint64_t *vaddr, uint64_t *size);

/* File offset (for uprobe attachment) of a virtual address inside an
 * executable PT_LOAD segment of the binary. Returns 0, or -ENOENT. */
int elf_image__vaddr_to_offset(struct elf_image *img, uint64_t vaddr,
			       uint64_t *offset);

/* Copy @len bytes of the binary's file-backed contents at link-time
 * virtual address @vaddr. Returns 0, or -ENOENT when not file-backed. */
int elf_image__read(struct elf_image *img, uint64_t vaddr, void *buf,
		    size_t len);

/* Copy the contents of section @name of the binary (not the debug file).
 * Returns a malloc'd buffer and its size and link-time address, or NULL. */
void *elf_image__section(struct elf_image *img, const char *name,
			 size_t *size, uint64_t *vaddr);

/* DT_NEEDED entries: calls @cb for each; stops at nonzero. */
int elf_image__foreach_needed(struct elf_image *img,
			      int (*cb)(const char *soname, void *ctx),
			      void *ctx);

/* DWARF of the binary or of its debug file; NULL if there is none.
 * Owned by @img. Addresses in it are link-time virtual addresses. */
Dwarf *elf_image__dwarf(struct elf_image *img);

#endif
