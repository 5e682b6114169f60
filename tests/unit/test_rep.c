/*
 * test_rep.c - cmocka tests for the store-independent part of src/rep/rep.c
 *
 * What it tests: the estimate (estimate_cases[]: the prior, good only, bad
 * only, deferred counting for nothing, feedback, DNS block-list listings
 * as bad evidence), the decay factor
 * (decay_cases[]), merging counts of different times (merge_cases[]: later,
 * earlier, empty), the keys of a session (keys_cases[]: IPv4, IPv6 /64,
 * IPv4-mapped IPv6, empty inputs, no client, prefix lengths from the
 * configuration), the kind table (kind_rows[]: each row's index, name,
 * default weight; rep_kind_parse() and an unknown name), each kind's
 * derivation alone (derive_cases[]), rep_keys_derive() without
 * rep_open() and rep_keys_for() before it (/24 and /64), and the
 * memory-only cache: updates are visible at once,
 * decay with the (frozen) clock, the CLOCK bound on rep_cache_size with a
 * hot key surviving, bad arguments ignored, lookups before rep_open(),
 * and a "listed" update raising p_spam and the evidence.
 * The store backends are tested in test_rep_store.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "rep/rep.h"
#include "rep/rep_store.h"

#define T0	1800000000000LL		/* a fixed "now", ms */
#define HOUR	3600000LL
#define EPS	1e-9

static void
conf_mem(struct conf *cf, long cache, long v4, long v6)
{
	memset(cf, 0, sizeof(*cf));
	cf->rep_half_life = 7 * 24 * HOUR;
	cf->rep_prefix_v4 = v4;
	cf->rep_prefix_v6 = v6;
	cf->rep_cache_size = cache;
	cf->rep_key_ttl = 90 * 24 * HOUR;
}

struct estimate_case {
	const char *name;
	double	c[OC_NLEARN];	/* delivered rejected deferred
					   abandoned protocol_error spam ham
					   listed */
	double	p, evidence;
};

static const struct estimate_case estimate_cases[] = {
	{"prior only", {0, 0, 0, 0, 0, 0, 0}, 0.5, 0},
	{"8 delivered", {8, 0, 0, 0, 0, 0, 0}, 1.0 / 10, 8},
	{"8 rejected", {0, 8, 0, 0, 0, 0, 0}, 9.0 / 10, 8},
	{"deferred counts nothing", {0, 0, 10, 0, 0, 0, 0}, 0.5, 0},
	{"abandoned and protocol errors are bad", {0, 0, 0, 3, 1, 0, 0},
	    5.0 / 6, 4},
	{"feedback", {0, 0, 0, 0, 0, 6, 2}, 7.0 / 10, 8},
	{"mixed", {2, 5, 1, 0, 0, 3, 0}, 9.0 / 12, 10},
	{"listed is bad evidence", {0, 0, 0, 0, 0, 0, 0, 3}, 4.0 / 5, 3},
	{"listed against delivered", {6, 0, 0, 0, 0, 0, 0, 2}, 3.0 / 10, 8},
	{"listed with the other bad", {1, 1, 0, 1, 1, 1, 1, 1}, 6.0 / 9, 7},
};

static void
test_estimate(void **state)
{
	struct rep_est e;
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(estimate_cases) / sizeof(estimate_cases[0]);
	    i++) {
		const struct estimate_case *tc = &estimate_cases[i];

		rep_estimate(tc->c, &e);
		if (fabs(e.p_spam - tc->p) > EPS ||
		    fabs(e.evidence - tc->evidence) > EPS)
			fail_msg("%s: p %g evidence %g, want %g %g", tc->name,
			    e.p_spam, e.evidence, tc->p, tc->evidence);
		assert_true(fabs(e.log_odds - log(tc->p / (1 - tc->p))) < EPS);
		assert_memory_equal(e.counts, tc->c, sizeof(tc->c));
	}
}

struct decay_case {
	double	half_life;
	int64_t	dt;
	double	want;
};

static const struct decay_case decay_cases[] = {
	{1000, 0, 1.0},
	{1000, 1000, 0.5},
	{1000, 2000, 0.25},
	{1000, 500, 0.70710678118654752},
	{1000, -5000, 1.0},		/* clocks that step back never grow */
	{7 * 24 * HOUR, 7 * 24 * HOUR, 0.5},
};

static void
test_decay(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(decay_cases) / sizeof(decay_cases[0]); i++)
		assert_true(fabs(rep_decay(decay_cases[i].half_life,
		    decay_cases[i].dt) - decay_cases[i].want) < 1e-12);
}

struct merge_case {
	const char *name;
	double	c;			/* count in outcome 0 */
	int64_t	t;
	double	d;
	int64_t	td;
	double	want_c;
	int64_t	want_t;
};

static const struct merge_case merge_cases[] = {
	{"into nothing", 0, 0, 3, 5000, 3, 5000},
	{"later delta decays the old count", 8, 1000, 1, 2000, 5, 2000},
	{"earlier delta is decayed itself", 8, 2000, 4, 1000, 10, 2000},
	{"same time adds", 2, 1000, 3, 1000, 5, 1000},
};

static void
test_merge(void **state)
{
	double	c[OC_NLEARN], d[OC_NLEARN];
	int64_t	t;
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(merge_cases) / sizeof(merge_cases[0]); i++) {
		const struct merge_case *tc = &merge_cases[i];

		memset(c, 0, sizeof(c));
		memset(d, 0, sizeof(d));
		c[0] = tc->c;
		d[0] = tc->d;
		t = tc->t;
		rep_merge(c, &t, d, tc->td, 1000);
		if (fabs(c[0] - tc->want_c) > EPS || t != tc->want_t)
			fail_msg("%s: %g at %lld, want %g at %lld", tc->name,
			    c[0], (long long)t, tc->want_c,
			    (long long)tc->want_t);
	}
}

struct keys_case {
	const char *name;
	const char *ip;			/* NULL = no client */
	int	v4, v6;			/* prefix bits from the configuration */
	const char *rawsig, *os, *domain;
	const char *want[REPK_NKINDS];	/* "kind=text", in order */
};

static const struct keys_case keys_cases[] = {
	{"ipv4, everything", "192.0.2.7", 24, 64, "4:64+0:mss", "Linux 3.x",
	    "outlook.com", {"ip=192.0.2.7", "prefix=192.0.2.0/24",
	    "rawsig=4:64+0:mss", "os=Linux 3.x",
	    "prefix_rawsig=192.0.2.0/24|4:64+0:mss", "domain=outlook.com"}},
	{"ipv6 /64", "2001:db8:1:2:3:4:5:6", 24, 64, NULL, "Windows", NULL,
	    {"ip=2001:db8:1:2:3:4:5:6", "prefix=2001:db8:1:2::/64",
	    "os=Windows"}},
	{"ipv4-mapped folds to ipv4", "::ffff:198.51.100.200", 24, 64, "h",
	    "", "", {"ip=198.51.100.200", "prefix=198.51.100.0/24",
	    "rawsig=h", "prefix_rawsig=198.51.100.0/24|h"}},
	{"prefixes from the configuration", "203.0.113.77", 16, 48, "", NULL,
	    NULL, {"ip=203.0.113.77", "prefix=203.0.0.0/16"}},
	{"ipv6 /48", "2001:db8:aa:bb::1", 16, 48, NULL, NULL, NULL,
	    {"ip=2001:db8:aa:bb::1", "prefix=2001:db8:aa::/48"}},
	{"no client", NULL, 24, 64, "h", "OS", "example.org",
	    {"rawsig=h", "os=OS", "domain=example.org"}},
};

static void
test_keys_for(void **state)
{
	struct rep_key keys[REPK_NKINDS];
	struct sockaddr_storage ss;
	struct conf cf;
	char	got[256], err[256];
	size_t	i;
	int	n, j, want;

	(void)state;
	for (i = 0; i < sizeof(keys_cases) / sizeof(keys_cases[0]); i++) {
		const struct keys_case *tc = &keys_cases[i];
		struct sockaddr *sa = NULL;

		conf_mem(&cf, 100, tc->v4, tc->v6);
		assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
		memset(&ss, 0, sizeof(ss));
		if (tc->ip != NULL) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

			if (inet_pton(AF_INET, tc->ip, &sin->sin_addr) == 1)
				sin->sin_family = AF_INET;
			else {
				assert_int_equal(inet_pton(AF_INET6, tc->ip,
				    &sin6->sin6_addr), 1);
				sin6->sin6_family = AF_INET6;
			}
			sa = (struct sockaddr *)&ss;
		}
		n = rep_keys_for(sa, tc->rawsig, tc->os, tc->domain, keys);
		for (want = 0; want < REPK_NKINDS && tc->want[want]; want++)
			;
		if (n != want)
			fail_msg("%s: %d keys, want %d", tc->name, n, want);
		for (j = 0; j < n; j++) {
			snprintf(got, sizeof(got), "%s=%s",
			    rep_keykind_name(keys[j].kind), keys[j].text);
			if (strcmp(got, tc->want[j]) != 0)
				fail_msg("%s: key %d is '%s', want '%s'",
				    tc->name, j, got, tc->want[j]);
		}
		rep_close();
	}
}

/* Known answers for the table: order, names, default weights. */
static const struct {
	enum rep_keykind kind;
	const char *name;
	double	weight;
} kind_rows[] = {
	{REPK_IP, "ip", 1},
	{REPK_PREFIX, "prefix", 0.5},
	{REPK_RAWSIG, "rawsig", 1.5},
	{REPK_OS, "os", 0.3},
	{REPK_PREFIX_RAWSIG, "prefix_rawsig", 1},
	{REPK_DOMAIN, "domain", 1.5},
};

static void
test_kind_table(void **state)
{
	size_t	i;

	(void)state;
	assert_int_equal(sizeof(kind_rows) / sizeof(kind_rows[0]), REPK_NKINDS);
	for (i = 0; i < REPK_NKINDS; i++) {
		const struct rep_kind *r = &rep_kinds[i];

		if (r->kind != (enum rep_keykind)i || r->name == NULL ||
		    r->derive == NULL)
			fail_msg("row %zu: kind %d, name %s", i, (int)r->kind,
			    r->name ? r->name : "(null)");
		assert_int_equal(r->kind, kind_rows[i].kind);
		assert_string_equal(r->name, kind_rows[i].name);
		assert_true(r->weight == kind_rows[i].weight);
		assert_string_equal(rep_keykind_name(kind_rows[i].kind),
		    kind_rows[i].name);
		assert_int_equal(rep_kind_parse(kind_rows[i].name),
		    (int)kind_rows[i].kind);
	}
	assert_string_equal(rep_keykind_name(REPK_NKINDS), "?");
	assert_string_equal(rep_keykind_name((enum rep_keykind)-1), "?");
	assert_int_equal(rep_kind_parse("asn"), -1);
	assert_int_equal(rep_kind_parse(""), -1);
	assert_int_equal(rep_kind_parse("IP"), -1);
	assert_int_equal(rep_kind_parse("prefix_"), -1);
}

/* tosa - a sockaddr for a numeric address, in ss; NULL for NULL */
static struct sockaddr *
tosa(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (ip == NULL)
		return NULL;
	if (strcmp(ip, "unix") == 0) {
		ss->ss_family = AF_UNIX;
		return (struct sockaddr *)ss;
	}
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return (struct sockaddr *)ss;
}

/* One kind's derivation alone: its text, or NULL for no key. */
static const struct {
	enum rep_keykind kind;
	const char *ip, *rawsig, *os, *domain;
	int	v4, v6;
	const char *want;
} derive_cases[] = {
	{REPK_IP, "192.0.2.7", NULL, NULL, NULL, 24, 64, "192.0.2.7"},
	{REPK_IP, "::ffff:192.0.2.7", NULL, NULL, NULL, 24, 64, "192.0.2.7"},
	{REPK_IP, "2001:db8::7", NULL, NULL, NULL, 24, 64, "2001:db8::7"},
	{REPK_IP, NULL, "h", "os", "d", 24, 64, NULL},
	{REPK_IP, "unix", NULL, NULL, NULL, 24, 64, NULL},
	{REPK_PREFIX, "192.0.2.7", NULL, NULL, NULL, 24, 64, "192.0.2.0/24"},
	{REPK_PREFIX, "192.0.2.7", NULL, NULL, NULL, 20, 64, "192.0.0.0/20"},
	{REPK_PREFIX, "192.0.2.7", NULL, NULL, NULL, 32, 64, "192.0.2.7/32"},
	{REPK_PREFIX, "2001:db8:1:2:3::9", NULL, NULL, NULL, 24, 56,
	    "2001:db8:1::/56"},
	{REPK_PREFIX, "::ffff:10.1.2.3", NULL, NULL, NULL, 8, 128,
	    "10.0.0.0/8"},
	{REPK_PREFIX, "unix", NULL, NULL, NULL, 24, 64, NULL},
	{REPK_RAWSIG, "192.0.2.7", "4:64+0:mss", NULL, NULL, 24, 64,
	    "4:64+0:mss"},
	{REPK_RAWSIG, "192.0.2.7", "", "Linux", NULL, 24, 64, NULL},
	{REPK_OS, NULL, NULL, "Windows XP", NULL, 24, 64, "Windows XP"},
	{REPK_OS, NULL, "h", NULL, NULL, 24, 64, NULL},
	{REPK_PREFIX_RAWSIG, "198.51.100.9", "abc", NULL, NULL, 16, 64,
	    "198.51.0.0/16|abc"},
	{REPK_PREFIX_RAWSIG, "2001:db8::1", "abc", NULL, NULL, 24, 48,
	    "2001:db8::/48|abc"},
	{REPK_PREFIX_RAWSIG, NULL, "abc", NULL, NULL, 24, 64, NULL},
	{REPK_PREFIX_RAWSIG, "198.51.100.9", NULL, "os", "d", 24, 64, NULL},
	{REPK_DOMAIN, NULL, NULL, NULL, "example.org", 24, 64, "example.org"},
	{REPK_DOMAIN, "192.0.2.7", "h", "os", "", 24, 64, NULL},
};

static void
test_derive_each(void **state)
{
	struct sockaddr_storage ss;
	struct rep_key keys[REPK_NKINDS];
	const char *text;
	size_t	i;
	int	n, k;

	(void)state;
	for (i = 0; i < sizeof(derive_cases) / sizeof(derive_cases[0]); i++) {
		struct rep_keyin in;

		in.client = tosa(derive_cases[i].ip, &ss);
		in.rawsig_hash = derive_cases[i].rawsig;
		in.os = derive_cases[i].os;
		in.domain = derive_cases[i].domain;
		n = rep_keys_derive(&in, derive_cases[i].v4,
		    derive_cases[i].v6, keys);
		for (k = 0, text = NULL; k < n; k++)
			if (keys[k].kind == derive_cases[i].kind)
				text = keys[k].text;
		if ((text != NULL) != (derive_cases[i].want != NULL) ||
		    (text != NULL && strcmp(text, derive_cases[i].want) != 0))
			fail_msg("case %zu (%s): '%s', want %s", i,
			    rep_keykind_name(derive_cases[i].kind),
			    text ? text : "no key", derive_cases[i].want ?
			    derive_cases[i].want : "no key");
	}
}

/* rep_keys_derive() needs no rep_open(); rep_keys_for() before it is /24 /64 */
static void
test_derive_offline(void **state)
{
	static const char *const want16[] = {"ip=203.0.113.77",
	    "prefix=203.0.0.0/16", "rawsig=r", "os=OS",
	    "prefix_rawsig=203.0.0.0/16|r", "domain=d.example"};
	static const char *const want24[] = {"ip=203.0.113.77",
	    "prefix=203.0.113.0/24", "rawsig=r", "os=OS",
	    "prefix_rawsig=203.0.113.0/24|r", "domain=d.example"};
	struct rep_key keys[REPK_NKINDS];
	struct sockaddr_storage ss;
	struct rep_keyin in;
	char	got[256];
	int	n, j;

	(void)state;
	in.client = tosa("203.0.113.77", &ss);
	in.rawsig_hash = "r";
	in.os = "OS";
	in.domain = "d.example";
	n = rep_keys_derive(&in, 16, 48, keys);
	assert_int_equal(n, REPK_NKINDS);
	for (j = 0; j < n; j++) {
		snprintf(got, sizeof(got), "%s=%s",
		    rep_keykind_name(keys[j].kind), keys[j].text);
		assert_string_equal(got, want16[j]);
	}
	n = rep_keys_for(in.client, "r", "OS", "d.example", keys);
	assert_int_equal(n, REPK_NKINDS);
	for (j = 0; j < n; j++) {
		snprintf(got, sizeof(got), "%s=%s",
		    rep_keykind_name(keys[j].kind), keys[j].text);
		assert_string_equal(got, want24[j]);
	}
	in.client = tosa("2001:db8:1:2:3::9", &ss);
	in.rawsig_hash = in.os = in.domain = NULL;
	n = rep_keys_derive(&in, 24, 48, keys);
	assert_int_equal(n, 2);
	assert_string_equal(keys[1].text, "2001:db8:1::/48");
	in.client = NULL;
	assert_int_equal(rep_keys_derive(&in, 24, 64, keys), 0);
}

static struct rep_key
mkkey(enum rep_keykind kind, const char *text)
{
	struct rep_key k;

	memset(&k, 0, sizeof(k));
	k.kind = kind;
	snprintf(k.text, sizeof(k.text), "%s", text);
	return k;
}

static void
test_memory_update_decay(void **state)
{
	struct rep_key k = mkkey(REPK_OS, "Windows XP");
	struct rep_key other = mkkey(REPK_IP, "Windows XP");	/* other kind */
	struct rep_est e;
	struct conf cf;
	char	err[256];

	(void)state;
	conf_mem(&cf, 100, 24, 64);
	cf.rep_half_life = HOUR;
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	rep_set_clock(T0);
	assert_int_equal(rep_lookup(&k, &e), 0);
	assert_true(e.evidence == 0 && e.p_spam == 0.5);
	rep_update(&k, OC_REJECTED, 1);
	rep_update(&k, OC_REJECTED, 1);
	rep_update(&k, OC_SPAM, 2);
	rep_update(&k, OC_DELIVERED, 4);
	rep_update(&k, OC_DEFERRED, 3);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_REJECTED] - 2) < EPS);
	assert_true(fabs(e.evidence - 8) < EPS);
	assert_true(fabs(e.p_spam - 5.0 / 10) < EPS);
	assert_true(fabs(e.counts[OC_DEFERRED] - 3) < EPS);
	assert_int_equal(rep_lookup(&other, &e), 0);
	/* one half-life later everything counts half */
	rep_set_clock(T0 + HOUR);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.evidence - 4) < EPS);
	assert_true(fabs(e.p_spam - 5.0 / 10) < EPS);
	rep_update(&k, OC_DELIVERED, 2);	/* 2 + 2 delivered, 2 bad */
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_DELIVERED] - 4) < EPS);
	assert_true(fabs(e.p_spam - 3.0 / 8) < EPS);
	/* ignored: no weight, bad outcome, empty key */
	rep_update(&k, OC_SPAM, 0);
	rep_update(&k, OC_SPAM, -1);
	rep_update(&k, OC_NLEARN, 1);
	rep_update(&k, (enum outcome)-1, 1);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_SPAM] - 1) < EPS);
	rep_set_clock(0);
	rep_close();
}

/* A DNS block list listing: bad evidence, named "listed", decays too. */
static void
test_memory_listed(void **state)
{
	struct rep_key k = mkkey(REPK_RAWSIG, "4:64+0:1460:mss,sok,ts");
	struct rep_est e, before;
	struct conf cf;
	char	err[256];
	int	i;

	(void)state;
	assert_string_equal(outcome_name(OC_LISTED), "listed");
	assert_string_equal(outcome_name(OC_HAM), "ham");
	assert_string_equal(outcome_name(OC_N), "?");
	assert_int_equal(outcome_parse("listed"), OC_LISTED);
	assert_int_equal(outcome_flags(OC_BACKEND_ERROR) & (OC_F_GOOD | OC_F_BAD), 0);
	conf_mem(&cf, 100, 24, 64);
	cf.rep_half_life = HOUR;
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	rep_set_clock(T0);
	rep_update(&k, OC_DELIVERED, 1);
	assert_int_equal(rep_lookup(&k, &before), 1);
	rep_update(&k, OC_LISTED, 1);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_LISTED] - 1) < EPS);
	assert_true(e.p_spam > before.p_spam);
	assert_true(fabs(e.evidence - (before.evidence + 1)) < EPS);
	assert_true(fabs(e.p_spam - 2.0 / 4) < EPS);	/* 1 bad, 1 good */
	/* a botnet's listed half: the key turns bad on listings alone */
	for (i = 0; i < 9; i++)
		rep_update(&k, OC_LISTED, 1);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.p_spam - 11.0 / 13) < EPS);
	assert_true(e.log_odds > 1.5);
	rep_set_clock(T0 + HOUR);
	assert_int_equal(rep_lookup(&k, &e), 1);
	assert_true(fabs(e.counts[OC_LISTED] - 5) < EPS);
	assert_true(fabs(e.evidence - 5.5) < EPS);
	rep_set_clock(0);
	rep_close();
}

static void
test_cache_bound(void **state)
{
	struct rep_key k, hot = mkkey(REPK_RAWSIG, "hot");
	struct rep_counters c;
	struct rep_est e;
	struct conf cf;
	char	err[256], text[32];
	int	i;

	(void)state;
	conf_mem(&cf, 64, 24, 64);
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	rep_update(&hot, OC_SPAM, 1);
	for (i = 0; i < 5000; i++) {
		snprintf(text, sizeof(text), "10.0.%d.%d", i / 256, i % 256);
		k = mkkey(REPK_IP, text);
		rep_update(&k, OC_DELIVERED, 1);
		assert_int_equal(rep_lookup(&hot, &e), 1);
		rep_counters(&c);
		assert_true(c.cached <= 64);
	}
	rep_counters(&c);
	assert_int_equal(c.cached, 64);
	assert_int_equal(c.evictions, 5000 + 1 - 64);
	assert_true(fabs(e.counts[OC_SPAM] - 1) < 1e-3);
	k = mkkey(REPK_IP, "10.0.0.0");		/* long evicted */
	assert_int_equal(rep_lookup(&k, &e), 0);
	assert_true(e.evidence == 0);
	rep_close();
}

static void
test_closed(void **state)
{
	struct rep_key k = mkkey(REPK_IP, "192.0.2.1");
	struct rep_est e;
	struct conf cf;
	char	err[256];

	(void)state;
	assert_int_equal(rep_lookup(&k, &e), 0);
	assert_true(e.p_spam == 0.5);
	rep_update(&k, OC_SPAM, 1);		/* ignored, no crash */
	rep_close();				/* harmless */
	conf_mem(&cf, 10, 24, 64);
	snprintf(cf.rep_store, sizeof(cf.rep_store), "mysql://x");
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad rep_store 'mysql://x'"));
	snprintf(cf.rep_store, sizeof(cf.rep_store), "sqlite:");
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "need sqlite:/path"));
	snprintf(cf.rep_store, sizeof(cf.rep_store), "redis://h:99999");
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "need redis://host[:port]"));
	cf.rep_store[0] = '\0';
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already open"));
	rep_close();
}

/* ------------------------------------------------------------ patience */

struct bucket_case {
	double	seconds;
	int	bucket;
};

static const struct bucket_case bucket_cases[] = {
	{0, 0}, {0.999, 0}, {1, 1}, {2.5, 2}, {3, 3}, {4.9, 3}, {9.99, 5},
	{10, 6}, {14.9, 6}, {21, 8}, {44, 9}, {59, 10}, {60, 11},
	{100, 12}, {299, 13}, {300, 14}, {599.9, 14}, {600, 15}, {1e9, 15},
	{-1, 0},
};

static void
test_patience_bucket(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bucket_cases) / sizeof(bucket_cases[0]); i++)
		if (rep_patience_bucket(bucket_cases[i].seconds) !=
		    bucket_cases[i].bucket)
			fail_msg("%g s: bucket %d, want %d",
			    bucket_cases[i].seconds,
			    rep_patience_bucket(bucket_cases[i].seconds),
			    bucket_cases[i].bucket);
	assert_string_equal(rep_patience_name(REP_PAT_GAVEUP), "gaveup");
	assert_string_equal(rep_patience_name(REP_PAT_BAD), "bad");
	assert_string_equal(rep_patience_name(REP_PAT_NKINDS), "?");
	assert_string_equal(rep_pat_field(0), "pat_gaveup_0");
	assert_string_equal(rep_pat_field(REP_PAT_NBUCKETS + 15),
	    "pat_bad_15");
	assert_string_equal(rep_pat_field(REP_PAT_NVAL), "?");
}

struct quantile_case {
	const char *name;
	double	h[REP_PAT_NBUCKETS];	/* sessions per bucket */
	double	q, want, n;
};

/*
 * Known answers: the bucket holding q x n, interpolated linearly inside
 * it; 600 in the open last bucket; -1 for an empty histogram.
 */
static const struct quantile_case quantile_cases[] = {
	{"empty", {0}, 0.5, -1, 0},
	{"one bucket, p90: 10 + 0.9 x 5", {[6] = 10}, 0.9, 14.5, 10},
	{"one bucket, p0: its lower edge", {[6] = 10}, 0, 10, 10},
	{"one bucket, p100: its upper edge", {[6] = 10}, 1, 15, 10},
	{"27 at [10,15), 3 at [20,30): p90 ends the first",
	    {[6] = 27, [8] = 3}, 0.9, 15, 30},
	{"27 at [10,15), 3 at [20,30): p95 = 20 + 1.5/3 x 10",
	    {[6] = 27, [8] = 3}, 0.95, 25, 30},
	{"830 sessions, 80/15/5 % at 10 s, 21 s, 100 s: p90",
	    {[6] = 664, [8] = 124.5, [12] = 41.5}, 0.9, 26.666666666666668,
	    830},
	{"the open last bucket", {[0] = 1, [15] = 9}, 0.5, 600, 10},
	{"the first bucket: [0, 1)", {[0] = 4}, 0.25, 0.25, 4},
	{"q out of range is clamped", {[6] = 10}, 7, 15, 10},
	{"decayed fractions: 3 + 0.375/0.5 x 2", {[3] = 0.5, [4] = 0.25}, 0.5,
	    4.5, 0.75},
};

static void
test_patience_quantile(void **state)
{
	const struct quantile_case *c;
	struct rep_est e;
	double	got, n;
	size_t	i;
	int	b;

	(void)state;
	for (i = 0; i < sizeof(quantile_cases) / sizeof(quantile_cases[0]);
	    i++) {
		c = &quantile_cases[i];
		memset(&e, 0, sizeof(e));
		for (b = 0; b < REP_PAT_NBUCKETS; b++) {
			e.patience[REP_PAT_BAD][b] = c->h[b];
			e.patience_n[REP_PAT_BAD] += c->h[b];
		}
		got = rep_patience_quantile(&e, REP_PAT_BAD, c->q, &n);
		if (fabs(got - c->want) > 1e-9 || fabs(n - c->n) > 1e-9)
			fail_msg("%s: %g (n=%g), want %g (n=%g)", c->name, got,
			    n, c->want, c->n);
		/* the other kind is empty */
		assert_true(rep_patience_quantile(&e, REP_PAT_GAVEUP, c->q,
		    NULL) == -1);
	}
	e.patience_n[REP_PAT_BAD] = -1;		/* rep_lookup(): not read */
	assert_true(rep_patience_quantile(&e, REP_PAT_BAD, 0.5, &n) == -1);
	assert_true(n == 0);
}

/* Memory only: visible at once, decayed from their own time, and the
 * counts' time is not theirs. */
static void
test_memory_patience(void **state)
{
	struct conf cf;
	struct rep_key k = { REPK_OS, "Windows 10" };
	struct rep_est e;
	char	err[256];
	int	i;

	(void)state;
	conf_mem(&cf, 64, 24, 64);
	assert_int_equal(rep_open(NULL, &cf, err, sizeof(err)), 0);
	rep_set_clock(T0);
	for (i = 0; i < 8; i++)
		rep_update_patience(&k, REP_PAT_GAVEUP, 10);	/* [10, 15) */
	for (i = 0; i < 2; i++)
		rep_update_patience(&k, REP_PAT_GAVEUP, 21);	/* [20, 30) */
	rep_update_patience(&k, REP_PAT_GAVEUP, -3);		/* ignored */
	rep_update_patience(&k, REP_PAT_GAVEUP, NAN);		/* ignored */
	rep_update_patience(&k, REP_PAT_NKINDS, 10);		/* ignored */
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience_n[REP_PAT_GAVEUP] - 10) < 1e-6);
	assert_true(e.patience_n[REP_PAT_BAD] == 0);
	assert_true(e.evidence == 0);
	/* p80: 8 of 10 end at 15; p90: 20 + 0.5 x 10 */
	assert_true(fabs(rep_patience_quantile(&e, REP_PAT_GAVEUP, 0.8, NULL) -
	    15) < 1e-5);
	assert_true(fabs(rep_patience_quantile(&e, REP_PAT_GAVEUP, 0.9, NULL) -
	    25) < 1e-5);
	/* a count one half-life later does not decay or move them */
	rep_set_clock(T0 + 7 * 24 * HOUR);
	rep_update(&k, OC_DELIVERED, 1);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience_n[REP_PAT_GAVEUP] - 5) < 1e-6);
	assert_true(fabs(e.patience[REP_PAT_GAVEUP][8] - 1) < 1e-6);
	assert_true(fabs(e.counts[OC_DELIVERED] - 1) < EPS);
	/* one more session then: 4 + 1 + 1 */
	rep_update_patience(&k, REP_PAT_BAD, 21);
	rep_update_patience(&k, REP_PAT_GAVEUP, 21);
	assert_int_equal(rep_lookup_patience(&k, &e), 1);
	assert_true(fabs(e.patience_n[REP_PAT_GAVEUP] - 6) < 1e-6);
	assert_true(fabs(e.patience[REP_PAT_GAVEUP][8] - 2) < 1e-6);
	assert_true(fabs(e.patience_n[REP_PAT_BAD] - 1) < 1e-6);
	rep_close();
	rep_set_clock(0);
	/* closed: nothing */
	rep_update_patience(&k, REP_PAT_GAVEUP, 10);
	assert_int_equal(rep_lookup_patience(&k, &e), 0);
	assert_true(e.patience_n[REP_PAT_GAVEUP] == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_estimate),
		cmocka_unit_test(test_decay),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_keys_for),
		cmocka_unit_test(test_kind_table),
		cmocka_unit_test(test_derive_each),
		cmocka_unit_test(test_derive_offline),
		cmocka_unit_test(test_memory_update_decay),
		cmocka_unit_test(test_memory_listed),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_closed),
		cmocka_unit_test(test_patience_bucket),
		cmocka_unit_test(test_patience_quantile),
		cmocka_unit_test(test_memory_patience),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
