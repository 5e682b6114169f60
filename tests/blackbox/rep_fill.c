/*
 * rep_fill.c - fill a reputation store through the rep API, for the tests
 * of `mailshaper report --store` (tests/blackbox/test_report_store.py)
 *
 *   rep_fill REP_STORE HALF_LIFE_MS < updates
 *
 * Each input line is "T_MS KIND OUTCOME WEIGHT TEXT": at time T_MS (the
 * rep clock is frozen there) one rep_update() of key KIND:TEXT (KIND as
 * rep_keykind_name(), TEXT to the end of the line) with OUTCOME (as
 * outcome_name()) and WEIGHT.  rep_close() then writes everything;
 * exit 0, or 1 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "rep/rep.h"

int
main(int argc, char **argv)
{
	struct rep_counters rc;
	struct rep_key k;
	struct conf cf;
	char	line[512], kind[32], oc[32], err[256];
	long long t;
	double	w;
	int	n, i, j, lineno = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: rep_fill REP_STORE HALF_LIFE_MS\n");
		return 1;
	}
	memset(&cf, 0, sizeof(cf));
	snprintf(cf.rep_store, sizeof(cf.rep_store), "%s", argv[1]);
	cf.rep_half_life = atol(argv[2]);
	cf.rep_prefix_v4 = 24;
	cf.rep_prefix_v6 = 64;
	cf.rep_cache_size = 1000;
	cf.rep_key_ttl = 90 * 86400000L;
	if (rep_open(NULL, &cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "rep_open: %s\n", err);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lld %31s %31s %lf %n", &t, kind, oc, &w,
		    &n) != 4 || line[n] == '\0') {
			fprintf(stderr, "line %d: bad update\n", lineno);
			return 1;
		}
		for (i = 0; i < REPK_NKINDS &&
		    strcmp(kind, rep_keykind_name((enum rep_keykind)i)); i++)
			;
		for (j = 0; j < OC_NLEARN &&
		    strcmp(oc, outcome_name((enum outcome)j)); j++)
			;
		if (i == REPK_NKINDS || j == OC_NLEARN) {
			fprintf(stderr, "line %d: bad kind or outcome\n",
			    lineno);
			return 1;
		}
		k.kind = (enum rep_keykind)i;
		snprintf(k.text, sizeof(k.text), "%s", line + n);
		rep_set_clock(t);
		rep_update(&k, (enum outcome)j, w);
	}
	if (rep_sync(10000) < 0) {
		fprintf(stderr, "rep_sync: timed out\n");
		return 1;
	}
	rep_counters(&rc);
	rep_close();
	if (rc.dropped || rc.store_errors) {
		fprintf(stderr, "%lu dropped, %lu store errors\n", rc.dropped,
		    rc.store_errors);
		return 1;
	}
	return 0;
}
