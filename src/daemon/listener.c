/*
 * listener.c - listening sockets, the saved SYN, and accept
 *
 * Exports lst_open() and lst_close().
 *
 * Every listening socket has TCP_SAVE_SYN set, so the kernel keeps the IP
 * and TCP headers of the SYN that opened each connection; they are read
 * once with TCP_SAVED_SYN right after accept and handed to the session.
 * None is saved when the kernel answered with a SYN cookie; such sessions
 * get fp = null and are counted (ms->st.syn_missing).  A wildcard [::]
 * socket also takes IPv4 unless 0.0.0.0 on the same port is listed too.
 * When accept fails for lack of descriptors the listener pauses for a
 * second instead of spinning.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "daemon/runtime.h"
#include "daemon/listener.h"
#include "smtp/session.h"
#include "util/log.h"

#define LST_SYN_MAX	512

static struct evconnlistener *lst[CONF_MAX_LISTEN];
static int nlst;
static struct event *lst_pause;

/* lst_accept - read the saved SYN and start a session */
static void
lst_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	unsigned char syn[LST_SYN_MAX];
	socklen_t len = sizeof(syn);
	int	one = 1;

	(void)l;
	(void)arg;
	if (getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, syn, &len) < 0)
		len = 0;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sess_accept(fd, sa, (socklen_t)salen, syn, (int)len);
}

/* lst_resume - accept again after a descriptor shortage */
static void
lst_resume(evutil_socket_t fd, short what, void *arg)
{
	int	i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < nlst; i++)
		evconnlistener_enable(lst[i]);
}

/* lst_error - accept failed: pause on EMFILE/ENFILE, log the rest */
static void
lst_error(struct evconnlistener *l, void *arg)
{
	int	err = EVUTIL_SOCKET_ERROR(), i;
	struct timeval tv = { 1, 0 };

	(void)l;
	(void)arg;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		log_warnx("accept: %s; pausing for 1 s (sessions: %ld)",
		    strerror(err), ms->nsess);
		for (i = 0; i < nlst; i++)
			evconnlistener_disable(lst[i]);
		evtimer_add(lst_pause, &tv);
		return;
	}
	log_warnx("accept: %s", strerror(err));
}

/* lst_has_v4_any - is 0.0.0.0:port also in the list? */
static int
lst_has_v4_any(const struct conf *cf, int port)
{
	int	i;

	for (i = 0; i < cf->nlisten; i++) {
		const struct sockaddr_in *sin =
		    (const struct sockaddr_in *)&cf->listen[i].ss;

		if (sin->sin_family == AF_INET &&
		    sin->sin_addr.s_addr == htonl(INADDR_ANY) &&
		    ntohs(sin->sin_port) == port)
			return 1;
	}
	return 0;
}

/* lst_open - bind every listen address; -1 with err on the first failure */
int
lst_open(const struct conf *cf, char *err, size_t errlen)
{
	int	i, fd, one = 1, zero = 0;

	lst_pause = evtimer_new(ms->base, lst_resume, NULL);
	for (i = 0; i < cf->nlisten; i++) {
		const struct endpoint *ep = &cf->listen[i];
		int	family = ep->ss.ss_family;

		if (family != AF_INET && family != AF_INET6) {
			snprintf(err, errlen, "listen %s: only IPv4 and IPv6 "
			    "addresses can carry a SYN", ep->text);
			return -1;
		}
		fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "listen %s: socket: %s", ep->text,
			    strerror(errno));
			return -1;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)&ep->ss;
			int	only = !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ||
			    lst_has_v4_any(cf, ntohs(sin6->sin6_port));

			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
			    only ? &one : &zero, sizeof(int));
		}
		if (setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &one,
		    sizeof(one)) < 0)
			log_warn("listen %s: TCP_SAVE_SYN (no fingerprints)",
			    ep->text);
		if (bind(fd, (const struct sockaddr *)&ep->ss, ep->len) < 0 ||
		    listen(fd, (int)cf->listen_backlog) < 0) {
			snprintf(err, errlen, "listen %s: %s", ep->text,
			    strerror(errno));
			close(fd);
			return -1;
		}
		lst[nlst] = evconnlistener_new(ms->base, lst_accept, NULL,
		    LEV_OPT_CLOSE_ON_FREE, 0, fd);
		if (lst[nlst] == NULL) {
			snprintf(err, errlen, "listen %s: cannot register",
			    ep->text);
			close(fd);
			return -1;
		}
		evconnlistener_set_error_cb(lst[nlst], lst_error);
		nlst++;
		log_info("listening on %s", ep->text);
	}
	return 0;
}

/* lst_close - stop accepting (SIGTERM) */
void
lst_close(void)
{
	int	i;

	for (i = 0; i < nlst; i++) {
		evconnlistener_free(lst[i]);
		lst[i] = NULL;
	}
	nlst = 0;
	if (lst_pause != NULL) {
		event_free(lst_pause);
		lst_pause = NULL;
	}
}
