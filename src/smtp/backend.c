/*
 * backend.c - lazy relay connection to the backend MTA, identity hand-over,
 *	       reply parsing, and the capability probe
 *
 * Exports bk_open(), bk_command(), bk_data(), bk_free(), bk_probe() and
 * bk_probe_cancel(); bk_fire_idle() is a test hook for fuzz/fuzz_session.c.
 *
 * A struct bk belongs to its session: the session frees it with bk_free(),
 * and the backend never frees the session.  Exactly one operation is
 * outstanding at a time; its callback runs once, with the reply or with -1.
 * After a failure callback the bk is dead: it is an error to issue another
 * operation on it (the session frees it and opens a new one if it wants).
 *
 * Opening goes: connect, [PROXY v2 header], greeting, EHLO, [STARTTLS, TLS,
 * EHLO], [XCLIENT with the attributes the backend offers, 220, EHLO], ready.
 * While idle for backend_keepalive the connection sends NOOP, so a slow
 * client never makes the backend time out.  bk_probe() runs the same dialogue
 * without a session to learn the EHLO keywords, at start and on reload.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "daemon/runtime.h"
#include "smtp/backend.h"
#include "util/addr.h"
#include "util/log.h"

#define BK_MAX_LINES	100
#define BK_PROBE_RETRY	10

enum bk_step {
	BK_CONNECT, BK_GREETING, BK_EHLO, BK_STARTTLS, BK_TLS_EHLO,
	BK_XCLIENT, BK_XCLIENT_EHLO, BK_READY, BK_OP, BK_DATA_CMD,
	BK_DATA_END, BK_NOOP, BK_DEAD,
};

struct bk {
	const struct evr_session *who;	/* the client; NULL for the probe */
	const union ipaddr *local;	/* the address it connected to */
	void	*arg;			/* for the owner's callbacks */
	struct bufferevent *bev;
	struct event *idle;		/* keepalive timer */
	enum bk_step step;
	bk_cb  *cb;			/* outstanding operation */
	struct evbuffer *reply;		/* lines of the reply being read */
	int	nlines;
	int	code;
	struct bk_caps caps;		/* from this connection's EHLO */
	char   *queued;			/* command waiting for a NOOP reply */
	struct evbuffer *queued_data;	/* content waiting to go after 354 */
	bk_cb  *queued_cb;
	int	queued_step;
	int	in_cb;			/* an owner callback is running */
	int	pooled;			/* idle in the connection cache */
	int	hand_over;		/* taken from the cache: report ready */
	int	doomed;			/* bk_free() called from that callback */
};

static struct bk *bk_prober;
static struct bk_caps bk_known;	/* the last probe's */
static struct event *bk_probe_timer;

/*
 * The connection cache: with backend_identity = none a finished session's
 * backend connection carries no client identity, so the next session may
 * use it, saving a connect, a greeting and an EHLO.  Connections idle in
 * the cache for at most BK_POOL_IDLE_MS.
 */
#define BK_POOL_MAX	64
#define BK_POOL_IDLE_MS	30000
static struct bk *bk_pool[BK_POOL_MAX];
static int bk_npool;

static void bk_pool_remove(struct bk *);

static void bk_readcb(struct bufferevent *, void *);
static void bk_eventcb(struct bufferevent *, short, void *);
static void bk_arm_idle(struct bk *);

/* bk_call - run the owner's callback; 0 if b was freed meanwhile */
static int
bk_call(struct bk *b, bk_cb *cb, int code, const char *text)
{
	b->in_cb++;
	cb(b->arg, code, text);
	if (--b->in_cb == 0 && b->doomed) {
		b->doomed = 0;
		bk_free(b, 1);
		return 0;
	}
	return !b->doomed;
}

/* bk_timeouts - reply timeout for the step that is now outstanding */
static void
bk_timeouts(struct bk *b, long ms_)
{
	struct timeval tv = { ms_ / 1000, (ms_ % 1000) * 1000 };

	bufferevent_set_timeouts(b->bev, &tv, &tv);
}

/* bk_fail - the backend failed: tell the owner once, then go dead */
static void
bk_fail(struct bk *b, const char *fmt, ...)
{
	char	text[256];
	va_list	ap;
	/* An operation queued behind a keepalive NOOP is owed its answer. */
	bk_cb  *cb = b->cb != NULL ? b->cb : b->queued_cb;

	b->queued_cb = NULL;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	b->step = BK_DEAD;
	b->cb = NULL;
	bufferevent_disable(b->bev, EV_READ | EV_WRITE);
	if (b->idle)
		event_del(b->idle);
	if (b->pooled) {
		log_debug("backend %s: cached connection closed: %s",
		    ms->cf->backend.text, text);
		bk_pool_remove(b);
		bk_free(b, 0);
		return;
	}
	if (b->who == NULL) {
		log_warnx("backend probe %s: %s", ms->cf->backend.text, text);
		bk_free(b, 0);
		bk_prober = NULL;
		if (bk_probe_timer) {
			struct timeval tv = { BK_PROBE_RETRY, 0 };

			evtimer_add(bk_probe_timer, &tv);
		}
		return;
	}
	if (cb != NULL)
		(void)bk_call(b, cb, -1, text);
}

/*
 * bk_send - send bytes; written straight to the socket when nothing is
 * queued and no TLS layer is in the way, so a command costs no EV_WRITE
 * arming.  What the kernel does not take is queued on the bufferevent.
 */
static void
bk_send(struct bk *b, struct evbuffer *data)
{
	struct evbuffer *out = bufferevent_get_output(b->bev);

	if (b->step != BK_CONNECT && bufferevent_get_underlying(b->bev) == NULL &&
	    evbuffer_get_length(out) == 0)
		(void)evbuffer_write(data, bufferevent_getfd(b->bev));
	if (evbuffer_get_length(data) > 0)
		evbuffer_add_buffer(out, data);
}

/* bk_write - send a command line (without CRLF) */
static void
bk_write(struct bk *b, const char *line)
{
	struct evbuffer *tmp = evbuffer_new();

	if (tmp == NULL) {
		evbuffer_add_printf(bufferevent_get_output(b->bev), "%s\r\n",
		    line);
		return;
	}
	evbuffer_add_printf(tmp, "%s\r\n", line);
	bk_send(b, tmp);
	evbuffer_free(tmp);
}

/* bk_writef - send a formatted command line (without CRLF) */
static void
bk_writef(struct bk *b, const char *fmt, ...)
{
	char	line[1100];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	bk_write(b, line);
}

/* bk_parse_caps - EHLO keywords of a 250 reply */
static void
bk_parse_caps(struct bk_caps *c, const char *text)
{
	const char *line = text;

	memset(c, 0, sizeof(*c));
	c->known = 1;
	/* Skip the first line: it is the greeting name. */
	while ((line = strstr(line, "\r\n")) != NULL) {
		const char *kw;
		char	word[64];
		size_t	n;

		line += 2;
		if (strlen(line) < 4)
			break;
		kw = line + 4;
		n = strcspn(kw, " \r\n");
		if (n >= sizeof(word))
			continue;
		memcpy(word, kw, n);
		word[n] = 0;
		if (strcasecmp(word, "PIPELINING") == 0)
			c->pipelining = 1;
		else if (strcasecmp(word, "8BITMIME") == 0)
			c->eightbit = 1;
		else if (strcasecmp(word, "SMTPUTF8") == 0)
			c->smtputf8 = 1;
		else if (strcasecmp(word, "CHUNKING") == 0)
			c->chunking = 1;
		else if (strcasecmp(word, "ENHANCEDSTATUSCODES") == 0)
			c->enhanced = 1;
		else if (strcasecmp(word, "STARTTLS") == 0)
			c->starttls = 1;
		else if (strcasecmp(word, "SIZE") == 0) {
			c->has_size = 1;
			c->size = kw[n] == ' ' ? strtol(kw + n + 1, NULL, 10) : 0;
			if (c->size < 0)
				c->size = 0;
		} else if (strcasecmp(word, "XCLIENT") == 0) {
			const char *a = kw + n;

			c->xclient = BK_XA_ANY;
			while (*a == ' ') {
				size_t	m;

				a++;
				m = strcspn(a, " \r\n");
				if (m == 4 && strncasecmp(a, "NAME", 4) == 0)
					c->xclient |= BK_XA_NAME;
				else if (m == 4 && strncasecmp(a, "ADDR", 4) == 0)
					c->xclient |= BK_XA_ADDR;
				else if (m == 4 && strncasecmp(a, "PORT", 4) == 0)
					c->xclient |= BK_XA_PORT;
				else if (m == 5 && strncasecmp(a, "PROTO", 5) == 0)
					c->xclient |= BK_XA_PROTO;
				else if (m == 4 && strncasecmp(a, "HELO", 4) == 0)
					c->xclient |= BK_XA_HELO;
				a += m;
			}
		}
	}
}

/* bk_xtext - RFC 3461 xtext encoding, for XCLIENT values */
static void
bk_xtext(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c < 33 || c > 126 || c == '+' || c == '=')
			evbuffer_add_printf(out, "+%02X", c);
		else
			evbuffer_add(out, v, 1);
	}
}

/* bk_send_xclient - XCLIENT with what the backend offers */
static void
bk_send_xclient(struct bk *b)
{
	const struct evr_session *s = b->who;
	struct evbuffer *out = bufferevent_get_output(b->bev);
	unsigned xa = b->caps.xclient;

	evbuffer_add_printf(out, "XCLIENT");
	if (xa & BK_XA_ADDR)
		evbuffer_add_printf(out, " ADDR=%s%s",
		    s->peer.sa.sa_family == AF_INET6 ? "IPV6:" : "", s->ip);
	if (xa & BK_XA_PORT)
		evbuffer_add_printf(out, " PORT=%d", s->port);
	if (xa & BK_XA_NAME) {
		evbuffer_add_printf(out, " NAME=");
		if (s->ptr_name != NULL)
			bk_xtext(out, s->ptr_name);
		else
			evbuffer_add_printf(out, "[UNAVAILABLE]");
	}
	if (xa & BK_XA_HELO) {
		evbuffer_add_printf(out, " HELO=");
		if (s->helo)
			bk_xtext(out, s->helo);
		else
			evbuffer_add_printf(out, "[UNAVAILABLE]");
	}
	if (xa & BK_XA_PROTO)
		evbuffer_add_printf(out, " PROTO=%s", s->esmtp ? "ESMTP" : "SMTP");
	evbuffer_add(out, "\r\n", 2);
}

/* bk_send_proxy - PROXY protocol v2 header for the client's connection */
static void
bk_send_proxy(struct bk *b)
{
	static const unsigned char sig[12] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
		0x54, 0x0a };
	const struct evr_session *s = b->who;
	const union ipaddr *local = b->local;
	struct evbuffer *out = bufferevent_get_output(b->bev);
	unsigned char hdr[16 + 36];
	size_t	len;

	memcpy(hdr, sig, 12);
	hdr[12] = 0x21;				/* version 2, PROXY */
	if (s->peer.sa.sa_family == AF_INET &&
	    local->sa.sa_family == AF_INET) {
		const struct sockaddr_in *p = &s->peer.sin;
		const struct sockaddr_in *l = &local->sin;

		hdr[13] = 0x11;			/* TCP over IPv4 */
		hdr[14] = 0;
		hdr[15] = 12;
		memcpy(hdr + 16, &p->sin_addr, 4);
		memcpy(hdr + 20, &l->sin_addr, 4);
		memcpy(hdr + 24, &p->sin_port, 2);
		memcpy(hdr + 26, &l->sin_port, 2);
		len = 28;
	} else if (s->peer.sa.sa_family == AF_INET6 &&
	    local->sa.sa_family == AF_INET6) {
		const struct sockaddr_in6 *p = &s->peer.sin6;
		const struct sockaddr_in6 *l = &local->sin6;

		hdr[13] = 0x21;			/* TCP over IPv6 */
		hdr[14] = 0;
		hdr[15] = 36;
		memcpy(hdr + 16, &p->sin6_addr, 16);
		memcpy(hdr + 32, &l->sin6_addr, 16);
		memcpy(hdr + 48, &p->sin6_port, 2);
		memcpy(hdr + 50, &l->sin6_port, 2);
		len = 52;
	} else {
		hdr[12] = 0x20;			/* LOCAL: no address */
		hdr[13] = 0;
		hdr[14] = 0;
		hdr[15] = 0;
		len = 16;
	}
	evbuffer_add(out, hdr, len);
}

/* bk_ehlo_name - the name we give in EHLO on this connection */
static const char *
bk_ehlo_name(struct bk *b)
{
	if (b->who != NULL && b->who->helo != NULL &&
	    ms->cf->backend_identity != IDENT_NONE)
		return b->who->helo;
	return ms->cf->myhostname;
}

/* bk_start_tls - wrap the connection after the backend's 220 to STARTTLS */
static int
bk_start_tls(struct bk *b)
{
	SSL    *ssl = SSL_new(ms->tls_client);
	struct bufferevent *tb;

	if (ssl == NULL)
		return -1;
	tb = bufferevent_openssl_filter_new(ms->base, b->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		return -1;
	}
	b->bev = tb;
	bufferevent_setcb(tb, bk_readcb, NULL, bk_eventcb, b);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	return 0;
}

/* bk_ready - the dialogue is set up: tell the owner */
static void
bk_ready(struct bk *b, const char *text)
{
	bk_cb  *cb = b->cb;

	if (b->who == NULL) {
		/* Probe: keep the keywords and hang up. */
		bk_known = b->caps;
		log_info("backend %s: probe ok: pipelining=%d size=%ld "
		    "8bitmime=%d smtputf8=%d chunking=%d xclient=%s starttls=%d",
		    ms->cf->backend.text, b->caps.pipelining, b->caps.size,
		    b->caps.eightbit, b->caps.smtputf8, b->caps.chunking,
		    b->caps.xclient ? "yes" : "no", b->caps.starttls);
		bk_free(b, 1);
		bk_prober = NULL;
		return;
	}
	b->step = BK_READY;
	b->cb = NULL;
	bk_arm_idle(b);
	(void)bk_call(b, cb, 250, text);
}

/* bk_reply - one complete reply arrived for the current step */
static void
bk_reply(struct bk *b, int code, const char *text)
{
	bk_cb  *cb;

	switch (b->step) {
	case BK_GREETING:
		if (code != 220)
			return bk_fail(b, "greeting: %.200s", text);
		bk_writef(b, "EHLO %s", ms->cf->myhostname);
		b->step = BK_EHLO;
		break;
	case BK_EHLO:
	case BK_TLS_EHLO:
	case BK_XCLIENT_EHLO:
		if (code != 250)
			return bk_fail(b, "EHLO: %.200s", text);
		bk_parse_caps(&b->caps, text);
		if (b->step == BK_EHLO && ms->cf->backend_tls) {
			if (!b->caps.starttls)
				return bk_fail(b, "backend_tls is set but the "
				    "backend does not offer STARTTLS");
			bk_write(b, "STARTTLS");
			b->step = BK_STARTTLS;
			break;
		}
		if (b->who != NULL && b->step != BK_XCLIENT_EHLO &&
		    ms->cf->backend_identity == IDENT_XCLIENT) {
			if (!(b->caps.xclient & BK_XA_ANY))
				return bk_fail(b, "backend_identity is xclient "
				    "but the backend does not offer XCLIENT");
			bk_send_xclient(b);
			b->step = BK_XCLIENT;
			break;
		}
		if (b->who != NULL && b->step == BK_EHLO &&
		    strcmp(bk_ehlo_name(b), ms->cf->myhostname) != 0) {
			/* Say the client's HELO name (PROXY, none). */
			bk_writef(b, "EHLO %s", bk_ehlo_name(b));
			b->step = BK_XCLIENT_EHLO;
			break;
		}
		bk_ready(b, text);
		break;
	case BK_STARTTLS:
		if (code != 220)
			return bk_fail(b, "STARTTLS: %.200s", text);
		if (bk_start_tls(b) < 0)
			return bk_fail(b, "cannot start TLS");
		bk_writef(b, "EHLO %s", ms->cf->myhostname);
		b->step = BK_TLS_EHLO;
		break;
	case BK_XCLIENT:
		/* Postfix answers 220 and wants a new EHLO. */
		if (code != 220 && code != 250)
			return bk_fail(b, "XCLIENT: %.200s", text);
		bk_writef(b, "EHLO %s", bk_ehlo_name(b));
		b->step = BK_XCLIENT_EHLO;
		break;
	case BK_NOOP:
		b->step = BK_READY;
		if (code != 250)
			return bk_fail(b, "NOOP: %.200s", text);
		if (b->queued != NULL || b->queued_data != NULL) {
			/* A command arrived while the NOOP was out. */
			b->step = b->queued_step;
			b->cb = b->queued_cb;
			b->queued_cb = NULL;
			if (b->queued) {
				bk_write(b, b->queued);
				free(b->queued);
				b->queued = NULL;
			}
			bk_timeouts(b, ms->cf->backend_timeout);
		} else
			bk_arm_idle(b);
		break;
	case BK_DATA_CMD:
		if (code == 354) {
			/* Send the spooled message and wait for the verdict. */
			bk_send(b, b->queued_data);
			evbuffer_free(b->queued_data);
			b->queued_data = NULL;
			b->step = BK_DATA_END;
			bk_timeouts(b, 2 * ms->cf->backend_timeout);
			break;
		}
		evbuffer_free(b->queued_data);
		b->queued_data = NULL;
		/*
		 * A 4xx or 5xx to DATA refuses the message: that is the
		 * verdict.  Anything else (a 2xx, a 3xx other than 354)
		 * would tell the client 2xx for content the backend never
		 * received: the backend is broken, and the client gets 451.
		 */
		if (code < 400)
			return bk_fail(b, "unexpected reply to DATA: %.200s",
			    text);
		/* FALLTHROUGH */
	case BK_OP:
	case BK_DATA_END:
		cb = b->cb;
		b->cb = NULL;
		b->step = BK_READY;
		bk_arm_idle(b);
		(void)bk_call(b, cb, code, text);
		break;
	default:
		return bk_fail(b, "unexpected reply %.200s", text);
	}
}

/* bk_readcb - assemble reply lines; one reply per callback round */
static void
bk_readcb(struct bufferevent *bev, void *arg)
{
	struct bk *b = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char   *line;
	size_t	n;

	while (b->step != BK_DEAD &&
	    (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		int	code, last, alive;
		char   *text;
		size_t	len;

		if (n < 3 || n > 1000 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) ||
		    (n > 3 && line[3] != ' ' && line[3] != '-')) {
			bk_fail(b, "malformed reply line \"%.60s\"", line);
			free(line);
			return;
		}
		code = atoi(line);
		last = n == 3 || line[3] == ' ';
		if (b->nlines > 0 && code != b->code) {
			free(line);
			bk_fail(b, "reply code changes within a reply");
			return;
		}
		if (++b->nlines > BK_MAX_LINES ||
		    evbuffer_get_length(b->reply) + n > BK_REPLY_MAX) {
			free(line);
			bk_fail(b, "reply too long");
			return;
		}
		b->code = code;
		evbuffer_add(b->reply, line, n);
		evbuffer_add(b->reply, "\r\n", 2);
		free(line);
		if (!last)
			continue;
		len = evbuffer_get_length(b->reply);
		if ((text = malloc(len + 1)) == NULL) {
			bk_fail(b, "out of memory");
			return;
		}
		evbuffer_remove(b->reply, text, len);
		text[len] = 0;
		b->nlines = 0;
		if (b->step == BK_READY || b->step == BK_CONNECT) {
			bk_fail(b, "unsolicited reply: %.60s", text);
			free(text);
			return;
		}
		b->in_cb++;
		bk_reply(b, code, text);
		free(text);
		alive = --b->in_cb > 0 || !b->doomed;
		if (!alive) {
			b->doomed = 0;
			bk_free(b, 1);
			return;
		}
	}
	if (b->step != BK_DEAD && evbuffer_get_length(in) > 1000)
		bk_fail(b, "reply line too long");
}

/* bk_eventcb - connected, closed, timed out or failed */
static void
bk_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct bk *b = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (b->step == BK_CONNECT) {
			if (b->who != NULL &&
			    ms->cf->backend_identity == IDENT_PROXY)
				bk_send_proxy(b);
			b->step = BK_GREETING;
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		bk_fail(b, "timeout in %s", b->step == BK_GREETING ?
		    "greeting" : b->step == BK_CONNECT ? "connect" : "reply");
	else if (what & BEV_EVENT_EOF)
		bk_fail(b, "connection closed by the backend");
	else if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		if (e)
			bk_fail(b, "TLS error: %s", ERR_reason_error_string(e));
		else
			bk_fail(b, "%s %s", b->step == BK_CONNECT ?
			    "cannot connect:" : "connection error:",
			    strerror(EVUTIL_SOCKET_ERROR()));
	}
}

/* bk_idle_cb - keep an idle backend session alive with NOOP */
static void
bk_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bk *b = arg;

	(void)fd;
	(void)what;
	if (b->pooled) {
		/* Idle too long in the cache. */
		bk_pool_remove(b);
		bk_free(b, 1);
		return;
	}
	if (b->hand_over) {
		bk_cb  *cb = b->cb;

		b->hand_over = 0;
		b->cb = NULL;
		bk_arm_idle(b);
		(void)bk_call(b, cb, 250, "250 reused\r\n");
		return;
	}
	if (b->step == BK_DEAD) {
		/* An operation was issued after the backend went away. */
		bk_cb  *cb = b->cb;

		b->cb = NULL;
		if (cb != NULL)
			(void)bk_call(b, cb, -1, "connection lost while idle");
		return;
	}
	if (b->step != BK_READY)
		return;
	bk_write(b, "NOOP");
	b->step = BK_NOOP;
	bk_timeouts(b, ms->cf->backend_timeout);
}

/* bk_arm_idle - (re)start the keepalive timer; no reply timeout when idle */
static void
bk_arm_idle(struct bk *b)
{
	struct timeval tv = { ms->cf->backend_keepalive / 1000,
	    (ms->cf->backend_keepalive % 1000) * 1000 };

	if (b->idle == NULL)
		return;
	bufferevent_set_timeouts(b->bev, NULL, NULL);
	evtimer_add(b->idle, &tv);
}

/* bk_new - connect to the configured backend */
static struct bk *
bk_new(const struct evr_session *s)
{
	struct bk *b = calloc(1, sizeof(*b));
	const struct endpoint *ep = &ms->cf->backend;

	if (b == NULL)
		return NULL;
	b->who = s;
	b->reply = evbuffer_new();
	b->bev = bufferevent_socket_new(ms->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s != NULL)
		b->idle = evtimer_new(ms->base, bk_idle_cb, b);
	if (b->reply == NULL || b->bev == NULL || (s != NULL && !b->idle)) {
		bk_free(b, 0);
		return NULL;
	}
	ms->nbackend++;
	b->step = BK_CONNECT;
	bufferevent_setcb(b->bev, bk_readcb, NULL, bk_eventcb, b);
	bufferevent_enable(b->bev, EV_READ | EV_WRITE);
	bk_timeouts(b, ms->cf->backend_connect_timeout);
	if (bufferevent_socket_connect(b->bev, (struct sockaddr *)&ep->ss,
	    (int)ep->len) < 0) {
		/* Reported through the event callback on the next round. */
		log_debug("backend connect %s failed at once", ep->text);
	}
	return b;
}

/* bk_open - start a backend session for s; ready(arg, 250|-1, text) later */
struct bk *
bk_open(const struct evr_session *s, const union ipaddr *local, void *arg,
    bk_cb *ready)
{
	struct bk *b;

	if (bk_npool > 0) {
		/* Reuse a cached connection; report it ready next round. */
		b = bk_pool[--bk_npool];
		b->pooled = 0;
		b->who = s;
		b->local = local;
		b->arg = arg;
		b->cb = ready;
		b->hand_over = 1;
		event_active(b->idle, EV_TIMEOUT, 0);
		return b;
	}
	if ((b = bk_new(s)) != NULL) {
		b->local = local;
		b->arg = arg;
		b->cb = ready;
	}
	return b;
}

/* bk_can_open - is a backend connection available (cached or new)? */
int
bk_can_open(void)
{
	return bk_npool > 0 || ms->nbackend < ms->cf->backend_max_connections;
}

/* bk_pool_remove - take b out of the cache */
static void
bk_pool_remove(struct bk *b)
{
	int	i;

	for (i = 0; i < bk_npool; i++)
		if (bk_pool[i] == b) {
			bk_pool[i] = bk_pool[--bk_npool];
			b->pooled = 0;
			return;
		}
}

/* bk_release - a session is done with b: cache it or close it */
void
bk_release(struct bk *b)
{
	struct timeval tv = { BK_POOL_IDLE_MS / 1000, 0 };

	if (b->in_cb || b->step != BK_READY || bk_npool == BK_POOL_MAX ||
	    ms->cf->backend_identity != IDENT_NONE || ms->stopping) {
		bk_free(b, 1);
		return;
	}
	b->who = NULL;
	b->local = NULL;
	b->arg = NULL;
	b->cb = NULL;
	b->pooled = 1;
	bk_pool[bk_npool++] = b;
	bufferevent_set_timeouts(b->bev, NULL, NULL);
	evtimer_add(b->idle, &tv);
}

/* bk_pool_flush - close every cached connection (reload, exit) */
void
bk_pool_flush(void)
{
	while (bk_npool > 0) {
		struct bk *b = bk_pool[--bk_npool];

		b->pooled = 0;
		bk_free(b, 1);
	}
}

/* bk_dead_op - the backend died while idle: fail the operation next round */
static void
bk_dead_op(struct bk *b, bk_cb *cb)
{
	b->cb = cb;
	event_active(b->idle, EV_TIMEOUT, 0);
}

/* bk_command - send one command line (no CRLF); cb gets the reply */
void
bk_command(struct bk *b, const char *line, bk_cb *cb)
{
	if (b->step == BK_DEAD) {
		bk_dead_op(b, cb);
		return;
	}
	if (b->step == BK_NOOP) {
		b->queued = strdup(line);
		b->queued_cb = cb;
		b->queued_step = BK_OP;
		return;
	}
	evtimer_del(b->idle);
	b->cb = cb;
	b->step = BK_OP;
	bk_write(b, line);
	bk_timeouts(b, ms->cf->backend_timeout);
}

/* bk_data - DATA, then content (ending in ".\r\n") after 354; b owns it */
void
bk_data(struct bk *b, struct evbuffer *content, bk_cb *cb)
{
	b->queued_data = content;
	if (b->step == BK_DEAD) {
		bk_dead_op(b, cb);
		return;
	}
	if (b->step == BK_NOOP) {
		b->queued = strdup("DATA");
		b->queued_cb = cb;
		b->queued_step = BK_DATA_CMD;
		return;
	}
	evtimer_del(b->idle);
	b->cb = cb;
	b->step = BK_DATA_CMD;
	bk_write(b, "DATA");
	bk_timeouts(b, ms->cf->backend_timeout);
}

/* bk_free - end the backend session; quit: say QUIT first if it is idle */
void
bk_free(struct bk *b, int quit)
{
	if (b == NULL)
		return;
	if (b->in_cb) {
		/* Called from the owner's callback: finish after it returns. */
		b->doomed = 1;
		b->who = NULL;
		b->cb = NULL;
		return;
	}
	if (b->bev != NULL) {
		if (quit && b->step == BK_READY &&
		    bufferevent_get_underlying(b->bev) == NULL) {
			/* Best effort; the socket closes right after. */
			bk_write(b, "QUIT");
		}
		bufferevent_free(b->bev);
		ms->nbackend--;
	}
	if (b->idle != NULL)
		event_free(b->idle);
	if (b->reply != NULL)
		evbuffer_free(b->reply);
	if (b->queued_data != NULL)
		evbuffer_free(b->queued_data);
	free(b->queued);
	free(b);
}

/* bk_probe_cb - retry timer */
static void
bk_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	bk_probe();
}

/* bk_probe - learn the backend's EHLO keywords (start, reload, retry) */
void
bk_probe(void)
{
	if (bk_probe_timer == NULL)
		bk_probe_timer = evtimer_new(ms->base, bk_probe_cb, NULL);
	if (bk_prober != NULL)
		return;
	bk_prober = bk_new(NULL);
}

/* bk_probe_cancel - at exit */
void
bk_probe_cancel(void)
{
	if (bk_prober != NULL) {
		bk_free(bk_prober, 0);
		bk_prober = NULL;
	}
	if (bk_probe_timer != NULL) {
		event_free(bk_probe_timer);
		bk_probe_timer = NULL;
	}
}

/*
 * bk_fire_idle - for the session fuzzer: run b's keepalive timer now if it
 * is armed, or (b NULL) every cached connection's; returns how many
 */
int
bk_fire_idle(struct bk *b)
{
	int	i, n = 0;

	if (b != NULL) {
		if (b->idle != NULL && evtimer_pending(b->idle, NULL)) {
			event_active(b->idle, EV_TIMEOUT, 0);
			n++;
		}
		return n;
	}
	for (i = 0; i < bk_npool; i++)
		if (evtimer_pending(bk_pool[i]->idle, NULL)) {
			event_active(bk_pool[i]->idle, EV_TIMEOUT, 0);
			n++;
		}
	return n;
}

/* bk_caps - what the last successful probe learned */
const struct bk_caps *
bk_caps(void)
{
	return &bk_known;
}

/* bk_set_caps - replace what the probe learned */
void
bk_set_caps(const struct bk_caps *c)
{
	bk_known = *c;
}
