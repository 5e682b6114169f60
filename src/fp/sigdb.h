/*
 * sigdb.h - the signature database: p0f.fp-format files in memory
 *
 * The daemon sees only the opaque struct sigdb of fp/fp.h; the structures
 * below are for the matcher, the CLI, the tests and the fuzzers.
 */
#ifndef MS_FP_SIGDB_H
#define MS_FP_SIGDB_H

#include <stddef.h>
#include <stdint.h>

#include "fp/syn.h"

#define SIGDB_WIN_NORMAL	0	/* exact window value */
#define SIGDB_WIN_ANY		1	/* '*' */
#define SIGDB_WIN_MOD		2	/* '%N': a multiple of N */
#define SIGDB_WIN_MSS		3	/* 'mss*N' */
#define SIGDB_WIN_MTU		4	/* 'mtu*N' */

#define SIGDB_LINE_MAX		1024	/* longest line accepted */

struct sigdb_label {
	int	generic;	/* 1 = g: label, 0 = s: label */
	int	class_id;	/* index into classes, -1 = application (!) */
	int	name_id;	/* index into names */
	char	*flavor;	/* flavor text, NULL if none */
	char	*os;		/* "name flavor", as p0f prints it */
};

struct sigdb_sig {
	int		ver;		/* 4, 6 or -1 = any */
	int		ttl;		/* initial TTL, +N already added */
	int		bad_ttl;	/* 1 = 'ttl-': TTL is randomised */
	int		olen;		/* IPv4 option length */
	int		mss;		/* MSS, -1 = any */
	int		win_type;	/* SIGDB_WIN_* */
	int		win;		/* value, multiplier or modulus */
	int		wscale;		/* window scale, -1 = any */
	uint8_t		layout[FP_MAX_OPT]; /* option kinds */
	uint8_t		opt_cnt;	/* entries in layout[] */
	uint8_t		eol_pad;	/* eol+N */
	uint32_t	quirks;		/* FP_Q_* bits */
	int		pclass;		/* payload: -1 any, 0 none, 1 some */
	int		label;		/* index into labels */
	int		file;		/* index into files */
	unsigned	line;		/* line number in that file */
};

struct sigdb_mtu {
	int		mtu;		/* link MTU */
	const char	*label;		/* link type (points into labels) */
};

/* One option layout and the signatures that have it, in file order. */
struct sigdb_group {
	uint8_t		layout[FP_MAX_OPT];
	uint8_t		opt_cnt;
	uint32_t	hash;		/* FNV-1a of opt_cnt + layout */
	uint32_t	*idx;		/* indexes into sigs, ascending */
	size_t		n;
	size_t		cap;
	int		next;		/* next group in bucket, -1 = end */
};

#define SIGDB_BUCKETS	256

struct sigdb {
	struct sigdb_sig	*sigs;
	size_t			nsigs, capsigs;
	struct sigdb_label	*labels;
	size_t			nlabels, caplabels;
	struct sigdb_mtu	*mtus;
	size_t			nmtus, capmtus;
	char			**mtu_labels;	/* owned strings */
	size_t			nmtu_labels;
	char			**classes;
	size_t			nclasses;
	char			**names;
	size_t			nnames;
	char			**files;	/* file names, for messages */
	size_t			nfiles;
	struct sigdb_group	*groups;
	size_t			ngroups;
	int			bucket[SIGDB_BUCKETS]; /* first group, -1 */
	int			quiet;		/* 1 = count, don't log */
	unsigned		nbad;		/* lines rejected */
};

struct sigdb	*sigdb_new(void);
int	sigdb_parse_buf(struct sigdb *db, const char *name, const char *buf,
	    size_t len);
int	sigdb_load_file(struct sigdb *db, const char *path, char *err,
	    size_t errlen);
int	sigdb_finish(struct sigdb *db, char *err, size_t errlen);
struct sigdb	*sigdb_load_files(const char *const *paths, size_t n,
	    char *err, size_t errlen);
struct sigdb	*sigdb_load_default(char *err, size_t errlen);
size_t	sigdb_default_paths(const char **paths, size_t max);
void	sigdb_free(struct sigdb *db);
uint32_t	sigdb_layout_hash(const uint8_t *layout, size_t n);
const struct sigdb_group *sigdb_find_group(const struct sigdb *db,
	    const uint8_t *layout, size_t n);
const char	*sigdb_mtu_link(const struct sigdb *db, int mtu);
int	sigdb_parse_sig(const char *val, struct sigdb_sig *sig, char *err,
	    size_t errlen);

#endif
