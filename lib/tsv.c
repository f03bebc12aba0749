/* tsv.c - escaped TSV fields (see tsv.h). */
#include "tsv.h"

#include <string.h>

int ak_tsv_put(FILE *f, const char *s) { return ak_tsv_putn(f, s, strlen(s)); }

int ak_tsv_putn(FILE *f, const char *s, size_t n)
{
    for (const unsigned char *p = (const unsigned char *)s, *e = p + n; p < e; p++) {
        int rc;
        switch (*p) {
        case '\t': rc = fputs("\\t", f); break;
        case '\n': rc = fputs("\\n", f); break;
        case '\r': rc = fputs("\\r", f); break;
        case '\\': rc = fputs("\\\\", f); break;
        default:
            rc = *p < 0x20 || *p == 0x7f ? fprintf(f, "\\x%02x", *p) : fputc(*p, f);
        }
        if (rc < 0)
            return EOF;
    }
    return 0;
}
