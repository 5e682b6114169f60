/*
 * rep.c - reputation cache, estimate, write-behind queue and store worker
 *
 * Exports the rep_* functions of rep.h but the kind table and the key
 * derivations, which are in repkind.c.  Three parts:
 *   - the cache: at most rep_cache_size entries (CLOCK eviction), owned by
 *     the loop thread; each entry holds one decayed count per outcome, valid
 *     at its timestamp t.  rep_lookup() and rep_update() touch only the cache
 *     and two lock-free queues, so they never wait for I/O or for a lock.
 *   - the write-behind queue: a bounded lock-free ring (REP_QUEUE_MAX) of
 *     updates and fetch requests, loop thread -> worker.  When it is full,
 *     an update is dropped and counted (the cache has it anyway); the loop
 *     never waits, not even for a lock.
 *   - the worker thread: pops up to REP_BATCH_MAX entries, coalesces the
 *     updates per key, and hands them to the store (rep_store.h) as one
 *     transaction.  Fetch answers go back to the loop through a lock-free
 *     stack that rep_lookup()/rep_update()/rep_sync() merge, at most
 *     REP_MERGE_MAX per call.  A failed write is retried with back-off, so updates queued
 *     while the store is down arrive when it returns.
 * Patience (rep_update_patience, rep_lookup_patience): two histograms of
 * seconds per key with their own timestamp, kept as floats in rep.pat[],
 * parallel to the entries (same index) so the entries rep_lookup() walks
 * stay as small as before; queued as ITEM_PATIENCE, coalesced like counts.
 * Memory: the state is static; rep_close() frees everything.  It is an error
 * to call rep_open() twice without rep_close() in between.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "conf/conf.h"
#include "rep/rep.h"
#include "rep/rep_store.h"
#include "util/log.h"

#define REP_NIL		UINT32_MAX
#define REP_MIN_CACHE	16		/* entries, whatever rep_cache_size says */
#define REP_MERGE_MAX	256		/* fetch answers merged per call */
#define REP_REFRESH_MS	60000		/* shared store: re-read a key after */
#define REP_RETRY_MS	5000		/* a failed fetch is retried after */
#define REP_BACKOFF_MIN	50		/* ms before the first retry */
#define REP_BACKOFF_MAX	2000		/* ms, at most, between retries */
#define REP_CLOSE_GRACE	3000		/* ms rep_close() retries a dead store */
#define REP_LOG_EVERY	10000		/* ms between two store error lines */
#define REP_CLOCK_STEPS	256		/* entries the CLOCK hand may skip */
#define REP_WORKER_NICE	10		/* the worker thread's nice value */
#define REP_LINGER_MS	50	/* worker waits this long to fill a batch */

_Static_assert(REP_PAT_NVAL == REP_STORE_NPAT, "rep_store.h's REP_STORE_NPAT");
_Static_assert(REP_PAT_NVAL < 256, "a value index fits rep_item.outcome");

/* Lower edges of the patience buckets, seconds: roughly x1.5 apart. */
const double rep_pat_edges[REP_PAT_NBUCKETS] = {
	0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 150, 300, 600
};

struct rep_entry {
	struct rep_key key;
	uint32_t hash;
	uint32_t next;			/* hash chain: index + 1 (0 = end) */
	double	c[OC_NLEARN];	/* counts valid at t */
	int64_t	t;			/* ms (0 = never updated) */
	double	since[OC_NLEARN];	/* updates since the fetch request */
	int64_t	since_t;		/* ms (0 = none) */
	int64_t	refresh_at;		/* ms: fetch again after (0 = never) */
	uint32_t fetch_seq;		/* outstanding fetch (0 = none) */
	uint8_t	used;			/* CLOCK reference bit */
	uint8_t	live;			/* slot holds a key */
	uint8_t	warm;			/* store answered, or memory only */
	uint8_t	has_pat;		/* rep.pat[this index] was written */
};

/* An entry's patience, in rep.pat[] at the entry's index. */
struct rep_pat {
	int64_t	pt;			/* ms of pat[] (0 = none) */
	int64_t	since_t;		/* ms of since[] (0 = none) */
	float	pat[REP_PAT_NVAL];	/* decayed sessions, valid at pt */
	float	since[REP_PAT_NVAL];	/* since the fetch request */
};

enum { ITEM_UPDATE, ITEM_FETCH, ITEM_PATIENCE };

struct rep_item {
	struct rep_key key;
	int64_t	t;			/* ms of the update */
	double	weight;
	uint32_t seq;			/* ITEM_FETCH: entry's fetch_seq */
	uint8_t	type;			/* ITEM_* */
	uint8_t	outcome;		/* ITEM_UPDATE: enum outcome;
					   ITEM_PATIENCE: index in pat[] */
};

struct rep_reply {
	struct rep_rec rec;
	uint32_t seq;
	int	ok;			/* 0 = the store could not answer */
};

struct rep_replies {
	struct rep_replies *next;
	size_t	n, done;
	struct rep_reply r[];
};

static struct {
	int	open;
	double	half_life;		/* ms */
	int	v4_bits, v6_bits;
	/* cache: loop thread only */
	struct rep_entry *ent;
	struct rep_pat *pat;		/* cap, parallel to ent */
	uint32_t nent, cap;		/* used, maximum */
	uint32_t *bucket;		/* index + 1 (0 = empty) */
	uint32_t nbucket;		/* power of two */
	uint32_t hand;			/* CLOCK hand */
	uint32_t seq;			/* last fetch_seq handed out */
	/* store and worker */
	const struct rep_store_ops *ops;
	void   *store;
	char	spec[256];
	pthread_t worker;
	int	have_worker;
	struct rep_item *q;		/* ring of REP_QUEUE_MAX */
	atomic_size_t qtail;		/* entries ever pushed (loop thread) */
	atomic_size_t qhead;		/* entries ever written (worker) */
	atomic_int sleeping;		/* the worker waits on qev */
	atomic_int closing;		/* rep_close() has begun */
	int	qev;			/* eventfd: wakes the worker */
	_Atomic(struct rep_replies *) rstack;	/* worker -> loop, LIFO */
	struct rep_replies *rlist;	/* loop's own, in order */
	_Atomic(struct rep_replies *) rspent;	/* loop -> worker: to free */
	/* counters */
	atomic_ulong updates, lookups, misses, dropped, lost, written;
	atomic_ulong fetches, store_errors, evictions;
	_Atomic double latency_ms;
	atomic_int store_up;
} rep;

static atomic_llong rep_clock;		/* ms (0 = real time) */

/* rep_now - wall-clock ms since the epoch, or the test clock */
int64_t
rep_now(void)
{
	struct timespec ts;
	int64_t	fixed = atomic_load_explicit(&rep_clock, memory_order_relaxed);

	if (fixed)
		return fixed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* rep_set_clock - tests: freeze the clock at ms (0 = real time again) */
void
rep_set_clock(int64_t ms)
{
	atomic_store(&rep_clock, ms);
}

/* mono_ms - monotonic ms, for back-off and log rate limits */
static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* rep_decay - the factor 2^(-dt/half_life); 1 for dt <= 0 */
double
rep_decay(double half_life_ms, int64_t dt_ms)
{
	if (dt_ms <= 0 || half_life_ms <= 0)
		return 1.0;
	return exp2(-(double)dt_ms / half_life_ms);
}

/* rep_merge_n - add n values d (valid at td) to c (valid at *t); *t = max */
void
rep_merge_n(double *c, int64_t *t, const double *d, int64_t td,
    double half_life_ms, int n)
{
	double	f;
	int	i;

	if (*t == 0 || td >= *t) {
		f = *t == 0 ? 0.0 : rep_decay(half_life_ms, td - *t);
		for (i = 0; i < n; i++)
			c[i] = c[i] * f + d[i];
		*t = td;
	} else {
		f = rep_decay(half_life_ms, *t - td);
		for (i = 0; i < n; i++)
			c[i] += d[i] * f;
	}
}

/* rep_merge - add counts d (valid at td) to c (valid at *t); *t = max */
void
rep_merge(double *c, int64_t *t, const double *d, int64_t td,
    double half_life_ms)
{
	rep_merge_n(c, t, d, td, half_life_ms, OC_NLEARN);
}

/* pat_add - add w to value i of float histograms c (valid at *t) at td */
static void
pat_add(float *c, int64_t *t, int i, double w, int64_t td, double hl)
{
	double	f;
	int	j;

	if (*t == 0 || td >= *t) {
		f = *t == 0 ? 0.0 : rep_decay(hl, td - *t);
		if (f != 1.0)
			for (j = 0; j < REP_PAT_NVAL; j++)
				c[j] = (float)(c[j] * f);
		c[i] = (float)(c[i] + w);
		*t = td;
	} else
		c[i] = (float)(c[i] + w * rep_decay(hl, *t - td));
}

/* pat_merge - add float histograms d (valid at td) to c (valid at *t) */
static void
pat_merge(float *c, int64_t *t, const float *d, int64_t td, double hl)
{
	double	f;
	int	j;

	if (td == 0)
		return;
	if (*t == 0 || td >= *t) {
		f = *t == 0 ? 0.0 : rep_decay(hl, td - *t);
		for (j = 0; j < REP_PAT_NVAL; j++)
			c[j] = (float)(c[j] * f + d[j]);
		*t = td;
	} else {
		f = rep_decay(hl, *t - td);
		for (j = 0; j < REP_PAT_NVAL; j++)
			c[j] = (float)(c[j] + d[j] * f);
	}
}

/* rep_patience_name - "gaveup", "bad", or "?" */
const char *
rep_patience_name(enum rep_patience k)
{
	static const char *const names[REP_PAT_NKINDS] = { "gaveup", "bad" };

	return (unsigned)k < REP_PAT_NKINDS ? names[k] : "?";
}

#define PAT16(k) "pat_" k "_0", "pat_" k "_1", "pat_" k "_2", "pat_" k "_3", \
	"pat_" k "_4", "pat_" k "_5", "pat_" k "_6", "pat_" k "_7", \
	"pat_" k "_8", "pat_" k "_9", "pat_" k "_10", "pat_" k "_11", \
	"pat_" k "_12", "pat_" k "_13", "pat_" k "_14", "pat_" k "_15"
static const char *const pat_fields[REP_PAT_NVAL] = {
	PAT16("gaveup"), PAT16("bad")
};
_Static_assert(REP_PAT_NBUCKETS == 16 && REP_PAT_NKINDS == 2,
    "pat_fields[] has 16 names for each of 2 kinds");

/* rep_pat_field - the store's column / field name of patience value i */
const char *
rep_pat_field(int i)
{
	return i >= 0 && i < REP_PAT_NVAL ? pat_fields[i] : "?";
}

/* rep_patience_bucket - the bucket of a number of seconds */
int
rep_patience_bucket(double seconds)
{
	int	b;

	for (b = REP_PAT_NBUCKETS - 1; b > 0; b--)
		if (seconds >= rep_pat_edges[b])
			break;
	return b;
}

/* rep_patience_quantile - q-quantile of a histogram, seconds; -1 if none */
double
rep_patience_quantile(const struct rep_est *e, enum rep_patience k, double q,
    double *n)
{
	const double *h;
	double	total, target, cum = 0, frac;
	int	b, last = -1;

	if (n != NULL)
		*n = 0;
	if ((unsigned)k >= REP_PAT_NKINDS || !(e->patience_n[k] > 0))
		return -1;
	h = e->patience[k];
	total = e->patience_n[k];
	if (n != NULL)
		*n = total;
	q = q < 0 || isnan(q) ? 0 : q > 1 ? 1 : q;
	target = q * total;
	for (b = 0; b < REP_PAT_NBUCKETS; b++) {
		if (!(h[b] > 0))
			continue;
		last = b;
		if (cum + h[b] >= target)
			break;
		cum += h[b];
	}
	if (last < 0)
		return -1;
	if (b == REP_PAT_NBUCKETS) {	/* rounding: the last bucket used */
		b = last;
		cum = target - h[b];
	}
	if (b == REP_PAT_NBUCKETS - 1)
		return rep_pat_edges[b];
	frac = (target - cum) / h[b];
	frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
	return rep_pat_edges[b] + frac * (rep_pat_edges[b + 1] -
	    rep_pat_edges[b]);
}

/* rep_estimate - p_spam, evidence and log-odds of decayed counts */
void
rep_estimate(const double counts[OC_NLEARN], struct rep_est *e)
{
	double	bad = 0, good = 0;
	int	i;

	if (e->counts != counts)
		memcpy(e->counts, counts, sizeof(e->counts));
	/* good and bad as outcome_flags() says (evrec.c's table) */
	for (i = 0; i < OC_NLEARN; i++) {
		if (outcome_flags((enum outcome)i) & OC_F_BAD)
			bad += counts[i];
		else if (outcome_flags((enum outcome)i) & OC_F_GOOD)
			good += counts[i];
	}
	e->evidence = bad + good;
	e->p_spam = (bad + REP_PRIOR_BAD) /
	    (bad + good + REP_PRIOR_BAD + REP_PRIOR_GOOD);
	e->log_odds = log((bad + REP_PRIOR_BAD) / (good + REP_PRIOR_GOOD));
}

/* key_hash - FNV-1a over the kind and the text */
static uint32_t
key_hash(const struct rep_key *k)
{
	uint32_t h = 2166136261u ^ (uint32_t)k->kind;
	const unsigned char *p;

	h *= 16777619u;
	for (p = (const unsigned char *)k->text; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

/* key_eq - same kind and text */
static int
key_eq(const struct rep_key *a, const struct rep_key *b)
{
	return a->kind == b->kind && strcmp(a->text, b->text) == 0;
}

/* rep_keys_for - the keys a session has, with rep_prefix_v4/_v6 */
int
rep_keys_for(const struct sockaddr *client, const char *rawsig_hash,
    const char *os, const char *domain, struct rep_key keys[REPK_NKINDS])
{
	struct rep_keyin in = { client, rawsig_hash, os, domain };

	return rep_keys_derive(&in, rep.v4_bits ? rep.v4_bits : 24,
	    rep.v6_bits ? rep.v6_bits : 64, keys);
}

/* ---------------------------------------------------------------- cache */

/*
 * The slots and the buckets are allocated once, at rep_open(), with
 * calloc(): the kernel hands out zero pages as they are first touched, so
 * a large rep_cache_size costs address space, not memory, until it fills,
 * and the loop never stalls on a realloc().  Buckets hold index + 1 (0 =
 * empty), so zeroed memory is an empty table.
 */

/* cache_find - entry index of key, or REP_NIL */
static uint32_t
cache_find(const struct rep_key *k, uint32_t h)
{
	uint32_t i;

	for (i = rep.bucket[h & (rep.nbucket - 1)]; i != 0;
	    i = rep.ent[i - 1].next)
		if (rep.ent[i - 1].hash == h && key_eq(&rep.ent[i - 1].key, k))
			return i - 1;
	return REP_NIL;
}

/* cache_unlink - remove entry i from its hash chain */
static void
cache_unlink(uint32_t i)
{
	uint32_t *pp = &rep.bucket[rep.ent[i].hash & (rep.nbucket - 1)];

	while (*pp != 0 && *pp != i + 1)
		pp = &rep.ent[*pp - 1].next;
	if (*pp == i + 1)
		*pp = rep.ent[i].next;
}

/* cache_alloc - the slots and buckets for cap entries; -1 on ENOMEM */
static int
cache_alloc(void)
{
	for (rep.nbucket = 1024; rep.nbucket < rep.cap; rep.nbucket *= 2)
		;
	rep.ent = calloc(rep.cap, sizeof(*rep.ent));
	rep.pat = calloc(rep.cap, sizeof(*rep.pat));
	rep.bucket = calloc(rep.nbucket, sizeof(*rep.bucket));
	return rep.ent == NULL || rep.pat == NULL || rep.bucket == NULL ? -1 :
	    0;
}

/* cache_insert - a fresh entry for key (evicting one if full) */
static uint32_t
cache_insert(const struct rep_key *k, uint32_t h)
{
	struct rep_entry *e;
	uint32_t i, *head;
	int	steps;

	if (rep.nent < rep.cap) {
		i = rep.nent++;
	} else {
		/* CLOCK, giving up after REP_CLOCK_STEPS so that a cache
		 * full of referenced entries costs no O(cap) sweep */
		for (steps = 0;; steps++) {
			i = rep.hand;
			rep.hand = (rep.hand + 1) % rep.cap;
			if (!rep.ent[i].used || steps == REP_CLOCK_STEPS)
				break;
			rep.ent[i].used = 0;
		}
		cache_unlink(i);
		atomic_fetch_add_explicit(&rep.evictions, 1,
		    memory_order_relaxed);
	}
	e = &rep.ent[i];
	if (e->has_pat)		/* else untouched: still zero */
		memset(&rep.pat[i], 0, sizeof(rep.pat[i]));
	memset(e, 0, sizeof(*e));
	e->key.kind = k->kind;
	snprintf(e->key.text, sizeof(e->key.text), "%s", k->text);
	e->hash = h;
	e->live = 1;
	e->used = 0;		/* referenced only from the second use on */
	e->warm = rep.ops == NULL;
	head = &rep.bucket[h & (rep.nbucket - 1)];
	e->next = *head;
	*head = i + 1;
	return i;
}

/* ---------------------------------------------------------------- queue */

/*
 * The queue is a single-producer single-consumer ring without a lock, so
 * the loop thread can never wait for a worker that was preempted while
 * holding one: qtail and qhead count entries ever pushed and ever written;
 * slots [qhead, qtail) belong to the worker, the others to the loop.  The
 * worker sets sleeping before its last look at qtail, and the loop reads
 * sleeping after publishing qtail (both sequentially consistent), so one
 * of them always sees the other: a push never goes unnoticed.
 */

/* worker_wake - interrupt the worker's wait */
static void
worker_wake(void)
{
	uint64_t one = 1;

	(void)!write(rep.qev, &one, sizeof(one));
}

/* queue_push - append an item; 0, or -1 when the queue is full */
static int
queue_push(const struct rep_item *it)
{
	size_t	tail = atomic_load_explicit(&rep.qtail, memory_order_relaxed);

	if (tail - atomic_load_explicit(&rep.qhead, memory_order_acquire) >=
	    REP_QUEUE_MAX)
		return -1;
	rep.q[tail % REP_QUEUE_MAX] = *it;
	atomic_store(&rep.qtail, tail + 1);
	if (atomic_load(&rep.sleeping) && atomic_exchange(&rep.sleeping, 0))
		worker_wake();
	return 0;
}

/* request_fetch - queue a store read for entry e */
static void
request_fetch(struct rep_entry *e, int64_t now)
{
	struct rep_item it;

	memset(&it, 0, sizeof(it));
	it.key.kind = e->key.kind;
	memcpy(it.key.text, e->key.text, sizeof(it.key.text));
	it.type = ITEM_FETCH;
	it.t = now;
	if (++rep.seq == 0)
		rep.seq = 1;
	it.seq = rep.seq;
	if (queue_push(&it) < 0) {
		e->refresh_at = now + REP_RETRY_MS;
		return;
	}
	e->fetch_seq = it.seq;
	memset(e->since, 0, sizeof(e->since));
	e->since_t = 0;
	if (e->has_pat && rep.pat[e - rep.ent].since_t) {
		memset(rep.pat[e - rep.ent].since, 0,
		    sizeof(rep.pat[0].since));
		rep.pat[e - rep.ent].since_t = 0;
	}
}

/* merge_replies - apply at most max fetch answers to the cache */
static void
merge_replies(size_t max)
{
	struct rep_replies *rs;
	struct rep_reply *r;
	struct rep_entry *e;
	uint32_t i;
	int64_t	now;
	int	j;

	if (rep.rlist == NULL) {
		struct rep_replies *prev = NULL, *next;

		if (atomic_load_explicit(&rep.rstack, memory_order_relaxed) ==
		    NULL)
			return;
		/* take the whole stack and put it back in order */
		rs = atomic_exchange_explicit(&rep.rstack, NULL,
		    memory_order_acquire);
		for (; rs != NULL; rs = next) {
			next = rs->next;
			rs->next = prev;
			prev = rs;
		}
		rep.rlist = prev;
	}
	now = rep_now();
	while ((rs = rep.rlist) != NULL && max > 0) {
		while (rs->done < rs->n && max > 0) {
			r = &rs->r[rs->done++];
			max--;
			i = cache_find(&r->rec.key, key_hash(&r->rec.key));
			if (i == REP_NIL || rep.ent[i].fetch_seq != r->seq)
				continue;
			e = &rep.ent[i];
			e->fetch_seq = 0;
			if (!r->ok) {
				e->refresh_at = now + REP_RETRY_MS;
				continue;
			}
			/* store state + what happened here since the request */
			memcpy(e->c, r->rec.c, sizeof(e->c));
			e->t = r->rec.t;
			if (e->since_t)
				rep_merge(e->c, &e->t, e->since, e->since_t,
				    rep.half_life);
			e->since_t = 0;
			if (r->rec.pt || e->has_pat) {
				struct rep_pat *p = &rep.pat[i];

				for (j = 0; j < REP_PAT_NVAL; j++)
					p->pat[j] = (float)r->rec.pat[j];
				p->pt = r->rec.pt;
				if (p->since_t)
					pat_merge(p->pat, &p->pt, p->since,
					    p->since_t, rep.half_life);
				p->since_t = 0;
				e->has_pat = 1;
			}
			e->warm = 1;
			e->refresh_at = rep.ops->shared ? now + REP_REFRESH_MS
			    : 0;
		}
		if (rs->done < rs->n)
			break;
		rep.rlist = rs->next;
		/* the worker frees it: no allocator work on the loop */
		rs->next = atomic_load_explicit(&rep.rspent,
		    memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(&rep.rspent,
		    &rs->next, rs, memory_order_release, memory_order_relaxed))
			;
	}
}

/* free_spent - free the answer blocks the loop is done with */
static void
free_spent(void)
{
	struct rep_replies *rs, *next;

	rs = atomic_exchange_explicit(&rep.rspent, NULL, memory_order_acquire);
	for (; rs != NULL; rs = next) {
		next = rs->next;
		free(rs);
	}
}

/* lookup - the estimate for key from the cache, with patience if pat */
static int
lookup(const struct rep_key *k, struct rep_est *est, int pat)
{
	struct rep_entry *e;
	double	c[OC_NLEARN], f;
	uint32_t h, i;
	int64_t	now;
	int	j;

	atomic_fetch_add_explicit(&rep.lookups, 1, memory_order_relaxed);
	memset(c, 0, sizeof(c));
	if (pat)
		memset(est->patience, 0, sizeof(est->patience));
	for (j = 0; j < REP_PAT_NKINDS; j++)
		est->patience_n[j] = pat ? 0 : -1;
	if (!rep.open) {
		rep_estimate(c, est);
		return 0;
	}
	merge_replies(REP_MERGE_MAX);
	h = key_hash(k);
	now = rep_now();
	if ((i = cache_find(k, h)) == REP_NIL) {
		atomic_fetch_add_explicit(&rep.misses, 1, memory_order_relaxed);
		if (rep.ops != NULL && (i = cache_insert(k, h)) != REP_NIL)
			request_fetch(&rep.ent[i], now);
		rep_estimate(c, est);
		return 0;
	}
	e = &rep.ent[i];
	e->used = 1;
	if (e->refresh_at && now >= e->refresh_at && e->fetch_seq == 0) {
		e->refresh_at = 0;
		request_fetch(e, now);
	}
	f = now > e->t ? rep_decay(rep.half_life, now - e->t) : 1.0;
	for (j = 0; j < OC_NLEARN; j++)
		c[j] = e->c[j] * f;
	rep_estimate(c, est);
	if (pat && e->has_pat && rep.pat[i].pt) {
		const struct rep_pat *p = &rep.pat[i];

		f = now > p->pt ? rep_decay(rep.half_life, now - p->pt) : 1.0;
		for (j = 0; j < REP_PAT_NVAL; j++) {
			double	v = p->pat[j] * f;

			est->patience[j / REP_PAT_NBUCKETS]
			    [j % REP_PAT_NBUCKETS] = v;
			est->patience_n[j / REP_PAT_NBUCKETS] += v;
		}
	}
	if (!e->warm && e->t == 0 && (!pat || !e->has_pat ||
	    rep.pat[i].pt == 0)) {
		atomic_fetch_add_explicit(&rep.misses, 1, memory_order_relaxed);
		return 0;
	}
	return 1;
}

/* rep_lookup - the estimate for key from the cache; 0 = only the prior */
int
rep_lookup(const struct rep_key *k, struct rep_est *est)
{
	return lookup(k, est, 0);
}

/* rep_lookup_patience - rep_lookup() and the patience histograms */
int
rep_lookup_patience(const struct rep_key *k, struct rep_est *est)
{
	return lookup(k, est, 1);
}

/* cache_touch - k's cache entry, made (and its fetch asked) if missing;
 * REP_NIL when the cache has no room */
static uint32_t
cache_touch(const struct rep_key *k, int64_t now)
{
	uint32_t h = key_hash(k), i;

	if ((i = cache_find(k, h)) != REP_NIL)
		rep.ent[i].used = 1;
	else if ((i = cache_insert(k, h)) != REP_NIL && rep.ops != NULL)
		request_fetch(&rep.ent[i], now);
	return i;
}

/* queue_update - hand one update to the store worker (counted if dropped) */
static void
queue_update(const struct rep_key *k, int type, int what, double weight,
    int64_t now)
{
	struct rep_item it;

	if (rep.ops == NULL)
		return;
	memset(&it, 0, sizeof(it));
	it.key.kind = k->kind;
	snprintf(it.key.text, sizeof(it.key.text), "%s", k->text);
	it.type = type;
	it.outcome = (uint8_t)what;
	it.weight = weight;
	it.t = now;
	if (queue_push(&it) < 0)
		atomic_fetch_add_explicit(&rep.dropped, 1, memory_order_relaxed);
}

/* rep_update - count an outcome now: cache at once, store behind */
void
rep_update(const struct rep_key *k, enum outcome o, double weight)
{
	struct rep_entry *e;
	double	d[OC_NLEARN];
	uint32_t i;
	int64_t	now;

	if (!rep.open || (unsigned)o >= OC_NLEARN || !(weight > 0) ||
	    k->text[0] == '\0')
		return;
	atomic_fetch_add_explicit(&rep.updates, 1, memory_order_relaxed);
	merge_replies(REP_MERGE_MAX);
	now = rep_now();
	memset(d, 0, sizeof(d));
	d[o] = weight;
	if ((i = cache_touch(k, now)) != REP_NIL) {
		e = &rep.ent[i];
		rep_merge(e->c, &e->t, d, now, rep.half_life);
		if (e->fetch_seq)
			rep_merge(e->since, &e->since_t, d, now,
			    rep.half_life);
	}
	queue_update(k, ITEM_UPDATE, (int)o, weight, now);
}

/* rep_update_patience - count one session that lasted seconds */
void
rep_update_patience(const struct rep_key *k, enum rep_patience kind,
    double seconds)
{
	struct rep_entry *e;
	uint32_t i;
	int64_t	now;
	int	v;

	if (!rep.open || (unsigned)kind >= REP_PAT_NKINDS ||
	    !(seconds >= 0) || k->text[0] == '\0')
		return;
	atomic_fetch_add_explicit(&rep.updates, 1, memory_order_relaxed);
	merge_replies(REP_MERGE_MAX);
	now = rep_now();
	v = (int)kind * REP_PAT_NBUCKETS + rep_patience_bucket(seconds);
	if ((i = cache_touch(k, now)) != REP_NIL) {
		e = &rep.ent[i];
		e->has_pat = 1;
		pat_add(rep.pat[i].pat, &rep.pat[i].pt, v, 1.0, now,
		    rep.half_life);
		if (e->fetch_seq)
			pat_add(rep.pat[i].since, &rep.pat[i].since_t, v, 1.0,
			    now, rep.half_life);
	}
	queue_update(k, ITEM_PATIENCE, v, 1.0, now);
}

/* ---------------------------------------------------------------- worker */

/* The worker's per-segment state: coalesced writes and fetches. */
#define SEG_SLOTS	(2 * REP_BATCH_MAX)

struct seg {
	struct rep_rec w[REP_BATCH_MAX];	/* coalesced deltas */
	size_t	nw;
	size_t	wsrc;				/* queue entries behind w[] */
	struct rep_rec fr[REP_BATCH_MAX];	/* fetch requests */
	uint32_t fseq[REP_BATCH_MAX];		/* their entries' fetch_seq */
	size_t	nf;
	uint32_t slot[SEG_SLOTS];		/* key hash -> w index + 1 */
	uint32_t gen[SEG_SLOTS];		/* slot valid when == sgen */
	uint32_t sgen;
};

static struct {
	int64_t	last_log;		/* mono ms of the last error line */
	unsigned long suppressed;	/* errors since that line */
	int	down;			/* in an error streak */
} wlog;

/* store_error - count, and log at most every REP_LOG_EVERY ms */
static void
store_error(const char *what, const char *err)
{
	int64_t	m = mono_ms();
	size_t	queued;

	queued = atomic_load(&rep.qtail) - atomic_load(&rep.qhead);
	atomic_fetch_add_explicit(&rep.store_errors, 1, memory_order_relaxed);
	atomic_store(&rep.store_up, 0);
	wlog.down = 1;
	if (wlog.last_log == 0 || m - wlog.last_log >= REP_LOG_EVERY) {
		log_warnx("reputation store %s: %s failed: %s (%lu more errors "
		    "since the last report); serving from the cache, %zu "
		    "updates queued, retrying", rep.spec, what, err,
		    wlog.suppressed, queued);
		wlog.last_log = m;
		wlog.suppressed = 0;
	} else
		wlog.suppressed++;
}

/* store_ok - note a working store; log the recovery once */
static void
store_ok(void)
{
	atomic_store(&rep.store_up, 1);
	if (wlog.down) {
		log_info("reputation store %s: working again, catching up",
		    rep.spec);
		wlog.down = 0;
		wlog.last_log = 0;
		wlog.suppressed = 0;
	}
}

/* store_ready - connect if needed; 0 when usable */
static int
store_ready(int *connected)
{
	char	err[512];

	if (*connected)
		return 0;
	if (rep.ops->connect(rep.store, err, sizeof(err)) < 0) {
		store_error("open", err);
		return -1;
	}
	*connected = 1;
	log_info("reputation store %s: open", rep.spec);
	return 0;
}

/* worker_sleep - wait ms unless closing; returns 1 when closing */
static int
worker_sleep(long ms)
{
	struct pollfd pfd;
	uint64_t v;

	if (atomic_load(&rep.closing))
		return 1;
	pfd.fd = rep.qev;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)ms) > 0)
		(void)!read(rep.qev, &v, sizeof(v));
	return atomic_load(&rep.closing);
}

/* seg_flush - run a segment: fetches first, then the coalesced writes */
static void
seg_flush(struct seg *s, int *connected, int64_t *close_deadline)
{
	struct rep_replies *rs;
	char	err[512];
	long	backoff = REP_BACKOFF_MIN;
	int64_t	t0;
	size_t	i;

	if (*close_deadline && mono_ms() >= *close_deadline) {
		/* rep_close() gave up on the store: do not wait for it */
		atomic_fetch_add_explicit(&rep.lost, s->wsrc,
		    memory_order_relaxed);
		s->nf = s->nw = s->wsrc = 0;
	}
	if (s->nf > 0) {
		int	ok = 0;

		if (!atomic_load(&rep.closing) && store_ready(connected) == 0) {
			if (rep.ops->fetch(rep.store, s->fr, s->nf, err,
			    sizeof(err)) == 0) {
				ok = 1;
				atomic_fetch_add_explicit(&rep.fetches, s->nf,
				    memory_order_relaxed);
			} else {
				store_error("read", err);
				rep.ops->disconnect(rep.store);
				*connected = 0;
			}
		}
		rs = malloc(sizeof(*rs) + s->nf * sizeof(rs->r[0]));
		if (rs != NULL) {
			rs->next = NULL;
			rs->n = s->nf;
			rs->done = 0;
			for (i = 0; i < s->nf; i++) {
				rs->r[i].rec = s->fr[i];
				rs->r[i].seq = s->fseq[i];
				rs->r[i].ok = ok;
			}
			rs->next = atomic_load_explicit(&rep.rstack,
			    memory_order_relaxed);
			while (!atomic_compare_exchange_weak_explicit(
			    &rep.rstack, &rs->next, rs, memory_order_release,
			    memory_order_relaxed))
				;
		}
		s->nf = 0;
	}
	while (s->nw > 0) {
		t0 = mono_ms();
		if (store_ready(connected) == 0) {
			struct timespec a, b;

			clock_gettime(CLOCK_MONOTONIC, &a);
			if (rep.ops->write(rep.store, s->w, s->nw, err,
			    sizeof(err)) == 0) {
				clock_gettime(CLOCK_MONOTONIC, &b);
				atomic_store(&rep.latency_ms,
				    (b.tv_sec - a.tv_sec) * 1e3 +
				    (b.tv_nsec - a.tv_nsec) / 1e6);
				atomic_fetch_add_explicit(&rep.written,
				    s->wsrc, memory_order_relaxed);
				store_ok();
				break;
			}
			store_error("write", err);
			rep.ops->disconnect(rep.store);
			*connected = 0;
		}
		if (*close_deadline && t0 >= *close_deadline) {
			atomic_fetch_add_explicit(&rep.lost, s->wsrc,
			    memory_order_relaxed);
			break;
		}
		if (worker_sleep(backoff) && *close_deadline == 0)
			*close_deadline = mono_ms() + REP_CLOSE_GRACE;
		backoff = backoff * 2 > REP_BACKOFF_MAX ? REP_BACKOFF_MAX :
		    backoff * 2;
	}
	s->nw = 0;
	s->wsrc = 0;
	if (++s->sgen == 0) {
		memset(s->gen, 0, sizeof(s->gen));
		s->sgen = 1;
	}
}

/* seg_slot - the slot of key in the segment's table (linear probing) */
static uint32_t
seg_slot(struct seg *s, const struct rep_key *k)
{
	uint32_t j = key_hash(k) & (SEG_SLOTS - 1);

	while (s->gen[j] == s->sgen && !key_eq(&s->w[s->slot[j] - 1].key, k))
		j = (j + 1) & (SEG_SLOTS - 1);
	return j;
}

/* worker_items - add queue entries to the segment, flushing as needed */
static void
worker_items(struct seg *s, const struct rep_item *it, size_t n,
    int *connected, int64_t *close_deadline)
{
	struct rep_rec *w;
	double	d[REP_PAT_NVAL];
	uint32_t j;
	size_t	i;

	for (i = 0; i < n; i++) {
		j = seg_slot(s, &it[i].key);
		if (it[i].type == ITEM_FETCH) {
			/* a fetch after a write of the same key must see it */
			if (s->gen[j] == s->sgen)
				seg_flush(s, connected, close_deadline);
			memset(&s->fr[s->nf], 0, sizeof(s->fr[0]));
			s->fr[s->nf].key = it[i].key;
			s->fseq[s->nf] = it[i].seq;
			s->nf++;
			continue;
		}
		if (s->gen[j] != s->sgen) {
			s->gen[j] = s->sgen;
			s->slot[j] = (uint32_t)++s->nw;
			w = &s->w[s->nw - 1];
			/* pat[] is zeroed when the first patience item comes */
			memset(w, 0, offsetof(struct rep_rec, pat));
			w->key = it[i].key;
		} else
			w = &s->w[s->slot[j] - 1];
		memset(d, 0, (it[i].type == ITEM_PATIENCE ? REP_PAT_NVAL :
		    OC_NLEARN) * sizeof(d[0]));
		d[it[i].outcome] = it[i].weight;
		if (it[i].type == ITEM_PATIENCE) {
			if (w->pt == 0)
				memset(w->pat, 0, sizeof(w->pat));
			rep_merge_n(w->pat, &w->pt, d, it[i].t, rep.half_life,
			    REP_PAT_NVAL);
		}
		else
			rep_merge(w->c, &w->t, d, it[i].t, rep.half_life);
		s->wsrc++;
	}
}

/*
 * worker_main - drain the queue until rep_close() and the queue is empty
 *
 * The worker reads its batch in place: slots [qhead, qhead + n) stay its
 * own until it advances qhead after the batch is in the store.
 */
static void *
worker_main(void *arg)
{
	struct pollfd pfd;
	struct seg *s;
	size_t	n, head, first, avail;
	uint64_t v;
	int	connected = 0;
	int64_t	close_deadline = 0;
	char	err[512];

	(void)arg;
	/* background work: the loop thread wins the CPU when both want it */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), REP_WORKER_NICE) < 0)
		log_debug("reputation worker: setpriority: %s",
		    strerror(errno));
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warnx("reputation store %s: out of memory; the worker "
		    "stops, updates stay in the cache", rep.spec);
		return NULL;
	}
	s->sgen = 1;
	if (rep.ops->connect(rep.store, err, sizeof(err)) < 0)
		store_error("open", err);
	else {
		connected = 1;
		atomic_store(&rep.store_up, 1);
		log_info("reputation store %s: open", rep.spec);
	}
	for (;;) {
		free_spent();
		head = atomic_load(&rep.qhead);
		if ((avail = atomic_load(&rep.qtail) - head) == 0) {
			if (atomic_load(&rep.closing))
				break;
			atomic_store(&rep.sleeping, 1);
			if (atomic_load(&rep.qtail) == head &&
			    !atomic_load(&rep.closing)) {
				pfd.fd = rep.qev;
				pfd.events = POLLIN;
				(void)poll(&pfd, 1, -1);
			}
			(void)!read(rep.qev, &v, sizeof(v));
			atomic_store(&rep.sleeping, 0);
			/*
			 * Linger so that a busy loop's updates form one batch
			 * (one transaction, one wake-up) instead of many tiny
			 * ones; a batch is still at most REP_LINGER_MS old.
			 */
			if (!atomic_load(&rep.closing))
				usleep(REP_LINGER_MS * 1000);
			continue;
		}
		if (atomic_load(&rep.closing) && close_deadline == 0)
			close_deadline = mono_ms() + REP_CLOSE_GRACE;
		n = avail < REP_BATCH_MAX ? avail : REP_BATCH_MAX;
		head %= REP_QUEUE_MAX;
		first = REP_QUEUE_MAX - head < n ? REP_QUEUE_MAX - head : n;
		worker_items(s, rep.q + head, first, &connected,
		    &close_deadline);
		worker_items(s, rep.q, n - first, &connected, &close_deadline);
		seg_flush(s, &connected, &close_deadline);
		atomic_fetch_add_explicit(&rep.qhead, n, memory_order_release);
	}
	free(s);
	return NULL;
}

/* ---------------------------------------------------------------- life */

/* rep_open - set up the cache and, for a store, its worker thread */
int
rep_open(struct event_base *base, const struct conf *cf, char *err,
    size_t errlen)
{
	const char *spec = cf->rep_store;
	sigset_t all, old;
	int	rc;

	(void)base;		/* answers are merged by the next call */
	if (rep.open) {
		snprintf(err, errlen, "reputation: already open");
		return -1;
	}
	memset(&rep, 0, sizeof(rep));
	rep.half_life = cf->rep_half_life > 0 ? (double)cf->rep_half_life :
	    7 * 86400000.0;
	rep.v4_bits = cf->rep_prefix_v4 > 0 ? (int)cf->rep_prefix_v4 : 24;
	rep.v6_bits = cf->rep_prefix_v6 > 0 ? (int)cf->rep_prefix_v6 : 64;
	rep.cap = cf->rep_cache_size < REP_MIN_CACHE ? REP_MIN_CACHE :
	    cf->rep_cache_size > UINT32_MAX / 2 ? UINT32_MAX / 2 :
	    (uint32_t)cf->rep_cache_size;
	snprintf(rep.spec, sizeof(rep.spec), "%s", spec[0] ? spec : "memory");
	if (strncmp(spec, "sqlite:", 7) == 0)
		rep.ops = &rep_sqlite_ops;
	else if (strncmp(spec, "redis://", 8) == 0 ||
	    strncmp(spec, "redis+unix:", 11) == 0)
		rep.ops = &rep_redis_ops;
	else if (spec[0] != '\0') {
		snprintf(err, errlen, "bad rep_store '%s': use sqlite:/path, "
		    "redis://host:port, redis+unix:/path or nothing", spec);
		return -1;
	}
	if (cache_alloc() < 0) {
		snprintf(err, errlen, "reputation cache: cannot allocate %u "
		    "entries (rep_cache_size)", rep.cap);
		goto fail;
	}
	rep.qev = -1;
	if (rep.ops != NULL) {
		if ((rep.qev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
			snprintf(err, errlen, "reputation worker: eventfd: %s",
			    strerror(errno));
			goto fail;
		}
		rep.store = rep.ops->create(spec, rep.half_life,
		    cf->rep_key_ttl > 0 ? cf->rep_key_ttl : 90 * 86400000LL,
		    err, errlen);
		if (rep.store == NULL)
			goto fail_ev;
		if ((rep.q = malloc(REP_QUEUE_MAX * sizeof(*rep.q))) == NULL) {
			snprintf(err, errlen, "reputation queue: out of memory");
			goto fail_store;
		}
		/* the worker blocks every signal: they are the loop's, and a
		 * dead Redis connection gives EPIPE instead of SIGPIPE */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&rep.worker, NULL, worker_main, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			snprintf(err, errlen, "reputation worker: %s",
			    strerror(rc));
			goto fail_store;
		}
		rep.have_worker = 1;
	}
	memset(&wlog, 0, sizeof(wlog));
	rep.open = 1;
	return 0;

fail_store:
	rep.ops->destroy(rep.store);
	rep.store = NULL;
	free(rep.q);
	rep.q = NULL;
fail_ev:
	close(rep.qev);
fail:
	free(rep.ent);
	free(rep.pat);
	free(rep.bucket);
	memset(&rep, 0, sizeof(rep));
	return -1;
}

/* rep_sync - wait until the queue is written; 0, or -1 after timeout_ms */
int
rep_sync(long timeout_ms)
{
	size_t	tail;
	int64_t	until;
	int	rc = 0;

	if (!rep.open)
		return -1;
	if (rep.have_worker) {
		/* not on the hot path: tests and shutdown poll */
		until = mono_ms() + timeout_ms;
		tail = atomic_load(&rep.qtail);
		while (atomic_load(&rep.qhead) != tail) {
			if (mono_ms() >= until) {
				rc = -1;
				break;
			}
			usleep(1000);
		}
	}
	merge_replies(SIZE_MAX);
	return rc;
}

/* rep_close - write the queue (retrying a dead store REP_CLOSE_GRACE ms) */
void
rep_close(void)
{
	struct rep_replies *rs;
	unsigned long lost;

	if (!rep.open)
		return;
	if (rep.have_worker) {
		atomic_store(&rep.closing, 1);
		worker_wake();
		pthread_join(rep.worker, NULL);
		rep.have_worker = 0;
	}
	lost = atomic_load(&rep.lost);
	if (lost)
		log_warnx("reputation store %s: %lu updates could not be "
		    "written before exit", rep.spec, lost);
	if (rep.store != NULL) {
		rep.ops->destroy(rep.store);
		rep.store = NULL;
	}
	while ((rs = rep.rlist) != NULL) {
		rep.rlist = rs->next;
		free(rs);
	}
	free_spent();
	while ((rs = atomic_load(&rep.rstack)) != NULL) {
		atomic_store(&rep.rstack, rs->next);
		free(rs);
	}
	if (rep.qev >= 0)
		close(rep.qev);
	rep.qev = -1;
	free(rep.q);
	rep.q = NULL;
	free(rep.ent);
	rep.ent = NULL;
	free(rep.pat);
	rep.pat = NULL;
	free(rep.bucket);
	rep.bucket = NULL;
	rep.open = 0;
}

/* rep_counters - a snapshot of every counter */
void
rep_counters(struct rep_counters *c)
{
	memset(c, 0, sizeof(*c));
	c->updates = atomic_load(&rep.updates);
	c->lookups = atomic_load(&rep.lookups);
	c->misses = atomic_load(&rep.misses);
	c->dropped = atomic_load(&rep.dropped);
	c->lost = atomic_load(&rep.lost);
	c->written = atomic_load(&rep.written);
	c->fetches = atomic_load(&rep.fetches);
	c->store_errors = atomic_load(&rep.store_errors);
	c->evictions = atomic_load(&rep.evictions);
	c->store_latency_ms = atomic_load(&rep.latency_ms);
	c->store_up = rep.ops == NULL ? 1 : atomic_load(&rep.store_up);
	c->cached = rep.nent;
	if (rep.open && rep.have_worker)
		c->queue_depth = atomic_load(&rep.qtail) -
		    atomic_load(&rep.qhead);
}

