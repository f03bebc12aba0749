/* buf.c - the growable byte buffer and array growth.  See buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ak_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    if (elem == 0 || need > SIZE_MAX / elem)
        return AK_ENOMEM;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > SIZE_MAX / elem)
        ncap = need;   /* doubling would overflow; need alone does not */
    void *q = realloc(*p, ncap * elem);
    if (!q)
        return AK_ENOMEM;
    *p = q;
    *cap = ncap;
    return 0;
}

int ak_buf_reserve(ak_buf *b, size_t n)
{
    if (b->oom)
        return AK_ENOMEM;
    if (n > SIZE_MAX - 1 - b->len || ak_grow((void **)&b->data, &b->cap, b->len + n + 1, 1)) {
        b->oom = 1;
        return AK_ENOMEM;
    }
    return 0;
}

int ak_buf_put(ak_buf *b, const void *p, size_t n)
{
    if (ak_buf_reserve(b, n))
        return AK_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int ak_buf_puts(ak_buf *b, const char *s) { return ak_buf_put(b, s, strlen(s)); }

int ak_buf_printf(ak_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return b->oom ? AK_ENOMEM : 0;
    if (ak_buf_reserve(b, (size_t)n))
        return AK_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void ak_buf_free(ak_buf *b)
{
    free(b->data);
    *b = (ak_buf){0};
}
