/*
 * session.c - the client side of one SMTP session
 *
 * Exports sess_accept(), sess_shutdown_all() and sess_deinit();
 * sess_fire_timers() is a test hook for fuzz/fuzz_session.c.
 *
 * A session is a named-state machine driven by a command table.  Every reply
 * goes through sess_reply_at(), which holds it until the class's delay for
 * that stage is over (stuttering it out, if the class says so), so shaping
 * is one mechanism for all replies.  Commands the backend must see (MAIL,
 * RCPT, RSET, the message) are forwarded only after their delay, and the
 * backend connection is opened at the first valid MAIL.  The message content
 * is canonicalised into a spool and handed to the backend only after the
 * client's final dot and its delay, so a slow client never holds the
 * backend in DATA and a refused message never reaches it.  Replies to MAIL,
 * RCPT and the end of data are the backend's own; when the backend fails the
 * client gets 451 or 421, never a 250 the backend did not give.
 *
 * Memory: the session owns its bufferevent, timer, reply buffer, spool and
 * strings, and its struct bk.  Teardown happens only in sess_free().  A
 * callback disarms its own events before anything that may free the session,
 * and returns at once afterwards.
 *
 * It is an error to write a reply while another is being written (busy).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "admin/admin.h"
#include "admin/feedback.h"
#include "daemon/runtime.h"
#include "daemon/shaper.h"
#include "dns/fcrdns.h"
#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "log/eventlog.h"
#include "log/evrec.h"
#include "policy/policy.h"
#include "smtp/backend.h"
#include "smtp/canon.h"
#include "smtp/clients.h"
#include "smtp/session.h"
#include "smtp/spool.h"
#include "util/log.h"

#define SESS_INPUT_HIWAT	(256 * 1024)	/* stop reading beyond this */
#define SESS_OUTPUT_HIWAT	(64 * 1024)	/* stop serving commands beyond */
#define SESS_CLOSE_MS		10000		/* to flush the last reply */
#define SESS_STAGE_CAP_MS	600000		/* longest RFC 5321 client
						   timeout: our delays stay
						   below it */
#define SESS_HARD_SIZE		(64L * 1024 * 1024) /* no SIZE anywhere */
#define SESS_PATH_MAX		512		/* RFC 5321 4.5.3.1.3: 256 */
#define SESS_BK_POLL_MS		200		/* a MAIL waiting for a backend
						   connection looks again */

/* How sess_bk_detach() gives a connection up. */
#define SESS_BK_DROP		0
#define SESS_BK_QUIT		1
#define SESS_BK_RELEASE		2

enum sess_state {
	SESS_BANNER,		/* banner being delayed */
	SESS_HELO,		/* waiting for EHLO/HELO */
	SESS_READY,		/* greeted, no transaction */
	SESS_MAIL,		/* MAIL accepted */
	SESS_RCPT,		/* at least one RCPT accepted */
	SESS_DATA,		/* reading message content */
	SESS_BDAT,		/* reading a BDAT chunk */
	SESS_TLS,		/* TLS handshake after STARTTLS */
	SESS_CLOSING,		/* final reply being written */
};

struct sess {
	struct evr_session sum;	/* what outlives the protocol: the
					   record, admin, feedback, learning */
	struct bufferevent *bev;	/* client side (TLS filter after STARTTLS) */
	struct bk *bk;			/* backend connection, or NULL */
	struct event timer;		/* delays and stutter */
	struct event wd;		/* the deadline of the current state */
	enum sess_state state;
	union ipaddr local;		/* the address it connected to */
	struct timeval last_reply;	/* when the last reply completed */
	struct shclass cls;		/* copy: a reload never changes a session */
	struct dnsbl_req *dnsbl_req;	/* DNS list lookup in flight */
	struct fcrdns_req *fcrdns_req;	/* reverse lookup in flight */
	int	explore_drawn;		/* control decided once per session */
	int	learned;		/* an outcome reached reputation */
	int	bad;			/* a message's outcome was bad */
	long	banner_ms;		/* banner delay from the learned patience
					   (-1: the class's banner_delay) */
	unsigned listed_kinds;		/* keys taught "listed": bits 1 << enum
					   rep_keykind (0 = none) */
	int	errors;			/* syntax and sequence errors */
	int	junk;			/* NOOP, RSET, VRFY, EXPN, HELP */
	int	rcpt_total;		/* accepted, whole session */
	int	busy;			/* waiting on a timer or the backend */
	char	verb[16];		/* the current command's name */
	int	in_process;		/* sess_process() is on the stack */
	int	rate_limited;		/* a token bucket applies */
	int	bk_txn;			/* the backend has an open transaction */
	int	bk_cls;			/* class slot its connection counts in */
	int	eof;			/* client closed its side */
	int	barelf_warned;		/* bare LF in a command logged */
	int	bk_waiting;		/* in a backend wait queue */
	struct sess *bkw_prev, *bkw_next; /* that queue */
	struct timeval cmd_time;	/* when the current command was read */
	void	(*cont)(struct sess *);	/* run when the timer fires */
	struct sess *prev, *next;	/* live sessions */
	int	quit;			/* QUIT received */
	int	crlf_data;		/* DATA line ended with CRLF */
	int	skip_line;		/* discarding an over-long line */
	int	data_too_big;
	int	backend_failed;		/* this session saw a backend failure */
	int	pregreet;		/* talked before the banner */
	/* The reply being written. */
	struct evbuffer *reply;		/* bytes not yet written */
	long	reply_interval;		/* ms between stutter writes */
	struct timeval reply_due;	/* latest time for the last byte */
	void	(*after)(struct sess *); /* run when the reply is complete */
	/* The current transaction. */
	char   *mail_from;		/* strdup'd reverse path, NULL = none */
	char   *mail_params;		/* forwarded MAIL parameters */
	int	rcpt;			/* RCPT commands in this transaction */
	int	rcpt_ok;		/* accepted by the backend */
	enum msg_stage stage;
	int	spool_failed;		/* the spool could not be written */
	struct canon canon;
	struct spool *spool;		/* canonical message content */
	struct timeval data_deadline;	/* DATA/BDAT: smtp_timeout, moved on
					   by min_data_rate per byte */
	long	bdat_left;		/* bytes left in the BDAT chunk */
	int	bdat_last;
	int	bdat_txn;		/* this transaction sends BDAT chunks */
	enum sess_state bdat_prev;	/* state to return to after a chunk */
	int	out_blocked;		/* input paused: output over its mark */
	const char *bdat_error;		/* reply after the chunk, or NULL */
	char   *pending;		/* command held for the backend */
	char   *pending_args;		/* its arguments, for BDAT */
	int	read_paused;		/* EV_READ off: input full, not served */
	int	pipe_warned;		/* improper pipelining logged */
};

/* Live sessions, for shutdown. */
static struct sess *sess_list;

static const char *const state_names[] = {
	[SESS_BANNER] = "banner", [SESS_HELO] = "helo", [SESS_READY] = "ready",
	[SESS_MAIL] = "mail", [SESS_RCPT] = "rcpt", [SESS_DATA] = "data",
	[SESS_BDAT] = "bdat", [SESS_TLS] = "tls", [SESS_CLOSING] = "closing",
};

static unsigned long sess_counter;
static char sess_line[65536 + 2];	/* the command being parsed */

static void sess_readcb(struct bufferevent *, void *);
static void sess_eventcb(struct bufferevent *, short, void *);
static int sess_process(struct sess *);
static void sess_free(struct sess *, const char *reason);
static void sess_mail_go(struct sess *);
static void sess_mail_wait(struct sess *);
static void sess_bk_detach(struct sess *, int how);
static void sess_patience(struct sess *, const struct pol_input *);
static void sess_timer_cb(evutil_socket_t, short, void *);
static void sess_wd_cb(evutil_socket_t, short, void *);
static void sess_watch(struct sess *);
static void sess_reclassed(struct sess *, int before);
static void sess_rearm_banner(struct sess *, int only_later);
static void sess_close(struct sess *, enum outcome, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Commands. */
#define CMD_NEED_HELO	0x01	/* only after EHLO/HELO */
#define CMD_LAST	0x02	/* must end a pipelined group (RFC 2920) */
#define CMD_REFUSED	0x04	/* never offered to clients */
#define CMD_DESTROYS	0x08	/* may end the session */
#define CMD_JUNK	0x10	/* counts towards smtp_junk_command_limit */

struct sess_cmd {
	const char *name;
	int	flags;
	enum shp_stage stage;
	const char *(*check)(struct sess *, char *args);
	void	(*proceed)(struct sess *, char *args);
};

/* sess_state_name - printable state */
static const char *
sess_state_name(enum sess_state st)
{
	return state_names[st];
}

/* sess_enter_state - the one place a state changes; logged at debug */
static void
sess_enter_state(struct sess *s, enum sess_state st)
{
	log_debug("%s: %s -> %s", s->sum.id, sess_state_name(s->state),
	    sess_state_name(st));
	s->state = st;
	sess_watch(s);
}

/* sess_reason - the i-th reason, "" when there is none */
static const char *
sess_reason(const struct sess *s, int i)
{
	const char *r = evr_reason(&s->sum, i);

	return r != NULL ? r : "";
}

/* sess_pol_input - what the decision reads, from the session */
static void
sess_pol_input(const struct sess *s, struct pol_input *in)
{
	memset(in, 0, sizeof(*in));
	in->cf = ms->cf;
	in->peer = &s->sum.peer.sa;
	in->fp = s->sum.fp;
	in->dnsbl = s->sum.dnsbl;
	in->domain = s->sum.domain;
	in->violations = s->sum.violations;
	in->violation = s->sum.violation;
	in->control = s->explore_drawn ? s->sum.control : -1;
}

/* sess_set_class - switch the session's class (live counts follow) */
static void
sess_set_class(struct sess *s, const char *name)
{
	const struct shclass *c = conf_class(ms->cf, name);
	int	idx = ms_class_index(name);

	if (c == NULL || idx < 0)
		return;
	if (s->sum.class_idx >= 0)
		ms->class_count[s->sum.class_idx]--;
	s->cls = *c;
	s->sum.class_idx = idx;
	ms->class_count[idx]++;
}

/* sess_classify - ask the policy, keep its reasons, apply its class */
static void
sess_classify(struct sess *s)
{
	struct pol_input in;
	struct pol_verdict v;
	char   *r;

	sess_pol_input(s, &in);
	if (!s->explore_drawn)
		in.explore_draw = drand48();	/* once: control is decided */
	pol_classify(&in, &v);
	if ((r = malloc(v.reasons_len ? v.reasons_len : 1)) != NULL) {
		memcpy(r, v.reasons, v.reasons_len);
		free(s->sum.reasons);
		s->sum.reasons = r;
		s->sum.reasons_len = v.reasons_len;
		s->sum.nreasons = v.nreasons;
	}
	s->sum.score = v.score;
	s->sum.control = v.control;
	s->sum.static_class = v.static_class;
	s->explore_drawn = 1;
	if (s->sum.class_idx < 0 || strcmp(s->cls.name, v.class_name) != 0)
		sess_set_class(s, v.class_name);
	sess_patience(s, &in);
}

/*
 * sess_patience - a first contact in a class with banner_patience waits
 * past the learned p90 patience of bad senders on its keys (at least the
 * class's banner_delay, at most the banner's cap); a sender whose ip,
 * prefix or verified domain has good history, a client_class_map client
 * and a key with thin evidence get the class's banner_delay
 */
static void
sess_patience(struct sess *s, const struct pol_input *in)
{
	struct pol_patience pp;
	long	fixed = shp_delay_ms(&s->cls, SHP_GREETING, 0), d;
	char	r[POL_REASON_MAX + 40], *grown;
	size_t	n;

	s->banner_ms = -1;
	if (s->cls.banner_patience <= 0 || s->sum.static_class ||
	    s->state != SESS_BANNER || !pol_first_contact(in) ||
	    pol_patience(in, REP_PAT_BAD, 0.9, &pp) < 0)
		return;
	d = (long)(pp.seconds * 1000) + s->cls.banner_patience;
	if (d < fixed)
		d = fixed;
	if (d > shp_cap_ms(SHP_GREETING))
		d = shp_cap_ms(SHP_GREETING);
	s->banner_ms = d;
	/* The reason says it: "patience rawsig ... p90 21.0s (n=830) ->
	 * banner 26.0s". */
	snprintf(r, sizeof(r), "%s -> banner %.1fs", pp.reason, d / 1000.0);
	n = strlen(r) + 1;
	if ((grown = realloc(s->sum.reasons, s->sum.reasons_len + n)) == NULL)
		return;
	memcpy(grown + s->sum.reasons_len, r, n);
	s->sum.reasons = grown;
	s->sum.reasons_len += n;
	s->sum.nreasons++;
}

/* sess_learn - one outcome of this session teaches reputation */
static void
sess_learn(const struct sess *s, enum outcome oc)
{
	struct pol_input in;

	sess_pol_input(s, &in);
	pol_learn(&in, oc);
}

/* sess_learn_listing - a block list's listing teaches each key once */
static void
sess_learn_listing(struct sess *s)
{
	struct pol_input in;

	if (!s->sum.counted)
		return;		/* a refused connection teaches nothing */
	sess_pol_input(s, &in);
	s->listed_kinds = pol_learn_listing(&in, s->listed_kinds);
}

/* ms_since - milliseconds from tv to now */
static long
ms_since(const struct timeval *tv)
{
	struct timeval now, d;

	gettimeofday(&now, NULL);
	timersub(&now, tv, &d);
	return d.tv_sec * 1000L + d.tv_usec / 1000;
}

/*
 * The banner is one shared, refcounted string that session reply buffers
 * reference: a tarpitted session stutters it out over minutes without
 * holding a 1 KiB buffer chunk of its own.
 */
struct banner {
	unsigned refs;		/* references from reply buffers */
	size_t	len;
	char	text[300];	/* "220 host ESMTP mailshaper\r\n" */
};

static struct banner *banner_cur;

/* banner_unref - libevent is done with one reference */
static void
banner_unref(const void *data, size_t len, void *arg)
{
	struct banner *b = arg;

	(void)data;
	(void)len;
	if (--b->refs == 0 && b != banner_cur)
		free(b);
}

/* banner_add - append the banner for the current myhostname to buf */
static void
banner_add(struct evbuffer *buf)
{
	char	text[300];
	int	n = snprintf(text, sizeof(text), "220 %s ESMTP mailshaper\r\n",
	    ms->cf->myhostname);

	if (n < 0 || (size_t)n >= sizeof(text))
		n = snprintf(text, sizeof(text), "220 ESMTP mailshaper\r\n");
	if (banner_cur == NULL || strcmp(banner_cur->text, text) != 0) {
		struct banner *b = calloc(1, sizeof(*b));

		if (b == NULL) {
			evbuffer_add(buf, text, n);
			return;
		}
		memcpy(b->text, text, n + 1);
		b->len = (size_t)n;
		if (banner_cur != NULL && banner_cur->refs == 0)
			free(banner_cur);
		banner_cur = b;
	}
	banner_cur->refs++;
	if (evbuffer_add_reference(buf, banner_cur->text, banner_cur->len,
	    banner_unref, banner_cur) < 0) {
		banner_cur->refs--;
		evbuffer_add(buf, text, n);
	}
}

/* sess_observe - no class setting applies */
static int
sess_observe(void)
{
	return ms->cf->observe;
}

/*
 * Deadlines.  Every state has one, kept on the session's `wd` timer, so no
 * peer can hold a session longer than its state allows, whatever else
 * went wrong:
 *	waiting for a command	smtp_timeout from the last reply (a command
 *				trickled in byte by byte does not extend it)
 *	DATA, BDAT chunk	smtp_timeout, moved on by min_data_rate for each
 *				byte received (Postfix's smtpd_min_data_rate)
 *	busy (our delay, DNS,	the longest RFC 5321 stage plus the backend's
 *	the backend)		connect and reply timeouts
 *	TLS handshake		tls_handshake_timeout
 *	closing			SESS_CLOSE_MS to flush the last reply
 * and the class's session_time caps them all (not in observe mode).
 */

/* ms_add - tv plus ms milliseconds */
static void
ms_add(const struct timeval *tv, long ms_, struct timeval *out)
{
	struct timeval add = { ms_ / 1000, (ms_ % 1000) * 1000 };

	timeradd(tv, &add, out);
}

/* sess_busy_budget - ms a delayed or backend-bound step may take */
static long
sess_busy_budget(void)
{
	return SESS_STAGE_CAP_MS + ms->cf->backend_connect_timeout +
	    2 * ms->cf->backend_timeout + 10000;
}

/* sess_session_end - when the class's session_time runs out; 0: never */
static int
sess_session_end(const struct sess *s, struct timeval *end)
{
	if (sess_observe() || s->cls.session_time <= 0)
		return 0;
	ms_add(&s->sum.start, s->cls.session_time, end);
	return 1;
}

/* sess_watch - arm the deadline of the current state */
static void
sess_watch(struct sess *s)
{
	struct timeval due, now, end, d = { 0, 0 };

	switch (s->state) {
	case SESS_CLOSING:
		return;		/* sess_close() set it once */
	case SESS_TLS:
		ms_add(&s->cmd_time, ms->cf->tls_handshake_timeout, &due);
		break;
	default:
		if (s->busy)
			ms_add(&s->cmd_time, sess_busy_budget(), &due);
		else if (s->state == SESS_DATA || s->state == SESS_BDAT)
			due = s->data_deadline;
		else
			ms_add(&s->last_reply, ms->cf->smtp_timeout, &due);
		break;
	}
	if (sess_session_end(s, &end) && timercmp(&end, &due, <))
		due = end;
	gettimeofday(&now, NULL);
	if (timercmp(&due, &now, >))
		timersub(&due, &now, &d);
	evtimer_add(&s->wd, &d);
}

/* sess_wd_cb - the current state's deadline passed */
static void
sess_wd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess *s = arg;
	struct timeval end, now;

	(void)fd;
	(void)what;
	if (s->state == SESS_CLOSING) {
		sess_free(s, "close timeout");
		return;
	}
	if (!s->quit && s->sum.outcome != OC_BACKEND_ERROR)
		s->sum.outcome = OC_ABANDONED;
	if (s->state == SESS_TLS) {
		/* Nothing can be said in plaintext any more. */
		sess_free(s, "TLS handshake timeout");
		return;
	}
	gettimeofday(&now, NULL);
	if (sess_session_end(s, &end) && !timercmp(&now, &end, <)) {
		sess_close(s, OC_ABANDONED, "421 4.4.2 %s Error: session time "
		    "limit exceeded", ms->cf->myhostname);
		return;
	}
	if (s->busy)
		log_warnx("%s: deadline passed in state %s while waiting "
		    "(step %s)", s->sum.id, sess_state_name(s->state), s->verb);
	else if (s->state == SESS_DATA || s->state == SESS_BDAT)
		log_info("%s: content from [%s]:%d too slow (min_data_rate "
		    "%ld bytes/s)", s->sum.id, s->sum.ip, s->sum.port,
		    ms->cf->min_data_rate);
	sess_close(s, OC_ABANDONED, "421 4.4.2 %s Error: timeout exceeded",
	    ms->cf->myhostname);
}

/* sess_data_clock - content starts: smtp_timeout for the first bytes */
static void
sess_data_clock(struct sess *s)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	ms_add(&now, ms->cf->smtp_timeout, &s->data_deadline);
}

/*
 * sess_data_progress - n bytes of content arrived: each byte earns
 * 1/min_data_rate s, and the deadline is never more than smtp_timeout
 * ahead.  A class that throttles its input below twice the minimum is held
 * to half its own rate, so our own throttling never trips the check.
 */
static void
sess_data_progress(struct sess *s, size_t n)
{
	long	rate = ms->cf->min_data_rate;
	struct timeval now, cap, add;

	if (s->rate_limited && s->cls.rate_in > 0 && s->cls.rate_in / 2 < rate)
		rate = s->cls.rate_in / 2 > 0 ? s->cls.rate_in / 2 : 1;
	gettimeofday(&now, NULL);
	ms_add(&now, ms->cf->smtp_timeout, &cap);
	if (rate > 0) {
		double	us = (double)n * 1e6 / (double)rate;

		if (us > 1e12)
			us = 1e12;
		add.tv_sec = (time_t)(us / 1e6);
		add.tv_usec = (suseconds_t)(us - (double)add.tv_sec * 1e6);
		timeradd(&s->data_deadline, &add, &s->data_deadline);
		if (timercmp(&s->data_deadline, &cap, >))
			s->data_deadline = cap;
	} else
		s->data_deadline = cap;
	sess_watch(s);
}

/*
 * Output back-pressure: a client that sends commands but does not read
 * its replies stops being served once SESS_OUTPUT_HIWAT bytes wait for
 * it; its input then fills to SESS_INPUT_HIWAT and reading stops.  It is
 * served again when the output drains.
 */

/* sess_out_len - bytes queued for the client, TLS layer included */
static size_t
sess_out_len(struct sess *s)
{
	struct bufferevent *u = bufferevent_get_underlying(s->bev);
	size_t	n = evbuffer_get_length(bufferevent_get_output(s->bev));

	if (u != NULL)
		n += evbuffer_get_length(bufferevent_get_output(u));
	return n;
}

/* sess_out_poll - a TLS session's output is watched by polling */
static void
sess_out_poll(struct sess *s)
{
	struct timeval tv = { 0, 100000 };

	if (sess_out_len(s) > SESS_OUTPUT_HIWAT / 2) {
		s->cont = sess_out_poll;
		evtimer_add(&s->timer, &tv);
		return;
	}
	s->out_blocked = 0;
	sess_process(s);
}

/* sess_out_full - too much output waits: stop serving commands */
static int
sess_out_full(struct sess *s)
{
	if (sess_out_len(s) <= SESS_OUTPUT_HIWAT)
		return 0;
	if (!s->out_blocked) {
		s->out_blocked = 1;
		log_debug("%s: output over %d bytes: input paused", s->sum.id,
		    SESS_OUTPUT_HIWAT);
		/* The filter's write callback does not see the socket. */
		if (bufferevent_get_underlying(s->bev) != NULL)
			sess_out_poll(s);
	}
	return 1;
}

/* sess_writecb - output drained: serve the client again */
static void
sess_writecb(struct bufferevent *bev, void *arg)
{
	struct sess *s = arg;

	(void)bev;
	if (!s->out_blocked || bufferevent_get_underlying(s->bev) != NULL ||
	    sess_out_len(s) > SESS_OUTPUT_HIWAT / 2)
		return;
	s->out_blocked = 0;
	if (!s->busy)
		sess_process(s);
}

/*
 * Replies.
 */

/* sess_arm - run the timer at `due` (or now) */
static void
sess_arm(struct sess *s, const struct timeval *due)
{
	struct timeval now, d = { 0, 0 };

	gettimeofday(&now, NULL);
	if (timercmp(due, &now, >))
		timersub(due, &now, &d);
	evtimer_add(&s->timer, &d);
}

/* sess_reply_done - the reply is written: resume, or run the follow-up */
static void
sess_reply_done(struct sess *s)
{
	void	(*after)(struct sess *) = s->after;

	s->after = NULL;
	s->busy = 0;
	gettimeofday(&s->last_reply, NULL);
	sess_watch(s);
	if (after != NULL) {
		after(s);
		return;
	}
	sess_process(s);
}

/*
 * sess_write_timeout - a client that takes none of our output for
 * smtp_timeout is gone.  Reading has no bufferevent timeout: the state
 * deadlines (sess_watch) bound it.
 */
static void
sess_write_timeout(struct sess *s)
{
	struct timeval tv;

	tv.tv_sec = ms->cf->smtp_timeout / 1000;
	tv.tv_usec = (ms->cf->smtp_timeout % 1000) * 1000;
	bufferevent_set_timeouts(s->bev, NULL, &tv);
}

/*
 * sess_write_now - hand the whole reply to the socket.  When nothing is
 * queued and neither TLS nor a rate limit is in the way, write(2) it at
 * once: a reply then costs no EV_WRITE arming and disarming.  What the
 * kernel does not take goes through the bufferevent as usual.
 */
static void
sess_write_now(struct sess *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (!s->rate_limited && bufferevent_get_underlying(s->bev) == NULL &&
	    evbuffer_get_length(out) == 0)
		(void)evbuffer_write(s->reply, bufferevent_getfd(s->bev));
	if (evbuffer_get_length(s->reply) > 0)
		bufferevent_write_buffer(s->bev, s->reply);
}

/* sess_emit - write what is due of the reply; 1 when it is complete */
static int
sess_emit(struct sess *s)
{
	size_t	left = evbuffer_get_length(s->reply);
	struct timeval now;

	gettimeofday(&now, NULL);
	if (s->cls.stutter > 0 && s->reply_interval > 0 && !sess_observe() &&
	    left > (size_t)s->cls.stutter && timercmp(&now, &s->reply_due, <)) {
		struct timeval d = { s->reply_interval / 1000,
		    (s->reply_interval % 1000) * 1000 };

		bufferevent_write(s->bev, evbuffer_pullup(s->reply,
		    s->cls.stutter), s->cls.stutter);
		evbuffer_drain(s->reply, s->cls.stutter);
		evtimer_add(&s->timer, &d);
		return 0;
	}
	sess_write_now(s);
	return 1;
}

/* sess_banner_waits - the banner is held for DNS answers still out */
static int
sess_banner_waits(const struct sess *s)
{
	return s->state == SESS_BANNER &&
	    (s->dnsbl_req != NULL || s->fcrdns_req != NULL);
}

/* sess_reply_at - send the reply in s->reply so it completes by `due` */
static void
sess_reply_at(struct sess *s, const struct timeval *due)
{
	struct timeval now, start;
	long	budget, interval;
	size_t	len = evbuffer_get_length(s->reply), chunks;

	s->busy = 1;
	s->reply_due = *due;
	sess_watch(s);
	gettimeofday(&now, NULL);
	budget = 0;
	if (timercmp(due, &now, >)) {
		struct timeval d;

		timersub(due, &now, &d);
		budget = d.tv_sec * 1000L + d.tv_usec / 1000;
	}
	/* Observe mode and classes without delay answer at once. */
	if ((budget <= 0 && !sess_banner_waits(s)) || sess_observe()) {
		sess_emit(s);
		sess_reply_done(s);
		return;
	}
	interval = shp_chunk_interval(&s->cls, len, budget);
	s->reply_interval = interval;
	start = *due;
	if (interval > 0) {
		long	span;
		struct timeval d;

		chunks = (len + s->cls.stutter - 1) / s->cls.stutter;
		span = (long)(chunks - 1) * interval;
		d.tv_sec = span / 1000;
		d.tv_usec = (span % 1000) * 1000;
		timersub(due, &d, &start);
	}
	/* The timer writes the first chunk (or all of it) at `start`. */
	sess_arm(s, &start);
}

/*
 * sess_delay - the class's delay for a reply at `stage`: none while the
 * session holds a backend connection (a delayed session never holds one);
 * for a MAIL that opens a relayed transaction (txn), the delays of the
 * whole transaction (shp_txn_delay_ms())
 */
static long
sess_delay(const struct sess *s, enum shp_stage stage, int txn)
{
	if (s->bk != NULL)
		return 0;
	if (stage == SHP_GREETING && s->banner_ms >= 0 && !sess_observe())
		return s->banner_ms;
	if (txn)
		return shp_txn_delay_ms(&s->cls, sess_observe());
	return shp_delay_ms(&s->cls, stage, sess_observe());
}

/*
 * Backend connections by class.  A class below the full backend_share
 * ("slow") holds at most its share of backend_max_connections; the
 * connection a session holds counts in the class it had when it took it.
 */

/* sess_bk_slow - the session's class is capped in backend connections */
static int
sess_bk_slow(const struct sess *s)
{
	return !sess_observe() && s->cls.backend_share < 100;
}

/* sess_bk_slot - may the session take a backend connection now? */
static int
sess_bk_slot(const struct sess *s)
{
	long	cap;

	if (!bk_can_open())
		return 0;
	if (!sess_bk_slow(s) || s->sum.class_idx < 0)
		return 1;
	cap = ms->cf->backend_max_connections * s->cls.backend_share / 100;
	return ms->bk_class[s->sum.class_idx] < (cap > 0 ? cap : 1);
}

/* sess_bk_attach - the session holds b */
static void
sess_bk_attach(struct sess *s, struct bk *b)
{
	s->bk = b;
	s->bk_cls = s->sum.class_idx;
	if (s->bk_cls >= 0)
		ms->bk_class[s->bk_cls]++;
}

/* sess_bk_detach - give the connection up: dropped, closed with QUIT, or
 * released (cached for another session where the identity allows) */
static void
sess_bk_detach(struct sess *s, int how)
{
	struct bk *b = s->bk;

	if (b == NULL)
		return;
	s->bk = NULL;
	if (s->bk_cls >= 0)
		ms->bk_class[s->bk_cls]--;
	s->bk_cls = -1;
	if (how == SESS_BK_RELEASE)
		bk_release(b);
	else
		bk_free(b, how == SESS_BK_QUIT);
}

/* sess_due - the deadline for a reply at `stage` to the current command */
static void
sess_due(struct sess *s, enum shp_stage stage, struct timeval *due)
{
	long	d = sess_delay(s, stage, 0);
	struct timeval add = { d / 1000, (d % 1000) * 1000 };

	adm_delay(s->sum.class_idx, d);
	timeradd(&s->cmd_time, &add, due);
}

/* sess_reply - format a local reply to the current command and send it */
static void
sess_reply(struct sess *s, enum shp_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sess_reply(struct sess *s, enum shp_stage stage, const char *fmt, ...)
{
	struct timeval due;
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(s->reply, fmt, ap);
	va_end(ap);
	evbuffer_add(s->reply, "\r\n", 2);
	sess_due(s, stage, &due);
	sess_reply_at(s, &due);
}

/* sess_relay - send the backend's reply text verbatim */
static void
sess_relay(struct sess *s, const char *text)
{
	evbuffer_add(s->reply, text, strlen(text));
	sess_reply_at(s, &s->reply_due);
}

/*
 * sess_later - run fn when the pre-delay of `stage` has passed; txn: the
 * command opens a relayed transaction (MAIL), so it also carries the
 * delays of the transaction's later stages (shp_txn_delay_ms())
 */
static void
sess_later(struct sess *s, enum shp_stage stage, void (*fn)(struct sess *),
    int txn)
{
	long	d = sess_delay(s, stage, txn);
	long	pre = shp_pre_delay_ms(&s->cls, d);
	struct timeval at, add = { pre / 1000, (pre % 1000) * 1000 };
	struct timeval dd = { d / 1000, (d % 1000) * 1000 };

	s->busy = 1;
	adm_delay(s->sum.class_idx, d);
	timeradd(&s->cmd_time, &dd, &s->reply_due);
	timeradd(&s->cmd_time, &add, &at);
	s->cont = fn;
	sess_watch(s);
	sess_arm(s, &at);
}

/* sess_timer_cb - a delay ended: continue, or write the next chunk */
static void
sess_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sess *s = arg;
	void	(*cont)(struct sess *) = s->cont;

	(void)fd;
	(void)what;
	if (cont != NULL) {
		s->cont = NULL;
		cont(s);
		return;
	}
	if (sess_banner_waits(s))
		return;		/* the DNS answers will re-arm the banner */
	if (sess_emit(s))
		sess_reply_done(s);
}

/* sess_decide_again - an asynchronous input arrived: re-class */
static void
sess_decide_again(struct sess *s, const char *what)
{
	int	before = s->sum.class_idx;
	char	was[CONF_NAME_MAX];

	snprintf(was, sizeof(was), "%s", s->cls.name);
	sess_classify(s);
	sess_reclassed(s, before);
	if (strcmp(was, s->cls.name) != 0)
		log_info("%s: %s: class %s -> %s (score %+.1f)", s->sum.id, what,
		    was, s->cls.name, s->sum.score);
	sess_rearm_banner(s, 0);
}

/*
 * sess_rearm_banner - a banner still being held follows the current class;
 * only_later: a violation may lengthen the wait, never shorten it
 */
static void
sess_rearm_banner(struct sess *s, int only_later)
{
	long	d;
	struct timeval add, due;

	if (s->state != SESS_BANNER)
		return;
	/* The new class's banner delay counts from the connect time. */
	d = sess_delay(s, SHP_GREETING, 0);
	add.tv_sec = d / 1000;
	add.tv_usec = (d % 1000) * 1000;
	timeradd(&s->sum.start, &add, &due);
	if (only_later && timercmp(&due, &s->reply_due, <))
		return;
	sess_reply_at(s, &due);
}

/* sess_dnsbl_done - the DNS lists answered (or timed out) */
static void
sess_dnsbl_done(void *arg, const struct dnsbl_result *r)
{
	struct sess *s = arg;
	struct dnsbl_result *copy;

	s->dnsbl_req = NULL;
	if ((copy = malloc(sizeof(*copy))) != NULL) {
		*copy = *r;
		s->sum.dnsbl = copy;
	}
	sess_decide_again(s, "dnsbl");
	/* after the decision: in its own score the listing is the weight */
	sess_learn_listing(s);
}

/* sess_fcrdns_done - the reverse name is verified, or not */
static void
sess_fcrdns_done(void *arg, const char *name, const char *org)
{
	struct sess *s = arg;

	s->fcrdns_req = NULL;
	if (name != NULL)
		s->sum.ptr_name = strdup(name);
	if (org != NULL)
		s->sum.domain = strdup(org);
	sess_decide_again(s, "reverse name");
	/* a listing that came first teaches the domain key now */
	sess_learn_listing(s);
}

/*
 * Event records and the end of a transaction.
 */

/* sess_learn_msg - a message's outcome teaches reputation (not ours) */
static void
sess_learn_msg(struct sess *s, enum outcome oc)
{
	s->learned = 1;
	if (outcome_flags(oc) & OC_F_BAD)
		s->bad = 1;
	sess_learn(s, oc);	/* the policy ignores our backend errors */
}

/* sess_msg_end - log and write the message record; reset the transaction */
static void
sess_msg_end(struct sess *s, enum outcome oc, const char *reply)
{
	struct evr_message m;
	struct evbuffer *b;
	char	line[200];

	if (s->mail_from == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.sess = &s->sum;
	m.msgno = s->sum.msgno;
	gettimeofday(&m.time, NULL);
	m.mail_from = s->mail_from;
	m.rcpt = s->rcpt;
	m.rcpt_accepted = s->rcpt_ok;
	m.size = s->canon.size;
	m.outcome = oc;
	m.stage = s->stage;
	if (reply != NULL) {
		size_t	n = strcspn(reply, "\r\n");

		snprintf(line, sizeof(line), "%.*s", (int)(n < 190 ? n : 190),
		    reply);
		m.reply = line;
	}
	log_info("%s.%d: from=<%s>, nrcpt=%d/%d, size=%zu, class=%s, "
	    "outcome=%s, stage=%s, reply=%s", s->sum.id, m.msgno, s->mail_from,
	    s->rcpt_ok, s->rcpt, s->canon.size, s->cls.name, outcome_name(oc),
	    msg_stage_name(s->stage), reply ? line : "none");
	ms->st.messages++;
	if (oc == OC_DELIVERED)
		ms->st.delivered++;
	adm_msg_end(&s->sum, oc);
	sess_learn_msg(s, oc);
	if ((b = evbuffer_new()) != NULL) {
		if (evr_message_json(&m, b) == 0)
			evlog_append(b);
		evbuffer_free(b);
	}
	free(s->mail_from);
	s->mail_from = NULL;
	free(s->mail_params);
	s->mail_params = NULL;
	spool_free(s->spool);
	s->spool = NULL;
	s->spool_failed = 0;
	s->bdat_txn = 0;
	s->rcpt = s->rcpt_ok = 0;
	s->data_too_big = 0;
	memset(&s->canon, 0, sizeof(s->canon));
	s->stage = MST_MAIL;
	/* A delayed or capped class gives the connection back between
	 * transactions: its next MAIL waits without holding it. */
	if (s->bk != NULL && (sess_bk_slow(s) ||
	    shp_delay_ms(&s->cls, SHP_MAIL, sess_observe()) > 0))
		sess_bk_detach(s, s->bk_txn ? SESS_BK_QUIT : SESS_BK_RELEASE);
	if (s->state == SESS_MAIL || s->state == SESS_RCPT ||
	    s->state == SESS_DATA || s->state == SESS_BDAT)
		sess_enter_state(s, SESS_READY);
}

/* msg_outcome_of - outcome from a final reply code */
static enum outcome
msg_outcome_of(int code)
{
	if (code >= 200 && code < 300)
		return OC_DELIVERED;
	if (code >= 400 && code < 500)
		return OC_DEFERRED;
	return OC_REJECTED;
}

/* sess_record - write the session record */
static void
sess_record(struct sess *s)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		return;
	gettimeofday(&s->sum.end, NULL);
	s->sum.observe = sess_observe();
	s->sum.gave_up_after_s = s->sum.outcome == OC_ABANDONED && s->eof ?
	    ms_since(&s->sum.start) / 1000.0 : -1;
	if (evr_session_json(&s->sum, b) == 0)
		evlog_append(b);
	evbuffer_free(b);
}

/* sess_free - the only teardown: records, counters, memory */
static void
sess_free(struct sess *s, const char *reason)
{
	if (s->mail_from != NULL)
		sess_msg_end(s, s->backend_failed ? OC_BACKEND_ERROR :
		    OC_ABANDONED, NULL);
	/* A sender that gave up or broke the protocol before any message. */
	if (s->sum.counted && !s->learned &&
	    (s->sum.outcome == OC_ABANDONED ||
	    s->sum.outcome == OC_PROTOCOL_ERROR))
		sess_learn(s, s->sum.outcome);
	if (s->sum.counted) {		/* a refused connection teaches nothing */
		struct pol_input in;
		double	dur = ms_since(&s->sum.start) / 1000.0;

		sess_pol_input(s, &in);
		(void)pol_learn_patience(&in, s->sum.outcome == OC_ABANDONED &&
		    s->eof ? dur : -1, dur, s->bad ||
		    s->sum.outcome == OC_ABANDONED ||
		    s->sum.outcome == OC_PROTOCOL_ERROR);
	}
	if (s->dnsbl_req != NULL) {
		dnsbl_cancel(s->dnsbl_req);
		s->dnsbl_req = NULL;
	}
	if (s->fcrdns_req != NULL) {
		fcrdns_cancel(s->fcrdns_req);
		s->fcrdns_req = NULL;
	}
	fb_remember(&s->sum);
	adm_sess_end(&s->sum);
	log_info("%s: disconnect from [%s]:%d class=%s outcome=%s "
	    "messages=%d duration=%.3fs%s%s", s->sum.id, s->sum.ip, s->sum.port,
	    s->cls.name, outcome_name(s->sum.outcome), s->sum.messages,
	    ms_since(&s->sum.start) / 1000.0, reason ? " reason=" : "",
	    reason ? reason : "");
	sess_record(s);
	evtimer_del(&s->timer);
	evtimer_del(&s->wd);
	sess_bk_detach(s, s->bk_txn ? SESS_BK_QUIT : SESS_BK_RELEASE);
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->sum.counted) {
		client_release(&s->sum.peer.sa, s->sum.class_idx);
		ms->nsess--;
	}
	if (s->sum.class_idx >= 0)
		ms->class_count[s->sum.class_idx]--;
	if (s->prev)
		s->prev->next = s->next;
	else if (sess_list == s)
		sess_list = s->next;
	if (s->next)
		s->next->prev = s->prev;
	evbuffer_free(s->reply);
	s->reply = NULL;
	spool_free(s->spool);
	s->spool = NULL;
	fp_release(s->sum.fp);
	free((void *)s->sum.dnsbl);
	free(s->sum.ptr_name);
	free(s->sum.domain);
	free(s->sum.reasons);
	free(s->sum.helo);
	free(s->mail_from);
	free(s->mail_params);
	free(s->pending);
	free(s->pending_args);
	free(s);
	ms_session_gone();
}

/* sess_flushed - 1 when nothing is left to write, TLS layer included */
static int
sess_flushed(struct sess *s)
{
	struct bufferevent *u = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	    (u == NULL || evbuffer_get_length(bufferevent_get_output(u)) == 0);
}

/* sess_drain_check - poll until a TLS session's last bytes are sent */
static void
sess_drain_check(struct sess *s)
{
	struct timeval tv = { 0, 20000 };

	if (sess_flushed(s)) {
		sess_free(s, NULL);
		return;
	}
	s->cont = sess_drain_check;
	evtimer_add(&s->timer, &tv);
}

/* sess_drained - the final reply left our buffer: free once it is sent */
static void
sess_drained(struct bufferevent *bev, void *arg)
{
	struct sess *s = arg;

	(void)bev;
	if (s->cont == sess_drain_check)
		return;
	sess_drain_check(s);
}

/* sess_close - write a final reply (no delay) and end the session */
static void
sess_close(struct sess *s, enum outcome oc, const char *fmt, ...)
{
	struct timeval tv = { SESS_CLOSE_MS / 1000, 0 };
	va_list	ap;

	evtimer_del(&s->timer);
	s->cont = NULL;
	s->busy = 1;
	s->sum.outcome = oc;
	sess_enter_state(s, SESS_CLOSING);
	evtimer_add(&s->wd, &tv);	/* then it is freed, sent or not */
	sess_bk_detach(s, s->bk_txn ? SESS_BK_QUIT : SESS_BK_RELEASE);
	evbuffer_drain(s->reply, evbuffer_get_length(s->reply));
	/* Callbacks first: a TLS filter may drain the output at once. */
	bufferevent_setcb(s->bev, NULL, sess_drained, sess_eventcb, s);
	bufferevent_disable(s->bev, EV_READ);
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(s->bev), "\r\n", 2);
}

/* sess_error - a syntax or sequence error; too many end the session */
static void
sess_error(struct sess *s, enum shp_stage stage, const char *reply)
{
	log_info("%s: reject: %s from [%s]:%d: %s", s->sum.id, s->verb[0] ?
	    s->verb : "input", s->sum.ip, s->sum.port, reply);
	if (++s->errors >= ms->cf->smtp_error_limit) {
		log_info("%s: too many errors from [%s]:%d", s->sum.id, s->sum.ip,
		    s->sum.port);
		sess_close(s, OC_PROTOCOL_ERROR, "421 4.7.0 %s Error: too many "
		    "errors", ms->cf->myhostname);
		return;
	}
	sess_reply(s, stage, "%s", reply);
}

/*
 * The backend.
 */

/* sess_backend_down - forget a failed backend connection */
static void
sess_backend_down(struct sess *s, const char *text)
{
	log_warnx("%s: backend %s: %.*s", s->sum.id, ms->cf->backend.text,
	    (int)strcspn(text, "\r\n"), text);
	ms->st.backend_errors++;
	s->backend_failed = 1;
	s->bk_txn = 0;
	sess_bk_detach(s, SESS_BK_DROP);
}

/* sess_tempfail_txn - the backend failed mid-transaction: 451, record */
static void
sess_tempfail_txn(struct sess *s, const char *text)
{
	/* A 421 is the backend's own last word: keep it as the reply. */
	int	said = strncmp(text, "421", 3) == 0;

	sess_backend_down(s, text);
	evbuffer_add_printf(s->reply, "451 4.3.0 Error: temporary failure, "
	    "try again later\r\n");
	s->sum.outcome = OC_BACKEND_ERROR;
	sess_msg_end(s, OC_BACKEND_ERROR, said ? text : NULL);
	sess_reply_at(s, &s->reply_due);
}

/* sess_mail_reply - the backend answered MAIL */
static void
sess_mail_reply(void *arg, int code, const char *text)
{
	struct sess *s = arg;
	if (code < 0 || code == 421)
		return sess_tempfail_txn(s, text);
	s->backend_failed = 0;
	if (code >= 200 && code < 300) {
		s->bk_txn = 1;
		sess_enter_state(s, SESS_MAIL);
		if (s->sum.outcome == OC_BACKEND_ERROR)
			s->sum.outcome = OC_COMPLETED;
	} else
		sess_msg_end(s, msg_outcome_of(code), text);
	sess_relay(s, text);
}

/* sess_send_mail - backend ready: forward MAIL */
static void
sess_bk_ready(void *arg, int code, const char *text)
{
	struct sess *s = arg;
	char	line[SESS_PATH_MAX + 600];

	if (code < 0)
		return sess_tempfail_txn(s, text);
	snprintf(line, sizeof(line), "MAIL FROM:<%s>%s%s", s->mail_from,
	    *s->mail_params ? " " : "", s->mail_params);
	bk_command(s->bk, line, sess_mail_reply);
}

/* sess_bk_reset - the backend answered our RSET: now the MAIL */
static void
sess_bk_reset(void *arg, int code, const char *text)
{
	struct sess *s = arg;
	if (code < 0 || code == 421)
		return sess_tempfail_txn(s, text);
	s->bk_txn = 0;
	sess_bk_ready(s, 250, "");
}

/* sess_mail_go - MAIL after its delay: class action, backend, forward */
static void
sess_mail_go(struct sess *s)
{
	struct bk *b;

	if (!sess_observe() && s->cls.action == ACTION_TEMPFAIL) {
		evbuffer_add_printf(s->reply, "451 4.7.1 Service temporarily "
		    "unavailable, try again later\r\n");
		sess_msg_end(s, OC_DEFERRED, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	if (!sess_observe() && s->cls.action == ACTION_REJECT) {
		evbuffer_add_printf(s->reply, "554 5.7.1 Service refused\r\n");
		sess_msg_end(s, OC_REJECTED, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	if (s->bk != NULL && s->bk_txn) {
		/* We ended the last transaction ourselves: end it there too. */
		bk_command(s->bk, "RSET", sess_bk_reset);
		return;
	}
	if (s->bk != NULL) {
		sess_bk_ready(s, 250, "");
		return;
	}
	if (!sess_bk_slot(s))
		return sess_mail_wait(s);
	if (s->bk_waiting) {
		s->bk_waiting = 0;
		log_info("%s: backend connection after %.1fs", s->sum.id,
		    ms_since(&s->cmd_time) / 1000.0);
	}
	if ((b = bk_open(&s->sum, &s->local, s, sess_bk_ready)) == NULL)
		return sess_tempfail_txn(s, "cannot allocate a connection");
	sess_bk_attach(s, b);
}

/*
 * sess_mail_wait - no backend connection for this MAIL yet (none free, or
 * its class holds its backend_share): look again shortly, until MAIL's
 * RFC 5321 limit less 10 s; then 451 4.3.2
 */
static void
sess_mail_wait(struct sess *s)
{
	struct timeval now, end, at;

	gettimeofday(&now, NULL);
	ms_add(&s->cmd_time, shp_cap_ms(SHP_MAIL), &end);
	if (!timercmp(&now, &end, <)) {
		s->bk_waiting = 0;
		log_warnx("%s: no backend connection within MAIL's limit "
		    "(backend_max_connections %ld, class %s backend_share %ld%%)",
		    s->sum.id, ms->cf->backend_max_connections, s->cls.name,
		    s->cls.backend_share);
		evbuffer_add_printf(s->reply, "451 4.3.2 Too busy, try again "
		    "later\r\n");
		s->sum.outcome = OC_BACKEND_ERROR;
		sess_msg_end(s, OC_BACKEND_ERROR, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	if (!s->bk_waiting) {
		s->bk_waiting = 1;
		ms->st.backend_waits++;
		log_info("%s: waiting for a backend connection (class %s)",
		    s->sum.id, s->cls.name);
	}
	ms_add(&now, SESS_BK_POLL_MS, &at);
	if (timercmp(&end, &at, <))
		at = end;
	s->cont = sess_mail_go;
	sess_arm(s, &at);
}

/* sess_rcpt_reply - the backend answered RCPT */
static void
sess_rcpt_reply(void *arg, int code, const char *text)
{
	struct sess *s = arg;
	if (code < 0 || code == 421)
		return sess_tempfail_txn(s, text);
	if (code >= 200 && code < 300) {
		s->rcpt_ok++;
		s->rcpt_total++;
		sess_enter_state(s, SESS_RCPT);
	}
	sess_relay(s, text);
}

/* sess_rcpt_go - forward the held RCPT */
static void
sess_rcpt_go(struct sess *s)
{
	char   *line = s->pending;

	s->pending = NULL;
	if (s->bk == NULL) {
		free(line);
		return sess_tempfail_txn(s, "connection lost");
	}
	s->stage = MST_RCPT;
	bk_command(s->bk, line, sess_rcpt_reply);
	free(line);
}

/* sess_dot_reply - the backend's verdict on the message */
static void
sess_dot_reply(void *arg, int code, const char *text)
{
	struct sess *s = arg;
	if (code < 0 || code == 421)
		return sess_tempfail_txn(s, text);
	s->bk_txn = 0;
	s->sum.messages++;
	sess_msg_end(s, msg_outcome_of(code), text);
	sess_relay(s, text);
}

/* sess_dot_go - the message is complete and its delay is over */
static void
sess_dot_go(struct sess *s)
{
	struct evbuffer *content;
	char	err[160] = "";

	s->stage = MST_DOT;
	if (s->data_too_big) {
		evbuffer_add_printf(s->reply, "552 5.3.4 Error: message file "
		    "too big\r\n");
		sess_msg_end(s, OC_REJECTED, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	if (s->canon.bad && ms->cf->bare_policy == BARE_REJECT) {
		log_info("%s: message refused: %s in content", s->sum.id,
		    canon_bad_text(s->canon.bad));
		evbuffer_add_printf(s->reply, "550 5.5.2 Error: %s received\r\n",
		    canon_bad_text(s->canon.bad));
		sess_msg_end(s, OC_PROTOCOL_ERROR, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	if (s->spool_failed || s->spool == NULL) {
		/* Our own failure: the client tries again, nothing is lost. */
		evbuffer_add_printf(s->reply, "451 4.3.0 Error: queue file "
		    "write error\r\n");
		sess_msg_end(s, OC_BACKEND_ERROR, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	if (s->bk == NULL)
		return sess_tempfail_txn(s, "connection lost before the message");
	content = spool_take(s->spool, err, sizeof(err));
	s->spool = NULL;
	if (content == NULL) {
		log_warnx("%s: %s", s->sum.id, err);
		evbuffer_add_printf(s->reply, "451 4.3.0 Error: queue file "
		    "read error\r\n");
		sess_msg_end(s, OC_BACKEND_ERROR, NULL);
		return sess_reply_at(s, &s->reply_due);
	}
	bk_data(s->bk, content, sess_dot_reply);
}

/* sess_rset_reply - the backend answered RSET */
static void
sess_rset_reply(void *arg, int code, const char *text)
{
	struct sess *s = arg;
	if (code < 0) {
		sess_backend_down(s, text);
		s->backend_failed = 0;
	}
	s->bk_txn = 0;
	evbuffer_add_printf(s->reply, "250 2.0.0 Ok\r\n");
	sess_reply_at(s, &s->reply_due);
}

/* sess_rset_go - RSET after its delay */
static void
sess_rset_go(struct sess *s)
{
	if (s->bk != NULL) {
		bk_command(s->bk, "RSET", sess_rset_reply);
		return;
	}
	evbuffer_add_printf(s->reply, "250 2.0.0 Ok\r\n");
	sess_reply_at(s, &s->reply_due);
}

/*
 * Commands.
 */

/* sess_size_limit - the largest message we take */
static long
sess_size_limit(void)
{
	long	lim = ms->cf->message_size_limit;

	if (bk_caps()->has_size && bk_caps()->size > 0 &&
	    (lim == 0 || bk_caps()->size < lim))
		lim = bk_caps()->size;
	return lim > 0 ? lim : SESS_HARD_SIZE;
}

/* sess_apply_rate - the class's byte-rate limits (none in observe mode) */
static void
sess_apply_rate(struct sess *s)
{
	struct ev_token_bucket_cfg *cfg = NULL;

	if (!sess_observe())
		cfg = shp_rate_cfg(&s->cls);
	s->rate_limited = cfg != NULL;
	bufferevent_set_rate_limit(s->bev, cfg);
}

/* sess_reclassed - the class may have changed: counts and limits follow */
static void
sess_reclassed(struct sess *s, int before)
{
	if (before == s->sum.class_idx)
		return;
	if (s->sum.counted)
		client_reclass(&s->sum.peer.sa, before, s->sum.class_idx);
	sess_apply_rate(s);
}

/* sess_violation - count, demote, and re-apply the class's limits */
static void
sess_violation(struct sess *s, const char *what)
{
	int	before = s->sum.class_idx;
	char	was[CONF_NAME_MAX];

	s->sum.violations++;
	s->sum.violation = what;
	ms->st.violations++;
	snprintf(was, sizeof(was), "%s", s->cls.name);
	sess_classify(s);
	log_info("%s: violation: %s from [%s]:%d; class %s -> %s%s", s->sum.id,
	    what, s->sum.ip, s->sum.port, was, s->cls.name,
	    ms->cf->observe ? " (observe)" : "");
	sess_reclassed(s, before);
	if (before != s->sum.class_idx)
		sess_rearm_banner(s, 1);
}

/* parse_path - "FROM:<path> params" -> path and params; NULL on success */
static const char *
parse_path(char *args, const char *prefix, char **path, char **params)
{
	size_t	plen = strlen(prefix);
	char   *p, *end;

	if (strncasecmp(args, prefix, plen) != 0)
		return "bad syntax";
	p = args + plen;
	while (*p == ' ')
		p++;
	if (*p != '<')
		return "missing '<'";
	end = strchr(p, '>');
	if (end == NULL)
		return "missing '>'";
	if (end - p - 1 > 256)
		return "address too long";
	*end = 0;
	*path = p + 1;
	for (p = *path; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' ||
		    (unsigned char)*p == 0x7f)
			return "bad character in address";
	p = end + 1;
	if (*p != 0 && *p != ' ')
		return "bad syntax after address";
	while (*p == ' ')
		p++;
	*params = p;
	return NULL;
}

/* sess_txn_abandon - a new EHLO, RSET or the end drops the transaction */
static void
sess_txn_abandon(struct sess *s)
{
	if (s->mail_from != NULL)
		sess_msg_end(s, OC_ABANDONED, NULL);
}

/* check_helo - EHLO/HELO need a name */
static const char *
check_helo(struct sess *s, char *args)
{
	(void)s;
	if (*args == 0)
		return "501 5.5.4 Syntax: EHLO hostname";
	if (strlen(args) > 255)
		return "501 5.5.4 Error: host name too long";
	return NULL;
}

/* sess_set_helo - remember the client's name */
static void
sess_set_helo(struct sess *s, const char *name, int esmtp)
{
	free(s->sum.helo);
	s->sum.helo = strdup(name);
	s->sum.esmtp = esmtp;
	sess_txn_abandon(s);
	sess_enter_state(s, SESS_READY);
}

/* do_ehlo - our own EHLO reply, from the backend probe's keywords */
static void
do_ehlo(struct sess *s, char *args)
{
	const struct bk_caps *c = bk_caps();
	char	size[32];
	const char *kw[12];
	struct timeval due;
	int	n = 0, i;

	sess_set_helo(s, args, 1);
	kw[n++] = ms->cf->myhostname;
	kw[n++] = "PIPELINING";
	if (c->has_size || ms->cf->message_size_limit > 0) {
		snprintf(size, sizeof(size), "SIZE %ld", sess_size_limit());
		kw[n++] = size;
	}
	if (ms->cf->vrfy_command)
		kw[n++] = "VRFY";
	if (ms->tls != NULL && !s->sum.tls)
		kw[n++] = "STARTTLS";
	if (c->enhanced)
		kw[n++] = "ENHANCEDSTATUSCODES";
	if (c->eightbit)
		kw[n++] = "8BITMIME";
	if (c->smtputf8)
		kw[n++] = "SMTPUTF8";
	if (c->chunking)
		kw[n++] = "CHUNKING";
	for (i = 0; i < n; i++)
		evbuffer_add_printf(s->reply, "250%c%s\r\n",
		    i == n - 1 ? ' ' : '-', kw[i]);
	sess_due(s, SHP_MAIL, &due);
	sess_reply_at(s, &due);
}

/* do_helo - plain SMTP greeting */
static void
do_helo(struct sess *s, char *args)
{
	sess_set_helo(s, args, 0);
	sess_reply(s, SHP_MAIL, "250 %s", ms->cf->myhostname);
}

/* check_mail - sequence, syntax, parameters, limits */
static const char *
check_mail(struct sess *s, char *args)
{
	char   *path, *params, *p, *w;
	const char *why;
	static char reply[160];
	struct evbuffer *fwd;

	if (s->state == SESS_MAIL || s->state == SESS_RCPT)
		return "503 5.5.1 Error: nested MAIL command";
	if ((why = parse_path(args, "FROM:", &path, &params)) != NULL) {
		snprintf(reply, sizeof(reply), "501 5.1.7 Bad sender address "
		    "syntax (%s)", why);
		return reply;
	}
	if (!sess_observe() && s->cls.max_messages > 0 &&
	    s->sum.msgno >= s->cls.max_messages)
		return "452 4.5.3 Error: too many messages in this session";
	fwd = evbuffer_new();
	for (p = params; (w = strsep(&p, " ")) != NULL;) {
		if (*w == 0)
			continue;
		if (strncasecmp(w, "SIZE=", 5) == 0 &&
		    strspn(w + 5, "0123456789") == strlen(w + 5) && w[5] &&
		    strlen(w + 5) < 19) {
			if (atol(w + 5) > sess_size_limit()) {
				evbuffer_free(fwd);
				return "552 5.3.4 Message size exceeds fixed "
				    "limit";
			}
		} else if (strcasecmp(w, "BODY=7BIT") == 0 ||
		    (strcasecmp(w, "BODY=8BITMIME") == 0 && bk_caps()->eightbit) ||
		    (strcasecmp(w, "SMTPUTF8") == 0 && bk_caps()->smtputf8)) {
			/* offered, forwarded as given */
		} else {
			snprintf(reply, sizeof(reply), "555 5.5.4 Unsupported "
			    "option: %.60s", w);
			evbuffer_free(fwd);
			return reply;
		}
		evbuffer_add_printf(fwd, "%s%s", evbuffer_get_length(fwd) ?
		    " " : "", w);
	}
	evbuffer_add(fwd, "", 1);
	free(s->mail_params);
	s->mail_params = strdup((char *)evbuffer_pullup(fwd, -1));
	evbuffer_free(fwd);
	free(s->mail_from);
	s->mail_from = strdup(path);
	return NULL;
}

/* do_mail - start a transaction; the backend sees it after the delay */
static void
do_mail(struct sess *s, char *args)
{
	(void)args;
	s->sum.msgno++;
	s->rcpt = s->rcpt_ok = 0;
	s->stage = MST_MAIL;
	canon_init(&s->canon, 0, 1);
	sess_later(s, SHP_MAIL, sess_mail_go, sess_observe() ||
	    s->cls.action == ACTION_RELAY);
}

/* check_rcpt - need MAIL; syntax; per-session recipient limit */
static const char *
check_rcpt(struct sess *s, char *args)
{
	char   *path, *params;
	const char *why;
	static char reply[160];

	if (s->state != SESS_MAIL && s->state != SESS_RCPT)
		return "503 5.5.1 Error: need MAIL command";
	if ((why = parse_path(args, "TO:", &path, &params)) != NULL) {
		snprintf(reply, sizeof(reply), "501 5.1.3 Bad recipient address "
		    "syntax (%s)", why);
		return reply;
	}
	if (*path == 0)
		return "501 5.1.3 Bad recipient address syntax";
	if (*params) {
		snprintf(reply, sizeof(reply), "555 5.5.4 Unsupported option: "
		    "%.60s", params);
		return reply;
	}
	if (s->rcpt >= ms->cf->smtp_recipient_limit ||
	    (!sess_observe() && s->cls.max_rcpt > 0 &&
	    s->rcpt_total >= s->cls.max_rcpt))
		return "452 4.5.3 Error: too many recipients";
	free(s->pending);
	if (asprintf(&s->pending, "RCPT TO:<%s>", path) < 0)
		s->pending = NULL;
	return s->pending ? NULL : "451 4.3.0 Error: out of memory";
}

/* do_rcpt - forwarded after the delay */
static void
do_rcpt(struct sess *s, char *args)
{
	(void)args;
	s->rcpt++;
	sess_later(s, SHP_RCPT, sess_rcpt_go, 0);
}

/* check_data - need accepted recipients */
static const char *
check_data(struct sess *s, char *args)
{
	if (*args)
		return "501 5.5.4 Syntax: DATA";
	if (s->bdat_txn)
		return "503 5.5.1 Error: DATA after BDAT (RFC 3030)";
	if (s->state == SESS_MAIL)
		return "554 5.5.1 Error: no valid recipients";
	if (s->state != SESS_RCPT)
		return "503 5.5.1 Error: need RCPT command";
	return NULL;
}

/* hdr_quoted - a header value safe inside double quotes */
static void
hdr_quoted(struct evbuffer *b, const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v >= 0x20 && *v != '"' && *v != '\\' &&
		    (unsigned char)*v < 0x7f)
			evbuffer_add(b, v, 1);
}

/* sess_trace_header - the header for downstream filters, folded */
static void
sess_trace_header(struct sess *s, struct evbuffer *b)
{
	if (*ms->cf->trace_header == 0 || b == NULL)
		return;
	evbuffer_add_printf(b, "%s: id=%s.%d; class=%s;%s", ms->cf->trace_header,
	    s->sum.id, s->sum.msgno, s->cls.name, s->sum.control ? " control=yes;" : "");
	if (s->sum.fp != NULL) {
		evbuffer_add_printf(b, "\r\n\trawsig=%s; key=\"", s->sum.fp->key_hash);
		hdr_quoted(b, s->sum.fp->key);
		evbuffer_add_printf(b, "\";\r\n\tos=\"");
		hdr_quoted(b, s->sum.fp->os);
		evbuffer_add_printf(b, "\"\r\n");
	} else
		evbuffer_add_printf(b, " rawsig=none\r\n");
}

/* sess_spool_start - a new message's spool, with our trace header */
static void
sess_spool_start(struct sess *s)
{
	spool_free(s->spool);
	s->spool_failed = 0;
	if ((s->spool = spool_new()) == NULL) {
		log_warnx("%s: out of memory for a message", s->sum.id);
		s->spool_failed = 1;
		return;
	}
	sess_trace_header(s, spool_buf(s->spool));
}

/* sess_content_out - where content goes: the spool, or nowhere */
static struct evbuffer *
sess_content_out(struct sess *s)
{
	if (s->data_too_big || s->spool_failed || s->spool == NULL)
		return NULL;
	return spool_buf(s->spool);
}

/* sess_spool_settle - account what was appended; a failure refuses it */
static void
sess_spool_settle(struct sess *s)
{
	char	err[160];

	if (s->spool == NULL || s->spool_failed)
		return;
	if (!s->data_too_big && (long)s->canon.size > sess_size_limit()) {
		s->data_too_big = 1;
		spool_discard(s->spool);
		return;
	}
	if (spool_settle(s->spool, err, sizeof(err)) < 0) {
		log_warnx("%s: %s; the message will get 451", s->sum.id, err);
		s->spool_failed = 1;
		spool_discard(s->spool);
	}
}

/* sess_data_begin - after 354: read content into the spool */
static void
sess_data_begin(struct sess *s)
{
	canon_init(&s->canon, 0, s->crlf_data);
	s->stage = MST_DATA;
	sess_spool_start(s);
	sess_data_clock(s);
	sess_enter_state(s, SESS_DATA);
	sess_process(s);
}

/* do_data - our own 354, after the DATA-initiation delay */
static void
do_data(struct sess *s, char *args)
{
	(void)args;
	s->after = sess_data_begin;
	sess_reply(s, SHP_DATA_INIT, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * check_bdat - "BDAT size [LAST]".  A chunk whose size we know is always
 * read (RFC 3030 2): a refused one is discarded and its error replied after
 * it, so nothing inside a chunk is ever taken for a command.  A chunk whose
 * size we cannot read cannot be skipped: do_bdat() ends the session.
 */
static const char *
check_bdat(struct sess *s, char *args)
{
	char   *end;
	long	n;

	errno = 0;
	n = strtol(args, &end, 10);
	s->bdat_left = -1;
	if (!isdigit((unsigned char)*args) || errno || n < 0)
		return NULL;
	s->bdat_left = n;
	s->bdat_last = *end != 0 && strcasecmp(end, " LAST") == 0;
	s->bdat_error = NULL;
	if (*end && strcasecmp(end, " LAST") != 0)
		s->bdat_error = "501 5.5.4 Syntax: BDAT count [LAST]";
	else if (!bk_caps()->chunking)
		s->bdat_error = "502 5.5.1 Error: command not available";
	else if (s->state == SESS_HELO)
		s->bdat_error = "503 5.5.1 Error: send HELO/EHLO first";
	else if (s->state == SESS_MAIL)
		s->bdat_error = "554 5.5.1 Error: no valid recipients";
	else if (s->state != SESS_RCPT)
		s->bdat_error = "503 5.5.1 Error: need RCPT command";
	return NULL;
}

/* do_bdat - read the chunk (even when it will be refused) */
static void
do_bdat(struct sess *s, char *args)
{
	(void)args;
	if (s->bdat_left < 0) {
		sess_close(s, OC_PROTOCOL_ERROR, "421 4.5.4 %s Error: BDAT "
		    "without a valid chunk size cannot be skipped",
		    ms->cf->myhostname);
		return;
	}
	s->bdat_prev = s->state;
	if (s->bdat_error == NULL && !s->bdat_txn) {
		canon_init(&s->canon, 1, 1);
		s->stage = MST_DATA;
		s->bdat_txn = 1;
		sess_spool_start(s);
	}
	if (s->bdat_error == NULL &&
	    s->bdat_left > sess_size_limit() - (long)s->canon.size &&
	    !s->data_too_big) {
		/* Announced past the limit: read on, keep nothing. */
		s->data_too_big = 1;
		if (s->spool != NULL)
			spool_discard(s->spool);
	}
	s->busy = 0;
	sess_data_clock(s);
	sess_enter_state(s, SESS_BDAT);
}

/* do_rset - drop the transaction; the backend is told too */
static void
do_rset(struct sess *s, char *args)
{
	(void)args;
	sess_txn_abandon(s);
	if (s->state != SESS_HELO)
		sess_enter_state(s, SESS_READY);
	sess_later(s, SHP_MAIL, sess_rset_go, 0);
}

/* check_noargs - commands that take no argument */
static const char *
check_noargs(struct sess *s, char *args)
{
	(void)s;
	return *args ? "501 5.5.4 Syntax: no parameters allowed" : NULL;
}

/* do_noop - 250 */
static void
do_noop(struct sess *s, char *args)
{
	(void)args;
	sess_reply(s, SHP_MAIL, "250 2.0.0 Ok");
}

/* sess_quit_done - 221 is written: close */
static void
sess_quit_done(struct sess *s)
{
	sess_close(s, s->sum.outcome, "221 2.0.0 Bye");
}

/* do_quit - goodbye (no delay: the client is leaving anyway) */
static void
do_quit(struct sess *s, char *args)
{
	(void)args;
	s->quit = 1;
	sess_txn_abandon(s);
	if (s->sum.outcome != OC_BACKEND_ERROR)
		s->sum.outcome = OC_COMPLETED;
	sess_quit_done(s);
}

/* do_vrfy - VRFY and EXPN, as configured */
static void
do_vrfy(struct sess *s, char *args)
{
	int	allowed = toupper((unsigned char)s->verb[0]) == 'V' ?
	    ms->cf->vrfy_command : ms->cf->expn_command;

	if (*args == 0)
		return sess_reply(s, SHP_MAIL, "501 5.5.4 Syntax: %s address",
		    s->verb);
	if (allowed)
		sess_reply(s, SHP_MAIL, "252 2.0.0 Cannot verify, but will "
		    "accept the message and attempt delivery");
	else
		sess_reply(s, SHP_MAIL, "502 5.5.1 %s command is disabled",
		    s->verb);
}

/* do_help - a short list */
static void
do_help(struct sess *s, char *args)
{
	(void)args;
	sess_reply(s, SHP_MAIL, "214 2.0.0 Commands: EHLO HELO MAIL RCPT "
	    "DATA%s RSET NOOP QUIT%s", bk_caps()->chunking ? " BDAT" : "",
	    ms->tls && !s->sum.tls ? " STARTTLS" : "");
}

/* do_refused - XCLIENT, XFORWARD, AUTH: never for clients */
static void
do_refused(struct sess *s, char *args)
{
	(void)args;
	log_warnx("%s: refused %s from [%s]:%d", s->sum.id, s->verb, s->sum.ip,
	    s->sum.port);
	sess_error(s, SHP_MAIL, "502 5.5.1 Error: command not available");
}

/* check_starttls - offered, not yet done, outside a transaction */
static const char *
check_starttls(struct sess *s, char *args)
{
	if (ms->tls == NULL || s->sum.tls)
		return "502 5.5.1 Error: command not available";
	if (*args)
		return "501 5.5.4 Syntax: STARTTLS";
	if (s->state == SESS_MAIL || s->state == SESS_RCPT)
		return "503 5.5.1 Error: MAIL transaction in progress";
	return NULL;
}

/* sess_tls_go - 220 is written: discard injected input, wrap in TLS */
static void
sess_tls_go(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tb;
	SSL    *ssl;

	/* CVE-2011-0411: anything sent with STARTTLS is not trusted. */
	if (evbuffer_get_length(in) > 0) {
		log_info("%s: discarded %zu bytes pipelined after STARTTLS",
		    s->sum.id, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	if ((ssl = SSL_new(ms->tls)) == NULL) {
		sess_close(s, OC_PROTOCOL_ERROR, "454 4.7.0 TLS not available");
		return;
	}
	tb = bufferevent_openssl_filter_new(ms->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		SSL_free(ssl);
		sess_close(s, OC_PROTOCOL_ERROR, "454 4.7.0 TLS not available");
		return;
	}
	s->bev = tb;
	s->busy = 1;
	gettimeofday(&s->cmd_time, NULL);
	sess_enter_state(s, SESS_TLS);	/* tls_handshake_timeout from now */
	bufferevent_setcb(tb, sess_readcb, sess_writecb, sess_eventcb, s);
	bufferevent_setwatermark(tb, EV_READ, 0, SESS_INPUT_HIWAT);
	sess_write_timeout(s);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

/* do_starttls - 220, then TLS */
static void
do_starttls(struct sess *s, char *args)
{
	(void)args;
	s->after = sess_tls_go;
	sess_reply(s, SHP_MAIL, "220 2.0.0 Ready to start TLS");
}

static const struct sess_cmd sess_cmds[] = {
	{"EHLO", CMD_LAST, SHP_MAIL, check_helo, do_ehlo},
	{"HELO", CMD_LAST, SHP_MAIL, check_helo, do_helo},
	{"MAIL", CMD_NEED_HELO, SHP_MAIL, check_mail, do_mail},
	{"RCPT", CMD_NEED_HELO, SHP_RCPT, check_rcpt, do_rcpt},
	{"DATA", CMD_NEED_HELO | CMD_LAST, SHP_DATA_INIT, check_data, do_data},
	/* BDAT checks its own sequence: a refused chunk is still read. */
	{"BDAT", CMD_DESTROYS, SHP_DATA_END, check_bdat, do_bdat},
	{"RSET", CMD_JUNK | CMD_DESTROYS, SHP_MAIL, check_noargs, do_rset},
	{"NOOP", CMD_LAST | CMD_JUNK | CMD_DESTROYS, SHP_MAIL, NULL, do_noop},
	{"QUIT", CMD_LAST | CMD_DESTROYS, SHP_MAIL, check_noargs, do_quit},
	{"STARTTLS", CMD_NEED_HELO | CMD_LAST, SHP_MAIL, check_starttls,
	    do_starttls},
	{"VRFY", CMD_LAST | CMD_JUNK | CMD_DESTROYS, SHP_MAIL, NULL, do_vrfy},
	{"EXPN", CMD_LAST | CMD_JUNK | CMD_DESTROYS, SHP_MAIL, NULL, do_vrfy},
	{"HELP", CMD_JUNK | CMD_DESTROYS, SHP_MAIL, NULL, do_help},
	{"XCLIENT", CMD_REFUSED, SHP_MAIL, NULL, do_refused},
	{"XFORWARD", CMD_REFUSED, SHP_MAIL, NULL, do_refused},
	{"AUTH", CMD_REFUSED, SHP_MAIL, NULL, do_refused},
	{NULL, 0, 0, NULL, NULL},
};

/* sess_next_is_quit - the buffered input is a QUIT (harmless to pipeline) */
static int
sess_next_is_quit(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	unsigned char *p = evbuffer_pullup(in, 4);

	return p != NULL && strncasecmp((char *)p, "QUIT", 4) == 0;
}

/* sess_command - one command line (no CRLF); more: input already waiting */
static void
sess_command(struct sess *s, char *line, int more)
{
	const struct sess_cmd *cmd;
	const char *err;
	char   *args;
	size_t	vlen;

	gettimeofday(&s->cmd_time, NULL);
	s->busy = 1;
	sess_watch(s);
	vlen = strcspn(line, " ");
	args = line + vlen;
	while (*args == ' ')
		args++;
	{
		char   *e = args + strlen(args);

		while (e > args && e[-1] == ' ')
			*--e = 0;
	}
	snprintf(s->verb, sizeof(s->verb), "%.*s", (int)(vlen < 15 ? vlen : 15),
	    line);
	for (cmd = sess_cmds; cmd->name; cmd++)
		if (strlen(cmd->name) == vlen &&
		    strncasecmp(cmd->name, line, vlen) == 0)
			break;
	if (cmd->name == NULL) {
		sess_error(s, SHP_MAIL, "502 5.5.2 Error: command not "
		    "recognized");
		return;
	}
	snprintf(s->verb, sizeof(s->verb), "%s", cmd->name);
	if (more && (cmd->flags & CMD_LAST) && !s->pipe_warned &&
	    cmd->proceed != do_quit && !sess_next_is_quit(s)) {
		s->pipe_warned = 1;
		sess_violation(s, "improper pipelining");
	}
	if (cmd->flags & CMD_REFUSED) {
		cmd->proceed(s, args);
		return;
	}
	/* Past the junk limit each one is also an error (Postfix). */
	if ((cmd->flags & CMD_JUNK) &&
	    ++s->junk > ms->cf->smtp_junk_command_limit &&
	    ++s->errors >= ms->cf->smtp_error_limit) {
		log_info("%s: too many %s commands from [%s]:%d", s->sum.id,
		    cmd->name, s->sum.ip, s->sum.port);
		sess_close(s, OC_PROTOCOL_ERROR, "421 4.7.0 %s Error: too many "
		    "errors", ms->cf->myhostname);
		return;
	}
	if ((cmd->flags & CMD_NEED_HELO) && s->state == SESS_HELO) {
		sess_error(s, cmd->stage, "503 5.5.1 Error: send HELO/EHLO "
		    "first");
		return;
	}
	if (cmd->check != NULL && (err = cmd->check(s, args)) != NULL) {
		sess_error(s, cmd->stage, err);
		return;
	}
	cmd->proceed(s, args);
}

/* sess_line_ok - printable US-ASCII and UTF-8, no controls */
static int
sess_line_ok(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 && c != '\t')
			return 0;
		if (c == 0x7f)
			return 0;
	}
	return 1;
}

/* sess_data_input - feed DATA content; 1 when the input is used up */
static int
sess_data_input(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v;
	size_t	used;
	int	end;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		end = canon_feed(&s->canon, v.iov_base, v.iov_len,
		    sess_content_out(s), &used);
		evbuffer_drain(in, used);
		sess_spool_settle(s);
		sess_data_progress(s, used);
		if (end) {
			/* The final dot: delay, then hand over. */
			gettimeofday(&s->cmd_time, NULL);
			s->busy = 1;
			sess_enter_state(s, SESS_RCPT);
			sess_later(s, SHP_DATA_END, sess_dot_go, 0);
			return 0;
		}
	}
	return 1;
}

/*
 * sess_bdat_input - read exactly the announced chunk: into the spool, or
 * discarded when the chunk is refused; 1 when the input is used up
 */
static int
sess_bdat_input(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v;
	size_t	used;

	while (s->bdat_left > 0 && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		used = v.iov_len;
		if ((long)used > s->bdat_left)
			used = (size_t)s->bdat_left;
		if (s->bdat_error == NULL) {
			/* Raw mode: no end marker inside a chunk. */
			(void)canon_feed(&s->canon, v.iov_base, used,
			    sess_content_out(s), &used);
			sess_spool_settle(s);
		}
		evbuffer_drain(in, used);
		s->bdat_left -= (long)used;
		sess_data_progress(s, used);
	}
	if (s->bdat_left > 0)
		return 1;
	gettimeofday(&s->cmd_time, NULL);
	s->busy = 1;
	sess_enter_state(s, s->bdat_prev);
	if (s->bdat_error != NULL)
		sess_error(s, SHP_DATA_BLOCK, s->bdat_error);
	else if (s->bdat_last) {
		canon_finish(&s->canon, sess_content_out(s));
		sess_spool_settle(s);
		sess_later(s, SHP_DATA_END, sess_dot_go, 0);
	} else
		sess_reply(s, SHP_DATA_BLOCK, "250 2.0.0 Ok: %zu octets "
		    "received", s->canon.size);
	return 0;
}

/* sess_has_line - a complete command line waits in the input */
static int
sess_has_line(struct sess *s)
{
	size_t	eol_len;

	return evbuffer_search_eol(bufferevent_get_input(s->bev), NULL,
	    &eol_len, EVBUFFER_EOL_LF).pos >= 0;
}

/* sess_end_eof - the client closed and nothing more can be done */
static void
sess_end_eof(struct sess *s)
{
	if (!s->quit && s->sum.outcome != OC_BACKEND_ERROR)
		s->sum.outcome = OC_ABANDONED;
	sess_free(s, "client closed");
}

/* sess_input - handle buffered input until busy; 1 when s was freed */
static int
sess_input(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr eol;
	size_t	n, eol_len;

	while (!s->busy) {
		if (s->state == SESS_DATA || s->state == SESS_BDAT) {
			if (s->state == SESS_DATA ? sess_data_input(s) :
			    sess_bdat_input(s)) {
				/* All input used: wait for more. */
				if (!s->eof)
					return 0;
				sess_end_eof(s);
				return 1;
			}
			continue;	/* the content ended */
		}
		if (sess_out_full(s))
			return 0;
		if (s->state != SESS_HELO && s->state != SESS_READY &&
		    s->state != SESS_MAIL && s->state != SESS_RCPT)
			return 0;
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			n = evbuffer_get_length(in);
			if (s->skip_line) {
				/* More of a line already answered. */
				evbuffer_drain(in, n);
			} else if (n > (size_t)ms->cf->smtp_line_limit) {
				evbuffer_drain(in, n);
				s->skip_line = 1;
				gettimeofday(&s->cmd_time, NULL);
				sess_error(s, SHP_MAIL, "500 5.5.2 Error: line "
				    "too long");
				continue;
			}
			if (s->eof) {
				sess_end_eof(s);
				return 1;
			}
			return 0;
		}
		n = (size_t)eol.pos;
		if (s->skip_line || n > (size_t)ms->cf->smtp_line_limit) {
			evbuffer_drain(in, n + 1);
			if (s->skip_line) {
				s->skip_line = 0;
				continue;
			}
			gettimeofday(&s->cmd_time, NULL);
			sess_error(s, SHP_MAIL, "500 5.5.2 Error: line too long");
			continue;
		}
		evbuffer_remove(in, sess_line, n + 1);
		s->crlf_data = n > 0 && sess_line[n - 1] == '\r';
		if (s->crlf_data)
			n--;
		sess_line[n] = 0;
		gettimeofday(&s->cmd_time, NULL);
		if (!s->crlf_data && !s->barelf_warned) {
			s->barelf_warned = 1;
			sess_violation(s, "bare LF in command");
		}
		if (!sess_line_ok(sess_line, n)) {
			s->busy = 1;
			sess_error(s, SHP_MAIL, "500 5.5.2 Error: bad characters "
			    "in command");
			continue;
		}
		sess_command(s, sess_line, evbuffer_get_length(in) > 0);
	}
	return 0;
}

/*
 * sess_process - run the input loop.  Replies that need no delay complete
 * inside the loop, and the nested sess_process() they make returns at once
 * while the outer loop goes on, so a long pipelined burst costs no stack.
 * Only the outermost loop may free the session; it returns 1 when it did.
 */
static int
sess_process(struct sess *s)
{
	if (s->read_paused && s->state != SESS_CLOSING) {
		s->read_paused = 0;
		bufferevent_enable(s->bev, EV_READ);
	}
	if (s->in_process)
		return 0;
	s->in_process = 1;
	if (sess_input(s) != 0)
		return 1;
	s->in_process = 0;
	return 0;
}

/*
 * sess_pause_full - input we cannot serve now fills its buffer: stop
 * reading until sess_process() runs again.  At the high-water mark
 * libevent 2.1 calls the read callback again and again while the buffer
 * stays full, so the mark alone would make a waiting session spin.
 */
static void
sess_pause_full(struct sess *s)
{
	if (!s->read_paused && evbuffer_get_length(
	    bufferevent_get_input(s->bev)) >= SESS_INPUT_HIWAT) {
		s->read_paused = 1;
		bufferevent_disable(s->bev, EV_READ);
	}
}

/* sess_readcb - input arrived */
static void
sess_readcb(struct bufferevent *bev, void *arg)
{
	struct sess *s = arg;

	(void)bev;
	if (s->state == SESS_BANNER) {
		if (!s->pregreet) {
			s->pregreet = 1;
			ms->st.pregreet++;
			sess_violation(s, "pregreet");
		}
		sess_pause_full(s);
		return;
	}
	if (!s->busy && sess_process(s))
		return;		/* freed */
	if (s->busy || s->out_blocked)
		sess_pause_full(s);
}

/* sess_eventcb - EOF, errors, timeouts, TLS handshake done */
static void
sess_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct sess *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake complete: start over, RFC 3207 4.2. */
		s->sum.tls = 1;
		s->busy = 0;
		free(s->sum.helo);
		s->sum.helo = NULL;
		s->sum.esmtp = 0;
		gettimeofday(&s->last_reply, NULL);
		sess_enter_state(s, SESS_HELO);
		log_info("%s: TLS established with [%s]:%d", s->sum.id, s->sum.ip,
		    s->sum.port);
		sess_process(s);
		return;
	}
	if (s->state == SESS_CLOSING) {
		sess_free(s, NULL);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (what & BEV_EVENT_WRITING) {
			s->sum.outcome = OC_ABANDONED;
			sess_free(s, "write timeout");
			return;
		}
		s->sum.outcome = OC_ABANDONED;
		sess_close(s, OC_ABANDONED, "421 4.4.2 %s Error: timeout "
		    "exceeded", ms->cf->myhostname);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		s->eof = 1;
		bufferevent_disable(s->bev, EV_READ);
		/*
		 * A client that closes while we hold a reply has given up,
		 * unless it already sent what comes next (a half-close after
		 * pipelined commands): then the replies are still owed.
		 */
		if (s->state == SESS_BANNER || s->state == SESS_TLS ||
		    s->state == SESS_DATA || s->state == SESS_BDAT ||
		    (s->busy && !sess_has_line(s))) {
			sess_end_eof(s);
			return;
		}
		if (s->busy)
			return;
		sess_process(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);

		s->eof = 1;
		if (!s->quit && s->sum.outcome != OC_BACKEND_ERROR)
			s->sum.outcome = s->state == SESS_TLS ? OC_PROTOCOL_ERROR :
			    OC_ABANDONED;
		sess_free(s, e ? "TLS error" : "connection error");
	}
}

/* sess_banner_done - the greeting is out: pregreet bytes are discarded */
static void
sess_banner_done(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	if (evbuffer_get_length(in) > 0 && !s->pregreet) {
		s->pregreet = 1;
		ms->st.pregreet++;
		sess_violation(s, "pregreet");
	}
	if (s->pregreet)
		evbuffer_drain(in, evbuffer_get_length(in));
	sess_enter_state(s, SESS_HELO);
	sess_process(s);
}

/* sess_accept - a client connected: caps, class, fingerprint, banner */
void
sess_accept(int fd, const struct sockaddr *sa, socklen_t salen,
    const unsigned char *syn, int synlen)
{
	struct sess *s;
	struct client *cl;
	struct sockaddr_storage ss;
	socklen_t llen = sizeof(ss);
	struct timeval due;
	const char *refuse = NULL;
	char	err[128];

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->reply = evbuffer_new()) == NULL ||
	    (s->bev = bufferevent_socket_new(ms->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("out of memory accepting a connection");
		if (s != NULL && s->reply != NULL)
			evbuffer_free(s->reply);
		free(s);
		close(fd);
		return;
	}
	gettimeofday(&s->sum.start, NULL);
	s->cmd_time = s->sum.start;
	s->last_reply = s->sum.start;
	snprintf(s->sum.id, sizeof(s->sum.id), "%08lX%04lX", (unsigned long)
	    (s->sum.start.tv_sec & 0xffffffff), sess_counter++ & 0xffff);
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, salen < sizeof(ss) ? salen : sizeof(ss));
	addr_unmap(&ss);
	memcpy(&s->sum.peer, &ss, sizeof(s->sum.peer));
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &llen) == 0) {
		addr_unmap(&ss);
		memcpy(&s->local, &ss, sizeof(s->local));
	}
	addr_ntop(&s->sum.peer.sa, s->sum.ip, sizeof(s->sum.ip), &s->sum.port);
	if (synlen > 0 && (syn[0] >> 4) == 4 && s->sum.peer.sa.sa_family != AF_INET)
		log_warnx("%s: SYN is IPv4 but the peer is %s", s->sum.id, s->sum.ip);
	s->sum.class_idx = -1;
	s->bk_cls = -1;
	s->banner_ms = -1;
	s->sum.class_name = s->cls.name;
	s->sum.outcome = OC_COMPLETED;
	evtimer_assign(&s->timer, ms->base, sess_timer_cb, s);
	evtimer_assign(&s->wd, ms->base, sess_wd_cb, s);
	s->next = sess_list;
	if (sess_list)
		sess_list->prev = s;
	sess_list = s;
	ms->st.accepted++;

	/* Fingerprint: the SYN that opened this connection, if saved. */
	if (synlen > 0 && ms->sigdb != NULL) {
		struct fp_result r;

		if (fp_fingerprint_syn(ms->sigdb, syn, (size_t)synlen, &r, err,
		    sizeof(err)) < 0)
			log_warnx("%s: SYN from [%s]:%d: %s", s->sum.id, s->sum.ip,
			    s->sum.port, err);
		else
			s->sum.fp = fp_intern(&r);
	} else if (synlen <= 0)
		ms->st.syn_missing++;

	sess_classify(s);
	adm_sess_start(&s->sum);
	if (!s->sum.static_class && !ms->stopping) {
		s->dnsbl_req = dnsbl_lookup(&s->sum.peer.sa, sess_dnsbl_done, s);
		if (dnsbl_evdns() != NULL)
			s->fcrdns_req = fcrdns_lookup(dnsbl_evdns(), &s->sum.peer.sa,
			    ms->cf->dnsbl_timeout, sess_fcrdns_done, s);
	}

	/* Caps: global, per client, per class. */
	cl = client_find(&s->sum.peer.sa, 1);
	if (ms->stopping)
		refuse = "service shutting down";
	else if (ms->nsess >= ms->cf->max_connections)
		refuse = "too many connections";
	else if (cl == NULL || cl->total >= ms->cf->max_connections_per_client)
		refuse = "too many connections from your address";
	else if (!sess_observe() && s->sum.class_idx >= 0 &&
	    ms->class_count[s->sum.class_idx] > ms->cf->max_connections *
	    s->cls.max_share / 100)
		refuse = "too many connections of your class";
	else if (!sess_observe() && s->cls.max_per_client > 0 &&
	    s->sum.class_idx >= 0 &&
	    cl->by_class[s->sum.class_idx] >= s->cls.max_per_client)
		refuse = "too many connections from your address";
	log_info("%s: connect from [%s]:%d class=%s reasons=\"%s%s%s\" fp=%s%s%s",
	    s->sum.id, s->sum.ip, s->sum.port, s->cls.name, sess_reason(s, 0),
	    s->sum.nreasons > 1 ? "; " : "", sess_reason(s, 1),
	    s->sum.fp ? s->sum.fp->os : "null", s->sum.fp ? " " : "",
	    s->sum.fp ? s->sum.fp->raw_sig : "");
	if (refuse != NULL) {
		ms->st.refused++;
		log_warnx("%s: refused [%s]:%d: %s", s->sum.id, s->sum.ip, s->sum.port,
		    refuse);
		sess_close(s, OC_REFUSED, "421 4.7.0 %s Error: %s",
		    ms->cf->myhostname, refuse);
		bufferevent_enable(s->bev, EV_WRITE);
		if (cl != NULL && cl->total == 0) {
			/* Not counted: drop the empty entry again. */
			cl->total = 1;
			client_release(&s->sum.peer.sa, -1);
		}
		return;
	}
	s->sum.counted = 1;
	ms->nsess++;
	cl->total++;
	if (s->sum.class_idx >= 0) {
		cl->by_class[s->sum.class_idx]++;
		ms->st.by_class[s->sum.class_idx]++;
	}

	sess_apply_rate(s);
	bufferevent_setcb(s->bev, sess_readcb, sess_writecb, sess_eventcb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESS_INPUT_HIWAT);
	sess_write_timeout(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	sess_enter_state(s, SESS_BANNER);
	s->after = sess_banner_done;
	banner_add(s->reply);
	sess_due(s, SHP_GREETING, &due);
	sess_reply_at(s, &due);
}

/* sess_shutdown_all - end every session now (after the grace time) */
void
sess_shutdown_all(const char *why)
{
	while (sess_list != NULL) {
		struct sess *s = sess_list;

		if (s->state != SESS_CLOSING && !s->sum.tls) {
			char	line[400];
			int	n;

			s->sum.outcome = s->quit ? OC_COMPLETED : OC_ABANDONED;
			/*
			 * Best effort, straight to the socket (a bufferevent's
			 * output cannot be drained from outside): tell the
			 * client, then free now.
			 */
			n = snprintf(line, sizeof(line), "421 4.3.2 %s Error: "
			    "%s\r\n", ms->cf->myhostname, why);
			if (n > 0 && n < (int)sizeof(line) &&
			    write(bufferevent_getfd(s->bev), line, (size_t)n) < 0)
				log_debug("%s: 421 at shutdown: %s", s->sum.id,
				    strerror(errno));
		}
		sess_free(s, why);
	}
}

/* sess_deinit - free what sessions shared (at exit, after the last one) */
void
sess_deinit(void)
{
	if (banner_cur != NULL && banner_cur->refs == 0) {
		free(banner_cur);
		banner_cur = NULL;
	}
}

/*
 * sess_fire_timers - for the session fuzzer: run armed timers now; which:
 * SESS_FIRE_DELAY delays and stutter, SESS_FIRE_DEADLINE the state
 * deadlines (only those due before the session's delay timer),
 * SESS_FIRE_BACKEND backend keepalives; returns how many were made active
 * (the loop runs them)
 */
int
sess_fire_timers(int which)
{
	struct sess *s;
	struct timeval wd, delay;
	int	n = 0;

	for (s = sess_list; s != NULL; s = s->next) {
		if ((which & SESS_FIRE_DELAY) &&
		    evtimer_pending(&s->timer, NULL)) {
			event_active(&s->timer, EV_TIMEOUT, 0);
			n++;
		}
		/* In time order: a deadline never passes before a delay. */
		if ((which & SESS_FIRE_DEADLINE) &&
		    evtimer_pending(&s->wd, &wd) &&
		    (!evtimer_pending(&s->timer, &delay) ||
		    !timercmp(&delay, &wd, <))) {
			event_active(&s->wd, EV_TIMEOUT, 0);
			n++;
		}
		if ((which & SESS_FIRE_BACKEND) && s->bk != NULL)
			n += bk_fire_idle(s->bk);
	}
	if (which & SESS_FIRE_BACKEND)
		n += bk_fire_idle(NULL);
	return n;
}
