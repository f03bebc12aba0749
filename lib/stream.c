/* stream.c - the attnkit tensor stream (formats/tensor-stream.md) on msgpack-c.
 *
 * Reading is done in two steps.  A small scanner walks the MessagePack
 * framing of the next record as bytes arrive, counting the objects still
 * owed, so it knows where the record ends without trusting any declared
 * length: a count or length that could not fit in the record-size limit is
 * refused before anything is allocated for it.  Only then does msgpack-c
 * unpack the complete record, whose every array and map is by then known to
 * be backed by bytes actually read.
 */
#include "stream.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_MAX_RECORD ((size_t)8 << 30)
#define ZLIB_MAX_RATIO 1032 /* deflate cannot expand data more than this */

/* ------------------------------------------------------------------ meta */

const ak_meta *ak_meta_get(const ak_metamap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].key, key) == 0)
            return &m->items[i];
    return NULL;
}

const char *ak_meta_str(const ak_metamap *m, const char *key)
{
    const ak_meta *v = ak_meta_get(m, key);
    return v && v->kind == AK_META_STR ? v->s : NULL;
}

int ak_meta_int(const ak_metamap *m, const char *key, int64_t *out)
{
    const ak_meta *v = ak_meta_get(m, key);
    if (!v || (v->kind != AK_META_INT && v->kind != AK_META_BOOL))
        return -1;
    *out = v->i;
    return 0;
}

static void meta_item_free(ak_meta *it)
{
    free(it->key);
    free(it->s);
    free(it->raw);
    memset(it, 0, sizeof *it);
}

/* Returns the item for key, emptied, creating it if needed. */
static ak_meta *meta_slot(ak_metamap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].key, key) == 0) {
            char *k = m->items[i].key;
            m->items[i].key = NULL;
            meta_item_free(&m->items[i]);
            m->items[i].key = k;
            return &m->items[i];
        }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 8;
        ak_meta *ni = realloc(m->items, ncap * sizeof *ni);
        if (!ni)
            return NULL;
        m->items = ni;
        m->cap = ncap;
    }
    ak_meta *it = &m->items[m->n];
    memset(it, 0, sizeof *it);
    if (!(it->key = strdup(key)))
        return NULL;
    m->n++;
    return it;
}

static char *memdup0(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static int meta_set_strn(ak_metamap *m, const char *key, const char *val, size_t len)
{
    ak_meta *it = meta_slot(m, key);
    if (!it)
        return AK_ENOMEM;
    it->kind = AK_META_STR;
    it->slen = len;
    return (it->s = memdup0(val, len)) ? 0 : AK_ENOMEM;
}

int ak_meta_set_str(ak_metamap *m, const char *key, const char *val)
{
    return meta_set_strn(m, key, val, strlen(val));
}

int ak_meta_set_int(ak_metamap *m, const char *key, int64_t val)
{
    ak_meta *it = meta_slot(m, key);
    if (!it)
        return AK_ENOMEM;
    it->kind = AK_META_INT;
    it->i = val;
    return 0;
}

int ak_meta_set_float(ak_metamap *m, const char *key, double val)
{
    ak_meta *it = meta_slot(m, key);
    if (!it)
        return AK_ENOMEM;
    it->kind = AK_META_FLOAT;
    it->f = val;
    return 0;
}

int ak_meta_del(ak_metamap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].key, key) == 0) {
            meta_item_free(&m->items[i]);
            memmove(&m->items[i], &m->items[i + 1], (m->n - i - 1) * sizeof *m->items);
            m->n--;
            return 1;
        }
    return 0;
}

void ak_meta_clear(ak_metamap *m)
{
    for (size_t i = 0; i < m->n; i++)
        meta_item_free(&m->items[i]);
    free(m->items);
    memset(m, 0, sizeof *m);
}

/* -------------------------------------------------------- header and doc */

ak_header *ak_header_new(void)
{
    ak_header *h = calloc(1, sizeof *h);
    if (h) {
        h->major = AK_STREAM_MAJOR;
        h->minor = AK_STREAM_MINOR;
    }
    return h;
}

static void stage_free(ak_stage *s)
{
    free(s->program);
    free(s->version);
    for (size_t i = 0; i < s->nargs; i++)
        free(s->args[i]);
    free(s->args);
}

void ak_header_free(ak_header *h)
{
    if (!h)
        return;
    ak_meta_clear(&h->model);
    ak_meta_clear(&h->extra);
    for (size_t i = 0; i < h->nhistory; i++)
        stage_free(&h->history[i]);
    free(h->history);
    free(h);
}

int ak_header_add_stage(ak_header *h, const char *program, int argc, char *const argv[])
{
    ak_stage *nh = realloc(h->history, (h->nhistory + 1) * sizeof *nh);
    if (!nh)
        return AK_ENOMEM;
    h->history = nh;
    ak_stage *s = &h->history[h->nhistory];
    memset(s, 0, sizeof *s);
    s->program = strdup(program);
    s->version = strdup(AK_VERSION);
    s->args = calloc(argc > 0 ? (size_t)argc : 1, sizeof *s->args);
    int ok = s->program && s->version && s->args;
    for (int i = 0; ok && i < argc; i++, s->nargs++)
        ok = (s->args[i] = strdup(argv[i])) != NULL;
    h->nhistory++;
    return ok ? 0 : AK_ENOMEM;
}

ak_doc *ak_doc_new(const char *id)
{
    ak_doc *d = calloc(1, sizeof *d);
    if (d && !(d->id = strdup(id ? id : ""))) {
        free(d);
        d = NULL;
    }
    return d;
}

void ak_doc_free(ak_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ntensors; i++)
        ak_tensor_free(d->tensors[i]);
    free(d->tensors);
    ak_meta_clear(&d->meta);
    ak_meta_clear(&d->extra);
    free(d->id);
    free(d);
}

static ssize_t doc_index(const ak_doc *d, const char *name)
{
    for (size_t i = 0; i < d->ntensors; i++)
        if (strcmp(d->tensors[i]->name, name) == 0)
            return (ssize_t)i;
    return -1;
}

ak_tensor *ak_doc_get(const ak_doc *d, const char *name)
{
    ssize_t i = doc_index(d, name);
    return i < 0 ? NULL : d->tensors[i];
}

int ak_doc_put(ak_doc *d, ak_tensor *t, ak_err *err)
{
    ssize_t i = doc_index(d, t->name);
    if (i >= 0) {
        ak_tensor_free(d->tensors[i]);
        d->tensors[i] = t;
        return 0;
    }
    if (d->ntensors == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        ak_tensor **nt = realloc(d->tensors, ncap * sizeof *nt);
        if (!nt) {
            ak_tensor_free(t);
            return ak_fail(err, AK_ENOMEM, "out of memory");
        }
        d->tensors = nt;
        d->cap = ncap;
    }
    d->tensors[d->ntensors++] = t;
    return 0;
}

ak_tensor *ak_doc_take(ak_doc *d, const char *name)
{
    ssize_t i = doc_index(d, name);
    if (i < 0)
        return NULL;
    ak_tensor *t = d->tensors[i];
    memmove(&d->tensors[i], &d->tensors[i + 1], (d->ntensors - (size_t)i - 1) * sizeof *d->tensors);
    d->ntensors--;
    return t;
}

int ak_doc_drop(ak_doc *d, const char *name)
{
    ak_tensor *t = ak_doc_take(d, name);
    ak_tensor_free(t);
    return t != NULL;
}

ak_tensor *ak_doc_need(const ak_doc *d, const char *name, ak_dtype t, int ndim, ak_err *err)
{
    ak_tensor *x = ak_doc_get(d, name);
    if (!x)
        ak_fail(err, AK_EDATA, "document '%s' has no tensor '%s'", d->id, name);
    else if (x->dtype != t)
        ak_fail(err, AK_EDATA, "document '%s': tensor '%s' is %s, expected %s", d->id, name,
                ak_dtype_name(x->dtype), ak_dtype_name(t));
    else if (ndim >= 0 && x->ndim != ndim)
        ak_fail(err, AK_EDATA, "document '%s': tensor '%s' has %d dimensions, expected %d",
                d->id, name, x->ndim, ndim);
    else
        return x;
    return NULL;
}

void ak_record_free(ak_record *rec)
{
    ak_header_free(rec->header);
    ak_doc_free(rec->doc);
    free(rec->raw);
    memset(rec, 0, sizeof *rec);
}

/* --------------------------------------------------------------- reader */

struct ak_reader {
    int fd;
    int own_fd;
    char *name;
    unsigned char *buf;
    size_t cap, len;      /* buf[0..len) holds unconsumed bytes */
    size_t max_record;
    int eof;
    /* framing scan of the record at buf[0], resumable as bytes arrive */
    size_t scan_pos;
    uint64_t scan_need;   /* objects still owed */
    /* grammar */
    uint64_t offset;      /* stream byte offset of buf[0] */
    uint64_t nrecords;
    int in_stream;
    int64_t ndocs;
};

int ak_reader_open_fd(ak_reader **rp, int fd, const char *name, ak_err *err)
{
    ak_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    r->fd = fd;
    r->max_record = DEFAULT_MAX_RECORD;
    const char *env = getenv("ATTNKIT_MAX_RECORD");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == 0 && v >= 16)
            r->max_record = (size_t)v;
    }
    r->scan_need = 1;
    *rp = r;
    return 0;
}

int ak_reader_open_path(ak_reader **rp, const char *path, ak_err *err)
{
    if (strcmp(path, "-") == 0)
        return ak_reader_open_fd(rp, 0, "<stdin>", err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ak_fail(err, AK_ENOINPUT, "%s: %s", path, strerror(errno));
    int rc = ak_reader_open_fd(rp, fd, path, err);
    if (rc) {
        close(fd);
        return rc;
    }
    (*rp)->own_fd = 1;
    return 0;
}

void ak_reader_close(ak_reader *r)
{
    if (!r)
        return;
    if (r->own_fd)
        close(r->fd);
    free(r->buf);
    free(r->name);
    free(r);
}

void ak_reader_set_limit(ak_reader *r, size_t max_record_bytes)
{
    r->max_record = max_record_bytes < 16 ? 16 : max_record_bytes;
}

/* Advances the framing scan over buf[scan_pos..len).  Returns 1 when the
 * record is complete (its length is scan_pos), 0 when more bytes are
 * needed, or an error. */
static int scan_record(ak_reader *r, ak_err *err)
{
    const unsigned char *b = r->buf;
    size_t p = r->scan_pos;
    while (r->scan_need > 0) {
        if (p >= r->len)
            break;
        unsigned c = b[p];
        size_t hdr = 1;          /* bytes of this object's header */
        uint64_t payload = 0;    /* bytes that follow the header */
        uint64_t children = 0;   /* objects that follow */
        size_t lenbytes = 0;     /* width of a length field, 0 for none */
        int ext = 0;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        } else if (c >= 0x80 && c <= 0x8f) {
            children = 2ull * (c & 0x0f);
        } else if (c >= 0x90 && c <= 0x9f) {
            children = c & 0x0f;
        } else if (c >= 0xa0 && c <= 0xbf) {
            payload = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4: case 0xd9: lenbytes = 1; break;             /* bin8 str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;             /* bin16 str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;             /* bin32 str32 */
            case 0xc7: lenbytes = 1; ext = 1; break;               /* ext8 */
            case 0xc8: lenbytes = 2; ext = 1; break;
            case 0xc9: lenbytes = 4; ext = 1; break;
            case 0xca: payload = 4; break;
            case 0xcb: payload = 8; break;
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xce: case 0xd2: payload = 4; break;
            case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;                         /* fixext */
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xdc: case 0xde: lenbytes = 2; break;             /* array16 map16 */
            case 0xdd: case 0xdf: lenbytes = 4; break;             /* array32 map32 */
            default:
                return ak_fail(err, AK_EDATA, "%s: byte %llu: 0x%02x is not MessagePack",
                               r->name, (unsigned long long)(r->offset + p), c);
            }
        }
        if (lenbytes) {
            if (r->len - p < 1 + lenbytes)
                break;
            uint64_t n = 0;
            for (size_t i = 0; i < lenbytes; i++)
                n = (n << 8) | b[p + 1 + i];
            hdr = 1 + lenbytes;
            if (c == 0xdc || c == 0xdd)
                children = n;
            else if (c == 0xde || c == 0xdf)
                children = 2 * n;
            else
                payload = n + (uint64_t)ext; /* ext: one type byte */
        }
        /* Every owed object takes at least one byte, every payload its
         * length: a record that cannot fit in the limit is refused now. */
        uint64_t room = r->max_record - (p < r->max_record ? p : r->max_record);
        if (payload > room || hdr + payload > room ||
            children > room || r->scan_need - 1 + children > room)
            return ak_fail(err, AK_EDATA,
                           "%s: byte %llu: record larger than the %zu-byte limit "
                           "(declared length or count %llu)",
                           r->name, (unsigned long long)(r->offset + p), r->max_record,
                           (unsigned long long)(payload > children ? payload : children));
        if (r->len - p < hdr + payload)
            break;
        p += hdr + (size_t)payload;
        r->scan_need = r->scan_need - 1 + children;
    }
    r->scan_pos = p;
    return r->scan_need == 0;
}

static int fill(ak_reader *r, ak_err *err)
{
    if (r->len == r->cap) {
        if (r->cap >= r->max_record + 1)
            return ak_fail(err, AK_EDATA, "%s: record larger than the %zu-byte limit", r->name,
                           r->max_record);
        size_t ncap = r->cap ? r->cap * 2 : 65536;
        if (ncap > r->max_record + 1)
            ncap = r->max_record + 1;
        unsigned char *nb = realloc(r->buf, ncap);
        if (!nb)
            return ak_fail(err, AK_ENOMEM, "%s: out of memory reading a %zu-byte record",
                           r->name, ncap);
        r->buf = nb;
        r->cap = ncap;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ak_fail(err, AK_EIO, "%s: %s", r->name, strerror(errno));
        if (n == 0)
            r->eof = 1;
        r->len += (size_t)n;
        return 0;
    }
}

/* ---- converting msgpack objects ---- */

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
    return memdup0(o->via.str.ptr, o->via.str.size);
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
    ak_meta *it = meta_slot(m, key);
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
            return (it->s = memdup0(v->via.str.ptr, v->via.str.size)) ? 0 : AK_ENOMEM;
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
        return ak_fail(err, AK_EDATA, "%s is not a map", what);
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

static int parse_tensor(const msgpack_object *o, size_t max_bytes, ak_tensor **out, ak_err *err)
{
    const msgpack_object *name = NULL, *dtype = NULL, *shape = NULL, *data = NULL;
    const msgpack_object *comp = NULL, *raw = NULL;
    if (o->type != MSGPACK_OBJECT_MAP)
        return ak_fail(err, AK_EDATA, "tensor is not a map");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (obj_is_str(k, "name")) name = v;
        else if (obj_is_str(k, "dtype")) dtype = v;
        else if (obj_is_str(k, "shape")) shape = v;
        else if (obj_is_str(k, "data")) data = v;
        else if (obj_is_str(k, "compression")) comp = v;
        else if (obj_is_str(k, "raw_bytes")) raw = v;
    }
    char *nm = name ? obj_cstr(name) : NULL;
    if (!nm || !*nm) {
        free(nm);
        return ak_fail(err, AK_EDATA, "tensor without a valid name");
    }
    int rc = AK_EDATA;
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
    *out = t;
    rc = 0;
out:
    free(nm);
    return rc;
}

static int parse_header(const msgpack_object *o, ak_header **out, ak_err *err)
{
    ak_header *h = ak_header_new();
    if (!h)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int rc = 0, have_format = 0, have_version = 0;
    for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (obj_is_str(k, "type"))
            continue;
        if (obj_is_str(k, "format")) {
            if (!obj_is_str(v, AK_STREAM_FORMAT))
                rc = ak_fail(err, AK_EDATA, "header: format is not '%s'", AK_STREAM_FORMAT);
            have_format = 1;
        } else if (obj_is_str(k, "version")) {
            int64_t ma, mi;
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 2 ||
                obj_int(&v->via.array.ptr[0], &ma) || obj_int(&v->via.array.ptr[1], &mi) ||
                ma < 0 || mi < 0 || ma > 1000000 || mi > 1000000)
                rc = ak_fail(err, AK_EDATA, "header: version is not [major, minor]");
            else if (ma != AK_STREAM_MAJOR)
                rc = ak_fail(err, AK_EDATA, "header: stream version %lld.%lld, this reader "
                             "supports %d.x", (long long)ma, (long long)mi, AK_STREAM_MAJOR);
            else {
                h->major = (int)ma;
                h->minor = (int)mi;
            }
            have_version = 1;
        } else if (obj_is_str(k, "model")) {
            rc = map_to_meta(v, &h->model, "header: model", err);
        } else if (obj_is_str(k, "history")) {
            if (v->type != MSGPACK_OBJECT_ARRAY) {
                rc = ak_fail(err, AK_EDATA, "header: history is not an array");
                break;
            }
            for (uint32_t j = 0; j < v->via.array.size && !rc; j++) {
                const msgpack_object *s = &v->via.array.ptr[j];
                const msgpack_object *prog = NULL, *ver = NULL, *args = NULL;
                if (s->type == MSGPACK_OBJECT_MAP)
                    for (uint32_t q = 0; q < s->via.map.size; q++) {
                        const msgpack_object *sk = &s->via.map.ptr[q].key;
                        if (obj_is_str(sk, "program")) prog = &s->via.map.ptr[q].val;
                        else if (obj_is_str(sk, "version")) ver = &s->via.map.ptr[q].val;
                        else if (obj_is_str(sk, "args")) args = &s->via.map.ptr[q].val;
                    }
                char *p = prog ? obj_cstr(prog) : NULL;
                if (!p || (args && args->type != MSGPACK_OBJECT_ARRAY)) {
                    free(p);
                    rc = ak_fail(err, AK_EDATA, "header: history entry %u is malformed", j);
                    break;
                }
                uint32_t na = args ? args->via.array.size : 0;
                char **av = calloc(na ? na : 1, sizeof *av);
                if (!av) {
                    free(p);
                    rc = ak_fail(err, AK_ENOMEM, "out of memory");
                    break;
                }
                for (uint32_t q = 0; q < na && !rc; q++)
                    if (!(av[q] = obj_cstr(&args->via.array.ptr[q])))
                        rc = ak_fail(err, AK_EDATA, "header: history entry %u: argument %u is "
                                     "not a string", j, q);
                if (!rc)
                    rc = ak_header_add_stage(h, p, (int)na, av);
                if (!rc && ver) {
                    char *vs = obj_cstr(ver);
                    free(h->history[h->nhistory - 1].version);
                    h->history[h->nhistory - 1].version = vs ? vs : strdup("?");
                }
                for (uint32_t q = 0; q < na; q++)
                    free(av[q]);
                free(av);
                free(p);
                if (rc == AK_ENOMEM)
                    ak_fail(err, rc, "out of memory");
            }
        } else {
            char *kk = obj_cstr(k);
            if (!kk)
                rc = ak_fail(err, AK_EDATA, "header has a key that is not a string");
            else if (meta_put_obj(&h->extra, kk, v))
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
            free(kk);
        }
    }
    if (!rc && (!have_format || !have_version))
        rc = ak_fail(err, AK_EDATA, "header without %s", have_format ? "version" : "format");
    if (rc) {
        ak_header_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

static int parse_doc(const msgpack_object *o, size_t max_bytes, ak_doc **out, ak_err *err)
{
    ak_doc *d = ak_doc_new(NULL);
    if (!d)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int rc = 0;
    for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (obj_is_str(k, "type"))
            continue;
        if (obj_is_str(k, "id")) {
            char *id = obj_cstr(v);
            if (!id)
                rc = ak_fail(err, AK_EDATA, "document id is not a string");
            else {
                free(d->id);
                d->id = id;
            }
        } else if (obj_is_str(k, "meta")) {
            rc = map_to_meta(v, &d->meta, "document meta", err);
        } else if (obj_is_str(k, "tensors")) {
            if (v->type != MSGPACK_OBJECT_ARRAY) {
                rc = ak_fail(err, AK_EDATA, "document tensors is not an array");
                break;
            }
            for (uint32_t j = 0; j < v->via.array.size && !rc; j++) {
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
        } else {
            char *kk = obj_cstr(k);
            if (!kk)
                rc = ak_fail(err, AK_EDATA, "document has a key that is not a string");
            else if (meta_put_obj(&d->extra, kk, v))
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
            free(kk);
        }
    }
    if (rc) {
        if (d->id[0])
            ak_wrap(err, "document '%s'", d->id);
        ak_doc_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static int parse_record(ak_reader *r, const unsigned char *p, size_t len, ak_record *rec,
                        ak_err *err)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, (const char *)p, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        rc = ak_fail(err, ur == MSGPACK_UNPACK_NOMEM_ERROR ? AK_ENOMEM : AK_EDATA,
                     "record is not valid MessagePack");
        goto out;
    }
    const msgpack_object *o = &up.data;
    const msgpack_object *type = NULL;
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (obj_is_str(&o->via.map.ptr[i].key, "type"))
                type = &o->via.map.ptr[i].val;
    if (!type || type->type != MSGPACK_OBJECT_STR) {
        rc = ak_fail(err, AK_EDATA, "record is not a map with a string 'type'");
        goto out;
    }
    memset(rec, 0, sizeof *rec);
    if (obj_is_str(type, "header")) {
        rec->type = AK_REC_HEADER;
        rc = parse_header(o, &rec->header, err);
    } else if (obj_is_str(type, "doc")) {
        rec->type = AK_REC_DOC;
        rc = parse_doc(o, r->max_record, &rec->doc, err);
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
    msgpack_unpacked_destroy(&up);
    if (rc)
        ak_record_free(rec);
    return rc;
}

int ak_reader_next(ak_reader *r, ak_record *rec, ak_err *err)
{
    memset(rec, 0, sizeof *rec);
    for (;;) {
        int rc = r->len ? scan_record(r, err) : 0;
        if (rc < 0)
            return rc;
        if (rc == 1)
            break;
        if (r->eof) {
            if (r->len)
                return ak_fail(err, AK_EDATA, "%s: truncated: input ends inside record %llu "
                               "(byte %llu)", r->name, (unsigned long long)r->nrecords + 1,
                               (unsigned long long)r->offset);
            if (r->in_stream)
                return ak_fail(err, AK_EDATA, "%s: truncated: stream ends without its end "
                               "record (after %lld documents)", r->name, (long long)r->ndocs);
            return 0;
        }
        if ((rc = fill(r, err)))
            return rc;
    }
    size_t len = r->scan_pos;
    uint64_t at = r->offset;
    int rc = parse_record(r, r->buf, len, rec, err);
    memmove(r->buf, r->buf + len, r->len - len);
    r->len -= len;
    r->offset += len;
    r->scan_pos = 0;
    r->scan_need = 1;
    r->nrecords++;
    if (rc)
        return ak_wrap(err, "%s: record %llu (byte %llu)", r->name,
                       (unsigned long long)r->nrecords, (unsigned long long)at);
    const char *bad = NULL;
    switch (rec->type) {
    case AK_REC_HEADER:
        if (r->in_stream)
            bad = "a header inside a stream (previous stream has no end record)";
        r->in_stream = 1;
        r->ndocs = 0;
        break;
    case AK_REC_DOC:
        if (!r->in_stream)
            bad = "a document outside a stream (no header before it)";
        r->ndocs++;
        break;
    case AK_REC_END:
        if (!r->in_stream)
            bad = "an end record without a header";
        else if (rec->end_docs != r->ndocs) {
            int64_t said = rec->end_docs;
            ak_record_free(rec);
            return ak_fail(err, AK_EDATA, "%s: record %llu (byte %llu): end record says %lld "
                           "documents, stream has %lld", r->name,
                           (unsigned long long)r->nrecords, (unsigned long long)at,
                           (long long)said, (long long)r->ndocs);
        }
        r->in_stream = 0;
        break;
    default:
        if (!r->in_stream)
            bad = "a record outside a stream (no header before it)";
        break;
    }
    if (bad) {
        ak_record_free(rec);
        return ak_fail(err, AK_EDATA, "%s: record %llu (byte %llu): %s", r->name,
                       (unsigned long long)r->nrecords, (unsigned long long)at, bad);
    }
    return 1;
}

/* --------------------------------------------------------------- writer */

struct ak_writer {
    int fd;
    char *name;
    int level;
    int64_t ndocs;
    int failed;
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

int ak_writer_open_fd(ak_writer **wp, int fd, const char *name, ak_err *err)
{
    ak_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(name))) {
        free(w);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    w->fd = fd;
    const char *env = getenv("ATTNKIT_COMPRESS");
    if (env && *env >= '0' && *env <= '9' && env[1] == 0)
        w->level = *env - '0';
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    *wp = w;
    return 0;
}

void ak_writer_set_compress(ak_writer *w, int level)
{
    w->level = level < 0 ? 0 : level > 9 ? 9 : level;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}
#define PACK_LIT(pk, s) pack_str(pk, s, sizeof(s) - 1)

static void pack_cstr(msgpack_packer *pk, const char *s) { pack_str(pk, s, strlen(s)); }

static void pack_meta_value(msgpack_packer *pk, const ak_meta *it)
{
    switch (it->kind) {
    case AK_META_NIL: msgpack_pack_nil(pk); break;
    case AK_META_BOOL: it->i ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case AK_META_INT: msgpack_pack_int64(pk, it->i); break;
    case AK_META_FLOAT: msgpack_pack_double(pk, it->f); break;
    case AK_META_STR: pack_str(pk, it->s, it->slen); break;
    case AK_META_RAW: msgpack_sbuffer_write(pk->data, (const char *)it->raw, it->rawlen); break;
    }
}

/* The pairs of m; with_header 0 writes them into an enclosing map (unknown
 * fields of a record, written back as they came). */
static void pack_meta_pairs(msgpack_packer *pk, const ak_metamap *m, int with_header)
{
    if (with_header)
        msgpack_pack_map(pk, m->n);
    for (size_t i = 0; i < m->n; i++) {
        pack_cstr(pk, m->items[i].key);
        pack_meta_value(pk, &m->items[i]);
    }
}
#define pack_meta(pk, m) pack_meta_pairs(pk, m, 1)
#define pack_extra(pk, m) pack_meta_pairs(pk, m, 0)

static int flush_record(ak_writer *w, ak_err *err)
{
    int rc = 0;
    if (w->failed)
        rc = ak_fail(err, AK_EIO, "%s: earlier write failed", w->name);
    else if (ak_write_full(w->fd, w->sb.data, w->sb.size) != 0) {
        w->failed = 1;
        rc = ak_fail(err, AK_EIO, "%s: write: %s", w->name, strerror(errno));
    }
    msgpack_sbuffer_clear(&w->sb);
    return rc;
}

int ak_write_header(ak_writer *w, const ak_header *h, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 5 + h->extra.n);
    PACK_LIT(pk, "type"); PACK_LIT(pk, "header");
    PACK_LIT(pk, "format"); PACK_LIT(pk, AK_STREAM_FORMAT);
    PACK_LIT(pk, "version");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, AK_STREAM_MAJOR);
    msgpack_pack_int(pk, AK_STREAM_MINOR);
    PACK_LIT(pk, "model");
    pack_meta(pk, &h->model);
    PACK_LIT(pk, "history");
    msgpack_pack_array(pk, h->nhistory);
    for (size_t i = 0; i < h->nhistory; i++) {
        const ak_stage *s = &h->history[i];
        msgpack_pack_map(pk, 3);
        PACK_LIT(pk, "program"); pack_cstr(pk, s->program);
        PACK_LIT(pk, "version"); pack_cstr(pk, s->version ? s->version : "?");
        PACK_LIT(pk, "args");
        msgpack_pack_array(pk, s->nargs);
        for (size_t j = 0; j < s->nargs; j++)
            pack_cstr(pk, s->args[j]);
    }
    pack_extra(pk, &h->extra);
    w->ndocs = 0;
    return flush_record(w, err);
}

static int pack_tensor(ak_writer *w, const ak_tensor *t, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    int compress = w->level > 0 && t->nbytes >= 1024;
    unsigned char *z = NULL;
    uLongf zlen = 0;
    if (compress) {
        zlen = compressBound((uLong)t->nbytes);
        z = malloc(zlen);
        if (!z)
            return ak_fail(err, AK_ENOMEM, "out of memory compressing '%s'", t->name);
        if (compress2(z, &zlen, t->data, (uLong)t->nbytes, w->level) != Z_OK) {
            free(z);
            return ak_fail(err, AK_EINTERNAL, "zlib failed on '%s'", t->name);
        }
    }
    msgpack_pack_map(pk, compress ? 6 : 4);
    PACK_LIT(pk, "name"); pack_cstr(pk, t->name);
    PACK_LIT(pk, "dtype"); pack_cstr(pk, ak_dtype_name(t->dtype));
    PACK_LIT(pk, "shape");
    msgpack_pack_array(pk, (size_t)t->ndim);
    for (int i = 0; i < t->ndim; i++)
        msgpack_pack_int64(pk, t->shape[i]);
    PACK_LIT(pk, "data");
    if (compress) {
        msgpack_pack_bin(pk, zlen);
        msgpack_pack_bin_body(pk, z, zlen);
        PACK_LIT(pk, "compression"); PACK_LIT(pk, "zlib");
        PACK_LIT(pk, "raw_bytes"); msgpack_pack_uint64(pk, t->nbytes);
    } else if (t->nbytes >= ((size_t)1 << 20) && !w->failed) {
        /* a large payload goes from the tensor to the file: copying it into
         * the record buffer first would hold a long document twice */
        msgpack_pack_bin(pk, t->nbytes);
        if (ak_write_full(w->fd, w->sb.data, w->sb.size) != 0 ||
            ak_write_full(w->fd, t->data, t->nbytes) != 0) {
            w->failed = 1;
            msgpack_sbuffer_clear(&w->sb);
            return ak_fail(err, AK_EIO, "%s: write: %s", w->name, strerror(errno));
        }
        msgpack_sbuffer_clear(&w->sb);
    } else {
        msgpack_pack_bin(pk, t->nbytes);
        msgpack_pack_bin_body(pk, t->data, t->nbytes);
    }
    free(z);
    return 0;
}

int ak_write_doc(ak_writer *w, const ak_doc *d, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 4 + d->extra.n);
    PACK_LIT(pk, "type"); PACK_LIT(pk, "doc");
    PACK_LIT(pk, "id"); pack_cstr(pk, d->id);
    PACK_LIT(pk, "meta"); pack_meta(pk, &d->meta);
    PACK_LIT(pk, "tensors");
    msgpack_pack_array(pk, d->ntensors);
    for (size_t i = 0; i < d->ntensors; i++) {
        int rc = pack_tensor(w, d->tensors[i], err);
        if (rc) {
            msgpack_sbuffer_clear(&w->sb);
            return rc;
        }
    }
    pack_extra(pk, &d->extra);
    w->ndocs++;
    return flush_record(w, err);
}

int ak_write_end(ak_writer *w, int64_t ndocs, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 2);
    PACK_LIT(pk, "type"); PACK_LIT(pk, "end");
    PACK_LIT(pk, "docs"); msgpack_pack_int64(pk, ndocs < 0 ? w->ndocs : ndocs);
    return flush_record(w, err);
}

int ak_write_raw(ak_writer *w, const uint8_t *raw, size_t len, ak_err *err)
{
    msgpack_sbuffer_write(&w->sb, (const char *)raw, len);
    return flush_record(w, err);
}

int ak_writer_close(ak_writer *w, ak_err *err)
{
    if (!w)
        return 0;
    int rc = w->failed ? ak_fail(err, AK_EIO, "%s: write failed", w->name) : 0;
    msgpack_sbuffer_destroy(&w->sb);
    free(w->name);
    free(w);
    return rc;
}
