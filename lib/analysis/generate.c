/* generate.c - decoding and scoring from a key/value cache (generate.h). */
#include "attnkit/generate.h"
#include "stream/check.h"
#include "model/lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ak_generate_step(const ak_model *m, ak_device dev, ak_kvcache *c, int32_t id, float *hidden,
                     float *logits, ak_err *err)
{
    ak_forward_out o = {.logits = logits};
    int rc = ak_kvcache_forward(m, dev, c, &id, 1, hidden, &o, err);
    if (!rc && ak_first_nonfinite(logits, (size_t)m->vocab_size) < (size_t)m->vocab_size)
        rc = ak_fail(err, AK_EDATA, "the logits at position %d are not finite", c->n_tokens - 1);
    return rc;
}

/* One generated token through the cache, with its attention on the cached
 * keys into mc[L, H, n_tokens]. */
static int step_mass(const ak_model *m, ak_device dev, ak_kvcache *c, int32_t id, float *hidden,
                     float *logits, float *mc, ak_err *err)
{
    size_t LH = (size_t)m->n_layers * m->n_heads;
    memset(mc, 0, LH * (size_t)c->n_tokens * sizeof(float));  /* evicted keys stay 0 */
    ak_forward_out o = {.logits = logits, .mass_cached = mc};
    int rc = ak_kvcache_forward(m, dev, c, &id, 1, hidden, &o, err);
    if (!rc && ak_first_nonfinite(logits, (size_t)m->vocab_size) < (size_t)m->vocab_size)
        rc = ak_fail(err, AK_EDATA, "the logits at position %d are not finite", c->n_tokens - 1);
    return rc;
}

static int is_stop(const ak_gen_opts *o, int32_t id)
{
    for (int i = 0; i < o->nstop; i++)
        if (o->stop[i] == id)
            return 1;
    return 0;
}

void ak_gen_out_free(ak_gen_out *out)
{
    free(out->ids);
    free(out->mass);
    memset(out, 0, sizeof *out);
}

/* Each generated token (once chosen; a stop token is not run) goes through
 * the model; with mass_rows, the mass the queries of the first G of them
 * put on each prompt key is summed into out->mass. */
int ak_generate(const ak_model *m, ak_device dev, ak_kvcache *c, const float *last_logits,
                const ak_gen_opts *o, ak_gen_out *out, ak_err *err)
{
    memset(out, 0, sizeof *out);
    int V = m->vocab_size, rc = 0, G = o->mass_rows, base = o->base, T = c->n_tokens - base;
    size_t LH = (size_t)m->n_layers * m->n_heads;
    float *logits = malloc((size_t)V * sizeof(float));
    float *hidden = malloc((size_t)m->hidden_size * sizeof(float));
    float *mc = NULL;
    out->ids = malloc(((size_t)o->max_new + 1) * sizeof(int32_t));
    if (!out->ids || !logits || !hidden) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    if (G > 0 && (!(out->mass = calloc(LH * (size_t)(T > 0 ? T : 1), sizeof(float))) ||
                  !(mc = malloc(LH * ((size_t)c->n_tokens + (size_t)G + 1) * sizeof(float))))) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory for the generated tokens' mass");
        goto out;
    }
    memcpy(logits, last_logits, (size_t)V * sizeof(float));
    while (out->n < o->max_new) {
        int32_t id = ak_sampler_next(o->sampler, logits);
        out->ids[out->n++] = id;
        int stop = is_stop(o, id), ng = out->n;
        if (c->n_tokens >= m->max_positions && !stop && ng < o->max_new) {
            out->stopped_at_context = 1;   /* the model's context ends here */
            break;
        }
        int want_mass = ng <= G && !stop;
        if (stop || (ng == o->max_new && !want_mass))
            break;
        int n0 = c->n_tokens;
        if ((rc = want_mass ? step_mass(m, dev, c, id, hidden, logits, mc, err)
                            : ak_generate_step(m, dev, c, id, hidden, logits, err)))
            goto out;
        if (want_mass) {
            for (size_t lh = 0; lh < LH; lh++)
                for (int t = 0; t < T; t++)
                    out->mass[lh * T + t] += mc[lh * n0 + base + t];
            out->mass_rows++;
        }
    }
out:
    free(mc);
    free(logits);
    free(hidden);
    if (rc)
        ak_gen_out_free(out);
    return rc;
}

int ak_score_continuation(const ak_model *m, ak_device dev, ak_kvcache *c,
                          const float *last_logits, const int32_t *ids, size_t n, float *logprob,
                          double *total, ak_err *err)
{
    int V = m->vocab_size, n0 = c->n_tokens;
    *total = 0;
    if (n == 0)
        return 0;
    if ((int64_t)n0 + (int64_t)n - 1 > m->max_positions)
        return ak_fail(err, AK_EDATA, "the continuation's %zu tokens after the prompt's %d pass "
                       "the model's context of %d positions", n, n0, m->max_positions);
    /* logits[n, V]: row 0 the cache's last, row i the one after ids[i-1];
     * ak_lm_surprisal_logits reads row i-1 for token i of next[n + 1] */
    float *logits = malloc(n * (size_t)V * sizeof(float));
    float *hidden = n > 1 ? malloc((n - 1) * (size_t)m->hidden_size * sizeof(float)) : NULL;
    int32_t *next = malloc((n + 1) * sizeof(int32_t));
    float *sur = malloc((n + 1) * sizeof(float));
    int rc = 0;
    if (!logits || !next || !sur || (n > 1 && !hidden)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory for a continuation of %zu tokens", n);
        goto out;
    }
    memcpy(logits, last_logits, (size_t)V * sizeof(float));
    if (n > 1) {
        ak_forward_out o = {.logits = logits + V, .logits_all = 1};
        rc = ak_kvcache_forward(m, dev, c, ids, (int)n - 1, hidden, &o, err);
        ak_kvcache_truncate(c, n0);
        if (rc)
            goto out;
    }
    next[0] = 0;
    memcpy(next + 1, ids, n * sizeof(int32_t));
    if ((rc = ak_lm_surprisal_logits(logits, V, next, (int64_t)n + 1, sur, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        logprob[i] = -sur[i + 1];
        *total += logprob[i];
    }
    if (!isfinite(*total))
        rc = ak_fail(err, AK_EDATA, "the continuation's log-likelihood is not finite");
out:
    free(logits);
    free(hidden);
    free(next);
    free(sur);
    return rc;
}
