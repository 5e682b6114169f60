/*
 * json.h - minimal JSON object writer into an evbuffer
 */
#ifndef MS_JSON_H
#define MS_JSON_H

#include <stddef.h>
#include <sys/time.h>

struct evbuffer;

struct jw {
	struct evbuffer *b;
	int	n;		/* members written in the current object */
};

void	jw_begin(struct jw *, struct evbuffer *);
void	jw_end(struct jw *);
void	jw_str(struct jw *, const char *key, const char *val);	/* NULL: null */
void	jw_int(struct jw *, const char *key, long long val);
void	jw_num(struct jw *, const char *key, double val);
void	jw_bool(struct jw *, const char *key, int val);
void	jw_null(struct jw *, const char *key);
void	jw_raw(struct jw *, const char *key, const char *json);
void	jw_time(struct jw *, const char *key, const struct timeval *);
void	jw_strlist(struct jw *, const char *key, const char *const *v, int n);
void	json_escape(struct evbuffer *, const char *s);
void	rfc3339(const struct timeval *, char *buf, size_t len);

#endif
