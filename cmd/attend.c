/* attend - run the model's blocks over `hidden` and report, per layer and
 * head, each query's attention entropy and each key's received mass. */
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/attention.h"
#include "stream/check.h"
#include "model/lm.h"
#include "attnkit/model.h"
#include "attnkit/protect.h"
#include "model/window.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: attend [-m MODEL] [--probs LAYERS[:HEADS]] [--kv] [--hidden] [--mass-last W]\n"
           "              [--mass-rows last|marker:TEXT|regex:RE] [--logits last|all]\n"
           "              [--surprisal] [--device cpu|cuda|auto] [--attn-dtype f32|bf16|f16]\n"
           "              [--progress] [--fast] [-o FILE] [FILE...]\n"
           "Run every block of the model over each document's `hidden` (from embed, which\n"
           "is consumed) and add attn.entropy, attn.mass [L, H, T] and attn.visible [L, T].\n"
           "A document embed left to windows (meta ctx_window, ctx_overlap: longer than\n"
           "the model's positions) is embedded and run window by window from its tokens\n"
           "and the windows' statistics merged (see attend(1)); --probs and --kv then\n"
           "are refused.\n"
           "  -m, --model MODEL      Hugging Face directory, .gguf file (or a directory\n"
           "                         holding one), or smollm2, gemma3, minilm (default:\n"
           "                         $ATTNKIT_MODEL, else SmolLM2-135M-Instruct)\n"
           "  -p, --probs SPEC       full probabilities attn.probs.<l> [h, T, T] for the\n"
           "                         layers (and heads) in SPEC: LIST[:LIST], LIST being\n"
           "                         `all` or numbers and ranges like 0,2-3\n"
           "  -k, --kv               add kv.k, kv.v [L, Hkv, T, Dh] (keys after RoPE)\n"
           "  -H, --hidden           add hidden.final [T, D]\n"
           "  -W, --mass-last W      add attn.mass_last [L, H, T]: the mass each key receives\n"
           "                         from the last W queries (SnapKV's votes; CPU)\n"
           "  -R, --mass-rows SPAN   attn.mass_last from the query span's rows instead: the\n"
           "                         `last` block (else paragraph), the blocks holding\n"
           "                         `marker:TEXT`, or the tokens `regex:RE` matches (first\n"
           "                         to last; needs text and offsets; prune's query span)\n"
           "  -l, --logits WHICH     add logits for the `last` position or `all` (causal LMs)\n"
           "  -s, --surprisal        add token.surprisal [T]: -log p(token | tokens before)\n"
           "                         in nats (causal LMs; token 0: 0)\n"
           "  -d, --device DEV       cpu, cuda or auto (default $ATTNKIT_DEVICE, else auto)\n"
           "  -t, --attn-dtype T     f32 (default), bf16 or f16: q, k, v rounded to T for\n"
           "                         the attention (tensor cores on CUDA; sums stay f32)\n"
           "      --progress         a progress line on stderr (tokens, tokens/s, time left\n"
           "                         of a pass); on by default when stderr is a terminal\n"
           "      --fast             products of up to 8 tokens (a short document, the\n"
           "                         head of --logits last) with 8-bit activations and\n"
           "                         integer dots on quantized GGUF weights: faster, not\n"
           "                         exact; longer products stay exact\n"
           "  -o, --output FILE      write the stream to FILE atomically (default stdout)\n"
           "  -h, --help             this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad input, 66 cannot open, 70 out of memory\n"
           "or device failure, 73 cannot create the output, 74 I/O error, 78 unsupported\n"
           "model.\n");
}

struct ctx {
    ak_model *m;
    ak_device dev;
    unsigned char *probs_layers; /* [L] */
    unsigned char *probs_heads;  /* [H] */
    float **probs;               /* [L] a document's attn.probs.<l> data, or NULL */
    int kv, hidden, logits;      /* logits: 0 none, 1 last, 2 all */
    int surprisal;               /* add token.surprisal */
    int attn_dtype;              /* ak_attn_dtype */
    int mass_last;               /* W of attn.mass_last; 0: none */
    int mass_rows;               /* attn.mass_last over the query span's rows */
    const char *rows_marker, *rows_regex; /* that span (neither: the last block) */
};

/* "all" or a comma list of numbers and ranges a-b, each < n, into sel[n]. */
static void parse_list(const char *opt, const char *s, size_t len, int n, unsigned char *sel)
{
    char buf[256];
    if (len >= sizeof buf)
        ak_usage_error("%s: list too long", opt);
    memcpy(buf, s, len);
    buf[len] = 0;
    if (!strcmp(buf, "all")) {
        memset(sel, 1, (size_t)n);
        return;
    }
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        long a, b;
        if (dash && dash != tok) {
            *dash = 0;
            a = ak_parse_long(opt, tok, 0, n - 1);
            b = ak_parse_long(opt, dash + 1, 0, n - 1);
            if (b < a)
                ak_usage_error("%s: empty range %ld-%ld", opt, a, b);
        } else {
            a = b = ak_parse_long(opt, tok, 0, n - 1);
        }
        for (long i = a; i <= b; i++)
            sel[i] = 1;
    }
    if (!memchr(sel, 1, (size_t)n))
        ak_usage_error("%s: nothing selected", opt);
}

static int on_header(void *vctx, ak_header *h, ak_err *err)
{
    struct ctx *c = vctx;
    int rc = ak_model_check_identity(c->m, &h->model, err);
    return rc ? rc : ak_model_identity(c->m, &h->model, err);
}

static int put_new(ak_doc *d, const char *name, ak_dtype t, int ndim, const int64_t *shape,
                   ak_tensor **out, ak_err *err)
{
    *out = ak_tensor_new(name, t, ndim, shape, err);
    if (!*out)
        return err->code ? err->code : AK_ENOMEM;
    return ak_doc_put(d, *out, err);
}

/* The forward pass's outputs are finite: a NaN or Inf weight, or values
 * that overflow f32 (hidden of 1e20 squares to Inf in the attention
 * scores), would otherwise leave NaN statistics.  Names the first layer
 * whose attention went non-finite, else the output that did. */
static int check_outputs(const ak_model *m, const ak_doc *d, int64_t T, const ak_forward_out *o,
                         const float *final, ak_err *err)
{
    size_t per = (size_t)m->n_heads * (size_t)T;
    for (int l = 0; l < m->n_layers; l++) {
        const float *e = o->entropy + (size_t)l * per, *ms = o->mass + (size_t)l * per;
        size_t i = ak_first_nonfinite(e, per), j = ak_first_nonfinite(ms, per);
        if (j < i)
            i = j;
        if (i < per)
            return ak_fail(err, AK_EDATA, "doc %s: layer %d: attention of head %lld, token %lld "
                           "is not finite (NaN or Inf in the model's weights, or values that "
                           "overflow f32)", d->id, l, (long long)(i / (size_t)T),
                           (long long)(i % (size_t)T));
    }
    size_t n = (size_t)T * (size_t)m->hidden_size, i = ak_first_nonfinite(final, n);
    if (i < n)
        return ak_fail(err, AK_EDATA, "doc %s: final hidden state [%lld, %lld] after layer %d "
                       "is not finite (NaN or Inf in the model's weights, or values that "
                       "overflow f32)", d->id, (long long)(i / (size_t)m->hidden_size),
                       (long long)(i % (size_t)m->hidden_size), m->n_layers - 1);
    if (o->logits) {
        n = (size_t)(o->logits_all ? T : 1) * (size_t)m->vocab_size;
        if ((i = ak_first_nonfinite(o->logits, n)) < n)
            return ak_fail(err, AK_EDATA, "doc %s: logits [%lld, %lld] are not finite (NaN or "
                           "Inf in the language-model head)", d->id,
                           (long long)(i / (size_t)m->vocab_size),
                           (long long)(i % (size_t)m->vocab_size));
    }
    return 0;
}

/* token.surprisal [T] from the final hidden states: the LM head a tile
 * of rows and vocabulary at a time (lm.h), never [T, V]. */
static int add_surprisal(const ak_model *m, ak_doc *d, const float *final, int64_t T, ak_err *err)
{
    ak_tensor *tok = ak_doc_get(d, "tokens"), *t;
    if (!tok)
        return ak_fail(err, AK_EDATA, "doc %s: --surprisal needs the document's tokens", d->id);
    if (tok->dtype != AK_I32 || tok->ndim != 1 || tok->shape[0] != T)
        return ak_fail(err, AK_EDATA, "doc %s: tokens must be i32 [%lld]", d->id, (long long)T);
    int64_t s1[1] = {T};
    int rc = put_new(d, "token.surprisal", AK_F32, 1, s1, &t, err);
    if (rc)
        return rc;
    if ((rc = ak_lm_surprisal(m, final, ak_tensor_i32(tok), T, ak_tensor_f32(t), err)))
        return ak_wrap(err, "doc %s", d->id);
    return 0;
}

/* A document longer than the context, from its tokens (window.h). */
static int on_doc_windowed(struct ctx *c, ak_doc *d, int64_t W, int64_t K, ak_err *err)
{
    const ak_model *m = c->m;
    if (c->probs_layers || c->kv || c->mass_rows)
        return ak_fail(err, AK_EUSAGE, "doc %s: --%s needs the document in one window (it is "
                       "run in windows of %lld)", d->id,
                       c->kv ? "kv" : c->probs_layers ? "probs" : "mass-rows", (long long)W);
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err), *tt = ak_doc_get(d, "token_types"), *t;
    if (!tok)
        return err->code ? err->code : AK_EDATA;
    int64_t T = tok->shape[0], L = m->n_layers, H = m->n_heads;
    if (T > (1 << 24))
        return ak_fail(err, AK_EDATA, "doc %s: too many tokens (%lld)", d->id, (long long)T);
    if (tt && (tt->dtype != AK_I32 || tt->ndim != 1 || tt->shape[0] != T))
        return ak_fail(err, AK_EDATA, "doc %s: token_types must be i32 [%lld]", d->id, (long long)T);
    if (W < 2 || W > m->max_positions || K < 0 || K >= W)
        return ak_fail(err, AK_EDATA, "doc %s: meta ctx_window %lld, ctx_overlap %lld do not fit "
                       "model %s (%d positions)", d->id, (long long)W, (long long)K, m->name,
                       m->max_positions);
    ak_forward_out o = {.attn_dtype = c->attn_dtype};
    int64_t s3[3] = {L, H, T}, s2[2] = {L, T};
    int rc;
    if ((rc = put_new(d, "attn.entropy", AK_F32, 3, s3, &t, err)))
        return rc;
    o.entropy = ak_tensor_f32(t);
    if ((rc = put_new(d, "attn.mass", AK_F32, 3, s3, &t, err)))
        return rc;
    o.mass = ak_tensor_f32(t);
    if ((rc = put_new(d, "attn.visible", AK_I32, 2, s2, &t, err)))
        return rc;
    o.visible = ak_tensor_i32(t);
    if (c->logits && T > 0) {
        int64_t sl[2] = {c->logits == 2 ? T : 1, m->vocab_size};
        if ((rc = put_new(d, "logits", AK_F32, 2, sl, &t, err)))
            return rc;
        o.logits = ak_tensor_f32(t);
        o.logits_all = c->logits == 2;
    }
    float *final = NULL;
    int64_t sh[2] = {T, m->hidden_size};
    ak_tensor *fin = ak_tensor_new(c->hidden ? "hidden.final" : "hidden.scratch", AK_F32, 2, sh, err);
    if (!fin)
        return err->code ? err->code : AK_ENOMEM;
    final = ak_tensor_f32(fin);
    if ((rc = ak_window_forward(m, c->dev, ak_tensor_i32(tok), tt ? ak_tensor_i32(tt) : NULL, T,
                                W, K, &o, final, err))) {
        ak_tensor_free(fin);
        return ak_wrap(err, "doc %s", d->id);
    }
    if ((rc = check_outputs(m, d, T, &o, final, err)) ||
        (c->surprisal && (rc = add_surprisal(m, d, final, T, err)))) {
        ak_tensor_free(fin);
        return rc;
    }
    if (c->hidden) {
        if ((rc = ak_doc_put(d, fin, err)))
            return rc;
    } else {
        ak_tensor_free(fin);
    }
    int window = 0;
    for (int l = 0; l < L; l++)
        if (m->layers[l].window > window)
            window = m->layers[l].window;
    if (ak_meta_set_int(&d->meta, "causal", m->causal) || ak_meta_set_int(&d->meta, "window", window))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}

static int on_doc(void *vctx, ak_doc *d, ak_err *err)
{
    struct ctx *c = vctx;
    const ak_model *m = c->m;
    int64_t cw, co;
    if (!ak_doc_get(d, "hidden") && ak_meta_int(&d->meta, "ctx_window", &cw) == 0 &&
        ak_meta_int(&d->meta, "ctx_overlap", &co) == 0)
        return on_doc_windowed(c, d, cw, co, err);
    ak_tensor *hid = ak_doc_need(d, "hidden", AK_F32, 2, err);
    if (!hid)
        return err->code ? err->code : AK_EDATA;
    if (hid->shape[1] != m->hidden_size)
        return ak_fail(err, AK_EDATA, "doc %s: hidden has width %lld, model %s has %d", d->id,
                       (long long)hid->shape[1], m->name, m->hidden_size);
    if (hid->shape[0] > (1 << 24))
        return ak_fail(err, AK_EDATA, "doc %s: too many tokens (%lld)", d->id, (long long)hid->shape[0]);
    if (m->pos_emb && hid->shape[0] > m->max_positions)
        return ak_fail(err, AK_EDATA, "doc %s: %lld tokens, model %s has %d positions (embed "
                       "runs longer documents in windows)", d->id, (long long)hid->shape[0],
                       m->name, m->max_positions);
    ak_tensor *tok = ak_doc_get(d, "tokens");
    if (tok && (tok->ndim != 1 || tok->shape[0] != hid->shape[0]))
        return ak_fail(err, AK_EDATA, "doc %s: tokens has %lld entries, hidden %lld rows",
                       d->id, (long long)(tok->ndim ? tok->shape[0] : 0), (long long)hid->shape[0]);
    int rc = ak_check_f32_range(hid, -INFINITY, INFINITY, err);
    if (rc)
        return ak_wrap(err, "doc %s", d->id);
    int64_t T = hid->shape[0], L = m->n_layers, H = m->n_heads;
    ak_tensor *x = ak_doc_take(d, "hidden");
    ak_tensor *t;
    ak_forward_out o = {0};
    int64_t s3[3] = {L, H, T}, s2[2] = {L, T};
    if ((rc = put_new(d, "attn.entropy", AK_F32, 3, s3, &t, err)))
        goto out;
    o.entropy = ak_tensor_f32(t);
    if ((rc = put_new(d, "attn.mass", AK_F32, 3, s3, &t, err)))
        goto out;
    o.mass = ak_tensor_f32(t);
    if ((rc = put_new(d, "attn.visible", AK_I32, 2, s2, &t, err)))
        goto out;
    o.visible = ak_tensor_i32(t);
    if (c->probs_layers) {
        float **probs = c->probs; /* the tensors own the data */
        memset(probs, 0, sizeof *probs * (size_t)L);
        /* Written in place by the forward pass: [h, T, T] for the chosen heads. */
        int nh = 0;
        for (int h = 0; h < H; h++)
            nh += c->probs_heads[h];
        size_t n;
        if (ak_mul_size((size_t)nh * T, (size_t)T, &n) || n > ((size_t)1 << 62) / sizeof(float)) {
            rc = ak_fail(err, AK_ENOMEM, "doc %s: probabilities of %lld tokens do not fit in memory",
                         d->id, (long long)T);
            goto out;
        }
        for (int l = 0; l < L; l++) {
            if (!c->probs_layers[l])
                continue;
            char name[64];
            snprintf(name, sizeof name, "attn.probs.%d", l);
            int64_t sp[3] = {nh, T, T}, sh[1] = {nh};
            if ((rc = put_new(d, name, AK_F32, 3, sp, &t, err)))
                goto out;
            probs[l] = ak_tensor_f32(t);
            snprintf(name, sizeof name, "attn.probs.%d.heads", l);
            if ((rc = put_new(d, name, AK_I32, 1, sh, &t, err)))
                goto out;
            int32_t *heads = ak_tensor_i32(t);
            for (int h = 0, k = 0; h < H; h++)
                if (c->probs_heads[h])
                    heads[k++] = h;
        }
        o.probs = probs;
        o.probs_heads = nh == H ? NULL : c->probs_heads;
    }
    if (c->mass_last || c->mass_rows) {
        int64_t first = T - c->mass_last, last = T - 1;
        if (c->mass_rows &&
            (rc = ak_query_span_rows(d, c->rows_marker, c->rows_regex, &first, &last, err))) {
            ak_wrap(err, "doc %s: --mass-rows", d->id);
            goto out;
        }
        if (first < 0)
            first = 0;
        if ((rc = put_new(d, "attn.mass_last", AK_F32, 3, s3, &t, err)))
            goto out;
        o.mass_last = ak_tensor_f32(t);
        o.last_w = (int)(T - first);
        o.last_skip = (int)(T - 1 - last);
        /* prune's query rows: how many, and for --mass-rows which */
        if (ak_meta_set_int(&d->meta, "mass_last_w", c->mass_rows ? last - first + 1 : c->mass_last) ||
            (c->mass_rows && (ak_meta_set_int(&d->meta, "mass_rows_first", first) ||
                              ak_meta_set_int(&d->meta, "mass_rows_last", last)))) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (c->kv) {
        int64_t s4[4] = {L, m->n_kv_heads, T, m->head_dim};
        if ((rc = put_new(d, "kv.k", AK_F32, 4, s4, &t, err)))
            goto out;
        o.kv_k = ak_tensor_f32(t);
        if ((rc = put_new(d, "kv.v", AK_F32, 4, s4, &t, err)))
            goto out;
        o.kv_v = ak_tensor_f32(t);
    }
    if (c->logits && T > 0) {
        int64_t sl[2] = {c->logits == 2 ? T : 1, m->vocab_size};
        if ((rc = put_new(d, "logits", AK_F32, 2, sl, &t, err)))
            goto out;
        o.logits = ak_tensor_f32(t);
        o.logits_all = c->logits == 2;
    }
    o.attn_dtype = c->attn_dtype;
    if ((rc = ak_model_forward(m, c->dev, ak_tensor_f32(x), (int)T, &o, err))) {
        ak_wrap(err, "doc %s", d->id);
        goto out;
    }
    if ((rc = check_outputs(m, d, T, &o, ak_tensor_f32(x), err)) ||
        (c->surprisal && (rc = add_surprisal(m, d, ak_tensor_f32(x), T, err))))
        goto out;
    if (c->hidden) {
        free(x->name);
        x->name = strdup("hidden.final");
        if (!x->name) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
        rc = ak_doc_put(d, x, err);
        x = NULL;
        if (rc)
            goto out;
    }
    int window = 0;
    for (int l = 0; l < L; l++)
        if (m->layers[l].window > window)
            window = m->layers[l].window;
    if (ak_meta_set_int(&d->meta, "causal", m->causal) || ak_meta_set_int(&d->meta, "window", window))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
out:
    ak_tensor_free(x);
    return rc;
}

int main(int argc, char **argv)
{
    ak_cli_init("attend");
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"probs", required_argument, NULL, 'p'},
        {"kv", no_argument, NULL, 'k'},
        {"hidden", no_argument, NULL, 'H'},
        {"mass-last", required_argument, NULL, 'W'},
        {"mass-rows", required_argument, NULL, 'R'},
        {"logits", required_argument, NULL, 'l'},
        {"surprisal", no_argument, NULL, 's'},
        {"device", required_argument, NULL, 'd'},
        {"attn-dtype", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"progress", no_argument, NULL, 'P'},
        {"fast", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_opt = NULL, *output = NULL, *probs = NULL, *device = NULL;
    struct ctx c = {0};
    int ch, fast = 0;
    while ((ch = getopt_long(argc, argv, "m:p:kHW:R:l:sd:t:o:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': model_opt = optarg; break;
        case 'p': probs = optarg; break;
        case 'k': c.kv = 1; break;
        case 'H': c.hidden = 1; break;
        case 'W': c.mass_last = (int)ak_parse_long("--mass-last", optarg, 1, 1 << 24); break;
        case 'R':
            c.mass_rows = 1;
            c.rows_marker = c.rows_regex = NULL;
            if (!strncmp(optarg, "marker:", 7) && optarg[7])
                c.rows_marker = optarg + 7;
            else if (!strncmp(optarg, "regex:", 6) && optarg[6])
                c.rows_regex = optarg + 6;
            else if (strcmp(optarg, "last"))
                ak_usage_error("--mass-rows: expected last, marker:TEXT or regex:RE, not '%s'", optarg);
            break;
        case 'l':
            if (!strcmp(optarg, "last"))
                c.logits = 1;
            else if (!strcmp(optarg, "all"))
                c.logits = 2;
            else
                ak_usage_error("--logits: expected last or all, not '%s'", optarg);
            break;
        case 's': c.surprisal = 1; break;
        case 'd': device = optarg; break;
        case 't':
            if (!strcmp(optarg, "f32"))
                c.attn_dtype = AK_ATTN_F32;
            else if (!strcmp(optarg, "bf16"))
                c.attn_dtype = AK_ATTN_BF16;
            else if (!strcmp(optarg, "f16"))
                c.attn_dtype = AK_ATTN_F16;
            else
                ak_usage_error("--attn-dtype: expected f32, bf16 or f16, not '%s'", optarg);
            break;
        case 'o': output = optarg; break;
        case 'P': ak_cli_progress(1); break;
        case 'F': fast = 1; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (c.mass_rows && c.mass_last)
        ak_usage_error("--mass-rows and --mass-last both fill attn.mass_last: give one");
    ak_err err = {0};
    if (ak_device_parse(ak_device_opt(device), &c.dev, &err))
        ak_die(&err);
    if (ak_model_load(&c.m, ak_model_dir(model_opt), &err))
        ak_die(&err);
    ak_cli_model(c.m);
    ak_model_set_fast(c.m, fast);
    if (c.logits && !c.m->lm_head.w && !c.m->lm_head.wq)
        ak_dief(AK_ECONFIG, "--logits: model %s (%s) has no language-model head", c.m->name, c.m->arch);
    if (c.surprisal && (!c.m->causal || (!c.m->lm_head.w && !c.m->lm_head.wq)))
        ak_dief(AK_ECONFIG, "--surprisal: model %s (%s) has no language-model head%s", c.m->name,
                c.m->arch, c.m->causal ? "" : " (it is bidirectional)");
    if (probs) {
        c.probs_layers = calloc((size_t)c.m->n_layers, 1);
        c.probs_heads = calloc((size_t)c.m->n_heads, 1);
        c.probs = calloc((size_t)c.m->n_layers, sizeof *c.probs);
        if (!c.probs_layers || !c.probs_heads || !c.probs)
            ak_dief(AK_ENOMEM, "out of memory");
        const char *colon = strchr(probs, ':');
        parse_list("--probs", probs, colon ? (size_t)(colon - probs) : strlen(probs), c.m->n_layers,
                   c.probs_layers);
        if (colon)
            parse_list("--probs", colon + 1, strlen(colon + 1), c.m->n_heads, c.probs_heads);
        else
            memset(c.probs_heads, 1, (size_t)c.m->n_heads);
    }
    ak_filter_args args = {"attend", argc, argv, argv + optind, argc - optind, output, 0, 0};
    ak_cli_filter_args(&args);
    ak_filter_ops ops = {on_header, on_doc, NULL, 0};
    int rc = ak_filter_run(&args, &ops, &c, &err);
    ak_model_free(c.m);
    free(c.probs_layers);
    free(c.probs_heads);
    free(c.probs);
    if (rc)
        ak_die(&err);
    return 0;
}
