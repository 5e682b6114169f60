/*
 * test_strmap.c - cmocka tests for src/util/strmap.c
 *
 * What it tests: scripted cases (strmap_cases[]: insert, find and delete on
 * one map, with the count after each step; keys that differ only after a
 * NUL, empty keys, prefixes of one another, re-inserting a deleted key,
 * deleting from the middle of a chain), growth past several doublings
 * (every key still found, the bucket count a power of two at least the
 * entry count), iteration (strmap_next() visits each entry exactly once,
 * on an empty map, a full one and one thinned by deletes), the copied key's
 * trailing NUL, and strmap_free() with and without a function for p.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/strmap.h"

enum sm_op { SM_END, SM_INS, SM_FIND, SM_DEL };

struct sm_step {
	enum sm_op op;
	const char *key;	/* key bytes (may hold NULs) */
	size_t	klen;		/* bytes of key used */
	int	want;		/* INS: 1 made, 0 found; FIND/DEL: 1 present */
	uint64_t a;		/* INS: set when made; FIND: expected */
	size_t	n;		/* entries after the step */
};

struct sm_case {
	const char *name;
	struct sm_step steps[12];
};

#define K(s)	(s), sizeof(s) - 1	/* a literal's bytes, NULs included */

static const struct sm_case strmap_cases[] = {
	{"insert then find", {
		{SM_FIND, K("a"), 0, 0, 0},
		{SM_INS, K("a"), 1, 7, 1},
		{SM_FIND, K("a"), 1, 7, 1},
		{SM_INS, K("a"), 0, 7, 1},
		{SM_INS, K("b"), 1, 8, 2},
		{SM_FIND, K("b"), 1, 8, 2},
		{SM_FIND, K("c"), 0, 0, 2},
	}},
	{"binary keys with NULs", {
		{SM_INS, K("x\0a"), 1, 1, 1},
		{SM_INS, K("x\0b"), 1, 2, 2},
		{SM_INS, K("x"), 1, 3, 3},
		{SM_INS, K("x\0"), 1, 4, 4},
		{SM_INS, K("\0"), 1, 5, 5},
		{SM_FIND, K("x\0a"), 1, 1, 5},
		{SM_FIND, K("x\0b"), 1, 2, 5},
		{SM_FIND, K("x"), 1, 3, 5},
		{SM_FIND, K("x\0"), 1, 4, 5},
		{SM_FIND, K("\0"), 1, 5, 5},
		{SM_FIND, K("\0\0"), 0, 0, 5},
	}},
	{"empty key and prefixes", {
		{SM_INS, K(""), 1, 1, 1},
		{SM_INS, K("ab"), 1, 2, 2},
		{SM_INS, K("abc"), 1, 3, 3},
		{SM_FIND, K(""), 1, 1, 3},
		{SM_FIND, K("a"), 0, 0, 3},
		{SM_FIND, K("abc"), 1, 3, 3},
		{SM_DEL, K(""), 1, 0, 2},
		{SM_FIND, K(""), 0, 0, 2},
		{SM_FIND, K("ab"), 1, 2, 2},
	}},
	{"delete and re-insert", {
		{SM_INS, K("s1"), 1, 9, 1},
		{SM_DEL, K("s1"), 1, 0, 0},
		{SM_FIND, K("s1"), 0, 0, 0},
		{SM_DEL, K("s1"), 0, 0, 0},
		{SM_INS, K("s1"), 1, 0, 1},	/* made again, zeroed */
		{SM_FIND, K("s1"), 1, 0, 1},
	}},
	{"delete leaves the others", {
		{SM_INS, K("k1"), 1, 1, 1},
		{SM_INS, K("k2"), 1, 2, 2},
		{SM_INS, K("k3"), 1, 3, 3},
		{SM_DEL, K("k2"), 1, 0, 2},
		{SM_FIND, K("k1"), 1, 1, 2},
		{SM_FIND, K("k3"), 1, 3, 2},
		{SM_DEL, K("k1"), 1, 0, 1},
		{SM_DEL, K("k3"), 1, 0, 0},
	}},
};

/* iter_count - entries strmap_next() visits */
static size_t
iter_count(const struct strmap *m)
{
	const struct strmap_ent *e;
	size_t n = 0;

	for (e = strmap_next(m, NULL); e != NULL; e = strmap_next(m, e))
		n++;
	return n;
}

/* test_cases - run strmap_cases[] */
static void
test_cases(void **state)
{
	const struct sm_case *c;
	const struct sm_step *s;
	struct strmap_ent *e;
	struct strmap m;
	size_t i, j;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(strmap_cases) / sizeof(strmap_cases[0]); i++) {
		c = &strmap_cases[i];
		memset(&m, 0, sizeof(m));
		for (j = 0; c->steps[j].op != SM_END; j++) {
			s = &c->steps[j];
			switch (s->op) {
			case SM_INS:
				rc = strmap_insert(&m, s->key, s->klen, &e);
				if (rc != s->want)
					fail_msg("%s: step %zu: insert %d, "
					    "want %d", c->name, j, rc,
					    s->want);
				assert_non_null(e);
				if (rc == 1) {
					assert_int_equal(e->a, 0);
					assert_int_equal(e->b, 0);
					assert_null(e->p);
					e->a = s->a;
				}
				assert_int_equal(e->klen, s->klen);
				assert_memory_equal(e->key, s->key, s->klen);
				assert_int_equal(e->key[s->klen], '\0');
				break;
			case SM_FIND:
				e = strmap_find(&m, s->key, s->klen);
				if ((e != NULL) != s->want)
					fail_msg("%s: step %zu: find %s", c->name,
					    j, e ? "found" : "missed");
				if (e != NULL && e->a != s->a)
					fail_msg("%s: step %zu: a %llu, want "
					    "%llu", c->name, j,
					    (unsigned long long)e->a,
					    (unsigned long long)s->a);
				break;
			case SM_DEL:
				e = strmap_find(&m, s->key, s->klen);
				if ((e != NULL) != s->want)
					fail_msg("%s: step %zu: delete %s",
					    c->name, j, e ? "found" : "missed");
				if (e != NULL)
					strmap_del(&m, e);
				break;
			case SM_END:
				break;
			}
			if (m.n != s->n || iter_count(&m) != s->n)
				fail_msg("%s: step %zu: %zu entries (%zu "
				    "visited), want %zu", c->name, j, m.n,
				    iter_count(&m), s->n);
		}
		strmap_free(&m, NULL);
		assert_null(m.tab);
		assert_int_equal(m.nb, 0);
		assert_int_equal(m.n, 0);
	}
}

#define SM_MANY	20000	/* past several doublings of STRMAP_MIN_BUCKETS */

/* test_grow - many keys: all found, buckets a power of two >= entries */
static void
test_grow(void **state)
{
	struct strmap_ent *e;
	struct strmap m;
	size_t i, nb_seen = 0, doublings = 0;
	char k[32];
	int n;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(iter_count(&m), 0);
	assert_null(strmap_find(&m, "x", 1));
	for (i = 0; i < SM_MANY; i++) {
		n = snprintf(k, sizeof(k), "key-%zu", i);
		assert_int_equal(strmap_insert(&m, k, (size_t)n, &e), 1);
		e->a = i;
		e->b = i * 2;
		if (m.nb != nb_seen) {
			if (nb_seen != 0) {
				assert_int_equal(m.nb, nb_seen * 2);
				doublings++;
			}
			nb_seen = m.nb;
		}
		assert_int_equal(m.nb & (m.nb - 1), 0);
		assert_true(m.nb >= m.n);
	}
	assert_true(doublings >= 5);
	assert_int_equal(m.n, SM_MANY);
	for (i = 0; i < SM_MANY; i++) {
		n = snprintf(k, sizeof(k), "key-%zu", i);
		assert_non_null(e = strmap_find(&m, k, (size_t)n));
		assert_int_equal(e->a, i);
		assert_int_equal(e->b, i * 2);
		assert_string_equal(e->key, k);
		assert_int_equal(strmap_insert(&m, k, (size_t)n, &e), 0);
	}
	assert_null(strmap_find(&m, "key-20000", 9));
	strmap_free(&m, NULL);
}

/* test_iterate - each entry once, before and after deletes */
static void
test_iterate(void **state)
{
	struct strmap_ent *e;
	struct strmap m;
	unsigned char *seen;
	size_t i, n;
	uint32_t k;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_null(strmap_next(&m, NULL));
	seen = calloc(SM_MANY, 1);
	assert_non_null(seen);
	for (k = 0; k < SM_MANY; k++) {	/* 4-byte binary keys */
		assert_int_equal(strmap_insert(&m, &k, sizeof(k), &e), 1);
		e->a = k;
	}
	for (e = strmap_next(&m, NULL), n = 0; e != NULL;
	    e = strmap_next(&m, e), n++) {
		assert_true(e->a < SM_MANY);
		assert_int_equal(seen[e->a], 0);
		seen[e->a] = 1;
	}
	assert_int_equal(n, SM_MANY);
	/* Delete the odd keys, then the even ones are all that remain. */
	for (k = 1; k < SM_MANY; k += 2) {
		assert_non_null(e = strmap_find(&m, &k, sizeof(k)));
		strmap_del(&m, e);
	}
	assert_int_equal(m.n, SM_MANY / 2);
	memset(seen, 0, SM_MANY);
	for (e = strmap_next(&m, NULL), n = 0; e != NULL;
	    e = strmap_next(&m, e), n++) {
		assert_int_equal(e->a % 2, 0);
		assert_int_equal(seen[e->a], 0);
		seen[e->a] = 1;
	}
	assert_int_equal(n, SM_MANY / 2);
	for (i = 0; i < SM_MANY; i += 2)
		assert_int_equal(seen[i], 1);
	free(seen);
	strmap_free(&m, NULL);
}

static size_t freed;

/* count_free - a pfree that counts and frees */
static void
count_free(void *p)
{
	if (p != NULL)
		freed++;
	free(p);
}

/* test_release - strmap_free() frees p only when given a function */
static void
test_release(void **state)
{
	struct strmap_ent *e;
	struct strmap m;
	char k[16];
	int i, n;

	(void)state;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < 1000; i++) {
		n = snprintf(k, sizeof(k), "g%d", i);
		assert_int_equal(strmap_insert(&m, k, (size_t)n, &e), 1);
		if (i % 3 != 0)
			assert_non_null(e->p = malloc(8));
	}
	freed = 0;
	strmap_free(&m, count_free);
	assert_int_equal(freed, 666);
	assert_int_equal(m.n, 0);
	assert_null(strmap_next(&m, NULL));
	/* A freed map is empty and usable again. */
	assert_int_equal(strmap_insert(&m, "g1", 2, &e), 1);
	assert_int_equal(m.n, 1);
	strmap_free(&m, NULL);
	strmap_free(&m, NULL);	/* twice is harmless */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
