/*
 * rep_store.h - the interface between the reputation worker and a store
 *
 * A store keeps, per key, one timestamp t (ms since the epoch) and one
 * decayed count per outcome, valid at t.  Only the worker thread of rep.c
 * calls these functions; they may block (that is what the worker is for).
 * Backends: rep_sqlite.c (sqlite:/path) and rep_redis.c (redis://host:port,
 * redis+unix:/path).  Every function returns -1 and fills err on failure;
 * a failed write changed nothing (SQLite) or may be retried (Redis: see
 * doc/internals/reputation.md, "Redis").
 */
#ifndef MS_REP_STORE_H
#define MS_REP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "log/evrec.h"
#include "rep/repkind.h"

/* == REP_PAT_NVAL of rep.h (rep.c checks), without including it */
#define REP_STORE_NPAT	32

/*
 * One key's counts: deltas to add (write) or the stored state (fetch).
 * The patience histograms (rep.h) have their own time pt, so a record
 * without patience (pt = 0) writes and decays only the counts; a record
 * with only patience has t = 0 and no count.
 */
struct rep_rec {
	struct rep_key key;
	double	c[OC_NLEARN];	/* counts valid at t */
	int64_t	t;			/* ms since the epoch (0 = not found) */
	int64_t	pt;			/* ms of pat[] (0 = none) */
	double	pat[REP_STORE_NPAT];	/* kind * REP_PAT_NBUCKETS + bucket */
};

struct rep_store_ops {
	const char *scheme;		/* "sqlite", "redis" */
	int	shared;			/* other daemons write it too */
	/* Parse the spec only (no I/O); NULL + err on a bad spec. */
	void   *(*create)(const char *spec, double half_life_ms,
		    int64_t key_ttl_ms, char *err, size_t errlen);
	/* (Re)connect; called before each operation while disconnected. */
	int	(*connect)(void *, char *err, size_t errlen);
	/* Add n delta records in one transaction / pipeline. */
	int	(*write)(void *, const struct rep_rec *, size_t n, char *err,
		    size_t errlen);
	/* Fill c[] and t of n records by key (t = 0 when absent). */
	int	(*fetch)(void *, struct rep_rec *, size_t n, char *err,
		    size_t errlen);
	/* Drop the connection after an error (the next call reconnects). */
	void	(*disconnect)(void *);
	void	(*destroy)(void *);
};

extern const struct rep_store_ops rep_sqlite_ops;
extern const struct rep_store_ops rep_redis_ops;

double	rep_decay(double half_life_ms, int64_t dt_ms);
void	rep_merge(double *c, int64_t *t, const double *d, int64_t td,
	    double half_life_ms);
/* rep_merge_n: rep_merge() of n values (rep_merge is n = OC_NLEARN).
 * rep_pat_field: the store's name of patience value i, "pat_bad_3". */
void	rep_merge_n(double *c, int64_t *t, const double *d, int64_t td,
	    double half_life_ms, int n);
const char *rep_pat_field(int i);

#endif
