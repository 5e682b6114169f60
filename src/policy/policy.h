/*
 * policy.h - the decision: inputs -> score -> class, with reasons;
 *	      and learning from outcomes and DNS block-list listings
 */
#ifndef MS_POLICY_H
#define MS_POLICY_H

struct sess;

enum pol_outcome {
	POL_DELIVERED, POL_REJECTED, POL_DEFERRED, POL_ABANDONED,
	POL_PROTOCOL_ERROR, POL_SPAM, POL_HAM,
	POL_LISTED,		/* a block list listed the client: never the ip key */
};

void	pol_classify(struct sess *);
void	pol_violation(struct sess *, const char *what);
void	pol_learn(const struct sess *, enum pol_outcome);
void	pol_learn_listing(struct sess *);

#endif
