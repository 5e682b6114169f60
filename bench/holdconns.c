/*
 * holdconns.c - open many TCP connections from many loopback addresses and
 * hold them open, reading (and counting) whatever the server sends
 *
 * Usage: holdconns -c COUNT -p PORT [-h 127.0.0.1] [-b 127.1.0.0]
 *                  [-o OFFSET] [-r RATE] [-t SECONDS] [-s STATUSFILE]
 *
 * Connection i (OFFSET <= i < OFFSET+COUNT) is bound to source address
 * BASE + 1 + i, skipping host parts .0 and .255, so each connection comes
 * from its own address (per-client limits do not interfere).  Connections
 * are opened non-blocking at most RATE per second (default 5000), then held
 * until SECONDS have passed since start (default 120), SIGTERM or SIGINT.
 * Everything the server sends is read and discarded (counted in bytes).
 *
 * Once a second a status line goes to stdout (and, with -s, overwrites
 * STATUSFILE):  t=<s> open=<n> est=<n> fail=<n> closed=<n> bytes=<n>
 *   est     connections whose connect() completed and are still open
 *   fail    connect() failed (refused, timed out, no buffer, ...)
 *   closed  the server closed (EOF or error) after the connect completed
 * Exit status 0 if at the end all COUNT were established and none closed.
 *
 * Loopback only: the target and the base must be in 127.0.0.0/8.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { C_NONE, C_CONNECTING, C_EST, C_DONE };

static volatile sig_atomic_t stop;
static unsigned char *state;	/* per fd */

static void
on_sig(int sig)
{
	(void)sig;
	stop = 1;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* nth_addr - BASE + 1 + n, skipping .0 and .255 host bytes */
static uint32_t
nth_addr(uint32_t base, long n)
{
	return base + (uint32_t)(n / 254) * 256 + (uint32_t)(n % 254) + 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: holdconns -c COUNT -p PORT [-h 127.0.0.1] "
	    "[-b 127.1.0.0] [-o OFFSET] [-r RATE] [-t SECONDS] [-s FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *basestr = "127.1.0.0", *sfile = NULL;
	long count = 0, offset = 0, rate = 5000, next = 0;
	long est = 0, fail = 0, closed = 0, open = 0;
	unsigned long long bytes = 0;
	int port = 0, secs = 120, ep, opt, n, k;
	struct sockaddr_in dst, src;
	struct in_addr base;
	struct epoll_event evs[1024], ev;
	struct rlimit rl;
	double t0, tlast, tnow;
	char buf[4096];

	while ((opt = getopt(argc, argv, "c:p:h:b:o:r:t:s:")) != -1) {
		switch (opt) {
		case 'c': count = atol(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'h': host = optarg; break;
		case 'b': basestr = optarg; break;
		case 'o': offset = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 't': secs = atoi(optarg); break;
		case 's': sfile = optarg; break;
		default: usage();
		}
	}
	if (count <= 0 || port <= 0 || rate <= 0)
		usage();
	memset(&dst, 0, sizeof dst);
	dst.sin_family = AF_INET;
	dst.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 ||
	    inet_pton(AF_INET, basestr, &base) != 1 ||
	    (ntohl(dst.sin_addr.s_addr) >> 24) != 127 ||
	    (ntohl(base.s_addr) >> 24) != 127 ||
	    (nth_addr(ntohl(base.s_addr), offset + count - 1) >> 24) != 127) {
		fprintf(stderr, "holdconns: loopback (127.0.0.0/8) only\n");
		return 2;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)count + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)count + 64) {
			fprintf(stderr, "holdconns: need %ld files, limit %lu\n",
			    count + 64, (unsigned long)rl.rlim_cur);
			return 2;
		}
	}
	state = calloc(rl.rlim_cur, 1);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	signal(SIGPIPE, SIG_IGN);
	if ((ep = epoll_create1(0)) < 0) {
		perror("epoll_create1");
		return 1;
	}
	t0 = tlast = now();
	while (!stop) {
		tnow = now();
		if (tnow - t0 >= secs)
			break;
		/* open connections up to the rate allowance */
		while (next < count && next < (long)((tnow - t0) * rate) + 1) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			int one = 1;

			if (fd < 0) {
				fail++;
				next++;
				continue;
			}
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
			    &one, sizeof one);
			memset(&src, 0, sizeof src);
			src.sin_family = AF_INET;
			src.sin_addr.s_addr =
			    htonl(nth_addr(ntohl(base.s_addr), offset + next));
			next++;
			if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
			    (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 &&
			    errno != EINPROGRESS)) {
				fail++;
				close(fd);
				continue;
			}
			ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
			ev.data.fd = fd;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			state[fd] = C_CONNECTING;
			open++;
		}
		n = epoll_wait(ep, evs, 1024, next < count ? 1 : 200);
		for (k = 0; k < n; k++) {
			int fd = evs[k].data.fd, err = 0;
			socklen_t el = sizeof err;
			ssize_t r;

			if (state[fd] == C_CONNECTING) {
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					fail++;
					open--;
					state[fd] = C_NONE;
					close(fd);
					continue;
				}
				state[fd] = C_EST;
				est++;
				ev.events = EPOLLIN | EPOLLRDHUP;
				ev.data.fd = fd;
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
			}
			if (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP |
			    EPOLLERR)) {
				while ((r = read(fd, buf, sizeof buf)) > 0)
					bytes += r;
				if (r == 0 || (r < 0 && errno != EAGAIN)) {
					closed++;
					est--;
					open--;
					state[fd] = C_NONE;
					close(fd);
				}
			}
		}
		tnow = now();
		if (tnow - tlast >= 1.0 || stop) {
			tlast = tnow;
			snprintf(buf, sizeof buf, "t=%.0f open=%ld est=%ld "
			    "fail=%ld closed=%ld bytes=%llu\n", tnow - t0, open,
			    est, fail, closed, bytes);
			fputs(buf, stdout);
			fflush(stdout);
			if (sfile) {
				FILE *f = fopen(sfile, "w");

				if (f) {
					fputs(buf, f);
					fclose(f);
				}
			}
		}
	}
	printf("end t=%.1f open=%ld est=%ld fail=%ld closed=%ld bytes=%llu\n",
	    now() - t0, open, est, fail, closed, bytes);
	return est == count && closed == 0 ? 0 : 1;
}
