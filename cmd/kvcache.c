/* kvcache - build, evict, save, load and continue from a causal model's
 * key/value cache: generate tokens, or score a continuation, under the
 * cache as it is (full or evicted). */
#include "stream/check.h"
#include "core/buf.h"
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/evict.h"
#include "attnkit/generate.h"
#include "attnkit/kvcache.h"
#include "attnkit/model.h"
#include "attnkit/protect.h"
#include "attnkit/tokenizer.h"
#include "core/tsv.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: kvcache [-m MODEL] [--load FILE [--extend]] [--save FILE [--compress]]\n"
           "               [--evict POLICY (--keep RATIO | --keep-tokens N)] [--sink N]\n"
           "               [--window W] [--protect first,last] [--protect-regex RE]\n"
           "               [--generate N [--temperature T] [--top-p P] [--seed S]]\n"
           "               [--stop IDS|none] [--gen-mass G] [--target FILE | --targets TSV]\n"
           "               [--fast] [-o FILE] [FILE...]\n"
           "Run each document's `tokens` through a causal model into a key/value cache (or\n"
           "take the cache --load reads), evict entries, save it, generate new tokens or\n"
           "score a continuation under it.  Documents pass through with what was done.\n"
           "  -m, --model MODEL      causal model (default: $ATTNKIT_MODEL, else\n"
           "                         SmolLM2-135M-Instruct)\n"
           "  -L, --load FILE        start from this cache file (formats/kvcache.md); with\n"
           "                         no --extend no stream is read: one document is written\n"
           "  -x, --extend           run each document's tokens on top of the loaded cache\n"
           "                         (a prompt computed once, reused for each document)\n"
           "  -s, --save FILE        write the cache (after eviction, before --target and\n"
           "                         --generate) to FILE atomically; one document only\n"
           "  -z, --compress         zlib the saved cache's sections\n"
           "  -e, --evict POLICY     per (layer, KV head): streaming (--sink first tokens\n"
           "                         and the most recent), h2o (half the free budget to the\n"
           "                         most recent, the rest by accumulated received mass),\n"
           "                         snapkv (the last --window tokens, the rest by the mass\n"
           "                         they give, max-pooled over 7 neighbours), random,\n"
           "                         first, last\n"
           "  -k, --keep RATIO       budget: this fraction of the tokens, per head\n"
           "  -n, --keep-tokens N    budget: N entries per head\n"
           "      --sink N           streaming's sink tokens (default 4)\n"
           "  -w, --window W         snapkv's observation window (default 32)\n"
           "  -P, --protect LIST     first,last: never evict the first / last block\n"
           "  -r, --protect-regex RE never evict tokens overlapping matches (repeatable)\n"
           "  -g, --generate N       decode up to N new tokens (greedy), stopping after a\n"
           "                         stop token; adds `generated` i32 [n]: decode\n"
           "                         --generated prints it\n"
           "  -T, --temperature T    sample at temperature T (0: greedy, the default)\n"
           "  -p, --top-p P          sample from the smallest set of mass >= P (default 1)\n"
           "  -S, --seed S           sampling seed (default 0)\n"
           "      --gen-mass G       with --generate: add attn.mass_gen f32 [L, H, T], the\n"
           "                         mass the queries of the first G generated tokens put\n"
           "                         on each prompt token (summed over them, per query\n"
           "                         head); meta gen_mass_rows: the queries used\n"
           "      --stop IDS|none    stop ids, comma-separated (default: the vocabulary's\n"
           "                         <|im_end|>, <end_of_turn>, <|eot_id|>, <|endoftext|>,\n"
           "                         <eos>, </s>)\n"
           "  -t, --target FILE      log-likelihood of FILE's text (tokenized with no\n"
           "                         special tokens) as the continuation: meta\n"
           "                         target_logprob (nats), target_tokens, tensor\n"
           "                         target.logprob f32 [n]\n"
           "      --targets TSV      the same with a target per document: lines id<TAB>text\n"
           "                         (\\n, \\t, \\\\ escapes); a document's line has its id,\n"
           "                         else its base name without extension\n"
           "  -d, --device DEV       cpu, cuda or auto (default $ATTNKIT_DEVICE, else auto)\n"
           "      --fast             generation's products (up to 8 tokens) with 8-bit\n"
           "                         activations and integer dots on the quantized GGUF\n"
           "                         weights, as llama.cpp does: faster, not exact (logits\n"
           "                         move by about 1e-2, see bench/RESULTS.md)\n"
           "  -o, --output FILE      write the stream to FILE atomically (default stdout)\n"
           "  -h, --help             this help\n"
           "Exit status: 0 ok, 64 usage (a budget below the protected tokens too), 65 bad\n"
           "input (a cache from another model, a corrupt cache file), 66 cannot open,\n"
           "70 out of memory, 73 cannot create the output, 74 I/O error, 78 unsupported\n"
           "model (not causal, no language-model head).\n");
}


enum { MAXPAT = 16, MAXSTOP = 32 };

struct ctx {
    ak_model *m;
    ak_device dev;
    ak_tokenizer *tk;            /* NULL when the model has none */
    const char *load, *save;
    int extend, compress, ndocs;
    ak_evict_opts ev;            /* --evict and its budget (keep_ratio, keep_tokens < 0:
                                    not given), --sink, --window */
    int protect_first, protect_last;
    const char *regexes[MAXPAT];
    int nregexes;
    int generate;
    double temperature, top_p;
    uint64_t seed;               /* --seed */
    ak_sampler sampler;          /* its state is --evict random's too */
    int32_t stop[MAXSTOP];
    int nstop;
    int32_t *target;
    size_t ntarget;
    int gen_mass;                /* --gen-mass G: rows of attn.mass_gen; 0: none */
    struct target *targets;      /* --targets FILE, sorted by id */
    size_t ntargets;
    void *save_data;             /* --save: the file's bytes, written when all has succeeded */
    size_t save_len;
};

enum { MAX_GENERATE = 1 << 16 };

/* One line of --targets: a document id and its continuation's tokens. */
struct target {
    char *id;
    int32_t *ids;
    size_t n;
};

/* ---- eviction ---- */

/* protect[n_tokens]: the document's protected spans (its tokens at
 * positions base ..), or NULL. */
static int protect_marks(struct ctx *c, ak_doc *d, int base, int n_tokens, uint8_t **out,
                         ak_err *err)
{
    *out = NULL;
    if (!c->protect_first && !c->protect_last && !c->nregexes)
        return 0;
    if (!d)
        return ak_fail(err, AK_EUSAGE, "--protect and --protect-regex need a document (--extend)");
    ak_tensor *tok = ak_doc_get(d, "tokens");
    int64_t T = tok->shape[0];
    uint8_t *p = calloc((size_t)n_tokens + 1, 1);
    if (!p)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    *out = p;
    if (c->protect_first || c->protect_last) {
        ak_tensor *seg = ak_doc_get(d, "segments");
        if (!seg || seg->dtype != AK_I32 || seg->ndim != 1 || seg->shape[0] != T)
            return ak_fail(err, AK_EDATA, "document '%s' has no segments i32 [%lld] (needed by "
                           "--protect)", d->id, (long long)T);
        if (c->protect_first)
            ak_protect_block_end(ak_tensor_i32(seg), T, 0, p + base);
        if (c->protect_last)
            ak_protect_block_end(ak_tensor_i32(seg), T, 1, p + base);
    }
    if (c->nregexes) {
        ak_tensor *text = ak_doc_need(d, "text", AK_U8, 1, err);
        ak_tensor *off = text ? ak_doc_need(d, "offsets", AK_I64, 2, err) : NULL;
        if (!off)
            return ak_wrap(err, "--protect-regex");
        if (off->shape[0] != T || off->shape[1] != 2)
            return ak_fail(err, AK_EDATA, "doc %s: offsets do not match tokens", d->id);
        for (int k = 0; k < c->nregexes; k++) {
            int rc = ak_protect_regex(ak_tensor_u8(text), text->nbytes, ak_tensor_i64(off), T,
                                      c->regexes[k], p + base, err);
            if (rc)
                return ak_wrap(err, "doc %s", d->id);
        }
    }
    return 0;
}

static int evict(struct ctx *c, ak_kvcache *kc, ak_doc *d, int base, ak_err *err)
{
    if (c->ev.policy == AK_EVICT_NONE)
        return 0;
    uint8_t *protect = NULL;
    int rc = protect_marks(c, d, base, kc->n_tokens, &protect, err);
    ak_evict_opts o = c->ev;
    o.protect = protect;
    o.rng = &c->sampler.rng;
    if (!rc)
        rc = ak_kvcache_evict(kc, &o, err);
    free(protect);
    return rc;
}

/* ---- decoding ---- */

static int put_tensor(ak_doc *d, const char *name, ak_dtype t, int64_t n, const void *data,
                      ak_err *err)
{
    ak_tensor *x = ak_tensor_new(name, t, 1, &n, err);
    if (!x)
        return err->code ? err->code : AK_ENOMEM;
    if (n)
        memcpy(x->data, data, (size_t)n * ak_dtype_size(t));
    return ak_doc_put(d, x, err);
}

/* Log-likelihood of the target after the cache (which is left as it was). */
static int score_target(struct ctx *c, ak_kvcache *kc, const float *last_logits,
                        const int32_t *target, size_t n, ak_doc *d, ak_err *err)
{
    float *lp = malloc((n + 1) * sizeof(float));
    double total;
    int rc = lp ? ak_score_continuation(c->m, c->dev, kc, last_logits, target, n, lp, &total, err)
                : ak_fail(err, AK_ENOMEM, "out of memory for a target of %zu tokens", n);
    if (!rc)
        rc = put_tensor(d, "target.logprob", AK_F32, (int64_t)n, lp, err);
    if (!rc && (ak_meta_set_float(&d->meta, "target_logprob", total) ||
                ak_meta_set_int(&d->meta, "target_tokens", (int64_t)n)))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
    free(lp);
    return rc;
}

/* --generate N: `generated`; with --gen-mass G, attn.mass_gen [L, H, T]
 * over the document's T prompt tokens (cache positions base ..). */
static int generate(struct ctx *c, ak_kvcache *kc, const float *last_logits, ak_doc *d, int base,
                    ak_err *err)
{
    ak_gen_opts o = {c->generate, c->stop, c->nstop, &c->sampler, c->gen_mass, base};
    ak_gen_out g;
    int64_t T = kc->n_tokens - base;
    int rc = ak_generate(c->m, c->dev, kc, last_logits, &o, &g, err);
    if (rc)
        return rc;
    if (g.stopped_at_context) {
        fprintf(stderr, "kvcache: doc %s: generation stopped after %d tokens at the model's "
                "context of %d positions\n", d->id, g.n, c->m->max_positions);
        if (ak_meta_set_str(&d->meta, "gen_stopped", "context"))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = put_tensor(d, "generated", AK_I32, g.n, g.ids, err);
    if (!rc && c->gen_mass > 0) {
        int64_t shape[3] = {c->m->n_layers, c->m->n_heads, T};
        ak_tensor *mg = ak_tensor_new("attn.mass_gen", AK_F32, 3, shape, err);
        if (!mg)
            rc = err->code ? err->code : AK_ENOMEM;
        else {
            memcpy(mg->data, g.mass, mg->nbytes);
            rc = ak_doc_put(d, mg, err);
        }
        if (!rc && ak_meta_set_int(&d->meta, "gen_mass_rows", g.mass_rows))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
    }
    ak_gen_out_free(&g);
    return rc;
}

/* --targets: the line whose id is the document's id, else its base name
 * without the extension ("dir/q7.txt" finds "q7"). */
static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct target *)a)->id, ((const struct target *)b)->id);
}

static const struct target *lookup(const struct ctx *c, const char *id)
{
    struct target key = {.id = (char *)id};
    return bsearch(&key, c->targets, c->ntargets, sizeof key, by_id);
}

static int find_target(const struct ctx *c, const char *id, const int32_t **ids, size_t *n,
                       ak_err *err)
{
    const struct target *t = lookup(c, id);
    if (!t) {
        const char *base = strrchr(id, '/');
        base = base ? base + 1 : id;
        char stem[1024];
        snprintf(stem, sizeof stem, "%s", base);
        char *dot = strrchr(stem, '.');
        if (dot && dot != stem)
            *dot = 0;
        t = lookup(c, stem);
    }
    if (!t)
        return ak_fail(err, AK_EDATA, "--targets: no line for document '%s'", id);
    *ids = t->ids;
    *n = t->n;
    return 0;
}

/* Reads --targets FILE: lines id<TAB>text, each text tokenized with no
 * special tokens; an empty line is skipped. */
static void load_targets(struct ctx *c, const char *path)
{
    ak_err err = {0};
    char *data;
    size_t len;
    if (ak_read_file(path, (size_t)1 << 30, &data, &len, &err))
        ak_die(&err);
    size_t cap = 0, lineno = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        lineno++;
        if (le > p && le[-1] == '\r')
            le[-1] = 0, le--;
        *le = 0;
        if (le > p) {
            char *tab = memchr(p, '\t', (size_t)(le - p));
            if (!tab || tab == p)
                ak_dief(AK_EDATA, "--targets: %s:%zu: expected id<TAB>text", path, lineno);
            *tab = 0;
            long n = ak_tsv_unescape(tab + 1, (size_t)(le - tab - 1));
            if (n < 0)
                ak_dief(AK_EDATA, "--targets: %s:%zu: a bad escape (\\n, \\t, \\r, \\\\, \\xHH)",
                        path, lineno);
            ak_encoding enc = {0};
            if (ak_utf8_check(tab + 1, (size_t)n, &err) ||
                ak_tokenizer_encode(c->tk, tab + 1, (size_t)n, 0, &enc, &err))
                ak_dief(err.code, "--targets: %s:%zu: %s", path, lineno, err.msg);
            if (enc.n == 0)
                ak_dief(AK_EDATA, "--targets: %s:%zu: '%s' holds no tokens", path, lineno, p);
            if (ak_grow((void **)&c->targets, &cap, c->ntargets + 1, sizeof *c->targets))
                ak_dief(AK_ENOMEM, "out of memory");
            struct target *t = &c->targets[c->ntargets++];
            t->id = strdup(p);
            t->ids = malloc(enc.n * sizeof *t->ids);
            if (!t->id || !t->ids)
                ak_dief(AK_ENOMEM, "out of memory");
            memcpy(t->ids, enc.ids, enc.n * sizeof *t->ids);
            t->n = enc.n;
            ak_encoding_free(&enc);
        }
        p = nl ? nl + 1 : end;
    }
    free(data);
    if (!c->ntargets)
        ak_dief(AK_EDATA, "--targets: %s holds no lines", path);
    qsort(c->targets, c->ntargets, sizeof *c->targets, by_id);
    for (size_t i = 1; i < c->ntargets; i++)
        if (!strcmp(c->targets[i - 1].id, c->targets[i].id))
            ak_dief(AK_EDATA, "--targets: %s: id '%s' appears twice", path, c->targets[i].id);
}

/* What is done to every cache: evict, save, score, generate; the counts
 * into d's metadata. */
static int process(struct ctx *c, ak_kvcache *kc, const float *last_logits, ak_doc *d, int base,
                   ak_err *err)
{
    int rc = evict(c, kc, d, base, err);
    if (rc)
        return ak_wrap(err, "doc %s", d->id);
    if (c->save && (rc = ak_kvcache_encode(kc, c->compress, &c->save_data, &c->save_len, err)))
        return rc;
    const int32_t *target = c->target;
    size_t ntarget = c->ntarget;
    if (c->targets && (rc = find_target(c, d->id, &target, &ntarget, err)))
        return rc;
    if (target && (rc = score_target(c, kc, last_logits, target, ntarget, d, err)))
        return ak_wrap(err, "doc %s", d->id);
    size_t full = (size_t)kc->n_layers * kc->n_kv_heads * (size_t)kc->n_tokens;
    if (ak_meta_set_int(&d->meta, "kv_tokens", kc->n_tokens) ||
        ak_meta_set_int(&d->meta, "kv_entries", (int64_t)ak_kvcache_entries(kc)) ||
        ak_meta_set_int(&d->meta, "kv_entries_full", (int64_t)full) ||
        ak_meta_set_str(&d->meta, "kv_policy", ak_evict_policy_name(c->ev.policy)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (c->generate > 0 && (rc = generate(c, kc, last_logits, d, base, err)))
        return ak_wrap(err, "doc %s", d->id);
    return 0;
}

/* A fresh cache keeps the document's text, offsets and segments, so that a
 * saved one can be evicted with --protect and --protect-regex after
 * --load.  A document without them (tokenize --from-ids) leaves none. */
static int keep_text(ak_kvcache *kc, const ak_doc *d, ak_err *err)
{
    ak_tensor *tx = ak_doc_get(d, "text"), *off = ak_doc_get(d, "offsets");
    ak_tensor *seg = ak_doc_get(d, "segments");
    int64_t T = kc->n_tokens;
    if (!tx || tx->dtype != AK_U8 || !off || off->dtype != AK_I64 || off->ndim != 2 ||
        off->shape[0] != T || off->shape[1] != 2)
        return 0;
    if (seg && (seg->dtype != AK_I32 || seg->ndim != 1 || seg->shape[0] != T))
        seg = NULL;
    int rc = ak_kvcache_set_text(kc, (const char *)tx->data, tx->nbytes, ak_tensor_i64(off),
                                 seg ? ak_tensor_i32(seg) : NULL, err);
    return rc ? ak_wrap(err, "doc %s", d->id) : 0;
}

/* The loaded cache's text as the document's tensors, when it has one. */
static int put_text(const ak_kvcache *kc, ak_doc *d, ak_err *err)
{
    if (!kc->text || kc->n_text != kc->n_tokens)
        return 0;
    int64_t T = kc->n_tokens, len = (int64_t)kc->text_len, os[2] = {T, 2};
    ak_tensor *off = ak_tensor_new("offsets", AK_I64, 2, os, err);
    if (!off)
        return err->code ? err->code : AK_ENOMEM;
    memcpy(off->data, kc->offsets, (size_t)T * 2 * sizeof(int64_t));
    int rc = ak_doc_put(d, off, err);
    if (!rc)
        rc = put_tensor(d, "text", AK_U8, len, kc->text, err);
    if (!rc && kc->segments)
        rc = put_tensor(d, "segments", AK_I32, T, kc->segments, err);
    return rc;
}

static int load_cache(struct ctx *c, ak_kvcache **kc, ak_err *err)
{
    int rc = ak_kvcache_load(kc, c->load, err);
    if (!rc && (rc = ak_kvcache_check_model(*kc, c->m, err))) {
        ak_wrap(err, "%s", c->load);
        ak_kvcache_free(*kc);
        *kc = NULL;
    }
    return rc;
}

static int on_header(void *vctx, ak_header *h, ak_err *err)
{
    struct ctx *c = vctx;
    int rc = ak_model_check_identity(c->m, &h->model, err);
    return rc ? rc : ak_model_identity(c->m, &h->model, err);
}

static int on_doc(void *vctx, ak_doc *d, ak_err *err)
{
    struct ctx *c = vctx;
    const ak_model *m = c->m;
    if (c->save && ++c->ndocs > 1)
        return ak_fail(err, AK_EUSAGE, "--save: more than one document (doc %s)", d->id);
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err);
    if (!tok)
        return err->code ? err->code : AK_EDATA;
    int64_t T = tok->shape[0];
    if (T < 1 && !c->extend)
        return ak_fail(err, AK_EDATA, "doc %s: no tokens", d->id);
    if (T > (1 << 24))
        return ak_fail(err, AK_EDATA, "doc %s: too many tokens (%lld)", d->id, (long long)T);
    ak_kvcache *kc = NULL;
    int rc = c->load ? load_cache(c, &kc, err) : ak_kvcache_new(&kc, m, err);
    if (rc)
        return rc;
    if (c->load && T < 1) {
        ak_kvcache_free(kc);
        return ak_fail(err, AK_EDATA, "doc %s: no tokens to extend the cache with", d->id);
    }
    int base = kc->n_tokens;
    if ((int64_t)base + T > m->max_positions) {
        rc = base ? ak_fail(err, AK_EDATA, "doc %s: %lld tokens after the %d cached ones pass the "
                            "model's context of %d positions (attend windows long documents; "
                            "a cache cannot)", d->id, (long long)T, base, m->max_positions)
                  : ak_fail(err, AK_EDATA, "doc %s: %lld tokens pass the model's context of %d "
                            "positions (attend windows long documents; a cache cannot)", d->id,
                            (long long)T, m->max_positions);
        ak_kvcache_free(kc);
        return rc;
    }
    float *hidden = malloc((size_t)T * m->hidden_size * sizeof(float));
    float *logits = malloc((size_t)m->vocab_size * sizeof(float));
    if (!hidden || !logits) {
        rc = ak_fail(err, AK_ENOMEM, "doc %s: out of memory for %lld tokens", d->id, (long long)T);
        goto out;
    }
    /* the votes of the last --window queries are always kept, so that a
     * saved cache can be evicted by snapkv after --load */
    ak_forward_out o = {.logits = logits, .last_w = c->ev.window};
    if ((rc = ak_kvcache_forward(m, c->dev, kc, ak_tensor_i32(tok), (int)T, hidden, &o, err))) {
        ak_wrap(err, "doc %s", d->id);
        goto out;
    }
    if (ak_first_nonfinite(logits, (size_t)m->vocab_size) < (size_t)m->vocab_size) {
        rc = ak_fail(err, AK_EDATA, "doc %s: the last token's logits are not finite (NaN or Inf "
                     "in the model's weights)", d->id);
        goto out;
    }
    if (base == 0 && (rc = keep_text(kc, d, err)))
        goto out;
    rc = process(c, kc, logits, d, base, err);
out:
    free(hidden);
    free(logits);
    ak_kvcache_free(kc);
    return rc;
}

/* --load without --extend: the cache alone, written as one document. */
static int run_loaded(struct ctx *c, int argc, char **argv, const char *output, ak_err *err)
{
    ak_kvcache *kc = NULL;
    ak_header *h = NULL;
    ak_doc *d = NULL;
    ak_writer *w = NULL;
    ak_output out;
    int opened = 0;
    float *logits = NULL, *hidden = NULL;
    int rc = load_cache(c, &kc, err);
    if (rc)
        return rc;
    if (kc->n_tokens < 1) {
        rc = ak_fail(err, AK_EDATA, "%s: the cache covers no tokens", c->load);
        goto out;
    }
    logits = malloc((size_t)c->m->vocab_size * sizeof(float));
    hidden = malloc((size_t)c->m->hidden_size * sizeof(float));
    h = ak_header_new();
    d = ak_doc_new("kvcache");
    if (!logits || !hidden || !h || !d) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    if ((c->generate > 0 || c->target)) {
        /* the last token's logits: that token run again on the rest */
        int32_t last = kc->ids[kc->n_tokens - 1];
        ak_kvcache_truncate(kc, kc->n_tokens - 1);
        if ((rc = ak_generate_step(c->m, c->dev, kc, last, hidden, logits, err)))
            goto out;
    }
    if ((rc = put_tensor(d, "tokens", AK_I32, kc->n_tokens, kc->ids, err)) ||
        (rc = put_text(kc, d, err)) || (rc = ak_model_identity(c->m, &h->model, err)))
        goto out;
    if (ak_header_add_stage(h, "kvcache", argc, argv)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    /* the document is the cache's own tokens: protected spans from 0 */
    if ((rc = process(c, kc, logits, d, 0, err)))
        goto out;
    if ((rc = ak_output_open(&out, output, NULL, 0, err)))
        goto out;
    opened = 1;
    if ((rc = ak_writer_open_fd(&w, out.fd, out.name, err)) ||
        (ak_cli_writer(w), rc = ak_write_header(w, h, err)) || (rc = ak_write_doc(w, d, err)) ||
        (rc = ak_write_end(w, 1, err)) || (rc = ak_writer_close(w, err)))
        goto out;
    w = NULL;
    opened = 0;
    rc = ak_output_commit(&out, err);
out:
    if (w) {
        ak_err e2;
        ak_writer_close(w, &e2);
    }
    if (opened)
        ak_output_abort(&out);
    free(logits);
    free(hidden);
    ak_header_free(h);
    ak_doc_free(d);
    ak_kvcache_free(kc);
    return rc;
}

/* --stop IDS: every id within the model's vocabulary (an id no token has
 * would never stop anything). */
static void parse_stop(struct ctx *c, const char *s)
{
    c->nstop = 0;
    if (!strcmp(s, "none"))
        return;
    char *buf = strdup(s), *save = NULL;
    if (!buf)
        ak_dief(AK_ENOMEM, "out of memory");
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (c->nstop == MAXSTOP)
            ak_usage_error("--stop: more than %d ids", MAXSTOP);
        long id = ak_parse_long("--stop", t, 0, INT32_MAX);
        if (id >= c->m->vocab_size)
            ak_usage_error("--stop: id %ld is outside the vocabulary of %d tokens of model %s", id,
                           c->m->vocab_size, c->m->name);
        c->stop[c->nstop++] = (int32_t)id;
    }
    if (!c->nstop)
        ak_usage_error("--stop: no ids in '%s' (ids, comma-separated, or none)", s);
    free(buf);
}

/* The options that are not the context's own. */
struct args {
    const char *model, *output, *device, *target, *stop, *targets;
    int fast;
};

static void parse_options(int argc, char **argv, struct ctx *c, struct args *a)
{
    enum { O_SINK = 256, O_STOP, O_GENMASS, O_TARGETS, O_FAST };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},       {"load", required_argument, 0, 'L'},
        {"extend", no_argument, 0, 'x'},            {"save", required_argument, 0, 's'},
        {"compress", no_argument, 0, 'z'},          {"evict", required_argument, 0, 'e'},
        {"keep", required_argument, 0, 'k'},        {"keep-tokens", required_argument, 0, 'n'},
        {"sink", required_argument, 0, O_SINK},     {"window", required_argument, 0, 'w'},
        {"protect", required_argument, 0, 'P'},     {"protect-regex", required_argument, 0, 'r'},
        {"generate", required_argument, 0, 'g'},    {"temperature", required_argument, 0, 'T'},
        {"top-p", required_argument, 0, 'p'},       {"seed", required_argument, 0, 'S'},
        {"stop", required_argument, 0, O_STOP},     {"target", required_argument, 0, 't'},
        {"gen-mass", required_argument, 0, O_GENMASS}, {"targets", required_argument, 0, O_TARGETS},
        {"device", required_argument, 0, 'd'},      {"output", required_argument, 0, 'o'},
        {"fast", no_argument, 0, O_FAST},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:L:xs:ze:k:n:w:P:r:g:T:p:S:t:d:o:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': a->model = optarg; break;
        case 'L': c->load = optarg; break;
        case 'x': c->extend = 1; break;
        case 's':
            if (!*optarg)
                ak_usage_error("--save: empty file name");
            c->save = optarg;
            break;
        case 'z': c->compress = 1; break;
        case 'e': {
            if (ak_evict_policy_from_name(optarg, &c->ev.policy))
                ak_usage_error("--evict: unknown policy '%s' (streaming, h2o, snapkv, random, "
                               "first, last)", optarg);
            break;
        }
        case 'k': c->ev.keep_ratio = ak_parse_double("--keep", optarg, 0, 1); break;
        case 'n': c->ev.keep_tokens = ak_parse_long("--keep-tokens", optarg, 0, INT32_MAX); break;
        case O_SINK: c->ev.sink = (int)ak_parse_long("--sink", optarg, 0, INT32_MAX); break;
        case 'w': c->ev.window = (int)ak_parse_long("--window", optarg, 1, 1 << 24); break;
        case 'P': {
            char buf[64], *save = NULL;
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!strcmp(t, "first"))
                    c->protect_first = 1;
                else if (!strcmp(t, "last"))
                    c->protect_last = 1;
                else
                    ak_usage_error("--protect: unknown span '%s' (first, last)", t);
            }
            break;
        }
        case 'r':
            if (c->nregexes == MAXPAT)
                ak_usage_error("--protect-regex: more than %d patterns", MAXPAT);
            c->regexes[c->nregexes++] = optarg;
            break;
        case 'g': c->generate = (int)ak_parse_long("--generate", optarg, 0, MAX_GENERATE); break;
        case 'T': c->temperature = ak_parse_double("--temperature", optarg, 0, 1e6); break;
        case 'p': c->top_p = ak_parse_double("--top-p", optarg, 1e-9, 1); break;
        case 'S': c->seed = (uint64_t)ak_parse_long("--seed", optarg, 0, INT64_MAX); break;
        case O_STOP: a->stop = optarg; break;
        case 't': a->target = optarg; break;
        case O_TARGETS: a->targets = optarg; break;
        case O_GENMASS: c->gen_mass = (int)ak_parse_long("--gen-mass", optarg, 1, 1 << 20); break;
        case 'd': a->device = optarg; break;
        case O_FAST: a->fast = 1; break;
        case 'o': a->output = optarg; break;
        case 'h': usage(); exit(0);
        default: ak_bad_option(argv);
        }
    }
}

/* The options' combinations, refused before anything is loaded. */
static void check_options(const struct ctx *c, const struct args *a, int argc, char **argv)
{
    if (c->compress && !c->save)
        ak_usage_error("--compress needs --save FILE (it compresses the saved cache)");
    if (a->output && !*a->output)
        ak_usage_error("-o: empty file name");
    if (c->extend && !c->load)
        ak_usage_error("--extend needs --load FILE");
    if (c->ev.policy != AK_EVICT_NONE && (c->ev.keep_ratio < 0) == (c->ev.keep_tokens < 0))
        ak_usage_error("--evict needs one budget: --keep RATIO or --keep-tokens N");
    if (c->ev.policy == AK_EVICT_NONE && (c->ev.keep_ratio >= 0 || c->ev.keep_tokens >= 0))
        ak_usage_error("--keep and --keep-tokens need --evict POLICY");
    if (a->target && a->targets)
        ak_usage_error("--target and --targets: one of them");
    if (c->gen_mass && !c->generate)
        ak_usage_error("--gen-mass needs --generate N");
    if (c->gen_mass > c->generate)
        ak_usage_error("--gen-mass %d: more than the %d tokens of --generate", c->gen_mass,
                       c->generate);
    if (c->load && !c->extend && (c->gen_mass || a->targets))
        ak_usage_error("%s needs a document's prompt: --load with --extend",
                       a->targets ? "--targets" : "--gen-mass");
    if (c->load && !c->extend && optind < argc)
        ak_usage_error("--load without --extend reads no stream (%s given)", argv[optind]);
}

/* --target FILE: the continuation's tokens. */
static void load_target(struct ctx *c, const char *target, ak_err *err)
{
    if (!c->tk)
        ak_dief(AK_ECONFIG, "--target: model %s has no tokenizer", c->m->name);
    char *text;
    size_t len;
    ak_encoding enc = {0};
    if (ak_read_file(target, (size_t)1 << 30, &text, &len, err))
        ak_die(err);
    /* a file's one final newline ends its last line, it is not part of
     * the continuation (as llama.cpp's -f reads a prompt) */
    if (len > 0 && text[len - 1] == '\n')
        len -= len > 1 && text[len - 2] == '\r' ? 2 : 1;
    if (ak_utf8_check(text, len, err))
        ak_dief(AK_EDATA, "--target: %s: %s", target, err->msg);
    if (ak_tokenizer_encode(c->tk, text, len, 0, &enc, err))
        ak_die(err);
    free(text);
    if (enc.n == 0)
        ak_dief(AK_EDATA, "--target: %s holds no tokens", target);
    c->target = malloc(enc.n * sizeof(int32_t));
    if (!c->target)
        ak_dief(AK_ENOMEM, "out of memory");
    for (size_t i = 0; i < enc.n; i++)
        c->target[i] = enc.ids[i];
    c->ntarget = enc.n;
    ak_encoding_free(&enc);
}

/* The device, the model, its tokenizer, the sampler, the stop ids and the
 * targets; any failure ends the program. */
static void load(struct ctx *c, const struct args *a, ak_err *err)
{
    if (ak_device_parse(ak_device_opt(a->device), &c->dev, err))
        ak_die(err);
    const char *dir = ak_model_dir(a->model);
    if (ak_model_load(&c->m, dir, err))
        ak_die(err);
    ak_cli_model(c->m);
    ak_model_set_fast(c->m, a->fast);
    if (!c->m->causal)
        ak_dief(AK_ECONFIG, "model %s (%s) is not causal: no cache, no --generate or --target",
                c->m->name, c->m->arch);
    if ((c->generate > 0 || a->target || a->targets) && !c->m->lm_head.w && !c->m->lm_head.wq)
        ak_dief(AK_ECONFIG, "model %s (%s) has no language-model head: no --generate or --target",
                c->m->name, c->m->arch);
    if ((c->m->gguf || ak_tokenizer_exists(dir)) && ak_tokenizer_load(&c->tk, dir, err))
        ak_die(err);
    if (ak_sampler_init(&c->sampler, c->m->vocab_size, c->temperature, c->top_p, c->seed, err))
        ak_die(err);
    if (a->stop)
        parse_stop(c, a->stop);
    else if (c->tk) {
        static const char *const names[] = {"<|im_end|>", "<end_of_turn>", "<|eot_id|>",
                                            "<|endoftext|>", "<eos>", "</s>"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            int32_t id = ak_tokenizer_token_to_id(c->tk, names[i], strlen(names[i]));
            if (id >= 0 && id < c->m->vocab_size)
                c->stop[c->nstop++] = id;
        }
    }
    if (a->target)
        load_target(c, a->target, err);
    if (a->targets) {
        if (!c->tk)
            ak_dief(AK_ECONFIG, "--targets: model %s has no tokenizer", c->m->name);
        load_targets(c, a->targets);
    }
}

int main(int argc, char **argv)
{
    ak_cli_init("kvcache");
    struct ctx c = {.ev = {.keep_ratio = -1, .keep_tokens = -1, .sink = 4, .window = 32},
                    .top_p = 1};
    struct args a = {0};
    parse_options(argc, argv, &c, &a);
    check_options(&c, &a, argc, argv);
    ak_err err = {0};
    load(&c, &a, &err);
    /* --save: refused now if it names a file this run reads (the stream,
     * the model, --load, --target, --targets), not after the work */
    if (c.save && ak_output_check(c.save, "--save", argv + optind, argc - optind, &err))
        ak_die(&err);
    int rc;
    if (c.load && !c.extend) {
        rc = run_loaded(&c, argc, argv, a.output, &err);
    } else {
        ak_filter_args args = {"kvcache", argc, argv, argv + optind, argc - optind, a.output, 0, 0};
        ak_cli_filter_args(&args);
        ak_filter_ops ops = {on_header, on_doc, NULL, 0};
        rc = ak_filter_run(&args, &ops, &c, &err);
    }
    /* the cache file is written last, once everything else succeeded */
    if (!rc && c.save && !c.save_data)
        rc = ak_fail(&err, AK_EDATA, "--save: no document, no cache to save");
    if (!rc && c.save)
        rc = ak_kvcache_write(c.save_data, c.save_len, c.save, &err);
    free(c.save_data);
    ak_sampler_free(&c.sampler);
    ak_model_free(c.m);
    ak_tokenizer_free(c.tk);
    free(c.target);
    for (size_t i = 0; i < c.ntargets; i++) {
        free(c.targets[i].id);
        free(c.targets[i].ids);
    }
    free(c.targets);
    if (rc)
        ak_die(&err);
    return 0;
}
