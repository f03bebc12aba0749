/* metrics.c - entropy, normalised entropy, corrected received mass, head
 * summaries and aggregation (formulas in metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t ak_mask_visible(ak_mask m, int64_t T, int64_t i)
{
    /* keys j in [lo, hi): causal stops at i, the window starts at i - w + 1 */
    int64_t hi = m.causal ? i + 1 : T;
    int64_t lo = m.window > 0 ? i - m.window + 1 : 0;
    if (lo < 0)
        lo = 0;
    return hi > lo ? hi - lo : 0;
}

int64_t ak_mask_seers(ak_mask m, int64_t T, int64_t j)
{
    /* queries i in [lo, hi): causal needs i >= j, the window needs i < j + w */
    int64_t lo = m.causal ? j : 0;
    int64_t hi = m.window > 0 && j + m.window < T ? j + m.window : T;
    return hi > lo ? hi - lo : 0;
}

int ak_row_entropy(const float *p, int64_t n, double *out, ak_err *err)
{
    double h = 0, sum = 0;
    for (int64_t j = 0; j < n; j++) {
        double x = p[j];
        if (!isfinite(x) || x < 0 || x > 1 + 1e-5)
            return ak_fail(err, AK_EDATA, "probability %lld is %g, not in [0, 1]", (long long)j, x);
        sum += x;
        if (x > 0)
            h -= x * log(x);
    }
    if (fabs(sum - 1.0) > 1e-3)
        return ak_fail(err, AK_EDATA, "probabilities sum to %g, not 1", sum);
    *out = h < 0 ? 0 : h;
    return 0;
}

double ak_norm_entropy(double entropy_nats, int64_t visible)
{
    return visible <= 1 ? 0.0 : entropy_nats / log((double)visible);
}

int ak_from_probs(const float *p, int64_t nh, int64_t T, float *entropy,
                  float *mass, ak_err *err)
{
    if (mass)
        memset(mass, 0, sizeof *mass * (size_t)(nh * T));
    for (int64_t h = 0; h < nh; h++)
        for (int64_t i = 0; i < T; i++) {
            const float *row = p + (h * T + i) * T;
            double e;
            int rc = ak_row_entropy(row, T, &e, err);
            if (rc)
                return ak_wrap(err, "head %lld query %lld", (long long)h, (long long)i);
            if (entropy)
                entropy[h * T + i] = (float)e;
            if (mass)
                for (int64_t j = 0; j < T; j++)
                    mass[h * T + j] += row[j];
        }
    return 0;
}

void ak_corrected_mass(ak_mask m, const float *mass, int64_t T, float *corrected)
{
    for (int64_t j = 0; j < T; j++) {
        int64_t s = ak_mask_seers(m, T, j);
        corrected[j] = s > 0 ? (float)(mass[j] / (double)s) : 0.0f;
    }
}

static int64_t stats_visible(const ak_attn_stats *s, int64_t l, int64_t i)
{
    return s->visible ? s->visible[l * s->T + i] : ak_mask_visible(s->mask, s->T, i);
}

/* 1 / log(visible[l, i]) for every query of layer l (0 where a query sees
 * one key), so the per-element loops below need no log(). */
static void inv_log_visible(const ak_attn_stats *s, int64_t l, double *out)
{
    for (int64_t i = 0; i < s->T; i++) {
        int64_t v = stats_visible(s, l, i);
        out[i] = v > 1 ? 1.0 / log((double)v) : 0.0;
    }
}

int ak_stats_check(const ak_attn_stats *s, ak_err *err)
{
    if (s->L <= 0 || s->H <= 0 || s->T < 0)
        return ak_fail(err, AK_EDATA, "empty attention statistics [%lld, %lld, %lld]",
                       (long long)s->L, (long long)s->H, (long long)s->T);
    if (s->mask.window < 0)
        return ak_fail(err, AK_EDATA, "negative window %d", s->mask.window);
    double *il = malloc(sizeof *il * ((size_t)s->T + 1));
    if (!il)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int rc = 0;
    for (int64_t l = 0; l < s->L && !rc; l++) {
        if (s->visible)
            for (int64_t i = 0; i < s->T; i++) {
                int64_t v = s->visible[l * s->T + i], want = ak_mask_visible(s->mask, s->T, i);
                if (v != want) {
                    rc = ak_fail(err, AK_EDATA,
                                   "attn.visible[%lld, %lld] is %lld, the mask (causal %d, "
                                   "window %d) gives %lld", (long long)l, (long long)i,
                                   (long long)v, s->mask.causal, s->mask.window, (long long)want);
                    goto out;
                }
            }
        inv_log_visible(s, l, il);
        for (int64_t h = 0; h < s->H; h++) {
            const float *e = s->entropy + (l * s->H + h) * s->T;
            const float *m = s->mass + (l * s->H + h) * s->T;
            double total = 0;
            for (int64_t i = 0; i < s->T; i++) {
                /* entropy <= log(visible): e * (1/log v) <= 1, with slack */
                double inv = il[i];
                if (!isfinite(e[i]) || e[i] < -1e-6 ||
                    (inv > 0 ? e[i] * inv > 1 + 1e-3 * inv : e[i] > 1e-3)) {
                    rc = ak_fail(err, AK_EDATA,
                                 "attn.entropy[%lld, %lld, %lld] = %g outside [0, log(visible)]",
                                 (long long)l, (long long)h, (long long)i, e[i]);
                    goto out;
                }
                if (!isfinite(m[i]) || m[i] < -1e-6) {
                    rc = ak_fail(err, AK_EDATA, "attn.mass[%lld, %lld, %lld] = %g",
                                 (long long)l, (long long)h, (long long)i, m[i]);
                    goto out;
                }
                total += m[i];
            }
            if (fabs(total - (double)s->T) > 1e-2 * (double)s->T) {
                rc = ak_fail(err, AK_EDATA, "attn.mass[%lld, %lld, :] sums to %g, not T = %lld",
                             (long long)l, (long long)h, total, (long long)s->T);
                goto out;
            }
        }
    }
out:
    free(il);
    return rc;
}

const char *ak_head_class_name(ak_head_class c)
{
    return c == AK_HEAD_SHARP ? "sharp" : c == AK_HEAD_DIFFUSE ? "diffuse" : "mixed";
}

int ak_head_summaries(const ak_attn_stats *s, ak_head_summary *out, ak_err *err)
{
    double *il = malloc(sizeof *il * ((size_t)s->T + 1));
    if (!il)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    for (int64_t l = 0; l < s->L; l++) {
        inv_log_visible(s, l, il);
        for (int64_t h = 0; h < s->H; h++) {
            const float *e = s->entropy + (l * s->H + h) * s->T;
            const float *m = s->mass + (l * s->H + h) * s->T;
            double se = 0, sn = 0, total = 0;
            for (int64_t i = 0; i < s->T; i++) {
                se += e[i];
                sn += e[i] * il[i];
                total += m[i];
            }
            ak_head_summary *o = &out[l * s->H + h];
            o->entropy = s->T ? se / (double)s->T : 0;
            o->norm_entropy = s->T ? sn / (double)s->T : 0;
            o->sink_share = total > 0 ? m[0] / total : 0;
            o->cls = o->norm_entropy < AK_SHARP_BELOW ? AK_HEAD_SHARP
                     : o->norm_entropy > AK_DIFFUSE_ABOVE ? AK_HEAD_DIFFUSE : AK_HEAD_MIXED;
            o->sink = o->sink_share > AK_SINK_ABOVE;
        }
    }
    free(il);
    return 0;
}

int ak_token_metrics_agg(const ak_attn_stats *s, int64_t l0, int64_t l1,
                         ak_agg agg, const double *weights,
                         ak_token_metrics *out, ak_err *err)
{
    if (l0 < 0 || l1 >= s->L || l0 > l1)
        return ak_fail(err, AK_EUSAGE, "layer range %lld-%lld outside 0-%lld",
                       (long long)l0, (long long)l1, (long long)(s->L - 1));
    int64_t T = s->T;
    float *corr = malloc(sizeof *corr * ((size_t)T + 1));
    double *il = malloc(sizeof *il * ((size_t)T + 1));
    if (!corr || !il) {
        free(corr);
        free(il);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    float *outs[4] = {out->entropy, out->norm_entropy, out->mass, out->corrected};
    for (int k = 0; k < 4; k++)
        if (outs[k])
            for (int64_t i = 0; i < T; i++)
                outs[k][i] = agg == AK_AGG_MAX ? -INFINITY : 0.0f;
    double wsum = 0;
    for (int64_t l = l0; l <= l1; l++) {
        inv_log_visible(s, l, il);
        for (int64_t h = 0; h < s->H; h++) {
            double w = weights ? weights[l * s->H + h] : 1.0;
            wsum += w;
            const float *e = s->entropy + (l * s->H + h) * T;
            const float *m = s->mass + (l * s->H + h) * T;
            ak_corrected_mass(s->mask, m, T, corr);
            for (int64_t i = 0; i < T; i++) {
                float v[4] = {e[i], (float)(e[i] * il[i]), m[i], corr[i]};
                for (int k = 0; k < 4; k++) {
                    if (!outs[k])
                        continue;
                    if (agg == AK_AGG_MAX) {
                        if (v[k] > outs[k][i])
                            outs[k][i] = v[k];
                    } else {
                        outs[k][i] += (float)(w * v[k]);
                    }
                }
            }
        }
    }
    if (agg == AK_AGG_MEAN)
        for (int k = 0; k < 4; k++)
            if (outs[k])
                for (int64_t i = 0; i < T; i++)
                    outs[k][i] = wsum > 0 ? (float)(outs[k][i] / wsum) : 0.0f;
    free(corr);
    free(il);
    return 0;
}

int ak_block_count(const int32_t *seg, int64_t T, int64_t *nblocks, ak_err *err)
{
    int64_t n = 0;
    for (int64_t i = 0; i < T; i++) {
        if (seg[i] < -1)
            return ak_fail(err, AK_EDATA, "segments[%lld] = %d: block ids are -1 or >= 0",
                           (long long)i, seg[i]);
        if (seg[i] >= T)
            return ak_fail(err, AK_EDATA, "segments[%lld] = %d: more blocks than tokens",
                           (long long)i, seg[i]);
        if (seg[i] + 1 > n)
            n = seg[i] + 1;
    }
    *nblocks = n;
    return 0;
}

int ak_block_agg(const int32_t *seg, int64_t T, const float *x, int64_t nblocks,
                 int64_t *count, float *mean, float *sum, float *max, ak_err *err)
{
    double *acc = calloc((size_t)nblocks + 1, sizeof *acc);
    int64_t *cnt = calloc((size_t)nblocks + 1, sizeof *cnt);
    if (!acc || !cnt) {
        free(acc);
        free(cnt);
        return ak_fail(err, AK_ENOMEM, "out of memory for %lld blocks", (long long)nblocks);
    }
    if (max)
        for (int64_t b = 0; b < nblocks; b++)
            max[b] = -INFINITY;
    for (int64_t i = 0; i < T; i++) {
        int32_t b = seg[i];
        if (b < 0 || b >= nblocks)
            continue;
        cnt[b]++;
        acc[b] += x[i];
        if (max && x[i] > max[b])
            max[b] = x[i];
    }
    for (int64_t b = 0; b < nblocks; b++) {
        if (count) count[b] = cnt[b];
        if (sum) sum[b] = (float)acc[b];
        if (mean) mean[b] = cnt[b] ? (float)(acc[b] / (double)cnt[b]) : 0.0f;
        if (max && !cnt[b]) max[b] = 0.0f;
    }
    free(acc);
    free(cnt);
    return 0;
}
