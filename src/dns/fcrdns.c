/*
 * fcrdns.c - forward-confirmed reverse DNS over evdns, with a cache
 *
 * What it does: for a client address, asks the PTR record (in-addr.arpa
 * or ip6.arpa), keeps up to FCRDNS_MAX_PTR of the names that are valid
 * host names (LDH labels, at most 253 bytes, two labels or more, a
 * non-numeric top label), asks the A (IPv4 client) or AAAA (IPv6 client)
 * records of each, and calls back with the first name one of whose
 * addresses is the client, together with its organisational domain
 * (psl_org_domain()).  Everything is asynchronous; an overall deadline
 * (timeout_ms) bounds the wait whatever evdns's own timeouts are.
 * IPv4-mapped IPv6 clients are looked up as IPv4.
 *
 * Results are cached per client address in FCRDNS_CACHE_SIZE entries (sets
 * of four, the oldest evicted): a verified name for the smaller of the PTR
 * and forward TTLs, clamped to [FCRDNS_POS_TTL_MIN, FCRDNS_POS_TTL_MAX];
 * a definite failure (NXDOMAIN, no data, no valid name, no address that
 * matches) for FCRDNS_NEG_TTL.  Timeouts and server failures are not
 * cached.
 *
 * Exports: fcrdns_init(), fcrdns_lookup(), fcrdns_cancel(),
 * fcrdns_valid_name(), fcrdns_stats(), fcrdns_shutdown().
 *
 * Memory: the module owns every request from fcrdns_lookup() until its
 * callback returns or fcrdns_cancel() frees it; the strings passed to the
 * callback live on the stack for the duration of the call, and the
 * request is already freed when the callback runs (so the callback may
 * start a new lookup, or free whatever owns it).  Each evdns query is its
 * own object: when its request finishes first, the query is detached and
 * cancelled, and frees itself when evdns calls back (evdns always does,
 * with DNS_ERR_CANCEL at the latest), so the event loop may run after
 * fcrdns_shutdown() until the evdns base is freed.
 *
 * Limits: libevent 2.1's evdns hands a PTR callback the first PTR record
 * of the answer only, so in practice one name is checked per client.
 *
 * It is an error to call fcrdns_lookup() before fcrdns_init(), to call
 * fcrdns_cancel() after the callback ran or twice, to free the evdns base
 * while a request on it is in flight (fcrdns_shutdown() first), or to
 * call anything but fcrdns_init() after fcrdns_shutdown().
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "dns/fcrdns.h"
#include "dns/psl.h"
#include "util/addr.h"
#include "util/log.h"

#define FCRDNS_NAME_MAX		253	/* bytes, no trailing dot */
#define FCRDNS_DEFAULT_MS	5000	/* timeout_ms <= 0 */
#define FCRDNS_WAYS		4	/* cache associativity */

enum fcrdns_kind { Q_PTR, Q_FWD };

/* One evdns query; outlives its request when detached. */
struct fcrdns_q {
	struct fcrdns_req *req;		/* NULL = detached, free on callback */
	struct evdns_request *er;	/* evdns's handle, valid until the callback */
	enum fcrdns_kind kind;
	int	idx;			/* Q_FWD: index into req->names */
};

struct fcrdns_req {
	fcrdns_cb *cb;
	void	*arg;
	struct evdns_base *dns;
	int	family;			/* AF_INET or AF_INET6 */
	uint8_t	addr[16];		/* client, network bytes (4 used for IPv4) */
	struct event *ev;		/* deadline, or zero delay for a cache hit */
	int	cached;			/* 1 = ev delivers cname */
	char	cname[FCRDNS_NAME_MAX + 1];	/* cache hit ("" = negative) */
	char	names[FCRDNS_MAX_PTR][FCRDNS_NAME_MAX + 1];
	int	nnames;			/* valid PTR names kept */
	struct fcrdns_q *ptrq;		/* PTR query in flight or NULL */
	struct fcrdns_q *fwdq[FCRDNS_MAX_PTR];	/* forward queries or NULL */
	int	pending;		/* forward queries in flight */
	int	soft;			/* a forward query failed softly (no cache) */
	long	ttl;			/* s, smallest TTL seen (-1 = none yet) */
	TAILQ_ENTRY(fcrdns_req) link;
};

struct fcrdns_ent {
	int	family;			/* 0 = empty */
	uint8_t	addr[16];
	time_t	expires;		/* monotonic s */
	time_t	added;			/* monotonic s, for eviction */
	char	name[FCRDNS_NAME_MAX + 1];	/* "" = not verified */
};

static struct {
	struct event_base *base;
	TAILQ_HEAD(, fcrdns_req) reqs;
	struct fcrdns_ent *cache;	/* FCRDNS_CACHE_SIZE entries or NULL */
	unsigned long lookups, verified, failed, timeouts, cache_hits;
} F = { .reqs = TAILQ_HEAD_INITIALIZER(F.reqs) };

static void ptr_cb(int, char, int, int, void *, void *);
static void fwd_cb(int, char, int, int, void *, void *);

/* now_s - monotonic seconds */
static time_t
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* fcrdns_init - the event loop deadlines and deliveries run on */
void
fcrdns_init(struct event_base *base)
{
	F.base = base;
}

/* fcrdns_valid_name - name as a verified-name candidate into buf; 0 or -1 */
int
fcrdns_valid_name(const char *name, char *buf, size_t len)
{
	size_t n, i, llen = 0, labels = 0;
	int numeric = 1;
	unsigned char c;

	if (name == NULL)
		return -1;
	n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > FCRDNS_NAME_MAX || n + 1 > len)
		return -1;
	for (i = 0; i <= n; i++) {
		c = i < n ? (unsigned char)name[i] : '.';
		if (c == '.') {
			if (llen == 0 || name[i - 1] == '-')
				return -1;
			labels++;
			llen = 0;
			if (i < n)
				buf[i] = '.';
			continue;
		}
		if (llen == 0) {
			if (c == '-')
				return -1;
			numeric = 1;
		}
		if (++llen > 63)
			return -1;
		if (!isalnum(c) && c != '-')
			return -1;
		if (!isdigit(c))
			numeric = 0;
		buf[i] = (char)tolower(c);
	}
	if (labels < 2 || numeric)
		return -1;		/* "localhost", "192.0.2.1" */
	buf[n] = '\0';
	return 0;
}

/* cache_set - the FCRDNS_WAYS entries a client address maps to */
static struct fcrdns_ent *
cache_set(int family, const uint8_t addr[16])
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	int i;

	for (i = 0; i < 16; i++) {
		h ^= addr[i];
		h *= 16777619u;
	}
	return &F.cache[(h % (FCRDNS_CACHE_SIZE / FCRDNS_WAYS)) * FCRDNS_WAYS];
}

/* cache_get - a live entry for the client, or NULL */
static struct fcrdns_ent *
cache_get(int family, const uint8_t addr[16])
{
	struct fcrdns_ent *set;
	int i;

	if (F.cache == NULL)
		return NULL;
	set = cache_set(family, addr);
	for (i = 0; i < FCRDNS_WAYS; i++)
		if (set[i].family == family &&
		    memcmp(set[i].addr, addr, 16) == 0) {
			if (set[i].expires > now_s())
				return &set[i];
			set[i].family = 0;
			return NULL;
		}
	return NULL;
}

/* cache_put - remember name ("" = not verified) for ttl seconds */
static void
cache_put(int family, const uint8_t addr[16], const char *name, long ttl)
{
	struct fcrdns_ent *set, *e = NULL;
	time_t now = now_s();
	int i;

	if (ttl <= 0)
		return;
	if (F.cache == NULL && (F.cache = calloc(FCRDNS_CACHE_SIZE,
	    sizeof(*F.cache))) == NULL)
		return;
	set = cache_set(family, addr);
	for (i = 0; i < FCRDNS_WAYS && e == NULL; i++)
		if (set[i].family == family &&
		    memcmp(set[i].addr, addr, 16) == 0)
			e = &set[i];
	for (i = 0; i < FCRDNS_WAYS && e == NULL; i++)
		if (set[i].family == 0 || set[i].expires <= now)
			e = &set[i];
	if (e == NULL) {
		e = &set[0];
		for (i = 1; i < FCRDNS_WAYS; i++)
			if (set[i].added < e->added)
				e = &set[i];
	}
	e->family = family;
	memcpy(e->addr, addr, 16);
	e->added = now;
	e->expires = now + ttl;
	snprintf(e->name, sizeof(e->name), "%s", name);
}

/* q_detach - cancel a query whose request is finishing */
static void
q_detach(struct fcrdns_req *req, struct fcrdns_q *q)
{
	if (q == NULL)
		return;
	q->req = NULL;
	evdns_cancel_request(req->dns, q->er);	/* q frees itself in its cb */
}

/* req_free - disarm and free a request; its queries are detached */
static void
req_free(struct fcrdns_req *req)
{
	int i;

	if (req->ev != NULL) {
		event_free(req->ev);
		req->ev = NULL;
	}
	q_detach(req, req->ptrq);
	req->ptrq = NULL;
	for (i = 0; i < FCRDNS_MAX_PTR; i++) {
		q_detach(req, req->fwdq[i]);
		req->fwdq[i] = NULL;
	}
	TAILQ_REMOVE(&F.reqs, req, link);
	free(req);
}

/* finish - free the request, then call back with name (NULL = failure) */
static void
finish(struct fcrdns_req *req, const char *name)
{
	char nbuf[FCRDNS_NAME_MAX + 1], obuf[FCRDNS_NAME_MAX + 1], ip[64];
	const char *org = NULL;
	fcrdns_cb *cb = req->cb;
	void *arg = req->arg;

	if (name != NULL && *name != '\0') {
		snprintf(nbuf, sizeof(nbuf), "%s", name);
		name = nbuf;
		org = psl_org_domain(nbuf, obuf, sizeof(obuf));
		F.verified++;
	} else {
		name = NULL;
		F.failed++;
	}
	if (log_get_verbose() > 0) {
		inet_ntop(req->family, req->addr, ip, sizeof(ip));
		log_debug("fcrdns: %s: %s%s%s%s", ip, name ? name : "not verified",
		    org ? " (" : "", org ? org : "", org ? ")" : "");
	}
	req_free(req);
	cb(arg, name, org);
}

/* send_q - start one evdns query for req; the query or NULL */
static struct fcrdns_q *
send_q(struct fcrdns_req *req, enum fcrdns_kind kind, int idx)
{
	struct fcrdns_q *q;
	struct in_addr a4;
	struct in6_addr a6;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->req = req;
	q->kind = kind;
	q->idx = idx;
	if (kind == Q_PTR && req->family == AF_INET) {
		memcpy(&a4, req->addr, 4);
		q->er = evdns_base_resolve_reverse(req->dns, &a4,
		    DNS_QUERY_NO_SEARCH, ptr_cb, q);
	} else if (kind == Q_PTR) {
		memcpy(&a6, req->addr, 16);
		q->er = evdns_base_resolve_reverse_ipv6(req->dns, &a6,
		    DNS_QUERY_NO_SEARCH, ptr_cb, q);
	} else if (req->family == AF_INET)
		q->er = evdns_base_resolve_ipv4(req->dns, req->names[idx],
		    DNS_QUERY_NO_SEARCH, fwd_cb, q);
	else
		q->er = evdns_base_resolve_ipv6(req->dns, req->names[idx],
		    DNS_QUERY_NO_SEARCH, fwd_cb, q);
	if (q->er == NULL) {
		free(q);
		return NULL;
	}
	return q;
}

/* definite - a DNS result that may be cached as "not verified" */
static int
definite(int result)
{
	return result == DNS_ERR_NONE || result == DNS_ERR_NOTEXIST ||
	    result == DNS_ERR_NODATA;
}

/* ptr_cb - the PTR answer: keep the valid names, ask their addresses */
static void
ptr_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct fcrdns_q *q = arg;
	struct fcrdns_req *req = q->req;
	char **names = addresses;
	int i;

	free(q);
	if (req == NULL)
		return;			/* detached: finished or cancelled */
	req->ptrq = NULL;
	if (result != DNS_ERR_NONE || type != DNS_PTR || count < 1 ||
	    names == NULL) {
		if (definite(result))
			cache_put(req->family, req->addr, "", FCRDNS_NEG_TTL);
		finish(req, NULL);
		return;
	}
	req->ttl = ttl;
	for (i = 0; i < count && req->nnames < FCRDNS_MAX_PTR; i++) {
		if (names[i] == NULL)
			break;
		if (fcrdns_valid_name(names[i], req->names[req->nnames],
		    sizeof(req->names[0])) < 0) {
			log_debug("fcrdns: PTR name rejected: not a host name");
			continue;
		}
		req->nnames++;
	}
	if (req->nnames == 0) {
		cache_put(req->family, req->addr, "", FCRDNS_NEG_TTL);
		finish(req, NULL);
		return;
	}
	for (i = 0; i < req->nnames; i++)
		if ((req->fwdq[i] = send_q(req, Q_FWD, i)) != NULL)
			req->pending++;
	if (req->pending == 0) {
		log_warnx("fcrdns: cannot send a forward query");
		finish(req, NULL);
	}
}

/* fwd_cb - A or AAAA answer for one PTR name: does it hold the client? */
static void
fwd_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct fcrdns_q *q = arg;
	struct fcrdns_req *req = q->req;
	const uint8_t *a = addresses;
	int i, idx = q->idx, match = 0;
	size_t alen = req && req->family == AF_INET ? 4 : 16;

	free(q);
	if (req == NULL)
		return;
	req->fwdq[idx] = NULL;
	req->pending--;
	if (result == DNS_ERR_NONE && a != NULL &&
	    ((type == DNS_IPv4_A && req->family == AF_INET) ||
	    (type == DNS_IPv6_AAAA && req->family == AF_INET6)))
		for (i = 0; i < count && !match; i++)
			match = memcmp(a + (size_t)i * alen, req->addr,
			    alen) == 0;
	if (!definite(result))
		req->soft = 1;
	if (match) {
		if (ttl < req->ttl)
			req->ttl = ttl;
		if (req->ttl < FCRDNS_POS_TTL_MIN)
			req->ttl = FCRDNS_POS_TTL_MIN;
		if (req->ttl > FCRDNS_POS_TTL_MAX)
			req->ttl = FCRDNS_POS_TTL_MAX;
		cache_put(req->family, req->addr, req->names[idx], req->ttl);
		finish(req, req->names[idx]);
		return;
	}
	if (req->pending > 0)
		return;
	if (!req->soft)
		cache_put(req->family, req->addr, "", FCRDNS_NEG_TTL);
	finish(req, NULL);
}

/* timer_cb - a cache hit's delivery, or the overall deadline */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fcrdns_req *req = arg;

	(void)fd;
	(void)what;
	if (req->cached) {
		finish(req, req->cname);
		return;
	}
	F.timeouts++;
	log_debug("fcrdns: no answer within the deadline");
	finish(req, NULL);
}

/* fcrdns_lookup - start a lookup; NULL (callback never runs) if it cannot */
struct fcrdns_req *
fcrdns_lookup(struct evdns_base *dns, const struct sockaddr *client,
    long timeout_ms, fcrdns_cb *cb, void *arg)
{
	struct sockaddr_storage ss;
	struct fcrdns_req *req;
	struct fcrdns_ent *e;
	struct timeval tv;

	if (F.base == NULL || dns == NULL || client == NULL || cb == NULL)
		return NULL;
	memset(&ss, 0, sizeof(ss));
	if (client->sa_family == AF_INET)
		memcpy(&ss, client, sizeof(struct sockaddr_in));
	else if (client->sa_family == AF_INET6)
		memcpy(&ss, client, sizeof(struct sockaddr_in6));
	else
		return NULL;
	addr_unmap(&ss);
	if ((req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->cb = cb;
	req->arg = arg;
	req->dns = dns;
	req->ttl = -1;
	req->family = ss.ss_family;
	if (req->family == AF_INET)
		memcpy(req->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	else
		memcpy(req->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	if ((req->ev = evtimer_new(F.base, timer_cb, req)) == NULL) {
		free(req);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&F.reqs, req, link);
	F.lookups++;
	if ((e = cache_get(req->family, req->addr)) != NULL) {
		F.cache_hits++;
		req->cached = 1;
		memcpy(req->cname, e->name, sizeof(req->cname));
		tv.tv_sec = tv.tv_usec = 0;
	} else {
		if (timeout_ms <= 0)
			timeout_ms = FCRDNS_DEFAULT_MS;
		if ((req->ptrq = send_q(req, Q_PTR, 0)) == NULL) {
			F.lookups--;
			req_free(req);
			return NULL;
		}
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
	}
	evtimer_add(req->ev, &tv);
	return req;
}

/* fcrdns_cancel - drop a request; its callback never runs */
void
fcrdns_cancel(struct fcrdns_req *req)
{
	if (req != NULL)
		req_free(req);
}

/* fcrdns_stats - counters since start */
void
fcrdns_stats(unsigned long *lookups, unsigned long *verified,
    unsigned long *failed, unsigned long *timeouts, unsigned long *cache_hits)
{
	if (lookups)
		*lookups = F.lookups;
	if (verified)
		*verified = F.verified;
	if (failed)
		*failed = F.failed;
	if (timeouts)
		*timeouts = F.timeouts;
	if (cache_hits)
		*cache_hits = F.cache_hits;
}

/* fcrdns_shutdown - cancel every request (no callbacks), drop the cache */
void
fcrdns_shutdown(void)
{
	struct fcrdns_req *req;

	while ((req = TAILQ_FIRST(&F.reqs)) != NULL)
		req_free(req);
	free(F.cache);
	F.cache = NULL;
	F.base = NULL;
	F.lookups = F.verified = F.failed = F.timeouts = F.cache_hits = 0;
}
