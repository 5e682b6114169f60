/*
 * test_smtpc.c - the swarm's SMTP client engine (src/swarm/smtpc.c) over a
 * fake transport
 *
 * The fake transport records what the client sends and whether it closed
 * or aborted; each case feeds the server's bytes and asserts the client's
 * bytes, the per-message outcome and how the session ended.  Timers run on
 * a real event_base with a short patience.  Case tables: the normal
 * dialogue, a multi-line EHLO split byte by byte, pipelining, 4xx/5xx at
 * each stage, patience expiry at each stage, the server closing or
 * resetting early, garbage replies, pregreet, message composition and
 * dot-stuffing (checked with the counting backend's own scanner), and
 * spec validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "swarm/countsink.h"
#include "swarm/smtpc.h"

struct fake {				/* the fake transport */
	char	out[65536];		/* what the client sent, not yet read */
	size_t	outlen;
	int	closed, aborted;	/* close() / abort() calls */
	int	fail_send;		/* 1 = send() returns -1 */
	int	done;			/* done() calls */
	struct smtpc_result res;	/* copied in done() */
	struct smtpc_msg_result msg[8];
};

static struct event_base *base;
static struct fake F;

/* fk_send / fk_close / fk_abort - the transport's operations */
static int
fk_send(void *t, const void *d, size_t len)
{
	struct fake *f = t;

	if (f->fail_send)
		return -1;
	assert_true(!f->closed && !f->aborted);
	assert_true(f->outlen + len < sizeof(f->out));
	memcpy(f->out + f->outlen, d, len);
	f->outlen += len;
	f->out[f->outlen] = '\0';
	return 0;
}

static void fk_close(void *t) { ((struct fake *)t)->closed++; }
static void fk_abort(void *t) { ((struct fake *)t)->aborted++; }

static const struct smtpc_transport TR = { fk_send, fk_close, fk_abort, &F };

/* fk_done - keep a copy of the result */
static void
fk_done(struct smtpc *s, const struct smtpc_result *r, void *arg)
{
	struct fake *f = arg;

	(void)s;
	f->done++;
	f->res = *r;
	assert_true(r->nmsg <= 8);
	memcpy(f->msg, r->msg, r->nmsg * sizeof(*r->msg));
}

static const char *const RCPT1[] = { "bob@example.org" };
static const char *const RCPT2[] = { "bob@example.org", "eve@example.org" };
static struct smtpc_msg MSG1[] = { { SMTPC_SPAM, "zombie", 600 } };
static struct smtpc_msg MSG2[] = { { SMTPC_SPAM, "zombie", 300 },
				   { SMTPC_HAM, "legit.mta", 2000 } };

/* spec1 - one message, one recipient, fixed HELO, no pipelining */
static struct smtpc_spec
spec1(void)
{
	struct smtpc_spec sp;

	memset(&sp, 0, sizeof(sp));
	sp.helo = "client.test";
	sp.mail_from = "alice@example.net";
	sp.rcpt = RCPT1;
	sp.nrcpt = 1;
	sp.msg = MSG1;
	sp.nmsg = 1;
	sp.patience_ms = SMTPC_PATIENCE_RFC;
	sp.giveup = SMTPC_GIVEUP_ABORT;
	sp.seed = 42;
	return sp;
}

/* start - a new session on the fake, connected unless told otherwise */
static struct smtpc *
start(const struct smtpc_spec *sp, int connect)
{
	char err[128];
	struct smtpc *s;

	memset(&F, 0, sizeof(F));
	s = smtpc_new(base, sp, &TR, fk_done, &F, err, sizeof(err));
	assert_non_null(s);
	if (connect)
		smtpc_on_connected(s);
	return s;
}

/* clear_out - forget what the client sent so far */
static void
clear_out(void)
{
	F.outlen = 0;
	F.out[0] = '\0';
}

/* srv - feed server bytes */
static void
srv(struct smtpc *s, const char *text)
{
	smtpc_on_data(s, (const unsigned char *)text, strlen(text));
}

/* cli - assert the client sent exactly this since the last check */
static void
cli(const char *want)
{
	if (strcmp(F.out, want) != 0)
		fail_msg("client sent [%s], want [%s]", F.out, want);
	clear_out();
}

/* check_body - the client sent one dot-stuffed message with this truth */
static void
check_body(enum sink_truth truth, const char *pop)
{
	struct sink_scan sc;
	const char *p = F.out, *e;
	size_t n;

	n = strlen(F.out);
	assert_true(n > 5);
	assert_string_equal(F.out + n - 5, "\r\n.\r\n");
	sink_scan_init(&sc);
	while ((e = strstr(p, "\r\n")) != NULL && p < F.out + n - 3) {
		const char *l = p;
		size_t len = (size_t)(e - p);

		if (*l == '.') {		/* stuffed: the next must be '.' */
			assert_true(len >= 2 && l[1] == '.');
			l++;
			len--;
		}
		sink_scan_line(&sc, l, len);
		p = e + 2;
	}
	assert_int_equal(sc.truth, truth);
	assert_int_equal(sc.markers, 1);
	assert_string_equal(sc.pop, pop);
	clear_out();
}

/* settle - run the loop until done() (timers included), at most 5 s */
static void
settle(void)
{
	for (int i = 0; i < 100000 && !F.done; i++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(F.done, 1);
}

/* greet - banner and EHLO; leaves the client's MAIL unread */
static void
greet(struct smtpc *s, const char *ehlo_reply)
{
	srv(s, "220 mx.test ESMTP\r\n");
	cli("EHLO client.test\r\n");
	srv(s, ehlo_reply);
}

static void
test_normal(void **state)
{
	struct smtpc_spec sp = spec1();
	struct smtpc *s = start(&sp, 1);

	(void)state;
	assert_int_equal(smtpc_state(s), SMTPC_S_GREETING);
	cli("");
	greet(s, "250-mx.test\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n");
	cli("MAIL FROM:<alice@example.net>\r\n");
	srv(s, "250 2.1.0 Ok\r\n");
	cli("RCPT TO:<bob@example.org>\r\n");
	srv(s, "250 2.1.5 Ok\r\n");
	cli("DATA\r\n");
	srv(s, "354 go ahead\r\n");
	check_body(SINK_SPAM, "zombie");
	assert_int_equal(smtpc_state(s), SMTPC_S_DOT);
	srv(s, "250 2.0.0 Ok: queued as X\r\n");
	cli("QUIT\r\n");
	srv(s, "221 bye\r\n");
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.aborted, 0);
	settle();
	assert_int_equal(F.res.end, SMTPC_END_QUIT);
	assert_int_equal(F.msg[0].outcome, SMTPC_DELIVERED);
	assert_int_equal(F.msg[0].code, 250);
	assert_int_equal(F.res.n[SMTPC_DELIVERED], 1);
	assert_true(F.res.esmtp && !F.res.pipelined);
	assert_true(F.res.banner_s >= 0 && F.res.banner_s < 1);
	assert_true(F.res.added_delay_s < 0.01);
	assert_int_equal(F.res.last_code, 221);
	assert_string_equal(F.res.last_reply, "221 bye");
	assert_true(F.res.giveup_s < 0 && F.msg[0].giveup_s < 0);
	/* late bytes after the end are ignored */
	srv(s, "250 what\r\n");
	smtpc_on_closed(s, 0);
	cli("");
	smtpc_free(s);
}

/* feed_bytewise - one byte per call, as a stuttering server sends */
static void
feed_bytewise(struct smtpc *s, const char *text)
{
	for (; *text; text++)
		smtpc_on_data(s, (const unsigned char *)text, 1);
}

static void
test_multiline_pipelining(void **state)
{
	struct smtpc_spec sp = spec1();
	struct smtpc *s;

	(void)state;
	sp.pipelining = 1;
	sp.rcpt = RCPT2;
	sp.nrcpt = 2;
	s = start(&sp, 1);
	srv(s, "220 mx.test ESMTP\r\n");
	cli("EHLO client.test\r\n");
	feed_bytewise(s, "250-mx.test hello\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250 ENHANCEDSTATUSCODES\r\n");
	cli("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
	    "RCPT TO:<eve@example.org>\r\nDATA\r\n");
	assert_int_equal(smtpc_state(s), SMTPC_S_MAIL);
	srv(s, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
	check_body(SINK_SPAM, "zombie");
	srv(s, "250 queued\r\n");
	cli("QUIT\r\n");
	srv(s, "221 bye\r\n");
	settle();
	assert_true(F.res.pipelined);
	assert_int_equal(F.msg[0].outcome, SMTPC_DELIVERED);
	assert_int_equal(F.msg[0].rcpt_ok, 1);
	assert_int_equal(F.msg[0].rcpt_perm, 1);
	smtpc_free(s);

	/* offered but not used: one command per write */
	sp.pipelining = 0;
	s = start(&sp, 1);
	greet(s, "250-mx.test\r\n250 PIPELINING\r\n");
	cli("MAIL FROM:<alice@example.net>\r\n");
	smtpc_free(s);

	/* pipelined MAIL refused: RCPTs and DATA drained, next message */
	sp.pipelining = 1;
	sp.msg = MSG2;
	sp.nmsg = 2;
	s = start(&sp, 1);
	greet(s, "250-mx.test\r\n250 PIPELINING\r\n");
	clear_out();
	srv(s, "451 4.3.0 try later\r\n503 no mail\r\n503 no mail\r\n"
	    "503 no valid recipients\r\n");
	cli("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
	    "RCPT TO:<eve@example.org>\r\nDATA\r\n");
	/* second message: all recipients refused, DATA 554, RSET */
	srv(s, "250 ok\r\n550 no\r\n550 no\r\n554 no valid recipients\r\n");
	cli("RSET\r\n");
	srv(s, "250 ok\r\n");
	cli("QUIT\r\n");
	srv(s, "221 bye\r\n");
	settle();
	assert_int_equal(F.msg[0].outcome, SMTPC_DEFERRED);
	assert_int_equal(F.msg[0].stage, SMTPC_S_MAIL);
	assert_int_equal(F.msg[1].outcome, SMTPC_REJECTED);
	assert_int_equal(F.msg[1].stage, SMTPC_S_RCPT);
	assert_int_equal(F.msg[1].code, 550);
	assert_int_equal(F.res.defer_code, 451);
	smtpc_free(s);

	/* a bad server answers 354 with no valid recipient: a lone dot */
	sp.nmsg = 1;
	sp.msg = MSG1;
	s = start(&sp, 1);
	greet(s, "250-mx.test\r\n250 PIPELINING\r\n");
	clear_out();
	srv(s, "250 ok\r\n450 busy\r\n550 no\r\n354 go\r\n");
	cli(".\r\n");
	srv(s, "250 empty\r\n");
	cli("QUIT\r\n");
	smtpc_on_closed(s, 0);
	settle();
	assert_int_equal(F.msg[0].outcome, SMTPC_DEFERRED);
	assert_int_equal(F.msg[0].code, 550);
	assert_int_equal(F.res.end, SMTPC_END_QUIT);
	smtpc_free(s);
}

/* A failure case: the script up to the failing reply, then its effect. */
struct fail_case {
	const char	*name;
	const char	*script[8];	/* server chunks up to the failure */
	const char	*after;		/* client bytes after the last chunk */
	const char	*more;		/* server reply to that ("" = none) */
	enum smtpc_outcome outcome;
	enum smtpc_state stage;
	int		code;
	enum smtpc_end	end;
	int		closed;		/* close() expected */
};

#define BANNER	"220 mx ESMTP\r\n"
#define EHLO_OK	"250 mx\r\n"

static const struct fail_case fail_cases[] = {
	{ "greeting 421", { "421 4.3.2 busy\r\n" }, "", "",
	  SMTPC_DEFERRED, SMTPC_S_GREETING, 421, SMTPC_END_SERVICE, 1 },
	{ "greeting 450", { "450 later\r\n" }, "QUIT\r\n", "221 bye\r\n",
	  SMTPC_DEFERRED, SMTPC_S_GREETING, 450, SMTPC_END_SERVICE, 1 },
	{ "greeting 554", { "554 5.7.1 go away\r\n" }, "QUIT\r\n",
	  "221 bye\r\n", SMTPC_REJECTED, SMTPC_S_GREETING, 554,
	  SMTPC_END_SERVICE, 1 },
	{ "ehlo 451", { BANNER, "451 wait\r\n" }, "QUIT\r\n", "221 bye\r\n",
	  SMTPC_DEFERRED, SMTPC_S_EHLO, 451, SMTPC_END_SERVICE, 1 },
	{ "helo 550", { BANNER, "500 no ehlo\r\n", "550 no helo\r\n" },
	  "QUIT\r\n", "221 bye\r\n", SMTPC_REJECTED, SMTPC_S_HELO, 550,
	  SMTPC_END_SERVICE, 1 },
	{ "mail 451", { BANNER, EHLO_OK, "451 4.7.1 greylisted\r\n" },
	  "QUIT\r\n", "221 bye\r\n", SMTPC_DEFERRED, SMTPC_S_MAIL, 451,
	  SMTPC_END_QUIT, 1 },
	{ "mail 553", { BANNER, EHLO_OK, "553 5.7.1 sender refused\r\n" },
	  "QUIT\r\n", "221 bye\r\n", SMTPC_REJECTED, SMTPC_S_MAIL, 553,
	  SMTPC_END_QUIT, 1 },
	{ "mail 421", { BANNER, EHLO_OK, "421 4.7.0 closing\r\n" }, "", "",
	  SMTPC_DEFERRED, SMTPC_S_MAIL, 421, SMTPC_END_SERVICE, 1 },
	{ "rcpt 450", { BANNER, EHLO_OK, "250 ok\r\n", "450 4.2.0 later\r\n" },
	  "RSET\r\n", "250 ok\r\n", SMTPC_DEFERRED, SMTPC_S_RCPT, 450,
	  SMTPC_END_QUIT, 1 },
	{ "rcpt 550", { BANNER, EHLO_OK, "250 ok\r\n", "550 5.1.1 unknown\r\n" },
	  "RSET\r\n", "250 ok\r\n", SMTPC_REJECTED, SMTPC_S_RCPT, 550,
	  SMTPC_END_QUIT, 1 },
	{ "data 451", { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "451 4.3.0 later\r\n" }, "RSET\r\n", "250 ok\r\n", SMTPC_DEFERRED,
	  SMTPC_S_DATA, 451, SMTPC_END_QUIT, 1 },
	{ "data 554", { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "554 5.5.1 no\r\n" }, "RSET\r\n", "250 ok\r\n", SMTPC_REJECTED,
	  SMTPC_S_DATA, 554, SMTPC_END_QUIT, 1 },
	{ "dot 452", { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "354 go\r\n", "452 4.3.1 full\r\n" }, "QUIT\r\n", "221 bye\r\n",
	  SMTPC_DEFERRED, SMTPC_S_DOT, 452, SMTPC_END_QUIT, 1 },
	{ "dot 550", { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "354 go\r\n", "550 5.7.1 Message rejected as spam\r\n" }, "QUIT\r\n",
	  "221 bye\r\n", SMTPC_REJECTED, SMTPC_S_DOT, 550, SMTPC_END_QUIT, 1 },
	{ "dot 421", { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "354 go\r\n", "421 4.4.2 timeout\r\n" }, "", "",
	  SMTPC_DEFERRED, SMTPC_S_DOT, 421, SMTPC_END_SERVICE, 1 },
};

static void
test_failures(void **state)
{
	struct smtpc_spec sp = spec1();
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++) {
		const struct fail_case *c = &fail_cases[i];
		struct smtpc *s = start(&sp, 1);

		for (j = 0; j < 8 && c->script[j]; j++) {
			clear_out();
			srv(s, c->script[j]);
		}
		if (strcmp(F.out, c->after) != 0)
			fail_msg("%s: client sent [%s], want [%s]", c->name,
			    F.out, c->after);
		F.outlen = 0;
		F.out[0] = '\0';
		if (*c->more) {
			srv(s, c->more);
			if (strcmp(c->after, "RSET\r\n") == 0) {
				cli("QUIT\r\n");
				srv(s, "221 bye\r\n");
			}
		}
		settle();
		if (F.msg[0].outcome != c->outcome || F.msg[0].stage != c->stage ||
		    F.msg[0].code != c->code || F.res.end != c->end ||
		    F.closed != c->closed || F.aborted != 0)
			fail_msg("%s: got %s at %s (%d), end %s, closed %d "
			    "aborted %d", c->name,
			    smtpc_outcome_name(F.msg[0].outcome),
			    smtpc_state_name(F.msg[0].stage), F.msg[0].code,
			    smtpc_end_name(F.res.end), F.closed, F.aborted);
		if (c->code / 100 == 4)
			assert_int_equal(F.res.defer_code, c->code);
		smtpc_free(s);
	}
}

static void
test_ehlo_fallback_and_multi(void **state)
{
	struct smtpc_spec sp = spec1();
	struct smtpc *s;

	(void)state;
	sp.msg = MSG2;
	sp.nmsg = 2;
	s = start(&sp, 1);
	greet(s, "502 5.5.2 what\r\n");
	cli("HELO client.test\r\n");
	srv(s, "250 hi\r\n");
	cli("MAIL FROM:<alice@example.net>\r\n");
	srv(s, "250 ok\r\n");
	cli("RCPT TO:<bob@example.org>\r\n");
	srv(s, "250 ok\r\n");
	cli("DATA\r\n");
	srv(s, "354 go\r\n");
	check_body(SINK_SPAM, "zombie");
	srv(s, "550 5.7.1 Message rejected as spam\r\n");
	cli("MAIL FROM:<alice@example.net>\r\n");
	srv(s, "250 ok\r\n");
	cli("RCPT TO:<bob@example.org>\r\n");
	srv(s, "250 ok\r\n");
	cli("DATA\r\n");
	srv(s, "354 go\r\n");
	check_body(SINK_HAM, "legit.mta");
	srv(s, "250 ok\r\n");
	cli("QUIT\r\n");
	srv(s, "221 bye\r\n");
	settle();
	assert_false(F.res.esmtp);
	assert_int_equal(F.msg[0].outcome, SMTPC_REJECTED);
	assert_int_equal(F.msg[1].outcome, SMTPC_DELIVERED);
	assert_int_equal(F.res.n[SMTPC_REJECTED], 1);
	assert_int_equal(F.res.n[SMTPC_DELIVERED], 1);
	smtpc_free(s);
}

/* Patience: the script reaches the stage, then nothing comes. */
struct patience_case {
	const char	*name;
	int		connect;
	const char	*script[6];
	enum smtpc_state stage;
	enum smtpc_outcome outcome;
	enum smtpc_end	end;
};

static const struct patience_case patience_cases[] = {
	{ "connect", 0, { NULL }, SMTPC_S_CONNECT, SMTPC_ABANDONED,
	  SMTPC_END_PATIENCE },
	{ "greeting", 1, { NULL }, SMTPC_S_GREETING, SMTPC_ABANDONED,
	  SMTPC_END_PATIENCE },
	{ "greeting, stuttered", 1, { "220-mx\r\n", "220" },
	  SMTPC_S_GREETING, SMTPC_ABANDONED, SMTPC_END_PATIENCE },
	{ "ehlo", 1, { BANNER }, SMTPC_S_EHLO, SMTPC_ABANDONED,
	  SMTPC_END_PATIENCE },
	{ "mail", 1, { BANNER, EHLO_OK }, SMTPC_S_MAIL, SMTPC_ABANDONED,
	  SMTPC_END_PATIENCE },
	{ "rcpt", 1, { BANNER, EHLO_OK, "250 ok\r\n" }, SMTPC_S_RCPT,
	  SMTPC_ABANDONED, SMTPC_END_PATIENCE },
	{ "data", 1, { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n" },
	  SMTPC_S_DATA, SMTPC_ABANDONED, SMTPC_END_PATIENCE },
	{ "dot", 1, { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "354 go\r\n" }, SMTPC_S_DOT, SMTPC_ABANDONED, SMTPC_END_PATIENCE },
	{ "quit", 1, { BANNER, EHLO_OK, "250 ok\r\n", "250 ok\r\n",
	  "354 go\r\n", "250 ok\r\n" }, SMTPC_S_DOT, SMTPC_DELIVERED,
	  SMTPC_END_QUIT },
};

static void
test_patience(void **state)
{
	struct smtpc_spec sp = spec1();
	size_t i, j;

	(void)state;
	sp.patience_ms = 100;
	for (i = 0; i < sizeof(patience_cases) / sizeof(patience_cases[0]);
	    i++) {
		const struct patience_case *c = &patience_cases[i];
		struct smtpc *s;

		sp.giveup = i % 2 ? SMTPC_GIVEUP_CLOSE : SMTPC_GIVEUP_ABORT;
		s = start(&sp, c->connect);
		for (j = 0; j < 6 && c->script[j]; j++)
			srv(s, c->script[j]);
		settle();
		if (F.msg[0].outcome != c->outcome ||
		    F.msg[0].stage != c->stage || F.res.end != c->end)
			fail_msg("%s: got %s at %s, end %s", c->name,
			    smtpc_outcome_name(F.msg[0].outcome),
			    smtpc_state_name(F.msg[0].stage),
			    smtpc_end_name(F.res.end));
		assert_true(F.res.waited_s >= 0.09 && F.res.waited_s < 1.0);
		assert_true(F.res.giveup_s >= F.res.waited_s);
		if (c->outcome == SMTPC_ABANDONED)
			assert_true(F.msg[0].giveup_s >= 0.09 &&
			    F.msg[0].giveup_s < 1.0);
		if (sp.giveup == SMTPC_GIVEUP_CLOSE)
			assert_true(F.closed == 1 && F.aborted == 0);
		else
			assert_true(F.closed == 0 && F.aborted == 1);
		/* the wait beyond the baseline is added delay */
		assert_true(F.res.added_delay_s < 1.0);
		smtpc_free(s);
	}
}

/* the banner, 150 ms late */
static void
late_banner(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	srv(arg, "220 slow\r\n");
}

static void
test_added_delay(void **state)
{
	struct smtpc_spec sp = spec1();
	struct timeval tv = { 0, 150000 };
	struct smtpc *s;
	struct event *ev;

	(void)state;
	sp.baseline_ms = 50;
	sp.patience_ms = 2000;
	s = start(&sp, 1);
	ev = evtimer_new(base, late_banner, s);
	evtimer_add(ev, &tv);
	while (smtpc_state(s) == SMTPC_S_GREETING)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	cli("EHLO client.test\r\n");
	srv(s, EHLO_OK);
	srv(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	srv(s, "250 ok\r\n");
	smtpc_on_closed(s, 1);		/* the QUIT reply never comes */
	settle();
	assert_int_equal(F.msg[0].outcome, SMTPC_DELIVERED);
	assert_int_equal(F.res.end, SMTPC_END_QUIT);
	assert_true(F.res.banner_s >= 0.14 && F.res.banner_s < 0.5);
	assert_true(F.res.added_delay_s >= 0.09 && F.res.added_delay_s < 0.45);
	assert_true(F.msg[0].added_delay_s == F.res.added_delay_s);
	smtpc_free(s);
}

static void
test_peer_closes(void **state)
{
	struct smtpc_spec sp = spec1();
	struct smtpc *s;
	size_t idx[4];

	(void)state;
	/* FIN right after EHLO */
	s = start(&sp, 1);
	greet(s, "");
	smtpc_on_data(s, NULL, 0);
	settle();
	assert_int_equal(F.msg[0].outcome, SMTPC_ABANDONED);
	assert_int_equal(F.msg[0].stage, SMTPC_S_EHLO);
	assert_int_equal(F.res.end, SMTPC_END_PEER_CLOSED);
	assert_true(F.closed == 1 && F.aborted == 0);
	assert_true(F.msg[0].giveup_s >= 0 && F.res.giveup_s < 0);
	smtpc_free(s);

	/* RST during RCPT: the transport is gone, nothing is called */
	sp.msg = MSG2;
	sp.nmsg = 2;
	s = start(&sp, 1);
	greet(s, EHLO_OK);
	srv(s, "250 ok\r\n");
	smtpc_on_closed(s, 1);
	settle();
	assert_int_equal(F.msg[0].outcome, SMTPC_ABANDONED);
	assert_int_equal(F.msg[0].stage, SMTPC_S_RCPT);
	assert_int_equal(F.msg[1].outcome, SMTPC_UNSENT);
	assert_int_equal(F.res.n[SMTPC_UNSENT], 1);
	assert_int_equal(F.res.end, SMTPC_END_RESET);
	assert_true(F.closed == 0 && F.aborted == 0);
	assert_int_equal(smtpc_retry_list(&F.res, idx, 4), 2);
	assert_true(idx[0] == 0 && idx[1] == 1);
	smtpc_free(s);

	/* refused connection: never connected */
	s = start(&sp, 0);
	smtpc_on_closed(s, 1);
	settle();
	assert_false(F.res.connected);
	assert_int_equal(F.msg[0].outcome, SMTPC_ABANDONED);
	assert_int_equal(F.msg[0].stage, SMTPC_S_CONNECT);
	assert_true(F.res.banner_s < 0);
	smtpc_free(s);

	/* the transport's send fails */
	s = start(&sp, 1);
	F.fail_send = 1;
	srv(s, BANNER);
	settle();
	assert_int_equal(F.res.end, SMTPC_END_SEND);
	assert_int_equal(F.msg[0].outcome, SMTPC_ABANDONED);
	assert_int_equal(F.aborted, 1);
	smtpc_free(s);
}

static const char *const garbage[] = {
	"hello\r\n",			/* no code */
	"25 ok\r\n",			/* two digits */
	"250ok\r\n",			/* no separator */
	"250 ok\n",			/* bare LF */
	"650 ok\r\n",			/* first digit out of range */
	"260 ok\r\n",			/* second digit out of range */
	"250 a\rb\r\n",			/* bare CR in the text */
	"220-mx\r\n221 mx\r\n",		/* codes differ between lines */
	"250 ok\r\n",			/* 2xx but not 220 to the greeting */
	"354 go\r\n",			/* 3xx to the greeting */
	"220 mx\r\n2500 ok\r\n",	/* four digits */
};

static void
test_garbage(void **state)
{
	struct smtpc_spec sp = spec1();
	char longline[700];
	size_t i;

	(void)state;
	for (i = 0; i <= sizeof(garbage) / sizeof(garbage[0]); i++) {
		struct smtpc *s = start(&sp, 1);

		if (i < sizeof(garbage) / sizeof(garbage[0]))
			srv(s, garbage[i]);
		else {			/* a line longer than 512 bytes */
			memset(longline, 'x', sizeof(longline) - 1);
			memcpy(longline, "220 ", 4);
			longline[sizeof(longline) - 1] = '\0';
			srv(s, longline);
		}
		settle();
		if (F.res.end != SMTPC_END_PROTOCOL ||
		    F.msg[0].outcome != SMTPC_ABANDONED || F.closed != 1)
			fail_msg("garbage %zu: end %s, %s", i,
			    smtpc_end_name(F.res.end),
			    smtpc_outcome_name(F.msg[0].outcome));
		smtpc_free(s);
	}

	/* NUL inside a reply, and unexpected classes later on */
	{
		static const char nul[] = "220 a\0b\r\n";
		struct smtpc *s = start(&sp, 1);

		smtpc_on_data(s, (const unsigned char *)nul, sizeof(nul) - 1);
		settle();
		assert_int_equal(F.res.end, SMTPC_END_PROTOCOL);
		smtpc_free(s);

		s = start(&sp, 1);
		greet(s, EHLO_OK);
		srv(s, "354 go\r\n");		/* 3xx to MAIL */
		settle();
		assert_int_equal(F.res.end, SMTPC_END_PROTOCOL);
		assert_int_equal(F.msg[0].stage, SMTPC_S_MAIL);
		smtpc_free(s);

		s = start(&sp, 1);
		greet(s, EHLO_OK);
		srv(s, "250 ok\r\n250 ok\r\n250 ok\r\n");	/* 2xx to DATA */
		settle();
		assert_int_equal(F.res.end, SMTPC_END_PROTOCOL);
		assert_int_equal(F.msg[0].stage, SMTPC_S_DATA);
		smtpc_free(s);
	}
}

static void
test_pregreet(void **state)
{
	struct smtpc_spec sp = spec1();
	struct smtpc *s;

	(void)state;
	sp.pregreet = 1;
	sp.helo = NULL;
	sp.seed = 7;
	s = start(&sp, 1);
	{
		char helo[64], want[80];

		smtpc_random_helo(7, helo, sizeof(helo));
		snprintf(want, sizeof(want), "EHLO %s\r\n", helo);
		cli(want);			/* before any banner */
	}
	srv(s, "220 mx\r\n250 mx\r\n");
	cli("MAIL FROM:<alice@example.net>\r\n");
	smtpc_free(s);

	/* the banner refuses: the EHLO reply is drained, then QUIT */
	s = start(&sp, 1);
	clear_out();
	srv(s, "554 5.7.1 pregreet\r\n");
	cli("QUIT\r\n");
	srv(s, "503 5.5.1 bad sequence\r\n221 bye\r\n");
	settle();
	assert_int_equal(F.msg[0].outcome, SMTPC_REJECTED);
	assert_int_equal(F.msg[0].stage, SMTPC_S_GREETING);
	assert_int_equal(F.res.end, SMTPC_END_SERVICE);
	smtpc_free(s);
}

static void
test_compose(void **state)
{
	struct smtpc_spec sp = spec1();
	struct smtpc_msg m[1] = { { SMTPC_HAM, NULL, 0 } };
	size_t sizes[] = { 0, 200, 300, 301, 302, 303, 1000, 4096, 65536 };
	size_t i, len, slen, hdr = 0;
	char helo[16], helo2[16], *t, *st;

	(void)state;
	sp.msg = m;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		m[0].size = sizes[i];
		t = smtpc_message(&sp, 0, &len);
		assert_non_null(t);
		if (i == 0)
			hdr = len;
		else if (sizes[i] > hdr + 1)
			assert_int_equal(len, sizes[i]);
		assert_true(len >= sizes[i] && len <= (sizes[i] > hdr ?
		    sizes[i] : hdr) + 1);
		assert_memory_equal(t + len - 2, "\r\n", 2);
		assert_null(strstr(t, "X-Swarm-Population"));
		assert_non_null(strstr(t, "\r\nX-Swarm-Truth: ham\r\n"));
		st = smtpc_dotstuff(t, len, &slen);
		assert_non_null(st);
		assert_null(strstr(st, "\n.\r"));
		if (sizes[i] > 2000)
			assert_true(slen > len);	/* filler has dot lines */
		free(st);
		free(t);
	}
	st = smtpc_dotstuff(".a\r\n..b\r\nc.\r\n.\r\n", 16, &slen);
	assert_string_equal(st, "..a\r\n...b\r\nc.\r\n..\r\n");
	assert_int_equal(slen, 19);
	free(st);

	smtpc_random_helo(1, helo, sizeof(helo));
	smtpc_random_helo(1, helo2, sizeof(helo2));
	assert_string_equal(helo, helo2);
	assert_true(strlen(helo) >= 6 && strlen(helo) <= 12);
	for (i = 0; helo[i]; i++)
		assert_true(helo[i] >= 'a' && helo[i] <= 'z');
	smtpc_random_helo(2, helo2, sizeof(helo2));
	assert_string_not_equal(helo, helo2);

	assert_int_equal(smtpc_stage_timeout_ms(&sp, SMTPC_S_GREETING), 300000);
	assert_int_equal(smtpc_stage_timeout_ms(&sp, SMTPC_S_DATA), 120000);
	assert_int_equal(smtpc_stage_timeout_ms(&sp, SMTPC_S_DOT), 600000);
	assert_int_equal(smtpc_stage_timeout_ms(&sp, SMTPC_S_RCPT), 300000);
	sp.patience_ms = 1500;
	assert_int_equal(smtpc_stage_timeout_ms(&sp, SMTPC_S_DOT), 1500);
}

static void
test_validation(void **state)
{
	struct smtpc_msg badpop[] = { { SMTPC_SPAM, "no spaces", 10 } };
	static const char *const badrcpt[] = { "a>b@x" };
	struct smtpc_spec sp;
	char err[128];

	(void)state;
	sp = spec1();
	sp.msg = badpop;
	assert_null(smtpc_new(base, &sp, &TR, fk_done, &F, err, sizeof(err)));
	assert_non_null(strstr(err, "population"));
	sp = spec1();
	sp.nrcpt = 0;
	assert_null(smtpc_new(base, &sp, &TR, fk_done, &F, err, sizeof(err)));
	sp = spec1();
	sp.rcpt = badrcpt;
	assert_null(smtpc_new(base, &sp, &TR, fk_done, &F, err, sizeof(err)));
	sp = spec1();
	sp.helo = "two words";
	assert_null(smtpc_new(base, &sp, &TR, fk_done, &F, err, sizeof(err)));
	sp = spec1();
	sp.nmsg = 0;
	assert_null(smtpc_new(base, &sp, &TR, fk_done, &F, err, sizeof(err)));
	assert_string_equal(smtpc_state_name(SMTPC_S_DOT), "dot");
	assert_string_equal(smtpc_outcome_name(SMTPC_ABANDONED), "abandoned");
	assert_string_equal(smtpc_end_name(SMTPC_END_PATIENCE), "patience");
}

static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	return base ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	event_base_free(base);
	base = NULL;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal),
		cmocka_unit_test(test_multiline_pipelining),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_ehlo_fallback_and_multi),
		cmocka_unit_test(test_patience),
		cmocka_unit_test(test_added_delay),
		cmocka_unit_test(test_peer_closes),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_pregreet),
		cmocka_unit_test(test_compose),
		cmocka_unit_test(test_validation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
