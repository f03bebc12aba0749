/* bench/attention_gpu.c - times attnkit's CUDA attention (output + entropy,
 * then received mass) on device-resident inputs; bench/attention_gpu.py runs
 * it beside PyTorch in the same run.  Prints per length:
 *   T f32_fwd f32_all bf16_fwd bf16_all bf16fast_fwd bf16fast_all  (ms)
 * f32: the CUDA-core kernel; bf16: the tensor-core kernel with p split in
 * two bf16 parts for p*v (what ak_attention_dtype runs); bf16fast: one bf16
 * product for p*v (p rounded to bf16, as flash attention does). */
#include "attnkit/attention.h"
#include "cuda/ak_cuda.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int H = 32, Dh = 128, iters = 10;
    if (!ak_cuda()) {
        fprintf(stderr, "attention_gpu: %s\n", ak_cuda_load_error());
        return 1;
    }
    for (int a = 1; a < argc; a++) {
        int T = atoi(argv[a]);
        ak_attn_shape s = {.n_q = T, .n_k = T, .n_heads = H, .n_kv_heads = H, .head_dim = Dh,
                           .causal = 1, .scale = 0.08838834764831845f};
        double f[3], b[3];
        ak_err err;
        if (ak_cuda()->attention_time(&s, T > 8192 ? 3 : iters, &f[0], &b[0], &err) ||
            ak_cuda()->attention_tc_time(AK_ATTN_BF16, 1, &s, iters, &f[1], &b[1], &err) ||
            ak_cuda()->attention_tc_time(AK_ATTN_BF16, 0, &s, iters, &f[2], &b[2], &err)) {
            fprintf(stderr, "attention_gpu: %s\n", err.msg);
            return 1;
        }
        printf("%d %.4f %.4f %.4f %.4f %.4f %.4f\n", T, f[0], b[0], f[1], b[1], f[2], b[2]);
        fflush(stdout);
    }
    return 0;
}
