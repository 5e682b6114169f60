/*
 * scenario.h - the swarm's scenario file: sender populations and the run
 *
 * A scenario fixes who sends (populations of simulated hosts, each with a
 * kind, a share of the sessions, a SYN personality and its behaviour), the
 * ground truth (ham/spam mix, which zombies a DNS list names, how much spam
 * the backend rejects) and the run (duration, clock compression, seed).
 * Format and semantics: doc/internals/scenario.md.
 */
#ifndef MS_SWARM_SCENARIO_H
#define MS_SWARM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "swarm/persona.h"
#include "util/addr.h"

#define SCN_NAME_MAX		32	/* population name, with the NUL */
#define SCN_DOMAIN_MAX		254	/* DNS name, with the NUL */
#define SCN_MAX_POPS		32	/* populations in one scenario */
#define SCN_MAX_RANGES		8	/* address ranges in one scenario */
#define SCN_MAX_STEPS		8	/* steps of a patience distribution */
#define SCN_MAX_OPTS		16	/* daemon_option lines in one scenario */
#define SCN_OPT_MAX		512	/* one "name = value", with the NUL */

enum scn_kind {
	SCN_LEGIT_MTA,		/* RFC 5321 MTA: EHLO, STARTTLS, retries */
	SCN_ZOMBIE,		/* botnet zombie: impatient, random HELO */
	SCN_ROUTER,		/* hijacked router: steady spam, Linux SYN */
	SCN_BULK_SENDER,	/* legitimate bulk mail from many addresses */
	SCN_BIG_SENDER,		/* large FCrDNS pool on Windows Server */
	SCN_KIND_COUNT
};

enum scn_truth {
	SCN_HAM,
	SCN_SPAM
};

struct scn_step {		/* one step of a patience distribution */
	uint64_t	ms;		/* gives up after this long (ms) */
	double		pct;		/* share of sessions, 0..100 */
};

struct population {
	char		name[SCN_NAME_MAX];	/* "zombies" */
	unsigned	line;			/* line of "population NAME" */
	enum scn_kind	kind;
	double		share;		/* % of the scenario's sessions */
	const struct persona *persona;	/* borrowed from the persona set */
	char		persona_name[PERSONA_NAME_MAX];
	unsigned	addresses;	/* pool size, >= 1 */
	uint64_t	addr_first;	/* index of its first address in the
					 * scenario's ranges (see
					 * scenario_address()) */
	unsigned	messages;	/* messages per session, >= 1 */
	double		ham_pct;	/* truth mix; spam_pct = 100 - ham_pct */
	double		spam_pct;
	int		patience_rfc;	/* 1 = RFC 5321 timeouts, steps unused */
	struct scn_step	patience[SCN_MAX_STEPS];	/* ascending ms */
	unsigned	npatience;	/* entries in patience[] */
	double		pregreet_pct;	/* % of sessions that talk first */
	int		pipelining;	/* 1 = uses PIPELINING when offered */
	int		starttls;	/* 1 = uses STARTTLS when offered */
	uint64_t	retry_base_ms;	/* 4xx backoff, first delay, on the
					 * compressed clock (0 = no retry) */
	uint64_t	retry_max_ms;	/* backoff ceiling (0 = no retry) */
	uint64_t	retry_lifetime_ms; /* give up after (0 = no retry) */
	unsigned	concurrency;	/* sessions at once, <= the total cap */
	int		random_helo;	/* 1 = a fresh random HELO name */
	double		dnsbl_listed_pct; /* % of its addresses the DNS list
					 * names (-1 = the global share for
					 * zombies, 0 for the others) */
	char		rdns_domain[SCN_DOMAIN_MAX]; /* big_sender: forward-
					 * confirmed names live here ("" =
					 * none) */
};

struct scenario {
	char		file[256];	/* name it was parsed under */
	uint64_t	duration_ms;	/* length of the run */
	double		clock;		/* sender seconds per wall second, >= 1 */
	uint64_t	seed;		/* PRNG seed; same seed, same run */
	struct endpoint	daemon;		/* where the swarm connects */
	double		backend_reject_pct; /* % of spam the backend 550s */
	double		dnsbl_listed_pct; /* % of zombie addresses listed */
	unsigned	concurrency;	/* total sessions at once */
	unsigned	rate;		/* new sessions started a second */
	uint64_t	drain_ms;	/* after duration: wait this long for
					 * open sessions and retries */
	struct cidr	ranges[SCN_MAX_RANGES]; /* inside 198.18.0.0/15 or
					 * 2001:db8::/32 */
	unsigned	nranges;
	char		dns_domain[SCN_DOMAIN_MAX]; /* zone the local DNS
					 * server answers for */
	double		dnsbl_weight;	/* the list's dnsbl_sites weight, > 0
					 * (4 = a listing alone is hostile) */
	char		daemon_opts[SCN_MAX_OPTS][SCN_OPT_MAX]; /* extra
					 * mailshaper.conf lines, "name =
					 * value", in file order */
	unsigned	ndaemon_opts;
	struct population pops[SCN_MAX_POPS];
	unsigned	npops;
};

/* Parsing.  The caller owns the result and frees it with scenario_free(). */
struct scenario *scenario_load(const char *path, const struct persona_set *ps,
	    char *err, size_t errlen);
struct scenario *scenario_parse_buf(const char *name, const char *buf,
	    size_t len, const struct persona_set *ps, char *err, size_t errlen);
void	scenario_free(struct scenario *sc);

const char *scenario_kind_name(enum scn_kind kind);
const struct population *scenario_find(const struct scenario *sc,
	    const char *name);
const char *scenario_default_path(const char *name);

/* Addresses: population index idx (0 .. addresses-1) to a socket address. */
int	scenario_address(const struct scenario *sc, const struct population *p,
	    unsigned long idx, struct sockaddr_storage *ss);
int	scenario_is_listed(const struct scenario *sc,
	    const struct population *p, unsigned long idx);
double	scenario_listed_pct(const struct scenario *sc,
	    const struct population *p);

/* Reproducible draws from a caller-held splitmix64 state. */
uint64_t scenario_rng_next(uint64_t *rng);
double	scenario_rng_unit(uint64_t *rng);
int	scenario_draw_pct(uint64_t *rng, double pct);
uint64_t scenario_draw_patience(const struct population *p, uint64_t *rng);
enum scn_truth scenario_draw_truth(const struct population *p, uint64_t *rng);
const struct population *scenario_draw_population(const struct scenario *sc,
	    uint64_t *rng);
uint64_t scenario_retry_delay(const struct population *p, unsigned attempt);
uint64_t scenario_wall_ms(const struct scenario *sc, uint64_t sender_ms);

#endif
