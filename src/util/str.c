/*
 * str.c - small string helpers shared by the parsers
 *
 * Exports str_trim().  Functions work in place on the caller's buffer.
 */
#include <ctype.h>
#include <string.h>

#include "util/str.h"

/* str_trim - strip leading and trailing white space in place */
char *
str_trim(char *s)
{
	char   *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}
