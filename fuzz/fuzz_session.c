/*
 * fuzz_session.c - libFuzzer target for the real SMTP session (issue 10)
 *
 * Drives src/smtp/session.c with the real backend.c, canon.c, shaper.c,
 * policy.c and reputation (memory only), the way the daemon runs them: one
 * event loop, the global `ms`, a configuration from conf_load(), and a
 * throw-away STARTTLS context, a spool directory in /tmp with a 256 KiB
 * memory budget.  No DNS lists, no admin API, no event log.
 *
 * The client is one end of a socketpair handed to sess_accept() with a fake
 * peer address (and a SYN from the input); the backend is a unix socket
 * (backend = unix:/tmp/fuzz_session.PID.sock) that this process listens on
 * and answers by hand.  Time is the input's: every class delay is a real
 * timer that never expires during a run, and sess_fire_timers() makes the
 * armed ones run now.  Only the class "rated" has byte-rate limits (large
 * ones): token buckets refill by the wall clock, which the input does not
 * control.
 *
 * Input: three header bytes, then operations.
 *   byte 0: bits 0-2 class of the peer (trusted, normal, suspect, hostile,
 *	     tempfail, reject, rated, unmapped), bit 3 IPv6 peer, bit 4 the
 *	     backend answers every command by itself, bit 5 time advances by
 *	     itself (armed session timers are fired until nothing moves),
 *	     bit 6 a SYN follows (one length byte, then the bytes), bit 7
 *	     STARTTLS offered;
 *   byte 1: what the backend probe learned: bit 0 CHUNKING, bit 1
 *	     PIPELINING, bit 2 SIZE 5000, bit 3 8BITMIME, bit 4 SMTPUTF8,
 *	     bit 5 ENHANCEDSTATUSCODES;
 *   byte 2: configuration: bits 0-1 backend_identity (xclient, proxy,
 *	     none, none), bit 2 bare_policy = reject, bit 3
 *	     message_size_limit = 2000, bit 4 smtp_line_limit = 512, bit 5
 *	     observe, bit 6 smtp_error_limit = 3, bit 7
 *	     backend_max_connections = 1;
 *   then operations, one byte each (low 4 bits) and their arguments:
 *	0, 13 client bytes: length byte L, then L+1 bytes
 *	1, 12 a canned command line: index byte
 *	2     filler: kind byte, count byte (1 KiB units, x64 if kind bit 7)
 *	3     the backend answers its oldest command: selector byte
 *	4     the backend closes its newest connection
 *	5     fire timers: byte, bits 0-5 rounds - 1, bit 6 backend keepalives
 *	      too, bit 7 the sessions' state deadlines too
 *	6     the client half-closes (shutdown SHUT_WR)
 *	7     the client closes; a new client connects
 *	8     the client stops / starts reading its replies
 *	9     raw backend bytes: length byte L, then L+1 bytes
 *	10    backend auto-answer off / on
 *	11    automatic time off / on
 *	14    the client holds / releases its writes (to pipeline a burst)
 *	15    a content line with a unique smuggling marker address
 * After each operation the loop runs until nothing moves.
 *
 * Invariants (abort() when violated, besides ASan/UBSan/LSan):
 *   - a reply the client reads as its end-of-data reply (to the final dot
 *     of DATA, or to BDAT ... LAST) is 2xx only if the fake backend gave a
 *     2xx to that message's final dot: those replies, and only those, carry
 *     a unique "queued as Q<n>" that must arrive at most once;
 *   - the backend never receives, outside its own DATA phase, a MAIL or
 *     RCPT whose <address> the client sent only inside message content
 *     (after an accepted DATA, or inside a BDAT chunk);
 *   - after every input, sess_shutdown_all() and a few loop rounds leave no
 *     session, no backend connection, no spool memory and no event behind.
 * Which client reply answers which command is worked out afterwards from
 * the bytes each side saw, as an RFC 5321 client would; where that is
 * uncertain (bytes sent before the banner, over-long lines, TLS) the first
 * two checks stop there.
 *
 * Memory: all harness state is static and reset per input; configurations
 * are loaded once per variant and kept.  Set FUZZ_SESSION_LOG=1 to see the
 * daemon's log (debug) on stderr when replaying a crasher.
 *
 * FUZZ_SESSION_SKIP (comma-separated) steers around findings still open, so
 * a long run can look for new ones: "data250" makes the fake backend answer
 * 354 where the input asks for a 2xx to DATA itself (fuzz/crashers/
 * backend-*-to-data-relayed); "hiwat" caps the filler at 192 KiB per input,
 * so a session never holds 256 KiB of unread input (fuzz/crashers/
 * busy-input-at-hiwat-spins).  Remove a word once its finding is fixed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <sanitizer/common_interface_defs.h>

#include "conf/conf.h"
#include "daemon/runtime.h"
#include "fp/fp.h"
#include "rep/rep.h"
#include "smtp/backend.h"
#include "smtp/canon.h"
#include "smtp/session.h"
#include "smtp/spool.h"
#include "swarm/tlsgen.h"
#include "util/log.h"

#ifndef MS_REPO
#define MS_REPO "."
#endif

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_FILL_MAX	(4L * 1024 * 1024)	/* filler bytes per input */
#define FZ_KEEP_MAX	(8L * 1024 * 1024)	/* bytes kept per direction */
#define FZ_ROUNDS	256			/* loop rounds per settle */
#define FZ_FBK_MAX	16			/* backend connections per input */
#define FZ_PEND_MAX	32			/* commands awaiting an answer */
#define FZ_TOK_MAX	1024			/* "queued as" tokens per input */
#define FZ_ADDR_MAX	256			/* marker addresses per set */
#define FZ_REPLY_MAX	8192			/* client replies parsed */

/* A growable byte buffer. */
struct fz_buf {
	unsigned char *p;
	size_t	len, cap;
};

/* What the fake backend was asked. */
enum fz_cmd {
	FC_GREETING, FC_EHLO, FC_XCLIENT, FC_MAIL, FC_RCPT, FC_DATA, FC_DOT,
	FC_RSET, FC_NOOP, FC_QUIT, FC_OTHER,
};

/* One connection the daemon opened to the fake backend. */
struct fz_fbk {
	int	fd;			/* -1 = closed */
	struct fz_buf in;		/* unparsed bytes */
	int	proxy_done;		/* PROXY v2 header skipped (or none) */
	int	in_data;		/* after our 354: content until "." */
	enum fz_cmd pend[FZ_PEND_MAX];	/* unanswered commands, oldest first */
	int	npend;
};

/* The client connection. */
struct fz_cli {
	int	fd;			/* -1 = none */
	struct fz_buf queue;		/* to be written */
	struct fz_buf sent;		/* written, in order */
	struct fz_buf recv;		/* read */
	int	reading;		/* reads its replies */
	int	hold;			/* queues without writing */
	int	wr_shut;
	int	unsynced;		/* the reply model cannot follow */
};

/* A set of marker addresses ("...smuggle..." inside <>). */
struct fz_set {
	char	a[FZ_ADDR_MAX][72];
	int	n;
};

static struct conf *fz_confs[256];
static SSL_CTX *fz_tls;
static struct sigdb *fz_sigdb;
static char fz_path[108];
static char fz_spool[108];
static int fz_lfd = -1;

static struct fz_cli cli;
static struct fz_fbk fbk[FZ_FBK_MAX];
static int nfbk;
static int auto_backend, auto_time, identity, line_limit, nclients;
static long fill_used;
static int skip_data250, skip_hiwat;	/* FUZZ_SESSION_SKIP */
static unsigned char tok_state[FZ_TOK_MAX];	/* 1 issued for a dot, 2 seen */
static int ntok;
static int smuggle_seq;
static struct fz_set set_content, set_command, set_backend;

/*
 * fz_fail - an invariant is broken: say which, then abort.  The summary
 * goes where sanitizer reports go, so it shows under -close_fd_mask=2.
 */
static void
fz_fail(const char *what, const char *detail, size_t dlen)
{
	char	buf[600];

	snprintf(buf, sizeof(buf), "fuzz_session: INVARIANT VIOLATED: %s%s%.*s",
	    what, detail ? ": " : "", (int)(dlen > 300 ? 300 : dlen),
	    detail ? detail : "");
	fprintf(stderr, "\n%s\n", buf);
	__sanitizer_report_error_summary(buf);
	abort();
}

/* buf_add - append bytes, growing as needed */
static void
buf_add(struct fz_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t	cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		if ((b->p = realloc(b->p, cap)) == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* buf_drop - forget the first n bytes */
static void
buf_drop(struct fz_buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* set_add - remember an address (ignored when full) */
static void
set_add(struct fz_set *s, const char *a, size_t n)
{
	if (s->n == FZ_ADDR_MAX || n >= sizeof(s->a[0]))
		return;
	memcpy(s->a[s->n], a, n);
	s->a[s->n][n] = 0;
	s->n++;
}

/* set_has - is the address in the set? */
static int
set_has(const struct fz_set *s, const char *a)
{
	int	i;

	for (i = 0; i < s->n; i++)
		if (strcasecmp(s->a[i], a) == 0)
			return 1;
	return 0;
}

/* scan_markers - add every <...smuggle...> of p[0..n) to s */
static void
scan_markers(struct fz_set *s, const unsigned char *p, size_t n)
{
	const unsigned char *lt, *gt, *end = p + n;

	while (p < end && (lt = memchr(p, '<', end - p)) != NULL) {
		if ((gt = memchr(lt, '>', end - lt)) == NULL)
			return;
		if (gt - lt - 1 < 70 && memmem(lt, gt - lt, "smuggle", 7) &&
		    memchr(lt, '\n', gt - lt) == NULL)
			set_add(s, (const char *)lt + 1, gt - lt - 1);
		p = lt + 1;
	}
}

/* conf_variant - the configuration for header byte 2, loaded once */
static struct conf *
conf_variant(int v)
{
	static const char *const ident[] = {"xclient", "proxy", "none", "none"};
	char	o[32][600], *ov[32], err[512];
	int	n = 0, i;

	if (fz_confs[v] != NULL)
		return fz_confs[v];
	snprintf(o[n++], sizeof(o[0]), "backend=unix:%s", fz_path);
	snprintf(o[n++], sizeof(o[0]), "backend_identity=%s", ident[v & 3]);
	snprintf(o[n++], sizeof(o[0]), "eventlog=");
	snprintf(o[n++], sizeof(o[0]), "rep_store=");
	snprintf(o[n++], sizeof(o[0]), "rep_cache_size=64");
	snprintf(o[n++], sizeof(o[0]), "spool_dir=%s", fz_spool);
	snprintf(o[n++], sizeof(o[0]), "spool_memory=256k");
	snprintf(o[n++], sizeof(o[0]), "explore_share=0");
	snprintf(o[n++], sizeof(o[0]), "myhostname=mx.fuzz.example");
	snprintf(o[n++], sizeof(o[0]), "client_class_map="
	    "192.0.2.10/32=trusted 192.0.2.11/32=normal 192.0.2.12/32=suspect "
	    "192.0.2.13/32=hostile 192.0.2.14/32=tempfail 192.0.2.15/32=reject "
	    "192.0.2.16/32=rated 2001:db8::10/128=trusted "
	    "2001:db8::11/128=normal 2001:db8::12/128=suspect "
	    "2001:db8::13/128=hostile 2001:db8::14/128=tempfail "
	    "2001:db8::15/128=reject 2001:db8::16/128=rated");
	snprintf(o[n++], sizeof(o[0]), "class_suspect=banner_delay=2s "
	    "reply_delay=1s stutter=7 stutter_interval=1s max_messages=3 "
	    "max_rcpt=4 max_per_client=5 max_share=100 action=relay rate_in=0 "
	    "rate_out=0 session_time=0");
	snprintf(o[n++], sizeof(o[0]), "class_hostile=banner_delay=290s "
	    "reply_delay=290s stutter=5 stutter_interval=10s max_messages=1 "
	    "max_rcpt=5 max_per_client=2 max_share=100 action=relay rate_in=0 "
	    "rate_out=0 session_time=0");
	snprintf(o[n++], sizeof(o[0]), "class_tempfail=reply_delay=1s "
	    "action=tempfail");
	snprintf(o[n++], sizeof(o[0]), "class_reject=action=reject");
	snprintf(o[n++], sizeof(o[0]), "class_rated=rate_in=100m "
	    "rate_out=100m");
	snprintf(o[n++], sizeof(o[0]), "bare_policy=%s",
	    v & 4 ? "reject" : "normalize");
	if (v & 8)
		snprintf(o[n++], sizeof(o[0]), "message_size_limit=2000");
	if (v & 16)
		snprintf(o[n++], sizeof(o[0]), "smtp_line_limit=512");
	snprintf(o[n++], sizeof(o[0]), "observe=%s", v & 32 ? "yes" : "no");
	snprintf(o[n++], sizeof(o[0]), "smtp_error_limit=%d", v & 64 ? 3 : 10);
	if (v & 128)
		snprintf(o[n++], sizeof(o[0]), "backend_max_connections=1");
	for (i = 0; i < n; i++)
		ov[i] = o[i];
	fz_confs[v] = conf_load(NULL, ov, n, err, sizeof(err));
	if (fz_confs[v] == NULL) {
		fprintf(stderr, "fuzz_session: configuration: %s\n", err);
		abort();
	}
	return fz_confs[v];
}

/* tls_ctx - a server context with a throw-away certificate */
static SSL_CTX *
tls_ctx(void)
{
	char	crt[128], key[128], err[256];
	SSL_CTX *ctx;

	snprintf(crt, sizeof(crt), "/tmp/fuzz_session.%d.crt", (int)getpid());
	snprintf(key, sizeof(key), "/tmp/fuzz_session.%d.key", (int)getpid());
	if (tlsgen_selfsigned(crt, key, "mx.fuzz.example", err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_session: tls: %s\n", err);
		abort();
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		abort();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	unlink(crt);
	unlink(key);
	return ctx;
}

/* fz_cleanup - remove the socket file at exit */
static void
fz_cleanup(void)
{
	if (*fz_path)
		unlink(fz_path);
	if (*fz_spool)
		rmdir(fz_spool);
}

/* LLVMFuzzerInitialize - the loop, the backend socket, TLS, signatures */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct ms the_ms;
	struct sockaddr_un sun;
	const char *paths[1] = { MS_REPO "/data/mailshaper.fp" };
	const char *skip;
	char	err[256];

	(void)argc;
	(void)argv;
	if ((skip = getenv("FUZZ_SESSION_SKIP")) != NULL) {
		skip_data250 = strstr(skip, "data250") != NULL;
		skip_hiwat = strstr(skip, "hiwat") != NULL;
	}
	if (getenv("FUZZ_SESSION_LOG") != NULL) {
		log_init(LOG_TO_STDERR, "fuzz_session");
		log_set_verbose(1);
	} else
		log_init(LOG_TO_NONE, "fuzz_session");
	signal(SIGPIPE, SIG_IGN);
	ms = &the_ms;
	if ((ms->base = event_base_new()) == NULL)
		abort();
	snprintf(fz_path, sizeof(fz_path), "/tmp/fuzz_session.%d.sock",
	    (int)getpid());
	snprintf(fz_spool, sizeof(fz_spool), "/tmp/fuzz_session.%d.spool",
	    (int)getpid());
	unlink(fz_path);
	atexit(fz_cleanup);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fz_path);
	if ((fz_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(fz_lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fz_lfd, 64) < 0) {
		perror("fuzz_session: backend socket");
		abort();
	}
	fz_tls = tls_ctx();
	fz_sigdb = sigdb_load_files(paths, 1, err, sizeof(err));
	ms->cf = conf_variant(0);
	return 0;
}

/*
 * The fake backend.
 */

/* fbk_send - write to a backend connection (best effort) */
static void
fbk_send(struct fz_fbk *f, const char *p, size_t n)
{
	if (f->fd >= 0 && n > 0)
		(void)!write(f->fd, p, n);
}

/* fbk_close - hang up */
static void
fbk_close(struct fz_fbk *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->npend = 0;
	f->in_data = 0;
}

/* fbk_push - one more command to answer */
static void
fbk_push(struct fz_fbk *f, enum fz_cmd c)
{
	if (f->npend < FZ_PEND_MAX)
		f->pend[f->npend++] = c;
}

/* fbk_line - one line the daemon sent */
static void
fbk_line(struct fz_fbk *f, const unsigned char *p, size_t n)
{
	static const struct { const char *verb; enum fz_cmd c; } verbs[] = {
		{"EHLO", FC_EHLO}, {"HELO", FC_EHLO}, {"XCLIENT", FC_XCLIENT},
		{"MAIL", FC_MAIL}, {"RCPT", FC_RCPT}, {"DATA", FC_DATA},
		{"RSET", FC_RSET}, {"NOOP", FC_NOOP}, {"QUIT", FC_QUIT},
		{NULL, FC_OTHER},
	};
	size_t	vlen;
	int	i;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (f->in_data) {
		if (n == 1 && p[0] == '.') {
			f->in_data = 0;
			fbk_push(f, FC_DOT);
		}
		return;
	}
	/* A command: markers seen here must have been commands too. */
	scan_markers(&set_backend, p, n);
	vlen = 0;
	while (vlen < n && p[vlen] != ' ')
		vlen++;
	for (i = 0; verbs[i].verb; i++)
		if (strlen(verbs[i].verb) == vlen &&
		    strncasecmp(verbs[i].verb, (const char *)p, vlen) == 0)
			break;
	fbk_push(f, verbs[i].c);
}

/* fbk_read - take what the daemon sent; 1 when anything came */
static int
fbk_read(struct fz_fbk *f)
{
	unsigned char tmp[65536], *nl;
	ssize_t	r;
	int	got = 0;

	while (f->fd >= 0 && (r = read(f->fd, tmp, sizeof(tmp))) > 0) {
		buf_add(&f->in, tmp, (size_t)r);
		got = 1;
	}
	if (f->fd >= 0 && r == 0) {
		fbk_close(f);
		got = 1;
	}
	if (!f->proxy_done) {
		if (identity != 1)
			f->proxy_done = 1;
		else if (f->in.len >= 16) {
			size_t	hl = 16 + ((size_t)f->in.p[14] << 8 | f->in.p[15]);

			if (memcmp(f->in.p, "\r\n\r\n\0\r\nQUIT\n", 12) != 0) {
				f->proxy_done = 1;
			} else if (f->in.len >= hl) {
				buf_drop(&f->in, hl);
				f->proxy_done = 1;
			}
		}
		if (!f->proxy_done)
			return got;
	}
	while (f->in.len > 0 && (nl = memchr(f->in.p, '\n', f->in.len))) {
		fbk_line(f, f->in.p, (size_t)(nl - f->in.p));
		buf_drop(&f->in, (size_t)(nl - f->in.p) + 1);
	}
	if (f->in.len > 1000000)
		f->in.len = 0;	/* a line without end: forget it */
	return got;
}

/* fbk_good - the reply a well-behaved MTA gives to c */
static void
fbk_good(struct fz_fbk *f, enum fz_cmd c)
{
	static const char ehlo[] = "250-fake.backend.example\r\n"
	    "250-PIPELINING\r\n250-SIZE 10000000\r\n250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250 XCLIENT NAME ADDR PORT PROTO HELO\r\n";
	char	line[80];
	int	n;

	switch (c) {
	case FC_GREETING:
		fbk_send(f, "220 fake.backend.example ESMTP\r\n", 32);
		break;
	case FC_EHLO:
		fbk_send(f, ehlo, sizeof(ehlo) - 1);
		break;
	case FC_XCLIENT:
		fbk_send(f, "220 fake.backend.example ESMTP\r\n", 32);
		break;
	case FC_MAIL:
		fbk_send(f, "250 2.1.0 Ok mail\r\n", 19);
		break;
	case FC_RCPT:
		fbk_send(f, "250 2.1.5 Ok rcpt\r\n", 19);
		break;
	case FC_DATA:
		fbk_send(f, "354 End data with <CR><LF>.<CR><LF>\r\n", 37);
		f->in_data = 1;
		break;
	case FC_DOT:
		if (ntok < FZ_TOK_MAX) {
			tok_state[ntok] = 1;
			n = snprintf(line, sizeof(line), "250 2.0.0 Ok: queued "
			    "as Q%d\r\n", ntok++);
		} else
			n = snprintf(line, sizeof(line), "250 2.0.0 Ok: queued "
			    "as QX\r\n");
		fbk_send(f, line, (size_t)n);
		break;
	case FC_QUIT:
		fbk_send(f, "221 2.0.0 Bye\r\n", 15);
		fbk_close(f);
		break;
	case FC_RSET:
	case FC_NOOP:
		fbk_send(f, "250 2.0.0 Ok\r\n", 14);
		break;
	default:
		fbk_send(f, "502 5.5.2 Error: command not recognized\r\n", 42);
		break;
	}
}

/* fbk_answer - answer the oldest command as sel says */
static void
fbk_answer(struct fz_fbk *f, unsigned sel)
{
	enum fz_cmd c = f->npend > 0 ? f->pend[0] : FC_OTHER;
	char	line[1200];
	int	i;

	if (f->fd < 0)
		return;
	if (f->npend > 0) {
		memmove(f->pend, f->pend + 1, (f->npend - 1) * sizeof(f->pend[0]));
		f->npend--;
	}
	if (sel < 128 || (skip_data250 && c == FC_DATA &&
	    ((sel & 15) == 8 || (sel & 15) == 12 || (sel & 15) == 13 ||
	    (sel & 15) == 15))) {
		fbk_good(f, c);
		return;
	}
	switch (sel & 15) {
	case 0:
		fbk_send(f, "421 4.3.0 fake closing\r\n", 24);
		fbk_close(f);
		break;
	case 1:
		fbk_send(f, "451 4.3.0 try later\r\n", 21);
		break;
	case 2:
		fbk_send(f, "550 5.7.1 no\r\n", 14);
		break;
	case 3:
		fbk_send(f, "452 4.5.3 too many\r\n", 20);
		break;
	case 4:
		fbk_send(f, "hello there\r\n", 13);
		break;
	case 5:
		fbk_close(f);
		break;
	case 6:
		fbk_send(f, "25", 2);
		break;
	case 7:
		fbk_send(f, "250-a\r\n251 b\r\n", 14);
		break;
	case 8:
		if (c == FC_DOT)	/* a 2xx to the dot: a verdict */
			fbk_good(f, c);
		else
			fbk_send(f, "250 Ok\r\n", 8);
		break;
	case 9:
		fbk_send(f, "354 go ahead\r\n", 14);
		break;
	case 10:
		memset(line, 'x', sizeof(line));
		memcpy(line, "250 ", 4);
		memcpy(line + sizeof(line) - 2, "\r\n", 2);
		fbk_send(f, line, sizeof(line));
		break;
	case 11:
		for (i = 0; i < 120; i++)
			fbk_send(f, "250-many\r\n", 10);
		if (c == FC_DOT && ntok < FZ_TOK_MAX) {
			tok_state[ntok] = 1;
			i = snprintf(line, sizeof(line), "250 end queued as "
			    "Q%d\r\n", ntok++);
			fbk_send(f, line, (size_t)i);
		} else
			fbk_send(f, "250 end\r\n", 9);
		break;
	case 12:
		fbk_good(f, c);
		fbk_send(f, "250 2.0.0 unsolicited\r\n", 23);
		break;
	case 13:
		if (c == FC_DOT && ntok < FZ_TOK_MAX) {
			tok_state[ntok] = 1;
			i = snprintf(line, sizeof(line), "220 hello again, "
			    "queued as Q%d\r\n", ntok++);
			fbk_send(f, line, (size_t)i);
		} else
			fbk_send(f, "220 hello again\r\n", 17);
		break;
	case 14:
		fbk_send(f, "221 2.0.0 Bye\r\n", 15);
		fbk_close(f);
		break;
	default:
		/* A 250 with a token, whatever was asked. */
		i = snprintf(line, sizeof(line), "250 2.0.0 Ok: queued as "
		    "Q%d\r\n", ntok < FZ_TOK_MAX ? ntok : FZ_TOK_MAX);
		if (ntok < FZ_TOK_MAX)
			tok_state[ntok++] = c == FC_DOT ? 1 : 3;
		if (c == FC_DATA)
			f->in_data = 0;
		fbk_send(f, line, (size_t)i);
		break;
	}
}

/* fbk_newest - the most recent live connection, or NULL */
static struct fz_fbk *
fbk_newest(int with_pending)
{
	int	i;

	for (i = nfbk - 1; i >= 0; i--)
		if (fbk[i].fd >= 0 && (!with_pending || fbk[i].npend > 0))
			return &fbk[i];
	return NULL;
}

/* fbk_accept - take new connections from the daemon; 1 when any */
static int
fbk_accept(void)
{
	int	fd, got = 0;

	while ((fd = accept4(fz_lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct fz_fbk *f;

		if (nfbk == FZ_FBK_MAX) {
			close(fd);
			continue;
		}
		f = &fbk[nfbk++];
		f->fd = fd;
		f->in.len = 0;
		f->proxy_done = 0;
		f->in_data = 0;
		f->npend = 0;
		fbk_push(f, FC_GREETING);
		got = 1;
	}
	return got;
}

/*
 * The client.
 */

/* cli_banner_seen - the first reply line is complete */
static int
cli_banner_seen(void)
{
	return cli.recv.len > 0 &&
	    memchr(cli.recv.p, '\n', cli.recv.len) != NULL;
}

/* cli_read - take the daemon's replies; 1 when anything came */
static int
cli_read(void)
{
	unsigned char tmp[65536];
	ssize_t	r;
	int	got = 0;

	if (cli.fd < 0 || !cli.reading)
		return 0;
	while ((r = read(cli.fd, tmp, sizeof(tmp))) > 0) {
		if (cli.recv.len + (size_t)r <= FZ_KEEP_MAX)
			buf_add(&cli.recv, tmp, (size_t)r);
		else
			cli.unsynced = 1;
		got = 1;
	}
	return got;
}

/* cli_flush - write what is queued; 1 when anything went */
static int
cli_flush(void)
{
	ssize_t	w;
	int	got = 0;

	while (cli.fd >= 0 && !cli.wr_shut && !cli.hold &&
	    cli.queue.len > 0) {
		if (!cli_banner_seen())
			cli.unsynced = 1;	/* may be pregreet, discarded */
		w = write(cli.fd, cli.queue.p, cli.queue.len);
		if (w <= 0)
			break;
		if (cli.sent.len + (size_t)w <= FZ_KEEP_MAX)
			buf_add(&cli.sent, cli.queue.p, (size_t)w);
		else
			cli.unsynced = 1;
		buf_drop(&cli.queue, (size_t)w);
		got = 1;
	}
	return got;
}

/* settle - run the loop and both fake peers until nothing moves */
static void
settle(void)
{
	int	round, i, moved;

	for (round = 0; round < FZ_ROUNDS; round++) {
		moved = cli_read();
		moved |= cli_flush();
		for (i = 0; i < 3; i++)
			event_base_loop(ms->base, EVLOOP_NONBLOCK);
		moved |= fbk_accept();
		for (i = 0; i < nfbk; i++)
			moved |= fbk_read(&fbk[i]);
		if (auto_backend)
			for (i = 0; i < nfbk; i++)
				while (fbk[i].fd >= 0 && fbk[i].npend > 0) {
					fbk_answer(&fbk[i], 0);
					moved = 1;
				}
		moved |= cli_read();
		if (!moved && auto_time)
			moved = sess_fire_timers(SESS_FIRE_DELAY) > 0;
		if (!moved)
			break;
	}
}

/*
 * The reply model: which client reply answers which command.
 */

struct fz_reply {
	int	code;
	size_t	off, len;
};

static struct fz_reply replies[FZ_REPLY_MAX];

/* parse_replies - the complete replies the client read; -1 on garbage */
static int
parse_replies(const struct fz_buf *b)
{
	size_t	pos = 0, start = 0;
	int	n = 0, code = -1;

	while (pos < b->len && n < FZ_REPLY_MAX) {
		const unsigned char *p = b->p + pos;
		unsigned char *nl = memchr(p, '\n', b->len - pos);
		size_t	ll;

		if (nl == NULL)
			break;
		ll = (size_t)(nl - p);
		if (ll < 3 || !isdigit(p[0]) || !isdigit(p[1]) || !isdigit(p[2]))
			return -1;
		if (code < 0) {
			code = atoi((const char *)p);
			start = pos;
		}
		pos += ll + 1;
		if (ll >= 4 && p[3] == '-')
			continue;
		replies[n].code = code;
		replies[n].off = start;
		replies[n].len = pos - start;
		n++;
		code = -1;
	}
	return n;
}

/* dot_check - the reply to a final dot: 2xx only with a backend token */
static void
dot_check(const struct fz_reply *r)
{
	const char *t = (const char *)cli.recv.p + r->off;
	const char *q;
	char	text[512];
	int	k;

	if (r->code < 200 || r->code > 299)
		return;
	snprintf(text, sizeof(text), "%.*s", (int)(r->len < 500 ? r->len :
	    500), t);
	if ((q = strstr(text, "queued as Q")) == NULL || !isdigit((unsigned
	    char)q[11]))
		fz_fail("2xx to the client's end of data, but the backend "
		    "never said 250 to this message's final dot", text,
		    strlen(text));
	k = atoi(q + 11);
	if (k >= ntok || tok_state[k] == 3)
		fz_fail("2xx to the client's end of data relays a backend 250 "
		    "that did not answer a final dot", text, strlen(text));
	if (tok_state[k] == 2)
		fz_fail("one backend 250 for a final dot reached the client "
		    "twice", text, strlen(text));
	tok_state[k] = 2;
}

/* line_ok - what sess_line_ok() accepts */
static int
line_ok(const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return 0;
	return 1;
}

/* model_check - follow the dialogue as the client sees it */
static void
model_check(void)
{
	const unsigned char *s = cli.sent.p;
	size_t	len = cli.sent.len, pos = 0;
	int	nrep, r = 1;

	if ((nrep = parse_replies(&cli.recv)) < 1 || replies[0].code != 220)
		return;
	while (pos < len && r < nrep && !cli.unsynced) {
		const unsigned char *nl = memchr(s + pos, '\n', len - pos);
		char	line[1100], *args, *e;
		size_t	n, next, vlen;
		int	crlf, code = replies[r].code;

		if (nl == NULL)
			return;
		n = (size_t)(nl - (s + pos));
		if (n > (size_t)line_limit)
			return;		/* one or more 500s: unsure */
		next = pos + n + 1;
		crlf = n > 0 && s[pos + n - 1] == '\r';
		scan_markers(&set_command, s + pos, n);
		if (code == 421)
			return;
		memcpy(line, s + pos, n - crlf);
		line[n - crlf] = 0;
		if (!line_ok((unsigned char *)line, n - crlf)) {
			r++;
			pos = next;
			continue;
		}
		vlen = strcspn(line, " ");
		args = line + vlen;
		while (*args == ' ')
			args++;
		for (e = args + strlen(args); e > args && e[-1] == ' '; )
			*--e = 0;
		if (vlen == 4 && strncasecmp(line, "DATA", 4) == 0 && !*args) {
			struct canon c;
			size_t	used;
			int	end;

			r++;
			pos = next;
			if (code != 354)
				continue;
			canon_init(&c, 0, crlf);
			end = canon_feed(&c, (const char *)s + pos, len - pos,
			    NULL, &used);
			scan_markers(&set_content, s + pos, used);
			if (!end)
				return;
			pos += used;
			if (r >= nrep)
				return;
			dot_check(&replies[r++]);
			continue;
		}
		if (vlen == 4 && strncasecmp(line, "BDAT", 4) == 0) {
			long	cnt;
			int	last;

			errno = 0;
			cnt = strtol(args, &e, 10);
			last = strcasecmp(e, " LAST") == 0;
			pos = next;
			/* A size means a chunk follows, refused or not (RFC 3030). */
			if (!isdigit((unsigned char)*args) || errno || cnt < 0) {
				r++;
				continue;
			}
			if ((unsigned long)cnt > len - pos) {
				scan_markers(&set_content, s + pos, len - pos);
				return;
			}
			scan_markers(&set_content, s + pos, (size_t)cnt);
			pos += (size_t)cnt;
			if (last)
				dot_check(&replies[r]);
			r++;
			continue;
		}
		if (vlen == 8 && strncasecmp(line, "STARTTLS", 8) == 0 &&
		    code == 220)
			return;
		if (vlen == 4 && strncasecmp(line, "QUIT", 4) == 0)
			return;
		r++;
		pos = next;
	}
}

/* smuggle_check - no marker the client sent as content became a command */
static void
smuggle_check(void)
{
	int	i;

	for (i = 0; i < set_backend.n; i++)
		if (set_has(&set_content, set_backend.a[i]) &&
		    !set_has(&set_command, set_backend.a[i]))
			fz_fail("the backend received a command the client sent "
			    "inside message content", set_backend.a[i],
			    strlen(set_backend.a[i]));
}

/*
 * One input.
 */

/* cli_open - connect a new client to the session */
static void
cli_open(int cls, int v6, const unsigned char *syn, int synlen)
{
	struct sockaddr_storage ss;
	socklen_t salen;
	int	sv[2];

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(40000 + nclients);
		inet_pton(AF_INET6, "2001:db8::10", &a->sin6_addr);
		a->sin6_addr.s6_addr[15] = (uint8_t)(0x10 + cls);
		salen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(40000 + nclients);
		a->sin_addr.s_addr = htonl(0xc0000200 + 10 + cls);
		salen = sizeof(*a);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	cli.fd = sv[0];
	cli.queue.len = cli.sent.len = cli.recv.len = 0;
	cli.reading = 1;
	cli.hold = 0;
	cli.wr_shut = 0;
	cli.unsynced = 0;
	nclients++;
	sess_accept(sv[1], (struct sockaddr *)&ss, salen, syn, synlen);
}

/* cli_close - the client goes away; its dialogue is checked first */
static void
cli_close(void)
{
	if (cli.fd < 0)
		return;
	cli_read();
	model_check();
	close(cli.fd);
	cli.fd = -1;
}

/* canned - a command line a client would send */
static void
canned(unsigned idx)
{
	static const char *const lines[] = {
		"EHLO client.example\r\n", "HELO client.example\r\n",
		"MAIL FROM:<a@foo.example>\r\n", "RCPT TO:<b@bar.example>\r\n",
		"DATA\r\n", "BDAT 3\r\n", "BDAT 12 LAST\r\n", "RSET\r\n",
		"NOOP\r\n", "QUIT\r\n", "STARTTLS\r\n", "HELP\r\n",
		"VRFY b\r\n", ".\r\n", "Subject: x\r\n\r\nbody\r\n",
		"MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n",
		"RCPT TO:<c@bar.example>\r\n", "BDAT 0 LAST\r\n",
		"XCLIENT ADDR=1.2.3.4\r\n", "EHLO\r\n", "MAIL FROM:<a@foo",
		"\r\n", "\n", "DATA\n", "\r\n.\r\n", "AUTH PLAIN\r\n",
		"MAIL FROM:<a@foo.example> SIZE=99999999\r\n",
		"BDAT 9223372036854775807\r\n", "BDAT 70000000\r\n",
	};
	char	buf[64];
	int	n;

	idx %= sizeof(lines) / sizeof(lines[0]) + 2;
	if (idx < sizeof(lines) / sizeof(lines[0])) {
		buf_add(&cli.queue, lines[idx], strlen(lines[idx]));
		return;
	}
	/* A real command carrying a marker: legitimately a command. */
	n = snprintf(buf, sizeof(buf), idx & 1 ? "RCPT TO:<c%d@smuggle.example>"
	    "\r\n" : "MAIL FROM:<c%d@smuggle.example>\r\n", smuggle_seq++);
	buf_add(&cli.queue, buf, (size_t)n);
}

/* filler - kind bits 0-1: 'x' run, 78-byte lines, dot lines, LF lines */
static void
filler(unsigned kind, unsigned count)
{
	static const char *const pat[] = {
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxx",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxx\r\n",
		"..xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxx\r\n",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxx\n",
	};
	long	want = (long)(count + 1) * 1024 * (kind & 0x80 ? 64 : 1);
	const char *p = pat[kind & 3];
	size_t	pl = strlen(p);

	if (want > (skip_hiwat ? 192 * 1024L : FZ_FILL_MAX) - fill_used)
		want = (skip_hiwat ? 192 * 1024L : FZ_FILL_MAX) - fill_used;
	if (want <= 0)
		return;
	fill_used += want;
	while (want > 0) {
		size_t	n = (size_t)want < pl ? (size_t)want : pl;

		buf_add(&cli.queue, p, n);
		want -= (long)n;
	}
}

/* reset - the end of an input: free every session, check, start over */
static void
reset(void)
{
	int	i, left;

	sess_shutdown_all("fuzz input done");
	bk_pool_flush();
	for (i = 0; i < 4; i++)
		event_base_loop(ms->base, EVLOOP_NONBLOCK);
	if (cli.fd >= 0)
		close(cli.fd);
	cli.fd = -1;
	for (i = 0; i < nfbk; i++)
		fbk_close(&fbk[i]);
	nfbk = 0;
	for (i = 0; i < 4; i++)
		event_base_loop(ms->base, EVLOOP_NONBLOCK);
	if (ms->nsess != 0 || ms->nbackend != 0) {
		fprintf(stderr, "nsess=%ld nbackend=%ld\n", ms->nsess,
		    ms->nbackend);
		fz_fail("sessions or backend connections left after "
		    "sess_shutdown_all()", NULL, 0);
	}
	if (ms->st.spool_mem != 0) {
		fprintf(stderr, "spool memory %zu\n", ms->st.spool_mem);
		fz_fail("spool memory still counted after every session ended",
		    NULL, 0);
	}
	sess_deinit();
	spool_deinit();		/* its trim timer may be armed: freed here */
	left = event_base_get_num_events(ms->base, EVENT_BASE_COUNT_ADDED |
	    EVENT_BASE_COUNT_ACTIVE);
	if (left != 0) {
		fprintf(stderr, "events=%d\n", left);
		fz_fail("events left in the loop after every session ended",
		    NULL, 0);
	}
	rep_close();
}

/* LLVMFuzzerTestOneInput - one dialogue */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct bk_caps caps;
	unsigned char syn[256];
	char	err[256];
	int	synlen = 0, cls, v6;
	unsigned h0, h1, h2;

#define NEXT()	(p < end ? *p++ : 0)
	if (size < 3)
		return 0;
	h0 = NEXT();
	h1 = NEXT();
	h2 = NEXT();
	ms->cf = conf_variant((int)h2);
	identity = h2 & 3;
	line_limit = (int)ms->cf->smtp_line_limit;
	memset(&caps, 0, sizeof(caps));
	caps.known = 1;
	caps.chunking = h1 & 1;
	caps.pipelining = (h1 >> 1) & 1;
	if (h1 & 4) {
		caps.has_size = 1;
		caps.size = 5000;
	}
	caps.eightbit = (h1 >> 3) & 1;
	caps.smtputf8 = (h1 >> 4) & 1;
	caps.enhanced = (h1 >> 5) & 1;
	caps.xclient = BK_XA_ANY | BK_XA_ADDR | BK_XA_NAME | BK_XA_HELO;
	bk_set_caps(&caps);
	ms->tls = h0 & 0x80 ? fz_tls : NULL;
	ms->sigdb = fz_sigdb;
	if (spool_init(ms->base, fz_spool, "", err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	if (rep_open(ms->base, ms->cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_session: rep_open: %s\n", err);
		abort();
	}
	cls = h0 & 7;
	v6 = (h0 >> 3) & 1;
	auto_backend = (h0 >> 4) & 1;
	auto_time = (h0 >> 5) & 1;
	if (h0 & 0x40) {
		synlen = NEXT();
		if (synlen > end - p)
			synlen = (int)(end - p);
		memcpy(syn, p, (size_t)synlen);
		p += synlen;
	}
	nfbk = 0;
	ntok = 0;
	fill_used = 0;
	nclients = 0;
	smuggle_seq = 0;
	set_content.n = set_command.n = set_backend.n = 0;
	cli_open(cls, v6, syn, synlen);
	settle();
	while (p < end) {
		unsigned op = NEXT() & 15, a, i;
		struct fz_fbk *f;

		switch (op) {
		case 0:
		case 13:
			a = NEXT() + 1u;
			if (a > (unsigned)(end - p))
				a = (unsigned)(end - p);
			buf_add(&cli.queue, p, a);
			p += a;
			break;
		case 1:
		case 12:
			canned(NEXT());
			break;
		case 2:
			a = NEXT();
			filler(a, NEXT());
			break;
		case 3:
			a = NEXT();
			if ((f = fbk_newest(1)) != NULL ||
			    (f = fbk_newest(0)) != NULL)
				fbk_answer(f, a);
			break;
		case 4:
			if ((f = fbk_newest(0)) != NULL)
				fbk_close(f);
			break;
		case 5:
			a = NEXT();
			for (i = 0; i <= (a & 63); i++) {
				if (sess_fire_timers(SESS_FIRE_DELAY |
				    (a & 64 ? SESS_FIRE_BACKEND : 0) |
				    (a & 128 ? SESS_FIRE_DEADLINE : 0)) == 0)
					break;
				settle();
			}
			break;
		case 6:
			if (cli.fd >= 0 && !cli.wr_shut) {
				cli.hold = 0;
				cli_flush();
				shutdown(cli.fd, SHUT_WR);
				cli.wr_shut = 1;
			}
			break;
		case 7:
			if (nclients < 4) {
				cli_close();
				settle();
				cli_open(cls, v6, syn, synlen);
			}
			break;
		case 8:
			cli.reading = !cli.reading;
			break;
		case 9:
			a = NEXT() + 1u;
			if (a > (unsigned)(end - p))
				a = (unsigned)(end - p);
			if ((f = fbk_newest(0)) != NULL)
				fbk_send(f, (const char *)p, a);
			p += a;
			break;
		case 10:
			auto_backend = !auto_backend;
			break;
		case 11:
			auto_time = !auto_time;
			break;
		case 14:
			cli.hold = !cli.hold;
			break;
		case 15: {
			char	buf[64];
			int	n;

			a = NEXT();
			n = snprintf(buf, sizeof(buf), a & 1 ?
			    "RCPT TO:<s%d@smuggle.example>\r\n" :
			    "MAIL FROM:<s%d@smuggle.example>\r\n",
			    smuggle_seq++);
			buf_add(&cli.queue, buf, (size_t)n);
			break;
		}
		default:
			break;
		}
		settle();
	}
#undef NEXT
	cli.reading = 1;
	cli.hold = 0;
	settle();
	cli_close();
	smuggle_check();
	reset();
	return 0;
}
