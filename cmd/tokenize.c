/* tokenize - text files to token streams, with byte offsets and blocks. */
#include "cli/cli.h"
#include "core/buf.h"
#include "attnkit/io.h"
#include "format/regfile.h"
#include "attnkit/stream.h"
#include "attnkit/tokenizer.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOC_BYTES ((size_t)1 << 34)

static void usage(void)
{
    printf("usage: tokenize [-m MODEL] [--no-special] [--segments MODE] [--marker STR]\n"
           "                [--chat [--system TEXT] [--chat-format NAME]\n"
           "                 [--split STR [--prefix | --suffix]]]\n"
           "                [--from-ids] [--lossy] [-o FILE] [FILE...]\n"
           "Tokenize each FILE (or stdin) as one document, exactly as Hugging Face\n"
           "`tokenizers` does, and write a stream with the tensors text, tokens, offsets\n"
           "(byte spans in text), segments, special (and token_types for BERT).\n"
           "  -m, --model DIR      model or tokenizer directory: tokenizer.json, or\n"
           "                       vocab.json + merges.txt, or a GGUF file (default:\n"
           "                       $ATTNKIT_MODEL, else SmolLM2-135M-Instruct)\n"
           "      --no-special     add no BOS/CLS/SEP tokens (special-token strings in the\n"
           "                       text are still matched)\n"
           "  -s, --segments MODE  blocks: sentence, paragraph (default), line, marker\n"
           "      --marker STR     blocks are separated by STR, which is not tokenized\n"
           "                       (implies --segments marker; a line holding only STR\n"
           "                       is left out with its newline)\n"
           "      --chat           wrap each text as the user message of the model's chat\n"
           "                       template, with the assistant's turn opened (instruct\n"
           "                       models); the template's tokens are special\n"
           "      --system TEXT    with --chat: this system turn instead of the template's\n"
           "      --chat-format NAME  with --chat: chatml or gemma, instead of the family\n"
           "                       recognised in the model's template\n"
           "      --split STR      with --chat: STR (once in each text, removed) splits the\n"
           "                       user's turn into a prefix (a document to cache) and a\n"
           "                       suffix (a question); meta chat_prefix_tokens\n"
           "      --prefix, --suffix  with --split: write only the whole turn's tokens\n"
           "                       before (after) the split; prefix + suffix tokens are\n"
           "                       the whole turn's\n"
           "      --from-ids       input holds whitespace-separated token ids\n"
           "      --lossy          replace invalid UTF-8 by U+FFFD (with a warning)\n"
           "                       instead of failing\n"
           "  -o, --output FILE    write the stream to FILE (default stdout); a file is\n"
           "                       replaced only when the run succeeds\n"
           "  -h, --help           this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad input, 66 cannot open, 70 out of memory,\n"
           "73 cannot create the output, 74 I/O error, 78 unsupported tokenizer.\n");
}

typedef struct opts {
    int no_special, mode, from_ids, lossy, chat;
    int part;                  /* --split: 0 the whole turn, 1 --prefix, 2 --suffix */
    const char *system, *chat_format, *split;
    const char *marker;
    size_t marker_len;
} opts;

enum { MODE_MARKER = 100 };

/* Moves *buf (malloc'd, at least the tensor's bytes) into a new tensor of
 * d instead of copying it: a long document's tokens are then held once. */
static int adopt(ak_doc *d, const char *name, ak_dtype t, int ndim, const int64_t *shape,
                 void **buf, ak_err *err)
{
    int64_t none[AK_MAX_DIMS] = {0};
    ak_tensor *x = ak_tensor_new(name, t, ndim, none, err);
    if (!x)
        return err->code ? err->code : AK_ENOMEM;
    size_t nbytes;
    if (ak_shape_bytes(t, ndim, shape, &nbytes, err)) {
        ak_tensor_free(x);
        return err->code;
    }
    if (nbytes) {  /* an empty tensor keeps its own small allocation */
        void *p = realloc(*buf, nbytes);   /* gives back the spare capacity */
        free(x->data);
        x->data = p ? p : *buf;
        *buf = NULL;
    }
    x->nbytes = nbytes;
    for (int i = 0; i < ndim; i++)
        x->shape[i] = shape[i];
    return ak_doc_put(d, x, err);
}

/* A model directory without a tokenizer: --from-ids still feeds it ids,
 * range-checked against config.json's vocab_size. */
typedef struct bare_model {
    char name[256];
    int64_t vocab_size;
} bare_model;

static int bare_model_load(bare_model *b, const char *dir, ak_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return ak_fail(err, AK_EUSAGE, "%s: path too long", dir);
    char *text;
    size_t len;
    int rc = ak_read_regular(path, (size_t)16 << 20, &text, &len, err);
    if (rc)
        return ak_wrap(err, "%s: no tokenizer, and config.json cannot be read", dir);
    json_error_t je;
    json_t *cfg = json_loadb(text, len, 0, &je);
    free(text);
    json_t *vs = json_object_get(cfg, "vocab_size");
    if (!json_is_integer(vs) || json_integer_value(vs) <= 0 || json_integer_value(vs) > INT32_MAX) {
        json_decref(cfg);
        return ak_fail(err, AK_ECONFIG, "%s: no tokenizer, and config.json has no valid vocab_size "
                       "to check the ids against", dir);
    }
    b->vocab_size = json_integer_value(vs);
    json_decref(cfg);
    /* the name as lib/model/model.c reports it: the directory's base name */
    char *real = realpath(dir, NULL);
    const char *d = real ? real : dir;
    size_t dl = strlen(d), k;
    while (dl > 1 && d[dl - 1] == '/')
        dl--;
    for (k = dl; k > 0 && d[k - 1] != '/'; k--)
        ;
    snprintf(b->name, sizeof b->name, "%.*s", (int)(dl - k), d + k);
    free(real);
    return 0;
}

/* ids from text: decimal integers separated by white space; each in the
 * tokenizer's vocabulary, or below vocab_size when there is no tokenizer */
static int parse_ids(ak_tokenizer *tk, int64_t vocab_size, const char *s, size_t len,
                     ak_encoding *enc, ak_err *err)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && strchr(" \t\n\r\f\v", s[i]))
            i++;
        if (i >= len)
            break;
        size_t st = i;
        long long v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && v <= (1LL << 31))
            v = v * 10 + (s[i++] - '0');
        if (i == st || (i < len && !strchr(" \t\n\r\f\v", s[i])) || v > INT32_MAX)
            return ak_fail(err, AK_EDATA, "byte %zu: not a token id", st);
        if (tk ? !ak_tokenizer_id_to_token(tk, (int32_t)v, NULL) : v >= vocab_size)
            return ak_fail(err, AK_EDATA, "byte %zu: id %lld is not in the vocabulary", st, v);
        if (ak_encoding_push(enc, (int32_t)v, 0, 0, tk ? ak_tokenizer_is_special(tk, (int32_t)v) : 0, 0))
            return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    return 0;
}

/* Where the marker occurrences are: regions [rs, re) of text between them. */
static int tokenize_marked(ak_tokenizer *tk, const opts *o, const char *text, size_t len,
                           ak_encoding *enc, int32_t **segs, ak_err *err)
{
    size_t pos = 0;
    int32_t block = 0;
    int32_t *sg = NULL;
    size_t sgcap = 0;
    int rc = 0;
    while (pos <= len) {
        const char *f = o->marker_len ? memmem(text + pos, len - pos, o->marker, o->marker_len) : NULL;
        size_t ms = f ? (size_t)(f - text) : len, me = f ? ms + o->marker_len : len;
        size_t re = ms;
        /* a marker alone on its line goes with the line's newline */
        if (f && (ms == 0 || text[ms - 1] == '\n') && (me == len || text[me] == '\n' ||
                                                      (text[me] == '\r' && me + 1 < len && text[me + 1] == '\n'))) {
            if (me < len && text[me] == '\r')
                me++;
            if (me < len)
                me++;
        }
        size_t before = enc->n;
        if (re > pos && (rc = ak_tokenizer_encode(tk, text + pos, re - pos, (int64_t)pos, enc, err)))
            break;
        if (ak_grow((void **)&sg, &sgcap, enc->n, sizeof *sg)) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = before; i < enc->n; i++)
            sg[i] = block;
        if (enc->n > before)
            block++;
        if (!f)
            break;
        pos = me;
    }
    if (rc) {
        free(sg);
        return rc;
    }
    *segs = sg;
    return 0;
}

static int segment_ids(const opts *o, const char *text, size_t len, const ak_encoding *enc,
                       int32_t **segs, ak_err *err)
{
    int64_t *b;
    size_t nb;
    int rc = ak_text_blocks(text, len, o->mode, &b, &nb, err);
    if (rc)
        return rc;
    int32_t *sg = malloc((enc->n ? enc->n : 1) * sizeof *sg);
    if (!sg) {
        free(b);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    ak_token_blocks(text, len, enc->offsets, enc->n, b, nb, sg);
    free(b);
    *segs = sg;
    return 0;
}

/* --chat: the text as the user's turn.  One final newline of the text is
 * left out of the turn, as llama.cpp's -f does (text keeps it, no token
 * covers it).  With --split STR, STR is cut out of text and the turn is
 * tokenized whole; its tokens that end at or before STR's place (and the
 * template's tokens before the user's text) are the prefix, the rest the
 * suffix, so that prefix + suffix is exactly the whole turn's tokens.
 * --prefix keeps the prefix and text up to where the suffix's first token
 * starts, --suffix the rest (its offsets into that rest of text).
 * *prefix_tokens: the prefix's token count (-1 without --split). */
static int chat_doc(ak_tokenizer *tk, const opts *o, char *text, size_t *tlenp, ak_encoding *enc,
                    int32_t **segs, int64_t *prefix_tokens, ak_err *err)
{
    size_t tlen = *tlenp, mpos = 0;
    if (o->split) {
        size_t ml = strlen(o->split), count = 0;
        for (const char *p = text; (p = memmem(p, (size_t)(text + tlen - p), o->split, ml)); p += ml) {
            if (!count)
                mpos = (size_t)(p - text);
            count++;
        }
        if (!count)
            return ak_fail(err, AK_EDATA, "--split: '%s' is not in the text", o->split);
        if (count > 1)
            return ak_fail(err, AK_EDATA, "--split: '%s' occurs %zu times; it marks the one "
                           "place between prefix and suffix", o->split, count);
        memmove(text + mpos, text + mpos + ml, tlen - mpos - ml);
        tlen -= ml;
    }
    size_t ulen = tlen;
    if (ulen && text[ulen - 1] == '\n')
        ulen--;
    if (mpos > ulen)
        mpos = ulen;
    int rc = ak_tokenizer_chat(tk, o->chat_format, o->system, text, ulen, enc, err);
    if (rc)
        return rc;
    size_t k = enc->n, s0 = mpos;
    if (o->split) {
        /* the template's head: special tokens covering nothing, before any text token */
        size_t first_text = 0;
        while (first_text < enc->n && enc->special[first_text] &&
               enc->offsets[2 * first_text] == enc->offsets[2 * first_text + 1])
            first_text++;
        for (k = first_text; k < enc->n; k++) {
            int64_t s = enc->offsets[2 * k], e = enc->offsets[2 * k + 1];
            int tmpl = enc->special[k] && s == e;
            if (tmpl || e > (int64_t)mpos) {
                if (!tmpl && s < (int64_t)s0)
                    s0 = (size_t)s;   /* a token across the split goes to the suffix */
                break;
            }
        }
        *prefix_tokens = (int64_t)k;
    }
    if (o->part == 1) {
        enc->n = k;
        tlen = s0;
    } else if (o->part == 2) {
        size_t n = enc->n - k;
        memmove(enc->ids, enc->ids + k, n * sizeof *enc->ids);
        memmove(enc->special, enc->special + k, n * sizeof *enc->special);
        if (enc->type_ids)
            memmove(enc->type_ids, enc->type_ids + k, n * sizeof *enc->type_ids);
        for (size_t i = 0; i < n; i++) {
            enc->offsets[2 * i] = enc->offsets[2 * (i + k)] - (int64_t)s0;
            enc->offsets[2 * i + 1] = enc->offsets[2 * (i + k) + 1] - (int64_t)s0;
        }
        enc->n = n;
        memmove(text, text + s0, tlen - s0);
        tlen -= s0;
    }
    if ((rc = segment_ids(o, text, tlen, enc, segs, err)))
        return rc;
    /* the template's tokens belong to no block */
    for (size_t i = 0; i < enc->n; i++)
        if (enc->special[i] && enc->offsets[2 * i] == enc->offsets[2 * i + 1])
            (*segs)[i] = -1;
    *tlenp = tlen;
    return 0;
}

static int one_doc(ak_tokenizer *tk, const bare_model *bare, const opts *o, ak_writer *w,
                   const char *path, ak_err *err)
{
    char *data = NULL, *text = NULL, *repaired = NULL;
    size_t len = 0, tlen = 0;
    ak_encoding enc = {0};
    int32_t *segs = NULL;
    int64_t *ends = NULL;
    ak_doc *d = NULL;
    const char *name = strcmp(path, "-") ? path : "<stdin>";
    int64_t split_tokens = -1;
    int rc = ak_read_file(path, MAX_DOC_BYTES, &data, &len, err);
    if (rc)
        return rc;
    if (o->from_ids && !tk) {
        /* no tokenizer to decode with: no text, empty spans, one block */
        if ((rc = parse_ids(NULL, bare->vocab_size, data, len, &enc, err)))
            goto out;
        if (!(segs = calloc(enc.n ? enc.n : 1, sizeof *segs))) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < 2 * enc.n; i++)
            enc.offsets[i] = 0;
        text = data, tlen = 0;
    } else if (o->from_ids) {
        if ((rc = parse_ids(tk, 0, data, len, &enc, err)))
            goto out;
        if (!(ends = malloc((enc.n ? enc.n : 1) * sizeof *ends))) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = ak_tokenizer_decode(tk, enc.ids, enc.n, NULL, &repaired, &tlen, ends, err)))
            goto out;
        text = repaired;
        for (size_t i = 0; i < enc.n; i++) {
            enc.offsets[2 * i] = i ? ends[i - 1] : 0;
            enc.offsets[2 * i + 1] = ends[i];
        }
        if ((rc = segment_ids(o, text, tlen, &enc, &segs, err)))
            goto out;
    } else {
        text = data, tlen = len;
        if (ak_utf8_check(data, len, err)) {
            size_t nbad;
            if (!o->lossy) {
                rc = AK_EDATA;
                goto out;
            }
            if ((rc = ak_utf8_repair(data, len, &repaired, &tlen, &nbad, err)))
                goto out;
            ak_warn("%s: replaced %zu invalid UTF-8 byte%s with U+FFFD", name, nbad, nbad == 1 ? "" : "s");
            free(data);
            data = NULL;
            text = repaired;
        }
        if (o->chat) {
            if ((rc = chat_doc(tk, o, text, &tlen, &enc, &segs, &split_tokens, err)))
                goto out;
        } else if (o->mode == MODE_MARKER)
            rc = tokenize_marked(tk, o, text, tlen, &enc, &segs, err);
        else if (!(rc = ak_tokenizer_encode(tk, text, tlen, 0, &enc, err)))
            rc = segment_ids(o, text, tlen, &enc, &segs, err);
        if (rc)
            goto out;
        if (!o->no_special && !o->chat) {
            size_t pre = ak_tokenizer_post_prefix(tk), n0 = enc.n;
            if ((rc = ak_tokenizer_post(tk, &enc, (int64_t)tlen, err)))
                goto out;
            int32_t *s2 = malloc((enc.n ? enc.n : 1) * sizeof *s2);
            if (!s2) {
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < enc.n; i++)
                s2[i] = i < pre || i >= pre + n0 ? -1 : segs[i - pre];
            free(segs);
            segs = s2;
        }
    }
    int64_t T = (int64_t)enc.n, tl = (int64_t)tlen, off_shape[2] = {T, 2};
    if (!(d = ak_doc_new(name)) || ak_meta_set_str(&d->meta, "source", name) ||
        (split_tokens >= 0 && ak_meta_set_int(&d->meta, "chat_prefix_tokens", split_tokens))) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    /* the buffers move into the document, none is copied: a long document's
     * text and tokens are held once (bench/tokenize_memory.sh) */
    if ((rc = adopt(d, "text", AK_U8, 1, &tl, text == repaired ? (void **)&repaired : (void **)&data, err)))
        goto out;
    free(data), free(repaired);
    data = repaired = text = NULL;
    if ((rc = adopt(d, "tokens", AK_I32, 1, &T, (void **)&enc.ids, err)) ||
        (rc = adopt(d, "offsets", AK_I64, 2, off_shape, (void **)&enc.offsets, err)) ||
        (rc = adopt(d, "segments", AK_I32, 1, &T, (void **)&segs, err)) ||
        (rc = adopt(d, "special", AK_U8, 1, &T, (void **)&enc.special, err)) ||
        (tk && ak_tokenizer_has_token_types(tk) &&
         (rc = adopt(d, "token_types", AK_I32, 1, &T, (void **)&enc.type_ids, err))))
        goto out;
    ak_encoding_free(&enc);
    rc = ak_write_doc(w, d, err);
out:
    if (rc && err->msg[0] && strncmp(err->msg, name, strlen(name)))
        ak_wrap(err, "%s", name);
    ak_doc_free(d);
    ak_encoding_free(&enc);
    free(segs);
    free(ends);
    free(repaired);
    free(data);
    return rc;
}

int main(int argc, char **argv)
{
    ak_cli_init("tokenize");
    static const struct option lo[] = {
        {"model", required_argument, NULL, 'm'},
        {"no-special", no_argument, NULL, 'N'},
        {"segments", required_argument, NULL, 's'},
        {"marker", required_argument, NULL, 'M'},
        {"from-ids", no_argument, NULL, 'I'},
        {"lossy", no_argument, NULL, 'L'},
        {"chat", no_argument, NULL, 'C'},
        {"system", required_argument, NULL, 'Y'},
        {"chat-format", required_argument, NULL, 'F'},
        {"split", required_argument, NULL, 'S'},
        {"prefix", no_argument, NULL, 'P'},
        {"suffix", no_argument, NULL, 'X'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0}};
    opts o = {.mode = AK_SEG_PARAGRAPH};
    const char *model = NULL, *output = NULL;
    int c, mode_set = 0;
    while ((c = getopt_long(argc, argv, "m:s:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'N': o.no_special = 1; break;
        case 's':
            mode_set = 1;
            if (!strcmp(optarg, "sentence")) o.mode = AK_SEG_SENTENCE;
            else if (!strcmp(optarg, "paragraph")) o.mode = AK_SEG_PARAGRAPH;
            else if (!strcmp(optarg, "line")) o.mode = AK_SEG_LINE;
            else if (!strcmp(optarg, "marker")) o.mode = MODE_MARKER;
            else ak_usage_error("--segments: expected sentence, paragraph, line or marker, not '%s'", optarg);
            break;
        case 'M':
            if (!*optarg)
                ak_usage_error("--marker: empty marker");
            o.marker = optarg;
            o.marker_len = strlen(optarg);
            break;
        case 'I': o.from_ids = 1; break;
        case 'L': o.lossy = 1; break;
        case 'C': o.chat = 1; break;
        case 'Y': o.system = optarg; break;
        case 'F':
            if (strcmp(optarg, "chatml") && strcmp(optarg, "gemma"))
                ak_usage_error("--chat-format: expected chatml or gemma, not '%s'", optarg);
            o.chat_format = optarg;
            break;
        case 'S':
            if (!*optarg)
                ak_usage_error("--split: empty string");
            o.split = optarg;
            break;
        case 'P':
        case 'X':
            if (o.part && o.part != (c == 'P' ? 1 : 2))
                ak_usage_error("--prefix and --suffix: one or the other");
            o.part = c == 'P' ? 1 : 2;
            break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (o.marker && mode_set && o.mode != MODE_MARKER)
        ak_usage_error("--marker goes with --segments marker");
    if (o.marker)
        o.mode = MODE_MARKER;
    if (o.mode == MODE_MARKER && !o.marker)
        ak_usage_error("--segments marker needs --marker STR");
    if (o.from_ids && o.mode == MODE_MARKER)
        ak_usage_error("--from-ids cannot be used with markers");
    if ((o.system || o.chat_format) && !o.chat)
        ak_usage_error("--system and --chat-format go with --chat");
    if (o.split && !o.chat)
        ak_usage_error("--split goes with --chat");
    if (o.part && !o.split)
        ak_usage_error("--%s goes with --split STR", o.part == 1 ? "prefix" : "suffix");
    if (o.chat && (o.from_ids || o.mode == MODE_MARKER))
        ak_usage_error("--chat cannot be used with --from-ids or markers");

    ak_err err = {0};
    if (o.system && ak_utf8_check(o.system, strlen(o.system), &err))
        ak_usage_error("--system: not UTF-8 (%s)", err.msg);
    ak_tokenizer *tk = NULL;
    bare_model bare = {0};
    const char *dir = ak_model_dir(model);
    if (o.from_ids && !ak_tokenizer_exists(dir)) {
        if (mode_set)
            ak_usage_error("--segments: %s has no tokenizer to decode the ids with", dir);
        if (bare_model_load(&bare, dir, &err))
            ak_die(&err);
    } else if (ak_tokenizer_load(&tk, dir, &err)) {
        ak_die(&err);
    }
    ak_output out;
    if (ak_output_open(&out, output, argv + optind, argc - optind, &err))
        ak_die(&err);
    ak_writer *w = NULL;
    ak_header *h = ak_header_new();
    int rc = ak_writer_open_fd(&w, out.fd, out.name, &err);
    if (!rc)
        ak_cli_writer(w);
    if (!rc && !h)
        rc = ak_fail(&err, AK_ENOMEM, "out of memory");
    if (!rc && (ak_meta_set_str(&h->model, "name", tk ? ak_tokenizer_name(tk) : bare.name) ||
                ak_meta_set_int(&h->model, "vocab_size", tk ? ak_tokenizer_vocab_size(tk) : bare.vocab_size) ||
                (tk && ak_meta_set_int(&h->model, "tokenizer_crc32", ak_tokenizer_crc32(tk))) ||
                ak_header_add_stage(h, "tokenize", argc, argv)))
        rc = ak_fail(&err, AK_ENOMEM, "out of memory");
    if (!rc)
        rc = ak_write_header(w, h, &err);
    int ndocs = 0;
    for (int i = optind; !rc && (i < argc || (i == argc && optind == argc)); i++) {
        rc = one_doc(tk, &bare, &o, w, i < argc ? argv[i] : "-", &err);
        ndocs++;
    }
    if (!rc)
        rc = ak_write_end(w, ndocs, &err);
    rc = ak_filter_finish(&out, w, rc, &err);
    ak_header_free(h);
    ak_tokenizer_free(tk);
    if (rc)
        ak_die(&err);
    return 0;
}
