/*
 * test_scenario.c - the swarm's scenario files (src/swarm/scenario.c)
 *
 * Good files are a case table with a check function each; bad files are a
 * table of texts and the exact "file:line: reason" each must produce.  The
 * draws are checked against their shares over many draws (within 2
 * percentage points) and for reproducibility, and every shipped
 * data/scenarios/NAME.scn must parse.  Personalities come from the shipped
 * data/personas.conf; run from the repository root (make check-unit does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <math.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "swarm/persona.h"
#include "swarm/scenario.h"

static struct persona_set personas;

/* A minimal valid population, for bad cases that break something else. */
#define POP1 "population p\n  kind = zombie\n  share = 100%\n" \
	"  persona = winxp\n  addresses = 10\n"

struct bad_case {
	const char	*name;
	const char	*text;
	const char	*err;		/* expected error, exactly */
};

static const struct bad_case bad_cases[] = {
	{ "unknown global", "colour = red\n" POP1,
	  "t.scn:1: unknown key 'colour'" },
	{ "unknown population key", POP1 "  colour = red\n",
	  "t.scn:6: unknown key 'colour'" },
	{ "no equals", "duration 90s\n" POP1,
	  "t.scn:1: expected 'key = value' or 'population NAME'" },
	{ "no value", "duration =\n" POP1, "t.scn:1: 'duration' has no value" },
	{ "bad time", "duration = soon\n" POP1,
	  "t.scn:1: 'soon' is not a time (a number and ms, s, m, h or d)" },
	{ "bad time unit", "duration = 90y\n" POP1,
	  "t.scn:1: '90y' is not a time (a number and ms, s, m, h or d)" },
	{ "time out of range", "duration = 2d\n" POP1,
	  "t.scn:1: '2d' is out of range (1000ms..86400000ms)" },
	{ "negative time", "duration = -5s\n" POP1,
	  "t.scn:1: '-5s' is not a time (a number and ms, s, m, h or d)" },
	{ "exponent", "duration = 1e3\n" POP1,
	  "t.scn:1: '1e3' is not a time (a number and ms, s, m, h or d)" },
	{ "hex", "concurrency = 0x10\n" POP1,
	  "t.scn:1: '0x10' is not a whole number" },
	{ "two dots", "clock = 1.2.3\n" POP1, "t.scn:1: '1.2.3' is not a number" },
	{ "bad percentage", "backend_reject = 150%\n" POP1,
	  "t.scn:1: '150%' is not a percentage from 0 to 100" },
	{ "percentage junk", "dnsbl_listed = 50%%\n" POP1,
	  "t.scn:1: '50%%' is not a percentage from 0 to 100" },
	{ "near-miss key", POP1 "  addresses2 = 1\n",
	  "t.scn:6: unknown key 'addresses2'" },
	{ "not a whole number", "concurrency = 1.5\n" POP1,
	  "t.scn:1: '1.5' is not a whole number" },
	{ "number out of range", "concurrency = 0\n" POP1,
	  "t.scn:1: '0' is out of range (1..100000)" },
	{ "rate out of range", "rate = 0\n" POP1,
	  "t.scn:1: '0' is out of range (1..100000)" },
	{ "drain too long", "drain = 2h\n" POP1,
	  "t.scn:1: '2h' is out of range (0ms..3600000ms)" },
	{ "bad clock", "clock = fast\n" POP1, "t.scn:1: 'fast' is not a number" },
	{ "clock below 1", "clock = 0.5\n" POP1,
	  "t.scn:1: '0.5' is out of range (1..1000000)" },
	{ "seed overflow", "seed = 99999999999999999999\n" POP1,
	  "t.scn:1: '99999999999999999999' is not a whole number" },
	{ "bad bool", POP1 "  starttls = maybe\n",
	  "t.scn:6: 'maybe' is not yes or no" },
	{ "duplicate global", "seed = 1\nseed = 2\n" POP1,
	  "t.scn:2: 'seed' given twice (first on line 1)" },
	{ "duplicate key", POP1 "  share = 100%\n",
	  "t.scn:6: 'share' given twice (first on line 3)" },
	{ "bad daemon", "daemon = mx.example:25\n" POP1,
	  "t.scn:1: bad address 'mx.example:25': need a numeric IP address" },
	{ "range outside v4", "ranges = 10.0.0.0/8\n" POP1,
	  "t.scn:1: '10.0.0.0/8' is outside 198.18.0.0/15 and 2001:db8::/32" },
	{ "range too wide", "ranges = 198.16.0.0/14\n" POP1,
	  "t.scn:1: '198.16.0.0/14' is outside 198.18.0.0/15 and "
	  "2001:db8::/32" },
	{ "range outside v6", "ranges = 198.18.0.0/16, 2001:db9::/48\n" POP1,
	  "t.scn:1: '2001:db9::/48' is outside 198.18.0.0/15 and "
	  "2001:db8::/32" },
	{ "range overlap", "ranges = 198.18.0.0/16 198.18.4.0/24\n" POP1,
	  "t.scn:1: '198.18.4.0/24' overlaps another range" },
	{ "range syntax", "ranges = 198.18.0.0/40\n" POP1,
	  "t.scn:1: bad prefix length in '198.18.0.0/40'" },
	{ "bad dns domain", "dns_domain = swarm..example\n" POP1,
	  "t.scn:1: 'swarm..example' is not a DNS domain" },
	{ "indented outside", "  seed = 1\n" POP1,
	  "t.scn:1: indented line outside a population" },
	{ "indented after global", POP1 "seed = 1\n  share = 5%\n",
	  "t.scn:7: indented line outside a population" },
	{ "duplicate population", POP1 "population p\n",
	  "t.scn:6: population 'p' defined twice (first on line 1)" },
	{ "population without name", "population\n",
	  "t.scn:1: a population needs a name of 1 to 31 characters" },
	{ "population bad name", "population a/b\n",
	  "t.scn:1: population names use letters, digits, '-', '_' and '.'" },
	{ "unknown kind", "population p\n  kind = spammer\n",
	  "t.scn:2: unknown kind 'spammer' (legit_mta, zombie, router, "
	  "bulk_sender or big_sender)" },
	{ "unknown persona", "population p\n  persona = beos\n",
	  "t.scn:2: unknown persona 'beos'" },
	{ "missing kind", "population p\n  share = 100%\n  persona = winxp\n"
	  "  addresses = 1\n", "t.scn:1: population 'p' has no kind" },
	{ "missing persona", "\npopulation p\n  kind = zombie\n  share = 100\n"
	  "  addresses = 1\n", "t.scn:2: population 'p' has no persona" },
	{ "missing addresses", "population p\n  kind = zombie\n"
	  "  share = 100\n  persona = winxp\n",
	  "t.scn:1: population 'p' has no addresses" },
	{ "shares short", POP1 "population q\n  kind = legit_mta\n"
	  "  share = 10%\n  persona = linux\n  addresses = 1\n",
	  "t.scn:6: population shares add up to 110%, not 100%" },
	{ "shares under", "population p\n  kind = zombie\n  share = 99.9%\n"
	  "  persona = winxp\n  addresses = 10\n",
	  "t.scn:1: population shares add up to 99.9%, not 100%" },
	{ "patience sum", POP1 "  patience = 10s:80%,21s:15%\n",
	  "t.scn:6: patience shares add up to 95%, not 100%" },
	{ "patience order", POP1 "  patience = 21s:50%,10s:50%\n",
	  "t.scn:6: patience steps must be in ascending time order" },
	{ "patience syntax", POP1 "  patience = forever\n",
	  "t.scn:6: patience is rfc or time:share,... (e.g. 10s:80%,21s:20%), "
	  "not 'forever'" },
	{ "patience bad time", POP1 "  patience = 10q:100%\n",
	  "t.scn:6: '10q' is not a time (a number and ms, s, m, h or d)" },
	{ "truth sum", POP1 "  truth = ham:50%,spam:40%\n",
	  "t.scn:6: truth adds up to 90%, not 100%" },
	{ "truth twice", POP1 "  truth = ham:50%,ham:50%\n",
	  "t.scn:6: truth is ham:N%,spam:N% (each at most once), not "
	  "'ham:50%,ham:50%'" },
	{ "truth word", POP1 "  truth = eggs:100%\n",
	  "t.scn:6: truth is ham:N%,spam:N% (each at most once), not "
	  "'eggs:100%'" },
	{ "retry syntax", POP1 "  retry = often\n",
	  "t.scn:6: retry is none or BASE..MAX (e.g. 5m..1h), not 'often'" },
	{ "retry inverted", POP1 "  retry = 1h..5m\n",
	  "t.scn:6: the retry base is above its maximum" },
	{ "concurrency above cap", "concurrency = 100\n" POP1
	  "  concurrency = 101\n",
	  "t.scn:7: concurrency 101 is above the scenario's total 100" },
	{ "big sender without rdns", "population big\n  kind = big_sender\n"
	  "  share = 100\n  persona = win10\n  addresses = 10\n",
	  "t.scn:1: population 'big' is a big_sender and needs rdns_domain" },
	{ "rdns outside dns_domain", "dns_domain = swarm.example\n"
	  "population big\n  kind = big_sender\n  share = 100\n"
	  "  persona = win10\n  addresses = 10\n  rdns_domain = out.other.example\n",
	  "t.scn:7: rdns_domain 'out.other.example' is not under dns_domain "
	  "'swarm.example'" },
	{ "rdns suffix trick", "dns_domain = swarm.example\n"
	  "population big\n  kind = big_sender\n  share = 100\n"
	  "  persona = win10\n  addresses = 10\n  rdns_domain = myswarm.example\n",
	  "t.scn:7: rdns_domain 'myswarm.example' is not under dns_domain "
	  "'swarm.example'" },
	{ "rdns on zombie", POP1 "  rdns_domain = a.swarm.example\n",
	  "t.scn:6: rdns_domain is only for big_sender populations" },
	{ "pool too large", "ranges = 198.18.0.0/30\n" POP1,
	  "t.scn:6: the address ranges hold 3 addresses; the populations up "
	  "to 'p' need 10" },
	{ "no population", "seed = 1\n\n# nothing\n",
	  "t.scn:3: no population defined" },
	{ "empty file", "", "t.scn:1: no population defined" },
	{ "NUL byte", "seed = 1\0\n" POP1, "t.scn:1: NUL byte in line" },
	{ "dnsbl weight word", "dnsbl_weight = heavy\n" POP1,
	  "t.scn:1: 'heavy' is not a number" },
	{ "dnsbl weight zero", "dnsbl_weight = 0\n" POP1,
	  "t.scn:1: '0' is out of range (above 0, at most 100)" },
	{ "dnsbl weight too big", "dnsbl_weight = 100.5\n" POP1,
	  "t.scn:1: '100.5' is out of range (above 0, at most 100)" },
	{ "dnsbl weight twice", "dnsbl_weight = 2\ndnsbl_weight = 3\n" POP1,
	  "t.scn:2: 'dnsbl_weight' given twice (first on line 1)" },
	{ "daemon option without =", "daemon_option = observe\n" POP1,
	  "t.scn:1: daemon_option wants 'name = value'" },
	{ "daemon option without value", "daemon_option = observe =\n" POP1,
	  "t.scn:1: daemon_option wants 'name = value'" },
	{ "daemon option without name", "daemon_option = = yes\n" POP1,
	  "t.scn:1: daemon_option wants 'name = value'" },
	{ "daemon option bad name", "daemon_option = Max-Conn = 3\n" POP1,
	  "t.scn:1: daemon_option: 'Max-Conn' is not a parameter name" },
	{ "daemon option in a population", POP1 "  daemon_option = a = 1\n",
	  "t.scn:6: unknown key 'daemon_option'" },
	{ "too many daemon options",
	  "daemon_option = a = 1\ndaemon_option = a = 2\n"
	  "daemon_option = a = 3\ndaemon_option = a = 4\n"
	  "daemon_option = a = 5\ndaemon_option = a = 6\n"
	  "daemon_option = a = 7\ndaemon_option = a = 8\n"
	  "daemon_option = a = 9\ndaemon_option = a = 10\n"
	  "daemon_option = a = 11\ndaemon_option = a = 12\n"
	  "daemon_option = a = 13\ndaemon_option = a = 14\n"
	  "daemon_option = a = 15\ndaemon_option = a = 16\n"
	  "daemon_option = a = 17\n" POP1,
	  "t.scn:17: more than 16 daemon_option lines" },
};

/* test_bad - every malformed file fails with its exact message */
static void
test_bad(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct scenario *sc;
		char	err[512] = "";
		size_t	len = strlen(c->text);

		if (strcmp(c->name, "NUL byte") == 0)
			len = strlen(c->text) + 1 + strlen(c->text + 9);
		sc = scenario_parse_buf("t.scn", c->text, len, &personas, err,
		    sizeof(err));
		if (sc != NULL || strcmp(err, c->err) != 0) {
			print_error("case '%s':\n  got  '%s'\n  want '%s'\n",
			    c->name, err, c->err);
			scenario_free(sc);
			fail();
		}
	}
}

/* check_minimal - globals and a zombie's defaults */
static void
check_minimal(const struct scenario *sc)
{
	const struct population *p = &sc->pops[0];
	char	host[64];
	int	port;

	assert_int_equal(sc->duration_ms, 90000);
	assert_true(sc->clock == 1);
	assert_int_equal(sc->seed, 1);
	assert_int_equal(addr_ntop((const struct sockaddr *)&sc->daemon.ss,
	    host, sizeof(host), &port), 0);
	assert_string_equal(host, "192.0.2.25");
	assert_int_equal(port, 25);
	assert_true(sc->backend_reject_pct == 90);
	assert_true(sc->dnsbl_listed_pct == 50);
	assert_int_equal(sc->concurrency, 1000);
	assert_int_equal(sc->rate, 50);
	assert_int_equal(sc->drain_ms, 120000);
	assert_int_equal(sc->nranges, 1);
	assert_string_equal(sc->dns_domain, "swarm.example");
	assert_true(sc->dnsbl_weight == 4);
	assert_int_equal(sc->ndaemon_opts, 0);
	assert_int_equal(sc->npops, 1);
	assert_string_equal(p->name, "p");
	assert_int_equal(p->kind, SCN_ZOMBIE);
	assert_string_equal(p->persona->name, "winxp");
	assert_int_equal(p->addresses, 10);
	assert_int_equal(p->messages, 1);
	assert_true(p->spam_pct == 100 && p->ham_pct == 0);
	assert_false(p->patience_rfc);
	assert_int_equal(p->npatience, 3);
	assert_int_equal(p->patience[0].ms, 10000);
	assert_true(p->patience[0].pct == 80);
	assert_int_equal(p->patience[1].ms, 21000);
	assert_int_equal(p->patience[2].ms, 100000);
	assert_true(p->pregreet_pct == 10);
	assert_false(p->pipelining);
	assert_false(p->starttls);
	assert_int_equal(p->retry_base_ms, 0);
	assert_int_equal(scenario_retry_delay(p, 1), 0);
	assert_int_equal(p->concurrency, 1000);	/* the total cap */
	assert_true(p->random_helo);
	assert_true(scenario_listed_pct(sc, p) == 50);
}

/* check_full - every global and population key, explicit */
static void
check_full(const struct scenario *sc)
{
	const struct population *m = scenario_find(sc, "mtas");
	const struct population *b = scenario_find(sc, "big");
	const struct population *z = scenario_find(sc, "z");
	struct sockaddr_storage ss;
	char	host[64];
	int	port;

	assert_int_equal(sc->duration_ms, 120000);
	assert_true(sc->clock == 60);
	assert_true(sc->dnsbl_weight == 2.5);
	assert_int_equal(sc->ndaemon_opts, 2);
	assert_string_equal(sc->daemon_opts[0],
	    "backend_max_connections = 100");
	assert_string_equal(sc->daemon_opts[1],
	    "class_suspect = banner_delay=1s reply_delay=2s");
	assert_int_equal(sc->seed, 18446744073709551615ULL);
	addr_ntop((const struct sockaddr *)&sc->daemon.ss, host, sizeof(host),
	    &port);
	assert_string_equal(host, "2001:db8::25");
	assert_int_equal(port, 2525);
	assert_true(sc->backend_reject_pct == 80);
	assert_true(sc->dnsbl_listed_pct == 25);
	assert_int_equal(sc->concurrency, 300);
	assert_int_equal(sc->rate, 7);
	assert_int_equal(sc->drain_ms, 30000);
	assert_int_equal(sc->nranges, 2);
	assert_string_equal(sc->dns_domain, "swarm.test");
	assert_int_equal(sc->npops, 3);
	assert_non_null(m);
	assert_non_null(b);
	assert_non_null(z);
	assert_null(scenario_find(sc, "nobody"));

	assert_int_equal(m->kind, SCN_LEGIT_MTA);
	assert_true(fabs(m->share - 33.33) < 1e-9);
	assert_string_equal(m->persona_name, "linux");
	assert_int_equal(m->messages, 3);
	assert_true(m->ham_pct == 95 && m->spam_pct == 5);
	assert_true(m->patience_rfc);
	assert_int_equal(scenario_draw_patience(m, &(uint64_t){1}), 0);
	assert_true(m->pregreet_pct == 0);
	assert_true(m->pipelining && m->starttls && !m->random_helo);
	assert_int_equal(m->retry_base_ms, 60000);
	assert_int_equal(m->retry_max_ms, 600000);
	assert_int_equal(m->retry_lifetime_ms, 2 * 86400000ULL);
	assert_int_equal(scenario_retry_delay(m, 1), 60000);
	assert_int_equal(scenario_retry_delay(m, 2), 120000);
	assert_int_equal(scenario_retry_delay(m, 4), 480000);
	assert_int_equal(scenario_retry_delay(m, 5), 600000);
	assert_int_equal(scenario_retry_delay(m, 60), 600000);
	assert_int_equal(scenario_wall_ms(sc, 60000), 1000);
	assert_int_equal(m->concurrency, 7);
	assert_true(scenario_listed_pct(sc, m) == 0);

	assert_int_equal(z->kind, SCN_ZOMBIE);
	assert_true(z->pregreet_pct == 12.5);
	assert_true(z->random_helo == 0);
	assert_int_equal(z->npatience, 2);
	assert_int_equal(z->patience[0].ms, 500);
	assert_int_equal(z->patience[1].ms, 3600000);
	assert_true(scenario_listed_pct(sc, z) == 75);

	assert_int_equal(b->kind, SCN_BIG_SENDER);
	assert_string_equal(b->rdns_domain, "outbound.swarm.test");
	assert_int_equal(b->messages, 10);	/* kind default */
	assert_int_equal(b->concurrency, 100);

	/* Pools: mtas 1.., z after it, big spills into the v6 range. */
	assert_int_equal(scenario_address(sc, m, 0, &ss), 0);
	addr_ntop((struct sockaddr *)&ss, host, sizeof(host), NULL);
	assert_string_equal(host, "198.18.7.1");
	assert_int_equal(scenario_address(sc, z, 0, &ss), 0);
	addr_ntop((struct sockaddr *)&ss, host, sizeof(host), NULL);
	assert_string_equal(host, "198.18.7.3");
	assert_int_equal(scenario_address(sc, b, 0, &ss), 0);
	addr_ntop((struct sockaddr *)&ss, host, sizeof(host), NULL);
	assert_string_equal(host, "198.18.7.7");
	assert_int_equal(scenario_address(sc, b, 1, &ss), 0);
	addr_ntop((struct sockaddr *)&ss, host, sizeof(host), NULL);
	assert_string_equal(host, "2001:db8:1::1");
	assert_int_equal(scenario_address(sc, b, 300, &ss), 0);
	addr_ntop((struct sockaddr *)&ss, host, sizeof(host), NULL);
	assert_string_equal(host, "2001:db8:1::12c");
	assert_int_equal(scenario_address(sc, b, 400, &ss), -1);
}

static const char full_text[] =
	"# every key\n"
	"duration       = 2m\n"
	"clock          = 60\n"
	"seed           = 18446744073709551615\n"
	"daemon         = [2001:db8::25]:2525\n"
	"backend_reject = 80\n"
	"dnsbl_listed   = 25%\n"
	"concurrency    = 300\n"
	"ranges         = 198.18.7.0/29, 2001:db8:1::/64\n"
	"dns_domain     = swarm.test\n"
	"rate           = 7\n"
	"drain          = 30s\n"
	"dnsbl_weight   = 2.5\n"
	"daemon_option  = backend_max_connections = 100\n"
	"daemon_option  = class_suspect=banner_delay=1s reply_delay=2s\n"
	"\n"
	"population mtas   # modern Linux MTAs\n"
	"\tkind        = legit_mta\n"
	"\tshare       = 33.33%\n"
	"\tpersona     = linux\n"
	"\taddresses   = 2\n"
	"\tmessages    = 3\n"
	"\ttruth       = spam:5%, ham:95%\n"
	"\tpatience    = rfc\n"
	"\tpregreet    = 0%\n"
	"\tpipelining  = yes\n"
	"\tstarttls    = yes\n"
	"\tretry       = 1m..10m\n"
	"\tretry_for   = 2d\n"
	"\tconcurrency = 7\n"
	"\trandom_helo = no\n"
	"population z\n"
	"    kind = zombie\n"
	"    share = 33.335\n"
	"    persona = router\n"
	"    addresses = 4\n"
	"    patience = 500ms:50%, 1h:50%\n"
	"    pregreet = 12.5%\n"
	"    random_helo = no\n"
	"    dnsbl_listed = 75%\n"
	"population big\n"
	"    kind = big_sender\n"
	"    share = 33.335%\n"
	"    persona = win10\n"
	"    addresses = 400\n"
	"    rdns_domain = outbound.swarm.test\n";

struct good_case {
	const char	*name;
	const char	*text;
	void		(*check)(const struct scenario *);
};

static const struct good_case good_cases[] = {
	{ "minimal", POP1, check_minimal },
	{ "full", full_text, check_full },
	{ "no trailing newline", "population p\n kind = zombie\n share=100\n"
	  " persona=winxp\n addresses=10", check_minimal },
};

/* test_good - each good file parses and holds what it says */
static void
test_good(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good_case *c = &good_cases[i];
		struct scenario *sc;
		char	err[512] = "";

		sc = scenario_parse_buf("t.scn", c->text, strlen(c->text),
		    &personas, err, sizeof(err));
		if (sc == NULL) {
			print_error("case '%s': %s\n", c->name, err);
			fail();
		}
		c->check(sc);
		scenario_free(sc);
	}
}

/* test_kind_defaults - what each kind does when the file is silent */
static void
test_kind_defaults(void **state)
{
	static const char text[] =
	    "population a\n kind=legit_mta\n share=20\n persona=linux\n addresses=1\n"
	    "population b\n kind=router\n share=20\n persona=router\n addresses=1\n"
	    "population c\n kind=bulk_sender\n share=20\n persona=freebsd\n addresses=1\n"
	    "population d\n kind=zombie\n share=20\n persona=winxp\n addresses=1\n"
	    "  dnsbl_listed = 0\n"
	    "population e\n kind=legit_mta\n share=20\n persona=linux\n addresses=1\n"
	    "  retry = none\n  retry_for = 1d\n  dnsbl_listed = 100\n";
	struct scenario *sc;
	const struct population *p;
	char	err[512] = "";

	(void)state;
	sc = scenario_parse_buf("t.scn", text, strlen(text), &personas, err,
	    sizeof(err));
	if (sc == NULL)
		fail_msg("%s", err);
	p = scenario_find(sc, "a");
	assert_true(p->patience_rfc && p->pipelining && p->starttls);
	assert_true(p->ham_pct == 100 && !p->random_helo);
	assert_int_equal(p->retry_base_ms, 300000);
	assert_int_equal(p->retry_max_ms, 3600000);
	assert_int_equal(p->retry_lifetime_ms, 5 * 86400000ULL);
	assert_int_equal(p->concurrency, 50);
	p = scenario_find(sc, "b");
	assert_string_equal(scenario_kind_name(p->kind), "router");
	assert_true(p->spam_pct == 100 && !p->patience_rfc);
	assert_int_equal(p->npatience, 3);
	assert_int_equal(p->retry_base_ms, 0);
	assert_int_equal(p->concurrency, 20);
	p = scenario_find(sc, "c");
	assert_int_equal(p->messages, 5);
	assert_true(p->ham_pct == 100);
	p = scenario_find(sc, "d");
	assert_true(scenario_listed_pct(sc, p) == 0);
	assert_int_equal(scenario_is_listed(sc, p, 0), 0);
	p = scenario_find(sc, "e");
	assert_int_equal(p->retry_lifetime_ms, 0);	/* no retry, no life */
	assert_true(scenario_listed_pct(sc, p) == 100);
	assert_int_equal(scenario_is_listed(sc, p, 0), 1);
	assert_string_equal(scenario_kind_name(SCN_KIND_COUNT), "?");
	scenario_free(sc);
}

/* near - |got - want| <= 2 percentage points */
static void
near(const char *what, double got, double want)
{
	if (fabs(got - want) > 2) {
		print_error("%s: %.2f%%, want %.2f%% +- 2\n", what, got, want);
		fail();
	}
}

/* test_draws - empirical shares of the draws, and reproducibility */
static void
test_draws(void **state)
{
	static const char text[] =
	    "seed = 42\ndnsbl_listed = 30%\n"
	    "population z\n kind = zombie\n share = 70\n persona = winxp\n"
	    " addresses = 20000\n truth = ham:10%,spam:90%\n"
	    "population m\n kind = legit_mta\n share = 30\n persona = linux\n"
	    " addresses = 10\n";
	enum { N = 100000 };
	struct scenario *sc;
	const struct population *z;
	unsigned n10 = 0, n21 = 0, n100 = 0, nham = 0, nz = 0, nlisted = 0;
	uint64_t rng, rng2, first[8];
	char	err[512];
	unsigned i;

	(void)state;
	sc = scenario_parse_buf("t.scn", text, strlen(text), &personas, err,
	    sizeof(err));
	if (sc == NULL)
		fail_msg("%s", err);
	z = scenario_find(sc, "z");
	rng = sc->seed;
	for (i = 0; i < N; i++) {
		uint64_t ms = scenario_draw_patience(z, &rng);

		if (ms == 10000)
			n10++;
		else if (ms == 21000)
			n21++;
		else if (ms == 100000)
			n100++;
		else
			fail_msg("patience %llu", (unsigned long long)ms);
		nham += scenario_draw_truth(z, &rng) == SCN_HAM;
		nz += scenario_draw_population(sc, &rng) == z;
	}
	near("10 s", 100.0 * n10 / N, 80);
	near("21 s", 100.0 * n21 / N, 15);
	near("100 s", 100.0 * n100 / N, 5);
	near("ham", 100.0 * nham / N, 10);
	near("zombie share", 100.0 * nz / N, 70);
	for (i = 0; i < z->addresses; i++)
		nlisted += scenario_is_listed(sc, z, i);
	near("listed", 100.0 * nlisted / z->addresses, 30);

	/* Same seed, same sequence; listing does not depend on draw order. */
	rng = rng2 = 42;
	for (i = 0; i < 8; i++)
		first[i] = scenario_rng_next(&rng);
	for (i = 0; i < 8; i++)
		assert_int_equal(scenario_rng_next(&rng2), first[i]);
	assert_int_equal(scenario_is_listed(sc, z, 17),
	    scenario_is_listed(sc, z, 17));
	for (i = 0; i < 1000; i++) {
		double	u = scenario_rng_unit(&rng);

		assert_true(u >= 0 && u < 1);
	}
	assert_int_equal(scenario_draw_pct(&rng, 0), 0);
	assert_int_equal(scenario_draw_pct(&rng, 100), 1);
	scenario_free(sc);
}

/* test_shipped - every shipped scenario parses */
static void
test_shipped(void **state)
{
	glob_t	g;
	size_t	i;
	char	err[512];

	(void)state;
	assert_int_equal(glob("data/scenarios/" "*.scn", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 2);
	for (i = 0; i < g.gl_pathc; i++) {
		struct scenario *sc;

		sc = scenario_load(g.gl_pathv[i], &personas, err, sizeof(err));
		if (sc == NULL) {
			print_error("%s\n", err);
			globfree(&g);
			fail();
		}
		assert_true(sc->npops >= 1);
		if (strstr(g.gl_pathv[i], "default.scn") != NULL)
			assert_true(sc->duration_ms >= 60000 &&
			    sc->duration_ms <= 120000);
		scenario_free(sc);
	}
	globfree(&g);
	assert_null(scenario_load("data/scenarios/nonexistent", &personas,
	    err, sizeof(err)));
	assert_string_equal(err, "data/scenarios/nonexistent: "
	    "No such file or directory");
}

/* setup - the shipped personalities */
static int
setup(void **state)
{
	char	err[512];

	(void)state;
	if (persona_load("data/personas.conf", &personas, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

/* teardown - release them */
static int
teardown(void **state)
{
	(void)state;
	persona_set_free(&personas);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_kind_defaults),
		cmocka_unit_test(test_draws),
		cmocka_unit_test(test_shipped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
