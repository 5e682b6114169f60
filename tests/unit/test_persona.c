/*
 * test_persona.c - personality loading and SYN option layouts
 * (src/swarm/persona.c)
 *
 * Error cases are a table of file texts and the "file:line: reason" each
 * must produce.  The shipped data/personas.conf is loaded, each SYN is
 * built by the swarm's TCP and parsed back by our own SYN parser: the raw
 * signature must be the personality's own, and our database (data/
 * mailshaper.fp, then /etc/p0f/p0f.fp when installed) must give its
 * "ours" label.  Run from the repository root (make check-unit does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <event2/event.h>

#include "fp/fp.h"
#include "fp/match.h"
#include "fp/syn.h"
#include "swarm/persona.h"
#include "swarm/utcp.h"

struct bad_case {
	const char	*name;
	const char	*text;
	const char	*err;		/* expected error, exactly */
};

#define OKSIG "sig = 4:64:0:1460:65535,0:mss,nop,nop,sok:df,id+:0\n"

static const struct bad_case bad_cases[] = {
	{ "key before name", "p0f = x\n",
	  "t.conf:1: 'p0f' before the first name =" },
	{ "no equals", "name = a\nbogus\n", "t.conf:2: expected 'key = value'" },
	{ "unknown key", "name = a\ncolour = red\n",
	  "t.conf:2: unknown key 'colour'" },
	{ "bad sig syntax", "name = a\nsig = 4:64:0:1460\n",
	  "t.conf:2: malformed MSS" },
	{ "wildcard window", "name = a\nsig = 4:64:0:1460:*,0:mss:df,id+:0\n",
	  "t.conf:2: the window must be a number, mss*N or mtu*N" },
	{ "wildcard mss", "name = a\nsig = 4:64:0:*:8192,0:mss:df,id+:0\n",
	  "t.conf:2: the MSS must be a number" },
	{ "options not padded",
	  "name = a\nsig = 4:64:0:1460:8192,2:mss,ws:df,id+:0\n",
	  "t.conf:2: the options take 7 bytes: not a multiple of 4 up to 40 "
	  "(pad with nop or eol+N)" },
	{ "randomised ttl", "name = a\nsig = 4:64-:0:1460:8192,0:mss:df,id+:0\n",
	  "t.conf:2: a randomised TTL (ttl-) cannot be sent" },
	{ "flow on IPv4", "name = a\nsig = 4:64:0:1460:8192,0:mss:flow:0\n",
	  "t.conf:2: quirk not valid for IPv4" },
	{ "bad quirk", "name = a\nsig = 4:64:0:1460:8192,0:mss:df,id+,bad:0\n",
	  "t.conf:2: unsupported quirk (bad)" },
	{ "payload", "name = a\nsig = 4:64:0:1460:8192,0:mss:df,id+:+\n",
	  "t.conf:2: a SYN payload is not supported" },
	{ "no sig", "name = a\np0f = x\nours = y\n",
	  "t.conf:1: personality 'a' has no sig" },
	{ "no labels", "name = a\n" OKSIG "name = b\n",
	  "t.conf:1: personality 'a' needs both p0f and ours labels" },
	{ "duplicate", "name = a\np0f = x\nours = y\n" OKSIG "name = a\n",
	  "t.conf:5: personality 'a' defined twice" },
	{ "ipid contradicts id+", "name = a\np0f = x\nours = y\nipid = zero\n"
	  OKSIG, "t.conf:1: personality 'a': ipid contradicts the df/id+/id- "
	  "quirks" },
	{ "bad ipid", "name = a\nipid = sometimes\n",
	  "t.conf:2: ipid is zero, inc or random" },
	{ "bad ts_hz", "name = a\nts_hz = 0\n", "t.conf:2: ts_hz is 1 to 1000000" },
	{ "two sigs", "name = a\n" OKSIG OKSIG,
	  "t.conf:3: a personality has one sig" },
	{ "bad name", "name = a b\n",
	  "t.conf:1: personality names use letters, digits, '-', '_' and '.'" },
	{ "empty file", "; nothing\n", "t.conf: no personality defined" },
};

/* test_bad - every malformed file fails with its exact message */
static void
test_bad(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct persona_set set = { NULL, 0 };
		char err[256] = "";
		int rc = persona_parse_buf("t.conf", bad_cases[i].text,
		    strlen(bad_cases[i].text), &set, err, sizeof(err));

		if (rc != -1 || strcmp(err, bad_cases[i].err) != 0)
			fail_msg("%s: rc %d, got \"%s\", want \"%s\"",
			    bad_cases[i].name, rc, err, bad_cases[i].err);
		persona_set_free(&set);
	}
}

/* test_defaults - ipid and ts_hz follow the quirks when not given */
static void
test_defaults(void **state)
{
	static const char text[] =
	    "; comment\n"
	    "name = zero\np0f = a\nours = b\n"
	    "sig = 4:64:0:1460:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0\n"
	    "name = inc   ; trailing comment\np0f = a\nours = b\n"
	    "sig = *:128:0:1380:mss*4,2:mss,nop,ws,nop,nop,sok:df,id+:0\n";
	struct persona_set set = { NULL, 0 };
	const struct persona *p;
	char err[256];

	(void)state;
	assert_int_equal(persona_parse_buf("t.conf", text, strlen(text), &set,
	    err, sizeof(err)), 0);
	assert_int_equal(set.n, 2);
	p = persona_find(&set, "zero");
	assert_non_null(p);
	assert_int_equal(p->ipid, PERSONA_IPID_ZERO);
	assert_int_equal(p->ts_hz, 1000);
	assert_int_equal(p->win, 65535);
	assert_int_equal(p->eol_pad, 1);
	p = persona_find(&set, "inc");
	assert_non_null(p);
	assert_int_equal(p->ipid, PERSONA_IPID_INC);
	assert_int_equal(p->win, 4 * 1380);
	assert_int_equal(p->ttl, 128);
	assert_null(persona_find(&set, "none"));
	persona_set_free(&set);
}

struct layout_case {
	const char	*sig;
	unsigned char	bytes[40];
	int		len;
};

static const struct layout_case layout_cases[] = {
	{ "4:128:0:1460:65535,0:mss,nop,nop,sok:df,id+:0",
	  { 2, 4, 0x05, 0xb4, 1, 1, 4, 2 }, 8 },
	{ "4:128:0:1460:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0",
	  { 2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2 }, 12 },
	{ "4:64:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0",
	  { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0,
	    1, 3, 3, 7 }, 20 },
	{ "4:64:0:1460:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0",
	  { 2, 4, 0x05, 0xb4, 1, 3, 3, 6, 1, 1, 8, 10, 0x12, 0x34, 0x56, 0x78,
	    0, 0, 0, 0, 4, 2, 0, 0 }, 24 },
	{ "4:64:0:1460:65535,6:mss,nop,ws,sok,ts:df,id+:0",
	  { 2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 8, 10, 0x12, 0x34, 0x56, 0x78,
	    0, 0, 0, 0 }, 20 },
	{ "4:64:0:1460:65535,6:mss,nop,ws,sok,ts:df,id+,ts1-,ts2+:0",
	  { 2, 4, 0x05, 0xb4, 1, 3, 3, 6, 4, 2, 8, 10, 0, 0, 0, 0,
	    0, 0, 0, 1 }, 20 },
	{ "4:64:0:536:512,0:mss,eol+3:df,id+,opt+:0",
	  { 2, 4, 0x02, 0x18, 0, 1, 0, 0 }, 8 },
};

/* test_layout - option bytes, byte for byte */
static void
test_layout(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(layout_cases) / sizeof(layout_cases[0]); i++) {
		struct persona_set set = { NULL, 0 };
		char text[256], err[256];
		unsigned char out[40];
		int n;

		snprintf(text, sizeof(text), "name = x\np0f = a\nours = b\n"
		    "sig = %s\n", layout_cases[i].sig);
		if (persona_parse_buf("t.conf", text, strlen(text), &set, err,
		    sizeof(err)) == -1)
			fail_msg("%s: %s", layout_cases[i].sig, err);
		n = persona_tcp_options(&set.v[0], 0x12345678, out,
		    sizeof(out));
		assert_int_equal(n, layout_cases[i].len);
		if (memcmp(out, layout_cases[i].bytes, (size_t)n) != 0)
			fail_msg("%s: option bytes differ", layout_cases[i].sig);
		assert_int_equal(persona_tcp_options(&set.v[0], 1, out, 4), -1);
		persona_set_free(&set);
	}
}

static unsigned char last_syn[160];
static size_t last_len;

/* grab - the stack's output hook: keep the last packet */
static void
grab(const unsigned char *pkt, size_t len, void *arg)
{
	(void)arg;
	if (len <= sizeof(last_syn)) {
		memcpy(last_syn, pkt, len);
		last_len = len;
	}
}

/* expect_sig - p->sig as our renderer writes it at distance 0 */
static void
expect_sig(const struct persona *p, char *buf, size_t len)
{
	const char *c = strchr(p->sig, ':');	/* "4:128:..." -> "4:128+0:" */
	const char *d = strchr(c + 1, ':');

	snprintf(buf, len, "%.*s+0%s", (int)(d - p->sig), p->sig, d);
}

/* test_shipped - data/personas.conf: each SYN renders as its sig (written
 * the way p0f prints it) and gets our expected label */
static void
test_shipped(void **state)
{
	const char *paths[2] = { "data/mailshaper.fp", "/etc/p0f/p0f.fp" };
	struct persona_set set = { NULL, 0 };
	struct event_base *base = event_base_new();
	struct utcp_stack *st = utcp_stack_new(base, -1);
	struct utcp_cb cb = { NULL, NULL, NULL };
	union ipaddr src, dst;
	struct sigdb *db;
	char err[512];
	size_t i;

	(void)state;
	if (persona_load("data/personas.conf", &set, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_true(set.n >= 7);
	db = sigdb_load_files(paths, access(paths[1], R_OK) == 0 ? 2 : 1, err,
	    sizeof(err));
	assert_non_null(db);
	utcp_set_output(st, grab, NULL);
	for (i = 0; i < set.n; i++) {
		const struct persona *p = &set.v[i];
		struct fp_syn syn;
		struct fp_result r;
		char raw[200], want[200];

		memset(&src, 0, sizeof(src));
		memset(&dst, 0, sizeof(dst));
		if (p->ver == 6) {
			src.sin6.sin6_family = dst.sin6.sin6_family = AF_INET6;
			inet_pton(AF_INET6, "2001:db8:1::1", &src.sin6.sin6_addr);
			src.sin6.sin6_addr.s6_addr[15] = (uint8_t)i;
			inet_pton(AF_INET6, "2001:db8::25", &dst.sin6.sin6_addr);
			dst.sin6.sin6_port = htons(25);
		} else {
			src.sin.sin_family = dst.sin.sin_family = AF_INET;
			src.sin.sin_addr.s_addr = htonl(0xc6120001 + (uint32_t)i);
			inet_pton(AF_INET, "192.0.2.25", &dst.sin.sin_addr);
			dst.sin.sin_port = htons(25);
		}
		last_len = 0;
		assert_non_null(utcp_connect(st, &src, &dst, p, &cb, NULL, err,
		    sizeof(err)));
		assert_int_not_equal(last_len, 0);
		assert_int_equal(fp_syn_parse(last_syn, last_len, &syn, err,
		    sizeof(err)), 0);
		fp_render_sig(&syn, 0, raw, sizeof(raw));
		expect_sig(p, want, sizeof(want));
		fp_result_from_syn(db, &syn, &r);
		assert_string_equal(raw, want);
		if (access(paths[1], R_OK) != 0 &&
		    strcmp(p->p0f_label, p->our_label) == 0)
			continue;	/* the label comes from p0f.fp */
		if (strcmp(r.os, p->our_label) != 0)
			fail_msg("%s: our label \"%s\", want \"%s\"", p->name,
			    r.os, p->our_label);
		assert_int_equal(syn.ttl, p->ttl);
		assert_int_equal(syn.win, p->win);
		assert_int_equal(syn.quirks, p->quirks);
	}
	sigdb_free(db);
	utcp_stack_free(st);
	event_base_free(base);
	persona_set_free(&set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_shipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
