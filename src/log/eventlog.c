/*
 * eventlog.c - JSON-lines event log with a writer thread
 *
 * Exports evlog_open(), evlog_append(), evlog_reopen(), evlog_close() and
 * evlog_dropped().  The event loop only appends to an in-memory queue under
 * a mutex; a writer thread writes the queue to the file at least every
 * 200 ms (records reach disk within 1 s) and at once when it passes 256 KiB.
 * If the disk is slower than the records and the queue reaches 64 MiB,
 * further records are counted as dropped and logged, instead of blocking the
 * loop or growing without bound.  evlog_close() writes everything that is
 * queued, then joins the thread.  With no file open every call is a no-op.
 *
 * The file is opened with O_NOFOLLOW and must be a regular file: a symbolic
 * link at the path (someone else's file behind our name) is refused with
 * a clear error at start-up, and on SIGUSR1 the old file is kept.  With
 * `user` set the daemon hands the file to that user (evlog_chown()), so the
 * reopen after rotation works after the privilege drop.
 *
 * It is an error to call evlog_append() from more than one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log/eventlog.h"
#include "util/log.h"

#define EVLOG_KICK	(256 * 1024)		/* wake the writer early */
#define EVLOG_MAX_QUEUE	(64 * 1024 * 1024)	/* drop beyond this */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct evbuffer *queue;		/* appended by the loop */
	char	path[256];
	int	fd;			/* -1 = closed */
	int	running;
	int	stop;
	int	reopen;
	unsigned long dropped;
} ev = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, "",
	-1, 0, 0, 0, 0 };

/*
 * evlog_openfd - open the file for appending, never through a symbolic
 * link and never anything but a regular file; -1 + err
 */
static int
evlog_openfd(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int	fd;

	/* O_NONBLOCK: a FIFO at the path must not block the open. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0640);
	if (fd < 0) {
		if (errno == ELOOP)
			snprintf(err, errlen, "eventlog %s: is a symbolic link; "
			    "refusing to follow it (give the real path)", path);
		else
			snprintf(err, errlen, "eventlog %s: %s", path,
			    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "eventlog %s: not a regular file", path);
		close(fd);
		return -1;
	}
	(void)fcntl(fd, F_SETFL, O_APPEND);	/* clear O_NONBLOCK */
	return fd;
}

/* evlog_drain - write buf to fd, retrying short writes */
static void
evlog_drain(struct evbuffer *buf, int fd)
{
	while (evbuffer_get_length(buf) > 0) {
		int	n = evbuffer_write(buf, fd);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("eventlog: write %s", ev.path);
			/* Keep the records; try again on the next round. */
			return;
		}
	}
}

/* evlog_main - writer thread */
static void *
evlog_main(void *arg)
{
	struct evbuffer *batch = evbuffer_new();
	struct timespec ts;
	int	stop = 0;

	(void)arg;
	while (!stop) {
		pthread_mutex_lock(&ev.lock);
		if (!ev.stop && !ev.reopen &&
		    evbuffer_get_length(ev.queue) < EVLOG_KICK) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&ev.cond, &ev.lock, &ts);
		}
		evbuffer_add_buffer(batch, ev.queue);
		stop = ev.stop;
		if (ev.reopen) {
			char	err[512];
			int	fd = evlog_openfd(ev.path, err, sizeof(err));

			ev.reopen = 0;
			if (fd < 0)
				log_warnx("%s; writing on to the old file", err);
			else {
				/* Records queued so far go to the old file. */
				pthread_mutex_unlock(&ev.lock);
				evlog_drain(batch, ev.fd);
				pthread_mutex_lock(&ev.lock);
				close(ev.fd);
				ev.fd = fd;
			}
		}
		pthread_mutex_unlock(&ev.lock);
		evlog_drain(batch, ev.fd);
	}
	evbuffer_free(batch);
	return NULL;
}

/* evlog_open - open path and start the writer; "" disables the log */
int
evlog_open(const char *path, char *err, size_t errlen)
{
	if (*path == 0)
		return 0;
	snprintf(ev.path, sizeof(ev.path), "%s", path);
	if ((ev.fd = evlog_openfd(path, err, errlen)) < 0)
		return -1;
	ev.queue = evbuffer_new();
	if (pthread_create(&ev.thread, NULL, evlog_main, NULL) != 0) {
		snprintf(err, errlen, "eventlog: cannot start writer thread");
		close(ev.fd);
		ev.fd = -1;
		return -1;
	}
	ev.running = 1;
	return 0;
}

/*
 * evlog_chown - give the open file to uid:gid (before the privilege drop,
 * so that user can create the next file after rotation); -1 + err
 */
int
evlog_chown(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (!ev.running || ev.fd < 0)
		return 0;
	if (fchown(ev.fd, uid, gid) < 0) {
		snprintf(err, errlen, "eventlog %s: chown: %s", ev.path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* evlog_append - queue one record (the buffer ends with '\n'); drains line */
void
evlog_append(struct evbuffer *line)
{
	size_t	queued;

	if (!ev.running) {
		evbuffer_drain(line, evbuffer_get_length(line));
		return;
	}
	pthread_mutex_lock(&ev.lock);
	queued = evbuffer_get_length(ev.queue);
	if (queued > EVLOG_MAX_QUEUE) {
		if (ev.dropped++ % 1000 == 0)
			log_warnx("eventlog: %s is not keeping up; %lu records "
			    "dropped", ev.path, ev.dropped);
		evbuffer_drain(line, evbuffer_get_length(line));
	} else
		evbuffer_add_buffer(ev.queue, line);
	if (queued > EVLOG_KICK)
		pthread_cond_signal(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
}

/* evlog_reopen - reopen the file (after rotation), from the loop */
void
evlog_reopen(void)
{
	if (!ev.running)
		return;
	pthread_mutex_lock(&ev.lock);
	ev.reopen = 1;
	pthread_cond_signal(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
}

/* evlog_close - write everything queued, stop the writer, close */
void
evlog_close(void)
{
	if (!ev.running)
		return;
	pthread_mutex_lock(&ev.lock);
	ev.stop = 1;
	pthread_cond_signal(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
	pthread_join(ev.thread, NULL);
	evlog_drain(ev.queue, ev.fd);
	fsync(ev.fd);
	close(ev.fd);
	ev.fd = -1;
	evbuffer_free(ev.queue);
	ev.queue = NULL;
	ev.running = 0;
}

/* evlog_dropped - records lost to a stalled disk */
unsigned long
evlog_dropped(void)
{
	return ev.dropped;
}
