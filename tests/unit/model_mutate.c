/* Mutation test of model loading: thousands of corrupted copies of the tiny
 * models' safetensors headers and config.json (flipped bytes, changed
 * digits, truncations, a wrong header length) must each load cleanly or be
 * refused with a message -- never read out of bounds (ASan/UBSan run this).
 * A copy that loads is also run forward on a few tokens. */
#include "attnkit/attention.h"
#include "format/gguf.h"
#include "attnkit/io.h"
#include "attnkit/model.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int write_all(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) || w != n ? -1 : 0;
}

/* One mutation of buf[0..n) in place; returns the new length. */
static size_t mutate(char *buf, size_t n, size_t lo, size_t hi)
{
    if (hi <= lo)
        return n;
    size_t at = lo + next() % (hi - lo);
    switch (next() % 5) {
    case 0: buf[at] ^= (char)(1u << (next() % 8)); break;
    case 1: if (buf[at] >= '0' && buf[at] <= '9') buf[at] = (char)('0' + next() % 10); else buf[at] = '9'; break;
    case 2: return at;                              /* truncate */
    case 3: buf[at] = "{}[],:\"-0e"[next() % 10]; break;
    case 4: memmove(buf + at, buf + at + 1, n - at - 1); return n - 1;
    }
    return n;
}

static void try_model(const char *dir, int *loaded, int *refused, int *bad)
{
    ak_model *m;
    ak_err err = {0};
    int rc = ak_model_load(&m, dir, &err);
    if (rc) {
        if (rc < 0 && err.msg[0])
            ++*refused;
        else
            ++*bad;
        return;
    }
    ak_model_set_threads(m, 1);
    ++*loaded;
    int32_t ids[5] = {0, 1, 2, 3, 4};
    int T = 5;
    size_t D = (size_t)m->hidden_size;
    float *x = calloc((size_t)T * D, sizeof(float));
    float *ent = calloc((size_t)m->n_layers * m->n_heads * T, sizeof(float));
    ak_forward_out o = {0};
    o.entropy = ent;
    if (x && ent && m->vocab_size >= 5 && (!m->pos_emb || m->max_positions >= T) &&
        D * m->n_layers < 1000000 && ak_model_embed(m, ids, NULL, T, x, &err) == 0)
        ak_model_forward(m, AK_DEV_CPU, x, T, &o, &err);
    free(x);
    free(ent);
    ak_model_free(m);
}

static void campaign(const char *top, const char *model, int rounds)
{
    char src[1024], dir[] = "/tmp/ak-mut-XXXXXX", path[1100];
    if (!mkdtemp(dir))
        return;
    char *st = NULL, *cfg = NULL;
    size_t stn = 0, cfgn = 0;
    ak_err err = {0};
    snprintf(src, sizeof src, "%s/tests/model/%s/model.safetensors", top, model);
    int ok = ak_read_file(src, 64 << 20, &st, &stn, &err) == 0;
    snprintf(src, sizeof src, "%s/tests/model/%s/config.json", top, model);
    ok = ok && ak_read_file(src, 1 << 20, &cfg, &cfgn, &err) == 0;
    CHECK(ok, "%s: read the model files %s", model, err.msg);
    if (!ok)
        return;
    size_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (unsigned char)st[i];
    char *buf = malloc(stn > cfgn ? stn + 1 : cfgn + 1);
    int loaded = 0, refused = 0, bad = 0;
    for (int r = 0; r < rounds; r++) {
        int which = r % 3;   /* 0: safetensors header, 1: config.json, 2: header length */
        memcpy(buf, st, stn);
        size_t n = stn;
        if (which == 0)
            for (int k = 1 + (int)(next() % 3); k > 0; k--)
                n = mutate(buf, n, 8, 8 + hlen < n ? 8 + hlen : n);
        if (which == 2)
            buf[next() % 3] ^= (char)(1u << (next() % 8));
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        write_all(path, buf, n);
        memcpy(buf, cfg, cfgn);
        n = cfgn;
        if (which == 1)
            for (int k = 1 + (int)(next() % 2); k > 0; k--)
                n = mutate(buf, n, 0, n);
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_all(path, buf, n);
        try_model(dir, &loaded, &refused, &bad);
    }
    CHECK(bad == 0 && refused > rounds / 4, "%s: %d mutated copies: %d loaded and ran, %d refused with a message",
          model, rounds, loaded, refused);
    free(buf);
    free(st);
    free(cfg);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path))
        return;
}

/* GGUF files: mutations of the header, metadata and tensor infos (the
 * bytes before the tensor data). */
static void gguf_campaign(const char *top, const char *name, int rounds)
{
    char src[1024], dir[] = "/tmp/ak-mut-XXXXXX", path[1100];
    if (!mkdtemp(dir))
        return;
    ak_err err = {0};
    snprintf(src, sizeof src, "%s/tests/model/gguf/%s.gguf", top, name);
    char *raw = NULL;
    size_t n = 0;
    ak_gguf g = {0};
    int ok = ak_read_file(src, 64 << 20, &raw, &n, &err) == 0 && ak_gguf_open(&g, src, &err) == 0;
    CHECK(ok, "%s: read the GGUF %s", name, err.msg);
    if (!ok) {
        free(raw);
        return;
    }
    size_t meta_end = (size_t)(g.data - (const uint8_t *)g.map);
    ak_gguf_close(&g);
    char *buf = malloc(n + 1);
    int loaded = 0, refused = 0, bad = 0;
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    for (int r = 0; buf && r < rounds; r++) {
        memcpy(buf, raw, n);
        size_t len = n;
        for (int k = 1 + (int)(next() % 3); k > 0; k--)
            len = mutate(buf, len, 0, meta_end < len ? meta_end : len);
        write_all(path, buf, len);
        try_model(path, &loaded, &refused, &bad);
    }
    CHECK(bad == 0 && refused > rounds / 4, "%s: %d mutated copies: %d loaded and ran, %d refused with a message",
          name, rounds, loaded, refused);
    free(buf);
    free(raw);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path))
        return;
}

int main(void)
{
    const char *top = getenv("AK_TOP");
    if (!top)
        top = ".";
    campaign(top, "bert_tiny", 1500);
    campaign(top, "gpt2_tiny", 1000);
    campaign(top, "qwen2_bias_bf16", 1000);
    campaign(top, "gemma3_tiny", 600);
    gguf_campaign(top, "tiny_llama", 800);
    gguf_campaign(top, "tiny_gpt2", 400);
    TEST_DONE();
}
