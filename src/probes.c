// SPDX-License-Identifier: MIT
/* probes.c - load the BPF object and attach it to the target's GIL sites. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "probes.h"
#include "gil_sites.h"
#include "model.h"
#include "placement.h"
#include "elf_image.h"
#include "py_state.h"
#include "target.h"
#include "giltrace.skel.h"

struct probes {
	struct giltrace_bpf *skel;
	struct bpf_link **links;
	size_t nlinks;
	bool verbose;
};

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool verbose_libbpf;

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose_libbpf)
		return 0;
	if (level == LIBBPF_WARN && !verbose_libbpf)
		return 0; /* failures are reported by giltrace in one line */
	return vfprintf(stderr, fmt, args);
}

static bool has_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {};
	const int need[] = { 38 /* CAP_PERFMON */, 39 /* CAP_BPF */ };

	if (geteuid() == 0)
		return true;
	if (syscall(SYS_capget, &hdr, data))
		return false;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!(data[need[i] / 32].effective & (1u << (need[i] % 32))))
			return false;
	return true;
}

int probes__check_system(char *err, size_t errlen)
{
	struct stat st;

	if (!has_caps()) {
		snprintf(err, errlen, "giltrace: needs root, or CAP_BPF and "
			 "CAP_PERFMON, to load BPF programs: run it with sudo");
		return -EPERM;
	}
	if (stat("/sys/kernel/btf/vmlinux", &st) || st.st_size == 0) {
		snprintf(err, errlen, "giltrace: this kernel exposes no BTF "
			 "(/sys/kernel/btf/vmlinux is missing): giltrace needs a "
			 "kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	if (stat("/sys/bus/event_source/devices/uprobe", &st)) {
		snprintf(err, errlen, "giltrace: this kernel has no uprobes "
			 "(/sys/bus/event_source/devices/uprobe is missing): it "
			 "needs CONFIG_UPROBE_EVENTS=y");
		return -ENOTSUP;
	}
	return 0;
}

struct probes *probes__load(const struct probes_opts *o, char *err,
			    size_t errlen)
{
	struct probes *p;
	int e;

	verbose_libbpf = o->verbose;
	libbpf_set_print(libbpf_print);
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "giltrace: out of memory");
		return NULL;
	}
	p->verbose = o->verbose;
	p->skel = giltrace_bpf__open();
	if (!p->skel) {
		e = -errno;
		snprintf(err, errlen, "giltrace: cannot open the BPF object: %s",
			 strerror(-e));
		goto fail;
	}
	p->skel->rodata->targ_tgid = (uint32_t)o->tgid;
	p->skel->rodata->emit_cycles = o->emit_cycles;
	if (o->stack_layout) {
		p->skel->rodata->capture_stacks = true;
		p->skel->rodata->capture_native = o->native;
		memcpy((void *)&p->skel->rodata->pyl, o->stack_layout,
		       sizeof(*o->stack_layout));
	} else {
		/* Nothing to size: keep the unused maps tiny. */
		bpf_map__set_max_entries(p->skel->maps.stacks_seen, 1);
		bpf_map__set_max_entries(p->skel->maps.stack_weights, 1);
	}
	p->skel->rodata->contention = o->contention;
	bpf_program__set_autoload(p->skel->progs.sample_holder,
				  o->stack_layout && o->sample_hz && !o->contention);
	/* Load only what the mode attaches: the verifier's time is attach time. */
	bpf_program__set_autoload(p->skel->progs.take_enter, !o->contention);
	bpf_program__set_autoload(p->skel->progs.wait_wake, !o->contention);
	bpf_program__set_autoload(p->skel->progs.gil_held, !o->contention);
	bpf_program__set_autoload(p->skel->progs.drop_enter, !o->contention);
	bpf_program__set_autoload(p->skel->progs.c_block, o->contention);
	bpf_program__set_autoload(p->skel->progs.c_wake, o->contention);
	bpf_program__set_autoload(p->skel->progs.c_sample, o->contention && o->sample_hz);
	if (!o->contention)
		bpf_map__set_max_entries(p->skel->maps.blocked_by, 1);
	bpf_map__set_max_entries(p->skel->maps.threads,
				 o->max_threads ? o->max_threads : 16384);
	if (o->ringbuf_bytes)
		bpf_map__set_max_entries(p->skel->maps.events, o->ringbuf_bytes);
	e = giltrace_bpf__load(p->skel);
	if (e) {
		snprintf(err, errlen, "giltrace: cannot load the BPF programs: "
			 "%s (run with -v for the verifier's log)", strerror(-e));
		goto fail;
	}
	return p;
fail:
	probes__destroy(p);
	return NULL;
}

static int add_link(struct probes *p, struct bpf_link *l)
{
	struct bpf_link **v = realloc(p->links, (p->nlinks + 1) * sizeof(*v));

	if (!v) {
		bpf_link__destroy(l);
		return -ENOMEM;
	}
	p->links = v;
	p->links[p->nlinks++] = l;
	return 0;
}

/*
 * Which argument of this take_gil copy is the PyThreadState* (1-based):
 * 3.8's take_gil(struct _ceval_runtime_state *, PyThreadState *) takes it
 * second, its take_gil.constprop.0 clone first; 3.6-3.7 and 3.9-3.13 take
 * it first (Python/ceval_gil.h 3.6-3.11, Python/ceval_gil.c 3.12-3.13).
 */
static uint64_t tstate_arg(const struct py_target *t, const struct gil_site *s)
{
	if (s->func != GIL_TAKE || s->inlined)
		return 0;
	if (t->major == 3 && t->minor == 8 && !strchr(s->symbol, '.'))
		return 2;
	return 1;
}

const char *probe_prog__role(enum probe_prog p)
{
	static const char *const roles[] = {
		[PROG_TAKE_ENTER] = "wait_begin", [PROG_WAKE] = "wake",
		[PROG_HELD_RET] = "held", [PROG_DROP] = "hold_end",
		[PROG_BLOCK] = "block", [PROG_CWAKE] = "wake",
	};
	return p <= PROG_CWAKE ? roles[p] : "?";
}

static int plan_add(struct probe_plan *plan, const struct py_target *t,
		    const struct gil_site *s, enum probe_prog prog,
		    uint64_t vaddr, uint64_t offset)
{
	struct probe_spec *v = realloc(plan->v, (plan->n + 1) * sizeof(*v));
	struct probe_spec *ps;

	if (!v)
		return -ENOMEM;
	plan->v = v;
	ps = &v[plan->n++];
	memset(ps, 0, sizeof(*ps));
	ps->prog = prog;
	ps->func = s->func;
	ps->inlined = s->inlined;
	snprintf(ps->symbol, sizeof(ps->symbol), "%s", s->symbol);
	snprintf(ps->caller, sizeof(ps->caller), "%s", s->caller);
	ps->site_vaddr = s->vaddr;
	ps->vaddr = vaddr;
	ps->offset = offset;
	ps->cookie = prog == PROG_TAKE_ENTER ? tstate_arg(t, s) : 0;
	return 0;
}

/*
 * A drop_gil site: probe it, or the first instruction of the same basic
 * block that the kernel emulates (Debian's inlined sites start with a
 * rip-relative mov that would be single-stepped at ~10x the cost).
 */
static int plan_drop(struct probe_plan *plan, const struct py_target *t,
		     const struct gil_site *s, bool placement)
{
	uint64_t lo = s->vaddr, hi = s->vaddr + s->size, v, off = s->offset;

	if (placement && (s->inlined || !s->size))
		if (placement__function_at(t->img, s->vaddr, &lo, &hi, NULL, 0))
			lo = hi = 0;
	if (placement && hi > lo &&
	    !placement__equivalent(t->img, s->vaddr, lo, hi, &v, NULL, 0) &&
	    v != s->vaddr && !elf_image__vaddr_to_offset(t->img, v, &off))
		return plan_add(plan, t, s, PROG_DROP, v, off);
	return plan_add(plan, t, s, PROG_DROP, s->vaddr, s->offset);
}

#define MAX_WAIT_SITES 8

/*
 * A take_gil copy: its entry starts a wait. The acquisition is timed at
 * the wait loop's wake points when they can be found (two probe hits per
 * cycle that does not block), else by a uretprobe.
 */
static int plan_take(struct probe_plan *plan, const struct py_target *t,
		     const struct gil_site *s, bool placement)
{
	struct wait_site w[MAX_WAIT_SITES];
	size_t n = 0, i;
	bool wake = placement && !s->inlined && s->size;
	int e;

	e = plan_add(plan, t, s, PROG_TAKE_ENTER, s->vaddr, s->offset);
	if (e || s->inlined)
		return e;
	if (wake && (placement__take_wait(t->img, s->vaddr, s->vaddr + s->size,
					  w, MAX_WAIT_SITES, &n) || n == 0))
		wake = false;
	for (i = 0; wake && i < n; i++)
		if (w[i].ret_is_target)
			wake = false; /* the point is reached on other paths too */
	if (!wake)
		return plan_add(plan, t, s, PROG_HELD_RET, s->vaddr, s->offset);
	for (i = 0; i < n && !e; i++)
		e = plan_add(plan, t, s, PROG_WAKE, w[i].wake_vaddr,
			     w[i].wake_offset);
	return e;
}

/*
 * --mode contention: a take_gil copy's blocking path only, the call to the
 * timed wait (the thread found the GIL held) and the wake point after it.
 */
static int plan_contention(struct probe_plan *plan, const struct py_target *t,
			   const struct gil_site *s)
{
	struct wait_site w[MAX_WAIT_SITES];
	size_t n = 0, i;
	int e = 0;

	if (s->inlined || !s->size ||
	    placement__take_wait(t->img, s->vaddr, s->vaddr + s->size, w,
				 MAX_WAIT_SITES, &n))
		return 0;
	for (i = 0; i < n; i++)
		if (w[i].ret_is_target)
			return 0;
	for (i = 0; i < n && !e; i++) {
		e = plan_add(plan, t, s, PROG_BLOCK, w[i].call_vaddr,
			     w[i].call_offset);
		if (!e)
			e = plan_add(plan, t, s, PROG_CWAKE, w[i].wake_vaddr,
				     w[i].wake_offset);
	}
	return e;
}

int probes__plan(const struct py_target *t, const struct gil_sites *s,
		 enum plan_mode mode, struct probe_plan *plan)
{
	bool placement = mode != PLAN_URETPROBE;
	int e = 0;

	memset(plan, 0, sizeof(*plan));
	for (size_t i = 0; i < s->n && !e; i++) {
		if (mode == PLAN_CONTENTION)
			e = s->v[i].func == GIL_TAKE ?
			    plan_contention(plan, t, &s->v[i]) : 0;
		else
			e = s->v[i].func == GIL_TAKE ?
			    plan_take(plan, t, &s->v[i], placement) :
			    plan_drop(plan, t, &s->v[i], placement);
	}
	if (!e && mode == PLAN_CONTENTION && !plan->n)
		e = -ENOENT;
	if (e)
		probe_plan__free(plan);
	return e;
}

void probe_plan__free(struct probe_plan *plan)
{
	free(plan->v);
	plan->v = NULL;
	plan->n = 0;
}

static struct bpf_program *prog_of(struct probes *p, enum probe_prog prog)
{
	switch (prog) {
	case PROG_TAKE_ENTER: return p->skel->progs.take_enter;
	case PROG_WAKE: return p->skel->progs.wait_wake;
	case PROG_HELD_RET: return p->skel->progs.gil_held;
	case PROG_BLOCK: return p->skel->progs.c_block;
	case PROG_CWAKE: return p->skel->progs.c_wake;
	default: return p->skel->progs.drop_enter;
	}
}

static int attach_one(struct probes *p, const struct py_target *t,
		      const struct probe_spec *ps, struct model *m, char *err,
		      size_t errlen)
{
	bool ret = ps->prog == PROG_HELD_RET;
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = ret,
		    .bpf_cookie = ps->cookie);
	struct model_probe mp = {};
	struct bpf_link *l;
	size_t ilen;
	int e;

	l = bpf_program__attach_uprobe_opts(prog_of(p, ps->prog), t->pid,
					    t->interp_open, (size_t)ps->offset,
					    &uo);
	if (!l) {
		e = -errno;
		if (e == -ESRCH || (e == -ENOENT && kill(t->pid, 0)))
			snprintf(err, errlen, "giltrace: PID %d exited while "
				 "giltrace was attaching", t->pid);
		else
			snprintf(err, errlen, "giltrace: cannot attach a %s to "
				 "%s at %s+0x%llx: %s", ret ? "uretprobe" : "uprobe",
				 ps->symbol, t->interp, (unsigned long long)ps->offset,
				 strerror(-e));
		return e;
	}
	e = add_link(p, l);
	if (e)
		return e;
	snprintf(mp.function, sizeof(mp.function), "%s", gil_func__name(ps->func));
	snprintf(mp.symbol, sizeof(mp.symbol), "%s", ps->symbol);
	snprintf(mp.file, sizeof(mp.file), "%s", t->interp);
	mp.offset = ps->offset;
	mp.address = ps->vaddr;
	mp.site_address = ps->site_vaddr;
	snprintf(mp.kind, sizeof(mp.kind), "%s", ret ? "uretprobe" : "uprobe");
	snprintf(mp.role, sizeof(mp.role), "%s", probe_prog__role(ps->prog));
	mp.inlined = ps->inlined;
	snprintf(mp.caller, sizeof(mp.caller), "%s", ps->caller);
	if (!ret) {
		uint8_t code[16];
		enum placement_kind k;

		placement__insn_text(t->img, ps->vaddr, mp.insn, sizeof(mp.insn),
				     &ilen);
		if (!elf_image__read(t->img, ps->vaddr, code, sizeof(code)) &&
		    !placement__classify(code, sizeof(code), ps->vaddr, &k, &ilen,
					 NULL, 0))
			mp.emulated = k == PLACEMENT_EMULATED;
	}
	return model__add_probe(m, &mp);
}

int probes__attach(struct probes *p, const struct py_target *t,
		   const struct probe_plan *plan, struct model *m, char *err,
		   size_t errlen)
{
	struct bpf_link *l;
	int e;

	/* The exit hook first: no thread may leave unseen once the uprobes
	 * are live. */
	l = bpf_program__attach(p->skel->progs.thread_exit);
	if (!l) {
		e = -errno;
		snprintf(err, errlen, "giltrace: cannot attach to the "
			 "sched_process_exit tracepoint: %s", strerror(-e));
		return e;
	}
	if ((e = add_link(p, l)))
		return e;
	for (size_t i = 0; i < plan->n; i++) {
		e = attach_one(p, t, &plan->v[i], m, err, errlen);
		if (e)
			return e;
	}
	return 0;
}

int probes__attach_sampler(struct probes *p, uint32_t hz, char *err,
			   size_t errlen)
{
	struct bpf_program *prog = p->skel->rodata->contention ?
				   p->skel->progs.c_sample :
				   p->skel->progs.sample_holder;
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = hz,
	};
	int ncpus = libbpf_num_possible_cpus(), n = 0, e = 0;

	if (ncpus < 0) {
		snprintf(err, errlen, "giltrace: cannot count the CPUs: %s",
			 strerror(-ncpus));
		return ncpus;
	}
	for (int cpu = 0; cpu < ncpus; cpu++) {
		struct bpf_link *l;
		int fd;

		fd = (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1,
				  PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV) /* possible but not online */
				continue;
			e = -errno;
			break;
		}
		l = bpf_program__attach_perf_event(prog, fd);
		if (!l) {
			e = -errno;
			close(fd);
			break;
		}
		/* The link owns the event's fd now. */
		if ((e = add_link(p, l)))
			break;
		n++;
	}
	if (e) {
		snprintf(err, errlen, "giltrace: cannot sample the GIL holder "
			 "(perf_event_open: %s)", strerror(-e));
		return e;
	}
	return n;
}

void probes__set_gil(struct probes *p, const struct gil_ref *r)
{
	struct gt_gil_ref *g = &p->skel->bss->gil_ref;

	g->base = r->base;
	g->nderef = r->nderef;
	g->off[0] = r->off[0];
	g->off[1] = r->off[1];
	g->locked_off = r->locked_off;
	g->holder_off = r->holder_off;
	g->ts_native_tid_off = r->ts_native_tid_off;
	g->ts_thread_id_off = r->ts_thread_id_off;
	g->pthread_tid_off = r->pthread_tid_off;
}

uint64_t probes__start(struct probes *p)
{
	uint64_t t0 = now_ns();

	p->skel->bss->t0_ns = t0;
	__atomic_store_n(&p->skel->bss->ready, 1, __ATOMIC_SEQ_CST);
	return t0;
}

uint64_t probes__stop(struct probes *p)
{
	uint64_t t = now_ns();

	__atomic_store_n(&p->skel->bss->ready, 0, __ATOMIC_SEQ_CST);
	return t;
}

struct giltrace_bpf *probes__skel(struct probes *p)
{
	return p->skel;
}

void probes__destroy(struct probes *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nlinks; i++)
		bpf_link__destroy(p->links[i]);
	free(p->links);
	giltrace_bpf__destroy(p->skel);
	free(p);
}
