/*
 * backend.h - the connection to the real MTA behind us
 */
#ifndef MS_BACKEND_H
#define MS_BACKEND_H

#include <stddef.h>

#include "log/evrec.h"
#include "util/addr.h"

struct evbuffer;
struct bk;

/* What the backend probe learned (EHLO keywords). */
struct bk_caps {
	int	known;			/* a probe has succeeded */
	int	pipelining;
	int	eightbit;
	int	smtputf8;
	int	chunking;
	int	enhanced;		/* ENHANCEDSTATUSCODES */
	int	starttls;
	long	size;			/* SIZE value (0 = none / unlimited) */
	int	has_size;
	unsigned xclient;		/* XCLIENT attributes: BK_XA_* bits */
};

#define BK_XA_NAME	0x01
#define BK_XA_ADDR	0x02
#define BK_XA_PORT	0x04
#define BK_XA_PROTO	0x08
#define BK_XA_HELO	0x10
#define BK_XA_ANY	0x80		/* XCLIENT advertised at all */

/*
 * Completion of an operation.  code is the backend's reply code, or -1 when
 * the backend failed (connect, timeout, close, garbage); text holds the
 * reply lines with CRLF ends (or one line saying what failed, no CRLF).
 */
typedef void bk_cb(void *arg, int code, const char *text);

#define BK_REPLY_MAX	8192	/* longest reply we relay */

/*
 * bk_open: a backend session for the client `who` (its summary: address,
 * port, verified name, HELO, ESMTP, read when XCLIENT, PROXY or EHLO is
 * sent, so it must outlive the connection's use) connected to `local`;
 * ready(arg, 250|-1, text) later, and every operation's callback gets arg.
 * bk_caps: what the last successful probe learned; bk_set_caps replaces it
 * (the probe, and the session fuzzer).
 */
struct bk *bk_open(const struct evr_session *who, const union ipaddr *local,
	    void *arg, bk_cb *ready);
void	bk_command(struct bk *, const char *line, bk_cb *cb);
void	bk_data(struct bk *, struct evbuffer *content, bk_cb *cb);
void	bk_free(struct bk *, int quit);
void	bk_release(struct bk *);
int	bk_can_open(void);
void	bk_pool_flush(void);
void	bk_probe(void);
const struct bk_caps *bk_caps(void);
void	bk_set_caps(const struct bk_caps *);
void	bk_probe_cancel(void);
/* for the session fuzzer: run an armed keepalive (NULL: the cache's) now */
int	bk_fire_idle(struct bk *);

#endif
