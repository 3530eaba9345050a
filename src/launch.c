/* SPDX-License-Identifier: MIT */
/*
 * launch: run a command under ptrace and stop the first process of its exec
 * chain that maps a CPython interpreter, before any bytecode runs.
 *
 * - Start: fork; the child waits on a "go" pipe until the parent has
 *   PTRACE_SEIZEd it, then execvp()s. An exec failure is reported through a
 *   close-on-exec pipe carrying errno (EOF on that pipe means the exec
 *   happened: the kernel closes O_CLOEXEC descriptors before the
 *   PTRACE_EVENT_EXEC stop).
 * - SEIZE rather than TRACEME: auto-attached children then start with a
 *   PTRACE_EVENT_STOP instead of a SIGSTOP that would have to be swallowed,
 *   group-stops are told apart from signal-delivery-stops by the event
 *   number, and release can stop a running task with PTRACE_INTERRUPT
 *   without queueing any signal.
 * - No PTRACE_O_EXITKILL: if giltrace dies, the kernel detaches every
 *   tracee and the command goes on untraced, which is what it does after
 *   release anyway; the command must never be harmed by its tracer.
 * - Every exec (PTRACE_EVENT_EXEC) asks the caller's match(). A new
 *   executable whose DT_NEEDED names libpython* is then followed syscall by
 *   syscall (PTRACE_SYSCALL) and match() is asked again after every mmap
 *   once ld.so has mapped a libpython file: ld.so maps every library before
 *   running any initialiser, and main() runs after that, so the process is
 *   stopped long before Py_Initialize.
 * - Signals: signal-delivery-stops are re-injected on resume; group-stops
 *   (PTRACE_EVENT_STOP with a stop signal) are kept with PTRACE_LISTEN.
 * - waitpid(-1, __WALL) reaps any child of giltrace: while launch__find or
 *   launch__release runs, giltrace must have no other children it waits for.
 *   ptrace requests only work from the thread that seized: call every
 *   launch__* function from one thread, and let no other thread wait.
 * - A traced thread-group leader that exits before its other threads is
 *   reported only when the whole group has gone: release cannot detach it
 *   (it is a zombie) nor wait for it, so it is parked and reaped later by
 *   launch__wait (its real parent could not reap it before we do).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "launch.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <linux/audit.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Give up following a process that never maps libpython after this many
 * syscall stops (ld.so of a pyenv python3.12 makes ~100 syscalls). */
#define FOLLOW_MAX_STOPS 100000
/* ... or after this many mmaps past libpython's executable segment. */
#define FOLLOW_MAX_MMAPS_AFTER 32

#define TRACE_OPTS (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | \
		    PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | \
		    PTRACE_O_TRACECLONE)

struct task {
	pid_t tid;
	bool held;          /* in a ptrace-stop we have not resumed */
	bool listening;     /* group-stopped, parked with PTRACE_LISTEN */
	bool follow;        /* PTRACE_SYSCALL until libpython is mapped */
	bool in_mmap;       /* last syscall-entry stop was an mmap */
	bool mmap_lp;       /* ... of a libpython file */
	bool mmap_exec;     /* ... with PROT_EXEC */
	bool lp_seen;       /* some libpython file is mapped */
	bool lp_exec;       /* libpython's executable segment is mapped */
	unsigned mmaps_after;
	unsigned long nstops;
};

struct launch {
	pid_t child;
	int status;         /* raw wait status of the child, once reaped */
	bool reaped;
	bool released;
	pid_t matched;
	struct task *tasks;
	size_t ntasks, cap;
	/* Leaders that exited before their threads: still traced, reaped
	 * (as tracer) once their whole group has gone, see launch__wait. */
	pid_t *zombies;
	size_t nzombies, zcap;
};

/* ---- task table ------------------------------------------------------ */

static struct task *task_find(struct launch *l, pid_t tid)
{
	for (size_t i = 0; i < l->ntasks; i++)
		if (l->tasks[i].tid == tid)
			return &l->tasks[i];
	return NULL;
}

/* Returns the task for @tid, adding it if new; NULL when out of memory. */
static struct task *task_add(struct launch *l, pid_t tid)
{
	struct task *t = task_find(l, tid);

	if (t)
		return t;
	if (l->ntasks == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct task *n = realloc(l->tasks, cap * sizeof(*n));

		if (!n)
			return NULL;
		l->tasks = n;
		l->cap = cap;
	}
	t = &l->tasks[l->ntasks++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	return t;
}

static void task_del(struct launch *l, pid_t tid)
{
	struct task *t = task_find(l, tid);

	if (t)
		*t = l->tasks[--l->ntasks];
}

static void follow_reset(struct task *t, bool follow)
{
	pid_t tid = t->tid;
	bool held = t->held;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->held = held;
	t->follow = follow;
}

/* ---- helpers ------------------------------------------------------------ */

/* Status mapped as env(1) does: exit code, or 128+N when killed by N. */
static int map_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
	       sig == SIGTTOU;
}

/* Syscall numbers of mmap for the tracee's ABI (x86-64, x32, i386 mmap2). */
static bool is_mmap(uint32_t arch, uint64_t nr)
{
#if defined(__x86_64__)
	if (arch == AUDIT_ARCH_X86_64)
		return (nr & ~(uint64_t)0x40000000) == __NR_mmap;
	if (arch == AUDIT_ARCH_I386)
		return nr == 192; /* mmap2 */
	return false;
#else
	(void)arch;
#ifdef __NR_mmap
	if (nr == __NR_mmap)
		return true;
#endif
#ifdef __NR_mmap2
	if (nr == __NR_mmap2)
		return true;
#endif
	return false;
#endif
}

static bool basename_is_libpython(const char *path)
{
	const char *b = strrchr(path, '/');

	return strncmp(b ? b + 1 : path, "libpython", 9) == 0;
}

/*
 * libpythonX.Y*.so*, the interpreter; not the stable-ABI forwarder
 * libpython3.so, which a DT_NEEDED may name but which holds no interpreter
 * (it only pulls in libpython3.Y).
 */
static bool basename_is_interp_lib(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (strncmp(b, "libpython", 9) != 0)
		return false;
	b += 9;
	while (*b >= '0' && *b <= '9')
		b++;
	return strncmp(b, ".so", 3) != 0;
}

/* Whether descriptor @fd of @tid is an interpreter libpython. */
static bool fd_is_libpython(pid_t tid, int fd)
{
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (fd < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return basename_is_interp_lib(path);
}

/*
 * Whether the executable @pid runs now has a DT_NEEDED entry naming
 * libpython*, i.e. ld.so will map the interpreter before main(). Read
 * through /proc/PID/exe so other mount namespaces work. (Same question as
 * target__exe_needs_libpython, kept local so launch.c stands alone.)
 */
static bool exe_needs_libpython(pid_t pid)
{
	char path[64];
	Elf_Scn *scn = NULL;
	bool found = false;
	Elf *elf;
	int fd;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	while (elf && !found && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && sh.sh_entsize &&
		     i < d->d_size / sh.sh_entsize; i++) {
			GElf_Dyn dyn;
			const char *name;

			if (!gelf_getdyn(d, (int)i, &dyn) ||
			    dyn.d_tag == DT_NULL)
				break;
			if (dyn.d_tag != DT_NEEDED)
				continue;
			name = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
			if (name && basename_is_libpython(name)) {
				found = true;
				break;
			}
		}
	}
	elf_end(elf);
	close(fd);
	return found;
}

/* Resume @t from its ptrace-stop, injecting @sig. */
static void task_resume(struct task *t, int sig)
{
	long req = t->follow ? PTRACE_SYSCALL : PTRACE_CONT;

	t->held = false;
	/* ESRCH: killed meanwhile; its exit will be reported. */
	ptrace(req, t->tid, 0, (void *)(long)sig);
}

static void record_exit(struct launch *l, pid_t pid, int st)
{
	if (pid == l->child && !l->reaped) {
		l->status = st;
		l->reaped = true;
	}
	task_del(l, pid);
}

/* ---- launch__start ------------------------------------------------------ */

static void child_run(char *const argv[], int go_fd, int err_fd)
{
	sigset_t none;
	ssize_t n;
	char c = 0;
	int e;

	/* giltrace may block signals (signalfd...): the command must not. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Wait until the parent has seized us; EOF means it gave up. */
	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != 'g')
		_exit(127);
	execvp(argv[0], argv);
	e = errno;
	while (write(err_fd, &e, sizeof(e)) < 0 && errno == EINTR)
		;
	_exit(e == ENOENT ? 127 : 126);
}

/* Reap a seized child that failed to exec, resuming any stop on the way. */
static void reap_failed(pid_t pid)
{
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st))
			return;
		if (WIFSTOPPED(st)) {
			int sig = WSTOPSIG(st);

			if ((unsigned)st >> 16 || sig == (SIGTRAP | 0x80))
				sig = 0;
			ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
		}
	}
}

static int read_exec_errno(int fd)
{
	int e = 0;
	size_t got = 0;

	while (got < sizeof(e)) {
		ssize_t n = read(fd, (char *)&e + got, sizeof(e) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got == sizeof(e) ? (e ? e : EIO) : 0;
}

struct launch *launch__start(char *const argv[], char *err, size_t errlen)
{
	int go[2] = { -1, -1 }, ep[2] = { -1, -1 };
	struct launch *l;
	pid_t pid;
	int e;

	if (!argv || !argv[0] || !argv[0][0]) {
		errbuf_set(err, errlen, "no command given: write it after `--`");
		errno = EINVAL;
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	/* The child's table entry exists before the fork (tid set later). */
	if (!l || !task_add(l, 0) || pipe2(go, O_CLOEXEC) ||
	    pipe2(ep, O_CLOEXEC)) {
		e = errno;
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		goto fail;
	}
	if (pid == 0) {
		close(go[1]);
		close(ep[0]);
		child_run(argv, go[0], ep[1]);
	}
	close(go[0]);
	close(ep[1]);
	go[0] = ep[1] = -1;

	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)TRACE_OPTS) < 0) {
		e = errno;
		kill(pid, SIGKILL);
		close(go[1]);
		close(ep[0]);
		waitpid(pid, NULL, 0);
		errbuf_set(err, errlen, "cannot trace the command (ptrace: %s): "
			"run giltrace as root or with CAP_SYS_PTRACE",
			strerror(e));
		free(l->tasks);
		free(l);
		errno = e;
		return NULL;
	}
	while (write(go[1], "g", 1) < 0 && errno == EINTR)
		;
	close(go[1]);
	e = read_exec_errno(ep[0]);
	close(ep[0]);
	if (e) {
		reap_failed(pid);
		if (e == ENOENT)
			errbuf_set(err, errlen, "%s: command not found "
				"(check the name and PATH)", argv[0]);
		else
			errbuf_set(err, errlen, "%s: cannot run: %s",
				argv[0], strerror(e));
		free(l->tasks);
		free(l);
		errno = e;
		return NULL;
	}
	l->child = pid;
	l->tasks[0].tid = pid;
	return l;

fail:
	errbuf_set(err, errlen, "cannot start the command: %s", strerror(e));
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (l)
		free(l->tasks);
	free(l);
	errno = e;
	return NULL;
}

/* ---- launch__find -------------------------------------------------------- */

/* An exec finished in @t: ask match, else choose how to follow it. */
static pid_t on_exec(struct launch *l, struct task *t, launch_match_fn match,
		     void *ctx)
{
	unsigned long former = 0;
	pid_t tid = t->tid;

	/* A non-leader thread that execs takes over the leader's PID. */
	if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &former) == 0 &&
	    (pid_t)former != tid && former)
		task_del(l, (pid_t)former);
	t = task_find(l, tid);
	if (!t)
		return 0;
	follow_reset(t, false);
	if (match(tid, ctx)) {
		l->matched = tid;
		return tid;
	}
	t->follow = exe_needs_libpython(tid);
	task_resume(t, 0);
	return 0;
}

/* A syscall stop of a followed task: after each mmap, ask match. */
static pid_t on_syscall(struct launch *l, struct task *t,
			launch_match_fn match, void *ctx)
{
	struct __ptrace_syscall_info si;
	long n;

	if (++t->nstops > FOLLOW_MAX_STOPS) {
		t->follow = false;
		goto resume;
	}
	memset(&si, 0, sizeof(si));
	n = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(si), &si);
	if (n <= 0) {
		/* Kernel < 5.3: no syscall info; ask at every stop. */
		if (match(t->tid, ctx))
			goto matched;
		goto resume;
	}
	if (si.op == PTRACE_SYSCALL_INFO_ENTRY) {
		t->in_mmap = is_mmap(si.arch, si.entry.nr);
		if (t->in_mmap) {
			int flags = (int)si.entry.args[3];

			t->mmap_exec = si.entry.args[2] & PROT_EXEC;
			t->mmap_lp = !(flags & MAP_ANONYMOUS) &&
				     fd_is_libpython(t->tid,
						     (int)si.entry.args[4]);
		}
		goto resume;
	}
	if (si.op != PTRACE_SYSCALL_INFO_EXIT || !t->in_mmap)
		goto resume;
	t->in_mmap = false;
	if (si.exit.is_error)
		goto resume;
	if (t->mmap_lp) {
		t->lp_seen = true;
		t->lp_exec |= t->mmap_exec;
	} else if (t->lp_exec) {
		t->mmaps_after++;
	}
	if (t->lp_seen && match(t->tid, ctx))
		goto matched;
	if (t->mmaps_after > FOLLOW_MAX_MMAPS_AFTER)
		t->follow = false; /* libpython is there, match says no */
resume:
	task_resume(t, 0);
	return 0;
matched:
	l->matched = t->tid;
	return t->tid;
}

/* A new task appeared (fork/vfork/clone): it will report its own stop. */
static int on_new_task(struct launch *l, pid_t parent)
{
	unsigned long nt = 0;

	if (ptrace(PTRACE_GETEVENTMSG, parent, 0, &nt) == 0 && nt &&
	    !task_add(l, (pid_t)nt))
		return -ENOMEM;
	return 0;
}

/* Handle one wait status. Returns the matched PID, 0, or -errno. */
static pid_t on_status(struct launch *l, pid_t pid, int st,
		       launch_match_fn match, void *ctx)
{
	struct task *t;
	int sig, ev;

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		record_exit(l, pid, st);
		return 0;
	}
	if (!WIFSTOPPED(st))
		return 0;
	/* Unknown: an auto-attached child reporting before its parent. */
	t = task_add(l, pid);
	if (!t)
		return -ENOMEM;
	t->held = true;
	sig = WSTOPSIG(st);
	ev = (unsigned)st >> 16;

	if (sig == (SIGTRAP | 0x80))
		return t->follow ? on_syscall(l, t, match, ctx)
				 : (task_resume(t, 0), 0);
	switch (ev) {
	case 0:                 /* signal-delivery-stop: re-inject */
		task_resume(t, sig);
		return 0;
	case PTRACE_EVENT_STOP:
		if (is_stop_signal(sig)) {
			/* group-stop: stay stopped, keep reporting */
			t->held = false;
			t->listening = true;
			if (ptrace(PTRACE_LISTEN, pid, 0, 0) == 0)
				return 0;
			t->listening = false;
		}
		t->listening = false;  /* new task, interrupt, or SIGCONT */
		task_resume(t, 0);
		return 0;
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
	case PTRACE_EVENT_CLONE: {
		int r = on_new_task(l, pid);

		t = task_find(l, pid);  /* the table may have moved */
		if (t)
			task_resume(t, 0);
		return r;
	}
	case PTRACE_EVENT_EXEC:
		return on_exec(l, t, match, ctx);
	default:
		task_resume(t, 0);
		return 0;
	}
}

pid_t launch__find(struct launch *l, launch_match_fn match, void *ctx)
{
	if (!l || !match || l->released)
		return -EINVAL;
	if (l->matched) {
		struct task *t = task_find(l, l->matched);

		if (t && t->held)
			return l->matched;
		l->matched = 0;
	}
	while (l->ntasks) {
		pid_t r;
		int st;
		pid_t pid = waitpid(-1, &st, __WALL);

		if (pid < 0) {
			if (errno == EINTR)
				return -EINTR;
			if (errno == ECHILD) {
				l->ntasks = 0;  /* nothing traced is left */
				break;
			}
			return -errno;
		}
		r = on_status(l, pid, st, match, ctx);
		if (r)
			return r;
	}
	return 0;
}

/* ---- launch__release ----------------------------------------------------- */

static bool detach(pid_t tid, int sig)
{
	return ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig) == 0 ||
	       errno != ESRCH;
}

/* One wait status while releasing: detach whatever stopped. */
static void release_status(struct launch *l, pid_t pid, int st)
{
	int sig = 0, ev;

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		record_exit(l, pid, st);
		return;
	}
	if (!WIFSTOPPED(st))
		return;
	ev = (unsigned)st >> 16;
	if (ev == 0 && WSTOPSIG(st) != (SIGTRAP | 0x80))
		sig = WSTOPSIG(st);    /* signal-delivery-stop: deliver it */
	if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK ||
	    ev == PTRACE_EVENT_CLONE) {
		unsigned long nt = 0;

		/* The new task is traced; unless it already stopped and was
		 * detached as unknown, it still owes us its first stop. */
		if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &nt) == 0 && nt &&
		    !task_find(l, (pid_t)nt) &&
		    ptrace(PTRACE_INTERRUPT, (pid_t)nt, 0, 0) == 0)
			task_add(l, (pid_t)nt);
	} else if (ev == PTRACE_EVENT_EXEC) {
		unsigned long former = 0;

		if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &former) == 0 &&
		    former && (pid_t)former != pid)
			task_del(l, (pid_t)former);
	}
	/* A group-stopped task stays stopped after detach (the kernel
	 * reinstates the group-stop); an unknown one is a new child. */
	if (detach(pid, sig))
		task_del(l, pid);
}

/* Whether @tid is a thread-group leader that has exited (a zombie). */
static bool is_zombie_leader(pid_t tid)
{
	char path[64], line[128];
	bool zombie = false;
	pid_t tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "State:", 6))
			zombie = strchr(line, 'Z') != NULL;
		else if (!strncmp(line, "Tgid:", 5))
			tgid = (pid_t)atoi(line + 5);
	}
	fclose(f);
	return zombie && tgid == tid;
}

/* Move zombie leaders from the table to the list launch__wait reaps. */
static void park_zombie_leaders(struct launch *l)
{
	for (size_t i = 0; i < l->ntasks;) {
		pid_t tid = l->tasks[i].tid;

		if (!is_zombie_leader(tid)) {
			i++;
			continue;
		}
		if (l->nzombies == l->zcap) {
			size_t cap = l->zcap ? 2 * l->zcap : 4;
			pid_t *z = realloc(l->zombies, cap * sizeof(*z));

			if (z) {
				l->zombies = z;
				l->zcap = cap;
			}
		}
		if (l->nzombies < l->zcap)
			l->zombies[l->nzombies++] = tid;
		l->tasks[i] = l->tasks[--l->ntasks];
	}
}

/* Reap parked zombie leaders whose group has gone (never blocks). */
static void reap_zombies(struct launch *l)
{
	for (size_t i = 0; i < l->nzombies;) {
		pid_t z = l->zombies[i];
		int st;
		pid_t r = waitpid(z, &st, WNOHANG | __WALL);

		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		if (r == z && z == l->child && !l->reaped &&
		    (WIFEXITED(st) || WIFSIGNALED(st))) {
			l->status = st;
			l->reaped = true;
		}
		l->zombies[i] = l->zombies[--l->nzombies];
	}
}

int launch__release(struct launch *l)
{
	int ret = 0;

	if (!l || l->released)
		return 0;
	/* Detach the held ones; interrupt the running and listening ones. */
	for (size_t i = 0; i < l->ntasks;) {
		struct task *t = &l->tasks[i];

		if (t->held && detach(t->tid, 0)) {
			*t = l->tasks[--l->ntasks];
			continue;
		}
		/* (a held one that failed to detach was killed: harmless) */
		t->held = false;
		ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
		i++;
	}
	/* Detach each as it stops. Poll: a zombie leader never reports. */
	while (l->ntasks) {
		int st;
		pid_t pid = waitpid(-1, &st, __WALL | WNOHANG);

		if (pid > 0) {
			release_status(l, pid, st);
			continue;
		}
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0) {
			if (errno != ECHILD)
				ret = -errno;
			l->ntasks = 0;
			break;
		}
		park_zombie_leaders(l);
		if (l->ntasks)
			usleep(200);
	}
	l->released = true;
	l->matched = 0;
	return ret;
}

/* ---- the rest ------------------------------------------------------------ */

pid_t launch__child(const struct launch *l)
{
	return l ? l->child : 0;
}

/* Releases first if needed: waitpid on a traced child would eat its
 * ptrace-stops. */
int launch__wait(struct launch *l, bool block)
{
	if (!l)
		return -EINVAL;
	if (!l->released)
		launch__release(l);
	for (;;) {
		int st;
		pid_t r;

		reap_zombies(l);
		if (l->reaped)
			break;
		/* With parked zombies, poll: they must be reaped meanwhile. */
		r = waitpid(l->child, &st,
			    block && !l->nzombies ? 0 : WNOHANG);
		if (r < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (r > 0) {
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				l->status = st;
				l->reaped = true;
			}
			continue;
		}
		if (!block)
			return -EAGAIN;
		if (usleep(10000) < 0 && errno == EINTR)
			return -EINTR;
	}
	return map_status(l->status);
}

void launch__kill(struct launch *l)
{
	if (!l)
		return;
	if (!l->released && l->matched && l->matched != l->child &&
	    task_find(l, l->matched))
		kill(l->matched, SIGKILL);
	if (!l->reaped)
		kill(l->child, SIGKILL);
	launch__release(l);
	while (!l->reaped && launch__wait(l, true) == -EINTR)
		;
}

void launch__free(struct launch *l)
{
	if (!l)
		return;
	launch__release(l);
	reap_zombies(l);
	free(l->zombies);
	free(l->tasks);
	free(l);
}
