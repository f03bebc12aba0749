/* tsv.h - fields of tab-separated output.  A field may hold any byte but a
 * tab or a newline would split the row, so fields are escaped the way
 * PostgreSQL's and MySQL's text formats do it: \t tab, \n newline, \r
 * carriage return, \\ backslash, \xHH any other byte below 0x20 and 0x7f.
 * Bytes from 0x80 up (UTF-8) pass unchanged. */
#ifndef AK_TSV_H
#define AK_TSV_H

#include <stdio.h>

/* Writes s escaped to f; returns EOF on a write error. */
int ak_tsv_put(FILE *f, const char *s);
/* The same for the n bytes at s (NUL bytes become \x00). */
int ak_tsv_putn(FILE *f, const char *s, size_t n);
/* Undoes the escapes above in place (s[len], not NUL-terminated); returns
 * the new length, or -1 for a bad escape. */
long ak_tsv_unescape(char *s, size_t len);

#endif
