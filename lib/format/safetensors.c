/* safetensors.c - see safetensors.h.  Every number in a header is checked
 * before it is used to index the mapping. */
#include "attnkit/safetensors.h"
#include "regfile.h"
#include "attnkit/io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Element sizes of the safetensors dtype names; `ak` is AK_NDTYPES where
 * attnkit cannot use the values (the bytes are still validated). */
static const struct { const char *name; size_t size; ak_dtype ak; } st_dtypes[] = {
    {"F32", 4, AK_F32},   {"F16", 2, AK_F16},       {"BF16", 2, AK_BF16},
    {"I64", 8, AK_I64},   {"I32", 4, AK_I32},       {"U8", 1, AK_U8},
    {"F64", 8, AK_NDTYPES}, {"I16", 2, AK_NDTYPES}, {"I8", 1, AK_NDTYPES},
    {"U16", 2, AK_NDTYPES}, {"U32", 4, AK_NDTYPES}, {"U64", 8, AK_NDTYPES},
    {"BOOL", 1, AK_NDTYPES}, {"F8_E4M3", 1, AK_NDTYPES}, {"F8_E5M2", 1, AK_NDTYPES},
};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const ak_st_tensor *)a)->name, ((const ak_st_tensor *)b)->name);
}

typedef struct { size_t begin, end; const char *name; } span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

void ak_st_close(ak_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->ntensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->nfiles; i++) {
        if (st->files[i].map)
            munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->files);
    memset(st, 0, sizeof *st);
}

static int json_nonneg_int(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Parses and validates one file's header; appends its tensors to st. */
static int parse_header(ak_safetensors *st, int fileno, ak_err *err)
{
    const ak_st_file *f = &st->files[fileno];
    const unsigned char *p = f->map;
    const char *path = f->path;
    if (f->size < 8)
        return ak_fail(err, AK_EDATA, "%s: truncated safetensors file (%zu bytes, no header length)",
                       path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > AK_ST_MAX_HEADER || hlen > f->size - 8)
        return ak_fail(err, AK_EDATA, "%s: safetensors header length %llu exceeds the file (%zu bytes)%s",
                       path, (unsigned long long)hlen, f->size,
                       hlen > AK_ST_MAX_HEADER ? " or the 100 MB limit" : "");
    size_t data_size = f->size - 8 - (size_t)hlen;
    const unsigned char *data = p + 8 + hlen;

    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ak_fail(err, AK_EDATA, "%s: safetensors header is not valid JSON: %s at byte %d",
                       path, je.text, je.position + 8);
    int rc = 0;
    span *spans = NULL;
    size_t nspans = 0;
    if (!json_is_object(root)) {
        rc = ak_fail(err, AK_EDATA, "%s: safetensors header is not a JSON object", path);
        goto out;
    }
    size_t nkeys = json_object_size(root);
    spans = calloc(nkeys ? nkeys : 1, sizeof *spans);
    ak_st_tensor *grown = realloc(st->tensors, (st->ntensors + nkeys + 1) * sizeof *grown);
    if (!spans || !grown) {
        if (grown)
            st->tensors = grown;
        rc = ak_fail(err, AK_ENOMEM, "%s: out of memory reading the header", path);
        goto out;
    }
    st->tensors = grown;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__"))
            continue;
        json_t *jd = json_object_get(val, "dtype");
        json_t *js = json_object_get(val, "shape");
        json_t *jo = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(jd) || !json_is_array(js) ||
            !json_is_array(jo) || json_array_size(jo) != 2) {
            rc = ak_fail(err, AK_EDATA, "%s: tensor %s: needs dtype, shape and data_offsets [begin, end]",
                         path, key);
            goto out;
        }
        size_t esize = 0;
        ak_dtype dt = AK_NDTYPES;
        for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
            if (!strcmp(json_string_value(jd), st_dtypes[i].name)) {
                esize = st_dtypes[i].size;
                dt = st_dtypes[i].ak;
            }
        if (!esize) {
            rc = ak_fail(err, AK_EDATA, "%s: tensor %s: unknown dtype \"%s\"", path, key,
                         json_string_value(jd));
            goto out;
        }
        size_t ndim = json_array_size(js);
        if (ndim > AK_MAX_DIMS) {
            rc = ak_fail(err, AK_EDATA, "%s: tensor %s: %zu dimensions (at most %d)", path, key,
                         ndim, AK_MAX_DIMS);
            goto out;
        }
        ak_st_tensor t = {0};
        t.dtype = dt;
        t.ndim = (int)ndim;
        t.file = fileno;
        size_t bytes = esize;
        for (size_t i = 0; i < ndim; i++) {
            uint64_t d;
            if (json_nonneg_int(json_array_get(js, i), &d) || d > (uint64_t)INT64_MAX ||
                ak_mul_size(bytes, (size_t)d, &bytes)) {
                rc = ak_fail(err, AK_EDATA, "%s: tensor %s: bad or oversized shape", path, key);
                goto out;
            }
            t.shape[i] = (int64_t)d;
        }
        uint64_t b, e;
        if (json_nonneg_int(json_array_get(jo, 0), &b) || json_nonneg_int(json_array_get(jo, 1), &e) ||
            b > e || e > data_size) {
            rc = ak_fail(err, AK_EDATA, "%s: tensor %s: data_offsets [%lld, %lld] outside the data section (%zu bytes)",
                         path, key, (long long)json_integer_value(json_array_get(jo, 0)),
                         (long long)json_integer_value(json_array_get(jo, 1)), data_size);
            goto out;
        }
        if (e - b != bytes) {
            rc = ak_fail(err, AK_EDATA, "%s: tensor %s: %llu data bytes but its shape and dtype need %zu",
                         path, key, (unsigned long long)(e - b), bytes);
            goto out;
        }
        t.data = data + b;
        t.nbytes = bytes;
        t.name = strdup(key);
        if (!t.name) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
        spans[nspans++] = (span){(size_t)b, (size_t)e, t.name};
        st->tensors[st->ntensors++] = t;
    }
    qsort(spans, nspans, sizeof *spans, cmp_span);
    for (size_t i = 1; i < nspans; i++)
        if (spans[i].begin < spans[i - 1].end) {
            rc = ak_fail(err, AK_EDATA, "%s: tensors %s and %s overlap in the data section", path,
                         spans[i - 1].name, spans[i].name);
            goto out;
        }
out:
    free(spans);
    json_decref(root);
    return rc;
}

static int map_file(ak_safetensors *st, const char *path, ak_err *err)
{
    ak_st_file *files = realloc(st->files, (size_t)(st->nfiles + 1) * sizeof *files);
    if (!files)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    st->files = files;
    ak_st_file *f = &st->files[st->nfiles];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    st->nfiles++;
    int fd;
    struct stat sb;
    int rc = ak_open_regular(path, &fd, &sb, err);
    if (rc)
        return rc;
    f->size = (size_t)sb.st_size;
    if (f->size) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            close(fd);
            return ak_fail(err, AK_EIO, "%s: mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    /* An empty file has no mapping: parse_header reports it as truncated. */
    return parse_header(st, st->nfiles - 1, err);
}

static int finish(ak_safetensors *st, ak_err *err)
{
    qsort(st->tensors, st->ntensors, sizeof *st->tensors, cmp_name);
    for (size_t i = 1; i < st->ntensors; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name))
            return ak_fail(err, AK_EDATA, "tensor %s appears in two shards", st->tensors[i].name);
    return 0;
}

int ak_st_open_file(ak_safetensors *st, const char *path, ak_err *err)
{
    memset(st, 0, sizeof *st);
    int rc = map_file(st, path, err);
    if (!rc)
        rc = finish(st, err);
    if (rc)
        ak_st_close(st);
    return rc;
}

static int open_sharded(ak_safetensors *st, const char *dir, const char *index, ak_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ak_read_regular(index, (size_t)64 << 20, &text, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!root)
        return ak_fail(err, AK_EDATA, "%s: not valid JSON: %s (line %d)", index, je.text, je.line);
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        json_decref(root);
        return ak_fail(err, AK_EDATA, "%s: no \"weight_map\" object", index);
    }
    const char *key;
    json_t *val;
    char path[4096];
    json_object_foreach(map, key, val) {
        const char *shard = json_string_value(val);
        if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, "..") || !strcmp(shard, ".")) {
            rc = ak_fail(err, AK_EDATA, "%s: weight_map[%s] is not a file name in the model directory",
                         index, key);
            json_decref(root);   /* after the message: key belongs to root */
            return rc;
        }
        int seen = 0;
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        for (int i = 0; i < st->nfiles; i++)
            seen |= !strcmp(st->files[i].path, path);
        if (!seen && (rc = map_file(st, path, err))) {
            json_decref(root);
            return rc;
        }
    }
    if ((rc = finish(st, err))) {
        json_decref(root);
        return rc;
    }
    /* Every tensor the index names must be in the shard it names. */
    json_object_foreach(map, key, val) {
        const ak_st_tensor *t = ak_st_find(st, key);
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(val));
        if (!t || strcmp(st->files[t->file].path, path)) {
            rc = ak_fail(err, AK_EDATA, "%s: tensor %s is not in shard %s", index, key,
                         json_string_value(val));
            break;
        }
    }
    json_decref(root);
    return rc;
}

int ak_st_open_dir(ak_safetensors *st, const char *dir, ak_err *err)
{
    memset(st, 0, sizeof *st);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir) >= (int)sizeof path)
        return ak_fail(err, AK_EUSAGE, "model directory name too long");
    int rc;
    if (access(path, F_OK) == 0) {
        rc = open_sharded(st, dir, path, err);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = map_file(st, path, err);
        if (!rc)
            rc = finish(st, err);
    }
    if (rc)
        ak_st_close(st);
    return rc;
}

const ak_st_tensor *ak_st_find(const ak_safetensors *st, const char *name)
{
    size_t lo = 0, hi = st->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tensors[mid].name);
        if (!c)
            return &st->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int ak_st_to_f32(const ak_st_tensor *t, float *dst, size_t n, ak_err *err)
{
    size_t esize = t->dtype == AK_F32 ? 4 : (t->dtype == AK_F16 || t->dtype == AK_BF16) ? 2 : 0;
    if (!esize)
        return ak_fail(err, AK_ECONFIG, "tensor %s: dtype is not f32, f16 or bf16", t->name);
    if (t->nbytes != n * esize)
        return ak_fail(err, AK_EDATA, "tensor %s: %zu elements, expected %zu", t->name,
                       t->nbytes / esize, n);
    const unsigned char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        if (esize == 4) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &u, 4);
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            dst[i] = t->dtype == AK_F16 ? ak_f16_to_f32(h) : ak_bf16_to_f32(h);
        }
    }
    return 0;
}
