/*
 * fuzz_sigdb.c - libFuzzer target: the p0f.fp signature-file parser
 *
 * Input: the text of a signature file.  It is parsed (bad lines only
 * counted), indexed, and then used once to match a fixed SYN, so that odd
 * but accepted signatures also go through the matcher.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp/fp.h"
#include "fp/sigdb.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char syn[] = {
	0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x3d, 0x06, 0, 0,
	10, 0, 0, 1, 192, 0, 2, 25,
	0x04, 0x00, 0x00, 0x19, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0,
	0xa0, 0x02, 0x72, 0x10, 0, 0, 0, 0,
	0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0x10, 0,
	0, 0, 0, 0, 0x01, 0x03, 0x03, 0x07
};

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sigdb *db = sigdb_new();
	struct fp_result r;
	char err[128], *buf;

	if (db == NULL)
		return 0;
	db->quiet = 1;
	/* exact-size copy: no terminating NUL to lean on */
	buf = malloc(size ? size : 1);
	if (buf != NULL) {
		memcpy(buf, data, size);
		sigdb_parse_buf(db, "fuzz.fp", buf, size);
		free(buf);
	}
	if (sigdb_finish(db, err, sizeof(err)) == 0)
		(void)fp_fingerprint_syn(db, syn, sizeof(syn), &r, err,
		    sizeof(err));
	sigdb_free(db);
	return 0;
}
