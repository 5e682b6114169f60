/*
 * fcrdns.h - forward-confirmed reverse DNS over evdns, with a cache
 *
 * fcrdns_lookup() asks the PTR name of a client address, then the A (IPv4
 * client) or AAAA (IPv6) records of that name; the name is verified when
 * one of them is the client address.  The callback runs exactly once,
 * always from the event loop (never inside fcrdns_lookup()), with the
 * verified name and its organisational domain (psl.h), or NULLs.  See
 * doc/internals/fcrdns.md.
 */
#ifndef MS_FCRDNS_H
#define MS_FCRDNS_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evdns_base;
struct fcrdns_req;

#define FCRDNS_MAX_PTR		5	/* PTR names checked per client */
#define FCRDNS_CACHE_SIZE	4096	/* cached clients (4-way sets) */
#define FCRDNS_POS_TTL_MAX	3600	/* s, cap on a verified answer's TTL */
#define FCRDNS_POS_TTL_MIN	60	/* s, floor on a verified answer's TTL */
#define FCRDNS_NEG_TTL		300	/* s, a name that was not verified */

/* name: the verified PTR name (lower case, no trailing dot) or NULL;
 * org: its organisational domain or NULL.  Both valid during the call. */
typedef void fcrdns_cb(void *arg, const char *name, const char *org);

void	fcrdns_init(struct event_base *);
struct fcrdns_req *fcrdns_lookup(struct evdns_base *,
	    const struct sockaddr *client, long timeout_ms, fcrdns_cb *cb,
	    void *arg);
void	fcrdns_cancel(struct fcrdns_req *);
int	fcrdns_valid_name(const char *name, char *buf, size_t len);
void	fcrdns_stats(unsigned long *lookups, unsigned long *verified,
	    unsigned long *failed, unsigned long *timeouts,
	    unsigned long *cache_hits);
void	fcrdns_shutdown(void);

#endif
