// SPDX-License-Identifier: MIT
/* export_pprof.c - placeholder until the protobuf-c encoder lands. */
#include <errno.h>
#include <stdio.h>
#include "export.h"

int export_pprof(FILE *out, const struct model *m, const struct report_opts *o,
		 char *err, size_t errlen)
{
	snprintf(err, errlen, "giltrace: --pprof is not built yet");
	return -ENOTSUP;
}
