/*
 * tlsgen.h - a throw-away self-signed certificate for the simulation
 *
 * The swarm gives the daemon under test (tls_cert_file, tls_key_file) a
 * certificate so that its STARTTLS can be exercised; nobody verifies it.
 */
#ifndef MS_SWARM_TLSGEN_H
#define MS_SWARM_TLSGEN_H

#include <stddef.h>

#define TLSGEN_CN_MAX	64	/* X.509 ub-common-name, bytes */
#define TLSGEN_DAYS	1	/* validity from now, days */

int	tlsgen_selfsigned(const char *cert_path, const char *key_path,
	    const char *cn, char *err, size_t errlen);

#endif
