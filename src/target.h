/* SPDX-License-Identifier: MIT */
/*
 * target: discovery of the CPython interpreter inside a process. From
 * /proc/PID/exe and /proc/PID/maps, find the ELF that holds the interpreter
 * (the executable itself, or the libpython*.so it maps), open it through
 * /proc/PID/root (so processes in other mount namespaces work), and read
 * the Python version from the binary (Py_Version where it exists, 3.11+;
 * the PY_VERSION string otherwise), never from a file name.
 */
#ifndef GILTRACE_TARGET_H
#define GILTRACE_TARGET_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct elf_image;

struct py_target {
	pid_t pid;
	char root[64];              /* "/proc/PID/root" */
	char exe[PATH_MAX];         /* the executable, as the process names it */
	char interp[PATH_MAX];      /* the ELF holding the interpreter, as the process names it */
	char interp_open[PATH_MAX]; /* the same, openable from giltrace's namespace */
	bool is_library;            /* interp is a libpython shared library */
	uint64_t load_bias;         /* runtime address = link-time vaddr + load_bias */
	int major, minor, micro;
	char version[32];           /* e.g. "3.12.1", "3.13.0rc1" */
	bool free_threaded;         /* Py_GIL_DISABLED build (3.13+) */
	struct elf_image *img;      /* interp, opened; owned */
};

/* Error codes of target__open, each with a one-line message in err. */
#define TARGET_ENOPROC   (-3)  /* no such process */
#define TARGET_ENOTPY    (-8)  /* not a Python process (no interpreter mapped) */
#define TARGET_EPY2      (-93) /* Python 2: "Python 2.7 has no take_gil: not supported" */
#define TARGET_EFREE     (-95) /* free-threaded build: no GIL to trace */
#define TARGET_EACCES    (-13)

/*
 * Inspect process @pid. Returns 0 and fills @t (release with
 * target__close), or one of the TARGET_E* codes above (or another negative
 * errno) with a one-line reason in @err. When the interpreter is a
 * libpython that is not mapped yet, returns TARGET_ENOTPY.
 */
int target__open(pid_t pid, struct py_target *t, char *err, size_t errlen);
void target__close(struct py_target *t);

/*
 * Whether the executable @pid runs now (just exec'd) will load libpython
 * later through the dynamic linker: its DT_NEEDED names libpython*.
 */
bool target__exe_needs_libpython(pid_t pid);

#endif
