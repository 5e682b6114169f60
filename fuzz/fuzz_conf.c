/*
 * fuzz_conf.c - libFuzzer target for src/conf/conf.c
 *
 * Writes the input to a temporary file and calls conf_load() on it.  It
 * must not crash, leak or overrun; on failure the error text must be a
 * NUL-terminated string that starts with the file name.  The first line of
 * the input is also tried as an -o override.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char path[64];		/* the one temporary file, reused */

/* cleanup - remove the temporary file at exit */
static void
cleanup(void)
{
	if (*path)
		unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	err[512], ov[256];
	char   *ovs[1] = {ov};
	struct conf *cf;
	FILE   *fp;
	size_t	n;

	if (*path == 0) {
		int	fd;

		snprintf(path, sizeof(path), "/tmp/fuzz_conf.XXXXXX");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
		atexit(cleanup);
	}
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	if (size && fwrite(data, 1, size, fp) != size)
		abort();
	fclose(fp);

	memset(err, 'x', sizeof(err));
	cf = conf_load(path, NULL, 0, err, sizeof(err));
	if (cf != NULL)
		conf_free(cf);
	else if (memchr(err, 0, sizeof(err)) == NULL ||
	    strncmp(err, path, strlen(path)) != 0)
		abort();

	/* The first line as "-o name=value". */
	n = 0;
	while (n < size && n < sizeof(ov) - 1 && data[n] != '\n' && data[n])
		n++;
	memcpy(ov, data, n);
	ov[n] = 0;
	memset(err, 'x', sizeof(err));
	cf = conf_load(NULL, ovs, 1, err, sizeof(err));
	if (cf != NULL)
		conf_free(cf);
	else if (memchr(err, 0, sizeof(err)) == NULL)
		abort();
	return 0;
}
