/*
 * smtpc.c - the swarm's SMTP client behaviour engine: one sender session
 *
 * Exports smtpc_new()/smtpc_free(), the transport entry points
 * smtpc_on_connected(), smtpc_on_data() and smtpc_on_closed(), the
 * result accessors declared in smtpc.h, smtpc_busy_reply() (is a 4xx a
 * refusal for want of backend capacity; counted in the result's
 * busy_4xx) and smtpc_deinit().
 *
 * The session is a queue of the replies it expects, oldest first; the
 * head is its state (enum smtpc_state).  Without pipelining the queue
 * holds one entry (two with pregreet: the banner and the EHLO reply).
 * With pipelining a transaction's MAIL, RCPTs and DATA go out in one
 * send() and their replies are taken in order.  One libevent timer holds
 * the patience for the head; it restarts whenever a new head starts
 * waiting (at send time, or when the previous reply completed).
 *
 * Replies are parsed strictly: "DDD SP text CRLF" or "DDD CRLF" as the
 * last line, "DDD-text CRLF" before it, the same code on every line, a
 * first digit 2 to 5, lines of at most SMTPC_REPLY_LINE_MAX bytes.
 * Anything else ends the session as a protocol error.
 *
 * STARTTLS (spec->starttls, offered in the EHLO reply) goes out alone.
 * On a 2xx the session makes an SSL client over two memory BIOs: bytes
 * from the transport are written into the read BIO, and whatever OpenSSL
 * puts into the write BIO is handed to the transport's send().  Server
 * bytes that came with the 220 go into the handshake too (a server does
 * not speak first in TLS, so they can only break it).  The handshake is
 * the state SMTPC_S_TLS, with its own patience; then EHLO again, and all
 * plaintext goes through SSL_write()/SSL_read().  A 4xx/5xx to STARTTLS
 * means going on in plaintext; a failed handshake or TLS record ends the
 * session with SMTPC_END_TLS.  An orderly close inside TLS sends
 * close_notify first.
 *
 * Memory: the smtpc owns its timers, its result, the per-message results
 * and its SSL (with both BIOs); the caller owns the spec (valid until
 * smtpc_free()) and the transport.  The client SSL_CTX is one per process,
 * made on first use and freed by smtpc_deinit().  It is an error to call
 * smtpc_on_*() after smtpc_free(), or to free the smtpc from inside a
 * transport callback other than done().
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "swarm/smtpc.h"
#include "util/log.h"

#define SMTPC_QMAX	(SMTPC_RCPT_MAX + 4)	/* pending replies at most */
#define SMTPC_TLS_CHUNK	16384	/* bytes moved per BIO_read/SSL_read */

enum smtpc_how {		/* what finishing does to the transport */
	SMTPC_HOW_NONE,		/* it is already gone */
	SMTPC_HOW_CLOSE,
	SMTPC_HOW_ABORT
};

enum smtpc_tls {		/* where the session is with TLS */
	SMTPC_TLS_OFF,		/* plaintext (STARTTLS not (yet) accepted) */
	SMTPC_TLS_HANDSHAKE,	/* STARTTLS answered 2xx: handshaking */
	SMTPC_TLS_UP		/* handshake done: all bytes through ssl */
};

struct smtpc {
	struct event_base *base;
	const struct smtpc_spec *spec;
	struct smtpc_transport tr;
	smtpc_done_fn	*done;
	void		*arg;
	struct event	*timer;		/* patience for the head */
	struct event	*done_ev;	/* zero-delay: calls done() */
	char		helo[256];	/* the name we greet with */

	enum smtpc_state state;		/* head of q, or CONNECT/DONE */
	enum smtpc_state q[SMTPC_QMAX];	/* expected replies, q[qh] first */
	size_t		qh, qn;
	double		t0;		/* smtpc_new(), monotonic seconds */
	double		wait_from;	/* when the head began waiting */
	double		added_at_decision; /* res.added_delay_s then */

	size_t		cur;		/* the message in hand (nmsg = none) */
	unsigned	rcpt_next;	/* next RCPT to send (no pipelining) */
	int		rcpt_code;	/* last RCPT reply's code */
	int		group_failed;	/* pipelined MAIL failed: drain */
	int		discard_dot;	/* DOT reply decides nothing */
	int		quitting;	/* QUIT sent for a failure: drain */
	enum smtpc_end	quit_end;	/* the end reported then */
	int		transport_gone;	/* closed, aborted or reported */
	int		finished;

	int		starttls_sent;	/* STARTTLS went out: never again */
	enum smtpc_tls	tls;
	SSL		*ssl;		/* NULL = plaintext; owns the BIOs */
	BIO		*rbio;		/* transport -> ssl (owned by ssl) */
	BIO		*wbio;		/* ssl -> transport (owned by ssl) */

	char		line[SMTPC_REPLY_LINE_MAX + 1];	/* partial line */
	size_t		linelen;
	int		replycode;	/* code of the reply being read (0 =
					 * none) */
	char		reply[SMTPC_REPLY_MAX + 1];	/* its text so far */
	size_t		replylen;

	struct smtpc_msg_result *msg;	/* spec->nmsg entries */
	struct smtpc_result res;
};

static const char *const state_names[SMTPC_NSTATE] = {
	"connect", "greeting", "ehlo", "helo", "starttls", "tls", "mail",
	"rcpt", "data", "dot", "rset", "quit", "done"
};
static const char *const outcome_names[SMTPC_NOUTCOME] = {
	"unsent", "delivered", "rejected", "deferred", "abandoned"
};
static const char *const end_names[SMTPC_NEND] = {
	"quit", "patience", "peer_closed", "reset", "protocol", "service",
	"send", "tls"
};

/* RFC 5321 4.5.3.2 client timeouts, by the reply awaited (ms). */
static const unsigned rfc_timeout_ms[SMTPC_NSTATE] = {
	[SMTPC_S_CONNECT] = SMTPC_CONNECT_MS,
	[SMTPC_S_GREETING] = 300000,
	[SMTPC_S_EHLO] = 300000,
	[SMTPC_S_HELO] = 300000,
	[SMTPC_S_STARTTLS] = 300000,
	[SMTPC_S_TLS] = 300000,		/* RFC 5321 sets none: as STARTTLS */
	[SMTPC_S_MAIL] = 300000,
	[SMTPC_S_RCPT] = 300000,
	[SMTPC_S_DATA] = 120000,
	[SMTPC_S_DOT] = 600000,
	[SMTPC_S_RSET] = 300000,
	[SMTPC_S_QUIT] = 300000,
	[SMTPC_S_DONE] = 0
};

static void smtpc_finish(struct smtpc *, enum smtpc_end, enum smtpc_how);
static void smtpc_start_message(struct smtpc *);
static void smtpc_plain_input(struct smtpc *, const unsigned char *, size_t);
static void smtpc_tls_input(struct smtpc *, const unsigned char *, size_t);

static SSL_CTX *smtpc_ssl_ctx;	/* shared by all sessions; lazily made */

/* smtpc_now - monotonic seconds */
static double
smtpc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* smtpc_mix - splitmix64 step */
static uint64_t
smtpc_mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* smtpc_state_name - the state's name for logs and results */
const char *
smtpc_state_name(enum smtpc_state st)
{
	return (unsigned)st < SMTPC_NSTATE ? state_names[st] : "?";
}

/* smtpc_outcome_name - the outcome's name */
const char *
smtpc_outcome_name(enum smtpc_outcome o)
{
	return (unsigned)o < SMTPC_NOUTCOME ? outcome_names[o] : "?";
}

/* smtpc_end_name - the end's name */
const char *
smtpc_end_name(enum smtpc_end e)
{
	return (unsigned)e < SMTPC_NEND ? end_names[e] : "?";
}

/* smtpc_stage_timeout_ms - how long the spec waits for this reply */
unsigned
smtpc_stage_timeout_ms(const struct smtpc_spec *spec, enum smtpc_state st)
{
	if ((unsigned)st >= SMTPC_NSTATE || st == SMTPC_S_DONE)
		return 0;
	if (spec->patience_ms != SMTPC_PATIENCE_RFC)
		return spec->patience_ms;
	return rfc_timeout_ms[st];
}

/* smtpc_random_helo - a bot's random HELO name: 6 to 12 letters */
void
smtpc_random_helo(uint64_t seed, char *out, size_t outlen)
{
	uint64_t x = seed ^ 0x68656c6fULL;
	size_t n, i;

	if (outlen == 0)
		return;
	n = 6 + smtpc_mix(&x) % 7;
	if (n >= outlen)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)('a' + smtpc_mix(&x) % 26);
	out[n] = '\0';
}

/* smtpc_dotstuff - a copy with a '.' added before each line's leading '.' */
char *
smtpc_dotstuff(const char *in, size_t len, size_t *outlen)
{
	size_t i, n = 0, extra = 0;
	char *out;

	for (i = 0; i < len; i++)
		if (in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			extra++;
	if ((out = malloc(len + extra + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			out[n++] = '.';
		out[n++] = in[i];
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* smtpc_message - message i of the spec, unstuffed, CRLF lines */
char *
smtpc_message(const struct smtpc_spec *spec, size_t i, size_t *len)
{
	const struct smtpc_msg *m = &spec->msg[i];
	uint64_t x = spec->seed * 31 + i;
	char hdr[1024];
	size_t n, want, cap, k;
	int h;
	char *out;

	h = snprintf(hdr, sizeof(hdr),
	    "From: <%s>\r\nTo: <%s>\r\nSubject: swarm message %zu\r\n"
	    "Message-ID: <%016llx.%zu@swarm.invalid>\r\n"
	    "X-Swarm-Truth: %s\r\n%s%s%s\r\n",
	    spec->mail_from, spec->rcpt[0], i, (unsigned long long)spec->seed,
	    i, m->truth == SMTPC_SPAM ? "spam" : "ham",
	    m->population ? "X-Swarm-Population: " : "",
	    m->population ? m->population : "", m->population ? "\r\n" : "");
	if (h < 0 || (size_t)h >= sizeof(hdr))
		return NULL;
	want = m->size > (size_t)h ? m->size : (size_t)h;
	cap = want + 8;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	memcpy(out, hdr, (size_t)h);
	n = (size_t)h;
	for (k = 0; n < want; k++) {
		size_t rem = want - n, c, j;

		if (rem >= 77)
			c = 72;			/* a full line, >= 3 left */
		else if (rem > 74)
			c = rem - 5;		/* leaves a 3-byte line */
		else if (rem >= 2)
			c = rem - 2;		/* the last line, exact */
		else
			c = 0;			/* 1 byte left: one over */
		for (j = 0; j < c; j++)
			out[n + j] = (char)("abcdefghijklmnopqrstuvwxyz0123456789 "
			    [smtpc_mix(&x) % 37]);
		if (c > 0 && k % 7 == 3)
			out[n] = '.';		/* exercises dot-stuffing */
		n += c;
		out[n++] = '\r';
		out[n++] = '\n';
	}
	out[n] = '\0';
	*len = n;
	return out;
}

/* smtpc_tls_log - log OpenSSL's error queue for what failed, clear it */
static void
smtpc_tls_log(struct smtpc *s, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "no OpenSSL reason";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_debug("smtpc %p: %s: %s", (void *)s, what, buf);
	ERR_clear_error();
}

/* smtpc_tls_flush - hand what OpenSSL wrote to the transport; 0, or -1
 * when send() failed (the caller finishes the session) */
static int
smtpc_tls_flush(struct smtpc *s)
{
	unsigned char buf[SMTPC_TLS_CHUNK];
	int n;

	if (s->wbio == NULL)
		return 0;
	while (BIO_ctrl_pending(s->wbio) > 0) {
		if ((n = BIO_read(s->wbio, buf, sizeof(buf))) <= 0)
			break;
		if (s->transport_gone || s->tr.send(s->tr.t, buf, (size_t)n) == -1)
			return -1;
	}
	return 0;
}

/* smtpc_send - hand bytes to the transport (through TLS once it is up);
 * 0, or -1 after finishing */
static int
smtpc_send(struct smtpc *s, const char *data, size_t len)
{
	if (s->transport_gone)
		return -1;
	while (s->tls == SMTPC_TLS_UP && len > 0) {	/* a chunk at a time:
							 * wbio stays small */
		int chunk = len > SMTPC_TLS_CHUNK ? SMTPC_TLS_CHUNK : (int)len;

		ERR_clear_error();
		if (SSL_write(s->ssl, data, chunk) <= 0) {
			smtpc_tls_log(s, "SSL_write");
			smtpc_finish(s, SMTPC_END_TLS, SMTPC_HOW_ABORT);
			return -1;
		}
		if (smtpc_tls_flush(s) == -1) {
			log_debug("smtpc %p: send failed", (void *)s);
			smtpc_finish(s, SMTPC_END_SEND, SMTPC_HOW_ABORT);
			return -1;
		}
		data += chunk;
		len -= (size_t)chunk;
	}
	if (s->tls == SMTPC_TLS_UP)
		return 0;
	if (s->tr.send(s->tr.t, data, len) == -1) {
		log_debug("smtpc %p: send failed", (void *)s);
		smtpc_finish(s, SMTPC_END_SEND, SMTPC_HOW_ABORT);
		return -1;
	}
	return 0;
}

/* smtpc_arm - (re)start the patience timer for the current state */
static void
smtpc_arm(struct smtpc *s)
{
	unsigned ms = smtpc_stage_timeout_ms(s->spec, s->state);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_del(s->timer);
	if (s->state != SMTPC_S_DONE)
		evtimer_add(s->timer, &tv);
}

/* smtpc_enter_state - make st the awaited reply; log, start its clock */
static void
smtpc_enter_state(struct smtpc *s, enum smtpc_state st)
{
	log_debug("smtpc %p: %s -> %s", (void *)s, smtpc_state_name(s->state),
	    smtpc_state_name(st));
	s->state = st;
	s->wait_from = smtpc_now();
	smtpc_arm(s);
}

/* smtpc_expect - queue a reply; it becomes the state if the queue was empty */
static void
smtpc_expect(struct smtpc *s, enum smtpc_state st)
{
	if (s->qn == SMTPC_QMAX) {		/* cannot happen: nrcpt bound */
		log_warnx("smtpc %p: reply queue full", (void *)s);
		return;
	}
	s->q[s->qn++] = st;
	if (s->qn - s->qh == 1)
		smtpc_enter_state(s, st);
}

/* smtpc_pop - drop the head; the next queued reply becomes the state */
static void
smtpc_pop(struct smtpc *s)
{
	if (s->qh < s->qn)
		s->qh++;
	if (s->qh == s->qn) {
		s->qh = s->qn = 0;
		evtimer_del(s->timer);
		return;
	}
	smtpc_enter_state(s, s->q[s->qh]);
}

/* smtpc_cmd - send one command line and expect its reply */
static void
smtpc_cmd(struct smtpc *s, enum smtpc_state st, const char *fmt, ...)
{
	char buf[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if (smtpc_send(s, buf, (size_t)n) == 0)
		smtpc_expect(s, st);
}

/* smtpc_decide - settle the message in hand (once) */
static void
smtpc_decide(struct smtpc *s, enum smtpc_outcome o, enum smtpc_state stage,
    int code)
{
	struct smtpc_msg_result *r;

	if (s->cur >= s->spec->nmsg)
		return;
	r = &s->msg[s->cur];
	if (r->outcome != SMTPC_UNSENT)
		return;
	r->outcome = o;
	r->stage = stage;
	r->code = code;
	r->added_delay_s = s->res.added_delay_s - s->added_at_decision;
	s->added_at_decision = s->res.added_delay_s;
	if (o == SMTPC_ABANDONED)
		r->giveup_s = smtpc_now() - s->t0;
	log_debug("smtpc %p: message %zu %s at %s (%d)", (void *)s, s->cur,
	    smtpc_outcome_name(o), smtpc_state_name(stage), code);
}

/* smtpc_decide_rest - settle the message in hand and all after it */
static void
smtpc_decide_rest(struct smtpc *s, enum smtpc_outcome o,
    enum smtpc_state stage, int code)
{
	for (; s->cur < s->spec->nmsg; s->cur++)
		smtpc_decide(s, o, stage, code);
}

/* smtpc_quit - wind down politely after a failure: QUIT, drain replies */
static void
smtpc_quit(struct smtpc *s, enum smtpc_end end)
{
	s->quitting = 1;
	s->quit_end = end;
	smtpc_cmd(s, SMTPC_S_QUIT, "QUIT\r\n");
}

/* smtpc_next_message - after a decision: the next transaction or QUIT */
static void
smtpc_next_message(struct smtpc *s)
{
	s->cur++;
	s->group_failed = 0;
	s->discard_dot = 0;
	if (s->cur < s->spec->nmsg)
		smtpc_start_message(s);
	else
		smtpc_cmd(s, SMTPC_S_QUIT, "QUIT\r\n");
}

/* smtpc_start_message - MAIL (with RCPTs and DATA when pipelining) */
static void
smtpc_start_message(struct smtpc *s)
{
	const struct smtpc_spec *sp = s->spec;
	struct smtpc_msg_result *r = &s->msg[s->cur];
	char *buf;
	size_t cap, n, i;

	r->rcpt_ok = r->rcpt_temp = r->rcpt_perm = 0;
	s->rcpt_next = 0;
	if (!(sp->pipelining && s->res.pipelined)) {
		smtpc_cmd(s, SMTPC_S_MAIL, "MAIL FROM:<%s>\r\n", sp->mail_from);
		return;
	}
	cap = 32 + strlen(sp->mail_from);
	for (i = 0; i < sp->nrcpt; i++)
		cap += 16 + strlen(sp->rcpt[i]);
	if ((buf = malloc(cap)) == NULL) {
		smtpc_finish(s, SMTPC_END_SEND, SMTPC_HOW_ABORT);
		return;
	}
	n = (size_t)snprintf(buf, cap, "MAIL FROM:<%s>\r\n", sp->mail_from);
	for (i = 0; i < sp->nrcpt; i++)
		n += (size_t)snprintf(buf + n, cap - n, "RCPT TO:<%s>\r\n",
		    sp->rcpt[i]);
	n += (size_t)snprintf(buf + n, cap - n, "DATA\r\n");
	if (smtpc_send(s, buf, n) == 0) {
		smtpc_expect(s, SMTPC_S_MAIL);
		for (i = 0; i < sp->nrcpt; i++)
			smtpc_expect(s, SMTPC_S_RCPT);
		smtpc_expect(s, SMTPC_S_DATA);
	}
	free(buf);
}

/* smtpc_send_body - the message, dot-stuffed, and the final dot */
static void
smtpc_send_body(struct smtpc *s)
{
	char *raw, *stuffed;
	size_t rawlen, len;

	if ((raw = smtpc_message(s->spec, s->cur, &rawlen)) == NULL ||
	    (stuffed = smtpc_dotstuff(raw, rawlen, &len)) == NULL) {
		free(raw);
		smtpc_finish(s, SMTPC_END_SEND, SMTPC_HOW_ABORT);
		return;
	}
	free(raw);
	if (smtpc_send(s, stuffed, len) == 0 &&
	    smtpc_send(s, ".\r\n", 3) == 0)
		smtpc_expect(s, SMTPC_S_DOT);
	free(stuffed);
}

/* smtpc_has_ext - whether an EHLO reply ("CODE text" lines joined by
 * '\n') offers the keyword kw on one of its extension lines */
static int
smtpc_has_ext(const char *reply, const char *kw)
{
	const char *p = strchr(reply, '\n');	/* the first line greets */
	size_t n = strlen(kw);

	while (p && *++p) {
		if (strncasecmp(p, kw, n) == 0 &&
		    (p[n] == '\0' || p[n] == '\n' || p[n] == ' '))
			return 1;
		p = strchr(p, '\n');
	}
	return 0;
}

/* smtpc_client_ctx - the process's client SSL_CTX, made on first use */
static SSL_CTX *
smtpc_client_ctx(void)
{
	SSL_CTX *ctx;

	if (smtpc_ssl_ctx != NULL)
		return smtpc_ssl_ctx;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Opportunistic, as an MTA without DANE: the simulated daemon's
	 * certificate is self-signed, and nobody checks it. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	smtpc_ssl_ctx = ctx;
	return ctx;
}

/* smtpc_deinit - free the shared SSL_CTX (at exit, or in tests) */
void
smtpc_deinit(void)
{
	SSL_CTX_free(smtpc_ssl_ctx);
	smtpc_ssl_ctx = NULL;
}

/* smtpc_tls_fail - a TLS failure: log it, send any alert, end the session */
static void
smtpc_tls_fail(struct smtpc *s, const char *what)
{
	smtpc_tls_log(s, what);
	s->res.last_stage = s->state;
	(void)smtpc_tls_flush(s);		/* the alert, if any */
	smtpc_finish(s, SMTPC_END_TLS, SMTPC_HOW_CLOSE);
}

/* smtpc_tls_read - decrypt what the read BIO holds and parse the replies */
static void
smtpc_tls_read(struct smtpc *s)
{
	unsigned char buf[SMTPC_TLS_CHUNK];
	int n;

	while (!s->finished) {
		ERR_clear_error();
		if ((n = SSL_read(s->ssl, buf, sizeof(buf))) > 0) {
			smtpc_plain_input(s, buf, (size_t)n);
			continue;
		}
		switch (SSL_get_error(s->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_ZERO_RETURN:		/* close_notify */
			log_debug("smtpc %p: TLS closed by the server",
			    (void *)s);
			s->res.last_stage = s->state;
			smtpc_finish(s, SMTPC_END_PEER_CLOSED, SMTPC_HOW_CLOSE);
			return;
		default:
			smtpc_tls_fail(s, "SSL_read");
			return;
		}
		break;
	}
	/* Reading may have made OpenSSL write (a KeyUpdate, an alert). */
	if (!s->finished && smtpc_tls_flush(s) == -1)
		smtpc_finish(s, SMTPC_END_SEND, SMTPC_HOW_ABORT);
}

/* smtpc_tls_handshake - drive the handshake; when done, EHLO again */
static void
smtpc_tls_handshake(struct smtpc *s)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r <= 0 && SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_READ) {
		smtpc_tls_fail(s, "TLS handshake");
		return;
	}
	if (smtpc_tls_flush(s) == -1) {
		smtpc_finish(s, SMTPC_END_SEND, SMTPC_HOW_ABORT);
		return;
	}
	if (r <= 0)
		return;				/* wants the server's bytes */
	s->tls = SMTPC_TLS_UP;
	s->res.tls = 1;
	log_debug("smtpc %p: TLS established: %s %s", (void *)s,
	    SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
	smtpc_pop(s);				/* the handshake is over */
	smtpc_tls_read(s);		/* nothing may come before our EHLO */
	if (!s->finished)
		smtpc_cmd(s, SMTPC_S_EHLO, "EHLO %s\r\n", s->helo);
}

/* smtpc_tls_start - STARTTLS was accepted: make the SSL, send ClientHello */
static void
smtpc_tls_start(struct smtpc *s)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = smtpc_client_ctx()) == NULL ||
	    (s->ssl = SSL_new(ctx)) == NULL ||
	    (s->rbio = BIO_new(BIO_s_mem())) == NULL ||
	    (s->wbio = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(s->rbio);
		s->rbio = NULL;
		SSL_free(s->ssl);
		s->ssl = NULL;
		smtpc_tls_fail(s, "cannot start TLS");
		return;
	}
	BIO_set_mem_eof_return(s->rbio, -1);	/* empty = retry, not EOF */
	BIO_set_mem_eof_return(s->wbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);	/* ssl owns both now */
	SSL_set_connect_state(s->ssl);
	s->tls = SMTPC_TLS_HANDSHAKE;
	smtpc_expect(s, SMTPC_S_TLS);
	smtpc_tls_handshake(s);
}

/* smtpc_tls_input - ciphertext from the transport */
static void
smtpc_tls_input(struct smtpc *s, const unsigned char *data, size_t len)
{
	while (len > 0 && !s->finished) {
		int chunk = len > SMTPC_TLS_CHUNK ? SMTPC_TLS_CHUNK : (int)len;
		int n = BIO_write(s->rbio, data, chunk);

		if (n <= 0) {
			smtpc_tls_fail(s, "BIO_write");
			return;
		}
		data += n;
		len -= (size_t)n;
		if (s->tls == SMTPC_TLS_HANDSHAKE)
			smtpc_tls_handshake(s);
		else
			smtpc_tls_read(s);
	}
}

/* smtpc_rcpt_fail - no recipient was accepted: settle the message */
static void
smtpc_rcpt_fail(struct smtpc *s, int code)
{
	struct smtpc_msg_result *r = &s->msg[s->cur];

	(void)code;
	smtpc_decide(s, r->rcpt_temp ? SMTPC_DEFERRED : SMTPC_REJECTED,
	    SMTPC_S_RCPT, s->rcpt_code);
}

/*
 * smtpc_busy_reply - 1 when a 4xx reply refuses for want of backend
 * capacity: its enhanced status code is 4.3.2 (RFC 3463 "system not
 * accepting network messages"), or its text says busy or names the
 * backend.  The daemon's own refusal, when a MAIL found no backend
 * connection (backend_max_connections, or its class's backend_share)
 * within MAIL's RFC 5321 limit less 10 s, reads "451 4.3.2 Too busy, try
 * again later" (sess_mail_wait() in src/smtp/session.c); its 451 4.3.0
 * for a backend that failed mid-transaction and 451 4.7.1 for a class
 * that tempfails are not counted.  text is the
 * reply's text after "CODE " (lines joined by '\n').
 */
int
smtpc_busy_reply(int code, const char *text)
{
	const char *p;

	if (code / 100 != 4 || text == NULL)
		return 0;
	if (strncmp(text, "4.3.2", 5) == 0 &&
	    (text[5] == '\0' || isspace((unsigned char)text[5])))
		return 1;
	for (p = text; *p != '\0'; p++)
		if (strncasecmp(p, "busy", 4) == 0 ||
		    strncasecmp(p, "backend", 7) == 0)
			return 1;
	return 0;
}

/* smtpc_reply - a complete reply for the head of the queue */
static void
smtpc_reply(struct smtpc *s, int code)
{
	const struct smtpc_spec *sp = s->spec;
	enum smtpc_state st = s->state;
	int cls = code / 100, want = st == SMTPC_S_DATA ? 3 : 2;
	struct smtpc_msg_result *r = s->cur < sp->nmsg ? &s->msg[s->cur] : NULL;

	s->res.last_stage = st;
	if (cls == 4 && s->res.defer_code == 0)
		s->res.defer_code = code;
	if (cls == 4 && (st == SMTPC_S_MAIL || st == SMTPC_S_RCPT ||
	    st == SMTPC_S_DATA || st == SMTPC_S_DOT)) {
		s->res.mail_4xx += st == SMTPC_S_MAIL;
		s->res.busy_4xx += smtpc_busy_reply(code,
		    s->res.last_reply + 4);
	}
	if (cls != want && cls != 4 && cls != 5) {
		log_debug("smtpc %p: reply %d unexpected at %s", (void *)s,
		    code, smtpc_state_name(st));
		smtpc_finish(s, SMTPC_END_PROTOCOL, SMTPC_HOW_CLOSE);
		return;
	}
	if (st == SMTPC_S_GREETING && cls == 2 && code != 220) {
		smtpc_finish(s, SMTPC_END_PROTOCOL, SMTPC_HOW_CLOSE);
		return;
	}
	smtpc_pop(s);
	if (s->quitting && st != SMTPC_S_QUIT)	/* e.g. a pregreet EHLO's */
		return;
	if (code == 421 && st != SMTPC_S_QUIT) {	/* the server is leaving */
		smtpc_decide_rest(s, SMTPC_DEFERRED, st, code);
		smtpc_finish(s, SMTPC_END_SERVICE, SMTPC_HOW_CLOSE);
		return;
	}

	switch (st) {
	case SMTPC_S_GREETING:
		if (cls != 2) {
			smtpc_decide_rest(s, cls == 4 ? SMTPC_DEFERRED :
			    SMTPC_REJECTED, st, code);
			smtpc_quit(s, SMTPC_END_SERVICE);
		} else if (!sp->pregreet) {
			if (sp->use_helo)
				smtpc_cmd(s, SMTPC_S_HELO, "HELO %s\r\n", s->helo);
			else
				smtpc_cmd(s, SMTPC_S_EHLO, "EHLO %s\r\n", s->helo);
		}
		break;
	case SMTPC_S_EHLO:
	case SMTPC_S_HELO:
		if (cls == 2) {
			if (st == SMTPC_S_EHLO) {
				s->res.esmtp = 1;
				s->res.pipelined = smtpc_has_ext(
				    s->res.last_reply, "PIPELINING");
			}
			if (st == SMTPC_S_EHLO && sp->starttls &&
			    !s->starttls_sent &&
			    smtpc_has_ext(s->res.last_reply, "STARTTLS")) {
				s->starttls_sent = 1;	/* alone, never piped */
				smtpc_cmd(s, SMTPC_S_STARTTLS, "STARTTLS\r\n");
				break;
			}
			smtpc_start_message(s);
		} else if (st == SMTPC_S_EHLO && cls == 5) {
			smtpc_cmd(s, SMTPC_S_HELO, "HELO %s\r\n", s->helo);
		} else {
			smtpc_decide_rest(s, cls == 4 ? SMTPC_DEFERRED :
			    SMTPC_REJECTED, st, code);
			smtpc_quit(s, SMTPC_END_SERVICE);
		}
		break;
	case SMTPC_S_STARTTLS:
		if (cls == 2)
			smtpc_tls_start(s);
		else			/* 454, 5xx: on in plaintext, as Postfix's
					 * smtp with opportunistic TLS */
			smtpc_start_message(s);
		break;
	case SMTPC_S_MAIL:
		if (cls == 2) {
			if (!(sp->pipelining && s->res.pipelined))
				smtpc_cmd(s, SMTPC_S_RCPT, "RCPT TO:<%s>\r\n",
				    sp->rcpt[s->rcpt_next++]);
			break;
		}
		smtpc_decide(s, cls == 4 ? SMTPC_DEFERRED : SMTPC_REJECTED,
		    st, code);
		if (sp->pipelining && s->res.pipelined)
			s->group_failed = 1;	/* drain RCPTs and DATA */
		else
			smtpc_next_message(s);
		break;
	case SMTPC_S_RCPT:
		if (r != NULL && !s->group_failed) {
			s->rcpt_code = code;
			if (cls == 2)
				r->rcpt_ok++;
			else if (cls == 4)
				r->rcpt_temp++;
			else
				r->rcpt_perm++;
		}
		if (sp->pipelining && s->res.pipelined)
			break;				/* DATA is queued */
		if (s->rcpt_next < sp->nrcpt)
			smtpc_cmd(s, SMTPC_S_RCPT, "RCPT TO:<%s>\r\n",
			    sp->rcpt[s->rcpt_next++]);
		else if (r->rcpt_ok > 0)
			smtpc_cmd(s, SMTPC_S_DATA, "DATA\r\n");
		else {
			smtpc_rcpt_fail(s, code);
			smtpc_cmd(s, SMTPC_S_RSET, "RSET\r\n");
		}
		break;
	case SMTPC_S_DATA:
		if (cls == 3) {
			if (s->group_failed || r->rcpt_ok == 0) {
				/* RFC 2920: a 354 with nothing to send */
				if (!s->group_failed)
					smtpc_rcpt_fail(s, code);
				s->discard_dot = 1;
				smtpc_cmd(s, SMTPC_S_DOT, ".\r\n");
			} else
				smtpc_send_body(s);
			break;
		}
		if (s->group_failed) {			/* MAIL decided it */
			smtpc_next_message(s);
			break;
		}
		if (r->rcpt_ok == 0)
			smtpc_rcpt_fail(s, code);
		else
			smtpc_decide(s, cls == 4 ? SMTPC_DEFERRED :
			    SMTPC_REJECTED, st, code);
		smtpc_cmd(s, SMTPC_S_RSET, "RSET\r\n");
		break;
	case SMTPC_S_DOT:
		if (!s->discard_dot)
			smtpc_decide(s, cls == 2 ? SMTPC_DELIVERED : cls == 4 ?
			    SMTPC_DEFERRED : SMTPC_REJECTED, st, code);
		smtpc_next_message(s);
		break;
	case SMTPC_S_RSET:
		smtpc_next_message(s);
		break;
	case SMTPC_S_QUIT:
		smtpc_finish(s, s->quitting ? s->quit_end : SMTPC_END_QUIT,
		    SMTPC_HOW_CLOSE);
		break;
	default:
		smtpc_finish(s, SMTPC_END_PROTOCOL, SMTPC_HOW_CLOSE);
		break;
	}
}

/* smtpc_line - one reply line, CRLF included; 0, or -1 = protocol error */
static int
smtpc_line(struct smtpc *s, const char *l, size_t len)
{
	const char *text;
	size_t tlen, i;
	int code, last;

	if (len < 5 || l[len - 2] != '\r')
		return -1;
	if (l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' ||
	    l[2] < '0' || l[2] > '9')
		return -1;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (l[3] == '\r' && len == 5)
		last = 1;
	else if (l[3] == ' ')
		last = 1;
	else if (l[3] == '-')
		last = 0;
	else
		return -1;
	text = len > 5 ? l + 4 : l + 3;
	tlen = len > 5 ? len - 6 : 0;
	for (i = 0; i < tlen; i++)
		if (text[i] == '\0' || text[i] == '\r' || text[i] == '\n')
			return -1;
	if (s->replycode != 0 && code != s->replycode)
		return -1;
	if (s->replylen + 1 + tlen > SMTPC_REPLY_MAX)
		return -1;
	if (s->replycode == 0)
		s->replylen = 0;
	else
		s->reply[s->replylen++] = '\n';
	memcpy(s->reply + s->replylen, text, tlen);
	s->replylen += tlen;
	s->reply[s->replylen] = '\0';
	s->replycode = code;
	if (last) {
		double w = smtpc_now() - s->wait_from;
		double base = (s->spec->baseline_ms ? s->spec->baseline_ms :
		    SMTPC_BASELINE_MS) / 1000.0;

		if (s->state == SMTPC_S_GREETING)
			s->res.banner_s = smtpc_now() - s->t0;
		if (w > base)
			s->res.added_delay_s += w - base;
		s->res.last_code = code;
		snprintf(s->res.last_reply, 5, "%d ", code);
		memcpy(s->res.last_reply + 4, s->reply, s->replylen + 1);
		s->replycode = 0;
		s->replylen = 0;
		smtpc_reply(s, code);
	}
	return 0;
}

/* smtpc_plain_input - reply bytes (from the wire, or decrypted); when
 * a 2xx to STARTTLS starts TLS, the rest of the chunk goes to TLS */
static void
smtpc_plain_input(struct smtpc *s, const unsigned char *data, size_t len)
{
	size_t i;

	for (i = 0; i < len && !s->finished; i++) {
		if (s->tls == SMTPC_TLS_HANDSHAKE) {
			smtpc_tls_input(s, data + i, len - i);
			return;
		}
		if (s->state == SMTPC_S_CONNECT || s->qh == s->qn) {
			log_debug("smtpc %p: unsolicited reply", (void *)s);
			smtpc_finish(s, SMTPC_END_PROTOCOL, SMTPC_HOW_CLOSE);
			return;
		}
		s->line[s->linelen++] = (char)data[i];
		if (data[i] == '\n') {
			size_t n = s->linelen;

			s->linelen = 0;
			if (smtpc_line(s, s->line, n) == -1) {
				log_debug("smtpc %p: malformed reply at %s",
				    (void *)s, smtpc_state_name(s->state));
				smtpc_finish(s, SMTPC_END_PROTOCOL,
				    SMTPC_HOW_CLOSE);
				return;
			}
		} else if (s->linelen == SMTPC_REPLY_LINE_MAX) {
			smtpc_finish(s, SMTPC_END_PROTOCOL, SMTPC_HOW_CLOSE);
			return;
		}
	}
}

/* smtpc_on_data - bytes from the server; len 0 = its FIN */
void
smtpc_on_data(struct smtpc *s, const unsigned char *data, size_t len)
{
	if (s->finished)
		return;
	if (len == 0) {
		s->res.last_stage = s->state;
		smtpc_finish(s, SMTPC_END_PEER_CLOSED, SMTPC_HOW_CLOSE);
		return;
	}
	if (s->tls != SMTPC_TLS_OFF)
		smtpc_tls_input(s, data, len);
	else
		smtpc_plain_input(s, data, len);
}

/* smtpc_on_connected - the transport is up: wait for the banner */
void
smtpc_on_connected(struct smtpc *s)
{
	if (s->finished || s->state != SMTPC_S_CONNECT)
		return;
	s->res.connected = 1;
	evtimer_del(s->timer);
	smtpc_expect(s, SMTPC_S_GREETING);
	if (s->spec->pregreet)
		smtpc_cmd(s, s->spec->use_helo ? SMTPC_S_HELO : SMTPC_S_EHLO,
		    "%s %s\r\n", s->spec->use_helo ? "HELO" : "EHLO", s->helo);
}

/* smtpc_on_closed - the connection is gone; the transport is dead */
void
smtpc_on_closed(struct smtpc *s, int reset)
{
	s->transport_gone = 1;
	if (s->finished)
		return;
	s->res.last_stage = s->state;
	smtpc_finish(s, reset ? SMTPC_END_RESET : SMTPC_END_PEER_CLOSED,
	    SMTPC_HOW_NONE);
}

/* smtpc_timeout - the head's reply is later than the patience */
static void
smtpc_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct smtpc *s = arg;

	(void)fd;
	(void)ev;
	s->res.waited_s = smtpc_now() - s->wait_from;
	s->res.giveup_s = smtpc_now() - s->t0;
	s->res.last_stage = s->state;
	log_debug("smtpc %p: gave up at %s after %.3f s", (void *)s,
	    smtpc_state_name(s->state), s->res.waited_s);
	smtpc_finish(s, SMTPC_END_PATIENCE, s->spec->giveup ==
	    SMTPC_GIVEUP_CLOSE ? SMTPC_HOW_CLOSE : SMTPC_HOW_ABORT);
}

/* smtpc_done_cb - zero-delay: hand the result to the owner */
static void
smtpc_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct smtpc *s = arg;

	(void)fd;
	(void)ev;
	if (s->done)
		s->done(s, &s->res, s->arg);
}

/* smtpc_finish - end the session: settle messages, release the transport */
static void
smtpc_finish(struct smtpc *s, enum smtpc_end end, enum smtpc_how how)
{
	size_t i;

	if (s->finished)
		return;
	s->finished = 1;
	evtimer_del(s->timer);
	/* Once every message is settled, a late or lost QUIT reply is fine. */
	if (s->state == SMTPC_S_QUIT && !s->quitting)
		end = SMTPC_END_QUIT;
	if (s->quitting && s->state == SMTPC_S_QUIT)
		end = s->quit_end;
	s->res.end = end;
	if (end != SMTPC_END_QUIT && end != SMTPC_END_SERVICE)
		smtpc_decide(s, SMTPC_ABANDONED, s->state, 0);
	s->res.duration_s = smtpc_now() - s->t0;
	for (i = 0; i < s->spec->nmsg; i++)
		s->res.n[s->msg[i].outcome]++;
	log_debug("smtpc %p: end %s at %s", (void *)s, smtpc_end_name(end),
	    smtpc_state_name(s->state));
	s->state = SMTPC_S_DONE;
	if (!s->transport_gone && how == SMTPC_HOW_CLOSE &&
	    s->tls == SMTPC_TLS_UP && end != SMTPC_END_TLS) {
		ERR_clear_error();
		(void)SSL_shutdown(s->ssl);	/* close_notify */
		(void)smtpc_tls_flush(s);
		ERR_clear_error();
	}
	if (!s->transport_gone) {
		s->transport_gone = 1;
		if (how == SMTPC_HOW_ABORT)
			s->tr.abort(s->tr.t);
		else if (how == SMTPC_HOW_CLOSE)
			s->tr.close(s->tr.t);
	}
	event_active(s->done_ev, EV_TIMEOUT, 1);
}

/* smtpc_valid_path - an address we can put between <> */
static int
smtpc_valid_path(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || *a == '<' || *a == '>' ||
		    (unsigned char)*a >= 0x7f)
			return 0;
	return 1;
}

/* smtpc_valid_pop - a population name countsink accepts */
static int
smtpc_valid_pop(const char *p)
{
	size_t n = strlen(p), i;

	if (n == 0 || n > SMTPC_POP_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '.' &&
		    p[i] != '_' && p[i] != '-')
			return 0;
	return 1;
}

/* smtpc_check - validate a spec; 0, or -1 with err filled */
static int
smtpc_check(const struct smtpc_spec *sp, char *err, size_t errlen)
{
	size_t i;

	if (sp->mail_from == NULL || !smtpc_valid_path(sp->mail_from) ||
	    strlen(sp->mail_from) > 254) {
		snprintf(err, errlen, "bad mail_from");
		return -1;
	}
	if (sp->rcpt == NULL || sp->nrcpt == 0 || sp->nrcpt > SMTPC_RCPT_MAX) {
		snprintf(err, errlen, "need 1 to %d recipients", SMTPC_RCPT_MAX);
		return -1;
	}
	for (i = 0; i < sp->nrcpt; i++)
		if (sp->rcpt[i] == NULL || !*sp->rcpt[i] ||
		    !smtpc_valid_path(sp->rcpt[i]) || strlen(sp->rcpt[i]) > 254) {
			snprintf(err, errlen, "bad recipient %zu", i);
			return -1;
		}
	if (sp->msg == NULL || sp->nmsg == 0) {
		snprintf(err, errlen, "need at least one message");
		return -1;
	}
	for (i = 0; i < sp->nmsg; i++)
		if (sp->msg[i].population &&
		    !smtpc_valid_pop(sp->msg[i].population)) {
			snprintf(err, errlen, "bad population name in message %zu",
			    i);
			return -1;
		}
	if (sp->helo && (!*sp->helo || strlen(sp->helo) > 255 - 1 ||
	    !smtpc_valid_path(sp->helo))) {
		snprintf(err, errlen, "bad helo");
		return -1;
	}
	return 0;
}

/* smtpc_new - a session, waiting for smtpc_on_connected(); NULL + err */
struct smtpc *
smtpc_new(struct event_base *base, const struct smtpc_spec *spec,
    const struct smtpc_transport *tr, smtpc_done_fn *done, void *arg,
    char *err, size_t errlen)
{
	struct smtpc *s;
	size_t i;

	if (smtpc_check(spec, err, errlen) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->msg = calloc(spec->nmsg, sizeof(*s->msg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	s->base = base;
	s->spec = spec;
	s->tr = *tr;
	s->done = done;
	s->arg = arg;
	s->timer = evtimer_new(base, smtpc_timeout, s);
	s->done_ev = event_new(base, -1, 0, smtpc_done_cb, s);
	if (s->timer == NULL || s->done_ev == NULL) {
		snprintf(err, errlen, "cannot create timers");
		smtpc_free(s);
		return NULL;
	}
	if (spec->helo)
		snprintf(s->helo, sizeof(s->helo), "%s", spec->helo);
	else
		smtpc_random_helo(spec->seed, s->helo, sizeof(s->helo));
	for (i = 0; i < spec->nmsg; i++) {
		s->msg[i].outcome = SMTPC_UNSENT;
		s->msg[i].stage = SMTPC_S_CONNECT;
		s->msg[i].giveup_s = -1;
	}
	s->res.nmsg = spec->nmsg;
	s->res.msg = s->msg;
	s->res.banner_s = -1;
	s->res.giveup_s = -1;
	s->res.waited_s = -1;
	s->t0 = smtpc_now();
	s->state = SMTPC_S_CONNECT;
	s->wait_from = s->t0;
	smtpc_arm(s);
	return s;
}

/* smtpc_free - release a session (timers, results); NULL is fine */
void
smtpc_free(struct smtpc *s)
{
	if (s == NULL)
		return;
	if (s->timer) {
		event_free(s->timer);
		s->timer = NULL;
	}
	if (s->done_ev) {
		event_free(s->done_ev);
		s->done_ev = NULL;
	}
	if (s->ssl) {
		SSL_free(s->ssl);		/* and both BIOs */
		s->ssl = NULL;
		s->rbio = s->wbio = NULL;
	}
	free(s->msg);
	s->msg = NULL;
	free(s);
}

/* smtpc_result - the result so far (final once done() was called) */
const struct smtpc_result *
smtpc_result(const struct smtpc *s)
{
	return &s->res;
}

/* smtpc_state - the awaited reply */
enum smtpc_state
smtpc_state(const struct smtpc *s)
{
	return s->state;
}

/* smtpc_retry_list - indices of messages to send again: deferred,
 * abandoned or unsent; returns how many (at most max are stored) */
size_t
smtpc_retry_list(const struct smtpc_result *r, size_t *idx, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < r->nmsg; i++) {
		enum smtpc_outcome o = r->msg[i].outcome;

		if (o == SMTPC_DEFERRED || o == SMTPC_ABANDONED ||
		    o == SMTPC_UNSENT) {
			if (n < max)
				idx[n] = i;
			n++;
		}
	}
	return n;
}
