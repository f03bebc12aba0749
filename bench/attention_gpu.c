/* bench/attention_gpu.c - times attnkit's CUDA attention (output + entropy,
 * then received mass) on device-resident inputs; bench/attention_gpu.py runs
 * it beside PyTorch in the same run.  Prints: T ms_forward ms_both. */
#include "attention.h"

#include <stdio.h>
#include <stdlib.h>

int ak_cuda_attention_time(const ak_attn_shape *s, int iters, double *ms_forward,
                           double *ms_both, ak_err *err);

int main(int argc, char **argv)
{
    int H = 32, Dh = 128, iters = 10;
    for (int a = 1; a < argc; a++) {
        int T = atoi(argv[a]);
        ak_attn_shape s = {.n_q = T, .n_k = T, .n_heads = H, .n_kv_heads = H, .head_dim = Dh,
                           .causal = 1, .scale = 0.08838834764831845f};
        double f, b;
        ak_err err;
        if (ak_cuda_attention_time(&s, iters, &f, &b, &err)) {
            fprintf(stderr, "attention_gpu: %s\n", err.msg);
            return 1;
        }
        printf("%d %.4f %.4f\n", T, f, b);
        fflush(stdout);
    }
    return 0;
}
