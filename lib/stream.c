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
#include "buf.h"
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
    if (!v)
        return 1;
    if (v->kind != AK_META_INT && v->kind != AK_META_BOOL)
        return AK_EDATA;
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
    if (ak_grow((void **)&m->items, &m->cap, m->n + 1, sizeof *m->items))
        return NULL;
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

/* ------------------------------------------------------------- strings */

/* Length of the longest prefix of s[0..n) that is valid UTF-8 (RFC 3629,
 * section 4: shortest forms only, no surrogates, nothing above U+10FFFF). */
static size_t utf8_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0) lo = 0xa0;      /* overlong */
            if (c == 0xed) hi = 0x9f;      /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0) lo = 0x90;      /* overlong */
            if (c == 0xf4) hi = 0x8f;      /* above U+10FFFF */
        } else
            return i;
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return i;
        i += k + 1;
    }
    return n;
}

int ak_utf8_valid(const void *s, size_t n)
{
    return utf8_prefix(s, n) == n;
}

static int is_format_char(uint32_t cp)
{
    return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

size_t ak_escape(char *out, size_t cap, const char *s, size_t n, int flags)
{
    const unsigned char *b = (const unsigned char *)s;
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned c = b[i];
        char esc[8];
        const char *piece = esc;
        size_t k = 1, len = 0;
        if (c < 0x80) {
            if (c == '\n' || c == '\t' || c == '\r')
                len = (size_t)snprintf(esc, sizeof esc, "\\%c",
                                       c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
            else if (c < 0x20 || c == 0x7f)
                len = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
            else if ((flags & AK_ESC_QUOTE) && (c == '"' || c == '\\'))
                len = (size_t)snprintf(esc, sizeof esc, "\\%c", c);
            else {
                piece = (const char *)b + i;
                len = 1;
            }
        } else {
            k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (k == 1 || k > n - i || !ak_utf8_valid(b + i, k)) {
                k = 1;
                len = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
            } else {
                uint32_t cp = k == 2 ? (c & 0x1fu) : k == 3 ? (c & 0x0fu) : (c & 0x07u);
                for (size_t j = 1; j < k; j++)
                    cp = (cp << 6) | (b[i + j] & 0x3fu);
                if (cp <= 0x9f || ((flags & AK_ESC_FORMAT) && is_format_char(cp)))
                    len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
                else {
                    piece = (const char *)b + i;
                    len = k;
                }
            }
        }
        if (o + len >= cap)
            break;
        memcpy(out + o, piece, len);
        o += len;
        i += k;
    }
    out[o] = 0;
    return o;
}

/* A copy of s with each byte that is not part of valid UTF-8 replaced by
 * U+FFFD. */
static char *utf8_repaired(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_prefix((const unsigned char *)s + i, n - i);
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
        if (i < n) {
            memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD for one bad byte */
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    return out;
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
    s->program = utf8_repaired(program);
    s->version = strdup(AK_VERSION);
    s->args = calloc(argc > 0 ? (size_t)argc : 1, sizeof *s->args);
    int ok = s->program && s->version && s->args;
    for (int i = 0; ok && i < argc; i++, s->nargs++)
        ok = (s->args[i] = utf8_repaired(argv[i])) != NULL;
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
    if (ak_grow((void **)&d->tensors, &d->cap, d->ntensors + 1, sizeof *d->tensors)) {
        ak_tensor_free(t);
        return ak_fail(err, AK_ENOMEM, "out of memory");
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

/* The ids of one stream's documents, to refuse a repeated one: an open
 * addressing hash set, emptied at every header and end record. */
typedef struct id_entry {
    uint64_t hash;
    char *id;             /* NULL: empty slot */
    uint64_t record;      /* where it was first seen */
} id_entry;

typedef struct id_set {
    id_entry *slots;
    size_t cap, n;        /* cap: 0 or a power of two */
} id_set;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void id_set_clear(id_set *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i].id);
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* Adds id; returns 0, AK_ENOMEM, or 1 with *first set when it is there
 * already. */
static int id_set_add(id_set *set, const char *id, uint64_t record, uint64_t *first)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t ncap = set->cap ? 2 * set->cap : 64;
        id_entry *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return AK_ENOMEM;
        for (size_t i = 0; i < set->cap; i++)
            if (set->slots[i].id) {
                size_t j = set->slots[i].hash & (ncap - 1);
                while (ns[j].id)
                    j = (j + 1) & (ncap - 1);
                ns[j] = set->slots[i];
            }
        free(set->slots);
        set->slots = ns;
        set->cap = ncap;
    }
    uint64_t h = fnv1a(id);
    size_t j = h & (set->cap - 1);
    for (; set->slots[j].id; j = (j + 1) & (set->cap - 1))
        if (set->slots[j].hash == h && strcmp(set->slots[j].id, id) == 0) {
            *first = set->slots[j].record;
            return 1;
        }
    if (!(set->slots[j].id = strdup(id)))
        return AK_ENOMEM;
    set->slots[j].hash = h;
    set->slots[j].record = record;
    set->n++;
    return 0;
}

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
    id_set ids;           /* document ids of the current stream */
};

static void scan_reset(ak_reader *r)
{
    r->scan_pos = 0;
    r->scan_need = 1;
    r->scan_depth = 0;
    r->scan_left[0] = 1;
    r->scan_elems = r->scan_pairs = 0;
}

/* Process-wide defaults for readers and writers opened later. */
static size_t default_max_record = DEFAULT_MAX_RECORD;
static int default_compress;

static size_t clamp_limit(size_t n)
{
    return n < AK_MIN_RECORD ? AK_MIN_RECORD : n > AK_MAX_RECORD_LIMIT ? AK_MAX_RECORD_LIMIT : n;
}

static int clamp_level(int level) { return level < 0 ? 0 : level > 9 ? 9 : level; }

void ak_reader_set_default_limit(size_t max_record_bytes)
{
    default_max_record = clamp_limit(max_record_bytes);
}

void ak_writer_set_default_compress(int level) { default_compress = clamp_level(level); }

int ak_reader_open_fd(ak_reader **rp, int fd, const char *name, ak_err *err)
{
    ak_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    r->fd = fd;
    r->max_record = default_max_record;
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
    id_set_clear(&r->ids);
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

/* ---- decoding a framed record ----
 * msgpack-c's unpacker keeps a fixed stack of 32 containers
 * (MSGPACK_EMBED_STACK_SIZE, compiled into libmsgpackc) and fails a deeper
 * record as if out of memory; the format allows AK_STREAM_MAX_DEPTH.  So
 * the record, framed and depth-checked by scan_record, is decoded here into
 * msgpack-c's object types, with one allocation sized by the scan's counts.
 * Strings and binaries point into the record's bytes. */

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

/* zlib's crc32 over any length (its length argument is 32-bit). */
static uint32_t crc32_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
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
        char *s = memdup0(o->via.str.ptr, o->via.str.size);
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
        uint32_t have = crc32_bytes(t->data, nbytes);
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
        stage_free(&st);
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
        size_t ok = utf8_prefix(tx->data, tx->nbytes);
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

static int parse_record(ak_reader *r, const unsigned char *p, size_t len, ak_record *rec,
                        ak_err *err)
{
    memset(rec, 0, sizeof *rec);
    msgpack_object root;
    decoder dec = {.p = p, .end = p + len, .elems_left = r->scan_elems,
                   .pairs_left = r->scan_pairs};
    msgpack_object *elems = NULL;
    msgpack_object_kv *pairs = NULL;
    int rc = 0;
    if (r->scan_elems > SIZE_MAX / sizeof *elems || r->scan_pairs > SIZE_MAX / sizeof *pairs ||
        (r->scan_elems && !(elems = malloc(r->scan_elems * sizeof *elems))) ||
        (r->scan_pairs && !(pairs = malloc(r->scan_pairs * sizeof *pairs)))) {
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
    free(elems);
    free(pairs);
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
    int rc = parse_record(r, r->buf, len, rec, err);
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
        id_set_clear(&r->ids);
        break;
    case AK_REC_DOC: {
        if (!r->in_stream) {
            bad = "a document outside a stream (no header before it)";
            break;
        }
        uint64_t first = 0;
        int dup = id_set_add(&r->ids, rec->doc->id, r->nrecords, &first);
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
        id_set_clear(&r->ids);
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
    id_set ids;           /* document ids written since the header */
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
    w->level = default_compress;
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
    id_set_clear(&w->ids);
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
    PACK_LIT(pk, "crc32"); msgpack_pack_uint32(pk, crc32_bytes(t->data, t->nbytes));
    free(z);
    return 0;
}

int ak_write_doc(ak_writer *w, const ak_doc *d, ak_err *err)
{
    msgpack_packer *pk = &w->pk;
    if (doc_utf8(d, err))
        return AK_EDATA;
    uint64_t first = 0;
    int dup = id_set_add(&w->ids, d->id, (uint64_t)w->ndocs + 1, &first);
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
    id_set_clear(&w->ids);
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
    id_set_clear(&w->ids);
    free(w->name);
    free(w);
    return rc;
}
