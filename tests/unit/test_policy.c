/*
 * test_policy.c - cmocka tests for src/policy/policy.c: known-answer
 *		   decisions and learning
 *
 * Every case builds a configuration with conf_load() (defaults plus the
 * case's overrides), opens reputation in memory with the clock frozen,
 * teaches it through pol_learn() (teach rows: a population of clients,
 * each its own address), fills a struct pol_input and checks the verdict
 * of pol_classify(): the class, the score, static_class, control and the
 * exact reasons in order.  The scores were worked out by hand from the
 * contract in policy.c with the default weights (ip 1, prefix 0.5, rawsig
 * 1.5, os 0.3, prefix_rawsig 1, domain 1.5), rep_evidence_scale 10 and the
 * Beta(1,1) prior: a key with `bad` and `good` observations contributes
 *   weight x ln((bad + 1) / (good + 1)) x n / (n + 10),   n = bad + good,
 * and its reason shows p = (bad + 1) / (n + 2).
 *
 * The tables:
 *   - basic_cases[]: no input at all, default_class, a map with no peer;
 *   - static_cases[]: client_class_map for IPv4 and IPv6, first match
 *     wins, reputation and DNS lists ignored, an IPv6 peer and a v4 map;
 *   - dnsbl_cases[]: block-list weights add, allow lists subtract;
 *   - threshold_cases[]: at, below and beyond thresholds, the most extreme
 *     applicable threshold whatever the order they are written in;
 *   - rep_cases[]: the mission (a raw signature that sends only spam is
 *     throttled although its OS label is mostly good), evidence scaling,
 *     the 0.05 cut-off for showing a reason, rep_evidence_scale, a weight
 *     of zero, IPv6 keys, a good domain, all six keys in order with the
 *     raw signature shown as its key cut at 60 characters;
 *   - explore_cases[]: the control group drawn (draw below, at and above
 *     explore_share; little and much evidence; explore_share 0; weights of
 *     zero are no evidence) and passed back (stays in, stays out);
 *   - violation_cases[]: violation_class, empty violation_class, no text,
 *     in the control group, no violations counted.
 * And three tests of their own:
 *   - test_learn: outcomes that are not learned teach nothing; a learned
 *     outcome counts once on every key; deferred counts but is no
 *     evidence; "listed" never reaches the ip key; the count of keys
 *     taught that pol_learn() returns;
 *   - test_learn_listing: only a hit of positive weight teaches; the kinds
 *     taught come back; kinds in `done` are not taught again; a domain
 *     that appears later is taught on the next call;
 *   - test_reasons: a verdict used again starts over; pol_reason() bounds;
 *     one reason cut at POL_REASON_MAX; a reasons buffer that fills is cut
 *     at a reason boundary (eight DNS hits and enormous weights).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "policy/policy.h"
#include "rep/rep.h"

#define T0	1800000000000LL		/* a fixed "now", ms */
#define EPS	1e-5		/* the scores below are given to 1e-6 */
#define MAXOV	8			/* conf overrides per case */

/* The fingerprints of the cases: two raw signatures, one key text. */
#define H1	"0123456789abcdef"	/* the spam-only raw signature */
#define H2	"fedcba9876543210"	/* the good Windows machines' */
#define H3	"00000000deadbeef"	/* one nobody has seen */
#define FPKEY	"4:64+0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0"
#define FPKEY_LONG "4:128+0:1460:65535,8:mss,nop,ws,nop,nop,sok,ts:df,id+:0" \
		   ":extra-quirks-to-pass-60"	/* 79 characters */

/* ---------------------------------------------------------------- helpers */

static struct conf *cur_conf;	/* freed by the teardown */

/* start - conf from the defaults and ov[] (NULL-ended); rep in memory */
static struct conf *
start(const char *const *ov)
{
	char   *all[MAXOV + 4], err[512];
	int	n = 0;

	all[n++] = "rep_store=";
	all[n++] = "eventlog=";
	all[n++] = "rep_cache_size=4096";
	for (; ov != NULL && *ov != NULL && n < MAXOV + 3; ov++)
		all[n++] = (char *)(uintptr_t)*ov;
	if ((cur_conf = conf_load(NULL, all, n, err, sizeof(err))) == NULL)
		fail_msg("conf_load: %s", err);
	if (rep_open(NULL, cur_conf, err, sizeof(err)) < 0)
		fail_msg("rep_open: %s", err);
	rep_set_clock(T0);
	return cur_conf;
}

/* stop - close reputation, free the conf (also the teardown) */
static int
stop(void **state)
{
	(void)state;
	rep_close();
	rep_set_clock(0);
	conf_free(cur_conf);
	cur_conf = NULL;
	return 0;
}

/* mkpeer - a sockaddr from IPv4 or IPv6 text; NULL text gives NULL */
static const struct sockaddr *
mkpeer(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (ip == NULL)
		return NULL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		fail_msg("bad address '%s'", ip);
	return (const struct sockaddr *)ss;
}

/* mkfp - a fingerprint with hash and OS (NULL: empty); NULL when neither */
static const struct fp_result *
mkfp(struct fp_result *fp, const char *key, const char *hash, const char *os)
{
	if (hash == NULL && os == NULL)
		return NULL;
	memset(fp, 0, sizeof(*fp));
	snprintf(fp->key, sizeof(fp->key), "%s", key ? key : FPKEY);
	snprintf(fp->raw_sig, sizeof(fp->raw_sig), "%s", fp->key);
	snprintf(fp->key_hash, sizeof(fp->key_hash), "%s", hash ? hash : "");
	snprintf(fp->os, sizeof(fp->os), "%s", os ? os : "");
	fp->match = "exact";
	return fp;
}

/* One DNS list hit of a case. */
struct hit {
	const char *zone;
	double	weight;
};

/* mkdnsbl - a DNS list answer with the hits (until zone NULL) */
static const struct dnsbl_result *
mkdnsbl(struct dnsbl_result *r, const struct hit *h, int n)
{
	int	i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < n && h[i].zone != NULL; i++) {
		snprintf(r->hits[i].zone, sizeof(r->hits[i].zone), "%s",
		    h[i].zone);
		snprintf(r->hits[i].answer, sizeof(r->hits[i].answer),
		    "127.0.0.2");
		r->hits[i].weight = h[i].weight;
		r->score += h[i].weight;
	}
	r->nhits = i;
	r->complete = 1;
	return r;
}

/*
 * One teach row: `times` clients, the i-th at the address printed from
 * the format `ip` with (i % 256, i / 256) (NULL: no address), with the
 * raw signature, OS and domain given (NULL: none), each learning `oc`
 * once through pol_learn().
 */
struct teach {
	const char *ip;
	const char *hash, *os, *domain;
	enum outcome oc;
	int	times;
};

/* teach - run the rows (until times == 0) */
static void
teach(const struct conf *cf, const struct teach *t, int n)
{
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct pol_input in;
	char	ip[64];
	int	i, j;

	for (i = 0; i < n && t[i].times > 0; i++)
		for (j = 0; j < t[i].times; j++) {
			memset(&in, 0, sizeof(in));
			in.cf = cf;
			if (t[i].ip != NULL) {
				snprintf(ip, sizeof(ip), t[i].ip, j % 256,
				    j / 256);
				in.peer = mkpeer(&ss, ip);
			}
			in.fp = mkfp(&fp, NULL, t[i].hash, t[i].os);
			in.domain = t[i].domain;
			in.control = -1;
			pol_learn(&in, t[i].oc);
		}
}

/* ------------------------------------------------------- decision tables */

/* A known-answer decision. */
struct pol_case {
	const char *name;
	const char *conf[MAXOV];	/* overrides, NULL-ended */
	struct teach teach[4];		/* until times == 0 */
	/* the input */
	const char *ip;			/* NULL: no peer */
	const char *fpkey;		/* NULL: FPKEY */
	const char *hash, *os;		/* both NULL: no fingerprint */
	const char *domain;
	int	dnsbl;			/* 1: the DNS lists answered */
	struct hit hits[DNSBL_MAX_HITS]; /* their hits, until zone NULL */
	int	violations;
	const char *violation;
	int	control;		/* as passed back (-1: draw) */
	double	draw;			/* explore_draw */
	/* the verdict */
	const char *cls;
	double	score;
	int	static_class;
	int	want_control;
	const char *reasons[12];	/* in order, NULL-ended */
};

#define NCASES(t)	(sizeof(t) / sizeof((t)[0]))

/* run_cases - decide every case and compare with its known answer */
static void
run_cases(const struct pol_case *cases, size_t ncases)
{
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct dnsbl_result dr;
	struct pol_input in;
	struct pol_verdict v;
	size_t	k;
	int	i;

	for (k = 0; k < ncases; k++) {
		const struct pol_case *tc = &cases[k];
		const struct conf *cf = start(tc->conf);

		teach(cf, tc->teach, 4);
		memset(&in, 0, sizeof(in));
		in.cf = cf;
		in.peer = mkpeer(&ss, tc->ip);
		in.fp = mkfp(&fp, tc->fpkey, tc->hash, tc->os);
		in.dnsbl = tc->dnsbl ? mkdnsbl(&dr, tc->hits,
		    DNSBL_MAX_HITS) : NULL;
		in.domain = tc->domain;
		in.violations = tc->violations;
		in.violation = tc->violation;
		in.control = tc->control;
		in.explore_draw = tc->draw;
		memset(&v, 0x5a, sizeof(v));	/* no field may be left */
		pol_classify(&in, &v);

		if (strcmp(v.class_name, tc->cls) != 0)
			fail_msg("%s: class %s, want %s", tc->name,
			    v.class_name, tc->cls);
		if (fabs(v.score - tc->score) > EPS)
			fail_msg("%s: score %.6f, want %.6f", tc->name, v.score,
			    tc->score);
		if (v.static_class != tc->static_class ||
		    v.control != tc->want_control)
			fail_msg("%s: static %d control %d, want %d %d",
			    tc->name, v.static_class, v.control,
			    tc->static_class, tc->want_control);
		for (i = 0; tc->reasons[i] != NULL; i++) {
			const char *r = pol_reason(&v, i);

			if (r == NULL || strcmp(r, tc->reasons[i]) != 0)
				fail_msg("%s: reason %d is '%s', want '%s'",
				    tc->name, i, r ? r : "(none)",
				    tc->reasons[i]);
		}
		if (v.nreasons != i)
			fail_msg("%s: %d reasons, want %d (extra: '%s')",
			    tc->name, v.nreasons, i, pol_reason(&v, i));
		stop(NULL);
	}
}

/* Nothing known: the score is zero and default_class decides. */
static const struct pol_case basic_cases[] = {
	{.name = "no input at all", .cls = "normal",
	    .reasons = {"score +0.0 -> normal"}},
	{.name = "a client nobody knows", .ip = "192.0.2.7", .hash = H1,
	    .os = "Linux 3.x", .domain = "example.org", .dnsbl = 1,
	    .cls = "normal", .reasons = {"score +0.0 -> normal"}},
	{.name = "default_class names the class",
	    .conf = {"default_class=suspect"}, .ip = "192.0.2.7",
	    .cls = "suspect", .reasons = {"score +0.0 -> suspect"}},
	/* pins a NULL dereference: pol_static() read the peer's family */
	{.name = "a map and no peer", .conf = {"client_class_map="
	    "0.0.0.0/0=trusted"}, .cls = "normal",
	    .reasons = {"score +0.0 -> normal"}},
};

/* client_class_map decides outright: no score, no DNS list, no draw. */
#define MAP	"client_class_map=192.0.2.0/24=trusted 2001:db8::/32=hostile"
static const struct pol_case static_cases[] = {
	{.name = "IPv4 map hit, bad reputation and a listing ignored",
	    .conf = {MAP}, .teach = {{"192.0.2.7", H1, "Linux", NULL,
	    OC_SPAM, 20}}, .ip = "192.0.2.7", .hash = H1, .os = "Linux",
	    .dnsbl = 1, .hits = {{"zen.test", 5}}, .control = -1,
	    .cls = "trusted", .static_class = 1,
	    .reasons = {"client_class_map 192.0.2.0/24 = trusted"}},
	{.name = "IPv6 map hit, an allow list ignored", .conf = {MAP},
	    .ip = "2001:db8:5::1", .dnsbl = 1, .hits = {{"wl.test", -10}},
	    .cls = "hostile", .static_class = 1,
	    .reasons = {"client_class_map 2001:db8::/32 = hostile"}},
	{.name = "first match wins", .conf = {"client_class_map="
	    "192.0.2.0/25=hostile 192.0.2.0/24=trusted"}, .ip = "192.0.2.7",
	    .cls = "hostile", .static_class = 1,
	    .reasons = {"client_class_map 192.0.2.0/25 = hostile"}},
	{.name = "first match wins, second entry", .conf = {
	    "client_class_map=192.0.2.0/25=hostile 192.0.2.0/24=trusted"},
	    .ip = "192.0.2.200", .cls = "trusted", .static_class = 1,
	    .reasons = {"client_class_map 192.0.2.0/24 = trusted"}},
	{.name = "outside the map: scored", .conf = {MAP},
	    .ip = "198.51.100.1", .dnsbl = 1, .hits = {{"zen.test", 2}},
	    .cls = "suspect", .score = 2,
	    .reasons = {"dnsbl zen.test = +2", "score +2.0 -> suspect"}},
	{.name = "an IPv4 entry never matches IPv6", .conf = {
	    "client_class_map=0.0.0.0/0=trusted"}, .ip = "2001:db8::7",
	    .cls = "normal", .reasons = {"score +0.0 -> normal"}},
	{.name = "a violation still moves a mapped client", .conf = {MAP},
	    .ip = "192.0.2.7", .violations = 1, .violation = "bare LF",
	    .cls = "hostile", .static_class = 1,
	    .reasons = {"client_class_map 192.0.2.0/24 = trusted",
	    "violation bare LF -> hostile"}},
};

/* The DNS lists: each hit adds its weight (allow lists are negative). */
static const struct pol_case dnsbl_cases[] = {
	{.name = "two block lists add up", .ip = "198.51.100.1", .dnsbl = 1,
	    .hits = {{"zen.test", 3}, {"b.test", 1.5}}, .cls = "hostile",
	    .score = 4.5, .reasons = {"dnsbl zen.test = +3",
	    "dnsbl b.test = +1.5", "score +4.5 -> hostile"}},
	{.name = "an allow list", .ip = "198.51.100.1", .dnsbl = 1,
	    .hits = {{"wl.test", -5}}, .cls = "trusted", .score = -5,
	    .reasons = {"dnsbl wl.test = -5", "score -5.0 -> trusted"}},
	{.name = "block and allow", .ip = "198.51.100.1", .dnsbl = 1,
	    .hits = {{"zen.test", 3}, {"wl.test", -2}}, .cls = "normal",
	    .score = 1, .reasons = {"dnsbl zen.test = +3",
	    "dnsbl wl.test = -2", "score +1.0 -> normal"}},
	{.name = "an answer without hits", .ip = "198.51.100.1", .dnsbl = 1,
	    .cls = "normal", .reasons = {"score +0.0 -> normal"}},
};

/* policy_thresholds: at or beyond; the most extreme one that applies. */
#define THR	"policy_thresholds=suspect=2 hostile=4 normal=-1 trusted=-4"
static const struct pol_case threshold_cases[] = {
	{.name = "at a positive threshold", .dnsbl = 1,
	    .hits = {{"a.test", 2}}, .cls = "suspect", .score = 2,
	    .reasons = {"dnsbl a.test = +2", "score +2.0 -> suspect"}},
	{.name = "just below it (shown rounded)", .dnsbl = 1,
	    .hits = {{"a.test", 1.99}}, .cls = "normal", .score = 1.99,
	    .reasons = {"dnsbl a.test = +1.99", "score +2.0 -> normal"}},
	{.name = "at a negative threshold", .dnsbl = 1,
	    .hits = {{"wl.test", -4}}, .cls = "trusted", .score = -4,
	    .reasons = {"dnsbl wl.test = -4", "score -4.0 -> trusted"}},
	{.name = "just above it", .dnsbl = 1, .hits = {{"wl.test", -3.5}},
	    .cls = "normal", .score = -3.5,
	    .reasons = {"dnsbl wl.test = -3.5", "score -3.5 -> normal"}},
	{.name = "beyond two positive thresholds: the higher",
	    .conf = {THR, "default_class=suspect"}, .dnsbl = 1,
	    .hits = {{"a.test", 5}}, .cls = "hostile", .score = 5,
	    .reasons = {"dnsbl a.test = +5", "score +5.0 -> hostile"}},
	{.name = "beyond two negative thresholds: the lower",
	    .conf = {THR, "default_class=suspect"}, .dnsbl = 1,
	    .hits = {{"wl.test", -5}}, .cls = "trusted", .score = -5,
	    .reasons = {"dnsbl wl.test = -5", "score -5.0 -> trusted"}},
	{.name = "between the negative thresholds",
	    .conf = {THR, "default_class=suspect"}, .dnsbl = 1,
	    .hits = {{"wl.test", -2}}, .cls = "normal", .score = -2,
	    .reasons = {"dnsbl wl.test = -2", "score -2.0 -> normal"}},
	{.name = "between -1 and +2: default_class",
	    .conf = {THR, "default_class=suspect"}, .dnsbl = 1,
	    .hits = {{"a.test", 1}}, .cls = "suspect", .score = 1,
	    .reasons = {"dnsbl a.test = +1", "score +1.0 -> suspect"}},
	{.name = "no thresholds", .conf = {"policy_thresholds="},
	    .dnsbl = 1, .hits = {{"a.test", 50}}, .cls = "normal",
	    .score = 50, .reasons = {"dnsbl a.test = +50",
	    "score +50.0 -> normal"}},
};

/*
 * Reputation.  n/(n+10) scales each key by its evidence; the key kinds
 * come in enum order; a contribution below 0.05 counts but is not shown.
 */
static const struct pol_case rep_cases[] = {
	/*
	 * The mission: 20 bots (one address each) share raw signature H1
	 * and send only spam; 200 good Windows machines (H2) deliver.  The
	 * OS label has 20 bad, 200 good.
	 *   rawsig 1.5 x ln(21/1)   x 20/30  = +3.044522 (bad 21/22)
	 *   os     0.3 x ln(21/201) x 220/230 = -0.648172 (bad 21/222)
	 * = +2.396350: suspect.
	 */
	{.name = "spam-only raw signature, mostly good OS: throttled",
	    .teach = {{"10.1.%d.1", H1, "Windows 10", NULL, OC_SPAM, 20},
	    {"10.2.%d.%d", H2, "Windows 10", NULL, OC_DELIVERED, 200}},
	    .ip = "203.0.113.9", .hash = H1, .os = "Windows 10",
	    .cls = "suspect", .score = 2.396350,
	    .reasons = {"rawsig " FPKEY " (bad 0.95, n=20) = +3.0",
	    "os Windows 10 (bad 0.09, n=220) = -0.6",
	    "score +2.4 -> suspect"}},
	/* The same OS with a raw signature nobody has seen: -0.648172. */
	{.name = "the same OS label alone: not throttled",
	    .teach = {{"10.1.%d.1", H1, "Windows 10", NULL, OC_SPAM, 20},
	    {"10.2.%d.%d", H2, "Windows 10", NULL, OC_DELIVERED, 200}},
	    .ip = "203.0.113.9", .hash = H3, .os = "Windows 10",
	    .cls = "normal", .score = -0.648172,
	    .reasons = {"os Windows 10 (bad 0.09, n=220) = -0.6",
	    "score -0.6 -> normal"}},
	/*
	 * One rejection: ip 1 x ln 2 x 1/11 = +0.063013 (shown), prefix
	 * 0.5 x ln 2 x 1/11 = +0.031507 (counted, not shown).
	 */
	{.name = "little evidence moves little",
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 1}},
	    .ip = "192.0.2.7", .cls = "normal", .score = 0.094520,
	    .reasons = {"ip 192.0.2.7 (bad 0.67, n=1) = +0.1",
	    "score +0.1 -> normal"}},
	/* 100: ip ln(101) x 100/110 = 4.195564, prefix half: 2.097782. */
	{.name = "much evidence moves much",
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 100}},
	    .ip = "192.0.2.7", .cls = "hostile", .score = 6.293346,
	    .reasons = {"ip 192.0.2.7 (bad 0.99, n=100) = +4.2",
	    "prefix 192.0.2.0/24 (bad 0.99, n=100) = +2.1",
	    "score +6.3 -> hostile"}},
	/* 0.79 x ln 2 / 11 = 0.049781 < 0.05: not shown. */
	{.name = "just below 0.05: not shown", .conf = {"rep_weights=ip=0.79"},
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 1}},
	    .ip = "192.0.2.7", .cls = "normal", .score = 0.049781,
	    .reasons = {"score +0.0 -> normal"}},
	/* 0.8 x ln 2 / 11 = 0.050411 >= 0.05: shown. */
	{.name = "just above 0.05: shown", .conf = {"rep_weights=ip=0.8"},
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 1}},
	    .ip = "192.0.2.7", .cls = "normal", .score = 0.050411,
	    .reasons = {"ip 192.0.2.7 (bad 0.67, n=1) = +0.1",
	    "score +0.1 -> normal"}},
	/* scale 1: ln 2 x 1/2 = 0.346574, prefix 0.173287. */
	{.name = "rep_evidence_scale=1", .conf = {"rep_evidence_scale=1"},
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 1}},
	    .ip = "192.0.2.7", .cls = "normal", .score = 0.519860,
	    .reasons = {"ip 192.0.2.7 (bad 0.67, n=1) = +0.3",
	    "prefix 192.0.2.0/24 (bad 0.67, n=1) = +0.2",
	    "score +0.5 -> normal"}},
	{.name = "weight zero: the ip key is ignored", .conf = {"rep_weights="
	    "ip=0 prefix=0.5 rawsig=1.5 os=0.3 prefix_rawsig=1 domain=1.5"},
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 100}},
	    .ip = "192.0.2.7", .cls = "suspect", .score = 2.097782,
	    .reasons = {"prefix 192.0.2.0/24 (bad 0.99, n=100) = +2.1",
	    "score +2.1 -> suspect"}},
	{.name = "weights all zero", .conf = {"rep_weights="},
	    .teach = {{"192.0.2.7", H1, "Linux", "example.org", OC_SPAM,
	    100}}, .ip = "192.0.2.7", .hash = H1, .os = "Linux",
	    .domain = "example.org", .cls = "normal",
	    .reasons = {"score +0.0 -> normal"}},
	/* 10 spam: ip ln(11) x 10/20 = 1.198948, the /64 half: 0.599474. */
	{.name = "IPv6 keys",
	    .teach = {{"2001:db8::7", NULL, NULL, NULL, OC_SPAM, 10}},
	    .ip = "2001:db8::7", .cls = "normal", .score = 1.798421,
	    .reasons = {"ip 2001:db8::7 (bad 0.92, n=10) = +1.2",
	    "prefix 2001:db8::/64 (bad 0.92, n=10) = +0.6",
	    "score +1.8 -> normal"}},
	/* 40 ham: 1.5 x ln(1/41) x 40/50 = -4.456286 (bad 1/42). */
	{.name = "a good verified domain",
	    .teach = {{NULL, NULL, NULL, "example.org", OC_HAM, 40}},
	    .ip = "198.51.100.1", .domain = "example.org", .cls = "trusted",
	    .score = -4.456286,
	    .reasons = {"domain example.org (bad 0.02, n=40) = -4.5",
	    "score -4.5 -> trusted"}},
	/*
	 * 5 abandoned on each key: ln 6 x 5/15 = 0.597253 per unit weight;
	 * x (1 + 0.5 + 1.5 + 0.3 + 1 + 1.5) = 3.464068.
	 */
	{.name = "all six keys, in order",
	    .teach = {{"192.0.2.7", H1, "Linux", "example.org",
	    OC_ABANDONED, 5}}, .ip = "192.0.2.7", .fpkey = FPKEY_LONG,
	    .hash = H1, .os = "Linux", .domain = "example.org",
	    .cls = "suspect", .score = 3.464068,
	    .reasons = {"ip 192.0.2.7 (bad 0.86, n=5) = +0.6",
	    "prefix 192.0.2.0/24 (bad 0.86, n=5) = +0.3",
	    "rawsig 4:128+0:1460:65535,8:mss,nop,ws,nop,nop,sok,ts:df,"
	    "id+:0:extr"
	    " (bad 0.86, n=5) = +0.9",
	    "os Linux (bad 0.86, n=5) = +0.2",
	    "prefix_rawsig 192.0.2.0/24|" H1 " (bad 0.86, n=5) = +0.6",
	    "domain example.org (bad 0.86, n=5) = +0.9",
	    "score +3.5 -> suspect"}},
};

/*
 * Exploration: with control -1 a session joins the control group when
 * explore_draw < explore_share (1 % by default) and no key it has (of
 * non-zero weight) has explore_max_evidence (10) or more.
 */
static const struct pol_case explore_cases[] = {
	{.name = "draw below the share, nothing known", .dnsbl = 1,
	    .hits = {{"zen.test", 5}}, .control = -1, .draw = 0.005,
	    .cls = "normal", .score = 5, .want_control = 1,
	    .reasons = {"dnsbl zen.test = +5",
	    "score +5.0; control group -> normal"}},
	{.name = "draw at the share", .dnsbl = 1, .hits = {{"zen.test", 5}},
	    .control = -1, .draw = 0.01, .cls = "hostile", .score = 5,
	    .reasons = {"dnsbl zen.test = +5", "score +5.0 -> hostile"}},
	{.name = "draw above the share", .dnsbl = 1,
	    .hits = {{"zen.test", 5}}, .control = -1, .draw = 0.5,
	    .cls = "hostile", .score = 5,
	    .reasons = {"dnsbl zen.test = +5", "score +5.0 -> hostile"}},
	/* 9 rejected: 1.5 x ln 10 x 9/19 = 1.636047; +5 */
	{.name = "little evidence (9 < 10): control",
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 9}},
	    .ip = "192.0.2.7", .dnsbl = 1, .hits = {{"zen.test", 5}},
	    .control = -1, .draw = 0, .cls = "normal", .score = 6.636047,
	    .want_control = 1, .reasons = {"dnsbl zen.test = +5",
	    "ip 192.0.2.7 (bad 0.91, n=9) = +1.1",
	    "prefix 192.0.2.0/24 (bad 0.91, n=9) = +0.5",
	    "score +6.6; control group -> normal"}},
	/* 10 rejected: 1.5 x ln 11 x 10/20 = 1.798421; +5 */
	{.name = "enough evidence (10): no control",
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 10}},
	    .ip = "192.0.2.7", .dnsbl = 1, .hits = {{"zen.test", 5}},
	    .control = -1, .draw = 0, .cls = "hostile", .score = 6.798421,
	    .reasons = {"dnsbl zen.test = +5",
	    "ip 192.0.2.7 (bad 0.92, n=10) = +1.2",
	    "prefix 192.0.2.0/24 (bad 0.92, n=10) = +0.6",
	    "score +6.8 -> hostile"}},
	{.name = "explore_share=0", .conf = {"explore_share=0"}, .dnsbl = 1,
	    .hits = {{"zen.test", 5}}, .control = -1, .draw = 0,
	    .cls = "hostile", .score = 5,
	    .reasons = {"dnsbl zen.test = +5", "score +5.0 -> hostile"}},
	{.name = "keys of weight zero are no evidence",
	    .conf = {"rep_weights=rawsig=1.5"},
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 100}},
	    .ip = "192.0.2.7", .control = -1, .draw = 0, .cls = "normal",
	    .want_control = 1,
	    .reasons = {"score +0.0; control group -> normal"}},
	{.name = "control passed back stays, whatever is known",
	    .teach = {{"192.0.2.7", NULL, NULL, NULL, OC_REJECTED, 100}},
	    .ip = "192.0.2.7", .control = 1, .draw = 0.99, .cls = "normal",
	    .score = 6.293346, .want_control = 1,
	    .reasons = {"ip 192.0.2.7 (bad 0.99, n=100) = +4.2",
	    "prefix 192.0.2.0/24 (bad 0.99, n=100) = +2.1",
	    "score +6.3; control group -> normal"}},
	{.name = "no control passed back stays out", .dnsbl = 1,
	    .hits = {{"zen.test", 5}}, .control = 0, .draw = 0,
	    .cls = "hostile", .score = 5,
	    .reasons = {"dnsbl zen.test = +5", "score +5.0 -> hostile"}},
};

/* Protocol violations move the session to violation_class. */
static const struct pol_case violation_cases[] = {
	{.name = "a violation", .ip = "192.0.2.7", .violations = 1,
	    .violation = "bare LF", .cls = "hostile",
	    .reasons = {"score +0.0 -> normal",
	    "violation bare LF -> hostile"}},
	{.name = "violation_class wins over a worse score",
	    .conf = {"violation_class=suspect"}, .dnsbl = 1,
	    .hits = {{"zen.test", 5}}, .violations = 3,
	    .violation = "pipelining", .cls = "suspect", .score = 5,
	    .reasons = {"dnsbl zen.test = +5", "score +5.0 -> hostile",
	    "violation pipelining -> suspect"}},
	{.name = "empty violation_class: stay",
	    .conf = {"violation_class="}, .violations = 1,
	    .violation = "bare LF", .cls = "normal",
	    .reasons = {"score +0.0 -> normal"}},
	{.name = "no text", .violations = 1, .cls = "hostile",
	    .reasons = {"score +0.0 -> normal", "violation ? -> hostile"}},
	{.name = "no violation counted", .violation = "bare LF",
	    .cls = "normal", .reasons = {"score +0.0 -> normal"}},
	{.name = "in the control group", .violations = 1,
	    .violation = "bare LF", .control = -1, .draw = 0,
	    .cls = "hostile", .want_control = 1,
	    .reasons = {"score +0.0; control group -> normal",
	    "violation bare LF -> hostile"}},
};

static void
test_basic(void **state)
{
	(void)state;
	run_cases(basic_cases, NCASES(basic_cases));
}

static void
test_static(void **state)
{
	(void)state;
	run_cases(static_cases, NCASES(static_cases));
}

static void
test_dnsbl(void **state)
{
	(void)state;
	run_cases(dnsbl_cases, NCASES(dnsbl_cases));
}

static void
test_thresholds(void **state)
{
	(void)state;
	run_cases(threshold_cases, NCASES(threshold_cases));
}

static void
test_reputation(void **state)
{
	(void)state;
	run_cases(rep_cases, NCASES(rep_cases));
}

static void
test_explore(void **state)
{
	(void)state;
	run_cases(explore_cases, NCASES(explore_cases));
}

static void
test_violations(void **state)
{
	(void)state;
	run_cases(violation_cases, NCASES(violation_cases));
}

/* ---------------------------------------------------------------- learning */

/* The six keys of the learning tests' client, in enum order. */
static const char *const learn_keys[REPK_NKINDS] = {
	"192.0.2.7", "192.0.2.0/24", H1, "Linux", "192.0.2.0/24|" H1,
	"example.org",
};

/* count - the decayed count of outcome oc on the learning key of kind */
static double
count(enum rep_keykind kind, enum outcome oc)
{
	struct rep_key k;
	struct rep_est e;

	memset(&k, 0, sizeof(k));
	k.kind = kind;
	snprintf(k.text, sizeof(k.text), "%s", learn_keys[kind]);
	(void)rep_lookup(&k, &e);
	return e.counts[oc];
}

/* updates - rep_update() calls so far */
static unsigned long
updates(void)
{
	struct rep_counters c;

	rep_counters(&c);
	return c.updates;
}

/* learn_input - the learning tests' client; domain optional */
static void
learn_input(struct pol_input *in, const struct conf *cf,
    struct sockaddr_storage *ss, struct fp_result *fp, int domain)
{
	memset(in, 0, sizeof(*in));
	in->cf = cf;
	in->peer = mkpeer(ss, learn_keys[REPK_IP]);
	in->fp = mkfp(fp, NULL, H1, "Linux");
	in->domain = domain ? learn_keys[REPK_DOMAIN] : NULL;
	in->control = -1;
}

static void
test_learn(void **state)
{
	static const enum outcome never[] = {
		OC_BACKEND_ERROR, OC_COMPLETED, OC_REFUSED, OC_NONE, OC_N,
	};
	const struct conf *cf = start(NULL);
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct pol_input in;
	struct rep_est e;
	struct rep_key keys[REPK_NKINDS];
	unsigned long u0;
	size_t	i;
	int	k;

	(void)state;
	learn_input(&in, cf, &ss, &fp, 1);
	/* the keys the policy derives are the ones named here */
	assert_int_equal(rep_keys_for(in.peer, H1, "Linux", "example.org",
	    keys), REPK_NKINDS);
	for (k = 0; k < REPK_NKINDS; k++)
		assert_string_equal(keys[k].text, learn_keys[k]);
	u0 = updates();
	for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		assert_int_equal(pol_learn(&in, never[i]), 0);
	assert_int_equal(updates(), u0);
	for (k = 0; k < REPK_NKINDS; k++)
		assert_int_equal(rep_lookup(&keys[k], &e), 0);

	assert_int_equal(pol_learn(&in, OC_SPAM), REPK_NKINDS);
	assert_int_equal(updates(), u0 + REPK_NKINDS);
	for (k = 0; k < REPK_NKINDS; k++)
		assert_true(count((enum rep_keykind)k, OC_SPAM) == 1);

	/* deferred is counted but is no evidence */
	assert_int_equal(pol_learn(&in, OC_DEFERRED), REPK_NKINDS);
	for (k = 0; k < REPK_NKINDS; k++) {
		assert_true(count((enum rep_keykind)k, OC_DEFERRED) == 1);
		assert_int_equal(rep_lookup(&keys[k], &e), 1);
		assert_true(e.evidence == 1);
	}

	/* listed: every key but the ip */
	u0 = updates();
	assert_int_equal(pol_learn(&in, OC_LISTED), REPK_NKINDS - 1);
	assert_int_equal(updates(), u0 + REPK_NKINDS - 1);
	assert_true(count(REPK_IP, OC_LISTED) == 0);
	for (k = REPK_PREFIX; k < REPK_NKINDS; k++)
		assert_true(count((enum rep_keykind)k, OC_LISTED) == 1);

	/* a good outcome, with only some keys */
	in.fp = NULL;
	in.domain = NULL;
	assert_int_equal(pol_learn(&in, OC_DELIVERED), 2);
	assert_true(count(REPK_IP, OC_DELIVERED) == 1);
	assert_true(count(REPK_PREFIX, OC_DELIVERED) == 1);
	assert_true(count(REPK_RAWSIG, OC_DELIVERED) == 0);
	assert_true(count(REPK_DOMAIN, OC_DELIVERED) == 0);
	stop(NULL);
}

/* sess_in - an input for ip with the fingerprint (hash, os), domain */
static void
sess_in(struct pol_input *in, const struct conf *cf,
    struct sockaddr_storage *ss, struct fp_result *fp, const char *ip,
    const char *hash, const char *os, const char *domain)
{
	memset(in, 0, sizeof(*in));
	in->cf = cf;
	in->peer = mkpeer(ss, ip);
	in->fp = mkfp(fp, NULL, hash, os);
	in->domain = domain;
	in->control = -1;
}

/* teach_patience - n sessions of distinct /24s with this fingerprint */
static void
teach_patience(const struct conf *cf, int n, const char *net, int first,
    const char *hash, const char *os, double gave_up, double dur, int bad)
{
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct pol_input in;
	char	ip[64];
	int	i;

	for (i = 0; i < n; i++) {
		if (net != NULL)	/* one /24: hosts first, first + 1 .. */
			snprintf(ip, sizeof(ip), "%s.%d", net, first + i);
		else			/* each in its own /24 */
			snprintf(ip, sizeof(ip), "10.%d.%d.9", first + i / 250,
			    i % 250);
		sess_in(&in, cf, &ss, &fp, ip, hash, os, NULL);
		(void)pol_learn_patience(&in, gave_up, dur, bad);
	}
}

/*
 * pol_patience: the most specific key with patience_min_evidence
 * sessions, its quantile and the reason; pol_learn_patience: what each
 * kind of session teaches.
 */
static void
test_patience(void **state)
{
	static const char *const ov25[] = { "patience_min_evidence=25", NULL };
	static const struct hit block[] = {{"zen.test", 3}, {NULL, 0}};
	const struct conf *cf = start(NULL);
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct dnsbl_result dr;
	struct pol_input in;
	struct pol_patience pp;

	(void)state;
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Windows 10", NULL);
	assert_int_equal(pol_patience(&in, REP_PAT_GAVEUP, 0.9, &pp), -1);

	/* what a session teaches: 5 keys (no domain) per histogram */
	assert_int_equal(pol_learn_patience(&in, -1, 30, 0), 0);
	assert_int_equal(pol_learn_patience(&in, NAN, 30, 0), 0);
	assert_int_equal(pol_learn_patience(&in, -1, -1, 1), 0);
	stop(NULL);
	cf = start(NULL);
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Windows 10", NULL);
	assert_int_equal(pol_learn_patience(&in, 12, 12, 0), 5);
	assert_int_equal(pol_learn_patience(&in, 12, 12, 1), 10);
	assert_int_equal(pol_learn_patience(&in, -1, 40, 1), 5);
	in.dnsbl = mkdnsbl(&dr, block, 1);	/* listed: bad by itself */
	assert_int_equal(pol_learn_patience(&in, -1, 40, 0), 5);
	stop(NULL);

	/* 27 bots of the raw signature H1 give up at 10 s, 3 at 21 s */
	cf = start(NULL);
	teach_patience(cf, 27, NULL, 0, H1, "Windows 10", 10, 10, 1);
	teach_patience(cf, 3, NULL, 1, H1, "Windows 10", 21, 21, 1);
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Windows 10", NULL);
	assert_int_equal(pol_patience(&in, REP_PAT_GAVEUP, 0.95, &pp), 0);
	assert_int_equal(pp.key_kind, REPK_RAWSIG);
	assert_true(fabs(pp.seconds - 25) < 1e-5);
	assert_true(fabs(pp.n - 30) < 1e-5);
	assert_string_equal(pp.key, FPKEY);
	assert_string_equal(pp.reason, "patience rawsig " FPKEY
	    " p95 25.0s (n=30)");
	assert_int_equal(pol_patience(&in, REP_PAT_BAD, 0.9, &pp), 0);
	assert_true(fabs(pp.seconds - 15) < 1e-5);
	assert_string_equal(pp.reason, "patience rawsig " FPKEY
	    " p90 15.0s (n=30)");
	/* the OS label has as much, but is less specific */
	assert_int_equal(pp.key_kind, REPK_RAWSIG);
	/* another raw signature of that OS: the OS label answers */
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H3, "Windows 10", NULL);
	assert_int_equal(pol_patience(&in, REP_PAT_GAVEUP, 0.5, &pp), 0);
	assert_int_equal(pp.key_kind, REPK_OS);
	assert_string_equal(pp.reason, "patience os Windows 10 p50 12.8s "
	    "(n=30)");

	/* 20 sessions from the client's /24 (another signature) at 3 s:
	 * the prefix is more specific than the raw signature */
	teach_patience(cf, 20, "192.0.2", 100, H2, "Linux", 3.5, 3.5, 1);
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Windows 10", NULL);
	assert_int_equal(pol_patience(&in, REP_PAT_GAVEUP, 0.5, &pp), 0);
	assert_int_equal(pp.key_kind, REPK_PREFIX);
	assert_true(fabs(pp.seconds - 4) < 1e-5);	/* 3 + 0.5 x 2 */
	assert_string_equal(pp.reason, "patience prefix 192.0.2.0/24 p50 "
	    "4.0s (n=20)");
	stop(NULL);

	/* patience_min_evidence=25: 20 is too few, the raw signature again */
	cf = start(ov25);
	teach_patience(cf, 30, NULL, 0, H1, "Windows 10", 10, 10, 1);
	teach_patience(cf, 20, "192.0.2", 100, H2, "Linux", 3.5, 3.5, 1);
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Windows 10", NULL);
	assert_int_equal(pol_patience(&in, REP_PAT_GAVEUP, 0.5, &pp), 0);
	assert_int_equal(pp.key_kind, REPK_RAWSIG);
	/* one half-life later 30 count 15: not enough any more */
	rep_set_clock(T0 + cf->rep_half_life);
	assert_int_equal(pol_patience(&in, REP_PAT_GAVEUP, 0.5, &pp), -1);
	assert_int_equal(pol_patience(&in, REP_PAT_NKINDS, 0.5, &pp), -1);
}

/*
 * pol_first_contact: good history of the ip, the prefix or the domain
 * makes a sender known; of the raw signature or OS label it does not;
 * it decays; client_class_map is never a first contact.
 */
static void
test_first_contact(void **state)
{
	static const char *const map[] = {
	    "client_class_map=198.51.100.0/24=suspect", NULL };
	static const char *const two[] = { "first_contact_min_good=2", NULL };
	const struct conf *cf = start(NULL);
	struct sockaddr_storage ss, ss2;
	struct fp_result fp, fp2;
	struct pol_input in, other;

	(void)state;
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Linux", "example.org");
	assert_int_equal(pol_first_contact(&in), 1);
	/* a good raw signature and OS label, elsewhere: still first */
	sess_in(&other, cf, &ss2, &fp2, "203.0.113.5", H1, "Linux", NULL);
	pol_learn(&other, OC_DELIVERED);
	pol_learn(&other, OC_HAM);
	assert_int_equal(pol_first_contact(&in), 1);
	/* bad history of its own is no good history */
	pol_learn(&in, OC_REJECTED);
	assert_int_equal(pol_first_contact(&in), 1);
	/* the domain delivered from another network: known */
	sess_in(&other, cf, &ss2, &fp2, "203.0.113.5", NULL, NULL,
	    "example.org");
	pol_learn(&other, OC_DELIVERED);
	assert_int_equal(pol_first_contact(&in), 0);
	in.domain = NULL;			/* not verified (yet) */
	assert_int_equal(pol_first_contact(&in), 1);
	/* a neighbour in its /24 delivered */
	sess_in(&other, cf, &ss2, &fp2, "192.0.2.200", NULL, NULL, NULL);
	pol_learn(&other, OC_DELIVERED);
	assert_int_equal(pol_first_contact(&in), 0);
	/* one half-life: 0.5 is still enough; two: 0.25 is not */
	rep_set_clock(T0 + cf->rep_half_life);
	assert_int_equal(pol_first_contact(&in), 0);
	rep_set_clock(T0 + 2 * cf->rep_half_life);
	assert_int_equal(pol_first_contact(&in), 1);
	/* ham (feedback) is good history too, on the ip */
	pol_learn(&in, OC_HAM);
	assert_int_equal(pol_first_contact(&in), 0);
	stop(NULL);

	/* first_contact_min_good=2: one delivery is not enough */
	cf = start(two);
	sess_in(&in, cf, &ss, &fp, "192.0.2.7", H1, "Linux", NULL);
	pol_learn(&in, OC_DELIVERED);
	assert_int_equal(pol_first_contact(&in), 1);
	pol_learn(&in, OC_DELIVERED);
	assert_int_equal(pol_first_contact(&in), 0);
	stop(NULL);

	/* client_class_map: its class's delays, never a first contact */
	cf = start(map);
	sess_in(&in, cf, &ss, &fp, "198.51.100.9", H1, "Linux", NULL);
	assert_int_equal(pol_first_contact(&in), 0);
	sess_in(&in, cf, &ss, &fp, "198.51.101.9", H1, "Linux", NULL);
	assert_int_equal(pol_first_contact(&in), 1);
	/* no peer at all: nothing known */
	in.peer = NULL;
	in.fp = NULL;
	assert_int_equal(pol_first_contact(&in), 1);
}

#define BIT(k)	(1u << (k))
#define NOT_IP	(BIT(REPK_PREFIX) | BIT(REPK_RAWSIG) | BIT(REPK_OS) | \
		 BIT(REPK_PREFIX_RAWSIG))

static void
test_learn_listing(void **state)
{
	static const struct hit allow[] = {{"wl.test", -3}, {NULL, 0}};
	static const struct hit zero[] = {{"info.test", 0}, {NULL, 0}};
	static const struct hit block[] = {{"wl.test", -3}, {"zen.test", 3},
	    {NULL, 0}};
	const struct conf *cf = start(NULL);
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct dnsbl_result dr;
	struct pol_input in;
	unsigned long u0;
	unsigned done;
	int	k;

	(void)state;
	learn_input(&in, cf, &ss, &fp, 0);
	u0 = updates();
	/* no answer, allow lists only, a weight of zero: nothing */
	assert_int_equal(pol_learn_listing(&in, 0), 0);
	in.dnsbl = mkdnsbl(&dr, allow, 2);
	assert_int_equal(pol_learn_listing(&in, 0), 0);
	assert_int_equal(pol_learn_listing(&in, 0x40), 0x40);
	in.dnsbl = mkdnsbl(&dr, zero, 2);
	assert_int_equal(pol_learn_listing(&in, 0), 0);
	assert_int_equal(updates(), u0);

	/* a block list among allow lists: every key but the ip, once */
	in.dnsbl = mkdnsbl(&dr, block, 3);
	done = pol_learn_listing(&in, 0);
	assert_int_equal(done, NOT_IP);
	assert_int_equal(updates(), u0 + 4);
	assert_true(count(REPK_IP, OC_LISTED) == 0);
	for (k = REPK_PREFIX; k < REPK_DOMAIN; k++)
		assert_true(count((enum rep_keykind)k, OC_LISTED) == 1);
	/* called again: the same kinds, nothing taught twice */
	assert_int_equal(pol_learn_listing(&in, done), NOT_IP);
	assert_int_equal(updates(), u0 + 4);
	/* the domain arrives later: only it is taught */
	in.domain = learn_keys[REPK_DOMAIN];
	done = pol_learn_listing(&in, done);
	assert_int_equal(done, NOT_IP | BIT(REPK_DOMAIN));
	assert_int_equal(updates(), u0 + 5);
	assert_true(count(REPK_DOMAIN, OC_LISTED) == 1);
	assert_true(count(REPK_RAWSIG, OC_LISTED) == 1);
	/* kinds in done are skipped, other bits kept, the ip never taught */
	u0 = updates();
	done = pol_learn_listing(&in, BIT(REPK_OS) | BIT(REPK_IP) | 0x80);
	assert_int_equal(done, NOT_IP | BIT(REPK_DOMAIN) | BIT(REPK_IP) |
	    0x80);
	assert_int_equal(updates(), u0 + 4);
	assert_true(count(REPK_OS, OC_LISTED) == 1);
	assert_true(count(REPK_RAWSIG, OC_LISTED) == 2);
	assert_true(count(REPK_IP, OC_LISTED) == 0);
	stop(NULL);
}

/* ---------------------------------------------------------------- reasons */

static void
test_reasons(void **state)
{
	static const char *const ov[] = {
		"rep_weights=ip=1e200 prefix=1e200 rawsig=1e200 os=1e200 "
		    "prefix_rawsig=1e200 domain=1e200", NULL,
	};
	static const struct hit one[] = {{"zen.test", 3}, {NULL, 0}};
	const struct conf *cf;
	struct sockaddr_storage ss;
	struct fp_result fp;
	struct dnsbl_result dr;
	struct pol_input in;
	struct pol_verdict v;
	struct hit many[DNSBL_MAX_HITS];
	char	zones[DNSBL_MAX_HITS][64], longv[300];
	const char *r;
	size_t	len;
	int	i;

	(void)state;
	/* a verdict used again starts over */
	cf = start(NULL);
	memset(&in, 0, sizeof(in));
	in.cf = cf;
	in.dnsbl = mkdnsbl(&dr, one, 2);
	pol_classify(&in, &v);
	assert_int_equal(v.nreasons, 2);
	in.dnsbl = NULL;
	pol_classify(&in, &v);
	assert_int_equal(v.nreasons, 1);
	assert_int_equal(v.reasons_len, strlen("score +0.0 -> normal") + 1);
	assert_int_equal(v.reasons_cut, 0);
	assert_string_equal(pol_reason(&v, 0), "score +0.0 -> normal");
	assert_null(pol_reason(&v, 1));
	assert_null(pol_reason(&v, -1));
	/* one reason longer than POL_REASON_MAX is cut */
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	in.violations = 1;
	in.violation = longv;
	pol_classify(&in, &v);
	assert_int_equal(v.nreasons, 2);
	r = pol_reason(&v, 1);
	assert_int_equal(strlen(r), POL_REASON_MAX - 1);
	assert_memory_equal(r, "violation xxx", 13);
	assert_string_equal(v.class_name, "hostile");
	stop(NULL);

	/*
	 * A full buffer: eight 63-character zones (80 bytes each with the
	 * NUL), then reputation reasons cut at 199 characters (the weights
	 * make their numbers 200 digits long).  Inputs leave 2 x 200 bytes
	 * for the decision's own lines: 640 + 5 x 200 = 1640 fit in 1648,
	 * the sixth reputation reason does not and is left out
	 * (reasons_cut); the score line (200) and the violation line (29)
	 * always fit: 1640 + 200 + 29 = 1869 bytes.
	 */
	cf = start(ov);
	for (i = 0; i < DNSBL_MAX_HITS; i++) {
		snprintf(zones[i], sizeof(zones[i]), "%c%s", '0' + i,
		    "-list.a-very-long-dns-block-list-zone-name"
		    ".in-the.example.test");
		many[i].zone = zones[i];
		many[i].weight = 1e200;
	}
	teach(cf, &(struct teach){"192.0.2.7", H1, "Linux", "example.org",
	    OC_SPAM, 5}, 1);
	learn_input(&in, cf, &ss, &fp, 1);
	in.dnsbl = mkdnsbl(&dr, many, DNSBL_MAX_HITS);
	in.violations = 1;
	in.violation = "bare LF";
	pol_classify(&in, &v);
	assert_int_equal(strlen(zones[0]), 63);
	assert_int_equal(v.nreasons, DNSBL_MAX_HITS + REPK_NKINDS - 1 + 2);
	assert_int_equal(v.reasons_len, 1869);
	assert_int_equal(v.reasons_cut, 1);
	assert_true(v.reasons_len <= sizeof(v.reasons));
	for (i = 0, len = 0; i < v.nreasons; i++) {
		r = pol_reason(&v, i);
		assert_non_null(r);
		assert_true(strlen(r) < POL_REASON_MAX);
		len += strlen(r) + 1;
		if (i < DNSBL_MAX_HITS) {
			char	want[128];

			snprintf(want, sizeof(want), "dnsbl %s = +1e+200",
			    zones[i]);
			assert_string_equal(r, want);
		}
	}
	assert_int_equal(len, v.reasons_len);
	assert_null(pol_reason(&v, v.nreasons));
	assert_memory_equal(pol_reason(&v, DNSBL_MAX_HITS), "ip 192.0.2.7 "
	    "(bad 0.86, n=5) = +5972531564", 40);
	assert_memory_equal(pol_reason(&v, v.nreasons - 2), "score +", 7);
	assert_string_equal(pol_reason(&v, v.nreasons - 1),
	    "violation bare LF -> hostile");
	assert_string_equal(v.class_name, "hostile");	/* still decided */
	stop(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_basic, stop),
		cmocka_unit_test_teardown(test_static, stop),
		cmocka_unit_test_teardown(test_dnsbl, stop),
		cmocka_unit_test_teardown(test_thresholds, stop),
		cmocka_unit_test_teardown(test_reputation, stop),
		cmocka_unit_test_teardown(test_explore, stop),
		cmocka_unit_test_teardown(test_violations, stop),
		cmocka_unit_test_teardown(test_learn, stop),
		cmocka_unit_test_teardown(test_learn_listing, stop),
		cmocka_unit_test_teardown(test_reasons, stop),
		cmocka_unit_test_teardown(test_patience, stop),
		cmocka_unit_test_teardown(test_first_contact, stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
