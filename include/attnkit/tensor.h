/* tensor.h - a named, typed, shaped block of little-endian row-major data. */
#ifndef AK_TENSOR_H
#define AK_TENSOR_H

#include "ak.h"

#define AK_MAX_DIMS 8

typedef enum ak_dtype {
    AK_U8 = 0,
    AK_I32,
    AK_I64,
    AK_F16,
    AK_BF16,
    AK_F32,
    AK_NDTYPES
} ak_dtype;

typedef struct ak_tensor {
    char *name;
    ak_dtype dtype;
    int ndim;
    int64_t shape[AK_MAX_DIMS];
    void *data;    /* nbytes bytes, owned by the tensor, aligned for any dtype */
    size_t nbytes; /* == element count * dtype size, always */
} ak_tensor;

AK_API const char *ak_dtype_name(ak_dtype t);
AK_API int ak_dtype_from_name(const char *name, size_t len, ak_dtype *out);
AK_API size_t ak_dtype_size(ak_dtype t);

/* Element count and byte size of a shape, with overflow and sign checks. */
AK_API int ak_shape_count(int ndim, const int64_t *shape, size_t *count, ak_err *err);
AK_API int ak_shape_bytes(ak_dtype t, int ndim, const int64_t *shape, size_t *bytes,
                          ak_err *err);

/* Allocates a zero-filled tensor (name copied).  Free with ak_tensor_free. */
AK_API ak_tensor *ak_tensor_new(const char *name, ak_dtype t, int ndim,
                                const int64_t *shape, ak_err *err);
AK_API void ak_tensor_free(ak_tensor *t);
AK_API size_t ak_tensor_count(const ak_tensor *t);

/* Typed views; NULL when the dtype differs. */
AK_API float *ak_tensor_f32(ak_tensor *t);
AK_API int32_t *ak_tensor_i32(ak_tensor *t);
AK_API int64_t *ak_tensor_i64(ak_tensor *t);
AK_API uint8_t *ak_tensor_u8(ak_tensor *t);

/* Element i as double, whatever the dtype (f16/bf16 converted). */
AK_API double ak_tensor_get(const ak_tensor *t, size_t i);

/* Half-precision conversions (round to nearest even). */
AK_API float ak_f16_to_f32(uint16_t h);
AK_API uint16_t ak_f32_to_f16(float f);
AK_API float ak_bf16_to_f32(uint16_t h);
AK_API uint16_t ak_f32_to_bf16(float f);

#endif
