/* SPDX-License-Identifier: MIT */
/* json_util: the jansson helpers every renderer needs. */
#ifndef GILTRACE_JSON_UTIL_H
#define GILTRACE_JSON_UTIL_H

#include <limits.h>
#include <stdint.h>
#include <jansson.h>

/* ns figures are unsigned 64-bit; JSON integers here are int64. */
static inline json_t *jint(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* json_string() refuses invalid UTF-8 (a comm can hold any bytes): fall
 * back to a copy with the offending bytes replaced by '?'. */
static inline json_t *jstr(const char *s)
{
	json_t *v = json_string(s);
	char buf[PATH_MAX];
	size_t i;

	if (v)
		return v;
	for (i = 0; s[i] && i + 1 < sizeof(buf); i++)
		buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

#endif
