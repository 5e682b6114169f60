/*
 * str.h - small string helpers shared by the parsers
 */
#ifndef MS_STR_H
#define MS_STR_H

char   *str_trim(char *);

#endif
