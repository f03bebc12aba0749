/* window.c - long documents in overlapping windows (see window.h). */
#include "window.h"
#include "attnkit/mask.h"

#include <stdlib.h>
#include <string.h>

int ak_window_starts(int64_t T, int64_t W, int64_t K, int64_t **starts, int64_t *n, ak_err *err)
{
    if (W <= 0 || K < 0 || K >= W)
        return ak_fail(err, AK_EUSAGE, "window %lld with overlap %lld: need 0 <= overlap < window",
                       (long long)W, (long long)K);
    int64_t stride = W - K, cnt = T <= W ? 1 : 1 + (T - W + stride - 1) / stride;
    int64_t *s = malloc(sizeof *s * (size_t)cnt);
    if (!s)
        return ak_fail(err, AK_ENOMEM, "out of memory for %lld windows", (long long)cnt);
    for (int64_t k = 0; k < cnt; k++)
        s[k] = k * stride;
    if (cnt > 1)
        s[cnt - 1] = T - W; /* the last window ends at the last token */
    *starts = s;
    *n = cnt;
    return 0;
}

void ak_window_owner(const int64_t *starts, int64_t n, int64_t W, int64_t T, int32_t *owner)
{
    int64_t k = 0;
    for (int64_t i = 0; i < T; i++) {
        /* windows are sorted by start: the best one for i is at or after
         * the best one for i - 1 */
        while (k + 1 < n && starts[k + 1] <= i) {
            int64_t e = starts[k] + W - 1, here = i - starts[k] < e - i ? i - starts[k] : e - i;
            int64_t e2 = starts[k + 1] + W - 1,
                    next = i - starts[k + 1] < e2 - i ? i - starts[k + 1] : e2 - i;
            if (next > here || i > e)
                k++;
            else
                break;
        }
        owner[i] = (int32_t)k;
    }
}

int ak_window_forward(const ak_model *m, ak_device dev, const int32_t *ids, const int32_t *types,
                      int64_t T, int64_t W, int64_t K, ak_forward_out *o, float *final,
                      ak_err *err)
{
    if (o->probs || o->kv_k || o->kv_v)
        return ak_fail(err, AK_EUSAGE, "probabilities and keys/values are not merged over windows");
    if (W > T)
        W = T;
    if (K >= W)
        K = W > 0 ? W - 1 : 0;
    int64_t L = m->n_layers, H = m->n_heads, D = m->hidden_size, V = m->vocab_size;
    int64_t *starts = NULL, n = 0;
    int rc = ak_window_starts(T, W > 0 ? W : 1, K, &starts, &n, err);
    if (rc)
        return rc;
    int32_t *owner = malloc(sizeof *owner * ((size_t)T + 1));
    float *x = malloc(sizeof *x * (size_t)(W * D + 1));
    float *we = malloc(sizeof *we * (size_t)(L * H * W + 1));
    float *wm = malloc(sizeof *wm * (size_t)(L * H * W + 1));
    float *wl = o->logits ? malloc(sizeof *wl * (size_t)(W * V + 1)) : NULL;
    if (!owner || !x || !we || !wm || (o->logits && !wl)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory for windows of %lld tokens", (long long)W);
        goto out;
    }
    ak_window_owner(starts, n, W, T, owner);
    for (int64_t w = 0; w < n && !rc; w++) {
        int64_t s = starts[w];
        int last = w == n - 1;
        ak_forward_out wo = {.entropy = we, .mass = wm, .attn_dtype = o->attn_dtype};
        if (o->logits && (o->logits_all || last)) {
            wo.logits = wl;
            wo.logits_all = o->logits_all;
        }
        if ((rc = ak_model_embed(m, ids + s, types ? types + s : NULL, (int)W, x, err)) ||
            (rc = ak_model_forward(m, dev, x, (int)W, &wo, err))) {
            ak_wrap(err, "window %lld of %lld (tokens %lld-%lld)", (long long)w + 1, (long long)n,
                    (long long)s, (long long)(s + W - 1));
            break;
        }
        for (int64_t i = s; i < s + W; i++) {
            if (owner[i] != w)
                continue;
            int64_t r = i - s;
            for (int64_t l = 0; l < L; l++) {
                ak_mask mk = {m->causal, m->layers[l].window};
                double seers_w = (double)ak_mask_seers(mk, W, r),
                       seers_t = (double)ak_mask_seers(mk, T, i);
                for (int64_t h = 0; h < H; h++) {
                    size_t src = (size_t)((l * H + h) * W + r), dst = (size_t)((l * H + h) * T + i);
                    if (o->entropy)
                        o->entropy[dst] = we[src];
                    if (o->mass)
                        o->mass[dst] = seers_w > 0 ? (float)(wm[src] / seers_w * seers_t) : 0;
                }
            }
            if (final)
                memcpy(final + i * D, x + r * D, sizeof *x * (size_t)D);
            if (o->logits && o->logits_all)
                memcpy(o->logits + i * V, wl + r * V, sizeof *wl * (size_t)V);
        }
        if (o->logits && !o->logits_all && last)
            memcpy(o->logits, wl, sizeof *wl * (size_t)V);
    }
    if (!rc && o->mass && T > 0) /* each row sums to T, as one pass's does */
        for (int64_t lh = 0; lh < L * H; lh++) {
            double sum = 0;
            for (int64_t i = 0; i < T; i++)
                sum += o->mass[lh * T + i];
            if (sum > 0)
                for (int64_t i = 0; i < T; i++)
                    o->mass[lh * T + i] = (float)(o->mass[lh * T + i] * ((double)T / sum));
        }
    if (!rc && o->visible)
        for (int64_t l = 0; l < L; l++) {
            ak_mask mk = {m->causal, m->layers[l].window};
            for (int64_t i = 0; i < T; i++)
                o->visible[l * T + i] = (int32_t)ak_mask_visible(mk, T, i);
        }
out:
    free(starts);
    free(owner);
    free(x);
    free(we);
    free(wm);
    free(wl);
    return rc;
}
