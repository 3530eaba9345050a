/* SPDX-License-Identifier: MIT */
/*
 * elf_image: one ELF file (an interpreter executable or libpython) plus its
 * separate debug file, through elfutils.
 *
 * - libelf gives the program headers, notes, sections and symbol tables.
 *   The binary stays open (fd + Elf) for the image's lifetime so that the
 *   strings handed to callbacks stay valid.
 * - The debug file is found by build-id, then by .gnu_debuglink, and only
 *   used when its build-id equals the binary's (or, for a binary without a
 *   build-id, when the debuglink CRC matches).
 * - File offsets and file contents always come from the binary's PT_LOAD
 *   headers: a debug file's code sections are NOBITS.
 * - DWARF comes from libdw's dwarf_begin_elf, which decompresses
 *   SHF_COMPRESSED sections itself (elfutils 0.188 does; Debian 12's
 *   python3.11-dbg ships compressed .debug_info).
 */
#include "elf_image.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUILD_ID_MAX 64 /* bytes; GNU uses 20 (sha1) */

struct elf_sym {
	const char *name;
	uint64_t vaddr;
	uint64_t size;
	unsigned char type;
	unsigned char bind;
};

struct elf_image {
	char *path;
	char *root;
	char *debug_path;
	char *build_id;          /* hex, or NULL */
	int fd;
	Elf *elf;
	int dbg_fd;
	Elf *dbg_elf;
	bool is_dyn;
	bool has_symtab;         /* the binary's own .symtab */
	bool dbg_has_symtab;

	size_t nphdr;
	GElf_Phdr *phdr;

	bool syms_loaded;
	struct elf_sym *syms;    /* sorted by (name, vaddr), deduplicated */
	size_t nsyms;

	bool dwarf_tried;
	Dwarf *dwarf;
};

/* ---- sections and notes ---------------------------------------------- */

static Elf_Scn *find_scn(Elf *elf, const char *name, GElf_Shdr *out)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		const char *n;

		if (!gelf_getshdr(scn, &shdr))
			continue;
		n = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (n && strcmp(n, name) == 0) {
			if (out)
				*out = shdr;
			return scn;
		}
	}
	return NULL;
}

static Elf_Scn *find_scn_type(Elf *elf, GElf_Word type, GElf_Shdr *out)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		if (gelf_getshdr(scn, out) && out->sh_type == type)
			return scn;
	}
	return NULL;
}

/* Look for NT_GNU_BUILD_ID in one note blob. Returns its length or 0. */
static size_t note_build_id(Elf_Data *data, unsigned char *id)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	while (data && off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp((char *)data->d_buf + name_off, "GNU", 4) == 0 &&
		    nh.n_descsz > 0 && nh.n_descsz <= BUILD_ID_MAX) {
			memcpy(id, (char *)data->d_buf + desc_off, nh.n_descsz);
			return nh.n_descsz;
		}
		off = next;
	}
	return 0;
}

/* Build-id of @elf from its SHT_NOTE sections, else its PT_NOTE segments. */
static size_t elf_build_id(Elf *elf, unsigned char *id)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	size_t n = 0, i, len;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		len = note_build_id(elf_getdata(scn, NULL), id);
		if (len)
			return len;
	}
	if (elf_getphdrnum(elf, &n) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;
		Elf_Data *d;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		d = elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz,
					 ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		len = note_build_id(d, id);
		if (len)
			return len;
	}
	return 0;
}

static char *hex(const unsigned char *b, size_t n)
{
	char *s = malloc(2 * n + 1);
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	s[2 * n] = '\0';
	return s;
}

/* ---- the debug file ---------------------------------------------------- */

/* CRC-32 as .gnu_debuglink uses it (zlib's polynomial). */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	size_t i;
	int k;

	crc = ~crc;
	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
	}
	return ~crc;
}

static int file_crc32(int fd, uint32_t *out)
{
	unsigned char buf[65536];
	uint32_t crc = 0;
	off_t off = 0;
	ssize_t r;

	while ((r = pread(fd, buf, sizeof(buf), off)) > 0) {
		crc = crc32_update(crc, buf, (size_t)r);
		off += r;
	}
	if (r < 0)
		return -errno;
	*out = crc;
	return 0;
}

struct debug_want {
	const unsigned char *id;  /* binary's build-id, or NULL */
	size_t idlen;
	bool check_crc;
	uint32_t crc;
	dev_t dev;                /* the binary itself: never its own debug file */
	ino_t ino;
};

/* Open @path as a candidate debug file; keep it if it matches @w. */
static int try_debug(struct elf_image *img, const char *path,
		     const struct debug_want *w)
{
	unsigned char id[BUILD_ID_MAX];
	struct stat st;
	size_t len;
	uint32_t crc;
	GElf_Shdr sh;
	Elf *e;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_dev == w->dev && st.st_ino == w->ino))
		goto fail_fd;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF)
		goto fail;
	if (w->id) {
		len = elf_build_id(e, id);
		if (len != w->idlen || memcmp(id, w->id, len) != 0)
			goto fail;
	} else if (w->check_crc) {
		if (file_crc32(fd, &crc) != 0 || crc != w->crc)
			goto fail;
	}
	img->debug_path = strdup(path);
	if (!img->debug_path)
		goto fail;
	img->dbg_fd = fd;
	img->dbg_elf = e;
	img->dbg_has_symtab = find_scn_type(e, SHT_SYMTAB, &sh) != NULL;
	return 0;
fail:
	if (e)
		elf_end(e);
fail_fd:
	close(fd);
	return -1;
}

/* try_debug() on a formatted path; a path too long for PATH_MAX is skipped. */
static int try_debugf(struct elf_image *img, const struct debug_want *w,
		      const char *fmt, ...)
{
	char p[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(p))
		return -1;
	return try_debug(img, p, w);
}

/* Path of @img relative to its root ("/usr/bin/python3.11"). */
static const char *path_in_root(const struct elf_image *img)
{
	size_t rl = strlen(img->root);

	if (rl && strncmp(img->path, img->root, rl) == 0 && img->path[rl] == '/')
		return img->path + rl;
	return img->path;
}

static void find_debug_by_build_id(struct elf_image *img,
				   const struct debug_want *w)
{
	const char *id = img->build_id;

	if (!id || strlen(id) < 3)
		return;
	if (img->root[0] &&
	    try_debugf(img, w, "%s/usr/lib/debug/.build-id/%.2s/%s.debug",
		       img->root, id, id + 2) == 0)
		return;
	try_debugf(img, w, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
}

static void find_debug_by_link(struct elf_image *img, struct debug_want *w)
{
	char dir[PATH_MAX], name[NAME_MAX + 1];
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *d;
	size_t nlen, coff;
	char *slash;

	scn = find_scn(img->elf, ".gnu_debuglink", &sh);
	d = scn ? elf_getdata(scn, NULL) : NULL;
	if (!d || d->d_size < 8)
		return;
	nlen = strnlen(d->d_buf, d->d_size);
	if (nlen == 0 || nlen > NAME_MAX || nlen >= d->d_size)
		return;
	memcpy(name, d->d_buf, nlen);
	name[nlen] = '\0';
	if (strchr(name, '/'))
		return;
	coff = (nlen + 4) & ~(size_t)3;
	if (coff + 4 <= d->d_size && !w->id) {
		memcpy(&w->crc, (char *)d->d_buf + coff, 4);
		w->check_crc = true;
	}

	/* next to the file, then in .debug/ next to it */
	if (snprintf(dir, sizeof(dir), "%s", img->path) >= (int)sizeof(dir))
		return;
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	if (try_debugf(img, w, "%s/%s", dir, name) == 0 ||
	    try_debugf(img, w, "%s/.debug/%s", dir, name) == 0)
		return;

	/* /usr/lib/debug/<dir of the file inside its root>/<name> */
	if (snprintf(dir, sizeof(dir), "%s", path_in_root(img)) >= (int)sizeof(dir))
		return;
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	if (img->root[0] &&
	    try_debugf(img, w, "%s/usr/lib/debug%s/%s", img->root, dir, name) == 0)
		return;
	try_debugf(img, w, "/usr/lib/debug%s/%s", dir, name);
}

static void find_debug(struct elf_image *img)
{
	unsigned char id[BUILD_ID_MAX];
	struct debug_want w = { 0 };
	struct stat st;

	if (fstat(img->fd, &st) == 0) {
		w.dev = st.st_dev;
		w.ino = st.st_ino;
	}
	w.idlen = elf_build_id(img->elf, id);
	if (w.idlen)
		w.id = id;
	find_debug_by_build_id(img, &w);
	if (!img->dbg_elf)
		find_debug_by_link(img, &w);
}

/* ---- open / close ------------------------------------------------------ */

static int load_phdrs(struct elf_image *img)
{
	size_t i, n;

	if (elf_getphdrnum(img->elf, &n) != 0)
		return -EINVAL;
	img->phdr = calloc(n ? n : 1, sizeof(*img->phdr));
	if (!img->phdr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!gelf_getphdr(img->elf, (int)i, &img->phdr[img->nphdr]))
			continue;
		img->nphdr++;
	}
	return 0;
}

struct elf_image *elf_image__open(const char *path, const char *root,
				  char *err, size_t errlen)
{
	unsigned char id[BUILD_ID_MAX];
	struct elf_image *img;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	size_t idlen;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errbuf_set(err, errlen, "libelf is too old: %s", elf_errmsg(-1));
		return NULL;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		goto nomem;
	img->fd = img->dbg_fd = -1;
	img->path = strdup(path);
	img->root = strdup(root ? root : "");
	if (!img->path || !img->root)
		goto nomem;

	img->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (img->fd < 0) {
		errbuf_set(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	img->elf = elf_begin(img->fd, ELF_C_READ_MMAP, NULL);
	if (!img->elf || elf_kind(img->elf) != ELF_K_ELF ||
	    !gelf_getehdr(img->elf, &eh)) {
		errbuf_set(err, errlen, "%s is not an ELF file", path);
		goto fail;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		errbuf_set(err, errlen, "%s is not an executable or shared library", path);
		goto fail;
	}
	img->is_dyn = eh.e_type == ET_DYN;
	if (load_phdrs(img) != 0) {
		errbuf_set(err, errlen, "%s: cannot read program headers: %s", path,
			elf_errmsg(-1));
		goto fail;
	}
	idlen = elf_build_id(img->elf, id);
	if (idlen) {
		img->build_id = hex(id, idlen);
		if (!img->build_id)
			goto nomem;
	}
	img->has_symtab = find_scn_type(img->elf, SHT_SYMTAB, &sh) != NULL;
	find_debug(img);
	return img;
nomem:
	errbuf_set(err, errlen, "out of memory opening %s", path);
fail:
	elf_image__close(img);
	return NULL;
}

void elf_image__close(struct elf_image *img)
{
	if (!img)
		return;
	if (img->dwarf)
		dwarf_end(img->dwarf);
	if (img->dbg_elf)
		elf_end(img->dbg_elf);
	if (img->dbg_fd >= 0)
		close(img->dbg_fd);
	if (img->elf)
		elf_end(img->elf);
	if (img->fd >= 0)
		close(img->fd);
	free(img->syms);
	free(img->phdr);
	free(img->build_id);
	free(img->debug_path);
	free(img->root);
	free(img->path);
	free(img);
}

const char *elf_image__path(const struct elf_image *img)
{
	return img->path;
}

const char *elf_image__root(const struct elf_image *img)
{
	return img->root;
}

const char *elf_image__debug_path(const struct elf_image *img)
{
	return img->debug_path;
}

const char *elf_image__build_id(const struct elf_image *img)
{
	return img->build_id;
}

bool elf_image__is_dyn(const struct elf_image *img)
{
	return img->is_dyn;
}

bool elf_image__stripped(const struct elf_image *img)
{
	return !img->has_symtab && !img->dbg_has_symtab;
}

/* ---- symbols ----------------------------------------------------------- */

static int add_syms(struct elf_image *img, Elf *elf, GElf_Word type,
		    size_t *cap)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		Elf_Data *d;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type ||
		    !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			struct elf_sym *s;
			const char *name;
			GElf_Sym sym;
			int t;

			if (!gelf_getsym(d, (int)i, &sym) ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			t = GELF_ST_TYPE(sym.st_info);
			if (t != STT_FUNC && t != STT_OBJECT)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name || !*name)
				continue;
			if (img->nsyms == *cap) {
				size_t nc = *cap ? *cap * 2 : 4096;
				void *p = realloc(img->syms, nc * sizeof(*s));

				if (!p)
					return -ENOMEM;
				img->syms = p;
				*cap = nc;
			}
			s = &img->syms[img->nsyms++];
			s->name = name;
			s->vaddr = sym.st_value;
			s->size = sym.st_size;
			s->type = (unsigned char)t;
			s->bind = (unsigned char)GELF_ST_BIND(sym.st_info);
		}
	}
	return 0;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct elf_sym *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->vaddr != y->vaddr)
		return x->vaddr < y->vaddr ? -1 : 1;
	/* keep the one with a size (a .symtab entry) first */
	return (x->size < y->size) - (x->size > y->size);
}

static int load_syms(struct elf_image *img)
{
	size_t cap = 0, i, j;
	int err;

	if (img->syms_loaded)
		return 0;
	err = add_syms(img, img->has_symtab || !img->dbg_elf ? img->elf :
		       img->dbg_elf, SHT_SYMTAB, &cap);
	if (!err)
		err = add_syms(img, img->elf, SHT_DYNSYM, &cap);
	if (err) {
		free(img->syms);
		img->syms = NULL;
		img->nsyms = 0;
		return err;
	}
	if (img->nsyms)
		qsort(img->syms, img->nsyms, sizeof(*img->syms), sym_cmp);
	/* A symbol in both .symtab and .dynsym: same name, same address. */
	for (i = j = 0; i < img->nsyms; i++) {
		if (j && img->syms[j - 1].vaddr == img->syms[i].vaddr &&
		    strcmp(img->syms[j - 1].name, img->syms[i].name) == 0)
			continue;
		img->syms[j++] = img->syms[i];
	}
	img->nsyms = j;
	img->syms_loaded = true;
	return 0;
}

int elf_image__foreach_symbol(struct elf_image *img, elf_sym_cb cb, void *ctx)
{
	size_t i;
	int r;

	r = load_syms(img);
	if (r)
		return r;
	for (i = 0; i < img->nsyms; i++) {
		const struct elf_sym *s = &img->syms[i];

		r = cb(s->name, s->vaddr, s->size, s->type, s->bind, ctx);
		if (r)
			return r;
	}
	return 0;
}

int elf_image__find_symbol(struct elf_image *img, const char *name,
			   uint64_t *vaddr, uint64_t *size)
{
	size_t lo = 0, hi;

	if (load_syms(img) != 0)
		return -ENOENT;
	hi = img->nsyms;
	while (lo < hi) {   /* first entry with this name */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(img->syms[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == img->nsyms || strcmp(img->syms[lo].name, name) != 0)
		return -ENOENT;
	if (vaddr)
		*vaddr = img->syms[lo].vaddr;
	if (size)
		*size = img->syms[lo].size;
	return 0;
}

/* ---- addresses and contents ------------------------------------------- */

int elf_image__vaddr_to_offset(struct elf_image *img, uint64_t vaddr,
			       uint64_t *offset)
{
	size_t i;

	for (i = 0; i < img->nphdr; i++) {
		const GElf_Phdr *ph = &img->phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (vaddr >= ph->p_vaddr && vaddr - ph->p_vaddr < ph->p_filesz) {
			*offset = vaddr - ph->p_vaddr + ph->p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

int elf_image__read(struct elf_image *img, uint64_t vaddr, void *buf,
		    size_t len)
{
	size_t i;

	for (i = 0; i < img->nphdr; i++) {
		const GElf_Phdr *ph = &img->phdr[i];
		uint64_t rel;
		ssize_t r;

		if (ph->p_type != PT_LOAD || vaddr < ph->p_vaddr)
			continue;
		rel = vaddr - ph->p_vaddr;
		if (rel >= ph->p_filesz || len > ph->p_filesz - rel)
			continue;
		r = pread(img->fd, buf, len, (off_t)(ph->p_offset + rel));
		return r == (ssize_t)len ? 0 : -EIO;
	}
	return -ENOENT;
}

void *elf_image__section(struct elf_image *img, const char *name,
			 size_t *size, uint64_t *vaddr)
{
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *d;
	void *buf;

	scn = find_scn(img->elf, name, &sh);
	if (!scn || sh.sh_type == SHT_NOBITS)
		return NULL;
	if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
		return NULL;
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf)
		return NULL;
	buf = malloc(d->d_size ? d->d_size : 1);
	if (!buf)
		return NULL;
	memcpy(buf, d->d_buf, d->d_size);
	if (size)
		*size = d->d_size;
	if (vaddr)
		*vaddr = sh.sh_addr;
	return buf;
}

int elf_image__foreach_needed(struct elf_image *img,
			      int (*cb)(const char *soname, void *ctx),
			      void *ctx)
{
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *d;
	size_t i, n;

	scn = find_scn_type(img->elf, SHT_DYNAMIC, &sh);
	if (!scn || !sh.sh_entsize)
		return 0;
	d = elf_getdata(scn, NULL);
	if (!d)
		return 0;
	n = sh.sh_size / sh.sh_entsize;
	for (i = 0; i < n; i++) {
		const char *s;
		GElf_Dyn dyn;
		int r;

		if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag != DT_NEEDED)
			continue;
		s = elf_strptr(img->elf, sh.sh_link, dyn.d_un.d_val);
		if (!s)
			continue;
		r = cb(s, ctx);
		if (r)
			return r;
	}
	return 0;
}

/* ---- DWARF ------------------------------------------------------------- */

static bool has_debug_info(Elf *elf)
{
	GElf_Shdr sh;
	Elf_Scn *scn = find_scn(elf, ".debug_info", &sh);

	return scn && sh.sh_type != SHT_NOBITS && sh.sh_size > 0;
}

Dwarf *elf_image__dwarf(struct elf_image *img)
{
	if (img->dwarf_tried)
		return img->dwarf;
	img->dwarf_tried = true;
	if (has_debug_info(img->elf))
		img->dwarf = dwarf_begin_elf(img->elf, DWARF_C_READ, NULL);
	if (!img->dwarf && img->dbg_elf && has_debug_info(img->dbg_elf))
		img->dwarf = dwarf_begin_elf(img->dbg_elf, DWARF_C_READ, NULL);
	return img->dwarf;
}
