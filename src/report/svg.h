/*
 * svg.h - a small self-contained SVG chart writer
 *
 * Horizontal bar charts, donut share charts and small-multiple histograms,
 * written to a FILE.  Every chart is a complete <svg> element with its own
 * inline styles: no fonts, scripts or links are loaded.  Every text that
 * comes from outside (labels, titles) is escaped and sanitised: markup is
 * escaped, control characters are dropped and invalid UTF-8 is replaced,
 * so the output is always well-formed XML.
 */
#ifndef MS_SVG_H
#define MS_SVG_H

#include <stddef.h>
#include <stdio.h>

#define SVG_LABEL_MAX	48	/* label characters drawn (full text in <title>) */

/* One bar or one slice. */
struct svg_item {
	const char *label;	/* any bytes; escaped (NULL = "") */
	double	value;		/* bar length or slice size (< 0 = none) */
	const char *note;	/* text after the bar, e.g. "97.0% of 120" */
};

/* One small multiple of a histogram: counts[nbuckets]. */
struct svg_series {
	const char *label;
	const double *counts;
};

size_t	svg_utf8_len(const unsigned char *s, size_t n, unsigned long *cp);
void	svg_text(FILE *, const char *s, size_t maxchars);
int	svg_bars(FILE *, const char *title, const struct svg_item *, size_t n,
	    double vmax);
int	svg_share(FILE *, const char *title, const struct svg_item *,
	    size_t n);
int	svg_histograms(FILE *, const char *title, const char *const *buckets,
	    size_t nbuckets, const struct svg_series *, size_t nseries);

#endif
