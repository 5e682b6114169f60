/*
 * countsink.h - the swarm's counting SMTP backend (mailshaper-swarm backend)
 *
 * An SMTP server that plays the downstream content filter: it reads each
 * message's ground truth from an "X-Swarm-Truth: spam|ham" line in the
 * message, answers 550 5.7.1 to a configured share of spam, 250 to the rest,
 * and counts what arrived by truth and by population.  See
 * doc/internals/countsink.md.
 */
#ifndef MS_COUNTSINK_H
#define MS_COUNTSINK_H

#include <stddef.h>
#include <stdint.h>

#define SINK_TRUTH_HDR	"X-Swarm-Truth:"	/* the truth marker's name */
#define SINK_POP_HDR	"X-Swarm-Population:"	/* the population label's */
#define SINK_POP_MAX	63	/* longest population name, bytes */
#define SINK_POP_NONE	"(none)"	/* key of unlabelled messages */
#define SINK_BP_MAX	10000	/* reject share in basis points (100%) */

enum sink_truth {
	SINK_UNKNOWN,		/* no valid marker seen */
	SINK_HAM,
	SINK_SPAM,
	SINK_NTRUTH
};

/* What the scanner has learnt from a message's lines so far. */
struct sink_scan {
	enum sink_truth truth;	/* first valid marker (SINK_UNKNOWN = none) */
	int	markers;	/* valid truth markers seen (a conflict if > 1
				 * and they disagree; the first one wins) */
	char	pop[SINK_POP_MAX + 1];	/* first valid label ("" = none) */
};

const char *sink_truth_name(enum sink_truth);
int	sink_truth_parse(const char *line, size_t len);
int	sink_pop_parse(const char *line, size_t len, char *out, size_t outlen);
void	sink_scan_init(struct sink_scan *);
void	sink_scan_line(struct sink_scan *, const char *line, size_t len);
uint64_t sink_mix(uint64_t);
int	sink_reject(uint64_t seed, uint64_t n, int bp);
int	sink_parse_pct(const char *, int *bp);
int	sink_main(int argc, char **argv);

#endif
