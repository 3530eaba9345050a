/* SPDX-License-Identifier: MIT */
/*
 * target: which process, which interpreter binary, which Python version.
 *
 * - The interpreter ELF is a mapped libpythonX.Y*.so* (shared builds, e.g.
 *   pyenv's), else the executable itself when it defines the interpreter
 *   (static builds, e.g. Debian's /usr/bin/python3.11).
 * - It is opened through /proc/PID/root/<path> so that processes in other
 *   mount namespaces work, or through /proc/PID/map_files/<range> when the
 *   file was deleted or replaced since it was mapped.
 * - The load bias comes from the first maps line of that file, which is
 *   the first PT_LOAD segment (the dynamic loader maps it first, at the
 *   lowest address; offset 0 in practice).
 * - The version comes from the binary: Py_Version (3.11+, PY_VERSION_HEX),
 *   else the PY_VERSION string in .rodata. The linker merges string tails,
 *   so PY_VERSION may be the tail of a longer string (pyenv's libpython has
 *   "3.6.15" only inside "/root/.pyenv/versions/3.6.15"): candidates are
 *   NUL-terminated tails, and the one whose X.Y matches the file name wins.
 * - Free-threaded builds (3.13+, Py_GIL_DISABLED) are recognised from
 *   _Py_DebugOffsets.free_threaded at the start of _PyRuntime
 *   (Include/internal/pycore_runtime.h 3.13, pycore_debug_offsets.h 3.14),
 *   else from the ABI flag "t" in the file name.
 */
#include "target.h"
#include "errbuf.h"
#include "elf_image.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One line of /proc/PID/maps that names a file. */
struct map_line {
	uint64_t start, end, offset, inode;
	char perms[8];
	bool deleted;
	char path[PATH_MAX];
};

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* /proc/PID/comm without the newline, or "?" */
static void read_comm(pid_t pid, char *buf, size_t len)
{
	char p[64];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static int proc_errno(int e, pid_t pid, const char *what, char *err,
		      size_t errlen)
{
	if (e == EACCES || e == EPERM) {
		errbuf_set(err, errlen,
			"giltrace: cannot read /proc/%d/%s: %s; run giltrace as root",
			(int)pid, what, strerror(e));
		return TARGET_EACCES;
	}
	if (e == ENOENT || e == ESRCH) {
		errbuf_set(err, errlen, "giltrace: no process with PID %d", (int)pid);
		return TARGET_ENOPROC;
	}
	errbuf_set(err, errlen, "giltrace: cannot read /proc/%d/%s: %s", (int)pid,
		what, strerror(e));
	return -e;
}

/*
 * Parse one maps line: "start-end perms offset dev inode path".
 * Returns true when it names a file.
 */
static bool parse_map_line(const char *line, struct map_line *m)
{
	unsigned long long s, e, off, ino;
	int n = 0;
	const char *p;
	size_t len;

	if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &s, &e, m->perms,
		   &off, &ino, &n) < 5 || n <= 0)
		return false;
	p = line + n;
	while (*p == ' ')
		p++;
	if (*p != '/')
		return false;
	len = strcspn(p, "\n");
	if (len >= sizeof(m->path))
		return false;
	memcpy(m->path, p, len);
	m->path[len] = '\0';
	m->deleted = false;
	if (len > 10 && strcmp(m->path + len - 10, " (deleted)") == 0) {
		m->path[len - 10] = '\0';
		m->deleted = true;
	}
	m->start = s;
	m->end = e;
	m->offset = off;
	m->inode = ino;
	return true;
}

/*
 * libpythonX.Y[abiflags].so[.N...]: "libpython3.12.so.1.0",
 * "libpython3.6m.so.1.0", "libpython3.13t.so", "libpython2.7.so.1.0".
 * Not the stable-ABI forwarder libpython3.so, which holds no interpreter.
 */
static bool is_libpython(const char *path)
{
	const char *b = base_name(path), *p;

	if (strncmp(b, "libpython", 9) != 0)
		return false;
	p = b + 9;
	if (*p != '2' && *p != '3')
		return false;
	p++;
	if (*p++ != '.' || !isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	while (islower((unsigned char)*p))  /* ABI flags: m, d, t, u */
		p++;
	return strncmp(p, ".so", 3) == 0 && (p[3] == '\0' || p[3] == '.');
}

/* Scan /proc/PID/maps. Sets *lib to the first libpython line (if any). */
static int scan_maps(pid_t pid, struct map_line *lib, bool *found,
		     char *err, size_t errlen)
{
	char p[64], *line = NULL;
	size_t cap = 0;
	struct map_line m;
	FILE *f;

	*found = false;
	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return proc_errno(errno, pid, "maps", err, errlen);
	while (getline(&line, &cap, f) > 0) {
		if (!parse_map_line(line, &m) || !is_libpython(m.path))
			continue;
		*lib = m;
		*found = true;
		break;
	}
	free(line);
	fclose(f);
	return 0;
}

/* First maps line of @path (the lowest address it is mapped at). */
static int first_mapping(pid_t pid, const char *path, struct map_line *out)
{
	char p[64], *line = NULL;
	size_t cap = 0;
	struct map_line m;
	int ret = -ENOENT;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (parse_map_line(line, &m) && strcmp(m.path, path) == 0) {
			*out = m;
			ret = 0;
			break;
		}
	}
	free(line);
	fclose(f);
	return ret;
}

/*
 * Choose the path to open the file the target maps as @m: through its
 * root, unless the file is gone or is no longer the mapped inode; then
 * through /proc/PID/map_files (which needs CAP_SYS_ADMIN).
 */
static void openable_path(struct py_target *t, const struct map_line *m,
			  char *out, size_t len)
{
	char mf[128];
	struct stat st;

	if (snprintf(out, len, "%s%s", t->root, m->path) < (int)len &&
	    !m->deleted && stat(out, &st) == 0 && st.st_ino == m->inode)
		return;
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", (int)t->pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	if (access(mf, R_OK) == 0)
		snprintf(out, len, "%s", mf);
}

/* ---- is the executable an interpreter? -------------------------------- */

/* Symbols that only a binary containing CPython defines. */
static const char *const interp_syms[] = {
	"Py_Version", "_PyRuntime", "Py_Initialize", "PyEval_SaveThread",
	"take_gil", "Py_InitializeEx",
};

static bool defines_interpreter(struct elf_image *img)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(interp_syms) / sizeof(interp_syms[0]); i++) {
		if (elf_image__find_symbol(img, interp_syms[i], &v, NULL) == 0 &&
		    v != 0)
			return true;
	}
	return false;
}

/* ---- version ----------------------------------------------------------- */

static void set_version(struct py_target *t, int major, int minor, int micro,
			const char *suffix)
{
	t->major = major;
	t->minor = minor;
	t->micro = micro;
	snprintf(t->version, sizeof(t->version), "%d.%d.%d%s", major, minor,
		 micro, suffix);
}

/* Py_Version, 3.11+: `const unsigned long Py_Version = PY_VERSION_HEX;` */
static int version_from_hex(struct py_target *t)
{
	static const char *const level[16] = {
		[0xA] = "a", [0xB] = "b", [0xC] = "rc", [0xF] = "",
	};
	uint64_t vaddr, size, hex = 0;
	uint32_t h32;
	unsigned lv, serial;
	char suffix[16];

	if (elf_image__find_symbol(t->img, "Py_Version", &vaddr, &size) != 0)
		return -ENOENT;
	if (size == 8) {
		if (elf_image__read(t->img, vaddr, &hex, 8) != 0)
			return -ENOENT;
	} else {
		if (elf_image__read(t->img, vaddr, &h32, 4) != 0)
			return -ENOENT;
		hex = h32;
	}
	lv = (hex >> 4) & 0xf;
	serial = hex & 0xf;
	if ((hex >> 24) < 2 || (hex >> 24) > 9 || !level[lv])
		return -EINVAL;
	if (lv == 0xF)
		suffix[0] = '\0';
	else
		snprintf(suffix, sizeof(suffix), "%s%u", level[lv], serial);
	set_version(t, (int)(hex >> 24), (int)((hex >> 16) & 0xff),
		    (int)((hex >> 8) & 0xff), suffix);
	return 0;
}

/* "pythonX.Y" or "libpythonX.Y" in a file name: the X.Y it claims. */
static bool name_hint(const char *path, int *major, int *minor)
{
	const char *b = base_name(path), *p = strstr(b, "python");
	char *end;

	if (!p)
		return false;
	p += 6;
	if ((*p != '2' && *p != '3') || p[1] != '.' || !isdigit((unsigned char)p[2]))
		return false;
	*major = *p - '0';
	*minor = (int)strtol(p + 2, &end, 10);
	return true;
}

/*
 * Does @s (NUL-terminated, at most @max bytes) match
 * ^[23]\.[0-9]+\.[0-9]+((a|b|rc)[0-9]+)?\+?$ ? Fills the numbers.
 */
static bool match_py_version(const char *s, size_t max, int *maj, int *min,
			     int *mic)
{
	const char *p = s, *end = s + max;
	long v[3];
	int i;

	if (p >= end || (*p != '2' && *p != '3'))
		return false;
	for (i = 0; i < 3; i++) {
		char *e;

		if (p >= end || !isdigit((unsigned char)*p))
			return false;
		v[i] = strtol(p, &e, 10);
		p = e;
		if (i < 2 && (p >= end || *p++ != '.'))
			return false;
	}
	if (p < end && (*p == 'a' || *p == 'b' || (*p == 'r' && p[1] == 'c'))) {
		p += *p == 'r' ? 2 : 1;
		if (p >= end || !isdigit((unsigned char)*p))
			return false;
		while (p < end && isdigit((unsigned char)*p))
			p++;
	}
	if (p < end && *p == '+')
		p++;
	if (p >= end || *p != '\0' || v[1] > 99 || v[2] > 99)
		return false;
	*maj = (int)v[0];
	*min = (int)v[1];
	*mic = (int)v[2];
	return true;
}

/* PY_VERSION in .rodata (all versions; the only source before 3.11). */
static int version_from_string(struct py_target *t)
{
	int hmaj = 0, hmin = 0, best = -1, score, maj, min, mic;
	bool hint;
	size_t size, i;
	char *ro;

	hint = name_hint(t->interp, &hmaj, &hmin) ||
	       name_hint(t->exe, &hmaj, &hmin);
	ro = elf_image__section(t->img, ".rodata", &size, NULL);
	if (!ro)
		return -ENOENT;
	for (i = 0; i < size; i++) {
		char prev = i ? ro[i - 1] : '\0';

		/* A tail starts after a non-digit, non-dot byte. */
		if ((ro[i] != '2' && ro[i] != '3') || isdigit((unsigned char)prev) ||
		    prev == '.')
			continue;
		if (!match_py_version(ro + i, size - i, &maj, &min, &mic))
			continue;
		score = 1;
		if (hint && maj == hmaj && min == hmin)
			score += 4;
		if (prev == '\0')
			score += 2;   /* a string of its own */
		if (score > best) {
			best = score;
			snprintf(t->version, sizeof(t->version), "%s", ro + i);
			t->major = maj;
			t->minor = min;
			t->micro = mic;
		}
	}
	free(ro);
	return best < 0 ? -ENOENT : 0;
}

/* ---- free-threaded builds ---------------------------------------------- */

/* _Py_DebugOffsets: cookie[8], version (u64), free_threaded (u64), 3.13+ */
static bool debug_offsets_free_threaded(struct py_target *t, bool *ft)
{
	unsigned char hdr[24];
	uint64_t vaddr, v;
	size_t size;
	void *sec;

	if (elf_image__find_symbol(t->img, "_PyRuntime", &vaddr, NULL) != 0 ||
	    elf_image__read(t->img, vaddr, hdr, sizeof(hdr)) != 0) {
		sec = elf_image__section(t->img, ".PyRuntime", &size, NULL);
		if (!sec)
			return false;
		if (size < sizeof(hdr)) {
			free(sec);
			return false;
		}
		memcpy(hdr, sec, sizeof(hdr));
		free(sec);
	}
	if (memcmp(hdr, "xdebugpy", 8) != 0)
		return false;
	memcpy(&v, hdr + 16, 8);
	*ft = v != 0;
	return true;
}

/* ABI flag "t" after X.Y in the name: python3.13t, libpython3.13td.so */
static bool name_says_free_threaded(const char *path)
{
	const char *p = strstr(base_name(path), "python3.");

	if (!p)
		return false;
	p += 8;
	while (isdigit((unsigned char)*p))
		p++;
	for (; islower((unsigned char)*p); p++)
		if (*p == 't')
			return true;
	return false;
}

static bool is_free_threaded(struct py_target *t)
{
	bool ft;

	if (t->major < 3 || (t->major == 3 && t->minor < 13))
		return false;
	if (debug_offsets_free_threaded(t, &ft))
		return ft;
	return name_says_free_threaded(t->interp) ||
	       (!t->is_library && name_says_free_threaded(t->exe));
}

/* ---- load bias --------------------------------------------------------- */

/*
 * First PT_LOAD of the file (lowest file offset). elf_image keeps the
 * program headers private, so they are read here with libelf.
 */
static int first_load(const char *path, GElf_Phdr *out)
{
	bool found = false;
	size_t i, n;
	GElf_Phdr ph;
	Elf *elf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_getphdrnum(elf, &n) == 0) {
		for (i = 0; i < n; i++) {
			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
				continue;
			if (!found || ph.p_offset < out->p_offset)
				*out = ph;
			found = true;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return found ? 0 : -ENOEXEC;
}

/*
 * The kernel / ld.so map a segment at PAGE_DOWN(bias + p_vaddr) with file
 * offset p_offset - PAGE_OFF(p_vaddr); so bias = start - PAGE_DOWN(p_vaddr).
 */
static int compute_load_bias(struct py_target *t, char *err, size_t errlen)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE), in_page;
	struct map_line m;
	GElf_Phdr ph = { 0 };
	int r;

	t->load_bias = 0;
	if (!elf_image__is_dyn(t->img))
		return 0;   /* ET_EXEC: linked at its run-time address */
	r = first_mapping(t->pid, t->interp, &m);
	if (r == 0)
		r = first_load(t->interp_open, &ph);
	if (r != 0) {
		errbuf_set(err, errlen,
			"giltrace: cannot find where PID %d maps %s: %s",
			(int)t->pid, t->interp, strerror(-r));
		return r;
	}
	in_page = ph.p_vaddr & (pg - 1);
	if (m.offset != ph.p_offset - in_page) {
		errbuf_set(err, errlen,
			"giltrace: PID %d maps %s at file offset 0x%llx, not at its first segment (0x%llx); cannot compute its load address",
			(int)t->pid, t->interp, (unsigned long long)m.offset,
			(unsigned long long)(ph.p_offset - in_page));
		return -EINVAL;
	}
	t->load_bias = m.start - (ph.p_vaddr - in_page);
	return 0;
}

/* ---- target__open ------------------------------------------------------ */

/* Fill t->exe; the process may be a zombie or a kernel thread (no exe). */
static int read_exe(struct py_target *t, const char *comm, char *err,
		    size_t errlen)
{
	char p[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/%d/exe", (int)t->pid);
	n = readlink(p, t->exe, sizeof(t->exe) - 1);
	if (n < 0) {
		int e = errno;
		struct stat st;

		snprintf(p, sizeof(p), "/proc/%d", (int)t->pid);
		if (e == ENOENT && stat(p, &st) == 0) {
			errbuf_set(err, errlen,
				"giltrace: PID %d (%s) is not a Python process: it has no executable (kernel thread or zombie)",
				(int)t->pid, comm);
			return TARGET_ENOTPY;
		}
		return proc_errno(e, t->pid, "exe", err, errlen);
	}
	t->exe[n] = '\0';
	if (n > 10 && strcmp(t->exe + n - 10, " (deleted)") == 0)
		t->exe[n - 10] = '\0';
	return 0;
}

/* Open @path as t->img; EACCES is told apart from "not an ELF". */
static int open_image(struct py_target *t, const char *path, char *eerr,
		      size_t elen)
{
	if (access(path, R_OK) != 0 && (errno == EACCES || errno == EPERM))
		return -errno;
	t->img = elf_image__open(path, t->root, eerr, elen);
	return t->img ? 0 : -ENOEXEC;
}

/* The interpreter is the executable: open it and check it is one. */
static int open_exe_as_interp(struct py_target *t, const char *comm,
			      char *err, size_t errlen)
{
	char eerr[256], proc_exe[64];
	struct map_line m;
	int r;

	snprintf(proc_exe, sizeof(proc_exe), "/proc/%d/exe", (int)t->pid);
	snprintf(t->interp, sizeof(t->interp), "%s", t->exe);
	if (first_mapping(t->pid, t->exe, &m) == 0)
		openable_path(t, &m, t->interp_open, sizeof(t->interp_open));
	else
		snprintf(t->interp_open, sizeof(t->interp_open), "%s", proc_exe);
	r = open_image(t, t->interp_open, eerr, sizeof(eerr));
	if (r && strcmp(t->interp_open, proc_exe) != 0) {
		snprintf(t->interp_open, sizeof(t->interp_open), "%s", proc_exe);
		r = open_image(t, t->interp_open, eerr, sizeof(eerr));
	}
	if (r == -EACCES || r == -EPERM)
		return proc_errno(-r, t->pid, "exe", err, errlen);
	if (r || !defines_interpreter(t->img)) {
		errbuf_set(err, errlen,
			"giltrace: PID %d (%s) is not a Python process: no libpython or CPython interpreter mapped",
			(int)t->pid, comm);
		return TARGET_ENOTPY;
	}
	t->is_library = false;
	return 0;
}

static int open_lib_as_interp(struct py_target *t, const struct map_line *m,
			      char *err, size_t errlen)
{
	char eerr[256];
	int r;

	snprintf(t->interp, sizeof(t->interp), "%s", m->path);
	openable_path(t, m, t->interp_open, sizeof(t->interp_open));
	t->is_library = true;
	r = open_image(t, t->interp_open, eerr, sizeof(eerr));
	if (r == -EACCES || r == -EPERM) {
		errbuf_set(err, errlen,
			"giltrace: cannot read %s: %s; run giltrace as root",
			t->interp_open, strerror(-r));
		return TARGET_EACCES;
	}
	if (r) {
		errbuf_set(err, errlen, "giltrace: PID %d maps %s: %s", (int)t->pid,
			t->interp, eerr);
		return -EIO;
	}
	return 0;
}

static int check_version(struct py_target *t, char *err, size_t errlen)
{
	if (version_from_hex(t) != 0 && version_from_string(t) != 0) {
		errbuf_set(err, errlen,
			"giltrace: PID %d: cannot tell the Python version of %s (neither Py_Version nor a PY_VERSION string found)",
			(int)t->pid, t->interp);
		return -ENODATA;
	}
	if (t->major == 2) {
		errbuf_set(err, errlen,
			"giltrace: PID %d runs Python %s; Python 2.7 has no take_gil: not supported",
			(int)t->pid, t->version);
		return TARGET_EPY2;
	}
	t->free_threaded = is_free_threaded(t);
	if (t->free_threaded) {
		errbuf_set(err, errlen,
			"giltrace: PID %d runs Python %s, a free-threaded build (%s): it has no GIL to trace",
			(int)t->pid, t->version, base_name(t->interp));
		return TARGET_EFREE;
	}
	return 0;
}

int target__open(pid_t pid, struct py_target *t, char *err, size_t errlen)
{
	char p[64], comm[32];
	struct map_line lib;
	struct stat st;
	bool found;
	int r;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (pid <= 0) {
		errbuf_set(err, errlen, "giltrace: no process with PID %d", (int)pid);
		return TARGET_ENOPROC;
	}
	snprintf(t->root, sizeof(t->root), "/proc/%d/root", (int)pid);
	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	if (stat(p, &st) != 0)
		return proc_errno(errno, pid, "", err, errlen);
	read_comm(pid, comm, sizeof(comm));

	r = read_exe(t, comm, err, errlen);
	if (r)
		goto fail;
	r = scan_maps(pid, &lib, &found, err, errlen);
	if (r)
		goto fail;
	r = found ? open_lib_as_interp(t, &lib, err, errlen) :
		    open_exe_as_interp(t, comm, err, errlen);
	if (r)
		goto fail;
	r = check_version(t, err, errlen);
	if (r)
		goto fail;
	r = compute_load_bias(t, err, errlen);
	if (r)
		goto fail;
	return 0;
fail:
	target__close(t);
	t->pid = pid;
	return r;
}

void target__close(struct py_target *t)
{
	if (!t)
		return;
	elf_image__close(t->img);
	memset(t, 0, sizeof(*t));
}

/* ---- launch support ---------------------------------------------------- */

static int needed_is_libpython(const char *soname, void *ctx)
{
	return is_libpython(soname);
}

bool target__exe_needs_libpython(pid_t pid)
{
	char p[64], root[64];
	struct elf_image *img;
	bool ret;

	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	img = elf_image__open(p, root, NULL, 0);
	if (!img)
		return false;
	ret = elf_image__foreach_needed(img, needed_is_libpython, NULL) != 0;
	elf_image__close(img);
	return ret;
}
