/*
 * test_psl.c - cmocka tests for src/dns/psl.c
 *
 * What it tests: psl_org_domain() against the Public Suffix List's own
 * test vectors (psl_cases[], written here from the list's published
 * tests/test_psl.txt, https://github.com/publicsuffix/list, CC0; the
 * wildcard cases use *.mm, *.ck with !www.ck and *.kobe.jp with
 * !city.kobe.jp as they stand in Debian's publicsuffix 20230209 list, the
 * one tools/install-deps.sh installs), the names mail traffic meets
 * (mail_cases[]), normalisation (case, trailing dot) and invalid names
 * (invalid_cases[]); a small list given in memory (rule kinds, comments,
 * Unicode rules matched in Punycode, a short output buffer); the fallback
 * to the last two labels when the file is missing, and a failed reload
 * that keeps the list in force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns/psl.h"

struct psl_case {
	const char *host;
	const char *org;	/* expected registrable domain, NULL = none */
};

/* From the PSL test vectors (checkPublicSuffix(host, expected)). */
static const struct psl_case psl_cases[] = {
	/* Mixed case. */
	{"COM", NULL},
	{"example.COM", "example.com"},
	{"WwW.example.COM", "example.com"},
	/* Leading dot. */
	{".com", NULL},
	{".example", NULL},
	{".example.com", NULL},
	{".example.example", NULL},
	/* Unlisted TLD. */
	{"example", NULL},
	{"example.example", "example.example"},
	{"b.example.example", "example.example"},
	{"a.b.example.example", "example.example"},
	/* TLD with only 1 rule. */
	{"biz", NULL},
	{"domain.biz", "domain.biz"},
	{"b.domain.biz", "domain.biz"},
	{"a.b.domain.biz", "domain.biz"},
	/* TLD with some 2-level rules. */
	{"com", NULL},
	{"example.com", "example.com"},
	{"b.example.com", "example.com"},
	{"a.b.example.com", "example.com"},
	{"uk.com", NULL},
	{"example.uk.com", "example.uk.com"},
	{"b.example.uk.com", "example.uk.com"},
	{"a.b.example.uk.com", "example.uk.com"},
	{"test.ac", "test.ac"},
	/* TLD with only 1 (wildcard) rule. */
	{"mm", NULL},
	{"c.mm", NULL},
	{"b.c.mm", "b.c.mm"},
	{"a.b.c.mm", "b.c.mm"},
	/* More complex TLD. */
	{"jp", NULL},
	{"test.jp", "test.jp"},
	{"www.test.jp", "test.jp"},
	{"ac.jp", NULL},
	{"test.ac.jp", "test.ac.jp"},
	{"www.test.ac.jp", "test.ac.jp"},
	{"kyoto.jp", NULL},
	{"test.kyoto.jp", "test.kyoto.jp"},
	{"ide.kyoto.jp", NULL},
	{"b.ide.kyoto.jp", "b.ide.kyoto.jp"},
	{"a.b.ide.kyoto.jp", "b.ide.kyoto.jp"},
	{"c.kobe.jp", NULL},
	{"b.c.kobe.jp", "b.c.kobe.jp"},
	{"a.b.c.kobe.jp", "b.c.kobe.jp"},
	{"city.kobe.jp", "city.kobe.jp"},
	{"www.city.kobe.jp", "city.kobe.jp"},
	/* TLD with a wildcard rule and exceptions. */
	{"ck", NULL},
	{"test.ck", NULL},
	{"b.test.ck", "b.test.ck"},
	{"a.b.test.ck", "b.test.ck"},
	{"www.ck", "www.ck"},
	{"www.www.ck", "www.ck"},
	/* US K12. */
	{"us", NULL},
	{"test.us", "test.us"},
	{"www.test.us", "test.us"},
	{"ak.us", NULL},
	{"test.ak.us", "test.ak.us"},
	{"www.test.ak.us", "test.ak.us"},
	{"k12.ak.us", NULL},
	{"test.k12.ak.us", "test.k12.ak.us"},
	{"www.test.k12.ak.us", "test.k12.ak.us"},
	/* IDN labels. */
	{"食狮.com.cn", "食狮.com.cn"},
	{"食狮.公司.cn", "食狮.公司.cn"},
	{"www.食狮.公司.cn", "食狮.公司.cn"},
	{"shishi.公司.cn", "shishi.公司.cn"},
	{"公司.cn", NULL},
	{"食狮.中国", "食狮.中国"},
	{"www.食狮.中国", "食狮.中国"},
	{"shishi.中国", "shishi.中国"},
	{"中国", NULL},
	/* Same as above, but punycoded. */
	{"xn--85x722f.com.cn", "xn--85x722f.com.cn"},
	{"xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"},
	{"www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"},
	{"shishi.xn--55qx5d.cn", "shishi.xn--55qx5d.cn"},
	{"xn--55qx5d.cn", NULL},
	{"xn--85x722f.xn--fiqs8s", "xn--85x722f.xn--fiqs8s"},
	{"www.xn--85x722f.xn--fiqs8s", "xn--85x722f.xn--fiqs8s"},
	{"shishi.xn--fiqs8s", "shishi.xn--fiqs8s"},
	{"xn--fiqs8s", NULL},
};

/* Names seen in PTR records of big senders. */
static const struct psl_case mail_cases[] = {
	{"mail-dm6nam10on2041.outbound.protection.outlook.com", "outlook.com"},
	{"mail-sor-f41.google.com", "google.com"},
	{"a.b.example.co.uk", "example.co.uk"},
	{"MAIL-SOR-F41.Google.COM.", "google.com"},
	{"o1.ptr1234.sendgrid.net", "sendgrid.net"},
	{"a1-23.smtp-out.amazonses.com", "amazonses.com"},
	{"mx.example.org.", "example.org"},
	{"co.uk", NULL},
	{"example.co.uk.", "example.co.uk"},
};

/* Not a host name: NULL. */
static const char *const invalid_cases[] = {
	"", ".", "..", "a..b.com", "example.com..", "exa mple.com",
	"exa!mple.com", "example.com/x", "@.example.com",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".example.com",		/* a 64-byte label */
};

/* load_default - the installed list (skip when it is not installed) */
static int
load_default(void **state)
{
	char err[256];

	(void)state;
	psl_free();
	if (access(PSL_DEFAULT_PATH, R_OK) != 0) {
		fprintf(stderr, "test_psl: %s missing\n", PSL_DEFAULT_PATH);
		return -1;
	}
	return psl_load(NULL, err, sizeof(err));
}

static int
teardown(void **state)
{
	(void)state;
	psl_free();
	return 0;
}

/* run_cases - each case through psl_org_domain() */
static void
run_cases(const struct psl_case *c, size_t n)
{
	char buf[PSL_NAME_MAX + 1];
	const char *r;
	size_t i;

	for (i = 0; i < n; i++) {
		r = psl_org_domain(c[i].host, buf, sizeof(buf));
		if (c[i].org == NULL && r != NULL)
			fail_msg("%s: expected NULL, got %s", c[i].host, r);
		if (c[i].org != NULL && (r == NULL || strcmp(r, c[i].org)))
			fail_msg("%s: expected %s, got %s", c[i].host,
			    c[i].org, r ? r : "NULL");
		if (r != NULL)
			assert_ptr_equal(r, buf);
	}
}

static void
test_psl_vectors(void **state)
{
	(void)state;
	assert_true(psl_rules() > 5000);
	run_cases(psl_cases, sizeof(psl_cases) / sizeof(psl_cases[0]));
}

static void
test_mail_names(void **state)
{
	(void)state;
	run_cases(mail_cases, sizeof(mail_cases) / sizeof(mail_cases[0]));
}

static void
test_invalid(void **state)
{
	char buf[PSL_NAME_MAX + 1], big[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++)
		if (psl_org_domain(invalid_cases[i], buf, sizeof(buf)) != NULL)
			fail_msg("'%s' accepted", invalid_cases[i]);
	assert_null(psl_org_domain(NULL, buf, sizeof(buf)));
	/* 254 bytes without the dot: too long; 253 is fine */
	memset(big, 'a', sizeof(big));
	for (i = 63; i < 253; i += 64)
		big[i] = '.';
	memcpy(big + 250, "com", 4);
	assert_int_equal(strlen(big), 253);
	assert_non_null(psl_org_domain(big, buf, sizeof(buf)));
	memmove(big + 1, big, 254);
	big[0] = 'a';
	assert_null(psl_org_domain(big, buf, sizeof(buf)));
}

/* A small list in memory: each rule kind, comments, whitespace. */
static const char small_list[] =
    "// comment line\n"
    "  \n"
    "com\n"
    "co.uk   // trailing text after the rule is ignored\n"
    "uk\n"
    "*.wild.test\n"
    "!keep.wild.test\n"
    "Upper.Test\r\n"
    "公司.cn\n"
    "cn\n"
    "a.*.bad\n"
    "// ===END ICANN DOMAINS===\n";

static void
test_small_list(void **state)
{
	static const struct psl_case c[] = {
		{"x.y.example.com", "example.com"},
		{"www.example.co.uk", "example.co.uk"},
		{"co.uk", NULL},
		{"a.b.wild.test", "a.b.wild.test"},
		{"b.wild.test", NULL},
		{"x.keep.wild.test", "keep.wild.test"},
		{"keep.wild.test", "keep.wild.test"},
		{"a.b.upper.test", "b.upper.test"},
		{"www.x.xn--55qx5d.cn", "x.xn--55qx5d.cn"},
		{"xn--55qx5d.cn", NULL},
		{"q.a.z.bad", "z.bad"},	/* a.*.bad is not a valid rule */
		{"unlisted", NULL},
		{"x.unlisted", "x.unlisted"},
	};
	char err[128], buf[11];

	(void)state;
	assert_int_equal(psl_load_mem(small_list, sizeof(small_list) - 1,
	    err, sizeof(err)), 0);
	assert_int_equal(psl_rules(), 8);
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* a short buffer gives NULL, never a truncated name */
	assert_null(psl_org_domain("www.example.com", buf, 8));
	assert_string_equal(psl_org_domain("www.exampl.com", buf, 11),
	    "exampl.com");
	/* an empty list is refused and the old one stays */
	assert_int_equal(psl_load_mem("// nothing\n", 11, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "no rules in the list");
	assert_int_equal(psl_rules(), 8);
	assert_int_equal(psl_load("/nonexistent/psl.dat", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "/nonexistent/psl.dat: "));
	assert_int_equal(psl_rules(), 8);
}

static void
test_fallback(void **state)
{
	static const struct psl_case c[] = {
		{"mail-sor-f41.google.com", "google.com"},
		{"a.b.example.co.uk", "co.uk"},	/* what a list prevents */
		{"com", NULL},
		{"example.com.", "example.com"},
	};
	char err[128];

	(void)state;
	psl_free();
	assert_int_equal(psl_load("/nonexistent/psl.dat", err, sizeof(err)),
	    -1);
	assert_int_equal(psl_rules(), 0);
	run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void
test_lazy_default(void **state)
{
	char buf[PSL_NAME_MAX + 1];

	(void)state;
	psl_free();
	assert_string_equal(psl_org_domain("a.b.example.co.uk", buf,
	    sizeof(buf)), "example.co.uk");
	assert_true(psl_rules() > 5000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_psl_vectors, load_default,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mail_names, load_default,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid, load_default,
		    teardown),
		cmocka_unit_test_teardown(test_small_list, teardown),
		cmocka_unit_test_teardown(test_fallback, teardown),
		cmocka_unit_test_teardown(test_lazy_default, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
