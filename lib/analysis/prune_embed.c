/* prune_embed.c - sentence embeddings of blocks for prune's similarity
 * policy (see prune_embed.h). */
#include "attnkit/prune_embed.h"
#include "attnkit/model.h"
#include "attnkit/tokenizer.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ak_encoder {
    ak_model *m;
    ak_tokenizer *tk;
    ak_device dev;
    int max_tokens;   /* [CLS] and [SEP] included */
    int n_added;      /* tokens the post-processor adds */
};

/* sentence-transformers' own limit (max_seq_length), which is what it
 * truncates to, below the model's positions (256 of 512 for MiniLM). */
static int st_max_len(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    int v = 0;
    if (j) {
        json_t *x = json_object_get(j, "max_seq_length");
        if (json_is_integer(x) && json_integer_value(x) > 0 && json_integer_value(x) < INT_MAX)
            v = (int)json_integer_value(x);
        json_decref(j);
    }
    return v;
}

int ak_encoder_load(ak_encoder **out, const char *dir, ak_device dev, ak_err *err)
{
    *out = NULL;
    ak_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    e->dev = dev;
    int rc = ak_model_load(&e->m, dir, err);
    if (!rc)
        rc = ak_tokenizer_load(&e->tk, dir, err);
    if (rc) {
        ak_encoder_free(e);
        return rc;
    }
    ak_encoding enc = {0};
    if ((rc = ak_tokenizer_post(e->tk, &enc, 0, err))) {
        ak_encoding_free(&enc);
        ak_encoder_free(e);
        return rc;
    }
    e->n_added = (int)enc.n;
    ak_encoding_free(&enc);
    int st = st_max_len(dir), mp = e->m->max_positions > 0 ? e->m->max_positions : INT_MAX / 2;
    e->max_tokens = st > 0 && st < mp ? st : mp;
    if (e->max_tokens <= e->n_added) {
        rc = ak_fail(err, AK_ECONFIG, "encoder %s: %d positions leave no room for text", dir,
                     e->max_tokens);
        ak_encoder_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void ak_encoder_free(ak_encoder *e)
{
    if (!e)
        return;
    ak_model_free(e->m);
    ak_tokenizer_free(e->tk);
    free(e);
}

int ak_encoder_dim(const ak_encoder *e) { return e->m->hidden_size; }
ak_model *ak_encoder_model(ak_encoder *e) { return e->m; }
int ak_encoder_max_tokens(const ak_encoder *e) { return e->max_tokens; }

int ak_encoder_embed(ak_encoder *e, const char *text, size_t len, float *out, int *truncated,
                     ak_err *err)
{
    ak_encoding enc = {0};
    int D = e->m->hidden_size, rc = ak_utf8_check(text, len, err);
    if (!rc)
        rc = ak_tokenizer_encode(e->tk, text, len, 0, &enc, err);
    size_t room = (size_t)(e->max_tokens - e->n_added);
    if (truncated)
        *truncated = !rc && enc.n > room;
    if (!rc && enc.n > room)
        enc.n = room;   /* HF truncation=True: the text's tokens, then the added ones */
    if (!rc)
        rc = ak_tokenizer_post(e->tk, &enc, (int64_t)len, err);
    float *h = NULL;
    if (!rc && !(h = malloc(enc.n * (size_t)D * sizeof *h)))
        rc = ak_fail(err, AK_ENOMEM, "out of memory for %zu tokens", enc.n);
    int T = (int)enc.n;
    ak_forward_out o = {0};
    if (!rc)
        rc = ak_model_embed(e->m, enc.ids, NULL, T, h, err);
    if (!rc)
        rc = ak_model_forward(e->m, e->dev, h, T, &o, err);
    if (!rc) {
        double norm = 0;
        for (int k = 0; k < D; k++) {
            double s = 0;
            for (int t = 0; t < T; t++)
                s += h[(size_t)t * D + k];
            out[k] = (float)(s / T);
            norm += (double)out[k] * out[k];
        }
        /* sentence-transformers' Normalize: x / max(|x|, 1e-12) */
        norm = sqrt(norm);
        for (int k = 0; k < D; k++)
            out[k] = (float)(out[k] / (norm > 1e-12 ? norm : 1e-12));
    }
    free(h);
    ak_encoding_free(&enc);
    return rc;
}

/* [a, b) spanning the tokens with pick(i), or a = b = 0 when none covers
 * text. */
static void span_of(const int64_t *off, int64_t T, const int32_t *seg, int32_t b,
                    const uint8_t *is_query, int64_t *a, int64_t *z)
{
    *a = INT64_MAX;
    *z = -1;
    for (int64_t i = 0; i < T; i++) {
        if (is_query ? !is_query[i] : seg[i] != b)
            continue;
        if (off[2 * i] == off[2 * i + 1])
            continue;
        if (off[2 * i] < *a) *a = off[2 * i];
        if (off[2 * i + 1] > *z) *z = off[2 * i + 1];
    }
    if (*z < 0)
        *a = *z = 0;
}

int ak_block_similarity(ak_encoder *e, const uint8_t *text, size_t len, const int64_t *offsets,
                        const int32_t *seg, int64_t T, int64_t nblocks, const uint8_t *is_query,
                        float *cos, int *ntrunc, ak_err *err)
{
    int D = e->m->hidden_size, rc = 0, tr = 0;
    *ntrunc = 0;
    float *q = malloc(2 * (size_t)D * sizeof *q), *v = q + D;
    if (!q)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int64_t a, z;
    span_of(offsets, T, seg, -1, is_query, &a, &z);
    if (z <= a || (uint64_t)z > len) {
        free(q);
        return ak_fail(err, AK_EDATA, "the query span covers no text");
    }
    if ((rc = ak_encoder_embed(e, (const char *)text + a, (size_t)(z - a), q, &tr, err))) {
        free(q);
        return ak_wrap(err, "the query span");
    }
    *ntrunc += tr;
    for (int64_t b = 0; b < nblocks && !rc; b++) {
        cos[b] = 0;
        span_of(offsets, T, seg, (int32_t)b, NULL, &a, &z);
        if (z <= a || (uint64_t)z > len)
            continue;
        if ((rc = ak_encoder_embed(e, (const char *)text + a, (size_t)(z - a), v, &tr, err))) {
            ak_wrap(err, "block %lld", (long long)b);
            break;
        }
        *ntrunc += tr;
        double dot = 0;
        for (int k = 0; k < D; k++)
            dot += (double)q[k] * v[k];
        cos[b] = (float)dot;
    }
    free(q);
    return rc;
}
