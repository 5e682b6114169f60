/*
 * dnsbl_probe.c - drive src/dnsbl/ without the daemon (black-box tests)
 *
 *   dnsbl_probe [-o name=value]... [-w ms] [-r] IP...
 *
 * Loads the configuration (defaults plus -o overrides, as the daemon's -o),
 * calls dnsbl_init(), runs the event loop for -w ms (default 300) so the
 * RFC 5782 probe can finish, then looks up each IP in turn and prints one
 * JSON result per line: {"ip":..,"enabled":..,"result":{...}}, or
 * "result":null when dnsbl_lookup() returned NULL.  With -r every IP is
 * looked up twice in a row (the second should come from the cache).  The
 * last line is {"stats":{...}}.  Exit 2 on a configuration error, with the
 * error on stderr.  Built by tests/blackbox/test_dnsbl.py against
 * $MAILSHAPER_BUILD/libmailshaper.a and libmscommon.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "conf/conf.h"
#include "dnsbl/dnsbl.h"
#include "util/log.h"

static struct event_base *base;
static int done;

/* got - print one result and stop the loop */
static void
got(void *arg, const struct dnsbl_result *r)
{
	char buf[2048];

	if (dnsbl_result_json(r, buf, sizeof(buf)) < 0)
		snprintf(buf, sizeof(buf), "\"too long\"");
	printf("{\"ip\":\"%s\",\"enabled\":1,\"result\":%s}\n",
	    (const char *)arg, buf);
	fflush(stdout);
	done = 1;
	event_base_loopbreak(base);
}

int
main(int argc, char **argv)
{
	char *ov[64], err[512];
	struct sockaddr_storage ss;
	struct timeval tv;
	struct conf *cf;
	unsigned long q, h, t, e, c;
	int nov = 0, wait_ms = 300, repeat = 1, ch, i, k, len;

	log_init(LOG_TO_STDERR, "dnsbl_probe");
	while ((ch = getopt(argc, argv, "o:w:rv")) != -1) {
		switch (ch) {
		case 'o':
			if (nov < 64)
				ov[nov++] = optarg;
			break;
		case 'w':
			wait_ms = atoi(optarg);
			break;
		case 'r':
			repeat = 2;
			break;
		case 'v':
			log_set_verbose(1);
			break;
		default:
			fprintf(stderr, "usage: dnsbl_probe [-o name=value] "
			    "[-w ms] [-r] IP...\n");
			return 2;
		}
	}
	if ((cf = conf_load(NULL, ov, nov, err, sizeof(err))) == NULL) {
		fprintf(stderr, "dnsbl_probe: %s\n", err);
		return 2;
	}
	base = event_base_new();
	if (dnsbl_init(base, cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "dnsbl_probe: %s\n", err);
		conf_free(cf);
		event_base_free(base);
		return 2;
	}
	tv.tv_sec = wait_ms / 1000;
	tv.tv_usec = (wait_ms % 1000) * 1000;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	for (i = optind; i < argc; i++) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		if (evutil_parse_sockaddr_port(argv[i], (struct sockaddr *)&ss,
		    &len) < 0) {
			fprintf(stderr, "dnsbl_probe: bad address %s\n", argv[i]);
			return 2;
		}
		for (k = 0; k < repeat; k++) {
			done = 0;
			if (dnsbl_lookup((struct sockaddr *)&ss, got,
			    argv[i]) == NULL) {
				printf("{\"ip\":\"%s\",\"enabled\":%d,"
				    "\"result\":null}\n", argv[i],
				    dnsbl_enabled());
				continue;
			}
			while (!done)
				event_base_loop(base, EVLOOP_ONCE);
		}
	}
	dnsbl_stats(&q, &h, &t, &e, &c);
	printf("{\"stats\":{\"queries\":%lu,\"hits\":%lu,\"timeouts\":%lu,"
	    "\"errors\":%lu,\"cache_hits\":%lu}}\n", q, h, t, e, c);
	dnsbl_shutdown();
	conf_free(cf);
	event_base_free(base);
	return 0;
}
