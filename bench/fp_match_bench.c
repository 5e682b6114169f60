/*
 * fp_match_bench.c - in-process cost of fingerprinting one SYN
 *
 *   build/bench/fp_match_bench FILE.pcap [DB.fp]...
 *
 * Loads the databases (default: data/mailshaper.fp then /etc/p0f/p0f.fp),
 * reads every client SYN of the capture into memory, then times, over
 * enough passes to run about a second each:
 *   match   fp_match() on a parsed SYN (the matcher alone);
 *   result  fp_result_from_syn(): match + raw_sig + key + hash + link;
 *   bytes   fp_fingerprint_syn() on the IP header bytes: what the daemon
 *           calls with TCP_SAVED_SYN (parse + everything above).
 * Prints nanoseconds per SYN for each.  Single thread, CLOCK_MONOTONIC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp/fp.h"
#include "fp/match.h"
#include "fp/pcap_in.h"
#include "fp/sigdb.h"
#include "fp/syn.h"

struct rawsyn {
	size_t		off;	/* into the arena */
	size_t		len;
};

/* now_ns - monotonic clock in nanoseconds */
static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	const char *defdb[2];
	const char **dbs;
	size_t ndb, n = 0, cap = 0, acap = 0, alen = 0, i, pass, passes;
	struct fp_syn *syns = NULL;
	struct rawsyn *raws = NULL;
	unsigned char *arena = NULL;
	struct sigdb *db;
	struct fp_pcap *p;
	const unsigned char *ip;
	size_t iplen;
	char err[512];
	volatile long sink = 0;
	double t0, t;

	if (argc < 2) {
		fprintf(stderr, "usage: fp_match_bench FILE.pcap [DB.fp]...\n");
		return 2;
	}
	if (argc > 2) {
		dbs = (const char **)(argv + 2);
		ndb = (size_t)argc - 2;
	} else {
		ndb = sigdb_default_paths(defdb, 2);
		dbs = defdb;
	}
	if ((db = sigdb_load_files(dbs, ndb, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fp_match_bench: %s\n", err);
		return 1;
	}
	if ((p = fp_pcap_open_file(argv[1], NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fp_match_bench: %s\n", err);
		return 1;
	}
	while (fp_pcap_next(p, &ip, &iplen, err, sizeof(err)) == 1) {
		struct fp_syn s;

		if (fp_syn_parse(ip, iplen, &s, NULL, 0) == -1 ||
		    (s.flags & 0x17) != FP_TH_SYN)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			syns = realloc(syns, cap * sizeof(*syns));
			raws = realloc(raws, cap * sizeof(*raws));
			if (syns == NULL || raws == NULL)
				return 1;
		}
		if (alen + iplen > acap) {
			acap = (acap + iplen) * 2;
			if ((arena = realloc(arena, acap)) == NULL)
				return 1;
		}
		memcpy(arena + alen, ip, iplen);
		raws[n].off = alen;
		raws[n].len = iplen;
		alen += iplen;
		syns[n++] = s;
	}
	fp_pcap_close(p);
	if (n == 0) {
		fprintf(stderr, "fp_match_bench: no SYNs in %s\n", argv[1]);
		return 1;
	}
	passes = 2000000 / n + 1;
	printf("%zu SYNs, %zu signatures in %zu layout groups, %zu passes\n",
	    n, db->nsigs, db->ngroups, passes);

	t0 = now_ns();
	for (pass = 0; pass < passes; pass++)
		for (i = 0; i < n; i++) {
			struct fp_match m;

			fp_match(db, &syns[i], &m);
			sink += m.dist;
		}
	t = now_ns() - t0;
	printf("match   %7.1f ns/SYN  (fp_match)\n", t / (double)(n * passes));

	t0 = now_ns();
	for (pass = 0; pass < passes; pass++)
		for (i = 0; i < n; i++) {
			struct fp_result r;

			fp_result_from_syn(db, &syns[i], &r);
			sink += r.dist;
		}
	t = now_ns() - t0;
	printf("result  %7.1f ns/SYN  (fp_result_from_syn: match, raw_sig, "
	    "key, hash, link)\n", t / (double)(n * passes));

	t0 = now_ns();
	for (pass = 0; pass < passes; pass++)
		for (i = 0; i < n; i++) {
			struct fp_result r;

			if (fp_fingerprint_syn(db, arena + raws[i].off,
			    raws[i].len, &r, err, sizeof(err)) == 0)
				sink += r.dist;
		}
	t = now_ns() - t0;
	printf("bytes   %7.1f ns/SYN  (fp_fingerprint_syn: parse + result)\n",
	    t / (double)(n * passes));

	free(syns);
	free(raws);
	free(arena);
	sigdb_free(db);
	return sink == 42 ? 3 : 0;
}
