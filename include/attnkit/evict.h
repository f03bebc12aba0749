/* evict.h - KV-cache eviction: keep a budget of entries in each (layer, KV
 * head) of a cache, each head choosing its own, by one of the policies of
 * the literature:
 *   streaming  StreamingLLM (Xiao et al. 2023): the first `sink` tokens
 *              and the most recent;
 *   h2o        H2O (Zhang et al. 2023): half the free budget to the most
 *              recent entries, the rest by accumulated received mass;
 *   snapkv     SnapKV (Li et al. 2024): the last `window` tokens, the rest
 *              by the mass the window's queries gave them, max-pooled over
 *              7 neighbouring keys;
 *   random, first, last   the baselines.
 * Protected tokens are kept first; a budget below them is an error. */
#ifndef AK_EVICT_H
#define AK_EVICT_H

#include "kvcache.h"

typedef enum ak_evict_policy {
    AK_EVICT_NONE, AK_EVICT_STREAMING, AK_EVICT_H2O, AK_EVICT_SNAPKV, AK_EVICT_RANDOM,
    AK_EVICT_FIRST, AK_EVICT_LAST
} ak_evict_policy;

/* "streaming", "h2o", ... ("none" for AK_EVICT_NONE). */
AK_API const char *ak_evict_policy_name(ak_evict_policy p);
/* 0, or -1 for a name that is no policy ("none" is not one either). */
AK_API int ak_evict_policy_from_name(const char *name, ak_evict_policy *p);

typedef struct ak_evict_opts {
    ak_evict_policy policy;
    double keep_ratio;        /* the budget: this fraction of the tokens (rounded up), or */
    long keep_tokens;         /* this many entries per head; < 0: keep_ratio */
    int sink;                 /* streaming's sink tokens */
    int window;               /* snapkv's window: the cache's last_w must equal it */
    const uint8_t *protect;   /* [n_tokens] 1 = never evicted, or NULL */
    uint64_t *rng;            /* random's state (sample.h's ak_rng_next) */
} ak_evict_opts;

/* Evicts in place.  AK_EUSAGE for a budget below the protected tokens and
 * for snapkv on a cache whose last_w is not the window. */
AK_API int ak_kvcache_evict(ak_kvcache *c, const ak_evict_opts *o, ak_err *err);

#endif
