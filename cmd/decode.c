/* decode - token streams back to text. */
#include "stream/check.h"
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/prune.h"
#include "attnkit/tokenizer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: decode [-m MODEL] [--mark[=STR] | --text] [--special] [--generated]\n"
           "              [-o FILE] [FILE...]\n"
           "Print each document of a token stream as text, one after another: the\n"
           "tokens detokenized (byte-exact for byte-level BPE and byte fallback).\n"
           "  -m, --model DIR   model or tokenizer directory, or GGUF file, the stream\n"
           "                    was made with\n"
           "                    (default: $ATTNKIT_MODEL, else SmolLM2-135M-Instruct)\n"
           "      --mark[=STR]  print the original `text` instead, with each span\n"
           "                    prune dropped replaced by STR (default \"[…]\")\n"
           "      --text        print the kept text clean, for an LLM: the original\n"
           "                    `text` without prune's dropped spans, no markers, white\n"
           "                    space normalised (blank lines kept as paragraph breaks)\n"
           "      --special     also print special tokens the tokenizer added (BOS,\n"
           "                    CLS, SEP: those covering no text)\n"
           "      --generated   print the tokens kvcache --generate added (`generated`)\n"
           "  -o, --output FILE write the text to FILE (default stdout); a file is\n"
           "                    replaced only when the run succeeds\n"
           "  -h, --help        this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad input, 66 cannot open, 70 out of memory,\n"
           "73 cannot create the output, 74 I/O error, 78 unsupported tokenizer.\n");
}

typedef struct ctx {
    ak_tokenizer *tk;
    const char *mark;
    int special, text;
    int generated;   /* the `generated` tensor instead of `tokens` */
} ctx;

static int on_header(void *p, ak_header *h, ak_err *err)
{
    ctx *c = p;
    int64_t crc, vs;
    const char *name = ak_meta_str(&h->model, "name");
    if (ak_meta_int(&h->model, "tokenizer_crc32", &crc) == 0 && (uint32_t)crc != ak_tokenizer_crc32(c->tk))
        return ak_fail(err, AK_EDATA, "stream was tokenized with %s, not %s (use -m)", name ? name : "another tokenizer",
                       ak_tokenizer_name(c->tk));
    if (ak_meta_int(&h->model, "vocab_size", &vs) == 0 && vs != ak_tokenizer_vocab_size(c->tk) && !c->mark && !c->text)
        return ak_fail(err, AK_EDATA, "stream has a vocabulary of %lld tokens, %s has %lld (use -m)",
                       (long long)vs, ak_tokenizer_name(c->tk), (long long)ak_tokenizer_vocab_size(c->tk));
    return 0;
}

static const char *out_name = "<stdout>"; /* for write errors */

static int out(const void *s, size_t n, ak_err *err)
{
    if (n && fwrite(s, 1, n, stdout) != n)
        return ak_write_error(err, out_name);
    return 0;
}

static int marked(ctx *c, ak_doc *d, ak_err *err)
{
    ak_tensor *t = ak_doc_need(d, "text", AK_U8, 1, err);
    if (!t)
        return AK_EDATA;
    const char *text = (const char *)t->data;
    int64_t len = t->shape[0], pos = 0;
    ak_tensor *off = ak_doc_get(d, "offsets");
    if (off && off->dtype == AK_I64 && off->ndim == 2 && off->shape[1] == 2 &&
        ak_check_offsets(ak_tensor_i64(off), off->shape[0], (size_t)len, err))
        return ak_wrap(err, "doc %s", d->id);
    ak_tensor *dr = ak_doc_get(d, "dropped");
    if (dr) {
        if (dr->dtype != AK_I64 || dr->ndim != 2 || dr->shape[1] != 2)
            return ak_fail(err, AK_EDATA, "doc %s: dropped must be i64 [n, 2]", d->id);
        const int64_t *sp = ak_tensor_i64(dr);
        for (int64_t i = 0; i < dr->shape[0]; i++) {
            int64_t s = sp[2 * i], e = sp[2 * i + 1];
            if (s < 0 || e < s || e > len)
                return ak_fail(err, AK_EDATA, "doc %s: dropped span %lld [%lld, %lld) is not a span of the %lld bytes of text",
                               d->id, (long long)i, (long long)s, (long long)e, (long long)len);
            if (s < pos)
                return ak_fail(err, AK_EDATA, "doc %s: dropped span %lld [%lld, %lld) overlaps or precedes the one before (ends at %lld)",
                               d->id, (long long)i, (long long)s, (long long)e, (long long)pos);
            int rc = out(text + pos, (size_t)(s - pos), err);
            if (!rc && e > s)
                rc = out(c->mark, strlen(c->mark), err);
            if (rc)
                return rc;
            pos = e;
        }
    }
    return out(text + pos, (size_t)(len - pos), err);
}

/* --text: ak_kept_text of the document's text and dropped spans. */
static int clean_text(ak_doc *d, ak_err *err)
{
    ak_tensor *t = ak_doc_need(d, "text", AK_U8, 1, err), *dr = ak_doc_get(d, "dropped");
    if (!t)
        return AK_EDATA;
    if (dr && (dr->dtype != AK_I64 || dr->ndim != 2 || dr->shape[1] != 2))
        return ak_fail(err, AK_EDATA, "doc %s: dropped must be i64 [n, 2]", d->id);
    char *kept;
    size_t n;
    int rc = ak_kept_text(ak_tensor_u8(t), t->nbytes, dr ? ak_tensor_i64(dr) : NULL,
                          dr ? dr->shape[0] : 0, &kept, &n, err);
    if (rc)
        return ak_wrap(err, "doc %s", d->id);
    rc = out(kept, n, err);
    free(kept);
    return rc;
}

static int on_doc(void *p, ak_doc *d, ak_err *err)
{
    ctx *c = p;
    int rc;
    if (c->text)
        return (rc = clean_text(d, err)) ? rc : 1;
    if (c->mark)
        rc = marked(c, d, err);
    else {
        ak_tensor *tok = ak_doc_need(d, c->generated ? "generated" : "tokens", AK_I32, 1, err);
        if (!tok)
            return AK_EDATA;
        size_t n = (size_t)tok->shape[0];
        ak_tensor *sp = c->generated ? NULL : ak_doc_get(d, "special");
        ak_tensor *off = ak_doc_get(d, "offsets");
        uint8_t *skip = NULL;
        if (!c->special && sp && off) {
            if (sp->dtype != AK_U8 || sp->ndim != 1 || (size_t)sp->shape[0] != n || off->dtype != AK_I64 ||
                off->ndim != 2 || (size_t)off->shape[0] != n || off->shape[1] != 2)
                return ak_fail(err, AK_EDATA, "doc %s: special or offsets do not match tokens", d->id);
            if (!(skip = calloc(n ? n : 1, 1)))
                return ak_fail(err, AK_ENOMEM, "out of memory");
            const int64_t *o = ak_tensor_i64(off);
            const uint8_t *s = ak_tensor_u8(sp);
            for (size_t i = 0; i < n; i++)
                skip[i] = s[i] && o[2 * i] == o[2 * i + 1];
        }
        char *text;
        size_t len;
        rc = ak_tokenizer_decode(c->tk, ak_tensor_i32(tok), n, skip, &text, &len, NULL, err);
        free(skip);
        if (rc)
            return ak_wrap(err, "doc %s", d->id);
        rc = out(text, len, err);
        free(text);
    }
    return rc ? rc : 1;
}

int main(int argc, char **argv)
{
    ak_cli_init("decode");
    static const struct option lo[] = {
        {"model", required_argument, NULL, 'm'},
        {"mark", optional_argument, NULL, 'k'},
        {"special", no_argument, NULL, 'S'},
        {"text", no_argument, NULL, 'T'},
        {"generated", no_argument, NULL, 'G'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    ctx c = {0};
    const char *model = NULL, *output = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "m:o:h", lo, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'k': c.mark = optarg ? optarg : "[\xE2\x80\xA6]"; break;
        case 'S': c.special = 1; break;
        case 'T': c.text = 1; break;
        case 'G': c.generated = 1; break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (c.text && c.mark)
        ak_usage_error("--text and --mark: choose one");
    if (c.generated && (c.text || c.mark))
        ak_usage_error("--generated decodes new tokens; --%s prints the original text",
                       c.text ? "text" : "mark");
    if (c.special && (c.text || c.mark))
        ak_usage_error("--special goes with decoding tokens, not with --%s (which prints the "
                       "original text)", c.text ? "text" : "mark");
    ak_err err = {0};
    if (ak_tokenizer_load(&c.tk, ak_model_dir(model), &err))
        ak_die(&err);
    ak_filter_args a = {.program = "decode", .argc = argc, .argv = argv,
                        .inputs = argv + optind, .ninputs = argc - optind, .output = output};
    ak_cli_filter_args(&a);
    ak_filter_ops ops = {.header = on_header, .doc = on_doc, .no_stream_output = 1};
    if (output && strcmp(output, "-") != 0)
        out_name = output;
    int rc = ak_filter_run(&a, &ops, &c, &err);
    ak_tokenizer_free(c.tk);
    if (rc)
        ak_die(&err);
    return 0;
}
