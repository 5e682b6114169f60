/*
 * test_fcrdns.c - cmocka tests for src/dns/fcrdns.c against a real dnsmasq
 *
 * The group setup starts Debian's dnsmasq (/usr/sbin/dnsmasq) on a free
 * UDP port of 127.0.0.1, serving only the records below (--no-resolv,
 * --no-hosts; --local makes every other name in the test zones NXDOMAIN),
 * and points an evdns base at it.  The addresses are DNS data only: no
 * packet goes anywhere but the loopback DNS server.  Without dnsmasq the
 * tests are skipped.
 *
 * What it tests:
 *   - lookup_cases[]: forward-confirmed (IPv4, IPv6, IPv4-mapped IPv6, a
 *     name with several A records), a PTR whose A is another address, no
 *     PTR (NXDOMAIN), a PTR name with no address, garbage PTR names
 *     ("bad_name!.example.net", a dotted quad), the organisational domain
 *     of mail-dm6nam10on2041.outbound.protection.outlook.com;
 *   - several PTR records, each forward-confirmed: one of them verifies;
 *   - the callback never runs inside fcrdns_lookup(), also on cache hits;
 *   - the cache: a second lookup, verified or not, is a cache hit;
 *   - a UDP socket that never answers: NULL within the deadline;
 *   - fcrdns_cancel() before the answer and on a cache hit: no callback;
 *   - fcrdns_shutdown() with lookups in flight: no callback, no leak;
 *   - a NULL evdns base or an AF_UNIX client: NULL, no callback;
 *   - fcrdns_valid_name() on name_cases[].
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dns/fcrdns.h"
#include "dns/psl.h"
#include "util/log.h"

#define DNSMASQ	"/usr/sbin/dnsmasq"

/* dnsmasq's records: host-record gives A/AAAA and the matching PTR. */
static const char *const records[] = {
	"--local=/example.net/",
	"--local=/outlook.com/",
	"--local=/in-addr.arpa/",
	"--local=/ip6.arpa/",
	"--host-record=mail-a.example.net,198.51.100.10",
	"--ptr-record=20.100.51.198.in-addr.arpa,liar.example.net",
	"--host-record=liar.example.net,198.51.100.99",
	"--ptr-record=40.100.51.198.in-addr.arpa,bad!.example.net",
	"--address=/bad!.example.net/198.51.100.40",
	"--host-record=under_score.example.net,198.51.100.45",
	"--host-record=mail-dm6nam10on2041.outbound.protection.outlook.com,"
	    "198.51.100.41",
	"--ptr-record=42.100.51.198.in-addr.arpa,192.0.2.1",
	"--ptr-record=43.100.51.198.in-addr.arpa,nowhere.example.net",
	"--ptr-record=50.100.51.198.in-addr.arpa,multi-a.example.net",
	"--ptr-record=50.100.51.198.in-addr.arpa,multi-b.example.net",
	"--host-record=multi-a.example.net,198.51.100.50",
	"--host-record=multi-b.example.net,198.51.100.50",
	"--host-record=pool.example.net,198.51.100.60",
	"--host-record=pool.example.net,198.51.100.61",
	"--host-record=mail6.example.net,2001:db8::25",
	"--ptr-record=6.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0."
	    "1.0.0.2.ip6.arpa,liar6.example.net",
	"--host-record=liar6.example.net,2001:db8::99",
};

struct lookup_case {
	const char *ip;
	const char *name;	/* expected verified name, NULL = none */
	const char *org;	/* expected organisational domain */
	const char *what;
};

static const struct lookup_case lookup_cases[] = {
	{"198.51.100.10", "mail-a.example.net", "example.net", "verified"},
	{"::ffff:198.51.100.10", "mail-a.example.net", "example.net",
	    "IPv4-mapped client looked up as IPv4"},
	{"198.51.100.20", NULL, NULL, "PTR's A is another address"},
	{"198.51.100.30", NULL, NULL, "no PTR (NXDOMAIN)"},
	{"198.51.100.40", NULL, NULL,
	    "garbage PTR name bad!.example.net, although its A matches"},
	{"198.51.100.45", NULL, NULL,
	    "PTR name under_score.example.net, although its A matches"},
	{"198.51.100.41", "mail-dm6nam10on2041.outbound.protection.outlook.com",
	    "outlook.com", "Microsoft 365 name reduced to outlook.com"},
	{"198.51.100.42", NULL, NULL, "PTR name is a dotted quad"},
	{"198.51.100.43", NULL, NULL, "PTR name has no address"},
	{"198.51.100.61", "pool.example.net", "example.net",
	    "client is the second of two A records"},
	{"2001:db8::25", "mail6.example.net", "example.net", "IPv6 verified"},
	{"2001:db8::26", NULL, NULL, "IPv6 PTR's AAAA is another address"},
	{"2001:db8::27", NULL, NULL, "IPv6 no PTR"},
};

static struct {
	pid_t	pid;
	int	port;
	char	dir[64];
	struct event_base *base;
	struct evdns_base *dns;
} T;

struct result {
	int	called;		/* callback runs */
	int	sync;		/* ran inside fcrdns_lookup() */
	char	name[256];	/* "" = NULL */
	char	org[256];
};

static int in_lookup;

/* got - record the answer, stop the loop */
static void
got(void *arg, const char *name, const char *org)
{
	struct result *r = arg;

	r->called++;
	r->sync |= in_lookup;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
	snprintf(r->org, sizeof(r->org), "%s", org ? org : "");
	event_base_loopbreak(T.base);
}

/* sockaddr_of - parse a numeric address */
static void
sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	assert_int_equal(evutil_parse_sockaddr_port(ip, (struct sockaddr *)ss,
	    &len), 0);
}

/* now_ms - monotonic milliseconds */
static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* lookup - one lookup run to completion on dns; elapsed ms */
static long
lookup(struct evdns_base *dns, const char *ip, long timeout_ms,
    struct result *r)
{
	struct sockaddr_storage ss;
	struct fcrdns_req *req;
	long t0 = now_ms();

	memset(r, 0, sizeof(*r));
	sockaddr_of(ip, &ss);
	in_lookup = 1;
	req = fcrdns_lookup(dns, (struct sockaddr *)&ss, timeout_ms, got, r);
	in_lookup = 0;
	assert_non_null(req);
	while (!r->called && now_ms() - t0 < 10000)
		event_base_loop(T.base, EVLOOP_ONCE);
	assert_int_equal(r->called, 1);
	assert_int_equal(r->sync, 0);
	return now_ms() - t0;
}

/* run_for - run the loop for ms milliseconds */
static void
run_for(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(T.base, &tv);
	event_base_dispatch(T.base);
}

/* dns_ready - does 127.0.0.1:port answer a query for mail-a.example.net? */
static int
dns_ready(int port)
{
	static const uint8_t q[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		6, 'm', 'a', 'i', 'l', '-', 'a', 7, 'e', 'x', 'a', 'm', 'p',
		'l', 'e', 3, 'n', 'e', 't', 0, 0, 1, 0, 1,
	};
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { 0, 100000 };
	uint8_t buf[512];
	int fd, ok;

	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ok = sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin,
	    sizeof(sin)) > 0 && recv(fd, buf, sizeof(buf), 0) > 3 &&
	    (buf[3] & 0x0f) == 0;
	close(fd);
	return ok;
}

/* free_port - a UDP port of 127.0.0.1 nobody uses right now */
static int
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd, port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* evdns_at - an evdns base asking only 127.0.0.1:port */
static struct evdns_base *
evdns_at(int port)
{
	struct evdns_base *dns;
	char addr[32];

	dns = evdns_base_new(T.base, 0);
	assert_non_null(dns);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(evdns_base_nameserver_ip_add(dns, addr), 0);
	evdns_base_set_option(dns, "timeout:", "1");
	evdns_base_set_option(dns, "attempts:", "2");
	return dns;
}

static int
group_setup(void **state)
{
	const char *argv[64];
	char portopt[32], err[256];
	int argc = 0, i, fd;
	size_t k;

	(void)state;
	log_init(LOG_TO_STDERR, "test_fcrdns");
	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "test_fcrdns: %s missing, tests skipped\n",
		    DNSMASQ);
		return 0;
	}
	psl_load(NULL, err, sizeof(err));	/* fallback if missing */
	T.port = free_port();
	snprintf(portopt, sizeof(portopt), "--port=%d", T.port);
	argv[argc++] = DNSMASQ;
	argv[argc++] = "--no-daemon";
	argv[argc++] = "--no-resolv";
	argv[argc++] = "--no-hosts";
	argv[argc++] = "--listen-address=127.0.0.1";
	argv[argc++] = "--bind-interfaces";
	argv[argc++] = "--pid-file=";
	argv[argc++] = portopt;
	for (k = 0; k < sizeof(records) / sizeof(records[0]); k++)
		argv[argc++] = records[k];
	argv[argc] = NULL;
	if ((T.pid = fork()) == 0) {
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(DNSMASQ, (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 100 && !dns_ready(T.port); i++)
		usleep(50000);
	if (i == 100) {
		kill(T.pid, SIGKILL);
		waitpid(T.pid, NULL, 0);
		T.pid = 0;
		fprintf(stderr, "test_fcrdns: dnsmasq did not start\n");
		return -1;
	}
	T.base = event_base_new();
	T.dns = evdns_at(T.port);
	fcrdns_init(T.base);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	fcrdns_shutdown();
	if (T.base != NULL)
		run_for(10);		/* detached queries free themselves */
	if (T.dns != NULL)
		evdns_base_free(T.dns, 0);
	if (T.base != NULL)
		event_base_free(T.base);
	if (T.pid > 0) {
		kill(T.pid, SIGTERM);
		waitpid(T.pid, NULL, 0);
	}
	psl_free();
	return 0;
}

/* need_dnsmasq - skip a test when the server could not be started */
static void
need_dnsmasq(void)
{
	if (T.pid <= 0)
		skip();
}

static void
test_lookup_cases(void **state)
{
	struct result r;
	size_t i;
	unsigned long hits;

	(void)state;
	need_dnsmasq();
	for (i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *c = &lookup_cases[i];

		fcrdns_stats(NULL, NULL, NULL, NULL, &hits);
		lookup(T.dns, c->ip, 3000, &r);
		if (strcmp(r.name, c->name ? c->name : "") != 0 ||
		    strcmp(r.org, c->org ? c->org : "") != 0)
			fail_msg("%s (%s): got name '%s' org '%s'", c->ip,
			    c->what, r.name, r.org);
	}
}

static void
test_multiple_ptr(void **state)
{
	struct result r;

	(void)state;
	need_dnsmasq();
	lookup(T.dns, "198.51.100.50", 3000, &r);
	if (strcmp(r.name, "multi-a.example.net") != 0 &&
	    strcmp(r.name, "multi-b.example.net") != 0)
		fail_msg("198.51.100.50: got '%s'", r.name);
	assert_string_equal(r.org, "example.net");
}

static void
test_cache(void **state)
{
	unsigned long l0, h0, l1, h1;
	struct result r;
	long ms;

	(void)state;
	need_dnsmasq();
	lookup(T.dns, "198.51.100.41", 3000, &r);	/* fills the cache */
	fcrdns_stats(&l0, NULL, NULL, NULL, &h0);
	ms = lookup(T.dns, "198.51.100.41", 3000, &r);	/* async, cached */
	fcrdns_stats(&l1, NULL, NULL, NULL, &h1);
	assert_int_equal(l1, l0 + 1);
	assert_int_equal(h1, h0 + 1);
	assert_true(ms < 100);
	assert_string_equal(r.org, "outlook.com");
	/* not verified is cached too */
	lookup(T.dns, "198.51.100.20", 3000, &r);
	fcrdns_stats(NULL, NULL, NULL, NULL, &h0);
	lookup(T.dns, "198.51.100.20", 3000, &r);
	fcrdns_stats(NULL, NULL, NULL, NULL, &h1);
	assert_int_equal(h1, h0 + 1);
	assert_string_equal(r.name, "");
}

static void
test_timeout(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	struct evdns_base *dns;
	unsigned long t0, t1;
	struct result r;
	long ms;
	int fd;

	(void)state;
	if (T.base == NULL)
		skip();
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);	/* binds, never answers */
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	dns = evdns_at(ntohs(sin.sin_port));
	fcrdns_stats(NULL, NULL, NULL, &t0, NULL);
	ms = lookup(dns, "198.51.100.77", 300, &r);
	fcrdns_stats(NULL, NULL, NULL, &t1, NULL);
	assert_string_equal(r.name, "");
	assert_int_equal(t1, t0 + 1);
	assert_true(ms >= 280 && ms < 1000);
	/* a timeout is not cached: the next lookup times out again */
	ms = lookup(dns, "198.51.100.77", 200, &r);
	assert_true(ms >= 180);
	run_for(10);
	evdns_base_free(dns, 0);
	close(fd);
}

static void
test_cancel(void **state)
{
	struct sockaddr_storage ss;
	struct fcrdns_req *req;
	struct result r;

	(void)state;
	need_dnsmasq();
	memset(&r, 0, sizeof(r));
	sockaddr_of("198.51.100.60", &ss);
	req = fcrdns_lookup(T.dns, (struct sockaddr *)&ss, 3000, got, &r);
	assert_non_null(req);
	fcrdns_cancel(req);
	run_for(300);
	assert_int_equal(r.called, 0);
	/* a cache hit cancelled before its delivery */
	lookup(T.dns, "198.51.100.10", 3000, &r);
	memset(&r, 0, sizeof(r));
	sockaddr_of("198.51.100.10", &ss);
	req = fcrdns_lookup(T.dns, (struct sockaddr *)&ss, 3000, got, &r);
	assert_non_null(req);
	fcrdns_cancel(req);
	run_for(50);
	assert_int_equal(r.called, 0);
}

static void
test_no_lookup(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct result r;

	(void)state;
	if (T.base == NULL)
		skip();
	memset(&r, 0, sizeof(r));
	sockaddr_of("198.51.100.10", &ss);
	assert_null(fcrdns_lookup(NULL, (struct sockaddr *)&ss, 1000, got,
	    &r));
	if (T.dns != NULL)
		assert_null(fcrdns_lookup(T.dns, (struct sockaddr *)&sun, 1000,
		    got, &r));
	run_for(20);
	assert_int_equal(r.called, 0);
}

/* Runs last: shutdown with lookups in flight, then init again. */
static void
test_shutdown_in_flight(void **state)
{
	static const char *const ips[] = {
		"198.51.100.10", "198.51.100.30", "2001:db8::25",
	};
	struct sockaddr_storage ss;
	struct result r[3];
	struct evdns_base *dns;
	size_t i;

	(void)state;
	need_dnsmasq();
	fcrdns_shutdown();			/* empty cache */
	fcrdns_init(T.base);
	dns = evdns_at(T.port);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++) {
		sockaddr_of(ips[i], &ss);
		assert_non_null(fcrdns_lookup(dns, (struct sockaddr *)&ss,
		    3000, got, &r[i]));
	}
	fcrdns_shutdown();
	run_for(200);
	for (i = 0; i < 3; i++)
		assert_int_equal(r[i].called, 0);
	evdns_base_free(dns, 0);
	fcrdns_init(T.base);
}

struct name_case {
	const char *in;
	const char *out;	/* NULL = rejected */
};

static const struct name_case name_cases[] = {
	{"mail-a.example.net", "mail-a.example.net"},
	{"Mail-A.Example.NET.", "mail-a.example.net"},
	{"x1.a-b.c0m", "x1.a-b.c0m"},
	{"localhost", NULL},
	{"192.0.2.1", NULL},
	{"192.0.2.1.in-addr.arpa", "192.0.2.1.in-addr.arpa"},
	{"bad_name.example.net", NULL},
	{"bad name.example.net", NULL},
	{"bad!.example.net", NULL},
	{"-x.example.net", NULL},
	{"x-.example.net", NULL},
	{"a..example.net", NULL},
	{".example.net", NULL},
	{"", NULL},
	{".", NULL},
	{"example.net..", NULL},
	{"xn--85x722f.xn--fiqs8s", "xn--85x722f.xn--fiqs8s"},
	{"\xe9t\xe9.example.net", NULL},
	{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".example.net", NULL},
};

static void
test_valid_name(void **state)
{
	char buf[254], big[300];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		r = fcrdns_valid_name(name_cases[i].in, buf, sizeof(buf));
		if (name_cases[i].out == NULL && r == 0)
			fail_msg("'%s' accepted as '%s'", name_cases[i].in,
			    buf);
		if (name_cases[i].out != NULL && (r != 0 ||
		    strcmp(buf, name_cases[i].out) != 0))
			fail_msg("'%s' rejected or changed", name_cases[i].in);
	}
	assert_int_equal(fcrdns_valid_name(NULL, buf, sizeof(buf)), -1);
	memset(big, 'a', sizeof(big));
	for (i = 63; i < 253; i += 64)
		big[i] = '.';
	big[253] = '\0';			/* 253 bytes: the limit */
	assert_int_equal(fcrdns_valid_name(big, buf, sizeof(buf)), 0);
	assert_int_equal(fcrdns_valid_name(big, buf, 200), -1);	/* short buf */
	big[253] = 'a';
	big[254] = '\0';
	assert_int_equal(fcrdns_valid_name(big, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_name),
		cmocka_unit_test(test_lookup_cases),
		cmocka_unit_test(test_multiple_ptr),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_no_lookup),
		cmocka_unit_test(test_shutdown_in_flight),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
