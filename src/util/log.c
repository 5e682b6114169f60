/*
 * log.c - logging to stderr (foreground, CLI) or syslog facility mail, or
 *	   nowhere (fuzz targets)
 *
 * Exports the log_* family of log.h.  Messages are formatted into a stack
 * buffer and written in one call, so lines from one process never interleave.
 * Before log_init() everything goes to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static int log_where = LOG_TO_STDERR;
static int log_verbose;
static const char *log_ident = "mailshaper";
static pid_t log_pid;			/* cached: one getpid() per process */

/* log_init - choose the destination; ident is copied */
void
log_init(int where, const char *ident)
{
	static char ident_buf[64];

	snprintf(ident_buf, sizeof(ident_buf), "%s", ident);
	log_where = where;
	log_ident = ident_buf;
	log_pid = getpid();
	if (where == LOG_TO_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_set_verbose - 0 quiet debug, 1 debug */
void
log_set_verbose(int level)
{
	log_verbose = level;
}

/* log_get_verbose - current verbosity */
int
log_get_verbose(void)
{
	return log_verbose;
}

/* log_vout - format and emit one line at priority pri */
static void
log_vout(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char	buf[2048];
	int	n;

	if (log_where == LOG_TO_NONE)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (errstr != NULL && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, ": %s", errstr);
	if (log_where == LOG_TO_SYSLOG) {
		syslog(pri, "%s", buf);
	} else {
		const char *lvl = pri == LOG_ERR ? "fatal: " :
		    pri == LOG_WARNING ? "warning: " :
		    pri == LOG_DEBUG ? "debug: " : "";
		char	line[2200];
		int	len;

		if (log_pid == 0)
			log_pid = getpid();
		len = snprintf(line, sizeof(line), "%s[%d]: %s%s\n", log_ident,
		    (int)log_pid, lvl, buf);
		if (len > (int)sizeof(line) - 1)
			len = sizeof(line) - 1;
		/* One write(2) per line: no stdio, so no interleaving. */
		if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0)
			return;
	}
}

#define LOG_BODY(pri, err) do {					\
	int saved = errno; va_list ap; va_start(ap, fmt);		\
	log_vout(pri, err ? strerror(saved) : NULL, fmt, ap);		\
	va_end(ap); errno = saved;					\
} while (0)

/* log_warn - warning with strerror(errno) */
void
log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, 1);
}

/* log_warnx - warning */
void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, 0);
}

/* log_info - informational line, the maillog's ordinary record */
void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, 0);
}

/* log_debug - shown only when verbose */
void
log_debug(const char *fmt, ...)
{
	if (log_verbose)
		LOG_BODY(LOG_DEBUG, 0);
}

/* fatal - start-up failure with strerror(errno); exits */
void
fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, 1);
	exit(1);
}

/* fatalx - start-up failure; exits */
void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, 0);
	exit(1);
}
