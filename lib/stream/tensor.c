/* tensor.c - tensors: shapes, dtypes, half-precision conversion. */
#include "attnkit/tensor.h"

#include <stdlib.h>
#include <string.h>

static const struct { const char *name; size_t size; } dtypes[AK_NDTYPES] = {
    [AK_U8] = {"u8", 1},    [AK_I32] = {"i32", 4},  [AK_I64] = {"i64", 8},
    [AK_F16] = {"f16", 2},  [AK_BF16] = {"bf16", 2}, [AK_F32] = {"f32", 4},
};

const char *ak_dtype_name(ak_dtype t)
{
    return (unsigned)t < AK_NDTYPES ? dtypes[t].name : "?";
}

size_t ak_dtype_size(ak_dtype t)
{
    return (unsigned)t < AK_NDTYPES ? dtypes[t].size : 0;
}

int ak_dtype_from_name(const char *name, size_t len, ak_dtype *out)
{
    for (int i = 0; i < AK_NDTYPES; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) {
            *out = (ak_dtype)i;
            return 0;
        }
    return -1;
}

int ak_shape_count(int ndim, const int64_t *shape, size_t *count, ak_err *err)
{
    if (ndim < 0 || ndim > AK_MAX_DIMS)
        return ak_fail(err, AK_EDATA, "%d dimensions (at most %d)", ndim, AK_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return ak_fail(err, AK_EDATA, "negative dimension %lld", (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || ak_mul_size(n, (size_t)shape[i], &n))
            return ak_fail(err, AK_EDATA, "shape's element count overflows");
    }
    *count = n;
    return 0;
}

int ak_shape_bytes(ak_dtype t, int ndim, const int64_t *shape, size_t *bytes, ak_err *err)
{
    size_t n;
    int rc = ak_shape_count(ndim, shape, &n, err);
    if (rc)
        return rc;
    if ((unsigned)t >= AK_NDTYPES)
        return ak_fail(err, AK_EDATA, "unknown dtype");
    if (ak_mul_size(n, dtypes[t].size, bytes))
        return ak_fail(err, AK_EDATA, "shape's byte size overflows");
    return 0;
}

ak_tensor *ak_tensor_new(const char *name, ak_dtype t, int ndim, const int64_t *shape,
                         ak_err *err)
{
    size_t nbytes;
    if (ak_shape_bytes(t, ndim, shape, &nbytes, err))
        return NULL;
    ak_tensor *x = calloc(1, sizeof *x);
    if (!x)
        goto oom;
    x->name = strdup(name);
    /* calloc(0) may return NULL; always allocate at least one element. */
    x->data = calloc(1, nbytes ? nbytes : 8);
    if (!x->name || !x->data) {
        ak_tensor_free(x);
        goto oom;
    }
    x->dtype = t;
    x->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        x->shape[i] = shape[i];
    x->nbytes = nbytes;
    return x;
oom:
    ak_fail(err, AK_ENOMEM, "tensor %s: cannot allocate %zu bytes", name, nbytes);
    return NULL;
}

void ak_tensor_free(ak_tensor *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->data);
    free(t);
}

size_t ak_tensor_count(const ak_tensor *t)
{
    size_t sz = ak_dtype_size(t->dtype);
    return sz ? t->nbytes / sz : 0;
}

float *ak_tensor_f32(ak_tensor *t) { return t && t->dtype == AK_F32 ? t->data : NULL; }
int32_t *ak_tensor_i32(ak_tensor *t) { return t && t->dtype == AK_I32 ? t->data : NULL; }
int64_t *ak_tensor_i64(ak_tensor *t) { return t && t->dtype == AK_I64 ? t->data : NULL; }
uint8_t *ak_tensor_u8(ak_tensor *t) { return t && t->dtype == AK_U8 ? t->data : NULL; }

double ak_tensor_get(const ak_tensor *t, size_t i)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case AK_U8: return p[i];
    case AK_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case AK_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    case AK_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return ak_f16_to_f32(v); }
    case AK_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return ak_bf16_to_f32(v); }
    case AK_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    default: return 0;
    }
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float ak_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t ak_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)           /* NaN: keep it quiet NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);                  /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float ak_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {                                   /* zero or subnormal */
        float v = (float)man / 1024.0f / 16384.0f;    /* man * 2^-24 */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t ak_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);            /* NaN */
    if (a >= 0x477ff000u)                             /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) {                            /* below 2^-14: subnormal */
        float v = bits_f32(a) * 16777216.0f;         /* in units of 2^-24 */
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = (a >> 23) - 112, man = a & 0x7fffff;
    uint32_t h = (e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}
