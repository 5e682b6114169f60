/*
 * swarm_main.c - mailshaper-swarm's entry point and its subcommands
 *
 *   mailshaper-swarm run ...       (a scenario: swarm/driver.h)
 *   mailshaper-swarm personas [-P FILE] [--json]
 *   mailshaper-swarm backend ...   (the counting backend: swarm/countsink.h)
 *   mailshaper-swarm probe [-P FILE] [-p NAME[,NAME...]|all] [-n N]
 *       [-s FIRST_SRC] [-t SECONDS] [--netns new|here] [--addr A]
 *       [--addr6 A] [--no-addr] [--tun NAME] [--route PREFIX|none]
 *       [--route6 PREFIX|none] [--noop N] [--json] [-v] [ADDR:PORT]
 *
 * probe opens N sessions over the swarm's own TCP (swarm/utcp.h), session
 * i with personality i mod k from source address FIRST_SRC + i (IPv4, or
 * IPv6 with the last 32 bits counted; the target "[v6]:port" or
 * "v4:port" must be of the same family, and "all" then means every
 * personality that family allows); each reads
 * the SMTP banner, sends QUIT (after N pipelined NOOPs with --noop, which
 * lets a test fill the server's window), reads the reply and closes.  One line per
 * session on stdout (JSON with --json); exit 0 when every session got its
 * banner and closed cleanly.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fp/fp.h"
#include "swarm/countsink.h"
#include "swarm/driver.h"
#include "swarm/netns.h"
#include "swarm/persona.h"
#include "swarm/utcp.h"
#include "util/log.h"

#define PROBE_LINE_MAX	512		/* banner bytes kept */

struct probe_sess {
	struct probe	*pr;
	struct utcp_conn *c;		/* NULL once closed */
	const struct persona *p;
	union ipaddr	src;		/* port 0: the stack picks one */
	uint16_t	sport;
	int		connected;	/* 1 = handshake completed */
	int		quit_sent;	/* 1 = banner complete, QUIT sent */
	int		got_221;	/* 1 = QUIT answered */
	int		done;		/* 1 = closed() seen */
	const char	*result;	/* utcp_reason_name(), or "aborted" */
	char		banner[PROBE_LINE_MAX];	/* first banner line */
	char		line[PROBE_LINE_MAX];	/* line being assembled */
	size_t		linelen;
};

struct probe {
	struct event_base *base;
	struct utcp_stack *st;
	struct probe_sess *s;
	size_t		n, left;	/* sessions, sessions still open */
	long		noops;		/* NOOPs sent before QUIT */
	struct event	*deadline;
};

/* usage - the synopsis on stderr */
static int
usage(void)
{
	fprintf(stderr,
	    "usage: mailshaper-swarm run [-S SCENARIO] [-P FILE] [-w DIR] "
	    "[-o name=value]...\n"
	    "           [--netns new|here] [--mailshaper PATH] [--json] [-v]\n"
	    "       mailshaper-swarm personas [-P FILE] [--json]\n"
	    "       mailshaper-swarm backend [options]  (counting backend)\n"
	    "       mailshaper-swarm probe [-P FILE] [-p NAME,...|all] "
	    "[-n N] [-s FIRST_SRC]\n"
	    "           [-t SECONDS] [--netns new|here] [--addr A] "
	    "[--addr6 A] [--no-addr]\n"
	    "           [--tun NAME] [--route PREFIX|none] "
	    "[--route6 PREFIX|none]\n"
	    "           [--noop N] [--json] [-v] [ADDR:PORT]\n");
	return 2;
}

/* json_str - print s as a JSON string */
static void
json_str(const char *s)
{
	char buf[4 * PROBE_LINE_MAX];

	if (fp_json_str(buf, sizeof(buf), s) == -1)
		fputs("\"\"", stdout);
	else
		fputs(buf, stdout);
}

/* load_personas - the file given with -P, or the default one */
static int
load_personas(const char *path, struct persona_set *set)
{
	char err[512];

	if (path == NULL)
		path = persona_default_path();
	if (persona_load(path, set, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/* personas_main - list the personalities and their expected labels */
static int
personas_main(int argc, char **argv)
{
	struct persona_set set = { NULL, 0 };
	const char *path = NULL;
	int json = 0, i;
	size_t k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-P") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			return usage();
	}
	if (load_personas(path, &set) == -1)
		return 1;
	for (k = 0; k < set.n; k++) {
		const struct persona *p = &set.v[k];

		if (!json) {
			printf("%-10s %-52s p0f: %s; ours: %s\n", p->name,
			    p->sig, p->p0f_label, p->our_label);
			continue;
		}
		fputs("{\"name\":", stdout);
		json_str(p->name);
		fputs(",\"sig\":", stdout);
		json_str(p->sig);
		fputs(",\"p0f\":", stdout);
		json_str(p->p0f_label);
		fputs(",\"ours\":", stdout);
		json_str(p->our_label);
		fputs("}\n", stdout);
	}
	persona_set_free(&set);
	return 0;
}

/* probe_closed - a session ended; stop the loop after the last one */
static void
probe_closed(struct utcp_conn *c, enum utcp_reason why, void *arg)
{
	struct probe_sess *s = arg;

	(void)c;
	s->c = NULL;
	s->done = 1;
	s->result = utcp_reason_name(why);
	if (--s->pr->left == 0)
		event_base_loopbreak(s->pr->base);
}

/* probe_connected - the handshake is complete */
static void
probe_connected(struct utcp_conn *c, void *arg)
{
	struct probe_sess *s = arg;

	(void)c;
	s->connected = 1;
}

/* probe_line - one complete reply line from the server */
static void
probe_line(struct probe_sess *s)
{
	if (!s->quit_sent) {
		if (s->banner[0] == '\0')
			snprintf(s->banner, sizeof(s->banner), "%s", s->line);
		if (s->linelen >= 4 && s->line[3] == ' ') {
			long i;

			s->quit_sent = 1;
			for (i = 0; i < s->pr->noops; i++)
				utcp_send(s->c, "NOOP\r\n", 6);
			utcp_send(s->c, "QUIT\r\n", 6);
		}
	} else if (strncmp(s->line, "221", 3) == 0 && s->linelen >= 4 &&
	    s->line[3] == ' ') {
		s->got_221 = 1;
		utcp_close(s->c);	/* the server closes too */
	}
}

/* probe_data - bytes from the server, or its FIN (len 0) */
static void
probe_data(struct utcp_conn *c, const unsigned char *data, size_t len,
    void *arg)
{
	struct probe_sess *s = arg;
	size_t i;

	if (len == 0) {
		utcp_close(c);
		return;
	}
	for (i = 0; i < len && s->c != NULL; i++) {
		if (data[i] == '\n') {
			if (s->linelen > 0 && s->line[s->linelen - 1] == '\r')
				s->linelen--;
			s->line[s->linelen] = '\0';
			probe_line(s);
			s->linelen = 0;
		} else if (s->linelen < sizeof(s->line) - 1)
			s->line[s->linelen++] = (char)data[i];
	}
}

/* probe_deadline - give up on the sessions still open */
static void
probe_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct probe *pr = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(pr->base);
}

/* parse_ip - an IPv4 or IPv6 literal and a port into a socket address */
static int
parse_ip(const char *host, long port, union ipaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->sin.sin_addr) == 1) {
		a->sin.sin_family = AF_INET;
		a->sin.sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a->sin6.sin6_addr) == 1) {
		a->sin6.sin6_family = AF_INET6;
		a->sin6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

/* parse_target - "v4:port", "[v6]:port" or a bare address (port 25) */
static int
parse_target(const char *t, union ipaddr *dst)
{
	char host[64];
	const char *hs = t, *he, *portp = NULL, *c;
	long port = 25;
	char *end;

	if (*t == '[') {
		hs = t + 1;
		if ((he = strchr(hs, ']')) == NULL)
			return -1;
		if (he[1] == ':')
			portp = he + 2;
		else if (he[1] != '\0')
			return -1;
	} else if ((c = strrchr(t, ':')) != NULL && strchr(t, ':') == c) {
		he = c;			/* one colon: v4:port */
		portp = c + 1;
	} else
		he = t + strlen(t);	/* a bare IPv4 or IPv6 address */
	if ((size_t)(he - hs) >= sizeof(host))
		return -1;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (portp != NULL) {
		port = strtol(portp, &end, 10);
		if (*end != '\0' || port < 1 || port > 65535)
			return -1;
	}
	return parse_ip(host, port, dst);
}

/* nth_addr - FIRST_SRC + i (IPv6: added to the last 32 bits) */
static void
nth_addr(const union ipaddr *first, uint32_t i, union ipaddr *out)
{
	*out = *first;
	if (first->sa.sa_family == AF_INET)
		out->sin.sin_addr.s_addr =
		    htonl(ntohl(first->sin.sin_addr.s_addr) + i);
	else {
		uint32_t last;

		memcpy(&last, out->sin6.sin6_addr.s6_addr + 12, 4);
		last = htonl(ntohl(last) + i);
		memcpy(out->sin6.sin6_addr.s6_addr + 12, &last, 4);
	}
}

/* addr_text - an address without its port */
static const char *
addr_text(const union ipaddr *a, char *buf, size_t len)
{
	if (a->sa.sa_family == AF_INET6)
		return inet_ntop(AF_INET6, &a->sin6.sin6_addr, buf,
		    (socklen_t)len);
	return inet_ntop(AF_INET, &a->sin.sin_addr, buf, (socklen_t)len);
}

/* pick_personas - "all" or a comma list into an array of pointers */
static size_t
pick_personas(const struct persona_set *set, const char *list, int ver,
    const struct persona **out, size_t max)
{
	char buf[1024], *tok, *save = NULL;
	size_t n = 0, i;

	if (strcmp(list, "all") == 0) {
		for (i = 0; i < set->n && n < max; i++)
			if (set->v[i].ver == 0 || set->v[i].ver == ver)
				out[n++] = &set->v[i];
		if (n == 0)
			log_warnx("no personality for IPv%d", ver);
		return n;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok != NULL && n < max;
	    tok = strtok_r(NULL, ",", &save)) {
		if ((out[n] = persona_find(set, tok)) == NULL) {
			log_warnx("no personality '%s'", tok);
			return 0;
		}
		n++;
	}
	return n;
}

/* probe_report - one line per session; returns the failures */
static size_t
probe_report(const struct probe *pr, int json)
{
	size_t i, bad = 0;

	for (i = 0; i < pr->n; i++) {
		const struct probe_sess *s = &pr->s[i];
		char a[INET6_ADDRSTRLEN];
		int ok = s->connected && s->banner[0] != '\0' && s->done &&
		    strcmp(s->result, "done") == 0;

		bad += !ok;
		addr_text(&s->src, a, sizeof(a));
		if (!json) {
			printf("%-10s %s:%u %s %s banner=\"%s\"\n", s->p->name,
			    a, s->sport, ok ? "ok" : "FAIL", s->result,
			    s->banner);
			continue;
		}
		fputs("{\"persona\":", stdout);
		json_str(s->p->name);
		printf(",\"src\":\"%s\",\"sport\":%u,\"connected\":%s,"
		    "\"banner\":", a, s->sport, s->connected ? "true" : "false");
		json_str(s->banner);
		printf(",\"quit_answered\":%s,\"result\":",
		    s->got_221 ? "true" : "false");
		json_str(s->result);
		printf(",\"ok\":%s}\n", ok ? "true" : "false");
	}
	return bad;
}

/* probe_main - connect, read the banner, QUIT, close; report */
static int
probe_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "netns", required_argument, NULL, 'N' },
		{ "addr", required_argument, NULL, 'A' },
		{ "addr6", required_argument, NULL, 'a' },
		{ "no-addr", no_argument, NULL, 'X' },
		{ "route6", required_argument, NULL, 'r' },
		{ "tun", required_argument, NULL, 'T' },
		{ "route", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "noop", required_argument, NULL, 'O' },
		{ NULL, 0, NULL, 0 }
	};
	struct netns_conf nc = { 0, "192.0.2.25", "2001:db8::25", "tun0",
	    "198.18.0.0/15", "2001:db8::/32" };
	struct persona_set set = { NULL, 0 };
	const struct persona *pick[64];
	const char *path = NULL, *plist = "all", *first = "198.18.0.1";
	struct utcp_cb cb = { probe_connected, probe_data, probe_closed };
	struct probe pr;
	union ipaddr dst, src0;
	struct utcp_stats stats;
	long n = 0, secs = 10;
	size_t npick, i, bad;
	char err[512];
	int ch, json = 0, tunfd = -1, rc = 1;

	memset(&pr, 0, sizeof(pr));
	parse_ip("192.0.2.25", 25, &dst);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "P:p:n:s:t:v", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'P': path = optarg; break;
		case 'p': plist = optarg; break;
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 's': first = optarg; break;
		case 't': secs = strtol(optarg, NULL, 10); break;
		case 'v': log_set_verbose(1); break;
		case 'N':
			if (netns_parse_mode(optarg, &nc.new_ns) == -1)
				return usage();
			break;
		case 'A': nc.daemon_addr = optarg; break;
		case 'a': nc.daemon_addr6 = optarg; break;
		case 'X': nc.daemon_addr = nc.daemon_addr6 = NULL; break;
		case 'T': nc.tun_name = optarg; break;
		case 'R':
			nc.route4 = strcmp(optarg, "none") ? optarg : NULL;
			break;
		case 'r':
			nc.route6 = strcmp(optarg, "none") ? optarg : NULL;
			break;
		case 'j': json = 1; break;
		case 'O': pr.noops = strtol(optarg, NULL, 10); break;
		default: return usage();
		}
	}
	if (optind < argc && parse_target(argv[optind++], &dst) == -1) {
		log_warnx("bad target %s (want v4:port or [v6]:port)",
		    argv[optind - 1]);
		return 2;
	}
	if (optind != argc || secs < 1 || secs > 3600 || n < 0 || n > 60000 ||
	    pr.noops < 0 || pr.noops > 1000000)
		return usage();
	if (strcmp(first, "198.18.0.1") == 0 && dst.sa.sa_family == AF_INET6)
		first = "2001:db8:1::1";
	if (parse_ip(first, 0, &src0) == -1 ||
	    src0.sa.sa_family != dst.sa.sa_family) {
		log_warnx("bad source address %s (an IP of the target's "
		    "family)", first);
		return 2;
	}
	if (load_personas(path, &set) == -1)
		return 1;
	if ((npick = pick_personas(&set, plist,
	    dst.sa.sa_family == AF_INET6 ? 6 : 4, pick, 64)) == 0)
		goto out;
	if (n == 0)
		n = (long)npick;
	if (netns_setup(&nc, &tunfd, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if ((pr.base = event_base_new()) == NULL ||
	    (pr.st = utcp_stack_new(pr.base, tunfd)) == NULL ||
	    (pr.s = calloc((size_t)n, sizeof(*pr.s))) == NULL ||
	    (pr.deadline = evtimer_new(pr.base, probe_deadline, &pr)) ==
	    NULL) {
		log_warnx("out of memory");
		goto out;
	}
	pr.n = (size_t)n;
	for (i = 0; i < pr.n; i++) {
		struct probe_sess *s = &pr.s[i];

		s->pr = &pr;
		s->p = pick[i % npick];
		nth_addr(&src0, (uint32_t)i, &s->src);
		s->result = "aborted";
		s->c = utcp_connect(pr.st, &s->src, &dst, s->p, &cb, s, err,
		    sizeof(err));
		if (s->c == NULL) {
			log_warnx("session %zu: %s", i, err);
			continue;
		}
		s->sport = utcp_local_port(s->c);
		pr.left++;
	}
	{
		struct timeval tv = { secs, 0 };

		evtimer_add(pr.deadline, &tv);
	}
	if (pr.left > 0)
		event_base_dispatch(pr.base);
	for (i = 0; i < pr.n; i++)
		if (pr.s[i].c != NULL) {
			utcp_abort(pr.s[i].c);
			pr.s[i].c = NULL;
		}
	bad = probe_report(&pr, json);
	utcp_stats(pr.st, &stats);
	log_info("probe: %zu sessions, %zu failed; %llu packets out, %llu "
	    "in, %llu retransmits, %llu persist probes, %llu RSTs in", pr.n,
	    bad, (unsigned long long)stats.pkts_out,
	    (unsigned long long)stats.pkts_in,
	    (unsigned long long)stats.retransmits,
	    (unsigned long long)stats.persist_probes,
	    (unsigned long long)stats.rst_in);
	rc = bad == 0 ? 0 : 1;
out:
	if (pr.deadline != NULL)
		event_free(pr.deadline);
	utcp_stack_free(pr.st);
	free(pr.s);
	if (pr.base != NULL)
		event_base_free(pr.base);
	if (tunfd != -1)
		close(tunfd);
	persona_set_free(&set);
	return rc;
}

int
main(int argc, char **argv)
{
	log_init(LOG_TO_STDERR, "mailshaper-swarm");
	if (argc > 1 && strcmp(argv[1], "probe") == 0)
		return probe_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "personas") == 0)
		return personas_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "backend") == 0)
		return sink_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "run") == 0)
		return run_main(argc - 1, argv + 1);
	return usage();
}
