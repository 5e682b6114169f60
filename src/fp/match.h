/*
 * match.h - the p0f matcher and the raw-signature renderer
 */
#ifndef MS_FP_MATCH_H
#define MS_FP_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "fp/sigdb.h"
#include "fp/syn.h"

struct fp_match {
	const struct sigdb_sig	 *sig;	 /* matched signature, NULL = none */
	const struct sigdb_label *label; /* its label, NULL = none */
	int			 fuzzy;	 /* 1 = fuzzy match */
	int			 dist;	 /* hop distance */
};

void	fp_match(const struct sigdb *db, const struct fp_syn *s,
	    struct fp_match *m);
const char *fp_match_kind(const struct fp_match *m);
int	fp_guess_dist(int ttl);
int	fp_win_multi(const struct fp_syn *s, int *use_mtu);
int	fp_render_sig(const struct fp_syn *s, int key, char *buf, size_t len);
uint64_t fp_fnv1a64(const char *s);

#endif
