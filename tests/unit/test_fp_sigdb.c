/*
 * test_fp_sigdb.c - signature-file parser cases (src/fp/sigdb.c)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fp/sigdb.h"

struct sig_case {
	const char	*sig;
	int		rc;		/* 0 = accepted, -1 = rejected */
	const char	*why;		/* substring of the reason */
};

static const struct sig_case sig_cases[] = {
	{ "*:64:0:*:mss*20,10:mss,sok,ts,nop,ws:df,id+:0", 0, NULL },
	{ "4:128:0:1460:mtu*2,0:mss,nop,ws::0", 0, NULL },
	{ "*:64-:0:265:%512,0:mss,sok,ts:ack+:*", 0, NULL },
	{ "*:64+5:0:*:*,*:mss,nop,eol+18::+", 0, NULL },
	{ "6:64:0:*:65535,*:?30,nop:flow:0", 0, NULL },
	{ "5:64:0:*:1,0:mss::0", -1, "IP version" },
	{ "4:0:0:*:1,0:mss::0", -1, "TTL" },
	{ "4:300:0:*:1,0:mss::0", -1, "TTL" },
	{ "4:64:0:99999:1,0:mss::0", -1, "MSS" },
	{ "4:64:0:*:mss*0,0:mss::0", -1, "multiplier" },
	{ "4:64:0:*:%1,0:mss::0", -1, "'%'" },
	{ "4:64:0:*:70000,0:mss::0", -1, "window" },
	{ "4:64:0:*:1,0:mss,eol+1,nop::0", -1, "EOL" },
	{ "4:64:0:*:1,0:mss,frob::0", -1, "option" },
	{ "4:64:0:*:1,0:mss:frob:0", -1, "quirk" },
	{ "6:64:0:*:1,0:mss:df:0", -1, "IPv6" },
	{ "4:64:0:*:1,0:mss:flow:0", -1, "IPv4" },
	{ "4:64:0:*:1,0:mss::x", -1, "payload" },
	{ "4:64:0:*:1,0:mss", -1, "options" },
	{ "4:64", -1, NULL },
	{ "", -1, NULL },
	{ "4:64:0:*:1,0:nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,"
	  "nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop::0", -1, "many" },
};

/* test_sig_cases - parse single signature strings */
static void
test_sig_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sig_cases) / sizeof(sig_cases[0]); i++) {
		const struct sig_case *c = &sig_cases[i];
		struct sigdb_sig s;
		char err[128] = "";
		int rc = sigdb_parse_sig(c->sig, &s, err, sizeof(err));

		if (rc != c->rc)
			fail_msg("'%s': rc %d (%s)", c->sig, rc, err);
		if (c->why != NULL && strstr(err, c->why) == NULL)
			fail_msg("'%s': reason '%s'", c->sig, err);
	}
}

static const char good_file[] =
	"; comment\n"
	"classes = win,unix,other\n"
	"[mtu]\n"
	"label = Ethernet or modem\n"
	"sig   = 1500\n"
	"[tcp:request]\n"
	"label = s:unix:Linux:3.11 and newer\n"
	"sig   = *:64:0:*:mss*20,10:mss,sok,ts,nop,ws:df,id+:0\n"
	"label = s:!:NMap:SYN scan\n"
	"sys   = @unix,@win\n"
	"sig   = *:64-:0:1460:1024,0:mss::0\n"
	"[tcp:response]\n"
	"label = s:unix:Linux:ignored\n"
	"sig   = *:64:0:*:1,0:mss::0\n"
	"[http:request]\n"
	"ua_os = Linux,Windows\n";

/* test_good_file - a well-formed file: counts and labels */
static void
test_good_file(void **state)
{
	struct sigdb *db = sigdb_new();
	char err[128];

	(void)state;
	db->quiet = 1;
	assert_int_equal(sigdb_parse_buf(db, "good.fp", good_file,
	    sizeof(good_file) - 1), 0);
	assert_int_equal(sigdb_finish(db, err, sizeof(err)), 0);
	assert_int_equal(db->nsigs, 2);
	assert_int_equal(db->nmtus, 1);
	assert_string_equal(sigdb_mtu_link(db, 1500), "Ethernet or modem");
	assert_null(sigdb_mtu_link(db, 1499));
	assert_string_equal(db->labels[db->sigs[0].label].os,
	    "Linux 3.11 and newer");
	assert_int_equal(db->labels[db->sigs[1].label].class_id, -1);
	assert_int_equal(db->sigs[1].bad_ttl, 1);
	sigdb_free(db);
}

struct file_case {
	const char	*text;
	unsigned	nbad;		/* lines rejected */
	size_t		nsigs;		/* signatures kept */
};

static const struct file_case file_cases[] = {
	{ "sig = *:64:0:*:1,0:mss::0\n", 1, 0 },
	{ "[tcp:request]\nsig = *:64:0:*:1,0:mss::0\n", 1, 0 },
	{ "classes = unix\n[tcp:request]\nlabel = s:unix:A:\n"
	  "sig = *:64:0:*:1,0:mss::0\nsig = *:64:0:*:1,0:mss::0\n", 1, 1 },
	{ "classes = unix\n[tcp:request]\nlabel = x:unix:A:\n"
	  "sig = *:64:0:*:1,0:mss::0\n", 2, 0 },
	{ "classes = unix\n[tcp:request]\nlabel = s:!:Tool:\n"
	  "sig = *:64:0:*:1,0:mss::0\n", 1, 0 },
	{ "[bogus]\nfoo = bar\n", 1, 0 },
	{ "what is this\n", 1, 0 },
	{ "classes = unix\n[tcp:request]\nlabel = s:unix:A:\n"
	  "sig = *:64:0:*:1,0:mss::0\nclasses = win\n", 1, 1 },
	{ "[mtu]\nsig = 1500\nlabel = x\nsig = 0\nsig = 1400x\n", 3, 0 },
	{ "classes = unix\n[tcp:request]\nlabel = s:unix:A:\n"
	  "sig = *:64:0:*:1,0:mss::0\0\nsig = *:64:0:*:2,0:mss::0\n", 1, 1 },
};

/* test_file_cases - bad lines are counted, the rest loads */
static void
test_file_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		const struct file_case *c = &file_cases[i];
		struct sigdb *db = sigdb_new();
		char err[128];
		size_t len = strlen(c->text);

		if (i == sizeof(file_cases) / sizeof(file_cases[0]) - 1)
			len += 1 + strlen(c->text + len + 1);
		db->quiet = 1;
		sigdb_parse_buf(db, "t.fp", c->text, len);
		assert_int_equal(sigdb_finish(db, err, sizeof(err)), 0);
		if (db->nbad != c->nbad || db->nsigs != c->nsigs)
			fail_msg("case %zu: nbad %u nsigs %zu", i, db->nbad,
			    db->nsigs);
		sigdb_free(db);
	}
}

/* test_missing_files - nothing readable is fatal, one readable is not */
static void
test_missing_files(void **state)
{
	const char *none[] = { "/nonexistent/a.fp", "/nonexistent/b.fp" };
	char err[256] = "";

	(void)state;
	assert_null(sigdb_load_files(none, 2, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/b.fp"));
	assert_null(sigdb_load_files(none, 0, err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sig_cases),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_file_cases),
		cmocka_unit_test(test_missing_files),
	};

	return cmocka_run_group_tests_name("fp_sigdb", tests, NULL, NULL);
}
