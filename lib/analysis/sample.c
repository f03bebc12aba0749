/* sample.c - the next token from logits (sample.h). */
#include "attnkit/sample.h"

#include <math.h>
#include <stdlib.h>

struct ak_cand {
    double p;
    int id;
};

uint64_t ak_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

int ak_sampler_init(ak_sampler *s, int vocab, double temperature, double top_p, uint64_t seed,
                    ak_err *err)
{
    *s = (ak_sampler){.vocab = vocab, .temperature = temperature, .top_p = top_p, .rng = seed};
    if (!(temperature >= 0) || !(top_p > 0 && top_p <= 1) || vocab < 1)
        return ak_fail(err, AK_EUSAGE, "sampler: temperature %g, top-p %g, vocabulary %d",
                       temperature, top_p, vocab);
    if (temperature > 0 && !(s->work = malloc((size_t)vocab * sizeof *s->work)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}

void ak_sampler_free(ak_sampler *s)
{
    free(s->work);
    s->work = NULL;
}

/* most probable first; ties: the lower id */
static int by_prob(const void *a, const void *b)
{
    const struct ak_cand *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : x->id - y->id;
}

int32_t ak_sampler_next(ak_sampler *s, const float *logits)
{
    int V = s->vocab, best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best])
            best = i;
    if (s->temperature <= 0)
        return best;
    double z = 0;
    for (int i = 0; i < V; i++) {
        double p = exp((logits[i] - logits[best]) / s->temperature);
        s->work[i] = (struct ak_cand){p, i};
        z += p;
    }
    qsort(s->work, (size_t)V, sizeof *s->work, by_prob);
    double cum = 0, total = 0;
    int n = 0;
    while (n < V && (n == 0 || cum / z < s->top_p)) {
        cum += s->work[n].p;
        n++;
    }
    for (int i = 0; i < n; i++)
        total += s->work[i].p;
    double r = (double)(ak_rng_next(&s->rng) >> 11) * 0x1p-53 * total;
    for (int i = 0; i < n; i++) {
        r -= s->work[i].p;
        if (r < 0)
            return s->work[i].id;
    }
    return s->work[n - 1].id;
}
