/* The forward pass through a key/value cache against one pass over the
 * whole input, for every causal family of the tiny models (sliding windows
 * of Mistral, Qwen 2 and Gemma 3's local layers included): prefill N tokens,
 * then M more (at once, and one by one); logits, hidden states, entropy and
 * mass (the new keys', and the cached keys' as prefill + new queries' share)
 * equal the single run's within 1e-5 relative; the real models too when
 * installed (SmolLM2; Gemma 3 past its 512-token window with
 * ATTNKIT_SLOW_TESTS=1).  Then the cache file: a
 * round trip, and every flipped byte and every truncation of a real file
 * refused with a message. */
#include "attnkit/attention.h"
#include "attnkit/kvcache.h"
#include "attnkit/model.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* max |a - b| / max |b| */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d ? e : d;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    return s > 0 ? d / s : d;
}

typedef struct {
    float *hidden, *logits, *entropy, *mass, *mass_last;
} run_t;

static void run_free(run_t *r)
{
    free(r->hidden);
    free(r->logits);
    free(r->entropy);
    free(r->mass);
    free(r->mass_last);
}

static int run_alloc(const ak_model *m, int T, run_t *r)
{
    size_t LH = (size_t)m->n_layers * m->n_heads;
    r->hidden = calloc((size_t)T * m->hidden_size, 4);
    r->logits = calloc((size_t)T * m->vocab_size, 4);
    r->entropy = calloc(LH * T, 4);
    r->mass = calloc(LH * T, 4);
    r->mass_last = calloc(LH * T, 4);
    return r->hidden && r->logits && r->entropy && r->mass && r->mass_last ? 0 : -1;
}

/* The cache run of ids[N..N+M) in steps of `step` tokens, compared with
 * the full run's rows. */
static void compare_steps(const char *name, const ak_model *m, const int32_t *ids, int N, int M,
                          int step, const run_t *full)
{
    int L = m->n_layers, H = m->n_heads, D = m->hidden_size, V = m->vocab_size, T = N + M;
    size_t LH = (size_t)L * H;
    ak_err err = {0};
    ak_kvcache *c = NULL;
    run_t pre = {0}, got = {0};
    float *cached = calloc(LH * N, 4), *one_mass = NULL;
    if (ak_kvcache_new(&c, m, &err) || run_alloc(m, N, &pre) || run_alloc(m, M, &got) || !cached) {
        CHECK(0, "%s: allocate (%s)", name, err.msg);
        goto out;
    }
    ak_forward_out po = {.entropy = pre.entropy, .mass = pre.mass, .logits = pre.logits,
                         .logits_all = 1};
    int rc = ak_kvcache_forward(m, AK_DEV_CPU, c, ids, N, pre.hidden, &po, &err);
    CHECK(rc == 0, "%s: prefill %d tokens through the cache (%s)", name, N, err.msg);
    if (rc)
        goto out;
    /* mass the later queries put on the first N keys, summed over steps */
    float *step_cached = calloc(LH * T, 4);
    one_mass = calloc(LH * T, 4);
    for (int t0 = 0; t0 < M && !rc; t0 += step) {
        int n = M - t0 < step ? M - t0 : step, before = c->n_tokens;
        float *h = calloc((size_t)n * D, 4), *lg = calloc((size_t)n * V, 4);
        float *en = calloc(LH * n, 4), *ms = calloc(LH * n, 4);
        ak_forward_out o = {.entropy = en, .mass = ms, .logits = lg, .logits_all = 1,
                            .mass_cached = step_cached};
        rc = ak_kvcache_forward(m, AK_DEV_CPU, c, ids + N + t0, n, h, &o, &err);
        for (int i = 0; i < n && !rc; i++) {
            memcpy(got.hidden + (size_t)(t0 + i) * D, h + (size_t)i * D, (size_t)D * 4);
            memcpy(got.logits + (size_t)(t0 + i) * V, lg + (size_t)i * V, (size_t)V * 4);
        }
        for (size_t lh = 0; lh < LH && !rc; lh++) {
            for (int i = 0; i < n; i++)
                got.entropy[lh * M + t0 + i] = en[lh * n + i];
            /* mass on the new keys of this step, plus what it put on earlier keys */
            for (int i = 0; i < n; i++)
                one_mass[lh * T + before + i] += ms[lh * n + i];
            for (int j = 0; j < before; j++)
                one_mass[lh * T + j] += step_cached[lh * before + j];
        }
        free(h);
        free(lg);
        free(en);
        free(ms);
    }
    free(step_cached);
    CHECK(rc == 0, "%s: %d tokens in steps of %d (%s)", name, M, step, err.msg);
    if (rc)
        goto out;
    for (size_t lh = 0; lh < LH; lh++)
        for (int j = 0; j < N; j++)
            one_mass[lh * T + j] += pre.mass[lh * N + j];
    double dh = rel_diff(got.hidden, full->hidden + (size_t)N * D, (size_t)M * D);
    double dl = rel_diff(got.logits, full->logits + (size_t)N * V, (size_t)M * V);
    double dp = rel_diff(pre.logits, full->logits, (size_t)N * V);
    /* Entropy relative to the tensor's scale, as the other outputs: the new
     * queries' rows of every (layer, head) against the full run's.  (A
     * per-head scale would divide by a sharp head's near-zero entropies.) */
    double de_abs = 0, de_ref = 0, dm;
    for (size_t lh = 0; lh < LH; lh++)
        for (int i = 0; i < M; i++) {
            double a = got.entropy[lh * M + i], b = full->entropy[lh * T + N + i];
            de_abs = fabs(a - b) > de_abs ? fabs(a - b) : de_abs;
            de_ref = fabs(b) > de_ref ? fabs(b) : de_ref;
        }
    double de = de_ref > 0 ? de_abs / de_ref : de_abs;
    dm = rel_diff(one_mass, full->mass, LH * T);
    CHECK(dp <= 1e-5, "%s: prefill logits equal the full run's (%.2g)", name, dp);
    CHECK(dh <= 1e-5, "%s: steps of %d: hidden states equal the full run's (%.2g)", name, step, dh);
    CHECK(dl <= 1e-5, "%s: steps of %d: logits equal the full run's (%.2g)", name, step, dl);
    CHECK(de <= 1e-5, "%s: steps of %d: entropy equals the full run's (%.2g)", name, step, de);
    CHECK(dm <= 1e-5, "%s: steps of %d: mass (prefill + later queries on cached keys + new keys) "
          "equals the full run's (%.2g)", name, step, dm);
    CHECK(c->n_tokens == T && memcmp(c->ids, ids, (size_t)T * 4) == 0, "%s: the cache covers "
          "the %d ids", name, T);
out:
    free(cached);
    free(one_mass);
    run_free(&pre);
    run_free(&got);
    ak_kvcache_free(c);
}

/* mass_last: the last W queries' mass, from the full run and from a cache
 * run whose last step holds those W queries. */
static void compare_mass_last(const char *name, const ak_model *m, const int32_t *ids, int N,
                              int W, const run_t *full)
{
    int H = m->n_heads, group = H / m->n_kv_heads, T = N + W;
    ak_err err = {0};
    ak_kvcache *c = NULL;
    float *h = calloc((size_t)T * m->hidden_size, 4);
    ak_forward_out po = {0};
    ak_forward_out o = {.last_w = W};
    int rc = ak_kvcache_new(&c, m, &err) || ak_kvcache_forward(m, AK_DEV_CPU, c, ids, N, h, &po, &err) ||
             ak_kvcache_forward(m, AK_DEV_CPU, c, ids + N, W, h, &o, &err);
    CHECK(rc == 0, "%s: cache run for mass_last (%s)", name, err.msg);
    double worst = 0;
    for (int l = 0; !rc && l < m->n_layers; l++)
        for (int g = 0; g < m->n_kv_heads; g++) {
            ak_kvhead *hd = ak_kvcache_head(c, l, g);
            for (int j = 0; j < hd->n; j++) {
                double want = 0;
                for (int hh = 0; hh < group; hh++)
                    want += full->mass_last[((size_t)l * H + g * group + hh) * T + hd->pos[j]];
                double d = fabs(want - hd->mass_last[j]) / (want > 1 ? want : 1);
                worst = d > worst ? d : worst;
            }
        }
    CHECK(!rc && c->last_w == W && worst <= 1e-5, "%s: mass_last of the last %d queries, "
          "pooled per KV head, equals the full run's (%.2g)", name, W, worst);
    free(h);
    ak_kvcache_free(c);
}

static void family_at(const char *path, const char *dir, int N, int M, int steps_of_one)
{
    ak_model *m = NULL;
    ak_err err = {0};
    int rc = ak_model_load(&m, path, &err);
    CHECK(rc == 0, "%s: load (%s)", dir, err.msg);
    if (rc)
        return;
    ak_model_set_threads(m, 2);   /* the worker split of every product and attention */
    int T = N + M;
    int32_t *ids = malloc((size_t)T * 4);
    uint64_t x = 88172645463325252u;
    for (int t = 0; t < T; t++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[t] = (int32_t)(x % (uint64_t)m->vocab_size);
    }
    run_t full = {0};
    if (run_alloc(m, T, &full)) {
        CHECK(0, "%s: allocate", dir);
        goto out;
    }
    ak_forward_out o = {.entropy = full.entropy, .mass = full.mass, .logits = full.logits,
                        .logits_all = 1, .mass_last = full.mass_last, .last_w = M};
    rc = ak_model_embed(m, ids, NULL, T, full.hidden, &err) ||
         ak_model_forward(m, AK_DEV_CPU, full.hidden, T, &o, &err);
    CHECK(rc == 0, "%s: full run of %d tokens (%s)", dir, T, err.msg);
    if (rc)
        goto out;
    compare_steps(dir, m, ids, N, M, M, &full);
    if (steps_of_one) {
        compare_steps(dir, m, ids, N, M, 1, &full);
        compare_mass_last(dir, m, ids, N, M, &full);
    }
out:
    run_free(&full);
    free(ids);
    ak_model_free(m);
}

static void family(const char *top, const char *dir, int N, int M)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/model/%s", top, dir);
    family_at(path, dir, N, M, 1);
}

/* The real models when they are installed: SmolLM2, and Gemma 3 past its
 * local layers' 512-token window. */
static void real_models(const char *top)
{
    const char *dir = getenv("ATTNKIT_MODELS_DIR");
    char base[900], path[1024];
    snprintf(base, sizeof base, "%s", dir ? dir : "");
    if (!dir)
        snprintf(base, sizeof base, "%s/.cache/models", top);
    snprintf(path, sizeof path, "%s/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", base);
    if (access(path, R_OK) == 0)
        family_at(path, "smollm2", 40, 5, 1);
    else
        printf("# skip smollm2: no %s\n", path);
    /* 520 tokens of Gemma 3 take a minute under the sanitizers: on request
     * (the tiny Gemma 3, window 6, checks the same rule every run) */
    snprintf(path, sizeof path, "%s/gemma3/gemma-3-270m-q4_k_m.gguf", base);
    if (!getenv("ATTNKIT_SLOW_TESTS"))
        printf("# skip gemma3 past its window: set ATTNKIT_SLOW_TESTS=1\n");
    else if (access(path, R_OK) == 0)
        family_at(path, "gemma3 (past the 512 window)", 516, 4, 0);
    else
        printf("# skip gemma3: no %s\n", path);
}

/* Keys no later query can see (outside every layer's window) evicted:
 * the continuation does not change. */
static void evict_unseen(const char *top)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/model/mistral_swa_sharded", top);
    ak_model *m = NULL;
    ak_err err = {0};
    if (ak_model_load(&m, path, &err)) {
        CHECK(0, "mistral: load (%s)", err.msg);
        return;
    }
    int N = 30, M = 5, T = N + M, window = m->layers[0].window;
    int32_t ids[35];
    for (int t = 0; t < T; t++)
        ids[t] = (t * 37 + 11) % m->vocab_size;
    ak_kvcache *a = NULL, *b = NULL;
    float *h = calloc((size_t)T * m->hidden_size, 4), *la = calloc((size_t)m->vocab_size, 4),
          *lb = calloc((size_t)m->vocab_size, 4);
    ak_forward_out o = {0};
    int rc = ak_kvcache_new(&a, m, &err) || ak_kvcache_new(&b, m, &err) ||
             ak_kvcache_forward(m, AK_DEV_CPU, a, ids, N, h, &o, &err) ||
             ak_kvcache_forward(m, AK_DEV_CPU, b, ids, N, h, &o, &err);
    unsigned char keep[64];
    int kept = 0;
    for (int l = 0; !rc && l < m->n_layers; l++)
        for (int g = 0; g < m->n_kv_heads; g++) {
            ak_kvhead *hd = ak_kvcache_head(b, l, g);
            /* head g keeps a different tail: all it needs, plus g more */
            for (int j = 0; j < hd->n; j++)
                keep[j] = hd->pos[j] > N - window - g;
            ak_kvcache_keep(b, l, g, keep);
            kept += hd->n;
        }
    ak_forward_out oa = {.logits = la}, ob = {.logits = lb};
    rc = rc || ak_kvcache_forward(m, AK_DEV_CPU, a, ids + N, M, h, &oa, &err) ||
         ak_kvcache_forward(m, AK_DEV_CPU, b, ids + N, M, h, &ob, &err);
    CHECK(!rc && kept < m->n_layers * m->n_kv_heads * N,
          "mistral: evicted %d of %d entries (%s)", m->n_layers * m->n_kv_heads * N - kept,
          m->n_layers * m->n_kv_heads * N, err.msg);
    double d = rc ? 1 : rel_diff(lb, la, (size_t)m->vocab_size);
    CHECK(d <= 1e-6, "mistral: evicting keys outside the window changes nothing (%.2g)", d);
    /* evicting a key inside the window does change the logits */
    ak_kvhead *hd = ak_kvcache_head(b, 0, 0);
    memset(keep, 1, sizeof keep);
    keep[hd->n - 1] = 0;
    ak_kvcache_keep(b, 0, 0, keep);
    ak_forward_out oc = {.logits = lb};
    rc = rc || ak_kvcache_forward(m, AK_DEV_CPU, a, ids + 3, 1, h, &oa, &err) ||
         ak_kvcache_forward(m, AK_DEV_CPU, b, ids + 3, 1, h, &oc, &err);
    d = rc ? 0 : rel_diff(lb, la, (size_t)m->vocab_size);
    CHECK(d > 1e-4, "mistral: evicting a key in the window changes the logits (%.2g)", d);
    free(h);
    free(la);
    free(lb);
    ak_kvcache_free(a);
    ak_kvcache_free(b);
    ak_model_free(m);
}

static int same_cache(const ak_kvcache *a, const ak_kvcache *b)
{
    if (strcmp(a->arch, b->arch) || strcmp(a->name, b->name) || a->vocab_size != b->vocab_size ||
        a->config_crc32 != b->config_crc32 || a->n_layers != b->n_layers ||
        a->n_kv_heads != b->n_kv_heads || a->head_dim != b->head_dim ||
        a->n_tokens != b->n_tokens || a->last_w != b->last_w ||
        memcmp(a->ids, b->ids, (size_t)a->n_tokens * 4))
        return 0;
    size_t Dh = (size_t)a->head_dim;
    for (size_t i = 0; i < (size_t)a->n_layers * a->n_kv_heads; i++) {
        const ak_kvhead *x = &a->heads[i], *y = &b->heads[i];
        size_t n = (size_t)x->n;
        if (x->n != y->n || memcmp(x->pos, y->pos, n * 4) || memcmp(x->k, y->k, n * Dh * 4) ||
            memcmp(x->v, y->v, n * Dh * 4) || memcmp(x->mass, y->mass, n * 4) ||
            memcmp(x->mass_last, y->mass_last, n * 4))
            return 0;
    }
    return 1;
}

static int read_whole(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(*len + 1);
    size_t r = fread(*data, 1, *len, f);
    fclose(f);
    return r == *len ? 0 : -1;
}

static int write_whole(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) || w != len ? -1 : 0;
}

/* Every byte of a real cache file flipped (a sample of 1200 positions when
 * it is larger), and the file cut at every length (as many): each refused
 * with a message, none loaded. */
static void file_damage(const char *name, const char *file, const ak_kvcache *c)
{
    char *data = NULL, mutated[1100];
    size_t len = 0;
    if (read_whole(file, &data, &len)) {
        CHECK(0, "%s: read %s", name, file);
        return;
    }
    snprintf(mutated, sizeof mutated, "%s.bad", file);
    size_t stride = len > 1200 ? len / 1200 : 1;
    int flips = 0, flips_ok = 0, cuts = 0, cuts_ok = 0;
    char named[600] = "";
    for (size_t at = 0; at < len; at += stride) {
        data[at] ^= (char)(1 << (at % 8));
        write_whole(mutated, data, len);
        data[at] ^= (char)(1 << (at % 8));
        ak_kvcache *d = NULL;
        ak_err err = {0};
        int rc = ak_kvcache_load(&d, mutated, &err);
        flips++;
        if (rc == AK_EDATA && !d && strstr(err.msg, "kvcache: "))
            flips_ok++;
        if (!named[0] && at >= len / 2)
            snprintf(named, sizeof named, "%s", err.msg);
        ak_kvcache_free(d);
    }
    for (size_t cut = 0; cut < len; cut += stride) {
        write_whole(mutated, data, cut);
        ak_kvcache *d = NULL;
        ak_err err = {0};
        int rc = ak_kvcache_load(&d, mutated, &err);
        cuts++;
        if (rc == AK_EDATA && !d && strstr(err.msg, "kvcache: "))
            cuts_ok++;
        ak_kvcache_free(d);
    }
    CHECK(flips_ok == flips, "%s: %d of %d flipped bytes refused (%zu-byte file; e.g. \"%s\")",
          name, flips_ok, flips, len, named);
    CHECK(cuts_ok == cuts, "%s: %d of %d truncations refused", name, cuts_ok, cuts);
    unlink(mutated);
    free(data);
}

static void file_tests(const char *top)
{
    char path[1024], file[1024];
    snprintf(path, sizeof path, "%s/tests/model/gemma3_tiny", top);
    ak_model *m = NULL, *other = NULL;
    ak_err err = {0};
    if (ak_model_load(&m, path, &err)) {
        CHECK(0, "gemma3: load (%s)", err.msg);
        return;
    }
    snprintf(path, sizeof path, "%s/tests/model/llama_gqa_llama3", top);
    int rc = ak_model_load(&other, path, &err);
    int32_t ids[24];
    for (int t = 0; t < 24; t++)
        ids[t] = (t * 13 + 5) % m->vocab_size;
    ak_kvcache *c = NULL;
    float *h = calloc(24 * (size_t)m->hidden_size, 4);
    ak_forward_out o = {.last_w = 4};
    rc = rc || ak_kvcache_new(&c, m, &err) || ak_kvcache_forward(m, AK_DEV_CPU, c, ids, 24, h, &o, &err);
    CHECK(rc == 0, "gemma3: a cache of 24 tokens (%s)", err.msg);
    if (rc)
        goto out;
    unsigned char keep[24];
    for (int j = 0; j < 24; j++)
        keep[j] = j % 3 != 1;
    ak_kvcache_keep(c, 1, 0, keep);   /* one head evicted: its own positions */
    snprintf(file, sizeof file, "/tmp/ak_kvcache_test.%d", (int)getpid());
    for (int z = 0; z < 2; z++) {
        const char *name = z ? "zlib" : "raw";
        ak_kvcache *d = NULL;
        rc = ak_kvcache_save(c, file, z, &err) || ak_kvcache_load(&d, file, &err);
        CHECK(rc == 0 && same_cache(c, d), "%s: a saved cache loads back the same (%s)", name,
              err.msg);
        CHECK(d && ak_kvcache_check_model(d, m, &err) == 0, "%s: it fits its model", name);
        CHECK(d && ak_kvcache_check_model(d, other, &err) == AK_EDATA &&
              strstr(err.msg, "another model"), "%s: another model refuses it: %s", name, err.msg);
        ak_kvcache_free(d);
        file_damage(name, file, c);
    }
    unlink(file);
out:
    free(h);
    ak_kvcache_free(c);
    ak_model_free(m);
    ak_model_free(other);
}

int main(void)
{
    const char *top = getenv("AK_TOP");
    if (!top)
        top = ".";
    family(top, "gpt2_tiny", 21, 7);
    family(top, "llama_gqa_llama3", 21, 7);
    family(top, "llama_linear_headdim", 13, 5);
    family(top, "mistral_swa_sharded", 21, 7);
    family(top, "qwen2_bias_bf16", 21, 7);
    family(top, "gemma3_tiny", 21, 7);
    family(top, "gguf/tiny_llama.gguf", 17, 6);
    family(top, "gguf/tiny_qwen2.gguf", 17, 6);
    family(top, "gguf/tiny_gpt2.gguf", 17, 6);
    evict_unseen(top);
    file_tests(top);
    real_models(top);
    ak_model *bert = NULL;
    ak_kvcache *c = NULL;
    ak_err err = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/model/bert_tiny", top);
    int rc = ak_model_load(&bert, path, &err) || ak_kvcache_new(&c, bert, &err);
    CHECK(rc && err.code == AK_ECONFIG && !c && strstr(err.msg, "not causal"),
          "bert: no cache for a bidirectional model: %s", err.msg);
    ak_model_free(bert);
    TEST_DONE();
}
