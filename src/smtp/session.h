/*
 * session.h - one client SMTP session: state machine, shaping, relay
 */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/event_struct.h>

#include "conf/conf.h"
#include "log/evrec.h"
#include "smtp/canon.h"

struct bufferevent;
struct evbuffer;
struct bk;
struct fp_result;
struct dnsbl_req;
struct fcrdns_req;
struct dnsbl_result;
struct spool;

#define SESS_MAX_REASONS	16

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
	char	id[16];			/* session id, e.g. 6567a1b2c3d4 */
	struct bufferevent *bev;	/* client side (TLS filter after STARTTLS) */
	struct bk *bk;			/* backend connection, or NULL */
	struct event timer;		/* delays and stutter */
	struct event wd;		/* the deadline of the current state */
	enum sess_state state;
	union ipaddr peer;		/* client, IPv4-mapped folded */
	union ipaddr local;		/* the address it connected to */
	char	ip[48];			/* peer as text */
	int	port;
	struct timeval start;
	struct timeval last_reply;	/* when the last reply completed */
	struct shclass cls;		/* copy: a reload never changes a session */
	int	class_idx;		/* index in ms->class_count */
	char   *reasons;		/* heap: reasons, each ended by NUL */
	size_t	reasons_len;		/* bytes used in reasons */
	int	nreasons;
	struct fp_result *fp;		/* NULL: no saved SYN */
	struct dnsbl_req *dnsbl_req;	/* DNS list lookup in flight */
	struct dnsbl_result *dnsbl;	/* its answer, NULL until then */
	struct fcrdns_req *fcrdns_req;	/* reverse lookup in flight */
	char   *ptr_name;		/* forward-confirmed reverse name */
	char   *domain;			/* its organisational domain */
	double	score;			/* the policy's last score */
	const char *violation;		/* the last violation (static text) */
	int	static_class;		/* client_class_map decided */
	int	control;		/* exploration control group */
	int	explore_drawn;		/* control decided once per session */
	int	learned;		/* an outcome reached reputation */
	unsigned listed_kinds;		/* keys taught "listed": bits 1 << enum
					   rep_keykind (0 = none) */
	char   *helo;			/* strdup'd, NULL until EHLO/HELO */
	int	esmtp;
	int	tls;			/* STARTTLS done */
	int	errors;			/* syntax and sequence errors */
	int	junk;			/* NOOP, RSET, VRFY, EXPN, HELP */
	int	violations;
	int	messages;		/* transactions that reached the dot */
	int	rcpt_total;		/* accepted, whole session */
	int	busy;			/* waiting on a timer or the backend */
	char	verb[16];		/* the current command's name */
	int	counted;		/* holds a slot in the caps */
	int	in_process;		/* sess_process() is on the stack */
	int	rate_limited;		/* a token bucket applies */
	int	bk_txn;			/* the backend has an open transaction */
	struct timeval cmd_time;	/* when the current command was read */
	void	(*cont)(struct sess *);	/* run when the timer fires */
	struct sess *prev, *next;	/* live sessions */
	int	eof;			/* client closed its side */
	int	quit;			/* QUIT received */
	int	crlf_data;		/* DATA line ended with CRLF */
	int	skip_line;		/* discarding an over-long line */
	int	data_too_big;
	int	backend_failed;		/* this session saw a backend failure */
	enum outcome outcome;
	/* The reply being written. */
	struct evbuffer *reply;		/* bytes not yet written */
	long	reply_interval;		/* ms between stutter writes */
	struct timeval reply_due;	/* latest time for the last byte */
	void	(*after)(struct sess *); /* run when the reply is complete */
	/* The current transaction. */
	int	msgno;
	char   *mail_from;		/* strdup'd reverse path, NULL = none */
	char   *mail_params;		/* forwarded MAIL parameters */
	int	rcpt;			/* RCPT commands in this transaction */
	int	rcpt_ok;		/* accepted by the backend */
	enum msg_stage stage;
	struct canon canon;
	struct spool *spool;		/* canonical message content */
	int	spool_failed;		/* the spool could not be written */
	struct timeval data_deadline;	/* DATA/BDAT: smtp_timeout, moved on
					   by min_data_rate per byte */
	long	bdat_left;		/* bytes left in the BDAT chunk */
	int	bdat_last;
	int	bdat_txn;		/* this transaction sends BDAT chunks */
	enum sess_state bdat_prev;	/* state to return to after a chunk */
	const char *bdat_error;		/* reply after the chunk, or NULL */
	int	out_blocked;		/* input paused: output over its mark */
	int	read_paused;		/* EV_READ off: input full, not served */
	int	pregreet;		/* talked before the banner */
	int	pipe_warned;		/* improper pipelining logged */
	int	barelf_warned;		/* bare LF in a command logged */
	char   *pending;		/* command held for the backend */
	char   *pending_args;		/* its arguments, for BDAT */
};

void	sess_accept(int fd, const struct sockaddr *sa, socklen_t salen,
	    const unsigned char *syn, int synlen);
void	sess_free(struct sess *, const char *reason);
const char *sess_state_name(enum sess_state);
void	sess_add_reason(struct sess *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	sess_clear_reasons(struct sess *);
void	sess_shutdown_all(const char *why);
void	sess_deinit(void);
/* for the session fuzzer: run armed timers now (fuzz/fuzz_session.c) */
#define SESS_FIRE_DELAY		0x01	/* delays, stutter */
#define SESS_FIRE_DEADLINE	0x02	/* state deadlines */
#define SESS_FIRE_BACKEND	0x04	/* backend keepalives */
int	sess_fire_timers(int which);

#endif
