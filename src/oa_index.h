/* SPDX-License-Identifier: MIT */
#ifndef GILTRACE_OA_INDEX_H
#define GILTRACE_OA_INDEX_H
/*
 * oa_index: a hash index over the entries of a dense array its user owns
 * (interned strings, frames, stacks, waiter/holder pairs). Open addressing
 * with linear probing; slots hold entry + 1 (0 is empty); never more than
 * half full. What an entry is (usually an array index; model_stacks also
 * marks aliases with the top bit), how it hashes and whether it is a key
 * are the user's, through struct oa_ops and an opaque context.
 *
 *	if (oa_reserve(&x, n, &ops, ctx))     room for one more, or -ENOMEM
 *		return -ENOMEM;
 *	j = oa_probe(&x, hash(key), &ops, ctx, key);
 *	if (oa_entry(&x, j) != OA_NONE)       found
 *		return oa_entry(&x, j);
 *	array[n] = key; oa_set(&x, j, n++);   added where the probe ended
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oa_index {
	size_t *slot; /* entry + 1, 0 empty; NULL before first use */
	size_t cap;   /* a power of two; 0 before first use */
};

struct oa_ops {
	uint64_t (*hash)(const void *ctx, size_t entry);
	bool (*is)(const void *ctx, size_t entry, const void *key);
	/* The @i-th of the n entries a rebuild re-inserts, in array order
	 * (so a rebuild reads the array sequentially); NULL: i itself. */
	size_t (*entry)(const void *ctx, size_t i);
};

#define OA_NONE SIZE_MAX /* oa_entry() of an empty slot */

/* Slot of the entry that is @key (of hash @h), or of the empty slot where
 * it would go. @x must have slots (oa_reserve first). */
size_t oa_probe(const struct oa_index *x, uint64_t h, const struct oa_ops *ops,
		const void *ctx, const void *key);

/* The entry in slot @j, or OA_NONE when it is empty. */
static inline size_t oa_entry(const struct oa_index *x, size_t j)
{
	return x->slot[j] - 1; /* 0 - 1 wraps to OA_NONE */
}

/* Put @entry in slot @j (an empty slot oa_probe returned). */
static inline void oa_set(struct oa_index *x, size_t j, size_t entry)
{
	x->slot[j] = entry + 1;
}

/* Add @entry of hash @h, known not to be there (duplicate keys allowed:
 * a probe finds the first). */
void oa_insert(struct oa_index *x, uint64_t h, size_t entry);

/* Make room for one more entry than the @n there are: when @x would be
 * more than half full, rebuild it larger from the entries. 0, or -ENOMEM
 * (@x unchanged). */
int oa_reserve(struct oa_index *x, size_t n, const struct oa_ops *ops,
	       const void *ctx);

/* Empty @x, keeping its slots. */
void oa_clear(struct oa_index *x);

/* Free @x's slots; it is then as before first use. */
void oa_free(struct oa_index *x);

/* FNV-1a of a string, and a 64-bit mix of one value into a hash: the
 * hashes the users build their keys' from. */
uint64_t oa_hash_str(uint64_t h, const char *s);
uint64_t oa_mix(uint64_t h, uint64_t v);

#endif
