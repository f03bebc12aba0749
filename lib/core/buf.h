/* buf.h - the library's one growable buffer, and the growth of typed arrays.
 *
 * ak_buf is a byte string that grows as text or bytes are appended (like
 * htslib's kstring_t or SQLite's sqlite3_str):
 *
 *     ak_buf b = {0};
 *     ak_buf_puts(&b, "model ");
 *     ak_buf_printf(&b, "%s (%d layers)", name, n);
 *     if (b.oom) ... out of memory ...
 *     use b.data, b.len; free(b.data) or ak_buf_free(&b)
 *
 * data is always NUL-terminated once anything was appended (the NUL is not
 * counted in len), so text can be used as a C string.  The first failed
 * allocation sets oom and every later append does nothing, so a run of
 * appends can be checked once at the end; each call also returns 0 or
 * AK_ENOMEM for callers that check as they go.  Sizes that would overflow
 * size_t count as out of memory.
 *
 * ak_grow is the same doubling for arrays of any element type:
 *
 *     if (n == cap && ak_grow((void **)&v, &cap, n + 1, sizeof *v))
 *         return ak_fail(err, AK_ENOMEM, "out of memory");
 *
 * Internal: used by the library and linked into the programs from
 * libattnkit.a; not exported by libattnkit.so, not installed.
 */
#ifndef AK_BUF_H
#define AK_BUF_H

#include "attnkit/ak.h"

typedef struct ak_buf {
    char *data;     /* NULL until the first append; the caller frees it */
    size_t len;     /* bytes appended, without the terminating NUL */
    size_t cap;     /* bytes allocated */
    int oom;        /* set by the first failed allocation */
} ak_buf;

/* Makes room for n more bytes (and the NUL).  0 or AK_ENOMEM. */
int ak_buf_reserve(ak_buf *b, size_t n);
/* Appends n bytes of p.  0 or AK_ENOMEM. */
int ak_buf_put(ak_buf *b, const void *p, size_t n);
/* Appends the C string s.  0 or AK_ENOMEM. */
int ak_buf_puts(ak_buf *b, const char *s);
/* Appends printf's output.  0 or AK_ENOMEM (an encoding error of vsnprintf
 * appends nothing and returns 0, as printf would print nothing). */
int ak_buf_printf(ak_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the data and empties b. */
void ak_buf_free(ak_buf *b);

/* Grows the array *p of *cap elements of elem bytes so it holds at least
 * need: doubles *cap (from 8) until it is enough, reallocates, updates *p
 * and *cap.  Nothing happens when *cap >= need.  0, or AK_ENOMEM with *p and
 * *cap unchanged (the allocation failed or need * elem overflows). */
int ak_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
