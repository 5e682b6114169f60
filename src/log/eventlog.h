/*
 * eventlog.h - the JSON-lines event log, written off the event loop
 */
#ifndef MS_EVENTLOG_H
#define MS_EVENTLOG_H

#include <stddef.h>
#include <sys/types.h>

struct evbuffer;

int	evlog_open(const char *path, char *err, size_t errlen);
int	evlog_chown(uid_t, gid_t, char *err, size_t errlen);
void	evlog_append(struct evbuffer *line);
void	evlog_reopen(void);
void	evlog_close(void);
unsigned long evlog_dropped(void);

#endif
