/*
 * fuzz_psl.c - libFuzzer target for src/dns/psl.c
 *
 * The first input byte picks the mode.  Bit 0 clear: the rest is a host
 * name, looked up against a small fixed list with every rule kind.  Bit 0
 * set: the rest is a list file given to psl_load_mem(), then a few fixed
 * names and the list's own lines are looked up against it.  Invariants:
 *   - a non-NULL answer is the caller's buffer, NUL-terminated, no longer
 *     than PSL_NAME_MAX, lower case, without a trailing dot, and a suffix
 *     of the (lower-cased) input on a label boundary;
 *   - a second call with the same input gives the same answer.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/psl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char fixed_list[] =
    "com\nco.uk\nuk\n*.ck\n!www.ck\n*.kobe.jp\n!city.kobe.jp\njp\n"
    "kobe.jp\n公司.cn\ncn\n";

/* check - one lookup and its invariants */
static void
check(const char *host)
{
	char buf[PSL_NAME_MAX + 1], again[PSL_NAME_MAX + 1], low[1024];
	const char *r;
	size_t hl, rl, i;

	r = psl_org_domain(host, buf, sizeof(buf));
	if (r == NULL) {
		if (psl_org_domain(host, again, sizeof(again)) != NULL)
			abort();
		return;
	}
	if (r != buf || (rl = strlen(r)) == 0 || rl > PSL_NAME_MAX ||
	    r[rl - 1] == '.')
		abort();
	hl = strlen(host);
	if (hl >= sizeof(low))
		abort();
	for (i = 0; i < hl; i++)
		low[i] = (char)tolower((unsigned char)host[i]);
	if (hl > 0 && low[hl - 1] == '.')
		hl--;
	low[hl] = '\0';
	if (rl > hl || strcmp(low + hl - rl, r) != 0 ||
	    (rl < hl && low[hl - rl - 1] != '.'))
		abort();
	for (i = 0; i < rl; i++)
		if (isupper((unsigned char)r[i]))
			abort();
	if (psl_org_domain(host, again, sizeof(again)) == NULL ||
	    strcmp(again, buf) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {
		"www.example.com", "a.b.c.kobe.jp", "www.www.ck", "x.y.co.uk",
		"www.xn--85x722f.xn--55qx5d.cn", "com", "a.b.c.d.e.f",
	};
	char err[128], host[1024], *line, *nl;
	size_t i;

	if (size == 0 || size > 1000)
		return 0;
	if ((data[0] & 1) == 0) {
		if (psl_load_mem(fixed_list, sizeof(fixed_list) - 1, err,
		    sizeof(err)) < 0)
			abort();
		memcpy(host, data + 1, size - 1);
		host[size - 1] = '\0';
		check(host);
	} else {
		if (psl_load_mem((const char *)data + 1, size - 1, err,
		    sizeof(err)) < 0)
			return 0;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			check(names[i]);
		memcpy(host, data + 1, size - 1);
		host[size - 1] = '\0';
		for (line = host; line != NULL; line = nl) {
			if ((nl = strchr(line, '\n')) != NULL)
				*nl++ = '\0';
			check(line);
		}
	}
	psl_free();
	return 0;
}
