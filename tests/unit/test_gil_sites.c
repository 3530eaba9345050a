/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of elf_image and gil_sites against the interpreters installed
 * on this machine. Interpreters that are not there are skipped with a
 * printed reason. Exact addresses are only asserted for builds whose
 * build-id is known (the ones measured in /work/shared/notes); any other
 * build gets the generic checks.
 *
 * Everything our code says is cross-checked with binutils, which shares no
 * code with it: `readelf -lW` for file offsets, `nm` for symbol addresses
 * and `objdump -d` (disassembling from the start of the enclosing function)
 * for instruction boundaries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elf_image.h"
#include "gil_sites.h"
#include "unit_helpers.h"

#define DEBIAN_PY "/usr/bin/python3.11"
#define DEBIAN_ID "c561f3aa7232f2bd6ac6d56bd475f1c154a00486"
#define DEBIAN_LIBPY "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
#define DEBIAN_LIBPY_ID "dc7ea6fdad516ee27906e1c1fa87c48af65bc294"

/* ---- helpers: shell tools ---------------------------------------------- */

static bool have_binutils(void)
{
	return system("command -v objdump >/dev/null && command -v nm >/dev/null && "
		      "command -v readelf >/dev/null && command -v strip >/dev/null && "
		      "command -v objcopy >/dev/null") == 0;
}

struct seg {
	uint64_t off, vaddr, filesz, memsz;
	bool exec;
};

/* PT_LOAD segments per `readelf -lW`. */
static size_t readelf_loads(const char *path, struct seg *s, size_t max)
{
	char *out = run("readelf -lW '%s'", path), *line, *save = NULL;
	size_t n = 0;

	assert_non_null(out);
	for (line = strtok_r(out, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char flags[16] = "";
		uint64_t phys;

		if (sscanf(line, " LOAD 0x%" SCNx64 " 0x%" SCNx64 " 0x%" SCNx64
			   " 0x%" SCNx64 " 0x%" SCNx64 " %15[RWE ]",
			   &s[n].off, &s[n].vaddr, &phys, &s[n].filesz,
			   &s[n].memsz, flags) == 6) {
			s[n].exec = strchr(flags, 'E') != NULL;
			n++;
		}
	}
	free(out);
	return n;
}

/* File offset of @vaddr by readelf's executable LOAD segments. */
static bool readelf_offset(const char *path, uint64_t vaddr, uint64_t *off)
{
	struct seg s[16];
	size_t i, n = readelf_loads(path, s, 16);

	for (i = 0; i < n; i++) {
		if (s[i].exec && vaddr >= s[i].vaddr &&
		    vaddr < s[i].vaddr + s[i].filesz) {
			*off = vaddr - s[i].vaddr + s[i].off;
			return true;
		}
	}
	return false;
}

static bool nm_has(const struct nm_tab *t, const char *name, uint64_t addr)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].addr == addr && strcmp(t->v[i].name, name) == 0)
			return true;
	return false;
}

/*
 * Does objdump, disassembling from @start, decode an instruction at @addr?
 * The stop address is past the longest x86 instruction, so an instruction
 * that contains @addr is decoded whole instead of as .byte lines.
 */
static bool objdump_boundary(const char *path, uint64_t start, uint64_t addr)
{
	char *out = run("objdump -d --no-show-raw-insn --start-address=0x%" PRIx64
			" --stop-address=0x%" PRIx64 " '%s'", start, addr + 16, path);
	char want[40], *line, *save = NULL;
	bool found = false;

	assert_non_null(out);
	snprintf(want, sizeof(want), "%" PRIx64 ":", addr);
	for (line = strtok_r(out, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ')
			line++;
		found = strncmp(line, want, strlen(want)) == 0 &&
			!strstr(line, "(bad)") && !strstr(line, ".byte");
	}
	free(out);
	return found;
}

static bool exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/giltrace-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *dir)
{
	if (dir && strncmp(dir, "/tmp/giltrace-test-", 19) == 0) {
		char *o = run("rm -rf '%s'", dir);

		free(o);
	}
}

/* ---- helpers: sites ---------------------------------------------------- */

static void print_sites(const char *path, const struct gil_sites *s)
{
	size_t i;

	print_message("  %s: %zu sites%s\n", path, s->n,
		      s->used_dwarf ? " (DWARF searched)" : "");
	for (i = 0; i < s->n; i++) {
		const struct gil_site *g = &s->v[i];

		print_message("    %s %-22s %s%-20s vaddr 0x%" PRIx64
			      " offset 0x%" PRIx64 "\n", gil_func__name(g->func),
			      g->symbol, g->inlined ? "inlined into " : "out-of-line ",
			      g->caller, g->vaddr, g->offset);
	}
}

static size_t count(const struct gil_sites *s, enum gil_func f, bool inlined)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->v[i].func == f && s->v[i].inlined == inlined;
	return n;
}

static const struct gil_site *find_site(const struct gil_sites *s,
					uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].vaddr == vaddr)
			return &s->v[i];
	return NULL;
}

/*
 * Checks that hold for every interpreter: one out-of-line take and drop at
 * least, offsets agree with readelf, out-of-line symbols agree with nm,
 * every address is an instruction boundary for objdump, no duplicates.
 */
static void check_generic(struct elf_image *img, const struct gil_sites *s)
{
	const char *bin = elf_image__path(img);
	const char *symfile = elf_image__debug_path(img) ?
			      elf_image__debug_path(img) : bin;
	struct nm_tab nm;
	size_t i, j;

	assert_true(count(s, GIL_TAKE, false) >= 1);
	assert_true(count(s, GIL_DROP, false) >= 1);
	nm_load(symfile, &nm, true);
	for (i = 0; i < s->n; i++) {
		const struct gil_site *g = &s->v[i];
		const struct nm_sym *fn;
		uint64_t off;

		assert_true(g->vaddr != 0);
		for (j = 0; j < i; j++)
			assert_false(s->v[j].vaddr == g->vaddr);
		assert_true(readelf_offset(bin, g->vaddr, &off));
		assert_int_equal(off, g->offset);
		assert_int_equal(strncmp(g->symbol, gil_func__name(g->func), 8), 0);
		if (g->inlined) {
			assert_string_equal(g->symbol, gil_func__name(g->func));
			assert_true(g->caller[0] != '\0');
			assert_int_equal(g->size, 0);
		} else {
			assert_string_equal(g->caller, "");
			assert_true(g->size > 0);
			assert_true(nm_has(&nm, g->symbol, g->vaddr));
			assert_null(strstr(g->symbol, ".cold"));
			assert_null(strstr(g->symbol, ".part"));
		}
		fn = nm_containing(&nm, g->vaddr);
		assert_non_null(fn);
		if (!objdump_boundary(bin, fn->addr, g->vaddr))
			fail_msg("0x%" PRIx64 " (%s in %s) is not an instruction "
				 "boundary from %s at 0x%" PRIx64, g->vaddr,
				 g->symbol, bin, fn->name, fn->addr);
	}
	free(nm.v);
}

/* ---- pyenv interpreters ------------------------------------------------ */

/* Facts measured on the project machine (notes/measured-here.md), valid
 * only for these exact builds. */
struct known_build {
	const char *build_id;
	const char *version;
	uint64_t take, take_clone, drop;
	uint64_t inl_drop;          /* 0: no inlined site */
	const char *inl_caller;
};

static const struct known_build known[] = {
	{ "6d853d10", "3.6.15", 0x1443a0, 0, 0x1436a0, 0, NULL },
	{ "edcca117", "3.7.16", 0x15d120, 0, 0x15c3f0, 0, NULL },
	{ "ff2a4988", "3.8.18", 0x174160, 0x1743c0, 0x172c30, 0, NULL },
	{ "8a6cadea", "3.9.18", 0x19d640, 0, 0x19cd70, 0, NULL },
	{ "ece57af6", "3.10.13", 0x1b3830, 0, 0x1b2d00, 0, NULL },
	{ "49daf84e", "3.11.7", 0x24f7b0, 0, 0x24f3e0, 0, NULL },
	{ "f9d5c82f", "3.12.1", 0x2ae9f0, 0, 0x2ae130, 0, NULL },
	{ "d11d13fb", "3.13.0", 0x265f40, 0, 0x265b10, 0x266467,
	  "PyEval_ReleaseLock" },
};

static const struct known_build *known_for(const char *build_id)
{
	size_t i;

	for (i = 0; build_id && i < sizeof(known) / sizeof(known[0]); i++)
		if (strncmp(build_id, known[i].build_id, 8) == 0)
			return &known[i];
	return NULL;
}

static void check_known(const struct known_build *k, const struct gil_sites *s)
{
	const struct gil_site *g;

	assert_int_equal(count(s, GIL_TAKE, false), k->take_clone ? 2 : 1);
	assert_int_equal(count(s, GIL_DROP, false), 1);
	assert_int_equal(count(s, GIL_TAKE, true), 0);
	assert_int_equal(count(s, GIL_DROP, true), k->inl_drop ? 1 : 0);

	g = find_site(s, k->take);
	assert_non_null(g);
	assert_string_equal(g->symbol, "take_gil");
	g = find_site(s, k->drop);
	assert_non_null(g);
	assert_string_equal(g->symbol, "drop_gil");
	if (k->take_clone) {
		/* 3.8: gcc's clone is what most callers use; probe both. */
		g = find_site(s, k->take_clone);
		assert_non_null(g);
		assert_int_equal(g->func, GIL_TAKE);
		assert_false(g->inlined);
		assert_string_equal(g->symbol, "take_gil.constprop.0");
	}
	if (k->inl_drop) {
		g = find_site(s, k->inl_drop);
		assert_non_null(g);
		assert_int_equal(g->func, GIL_DROP);
		assert_true(g->inlined);
		assert_string_equal(g->caller, k->inl_caller);
	}
}

static const char *pyenv_root(char *buf, size_t len)
{
	const char *r = getenv("PYENV_ROOT");
	const char *home = getenv("HOME");

	if (r && *r)
		snprintf(buf, len, "%s", r);
	else
		snprintf(buf, len, "%s/.pyenv", home ? home : "/root");
	return buf;
}

static void test_pyenv_interpreters(void **state)
{
	char root[512], pat[600];
	size_t i, checked = 0;
	glob_t g;

	if (!have_binutils())
		skip();
	snprintf(pat, sizeof(pat), "%s/versions/3.*/lib/libpython3.*.so.1.0",
		 pyenv_root(root, sizeof(root)));
	if (glob(pat, 0, NULL, &g) != 0) {
		print_message("  skip: no pyenv CPython 3 found (%s)\n", pat);
		skip();
	}
	for (i = 0; i < g.gl_pathc; i++) {
		const char *path = g.gl_pathv[i];
		const struct known_build *k;
		struct gil_sites s;
		struct elf_image *img;
		char err[512];
		double t0;
		int r;

		img = elf_image__open(path, "", err, sizeof(err));
		if (!img)
			fail_msg("%s", err);
		assert_true(elf_image__is_dyn(img));
		assert_false(elf_image__stripped(img));
		t0 = now();
		r = gil_sites__find(img, &s, err, sizeof(err));
		if (r)
			fail_msg("%s: %s", path, err);
		print_message("  %s: sites found in %.3f s\n", path, now() - t0);
		print_sites(path, &s);
		assert_true(s.used_dwarf);
		check_generic(img, &s);
		k = known_for(elf_image__build_id(img));
		if (k)
			check_known(k, &s);
		else
			print_message("  %s: unknown build %s, generic checks only\n",
				      path, elf_image__build_id(img));
		gil_sites__free(&s);
		elf_image__close(img);
		checked++;
	}
	globfree(&g);
	assert_true(checked > 0);
}

/* Python 2 has no take_gil/drop_gil: a clear error, not a crash. */
static void test_python27_has_no_gil_functions(void **state)
{
	char root[512], pat[600], err[512];
	struct elf_image *img;
	struct gil_sites s;
	glob_t g;

	snprintf(pat, sizeof(pat), "%s/versions/2.*/lib/libpython2.*.so.1.0",
		 pyenv_root(root, sizeof(root)));
	if (glob(pat, 0, NULL, &g) != 0) {
		print_message("  skip: no pyenv Python 2 found (%s)\n", pat);
		skip();
	}
	img = elf_image__open(g.gl_pathv[0], "", err, sizeof(err));
	assert_non_null(img);
	assert_int_equal(gil_sites__find(img, &s, err, sizeof(err)), -ENOENT);
	print_message("  error: %s\n", err);
	assert_non_null(strstr(err, "take_gil"));
	assert_null(strstr(err, "stripped"));
	assert_int_equal(s.n, 0);
	assert_null(s.v);
	elf_image__close(img);
	globfree(&g);
}

/* ---- Debian's python3.11 ----------------------------------------------- */

static bool debian_available(void)
{
	if (!exists(DEBIAN_PY)) {
		print_message("  skip: %s not installed\n", DEBIAN_PY);
		return false;
	}
	if (!have_binutils()) {
		print_message("  skip: binutils missing\n");
		return false;
	}
	return true;
}

static void test_debian_python311(void **state)
{
	static const struct {
		uint64_t vaddr;
		const char *caller;
	} inl[] = {
		{ 0x4fe225, "PyEval_SaveThread" },
		{ 0x58c227, "_Py_read" },
		{ 0x57e05d, "os_stat" },
		{ 0x62d636, "os_listdir" },
		{ 0x598108, "_io_FileIO_write" },
	};
	const struct gil_site *g;
	struct elf_image *img;
	struct gil_sites s;
	char err[512];
	double t0;
	size_t i;

	if (!debian_available())
		skip();
	img = elf_image__open(DEBIAN_PY, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	assert_false(elf_image__is_dyn(img));
	if (!elf_image__debug_path(img)) {
		print_message("  skip: no debug file for %s (install python3.11-dbg)\n",
			      DEBIAN_PY);
		elf_image__close(img);
		skip();
	}
	t0 = now();
	if (gil_sites__find(img, &s, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	print_message("  %s: sites found in %.3f s (DWARF of %s)\n", DEBIAN_PY,
		      now() - t0, elf_image__debug_path(img));
	print_sites(DEBIAN_PY, &s);
	assert_true(s.used_dwarf);
	check_generic(img, &s);
	assert_int_equal(count(&s, GIL_TAKE, true), 0);
	if (strcmp(elf_image__build_id(img), DEBIAN_ID) != 0) {
		print_message("  %s: build %s is not the measured one, generic checks "
			      "only\n", DEBIAN_PY, elf_image__build_id(img));
		assert_true(count(&s, GIL_DROP, true) >= 1);
		goto out;
	}
	assert_int_equal(s.n, 7);
	/* the boundary oracle discriminates: mid-instruction is rejected */
	assert_false(objdump_boundary(DEBIAN_PY, 0x4fe200, 0x4fe226));
	g = find_site(&s, 0x4cea20);
	assert_non_null(g);
	assert_string_equal(g->symbol, "take_gil.lto_priv.0");
	assert_int_equal(g->offset, 0xcea20);
	g = find_site(&s, 0x618270);
	assert_non_null(g);
	assert_string_equal(g->symbol, "drop_gil.lto_priv.0");
	assert_int_equal(g->offset, 0x218270);
	assert_int_equal(count(&s, GIL_DROP, true), 5);
	for (i = 0; i < sizeof(inl) / sizeof(inl[0]); i++) {
		g = find_site(&s, inl[i].vaddr);
		assert_non_null(g);
		assert_true(g->inlined);
		assert_int_equal(g->func, GIL_DROP);
		assert_string_equal(g->caller, inl[i].caller);
		/* non-PIE: text LOAD 0x41f000 at file offset 0x1f000 */
		assert_int_equal(g->offset, inl[i].vaddr - 0x400000);
	}
out:
	gil_sites__free(&s);
	elf_image__close(img);
}

/* The target's root prefix is honoured for the debug file. */
static void test_debian_root_prefix(void **state)
{
	char err[512], want[256];
	struct elf_image *img;

	if (!debian_available())
		skip();
	img = elf_image__open("/proc/self/root" DEBIAN_PY, "/proc/self/root",
			      err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	assert_string_equal(elf_image__root(img), "/proc/self/root");
	if (!elf_image__debug_path(img)) {
		elf_image__close(img);
		skip();
	}
	snprintf(want, sizeof(want),
		 "/proc/self/root/usr/lib/debug/.build-id/%.2s/%s.debug",
		 elf_image__build_id(img), elf_image__build_id(img) + 2);
	assert_string_equal(elf_image__debug_path(img), want);
	elf_image__close(img);
}

/* Flip a byte of the build-id of the copy at @path so no debug file matches. */
static void corrupt_build_id(const char *path, const char *hex_id)
{
	unsigned char id[64], buf[8192];
	size_t idlen = strlen(hex_id) / 2, i, n;
	FILE *f = fopen(path, "r+b");

	assert_non_null(f);
	for (i = 0; i < idlen; i++)
		sscanf(hex_id + 2 * i, "%2hhx", &id[i]);
	n = fread(buf, 1, sizeof(buf), f);
	for (i = 0; i + idlen <= n; i++) {
		if (memcmp(buf + i, id, idlen) == 0) {
			buf[i] ^= 0xff;
			fseek(f, (long)i, SEEK_SET);
			fwrite(&buf[i], 1, 1, f);
			break;
		}
	}
	assert_true(i + idlen <= n);
	fclose(f);
}

/*
 * A stripped Debian file without its debug file: say what to install. The
 * copy at <tmp>/<rel> gets a different build-id so that no installed debug
 * file matches it, and <tmp> is passed as the target's root.
 */
static void check_missing_debug_hint(const char *src, const char *rel)
{
	char path[512], err[512], want[256], *dir, *o;
	struct elf_image *img;
	struct gil_sites s;
	const char *id;

	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s%s", dir, rel);
	o = run("mkdir -p \"$(dirname '%s')\" && cp '%s' '%s' && echo ok",
		path, src, path);
	assert_non_null(strstr(o, "ok"));
	free(o);
	img = elf_image__open(path, "", err, sizeof(err));
	assert_non_null(img);
	corrupt_build_id(path, elf_image__build_id(img));
	elf_image__close(img);

	img = elf_image__open(path, dir, err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	assert_null(elf_image__debug_path(img));
	assert_true(elf_image__stripped(img));
	id = elf_image__build_id(img);
	assert_non_null(id);
	assert_int_equal(gil_sites__find(img, &s, err, sizeof(err)), -ENOENT);
	print_message("  error: %s\n", err);
	assert_non_null(strstr(err, "stripped"));
	assert_non_null(strstr(err, "install python3.11-dbg"));
	snprintf(want, sizeof(want), "/usr/lib/debug/.build-id/%.2s/%s.debug",
		 id, id + 2);
	assert_non_null(strstr(err, want));
	assert_null(strchr(err, '\n'));
	elf_image__close(img);
	rm_rf(dir);
	free(dir);
}

static void test_debian_missing_debug_hint(void **state)
{
	if (!debian_available())
		skip();
	check_missing_debug_hint(DEBIAN_PY, DEBIAN_PY);
	if (exists(DEBIAN_LIBPY))
		check_missing_debug_hint(DEBIAN_LIBPY, DEBIAN_LIBPY);
	else
		print_message("  %s not installed: not checked\n", DEBIAN_LIBPY);
}

/* Debian's libpython3.11 (LTO too): clones only; drop_gil not inlined. */
static void test_debian_libpython311(void **state)
{
	struct elf_image *img;
	struct gil_sites s;
	char err[512];

	if (!exists(DEBIAN_LIBPY) || !have_binutils()) {
		print_message("  skip: %s or binutils missing\n", DEBIAN_LIBPY);
		skip();
	}
	img = elf_image__open(DEBIAN_LIBPY, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	if (!elf_image__debug_path(img)) {
		print_message("  skip: no debug file for %s (install python3.11-dbg)\n",
			      DEBIAN_LIBPY);
		elf_image__close(img);
		skip();
	}
	if (gil_sites__find(img, &s, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	print_sites(DEBIAN_LIBPY, &s);
	assert_true(s.used_dwarf);
	check_generic(img, &s);
	if (strcmp(elf_image__build_id(img), DEBIAN_LIBPY_ID) == 0) {
		assert_int_equal(s.n, 2);
		assert_non_null(find_site(&s, 0x265f90));
		assert_string_equal(find_site(&s, 0x265f90)->symbol,
				    "take_gil.lto_priv.0");
		assert_non_null(find_site(&s, 0x265d00));
		assert_string_equal(find_site(&s, 0x265d00)->symbol,
				    "drop_gil.lto_priv.0");
	}
	gil_sites__free(&s);
	elf_image__close(img);
}

/* ---- stripped and debuglinked copies of a pyenv libpython --------------- */

static bool first_pyenv_lib(char *out, size_t len)
{
	char root[512], pat[600];
	glob_t g;

	snprintf(pat, sizeof(pat), "%s/versions/3.*/lib/libpython3.*.so.1.0",
		 pyenv_root(root, sizeof(root)));
	if (glob(pat, 0, NULL, &g) != 0) {
		print_message("  skip: no pyenv CPython 3 found (%s)\n", pat);
		return false;
	}
	snprintf(out, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	return have_binutils();
}

static void test_stripped_copy(void **state)
{
	char src[512], path[600], err[512], want[256], *dir, *o;
	struct elf_image *img;
	struct gil_sites s;
	const char *id;

	if (!first_pyenv_lib(src, sizeof(src)))
		skip();
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/libpython-stripped.so", dir);
	o = run("strip --strip-all -o '%s' '%s' && echo ok", path, src);
	assert_non_null(strstr(o, "ok"));
	free(o);

	img = elf_image__open(path, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	assert_true(elf_image__stripped(img));
	assert_null(elf_image__dwarf(img));
	id = elf_image__build_id(img);
	assert_non_null(id);
	assert_int_equal(gil_sites__find(img, &s, err, sizeof(err)), -ENOENT);
	print_message("  error: %s\n", err);
	assert_non_null(strstr(err, "stripped"));
	snprintf(want, sizeof(want), "/usr/lib/debug/.build-id/%.2s/%s.debug",
		 id, id + 2);
	assert_non_null(strstr(err, want));
	elf_image__close(img);
	rm_rf(dir);
	free(dir);
}

/* A stripped copy whose debug file sits in .debug/ next to it (found by
 * .gnu_debuglink), then the same with a debug file of another build. */
static void test_debuglink_copy(void **state)
{
	char src[512], path[600], err[512], want[600], *dir, *o;
	struct gil_sites a, b;
	struct elf_image *img;
	size_t i;

	if (!first_pyenv_lib(src, sizeof(src)))
		skip();
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/libpy.so", dir);
	o = run("cd '%s' && mkdir .debug && "
		"objcopy --only-keep-debug '%s' .debug/libpy.debug && "
		"objcopy --strip-all --add-gnu-debuglink=.debug/libpy.debug '%s' libpy.so "
		"&& echo ok", dir, src, src);
	assert_non_null(strstr(o, "ok"));
	free(o);

	img = elf_image__open(src, "", err, sizeof(err));
	assert_non_null(img);
	assert_int_equal(gil_sites__find(img, &a, err, sizeof(err)), 0);
	elf_image__close(img);

	img = elf_image__open(path, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/.debug/libpy.debug", dir);
	assert_non_null(elf_image__debug_path(img));
	assert_string_equal(elf_image__debug_path(img), want);
	assert_false(elf_image__stripped(img));
	if (gil_sites__find(img, &b, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(b.used_dwarf);
	assert_int_equal(a.n, b.n);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(a.v[i].vaddr, b.v[i].vaddr);
		assert_int_equal(a.v[i].offset, b.v[i].offset);
		assert_string_equal(a.v[i].symbol, b.v[i].symbol);
		assert_string_equal(a.v[i].caller, b.v[i].caller);
	}
	gil_sites__free(&a);
	gil_sites__free(&b);
	elf_image__close(img);

	/* a debug file of another build (other build-id) is not used */
	o = run("cd '%s' && objcopy --only-keep-debug /proc/self/exe "
		".debug/libpy.debug && echo ok", dir);
	assert_non_null(strstr(o, "ok"));
	free(o);
	img = elf_image__open(path, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	assert_null(elf_image__debug_path(img));
	assert_true(elf_image__stripped(img));
	elf_image__close(img);
	rm_rf(dir);
	free(dir);
}

/* ---- symbol-name rules on a synthetic library ------------------------- */

/*
 * Local functions named like gcc's clones and pieces, in a tiny shared
 * object built from assembly: clones are entries, .cold/.part pieces and
 * look-alike names are not, and two names at one address are one site.
 */
static const char synthetic_asm[] =
	".text\n"
	"\t.macro fn name\n"
	"\t.type \\name,@function\n"
	"\\name:\n"
	"\tnop\n\tnop\n\tret\n"
	"\t.size \\name,.-\\name\n"
	"\t.endm\n"
	"\t.type take_gil.localalias,@function\n"
	"\t.size take_gil.localalias,3\n"
	"take_gil.localalias:\n"
	"\tfn take_gil\n"
	"\tfn take_gil.constprop.0\n"
	"\tfn take_gil.part.0\n"
	"\tfn take_gil.cold\n"
	"\tfn drop_gil.lto_priv.0\n"
	"\tfn drop_gil.lto_priv.0.cold\n"
	"\tfn drop_gil.isra.0.constprop.1\n"
	"\tfn drop_gilx\n"
	"\tfn take_gil_helper\n"
	"\t.globl exported\n"
	"\tfn exported\n"
	"\t.data\n"
	"\t.type drop_gil.data,@object\n"
	"\t.size drop_gil.data,8\n"
	"drop_gil.data:\n\t.quad 0\n";

static void test_clone_names(void **state)
{
	char path[600], src[600], err[512], *dir, *o;
	const struct gil_site *g;
	struct elf_image *img;
	struct gil_sites s;
	struct nm_tab nm;
	FILE *f;

	if (!have_binutils() || system("command -v cc >/dev/null") != 0) {
		print_message("  skip: needs cc and binutils\n");
		skip();
	}
	dir = make_tmpdir();
	snprintf(src, sizeof(src), "%s/clones.s", dir);
	snprintf(path, sizeof(path), "%s/libclones.so", dir);
	f = fopen(src, "w");
	assert_non_null(f);
	fputs(synthetic_asm, f);
	fclose(f);
	o = run("cc -shared -nostdlib -Wl,--build-id -o '%s' '%s' 2>&1 && echo ok",
		path, src);
	if (!strstr(o, "ok"))
		fail_msg("cc: %s", o);
	free(o);

	img = elf_image__open(path, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	if (gil_sites__find(img, &s, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	print_sites(path, &s);
	nm_load(path, &nm, true);
	assert_false(s.used_dwarf);
	assert_int_equal(s.n, 4);
	assert_int_equal(count(&s, GIL_TAKE, false), 2);
	assert_int_equal(count(&s, GIL_DROP, false), 2);
	g = find_site(&s, nm_addr(&nm, "take_gil"));
	assert_non_null(g);
	assert_string_equal(g->symbol, "take_gil");
	assert_non_null(find_site(&s, nm_addr(&nm, "take_gil.constprop.0")));
	assert_non_null(find_site(&s, nm_addr(&nm, "drop_gil.lto_priv.0")));
	assert_non_null(find_site(&s, nm_addr(&nm, "drop_gil.isra.0.constprop.1")));
	check_generic(img, &s);
	free(nm.v);
	gil_sites__free(&s);
	elf_image__close(img);
	rm_rf(dir);
	free(dir);
}

/* ---- elf_image accessors ----------------------------------------------- */

struct sym_count {
	const char *name;
	int n;
	int malloc_seen;  /* undefined in libpython: must not be reported */
};

static int count_name(const char *name, uint64_t vaddr, uint64_t size,
		      int type, int bind, void *ctx)
{
	struct sym_count *c = ctx;

	c->n += strcmp(name, c->name) == 0;
	c->malloc_seen += strcmp(name, "malloc") == 0;
	return 0;
}

static int saw_libc(const char *soname, void *ctx)
{
	if (strcmp(soname, "libc.so.6") == 0)
		*(bool *)ctx = true;
	return 0;
}

/* .rodata and .data read through PT_LOAD equal their section contents. */
static void check_read_section(struct elf_image *img, const char *name)
{
	unsigned char tmp[64];
	uint64_t vaddr;
	size_t size;
	void *buf = elf_image__section(img, name, &size, &vaddr);

	assert_non_null(buf);
	assert_true(size > 200);
	assert_int_equal(elf_image__read(img, vaddr + 100, tmp, sizeof(tmp)), 0);
	assert_memory_equal(tmp, (char *)buf + 100, sizeof(tmp));
	free(buf);
}

static void test_elf_image_basics(void **state)
{
	char src[512], err[512];
	struct sym_count want = { .name = "PyEval_SaveThread" };
	struct elf_image *img;
	struct seg segs[16];
	uint64_t v, sz, off;
	size_t nseg, i;
	bool libc = false;

	if (!first_pyenv_lib(src, sizeof(src)))
		skip();
	img = elf_image__open(src, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	assert_string_equal(elf_image__path(img), src);
	assert_null(elf_image__debug_path(img));
	assert_int_equal(strlen(elf_image__build_id(img)), 40);

	/* in both .symtab and .dynsym: reported once; undefined: never */
	assert_int_equal(elf_image__foreach_symbol(img, count_name, &want), 0);
	assert_int_equal(want.n, 1);
	assert_int_equal(want.malloc_seen, 0);
	assert_int_equal(elf_image__find_symbol(img, "PyEval_SaveThread", &v, &sz), 0);
	assert_true(v != 0 && sz != 0);
	assert_int_equal(elf_image__find_symbol(img, "no_such_symbol_x", &v, &sz),
			 -ENOENT);

	check_read_section(img, ".rodata");
	check_read_section(img, ".data");
	assert_null(elf_image__section(img, ".bss", NULL, NULL));
	assert_null(elf_image__section(img, ".no_such_section", NULL, NULL));

	/* bss (beyond p_filesz) is not file-backed */
	nseg = readelf_loads(src, segs, 16);
	for (i = 0; i < nseg; i++) {
		unsigned char b;

		if (segs[i].memsz > segs[i].filesz + 8)
			assert_int_equal(elf_image__read(img, segs[i].vaddr +
					 segs[i].memsz - 8, &b, 1), -ENOENT);
		if (segs[i].exec) {
			assert_int_equal(elf_image__vaddr_to_offset(img,
					 segs[i].vaddr + 16, &off), 0);
			assert_int_equal(off, segs[i].off + 16);
		} else {
			assert_int_equal(elf_image__vaddr_to_offset(img,
					 segs[i].vaddr + 16, &off), -ENOENT);
		}
	}
	assert_int_equal(elf_image__foreach_needed(img, saw_libc, &libc), 0);
	assert_true(libc);
	assert_non_null(elf_image__dwarf(img));
	elf_image__close(img);

	/* bad input */
	assert_null(elf_image__open("/nonexistent/python", "", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/python"));
	assert_null(elf_image__open("/etc/hostname", "", err, sizeof(err)));
	assert_non_null(strstr(err, "not an ELF"));
}

static void test_debian_elf_image(void **state)
{
	char err[512];
	struct elf_image *img;
	uint64_t v, sz, off;
	bool libc = false;

	if (!debian_available())
		skip();
	img = elf_image__open(DEBIAN_PY, "", err, sizeof(err));
	if (!img)
		fail_msg("%s", err);
	if (strcmp(elf_image__build_id(img), DEBIAN_ID) != 0 ||
	    !elf_image__debug_path(img)) {
		print_message("  skip: not the measured build or no debug file\n");
		elf_image__close(img);
		skip();
	}
	/* the binary has no .symtab; the debug file has */
	assert_false(elf_image__stripped(img));
	assert_int_equal(elf_image__find_symbol(img, "PyEval_SaveThread", &v, &sz), 0);
	assert_int_equal(v, 0x4fe200);
	assert_int_equal(sz, 0xdc);
	/* the debug file's .text is NOBITS: offsets come from the binary */
	assert_int_equal(elf_image__vaddr_to_offset(img, 0x41f000, &off), 0);
	assert_int_equal(off, 0x1f000);
	assert_int_equal(elf_image__vaddr_to_offset(img, 0x4cea20, &off), 0);
	assert_int_equal(off, 0xcea20);
	check_read_section(img, ".rodata");
	check_read_section(img, ".data");
	check_read_section(img, ".PyRuntime");
	assert_int_equal(elf_image__foreach_needed(img, saw_libc, &libc), 0);
	assert_true(libc);
	assert_non_null(elf_image__dwarf(img));
	elf_image__close(img);
}

static void test_func_names(void **state)
{
	assert_string_equal(gil_func__name(GIL_TAKE), "take_gil");
	assert_string_equal(gil_func__name(GIL_DROP), "drop_gil");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_func_names),
		cmocka_unit_test(test_elf_image_basics),
		cmocka_unit_test(test_clone_names),
		cmocka_unit_test(test_pyenv_interpreters),
		cmocka_unit_test(test_python27_has_no_gil_functions),
		cmocka_unit_test(test_stripped_copy),
		cmocka_unit_test(test_debuglink_copy),
		cmocka_unit_test(test_debian_elf_image),
		cmocka_unit_test(test_debian_python311),
		cmocka_unit_test(test_debian_root_prefix),
		cmocka_unit_test(test_debian_missing_debug_hint),
		cmocka_unit_test(test_debian_libpython311),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
