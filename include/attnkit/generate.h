/* generate.h - continuing from a key/value cache: decoding new tokens
 * (greedy or sampled, to a stop token, a count or the model's context)
 * and scoring a given continuation's log-likelihood. */
#ifndef AK_GENERATE_H
#define AK_GENERATE_H

#include "kvcache.h"
#include "sample.h"

/* One token through the cache: logits[vocab] after it (hidden[hidden_size]
 * is scratch); AK_EDATA when they are not finite. */
AK_API int ak_generate_step(const ak_model *m, ak_device dev, ak_kvcache *c, int32_t id,
                            float *hidden, float *logits, ak_err *err);

typedef struct ak_gen_opts {
    int max_new;              /* at most this many new tokens */
    const int32_t *stop;      /* [nstop]: stop after one of these (it is kept) */
    int nstop;
    ak_sampler *sampler;      /* how the next token is chosen */
    int mass_rows;            /* G > 0: sum the mass the first G generated queries */
    int base;                 /* put on the prompt's keys, positions base .. */
} ak_gen_opts;

typedef struct ak_gen_out {
    int32_t *ids;             /* [n] the generated tokens (malloc'd) */
    int n;
    float *mass;              /* [L, H, T] when mass_rows > 0 (malloc'd): T the prompt's
                                 tokens, n_tokens - base, at the start */
    int mass_rows;            /* the queries summed into mass (a stop token is not run) */
    int stopped_at_context;   /* 1: the model's context ended the generation */
} ak_gen_out;

/* Decodes from last_logits (the logits after the cache's last token); the
 * cache grows by the tokens run through it. */
AK_API int ak_generate(const ak_model *m, ak_device dev, ak_kvcache *c, const float *last_logits,
                       const ak_gen_opts *o, ak_gen_out *out, ak_err *err);
AK_API void ak_gen_out_free(ak_gen_out *out);

/* The log-likelihood of ids[n] as the continuation of the cache:
 * logprob[i] (nats) of each token, *total their sum.  The cache is left as
 * it was.  AK_EDATA when the continuation passes the model's context or the
 * result is not finite. */
AK_API int ak_score_continuation(const ak_model *m, ak_device dev, ak_kvcache *c,
                                 const float *last_logits, const int32_t *ids, size_t n,
                                 float *logprob, double *total, ak_err *err);

#endif
