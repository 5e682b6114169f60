/*
 * spool.h - message content of one transaction, in memory or in an
 *	     unlinked file, under one memory budget for all sessions
 */
#ifndef MS_SPOOL_H
#define MS_SPOOL_H

#include <stddef.h>

struct evbuffer;
struct event_base;
struct spool;

int	spool_init(struct event_base *, const char *dir, const char *user,
	    char *err, size_t errlen);
void	spool_deinit(void);
int	spool_check(char *err, size_t errlen);
struct spool *spool_new(void);
struct evbuffer *spool_buf(struct spool *);
int	spool_settle(struct spool *, char *err, size_t errlen);
void	spool_discard(struct spool *);
struct evbuffer *spool_take(struct spool *, char *err, size_t errlen);
void	spool_free(struct spool *);
int	spool_in_file(const struct spool *);

#endif
