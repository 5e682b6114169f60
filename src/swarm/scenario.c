/*
 * scenario.c - parse and validate the swarm's scenario files
 *
 * Exports scenario_load() / scenario_parse_buf() (a .scn file into a
 * struct scenario), scenario_free(), scenario_find(), scenario_kind_name(),
 * scenario_default_path(), the address helpers scenario_address() and
 * scenario_is_listed(), and the reproducible draws scenario_rng_next(),
 * scenario_draw_patience(), scenario_draw_truth(),
 * scenario_draw_population() and scenario_retry_delay().
 *
 * Syntax (doc/internals/scenario.md): unindented "key = value" lines are
 * globals; "population NAME" starts a block whose indented "key = value"
 * lines describe one population; '#' starts a comment.  Keys a population
 * leaves out take its kind's defaults.  The first error wins and reads
 * "file:line: reason"; nothing is returned half-parsed.
 *
 * The caller owns the returned struct scenario and frees it with
 * scenario_free().  Each population's persona pointer is borrowed from the
 * persona set given to the parser: it is an error to free that set while
 * the scenario is in use.  The draws keep no state of their own; the
 * caller holds the PRNG state (a uint64_t seeded from sc->seed).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "swarm/scenario.h"
#include "util/str.h"

#ifndef MS_DATADIR
#define MS_DATADIR "/usr/local/share/mailshaper"
#endif

#define SCN_FILE_MAX	(1 << 20)	/* largest file we read */
#define SCN_LINE_MAX	1024		/* longest line */
#define SCN_SUM_EPS	0.01		/* shares must add to 100 +- this */
#define SCN_MS_MAX	(86400000ULL * 365)	/* longest time: a year */

/* Value types of the key tables. */
enum scn_vtype {
	V_TIME,		/* "90s", "5m", bare = seconds; stored in ms */
	V_PCT,		/* "50%" or "50", 0..100 */
	V_UINT,		/* decimal integer within bounds */
	V_BOOL,		/* yes | no */
	V_SPECIAL	/* parsed by its own code */
};

struct scn_key {
	const char	*name;
	enum scn_vtype	type;
	unsigned long long min, max;	/* bounds of V_UINT and V_TIME */
};

/* Globals, in the order doc/internals/scenario.md lists them. */
enum {
	G_DURATION, G_CLOCK, G_SEED, G_DAEMON, G_BACKEND_REJECT,
	G_DNSBL_LISTED, G_CONCURRENCY, G_RANGES, G_DNS_DOMAIN, G_RATE,
	G_DRAIN, G_DNSBL_WEIGHT, G_DAEMON_OPTION, G_COUNT
};
static const struct scn_key gkeys[G_COUNT] = {
	{"duration", V_TIME, 1000, 86400000},
	{"clock", V_SPECIAL, 0, 0},
	{"seed", V_SPECIAL, 0, 0},
	{"daemon", V_SPECIAL, 0, 0},
	{"backend_reject", V_PCT, 0, 0},
	{"dnsbl_listed", V_PCT, 0, 0},
	{"concurrency", V_UINT, 1, 100000},
	{"ranges", V_SPECIAL, 0, 0},
	{"dns_domain", V_SPECIAL, 0, 0},
	{"rate", V_UINT, 1, 100000},
	{"drain", V_TIME, 0, 3600000},
	{"dnsbl_weight", V_SPECIAL, 0, 0},
	{"daemon_option", V_SPECIAL, 0, 0},	/* repeatable */
};

/* Population keys. */
enum {
	P_KIND, P_SHARE, P_PERSONA, P_ADDRESSES, P_MESSAGES, P_TRUTH,
	P_PATIENCE, P_PREGREET, P_PIPELINING, P_STARTTLS, P_RETRY,
	P_RETRY_FOR, P_CONCURRENCY, P_RANDOM_HELO, P_DNSBL_LISTED,
	P_RDNS_DOMAIN, P_COUNT
};
static const struct scn_key pkeys[P_COUNT] = {
	{"kind", V_SPECIAL, 0, 0},
	{"share", V_PCT, 0, 0},
	{"persona", V_SPECIAL, 0, 0},
	{"addresses", V_UINT, 1, 10000000},
	{"messages", V_UINT, 1, 10000},
	{"truth", V_SPECIAL, 0, 0},
	{"patience", V_SPECIAL, 0, 0},
	{"pregreet", V_PCT, 0, 0},
	{"pipelining", V_BOOL, 0, 0},
	{"starttls", V_BOOL, 0, 0},
	{"retry", V_SPECIAL, 0, 0},
	{"retry_for", V_TIME, 1000, SCN_MS_MAX},
	{"concurrency", V_UINT, 1, 100000},
	{"random_helo", V_BOOL, 0, 0},
	{"dnsbl_listed", V_PCT, 0, 0},
	{"rdns_domain", V_SPECIAL, 0, 0},
};

static const char *const kind_names[SCN_KIND_COUNT] = {
	"legit_mta", "zombie", "router", "bulk_sender", "big_sender",
};

/*
 * What each kind does when the file does not say.  Text goes through the
 * same parsers as the file.  concurrency 0 = the scenario's total cap.
 */
static const struct {
	unsigned	messages;
	const char	*truth, *patience, *retry;
	double		pregreet;
	int		pipelining, starttls, random_helo;
	unsigned	concurrency;
} kind_defaults[SCN_KIND_COUNT] = {
	/* legit_mta */
	{1, "ham:100%", "rfc", "5m..1h", 0, 1, 1, 0, 50},
	/* zombie: the published botnet figures (issue 5): most give up
	 * within 10 s, some at 21 s (Rustock), a few at 100 s (Climbot) */
	{1, "spam:100%", "10s:80%,21s:15%,100s:5%", "none", 10, 0, 0, 1, 0},
	/* router: steady and moderately patient */
	{1, "spam:100%", "30s:50%,60s:30%,120s:20%", "none", 0, 0, 0, 0, 20},
	/* bulk_sender */
	{5, "ham:100%", "rfc", "5m..1h", 0, 1, 1, 0, 50},
	/* big_sender */
	{10, "ham:100%", "rfc", "1m..30m", 0, 1, 1, 0, 100},
};

struct sstate {			/* parser state for one file */
	const char	*file;
	unsigned	line;
	const struct persona_set *ps;
	struct scenario	*sc;
	struct population *cur;		/* block being filled, or NULL */
	unsigned	gline[G_COUNT];	/* line each global was set on, 0 */
	unsigned	pline[SCN_MAX_POPS][P_COUNT]; /* same per population */
	char		*err;
	size_t		errlen;
};

/* serr - format "file:line: reason" into the caller's buffer */
static int
serr(struct sstate *st, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
serr(struct sstate *st, unsigned line, const char *fmt, ...)
{
	char	why[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(st->err, st->errlen, "%s:%u: %s", st->file, line, why);
	return -1;
}

/* parse_real - plain decimal digits with one optional '.'; rest points
 * past it (no sign, exponent, hex, inf or nan) */
static int
parse_real(const char *v, double *out, const char **rest)
{
	char	num[64], *end;
	size_t	n = strspn(v, "0123456789.");
	double	d;

	if (!isdigit((unsigned char)*v) || n >= sizeof(num) ||
	    memchr(v, '.', n) != memrchr(v, '.', n))
		return -1;
	memcpy(num, v, n);
	num[n] = '\0';
	errno = 0;
	d = strtod(num, &end);
	if (*end != '\0' || errno != 0 || !isfinite(d) || d < 0)
		return -1;
	*out = d;
	*rest = v + n;
	return 0;
}

/* parse_time - "90s", "5m", "250ms", bare seconds; ms in *out */
static int
parse_time(struct sstate *st, const char *v, uint64_t min, uint64_t max,
    uint64_t *out)
{
	const char *u;
	double	d, mul;

	if (parse_real(v, &d, &u) < 0)
		goto bad;
	if (strcmp(u, "ms") == 0)
		mul = 1;
	else if (*u == '\0' || strcmp(u, "s") == 0)
		mul = 1000;
	else if (strcmp(u, "m") == 0)
		mul = 60000;
	else if (strcmp(u, "h") == 0)
		mul = 3600000;
	else if (strcmp(u, "d") == 0)
		mul = 86400000;
	else
		goto bad;
	d *= mul;
	if (d != floor(d) || d < (double)min || d > (double)max)
		return serr(st, st->line, "'%s' is out of range (%llums..%llums)",
		    v, (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)d;
	return 0;
bad:
	return serr(st, st->line, "'%s' is not a time (a number and ms, s, m, "
	    "h or d)", v);
}

/* parse_pct - "50%", "12.5" (0..100) */
static int
parse_pct(struct sstate *st, const char *v, double *out)
{
	const char *rest;
	double	d;

	if (parse_real(v, &d, &rest) < 0 || (*rest != '\0' &&
	    strcmp(rest, "%") != 0) || d > 100)
		return serr(st, st->line, "'%s' is not a percentage from 0 to "
		    "100", v);
	*out = d;
	return 0;
}

/* parse_uint - a decimal integer within min..max */
static int
parse_uint(struct sstate *st, const char *v, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long n;
	char   *end;

	if (!isdigit((unsigned char)*v))
		goto bad;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*end != '\0' || errno != 0)
		goto bad;
	if (n < min || n > max)
		return serr(st, st->line, "'%s' is out of range (%llu..%llu)",
		    v, min, max);
	*out = n;
	return 0;
bad:
	return serr(st, st->line, "'%s' is not a whole number", v);
}

/* parse_bool - yes | no */
static int
parse_bool(struct sstate *st, const char *v, int *out)
{
	if (strcmp(v, "yes") == 0)
		*out = 1;
	else if (strcmp(v, "no") == 0)
		*out = 0;
	else
		return serr(st, st->line, "'%s' is not yes or no", v);
	return 0;
}

/* valid_domain - 1 if s is a DNS name: labels of [A-Za-z0-9-], 1..63 */
static int
valid_domain(const char *s)
{
	size_t	lab = 0, n = strlen(s);

	if (n == 0 || n >= SCN_DOMAIN_MAX || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-') {
			if (++lab > 63)
				return 0;
		} else
			return 0;
	}
	return 1;
}

/* parse_domain - a DNS name into a SCN_DOMAIN_MAX buffer */
static int
parse_domain(struct sstate *st, const char *v, char *out)
{
	if (!valid_domain(v))
		return serr(st, st->line, "'%s' is not a DNS domain", v);
	snprintf(out, SCN_DOMAIN_MAX, "%s", v);
	return 0;
}

/* in_range - 1 if c lies inside 198.18.0.0/15 or 2001:db8::/32 */
static int
in_range(const struct cidr *c)
{
	static const uint8_t v6[4] = {0x20, 0x01, 0x0d, 0xb8};

	if (c->family == AF_INET)
		return c->plen >= 15 && c->addr[0] == 198 &&
		    (c->addr[1] & 0xfe) == 18;
	return c->plen >= 32 && memcmp(c->addr, v6, 4) == 0;
}

/* overlaps - 1 if two prefixes share an address */
static int
overlaps(const struct cidr *a, const struct cidr *b)
{
	int	plen = a->plen < b->plen ? a->plen : b->plen, i;

	if (a->family != b->family)
		return 0;
	for (i = 0; i < plen; i++) {
		int	m = 0x80 >> (i % 8);

		if ((a->addr[i / 8] & m) != (b->addr[i / 8] & m))
			return 0;
	}
	return 1;
}

/* range_capacity - usable addresses: all but the network's first */
static uint64_t
range_capacity(const struct cidr *c)
{
	int	hb = (c->family == AF_INET ? 32 : 128) - c->plen;

	if (hb == 0)
		return 1;
	if (hb > 40)
		hb = 40;	/* 2^40 hosts are more than any run needs */
	return ((uint64_t)1 << hb) - 1;
}

/* parse_ranges - "198.18.0.0/16, 2001:db8::/48" */
static int
parse_ranges(struct sstate *st, const char *v)
{
	struct scenario *sc = st->sc;
	char	copy[SCN_LINE_MAX], *cur, *w, why[256];
	unsigned i;

	snprintf(copy, sizeof(copy), "%s", v);
	sc->nranges = 0;
	for (cur = copy; (w = strsep(&cur, ", \t")) != NULL; ) {
		struct cidr c;

		if (*w == '\0')
			continue;
		if (sc->nranges == SCN_MAX_RANGES)
			return serr(st, st->line, "more than %d ranges",
			    SCN_MAX_RANGES);
		if (addr_parse_cidr(w, &c, why, sizeof(why)) < 0)
			return serr(st, st->line, "%s", why);
		if (!in_range(&c))
			return serr(st, st->line, "'%s' is outside "
			    "198.18.0.0/15 and 2001:db8::/32", w);
		for (i = 0; i < sc->nranges; i++)
			if (overlaps(&c, &sc->ranges[i]))
				return serr(st, st->line, "'%s' overlaps "
				    "another range", w);
		sc->ranges[sc->nranges++] = c;
	}
	if (sc->nranges == 0)
		return serr(st, st->line, "no address range given");
	return 0;
}

/* parse_patience - "rfc" or "10s:80%,21s:15%,100s:5%" */
static int
parse_patience(struct sstate *st, struct population *p, const char *v)
{
	char	copy[SCN_LINE_MAX], *cur, *w, *colon;
	double	sum = 0;

	p->npatience = 0;
	p->patience_rfc = 0;
	if (strcmp(v, "rfc") == 0) {
		p->patience_rfc = 1;
		return 0;
	}
	snprintf(copy, sizeof(copy), "%s", v);
	for (cur = copy; (w = strsep(&cur, ",")) != NULL; ) {
		struct scn_step *s;

		w = str_trim(w);
		if (p->npatience == SCN_MAX_STEPS)
			return serr(st, st->line, "more than %d patience steps",
			    SCN_MAX_STEPS);
		if ((colon = strchr(w, ':')) == NULL)
			return serr(st, st->line, "patience is rfc or "
			    "time:share,... (e.g. 10s:80%%,21s:20%%), not '%s'",
			    v);
		*colon++ = '\0';
		s = &p->patience[p->npatience];
		if (parse_time(st, str_trim(w), 1, SCN_MS_MAX, &s->ms) < 0 ||
		    parse_pct(st, str_trim(colon), &s->pct) < 0)
			return -1;
		if (p->npatience > 0 && s->ms <= s[-1].ms)
			return serr(st, st->line, "patience steps must be in "
			    "ascending time order");
		sum += s->pct;
		p->npatience++;
	}
	if (fabs(sum - 100) > SCN_SUM_EPS)
		return serr(st, st->line, "patience shares add up to %g%%, "
		    "not 100%%", sum);
	return 0;
}

/* parse_truth - "ham:100%", "ham:20%,spam:80%" */
static int
parse_truth(struct sstate *st, struct population *p, const char *v)
{
	char	copy[SCN_LINE_MAX], *cur, *w, *colon;
	int	seen_ham = 0, seen_spam = 0;
	double	d;

	p->ham_pct = p->spam_pct = 0;
	snprintf(copy, sizeof(copy), "%s", v);
	for (cur = copy; (w = strsep(&cur, ",")) != NULL; ) {
		if ((colon = strchr(w, ':')) == NULL)
			goto bad;
		*colon++ = '\0';
		w = str_trim(w);
		if (parse_pct(st, str_trim(colon), &d) < 0)
			return -1;
		if (strcmp(w, "ham") == 0 && !seen_ham++)
			p->ham_pct = d;
		else if (strcmp(w, "spam") == 0 && !seen_spam++)
			p->spam_pct = d;
		else
			goto bad;
	}
	if (fabs(p->ham_pct + p->spam_pct - 100) > SCN_SUM_EPS)
		return serr(st, st->line, "truth adds up to %g%%, not 100%%",
		    p->ham_pct + p->spam_pct);
	return 0;
bad:
	return serr(st, st->line, "truth is ham:N%%,spam:N%% (each at most "
	    "once), not '%s'", v);
}

/* parse_retry - "none" or "BASE..MAX" (exponential backoff) */
static int
parse_retry(struct sstate *st, struct population *p, const char *v)
{
	char	copy[SCN_LINE_MAX], *dots;

	p->retry_base_ms = p->retry_max_ms = 0;
	if (strcmp(v, "none") == 0)
		return 0;
	snprintf(copy, sizeof(copy), "%s", v);
	if ((dots = strstr(copy, "..")) == NULL)
		return serr(st, st->line, "retry is none or BASE..MAX "
		    "(e.g. 5m..1h), not '%s'", v);
	*dots = '\0';
	if (parse_time(st, str_trim(copy), 1, SCN_MS_MAX, &p->retry_base_ms) < 0 ||
	    parse_time(st, str_trim(dots + 2), 1, SCN_MS_MAX, &p->retry_max_ms) < 0)
		return -1;
	if (p->retry_base_ms > p->retry_max_ms)
		return serr(st, st->line, "the retry base is above its maximum");
	return 0;
}

/* find_key - index of name in a key table, or -1 */
static int
find_key(const struct scn_key *t, int n, const char *name)
{
	int	i;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return i;
	return -1;
}

/* set_simple - the table-driven types; NULL dst types go to special code */
static int
set_simple(struct sstate *st, const struct scn_key *k, const char *v,
    void *dst)
{
	unsigned long long n;
	uint64_t ms;

	switch (k->type) {
	case V_TIME:
		if (parse_time(st, v, k->min, k->max, &ms) < 0)
			return -1;
		*(uint64_t *)dst = ms;
		return 0;
	case V_PCT:
		return parse_pct(st, v, (double *)dst);
	case V_UINT:
		if (parse_uint(st, v, k->min, k->max, &n) < 0)
			return -1;
		*(unsigned *)dst = (unsigned)n;	/* every max fits */
		return 0;
	case V_BOOL:
		return parse_bool(st, v, (int *)dst);
	default:
		return 0;
	}
}

/*
 * parse_daemon_option - "name = value": one more mailshaper.conf line for
 * the daemon of the run (doc/internals/scenario.md).  The name is the
 * daemon's parameter ([a-z0-9_]); the daemon itself checks it and its
 * value when it starts.
 */
static int
parse_daemon_option(struct sstate *st, const char *v)
{
	struct scenario *sc = st->sc;
	const char *eq = strchr(v, '=');
	const char *val;
	size_t	nlen, i;

	if (eq == NULL)
		return serr(st, st->line, "daemon_option wants 'name = "
		    "value'");
	nlen = (size_t)(eq - v);
	while (nlen > 0 && isspace((unsigned char)v[nlen - 1]))
		nlen--;
	for (val = eq + 1; isspace((unsigned char)*val); val++)
		;
	if (nlen == 0 || *val == '\0')
		return serr(st, st->line, "daemon_option wants 'name = "
		    "value'");
	for (i = 0; i < nlen; i++)
		if (!islower((unsigned char)v[i]) &&
		    !isdigit((unsigned char)v[i]) && v[i] != '_')
			return serr(st, st->line, "daemon_option: '%.*s' is "
			    "not a parameter name", (int)nlen, v);
	if (sc->ndaemon_opts == SCN_MAX_OPTS)
		return serr(st, st->line, "more than %d daemon_option lines",
		    SCN_MAX_OPTS);
	if (nlen + 3 + strlen(val) >= SCN_OPT_MAX)
		return serr(st, st->line, "daemon_option too long");
	snprintf(sc->daemon_opts[sc->ndaemon_opts++], SCN_OPT_MAX,
	    "%.*s = %s", (int)nlen, v, val);
	return 0;
}

/* global_line - one unindented "key = value" */
static int
global_line(struct sstate *st, const char *key, const char *v)
{
	struct scenario *sc = st->sc;
	unsigned long long n;
	const char *rest;
	char	why[256];
	int	k;
	void   *dst = NULL;

	if ((k = find_key(gkeys, G_COUNT, key)) < 0)
		return serr(st, st->line, "unknown key '%s'", key);
	if (k == G_DAEMON_OPTION)
		return parse_daemon_option(st, v);
	if (st->gline[k])
		return serr(st, st->line, "'%s' given twice (first on line %u)",
		    key, st->gline[k]);
	st->gline[k] = st->line;
	switch (k) {
	case G_DURATION: dst = &sc->duration_ms; break;
	case G_BACKEND_REJECT: dst = &sc->backend_reject_pct; break;
	case G_DNSBL_LISTED: dst = &sc->dnsbl_listed_pct; break;
	case G_CONCURRENCY: dst = &sc->concurrency; break;
	case G_RATE: dst = &sc->rate; break;
	case G_DRAIN: dst = &sc->drain_ms; break;
	case G_CLOCK:
		if (parse_real(v, &sc->clock, &rest) < 0 || *rest != '\0')
			return serr(st, st->line, "'%s' is not a number", v);
		if (sc->clock < 1 || sc->clock > 1000000)
			return serr(st, st->line, "'%s' is out of range "
			    "(1..1000000)", v);
		return 0;
	case G_SEED:
		if (parse_uint(st, v, 0, UINT64_MAX, &n) < 0)
			return -1;
		sc->seed = n;
		return 0;
	case G_DAEMON:
		if (addr_parse_endpoint(v, 25, &sc->daemon, why,
		    sizeof(why)) < 0)
			return serr(st, st->line, "%s", why);
		if (sc->daemon.ss.ss_family != AF_INET &&
		    sc->daemon.ss.ss_family != AF_INET6)
			return serr(st, st->line, "the daemon needs an IP "
			    "address and port");
		return 0;
	case G_DNSBL_WEIGHT:
		if (parse_real(v, &sc->dnsbl_weight, &rest) < 0 ||
		    *rest != '\0')
			return serr(st, st->line, "'%s' is not a number", v);
		if (sc->dnsbl_weight <= 0 || sc->dnsbl_weight > 100)
			return serr(st, st->line, "'%s' is out of range "
			    "(above 0, at most 100)", v);
		return 0;
	case G_RANGES:
		return parse_ranges(st, v);
	case G_DNS_DOMAIN:
		return parse_domain(st, v, sc->dns_domain);
	}
	return set_simple(st, &gkeys[k], v, dst);
}

/* pop_line - one indented "key = value" inside a population block */
static int
pop_line(struct sstate *st, const char *key, const char *v)
{
	struct population *p = st->cur;
	unsigned *lines = st->pline[p - st->sc->pops];
	const struct persona *pe;
	void   *dst = NULL;
	int	k, i;

	if ((k = find_key(pkeys, P_COUNT, key)) < 0)
		return serr(st, st->line, "unknown key '%s'", key);
	if (lines[k])
		return serr(st, st->line, "'%s' given twice (first on line %u)",
		    key, lines[k]);
	lines[k] = st->line;
	switch (k) {
	case P_KIND:
		for (i = 0; i < SCN_KIND_COUNT; i++)
			if (strcmp(v, kind_names[i]) == 0) {
				p->kind = (enum scn_kind)i;
				return 0;
			}
		return serr(st, st->line, "unknown kind '%s' (legit_mta, "
		    "zombie, router, bulk_sender or big_sender)", v);
	case P_PERSONA:
		if (st->ps == NULL || (pe = persona_find(st->ps, v)) == NULL)
			return serr(st, st->line, "unknown persona '%s'", v);
		p->persona = pe;
		snprintf(p->persona_name, sizeof(p->persona_name), "%s",
		    pe->name);
		return 0;
	case P_TRUTH: return parse_truth(st, p, v);
	case P_PATIENCE: return parse_patience(st, p, v);
	case P_RETRY: return parse_retry(st, p, v);
	case P_RDNS_DOMAIN: return parse_domain(st, v, p->rdns_domain);
	case P_SHARE: dst = &p->share; break;
	case P_ADDRESSES: dst = &p->addresses; break;
	case P_MESSAGES: dst = &p->messages; break;
	case P_PREGREET: dst = &p->pregreet_pct; break;
	case P_PIPELINING: dst = &p->pipelining; break;
	case P_STARTTLS: dst = &p->starttls; break;
	case P_RETRY_FOR: dst = &p->retry_lifetime_ms; break;
	case P_CONCURRENCY: dst = &p->concurrency; break;
	case P_RANDOM_HELO: dst = &p->random_helo; break;
	case P_DNSBL_LISTED: dst = &p->dnsbl_listed_pct; break;
	}
	return set_simple(st, &pkeys[k], v, dst);
}

/* pop_start - "population NAME" opens a block */
static int
pop_start(struct sstate *st, const char *name)
{
	struct scenario *sc = st->sc;
	struct population *p;
	const char *c;
	unsigned i;

	if (*name == '\0' || strlen(name) >= SCN_NAME_MAX)
		return serr(st, st->line, "a population needs a name of 1 to "
		    "%d characters", SCN_NAME_MAX - 1);
	for (c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' &&
		    *c != '.')
			return serr(st, st->line, "population names use "
			    "letters, digits, '-', '_' and '.'");
	for (i = 0; i < sc->npops; i++)
		if (strcmp(sc->pops[i].name, name) == 0)
			return serr(st, st->line, "population '%s' defined "
			    "twice (first on line %u)", name, sc->pops[i].line);
	if (sc->npops == SCN_MAX_POPS)
		return serr(st, st->line, "more than %d populations",
		    SCN_MAX_POPS);
	p = &sc->pops[sc->npops++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->line = st->line;
	p->dnsbl_listed_pct = -1;
	st->cur = p;
	return 0;
}

/* parse_line - one non-blank line, comment removed; indent = leading blank */
static int
parse_line(struct sstate *st, char *s, int indented)
{
	char   *eq, *key, *val;

	if (!indented && strncmp(s, "population", 10) == 0 &&
	    (s[10] == '\0' || isspace((unsigned char)s[10])))
		return pop_start(st, str_trim(s + 10));
	if ((eq = strchr(s, '=')) == NULL)
		return serr(st, st->line, "expected 'key = value' or "
		    "'population NAME'");
	*eq = '\0';
	key = str_trim(s);
	val = str_trim(eq + 1);
	if (*key == '\0')
		return serr(st, st->line, "expected 'key = value' or "
		    "'population NAME'");
	if (*val == '\0')
		return serr(st, st->line, "'%s' has no value", key);
	if (!indented) {
		st->cur = NULL;
		return global_line(st, key, val);
	}
	if (st->cur == NULL)
		return serr(st, st->line, "indented line outside a population");
	return pop_line(st, key, val);
}

/* pop_finish - required keys, kind defaults and checks, after the file */
static int
pop_finish(struct sstate *st, struct population *p)
{
	struct scenario *sc = st->sc;
	unsigned *lines = st->pline[p - sc->pops];
	unsigned saved = st->line;
	int	kd, rc = 0;
	static const int required[] = {P_KIND, P_SHARE, P_PERSONA, P_ADDRESSES};
	size_t	i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!lines[required[i]])
			return serr(st, p->line, "population '%s' has no %s",
			    p->name, pkeys[required[i]].name);
	kd = p->kind;

	/* Defaults go through the same parsers; they cannot fail. */
	st->line = p->line;
	if (!lines[P_MESSAGES])
		p->messages = kind_defaults[kd].messages;
	if (!lines[P_TRUTH])
		rc |= parse_truth(st, p, kind_defaults[kd].truth);
	if (!lines[P_PATIENCE])
		rc |= parse_patience(st, p, kind_defaults[kd].patience);
	if (!lines[P_RETRY])
		rc |= parse_retry(st, p, kind_defaults[kd].retry);
	st->line = saved;
	if (rc)
		return -1;
	if (!lines[P_PREGREET])
		p->pregreet_pct = kind_defaults[kd].pregreet;
	if (!lines[P_PIPELINING])
		p->pipelining = kind_defaults[kd].pipelining;
	if (!lines[P_STARTTLS])
		p->starttls = kind_defaults[kd].starttls;
	if (!lines[P_RANDOM_HELO])
		p->random_helo = kind_defaults[kd].random_helo;
	if (!lines[P_RETRY_FOR])
		p->retry_lifetime_ms = 5 * 86400000ULL;	/* RFC 5321 4.5.4.1 */
	if (p->retry_base_ms == 0)
		p->retry_lifetime_ms = 0;
	if (!lines[P_CONCURRENCY]) {
		p->concurrency = kind_defaults[kd].concurrency;
		if (p->concurrency == 0 || p->concurrency > sc->concurrency)
			p->concurrency = sc->concurrency;
	} else if (p->concurrency > sc->concurrency)
		return serr(st, lines[P_CONCURRENCY], "concurrency %u is above "
		    "the scenario's total %u", p->concurrency, sc->concurrency);
	if (p->kind == SCN_BIG_SENDER) {
		if (!lines[P_RDNS_DOMAIN])
			return serr(st, p->line, "population '%s' is a "
			    "big_sender and needs rdns_domain", p->name);
		if (!(strcasecmp(p->rdns_domain, sc->dns_domain) == 0 ||
		    (strlen(p->rdns_domain) > strlen(sc->dns_domain) &&
		    p->rdns_domain[strlen(p->rdns_domain) -
		    strlen(sc->dns_domain) - 1] == '.' &&
		    strcasecmp(p->rdns_domain + strlen(p->rdns_domain) -
		    strlen(sc->dns_domain), sc->dns_domain) == 0)))
			return serr(st, lines[P_RDNS_DOMAIN], "rdns_domain '%s' "
			    "is not under dns_domain '%s'", p->rdns_domain,
			    sc->dns_domain);
	} else if (lines[P_RDNS_DOMAIN])
		return serr(st, lines[P_RDNS_DOMAIN], "rdns_domain is only for "
		    "big_sender populations");
	return 0;
}

/* scn_finish - checks that need the whole file */
static int
scn_finish(struct sstate *st)
{
	struct scenario *sc = st->sc;
	uint64_t cap = 0, used = 0;
	double	sum = 0;
	unsigned i;

	if (sc->npops == 0)
		return serr(st, st->line ? st->line : 1, "no population "
		    "defined");
	for (i = 0; i < sc->nranges; i++)
		cap += range_capacity(&sc->ranges[i]);
	for (i = 0; i < sc->npops; i++) {
		struct population *p = &sc->pops[i];

		if (pop_finish(st, p) < 0)
			return -1;
		sum += p->share;
		p->addr_first = used;
		used += p->addresses;
		if (used > cap)
			return serr(st, st->pline[i][P_ADDRESSES], "the address "
			    "ranges hold %llu addresses; the populations up to "
			    "'%s' need %llu", (unsigned long long)cap, p->name,
			    (unsigned long long)used);
	}
	if (fabs(sum - 100) > SCN_SUM_EPS)
		return serr(st, sc->pops[sc->npops - 1].line, "population "
		    "shares add up to %g%%, not 100%%", sum);
	return 0;
}

/* scenario_parse_buf - parse a whole file's text; NULL and err on error */
struct scenario *
scenario_parse_buf(const char *name, const char *buf, size_t len,
    const struct persona_set *ps, char *err, size_t errlen)
{
	struct sstate *st;
	struct scenario *sc;
	char	line[SCN_LINE_MAX], why[64];
	size_t	i = 0;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (sc = calloc(1, sizeof(*sc))) == NULL) {
		free(st);
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	st->file = name;
	st->ps = ps;
	st->sc = sc;
	st->err = err;
	st->errlen = errlen;
	snprintf(sc->file, sizeof(sc->file), "%s", name);
	sc->duration_ms = 90000;
	sc->clock = 1;
	sc->seed = 1;
	(void)addr_parse_endpoint("192.0.2.25:25", 25, &sc->daemon, why,
	    sizeof(why));
	sc->backend_reject_pct = 90;
	sc->dnsbl_listed_pct = 50;
	sc->concurrency = 1000;
	sc->rate = 50;
	sc->drain_ms = 120000;
	(void)addr_parse_cidr("198.18.0.0/15", &sc->ranges[0], why,
	    sizeof(why));
	sc->nranges = 1;
	snprintf(sc->dns_domain, sizeof(sc->dns_domain), "swarm.example");
	sc->dnsbl_weight = 4;

	while (i < len) {
		size_t	j = i, l;
		char   *s, *c;
		int	indented;

		while (j < len && buf[j] != '\n')
			j++;
		st->line++;
		l = j - i;
		if (l >= sizeof(line)) {
			serr(st, st->line, "line too long");
			goto fail;
		}
		memcpy(line, buf + i, l);
		line[l] = '\0';
		i = j + 1;
		if (memchr(line, '\0', l) != NULL) {
			serr(st, st->line, "NUL byte in line");
			goto fail;
		}
		if ((c = strchr(line, '#')) != NULL)
			*c = '\0';
		indented = isspace((unsigned char)line[0]);
		s = str_trim(line);
		if (*s == '\0')
			continue;
		if (parse_line(st, s, indented) < 0)
			goto fail;
	}
	if (scn_finish(st) < 0)
		goto fail;
	free(st);
	return sc;
fail:
	free(st);
	scenario_free(sc);
	return NULL;
}

/* scenario_load - read and parse a scenario file */
struct scenario *
scenario_load(const char *path, const struct persona_set *ps, char *err,
    size_t errlen)
{
	struct scenario *sc;
	FILE   *f;
	char   *buf;
	size_t	n;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(SCN_FILE_MAX)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, SCN_FILE_MAX, f);
	if (ferror(f) || n == SCN_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ?
		    "read error" : "file too large");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	sc = scenario_parse_buf(path, buf, n, ps, err, errlen);
	free(buf);
	return sc;
}

/* scenario_free - release a scenario (NULL is fine) */
void
scenario_free(struct scenario *sc)
{
	free(sc);
}

/* scenario_kind_name - "zombie" for SCN_ZOMBIE */
const char *
scenario_kind_name(enum scn_kind kind)
{
	if ((unsigned)kind >= SCN_KIND_COUNT)
		return "?";
	return kind_names[kind];
}

/* scenario_find - a population by name, or NULL */
const struct population *
scenario_find(const struct scenario *sc, const char *name)
{
	unsigned i;

	for (i = 0; i < sc->npops; i++)
		if (strcmp(sc->pops[i].name, name) == 0)
			return &sc->pops[i];
	return NULL;
}

/* scenario_default_path - data/scenarios/NAME.scn near the binary */
const char *
scenario_default_path(const char *name)
{
	static char buf[PATH_MAX + 128];
	char	exe[PATH_MAX], *slash;
	ssize_t	r;

	r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (r > 0) {
		exe[r] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			*slash = '\0';
		snprintf(buf, sizeof(buf), "%s/../data/scenarios/%s.scn", exe,
		    name);
		if (access(buf, R_OK) == 0)
			return buf;
		snprintf(buf, sizeof(buf), "%s/../../data/scenarios/%s.scn",
		    exe, name);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	snprintf(buf, sizeof(buf), MS_DATADIR "/scenarios/%s.scn", name);
	return buf;
}

/* scenario_address - the idx-th address of p's pool; -1 if out of pool */
int
scenario_address(const struct scenario *sc, const struct population *p,
    unsigned long idx, struct sockaddr_storage *ss)
{
	uint64_t g, cap, off;
	unsigned i;
	int	b;

	if (idx >= p->addresses)
		return -1;
	g = p->addr_first + idx;
	for (i = 0; i < sc->nranges; i++) {
		const struct cidr *c = &sc->ranges[i];
		uint8_t	a[16];
		int	alen = c->family == AF_INET ? 4 : 16;

		cap = range_capacity(c);
		if (g >= cap) {
			g -= cap;
			continue;
		}
		off = (alen * 8 - c->plen) == 0 ? 0 : g + 1;
		memcpy(a, c->addr, sizeof(a));
		for (b = alen - 1; b >= 0 && off; b--) {
			off += a[b];
			a[b] = (uint8_t)off;
			off >>= 8;
		}
		memset(ss, 0, sizeof(*ss));
		if (c->family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, a, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, a, 16);
		}
		return 0;
	}
	return -1;
}

/* scenario_listed_pct - share of p's addresses the DNS list names */
double
scenario_listed_pct(const struct scenario *sc, const struct population *p)
{
	if (p->dnsbl_listed_pct >= 0)
		return p->dnsbl_listed_pct;
	return p->kind == SCN_ZOMBIE ? sc->dnsbl_listed_pct : 0;
}

/* scenario_is_listed - 1 if p's idx-th address is on the DNS list */
int
scenario_is_listed(const struct scenario *sc, const struct population *p,
    unsigned long idx)
{
	uint64_t h = sc->seed ^ 0x6c69737465640000ULL;	/* "listed" */
	const char *c;

	for (c = p->name; *c; c++)
		h = h * 31 + (unsigned char)*c;
	h ^= (uint64_t)idx * 0x9e3779b97f4a7c15ULL;
	return scenario_draw_pct(&h, scenario_listed_pct(sc, p));
}

/* scenario_rng_next - splitmix64: the next 64 random bits */
uint64_t
scenario_rng_next(uint64_t *rng)
{
	uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* scenario_rng_unit - uniform in [0, 1) */
double
scenario_rng_unit(uint64_t *rng)
{
	return (double)(scenario_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* scenario_draw_pct - 1 with probability pct/100 */
int
scenario_draw_pct(uint64_t *rng, double pct)
{
	return scenario_rng_unit(rng) * 100 < pct;
}

/* scenario_draw_patience - ms before giving up; 0 = RFC 5321 timeouts */
uint64_t
scenario_draw_patience(const struct population *p, uint64_t *rng)
{
	double	u, acc = 0;
	unsigned i;

	if (p->patience_rfc || p->npatience == 0)
		return 0;
	u = scenario_rng_unit(rng) * 100;
	for (i = 0; i < p->npatience; i++) {
		acc += p->patience[i].pct;
		if (u < acc)
			return p->patience[i].ms;
	}
	return p->patience[p->npatience - 1].ms;
}

/* scenario_draw_truth - ham or spam by the population's mix */
enum scn_truth
scenario_draw_truth(const struct population *p, uint64_t *rng)
{
	return scenario_rng_unit(rng) * (p->ham_pct + p->spam_pct) <
	    p->ham_pct ? SCN_HAM : SCN_SPAM;
}

/* scenario_draw_population - the next session's population, by share */
const struct population *
scenario_draw_population(const struct scenario *sc, uint64_t *rng)
{
	double	u, acc = 0;
	unsigned i;

	if (sc->npops == 0)
		return NULL;
	u = scenario_rng_unit(rng) * 100;
	for (i = 0; i < sc->npops; i++) {
		acc += sc->pops[i].share;
		if (u < acc)
			return &sc->pops[i];
	}
	return &sc->pops[sc->npops - 1];
}

/* scenario_retry_delay - backoff before retry attempt (1 = first), in
 * sender ms: base * 2^(attempt-1), capped at max; 0 = do not retry */
uint64_t
scenario_retry_delay(const struct population *p, unsigned attempt)
{
	uint64_t d = p->retry_base_ms;

	if (p->retry_base_ms == 0 || attempt == 0)
		return 0;
	while (--attempt > 0 && d < p->retry_max_ms)
		d *= 2;
	return d < p->retry_max_ms ? d : p->retry_max_ms;
}

/* scenario_wall_ms - sender-clock ms to wall-clock ms (rounded up) */
uint64_t
scenario_wall_ms(const struct scenario *sc, uint64_t sender_ms)
{
	return (uint64_t)ceil((double)sender_ms / sc->clock);
}
