/* quant_dot.c - one thread's speed of a quantized matrix product, per type:
 * the fused dot products (quant.h) at each SIMD level this CPU has, and
 * dequantize-the-rows + sgemm (the prefill path of lib/model/forward.c), for T
 * tokens, on a random [OUT, IN] matrix.  The fused products cost T times
 * the one-token figure; the crossing T is FUSED_MAX_T in lib/model/forward.c.
 *
 *   make programs && cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Ilib bench/quant_dot.c \
 *     build/rel/libattnkit.a $(pkg-config --cflags --libs openblas) -lm -pthread \
 *     -o build/quant_dot && OPENBLAS_NUM_THREADS=1 build/quant_dot [OUT IN]
 *
 * Prints, per type: ns per weight of one token's fused product at each
 * level, then for T = 1, 2, 4, ..., 64 the time of T fused products (best
 * level) against dequantize + sgemm, in ms; then the fast mode's (8-bit
 * activations, integer dots) ns per weight at each level, and its
 * activation quantization's ns per element (once per product); for Q4_K
 * and Q5_K, the exact dots with the sums of x per 32 (ak_ggml_dot_xs_at;
 * the sums taken once per product, timed in).  x is on a 64-byte line, as
 * lib/model/forward.c's activation buffers are. */
#include "attnkit/sample.h"
#include "format/quant.h"
#include "core/simd.h"
#include "attnkit/tensor.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TP = 512 };   /* the prefill comparison's tokens */

/* random rows from the library's generator (sample.h) */
static uint64_t rng = 88172645463325252ULL;
static uint32_t next32(void) { return (uint32_t)(ak_rng_next(&rng) >> 32); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* prefill: TP tokens, four at a time against each row (the tokens outer,
 * as lib/model/forward.c runs a tile of 256 KB), in ns per weight and
 * token, against dequantize + sgemm's */
static void prefill_x4(int type, const uint8_t *w, size_t rb, int out, int in, const float *xp,
                       float *yp, float *tile)
{
    size_t qs = ak_q8_bytes(type, in);
    uint8_t *xq4 = malloc(qs * TP);
    for (int k = 0; k < TP; k++)
        ak_q8_quantize(type, xp + (size_t)k * in, xq4 + (size_t)k * qs, in);
    int tr = (int)((256 << 10) / rb) / 4 * 4;
    tr = tr < 4 ? 4 : tr;
    printf("%-5s fast x4, %d tokens", ak_ggml_type_name(type), TP);
    for (int l = 0; l <= ak_simd_cpu(); l++) {
        ak_dot_q8x4_fn f = ak_ggml_dot_q8x4_at(type, l);
        if (!f || f == ak_ggml_dot_q8x4_at(type, l - 1))
            continue;
        double bt = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now();
            for (int r0 = 0; r0 < out; r0 += tr)
                for (int k = 0; k < TP; k += 4)
                    for (int r = r0; r < out && r < r0 + tr; r++)
                        f(w + (size_t)r * rb, xq4 + (size_t)k * qs, qs, in, yp + 4 * r);
            double dt = now() - t0;
            bt = dt < bt ? dt : bt;
        }
        printf(" %s %.4f", ak_simd_name(l), bt * 1e9 / ((double)out * in * TP));
    }
    double st = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (int r = 0; r < out; r++)
            ak_dequant_row(type, w + (size_t)r * rb, tile + (size_t)r * in, in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, TP, out, in, 1.0f, xp, in, tile,
                    in, 0.0f, yp, out);
        double dt = now() - t0;
        st = dt < st ? dt : st;
    }
    printf("  | dequant+sgemm %.4f\n", st * 1e9 / ((double)out * in * TP));
    free(xq4);
}

int main(int argc, char **argv)
{
    int out = argc > 2 ? atoi(argv[1]) : 1024, in = argc > 2 ? atoi(argv[2]) : 1024;
    static const int types[] = {AK_GGML_F16, AK_GGML_Q4_0, AK_GGML_Q4_1, AK_GGML_Q5_0, AK_GGML_Q8_0,
                                AK_GGML_Q4_K, AK_GGML_Q5_K, AK_GGML_Q6_K};
    enum { TMAX = 64 };
    float *x = aligned_alloc(64, sizeof *x * (size_t)in * TMAX);
    float *xp = malloc(sizeof *xp * (size_t)in * TP), *yp = malloc(sizeof *yp * (size_t)out * TP);
    for (size_t i = 0; i < (size_t)in * TP; i++)
        xp[i] = (float)(next32() / 4294967296.0 - 0.5);
    float *y = malloc(sizeof *y * (size_t)out * TMAX);
    float *tile = malloc(sizeof *tile * (size_t)out * in);
    for (int i = 0; i < in * TMAX; i++)
        x[i] = (float)(next32() / 4294967296.0 - 0.5);
    printf("# [%d x %d] matrix, one thread; CPU level %s\n", out, in, ak_simd_name(ak_simd_cpu()));
    printf("%-5s %-28s %s\n", "type", "fused ns/weight by level", "T: fused ms / dequant+sgemm ms");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int type = types[k];
        size_t rb = ak_ggml_row_bytes(type, in);
        uint8_t *w = malloc(rb * (size_t)out);
        for (size_t i = 0; i < rb * (size_t)out; i++)
            w[i] = (uint8_t)next32();
        /* every half field a sane value: rewrite the rows through f16 of
         * random f32 where the type is F16; block scales are bytes 0-1 of
         * each block (Q6_K: 208-209), set to 0.01 */
        size_t be, bb;
        ak_ggml_block(type, &be, &bb);
        uint16_t h = ak_f32_to_f16(0.01f);
        for (size_t b = 0; b < rb * (size_t)out / bb; b++) {
            size_t off = b * bb + (type == AK_GGML_Q6_K ? 208 : 0);
            if (type == AK_GGML_F16)
                for (size_t j = 0; j < bb; j += 2)
                    memcpy(w + b * bb + j, &h, 2);
            else
                memcpy(w + off, &h, 2);
            if (type == AK_GGML_Q4_1 || type == AK_GGML_Q4_K || type == AK_GGML_Q5_K)
                memcpy(w + b * bb + 2, &h, 2);
        }
        printf("%-5s", ak_ggml_type_name(type));
        double best = 1e30;
        for (int l = 0; l <= ak_simd_cpu(); l++) {
            ak_dot_fn f = ak_ggml_dot_at(type, l);
            double bt = 1e30;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                for (int r = 0; r < out; r++)
                    y[r] = f(w + (size_t)r * rb, x, in);
                double dt = now() - t0;
                bt = dt < bt ? dt : bt;
            }
            printf(" %s %.3f", ak_simd_name(l), bt * 1e9 / ((double)out * in));
            best = bt < best ? bt : best;
        }
        printf("  |");
        for (int T = 1; T <= TMAX; T *= 2) {
            double bt = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                double t0 = now();
                for (int r = 0; r < out; r++)
                    ak_dequant_row(type, w + (size_t)r * rb, tile + (size_t)r * in, in);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in, tile, in,
                            0.0f, y, out);
                double dt = now() - t0;
                bt = dt < bt ? dt : bt;
            }
            printf(" %d: %.2f/%.2f", T, best * T * 1e3, bt * 1e3);
        }
        printf("\n");
        if (ak_ggml_dot_xs(type)) {
            float *xs = malloc(sizeof *xs * (size_t)(in / 32));
            printf("%-5s sums", ak_ggml_type_name(type));
            for (int l = 0; l <= ak_simd_cpu(); l++) {
                ak_dot_xs_fn f = ak_ggml_dot_xs_at(type, l);
                if (!f)
                    continue;
                double bt = 1e30;
                for (int rep = 0; rep < 5; rep++) {
                    double t0 = now();
                    ak_xsum32(x, xs, in);
                    for (int r = 0; r < out; r++)
                        y[r] = f(w + (size_t)r * rb, x, xs, in);
                    double dt = now() - t0;
                    bt = dt < bt ? dt : bt;
                }
                printf(" %s %.3f", ak_simd_name(l), bt * 1e9 / ((double)out * in));
            }
            printf("\n");
            free(xs);
        }
        if (ak_ggml_dot_q8(type)) {
            uint8_t *xq = malloc(ak_q8_bytes(type, in));
            double qt = 1e30;
            for (int rep = 0; rep < 20; rep++) {
                double t0 = now();
                ak_q8_quantize(type, x, xq, in);
                double dt = now() - t0;
                qt = dt < qt ? dt : qt;
            }
            printf("%-5s fast", ak_ggml_type_name(type));
            for (int l = 0; l <= ak_simd_cpu(); l++) {
                ak_dot_q8_fn f = ak_ggml_dot_q8_at(type, l);
                double bt = 1e30;
                for (int rep = 0; rep < 5; rep++) {
                    double t0 = now();
                    for (int r = 0; r < out; r++)
                        y[r] = f(w + (size_t)r * rb, xq, in);
                    double dt = now() - t0;
                    bt = dt < bt ? dt : bt;
                }
                printf(" %s %.3f", ak_simd_name(l), bt * 1e9 / ((double)out * in));
            }
            printf("  | quantize %.3f ns/element\n", qt * 1e9 / in);
            if (ak_ggml_dot_q8x4(type))   /* else prefill keeps dequantize + sgemm */
                prefill_x4(type, w, rb, out, in, xp, yp, tile);
            free(xq);
        }
        free(w);
    }
    free(x);
    free(xp);
    free(yp);
    free(y);
    free(tile);
    return 0;
}
