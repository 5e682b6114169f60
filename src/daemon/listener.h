/*
 * listener.h - SMTP listening sockets with TCP_SAVE_SYN
 */
#ifndef MS_LISTENER_H
#define MS_LISTENER_H

#include <stddef.h>

#include "conf/conf.h"

int	lst_open(const struct conf *, char *err, size_t errlen);
void	lst_close(void);

#endif
