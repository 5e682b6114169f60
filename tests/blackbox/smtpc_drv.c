/*
 * smtpc_drv.c - run src/swarm/smtpc.c sessions over kernel TCP sockets
 *
 *   smtpc_drv -c HOST:PORT [-n SESSIONS] [-m MSGS] [-r RCPTS]
 *       [--truth spam|ham|mix] [--pop NAME] [--size BYTES]
 *       [--patience MS|rfc] [--giveup abort|close] [--pipelining]
 *       [--pregreet] [--starttls] [--helo NAME|random] [--seed N] [-v]
 *   smtpc_drv --tlsgen CERT KEY CN
 *
 * Starts all sessions at once, each over a socket bufferevent (the test
 * transport of smtpc.h), and prints one JSON line per session as it ends,
 * then a {"summary":...} line with the counts by outcome.  Exit status 0,
 * or 2 on bad arguments.  --tlsgen only writes a self-signed certificate
 * and its key with src/swarm/tlsgen.c (for the daemon under test) and
 * exits 0, or 1 with the reason on stderr.  Built by tests/blackbox/test_smtpc.py against
 * $MAILSHAPER_BUILD/libswarm.a and libmscommon.a (with ASan+UBSan when that library was
 * built with them).
 *
 * The transport: send() is bufferevent_write(); close() stops reading and
 * frees the bufferevent (FIN) once its output is flushed; abort() sets
 * SO_LINGER 0 and frees it at once (RST).  EOF is smtpc_on_data(len 0),
 * an error smtpc_on_closed(reset 1).  Once the smtpc closed or aborted,
 * the transport never calls into it again.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "swarm/smtpc.h"
#include "swarm/tlsgen.h"
#include "util/log.h"

struct drv_conn {
	struct bufferevent *bev;	/* NULL once closed or aborted */
	struct smtpc	*s;		/* NULL once it stopped listening */
	int		id;
	struct smtpc_spec spec;
};

static struct event_base *base;
static int left;			/* sessions not yet done */
static size_t totals[SMTPC_NOUTCOME];

/* drv_free_bev - release the socket */
static void
drv_free_bev(struct drv_conn *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

/* drv_send - transport send() */
static int
drv_send(void *t, const void *data, size_t len)
{
	struct drv_conn *c = t;

	if (c->bev == NULL || bufferevent_write(c->bev, data, len) == -1)
		return -1;
	return 0;
}

/* drv_flushed - write callback while closing: free once drained */
static void
drv_flushed(struct bufferevent *bev, void *arg)
{
	struct drv_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		drv_free_bev(c);
}

/* drv_close - transport close(): flush, then FIN */
static void
drv_close(void *t)
{
	struct drv_conn *c = t;

	c->s = NULL;
	if (c->bev == NULL)
		return;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, drv_flushed, NULL, c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		drv_free_bev(c);
}

/* drv_abort - transport abort(): RST */
static void
drv_abort(void *t)
{
	struct drv_conn *c = t;
	struct linger lg = { 1, 0 };
	evutil_socket_t fd;

	c->s = NULL;
	if (c->bev == NULL)
		return;
	if ((fd = bufferevent_getfd(c->bev)) >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	drv_free_bev(c);
}

/* drv_read - server bytes to the session, one chunk at a time */
static void
drv_read(struct bufferevent *bev, void *arg)
{
	struct drv_conn *c = arg;
	unsigned char buf[4096];
	int n;

	while (c->s != NULL && c->bev == bev &&
	    (n = evbuffer_remove(bufferevent_get_input(bev), buf,
	    sizeof(buf))) > 0)
		smtpc_on_data(c->s, buf, (size_t)n);
}

/* drv_event - connected, EOF or error */
static void
drv_event(struct bufferevent *bev, short what, void *arg)
{
	struct drv_conn *c = arg;
	struct smtpc *s = c->s;

	(void)bev;
	if (s == NULL)
		return;
	if (what & BEV_EVENT_CONNECTED)
		smtpc_on_connected(s);
	else if (what & BEV_EVENT_EOF)
		smtpc_on_data(s, NULL, 0);
	else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		c->s = NULL;
		drv_free_bev(c);
		smtpc_on_closed(s, 1);
	}
}

/* drv_json_str - a JSON string */
static void
drv_json_str(const char *p)
{
	putchar('"');
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* drv_done - a session ended: print it, free it */
static void
drv_done(struct smtpc *s, const struct smtpc_result *r, void *arg)
{
	struct drv_conn *c = arg;
	size_t i;

	printf("{\"session\":%d,\"end\":\"%s\",\"connected\":%s,"
	    "\"esmtp\":%s,\"tls\":%s,"
	    "\"pipelined\":%s,\"banner_s\":%.3f,\"giveup_s\":%.3f,"
	    "\"waited_s\":%.3f,\"added_delay_s\":%.3f,\"duration_s\":%.3f,"
	    "\"last_stage\":\"%s\",\"last_code\":%d,\"defer_code\":%d,"
	    "\"last_reply\":", c->id, smtpc_end_name(r->end),
	    r->connected ? "true" : "false", r->esmtp ? "true" : "false",
	    r->tls ? "true" : "false", r->pipelined ? "true" : "false",
	    r->banner_s, r->giveup_s, r->waited_s, r->added_delay_s,
	    r->duration_s, smtpc_state_name(r->last_stage), r->last_code,
	    r->defer_code);
	drv_json_str(r->last_reply);
	printf(",\"msgs\":[");
	for (i = 0; i < r->nmsg; i++) {
		const struct smtpc_msg_result *m = &r->msg[i];

		printf("%s{\"outcome\":\"%s\",\"stage\":\"%s\",\"code\":%d,"
		    "\"rcpt_ok\":%u,\"giveup_s\":%.3f,\"added_delay_s\":%.3f}",
		    i ? "," : "", smtpc_outcome_name(m->outcome),
		    smtpc_state_name(m->stage), m->code, m->rcpt_ok,
		    m->giveup_s, m->added_delay_s);
		totals[m->outcome]++;
	}
	printf("]}\n");
	fflush(stdout);
	c->s = NULL;
	smtpc_free(s);
	if (--left == 0)
		event_base_loopexit(base, NULL);
}

/* drv_usage - bad arguments */
static int
drv_usage(const char *why)
{
	fprintf(stderr, "smtpc_drv: %s\nusage: smtpc_drv -c HOST:PORT [-n N] "
	    "[-m MSGS] [-r RCPTS] [--truth spam|ham|mix] [--pop NAME] "
	    "[--size BYTES] [--patience MS|rfc] [--giveup abort|close] "
	    "[--pipelining] [--pregreet] [--starttls] [--helo NAME|random] "
	    "[--seed N] [-v]\n       smtpc_drv --tlsgen CERT KEY CN\n", why);
	return 2;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "truth", required_argument, NULL, 't' },
		{ "pop", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 'z' },
		{ "patience", required_argument, NULL, 'P' },
		{ "giveup", required_argument, NULL, 'g' },
		{ "pipelining", no_argument, NULL, 'L' },
		{ "pregreet", no_argument, NULL, 'G' },
		{ "starttls", no_argument, NULL, 'T' },
		{ "tlsgen", no_argument, NULL, 'K' },
		{ "helo", required_argument, NULL, 'H' },
		{ "seed", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	const char *target = NULL, *truth = "spam", *pop = NULL;
	const char *helo = "smtpc.test";
	int nsess = 1, nmsg = 1, nrcpt = 1, pipelining = 0, pregreet = 0;
	int starttls = 0, tlsgen = 0;
	unsigned patience = SMTPC_PATIENCE_RFC;
	enum smtpc_giveup giveup = SMTPC_GIVEUP_ABORT;
	unsigned long long seed = 1;
	size_t size = 1000;
	struct sockaddr_in sin;
	struct drv_conn *conns;
	struct smtpc_msg *msgs;
	const char **rcpts;
	char host[64], *colon, err[256];
	int ch, i;

	log_init(LOG_TO_STDERR, "smtpc_drv");
	while ((ch = getopt_long(argc, argv, "c:n:m:r:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': target = optarg; break;
		case 'n': nsess = atoi(optarg); break;
		case 'm': nmsg = atoi(optarg); break;
		case 'r': nrcpt = atoi(optarg); break;
		case 't': truth = optarg; break;
		case 'p': pop = optarg; break;
		case 'z': size = (size_t)strtoul(optarg, NULL, 10); break;
		case 'P':
			patience = strcmp(optarg, "rfc") == 0 ?
			    SMTPC_PATIENCE_RFC : (unsigned)atoi(optarg);
			break;
		case 'g':
			giveup = strcmp(optarg, "close") == 0 ?
			    SMTPC_GIVEUP_CLOSE : SMTPC_GIVEUP_ABORT;
			break;
		case 'L': pipelining = 1; break;
		case 'G': pregreet = 1; break;
		case 'T': starttls = 1; break;
		case 'K': tlsgen = 1; break;
		case 'H': helo = strcmp(optarg, "random") ? optarg : NULL; break;
		case 'S': seed = strtoull(optarg, NULL, 10); break;
		case 'v': log_set_verbose(1); break;
		default: return drv_usage("bad option");
		}
	}
	if (tlsgen) {
		if (argc - optind != 3)
			return drv_usage("--tlsgen needs CERT KEY CN");
		if (tlsgen_selfsigned(argv[optind], argv[optind + 1],
		    argv[optind + 2], err, sizeof(err)) == -1) {
			fprintf(stderr, "smtpc_drv: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (target == NULL || (colon = strrchr(target, ':')) == NULL ||
	    (size_t)(colon - target) >= sizeof(host))
		return drv_usage("need -c HOST:PORT");
	if (nsess < 1 || nmsg < 1 || nrcpt < 1 || nrcpt > SMTPC_RCPT_MAX)
		return drv_usage("bad count");
	if (strcmp(truth, "spam") && strcmp(truth, "ham") && strcmp(truth, "mix"))
		return drv_usage("bad --truth");
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return drv_usage("HOST must be an IPv4 address");

	msgs = calloc((size_t)nmsg, sizeof(*msgs));
	rcpts = calloc((size_t)nrcpt, sizeof(*rcpts));
	conns = calloc((size_t)nsess, sizeof(*conns));
	if (msgs == NULL || rcpts == NULL || conns == NULL)
		return 1;
	for (i = 0; i < nmsg; i++) {
		msgs[i].truth = strcmp(truth, "ham") == 0 ? SMTPC_HAM :
		    strcmp(truth, "spam") == 0 ? SMTPC_SPAM :
		    i % 2 ? SMTPC_HAM : SMTPC_SPAM;
		msgs[i].population = pop;
		msgs[i].size = size;
	}
	for (i = 0; i < nrcpt; i++) {
		char *r = malloc(32);

		if (r == NULL)
			return 1;
		snprintf(r, 32, "rcpt%d@sink.test", i);
		rcpts[i] = r;
	}
	base = event_base_new();
	left = nsess;
	for (i = 0; i < nsess; i++) {
		struct drv_conn *c = &conns[i];
		struct smtpc_transport tr = { drv_send, drv_close, drv_abort, c };

		c->id = i;
		c->spec.helo = helo;
		c->spec.mail_from = "sender@smtpc.test";
		c->spec.rcpt = rcpts;
		c->spec.nrcpt = (size_t)nrcpt;
		c->spec.msg = msgs;
		c->spec.nmsg = (size_t)nmsg;
		c->spec.patience_ms = patience;
		c->spec.giveup = giveup;
		c->spec.pregreet = pregreet;
		c->spec.pipelining = pipelining;
		c->spec.starttls = starttls;
		c->spec.seed = seed + (unsigned long long)i;
		c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		c->s = smtpc_new(base, &c->spec, &tr, drv_done, c, err,
		    sizeof(err));
		if (c->bev == NULL || c->s == NULL) {
			fprintf(stderr, "smtpc_drv: %s\n", c->s ? "bufferevent" : err);
			return 2;
		}
		bufferevent_setcb(c->bev, drv_read, NULL, drv_event, c);
		bufferevent_enable(c->bev, EV_READ);
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin,
		    sizeof(sin)) == -1) {
			struct smtpc *s = c->s;

			c->s = NULL;
			drv_free_bev(c);
			smtpc_on_closed(s, 1);
		}
	}
	event_base_dispatch(base);
	printf("{\"summary\":{\"sessions\":%d", nsess);
	for (i = 0; i < SMTPC_NOUTCOME; i++)
		printf(",\"%s\":%zu", smtpc_outcome_name(i), totals[i]);
	printf("}}\n");
	for (i = 0; i < nsess; i++)
		drv_free_bev(&conns[i]);
	for (i = 0; i < nrcpt; i++)
		free((void *)rcpts[i]);
	free(rcpts);
	free(msgs);
	free(conns);
	event_base_free(base);
	smtpc_deinit();
	return 0;
}
