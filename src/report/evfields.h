/*
 * evfields.h - fields of event-log records that report and evaluate read
 *		the same way
 */
#ifndef MS_EVFIELDS_H
#define MS_EVFIELDS_H

#include <stddef.h>

struct jl_doc;
struct jl_val;

#define EVF_MAX_ZONES	32	/* DNS list zones read per session */

int	evf_dnsbl_zones(const struct jl_doc *, const struct jl_val *dnsbl,
	    char *out, size_t len);

#endif
