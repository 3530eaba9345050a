/* SPDX-License-Identifier: MIT */
/*
 * launch: run a command and stop the first process of its exec chain that
 * maps a CPython interpreter, before any Python bytecode runs.
 *
 * The command is often not the interpreter: pyenv's `python3` shim is a bash
 * script, users write `env python3`, `/usr/bin/time python3`, `sh -c ...`.
 * The child runs under ptrace with PTRACE_O_TRACEEXEC and fork/vfork/clone
 * following; after each exec the @match callback is asked whether the
 * process now maps an interpreter. When the new executable is dynamically
 * linked against libpython, the process is followed syscall by syscall
 * until the library is mapped (before its initialisers run).
 */
#ifndef GILTRACE_LAUNCH_H
#define GILTRACE_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>

/* Returns true when @pid now maps a CPython interpreter to trace. */
typedef bool (*launch_match_fn)(pid_t pid, void *ctx);

struct launch;

/*
 * Fork and exec @argv (PATH searched). Returns a handle, or NULL with errno
 * set: ENOENT when the command is not found, EACCES/ENOEXEC... when it
 * cannot be run (the caller exits 127 / 126).
 */
struct launch *launch__start(char *const argv[], char *err, size_t errlen);

/*
 * Let the traced processes run until one matches (returns its PID, stopped
 * under ptrace, ready for probes) or the whole command exits without one
 * (returns 0; launch__wait then gives its status). Negative errno on error.
 */
pid_t launch__find(struct launch *l, launch_match_fn match, void *ctx);

/* Detach ptrace from every process, letting all run freely. */
int launch__release(struct launch *l);

/* PID of the direct child (the command itself). */
pid_t launch__child(const struct launch *l);

/*
 * Wait for the direct child to exit. Returns its exit status mapped as env
 * does: the exit code, or 128+N if killed by signal N. With @block false,
 * returns -EAGAIN while it runs.
 */
int launch__wait(struct launch *l, bool block);

/* Kill the command (SIGKILL to the child) and release. */
void launch__kill(struct launch *l);
void launch__free(struct launch *l);

#endif
