/*
 * dnsbl_bench.c - DNSBL cache: lookups per second with a warm cache
 *
 *   dnsbl_bench -s 127.0.0.1:PORT [-n entries] [-l lookups] [-r runs]
 *
 * Against a DNS list served on loopback (bench/dnsbl_bench.sh starts an
 * rbldnsd whose zone bench.test lists 10.0.0.0/17), this warms the cache
 * with the answers for n consecutive addresses from 10.0.0.0 (default
 * 100000: a third listed, the rest not listed and negatively cached),
 * with real queries through evdns.  Then, r times (default 5), it makes l
 * lookups (default 2000000) of addresses drawn at random from those n,
 * each a full dnsbl_lookup(): cache probe, the zero timer, the callback
 * from the event loop; up to 1000 requests are outstanding at once.  It
 * checks that no lookup sent a query, and prints each run and the median
 * in lookups per second.  Target (issue 4): at least 1,000,000 per second.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "dnsbl/dnsbl.h"
#include "util/log.h"

#define BATCH	1000

static struct event_base *base;
static long outstanding, listed, answered;

static void
done_cb(void *arg, const struct dnsbl_result *r)
{
	(void)arg;
	outstanding--;
	answered++;
	if (r->nhits > 0)
		listed++;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	const char *server = NULL;
	long n = 100000, lookups = 2000000, i, k;
	int runs = 5, ch, r;
	char ov[4][128], *ovp[4], err[256];
	struct sockaddr_in *sins;
	unsigned long q0, q1, ch0, ch1;
	uint64_t x = 88172645463325252ULL;
	double *rate, t0, median;
	struct conf *cf;
	struct timeval tv = {0, 300000};

	while ((ch = getopt(argc, argv, "s:n:l:r:")) != -1) {
		switch (ch) {
		case 's': server = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'l': lookups = atol(optarg); break;
		case 'r': runs = atoi(optarg); break;
		default: server = NULL; optind = argc; break;
		}
	}
	if (server == NULL || n <= 0 || lookups <= 0 || runs <= 0) {
		fprintf(stderr, "usage: dnsbl_bench -s ip:port [-n entries] "
		    "[-l lookups] [-r runs]\n");
		return 2;
	}
	log_init(LOG_TO_STDERR, "dnsbl_bench");
	snprintf(ov[0], sizeof(ov[0]), "dns_servers=%s", server);
	snprintf(ov[1], sizeof(ov[1]), "dnsbl_sites=bench.test*3");
	snprintf(ov[2], sizeof(ov[2]), "dnsbl_cache_size=%ld", n);
	snprintf(ov[3], sizeof(ov[3]), "dnsbl_negative_ttl=3600s");
	for (i = 0; i < 4; i++)
		ovp[i] = ov[i];
	if ((cf = conf_load(NULL, ovp, 4, err, sizeof(err))) == NULL) {
		fprintf(stderr, "dnsbl_bench: %s\n", err);
		return 2;
	}
	base = event_base_new();
	if (dnsbl_init(base, cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "dnsbl_bench: %s\n", err);
		return 2;
	}
	event_base_loopexit(base, &tv);		/* let the probe finish */
	event_base_dispatch(base);
	if (!dnsbl_enabled()) {
		fprintf(stderr, "dnsbl_bench: bench.test failed the probe\n");
		return 1;
	}
	sins = calloc((size_t)n, sizeof(*sins));
	for (i = 0; i < n; i++) {
		sins[i].sin_family = AF_INET;
		sins[i].sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
	}

	/* warm: every address once, through evdns */
	t0 = now_s();
	for (i = 0; i < n; ) {
		while (outstanding < 200 && i < n) {
			if (dnsbl_lookup((struct sockaddr *)&sins[i++], done_cb,
			    NULL) != NULL)
				outstanding++;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	while (outstanding > 0)
		event_base_loop(base, EVLOOP_ONCE);
	dnsbl_stats(&q0, NULL, NULL, NULL, &ch0);
	printf("warm: %ld addresses, %lu queries, %ld listed, %.2f s "
	    "(%.0f queries/s)\n", n, q0, listed, now_s() - t0,
	    (double)q0 / (now_s() - t0));

	rate = calloc((size_t)runs, sizeof(*rate));
	for (r = 0; r < runs; r++) {
		answered = 0;
		t0 = now_s();
		for (i = 0; i < lookups; i += BATCH) {
			for (k = 0; k < BATCH && i + k < lookups; k++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				if (dnsbl_lookup((struct sockaddr *)
				    &sins[x % (uint64_t)n], done_cb, NULL))
					outstanding++;
			}
			while (outstanding > 0)
				event_base_loop(base, EVLOOP_NONBLOCK);
		}
		rate[r] = (double)answered / (now_s() - t0);
		printf("run %d: %ld lookups, %.0f lookups/s (%.0f ns each)\n",
		    r + 1, answered, rate[r], 1e9 / rate[r]);
	}
	dnsbl_stats(&q1, NULL, NULL, NULL, &ch1);
	if (q1 != q0) {
		fprintf(stderr, "dnsbl_bench: %lu queries during the timed runs: "
		    "the cache is not warm\n", q1 - q0);
		return 1;
	}
	qsort(rate, (size_t)runs, sizeof(*rate), cmp_d);
	median = rate[runs / 2];
	printf("median: %.0f lookups/s over %d runs (cache hits %lu, "
	    "queries 0); target >= 1000000\n", median, runs, ch1 - ch0);
	dnsbl_shutdown();
	conf_free(cf);
	event_base_free(base);
	free(sins);
	free(rate);
	return median >= 1e6 ? 0 : 1;
}
