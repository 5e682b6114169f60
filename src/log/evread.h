/*
 * evread.h - the event-log record reader: one parsed JSON line (util/
 *	      jsonl.h) as a typed session, message or feedback record
 *
 * See evrec_read.c for the rules.  The reader knows the keys that
 * evrec_write.c writes (and the feedback record's); it depends on util/
 * and log/evrec.h only, so tools that read logs (report, evaluate, the
 * swarm) link it without the daemon.
 */
#ifndef MS_EVREAD_H
#define MS_EVREAD_H

#include <stddef.h>
#include <stdint.h>

#include "log/evrec.h"

struct jl_doc;
struct jl_val;

/* What evr_read() returns (and what it is asked to read, as 1 << type). */
enum evr_type {
	EVR_OTHER,		/* a record of a type not asked for */
	EVR_SESSION,
	EVR_MESSAGE,
	EVR_FEEDBACK,
	EVR_NTYPES
};

/* evr_read() flags: which types to read, and what they must carry. */
#define EVR_R_SESSION	(1u << EVR_SESSION)
#define EVR_R_MESSAGE	(1u << EVR_MESSAGE)
#define EVR_R_FEEDBACK	(1u << EVR_FEEDBACK)
#define EVR_R_MSG_ID	0x100	/* a message record must have an 'id' */
#define EVR_R_SESS_START 0x200	/* a session record, a valid 'start' */
#define EVR_R_ZONES	0x400	/* fill a session's dnsbl_zones (else "") */

#define EVR_ZONES_MAX	1024	/* dnsbl zone list, NUL included */
#define EVR_MAX_ZONES	32	/* DNS list zones read per session */

/*
 * A session record as read.  Strings point into the parsed document and
 * live until its next parse; NULL = absent or not a string.
 */
struct evr_rsession {
	const char *id;			/* never NULL */
	int64_t	start_ms;		/* Unix ms (INT64_MIN = not valid) */
	int64_t	end_ms;			/* Unix ms (INT64_MIN = not valid) */
	const char *client_ip;
	const char *class_name;
	int	control;		/* 1 = in the exploration control group */
	int	fp;			/* 1 = "fp" is an object (a SYN) */
	const char *fp_os, *fp_key, *fp_raw_sig;	/* its members */
	int	dnsbl_asked;		/* 1 = "dnsbl" is an object */
	char	dnsbl_zones[EVR_ZONES_MAX]; /* listing zones, sorted, unique,
					   comma-separated ("" = none) */
	enum outcome outcome;		/* OC_F_SESS outcome, else OC_NONE */
	int	has_messages;		/* "messages" is a number */
	double	messages;		/* ... its value (0 when not) */
	double	gave_up_after_s;	/* < 0: absent, null or negative */
};

/* A message record as read (strings as above). */
struct evr_rmessage {
	const char *session;		/* never NULL */
	const char *id;			/* never NULL with EVR_R_MSG_ID */
	int64_t	time_ms;		/* Unix ms, always valid */
	enum outcome outcome;		/* OC_F_MSG outcome, else OC_NONE
					   (an unknown name or another kind) */
	const char *client_ip;
	const char *os;
	const char *raw_sig;
	const char *class_name;
};

/* A feedback record as read: a verdict on a message or a session. */
struct evr_rfeedback {
	const char *session;		/* NULL when only the message is named */
	const char *message;		/* NULL: the verdict is the session's */
	enum outcome verdict;		/* OC_SPAM or OC_HAM */
};

struct evr_rec {
	enum evr_type type;
	union {
		struct evr_rsession s;
		struct evr_rmessage m;
		struct evr_rfeedback f;
	} u;
};

int	evr_read(const struct jl_doc *, const struct jl_val *root,
	    unsigned flags, struct evr_rec *, char *err, size_t errlen);
int	evr_time_ms(const char *, int64_t *ms);
int	evr_dnsbl_zones(const struct jl_doc *, const struct jl_val *dnsbl,
	    char *out, size_t len);

#endif
