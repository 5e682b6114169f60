/*
 * feedback.c - turn downstream spam/ham verdicts into reputation updates
 *
 * Exports fb_open(), fb_close(), fb_remember() and fb_cli_main().
 *
 * The daemon remembers the last feedback_cache_size sessions (address,
 * raw signature hash, OS label, verified domain) in a ring, which is all
 * it needs to rebuild a session's reputation keys.  A verdict arrives over
 * HTTP on the loopback listener feedback_listen:
 *
 *	POST /feedback?id=SESSION[.MESSAGE]&verdict=spam|ham
 *
 * and updates every key of that session, and is written to the event log
 * as {"type":"feedback",...} for `mailshaper evaluate`.  Replies: 200 with
 * the number of keys updated, 404 for an id it does not remember, 400 for
 * a malformed request, 405 for another method.  `mailshaper feedback` is
 * the client: it takes a session id, or a message file whose trace header
 * names it.  The admin API (admin.c) serves the same handler at POST
 * /feedback behind its bearer token; feedback_listen remains as an alias
 * without a token, for configurations written before it.  The client
 * posts to -s HOST:PORT, else feedback_listen, else admin_listen (TCP or
 * unix:/path) with admin_token.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>

#include "admin/feedback.h"
#include "daemon/runtime.h"
#include "fp/fp.h"
#include "log/eventlog.h"
#include "log/evrec.h"
#include "policy/policy.h"
#include "util/addr.h"
#include "util/log.h"

struct fb_entry {
	char	id[16];			/* session id ("" = free slot) */
	union ipaddr peer;
	char	key_hash[17];		/* "" = no fingerprint */
	char	os[96];
	char	domain[64];
};

static struct {
	struct evhttp *http;
	struct fb_entry *ring;
	size_t	size, next;
	unsigned long verdicts, unknown;
} fb;

/* fb_remember - keep what feedback needs of an ending session */
void
fb_remember(const struct evr_session *s)
{
	struct fb_entry *e;

	if (fb.ring == NULL || !s->counted)
		return;
	e = &fb.ring[fb.next];
	fb.next = (fb.next + 1) % fb.size;
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", s->id);
	e->peer = s->peer;
	if (s->fp != NULL) {
		snprintf(e->key_hash, sizeof(e->key_hash), "%s", s->fp->key_hash);
		snprintf(e->os, sizeof(e->os), "%s", s->fp->os);
	}
	if (s->domain != NULL)
		snprintf(e->domain, sizeof(e->domain), "%s", s->domain);
}

/* fb_find - the remembered session with this id, newest first */
static const struct fb_entry *
fb_find(const char *id)
{
	size_t	i;

	for (i = 0; i < fb.size; i++) {
		const struct fb_entry *e =
		    &fb.ring[(fb.next + fb.size - 1 - i) % fb.size];

		if (e->id[0] == 0)
			return NULL;
		if (strcmp(e->id, id) == 0)
			return e;
	}
	return NULL;
}

/* fb_reply - a short JSON reply */
static void
fb_reply(struct evhttp_request *req, int code, const char *reason,
    const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	evbuffer_add(b, "\n", 1);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/*
 * fb_http_feedback - POST /feedback?id=...&verdict=spam|ham; the handler
 * of both the admin API and the feedback_listen alias
 */
void
fb_http_feedback(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq q;
	const struct fb_entry *e;
	const char *id, *verdict, *query;
	struct pol_input in;
	struct fp_result fp;
	struct evr_feedback f;
	struct evbuffer *b;
	char	sid[16];
	int	spam, n;

	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
		return fb_reply(req, 405, "Method Not Allowed",
		    "{\"error\":\"use POST\"}");
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	TAILQ_INIT(&q);
	if (query == NULL || evhttp_parse_query_str(query, &q) < 0)
		return fb_reply(req, 400, "Bad Request",
		    "{\"error\":\"need ?id=SESSION&verdict=spam|ham\"}");
	id = evhttp_find_header(&q, "id");
	verdict = evhttp_find_header(&q, "verdict");
	if (id == NULL || verdict == NULL || strlen(id) > 31 ||
	    strspn(id, "0123456789ABCDEFabcdef.") != strlen(id) ||
	    (strcmp(verdict, "spam") != 0 && strcmp(verdict, "ham") != 0)) {
		evhttp_clear_headers(&q);
		return fb_reply(req, 400, "Bad Request",
		    "{\"error\":\"need ?id=SESSION&verdict=spam|ham\"}");
	}
	spam = strcmp(verdict, "spam") == 0;
	snprintf(sid, sizeof(sid), "%.*s", (int)strcspn(id, "."), id);
	if ((e = fb_find(sid)) == NULL) {
		fb.unknown++;
		log_warnx("feedback: unknown session id %s", id);
		fb_reply(req, 404, "Not Found",
		    "{\"error\":\"unknown session id\",\"id\":\"%s\"}", sid);
		evhttp_clear_headers(&q);
		return;
	}
	/* The session's keys, as the policy derives them. */
	memset(&in, 0, sizeof(in));
	memset(&fp, 0, sizeof(fp));
	in.cf = ms->cf;
	in.peer = &e->peer.sa;
	if (*e->key_hash) {
		snprintf(fp.key_hash, sizeof(fp.key_hash), "%s", e->key_hash);
		snprintf(fp.os, sizeof(fp.os), "%s", e->os);
		in.fp = &fp;
	}
	in.domain = *e->domain ? e->domain : NULL;
	n = pol_learn(&in, spam ? OC_SPAM : OC_HAM);
	fb.verdicts++;
	memset(&f, 0, sizeof(f));
	gettimeofday(&f.time, NULL);
	f.session = sid;
	f.message = strchr(id, '.') ? id : NULL;
	f.verdict = spam ? OC_SPAM : OC_HAM;
	if ((b = evbuffer_new()) != NULL) {
		if (evr_feedback_json(&f, b) == 0)
			evlog_append(b);
		evbuffer_free(b);
	}
	log_info("feedback: %s is %s: %d keys updated", id, verdict, n);
	fb_reply(req, 200, "OK", "{\"id\":\"%s\",\"verdict\":\"%s\",\"keys\":%d}",
	    sid, verdict, n);
	evhttp_clear_headers(&q);
}

/* fb_open - the session ring and, if configured, the HTTP listener */
int
fb_open(struct event_base *base, const struct conf *cf, char *err,
    size_t errlen)
{
	struct endpoint ep;
	char	host[64];
	int	port;

	fb.size = (size_t)cf->feedback_cache_size;
	if (fb.size > 0 && (fb.ring = calloc(fb.size, sizeof(*fb.ring))) == NULL) {
		snprintf(err, errlen, "feedback_cache_size: out of memory");
		return -1;
	}
	if (*cf->feedback_listen == 0)
		return 0;
	if (addr_parse_endpoint(cf->feedback_listen, 0, &ep, err, errlen) < 0)
		return -1;
	if (addr_ntop((struct sockaddr *)&ep.ss, host, sizeof(host), &port) < 0 ||
	    !((ep.ss.ss_family == AF_INET && strncmp(host, "127.", 4) == 0) ||
	    strcmp(host, "::1") == 0)) {
		snprintf(err, errlen, "feedback_listen %s: must be a loopback "
		    "address", cf->feedback_listen);
		return -1;
	}
	if ((fb.http = evhttp_new(base)) == NULL ||
	    evhttp_bind_socket(fb.http, host, (uint16_t)port) < 0) {
		snprintf(err, errlen, "feedback_listen %s: cannot listen",
		    cf->feedback_listen);
		return -1;
	}
	evhttp_set_max_headers_size(fb.http, 8192);
	evhttp_set_max_body_size(fb.http, 4096);
	evhttp_set_timeout(fb.http, 10);
	evhttp_set_allowed_methods(fb.http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
	evhttp_set_cb(fb.http, "/feedback", fb_http_feedback, NULL);
	log_info("feedback listener on %s", cf->feedback_listen);
	return 0;
}

/* fb_close - at exit */
void
fb_close(void)
{
	if (fb.http != NULL)
		evhttp_free(fb.http);
	fb.http = NULL;
	free(fb.ring);
	fb.ring = NULL;
}

/*
 * The client: mailshaper feedback --spam|--ham [-c FILE | -s HOST:PORT]
 *				      SESSION-ID|MESSAGE-FILE
 */

/* fb_id_from_file - the id in the message's trace header */
static int
fb_id_from_file(const char *path, const char *header, char *id, size_t len)
{
	FILE   *fp = fopen(path, "r");
	char	line[1024];
	size_t	hlen = strlen(header);

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		char   *p;

		if (line[0] == '\r' || line[0] == '\n')
			break;		/* end of the header */
		if (strncasecmp(line, header, hlen) != 0 || line[hlen] != ':')
			continue;
		if ((p = strstr(line, "id=")) == NULL)
			continue;
		p += 3;
		snprintf(id, len, "%.*s", (int)strcspn(p, "; \t\r\n"), p);
		fclose(fp);
		return 0;
	}
	fclose(fp);
	errno = ENOENT;
	return -1;
}

/* fb_post - one HTTP/1.0 request; returns the status code or -1 */
static int
fb_post(const char *hostport, const char *token, const char *path,
    char *body, size_t len)
{
	struct endpoint ep;
	char	err[200], req[768];
	int	fd, n, code = -1;
	size_t	got = 0;

	if (addr_parse_endpoint(hostport, 0, &ep, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailshaper feedback: %s\n", err);
		return -1;
	}
	if ((fd = socket(ep.ss.ss_family, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&ep.ss, ep.len) < 0) {
		fprintf(stderr, "mailshaper feedback: cannot connect to %s: %s\n",
		    hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	n = snprintf(req, sizeof(req), "POST %s HTTP/1.0\r\nHost: %s\r\n"
	    "%s%s%sContent-Length: 0\r\n\r\n", path,
	    ep.ss.ss_family == AF_UNIX ? "localhost" : hostport,
	    *token ? "Authorization: Bearer " : "", token, *token ? "\r\n" : "");
	if (n < 0 || n >= (int)sizeof(req)) {
		close(fd);
		return -1;
	}
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	while (got + 1 < len && (n = (int)read(fd, body + got,
	    len - 1 - got)) > 0)
		got += (size_t)n;
	body[got] = 0;
	close(fd);
	if (sscanf(body, "HTTP/%*s %d", &code) != 1)
		return -1;
	return code;
}

/* fb_cli_main - `mailshaper feedback` */
int
fb_cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"spam", no_argument, NULL, 'S'},
		{"ham", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *server = NULL, *verdict = NULL;
	const char *token = "";
	char	id[64], path[128], body[2048], err[512];
	struct conf *cf = NULL;
	int	ch, code;

	while ((ch = getopt_long(argc, argv, "c:s:", opts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			verdict = "spam";
			break;
		case 'H':
			verdict = "ham";
			break;
		case 'c':
			conf_path = optarg;
			break;
		case 's':
			server = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (verdict == NULL || optind != argc - 1)
		goto usage;
	if ((cf = conf_load(conf_path, NULL, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mailshaper feedback: %s\n", err);
		return 1;
	}
	if (conf_token_load(cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailshaper feedback: %s\n", err);
		conf_free(cf);
		return 1;
	}
	/* -s, else the old feedback_listen, else the admin API. */
	if (server == NULL)
		server = *cf->feedback_listen ? cf->feedback_listen :
		    cf->admin_listen;
	if (server == cf->admin_listen)
		token = cf->admin_token;
	if (*server == 0) {
		fprintf(stderr, "mailshaper feedback: no admin_listen or "
		    "feedback_listen in %s and no -s HOST:PORT\n",
		    conf_path ? conf_path : "defaults");
		conf_free(cf);
		return 1;
	}
	if (access(argv[optind], R_OK) == 0) {
		if (fb_id_from_file(argv[optind], cf->trace_header, id,
		    sizeof(id)) < 0) {
			fprintf(stderr, "mailshaper feedback: %s: no %s header "
			    "with an id\n", argv[optind], cf->trace_header);
			conf_free(cf);
			return 1;
		}
	} else
		snprintf(id, sizeof(id), "%s", argv[optind]);
	snprintf(path, sizeof(path), "/feedback?id=%s&verdict=%s", id, verdict);
	if (strspn(id, "0123456789ABCDEFabcdef.") != strlen(id) || !*id) {
		fprintf(stderr, "mailshaper feedback: '%s' is not a session "
		    "id or a readable file\n", argv[optind]);
		conf_free(cf);
		return 1;
	}
	code = fb_post(server, token, path, body, sizeof(body));
	conf_free(cf);
	if (code == 200) {
		printf("%s: %s recorded\n", id, verdict);
		return 0;
	}
	if (code == 404)
		fprintf(stderr, "mailshaper feedback: %s: unknown session id "
		    "(not among the sessions the daemon remembers)\n", id);
	else
		fprintf(stderr, "mailshaper feedback: %s: the daemon answered "
		    "%d\n", id, code);
	return 1;
usage:
	fprintf(stderr, "usage: mailshaper feedback --spam|--ham [-c FILE | "
	    "-s HOST:PORT] SESSION-ID|MESSAGE-FILE\n");
	return 2;
}
