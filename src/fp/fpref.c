/*
 * fpref.c - shared, refcounted copies of fingerprint results
 *
 * Exports fp_intern() and fp_release().  Owned by one thread (the
 * daemon's event loop).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp/fp.h"

/*
 * Fingerprints repeat: sessions share one refcounted copy per raw
 * signature and hop distance, so a held session costs a pointer, not a
 * 500-byte result.
 */
struct fp_ref {
	struct fp_ref *next;
	unsigned refs;
	uint32_t hash;
	struct fp_result r;
};

#define FP_BUCKETS	1024
static struct fp_ref *fp_table[FP_BUCKETS];

/* fp_ref_of - the entry that holds r */
static struct fp_ref *
fp_ref_of(const struct fp_result *r)
{
	return (struct fp_ref *)((uintptr_t)r - offsetof(struct fp_ref, r));
}

/* fp_intern - a shared copy of r */
const struct fp_result *
fp_intern(const struct fp_result *r)
{
	uint32_t h = 2166136261u;
	const char *p;
	struct fp_ref *e;

	for (p = r->raw_sig; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (e = fp_table[h % FP_BUCKETS]; e; e = e->next)
		if (e->hash == h && strcmp(e->r.raw_sig, r->raw_sig) == 0 &&
		    strcmp(e->r.os, r->os) == 0) {
			e->refs++;
			return &e->r;
		}
	if ((e = malloc(sizeof(*e))) == NULL)
		return NULL;
	e->refs = 1;
	e->hash = h;
	e->r = *r;
	e->next = fp_table[h % FP_BUCKETS];
	fp_table[h % FP_BUCKETS] = e;
	return &e->r;
}

/* fp_release - drop a session's reference */
void
fp_release(const struct fp_result *r)
{
	struct fp_ref *e, **pp;

	if (r == NULL)
		return;
	e = fp_ref_of(r);
	if (--e->refs > 0)
		return;
	for (pp = &fp_table[e->hash % FP_BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	free(e);
}
