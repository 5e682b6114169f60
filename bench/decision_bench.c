/*
 * decision_bench.c - CPU cost of one connection's decision, warm cache
 *
 * Fills a struct pol_input the way a session does after its DNS list
 * answer (client address, fingerprint, a DNS list answer with one hit; no
 * verified domain), warms the reputation cache for its five keys (ip,
 * prefix, raw signature, OS label, prefix x raw signature), then times
 * pol_classify() -- static map check, DNS list weights, five reputation
 * lookups, score, threshold, reasons -- over many calls with
 * CLOCK_PROCESS_CPUTIME_ID.  No session and no daemon state: the input
 * and the verdict are all the decision sees.  Prints ns per decision for
 * each of RUNS runs and the median.  Target (issue 4): at most 5 us.
 * Then (issue 12) the same for what a session adds at connect when its
 * class follows patience: pol_patience() (the bad histogram's p90 on the
 * most specific key with evidence) and pol_first_contact().
 *
 * usage: build/bench/decision_bench [calls] [runs]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "policy/policy.h"
#include "rep/rep.h"

/* cpu_ns - process CPU time in ns */
static double
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* cmp - for qsort */
static int
cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	char	*ovr[] = { "rep_store=", "eventlog=" };
	long	calls = argc > 1 ? atol(argv[1]) : 1000000;
	int	runs = argc > 2 ? atoi(argv[2]) : 5, r, i;
	double	res[64];
	char	err[512];
	struct event_base *base = event_base_new();
	struct conf *cf;
	struct sockaddr_in peer;
	struct pol_input in;
	struct pol_verdict *v = calloc(1, sizeof(*v));
	struct pol_patience pp;
	long	sink = 0;
	struct fp_result *fp = calloc(1, sizeof(*fp));
	struct dnsbl_result *dr = calloc(1, sizeof(*dr));

	if (runs > 64)
		runs = 64;
	if ((cf = conf_load(NULL, ovr, 2, err, sizeof(err))) == NULL ||
	    rep_open(base, cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "decision_bench: %s\n", err);
		return 1;
	}
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.23", &peer.sin_addr);
	strcpy(fp->raw_sig, "4:57+7:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
	strcpy(fp->key, "4:64:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
	strcpy(fp->key_hash, "0123456789abcdef");
	strcpy(fp->os, "Linux 4.20 and newer");
	dr->nhits = 1;
	dr->score = 3;
	strcpy(dr->hits[0].zone, "zen.example");
	strcpy(dr->hits[0].answer, "127.0.0.2");
	dr->hits[0].weight = 3;
	memset(&in, 0, sizeof(in));
	in.cf = cf;
	in.peer = (const struct sockaddr *)&peer;
	in.fp = fp;
	in.dnsbl = dr;
	in.control = 0;		/* drawn earlier: not in the group */
	/* Warm: give every key some history, so lookups hit. */
	for (i = 0; i < 50; i++)
		(void)pol_learn(&in, i % 5 ? OC_ABANDONED : OC_DELIVERED);
	pol_classify(&in, v);
	printf("# class %s, score %+.2f, %d reasons\n", v->class_name,
	    v->score, v->nreasons);
	for (r = 0; r < runs; r++) {
		double	t0 = cpu_ns();

		for (i = 0; i < calls; i++)
			pol_classify(&in, v);
		res[r] = (cpu_ns() - t0) / (double)calls;
		printf("run %d: %.0f ns per decision\n", r + 1, res[r]);
	}
	qsort(res, (size_t)runs, sizeof(res[0]), cmp);
	printf("median: %.0f ns per decision (target <= 5000 ns)\n",
	    res[runs / 2]);
	/* Patience: the keys' bad histograms learn 50 sessions. */
	for (i = 0; i < 50; i++)
		(void)pol_learn_patience(&in, i % 3 ? 10 + i % 7 : -1, 40, 1);
	if (pol_patience(&in, REP_PAT_BAD, 0.9, &pp) == 0)
		printf("# %s; first contact %d\n", pp.reason,
		    pol_first_contact(&in));
	for (r = 0; r < runs; r++) {
		double	t0 = cpu_ns();

		for (i = 0; i < calls; i++) {
			(void)pol_patience(&in, REP_PAT_BAD, 0.9, &pp);
			sink += pol_first_contact(&in);
		}
		res[r] = (cpu_ns() - t0) / (double)calls;
		printf("patience run %d: %.0f ns per pol_patience + "
		    "pol_first_contact\n", r + 1, res[r]);
	}
	qsort(res, (size_t)runs, sizeof(res[0]), cmp);
	printf("median: %.0f ns per pol_patience + pol_first_contact%s\n",
	    res[runs / 2], sink < 0 ? "" : "");
	rep_close();
	conf_free(cf);
	free(dr);
	free(fp);
	free(v);
	event_base_free(base);
	return 0;
}
