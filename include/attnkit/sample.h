/* sample.h - choosing the next token from logits: greedy, or sampled at a
 * temperature within a top-p nucleus, with the sampler's own random state
 * (as llama2.c's Sampler), and the library's one random generator. */
#ifndef AK_SAMPLE_H
#define AK_SAMPLE_H

#include "ak.h"

#include <stdint.h>

/* The library's random generator, splitmix64 (Steele, Lea, Flood 2014):
 * any state, 0 included, gives a full-period sequence. */
AK_API uint64_t ak_rng_next(uint64_t *state);

typedef struct ak_sampler {
    int vocab;
    double temperature;   /* 0: greedy (the first largest logit) */
    double top_p;         /* the nucleus: the smallest set of mass >= top_p */
    uint64_t rng;         /* the random state, from the seed */
    struct ak_cand *work; /* [vocab], for sampling */
} ak_sampler;

/* temperature >= 0, 0 < top_p <= 1 (AK_EUSAGE otherwise). */
AK_API int ak_sampler_init(ak_sampler *s, int vocab, double temperature, double top_p,
                           uint64_t seed, ak_err *err);
AK_API void ak_sampler_free(ak_sampler *s);
/* The next token for logits[vocab]. */
AK_API int32_t ak_sampler_next(ak_sampler *s, const float *logits);

#endif
