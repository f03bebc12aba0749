/* kvcache.c - the key/value cache's entries and its file (formats/kvcache.md).
 * The forward pass through a cache is in forward.c. */
#include "attnkit/kvcache.h"
#include "attnkit/io.h"
#include "core/buf.h"
#include "stream/check.h"
#include "format/regfile.h"
#include "attnkit/stream.h"

#include <errno.h>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define KV_MAGIC "AKKVCACH"
#define KV_VERSION 1u
enum { SECTION_HEADER = 32, KV_ZLIB = 1 };

int ak_kvcache_new(ak_kvcache **out, const ak_model *m, ak_err *err)
{
    *out = NULL;
    if (!m->causal)
        return ak_fail(err, AK_ECONFIG, "model %s (%s) is not causal: its tokens see later ones, "
                       "so it has no cache to continue from", m->name, m->arch);
    ak_kvcache *c = calloc(1, sizeof *c);
    if (!c)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    snprintf(c->arch, sizeof c->arch, "%s", m->arch);
    snprintf(c->name, sizeof c->name, "%s", m->name);
    c->vocab_size = m->vocab_size;
    c->config_crc32 = m->config_crc32;
    c->n_layers = m->n_layers;
    c->n_kv_heads = m->n_kv_heads;
    c->head_dim = m->head_dim;
    c->heads = calloc((size_t)m->n_layers * m->n_kv_heads, sizeof *c->heads);
    if (!c->heads) {
        free(c);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    *out = c;
    return 0;
}

void ak_kvcache_free(ak_kvcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->heads && i < (size_t)c->n_layers * c->n_kv_heads; i++) {
        ak_kvhead *h = &c->heads[i];
        free(h->pos);
        free(h->k);
        free(h->v);
        free(h->mass);
        free(h->mass_last);
    }
    free(c->heads);
    ak_kvcache_clear_text(c);
    free(c->ids);
    free(c);
}

ak_kvhead *ak_kvcache_head(ak_kvcache *c, int layer, int head)
{
    return &c->heads[(size_t)layer * c->n_kv_heads + head];
}

int ak_kvcache_check_model(const ak_kvcache *c, const ak_model *m, ak_err *err)
{
    if (strcmp(c->arch, m->arch) != 0)
        return ak_fail(err, AK_EDATA, "the cache was made with another model (a %s model, not "
                       "%s: %s)", c->arch, m->arch, m->name);
    if (c->vocab_size != m->vocab_size)
        return ak_fail(err, AK_EDATA, "the cache was made with another model (a vocabulary of %d "
                       "tokens, %s has %d)", c->vocab_size, m->name, m->vocab_size);
    if (c->config_crc32 != m->config_crc32)
        return ak_fail(err, AK_EDATA, "the cache was made with another model (config_crc32 "
                       "0x%08x, %s has 0x%08x)", c->config_crc32, m->name, m->config_crc32);
    if (c->n_layers != m->n_layers || c->n_kv_heads != m->n_kv_heads || c->head_dim != m->head_dim)
        return ak_fail(err, AK_EDATA, "the cache's shapes disagree with the model: %d layers x "
                       "%d KV heads x head size %d, model %s has %d x %d x %d", c->n_layers, c->n_kv_heads, c->head_dim, m->name,
                       m->n_layers, m->n_kv_heads, m->head_dim);
    return 0;
}

static int grow_array(void *p, size_t elem, int n)
{
    void **pp = p;
    void *q = realloc(*pp, (size_t)(n ? n : 1) * elem);
    if (!q)
        return -1;
    *pp = q;
    return 0;
}

int ak_kvcache_reserve(ak_kvcache *c, int layer, int head, int extra, ak_err *err)
{
    if (c->n_tokens + extra > c->cap_tokens) {
        int cap = c->cap_tokens * 2 > c->n_tokens + extra ? c->cap_tokens * 2 : c->n_tokens + extra;
        if (grow_array(&c->ids, sizeof(int32_t), cap))
            return ak_fail(err, AK_ENOMEM, "out of memory for a cache of %d tokens", cap);
        c->cap_tokens = cap;
    }
    ak_kvhead *h = ak_kvcache_head(c, layer, head);
    if (h->n + extra <= h->cap)
        return 0;
    int cap = h->cap * 2 > h->n + extra ? h->cap * 2 : h->n + extra;
    size_t row = (size_t)c->head_dim * sizeof(float);
    if (grow_array(&h->pos, sizeof(int32_t), cap) || grow_array(&h->k, row, cap) ||
        grow_array(&h->v, row, cap) || grow_array(&h->mass, sizeof(float), cap) ||
        grow_array(&h->mass_last, sizeof(float), cap))
        return ak_fail(err, AK_ENOMEM, "out of memory for a cache of %d tokens", cap);
    h->cap = cap;
    return 0;
}

void ak_kvcache_keep(ak_kvcache *c, int layer, int head, const unsigned char *keep)
{
    ak_kvhead *h = ak_kvcache_head(c, layer, head);
    size_t Dh = (size_t)c->head_dim;
    int n = 0;
    for (int i = 0; i < h->n; i++) {
        if (!keep[i])
            continue;
        if (n != i) {
            h->pos[n] = h->pos[i];
            h->mass[n] = h->mass[i];
            h->mass_last[n] = h->mass_last[i];
            memmove(h->k + n * Dh, h->k + i * Dh, Dh * sizeof(float));
            memmove(h->v + n * Dh, h->v + i * Dh, Dh * sizeof(float));
        }
        n++;
    }
    h->n = n;
}

void ak_kvcache_clear_text(ak_kvcache *c)
{
    free(c->text);
    free(c->offsets);
    free(c->segments);
    c->text = NULL;
    c->offsets = NULL;
    c->segments = NULL;
    c->text_len = 0;
    c->n_text = 0;
}

/* The TEXT section's checks, for ak_kvcache_set_text and the reader. */
static int check_text(const char *text, size_t len, const int64_t *off, const int32_t *seg, int n,
                      ak_err *err)
{
    if (!ak_utf8_valid(text, len))
        return ak_fail(err, AK_EDATA, "kvcache: the text is not valid UTF-8");
    for (int t = 0; t < n; t++) {
        if (off[2 * t] < 0 || off[2 * t] > off[2 * t + 1] || off[2 * t + 1] > (int64_t)len)
            return ak_fail(err, AK_EDATA, "kvcache: token %d's span [%lld, %lld) is outside the "
                           "text of %zu bytes", t, (long long)off[2 * t],
                           (long long)off[2 * t + 1], len);
        if (seg && seg[t] < -1)
            return ak_fail(err, AK_EDATA, "kvcache: token %d's block is %d", t, (int)seg[t]);
    }
    return 0;
}

int ak_kvcache_set_text(ak_kvcache *c, const char *text, size_t len, const int64_t *offsets,
                        const int32_t *segments, ak_err *err)
{
    int n = c->n_tokens;
    int rc = check_text(text, len, offsets, segments, n, err);
    if (rc)
        return rc;
    ak_kvcache_clear_text(c);
    c->text = malloc(len + 1);
    c->offsets = malloc((size_t)n * 2 * sizeof(int64_t) + 1);
    c->segments = segments ? malloc((size_t)n * sizeof(int32_t) + 1) : NULL;
    if (!c->text || !c->offsets || (segments && !c->segments)) {
        ak_kvcache_clear_text(c);
        return ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
    }
    memcpy(c->text, text, len);
    c->text[len] = 0;
    memcpy(c->offsets, offsets, (size_t)n * 2 * sizeof(int64_t));
    if (segments)
        memcpy(c->segments, segments, (size_t)n * sizeof(int32_t));
    c->text_len = len;
    c->n_text = n;
    return 0;
}

void ak_kvcache_truncate(ak_kvcache *c, int pos)
{
    for (size_t i = 0; i < (size_t)c->n_layers * c->n_kv_heads; i++) {
        ak_kvhead *h = &c->heads[i];
        while (h->n > 0 && h->pos[h->n - 1] >= pos)
            h->n--;
    }
    if (c->n_tokens > pos)
        c->n_tokens = pos;
}

size_t ak_kvcache_entries(const ak_kvcache *c)
{
    size_t n = 0;
    for (size_t i = 0; i < (size_t)c->n_layers * c->n_kv_heads; i++)
        n += (size_t)c->heads[i].n;
    return n;
}

/* ---- the file ---- */

/* Little-endian integers and floats (the host is, as the stream's tensors
 * assume; formats/kvcache.md). */
static int put_u32(ak_buf *b, uint32_t v)
{
    unsigned char x[4] = {v & 255, v >> 8 & 255, v >> 16 & 255, v >> 24 & 255};
    return ak_buf_put(b, x, 4);
}
static int put_u64(ak_buf *b, uint64_t v)
{
    return put_u32(b, (uint32_t)v) || put_u32(b, (uint32_t)(v >> 32));
}
static uint32_t get_u32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p)
{
    return get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t crc_of(const void *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *b = p;
    while (n > 0) {
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* Appends section tag with payload raw[n] to out, deflated when compress. */
static int put_section(ak_buf *out, const char tag[4], const ak_buf *raw, int compress, ak_err *err)
{
    const unsigned char *stored = raw->data ? (const unsigned char *)raw->data : (const unsigned char *)"";
    size_t stored_n = raw->len;
    unsigned char *z = NULL;
    if (compress && raw->len > 0) {
        uLongf zn = compressBound((uLong)raw->len);
        z = malloc(zn);
        if (!z || compress2(z, &zn, (const Bytef *)raw->data, (uLong)raw->len, 6) != Z_OK) {
            free(z);
            return ak_fail(err, AK_ENOMEM, "kvcache: cannot compress section %.4s", tag);
        }
        stored = z;
        stored_n = zn;
    }
    size_t at = out->len;
    int rc = ak_buf_put(out, tag, 4) || put_u32(out, z ? KV_ZLIB : 0) || put_u64(out, stored_n) ||
             put_u64(out, raw->len) || put_u32(out, crc_of(stored, stored_n));
    if (!rc)
        rc = put_u32(out, crc_of(out->data + at, SECTION_HEADER - 4)) || ak_buf_put(out, stored, stored_n);
    free(z);
    return rc ? ak_fail(err, AK_ENOMEM, "kvcache: out of memory") : 0;
}

static int put_floats(ak_buf *b, const float *x, size_t n)
{
    return ak_buf_put(b, x, n * sizeof(float));
}

int ak_kvcache_encode(const ak_kvcache *c, int compress, void **data, size_t *len, ak_err *err)
{
    ak_buf out = {0}, sec = {0};
    *data = NULL;
    *len = 0;
    int rc = 0;
    size_t an = strlen(c->arch), nn = strlen(c->name);
    /* the TEXT section, when the text covers every token, makes it a 1.1
     * file; without it the file is 1.0, which 1.0 readers take */
    int with_text = c->text && c->n_text == c->n_tokens;
    if (ak_buf_put(&out, KV_MAGIC, 8) || put_u32(&out, KV_VERSION) || put_u32(&out, (uint32_t)with_text) ||
        put_u32(&sec, (uint32_t)c->vocab_size) || put_u32(&sec, c->config_crc32) ||
        put_u32(&sec, (uint32_t)c->n_layers) || put_u32(&sec, (uint32_t)c->n_kv_heads) ||
        put_u32(&sec, (uint32_t)c->head_dim) || put_u32(&sec, (uint32_t)c->n_tokens) ||
        put_u32(&sec, (uint32_t)c->last_w) || put_u32(&sec, (uint32_t)an) || ak_buf_put(&sec, c->arch, an) ||
        put_u32(&sec, (uint32_t)nn) || ak_buf_put(&sec, c->name, nn)) {
        rc = ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
        goto done;
    }
    if ((rc = put_section(&out, "META", &sec, 0, err)))
        goto done;
    sec.len = 0;
    if (ak_buf_put(&sec, c->ids, (size_t)c->n_tokens * sizeof(int32_t))) {
        rc = ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
        goto done;
    }
    if ((rc = put_section(&out, "IDS ", &sec, compress, err)))
        goto done;
    if (with_text) {
        sec.len = 0;
        size_t n = (size_t)c->n_tokens;
        if (put_u64(&sec, c->text_len) || ak_buf_put(&sec, c->text, c->text_len) ||
            ak_buf_put(&sec, c->offsets, n * 2 * sizeof(int64_t)) ||
            put_u32(&sec, c->segments ? 1 : 0) ||
            (c->segments && ak_buf_put(&sec, c->segments, n * sizeof(int32_t)))) {
            rc = ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
            goto done;
        }
        if ((rc = put_section(&out, "TEXT", &sec, compress, err)))
            goto done;
    }
    size_t Dh = (size_t)c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        sec.len = 0;
        for (int g = 0; g < c->n_kv_heads; g++) {
            const ak_kvhead *h = &c->heads[(size_t)l * c->n_kv_heads + g];
            size_t n = (size_t)h->n;
            if (put_u32(&sec, (uint32_t)h->n) || ak_buf_put(&sec, h->pos, n * sizeof(int32_t)) ||
                put_floats(&sec, h->mass, n) || put_floats(&sec, h->mass_last, n) ||
                put_floats(&sec, h->k, n * Dh) || put_floats(&sec, h->v, n * Dh)) {
                rc = ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
                goto done;
            }
        }
        if ((rc = put_section(&out, "LAYR", &sec, compress, err)))
            goto done;
    }
    sec.len = 0;
    if ((rc = put_section(&out, "END ", &sec, 0, err)))
        goto done;
    *data = out.data;
    *len = out.len;
    out.data = NULL;
done:
    free(out.data);
    free(sec.data);
    return rc;
}

int ak_kvcache_write(const void *data, size_t len, const char *path, ak_err *err)
{
    ak_output o;
    int rc = ak_output_open(&o, path, NULL, 0, err);
    if (rc)
        return rc;
    if (ak_write_full(o.fd, data, len) != 0) {
        rc = ak_write_error(err, o.name);
        ak_output_abort(&o);
        return rc;
    }
    return ak_output_commit(&o, err);
}

int ak_kvcache_save(const ak_kvcache *c, const char *path, int compress, ak_err *err)
{
    void *data;
    size_t len;
    int rc = ak_kvcache_encode(c, compress, &data, &len, err);
    if (!rc)
        rc = ak_kvcache_write(data, len, path, err);
    free(data);
    return rc;
}

/* A reader of one section's payload: every take is bounds-checked. */
typedef struct {
    const unsigned char *p;
    size_t n, at;
    const char *what;   /* "section LAYR 3" */
} rd_t;

static int take(rd_t *r, void *dst, size_t n, ak_err *err)
{
    if (n > r->n - r->at)
        return ak_fail(err, AK_EDATA, "kvcache: %s: ends %zu bytes in, more expected", r->what,
                       r->n);
    if (dst)
        memcpy(dst, r->p + r->at, n);
    r->at += n;
    return 0;
}

static int take_u32(rd_t *r, uint32_t *v, ak_err *err)
{
    unsigned char x[4] = {0};
    int rc = take(r, x, 4, err);
    *v = rc ? 0 : get_u32(x);
    return rc;
}

/* The section at data[*at]: checks the header's CRC and tag, the stored
 * bytes' CRC, and inflates them into *raw (malloc'd). */
static int get_section(const unsigned char *data, size_t len, size_t *at, const char *tag,
                       const char *what, unsigned char **raw, size_t *raw_n, ak_err *err)
{
    *raw = NULL;
    *raw_n = 0;
    if (len - *at < SECTION_HEADER)
        return ak_fail(err, AK_EDATA, "kvcache: truncated at %s (byte %zu of %zu)", what, *at, len);
    const unsigned char *h = data + *at;
    if (get_u32(h + 28) != crc_of(h, SECTION_HEADER - 4))
        return ak_fail(err, AK_EDATA, "kvcache: %s's header is corrupt (CRC-32 mismatch at byte %zu)",
                       what, *at);
    if (memcmp(h, tag, 4) != 0)
        return ak_fail(err, AK_EDATA, "kvcache: %s expected at byte %zu, found section '%.4s'", what,
                       *at, (const char *)h);
    uint32_t flags = get_u32(h + 4);
    uint64_t stored = get_u64(h + 8), rawlen = get_u64(h + 16);
    if (flags & ~(uint32_t)KV_ZLIB)
        return ak_fail(err, AK_EDATA, "kvcache: %s: unknown flags 0x%x", what, flags);
    if (stored > len - *at - SECTION_HEADER)
        return ak_fail(err, AK_EDATA, "kvcache: truncated in %s (%llu bytes stored, %zu left)", what,
                       (unsigned long long)stored, len - *at - SECTION_HEADER);
    const unsigned char *s = h + SECTION_HEADER;
    if (get_u32(h + 24) != crc_of(s, (size_t)stored))
        return ak_fail(err, AK_EDATA, "kvcache: %s is corrupt (CRC-32 mismatch)", what);
    if (!(flags & KV_ZLIB) && rawlen != stored)
        return ak_fail(err, AK_EDATA, "kvcache: %s: %llu bytes stored, %llu raw, not compressed",
                       what, (unsigned long long)stored, (unsigned long long)rawlen);
    /* deflate expands at most about 1032:1 */
    if ((flags & KV_ZLIB) && (rawlen / 1032 > stored || rawlen > (uint64_t)SIZE_MAX / 2))
        return ak_fail(err, AK_EDATA, "kvcache: %s: %llu compressed bytes cannot hold %llu", what,
                       (unsigned long long)stored, (unsigned long long)rawlen);
    unsigned char *out = malloc(rawlen ? (size_t)rawlen : 1);
    if (!out)
        return ak_fail(err, AK_ENOMEM, "kvcache: out of memory for %s", what);
    if (flags & KV_ZLIB) {
        uLongf n = (uLongf)rawlen;
        if (uncompress(out, &n, s, (uLong)stored) != Z_OK || n != rawlen) {
            free(out);
            return ak_fail(err, AK_EDATA, "kvcache: %s: bad zlib data", what);
        }
    } else {
        memcpy(out, s, (size_t)stored);
    }
    *at += SECTION_HEADER + (size_t)stored;
    *raw = out;
    *raw_n = (size_t)rawlen;
    return 0;
}

/* The optional TEXT section (1.1): u64 text_len, the text, n_tokens x 2
 * i64 offsets, u32 has_segments, then n_tokens x i32 segments if set. */
static int read_text(const unsigned char *data, size_t len, size_t *at, ak_kvcache *c,
                     ak_err *err)
{
    unsigned char *raw;
    size_t rn;
    int rc = get_section(data, len, at, "TEXT", "section TEXT", &raw, &rn, err);
    if (rc)
        return rc;
    rd_t r = {raw, rn, 0, "section TEXT"};
    unsigned char x[8];
    uint32_t has_seg = 0;
    size_t n = (size_t)c->n_tokens;
    if (!(rc = take(&r, x, 8, err))) {
        uint64_t tl = get_u64(x);
        if (tl > rn)
            rc = ak_fail(err, AK_EDATA, "kvcache: section TEXT: a text of %llu bytes in %zu",
                         (unsigned long long)tl, rn);
        else if (!(c->text = malloc((size_t)tl + 1)) ||
                 !(c->offsets = malloc(n * 2 * sizeof(int64_t) + 1)))
            rc = ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
        else if (!(rc = take(&r, c->text, (size_t)tl, err))) {
            c->text[tl] = 0;
            c->text_len = (size_t)tl;
            rc = take(&r, c->offsets, n * 2 * sizeof(int64_t), err);
        }
    }
    if (!rc && !(rc = take_u32(&r, &has_seg, err)) && has_seg > 1)
        rc = ak_fail(err, AK_EDATA, "kvcache: section TEXT: has_segments is %u", has_seg);
    if (!rc && has_seg) {
        if (!(c->segments = malloc(n * sizeof(int32_t) + 1)))
            rc = ak_fail(err, AK_ENOMEM, "kvcache: out of memory");
        else
            rc = take(&r, c->segments, n * sizeof(int32_t), err);
    }
    if (!rc && r.at != r.n)
        rc = ak_fail(err, AK_EDATA, "kvcache: section TEXT: %zu bytes too many", r.n - r.at);
    if (!rc && (rc = check_text(c->text, c->text_len, c->offsets, c->segments, (int)n, err)))
        ak_wrap(err, "section TEXT");
    free(raw);
    if (!rc)
        c->n_text = (int)n;
    return rc;
}

static int parse(const unsigned char *data, size_t len, ak_kvcache *c, ak_err *err)
{
    if (len < 16 || memcmp(data, KV_MAGIC, 8) != 0)
        return ak_fail(err, AK_EDATA, "kvcache: not a cache file (no %s magic)", KV_MAGIC);
    /* 1.0, and 1.1 (which may hold a TEXT section); a later minor version
     * would add sections this reader does not know */
    if (get_u32(data + 8) != KV_VERSION || get_u32(data + 12) > 1)
        return ak_fail(err, AK_EDATA, "kvcache: version %u.%u, this reader knows %u.0 and %u.1",
                       get_u32(data + 8), get_u32(data + 12), KV_VERSION, KV_VERSION);
    int minor = (int)get_u32(data + 12);
    size_t at = 16;
    unsigned char *raw = NULL;
    size_t rn;
    int rc = get_section(data, len, &at, "META", "section META", &raw, &rn, err);
    if (rc)
        return rc;
    rd_t r = {raw, rn, 0, "section META"};
    uint32_t v[8], an = 0, nn = 0;
    for (int i = 0; i < 7 && !rc; i++)
        rc = take_u32(&r, &v[i], err);
    if (!rc && !(rc = take_u32(&r, &an, err)) && an >= sizeof c->arch)
        rc = ak_fail(err, AK_EDATA, "kvcache: section META: arch of %u bytes", an);
    if (!rc)
        rc = take(&r, c->arch, an, err);
    if (!rc && !(rc = take_u32(&r, &nn, err)) && nn >= sizeof c->name)
        rc = ak_fail(err, AK_EDATA, "kvcache: section META: name of %u bytes", nn);
    if (!rc)
        rc = take(&r, c->name, nn, err);
    if (!rc && r.at != r.n)
        rc = ak_fail(err, AK_EDATA, "kvcache: section META: %zu bytes too many", r.n - r.at);
    free(raw);
    if (rc)
        return rc;
    c->arch[an] = 0;
    c->name[nn] = 0;
    c->vocab_size = (int)v[0];
    c->config_crc32 = v[1];
    if (v[0] > INT32_MAX || v[2] < 1 || v[2] > 4096 || v[3] < 1 || v[3] > 4096 || v[4] < 1 ||
        v[4] > 65536 || v[5] > INT32_MAX / 2 || v[6] > INT32_MAX)
        return ak_fail(err, AK_EDATA, "kvcache: section META: impossible sizes (%u layers, %u "
                       "heads, head size %u, %u tokens)", v[2], v[3], v[4], v[5]);
    c->n_layers = (int)v[2];
    c->n_kv_heads = (int)v[3];
    c->head_dim = (int)v[4];
    c->last_w = (int)v[6];
    int n_tokens = (int)v[5];
    if (!(c->heads = calloc((size_t)c->n_layers * c->n_kv_heads, sizeof *c->heads)))
        return ak_fail(err, AK_ENOMEM, "kvcache: out of memory");

    if ((rc = get_section(data, len, &at, "IDS ", "section IDS", &raw, &rn, err)))
        return rc;
    if (rn != (size_t)n_tokens * sizeof(int32_t)) {
        free(raw);
        return ak_fail(err, AK_EDATA, "kvcache: section IDS holds %zu bytes, not %d ids", rn,
                       n_tokens);
    }
    c->ids = (int32_t *)raw;   /* malloc'd by get_section, aligned for int32 */
    c->n_tokens = c->cap_tokens = n_tokens;
    for (int t = 0; t < n_tokens; t++)
        if (c->ids[t] < 0 || c->ids[t] >= c->vocab_size)
            return ak_fail(err, AK_EDATA, "kvcache: section IDS: token %d has id %d, outside "
                           "the vocabulary of %d", t, (int)c->ids[t], c->vocab_size);
    if (minor >= 1 && len - at >= 4 && !memcmp(data + at, "TEXT", 4) &&
        (rc = read_text(data, len, &at, c, err)))
        return rc;
    size_t Dh = (size_t)c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        char what[48];
        snprintf(what, sizeof what, "section LAYR of layer %d", l);
        if ((rc = get_section(data, len, &at, "LAYR", what, &raw, &rn, err)))
            return rc;
        rd_t lr = {raw, rn, 0, what};
        for (int g = 0; g < c->n_kv_heads && !rc; g++) {
            ak_kvhead *h = ak_kvcache_head(c, l, g);
            uint32_t n;
            if ((rc = take_u32(&lr, &n, err)))
                break;
            if (n > (uint32_t)n_tokens) {
                rc = ak_fail(err, AK_EDATA, "kvcache: %s: head %d keeps %u entries of %d tokens",
                             what, g, n, n_tokens);
                break;
            }
            /* entries are bounded by the payload: n * (12 + 8 Dh) bytes */
            if ((uint64_t)n * (12 + 8 * Dh) > lr.n - lr.at) {
                rc = ak_fail(err, AK_EDATA, "kvcache: %s: head %d's %u entries overrun the section",
                             what, g, n);
                break;
            }
            if ((rc = ak_kvcache_reserve(c, l, g, (int)n, err)))
                break;
            h->n = (int)n;
            take(&lr, h->pos, n * sizeof(int32_t), err);
            take(&lr, h->mass, n * sizeof(float), err);
            take(&lr, h->mass_last, n * sizeof(float), err);
            take(&lr, h->k, n * Dh * sizeof(float), err);
            take(&lr, h->v, n * Dh * sizeof(float), err);
            if (ak_first_nonfinite(h->k, n * Dh) < n * Dh ||
                ak_first_nonfinite(h->v, n * Dh) < n * Dh) {
                rc = ak_fail(err, AK_EDATA, "kvcache: %s: head %d: a key or value is not finite "
                             "(NaN or Inf)", what, g);
                break;
            }
            for (uint32_t i = 0; i < n && !rc; i++)
                if (!(h->mass[i] >= 0 && h->mass_last[i] >= 0) || isinf(h->mass[i]) ||
                    isinf(h->mass_last[i]))
                    rc = ak_fail(err, AK_EDATA, "kvcache: %s: head %d: entry %u's received mass "
                                 "is %g (last queries: %g), not a finite number >= 0", what, g, i,
                                 (double)h->mass[i], (double)h->mass_last[i]);
            for (uint32_t i = 0; i < n && !rc; i++)
                if (h->pos[i] < 0 || h->pos[i] >= n_tokens || (i > 0 && h->pos[i] <= h->pos[i - 1]))
                    rc = ak_fail(err, AK_EDATA, "kvcache: %s: head %d: position %d (entry %u) is "
                                 "not ascending within 0..%d", what, g, (int)h->pos[i], i,
                                 n_tokens - 1);
        }
        if (!rc && lr.at != lr.n)
            rc = ak_fail(err, AK_EDATA, "kvcache: %s: %zu bytes too many", what, lr.n - lr.at);
        free(raw);
        if (rc)
            return rc;
    }
    if ((rc = get_section(data, len, &at, "END ", "section END", &raw, &rn, err)))
        return rc;
    free(raw);
    if (rn != 0)
        return ak_fail(err, AK_EDATA, "kvcache: section END is not empty");
    if (at != len)
        return ak_fail(err, AK_EDATA, "kvcache: %zu bytes after the END section", len - at);
    return 0;
}

int ak_kvcache_parse(ak_kvcache **out, const void *data, size_t len, ak_err *err)
{
    *out = NULL;
    ak_kvcache *c = calloc(1, sizeof *c);
    if (!c)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int rc = parse(data, len, c, err);
    if (rc) {
        ak_kvcache_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int ak_kvcache_load(ak_kvcache **out, const char *path, ak_err *err)
{
    *out = NULL;
    /* a regular file (a FIFO or /dev/zero is refused), mapped, not read:
     * its size bounds what the parser can take */
    int fd;
    struct stat st;
    int rc = ak_open_regular(path, &fd, &st, err);
    if (rc)
        return rc;
    size_t len = (size_t)st.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return ak_fail(err, AK_EIO, "%s: mmap: %s", path, strerror(e));
    rc = ak_kvcache_parse(out, len ? map : "", len, err);
    if (map)
        munmap(map, len);
    return rc ? ak_wrap(err, "%s", path) : 0;
}
