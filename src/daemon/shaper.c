/*
 * shaper.c - shaping arithmetic for a class
 *
 * Exports shp_cap_ms(), shp_delay_ms(), shp_txn_delay_ms(), shp_pre_delay_ms(),
 * shp_chunk_interval(), shp_rate_cfg() and shp_flush_cache().
 *
 * A class gives a delay per reply: the time from reading a command to the
 * last byte of its reply.  shp_delay_ms() caps it at the RFC 5321 4.5.3.2
 * client timeout for that stage less SHP_MARGIN_MS, so a patient client
 * never times out.  With stutter on, the reply is written `stutter` bytes
 * at a time during the last part of that delay; for a command relayed to
 * the backend, shp_pre_delay_ms() is the part of the delay spent before the
 * command is forwarded.  A session never waits while it holds a backend
 * connection, so the delays a class gives RCPT, DATA and the end of data
 * are spent before its MAIL is relayed: shp_txn_delay_ms(), within MAIL's
 * own cap.  See doc/internals/shaping.md.
 *
 * Rate-limit configurations are shared by all sessions with the same rates
 * and are owned by the cache here.  libevent keeps a pointer to them, so
 * they live until shp_flush_cache() at exit; a reload only adds entries.
 */
#include <string.h>

#include <event2/bufferevent.h>

#include "daemon/shaper.h"

/* RFC 5321 4.5.3.2 client timeouts, in ms. */
static const long shp_rfc_ms[] = {
	[SHP_GREETING] = 5 * 60000L,
	[SHP_MAIL] = 5 * 60000L,
	[SHP_RCPT] = 5 * 60000L,
	[SHP_DATA_INIT] = 2 * 60000L,
	[SHP_DATA_BLOCK] = 3 * 60000L,
	[SHP_DATA_END] = 10 * 60000L,
};

#define SHP_REPLY_EST	40	/* typical reply length, for pre-delays */

/* shp_cap_ms - longest time a reply may take at this stage */
long
shp_cap_ms(enum shp_stage st)
{
	return shp_rfc_ms[st] - SHP_MARGIN_MS;
}

/* shp_delay_ms - the class's delay for this stage, within the cap */
long
shp_delay_ms(const struct shclass *c, enum shp_stage st, int observe)
{
	long	d;

	if (observe)
		return 0;
	d = st == SHP_GREETING ? c->banner_delay : c->reply_delay;
	return d < shp_cap_ms(st) ? d : shp_cap_ms(st);
}

/*
 * shp_txn_delay_ms - the delay of a MAIL that opens a relayed transaction:
 * the class's delays of MAIL, RCPT, DATA and the end of data together,
 * within MAIL's cap (the later replies then come without delay)
 */
long
shp_txn_delay_ms(const struct shclass *c, int observe)
{
	long	d = shp_delay_ms(c, SHP_MAIL, observe) +
	    shp_delay_ms(c, SHP_RCPT, observe) +
	    shp_delay_ms(c, SHP_DATA_INIT, observe) +
	    shp_delay_ms(c, SHP_DATA_END, observe);

	return d < shp_cap_ms(SHP_MAIL) ? d : shp_cap_ms(SHP_MAIL);
}

/* shp_chunk_interval - ms between stutter writes so len bytes fit budget */
long
shp_chunk_interval(const struct shclass *c, size_t len, long budget_ms)
{
	size_t	chunks;

	if (c->stutter <= 0 || budget_ms <= 0)
		return 0;
	chunks = (len + c->stutter - 1) / c->stutter;
	if (chunks <= 1)
		return 0;
	if ((long)(chunks - 1) * c->stutter_interval <= budget_ms)
		return c->stutter_interval;
	return budget_ms / (long)(chunks - 1);
}

/* shp_pre_delay_ms - the part of delay d before forwarding, leaving time
 * to stutter the reply */
long
shp_pre_delay_ms(const struct shclass *c, long d)
{
	long	span;

	if (c->stutter <= 0 || d == 0)
		return d;
	span = ((SHP_REPLY_EST + c->stutter - 1) / c->stutter - 1) *
	    c->stutter_interval;
	return span >= d ? 0 : d - span;
}

/* One cached bucket configuration per distinct (rate_in, rate_out). */
#define SHP_CACHE	(CONF_MAX_CLASSES * 2)
static struct {
	long	in, out;
	struct ev_token_bucket_cfg *cfg;
} shp_cache[SHP_CACHE];

/* shp_rate_cfg - token bucket for the class, NULL when unlimited */
struct ev_token_bucket_cfg *
shp_rate_cfg(const struct shclass *c)
{
	int	i;
	size_t	in, out;

	if (c->rate_in == 0 && c->rate_out == 0)
		return NULL;
	for (i = 0; i < SHP_CACHE && shp_cache[i].cfg; i++)
		if (shp_cache[i].in == c->rate_in && shp_cache[i].out == c->rate_out)
			return shp_cache[i].cfg;
	if (i == SHP_CACHE)
		return NULL;
	in = c->rate_in ? (size_t)c->rate_in : EV_RATE_LIMIT_MAX;
	out = c->rate_out ? (size_t)c->rate_out : EV_RATE_LIMIT_MAX;
	/* One-second ticks; a burst of one second's worth. */
	shp_cache[i].cfg = ev_token_bucket_cfg_new(in, in, out, out, NULL);
	shp_cache[i].in = c->rate_in;
	shp_cache[i].out = c->rate_out;
	return shp_cache[i].cfg;
}

/* shp_flush_cache - free all bucket configurations (at exit only) */
void
shp_flush_cache(void)
{
	int	i;

	for (i = 0; i < SHP_CACHE && shp_cache[i].cfg; i++) {
		ev_token_bucket_cfg_free(shp_cache[i].cfg);
		shp_cache[i].cfg = NULL;
	}
}
