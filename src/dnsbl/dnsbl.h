/*
 * dnsbl.h - weighted DNS block and allow lists over evdns, with a cache
 *
 * One module instance per process, driven by the daemon's event loop.
 * dnsbl_sites uses postscreen's syntax: zone[=filter][*weight], separated
 * by spaces or commas; a negative weight marks an allow list.  See
 * doc/internals/dnsbl.md for the semantics of answers, the cache and the
 * RFC 5782 broken-list probe.
 */
#ifndef MS_DNSBL_H
#define MS_DNSBL_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evdns_base;
struct conf;
struct dnsbl_req;

#define DNSBL_MAX_HITS		8	/* hits[] kept per result */
#define DNSBL_MAX_SITES		32	/* zone=filter*weight entries */
#define DNSBL_PROBE_INTERVAL	600	/* s between RFC 5782 probes */

struct dnsbl_hit {
	char	zone[64];
	char	answer[16];		/* the A record that matched, dotted */
	double	weight;
};

struct dnsbl_result {
	double	score;		/* sum of weights of lists that listed the client (allow lists negative) */
	int	nhits;		/* <= DNSBL_MAX_HITS; score counts every hit */
	struct dnsbl_hit hits[DNSBL_MAX_HITS];
	int	timeouts;	/* lists with no answer in time (dead server counts here) */
	int	errors;		/* refused queries: 127.255.255.0/24 answers, SERVFAIL, malformed */
	long	latency_ms;	/* until the last answer or the deadline */
	int	complete;	/* every list answered */
};

typedef void dnsbl_cb(void *arg, const struct dnsbl_result *);

int	dnsbl_init(struct event_base *, const struct conf *, char *err,
	    size_t errlen);
int	dnsbl_reconfigure(const struct conf *, char *err, size_t errlen);
int	dnsbl_enabled(void);
struct dnsbl_req *dnsbl_lookup(const struct sockaddr *client, dnsbl_cb *cb,
	    void *arg);
void	dnsbl_cancel(struct dnsbl_req *);
int	dnsbl_result_json(const struct dnsbl_result *, char *buf, size_t len);
void	dnsbl_stats(unsigned long *queries, unsigned long *hits,
	    unsigned long *timeouts, unsigned long *errors,
	    unsigned long *cache_hits);
void	dnsbl_shutdown(void);

/* Helpers, also used by the tests and by reverse lookups. */
int	dnsbl_query_name(const struct sockaddr *, const char *zone,
	    char *buf, size_t len);
void	dnsbl_probe_now(void);
struct evdns_base *dnsbl_evdns(void);

#endif
