// SPDX-License-Identifier: MIT
/* oa_index: see oa_index.h. */
#include "oa_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t oa_probe(const struct oa_index *x, uint64_t h, const struct oa_ops *ops,
		const void *ctx, const void *key)
{
	size_t m = x->cap - 1, j;

	for (j = h & m; x->slot[j]; j = (j + 1) & m)
		if (ops->is(ctx, x->slot[j] - 1, key))
			break;
	return j;
}

void oa_insert(struct oa_index *x, uint64_t h, size_t entry)
{
	size_t m = x->cap - 1, j;

	for (j = h & m; x->slot[j]; j = (j + 1) & m)
		;
	oa_set(x, j, entry);
}

int oa_reserve(struct oa_index *x, size_t n, const struct oa_ops *ops,
	       const void *ctx)
{
	struct oa_index y = { .cap = x->cap ? x->cap : 256 };

	if (x->slot && (n + 1) * 2 <= x->cap)
		return 0;
	while ((n + 1) * 2 > y.cap)
		y.cap *= 2;
	y.slot = calloc(y.cap, sizeof(*y.slot));
	if (!y.slot)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t e = ops->entry ? ops->entry(ctx, i) : i;

		oa_insert(&y, ops->hash(ctx, e), e);
	}
	free(x->slot);
	*x = y;
	return 0;
}

void oa_clear(struct oa_index *x)
{
	if (x->slot)
		memset(x->slot, 0, x->cap * sizeof(*x->slot));
}

void oa_free(struct oa_index *x)
{
	free(x->slot);
	x->slot = NULL;
	x->cap = 0;
}

uint64_t oa_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

uint64_t oa_hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return oa_mix(h, 0);
}
