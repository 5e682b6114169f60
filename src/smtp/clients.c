/*
 * clients.c - live sessions per client, for the per-client caps
 *
 * Exports client_find(), client_release() and client_reclass().  A client
 * is an IPv4 address or an IPv6 /64; its entry lives while it has a
 * counted session.  Owned by the event loop.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/clients.h"
#include "util/addr.h"

#define CLIENT_BUCKETS	4096
static struct client *clients[CLIENT_BUCKETS];

/* client_find - the per-client entry for sa, created when create is set */
struct client *
client_find(const struct sockaddr *sa, int create)
{
	uint8_t	key[17];
	uint32_t h = 2166136261u;
	struct client *c;
	int	i;

	addr_key(sa, 32, 64, key);
	for (i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	h %= CLIENT_BUCKETS;
	for (c = clients[h]; c; c = c->next)
		if (memcmp(c->key, key, 17) == 0)
			return c;
	if (!create || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	memcpy(c->key, key, 17);
	c->next = clients[h];
	clients[h] = c;
	return c;
}

/* client_release - one session of this client ended */
void
client_release(const struct sockaddr *sa, int class_idx)
{
	struct client *c = client_find(sa, 0), **pp;
	uint32_t h = 2166136261u;
	int	i;

	if (c == NULL)
		return;
	c->total--;
	if (class_idx >= 0)
		c->by_class[class_idx]--;
	if (c->total > 0)
		return;
	for (i = 0; i < 17; i++)
		h = (h ^ c->key[i]) * 16777619u;
	for (pp = &clients[h % CLIENT_BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
}

/* client_reclass - a counted session of sa moved from class before to after */
void
client_reclass(const struct sockaddr *sa, int before, int after)
{
	struct client *c = client_find(sa, 0);

	if (c == NULL)
		return;
	if (before >= 0)
		c->by_class[before]--;
	if (after >= 0)
		c->by_class[after]++;
}
