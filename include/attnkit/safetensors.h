/* safetensors.h - memory-mapped, validated reading of Hugging Face
 * safetensors files, single or sharded (model.safetensors.index.json).
 *
 * File layout: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *    "__metadata__": {...}}
 * then the data section; offsets are relative to its start.  Everything in
 * the header is untrusted: each tensor's byte size must equal its shape times
 * its element size, lie inside the file, and not overlap another tensor.
 */
#ifndef AK_SAFETENSORS_H
#define AK_SAFETENSORS_H

#include "tensor.h"

/* Largest header accepted (the format's own reference limit is 100 MB). */
#define AK_ST_MAX_HEADER ((size_t)100 << 20)

typedef struct ak_st_tensor {
    char *name;
    ak_dtype dtype;         /* only F32, F16, BF16, I32, I64, U8 are accepted */
    int ndim;
    int64_t shape[AK_MAX_DIMS];
    const void *data;       /* inside the mapping */
    size_t nbytes;
    int file;               /* which shard */
} ak_st_tensor;

typedef struct ak_st_file {
    char *path;
    void *map;
    size_t size;
} ak_st_file;

typedef struct ak_safetensors {
    ak_st_file *files;
    int nfiles;
    ak_st_tensor *tensors;  /* sorted by name */
    size_t ntensors;
} ak_safetensors;

/* Opens one .safetensors file. */
AK_API int ak_st_open_file(ak_safetensors *st, const char *path, ak_err *err);
/* Opens a model directory: model.safetensors.index.json (sharded) when it
 * exists, else model.safetensors. */
AK_API int ak_st_open_dir(ak_safetensors *st, const char *dir, ak_err *err);
AK_API void ak_st_close(ak_safetensors *st);

/* NULL when absent. */
AK_API const ak_st_tensor *ak_st_find(const ak_safetensors *st, const char *name);

/* Copies a float tensor (F32/F16/BF16) into dst as f32; n must equal the
 * tensor's element count. */
AK_API int ak_st_to_f32(const ak_st_tensor *t, float *dst, size_t n, ak_err *err);

#endif
