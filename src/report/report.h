/*
 * report.h - `mailshaper report`: delivery success by OS, raw signature,
 * class, DNSBL listing or hour, as tables and SVG charts
 *
 * See report.c for the definitions and doc/internals/report.md for why.
 */
#ifndef MS_REPORT_H
#define MS_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rep/rep.h"

/* What a table is grouped by. */
enum rp_by { RP_BY_OS, RP_BY_RAWSIG, RP_BY_CLASS, RP_BY_DNSBL, RP_BY_HOUR,
	RP_NBY };

#define RP_NWAIT	11	/* gave_up_after_s histogram buckets */
#define RP_TOP		15	/* bars in the "by raw signature" chart */

/* One group's figures.  Message counts are of message records. */
struct rp_group {
	char	*label;			/* owned; never NULL */
	uint64_t sessions;		/* session records (or orphan sessions) */
	uint64_t messages;		/* message records, every outcome */
	uint64_t delivered, rejected, deferred, abandoned;  /* messages */
	uint64_t protocol_error, backend_error, other;       /* messages */
	uint64_t early;			/* sessions abandoned before a message */
	uint64_t senders;		/* distinct client addresses */
	uint64_t ok_senders;		/* ... that delivered at least once */
	uint64_t bad_senders;		/* ... that attempted, never delivered */
	uint64_t waited;		/* abandoned sessions with a wait */
	double	wait_sum, wait_max;	/* their gave_up_after_s, seconds */
	uint64_t wait_hist[RP_NWAIT];	/* ... by rp_wait_buckets[] */
	/* From a reputation store (rp_report.store) only: */
	struct rep_est est;		/* counts decayed to now, estimate */
	int64_t	updated_ms;		/* the key's t, ms (0 = not a store) */
};

struct rp_table {
	enum rp_by by;
	struct rp_group *g;	/* owned; most sessions first, then label */
	size_t	n;
};

struct rp_stats {
	unsigned long lines;	/* lines read */
	unsigned long garbage;	/* lines skipped as unusable */
	uint64_t sessions;	/* sessions counted (after --since) */
	uint64_t messages;	/* message records counted (after --since) */
	uint64_t filtered;	/* sessions before --since */
	uint64_t orphans;	/* sessions seen only through messages */
	size_t	peak_open;	/* most sessions waiting for their record */
	size_t	keys;		/* distinct (group, address) pairs */
	/* --store: */
	size_t	store_keys;	/* os and rawsig keys read */
	uint64_t ip_keys;	/* ip keys in the store (senders, all OSes) */
	int64_t	now_ms;		/* counts decayed to this time */
	double	half_life_ms;	/* ... with this half-life */
};

struct rp_report {
	struct rp_table by;	/* the --by table */
	struct rp_table os;	/* always by OS, for the charts */
	struct rp_table rawsig;	/* always by raw signature key */
	struct rp_stats st;
	int	store;		/* 1 = from --store: groups' est only */
	char	source[256];	/* --store URL ("" = event log) */
};

struct rp_opts {
	enum rp_by by;
	int64_t	since_ms;		/* sessions from this time (INT64_MIN = all) */
	int	max_warnings;		/* file:line warnings before silence */
	size_t	max_line;		/* longest line, bytes (0 = JL_MAX_LINE) */
	int64_t	session_max_age_ms;	/* count a session unseen this long */
	size_t	max_open;		/* sessions waiting for their record */
	int	progress;		/* draw a progress bar on stderr */
	int64_t	now_ms;			/* --store: decay to (0 = rep_now()) */
	double	half_life_ms;		/* --store: rep_half_life (0 = 7 d) */
};

#define RP_HALF_LIFE_MS	(7 * 86400e3)	/* rep_half_life's default */

extern const char *const rp_by_names[RP_NBY];
extern const char *const rp_wait_buckets[RP_NWAIT];

void	rp_opts_init(struct rp_opts *);
int	rp_parse_by(const char *, enum rp_by *);
int	rp_parse_since(const char *, int64_t now_ms, int64_t *since_ms,
	    char *err, size_t errlen);
int	rp_run(const char *path, const struct rp_opts *, struct rp_report *,
	    char *err, size_t errlen);
void	rp_report_free(struct rp_report *);
uint64_t rp_attempts(const struct rp_group *);
double	rp_success_rate(const struct rp_group *);
double	rp_store_attempts(const struct rp_group *);
int	rp_write_text(FILE *, const struct rp_report *);
int	rp_write_json(FILE *, const struct rp_report *);
int	rp_write_csv(FILE *, const struct rp_report *);
int	rp_write_html(FILE *, const struct rp_report *);
int	rp_write_charts(const char *dir, const struct rp_report *, char *err,
	    size_t errlen);
int	report_main(int argc, char **argv);

/* report_store.c: the tables from a reputation store (--store URL);
 * 0, -1 (the store cannot be read) or -2 (a bad URL), err filled. */
int	rp_store_run(const char *url, const struct rp_opts *,
	    struct rp_report *, char *err, size_t errlen);

#endif
