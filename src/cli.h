/* SPDX-License-Identifier: MIT */
/* cli: command-line options (argp). main() only sequences. */
#ifndef GILTRACE_CLI_H
#define GILTRACE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct env {
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
	bool quiet, verbose;
	int color;              /* -1 auto, 0 never, 1 always */
};

/* Parse argv into @env. On a usage error prints one line and returns
 * nonzero (the exit status to use). */
int cli_parse(int argc, char **argv, struct env *env);

#endif
