/* evict.c - KV-cache eviction policies (evict.h). */
#include "attnkit/evict.h"
#include "attnkit/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"none", "streaming", "h2o", "snapkv", "random", "first",
                                    "last"};

const char *ak_evict_policy_name(ak_evict_policy p)
{
    return (unsigned)p < sizeof names / sizeof *names ? names[p] : "?";
}

int ak_evict_policy_from_name(const char *name, ak_evict_policy *p)
{
    for (size_t i = 1; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) {
            *p = (ak_evict_policy)i;
            return 0;
        }
    return -1;
}

typedef struct {
    float score;
    int32_t pos;
    int index;
} cand;

/* best first; ties: the more recent */
static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->pos > y->pos ? -1 : x->pos < y->pos;
}

/* The entry's score under the policy (INFINITY: always kept). */
static float score_of(const ak_evict_opts *o, const ak_kvhead *hd, int i, int n, int recent,
                      int n_tokens, const float *pooled)
{
    float pos = (float)hd->pos[i];
    switch (o->policy) {
    case AK_EVICT_STREAMING: return hd->pos[i] < o->sink ? INFINITY : pos;
    case AK_EVICT_H2O: return i >= n - recent ? INFINITY : hd->mass[i];
    case AK_EVICT_SNAPKV: return hd->pos[i] >= n_tokens - o->window ? INFINITY : pooled[i];
    case AK_EVICT_RANDOM: return (float)(ak_rng_next(o->rng) >> 40);
    case AK_EVICT_FIRST: return -pos;
    case AK_EVICT_LAST: return pos;
    case AK_EVICT_NONE: break;
    }
    return 0;
}

/* Keeps `budget` entries of one head: the protected ones, then the best
 * by the policy's score. */
static int evict_head(ak_kvcache *kc, const ak_evict_opts *o, int l, int g, int budget,
                      ak_err *err)
{
    ak_kvhead *hd = ak_kvcache_head(kc, l, g);
    int n = hd->n;
    if (n <= budget)
        return 0;
    int nprot = 0;
    for (int i = 0; i < n; i++)
        nprot += o->protect && o->protect[hd->pos[i]];
    if (nprot > budget)
        return ak_fail(err, AK_EUSAGE, "a budget of %d entries is below the %d protected tokens "
                       "(layer %d, KV head %d)", budget, nprot, l, g);
    cand *cs = malloc((size_t)n * sizeof *cs);
    unsigned char *keep = calloc((size_t)n, 1);
    float *pooled = malloc((size_t)n * sizeof(float));
    if (!cs || !keep || !pooled) {
        free(cs);
        free(keep);
        free(pooled);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    int free_slots = budget - nprot, recent = free_slots / 2;
    if (o->policy == AK_EVICT_SNAPKV)   /* SnapKV pools the votes over neighbouring keys (kernel 7) */
        for (int i = 0; i < n; i++) {
            float mx = 0;
            for (int j = i - 3 < 0 ? 0 : i - 3; j <= i + 3 && j < n; j++)
                mx = hd->mass_last[j] > mx ? hd->mass_last[j] : mx;
            pooled[i] = mx;
        }
    int nc = 0;
    for (int i = 0; i < n; i++) {
        if (o->protect && o->protect[hd->pos[i]])
            keep[i] = 1;
        else
            cs[nc++] = (cand){score_of(o, hd, i, n, recent, kc->n_tokens, pooled), hd->pos[i], i};
    }
    qsort(cs, (size_t)nc, sizeof *cs, by_score);
    for (int i = 0; i < free_slots && i < nc; i++)
        keep[cs[i].index] = 1;
    ak_kvcache_keep(kc, l, g, keep);
    free(cs);
    free(keep);
    free(pooled);
    return 0;
}

int ak_kvcache_evict(ak_kvcache *c, const ak_evict_opts *o, ak_err *err)
{
    if (o->policy == AK_EVICT_NONE)
        return 0;
    if (o->policy == AK_EVICT_SNAPKV && c->last_w != o->window)
        return c->last_w > 0
            ? ak_fail(err, AK_EUSAGE, "snapkv: the cache holds the mass of the last %d queries, "
                      "not %d (run the tokens here, or --window %d)", c->last_w, o->window,
                      c->last_w)
            : ak_fail(err, AK_EUSAGE, "snapkv: the cache holds no mass of its last queries "
                      "(saved by an older kvcache): run the tokens here");
    if (o->policy == AK_EVICT_RANDOM && !o->rng)
        return ak_fail(err, AK_EUSAGE, "random eviction needs a random state");
    long budget = o->keep_tokens >= 0 ? o->keep_tokens
                                      : (long)ceil(o->keep_ratio * c->n_tokens - 1e-9);
    int rc = 0;
    for (int l = 0; !rc && l < c->n_layers; l++)
        for (int g = 0; !rc && g < c->n_kv_heads; g++)
            rc = evict_head(c, o, l, g, budget > INT32_MAX ? INT32_MAX : (int)budget, err);
    return rc;
}
