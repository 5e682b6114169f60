/*
 * utcp.h - the swarm's own client-side TCP over a TUN device (IPv4, IPv6)
 *
 * One struct utcp_stack per TUN fd and event_base.  utcp_connect() sends
 * the exact SYN of a personality and runs the connection: in-order data,
 * ACKs, retransmission, peer window (with persist probes), FIN and RST.
 * See doc/internals/swarm-tcp.md for what it does and does not do.
 *
 * Callbacks may call utcp_send(), utcp_close() and utcp_abort() on their
 * own connection.  closed() is the last call for a connection: the stack
 * frees it when closed() returns.  utcp_abort() frees it without calling
 * closed().
 */
#ifndef MS_SWARM_UTCP_H
#define MS_SWARM_UTCP_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "util/addr.h"

struct event_base;
struct persona;
struct utcp_stack;
struct utcp_conn;

enum utcp_reason {		/* why closed() was called */
	UTCP_R_DONE,		/* both FINs exchanged and acknowledged */
	UTCP_R_REFUSED,		/* RST in answer to our SYN */
	UTCP_R_RESET,		/* RST on an open connection */
	UTCP_R_TIMEOUT		/* retransmissions exhausted */
};

struct utcp_cb {
	void	(*connected)(struct utcp_conn *, void *arg);
	/* len 0 and data NULL: the peer sent FIN (no more data) */
	void	(*data)(struct utcp_conn *, const unsigned char *data,
		    size_t len, void *arg);
	void	(*closed)(struct utcp_conn *, enum utcp_reason, void *arg);
};

struct utcp_stats {		/* counters since utcp_stack_new() */
	uint64_t	pkts_in, pkts_out;	/* packets read / written */
	uint64_t	bytes_in, bytes_out;	/* TCP payload bytes */
	uint64_t	retransmits;		/* segments sent again */
	uint64_t	persist_probes;		/* zero-window probes */
	uint64_t	rst_in, rst_out;	/* RSTs received / sent */
	uint64_t	dropped;		/* bad, foreign or not TCP */
	uint64_t	write_errors;		/* TUN writes that failed */
	uint64_t	active;			/* connections now open */
	uint64_t	opened, closed;		/* connections ever */
};

/* Packet output, for tests: replaces write() to the TUN fd. */
typedef void utcp_output_fn(const unsigned char *pkt, size_t len, void *arg);

#define UTCP_RTO_MIN_MS		200	/* first retransmission timeout */
#define UTCP_RTO_MAX_MS		60000	/* backoff ceiling */
#define UTCP_SYN_RETRIES	5	/* SYNs before UTCP_R_TIMEOUT */
#define UTCP_DATA_RETRIES	8	/* data retransmissions before it */

struct utcp_stack *utcp_stack_new(struct event_base *base, int tunfd);
void	utcp_stack_free(struct utcp_stack *st);
void	utcp_set_output(struct utcp_stack *st, utcp_output_fn *fn, void *arg);
void	utcp_input(struct utcp_stack *st, const unsigned char *pkt,
	    size_t len);
void	utcp_stats(const struct utcp_stack *st, struct utcp_stats *out);

struct utcp_conn *utcp_connect(struct utcp_stack *st,
	    const union ipaddr *src, const union ipaddr *dst,
	    const struct persona *p, const struct utcp_cb *cb, void *arg,
	    char *err, size_t errlen);
int	utcp_send(struct utcp_conn *c, const void *data, size_t len);
void	utcp_close(struct utcp_conn *c);
void	utcp_abort(struct utcp_conn *c);
const char *utcp_state_name(const struct utcp_conn *c);
const char *utcp_reason_name(enum utcp_reason r);
size_t	utcp_unsent(const struct utcp_conn *c);
uint16_t utcp_local_port(const struct utcp_conn *c);

uint16_t utcp_cksum(const void *data, size_t len, uint32_t sum);

#endif
