/* stream_read.c - reading the tensor stream.
 *
 * Reading is done in two steps.  A small scanner walks the MessagePack
 * framing of the next record as bytes arrive, counting the objects still
 * owed, so it knows where the record ends without trusting any declared
 * length: a count or length that could not fit in the record-size limit is
 * refused before anything is allocated for it.  Only then is the complete
 * record decoded (stream_decode.c), whose every array and map is by then
 * known to be backed by bytes actually read.  This file holds the scanner
 * and the stream's grammar (header, documents, end) around the records.
 */
#include "attnkit/stream.h"
#include "stream_internal.h"
#include "attnkit/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_RECORD ((size_t)8 << 30)

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
    uint64_t scan_need;   /* objects still owed, at all levels */
    int scan_depth;       /* arrays and maps open around scan_pos */
    uint64_t scan_left[AK_STREAM_MAX_DEPTH + 1]; /* objects owed per level */
    uint64_t scan_elems;  /* array elements and map pairs in the record, */
    uint64_t scan_pairs;  /* so that decoding allocates exactly once */
    /* grammar */
    uint64_t offset;      /* stream byte offset of buf[0] */
    uint64_t nrecords;
    int in_stream;
    int64_t ndocs;
    st_id_set ids;        /* document ids of the current stream */
};

static void scan_reset(ak_reader *r)
{
    r->scan_pos = 0;
    r->scan_need = 1;
    r->scan_depth = 0;
    r->scan_left[0] = 1;
    r->scan_elems = r->scan_pairs = 0;
}

static size_t clamp_limit(size_t n)
{
    return n < AK_MIN_RECORD ? AK_MIN_RECORD : n > AK_MAX_RECORD_LIMIT ? AK_MAX_RECORD_LIMIT : n;
}

int ak_reader_open_fd(ak_reader **rp, int fd, const char *name, ak_err *err)
{
    ak_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    r->fd = fd;
    r->max_record = DEFAULT_MAX_RECORD;
    scan_reset(r);
    *rp = r;
    return 0;
}

int ak_reader_open_path(ak_reader **rp, const char *path, ak_err *err)
{
    int fd, rc = ak_open_input(path, &fd, err);
    if (rc)
        return rc;
    if (fd == 0)
        return ak_reader_open_fd(rp, 0, "<stdin>", err);
    rc = ak_reader_open_fd(rp, fd, path, err);
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
    st_id_set_clear(&r->ids);
    free(r->buf);
    free(r->name);
    free(r);
}

void ak_reader_set_limit(ak_reader *r, size_t max_record_bytes)
{
    r->max_record = clamp_limit(max_record_bytes);
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
        int ext = 0, container = 0;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        } else if (c >= 0x80 && c <= 0x8f) {
            children = 2ull * (c & 0x0f);
            container = 1;
        } else if (c >= 0x90 && c <= 0x9f) {
            children = c & 0x0f;
            container = 1;
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
            case 0xdc: case 0xde: lenbytes = 2; container = 1; break; /* array16 map16 */
            case 0xdd: case 0xdf: lenbytes = 4; container = 1; break; /* array32 map32 */
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
        if (container && r->scan_depth >= AK_STREAM_MAX_DEPTH)
            return ak_fail(err, AK_EDATA, "%s: byte %llu: record nested deeper than %d levels",
                           r->name, (unsigned long long)(r->offset + p), AK_STREAM_MAX_DEPTH);
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
        r->scan_left[r->scan_depth]--;
        if (container) {
            int is_map = (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
            if (is_map)
                r->scan_pairs += children / 2;
            else
                r->scan_elems += children;
            if (children)
                r->scan_left[++r->scan_depth] = children;
        }
        while (r->scan_depth > 0 && r->scan_left[r->scan_depth] == 0)
            r->scan_depth--;
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
            /* Zero bytes is not an empty stream (that is a header and an
             * end record): it is what a failed program before this one
             * leaves, and must not make a batch job succeed on nothing. */
            if (r->nrecords == 0 && r->offset == 0)
                return r->fd == 0 ? ak_fail(err, AK_EDATA, "no stream on standard input "
                                            "(did the program before it fail?)")
                                  : ak_fail(err, AK_EDATA, "%s: empty file, no stream "
                                            "(did the program that wrote it fail?)", r->name);
            return 0;
        }
        if ((rc = fill(r, err)))
            return rc;
    }
    size_t len = r->scan_pos;
    uint64_t at = r->offset;
    int rc = st_parse_record(r->buf, len, r->scan_elems, r->scan_pairs, r->max_record, rec, err);
    memmove(r->buf, r->buf + len, r->len - len);
    r->len -= len;
    r->offset += len;
    scan_reset(r);
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
        st_id_set_clear(&r->ids);
        break;
    case AK_REC_DOC: {
        if (!r->in_stream) {
            bad = "a document outside a stream (no header before it)";
            break;
        }
        uint64_t first = 0;
        int dup = st_id_set_add(&r->ids, rec->doc->id, r->nrecords, &first);
        if (dup == 1)
            ak_fail(err, AK_EDATA, "%s: record %llu (byte %llu): document id '%s' appears "
                    "twice in the stream (first in record %llu)", r->name,
                    (unsigned long long)r->nrecords, (unsigned long long)at, rec->doc->id,
                    (unsigned long long)first);
        else if (dup)
            ak_fail(err, AK_ENOMEM, "%s: out of memory", r->name);
        if (dup) {
            ak_record_free(rec);
            return dup == 1 ? AK_EDATA : AK_ENOMEM;
        }
        r->ndocs++;
        break;
    }
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
        st_id_set_clear(&r->ids);
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
