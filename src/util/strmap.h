/*
 * strmap.h - a chained hash map from byte strings to two counters and a
 * pointer
 */
#ifndef MS_STRMAP_H
#define MS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#define STRMAP_MIN_BUCKETS	256	/* buckets at the first insert */

struct strmap_ent {
	struct strmap_ent *next;	/* bucket chain (the map's) */
	uint64_t h;		/* FNV-1a of the key (the map's) */
	uint64_t a, b;		/* owner-defined counters (0 when created) */
	void	*p;		/* owner-defined (NULL when created) */
	uint32_t klen;		/* key length in bytes */
	char	key[];		/* klen bytes and a NUL */
};

struct strmap {
	struct strmap_ent **tab;
	size_t	nb;		/* buckets, a power of two (0 = none yet) */
	size_t	n;		/* entries */
};

struct strmap_ent *strmap_find(const struct strmap *, const void *key,
	    size_t klen);
int	strmap_insert(struct strmap *, const void *key, size_t klen,
	    struct strmap_ent **);
void	strmap_del(struct strmap *, struct strmap_ent *);
struct strmap_ent *strmap_next(const struct strmap *,
	    const struct strmap_ent *);
void	strmap_free(struct strmap *, void (*pfree)(void *));

#endif
