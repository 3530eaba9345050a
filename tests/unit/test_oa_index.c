// SPDX-License-Identifier: MIT
/*
 * test_oa_index.c - unit tests of the shared hash index (src/oa_index.c)
 * on its own, through a small string table like the pprof exporter's and
 * an integer table with deliberately colliding hashes: every key is found
 * after many rebuilds, absent keys are not, the index never gets more
 * than half full, clear and free leave it usable, and a rebuild visits
 * entries through ops->entry when there is one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "oa_index.h"

/* ---- a string table, as export_pprof.c interns its strings ------------ */

struct strtab {
	char **v;
	size_t n;
	struct oa_index idx;
};

static uint64_t str_hash(const void *t, size_t e)
{
	return oa_hash_str(0, ((const struct strtab *)t)->v[e]);
}

static bool str_is(const void *t, size_t e, const void *key)
{
	return !strcmp(((const struct strtab *)t)->v[e], key);
}

static const struct oa_ops str_ops = { str_hash, str_is, NULL };

static size_t add_str(struct strtab *t, const char *s)
{
	size_t j;

	assert_int_equal(oa_reserve(&t->idx, t->n, &str_ops, t), 0);
	j = oa_probe(&t->idx, oa_hash_str(0, s), &str_ops, t, s);
	if (oa_entry(&t->idx, j) != OA_NONE)
		return oa_entry(&t->idx, j);
	t->v = realloc(t->v, (t->n + 1) * sizeof(*t->v));
	assert_non_null(t->v);
	t->v[t->n] = strdup(s);
	oa_set(&t->idx, j, t->n);
	return t->n++;
}

static size_t find_str(const struct strtab *t, const char *s)
{
	if (!t->idx.slot)
		return OA_NONE;
	return oa_entry(&t->idx, oa_probe(&t->idx, oa_hash_str(0, s), &str_ops,
					  t, s));
}

static size_t used(const struct oa_index *x)
{
	size_t n = 0;

	for (size_t j = 0; j < x->cap; j++)
		n += x->slot[j] != 0;
	return n;
}

static void test_strings(void **state)
{
	struct strtab t = { 0 };
	char buf[32];
	size_t caps = 0, last_cap = 0;

	(void)state;
	assert_int_equal(find_str(&t, "x"), OA_NONE);
	for (int i = 0; i < 20000; i++) {
		snprintf(buf, sizeof(buf), "frame-%d", i);
		assert_int_equal(add_str(&t, buf), (size_t)i);
		assert_true(t.idx.cap >= 2 * t.n);
		if (t.idx.cap != last_cap) {
			caps++;
			last_cap = t.idx.cap;
		}
	}
	assert_true(caps >= 7); /* 256 .. 65536: several rebuilds */
	assert_int_equal(used(&t.idx), t.n);
	for (int i = 0; i < 20000; i += 7) {
		snprintf(buf, sizeof(buf), "frame-%d", i);
		assert_int_equal(find_str(&t, buf), (size_t)i);
		assert_int_equal(add_str(&t, buf), (size_t)i); /* interned */
	}
	assert_int_equal(t.n, 20000);
	assert_int_equal(find_str(&t, "frame-20000"), OA_NONE);
	assert_int_equal(find_str(&t, ""), OA_NONE);

	oa_clear(&t.idx);
	assert_non_null(t.idx.slot);
	assert_int_equal(used(&t.idx), 0);
	assert_int_equal(find_str(&t, "frame-1"), OA_NONE);

	oa_free(&t.idx);
	assert_null(t.idx.slot);
	assert_int_equal(t.idx.cap, 0);
	for (size_t i = 0; i < t.n; i++)
		free(t.v[i]);
	t.n = 0;
	assert_int_equal(add_str(&t, "again"), 0);
	assert_int_equal(find_str(&t, "again"), 0);
	oa_free(&t.idx);
	free(t.v[0]);
	free(t.v);
}

/* ---- integers whose hashes collide, entries through ops->entry -------- */

struct ints {
	uint64_t v[4096];
	size_t n;
	size_t entry_calls;
};

static uint64_t int_hash(const void *c, size_t e)
{
	return ((const struct ints *)c)->v[e] % 5; /* 5 hash values in all */
}

static bool int_is(const void *c, size_t e, const void *key)
{
	return ((const struct ints *)c)->v[e] == *(const uint64_t *)key;
}

/* Entries are stored reversed: the i-th entry is n - 1 - i. */
static size_t int_entry(const void *c, size_t i)
{
	struct ints *x = (struct ints *)c;

	x->entry_calls++;
	return x->n - 1 - i;
}

static const struct oa_ops int_ops = { int_hash, int_is, int_entry };

static void test_collisions_and_entries(void **state)
{
	struct ints *c = calloc(1, sizeof(*c));
	struct oa_index x = { 0 };

	(void)state;
	assert_non_null(c);
	for (uint64_t k = 0; k < 3000; k++) {
		uint64_t key = k * 1000003;
		size_t j;

		assert_int_equal(oa_reserve(&x, c->n, &int_ops, c), 0);
		j = oa_probe(&x, key % 5, &int_ops, c, &key);
		assert_int_equal(oa_entry(&x, j), OA_NONE);
		c->v[c->n] = key;
		oa_set(&x, j, c->n++);
	}
	assert_true(c->entry_calls > 0); /* rebuilds went through int_entry */
	for (uint64_t k = 0; k < 3000; k++) {
		uint64_t key = k * 1000003;

		assert_int_equal(oa_entry(&x, oa_probe(&x, key % 5, &int_ops, c,
							&key)), k);
	}
	/* oa_insert may add a duplicate key: the probe finds the first. */
	{
		uint64_t key = 0;

		c->v[c->n] = 0;
		oa_insert(&x, 0, c->n++);
		assert_int_equal(oa_entry(&x, oa_probe(&x, 0, &int_ops, c, &key)), 0);
	}
	oa_free(&x);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_collisions_and_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
