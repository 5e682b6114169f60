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
#include "rep/rep.h"

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

/* The learned patience a class's delay can follow (issue 12). */
struct pol_patience {
	double	seconds;		/* the q-quantile */
	double	n;			/* sessions behind it, decayed */
	double	q;			/* as asked, 0..1 */
	enum rep_patience kind;		/* as asked */
	enum rep_keykind key_kind;	/* the key it comes from */
	char	key[100];		/* that key as shown in reasons */
	char	reason[POL_REASON_MAX];	/* "patience rawsig 4:64:... p90
					   21.0s (n=830)": the caller adds
					   " -> banner 26.0s" */
};

/*
 * pol_patience: the q-quantile of the kind's histogram on the most
 * specific of the input's keys (ip, prefix_rawsig, prefix, domain,
 * rawsig, os) that at least patience_min_evidence sessions taught;
 * 0 and out filled, or -1 when no key has that much (the caller uses the
 * class's fixed value).  Reads the cache only (rep_lookup_patience()).
 * pol_first_contact: 1 when none of the input's ip, prefix and domain
 * keys has first_contact_min_good good evidence (delivered + ham,
 * decayed); 0 when one has, and always 0 for a client that
 * client_class_map decides.  A key not yet in the cache reads as no
 * history (its fetch is scheduled).
 * pol_learn_patience: at the end of a session that held a slot:
 * gave_up_s (< 0: it did not give up) teaches every key's "gaveup"
 * histogram; when bad (or a block list listed the client, which
 * pol_learn_patience checks itself) every key's "bad" histogram learns
 * gave_up_s, or duration_s when it did not give up.  Returns the number of
 * histogram updates.
 */
int	pol_patience(const struct pol_input *, enum rep_patience kind,
	    double q, struct pol_patience *out);
int	pol_first_contact(const struct pol_input *);
int	pol_learn_patience(const struct pol_input *, double gave_up_s,
	    double duration_s, int bad);

#endif
