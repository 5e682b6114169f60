/*
 * jsonl.c - a bounded streaming reader of JSON lines and a small JSON parser
 *
 * Exports the jl_reader_*() line reader, jl_parse() and the jl_*() tree
 * accessors (see jsonl.h).
 *
 * The reader holds at most max_line + 1 bytes: a line longer than that is
 * skipped up to its newline and reported as JL_TOOLONG, so a log of any
 * length or shape is read in constant memory.  A trailing "\r" is dropped.
 * A final line without a newline is returned as it is.
 *
 * The parser is strict RFC 8259 on one value per line, with a nesting limit
 * of JL_MAX_DEPTH.  Strings are decoded to UTF-8 (\u escapes, surrogate
 * pairs; a lone surrogate becomes U+FFFD); other bytes pass unchecked.  On
 * error it returns -1 and writes "column N: reason" to the caller's buffer.
 *
 * Memory: the reader owns its buffer, the document its value and string
 * arrays; both grow to the largest line seen and are reused.  Pointers
 * returned by the accessors are valid until the next jl_parse() on the same
 * document.  It is an error to use a jl_val from another document, or a
 * document whose last jl_parse() failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonl.h"

#define JL_MAX_NUM	64	/* longest number literal, characters */

/* jl_reader_init - read lines of at most max_line bytes from f */
void
jl_reader_init(struct jl_reader *r, FILE *f, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->max = max_line ? max_line : JL_MAX_LINE;
}

/* jl_reader_rewind - start again at the beginning, reading at most limit */
void
jl_reader_rewind(struct jl_reader *r, uint64_t limit)
{
	rewind(r->f);
	r->start = r->end = 0;
	r->consumed = 0;
	r->limit = limit;
	r->lineno = 0;
	r->eof = 0;
}

/* fill - read more bytes after buf[end]; returns bytes read, -1 on error */
static long
fill(struct jl_reader *r)
{
	size_t want, got;

	if (r->eof)
		return 0;
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap < r->max + 1) {
		size_t ncap = r->cap ? r->cap * 2 : 65536;
		char *nb;

		if (ncap > r->max + 1)
			ncap = r->max + 1;
		if (r->end == r->cap) {
			if ((nb = realloc(r->buf, ncap)) == NULL)
				return -1;
			r->buf = nb;
			r->cap = ncap;
		}
	}
	want = r->cap - r->end;
	if (r->limit && r->limit - r->consumed < want)
		want = (size_t)(r->limit - r->consumed);
	if (want == 0) {
		r->eof = 1;
		return 0;
	}
	got = fread(r->buf + r->end, 1, want, r->f);
	if (got == 0) {
		if (ferror(r->f))
			return -1;
		r->eof = 1;
		return 0;
	}
	r->end += got;
	r->consumed += got;
	return (long)got;
}

/* jl_read_line - the next line: JL_LINE, JL_TOOLONG, JL_EOF or JL_ERR */
int
jl_read_line(struct jl_reader *r, const char **line, size_t *len)
{
	size_t scanned = 0;
	char *nl;
	long n;

	for (;;) {
		nl = r->end - r->start > scanned ? memchr(r->buf + r->start +
		    scanned, '\n', r->end - r->start - scanned) : NULL;
		if (nl != NULL)
			break;
		scanned = r->end - r->start;
		if (scanned > r->max) {
			/* Too long: drop it up to and including its newline. */
			r->lineno++;
			r->start = r->end = 0;
			for (;;) {
				if ((n = fill(r)) < 0)
					return JL_ERR;
				if (n == 0)
					return JL_TOOLONG;
				if ((nl = memchr(r->buf, '\n', r->end)) != NULL) {
					r->start = (size_t)(nl - r->buf) + 1;
					return JL_TOOLONG;
				}
				r->end = 0;
			}
		}
		if ((n = fill(r)) < 0)
			return JL_ERR;
		if (n == 0) {
			if (r->end == r->start)
				return JL_EOF;
			nl = r->buf + r->end;	/* last line, no newline */
			if (r->end - r->start > r->max) {
				r->lineno++;
				r->start = r->end = 0;
				return JL_TOOLONG;
			}
			break;
		}
	}
	r->lineno++;
	*line = r->buf + r->start;
	*len = (size_t)(nl - (r->buf + r->start));
	r->start = nl < r->buf + r->end ? (size_t)(nl - r->buf) + 1 : r->end;
	if (*len > r->max) {
		*len = 0;
		return JL_TOOLONG;
	}
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return JL_LINE;
}

/* jl_reader_free - release the buffer (not the FILE) */
void
jl_reader_free(struct jl_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->start = r->end = 0;
}

/*
 * The parser.
 */
struct jl_p {
	struct jl_doc *d;
	const char *b;		/* input */
	size_t	len, o;		/* length and read offset */
	char	*err;
	size_t	errlen;
	int	failed;
};

/* perr - record the first error; returns -1 */
static int __attribute__((format(printf, 2, 3)))
perr(struct jl_p *p, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (p->failed++)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "column %zu: %s", p->o + 1, msg);
	return -1;
}

/* skip_ws - skip JSON whitespace */
static void
skip_ws(struct jl_p *p)
{
	while (p->o < p->len && (p->b[p->o] == ' ' || p->b[p->o] == '\t' ||
	    p->b[p->o] == '\n' || p->b[p->o] == '\r'))
		p->o++;
}

/* new_val - append a value; returns its index or -1 */
static long
new_val(struct jl_p *p, enum jl_type t)
{
	struct jl_doc *d = p->d;

	if (d->nv == d->cv) {
		size_t ncv = d->cv ? d->cv * 2 : 64;
		struct jl_val *nv;

		if (ncv > UINT32_MAX || (nv = realloc(d->v,
		    ncv * sizeof(*nv))) == NULL)
			return perr(p, "out of memory");
		d->v = nv;
		d->cv = ncv;
	}
	memset(&d->v[d->nv], 0, sizeof(d->v[0]));
	d->v[d->nv].type = t;
	return (long)d->nv++;
}

/* put_utf8 - append code point c to the string area */
static void
put_utf8(struct jl_doc *d, unsigned long c)
{
	char *o = d->str + d->ns;

	if (c < 0x80) {
		o[0] = (char)c;
		d->ns += 1;
	} else if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		d->ns += 2;
	} else if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		d->ns += 3;
	} else {
		o[0] = (char)(0xf0 | (c >> 18));
		o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[3] = (char)(0x80 | (c & 0x3f));
		d->ns += 4;
	}
}

/* hex4 - four hex digits at b[o]; -1 if not */
static long
hex4(const char *b, size_t len, size_t o)
{
	long v = 0;
	int i, c;

	if (o + 4 > len)
		return -1;
	for (i = 0; i < 4; i++) {
		c = (unsigned char)b[o + i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * parse_string - decode the string at p->o (on its quote) into the string
 * area; sets *off and *slen.  The area has room: a decoded string and its
 * NUL never exceed its source, quotes included.
 */
static int
parse_string(struct jl_p *p, uint32_t *off, uint32_t *slen)
{
	struct jl_doc *d = p->d;
	size_t begin = d->ns;
	unsigned char c;
	long u, lo;

	p->o++;				/* opening quote */
	for (;;) {
		if (p->o >= p->len)
			return perr(p, "unterminated string");
		c = (unsigned char)p->b[p->o];
		if (c == '"') {
			p->o++;
			break;
		}
		if (c < 0x20)
			return perr(p, "control character in string");
		if (c != '\\') {
			d->str[d->ns++] = (char)c;
			p->o++;
			continue;
		}
		if (p->o + 1 >= p->len)
			return perr(p, "unterminated string");
		c = (unsigned char)p->b[p->o + 1];
		p->o += 2;
		switch (c) {
		case '"': case '\\': case '/':
			d->str[d->ns++] = (char)c;
			break;
		case 'b': d->str[d->ns++] = '\b'; break;
		case 'f': d->str[d->ns++] = '\f'; break;
		case 'n': d->str[d->ns++] = '\n'; break;
		case 'r': d->str[d->ns++] = '\r'; break;
		case 't': d->str[d->ns++] = '\t'; break;
		case 'u':
			if ((u = hex4(p->b, p->len, p->o)) < 0)
				return perr(p, "bad \\u escape");
			p->o += 4;
			if (u >= 0xd800 && u <= 0xdbff && p->o + 6 <= p->len &&
			    p->b[p->o] == '\\' && p->b[p->o + 1] == 'u' &&
			    (lo = hex4(p->b, p->len, p->o + 2)) >= 0xdc00 &&
			    lo <= 0xdfff) {
				u = 0x10000 + ((u - 0xd800) << 10) +
				    (lo - 0xdc00);
				p->o += 6;
			} else if (u >= 0xd800 && u <= 0xdfff)
				u = 0xfffd;	/* lone surrogate */
			put_utf8(d, (unsigned long)u);
			break;
		default:
			p->o -= 1;
			return perr(p, "bad escape '\\%c'",
			    c >= 0x20 && c < 0x7f ? c : '?');
		}
	}
	d->str[d->ns++] = '\0';
	*off = (uint32_t)begin;
	*slen = (uint32_t)(d->ns - begin - 1);
	return 0;
}

/* parse_number - validate the JSON number grammar, then convert */
static int
parse_number(struct jl_p *p, double *out)
{
	size_t s = p->o;
	char tmp[JL_MAX_NUM + 1];

#define DIGIT(i) ((i) < p->len && p->b[i] >= '0' && p->b[i] <= '9')
	if (p->o < p->len && p->b[p->o] == '-')
		p->o++;
	if (!DIGIT(p->o))
		return perr(p, "bad number");
	if (p->b[p->o] == '0')
		p->o++;
	else
		while (DIGIT(p->o))
			p->o++;
	if (p->o < p->len && p->b[p->o] == '.') {
		p->o++;
		if (!DIGIT(p->o))
			return perr(p, "bad number");
		while (DIGIT(p->o))
			p->o++;
	}
	if (p->o < p->len && (p->b[p->o] == 'e' || p->b[p->o] == 'E')) {
		p->o++;
		if (p->o < p->len && (p->b[p->o] == '+' || p->b[p->o] == '-'))
			p->o++;
		if (!DIGIT(p->o))
			return perr(p, "bad number");
		while (DIGIT(p->o))
			p->o++;
	}
#undef DIGIT
	if (p->o - s > JL_MAX_NUM)
		return perr(p, "number too long");
	memcpy(tmp, p->b + s, p->o - s);
	tmp[p->o - s] = '\0';
	*out = strtod(tmp, NULL);
	return 0;
}

/* literal - match a keyword */
static int
literal(struct jl_p *p, const char *w)
{
	size_t n = strlen(w);

	if (p->len - p->o < n || memcmp(p->b + p->o, w, n) != 0)
		return perr(p, "unexpected character");
	p->o += n;
	return 0;
}

static long parse_value(struct jl_p *, int depth);

/* parse_members - the members of an array or object after its bracket */
static int
parse_members(struct jl_p *p, long self, int obj, int depth)
{
	uint32_t key = 0, klen = 0;
	long prev = 0, v;
	char close = obj ? '}' : ']';

	skip_ws(p);
	if (p->o < p->len && p->b[p->o] == close) {
		p->o++;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		if (obj) {
			if (p->o >= p->len || p->b[p->o] != '"')
				return perr(p, p->o >= p->len ?
				    "unexpected end of line" : "expected a key");
			if (parse_string(p, &key, &klen) < 0)
				return -1;
			skip_ws(p);
			if (p->o >= p->len || p->b[p->o] != ':')
				return perr(p, "expected ':'");
			p->o++;
		}
		if ((v = parse_value(p, depth + 1)) < 0)
			return -1;
		p->d->v[v].key = key;
		p->d->v[v].klen = klen;
		if (prev == 0)
			p->d->v[self].child = (uint32_t)v;
		else
			p->d->v[prev].next = (uint32_t)v;
		prev = v;
		skip_ws(p);
		if (p->o >= p->len)
			return perr(p, "unexpected end of line");
		if (p->b[p->o] == ',') {
			p->o++;
			continue;
		}
		if (p->b[p->o] == close) {
			p->o++;
			return 0;
		}
		return perr(p, obj ? "expected ',' or '}'" :
		    "expected ',' or ']'");
	}
}

/* parse_value - one value at p->o; returns its index or -1 */
static long
parse_value(struct jl_p *p, int depth)
{
	long v;
	int c;

	skip_ws(p);
	if (p->o >= p->len)
		return perr(p, "unexpected end of line");
	c = (unsigned char)p->b[p->o];
	switch (c) {
	case '{':
	case '[':
		if (depth >= JL_MAX_DEPTH)
			return perr(p, "nested too deep");
		if ((v = new_val(p, c == '{' ? JL_OBJ : JL_ARR)) < 0)
			return -1;
		p->o++;
		if (parse_members(p, v, c == '{', depth) < 0)
			return -1;
		return v;
	case '"':
		if ((v = new_val(p, JL_STR)) < 0)
			return -1;
		if (parse_string(p, &p->d->v[v].s, &p->d->v[v].slen) < 0)
			return -1;
		return v;
	case 't':
		if (literal(p, "true") < 0)
			return -1;
		return new_val(p, JL_TRUE);
	case 'f':
		if (literal(p, "false") < 0)
			return -1;
		return new_val(p, JL_FALSE);
	case 'n':
		if (literal(p, "null") < 0)
			return -1;
		return new_val(p, JL_NULL);
	default:
		if (c == '-' || (c >= '0' && c <= '9')) {
			double num = 0;

			if (parse_number(p, &num) < 0 ||
			    (v = new_val(p, JL_NUM)) < 0)
				return -1;
			p->d->v[v].num = num;
			return v;
		}
		return perr(p, "unexpected character");
	}
}

/* jl_doc_init - an empty document */
void
jl_doc_init(struct jl_doc *d)
{
	memset(d, 0, sizeof(*d));
}

/* jl_parse - parse one JSON value filling the whole of buf; 0 or -1 */
int
jl_parse(struct jl_doc *d, const char *buf, size_t len, char *err,
    size_t errlen)
{
	struct jl_p p;

	memset(&p, 0, sizeof(p));
	p.d = d;
	p.b = buf;
	p.len = len;
	p.err = err;
	p.errlen = errlen;
	d->nv = 0;
	d->ns = 0;
	if (len >= UINT32_MAX)
		return perr(&p, "line too long");
	if (d->cs < len + 1) {
		char *ns = realloc(d->str, len + 1);

		if (ns == NULL)
			return perr(&p, "out of memory");
		d->str = ns;
		d->cs = len + 1;
	}
	skip_ws(&p);
	if (p.o >= len)
		return perr(&p, "empty line");
	if (parse_value(&p, 0) < 0) {
		d->nv = 0;
		return -1;
	}
	skip_ws(&p);
	if (p.o < len) {
		d->nv = 0;
		return perr(&p, "garbage after the value");
	}
	return 0;
}

/* jl_doc_free - release the document's arrays */
void
jl_doc_free(struct jl_doc *d)
{
	free(d->v);
	d->v = NULL;
	free(d->str);
	d->str = NULL;
	d->nv = d->cv = d->ns = d->cs = 0;
}

/* jl_root - the parsed value, or NULL */
const struct jl_val *
jl_root(const struct jl_doc *d)
{
	return d->nv ? &d->v[0] : NULL;
}

/* jl_first - first member of an array/object, or NULL */
const struct jl_val *
jl_first(const struct jl_doc *d, const struct jl_val *v)
{
	if (v == NULL || (v->type != JL_ARR && v->type != JL_OBJ) ||
	    v->child == 0)
		return NULL;
	return &d->v[v->child];
}

/* jl_next - next member after v, or NULL */
const struct jl_val *
jl_next(const struct jl_doc *d, const struct jl_val *v)
{
	if (v == NULL || v->next == 0)
		return NULL;
	return &d->v[v->next];
}

/* jl_get - the first member of obj named key, or NULL */
const struct jl_val *
jl_get(const struct jl_doc *d, const struct jl_val *obj, const char *key)
{
	const struct jl_val *m;
	size_t n = strlen(key);

	if (obj == NULL || obj->type != JL_OBJ)
		return NULL;
	for (m = jl_first(d, obj); m != NULL; m = jl_next(d, m))
		if (m->klen == n && memcmp(d->str + m->key, key, n) == 0)
			return m;
	return NULL;
}

/* jl_str - the string value of v, or NULL when v is not a string */
const char *
jl_str(const struct jl_doc *d, const struct jl_val *v)
{
	if (v == NULL || v->type != JL_STR)
		return NULL;
	return d->str + v->s;
}

/* jl_key - the member name of v ("" for array members) */
const char *
jl_key(const struct jl_doc *d, const struct jl_val *v)
{
	if (v->klen == 0)
		return "";
	return d->str + v->key;
}

/* jl_get_str - obj[key] when it is a string, else NULL */
const char *
jl_get_str(const struct jl_doc *d, const struct jl_val *obj, const char *key)
{
	return jl_str(d, jl_get(d, obj, key));
}
