/*
 * backend.h - the connection to the real MTA behind us
 */
#ifndef MS_BACKEND_H
#define MS_BACKEND_H

#include <stddef.h>

struct sess;
struct evbuffer;
struct bk;

/*
 * Completion of an operation.  code is the backend's reply code, or -1 when
 * the backend failed (connect, timeout, close, garbage); text holds the
 * reply lines with CRLF ends (or one line saying what failed, no CRLF).
 */
typedef void bk_cb(struct sess *, int code, const char *text);

#define BK_REPLY_MAX	8192	/* longest reply we relay */

struct bk *bk_open(struct sess *, bk_cb *ready);
void	bk_command(struct bk *, const char *line, bk_cb *cb);
void	bk_data(struct bk *, struct evbuffer *content, bk_cb *cb);
void	bk_free(struct bk *, int quit);
void	bk_release(struct bk *);
int	bk_can_open(void);
void	bk_pool_flush(void);
void	bk_probe(void);
void	bk_probe_cancel(void);
/* for the session fuzzer: run an armed keepalive (NULL: the cache's) now */
int	bk_fire_idle(struct bk *);

#endif
