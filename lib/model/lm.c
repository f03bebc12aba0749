/* lm.c - surprisal and log-likelihoods from a causal LM's head (lm.h). */
#include "lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row chunk and the floats one tile of logits may hold. */
enum { ROWS_PER_CHUNK = 256, TILE_LOGITS = 1 << 22 };

/* lp[r] = log softmax(logits of h[r])[next[r]] for rows r < rows, the
 * vocabulary a tile at a time: a running maximum and sum of exp per row
 * (the log-sum-exp of Milakov & Gimelshein's online softmax). */
int ak_lm_next_logprobs(const ak_model *m, const float *h, int64_t rows, const int32_t *next,
                        double *lp, ak_err *err)
{
    if (!m->lm_head.w && !m->lm_head.wq)
        return ak_fail(err, AK_ECONFIG, "model %s (%s) has no language-model head", m->name,
                       m->arch);
    int64_t D = m->hidden_size, V = m->vocab_size;
    for (int64_t r = 0; r < rows; r++)
        if (next[r] < 0 || next[r] >= V)
            return ak_fail(err, AK_EDATA, "token id %d outside the vocabulary (%lld) of model %s",
                           next[r], (long long)V, m->name);
    int64_t rc_rows = rows < ROWS_PER_CHUNK ? rows : ROWS_PER_CHUNK;
    if (rc_rows == 0)
        return 0;
    int64_t nv = TILE_LOGITS / rc_rows;
    if (nv > V)
        nv = V;
    float *buf = malloc(sizeof *buf * (size_t)(rc_rows * nv));
    double *mx = malloc(sizeof *mx * (size_t)rc_rows), *sum = malloc(sizeof *sum * (size_t)rc_rows);
    float *tgt = malloc(sizeof *tgt * (size_t)rc_rows);
    int rc = 0;
    if (!buf || !mx || !sum || !tgt) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory for the logits of %lld rows", (long long)rc_rows);
        goto out;
    }
    for (int64_t r0 = 0; r0 < rows && !rc; r0 += rc_rows) {
        int64_t nr = rows - r0 < rc_rows ? rows - r0 : rc_rows;
        for (int64_t r = 0; r < nr; r++) {
            mx[r] = -INFINITY;
            sum[r] = 0;
            tgt[r] = NAN;
        }
        for (int64_t v0 = 0; v0 < V; v0 += nv) {
            int64_t n = V - v0 < nv ? V - v0 : nv;
            if ((rc = ak_model_logits(m, h + r0 * D, (int)nr, (int)v0, (int)n, buf, err)))
                break;
            for (int64_t r = 0; r < nr; r++) {
                const float *x = buf + r * n;
                float tmax = -INFINITY;
                for (int64_t j = 0; j < n; j++)
                    tmax = x[j] > tmax ? x[j] : tmax;
                double newm = tmax > mx[r] ? tmax : mx[r];
                double s = sum[r] * exp(mx[r] - newm);
                float fm = (float)newm;
                double ts = 0;
                for (int64_t j = 0; j < n; j++)
                    ts += expf(x[j] - fm);
                sum[r] = s + ts;
                mx[r] = newm;
                int32_t t = next[r0 + r];
                if (t >= v0 && t < v0 + n)
                    tgt[r] = x[t - v0];
            }
        }
        for (int64_t r = 0; r < nr && !rc; r++) {
            lp[r0 + r] = (double)tgt[r] - (mx[r] + log(sum[r]));
            if (!isfinite(lp[r0 + r]))
                rc = ak_fail(err, AK_EDATA, "log-probability of row %lld is not finite (NaN or "
                             "Inf in the hidden states or the language-model head)",
                             (long long)(r0 + r));
        }
    }
out:
    free(buf);
    free(mx);
    free(sum);
    free(tgt);
    return rc;
}

int ak_lm_surprisal(const ak_model *m, const float *final, const int32_t *ids, int64_t T,
                    float *surprisal, ak_err *err)
{
    if (!m->lm_head.w && !m->lm_head.wq)
        return ak_fail(err, AK_ECONFIG, "model %s (%s) has no language-model head", m->name,
                       m->arch);
    if (T <= 0)
        return 0;
    surprisal[0] = 0;
    if (T == 1)
        return 0;
    double *lp = malloc(sizeof *lp * (size_t)(T - 1));
    if (!lp)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int rc = ak_lm_next_logprobs(m, final, T - 1, ids + 1, lp, err);
    for (int64_t i = 1; !rc && i < T; i++)
        surprisal[i] = (float)-lp[i - 1];
    free(lp);
    return rc;
}

int ak_lm_surprisal_logits(const float *logits, int64_t V, const int32_t *ids, int64_t T,
                           float *surprisal, ak_err *err)
{
    if (T > 0)
        surprisal[0] = 0;
    for (int64_t i = 1; i < T; i++) {
        if (ids[i] < 0 || ids[i] >= V)
            return ak_fail(err, AK_EDATA, "token %lld: id %d outside the logits' %lld entries",
                           (long long)i, ids[i], (long long)V);
        const float *x = logits + (i - 1) * V;
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < V; j++)
            m = x[j] > m ? x[j] : m;
        for (int64_t j = 0; j < V; j++)
            s += exp((double)x[j] - m);
        double v = m + log(s) - (double)x[ids[i]];
        if (!isfinite(v))
            return ak_fail(err, AK_EDATA, "logits row %lld is not finite", (long long)(i - 1));
        surprisal[i] = (float)v;
    }
    return 0;
}

int ak_lm_final(const ak_model *m, ak_device dev, const int32_t *ids, int n, float *final,
                ak_err *err)
{
    if (!m->causal)
        return ak_fail(err, AK_ECONFIG, "model %s (%s) is not a causal language model", m->name,
                       m->arch);
    if (n > m->max_positions)
        return ak_fail(err, AK_EDATA, "%d tokens: model %s has %d positions", n, m->name,
                       m->max_positions);
    ak_forward_out o = {0};
    int rc = ak_model_embed(m, ids, NULL, n, final, err);
    return rc ? rc : ak_model_forward(m, dev, final, n, &o, err);
}
