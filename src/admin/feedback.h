/*
 * feedback.h - spam/ham verdicts from downstream filters
 */
#ifndef MS_FEEDBACK_H
#define MS_FEEDBACK_H

#include <stddef.h>

struct evr_session;
struct event_base;
struct conf;
struct evhttp_request;

int	fb_open(struct event_base *, const struct conf *, char *err,
	    size_t errlen);
void	fb_close(void);
void	fb_remember(const struct evr_session *);
void	fb_http_feedback(struct evhttp_request *, void *);
int	fb_cli_main(int argc, char **argv);

#endif
