/*
 * strmap.c - a chained hash map from byte strings to two counters and a
 * pointer
 *
 * Keys are any bytes (NULs included) with a length; an entry keeps a copy
 * followed by a NUL, so a key without NULs can be read as a C string.
 * Hashing is 64-bit FNV-1a; the bucket count is a power of two, starts at
 * STRMAP_MIN_BUCKETS and doubles when the entries reach it.
 *
 * Exports strmap_find(); strmap_insert(), which finds or creates a zeroed
 * entry and returns 1 when it created one, 0 when it found one and -1 (with
 * *ep NULL and the map unchanged) when out of memory; strmap_del();
 * strmap_next(), iteration in bucket order (start with NULL); and
 * strmap_free().
 *
 * Memory: a zeroed struct strmap is an empty map.  The map owns its table
 * and its entries; the owner of the map owns what the entries' p point to,
 * and the a, b and p fields mean what the owner says.  strmap_free() frees
 * every entry and the table, and each p only when given a function to.
 * It is an error to change an entry's key, klen, h or next; to use an entry
 * after strmap_del() or strmap_free(); to insert or delete while iterating
 * with strmap_next(); or to pass strmap_del() an entry of another map.
 */
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"

/* strmap_hash - 64-bit FNV-1a */
static uint64_t
strmap_hash(const void *k, size_t n)
{
	const unsigned char *p = k;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* strmap_grow - double the buckets; -1 when out of memory */
static int
strmap_grow(struct strmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : STRMAP_MIN_BUCKETS, i;
	struct strmap_ent **t = calloc(nb, sizeof(*t)), *e, *next;

	if (t == NULL)
		return -1;
	for (i = 0; i < m->nb; i++)
		for (e = m->tab[i]; e != NULL; e = next) {
			next = e->next;
			e->next = t[e->h & (nb - 1)];
			t[e->h & (nb - 1)] = e;
		}
	free(m->tab);
	m->tab = t;
	m->nb = nb;
	return 0;
}

/* strmap_lookup - the entry for a key of hash h, or NULL */
static struct strmap_ent *
strmap_lookup(const struct strmap *m, uint64_t h, const void *key,
    size_t klen)
{
	struct strmap_ent *e;

	if (m->nb == 0)
		return NULL;
	for (e = m->tab[h & (m->nb - 1)]; e != NULL; e = e->next)
		if (e->h == h && e->klen == klen &&
		    memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

/* strmap_find - the entry for key, or NULL when there is none */
struct strmap_ent *
strmap_find(const struct strmap *m, const void *key, size_t klen)
{
	return strmap_lookup(m, strmap_hash(key, klen), key, klen);
}

/* strmap_insert - *ep = key's entry, made zeroed: 1 made, 0 found, -1 OOM */
int
strmap_insert(struct strmap *m, const void *key, size_t klen,
    struct strmap_ent **ep)
{
	uint64_t h = strmap_hash(key, klen);
	struct strmap_ent *e;

	if ((*ep = strmap_lookup(m, h, key, klen)) != NULL)
		return 0;
	if (klen > UINT32_MAX ||
	    (m->n >= m->nb && strmap_grow(m) < 0) ||
	    (e = calloc(1, sizeof(*e) + klen + 1)) == NULL)
		return -1;
	e->h = h;
	e->klen = (uint32_t)klen;
	memcpy(e->key, key, klen);
	e->next = m->tab[h & (m->nb - 1)];
	m->tab[h & (m->nb - 1)] = e;
	m->n++;
	*ep = e;
	return 1;
}

/* strmap_del - unlink and free one entry (not its p) */
void
strmap_del(struct strmap *m, struct strmap_ent *e)
{
	struct strmap_ent **pp = &m->tab[e->h & (m->nb - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	free(e);
	m->n--;
}

/* strmap_next - the entry after e (NULL: the first); NULL at the end */
struct strmap_ent *
strmap_next(const struct strmap *m, const struct strmap_ent *e)
{
	size_t i = 0;

	if (e != NULL) {
		if (e->next != NULL)
			return e->next;
		i = (size_t)(e->h & (m->nb - 1)) + 1;
	}
	for (; i < m->nb; i++)
		if (m->tab[i] != NULL)
			return m->tab[i];
	return NULL;
}

/* strmap_free - free the entries (p too, by pfree if set); leave it empty */
void
strmap_free(struct strmap *m, void (*pfree)(void *))
{
	struct strmap_ent *e, *next;
	size_t i;

	for (i = 0; i < m->nb; i++)
		for (e = m->tab[i]; e != NULL; e = next) {
			next = e->next;
			if (pfree != NULL)
				pfree(e->p);
			free(e);
		}
	free(m->tab);
	memset(m, 0, sizeof(*m));
}
