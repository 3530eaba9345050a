/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the cmocka unit tests in tests/unit: the interpreters
 * installed on this machine and how a missing one is skipped, running a
 * shell command for its output, temporary files and directories (and one
 * per test group), a seeded random generator, the BPF side's interval
 * accounting and the target of the hand-made models.
 *
 * Include after <cmocka.h> (the helpers assert with cmocka).
 */
#ifndef GILTRACE_UNIT_HELPERS_H
#define GILTRACE_UNIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "giltrace.h"

#define PYENV "/root/.pyenv/versions/"

/* pyenv 3.6-3.13 (libpython shared) and Debian's static python3.11. */
struct interp {
	const char *label;
	const char *python;
	bool is_library;   /* the interpreter lives in libpythonX.Y.so */
};

#define NINTERPS 9
extern const struct interp interps[NINTERPS];

/* A cmocka test of @fn on interps[@i], with the test file's teardown(). */
#define PER_INTERP(fn, i) \
	{ .name = #fn "/" #i, .test_func = fn, .teardown_func = teardown, \
	  .initial_state = (void *)&interps[i] }

/* Is @path executable? If not, print "[  SKIP    ] @label: @path not found". */
bool present(const char *path, const char *label);

/* Seconds on CLOCK_MONOTONIC. */
double now(void);

/* Run a shell command (printf-style); its whole stdout (malloc'd) or NULL. */
char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Symbols per `nm -n -S --defined-only`, in address order. */
struct nm_sym {
	uint64_t addr, size;
	char name[160];
};

struct nm_tab {
	struct nm_sym *v;
	size_t n;
};

/*
 * Load @path's symbols into @t (free t->v after): with @funcs_only the
 * sized function symbols (t T W i), else every defined symbol, sized or not.
 */
void nm_load(const char *path, struct nm_tab *t, bool funcs_only);

/* The first symbol called @name, or NULL. */
const struct nm_sym *nm_find(const struct nm_tab *t, const char *name);

/* Its address; fails the test if nm has no @name. */
uint64_t nm_addr(const struct nm_tab *t, const char *name);

/* The sized symbol containing @addr with the highest start, or NULL. */
const struct nm_sym *nm_containing(const struct nm_tab *t, uint64_t addr);

/* `rm -rf @dir`; system()'s status. */
int remove_tree(const char *dir);

/* `cp @from @to`, asserted to succeed. */
void copy_file(const char *from, const char *to);

/*
 * A temporary directory for a test group: unit_tmpdir_setup (a cmocka
 * group setup) makes /tmp/PROGRAM-XXXXXX into unit_tmpdir,
 * unit_tmpdir_teardown removes it with all in it.
 */
extern char unit_tmpdir[64];
int unit_tmpdir_setup(void **state);
int unit_tmpdir_teardown(void **state);

/* _Py_DebugOffsets' cookie followed by PY_VERSION_HEX of 3.13.0 final
 * ("xdebugpy" alone also occurs as a string elsewhere in libpython). */
extern const unsigned char py313_debug_cookie[16];

/* Overwrite @path, @off bytes past the first @cookie, with @n bytes of @data. */
void patch_after(const char *path, const unsigned char *cookie, size_t clen,
		 long off, const void *data, size_t n);

/* Until @pid sleeps in read(0, ...); fails the test after 10 s. */
void wait_blocked_pid(pid_t pid);

/* splitmix64 step: fixed seeds give the same samples on every run. */
uint64_t splitmix64(uint64_t *state);

/* What the BPF program does for one finished interval. */
void dist_add(struct gt_dist *d, uint64_t ns);

struct model;

/*
 * model__init(@m) for the target of the hand-made models: PID @pid running
 * pyenv's 3.12.1 (its libpython as m->library when @library), traced from
 * @t0_ns, switch interval 5 ms.
 */
void model_py312(struct model *m, pid_t pid, uint64_t t0_ns, bool library);

#endif
