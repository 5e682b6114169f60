/*
 * test_dnsbl.c - cmocka tests for src/dnsbl/dnsbl.c
 *
 * What it tests, with no network beyond loopback:
 *   - dnsbl_query_name() on name_cases[] (IPv4, IPv6 nibbles, v4-mapped,
 *     a buffer too short, a non-IP family);
 *   - dnsbl_sites parsing on site_cases[] through dnsbl_init(): good
 *     entries (filters, ranges, lists, weights, commas) and each error with
 *     its message;
 *   - dnsbl_result_json() and its short-buffer error;
 *   - lookups against a table-driven fake DNS server that runs on the same
 *     event loop (fake_rules[], in the manner of libevent's regress_dns):
 *     lookup_cases[] (weights, allow lists, filters, several answers,
 *     refusal codes, SERVFAIL, A records outside 127/8, garbage,
 *     truncated and TC replies, a wrong query id, an IPv6 client);
 *   - the callback is never run from inside dnsbl_lookup(), also on a cache
 *     hit; dnsbl_cancel() before the answer; the cache (no second query),
 *     the negative TTL and the DNS TTL expiring, eviction at
 *     dnsbl_cache_size; a silent server timing out within dnsbl_timeout;
 *     the RFC 5782 probe disabling a list that answers for everything and
 *     one that does not list 127.0.0.2, and re-enabling it; reconfiguration
 *     (new weights, bad syntax keeps the old lists, lists added to and
 *     removed from a daemon that started with none).
 * The real-server cases (rbldnsd) are in tests/blackbox/test_dnsbl.py.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>
#include <event2/event.h>
#include <event2/util.h>

#include "conf/conf.h"
#include "dnsbl/dnsbl.h"
#include "util/log.h"

/* ---------------------------------------------------------------- names */

struct name_case {
	const char *ip;		/* NULL = AF_UNIX */
	const char *zone;
	size_t	len;		/* buffer size */
	const char *want;	/* NULL = -1 */
};

static const struct name_case name_cases[] = {
	{"192.0.2.1", "zen.test", 256, "1.2.0.192.zen.test"},
	{"127.0.0.2", "bl.example.org", 256, "2.0.0.127.bl.example.org"},
	{"::ffff:198.51.100.7", "bl.test", 256, "7.100.51.198.bl.test"},
	{"2001:db8::1", "v6.test", 256,
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
	    "v6.test"},
	{"2001:db8:1234:5678:9abc:def0:1:ff", "x.y", 256,
	    "f.f.0.0.1.0.0.0.0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.8.b.d.0.1.0.0.2."
	    "x.y"},
	{"192.0.2.1", "zen.test", 18, NULL},	/* one byte short */
	{"192.0.2.1", "zen.test", 19, "1.2.0.192.zen.test"},
	{"2001:db8::1", "v6.test", 60, NULL},
	{NULL, "zen.test", 256, NULL},
};

static void
to_sa(const char *ip, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	assert_int_equal(evutil_parse_sockaddr_port(ip, (struct sockaddr *)ss,
	    &len), 0);
}

static void
test_query_name(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
	char buf[256];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];

		if (c->ip == NULL) {
			memset(&ss, 0, sizeof(ss));
			sun->sun_family = AF_UNIX;
		} else
			to_sa(c->ip, &ss);
		r = dnsbl_query_name((struct sockaddr *)&ss, c->zone, buf,
		    c->len);
		if (c->want == NULL) {
			if (r != -1)
				fail_msg("case %zu: got %s", i, buf);
			continue;
		}
		assert_int_equal(r, (int)strlen(c->want));
		assert_string_equal(buf, c->want);
	}
}

/* ---------------------------------------------------------------- config */

static struct event_base *base;

/* load - defaults plus overrides ("name=value", NULL-terminated) */
static struct conf *
load(const char *first, ...)
{
	char *ov[16], err[256];
	struct conf *cf;
	va_list ap;
	const char *s;
	int n = 0;

	va_start(ap, first);
	for (s = first; s != NULL && n < 16; s = va_arg(ap, const char *))
		ov[n++] = (char *)(uintptr_t)s;
	va_end(ap);
	cf = conf_load(NULL, ov, n, err, sizeof(err));
	if (cf == NULL)
		fail_msg("conf_load: %s", err);
	return cf;
}

struct site_case {
	const char *sites;
	const char *err;	/* NULL = accepted */
};

static const struct site_case site_cases[] = {
	{"zen.test", NULL},
	{"zen.test*3", NULL},
	{"Zen.Test=127.0.0.2*-5", NULL},
	{"zen.test=127.0.0.[2..11]*2.5 bl.test", NULL},
	{"zen.test=127.0.0.[2;4;10..11], wl.test=127.0.[0..255].[1..3]*-1",
	    NULL},
	{"a-b_c.example.org=[127].0.0.[2]", NULL},
	{"zen.test*x", "dnsbl_sites: bad weight in 'zen.test*x'"},
	{"zen.test*", "dnsbl_sites: bad weight in 'zen.test*'"},
	{"zen.test*inf", "dnsbl_sites: bad weight in 'zen.test*inf'"},
	{"zen.test=127.0.0", "dnsbl_sites: bad filter in 'zen.test=127.0.0'"},
	{"zen.test=127.0.0.256", "dnsbl_sites: bad filter in"},
	{"zen.test=127.0.0.[3..2]", "dnsbl_sites: bad filter in"},
	{"zen.test=127.0.0.[2", "dnsbl_sites: bad filter in"},
	{"zen.test=127.0.0.[2;]", "dnsbl_sites: bad filter in"},
	{"zen.test=127.0.0.2.1", "dnsbl_sites: bad filter in"},
	{"zen.test=", "dnsbl_sites: bad filter in"},
	{"zen..test", "dnsbl_sites: bad zone name in 'zen..test'"},
	{".zen.test", "dnsbl_sites: bad zone name in"},
	{"=127.0.0.2", "dnsbl_sites: bad zone name in"},
	{"zen.test/x", "dnsbl_sites: bad zone name in"},
	{"a123456789a123456789a123456789a123456789a123456789a123456789.test",
	    "dnsbl_sites: bad zone name in"},
	{"a b c d e f g h i j k l m n o p q r s t u v w x y z aa ab ac ad ae af "
	    "ag", "dnsbl_sites: more than 32 entries"},
};

static void
test_sites(void **state)
{
	char err[256], ov[1100];
	struct conf *cf;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(site_cases) / sizeof(site_cases[0]); i++) {
		snprintf(ov, sizeof(ov), "dnsbl_sites=%s", site_cases[i].sites);
		cf = load(ov, "dns_servers=127.0.0.1:9", NULL);
		err[0] = '\0';
		r = dnsbl_init(base, cf, err, sizeof(err));
		if (site_cases[i].err == NULL) {
			if (r != 0)
				fail_msg("case %zu '%s': %s", i,
				    site_cases[i].sites, err);
			assert_true(dnsbl_enabled());
		} else {
			if (r != -1)
				fail_msg("case %zu '%s' accepted", i,
				    site_cases[i].sites);
			if (strncmp(err, site_cases[i].err,
			    strlen(site_cases[i].err)) != 0)
				fail_msg("case %zu: '%s' does not start with "
				    "'%s'", i, err, site_cases[i].err);
			assert_false(dnsbl_enabled());
		}
		dnsbl_shutdown();
		conf_free(cf);
	}
	/*
	 * No lists: nothing to ask, the callback is never called; but an
	 * explicit dns_servers still gives reverse lookups a resolver.
	 */
	cf = load("dns_servers=127.0.0.1:9", NULL);
	assert_int_equal(dnsbl_init(base, cf, err, sizeof(err)), 0);
	assert_false(dnsbl_enabled());
	assert_non_null(dnsbl_evdns());
	dnsbl_shutdown();
	conf_free(cf);
	cf = load("dns_servers=", NULL);
	assert_int_equal(dnsbl_init(base, cf, err, sizeof(err)), 0);
	assert_null(dnsbl_evdns());
	dnsbl_shutdown();
	conf_free(cf);
	/* bad server */
	cf = load("dnsbl_sites=zen.test", "dns_servers=nameserver.test", NULL);
	assert_int_equal(dnsbl_init(base, cf, err, sizeof(err)), -1);
	assert_string_equal(err, "dns_servers: bad address 'nameserver.test' "
	    "(want ip, ip:port or [v6]:port)");
	conf_free(cf);
}

/* ---------------------------------------------------------------- json */

static void
test_json(void **state)
{
	struct dnsbl_result r;
	char buf[512];
	int n;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.score = 2.5;
	r.nhits = 2;
	snprintf(r.hits[0].zone, sizeof(r.hits[0].zone), "zen.test");
	snprintf(r.hits[0].answer, sizeof(r.hits[0].answer), "127.0.0.4");
	r.hits[0].weight = 3.5;
	snprintf(r.hits[1].zone, sizeof(r.hits[1].zone), "wl.test");
	snprintf(r.hits[1].answer, sizeof(r.hits[1].answer), "127.0.10.2");
	r.hits[1].weight = -1;
	r.timeouts = 1;
	r.errors = 2;
	r.latency_ms = 42;
	n = dnsbl_result_json(&r, buf, sizeof(buf));
	assert_string_equal(buf, "{\"score\":2.5,\"hits\":[{\"zone\":\"zen.test\","
	    "\"answer\":\"127.0.0.4\",\"weight\":3.5},{\"zone\":\"wl.test\","
	    "\"answer\":\"127.0.10.2\",\"weight\":-1}],\"timeouts\":1,"
	    "\"errors\":2,\"latency_ms\":42}");
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(dnsbl_result_json(&r, buf, (size_t)n), -1);
	assert_int_equal(dnsbl_result_json(&r, buf, (size_t)n + 1), n);
	memset(&r, 0, sizeof(r));
	dnsbl_result_json(&r, buf, sizeof(buf));
	assert_string_equal(buf, "{\"score\":0,\"hits\":[],\"timeouts\":0,"
	    "\"errors\":0,\"latency_ms\":0}");
}

/* ------------------------------------------------------ fake DNS server */

enum fake_mode { F_ANSWER, F_SILENT, F_GARBAGE, F_TRUNCATED, F_TC, F_BADID };

struct fake_rule {
	const char *qname;	/* lower case; "*" suffix = any in that zone */
	int	mode;		/* enum fake_mode */
	int	rcode;
	unsigned ttl;
	const char *ans[4];
};

/* Zones: bl.test (a good list), wl.test (allow list), all.test (answers
 * everything), no2.test (does not list 127.0.0.2), bad.test (misbehaves
 * per client).  Anything else gets NXDOMAIN. */
static struct fake_rule fake_rules[] = {
	{"2.0.0.127.bl.test", F_ANSWER, 0, 300, {"127.0.0.2"}},
	{"1.2.0.192.bl.test", F_ANSWER, 0, 300, {"127.0.0.2"}},
	{"4.2.0.192.bl.test", F_ANSWER, 0, 300, {"127.0.0.4"}},
	{"5.2.0.192.bl.test", F_ANSWER, 0, 300, {"127.0.0.4", "127.0.0.10"}},
	{"6.2.0.192.bl.test", F_ANSWER, 0, 1, {"127.0.0.2"}},
	{"9.2.0.192.bl.test", F_ANSWER, 0, 300, {"127.255.255.254"}},
	{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test",
	    F_ANSWER, 0, 300, {"127.0.0.3"}},
	{"2.0.0.127.wl.test", F_ANSWER, 0, 300, {"127.0.10.2"}},
	{"7.2.0.192.wl.test", F_ANSWER, 0, 300, {"127.0.10.2"}},
	{"*.all.test", F_ANSWER, 0, 300, {"127.0.0.2"}},
	{"2.0.0.127.no2.test", F_ANSWER, 3, 0, {NULL}},
	{"1.2.0.192.no2.test", F_ANSWER, 0, 300, {"127.0.0.2"}},
	{"2.0.0.127.bad.test", F_ANSWER, 0, 300, {"127.0.0.2"}},
	{"10.2.0.192.bad.test", F_GARBAGE, 0, 0, {NULL}},
	{"11.2.0.192.bad.test", F_TRUNCATED, 0, 300, {"127.0.0.2"}},
	{"12.2.0.192.bad.test", F_TC, 0, 0, {NULL}},
	{"13.2.0.192.bad.test", F_ANSWER, 2, 0, {NULL}},
	{"14.2.0.192.bad.test", F_ANSWER, 0, 300, {"8.8.8.8"}},
	{"15.2.0.192.bad.test", F_BADID, 0, 300, {"127.0.0.2"}},
	{"16.2.0.192.bad.test", F_SILENT, 0, 0, {NULL}},
	{"17.2.0.192.bad.test", F_ANSWER, 5, 0, {NULL}},
	{"18.2.0.192.bad.test", F_ANSWER, 0, 300, {NULL}},	/* NODATA */
};

static struct {
	evutil_socket_t fd;
	struct event *ev;
	int	port;
	int	silent;		/* answer nothing at all */
	unsigned long queries;
} fake;

/* fake_rule_for - the rule for a (lower-cased) name, or NULL */
static const struct fake_rule *
fake_rule_for(const char *name)
{
	size_t i, nl = strlen(name), rl;

	for (i = 0; i < sizeof(fake_rules) / sizeof(fake_rules[0]); i++) {
		const char *r = fake_rules[i].qname;

		if (r[0] == '*') {
			rl = strlen(r + 1);
			if (nl >= rl && strcmp(name + nl - rl, r + 1) == 0)
				return &fake_rules[i];
		} else if (strcmp(r, name) == 0)
			return &fake_rules[i];
	}
	return NULL;
}

/* fake_read - answer one query after its rule */
static void
fake_read(evutil_socket_t fd, short what, void *arg)
{
	uint8_t q[512], out[600];
	char name[300];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	const struct fake_rule *rule;
	static const struct fake_rule nx = {"", F_ANSWER, 3, 0, {NULL}};
	ssize_t n;
	size_t p = 12, nn = 0, qend, o;
	int i, nans = 0;
	uint32_t a;

	(void)what;
	(void)arg;
	n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	if (n < 17 || fake.silent)
		return;
	fake.queries++;
	while (p < (size_t)n && q[p] != 0) {
		size_t l = q[p++];

		if (p + l > (size_t)n || nn + l + 1 >= sizeof(name))
			return;
		if (nn)
			name[nn++] = '.';
		for (size_t k = 0; k < l; k++)
			name[nn++] = (char)tolower(q[p + k]);
		p += l;
	}
	name[nn] = '\0';
	qend = p + 5;		/* root label, type, class */
	if (qend > (size_t)n)
		return;
	if ((rule = fake_rule_for(name)) == NULL)
		rule = &nx;
	if (rule->mode == F_SILENT)
		return;
	if (rule->mode == F_GARBAGE) {
		sendto(fd, "\x13\x37garbage", 9, 0, (struct sockaddr *)&from, fl);
		return;
	}
	memcpy(out, q, qend);
	out[2] = 0x81;			/* QR, RD */
	out[3] = (uint8_t)(0x80 | rule->rcode);	/* RA */
	if (rule->mode == F_TC)
		out[2] |= 0x02;
	if (rule->mode == F_BADID)
		out[0] ^= 0xff;
	for (i = 0; i < 4 && rule->ans[i]; i++)
		nans++;
	out[4] = 0; out[5] = 1;
	out[6] = 0; out[7] = (uint8_t)nans;
	memset(out + 8, 0, 4);
	o = qend;
	for (i = 0; i < nans; i++) {
		out[o++] = 0xc0; out[o++] = 12;		/* name: pointer */
		out[o++] = 0; out[o++] = 1;		/* A */
		out[o++] = 0; out[o++] = 1;		/* IN */
		out[o++] = (uint8_t)(rule->ttl >> 24);
		out[o++] = (uint8_t)(rule->ttl >> 16);
		out[o++] = (uint8_t)(rule->ttl >> 8);
		out[o++] = (uint8_t)rule->ttl;
		out[o++] = 0; out[o++] = 4;
		inet_pton(AF_INET, rule->ans[i], &a);
		memcpy(out + o, &a, 4);
		o += 4;
	}
	if (rule->mode == F_TRUNCATED)
		o -= 7;			/* cut inside the first answer */
	sendto(fd, out, o, 0, (struct sockaddr *)&from, fl);
}

static void
fake_start(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(&fake, 0, sizeof(fake));
	fake.fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fake.fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fake.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fake.fd, (struct sockaddr *)&sin, &sl), 0);
	fake.port = ntohs(sin.sin_port);
	evutil_make_socket_nonblocking(fake.fd);
	fake.ev = event_new(base, fake.fd, EV_READ | EV_PERSIST, fake_read,
	    NULL);
	event_add(fake.ev, NULL);
}

static void
fake_stop(void)
{
	event_free(fake.ev);
	evutil_closesocket(fake.fd);
}

/* ------------------------------------------------------------- lookups */

struct got {
	int	called;
	struct dnsbl_result r;
};

static void
got_cb(void *arg, const struct dnsbl_result *r)
{
	struct got *g = arg;

	g->called++;
	g->r = *r;
}

/* run - the loop for ms milliseconds */
static void
run(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* start - dnsbl_init() against the fake server, probe settled */
static struct conf *
start(const char *sites, const char *extra1, const char *extra2)
{
	char s[1100], srv[64], err[256];
	struct conf *cf;

	snprintf(s, sizeof(s), "dnsbl_sites=%s", sites);
	snprintf(srv, sizeof(srv), "dns_servers=127.0.0.1:%d", fake.port);
	cf = load(s, srv, "dnsbl_timeout=600ms", extra1, extra2, NULL);
	if (dnsbl_init(base, cf, err, sizeof(err)) < 0)
		fail_msg("dnsbl_init: %s", err);
	run(100);
	return cf;
}

/* lookup - one lookup, waited for; the callback must not run inside */
static void
lookup(const char *ip, struct got *g)
{
	struct sockaddr_storage ss;
	struct dnsbl_req *req;
	int i;

	memset(g, 0, sizeof(*g));
	to_sa(ip, &ss);
	req = dnsbl_lookup((struct sockaddr *)&ss, got_cb, g);
	assert_non_null(req);
	assert_int_equal(g->called, 0);
	for (i = 0; i < 300 && !g->called; i++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(g->called, 1);
}

struct lookup_case {
	const char *sites;
	const char *ip;
	double	score;
	int	nhits;
	const char *answer;	/* of the first hit */
	int	errors;
	int	timeouts;
};

static const struct lookup_case lookup_cases[] = {
	/* listed, weight 3 */
	{"bl.test*3", "192.0.2.1", 3, 1, "127.0.0.2", 0, 0},
	/* not listed */
	{"bl.test*3", "192.0.2.2", 0, 0, NULL, 0, 0},
	/* default weight 1 */
	{"bl.test", "192.0.2.1", 1, 1, "127.0.0.2", 0, 0},
	/* allow list: negative weight */
	{"bl.test*3 wl.test*-2", "192.0.2.7", -2, 1, "127.0.10.2", 0, 0},
	{"bl.test*3 wl.test*-2", "192.0.2.1", 3, 1, "127.0.0.2", 0, 0},
	/* filters */
	{"bl.test=127.0.0.[2..3]*3", "192.0.2.4", 0, 0, NULL, 0, 0},
	{"bl.test=127.0.0.[2..4]*3", "192.0.2.4", 3, 1, "127.0.0.4", 0, 0},
	{"bl.test=127.0.0.4*3", "192.0.2.4", 3, 1, "127.0.0.4", 0, 0},
	{"bl.test=127.0.0.[2;4;10..11]*3", "192.0.2.4", 3, 1, "127.0.0.4", 0, 0},
	/* two answers, one site per answer: both add */
	{"bl.test=127.0.0.4*1 bl.test=127.0.0.10*5", "192.0.2.5", 6, 2,
	    "127.0.0.4", 0, 0},
	{"bl.test=127.0.0.[10..11]*5", "192.0.2.5", 5, 1, "127.0.0.10", 0, 0},
	/* refusal code: an error, not a listing */
	{"bl.test*3", "192.0.2.9", 0, 0, NULL, 1, 0},
	/* IPv6 client */
	{"bl.test*3", "2001:db8::1", 3, 1, "127.0.0.3", 0, 0},
	{"bl.test*3", "2001:db8::2", 0, 0, NULL, 0, 0},
	/* v4-mapped client is the IPv4 one */
	{"bl.test*3", "::ffff:192.0.2.1", 3, 1, "127.0.0.2", 0, 0},
	/* misbehaving server */
	{"bad.test*3", "192.0.2.13", 0, 0, NULL, 1, 0},	/* SERVFAIL, twice */
	{"bad.test*3", "192.0.2.14", 0, 0, NULL, 1, 0},	/* 8.8.8.8 */
	{"bad.test*3", "192.0.2.17", 0, 0, NULL, 1, 0},	/* REFUSED */
	{"bad.test*3", "192.0.2.18", 0, 0, NULL, 0, 0},	/* NODATA */
	{"bad.test*3", "192.0.2.11", 0, 0, NULL, 1, 0},	/* truncated */
	{"bad.test*3", "192.0.2.12", 0, 0, NULL, 1, 0},	/* TC, no answer */
	{"bad.test*3", "192.0.2.10", 0, 0, NULL, 0, 1},	/* garbage */
	{"bad.test*3", "192.0.2.15", 0, 0, NULL, 0, 1},	/* wrong id */
	{"bad.test*3", "192.0.2.16", 0, 0, NULL, 0, 1},	/* silence */
	/* one good list, one bad: the good one still counts */
	{"bl.test*3 bad.test*1", "192.0.2.16", 0, 0, NULL, 0, 1},
};

static void
test_lookups(void **state)
{
	struct conf *cf;
	struct got g;
	size_t i;

	(void)state;
	fake_start();
	for (i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *c = &lookup_cases[i];

		cf = start(c->sites, NULL, NULL);
		lookup(c->ip, &g);
		if (g.r.score != c->score || g.r.nhits != c->nhits ||
		    g.r.errors != c->errors || g.r.timeouts != c->timeouts)
			fail_msg("case %zu (%s %s): score %g nhits %d errors %d "
			    "timeouts %d", i, c->sites, c->ip, g.r.score,
			    g.r.nhits, g.r.errors, g.r.timeouts);
		if (c->answer != NULL)
			assert_string_equal(g.r.hits[0].answer, c->answer);
		assert_int_equal(g.r.complete, c->timeouts == 0);
		if (c->timeouts) {
			assert_true(g.r.latency_ms >= 550);
			assert_true(g.r.latency_ms < 1500);
		} else
			assert_true(g.r.latency_ms < 500);
		dnsbl_shutdown();
		conf_free(cf);
	}
	fake_stop();
}

/* test_cache - TTLs, negative TTL, eviction, the callback on a hit */
static void
test_cache(void **state)
{
	unsigned long q0, q1, ch;
	struct conf *cf;
	struct got g;
	unsigned long fq;

	(void)state;
	fake_start();
	cf = start("bl.test*3", "dnsbl_negative_ttl=300ms",
	    "dnsbl_cache_size=4");
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 3);
	dnsbl_stats(&q0, NULL, NULL, NULL, &ch);
	assert_int_equal(ch, 0);
	fq = fake.queries;
	lookup("192.0.2.1", &g);		/* async even on a hit */
	assert_int_equal((int)g.r.score, 3);
	assert_true(g.r.complete);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, q0);
	assert_int_equal(ch, 1);
	assert_int_equal(fake.queries, fq);
	/* negative answer cached, then expired after 300 ms */
	lookup("192.0.2.2", &g);
	lookup("192.0.2.2", &g);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, q0 + 1);
	assert_int_equal(ch, 2);
	run(350);
	lookup("192.0.2.2", &g);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, q0 + 2);
	/* DNS TTL of 1 s */
	lookup("192.0.2.6", &g);
	lookup("192.0.2.6", &g);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, q0 + 3);
	run(1100);
	lookup("192.0.2.6", &g);
	assert_int_equal((int)g.r.score, 3);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, q0 + 4);
	/* errors are not cached */
	lookup("192.0.2.9", &g);
	lookup("192.0.2.9", &g);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, q0 + 6);
	/* 4 entries: after 5 more addresses, 192.0.2.1 was evicted */
	lookup("198.51.100.1", &g);
	lookup("198.51.100.2", &g);
	lookup("198.51.100.3", &g);
	lookup("198.51.100.4", &g);
	lookup("198.51.100.5", &g);
	dnsbl_stats(&q0, NULL, NULL, NULL, NULL);
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 3);
	dnsbl_stats(&q1, NULL, NULL, NULL, NULL);
	assert_int_equal(q1, q0 + 1);
	dnsbl_shutdown();
	conf_free(cf);
	/* cache off */
	cf = start("bl.test*3", "dnsbl_cache_size=0", NULL);
	lookup("192.0.2.1", &g);
	lookup("192.0.2.1", &g);
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch);
	assert_int_equal(q1, 2);
	assert_int_equal(ch, 0);
	dnsbl_shutdown();
	conf_free(cf);
	fake_stop();
}

/* test_cancel - a cancelled request never calls back; shutdown frees all */
static void
test_cancel(void **state)
{
	struct sockaddr_storage ss;
	struct dnsbl_req *req;
	struct conf *cf;
	struct got g;
	unsigned long q;

	(void)state;
	fake_start();
	cf = start("bl.test*3 wl.test*-1", NULL, NULL);
	memset(&g, 0, sizeof(g));
	to_sa("192.0.2.1", &ss);
	req = dnsbl_lookup((struct sockaddr *)&ss, got_cb, &g);
	assert_non_null(req);
	dnsbl_cancel(req);
	run(100);
	assert_int_equal(g.called, 0);
	/* the answer still filled the cache */
	dnsbl_stats(&q, NULL, NULL, NULL, NULL);
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 3);
	dnsbl_stats(&q, NULL, NULL, NULL, NULL);
	assert_int_equal(q, 2);
	/* cancel on a cache hit, before the zero timer */
	memset(&g, 0, sizeof(g));
	req = dnsbl_lookup((struct sockaddr *)&ss, got_cb, &g);
	dnsbl_cancel(req);
	run(50);
	assert_int_equal(g.called, 0);
	dnsbl_cancel(NULL);
	/* requests left at shutdown are freed */
	to_sa("192.0.2.77", &ss);
	assert_non_null(dnsbl_lookup((struct sockaddr *)&ss, got_cb, &g));
	fake.silent = 1;
	to_sa("192.0.2.78", &ss);
	assert_non_null(dnsbl_lookup((struct sockaddr *)&ss, got_cb, &g));
	run(20);
	dnsbl_shutdown();
	assert_int_equal(g.called, 0);
	conf_free(cf);
	/* a non-IP client */
	cf = start("bl.test", NULL, NULL);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_null(dnsbl_lookup((struct sockaddr *)&ss, got_cb, &g));
	dnsbl_shutdown();
	conf_free(cf);
	fake_stop();
}

/* test_timeout - a server that never answers: timeouts=1 by the deadline */
static void
test_timeout(void **state)
{
	unsigned long t;
	struct conf *cf;
	struct got g;
	int i;

	(void)state;
	fake_start();
	fake.silent = 1;
	cf = start("bl.test*3 wl.test*-2", "dnsbl_timeout=300ms", NULL);
	assert_true(dnsbl_enabled());	/* an unanswered probe keeps lists */
	for (i = 0; i < 5; i++) {	/* evdns marks the server down */
		lookup("192.0.2.1", &g);
		assert_int_equal(g.r.timeouts, 2);
		assert_int_equal(g.r.nhits, 0);
		assert_false(g.r.complete);
		assert_true(g.r.latency_ms >= 280 && g.r.latency_ms < 1000);
	}
	dnsbl_stats(NULL, NULL, &t, NULL, NULL);
	assert_int_equal(t, 10);
	/* the server comes back */
	fake.silent = 0;
	run(700);
	for (i = 0; i < 20; i++) {
		lookup("192.0.2.1", &g);
		if (g.r.timeouts == 0)
			break;
	}
	assert_int_equal(g.r.timeouts, 0);
	assert_int_equal((int)g.r.score, 3);
	dnsbl_shutdown();
	conf_free(cf);
	fake_stop();
}

/* test_probe - RFC 5782 test points disable and re-enable lists */
static void
test_probe(void **state)
{
	struct conf *cf, *cf2;
	struct got g;
	char err[256];

	(void)state;
	fake_start();
	cf = start("bl.test*3 all.test*5 no2.test*7", NULL, NULL);
	assert_true(dnsbl_enabled());
	lookup("192.0.2.1", &g);		/* all three list it */
	assert_int_equal((int)g.r.score, 3);
	assert_int_equal(g.r.nhits, 1);
	/* only the broken lists: nothing to ask */
	dnsbl_shutdown();
	conf_free(cf);
	cf = start("all.test*5 no2.test*7", NULL, NULL);
	assert_false(dnsbl_enabled());
	assert_null(dnsbl_lookup((struct sockaddr *)&(struct sockaddr_in){
	    .sin_family = AF_INET}, got_cb, &g));
	/* no2.test fixed: passes the next probe */
	assert_string_equal(fake_rules[10].qname, "2.0.0.127.no2.test");
	fake_rules[10].rcode = 0;
	fake_rules[10].ans[0] = "127.0.0.2";
	dnsbl_probe_now();
	run(100);
	assert_true(dnsbl_enabled());
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 7);
	/* broken again */
	fake_rules[10].rcode = 3;
	fake_rules[10].ans[0] = NULL;
	dnsbl_probe_now();
	run(100);
	assert_false(dnsbl_enabled());
	/* reconfigure: new weights; the disabled state is kept by name */
	cf2 = load("dnsbl_sites=bl.test*4 no2.test*1", NULL);
	assert_int_equal(dnsbl_reconfigure(cf2, err, sizeof(err)), 0);
	assert_true(dnsbl_enabled());
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 4);
	conf_free(cf2);
	cf2 = load("dnsbl_sites=bl.test*x", NULL);
	assert_int_equal(dnsbl_reconfigure(cf2, err, sizeof(err)), -1);
	assert_string_equal(err, "dnsbl_sites: bad weight in 'bl.test*x'");
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 4);
	conf_free(cf2);
	dnsbl_shutdown();
	conf_free(cf);
	/* no lists at start; SIGHUP adds one: the lookups start then */
	cf = start("", NULL, NULL);
	assert_false(dnsbl_enabled());
	cf2 = load("dnsbl_sites=bl.test*2", NULL);
	assert_int_equal(dnsbl_reconfigure(cf2, err, sizeof(err)), 0);
	assert_true(dnsbl_enabled());
	assert_non_null(dnsbl_evdns());
	lookup("192.0.2.1", &g);
	assert_int_equal((int)g.r.score, 2);
	conf_free(cf2);
	/* and removes it again */
	cf2 = load("dnsbl_sites=", NULL);
	assert_int_equal(dnsbl_reconfigure(cf2, err, sizeof(err)), 0);
	assert_false(dnsbl_enabled());
	conf_free(cf2);
	dnsbl_shutdown();
	conf_free(cf);
	fake_stop();
}

static int
setup(void **state)
{
	(void)state;
	log_init(LOG_TO_STDERR, "test_dnsbl");
	base = event_base_new();
	return base == NULL;
}

static int
teardown(void **state)
{
	(void)state;
	event_base_free(base);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_name),
		cmocka_unit_test(test_sites),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_probe),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
