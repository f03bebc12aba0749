/* peek - show an attnkit stream: for humans, as JSON lines, or one tensor's
 * values as plain numbers. */
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/stream.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: peek [-j] [-n N] [-f NAME] [-o FILE] [FILE...]\n"
           "Show attnkit tensor streams (stdin when no FILE).\n"
           "  -j, --json        one JSON object per record (JSON lines)\n"
           "  -f, --field NAME  print tensor NAME's values (all, or -n's), one line per\n"
           "                    document (not with -j)\n"
           "  -n, --values N    values shown per tensor (default 8; -1 = all)\n"
           "  -o, --output FILE write to FILE (default stdout); a file is replaced only\n"
           "                    when the run succeeds\n"
           "  -h, --help        this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad stream, 66 cannot open, 73 cannot create\n"
           "the output, 74 I/O error.\n");
}

enum mode { HUMAN, JSON, FIELD };

struct opts {
    enum mode mode;
    const char *field;
    long nvalues;
    long field_values;   /* --field: -n when given, else all (-1) */
};

/* Shortest text that reads back as the same value of the tensor's dtype. */
static void fmt_value(char *buf, size_t n, const ak_tensor *t, size_t i)
{
    double v = ak_tensor_get(t, i);
    switch (t->dtype) {
    case AK_U8: case AK_I32: snprintf(buf, n, "%.0f", v); break;
    case AK_I64: {
        int64_t x;
        memcpy(&x, (const char *)t->data + 8 * i, 8);
        snprintf(buf, n, "%lld", (long long)x);
        break;
    }
    default: {
        /* %.9g round-trips any float32; try shorter first for readability. */
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, n, "%.*g", prec, v);
            if ((float)strtod(buf, NULL) == (float)v)
                break;
        }
    }
    }
}

/* Human output never hands the terminal a control character, a byte that
 * is not UTF-8 or a bidi override from the stream: every string goes
 * through ak_escape. */
static void put_str(const char *s, size_t n, int quoted)
{
    char buf[4096];
    if (quoted)
        putchar('"');
    while (n) {
        /* Escape in pieces; a piece ends on a character boundary. */
        size_t take = n < 512 ? n : 512;
        while (take < n && take > 508 && ((unsigned char)s[take] & 0xc0) == 0x80)
            take--;
        ak_escape(buf, sizeof buf, s, take, AK_ESC_FORMAT | (quoted ? AK_ESC_QUOTE : 0));
        fputs(buf, stdout);
        s += take;
        n -= take;
    }
    if (quoted)
        putchar('"');
}

static void put_cstr(const char *s, int quoted) { put_str(s, strlen(s), quoted); }

static void print_text_preview(const ak_tensor *t, size_t max)
{
    size_t n = t->nbytes < max ? t->nbytes : max;
    put_str(t->data, n, 1);
    if (n < t->nbytes)
        fputs("...", stdout);
}

static void print_meta_human(const ak_metamap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const ak_meta *it = &m->items[i];
        putchar(' ');
        put_cstr(it->key, 0);
        putchar('=');
        switch (it->kind) {
        case AK_META_NIL: fputs("nil", stdout); break;
        case AK_META_BOOL: fputs(it->i ? "true" : "false", stdout); break;
        case AK_META_INT: printf("%lld", (long long)it->i); break;
        case AK_META_FLOAT: printf("%g", it->f); break;
        case AK_META_STR: put_str(it->s, it->slen, 1); break;
        case AK_META_RAW: printf("<%zu bytes of msgpack>", it->rawlen); break;
        }
    }
}

static void human_header(const ak_header *h)
{
    printf("stream %s %d.%d\n", AK_STREAM_FORMAT, h->major, h->minor);
    printf("  model:");
    print_meta_human(&h->model);
    putchar('\n');
    for (size_t i = 0; i < h->nhistory; i++) {
        const ak_stage *s = &h->history[i];
        printf("  history %zu: ", i + 1);
        put_cstr(s->program, 0);
        putchar(' ');
        put_cstr(s->version, 0);
        putchar(':');
        for (size_t j = 0; j < s->nargs; j++) {
            putchar(' ');
            put_cstr(s->args[j], 0);
        }
        putchar('\n');
    }
    if (h->extra.n) {
        printf("  other fields:");
        print_meta_human(&h->extra);
        putchar('\n');
    }
}

static void human_doc(const ak_doc *d, long nvalues)
{
    fputs("doc ", stdout);
    put_cstr(d->id, 1);
    putchar('\n');
    if (d->meta.n) {
        printf("  meta:");
        print_meta_human(&d->meta);
        putchar('\n');
    }
    for (size_t i = 0; i < d->ntensors; i++) {
        const ak_tensor *t = d->tensors[i];
        char shape[128] = "[";
        for (int k = 0; k < t->ndim; k++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld",
                     k ? ", " : "", (long long)t->shape[k]);
        strncat(shape, "]", sizeof shape - strlen(shape) - 1);
        char name[256];
        ak_escape(name, sizeof name, t->name, strlen(t->name), AK_ESC_FORMAT);
        printf("  %-20s %-4s %-16s %10zu B  ", name, ak_dtype_name(t->dtype), shape, t->nbytes);
        size_t count = ak_tensor_count(t);
        if (strcmp(t->name, "text") == 0 && t->dtype == AK_U8) {
            print_text_preview(t, nvalues < 0 ? t->nbytes : (size_t)nvalues * 8);
        } else {
            size_t show = nvalues < 0 || (size_t)nvalues > count ? count : (size_t)nvalues;
            for (size_t k = 0; k < show; k++) {
                char b[64];
                fmt_value(b, sizeof b, t, k);
                printf("%s%s", k ? " " : "", b);
            }
            if (show < count)
                fputs(" ...", stdout);
        }
        putchar('\n');
    }
}

/* ---- JSON lines (jansson does the escaping and number formatting) ----
 * Output is ASCII (JSON_ENSURE_ASCII: \uXXXX for the rest, so no control
 * or bidi character reaches a terminal raw either).  The reader hands out
 * UTF-8 only; a string jansson would still refuse goes out escaped. */

static json_t *jstr(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (!v) {
        char buf[4096];
        ak_escape(buf, sizeof buf, s, n, 0);
        v = json_string(buf);
    }
    return v;
}

static json_t *jcstr(const char *s) { return jstr(s, strlen(s)); }

static void jset(json_t *o, const char *key, json_t *v)
{
    if (json_object_set_new(o, key, v) != 0) {
        char buf[4096];
        ak_escape(buf, sizeof buf, key, strlen(key), 0);
        json_object_set_new(o, buf, v);
    }
}

static json_t *meta_json(const ak_metamap *m)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->n; i++) {
        const ak_meta *it = &m->items[i];
        json_t *v;
        switch (it->kind) {
        case AK_META_BOOL: v = json_boolean(it->i); break;
        case AK_META_INT: v = json_integer(it->i); break;
        case AK_META_FLOAT: v = json_real(it->f); break;
        case AK_META_STR: v = jstr(it->s, it->slen); break;
        case AK_META_RAW: v = json_string("<msgpack>"); break;
        default: v = json_null(); break;
        }
        jset(o, it->key, v);
    }
    return o;
}

static json_t *tensor_json(const ak_tensor *t, long nvalues)
{
    json_t *o = json_object(), *shape = json_array(), *vals = json_array();
    json_object_set_new(o, "name", jcstr(t->name));
    json_object_set_new(o, "dtype", json_string(ak_dtype_name(t->dtype)));
    for (int k = 0; k < t->ndim; k++)
        json_array_append_new(shape, json_integer(t->shape[k]));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "bytes", json_integer((json_int_t)t->nbytes));
    size_t count = ak_tensor_count(t);
    size_t show = nvalues < 0 || (size_t)nvalues > count ? count : (size_t)nvalues;
    for (size_t k = 0; k < show; k++) {
        if (t->dtype == AK_U8 || t->dtype == AK_I32)
            json_array_append_new(vals, json_integer((json_int_t)ak_tensor_get(t, k)));
        else if (t->dtype == AK_I64) {
            int64_t x;
            memcpy(&x, (const char *)t->data + 8 * k, 8);
            json_array_append_new(vals, json_integer(x));
        } else
            json_array_append_new(vals, json_real(ak_tensor_get(t, k)));
    }
    json_object_set_new(o, "values", vals);
    json_object_set_new(o, "complete", json_boolean(show == count));
    return o;
}

static void json_print(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
                            JSON_REAL_PRECISION(9));
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(o);
}

static void json_record(const ak_record *rec, long nvalues)
{
    json_t *o = json_object();
    switch (rec->type) {
    case AK_REC_HEADER: {
        const ak_header *h = rec->header;
        json_t *hist = json_array();
        json_object_set_new(o, "type", json_string("header"));
        json_object_set_new(o, "format", json_string(AK_STREAM_FORMAT));
        json_object_set_new(o, "version", json_pack("[ii]", h->major, h->minor));
        json_object_set_new(o, "model", meta_json(&h->model));
        for (size_t i = 0; i < h->nhistory; i++) {
            json_t *args = json_array();
            for (size_t j = 0; j < h->history[i].nargs; j++)
                json_array_append_new(args, jcstr(h->history[i].args[j]));
            json_array_append_new(hist, json_pack("{s:o,s:o,s:o}", "program",
                                                  jcstr(h->history[i].program), "version",
                                                  jcstr(h->history[i].version), "args", args));
        }
        json_object_set_new(o, "history", hist);
        break;
    }
    case AK_REC_DOC: {
        json_t *ts = json_array();
        json_object_set_new(o, "type", json_string("doc"));
        json_object_set_new(o, "id", jcstr(rec->doc->id));
        json_object_set_new(o, "meta", meta_json(&rec->doc->meta));
        for (size_t i = 0; i < rec->doc->ntensors; i++)
            json_array_append_new(ts, tensor_json(rec->doc->tensors[i], nvalues));
        json_object_set_new(o, "tensors", ts);
        break;
    }
    case AK_REC_END:
        json_object_set_new(o, "type", json_string("end"));
        json_object_set_new(o, "docs", json_integer(rec->end_docs));
        break;
    case AK_REC_OTHER:
        json_object_set_new(o, "type", json_string("other"));
        json_object_set_new(o, "bytes", json_integer((json_int_t)rec->rawlen));
        break;
    }
    json_print(o);
}

static int field_doc(const ak_doc *d, const char *name, long nvalues, ak_err *err)
{
    const ak_tensor *t = ak_doc_get(d, name);
    if (!t)
        return ak_fail(err, AK_EDATA, "document '%s' has no tensor '%s'", d->id, name);
    size_t count = ak_tensor_count(t);
    if (nvalues >= 0 && (size_t)nvalues < count)
        count = (size_t)nvalues;
    for (size_t k = 0; k < count; k++) {
        char b[64];
        fmt_value(b, sizeof b, t, k);
        if (k)
            putchar(' ');
        fputs(b, stdout);
    }
    putchar('\n');
    return 0;
}

static int peek_record(void *vo, ak_record *rec, ak_err *err)
{
    const struct opts *o = vo;
    if (o->mode == JSON)
        json_record(rec, o->nvalues);
    else if (o->mode == FIELD) {
        if (rec->type == AK_REC_DOC)
            return field_doc(rec->doc, o->field, o->field_values, err);
    } else if (rec->type == AK_REC_HEADER)
        human_header(rec->header);
    else if (rec->type == AK_REC_DOC)
        human_doc(rec->doc, o->nvalues);
    else if (rec->type == AK_REC_END)
        printf("end: %lld document%s\n", (long long)rec->end_docs, rec->end_docs == 1 ? "" : "s");
    else
        printf("other record: %zu bytes\n", rec->rawlen);
    return 0;
}

static int peek_input(const char *path, struct opts *o, ak_err *err)
{
    return ak_cli_read(path, peek_record, o, err);
}

int main(int argc, char **argv)
{
    ak_cli_init("peek");
    struct opts o = {.mode = HUMAN, .nvalues = 8};
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'},      {"field", required_argument, 0, 'f'},
        {"values", required_argument, 0, 'n'}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *output = NULL;
    int c, json = 0;
    o.field_values = -1;
    while ((c = getopt_long(argc, argv, "jf:n:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': o.mode = JSON; json = 1; break;
        case 'f': o.mode = FIELD; o.field = optarg; break;
        case 'n': o.field_values = o.nvalues = ak_parse_long("-n", optarg, -1, 1L << 40); break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (o.field && json) /* one or the other would do nothing */
        ak_usage_error("--field prints plain numbers, --json JSON lines: choose one");
    ak_err err = {0};
    ak_output out;
    if (ak_output_open(&out, output, argv + optind, argc - optind, &err) ||
        ak_output_use_stdout(&out, &err))
        ak_die(&err);
    int rc = 0;
    if (optind == argc)
        rc = peek_input("-", &o, &err);
    for (int i = optind; i < argc && !rc; i++)
        rc = peek_input(argv[i], &o, &err);
    rc = ak_filter_finish(&out, NULL, rc, &err);
    if (rc)
        ak_die(&err);
    return 0;
}
