/* prune.c - policies, selection under a budget, and the
 * document rewritten to the kept tokens (see prune.h). */
#include "prune_doc.h"
#include "prune_lm.h"
#include "stream/check.h"
#include "attnkit/segment.h"
#include "attnkit/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- units ---- */

int ak_sentence_ids(const uint8_t *text, size_t len, const int64_t *offsets,
                    int64_t T, int32_t *ids, ak_err *err)
{
    int rc = ak_offsets_in_text(len, offsets, T, err);
    if (rc)
        return rc;
    /* the sentences of tokenize --segments sentence (segment.h) */
    int64_t *starts;
    size_t n;
    if ((rc = ak_text_blocks((const char *)text, len, AK_SEG_SENTENCE, &starts, &n, err)))
        return rc;
    ak_token_blocks((const char *)text, len, offsets, (size_t)T, starts, n, ids);
    free(starts);
    for (int64_t i = 0; i < T; i++)
        if (offsets[2 * i] == offsets[2 * i + 1])
            ids[i] = -1;
    return 0;
}

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Han, Hiragana, Katakana: scripts written without spaces, where each
 * character is a unit of its own. */
static int cjk(uint32_t c)
{
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x2FFFF);
}

/* The code point of the UTF-8 sequence at text[i] (0 if i is not at the
 * start of a whole sequence). */
static uint32_t cp_at(const uint8_t *t, size_t len, size_t i)
{
    uint8_t b = t[i];
    int n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || i + (size_t)n > len)
        return 0;
    uint32_t c = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; k++) {
        if ((t[i + (size_t)k] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (t[i + (size_t)k] & 0x3F);
    }
    return c;
}

/* A boundary at byte a between two CJK characters (a at a character start). */
static int cjk_boundary(const uint8_t *t, size_t len, int64_t a)
{
    if (a <= 0 || (size_t)a >= len || (t[a] & 0xC0) == 0x80)
        return 0;
    int64_t p = a - 1;
    while (p > 0 && a - p < 4 && (t[p] & 0xC0) == 0x80)
        p--;
    return cjk(cp_at(t, len, (size_t)a)) && cjk(cp_at(t, len, (size_t)p));
}

int ak_word_ids(const uint8_t *text, size_t len, const int64_t *offsets, int64_t T,
                int32_t *ids, ak_err *err)
{
    int rc = ak_offsets_in_text(len, offsets, T, err);
    if (rc)
        return rc;
    int32_t word = -1;
    int64_t prev_end = -1; /* end of the last token that covered text */
    for (int64_t i = 0; i < T; i++) {
        int64_t a = offsets[2 * i], b = offsets[2 * i + 1];
        if (a == b) {
            ids[i] = -1;
            continue;
        }
        int joins = prev_end >= 0 && a <= prev_end && !is_space(text[a]) &&
                    !is_space(text[prev_end - 1]) && !(a == prev_end && cjk_boundary(text, len, a));
        if (!joins)
            word++;
        ids[i] = word;
        if (b > prev_end || !joins)
            prev_end = b;
    }
    return 0;
}

int ak_number_words(const uint8_t *text, size_t len, const int64_t *offsets, int64_t T,
                    int32_t *ids, ak_err *err)
{
    int rc = ak_offsets_in_text(len, offsets, T, err);
    if (rc)
        return rc;
    int32_t nw = -1;
    for (int64_t i = 0; i < T; i++)
        if (ids[i] > nw)
            nw = ids[i];
    nw++;
    /* each word's byte span */
    int64_t *a = malloc(((size_t)nw + 1) * sizeof *a), *b = malloc(((size_t)nw + 1) * sizeof *b);
    int32_t *to = malloc(((size_t)nw + 1) * sizeof *to);
    if (!a || !b || !to) {
        free(a), free(b), free(to);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    for (int32_t w = 0; w < nw; w++)
        a[w] = INT64_MAX, b[w] = -1;
    for (int64_t i = 0; i < T; i++) {
        int32_t w = ids[i];
        if (w < 0)
            continue;
        if (offsets[2 * i] < a[w]) a[w] = offsets[2 * i];
        if (offsets[2 * i + 1] > b[w]) b[w] = offsets[2 * i + 1];
    }
    int32_t cur = -1;
    int prev_digit = 0, prev_cap = 0, prev_end = 1;
    for (int32_t w = 0; w < nw; w++) {
        if (b[w] < 0) { /* an id no token holds */
            to[w] = -1;
            continue;
        }
        int digit = 0, cap = 0;
        int64_t s = a[w];
        while (s < b[w] && (text[s] == '(' || text[s] == '"' || text[s] == '\'' || text[s] == '['))
            s++;
        cap = s < b[w] && text[s] >= 'A' && text[s] <= 'Z';
        for (int64_t k = a[w]; k < b[w] && !digit; k++)
            digit = text[k] >= '0' && text[k] <= '9';
        int join = cur >= 0 && !prev_end &&
                   (prev_digit || (digit && (prev_cap || prev_digit)) || (cap && prev_cap));
        if (!join)
            cur++;
        to[w] = cur;
        uint8_t last = b[w] > a[w] ? text[b[w] - 1] : ' ';
        prev_digit = digit;
        prev_cap = cap;
        prev_end = last == '.' || last == ';' || last == ':' || last == '!' || last == '?' ||
                   last == ')' || last == ']';
    }
    for (int64_t i = 0; i < T; i++)
        if (ids[i] >= 0)
            ids[i] = to[ids[i]];
    free(a), free(b), free(to);
    return 0;
}

int ak_kept_text(const uint8_t *text, size_t len, const int64_t *dropped, int64_t n,
                 char **out, size_t *outlen, ak_err *err)
{
    /* pass 1: the text with each cut as one space flagged in cut[] (1, or
     * 2 for a cut spanning a blank line) */
    size_t cap = len + (size_t)n + 2;
    char *raw = malloc(cap), *o = NULL;
    uint8_t *cutf = calloc(cap, 1);
    if (!raw || !cutf) {
        free(raw);
        free(cutf);
        return ak_fail(err, AK_ENOMEM, "out of memory for %zu bytes of text", len);
    }
    size_t r = 0, pos = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t a = dropped[2 * k], b = dropped[2 * k + 1];
        if (a < (int64_t)pos || b < a || (size_t)b > len) {
            free(raw);
            free(cutf);
            return ak_fail(err, AK_EDATA, "dropped span %lld [%lld, %lld) is not a sorted span "
                           "of the %zu bytes of text", (long long)k, (long long)a, (long long)b, len);
        }
        memcpy(raw + r, text + pos, (size_t)a - pos);
        r += (size_t)a - pos;
        int para = 0;
        for (int64_t i = a, nl = 0; i < b && !para; i++) {
            if (text[i] == '\n')
                nl++;
            else if (!is_space(text[i]))
                nl = 0;
            para = nl >= 2;
        }
        if (b > a) {
            cutf[r] = para ? 2 : 1;
            raw[r++] = ' ';
        }
        pos = (size_t)b;
    }
    memcpy(raw + r, text + pos, len - pos);
    r += len - pos;
    /* pass 2: runs of white space and cuts */
    if (!(o = malloc(r + 2))) {
        free(raw);
        free(cutf);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    size_t w = 0;
    for (size_t i = 0; i < r;) {
        if (!is_space((uint8_t)raw[i])) {
            o[w++] = raw[i++];
            continue;
        }
        int nl = 0, cut = 0;
        for (; i < r && is_space((uint8_t)raw[i]); i++) {
            nl += raw[i] == '\n' ? 1 : cutf[i] == 2 ? 2 : 0;
            cut |= cutf[i] != 0;
        }
        if (w == 0 || i == r)
            continue; /* leading or trailing */
        if (cut && nl < 2 && strchr(",.;:!?", raw[i]))
            continue;
        if (nl >= 2) {
            o[w++] = '\n';
            o[w++] = '\n';
        } else {
            o[w++] = nl ? '\n' : ' ';
        }
    }
    free(cutf);
    free(raw);
    if (w)
        o[w++] = '\n';
    o[w] = 0;
    *out = o;
    *outlen = w;
    return 0;
}

/* ---- rewriting the document ---- */

static int dropped_tensor_name(const char *n)
{
    return strncmp(n, "attn.", 5) == 0 || strncmp(n, "kv.", 3) == 0 ||
           strcmp(n, "hidden") == 0 || strcmp(n, "hidden.final") == 0 ||
           strcmp(n, "logits") == 0 || strcmp(n, "token.surprisal") == 0;
}

/* Reduces a per-token tensor t (first dimension T) to the kept rows. */
static int reduce_rows(ak_doc *d, const char *name, const uint8_t *keep, int64_t T,
                       int64_t nkept, ak_err *err)
{
    ak_tensor *t = ak_doc_get(d, name);
    if (!t)
        return 0;
    if (t->ndim < 1 || t->shape[0] != T)
        return ak_fail(err, AK_EDATA, "%s: %s has %lld rows, tokens has %lld", d->id, name,
                       t->ndim ? (long long)t->shape[0] : -1LL, (long long)T);
    int64_t shape[AK_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = nkept;
    ak_tensor *n = ak_tensor_new(name, t->dtype, t->ndim, shape, err);
    if (!n)
        return err && err->code ? err->code : AK_ENOMEM;
    size_t row = T ? t->nbytes / (size_t)T : 0;
    char *dst = n->data;
    for (int64_t i = 0; i < T; i++)
        if (keep[i]) {
            memcpy(dst, (const char *)t->data + (size_t)i * row, row);
            dst += row;
        }
    return ak_doc_put(d, n, err);
}

typedef struct span {
    int64_t a, b;
    double score;
    int64_t n;
} span;

static int span_cmp(const void *pa, const void *pb)
{
    const span *a = pa, *b = pb;
    return a->a < b->a ? -1 : a->a > b->a ? 1 : (a->b < b->b ? -1 : a->b > b->b);
}

int ak_prune_apply(ak_doc *d, const uint8_t *keep, const float *token_score, ak_err *err)
{
    ak_err scratch;
    if (!err)
        err = &scratch;
    ak_tensor *tok, *off;
    int rc = ak_doc_tokens(d, &tok, &off, err);
    if (rc)
        return rc;
    int64_t T = tok->shape[0];
    ak_tensor *old_keep = ak_doc_get(d, "keep");
    int64_t T0 = T;
    if (old_keep) {
        if (old_keep->dtype != AK_U8 || old_keep->ndim != 1)
            return ak_fail(err, AK_EDATA, "%s: keep is not u8 [T0]", d->id);
        T0 = old_keep->shape[0];
        int64_t ones = 0;
        for (int64_t i = 0; i < T0; i++)
            ones += ak_tensor_u8(old_keep)[i] != 0;
        if (ones != T)
            return ak_fail(err, AK_EDATA, "%s: keep marks %lld tokens kept, tokens has %lld",
                           d->id, (long long)ones, (long long)T);
    }
    /* dropped spans: runs of dropped tokens, plus the ones from before */
    ak_tensor *old_drop = ak_doc_get(d, "dropped");
    ak_tensor *old_dscore = ak_doc_get(d, "dropped.score");
    int64_t nold = 0;
    if (old_drop) {
        if (old_drop->dtype != AK_I64 || old_drop->ndim != 2 || old_drop->shape[1] != 2 ||
            !old_dscore || old_dscore->dtype != AK_F32 || old_dscore->ndim != 1 ||
            old_dscore->shape[0] != old_drop->shape[0])
            return ak_fail(err, AK_EDATA, "%s: dropped / dropped.score malformed", d->id);
        nold = old_drop->shape[0];
    }
    span *sp = malloc(sizeof *sp * ((size_t)T + (size_t)nold + 1));
    if (!sp)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    size_t ns = 0;
    const int64_t *o = ak_tensor_i64(off);
    int64_t nkept = 0;
    for (int64_t i = 0; i < T; i++) {
        if (keep[i]) {
            nkept++;
            continue;
        }
        if (o[2 * i] == o[2 * i + 1])
            continue;
        double s = token_score ? token_score[i] : 0;
        if (ns && i > 0 && !keep[i - 1] && sp[ns - 1].n > 0 && o[2 * i] >= sp[ns - 1].a) {
            span *p = &sp[ns - 1];
            if (o[2 * i + 1] > p->b)
                p->b = o[2 * i + 1];
            p->score += s;
            p->n++;
        } else {
            sp[ns++] = (span){o[2 * i], o[2 * i + 1], s, 1};
        }
    }
    for (size_t k = 0; k < ns; k++)
        sp[k].score /= (double)sp[k].n;
    for (int64_t k = 0; k < nold; k++) {
        const int64_t *od = ak_tensor_i64(old_drop);
        sp[ns++] = (span){od[2 * k], od[2 * k + 1], ak_tensor_f32(old_dscore)[k], 1};
    }
    qsort(sp, ns, sizeof *sp, span_cmp);
    size_t nm = 0;
    for (size_t k = 0; k < ns; k++) {
        if (nm && sp[k].a <= sp[nm - 1].b) {
            span *p = &sp[nm - 1];
            if (sp[k].b > p->b)
                p->b = sp[k].b;
            p->score = (p->score * (double)p->n + sp[k].score * (double)sp[k].n) /
                       (double)(p->n + sp[k].n);
            p->n += sp[k].n;
        } else {
            sp[nm++] = sp[k];
        }
    }
    int64_t dshape[2] = {(int64_t)nm, 2}, sshape[1] = {(int64_t)nm}, kshape[1] = {T0};
    ak_tensor *dt = ak_tensor_new("dropped", AK_I64, 2, dshape, err);
    ak_tensor *st = ak_tensor_new("dropped.score", AK_F32, 1, sshape, err);
    ak_tensor *kt = ak_tensor_new("keep", AK_U8, 1, kshape, err);
    if (!dt || !st || !kt) {
        free(sp);
        ak_tensor_free(dt);
        ak_tensor_free(st);
        ak_tensor_free(kt);
        return err->code;
    }
    for (size_t k = 0; k < nm; k++) {
        ak_tensor_i64(dt)[2 * k] = sp[k].a;
        ak_tensor_i64(dt)[2 * k + 1] = sp[k].b;
        ak_tensor_f32(st)[k] = (float)sp[k].score;
    }
    free(sp);
    uint8_t *kk = ak_tensor_u8(kt);
    if (old_keep) {
        const uint8_t *ok = ak_tensor_u8(old_keep);
        for (int64_t i = 0, j = 0; i < T0; i++)
            kk[i] = ok[i] ? keep[j++] != 0 : 0;
    } else {
        for (int64_t i = 0; i < T; i++)
            kk[i] = keep[i] != 0;
    }
    rc = 0;
    static const char *const rows[] = {"tokens", "offsets", "segments", "special",
                                       "token_types", "score.token"};
    for (size_t k = 0; k < sizeof rows / sizeof *rows && !rc; k++)
        rc = reduce_rows(d, rows[k], keep, T, nkept, err);
    if (rc) {
        ak_tensor_free(dt);
        ak_tensor_free(st);
        ak_tensor_free(kt);
        return rc;
    }
    for (size_t k = 0; k < d->ntensors;) {
        if (dropped_tensor_name(d->tensors[k]->name))
            ak_doc_drop(d, d->tensors[k]->name);
        else
            k++;
    }
    if ((rc = ak_doc_put(d, kt, err))) {
        ak_tensor_free(dt);
        ak_tensor_free(st);
        return rc;
    }
    if ((rc = ak_doc_put(d, dt, err))) {
        ak_tensor_free(st);
        return rc;
    }
    return ak_doc_put(d, st, err);
}

/* ---- one document, as the prune program runs it ---- */

/* Tokens of text[a, b) under tk. */
static int count_tokens(ak_tokenizer *tk, const uint8_t *text, int64_t a, int64_t b,
                        int64_t *n, ak_err *err)
{
    *n = 0;
    if (b <= a)
        return 0;
    ak_encoding enc = {0};
    int rc = ak_tokenizer_encode(tk, (const char *)text + a, (size_t)(b - a), a, &enc, err);
    *n = (int64_t)enc.n;
    ak_encoding_free(&enc);
    return rc;
}

static int score_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* --unit-score max / top K and --sinks: each unit's score from its
 * tokens' scores (the sinks' left out; a unit of sinks only scores 0). */
static int unit_scores(const ak_prune_doc_opts *c, const ak_doc *d, struct prune_prep *p, ak_err *err)
{
    if (!p->score || p->unit_score)
        return ak_fail(err, AK_EUSAGE, "--unit-score and --sinks need token scores; policy %s "
                       "scores %s (document '%s')", ak_policy_name(p->opts.policy),
                       p->unit_score ? "whole blocks" : "nothing", d->id);
    if (c->unit_agg == AK_UAGG_TOP && c->unit_topk < 1)
        return ak_fail(err, AK_EUSAGE, "--unit-score top: k must be at least 1");
    int64_t T = p->T, nu = p->nunits;
    struct prune_work *w = &p->w;
    int64_t *start = calloc((size_t)nu + 1, sizeof *start), *len = calloc((size_t)nu + 1, sizeof *len);
    float *buf = malloc(((size_t)T + 1) * sizeof *buf);
    w->unit_score = calloc((size_t)nu + 1, sizeof *w->unit_score);
    if (!start || !len || !buf || !w->unit_score) {
        free(start), free(len), free(buf);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    /* the scored tokens of each unit, gathered unit by unit */
    for (int64_t i = 0; i < T; i++)
        if (w->unit[i] >= 0 && i >= c->sinks && !(p->special && p->special[i]))
            len[w->unit[i]]++;
    for (int64_t k = 1; k < nu; k++)
        start[k] = start[k - 1] + len[k - 1];
    memset(len, 0, ((size_t)nu + 1) * sizeof *len);
    for (int64_t i = 0; i < T; i++) {
        int32_t k = w->unit[i];
        if (k >= 0 && i >= c->sinks && !(p->special && p->special[i]))
            buf[start[k] + len[k]++] = p->score[i];
    }
    for (int64_t k = 0; k < nu; k++) {
        float *x = buf + start[k];
        int64_t n = len[k];
        double s = 0;
        if (n && c->unit_agg == AK_UAGG_MEAN) {
            for (int64_t i = 0; i < n; i++)
                s += x[i];
            s /= (double)n;
        } else if (n) {
            qsort(x, (size_t)n, sizeof *x, score_desc);
            int64_t m = c->unit_agg == AK_UAGG_MAX ? 1 : (c->unit_topk < n ? c->unit_topk : n);
            for (int64_t i = 0; i < m; i++)
                s += x[i];
            s /= (double)m;
        }
        w->unit_score[k] = (float)s;
    }
    free(start), free(len), free(buf);
    p->unit_score = w->unit_score;
    return 0;
}

/* The document's inputs (tokens, offsets, text, segments, special), the
 * policy (score when the document has score.token and none was given,
 * else mass) and its options, and the work arrays. */
static int prep_inputs(ak_doc *d, const ak_prune_doc_opts *c, struct prune_prep *p, ak_err *err)
{
    int rc = ak_prune_check_doc(d, err);
    if (rc || (rc = ak_doc_tokens(d, &p->tok, &p->off, err)))
        return rc;
    if (!(p->text = ak_doc_need(d, "text", AK_U8, 1, err)))
        return err->code;
    int64_t T = p->T = p->tok->shape[0];
    if ((rc = ak_doc_segments(d, T, &p->seg, err)))
        return rc;
    const int32_t *seg = p->seg;
    ak_tensor *sp = ak_doc_get(d, "special");
    if (sp) {
        if (sp->dtype != AK_U8 || sp->ndim != 1 || sp->shape[0] != T)
            return ak_fail(err, AK_EDATA, "document '%s': special is not u8 [%lld]", d->id,
                           (long long)T);
        p->special = ak_tensor_u8(sp);
    }
    if (!seg && (c->o.unit == AK_UNIT_BLOCK || c->protect_first || c->protect_last))
        return ak_fail(err, AK_EDATA, "document '%s' has no segments (needed by %s)", d->id,
                       c->o.unit == AK_UNIT_BLOCK ? "--unit block" : "--protect");
    p->txt = ak_tensor_u8(p->text);
    p->tlen = p->text->nbytes;
    p->o = ak_tensor_i64(p->off);

    p->opts = c->o;
    if (!c->policy_set)
        p->opts.policy = ak_doc_get(d, "score.token") ? AK_POLICY_SCORE : AK_POLICY_MASS;
    ak_policy pol = p->opts.policy;
    if (c->layers_set && !ak_policy_uses_layers(pol))
        return ak_fail(err, AK_EUSAGE, "--layers: policy %s does not use layers (document '%s')",
                       ak_policy_name(pol), d->id);
    if (c->agg_set && !ak_policy_uses_agg(pol))
        return ak_fail(err, AK_EUSAGE, "--agg: policy %s does not aggregate heads (document '%s')",
                       ak_policy_name(pol), d->id);

    struct prune_work *w = &p->w;
    size_t n = (size_t)T + 1;
    w->unit = malloc(n * sizeof *w->unit);
    w->protect = calloc(n, 1);
    w->keep = calloc(n, 1);
    w->query = calloc(n, 1);
    w->score = calloc(n, sizeof *w->score);
    w->kept_score = calloc(n, sizeof *w->kept_score);
    if (!w->unit || !w->protect || !w->keep || !w->query || !w->score || !w->kept_score)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (seg && (rc = ak_block_count(seg, T, &p->nblocks, err)))
        return rc;
    return 0;
}

/* The unit of every token: itself, its block, sentence or word (-1
 * outside every block). */
static int prep_units(const ak_prune_doc_opts *c, struct prune_prep *p, ak_err *err)
{
    struct prune_work *w = &p->w;
    const int32_t *seg = p->seg;
    const uint8_t *txt = p->txt;
    size_t tlen = p->tlen;
    const int64_t *o = p->o;
    int64_t T = p->T;
    int rc = 0;
    p->nunits = T;
    if (p->opts.unit == AK_UNIT_TOKEN) {
        for (int64_t i = 0; i < T; i++)
            w->unit[i] = (int32_t)i;
    } else if (p->opts.unit == AK_UNIT_BLOCK) {
        memcpy(w->unit, seg, (size_t)T * sizeof *w->unit);
        p->nunits = p->nblocks;
    } else {
        rc = p->opts.unit == AK_UNIT_WORD ? ak_word_ids(txt, tlen, o, T, w->unit, err)
                                          : ak_sentence_ids(txt, tlen, o, T, w->unit, err);
        if (!rc && p->opts.unit == AK_UNIT_WORD && c->keep_numbers)
            rc = ak_number_words(txt, tlen, o, T, w->unit, err);
        if (rc)
            return rc;
        p->nunits = 0;
        for (int64_t i = 0; i < T; i++)
            if (w->unit[i] + 1 > p->nunits)
                p->nunits = w->unit[i] + 1;
    }
    if (seg)
        for (int64_t i = 0; i < T; i++)
            if (seg[i] < 0)
                w->unit[i] = -1;
    return 0;
}

/* Protection: the spans asked for, and the question (the query span,
 * which the query, similarity and qppl policies rank by). */
static int prep_protect(const ak_prune_doc_opts *c, const ak_doc *d, struct prune_prep *p,
                        ak_err *err)
{
    struct prune_work *w = &p->w;
    const int32_t *seg = p->seg;
    const uint8_t *txt = p->txt;
    size_t tlen = p->tlen;
    const int64_t *o = p->o;
    int64_t T = p->T;
    ak_policy pol = p->opts.policy;
    int rc = 0;
    if (c->protect_first)
        ak_protect_block_end(seg, T, 0, w->protect);
    if (c->protect_last)
        ak_protect_block_end(seg, T, 1, w->protect);
    for (int k = 0; k < c->nmarkers && !rc; k++)
        rc = ak_protect_marker(txt, tlen, o, seg, T, c->markers[k], w->protect, err);
    for (int k = 0; k < c->nregexes && !rc; k++)
        rc = ak_protect_regex(txt, tlen, o, T, c->regexes[k], w->protect, err);
    if (rc)
        return rc;
    int have_query = 0, by_query = ak_policy_def_of(pol)->by_query;
    if ((by_query || !c->no_query) &&
        (rc = ak_query_span(txt, tlen, o, T, seg, p->nblocks, c->query_marker, c->query_regex,
                            w->query, &have_query, err)))
        return rc;
    if ((by_query || pol == AK_POLICY_QPPL) && !have_query) {
        int64_t i = 0;
        while (i < T && o[2 * i] == o[2 * i + 1])
            i++;
        if (i == T) /* no token covers any text: nothing to ask or to prune */
            return ak_fail(err, AK_EDATA, "document '%s' is an empty document (no text): policy "
                           "%s needs a question and text to rank", d->id, ak_policy_name(pol));
    }
    if ((by_query || pol == AK_POLICY_QPPL) && !have_query)
        return ak_fail(err, AK_EDATA, "document '%s' has no query span%s: name it with "
                       "--query-marker or --query-regex", d->id,
                       pol == AK_POLICY_QPPL ? " (policy qppl scores blocks by it)" : "");
    if (!c->no_query) /* the question survives its own pruning */
        for (int64_t i = 0; i < T; i++)
            w->protect[i] |= w->query[i];
    return 0;
}

/* Costs: the stream's tokens, or count_with's tokens of each unit's text
 * (charged to the unit's first token; a token outside units pays for its
 * own span) and of the whole text. */
static int prep_costs(const ak_prune_doc_opts *c, const ak_doc *d, struct prune_prep *p,
                      ak_err *err)
{
    struct prune_work *w = &p->w;
    const uint8_t *txt = p->txt;
    const int64_t *o = p->o;
    int64_t T = p->T;
    int rc = 0;
    if (!(w->cost = calloc((size_t)T + 1, sizeof *w->cost)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int64_t *ua = malloc(sizeof *ua * ((size_t)p->nunits + 1)),
            *ub = malloc(sizeof *ub * ((size_t)p->nunits + 1)),
            *uf = malloc(sizeof *uf * ((size_t)p->nunits + 1));
    if (!ua || !ub || !uf) {
        free(ua);
        free(ub);
        free(uf);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    for (int64_t k = 0; k < p->nunits; k++)
        ua[k] = INT64_MAX, ub[k] = -1, uf[k] = -1;
    for (int64_t i = 0; i < T && !rc; i++) {
        int32_t k = w->unit[i];
        if (o[2 * i] == o[2 * i + 1])
            continue;
        if (k < 0 || (p->special && p->special[i])) {
            rc = count_tokens(c->count_with, txt, o[2 * i], o[2 * i + 1], &w->cost[i], err);
            continue;
        }
        if (uf[k] < 0)
            uf[k] = i;
        if (o[2 * i] < ua[k]) ua[k] = o[2 * i];
        if (o[2 * i + 1] > ub[k]) ub[k] = o[2 * i + 1];
    }
    for (int64_t k = 0; k < p->nunits && !rc; k++)
        if (uf[k] >= 0)
            rc = count_tokens(c->count_with, txt, ua[k], ub[k], &w->cost[uf[k]], err);
    free(ua);
    free(ub);
    free(uf);
    if (!rc)
        rc = count_tokens(c->count_with, txt, 0, (int64_t)p->tlen, &p->total, err);
    if (rc)
        return ak_wrap(err, "document '%s': --count-with", d->id);
    return 0;
}

static int prepare(ak_doc *d, const ak_prune_doc_opts *c, struct prune_prep *p, ak_err *err)
{
    memset(p, 0, sizeof *p);
    int rc = prep_inputs(d, c, p, err);
    if (rc || (rc = prep_units(c, p, err)) || (rc = prep_protect(c, d, p, err)))
        return rc;
    /* scores */
    int64_t T = p->T;
    p->keys_per_query = (double)T;
    ak_tensor *vis = ak_doc_get(d, "attn.visible");
    if (vis && vis->dtype == AK_I32 && vis->ndim == 2 && vis->shape[1] == T && T > 0) {
        double sum = 0;
        const int32_t *v = ak_tensor_i32(vis);
        for (int64_t k = 0; k < vis->shape[0] * T; k++)
            sum += v[k];
        p->keys_per_query = sum / (double)(vis->shape[0] * T);
    }
    const ak_policy_def *def = ak_policy_def_of(p->opts.policy);
    if (def->score && (rc = def->score(c, d, p, err)))
        return rc;

    if ((c->unit_agg != AK_UAGG_MEAN || c->sinks > 0) && (rc = unit_scores(c, d, p, err)))
        return rc;

    if (c->count_with)
        return prep_costs(c, d, p, err);
    return 0;
}

static void work_free(struct prune_work *w)
{
    free(w->unit);
    free(w->protect);
    free(w->keep);
    free(w->query);
    free(w->score);
    free(w->kept_score);
    free(w->cost);
    free(w->surprisal);
    free(w->block_score);
    free(w->scored);
    free(w->unit_score);
}

static void prep_free(struct prune_prep *p) { work_free(&p->w); }

int ak_prune_doc_rank(ak_doc *d, const ak_prune_doc_opts *c, double *score, int64_t *size,
                      int64_t *floor_, ak_err *err)
{
    ak_err scratch;
    if (!err)
        err = &scratch;
    struct prune_prep p;
    int rc = prepare(d, c, &p, err);
    if (!rc) {
        double sum = 0;
        int64_t n = 0, sz = 0, fl = 0;
        for (int64_t i = 0; i < p.T; i++) {
            int64_t cost = p.w.cost ? p.w.cost[i] : 1;
            sz += cost;
            if (p.w.unit[i] < 0 || (p.special && p.special[i]) || p.w.protect[i]) {
                fl += cost;
                continue;
            }
            sum += p.score ? p.score[i] : 0;
            n++;
        }
        *score = n ? sum / (double)n * p.keys_per_query : 0;
        *size = p.w.cost ? p.total : sz;
        *floor_ = fl;
    }
    prep_free(&p);
    return rc;
}

/* full.tokens (and full.token_types, full.offsets): the tokens before the first prune,
 * for score to run the model on the full document. */
static int keep_full(ak_doc *d, ak_err *err)
{
    static const char *const src[] = {"tokens", "token_types", "offsets"},
                             *const dst[] = {"full.tokens", "full.token_types", "full.offsets"};
    for (int k = 0; k < 3; k++) {
        ak_tensor *t = ak_doc_get(d, src[k]);
        if (!t || ak_doc_get(d, dst[k]) || ak_doc_get(d, "keep"))
            continue;
        ak_tensor *c = ak_tensor_new(dst[k], t->dtype, t->ndim, t->shape, err);
        if (!c)
            return err->code ? err->code : AK_ENOMEM;
        memcpy(c->data, t->data, t->nbytes);
        int rc = ak_doc_put(d, c, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int i64pair_cmp(const void *pa, const void *pb)
{
    const int64_t *a = pa, *b = pb;
    return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : (a[1] < b[1] ? -1 : a[1] > b[1]);
}

/* count_with's tokens of the clean text (ak_kept_text) that keeping keep[T]
 * would leave, with the spans earlier prunes dropped. */
static int measure_kept(const ak_doc *d, const struct prune_prep *p, ak_tokenizer *tk,
                        const uint8_t *keep, int64_t *n, ak_err *err)
{
    ak_tensor *od = ak_doc_get(d, "dropped");
    int64_t nold = od && od->dtype == AK_I64 && od->ndim == 2 && od->shape[1] == 2 ? od->shape[0] : 0;
    int64_t *sp = malloc(sizeof *sp * 2 * (size_t)(p->T + nold + 1)), ns = 0;
    if (!sp)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    for (int64_t i = 0; i < p->T; i++) {
        int64_t a = p->o[2 * i], b = p->o[2 * i + 1];
        if (keep[i] || a == b)
            continue;
        sp[2 * ns] = a;
        sp[2 * ns++ + 1] = b;
    }
    for (int64_t k = 0; k < nold; k++) {
        sp[2 * ns] = ak_tensor_i64(od)[2 * k];
        sp[2 * ns++ + 1] = ak_tensor_i64(od)[2 * k + 1];
    }
    qsort(sp, (size_t)ns, 2 * sizeof *sp, i64pair_cmp);
    int64_t nm = 0;
    for (int64_t k = 0; k < ns; k++) {
        if (nm && sp[2 * k] <= sp[2 * nm - 1]) {
            if (sp[2 * k + 1] > sp[2 * nm - 1])
                sp[2 * nm - 1] = sp[2 * k + 1];
        } else {
            sp[2 * nm] = sp[2 * k];
            sp[2 * nm++ + 1] = sp[2 * k + 1];
        }
    }
    char *kept;
    size_t klen;
    int rc = ak_kept_text(p->txt, p->tlen, sp, nm, &kept, &klen, err);
    free(sp);
    if (rc)
        return rc;
    rc = count_tokens(tk, (const uint8_t *)kept, 0, (int64_t)klen, n, err);
    free(kept);
    return rc;
}

/* The selection of ak_prune_doc: qppl --fine's two steps, or
 * ak_prune_select.  coarse_kept: what the coarse step kept (-1: none). */
static int select_units(const ak_prune_doc_opts *c, struct prune_prep *p, const ak_prune_input *in,
                        uint8_t *keep, float *kept_score, ak_prune_result *r,
                        int64_t *coarse_kept, ak_err *err)
{
    *coarse_kept = -1;
    if (p->opts.policy == AK_POLICY_QPPL && c->fine)
        return ak_prune_select_fine(in, &p->opts, p->seg, p->w.block_score, p->w.scored,
                                    p->nblocks, c->coarse > 0 ? c->coarse : 2, p->surprisal, keep,
                                    kept_score, r, coarse_kept, err);
    return ak_prune_select(in, &p->opts, keep, kept_score, r, err);
}

/* --count-with: the units' costs are counted span by span and the joined
 * text can count a little less or more; a few reselections with the
 * budget moved by the difference keep the selection whose kept text comes
 * closest to the budget from below (or, if none is below, the smallest). */
static int fit_count_with(const ak_doc *d, const ak_prune_doc_opts *c, struct prune_prep *p,
                          ak_tokenizer *tk, ak_prune_input *in, ak_prune_result *r,
                          int64_t *coarse_kept, ak_err *err)
{
    int64_t B = r->budget, m;
    int rc = measure_kept(d, p, tk, p->w.keep, &m, err);
    if (rc)
        return rc;
    size_t n = (size_t)p->T + 1;
    uint8_t *best = malloc(n), *cur = malloc(n);
    float *cur_score = malloc(n * sizeof *cur_score);
    if (!best || !cur || !cur_score) {
        free(best);
        free(cur);
        free(cur_score);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    memcpy(best, p->w.keep, n);
    int64_t best_m = m, target = B;
    int best_exact = r->exact;
    for (int k = 0; k < 4 && m != B && !rc; k++) {
        target += B - m;
        if (target < 0)
            break;
        in->budget = target;
        in->budget_set = 1;
        ak_prune_result r2;
        int64_t ck;
        if ((rc = select_units(c, p, in, cur, cur_score, &r2, &ck, err)) ||
            (rc = measure_kept(d, p, tk, cur, &m, err)))
            break;
        int better = best_m > B ? m < best_m : (m <= B && m > best_m);
        if (better) {
            memcpy(best, cur, n);
            memcpy(p->w.kept_score, cur_score, n * sizeof *cur_score);
            best_m = m;
            best_exact = r2.exact;
            *coarse_kept = ck;
        }
    }
    memcpy(p->w.keep, best, n);
    r->kept = best_m;
    r->exact = best_exact;
    free(best);
    free(cur);
    free(cur_score);
    return rc;
}

/* score.block after a policy other than score: each block's mean policy
 * score over its tokens (0 for a block without tokens), so that what reads
 * the pruned stream (report, a later prune -u block) sees the scores this
 * prune chose by, not entropy's.  NULL when there is nothing to write. */
static float *policy_block_scores(const struct prune_prep *p)
{
    if (p->opts.policy == AK_POLICY_SCORE || !p->seg || !p->score || p->nblocks <= 0)
        return NULL;
    float *b = calloc((size_t)p->nblocks, sizeof *b);
    int64_t *n = calloc((size_t)p->nblocks, sizeof *n);
    if (!b || !n) {
        free(b);
        free(n);
        return NULL;
    }
    double *sum = calloc((size_t)p->nblocks, sizeof *sum);
    if (!sum) {
        free(b);
        free(n);
        return NULL;
    }
    for (int64_t i = 0; i < p->T; i++)
        if (p->seg[i] >= 0 && p->seg[i] < p->nblocks) {
            sum[p->seg[i]] += p->score[i];
            n[p->seg[i]]++;
        }
    for (int64_t k = 0; k < p->nblocks; k++)
        b[k] = n[k] ? (float)(sum[k] / (double)n[k]) : 0.0f;
    free(sum);
    free(n);
    return b;
}

static const char *const unit_names[] = {"token", "sentence", "block", "word"};
static const char *const query_rows_names[] = {"auto", "question", "answer", "both"};

int ak_prune_doc(ak_doc *d, const ak_prune_doc_opts *c, ak_prune_result *res, ak_err *err)
{
    ak_err scratch;
    if (!err)
        err = &scratch;
    struct prune_prep p;
    ak_prune_result r;
    int rc = prepare(d, c, &p, err);
    if (rc)
        goto out;
    ak_prune_input in = {.T = p.T, .unit = p.w.unit, .special = p.special, .protect = p.w.protect,
                         .score = p.score, .unit_score = p.unit_score, .nunits = p.nunits,
                         .doc_hash = ak_hash_str(d->id), .cost = p.w.cost, .total = p.total,
                         .budget = c->budget, .budget_set = c->budget_set};
    int64_t coarse_kept;
    if ((rc = select_units(c, &p, &in, p.w.keep, p.w.kept_score, &r, &coarse_kept, err)))
        goto out;
    /* with count_with, prune_kept counts what the target LLM gets: the
     * clean kept text */
    if (c->count_with &&
        (rc = fit_count_with(d, c, &p, c->count_with, &in, &r, &coarse_kept, err))) {
        ak_wrap(err, "document '%s': --count-with", d->id);
        goto out;
    }
    float *bscore = policy_block_scores(&p);  /* before apply: p.seg and p.score are the input's */
    if ((rc = keep_full(d, err)) || (rc = ak_prune_apply(d, p.w.keep, p.w.kept_score, err))) {
        free(bscore);
        goto out;
    }
    if (bscore) {
        int64_t sh[1] = {p.nblocks};
        ak_tensor *bt = ak_tensor_new("score.block", AK_F32, 1, sh, err);
        if (bt)
            memcpy(bt->data, bscore, sizeof(float) * (size_t)p.nblocks);
        free(bscore);
        ak_doc_drop(d, "score.block");
        if (!bt || (rc = ak_doc_put(d, bt, err))) {
            rc = rc ? rc : err->code ? err->code : AK_ENOMEM;
            goto out;
        }
    }
    if (p.w.block_score) { /* qppl: the blocks' scores, in nats */
        int64_t sh[1] = {p.nblocks};
        ak_tensor *bs = ak_tensor_new("qppl.block", AK_F32, 1, sh, err);
        if (!bs) {
            rc = err->code ? err->code : AK_ENOMEM;
            goto out;
        }
        memcpy(bs->data, p.w.block_score, sizeof(float) * (size_t)p.nblocks);
        if ((rc = ak_doc_put(d, bs, err)))
            goto out;
    }
    if (ak_meta_set_str(&d->meta, "prune_policy", ak_policy_name(p.opts.policy)) ||
        ak_meta_set_str(&d->meta, "prune_unit", unit_names[p.opts.unit]) ||
        ak_meta_set_int(&d->meta, "prune_budget", r.budget) ||
        ak_meta_set_int(&d->meta, "prune_kept", r.kept) ||
        ak_meta_set_int(&d->meta, "prune_total", r.total) ||
        ak_meta_set_float(&d->meta, "prune_ratio", r.total ? (double)r.kept / (double)r.total : 0) ||
        ak_meta_set_int(&d->meta, "prune_exact", r.exact) ||
        (coarse_kept >= 0 && (ak_meta_set_int(&d->meta, "prune_fine", 1) ||
                              ak_meta_set_int(&d->meta, "prune_coarse_kept", coarse_kept))) ||
        (c->count_with &&
         ak_meta_set_str(&d->meta, "prune_count_with", ak_tokenizer_name(c->count_with))) ||
        (p.query_rows && ak_meta_set_str(&d->meta, "prune_query_rows",
                                         query_rows_names[p.query_rows])))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
    if (res)
        *res = r;
out:
    prep_free(&p);
    return rc;
}

/* ---- input checks ---- */

int ak_prune_check_doc(ak_doc *d, ak_err *err)
{
    ak_tensor *off = ak_doc_get(d, "offsets"), *text = ak_doc_get(d, "text");
    if (off && text && off->dtype == AK_I64 && off->ndim == 2 && off->shape[1] == 2 &&
        text->dtype == AK_U8 && ak_check_offsets(ak_tensor_i64(off), off->shape[0], text->nbytes, err))
        return ak_wrap(err, "document '%s'", d->id);
    for (size_t k = 0; k < d->ntensors; k++) {
        const ak_tensor *t = d->tensors[k];
        const char *n = t->name;
        double hi;
        if (!strcmp(n, "score.token") || !strcmp(n, "score.block") || !strcmp(n, "attn.entropy") ||
            !strcmp(n, "attn.mass") || !strcmp(n, "attn.mass_last") || !strcmp(n, "attn.mass_gen") ||
            !strcmp(n, "token.surprisal"))
            hi = INFINITY;
        else if (!strncmp(n, "attn.probs.", 11))
            hi = 1 + 1e-5;   /* f32 softmax rounding; .heads lists are i32 and pass */
        else
            continue;
        if (ak_check_f32_range(t, 0, hi, err))
            return ak_wrap(err, "document '%s'", d->id);
    }
    return 0;
}
