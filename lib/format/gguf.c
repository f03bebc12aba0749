/* gguf.c - see gguf.h.  The file is parsed front to back by one cursor;
 * every count and length is compared with what is left of the file before
 * it is used, so a lying header costs neither memory nor time. */
#include "gguf.h"
#include "attnkit/io.h"
#include "quant.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Arrays of arrays deeper than this are refused: the reader recurses once
 * per level, and no model format nests more than two. */
#define GGUF_MAX_DEPTH 8
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct {
    const uint8_t *p;
    size_t size, off;
    const char *path;
    ak_err *err;
} cursor;

static const char *vtype_name(uint32_t t)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Element size of a fixed-size value type, 0 for string and array, -1 for
 * a number that is no type. */
static int vtype_size(uint32_t t)
{
    switch (t) {
    case AK_GGUF_U8: case AK_GGUF_I8: case AK_GGUF_BOOL: return 1;
    case AK_GGUF_U16: case AK_GGUF_I16: return 2;
    case AK_GGUF_U32: case AK_GGUF_I32: case AK_GGUF_F32: return 4;
    case AK_GGUF_U64: case AK_GGUF_I64: case AK_GGUF_F64: return 8;
    case AK_GGUF_STRING: case AK_GGUF_ARRAY: return 0;
    default: return -1;
    }
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int bad(cursor *c, size_t at, const char *what)
{
    return ak_fail(c->err, AK_EDATA, "%s: %s (at byte %zu)", c->path, what, at);
}

static size_t left(const cursor *c) { return c->size - c->off; }

static int need(cursor *c, size_t n, const char *what)
{
    if (left(c) < n) {
        char m[256];
        snprintf(m, sizeof m, "truncated: %s needs %zu bytes, %zu left", what, n, left(c));
        return bad(c, c->off, m);
    }
    return 0;
}

static int get_u32(cursor *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what))
        return AK_EDATA;
    *v = (uint32_t)le(c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int get_u64(cursor *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what))
        return AK_EDATA;
    *v = le(c->p + c->off, 8);
    c->off += 8;
    return 0;
}

/* A string: u64 length + bytes; the length is bounded by the file. */
static int get_str(cursor *c, const char **s, size_t *len, const char *what)
{
    size_t at = c->off;
    uint64_t n;
    if (get_u64(c, &n, what))
        return AK_EDATA;
    if (n > left(c)) {
        char m[256];
        snprintf(m, sizeof m, "%s: string length %llu exceeds the %zu bytes left in the file",
                 what, (unsigned long long)n, left(c));
        return bad(c, at, m);
    }
    *s = (const char *)c->p + c->off;
    *len = (size_t)n;
    c->off += (size_t)n;
    return 0;
}

/* Walks (and validates) the elements of an array of type t, count n, at
 * the cursor. */
static int walk_array(cursor *c, uint32_t t, uint64_t n, int depth, const char *key);

static int walk_value(cursor *c, uint32_t t, int depth, const char *key)
{
    int sz = vtype_size(t);
    if (sz > 0) {
        if (need(c, (size_t)sz, key))
            return AK_EDATA;
        c->off += (size_t)sz;
        return 0;
    }
    if (t == AK_GGUF_STRING) {
        const char *s;
        size_t len;
        return get_str(c, &s, &len, key);
    }
    /* nested array */
    uint32_t et;
    uint64_t n;
    if (get_u32(c, &et, key) || get_u64(c, &n, key))
        return AK_EDATA;
    return walk_array(c, et, n, depth + 1, key);
}

static int walk_array(cursor *c, uint32_t t, uint64_t n, int depth, const char *key)
{
    char m[320];
    size_t at = c->off;
    if (depth > GGUF_MAX_DEPTH) {
        snprintf(m, sizeof m, "key %s: arrays nested deeper than %d", key, GGUF_MAX_DEPTH);
        return bad(c, at, m);
    }
    int sz = vtype_size(t);
    if (sz < 0) {
        snprintf(m, sizeof m, "key %s: unknown array element type %u", key, t);
        return bad(c, at - 12, m);
    }
    /* Every element takes at least this many bytes: the bound that keeps
     * a count of 2^62 from costing anything. */
    size_t min = sz > 0 ? (size_t)sz : t == AK_GGUF_STRING ? 8 : 12;
    if (n > left(c) / min) {
        snprintf(m, sizeof m, "key %s: array of %llu %s elements cannot fit in the %zu bytes left",
                 key, (unsigned long long)n, vtype_name(t), left(c));
        return bad(c, at - 8, m);
    }
    if (sz > 0) {
        c->off += (size_t)n * (size_t)sz;
        return 0;
    }
    for (uint64_t k = 0; k < n; k++)
        if (walk_value(c, t, depth, key))
            return AK_EDATA;
    return 0;
}

/* The byte length of an already validated value of type t at p. */
static size_t value_bytes(uint32_t t, const uint8_t *p);

static size_t array_body_bytes(uint32_t et, uint64_t n, const uint8_t *p)
{
    int sz = vtype_size(et);
    if (sz > 0)
        return (size_t)n * (size_t)sz;
    size_t off = 0;
    for (uint64_t k = 0; k < n; k++)
        off += value_bytes(et, p + off);
    return off;
}

static size_t value_bytes(uint32_t t, const uint8_t *p)
{
    int sz = vtype_size(t);
    if (sz > 0)
        return (size_t)sz;
    if (t == AK_GGUF_STRING)
        return 8 + (size_t)le(p, 8);
    return 12 + array_body_bytes((uint32_t)le(p, 4), le(p + 4, 8), p + 12);
}

/* Sets the widened scalar fields from a fixed-size value at p. */
static void set_scalar(ak_gguf_kv *kv, uint32_t t, const uint8_t *p)
{
    uint64_t raw = le(p, vtype_size(t));
    switch (t) {
    case AK_GGUF_U8: case AK_GGUF_U16: case AK_GGUF_U32: case AK_GGUF_U64:
        kv->u = raw;
        kv->i = raw > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)raw;
        kv->f = (double)raw;
        break;
    case AK_GGUF_BOOL:
        kv->u = raw != 0;
        kv->i = raw != 0;
        kv->f = raw != 0;
        break;
    case AK_GGUF_I8: kv->i = (int8_t)raw; goto sgn;
    case AK_GGUF_I16: kv->i = (int16_t)raw; goto sgn;
    case AK_GGUF_I32: kv->i = (int32_t)raw; goto sgn;
    case AK_GGUF_I64: kv->i = (int64_t)raw;
    sgn:
        kv->u = (uint64_t)kv->i;
        kv->f = (double)kv->i;
        break;
    case AK_GGUF_F32: {
        uint32_t u32 = (uint32_t)raw;
        float f;
        memcpy(&f, &u32, 4);
        kv->f = f;
        kv->i = (int64_t)0;
        kv->u = 0;
        if (f >= -9.2e18f && f <= 9.2e18f) {
            kv->i = (int64_t)f;
            kv->u = f >= 0 ? (uint64_t)f : 0;
        }
        break;
    }
    case AK_GGUF_F64: {
        double f;
        memcpy(&f, &raw, 8);
        kv->f = f;
        kv->i = 0;
        kv->u = 0;
        if (f >= -9.2e18 && f <= 9.2e18) {
            kv->i = (int64_t)f;
            kv->u = f >= 0 ? (uint64_t)f : 0;
        }
        break;
    }
    }
}

static int is_integer_type(int t)
{
    return t == AK_GGUF_U8 || t == AK_GGUF_I8 || t == AK_GGUF_U16 || t == AK_GGUF_I16 ||
           t == AK_GGUF_U32 || t == AK_GGUF_I32 || t == AK_GGUF_U64 || t == AK_GGUF_I64;
}

static int is_signed_type(int t)
{
    return t == AK_GGUF_I8 || t == AK_GGUF_I16 || t == AK_GGUF_I32 || t == AK_GGUF_I64;
}

/* One metadata pair at the cursor into kv. */
static int read_kv(cursor *c, ak_gguf_kv *kv, uint64_t index)
{
    char m[320];
    size_t at = c->off;
    const char *k;
    size_t klen;
    snprintf(m, sizeof m, "metadata key %llu", (unsigned long long)index);
    if (get_str(c, &k, &klen, m))
        return AK_EDATA;
    if (klen == 0 || memchr(k, 0, klen))
        return bad(c, at, klen ? "metadata key holds a NUL byte" : "empty metadata key");
    kv->key = strndup(k, klen);
    if (!kv->key)
        return ak_fail(c->err, AK_ENOMEM, "%s: out of memory", c->path);
    uint32_t t;
    size_t tat = c->off;
    if (get_u32(c, &t, kv->key))
        return AK_EDATA;
    if (vtype_size(t) < 0) {
        snprintf(m, sizeof m, "key %s: unknown value type %u", kv->key, t);
        return bad(c, tat, m);
    }
    kv->type = (ak_gguf_vtype)t;
    const uint8_t *vp = c->p + c->off;
    if (vtype_size(t) > 0) {
        if (need(c, (size_t)vtype_size(t), kv->key))
            return AK_EDATA;
        set_scalar(kv, t, vp);
        c->off += (size_t)vtype_size(t);
        return 0;
    }
    if (t == AK_GGUF_STRING)
        return get_str(c, &kv->str, &kv->slen, kv->key);
    uint32_t et;
    uint64_t n;
    if (get_u32(c, &et, kv->key) || get_u64(c, &n, kv->key))
        return AK_EDATA;
    size_t start = c->off;
    if (walk_array(c, et, n, 1, kv->key))
        return AK_EDATA;
    kv->atype = (ak_gguf_vtype)et;
    kv->alen = n;
    kv->adata = c->p + start;
    kv->abytes = c->off - start;
    if (et == AK_GGUF_STRING) {
        /* n <= file size / 8, checked by walk_array. */
        kv->soff = malloc((n ? (size_t)n : 1) * sizeof *kv->soff);
        if (!kv->soff)
            return ak_fail(c->err, AK_ENOMEM, "%s: out of memory (key %s)", c->path, kv->key);
        size_t off = 0;
        for (uint64_t j = 0; j < n; j++) {
            kv->soff[j] = off;
            off += 8 + (size_t)le(kv->adata + off, 8);
        }
    }
    return 0;
}

static int cmp_kv_idx(const void *a, const void *b, void *ctx)
{
    const ak_gguf_kv *kv = ctx;
    return strcmp(kv[*(const size_t *)a].key, kv[*(const size_t *)b].key);
}

static int cmp_t_idx(const void *a, const void *b, void *ctx)
{
    const ak_gguf_tensor *t = ctx;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

typedef struct { uint64_t begin, end; size_t idx; } span;

/* Where each pair and tensor info starts, for the messages. */
typedef struct { size_t *kv, *t; } positions;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int read_tensor(cursor *c, ak_gguf_tensor *t, uint64_t index, uint64_t *offset)
{
    char m[320];
    size_t at = c->off;
    const char *s;
    size_t len;
    snprintf(m, sizeof m, "tensor info %llu", (unsigned long long)index);
    if (get_str(c, &s, &len, m))
        return AK_EDATA;
    if (len == 0 || memchr(s, 0, len))
        return bad(c, at, len ? "tensor name holds a NUL byte" : "empty tensor name");
    t->name = strndup(s, len);
    if (!t->name)
        return ak_fail(c->err, AK_ENOMEM, "%s: out of memory", c->path);
    uint32_t nd;
    at = c->off;
    if (get_u32(c, &nd, t->name))
        return AK_EDATA;
    if (nd < 1 || nd > 4) {
        snprintf(m, sizeof m, "tensor %s: %u dimensions (1 to 4 allowed)", t->name, nd);
        return bad(c, at, m);
    }
    t->ndim = (int)nd;
    int64_t nel = 1;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        at = c->off;
        if (get_u64(c, &v, t->name))
            return AK_EDATA;
        if (v == 0 || v > (uint64_t)INT64_MAX || (uint64_t)nel > (uint64_t)INT64_MAX / v) {
            snprintf(m, sizeof m, "tensor %s: dimension %u is %llu%s", t->name, d,
                     (unsigned long long)v, v ? " (the element count overflows)" : "");
            return bad(c, at, m);
        }
        t->ne[d] = (int64_t)v;
        nel *= (int64_t)v;
    }
    uint32_t type;
    at = c->off;
    if (get_u32(c, &type, t->name))
        return AK_EDATA;
    size_t be, bb;
    if (type > INT32_MAX || ak_ggml_block((int)type, &be, &bb) < 0) {
        snprintf(m, sizeof m, "tensor %s: unknown ggml type %u", t->name, type);
        return bad(c, at, m);
    }
    t->type = (int)type;
    if ((uint64_t)t->ne[0] % be) {
        snprintf(m, sizeof m, "tensor %s: row length %lld is not a multiple of %s's block of %zu",
                 t->name, (long long)t->ne[0], ak_ggml_type_name(t->type), be);
        return bad(c, at, m);
    }
    size_t nbytes;
    if (ak_mul_size((size_t)t->ne[0] / be, bb, &nbytes) ||
        ak_mul_size(nbytes, (size_t)(nel / t->ne[0]), &nbytes)) {
        snprintf(m, sizeof m, "tensor %s: size overflows", t->name);
        return bad(c, at, m);
    }
    t->nbytes = nbytes;
    return get_u64(c, offset, t->name);
}

/* The CRC-32 of the header, the metadata and the tensor infos. */
static uint32_t meta_crc32(const ak_gguf *g, size_t infos_end)
{
    /* zlib's crc32 takes a uInt length: feed it in pieces. */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t o = 0; o < infos_end;) {
        size_t n = infos_end - o > (1u << 30) ? (1u << 30) : infos_end - o;
        crc = crc32(crc, (const Bytef *)g->map + o, (uInt)n);
        o += n;
    }
    return (uint32_t)crc;
}

/* Keys are unique. */
static int unique_keys(ak_gguf *g, const positions *at, ak_err *err)
{
    for (size_t k = 0; k < g->nkv; k++)
        g->kv_order[k] = k;
    qsort_r(g->kv_order, g->nkv, sizeof *g->kv_order, cmp_kv_idx, g->kv);
    for (size_t k = 1; k < g->nkv; k++)
        if (!strcmp(g->kv[g->kv_order[k]].key, g->kv[g->kv_order[k - 1]].key)) {
            size_t a = g->kv_order[k - 1], b = g->kv_order[k];
            return ak_fail(err, AK_EDATA, "%s: metadata key %s appears twice (at byte %zu)", g->path,
                           g->kv[b].key, at->kv[a > b ? a : b]);
        }
    return 0;
}

/* The alignment (general.alignment) and where the tensor data starts. */
static int data_section(ak_gguf *g, const positions *at, size_t infos_end, uint64_t nt,
                        size_t *data_size, ak_err *err)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const ak_gguf_kv *al = ak_gguf_get(g, "general.alignment");
    if (al) {
        if (!is_integer_type(al->type) || (is_signed_type(al->type) && al->i <= 0) || al->u == 0 ||
            (al->u & (al->u - 1)) || al->u > (1u << 30)) {
            return ak_fail(err, AK_EDATA,
                           "%s: general.alignment must be a power of two integer (up to 2^30) (at byte %zu)",
                           g->path, at->kv[al - g->kv]);
        }
        g->alignment = al->u;
    }
    size_t data_start = infos_end + (size_t)((g->alignment - infos_end % g->alignment) % g->alignment);
    if (data_start > g->size) {
        if (nt)
            return ak_fail(err, AK_EDATA,
                           "%s: truncated: the tensor data should start at byte %zu, the file has %zu bytes (at byte %zu)",
                           g->path, data_start, g->size, g->size);
        data_start = g->size;
    }
    g->data = (const uint8_t *)g->map + data_start;
    *data_size = g->size - data_start;
    return 0;
}

/* Each tensor's data: aligned, inside the data section, overlapping no
 * other; and no name twice. */
static int place_tensors(ak_gguf *g, const positions *at, const uint64_t *offs, span *spans,
                         size_t data_size, ak_err *err)
{
    for (size_t k = 0; k < g->ntensors; k++) {
        ak_gguf_tensor *t = &g->tensors[k];
        if (offs[k] % g->alignment)
            return ak_fail(err, AK_EDATA,
                           "%s: tensor %s: data offset %llu is not a multiple of the alignment %llu (at byte %zu)",
                           g->path, t->name, (unsigned long long)offs[k], (unsigned long long)g->alignment,
                           at->t[k]);
        if (offs[k] > data_size || t->nbytes > data_size - offs[k])
            return ak_fail(err, AK_EDATA,
                           "%s: tensor %s: data [%llu, +%zu) lies outside the %zu-byte data section (at byte %zu)",
                           g->path, t->name, (unsigned long long)offs[k], t->nbytes, data_size, at->t[k]);
        t->data = g->data + offs[k];
        spans[k] = (span){offs[k], offs[k] + t->nbytes, k};
        g->tensor_order[k] = k;
    }
    qsort(spans, g->ntensors, sizeof *spans, cmp_span);
    for (size_t k = 1; k < g->ntensors; k++)
        if (spans[k].begin < spans[k - 1].end)
            return ak_fail(err, AK_EDATA, "%s: tensors %s and %s overlap in the data section (at byte %zu)",
                           g->path, g->tensors[spans[k - 1].idx].name, g->tensors[spans[k].idx].name,
                           at->t[spans[k].idx]);
    qsort_r(g->tensor_order, g->ntensors, sizeof *g->tensor_order, cmp_t_idx, g->tensors);
    for (size_t k = 1; k < g->ntensors; k++)
        if (!strcmp(g->tensors[g->tensor_order[k]].name, g->tensors[g->tensor_order[k - 1]].name)) {
            size_t a = g->tensor_order[k - 1], b = g->tensor_order[k];
            return ak_fail(err, AK_EDATA, "%s: tensor %s appears twice (at byte %zu)", g->path,
                           g->tensors[b].name, at->t[a > b ? a : b]);
        }
    return 0;
}

static int parse(ak_gguf *g, ak_err *err)
{
    cursor c = {g->map, g->size, 0, g->path, err};
    char m[320];
    if (g->size < 4 || memcmp(g->map, "GGUF", 4))
        return ak_fail(err, AK_EDATA, "%s: not a GGUF file (no \"GGUF\" magic) (at byte 0)", g->path);
    c.off = 4;
    if (get_u32(&c, &g->version, "the version"))
        return AK_EDATA;
    if (g->version != 2 && g->version != 3) {
        uint32_t v = g->version;
        int swapped = (v & 0xffff) == 0 && (v >> 24 == 2 || v >> 24 == 3);
        return ak_fail(err, AK_ECONFIG, "%s: GGUF version %u is not supported (only 2 and 3%s) (at byte 4)",
                       g->path, v, swapped ? "; this looks like a big-endian file" : "");
    }
    uint64_t nt, nkv;
    if (get_u64(&c, &nt, "the tensor count") || get_u64(&c, &nkv, "the metadata count"))
        return AK_EDATA;
    /* A pair takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor
     * info 8 + 4 + 8 + 4 + 8. */
    if (nkv > left(&c) / 13) {
        snprintf(m, sizeof m, "%llu metadata pairs cannot fit in the %zu bytes left",
                 (unsigned long long)nkv, left(&c));
        return bad(&c, 16, m);
    }
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    positions at = {calloc(nkv ? (size_t)nkv : 1, sizeof(size_t)), NULL};
    uint64_t *offs = NULL;
    span *spans = NULL;
    int rc = 0;
    if (!g->kv || !at.kv) {
        rc = ak_fail(err, AK_ENOMEM, "%s: out of memory", g->path);
        goto out;
    }
    for (uint64_t k = 0; k < nkv; k++) {
        g->nkv = (size_t)k + 1;
        at.kv[k] = c.off;
        if ((rc = read_kv(&c, &g->kv[k], k)))
            goto out;
    }
    if (nt > left(&c) / 32) {
        snprintf(m, sizeof m, "%llu tensor infos cannot fit in the %zu bytes left",
                 (unsigned long long)nt, left(&c));
        rc = bad(&c, 8, m);
        goto out;
    }
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    offs = calloc(nt ? (size_t)nt : 1, sizeof *offs);
    spans = calloc(nt ? (size_t)nt : 1, sizeof *spans);
    at.t = calloc(nt ? (size_t)nt : 1, sizeof *at.t);
    g->kv_order = calloc(g->nkv ? g->nkv : 1, sizeof *g->kv_order);
    g->tensor_order = calloc(nt ? (size_t)nt : 1, sizeof *g->tensor_order);
    if (!g->tensors || !offs || !spans || !at.t || !g->kv_order || !g->tensor_order) {
        rc = ak_fail(err, AK_ENOMEM, "%s: out of memory", g->path);
        goto out;
    }
    for (uint64_t k = 0; k < nt; k++) {
        g->ntensors = (size_t)k + 1;
        at.t[k] = c.off;
        if ((rc = read_tensor(&c, &g->tensors[k], k, &offs[k])))
            goto out;
    }
    size_t infos_end = c.off;
    g->meta_crc32 = meta_crc32(g, infos_end);
    size_t data_size = 0;
    if ((rc = unique_keys(g, &at, err)) || (rc = data_section(g, &at, infos_end, nt, &data_size, err)) ||
        (rc = place_tensors(g, &at, offs, spans, data_size, err)))
        goto out;
out:
    free(offs);
    free(spans);
    free(at.kv);
    free(at.t);
    return rc;
}

int ak_gguf_open(ak_gguf *g, const char *path, ak_err *err)
{
    memset(g, 0, sizeof *g);
    g->path = strdup(path);
    if (!g->path)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    /* O_NONBLOCK so that a FIFO does not hang the open; fstat refuses it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int rc = ak_fail(err, AK_ENOINPUT, "%s: %s", path, strerror(errno));
        ak_gguf_close(g);
        return rc;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        int rc = ak_fail(err, AK_ENOINPUT, "%s: not a regular file", path);
        ak_gguf_close(g);
        return rc;
    }
    ak_input_note(fd, path);
    g->size = (size_t)sb.st_size;
    int rc = 0;
    if (g->size == 0) {
        rc = ak_fail(err, AK_EDATA, "%s: empty file, not a GGUF file (at byte 0)", path);
    } else {
        g->map = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (g->map == MAP_FAILED) {
            g->map = NULL;
            rc = ak_fail(err, AK_EIO, "%s: mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    if (!rc)
        rc = parse(g, err);
    if (rc)
        ak_gguf_close(g);
    return rc;
}

void ak_gguf_close(ak_gguf *g)
{
    if (!g)
        return;
    for (size_t k = 0; k < g->nkv; k++) {
        free(g->kv[k].key);
        free(g->kv[k].soff);
    }
    free(g->kv);
    for (size_t k = 0; k < g->ntensors; k++)
        free(g->tensors[k].name);
    free(g->tensors);
    free(g->kv_order);
    free(g->tensor_order);
    if (g->map)
        munmap(g->map, g->size);
    free(g->path);
    memset(g, 0, sizeof *g);
}

const ak_gguf_kv *ak_gguf_get(const ak_gguf *g, const char *key)
{
    size_t lo = 0, hi = g->nkv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, g->kv[g->kv_order[mid]].key);
        if (!c)
            return &g->kv[g->kv_order[mid]];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const ak_gguf_tensor *ak_gguf_tensor_find(const ak_gguf *g, const char *name)
{
    size_t lo = 0, hi = g->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, g->tensors[g->tensor_order[mid]].name);
        if (!c)
            return &g->tensors[g->tensor_order[mid]];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int ak_gguf_tensor_check(const ak_gguf *g, const ak_gguf_tensor *t, ak_err *err)
{
    if (ak_ggml_supported(t->type))
        return 0;
    return ak_fail(err, AK_ECONFIG,
                   "%s: tensor %s has type %s, which attnkit does not support (it reads %s)", g->path,
                   t->name, ak_ggml_type_name(t->type), ak_ggml_supported_names());
}

int64_t ak_gguf_tensor_rows(const ak_gguf_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

void ak_gguf_tensor_row(const ak_gguf_tensor *t, int64_t r, float *dst)
{
    size_t rb = ak_ggml_row_bytes(t->type, t->ne[0]);
    ak_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, dst, t->ne[0]);
}

int ak_gguf_tensor_f32(const ak_gguf *g, const ak_gguf_tensor *t, float *dst, size_t n, ak_err *err)
{
    int rc = ak_gguf_tensor_check(g, t, err);
    if (rc)
        return rc;
    int64_t rows = ak_gguf_tensor_rows(t);
    if ((uint64_t)rows * (uint64_t)t->ne[0] != n)
        return ak_fail(err, AK_EDATA, "%s: tensor %s has %lld elements, expected %zu", g->path, t->name,
                       (long long)(rows * t->ne[0]), n);
    for (int64_t r = 0; r < rows; r++)
        ak_gguf_tensor_row(t, r, dst + (size_t)r * (size_t)t->ne[0]);
    return 0;
}

static int wrong(const ak_gguf *g, const ak_gguf_kv *kv, const char *want, ak_err *err)
{
    return ak_fail(err, AK_EDATA, "%s: metadata %s is a %s, expected %s", g->path, kv->key,
                   vtype_name(kv->type), want);
}

int ak_gguf_get_u64(const ak_gguf *g, const char *key, uint64_t *out, ak_err *err)
{
    const ak_gguf_kv *kv = ak_gguf_get(g, key);
    if (!kv)
        return 1;
    if (!is_integer_type(kv->type))
        return wrong(g, kv, "an integer", err);
    if (is_signed_type(kv->type) && kv->i < 0)
        return ak_fail(err, AK_EDATA, "%s: metadata %s is negative (%lld)", g->path, key,
                       (long long)kv->i);
    *out = kv->u;
    return 0;
}

int ak_gguf_get_i64(const ak_gguf *g, const char *key, int64_t *out, ak_err *err)
{
    const ak_gguf_kv *kv = ak_gguf_get(g, key);
    if (!kv)
        return 1;
    if (!is_integer_type(kv->type))
        return wrong(g, kv, "an integer", err);
    if (kv->type == AK_GGUF_U64 && kv->u > (uint64_t)INT64_MAX)
        return ak_fail(err, AK_EDATA, "%s: metadata %s is too large (%llu)", g->path, key,
                       (unsigned long long)kv->u);
    *out = kv->i;
    return 0;
}

int ak_gguf_get_f64(const ak_gguf *g, const char *key, double *out, ak_err *err)
{
    const ak_gguf_kv *kv = ak_gguf_get(g, key);
    if (!kv)
        return 1;
    if (kv->type != AK_GGUF_F32 && kv->type != AK_GGUF_F64 && !is_integer_type(kv->type))
        return wrong(g, kv, "a number", err);
    *out = kv->f;
    return 0;
}

int ak_gguf_get_bool(const ak_gguf *g, const char *key, int *out, ak_err *err)
{
    const ak_gguf_kv *kv = ak_gguf_get(g, key);
    if (!kv)
        return 1;
    if (kv->type != AK_GGUF_BOOL)
        return wrong(g, kv, "a bool", err);
    *out = (int)kv->u;
    return 0;
}

int ak_gguf_get_str(const ak_gguf *g, const char *key, const char **s, size_t *len, ak_err *err)
{
    const ak_gguf_kv *kv = ak_gguf_get(g, key);
    if (!kv)
        return 1;
    if (kv->type != AK_GGUF_STRING)
        return wrong(g, kv, "a string", err);
    *s = kv->str;
    *len = kv->slen;
    return 0;
}

const char *ak_gguf_arr_str(const ak_gguf_kv *kv, uint64_t idx, size_t *len)
{
    if (kv->type != AK_GGUF_ARRAY || kv->atype != AK_GGUF_STRING || idx >= kv->alen)
        return NULL;
    size_t off = 0;
    if (kv->soff)
        off = (size_t)kv->soff[idx];
    else
        for (uint64_t k = 0; k < idx; k++)
            off += 8 + (size_t)le(kv->adata + off, 8);
    *len = (size_t)le(kv->adata + off, 8);
    return (const char *)kv->adata + off + 8;
}

double ak_gguf_arr_f64(const ak_gguf_kv *kv, uint64_t idx)
{
    int sz = vtype_size(kv->atype);
    if (kv->type != AK_GGUF_ARRAY || sz <= 0 || idx >= kv->alen)
        return 0;
    ak_gguf_kv v = {0};
    set_scalar(&v, kv->atype, kv->adata + (size_t)idx * (size_t)sz);
    return v.f;
}

int64_t ak_gguf_arr_i64(const ak_gguf_kv *kv, uint64_t idx)
{
    int sz = vtype_size(kv->atype);
    if (kv->type != AK_GGUF_ARRAY || sz <= 0 || idx >= kv->alen)
        return 0;
    ak_gguf_kv v = {0};
    set_scalar(&v, kv->atype, kv->adata + (size_t)idx * (size_t)sz);
    return kv->atype == AK_GGUF_U64 ? (int64_t)v.u : v.i;
}

int ak_gguf_arr_nested(const ak_gguf_kv *kv, uint64_t idx, ak_gguf_kv *out)
{
    if (kv->type != AK_GGUF_ARRAY || kv->atype != AK_GGUF_ARRAY || idx >= kv->alen)
        return -1;
    const uint8_t *p = kv->adata;
    for (uint64_t k = 0; k < idx; k++)
        p += value_bytes(AK_GGUF_ARRAY, p);
    memset(out, 0, sizeof *out);
    out->key = kv->key;
    out->type = AK_GGUF_ARRAY;
    out->atype = (ak_gguf_vtype)le(p, 4);
    out->alen = le(p + 4, 8);
    out->adata = p + 12;
    out->abytes = array_body_bytes(out->atype, out->alen, out->adata);
    return 0;
}

static int ends_with_gguf(const char *s)
{
    size_t n = strlen(s);
    return n >= 5 && !strcmp(s + n - 5, ".gguf");
}

int ak_gguf_ambiguous(const char *dir, const char *names, ak_err *err)
{
    return ak_fail(err, AK_ECONFIG, "%s: holds several .gguf files (%s) and no config.json: "
                   "name one, -m %s/FILE.gguf", dir, names, dir);
}

int ak_gguf_locate(const char *path, char *out, size_t outsz)
{
    struct stat sb;
    if (stat(path, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        if (!ends_with_gguf(path) || strlen(path) >= outsz)
            return 0;
        strcpy(out, path);
        return 1;
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/config.json", path);
    if (access(buf, F_OK) == 0)
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0, fits = 0;
    char first[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with_gguf(e->d_name))
            continue;
        if (snprintf(buf, sizeof buf, "%s/%s", path, e->d_name) >= (int)sizeof buf)
            continue;
        if (stat(buf, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        if (++found == 1) {
            snprintf(first, sizeof first, "%s", e->d_name);
            if (strlen(buf) < outsz) {
                strcpy(out, buf);
                fits = 1;
            }
        } else if (found == 2) {
            snprintf(out, outsz, "%s, %s", first, e->d_name);
        }
    }
    closedir(d);
    return found > 1 ? -1 : found == 1 && fits;
}

/* The model's identity without its tokenizer or other metadata: CRC-32 of
 * the entries general.architecture and ARCH.* (ARCH its value) exactly as
 * they are in the file (u64 key length, key, u32 type, value), in file
 * order.  0 without general.architecture. */
uint32_t ak_gguf_arch_crc32(const ak_gguf *g)
{
    const ak_gguf_kv *a = ak_gguf_get(g, "general.architecture");
    if (!a || a->type != AK_GGUF_STRING)
        return 0;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t k = 0; k < g->nkv; k++) {
        const ak_gguf_kv *kv = &g->kv[k];
        size_t kl = strlen(kv->key);
        if (!(kv == a || (kl > a->slen && !memcmp(kv->key, a->str, a->slen) &&
                          kv->key[a->slen] == '.')))
            continue;
        unsigned char b[16];
        uint64_t v = kl;
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)(v >> (8 * i));
        crc = crc32(crc, b, 8);
        crc = crc32(crc, (const Bytef *)kv->key, (uInt)kl);
        for (int i = 0; i < 4; i++)
            b[i] = (unsigned char)((uint32_t)kv->type >> (8 * i));
        crc = crc32(crc, b, 4);
        int w = 0;
        switch (kv->type) {
        case AK_GGUF_U8: case AK_GGUF_I8: case AK_GGUF_BOOL: w = 1; v = kv->u; break;
        case AK_GGUF_U16: case AK_GGUF_I16: w = 2; v = kv->u; break;
        case AK_GGUF_U32: case AK_GGUF_I32: w = 4; v = kv->u; break;
        case AK_GGUF_U64: case AK_GGUF_I64: w = 8; v = kv->u; break;
        case AK_GGUF_F32: {
            float f = (float)kv->f;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            w = 4, v = bits;
            break;
        }
        case AK_GGUF_F64: memcpy(&v, &kv->f, 8); w = 8; break;
        case AK_GGUF_STRING:
            for (int i = 0; i < 8; i++)
                b[i] = (unsigned char)((uint64_t)kv->slen >> (8 * i));
            crc = crc32(crc, b, 8);
            crc = crc32(crc, (const Bytef *)kv->str, (uInt)kv->slen);
            break;
        case AK_GGUF_ARRAY:
            for (int i = 0; i < 4; i++)
                b[i] = (unsigned char)((uint32_t)kv->atype >> (8 * i));
            for (int i = 0; i < 8; i++)
                b[4 + i] = (unsigned char)(kv->alen >> (8 * i));
            crc = crc32(crc, b, 12);
            for (size_t o = 0; o < kv->abytes;) {
                size_t n = kv->abytes - o > (1u << 30) ? (1u << 30) : kv->abytes - o;
                crc = crc32(crc, kv->adata + o, (uInt)n);
                o += n;
            }
            break;
        }
        if (w) {
            for (int i = 0; i < w; i++)
                b[i] = (unsigned char)(v >> (8 * i));
            crc = crc32(crc, b, (uInt)w);
        }
    }
    return (uint32_t)crc;
}
