/*
 * shaper.h - per-class timing: how long a reply may be held and how it is
 *	      trickled, inside RFC 5321's client timeouts
 */
#ifndef MS_SHAPER_H
#define MS_SHAPER_H

#include <stddef.h>

#include "conf/conf.h"

struct ev_token_bucket_cfg;

/* Which RFC 5321 4.5.3.2 client timeout governs a reply. */
enum shp_stage {
	SHP_GREETING,		/* 5 min */
	SHP_MAIL,		/* 5 min: MAIL, and commands with no own limit */
	SHP_RCPT,		/* 5 min */
	SHP_DATA_INIT,		/* 2 min */
	SHP_DATA_BLOCK,		/* 3 min */
	SHP_DATA_END,		/* 10 min */
};

#define SHP_MARGIN_MS	10000L	/* stay this far under each client timeout */

long	shp_cap_ms(enum shp_stage);
long	shp_delay_ms(const struct shclass *, enum shp_stage, int observe);
long	shp_txn_delay_ms(const struct shclass *, int observe);
long	shp_pre_delay_ms(const struct shclass *, long delay_ms);
long	shp_chunk_interval(const struct shclass *, size_t len, long budget_ms);
struct ev_token_bucket_cfg *shp_rate_cfg(const struct shclass *);
void	shp_flush_cache(void);

#endif
