/*
 * log.h - one logging family for the daemon and the tools
 *
 * log_warn() appends strerror(errno); log_warnx() does not.  fatal() and
 * fatalx() log and exit(1): they are for start-up only, never for a peer.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

#include <stdarg.h>

#define LOG_TO_STDERR	0	/* foreground, tools */
#define LOG_TO_SYSLOG	1	/* daemon: facility mail */
#define LOG_TO_NONE	2	/* discarded (fuzz targets) */

void	log_init(int where, const char *ident);
void	log_set_verbose(int level);
int	log_get_verbose(void);
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
