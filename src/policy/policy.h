/*
 * policy.h - the policy hook: inputs -> class + reasons
 */
#ifndef MS_POLICY_H
#define MS_POLICY_H

struct sess;

void	pol_classify(struct sess *);
void	pol_violation(struct sess *, const char *what);

#endif
