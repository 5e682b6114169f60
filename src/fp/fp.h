/*
 * fp.h - passive TCP fingerprinting: the public face for the daemon
 *
 * Load a signature database once (sigdb_load_default() or
 * sigdb_load_files()), then call fp_fingerprint_syn() on the bytes that
 * getsockopt(TCP_SAVED_SYN) returns.  Matching follows p0f 3.09b; see
 * doc/internals/matcher.md.  A loaded struct sigdb is read-only and may be
 * shared by threads.
 */
#ifndef MS_FP_H
#define MS_FP_H

#include <stddef.h>

struct fp_result {		/* filled by fp_fingerprint_syn() */
	char	raw_sig[160];	/* p0f rendering, observed TTL */
	char	key[160];	/* canonical key: raw_sig with initial TTL */
	char	key_hash[17];	/* FNV-1a 64 of key, 16 lower-case hex */
	char	os[96];		/* "Linux 2.2.x-3.x", app label, or "???" */
	const char *match;	/* "exact", "generic", "fuzzy",
				 * "generic_fuzzy", "none" (static) */
	int	dist;		/* hop distance */
	char	link[32];	/* link type from [mtu], "???" if unknown */
	int	is_app;		/* 1 = the label is an application (!) */
};

struct sigdb;
struct fp_syn;

struct sigdb	*sigdb_load_files(const char *const *paths, size_t n,
		    char *err, size_t errlen);
struct sigdb	*sigdb_load_default(char *err, size_t errlen);
void		sigdb_free(struct sigdb *db);

int	fp_fingerprint_syn(const struct sigdb *db, const unsigned char *hdr,
	    size_t len, struct fp_result *out, char *err, size_t errlen);
void	fp_result_from_syn(const struct sigdb *db, const struct fp_syn *syn,
	    struct fp_result *out);
int	fp_result_json(const struct fp_result *r, char *buf, size_t len);
int	fp_json_str(char *buf, size_t len, const char *s);

/*
 * fp_intern: a shared copy of r (NULL: out of memory), one reference per
 * call; fp_release drops one (NULL is ignored).  fpref.c; one thread.
 */
const struct fp_result *fp_intern(const struct fp_result *r);
void	fp_release(const struct fp_result *r);

#endif
