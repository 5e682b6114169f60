/*
 * test_canon.c - cmocka tests for src/smtp/canon.c, the DATA/BDAT
 *		  canonicaliser
 *
 * What it tests: for each row of canon_cases[] the client bytes sent after
 * the DATA command (canon_init(raw=0, crlf_before=1)) give exactly the
 * expected backend bytes, the expected end-of-data position (the number of
 * input bytes consumed, or "no end") and the expected bad flags.  Every row
 * is fed twice, in one canon_feed() call and one byte at a time, and the two
 * results must be identical.  The rows cover every SMTP-smuggling
 * end-of-data variant (\n.\n, \n.\r\n, \r.\n, \r.\r, \r.\r\n, \n.\r,
 * \r\n\0.\r\n, \r\n.\r\r\n, \r\n.\n, \r\n..\r\n): none of them may end the
 * data, while \r\n.\r\n does.  bdat_cases[] does the same for raw (BDAT)
 * mode plus canon_finish(); the last tests pin canon_bad_text().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "smtp/canon.h"

#define NO_END	((size_t)-1)
#define END	((size_t)-3)	/* ends just before a trailing "MAIL" */

/* Lengths are explicit so that rows may contain NUL bytes. */
#define S(lit)	lit, sizeof(lit) - 1

struct canon_case {
	const char *label;
	const char *in;
	size_t	inlen;
	const char *want;	/* backend bytes */
	size_t	wantlen;
	size_t	end;		/* END (data ends, the input's trailing
				 * "MAIL", if any, is left unread) or NO_END */
	int	bad;		/* CANON_* flags */
};

/*
 * "Hi" VARIANT "X" CRLF "." CRLF "MAIL": the variant must never end the
 * data; the real CRLF.CRLF after it must, leaving "MAIL" unread.
 */
static const struct canon_case canon_cases[] = {
	{"plain CRLF.CRLF ends data",
	    S("Hi\r\n.\r\nMAIL"), S("Hi\r\n.\r\n"), END, 0},
	{"empty message",
	    S(".\r\nMAIL"), S(".\r\n"), END, 0},
	{"empty line then end",
	    S("Hi\r\n\r\n.\r\n"), S("Hi\r\n\r\n.\r\n"), END, 0},
	{"no end yet",
	    S("Hi\r\nthere"), S("Hi\r\nthere"), NO_END, 0},
	{"pending CR at end of input is held back",
	    S("Hi\r"), S("Hi"), NO_END, 0},
	{"pending dot at start of line is held back",
	    S("Hi\r\n."), S("Hi\r\n"), NO_END, 0},
	{"pending dot CR is held back",
	    S("Hi\r\n.\r"), S("Hi\r\n"), NO_END, 0},
	{"smuggle \\n.\\n",
	    S("Hi\n.\nX\r\n.\r\nMAIL"), S("Hi\r\n..\r\nX\r\n.\r\n"), END,
	    CANON_BARE_LF},
	{"smuggle \\n.\\r\\n",
	    S("Hi\n.\r\nX\r\n.\r\nMAIL"), S("Hi\r\n..\r\nX\r\n.\r\n"), END,
	    CANON_BARE_LF},
	{"smuggle \\r.\\n",
	    S("Hi\r.\nX\r\n.\r\nMAIL"), S("Hi .\r\nX\r\n.\r\n"), END,
	    CANON_BARE_CR | CANON_BARE_LF},
	{"smuggle \\r.\\r",
	    S("Hi\r.\rX\r\n.\r\nMAIL"), S("Hi . X\r\n.\r\n"), END,
	    CANON_BARE_CR},
	{"smuggle \\r.\\r\\n",
	    S("Hi\r.\r\nX\r\n.\r\nMAIL"), S("Hi .\r\nX\r\n.\r\n"), END,
	    CANON_BARE_CR},
	{"smuggle \\n.\\r",
	    S("Hi\n.\rX\r\n.\r\nMAIL"), S("Hi\r\n. X\r\n.\r\n"), END,
	    CANON_BARE_LF | CANON_BARE_CR},
	{"smuggle \\r\\n\\0.\\r\\n",
	    S("Hi\r\n\0.\r\nX\r\n.\r\nMAIL"), S("Hi\r\n .\r\nX\r\n.\r\n"), END,
	    CANON_NUL},
	{"smuggle \\r\\n.\\r\\r\\n",
	    S("Hi\r\n.\r\r\nX\r\n.\r\nMAIL"), S("Hi\r\n. \r\nX\r\n.\r\n"), END,
	    CANON_BARE_CR},
	{"smuggle \\r\\n.\\n",
	    S("Hi\r\n.\nX\r\n.\r\nMAIL"), S("Hi\r\n..\r\nX\r\n.\r\n"), END,
	    CANON_BARE_LF},
	{"data line \".\" stays \"..\"",
	    S("Hi\r\n..\r\nX\r\n.\r\nMAIL"), S("Hi\r\n..\r\nX\r\n.\r\n"), END, 0},
	{"dot-stuffed text passes as it is",
	    S("..abc\r\n.x\r\n.\r\n"), S("..abc\r\n.x\r\n.\r\n"), END, 0},
	{"bare LF line then real CRLF.CRLF ends data",
	    S("Hi\n\r\n.\r\nMAIL"), S("Hi\r\n\r\n.\r\n"), END, CANON_BARE_LF},
	{"dot line after bare LF, then CRLF.CRLF",
	    S("a\n.\r\n.\r\nMAIL"), S("a\r\n..\r\n.\r\n"), END, CANON_BARE_LF},
	{"NUL inside a line",
	    S("a\0b\r\n.\r\n"), S("a b\r\n.\r\n"), END, CANON_NUL},
	{"bare CR inside a line",
	    S("a\rb\r\n.\r\n"), S("a b\r\n.\r\n"), END, CANON_BARE_CR},
	{"CR CR LF",
	    S("a\r\r\n.\r\n"), S("a \r\n.\r\n"), END, CANON_BARE_CR},
	{"bare LF only",
	    S("a\nb\n"), S("a\r\nb\r\n"), NO_END, CANON_BARE_LF},
	{"lone dot line ended by LF at start",
	    S(".\n.\r\n"), S("..\r\n..\r\n"), NO_END, CANON_BARE_LF},
};

/* want_end - input bytes canon_feed() must use for the row */
static size_t
want_end(const struct canon_case *tc)
{
	if (tc->end == NO_END)
		return NO_END;
	if (tc->inlen >= 4 && memcmp(tc->in + tc->inlen - 4, "MAIL", 4) == 0)
		return tc->inlen - 4;
	return tc->inlen;
}

/* feed - run one case; step 0 = one call, else bytes per call */
static size_t
feed(const struct canon_case *tc, size_t step, struct evbuffer *out,
    struct canon *c)
{
	size_t	off = 0, used;

	canon_init(c, 0, 1);
	while (off < tc->inlen) {
		size_t	n = step ? step : tc->inlen;

		if (n > tc->inlen - off)
			n = tc->inlen - off;
		used = (size_t)-2;
		if (canon_feed(c, tc->in + off, n, out, &used) == 1) {
			assert_true(used <= n);
			return off + used;
		}
		assert_int_equal(used, n);
		off += n;
	}
	return NO_END;
}

/* check_out - out must hold exactly want */
static void
check_out(const char *label, struct evbuffer *out, const char *want,
    size_t wantlen)
{
	size_t	len = evbuffer_get_length(out);
	const char *got = (const char *)evbuffer_pullup(out, -1);

	if (len != wantlen || (len && memcmp(got, want, len) != 0)) {
		print_error("%s: got %zu bytes, want %zu\n", label, len, wantlen);
		fail();
	}
}

/* test_data_cases - every canon_cases[] row, whole and byte by byte */
static void
test_data_cases(void **state)
{
	size_t	i, steps[] = {0, 1, 2, 3};
	(void)state;

	for (i = 0; i < sizeof(canon_cases) / sizeof(canon_cases[0]); i++) {
		const struct canon_case *tc = &canon_cases[i];
		size_t	s;

		for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			struct evbuffer *out = evbuffer_new();
			struct canon c;
			size_t	end = feed(tc, steps[s], out, &c);

			if (end != want_end(tc)) {
				print_error("%s (step %zu): end %zd, want %zd\n",
				    tc->label, steps[s], (ssize_t)end,
				    (ssize_t)want_end(tc));
				fail();
			}
			check_out(tc->label, out, tc->want, tc->wantlen);
			if (c.bad != tc->bad) {
				print_error("%s (step %zu): bad 0x%x, want 0x%x\n",
				    tc->label, steps[s], c.bad, tc->bad);
				fail();
			}
			/* size counts content, not the end marker. */
			if (tc->end != NO_END)
				assert_int_equal(c.size, tc->wantlen - 3);
			else
				assert_int_equal(c.size, tc->wantlen);
			evbuffer_free(out);
		}
	}
}

/* test_null_out - out == NULL parses the same way and writes nothing */
static void
test_null_out(void **state)
{
	static const char in[] = "Hi\n.\nX\r\n.\r\nMAIL";
	struct canon c;
	size_t	used;
	(void)state;

	canon_init(&c, 0, 1);
	assert_int_equal(canon_feed(&c, in, sizeof(in) - 1, NULL, &used), 1);
	assert_int_equal(used, sizeof(in) - 1 - 4);
	assert_int_equal(c.bad, CANON_BARE_LF);
}

/* test_crlf_before - a DATA line ended by a bare LF: "." first is data */
static void
test_crlf_before(void **state)
{
	static const char in[] = ".\r\n.\r\n";
	struct evbuffer *out = evbuffer_new();
	struct canon c;
	size_t	used;
	(void)state;

	canon_init(&c, 0, 0);
	assert_int_equal(canon_feed(&c, in, sizeof(in) - 1, out, &used), 1);
	assert_int_equal(used, 6);
	check_out("crlf_before=0", out, S("..\r\n.\r\n"));
	evbuffer_free(out);
}

struct bdat_case {
	const char *label;
	const char *in;
	size_t	inlen;
	const char *want;	/* after canon_finish() */
	size_t	wantlen;
	int	bad;
};

/* Raw mode: no end marker, every leading dot stuffed, finish adds "." */
static const struct bdat_case bdat_cases[] = {
	{"empty", S(""), S(".\r\n"), 0},
	{"one line", S("a\r\n"), S("a\r\n.\r\n"), 0},
	{"unterminated line", S("abc"), S("abc\r\n.\r\n"), 0},
	{"dot lines are stuffed", S("a\r\n.\r\n.b\r\n"),
	    S("a\r\n..\r\n..b\r\n.\r\n"), 0},
	{"CRLF.CRLF is data", S(".\r\nMAIL\r\n"), S("..\r\nMAIL\r\n.\r\n"), 0},
	{"bare LF", S("a\nb"), S("a\r\nb\r\n.\r\n"), CANON_BARE_LF},
	{"trailing CR", S("a\r"), S("a \r\n.\r\n"), CANON_BARE_CR},
	{"NUL", S("\0"), S(" \r\n.\r\n"), CANON_NUL},
	{"trailing dot", S("x\r\n."), S("x\r\n..\r\n.\r\n"), 0},
};

/* test_bdat_cases - raw mode, whole and byte by byte, then finish */
static void
test_bdat_cases(void **state)
{
	size_t	i, k, used;
	(void)state;

	for (i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *tc = &bdat_cases[i];
		int	bytewise;

		for (bytewise = 0; bytewise < 2; bytewise++) {
			struct evbuffer *out = evbuffer_new();
			struct canon c;

			canon_init(&c, 1, 1);
			if (!bytewise) {
				assert_int_equal(canon_feed(&c, tc->in,
				    tc->inlen, out, &used), 0);
				assert_int_equal(used, tc->inlen);
			} else
				for (k = 0; k < tc->inlen; k++) {
					assert_int_equal(canon_feed(&c,
					    tc->in + k, 1, out, &used), 0);
					assert_int_equal(used, 1);
				}
			canon_finish(&c, out);
			check_out(tc->label, out, tc->want, tc->wantlen);
			assert_int_equal(c.bad, tc->bad);
			evbuffer_free(out);
		}
	}
}

/* test_bad_text - the words, most serious flag first */
static void
test_bad_text(void **state)
{
	static const struct {
		int	bad;
		const char *text;
	} rows[] = {
		{0, "none"},
		{CANON_BARE_LF, "bare LF"},
		{CANON_BARE_CR, "bare CR"},
		{CANON_NUL, "NUL byte"},
		{CANON_BARE_LF | CANON_BARE_CR, "bare CR"},
		{CANON_BARE_LF | CANON_NUL, "NUL byte"},
		{CANON_BARE_LF | CANON_BARE_CR | CANON_NUL, "NUL byte"},
	};
	size_t	i;
	(void)state;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_string_equal(canon_bad_text(rows[i].bad), rows[i].text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_cases),
		cmocka_unit_test(test_null_out),
		cmocka_unit_test(test_crlf_before),
		cmocka_unit_test(test_bdat_cases),
		cmocka_unit_test(test_bad_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
