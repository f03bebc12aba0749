/* libFuzzer target: a GGUF file from a stranger.  Opens it; reads every
 * metadata value through every getter and every array element (nested
 * ones too); finds every tensor by name and dequantizes the supported ones.
 * The reader must refuse what it cannot lay out, never read outside the
 * mapping, and give back consistent answers for what it accepts. */
#include "format/gguf.h"
#include "format/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile double sink;

static void walk(const ak_gguf_kv *kv, int depth)
{
    uint64_t n = kv->alen < 4096 ? kv->alen : 4096;
    for (uint64_t k = 0; k < n; k++) {
        size_t len;
        ak_gguf_kv sub;
        switch (kv->atype) {
        case AK_GGUF_STRING: {
            const char *s = ak_gguf_arr_str(kv, k, &len);
            if (!s)
                __builtin_trap();
            for (size_t i = 0; i < len; i++)
                sink += (unsigned char)s[i];
            break;
        }
        case AK_GGUF_ARRAY:
            if (ak_gguf_arr_nested(kv, k, &sub) != 0)
                __builtin_trap();
            walk(&sub, depth + 1);
            break;
        default:
            sink += ak_gguf_arr_f64(kv, k) + (double)ak_gguf_arr_i64(kv, k);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz-gguf-%d.gguf", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    ak_gguf g;
    ak_err err;
    if (ak_gguf_open(&g, path, &err) == 0) {
        const uint8_t *lo = g.map, *hi = lo + g.size;
        for (size_t k = 0; k < g.nkv; k++) {
            const ak_gguf_kv *kv = &g.kv[k];
            if (ak_gguf_get(&g, kv->key) != kv)
                __builtin_trap();   /* keys are unique: look-up finds this one */
            uint64_t u;
            int64_t i;
            double d;
            int b;
            const char *s;
            size_t len;
            ak_gguf_get_u64(&g, kv->key, &u, &err);
            ak_gguf_get_i64(&g, kv->key, &i, &err);
            ak_gguf_get_f64(&g, kv->key, &d, &err);
            ak_gguf_get_bool(&g, kv->key, &b, &err);
            if (ak_gguf_get_str(&g, kv->key, &s, &len, &err) == 0 &&
                ((const uint8_t *)s < lo || (const uint8_t *)s + len > hi))
                __builtin_trap();
            if (kv->type == AK_GGUF_ARRAY) {
                if (kv->adata < lo || kv->adata + kv->abytes > hi)
                    __builtin_trap();
                walk(kv, 0);
            }
        }
        for (size_t k = 0; k < g.ntensors; k++) {
            const ak_gguf_tensor *t = &g.tensors[k];
            if (ak_gguf_tensor_find(&g, t->name) != t)
                __builtin_trap();
            if ((const uint8_t *)t->data < g.data || (const uint8_t *)t->data + t->nbytes > hi ||
                (size_t)((const uint8_t *)t->data - g.data) % g.alignment)
                __builtin_trap();
            int64_t nrows = t->ne[1] * t->ne[2] * t->ne[3];
            size_t rb = ak_ggml_row_bytes(t->type, t->ne[0]);
            if (rb * (size_t)nrows != t->nbytes)
                __builtin_trap();
            if (!ak_ggml_supported(t->type) || t->ne[0] > (1 << 16))
                continue;
            float *row = malloc((size_t)t->ne[0] * sizeof *row);
            if (!row)
                continue;
            for (int64_t r = 0; r < nrows && r < 64; r++) {
                ak_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, row, t->ne[0]);
                sink += row[0];
            }
            free(row);
        }
        ak_gguf_close(&g);
    }
    unlink(path);
    return 0;
}
