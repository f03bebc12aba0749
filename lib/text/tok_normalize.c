/* tok_normalize.c - normalizers and pre-tokenizers over text that keeps,
 * for every byte, the span of the original text it came from. */
#include "tok_internal.h"
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int tk_norm_reserve(tk_norm *t, size_t more)
{
    size_t need;
    if (ak_add_size(t->n, more, &need))
        return -1;
    if (need <= t->cap)
        return 0;
    /* b and al grow alike from the one cap (see ak_encoding_push) */
    size_t c1 = t->cap, c2 = t->cap;
    if (ak_grow((void **)&t->b, &c1, need, sizeof *t->b) ||
        ak_grow((void **)&t->al, &c2, need, 2 * sizeof *t->al))
        return -1;
    t->cap = c1;
    return 0;
}

int tk_norm_push(tk_norm *t, const uint8_t *s, size_t n, int64_t start, int64_t end)
{
    if (tk_norm_reserve(t, n))
        return -1;
    memcpy(t->b + t->n, s, n);
    for (size_t i = 0; i < n; i++) {
        t->al[2 * (t->n + i)] = start;
        t->al[2 * (t->n + i) + 1] = end;
    }
    t->n += n;
    return 0;
}

/* Copies in's bytes [s, e) with their own alignments. */
static int copy_span(tk_norm *out, const tk_norm *in, size_t s, size_t e)
{
    if (tk_norm_reserve(out, e - s))
        return -1;
    memcpy(out->b + out->n, in->b + s, e - s);
    memcpy(out->al + 2 * out->n, in->al + 2 * s, (e - s) * 2 * sizeof *in->al);
    out->n += e - s;
    return 0;
}

void tk_norm_free(tk_norm *t)
{
    free(t->b);
    free(t->al);
    memset(t, 0, sizeof *t);
}

int tk_spans_push(tk_spans *p, size_t s, size_t e)
{
    if (ak_grow((void **)&p->v, &p->cap, p->n + 1, sizeof *p->v))
        return -1;
    p->v[p->n++] = (tk_span){s, e};
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------ */

int ak_utf8_check(const char *s, size_t len, ak_err *err)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i < 4 ? len - i : 4), &cp);
        if (k < 0)
            return ak_fail(err, AK_EDATA, "invalid UTF-8 at byte %zu", i);
        i += (size_t)k;
    }
    return 0;
}

int ak_utf8_repair(const char *s, size_t len, char **out, size_t *outlen, size_t *nbad,
                   ak_err *err)
{
    size_t cap;
    if (ak_mul_size(len, 3, &cap) || ak_add_size(cap, 1, &cap))
        return ak_fail(err, AK_ENOMEM, "input too large");
    char *o = malloc(cap);
    if (!o)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    const uint8_t *p = (const uint8_t *)s;
    size_t n = 0, bad = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = p[i] < 0x80 ? 1
            : utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i < 4 ? len - i : 4), &cp);
        if (k > 0) {
            memcpy(o + n, p + i, (size_t)k);
            n += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(o + n, "\xEF\xBF\xBD", 3); /* one U+FFFD per bad byte */
            n += 3;
            i++;
            bad++;
        }
    }
    o[n] = 0;
    *out = o, *outlen = n, *nbad = bad;
    return 0;
}

/* ---- character classes ---------------------------------------------------------- */

static int cp_at(const tk_norm *t, size_t i, utf8proc_int32_t *cp)
{
    if (t->b[i] < 0x80) {
        *cp = t->b[i];
        return 1;
    }
    utf8proc_ssize_t k = utf8proc_iterate(t->b + i, (utf8proc_ssize_t)(t->n - i < 4 ? t->n - i : 4), cp);
    if (k <= 0) { /* cannot happen on checked text; treat as one byte */
        *cp = 0xFFFD;
        return 1;
    }
    return (int)k;
}

/* Unicode White_Space, as Rust's char::is_whitespace. */
static int is_ws(utf8proc_int32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

#include "tok_hf_unicode.h"

/* The category tokenizers' BERT normalizer and pre-tokenizer see: theirs
 * come from older Unicode tables, so code points assigned since are still
 * unassigned there (tok_hf_unicode.h lists where the two differ). */
static utf8proc_category_t hf_category(utf8proc_int32_t c)
{
    size_t lo = 0, hi = sizeof tk_hf_unicode / sizeof *tk_hf_unicode;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < tk_hf_unicode[mid].lo)
            hi = mid;
        else if (c > tk_hf_unicode[mid].hi)
            lo = mid + 1;
        else
            return (utf8proc_category_t)tk_hf_unicode[mid].cat;
    }
    return utf8proc_category(c);
}

/* What BertNormalizer's clean_text drops: the Other categories Cc, Cf, Co
 * and Cs, but not Cn: tokenizers keeps unassigned code points (and
 * noncharacters such as U+FFFF), so a word holding one becomes [UNK]. */
static int is_control(utf8proc_int32_t c)
{
    if (c == '\t' || c == '\n' || c == '\r')
        return 0;
    utf8proc_category_t k = hf_category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
           k == UTF8PROC_CATEGORY_CS;
}

/* The CJK ideograph blocks BERT surrounds with spaces. */
static int is_chinese(utf8proc_int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_bert_punct(utf8proc_int32_t c)
{
    if (c < 128)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126);
    utf8proc_category_t k = hf_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* Full lowercase mapping of one character (Rust's char::to_lowercase):
 * the simple mapping except U+0130, which becomes "i" + U+0307. */
static int lower_utf8(utf8proc_int32_t c, uint8_t *o)
{
    if (c == 0x130) {
        memcpy(o, "i\xCC\x87", 3);
        return 3;
    }
    return (int)utf8proc_encode_char(utf8proc_tolower(c), o);
}

/* ---- normalizers ------------------------------------------------------------ */

#define NF_STACK 64

/* Normalizes one grapheme cluster [s, e) of in; output bytes map to the
 * cluster's span unless the cluster is unchanged. */
static int nf_cluster(const tk_norm *in, size_t s, size_t e, int opts, tk_norm *out)
{
    utf8proc_int32_t stack[NF_STACK], *buf = stack;
    utf8proc_ssize_t cap = NF_STACK;
    for (;;) {
        utf8proc_ssize_t k = utf8proc_decompose(in->b + s, (utf8proc_ssize_t)(e - s), buf, cap,
                                                (utf8proc_option_t)opts);
        if (k < 0) {
            if (buf != stack)
                free(buf);
            return -1;
        }
        if (k > cap) {
            if (buf != stack)
                free(buf);
            cap = k;
            buf = malloc((size_t)cap * sizeof *buf);
            if (!buf)
                return -1;
            continue;
        }
        if (opts & UTF8PROC_COMPOSE)
            k = utf8proc_normalize_utf32(buf, k, (utf8proc_option_t)opts);
        uint8_t tmp[4 * NF_STACK], *enc = tmp;
        if ((size_t)k > NF_STACK && !(enc = malloc((size_t)k * 4))) {
            if (buf != stack)
                free(buf);
            return -1;
        }
        size_t n = 0;
        for (utf8proc_ssize_t i = 0; i < k; i++)
            n += (size_t)utf8proc_encode_char(buf[i], enc + n);
        int rc;
        if (n == e - s && !memcmp(enc, in->b + s, n))
            rc = copy_span(out, in, s, e);
        else
            rc = tk_norm_push(out, enc, n, in->al[2 * s], in->al[2 * (e - 1) + 1]);
        if (enc != tmp)
            free(enc);
        if (buf != stack)
            free(buf);
        return rc;
    }
}

static int nf(const tk_norm *in, int opts, tk_norm *out)
{
    size_t i = 0;
    utf8proc_int32_t prev = -1, state = 0;
    size_t cs = 0;
    while (i < in->n) {
        utf8proc_int32_t cp;
        int k = cp_at(in, i, &cp);
        if (prev >= 0 && utf8proc_grapheme_break_stateful(prev, cp, &state)) {
            /* a lone ASCII character is already normalized in every form */
            int rc = (i - cs == 1 && in->b[cs] < 0x80) ? copy_span(out, in, cs, i)
                                                       : nf_cluster(in, cs, i, opts, out);
            if (rc)
                return -1;
            cs = i;
        }
        prev = cp;
        i += (size_t)k;
    }
    if (i > cs)
        return (i - cs == 1 && in->b[cs] < 0x80) ? copy_span(out, in, cs, i)
                                                  : nf_cluster(in, cs, i, opts, out);
    return 0;
}

static int bert_normalize(const tk_normalizer *nz, const tk_norm *in, tk_norm *out)
{
    int strip = nz->strip_accents;
    for (size_t i = 0; i < in->n;) {
        utf8proc_int32_t cp;
        int k = cp_at(in, i, &cp);
        int64_t s = in->al[2 * i], e = in->al[2 * (i + (size_t)k - 1) + 1];
        i += (size_t)k;
        if (nz->clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp))
                continue;
            if (is_ws(cp))
                cp = ' ';
        }
        uint8_t o[64];
        size_t n = 0;
        int cjk = nz->chinese && is_chinese(cp);
        if (cjk)
            o[n++] = ' ';
        utf8proc_int32_t parts[16];
        utf8proc_ssize_t np = 1;
        parts[0] = cp;
        if (strip && cp >= 0x80) {
            int last = 0;
            np = utf8proc_decompose_char(cp, parts, 16, UTF8PROC_DECOMPOSE, &last);
            if (np < 0 || np > 16)
                parts[0] = cp, np = 1;
        }
        for (utf8proc_ssize_t j = 0; j < np; j++) {
            if (strip && hf_category(parts[j]) == UTF8PROC_CATEGORY_MN)
                continue;
            if (nz->lowercase)
                n += (size_t)lower_utf8(parts[j], o + n);
            else
                n += (size_t)utf8proc_encode_char(parts[j], o + n);
        }
        if (cjk)
            o[n++] = ' ';
        if (tk_norm_push(out, o, n, s, e))
            return -1;
    }
    return 0;
}

int tk_normalize(ak_tokenizer *tk, const tk_normalizer *nz, const tk_norm *in, tk_norm *out,
                 ak_err *err)
{
    out->n = 0;
    int rc = 0;
    switch (nz->type) {
    case TN_NFC: rc = nf(in, UTF8PROC_STABLE | UTF8PROC_COMPOSE, out); break;
    case TN_NFD: rc = nf(in, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, out); break;
    case TN_NFKC: rc = nf(in, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out); break;
    case TN_NFKD: rc = nf(in, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out); break;
    case TN_BERT: rc = bert_normalize(nz, in, out); break;
    case TN_LOWER:
    case TN_STRIP_ACCENTS:
        for (size_t i = 0; i < in->n && !rc;) {
            utf8proc_int32_t cp;
            int k = cp_at(in, i, &cp);
            int64_t s = in->al[2 * i], e = in->al[2 * (i + (size_t)k - 1) + 1];
            uint8_t o[8];
            if (nz->type == TN_LOWER)
                rc = tk_norm_push(out, o, (size_t)lower_utf8(cp, o), s, e);
            else if (hf_category(cp) < UTF8PROC_CATEGORY_MN || hf_category(cp) > UTF8PROC_CATEGORY_ME)
                rc = copy_span(out, in, i, i + (size_t)k);
            i += (size_t)k;
        }
        break;
    case TN_PREPEND:
        if (in->n) {
            utf8proc_int32_t cp;
            int k = cp_at(in, 0, &cp);
            rc = tk_norm_push(out, (const uint8_t *)nz->a, nz->alen, in->al[0], in->al[2 * (k - 1) + 1]);
            if (!rc)
                rc = copy_span(out, in, 0, in->n);
        }
        break;
    case TN_REPLACE: {
        size_t i = 0, last = 0;
        while (!rc && nz->alen && i + nz->alen <= in->n) {
            const uint8_t *f = memmem(in->b + i, in->n - i, nz->a, nz->alen);
            if (!f)
                break;
            size_t at = (size_t)(f - in->b);
            rc = copy_span(out, in, last, at);
            if (!rc)
                rc = tk_norm_push(out, (const uint8_t *)nz->b, nz->blen, in->al[2 * at],
                                  in->al[2 * (at + nz->alen - 1) + 1]);
            i = last = at + nz->alen;
        }
        if (!rc)
            rc = copy_span(out, in, last, in->n);
        break;
    }
    default:
        return ak_fail(err, AK_EINTERNAL, "unknown normalizer %d", nz->type);
    }
    return rc ? ak_fail(err, AK_ENOMEM, "out of memory while normalizing") : 0;
}

/* ---- pre-tokenizers ----------------------------------------------------------- */

/* Applies a split behaviour to the segments of one piece: seg[i] is
 * [s,e) with delim flag. */
typedef struct seg { size_t s, e; int delim; } seg;

static int emit_behavior(int behavior, const seg *sg, size_t n, tk_spans *out)
{
    size_t i = 0;
    while (i < n) {
        size_t s = sg[i].s, e = sg[i].e;
        int d = sg[i].delim;
        i++;
        switch (behavior) {
        case TB_REMOVED:
            if (d)
                continue;
            break;
        case TB_ISOLATED:
            break;
        case TB_CONTIGUOUS:
            while (d && i < n && sg[i].delim)
                e = sg[i++].e;
            break;
        case TB_MERGED_PREV:
            /* a delimiter joins the piece before it */
            if (!d && i < n && sg[i].delim)
                e = sg[i++].e;
            break;
        case TB_MERGED_NEXT:
            if (d && i < n && !sg[i].delim)
                e = sg[i++].e;
            break;
        }
        if (e > s && tk_spans_push(out, s, e))
            return -1;
    }
    return 0;
}

static int push_seg(seg **v, size_t *n, size_t *cap, size_t s, size_t e, int delim)
{
    if (e <= s)
        return 0;
    if (ak_grow((void **)v, cap, *n + 1, sizeof **v))
        return -1;
    (*v)[(*n)++] = (seg){s, e, delim};
    return 0;
}

#define BATCH 4096

/* Where a batch of segments can be cut without changing what the
 * behaviour does across the cut: 0 = nowhere yet. */
static size_t cut_point(int behavior, const seg *sg, size_t n)
{
    if (behavior == TB_ISOLATED || behavior == TB_REMOVED)
        return n;
    for (size_t k = n - 1; k > 0; k--) {
        if (behavior == TB_MERGED_NEXT ? !sg[k - 1].delim : !sg[k].delim)
            return k;
    }
    return 0;
}

int tk_pretokenize(ak_tokenizer *tk, const tk_pretok *p, const tk_norm *t, const tk_spans *in,
                   tk_spans *out, tk_sink sink, void *ctx, ak_err *err)
{
    out->n = 0;
    seg *sg = NULL;
    size_t ns = 0, cap = 0;
    int rc = 0;
#define FLUSH_OUT() do { if (out->n >= BATCH && (rc = sink(ctx, out, err))) goto done; } while (0)
    for (size_t pi = 0; pi < in->n; pi++) {
        size_t s = in->v[pi].s, e = in->v[pi].e;
        ns = 0;
        if (p->type == TP_SPLIT) {
            size_t pos = 0, last = 0, len = e - s;
            while (pos <= len) {
                int m = p->jit ? pcre2_jit_match(p->re, t->b + s, len, pos, 0, tk->md, NULL)
                               : pcre2_match(p->re, t->b + s, len, pos, PCRE2_NO_UTF_CHECK, tk->md, NULL);
                if (m == PCRE2_ERROR_NOMATCH)
                    break;
                if (m < 0) {
                    rc = ak_fail(err, AK_EDATA, "pre-tokenizer regex failed (PCRE2 error %d)", m);
                    goto done;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tk->md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { /* empty match: step over one character */
                    if (ms >= len)
                        break;
                    size_t k = 1;
                    while (ms + k < len && (t->b[s + ms + k] & 0xC0) == 0x80)
                        k++;
                    pos = ms + k;
                    continue;
                }
                if (push_seg(&sg, &ns, &cap, s + last, s + ms, p->invert) ||
                    push_seg(&sg, &ns, &cap, s + ms, s + me, !p->invert))
                    goto oom;
                last = pos = me;
                if (ns >= BATCH) {
                    size_t k = cut_point(p->behavior, sg, ns);
                    if (k) {
                        if (emit_behavior(p->behavior, sg, k, out))
                            goto oom;
                        memmove(sg, sg + k, (ns - k) * sizeof *sg);
                        ns -= k;
                        FLUSH_OUT();
                    }
                }
            }
            if (push_seg(&sg, &ns, &cap, s + last, e, p->invert) || emit_behavior(p->behavior, sg, ns, out))
                goto oom;
            FLUSH_OUT();
        } else { /* BERT: whitespace removed, punctuation isolated; WhitespaceSplit */
            size_t ws = s;
            for (size_t i = s; i < e;) {
                utf8proc_int32_t cp;
                int k = cp_at(t, i, &cp);
                if (is_ws(cp)) {
                    if (i > ws && tk_spans_push(out, ws, i))
                        goto oom;
                    ws = i + (size_t)k;
                } else if (p->type == TP_BERT && is_bert_punct(cp)) {
                    if ((i > ws && tk_spans_push(out, ws, i)) || tk_spans_push(out, i, i + (size_t)k))
                        goto oom;
                    ws = i + (size_t)k;
                }
                i += (size_t)k;
                FLUSH_OUT();
            }
            if (e > ws && tk_spans_push(out, ws, e))
                goto oom;
            FLUSH_OUT();
        }
    }
    if (out->n)
        rc = sink(ctx, out, err);
done:
    free(sg);
    return rc;
oom:
    free(sg);
    return ak_fail(err, AK_ENOMEM, "out of memory while pre-tokenizing");
#undef FLUSH_OUT
}
