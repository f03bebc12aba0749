/* embed - token ids to the model's input hidden states. */
#include "cli.h"
#include "filter.h"
#include "model.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(void)
{
    printf("usage: embed [-m MODEL] [-o FILE] [FILE...]\n"
           "Add each document's input embeddings (tensor `hidden`, f32 [T, D]) computed\n"
           "from its `tokens` (and `token_types`, for BERT) as the model defines them.\n"
           "  -m, --model DIR   Hugging Face model directory (default: $ATTNKIT_MODEL,\n"
           "                    else all-MiniLM-L6-v2)\n"
           "  -o, --output FILE write the stream to FILE atomically (default stdout)\n"
           "  -h, --help        this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad input, 66 cannot open, 70 out of memory,\n"
           "73 cannot create the output, 74 I/O error, 78 unsupported model.\n");
}

static int on_header(void *ctx, ak_header *h, ak_err *err)
{
    ak_model *m = ctx;
    int rc = ak_model_check_identity(m, &h->model, err);
    return rc ? rc : ak_model_identity(m, &h->model, err);
}

static int on_doc(void *ctx, ak_doc *d, ak_err *err)
{
    ak_model *m = ctx;
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
    int64_t shape[2] = {T, m->hidden_size};
    ak_tensor *hid = ak_tensor_new("hidden", AK_F32, 2, shape, err);
    if (!hid)
        return err->code;
    int rc = ak_model_embed(m, ak_tensor_i32(tok), types, T, ak_tensor_f32(hid), err);
    if (rc) {
        ak_tensor_free(hid);
        return ak_wrap(err, "doc %s", d->id);
    }
    return ak_doc_put(d, hid, err);
}

int main(int argc, char **argv)
{
    ak_cli_init("embed");
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_opt = NULL, *output = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_opt = optarg; break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    ak_err err = {0};
    ak_model *m;
    if (ak_model_load(&m, ak_model_dir(model_opt), &err))
        ak_die(&err);
    ak_filter_args args = {"embed", argc, argv, argv + optind, argc - optind, output};
    ak_filter_ops ops = {on_header, on_doc, NULL, 0};
    int rc = ak_filter_run(&args, &ops, m, &err);
    ak_model_free(m);
    if (rc)
        ak_die(&err);
    return 0;
}
