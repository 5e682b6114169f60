/*
 * join.h - the streaming join of an event log's message records with
 *	    their session record, shared by `report` and `evaluate`
 *
 * See join.c for the contract and doc/internals/report.md for why.
 */
#ifndef MS_JOIN_H
#define MS_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "log/evread.h"

struct jl_reader;
struct join;

struct join_opts {
	const char *name;	/* the log's name in warnings */
	unsigned flags;		/* EVR_R_*: the records read, and their rules */
	int	quiet;		/* 1 = warn nothing (counts still kept) */
	int	max_warnings;	/* file:line warnings before silence */
	int64_t	max_age_ms;	/* flush a session unseen this long */
	size_t	max_open;	/* most sessions waiting (SIZE_MAX = any) */
	size_t	max_held;	/* most messages waiting (SIZE_MAX = any) */
	size_t	slot_size;	/* bytes of each waiting session's slot */
};

/*
 * The consumer.  Every callback but discard returns 0, or -1 when out of
 * memory (the run then stops and fails with "out of memory").  A slot is
 * slot_size zeroed bytes (plus the extra asked for) that belong to one
 * waiting session; each slot made is handed back exactly once: to
 * session(), to orphan() or, when a run stops early, to discard().
 */
struct join_ops {
	/* A message record; join_hold() keeps it for its session. */
	int	(*message)(void *arg, struct join *,
		    const struct evr_rmessage *, unsigned long lineno);
	/* A session record, with the slot of its waiting messages (NULL:
	 * none waited). */
	int	(*session)(void *arg, const struct evr_rsession *, void *slot,
		    unsigned long lineno);
	/* A session whose record did not come: first_ms is the time of its
	 * first held message. */
	int	(*orphan)(void *arg, void *slot, int64_t first_ms);
	int	(*feedback)(void *arg, struct join *,
		    const struct evr_rfeedback *, unsigned long lineno);
	void	(*discard)(void *arg, void *slot);	/* may be NULL */
	/* Every 16384 lines, when not NULL. */
	void	(*progress)(void *arg, unsigned long lines, uint64_t done);
};

struct join_stats {
	unsigned long lines;	/* lines read */
	unsigned long garbage;	/* lines skipped as unusable */
	size_t	peak_open;	/* most sessions waiting at once */
	size_t	peak_held;	/* most messages waiting at once */
};

struct join *join_new(const struct join_opts *, const struct join_ops *,
	    void *arg);
int	join_run(struct join *, struct jl_reader *, char *err, size_t errlen);
void   *join_hold(struct join *, const struct evr_rmessage *, size_t extra,
	    int *isnew);
void	join_warn(struct join *, unsigned long lineno, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
const struct join_stats *join_stats(const struct join *);
void	join_free(struct join *);

#endif
