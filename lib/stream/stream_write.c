/* stream_write.c - writing the tensor stream: records packed with
 * msgpack-c, their strings checked as UTF-8 first, document ids checked
 * for repeats, tensors optionally deflated.
 */
#include "attnkit/stream.h"
#include "stream_internal.h"
#include "attnkit/io.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int clamp_level(int level) { return level < 0 ? 0 : level > 9 ? 9 : level; }

struct ak_writer {
    int fd;
    char *name;
    int level;
    int64_t ndocs;
    st_id_set ids;        /* document ids written since the header */
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
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    *wp = w;
    return 0;
}

void ak_writer_set_compress(ak_writer *w, int level)
{
    w->level = clamp_level(level);
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

/* The writer's half of "every string is UTF-8": checked before a byte of
 * the record is packed. */
static int utf8_or_fail(const char *s, size_t n, const char *what, ak_err *err)
{
    if (ak_utf8_valid(s, n))
        return 0;
    return ak_fail(err, AK_EDATA, "%s '%.*s' is not valid UTF-8 (the stream holds UTF-8 "
                   "strings only)", what, (int)(n > 100 ? 100 : n), s);
}

static int meta_utf8(const ak_metamap *m, const char *what, ak_err *err)
{
    char field[96];
    for (size_t i = 0; i < m->n; i++) {
        snprintf(field, sizeof field, "%s key", what);
        if (utf8_or_fail(m->items[i].key, strlen(m->items[i].key), field, err))
            return AK_EDATA;
        snprintf(field, sizeof field, "%s %.40s", what, m->items[i].key);
        if (m->items[i].kind == AK_META_STR &&
            utf8_or_fail(m->items[i].s, m->items[i].slen, field, err))
            return AK_EDATA;
    }
    return 0;
}

static int header_utf8(const ak_header *h, ak_err *err)
{
    if (meta_utf8(&h->model, "header: model", err) || meta_utf8(&h->extra, "header: field", err))
        return AK_EDATA;
    for (size_t i = 0; i < h->nhistory; i++) {
        const ak_stage *st = &h->history[i];
        if (utf8_or_fail(st->program, strlen(st->program), "header: history program", err) ||
            (st->version && utf8_or_fail(st->version, strlen(st->version),
                                         "header: history version", err)))
            return AK_EDATA;
        for (size_t j = 0; j < st->nargs; j++)
            if (utf8_or_fail(st->args[j], strlen(st->args[j]), "header: history argument",
                             err))
                return AK_EDATA;
    }
    return 0;
}

static int doc_utf8(const ak_doc *d, ak_err *err)
{
    if (utf8_or_fail(d->id, strlen(d->id), "document id", err))
        return AK_EDATA;
    int rc = meta_utf8(&d->meta, "meta", err) || meta_utf8(&d->extra, "field", err);
    for (size_t i = 0; !rc && i < d->ntensors; i++)
        rc = utf8_or_fail(d->tensors[i]->name, strlen(d->tensors[i]->name), "tensor name", err);
    return rc ? ak_wrap(err, "document '%s'", d->id) : 0;
}

int ak_write_header(ak_writer *w, const ak_header *h, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    if (header_utf8(h, err))
        return AK_EDATA;
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
    st_id_set_clear(&w->ids);
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
    msgpack_pack_map(pk, compress ? 7 : 5);
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
    PACK_LIT(pk, "crc32"); msgpack_pack_uint32(pk, st_crc32(t->data, t->nbytes));
    free(z);
    return 0;
}

int ak_write_doc(ak_writer *w, const ak_doc *d, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    if (doc_utf8(d, err))
        return AK_EDATA;
    uint64_t first = 0;
    int dup = st_id_set_add(&w->ids, d->id, (uint64_t)w->ndocs + 1, &first);
    if (dup == 1)
        return ak_fail(err, AK_EDATA, "%s: document id '%s' is already in this stream "
                       "(document %llu): ids must be unique within a stream", w->name, d->id,
                       (unsigned long long)first);
    if (dup)
        return ak_fail(err, AK_ENOMEM, "out of memory");
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
    st_id_set_clear(&w->ids);
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
    st_id_set_clear(&w->ids);
    free(w->name);
    free(w);
    return rc;
}
