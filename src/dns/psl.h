/*
 * psl.h - the Public Suffix List: organisational (registrable) domains
 *
 * psl_org_domain() reduces a host name to its registrable domain, the
 * public suffix plus one label, as https://publicsuffix.org/list/ defines
 * it: mail-sor-f41.google.com -> google.com, a.b.example.co.uk ->
 * example.co.uk.  The list is loaded once from a file (Debian's
 * publicsuffix package by default); without it every name reduces to its
 * last two labels.  See doc/internals/fcrdns.md.
 */
#ifndef MS_PSL_H
#define MS_PSL_H

#include <stddef.h>

#define PSL_DEFAULT_PATH	"/usr/share/publicsuffix/public_suffix_list.dat"
#define PSL_NAME_MAX		253	/* bytes of a name, no trailing dot */

int	psl_load(const char *path, char *err, size_t errlen);
int	psl_load_mem(const char *text, size_t len, char *err, size_t errlen);
const char *psl_org_domain(const char *host, char *buf, size_t len);
size_t	psl_rules(void);
void	psl_free(void);

#endif
