/* metrics.c - entropy, normalised entropy, corrected received mass, head
 * summaries and aggregation (formulas in metrics.h). */
#include "attnkit/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Layer l's mask.  The meta's window is the largest of the model's layers
 * (attend); a model that interleaves sliding and global layers (Gemma 3)
 * has layers with none, which attn.visible shows: past the window, a
 * global layer's last query sees more keys than the window holds. */
static ak_mask layer_mask(const ak_attn_stats *s, int64_t l)
{
    ak_mask m = s->mask;
    if (s->visible && m.window > 0 && s->T > m.window && s->visible[l * s->T + s->T - 1] > m.window)
        m.window = 0;
    return m;
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
        ak_mask lm = layer_mask(s, l);
        if (s->visible)
            for (int64_t i = 0; i < s->T; i++) {
                int64_t v = s->visible[l * s->T + i], want = ak_mask_visible(lm, s->T, i);
                if (v != want) {
                    rc = ak_fail(err, AK_EDATA,
                                   "attn.visible[%lld, %lld] is %lld, the mask (causal %d, "
                                   "window %d) gives %lld", (long long)l, (long long)i,
                                   (long long)v, lm.causal, lm.window, (long long)want);
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
            ak_corrected_mass(layer_mask(s, l), m, T, corr);
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

/* ---- statistics from a document ---- */

int ak_doc_mask(const ak_doc *d, ak_mask *m, ak_err *err)
{
    int64_t x;
    int rc = ak_meta_int(&d->meta, "causal", &x);
    if (rc < 0)
        return ak_fail(err, AK_EDATA, "document '%s': meta causal is not an integer", d->id);
    if (rc == 0)
        m->causal = x != 0;
    if ((rc = ak_meta_int(&d->meta, "window", &x)) < 0 || (rc == 0 && (x < 0 || x > INT32_MAX)))
        return ak_fail(err, AK_EDATA, "document '%s': meta window is not an integer in "
                       "[0, 2^31)", d->id);
    if (rc == 0)
        m->window = (int)x;
    return 0;
}

int ak_doc_segments(const ak_doc *d, int64_t T, const int32_t **seg, ak_err *err)
{
    *seg = NULL;
    ak_tensor *st = ak_doc_get(d, "segments");
    if (!st)
        return 0;
    if (st->dtype != AK_I32 || st->ndim != 1)
        return ak_fail(err, AK_EDATA, "document '%s': segments is not i32 [%lld]", d->id,
                       (long long)T);
    if (st->shape[0] != T)
        return ak_fail(err, AK_EDATA, "document '%s': segments has %lld tokens, not %lld",
                       d->id, (long long)st->shape[0], (long long)T);
    *seg = ak_tensor_i32(st);
    return 0;
}

long ak_probs_layer(const char *n)
{
    if (strncmp(n, "attn.probs.", 11) != 0 || n[11] < '0' || n[11] > '9')
        return -1;
    char *end;
    long l = strtol(n + 11, &end, 10);
    return *end || l < 0 ? -1 : l;
}

void ak_probs_stats_free(ak_probs_stats *ps)
{
    free(ps->entropy);
    free(ps->mass);
    free(ps->layer_id);
    free(ps->head_id);
    memset(ps, 0, sizeof *ps);
}

int ak_doc_probs_stats(const ak_doc *d, int64_t l0, int64_t l1, ak_probs_stats *ps,
                       ak_err *err)
{
    ak_err scratch;
    if (!err)
        err = &scratch;
    memset(ps, 0, sizeof *ps);
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err);
    if (!tok)
        return err->code;
    int64_t T = tok->shape[0], L = 0, H = -1;
    for (size_t k = 0; k < d->ntensors; k++) {
        long l = ak_probs_layer(d->tensors[k]->name);
        if (l < 0 || (l0 >= 0 && (l < l0 || l > l1)))
            continue;
        ak_tensor *t = d->tensors[k];
        if (t->dtype != AK_F32 || t->ndim != 3 || t->shape[1] != T || t->shape[2] != T)
            return ak_fail(err, AK_EDATA, "document '%s': %s is not f32 [h, %lld, %lld]", d->id,
                           t->name, (long long)T, (long long)T);
        if (H >= 0 && t->shape[0] != H)
            return ak_fail(err, AK_EDATA, "document '%s': attn.probs layers carry different "
                           "numbers of heads", d->id);
        H = t->shape[0];
        L++;
    }
    if (L == 0 || H <= 0)
        return ak_fail(err, AK_EDATA, "document '%s' has neither attn.entropy nor attn.probs.* "
                       "(run attend)", d->id);
    size_t per = (size_t)(H * T);
    ps->entropy = malloc(sizeof(float) * per * (size_t)L);
    ps->mass = malloc(sizeof(float) * per * (size_t)L);
    ps->layer_id = malloc(sizeof(int32_t) * (size_t)L);
    if (!ps->entropy || !ps->mass || !ps->layer_id)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    /* layers in increasing order, whatever the tensor order */
    int64_t n = 0;
    for (long want = -1;;) {
        long next = -1;
        for (size_t k = 0; k < d->ntensors; k++) {
            long l = ak_probs_layer(d->tensors[k]->name);
            if (l > want && (l0 < 0 || (l >= l0 && l <= l1)) && (next < 0 || l < next))
                next = l;
        }
        if (next < 0)
            break;
        char name[64];
        snprintf(name, sizeof name, "attn.probs.%ld", next);
        ak_tensor *t = ak_doc_get(d, name);
        int rc = ak_from_probs(ak_tensor_f32(t), H, T, ps->entropy + n * (int64_t)per,
                               ps->mass + n * (int64_t)per, err);
        if (rc)
            return ak_wrap(err, "document '%s': %s", d->id, name);
        ps->layer_id[n++] = (int32_t)next;
        snprintf(name, sizeof name, "attn.probs.%ld.heads", next);
        ak_tensor *hl = ak_doc_get(d, name);
        if (hl && hl->dtype == AK_I32 && hl->ndim == 1 && hl->shape[0] == H && !ps->head_id) {
            ps->head_id = malloc(sizeof(int32_t) * (size_t)H);
            if (!ps->head_id)
                return ak_fail(err, AK_ENOMEM, "out of memory");
            memcpy(ps->head_id, hl->data, sizeof(int32_t) * (size_t)H);
        }
        want = next;
    }
    ps->s = (ak_attn_stats){.L = L, .H = H, .T = T, .entropy = ps->entropy, .mass = ps->mass};
    int rc = ak_doc_mask(d, &ps->s.mask, err);
    if (rc)
        return rc;
    rc = ak_stats_check(&ps->s, err);
    return rc ? ak_wrap(err, "document '%s'", d->id) : 0;
}

int ak_doc_attn_stats(const ak_doc *d, ak_attn_stats *s, ak_err *err)
{
    ak_err scratch;
    if (!err)
        err = &scratch;
    memset(s, 0, sizeof *s);
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err);
    if (!tok)
        return err->code;
    ak_tensor *e = ak_doc_get(d, "attn.entropy"), *m = ak_doc_get(d, "attn.mass");
    if (!e || !m)
        return ak_fail(err, AK_EDATA, "document '%s' has no %s (run attend first)", d->id,
                       e ? "attn.mass" : "attn.entropy");
    if (!ak_doc_need(d, "attn.entropy", AK_F32, 3, err) ||
        !ak_doc_need(d, "attn.mass", AK_F32, 3, err))
        return err->code;
    int64_t T = tok->shape[0];
    for (int k = 0; k < 3; k++)
        if (e->shape[k] != m->shape[k])
            return ak_fail(err, AK_EDATA, "document '%s': attn.entropy and attn.mass shapes differ",
                           d->id);
    if (e->shape[2] != T)
        return ak_fail(err, AK_EDATA, "document '%s': attn.entropy has %lld tokens, tokens has %lld",
                       d->id, (long long)e->shape[2], (long long)T);
    s->L = e->shape[0];
    s->H = e->shape[1];
    s->T = T;
    s->entropy = ak_tensor_f32(e);
    s->mass = ak_tensor_f32(m);
    ak_tensor *v = ak_doc_get(d, "attn.visible");
    if (v) {
        if (!ak_doc_need(d, "attn.visible", AK_I32, 2, err))
            return err->code;
        if (v->shape[0] != s->L || v->shape[1] != T)
            return ak_fail(err, AK_EDATA, "document '%s': attn.visible is not [%lld, %lld]",
                           d->id, (long long)s->L, (long long)T);
        s->visible = ak_tensor_i32(v);
    }
    int rc = ak_doc_mask(d, &s->mask, err);
    if (rc)
        return rc;
    rc = ak_stats_check(s, err);
    if (rc)
        ak_wrap(err, "document '%s'", d->id);
    return rc;
}
