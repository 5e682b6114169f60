/*
 * policy.h - the decision: inputs -> score -> class, with reasons;
 *	      and learning from outcomes and DNS block-list listings
 *
 * The policy reads only what it is given: a struct pol_input filled by
 * the caller (the session, feedback, a test, a benchmark) and the
 * configuration the input names.  It never sees a session and never reads
 * the daemon's globals; its only other input is the reputation cache
 * (rep_lookup()), and learning writes only to reputation (rep_update()).
 * The caller applies the verdict (class counts, limits, logging).
 */
#ifndef MS_POLICY_H
#define MS_POLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "log/evrec.h"

struct fp_result;
struct dnsbl_result;

/* Everything the decision reads. */
struct pol_input {
	const struct conf *cf;		/* thresholds, weights, map, classes */
	const struct sockaddr *peer;	/* the client (IPv4-mapped folded);
					   NULL: none */
	const struct fp_result *fp;	/* NULL: no saved SYN */
	const struct dnsbl_result *dnsbl; /* NULL: no answer yet */
	const char *domain;		/* verified organisational domain */
	int	violations;		/* protocol violations so far */
	const char *violation;		/* the last one (static text) */
	int	control;		/* -1: not drawn yet; else the
					   session's earlier draw (0/1) */
	double	explore_draw;		/* uniform in [0, 1), drawn once per
					   session by the caller */
	/* Session-stage inputs (issue 13) are added here. */
};

#define POL_REASONS_MAX	2048	/* bytes of reasons in a verdict */
#define POL_REASON_MAX	200	/* bytes of one reason */

/* What the decision says, and why. */
struct pol_verdict {
	char	class_name[CONF_NAME_MAX];
	double	score;
	int	control;		/* 1: exploration control group */
	int	static_class;		/* 1: client_class_map decided */
	int	nreasons;
	int	reasons_cut;		/* inputs' reasons were left out: no
					   room (the decision's own never are) */
	size_t	reasons_len;		/* bytes used in reasons */
	char	reasons[POL_REASONS_MAX]; /* each ended by NUL */
};

/*
 * pol_classify: fill v from in; never fails (default_class when nothing
 * applies).  Called again whenever an input changes; the caller passes
 * the earlier v->control back as in->control.
 * pol_learn: one outcome (OC_F_GOOD or OC_F_BAD, or OC_DEFERRED) counted
 * for every reputation key of the input; OC_LISTED never for the ip key;
 * returns the number of keys taught (0 for an outcome reputation does not
 * count, such as OC_BACKEND_ERROR).
 * pol_learn_listing: when a block list (positive weight) listed the
 * client, one OC_LISTED for each key kind not in `done` (bits
 * 1 << enum rep_keykind) and not ip; returns done plus the kinds taught.
 * pol_reason: the i-th reason of a verdict, or NULL.
 */
void	pol_classify(const struct pol_input *, struct pol_verdict *);
int	pol_learn(const struct pol_input *, enum outcome);
unsigned pol_learn_listing(const struct pol_input *, unsigned done);
const char *pol_reason(const struct pol_verdict *, int i);

#endif
