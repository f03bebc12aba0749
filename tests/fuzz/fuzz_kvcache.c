/* libFuzzer target: a key/value cache file from a stranger
 * (formats/kvcache.md).  The reader must refuse it with a message or hand
 * back a cache whose every head keeps ascending positions inside the
 * tokens it covers, never reading outside the input. */
#include "attnkit/kvcache.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    ak_kvcache *c = NULL;
    ak_err err = {0};
    int rc = ak_kvcache_parse(&c, data, len, &err);
    if (rc) {
        if (c || !err.msg[0])
            __builtin_trap();
        return 0;
    }
    volatile float sink = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < c->n_kv_heads; g++) {
            ak_kvhead *h = ak_kvcache_head(c, l, g);
            if (h->n < 0 || h->n > c->n_tokens)
                __builtin_trap();
            for (int i = 0; i < h->n; i++) {
                if (h->pos[i] < 0 || h->pos[i] >= c->n_tokens || (i && h->pos[i] <= h->pos[i - 1]))
                    __builtin_trap();
                sink += h->k[(size_t)i * c->head_dim] + h->v[(size_t)(i + 1) * c->head_dim - 1] +
                        h->mass[i] + h->mass_last[i];
            }
        }
    for (int t = 0; t < c->n_tokens; t++)
        if (c->ids[t] < 0 || c->ids[t] >= c->vocab_size)
            __builtin_trap();
    ak_kvcache_free(c);
    return 0;
}
