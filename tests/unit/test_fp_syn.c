/*
 * test_fp_syn.c - SYN parser cases (src/fp/syn.c)
 *
 * Each case builds an IPv4 or IPv6 SYN from a base packet plus a patch,
 * then checks the parse result, the quirks and the rendered raw signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fp/match.h"
#include "fp/syn.h"

/* A Linux 3.x SYN: TTL 61, DF, IPID set, mss 1460, win 29200, ws 7. */
static const unsigned char linux_syn[] = {
	0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x3d, 0x06, 0, 0,
	10, 0, 0, 1, 192, 0, 2, 25,
	0x04, 0x00, 0x00, 0x19, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0,
	0xa0, 0x02, 0x72, 0x10, 0, 0, 0, 0,
	0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0x10, 0,
	0, 0, 0, 0, 0x01, 0x03, 0x03, 0x07
};

struct syn_case {
	const char	*name;
	size_t		off[4];		/* bytes to patch */
	unsigned char	val[4];
	int		npatch;
	size_t		len;		/* 0 = whole packet */
	int		rc;		/* expected return */
	const char	*raw;		/* expected raw_sig, NULL = skip */
	uint32_t	quirks;		/* quirks that must be set */
};

static const struct syn_case syn_cases[] = {
	{ "plain Linux SYN", {0}, {0}, 0, 0, 0,
	  "4:61+3:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0", 0 },
	{ "truncated IP header", {0}, {0}, 0, 12, -1, NULL, 0 },
	{ "truncated TCP header", {0}, {0}, 0, 30, -1, NULL, 0 },
	{ "truncated options", {0}, {0}, 0, 50, -1, NULL, 0 },
	{ "IHL below 5", {0}, {0x44}, 1, 0, -1, NULL, 0 },
	{ "IHL beyond packet", {0}, {0x4f}, 1, 0, -1, NULL, 0 },
	{ "data offset below 5", {32}, {0x40}, 1, 0, -1, NULL, 0 },
	{ "data offset beyond packet", {32}, {0xf0}, 1, 0, -1, NULL, 0 },
	{ "UDP", {9}, {17}, 1, 0, -1, NULL, 0 },
	{ "fragment", {6}, {0x20}, 1, 0, -1, NULL, 0 },
	{ "MSS option overruns", {41}, {40}, 1, 0, 0, NULL, FP_Q_OPT_BAD },
	{ "zero-length unknown option", {40, 41}, {30, 0}, 2, 0, 0, NULL,
	  FP_Q_OPT_BAD },
	{ "ecn via ECE/CWR", {33}, {0xc2}, 1, 0, 0, NULL, FP_Q_ECN },
	{ "id- without DF", {4, 5, 6}, {0, 0, 0}, 3, 0, 0,
	  "4:61+3:0:1460:mss*20,7:mss,sok,ts,nop,ws:id-:0", FP_Q_ZERO_ID },
	{ "0+ must-be-zero bit", {6}, {0xc0}, 1, 0, 0, NULL, FP_Q_NZ_MBZ },
	{ "ts1- and ts2+", {50, 51, 55}, {0, 0, 1}, 3, 0, 0, NULL,
	  FP_Q_ZERO_TS1 | FP_Q_NZ_TS2 },
	{ "exws", {59}, {15}, 1, 0, 0, NULL, FP_Q_EXWS },
	{ "ack+ follows p0f's low-bit test", {28}, {1}, 1, 0, 0, NULL,
	  FP_Q_NZ_ACK },
	{ "uptr+ and pushf+", {33, 39}, {0x0a, 5}, 2, 0, 0, NULL,
	  FP_Q_NZ_URG | FP_Q_PUSH },
	{ "seq-", {24, 25, 26, 27}, {0, 0, 0, 0}, 4, 0, 0, NULL,
	  FP_Q_ZERO_SEQ },
	{ "far TTL renders +?", {8}, {200}, 1, 0, 0,
	  "4:200+?:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0", 0 },
};

/* test_syn_cases - run the table */
static void
test_syn_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(syn_cases) / sizeof(syn_cases[0]); i++) {
		const struct syn_case *c = &syn_cases[i];
		unsigned char pkt[sizeof(linux_syn)];
		struct fp_syn s;
		char err[128] = "", raw[160];
		int j, rc;

		memcpy(pkt, linux_syn, sizeof(pkt));
		for (j = 0; j < c->npatch; j++)
			pkt[c->off[j]] = c->val[j];
		rc = fp_syn_parse(pkt, c->len ? c->len : sizeof(pkt), &s, err,
		    sizeof(err));
		if (rc != c->rc)
			fail_msg("%s: rc %d (%s)", c->name, rc, err);
		if (rc == -1) {
			assert_true(err[0] != '\0');
			continue;
		}
		if ((s.quirks & c->quirks) != c->quirks)
			fail_msg("%s: quirks %#x", c->name, s.quirks);
		assert_true(fp_render_sig(&s, 0, raw, sizeof(raw)) > 0);
		if (c->raw != NULL && strcmp(raw, c->raw) != 0)
			fail_msg("%s: got %s", c->name, raw);
	}
}

/* test_every_length - no prefix of a packet reads past its end */
static void
test_every_length(void **state)
{
	size_t n;
	struct fp_syn s;

	(void)state;
	for (n = 0; n <= sizeof(linux_syn); n++) {
		unsigned char *p = test_malloc(n ? n : 1);

		memcpy(p, linux_syn, n);
		(void)fp_syn_parse(p, n, &s, NULL, 0);
		test_free(p);
	}
}

/* test_ipv6_ext - extension chains: walked, bounded */
static void
test_ipv6_ext(void **state)
{
	unsigned char pkt[40 + 8 * 20 + 20];
	struct fp_syn s;
	char err[128], raw[160];
	int i, n;

	(void)state;
	for (n = 0; n <= 20; n++) {
		memset(pkt, 0, sizeof(pkt));
		pkt[0] = 0x60;
		pkt[4] = 0;
		pkt[5] = (unsigned char)(8 * n + 20);
		pkt[6] = n ? 60 : 6;
		pkt[7] = 64;
		for (i = 0; i < n; i++)
			pkt[40 + 8 * i] = i + 1 < n ? 60 : 6;
		pkt[40 + 8 * n + 4] = 0x01;
		pkt[40 + 8 * n + 12] = 0x50;
		pkt[40 + 8 * n + 13] = 0x02;
		pkt[40 + 8 * n + 15] = 0x10;
		i = fp_syn_parse(pkt, 40 + 8 * n + 20, &s, err, sizeof(err));
		if (n <= FP_MAX_EXT) {
			assert_int_equal(i, 0);
			assert_int_equal(s.n_ext, n);
			assert_true(fp_render_sig(&s, 0, raw, sizeof(raw)) > 0);
			assert_string_equal(raw, "6:64+0:0:0:16,0:::0");
		} else
			assert_int_equal(i, -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_cases),
		cmocka_unit_test(test_every_length),
		cmocka_unit_test(test_ipv6_ext),
	};

	return cmocka_run_group_tests_name("fp_syn", tests, NULL, NULL);
}
