/* check.h - validation of values read from streams: floats that must be
 * finite (and inside a range), token offsets that must lie in the text.
 * Each check names the tensor and the first bad position, e.g.
 * "hidden[3, 17] is nan", so a program can say where garbage came in
 * instead of computing with it. */
#ifndef AK_CHECK_H
#define AK_CHECK_H

#include "attnkit/ak.h"
#include "attnkit/stream.h"
#include "attnkit/tensor.h"

/* Index of the first element of x[n] that is NaN or +-Inf, or n. */
size_t ak_first_nonfinite(const float *x, size_t n);

/* An f32 tensor's values are finite and in [lo, hi] (hi = INFINITY for no
 * upper bound); otherwise AK_EDATA "NAME[i, j] is nan" or
 * "NAME[i, j] = -2 is outside [0, 1]".  Other dtypes pass. */
int ak_check_f32_range(const ak_tensor *t, double lo, double hi, ak_err *err);

/* Writes the multi-index of flat element i of t ("3, 17") into buf. */
void ak_tensor_index(const ak_tensor *t, size_t i, char *buf, size_t size);

/* offsets[T, 2] are byte spans [start, end) of a text of len bytes:
 * 0 <= start <= end <= len, and the spans that cover text (start < end)
 * come in text order (starts and ends never decrease).  Empty spans
 * (special tokens) may sit anywhere inside the text. */
int ak_check_offsets(const int64_t *offsets, int64_t T, size_t len, ak_err *err);

/* offsets[T, 2] are byte spans of a text of len bytes (0 <= start <= end
 * <= len), in any order: what the units and the protection of prune.h need
 * to index the text safely. */
int ak_offsets_in_text(size_t len, const int64_t *offsets, int64_t T, ak_err *err);

/* tokens i32 [T] and offsets i64 [T, 2] of d, of the same length (err not
 * NULL). */
int ak_doc_tokens(const ak_doc *d, ak_tensor **tok, ak_tensor **off, ak_err *err);

#endif
