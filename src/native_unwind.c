/* SPDX-License-Identifier: MIT */
/*
 * native_unwind: CFI unwinding (elfutils libdwfl) of the user stack copies
 * that --native captures, and naming of the pcs found. See native_unwind.h
 * for what is read from where.
 *
 * libdwfl asks three things of a "process" attached with dwfl_attach_state:
 * its threads (here one, whose TID is the PID), the initial registers of a
 * thread (the copy's regs[], DWARF numbering) and words of memory (the
 * copy's stack[], nothing else). One session serves every walk: the walk in
 * progress is in the unwinder (u->cur), which the callbacks get as their
 * argument. libdwfl 0.188 unwinds with .eh_frame, then .debug_frame, then
 * falls back to rbp chaining (backends/x86_64_unwind.c); as no interpreter
 * here keeps frame pointers, a frame whose pc is in no module, or whose
 * stack pointer does not grow, ends the walk.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <elfutils/libdwfl.h>

#include "native_unwind.h"

#define CACHE_SLOTS 4096 /* power of two */
#define CACHE_PROBE 8    /* slots tried before the home slot is evicted */
#define REG_SP 7
#define REG_PC 16

struct cache_ent {
	uint64_t pc;
	uint32_t gen;     /* valid iff == u->gen */
	bool is_ret;
	struct native_frame f;
};

struct native_unwinder {
	pid_t pid;
	unsigned long long start_time; /* /proc/PID/stat field 22 */
	Dwfl *dwfl;
	bool gone;                     /* the process exited (or the PID was reused) */
	uint64_t last_refresh_ms;      /* 0: never refreshed */
	/* the walk in progress */
	const struct gt_native *cur;
	uint64_t *pcs;
	size_t max, n;
	uint64_t last_sp;
	int status;                    /* set by the frame callback */
	bool out_of_copy;              /* a read fell outside the copy */
	bool want_refresh;             /* a pc lies in no module */
	/* symbol cache */
	struct cache_ent *cache;
	uint32_t gen;
	struct native_unwind_stats st;
};

static char *debuginfo_path; /* NULL: libdwfl's default, ":.debug:/usr/lib/debug" */

/* The process whose session is being opened: every ELF is opened then
 * (preload_elf), so find_elf runs only inside session_open. */
static __thread pid_t opening_pid;

/*
 * A module's file as the process sees it: /proc/PID/root/PATH (its mount
 * namespace: a container's files, not ours). Deleted files and the vDSO
 * go to libdwfl's own callback, which reads their image from
 * /proc/PID/mem once the state is attached.
 */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name,
		    Dwarf_Addr base, char **file_name, Elf **elfp)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, len;

	if (name[0] == '/' && opening_pid > 0) {
		len = snprintf(path, sizeof(path), "/proc/%d/root%s",
			       (int)opening_pid, name);
		if (len > 0 && (size_t)len < sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				*file_name = strdup(path);
				if (*file_name)
					return fd;
				close(fd);
				return -1;
			}
		}
	}
	return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Field 22 of /proc/PID/stat (start time in clock ticks); 0 if unreadable. */
static unsigned long long proc_start_time(pid_t pid)
{
	unsigned long long v = 0;
	char path[64], buf[1024], *p;
	size_t len;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p)
		return 0;
	/* after ')': field 3 (state) ... field 22 (starttime) */
	for (i = 3; i <= 22 && p; i++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

/* ---- libdwfl thread callbacks: one thread, the copy ---- */

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct native_unwinder *u = arg;

	if (*thread_argp)
		return 0;
	*thread_argp = u;
	return u->pid;
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	struct native_unwinder *u = arg;

	if (tid != u->pid)
		return false;
	*thread_argp = u;
	return true;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result,
			   void *arg)
{
	struct native_unwinder *u = arg;
	const struct gt_native *n = u->cur;
	uint64_t base, len, off;

	if (!n)
		return false;
	base = n->regs[REG_SP];
	len = n->stack_len < GT_NATIVE_STACK ? n->stack_len : GT_NATIVE_STACK;
	off = addr - base; /* wraps to a huge value when addr < base */
	if (addr >= base && off < len && len - off >= sizeof(*result)) {
		memcpy(result, n->stack + off, sizeof(*result));
		return true;
	}
	u->out_of_copy = true;
	return false;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct native_unwinder *u = arg;
	Dwarf_Word regs[GT_NATIVE_NREGS];
	int i;

	if (!u || !u->cur)
		return false;
	for (i = 0; i < GT_NATIVE_NREGS; i++)
		regs[i] = u->cur->regs[i];
	if (!dwfl_thread_state_registers(thread, 0, GT_NATIVE_NREGS, regs))
		return false;
	dwfl_thread_state_register_pc(thread, regs[REG_PC]);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = cb_next_thread,
	.get_thread = cb_get_thread,
	.memory_read = cb_memory_read,
	.set_initial_registers = cb_set_initial_registers,
};

/* ---- sessions ---- */

static int preload_elf(Dwfl_Module *mod, void **userdata, const char *name,
		       Dwarf_Addr start, void *arg)
{
	Dwarf_Addr bias;

	/* open the file now: a process that dies later is still named, and
	 * the vDSO can only be read while it lives */
	dwfl_module_getelf(mod, &bias);
	return DWARF_CB_OK;
}

/* A session with @pid's current modules, attached to @u. NULL with errno
 * and a one-line reason in @err. */
static Dwfl *session_open(struct native_unwinder *u, char *err, size_t errlen)
{
	Dwfl *d = dwfl_begin(&proc_callbacks);
	int r;

	if (!d) {
		snprintf(err, errlen, "libdwfl: %s", dwfl_errmsg(-1));
		errno = ENOMEM;
		return NULL;
	}
	dwfl_report_begin(d);
	r = dwfl_linux_proc_report(d, u->pid);
	if (dwfl_report_end(d, NULL, NULL) != 0 && r == 0)
		r = -1;
	if (r != 0) {
		if (r > 0)
			snprintf(err, errlen, "cannot read /proc/%d/maps: %s%s",
				 (int)u->pid, strerror(r),
				 r == EACCES || r == EPERM ? " (run as root)" : "");
		else
			snprintf(err, errlen, "libdwfl cannot list the modules of %d: %s",
				 (int)u->pid, dwfl_errmsg(-1));
		dwfl_end(d);
		errno = r == ENOENT ? ESRCH : r > 0 ? r : EIO;
		return NULL;
	}
	/* attached first: libdwfl reads deleted files from /proc/PID/mem
	 * only once it knows the PID (dwfl_pid) */
	opening_pid = u->pid;
	if (!dwfl_attach_state(d, NULL, u->pid, &thread_callbacks, u)) {
		snprintf(err, errlen, "process %d: no usable module (exited, or a kernel thread?): %s",
			 (int)u->pid, dwfl_errmsg(-1));
		opening_pid = 0;
		dwfl_end(d);
		errno = ESRCH;
		return NULL;
	}
	dwfl_getmodules(d, preload_elf, NULL, 0);
	opening_pid = 0;
	return d;
}

/*
 * Re-read the module list (libraries loaded since), at most once per
 * NATIVE_REFRESH_MIN_MS, only while the PID is still the same process.
 * Returns true when a new list is in use.
 */
static bool maybe_refresh(struct native_unwinder *u)
{
	uint64_t t = now_ms();
	char err[256];
	Dwfl *d;

	if (u->gone || (u->last_refresh_ms && t - u->last_refresh_ms < NATIVE_REFRESH_MIN_MS))
		return false;
	u->last_refresh_ms = t ? t : 1;
	if (proc_start_time(u->pid) != u->start_time) {
		u->gone = true;
		return false;
	}
	d = session_open(u, err, sizeof(err));
	if (!d) {
		u->gone = errno == ESRCH;
		return false;
	}
	if (proc_start_time(u->pid) != u->start_time) { /* reused meanwhile */
		dwfl_end(d);
		u->gone = true;
		return false;
	}
	dwfl_end(u->dwfl);
	u->dwfl = d;
	u->gen++; /* names may have changed: empty the cache */
	u->st.refreshes++;
	return true;
}

struct native_unwinder *native_unwind__new(pid_t pid, char *err, size_t errlen)
{
	struct native_unwinder *u;
	char dummy[1];

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (pid <= 0) {
		snprintf(err, errlen, "native unwinder: bad pid %d", (int)pid);
		errno = EINVAL;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (u)
		u->cache = calloc(CACHE_SLOTS, sizeof(*u->cache));
	if (!u || !u->cache) {
		free(u);
		snprintf(err, errlen, "native unwinder: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	u->pid = pid;
	u->gen = 1;
	u->start_time = proc_start_time(pid);
	if (!u->start_time) {
		snprintf(err, errlen, "process %d not found (exited?)", (int)pid);
		native_unwind__free(u);
		errno = ESRCH;
		return NULL;
	}
	u->dwfl = session_open(u, err, errlen);
	if (!u->dwfl) {
		int e = errno;

		native_unwind__free(u);
		errno = e;
		return NULL;
	}
	return u;
}

void native_unwind__free(struct native_unwinder *u)
{
	if (!u)
		return;
	if (u->dwfl)
		dwfl_end(u->dwfl);
	free(u->cache);
	free(u);
}

/* ---- unwinding ---- */

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
	struct native_unwinder *u = arg;
	bool activation = false;
	Dwarf_Addr pc;
	Dwarf_Word sp;

	if (!dwfl_frame_pc(frame, &pc, &activation)) {
		u->status = -EIO;
		return DWARF_CB_ABORT;
	}
	if (u->n > 0 && pc == 0) { /* a null return address ends the stack */
		u->status = 0;
		return DWARF_CB_ABORT;
	}
	if (u->n >= u->max) {
		u->status = 1;
		return DWARF_CB_ABORT;
	}
	/* callers' frames lie above: a stack pointer that does not grow is
	 * junk (a signal frame may be on another stack: not checked) */
	if (dwfl_frame_reg(frame, REG_SP, &sp) == 0) {
		if (u->n > 0 && !activation && sp <= u->last_sp) {
			u->status = -EIO;
			return DWARF_CB_ABORT;
		}
		u->last_sp = sp;
	}
	u->pcs[u->n] = (u->n > 0 && activation) ? pc + 1 : pc;
	u->n++;
	if (!dwfl_addrmodule(u->dwfl, activation ? pc : pc - 1)) {
		u->want_refresh = true;
		u->status = -ENOENT;
		return DWARF_CB_ABORT;
	}
	return DWARF_CB_OK;
}

static int walk(struct native_unwinder *u)
{
	int r;

	u->n = 0;
	u->last_sp = 0;
	u->status = 0;
	u->out_of_copy = false;
	u->want_refresh = false;
	r = dwfl_getthread_frames(u->dwfl, u->pid, frame_cb, u);
	/* libdwfl 0.188 takes a return address it cannot read for the end
	 * of the stack (frame_unwind.c, handle_cfi): only a walk that read
	 * nothing outside the copy really reached the outermost frame
	 * (return address undefined in the CFI, as in _start and clone3) */
	if (r == 0)
		return u->out_of_copy ? -EFAULT : 0;
	if (r == DWARF_CB_ABORT)
		return u->status;
	return u->out_of_copy ? -EFAULT : -EIO;
}

int native_unwind__stack(struct native_unwinder *u, const struct gt_native *n,
			 uint64_t *pcs, size_t max, size_t *npcs)
{
	int r;

	if (npcs)
		*npcs = 0;
	if (!u || !n || !pcs || !npcs)
		return -EINVAL;
	if (n->stack_len == 0)
		return -ENODATA;
	if (n->regs[REG_PC] == 0)
		return -EINVAL;
	if (max == 0)
		return 1;
	u->cur = n;
	u->pcs = pcs;
	u->max = max;
	r = walk(u);
	if (r == -ENOENT && u->want_refresh && maybe_refresh(u))
		r = walk(u); /* once: libraries loaded since the last list */
	*npcs = u->n;
	u->cur = NULL;
	u->pcs = NULL;
	return r;
}

/* ---- symbols ---- */

static size_t cache_home(uint64_t pc, bool is_ret)
{
	uint64_t h = (pc ^ (uint64_t)is_ret) * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 40) & (CACHE_SLOTS - 1);
}

static struct cache_ent *cache_find(struct native_unwinder *u, uint64_t pc,
				    bool is_ret)
{
	size_t h = cache_home(pc, is_ret), i;

	for (i = 0; i < CACHE_PROBE; i++) {
		struct cache_ent *e = &u->cache[(h + i) & (CACHE_SLOTS - 1)];

		if (e->gen != u->gen)
			return NULL;
		if (e->pc == pc && e->is_ret == is_ret)
			return e;
	}
	return NULL;
}

static void cache_put(struct native_unwinder *u, uint64_t pc, bool is_ret,
		      const struct native_frame *f)
{
	size_t h = cache_home(pc, is_ret), i;
	struct cache_ent *e = &u->cache[h]; /* evicted when the probe is full */

	for (i = 0; i < CACHE_PROBE; i++) {
		struct cache_ent *c = &u->cache[(h + i) & (CACHE_SLOTS - 1)];

		if (c->gen != u->gen) {
			e = c;
			break;
		}
	}
	e->pc = pc;
	e->is_ret = is_ret;
	e->gen = u->gen;
	e->f = *f;
}

static void module_base_name(Dwfl_Module *m, char *out, size_t len)
{
	const char *name = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL,
					    NULL, NULL);
	const char *slash;

	if (!name || !*name) {
		snprintf(out, len, "%s", NATIVE_UNKNOWN);
		return;
	}
	if (strncmp(name, "[vdso", 5) == 0) {
		snprintf(out, len, "[vdso]");
		return;
	}
	slash = strrchr(name, '/');
	snprintf(out, len, "%s", slash ? slash + 1 : name);
}

/* Name @pc (symbol looked up at @lookup) from the current module list. */
static int resolve(struct native_unwinder *u, uint64_t pc, uint64_t lookup,
		   struct native_frame *out)
{
	Dwfl_Module *m = dwfl_addrmodule(u->dwfl, lookup);
	GElf_Off off = 0;
	GElf_Sym sym;
	Dwarf_Addr bias = 0;
	const char *name;

	snprintf(out->function, sizeof(out->function), "%s", NATIVE_UNKNOWN);
	snprintf(out->module, sizeof(out->module), "%s", NATIVE_UNKNOWN);
	out->offset = pc;
	out->known = false;
	if (!m)
		return -ENOENT;
	module_base_name(m, out->module, sizeof(out->module));
	name = dwfl_module_addrinfo(m, lookup, &off, &sym, NULL, NULL, NULL);
	if (name && *name && off <= lookup) {
		/* without a symbol version (.dynsym: "memcpy@@GLIBC_2.14") */
		snprintf(out->function, sizeof(out->function), "%.*s",
			 (int)strcspn(name, "@"), name);
		out->offset = pc - (lookup - off);
		out->known = true;
		return 0;
	}
	if (dwfl_module_getelf(m, &bias))
		out->offset = pc - bias;
	return -ENOENT;
}

int native_unwind__symbolize(struct native_unwinder *u, uint64_t pc,
			     bool is_return_address, struct native_frame *out)
{
	uint64_t lookup;
	struct cache_ent *e;
	int r;

	if (!out)
		return -EINVAL;
	if (!u) {
		memset(out, 0, sizeof(*out));
		snprintf(out->function, sizeof(out->function), "%s", NATIVE_UNKNOWN);
		snprintf(out->module, sizeof(out->module), "%s", NATIVE_UNKNOWN);
		return -EINVAL;
	}
	is_return_address = is_return_address && pc > 0;
	e = cache_find(u, pc, is_return_address);
	if (e) {
		u->st.cache_hits++;
		*out = e->f;
		return out->known ? 0 : -ENOENT;
	}
	u->st.cache_misses++;
	lookup = is_return_address ? pc - 1 : pc;
	r = resolve(u, pc, lookup, out);
	if (r == -ENOENT && !dwfl_addrmodule(u->dwfl, lookup) && maybe_refresh(u))
		r = resolve(u, pc, lookup, out);
	cache_put(u, pc, is_return_address, out);
	return r;
}

void native_unwind__stats(const struct native_unwinder *u,
			  struct native_unwind_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (u)
		*out = u->st;
}
