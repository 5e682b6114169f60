/*
 * test_utcp.c - the swarm's client TCP (src/swarm/utcp.c) on crafted
 * segments
 *
 * The stack runs without a TUN device: utcp_set_output() collects what it
 * sends and utcp_input() feeds it the peer's segments, built here with
 * correct checksums.  Timers run on a real event_base (the shortest RTO
 * is 200 ms).  Cases: checksums, the SYN, handshake and option
 * negotiation, in-order and out-of-order data, segmentation to the peer's
 * MSS and window, a zero window with persist probes, retransmission, RST
 * (exact, out of window, refused), FIN both ways, abort, unknown 4-tuples,
 * packets that are not TCP, and a whole IPv6 connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <event2/event.h>

#include "swarm/persona.h"
#include "swarm/utcp.h"

#define MAXPKTS	64

struct pkt {
	unsigned char	b[2048];
	size_t		len;
};

struct seg {				/* a parsed packet we sent */
	uint32_t	seq, ack;
	uint8_t		flags;
	uint16_t	win, ipid;
	uint8_t		ttl;
	int		df;
	size_t		optlen, paylen;
	const unsigned char *opt, *pay;
};

static struct pkt out[MAXPKTS];
static size_t nout;

struct app {				/* what the callbacks saw */
	int		connected;
	char		data[8192];
	size_t		datalen;
	int		eof;
	int		closed;
	enum utcp_reason why;
	int		abort_on_data;	/* 1 = utcp_abort() inside data() */
};

static struct event_base *base;
static struct utcp_stack *st;
static struct persona_set set;
static struct in_addr me, peer;
static const uint32_t PEER_ISS = 1000000;

/* capture - output hook */
static void
capture(const unsigned char *p, size_t len, void *arg)
{
	(void)arg;
	assert_true(nout < MAXPKTS);
	assert_true(len <= sizeof(out[0].b));
	memcpy(out[nout].b, p, len);
	out[nout++].len = len;
}

/* get16 / get32 - big-endian loads */
static uint32_t get16(const unsigned char *p) { return (uint32_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const unsigned char *p) { return get16(p) << 16 | get16(p + 2); }

/* parse - check both checksums of packet i and split it */
static struct seg
parse(size_t i)
{
	const unsigned char *p = out[i].b;
	struct seg s;
	size_t thl;
	uint32_t ps;

	assert_true(i < nout);
	assert_int_equal(p[0], 0x45);
	assert_int_equal(get16(p + 2), out[i].len);
	assert_int_equal(utcp_cksum(p, 20, 0), 0);
	ps = get16(p + 12) + get16(p + 14) + get16(p + 16) + get16(p + 18) +
	    6 + (uint32_t)(out[i].len - 20);
	assert_int_equal(utcp_cksum(p + 20, out[i].len - 20, ps), 0);
	thl = (size_t)(p[32] >> 4) * 4;
	s.seq = get32(p + 24);
	s.ack = get32(p + 28);
	s.flags = p[33];
	s.win = (uint16_t)get16(p + 34);
	s.ipid = (uint16_t)get16(p + 4);
	s.ttl = p[8];
	s.df = (p[6] & 0x40) != 0;
	s.opt = p + 40;
	s.optlen = thl - 20;
	s.pay = p + 20 + thl;
	s.paylen = out[i].len - 20 - thl;
	return s;
}

/* feed - the peer sends one segment to (me, sport) */
static void
feed(uint16_t sport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win,
    const unsigned char *opt, size_t optlen, const void *data, size_t len)
{
	unsigned char b[2048];
	size_t thl = 20 + optlen, tot = 20 + thl + len;
	uint32_t ps;
	uint16_t ck;

	memset(b, 0, sizeof(b));
	b[0] = 0x45;
	b[2] = (unsigned char)(tot >> 8);
	b[3] = (unsigned char)tot;
	b[6] = 0x40;
	b[8] = 64;
	b[9] = 6;
	memcpy(b + 12, &peer, 4);
	memcpy(b + 16, &me, 4);
	ck = utcp_cksum(b, 20, 0);
	b[10] = (unsigned char)(ck >> 8);
	b[11] = (unsigned char)ck;
	b[20] = 0;
	b[21] = 25;
	b[22] = (unsigned char)(sport >> 8);
	b[23] = (unsigned char)sport;
	b[24] = (unsigned char)(seq >> 24); b[25] = (unsigned char)(seq >> 16);
	b[26] = (unsigned char)(seq >> 8); b[27] = (unsigned char)seq;
	b[28] = (unsigned char)(ack >> 24); b[29] = (unsigned char)(ack >> 16);
	b[30] = (unsigned char)(ack >> 8); b[31] = (unsigned char)ack;
	b[32] = (unsigned char)((thl / 4) << 4);
	b[33] = flags;
	b[34] = (unsigned char)(win >> 8);
	b[35] = (unsigned char)win;
	if (optlen)
		memcpy(b + 40, opt, optlen);
	if (len)
		memcpy(b + 20 + thl, data, len);
	ps = get16(b + 12) + get16(b + 14) + get16(b + 16) + get16(b + 18) + 6 +
	    (uint32_t)(thl + len);
	ck = utcp_cksum(b + 20, thl + len, ps);
	b[36] = (unsigned char)(ck >> 8);
	b[37] = (unsigned char)ck;
	utcp_input(st, b, tot);
}

static void
on_connected(struct utcp_conn *c, void *arg)
{
	(void)c;
	((struct app *)arg)->connected = 1;
}

static void
on_data(struct utcp_conn *c, const unsigned char *d, size_t len, void *arg)
{
	struct app *a = arg;

	if (len == 0) {
		a->eof = 1;
		return;
	}
	assert_true(a->datalen + len <= sizeof(a->data));
	memcpy(a->data + a->datalen, d, len);
	a->datalen += len;
	if (a->abort_on_data)
		utcp_abort(c);
}

static void
on_closed(struct utcp_conn *c, enum utcp_reason why, void *arg)
{
	struct app *a = arg;

	(void)c;
	a->closed++;
	a->why = why;
}

static const struct utcp_cb cbs = { on_connected, on_data, on_closed };

/* tconnect - connect from (me, sport) to (peer, 25) as personality name */
static struct utcp_conn *
tconnect(uint16_t sport, const char *name, struct app *a, char *err,
    size_t errlen)
{
	union ipaddr s, d;

	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	s.sin.sin_family = d.sin.sin_family = AF_INET;
	s.sin.sin_addr = me;
	s.sin.sin_port = htons(sport);
	d.sin.sin_addr = peer;
	d.sin.sin_port = htons(25);
	return utcp_connect(st, &s, &d, persona_find(&set, name), &cbs, a,
	    err, errlen);
}

/* setup - a stack and two personalities: Linux (ts, ws 7) and XP */
static int
setup(void **state)
{
	static const char text[] =
	    "name = linux\np0f = a\nours = b\nipid = inc\n"
	    "sig = 4:64:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0\n"
	    "name = xp\np0f = a\nours = b\n"
	    "sig = 4:128:0:1460:65535,0:mss,nop,nop,sok:df,id+:0\n"
	    "name = mac\np0f = a\nours = b\n"
	    "sig = 4:64:0:1460:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0\n"
	    "name = linux6\np0f = a\nours = b\n"
	    "sig = 6:64:0:1440:mss*45,7:mss,sok,ts,nop,ws:flow:0\n";
	char err[256];

	(void)state;
	base = event_base_new();
	st = utcp_stack_new(base, -1);
	assert_non_null(st);
	utcp_set_output(st, capture, NULL);
	memset(&set, 0, sizeof(set));
	if (persona_parse_buf("t.conf", text, strlen(text), &set, err,
	    sizeof(err)) == -1)
		fail_msg("%s", err);
	inet_pton(AF_INET, "198.18.0.9", &me);
	inet_pton(AF_INET, "192.0.2.25", &peer);
	nout = 0;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	utcp_stack_free(st);
	event_base_free(base);
	persona_set_free(&set);
	return 0;
}

/* open_conn - connect with persona name and complete the handshake; the
 * SYN-ACK offers mss, ws and ts as given */
static struct utcp_conn *
open_conn(const char *name, struct app *a, uint16_t sport, uint16_t mss,
    int ws, int ts, uint16_t win, uint32_t *iss)
{
	unsigned char opt[20];
	size_t o = 0;
	struct utcp_conn *c;
	struct seg s;
	char err[128];

	memset(a, 0, sizeof(*a));
	nout = 0;
	c = tconnect(sport, name, a, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(nout, 1);
	s = parse(0);
	assert_int_equal(s.flags, 0x02);
	*iss = s.seq;
	opt[o++] = 2; opt[o++] = 4; opt[o++] = (unsigned char)(mss >> 8);
	opt[o++] = (unsigned char)mss;
	if (ws >= 0) {
		opt[o++] = 1; opt[o++] = 3; opt[o++] = 3;
		opt[o++] = (unsigned char)ws;
	}
	if (ts) {
		opt[o++] = 1; opt[o++] = 1; opt[o++] = 8; opt[o++] = 10;
		memcpy(opt + o, "\0\0\0\x07\0\0\0\0", 8);
		o += 8;
	}
	nout = 0;
	feed(sport, PEER_ISS, *iss + 1, 0x12, win, opt, o, NULL, 0);
	assert_int_equal(a->connected, 1);
	assert_string_equal(utcp_state_name(c), "ESTABLISHED");
	assert_int_equal(nout, 1);
	s = parse(0);
	assert_int_equal(s.flags, 0x10);
	assert_int_equal(s.ack, PEER_ISS + 1);
	assert_int_equal(s.seq, *iss + 1);
	nout = 0;
	return c;
}

/* test_cksum - RFC 1071's example and an odd length */
static void
test_cksum(void **state)
{
	static const unsigned char d[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5,
	    0xf6, 0xf7 };
	static const unsigned char odd[] = { 0x01, 0x02, 0x03 };

	(void)state;
	assert_int_equal(utcp_cksum(d, sizeof(d), 0), (uint16_t)~0xddf2);
	assert_int_equal(utcp_cksum(odd, sizeof(odd), 0),
	    (uint16_t)~(0x0102 + 0x0300));
	assert_int_equal(utcp_cksum(d, sizeof(d), 0x220d), 0);
}

/* test_syn - the SYN carries the personality's IP and TCP fields */
static void
test_syn(void **state)
{
	struct app a;
	struct utcp_conn *c;
	struct seg s, s2;
	char err[128];

	(void)state;
	c = tconnect(40000, "xp", &a, err, sizeof(err));
	assert_non_null(c);
	s = parse(0);
	assert_int_equal(s.ttl, 128);
	assert_true(s.df);
	assert_int_not_equal(s.ipid, 0);
	assert_int_equal(s.win, 65535);
	assert_int_equal(s.optlen, 8);
	assert_memory_equal(s.opt, "\x02\x04\x05\xb4\x01\x01\x04\x02", 8);
	assert_int_equal(s.flags, 0x02);
	assert_int_equal(s.ack, 0);
	assert_string_equal(utcp_state_name(c), "SYN_SENT");
	/* the same 4-tuple twice is refused */
	assert_null(tconnect(40000, "xp", &a, err, sizeof(err)));
	/* macOS: IP ID zero, eol+1 padding */
	c = tconnect(40001, "mac", &a, err, sizeof(err));
	s2 = parse(1);
	assert_int_equal(s2.ipid, 0);
	assert_int_equal(s2.optlen, 24);
	assert_int_equal(s2.opt[22], 0);
	assert_int_equal(s2.ttl, 64);
	/* an unanswered SYN is sent again, identical but for TS and IP ID */
	nout = 0;
	event_base_loop(base, EVLOOP_ONCE);
	assert_true(nout >= 1);
	s2 = parse(0);
	assert_int_equal(s2.flags, 0x02);
	utcp_abort(c);
}

/* test_refused - RST|ACK to the SYN */
static void
test_refused(void **state)
{
	struct app a;
	struct seg s;
	char err[128];

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_non_null(tconnect(40002, "xp", &a, err, sizeof(err)));
	s = parse(0);
	feed(40002, 0, s.seq + 1, 0x14, 0, NULL, 0, NULL, 0);
	assert_int_equal(a.closed, 1);
	assert_int_equal(a.why, UTCP_R_REFUSED);
	/* a wrong ACK in SYN_SENT is answered with RST, not accepted */
	memset(&a, 0, sizeof(a));
	nout = 0;
	assert_non_null(tconnect(40003, "xp", &a, err, sizeof(err)));
	s = parse(0);
	feed(40003, 5, s.seq + 77, 0x12, 1000, NULL, 0, NULL, 0);
	assert_int_equal(a.connected, 0);
	assert_int_equal(nout, 2);
	s = parse(1);
	assert_int_equal(s.flags, 0x04);
	assert_int_equal(s.seq, parse(0).seq + 77);
}

/* test_data - in-order, duplicate, out-of-order and partly old data */
static void
test_data(void **state)
{
	struct app a;
	struct utcp_conn *c;
	struct seg s;
	uint32_t iss, r = PEER_ISS + 1;

	(void)state;
	c = open_conn("linux", &a, 40010, 1460, 7, 1, 65535, &iss);
	/* timestamps were negotiated: the ACK carried nop,nop,ts */
	feed(40010, r, iss + 1, 0x18, 1000, NULL, 0, "220 hi\r\n", 8);
	assert_int_equal(a.datalen, 8);
	assert_memory_equal(a.data, "220 hi\r\n", 8);
	assert_int_equal(nout, 1);
	s = parse(0);
	assert_int_equal(s.ack, r + 8);
	assert_int_equal(s.optlen, 12);
	assert_int_equal(s.opt[2], 8);
	assert_int_equal(get32(s.opt + 8), 7);	/* echoes the peer's TSval */
	r += 8;
	/* out of order: not delivered, a duplicate ACK */
	nout = 0;
	feed(40010, r + 5, iss + 1, 0x18, 1000, NULL, 0, "world", 5);
	assert_int_equal(a.datalen, 8);
	assert_int_equal(nout, 1);
	assert_int_equal(parse(0).ack, r);
	/* an old duplicate: ACKed again, not delivered */
	nout = 0;
	feed(40010, r - 8, iss + 1, 0x18, 1000, NULL, 0, "220 hi\r\n", 8);
	assert_int_equal(a.datalen, 8);
	assert_int_equal(parse(0).ack, r);
	/* partly old: only the new bytes are delivered */
	nout = 0;
	feed(40010, r - 2, iss + 1, 0x18, 1000, NULL, 0, "\r\nhello", 7);
	assert_int_equal(a.datalen, 13);
	assert_memory_equal(a.data + 8, "hello", 5);
	assert_int_equal(parse(0).ack, r + 5);
	/* the gap filled by the peer's retransmission */
	r += 5;
	nout = 0;
	feed(40010, r, iss + 1, 0x18, 1000, NULL, 0, "world", 5);
	assert_int_equal(a.datalen, 18);
	assert_string_equal(utcp_state_name(c), "ESTABLISHED");
	utcp_abort(c);
	assert_int_equal(a.closed, 0);	/* abort never calls closed() */
	s = parse(nout - 1);
	assert_int_equal(s.flags, 0x14);
	assert_int_equal(s.ack, r + 5);
}

/* test_send - segmentation by MSS (minus timestamps) and peer window */
static void
test_send(void **state)
{
	static char big[3000];
	struct app a;
	struct utcp_conn *c;
	struct seg s;
	uint32_t iss, i, sent = 0;

	(void)state;
	memset(big, 'x', sizeof(big));
	/* window 100 << 4 = 1600 bytes, MSS 512 - 12 for timestamps */
	c = open_conn("linux", &a, 40020, 512, 4, 1, 65535, &iss);
	feed(40020, PEER_ISS + 1, iss + 1, 0x10, 100, NULL, 0, NULL, 0);
	assert_int_equal(utcp_send(c, big, sizeof(big)), 0);
	for (i = 0; i < nout; i++) {
		s = parse(i);
		assert_true(s.paylen <= 500);
		assert_int_equal(s.seq, iss + 1 + sent);
		sent += (uint32_t)s.paylen;
	}
	assert_int_equal(sent, 1600);
	/* the peer takes 1000 and opens to 4000: the rest goes out */
	nout = 0;
	feed(40020, PEER_ISS + 1, iss + 1 + 1000, 0x10, 250, NULL, 0, NULL, 0);
	for (i = 0; i < nout; i++)
		sent += (uint32_t)parse(i).paylen;
	assert_int_equal(sent, 3000);
	assert_int_equal(parse(nout - 1).flags, 0x18);	/* PSH on the last */
	assert_int_equal(utcp_unsent(c), 2000);
	utcp_abort(c);
}

/* test_zero_window - persist probes while the window is shut, then flow */
static void
test_zero_window(void **state)
{
	struct app a;
	struct utcp_conn *c;
	struct utcp_stats stats;
	struct seg s;
	uint32_t iss;
	size_t i, got = 0;

	(void)state;
	c = open_conn("xp", &a, 40030, 1460, -1, 0, 0, &iss);
	assert_int_equal(utcp_send(c, "MAIL FROM:<a@b>\r\n", 17), 0);
	assert_int_equal(nout, 0);		/* window 0: nothing sent */
	event_base_loop(base, EVLOOP_ONCE);	/* the persist timer */
	assert_int_equal(nout, 1);
	s = parse(0);
	assert_int_equal(s.paylen, 1);
	assert_int_equal(s.seq, iss + 1);
	assert_int_equal(s.pay[0], 'M');
	/* refused: still zero; the next probe comes later, same byte */
	nout = 0;
	feed(40030, PEER_ISS + 1, iss + 1, 0x10, 0, NULL, 0, NULL, 0);
	assert_int_equal(nout, 0);
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(nout, 1);
	assert_int_equal(parse(0).seq, iss + 1);
	utcp_stats(st, &stats);
	assert_int_equal(stats.persist_probes, 2);
	/* the window opens: everything from snd_una goes */
	nout = 0;
	feed(40030, PEER_ISS + 1, iss + 1, 0x10, 8192, NULL, 0, NULL, 0);
	for (i = 0; i < nout; i++)
		got += parse(i).paylen;
	assert_int_equal(got, 17);
	assert_int_equal(parse(0).seq, iss + 1);
	nout = 0;
	feed(40030, PEER_ISS + 1, iss + 18, 0x10, 8192, NULL, 0, NULL, 0);
	assert_int_equal(utcp_unsent(c), 0);
	utcp_abort(c);
}

/* test_retransmit - unacknowledged data is sent again after the RTO */
static void
test_retransmit(void **state)
{
	struct app a;
	struct utcp_conn *c;
	struct seg s;
	uint32_t iss;

	(void)state;
	c = open_conn("xp", &a, 40040, 1460, -1, 0, 8192, &iss);
	utcp_send(c, "EHLO x\r\n", 8);
	assert_int_equal(nout, 1);
	nout = 0;
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(nout, 1);
	s = parse(0);
	assert_int_equal(s.seq, iss + 1);
	assert_int_equal(s.paylen, 8);
	assert_memory_equal(s.pay, "EHLO x\r\n", 8);
	/* an ACK beyond what we sent is answered, not believed */
	nout = 0;
	feed(40040, PEER_ISS + 1, iss + 100, 0x10, 8192, NULL, 0, NULL, 0);
	assert_int_equal(nout, 1);
	assert_int_equal(utcp_unsent(c), 8);
	feed(40040, PEER_ISS + 1, iss + 9, 0x10, 8192, NULL, 0, NULL, 0);
	assert_int_equal(utcp_unsent(c), 0);
	utcp_abort(c);
}

/* test_rst - exact RST closes; an in-window inexact one gets a challenge */
static void
test_rst(void **state)
{
	struct app a;
	struct utcp_conn *c;
	uint32_t iss;

	(void)state;
	c = open_conn("xp", &a, 40050, 1460, -1, 0, 8192, &iss);
	feed(40050, PEER_ISS + 10, 0, 0x04, 0, NULL, 0, NULL, 0);
	assert_int_equal(a.closed, 0);
	assert_int_equal(nout, 1);
	assert_int_equal(parse(0).flags, 0x10);	/* challenge ACK */
	assert_string_equal(utcp_state_name(c), "ESTABLISHED");
	feed(40050, PEER_ISS + 1, 0, 0x04, 0, NULL, 0, NULL, 0);
	assert_int_equal(a.closed, 1);
	assert_int_equal(a.why, UTCP_R_RESET);
	/* the connection is gone: more segments get an RST back */
	nout = 0;
	feed(40050, PEER_ISS + 1, iss + 1, 0x18, 8192, NULL, 0, "x", 1);
	assert_int_equal(nout, 1);
	assert_int_equal(parse(0).flags, 0x04);
	assert_int_equal(parse(0).seq, iss + 1);
}

/* test_peer_closes - the daemon closes first (early, or after QUIT) */
static void
test_peer_closes(void **state)
{
	struct app a;
	struct utcp_conn *c;
	struct seg s;
	uint32_t iss, r = PEER_ISS + 1;

	(void)state;
	c = open_conn("xp", &a, 40060, 1460, -1, 0, 8192, &iss);
	feed(40060, r, iss + 1, 0x19, 8192, NULL, 0, "421 bye\r\n", 9);
	assert_int_equal(a.datalen, 9);
	assert_int_equal(a.eof, 1);
	assert_string_equal(utcp_state_name(c), "CLOSE_WAIT");
	s = parse(nout - 1);
	assert_int_equal(s.ack, r + 10);
	/* sending after the peer's FIN is allowed; then our FIN */
	nout = 0;
	assert_int_equal(utcp_send(c, "QUIT\r\n", 6), 0);
	utcp_close(c);
	assert_int_equal(utcp_send(c, "x", 1), -1);
	assert_string_equal(utcp_state_name(c), "LAST_ACK");
	s = parse(nout - 1);
	assert_int_equal(s.flags & 0x01, 0x01);
	assert_int_equal(s.seq, iss + 7);
	feed(40060, r + 10, iss + 8, 0x10, 8192, NULL, 0, NULL, 0);
	assert_int_equal(a.closed, 1);
	assert_int_equal(a.why, UTCP_R_DONE);
}

/* test_we_close - our FIN first: FIN_WAIT_1, FIN_WAIT_2, done */
static void
test_we_close(void **state)
{
	struct app a;
	struct utcp_conn *c;
	struct seg s;
	uint32_t iss, r = PEER_ISS + 1;

	(void)state;
	c = open_conn("xp", &a, 40070, 1460, -1, 0, 8192, &iss);
	utcp_close(c);
	assert_string_equal(utcp_state_name(c), "FIN_WAIT_1");
	s = parse(0);
	assert_int_equal(s.flags, 0x11);
	/* the FIN is retransmitted when not acknowledged */
	nout = 0;
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(parse(0).flags, 0x11);
	assert_int_equal(parse(0).seq, iss + 1);
	feed(40070, r, iss + 2, 0x10, 8192, NULL, 0, NULL, 0);
	assert_string_equal(utcp_state_name(c), "FIN_WAIT_2");
	/* data still arrives in FIN_WAIT_2, then the peer's FIN */
	feed(40070, r, iss + 2, 0x18, 8192, NULL, 0, "221 ok\r\n", 8);
	assert_int_equal(a.datalen, 8);
	nout = 0;
	feed(40070, r + 8, iss + 2, 0x11, 8192, NULL, 0, NULL, 0);
	assert_int_equal(a.closed, 1);
	assert_int_equal(a.why, UTCP_R_DONE);
	assert_int_equal(parse(0).ack, r + 9);
}

/* test_simultaneous_close - FINs cross: CLOSING, then done */
static void
test_simultaneous_close(void **state)
{
	struct app a;
	struct utcp_conn *c;
	uint32_t iss, r = PEER_ISS + 1;

	(void)state;
	c = open_conn("xp", &a, 40080, 1460, -1, 0, 8192, &iss);
	utcp_close(c);
	feed(40080, r, iss + 1, 0x11, 8192, NULL, 0, NULL, 0);
	assert_string_equal(utcp_state_name(c), "CLOSING");
	assert_int_equal(a.eof, 1);
	feed(40080, r + 1, iss + 2, 0x10, 8192, NULL, 0, NULL, 0);
	assert_int_equal(a.closed, 1);
	assert_int_equal(a.why, UTCP_R_DONE);
}

/* test_abort_in_callback - utcp_abort() inside data() is safe */
static void
test_abort_in_callback(void **state)
{
	struct app a;
	uint32_t iss;
	struct utcp_stats stats;

	(void)state;
	(void)open_conn("xp", &a, 40090, 1460, -1, 0, 8192, &iss);
	a.abort_on_data = 1;
	feed(40090, PEER_ISS + 1, iss + 1, 0x19, 8192, NULL, 0, "554 no\r\n", 8);
	assert_int_equal(a.datalen, 8);
	assert_int_equal(a.eof, 0);
	assert_int_equal(a.closed, 0);
	assert_int_equal(parse(nout - 1).flags, 0x14);
	utcp_stats(st, &stats);
	assert_int_equal(stats.active, 0);
}

/* test_not_tcp - ICMPv6 (the kernel's own on a new TUN), truncated and
 * bad-checksum packets are dropped without an answer */
static void
test_not_tcp(void **state)
{
	unsigned char v6[48] = { 0x60, 0, 0, 0, 0, 8, 58, 255 };
	unsigned char bad[40] = { 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0 };
	struct utcp_stats stats;

	(void)state;
	utcp_input(st, v6, sizeof(v6));
	utcp_input(st, v6, 3);
	utcp_input(st, bad, sizeof(bad));
	utcp_stats(st, &stats);
	assert_int_equal(stats.dropped, 3);
	assert_int_equal(nout, 0);
}

/* sum6 - the IPv6 pseudo-header's partial sum for a TCP length */
static uint32_t
sum6(const unsigned char *a, const unsigned char *b, size_t len)
{
	uint32_t sum = 6 + (uint32_t)len;
	size_t i;

	for (i = 0; i < 16; i += 2)
		sum += get16(a + i) + get16(b + i);
	return sum;
}

/* test_ipv6 - SYN, handshake, data and the peer's FIN over IPv6 */
static void
test_ipv6(void **state)
{
	union ipaddr src, dst;
	struct app a;
	struct utcp_conn *c;
	unsigned char b[128], *th;
	const unsigned char *o;
	uint32_t iss, flow;
	size_t thl;
	uint16_t ck;
	char err[128];

	(void)state;
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	memset(&a, 0, sizeof(a));
	src.sin6.sin6_family = dst.sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1::9", &src.sin6.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::25", &dst.sin6.sin6_addr);
	src.sin6.sin6_port = htons(41000);
	dst.sin6.sin6_port = htons(25);
	/* an IPv4-only personality is refused, and mixed families too */
	assert_null(utcp_connect(st, &src, &dst, persona_find(&set, "xp"),
	    &cbs, &a, err, sizeof(err)));
	assert_string_equal(err, "personality xp is IPv4 only");
	{
		union ipaddr v4;

		memset(&v4, 0, sizeof(v4));
		v4.sin.sin_family = AF_INET;
		v4.sin.sin_addr = peer;
		assert_null(utcp_connect(st, &src, &v4,
		    persona_find(&set, "linux6"), &cbs, &a, err, sizeof(err)));
	}
	c = utcp_connect(st, &src, &dst, persona_find(&set, "linux6"), &cbs,
	    &a, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(nout, 1);
	o = out[0].b;
	assert_int_equal(o[0] >> 4, 6);
	flow = (uint32_t)(o[1] & 0x0f) << 16 | get16(o + 2);
	assert_int_not_equal(flow, 0);		/* the flow quirk */
	assert_int_equal(o[6], 6);
	assert_int_equal(o[7], 64);
	assert_int_equal(get16(o + 4), out[0].len - 40);
	assert_int_equal(utcp_cksum(o + 40, out[0].len - 40,
	    sum6(o + 8, o + 24, out[0].len - 40)), 0);
	assert_int_equal(get16(o + 54), 45 * 1440);	/* window */
	assert_memory_equal(o + 60, "\x02\x04\x05\xa0\x04\x02\x08\x0a", 8);
	iss = get32(o + 44);
	/* the SYN-ACK, built here: no options, so MSS defaults to 1220 */
	memset(b, 0, sizeof(b));
	b[0] = 0x60;
	b[5] = 20 + 5;
	b[6] = 6;
	b[7] = 64;
	memcpy(b + 8, &dst.sin6.sin6_addr, 16);
	memcpy(b + 24, &src.sin6.sin6_addr, 16);
	th = b + 40;
	th[1] = 25;
	th[2] = 41000 >> 8;
	th[3] = 41000 & 0xff;
	th[4] = 0; th[5] = 0; th[6] = 0x10; th[7] = 0;		/* seq 4096 */
	th[8] = (unsigned char)((iss + 1) >> 24);
	th[9] = (unsigned char)((iss + 1) >> 16);
	th[10] = (unsigned char)((iss + 1) >> 8);
	th[11] = (unsigned char)(iss + 1);
	th[12] = 0x50;
	th[13] = 0x12;
	th[14] = 0x20;
	b[5] = 20;
	ck = utcp_cksum(th, 20, sum6(b + 8, b + 24, 20));
	th[16] = (unsigned char)(ck >> 8);
	th[17] = (unsigned char)ck;
	nout = 0;
	utcp_input(st, b, 60);
	assert_int_equal(a.connected, 1);
	assert_int_equal(nout, 1);
	assert_int_equal(get32(out[0].b + 48), 4097);	/* ACK */
	thl = (size_t)(out[0].b[52] >> 4) * 4;
	assert_int_equal(thl, 20);		/* no timestamps agreed */
	/* data with FIN */
	b[5] = 25;
	th[7] = 1;				/* seq 4097 */
	th[13] = 0x19;
	th[16] = th[17] = 0;
	memcpy(th + 20, "220 x", 5);
	ck = utcp_cksum(th, 25, sum6(b + 8, b + 24, 25));
	th[16] = (unsigned char)(ck >> 8);
	th[17] = (unsigned char)ck;
	nout = 0;
	utcp_input(st, b, 65);
	assert_int_equal(a.datalen, 5);
	assert_int_equal(a.eof, 1);
	assert_string_equal(utcp_state_name(c), "CLOSE_WAIT");
	assert_int_equal(get32(out[nout - 1].b + 48), 4097 + 6);
	/* the reply to data sent now respects the default IPv6 MSS */
	{
		static char big[3000];

		memset(big, 'y', sizeof(big));
		nout = 0;
		utcp_send(c, big, sizeof(big));
		assert_true(nout >= 1);
		assert_int_equal(out[0].len - 60, 1220);
	}
	utcp_abort(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cksum),
		cmocka_unit_test_setup_teardown(test_syn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_window, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retransmit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_closes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_we_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_simultaneous_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort_in_callback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_not_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
