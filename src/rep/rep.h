/*
 * rep.h - reputation: decayed outcome counts per key, a spam probability
 *         with a Beta prior, an in-memory cache and a write-behind store
 *
 * One reputation state per process, owned by the event-loop thread:
 * rep_open() once at start-up, rep_keys_for()/rep_lookup()/rep_update()
 * from the loop (never block: the cache answers, a worker thread talks to
 * the store), rep_close() at exit.  It is an error to call rep_lookup(),
 * rep_update() or rep_sync() from more than one thread, or before rep_open().
 * See doc/internals/reputation.md for the maths and the store formats.
 */
#ifndef MS_REP_H
#define MS_REP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log/evrec.h"

struct event_base;
struct conf;


enum rep_keykind {
	REPK_IP,		/* "192.0.2.7", "2001:db8::7" */
	REPK_PREFIX,		/* "192.0.2.0/24", "2001:db8::/64" */
	REPK_RAWSIG,		/* raw-signature key hash */
	REPK_OS,		/* OS label */
	REPK_PREFIX_RAWSIG,	/* "192.0.2.0/24|<hash>" */
	REPK_DOMAIN,		/* verified organisational domain */
	REPK_NKINDS
};

#define REP_KEY_MAX	200	/* bytes of rep_key.text, NUL included */

struct rep_key {
	enum rep_keykind kind;
	char	text[REP_KEY_MAX];	/* NUL-terminated, never empty */
};

/* What a session's keys are derived from; NULL or "" = not known. */
struct rep_keyin {
	const struct sockaddr *client;	/* AF_INET or AF_INET6, else none */
	const char *rawsig_hash;	/* raw-signature key hash */
	const char *os;			/* OS label */
	const char *domain;		/* verified organisational domain */
};

/*
 * One row per kind, in enum order (repkind.c): the name used in
 * rep_weights, the stores and the logs; the derivation (1 = a key written
 * to text, 0 = none; prefix lengths in bits); the default weight of the
 * kind's log-odds in rep_weights.  doc/internals/adding-a-key.md says how
 * to add a row.
 */
struct rep_kind {
	enum rep_keykind kind;		/* == its index in rep_kinds[] */
	const char *name;		/* "ip", "prefix", ... */
	int	(*derive)(const struct rep_keyin *, int prefix_v4,
		    int prefix_v6, char text[REP_KEY_MAX]);
	double	weight;			/* default weight in rep_weights */
};

extern const struct rep_kind rep_kinds[REPK_NKINDS];

/*
 * rep_kind_parse: the kind called name, or -1.
 * rep_keys_derive: the keys of a session in enum order, with these prefix
 * lengths (bits, as rep_prefix_v4 / rep_prefix_v6 allow); returns how
 * many.  Needs no rep_open(): offline tools derive keys with it.
 */
int	rep_kind_parse(const char *name);
int	rep_keys_derive(const struct rep_keyin *, int prefix_v4, int prefix_v6,
	    struct rep_key keys[REPK_NKINDS]);

/* Beta(a, b) prior on the spam probability: p = (bad + a) / (n + a + b). */
#define REP_PRIOR_BAD	1.0
#define REP_PRIOR_GOOD	1.0

struct rep_est {
	double	counts[OC_NLEARN];	/* decayed to now */
	double	p_spam;			/* posterior mean with a Beta prior */
	double	evidence;		/* bad + good, decayed (0 = prior only) */
	double	log_odds;		/* log(p / (1 - p)) */
};

#define REP_QUEUE_MAX	65536	/* write-behind queue entries */
#define REP_BATCH_MAX	4096	/* queue entries per store transaction */

/*
 * rep_open: rep_store "" = memory only, "sqlite:/path" (WAL, created if
 * missing), "redis://host[:port]" or "redis+unix:/path"; half-life, prefix
 * lengths, cache size and Redis TTL from the conf.  -1 + err only for a bad
 * rep_store value: a store that cannot be reached is logged, counted and
 * retried while the cache serves.  The event_base is not used yet (fetch
 * answers are merged by the next rep_lookup()/rep_update()).
 * rep_close: write what is queued (retrying a failing store for 3 s),
 * join the worker, free everything.
 * rep_keys_for: rep_keys_derive() with the configured prefix lengths
 * (/24 and /64 before rep_open()); NULL or empty inputs give no key.
 * rep_lookup: from the cache only, O(1), never blocks; 0 = a miss (est is
 * the prior, evidence 0) and a background fetch is scheduled, 1 = counts.
 * rep_update: weight > 0; updates the cache at once and queues the write
 * (dropped and counted when the queue is full); never blocks or fails.
 */
int	rep_open(struct event_base *, const struct conf *, char *err,
	    size_t errlen);
void	rep_close(void);
int	rep_keys_for(const struct sockaddr *client, const char *rawsig_hash,
	    const char *os, const char *domain,
	    struct rep_key keys[REPK_NKINDS]);
int	rep_lookup(const struct rep_key *, struct rep_est *);
void	rep_update(const struct rep_key *, enum outcome, double weight);

/* More counters, for the admin API and the tests. */
struct rep_counters {
	unsigned long updates;		/* rep_update() calls */
	unsigned long lookups;		/* rep_lookup() calls */
	unsigned long misses;		/* lookups that returned the prior */
	unsigned long queue_depth;	/* entries waiting for the worker */
	unsigned long dropped;		/* queue entries dropped: queue full */
	unsigned long lost;		/* entries abandoned by rep_close() */
	unsigned long written;		/* entries durable in the store */
	unsigned long fetches;		/* keys read from the store */
	unsigned long store_errors;	/* failed store operations */
	unsigned long evictions;	/* cache entries evicted */
	unsigned long cached;		/* cache entries in use */
	double	store_latency_ms;	/* last batch's store time */
	int	store_up;		/* 1 = last store operation worked */
};
void	rep_counters(struct rep_counters *);

/* Wait until everything queued is in the store (0) or timeout_ms (-1);
 * blocks: for shutdown, tools and tests, not for the event loop. */
int	rep_sync(long timeout_ms);
/* The estimate of any decayed counts (used by evaluate and reports too). */
void	rep_estimate(const double counts[OC_NLEARN], struct rep_est *);
const char *rep_keykind_name(enum rep_keykind);	/* "ip", "prefix", ... */
/* Wall-clock ms since the epoch; tests freeze it with rep_set_clock(ms),
 * rep_set_clock(0) returns to real time. */
int64_t	rep_now(void);
void	rep_set_clock(int64_t ms);

#endif
