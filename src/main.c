// SPDX-License-Identifier: MIT
/*
 * giltrace - exact GIL wait and hold per thread for CPython, on eBPF.
 *
 * main() only sequences the data flow:
 *   target discovery (target, launch) -> symbol resolution (gil_sites)
 *   -> probes -> collector -> model -> renderers (report_text, report_json)
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include "attach_cache.h"
#include "cli.h"
#include "collector.h"
#include "export.h"
#include "gil_sites.h"
#include "launch.h"
#include "model.h"
#include "probes.h"
#include "py_layout.h"
#include "py_state.h"
#include "report.h"
#include "target.h"
#include "timeline.h"
#include "trace_file.h"

#define ERRLEN (PATH_MAX + 512)

struct session {
	struct env env;
	bool launch;
	int fail;                /* exit status when giltrace fails */
	struct launch *L;
	bool L_done;             /* the command has exited and was reaped */
	struct py_target target;
	bool have_target;
	struct gil_sites sites;
	struct probe_plan plan;
	bool cache_hit;
	struct gt_py_frame_layout layout; /* --stacks */
	struct timeline ctl;     /* --mode contention: who blocked whom */
	bool have_ctl;
	struct gil_state gil0;   /* the GIL when tracing began */
	bool have_gil0;
	struct probes *probes;
	struct collector *coll;
	struct model model;
	struct trace_writer *writer; /* the event stream, when on */
	char trace_path[PATH_MAX];
	bool trace_tmp;              /* direct views: a temporary trace file */
	uint64_t records, write_errors;
	uint64_t t_start, t_found, t_sites, t_loaded; /* attach phases */
	uint64_t t0;
	int sfd, pidfd;
	char err[ERRLEN];
};

static void say(const struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->env.quiet)
		return;
	va_start(ap, fmt);
	fputs("giltrace: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* One line on stderr, always "giltrace: ..." (module messages may come
 * without the prefix). */
static void fail_msg(const char *msg)
{
	if (strncmp(msg, "giltrace: ", 10))
		fputs("giltrace: ", stderr);
	fprintf(stderr, "%s\n", msg);
}

/* launch__find's callback: does @pid now map an interpreter? */
struct match_ctx {
	struct session *s;
	int rc;
};

static bool match_interp(pid_t pid, void *ctx)
{
	struct match_ctx *mc = ctx;
	struct session *s = mc->s;
	int rc;

	rc = target__open(pid, &s->target, s->err, sizeof(s->err));
	if (rc == TARGET_ENOTPY || rc == TARGET_ENOPROC)
		return false;
	mc->rc = rc;
	s->have_target = rc == 0;
	return true; /* an interpreter, traceable or not (rc says) */
}

static int find_target(struct session *s)
{
	struct match_ctx mc = { s, 0 };
	pid_t pid;
	int rc;

	if (!s->launch) {
		rc = target__open(s->env.pid, &s->target, s->err, sizeof(s->err));
		if (rc)
			return rc;
		s->have_target = true;
		return 0;
	}
	s->L = launch__start(s->env.argv, s->err, sizeof(s->err));
	if (!s->L) {
		s->fail = errno == ENOENT ? 127 : 126;
		return -errno;
	}
	pid = launch__find(s->L, match_interp, &mc);
	if (pid < 0) {
		if (!s->err[0])
			snprintf(s->err, sizeof(s->err), "giltrace: following "
				 "the command failed: %s", strerror((int)-pid));
		return (int)pid;
	}
	if (pid == 0) {
		/* The command ran to its end without a CPython interpreter:
		 * say so, and exit with its status, as env(1) would. */
		snprintf(s->err, sizeof(s->err), "giltrace: '%s' ran no CPython "
			 "interpreter: nothing was traced", s->env.argv[0]);
		s->fail = launch__wait(s->L, true);
		s->L_done = true;
		return -ENOENT;
	}
	return mc.rc;
}

/*
 * The GIL's own state, when the interpreter has created it: a launched
 * interpreter is stopped before Py_Initialize, and 3.6 creates its GIL only
 * when a second thread starts.
 */
static bool read_gil(struct session *s, struct gil_state *st, char *err,
		     size_t errlen)
{
	if (py_state__read_gil(&s->target, st, err, errlen))
		return false;
	if (st->locked < 0 || st->interval_us == 0) {
		snprintf(err, errlen, "giltrace: the GIL is not created yet");
		return false;
	}
	if (!s->model.switch_interval_ns)
		s->model.switch_interval_ns = st->interval_us * 1000ULL;
	return true;
}

/* Views that show time need the event stream, recorded to a file. */
static bool wants_stream(const struct env *env)
{
	return env->cmd == CMD_RECORD || env->timeline || env->perfetto ||
	       env->html;
}

static int open_writer(struct session *s)
{
	if (s->env.cmd == CMD_RECORD) {
		snprintf(s->trace_path, sizeof(s->trace_path), "%s",
			 s->env.trace_file);
	} else {
		const char *dir = getenv("TMPDIR");
		int fd;

		snprintf(s->trace_path, sizeof(s->trace_path),
			 "%s/giltrace-XXXXXX", dir && *dir ? dir : "/tmp");
		fd = mkstemp(s->trace_path);
		if (fd < 0) {
			snprintf(s->err, sizeof(s->err), "giltrace: cannot create "
				 "a temporary trace file in %s: %s (set TMPDIR)",
				 dir && *dir ? dir : "/tmp", strerror(errno));
			return -errno;
		}
		close(fd);
		s->trace_tmp = true;
	}
	s->writer = trace_writer__open(s->trace_path, s->err, sizeof(s->err));
	return s->writer ? 0 : -EIO;
}

static int setup_probes(struct session *s)
{
	struct probes_opts po = {
		.tgid = s->target.pid,
		.max_threads = s->env.max_threads,
		.verbose = s->env.verbose,
		.emit_cycles = wants_stream(&s->env),
		.ringbuf_bytes = s->env.ringbuf_bytes,
		.stack_layout = s->env.stacks ? &s->layout : NULL,
		.sample_hz = s->env.sample_hz,
		.contention = s->env.contention,
		.native = s->env.native,
	};
	char gerr[ERRLEN];
	struct gil_ref ref;
	struct gil_layout lay;
	bool have_lay = false;
	enum plan_mode pm = s->env.contention ? PLAN_CONTENTION :
			    s->env.uretprobe ? PLAN_URETPROBE : PLAN_PLACED;
	int rc;

	s->t_found = now_ns();
	if (attach_cache__load(&s->target, pm, &s->plan, &lay, &have_lay) == 0) {
		s->cache_hit = true;
		if (have_lay)
			py_state__preset_layout(&s->target, &lay);
	} else {
		rc = gil_sites__find(s->target.img, &s->sites, s->err,
				     sizeof(s->err));
		if (rc)
			return rc;
		rc = probes__plan(&s->target, &s->sites, pm, &s->plan);
		if (rc == -ENOENT && pm == PLAN_CONTENTION) {
			snprintf(s->err, sizeof(s->err), "giltrace: --mode "
				 "contention needs take_gil's wait loop, which "
				 "was not found in %s: use --mode exact (the "
				 "default)", s->target.interp);
			return rc;
		}
		if (rc) {
			snprintf(s->err, sizeof(s->err), "giltrace: cannot plan "
				 "the probes: %s", strerror(-rc));
			return rc;
		}
	}
	if (s->env.stacks) {
		const char *src = "the attach cache";

		if (attach_cache__load_frames(&s->target, &s->layout)) {
			rc = py_layout__get(&s->target, &s->layout, &src, s->err,
					    sizeof(s->err));
			if (rc)
				return rc;
			attach_cache__store_frames(&s->target, &s->layout);
		}
		if (s->env.verbose)
			fprintf(stderr, "giltrace: Python frame layout from %s\n", src);
	}
	s->t_sites = now_ns();
	s->have_gil0 = read_gil(s, &s->gil0, gerr, sizeof(gerr));
	if (!s->have_gil0 && s->env.verbose)
		fprintf(stderr, "%s\n", gerr);
	if (!s->cache_hit) {
		have_lay = py_state__cached_layout(&s->target, &lay, gerr,
						   sizeof(gerr)) == 0;
		attach_cache__store(&s->target, pm, &s->plan,
				    have_lay ? &lay : NULL);
	}

	s->probes = probes__load(&po, s->err, sizeof(s->err));
	if (!s->probes)
		return -EINVAL;
	s->t_loaded = now_ns();
	if (py_state__gil_ref(&s->target, &ref, gerr, sizeof(gerr)) == 0)
		probes__set_gil(s->probes, &ref);
	else if (s->env.verbose)
		fprintf(stderr, "%s\n", gerr);
	rc = probes__attach(s->probes, &s->target, &s->plan, &s->model,
			    s->err, sizeof(s->err));
	if (rc)
		return rc;
	s->coll = collector__new(s->probes, &s->model);
	if (!s->coll) {
		snprintf(s->err, sizeof(s->err), "giltrace: out of memory");
		return -ENOMEM;
	}
	if (s->env.stacks) {
		rc = collector__enable_stacks(s->coll, &s->target, &s->layout);
		if (rc) {
			snprintf(s->err, sizeof(s->err), "giltrace: cannot name "
				 "Python frames in PID %d: %s", s->target.pid,
				 strerror(-rc));
			return rc;
		}
		if (s->env.native) {
			rc = collector__enable_native(s->coll, s->target.pid,
						      s->err, sizeof(s->err));
			if (rc)
				return rc;
		}
		if (s->env.sample_hz &&
		    probes__attach_sampler(s->probes, s->env.sample_hz, gerr,
					   sizeof(gerr)) < 0)
			say(s, "%s: long holds are attributed to the stack where "
			    "they end", gerr + (strncmp(gerr, "giltrace: ", 10) ? 0 : 10));
	}
	if (s->env.contention) {
		snprintf(s->model.mode, sizeof(s->model.mode), "contention");
		if (!s->env.sample_hz) {
			say(s, "--sample-hz 0: hold times are not estimated");
		} else if (probes__attach_sampler(s->probes, s->env.sample_hz,
						  gerr, sizeof(gerr)) < 0) {
			say(s, "%s: hold times are not estimated",
			    gerr + (strncmp(gerr, "giltrace: ", 10) ? 0 : 10));
			s->env.sample_hz = 0;
		}
		s->model.sample_hz = s->env.sample_hz;
	}
	if (wants_stream(&s->env)) {
		rc = open_writer(s);
		if (rc)
			return rc;
		collector__set_writer(s->coll, s->writer);
	}
	/* Re-read the GIL right before going live: this is the state the
	 * seeding below relies on. */
	if (s->have_gil0)
		s->have_gil0 = read_gil(s, &s->gil0, gerr, sizeof(gerr));
	s->t0 = probes__start(s->probes);
	s->model.t0_ns = s->t0;
	return 0;
}

static void fill_model_target(struct session *s)
{
	struct model *m = &s->model;

	m->pid = s->target.pid;
	snprintf(m->exe, sizeof(m->exe), "%s", s->target.exe);
	snprintf(m->library, sizeof(m->library), "%s",
		 s->target.is_library ? s->target.interp : "");
	snprintf(m->python_version, sizeof(m->python_version), "%s",
		 s->target.version);
	m->launch_mode = s->launch;
}

static void print_probes(const struct session *s)
{
	for (size_t i = 0; i < s->model.nprobes; i++) {
		const struct model_probe *p = &s->model.probes[i];

		fprintf(stderr, "giltrace: probe %-9s %-10s %s%s%s at %s+0x%llx "
			"(address 0x%llx)\n", p->kind, p->role, p->symbol,
			p->inlined ? " inlined into " : "",
			p->inlined ? p->caller : "", p->file,
			(unsigned long long)p->offset,
			(unsigned long long)p->address);
	}
}

static bool use_color(const struct env *env, FILE *f)
{
	if (env->color >= 0)
		return env->color;
	return isatty(fileno(f)) && getenv("NO_COLOR") == NULL;
}

static void report_opts_init(const struct session *s, struct report_opts *o,
			     FILE *f)
{
	memset(o, 0, sizeof(*o));
	o->tids = s->env.tids;
	o->ntids = s->env.ntids;
	o->top = s->env.top;
	o->hist = s->env.hist;
	o->color = use_color(&s->env, f);
}

static FILE *report_stream(const struct session *s)
{
	return s->launch ? stderr : stdout;
}

/* A report of the interval since @prev; @prev becomes the current state. */
static void interval_report(struct session *s, struct model *prev)
{
	struct model cur, diff;
	struct report_opts o;
	FILE *f = report_stream(s);

	collector__snapshot(s->coll);
	if (model__copy(&s->model, &cur))
		return;
	model__close(&cur, now_ns());
	if (model__diff(&cur, prev, &diff) == 0) {
		if (s->env.contention)
			model__estimate_holds(&diff, s->env.sample_hz);
		report_opts_init(s, &o, f);
		o.interval = true;
		report_text(f, &diff, &o);
		fflush(f);
		model__free(&diff);
	}
	model__free(prev);
	*prev = cur;
}

enum stop_reason { STOP_SIGNAL, STOP_DURATION, STOP_EXIT };

static enum stop_reason trace_loop(struct session *s)
{
	uint64_t deadline = 0, next_report = 0, last_flush = now_ns();
	struct model prev;

	model__init(&prev);
	prev.t_end_ns = s->t0;
	if (s->env.duration > 0)
		deadline = s->t0 + (uint64_t)(s->env.duration * 1e9);
	if (s->env.interval > 0)
		next_report = s->t0 + (uint64_t)(s->env.interval * 1e9);

	for (;;) {
		struct pollfd fds[3] = {
			{ .fd = s->sfd, .events = POLLIN },
			{ .fd = collector__fd(s->coll), .events = POLLIN },
			{ .fd = s->pidfd, .events = POLLIN },
		};
		uint64_t now = now_ns(), wake = now + 100000000ULL;
		int timeout;

		if (deadline && deadline < wake)
			wake = deadline;
		if (next_report && next_report < wake)
			wake = next_report;
		timeout = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
		poll(fds, s->pidfd >= 0 ? 3 : 2, timeout);
		collector__consume(s->coll);
		collector__idle(s->coll);
		if (s->writer && now_ns() - last_flush > 1000000000ULL) {
			/* A crash or SIGKILL leaves at most a second unwritten. */
			trace_writer__flush(s->writer);
			last_flush = now_ns();
		}
		if (!s->model.switch_interval_ns) {
			struct gil_state st;
			char e[256];

			read_gil(s, &st, e, sizeof(e));
		}

		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(s->sfd, &si, sizeof(si)) == sizeof(si) &&
			    s->launch && si.ssi_signo == SIGTERM)
				kill(launch__child(s->L), SIGTERM);
			model__free(&prev);
			return STOP_SIGNAL;
		}
		if (s->pidfd >= 0 && (fds[2].revents & (POLLIN | POLLHUP))) {
			model__free(&prev);
			return STOP_EXIT;
		}
		now = now_ns();
		if (deadline && now >= deadline) {
			model__free(&prev);
			return STOP_DURATION;
		}
		if (next_report && now >= next_report) {
			interval_report(s, &prev);
			next_report += (uint64_t)(s->env.interval * 1e9);
		}
	}
}

static void finish_model(struct session *s, enum stop_reason why)
{
	uint64_t t_end = probes__stop(s->probes), last_exit;

	collector__snapshot(s->coll);
	collector__read_stacks(s->coll);
	/* Contention mode sees no releases: seeding and resolving the holder
	 * from them (exact mode's inference) would invent acquisitions. */
	if (!s->env.contention && s->have_gil0 && s->gil0.locked == 1 &&
	    s->gil0.holder_tid)
		collector__seed_holder(s->coll, (uint32_t)s->gil0.holder_tid, s->t0);
	if (why != STOP_EXIT && !s->env.contention) {
		struct gil_state end;
		char e[ERRLEN];

		if (read_gil(s, &end, e, sizeof(e)) && end.locked == 1 &&
		    end.holder_tid)
			collector__resolve_holder(s->coll, (uint32_t)end.holder_tid);
	}
	if (why == STOP_EXIT) {
		/* The traced time ends with the process, not when we noticed. */
		last_exit = collector__last_exit_ns(s->coll);
		if (last_exit > s->t0 && last_exit < t_end)
			t_end = last_exit;
		s->model.target_exited = true;
	}
	model__close(&s->model, t_end);
	collector__close_stacks(s->coll);
	if (s->env.contention &&
	    collector__contention(s->coll, s->env.sample_hz, &s->ctl) == 0)
		s->have_ctl = true;
	s->records = collector__records(s->coll);
	s->write_errors = collector__write_errors(s->coll);
	/* Detach before rendering: the target runs unprobed from here. */
	collector__free(s->coll);
	s->coll = NULL;
	probes__destroy(s->probes);
	s->probes = NULL;
}

/* --folded and --pprof. */
static int write_exports(struct session *s, const struct model *m)
{
	struct report_opts o;
	char err[ERRLEN] = "";
	FILE *f;
	int rc = 0;

	if (s->env.folded) {
		bool out = !strcmp(s->env.folded, "-");

		f = out ? stdout : fopen(s->env.folded, "w");
		if (!f) {
			fprintf(stderr, "giltrace: cannot write %s: %s\n",
				s->env.folded, strerror(errno));
			return -errno;
		}
		report_opts_init(s, &o, f);
		rc = export_folded(f, m, (enum export_weight)s->env.weight, &o,
				   err, sizeof(err));
		if (rc)
			fail_msg(err);
		if (out ? fflush(f) : fclose(f))
			rc = rc ?: -errno;
		if (rc)
			return rc;
	}
	if (s->env.pprof) {
		f = fopen(s->env.pprof, "w");
		if (!f) {
			fprintf(stderr, "giltrace: cannot write %s: %s\n",
				s->env.pprof, strerror(errno));
			return -errno;
		}
		report_opts_init(s, &o, f);
		rc = export_pprof(f, m, &o, err, sizeof(err));
		if (rc)
			fail_msg(err);
		if (fclose(f))
			rc = rc ?: -errno;
		if (rc)
			unlink(s->env.pprof);
	}
	return rc;
}

static int write_views(struct session *s, const struct model *m,
		       const struct timeline *tl)
{
	struct report_opts o;
	FILE *f;
	int rc = 0;

	rc = write_exports(s, m);
	if (rc)
		return rc;

	if (s->env.timeline) {
		struct winsize ws;
		int width = 80;

		f = report_stream(s);
		if (isatty(fileno(f)) && !ioctl(fileno(f), TIOCGWINSZ, &ws) &&
		    ws.ws_col >= 40)
			width = ws.ws_col;
		report_opts_init(s, &o, f);
		o.tl = tl;
		rc = report_timeline(f, m, tl, &o, width) ?: rc;
	}
	if (s->env.perfetto) {
		f = fopen(s->env.perfetto, "w");
		if (!f) {
			fprintf(stderr, "giltrace: cannot write %s: %s\n",
				s->env.perfetto, strerror(errno));
			return -errno;
		}
		rc = report_perfetto(f, m, tl) ?: rc;
		if (fclose(f))
			rc = -errno;
	}
	if (s->env.html) {
		char err[ERRLEN] = "";

		f = fopen(s->env.html, "w");
		if (!f) {
			fprintf(stderr, "giltrace: cannot write %s: %s\n",
				s->env.html, strerror(errno));
			return -errno;
		}
		if (report_html(f, m, tl, getenv("GILTRACE_ASSETS"), err,
				sizeof(err))) {
			fprintf(stderr, "%s\n", err[0] ? err :
				"giltrace: cannot write the HTML report");
			fclose(f);
			unlink(s->env.html); /* no half-written report */
			return -EIO;
		}
		if (fclose(f))
			rc = -errno;
	}
	return rc;
}

static int write_outputs(struct session *s, const struct model *m,
			 const struct timeline *tl)
{
	struct report_opts o;
	FILE *f = report_stream(s);
	int rc = 0;

	if (s->env.output) {
		f = fopen(s->env.output, "w");
		if (!f) {
			fprintf(stderr, "giltrace: cannot write %s: %s\n",
				s->env.output, strerror(errno));
			return -errno;
		}
	}
	bool stdout_taken = (s->env.json && !strcmp(s->env.json, "-")) ||
			    (s->env.folded && !strcmp(s->env.folded, "-"));

	if (!(stdout_taken && !s->env.output)) {
		report_opts_init(s, &o, f);
		o.tl = tl;
		rc = report_text(f, m, &o);
	}
	if (s->env.output && fclose(f))
		rc = -errno;
	if (s->env.json) {
		FILE *j = strcmp(s->env.json, "-") ? fopen(s->env.json, "w") : stdout;

		if (!j) {
			fprintf(stderr, "giltrace: cannot write %s: %s\n",
				s->env.json, strerror(errno));
			return -errno;
		}
		report_opts_init(s, &o, j);
		o.color = false;
		o.tl = tl;
		rc = report_json(j, m, &o) ?: rc;
		if (j != stdout)
			fclose(j);
		else
			fflush(j);
	}
	return write_views(s, m, tl) ?: rc;
}

/*
 * Render a trace file: `giltrace report`, and the direct form of the views
 * (which records to a temporary file first: one code path).
 */
static int render_trace_file(struct session *s, const char *path)
{
	struct trace_reader *r;
	struct timeline tl = {};
	struct model m;
	int rc;

	model__init(&m);
	r = trace_reader__open(path, s->err, sizeof(s->err));
	if (!r)
		return -EINVAL;
	rc = trace_reader__model(r, &m, s->err, sizeof(s->err));
	if (!rc)
		rc = timeline__build(&tl, r, &m, 0, s->err, sizeof(s->err));
	trace_reader__close(r);
	if (!rc) {
		/* What the recording session knew and the file does not. */
		if (s->L)
			m.exit_status = s->model.exit_status;
		rc = write_outputs(s, &m, &tl);
		if (rc)
			s->err[0] = '\0'; /* already said */
	}
	timeline__free(&tl);
	model__free(&m);
	return rc;
}

static int finish_stream(struct session *s)
{
	int rc;

	if (!s->writer)
		return 0;
	rc = trace_writer__finish(s->writer, &s->model, s->err, sizeof(s->err));
	s->writer = NULL;
	if (rc)
		return rc;
	if (s->write_errors) {
		snprintf(s->err, sizeof(s->err), "giltrace: %llu records could "
			 "not be written to %s", (unsigned long long)s->write_errors,
			 s->trace_path);
		return -EIO;
	}
	return 0;
}

static int setup_signals(struct session *s)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	s->sfd = signalfd(-1, &set, SFD_CLOEXEC);
	return s->sfd < 0 ? -errno : 0;
}

static void cleanup(struct session *s)
{
	if (s->writer)
		trace_writer__abort(s->writer);
	s->writer = NULL;
	if (s->trace_tmp)
		unlink(s->trace_path);
	s->trace_tmp = false;
	collector__free(s->coll);
	probes__destroy(s->probes);
	gil_sites__free(&s->sites);
	probe_plan__free(&s->plan);
	if (s->have_target)
		target__close(&s->target);
	model__free(&s->model);
	if (s->have_ctl)
		timeline__free(&s->ctl);
	s->have_ctl = false;
	if (s->pidfd >= 0)
		close(s->pidfd);
	if (s->sfd >= 0)
		close(s->sfd);
}

int main(int argc, char **argv)
{
	static struct session S = { .sfd = -1, .pidfd = -1 };
	struct session *s = &S;
	enum stop_reason why;
	int rc, status = 0;

	rc = cli_parse(argc, argv, &s->env);
	if (rc)
		return rc;
	s->launch = s->env.argv != NULL;
	s->fail = s->launch ? 125 : 1;
	model__init(&s->model);

	if (s->env.cmd == CMD_REPORT) {
		/* Offline: no privileges, no target. */
		rc = render_trace_file(s, s->env.trace_file);
		if (rc)
			goto fail;
		cleanup(s);
		return 0;
	}
	if (probes__check_system(s->err, sizeof(s->err)))
		goto fail;
	s->t_start = now_ns();
	rc = find_target(s);
	if (rc)
		goto fail;
	/* Signals are blocked only now: the command must not inherit it. */
	if (setup_signals(s)) {
		snprintf(s->err, sizeof(s->err), "giltrace: signalfd: %s",
			 strerror(errno));
		goto fail;
	}
	s->pidfd = (int)syscall(SYS_pidfd_open, s->target.pid, 0);
	if (s->pidfd < 0 && !s->launch) {
		snprintf(s->err, sizeof(s->err), "giltrace: no process with PID %d",
			 s->target.pid);
		goto fail;
	}
	fill_model_target(s);
	rc = setup_probes(s);
	if (rc)
		goto fail;
	if (s->L)
		launch__release(s->L);
	if (s->env.verbose) {
		print_probes(s);
		fprintf(stderr, "giltrace: attach took %.1f ms: target %.1f, "
			"symbols %.1f%s, BPF load %.1f, probes %.1f\n",
			(s->t0 - s->t_start) / 1e6, (s->t_found - s->t_start) / 1e6,
			(s->t_sites - s->t_found) / 1e6,
			s->cache_hit ? " (cached)" : "",
			(s->t_loaded - s->t_sites) / 1e6,
			(s->t0 - s->t_loaded) / 1e6);
	}
	say(s, "tracing PID %d (Python %s, %zu probes); Ctrl-C to stop",
	    s->target.pid, s->target.version, s->model.nprobes);

	why = trace_loop(s);
	finish_model(s, why);
	if (s->L) {
		status = launch__wait(s->L, true);
		s->model.exit_status = status;
	}
	rc = finish_stream(s);
	if (rc) {
		fail_msg(s->err);
	} else if (s->env.cmd == CMD_RECORD) {
		say(s, "wrote %s (%llu GIL cycles); render it with: giltrace "
		    "report %s", s->trace_path, (unsigned long long)s->records,
		    s->trace_path);
		/* Views asked for at record time: rendered from the file just
		 * written, as the direct form does. */
		if (s->env.json || s->env.timeline || s->env.perfetto ||
		    s->env.html || s->env.folded || s->env.pprof) {
			rc = render_trace_file(s, s->trace_path);
			if (rc && s->err[0])
				fail_msg(s->err);
		}
	} else if (s->trace_tmp) {
		rc = render_trace_file(s, s->trace_path);
		if (rc && s->err[0])
			fail_msg(s->err);
	} else {
		rc = write_outputs(s, &s->model, s->have_ctl ? &s->ctl : NULL);
	}
	cleanup(s);
	if (s->L) {
		launch__free(s->L);
		return status;
	}
	return rc ? 1 : 0;

fail:
	fail_msg(s->err[0] ? s->err : "giltrace: failed");
	if (s->L) {
		if (!s->L_done)
			launch__kill(s->L);
		launch__free(s->L);
	}
	cleanup(s);
	return s->fail;
}
