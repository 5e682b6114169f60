/*
 * spool.c - message content of one transaction, in memory or in an
 *	     unlinked file, under one memory budget for all sessions
 *
 * Exports spool_init(), spool_deinit(), spool_check(), spool_new(),
 * spool_buf(), spool_settle(), spool_discard(), spool_take(), spool_free()
 * and spool_in_file(); it counts in ms->st.spool_mem and spool_files.
 *
 * The canonicaliser appends a message's content to spool_buf(); after each
 * append the session calls spool_settle().  While the content of all
 * sessions together stays within spool_memory the content stays in that
 * buffer.  The spool whose growth takes the total past the budget moves
 * to a file in spool_dir opened with O_TMPFILE (or made and unlinked at
 * once where the file system lacks it), and from then on the buffer is
 * only a staging area, written out whenever it holds SPOOL_STAGE bytes.
 * So memory stays flat however many clients send large messages, and the
 * file has no name: it vanishes when the message is handed over or
 * dropped, even after a crash.  Content freed adds up; past SPOOL_TRIM
 * bytes a timer gives the free heap back to the system (malloc_trim), so
 * the resident size returns to its level before the messages came.
 *
 * spool_take() gives the whole content to the backend as one evbuffer (a
 * file segment for a file spool, read through mmap by libevent) and frees
 * the spool; the caller owns that evbuffer.  spool_free() drops the content.
 * spool_discard() drops what was stored and keeps the spool, for a message
 * that is read on to its end but will be refused.
 *
 * It is an error to append to spool_buf() after spool_take(), or to append
 * without a spool_settle() before the next event-loop round.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "daemon/runtime.h"
#include "smtp/spool.h"
#include "util/log.h"

#define SPOOL_STAGE	(64 * 1024)	/* staging bytes before a file write */
#define SPOOL_TRIM	(1024 * 1024)	/* freed bytes that call for a trim */
#define SPOOL_TRIM_MS	1000		/* at most one trim this often */

struct spool {
	struct evbuffer *buf;	/* content, or staging for the file */
	int	fd;		/* the unlinked file, -1 while in memory */
	size_t	counted;	/* bytes of buf counted in ms->st.spool_mem */
	size_t	in_file;	/* bytes written to fd */
};

static char spool_dir[256];
static size_t spool_freed;		/* counted bytes freed since a trim */
static struct event *spool_trim_ev;

/* spool_trim_cb - give freed heap back to the system */
static void
spool_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	spool_freed = 0;
	(void)malloc_trim(0);
}

/* spool_init - create the directory (owned by user) at start-up */
int
spool_init(struct event_base *base, const char *dir, const char *user,
    char *err, size_t errlen)
{
	struct passwd *pw;

	if (spool_trim_ev == NULL &&
	    (spool_trim_ev = evtimer_new(base, spool_trim_cb, NULL)) == NULL) {
		snprintf(err, errlen, "spool: out of memory");
		return -1;
	}

	if (strlen(dir) >= sizeof(spool_dir) || *dir == 0) {
		snprintf(err, errlen, "spool_dir: bad path '%s'", dir);
		return -1;
	}
	snprintf(spool_dir, sizeof(spool_dir), "%s", dir);
	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST) {
			snprintf(err, errlen, "spool_dir %s: %s", dir,
			    strerror(errno));
			return -1;
		}
		return 0;
	}
	log_info("created %s", dir);
	if (*user && geteuid() == 0) {
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "spool_dir %s: unknown user %s",
			    dir, user);
			return -1;
		}
		if (chown(dir, pw->pw_uid, pw->pw_gid) < 0) {
			snprintf(err, errlen, "spool_dir %s: chown: %s", dir,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* spool_open_file - an unlinked file in the spool directory, or -1 */
static int
spool_open_file(char *err, size_t errlen)
{
	char	path[300];
	int	fd;

	fd = open(spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		snprintf(err, errlen, "spool file in %s: %s", spool_dir,
		    strerror(errno));
		return -1;
	}
	/* No O_TMPFILE on this file system: make a name and drop it. */
	snprintf(path, sizeof(path), "%s/msXXXXXX", spool_dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "spool file in %s: %s", spool_dir,
		    strerror(errno));
		return -1;
	}
	(void)unlink(path);
	return fd;
}

/* spool_check - the spool directory takes files (after the privilege drop) */
int
spool_check(char *err, size_t errlen)
{
	int	fd = spool_open_file(err, errlen);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* spool_new - an empty spool in memory */
struct spool *
spool_new(void)
{
	struct spool *sp = calloc(1, sizeof(*sp));

	if (sp == NULL)
		return NULL;
	if ((sp->buf = evbuffer_new()) == NULL) {
		free(sp);
		return NULL;
	}
	sp->fd = -1;
	return sp;
}

/* spool_buf - where content is appended */
struct evbuffer *
spool_buf(struct spool *sp)
{
	return sp->buf;
}

/* spool_in_file - the content went to a file */
int
spool_in_file(const struct spool *sp)
{
	return sp->fd >= 0;
}

/* spool_uncount - take the spool's bytes out of the shared total */
static void
spool_uncount(struct spool *sp)
{
	static const struct timeval tv = { SPOOL_TRIM_MS / 1000,
	    (SPOOL_TRIM_MS % 1000) * 1000 };

	ms->st.spool_mem -= sp->counted;
	spool_freed += sp->counted;
	sp->counted = 0;
	if (spool_freed >= SPOOL_TRIM && spool_trim_ev != NULL &&
	    !evtimer_pending(spool_trim_ev, NULL))
		evtimer_add(spool_trim_ev, &tv);
}

/* spool_flush - write the staging buffer to the file */
static int
spool_flush(struct spool *sp, char *err, size_t errlen)
{
	while (evbuffer_get_length(sp->buf) > 0) {
		int	n = evbuffer_write(sp->buf, sp->fd);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "spool file write: %s",
			    strerror(errno));
			return -1;
		}
		sp->in_file += (size_t)n;
	}
	return 0;
}

/* spool_settle - count what was appended; move to a file past the budget */
int
spool_settle(struct spool *sp, char *err, size_t errlen)
{
	size_t	len = evbuffer_get_length(sp->buf);

	if (sp->fd >= 0)
		return len >= SPOOL_STAGE ? spool_flush(sp, err, errlen) : 0;
	ms->st.spool_mem += len - sp->counted;
	sp->counted = len;
	if (ms->st.spool_mem <= (size_t)ms->cf->spool_memory)
		return 0;
	if ((sp->fd = spool_open_file(err, errlen)) < 0)
		return -1;
	ms->st.spool_files++;
	spool_uncount(sp);
	return spool_flush(sp, err, errlen);
}

/* spool_discard - drop the content; the spool stays usable */
void
spool_discard(struct spool *sp)
{
	evbuffer_drain(sp->buf, evbuffer_get_length(sp->buf));
	spool_uncount(sp);
	if (sp->fd >= 0 && ftruncate(sp->fd, 0) == 0)
		sp->in_file = 0;
}

/* spool_take - the whole content for the backend; frees sp */
struct evbuffer *
spool_take(struct spool *sp, char *err, size_t errlen)
{
	struct evbuffer_file_segment *seg;
	struct evbuffer *out;

	spool_uncount(sp);
	if (sp->fd < 0) {
		out = sp->buf;
		free(sp);
		return out;
	}
	if (spool_flush(sp, err, errlen) < 0 || (out = evbuffer_new()) == NULL) {
		if (*err == 0)
			snprintf(err, errlen, "out of memory");
		spool_free(sp);
		return NULL;
	}
	/* libevent maps the file and closes it with the segment. */
	seg = evbuffer_file_segment_new(sp->fd, 0, (ev_off_t)sp->in_file,
	    EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE);
	if (seg == NULL || (sp->in_file > 0 &&
	    evbuffer_add_file_segment(out, seg, 0, -1) < 0)) {
		snprintf(err, errlen, "cannot read the spool file");
		if (seg != NULL)
			evbuffer_file_segment_free(seg);
		else
			close(sp->fd);
		evbuffer_free(out);
		sp->fd = -1;
		spool_free(sp);
		return NULL;
	}
	evbuffer_file_segment_free(seg);	/* out holds its reference */
	sp->fd = -1;
	evbuffer_free(sp->buf);
	free(sp);
	return out;
}

/* spool_free - drop the content and the spool */
void
spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	spool_uncount(sp);
	if (sp->fd >= 0)
		close(sp->fd);
	evbuffer_free(sp->buf);
	free(sp);
}

/* spool_deinit - free the trim timer (at exit) */
void
spool_deinit(void)
{
	if (spool_trim_ev != NULL) {
		event_free(spool_trim_ev);
		spool_trim_ev = NULL;
	}
}
