/*
 * evrec.h - the event records: outcomes and stages with their names, the
 *	     session summary and the message record, their JSON form
 *
 * This is the one place the event-log schema lives.  The session fills a
 * struct evr_session as it goes (it owns one, embedded) and a struct
 * evr_message at the end of each transaction; the admin API, feedback and
 * learning read those records, never a live session.  evr_session_json()
 * and evr_message_json() write the log lines; report, evaluate and admin
 * read them back with the reader in evrec_read.c.
 *
 * The first OC_NLEARN outcomes are the ones reputation counts (their names
 * are the column and hash-field names of the stores: never rename them).
 */
#ifndef MS_EVREC_H
#define MS_EVREC_H

#include <stddef.h>
#include <sys/time.h>

#include "util/addr.h"

struct evbuffer;
struct fp_result;
struct dnsbl_result;

enum outcome {
	OC_DELIVERED,		/* message: the backend accepted it (good) */
	OC_REJECTED,		/* message: refused, 5xx (bad) */
	OC_DEFERRED,		/* message: 4xx (counted, neither) */
	OC_ABANDONED,		/* message or session: the client left (bad) */
	OC_PROTOCOL_ERROR,	/* message or session: broke the rules (bad) */
	OC_SPAM,		/* feedback (bad) */
	OC_HAM,			/* feedback (good) */
	OC_LISTED,		/* a DNS block list listed the client (bad;
				   taught to every key but ip) */
	OC_NLEARN,		/* outcomes above are what reputation counts */
	OC_BACKEND_ERROR = OC_NLEARN, /* message or session: ours, never
				   learned */
	OC_COMPLETED,		/* session: ended by QUIT */
	OC_REFUSED,		/* session: 421 at connect (caps) */
	OC_NONE,		/* message: no outcome yet */
	OC_N
};

/* What an outcome is (outcome_flags()). */
#define OC_F_MSG	0x01	/* a message record may carry it */
#define OC_F_SESS	0x02	/* a session record may carry it */
#define OC_F_GOOD	0x04	/* reputation: good evidence */
#define OC_F_BAD	0x08	/* reputation: bad evidence */

const char *outcome_name(enum outcome);		/* "delivered", "?" */
int	outcome_parse(const char *);		/* enum outcome, or -1 */
unsigned outcome_flags(enum outcome);		/* OC_F_* */

/* How far a transaction got (message record "stage"). */
enum msg_stage { MST_MAIL, MST_RCPT, MST_DATA, MST_DOT, MST_N };

const char *msg_stage_name(enum msg_stage);	/* "mail", ... */
int	msg_stage_parse(const char *);		/* enum msg_stage, or -1 */

#define EVR_ID_MAX	16	/* session id, NUL included */

/*
 * The session summary: everything that outlives the session's protocol
 * state.  Strings are owned by whoever fills the record (NULL = none);
 * reasons are nreasons strings, each ended by NUL, in reasons_len bytes.
 */
struct evr_session {
	char	id[EVR_ID_MAX];
	union ipaddr peer;		/* client, IPv4-mapped folded */
	char	ip[48];			/* peer as text */
	int	port;
	struct timeval start;
	struct timeval end;		/* set when the record is written */
	char   *helo;
	const char *class_name;		/* the current class */
	char   *reasons;
	size_t	reasons_len;
	const struct fp_result *fp;	/* NULL: no saved SYN */
	const struct dnsbl_result *dnsbl; /* NULL: no answer (yet) */
	char   *ptr_name;		/* forward-confirmed reverse name */
	char   *domain;			/* its organisational domain */
	const char *violation;		/* the last one (static text) */
	double	score;
	double	gave_up_after_s;	/* < 0: did not give up */
	int	esmtp;
	int	tls;
	int	class_idx;		/* the class's slot (-1 = none yet) */
	int	nreasons;
	int	control;		/* exploration control group */
	int	static_class;		/* client_class_map decided */
	int	counted;		/* held a slot (not refused) */
	int	observe;		/* observe mode */
	int	violations;
	int	messages;		/* transactions that reached the dot */
	int	msgno;			/* transactions started */
	enum outcome outcome;		/* OC_F_SESS outcomes */
};

/* One transaction's record, written when it ends. */
struct evr_message {
	const struct evr_session *sess;
	int	msgno;
	struct timeval time;
	const char *mail_from;
	int	rcpt;			/* RCPT commands */
	int	rcpt_accepted;
	size_t	size;
	enum outcome outcome;		/* OC_F_MSG outcomes */
	enum msg_stage stage;
	const char *reply;		/* the final reply's first line, or NULL */
};

/* A downstream filter's verdict on a session or one of its messages. */
struct evr_feedback {
	struct timeval time;
	const char *session;		/* session id */
	const char *message;		/* "<session>.<n>", or NULL */
	enum outcome verdict;		/* OC_SPAM or OC_HAM */
};

/* The JSON lines (newline included) appended to b; -1 when out of memory. */
int	evr_session_json(const struct evr_session *, struct evbuffer *b);
int	evr_message_json(const struct evr_message *, struct evbuffer *b);
int	evr_feedback_json(const struct evr_feedback *, struct evbuffer *b);
/* The i-th reason of a summary, or NULL. */
const char *evr_reason(const struct evr_session *, int i);

#endif
