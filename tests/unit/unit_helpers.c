/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the cmocka unit tests: one copy of what several test
 * files need (see unit_helpers.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "unit_helpers.h"

const struct interp interps[NINTERPS] = {
	{ "pyenv 3.6.15", PYENV "3.6.15/bin/python3", true },
	{ "pyenv 3.7.16", PYENV "3.7.16/bin/python3", true },
	{ "pyenv 3.8.18", PYENV "3.8.18/bin/python3", true },
	{ "pyenv 3.9.18", PYENV "3.9.18/bin/python3", true },
	{ "pyenv 3.10.13", PYENV "3.10.13/bin/python3", true },
	{ "pyenv 3.11.7", PYENV "3.11.7/bin/python3", true },
	{ "pyenv 3.12.1", PYENV "3.12.1/bin/python3", true },
	{ "pyenv 3.13.0", PYENV "3.13.0/bin/python3", true },
	{ "debian 3.11", "/usr/bin/python3.11", false },
};

bool present(const char *path, const char *label)
{
	if (access(path, X_OK) == 0)
		return true;
	print_message("[  SKIP    ] %s: %s not found\n", label, path);
	return false;
}

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

char *run(const char *fmt, ...)
{
	size_t len = 0, cap = 65536, r;
	char cmd[8192], *out;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return NULL;
	out = malloc(cap);
	while (out && (r = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += r;
		if (cap - len < 4096) {
			char *n = realloc(out, cap *= 2);

			if (!n) {
				free(out);
				out = NULL;
				break;
			}
			out = n;
		}
	}
	pclose(p);
	if (out)
		out[len] = '\0';
	return out;
}

static bool nm_parse(const char *line, struct nm_sym *s, bool funcs_only)
{
	char type;

	memset(s, 0, sizeof(*s));
	if (sscanf(line, "%" SCNx64 " %" SCNx64 " %c %159s", &s->addr,
		   &s->size, &type, s->name) == 4)
		return !funcs_only || type == 't' || type == 'T' ||
		       type == 'W' || type == 'i';
	s->size = 0;
	return !funcs_only &&
	       sscanf(line, "%" SCNx64 " %c %159s", &s->addr, &type, s->name) == 3;
}

void nm_load(const char *path, struct nm_tab *t, bool funcs_only)
{
	char *out = run("nm -n -S --defined-only '%s' 2>/dev/null", path);
	char *line, *save = NULL;
	size_t cap = 0;

	assert_non_null(out);
	memset(t, 0, sizeof(*t));
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct nm_sym s;

		if (!nm_parse(line, &s, funcs_only))
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 4096;
			t->v = realloc(t->v, cap * sizeof(*t->v));
			assert_non_null(t->v);
		}
		t->v[t->n++] = s;
	}
	free(out);
}

const struct nm_sym *nm_find(const struct nm_tab *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0)
			return &t->v[i];
	return NULL;
}

uint64_t nm_addr(const struct nm_tab *t, const char *name)
{
	const struct nm_sym *s = nm_find(t, name);

	if (!s)
		fail_msg("symbol %s not found by nm", name);
	return s->addr;
}

const struct nm_sym *nm_containing(const struct nm_tab *t, uint64_t addr)
{
	const struct nm_sym *best = NULL;
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].size && t->v[i].addr <= addr &&
		    addr < t->v[i].addr + t->v[i].size &&
		    (!best || t->v[i].addr > best->addr))
			best = &t->v[i];
	return best;
}

int remove_tree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

void copy_file(const char *from, const char *to)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

char unit_tmpdir[64];

int unit_tmpdir_setup(void **state)
{
	snprintf(unit_tmpdir, sizeof(unit_tmpdir), "/tmp/%s-XXXXXX",
		 program_invocation_short_name);
	return mkdtemp(unit_tmpdir) ? 0 : -1;
}

int unit_tmpdir_teardown(void **state)
{
	return remove_tree(unit_tmpdir) == 0 ? 0 : -1;
}

/* _Py_DebugOffsets, Include/internal/pycore_runtime.h, 3.13. */
const unsigned char py313_debug_cookie[16] = {
	'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y',
	0xf0, 0x00, 0x0d, 0x03, 0, 0, 0, 0,
};

void patch_after(const char *path, const unsigned char *cookie, size_t clen,
		 long off, const void *data, size_t n)
{
	unsigned char *buf, *hit;
	struct stat sb;
	FILE *f;

	assert_int_equal(stat(path, &sb), 0);
	buf = malloc((size_t)sb.st_size);
	assert_non_null(buf);
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
	hit = memmem(buf, (size_t)sb.st_size, cookie, clen);
	assert_non_null(hit);
	assert_int_equal(fseek(f, (long)(hit - buf) + off, SEEK_SET), 0);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
	free(buf);
}

void wait_blocked_pid(pid_t pid)
{
	char p[64], buf[128];
	int i;

	snprintf(p, sizeof(p), "/proc/%d/syscall", (int)pid);
	for (i = 0; i < 1000; i++) {
		FILE *f = fopen(p, "r");
		bool in_read = false;

		if (f) {
			in_read = fgets(buf, sizeof(buf), f) &&
				  strncmp(buf, "0 0x0 ", 6) == 0;
			fclose(f);
		}
		if (in_read)
			return;
		usleep(10000);
	}
	fail_msg("child %d never blocked in read(0)", (int)pid);
}

uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void dist_add(struct gt_dist *d, uint64_t ns)
{
	d->count++;
	d->sum_ns += ns;
	if (ns > d->max_ns)
		d->max_ns = ns;
	d->buckets[gt_bucket(ns)]++;
}

void model_py312(struct model *m, pid_t pid, uint64_t t0_ns, bool library)
{
	model__init(m);
	m->pid = pid;
	snprintf(m->exe, sizeof(m->exe), PYENV "3.12.1/bin/python3.12");
	if (library)
		snprintf(m->library, sizeof(m->library),
			 PYENV "3.12.1/lib/libpython3.12.so.1.0");
	snprintf(m->python_version, sizeof(m->python_version), "3.12.1");
	m->t0_ns = t0_ns;
	m->switch_interval_ns = 5000000;
}
