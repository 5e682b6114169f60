/*
 * fuzz_jsonl.c - libFuzzer target for src/report/jsonl.c
 *
 * The input is parsed whole as one line, then read as a file with a small
 * line limit (64 bytes) and each line parsed.  Invariants: the parser never
 * reads outside its input; after success every value is reachable from the
 * root and every string accessor returns a NUL-terminated string inside the
 * document; after failure there is no root; a line from the reader never
 * exceeds the limit nor holds a newline; line numbers only increase.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* walk - visit every value; returns how many */
static size_t
walk(const struct jl_doc *d, const struct jl_val *v, int depth)
{
	const struct jl_val *m;
	size_t n = 1;

	if (depth > JL_MAX_DEPTH)
		abort();
	if (v->type == JL_STR && strlen(jl_str(d, v)) > v->slen)
		abort();
	for (m = jl_first(d, v); m != NULL; m = jl_next(d, m)) {
		if (v->type == JL_OBJ && jl_get(d, v, jl_key(d, m)) == NULL)
			abort();
		n += walk(d, m, depth + 1);
	}
	return n;
}

/* check - parse one buffer and check the invariants */
static void
check(struct jl_doc *d, const char *buf, size_t len)
{
	char err[200];

	if (jl_parse(d, buf, len, err, sizeof(err)) == 0) {
		if (jl_root(d) == NULL || walk(d, jl_root(d), 0) != d->nv)
			abort();
	} else if (jl_root(d) != NULL || strncmp(err, "column ", 7) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jl_reader r;
	struct jl_doc d;
	const char *line;
	unsigned long last = 0;
	size_t len;
	char *copy;
	FILE *f;
	int rc;

	jl_doc_init(&d);
	/* An exact-size copy, so ASan sees any read past the end. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	check(&d, copy, size);
	free(copy);
	if (size > 0 && (f = fmemopen((void *)data, size, "r")) != NULL) {
		jl_reader_init(&r, f, 64);
		while ((rc = jl_read_line(&r, &line, &len)) != JL_EOF &&
		    rc != JL_ERR) {
			if (r.lineno <= last)
				abort();
			last = r.lineno;
			if (rc != JL_LINE)
				continue;
			if (len > 64 || memchr(line, '\n', len) != NULL)
				abort();
			check(&d, line, len);
		}
		jl_reader_free(&r);
		fclose(f);
	}
	jl_doc_free(&d);
	return 0;
}
