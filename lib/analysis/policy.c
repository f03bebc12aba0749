/* policy.c - the pruning policies: one table of what each is called,
 * reads, takes and scores by, and the scorers (see policy.h and
 * prune_doc.h). */
#include "attnkit/policy.h"
#include "prune_doc.h"
#include "attnkit/prune_embed.h"
#include "prune_lm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- attention scores ---- */

int ak_prune_scores(const ak_attn_stats *s, ak_policy p, int64_t l0, int64_t l1,
                    ak_agg agg, float *score, ak_err *err)
{
    double *w = NULL;
    if (p == AK_POLICY_ENTROPY) {
        size_t n = (size_t)(s->L * s->H);
        ak_head_summary *hs = malloc(sizeof *hs * n);
        w = malloc(sizeof *w * n);
        if (!hs || !w) {
            free(hs);
            free(w);
            return ak_fail(err, AK_ENOMEM, "out of memory");
        }
        int rc = ak_head_summaries(s, hs, err);
        if (rc) {
            free(hs);
            free(w);
            return rc;
        }
        for (size_t k = 0; k < n; k++)
            w[k] = hs[k].norm_entropy < 1 ? 1 - hs[k].norm_entropy : 0;
        free(hs);
    } else if (p != AK_POLICY_MASS && p != AK_POLICY_HEAVY) {
        return ak_fail(err, AK_EINTERNAL, "policy %s has no attention score",
                       ak_policy_name(p));
    }
    ak_token_metrics tm = {.corrected = score};
    int rc = ak_token_metrics_agg(s, l0, l1, agg, w, &tm, err);
    free(w);
    return rc;
}

int ak_query_mass(const float *p, int64_t nh, int64_t T, const uint8_t *is_query,
                  float *acc, ak_err *err)
{
    int64_t nq = 0;
    for (int64_t i = 0; i < T; i++)
        nq += is_query[i] != 0;
    if (nq == 0)
        return ak_fail(err, AK_EDATA, "the query span covers no token");
    double scale = 1.0 / ((double)nq * (double)nh);
    for (int64_t h = 0; h < nh; h++)
        for (int64_t i = 0; i < T; i++) {
            if (!is_query[i])
                continue;
            const float *row = p + (h * T + i) * T;
            for (int64_t j = 0; j < T; j++) {
                if (!isfinite(row[j]) || row[j] < 0)
                    return ak_fail(err, AK_EDATA, "probability [%lld, %lld, %lld] is %g",
                                   (long long)h, (long long)i, (long long)j, row[j]);
                acc[j] += (float)(row[j] * scale);
            }
        }
    return 0;
}

/* ---- the query policy ---- */

int ak_query_rows_from_name(const char *s, ak_query_rows *out)
{
    if (strcmp(s, "question") == 0) *out = AK_QROWS_QUESTION;
    else if (strcmp(s, "answer") == 0) *out = AK_QROWS_ANSWER;
    else if (strcmp(s, "both") == 0) *out = AK_QROWS_BOTH;
    else return -1;
    return 0;
}

int ak_rows_mass(const float *m, int64_t L, int64_t H, int64_t T, int64_t l0, int64_t l1,
                 double rows, float *score, ak_err *err)
{
    if (l1 > L - 1)
        l1 = L - 1;
    if (l0 < 0)
        l0 = 0;
    if (l0 > l1 || H < 1)
        return ak_fail(err, AK_EDATA, "no layer %lld-%lld among its %lld", (long long)l0,
                       (long long)l1, (long long)L);
    if (!(rows > 0))
        return ak_fail(err, AK_EDATA, "no query rows");
    double scale = 1.0 / (rows * (double)H * (double)(l1 - l0 + 1));
    for (int64_t l = l0; l <= l1; l++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < T; j++)
                score[j] += (float)(m[(l * H + h) * T + j] * scale);
    return 0;
}

/* A [L, H, T] mass tensor of d, or NULL when absent. */
static int rows_tensor(ak_doc *d, const char *name, int64_t T, ak_tensor **t, ak_err *err)
{
    *t = ak_doc_get(d, name);
    if (*t && ((*t)->dtype != AK_F32 || (*t)->ndim != 3 || (*t)->shape[2] != T))
        return ak_fail(err, AK_EDATA, "document '%s': %s is not f32 [L, H, %lld]", d->id, name,
                       (long long)T);
    return 0;
}

/* The rows a [L, H, T] tensor sums over: meta `key` when present, else
 * the mass of its first (layer, head), as every row sums to 1. */
static double rows_of(const ak_doc *d, ak_tensor *t, const char *key, int64_t cap)
{
    int64_t v;
    if (ak_meta_int(&d->meta, key, &v) == 0)
        return (double)(v < cap ? v : cap);
    double sum = 0;
    const float *m = ak_tensor_f32(t);
    for (int64_t j = 0; j < t->shape[2]; j++)
        sum += m[j];
    return floor(sum + 0.5);
}

/* A head selection (--heads) fits a tensor of L layers and H heads. */
static int heads_fit(const ak_prune_doc_opts *c, const ak_doc *d, const char *name, int64_t L,
                     int64_t H, ak_err *err)
{
    for (int64_t k = 0; c->heads && k < c->nheads; k++)
        if (c->heads[2 * k] >= L || c->heads[2 * k + 1] >= H)
            return ak_fail(err, AK_EDATA, "document '%s': --heads names layer %d head %d, %s has "
                           "%lld layers of %lld heads", d->id, c->heads[2 * k], c->heads[2 * k + 1],
                           name, (long long)L, (long long)H);
    return 0;
}

static int head_on(const ak_prune_doc_opts *c, int64_t l, int64_t h)
{
    if (!c->heads)
        return 1;
    for (int64_t k = 0; k < c->nheads; k++)
        if (c->heads[2 * k] == l && c->heads[2 * k + 1] == h)
            return 1;
    return 0;
}

/* ak_rows_mass over the --heads (layer, head) pairs in l0..l1 only. */
static int rows_mass_heads(const ak_prune_doc_opts *c, const ak_doc *d, const char *name,
                           ak_tensor *m, int64_t T, double rows, float *score, ak_err *err)
{
    int64_t L = m->shape[0], H = m->shape[1];
    int64_t l0 = c->l0 < 0 ? 0 : c->l0, l1 = c->l1 < 0 || c->l1 > L - 1 ? L - 1 : c->l1;
    if (!c->heads)
        return ak_rows_mass(ak_tensor_f32(m), L, H, T, l0, l1, rows, score, err);
    int rc = heads_fit(c, d, name, L, H, err);
    if (rc)
        return rc;
    if (!(rows > 0))
        return ak_fail(err, AK_EDATA, "no query rows");
    int64_t n = 0;
    for (int64_t l = l0; l <= l1; l++)
        for (int64_t h = 0; h < H; h++)
            n += head_on(c, l, h);
    if (!n)
        return ak_fail(err, AK_EDATA, "none of the --heads is in layers %lld-%lld", (long long)l0,
                       (long long)l1);
    const float *x = ak_tensor_f32(m);
    double scale = 1.0 / (rows * (double)n);
    for (int64_t l = l0; l <= l1; l++)
        for (int64_t h = 0; h < H; h++)
            if (head_on(c, l, h))
                for (int64_t j = 0; j < T; j++)
                    score[j] += (float)(x[(l * H + h) * T + j] * scale);
    return 0;
}

/* The question's rows: mean over the layers with attn.probs.<l> in range
 * of the query span's attention (ak_query_mass); without them, the last W
 * queries of attn.mass_last.  With --heads: the mean over the chosen
 * (layer, head) pairs instead. */
static int question_scores(const ak_prune_doc_opts *c, ak_doc *d, int64_t T,
                           const uint8_t *is_query, float *score, ak_err *err)
{
    int nlayers = 0;
    int64_t nheads = 0;
    ak_tensor *ent = c->heads ? ak_doc_get(d, "attn.entropy") : NULL;
    if (ent && ent->ndim == 3) {
        int rc = heads_fit(c, d, "attn.entropy", ent->shape[0], ent->shape[1], err);
        if (rc)
            return rc;
    }
    for (size_t k = 0; k < d->ntensors; k++) {
        ak_tensor *t = d->tensors[k];
        const char *n = t->name;
        long l = ak_probs_layer(n);
        if (l < 0)
            continue;
        if ((c->l0 >= 0 && l < c->l0) || (c->l1 >= 0 && l > c->l1))
            continue;
        if (t->dtype != AK_F32 || t->ndim != 3 || t->shape[1] != T || t->shape[2] != T)
            return ak_fail(err, AK_EDATA, "document '%s': %s is not f32 [h, %lld, %lld]", d->id,
                           n, (long long)T, (long long)T);
        if (t->shape[0] == 0)
            continue;
        int rc;
        if (c->heads) {
            /* which heads the tensor holds: attn.probs.<l>.heads, else all */
            char hn[80];
            snprintf(hn, sizeof hn, "%s.heads", n);
            ak_tensor *ht = ak_doc_get(d, hn);
            if (ht && (ht->dtype != AK_I32 || ht->ndim != 1 || ht->shape[0] != t->shape[0]))
                return ak_fail(err, AK_EDATA, "document '%s': %s is not i32 [%lld]", d->id, hn,
                               (long long)t->shape[0]);
            for (int64_t k = 0; k < t->shape[0]; k++) {
                int64_t h = ht ? ak_tensor_i32(ht)[k] : k;
                if (!head_on(c, l, h))
                    continue;
                if ((rc = ak_query_mass(ak_tensor_f32(t) + k * T * T, 1, T, is_query, score, err)))
                    return ak_wrap(err, "document '%s': %s", d->id, n);
                nheads++;
            }
            nlayers++;
            continue;
        }
        rc = ak_query_mass(ak_tensor_f32(t), t->shape[0], T, is_query, score, err);
        if (rc)
            return ak_wrap(err, "document '%s': %s", d->id, n);
        nlayers++;
    }
    if (nlayers && c->heads && !nheads)
        return ak_fail(err, AK_EDATA, "document '%s': none of the --heads is among its "
                       "attn.probs.<layer>", d->id);
    if (nlayers) {
        double div = c->heads ? (double)nheads : (double)nlayers;
        for (int64_t j = 0; j < T; j++)
            score[j] = (float)(score[j] / div);
        return 0;
    }
    ak_tensor *ml;
    int rc = rows_tensor(d, "attn.mass_last", T, &ml, err);
    if (rc)
        return rc;
    if (!ml)
        return ak_fail(err, AK_EDATA, "document '%s': policy query needs attn.probs.<layer> "
                       "(attend --probs) or attn.mass_last (attend --mass-last W)", d->id);
    if ((rc = rows_mass_heads(c, d, "attn.mass_last", ml, T, rows_of(d, ml, "mass_last_w", T),
                              score, err)))
        return ak_wrap(err, "document '%s': attn.mass_last", d->id);
    return 0;
}

/* Query policy: the question's rows, the answer's (attn.mass_gen, meta
 * gen_mass_rows), or the mean of both (ak_query_rows). *used: what ran. */
static int query_scores(const ak_prune_doc_opts *c, ak_doc *d, int64_t T, const uint8_t *is_query,
                        float *score, ak_query_rows *used, ak_err *err)
{
    ak_tensor *mg;
    int rc = rows_tensor(d, "attn.mass_gen", T, &mg, err);
    if (rc)
        return rc;
    double grows = mg ? rows_of(d, mg, "gen_mass_rows", INT64_MAX) : 0;
    ak_query_rows want = c->query_rows;
    if (want == AK_QROWS_AUTO)
        want = mg && grows > 0 ? AK_QROWS_BOTH : AK_QROWS_QUESTION;
    if (want != AK_QROWS_QUESTION && !mg)
        return ak_fail(err, AK_EDATA, "document '%s': --query-rows %s needs attn.mass_gen "
                       "(kvcache --generate N --gen-mass G)", d->id,
                       want == AK_QROWS_ANSWER ? "answer" : "both");
    if (want != AK_QROWS_QUESTION && !(grows > 0))
        return ak_fail(err, AK_EDATA, "document '%s': attn.mass_gen holds no generated rows "
                       "(gen_mass_rows 0: the answer stopped at once)", d->id);
    *used = want;
    if (want != AK_QROWS_ANSWER && (rc = question_scores(c, d, T, is_query, score, err)))
        return rc;
    if (want == AK_QROWS_QUESTION)
        return 0;
    float *a = calloc((size_t)T + 1, sizeof *a);
    if (!a)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    rc = rows_mass_heads(c, d, "attn.mass_gen", mg, T, grows, a, err);
    if (rc)
        ak_wrap(err, "document '%s': attn.mass_gen", d->id);
    for (int64_t j = 0; j < T && !rc; j++)
        score[j] = want == AK_QROWS_BOTH ? 0.5f * (score[j] + a[j]) : a[j];
    free(a);
    return rc;
}

/* ---- similarity and qppl: a model per block, cached ---- */

void ak_block_cache_free(ak_block_cache *c)
{
    if (!c)
        return;
    free(c->score);
    free(c->scored);
    memset(c, 0, sizeof *c);
}

static int cache_fill(ak_block_cache *k, const float *score, const uint8_t *scored, int64_t n,
                      int truncated, ak_err *err)
{
    ak_block_cache_free(k);
    if (!(k->score = malloc(sizeof(float) * ((size_t)n + 1))) ||
        (scored && !(k->scored = malloc((size_t)n + 1)))) {
        ak_block_cache_free(k);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    memcpy(k->score, score, sizeof(float) * (size_t)n);
    if (scored)
        memcpy(k->scored, scored, (size_t)n);
    k->n = n;
    k->truncated = truncated;
    k->filled = 1;
    return 0;
}

/* Similarity policy: every token gets its block's cosine to the query span
 * (ak_block_similarity); the cosines are kept as similarity.block f32 [B]. */
static int similarity_scores(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p, ak_err *err)
{
    if (!p->seg || p->nblocks < 1)
        return ak_fail(err, AK_EDATA, "document '%s' has no segments (policy similarity ranks "
                       "blocks: tokenize --segments)", d->id);
    int64_t B = p->nblocks;
    ak_tensor *t = ak_tensor_new("similarity.block", AK_F32, 1, &B, err);
    if (!t)
        return err->code ? err->code : AK_ENOMEM;
    float *cos = ak_tensor_f32(t);
    int ntrunc = 0, rc = 0;
    ak_block_cache *k = c->cache;
    if (k && k->filled && k->n == B) {
        memcpy(cos, k->score, sizeof(float) * (size_t)B);
        ntrunc = k->truncated;
    } else if (!c->encoder) {
        ak_tensor_free(t);
        return ak_fail(err, AK_EINTERNAL, "policy similarity without an encoder");
    } else {
        rc = ak_block_similarity(c->encoder, p->txt, p->tlen, p->o, p->seg, p->T, B, p->w.query,
                                 cos, &ntrunc, err);
        if (rc) {
            ak_tensor_free(t);
            return ak_wrap(err, "document '%s': policy similarity", d->id);
        }
        if (k && (rc = cache_fill(k, cos, NULL, B, ntrunc, err))) {
            ak_tensor_free(t);
            return rc;
        }
    }
    for (int64_t i = 0; i < p->T; i++)
        p->w.score[i] = p->seg[i] >= 0 && p->seg[i] < B ? cos[p->seg[i]] : 0;
    p->score = p->w.score;
    if ((rc = ak_doc_put(d, t, err)))
        return rc;
    if (ak_meta_set_int(&d->meta, "similarity_truncated", ntrunc))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}

/* qppl: every token gets its block's score, shifted so that the lowest
 * scored block has 0 (the selection wants scores >= 0; a shift leaves
 * both the ranking and the knapsack's choice among equal fills as they
 * are); --fine also needs the surprisal. */
static int qppl_scores(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p, ak_err *err)
{
    struct prune_work *w = &p->w;
    int64_t T = p->T, nb = p->nblocks;
    if (c->fine && p->opts.unit == AK_UNIT_BLOCK)
        return ak_fail(err, AK_EUSAGE, "--fine drops words, tokens or sentences inside the kept "
                       "blocks: not with --unit block");
    if (!(w->block_score = calloc((size_t)nb + 1, sizeof *w->block_score)) ||
        !(w->scored = calloc((size_t)nb + 1, 1)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (c->fine) {
        if (!(w->surprisal = calloc((size_t)T + 1, sizeof *w->surprisal)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        int rc = ak_prune_surprisal(d, T, w->surprisal, &p->surprisal, err);
        if (rc)
            return ak_wrap(err, "qppl --fine");
    }
    int rc = 0;
    ak_block_cache *k = c->cache;
    if (k && k->filled && k->n == nb && k->scored) {
        memcpy(w->block_score, k->score, sizeof(float) * (size_t)nb);
        memcpy(w->scored, k->scored, (size_t)nb);
    } else {
        rc = ak_prune_qppl(c, d, ak_tensor_i32(p->tok), p->seg, T, nb, w->query, w->block_score,
                           w->scored, err);
        if (!rc && k)
            rc = cache_fill(k, w->block_score, w->scored, nb, 0, err);
        if (rc)
            return rc;
    }
    double lo = INFINITY;
    for (int64_t b = 0; b < nb; b++)
        if (w->scored[b] && w->block_score[b] < lo)
            lo = w->block_score[b];
    for (int64_t i = 0; i < T; i++) {
        int32_t b = p->seg[i];
        w->score[i] = b >= 0 && b < nb && w->scored[b] ? (float)(w->block_score[b] - lo) : 0;
    }
    p->score = w->score;
    return 0;
}

/* ---- the other scorers ---- */

/* score: entropy's score.token, and score.block for --unit block. */
static int score_scores(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p, ak_err *err)
{
    (void)c;
    ak_tensor *s = ak_doc_get(d, "score.token");
    if (!s)
        return ak_fail(err, AK_EDATA, "document '%s' has no score.token (run entropy first)",
                       d->id);
    if (s->dtype != AK_F32 || s->ndim != 1 || s->shape[0] != p->T)
        return ak_fail(err, AK_EDATA, "document '%s': score.token is not f32 [%lld]", d->id,
                       (long long)p->T);
    p->score = ak_tensor_f32(s);
    ak_tensor *b = ak_doc_get(d, "score.block");
    if (p->opts.unit == AK_UNIT_BLOCK && b) {
        if (b->dtype != AK_F32 || b->ndim != 1 || b->shape[0] != p->nblocks)
            return ak_fail(err, AK_EDATA, "document '%s': score.block is not f32 [%lld]",
                           d->id, (long long)p->nblocks);
        p->unit_score = ak_tensor_f32(b);
    }
    return 0;
}

/* mass, entropy, heavy: ak_prune_scores over attend's statistics. */
static int attention_scores(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p,
                            ak_err *err)
{
    ak_attn_stats s;
    int rc = ak_doc_attn_stats(d, &s, err);
    if (rc)
        return rc;
    int64_t l0 = c->l0 < 0 ? 0 : c->l0, l1 = c->l1 < 0 ? s.L - 1 : c->l1;
    if ((rc = ak_prune_scores(&s, p->opts.policy, l0, l1, c->agg, p->w.score, err)))
        return rc;
    p->score = p->w.score;
    return 0;
}

/* --position-baseline: the attention an irrelevant token at i / T gets
 * (linear between the points, the nearest point outside them), over T. */
static double position_baseline(const ak_prune_doc_opts *c, int64_t i, int64_t T)
{
    double x = (double)i / (double)T;
    const double *pb = c->pos_base;
    int64_t k = 0;
    while (k < c->npos && pb[2 * k] < x)
        k++;
    double b;
    if (k == 0)
        b = pb[1];
    else if (k == c->npos)
        b = pb[2 * c->npos - 1];
    else {
        double x0 = pb[2 * k - 2], x1 = pb[2 * k], y0 = pb[2 * k - 1], y1 = pb[2 * k + 1];
        b = x1 > x0 ? y0 + (y1 - y0) * (x - x0) / (x1 - x0) : y1;
    }
    return b / (double)T;
}

/* query: the query span's attention (query_scores), less the position
 * baseline. */
static int query_policy_scores(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p,
                               ak_err *err)
{
    int64_t T = p->T;
    float *score = p->w.score;
    int rc = query_scores(c, d, T, p->w.query, score, &p->query_rows, err);
    if (rc)
        return rc;
    for (int64_t i = 0; c->pos_base && i < T; i++)
        score[i] -= (float)position_baseline(c, i, T);
    p->score = score;
    /* rows of one span sum to 1 over T keys: T x mean is 1 when uniform */
    p->keys_per_query = (double)T;
    return 0;
}

/* surprisal: token.surprisal, or computed from the logits (prune_lm.c). */
static int surprisal_scores(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p,
                            ak_err *err)
{
    (void)c;
    return ak_prune_surprisal(d, p->T, p->w.score, &p->score, err);
}

/* ---- the table ---- */

static const ak_policy_def policies[] = {
    [AK_POLICY_SCORE] = {"score", "score.token (entropy), score.block with --unit block",
                         0, 0, 1, 0, "", score_scores},
    [AK_POLICY_MASS] = {"mass", "attn.entropy, attn.mass, attn.visible (attend)",
                        1, 1, 1, 0, "", attention_scores},
    [AK_POLICY_QUERY] = {"query", "attn.probs.<l> or attn.mass_last (attend), attn.mass_gen "
                         "(kvcache --gen-mass), the query span",
                         1, 0, 1, 1, "--query-rows --heads --position-baseline ",
                         query_policy_scores},
    [AK_POLICY_ENTROPY] = {"entropy", "attn.entropy, attn.mass, attn.visible (attend)",
                           1, 1, 1, 0, "", attention_scores},
    [AK_POLICY_HEAVY] = {"heavy", "attn.entropy, attn.mass, attn.visible (attend)",
                         1, 1, 1, 0, "--recent ", attention_scores},
    [AK_POLICY_RANDOM] = {"random", "nothing (a seed)", 0, 0, 0, 0, "--seed ", NULL},
    [AK_POLICY_FIRST] = {"first", "nothing (positions)", 0, 0, 0, 0, "", NULL},
    [AK_POLICY_LAST] = {"last", "nothing (positions)", 0, 0, 0, 0, "", NULL},
    [AK_POLICY_SIMILARITY] = {"similarity", "text, segments, the query span (and an encoder)",
                              0, 0, 0, 1, "--encoder ", similarity_scores},
    [AK_POLICY_SURPRISAL] = {"surprisal", "token.surprisal, else logits (attend --surprisal)",
                             0, 0, 1, 0, "", surprisal_scores},
    [AK_POLICY_QPPL] = {"qppl", "tokens, segments, the query span (and a causal LM)",
                        0, 0, 0, 0, "--lm --fine ", qppl_scores},
};

#define NPOLICIES (sizeof policies / sizeof *policies)

const ak_policy_def *ak_policy_def_of(ak_policy p) { return &policies[p]; }

int ak_policy_from_name(const char *s, ak_policy *out)
{
    for (size_t i = 0; i < NPOLICIES; i++)
        if (strcmp(s, policies[i].name) == 0) {
            *out = (ak_policy)i;
            return 0;
        }
    return -1;
}

const char *ak_policy_name(ak_policy p)
{
    return (size_t)p < NPOLICIES ? policies[p].name : NULL;
}

int ak_policy_uses_layers(ak_policy p) { return policies[p].layers; }

/* the query policy averages its rows and heads: no --agg */
int ak_policy_uses_agg(ak_policy p) { return policies[p].agg; }

int ak_policy_scores_tokens(ak_policy p) { return policies[p].token_scores; }

int ak_policy_takes(ak_policy p, const char *option)
{
    size_t n = strlen(option);
    for (const char *s = policies[p].options; *s; s = strchr(s, ' ') + 1)
        if (strncmp(s, option, n) == 0 && s[n] == ' ')
            return 1;
    return 0;
}

int ak_unit_from_name(const char *s, ak_unit *out)
{
    if (strcmp(s, "token") == 0) *out = AK_UNIT_TOKEN;
    else if (strcmp(s, "sentence") == 0) *out = AK_UNIT_SENTENCE;
    else if (strcmp(s, "block") == 0) *out = AK_UNIT_BLOCK;
    else if (strcmp(s, "word") == 0) *out = AK_UNIT_WORD;
    else return -1;
    return 0;
}
