/*
 * countsink.c - the swarm's counting SMTP backend
 *
 * An ESMTP server on libevent bufferevents that plays the downstream
 * content filter behind mailshaper.  Each message's ground truth is the
 * first line of the message (header or body, dot-unstuffed) that reads
 * "X-Swarm-Truth: spam" or "X-Swarm-Truth: ham"; an optional
 * "X-Swarm-Population: NAME" line labels its population.  Ham and unmarked
 * mail get 250; spam gets 550 5.7.1 with the configured probability, drawn
 * from a splitmix64 stream seeded by --seed and indexed by the spam
 * message's arrival number, so the count rejected among the first N spam
 * messages is fixed by the seed.  Counters are written as JSON to --stats
 * on SIGUSR1, every --stats-interval seconds and at exit (SIGTERM, SIGINT).
 *
 * Exports: sink_main() (dispatched by `mailshaper-swarm backend`), and the
 * pure helpers the unit tests use: sink_truth_parse(), sink_pop_parse(),
 * sink_scan_init()/sink_scan_line(), sink_mix(), sink_reject(),
 * sink_parse_pct(), sink_truth_name().
 *
 * Memory: one struct sink per sink_main() call owns the listeners, the
 * sessions (a TAILQ), and the population map; everything is freed before
 * sink_main() returns.  A session is freed only by sink_sess_free().
 *
 * It is an error to call sink_main() from inside a running event loop, or
 * twice at once: it owns its event_base and the process's SIGTERM, SIGINT,
 * SIGUSR1 and SIGPIPE dispositions while it runs.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "swarm/countsink.h"
#include "util/addr.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strmap.h"

#define SINK_MAX_LISTEN	16		/* -l options */
#define SINK_MAX_LINE	2048		/* command line, bytes with CRLF */
#define SINK_MAX_DATA_LINE 65536	/* DATA line before it is split */
#define SINK_MAX_RCPT	1000		/* recipients per transaction */
#define SINK_MAX_ERRORS	20		/* bad commands before 421 */
#define SINK_OUT_HIWAT	65536		/* stop reading above, bytes */
#define SINK_OUT_LOWAT	16384		/* resume reading below, bytes */
#define SINK_POP_LIMIT	1024		/* distinct population names */
#define SINK_POP_OTHER	"(other)"	/* key once SINK_POP_LIMIT is hit */
#define SINK_CLIENT_LIMIT 1000000	/* distinct clients per population */
#define SINK_XC_MAX	255		/* XCLIENT NAME/HELO value, bytes */

struct sink_count {
	uint64_t received;	/* messages whose DATA ended (not oversize) */
	uint64_t accepted;	/* answered 250 */
	uint64_t rejected;	/* answered 550 5.7.1 */
};

struct sink_pop {
	struct sink_count c[SINK_NTRUTH];	/* by truth */
	struct strmap clients;	/* distinct client addresses (keys only) */
	uint64_t via_xclient;	/* messages whose client came from XCLIENT */
};

enum sink_state {
	SINK_ST_CMD,		/* no transaction */
	SINK_ST_MAIL,		/* MAIL accepted, no RCPT yet */
	SINK_ST_RCPT,		/* at least one RCPT accepted */
	SINK_ST_DATA,		/* reading the message */
	SINK_ST_CLOSING		/* flushing the last reply, then freed */
};

struct sink;

struct sink_sess {
	TAILQ_ENTRY(sink_sess) entry;	/* in sink.sessions */
	struct sink *sk;		/* the server (not owned) */
	struct bufferevent *bev;	/* owned; closes the socket */
	enum sink_state state;
	uint64_t id;			/* session number, from 1 */
	char	peer[ADDR_STRLEN];	/* the TCP peer's address */
	char	client[ADDR_STRLEN];	/* XCLIENT ADDR if given, else peer */
	int	via_xclient;		/* client came from XCLIENT */
	int	nrcpt;			/* recipients in this transaction */
	int	errors;			/* bad commands so far */
	int	skipping;		/* discarding a too-long command line */
	int	midline;		/* DATA: next bytes continue a split line */
	int	throttled;		/* reading stopped for backpressure */
	size_t	msgsize;		/* message bytes so far, CRLFs counted */
	struct sink_scan scan;		/* truth of the message being read */
};

struct sink {
	struct event_base *base;
	struct evconnlistener *lst[SINK_MAX_LISTEN];
	int	nlst;
	struct event *ev_term, *ev_int, *ev_usr1, *ev_tick, *ev_resume;
	TAILQ_HEAD(, sink_sess) sessions;
	size_t	nsess;			/* sessions open now */
	/* options */
	int	reject_bp;		/* spam reject share, basis points */
	uint64_t seed;			/* of the reject decisions */
	const char *stats_path;		/* NULL: none; "-": stdout */
	int	stats_interval;		/* seconds; 0 = only on signal/exit */
	int	xclient;		/* advertise and accept XCLIENT */
	int	pipelining;		/* advertise PIPELINING */
	char	hostname[256];		/* in the greeting and EHLO */
	size_t	max_size;		/* SIZE, bytes */
	int	timeout;		/* idle seconds before 421 */
	size_t	max_sessions;		/* beyond: 421 at connect */
	/* counters */
	struct sink_count tot[SINK_NTRUTH];
	struct strmap pops;		/* population name -> struct sink_pop */
	uint64_t spam_n;		/* spam decided: the stream's index */
	uint64_t connections, refused, xclient_ok, bad_commands;
	uint64_t oversize, timeouts, aborted, long_lines, conflicts;
	uint64_t next_id;
	struct timeval started;
};

static const char *const sink_truth_names[SINK_NTRUTH] = {
	"unknown", "ham", "spam"
};

/* sink_truth_name - "unknown", "ham" or "spam" */
const char *
sink_truth_name(enum sink_truth t)
{
	return (unsigned)t < SINK_NTRUTH ? sink_truth_names[t] : "unknown";
}

/* sink_header_value - the value after a "Name:" prefix, trimmed, or NULL */
static const char *
sink_header_value(const char *line, size_t len, const char *name,
    size_t *vlen)
{
	size_t	n = strlen(name), i, e;

	if (len < n || strncasecmp(line, name, n) != 0)
		return NULL;
	for (i = n; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	for (e = len; e > i && (line[e - 1] == ' ' || line[e - 1] == '\t' ||
	    line[e - 1] == '\r'); e--)
		;
	*vlen = e - i;
	return line + i;
}

/* sink_truth_parse - SINK_HAM/SINK_SPAM for a valid marker line, else -1 */
int
sink_truth_parse(const char *line, size_t len)
{
	const char *v;
	size_t	n;

	if ((v = sink_header_value(line, len, SINK_TRUTH_HDR, &n)) == NULL)
		return -1;
	if (n == 4 && strncasecmp(v, "spam", 4) == 0)
		return SINK_SPAM;
	if (n == 3 && strncasecmp(v, "ham", 3) == 0)
		return SINK_HAM;
	return -1;
}

/* sink_pop_parse - copy a valid population label's name to out; 0 or -1 */
int
sink_pop_parse(const char *line, size_t len, char *out, size_t outlen)
{
	const char *v;
	size_t	n, i;

	if ((v = sink_header_value(line, len, SINK_POP_HDR, &n)) == NULL)
		return -1;
	if (n == 0 || n > SINK_POP_MAX || n >= outlen)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return -1;
	}
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* sink_scan_init - a scanner for a new message */
void
sink_scan_init(struct sink_scan *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->truth = SINK_UNKNOWN;
}

/* sink_scan_line - learn from one unstuffed message line (no CRLF) */
void
sink_scan_line(struct sink_scan *sc, const char *line, size_t len)
{
	int	t;

	if (len == 0 || (line[0] != 'X' && line[0] != 'x'))
		return;
	if ((t = sink_truth_parse(line, len)) >= 0) {
		if (sc->markers++ == 0)
			sc->truth = (enum sink_truth)t;
		return;
	}
	if (sc->pop[0] == '\0')
		(void)sink_pop_parse(line, len, sc->pop, sizeof(sc->pop));
}

/* sink_mix - the splitmix64 finaliser */
uint64_t
sink_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * sink_reject - 1 to reject the n-th spam message (from 0) at bp basis
 * points: the n-th output of splitmix64 seeded with seed, mod 10000, < bp
 */
int
sink_reject(uint64_t seed, uint64_t n, int bp)
{
	uint64_t z = seed + (n + 1) * 0x9e3779b97f4a7c15ULL;

	if (bp <= 0)
		return 0;
	if (bp >= SINK_BP_MAX)
		return 1;
	return sink_mix(z) % SINK_BP_MAX < (uint64_t)bp;
}

/* sink_parse_pct - "0".."100", up to two decimals, to basis points */
int
sink_parse_pct(const char *s, int *bp)
{
	char   *end;
	double	v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v >= 0.0 && v <= 100.0))
		return -1;
	*bp = (int)lround(v * 100.0);
	return 0;
}

/* ------------------------------------------------------------ sessions */

static void sink_readcb(struct bufferevent *, void *);
static void sink_writecb(struct bufferevent *, void *);
static void sink_eventcb(struct bufferevent *, short, void *);

static const char *const sink_state_names[] = {
	"CMD", "MAIL", "RCPT", "DATA", "CLOSING"
};

/* sink_state_name - the state's name for logs */
static const char *
sink_state_name(enum sink_state st)
{
	return (unsigned)st < sizeof(sink_state_names) /
	    sizeof(sink_state_names[0]) ? sink_state_names[st] : "?";
}

/* sink_enter_state - the one place a session changes state */
static void
sink_enter_state(struct sink_sess *s, enum sink_state st)
{
	if (s->state != st)
		log_debug("session %" PRIu64 ": %s -> %s", s->id,
		    sink_state_name(s->state), sink_state_name(st));
	s->state = st;
}

/* sink_reply - one reply line, CRLF added */
static void
sink_reply(struct sink_sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sink_reply(struct sink_sess *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* sink_sess_free - the one teardown of a session */
static void
sink_sess_free(struct sink_sess *s, const char *reason)
{
	struct sink *sk = s->sk;

	log_debug("session %" PRIu64 " from %s: closed: %s", s->id, s->peer,
	    reason);
	TAILQ_REMOVE(&sk->sessions, s, entry);
	sk->nsess--;
	bufferevent_free(s->bev);
	s->bev = NULL;
	free(s);
}

/* sink_close - send nothing more, free once the output is flushed */
static void
sink_close(struct sink_sess *s)
{
	sink_enter_state(s, SINK_ST_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	bufferevent_enable(s->bev, EV_WRITE);
}

/* sink_reset_txn - forget the transaction */
static void
sink_reset_txn(struct sink_sess *s)
{
	s->nrcpt = 0;
	s->msgsize = 0;
	s->midline = 0;
	sink_enter_state(s, SINK_ST_CMD);
}

/* sink_bad - count a bad command; 1 if the session was closed for it */
static int
sink_bad(struct sink_sess *s)
{
	s->sk->bad_commands++;
	if (++s->errors < SINK_MAX_ERRORS)
		return 0;
	sink_reply(s, "421 4.7.0 %s Error: too many errors", s->sk->hostname);
	sink_close(s);
	return 1;
}

/* sink_pop_get - the population's counters, made on first use */
static struct sink_pop *
sink_pop_get(struct sink *sk, const char *name)
{
	struct strmap_ent *e;

	if ((e = strmap_find(&sk->pops, name, strlen(name))) != NULL)
		return e->p;
	if (sk->pops.n >= SINK_POP_LIMIT)
		name = SINK_POP_OTHER;
	if (strmap_insert(&sk->pops, name, strlen(name), &e) < 0)
		return NULL;
	if (e->p == NULL && (e->p = calloc(1, sizeof(struct sink_pop))) == NULL)
		return NULL;
	return e->p;
}

/* sink_pop_free - strmap_free() callback */
static void
sink_pop_free(void *p)
{
	struct sink_pop *pp = p;

	strmap_free(&pp->clients, NULL);
	free(pp);
}

/* sink_end_data - the message ended: decide, count, reply */
static void
sink_end_data(struct sink_sess *s)
{
	struct sink *sk = s->sk;
	struct sink_scan *sc = &s->scan;
	struct sink_pop *pp;
	struct strmap_ent *e;
	enum sink_truth t = sc->truth;
	uint64_t qid = ++sk->next_id;
	int	reject = 0;

	if (s->msgsize > sk->max_size) {
		sk->oversize++;
		sink_reply(s, "552 5.3.4 Error: message file too big");
		sink_reset_txn(s);
		return;
	}
	if (sc->markers > 1)
		sk->conflicts++;
	if (t == SINK_SPAM)
		reject = sink_reject(sk->seed, sk->spam_n++, sk->reject_bp);
	sk->tot[t].received++;
	if (reject)
		sk->tot[t].rejected++;
	else
		sk->tot[t].accepted++;
	pp = sink_pop_get(sk, sc->pop[0] ? sc->pop : SINK_POP_NONE);
	if (pp != NULL) {
		pp->c[t].received++;
		if (reject)
			pp->c[t].rejected++;
		else
			pp->c[t].accepted++;
		if (s->via_xclient)
			pp->via_xclient++;
		if (pp->clients.n < SINK_CLIENT_LIMIT)
			(void)strmap_insert(&pp->clients, s->client,
			    strlen(s->client), &e);
	}
	log_debug("session %" PRIu64 ": message %" PRIu64 " client=%s truth=%s "
	    "population=%s size=%zu %s", s->id, qid, s->client,
	    sink_truth_name(t), sc->pop[0] ? sc->pop : SINK_POP_NONE,
	    s->msgsize, reject ? "rejected" : "accepted");
	if (reject)
		sink_reply(s, "550 5.7.1 Message rejected as spam");
	else
		sink_reply(s, "250 2.0.0 Ok: queued as %016" PRIX64, qid);
	sink_reset_txn(s);
}

/*
 * sink_data_step - consume one DATA line; 1 if one was consumed, 0 if more
 * input is needed
 */
static int
sink_data_step(struct sink_sess *s, struct evbuffer *in)
{
	const char *p;
	char   *line;
	size_t	n, m;

	if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT)) == NULL) {
		size_t	len = evbuffer_get_length(in);
		struct evbuffer_ptr ptr;
		unsigned char last;

		if (len <= SINK_MAX_DATA_LINE)
			return 0;
		/* A line this long is counted, never scanned; keep a final
		 * CR so a CRLF split across reads is still found. */
		m = len;
		evbuffer_ptr_set(in, &ptr, len - 1, EVBUFFER_PTR_SET);
		if (evbuffer_copyout_from(in, &ptr, &last, 1) == 1 &&
		    last == '\r')
			m--;
		if (!s->midline)
			s->sk->long_lines++;
		evbuffer_drain(in, m);
		s->msgsize += m;
		s->midline = 1;
		return 1;
	}
	if (!s->midline && n == 1 && line[0] == '.') {
		free(line);
		sink_end_data(s);
		return 1;
	}
	p = line;
	m = n;
	if (!s->midline && m > 0 && p[0] == '.') {
		p++;
		m--;
	}
	if (!s->midline)
		sink_scan_line(&s->scan, p, m);
	s->msgsize += m + 2;
	s->midline = 0;
	free(line);
	return 1;
}

/* ------------------------------------------------------------ commands */

#define SINK_CMD_KILL	0x01	/* may end the session */

struct sink_cmd {
	const char *name;
	int	(*check)(struct sink_sess *);	/* 0 or replied and -1 */
	void	(*proceed)(struct sink_sess *, const char *arg);
	int	flags;
};

/* sink_chk_any - always allowed */
static int
sink_chk_any(struct sink_sess *s)
{
	(void)s;
	return 0;
}

/* sink_chk_notxn - not inside a transaction */
static int
sink_chk_notxn(struct sink_sess *s)
{
	if (s->state == SINK_ST_CMD)
		return 0;
	sink_reply(s, "503 5.5.1 Error: nested MAIL command");
	return -1;
}

/* sink_chk_mail - after MAIL */
static int
sink_chk_mail(struct sink_sess *s)
{
	if (s->state == SINK_ST_MAIL || s->state == SINK_ST_RCPT)
		return 0;
	sink_reply(s, "503 5.5.1 Error: need MAIL command");
	return -1;
}

/* sink_chk_rcpt - after at least one RCPT */
static int
sink_chk_rcpt(struct sink_sess *s)
{
	if (s->state == SINK_ST_RCPT)
		return 0;
	sink_reply(s, "503 5.5.1 Error: need RCPT command");
	return -1;
}

/* sink_do_helo - HELO: reset, one-line 250 */
static void
sink_do_helo(struct sink_sess *s, const char *arg)
{
	if (*arg == '\0') {
		sink_reply(s, "501 5.5.4 Syntax: HELO hostname");
		(void)sink_bad(s);
		return;
	}
	sink_reset_txn(s);
	sink_reply(s, "250 %s", s->sk->hostname);
}

/* sink_do_ehlo - EHLO: reset, the extension list */
static void
sink_do_ehlo(struct sink_sess *s, const char *arg)
{
	struct sink *sk = s->sk;
	char	ext[8][64];
	int	n = 0, i;

	if (*arg == '\0') {
		sink_reply(s, "501 5.5.4 Syntax: EHLO hostname");
		(void)sink_bad(s);
		return;
	}
	sink_reset_txn(s);
	if (sk->pipelining)
		snprintf(ext[n++], sizeof(ext[0]), "PIPELINING");
	snprintf(ext[n++], sizeof(ext[0]), "SIZE %zu", sk->max_size);
	snprintf(ext[n++], sizeof(ext[0]), "8BITMIME");
	snprintf(ext[n++], sizeof(ext[0]), "ENHANCEDSTATUSCODES");
	if (sk->xclient)
		snprintf(ext[n++], sizeof(ext[0]),
		    "XCLIENT NAME ADDR PORT PROTO HELO");
	sink_reply(s, "250-%s", sk->hostname);
	for (i = 0; i < n; i++)
		sink_reply(s, "250%c%s", i == n - 1 ? ' ' : '-', ext[i]);
}

/* sink_path - skip "FROM:"/"TO:" and check <path>; the rest or NULL */
static const char *
sink_path(const char *arg, const char *kw, int empty_ok)
{
	size_t	n = strlen(kw);
	const char *p, *q;

	if (strncasecmp(arg, kw, n) != 0)
		return NULL;
	for (p = arg + n; *p == ' '; p++)
		;
	if (*p != '<' || (q = strchr(p, '>')) == NULL)
		return NULL;
	if (!empty_ok && q == p + 1)
		return NULL;
	return q + 1;
}

/* sink_do_mail - MAIL FROM:<path> [SIZE=n] [BODY=...] */
static void
sink_do_mail(struct sink_sess *s, const char *arg)
{
	const char *rest, *sz;

	if ((rest = sink_path(arg, "FROM:", 1)) == NULL) {
		sink_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		(void)sink_bad(s);
		return;
	}
	if ((sz = strcasestr(rest, "SIZE=")) != NULL &&
	    (sz == rest || sz[-1] == ' ')) {
		unsigned long long v = strtoull(sz + 5, NULL, 10);

		if (v > s->sk->max_size) {
			sink_reply(s, "552 5.3.4 Message size exceeds fixed "
			    "limit");
			return;
		}
	}
	sink_enter_state(s, SINK_ST_MAIL);
	sink_reply(s, "250 2.1.0 Ok");
}

/* sink_do_rcpt - RCPT TO:<path> */
static void
sink_do_rcpt(struct sink_sess *s, const char *arg)
{
	if (sink_path(arg, "TO:", 0) == NULL) {
		sink_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		(void)sink_bad(s);
		return;
	}
	if (s->nrcpt >= SINK_MAX_RCPT) {
		sink_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	s->nrcpt++;
	sink_enter_state(s, SINK_ST_RCPT);
	sink_reply(s, "250 2.1.5 Ok");
}

/* sink_do_data - DATA: 354 and read the message */
static void
sink_do_data(struct sink_sess *s, const char *arg)
{
	(void)arg;
	sink_scan_init(&s->scan);
	s->msgsize = 0;
	s->midline = 0;
	sink_enter_state(s, SINK_ST_DATA);
	sink_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* sink_do_rset - RSET */
static void
sink_do_rset(struct sink_sess *s, const char *arg)
{
	(void)arg;
	sink_reset_txn(s);
	sink_reply(s, "250 2.0.0 Ok");
}

/* sink_do_noop - NOOP */
static void
sink_do_noop(struct sink_sess *s, const char *arg)
{
	(void)arg;
	sink_reply(s, "250 2.0.0 Ok");
}

/* sink_do_quit - QUIT: 221 and close */
static void
sink_do_quit(struct sink_sess *s, const char *arg)
{
	(void)arg;
	sink_reply(s, "221 2.0.0 Bye");
	sink_close(s);
}

/* sink_xtext_decode - RFC 3461 xtext into out; 0 or -1 */
static int
sink_xtext_decode(const char *v, size_t n, char *out, size_t outlen)
{
	size_t	i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '+') {
			unsigned int x;
			char	hex[3];

			if (i + 2 >= n || !isxdigit((unsigned char)v[i + 1]) ||
			    !isxdigit((unsigned char)v[i + 2]))
				return -1;
			hex[0] = v[i + 1];
			hex[1] = v[i + 2];
			hex[2] = '\0';
			x = (unsigned int)strtoul(hex, NULL, 16);
			if (x == 0)
				return -1;
			c = (unsigned char)x;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return -1;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* sink_xclient_addr - XCLIENT ADDR value to a canonical address text */
static int
sink_xclient_addr(const char *v, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (strcmp(v, "[UNAVAILABLE]") == 0 || strcmp(v, "[TEMPUNAVAIL]") == 0) {
		snprintf(out, outlen, "unknown");
		return 0;
	}
	memset(&ss, 0, sizeof(ss));
	if (strncasecmp(v, "IPV6:", 5) == 0) {
		if (inet_pton(AF_INET6, v + 5, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
	} else if (inet_pton(AF_INET, v, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, v, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;	/* lenient: no IPV6: prefix */
	} else
		return -1;
	addr_unmap(&ss);
	return addr_ntop((struct sockaddr *)&ss, out, outlen, NULL);
}

/* sink_do_xclient - XCLIENT attr=xtext...: 220 and a fresh session */
static void
sink_do_xclient(struct sink_sess *s, const char *arg)
{
	char	client[ADDR_STRLEN] = "", val[SINK_XC_MAX + 1];
	const char *p = arg;
	int	nattr = 0;

	if (!s->sk->xclient) {
		sink_reply(s, "550 5.7.0 Error: insufficient authorization");
		(void)sink_bad(s);
		return;
	}
	while (*p != '\0') {
		size_t	klen, vlen = strcspn(p, " ");
		const char *eq = memchr(p, '=', vlen);

		if (eq == NULL || eq == p)
			goto syntax;
		klen = (size_t)(eq - p);
		if (sink_xtext_decode(eq + 1, vlen - klen - 1, val,
		    sizeof(val)) < 0) {
			sink_reply(s, "501 5.5.4 Bad %.*s syntax", (int)klen, p);
			(void)sink_bad(s);
			return;
		}
		if (klen == 4 && strncasecmp(p, "ADDR", 4) == 0) {
			if (sink_xclient_addr(val, client, sizeof(client)) < 0) {
				sink_reply(s, "501 5.5.4 Bad ADDR syntax: %s",
				    val);
				(void)sink_bad(s);
				return;
			}
		} else if (klen == 4 && strncasecmp(p, "PORT", 4) == 0) {
			char   *end;
			long	port = strtol(val, &end, 10);

			if (strcmp(val, "[UNAVAILABLE]") != 0 &&
			    (*end != '\0' || end == val || port < 0 ||
			    port > 65535)) {
				sink_reply(s, "501 5.5.4 Bad PORT syntax: %s",
				    val);
				(void)sink_bad(s);
				return;
			}
		} else if (klen == 5 && strncasecmp(p, "PROTO", 5) == 0) {
			if (strcasecmp(val, "SMTP") != 0 &&
			    strcasecmp(val, "ESMTP") != 0 &&
			    strcmp(val, "[UNAVAILABLE]") != 0) {
				sink_reply(s, "501 5.5.4 Bad PROTO syntax: %s",
				    val);
				(void)sink_bad(s);
				return;
			}
		} else if (!(klen == 4 && strncasecmp(p, "NAME", 4) == 0) &&
		    !(klen == 4 && strncasecmp(p, "HELO", 4) == 0)) {
			sink_reply(s, "501 5.5.4 Bad XCLIENT attribute name: "
			    "%.*s", (int)(klen > 64 ? 64 : klen), p);
			(void)sink_bad(s);
			return;
		}
		nattr++;
		for (p += vlen; *p == ' '; p++)
			;
	}
	if (nattr == 0)
		goto syntax;
	if (client[0] != '\0') {
		snprintf(s->client, sizeof(s->client), "%s", client);
		s->via_xclient = 1;
	}
	s->sk->xclient_ok++;
	sink_reset_txn(s);
	sink_reply(s, "220 %s ESMTP countsink", s->sk->hostname);
	return;
syntax:
	sink_reply(s, "501 5.5.4 Syntax: XCLIENT attribute=value...");
	(void)sink_bad(s);
}

static const struct sink_cmd sink_cmds[] = {
	{"HELO", sink_chk_any, sink_do_helo, 0},
	{"EHLO", sink_chk_any, sink_do_ehlo, 0},
	{"MAIL", sink_chk_notxn, sink_do_mail, 0},
	{"RCPT", sink_chk_mail, sink_do_rcpt, 0},
	{"DATA", sink_chk_rcpt, sink_do_data, 0},
	{"RSET", sink_chk_any, sink_do_rset, 0},
	{"NOOP", sink_chk_any, sink_do_noop, 0},
	{"QUIT", sink_chk_any, sink_do_quit, SINK_CMD_KILL},
	{"XCLIENT", sink_chk_notxn, sink_do_xclient, 0},
};

/* sink_command - run one command line */
static void
sink_command(struct sink_sess *s, const char *line, size_t len)
{
	const struct sink_cmd *c;
	size_t	n, i;
	const char *arg;

	if (len != strlen(line)) {
		sink_reply(s, "500 5.5.2 Error: NUL in command");
		(void)sink_bad(s);
		return;
	}
	n = strcspn(line, " ");
	for (arg = line + n; *arg == ' '; arg++)
		;
	for (i = 0; i < sizeof(sink_cmds) / sizeof(sink_cmds[0]); i++) {
		c = &sink_cmds[i];
		if (strlen(c->name) == n && strncasecmp(line, c->name, n) == 0) {
			if (c->check(s) == 0)
				c->proceed(s, arg);
			else
				(void)sink_bad(s);
			return;
		}
	}
	if (n == 0)
		sink_reply(s, "500 5.5.2 Error: bad syntax");
	else
		sink_reply(s, "502 5.5.2 Error: command not recognized");
	(void)sink_bad(s);
}

/* sink_process - handle all complete input, in order */
static void
sink_process(struct sink_sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char   *line;
	size_t	n;

	while (s->state != SINK_ST_CLOSING) {
		if (evbuffer_get_length(out) > SINK_OUT_HIWAT) {
			s->throttled = 1;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SINK_ST_DATA) {
			if (sink_data_step(s, in) == 0)
				return;
			continue;
		}
		if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) == NULL) {
			if (evbuffer_get_length(in) > SINK_MAX_LINE) {
				evbuffer_drain(in, evbuffer_get_length(in));
				if (!s->skipping) {
					s->skipping = 1;
					sink_reply(s, "500 5.5.2 Error: line "
					    "too long");
					(void)sink_bad(s);
				}
			}
			return;
		}
		if (s->skipping) {
			s->skipping = 0;	/* the long line's tail */
			free(line);
			continue;
		}
		sink_command(s, line, n);
		free(line);
	}
}

/* sink_readcb - input arrived */
static void
sink_readcb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	sink_process(arg);
}

/* sink_writecb - output drained to the low watermark */
static void
sink_writecb(struct bufferevent *bev, void *arg)
{
	struct sink_sess *s = arg;

	if (s->state == SINK_ST_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			sink_sess_free(s, "done");
		return;
	}
	if (s->throttled) {
		s->throttled = 0;
		bufferevent_enable(bev, EV_READ);
		sink_process(s);
	}
}

/* sink_eventcb - EOF, error or idle timeout */
static void
sink_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct sink_sess *s = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SINK_ST_CLOSING) {
			sink_sess_free(s, "timeout flushing");
			return;
		}
		s->sk->timeouts++;
		sink_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->sk->hostname);
		sink_close(s);
		return;
	}
	if (s->state == SINK_ST_DATA)
		s->sk->aborted++;
	sink_sess_free(s, what & BEV_EVENT_EOF ? "peer closed" : "error");
}

/* sink_accept - a new connection */
static void
sink_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct sink *sk = arg;
	struct sockaddr_storage ss;
	struct sink_sess *s;
	struct timeval tv;

	(void)l;
	sk->connections++;
	if (sk->nsess >= sk->max_sessions) {
		static const char msg[] = "421 4.3.2 Too many connections\r\n";

		sk->refused++;
		(void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		evutil_closesocket(fd);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session");
		evutil_closesocket(fd);
		return;
	}
	s->bev = bufferevent_socket_new(sk->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("bufferevent_socket_new failed");
		evutil_closesocket(fd);
		free(s);
		return;
	}
	s->sk = sk;
	s->id = sk->connections;
	memset(&ss, 0, sizeof(ss));
	if (salen > 0 && (size_t)salen <= sizeof(ss))
		memcpy(&ss, sa, (size_t)salen);
	addr_unmap(&ss);
	(void)addr_ntop((struct sockaddr *)&ss, s->peer, sizeof(s->peer), NULL);
	snprintf(s->client, sizeof(s->client), "%s", s->peer);
	TAILQ_INSERT_TAIL(&sk->sessions, s, entry);
	sk->nsess++;
	bufferevent_setcb(s->bev, sink_readcb, sink_writecb, sink_eventcb, s);
	bufferevent_setwatermark(s->bev, EV_WRITE, SINK_OUT_LOWAT, 0);
	tv.tv_sec = sk->timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = SINK_ST_CMD;
	log_debug("session %" PRIu64 ": connect from %s", s->id, s->peer);
	sink_reply(s, "220 %s ESMTP countsink", sk->hostname);
}

/* ------------------------------------------------------------ stats */

/* sink_count_json - {"received":..,"accepted":..,"rejected":..} */
static void
sink_count_json(struct evbuffer *b, const struct sink_count *c)
{
	evbuffer_add_printf(b, "{\"received\":%" PRIu64 ",\"accepted\":%"
	    PRIu64 ",\"rejected\":%" PRIu64 "}", c->received, c->accepted,
	    c->rejected);
}

/* sink_truths_json - "ham":{..},"spam":{..},"unknown":{..} (no braces) */
static void
sink_truths_json(struct evbuffer *b, const struct sink_count *c)
{
	static const enum sink_truth order[SINK_NTRUTH] = {
		SINK_HAM, SINK_SPAM, SINK_UNKNOWN
	};
	int	i;

	for (i = 0; i < SINK_NTRUTH; i++) {
		evbuffer_add_printf(b, "%s\"%s\":", i ? "," : "",
		    sink_truth_name(order[i]));
		sink_count_json(b, &c[order[i]]);
	}
}

/* sink_stats_json - the whole stats object, one line, into b */
static void
sink_stats_json(struct sink *sk, struct evbuffer *b)
{
	const struct strmap_ent *e;
	struct timeval now;
	int	first = 1;

	gettimeofday(&now, NULL);
	evbuffer_add(b, "{", 1);
	sink_truths_json(b, sk->tot);
	evbuffer_add_printf(b, ",\"by_population\":{");
	for (e = strmap_next(&sk->pops, NULL); e != NULL;
	    e = strmap_next(&sk->pops, e)) {
		const struct sink_pop *pp = e->p;

		if (!first)
			evbuffer_add(b, ",", 1);
		first = 0;
		json_escape(b, e->key);
		evbuffer_add(b, ":{", 2);
		sink_truths_json(b, pp->c);
		evbuffer_add_printf(b, ",\"clients\":%zu,\"via_xclient\":%"
		    PRIu64 "}", pp->clients.n, pp->via_xclient);
	}
	evbuffer_add_printf(b, "},\"server\":{\"connections\":%" PRIu64
	    ",\"sessions_now\":%zu,\"refused\":%" PRIu64 ",\"xclient\":%"
	    PRIu64 ",\"bad_commands\":%" PRIu64 ",\"oversize\":%" PRIu64
	    ",\"timeouts\":%" PRIu64 ",\"aborted\":%" PRIu64
	    ",\"long_lines\":%" PRIu64 ",\"conflicting_markers\":%" PRIu64
	    ",\"uptime_s\":%.3f}", sk->connections, sk->nsess, sk->refused,
	    sk->xclient_ok, sk->bad_commands, sk->oversize, sk->timeouts,
	    sk->aborted, sk->long_lines, sk->conflicts,
	    (double)(now.tv_sec - sk->started.tv_sec) +
	    (double)(now.tv_usec - sk->started.tv_usec) / 1e6);
	evbuffer_add_printf(b, ",\"config\":{\"reject_spam_pct\":%.2f,"
	    "\"seed\":%" PRIu64 ",\"xclient\":%s,\"pipelining\":%s}}\n",
	    sk->reject_bp / 100.0, sk->seed, sk->xclient ? "true" : "false",
	    sk->pipelining ? "true" : "false");
}

/* sink_stats_write - write the stats to --stats (atomically via rename) */
static void
sink_stats_write(struct sink *sk)
{
	struct evbuffer *b;
	char	tmp[4096];
	int	fd, ok = 1;

	if (sk->stats_path == NULL || (b = evbuffer_new()) == NULL)
		return;
	sink_stats_json(sk, b);
	if (strcmp(sk->stats_path, "-") == 0) {
		while (evbuffer_get_length(b) > 0)
			if (evbuffer_write(b, STDOUT_FILENO) <= 0)
				break;
		evbuffer_free(b);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", sk->stats_path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0) {
		log_warn("%s", tmp);
		evbuffer_free(b);
		return;
	}
	while (evbuffer_get_length(b) > 0)
		if (evbuffer_write(b, fd) <= 0)
			break;
	if (evbuffer_get_length(b) > 0) {
		log_warn("%s: write", tmp);
		ok = 0;
	}
	if (close(fd) < 0 && ok) {
		log_warn("%s: close", tmp);
		ok = 0;
	}
	if (ok && rename(tmp, sk->stats_path) < 0) {
		log_warn("rename %s", sk->stats_path);
		ok = 0;
	}
	if (!ok)
		(void)unlink(tmp);
	evbuffer_free(b);
}

/* ------------------------------------------------------------ server */

/* sink_tick - the periodic stats write */
static void
sink_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sink_stats_write(arg);
}

/* sink_resume - accept again after running out of descriptors */
static void
sink_resume(evutil_socket_t fd, short what, void *arg)
{
	struct sink *sk = arg;
	int	i;

	(void)fd;
	(void)what;
	for (i = 0; i < sk->nlst; i++)
		evconnlistener_enable(sk->lst[i]);
}

/* sink_accept_error - log; on EMFILE pause accepting for 100 ms */
static void
sink_accept_error(struct evconnlistener *l, void *arg)
{
	struct sink *sk = arg;
	struct timeval tv = {0, 100000};
	int	i, e = EVUTIL_SOCKET_ERROR();

	(void)l;
	log_warnx("accept: %s", evutil_socket_error_to_string(e));
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		for (i = 0; i < sk->nlst; i++)
			evconnlistener_disable(sk->lst[i]);
		evtimer_add(sk->ev_resume, &tv);
	}
}

/* sink_stop - stop accepting, write the final stats, close everything */
static void
sink_stop(struct sink *sk, const char *why)
{
	struct sink_sess *s;
	int	i;

	log_info("%s: stopping", why);
	for (i = 0; i < sk->nlst; i++) {
		evconnlistener_free(sk->lst[i]);
		sk->lst[i] = NULL;
	}
	sk->nlst = 0;
	while ((s = TAILQ_FIRST(&sk->sessions)) != NULL) {
		if (s->state == SINK_ST_DATA)
			sk->aborted++;
		sink_sess_free(s, why);
	}
	sink_stats_write(sk);
	event_base_loopexit(sk->base, NULL);
}

/* sink_signal - SIGTERM/SIGINT end the server, SIGUSR1 writes stats */
static void
sink_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sink *sk = arg;

	(void)what;
	if (sig == SIGUSR1)
		sink_stats_write(sk);
	else
		sink_stop(sk, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* sink_listen - bind one -l endpoint; 0, or -2 (syntax) or -1 (bind) with
 * err filled */
static int
sink_listen(struct sink *sk, const char *text, char *err, size_t errlen)
{
	struct endpoint ep;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char	host[ADDR_STRLEN];
	int	port = 0;
	struct evconnlistener *l;

	if (sk->nlst >= SINK_MAX_LISTEN) {
		snprintf(err, errlen, "at most %d -l options", SINK_MAX_LISTEN);
		return -1;
	}
	if (addr_parse_endpoint(text, 25, &ep, err, errlen) < 0)
		return -2;
	if (ep.ss.ss_family == AF_UNIX)
		(void)unlink(((struct sockaddr_un *)&ep.ss)->sun_path);
	l = evconnlistener_new_bind(sk->base, sink_accept, sk,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    4096, (struct sockaddr *)&ep.ss, (int)ep.len);
	if (l == NULL) {
		snprintf(err, errlen, "%s: bind: %s", text, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(l, sink_accept_error);
	sk->lst[sk->nlst++] = l;
	if (ep.ss.ss_family == AF_UNIX) {
		log_info("listening on %s", text);
		return 0;
	}
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss,
	    &sl) == 0 && addr_ntop((struct sockaddr *)&ss, host, sizeof(host),
	    &port) == 0)
		log_info("listening on %s%s%s:%d",
		    ss.ss_family == AF_INET6 ? "[" : "", host,
		    ss.ss_family == AF_INET6 ? "]" : "", port);
	return 0;
}

/* sink_usage - the option summary on stderr */
static void
sink_usage(void)
{
	fprintf(stderr,
	    "usage: mailshaper-swarm backend [-l ADDR:PORT]... [--reject-spam PCT]\n"
	    "           [--seed N] [--stats FILE] [--stats-interval SEC]\n"
	    "           [--xclient] [--pipelining] [--hostname NAME]\n"
	    "           [--max-size BYTES] [--timeout SEC] [--max-sessions N] [-v]\n"
	    "  -l, --listen ADDR:PORT   listen here (several; default 127.0.0.1:2525)\n"
	    "  --reject-spam PCT        share of spam answered 550 5.7.1 (default 90)\n"
	    "  --seed N                 seed of the reject decisions (default: random)\n"
	    "  --stats FILE             JSON counters: on SIGUSR1, periodically, at exit\n"
	    "                           (\"-\": stdout, on SIGUSR1 and at exit only)\n"
	    "  --stats-interval SEC     periodic stats writes (default 1; 0 = none)\n"
	    "  --xclient                advertise and accept XCLIENT\n"
	    "  --pipelining             advertise PIPELINING\n"
	    "  --hostname NAME          in the greeting (default countsink.invalid)\n"
	    "  --max-size BYTES         SIZE limit (default 10485760)\n"
	    "  --timeout SEC            idle timeout (default 300)\n"
	    "  --max-sessions N         concurrent sessions, then 421 (default 20000)\n");
}

/* sink_num - a decimal number within [lo, hi]; 0 or -1 */
static int
sink_num(const char *s, unsigned long long lo, unsigned long long hi,
    unsigned long long *v)
{
	char   *end;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v < lo || *v > hi)
		return -1;
	return 0;
}

enum {
	SINK_OPT_REJECT = 256, SINK_OPT_SEED, SINK_OPT_STATS,
	SINK_OPT_INTERVAL, SINK_OPT_XCLIENT, SINK_OPT_PIPELINING,
	SINK_OPT_HOSTNAME, SINK_OPT_MAXSIZE, SINK_OPT_TIMEOUT,
	SINK_OPT_MAXSESS
};

static const struct option sink_opts[] = {
	{"listen", required_argument, NULL, 'l'},
	{"reject-spam", required_argument, NULL, SINK_OPT_REJECT},
	{"seed", required_argument, NULL, SINK_OPT_SEED},
	{"stats", required_argument, NULL, SINK_OPT_STATS},
	{"stats-interval", required_argument, NULL, SINK_OPT_INTERVAL},
	{"xclient", no_argument, NULL, SINK_OPT_XCLIENT},
	{"pipelining", no_argument, NULL, SINK_OPT_PIPELINING},
	{"hostname", required_argument, NULL, SINK_OPT_HOSTNAME},
	{"max-size", required_argument, NULL, SINK_OPT_MAXSIZE},
	{"timeout", required_argument, NULL, SINK_OPT_TIMEOUT},
	{"max-sessions", required_argument, NULL, SINK_OPT_MAXSESS},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0}
};

/* sink_free - release what sink_main() made */
static void
sink_free(struct sink *sk)
{
	struct sink_sess *s;
	int	i;

	while ((s = TAILQ_FIRST(&sk->sessions)) != NULL)
		sink_sess_free(s, "exit");
	for (i = 0; i < sk->nlst; i++)
		evconnlistener_free(sk->lst[i]);
	sk->nlst = 0;
	if (sk->ev_term)
		event_free(sk->ev_term);
	if (sk->ev_int)
		event_free(sk->ev_int);
	if (sk->ev_usr1)
		event_free(sk->ev_usr1);
	if (sk->ev_tick)
		event_free(sk->ev_tick);
	if (sk->ev_resume)
		event_free(sk->ev_resume);
	strmap_free(&sk->pops, sink_pop_free);
	if (sk->base)
		event_base_free(sk->base);
	sk->base = NULL;
}

/* sink_main - parse options, serve until SIGTERM/SIGINT; the exit status */
int
sink_main(int argc, char **argv)
{
	struct sink sk;
	const char *lsn[SINK_MAX_LISTEN];
	unsigned long long v;
	char	err[512];
	int	nlisten = 0, ch, i, rc = 1;

	memset(&sk, 0, sizeof(sk));
	TAILQ_INIT(&sk.sessions);
	sk.reject_bp = 9000;
	sk.stats_interval = 1;
	sk.max_size = 10485760;
	sk.timeout = 300;
	sk.max_sessions = 20000;
	snprintf(sk.hostname, sizeof(sk.hostname), "countsink.invalid");
	sk.seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	sk.seed = sink_mix(sk.seed);

	optind = 0;		/* glibc: full re-initialisation */
	while ((ch = getopt_long(argc, argv, "l:vh", sink_opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (nlisten >= SINK_MAX_LISTEN) {
				fprintf(stderr, "countsink: at most %d -l "
				    "options\n", SINK_MAX_LISTEN);
				return 2;
			}
			lsn[nlisten++] = optarg;
			break;
		case SINK_OPT_REJECT:
			if (sink_parse_pct(optarg, &sk.reject_bp) < 0)
				goto badval;
			break;
		case SINK_OPT_SEED:
			if (sink_num(optarg, 0, UINT64_MAX, &v) < 0)
				goto badval;
			sk.seed = v;
			break;
		case SINK_OPT_STATS:
			sk.stats_path = optarg;
			break;
		case SINK_OPT_INTERVAL:
			if (sink_num(optarg, 0, 86400, &v) < 0)
				goto badval;
			sk.stats_interval = (int)v;
			break;
		case SINK_OPT_XCLIENT:
			sk.xclient = 1;
			break;
		case SINK_OPT_PIPELINING:
			sk.pipelining = 1;
			break;
		case SINK_OPT_HOSTNAME:
			if (*optarg == '\0' || strlen(optarg) >= 200 ||
			    strpbrk(optarg, " \t\r\n") != NULL)
				goto badval;
			snprintf(sk.hostname, sizeof(sk.hostname), "%s",
			    optarg);
			break;
		case SINK_OPT_MAXSIZE:
			if (sink_num(optarg, 1, (unsigned long long)1 << 40,
			    &v) < 0)
				goto badval;
			sk.max_size = (size_t)v;
			break;
		case SINK_OPT_TIMEOUT:
			if (sink_num(optarg, 1, 86400, &v) < 0)
				goto badval;
			sk.timeout = (int)v;
			break;
		case SINK_OPT_MAXSESS:
			if (sink_num(optarg, 1, 10000000, &v) < 0)
				goto badval;
			sk.max_sessions = (size_t)v;
			break;
		case 'v':
			log_set_verbose(1);
			break;
		case 'h':
			sink_usage();
			return 0;
		default:
			sink_usage();
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "countsink: unexpected argument: %s\n",
		    argv[optind]);
		return 2;
	}
	if (nlisten == 0)
		lsn[nlisten++] = "127.0.0.1:2525";

	signal(SIGPIPE, SIG_IGN);
	gettimeofday(&sk.started, NULL);
	if ((sk.base = event_base_new()) == NULL) {
		log_warnx("event_base_new failed");
		return 1;
	}
	for (i = 0; i < nlisten; i++)
		if ((ch = sink_listen(&sk, lsn[i], err, sizeof(err))) < 0) {
			fprintf(stderr, "countsink: %s\n", err);
			rc = ch == -2 ? 2 : 1;
			goto out;
		}
	sk.ev_term = evsignal_new(sk.base, SIGTERM, sink_signal, &sk);
	sk.ev_int = evsignal_new(sk.base, SIGINT, sink_signal, &sk);
	sk.ev_usr1 = evsignal_new(sk.base, SIGUSR1, sink_signal, &sk);
	sk.ev_tick = event_new(sk.base, -1, EV_PERSIST, sink_tick, &sk);
	sk.ev_resume = evtimer_new(sk.base, sink_resume, &sk);
	if (sk.ev_term == NULL || sk.ev_int == NULL || sk.ev_usr1 == NULL ||
	    sk.ev_tick == NULL || sk.ev_resume == NULL ||
	    evsignal_add(sk.ev_term, NULL) < 0 ||
	    evsignal_add(sk.ev_int, NULL) < 0 ||
	    evsignal_add(sk.ev_usr1, NULL) < 0) {
		log_warnx("cannot set up signal events");
		goto out;
	}
	if (sk.stats_path != NULL && strcmp(sk.stats_path, "-") != 0 &&
	    sk.stats_interval > 0) {
		struct timeval tv = {sk.stats_interval, 0};

		evtimer_add(sk.ev_tick, &tv);
	}
	log_info("ready: reject_spam=%.2f%% seed=%" PRIu64 " xclient=%s "
	    "pipelining=%s", sk.reject_bp / 100.0, sk.seed,
	    sk.xclient ? "yes" : "no", sk.pipelining ? "yes" : "no");
	sink_stats_write(&sk);
	if (event_base_dispatch(sk.base) < 0)
		log_warnx("event loop failed");
	else
		rc = 0;
out:
	sink_free(&sk);
	signal(SIGPIPE, SIG_DFL);
	return rc;
badval:
	fprintf(stderr, "countsink: bad value for %s: %s\n",
	    argv[optind - 1], optarg);
	return 2;
}
