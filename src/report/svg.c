/*
 * svg.c - a small self-contained SVG chart writer
 *
 * Exports svg_utf8_len(), svg_text(), svg_bars(), svg_share() and
 * svg_histograms().
 *
 * Each chart function writes one complete <svg> element (with the SVG
 * namespace, a viewBox, inline presentation attributes and a <title>) to
 * the FILE it is given and returns 0, or -1 when the FILE reports a write
 * error.  Nothing is allocated; the caller owns every string.  Text is
 * drawn with the generic "sans-serif" family, so nothing is fetched.
 *
 * Text safety: svg_text() is the only way outside text reaches the output.
 * It escapes & < > " and ', drops characters XML 1.0 forbids (C0 controls
 * but tab/newline, U+FFFE, U+FFFF) and replaces each byte of an invalid
 * or over-long UTF-8 sequence with U+FFFD, so any byte string becomes
 * well-formed character data, usable inside elements and attributes.
 *
 * It is an error to pass NaN values; negative values draw nothing.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/svg.h"

#define SVG_W		760	/* chart width, px */
#define SVG_FONT	""		/* the root sets family and size */

static const char *const svg_palette[] = {
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"
};
#define SVG_NCOLORS	(sizeof(svg_palette) / sizeof(svg_palette[0]))

/* svg_utf8_len - length of a valid UTF-8 sequence at s (n > 0 bytes left);
 * 0 when it is invalid */
size_t
svg_utf8_len(const unsigned char *s, size_t n, unsigned long *cp)
{
	size_t len, i;
	unsigned long c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Over-long forms, surrogates and beyond U+10FFFF are invalid. */
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return len;
}

/* svg_text - s escaped for XML, at most maxchars characters (0 = all) */
void
svg_text(FILE *f, const char *s, size_t maxchars)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), len, chars = 0;
	unsigned long cp;

	while (n > 0) {
		if (maxchars && chars == maxchars) {
			fputs("\xe2\x80\xa6", f);	/* an ellipsis */
			return;
		}
		chars++;
		if ((len = svg_utf8_len(p, n, &cp)) == 0) {
			fputs("\xef\xbf\xbd", f);	/* U+FFFD */
			p++;
			n--;
			continue;
		}
		switch (cp) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			if ((cp < 0x20 && cp != '\t' && cp != '\n') ||
			    cp == 0x7f || cp == 0xfffe || cp == 0xffff)
				chars--;	/* dropped */
			else
				fwrite(p, 1, len, f);
		}
		p += len;
		n -= len;
	}
}

/* svg_open - the <svg> element, its background and its title */
static void
svg_open(FILE *f, const char *title, int h)
{
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	    "font-family=\"sans-serif\" font-size=\"12\">\n", SVG_W, h,
	    SVG_W, h);
	fputs("<title>", f);
	svg_text(f, title, 0);
	fputs("</title>\n", f);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
	    "fill=\"#ffffff\"/>\n", SVG_W, h);
	fputs("<text x=\"10\" y=\"22\" " SVG_FONT " font-size=\"15\" "
	    "font-weight=\"bold\" fill=\"#222\">", f);
	svg_text(f, title, 90);
	fputs("</text>\n", f);
}

/* svg_close - end the element; 0 or -1 on a write error */
static int
svg_close(FILE *f)
{
	fputs("</svg>\n", f);
	return ferror(f) ? -1 : 0;
}

/* svg_nodata - a chart with nothing to draw says so */
static int
svg_nodata(FILE *f, const char *title)
{
	svg_open(f, title, 70);
	fputs("<text x=\"10\" y=\"50\" " SVG_FONT " fill=\"#777\">no data"
	    "</text>\n", f);
	return svg_close(f);
}

/* svg_bars - one horizontal bar per item, scaled to vmax (0 = largest) */
int
svg_bars(FILE *f, const char *title, const struct svg_item *it, size_t n,
    double vmax)
{
	const int lw = 330, bw = SVG_W - lw - 150, rh = 22, top = 36;
	double w;
	size_t i;

	if (n == 0)
		return svg_nodata(f, title);
	if (vmax <= 0)
		for (i = 0; i < n; i++)
			if (it[i].value > vmax)
				vmax = it[i].value;
	svg_open(f, title, top + (int)n * rh + 10);
	for (i = 0; i < n; i++) {
		int y = top + (int)i * rh;

		w = vmax > 0 && it[i].value > 0 ? it[i].value / vmax * bw : 0;
		if (w > bw)
			w = bw;
		fputs("<g><title>", f);
		svg_text(f, it[i].label, 0);
		if (it[i].note) {
			fputs(": ", f);
			svg_text(f, it[i].note, 0);
		}
		fputs("</title>\n", f);
		fprintf(f, "<text x=\"%d\" y=\"%d\" " SVG_FONT " fill=\"#222\" "
		    "text-anchor=\"end\">", lw - 8, y + 15);
		svg_text(f, it[i].label, SVG_LABEL_MAX);
		fputs("</text>\n", f);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
		    "fill=\"%s\"/>\n", lw, y + 3, w, rh - 6,
		    svg_palette[0]);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" " SVG_FONT " fill=\"#222\">",
		    lw + w + 6, y + 15);
		svg_text(f, it[i].note, 40);
		fputs("</text></g>\n", f);
	}
	return svg_close(f);
}

/* svg_share - a donut of the items' shares, with a legend */
int
svg_share(FILE *f, const char *title, const struct svg_item *it, size_t n)
{
	const double cx = 160, cy = 190, r = 130, ri = 70;
	double total = 0, a0 = -M_PI / 2, a1, frac;
	size_t i, shown = 0;
	int h;

	for (i = 0; i < n; i++)
		if (it[i].value > 0)
			total += it[i].value;
	if (total <= 0)
		return svg_nodata(f, title);
	h = 36 + (int)n * 22 + 10;
	if (h < 340)
		h = 340;
	svg_open(f, title, h);
	for (i = 0; i < n; i++) {
		const char *col = svg_palette[i % SVG_NCOLORS];
		int y = 40 + (int)shown * 22;

		if (it[i].value <= 0)
			continue;
		frac = it[i].value / total;
		a1 = a0 + frac * 2 * M_PI;
		fputs("<g><title>", f);
		svg_text(f, it[i].label, 0);
		fprintf(f, ": %.1f%%</title>\n", frac * 100);
		if (frac >= 0.9999) {
			/* One slice: an arc cannot span the whole circle. */
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" "
			    "fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"/>\n",
			    cx, cy, (r + ri) / 2, col, r - ri);
		} else {
			fprintf(f, "<path d=\"M %.2f %.2f A %.1f %.1f 0 %d 1 "
			    "%.2f %.2f L %.2f %.2f A %.1f %.1f 0 %d 0 %.2f %.2f Z\" "
			    "fill=\"%s\" stroke=\"#fff\"/>\n",
			    cx + r * cos(a0), cy + r * sin(a0), r, r,
			    a1 - a0 > M_PI, cx + r * cos(a1), cy + r * sin(a1),
			    cx + ri * cos(a1), cy + ri * sin(a1), ri, ri,
			    a1 - a0 > M_PI, cx + ri * cos(a0), cy + ri * sin(a0),
			    col);
		}
		fprintf(f, "<rect x=\"330\" y=\"%d\" width=\"14\" height=\"14\" "
		    "fill=\"%s\"/>\n", y, col);
		fprintf(f, "<text x=\"350\" y=\"%d\" " SVG_FONT " fill=\"#222\">",
		    y + 12);
		svg_text(f, it[i].label, SVG_LABEL_MAX);
		fprintf(f, " \xe2\x80\x94 %.1f%%", frac * 100);
		if (it[i].note) {
			fputs(" (", f);
			svg_text(f, it[i].note, 30);
			fputs(")", f);
		}
		fputs("</text></g>\n", f);
		a0 = a1;
		shown++;
	}
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" " SVG_FONT " font-size=\"16\" "
	    "text-anchor=\"middle\" fill=\"#222\">%.0f</text>\n", cx, cy + 6,
	    total);
	return svg_close(f);
}

/* svg_histograms - one row of bucket bars per series, each scaled alone */
int
svg_histograms(FILE *f, const char *title, const char *const *buckets,
    size_t nb, const struct svg_series *s, size_t ns)
{
	const int lw = 200, rowh = 70, top = 36, axis = 18;
	double bw, max, sum, hgt;
	size_t i, j;

	if (ns == 0 || nb == 0)
		return svg_nodata(f, title);
	bw = (double)(SVG_W - lw - 20) / (double)nb;
	svg_open(f, title, top + (int)ns * rowh + axis + 10);
	for (i = 0; i < ns; i++) {
		int y0 = top + (int)i * rowh, base = y0 + rowh - 8;

		max = sum = 0;
		for (j = 0; j < nb; j++) {
			sum += s[i].counts[j] > 0 ? s[i].counts[j] : 0;
			if (s[i].counts[j] > max)
				max = s[i].counts[j];
		}
		fprintf(f, "<g><title>");
		svg_text(f, s[i].label, 0);
		fprintf(f, "</title>\n<text x=\"%d\" y=\"%d\" " SVG_FONT
		    " fill=\"#222\" text-anchor=\"end\">", lw - 8, base - 20);
		svg_text(f, s[i].label, 28);
		fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" " SVG_FONT
		    " fill=\"#777\" text-anchor=\"end\">n=%.0f</text>\n",
		    lw - 8, base - 4, sum);
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		    "stroke=\"#999\"/>\n", lw, base, SVG_W - 20, base);
		for (j = 0; j < nb; j++) {
			hgt = max > 0 && s[i].counts[j] > 0 ?
			    s[i].counts[j] / max * (rowh - 14) : 0;
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			    "height=\"%.1f\" fill=\"%s\"><title>",
			    lw + j * bw + 1, base - hgt, bw - 2, hgt,
			    svg_palette[i % SVG_NCOLORS]);
			svg_text(f, buckets[j], 0);
			fprintf(f, ": %.0f</title></rect>\n",
			    s[i].counts[j] > 0 ? s[i].counts[j] : 0);
		}
		fputs("</g>\n", f);
	}
	for (j = 0; j < nb; j++) {
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" " SVG_FONT " font-size=\"10\" "
		    "fill=\"#444\" text-anchor=\"middle\">", lw + (j + 0.5) * bw,
		    top + (int)ns * rowh + 8);
		svg_text(f, buckets[j], 12);
		fputs("</text>\n", f);
	}
	return svg_close(f);
}
