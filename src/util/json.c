/*
 * json.c - write JSON objects member by member into an evbuffer
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are
 * written as \u00XX of the byte, so a client's garbage never makes the event
 * log unparseable.  The writer never allocates beyond the evbuffer.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "util/json.h"

/* jw_begin - open an object */
void
jw_begin(struct jw *w, struct evbuffer *b)
{
	w->b = b;
	w->n = 0;
	evbuffer_add(b, "{", 1);
}

/* jw_end - close the object */
void
jw_end(struct jw *w)
{
	evbuffer_add(w->b, "}", 1);
}

/* jw_key - separator and "key": */
static void
jw_key(struct jw *w, const char *key)
{
	if (w->n++)
		evbuffer_add(w->b, ",", 1);
	json_escape(w->b, key);
	evbuffer_add(w->b, ":", 1);
}

/* utf8_len - length of a valid UTF-8 sequence at s, or 0 */
static int
utf8_len(const unsigned char *s)
{
	int	n, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		n = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* json_escape - a quoted, escaped JSON string */
void
json_escape(struct evbuffer *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	char	esc[8];
	int	n;

	evbuffer_add(b, "\"", 1);
	while (*s) {
		const unsigned char *run = s;

		while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
			s++;
		if (s > run)
			evbuffer_add(b, run, s - run);
		if (*s == 0)
			break;
		if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*s++;
			evbuffer_add(b, esc, 2);
		} else if (*s >= 0x80 && (n = utf8_len(s)) > 0) {
			evbuffer_add(b, s, n);
			s += n;
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", *s++);
			evbuffer_add(b, esc, 6);
		}
	}
	evbuffer_add(b, "\"", 1);
}

/* jw_str - string member, or null */
void
jw_str(struct jw *w, const char *key, const char *val)
{
	jw_key(w, key);
	if (val == NULL)
		evbuffer_add(w->b, "null", 4);
	else
		json_escape(w->b, val);
}

/* jw_int - integer member */
void
jw_int(struct jw *w, const char *key, long long val)
{
	jw_key(w, key);
	evbuffer_add_printf(w->b, "%lld", val);
}

/* jw_num - number member, 3 decimals */
void
jw_num(struct jw *w, const char *key, double val)
{
	jw_key(w, key);
	evbuffer_add_printf(w->b, "%.3f", val);
}

/* jw_bool - boolean member */
void
jw_bool(struct jw *w, const char *key, int val)
{
	jw_key(w, key);
	evbuffer_add_printf(w->b, "%s", val ? "true" : "false");
}

/* jw_null - null member */
void
jw_null(struct jw *w, const char *key)
{
	jw_key(w, key);
	evbuffer_add(w->b, "null", 4);
}

/* jw_raw - member whose value is already JSON */
void
jw_raw(struct jw *w, const char *key, const char *json)
{
	jw_key(w, key);
	evbuffer_add(w->b, json, strlen(json));
}

/* rfc3339 - UTC time with milliseconds: 2026-11-27T20:34:49.123Z */
void
rfc3339(const struct timeval *tv, char *buf, size_t len)
{
	struct tm tm;
	char	tmp[32];

	gmtime_r(&tv->tv_sec, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%03dZ", tmp, (int)(tv->tv_usec / 1000) % 1000);
}

/* jw_time - RFC 3339 member */
void
jw_time(struct jw *w, const char *key, const struct timeval *tv)
{
	char	buf[40];

	rfc3339(tv, buf, sizeof(buf));
	jw_str(w, key, buf);
}

/* jw_strlist - array of strings */
void
jw_strlist(struct jw *w, const char *key, const char *const *v, int n)
{
	int	i;

	jw_key(w, key);
	evbuffer_add(w->b, "[", 1);
	for (i = 0; i < n; i++) {
		if (i)
			evbuffer_add(w->b, ",", 1);
		json_escape(w->b, v[i]);
	}
	evbuffer_add(w->b, "]", 1);
}
