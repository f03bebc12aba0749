/* tok_model.c - the tokenizer models: vocabulary index, BPE merges with a
 * heap (O(n log n) per word), a cache of pre-token results, WordPiece. */
#include "tok_internal.h"
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, then a final mix so the low bits spread. */
uint64_t tk_hash(const uint8_t *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

int tk_vocab_init(tk_vocab *v, size_t n)
{
    memset(v, 0, sizeof *v);
    v->tok = calloc(n ? n : 1, sizeof *v->tok);
    v->len = calloc(n ? n : 1, sizeof *v->len);
    v->n = n;
    return v->tok && v->len ? 0 : -1;
}

int tk_vocab_set(tk_vocab *v, int32_t id, const uint8_t *s, size_t n)
{
    if (id < 0 || (size_t)id >= v->n || n > UINT32_MAX)
        return -1;
    uint8_t *c = malloc(n + 1);
    if (!c)
        return -1;
    memcpy(c, s, n);
    c[n] = 0;
    free(v->tok[id]);
    v->tok[id] = c;
    v->len[id] = (uint32_t)n;
    return 0;
}

/* Builds the string -> id index.  A string held by several ids (a
 * byte-level vocabulary entry that is not byte-level text is kept as it is
 * and may equal another's bytes) goes to the entry not marked second, then
 * the lowest id. */
/* A slot holds the key's high hash bits and the id, so most probes that
 * miss need not touch the string: (hash >> 32) << 32 | id; all ones = empty. */
#define SLOT_EMPTY UINT64_MAX
#define SLOT_ID(x) ((int32_t)(uint32_t)(x))
#define SLOT_TAG(h) ((h) >> 32 << 32)

int tk_vocab_index(tk_vocab *v)
{
    size_t cap = 16;
    while (cap < v->n * 2 + 16)
        cap <<= 1;
    free(v->slot);
    v->slot = malloc(cap * sizeof *v->slot);
    if (!v->slot)
        return -1;
    memset(v->slot, 0xff, cap * sizeof *v->slot);
    v->mask = cap - 1;
    for (size_t k = 0; k < 2 * v->n; k++) {
        size_t id = k % v->n;
        if (!v->tok[id] || (v->second && v->second[id]) != (k >= v->n))
            continue;
        uint64_t h = tk_hash(v->tok[id], v->len[id]);
        size_t i = h & v->mask;
        for (;; i = (i + 1) & v->mask) {
            uint64_t x = v->slot[i];
            if (x == SLOT_EMPTY) {
                v->slot[i] = SLOT_TAG(h) | (uint32_t)id;
                break;
            }
            int32_t o = SLOT_ID(x);
            if (SLOT_TAG(x) == SLOT_TAG(h) && v->len[o] == v->len[id] && !memcmp(v->tok[o], v->tok[id], v->len[id])) {
                if (v->last_wins)
                    v->slot[i] = SLOT_TAG(h) | (uint32_t)id;
                break;
            }
        }
    }
    return 0;
}

int32_t tk_vocab_find(const tk_vocab *v, const uint8_t *s, size_t n)
{
    if (!v->slot)
        return -1;
    uint64_t h = tk_hash(s, n);
    size_t i = h & v->mask;
    for (;; i = (i + 1) & v->mask) {
        uint64_t x = v->slot[i];
        if (x == SLOT_EMPTY)
            return -1;
        int32_t o = SLOT_ID(x);
        if (SLOT_TAG(x) == SLOT_TAG(h) && v->len[o] == n && !memcmp(v->tok[o], s, n))
            return o;
    }
}

void tk_vocab_free(tk_vocab *v)
{
    if (v->tok)
        for (size_t i = 0; i < v->n; i++)
            free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->slot);
    free(v->second);
    memset(v, 0, sizeof *v);
}

/* ---- merges --------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

int tk_merges_init(tk_merges *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 16)
        cap <<= 1;
    m->key = malloc(cap * sizeof *m->key);
    m->rank = malloc(cap * sizeof *m->rank);
    m->id = malloc(cap * sizeof *m->id);
    if (!m->key || !m->rank || !m->id)
        return -1;
    memset(m->key, 0xff, cap * sizeof *m->key); /* all-ones key = empty */
    m->mask = cap - 1;
    m->n = 0;
    return 0;
}

/* A pair listed twice keeps the later line, as HF's map does. */
int tk_merges_add(tk_merges *m, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = mix64(k) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        if (m->key[i] == UINT64_MAX) {
            if (m->n * 2 + 2 > m->mask)
                return -1;
            m->key[i] = k;
            m->n++;
            break;
        }
        if (m->key[i] == k)
            break;
    }
    m->rank[i] = rank;
    m->id[i] = id;
    return 0;
}

static inline int merges_get(const tk_merges *m, int32_t a, int32_t b, int32_t *rank, int32_t *id)
{
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = mix64(k) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        if (m->key[i] == k) {
            *rank = m->rank[i];
            *id = m->id[i];
            return 1;
        }
        if (m->key[i] == UINT64_MAX)
            return 0;
    }
}

void tk_merges_free(tk_merges *m)
{
    free(m->key);
    free(m->rank);
    free(m->id);
    memset(m, 0, sizeof *m);
}

/* ---- encoding output -------------------------------------------------------- */

int ak_encoding_push(ak_encoding *enc, int32_t id, int64_t s, int64_t e, int special, int32_t type)
{
    if (enc->n == enc->cap) {
        /* the four arrays grow alike from the one cap; a failure leaves the
         * ones already grown larger than cap says, which is harmless */
        size_t need = enc->n + 1, c1 = enc->cap, c2 = enc->cap, c3 = enc->cap, c4 = enc->cap;
        if (ak_grow((void **)&enc->ids, &c1, need, sizeof *enc->ids) ||
            ak_grow((void **)&enc->offsets, &c2, need, 2 * sizeof *enc->offsets) ||
            ak_grow((void **)&enc->special, &c3, need, sizeof *enc->special) ||
            ak_grow((void **)&enc->type_ids, &c4, need, sizeof *enc->type_ids))
            return AK_ENOMEM;
        enc->cap = c1;
    }
    enc->ids[enc->n] = id;
    enc->offsets[2 * enc->n] = s;
    enc->offsets[2 * enc->n + 1] = e;
    enc->special[enc->n] = (uint8_t)special;
    enc->type_ids[enc->n] = type;
    enc->n++;
    return 0;
}

/* ---- cache ------------------------------------------------------------------ */

#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_KEY 256

void tk_cache_free(tk_cache *c)
{
    free(c->hash);
    free(c->koff);
    free(c->klen);
    free(c->voff);
    free(c->vlen);
    free(c->keys);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

static void cache_reset(tk_cache *c)
{
    if (c->hash)
        memset(c->hash, 0, (c->mask + 1) * sizeof *c->hash);
    c->used = c->keys_n = c->vals_n = 0;
}

static int cache_init(tk_cache *c)
{
    size_t n = CACHE_SLOTS;
    c->hash = calloc(n, sizeof *c->hash);
    c->koff = malloc(n * sizeof *c->koff);
    c->klen = malloc(n * sizeof *c->klen);
    c->voff = malloc(n * sizeof *c->voff);
    c->vlen = malloc(n * sizeof *c->vlen);
    c->keys_cap = n * 16;
    c->vals_cap = n * 12;
    c->keys = malloc(c->keys_cap);
    c->vals = malloc(c->vals_cap * sizeof *c->vals);
    c->mask = n - 1;
    if (!c->hash || !c->koff || !c->klen || !c->voff || !c->vlen || !c->keys || !c->vals) {
        tk_cache_free(c);
        return -1;
    }
    return 0;
}

/* Returns the slot holding key, or the empty slot where it would go. */
static size_t cache_slot(const tk_cache *c, const uint8_t *k, size_t n, uint64_t h)
{
    size_t i = h & c->mask;
    for (;; i = (i + 1) & c->mask) {
        if (!c->hash[i])
            return i;
        if (c->hash[i] == h && c->klen[i] == n && !memcmp(c->keys + c->koff[i], k, n))
            return i;
    }
}

/* ---- BPE -------------------------------------------------------------------- */

typedef struct sym { int32_t id, prev, next; uint32_t s, e; } sym;
typedef struct hent { int32_t rank, pos, id; } hent;

static inline int hless(const hent *a, const hent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}
static void hpush(hent *h, size_t *n, hent x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hless(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}
static hent hpop(hent *h, size_t *n)
{
    hent top = h[0], x = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, c = i;
        const hent *best = &x;
        if (l < m && hless(&h[l], best)) { c = l; best = &h[l]; }
        if (r < m && hless(&h[r], best)) c = r;
        if (c == i)
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = x;
    return top;
}

static int utf8_len(uint8_t c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static void *scratch(ak_tokenizer *tk, size_t bytes)
{
    if (bytes > tk->scratch_cap) {
        void *p = realloc(tk->scratch, bytes);
        if (!p)
            return NULL;
        tk->scratch = p;
        tk->scratch_cap = bytes;
    }
    return tk->scratch;
}

/* The BPE of bytes w[0..n): triples (id, start, end) relative to w into
 * *out (count *nout).  Uses tk->scratch. */
static int bpe_run(ak_tokenizer *tk, const uint8_t *w, size_t n, int32_t **out, size_t *nout)
{
    size_t need;
    if (ak_mul_size(n, sizeof(sym) + 3 * sizeof(hent) + 3 * sizeof(int32_t), &need))
        return -1;
    char *base = scratch(tk, need + 64);
    if (!base)
        return -1;
    sym *S = (sym *)base;
    hent *H = (hent *)(S + n);
    int32_t *res = (int32_t *)(H + 3 * n);
    size_t ns = 0;

    if (tk->ignore_merges) {
        int32_t id = tk_vocab_find(&tk->vocab, w, n);
        if (id >= 0) {
            res[0] = id, res[1] = 0, res[2] = (int32_t)n;
            *out = res, *nout = 1;
            return 0;
        }
    }
    int prev_unk = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = tk->byte_level ? 1 : (size_t)utf8_len(w[i]);
        if (i + cl > n)
            cl = n - i;
        int32_t id = tk->byte_level ? tk->byte_tok[w[i]] : tk_vocab_find(&tk->vocab, w + i, cl);
        if (id >= 0) {
            S[ns++] = (sym){id, 0, 0, (uint32_t)i, (uint32_t)(i + cl)};
            prev_unk = 0;
        } else {
            int ok = tk->byte_fallback;
            for (size_t j = 0; ok && j < cl; j++)
                ok = tk->byte_tok[w[i + j]] >= 0;
            if (ok) {
                for (size_t j = 0; j < cl; j++)
                    S[ns++] = (sym){tk->byte_tok[w[i + j]], 0, 0, (uint32_t)i, (uint32_t)(i + cl)};
                prev_unk = 0;
            } else if (tk->unk_id >= 0) {
                if (tk->fuse_unk && prev_unk)
                    S[ns - 1].e = (uint32_t)(i + cl);
                else
                    S[ns++] = (sym){tk->unk_id, 0, 0, (uint32_t)i, (uint32_t)(i + cl)};
                prev_unk = 1;
            } /* no unknown token: the character is dropped, as in HF */
        }
        i += cl;
    }
    for (size_t i = 0; i < ns; i++) {
        S[i].prev = (int32_t)i - 1;
        S[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    }
    size_t nh = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        int32_t r, id;
        if (merges_get(&tk->merges, S[i].id, S[i + 1].id, &r, &id))
            hpush(H, &nh, (hent){r, (int32_t)i, id});
    }
    while (nh) {
        hent top = hpop(H, &nh);
        sym *a = &S[top.pos];
        if (a->e == a->s || a->next < 0)
            continue; /* merged away */
        sym *b = &S[a->next];
        int32_t r, id;
        if (!merges_get(&tk->merges, a->id, b->id, &r, &id) || id != top.id)
            continue; /* stale entry */
        a->id = id;
        a->e = b->e;
        b->e = b->s; /* dead */
        a->next = b->next;
        if (b->next >= 0)
            S[b->next].prev = top.pos;
        if (a->prev >= 0 && merges_get(&tk->merges, S[a->prev].id, a->id, &r, &id))
            hpush(H, &nh, (hent){r, a->prev, id});
        if (a->next >= 0 && merges_get(&tk->merges, a->id, S[a->next].id, &r, &id))
            hpush(H, &nh, (hent){r, top.pos, id});
    }
    size_t k = 0;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = S[i].next) { /* S[0] is never merged away */
        res[3 * k] = S[i].id;
        res[3 * k + 1] = (int32_t)S[i].s;
        res[3 * k + 2] = (int32_t)S[i].e;
        k++;
    }
    *out = res, *nout = k;
    return 0;
}

static int emit(ak_encoding *enc, const tk_norm *t, size_t s, const int32_t *r, size_t k,
                int64_t base)
{
    for (size_t i = 0; i < k; i++) {
        size_t a = s + (size_t)r[3 * i + 1], b = s + (size_t)r[3 * i + 2] - 1;
        if (ak_encoding_push(enc, r[3 * i], base + tk_al_start(t, a), base + tk_al_end(t, b), 0, 0))
            return -1;
    }
    return 0;
}

int tk_bpe_word(ak_tokenizer *tk, const tk_norm *t, size_t s, size_t e, ak_encoding *enc,
                int64_t base, ak_err *err)
{
    const uint8_t *w = t->b + s;
    size_t n = e - s;
    if (n == 0)
        return 0;
    if (n > INT32_MAX / 4)
        return ak_fail(err, AK_ENOMEM, "a pre-token of %zu bytes is too long", n);
    tk_cache *c = &tk->cache;
    uint64_t h = 0;
    size_t slot = 0;
    if (n <= CACHE_MAX_KEY) {
        if (!c->hash && cache_init(c))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        h = tk_hash(w, n) | 1;
        slot = cache_slot(c, w, n, h);
        if (c->hash[slot])
            return emit(enc, t, s, c->vals + c->voff[slot], c->vlen[slot], base)
                       ? ak_fail(err, AK_ENOMEM, "out of memory") : 0;
    }
    int32_t *r;
    size_t k;
    if (bpe_run(tk, w, n, &r, &k))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (emit(enc, t, s, r, k, base))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (h) {
        if (c->used * 2 > c->mask || c->keys_n + n > c->keys_cap || c->vals_n + 3 * k > c->vals_cap) {
            cache_reset(c);
            slot = cache_slot(c, w, n, h);
        }
        if (c->keys_n + n <= c->keys_cap && c->vals_n + 3 * k <= c->vals_cap) {
            c->hash[slot] = h;
            c->koff[slot] = (uint32_t)c->keys_n;
            c->klen[slot] = (uint32_t)n;
            memcpy(c->keys + c->keys_n, w, n);
            c->keys_n += n;
            c->voff[slot] = (uint32_t)c->vals_n;
            c->vlen[slot] = (uint32_t)k;
            memcpy(c->vals + c->vals_n, r, 3 * k * sizeof *r);
            c->vals_n += 3 * k;
            c->used++;
        }
    }
    return 0;
}

/* ---- WordPiece ---------------------------------------------------------------- */

int tk_wordpiece_word(ak_tokenizer *tk, const tk_norm *t, size_t s, size_t e, ak_encoding *enc,
                      int64_t base, ak_err *err)
{
    const uint8_t *w = t->b + s;
    size_t n = e - s, nchars = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        nchars += (w[i] & 0xC0) != 0x80;
    size_t mark = enc->n;
    if ((int64_t)nchars <= tk->wp_max_chars) {
        uint8_t *buf = scratch(tk, n + sizeof tk->wp_prefix + 1);
        if (!buf)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        size_t start = 0;
        int bad = 0;
        while (start < n) {
            size_t end = n;
            int32_t cur = -1;
            while (start < end) {
                size_t pl = start > 0 ? tk->wp_prefix_len : 0;
                memcpy(buf, tk->wp_prefix, pl);
                memcpy(buf + pl, w + start, end - start);
                cur = tk_vocab_find(&tk->vocab, buf, pl + end - start);
                if (cur >= 0)
                    break;
                do
                    end--;
                while (end > start && (w[end] & 0xC0) == 0x80);
            }
            if (cur < 0) {
                bad = 1;
                break;
            }
            if (ak_encoding_push(enc, cur, base + tk_al_start(t, s + start), base + tk_al_end(t, s + end - 1), 0, 0))
                return ak_fail(err, AK_ENOMEM, "out of memory");
            start = end;
        }
        if (!bad)
            return 0;
    }
    enc->n = mark;
    if (tk->unk_id < 0)
        return ak_fail(err, AK_EDATA, "a word is not in the WordPiece vocabulary and there is no unknown token");
    if (ak_encoding_push(enc, tk->unk_id, base + tk_al_start(t, s), base + tk_al_end(t, e - 1), 0, 0))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}
