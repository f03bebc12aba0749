/* forward.c - the blocks of a transformer on the CPU: projections and MLP
 * through BLAS, norms, activations and RoPE here, attention (with entropy
 * and received mass) in attention.c. */
#include "attention.h"
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y = x W^T + b (beta = 0), or y += x W^T + b (accumulate). */
static void linear(const ak_linear *l, const float *x, int T, float *y, int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (l->b) {
        for (int t = 0; t < T; t++) {
            float *yr = y + (size_t)t * l->out;
            for (int i = 0; i < l->out; i++)
                yr[i] = (accumulate ? yr[i] : 0.0f) + l->b[i];
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, l->in_out ? CblasNoTrans : CblasTrans, T, l->out,
                l->in, 1.0f, x, l->in, l->w, l->ldw, beta, y, l->out);
}

/* RMSNorm as Llama defines it: x / sqrt(mean(x^2) + eps) * w. */
static void rmsnorm(float *y, const float *x, int T, int D, const float *w, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * D;
        float *yr = y + (size_t)t * D;
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / D + eps));
        for (int i = 0; i < D; i++)
            yr[i] = w[i] * (xr[i] * inv);
    }
}

static void norm(const ak_model *m, float *y, const float *x, int T, const float *w, const float *b)
{
    if (m->family == AK_FAMILY_LLAMA)
        rmsnorm(y, x, T, m->hidden_size, w, m->norm_eps);
    else
        ak_layernorm(y, x, T, m->hidden_size, w, b, m->norm_eps);
}

static void activate(ak_act act, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (act) {
        case AK_ACT_GELU_ERF: x[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); break;
        case AK_ACT_GELU_TANH: /* gelu_new: Hendrycks & Gimpel's tanh approximation */
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            break;
        case AK_ACT_SILU: x[i] = v / (1.0f + expf(-v)); break;
        case AK_ACT_RELU: x[i] = v > 0 ? v : 0; break;
        }
    }
}

/* Rotates pairs (i, i + half) of every head by angle pos * inv_freq[i]
 * (transformers' rotate_half convention). */
static void rope(float *x, int T, int heads, int dh, const float *cosv, const float *sinv)
{
    int half = dh / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < heads; h++) {
            float *v = x + ((size_t)t * heads + h) * dh;
            const float *c = cosv + (size_t)t * half, *s = sinv + (size_t)t * half;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
}

/* Probabilities of the chosen heads only, one head at a time, so that
 * memory is h x T x T rather than H x T x T. */
static int head_probs(ak_attn_ws *ws, ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                      const float *q, const float *k, const float *v, const unsigned char *heads,
                      float *probs, ak_err *err)
{
    size_t T = (size_t)s->n_q, Dh = (size_t)s->head_dim;
    int group = s->n_heads / s->n_kv_heads, rc = 0;
    float *buf = malloc(4 * T * Dh * sizeof(float));
    if (!buf)
        return ak_fail(err, AK_ENOMEM, "out of memory for %zu tokens", T);
    float *qh = buf, *kh = buf + T * Dh, *vh = buf + 2 * T * Dh, *oh = buf + 3 * T * Dh;
    ak_attn_shape one = *s;
    one.n_heads = one.n_kv_heads = 1;
    for (int h = 0, n = 0; h < s->n_heads && !rc; h++) {
        if (!heads[h])
            continue;
        int g = h / group;
        for (size_t t = 0; t < T; t++) {
            memcpy(qh + t * Dh, q + (t * s->n_heads + h) * Dh, Dh * sizeof(float));
            memcpy(kh + t * Dh, k + (t * s->n_kv_heads + g) * Dh, Dh * sizeof(float));
            memcpy(vh + t * Dh, v + (t * s->n_kv_heads + g) * Dh, Dh * sizeof(float));
        }
        ak_attn_out ao = {oh, NULL, NULL, probs + (size_t)n++ * T * T};
        rc = ak_attention_ws(ws, dev, dt, &one, qh, kh, vh, &ao, err);
    }
    free(buf);
    return rc;
}

int ak_model_forward(const ak_model *m, ak_device dev, float *x, int T, ak_forward_out *o,
                     ak_err *err)
{
    if (T <= 0)
        return 0;
    int D = m->hidden_size, H = m->n_heads, Hkv = m->n_kv_heads, Dh = m->head_dim;
    int F = m->intermediate_size, L = m->n_layers;
    size_t qd = (size_t)H * Dh, kvd = (size_t)Hkv * Dh, half = (size_t)Dh / 2;
    size_t Tz = (size_t)T;
    float *xn = malloc(Tz * D * sizeof(float));
    float *q = malloc(Tz * qd * sizeof(float));
    float *k = malloc(Tz * kvd * sizeof(float));
    float *v = malloc(Tz * kvd * sizeof(float));
    float *att = malloc(Tz * qd * sizeof(float));
    float *up = malloc(Tz * F * sizeof(float));
    float *gate = m->family == AK_FAMILY_LLAMA ? malloc(Tz * F * sizeof(float)) : NULL;
    float *cosv = NULL, *sinv = NULL;
    ak_attn_ws *ws = NULL; /* one for every layer's attention */
    int rc = ak_attn_ws_new(&ws, err);
    if (rc)
        return rc;
    if (m->rope != AK_ROPE_NONE) {
        cosv = malloc(Tz * half * sizeof(float));
        sinv = malloc(Tz * half * sizeof(float));
    }
    if (!xn || !q || !k || !v || !att || !up || (m->family == AK_FAMILY_LLAMA && !gate) ||
        (m->rope != AK_ROPE_NONE && (!cosv || !sinv))) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory for %d tokens", T);
        goto out;
    }
    if (cosv)
        for (size_t t = 0; t < Tz; t++)
            for (size_t i = 0; i < half; i++) {
                float angle = (float)t * m->inv_freq[i];   /* f32, as transformers does */
                cosv[t * half + i] = (float)cos(angle);
                sinv[t * half + i] = (float)sin(angle);
            }
    int post_ln = m->family == AK_FAMILY_BERT;
    for (int l = 0; l < L; l++) {
        const ak_layer *ly = &m->layers[l];
        const float *ain = x;
        if (!post_ln) {
            norm(m, xn, x, T, ly->norm1_w, ly->norm1_b);
            ain = xn;
        }
        linear(&ly->q, ain, T, q, 0);
        linear(&ly->k, ain, T, k, 0);
        linear(&ly->v, ain, T, v, 0);
        if (cosv) {
            rope(q, T, H, Dh, cosv, sinv);
            rope(k, T, Hkv, Dh, cosv, sinv);
        }
        ak_attn_shape s = {T, T, 0, H, Hkv, Dh, m->causal, ly->window,
                           m->attn_scale / (m->attn_scale_by_layer ? (float)(l + 1) : 1.0f)};
        float *probs = o->probs ? o->probs[l] : NULL;
        ak_attn_out ao = {att, o->entropy ? o->entropy + (size_t)l * H * Tz : NULL,
                          o->mass ? o->mass + (size_t)l * H * Tz : NULL,
                          o->probs_heads ? NULL : probs};
        ak_attn_dtype dt = (ak_attn_dtype)o->attn_dtype;
        if ((rc = ak_attention_ws(ws, dev, dt, &s, q, k, v, &ao, err)) ||
            (probs && o->probs_heads &&
             (rc = head_probs(ws, dev, dt, &s, q, k, v, o->probs_heads, probs, err)))) {
            ak_wrap(err, "layer %d attention", l);
            goto out;
        }
        if (o->visible)
            for (int i = 0; i < T; i++)
                o->visible[(size_t)l * Tz + i] =
                    (int32_t)ak_mask_visible((ak_mask){m->causal, ly->window}, T, i);
        if (o->kv_k)
            for (int h = 0; h < Hkv; h++)
                for (int t = 0; t < T; t++) {
                    size_t dst = (((size_t)l * Hkv + h) * Tz + t) * Dh;
                    memcpy(o->kv_k + dst, k + ((size_t)t * Hkv + h) * Dh, (size_t)Dh * sizeof(float));
                    memcpy(o->kv_v + dst, v + ((size_t)t * Hkv + h) * Dh, (size_t)Dh * sizeof(float));
                }
        if (post_ln) {
            /* BERT: x = LN(x + O(att)); x = LN(x + MLP(x)) */
            linear(&ly->o, att, T, x, 1);
            ak_layernorm(x, x, T, D, ly->norm1_w, ly->norm1_b, m->norm_eps);
            linear(&ly->up, x, T, up, 0);
            activate(m->act, up, Tz * F);
            linear(&ly->down, up, T, x, 1);
            ak_layernorm(x, x, T, D, ly->norm2_w, ly->norm2_b, m->norm_eps);
        } else {
            /* pre-LN: x += O(att); x += MLP(norm(x)) */
            linear(&ly->o, att, T, x, 1);
            norm(m, xn, x, T, ly->norm2_w, ly->norm2_b);
            linear(&ly->up, xn, T, up, 0);
            if (gate) {
                linear(&ly->gate, xn, T, gate, 0);
                activate(m->act, gate, Tz * F);
                for (size_t i = 0; i < Tz * F; i++)
                    up[i] *= gate[i];
            } else {
                activate(m->act, up, Tz * F);
            }
            linear(&ly->down, up, T, x, 1);
        }
    }
    if (m->final_norm_w)
        norm(m, x, x, T, m->final_norm_w, m->final_norm_b);
    if (o->logits) {
        if (!m->lm_head.w) {
            rc = ak_fail(err, AK_ECONFIG, "model %s has no language-model head", m->name);
            goto out;
        }
        if (o->logits_all)
            linear(&m->lm_head, x, T, o->logits, 0);
        else
            linear(&m->lm_head, x + (Tz - 1) * D, 1, o->logits, 0);
    }
out:
    ak_attn_ws_free(ws);
    free(xn);
    free(q);
    free(k);
    free(v);
    free(att);
    free(up);
    free(gate);
    free(cosv);
    free(sinv);
    return rc;
}
