/*
 * test_jsonl.c - cmocka tests for src/report/jsonl.c
 *
 * What it tests: the parser on a case table (parse_cases[]: escapes, \u
 * with surrogate pairs and a lone surrogate, nested objects and arrays,
 * numbers, literals, and each kind of garbage with its error), the nesting
 * limit, tree walking with jl_first()/jl_next()/jl_key(), and the line
 * reader (CRLF, blank lines, a final line without newline, over-long lines
 * skipped and counted with the right line numbers, a 10 MB line in
 * constant memory, a byte limit, rewinding).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/jsonl.h"

struct parse_case {
	const char *in;
	const char *key;	/* a top-level member to check, or NULL */
	const char *want;	/* its string value, or NULL */
	const char *err;	/* expected error substring, NULL = success */
};

static const struct parse_case parse_cases[] = {
	{"{\"a\":\"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\"}", "a",
	    "x\"y\\z/\b\f\n\r\t", NULL},
	{"{\"u\":\"\\u00e9\\u20AC\\ud83d\\ude00\"}", "u",
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", NULL},
	{"{\"u\":\"\\ud800x\"}", "u", "\xef\xbf\xbdx", NULL},
	{"{\"u\":\"\\udc00\"}", "u", "\xef\xbf\xbd", NULL},
	{"{\"u\":\"\\u0041\\u007f\"}", "u", "A\x7f", NULL},
	{"{\"raw\":\"caf\xc3\xa9\"}", "raw", "caf\xc3\xa9", NULL},
	{"  {\"k\" : \"v\" , \"n\":null}  ", "k", "v", NULL},
	{"{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":true,\"e\":false,"
	    "\"n\":-1.5e3,\"s\":\"t\"}", "s", "t", NULL},
	{"{\"dup\":\"first\",\"dup\":\"second\"}", "dup", "first", NULL},
	{"{\"\":\"empty key\"}", "", "empty key", NULL},
	{"[]", NULL, NULL, NULL},
	{"{}", NULL, NULL, NULL},
	{"\"just a string\"", NULL, NULL, NULL},
	{"0", NULL, NULL, NULL},
	{"-0.0e+0", NULL, NULL, NULL},
	{"[true,false,null]", NULL, NULL, NULL},
	/* garbage */
	{"", NULL, NULL, "empty line"},
	{"   ", NULL, NULL, "empty line"},
	{"{\"a\":1,}", NULL, NULL, "expected a key"},
	{"{\"a\" 1}", NULL, NULL, "expected ':'"},
	{"[1 2]", NULL, NULL, "expected ',' or ']'"},
	{"{\"a\":1", NULL, NULL, "unexpected end of line"},
	{"\"abc", NULL, NULL, "unterminated string"},
	{"\"abc\\", NULL, NULL, "unterminated string"},
	{"{\"a\":\"\\x\"}", NULL, NULL, "bad escape '\\x'"},
	{"{\"a\":\"\\u12G4\"}", NULL, NULL, "bad \\u escape"},
	{"{\"a\":\"\\u12\"}", NULL, NULL, "bad \\u escape"},
	{"{\"a\":01}", NULL, NULL, "expected ',' or '}'"},
	{"{\"a\":1.}", NULL, NULL, "bad number"},
	{"{\"a\":-}", NULL, NULL, "bad number"},
	{"{\"a\":1e}", NULL, NULL, "bad number"},
	{"{\"a\":+1}", NULL, NULL, "unexpected character"},
	{"tru", NULL, NULL, "unexpected character"},
	{"nul", NULL, NULL, "unexpected character"},
	{"{} x", NULL, NULL, "garbage after the value"},
	{"{}{}", NULL, NULL, "garbage after the value"},
	{"{\"a\":\"tab\there\"}", NULL, NULL, "control character"},
	{"{'a':1}", NULL, NULL, "expected a key"},
	{"\x01\x02\xff", NULL, NULL, "unexpected character"},
	{"{\"a\":1234567890123456789012345678901234567890123456789012345678901"
	    "234567890}", NULL, NULL, "number too long"},
	{"mailshaper[12]: not json at all", NULL, NULL,
	    "unexpected character"},
};

/* test_parse_cases - every row of parse_cases[] */
static void
test_parse_cases(void **state)
{
	struct jl_doc d;
	char err[200];
	size_t i;

	(void)state;
	jl_doc_init(&d);
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		int rc = jl_parse(&d, c->in, strlen(c->in), err, sizeof(err));

		if (c->err != NULL) {
			if (rc != -1 || strstr(err, c->err) == NULL)
				fail_msg("case %zu '%s': rc %d err '%s', want "
				    "'%s'", i, c->in, rc, rc ? err : "",
				    c->err);
			assert_null(jl_root(&d));
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu '%s': %s", i, c->in, err);
		assert_non_null(jl_root(&d));
		if (c->key != NULL)
			assert_string_equal(jl_get_str(&d, jl_root(&d), c->key),
			    c->want);
	}
	jl_doc_free(&d);
}

/* test_tree - walking nested values */
static void
test_tree(void **state)
{
	const char *in = "{\"a\":{\"b\":[1,2.5,{\"c\":null}]},\"d\":true,"
	    "\"e\":[],\"n\":-1.5e3}";
	const struct jl_val *r, *a, *b, *m;
	struct jl_doc d;
	char err[100];

	(void)state;
	jl_doc_init(&d);
	assert_int_equal(jl_parse(&d, in, strlen(in), err, sizeof(err)), 0);
	r = jl_root(&d);
	assert_int_equal(r->type, JL_OBJ);
	a = jl_get(&d, r, "a");
	assert_int_equal(a->type, JL_OBJ);
	b = jl_get(&d, a, "b");
	assert_int_equal(b->type, JL_ARR);
	m = jl_first(&d, b);
	assert_int_equal(m->type, JL_NUM);
	assert_true(m->num == 1);
	assert_string_equal(jl_key(&d, m), "");
	m = jl_next(&d, m);
	assert_true(m->num == 2.5);
	m = jl_next(&d, m);
	assert_int_equal(m->type, JL_OBJ);
	assert_int_equal(jl_get(&d, m, "c")->type, JL_NULL);
	assert_null(jl_next(&d, m));
	assert_int_equal(jl_get(&d, r, "d")->type, JL_TRUE);
	assert_null(jl_first(&d, jl_get(&d, r, "e")));
	assert_true(jl_get(&d, r, "n")->num == -1500);
	assert_null(jl_get(&d, r, "missing"));
	assert_null(jl_get(&d, b, "a"));	/* not an object */
	assert_null(jl_get_str(&d, r, "d"));	/* not a string */
	m = jl_first(&d, r);
	assert_string_equal(jl_key(&d, m), "a");
	jl_doc_free(&d);
}

/* test_depth - JL_MAX_DEPTH levels parse, one more does not */
static void
test_depth(void **state)
{
	char buf[2 * JL_MAX_DEPTH + 8], err[100];
	struct jl_doc d;
	int i;

	(void)state;
	jl_doc_init(&d);
	for (i = 0; i < JL_MAX_DEPTH; i++) {
		buf[i] = '[';
		buf[JL_MAX_DEPTH + i] = ']';
	}
	assert_int_equal(jl_parse(&d, buf, 2 * JL_MAX_DEPTH, err,
	    sizeof(err)), 0);
	for (i = 0; i <= JL_MAX_DEPTH; i++) {
		buf[i] = '[';
		buf[JL_MAX_DEPTH + 1 + i] = ']';
	}
	assert_int_equal(jl_parse(&d, buf, 2 * JL_MAX_DEPTH + 2, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "nested too deep"));
	jl_doc_free(&d);
}

/* test_binary_garbage - random bytes never crash and always fail cleanly */
static void
test_binary_garbage(void **state)
{
	static const char alphabet[] = "{}[]\",:\\u0aeE.-+tfn \x01\xff";
	char buf[512], err[100];
	struct jl_doc d;
	unsigned seed = 1;
	int i, j, n, ok = 0;

	(void)state;
	jl_doc_init(&d);
	for (i = 0; i < 20000; i++) {
		n = (int)(rand_r(&seed) % sizeof(buf));
		for (j = 0; j < n; j++)
			buf[j] = alphabet[rand_r(&seed) %
			    (sizeof(alphabet) - 1)];
		if (jl_parse(&d, buf, (size_t)n, err, sizeof(err)) == 0)
			ok++;
		else
			assert_null(jl_root(&d));
	}
	jl_doc_free(&d);
	(void)ok;
}

/* tmpfile_with - a stdio temp file holding data */
static FILE *
tmpfile_with(const char *data, size_t len)
{
	FILE *f = tmpfile();

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	rewind(f);
	return f;
}

/* test_reader - lines, CRLF, blanks, an over-long line, no final newline */
static void
test_reader(void **state)
{
	char data[1000];
	const char *line;
	struct jl_reader r;
	size_t len, o = 0;
	FILE *f;

	(void)state;
	o += (size_t)sprintf(data + o, "{\"a\":1}\n");
	o += (size_t)sprintf(data + o, "crlf\r\n");
	o += (size_t)sprintf(data + o, "\n");
	memset(data + o, 'x', 150);		/* line 4: too long */
	o += 150;
	data[o++] = '\n';
	o += (size_t)sprintf(data + o, "after\n");
	memset(data + o, 'y', 100);		/* line 6: exactly the limit */
	o += 100;
	data[o++] = '\n';
	o += (size_t)sprintf(data + o, "last");
	f = tmpfile_with(data, o);
	jl_reader_init(&r, f, 100);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(len, 7);
	assert_memory_equal(line, "{\"a\":1}", 7);
	assert_int_equal(r.lineno, 1);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(len, 4);
	assert_memory_equal(line, "crlf", 4);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(len, 0);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_TOOLONG);
	assert_int_equal(r.lineno, 4);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(r.lineno, 5);
	assert_memory_equal(line, "after", 5);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(len, 100);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(r.lineno, 7);
	assert_int_equal(len, 4);
	assert_memory_equal(line, "last", 4);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_EOF);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_EOF);
	assert_true(r.cap <= 101);

	/* Rewind with a limit: only the first 8 bytes (line 1). */
	jl_reader_rewind(&r, 8);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(len, 7);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_EOF);
	jl_reader_free(&r);
	fclose(f);
}

/* test_reader_huge_line - 10 MB without newline in a 1 MiB reader */
static void
test_reader_huge_line(void **state)
{
	size_t n = 10 * 1024 * 1024, len;
	char *data = malloc(n + 64);
	const char *line;
	struct jl_reader r;
	FILE *f;

	(void)state;
	assert_non_null(data);
	memcpy(data, "{\"type\":\"message\",\"x\":\"", 24);
	memset(data + 24, 'z', n - 24);
	memcpy(data + n, "\"}\nok\n", 6);
	f = tmpfile_with(data, n + 6);
	free(data);
	jl_reader_init(&r, f, 0);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_TOOLONG);
	assert_int_equal(r.lineno, 1);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
	assert_int_equal(r.lineno, 2);
	assert_memory_equal(line, "ok", 2);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_EOF);
	assert_true(r.cap <= JL_MAX_LINE + 1);
	jl_reader_free(&r);
	fclose(f);

	/* The same as the last line, without a newline. */
	data = malloc(n);
	assert_non_null(data);
	memset(data, 'q', n);
	f = tmpfile_with(data, n);
	free(data);
	jl_reader_init(&r, f, 0);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_TOOLONG);
	assert_int_equal(jl_read_line(&r, &line, &len), JL_EOF);
	jl_reader_free(&r);
	fclose(f);
}

/* test_reader_many_lines - line numbers across buffer refills */
static void
test_reader_many_lines(void **state)
{
	struct jl_reader r;
	const char *line;
	unsigned long i;
	size_t len;
	char want[32];
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	for (i = 1; i <= 100000; i++)
		fprintf(f, "{\"n\":%lu}\n", i);
	rewind(f);
	jl_reader_init(&r, f, 0);
	for (i = 1; i <= 100000; i++) {
		assert_int_equal(jl_read_line(&r, &line, &len), JL_LINE);
		assert_int_equal(r.lineno, i);
		snprintf(want, sizeof(want), "{\"n\":%lu}", i);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(line, want, len);
	}
	assert_int_equal(jl_read_line(&r, &line, &len), JL_EOF);
	jl_reader_free(&r);
	fclose(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_cases),
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_binary_garbage),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_reader_huge_line),
		cmocka_unit_test(test_reader_many_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
