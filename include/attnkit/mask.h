/* mask.h - the attention mask, the one definition the CPU attention, the
 * CUDA kernels, the model and the metrics all use.
 *
 * Query i sits at absolute position qpos, key j at position kpos = j.  The
 * key is visible to the query when
 *     (!causal || kpos <= qpos) && (window == 0 || qpos - kpos < window)
 * so with n_k keys a query sees the keys [lo, hi] of ak_mask_keys, and key
 * j is seen by the queries ak_mask_seer_range gives.
 *
 * Static inline, so nvcc compiles them into device code as well.
 */
#ifndef AK_MASK_H
#define AK_MASK_H

#include <stdint.h>

#ifdef __CUDACC__
#define AK_MASK_FN static inline __host__ __device__
#else
#define AK_MASK_FN static inline
#endif

/* The attention mask of a layer or a document. */
typedef struct ak_mask {
    int causal;
    int window;   /* sliding window in positions; 0 = none */
} ak_mask;

/* 1 when the key at position kpos is visible to the query at qpos. */
AK_MASK_FN int ak_mask_sees(int causal, int window, int64_t qpos, int64_t kpos)
{
    return (!causal || kpos <= qpos) && (window == 0 || qpos - kpos < window);
}

/* The keys [*lo, *hi] of n_k that the query at qpos sees; empty when
 * *lo > *hi. */
AK_MASK_FN void ak_mask_keys(int causal, int window, int64_t qpos, int64_t n_k, int64_t *lo,
                             int64_t *hi)
{
    *hi = causal && qpos < n_k - 1 ? qpos : n_k - 1;
    *lo = window > 0 && qpos - window + 1 > 0 ? qpos - window + 1 : 0;
}

/* The keys [*lo, *hi] of n_k at the ascending positions kpos[0..n_k) that
 * the query at qpos sees: the same rule, ak_mask_sees, on a cache's kept
 * positions (causal: a prefix ends at the last kpos <= qpos; window: a
 * suffix starts at the first kpos > qpos - window).  Binary searches. */
AK_MASK_FN void ak_mask_keys_at(int causal, int window, int64_t qpos, const int32_t *kpos,
                                int64_t n_k, int64_t *lo, int64_t *hi)
{
    int64_t a = 0, b = n_k; /* first index whose key the query cannot see by causality */
    while (causal && a < b) {
        int64_t mid = a + (b - a) / 2;
        if (ak_mask_sees(1, 0, qpos, kpos[mid]))
            a = mid + 1;
        else
            b = mid;
    }
    *hi = causal ? a - 1 : n_k - 1;
    a = 0;
    b = n_k; /* first index the window lets through */
    while (window > 0 && a < b) {
        int64_t mid = a + (b - a) / 2;
        if (ak_mask_sees(0, window, qpos, kpos[mid]))
            b = mid;
        else
            a = mid + 1;
    }
    *lo = window > 0 ? a : 0;
}

/* The same for positions that fit an int (the attention kernels'). */
AK_MASK_FN void ak_mask_keys_int(int causal, int window, int qpos, int n_k, int *lo, int *hi)
{
    int64_t a, b;
    ak_mask_keys(causal, window, qpos, n_k, &a, &b);
    *lo = (int)a;
    *hi = (int)b;
}

/* The query positions [*lo, *hi] among q_offset .. q_offset + n_q - 1 that
 * see key positions kpos0 .. kpos1 (some of them, not necessarily all);
 * empty when *lo > *hi.  Returned as query indices (position - q_offset). */
AK_MASK_FN void ak_mask_seer_range(int causal, int window, int q_offset, int n_q, int kpos0,
                                  int kpos1, int *lo, int *hi)
{
    *lo = causal && kpos0 - q_offset > 0 ? kpos0 - q_offset : 0;
    *hi = n_q - 1;
    if (window > 0 && kpos1 + window - 1 - q_offset < *hi)
        *hi = kpos1 + window - 1 - q_offset;
}

/* How many keys of T the query at position i sees (0 .. T). */
AK_MASK_FN int64_t ak_mask_visible(ak_mask m, int64_t T, int64_t i)
{
    int64_t lo, hi;
    ak_mask_keys(m.causal, m.window, i, T, &lo, &hi);
    return hi >= lo ? hi - lo + 1 : 0;
}

/* How many of the queries 0 .. T-1 see key j (0 .. T). */
AK_MASK_FN int64_t ak_mask_seers(ak_mask m, int64_t T, int64_t j)
{
    int64_t lo = m.causal ? j : 0;
    int64_t hi = m.window > 0 && j + m.window < T ? j + m.window : T;
    return hi > lo ? hi - lo : 0;
}

#undef AK_MASK_FN

#endif
