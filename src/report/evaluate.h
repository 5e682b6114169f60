/*
 * evaluate.h - `mailshaper evaluate`: which reputation keys predict spam
 *
 * See evaluate.c for the method and doc/internals/evaluate.md for why.
 */
#ifndef MS_EVALUATE_H
#define MS_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

/* Feature bits. */
#define EVAL_F_OS	0x01	/* the OS label */
#define EVAL_F_RAWSIG	0x02	/* the raw signature's canonical key */
#define EVAL_F_IP	0x04	/* the client address */
#define EVAL_F_PREFIX	0x08	/* its /24 (IPv4) or /64 (IPv6) */
#define EVAL_F_DNSBL	0x10	/* the set of DNSBL zones that listed it */
#define EVAL_NFEAT	5
#define EVAL_F_ALL	0x1f

#define EVAL_MAX_SETS	16	/* feature sets per run */
#define EVAL_SETNAME	64	/* longest feature-set name, NUL included */

struct eval_opts {
	double	train_fraction;		/* share of messages to train on */
	int	nsets;			/* feature sets in sets[] */
	unsigned sets[EVAL_MAX_SETS];	/* EVAL_F_* masks */
	char	names[EVAL_MAX_SETS][EVAL_SETNAME];
	int	max_warnings;		/* file:line warnings before silence */
	size_t	max_line;		/* longest line, bytes (0 = JL_MAX_LINE) */
	int64_t	session_max_age_ms;	/* flush a session unseen this long */
	size_t	max_pending;		/* messages waiting for their session */
	int	prefix_v4, prefix_v6;	/* prefix key lengths (rep_prefix_v4/6) */
};

/* One feature set's figures.  A rate is -1 when undefined (0/0). */
struct eval_result {
	char	features[EVAL_SETNAME];
	double	recall_0fp;	/* bad scored above every good message */
	double	recall_01fp;	/* bad flagged with <= 0.1% of good flagged */
	double	precision;	/* bad / flagged at the 0.1% FP point */
	double	threshold_01fp;	/* lowest flagged score there (log-odds) */
	uint64_t messages;	/* test messages scored */
	uint64_t bad, good;	/* of which bad and good */
};

struct eval_stats {
	unsigned long lines;	/* lines read in the first pass */
	unsigned long garbage;	/* lines skipped as unusable */
	uint64_t messages;	/* message records */
	uint64_t sessions;	/* session records */
	uint64_t feedback;	/* feedback records */
	uint64_t train, test;	/* labelled messages trained on / scored */
	uint64_t unlabelled;	/* deferred, backend_error, unknown outcome */
	uint64_t unjoined;	/* labelled messages without a session record */
	int64_t	split_ms;	/* train on time < split_ms (Unix ms) */
	size_t	keys;		/* distinct feature values learned */
	size_t	peak_pending;	/* most messages waiting for a session */
};

/* A distinct score and how many bad and good test messages got it. */
struct eval_point {
	double	score;
	uint64_t bad, good;
};

void	eval_opts_init(struct eval_opts *);
int	eval_parse_features(const char *list, struct eval_opts *, char *err,
	    size_t errlen);
int	eval_run(const char *path, const struct eval_opts *,
	    struct eval_result *res, struct eval_stats *, char *err,
	    size_t errlen);
void	eval_metrics(struct eval_point *, size_t n, struct eval_result *);
int	eval_rawsig_key(const char *raw, char *key, size_t len);
int	eval_prefix(const char *ip, int v4, int v6, char *out, size_t len);
int	eval_main(int argc, char **argv);

#endif
