/* embed - token ids to the model's input hidden states. */
#include "stream/check.h"
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/model.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void)
{
    printf("usage: embed [-m MODEL] [-w N] [-k K] [-o FILE] [FILE...]\n"
           "Add each document's input embeddings (tensor `hidden`, f32 [T, D]) computed\n"
           "from its `tokens` (and `token_types`, for BERT) as the model defines them.\n"
           "  -m, --model MODEL Hugging Face directory, .gguf file (or a directory holding\n"
           "                    one), or smollm2, gemma3, minilm (default: $ATTNKIT_MODEL,\n"
           "                    else SmolLM2-135M-Instruct)\n"
           "  -w, --window N    a document longer than N tokens (default: the model's\n"
           "                    positions, 512 for MiniLM) is run in windows of N by\n"
           "                    attend, K overlapping: embed records the windows (meta\n"
           "                    ctx_window, ctx_overlap) and leaves `hidden` to attend,\n"
           "                    which embeds each window at positions 0..N-1\n"
           "  -k, --overlap K   tokens shared by neighbouring windows (default N/4)\n"
           "  -o, --output FILE write the stream to FILE atomically (default stdout)\n"
           "  -h, --help        this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad input, 66 cannot open, 70 out of memory,\n"
           "73 cannot create the output, 74 I/O error, 78 unsupported model.\n");
}

struct ctx {
    ak_model *m;
    long window, overlap; /* -1: the model's positions, a quarter of the window */
};

static int on_header(void *vc, ak_header *h, ak_err *err)
{
    ak_model *m = ((struct ctx *)vc)->m;
    int rc = ak_model_check_identity(m, &h->model, err);
    return rc ? rc : ak_model_identity(m, &h->model, err);
}

static int on_doc(void *vc, ak_doc *d, ak_err *err)
{
    struct ctx *c = vc;
    ak_model *m = c->m;
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err);
    if (!tok)
        return err->code ? err->code : AK_EDATA;
    if (tok->shape[0] > (1 << 24))
        return ak_fail(err, AK_EDATA, "doc %s: %lld tokens is more than embed handles", d->id,
                       (long long)tok->shape[0]);
    int T = (int)tok->shape[0];
    const int32_t *types = NULL;
    ak_tensor *tt = ak_doc_get(d, "token_types");
    if (tt) {
        if (tt->dtype != AK_I32 || tt->ndim != 1 || tt->shape[0] != T)
            return ak_fail(err, AK_EDATA, "doc %s: token_types must be i32 [%d]", d->id, T);
        types = ak_tensor_i32(tt);
    }
    long W = c->window > 0 ? c->window : m->max_positions;
    if (T > W) { /* attend runs the windows (window.h) */
        long K = c->overlap >= 0 ? c->overlap : W / 4;
        if (K >= W)
            return ak_fail(err, AK_EUSAGE, "--overlap %ld must be below the window %ld", K, W);
        if (ak_meta_set_int(&d->meta, "ctx_window", W) ||
            ak_meta_set_int(&d->meta, "ctx_overlap", K))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        return 0;
    }
    ak_meta_del(&d->meta, "ctx_window"); /* from a longer document, before a prune */
    ak_meta_del(&d->meta, "ctx_overlap");
    int64_t shape[2] = {T, m->hidden_size};
    ak_tensor *hid = ak_tensor_new("hidden", AK_F32, 2, shape, err);
    if (!hid)
        return err->code;
    int rc = ak_model_embed(m, ak_tensor_i32(tok), types, T, ak_tensor_f32(hid), err);
    if (rc) {
        ak_tensor_free(hid);
        return ak_wrap(err, "doc %s", d->id);
    }
    size_t n = (size_t)T * m->hidden_size, bad = ak_first_nonfinite(ak_tensor_f32(hid), n);
    if (bad < n) {
        size_t t = bad / (size_t)m->hidden_size;
        ak_tensor_free(hid);
        return ak_fail(err, AK_EDATA, "doc %s: the embedding of token %zu (id %d) is not finite "
                       "(NaN or Inf in the model's weights)", d->id, t,
                       (int)ak_tensor_i32(tok)[t]);
    }
    return ak_doc_put(d, hid, err);
}

int main(int argc, char **argv)
{
    ak_cli_init("embed");
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"window", required_argument, NULL, 'w'},
        {"overlap", required_argument, NULL, 'k'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_opt = NULL, *output = NULL;
    struct ctx x = {.window = -1, .overlap = -1};
    int c;
    while ((c = getopt_long(argc, argv, "m:w:k:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_opt = optarg; break;
        case 'w': x.window = ak_parse_long("--window", optarg, 2, 1 << 24); break;
        case 'k': x.overlap = ak_parse_long("--overlap", optarg, 0, 1 << 24); break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (x.window > 0 && x.overlap >= x.window)
        ak_usage_error("--overlap %ld must be below --window %ld", x.overlap, x.window);
    ak_err err = {0};
    ak_model *m;
    if (ak_model_load(&m, ak_model_dir(model_opt), &err))
        ak_die(&err);
    ak_cli_model(m);
    x.m = m;
    if (x.window > m->max_positions)
        ak_dief(AK_EUSAGE, "--window %ld: model %s has %d positions", x.window, m->name,
                m->max_positions);
    ak_filter_args args = {"embed", argc, argv, argv + optind, argc - optind, output, 0, 0};
    ak_cli_filter_args(&args);
    ak_filter_ops ops = {on_header, on_doc, NULL, 0};
    int rc = ak_filter_run(&args, &ops, &x, &err);
    ak_model_free(m);
    if (rc)
        ak_die(&err);
    return 0;
}
