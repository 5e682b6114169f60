/*
 * dnsbl.c - weighted DNS block and allow lists over evdns, with a cache
 *
 * What it does: for a client address, asks every configured DNS list
 * (dnsbl_sites, postscreen syntax zone[=filter][*weight]) in parallel with
 * evdns, and hands the caller one aggregate: the sum of the weights of the
 * lists whose answer matched their filter, the hits, and how many lists
 * timed out or refused.  Answers are cached per (zone, address): listed
 * answers for their DNS TTL, not-listed answers for dnsbl_negative_ttl, in
 * a table of dnsbl_cache_size entries with clock eviction.  Every
 * DNSBL_PROBE_INTERVAL seconds (and at start and on reconfiguration) each
 * zone is probed as RFC 5782 says: 127.0.0.2 must be listed, 127.0.0.1 must
 * not; a zone that fails is disabled until it passes again.
 *
 * Exports: dnsbl_init(), dnsbl_reconfigure(), dnsbl_enabled(),
 * dnsbl_lookup(), dnsbl_cancel(), dnsbl_result_json(), dnsbl_stats(),
 * dnsbl_shutdown(), and the helpers dnsbl_query_name(), dnsbl_probe_now(),
 * dnsbl_evdns().
 *
 * Memory: the module owns everything it allocates.  A request belongs to
 * the module from dnsbl_lookup() until its callback runs or it is
 * cancelled; the result passed to the callback lives on the stack for the
 * duration of the call.  Each DNS query is its own object and outlives the
 * request that started it (an answer that arrives after the deadline still
 * fills the cache).  Configurations are reference counted, so a SIGHUP
 * never pulls one from under a query in flight.
 *
 * It is an error to call dnsbl_cancel() after the callback ran, to cancel a
 * request twice, to call anything but dnsbl_init() after dnsbl_shutdown(),
 * or to run the event loop on DNS events after dnsbl_shutdown() (evdns
 * callbacks already scheduled would find their query freed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include "conf/conf.h"
#include "dnsbl/dnsbl.h"
#include "util/addr.h"
#include "util/log.h"

#define DNSBL_MAX_ANS		4	/* A records kept per answer */
#define DNSBL_MAX_TTL		86400	/* s, cap on a positive answer's TTL */
#define DNSBL_LOG_INTERVAL	60	/* s between rate-limited warnings */

/* One octet-wise filter: bit v of oct[i] set = octet i may be v. */
struct dnsbl_filter {
	uint64_t oct[4][4];
};

struct dnsbl_site {
	int	zi;			/* index into cfg->zones */
	int	has_filter;		/* 0 = any 127/8 answer lists */
	struct dnsbl_filter f;
	double	weight;			/* negative = allow list */
};

enum dnsbl_probe_res { PR_UNKNOWN, PR_PASS, PR_FAIL };

struct dnsbl_zone {
	char	name[64];		/* lower case, no trailing dot */
	uint16_t id;			/* interned id, the cache key */
	int	disabled;		/* failed the RFC 5782 probe */
	unsigned probe_gen;		/* current probe round (stale answers ignored) */
	int	probe_left;		/* probe queries still out */
	int	p1, p2;			/* enum dnsbl_probe_res for .1 and .2 */
	char	why[96];		/* reason of the last failure */
};

struct dnsbl_cfg {
	int	refs;
	struct dnsbl_site sites[DNSBL_MAX_SITES];
	int	nsites;
	struct dnsbl_zone zones[DNSBL_MAX_SITES];
	int	nzones;
	long	timeout_ms;
	long	neg_ttl_ms;
};

enum dnsbl_zstate { Z_PENDING, Z_SKIPPED, Z_LISTED, Z_CLEAN, Z_ERROR,
	Z_TIMEOUT };

/* A zone's answer for one address. */
struct dnsbl_zans {
	uint8_t	state;			/* enum dnsbl_zstate */
	uint8_t	nans;			/* valid ans[] */
	uint32_t ans[DNSBL_MAX_ANS];	/* A records, host byte order */
};

enum dnsbl_qkind { Q_LOOKUP, Q_PROBE1, Q_PROBE2 };

struct dnsbl_query {
	TAILQ_ENTRY(dnsbl_query) link;
	struct dnsbl_req *req;		/* waiting request (NULL = orphan) */
	struct dnsbl_cfg *cfg;		/* holds a reference */
	int	zi;
	int	kind;			/* enum dnsbl_qkind */
	unsigned gen;			/* probe round, for Q_PROBE* */
	int64_t	sent;			/* ms, monotonic */
	uint16_t zid;
	uint8_t	family;
	uint8_t	addr[16];
};

struct dnsbl_req {
	TAILQ_ENTRY(dnsbl_req) link;
	struct dnsbl_cfg *cfg;		/* holds a reference */
	dnsbl_cb *cb;
	void	*arg;
	struct event ev;		/* deadline, or zero timer when done */
	int64_t	start;			/* ms, monotonic */
	int	npending;		/* zones still out */
	int	starting;		/* inside dnsbl_lookup() */
	struct dnsbl_zans z[DNSBL_MAX_SITES];
	struct dnsbl_query *q[DNSBL_MAX_SITES];
};

/* Cache entry: (zone id, family, address) -> answer until expire. */
struct dnsbl_centry {
	uint8_t	addr[16];
	int64_t	expire;			/* ms, monotonic (0 = free) */
	uint32_t ans[DNSBL_MAX_ANS];
	int32_t	next;			/* chain in the bucket (-1 = end) */
	uint16_t zid;
	uint8_t	family;
	uint8_t	nans;
	uint8_t	state;			/* Z_LISTED or Z_CLEAN */
	uint8_t	ref;			/* clock bit */
};

struct dnsbl_ratelim {
	time_t	last;
	unsigned long suppressed;
};

static struct {
	int	inited;
	struct event_base *base;
	struct evdns_base *dns;
	char	dns_servers[256];
	struct dnsbl_cfg *cfg;
	struct event *probe_ev;
	TAILQ_HEAD(, dnsbl_req) reqs;
	TAILQ_HEAD(, dnsbl_query) queries;
	/* cache */
	struct dnsbl_centry *ce;
	int32_t	*bucket;
	uint32_t nbucket;		/* power of two */
	long	csize;			/* entries (0 = no cache) */
	long	cused;
	long	hand;
	/* interned zone names */
	char	(*znames)[64];
	int	nznames;
	/* counters */
	unsigned long nqueries, nhits, ntimeouts, nerrors, ncache_hits;
	struct dnsbl_ratelim rl_timeout, rl_error;
} D;

/* now_ms - monotonic milliseconds */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ratelim_ok - 1 when a warning may be logged now; *missed = suppressed */
static int
ratelim_ok(struct dnsbl_ratelim *r, unsigned long *missed)
{
	time_t t = time(NULL);

	if (r->last != 0 && t - r->last < DNSBL_LOG_INTERVAL) {
		r->suppressed++;
		return 0;
	}
	r->last = t;
	*missed = r->suppressed;
	r->suppressed = 0;
	return 1;
}

/* suppressed - "; N similar messages suppressed" or "" (static buffer) */
static const char *
suppressed(unsigned long n)
{
	static char buf[64];

	if (n == 0)
		return "";
	snprintf(buf, sizeof(buf), "; %lu similar messages suppressed", n);
	return buf;
}

/* ---------------------------------------------------------------- parsing */

/* zone_intern - stable small id of a zone name (the cache key) */
static int
zone_intern(const char *name)
{
	void *n;
	int i;

	for (i = 0; i < D.nznames; i++)
		if (strcmp(D.znames[i], name) == 0)
			return i;
	if (D.nznames >= 65535 || strlen(name) > 63)
		return -1;
	if ((n = realloc(D.znames, (size_t)(D.nznames + 1) * 64)) == NULL)
		return -1;
	D.znames = n;
	memcpy(D.znames[D.nznames], name, strlen(name) + 1);
	return D.nznames++;
}

/* parse_octet - 0..255 from decimal digits at *pp, or -1 */
static int
parse_octet(const char **pp)
{
	const char *p = *pp;
	int v = 0, n = 0;

	while (*p >= '0' && *p <= '9' && n < 4) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n == 0 || n > 3 || v > 255)
		return -1;
	*pp = p;
	return v;
}

/* parse_filter - 127.0.0.2, 127.0.0.[2..11], 127.0.0.[2;4;10..11] */
static int
parse_filter(const char *s, struct dnsbl_filter *f)
{
	const char *p = s;
	int o, lo, hi, v;

	memset(f, 0, sizeof(*f));
	for (o = 0; o < 4; o++) {
		if (o > 0 && *p++ != '.')
			return -1;
		if (*p != '[') {
			if ((v = parse_octet(&p)) < 0)
				return -1;
			f->oct[o][v >> 6] |= 1ULL << (v & 63);
			continue;
		}
		p++;
		for (;;) {
			if ((lo = parse_octet(&p)) < 0)
				return -1;
			hi = lo;
			if (p[0] == '.' && p[1] == '.') {
				p += 2;
				if ((hi = parse_octet(&p)) < 0 || hi < lo)
					return -1;
			}
			for (v = lo; v <= hi; v++)
				f->oct[o][v >> 6] |= 1ULL << (v & 63);
			if (*p == ';') {
				p++;
				continue;
			}
			if (*p++ != ']')
				return -1;
			break;
		}
	}
	return *p == '\0' ? 0 : -1;
}

/* filter_match - does the A record a (host order) pass the filter */
static int
filter_match(const struct dnsbl_filter *f, uint32_t a)
{
	int o;
	unsigned v;

	for (o = 0; o < 4; o++) {
		v = (a >> (24 - 8 * o)) & 0xff;
		if (!(f->oct[o][v >> 6] & (1ULL << (v & 63))))
			return 0;
	}
	return 1;
}

/* valid_zone - letters, digits, '-', '_', non-empty labels, < 64 chars */
static int
valid_zone(const char *z)
{
	size_t n = strlen(z), label = 0;
	const char *p;

	if (n == 0 || n > 63 || z[0] == '.' || z[n - 1] == '.')
		return 0;
	for (p = z; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

/* parse_sites - dnsbl_sites text into cfg->sites and cfg->zones */
static int
parse_sites(const char *text, struct dnsbl_cfg *cfg, char *err, size_t errlen)
{
	char buf[1024], tok[256], *t, *save = NULL, *star, *eq, *end;
	struct dnsbl_site *s;
	int zi, id;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", text);
	for (t = strtok_r(buf, " \t\r\n,", &save); t != NULL;
	    t = strtok_r(NULL, " \t\r\n,", &save)) {
		if (strlen(t) >= sizeof(tok)) {
			snprintf(err, errlen, "dnsbl_sites: entry too long");
			return -1;
		}
		snprintf(tok, sizeof(tok), "%s", t);
		if (cfg->nsites >= DNSBL_MAX_SITES) {
			snprintf(err, errlen, "dnsbl_sites: more than %d entries",
			    DNSBL_MAX_SITES);
			return -1;
		}
		s = &cfg->sites[cfg->nsites];
		memset(s, 0, sizeof(*s));
		s->weight = 1;
		if ((star = strrchr(tok, '*')) != NULL) {
			*star++ = '\0';
			errno = 0;
			s->weight = strtod(star, &end);
			if (*star == '\0' || *end != '\0' || errno != 0 ||
			    !isfinite(s->weight)) {
				snprintf(err, errlen,
				    "dnsbl_sites: bad weight in '%s'", t);
				return -1;
			}
		}
		if ((eq = strchr(tok, '=')) != NULL) {
			*eq++ = '\0';
			if (parse_filter(eq, &s->f) < 0) {
				snprintf(err, errlen, "dnsbl_sites: bad filter "
				    "in '%s' (want e.g. 127.0.0.2 or "
				    "127.0.0.[2..11;20])", t);
				return -1;
			}
			s->has_filter = 1;
		}
		for (i = 0; tok[i]; i++)
			if (tok[i] >= 'A' && tok[i] <= 'Z')
				tok[i] = (char)(tok[i] - 'A' + 'a');
		if (!valid_zone(tok)) {
			snprintf(err, errlen, "dnsbl_sites: bad zone name in '%s'",
			    t);
			return -1;
		}
		for (zi = 0; zi < cfg->nzones; zi++)
			if (strcmp(cfg->zones[zi].name, tok) == 0)
				break;
		if (zi == cfg->nzones) {
			if ((id = zone_intern(tok)) < 0) {
				snprintf(err, errlen, "dnsbl_sites: out of memory");
				return -1;
			}
			memset(&cfg->zones[zi], 0, sizeof(cfg->zones[zi]));
			memcpy(cfg->zones[zi].name, tok, strlen(tok) + 1);
			cfg->zones[zi].id = (uint16_t)id;
			cfg->nzones++;
		}
		s->zi = zi;
		cfg->nsites++;
	}
	return 0;
}

/* cfg_unref - drop a reference, free at zero */
static void
cfg_unref(struct dnsbl_cfg *c)
{
	if (c != NULL && --c->refs == 0)
		free(c);
}

/* ---------------------------------------------------------------- names */

/* dnsbl_query_name - d.c.b.a.zone or 32 reversed nibbles + zone; -1 if no fit */
int
dnsbl_query_name(const struct sockaddr *sa, const char *zone, char *buf,
    size_t len)
{
	static const char hex[] = "0123456789abcdef";
	struct sockaddr_storage ss;
	const uint8_t *a;
	size_t n = 0;
	int i, r;

	if (sa->sa_family == AF_INET)
		memcpy(&ss, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(&ss, sa, sizeof(struct sockaddr_in6));
	else
		return -1;
	addr_unmap(&ss);
	if (ss.ss_family == AF_INET) {
		a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
		r = snprintf(buf, len, "%u.%u.%u.%u.%s", a[3], a[2], a[1],
		    a[0], zone);
		return r < 0 || (size_t)r >= len ? -1 : r;
	}
	a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
	if (len < 64 + strlen(zone) + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		buf[n++] = hex[a[i] & 0xf];
		buf[n++] = '.';
		buf[n++] = hex[a[i] >> 4];
		buf[n++] = '.';
	}
	r = snprintf(buf + n, len - n, "%s", zone);
	return r < 0 || (size_t)r >= len - n ? -1 : (int)n + r;
}

/* client_key - family and 16 address bytes of a client, or -1 */
static int
client_key(const struct sockaddr *sa, uint8_t *family, uint8_t addr[16])
{
	struct sockaddr_storage ss;

	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET)
		memcpy(&ss, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(&ss, sa, sizeof(struct sockaddr_in6));
	else
		return -1;
	addr_unmap(&ss);
	*family = (uint8_t)ss.ss_family;
	if (ss.ss_family == AF_INET)
		memcpy(addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	else
		memcpy(addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	return 0;
}

/* key_sockaddr - back from (family, addr) to a sockaddr */
static void
key_sockaddr(uint8_t family, const uint8_t addr[16],
    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET)
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, addr, 16);
}

/* ---------------------------------------------------------------- cache */

/* cache_hash - bucket of (zone id, family, address) */
static uint32_t
cache_hash(uint16_t zid, uint8_t family, const uint8_t addr[16])
{
	uint64_t a, b, h;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	h = a * 0x9e3779b97f4a7c15ULL ^ b * 0xc2b2ae3d27d4eb4fULL ^
	    ((uint64_t)zid << 8 | family) * 0x165667b19e3779f9ULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (uint32_t)h & (D.nbucket - 1);
}

/* cache_find - the entry for a key, expired or not, or NULL */
static struct dnsbl_centry *
cache_find(uint16_t zid, uint8_t family, const uint8_t addr[16])
{
	int32_t i;
	struct dnsbl_centry *e;

	if (D.bucket == NULL)
		return NULL;
	for (i = D.bucket[cache_hash(zid, family, addr)]; i >= 0; i = e->next) {
		e = &D.ce[i];
		if (e->zid == zid && e->family == family &&
		    memcmp(e->addr, addr, 16) == 0)
			return e;
	}
	return NULL;
}

/* cache_get - a live answer into *z; 1 on a hit */
static int
cache_get(uint16_t zid, uint8_t family, const uint8_t addr[16], int64_t now,
    struct dnsbl_zans *z)
{
	struct dnsbl_centry *e = cache_find(zid, family, addr);

	if (e == NULL || e->expire <= now)
		return 0;
	e->ref = 1;
	z->state = e->state;
	z->nans = e->nans;
	memcpy(z->ans, e->ans, sizeof(z->ans));
	return 1;
}

/* cache_unlink - take entry i out of its bucket chain */
static void
cache_unlink(int32_t i)
{
	struct dnsbl_centry *e = &D.ce[i];
	int32_t *pp = &D.bucket[cache_hash(e->zid, e->family, e->addr)];

	while (*pp >= 0 && *pp != i)
		pp = &D.ce[*pp].next;
	if (*pp == i)
		*pp = e->next;
	e->next = -1;
}

/* cache_put - remember an answer until now + ttl_ms */
static void
cache_put(uint16_t zid, uint8_t family, const uint8_t addr[16],
    const struct dnsbl_zans *z, int64_t ttl_ms)
{
	struct dnsbl_centry *e;
	int64_t now = now_ms();
	uint32_t h, n;
	int32_t i;

	if (D.csize <= 0 || ttl_ms <= 0)
		return;
	if (D.ce == NULL) {
		for (n = 1; n < (uint32_t)D.csize; n <<= 1)
			;
		D.ce = calloc((size_t)D.csize, sizeof(*D.ce));
		D.bucket = malloc(n * sizeof(*D.bucket));
		if (D.ce == NULL || D.bucket == NULL) {
			log_warnx("dnsbl: no memory for a cache of %ld entries",
			    D.csize);
			free(D.ce);
			free(D.bucket);
			D.ce = NULL;
			D.bucket = NULL;
			D.csize = 0;
			return;
		}
		memset(D.bucket, 0xff, n * sizeof(*D.bucket));
		D.nbucket = n;
	}
	if ((e = cache_find(zid, family, addr)) == NULL) {
		if (D.cused < D.csize) {
			i = (int32_t)D.cused++;
		} else {
			/* clock: skip live entries used since the last pass */
			for (;;) {
				e = &D.ce[D.hand];
				if (e->expire <= now || !e->ref)
					break;
				e->ref = 0;
				D.hand = (D.hand + 1) % D.csize;
			}
			i = (int32_t)D.hand;
			D.hand = (D.hand + 1) % D.csize;
			cache_unlink(i);
		}
		e = &D.ce[i];
		e->zid = zid;
		e->family = family;
		memcpy(e->addr, addr, 16);
		h = cache_hash(zid, family, addr);
		e->next = D.bucket[h];
		D.bucket[h] = i;
	}
	e->expire = now + ttl_ms;
	e->state = z->state;
	e->nans = z->nans;
	memcpy(e->ans, z->ans, sizeof(e->ans));
	e->ref = 0;
}

/* ---------------------------------------------------------------- probe */

/* probe_verdict - both probe answers are in: disable or enable the zone */
static void
probe_verdict(struct dnsbl_zone *z)
{
	if (z->p1 == PR_FAIL || z->p2 == PR_FAIL) {
		snprintf(z->why, sizeof(z->why), "%s",
		    z->p1 == PR_FAIL ? "lists 127.0.0.1 (answers for everything)" :
		    "does not list 127.0.0.2");
		if (!z->disabled)
			log_warnx("dnsbl: %s disabled: it %s, so it fails the "
			    "RFC 5782 test points", z->name, z->why);
		z->disabled = 1;
	} else if (z->p1 == PR_PASS && z->p2 == PR_PASS) {
		if (z->disabled)
			log_warnx("dnsbl: %s re-enabled: it passes the RFC 5782 "
			    "test points again", z->name);
		z->disabled = 0;
	} else {
		log_debug("dnsbl: %s: probe inconclusive (no answer or "
		    "refused); state kept", z->name);
	}
}

static void query_cb(int, char, int, int, void *, void *);

/* evdns_total_ms - what evdns spends on a query: "attempts:" 2 x half */
static int64_t
evdns_total_ms(long timeout_ms)
{
	return timeout_ms < 100 ? 100 : timeout_ms;
}

/* evdns_log - evdns's own messages into ours (evdns passes is_warn) */
static void
evdns_log(int is_warn, const char *msg)
{
	if (is_warn)
		log_warnx("dnsbl: evdns: %s", msg);
	else
		log_debug("dnsbl: evdns: %s", msg);
}

/* query_send - start one A query for (zone zi, key); 0 or -1 */
static int
query_send(struct dnsbl_cfg *cfg, int zi, int kind, uint8_t family,
    const uint8_t addr[16], struct dnsbl_req *req, struct dnsbl_query **out)
{
	struct sockaddr_storage ss;
	struct dnsbl_query *q;
	char name[256];

	key_sockaddr(family, addr, &ss);
	if (dnsbl_query_name((struct sockaddr *)&ss, cfg->zones[zi].name, name,
	    sizeof(name)) < 0)
		return -1;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->req = req;
	q->cfg = cfg;
	q->zi = zi;
	q->kind = kind;
	q->gen = cfg->zones[zi].probe_gen;
	q->zid = cfg->zones[zi].id;
	q->family = family;
	memcpy(q->addr, addr, 16);
	q->sent = now_ms();
	cfg->refs++;
	TAILQ_INSERT_TAIL(&D.queries, q, link);
	if (out != NULL)
		*out = q;
	if (evdns_base_resolve_ipv4(D.dns, name, DNS_QUERY_NO_SEARCH, query_cb,
	    q) == NULL) {
		TAILQ_REMOVE(&D.queries, q, link);
		if (out != NULL)
			*out = NULL;
		cfg->refs--;
		free(q);
		return -1;
	}
	return 0;
}

/* probe_cfg - start an RFC 5782 probe round for every zone of cfg */
static void
probe_cfg(struct dnsbl_cfg *cfg)
{
	static const uint8_t one[16] = {127, 0, 0, 1}, two[16] = {127, 0, 0, 2};
	struct dnsbl_zone *z;
	int zi;

	if (D.dns == NULL)
		return;
	for (zi = 0; zi < cfg->nzones; zi++) {
		z = &cfg->zones[zi];
		z->probe_gen++;
		z->p1 = z->p2 = PR_UNKNOWN;
		z->probe_left = 0;
		if (query_send(cfg, zi, Q_PROBE1, AF_INET, one, NULL, NULL) == 0)
			z->probe_left++;
		if (query_send(cfg, zi, Q_PROBE2, AF_INET, two, NULL, NULL) == 0)
			z->probe_left++;
		if (z->probe_left == 0)
			log_warnx("dnsbl: %s: cannot send the RFC 5782 probe",
			    z->name);
	}
}

/* probe_timer_cb - periodic probe of the current configuration */
static void
probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (D.cfg != NULL)
		probe_cfg(D.cfg);
}

/* dnsbl_probe_now - run the RFC 5782 probe now (tests, operators) */
void
dnsbl_probe_now(void)
{
	if (D.inited && D.cfg != NULL)
		probe_cfg(D.cfg);
}

/* ---------------------------------------------------------------- lookups */

/* classify - evdns outcome into a zone answer */
static void
classify(int result, char type, int count, void *addresses,
    struct dnsbl_zans *z, int *refusal)
{
	const uint32_t *a = addresses;
	uint32_t v;
	int i;

	memset(z, 0, sizeof(*z));
	*refusal = 0;
	switch (result) {
	case DNS_ERR_NONE:
		if (type != DNS_IPv4_A || count <= 0 || a == NULL) {
			z->state = Z_CLEAN;	/* NOERROR, no A: not listed */
			return;
		}
		z->state = Z_LISTED;
		for (i = 0; i < count; i++) {
			v = ntohl(a[i]);
			if ((v >> 8) == 0x7fffff) {
				z->state = Z_ERROR;	/* list refused the query */
				*refusal = 1;
			} else if ((v >> 24) != 127 && z->state == Z_LISTED) {
				z->state = Z_ERROR;	/* not an RFC 5782 answer */
			}
			if (z->nans < DNSBL_MAX_ANS)
				z->ans[z->nans++] = v;
		}
		return;
	case DNS_ERR_NOTEXIST:
	case DNS_ERR_NODATA:
		z->state = Z_CLEAN;
		return;
	case DNS_ERR_TIMEOUT:
		z->state = Z_TIMEOUT;
		return;
	default:
		z->state = Z_ERROR;
		return;
	}
}

static void req_finish(struct dnsbl_req *, int deadline);

/* probe_answer - one probe query came back */
static void
probe_answer(struct dnsbl_query *q, int result, const struct dnsbl_zans *z,
    int refusal)
{
	struct dnsbl_zone *zone = &q->cfg->zones[q->zi];
	int listed = z->nans > 0 && !refusal && result == DNS_ERR_NONE;
	int res;

	if (q->gen != zone->probe_gen)
		return;
	if (z->state == Z_TIMEOUT || (z->state == Z_ERROR && !listed))
		res = PR_UNKNOWN;
	else if (q->kind == Q_PROBE1)
		res = listed ? PR_FAIL : PR_PASS;
	else
		res = listed ? PR_PASS : PR_FAIL;
	if (q->kind == Q_PROBE1)
		zone->p1 = res;
	else
		zone->p2 = res;
	if (--zone->probe_left == 0)
		probe_verdict(zone);
}

/* query_cb - evdns answer for one query: cache it, hand it to its request */
static void
query_cb(int result, char type, int count, int ttl, void *addresses,
    void *arg)
{
	struct dnsbl_query *q = arg;
	struct dnsbl_req *req = q->req;
	struct dnsbl_zans z;
	unsigned long missed;
	int refusal;

	TAILQ_REMOVE(&D.queries, q, link);
	if (result == DNS_ERR_SHUTDOWN || result == DNS_ERR_CANCEL) {
		if (req != NULL)
			req->q[q->zi] = NULL;
		cfg_unref(q->cfg);
		free(q);
		return;
	}
	/*
	 * evdns treats SERVFAIL as a lost packet: it retries, and after the
	 * last attempt reports DNS_ERR_TIMEOUT.  A real timeout takes all
	 * attempts (the whole dnsbl_timeout, see dns_setup()); one that comes
	 * much sooner means the server answered SERVFAIL: a list error.
	 */
	if (result == DNS_ERR_TIMEOUT &&
	    now_ms() - q->sent < evdns_total_ms(q->cfg->timeout_ms) * 3 / 4)
		result = DNS_ERR_SERVERFAILED;
	classify(result, type, count, addresses, &z, &refusal);
	if (q->kind != Q_LOOKUP) {
		probe_answer(q, result, &z, refusal);
	} else {
		if (z.state == Z_LISTED)
			cache_put(q->zid, q->family, q->addr, &z,
			    (int64_t)(ttl < 0 ? 0 : ttl > DNSBL_MAX_TTL ?
			    DNSBL_MAX_TTL : ttl) * 1000);
		else if (z.state == Z_CLEAN)
			cache_put(q->zid, q->family, q->addr, &z,
			    q->cfg->neg_ttl_ms);
		if (z.state == Z_ERROR && ratelim_ok(&D.rl_error, &missed))
			log_warnx("dnsbl: %s: %s%s", q->cfg->zones[q->zi].name,
			    refusal ? "query refused (answer in "
			    "127.255.255.0/24)" : result == DNS_ERR_NONE ?
			    "bad answer (A record outside 127.0.0.0/8)" :
			    evdns_err_to_string(result), suppressed(missed));
	}
	if (req != NULL) {
		req->q[q->zi] = NULL;
		req->z[q->zi] = z;
		req->npending--;
		if (req->npending == 0 && !req->starting)
			req_finish(req, 0);
	}
	cfg_unref(q->cfg);
	free(q);
}

/* req_timer_cb - deadline, or the zero timer of a request already done */
static void
req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	req_finish(arg, 1);
}

/* req_detach - disarm the request and orphan its queries */
static void
req_detach(struct dnsbl_req *req)
{
	int i;

	event_del(&req->ev);
	for (i = 0; i < req->cfg->nzones; i++)
		if (req->q[i] != NULL) {
			req->q[i]->req = NULL;
			req->q[i] = NULL;
		}
	TAILQ_REMOVE(&D.reqs, req, link);
}

/* req_finish - aggregate, free the request, then call back */
static void
req_finish(struct dnsbl_req *req, int deadline)
{
	struct dnsbl_result r;
	struct dnsbl_cfg *cfg = req->cfg;
	const struct dnsbl_site *s;
	struct dnsbl_zans *z;
	struct dnsbl_hit *h;
	char late[256];
	dnsbl_cb *cb = req->cb;
	void *arg = req->arg;
	unsigned long missed;
	size_t ll = 0;
	int i, j, zi;

	memset(&r, 0, sizeof(r));
	late[0] = '\0';
	for (zi = 0; zi < cfg->nzones; zi++) {
		z = &req->z[zi];
		if (deadline && z->state == Z_PENDING)
			z->state = Z_TIMEOUT;
		if (cfg->zones[zi].disabled || z->state == Z_SKIPPED)
			continue;
		if (z->state == Z_ERROR)
			r.errors++;
		if (z->state == Z_TIMEOUT) {
			r.timeouts++;
			if (ll < sizeof(late) - 1)
				ll += (size_t)snprintf(late + ll,
				    sizeof(late) - ll, "%s%s", ll ? " " : "",
				    cfg->zones[zi].name);
		}
	}
	for (i = 0; i < cfg->nsites; i++) {
		s = &cfg->sites[i];
		z = &req->z[s->zi];
		if (z->state != Z_LISTED || cfg->zones[s->zi].disabled)
			continue;
		for (j = 0; j < z->nans; j++)
			if (!s->has_filter || filter_match(&s->f, z->ans[j]))
				break;
		if (j == z->nans)
			continue;
		r.score += s->weight;
		D.nhits++;
		if (r.nhits < DNSBL_MAX_HITS) {
			h = &r.hits[r.nhits++];
			snprintf(h->zone, sizeof(h->zone), "%s",
			    cfg->zones[s->zi].name);
			snprintf(h->answer, sizeof(h->answer), "%u.%u.%u.%u",
			    z->ans[j] >> 24, (z->ans[j] >> 16) & 0xff,
			    (z->ans[j] >> 8) & 0xff, z->ans[j] & 0xff);
			h->weight = s->weight;
		}
	}
	r.complete = r.timeouts == 0;
	r.latency_ms = (long)(now_ms() - req->start);
	D.ntimeouts += (unsigned long)r.timeouts;
	D.nerrors += (unsigned long)r.errors;
	if (r.timeouts > 0 && ratelim_ok(&D.rl_timeout, &missed))
		log_warnx("dnsbl: no answer within %ld ms from %s (DNS server "
		    "down?)%s", cfg->timeout_ms, late, suppressed(missed));
	req_detach(req);
	cfg_unref(req->cfg);
	free(req);
	cb(arg, &r);
}

/* dnsbl_lookup - ask every enabled list about client; NULL = nothing to ask */
struct dnsbl_req *
dnsbl_lookup(const struct sockaddr *client, dnsbl_cb *cb, void *arg)
{
	struct dnsbl_cfg *cfg = D.cfg;
	struct dnsbl_req *req;
	struct timeval tv;
	uint8_t family, addr[16];
	int64_t now;
	int zi;

	if (!dnsbl_enabled() || client == NULL || cb == NULL ||
	    client_key(client, &family, addr) < 0)
		return NULL;
	if ((req = malloc(sizeof(*req))) == NULL) {
		log_warn("dnsbl: malloc");
		return NULL;
	}
	now = now_ms();
	req->cfg = cfg;
	cfg->refs++;
	req->cb = cb;
	req->arg = arg;
	req->start = now;
	req->npending = 0;
	req->starting = 1;
	evtimer_assign(&req->ev, D.base, req_timer_cb, req);
	TAILQ_INSERT_TAIL(&D.reqs, req, link);
	for (zi = 0; zi < cfg->nzones; zi++) {
		req->q[zi] = NULL;
		req->z[zi].state = Z_PENDING;
		req->z[zi].nans = 0;
		if (cfg->zones[zi].disabled) {
			req->z[zi].state = Z_SKIPPED;
		} else if (cache_get(cfg->zones[zi].id, family, addr, now,
		    &req->z[zi])) {
			D.ncache_hits++;
		} else if (query_send(cfg, zi, Q_LOOKUP, family, addr, req,
		    &req->q[zi]) == 0) {
			D.nqueries++;
			req->npending++;
		} else {
			req->z[zi].state = Z_ERROR;
		}
	}
	req->starting = 0;
	if (req->npending == 0) {
		event_active(&req->ev, EV_TIMEOUT, 1);
	} else {
		tv.tv_sec = cfg->timeout_ms / 1000;
		tv.tv_usec = (cfg->timeout_ms % 1000) * 1000;
		evtimer_add(&req->ev, &tv);
	}
	return req;
}

/* dnsbl_cancel - forget a request; its callback will not run */
void
dnsbl_cancel(struct dnsbl_req *req)
{
	if (req == NULL)
		return;
	req_detach(req);
	cfg_unref(req->cfg);
	free(req);
}

/* dnsbl_enabled - 1 when at least one list is configured and enabled */
int
dnsbl_enabled(void)
{
	int zi;

	if (!D.inited || D.cfg == NULL || D.dns == NULL)
		return 0;
	for (zi = 0; zi < D.cfg->nzones; zi++)
		if (!D.cfg->zones[zi].disabled)
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- setup */

/* dns_setup - the evdns base with dns_servers or /etc/resolv.conf */
static int
dns_setup(long timeout_ms, char *err, size_t errlen)
{
	char buf[256], *t, *save = NULL, opt[32];
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int len, r;

	if (D.dns == NULL) {
		D.dns = evdns_base_new(D.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (D.dns == NULL) {
			snprintf(err, errlen, "dns_servers: cannot create the "
			    "resolver");
			return -1;
		}
		if (D.dns_servers[0] == '\0') {
			r = evdns_base_resolv_conf_parse(D.dns,
			    DNS_OPTION_NAMESERVERS | DNS_OPTION_MISC,
			    "/etc/resolv.conf");
			if (r != 0)
				log_warnx("dnsbl: /etc/resolv.conf unusable "
				    "(evdns error %d); asking 127.0.0.1", r);
		} else {
			snprintf(buf, sizeof(buf), "%s", D.dns_servers);
			for (t = strtok_r(buf, " \t,", &save); t != NULL;
			    t = strtok_r(NULL, " \t,", &save)) {
				memset(&ss, 0, sizeof(ss));
				len = sizeof(ss);
				if (evutil_parse_sockaddr_port(t,
				    (struct sockaddr *)&ss, &len) < 0) {
					snprintf(err, errlen, "dns_servers: bad "
					    "address '%s' (want ip, ip:port or "
					    "[v6]:port)", t);
					goto fail;
				}
				if (ss.ss_family == AF_INET && sin->sin_port == 0)
					sin->sin_port = htons(53);
				if (ss.ss_family == AF_INET6 &&
				    sin6->sin6_port == 0)
					sin6->sin6_port = htons(53);
				if (evdns_base_nameserver_sockaddr_add(D.dns,
				    (struct sockaddr *)&ss, (socklen_t)len,
				    0) != 0) {
					snprintf(err, errlen, "dns_servers: "
					    "cannot use '%s'", t);
					goto fail;
				}
			}
		}
		if (evdns_base_count_nameservers(D.dns) == 0) {
			snprintf(err, errlen, "dns_servers: no DNS server");
			goto fail;
		}
		evdns_set_log_fn(evdns_log);
		evdns_base_set_option(D.dns, "attempts:", "2");
		evdns_base_set_option(D.dns, "max-inflight:", "256");
		D.probe_ev = event_new(D.base, -1, EV_PERSIST, probe_timer_cb,
		    NULL);
		if (D.probe_ev != NULL) {
			struct timeval tv = {DNSBL_PROBE_INTERVAL, 0};

			event_add(D.probe_ev, &tv);
		}
	}
	/* two tries per query inside the request's deadline */
	snprintf(opt, sizeof(opt), "%.3f",
	    (double)evdns_total_ms(timeout_ms) / 2000.0);
	evdns_base_set_option(D.dns, "timeout:", opt);
	return 0;
fail:
	evdns_base_free(D.dns, 0);
	D.dns = NULL;
	return -1;
}

/* cfg_build - a configuration from conf, or NULL with err */
static struct dnsbl_cfg *
cfg_build(const struct conf *c, char *err, size_t errlen)
{
	struct dnsbl_cfg *cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		snprintf(err, errlen, "dnsbl_sites: out of memory");
		return NULL;
	}
	cfg->refs = 1;
	cfg->timeout_ms = c->dnsbl_timeout;
	cfg->neg_ttl_ms = c->dnsbl_negative_ttl;
	if (parse_sites(c->dnsbl_sites, cfg, err, errlen) < 0) {
		free(cfg);
		return NULL;
	}
	return cfg;
}

/* install - make cfg current: resolver, inherited probe state, probe */
static int
install(struct dnsbl_cfg *cfg, char *err, size_t errlen)
{
	struct dnsbl_cfg *old = D.cfg;
	int i, j;

	/*
	 * A resolver exists when a list needs one, or when dns_servers names
	 * one explicitly (reverse lookups use it too).  With neither, nothing
	 * reads /etc/resolv.conf and no query leaves the host.
	 */
	if ((cfg->nzones > 0 || D.dns_servers[0] != '\0') &&
	    dns_setup(cfg->timeout_ms, err, errlen) < 0)
		return -1;
	if (old != NULL)
		for (i = 0; i < cfg->nzones; i++)
			for (j = 0; j < old->nzones; j++)
				if (strcmp(cfg->zones[i].name,
				    old->zones[j].name) == 0) {
					cfg->zones[i].disabled =
					    old->zones[j].disabled;
					break;
				}
	D.cfg = cfg;
	cfg_unref(old);
	if (cfg->nzones > 0)
		probe_cfg(cfg);
	return 0;
}

/* dnsbl_init - parse the lists, set up the resolver, start the probe */
int
dnsbl_init(struct event_base *base, const struct conf *c, char *err,
    size_t errlen)
{
	struct dnsbl_cfg *cfg;

	if (D.inited)
		dnsbl_shutdown();
	memset(&D, 0, sizeof(D));
	D.base = base;
	TAILQ_INIT(&D.reqs);
	TAILQ_INIT(&D.queries);
	snprintf(D.dns_servers, sizeof(D.dns_servers), "%s", c->dns_servers);
	D.csize = c->dnsbl_cache_size;
	D.inited = 1;
	if ((cfg = cfg_build(c, err, errlen)) == NULL) {
		dnsbl_shutdown();
		return -1;
	}
	if (install(cfg, err, errlen) < 0) {
		cfg_unref(cfg);
		dnsbl_shutdown();
		return -1;
	}
	if (cfg->nzones > 0)
		log_info("dnsbl: %d list(s) in %d zone(s), timeout %ld ms",
		    cfg->nsites, cfg->nzones, cfg->timeout_ms);
	return 0;
}

/* dnsbl_reconfigure - new lists and times on SIGHUP; old kept on error */
int
dnsbl_reconfigure(const struct conf *c, char *err, size_t errlen)
{
	struct dnsbl_cfg *cfg;

	if (!D.inited) {
		snprintf(err, errlen, "dnsbl: not initialised");
		return -1;
	}
	if ((cfg = cfg_build(c, err, errlen)) == NULL)
		return -1;
	if (install(cfg, err, errlen) < 0) {
		cfg_unref(cfg);
		return -1;
	}
	return 0;
}

/* dnsbl_evdns - the resolver (NULL without lists and without dns_servers) */
struct evdns_base *
dnsbl_evdns(void)
{
	return D.dns;
}

/* dnsbl_stats - counters since dnsbl_init() */
void
dnsbl_stats(unsigned long *queries, unsigned long *hits,
    unsigned long *timeouts, unsigned long *errors, unsigned long *cache_hits)
{
	if (queries)
		*queries = D.nqueries;
	if (hits)
		*hits = D.nhits;
	if (timeouts)
		*timeouts = D.ntimeouts;
	if (errors)
		*errors = D.nerrors;
	if (cache_hits)
		*cache_hits = D.ncache_hits;
}

/* dnsbl_result_json - one JSON object; its length, or -1 if len is short */
int
dnsbl_result_json(const struct dnsbl_result *r, char *buf, size_t len)
{
	size_t n = 0;
	int i, w;

#define PUT(...) do {							\
	w = snprintf(buf + n, len > n ? len - n : 0, __VA_ARGS__);	\
	if (w < 0 || (size_t)w >= (len > n ? len - n : 0))		\
		return -1;						\
	n += (size_t)w;							\
} while (0)
	if (buf == NULL || len == 0)
		return -1;
	PUT("{\"score\":%.10g,\"hits\":[", r->score);
	for (i = 0; i < r->nhits && i < DNSBL_MAX_HITS; i++)
		PUT("%s{\"zone\":\"%s\",\"answer\":\"%s\",\"weight\":%.10g}",
		    i ? "," : "", r->hits[i].zone, r->hits[i].answer,
		    r->hits[i].weight);
	PUT("],\"timeouts\":%d,\"errors\":%d,\"latency_ms\":%ld}",
	    r->timeouts, r->errors, r->latency_ms);
#undef PUT
	return (int)n;
}

/* dnsbl_shutdown - free everything; pending callbacks never run */
void
dnsbl_shutdown(void)
{
	struct dnsbl_req *req;
	struct dnsbl_query *q;

	if (!D.inited)
		return;
	while ((req = TAILQ_FIRST(&D.reqs)) != NULL)
		dnsbl_cancel(req);
	if (D.dns != NULL) {
		evdns_base_free(D.dns, 0);
		D.dns = NULL;
	}
	while ((q = TAILQ_FIRST(&D.queries)) != NULL) {
		TAILQ_REMOVE(&D.queries, q, link);
		cfg_unref(q->cfg);
		free(q);
	}
	if (D.probe_ev != NULL) {
		event_free(D.probe_ev);
		D.probe_ev = NULL;
	}
	cfg_unref(D.cfg);
	D.cfg = NULL;
	free(D.ce);
	free(D.bucket);
	free(D.znames);
	memset(&D, 0, sizeof(D));
}
