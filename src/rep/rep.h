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
#include "rep/repkind.h"

struct event_base;
struct conf;

/* Beta(a, b) prior on the spam probability: p = (bad + a) / (n + a + b). */
#define REP_PRIOR_BAD	1.0
#define REP_PRIOR_GOOD	1.0

/*
 * Patience: per key, two histograms of seconds, decayed like the counts
 * (same half-life, their own timestamp).  GAVEUP: sessions that gave up
 * while we delayed them (gave_up_after_s).  BAD: sessions whose mail was
 * bad, at the time they gave up or, when they did not, their duration (a
 * lower bound of their patience).  Bucket b holds [rep_pat_edges[b],
 * rep_pat_edges[b + 1]) seconds; the last one is >= 600 s.
 */
enum rep_patience {
	REP_PAT_GAVEUP,		/* "gaveup": abandoned sessions */
	REP_PAT_BAD,		/* "bad": sessions whose mail was bad */
	REP_PAT_NKINDS
};

#define REP_PAT_NBUCKETS 16
#define REP_PAT_NVAL	(REP_PAT_NKINDS * REP_PAT_NBUCKETS)

extern const double rep_pat_edges[REP_PAT_NBUCKETS];	/* seconds */

struct rep_est {
	double	counts[OC_NLEARN];	/* decayed to now */
	double	p_spam;			/* posterior mean with a Beta prior */
	double	evidence;		/* bad + good, decayed (0 = prior only) */
	double	log_odds;		/* log(p / (1 - p)) */
	/* Filled by rep_lookup_patience() only; rep_lookup() sets
	 * patience_n[] to -1 (not read) and leaves patience[] alone. */
	double	patience_n[REP_PAT_NKINDS];	/* sessions, decayed */
	double	patience[REP_PAT_NKINDS][REP_PAT_NBUCKETS]; /* per bucket */
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

/*
 * rep_lookup_patience: rep_lookup() plus the patience histograms, decayed
 * to now (a few more cache lines than rep_lookup(), so the score does not
 * pay for them).  Same return value.
 * rep_update_patience: one session of that kind that lasted seconds
 * (< 0 or NaN: ignored), weight 1; cache at once, store behind, like
 * rep_update().
 * rep_patience_quantile: the q-quantile (0..1) in seconds of the kind's
 * histogram, interpolated linearly inside its bucket (600 for the last
 * one); *n (may be NULL) = the decayed number of sessions.  -1 when the
 * histogram is empty or was not read.
 * rep_patience_bucket: the bucket of seconds.  rep_patience_name: "gaveup",
 * "bad", "?" when out of range.
 */
int	rep_lookup_patience(const struct rep_key *, struct rep_est *);
void	rep_update_patience(const struct rep_key *, enum rep_patience,
	    double seconds);
double	rep_patience_quantile(const struct rep_est *, enum rep_patience,
	    double q, double *n);
int	rep_patience_bucket(double seconds);
const char *rep_patience_name(enum rep_patience);

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
/* Wall-clock ms since the epoch; tests freeze it with rep_set_clock(ms),
 * rep_set_clock(0) returns to real time. */
int64_t	rep_now(void);
void	rep_set_clock(int64_t ms);

#endif
