/* The sampler and the library's random generator (sample.h), and the
 * eviction policies' public entry (evict.h) on a hand-made cache. */
#include "attnkit/evict.h"
#include "attnkit/sample.h"
#include "test.h"

#include <string.h>

static void rng(void)
{
    /* splitmix64's published first outputs from state 0 (Vigna's
     * splitmix64.c): 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 */
    uint64_t s = 0;
    uint64_t a = ak_rng_next(&s), b = ak_rng_next(&s);
    CHECK(a == 0xe220a8397b1dcdafull && b == 0x6e789e6aa1b965f4ull,
          "ak_rng_next is splitmix64 (state 0: %016llx %016llx)", (unsigned long long)a,
          (unsigned long long)b);
}

static void sampler(void)
{
    float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, 0.0f};
    ak_sampler s;
    ak_err err;
    CHECK(ak_sampler_init(&s, 6, 0, 1, 0, &err) == 0 && ak_sampler_next(&s, logits) == 1,
          "greedy: the first largest logit");
    ak_sampler_free(&s);
    CHECK(ak_sampler_init(&s, 6, 1, 1e-9, 7, &err) == 0 && ak_sampler_next(&s, logits) == 1,
          "top-p near 0 samples the greedy token");
    ak_sampler_free(&s);
    int seq[2][32], seen[6] = {0};
    for (int k = 0; k < 2; k++) {
        ak_sampler_init(&s, 6, 1, 1, 42, &err);
        for (int i = 0; i < 32; i++)
            seq[k][i] = ak_sampler_next(&s, logits);
        ak_sampler_free(&s);
    }
    for (int i = 0; i < 32; i++)
        seen[seq[0][i]]++;
    CHECK(!memcmp(seq[0], seq[1], sizeof seq[0]), "the same seed, the same tokens");
    CHECK(seen[1] + seen[3] > seen[2] && seen[2] < 4, "temperature 1 draws the likely tokens "
          "most (%d %d %d %d %d %d)", seen[0], seen[1], seen[2], seen[3], seen[4], seen[5]);
    CHECK(ak_sampler_init(&s, 6, -1, 1, 0, &err) == AK_EUSAGE, "a negative temperature: %s",
          err.msg);
    CHECK(ak_sampler_init(&s, 6, 1, 0, 0, &err) == AK_EUSAGE, "top-p 0: %s", err.msg);
}

/* One layer, one KV head, 8 entries: mass i, positions 0..7. */
static ak_kvcache *cache(void)
{
    ak_kvcache *c = calloc(1, sizeof *c);
    ak_err err;
    c->n_layers = c->n_kv_heads = 1;
    c->head_dim = 2;
    c->n_tokens = c->cap_tokens = 8;
    c->ids = calloc(8, sizeof *c->ids);
    c->heads = calloc(1, sizeof *c->heads);
    ak_kvcache_reserve(c, 0, 0, 8, &err);
    ak_kvhead *h = ak_kvcache_head(c, 0, 0);
    h->n = 8;
    for (int i = 0; i < 8; i++) {
        h->pos[i] = i;
        h->mass[i] = (float)((i * 5) % 8);   /* 0 5 2 7 4 1 6 3 */
        h->mass_last[i] = 0;
    }
    return c;
}

static void positions(ak_kvcache *c, char *out)
{
    ak_kvhead *h = ak_kvcache_head(c, 0, 0);
    out[0] = 0;
    for (int i = 0; i < h->n; i++)
        sprintf(out + strlen(out), "%s%d", i ? " " : "", (int)h->pos[i]);
    ak_kvcache_free(c);
}

static void evict(void)
{
    ak_err err;
    char got[64];
    ak_kvcache *c = cache();
    ak_evict_opts o = {.policy = AK_EVICT_H2O, .keep_ratio = -1, .keep_tokens = 4};
    CHECK(ak_kvcache_evict(c, &o, &err) == 0, "h2o runs");
    positions(c, got);
    /* half the budget (2) to the most recent, 6 and 7; the rest by mass: 3 (7), 1 (5) */
    CHECK(!strcmp(got, "1 3 6 7"), "h2o keeps the recent half and the heaviest (%s)", got);
    c = cache();
    o = (ak_evict_opts){.policy = AK_EVICT_STREAMING, .keep_ratio = 0.5, .keep_tokens = -1,
                        .sink = 1};
    ak_kvcache_evict(c, &o, &err);
    positions(c, got);
    CHECK(!strcmp(got, "0 5 6 7"), "streaming keeps the sink and the most recent (%s)", got);
    c = cache();
    uint8_t protect[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    o = (ak_evict_opts){.policy = AK_EVICT_FIRST, .keep_tokens = 2, .protect = protect};
    ak_kvcache_evict(c, &o, &err);
    positions(c, got);
    CHECK(!strcmp(got, "0 2"), "a protected token is kept first (%s)", got);
    c = cache();
    o = (ak_evict_opts){.policy = AK_EVICT_LAST, .keep_tokens = 0, .protect = protect};
    CHECK(ak_kvcache_evict(c, &o, &err) == AK_EUSAGE && strstr(err.msg, "protected"),
          "a budget below the protected tokens: %s", err.msg);
    ak_kvcache_free(c);
    c = cache();
    o = (ak_evict_opts){.policy = AK_EVICT_SNAPKV, .keep_tokens = 4, .window = 2};
    CHECK(ak_kvcache_evict(c, &o, &err) == AK_EUSAGE && strstr(err.msg, "no mass"),
          "snapkv on a cache without last-query votes: %s", err.msg);
    ak_kvcache_free(c);
    ak_evict_policy p;
    CHECK(ak_evict_policy_from_name("snapkv", &p) == 0 && p == AK_EVICT_SNAPKV &&
          !strcmp(ak_evict_policy_name(p), "snapkv") && ak_evict_policy_from_name("none", &p) < 0,
          "policy names");
}

int main(void)
{
    rng();
    sampler();
    evict();
    TEST_DONE();
}
