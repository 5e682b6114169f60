/*
 * canon.h - DATA and BDAT canonicaliser
 *
 * Turns what a client sends after DATA (or inside BDAT chunks) into what the
 * backend receives: CRLF line ends and correct dot-stuffing.  Data ends only
 * on CRLF "." CRLF; every other "." line is data.  See
 * doc/internals/canon.md for the full set of rules and the smuggling cases.
 */
#ifndef MS_CANON_H
#define MS_CANON_H

#include <stddef.h>

struct evbuffer;

#define CANON_BARE_LF	0x01	/* LF without CR seen */
#define CANON_BARE_CR	0x02	/* CR without LF seen */
#define CANON_NUL	0x04	/* NUL byte seen */

struct canon {
	unsigned char state;	/* CANON_S_* (private) */
	unsigned char crlf_before; /* current line began after a real CRLF */
	unsigned char raw;	/* BDAT: no end marker, stuff every dot */
	unsigned char bad;	/* CANON_* flags seen so far */
	size_t	size;		/* bytes of message content written */
};

void	canon_init(struct canon *, int raw, int crlf_before);
int	canon_feed(struct canon *, const char *in, size_t len,
	    struct evbuffer *out, size_t *used);
void	canon_finish(struct canon *, struct evbuffer *out);
const char *canon_bad_text(int bad);

#endif
