/*
 * canon.c - DATA/BDAT canonicaliser: CRLF line ends, dot-stuffing, and
 *	     the only end of data being CRLF "." CRLF
 *
 * Exports canon_init(), canon_feed(), canon_finish(), canon_bad_text().
 *
 * canon_feed() consumes client bytes and appends backend bytes to `out`
 * (NULL to parse and discard, after the message was refused).  It keeps at
 * most two undecided bytes of state ("." and CR at the start of a line), so
 * its memory does not grow with line length.  Rules (normalize policy; the
 * reject policy parses the same way and lets the caller refuse the message
 * when `bad` is set):
 *   - CR LF ends a line; a bare LF also ends a line;
 *   - a bare CR or a NUL becomes a space;
 *   - a line "." ends the data only when the line before it ended with a
 *     real CRLF and it ends with CRLF itself; otherwise it is data and is
 *     sent dot-stuffed ("..");
 *   - other lines that start with "." are passed as they are: the backend
 *     removes the same leading dot the client meant.
 * In raw (BDAT) mode there is no end marker and every leading dot is
 * stuffed, because BDAT content is not dot-stuffed by the client.
 */
#include <string.h>

#include <event2/buffer.h>

#include "smtp/canon.h"

enum {
	CANON_S_BOL,		/* at the start of a line */
	CANON_S_MID,		/* inside a line */
	CANON_S_CR,		/* inside a line, CR pending */
	CANON_S_DOT,		/* "." at the start of a line */
	CANON_S_DOTCR,		/* "." CR at the start of a line */
};

/* canon_init - start a message; crlf_before: DATA line ended in CRLF */
void
canon_init(struct canon *c, int raw, int crlf_before)
{
	memset(c, 0, sizeof(*c));
	c->state = CANON_S_BOL;
	c->raw = raw != 0;
	c->crlf_before = crlf_before != 0;
}

/* canon_put - append to out (if any) and count */
static void
canon_put(struct canon *c, struct evbuffer *out, const char *p, size_t n)
{
	if (out != NULL)
		evbuffer_add(out, p, n);
	c->size += n;
}

/* canon_eol - end the current line with CRLF; real says it was CRLF */
static void
canon_eol(struct canon *c, struct evbuffer *out, int real)
{
	canon_put(c, out, "\r\n", 2);
	c->crlf_before = real;
	c->state = CANON_S_BOL;
	if (!real)
		c->bad |= CANON_BARE_LF;
}

/* canon_feed - consume in; 1 = end of data reached (*used stops there) */
int
canon_feed(struct canon *c, const char *in, size_t len, struct evbuffer *out,
    size_t *used)
{
	size_t	i = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)in[i];

		switch (c->state) {
		case CANON_S_BOL:
			if (ch == '.') {
				i++;
				if (c->raw) {
					canon_put(c, out, "..", 2);
					c->state = CANON_S_MID;
				} else
					c->state = CANON_S_DOT;
				continue;
			}
			c->state = CANON_S_MID;
			/* FALLTHROUGH */
		case CANON_S_MID: {
			/* Copy the run of ordinary bytes in one go. */
			size_t	j = i;

			while (j < len && in[j] != '\r' && in[j] != '\n' &&
			    in[j] != 0)
				j++;
			if (j > i)
				canon_put(c, out, in + i, j - i);
			i = j;
			if (i == len)
				break;
			ch = (unsigned char)in[i++];
			if (ch == '\r')
				c->state = CANON_S_CR;
			else if (ch == '\n')
				canon_eol(c, out, 0);
			else {
				c->bad |= CANON_NUL;
				canon_put(c, out, " ", 1);
			}
			break;
		}
		case CANON_S_CR:
			if (ch == '\n') {
				i++;
				canon_eol(c, out, 1);
			} else {
				/* Bare CR: a space; ch is looked at again. */
				c->bad |= CANON_BARE_CR;
				canon_put(c, out, " ", 1);
				c->state = CANON_S_MID;
			}
			break;
		case CANON_S_DOT:
			if (ch == '\r') {
				i++;
				c->state = CANON_S_DOTCR;
			} else if (ch == '\n') {
				/* "." ended by a bare LF: data. */
				i++;
				canon_put(c, out, "..", 2);
				canon_eol(c, out, 0);
			} else {
				canon_put(c, out, ".", 1);
				c->state = CANON_S_MID;
			}
			break;
		case CANON_S_DOTCR:
			if (ch == '\n') {
				i++;
				if (c->crlf_before) {
					if (out != NULL)
						evbuffer_add(out, ".\r\n", 3);
					*used = i;
					return 1;
				}
				/* Not preceded by CRLF: data, stuffed. */
				canon_put(c, out, "..", 2);
				canon_eol(c, out, 1);
			} else {
				c->bad |= CANON_BARE_CR;
				canon_put(c, out, ". ", 2);
				c->state = CANON_S_MID;
			}
			break;
		}
	}
	*used = i;
	return 0;
}

/* canon_finish - end of the last BDAT chunk: close the line, add "." */
void
canon_finish(struct canon *c, struct evbuffer *out)
{
	switch (c->state) {
	case CANON_S_BOL:
		break;
	case CANON_S_CR:
		c->bad |= CANON_BARE_CR;
		canon_put(c, out, " \r\n", 3);
		break;
	default:
		canon_put(c, out, "\r\n", 2);
		break;
	}
	c->state = CANON_S_BOL;
	if (out != NULL)
		evbuffer_add(out, ".\r\n", 3);
}

/* canon_bad_text - words for the bad flags, for logs and replies */
const char *
canon_bad_text(int bad)
{
	if (bad & CANON_NUL)
		return "NUL byte";
	if (bad & CANON_BARE_CR)
		return "bare CR";
	if (bad & CANON_BARE_LF)
		return "bare LF";
	return "none";
}
