/* segment.c - sentence, paragraph and line starts (the rule is in
 * segment.h). */
#include "attnkit/segment.h"
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static int is_space_byte(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Length of the sentence-ending mark at s[i] (0 if none); *cjk when it is a
 * CJK full stop, which ends a sentence without a space after it. */
static size_t end_mark(const uint8_t *s, size_t len, size_t i, int *cjk)
{
    *cjk = 0;
    if (s[i] == '.' || s[i] == '!' || s[i] == '?')
        return 1;
    if (i + 3 > len)
        return 0;
    if (!memcmp(s + i, "\xE2\x80\xA6", 3)) /* … */
        return 3;
    if (!memcmp(s + i, "\xE3\x80\x82", 3) || !memcmp(s + i, "\xEF\xBC\x81", 3) ||
        !memcmp(s + i, "\xEF\xBC\x9F", 3)) { /* 。 ！ ？ */
        *cjk = 1;
        return 3;
    }
    return 0;
}

/* Length of the closing mark at s[j]: . ! ? " ' ) ] (1 byte), ” ’ (3), » (2). */
static size_t closing_mark(const uint8_t *s, size_t len, size_t j)
{
    if (strchr(".!?\"')]", s[j]) && s[j])
        return 1;
    if (j + 3 <= len && (!memcmp(s + j, "\xE2\x80\x9D", 3) || !memcmp(s + j, "\xE2\x80\x99", 3)))
        return 3;
    if (j + 2 <= len && !memcmp(s + j, "\xC2\xBB", 2))
        return 2;
    return 0;
}

int ak_text_blocks(const char *text, size_t len, int mode, int64_t **starts, size_t *n,
                   ak_err *err)
{
    const uint8_t *s = (const uint8_t *)text;
    int64_t *v = NULL;
    size_t nv = 0, cap = 0;
    int pending = 0; /* a boundary waits for the next non-space character */
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        if (pending && !is_space_byte(c)) {
            if (ak_grow((void **)&v, &cap, nv + 1, sizeof *v)) {
                free(v);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
            v[nv++] = (int64_t)i;
            pending = 0;
        }
        if (c == '\n') {
            if (mode == AK_SEG_LINE)
                pending = 1;
            else {
                size_t j = i + 1;
                while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
                    j++;
                if (j < len && s[j] == '\n')
                    pending = 1; /* blank line */
            }
            i++;
            continue;
        }
        int cjk;
        size_t k = mode == AK_SEG_SENTENCE ? end_mark(s, len, i, &cjk) : 0;
        if (k) {
            size_t j = i + k, m;
            while (j < len && (m = closing_mark(s, len, j)))
                j += m;
            if (j >= len || is_space_byte(s[j]) || cjk)
                pending = 1;
            i = j;
            continue;
        }
        i++;
    }
    *starts = v;
    *n = nv;
    return 0;
}

void ak_token_blocks(const char *text, size_t len, const int64_t *offsets, size_t T,
                     const int64_t *starts, size_t nstarts, int32_t *blocks)
{
    for (size_t i = 0; i < T; i++) {
        int64_t st = offsets[2 * i], en = offsets[2 * i + 1];
        while (st < en && st >= 0 && st < (int64_t)len && is_space_byte((uint8_t)text[st]))
            st++;
        if (st == en)
            st = offsets[2 * i];
        /* the number of starts <= st */
        size_t lo = 0, hi = nstarts;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (starts[mid] <= st)
                lo = mid + 1;
            else
                hi = mid;
        }
        blocks[i] = (int32_t)lo;
    }
}
