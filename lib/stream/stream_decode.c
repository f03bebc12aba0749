/* stream_decode.c - one framed record of the tensor stream, decoded and
 * checked: its bytes into msgpack-c's objects, those into a header, a
 * document (its tensors inflated and checksummed) or an end record.
 */
#include "attnkit/stream.h"
#include "stream_internal.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ZLIB_MAX_RATIO 1032 /* deflate cannot expand data more than this */

/* ---- decoding a framed record ----
 * msgpack-c's unpacker keeps a fixed stack of 32 containers
 * (MSGPACK_EMBED_STACK_SIZE, compiled into libmsgpackc) and fails a deeper
 * record as if out of memory; the format allows AK_STREAM_MAX_DEPTH.  So
 * the record, framed and depth-checked by the reader's scan (stream_read.c),
 * is decoded here into msgpack-c's object types, with one allocation sized
 * by the scan's counts.  Strings and binaries point into the record's
 * bytes. */

typedef struct decoder {
    const unsigned char *p, *end;
    msgpack_object *elems;        /* array elements, handed out in order */
    msgpack_object_kv *pairs;     /* map pairs */
    size_t elems_left, pairs_left;
} decoder;

static uint64_t load_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* depth: containers around o.  Returns 0, or -1 if the bytes are not what
 * the scan said (they always are: a defence, not a path). */
static int decode_obj(decoder *d, msgpack_object *o, int depth)
{
    memset(o, 0, sizeof *o);
    if (d->p >= d->end)
        return -1;
    unsigned c = *d->p++;
    size_t avail = (size_t)(d->end - d->p);
    uint64_t n = 0;
    int w = 0;
    enum { SCALAR, STR, BIN, EXT, ARRAY, MAP } kind = SCALAR;
    if (c <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = c;
        return 0;
    }
    if (c >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int64_t)c - 256;
        return 0;
    }
    if (c <= 0x8f) {
        kind = MAP;
        n = c & 0x0f;
    } else if (c <= 0x9f) {
        kind = ARRAY;
        n = c & 0x0f;
    } else if (c <= 0xbf) {
        kind = STR;
        n = c & 0x1f;
    } else if (c == 0xc0) {
        o->type = MSGPACK_OBJECT_NIL;
        return 0;
    } else if (c == 0xc2 || c == 0xc3) {
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = c == 0xc3;
        return 0;
    } else if (c >= 0xc4 && c <= 0xc9) {          /* bin8..32, ext8..32 */
        kind = c <= 0xc6 ? BIN : EXT;
        w = 1 << (c <= 0xc6 ? c - 0xc4 : c - 0xc7);
    } else if (c == 0xca || c == 0xcb) {          /* float32, float64 */
        w = c == 0xca ? 4 : 8;
        if (avail < (size_t)w)
            return -1;
        uint64_t u = load_be(d->p, w);
        d->p += w;
        if (w == 4) {
            uint32_t u32 = (uint32_t)u;
            float f;
            memcpy(&f, &u32, 4);
            o->type = MSGPACK_OBJECT_FLOAT32;
            o->via.f64 = f;
        } else {
            memcpy(&o->via.f64, &u, 8);
            o->type = MSGPACK_OBJECT_FLOAT64;
        }
        return 0;
    } else if (c >= 0xcc && c <= 0xd3) {          /* uint8..64, int8..64 */
        w = 1 << ((c - 0xcc) & 3);
        if (avail < (size_t)w)
            return -1;
        uint64_t u = load_be(d->p, w);
        d->p += w;
        if (c >= 0xd0 && w < 8 && (u >> (8 * w - 1)))
            u |= ~0ull << (8 * w);                /* sign-extend */
        if (c >= 0xd0 && (int64_t)u < 0) {
            o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            o->via.i64 = (int64_t)u;
        } else {
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = u;
        }
        return 0;
    } else if (c >= 0xd4 && c <= 0xd8) {          /* fixext 1..16 */
        kind = EXT;
        n = 1u << (c - 0xd4);
    } else if (c >= 0xd9 && c <= 0xdb) {
        kind = STR;
        w = 1 << (c - 0xd9);
    } else if (c == 0xdc || c == 0xdd) {
        kind = ARRAY;
        w = c == 0xdc ? 2 : 4;
    } else if (c == 0xde || c == 0xdf) {
        kind = MAP;
        w = c == 0xde ? 2 : 4;
    } else
        return -1;
    if (w) {
        if (avail < (size_t)w)
            return -1;
        n = load_be(d->p, w);
        d->p += w;
        avail -= (size_t)w;
    }
    switch (kind) {
    case STR:
    case BIN:
        if (n > avail)
            return -1;
        o->type = kind == STR ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
        o->via.str.size = (uint32_t)n;
        o->via.str.ptr = (const char *)d->p;
        d->p += n;
        return 0;
    case EXT:
        if (n >= avail)
            return -1;
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)d->p[0];
        o->via.ext.size = (uint32_t)n;
        o->via.ext.ptr = (const char *)d->p + 1;
        d->p += n + 1;
        return 0;
    case ARRAY:
        if (depth >= AK_STREAM_MAX_DEPTH || n > d->elems_left)
            return -1;
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = n ? d->elems : NULL;
        if (n)
            d->elems += n;
        d->elems_left -= n;
        for (uint64_t i = 0; i < n; i++)
            if (decode_obj(d, &o->via.array.ptr[i], depth + 1))
                return -1;
        return 0;
    case MAP:
        if (depth >= AK_STREAM_MAX_DEPTH || n > d->pairs_left)
            return -1;
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = n ? d->pairs : NULL;
        if (n)
            d->pairs += n;
        d->pairs_left -= n;
        for (uint64_t i = 0; i < n; i++)
            if (decode_obj(d, &o->via.map.ptr[i].key, depth + 1) ||
                decode_obj(d, &o->via.map.ptr[i].val, depth + 1))
                return -1;
        return 0;
    default:
        return -1;
    }
}

/* The first string (value or map key) in o that is not UTF-8: returns 1
 * with path[0..*len) the keys and indexes on the way to it and *is_key set
 * when it is a key; 0 when there is none. */
typedef struct path_step {
    const msgpack_object *key;    /* map value: its key; NULL: array element */
    uint32_t index;
} path_step;

static int find_bad_string(const msgpack_object *o, path_step *path, int depth, int *len,
                           int *is_key)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        if (ak_utf8_valid(o->via.str.ptr, o->via.str.size))
            return 0;
        *len = depth;
        *is_key = 0;
        return 1;
    }
    if (depth >= AK_STREAM_MAX_DEPTH)
        return 0; /* cannot happen: decode_obj stops deeper records */
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            path[depth] = (path_step){NULL, i};
            if (find_bad_string(&o->via.array.ptr[i], path, depth + 1, len, is_key))
                return 1;
        }
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (find_bad_string(&kv->key, path, depth, len, is_key)) {
                *is_key = 1;
                return 1;
            }
            path[depth] = (path_step){&kv->key, i};
            if (find_bad_string(&kv->val, path, depth + 1, len, is_key))
                return 1;
        }
    return 0;
}

/* "meta.source", "tensors[2].name", "history[0].args[1]": the place
 * find_bad_string found, for a message. */
static void format_path(char *buf, size_t cap, const path_step *path, int len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < len && o + 1 < cap; i++) {
        const msgpack_object *k = path[i].key;
        int n;
        if (!k)
            n = snprintf(buf + o, cap - o, "[%u]", path[i].index);
        else if (k->type == MSGPACK_OBJECT_STR && !memchr(k->via.str.ptr, 0, k->via.str.size))
            n = snprintf(buf + o, cap - o, "%s%.*s", i ? "." : "",
                         (int)(k->via.str.size > 40 ? 40 : k->via.str.size), k->via.str.ptr);
        else
            n = snprintf(buf + o, cap - o, "%s<key %u>", i ? "." : "", path[i].index);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* ---- converting msgpack objects ---- */

static const char *obj_kind(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    default: return "an extension type";
    }
}

static int obj_is_str(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static int obj_int(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX)
            return -1;
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    return -1;
}

/* A string key or value as a C string; embedded NUL is refused. */
static char *obj_cstr(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, 0, o->via.str.size))
        return NULL;
    return st_memdup0(o->via.str.ptr, o->via.str.size);
}

static int pack_to_raw(const msgpack_object *o, uint8_t **raw, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_object(&pk, *o);
    if (rc == 0) {
        *raw = (uint8_t *)sb.data;
        *len = sb.size;
        return 0;
    }
    msgpack_sbuffer_destroy(&sb);
    return AK_ENOMEM;
}

static int meta_put_obj(ak_metamap *m, const char *key, const msgpack_object *v)
{
    ak_meta *it = st_meta_slot(m, key);
    if (!it)
        return AK_ENOMEM;
    switch (v->type) {
    case MSGPACK_OBJECT_NIL: it->kind = AK_META_NIL; return 0;
    case MSGPACK_OBJECT_BOOLEAN: it->kind = AK_META_BOOL; it->i = v->via.boolean; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        if (obj_int(v, &it->i) == 0) {
            it->kind = AK_META_INT;
            return 0;
        }
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: it->kind = AK_META_FLOAT; it->f = v->via.f64; return 0;
    case MSGPACK_OBJECT_STR:
        if (!memchr(v->via.str.ptr, 0, v->via.str.size)) {
            it->kind = AK_META_STR;
            it->slen = v->via.str.size;
            return (it->s = st_memdup0(v->via.str.ptr, v->via.str.size)) ? 0 : AK_ENOMEM;
        }
        break;
    default:
        break;
    }
    it->kind = AK_META_RAW;
    return pack_to_raw(v, &it->raw, &it->rawlen);
}

static int map_to_meta(const msgpack_object *o, ak_metamap *m, const char *what, ak_err *err)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return ak_fail(err, AK_EDATA, "%s is %s, not a map", what, obj_kind(o));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        char *k = obj_cstr(&o->via.map.ptr[i].key);
        if (!k)
            return ak_fail(err, AK_EDATA, "%s has a key that is not a string", what);
        int rc = meta_put_obj(m, k, &o->via.map.ptr[i].val);
        free(k);
        if (rc)
            return ak_fail(err, rc, "out of memory");
    }
    return 0;
}

/* Inflates a zlib stream into exactly outlen bytes.  Returns NULL on
 * success or why not.  Never writes past out[outlen). */
static const char *inflate_exact(const void *in, size_t inlen, void *out, size_t outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK)
        return "out of memory in zlib";
    const unsigned char *ip = in;
    unsigned char *op = out;
    size_t in_left = inlen, out_left = outlen;
    int zr;
    do { /* avail_in/out are 32-bit: feed large buffers in pieces */
        uInt ic = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uInt oc = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        zs.next_in = (Bytef *)ip;
        zs.avail_in = ic;
        zs.next_out = op;
        zs.avail_out = oc;
        zr = inflate(&zs, Z_NO_FLUSH);
        ip += ic - zs.avail_in;
        in_left -= ic - zs.avail_in;
        op += oc - zs.avail_out;
        out_left -= oc - zs.avail_out;
    } while (zr == Z_OK && (in_left || zs.avail_in) && out_left);
    const char *why = NULL;
    if (zr == Z_STREAM_END)
        why = out_left ? "inflates short of raw_bytes" : NULL;
    else if (zr == Z_OK && out_left == 0) {
        /* Output is full but the stream goes on: one more byte tells. */
        unsigned char extra;
        zs.next_out = &extra;
        zs.avail_out = 1;
        zr = inflate(&zs, Z_NO_FLUSH);
        why = zs.avail_out == 0 ? "inflates past raw_bytes" : "is corrupt or truncated";
    } else
        why = "is corrupt or truncated";
    inflateEnd(&zs);
    return why;
}

/* Finds the known keys of a record or tensor map: keys[i] names the field
 * whose value lands in vals[i].  A known field given twice is an error (two
 * readers could take different ones); unknown keys are left to the caller. */
static int known_fields(const msgpack_object *o, const char *const *keys, int nkeys,
                        const msgpack_object **vals, const char *what, ak_err *err)
{
    for (int j = 0; j < nkeys; j++)
        vals[j] = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++)
        for (int j = 0; j < nkeys; j++)
            if (obj_is_str(&o->via.map.ptr[i].key, keys[j])) {
                if (vals[j])
                    return ak_fail(err, AK_EDATA, "%s has two '%s' fields", what, keys[j]);
                vals[j] = &o->via.map.ptr[i].val;
            }
    return 0;
}

static int is_known(const msgpack_object *k, const char *const *keys, int nkeys)
{
    for (int j = 0; j < nkeys; j++)
        if (obj_is_str(k, keys[j]))
            return 1;
    return 0;
}

/* A string field as a C string, or NULL with err saying why not. */
static char *field_cstr(const msgpack_object *o, const char *what, ak_err *err)
{
    if (o->type != MSGPACK_OBJECT_STR)
        ak_fail(err, AK_EDATA, "%s is %s, not a string", what, obj_kind(o));
    else if (memchr(o->via.str.ptr, 0, o->via.str.size))
        ak_fail(err, AK_EDATA, "%s contains a NUL byte", what);
    else {
        char *s = st_memdup0(o->via.str.ptr, o->via.str.size);
        if (!s)
            ak_fail(err, AK_ENOMEM, "out of memory");
        return s;
    }
    return NULL;
}

enum { T_NAME, T_DTYPE, T_SHAPE, T_DATA, T_COMPRESSION, T_RAW_BYTES, T_CRC32, T_NKEYS };
static const char *const tensor_keys[T_NKEYS] = {"name", "dtype", "shape", "data",
                                                 "compression", "raw_bytes", "crc32"};

static int parse_tensor(const msgpack_object *o, size_t max_bytes, ak_tensor **out, ak_err *err)
{
    const msgpack_object *f[T_NKEYS];
    if (o->type != MSGPACK_OBJECT_MAP)
        return ak_fail(err, AK_EDATA, "tensor is %s, not a map", obj_kind(o));
    int rc = known_fields(o, tensor_keys, T_NKEYS, f, "tensor", err);
    if (rc)
        return rc;
    const msgpack_object *dtype = f[T_DTYPE], *shape = f[T_SHAPE], *data = f[T_DATA];
    const msgpack_object *comp = f[T_COMPRESSION], *raw = f[T_RAW_BYTES], *crc = f[T_CRC32];
    char *nm = f[T_NAME] ? obj_cstr(f[T_NAME]) : NULL;
    if (!nm || !*nm) {
        free(nm);
        return ak_fail(err, AK_EDATA, "tensor without a valid name");
    }
    rc = AK_EDATA;
    ak_dtype dt;
    int64_t dims[AK_MAX_DIMS];
    int ndim = 0;
    if (!dtype || dtype->type != MSGPACK_OBJECT_STR ||
        ak_dtype_from_name(dtype->via.str.ptr, dtype->via.str.size, &dt)) {
        ak_fail(err, rc, "tensor '%s': unknown or missing dtype", nm);
        goto out;
    }
    if (!shape || shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size > AK_MAX_DIMS) {
        ak_fail(err, rc, "tensor '%s': shape must be an array of at most %d dimensions", nm,
                AK_MAX_DIMS);
        goto out;
    }
    ndim = (int)shape->via.array.size;
    for (int i = 0; i < ndim; i++)
        if (obj_int(&shape->via.array.ptr[i], &dims[i]) || dims[i] < 0) {
            ak_fail(err, rc, "tensor '%s': dimension %d is not a non-negative integer", nm, i);
            goto out;
        }
    size_t nbytes;
    if (ak_shape_bytes(dt, ndim, dims, &nbytes, err)) {
        ak_wrap(err, "tensor '%s'", nm);
        goto out;
    }
    if (!data || data->type != MSGPACK_OBJECT_BIN) {
        ak_fail(err, rc, "tensor '%s': data is missing or not binary", nm);
        goto out;
    }
    if (crc && (crc->type != MSGPACK_OBJECT_POSITIVE_INTEGER || crc->via.u64 > 0xffffffffu)) {
        ak_fail(err, rc, "tensor '%s': crc32 is %s, not an integer in [0, 2^32)", nm,
                crc->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? "too large" :
                crc->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? "negative" : obj_kind(crc));
        goto out;
    }
    int zlib = 0;
    if (comp && comp->type != MSGPACK_OBJECT_NIL) {
        if (!obj_is_str(comp, "zlib")) {
            ak_fail(err, rc, "tensor '%s': unknown compression", nm);
            goto out;
        }
        zlib = 1;
    }
    size_t dlen = data->via.bin.size;
    if (zlib) {
        int64_t rb;
        if (!raw || obj_int(raw, &rb) || rb < 0 || (uint64_t)rb != nbytes) {
            ak_fail(err, rc, "tensor '%s': raw_bytes missing or not the shape's %zu bytes", nm,
                    nbytes);
            goto out;
        }
        if (nbytes / ZLIB_MAX_RATIO > dlen + 64 || nbytes > max_bytes) {
            ak_fail(err, rc, "tensor '%s': %zu compressed bytes cannot hold %zu bytes", nm, dlen,
                    nbytes);
            goto out;
        }
    } else if (dlen != nbytes) {
        ak_fail(err, rc, "tensor '%s': %zu data bytes, shape needs %zu", nm, dlen, nbytes);
        goto out;
    }
    ak_tensor *t = ak_tensor_new(nm, dt, ndim, dims, err);
    if (!t) {
        rc = err ? err->code : AK_ENOMEM;
        goto out;
    }
    if (!zlib) {
        if (nbytes)
            memcpy(t->data, data->via.bin.ptr, nbytes);
    } else {
        const char *why = inflate_exact(data->via.bin.ptr, dlen, t->data, nbytes);
        if (why) {
            ak_tensor_free(t);
            ak_fail(err, why[0] == 'o' ? AK_ENOMEM : rc, "tensor '%s': zlib data %s", nm, why);
            goto out;
        }
    }
    /* The CRC covers the tensor's bytes as they are in memory: after
     * inflating, so it checks the values, whatever the compression. */
    if (crc) {
        uint32_t have = st_crc32(t->data, nbytes);
        if (have != (uint32_t)crc->via.u64) {
            ak_tensor_free(t);
            ak_fail(err, rc, "tensor '%s': CRC-32 mismatch (crc32 says 0x%08x, data has "
                    "0x%08x): the data is corrupt", nm, (unsigned)crc->via.u64, (unsigned)have);
            goto out;
        }
    }
    *out = t;
    rc = 0;
out:
    free(nm);
    return rc;
}

/* One history entry: {"program": str, "version": str, "args": [str...]};
 * program is required, version and args optional, other keys ignored. */
static int parse_stage(ak_header *h, const msgpack_object *s, uint32_t j, ak_err *err)
{
    static const char *const keys[] = {"program", "version", "args"};
    const msgpack_object *f[3];
    char what[64];
    snprintf(what, sizeof what, "header: history entry %u", j);
    if (s->type != MSGPACK_OBJECT_MAP)
        return ak_fail(err, AK_EDATA, "%s is %s, not a map", what, obj_kind(s));
    int rc = known_fields(s, keys, 3, f, what, err);
    if (rc)
        return rc;
    if (!f[0])
        return ak_fail(err, AK_EDATA, "%s has no program", what);
    if (f[2] && f[2]->type != MSGPACK_OBJECT_ARRAY)
        return ak_fail(err, AK_EDATA, "%s: args is %s, not an array", what, obj_kind(f[2]));
    ak_stage st = {0};
    uint32_t na = f[2] ? f[2]->via.array.size : 0;
    char field[96];
    snprintf(field, sizeof field, "%s: program", what);
    if (!(st.program = field_cstr(f[0], field, err)))
        return err ? err->code : AK_EDATA;
    snprintf(field, sizeof field, "%s: version", what);
    if (f[1] ? !(st.version = field_cstr(f[1], field, err)) : !(st.version = strdup("?"))) {
        free(st.program);
        return f[1] && err ? err->code : ak_fail(err, AK_ENOMEM, "out of memory");
    }
    if (!(st.args = calloc(na ? na : 1, sizeof *st.args)))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
    for (uint32_t q = 0; q < na && !rc; q++, st.nargs++) {
        snprintf(field, sizeof field, "%s: argument %u", what, q);
        if (!(st.args[q] = field_cstr(&f[2]->via.array.ptr[q], field, err)))
            rc = err ? err->code : AK_EDATA;
    }
    ak_stage *nh = rc ? NULL : realloc(h->history, (h->nhistory + 1) * sizeof *nh);
    if (!nh) {
        st_stage_free(&st);
        return rc ? rc : ak_fail(err, AK_ENOMEM, "out of memory");
    }
    h->history = nh;
    h->history[h->nhistory++] = st;
    return 0;
}

enum { H_TYPE, H_FORMAT, H_VERSION, H_MODEL, H_HISTORY, H_NKEYS };
static const char *const header_keys[H_NKEYS] = {"type", "format", "version", "model",
                                                 "history"};

static int parse_header(const msgpack_object *o, ak_header **out, ak_err *err)
{
    const msgpack_object *f[H_NKEYS];
    int rc = known_fields(o, header_keys, H_NKEYS, f, "header", err);
    if (rc)
        return rc;
    const msgpack_object *fmt = f[H_FORMAT], *ver = f[H_VERSION], *model = f[H_MODEL],
                         *hist = f[H_HISTORY];
    if (!fmt || !ver)
        return ak_fail(err, AK_EDATA, "header without %s", fmt ? "version" : "format");
    if (fmt->type != MSGPACK_OBJECT_STR)
        return ak_fail(err, AK_EDATA, "header: format is %s, not the string '%s'",
                       obj_kind(fmt), AK_STREAM_FORMAT);
    if (!obj_is_str(fmt, AK_STREAM_FORMAT))
        return ak_fail(err, AK_EDATA, "header: format is not '%s'", AK_STREAM_FORMAT);
    int64_t ma, mi;
    if (ver->type != MSGPACK_OBJECT_ARRAY || ver->via.array.size < 2 ||
        obj_int(&ver->via.array.ptr[0], &ma) || obj_int(&ver->via.array.ptr[1], &mi) ||
        ma < 0 || mi < 0 || ma > 1000000 || mi > 1000000)
        return ak_fail(err, AK_EDATA, "header: version is %s, not [major, minor] "
                       "(two non-negative integers)", ver->type == MSGPACK_OBJECT_ARRAY ?
                       "a malformed array" : obj_kind(ver));
    if (ma != AK_STREAM_MAJOR)
        return ak_fail(err, AK_EDATA, "header: stream version %lld.%lld, this reader "
                       "supports %d.x", (long long)ma, (long long)mi, AK_STREAM_MAJOR);
    if (model && model->type != MSGPACK_OBJECT_MAP)
        return ak_fail(err, AK_EDATA, "header: model is %s, not a map", obj_kind(model));
    if (hist && hist->type != MSGPACK_OBJECT_ARRAY)
        return ak_fail(err, AK_EDATA, "header: history is %s, not an array", obj_kind(hist));
    ak_header *h = ak_header_new();
    if (!h)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    h->major = (int)ma;
    h->minor = (int)mi;
    if (model)
        rc = map_to_meta(model, &h->model, "header: model", err);
    for (uint32_t j = 0; hist && j < hist->via.array.size && !rc; j++)
        rc = parse_stage(h, &hist->via.array.ptr[j], j, err);
    for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (is_known(k, header_keys, H_NKEYS))
            continue;
        char *kk = obj_cstr(k);
        if (!kk)
            rc = ak_fail(err, AK_EDATA, "header has a key that is not a string");
        else if (meta_put_obj(&h->extra, kk, v))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
        free(kk);
    }
    if (rc) {
        ak_header_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

enum { D_TYPE, D_ID, D_META, D_TENSORS, D_NKEYS };
static const char *const doc_keys[D_NKEYS] = {"type", "id", "meta", "tensors"};

static int parse_doc(const msgpack_object *o, size_t max_bytes, ak_doc **out, ak_err *err)
{
    const msgpack_object *f[D_NKEYS];
    int rc = known_fields(o, doc_keys, D_NKEYS, f, "document", err);
    if (rc)
        return rc;
    if (!f[D_ID])
        return ak_fail(err, AK_EDATA, "document without an id");
    char *id = field_cstr(f[D_ID], "document id", err);
    if (!id)
        return err ? err->code : AK_EDATA;
    ak_doc *d = ak_doc_new(NULL);
    if (!d) {
        free(id);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    free(d->id);
    d->id = id;
    const msgpack_object *v = f[D_TENSORS];
    if (f[D_META])
        rc = map_to_meta(f[D_META], &d->meta, "document meta", err);
    if (!rc && v && v->type != MSGPACK_OBJECT_ARRAY)
        rc = ak_fail(err, AK_EDATA, "document tensors is %s, not an array", obj_kind(v));
    for (uint32_t j = 0; !rc && v && j < v->via.array.size; j++) {
        ak_tensor *t = NULL;
        rc = parse_tensor(&v->via.array.ptr[j], max_bytes, &t, err);
        if (rc)
            break;
        if (ak_doc_get(d, t->name)) {
            rc = ak_fail(err, AK_EDATA, "tensor '%s' appears twice", t->name);
            ak_tensor_free(t);
        } else {
            rc = ak_doc_put(d, t, err);
        }
    }
    /* the spec: `text` is UTF-8.  Checked once here, so that no reader of
     * it (regexes, tokenizers, the page) meets anything else. */
    const ak_tensor *tx = rc ? NULL : ak_doc_get(d, "text");
    if (tx && tx->dtype == AK_U8) {
        size_t ok = st_utf8_prefix(tx->data, tx->nbytes);
        if (ok < tx->nbytes)
            rc = ak_fail(err, AK_EDATA, "tensor 'text' is not valid UTF-8 (byte %zu)", ok);
    }
    for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (is_known(k, doc_keys, D_NKEYS))
            continue;
        char *kk = obj_cstr(k);
        if (!kk)
            rc = ak_fail(err, AK_EDATA, "document has a key that is not a string");
        else if (meta_put_obj(&d->extra, kk, &o->via.map.ptr[i].val))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
        free(kk);
    }
    if (rc) {
        ak_wrap(err, "document '%s'", d->id);
        ak_doc_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* The string value of key in map o, if it is a UTF-8 string without NUL. */
static const msgpack_object *map_str(const msgpack_object *o, const char *key)
{
    for (uint32_t i = 0; o->type == MSGPACK_OBJECT_MAP && i < o->via.map.size; i++) {
        const msgpack_object *v = &o->via.map.ptr[i].val;
        if (obj_is_str(&o->via.map.ptr[i].key, key) && v->type == MSGPACK_OBJECT_STR &&
            !memchr(v->via.str.ptr, 0, v->via.str.size) &&
            ak_utf8_valid(v->via.str.ptr, v->via.str.size))
            return v;
    }
    return NULL;
}

/* Refuses a record holding a string that is not UTF-8, naming where. */
static int check_strings(const msgpack_object *o, ak_err *err)
{
    path_step path[AK_STREAM_MAX_DEPTH];
    int len = 0, is_key = 0;
    if (!find_bad_string(o, path, 0, &len, &is_key))
        return 0;
    char where[200], who[160] = "";
    format_path(where, sizeof where, path, len);
    const msgpack_object *type = map_str(o, "type"), *id = map_str(o, "id");
    if (type && obj_is_str(type, "doc") && id)
        snprintf(who, sizeof who, "document '%.*s': ", (int)(id->via.str.size > 100 ? 100 :
                 id->via.str.size), id->via.str.ptr);
    else if (type && obj_is_str(type, "doc"))
        snprintf(who, sizeof who, "document ");
    else if (type && obj_is_str(type, "header"))
        snprintf(who, sizeof who, "header: ");
    else if (type && !obj_is_str(type, "end"))
        snprintf(who, sizeof who, "record of type '%.*s': ", (int)(type->via.str.size > 60 ? 60 :
                 type->via.str.size), type->via.str.ptr);
    if (is_key)
        return ak_fail(err, AK_EDATA, "%sa key %s%s is not valid UTF-8", who,
                       len ? "in " : "of the record", where);
    return ak_fail(err, AK_EDATA, "%s%s is not valid UTF-8", who, where);
}

int st_parse_record(const unsigned char *p, size_t len, uint64_t nelems, uint64_t npairs,
                    size_t max_record, ak_record *rec, ak_err *err)
{
    memset(rec, 0, sizeof *rec);
    msgpack_object root;
    decoder dec = {.p = p, .end = p + len, .elems_left = nelems, .pairs_left = npairs};
    msgpack_object *elems = NULL;
    msgpack_object_kv *pairs = NULL;
    int rc = 0;
    if (nelems > SIZE_MAX / sizeof *elems || npairs > SIZE_MAX / sizeof *pairs ||
        (nelems && !(elems = malloc(nelems * sizeof *elems))) ||
        (npairs && !(pairs = malloc(npairs * sizeof *pairs)))) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory decoding a record of %zu bytes", len);
        goto out;
    }
    dec.elems = elems;
    dec.pairs = pairs;
    if (decode_obj(&dec, &root, 0) || dec.p != dec.end) {
        rc = ak_fail(err, AK_EINTERNAL, "record framing and decoding disagree");
        goto out;
    }
    const msgpack_object *o = &root;
    const msgpack_object *type = NULL;
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (obj_is_str(&o->via.map.ptr[i].key, "type")) {
                if (type) {
                    rc = ak_fail(err, AK_EDATA, "record has two 'type' fields");
                    goto out;
                }
                type = &o->via.map.ptr[i].val;
            }
    if (!type || type->type != MSGPACK_OBJECT_STR) {
        rc = ak_fail(err, AK_EDATA, "record is not a map with a string 'type'");
        goto out;
    }
    if ((rc = check_strings(o, err)))
        goto out;
    if (obj_is_str(type, "header")) {
        rec->type = AK_REC_HEADER;
        rc = parse_header(o, &rec->header, err);
    } else if (obj_is_str(type, "doc")) {
        rec->type = AK_REC_DOC;
        rc = parse_doc(o, max_record, &rec->doc, err);
    } else if (obj_is_str(type, "end")) {
        rec->type = AK_REC_END;
        const msgpack_object *n = NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (obj_is_str(&o->via.map.ptr[i].key, "docs"))
                n = &o->via.map.ptr[i].val;
        if (!n || obj_int(n, &rec->end_docs) || rec->end_docs < 0)
            rc = ak_fail(err, AK_EDATA, "end record without a document count");
    } else {
        rec->type = AK_REC_OTHER;
        rec->raw = malloc(len);
        if (!rec->raw)
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
        else {
            memcpy(rec->raw, p, len);
            rec->rawlen = len;
        }
    }
out:
    free(elems);
    free(pairs);
    if (rc)
        ak_record_free(rec);
    return rc;
}
