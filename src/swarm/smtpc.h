/*
 * smtpc.h - the swarm's SMTP client behaviour engine: one sender session
 *
 * One struct smtpc is one simulated sender's SMTP session over an abstract
 * byte transport (utcp over TUN in the swarm, a socket bufferevent in the
 * tests).  It greets, sends EHLO (or HELO), runs one transaction per
 * message of its spec, pipelines when asked and offered, uses STARTTLS
 * when asked and offered (OpenSSL over memory BIOs, so the transport
 * carries the ciphertext and stays a plain byte pipe), gives up when a
 * reply is late beyond its patience, and reports per-message outcomes and
 * timings to a done callback.  See doc/internals/smtpc.md.
 *
 * Contract with the transport:
 * - The transport calls smtpc_on_connected() once, smtpc_on_data() for
 *   every chunk read (len 0 = the peer's FIN), smtpc_on_closed() when the
 *   connection is gone (reset != 0 for an RST or error).  After
 *   smtpc_on_closed() the smtpc never calls the transport again.
 * - The smtpc calls send() any number of times, then exactly one of close()
 *   (orderly: flush, FIN) or abort() (RST, discard), unless the transport
 *   reported smtpc_on_closed() first.  Calls into the smtpc after it has
 *   closed or aborted are ignored.
 * - done() is called once, from a zero-delay timer, never from inside an
 *   smtpc_on_*() call.  It may smtpc_free() the session, once the caller
 *   has made sure its transport no longer calls into it.
 * - The spec and everything it points to must stay valid until
 *   smtpc_free().  The result is owned by the smtpc.
 * - All sessions share one lazily created client SSL_CTX (TLS >= 1.2, no
 *   certificate verification); smtpc_deinit() frees it.  It is an error
 *   to use smtpc from more than one thread, or to call smtpc_deinit()
 *   while a session that started TLS is not yet freed.
 */
#ifndef MS_SWARM_SMTPC_H
#define MS_SWARM_SMTPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct smtpc;

#define SMTPC_REPLY_LINE_MAX	512	/* one reply line with CRLF (RFC 5321
					 * 4.5.3.1.5); longer = protocol error */
#define SMTPC_REPLY_MAX		4096	/* a whole multi-line reply, bytes */
#define SMTPC_RCPT_MAX		100	/* recipients per message */
#define SMTPC_POP_MAX		63	/* population name, bytes */
#define SMTPC_PATIENCE_RFC	0	/* patience_ms: RFC 5321 4.5.3.2 */
#define SMTPC_BASELINE_MS	200	/* default delay baseline per reply */
#define SMTPC_CONNECT_MS	30000	/* connect timeout under RFC patience */

enum smtpc_truth {
	SMTPC_HAM,
	SMTPC_SPAM
};

enum smtpc_giveup {		/* what patience expiry does */
	SMTPC_GIVEUP_ABORT,	/* RST, as a bot's killed socket */
	SMTPC_GIVEUP_CLOSE	/* FIN, as an MTA's timeout */
};

struct smtpc_msg {
	enum smtpc_truth truth;	/* written as X-Swarm-Truth: */
	const char *population;	/* X-Swarm-Population: ([A-Za-z0-9._-],
				 * 1..63 bytes; NULL = no label) */
	size_t	size;		/* message bytes before dot-stuffing, final
				 * dot excluded (raised to the header size) */
};

struct smtpc_spec {
	const char *helo;	/* EHLO/HELO name (NULL = random, from seed) */
	const char *mail_from;	/* reverse path without <> ("" = null) */
	const char *const *rcpt; /* forward paths without <> */
	size_t	nrcpt;		/* 1..SMTPC_RCPT_MAX */
	const struct smtpc_msg *msg; /* one transaction each, in order */
	size_t	nmsg;		/* >= 1 */
	unsigned patience_ms;	/* longest wait for one reply (and the
				 * connect); SMTPC_PATIENCE_RFC = per stage */
	enum smtpc_giveup giveup; /* on patience expiry */
	int	pregreet;	/* 1 = send EHLO before the banner */
	int	pipelining;	/* 1 = MAIL/RCPT/DATA in one write when the
				 * server offers PIPELINING */
	int	use_helo;	/* 1 = HELO only, never EHLO */
	int	starttls;	/* 1 = STARTTLS when the EHLO reply offers
				 * it; a 4xx/5xx to it = go on in plaintext */
	unsigned baseline_ms;	/* reply time not counted as added delay
				 * (0 = SMTPC_BASELINE_MS) */
	uint64_t seed;		/* random HELO and body filler */
};

/* What the session waits for; the head of its reply queue. */
enum smtpc_state {
	SMTPC_S_CONNECT,	/* transport not yet connected */
	SMTPC_S_GREETING,	/* the banner */
	SMTPC_S_EHLO,
	SMTPC_S_HELO,
	SMTPC_S_STARTTLS,	/* the 220 to STARTTLS */
	SMTPC_S_TLS,		/* the TLS handshake (not a reply) */
	SMTPC_S_MAIL,
	SMTPC_S_RCPT,
	SMTPC_S_DATA,		/* the 354 */
	SMTPC_S_DOT,		/* the reply after the final dot */
	SMTPC_S_RSET,
	SMTPC_S_QUIT,
	SMTPC_S_DONE,		/* finished; nothing expected */
	SMTPC_NSTATE
};

enum smtpc_outcome {
	SMTPC_UNSENT,		/* the session ended before it began */
	SMTPC_DELIVERED,	/* 250 after the final dot */
	SMTPC_REJECTED,		/* a 5xx decided it */
	SMTPC_DEFERRED,		/* a 4xx decided it: retry later */
	SMTPC_ABANDONED,	/* we gave up, or the connection was lost or
				 * broken while it was in hand */
	SMTPC_NOUTCOME
};

enum smtpc_end {		/* how the session ended */
	SMTPC_END_QUIT,		/* QUIT answered, or answered late/never
				 * after the last message was decided */
	SMTPC_END_PATIENCE,	/* a reply was later than the patience */
	SMTPC_END_PEER_CLOSED,	/* FIN before we were done */
	SMTPC_END_RESET,	/* RST/error before we were done */
	SMTPC_END_PROTOCOL,	/* a malformed or unexpected reply */
	SMTPC_END_SERVICE,	/* 421 or a refusing greeting/HELO */
	SMTPC_END_SEND,		/* the transport's send() failed */
	SMTPC_END_TLS,		/* the TLS handshake or a TLS record failed */
	SMTPC_NEND
};

struct smtpc_msg_result {
	enum smtpc_outcome outcome;
	enum smtpc_state stage;	/* the reply that decided it (or the one
				 * awaited when abandoned) */
	int	code;		/* that reply's code; 0 = none */
	unsigned rcpt_ok, rcpt_temp, rcpt_perm; /* RCPT replies: 2xx/4xx/5xx */
	double	added_delay_s;	/* added delay from the previous message's
				 * decision (or the start) to this one's */
	double	giveup_s;	/* abandoned: seconds from the start to the
				 * give-up or loss; -1 otherwise */
};

struct smtpc_result {
	enum smtpc_end end;
	size_t	nmsg;
	const struct smtpc_msg_result *msg; /* nmsg entries, spec order */
	size_t	n[SMTPC_NOUTCOME];	/* messages by outcome */
	int	connected;	/* 1 = the transport connected */
	int	esmtp;		/* 1 = EHLO was accepted */
	int	pipelined;	/* 1 = the server offered PIPELINING (in
				 * the last EHLO reply: after TLS, its) */
	int	tls;		/* 1 = the session ran TLS (handshake done) */
	double	banner_s;	/* start to the banner's last byte; -1 = none */
	double	added_delay_s;	/* sum of max(0, wait - baseline) per reply */
	double	giveup_s;	/* start to the give-up; -1 = did not give up */
	double	waited_s;	/* patience expiry: the wait for that reply */
	double	duration_s;	/* start to the end of the session */
	enum smtpc_state last_stage;	/* the state of the last reply */
	int	last_code;	/* last complete reply's code; 0 = none */
	char	last_reply[SMTPC_REPLY_MAX + 8]; /* "CODE text", its lines'
				 * texts joined by '\n' ("" = none) */
	int	defer_code;	/* first 4xx code seen (0 = none): the
				 * retry hint for the driver */
	unsigned busy_4xx;	/* 4xx to MAIL, RCPT, DATA or the final
				 * dot that refuse for want of backend
				 * capacity (smtpc_busy_reply()) */
	unsigned mail_4xx;	/* every 4xx to MAIL, whatever its cause */
};

struct smtpc_transport {
	int	(*send)(void *t, const void *data, size_t len); /* -1 = dead */
	void	(*close)(void *t);
	void	(*abort)(void *t);
	void	*t;
};

typedef void smtpc_done_fn(struct smtpc *, const struct smtpc_result *,
	    void *arg);

struct smtpc *smtpc_new(struct event_base *base, const struct smtpc_spec *spec,
	    const struct smtpc_transport *tr, smtpc_done_fn *done, void *arg,
	    char *err, size_t errlen);
void	smtpc_free(struct smtpc *);
void	smtpc_on_connected(struct smtpc *);
void	smtpc_on_data(struct smtpc *, const unsigned char *data, size_t len);
void	smtpc_on_closed(struct smtpc *, int reset);

const struct smtpc_result *smtpc_result(const struct smtpc *);
enum smtpc_state smtpc_state(const struct smtpc *);
const char *smtpc_state_name(enum smtpc_state);
const char *smtpc_outcome_name(enum smtpc_outcome);
const char *smtpc_end_name(enum smtpc_end);
unsigned smtpc_stage_timeout_ms(const struct smtpc_spec *, enum smtpc_state);
size_t	smtpc_retry_list(const struct smtpc_result *, size_t *idx, size_t max);
void	smtpc_deinit(void);

/* Helpers, exported for tests. */
char	*smtpc_message(const struct smtpc_spec *, size_t i, size_t *len);
char	*smtpc_dotstuff(const char *in, size_t len, size_t *outlen);
void	smtpc_random_helo(uint64_t seed, char *out, size_t outlen);
int	smtpc_busy_reply(int code, const char *text);

#endif
