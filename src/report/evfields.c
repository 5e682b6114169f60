/*
 * evfields.c - event-log fields shared by `report` and `evaluate`
 *
 * Exports evf_dnsbl_zones().  Functions read a parsed record (jsonl.h) and
 * write into the caller's buffer; they never allocate.
 */
#include <stdlib.h>
#include <string.h>

#include "report/evfields.h"
#include "util/jsonl.h"

/* zone_cmp - qsort order for zone names */
static int
zone_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * evf_dnsbl_zones - a session's "dnsbl" object as its listing zones,
 * sorted, unique and comma-separated ("" when no list listed it); -1 when
 * no list was asked (null or not an object).  Zones that do not fit in
 * len are left out.
 */
int
evf_dnsbl_zones(const struct jl_doc *d, const struct jl_val *dn, char *out,
    size_t len)
{
	const char *z[EVF_MAX_ZONES];
	const struct jl_val *h;
	size_t	o = 0, n;
	int	nz = 0, i;

	if (len > 0)
		out[0] = '\0';
	if (dn == NULL || dn->type != JL_OBJ)
		return -1;
	for (h = jl_first(d, jl_get(d, dn, "hits")); h != NULL &&
	    nz < EVF_MAX_ZONES; h = jl_next(d, h))
		if ((z[nz] = jl_get_str(d, h, "zone")) != NULL)
			nz++;
	qsort(z, (size_t)nz, sizeof(z[0]), zone_cmp);
	for (i = 0; i < nz; i++) {
		if (i > 0 && strcmp(z[i], z[i - 1]) == 0)
			continue;
		n = strlen(z[i]);
		if (o + n + 2 > len)
			break;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, z[i], n);
		o += n;
		out[o] = '\0';
	}
	return 0;
}
