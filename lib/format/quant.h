/* quant.h - ggml's tensor types: block sizes and dequantization, exactly as
 * ggml defines them (the `gguf` Python package's gguf.quants.dequantize is
 * the independent reference the tests use).
 *
 * A row of n elements of a block type is n / block_elems blocks of
 * block_bytes each; n must be a multiple of block_elems.
 */
#ifndef AK_QUANT_H
#define AK_QUANT_H

#include "attnkit/ak.h"

/* ggml type numbers (ggml.h's enum ggml_type). */
enum {
    AK_GGML_F32 = 0, AK_GGML_F16 = 1, AK_GGML_Q4_0 = 2, AK_GGML_Q4_1 = 3,
    AK_GGML_Q5_0 = 6, AK_GGML_Q5_1 = 7, AK_GGML_Q8_0 = 8, AK_GGML_Q8_1 = 9,
    AK_GGML_Q2_K = 10, AK_GGML_Q3_K = 11, AK_GGML_Q4_K = 12, AK_GGML_Q5_K = 13,
    AK_GGML_Q6_K = 14, AK_GGML_Q8_K = 15, AK_GGML_BF16 = 30
};

/* The type's name as ggml prints it ("Q4_K"), or "type N" for numbers it
 * does not know (a static buffer is not used: the caller gets a pointer to
 * a constant for known types, NULL otherwise). */
const char *ak_ggml_type_name(int type);
/* Block geometry of any type ggml defines (so that a file holding a type we
 * cannot compute with can still be laid out and validated): 0, or -1 for
 * a number that is no ggml type. */
int ak_ggml_block(int type, size_t *block_elems, size_t *block_bytes);
/* 1 when the type's row of the table is filled (ak_dequant_row and a
 * fused dot product): F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
 * Q5_K, Q6_K. */
int ak_ggml_supported(int type);
/* The supported types' names, "F32, F16, ..., Q6_K", from the table. */
const char *ak_ggml_supported_names(void);
/* Bytes of a row of n elements (n a multiple of the block size). */
size_t ak_ggml_row_bytes(int type, int64_t n);
/* dst[0..n) = the n elements starting at src, as f32, bit-identical to
 * ggml's dequantization.  The type must be supported and n a multiple of
 * its block size. */
void ak_dequant_row(int type, const void *src, float *dst, int64_t n);

/* The row of n elements at row (any alignment) dotted with x[n], straight
 * from the blocks: the quants are unpacked in registers and multiplied
 * with the f32 activations, no f32 copy of the row is written (the
 * matrix-vector products of generation).  A block's scale multiplies the
 * sum of its quants times x, so results agree with a dot product of the
 * dequantized row to float rounding, not bit for bit. */
typedef float (*ak_dot_fn)(const void *row, const float *x, int64_t n);
/* The type's fused dot at the SIMD level in use (simd.h; chosen once, on
 * first call), or NULL for a type that is not supported. */
ak_dot_fn ak_ggml_dot(int type);
/* The type's fused dot at SIMD level `level` (the best the type has at or
 * below it), or NULL when the type is not supported or the CPU lacks the
 * level (the unit tests compare every level). */
ak_dot_fn ak_ggml_dot_at(int type, int level);
/* *y = ak_ggml_dot(type)(src, x, n): 0, or -1 for an unsupported type. */
int ak_dot_row(int type, const void *src, const float *x, int64_t n, float *y);

/* Exact mode's activations prepared once per product, for the types with
 * mins (Q4_1, Q5_1, Q4_K, Q5_K): xsum[i] = x[32i] + ... + x[32i + 31], i < n / 32
 * (ak_xsum32; n a multiple of 32).  The dot with them takes each
 * block's or sub-block's min times its sum from xsum instead of adding the 32 x up
 * again for every row; otherwise it is the type's ak_dot_fn, exact to
 * float rounding as that is. */
typedef float (*ak_dot_xs_fn)(const void *row, const float *x, const float *xsum, int64_t n);
void ak_xsum32(const float *x, float *xsum, int64_t n);
/* The type's dot with sums at the SIMD level in use, or NULL where it has
 * none (types without mins, and levels below AVX2): ak_ggml_dot serves. */
ak_dot_xs_fn ak_ggml_dot_xs(int type);
/* The same at level `level` (the best the type has at or below it), or
 * NULL. */
ak_dot_xs_fn ak_ggml_dot_xs_at(int type, int level);

/* The opt-in fast mode (--fast): 8-bit activations and integer dots, as
 * ggml's vec_dot_*_q8_* do (our own layouts and code).  x[n] is quantized
 * once per product, into the activation blocks the weight type pairs with:
 *   32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): per 32 elements
 *     {f32 d; int32 sum of q; int8 q[32]}, x ~ d * q,
 *   K-quants (Q4_K, Q5_K, Q6_K): per 256 elements
 *     {f32 d; int16 sums of q per 16; int8 q[256]},
 * d = max |x| / 127 of the block, q = x / d rounded to nearest even.  A
 * row's blocks are then multiplied with q in integers (u8 x s8 products,
 * block sums for the offsets and mins) and scaled once per block.  The
 * result differs from the exact dot by the activations' rounding: at most
 * sum over blocks of d_x / 2 * sum |w| (the unit test's bound). */
typedef float (*ak_dot_q8_fn)(const void *row, const void *xq, int64_t n);
/* Bytes of n activations quantized for the type's fast dot, or 0 when the
 * type has none (the exact f32 dot serves: F32, F16, BF16). */
size_t ak_q8_bytes(int type, int64_t n);
/* xq = x[n] quantized for the type's fast dot (ak_q8_bytes(type, n)
 * bytes); the same bits at every SIMD level. */
void ak_q8_quantize(int type, const float *x, void *xq, int64_t n);
/* The type's fast dot at the SIMD level in use, or NULL (no fast dot). */
ak_dot_q8_fn ak_ggml_dot_q8(int type);
/* The same at level `level` (the best the type has at or below it), or
 * NULL when the type has none or the CPU lacks the level. */
ak_dot_q8_fn ak_ggml_dot_q8_at(int type, int level);

/* Four tokens' fast dots with one row, for prefill: out[i] = the fast dot
 * of row with the activations at xq + i * stride (each ak_q8_quantize'd),
 * i < 4.  Each block of the row is unpacked once for the four, so the
 * unpacking costs a quarter of four one-token dots; equal to them to float
 * rounding (the sums are added in another order). */
typedef void (*ak_dot_q8x4_fn)(const void *row, const void *xq, size_t stride, int64_t n,
                               float *out);
/* The type's four-token dot at the SIMD level in use, or NULL where it
 * has none (F32, F16, BF16, and the scalar level: four one-token dots
 * serve). */
ak_dot_q8x4_fn ak_ggml_dot_q8x4(int type);
/* The same at level `level` (the best the type has at or below it), or
 * NULL. */
ak_dot_q8x4_fn ak_ggml_dot_q8x4_at(int type, int level);

#endif
