/*
 * utcp.c - a small event-driven client-side TCP over a TUN device
 *
 * Exports the utcp_* API of swarm/utcp.h.  The stack reads IPv4 and IPv6
 * packets
 * from the TUN fd (or from utcp_input() in tests), finds the connection
 * by its 4-tuple in a hash table, and runs RFC 793/9293 client states:
 * SYN_SENT, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSING, CLOSE_WAIT,
 * LAST_ACK, CLOSED.  The SYN is the personality's exact SYN (swarm/
 * persona.h); later segments carry only timestamps, if negotiated.
 *
 * Simplifications, all documented in doc/internals/swarm-tcp.md: received
 * data goes straight to the data() callback, so the advertised window is
 * constant; out-of-order segments are dropped with a duplicate ACK (the
 * peer retransmits); retransmission is go-back-N from snd_una with a
 * doubling RTO and no congestion control; there is no TIME_WAIT.
 *
 * Memory: the stack owns its connections.  A connection is freed after
 * its closed() callback returns, or inside utcp_abort(); while input or a
 * timer is working on it, the free is deferred until that work unwinds.
 * It is an error to use a struct utcp_conn after closed() or
 * utcp_abort(), or to call utcp_stack_free() from a callback.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fp/syn.h"
#include "swarm/persona.h"
#include "swarm/utcp.h"
#include "util/addr.h"
#include "util/log.h"

#define UTCP_BUCKETS	65536		/* hash buckets (power of two) */
#define UTCP_SYN_RTO_MS	1000		/* first SYN retransmission */
#define UTCP_MAXPKT	65535		/* largest packet read or built */
#define UTCP_DEFAULT_MSS 536		/* peer MSS without an option, IPv4 */
#define UTCP_DEFAULT_MSS6 1220		/* the same for IPv6 (RFC 9293) */
#define UTCP_READ_BATCH	256		/* packets read per TUN event */
#define UTCP_EPHEMERAL_LO 32768		/* ports picked when sport is 0 */
#define UTCP_EPHEMERAL_HI 60999

/* sequence-space comparisons */
#define SEQ_LT(a, b)	((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b)	((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b)	((int32_t)((a) - (b)) > 0)
#define SEQ_GEQ(a, b)	((int32_t)((a) - (b)) >= 0)

enum utcp_state {
	UTCP_SYN_SENT,
	UTCP_ESTABLISHED,
	UTCP_FIN_WAIT_1,	/* our FIN sent, not yet acknowledged */
	UTCP_FIN_WAIT_2,	/* our FIN acknowledged, peer's not seen */
	UTCP_CLOSING,		/* both FINs sent, ours not acknowledged */
	UTCP_CLOSE_WAIT,	/* peer's FIN seen, ours not sent */
	UTCP_LAST_ACK,		/* peer's FIN seen, ours not acknowledged */
	UTCP_CLOSED
};

static const char *const utcp_state_names[] = {
	"SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSING",
	"CLOSE_WAIT", "LAST_ACK", "CLOSED"
};

struct utcp_tuple {			/* a connection's addresses */
	uint8_t		v6;		/* 1 = IPv6, 0 = IPv4 */
	unsigned char	src[16];	/* ours (4 bytes used for IPv4) */
	unsigned char	dst[16];	/* the peer's */
	uint16_t	sport, dport;	/* host order */
};

struct utcp_conn {
	struct utcp_stack *st;
	struct utcp_conn *hnext;	/* hash chain */
	struct utcp_tuple t;		/* addresses and ports */
	uint32_t	flow;		/* IPv6 flow label (0 = none) */
	const struct persona *p;	/* not owned; must outlive us */
	struct utcp_cb	cb;
	void		*arg;
	enum utcp_state	state;
	uint32_t	iss;		/* initial send sequence */
	uint32_t	snd_una;	/* oldest unacknowledged */
	uint32_t	snd_nxt;	/* next to send (rewinds on RTO) */
	uint32_t	snd_max;	/* highest sent + 1 */
	uint32_t	snd_wnd;	/* peer's window, bytes, scaled */
	uint32_t	rcv_nxt;	/* next expected from the peer */
	uint32_t	fin_seq;	/* sequence of our FIN, if fin_sent */
	uint16_t	peer_mss;	/* from the SYN-ACK, 536 without */
	uint8_t		snd_shift;	/* peer's window scale (0 = none) */
	uint8_t		ts_ok;		/* 1 = timestamps negotiated */
	uint8_t		ws_ok;		/* 1 = window scaling negotiated */
	uint32_t	ts_recent;	/* peer's last TSval */
	uint32_t	ts_offset;	/* random per-connection TS base */
	struct evbuffer	*sndbuf;	/* bytes from snd_una on */
	struct event	*timer;		/* SYN/RTO/persist */
	unsigned	rto_ms;		/* current timeout */
	unsigned	persist_ms;	/* zero-window probe interval */
	unsigned	retries;	/* unanswered (re)transmissions */
	uint8_t		persist;	/* 1 = zero-window probing */
	uint8_t		fin_wanted;	/* utcp_close() called */
	uint8_t		fin_sent;	/* our FIN has a sequence number */
	uint8_t		peer_fin;	/* peer's FIN received */
	uint8_t		dead;		/* finished; free when not busy */
	uint8_t		quiet;		/* no closed() (utcp_abort) */
	unsigned	busy;		/* nesting of input/timer work */
};

struct utcp_stack {
	struct event_base *base;
	int		fd;		/* TUN fd, -1 in tests */
	struct event	*rd;		/* read event on fd */
	utcp_output_fn	*out;		/* test hook, NULL = write(fd) */
	void		*out_arg;
	struct utcp_conn **bucket;	/* UTCP_BUCKETS chains */
	struct utcp_stats stats;
	uint16_t	ipid;		/* PERSONA_IPID_INC counter */
	uint16_t	next_port;	/* ephemeral port cursor */
	uint64_t	rnd;		/* xorshift64* state */
	struct timespec	t0;		/* timestamp clock origin */
	unsigned char	pkt[UTCP_MAXPKT]; /* packets being built */
	unsigned char	seg[UTCP_MAXPKT]; /* payload copied out of sndbuf */
	unsigned char	rbuf[UTCP_MAXPKT]; /* packets read from the TUN */
};

static void	conn_timer_cb(evutil_socket_t, short, void *);
static void	output(struct utcp_conn *c);

/* put16 - store a 16-bit value big-endian */
static void
put16(unsigned char *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* put32 - store a 32-bit value big-endian */
static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/* get16 - load a big-endian 16-bit value */
static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* get32 - load a big-endian 32-bit value */
static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* utcp_cksum - Internet checksum of data plus a partial sum, ready to store */
uint16_t
utcp_cksum(const void *data, size_t len, uint32_t sum)
{
	const unsigned char *p = data;
	uint64_t s = sum;

	while (len > 1) {
		s += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* pseudo_sum - the IPv4 or IPv6 pseudo-header's partial sum */
static uint32_t
pseudo_sum(int v6, const unsigned char *src, const unsigned char *dst,
    size_t tcplen)
{
	uint32_t sum = 6 + (uint32_t)(tcplen >> 16) + (uint32_t)(tcplen & 0xffff);
	size_t i, alen = v6 ? 16 : 4;

	for (i = 0; i < alen; i += 2)
		sum += get16(src + i) + get16(dst + i);
	return sum;
}

/* rnd32 - xorshift64*: fast, seeded from getrandom(); not for secrets */
static uint32_t
rnd32(struct utcp_stack *st)
{
	st->rnd ^= st->rnd >> 12;
	st->rnd ^= st->rnd << 25;
	st->rnd ^= st->rnd >> 27;
	return (uint32_t)((st->rnd * 0x2545F4914F6CDD1DULL) >> 32);
}

/* now_ms - milliseconds since the stack started */
static uint64_t
now_ms(const struct utcp_stack *st)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - st->t0.tv_sec) * 1000 +
	    (uint64_t)((t.tv_nsec - st->t0.tv_nsec) / 1000000);
}

/* ts_now - this connection's TSval at the personality's clock rate */
static uint32_t
ts_now(const struct utcp_conn *c)
{
	unsigned hz = c->p->ts_hz ? c->p->ts_hz : 1000;

	return (uint32_t)(now_ms(c->st) * hz / 1000) + c->ts_offset;
}

/* hash4 - bucket of a 4-tuple */
static size_t
hash4(const struct utcp_tuple *t)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i, alen = t->v6 ? 16 : 4;

	for (i = 0; i < alen; i++) {
		h ^= t->src[i];
		h *= 1099511628211ULL;
		h ^= t->dst[i];
		h *= 1099511628211ULL;
	}
	h ^= (uint32_t)t->sport << 16 | t->dport;
	h *= 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & (UTCP_BUCKETS - 1);
}

/* same_tuple - 1 if two tuples name the same connection */
static int
same_tuple(const struct utcp_tuple *a, const struct utcp_tuple *b)
{
	size_t alen = a->v6 ? 16 : 4;

	return a->v6 == b->v6 && a->sport == b->sport &&
	    a->dport == b->dport && memcmp(a->src, b->src, alen) == 0 &&
	    memcmp(a->dst, b->dst, alen) == 0;
}

/* lookup - the connection with this 4-tuple, or NULL */
static struct utcp_conn *
lookup(const struct utcp_stack *st, const struct utcp_tuple *t)
{
	struct utcp_conn *c;

	for (c = st->bucket[hash4(t)]; c; c = c->hnext)
		if (same_tuple(&c->t, t))
			return c;
	return NULL;
}

/* unhash - take a connection out of its chain */
static void
unhash(struct utcp_conn *c)
{
	struct utcp_conn **pp = &c->st->bucket[hash4(&c->t)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->hnext = NULL;
}

/* emit - hand one finished packet to the TUN fd or the test hook */
static void
emit(struct utcp_stack *st, const unsigned char *pkt, size_t len)
{
	st->stats.pkts_out++;
	if (st->out != NULL) {
		st->out(pkt, len, st->out_arg);
		return;
	}
	if (write(st->fd, pkt, len) != (ssize_t)len)
		st->stats.write_errors++;	/* TCP will retransmit */
}

/* next_ipid - the IP ID this personality puts on its next packet */
static uint16_t
next_ipid(struct utcp_stack *st, const struct persona *p)
{
	switch (p ? p->ipid : PERSONA_IPID_ZERO) {
	case PERSONA_IPID_INC:
		if (++st->ipid == 0)
			st->ipid = 1;
		return st->ipid;
	case PERSONA_IPID_RANDOM: {
		uint16_t v;

		while ((v = (uint16_t)rnd32(st)) == 0)
			;
		return v;
	}
	default:
		return 0;
	}
}

/*
 * build_send - build an IPv4 or IPv6 + TCP segment for tuple t and emit
 * it.  opts/optlen are the TCP options (a multiple of 4); p NULL means
 * plain defaults (RSTs to unknown connections); syn_quirks applies the
 * personality's IP-level SYN quirks.
 */
static void
build_send(struct utcp_stack *st, const struct persona *p,
    const struct utcp_tuple *t, uint32_t flow, uint32_t seq, uint32_t ack,
    uint8_t flags, uint16_t win, uint16_t urp, const unsigned char *opts,
    size_t optlen, const unsigned char *data, size_t len, int syn_quirks)
{
	unsigned char *ip = st->pkt, *th;
	size_t ihl = t->v6 ? 40 : 20, thl = 20 + optlen, tot = ihl + thl + len;

	if (tot > UTCP_MAXPKT)
		return;
	th = ip + ihl;
	if (t->v6) {
		ip[0] = 0x60;
		ip[1] = (uint8_t)((flow >> 16) & 0x0f);
		put16(ip + 2, (uint16_t)(flow & 0xffff));
		put16(ip + 4, (uint16_t)(thl + len));
		ip[6] = 6;
		ip[7] = p ? p->ttl : 64;
		memcpy(ip + 8, t->src, 16);
		memcpy(ip + 24, t->dst, 16);
	} else {
		uint16_t frag = 0;

		if (p == NULL || (p->quirks & FP_Q_DF))
			frag |= 0x4000;
		if (syn_quirks && p && (p->quirks & FP_Q_NZ_MBZ))
			frag |= 0x8000;
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, (uint16_t)tot);
		put16(ip + 4, next_ipid(st, p));
		put16(ip + 6, frag);
		ip[8] = p ? p->ttl : 64;
		ip[9] = 6;
		put16(ip + 10, 0);
		memcpy(ip + 12, t->src, 4);
		memcpy(ip + 16, t->dst, 4);
		put16(ip + 10, utcp_cksum(ip, 20, 0));
	}
	put16(th, t->sport);
	put16(th + 2, t->dport);
	put32(th + 4, seq);
	put32(th + 8, ack);
	th[12] = (uint8_t)((thl / 4) << 4);
	th[13] = flags;
	put16(th + 14, win);
	put16(th + 16, 0);
	put16(th + 18, urp);
	if (optlen)
		memcpy(th + 20, opts, optlen);
	if (len)
		memcpy(th + thl, data, len);
	put16(th + 16, utcp_cksum(th, thl + len,
	    pseudo_sum(t->v6, t->src, t->dst, thl + len)));
	emit(st, st->pkt, tot);
}

/* send_syn - (re)send the personality's exact SYN */
static void
send_syn(struct utcp_conn *c)
{
	const struct persona *p = c->p;
	unsigned char opts[40];
	int n = persona_tcp_options(p, ts_now(c), opts, sizeof(opts));
	uint8_t flags = FP_TH_SYN;
	uint32_t ack = 0;

	if (n < 0)
		n = 0;
	if (p->quirks & FP_Q_ECN)
		flags |= 0x40 | 0x80;		/* ECE | CWR: ECN setup */
	if (p->quirks & FP_Q_URG)
		flags |= FP_TH_URG;
	if (p->quirks & FP_Q_PUSH)
		flags |= FP_TH_PUSH;
	if (p->quirks & FP_Q_NZ_ACK)
		ack = rnd32(c->st) | 1;
	build_send(c->st, p, &c->t, c->flow, c->iss, ack, flags, p->win, (p->quirks & FP_Q_NZ_URG) ? 1 : 0, opts,
	    (size_t)n, NULL, 0, 1);
}

/* send_seg - a non-SYN segment of this connection */
static void
send_seg(struct utcp_conn *c, uint32_t seq, uint8_t flags,
    const unsigned char *data, size_t len)
{
	unsigned char opts[12];
	size_t optlen = 0;

	if (c->ts_ok) {
		opts[0] = 1;
		opts[1] = 1;
		opts[2] = 8;
		opts[3] = 10;
		put32(opts + 4, ts_now(c));
		put32(opts + 8, c->ts_recent);
		optlen = 12;
	}
	build_send(c->st, c->p, &c->t, c->flow, seq, c->rcv_nxt,
	    flags | FP_TH_ACK, c->p->win, 0, opts, optlen, data, len, 0);
}

/* send_ack - a pure ACK at snd_nxt */
static void
send_ack(struct utcp_conn *c)
{
	send_seg(c, c->snd_nxt, 0, NULL, 0);
}

/* enter_state - the one place states change; logs the transition */
static void
enter_state(struct utcp_conn *c, enum utcp_state s)
{
	if (log_get_verbose() > 0) {
		char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
		int af = c->t.v6 ? AF_INET6 : AF_INET;

		inet_ntop(af, c->t.src, a, sizeof(a));
		inet_ntop(af, c->t.dst, b, sizeof(b));
		log_debug("utcp: [%s]:%u -> [%s]:%u %s -> %s", a, c->t.sport,
		    b, c->t.dport, utcp_state_names[c->state],
		    utcp_state_names[s]);
	}
	c->state = s;
}

/* arm - (re)start the connection's timer */
static void
arm(struct utcp_conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

/* conn_free - release a finished connection */
static void
conn_free(struct utcp_conn *c)
{
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (c->sndbuf != NULL) {
		evbuffer_free(c->sndbuf);
		c->sndbuf = NULL;
	}
	free(c);
}

/* finish - end a connection: unhash, call closed() unless quiet, free */
static void
finish(struct utcp_conn *c, enum utcp_reason why)
{
	if (c->dead)
		return;
	c->dead = 1;
	evtimer_del(c->timer);
	unhash(c);
	enter_state(c, UTCP_CLOSED);
	c->st->stats.active--;
	c->st->stats.closed++;
	if (!c->quiet && c->cb.closed != NULL) {
		c->busy++;
		c->cb.closed(c, why, c->arg);
		c->busy--;
	}
	if (c->busy == 0)
		conn_free(c);
}

/* release - end a unit of work on c; free it if it finished meanwhile */
static void
release(struct utcp_conn *c)
{
	if (--c->busy == 0 && c->dead)
		conn_free(c);
}

/* data_sent - sent, unacknowledged data bytes (no FIN) */
static uint32_t
data_sent(const struct utcp_conn *c)
{
	uint32_t n = c->snd_nxt - c->snd_una;

	if (c->fin_sent && SEQ_GT(c->snd_nxt, c->fin_seq))
		n--;
	return n;
}

/* output - send what the window allows, then a FIN if one is due */
static void
output(struct utcp_conn *c)
{
	size_t buffered, sent;
	uint32_t mss, wnd_end;
	unsigned char *seg = c->st->seg;

	if (c->dead || c->state == UTCP_SYN_SENT)
		return;
	buffered = evbuffer_get_length(c->sndbuf);
	mss = c->peer_mss > (c->ts_ok ? 12 : 0) + 64 ?
	    c->peer_mss - (c->ts_ok ? 12u : 0u) : 64;
	wnd_end = c->snd_una + c->snd_wnd;
	while ((sent = data_sent(c)) < buffered && !c->persist) {
		struct evbuffer_ptr pos;
		size_t n = buffered - sent;
		uint32_t room = SEQ_GT(wnd_end, c->snd_nxt) ?
		    wnd_end - c->snd_nxt : 0;

		if (room == 0) {
			if (c->snd_nxt == c->snd_una && c->snd_wnd == 0) {
				c->persist = 1;	/* zero window: probe */
				c->retries = 0;
				arm(c, c->persist_ms);
			}
			return;
		}
		if (n > room)
			n = room;
		if (n > mss)
			n = mss;
		if (n > UTCP_MAXPKT - 80)
			n = UTCP_MAXPKT - 80;
		evbuffer_ptr_set(c->sndbuf, &pos, sent, EVBUFFER_PTR_SET);
		if (evbuffer_copyout_from(c->sndbuf, &pos, seg, n) !=
		    (ev_ssize_t)n)
			return;
		if (SEQ_LT(c->snd_nxt, c->snd_max))
			c->st->stats.retransmits++;
		send_seg(c, c->snd_nxt, sent + n == buffered ? FP_TH_PUSH : 0,
		    seg, n);
		c->st->stats.bytes_out += n;
		c->snd_nxt += (uint32_t)n;
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		if (!evtimer_pending(c->timer, NULL))
			arm(c, c->rto_ms);
	}
	if (c->fin_wanted && data_sent(c) == buffered &&
	    (!c->fin_sent || c->snd_nxt == c->fin_seq)) {
		if (c->fin_sent)
			c->st->stats.retransmits++;
		c->fin_seq = c->snd_nxt;
		c->fin_sent = 1;
		send_seg(c, c->snd_nxt, FP_TH_FIN, NULL, 0);
		c->snd_nxt++;
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		if (c->state == UTCP_ESTABLISHED)
			enter_state(c, UTCP_FIN_WAIT_1);
		else if (c->state == UTCP_CLOSE_WAIT)
			enter_state(c, UTCP_LAST_ACK);
		if (!evtimer_pending(c->timer, NULL))
			arm(c, c->rto_ms);
	}
}

/* send_rst - tell the peer this connection is gone */
static void
send_rst(struct utcp_conn *c)
{
	c->st->stats.rst_out++;
	build_send(c->st, c->p, &c->t, c->flow, c->snd_max,
	    c->state == UTCP_SYN_SENT ? 0 : c->rcv_nxt,
	    FP_TH_RST | (c->state == UTCP_SYN_SENT ? 0 : FP_TH_ACK), 0, 0,
	    NULL, 0, NULL, 0, 0);
}

/* persist_probe - one byte beyond the peer's zero window */
static void
persist_probe(struct utcp_conn *c)
{
	struct evbuffer_ptr pos;
	unsigned char b;

	evbuffer_ptr_set(c->sndbuf, &pos, 0, EVBUFFER_PTR_SET);
	if (evbuffer_copyout_from(c->sndbuf, &pos, &b, 1) != 1)
		return;
	c->st->stats.persist_probes++;
	send_seg(c, c->snd_una, 0, &b, 1);
	c->snd_nxt = c->snd_una + 1;
	if (SEQ_GT(c->snd_nxt, c->snd_max))
		c->snd_max = c->snd_nxt;
}

/* conn_timer_cb - SYN retransmission, RTO (go-back-N) or persist probe */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct utcp_conn *c = arg;

	(void)fd;
	(void)what;
	c->busy++;
	if (c->state == UTCP_SYN_SENT) {
		if (++c->retries > UTCP_SYN_RETRIES)
			finish(c, UTCP_R_TIMEOUT);
		else {
			c->st->stats.retransmits++;
			send_syn(c);
			c->rto_ms *= 2;
			arm(c, c->rto_ms);
		}
	} else if (c->persist || c->snd_una != c->snd_max) {
		if (++c->retries > UTCP_DATA_RETRIES) {
			send_rst(c);	/* the peer is gone: tell it */
			finish(c, UTCP_R_TIMEOUT);
		} else {
			if (c->persist) {
				persist_probe(c);
				if (c->persist_ms < UTCP_RTO_MAX_MS)
					c->persist_ms *= 2;
				arm(c, c->persist_ms);
			} else {
				c->snd_nxt = c->snd_una;	/* go back N */
				if (c->rto_ms < UTCP_RTO_MAX_MS)
					c->rto_ms *= 2;
				evtimer_del(c->timer);
				output(c);
				arm(c, c->rto_ms);
			}
		}
	}
	release(c);
}

/* parse_opts - MSS, window scale and timestamp from a SYN-ACK or segment */
static void
parse_opts(const unsigned char *o, size_t len, int *mss, int *ws,
    int *has_ts, uint32_t *tsval)
{
	size_t i = 0;

	while (i < len) {
		uint8_t k = o[i], l;

		if (k == FP_OPT_EOL)
			break;
		if (k == FP_OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len || (l = o[i + 1]) < 2 || i + l > len)
			break;
		if (k == FP_OPT_MSS && l == 4 && mss)
			*mss = get16(o + i + 2);
		else if (k == FP_OPT_WS && l == 3 && ws)
			*ws = o[i + 2];
		else if (k == FP_OPT_TS && l == 10) {
			*has_ts = 1;
			*tsval = get32(o + i + 2);
		}
		i += l;
	}
}

/* rst_unknown - answer a segment for no connection with an RST; t is
 * the tuple from our side */
static void
rst_unknown(struct utcp_stack *st, const struct utcp_tuple *t,
    const unsigned char *th, size_t paylen)
{
	uint8_t fl = th[13];
	uint32_t seq = get32(th + 4), ack = get32(th + 8);

	if (fl & FP_TH_RST)
		return;
	st->stats.rst_out++;
	if (fl & FP_TH_ACK)
		build_send(st, NULL, t, 0, ack, 0, FP_TH_RST, 0, 0, NULL, 0,
		    NULL, 0, 0);
	else
		build_send(st, NULL, t, 0, 0, seq + (uint32_t)paylen +
		    !!(fl & FP_TH_SYN) + !!(fl & FP_TH_FIN),
		    FP_TH_RST | FP_TH_ACK, 0, 0, NULL, 0, NULL, 0, 0);
}

/* syn_sent_input - the answer to our SYN */
static void
syn_sent_input(struct utcp_conn *c, const unsigned char *th, size_t thl)
{
	uint8_t fl = th[13];
	uint32_t seq = get32(th + 4), ack = get32(th + 8);
	int mss = c->t.v6 ? UTCP_DEFAULT_MSS6 : UTCP_DEFAULT_MSS;
	int ws = -1, has_ts = 0;
	uint32_t tsval = 0;

	if ((fl & FP_TH_ACK) && ack != c->iss + 1) {
		if (!(fl & FP_TH_RST)) {
			c->st->stats.rst_out++;
			build_send(c->st, c->p, &c->t, c->flow, ack, 0,
			    FP_TH_RST, 0, 0, NULL, 0, NULL, 0, 0);
		}
		return;
	}
	if (fl & FP_TH_RST) {
		if (fl & FP_TH_ACK)
			finish(c, UTCP_R_REFUSED);
		return;
	}
	if (!(fl & FP_TH_SYN) || !(fl & FP_TH_ACK))
		return;		/* no simultaneous open */
	parse_opts(th + 20, thl - 20, &mss, &ws, &has_ts, &tsval);
	c->rcv_nxt = seq + 1;
	c->snd_una = c->snd_nxt = c->snd_max = c->iss + 1;
	c->peer_mss = mss > 0 ? (uint16_t)mss : UTCP_DEFAULT_MSS;
	if (c->t.v6 && c->peer_mss > 65535 - 60)
		c->peer_mss = 65535 - 60;
	c->ws_ok = ws >= 0 && c->p->has_ws;
	c->snd_shift = c->ws_ok ? (uint8_t)(ws > 14 ? 14 : ws) : 0;
	c->snd_wnd = get16(th + 14);	/* never scaled on a SYN */
	if (has_ts && c->p->has_ts) {
		c->ts_ok = 1;
		c->ts_recent = tsval;
	}
	c->retries = 0;
	c->rto_ms = UTCP_RTO_MIN_MS;
	evtimer_del(c->timer);
	enter_state(c, UTCP_ESTABLISHED);
	send_ack(c);
	if (c->cb.connected != NULL)
		c->cb.connected(c, c->arg);
	if (!c->dead)
		output(c);
}

/* ack_input - process the ACK field; 0 = go on, -1 = segment done */
static int
ack_input(struct utcp_conn *c, const unsigned char *th)
{
	uint32_t ack = get32(th + 8);
	uint32_t win = (uint32_t)get16(th + 14) << c->snd_shift;
	uint32_t acked, data_acked;

	if (SEQ_GT(ack, c->snd_max)) {
		send_ack(c);		/* acknowledges what we never sent */
		return -1;
	}
	if (SEQ_LT(ack, c->snd_una))
		return 0;		/* old duplicate: ignore the field */
	c->snd_wnd = win;
	if (win > 0)
		c->persist_ms = UTCP_RTO_MIN_MS;
	acked = ack - c->snd_una;
	if (c->persist) {		/* output() decides again */
		c->persist = 0;
		c->retries = 0;
		evtimer_del(c->timer);
		if (acked == 0)
			c->snd_nxt = c->snd_una; /* probe refused: resend */
	}
	if (acked == 0)
		return 0;
	data_acked = acked;
	if (c->fin_sent && SEQ_GT(ack, c->fin_seq))
		data_acked--;
	evbuffer_drain(c->sndbuf, data_acked);
	c->snd_una = ack;
	if (SEQ_LT(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	c->retries = 0;
	c->rto_ms = UTCP_RTO_MIN_MS;
	if (c->snd_una == c->snd_max)
		evtimer_del(c->timer);
	else
		arm(c, c->rto_ms);
	if (c->fin_sent && SEQ_GT(ack, c->fin_seq)) {
		if (c->state == UTCP_FIN_WAIT_1)
			enter_state(c, UTCP_FIN_WAIT_2);
		else if (c->state == UTCP_CLOSING ||
		    c->state == UTCP_LAST_ACK) {
			finish(c, UTCP_R_DONE);
			return -1;
		}
	}
	return 0;
}

/* conn_input - one segment for an open connection */
static void
conn_input(struct utcp_conn *c, const unsigned char *th, size_t thl,
    const unsigned char *pay, size_t len)
{
	uint8_t fl = th[13];
	uint32_t seq = get32(th + 4);
	uint32_t rwnd = (uint32_t)c->p->win <<
	    (c->ws_ok ? (c->p->wscale > 14 ? 14 : c->p->wscale) : 0);
	int has_ts = 0, need_ack = 0;
	uint32_t tsval = 0;

	if (c->state == UTCP_SYN_SENT) {
		syn_sent_input(c, th, thl);
		return;
	}
	/* acceptability (RFC 9293 3.10.7.4), with a window of rwnd */
	if (!(len == 0 ? SEQ_GEQ(seq, c->rcv_nxt) &&
	    SEQ_LEQ(seq, c->rcv_nxt + rwnd) :
	    SEQ_LT(seq, c->rcv_nxt + rwnd) &&
	    SEQ_GT(seq + (uint32_t)len, c->rcv_nxt))) {
		if (!(fl & FP_TH_RST))
			send_ack(c);
		return;
	}
	if (fl & FP_TH_RST) {
		c->st->stats.rst_in++;
		if (seq == c->rcv_nxt)
			finish(c, UTCP_R_RESET);
		else
			send_ack(c);	/* RFC 5961 challenge ACK */
		return;
	}
	if (fl & FP_TH_SYN) {
		send_ack(c);		/* RFC 5961 challenge ACK */
		return;
	}
	if (!(fl & FP_TH_ACK))
		return;
	if (ack_input(c, th) == -1 || c->dead)
		return;
	parse_opts(th + 20, thl - 20, NULL, NULL, &has_ts, &tsval);
	if (c->ts_ok && has_ts && SEQ_LEQ(seq, c->rcv_nxt))
		c->ts_recent = tsval;
	if (len > 0) {
		if (SEQ_GT(seq, c->rcv_nxt)) {
			send_ack(c);	/* out of order: dropped, dup ACK */
			output(c);
			return;
		}
		if (SEQ_LT(seq, c->rcv_nxt)) {	/* partly old: trim */
			uint32_t skip = c->rcv_nxt - seq;

			pay += skip;
			len -= skip;
			seq = c->rcv_nxt;
		}
		if (!c->peer_fin) {
			c->rcv_nxt += (uint32_t)len;
			c->st->stats.bytes_in += len;
			need_ack = 1;
			if (c->cb.data != NULL) {
				c->cb.data(c, pay, len, c->arg);
				if (c->dead)
					return;
			}
		}
	}
	if ((fl & FP_TH_FIN) && !c->peer_fin &&
	    seq + (uint32_t)len == c->rcv_nxt) {
		c->peer_fin = 1;
		c->rcv_nxt++;
		need_ack = 1;
		switch (c->state) {
		case UTCP_ESTABLISHED:
			enter_state(c, UTCP_CLOSE_WAIT);
			break;
		case UTCP_FIN_WAIT_1:
			enter_state(c, UTCP_CLOSING);
			break;
		default:
			break;
		}
		send_ack(c);
		need_ack = 0;
		if (c->state == UTCP_FIN_WAIT_2) {
			finish(c, UTCP_R_DONE);	/* no TIME_WAIT */
			return;
		}
		if (c->cb.data != NULL) {
			c->cb.data(c, NULL, 0, c->arg);
			if (c->dead)
				return;
		}
	} else if ((fl & FP_TH_FIN) && c->peer_fin)
		need_ack = 1;		/* a retransmitted FIN */
	if (need_ack)
		send_ack(c);
	output(c);
}

/* utcp_input - one IP packet from the TUN device */
void
utcp_input(struct utcp_stack *st, const unsigned char *pkt, size_t len)
{
	struct utcp_tuple t;
	struct utcp_conn *c;
	size_t ihl, tot, thl;
	const unsigned char *th;

	st->stats.pkts_in++;
	memset(&t, 0, sizeof(t));
	if (len >= 20 && (pkt[0] >> 4) == 4) {
		ihl = (size_t)(pkt[0] & 0x0f) * 4;
		tot = get16(pkt + 2);
		if (ihl < 20 || tot < ihl + 20 || tot > len || pkt[9] != 6 ||
		    (get16(pkt + 6) & 0x3fff) != 0 ||
		    utcp_cksum(pkt, ihl, 0) != 0) {
			st->stats.dropped++;	/* not TCP, fragment, damaged */
			return;
		}
		memcpy(t.dst, pkt + 12, 4);	/* the peer */
		memcpy(t.src, pkt + 16, 4);	/* us */
	} else if (len >= 40 && (pkt[0] >> 4) == 6) {
		ihl = 40;
		tot = 40 + (size_t)get16(pkt + 4);
		if (pkt[6] != 6 || tot < 60 || tot > len) {
			st->stats.dropped++;	/* ND, MLD, extension headers */
			return;
		}
		t.v6 = 1;
		memcpy(t.dst, pkt + 8, 16);
		memcpy(t.src, pkt + 24, 16);
	} else {
		st->stats.dropped++;
		return;
	}
	th = pkt + ihl;
	thl = (size_t)(th[12] >> 4) * 4;
	if (thl < 20 || ihl + thl > tot ||
	    utcp_cksum(th, tot - ihl, pseudo_sum(t.v6, t.dst, t.src,
	    tot - ihl)) != 0) {
		st->stats.dropped++;
		return;
	}
	t.sport = get16(th + 2);
	t.dport = get16(th);
	if ((c = lookup(st, &t)) == NULL) {
		st->stats.dropped++;
		rst_unknown(st, &t, th, tot - ihl - thl);
		return;
	}
	c->busy++;
	conn_input(c, th, thl, th + thl, tot - ihl - thl);
	release(c);
}

/* tun_read_cb - drain the TUN device */
static void
tun_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct utcp_stack *st = arg;
	int i;

	(void)what;
	for (i = 0; i < UTCP_READ_BATCH; i++) {
		ssize_t n = read(fd, st->rbuf, sizeof(st->rbuf));

		if (n <= 0)
			break;
		utcp_input(st, st->rbuf, (size_t)n);
	}
}

/* utcp_stack_new - a stack on a TUN fd (-1: packets via utcp_input only) */
struct utcp_stack *
utcp_stack_new(struct event_base *base, int tunfd)
{
	struct utcp_stack *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	if ((st->bucket = calloc(UTCP_BUCKETS, sizeof(*st->bucket))) == NULL) {
		free(st);
		return NULL;
	}
	st->base = base;
	st->fd = tunfd;
	if (getrandom(&st->rnd, sizeof(st->rnd), 0) != sizeof(st->rnd))
		st->rnd = (uint64_t)time(NULL) * 6364136223846793005ULL;
	st->rnd |= 1;
	st->ipid = (uint16_t)rnd32(st);
	st->next_port = (uint16_t)(UTCP_EPHEMERAL_LO + rnd32(st) %
	    (UTCP_EPHEMERAL_HI - UTCP_EPHEMERAL_LO + 1));
	clock_gettime(CLOCK_MONOTONIC, &st->t0);
	if (tunfd >= 0) {
		st->rd = event_new(base, tunfd, EV_READ | EV_PERSIST,
		    tun_read_cb, st);
		if (st->rd == NULL || event_add(st->rd, NULL) == -1) {
			if (st->rd)
				event_free(st->rd);
			free(st->bucket);
			free(st);
			return NULL;
		}
	}
	return st;
}

/* utcp_stack_free - free every connection (no callbacks, no RSTs) */
void
utcp_stack_free(struct utcp_stack *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < UTCP_BUCKETS; i++)
		while (st->bucket[i] != NULL) {
			struct utcp_conn *c = st->bucket[i];

			st->bucket[i] = c->hnext;
			conn_free(c);
		}
	if (st->rd != NULL)
		event_free(st->rd);
	free(st->bucket);
	free(st);
}

/* utcp_set_output - send packets to fn instead of the TUN fd (tests) */
void
utcp_set_output(struct utcp_stack *st, utcp_output_fn *fn, void *arg)
{
	st->out = fn;
	st->out_arg = arg;
}

/* utcp_stats - copy the counters */
void
utcp_stats(const struct utcp_stack *st, struct utcp_stats *out)
{
	*out = st->stats;
}

/* tuple_from - fill t from two socket addresses of one family */
static int
tuple_from(struct utcp_tuple *t, const union ipaddr *src,
    const union ipaddr *dst, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (src->sa.sa_family != dst->sa.sa_family ||
	    (src->sa.sa_family != AF_INET && src->sa.sa_family != AF_INET6)) {
		snprintf(err, errlen, "source and destination must be both "
		    "IPv4 or both IPv6");
		return -1;
	}
	if (src->sa.sa_family == AF_INET6) {
		t->v6 = 1;
		memcpy(t->src, &src->sin6.sin6_addr, 16);
		memcpy(t->dst, &dst->sin6.sin6_addr, 16);
		t->sport = ntohs(src->sin6.sin6_port);
		t->dport = ntohs(dst->sin6.sin6_port);
	} else {
		memcpy(t->src, &src->sin.sin_addr, 4);
		memcpy(t->dst, &dst->sin.sin_addr, 4);
		t->sport = ntohs(src->sin.sin_port);
		t->dport = ntohs(dst->sin.sin_port);
	}
	return 0;
}

/* utcp_connect - send the SYN of persona p; callbacks report progress.
 * A source port of 0 picks a free ephemeral port. */
struct utcp_conn *
utcp_connect(struct utcp_stack *st, const union ipaddr *src,
    const union ipaddr *dst, const struct persona *p,
    const struct utcp_cb *cb, void *arg, char *err, size_t errlen)
{
	struct utcp_tuple t;
	struct utcp_conn *c;
	int tries;

	if (tuple_from(&t, src, dst, err, errlen) == -1)
		return NULL;
	if (p->ver != 0 && p->ver != (t.v6 ? 6 : 4)) {
		snprintf(err, errlen, "personality %s is IPv%d only", p->name,
		    p->ver);
		return NULL;
	}
	if (t.sport == 0) {
		for (tries = 0; tries < UTCP_EPHEMERAL_HI - UTCP_EPHEMERAL_LO;
		    tries++) {
			if (++st->next_port > UTCP_EPHEMERAL_HI ||
			    st->next_port < UTCP_EPHEMERAL_LO)
				st->next_port = UTCP_EPHEMERAL_LO;
			t.sport = st->next_port;
			if (lookup(st, &t) == NULL)
				break;
			t.sport = 0;
		}
		if (t.sport == 0) {
			snprintf(err, errlen, "no free source port");
			return NULL;
		}
	} else if (lookup(st, &t) != NULL) {
		snprintf(err, errlen, "4-tuple already in use");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->sndbuf = evbuffer_new()) == NULL ||
	    (c->timer = evtimer_new(st->base, conn_timer_cb, c)) == NULL) {
		if (c != NULL)
			conn_free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->st = st;
	c->t = t;
	if (t.v6 && (p->quirks & FP_Q_FLOW))
		while ((c->flow = rnd32(st) & 0xfffff) == 0)
			;
	c->p = p;
	c->cb = *cb;
	c->arg = arg;
	c->state = UTCP_SYN_SENT;
	c->iss = (p->quirks & FP_Q_ZERO_SEQ) ? 0 : rnd32(st);
	c->snd_una = c->snd_nxt = c->iss;
	c->snd_max = c->iss + 1;
	c->ts_offset = rnd32(st);
	c->peer_mss = UTCP_DEFAULT_MSS;
	c->rto_ms = UTCP_SYN_RTO_MS;
	c->persist_ms = UTCP_RTO_MIN_MS;
	{
		size_t h = hash4(&c->t);

		c->hnext = st->bucket[h];
		st->bucket[h] = c;
	}
	st->stats.active++;
	st->stats.opened++;
	send_syn(c);
	arm(c, c->rto_ms);
	return c;
}

/* utcp_send - queue data; sent as the window allows.  -1 after close */
int
utcp_send(struct utcp_conn *c, const void *data, size_t len)
{
	if (c->dead || c->fin_wanted)
		return -1;
	if (evbuffer_add(c->sndbuf, data, len) == -1)
		return -1;
	c->busy++;
	output(c);
	release(c);
	return 0;
}

/* utcp_close - send FIN once the queued data is out */
void
utcp_close(struct utcp_conn *c)
{
	if (c->dead || c->fin_wanted)
		return;
	c->fin_wanted = 1;
	c->busy++;
	output(c);
	release(c);
}

/* utcp_abort - send RST and free the connection without closed() */
void
utcp_abort(struct utcp_conn *c)
{
	if (c->dead)
		return;
	send_rst(c);
	c->quiet = 1;
	finish(c, UTCP_R_RESET);
}

/* utcp_state_name - the connection's state, for logs and tests */
const char *
utcp_state_name(const struct utcp_conn *c)
{
	return utcp_state_names[c->state];
}

/* utcp_reason_name - a closed() reason as text */
const char *
utcp_reason_name(enum utcp_reason r)
{
	switch (r) {
	case UTCP_R_DONE: return "done";
	case UTCP_R_REFUSED: return "refused";
	case UTCP_R_RESET: return "reset";
	case UTCP_R_TIMEOUT: return "timeout";
	}
	return "?";
}

/* utcp_local_port - the connection's source port (host order) */
uint16_t
utcp_local_port(const struct utcp_conn *c)
{
	return c->t.sport;
}

/* utcp_unsent - bytes queued and not yet acknowledged */
size_t
utcp_unsent(const struct utcp_conn *c)
{
	return evbuffer_get_length(c->sndbuf);
}
