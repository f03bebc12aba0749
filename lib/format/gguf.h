/* gguf.h - memory-mapped, validated reading of GGUF files (llama.cpp's
 * model format), versions 2 and 3.
 *
 * File layout (all little-endian):
 *   u32 magic "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
 *   metadata_kv_count x { string key, u32 value_type, value },
 *   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type,
 *                    u64 offset },
 *   padding to general.alignment (default 32), then the tensor data; each
 *   tensor's offset is relative to the start of the data and aligned.
 * A string is u64 length + bytes (no NUL).  An array is u32 element type,
 * u64 count, then the elements (arrays may nest).
 *
 * Everything in the file is untrusted: counts and lengths are bounded by
 * what is left of the file before anything is allocated, every tensor's
 * data lies inside the file, tensors do not overlap, and each shape is
 * consistent with its type's block size.
 */
#ifndef AK_GGUF_H
#define AK_GGUF_H

#include "attnkit/ak.h"

/* Metadata value types, numbered as the GGUF specification numbers them. */
typedef enum {
    AK_GGUF_U8 = 0, AK_GGUF_I8 = 1, AK_GGUF_U16 = 2, AK_GGUF_I16 = 3,
    AK_GGUF_U32 = 4, AK_GGUF_I32 = 5, AK_GGUF_F32 = 6, AK_GGUF_BOOL = 7,
    AK_GGUF_STRING = 8, AK_GGUF_ARRAY = 9, AK_GGUF_U64 = 10, AK_GGUF_I64 = 11,
    AK_GGUF_F64 = 12
} ak_gguf_vtype;

typedef struct ak_gguf_kv {
    char *key;                 /* NUL-terminated copy */
    ak_gguf_vtype type;
    /* Scalars: the value widened (u for unsigned and bool, i for signed,
     * f for floats; all three are set for every numeric type). */
    uint64_t u;
    int64_t i;
    double f;
    /* STRING: bytes inside the mapping (not NUL-terminated). */
    const char *str;
    size_t slen;
    /* ARRAY: element type and count; elements start at adata in the
     * mapping.  For arrays of strings, soff[k] is the byte offset (from
     * adata) of element k's u64 length prefix, built at open time.  Nested
     * arrays are validated; their elements are reached with
     * ak_gguf_arr_nested. */
    ak_gguf_vtype atype;
    uint64_t alen;
    const uint8_t *adata;
    size_t abytes;             /* bytes of the whole element sequence */
    uint64_t *soff;            /* STRING arrays only, [alen] */
} ak_gguf_kv;

typedef struct ak_gguf_tensor {
    char *name;                /* NUL-terminated copy */
    int ndim;                  /* 1..4 */
    int64_t ne[4];             /* ggml order: ne[0] is the row length (fastest) */
    int type;                  /* ggml type number (see quant.h) */
    const void *data;          /* inside the mapping */
    size_t nbytes;
} ak_gguf_tensor;

typedef struct ak_gguf {
    char *path;
    void *map;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    ak_gguf_kv *kv;            /* in file order */
    size_t nkv;
    ak_gguf_tensor *tensors;   /* in file order */
    size_t ntensors;
    const uint8_t *data;       /* start of the tensor data section */
    uint32_t meta_crc32;       /* CRC-32 of the bytes from the header through
                                  the last tensor info: the model's identity */
    /* Private: kv and tensors indices sorted by name, for the look-ups. */
    size_t *kv_order, *tensor_order;
} ak_gguf;

/* Opens and validates path.  A tensor of a type that quant.h does not
 * support is still listed (its type is reported by the caller that needs
 * it, with exit 78); its size must still be computable, else AK_EDATA. */
int ak_gguf_open(ak_gguf *g, const char *path, ak_err *err);
void ak_gguf_close(ak_gguf *g);

/* CRC-32 of the metadata entries general.architecture and ARCH.* as they
 * are in the file, in file order: the model's identity (config_crc32),
 * which the tokenizer's metadata and the rest do not change.  0 without
 * general.architecture. */
uint32_t ak_gguf_arch_crc32(const ak_gguf *g);

/* NULL when absent. */
const ak_gguf_kv *ak_gguf_get(const ak_gguf *g, const char *key);
const ak_gguf_tensor *ak_gguf_tensor_find(const ak_gguf *g, const char *name);
/* 0 when attnkit computes with t's type (ak_ggml_supported); else
 * AK_ECONFIG (exit 78) with "PATH: tensor NAME has type Q2_K, which attnkit
 * does not support (it reads F32, F16, ...)". */
int ak_gguf_tensor_check(const ak_gguf *g, const ak_gguf_tensor *t, ak_err *err);
/* Number of rows (ne[1] * ne[2] * ne[3]); each row has ne[0] elements. */
int64_t ak_gguf_tensor_rows(const ak_gguf_tensor *t);
/* dst[0..ne[0]) = row r of t as f32 (r < ak_gguf_tensor_rows(t) and the
 * type supported: the caller's to check, e.g. with ak_gguf_tensor_check). */
void ak_gguf_tensor_row(const ak_gguf_tensor *t, int64_t r, float *dst);
/* The whole tensor as f32 into dst[0..n): AK_ECONFIG for a type attnkit
 * does not compute with, AK_EDATA when n is not its element count. */
int ak_gguf_tensor_f32(const ak_gguf *g, const ak_gguf_tensor *t, float *dst, size_t n, ak_err *err);

/* Typed getters: 0 on success; AK_EDATA naming the key when it is there
 * with the wrong type; 1 when absent (then *out is untouched). */
int ak_gguf_get_u64(const ak_gguf *g, const char *key, uint64_t *out, ak_err *err);
int ak_gguf_get_i64(const ak_gguf *g, const char *key, int64_t *out, ak_err *err);
int ak_gguf_get_f64(const ak_gguf *g, const char *key, double *out, ak_err *err);
int ak_gguf_get_bool(const ak_gguf *g, const char *key, int *out, ak_err *err);
/* The string (not NUL-terminated) and its length. */
int ak_gguf_get_str(const ak_gguf *g, const char *key, const char **s, size_t *len,
                    ak_err *err);

/* Array elements.  idx < kv->alen is the caller's to check. */
const char *ak_gguf_arr_str(const ak_gguf_kv *kv, uint64_t idx, size_t *len);
double ak_gguf_arr_f64(const ak_gguf_kv *kv, uint64_t idx);   /* numeric arrays */
int64_t ak_gguf_arr_i64(const ak_gguf_kv *kv, uint64_t idx);  /* integer/bool arrays */
/* Element idx of an array of arrays, as a kv view (key borrowed, no soff:
 * ak_gguf_arr_str walks such a view's strings).  0, or -1 when kv is not an
 * array of arrays or idx is out of range.  Costs O(bytes before idx). */
int ak_gguf_arr_nested(const ak_gguf_kv *kv, uint64_t idx, ak_gguf_kv *out);

/* 1 when path names a GGUF model: a file ending in .gguf, or a directory
 * holding no config.json and exactly one *.gguf file; then out receives the
 * file's path.  0 otherwise (a Hugging Face directory, or nothing).  -1 for
 * a directory with no config.json and several *.gguf files: out receives
 * "A.gguf, B.gguf" (two of their names, for ak_gguf_ambiguous). */
int ak_gguf_locate(const char *path, char *out, size_t outsz);
/* AK_ECONFIG "DIR: holds several .gguf files (NAMES) ...: name one". */
int ak_gguf_ambiguous(const char *dir, const char *names, ak_err *err);

#endif
