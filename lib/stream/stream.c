/* stream.c - the attnkit tensor stream (formats/tensor-stream.md): its
 * records in memory (metadata maps, headers, documents) and the pieces
 * the reader (stream_read.c, stream_decode.c) and the writer
 * (stream_write.c) share: the string checks, the set of document ids,
 * the tensor checksum.
 */
#include "attnkit/stream.h"
#include "stream_internal.h"
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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
ak_meta *st_meta_slot(ak_metamap *m, const char *key)
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

char *st_memdup0(const void *p, size_t n)
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
size_t st_utf8_prefix(const unsigned char *s, size_t n)
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
    return st_utf8_prefix(s, n) == n;
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
        size_t k = st_utf8_prefix((const unsigned char *)s + i, n - i);
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
    ak_meta *it = st_meta_slot(m, key);
    if (!it)
        return AK_ENOMEM;
    it->kind = AK_META_STR;
    it->slen = len;
    return (it->s = st_memdup0(val, len)) ? 0 : AK_ENOMEM;
}

int ak_meta_set_str(ak_metamap *m, const char *key, const char *val)
{
    return meta_set_strn(m, key, val, strlen(val));
}

int ak_meta_set_int(ak_metamap *m, const char *key, int64_t val)
{
    ak_meta *it = st_meta_slot(m, key);
    if (!it)
        return AK_ENOMEM;
    it->kind = AK_META_INT;
    it->i = val;
    return 0;
}

int ak_meta_set_float(ak_metamap *m, const char *key, double val)
{
    ak_meta *it = st_meta_slot(m, key);
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

void st_stage_free(ak_stage *s)
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
        st_stage_free(&h->history[i]);
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

/* ------------------------------------------------------ document ids */

/* The ids of one stream's documents, to refuse a repeated one: an open
 * addressing hash set, emptied at every header and end record. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void st_id_set_clear(st_id_set *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i].id);
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* Adds id; returns 0, AK_ENOMEM, or 1 with *first set when it is there
 * already. */
int st_id_set_add(st_id_set *set, const char *id, uint64_t record, uint64_t *first)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t ncap = set->cap ? 2 * set->cap : 64;
        st_id_entry *ns = calloc(ncap, sizeof *ns);
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

/* zlib's crc32 over any length (its length argument is 32-bit). */
uint32_t st_crc32(const void *p, size_t n)
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
