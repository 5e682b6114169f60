/*
 * rep_bench.c - reputation update throughput, loop stalls, warm lookup cost
 *
 *   rep_bench [-s] [-n UPDATES] [-r RUNS] [-k session|unique] STORE
 *   rep_bench -l [-n LOOKUPS] [-r RUNS]
 *
 * STORE is a rep_store value: "sqlite:/path" (the file is removed before
 * each run) or "redis://host:port" (FLUSHALL before each run), or "memory".
 * Update mode: each run opens the store, calls rep_update() N times from
 * this thread (the event loop's role), then rep_close(), which returns when
 * every update is in the store; rate = N / (open .. close).  The producer
 * pauses (outside the timed calls) while the write-behind queue is over 90%
 * full, as a daemon producing faster than its store would drop instead.
 * Every rep_update() call is timed twice: wall clock (includes the thread
 * being preempted by anything else on the machine) and this thread's CPU
 * time (what the call itself costs); the longest of each is reported.
 * -s also brackets each call with getrusage(RUSAGE_THREAD) and reports the
 * longest wall time of the calls during which the thread was not preempted
 * (slower: use it for the stall figure, not for the rate).
 * Keys: "session" = the six keys of simulated sessions (100,000 client IPs
 * in 2,000 /24s, 300 raw signatures, 20 OS labels, 50 domains on 20% of
 * sessions: updates of hot keys coalesce within a batch); "unique" = every
 * update its own IP key (worst case: one row per update).
 * Lookup mode (-l): memory cache with 100,000 keys, N rep_lookup() calls on
 * random warm keys; ns per lookup and the longest single call.
 * Prints one line per run and the medians.  Nothing here fails: targets are
 * compared by bench/rep_bench.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <hiredis/hiredis.h>

#include "conf/conf.h"
#include "rep/rep.h"

#define NSESS_IP	100000
#define NRAWSIG		300
#define NOS		20
#define NDOMAIN		50

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* cpu_s - CPU time of this thread: a stall that is not preemption */
static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rng = 88172645463325252ULL;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* make_keys - n update keys of the chosen distribution */
static struct rep_key *
make_keys(size_t n, int unique)
{
	struct rep_key *k = calloc(n, sizeof(*k)), ks[REPK_NKINDS];
	struct sockaddr_in sin;
	char	sig[64], os[32], dom[32];
	size_t	i = 0;
	int	m, j, ip;

	if (k == NULL)
		return NULL;
	while (i < n) {
		if (unique) {
			k[i].kind = REPK_IP;
			snprintf(k[i].text, sizeof(k[i].text), "10.%zu.%zu.%zu",
			    (i >> 16) & 255, (i >> 8) & 255, i & 255);
			if (i >= 1 << 24)
				snprintf(k[i].text, sizeof(k[i].text), "u%zu", i);
			i++;
			continue;
		}
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		ip = rnd() % NSESS_IP;
		sin.sin_addr.s_addr = htonl(0x0a000000u | (uint32_t)(ip % 2000)
		    << 8 | (uint32_t)(ip / 2000));
		snprintf(sig, sizeof(sig), "4:%u+0:0:1460:mss,sok,ts:df:0",
		    rnd() % NRAWSIG);
		snprintf(os, sizeof(os), "OS %u", rnd() % NOS);
		snprintf(dom, sizeof(dom), "d%u.example", rnd() % NDOMAIN);
		m = rep_keys_for((struct sockaddr *)&sin, sig, os,
		    rnd() % 5 == 0 ? dom : NULL, ks);
		for (j = 0; j < m && i < n; j++)
			k[i++] = ks[j];
	}
	return k;
}

static void
reset_store(const char *spec)
{
	char	path[300], host[256];
	redisContext *c;
	redisReply *r;
	int	port;

	if (strncmp(spec, "sqlite:", 7) == 0) {
		snprintf(path, sizeof(path), "%s", spec + 7);
		unlink(path);
		strcat(path, "-wal");
		unlink(path);
		snprintf(path, sizeof(path), "%s-shm", spec + 7);
		unlink(path);
	} else if (sscanf(spec, "redis://%255[^:]:%d", host, &port) == 2) {
		struct timeval tv = { 2, 0 };

		c = redisConnectWithTimeout(host, port, tv);
		if (c != NULL && !c->err) {
			r = redisCommand(c, "FLUSHALL");
			freeReplyObject(r);
		}
		if (c != NULL)
			redisFree(c);
	}
}

static void
conf_for(struct conf *cf, const char *spec)
{
	memset(cf, 0, sizeof(*cf));
	snprintf(cf->rep_store, sizeof(cf->rep_store), "%s",
	    strcmp(spec, "memory") == 0 ? "" : spec);
	cf->rep_half_life = 7 * 86400000L;
	cf->rep_prefix_v4 = 24;
	cf->rep_prefix_v6 = 64;
	cf->rep_cache_size = 200000;
	cf->rep_key_ttl = 90 * 86400000L;
}

static int
bench_updates(const char *spec, size_t n, int runs, int unique, int classify)
{
	double	rate[16], stall[16], cstall[16], npstall[16];
	double	t0, t1, a, b, ca, cb, worst, cworst, npworst;
	struct rusage ra, rb;
	long	preempted;
	struct rep_counters c;
	struct rep_key *keys;
	struct conf cf;
	char	err[512];
	size_t	i;
	int	r;

	if ((keys = make_keys(n, unique)) == NULL)
		return 1;
	conf_for(&cf, spec);
	for (r = 0; r < runs; r++) {
		reset_store(spec);
		worst = cworst = npworst = 0;
		preempted = 0;
		t0 = now_s();
		if (rep_open(NULL, &cf, err, sizeof(err)) < 0) {
			fprintf(stderr, "rep_bench: %s\n", err);
			return 1;
		}
		for (i = 0; i < n; i++) {
			if ((i & 1023) == 0)
				for (;;) {
					rep_counters(&c);
					if (c.queue_depth < REP_QUEUE_MAX * 9
					    / 10)
						break;
					usleep(100);
				}
			if (classify)
				getrusage(RUSAGE_THREAD, &ra);
			ca = cpu_s();
			a = now_s();
			rep_update(&keys[i], i % 3 ? OC_DELIVERED : OC_SPAM,
			    1);
			b = now_s();
			cb = cpu_s();
			if (classify) {
				getrusage(RUSAGE_THREAD, &rb);
				if (rb.ru_nivcsw != ra.ru_nivcsw)
					preempted++;
				else if (b - a > npworst)
					npworst = b - a;
			}
			if (b - a > worst)
				worst = b - a;
			if (cb - ca > cworst)
				cworst = cb - ca;
		}
		rep_counters(&c);
		rep_close();
		t1 = now_s();
		rate[r] = n / (t1 - t0);
		stall[r] = worst * 1e3;
		cstall[r] = cworst * 1e3;
		npstall[r] = npworst * 1e3;
		printf("run %d: %s %s: %zu updates in %.3f s = %.0f/s, "
		    "longest rep_update %.3f ms wall, %.3f ms CPU, dropped "
		    "%lu, store errors %lu\n", r + 1, spec, unique ? "unique" :
		    "session", n, t1 - t0, rate[r], stall[r], cstall[r],
		    c.dropped, c.store_errors);
		if (classify)
			printf("run %d: longest rep_update not preempted %.3f "
			    "ms wall (%ld calls preempted by other processes)\n",
			    r + 1, npstall[r], preempted);
		fflush(stdout);
		if (c.dropped || c.store_errors)
			return 1;
	}
	printf("median: %s %s: %.0f updates/s, longest rep_update %.3f ms "
	    "wall, %.3f ms CPU", spec, unique ? "unique" : "session",
	    median(rate, runs), median(stall, runs), median(cstall, runs));
	if (classify)
		printf(", %.3f ms wall not preempted", median(npstall, runs));
	printf("\n");
	free(keys);
	return 0;
}

static int
bench_lookups(size_t n, int runs)
{
	double	ns[16], stall[16], t0, t1, a, b, worst, sum = 0;
	struct rep_key *keys;
	struct rep_est e;
	struct conf cf;
	char	err[512];
	size_t	i, nk = 100000;
	uint32_t *order;
	int	r;

	keys = make_keys(nk, 1);
	order = malloc(n * sizeof(*order));
	if (keys == NULL || order == NULL)
		return 1;
	for (i = 0; i < n; i++)
		order[i] = rnd() % nk;
	conf_for(&cf, "memory");
	if (rep_open(NULL, &cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "rep_bench: %s\n", err);
		return 1;
	}
	for (i = 0; i < nk; i++)
		rep_update(&keys[i], OC_DELIVERED, 1);
	for (r = 0; r < runs; r++) {
		t0 = now_s();
		for (i = 0; i < n; i++) {
			rep_lookup(&keys[order[i]], &e);
			sum += e.p_spam;
		}
		t1 = now_s();
		ns[r] = (t1 - t0) / n * 1e9;
		worst = 0;
		for (i = 0; i < n / 10; i++) {	/* per-call maximum */
			a = now_s();
			rep_lookup(&keys[order[i]], &e);
			b = now_s();
			if (b - a > worst)
				worst = b - a;
		}
		stall[r] = worst * 1e3;
		printf("run %d: %zu warm lookups over %zu keys: %.1f ns each, "
		    "longest %.3f ms\n", r + 1, n, nk, ns[r], stall[r]);
	}
	printf("median: warm rep_lookup %.1f ns, longest %.3f ms "
	    "(checksum %.0f)\n", median(ns, runs), median(stall, runs), sum);
	rep_close();
	free(keys);
	free(order);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t	n = 0;
	int	runs = 5, unique = 0, lookups = 0, classify = 0, ch;

	while ((ch = getopt(argc, argv, "ln:r:k:s")) != -1) {
		switch (ch) {
		case 's':
			classify = 1;
			break;
		case 'l':
			lookups = 1;
			break;
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'k':
			unique = strcmp(optarg, "unique") == 0;
			break;
		default:
			goto usage;
		}
	}
	if (runs < 1 || runs > 16)
		goto usage;
	if (lookups)
		return bench_lookups(n ? n : 10000000, runs);
	if (optind != argc - 1)
		goto usage;
	return bench_updates(argv[optind], n ? n : 1000000, runs, unique,
	    classify);

usage:
	fprintf(stderr, "usage: rep_bench [-s] [-n N] [-r RUNS] "
	    "[-k session|unique] STORE\n       rep_bench -l [-n N] [-r RUNS]\n");
	return 2;
}
