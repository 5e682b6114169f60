/*
 * jsonl.h - a bounded streaming reader of JSON lines and a small JSON parser
 *
 * jl_reader hands out one line at a time from a FILE, never holding more
 * than its maximum line length; jl_parse() turns one line into a read-only
 * tree that lives in a reusable struct jl_doc until the next parse.
 */
#ifndef MS_JSONL_H
#define MS_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JL_MAX_LINE	(1024 * 1024)	/* default longest line, bytes */
#define JL_MAX_DEPTH	64		/* deepest nesting of arrays/objects */

/* Results of jl_read_line(). */
#define JL_LINE		1	/* a line (without its newline) */
#define JL_EOF		0	/* end of input (or of the byte limit) */
#define JL_ERR		(-1)	/* read error: errno is set */
#define JL_TOOLONG	2	/* a line over the limit was skipped */

struct jl_reader {
	FILE	*f;		/* not owned */
	char	*buf;		/* owned */
	size_t	cap;		/* bytes allocated in buf */
	size_t	max;		/* longest line accepted, bytes */
	size_t	start, end;	/* unread bytes are buf[start..end) */
	uint64_t limit;		/* stop after this many bytes (0 = none) */
	uint64_t consumed;	/* bytes read from f so far */
	unsigned long lineno;	/* number of the line last returned */
	int	eof;		/* f (or the limit) is exhausted */
};

enum jl_type { JL_NULL, JL_FALSE, JL_TRUE, JL_NUM, JL_STR, JL_ARR, JL_OBJ };

/* One value.  Indices refer to jl_doc.v; 0 never names a member. */
struct jl_val {
	enum jl_type type;
	uint32_t next;		/* next member of the parent (0 = last) */
	uint32_t child;		/* first member of an array/object (0 = empty) */
	uint32_t key, klen;	/* member name in jl_doc.str (objects only) */
	uint32_t s, slen;	/* string value in jl_doc.str (JL_STR) */
	double	num;		/* JL_NUM */
};

struct jl_doc {
	struct jl_val *v;	/* v[0] is the root after a successful parse */
	size_t	nv, cv;		/* used and allocated values */
	char	*str;		/* decoded strings, each NUL-terminated */
	size_t	ns, cs;		/* used and allocated bytes */
};

void	jl_reader_init(struct jl_reader *, FILE *, size_t max_line);
void	jl_reader_rewind(struct jl_reader *, uint64_t limit);
int	jl_read_line(struct jl_reader *, const char **line, size_t *len);
void	jl_reader_free(struct jl_reader *);

void	jl_doc_init(struct jl_doc *);
int	jl_parse(struct jl_doc *, const char *buf, size_t len, char *err,
	    size_t errlen);
void	jl_doc_free(struct jl_doc *);

const struct jl_val *jl_root(const struct jl_doc *);
const struct jl_val *jl_get(const struct jl_doc *, const struct jl_val *obj,
	    const char *key);
const struct jl_val *jl_first(const struct jl_doc *, const struct jl_val *);
const struct jl_val *jl_next(const struct jl_doc *, const struct jl_val *);
const char *jl_str(const struct jl_doc *, const struct jl_val *);
const char *jl_key(const struct jl_doc *, const struct jl_val *);
const char *jl_get_str(const struct jl_doc *, const struct jl_val *obj,
	    const char *key);

#endif
