/* SPDX-License-Identifier: MIT */
/*
 * errbuf: the one-line error messages the discovery and symbol steps hand
 * back to main (which prints them and exits non-zero): every such function
 * takes a caller's buffer, `char *err, size_t errlen`, and fills it on
 * failure.
 */
#ifndef GILTRACE_ERRBUF_H
#define GILTRACE_ERRBUF_H

#include <stddef.h>

/* printf into @err (@errlen bytes, truncated); nothing when @err is NULL
 * or @errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
