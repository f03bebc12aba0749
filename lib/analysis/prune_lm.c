/* prune_lm.c - the surprisal and qppl policies (prune_lm.h). */
#include "prune_lm.h"
#include "model/lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ak_prune_surprisal(const ak_doc *d, int64_t T, float *scratch, const float **score,
                       ak_err *err)
{
    ak_tensor *s = ak_doc_get(d, "token.surprisal");
    if (s) {
        if (s->dtype != AK_F32 || s->ndim != 1 || s->shape[0] != T)
            return ak_fail(err, AK_EDATA, "document '%s': token.surprisal is not f32 [%lld]",
                           d->id, (long long)T);
        *score = ak_tensor_f32(s);
        return 0;
    }
    ak_tensor *l = ak_doc_get(d, "logits"), *tok = ak_doc_get(d, "tokens");
    if (l && tok && l->dtype == AK_F32 && l->ndim == 2 && l->shape[0] == T && T > 0) {
        int rc = ak_lm_surprisal_logits(ak_tensor_f32(l), l->shape[1], ak_tensor_i32(tok), T,
                                        scratch, err);
        if (rc)
            return ak_wrap(err, "document '%s': logits", d->id);
        *score = scratch;
        return 0;
    }
    return ak_fail(err, AK_EDATA, "document '%s' has no token.surprisal%s (run attend "
                   "--surprisal)", d->id, l ? " and its logits are not of every position" : "");
}

/* ids[n] of the tokens of d with want(i), the BOS left out. */
static int64_t gather(const int32_t *ids, int64_t T, const int32_t *seg, int32_t block,
                      const uint8_t *query, int32_t bos, int32_t *out)
{
    int64_t n = 0;
    for (int64_t i = 0; i < T; i++) {
        int take = block < 0 ? query[i] != 0 : seg[i] == block;
        if (take && (bos < 0 || ids[i] != bos))
            out[n++] = ids[i];
    }
    return n;
}

/* The rows of hidden states whose next tokens one head pass scores. */
struct rows {
    const ak_model *m;
    int64_t n, cap, D;
    float *h;          /* [cap, D] */
    int32_t *next;     /* [cap] */
    int64_t *seq;      /* [cap] the sequence each row belongs to */
    double *lp;        /* [cap] */
    double *sum;       /* [sequences] the log-likelihoods */
};

static int rows_flush(struct rows *r, ak_err *err)
{
    int rc = ak_lm_next_logprobs(r->m, r->h, r->n, r->next, r->lp, err);
    for (int64_t k = 0; !rc && k < r->n; k++)
        r->sum[r->seq[k]] += r->lp[k];
    r->n = 0;
    return rc;
}

/* Runs ids[n] through the model and queues its rows from-1 .. n-2 (which
 * predict ids[from..n-1]) as sequence s; x is [n, D] scratch. */
static int rows_add(struct rows *r, ak_device dev, const int32_t *ids, int n, int from, int64_t s,
                    float *x, ak_err *err)
{
    int64_t k = n - from;
    int rc;
    if (r->n + k > r->cap && (rc = rows_flush(r, err)))
        return rc;
    if ((rc = ak_lm_final(r->m, dev, ids, n, x, err)))
        return rc;
    memcpy(r->h + r->n * r->D, x + (int64_t)(from - 1) * r->D, sizeof *x * (size_t)(k * r->D));
    for (int64_t i = 0; i < k; i++) {
        r->next[r->n + i] = ids[from + i];
        r->seq[r->n + i] = s;
    }
    r->n += k;
    return 0;
}

int ak_prune_qppl(const ak_prune_doc_opts *c, const ak_doc *d, const int32_t *ids,
                  const int32_t *seg, int64_t T, int64_t nblocks, const uint8_t *query,
                  float *block_score, uint8_t *scored, ak_err *err)
{
    const ak_model *m = c->lm;
    if (!m)
        return ak_fail(err, AK_EINTERNAL, "policy qppl without a model");
    if (!seg || nblocks < 1)
        return ak_fail(err, AK_EDATA, "document '%s' has no blocks (policy qppl ranks blocks: "
                       "tokenize --segments)", d->id);
    int32_t bos = c->lm_bos;
    int nb = bos >= 0;
    int64_t D = m->hidden_size;
    int32_t *q = malloc(sizeof *q * (size_t)(T + 1)), *buf = malloc(sizeof *buf * (size_t)(2 * T + 2));
    uint8_t *has_query = calloc((size_t)nblocks + 1, 1);
    float *x = malloc(sizeof *x * (size_t)((2 * T + 2) * D));
    struct rows r = {.m = m, .D = D};
    int rc = 0;
    int64_t nq = q ? gather(ids, T, seg, -1, query, bos, q) : 0;
    int first = nb ? 0 : 1; /* the first question token scored */
    /* the rows one head pass takes: every sequence's, up to a bound */
    r.cap = nq > 2048 ? nq : 2048;
    r.h = malloc(sizeof *r.h * (size_t)(r.cap * D));
    r.next = malloc(sizeof *r.next * (size_t)r.cap);
    r.seq = malloc(sizeof *r.seq * (size_t)r.cap);
    r.lp = malloc(sizeof *r.lp * (size_t)r.cap);
    r.sum = calloc((size_t)nblocks + 1, sizeof *r.sum);
    if (!q || !buf || !has_query || !x || !r.h || !r.next || !r.seq || !r.lp || !r.sum) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    if (nq - first < 1) {
        rc = ak_fail(err, AK_EDATA, "document '%s': the query span has %lld token%s: nothing "
                     "of it to predict", d->id, (long long)nq, nq == 1 ? "" : "s");
        goto out;
    }
    for (int64_t i = 0; i < T; i++)
        if (query[i] && seg[i] >= 0 && seg[i] < nblocks)
            has_query[seg[i]] = 1;
    /* sequence 0, the baseline: BOS, question; sequence 1 + b: BOS, block b, question */
    if (nb)
        buf[0] = bos;
    memcpy(buf + nb, q, sizeof *q * (size_t)nq);
    if ((rc = rows_add(&r, c->lm_dev, buf, (int)(nb + nq), nb + first, 0, x, err))) {
        ak_wrap(err, "document '%s': qppl, the question alone", d->id);
        goto out;
    }
    for (int64_t b = 0; b < nblocks; b++) {
        block_score[b] = 0;
        scored[b] = 0;
        if (has_query[b])
            continue;
        int64_t n = gather(ids, T, seg, (int32_t)b, query, bos, buf + nb);
        if (n == 0)
            continue;
        memcpy(buf + nb + n, q, sizeof *q * (size_t)nq);
        if ((rc = rows_add(&r, c->lm_dev, buf, (int)(nb + n + nq), (int)(nb + n + first), 1 + b,
                           x, err))) {
            ak_wrap(err, "document '%s': qppl, block %lld", d->id, (long long)b);
            goto out;
        }
        scored[b] = 1;
    }
    if ((rc = rows_flush(&r, err))) {
        ak_wrap(err, "document '%s': qppl", d->id);
        goto out;
    }
    for (int64_t b = 0; b < nblocks; b++)
        if (scored[b])
            block_score[b] = (float)(r.sum[1 + b] - r.sum[0]);
out:
    free(q);
    free(buf);
    free(has_query);
    free(x);
    free(r.h);
    free(r.next);
    free(r.seq);
    free(r.lp);
    free(r.sum);
    return rc;
}

struct ranked {
    int64_t block;
    double score;
};

static int ranked_cmp(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->block < b->block ? -1 : a->block > b->block;
}

int ak_prune_select_fine(const ak_prune_input *in, const ak_prune_opts *o, const int32_t *seg,
                         const float *block_score, const uint8_t *scored, int64_t nblocks,
                         double coarse, const float *surprisal, uint8_t *keep, float *kept_score,
                         ak_prune_result *res, int64_t *coarse_kept, ak_err *err)
{
    int64_t T = in->T, nu = in->nunits, total;
    int64_t budget = ak_prune_budget(in, o, &total);
    uint8_t *unit_forced = calloc((size_t)nu + 1, 1), *forced = calloc((size_t)T + 1, 1),
            *kept_block = calloc((size_t)nblocks + 1, 1);
    int64_t *prunable = calloc((size_t)nblocks + 1, sizeof *prunable);
    struct ranked *rk = malloc(sizeof *rk * ((size_t)nblocks + 1));
    int64_t *idx = malloc(sizeof *idx * ((size_t)T + 1));
    int32_t *s_unit = malloc(sizeof *s_unit * ((size_t)T + 1));
    uint8_t *s_special = malloc((size_t)T + 1), *s_protect = malloc((size_t)T + 1),
            *s_keep = malloc((size_t)T + 1);
    float *s_score = malloc(sizeof *s_score * ((size_t)T + 1)),
          *s_kept = malloc(sizeof *s_kept * ((size_t)T + 1));
    int64_t *s_cost = in->cost ? malloc(sizeof *s_cost * ((size_t)T + 1)) : NULL;
    int rc = 0;
    if (!unit_forced || !forced || !kept_block || !prunable || !rk || !idx || !s_unit ||
        !s_special || !s_protect || !s_keep || !s_score || !s_kept || (in->cost && !s_cost)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < T; i++) {
        int32_t k = in->unit[i];
        if (k < -1 || k >= nu) {
            rc = ak_fail(err, AK_EDATA, "unit id %d of token %lld outside 0-%lld", k,
                         (long long)i, (long long)(nu - 1));
            goto out;
        }
        if (k >= 0 && in->protect && in->protect[i])
            unit_forced[k] = 1;
    }
    int64_t forced_cost = 0, all_prunable = 0;
    for (int64_t i = 0; i < T; i++) {
        int32_t k = in->unit[i];
        int64_t cost = in->cost ? in->cost[i] : 1;
        forced[i] = k < 0 || (in->special && in->special[i]) || unit_forced[k];
        if (forced[i]) {
            forced_cost += cost;
        } else if (seg[i] >= 0 && seg[i] < nblocks) {
            prunable[seg[i]] += cost;
            all_prunable += cost;
        } else {
            forced[i] = 1; /* outside every block: kept, as units -1 are */
            forced_cost += cost;
        }
    }
    int64_t room = budget - forced_cost > 0 ? budget - forced_cost : 0;
    double want = ceil(coarse * (double)room);
    int64_t target = want < (double)all_prunable ? (int64_t)want : all_prunable;
    int64_t nr = 0;
    for (int64_t b = 0; b < nblocks; b++)
        if (prunable[b] > 0)
            rk[nr++] = (struct ranked){b, scored[b] ? (double)block_score[b] : INFINITY};
    qsort(rk, (size_t)nr, sizeof *rk, ranked_cmp);
    int64_t acc = 0;
    for (int64_t r = 0; r < nr && acc < target; r++) {
        kept_block[rk[r].block] = 1;
        acc += prunable[rk[r].block];
    }
    *coarse_kept = acc;
    /* the fine step: the forced tokens and the kept blocks' */
    int64_t n = 0;
    for (int64_t i = 0; i < T; i++) {
        if (!forced[i] && !kept_block[seg[i]])
            continue;
        idx[n] = i;
        s_unit[n] = in->unit[i];
        s_special[n] = in->special ? in->special[i] : 0;
        s_protect[n] = in->protect ? in->protect[i] : 0;
        s_score[n] = surprisal[i];
        if (s_cost)
            s_cost[n] = in->cost[i];
        n++;
    }
    ak_prune_input sub = {.T = n, .unit = s_unit, .special = s_special, .protect = s_protect,
                          .score = s_score, .nunits = nu, .doc_hash = in->doc_hash,
                          .cost = s_cost, .total = total, .budget = budget, .budget_set = 1};
    ak_prune_opts so = *o;
    so.policy = AK_POLICY_SURPRISAL;
    if ((rc = ak_prune_select(&sub, &so, s_keep, s_kept, res, err)))
        goto out;
    for (int64_t i = 0; i < T; i++) {
        keep[i] = 0;
        if (kept_score)
            kept_score[i] = seg[i] >= 0 && seg[i] < nblocks ? block_score[seg[i]] : 0;
    }
    for (int64_t k = 0; k < n; k++) {
        keep[idx[k]] = s_keep[k];
        if (kept_score)
            kept_score[idx[k]] = s_kept[k];
    }
out:
    free(unit_forced);
    free(forced);
    free(kept_block);
    free(prunable);
    free(rk);
    free(idx);
    free(s_unit);
    free(s_special);
    free(s_protect);
    free(s_keep);
    free(s_score);
    free(s_kept);
    free(s_cost);
    return rc;
}
