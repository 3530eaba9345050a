/* SPDX-License-Identifier: MIT */
/* cli: command-line options (argp). main() only sequences. */
#ifndef GILTRACE_CLI_H
#define GILTRACE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum command {
	CMD_TRACE = 0,  /* giltrace [OPTIONS] (-p PID | -- CMD): trace and report */
	CMD_RECORD,     /* giltrace record: trace into a file */
	CMD_REPORT,     /* giltrace report FILE: render a recorded trace */
};

struct env {
	enum command cmd;
	const char *trace_file; /* record: -o (default trace.gil); report: FILE */
	bool timeline;          /* --timeline */
	const char *perfetto;   /* --perfetto FILE */
	const char *html;       /* --html FILE */
	pid_t pid;              /* -p */
	char **argv;            /* launch mode: the command after -- */
	double duration;        /* -d, seconds; 0 = until Ctrl-C / exit */
	double interval;        /* -i, seconds; 0 = none */
	const char *output;     /* -o */
	const char *json;       /* --json; "-" = stdout */
	pid_t *tids;            /* --tid */
	size_t ntids;
	int top;                /* --top */
	bool hist;              /* --hist */
	uint32_t max_threads;   /* --max-threads */
	bool max_threads_set;
	bool quiet, verbose;
	bool uretprobe;         /* --uretprobe */
	uint32_t ringbuf_bytes; /* --ring-buffer */
	int color;              /* -1 auto, 0 never, 1 always */
	bool stacks;            /* --stacks (implied by --folded, --pprof) */
	const char *folded;     /* --folded FILE ("-": stdout) */
	int weight;             /* --weight: enum export_weight (default wait) */
	const char *pprof;      /* --pprof FILE */
	uint32_t sample_hz;     /* --sample-hz: holder samples a second, 0 off */
	bool sample_hz_set;
	bool contention;        /* --mode contention */
	bool native;            /* --native (implies --stacks) */
};

/* Parse argv into @env. On a usage error prints one line and returns
 * nonzero (the exit status to use). */
int cli_parse(int argc, char **argv, struct env *env);

#endif
