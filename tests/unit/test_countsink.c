/*
 * test_countsink.c - cmocka tests for src/swarm/countsink.c's pure parts
 *
 * What it tests: the truth marker parser (truth_cases[]: exact marker,
 * case, blanks and a CR around the value, markers that must not count: a
 * leading blank, another header whose name starts the same, an unknown or
 * doubled value), the population label parser (pop_cases[]: the allowed
 * characters, the length limit, the output buffer's size), the message
 * scanner (scan_cases[]: a marker below a relay's trace header, in the
 * body, the first of conflicting markers winning, a dot-stuffed line as
 * the server hands it after unstuffing), the reject decision (splitmix64's
 * published first output, 0% and 100%, the share over 200 and 100000
 * draws with fixed seeds, determinism) and sink_parse_pct() (pct_cases[]).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "swarm/countsink.h"

struct truth_case {
	const char *line;
	int	want;		/* SINK_HAM, SINK_SPAM or -1 */
};

static const struct truth_case truth_cases[] = {
	{"X-Swarm-Truth: spam", SINK_SPAM},
	{"X-Swarm-Truth: ham", SINK_HAM},
	{"x-swarm-truth:HAM", SINK_HAM},
	{"X-SWARM-TRUTH: Spam", SINK_SPAM},
	{"X-Swarm-Truth:\t spam \t", SINK_SPAM},
	{"X-Swarm-Truth: spam\r", SINK_SPAM},
	{"X-Swarm-Truth: spammy", -1},
	{"X-Swarm-Truth: hamster", -1},
	{"X-Swarm-Truth: ham spam", -1},
	{"X-Swarm-Truth: ", -1},
	{"X-Swarm-Truth:", -1},
	{"X-Swarm-Truth", -1},
	{" X-Swarm-Truth: spam", -1},
	{"X-Swarm-Truthy: spam", -1},
	{"X-Swarm-Population: spam", -1},
	{"Subject: X-Swarm-Truth: spam", -1},
	{"", -1},
};

/* test_truth_parse - every row of truth_cases[] */
static void
test_truth_parse(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(truth_cases) / sizeof(truth_cases[0]); i++) {
		const struct truth_case *c = &truth_cases[i];
		int	got = sink_truth_parse(c->line, strlen(c->line));

		if (got != c->want)
			fail_msg("case %zu \"%s\": got %d want %d", i, c->line,
			    got, c->want);
	}
}

/* test_truth_parse_len - only len bytes are read */
static void
test_truth_parse_len(void **state)
{
	const char *s = "X-Swarm-Truth: hamster";

	(void)state;
	assert_int_equal(sink_truth_parse(s, 18), SINK_HAM);
	assert_int_equal(sink_truth_parse(s, 13), -1);
	assert_int_equal(sink_truth_parse("X-Swarm-Truth: spam\0x", 21), -1);
}

struct pop_case {
	const char *line;
	size_t	outlen;		/* output buffer size */
	const char *want;	/* NULL: rejected */
};

static const struct pop_case pop_cases[] = {
	{"X-Swarm-Population: zombie", 64, "zombie"},
	{"x-swarm-population:legit-mta_2.eu", 64, "legit-mta_2.eu"},
	{"X-Swarm-Population:  router \r", 64, "router"},
	{"X-Swarm-Population: two words", 64, NULL},
	{"X-Swarm-Population: bad/char", 64, NULL},
	{"X-Swarm-Population: \"q\"", 64, NULL},
	{"X-Swarm-Population: ", 64, NULL},
	{"X-Swarm-Population: "
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc",
	    64, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc"},
	{"X-Swarm-Population: "
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd",
	    128, NULL},		/* 64 bytes: over SINK_POP_MAX */
	{"X-Swarm-Population: zombie", 6, NULL},	/* no room for NUL */
	{"X-Swarm-Population: zombie", 7, "zombie"},
	{"X-Swarm-Truth: spam", 64, NULL},
};

/* test_pop_parse - every row of pop_cases[] */
static void
test_pop_parse(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(pop_cases) / sizeof(pop_cases[0]); i++) {
		const struct pop_case *c = &pop_cases[i];
		char	out[128];
		int	rc;

		memset(out, 'Z', sizeof(out));
		rc = sink_pop_parse(c->line, strlen(c->line), out, c->outlen);
		if (c->want == NULL) {
			if (rc != -1)
				fail_msg("case %zu \"%s\": accepted", i, c->line);
		} else if (rc != 0 || strcmp(out, c->want) != 0)
			fail_msg("case %zu \"%s\": rc %d out \"%.64s\"", i,
			    c->line, rc, rc == 0 ? out : "");
	}
}

struct scan_case {
	const char *name;
	const char *lines[8];	/* NULL-terminated */
	enum sink_truth truth;
	int	markers;
	const char *pop;
};

static const struct scan_case scan_cases[] = {
	{"no marker", {"Subject: hi", "", "hello", NULL},
	    SINK_UNKNOWN, 0, ""},
	{"below a trace header", {"Received: from x by mailshaper",
	    "X-Swarm-Truth: spam", "X-Swarm-Population: zombie", "",
	    "buy", NULL}, SINK_SPAM, 1, "zombie"},
	{"in the body", {"Subject: s", "", "text",
	    "X-Swarm-Population: legit", "X-Swarm-Truth: ham", NULL},
	    SINK_HAM, 1, "legit"},
	{"first of conflicting markers", {"X-Swarm-Truth: ham",
	    "X-Swarm-Truth: spam", NULL}, SINK_HAM, 2, ""},
	{"invalid marker then a valid one", {"X-Swarm-Truth: maybe",
	    "X-Swarm-Truth: spam", NULL}, SINK_SPAM, 1, ""},
	{"first valid label", {"X-Swarm-Population: a b",
	    "X-Swarm-Population: one", "X-Swarm-Population: two", NULL},
	    SINK_UNKNOWN, 0, "one"},
	{"unstuffed dot line is ordinary", {".", "..", ".X-Swarm-Truth: spam",
	    NULL}, SINK_UNKNOWN, 0, ""},
};

/* test_scan - every row of scan_cases[] */
static void
test_scan(void **state)
{
	size_t	i, k;

	(void)state;
	for (i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
		const struct scan_case *c = &scan_cases[i];
		struct sink_scan sc;

		sink_scan_init(&sc);
		for (k = 0; c->lines[k] != NULL; k++)
			sink_scan_line(&sc, c->lines[k], strlen(c->lines[k]));
		if (sc.truth != c->truth || sc.markers != c->markers ||
		    strcmp(sc.pop, c->pop) != 0)
			fail_msg("case \"%s\": truth %s markers %d pop \"%s\"",
			    c->name, sink_truth_name(sc.truth), sc.markers,
			    sc.pop);
	}
}

/* test_truth_name - the JSON keys */
static void
test_truth_name(void **state)
{
	(void)state;
	assert_string_equal(sink_truth_name(SINK_HAM), "ham");
	assert_string_equal(sink_truth_name(SINK_SPAM), "spam");
	assert_string_equal(sink_truth_name(SINK_UNKNOWN), "unknown");
	assert_string_equal(sink_truth_name((enum sink_truth)99), "unknown");
}

/* test_mix - splitmix64's published first output for seed 0 */
static void
test_mix(void **state)
{
	(void)state;
	assert_true(sink_mix(0x9e3779b97f4a7c15ULL) == 0xe220a8397b1dcdafULL);
}

/* test_reject_bounds - 0% never, 100% always, whatever the seed */
static void
test_reject_bounds(void **state)
{
	uint64_t n;

	(void)state;
	for (n = 0; n < 1000; n++) {
		assert_int_equal(sink_reject(n * 7919, n, 0), 0);
		assert_int_equal(sink_reject(n * 7919, n, SINK_BP_MAX), 1);
	}
}

/* test_reject_seeded - exact counts for fixed seeds (also in the
 * black-box test), the share over many draws, determinism */
static void
test_reject_seeded(void **state)
{
	static const struct {
		uint64_t seed;
		int	want;	/* rejected among the first 200 at 90% */
	} rows[] = {{7, 181}, {42, 186}, {0, 185}};
	static const int first7[12] = {1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1};
	uint64_t n;
	size_t	i;
	long	k;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (k = 0, n = 0; n < 200; n++)
			k += sink_reject(rows[i].seed, n, 9000);
		assert_int_equal(k, rows[i].want);
	}
	for (n = 0; n < 12; n++)
		assert_int_equal(sink_reject(7, n, 9000), first7[n]);
	for (k = 0, n = 0; n < 100000; n++)
		k += sink_reject(12345, n, 9000);
	assert_in_range(k, 89500, 90500);
	for (k = 0, n = 0; n < 100000; n++)
		k += sink_reject(12345, n, 50);		/* 0.5% */
	assert_in_range(k, 400, 600);
	for (n = 0; n < 1000; n++)
		assert_int_equal(sink_reject(99, n, 9000),
		    sink_reject(99, n, 9000));
}

struct pct_case {
	const char *in;
	int	rc;
	int	bp;
};

static const struct pct_case pct_cases[] = {
	{"90", 0, 9000}, {"0", 0, 0}, {"100", 0, 10000}, {"99.5", 0, 9950},
	{"12.34", 0, 1234}, {"100.01", -1, 0}, {"-1", -1, 0}, {"", -1, 0},
	{"90%", -1, 0}, {" 90", -1, 0}, {"nan", -1, 0}, {"inf", -1, 0},
	{"1e2", 0, 10000},
};

/* test_parse_pct - every row of pct_cases[] */
static void
test_parse_pct(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(pct_cases) / sizeof(pct_cases[0]); i++) {
		int	bp = -7, rc = sink_parse_pct(pct_cases[i].in, &bp);

		if (rc != pct_cases[i].rc || (rc == 0 && bp != pct_cases[i].bp))
			fail_msg("\"%s\": rc %d bp %d", pct_cases[i].in, rc,
			    bp);
	}
	assert_int_equal(sink_parse_pct(NULL, NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truth_parse),
		cmocka_unit_test(test_truth_parse_len),
		cmocka_unit_test(test_pop_parse),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_truth_name),
		cmocka_unit_test(test_mix),
		cmocka_unit_test(test_reject_bounds),
		cmocka_unit_test(test_reject_seeded),
		cmocka_unit_test(test_parse_pct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
