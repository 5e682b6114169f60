/*
 * test_addr.c - cmocka tests for src/util/addr.c
 *
 * What it tests: endpoint parsing (endpoint_cases[]: host:port, [v6]:port,
 * unix:/path, a bare port, the default port, localhost, and each error with
 * its message), CIDR parsing (cidr_parse_cases[]: host bits cleared, bad
 * prefixes), CIDR matching (cidr_match_cases[]: /0 for each family, /8,
 * /12, /32, a v6 /64 and /128, family mismatch), the folding of
 * IPv4-mapped IPv6 addresses with addr_unmap() (a mapped client matches the
 * IPv4 prefix only after unmapping), addr_ntop() and addr_key().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "util/addr.h"

struct endpoint_case {
	const char *in;
	int	default_port;
	int	family;		/* AF_*, or -1 for an error */
	const char *host;	/* numeric host, unix path, or error prefix */
	int	port;
};

static const struct endpoint_case endpoint_cases[] = {
	{"127.0.0.1:25", 25, AF_INET, "127.0.0.1", 25},
	{"192.0.2.1:2525", 25, AF_INET, "192.0.2.1", 2525},
	{"10.0.0.1", 25, AF_INET, "10.0.0.1", 25},
	{"2525", 25, AF_INET, "0.0.0.0", 2525},
	{":2525", 25, AF_INET, "0.0.0.0", 2525},
	{"localhost:10025", 25, AF_INET, "127.0.0.1", 10025},
	{"[::1]:2525", 25, AF_INET6, "::1", 2525},
	{"[::]:25", 25, AF_INET6, "::", 25},
	{"[2001:db8::5]", 25, AF_INET6, "2001:db8::5", 25},
	{"[::ffff:192.0.2.1]:25", 25, AF_INET6, "::ffff:192.0.2.1", 25},
	{"unix:/run/postfix/smtpd.sock", 25, AF_UNIX, "/run/postfix/smtpd.sock", 0},
	{"127.0.0.1:65535", 25, AF_INET, "127.0.0.1", 65535},
	/* errors */
	{"::1:25", 25, -1, "bad address '::1:25': write IPv6 as [addr]:port", 0},
	{"::1", 25, -1, "bad address '::1': write IPv6 as [addr]:port", 0},
	{"[::1", 25, -1, "bad address '[::1': missing ']'", 0},
	{"[::1]x", 25, -1, "bad address '[::1]x'", 0},
	{"[::1]:", 25, -1, "bad port in '[::1]:'", 0},
	{"1.2.3.4:", 25, -1, "bad port in '1.2.3.4:'", 0},
	{"1.2.3.4:65536", 25, -1, "bad port in '1.2.3.4:65536'", 0},
	{"1.2.3.4:25x", 25, -1, "bad port in '1.2.3.4:25x'", 0},
	{"1.2.3.4:-1", 25, -1, "bad port in '1.2.3.4:-1'", 0},
	{"1.2.3.4:0", 25, -1, "missing port in '1.2.3.4:0'", 0},
	{"1.2.3.4", 0, -1, "missing port in '1.2.3.4'", 0},
	{"mx.example.com:25", 25, -1,
	    "bad address 'mx.example.com:25': need a numeric IP address", 0},
	{"1.2.3.256:25", 25, -1,
	    "bad address '1.2.3.256:25': need a numeric IP address", 0},
	{"unix:run/x.sock", 25, -1, "bad unix socket path 'unix:run/x.sock'", 0},
	{"unix:", 25, -1, "bad unix socket path 'unix:'", 0},
};

/* test_endpoint_cases - every endpoint_cases[] row */
static void
test_endpoint_cases(void **state)
{
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(endpoint_cases) / sizeof(endpoint_cases[0]); i++) {
		const struct endpoint_case *tc = &endpoint_cases[i];
		struct endpoint ep;
		char	err[256] = "", host[ADDR_STRLEN];
		int	rc, port = -1;

		rc = addr_parse_endpoint(tc->in, tc->default_port, &ep, err,
		    sizeof(err));
		if (tc->family == -1) {
			if (rc != -1)
				print_error("%s: parsed, want an error\n", tc->in);
			assert_int_equal(rc, -1);
			assert_string_equal(err, tc->host);
			continue;
		}
		if (rc != 0)
			print_error("%s: %s\n", tc->in, err);
		assert_int_equal(rc, 0);
		assert_int_equal(ep.ss.ss_family, tc->family);
		assert_string_equal(ep.text, tc->in);
		if (tc->family == AF_UNIX) {
			const struct sockaddr_un *sun =
			    (const struct sockaddr_un *)&ep.ss;

			assert_string_equal(sun->sun_path, tc->host);
			assert_int_equal(ep.len, sizeof(struct sockaddr_un));
			continue;
		}
		assert_int_equal(ep.len, tc->family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		assert_int_equal(addr_ntop((struct sockaddr *)&ep.ss, host,
		    sizeof(host), &port), 0);
		assert_string_equal(host, tc->host);
		assert_int_equal(port, tc->port);
	}
}

/* test_unix_too_long - a path longer than sun_path is refused */
static void
test_unix_too_long(void **state)
{
	char	in[200], err[256];
	struct endpoint ep;
	(void)state;

	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = 0;
	memcpy(in, "unix:/", 6);
	assert_int_equal(addr_parse_endpoint(in, 25, &ep, err, sizeof(err)), -1);
	assert_memory_equal(err, "bad unix socket path", 20);
}

struct cidr_parse_case {
	const char *in;
	int	family;		/* AF_*, or -1 for an error */
	const char *net;	/* network after clearing host bits, or error */
	int	plen;
};

static const struct cidr_parse_case cidr_parse_cases[] = {
	{"10.0.0.0/8", AF_INET, "10.0.0.0", 8},
	{"192.168.1.77/24", AF_INET, "192.168.1.0", 24},
	{"172.31.255.255/12", AF_INET, "172.16.0.0", 12},
	{"192.0.2.1", AF_INET, "192.0.2.1", 32},
	{"203.0.113.9/0", AF_INET, "0.0.0.0", 0},
	{"2001:db8:1:2:3:4:5:6/64", AF_INET6, "2001:db8:1:2::", 64},
	{"2001:db8::1", AF_INET6, "2001:db8::1", 128},
	{"2001:db8:ffff::/33", AF_INET6, "2001:db8:8000::", 33},
	{"::/0", AF_INET6, "::", 0},
	/* errors */
	{"10.0.0.0/33", -1, "bad prefix length in '10.0.0.0/33'", 0},
	{"10.0.0.0/", -1, "bad prefix length in '10.0.0.0/'", 0},
	{"10.0.0.0/8x", -1, "bad prefix length in '10.0.0.0/8x'", 0},
	{"10.0.0.0/-1", -1, "bad prefix length in '10.0.0.0/-1'", 0},
	{"::/129", -1, "bad prefix length in '::/129'", 0},
	{"10.0.0/8", -1, "bad network address '10.0.0/8'", 0},
	{"example.com/8", -1, "bad network address 'example.com/8'", 0},
	{"", -1, "bad network address ''", 0},
};

/* test_cidr_parse_cases - every cidr_parse_cases[] row */
static void
test_cidr_parse_cases(void **state)
{
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(cidr_parse_cases) / sizeof(cidr_parse_cases[0]);
	    i++) {
		const struct cidr_parse_case *tc = &cidr_parse_cases[i];
		struct cidr c;
		char	err[256] = "", text[INET6_ADDRSTRLEN];
		int	rc = addr_parse_cidr(tc->in, &c, err, sizeof(err));

		if (tc->family == -1) {
			assert_int_equal(rc, -1);
			assert_string_equal(err, tc->net);
			continue;
		}
		if (rc != 0)
			print_error("%s: %s\n", tc->in, err);
		assert_int_equal(rc, 0);
		assert_int_equal(c.family, tc->family);
		assert_int_equal(c.plen, tc->plen);
		assert_non_null(inet_ntop(c.family, c.addr, text, sizeof(text)));
		assert_string_equal(text, tc->net);
	}
}

/* sa_make - a sockaddr for a numeric address, port 25 */
static void
sa_make(const char *host, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
	} else {
		assert_int_equal(inet_pton(AF_INET6, host, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
	}
}

struct cidr_match_case {
	const char *net;
	const char *addr;
	int	match;
};

static const struct cidr_match_case cidr_match_cases[] = {
	{"10.0.0.0/8", "10.255.1.2", 1},
	{"10.0.0.0/8", "11.0.0.1", 0},
	{"172.16.0.0/12", "172.31.255.255", 1},
	{"172.16.0.0/12", "172.32.0.0", 0},
	{"172.16.0.0/12", "172.15.255.255", 0},
	{"192.0.2.7", "192.0.2.7", 1},
	{"192.0.2.7", "192.0.2.8", 0},
	{"0.0.0.0/0", "203.0.113.9", 1},
	{"0.0.0.0/0", "::1", 0},			/* family differs */
	{"::/0", "2001:db8::1", 1},
	{"::/0", "127.0.0.1", 0},
	{"2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1},
	{"2001:db8:1:2::/64", "2001:db8:1:3::1", 0},
	{"2001:db8:1:2::/64", "2001:db8:1:1:ffff::", 0},
	{"2001:db8::1", "2001:db8::1", 1},
	{"2001:db8::1", "2001:db8::2", 0},
	{"2001:db8:8000::/33", "2001:db8:ffff::1", 1},
	{"2001:db8:8000::/33", "2001:db8:7fff::1", 0},
	/* a mapped address is IPv6 until addr_unmap() folds it */
	{"192.0.2.0/24", "::ffff:192.0.2.1", 0},
	{"::ffff:0:0/96", "::ffff:192.0.2.1", 1},
};

/* test_cidr_match_cases - every cidr_match_cases[] row */
static void
test_cidr_match_cases(void **state)
{
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(cidr_match_cases) / sizeof(cidr_match_cases[0]);
	    i++) {
		const struct cidr_match_case *tc = &cidr_match_cases[i];
		struct sockaddr_storage ss;
		struct cidr c;
		char	err[256];

		assert_int_equal(addr_parse_cidr(tc->net, &c, err, sizeof(err)), 0);
		sa_make(tc->addr, &ss);
		if (addr_cidr_match(&c, (struct sockaddr *)&ss) != tc->match) {
			print_error("%s in %s: want %d\n", tc->addr, tc->net,
			    tc->match);
			fail();
		}
	}
}

/* test_cidr_match_unix - a unix socket peer matches no prefix */
static void
test_cidr_match_unix(void **state)
{
	struct sockaddr_un sun;
	struct cidr c;
	char	err[256];
	(void)state;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(addr_parse_cidr("0.0.0.0/0", &c, err, sizeof(err)), 0);
	assert_int_equal(addr_cidr_match(&c, (struct sockaddr *)&sun), 0);
}

/* test_unmap - mapped v4 folds to AF_INET, keeps the port, then matches */
static void
test_unmap(void **state)
{
	static const struct {
		const char *in;
		int	family;
		const char *host;
	} rows[] = {
		{"::ffff:192.0.2.1", AF_INET, "192.0.2.1"},
		{"::ffff:10.1.2.3", AF_INET, "10.1.2.3"},
		{"2001:db8::1", AF_INET6, "2001:db8::1"},	/* unchanged */
		{"::1", AF_INET6, "::1"},
		{"::192.0.2.1", AF_INET6, "::192.0.2.1"},	/* compat, not mapped */
		{"192.0.2.1", AF_INET, "192.0.2.1"},		/* already v4 */
	};
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sockaddr_storage ss;
		char	host[ADDR_STRLEN];
		int	port = 0;

		sa_make(rows[i].in, &ss);
		addr_unmap(&ss);
		assert_int_equal(ss.ss_family, rows[i].family);
		assert_int_equal(addr_ntop((struct sockaddr *)&ss, host,
		    sizeof(host), &port), 0);
		assert_string_equal(host, rows[i].host);
		assert_int_equal(port, 25);
	}
	{
		struct sockaddr_storage ss;
		struct cidr c;
		char	err[256];

		assert_int_equal(addr_parse_cidr("192.0.2.0/24", &c, err,
		    sizeof(err)), 0);
		sa_make("::ffff:192.0.2.200", &ss);
		assert_int_equal(addr_cidr_match(&c, (struct sockaddr *)&ss), 0);
		addr_unmap(&ss);
		assert_int_equal(addr_cidr_match(&c, (struct sockaddr *)&ss), 1);
	}
}

/* test_ntop_unix - a unix peer is "unix", port 0, and -1 */
static void
test_ntop_unix(void **state)
{
	struct sockaddr_un sun;
	char	host[ADDR_STRLEN];
	int	port = 7;
	(void)state;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(addr_ntop((struct sockaddr *)&sun, host, sizeof(host),
	    &port), -1);
	assert_string_equal(host, "unix");
	assert_int_equal(port, 0);
}

/* test_key - family byte, then the address cut to the prefix */
static void
test_key(void **state)
{
	struct sockaddr_storage a, b;
	uint8_t	ka[17], kb[17];
	(void)state;

	sa_make("192.0.2.1", &a);
	sa_make("192.0.2.254", &b);
	assert_int_equal(addr_key((struct sockaddr *)&a, 24, 64, ka), 0);
	assert_int_equal(addr_key((struct sockaddr *)&b, 24, 64, kb), 0);
	assert_int_equal(ka[0], AF_INET);
	assert_memory_equal(ka, kb, 17);
	assert_int_equal(addr_key((struct sockaddr *)&a, 32, 64, ka), 0);
	assert_int_equal(addr_key((struct sockaddr *)&b, 32, 64, kb), 0);
	assert_memory_not_equal(ka, kb, 17);

	/* one /64 is one key; the next /64 is another */
	sa_make("2001:db8:1:2::1", &a);
	sa_make("2001:db8:1:2:ffff::9", &b);
	assert_int_equal(addr_key((struct sockaddr *)&a, 24, 64, ka), 0);
	assert_int_equal(addr_key((struct sockaddr *)&b, 24, 64, kb), 0);
	assert_int_equal(ka[0], AF_INET6);
	assert_memory_equal(ka, kb, 17);
	sa_make("2001:db8:1:3::1", &b);
	assert_int_equal(addr_key((struct sockaddr *)&b, 24, 64, kb), 0);
	assert_memory_not_equal(ka, kb, 17);

	/* a partial byte: /20 */
	sa_make("10.1.15.1", &a);
	sa_make("10.1.0.1", &b);
	assert_int_equal(addr_key((struct sockaddr *)&a, 20, 64, ka), 0);
	assert_int_equal(addr_key((struct sockaddr *)&b, 20, 64, kb), 0);
	assert_memory_equal(ka, kb, 17);
	sa_make("10.1.16.1", &b);
	assert_int_equal(addr_key((struct sockaddr *)&b, 20, 64, kb), 0);
	assert_memory_not_equal(ka, kb, 17);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoint_cases),
		cmocka_unit_test(test_unix_too_long),
		cmocka_unit_test(test_cidr_parse_cases),
		cmocka_unit_test(test_cidr_match_cases),
		cmocka_unit_test(test_cidr_match_unix),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_ntop_unix),
		cmocka_unit_test(test_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
