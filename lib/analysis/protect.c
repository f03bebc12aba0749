/* protect.c - the spans of a prompt that pruning must keep: regex and
 * marker matches, the first or last block, and the query span (see
 * protect.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "attnkit/protect.h"
#include "stream/check.h"
#include "attnkit/metrics.h"
#include "attnkit/segment.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* Byte coverage of match spans, kept as a difference array (diff[a]++,
 * diff[b]-- per span [a, b)), turned into marks on the tokens overlapping
 * any span: O(text + tokens) however many matches there are. */
static int mark_covered(size_t len, const int64_t *offsets, int64_t T, int32_t *diff,
                        uint8_t *hit, ak_err *err)
{
    uint32_t *pre = malloc((len + 1) * sizeof *pre);
    if (!pre)
        return ak_fail(err, AK_ENOMEM, "out of memory for %zu bytes of text", len);
    int64_t depth = 0;
    pre[0] = 0;
    for (size_t i = 0; i < len; i++) {
        depth += diff[i];
        pre[i + 1] = pre[i] + (depth > 0);
    }
    for (int64_t i = 0; i < T; i++) {
        int64_t a = offsets[2 * i], b = offsets[2 * i + 1];
        if (a < b && pre[b] != pre[a])
            hit[i] = 1;
    }
    free(pre);
    return 0;
}

int ak_protect_regex(const uint8_t *text, size_t len, const int64_t *offsets,
                     int64_t T, const char *re, uint8_t *protect, ak_err *err)
{
    int rc = ak_offsets_in_text(len, offsets, T, err);
    if (rc)
        return rc;
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                     &ecode, &eoff, NULL);
    if (!code) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(ecode, buf, sizeof buf);
        return ak_fail(err, AK_EUSAGE, "regex '%s' at %zu: %s", re, (size_t)eoff, (char *)buf);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int32_t *diff = calloc(len + 1, sizeof *diff);
    if (!md || !diff) {
        pcre2_match_data_free(md);
        pcre2_code_free(code);
        free(diff);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    PCRE2_SIZE start = 0;
    uint32_t opts = 0;
    rc = 0;
    for (;;) {
        int m = pcre2_match(code, text, len, start, opts, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            PCRE2_UCHAR buf[256];
            pcre2_get_error_message(m, buf, sizeof buf);
            if (m <= PCRE2_ERROR_UTF8_ERR1 && m >= PCRE2_ERROR_UTF8_ERR21)
                rc = ak_fail(err, AK_EDATA, "text: invalid UTF-8 at byte %zu: %s",
                             (size_t)pcre2_get_startchar(md), (char *)buf);
            else
                rc = ak_fail(err, AK_EDATA, "regex '%s': %s", re, (char *)buf);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int64_t a = (int64_t)ov[0], b = (int64_t)ov[1];
        if (b > a) { /* \K can put the start after the end: such matches cover nothing */
            diff[a]++;
            diff[b]--;
        }
        if (b == a) {
            if ((size_t)b >= len)
                break;
            /* empty match: step one UTF-8 character */
            start = (PCRE2_SIZE)b + 1;
            while (start < len && (text[start] & 0xC0) == 0x80)
                start++;
        } else {
            start = (PCRE2_SIZE)b;
        }
        opts = PCRE2_NO_UTF_CHECK; /* checked by the first match */
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    if (!rc)
        rc = mark_covered(len, offsets, T, diff, protect, err);
    free(diff);
    return rc;
}

int ak_protect_marker(const uint8_t *text, size_t len, const int64_t *offsets,
                      const int32_t *segments, int64_t T, const char *marker,
                      uint8_t *protect, ak_err *err)
{
    size_t mlen = strlen(marker);
    if (mlen == 0)
        return ak_fail(err, AK_EUSAGE, "empty protect marker");
    int rc = ak_offsets_in_text(len, offsets, T, err);
    if (rc)
        return rc;
    int32_t *diff = calloc(len + 1, sizeof *diff);
    uint8_t *hit = calloc((size_t)T + 1, 1);
    if (!diff || !hit) {
        free(diff);
        free(hit);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    const uint8_t *p = text, *end = text + len;
    while ((size_t)(end - p) >= mlen) {
        const uint8_t *at = memmem(p, (size_t)(end - p), marker, mlen);
        if (!at)
            break;
        diff[at - text]++;
        diff[at - text + (ptrdiff_t)mlen]--;
        p = at + mlen;
    }
    rc = mark_covered(len, offsets, T, diff, hit, err);
    free(diff);
    if (rc) {
        free(hit);
        return rc;
    }
    /* a hit token protects itself and, through a bitmap of blocks, its block */
    uint8_t *blocks = calloc((size_t)T + 1, 1);
    if (!blocks) {
        free(hit);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < T; i++)
        if (hit[i]) {
            protect[i] = 1;
            if (segments && segments[i] >= 0 && segments[i] < T)
                blocks[segments[i]] = 1;
        }
    for (int64_t i = 0; segments && i < T; i++)
        if (segments[i] >= 0 && segments[i] < T && blocks[segments[i]])
            protect[i] = 1;
    free(hit);
    free(blocks);
    return 0;
}

void ak_protect_block_end(const int32_t *segments, int64_t T, int which, uint8_t *protect)
{
    int32_t want = -1;
    for (int64_t i = 0; i < T; i++) {
        if (segments[i] < 0)
            continue;
        if (want < 0 || (which == 0 ? segments[i] < want : segments[i] > want))
            want = segments[i];
    }
    if (want < 0)
        return;
    for (int64_t i = 0; i < T; i++)
        if (segments[i] == want)
            protect[i] = 1;
}

int ak_query_span(const uint8_t *txt, size_t tlen, const int64_t *o, int64_t T,
                  const int32_t *seg, int64_t nblocks, const char *marker, const char *regex,
                  uint8_t *query, int *found, ak_err *err)
{
    int rc = 0;
    *found = 0;
    if (regex)
        rc = ak_protect_regex(txt, tlen, o, T, regex, query, err);
    else if (marker)
        rc = ak_protect_marker(txt, tlen, o, seg, T, marker, query, err);
    else if (seg && nblocks >= 2)
        ak_protect_block_end(seg, T, 1, query);
    else if (!seg) {
        int64_t *starts;
        size_t n;
        if ((rc = ak_text_blocks((const char *)txt, tlen, AK_SEG_PARAGRAPH, &starts, &n, err)))
            return rc;
        if (n >= 1) {
            int32_t *para = malloc(((size_t)T + 1) * sizeof *para);
            if (!para) {
                free(starts);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
            ak_token_blocks((const char *)txt, tlen, o, (size_t)T, starts, n, para);
            for (int64_t i = 0; i < T; i++)
                if (para[i] == (int32_t)n && o[2 * i] < o[2 * i + 1])
                    query[i] = 1;
            free(para);
        }
        free(starts);
    }
    for (int64_t i = 0; !rc && i < T && !*found; i++)
        *found = query[i] != 0;
    return rc;
}

int ak_query_span_rows(const ak_doc *d, const char *marker, const char *regex, int64_t *first,
                       int64_t *last, ak_err *err)
{
    ak_tensor *tok, *off, *text = ak_doc_need(d, "text", AK_U8, 1, err);
    if (!text)
        return err->code;
    int rc = ak_doc_tokens(d, &tok, &off, err);
    if (rc)
        return rc;
    int64_t T = tok->shape[0], nblocks = 0;
    const int32_t *seg = NULL;
    if ((rc = ak_offsets_in_text(text->nbytes, ak_tensor_i64(off), T, err)) ||
        (rc = ak_doc_segments(d, T, &seg, err)) ||
        (seg && (rc = ak_block_count(seg, T, &nblocks, err))))
        return rc;
    uint8_t *q = calloc((size_t)T + 1, 1);
    if (!q)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int found = 0;
    rc = ak_query_span(ak_tensor_u8(text), text->nbytes, ak_tensor_i64(off), T, seg, nblocks,
                       marker, regex, q, &found, err);
    if (!rc && !found)
        rc = ak_fail(err, AK_EDATA, "document '%s' has no query span%s", d->id,
                     marker || regex ? "" : " (no last block or paragraph after another)");
    *first = *last = -1;
    for (int64_t i = 0; !rc && i < T; i++)
        if (q[i]) {
            if (*first < 0)
                *first = i;
            *last = i;
        }
    free(q);
    return rc;
}
