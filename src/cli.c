// SPDX-License-Identifier: MIT
/* cli.c - giltrace's options, parsed with argp. */
#include <argp.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "export.h"

const char *argp_program_version = "giltrace " GILTRACE_VERSION;
const char *argp_program_bug_address = NULL;

static const char doc[] =
"Trace CPython's GIL: who waits for it, how long, and who holds it.\n"
"\n"
"USAGE: giltrace [OPTIONS] -p PID\n"
"       giltrace [OPTIONS] -- COMMAND [ARGS...]\n"
"       giltrace record [-o trace.gil] [OPTIONS] (-p PID | -- COMMAND...)\n"
"       giltrace report trace.gil [OPTIONS]\n"
"\n"
"EXAMPLES:\n"
"  giltrace -p 1234              # trace PID 1234; Ctrl-C prints the report\n"
"  giltrace -p 1234 -d 10        # trace for 10 seconds\n"
"  giltrace -p 1234 -i 1         # also a report every second\n"
"  giltrace -- python3 bench.py  # launch, traced from the first bytecode\n"
"  giltrace --json r.json -- python3 bench.py  # results for a harness\n"
"  giltrace -p 1234 -q --json -  # JSON on stdout, nothing else\n"
"  giltrace -p 1234 --hist --top 5   # histograms, 5 busiest threads\n"
"  giltrace --timeline -- python3 app.py  # how the GIL serializes threads\n"
"  giltrace -p 1234 -d 5 --html gil.html      # a report to share\n"
"  giltrace -p 1234 -d 5 --perfetto gil.json  # for ui.perfetto.dev\n"
"  giltrace record -o app.gil -- python3 app.py  # record now...\n"
"  giltrace report app.gil --html app.html       # ...render later, no root\n"
"  giltrace --folded wait.folded -- python3 app.py   # where threads wait:\n"
"      flamegraph.pl wait.folded > wait.svg          #  a flame graph\n"
"  giltrace -p 1234 -d 10 --folded - --weight hold   # where the GIL is held\n"
"  giltrace --native --folded w.folded -- python3 app.py  # and which C calls\n"
"  giltrace -p 1234 -d 10 --pprof gil.pb.gz   # for pprof:\n"
"      go tool pprof -top gil.pb.gz\n"
"  giltrace --mode contention -p 1234   # cheapest: blocking waits only,\n"
"                                       # holds sampled\n"
"\n"
"In launch mode the command's output passes through untouched, the report goes\n"
"to stderr, and giltrace exits with the command's status (125: giltrace failed,\n"
"126: command cannot run, 127: command not found).\n"
"\n"
"OPTIONS:";

#define OPT_JSON 1
#define OPT_TID 2
#define OPT_TOP 3
#define OPT_HIST 4
#define OPT_MAX_THREADS 5
#define OPT_COLOR 6
#define OPT_TIMELINE 7
#define OPT_PERFETTO 8
#define OPT_HTML 9
#define OPT_URETPROBE 10
#define OPT_RINGBUF 11
#define OPT_STACKS 12
#define OPT_FOLDED 13
#define OPT_WEIGHT 14
#define OPT_PPROF 15
#define OPT_SAMPLE_HZ 16
#define OPT_MODE 17
#define OPT_NATIVE 18

static const struct argp_option opts[] = {
	{ 0, 0, 0, 0, "Target:", 1 },
	{ "pid", 'p', "PID", 0, "Attach to the running Python process PID", 1 },
	{ 0, 0, 0, 0, "Run mode:", 2 },
	{ "mode", OPT_MODE, "MODE", 0, "exact (default): every wait and hold, exactly; "
	  "contention: only waits that block (exact, with their holder), holds "
	  "estimated by sampling; its cost follows contention, not GIL traffic", 2 },
	{ "duration", 'd', "SECONDS", 0, "Stop tracing after SECONDS (launch mode: "
	  "keep waiting for the command)", 2 },
	{ "interval", 'i', "SECONDS", 0, "Also print a report every SECONDS", 2 },
	{ 0, 0, 0, 0, "Output:", 3 },
	{ "output", 'o', "FILE", 0, "Write the report to FILE (record: the trace "
	  "file, default trace.gil)", 3 },
	{ "json", OPT_JSON, "FILE", 0, "Write giltrace/1 JSON to FILE ('-': stdout, "
	  "not in launch mode)", 3 },
	{ "tid", OPT_TID, "TID,...", 0, "Only these threads in the report and JSON", 3 },
	{ "top", OPT_TOP, "N", 0, "Show the N busiest threads (default 20, 0: all)", 3 },
	{ "hist", OPT_HIST, 0, 0, "Print log2 histograms of wait and hold per thread", 3 },
	{ "timeline", OPT_TIMELINE, 0, 0, "Print a timeline of the GIL per thread", 3 },
	{ "perfetto", OPT_PERFETTO, "FILE", 0, "Write a Perfetto/Chrome trace (JSON) "
	  "to FILE", 3 },
	{ "html", OPT_HTML, "FILE", 0, "Write a self-contained HTML report to FILE", 3 },
	{ 0, 0, 0, 0, "Stacks (where in the code):", 5 },
	{ "stacks", OPT_STACKS, 0, 0, "Capture the Python stack of every wait and "
	  "hold (the report, JSON, HTML and Perfetto show them)", 5 },
	{ "folded", OPT_FOLDED, "FILE", 0, "Write folded stacks for flame graphs "
	  "to FILE ('-': stdout); implies --stacks", 5 },
	{ "weight", OPT_WEIGHT, "WHAT", 0, "What --folded weighs: wait (default, "
	  "microseconds), hold (microseconds) or count (waits)", 5 },
	{ "pprof", OPT_PPROF, "FILE", 0, "Write a pprof profile (gzipped "
	  "profile.proto, wait and hold) to FILE; implies --stacks", 5 },
	{ "native", OPT_NATIVE, 0, 0, "Also the native (C) frames from the Python "
	  "code to the GIL call, unwound with the binaries' CFI; implies --stacks", 5 },
	{ "sample-hz", OPT_SAMPLE_HZ, "HZ", 0, "Sample the GIL holder HZ times a "
	  "second per CPU: its stack during long holds (--stacks, default 199), "
	  "hold estimates (--mode contention, default 997); 0: off", 5 },
	{ "color", OPT_COLOR, "WHEN", 0, "Colour: auto (default, on a tty), always, never", 3 },
	{ "quiet", 'q', 0, 0, "No progress lines on stderr", 3 },
	{ 0, 0, 0, 0, "Advanced:", 4 },
	{ "max-threads", OPT_MAX_THREADS, "N", 0, "Threads tracked at once in the "
	  "kernel (default 16384); beyond that, transitions are counted as dropped", 4 },
	{ "uretprobe", OPT_URETPROBE, 0, 0, "Time acquisitions with a uretprobe on "
	  "take_gil and probe every drop_gil site where it starts (slower; for "
	  "comparison)", 4 },
	{ "ring-buffer", OPT_RINGBUF, "BYTES", 0, "Size of the kernel's event buffer "
	  "for the event stream (a power of two, 4096 to 1 GiB; default 4 MiB); "
	  "records that do not fit are counted as lost", 4 },
	{ "verbose", 'v', 0, 0, "libbpf debug output and the probe list", 4 },
	{ 0 },
};

static int parse_double(const char *s, const char *what, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || *out < 0) {
		fprintf(stderr, "giltrace: invalid %s '%s': expected a number of "
			"seconds\n", what, s);
		return -1;
	}
	return 0;
}

static int parse_long(const char *s, const char *what, long min, long max,
		      long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno || end == s || *end || *out < min || *out > max) {
		fprintf(stderr, "giltrace: invalid %s '%s'\n", what, s);
		return -1;
	}
	return 0;
}

static int parse_tids(const char *arg, struct env *env)
{
	char *s = strdup(arg), *tok, *save = NULL;
	long v;

	if (!s)
		return -1;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		pid_t *n;

		if (parse_long(tok, "TID", 1, INT_MAX, &v)) {
			free(s);
			return -1;
		}
		n = realloc(env->tids, (env->ntids + 1) * sizeof(*n));
		if (!n) {
			free(s);
			return -1;
		}
		env->tids = n;
		env->tids[env->ntids++] = (pid_t)v;
	}
	free(s);
	return 0;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	struct env *env = state->input;
	long v;

	switch (key) {
	case 'p':
		if (parse_long(arg, "PID", 1, INT_MAX, &v))
			argp_state_help(state, stderr, ARGP_HELP_EXIT_ERR);
		env->pid = (pid_t)v;
		break;
	case 'd':
		if (parse_double(arg, "duration", &env->duration) || env->duration == 0)
			argp_error(state, "the duration must be a positive number of seconds");
		break;
	case 'i':
		if (parse_double(arg, "interval", &env->interval) || env->interval == 0)
			argp_error(state, "the interval must be a positive number of seconds");
		break;
	case 'o':
		if (env->cmd == CMD_RECORD)
			env->trace_file = arg;
		else
			env->output = arg;
		break;
	case OPT_JSON:
		env->json = arg;
		break;
	case OPT_TID:
		if (parse_tids(arg, env))
			argp_error(state, "--tid takes a comma-separated list of TIDs");
		break;
	case OPT_TOP:
		if (parse_long(arg, "--top", 0, INT_MAX, &v))
			argp_error(state, "--top takes a whole number");
		env->top = (int)v;
		break;
	case OPT_HIST:
		env->hist = true;
		break;
	case OPT_TIMELINE:
		env->timeline = true;
		break;
	case OPT_PERFETTO:
		env->perfetto = arg;
		break;
	case OPT_HTML:
		env->html = arg;
		break;
	case OPT_COLOR:
		if (!strcmp(arg, "auto"))
			env->color = -1;
		else if (!strcmp(arg, "always"))
			env->color = 1;
		else if (!strcmp(arg, "never"))
			env->color = 0;
		else
			argp_error(state, "--color takes auto, always or never");
		break;
	case OPT_MAX_THREADS:
		if (parse_long(arg, "--max-threads", 1, 1 << 22, &v))
			argp_error(state, "--max-threads takes a number from 1 to 4194304");
		env->max_threads = (uint32_t)v;
		env->max_threads_set = true;
		break;
	case 'q':
		env->quiet = true;
		break;
	case OPT_URETPROBE:
		env->uretprobe = true;
		break;
	case OPT_RINGBUF:
		if (parse_long(arg, "--ring-buffer", 4096, 1L << 30, &v) ||
		    (v & (v - 1)))
			argp_error(state, "--ring-buffer takes a power of two "
				   "from 4096 to 1073741824");
		env->ringbuf_bytes = (uint32_t)v;
		break;
	case 'v':
		env->verbose = true;
		break;
	case OPT_STACKS:
		env->stacks = true;
		break;
	case OPT_FOLDED:
		env->folded = arg;
		env->stacks = true;
		break;
	case OPT_WEIGHT:
		env->weight = export__weight(arg);
		if (env->weight < 0)
			argp_error(state, "--weight takes wait, hold or count");
		break;
	case OPT_PPROF:
		env->pprof = arg;
		env->stacks = true;
		break;
	case OPT_NATIVE:
		env->native = true;
		env->stacks = true;
		break;
	case OPT_SAMPLE_HZ:
		if (parse_long(arg, "--sample-hz", 0, 10000, &v))
			argp_error(state, "--sample-hz takes a number from 0 to 10000");
		env->sample_hz = (uint32_t)v;
		env->sample_hz_set = true;
		break;
	case OPT_MODE:
		if (!strcmp(arg, "exact"))
			env->contention = false;
		else if (!strcmp(arg, "contention"))
			env->contention = true;
		else
			argp_error(state, "--mode takes exact or contention");
		break;
	case ARGP_KEY_ARG:
		/* Everything after "--" is the command, its options included. */
		if (state->quoted && state->next - 1 >= state->quoted) {
			env->argv = state->argv + state->next - 1;
			state->next = state->argc;
			break;
		}
		if (env->cmd == CMD_REPORT && !env->trace_file) {
			env->trace_file = arg;
			break;
		}
		argp_error(state, "unexpected argument '%s' (a command to run "
			   "goes after --)", arg);
		break;
	case ARGP_KEY_END:
		if (env->cmd == CMD_REPORT) {
			if (!env->trace_file)
				argp_error(state, "report needs a trace file: "
					   "giltrace report trace.gil");
			if (env->pid || env->argv)
				argp_error(state, "report reads a trace file; it "
					   "takes no -p or command");
			if (env->duration > 0 || env->interval > 0 ||
			    env->uretprobe || env->max_threads_set)
				argp_error(state, "-d, -i, --uretprobe and "
					   "--max-threads apply when tracing, "
					   "not to report");
			break;
		}
		if (!env->pid && !env->argv)
			argp_error(state, "give a PID with -p, or a command after --");
		if (env->pid && env->argv)
			argp_error(state, "give either -p PID or a command, not both");
		if (env->argv && env->json && !strcmp(env->json, "-"))
			argp_error(state, "--json - is not allowed in launch mode: "
				   "stdout belongs to the command; give a file");
		if (env->contention && env->uretprobe)
			argp_error(state, "--uretprobe is a way of exact mode; "
				   "--mode contention probes no return");
		if (env->contention && env->stacks)
			argp_error(state, "--stacks, --native, --folded and "
				   "--pprof need --mode exact (the default)");
		if (env->contention && (env->cmd == CMD_RECORD || env->timeline ||
					env->perfetto || env->html))
			argp_error(state, "--mode contention has no event stream: "
				   "record, --timeline, --perfetto and --html need "
				   "--mode exact (the default)");
		if (env->contention && !env->sample_hz_set)
			env->sample_hz = 997;
		if (env->argv && env->folded && !strcmp(env->folded, "-"))
			argp_error(state, "--folded - is not allowed in launch mode: "
				   "stdout belongs to the command; give a file");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct env *env)
{
	static const struct argp argp = { opts, parse_arg, NULL, doc };

	memset(env, 0, sizeof(*env));
	if (argc > 1 && !strcmp(argv[1], "record")) {
		env->cmd = CMD_RECORD;
		env->trace_file = "trace.gil";
	} else if (argc > 1 && !strcmp(argv[1], "report")) {
		env->cmd = CMD_REPORT;
	}
	if (env->cmd != CMD_TRACE) {
		/* argp sees the subcommand as the program name. */
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	env->top = 20;
	env->color = -1;
	env->max_threads = 16384;
	env->sample_hz = 199;
	/* Exit status for usage errors: 125 in launch mode as env(1) does,
	 * else 1; argp exits with argp_err_exit_status. */
	argp_err_exit_status = 1;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			argp_err_exit_status = 125;
			break;
		}
	return argp_parse(&argp, argc, argv, 0, NULL, env);
}
