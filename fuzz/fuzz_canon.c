/*
 * fuzz_canon.c - libFuzzer target for src/smtp/canon.c
 *
 * The first input byte picks the mode (bit 0: raw/BDAT, bit 1: crlf_before)
 * and the split point; the rest is fed to canon_feed() in two calls split
 * there, and again one byte at a time, and the two outputs must be equal.
 * Invariants on the backend bytes, which must hold for any client input:
 *   - every LF is preceded by CR and every CR is followed by LF; no NUL;
 *   - before the final ".\r\n" (end of data, or canon_finish() in raw
 *     mode) no line consists of "." alone, so the backend can never see an
 *     early end of data;
 *   - in DATA mode the data ends only where the input had CRLF "." CRLF
 *     after a line that ended in CRLF.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/canon.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* run - feed data in pieces of at most step bytes (0 = split at cut) */
static int
run(int raw, int crlf_before, const uint8_t *data, size_t len, size_t cut,
    size_t step, struct evbuffer *out, size_t *consumed, int *bad)
{
	struct canon c;
	size_t	off = 0, used;
	int	ended = 0;

	canon_init(&c, raw, crlf_before);
	while (off < len && !ended) {
		size_t	n = step ? step : (off < cut ? cut - off : len - off);

		if (n > len - off)
			n = len - off;
		ended = canon_feed(&c, (const char *)data + off, n, out, &used);
		if (used > n)
			abort();
		if (!ended && used != n)
			abort();
		off += used;
	}
	if (raw) {
		if (ended)
			abort();	/* raw mode has no end marker */
		canon_finish(&c, out);
	}
	*consumed = off;
	*bad = c.bad;
	return ended;
}

/* check - the invariants on the backend bytes */
static void
check(const uint8_t *o, size_t n, int final_dot)
{
	size_t	i, body = n;

	for (i = 0; i < n; i++) {
		if (o[i] == 0)
			abort();
		if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r'))
			abort();
		if (o[i] == '\r' && (i + 1 == n || o[i + 1] != '\n'))
			abort();
	}
	if (final_dot) {
		if (n < 3 || memcmp(o + n - 3, ".\r\n", 3) != 0)
			abort();
		if (n > 3 && (n < 5 || memcmp(o + n - 5, "\r\n", 2) != 0))
			abort();	/* the marker starts a line */
		body = n - 3;
	}
	/* No line "." on its own before the end marker. */
	for (i = 0; i + 3 <= body; i++)
		if ((i == 0 || o[i - 1] == '\n') && memcmp(o + i, ".\r\n", 3) == 0)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *a, *b;
	size_t	ua, ub, cut;
	int	raw, crlf, ea, eb, bada, badb;

	if (size < 1)
		return 0;
	raw = data[0] & 1;
	crlf = (data[0] >> 1) & 1;
	data++, size--;
	cut = size ? (size_t)data[size / 2] % (size + 1) : 0;
	a = evbuffer_new();
	b = evbuffer_new();
	ea = run(raw, crlf, data, size, cut, 0, a, &ua, &bada);
	eb = run(raw, crlf, data, size, cut, 1, b, &ub, &badb);
	if (ea != eb || ua != ub || bada != badb ||
	    evbuffer_get_length(a) != evbuffer_get_length(b) ||
	    (evbuffer_get_length(a) > 0 && memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1),
	    evbuffer_get_length(a)) != 0))
		abort();
	if (evbuffer_get_length(a) > 0)
		check(evbuffer_pullup(a, -1), evbuffer_get_length(a), raw || ea);
	else if (raw || ea)
		abort();	/* the end marker is always written */
	if (ea && !raw) {
		/* The input ended with CR LF "." CR LF (or began ".\r\n"). */
		if (ua < 3 || memcmp(data + ua - 3, ".\r\n", 3) != 0)
			abort();
		if (ua == 3 ? !crlf : (ua < 5 ||
		    memcmp(data + ua - 5, "\r\n", 2) != 0))
			abort();
	}
	evbuffer_free(a);
	evbuffer_free(b);
	return 0;
}
