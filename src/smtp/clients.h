/*
 * clients.h - live sessions per client (IPv4 address or IPv6 /64)
 *
 * client_find: the entry of sa's client, created when create is set
 * (NULL: none, or out of memory).  The caller counts in total and
 * by_class[] when it admits a session; client_release undoes one session
 * (class_idx -1: none counted in a class) and frees an entry whose total
 * reaches 0; client_reclass moves one session between class counts.
 */
#ifndef MS_CLIENTS_H
#define MS_CLIENTS_H

#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"

struct client {
	struct client *next;
	uint8_t	key[17];
	int	total;
	int	by_class[CONF_MAX_CLASSES];
};

struct client *client_find(const struct sockaddr *, int create);
void	client_release(const struct sockaddr *, int class_idx);
void	client_reclass(const struct sockaddr *, int before, int after);

#endif
