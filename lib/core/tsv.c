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

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

long ak_tsv_unescape(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\') {
            s[o++] = s[i];
            continue;
        }
        if (++i == len)
            return -1;
        switch (s[i]) {
        case 'n': s[o++] = '\n'; break;
        case 't': s[o++] = '\t'; break;
        case 'r': s[o++] = '\r'; break;
        case '\\': s[o++] = '\\'; break;
        case 'x': {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1, lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (lo < 0)
                return -1;
            s[o++] = (char)(hi * 16 + lo);
            i += 2;
            break;
        }
        default: return -1;
        }
    }
    return (long)o;
}
