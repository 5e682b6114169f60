/*
 * test_fp_match.c - matcher cases (src/fp/match.c, src/fp/fp.c)
 *
 * A small database in p0f.fp format, and SYNs described field by field;
 * each case names the label and match kind p0f would give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fp/fp.h"
#include "fp/match.h"
#include "fp/sigdb.h"

static const char db_text[] =
	"classes = win,unix,other\n"
	"[mtu]\nlabel = Ethernet or modem\nsig = 1500\n"
	"[tcp:request]\n"
	"label = g:unix:Linux:generic\n"
	"sig = *:64:0:*:*,*:mss,sok,ts,nop,ws:df,id+:0\n"
	"label = s:unix:Linux:3.11 and newer\n"
	"sig = *:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0\n"
	"label = s:win:Windows:7 or 8\n"
	"sig = *:128:0:*:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0\n"
	"label = s:unix:Tester:mtu\n"
	"sig = 4:64:0:1460:mtu*4,0:mss::0\n"
	"label = s:unix:Tester:mod\n"
	"sig = 4:64:0:1400:%1000,0:mss::+\n"
	"label = s:!:NMap:SYN scan\n"
	"sys = @unix\n"
	"sig = *:64-:0:1460:1024,0:mss::0\n";

static struct sigdb *db;

struct match_case {
	const char	*name;
	int		ver, ttl, mss, win, ws, pay;
	const char	*layout;	/* option kinds, as a string of bytes */
	uint32_t	quirks;
	const char	*os;
	const char	*kind;
	int		dist;
};

#define L_LINUX	"\x02\x04\x08\x01\x03"
#define L_WIN	"\x02\x01\x03\x01\x01\x04"
#define Q_DFID	(FP_Q_DF | FP_Q_NZ_ID)

static const struct match_case match_cases[] = {
	{ "exact specific beats earlier generic", 4, 60, 1460, 29200, 7, 0,
	  L_LINUX, Q_DFID, "Linux 3.11 and newer", "exact", 4 },
	{ "generic when no specific", 4, 60, 1460, 5000, 7, 0,
	  L_LINUX, Q_DFID, "Linux generic", "generic", 4 },
	{ "df gone: first fuzzy candidate (the generic) wins",
	  4, 60, 1460, 29200, 7, 0, L_LINUX, FP_Q_NZ_ID,
	  "Linux generic", "generic_fuzzy", 4 },
	{ "TTL below initial, within range", 4, 120, 1460, 8192, 8, 0,
	  L_WIN, Q_DFID, "Windows 7 or 8", "exact", 8 },
	{ "TTL too far -> fuzzy with guessed distance", 4, 20, 1460, 8192, 8,
	  0, L_WIN, Q_DFID, "Windows 7 or 8", "fuzzy", 12 },
	{ "IPv6 against a '*' signature", 6, 64, 1440, 28800, 7, 0,
	  L_LINUX, 0, "Linux 3.11 and newer", "exact", 0 },
	{ "mtu*4, id- appearing is fuzzy", 4, 64, 1460, 6000, 0, 0, "\x02",
	  FP_Q_ZERO_ID, "Tester mtu", "fuzzy", 0 },
	{ "mtu*4 exact quirks", 4, 64, 1460, 6000, 0, 0, "\x02", 0,
	  "Tester mtu", "exact", 0 },
	{ "%1000 with payload", 4, 64, 1400, 5000, 0, 1, "\x02", 0,
	  "Tester mod", "exact", 0 },
	{ "%1000 needs payload", 4, 64, 1400, 5000, 0, 0, "\x02", 0,
	  "???", "none", 0 },
	{ "application, random TTL", 4, 37, 1460, 1024, 0, 0, "\x02", 0,
	  "NMap SYN scan", "exact", 27 },
	{ "no fuzzy for applications (p0f leaves dist 0)", 4, 37, 1460,
	  1024, 0, 0, "\x02", FP_Q_ZERO_ID, "???", "none", 0 },
	{ "quirks that cannot drift: no candidate", 4, 37, 1460, 1024, 0, 0,
	  "\x02", FP_Q_DF | FP_Q_NZ_ID, "???", "none", 27 },
	{ "unknown layout", 4, 50, 1460, 1024, 0, 0, "\x02\x01\x01", 0,
	  "???", "none", 14 },
};

/* setup - load the test database */
static int
setup(void **state)
{
	char err[128];

	(void)state;
	db = sigdb_new();
	if (sigdb_parse_buf(db, "test.fp", db_text, sizeof(db_text) - 1) != 0)
		return -1;
	return sigdb_finish(db, err, sizeof(err));
}

/* teardown - free it */
static int
teardown(void **state)
{
	(void)state;
	sigdb_free(db);
	db = NULL;
	return 0;
}

/* test_match_cases - run the table */
static void
test_match_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		struct fp_syn s;
		struct fp_result r;

		memset(&s, 0, sizeof(s));
		s.ver = c->ver;
		s.ttl = (uint8_t)c->ttl;
		s.mss = (uint16_t)c->mss;
		s.win = (uint16_t)c->win;
		s.wscale = (uint8_t)c->ws;
		s.pay_len = (uint32_t)c->pay;
		s.quirks = c->quirks;
		s.opt_cnt = (uint8_t)strlen(c->layout);
		memcpy(s.layout, c->layout, s.opt_cnt);
		s.tot_hdr = (c->ver == 4 ? 20 : 40) + 20;
		fp_result_from_syn(db, &s, &r);
		if (strcmp(r.os, c->os) != 0 || strcmp(r.match, c->kind) != 0 ||
		    r.dist != c->dist)
			fail_msg("%s: got %s / %s / %d", c->name, r.os, r.match,
			    r.dist);
	}
}

/* test_fingerprint_bytes - the daemon's entry point and the JSON */
static void
test_fingerprint_bytes(void **state)
{
	static const unsigned char syn[] = {
		0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x3d, 0x06,
		0, 0, 10, 0, 0, 1, 192, 0, 2, 25,
		0x04, 0x00, 0x00, 0x19, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0,
		0xa0, 0x02, 0x72, 0x10, 0, 0, 0, 0,
		0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0x10, 0,
		0, 0, 0, 0, 0x01, 0x03, 0x03, 0x07
	};
	struct fp_result r;
	char err[128], json[1024], expect[1024];
	unsigned char synack[sizeof(syn)];

	(void)state;
	assert_int_equal(fp_fingerprint_syn(db, syn, sizeof(syn), &r, err,
	    sizeof(err)), 0);
	assert_string_equal(r.raw_sig,
	    "4:61+3:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0");
	assert_string_equal(r.key,
	    "4:64:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0");
	assert_string_equal(r.os, "Linux 3.11 and newer");
	assert_string_equal(r.link, "Ethernet or modem");
	assert_int_equal(strlen(r.key_hash), 16);
	assert_true(fp_result_json(&r, json, sizeof(json)) > 0);
	snprintf(expect, sizeof(expect), "{\"raw_sig\":\"%s\",\"key\":\"%s\","
	    "\"key_hash\":\"%s\",\"os\":\"Linux 3.11 and newer\","
	    "\"match\":\"exact\",\"dist\":3,\"link\":\"Ethernet or modem\"}",
	    r.raw_sig, r.key, r.key_hash);
	assert_string_equal(json, expect);
	assert_int_equal(fp_result_json(&r, json, 20), -1);

	memcpy(synack, syn, sizeof(syn));
	synack[33] = 0x12;
	assert_int_equal(fp_fingerprint_syn(db, synack, sizeof(synack), &r,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a client SYN"));
	assert_int_equal(fp_fingerprint_syn(db, syn, 10, &r, err,
	    sizeof(err)), -1);
}

/* test_key_hash_stable - FNV-1a 64 of a known string */
static void
test_key_hash_stable(void **state)
{
	(void)state;
	assert_true(fp_fnv1a64("") == 0xcbf29ce484222325ull);
	assert_true(fp_fnv1a64("a") == 0xaf63dc4c8601ec8cull);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_cases),
		cmocka_unit_test(test_fingerprint_bytes),
		cmocka_unit_test(test_key_hash_stable),
	};

	return cmocka_run_group_tests_name("fp_match", tests, setup, teardown);
}
