/*
 * driver.c - mailshaper-swarm run: a scenario through the real daemon
 *
 *   mailshaper-swarm run [-S SCENARIO] [-P PERSONAS] [-w DIR]
 *       [-o name=value]... [--netns new|here] [--mailshaper PATH]
 *       [--json] [-v]
 *
 * Order of work (doc/internals/driver.md):
 *  1. load the personalities and the scenario; make the work directory;
 *  2. write the DNS data: an rbldnsd ip4set zone with the listed addresses
 *     (scenario_is_listed()) and a hosts file with the big senders'
 *     forward-confirmed names; a self-signed certificate for STARTTLS;
 *  3. enter a new network namespace (netns_setup()): the daemon's address
 *     on lo, tun0, the sender ranges routed into it;
 *  4. start, inside it, rbldnsd (127.0.0.1:5353), dnsmasq (127.0.0.1:53,
 *     forwarding the list's zone to rbldnsd), the counting backend
 *     (127.0.0.1:2525) and mailshaper on the scenario's daemon address,
 *     each waited for;
 *  5. start `rate` sessions a second for `duration`, under the total and
 *     per-population concurrency caps; legitimate senders retry 4xx and
 *     lost connections with backoff on the compressed clock;
 *  6. drain, stop the helpers (SIGTERM: the daemon flushes its event log,
 *     the backend writes its final counts) and report.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fp/fp.h"
#include "log/evread.h"
#include "util/jsonl.h"
#include "swarm/driver.h"
#include "swarm/netns.h"
#include "swarm/persona.h"
#include "swarm/scenario.h"
#include "swarm/smtpc.h"
#include "swarm/tlsgen.h"
#include "swarm/utcp.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strmap.h"

#define DRV_PATH	1024		/* longest work directory path */
#define DRV_TICK_MS	10		/* session start timer */
#define DRV_SINK_PORT	2525		/* counting backend, on 127.0.0.1 */
#define DRV_RBL_PORT	5353		/* rbldnsd, on 127.0.0.1 */
#define DRV_DNS_PORT	53		/* dnsmasq, on 127.0.0.1 */
#define DRV_WAIT_MS	15000		/* longest wait for a helper to start */
#define DRV_BACKLOG_MAX	1000		/* held-back starts per population */
#define DRV_NCLASS	5		/* trusted normal suspect hostile other */

/* SIGINT/SIGTERM outside the event loop (starting or stopping helpers) */
static volatile sig_atomic_t drv_signalled;

static const char *const class_names[DRV_NCLASS] = {
	"trusted", "normal", "suspect", "hostile", "other"
};

/* A growable array of doubles (give-up times, added delays). */
struct dvec {
	double	*v;
	size_t	n, cap;
};

/* One message of a sender that retries: it lives until decided. */
struct dmsg {
	enum smtpc_truth truth;
	size_t	size;
	unsigned attempts;	/* sessions it has been in */
	uint64_t first_ms;	/* wall ms of its first attempt */
	double	added_s;	/* added delay so far, sender seconds */
	int	first_contact;	/* 1 = its first attempt was in its
				 * address's first session of the run */
};

struct dpop {
	const struct population *p;
	unsigned open;		/* sessions now open */
	uint64_t sessions, retry_sessions, connected, gave_up, refused;
	uint64_t msgs;		/* messages made */
	uint64_t delivered, rejected, deferred, abandoned, expired, pending;
	uint64_t ham, ham_delivered, ham_pending;
	uint64_t end[SMTPC_NEND];	/* sessions by how they ended */
	uint64_t tls;		/* sessions that ran TLS */
	uint64_t backlog;	/* starts held back by the population cap */
	uint64_t dropped;	/* starts dropped: the backlog was full */
	uint64_t sink_received;	/* messages the backend saw */
	uint64_t cls[DRV_NCLASS], cls_late[DRV_NCLASS], control;
	struct dvec giveup;	/* give-up times, s */
	struct dvec delay;	/* added delay of delivered ham, s */
	struct dvec delay_first; /* ... of first-contact messages */
	struct dvec delay_ret;	/* ... of the others (returning senders) */
	uint64_t delivered_first, delivered_ret; /* delivered, by the same
				 * split */
	uint64_t backend_4xx;	/* 4xx for want of backend capacity
				 * (smtpc_busy_reply()) */
	uint64_t mail_4xx;	/* every 4xx to MAIL */
	uint64_t unfinished;	/* undecided messages of sessions still
				 * open when the drain ended */
	unsigned char *seen;	/* bitmap by address index: a session came
				 * from it (NULL = out of memory: all
				 * count as returning) */
};

struct drv;

struct dsess {
	struct drv	*d;
	struct dpop	*pp;
	struct dsess	*prev, *next;	/* d->sessions */
	struct utcp_conn *c;		/* NULL once closed or aborted */
	struct smtpc	*sc;		/* NULL once done */
	struct smtpc_spec spec;
	struct smtpc_msg *msgs;
	struct dmsg	*dm;		/* per message, retry state */
	unsigned long	addr_idx;
	struct timeval	start;
	char		helo[SCN_NAME_MAX + SCN_DOMAIN_MAX + 32];
	char		from[SCN_NAME_MAX + SCN_DOMAIN_MAX + 40];
	char		rcpt[64];
	const char	*rcptv[1];
};

struct dretry {
	struct drv	*d;
	struct dpop	*pp;
	struct dretry	*prev, *next;	/* d->retries */
	struct event	*ev;
	unsigned long	addr_idx;
	struct dmsg	m;
};

struct rstart {			/* a router session, for the hostile count */
	struct timeval	start;
	unsigned	nmsg;
};

struct helper {
	const char	*name;
	pid_t		pid;
	char		log[PATH_MAX];
};

struct drv {
	struct scenario	*sc;
	struct persona_set ps;
	struct event_base *base;
	struct utcp_stack *st;
	struct dpop	pops[SCN_MAX_POPS];
	struct dsess	*sessions;
	struct dretry	*retries;
	unsigned	open;		/* SMTP sessions not yet done */
	unsigned	nretries;	/* retries waiting */
	uint64_t	started;	/* first-attempt sessions started */
	uint64_t	cap_waits;	/* ticks a start waited for a cap */
	uint64_t	rng;
	uint64_t	t0_ms;		/* monotonic ms at the start */
	struct timeval	t0_wall;	/* wall time at the start */
	int		draining;
	int		stopped;	/* SIGINT/SIGTERM */
	int		helper_died;	/* a helper exited during the run */
	int		backend_ok;	/* backend.json was read */
	uint64_t	drawn;		/* starts due so far */
	struct event	*tick, *drain_ev, *sigint, *sigterm, *sample;
	unsigned	peak_open;	/* most sessions open at a sample */
	long		rss0_kb;	/* daemon VmRSS when the run began */
	long		rss_peak_kb;	/* daemon VmRSS at peak_open */
	long		hwm_kb;		/* daemon VmHWM before it stopped */
	struct utcp_stats us;		/* the swarm's TCP, at the end */
	union ipaddr	dst;
	struct rstart	*routers;
	size_t		nrouters, caprouters;
	char		work[DRV_PATH];	/* the work directory */
	int		tls;		/* 1 = the daemon offers STARTTLS */
	struct helper	h[4];		/* rbldnsd, dnsmasq, backend, daemon */
	size_t		nh;
};

/* ------------------------------------------------------------ utilities */

/* now_ms - monotonic milliseconds */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* dvec_add - append x; -1 when out of memory */
static int
dvec_add(struct dvec *a, double x)
{
	if (a->n == a->cap) {
		size_t	ncap = a->cap ? a->cap * 2 : 64;
		double *nv = realloc(a->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = x;
	return 0;
}

/* dcmp - qsort order of doubles */
static int
dcmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* dvec_q - quantile q (0..1) by nearest rank; NAN when empty */
static double
dvec_q(struct dvec *a, double q)
{
	size_t	i;

	if (a->n == 0)
		return NAN;
	qsort(a->v, a->n, sizeof(*a->v), dcmp);
	i = (size_t)ceil(q * (double)a->n);
	return a->v[i > 0 ? i - 1 : 0];
}

/* is_legit - a kind whose mail is wanted */
static int
is_legit(const struct population *p)
{
	return p->kind == SCN_LEGIT_MTA || p->kind == SCN_BULK_SENDER ||
	    p->kind == SCN_BIG_SENDER;
}

/* class_index - a class name's column ("other" for the unknown) */
static int
class_index(const char *c)
{
	int	i;

	for (i = 0; i < DRV_NCLASS - 1; i++)
		if (c != NULL && strcmp(c, class_names[i]) == 0)
			return i;
	return DRV_NCLASS - 1;
}

/* host_name - the forward-confirmed name of big-sender address idx */
static void
host_name(const struct population *p, unsigned long idx, char *buf,
    size_t len)
{
	snprintf(buf, len, "o%lu.%s", idx, p->rdns_domain);
}

/* open_out - a new file in the work directory, readable by helpers that
 * dropped root */
static FILE *
open_out(const char *work, const char *name, char *path, size_t len)
{
	FILE   *f;

	snprintf(path, len, "%s/%s", work, name);
	if ((f = fopen(path, "w")) == NULL)
		log_warn("%s", path);
	else
		fchmod(fileno(f), 0644);
	return f;
}

/* ------------------------------------------------------------ DNS data */

/* write_dns - the rbldnsd zone and the dnsmasq hosts file */
static int
write_dns(struct drv *d)
{
	const struct scenario *sc = d->sc;
	char	path[PATH_MAX], a[INET6_ADDRSTRLEN], name[SCN_DOMAIN_MAX + 32];
	struct sockaddr_storage ss;
	unsigned i;
	unsigned long k;
	FILE   *z, *h;
	int	rc = 0;

	if ((z = open_out(d->work, "bl.zone", path, sizeof(path))) == NULL)
		return -1;
	if ((h = open_out(d->work, "hosts", path, sizeof(path))) == NULL) {
		fclose(z);
		return -1;
	}
	/* 127.0.0.2 is RFC 5782's test point: a list without it is broken */
	fprintf(z, "# RFC 5782 test point, then the listed senders "
	    "(scenario_is_listed)\n127.0.0.2\n");
	for (i = 0; i < sc->npops; i++) {
		const struct population *p = &sc->pops[i];
		int	listed = scenario_listed_pct(sc, p) > 0;

		if (!listed && p->rdns_domain[0] == '\0')
			continue;
		for (k = 0; k < p->addresses; k++) {
			if (scenario_address(sc, p, k, &ss) == -1 ||
			    addr_ntop((struct sockaddr *)&ss, a, sizeof(a),
			    NULL) == -1)
				break;
			if (listed && scenario_is_listed(sc, p, k))
				fprintf(z, "%s\n", a);
			if (p->rdns_domain[0] != '\0') {
				host_name(p, k, name, sizeof(name));
				fprintf(h, "%s %s\n", a, name);
			}
		}
	}
	if (fclose(z) == EOF || fclose(h) == EOF) {
		log_warn("%s", d->work);
		rc = -1;
	}
	return rc;
}

/* dns_ready - one A query for name to 127.0.0.1:port; 1 = any answer */
static int
dns_ready(int port, const char *name)
{
	unsigned char q[12 + 256 + 4], r[512];
	struct sockaddr_in sin;
	struct pollfd pfd;
	const char *s = name, *dot;
	size_t	n = 12;
	int	fd, ok = 0;

	memset(q, 0, sizeof(q));
	q[0] = 0x4d; q[1] = 0x53;		/* id */
	q[2] = 0x01;				/* RD */
	q[5] = 1;				/* QDCOUNT */
	while (*s != '\0') {
		size_t	l;

		dot = strchr(s, '.');
		l = dot ? (size_t)(dot - s) : strlen(s);
		if (l == 0 || l > 63 || n + 1 + l + 5 > sizeof(q))
			return 0;
		q[n++] = (unsigned char)l;
		memcpy(q + n, s, l);
		n += l;
		s += l + (dot != NULL);
	}
	q[n++] = 0;
	q[n++] = 0; q[n++] = 1;			/* A */
	q[n++] = 0; q[n++] = 1;			/* IN */
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (sendto(fd, q, n, 0, (struct sockaddr *)&sin, sizeof(sin)) ==
	    (ssize_t)n) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) == 1 &&
		    recv(fd, r, sizeof(r), 0) >= 12 && r[0] == q[0] &&
		    r[1] == q[1])
			ok = 1;
	}
	close(fd);
	return ok;
}

/* ------------------------------------------------------------ helpers */

/* The helper a supervisor watches (in the supervisor process only). */
static volatile pid_t sup_child;

/* sup_forward - the supervisor passes SIGTERM/SIGINT on to its helper */
static void
sup_forward(int sig)
{
	if (sup_child > 0)
		kill(sup_child, sig);
}

/*
 * unroot - leave uid 0 of a user namespace that maps nobody else: a nested
 * user namespace in which uid and gid 1 stand for our own ids.  The files
 * and the network stay the same (same kernel uid, same network
 * namespace); the helper just no longer sees itself as root.  For rbldnsd,
 * which refuses root and cannot drop to a user that is not mapped.
 */
static int
unroot(void)
{
	char	err[256];

	if (unshare(CLONE_NEWUSER) == -1 ||
	    netns_write_proc("/proc/self/setgroups", "deny", err,
	    sizeof(err)) == -1 ||
	    netns_write_proc("/proc/self/uid_map", "1 0 1", err,
	    sizeof(err)) == -1 ||
	    netns_write_proc("/proc/self/gid_map", "1 0 1", err,
	    sizeof(err)) == -1 ||
	    setresgid(1, 1, 1) == -1 || setresuid(1, 1, 1) == -1)
		return -1;
	return 0;
}

/*
 * spawn - start a helper under a supervisor, stdout/stderr to a fresh log
 *
 * The log is made before the fork, so a waiter never reads an old one.
 * The child becomes a small supervisor: it dies with the swarm (parent-
 * death signal), forks and execs the helper, passes SIGTERM/SIGINT on to
 * it and exits when it exits.  The helper alone would lose the parent-
 * death signal when it changes user (rbldnsd always does), so without the
 * supervisor a killed swarm would leave it running.
 */
static int
spawn(struct drv *d, const char *name, char *const argv[], int drop_root)
{
	struct helper *h = &d->h[d->nh];
	pid_t	pid, parent = getpid();
	int	fd, nul;

	snprintf(h->log, sizeof(h->log), "%s/%s.log", d->work, name);
	h->name = name;
	if ((fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || (nul = open("/dev/null", O_RDONLY | O_CLOEXEC)) ==
	    -1) {
		log_warn("%s", fd == -1 ? h->log : "/dev/null");
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(fd);
		close(nul);
		return -1;
	}
	if (pid == 0) {
		struct sigaction sa;
		pid_t	sup = getpid(), c;
		int	st;

		dup2(nul, 0);		/* dup2 clears FD_CLOEXEC on 0-2 */
		dup2(fd, 1);
		dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)	/* the swarm died before that */
			_exit(127);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = sup_forward;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		if ((c = fork()) == -1)
			_exit(127);
		if (c == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			signal(SIGPIPE, SIG_DFL);
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != sup)
				_exit(127);
			if (drop_root && unroot() == -1) {
				dprintf(2, "cannot leave uid 0: %s\n",
				    strerror(errno));
				_exit(127);
			}
			execv(argv[0], argv);
			dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
			_exit(127);
		}
		sup_child = c;
		while (waitpid(c, &st, 0) == -1)
			if (errno != EINTR)
				_exit(127);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	close(fd);
	close(nul);
	h->pid = pid;
	d->nh++;
	return 0;
}

/* helper_alive - 1 while the helper runs; reaps it otherwise */
static int
helper_alive(struct helper *h)
{
	int	st;

	if (h->pid <= 0)
		return 0;
	if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
		h->pid = -1;
		return 0;
	}
	return 1;
}

/* log_has - 1 when the helper's log contains s */
static int
log_has(const struct helper *h, const char *s)
{
	char	buf[65536];
	size_t	n;
	FILE   *f;

	if ((f = fopen(h->log, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

/* helper_fail - a helper did not come up: say why, with its log's tail */
static int
helper_fail(const struct helper *h, const char *why)
{
	char	line[512];
	FILE   *f;

	log_warnx("%s %s; its log (%s):", h->name, why, h->log);
	if ((f = fopen(h->log, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			fprintf(stderr, "    %s", line);
		fclose(f);
	}
	return -1;
}

/* What a helper does when it is ready: a line in its log, or a DNS answer
 * on 127.0.0.1:port. */
struct ready {
	const char	*line;		/* NULL: ask DNS */
	int		port;
	const char	*name;		/* the DNS name to ask for */
};

/* is_ready - 1 when the helper shows what r asks for */
static int
is_ready(const struct helper *h, const struct ready *r)
{
	return r->line != NULL ? log_has(h, r->line) :
	    dns_ready(r->port, r->name);
}

/* wait_ready - wait until the helper is ready (or dies, or 15 s pass) */
static int
wait_ready(struct helper *h, const struct ready *r)
{
	uint64_t end = now_ms() + DRV_WAIT_MS;

	while (!is_ready(h, r)) {
		if (drv_signalled)
			return -1;
		if (!helper_alive(h))
			return helper_fail(h, "exited");
		if (now_ms() > end)
			return helper_fail(h, "did not get ready in time");
		if (r->line != NULL)
			usleep(20000);	/* a DNS query waits by itself */
	}
	return 0;
}

/* stop_helpers - SIGTERM in reverse order of start, wait for each */
static void
stop_helpers(struct drv *d)
{
	size_t	i;
	int	st, n;

	for (i = d->nh; i-- > 0;) {
		struct helper *h = &d->h[i];

		if (h->pid <= 0)
			continue;
		kill(h->pid, SIGTERM);
		for (n = 0; n < 300; n++) {	/* 30 s */
			if (waitpid(h->pid, &st, WNOHANG) == h->pid)
				break;
			usleep(100000);
		}
		if (n == 300) {
			log_warnx("%s did not stop; killing it", h->name);
			kill(h->pid, SIGKILL);
			waitpid(h->pid, &st, 0);
		}
		h->pid = -1;
	}
}

/* self_dir - the directory of this executable */
static void
self_dir(char *buf, size_t len)
{
	ssize_t	n = readlink("/proc/self/exe", buf, len - 1);
	char   *slash;

	if (n <= 0) {
		snprintf(buf, len, ".");
		return;
	}
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) != NULL)
		*slash = '\0';
}

/* daemon_conf - mailshaper.conf for the run; extra holds -o lines */
static int
daemon_conf(struct drv *d, const char *extra, char *path, size_t len)
{
	const struct scenario *sc = d->sc;
	char	host[INET6_ADDRSTRLEN];
	unsigned i;
	int	port;
	FILE   *f;

	if ((f = open_out(d->work, "mailshaper.conf", path, len)) == NULL)
		return -1;
	addr_ntop((const struct sockaddr *)&sc->daemon.ss, host, sizeof(host),
	    &port);
	fprintf(f, "# written by mailshaper-swarm run for %s\n", sc->file);
	fprintf(f, "# everything not named here is an embedded default\n");
	if (sc->daemon.ss.ss_family == AF_INET6)
		fprintf(f, "listen = [%s]:%d\n", host, port);
	else
		fprintf(f, "listen = %s:%d\n", host, port);
	fprintf(f, "backend = 127.0.0.1:%d\n", DRV_SINK_PORT);
	fprintf(f, "eventlog = %s/events.jsonl\n", d->work);
	fprintf(f, "rep_store = sqlite:%s/reputation.db\n", d->work);
	fprintf(f, "spool_dir = %s/spool\n", d->work);
	fprintf(f, "dnsbl_sites = bl.%s*%g\n", sc->dns_domain,
	    sc->dnsbl_weight);
	fprintf(f, "dns_servers = 127.0.0.1:%d\n", DRV_DNS_PORT);
	if (d->tls)
		fprintf(f, "tls_cert_file = %s/cert.pem\n"
		    "tls_key_file = %s/key.pem\n", d->work, d->work);
	if (sc->ndaemon_opts > 0)
		fprintf(f, "# the scenario's daemon_option lines\n");
	for (i = 0; i < sc->ndaemon_opts; i++)
		fprintf(f, "%s\n", sc->daemon_opts[i]);
	fputs(extra, f);
	if (fclose(f) == EOF) {
		log_warn("%s", path);
		return -1;
	}
	return 0;
}

/* mapped_root - 1 when we are uid 0 of a user namespace, not the host's
 * root (the uid map is not the identity over every uid) */
static int
mapped_root(void)
{
	unsigned long in, out, n;
	FILE   *f;
	int	r = 0;

	if (geteuid() != 0 || (f = fopen("/proc/self/uid_map", "r")) == NULL)
		return 0;
	if (fscanf(f, "%lu %lu %lu", &in, &out, &n) != 3 || in != 0 ||
	    out != 0 || n != 4294967295UL)
		r = 1;
	fclose(f);
	return r;
}

/* start_helpers - rbldnsd, dnsmasq, the backend, the daemon; in order */
static int
start_helpers(struct drv *d, const char *mailshaper, const char *extra)
{
	const struct scenario *sc = d->sc;
	char	dir[DRV_PATH], self[PATH_MAX], conf[PATH_MAX], zone[400];
	char	bind[64], hosts[PATH_MAX + 16], srv[400], loc[400];
	char	reject[32], seed[32], stats[PATH_MAX], probe[400];
	struct ready rdy = { NULL, 0, NULL };
	int	nsroot = mapped_root();
	int	root = geteuid() == 0 && !nsroot;
	self_dir(dir, sizeof(dir));
	snprintf(self, sizeof(self), "%s/mailshaper-swarm", dir);

	/* rbldnsd: the DNS list, with the listed zombies */
	snprintf(bind, sizeof(bind), "127.0.0.1/%d", DRV_RBL_PORT);
	snprintf(zone, sizeof(zone), "bl.%s:ip4set:bl.zone", sc->dns_domain);
	{
		char   *argv[] = { "/usr/sbin/rbldnsd", "-n", "-b", bind, "-w",
		    d->work, zone, NULL, NULL, NULL };

		/* rbldnsd will not run as root: as the host's root it drops
		 * to its own user; as a user namespace's root, see unroot() */
		if (root) {
			memmove(argv + 3, argv + 1, 6 * sizeof(*argv));
			argv[1] = "-u";
			argv[2] = "rbldns";
		}
		if (spawn(d, "rbldnsd", argv, nsroot) == -1)
			return -1;
	}
	snprintf(probe, sizeof(probe), "2.0.0.127.bl.%s", sc->dns_domain);
	rdy.port = DRV_RBL_PORT;
	rdy.name = probe;
	if (wait_ready(&d->h[d->nh - 1], &rdy) == -1)
		return -1;

	/* dnsmasq: forward-confirmed names; the list's zone to rbldnsd */
	snprintf(hosts, sizeof(hosts), "--addn-hosts=%s/hosts", d->work);
	snprintf(srv, sizeof(srv), "--server=/bl.%s/127.0.0.1#%d",
	    sc->dns_domain, DRV_RBL_PORT);
	snprintf(loc, sizeof(loc), "--local=/%s/", sc->dns_domain);
	{
		char	port[32];
		char   *argv[] = { "/usr/sbin/dnsmasq", "--no-daemon",
		    "--no-resolv", "--no-hosts", "--listen-address=127.0.0.1",
		    "--bind-interfaces", "--pid-file=", port, hosts, srv, loc,
		    "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
		    "--cache-size=10000", "--dns-forward-max=1000", NULL };

		snprintf(port, sizeof(port), "--port=%d", DRV_DNS_PORT);
		if (spawn(d, "dnsmasq", argv, 0) == -1)
			return -1;
	}
	rdy.port = DRV_DNS_PORT;
	if (wait_ready(&d->h[d->nh - 1], &rdy) == -1)
		return -1;

	/* the counting backend */
	snprintf(bind, sizeof(bind), "127.0.0.1:%d", DRV_SINK_PORT);
	snprintf(reject, sizeof(reject), "%.2f", sc->backend_reject_pct);
	snprintf(seed, sizeof(seed), "%" PRIu64, sc->seed);
	snprintf(stats, sizeof(stats), "%s/backend.json", d->work);
	{
		char   *argv[] = { self, "backend", "-l", bind, "--reject-spam",
		    reject, "--seed", seed, "--stats", stats, "--xclient",
		    "--pipelining", NULL };

		rdy.line = "ready";
		if (spawn(d, "backend", argv, 0) == -1 ||
		    wait_ready(&d->h[d->nh - 1], &rdy) == -1)
			return -1;
	}

	/* the daemon, with its embedded defaults and the run's own few */
	if (daemon_conf(d, extra, conf, sizeof(conf)) == -1)
		return -1;
	{
		char   *argv[] = { (char *)mailshaper, "-f", "-c", conf, NULL };

		rdy.line = "probe";
		if (spawn(d, "mailshaper", argv, 0) == -1 ||
		    wait_ready(&d->h[d->nh - 1], &rdy) == -1)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ sessions */

static void	sess_start(struct drv *, struct dpop *, unsigned long,
		    struct dmsg *, size_t);
static void	check_end(struct drv *);

/* sess_unlink_free - take a session off the list and free it */
static void
sess_unlink_free(struct dsess *s)
{
	struct drv *d = s->d;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->sc != NULL)
		smtpc_free(s->sc);
	free(s->msgs);
	free(s->dm);
	free(s);
}

/* tr_send - the smtpc's bytes into its utcp connection; -1 once gone */
static int
tr_send(void *t, const void *data, size_t len)
{
	struct dsess *s = t;

	return s->c != NULL ? utcp_send(s->c, data, len) : -1;
}

/* tr_close - the smtpc closes: FIN after what is queued */
static void
tr_close(void *t)
{
	struct dsess *s = t;

	if (s->c != NULL)
		utcp_close(s->c);
}

/* tr_abort - the smtpc gives up: RST, the connection is gone at once */
static void
tr_abort(void *t)
{
	struct dsess *s = t;

	if (s->c != NULL) {
		utcp_abort(s->c);	/* frees it; no closed() */
		s->c = NULL;
	}
}

/* u_connected - the handshake completed */
static void
u_connected(struct utcp_conn *c, void *arg)
{
	struct dsess *s = arg;

	(void)c;
	if (s->sc != NULL)
		smtpc_on_connected(s->sc);
}

/* u_data - bytes from the daemon, or its FIN (len 0) */
static void
u_data(struct utcp_conn *c, const unsigned char *data, size_t len, void *arg)
{
	struct dsess *s = arg;

	if (s->sc != NULL)
		smtpc_on_data(s->sc, data, len);
	else if (len == 0)
		utcp_close(c);		/* after QUIT: the daemon's FIN */
}

/* u_closed - the connection is gone; the last call for it */
static void
u_closed(struct utcp_conn *c, enum utcp_reason why, void *arg)
{
	struct dsess *s = arg;

	(void)c;
	s->c = NULL;
	if (s->sc != NULL)
		smtpc_on_closed(s->sc, why != UTCP_R_DONE);
	else
		sess_unlink_free(s);
}

static const struct utcp_cb ucb = { u_connected, u_data, u_closed };

/* retry_fire - a deferred message's backoff is over */
static void
retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct dretry *r = arg;
	struct drv *d = r->d;

	(void)fd;
	(void)what;
	if (d->open >= d->sc->concurrency ||
	    r->pp->open >= r->pp->p->concurrency) {
		struct timeval tv = { 0, 100000 };

		evtimer_add(r->ev, &tv);	/* a cap: try again soon */
		return;
	}
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		d->retries = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	d->nretries--;
	r->pp->retry_sessions++;
	sess_start(d, r->pp, r->addr_idx, &r->m, 1);
	event_free(r->ev);
	free(r);
	check_end(d);		/* a start that failed ends the message */
}

/* msg_final - a message will not be tried again: count it */
static void
msg_final(struct dpop *pp, const struct dmsg *m, enum smtpc_outcome oc,
    int expired)
{
	if (expired)
		pp->expired++;
	else switch (oc) {
	case SMTPC_DELIVERED: pp->delivered++; break;
	case SMTPC_REJECTED: pp->rejected++; break;
	case SMTPC_DEFERRED: pp->deferred++; break;
	default: pp->abandoned++; break;
	}
	if (oc == SMTPC_DELIVERED && !expired) {
		if (m->first_contact)
			pp->delivered_first++;
		else
			pp->delivered_ret++;
	}
	if (m->truth == SMTPC_HAM && oc == SMTPC_DELIVERED && !expired) {
		pp->ham_delivered++;
		if (is_legit(pp->p)) {
			dvec_add(&pp->delay, m->added_s);
			dvec_add(m->first_contact ? &pp->delay_first :
			    &pp->delay_ret, m->added_s);
		}
	}
}

/* msg_retry - schedule another attempt, or end the message */
static void
msg_retry(struct drv *d, struct dpop *pp, unsigned long idx,
    const struct dmsg *m, enum smtpc_outcome oc)
{
	const struct population *p = pp->p;
	uint64_t back = scenario_retry_delay(p, m->attempts);
	uint64_t age = (uint64_t)((double)(now_ms() - m->first_ms) *
	    d->sc->clock);
	struct dretry *r;
	struct timeval tv;
	uint64_t wall;

	if (back == 0) {
		msg_final(pp, m, oc, 0);
		return;
	}
	if (age + back > p->retry_lifetime_ms) {
		msg_final(pp, m, oc, 1);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->ev = evtimer_new(d->base, retry_fire, r)) == NULL) {
		log_warnx("out of memory; a retry is dropped");
		free(r);
		msg_final(pp, m, oc, 0);
		return;
	}
	r->d = d;
	r->pp = pp;
	r->addr_idx = idx;
	r->m = *m;
	r->m.added_s += (double)back / 1000;	/* the queue wait counts */
	r->next = d->retries;
	if (d->retries != NULL)
		d->retries->prev = r;
	d->retries = r;
	d->nretries++;
	wall = scenario_wall_ms(d->sc, back);
	tv.tv_sec = (time_t)(wall / 1000);
	tv.tv_usec = (suseconds_t)(wall % 1000) * 1000;
	evtimer_add(r->ev, &tv);
}

/* sess_done - the smtpc finished: count, retry, free */
static void
sess_done(struct smtpc *sc, const struct smtpc_result *res, void *arg)
{
	struct dsess *s = arg;
	struct dpop *pp = s->pp;
	struct drv *d = s->d;
	size_t	i;

	(void)sc;
	pp->open--;
	d->open--;
	pp->end[res->end]++;
	pp->connected += res->connected;
	pp->tls += res->tls;
	pp->backend_4xx += res->busy_4xx;
	pp->mail_4xx += res->mail_4xx;
	if (res->giveup_s >= 0) {
		pp->gave_up++;
		dvec_add(&pp->giveup, res->giveup_s);
	}
	for (i = 0; i < res->nmsg; i++) {
		const struct smtpc_msg_result *mr = &res->msg[i];
		struct dmsg *m = &s->dm[i];

		if (mr->added_delay_s > 0)
			m->added_s += mr->added_delay_s;
		if (mr->outcome == SMTPC_DELIVERED ||
		    mr->outcome == SMTPC_REJECTED)
			msg_final(pp, m, mr->outcome, 0);
		else
			msg_retry(d, pp, s->addr_idx, m, mr->outcome);
	}
	smtpc_free(s->sc);
	s->sc = NULL;
	if (s->c == NULL)
		sess_unlink_free(s);
	check_end(d);
}

/* sess_start - one session of population pp from address idx */
static void
sess_start(struct drv *d, struct dpop *pp, unsigned long idx,
    struct dmsg *dm, size_t nmsg)
{
	const struct population *p = pp->p;
	const struct scenario *sc = d->sc;
	struct smtpc_transport tr;
	struct sockaddr_storage ss;
	struct dsess *s;
	char	err[256];
	size_t	i;
	int	first = 0;

	/* the daemon's first sight of this address in the run */
	if (pp->seen != NULL && idx < p->addresses &&
	    !(pp->seen[idx / 8] & (1u << (idx % 8)))) {
		pp->seen[idx / 8] |= (unsigned char)(1u << (idx % 8));
		first = 1;
	}
	for (i = 0; i < nmsg; i++)
		if (dm[i].attempts == 0)
			dm[i].first_contact = first;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->msgs = calloc(nmsg, sizeof(*s->msgs))) == NULL ||
	    (s->dm = calloc(nmsg, sizeof(*s->dm))) == NULL) {
		log_warnx("out of memory; a session is dropped");
		goto fail_nomem;
	}
	s->d = d;
	s->pp = pp;
	s->addr_idx = idx;
	gettimeofday(&s->start, NULL);
	memcpy(s->dm, dm, nmsg * sizeof(*dm));
	for (i = 0; i < nmsg; i++) {
		s->dm[i].attempts++;
		s->msgs[i].truth = s->dm[i].truth;
		s->msgs[i].population = p->name;
		s->msgs[i].size = s->dm[i].size;
	}
	if (p->rdns_domain[0] != '\0')
		host_name(p, idx, s->helo, sizeof(s->helo));
	else
		snprintf(s->helo, sizeof(s->helo), "%s-%lu.%s", p->name, idx,
		    sc->dns_domain);
	snprintf(s->from, sizeof(s->from), "sender%lu@%s.%s", idx, p->name,
	    sc->dns_domain);
	snprintf(s->rcpt, sizeof(s->rcpt), "user%" PRIu64 "@example.test",
	    scenario_rng_next(&d->rng) % 1000);
	s->rcptv[0] = s->rcpt;
	s->spec.helo = p->random_helo ? NULL : s->helo;
	s->spec.mail_from = s->from;
	s->spec.rcpt = s->rcptv;
	s->spec.nrcpt = 1;
	s->spec.msg = s->msgs;
	s->spec.nmsg = nmsg;
	s->spec.patience_ms = (unsigned)scenario_draw_patience(p, &d->rng);
	s->spec.giveup = p->kind == SCN_ZOMBIE ? SMTPC_GIVEUP_ABORT :
	    SMTPC_GIVEUP_CLOSE;
	s->spec.pregreet = scenario_draw_pct(&d->rng, p->pregreet_pct);
	s->spec.pipelining = p->pipelining;
	s->spec.starttls = p->starttls;
	s->spec.seed = scenario_rng_next(&d->rng);
	tr.send = tr_send;
	tr.close = tr_close;
	tr.abort = tr_abort;
	tr.t = s;
	if ((s->sc = smtpc_new(d->base, &s->spec, &tr, sess_done, s, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s: %s", p->name, err);
		goto fail_nomem;
	}
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	pp->open++;
	pp->sessions++;
	d->open++;
	if (p->kind == SCN_ROUTER) {
		if (d->nrouters == d->caprouters) {
			size_t	nc = d->caprouters ? d->caprouters * 2 : 256;
			struct rstart *nr = realloc(d->routers,
			    nc * sizeof(*nr));

			if (nr != NULL) {
				d->routers = nr;
				d->caprouters = nc;
			}
		}
		if (d->nrouters < d->caprouters) {
			d->routers[d->nrouters].start = s->start;
			d->routers[d->nrouters++].nmsg = (unsigned)nmsg;
		}
	}
	if (scenario_address(sc, p, idx, &ss) == -1) {
		smtpc_on_closed(s->sc, 1);
		return;
	}
	s->c = utcp_connect(d->st, (const union ipaddr *)&ss, &d->dst,
	    p->persona, &ucb, s, err, sizeof(err));
	if (s->c == NULL) {
		pp->refused++;
		log_debug("%s: %s", p->name, err);
		smtpc_on_closed(s->sc, 1);	/* done() comes, as for a loss */
	}
	return;

fail_nomem:
	if (s != NULL) {
		free(s->msgs);
		free(s->dm);
		free(s);
	}
	for (i = 0; i < nmsg; i++)
		msg_final(pp, &dm[i], SMTPC_ABANDONED, 0);
}

/* new_session - a first-attempt session of p: fresh messages */
static void
new_session(struct drv *d, struct dpop *pp)
{
	const struct population *p = pp->p;
	unsigned long idx = (unsigned long)(scenario_rng_next(&d->rng) %
	    p->addresses);
	struct dmsg *dm;
	size_t	i;

	if ((dm = calloc(p->messages, sizeof(*dm))) == NULL) {
		log_warnx("out of memory; a session is dropped");
		return;
	}
	for (i = 0; i < p->messages; i++) {
		dm[i].truth = scenario_draw_truth(p, &d->rng) == SCN_SPAM ?
		    SMTPC_SPAM : SMTPC_HAM;
		dm[i].size = 1500 + scenario_rng_next(&d->rng) % 8000;
		dm[i].first_ms = now_ms();
		pp->msgs++;
		pp->ham += dm[i].truth == SMTPC_HAM;
	}
	d->started++;
	sess_start(d, pp, idx, dm, p->messages);
	free(dm);
}

/* tick - start the sessions that are due by now */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct drv *d = arg;
	uint64_t el = now_ms() - d->t0_ms;
	uint64_t due = el * d->sc->rate / 1000;
	unsigned i;

	(void)fd;
	(void)what;
	if (el >= d->sc->duration_ms) {
		struct timeval tv;

		event_del(d->tick);
		d->draining = 1;
		for (i = 0; i < d->sc->npops; i++) {	/* never started */
			d->pops[i].dropped += d->pops[i].backlog;
			d->pops[i].backlog = 0;
		}
		tv.tv_sec = (time_t)(d->sc->drain_ms / 1000);
		tv.tv_usec = (suseconds_t)(d->sc->drain_ms % 1000) * 1000;
		evtimer_add(d->drain_ev, &tv);
		log_info("run: %" PRIu64 " sessions started; draining (%u "
		    "open, %u retries waiting)", d->started, d->open,
		    d->nretries);
		check_end(d);
		return;
	}
	/* sessions a population's cap held back go first, in file order */
	for (i = 0; i < d->sc->npops; i++) {
		struct dpop *pp = &d->pops[i];

		while (pp->backlog > 0 && d->open < d->sc->concurrency &&
		    pp->open < pp->p->concurrency) {
			pp->backlog--;
			new_session(d, pp);
		}
	}
	while (d->drawn < due) {
		const struct population *p;
		struct dpop *pp;

		if (d->open >= d->sc->concurrency) {
			d->cap_waits++;		/* the total cap: wait */
			break;
		}
		p = scenario_draw_population(d->sc, &d->rng);
		pp = &d->pops[p - d->sc->pops];
		d->drawn++;
		if (pp->open >= p->concurrency) {
			/* its own cap: hold it back, let the others go */
			if (pp->backlog < DRV_BACKLOG_MAX)
				pp->backlog++;
			else
				pp->dropped++;
			continue;
		}
		new_session(d, pp);
	}
}

/* check_end - in the drain: stop when nothing is open or waiting */
static void
check_end(struct drv *d)
{
	if (d->draining && d->open == 0 && d->nretries == 0)
		event_base_loopbreak(d->base);
}

/* drain_over - the drain time is up: end the loop */
static void
drain_over(evutil_socket_t fd, short what, void *arg)
{
	struct drv *d = arg;

	(void)fd;
	(void)what;
	log_info("run: drain time over; %u sessions open, %u retries "
	    "waiting", d->open, d->nretries);
	event_base_loopbreak(d->base);
}

/* proc_kb - a "Name:   N kB" line of /proc/PID/status; -1 = unknown */
static long
proc_kb(pid_t pid, const char *name)
{
	char	path[64], line[256];
	size_t	l = strlen(name);
	long	v = -1;
	FILE   *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, l) == 0 && line[l] == ':') {
			v = strtol(line + l + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* daemon_pid - the daemon itself: the child of its supervisor (-1 = gone) */
static pid_t
daemon_pid(const struct drv *d)
{
	char	path[64];
	long	pid = -1;
	pid_t	sup = d->h[d->nh - 1].pid;	/* started last */
	FILE   *f;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children",
	    (long)sup, (long)sup);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* sample - once a second: the most sessions open, the daemon's memory */
static void
sample(evutil_socket_t fd, short what, void *arg)
{
	struct drv *d = arg;
	size_t	i;

	(void)fd;
	(void)what;
	for (i = 0; i < d->nh; i++)
		if (!helper_alive(&d->h[i])) {
			helper_fail(&d->h[i], "exited during the run");
			d->helper_died = 1;
			event_base_loopbreak(d->base);
			return;
		}
	if (d->open > d->peak_open) {
		d->peak_open = d->open;
		d->rss_peak_kb = proc_kb(daemon_pid(d), "VmRSS");
	}
}

/* early_signal - SIGINT/SIGTERM while no event loop runs */
static void
early_signal(int sig)
{
	(void)sig;
	drv_signalled = 1;
}

/* on_signal - SIGINT/SIGTERM during the run: stop, report nothing */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct drv *d = arg;

	(void)what;
	log_warnx("run: signal %d; stopping", (int)sig);
	d->stopped = 1;
	event_base_loopbreak(d->base);
}

/* msg_pending - the run ends with this message still in a sender's queue */
static void
msg_pending(struct dpop *pp, const struct dmsg *m)
{
	pp->pending++;
	if (m->truth == SMTPC_HAM)
		pp->ham_pending++;
}

/* finish_open - the run is over: what is still open or waiting */
static void
finish_open(struct drv *d)
{
	while (d->retries != NULL) {
		struct dretry *r = d->retries;

		d->retries = r->next;
		msg_pending(r->pp, &r->m);
		event_free(r->ev);
		free(r);
	}
	d->nretries = 0;
	while (d->sessions != NULL) {
		struct dsess *s = d->sessions;

		if (s->sc != NULL) {
			const struct smtpc_result *res = smtpc_result(s->sc);
			size_t	i;

			s->pp->open--;
			d->open--;
			s->pp->backend_4xx += res->busy_4xx;
			s->pp->mail_4xx += res->mail_4xx;
			for (i = 0; i < s->spec.nmsg; i++) {
				const struct smtpc_msg_result *mr = &res->msg[i];
				struct dmsg *m = &s->dm[i];

				if (mr->outcome == SMTPC_UNSENT)
					s->pp->unfinished++;
				if (mr->outcome == SMTPC_DELIVERED ||
				    mr->outcome == SMTPC_REJECTED) {
					if (mr->added_delay_s > 0)
						m->added_s += mr->added_delay_s;
					msg_final(s->pp, m, mr->outcome, 0);
				} else if (s->pp->p->retry_base_ms > 0)
					msg_pending(s->pp, m);	/* queued */
				else if (mr->outcome == SMTPC_DEFERRED)
					s->pp->deferred++;
				else
					s->pp->abandoned++;
			}
		}
		if (s->c != NULL) {
			utcp_abort(s->c);
			s->c = NULL;
		}
		sess_unlink_free(s);
	}
}

/* ------------------------------------------------------------ results */

/* pop_by_name - the population a backend label names */
static struct dpop *
pop_by_name(struct drv *d, const char *name)
{
	unsigned i;

	for (i = 0; i < d->sc->npops; i++)
		if (strcmp(d->sc->pops[i].name, name) == 0)
			return &d->pops[i];
	return NULL;
}

/* read_backend - what the counting backend received, by population */
static int
read_backend(struct drv *d)
{
	char	path[PATH_MAX], err[256];
	const struct jl_val *bp, *e, *c;
	struct jl_reader rd;
	struct jl_doc doc;
	const char *line;
	size_t	len;
	FILE   *f;
	int	rc = -1;

	snprintf(path, sizeof(path), "%s/backend.json", d->work);
	if ((f = fopen(path, "r")) == NULL) {
		log_warn("%s", path);
		return -1;
	}
	jl_reader_init(&rd, f, JL_MAX_LINE);
	jl_doc_init(&doc);
	if (jl_read_line(&rd, &line, &len) == JL_LINE &&
	    jl_parse(&doc, line, len, err, sizeof(err)) == 0 &&
	    (bp = jl_get(&doc, jl_root(&doc), "by_population")) != NULL) {
		for (e = jl_first(&doc, bp); e != NULL; e = jl_next(&doc, e)) {
			struct dpop *pp = pop_by_name(d, jl_key(&doc, e));
			const char *t[] = { "ham", "spam", "unknown" };
			int	i;

			if (pp == NULL)
				continue;
			for (i = 0; i < 3; i++)
				if ((c = jl_get(&doc, e, t[i])) != NULL &&
				    (c = jl_get(&doc, c, "received")) != NULL &&
				    c->type == JL_NUM && c->num >= 0 &&
				    c->num < 1e15)
					pp->sink_received += (uint64_t)c->num;
		}
		rc = 0;
	} else
		log_warnx("%s: unreadable backend counts", path);
	jl_doc_free(&doc);
	jl_reader_free(&rd);
	fclose(f);
	return rc;
}

/* tv_before - 1 when a is earlier than b */
static int
tv_before(const struct timeval *a, const struct timeval *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_usec < b->tv_usec);
}

/* read_events - classes by population; when the routers turned hostile */
static int
read_events(struct drv *d, struct timeval *router_hostile)
{
	char	path[PATH_MAX], err[256], a[INET6_ADDRSTRLEN];
	struct strmap ips = { NULL, 0, 0 };
	struct sockaddr_storage ss;
	struct strmap_ent *e;
	struct jl_reader rd;
	struct jl_doc doc;
	struct evr_rec rec;
	struct timeval mid, st;
	const char *line;
	size_t	len;
	unsigned i;
	unsigned long k;
	FILE   *f;
	int	r;

	router_hostile->tv_sec = 0;
	/* every pool address -> its population */
	for (i = 0; i < d->sc->npops; i++)
		for (k = 0; k < d->sc->pops[i].addresses; k++) {
			if (scenario_address(d->sc, &d->sc->pops[i], k,
			    &ss) == -1 || addr_ntop((struct sockaddr *)&ss, a,
			    sizeof(a), NULL) == -1)
				break;
			if (strmap_insert(&ips, a, strlen(a), &e) == 1)
				e->p = &d->pops[i];
		}
	snprintf(path, sizeof(path), "%s/events.jsonl", d->work);
	if ((f = fopen(path, "r")) == NULL) {
		log_warn("%s", path);
		strmap_free(&ips, NULL);
		return -1;
	}
	mid = d->t0_wall;			/* the run's middle */
	mid.tv_sec += (time_t)(d->sc->duration_ms / 2000);
	jl_reader_init(&rd, f, JL_MAX_LINE);
	jl_doc_init(&doc);
	while ((r = jl_read_line(&rd, &line, &len)) != JL_EOF && r != JL_ERR) {
		const struct evr_rsession *s = &rec.u.s;
		struct dpop *pp;
		int64_t	ms;
		int	c;

		if (r != JL_LINE || jl_parse(&doc, line, len, err,
		    sizeof(err)) != 0 || evr_read(&doc, jl_root(&doc),
		    EVR_R_SESSION, &rec, err, sizeof(err)) != EVR_SESSION)
			continue;
		if (s->client_ip == NULL || (e = strmap_find(&ips,
		    s->client_ip, strlen(s->client_ip))) == NULL)
			continue;
		pp = e->p;
		if (s->control) {
			pp->control++;
			continue;
		}
		c = class_index(s->class_name);
		pp->cls[c]++;
		if ((ms = s->start_ms) != INT64_MIN) {
			st.tv_sec = (time_t)(ms / 1000);
			st.tv_usec = (suseconds_t)(ms % 1000) * 1000;
			if (!tv_before(&st, &mid))
				pp->cls_late[c]++;
			if (pp->p->kind == SCN_ROUTER &&
			    strcmp(class_names[c], "hostile") == 0 &&
			    (router_hostile->tv_sec == 0 ||
			    tv_before(&st, router_hostile)))
				*router_hostile = st;
		}
	}
	jl_doc_free(&doc);
	jl_reader_free(&rd);
	fclose(f);
	strmap_free(&ips, NULL);
	return 0;
}

/* json_num - a number, or null when it is not finite */
static void
json_num(FILE *f, const char *key, double v, int comma)
{
	if (isfinite(v))
		fprintf(f, "%s\"%s\":%.3f", comma ? "," : "", key, v);
	else
		fprintf(f, "%s\"%s\":null", comma ? "," : "", key);
}

/* report - the table, the JSON object, the summary */
static void
report(struct drv *d, int json)
{
	struct timeval rh = { 0, 0 };
	uint64_t zmsgs = 0, zrecv = 0, ham = 0, hdel = 0, hpend = 0;
	uint64_t rmsgs = 0, rrecv = 0, lt = 0, lall = 0;
	uint64_t zunf = 0, l4xx = 0;
	struct dvec alld = { NULL, 0, 0 };
	double	kept, kept_strict, ldel, lmed, rafter = NAN;
	unsigned i, c;
	size_t	k;
	int	have_ev;

	d->backend_ok = read_backend(d) == 0;
	have_ev = read_events(d, &rh) == 0;
	if (have_ev && rh.tv_sec != 0) {
		rafter = 0;
		for (k = 0; k < d->nrouters; k++)
			if (tv_before(&d->routers[k].start, &rh))
				rafter += d->routers[k].nmsg;
	}

	printf("\n%-10s %-11s %7s %7s %7s %7s %7s %7s %7s %7s %8s %8s %8s "
	    "%8s %6s  %s\n", "population", "kind", "sessns", "msgs", "deliv",
	    "reject", "defer", "abandn", "pending", "backend", "giveup_s",
	    "delay_s", "p99_1st", "p99_ret", "bk4xx",
	    "classes t/n/s/h (control)");
	for (i = 0; i < d->sc->npops; i++) {
		struct dpop *pp = &d->pops[i];
		const struct population *p = pp->p;
		double	g = dvec_q(&pp->giveup, 0.5);
		double	dl = dvec_q(&pp->delay, 0.5);
		double	d1 = dvec_q(&pp->delay_first, 0.99);
		double	dr = dvec_q(&pp->delay_ret, 0.99);
		char	gs[16], ds[16], d1s[16], drs[16];

		snprintf(gs, sizeof(gs), isfinite(g) ? "%.1f" : "-", g);
		snprintf(ds, sizeof(ds), isfinite(dl) ? "%.1f" : "-", dl);
		snprintf(d1s, sizeof(d1s), isfinite(d1) ? "%.1f" : "-", d1);
		snprintf(drs, sizeof(drs), isfinite(dr) ? "%.1f" : "-", dr);
		printf("%-10s %-11s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7"
		    PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64
		    " %8s %8s %8s %8s %6" PRIu64 "  %" PRIu64 "/%" PRIu64 "/%"
		    PRIu64 "/%" PRIu64 " (%" PRIu64 ")\n", p->name,
		    scenario_kind_name(p->kind), pp->sessions, pp->msgs,
		    pp->delivered, pp->rejected, pp->deferred,
		    pp->abandoned + pp->expired, pp->pending, pp->sink_received,
		    gs, ds, d1s, drs, pp->backend_4xx, pp->cls[0], pp->cls[1],
		    pp->cls[2], pp->cls[3], pp->control);
		if (p->kind == SCN_ZOMBIE) {
			zmsgs += pp->msgs;
			zrecv += pp->sink_received;
			zunf += pp->unfinished;
		}
		if (p->kind == SCN_ROUTER) {
			rmsgs += pp->msgs;
			rrecv += pp->sink_received;
		}
		if (is_legit(p)) {
			ham += pp->ham;
			hdel += pp->ham_delivered;
			hpend += pp->ham_pending;
			l4xx += pp->backend_4xx;
			for (k = 0; k < pp->delay.n; k++)
				dvec_add(&alld, pp->delay.v[k]);
			if (p->kind == SCN_LEGIT_MTA &&
			    strncmp(p->persona_name, "linux", 5) == 0) {
				lt += pp->cls_late[0];
				for (c = 0; c < DRV_NCLASS; c++)
					lall += pp->cls_late[c];
			}
		}
	}
	kept = zmsgs && d->backend_ok ? 100.0 * (double)(zmsgs - (zrecv <
	    zmsgs ? zrecv : zmsgs)) / (double)zmsgs : NAN;
	kept_strict = zmsgs && d->backend_ok ? 100.0 * (double)(zmsgs -
	    (zrecv + zunf < zmsgs ? zrecv + zunf : zmsgs)) / (double)zmsgs :
	    NAN;
	ldel = ham ? 100.0 * (double)hdel / (double)ham : NAN;
	lmed = dvec_q(&alld, 0.5);
	printf("\nsessions started %" PRIu64 " (+ retries); starts that "
	    "waited for the total concurrency cap: %" PRIu64 "\n", d->started,
	    d->cap_waits);
	printf("zombie messages kept from the backend: %.2f%% (%" PRIu64
	    " of %" PRIu64 " reached it; %" PRIu64 " were in sessions still "
	    "open when the drain ended, %.2f%% kept out without them)\n",
	    kept, zrecv, zmsgs, zunf, kept_strict);
	printf("legitimate messages delivered: %.3f%% (%" PRIu64 " of %"
	    PRIu64 ", %" PRIu64 " still queued, %" PRIu64 " lost); median "
	    "added delay %.2f s\n", ldel, hdel, ham, hpend,
	    ham - hdel - hpend, lmed);
	printf("legitimate senders' 4xx for want of backend capacity: %"
	    PRIu64 "\n", l4xx);
	if (isfinite(rafter))
		printf("routers reached class hostile after %.0f of their %"
		    PRIu64 " messages; ", rafter, rmsgs);
	else
		printf("routers never reached class hostile; ");
	printf("%" PRIu64 " of their %" PRIu64 " messages reached the "
	    "backend\n", rrecv, rmsgs);
	if (lall)
		printf("modern-Linux MTAs trusted in the second half: %.1f%%\n",
		    100.0 * (double)lt / (double)lall);
	printf("most sessions open at once: %u; daemon RSS %ld kB at the "
	    "start, %ld kB then\n", d->peak_open, d->rss0_kb, d->rss_peak_kb);
	printf("work directory: %s\n", d->work);
	if (!json) {
		free(alld.v);
		return;
	}
	printf("{\"scenario\":");
	{
		char	buf[1024];

		fputs(fp_json_str(buf, sizeof(buf), d->sc->file) == -1 ?
		    "null" : buf, stdout);
	}
	printf(",\"populations\":[");
	for (i = 0; i < d->sc->npops; i++) {
		struct dpop *pp = &d->pops[i];

		printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"persona\":\"%s\","
		    "\"sessions\":%" PRIu64 ",\"retry_sessions\":%" PRIu64
		    ",\"attempted\":%" PRIu64 ",\"delivered\":%" PRIu64
		    ",\"rejected\":%" PRIu64 ",\"deferred\":%" PRIu64
		    ",\"abandoned\":%" PRIu64 ",\"expired\":%" PRIu64
		    ",\"pending\":%" PRIu64 ",\"reached_backend\":%" PRIu64
		    ",\"sessions_gave_up\":%" PRIu64 ",\"tls_sessions\":%"
		    PRIu64 ",\"starts_dropped\":%" PRIu64, i ? "," : "", pp->p->name,
		    scenario_kind_name(pp->p->kind), pp->p->persona_name,
		    pp->sessions, pp->retry_sessions, pp->msgs, pp->delivered,
		    pp->rejected, pp->deferred, pp->abandoned, pp->expired,
		    pp->pending, pp->sink_received, pp->gave_up, pp->tls,
		    pp->dropped);
		printf(",\"delivered_first\":%" PRIu64 ",\"delivered_returning\":%"
		    PRIu64 ",\"backend_4xx\":%" PRIu64 ",\"mail_4xx\":%" PRIu64
		    ",\"unfinished_at_end\":%" PRIu64, pp->delivered_first,
		    pp->delivered_ret, pp->backend_4xx, pp->mail_4xx,
		    pp->unfinished);
		json_num(stdout, "giveup_median_s", dvec_q(&pp->giveup, 0.5),
		    1);
		json_num(stdout, "added_delay_median_s",
		    dvec_q(&pp->delay, 0.5), 1);
		json_num(stdout, "added_delay_p99_s",
		    dvec_q(&pp->delay, 0.99), 1);
		json_num(stdout, "added_delay_first_p99_s",
		    dvec_q(&pp->delay_first, 0.99), 1);
		json_num(stdout, "added_delay_returning_p99_s",
		    dvec_q(&pp->delay_ret, 0.99), 1);
		printf(",\"classes\":{");
		for (c = 0; c < DRV_NCLASS; c++)
			printf("%s\"%s\":%" PRIu64, c ? "," : "",
			    class_names[c], pp->cls[c]);
		printf(",\"control\":%" PRIu64 "},\"classes_second_half\":{",
		    pp->control);
		for (c = 0; c < DRV_NCLASS; c++)
			printf("%s\"%s\":%" PRIu64, c ? "," : "",
			    class_names[c], pp->cls_late[c]);
		printf("}}");
	}
	printf("],\"summary\":{");
	json_num(stdout, "zombie_kept_out_pct", kept, 0);
	printf(",\"legit_lost\":%" PRIu64, ham - hdel - hpend);
	printf(",\"legit_pending\":%" PRIu64, hpend);
	json_num(stdout, "legit_delivered_pct", ldel, 1);
	json_num(stdout, "legit_median_added_delay_s", lmed, 1);
	if (isfinite(rafter))	/* a count: no decimals */
		printf(",\"router_hostile_after_msgs\":%.0f", rafter);
	else
		printf(",\"router_hostile_after_msgs\":null");
	json_num(stdout, "router_kept_out_pct", rmsgs && d->backend_ok ?
	    100.0 * (double)(rmsgs -
	    (rrecv < rmsgs ? rrecv : rmsgs)) / (double)rmsgs : NAN, 1);
	json_num(stdout, "linux_mta_trusted_late_pct", lall ? 100.0 *
	    (double)lt / (double)lall : NAN, 1);
	printf(",\"zombie_unfinished_at_end\":%" PRIu64, zunf);
	json_num(stdout, "zombie_kept_out_strict_pct", kept_strict, 1);
	printf(",\"legit_backend_4xx\":%" PRIu64, l4xx);
	printf("},\"load\":{\"sessions_started\":%" PRIu64 ",\"peak_open\":%u,"
	    "\"daemon_rss_start_kb\":%ld,\"daemon_rss_at_peak_kb\":%ld,"
	    "\"daemon_hwm_kb\":%ld", d->started, d->peak_open, d->rss0_kb,
	    d->rss_peak_kb, d->hwm_kb);
	json_num(stdout, "daemon_bytes_per_open_session", d->peak_open &&
	    d->rss0_kb > 0 && d->rss_peak_kb > 0 ? 1024.0 *
	    (double)(d->rss_peak_kb - d->rss0_kb) / d->peak_open : NAN, 1);
	printf(",\"tcp\":{\"pkts_out\":%" PRIu64 ",\"pkts_in\":%" PRIu64
	    ",\"retransmits\":%" PRIu64 ",\"rst_in\":%" PRIu64 ",\"rst_out\":%"
	    PRIu64 ",\"persist_probes\":%" PRIu64 "}}}\n", d->us.pkts_out,
	    d->us.pkts_in, d->us.retransmits, d->us.rst_in, d->us.rst_out,
	    d->us.persist_probes);
	free(alld.v);
}

/* ------------------------------------------------------------ main */

/* usage - the synopsis on stderr */
static int
usage(void)
{
	fprintf(stderr, "usage: mailshaper-swarm run [-S SCENARIO] "
	    "[-P PERSONAS] [-w DIR] [-o name=value]...\n"
	    "           [--netns new|here] [--mailshaper PATH] [--json] "
	    "[-v]\n");
	return 2;
}

/* run_main - mailshaper-swarm run */
int
run_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "netns", required_argument, NULL, 'N' },
		{ "mailshaper", required_argument, NULL, 'M' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	const char *spath = NULL, *ppath = NULL, *wdir = NULL, *ms = NULL;
	char	err[512], dir[DRV_PATH], msbuf[PATH_MAX], cert[PATH_MAX];
	char	key[PATH_MAX], host[INET6_ADDRSTRLEN], a4[64], a6[64];
	char   *extra = NULL;
	size_t	extralen = 0;
	struct netns_conf nc = { 1, NULL, NULL, "tun0", "198.18.0.0/15",
	    "2001:db8::/32" };
	struct drv *d;
	struct timeval tv = { 0, DRV_TICK_MS * 1000 };
	int	ch, json = 0, tunfd = -1, rc = 1, port;
	unsigned i;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (extra = strdup("")) == NULL) {
		log_warnx("out of memory");
		free(d);
		return 1;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "S:P:w:o:v", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'S': spath = optarg; break;
		case 'P': ppath = optarg; break;
		case 'w': wdir = optarg; break;
		case 'o': {
			const char *eq = strchr(optarg, '=');
			size_t	l = strlen(optarg);
			char   *n;

			if (eq == NULL || eq == optarg) {
				log_warnx("-o %s: want name=value", optarg);
				goto usage;
			}
			if ((n = realloc(extra, extralen + l + 4)) == NULL)
				goto out;
			extra = n;
			extralen += (size_t)snprintf(extra + extralen, l + 4,
			    "%.*s = %s\n", (int)(eq - optarg), optarg,
			    eq + 1);
			break;
		}
		case 'v': log_set_verbose(1); break;
		case 'N':
			if (netns_parse_mode(optarg, &nc.new_ns) == -1)
				goto usage;
			break;
		case 'M': ms = optarg; break;
		case 'j': json = 1; break;
		default: goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	if (spath == NULL)
		spath = "default";
	if (strchr(spath, '/') == NULL && strstr(spath, ".scn") == NULL)
		spath = scenario_default_path(spath);
	if (ppath == NULL)
		ppath = persona_default_path();
	if (persona_load(ppath, &d->ps, err, sizeof(err)) == -1 ||
	    (d->sc = scenario_load(spath, &d->ps, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		rc = 2;
		goto out;
	}
	if (ms == NULL) {
		self_dir(dir, sizeof(dir));
		snprintf(msbuf, sizeof(msbuf), "%s/mailshaper", dir);
		ms = msbuf;
	}
	if (access(ms, X_OK) == -1) {
		log_warn("%s", ms);
		goto out;
	}
	if (wdir != NULL) {
		if (mkdir(wdir, 0755) == -1 && errno != EEXIST) {
			log_warn("%s", wdir);
			goto out;
		}
		char	rp[PATH_MAX];

		if (realpath(wdir, rp) == NULL || strlen(rp) >= DRV_PATH) {
			log_warnx("%s: not usable as a work directory", wdir);
			goto out;
		}
		memcpy(d->work, rp, strlen(rp) + 1);
	} else {
		snprintf(d->work, sizeof(d->work),
		    "/tmp/mailshaper-swarm.XXXXXX");
		if (mkdtemp(d->work) == NULL) {
			log_warn("mkdtemp");
			goto out;
		}
	}
	chmod(d->work, 0755);	/* rbldnsd reads it after dropping root */
	{		/* a reused directory keeps its store, not its counts */
		static const char *const old[] = { "events.jsonl",
		    "backend.json" };
		char	path[PATH_MAX];

		for (i = 0; i < sizeof(old) / sizeof(*old); i++) {
			snprintf(path, sizeof(path), "%s/%s", d->work, old[i]);
			if (unlink(path) == -1 && errno != ENOENT)
				log_warn("%s", path);
		}
	}
	if (write_dns(d) == -1)
		goto out;
	snprintf(cert, sizeof(cert), "%s/cert.pem", d->work);
	snprintf(key, sizeof(key), "%s/key.pem", d->work);
	if (tlsgen_selfsigned(cert, key, "mailshaper.swarm.example", err,
	    sizeof(err)) == -1)
		log_warnx("no STARTTLS in this run: %s", err);
	else
		d->tls = 1;

	/* the private network */
	addr_ntop((const struct sockaddr *)&d->sc->daemon.ss, host,
	    sizeof(host), &port);
	if (d->sc->daemon.ss.ss_family == AF_INET6) {
		snprintf(a6, sizeof(a6), "%s", host);
		nc.daemon_addr6 = a6;
	} else {
		snprintf(a4, sizeof(a4), "%s", host);
		nc.daemon_addr = a4;
	}
	memcpy(&d->dst, &d->sc->daemon.ss, d->sc->daemon.ss.ss_family ==
	    AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	if (netns_setup(&nc, &tunfd, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = early_signal;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGCHLD, SIG_DFL);	/* waitpid() must see them */
		signal(SIGPIPE, SIG_IGN);
	}
	if (start_helpers(d, ms, extra) == -1 || drv_signalled)
		goto out;

	if ((d->base = event_base_new()) == NULL ||
	    (d->st = utcp_stack_new(d->base, tunfd)) == NULL ||
	    (d->tick = event_new(d->base, -1, EV_PERSIST, tick, d)) == NULL ||
	    (d->drain_ev = evtimer_new(d->base, drain_over, d)) == NULL ||
	    (d->sigint = evsignal_new(d->base, SIGINT, on_signal, d)) ==
	    NULL ||
	    (d->sigterm = evsignal_new(d->base, SIGTERM, on_signal, d)) ==
	    NULL ||
	    (d->sample = event_new(d->base, -1, EV_PERSIST, sample, d)) ==
	    NULL) {
		log_warnx("out of memory");
		goto out;
	}
	for (i = 0; i < d->sc->npops; i++) {
		d->pops[i].p = &d->sc->pops[i];
		if ((d->pops[i].seen = calloc(d->sc->pops[i].addresses / 8 + 1,
		    1)) == NULL)
			log_warnx("out of memory: %s's first contacts count "
			    "as returning", d->sc->pops[i].name);
	}
	d->rng = d->sc->seed;
	evsignal_add(d->sigint, NULL);
	evsignal_add(d->sigterm, NULL);
	d->t0_ms = now_ms();
	gettimeofday(&d->t0_wall, NULL);
	evtimer_add(d->tick, &tv);
	d->rss0_kb = proc_kb(daemon_pid(d), "VmRSS");
	{
		struct timeval one = { 1, 0 };

		evtimer_add(d->sample, &one);
	}
	log_info("run: %s for %" PRIu64 " s at %u sessions/s, up to %u at "
	    "once; work directory %s", d->sc->file, d->sc->duration_ms / 1000,
	    d->sc->rate, d->sc->concurrency, d->work);
	event_base_dispatch(d->base);
	evsignal_del(d->sigint);	/* back to early_signal() */
	evsignal_del(d->sigterm);
	d->hwm_kb = proc_kb(daemon_pid(d), "VmHWM");
	utcp_stats(d->st, &d->us);
	finish_open(d);
	stop_helpers(d);
	if (d->stopped || d->helper_died || drv_signalled)
		goto out;
	report(d, json);
	rc = 0;
	goto out;
usage:
	rc = usage();
out:
	stop_helpers(d);
	finish_open(d);
	if (d->tick != NULL)
		event_free(d->tick);
	if (d->drain_ev != NULL)
		event_free(d->drain_ev);
	if (d->sigint != NULL)
		event_free(d->sigint);
	if (d->sigterm != NULL)
		event_free(d->sigterm);
	if (d->sample != NULL)
		event_free(d->sample);
	utcp_stack_free(d->st);
	if (d->base != NULL)
		event_base_free(d->base);
	if (tunfd != -1)
		close(tunfd);
	for (i = 0; i < SCN_MAX_POPS; i++) {
		free(d->pops[i].giveup.v);
		free(d->pops[i].delay.v);
		free(d->pops[i].delay_first.v);
		free(d->pops[i].delay_ret.v);
		free(d->pops[i].seen);
	}
	free(d->routers);
	scenario_free(d->sc);
	persona_set_free(&d->ps);
	free(extra);
	free(d);
	return rc;
}
