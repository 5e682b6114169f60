/*
 * admin.c - the admin HTTP API, with evhttp in the daemon's event loop
 *
 * Exports adm_open(), adm_close() and the session hooks adm_sess_start(),
 * adm_sess_end(), adm_msg_end() and adm_delay().
 *
 * adm_open() listens on admin_listen: a loopback host:port (conf.c refuses
 * anything else, and the SMTP ports) or unix:/path.  On TCP every request
 * must carry "Authorization: Bearer <admin_token>"; on a unix socket only
 * when admin_token is set.  The one exception is GET / itself: the page is
 * static and holds no data, and a browser cannot send a header when it
 * opens a URL; the page takes the token from #token= (or ?token=) and
 * sends it as the Bearer header with every fetch.  Endpoints:
 *
 *	GET  /metrics		Prometheus text format 0.0.4
 *	GET  /api/stats		the report tables by OS and by class, live
 *	GET  /api/host/IP	what we know about one client (p0f's API)
 *	POST /feedback		spam/ham verdicts (feedback.c's handler)
 *	GET  /			the dashboard (dashboard.c), no external resources
 *
 * Bad input: a path or address that does not parse, a method the path does
 * not take, a missing or wrong token get a 4xx JSON reply; headers beyond
 * 8 KiB and bodies beyond 4 KiB are refused by evhttp itself.
 *
 * Connections are bounded in number and in time.  evhttp_set_timeout() is
 * an idle timeout only (a client sending a header byte every few seconds
 * would hold a connection for ever), and evhttp has no connection cap, so
 * the module keeps a record of every connection: evhttp_set_bevcb() makes
 * each connection's bufferevent here, with the record and a zero-delay
 * timer; on that first turn evhttp has built its connection around the
 * bufferevent, the record learns it (the bufferevent's callback argument)
 * and registers a close callback, which evhttp calls whenever it frees an
 * incoming connection, so the record ends exactly with its connection.
 * At most ADM_CONNS_MAX connections are open; one beyond that gets "503
 * Service Unavailable" on its first turn and its socket is shut down, with
 * a log line (at most one a second).  Each connection has ADM_REQ_DEADLINE
 * seconds to deliver a whole request, headers and body, counted from the
 * accept and, on a keep-alive connection, from the end of the previous
 * reply; a request that has arrived stops the clock while it waits and is
 * answered.  When the deadline passes the client gets "408 Request
 * Timeout" and the socket is shut down, which evhttp reads as the end of
 * the connection and frees it the usual way (the descriptor is never
 * closed here).  evhttp's own idle timeout stays, a little longer, for
 * replies a client does not read.  So an SMTP client that connects to the
 * admin port and waits for a banner gets 408 at the deadline, and one that
 * sends a command gets 400 from evhttp at once.
 *
 * Memory: the module owns a table of at most ADM_HOSTS_MAX hosts (hash +
 * LRU list; the least recently seen host is dropped when it is full) and
 * the group tables (at most ADM_GROUPS_MAX OS labels; the rest go to
 * "(other)").  A host remembers up to ADM_HOST_LIVE live sessions by
 * pointer; adm_sess_end() drops the pointer before sess_free() frees the
 * session, so it is an error to free a session without calling
 * adm_sess_end() (sess_free() is the only teardown and calls it).
 * "Senders" are distinct addresses among the hosts in the table: a host
 * dropped from it and seen again counts again.
 *
 * The hooks only update counters: they never block, allocate at most one
 * host record, and do nothing before adm_open() or after adm_close().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "admin/admin.h"
#include "admin/feedback.h"
#include "daemon/runtime.h"
#include "dns/fcrdns.h"
#include "dnsbl/dnsbl.h"
#include "log/eventlog.h"
#include "log/evrec.h"
#include "fp/fp.h"
#include "rep/rep.h"
#include "util/addr.h"
#include "util/json.h"
#include "util/log.h"

#define ADM_HOST_FPS	3	/* distinct fingerprints kept per host */
#define ADM_HOST_SEEN	4	/* groups a host is counted in, per table */
#define ADM_HOST_LIVE	4	/* live sessions remembered per host */
#define ADM_BUCKETS	16384	/* host hash buckets */
#define ADM_REASONS	512	/* bytes of the last session's reasons */
#define ADM_MAX_HEADERS	8192	/* request header bytes */
#define ADM_MAX_BODY	4096	/* request body bytes */
#define ADM_RATE	200	/* requests served per second ... */
#define ADM_BURST	200	/* ... after a burst of this many */
#define ADM_QUEUE_MAX	256	/* requests waiting for their turn */
#define ADM_CONNS_MAX	64	/* concurrent admin connections */
#define ADM_REQ_DEADLINE 10	/* s to receive one whole request */
#define ADM_NPRI	3	/* event priorities the base gets */
#define ADM_PRI		(ADM_NPRI - 1)	/* ours: the lowest */

/* One fingerprint a host was seen with. */
struct adm_fp {
	char	key_hash[17];		/* "" = free slot */
	char	raw_sig[160];
	char	os[96];
	const char *match;		/* static text from fp.c */
	int	dist;			/* hop distance */
	char	link[32];
	unsigned long sessions;
	struct timeval last;
};

/* A group (OS label or class) a host has been counted in. */
struct adm_seen {
	short	idx;			/* group index, -1 = free slot */
	short	ok;			/* delivered at least once there */
};

struct adm_host {
	struct adm_host *hnext;		/* hash chain */
	struct adm_host *prev, *next;	/* LRU list, most recent first */
	uint8_t	key[17];		/* addr_key() of the full address */
	union ipaddr peer;
	char	ip[48];
	struct timeval first, last;	/* first and last session start/end */
	unsigned long sessions;		/* sessions started */
	unsigned long null_syn;		/* of them without a saved SYN */
	unsigned long msgs[OC_N];	/* by enum outcome */
	struct adm_fp fp[ADM_HOST_FPS];
	struct adm_seen os_seen[ADM_HOST_SEEN], cls_seen[ADM_HOST_SEEN];
	const struct evr_session *live[ADM_HOST_LIVE];	/* NULL = free slot */
	/* The last session that ended. */
	int	have_last;
	char	sid[16];
	char	cls[CONF_NAME_MAX];
	char	reasons[ADM_REASONS];	/* each ended by NUL */
	int	nreasons;
	double	score;
	const char *outcome;		/* static text */
	char	helo[64];
	char	domain[64];		/* verified organisational domain */
	char	key_hash[17];		/* its fingerprint, "" = none */
	char	os[96];
};

/* One row of a report table. */
struct adm_group {
	char	label[96];		/* "" = unused */
	unsigned long sessions, messages;
	unsigned long delivered, rejected, deferred, abandoned;
	unsigned long protocol_error, backend_error;
	unsigned long early;		/* abandoned before any MAIL */
	unsigned long senders, ok_senders;
	double	wait_sum;		/* abandoned sessions: seconds waited */
	unsigned long waited;
};

/* One admin connection, from its accept until evhttp frees it. */
struct adm_conn {
	TAILQ_ENTRY(adm_conn) entry;	/* adm.conns */
	struct bufferevent *bev;	/* the one evhttp reads through */
	struct evhttp_connection *evcon; /* NULL until the first turn */
	struct event *timer;		/* first turn, then the deadline */
	int	refused;		/* beyond ADM_CONNS_MAX: shut at once */
	int	busy;			/* a request is in: no deadline runs */
};
TAILQ_HEAD(adm_conn_list, adm_conn);

static const char *const adm_quality[] = {
	"exact", "generic", "fuzzy", "generic_fuzzy", "none", "null_syn",
};
#define ADM_NQUALITY	6

/* DNS list lookup latency buckets, seconds. */
static const double adm_dnsbl_le[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define ADM_NLE	(sizeof(adm_dnsbl_le) / sizeof(adm_dnsbl_le[0]))

static const int adm_codes[] = { 200, 400, 401, 404, 405, 429, 500 };
#define ADM_NCODES	(sizeof(adm_codes) / sizeof(adm_codes[0]))

static struct {
	struct evhttp *http;
	int	unix_sock;		/* listening on unix:/path */
	char	path[108];		/* the unix socket, to unlink */
	struct timeval started;
	/* Hosts. */
	struct adm_host *bucket[ADM_BUCKETS];
	struct adm_host *lru_head, *lru_tail;
	unsigned long nhosts, evicted;
	/* Report tables. */
	struct adm_group os[ADM_GROUPS_MAX];
	int	nos;
	struct adm_group cls[CONF_MAX_CLASSES];	/* by daemon class index */
	/* Metrics. */
	unsigned long msgs[OC_N];
	unsigned long sess_out[OC_N];
	unsigned long quality[ADM_NQUALITY];
	unsigned long dnsbl_bucket[ADM_NLE];	/* not cumulative */
	unsigned long dnsbl_n;
	double	dnsbl_sum;
	unsigned long delays[CONF_MAX_CLASSES];
	double	delay_s[CONF_MAX_CLASSES];
	unsigned long requests[ADM_NCODES];
	unsigned long unauthorized;
	/* Rate limit: a token bucket and a FIFO of requests held back. */
	double	tokens;
	struct timeval refilled;
	struct event *wait_timer;
	struct evhttp_request *waiting[ADM_QUEUE_MAX];
	size_t	whead, nwait;
	unsigned long delayed, overflow;
	/* Connections. */
	struct event_base *base;
	struct adm_conn_list conns;
	unsigned long nconns;		/* linked and not refused */
	unsigned long conn_refused, conn_expired;
	unsigned long refused_unlogged;
	time_t	refused_logged;		/* last refusal log line, or 0 */
} adm;

/*
 * The host table.
 */

/* adm_hash - FNV-1a of a host key */
static unsigned
adm_hash(const uint8_t key[17])
{
	uint32_t h = 2166136261u;
	int	i;

	for (i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % ADM_BUCKETS;
}

/* adm_lru_unlink - take h out of the LRU list */
static void
adm_lru_unlink(struct adm_host *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		adm.lru_head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		adm.lru_tail = h->prev;
	h->prev = h->next = NULL;
}

/* adm_lru_front - make h the most recently seen */
static void
adm_lru_front(struct adm_host *h)
{
	if (adm.lru_head == h)
		return;
	if (h->prev || h->next || adm.lru_tail == h)
		adm_lru_unlink(h);
	h->next = adm.lru_head;
	if (adm.lru_head)
		adm.lru_head->prev = h;
	adm.lru_head = h;
	if (adm.lru_tail == NULL)
		adm.lru_tail = h;
}

/* adm_host_drop - unlink and free one host */
static void
adm_host_drop(struct adm_host *h)
{
	struct adm_host **pp = &adm.bucket[adm_hash(h->key)];

	while (*pp != NULL && *pp != h)
		pp = &(*pp)->hnext;
	if (*pp == h)
		*pp = h->hnext;
	adm_lru_unlink(h);
	free(h);
	adm.nhosts--;
}

/* adm_host_find - the host with this key, or NULL */
static struct adm_host *
adm_host_find(const uint8_t key[17])
{
	struct adm_host *h;

	for (h = adm.bucket[adm_hash(key)]; h != NULL; h = h->hnext)
		if (memcmp(h->key, key, 17) == 0)
			return h;
	return NULL;
}

/* adm_host_get - the session's host, created (and the oldest dropped) */
static struct adm_host *
adm_host_get(const struct evr_session *s, int create)
{
	struct adm_host *h;
	uint8_t	key[17];
	unsigned b;
	int	i;

	if (addr_key(&s->peer.sa, 32, 128, key) < 0)
		return NULL;
	if ((h = adm_host_find(key)) != NULL || !create) {
		if (h != NULL)
			adm_lru_front(h);
		return h;
	}
	if (adm.nhosts >= ADM_HOSTS_MAX && adm.lru_tail != NULL) {
		adm_host_drop(adm.lru_tail);
		adm.evicted++;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	memcpy(h->key, key, 17);
	h->peer = s->peer;
	snprintf(h->ip, sizeof(h->ip), "%s", s->ip);
	h->first = s->start;
	for (i = 0; i < ADM_HOST_SEEN; i++)
		h->os_seen[i].idx = h->cls_seen[i].idx = -1;
	b = adm_hash(key);
	h->hnext = adm.bucket[b];
	adm.bucket[b] = h;
	adm.nhosts++;
	adm_lru_front(h);
	return h;
}

/*
 * The report tables.
 */

/* adm_os_label - the session's OS group label */
static const char *
adm_os_label(const struct evr_session *s)
{
	return s->fp != NULL ? s->fp->os : "(no SYN)";
}

/* adm_os_group - index of an OS label's group, created if there is room */
static int
adm_os_group(const char *label)
{
	int	i;

	for (i = 0; i < adm.nos; i++)
		if (strcmp(adm.os[i].label, label) == 0)
			return i;
	if (adm.nos < ADM_GROUPS_MAX - 1) {
		snprintf(adm.os[adm.nos].label, sizeof(adm.os[0].label), "%s",
		    label);
		return adm.nos++;
	}
	/* The last slot collects the rest. */
	i = ADM_GROUPS_MAX - 1;
	if (adm.nos == ADM_GROUPS_MAX - 1) {
		snprintf(adm.os[i].label, sizeof(adm.os[0].label), "(other)");
		adm.nos++;
	}
	return i;
}

/* adm_cls_group - the group of the session's current class, or NULL */
static struct adm_group *
adm_cls_group(const struct evr_session *s)
{
	struct adm_group *g;

	if (s->class_idx < 0 || s->class_idx >= CONF_MAX_CLASSES)
		return NULL;
	g = &adm.cls[s->class_idx];
	if (g->label[0] == 0)
		snprintf(g->label, sizeof(g->label), "%s", s->class_name);
	return g;
}

/* adm_seen_slot - count the host as a sender of group idx once */
static struct adm_seen *
adm_seen_slot(struct adm_seen *seen, int idx, struct adm_group *g)
{
	int	i;

	for (i = 0; i < ADM_HOST_SEEN; i++)
		if (seen[i].idx == idx)
			return &seen[i];
	for (i = 0; i < ADM_HOST_SEEN; i++)
		if (seen[i].idx < 0) {
			seen[i].idx = (short)idx;
			seen[i].ok = 0;
			g->senders++;
			return &seen[i];
		}
	return NULL;		/* more groups than slots: not counted */
}

/* adm_groups_of - the session's OS and class groups, senders counted */
static void
adm_groups_of(const struct evr_session *s, struct adm_host *h,
    struct adm_group **og, struct adm_seen **os, struct adm_group **cg,
    struct adm_seen **cs)
{
	int	oi = adm_os_group(adm_os_label(s));

	*og = &adm.os[oi];
	*os = h ? adm_seen_slot(h->os_seen, oi, *og) : NULL;
	*cg = adm_cls_group(s);
	*cs = h && *cg ? adm_seen_slot(h->cls_seen, s->class_idx, *cg) : NULL;
}

/*
 * Session hooks.
 */

/* adm_fp_note - remember the session's fingerprint on its host */
static void
adm_fp_note(struct adm_host *h, const struct fp_result *fp,
    const struct timeval *now)
{
	struct adm_fp *slot = NULL, *oldest = &h->fp[0];
	int	i;

	for (i = 0; i < ADM_HOST_FPS; i++) {
		if (strcmp(h->fp[i].key_hash, fp->key_hash) == 0) {
			slot = &h->fp[i];
			break;
		}
		if (h->fp[i].key_hash[0] == 0 && slot == NULL)
			slot = &h->fp[i];
		if (timercmp(&h->fp[i].last, &oldest->last, <))
			oldest = &h->fp[i];
	}
	if (slot == NULL) {
		slot = oldest;		/* replace the least recent one */
		memset(slot, 0, sizeof(*slot));
	}
	if (slot->key_hash[0] == 0) {
		snprintf(slot->key_hash, sizeof(slot->key_hash), "%s",
		    fp->key_hash);
		snprintf(slot->raw_sig, sizeof(slot->raw_sig), "%s",
		    fp->raw_sig);
		snprintf(slot->os, sizeof(slot->os), "%s", fp->os);
		snprintf(slot->link, sizeof(slot->link), "%s", fp->link);
	}
	slot->match = fp->match;
	slot->dist = fp->dist;
	slot->sessions++;
	slot->last = *now;
}

/* adm_sess_start - a session was accepted and classified */
void
adm_sess_start(const struct evr_session *s)
{
	struct adm_group *og, *cg;
	struct adm_seen *os, *cs;
	struct adm_host *h;
	int	i, q;

	if (adm.http == NULL)
		return;
	if (s->fp == NULL)
		q = ADM_NQUALITY - 1;
	else {
		for (q = 0; q < ADM_NQUALITY - 2; q++)
			if (s->fp->match && strcmp(s->fp->match,
			    adm_quality[q]) == 0)
				break;
	}
	adm.quality[q]++;
	if ((h = adm_host_get(s, 1)) == NULL)
		return;
	h->sessions++;
	h->last = s->start;
	if (s->fp != NULL)
		adm_fp_note(h, s->fp, &s->start);
	else
		h->null_syn++;
	for (i = 0; i < ADM_HOST_LIVE; i++)
		if (h->live[i] == NULL) {
			h->live[i] = s;
			break;
		}
	adm_groups_of(s, h, &og, &os, &cg, &cs);
	og->sessions++;
	if (cg != NULL)
		cg->sessions++;
}

/* adm_sess_end - the session ends (from sess_free, before the free) */
void
adm_sess_end(const struct evr_session *s)
{
	struct adm_group *og, *cg;
	struct adm_seen *os, *cs;
	struct adm_host *h;
	struct timeval now;
	int	i;

	if (adm.http == NULL)
		return;
	if ((unsigned)s->outcome < OC_N)
		adm.sess_out[s->outcome]++;
	if (s->dnsbl != NULL) {
		double	sec = s->dnsbl->latency_ms / 1000.0;

		adm.dnsbl_n++;
		adm.dnsbl_sum += sec;
		for (i = 0; i < (int)ADM_NLE; i++)
			if (sec <= adm_dnsbl_le[i]) {
				adm.dnsbl_bucket[i]++;
				break;
			}
	}
	if ((h = adm_host_get(s, 0)) == NULL)
		return;
	gettimeofday(&now, NULL);
	h->last = now;
	for (i = 0; i < ADM_HOST_LIVE; i++)
		if (h->live[i] == s)
			h->live[i] = NULL;
	h->have_last = 1;
	snprintf(h->sid, sizeof(h->sid), "%s", s->id);
	snprintf(h->cls, sizeof(h->cls), "%s", s->class_name);
	h->nreasons = 0;
	{
		const char *r = s->reasons;
		size_t	used = 0;

		/* Whole reasons only, as many as fit. */
		for (i = 0; i < s->nreasons && r != NULL; i++) {
			size_t	l = strlen(r) + 1;

			if (used + l > sizeof(h->reasons))
				break;
			memcpy(h->reasons + used, r, l);
			used += l;
			r += l;
			h->nreasons++;
		}
	}
	h->score = s->score;
	h->outcome = outcome_name(s->outcome);
	snprintf(h->helo, sizeof(h->helo), "%s", s->helo ? s->helo : "");
	snprintf(h->domain, sizeof(h->domain), "%s",
	    s->domain ? s->domain : "");
	snprintf(h->key_hash, sizeof(h->key_hash), "%s",
	    s->fp ? s->fp->key_hash : "");
	snprintf(h->os, sizeof(h->os), "%s", s->fp ? s->fp->os : "");
	if (s->counted && s->outcome == OC_ABANDONED && s->msgno == 0) {
		double	waited = (now.tv_sec - s->start.tv_sec) +
		    (now.tv_usec - s->start.tv_usec) / 1e6;

		adm_groups_of(s, h, &og, &os, &cg, &cs);
		og->early++;
		og->waited++;
		og->wait_sum += waited;
		if (cg != NULL) {
			cg->early++;
			cg->waited++;
			cg->wait_sum += waited;
		}
	}
}

/* adm_msg_end - a message record was written */
void
adm_msg_end(const struct evr_session *s, int oc)
{
	struct adm_group *og, *cg, *gs[2];
	struct adm_seen *os, *cs, *ss[2];
	struct adm_host *h;
	int	i;

	if (adm.http == NULL || !(outcome_flags((enum outcome)oc) & OC_F_MSG))
		return;
	adm.msgs[oc]++;
	h = adm_host_get(s, 0);
	if (h != NULL)
		h->msgs[oc]++;
	adm_groups_of(s, h, &og, &os, &cg, &cs);
	gs[0] = og, gs[1] = cg;
	ss[0] = os, ss[1] = cs;
	for (i = 0; i < 2; i++) {
		struct adm_group *g = gs[i];

		if (g == NULL)
			continue;
		g->messages++;
		switch (oc) {
		case OC_DELIVERED:
			g->delivered++;
			if (ss[i] != NULL && !ss[i]->ok) {
				ss[i]->ok = 1;
				g->ok_senders++;
			}
			break;
		case OC_REJECTED:
			g->rejected++;
			break;
		case OC_DEFERRED:
			g->deferred++;
			break;
		case OC_ABANDONED:
			g->abandoned++;
			break;
		case OC_PROTOCOL_ERROR:
			g->protocol_error++;
			break;
		case OC_BACKEND_ERROR:
			g->backend_error++;
			break;
		}
	}
}

/* adm_delay - a reply is held ms milliseconds by a class */
void
adm_delay(int idx, long ms_)
{
	const char *name = ms_class_name(idx);
	struct adm_group *g;

	if (adm.http == NULL || ms_ <= 0 || idx < 0 ||
	    idx >= CONF_MAX_CLASSES || name == NULL)
		return;
	g = &adm.cls[idx];		/* remember the class name */
	if (g->label[0] == 0)
		snprintf(g->label, sizeof(g->label), "%s", name);
	adm.delays[idx]++;
	adm.delay_s[idx] += ms_ / 1000.0;
}

/*
 * HTTP plumbing.
 */

/* adm_count_code - requests by status, for /metrics */
static void
adm_count_code(int code)
{
	size_t	i;

	for (i = 0; i < ADM_NCODES; i++)
		if (adm_codes[i] == code)
			adm.requests[i]++;
}

/* adm_send - reply with b (freed) and the usual headers */
static void
adm_send(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, struct evbuffer *b)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	adm_count_code(code);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/* adm_error - a JSON error reply */
static void
adm_error(struct evhttp_request *req, int code, const char *reason,
    const char *what)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_printf(b, "{\"error\":");
	json_escape(b, what);
	evbuffer_add_printf(b, "}\n");
	adm_send(req, code, reason, "application/json", b);
}

/* adm_token_eq - constant-time comparison with admin_token */
static int
adm_token_eq(const char *got, size_t len)
{
	const char *want = ms->cf->admin_token;
	size_t	wl = strlen(want), i;
	unsigned char d = 0;

	if (len != wl)
		return 0;
	for (i = 0; i < wl; i++)
		d |= (unsigned char)(got[i] ^ want[i]);
	return d == 0;
}

/* adm_authorized - the request carries the token, or none is needed */
static int
adm_authorized(struct evhttp_request *req)
{
	const char *auth;

	if (*ms->cf->admin_token == 0)
		return adm.unix_sock;	/* TCP without a token: never */
	auth = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	auth += 7;
	while (*auth == ' ')
		auth++;
	return adm_token_eq(auth, strlen(auth));
}

/*
 * JSON output helpers (nested objects; json.h writes flat ones).
 */

/* js_key - separator and key */
static void
js_key(struct evbuffer *b, int *n, const char *key)
{
	if ((*n)++ > 0)
		evbuffer_add(b, ",", 1);
	if (key != NULL) {
		json_escape(b, key);
		evbuffer_add(b, ":", 1);
	}
}

/* js_ul - "key":number */
static void
js_ul(struct evbuffer *b, int *n, const char *key, unsigned long v)
{
	js_key(b, n, key);
	evbuffer_add_printf(b, "%lu", v);
}

/* js_num - "key":number, null when not finite */
static void
js_num(struct evbuffer *b, int *n, const char *key, double v)
{
	js_key(b, n, key);
	if (isfinite(v))
		evbuffer_add_printf(b, "%.6g", v);
	else
		evbuffer_add_printf(b, "null");
}

/* js_str - "key":"escaped", null for NULL */
static void
js_str(struct evbuffer *b, int *n, const char *key, const char *v)
{
	js_key(b, n, key);
	if (v == NULL)
		evbuffer_add_printf(b, "null");
	else
		json_escape(b, v);
}

/* js_time - "key":"RFC 3339" */
static void
js_time(struct evbuffer *b, int *n, const char *key, const struct timeval *tv)
{
	char	t[64];

	rfc3339(tv, t, sizeof(t));
	js_str(b, n, key, t);
}

/* js_group - one report table row */
static void
js_group(struct evbuffer *b, const struct adm_group *g)
{
	int	n = 0;

	evbuffer_add(b, "{", 1);
	js_str(b, &n, "label", g->label);
	js_ul(b, &n, "sessions", g->sessions);
	js_ul(b, &n, "senders", g->senders);
	js_ul(b, &n, "ok_senders", g->ok_senders);
	js_ul(b, &n, "bad_senders", g->senders - g->ok_senders);
	js_ul(b, &n, "messages", g->messages);
	js_ul(b, &n, "delivered", g->delivered);
	js_ul(b, &n, "rejected", g->rejected);
	js_ul(b, &n, "deferred", g->deferred);
	js_ul(b, &n, "abandoned", g->abandoned);
	js_ul(b, &n, "protocol_error", g->protocol_error);
	js_ul(b, &n, "backend_error", g->backend_error);
	js_ul(b, &n, "early", g->early);
	js_num(b, &n, "success_rate", g->messages ?
	    (double)g->delivered / (double)g->messages : NAN);
	js_num(b, &n, "mean_wait_s", g->waited ?
	    g->wait_sum / (double)g->waited : NAN);
	evbuffer_add(b, "}", 1);
}

/*
 * Endpoints.
 */

/* adm_stats - GET /api/stats */
static void
adm_stats(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct timeval now;
	int	n = 0, i, first;

	if (b == NULL)
		return adm_error(req, 500, "Internal Server Error", "no memory");
	gettimeofday(&now, NULL);
	evbuffer_add(b, "{", 1);
	js_time(b, &n, "time", &now);
	js_ul(b, &n, "uptime_s", (unsigned long)(now.tv_sec -
	    adm.started.tv_sec));
	js_ul(b, &n, "sessions_live", (unsigned long)ms->nsess);
	js_ul(b, &n, "accepted", ms->st.accepted);
	js_ul(b, &n, "refused", ms->st.refused);
	js_ul(b, &n, "messages", ms->st.messages);
	js_ul(b, &n, "delivered", ms->st.delivered);
	js_ul(b, &n, "hosts", adm.nhosts);
	js_key(b, &n, "by_os");
	evbuffer_add(b, "[", 1);
	for (i = 0, first = 1; i < adm.nos; i++) {
		if (!first)
			evbuffer_add(b, ",", 1);
		first = 0;
		js_group(b, &adm.os[i]);
	}
	evbuffer_add(b, "]", 1);
	js_key(b, &n, "by_class");
	evbuffer_add(b, "[", 1);
	for (i = 0, first = 1; i < CONF_MAX_CLASSES; i++) {
		if (adm.cls[i].label[0] == 0)
			continue;
		if (!first)
			evbuffer_add(b, ",", 1);
		first = 0;
		js_group(b, &adm.cls[i]);
	}
	evbuffer_add(b, "]}\n", 3);
	adm_send(req, 200, "OK", "application/json", b);
}

/* adm_reasons - a JSON array of NUL-separated reasons */
static void
adm_reasons(struct evbuffer *b, int *n, const char *r, int nr)
{
	int	i;

	js_key(b, n, "reasons");
	evbuffer_add(b, "[", 1);
	for (i = 0; i < nr && r != NULL; i++) {
		if (i > 0)
			evbuffer_add(b, ",", 1);
		json_escape(b, r);
		r += strlen(r) + 1;
	}
	evbuffer_add(b, "]", 1);
}

/* adm_reputation - "reputation": one entry per key, with its evidence */
static void
adm_reputation(struct evbuffer *b, int *n, const struct sockaddr *sa,
    const char *key_hash, const char *os, const char *domain)
{
	struct rep_key keys[REPK_NKINDS];
	int	nk, i, j;

	nk = rep_keys_for(sa, key_hash && *key_hash ? key_hash : NULL,
	    os && *os ? os : NULL, domain && *domain ? domain : NULL, keys);
	js_key(b, n, "reputation");
	evbuffer_add(b, "[", 1);
	for (i = 0; i < nk; i++) {
		struct rep_est est;
		int	m = 0, c = 0, hit = rep_lookup(&keys[i], &est);

		if (i > 0)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, "{", 1);
		js_str(b, &m, "kind", rep_keykind_name(keys[i].kind));
		js_str(b, &m, "key", keys[i].text);
		evbuffer_add_printf(b, ",\"cached\":%s", hit ? "true" :
		    "false");
		js_num(b, &m, "p_spam", est.p_spam);
		js_num(b, &m, "log_odds", est.log_odds);
		js_num(b, &m, "evidence", est.evidence);
		js_key(b, &m, "counts");
		evbuffer_add(b, "{", 1);
		for (j = 0; j < OC_NLEARN; j++)
			js_num(b, &c, outcome_name((enum outcome)j),
			    est.counts[j]);
		evbuffer_add(b, "}}", 2);
	}
	evbuffer_add(b, "]", 1);
}

/* adm_parse_ip - a client address from the URL: canonical text and key */
static int
adm_parse_ip(const char *text, union ipaddr *ip, char *canon, size_t len)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	memset(ip, 0, sizeof(*ip));
	if (strlen(text) >= 48)
		return -1;
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr)
	    == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return -1;
	addr_unmap(&ss);
	memcpy(ip, &ss, sizeof(*ip));
	return addr_ntop(&ip->sa, canon, len, NULL);
}

/* adm_host_json - GET /api/host/IP */
static void
adm_host_json(struct evhttp_request *req, const char *arg)
{
	struct evbuffer *b;
	struct adm_host *h;
	const struct evr_session *live = NULL;
	union ipaddr ip;
	uint8_t	key[17];
	char	canon[64], *dec;
	size_t	dlen;
	int	n = 0, i, nlive = 0;

	dec = evhttp_uridecode(arg, 0, &dlen);
	if (dec == NULL || dlen != strlen(dec) || adm_parse_ip(dec, &ip,
	    canon, sizeof(canon)) < 0 || addr_key(&ip.sa, 32, 128, key) < 0) {
		free(dec);
		return adm_error(req, 400, "Bad Request",
		    "not an IPv4 or IPv6 address");
	}
	free(dec);
	if ((b = evbuffer_new()) == NULL)
		return adm_error(req, 500, "Internal Server Error", "no memory");
	h = adm_host_find(key);
	evbuffer_add(b, "{", 1);
	js_str(b, &n, "ip", canon);
	js_key(b, &n, "known");
	evbuffer_add_printf(b, "%s", h ? "true" : "false");
	if (h == NULL) {
		/* The store may still know the address and its prefix. */
		adm_reputation(b, &n, &ip.sa, NULL, NULL, NULL);
		evbuffer_add(b, "}\n", 2);
		adm_send(req, 404, "Not Found", "application/json", b);
		return;
	}
	for (i = 0; i < ADM_HOST_LIVE; i++)
		if (h->live[i] != NULL) {
			nlive++;
			if (live == NULL || timercmp(&h->live[i]->start,
			    &live->start, >))
				live = h->live[i];
		}
	js_time(b, &n, "first_seen", &h->first);
	js_time(b, &n, "last_seen", &h->last);
	js_ul(b, &n, "sessions", h->sessions);
	js_ul(b, &n, "sessions_live", (unsigned long)nlive);
	js_ul(b, &n, "null_syn_sessions", h->null_syn);
	js_key(b, &n, "messages");
	{
		int	m = 0;

		evbuffer_add(b, "{", 1);
		for (i = 0; i < OC_N; i++)
			if (outcome_flags((enum outcome)i) & OC_F_MSG)
				js_ul(b, &m, outcome_name((enum outcome)i),
				    h->msgs[i]);
		evbuffer_add(b, "}", 1);
	}
	js_key(b, &n, "fingerprints");
	evbuffer_add(b, "[", 1);
	{
		int	first = 1;

		for (i = 0; i < ADM_HOST_FPS; i++) {
			const struct adm_fp *f = &h->fp[i];
			int	m = 0;

			if (f->key_hash[0] == 0)
				continue;
			if (!first)
				evbuffer_add(b, ",", 1);
			first = 0;
			evbuffer_add(b, "{", 1);
			js_str(b, &m, "os", f->os);
			js_str(b, &m, "raw_sig", f->raw_sig);
			js_str(b, &m, "key_hash", f->key_hash);
			js_str(b, &m, "match", f->match);
			js_ul(b, &m, "distance", (unsigned long)(f->dist < 0 ?
			    0 : f->dist));
			js_str(b, &m, "link", f->link);
			js_ul(b, &m, "sessions", f->sessions);
			js_time(b, &m, "last_seen", &f->last);
			evbuffer_add(b, "}", 1);
		}
	}
	evbuffer_add(b, "]", 1);
	/* The current class: a live session's, else the last session's. */
	js_key(b, &n, "class");
	{
		int	m = 0;

		evbuffer_add(b, "{", 1);
		if (live != NULL) {
			js_str(b, &m, "name", live->class_name);
			js_key(b, &m, "live");
			evbuffer_add_printf(b, "true");
			js_str(b, &m, "session", live->id);
			js_num(b, &m, "score", live->score);
			adm_reasons(b, &m, live->reasons, live->nreasons);
		} else if (h->have_last) {
			js_str(b, &m, "name", h->cls);
			js_key(b, &m, "live");
			evbuffer_add_printf(b, "false");
			js_str(b, &m, "session", h->sid);
			js_num(b, &m, "score", h->score);
			adm_reasons(b, &m, h->reasons, h->nreasons);
		} else {
			js_str(b, &m, "name", NULL);
			js_key(b, &m, "live");
			evbuffer_add_printf(b, "false");
		}
		evbuffer_add(b, "}", 1);
	}
	js_key(b, &n, "last_session");
	if (h->have_last) {
		int	m = 0;

		evbuffer_add(b, "{", 1);
		js_str(b, &m, "id", h->sid);
		js_str(b, &m, "outcome", h->outcome);
		js_str(b, &m, "helo", *h->helo ? h->helo : NULL);
		js_str(b, &m, "domain", *h->domain ? h->domain : NULL);
		evbuffer_add(b, "}", 1);
	} else
		evbuffer_add_printf(b, "null");
	if (live != NULL)
		adm_reputation(b, &n, &h->peer.sa, live->fp ?
		    live->fp->key_hash : NULL, live->fp ? live->fp->os : NULL,
		    live->domain);
	else
		adm_reputation(b, &n, &h->peer.sa, h->key_hash, h->os,
		    h->domain);
	evbuffer_add(b, "}\n", 2);
	adm_send(req, 200, "OK", "application/json", b);
}

/* pm_head - "# HELP" and "# TYPE" lines */
static void
pm_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* pm_label - a label value, escaped for the text format */
static void
pm_label(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

/* pm_one - a sample without labels */
static void
pm_one(struct evbuffer *b, const char *name, const char *type,
    const char *help, double v)
{
	pm_head(b, name, type, help);
	evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

/* pm_lab - a sample with one label */
static void
pm_lab(struct evbuffer *b, const char *name, const char *label,
    const char *value, double v)
{
	evbuffer_add_printf(b, "%s{%s=\"", name, label);
	pm_label(b, value);
	evbuffer_add_printf(b, "\"} %.17g\n", v);
}

/* adm_class_name - a class index's name, or NULL */
static const char *
adm_class_name(int idx)
{
	int	i;

	if (adm.cls[idx].label[0])
		return adm.cls[idx].label;
	for (i = 0; i < ms->cf->nclasses; i++)
		if (ms_class_index(ms->cf->classes[i].name) == idx)
			return ms->cf->classes[i].name;
	return NULL;
}

/* adm_metrics - GET /metrics */
static void
adm_metrics(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct rep_counters rc;
	unsigned long q, hits, tmo, errs, cache, cum;
	size_t	i;
	int	c;

	if (b == NULL)
		return adm_error(req, 500, "Internal Server Error", "no memory");
	/* Classes in the configuration get their indices (and zero rows). */
	for (c = 0; c < ms->cf->nclasses; c++)
		(void)ms_class_index(ms->cf->classes[c].name);

	pm_one(b, "mailshaper_up", "gauge", "1 while the daemon runs.", 1);
	pm_one(b, "mailshaper_sessions_live", "gauge",
	    "Client sessions open now.", (double)ms->nsess);
	pm_head(b, "mailshaper_sessions_live_by_class", "gauge",
	    "Client sessions open now, by shaping class.");
	for (c = 0; c < CONF_MAX_CLASSES; c++)
		if (adm_class_name(c) != NULL)
			pm_lab(b, "mailshaper_sessions_live_by_class", "class",
			    adm_class_name(c), (double)ms->class_count[c]);
	pm_one(b, "mailshaper_backend_connections", "gauge",
	    "Backend connections open now.", (double)ms->nbackend);
	pm_head(b, "mailshaper_backend_connections_by_class", "gauge",
	    "Backend connections held by sessions now, by shaping class "
	    "(the class's backend_share caps it).");
	for (c = 0; c < CONF_MAX_CLASSES; c++)
		if (adm_class_name(c) != NULL)
			pm_lab(b, "mailshaper_backend_connections_by_class",
			    "class", adm_class_name(c), (double)ms->bk_class[c]);
	pm_one(b, "mailshaper_backend_waits_total", "counter",
	    "MAIL commands that waited for a backend connection.",
	    (double)ms->st.backend_waits);
	pm_one(b, "mailshaper_spool_memory_bytes", "gauge",
	    "Message content held in memory, all sessions (budget spool_memory).",
	    (double)ms->st.spool_mem);
	pm_one(b, "mailshaper_spool_files_total", "counter",
	    "Messages moved to an unlinked file in spool_dir.",
	    (double)ms->st.spool_files);
	pm_one(b, "mailshaper_connections_accepted_total", "counter",
	    "Client connections accepted.", (double)ms->st.accepted);
	pm_one(b, "mailshaper_connections_refused_total", "counter",
	    "Client connections refused with 421 by the caps.",
	    (double)ms->st.refused);
	pm_head(b, "mailshaper_connections_total", "counter",
	    "Client sessions admitted, by the class they started in.");
	for (c = 0; c < CONF_MAX_CLASSES; c++)
		if (adm_class_name(c) != NULL)
			pm_lab(b, "mailshaper_connections_total", "class",
			    adm_class_name(c), (double)ms->st.by_class[c]);
	pm_head(b, "mailshaper_sessions_total", "counter",
	    "Client sessions ended, by outcome.");
	for (c = 0; c < OC_N; c++)
		if (outcome_flags((enum outcome)c) & OC_F_SESS)
			pm_lab(b, "mailshaper_sessions_total", "outcome",
			    outcome_name((enum outcome)c),
			    (double)adm.sess_out[c]);
	pm_head(b, "mailshaper_messages_total", "counter",
	    "Messages (transactions) ended, by outcome.");
	for (c = 0; c < OC_N; c++)
		if (outcome_flags((enum outcome)c) & OC_F_MSG)
			pm_lab(b, "mailshaper_messages_total", "outcome",
			    outcome_name((enum outcome)c), (double)adm.msgs[c]);
	pm_one(b, "mailshaper_pregreet_total", "counter",
	    "Clients that talked before the banner.", (double)ms->st.pregreet);
	pm_one(b, "mailshaper_violations_total", "counter",
	    "Protocol violations.", (double)ms->st.violations);
	pm_one(b, "mailshaper_backend_errors_total", "counter",
	    "Backend failures seen by sessions.",
	    (double)ms->st.backend_errors);
	pm_head(b, "mailshaper_fingerprint_matches_total", "counter",
	    "Sessions by fingerprint match quality (null_syn: no saved SYN).");
	for (c = 0; c < ADM_NQUALITY; c++)
		pm_lab(b, "mailshaper_fingerprint_matches_total", "quality",
		    adm_quality[c], (double)adm.quality[c]);

	dnsbl_stats(&q, &hits, &tmo, &errs, &cache);
	pm_one(b, "mailshaper_dnsbl_queries_total", "counter",
	    "DNS list queries sent.", (double)q);
	pm_one(b, "mailshaper_dnsbl_hits_total", "counter",
	    "DNS list answers that listed the client.", (double)hits);
	pm_one(b, "mailshaper_dnsbl_timeouts_total", "counter",
	    "DNS list queries without an answer in time.", (double)tmo);
	pm_one(b, "mailshaper_dnsbl_errors_total", "counter",
	    "DNS list queries refused or failed.", (double)errs);
	pm_one(b, "mailshaper_dnsbl_cache_hits_total", "counter",
	    "DNS list answers served from the cache.", (double)cache);
	{
		unsigned long lk, ver, fail, to, fc;

		fcrdns_stats(&lk, &ver, &fail, &to, &fc);
		pm_one(b, "mailshaper_fcrdns_lookups_total", "counter",
		    "Reverse-name lookups started.", (double)lk);
		pm_one(b, "mailshaper_fcrdns_verified_total", "counter",
		    "Reverse names forward-confirmed.", (double)ver);
		pm_one(b, "mailshaper_fcrdns_timeouts_total", "counter",
		    "Reverse-name lookups that timed out.", (double)to);
	}
	pm_one(b, "mailshaper_eventlog_dropped_total", "counter",
	    "Event-log records dropped because the disk did not keep up.",
	    (double)evlog_dropped());
	pm_head(b, "mailshaper_dnsbl_lookup_seconds", "histogram",
	    "Time until a session's DNS list answers were all in.");
	for (i = 0, cum = 0; i < ADM_NLE; i++) {
		char	le[32];

		cum += adm.dnsbl_bucket[i];
		snprintf(le, sizeof(le), "%g", adm_dnsbl_le[i]);
		evbuffer_add_printf(b, "mailshaper_dnsbl_lookup_seconds_bucket"
		    "{le=\"%s\"} %lu\n", le, cum);
	}
	evbuffer_add_printf(b, "mailshaper_dnsbl_lookup_seconds_bucket"
	    "{le=\"+Inf\"} %lu\n", adm.dnsbl_n);
	evbuffer_add_printf(b, "mailshaper_dnsbl_lookup_seconds_sum %.17g\n",
	    adm.dnsbl_sum);
	evbuffer_add_printf(b, "mailshaper_dnsbl_lookup_seconds_count %lu\n",
	    adm.dnsbl_n);

	rep_counters(&rc);
	pm_one(b, "mailshaper_rep_store_latency_seconds", "gauge",
	    "Time the reputation store took for the last batch.",
	    rc.store_latency_ms / 1000.0);
	pm_one(b, "mailshaper_rep_queue_depth", "gauge",
	    "Reputation updates waiting for the store worker.",
	    (double)rc.queue_depth);
	pm_one(b, "mailshaper_rep_store_up", "gauge",
	    "1 when the last reputation store operation worked.",
	    (double)rc.store_up);
	pm_one(b, "mailshaper_rep_cache_entries", "gauge",
	    "Reputation keys in the in-memory cache.", (double)rc.cached);
	pm_one(b, "mailshaper_rep_updates_total", "counter",
	    "Reputation updates.", (double)rc.updates);
	pm_one(b, "mailshaper_rep_lookups_total", "counter",
	    "Reputation lookups.", (double)rc.lookups);
	pm_one(b, "mailshaper_rep_misses_total", "counter",
	    "Reputation lookups the cache could not answer.",
	    (double)rc.misses);
	pm_one(b, "mailshaper_rep_dropped_total", "counter",
	    "Reputation updates dropped: queue full.", (double)rc.dropped);
	pm_one(b, "mailshaper_rep_written_total", "counter",
	    "Reputation updates written to the store.", (double)rc.written);
	pm_one(b, "mailshaper_rep_fetches_total", "counter",
	    "Reputation keys read from the store.", (double)rc.fetches);
	pm_one(b, "mailshaper_rep_store_errors_total", "counter",
	    "Failed reputation store operations.", (double)rc.store_errors);
	pm_one(b, "mailshaper_rep_evictions_total", "counter",
	    "Reputation cache entries evicted.", (double)rc.evictions);

	pm_head(b, "mailshaper_shaping_delay_seconds_total", "counter",
	    "Seconds of reply delay applied, by class.");
	for (c = 0; c < CONF_MAX_CLASSES; c++)
		if (adm_class_name(c) != NULL)
			pm_lab(b, "mailshaper_shaping_delay_seconds_total",
			    "class", adm_class_name(c), adm.delay_s[c]);
	pm_head(b, "mailshaper_shaping_delays_total", "counter",
	    "Replies held by a class delay, by class.");
	for (c = 0; c < CONF_MAX_CLASSES; c++)
		if (adm_class_name(c) != NULL)
			pm_lab(b, "mailshaper_shaping_delays_total", "class",
			    adm_class_name(c), (double)adm.delays[c]);

	pm_one(b, "mailshaper_admin_requests_delayed_total", "counter",
	    "Admin requests held back by the rate limit.", (double)adm.delayed);
	pm_one(b, "mailshaper_admin_connections", "gauge",
	    "Admin connections open.", (double)adm.nconns);
	pm_one(b, "mailshaper_admin_connections_refused_total", "counter",
	    "Admin connections closed at once: too many open.",
	    (double)adm.conn_refused);
	pm_one(b, "mailshaper_admin_requests_timed_out_total", "counter",
	    "Admin connections closed: no complete request in time.",
	    (double)adm.conn_expired);
	pm_one(b, "mailshaper_admin_hosts", "gauge",
	    "Hosts in the admin API's table.", (double)adm.nhosts);
	pm_one(b, "mailshaper_admin_hosts_evicted_total", "counter",
	    "Hosts dropped from the admin API's table when it was full.",
	    (double)adm.evicted);
	pm_head(b, "mailshaper_admin_requests_total", "counter",
	    "Admin API replies, by status code (this one not counted).");
	for (i = 0; i < ADM_NCODES; i++) {
		char	code[8];

		snprintf(code, sizeof(code), "%d", adm_codes[i]);
		pm_lab(b, "mailshaper_admin_requests_total", "code", code,
		    (double)adm.requests[i]);
	}
	adm_send(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	    b);
}

/* adm_dashboard - GET / */
static void
adm_dashboard(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (b == NULL)
		return adm_error(req, 500, "Internal Server Error", "no memory");
	evbuffer_add_reference(b, adm_dashboard_html,
	    strlen(adm_dashboard_html), NULL, NULL);
	evhttp_add_header(h, "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	    "connect-src 'self'; img-src data:; base-uri 'none'; "
	    "form-action 'self'; frame-ancestors 'none'");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	adm_send(req, 200, "OK", "text/html; charset=utf-8", b);
}

/* adm_unauthorized - 401 */
static void
adm_unauthorized(struct evhttp_request *req)
{
	adm.unauthorized++;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "WWW-Authenticate", "Bearer realm=\"mailshaper\"");
	adm_error(req, 401, "Unauthorized", "missing or wrong bearer token");
}

/* adm_serve - one request whose turn it is: authenticate, then route */
static void
adm_serve(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	int	get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

	(void)arg;
	if (path == NULL || *path != '/')
		return adm_error(req, 400, "Bad Request", "bad request target");
	/* The page holds no data: it is the one thing served without. */
	if (strcmp(path, "/") == 0 && get)
		return adm_dashboard(req);
	if (!adm_authorized(req))
		return adm_unauthorized(req);
	if (strcmp(path, "/feedback") == 0) {
		/* feedback.c replies itself (not counted by code here). */
		return fb_http_feedback(req, NULL);
	}
	if (strcmp(path, "/") == 0 || strcmp(path, "/metrics") == 0 ||
	    strcmp(path, "/api/stats") == 0 ||
	    strncmp(path, "/api/host/", 10) == 0) {
		if (!get) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", "GET, HEAD");
			return adm_error(req, 405, "Method Not Allowed",
			    "use GET");
		}
	}
	if (strcmp(path, "/") == 0)
		return adm_dashboard(req);
	if (strcmp(path, "/metrics") == 0)
		return adm_metrics(req);
	if (strcmp(path, "/api/stats") == 0)
		return adm_stats(req);
	if (strncmp(path, "/api/host/", 10) == 0)
		return adm_host_json(req, path + 10);
	adm_error(req, 404, "Not Found", "no such endpoint");
}

/* adm_conn_of - the connection record a request came in on, or NULL */
static struct adm_conn *
adm_conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct adm_conn *c;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	TAILQ_FOREACH(c, &adm.conns, entry)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* adm_conn_shut - end a connection: evhttp reads EOF and frees it */
static void
adm_conn_shut(struct adm_conn *c, const char *reply)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd < 0)
		return;
	if (reply != NULL)
		(void)send(fd, reply, strlen(reply), MSG_DONTWAIT |
		    MSG_NOSIGNAL);
	(void)shutdown(fd, SHUT_RDWR);
}

/* adm_conn_drop - unlink and free a record (its connection is gone) */
static void
adm_conn_drop(struct adm_conn *c)
{
	TAILQ_REMOVE(&adm.conns, c, entry);
	if (!c->refused)
		adm.nconns--;
	event_free(c->timer);
	free(c);
}

/* adm_conn_closed - evhttp frees the connection: the record goes too */
static void
adm_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct adm_conn *c = arg;

	(void)evcon;
	adm_conn_drop(c);
}

/* adm_conn_arm - (re)start a connection's request deadline */
static void
adm_conn_arm(struct adm_conn *c)
{
	struct timeval tv = { ADM_REQ_DEADLINE, 0 };

	c->busy = 0;
	evtimer_add(c->timer, &tv);
}

/*
 * adm_conn_start - the loop turn after the accept: evhttp has made the
 * connection around our bufferevent; learn it from the bufferevent's
 * callback argument and ask to be told when it is freed.  If evhttp
 * already gave up on it (its callbacks are gone), only the record goes.
 */
static int
adm_conn_start(struct adm_conn *c)
{
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	void   *evcon = NULL;

	bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &evcon);
	bufferevent_decref(c->bev);	/* ours, from adm_bev() */
	if (ecb == NULL || evcon == NULL) {
		adm_conn_drop(c);
		return -1;
	}
	c->evcon = evcon;
	evhttp_connection_set_closecb(c->evcon, adm_conn_closed, c);
	return 0;
}

/*
 * adm_conn_timer - a new connection's first turn (refused or not), or a
 * connection's request deadline
 */
static void
adm_conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct adm_conn *c = arg;
	time_t	now = time(NULL);

	(void)fd;
	(void)what;
	if (c->evcon == NULL) {
		if (adm_conn_start(c) < 0)
			return;
		if (!c->refused) {
			adm_conn_arm(c);
			return;
		}
		adm.refused_unlogged++;
		if (now != adm.refused_logged) {
			log_warnx("admin: %lu connections open, the limit; "
			    "closed %lu new one%s", adm.nconns,
			    adm.refused_unlogged,
			    adm.refused_unlogged == 1 ? "" : "s");
			adm.refused_logged = now;
			adm.refused_unlogged = 0;
		}
		adm_conn_shut(c, "HTTP/1.1 503 Service Unavailable\r\n"
		    "Retry-After: 1\r\nConnection: close\r\n"
		    "Content-Length: 0\r\n\r\n");
		return;
	}
	if (c->busy)
		return;
	if (c->refused) {
		adm_conn_shut(c, NULL);	/* answered 503 already */
		return;
	}
	adm.conn_expired++;
	log_info("admin: closing a connection: no complete request within "
	    "%d s", ADM_REQ_DEADLINE);
	adm_conn_shut(c, "HTTP/1.1 408 Request Timeout\r\n"
	    "Connection: close\r\nContent-Length: 0\r\n\r\n");
}

/* adm_req_done - a reply was written: the next request's clock starts */
static void
adm_req_done(struct evhttp_request *req, void *arg)
{
	struct adm_conn *c = arg;

	(void)req;
	adm_conn_arm(c);
}

/*
 * adm_req_arrived - a whole request is in: stop its connection's clock.
 * A request can arrive in the loop turn of its accept, before the
 * connection's first turn: that turn is taken here.  0, or -1 when the
 * connection is beyond the cap (the caller answers 503).
 */
static int
adm_req_arrived(struct evhttp_request *req)
{
	struct adm_conn *c = adm_conn_of(req);

	if (c == NULL)
		return 0;
	if (c->evcon == NULL && adm_conn_start(c) < 0)
		return 0;
	if (c->refused)
		return -1;
	c->busy = 1;
	evtimer_del(c->timer);
	evhttp_request_set_on_complete_cb(req, adm_req_done, c);
	return 0;
}

/*
 * adm_bev - every admin connection's bufferevent, at the lowest priority
 * (the loop runs admin callbacks only when no SMTP callback is ready),
 * and its record; evhttp sets the descriptor and callbacks afterwards.
 * The reference taken here keeps the bufferevent readable until
 * adm_conn_start() has looked at it.
 */
static struct bufferevent *
adm_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev;
	struct adm_conn *c;
	struct timeval now = { 0, 0 };

	(void)arg;
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE))
	    == NULL)
		return NULL;	/* evhttp makes its own; it is not counted */
	if (bufferevent_priority_set(bev, ADM_PRI) < 0)
		log_debug("admin: cannot lower a connection's priority");
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->timer = evtimer_new(base, adm_conn_timer, c)) == NULL) {
		free(c);
		log_warnx("admin: no memory for a connection record");
		return bev;
	}
	(void)event_priority_set(c->timer, ADM_PRI);
	c->bev = bev;
	bufferevent_incref(bev);
	TAILQ_INSERT_TAIL(&adm.conns, c, entry);
	if (adm.nconns >= ADM_CONNS_MAX) {
		c->refused = 1;
		adm.conn_refused++;
	} else
		adm.nconns++;
	evtimer_add(c->timer, &now);
	return bev;
}

/* adm_take - a token from the bucket, refilled at ADM_RATE per second */
static int
adm_take(void)
{
	struct timeval now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &adm.refilled, &d);
	adm.refilled = now;
	adm.tokens += (d.tv_sec + d.tv_usec / 1e6) * ADM_RATE;
	if (adm.tokens > ADM_BURST || d.tv_sec < 0)
		adm.tokens = ADM_BURST;
	if (adm.tokens < 1)
		return 0;
	adm.tokens -= 1;
	return 1;
}

/* adm_wait_arm - run adm_drain when the next token is due */
static void
adm_wait_arm(void)
{
	struct timeval tv = { 0, 1000000 / ADM_RATE };

	evtimer_add(adm.wait_timer, &tv);
}

/* adm_drain - serve held requests, oldest first, as tokens come */
static void
adm_drain(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	while (adm.nwait > 0 && adm_take()) {
		struct evhttp_request *req = adm.waiting[adm.whead];

		adm.waiting[adm.whead] = NULL;
		adm.whead = (adm.whead + 1) % ADM_QUEUE_MAX;
		adm.nwait--;
		adm_serve(req, NULL);
	}
	if (adm.nwait > 0)
		adm_wait_arm();
}

/*
 * adm_request - every request: at most ADM_RATE per second reach
 * adm_serve(); the rest wait in a FIFO (a client on a keep-alive
 * connection waits for its reply, so load slows itself down), and 429
 * when that is full.  The loop's admin work stays bounded whatever the
 * load.
 */
static void
adm_request(struct evhttp_request *req, void *arg)
{
	if (adm_req_arrived(req) < 0) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);

		evhttp_add_header(h, "Connection", "close");
		evhttp_add_header(h, "Retry-After", "1");
		return adm_error(req, 503, "Service Unavailable",
		    "too many admin connections");
	}
	if (adm.nwait == 0 && adm_take())
		return adm_serve(req, arg);
	if (adm.nwait == ADM_QUEUE_MAX) {
		adm.overflow++;
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", "1");
		return adm_error(req, 429, "Too Many Requests",
		    "too many admin requests");
	}
	adm.delayed++;
	adm.waiting[(adm.whead + adm.nwait) % ADM_QUEUE_MAX] = req;
	if (adm.nwait++ == 0)
		adm_wait_arm();
}

/*
 * adm_unix_listen - a listening unix socket at path, mode 0660; -1 + err
 *
 * The mode is given to the socket before bind() creates the file (fchmod
 * on the socket, and a umask that keeps the group bits for the moment of
 * the bind), never by a chmod() of the path afterwards: between bind() and
 * chmod() the path could be swapped for a symbolic link, and chmod() would
 * change the mode of whatever file it points to.
 */
static int
adm_unix_listen(const struct sockaddr_un *sun, socklen_t len, char *err,
    size_t errlen)
{
	struct stat st;
	mode_t	old;
	int	fd, rc, saved;

	if (lstat(sun->sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "admin_listen unix:%s: exists and "
			    "is not a socket", sun->sun_path);
			return -1;
		}
		(void)unlink(sun->sun_path);	/* stale, from a last run */
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto bad;
	if (fchmod(fd, 0660) < 0)
		goto bad;
	old = umask(0117);
	rc = bind(fd, (const struct sockaddr *)sun, len);
	saved = errno;
	umask(old);
	errno = saved;
	if (rc < 0 || listen(fd, 128) < 0 ||
	    evutil_make_socket_nonblocking(fd) < 0)
		goto bad;
	return fd;
bad:
	snprintf(err, errlen, "admin_listen unix:%s: %s", sun->sun_path,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* adm_open - listen on admin_listen (nothing when it is empty) */
int
adm_open(struct event_base *base, const struct conf *cf, char *err,
    size_t errlen)
{
	struct endpoint ep;
	char	host[64];
	int	port;

	gettimeofday(&adm.started, NULL);
	TAILQ_INIT(&adm.conns);
	adm.base = base;
	if (*cf->admin_listen == 0)
		return 0;
	/*
	 * Priorities: events made before this keep priority 0, later ones
	 * (sessions, backends, timers) get the default 1, admin connections
	 * ADM_PRI = 2, so admin load waits for SMTP work, never the reverse.
	 */
	if (event_base_get_npriorities(base) < ADM_NPRI &&
	    event_base_priority_init(base, ADM_NPRI) < 0)
		log_warnx("admin: cannot set event priorities; admin requests "
		    "compete with SMTP sessions");
	/* conf.c checked the address; parse it again for the socket. */
	if (addr_parse_endpoint(cf->admin_listen, 0, &ep, err, errlen) < 0)
		return -1;
	if ((adm.http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "admin_listen: cannot create the server");
		return -1;
	}
	if (ep.ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *sun = (struct sockaddr_un *)&ep.ss;
		int	fd = adm_unix_listen(sun, ep.len, err, errlen);

		if (fd < 0 || evhttp_accept_socket_with_handle(adm.http, fd)
		    == NULL) {
			if (fd >= 0) {
				close(fd);
				snprintf(err, errlen, "admin_listen %s: cannot "
				    "listen", cf->admin_listen);
			}
			evhttp_free(adm.http);
			adm.http = NULL;
			return -1;
		}
		adm.unix_sock = 1;
		snprintf(adm.path, sizeof(adm.path), "%s", sun->sun_path);
	} else if (addr_ntop((struct sockaddr *)&ep.ss, host, sizeof(host),
	    &port) < 0 || evhttp_bind_socket_with_handle(adm.http, host,
	    (uint16_t)port) == NULL) {
		snprintf(err, errlen, "admin_listen %s: cannot listen: %s",
		    cf->admin_listen, strerror(errno));
		evhttp_free(adm.http);
		adm.http = NULL;
		return -1;
	}
	evhttp_set_max_headers_size(adm.http, ADM_MAX_HEADERS);
	evhttp_set_max_body_size(adm.http, ADM_MAX_BODY);
	/* Idle timeout, for replies a client does not read; the request
	 * deadline (shorter) is ours, with its 408. */
	evhttp_set_timeout(adm.http, ADM_REQ_DEADLINE + 5);
	/* Every method reaches adm_request, which answers 405 itself. */
	evhttp_set_allowed_methods(adm.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(adm.http, adm_request, NULL);
	adm.tokens = ADM_BURST;
	adm.refilled = adm.started;
	if ((adm.wait_timer = evtimer_new(base, adm_drain, NULL)) == NULL ||
	    event_priority_set(adm.wait_timer, ADM_PRI) < 0)
		log_warnx("admin: no timer for the rate limit");
	evhttp_set_bevcb(adm.http, adm_bev, NULL);
	log_info("admin API on %s", cf->admin_listen);
	return 0;
}

/* adm_close - stop listening; free the tables */
void
adm_close(void)
{
	struct adm_host *h, *next;
	struct adm_conn *c;

	/*
	 * evhttp_free() frees the connections, each calling
	 * adm_conn_closed(); records still waiting for their first turn go
	 * here, with the reference they hold.
	 */
	if (adm.http != NULL) {
		struct adm_conn *next_c;

		for (c = TAILQ_FIRST(&adm.conns); c != NULL; c = next_c) {
			next_c = TAILQ_NEXT(c, entry);
			if (c->evcon == NULL) {
				bufferevent_decref(c->bev);
				adm_conn_drop(c);
			}
		}
	}
	if (adm.wait_timer != NULL) {
		event_free(adm.wait_timer);
		adm.wait_timer = NULL;
	}
	/* evhttp_free() frees the held requests with their connections. */
	if (adm.http != NULL) {
		evhttp_free(adm.http);
		adm.http = NULL;
	}
	while ((c = TAILQ_FIRST(&adm.conns)) != NULL)
		adm_conn_drop(c);	/* none, unless evhttp skipped one */
	if (adm.unix_sock && adm.path[0])
		(void)unlink(adm.path);
	for (h = adm.lru_head; h != NULL; h = next) {
		next = h->next;
		free(h);
	}
	memset(&adm, 0, sizeof(adm));
}
