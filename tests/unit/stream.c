/* Unit tests of the stream library: round trips of every dtype, with and
 * without compression, metadata, unknown fields passed through, the test
 * vectors, half-precision conversions; format 1.1's crc32 against single-bit
 * flips, UTF-8 checks in reader and writer, nesting, duplicate ids, escaping.
 *   stream                 run the tests
 *   stream --write FILE [LEVEL]   write the sample stream the Python interop test
 *                                 reads (zlib LEVEL, default 0: none) */
#include "attnkit/stream.h"
#include "attnkit/io.h"
#include "test.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static ak_doc *sample_doc(void)
{
    ak_err err;
    ak_doc *d = ak_doc_new("sample.txt");
    ak_meta_set_str(&d->meta, "source", "sample.txt");
    ak_meta_set_int(&d->meta, "causal", 1);
    ak_meta_set_float(&d->meta, "temperature", 0.25);
    ak_meta_set_str(&d->meta, "title", "na\xc3\xafve \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac");
    int64_t s3[] = {3}, s23[] = {2, 3};
    ak_tensor *t = ak_tensor_new("tokens", AK_I32, 1, s3, &err);
    int32_t *tok = ak_tensor_i32(t);
    tok[0] = 101; tok[1] = -7; tok[2] = 2147483647;
    ak_doc_put(d, t, &err);
    t = ak_tensor_new("x", AK_F32, 2, s23, &err);
    float *x = ak_tensor_f32(t);
    for (int i = 0; i < 6; i++)
        x[i] = (float)i / 3.0f - 1.0f;
    ak_doc_put(d, t, &err);
    int64_t big[] = {40, 50};
    t = ak_tensor_new("big", AK_F32, 2, big, &err); /* 8000 bytes: compressible */
    for (int i = 0; i < 2000; i++)
        ak_tensor_f32(t)[i] = (float)(i % 17) * 0.5f;
    ak_doc_put(d, t, &err);
    t = ak_tensor_new("half", AK_F16, 1, s3, &err);
    uint16_t *h = t->data;
    h[0] = ak_f32_to_f16(1.0f); h[1] = ak_f32_to_f16(-0.5f); h[2] = ak_f32_to_f16(65504.0f);
    ak_doc_put(d, t, &err);
    t = ak_tensor_new("brain", AK_BF16, 1, s3, &err);
    h = t->data;
    h[0] = ak_f32_to_bf16(1.0f); h[1] = ak_f32_to_bf16(-2.5f); h[2] = ak_f32_to_bf16(3.0e38f);
    ak_doc_put(d, t, &err);
    t = ak_tensor_new("offsets", AK_I64, 2, (int64_t[]){3, 2}, &err);
    for (int i = 0; i < 6; i++)
        ak_tensor_i64(t)[i] = (int64_t)i * 5000000000LL;
    ak_doc_put(d, t, &err);
    return d;
}

static int write_sample(const char *path, int level)
{
    ak_err err;
    ak_output a;
    ak_writer *w;
    if (ak_output_open(&a, path, NULL, 0, &err))
        return 1;
    if (ak_writer_open_fd(&w, a.fd, path, &err)) {
        ak_output_abort(&a);
        return 1;
    }
    ak_writer_set_compress(w, level);
    ak_header *h = ak_header_new();
    ak_meta_set_str(&h->model, "name", "unit");
    char *argv[] = {"stream", "--write", (char *)path, "caf\xe9.txt"};
    ak_header_add_stage(h, "stream-test", 4, argv);
    ak_doc *d = sample_doc();
    int rc = ak_write_header(w, h, &err) || ak_write_doc(w, d, &err) || ak_write_end(w, -1, &err);
    rc |= ak_writer_close(w, &err);
    ak_header_free(h);
    ak_doc_free(d);
    if (rc) {
        ak_output_abort(&a);
        return 1;
    }
    return ak_output_commit(&a, &err) ? 1 : 0;
}

static void check_sample(const char *path, const char *what)
{
    ak_err err = {0};
    ak_reader *r;
    ak_record rec;
    CHECK(ak_reader_open_path(&r, path, &err) == 0, "%s: open", what);
    CHECK(ak_reader_next(r, &rec, &err) == 1 && rec.type == AK_REC_HEADER, "%s: header", what);
    CHECK(rec.header->nhistory == 1 && strcmp(rec.header->history[0].args[1], "--write") == 0,
          "%s: history", what);
    CHECK(strcmp(rec.header->history[0].args[3], "caf\xef\xbf\xbd.txt") == 0,
          "%s: a Latin-1 argument is stored with U+FFFD for its bad byte", what);
    CHECK(rec.header->major == 1 && rec.header->minor == 1, "%s: written as version 1.1", what);
    CHECK(strcmp(ak_meta_str(&rec.header->model, "name"), "unit") == 0, "%s: model name", what);
    ak_record_free(&rec);
    CHECK(ak_reader_next(r, &rec, &err) == 1 && rec.type == AK_REC_DOC, "%s: doc", what);
    ak_doc *d = rec.doc;
    ak_doc *want = sample_doc();
    int same = d->ntensors == want->ntensors;
    for (size_t i = 0; same && i < d->ntensors; i++) {
        ak_tensor *a = d->tensors[i], *b = want->tensors[i];
        same = strcmp(a->name, b->name) == 0 && a->dtype == b->dtype && a->ndim == b->ndim &&
               a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
    }
    CHECK(same, "%s: every tensor identical", what);
    int64_t causal = 0;
    const ak_meta *temp = ak_meta_get(&d->meta, "temperature");
    CHECK(ak_meta_int(&d->meta, "causal", &causal) == 0 && causal == 1 && temp &&
          temp->kind == AK_META_FLOAT && temp->f == 0.25, "%s: metadata", what);
    ak_doc_free(want);
    ak_record_free(&rec);
    CHECK(ak_reader_next(r, &rec, &err) == 1 && rec.type == AK_REC_END && rec.end_docs == 1,
          "%s: end", what);
    CHECK(ak_reader_next(r, &rec, &err) == 0, "%s: clean end of input", what);
    ak_reader_close(r);
}

/* Reads a vector and writes it back; unknown fields and records survive. */
static void check_passthrough(const char *vec, const char *out)
{
    ak_err err = {0};
    ak_reader *r;
    ak_writer *w;
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ak_reader_open_path(&r, vec, &err) == 0 &&
          ak_writer_open_fd(&w, fd, out, &err) == 0, "pass-through: open");
    ak_record rec;
    int rc, n = 0;
    while ((rc = ak_reader_next(r, &rec, &err)) == 1) {
        if (rec.type == AK_REC_HEADER) ak_write_header(w, rec.header, &err);
        else if (rec.type == AK_REC_DOC) ak_write_doc(w, rec.doc, &err);
        else if (rec.type == AK_REC_END) ak_write_end(w, -1, &err);
        else ak_write_raw(w, rec.raw, rec.rawlen, &err);
        ak_record_free(&rec);
        n++;
    }
    CHECK(rc == 0 && n == 4, "pass-through: read %d records (%s)", n, rc ? err.msg : "ok");
    CHECK(ak_writer_close(w, &err) == 0, "pass-through: close");
    close(fd);
    ak_reader_close(r);
    /* Read the copy: the unknown header field and record are still there. */
    CHECK(ak_reader_open_path(&r, out, &err) == 0, "pass-through: reopen");
    int saw_shiny = 0, saw_other = 0, saw_future = 0;
    while ((rc = ak_reader_next(r, &rec, &err)) == 1) {
        if (rec.type == AK_REC_HEADER)
            saw_shiny = ak_meta_get(&rec.header->extra, "shiny") != NULL;
        if (rec.type == AK_REC_DOC)
            saw_future = ak_meta_get(&rec.doc->extra, "future") != NULL;
        if (rec.type == AK_REC_OTHER)
            saw_other = 1;
        ak_record_free(&rec);
    }
    CHECK(rc == 0 && saw_shiny && saw_other && saw_future,
          "pass-through: unknown header field, doc field and record preserved");
    ak_reader_close(r);
}

static void check_half(void)
{
    CHECK(ak_f32_to_f16(1.0f) == 0x3c00 && ak_f16_to_f32(0x3c00) == 1.0f, "f16 1.0");
    CHECK(ak_f32_to_f16(65504.0f) == 0x7bff, "f16 max");
    CHECK(ak_f32_to_f16(65520.0f) == 0x7c00, "f16 overflow rounds to inf");
    CHECK(ak_f16_to_f32(0x0001) == 5.9604645e-8f, "f16 smallest subnormal");
    CHECK(ak_f32_to_f16(5.9604645e-8f) == 0x0001, "f32 -> f16 subnormal");
    CHECK(ak_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "f16 ties to even (down)");
    CHECK(ak_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "f16 ties to even (up)");
    CHECK(ak_f32_to_bf16(1.0f) == 0x3f80 && ak_bf16_to_f32(0x3f80) == 1.0f, "bf16 1.0");
    CHECK(ak_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 ties to even");
    int exact = 1;
    for (uint32_t h = 0; h < 0x7c00; h++)
        exact &= ak_f32_to_f16(ak_f16_to_f32((uint16_t)h)) == h;
    CHECK(exact, "every finite positive f16 round-trips through f32");
}

static void check_shapes(void)
{
    ak_err err;
    size_t n;
    int64_t ok[] = {3, 0, 5}, neg[] = {3, -1}, ovf[] = {1LL << 40, 1LL << 40};
    CHECK(ak_shape_bytes(AK_F32, 3, ok, &n, &err) == 0 && n == 0, "zero dimension: 0 bytes");
    CHECK(ak_shape_bytes(AK_F32, 2, neg, &n, &err) == AK_EDATA, "negative dimension refused");
    CHECK(ak_shape_bytes(AK_F32, 2, ovf, &n, &err) == AK_EDATA, "overflowing shape refused");
    CHECK(ak_shape_bytes(AK_F32, 9, ok, &n, &err) == AK_EDATA, "nine dimensions refused");
}

/* ---- decoding a byte string, for the bit-flip counts ---- */

/* Reads buf[0..n) to the end and writes every record back; returns 0 with
 * the re-encoding in *out (what a filter would make of the input), or -1
 * if the reader refused the input. */
static int reencode(const unsigned char *buf, size_t n, unsigned char **out, size_t *outn)
{
    FILE *in = tmpfile(), *copy = tmpfile();
    ak_reader *r = NULL;
    ak_writer *w = NULL;
    ak_err err;
    int rc = -1;
    if (!in || !copy || fwrite(buf, 1, n, in) != n || fflush(in) || fseek(in, 0, SEEK_SET) ||
        ak_reader_open_fd(&r, fileno(in), "flip", &err) ||
        ak_writer_open_fd(&w, fileno(copy), "copy", &err))
        goto done;
    ak_writer_set_compress(w, 0);
    ak_record rec;
    int got;
    while ((got = ak_reader_next(r, &rec, &err)) == 1) {
        if (rec.type == AK_REC_HEADER) ak_write_header(w, rec.header, &err);
        else if (rec.type == AK_REC_DOC) ak_write_doc(w, rec.doc, &err);
        else if (rec.type == AK_REC_END) ak_write_end(w, -1, &err);
        else ak_write_raw(w, rec.raw, rec.rawlen, &err);
        ak_record_free(&rec);
    }
    if (got == 0 && ak_writer_close(w, &err) == 0) {
        w = NULL;
        long len = ftell(copy);
        *outn = (size_t)len;
        *out = malloc(*outn + 1);
        rewind(copy);
        rc = *out && fread(*out, 1, *outn, copy) == *outn ? 0 : -1;
    }
done:
    ak_writer_close(w, &err);
    ak_reader_close(r);
    if (in) fclose(in);
    if (copy) fclose(copy);
    return rc;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    char *data;
    ak_err err;
    return ak_read_file(path, 1 << 20, &data, n, &err) ? NULL : (unsigned char *)data;
}

/* Marks in payload[] the bytes of every tensor's data in the file: found
 * as a bin8 header followed by the bytes the reader decoded. */
static void mark_payloads(const unsigned char *file, size_t n, unsigned char *payload)
{
    FILE *in = tmpfile();
    fwrite(file, 1, n, in);
    fflush(in);
    rewind(in);
    ak_reader *r;
    ak_err err;
    ak_record rec;
    ak_reader_open_fd(&r, fileno(in), "mark", &err);
    while (ak_reader_next(r, &rec, &err) == 1) {
        for (size_t i = 0; rec.type == AK_REC_DOC && i < rec.doc->ntensors; i++) {
            const ak_tensor *t = rec.doc->tensors[i];
            unsigned char pat[258] = {0xc4, (unsigned char)t->nbytes};
            if (t->nbytes == 0 || t->nbytes > 255)
                continue;
            memcpy(pat + 2, t->data, t->nbytes);
            const unsigned char *at = memmem(file, n, pat, t->nbytes + 2);
            if (at)
                memset(payload + (at - file) + 2, 1, t->nbytes);
        }
        ak_record_free(&rec);
    }
    ak_reader_close(r);
    fclose(in);
}

/* Flips every bit of a vector, one at a time, and counts what the reader
 * made of it: refused, the same records, or different records (silent). */
static void bit_flips(const char *path, int has_crc)
{
    size_t n, refn, outn;
    unsigned char *file = slurp(path, &n), *ref, *out;
    CHECK(file && reencode(file, n, &ref, &refn) == 0, "%s: read", path);
    if (!file)
        return;
    unsigned char *payload = calloc(n, 1);
    mark_payloads(file, n, payload);
    size_t npayload = 0, silent_payload = 0, refused_payload = 0, silent_other = 0;
    for (size_t i = 0; i < n; i++)
        npayload += payload[i];
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) {
            file[i] ^= (unsigned char)(1u << b);
            int rc = reencode(file, n, &out, &outn);
            int silent = rc == 0 && (outn != refn || memcmp(out, ref, refn) != 0);
            if (rc == 0)
                free(out);
            if (payload[i]) {
                silent_payload += silent;
                refused_payload += rc != 0;
            } else
                silent_other += silent;
            file[i] ^= (unsigned char)(1u << b);
        }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (has_crc)
        CHECK(npayload > 0 && silent_payload == 0 && refused_payload == 8 * npayload,
              "%s: all %zu single-bit flips in the %zu payload bytes refused (%zu other "
              "flips of %zu changed a value crc32 does not cover: ids, names, metadata)",
              base, 8 * npayload, npayload, silent_other, 8 * (n - npayload));
    else
        CHECK(npayload > 0 && silent_payload > 0,
              "%s (1.0, no crc32): %zu of %zu payload bit flips pass silently: the count above "
              "can fail", base, silent_payload, 8 * npayload);
    free(payload);
    free(ref);
    free(file);
}

/* ---- strings ---- */

static void check_utf8(void)
{
    static const struct { const char *s; size_t n; int ok; const char *what; } cases[] = {
        {"", 0, 1, "empty"},
        {"\x7f", 1, 1, "U+007F"},
        {"\xc2\x80", 2, 1, "U+0080"},
        {"\xdf\xbf", 2, 1, "U+07FF"},
        {"\xe0\xa0\x80", 3, 1, "U+0800"},
        {"\xed\x9f\xbf", 3, 1, "U+D7FF"},
        {"\xee\x80\x80", 3, 1, "U+E000"},
        {"\xef\xbf\xbf", 3, 1, "U+FFFF"},
        {"\xf0\x90\x80\x80", 4, 1, "U+10000"},
        {"\xf4\x8f\xbf\xbf", 4, 1, "U+10FFFF"},
        {"a\0b", 3, 1, "NUL is UTF-8 (refused elsewhere)"},
        {"\x80", 1, 0, "lone continuation byte"},
        {"\xc0\xaf", 2, 0, "overlong 2-byte"},
        {"\xc1\xbf", 2, 0, "overlong 2-byte (C1)"},
        {"\xe0\x9f\xbf", 3, 0, "overlong 3-byte"},
        {"\xf0\x8f\xbf\xbf", 4, 0, "overlong 4-byte"},
        {"\xed\xa0\x80", 3, 0, "high surrogate"},
        {"\xed\xbf\xbf", 3, 0, "low surrogate"},
        {"\xf4\x90\x80\x80", 4, 0, "above U+10FFFF"},
        {"\xf5\x80\x80\x80", 4, 0, "F5 lead byte"},
        {"\xff", 1, 0, "FF"},
        {"\xe2\x82", 2, 0, "cut 3-byte sequence"},
        {"\xe2\x28\xa1", 3, 0, "bad second byte"},
        {"\xf0\x90\x80", 3, 0, "cut 4-byte sequence"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(ak_utf8_valid(cases[i].s, cases[i].n) == cases[i].ok, "UTF-8 %s: %s",
              cases[i].ok ? "valid" : "invalid", cases[i].what);
}

/* The writer refuses a string that is not UTF-8 and writes nothing of it. */
static void check_writer_utf8(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/bad.ak", dir);
    int64_t one[] = {1};
    for (int k = 0; k < 5; k++) {
        ak_err err = {0};
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ak_writer *w;
        ak_writer_open_fd(&w, fd, path, &err);
        ak_header *h = ak_header_new();
        ak_doc *d = ak_doc_new(k == 0 ? "d\xff" : "d0");
        const char *what[] = {"document id", "meta value", "meta key", "tensor name",
                              "model name"};
        if (k == 1) ak_meta_set_str(&d->meta, "source", "a\xed\xa0\x80");
        if (k == 2) ak_meta_set_int(&d->meta, "\xc0\xaf", 1);
        ak_doc_put(d, ak_tensor_new(k == 3 ? "tok\xe2\x82" : "tok", AK_I32, 1, one, &err), &err);
        if (k == 4) ak_meta_set_str(&h->model, "name", "\xf4\x90\x80\x80");
        int rc = ak_write_header(w, h, &err);
        if (rc == 0)
            rc = ak_write_doc(w, d, &err);
        ak_writer_close(w, &err);
        struct stat st;
        fstat(fd, &st);
        close(fd);
        off_t header_size = st.st_size;
        char shown[1024];
        ak_escape(shown, sizeof shown, err.msg, strlen(err.msg), 0);
        CHECK(rc == AK_EDATA && strstr(err.msg, "not valid UTF-8") &&
              (k == 4 ? header_size == 0 : header_size > 0),
              "writer refuses a %s that is not UTF-8, before writing the record (%s)", what[k],
              shown);
        ak_header_free(h);
        ak_doc_free(d);
    }
    unlink(path);
}

static int read_all_rc(const unsigned char *buf, size_t n, ak_err *err)
{
    FILE *in = tmpfile();
    fwrite(buf, 1, n, in);
    fflush(in);
    rewind(in);
    ak_reader *r;
    ak_reader_open_fd(&r, fileno(in), "mem", err);
    ak_record rec;
    int rc;
    while ((rc = ak_reader_next(r, &rec, err)) == 1)
        ak_record_free(&rec);
    ak_reader_close(r);
    fclose(in);
    return rc;
}

/* header + {"type":"doc","id":"d0","deep":[[...]]} + end, by hand. */
static void check_depth(void)
{
    static const unsigned char hdr[] = "\x83\xa4type\xa6header\xa6" "format\xae" "attnkit-stream"
                                       "\xa7version\x92\x01\x01";
    static const unsigned char end[] = "\x82\xa4type\xa3" "end\xa4" "docs\x01";
    static const unsigned char doc[] = "\x83\xa4type\xa3" "doc\xa2id\xa2" "d0\xa4" "deep";
    for (int levels = 126; levels <= 130; levels++) {
        unsigned char buf[512];
        size_t n = 0;
        memcpy(buf + n, hdr, sizeof hdr - 1); n += sizeof hdr - 1;
        memcpy(buf + n, doc, sizeof doc - 1); n += sizeof doc - 1;
        for (int i = 1; i < levels; i++)   /* the record is level 1 */
            buf[n++] = 0x91;
        buf[n++] = 0xc0;
        memcpy(buf + n, end, sizeof end - 1); n += sizeof end - 1;
        ak_err err = {0};
        int rc = read_all_rc(buf, n, &err);
        if (levels <= AK_STREAM_MAX_DEPTH)
            CHECK(rc == 0, "a record %d levels deep is read (%s)", levels, rc ? err.msg : "ok");
        else
            CHECK(rc == AK_EDATA && strstr(err.msg, "nested deeper than 128 levels"),
                  "a record %d levels deep is refused as data: %s", levels, err.msg);
    }
    /* 100000 levels of map16 headers claiming one pair each */
    size_t n = 3 * 100000 + 64;
    unsigned char *buf = calloc(n, 1);
    size_t k = 0;
    memcpy(buf, hdr, sizeof hdr - 1); k += sizeof hdr - 1;
    for (int i = 0; i < 100000; i++) { buf[k++] = 0x81; buf[k++] = 0xa1; buf[k++] = 'x'; }
    ak_err err = {0};
    int rc = read_all_rc(buf, k, &err);
    CHECK(rc == AK_EDATA && strstr(err.msg, "nested deeper"), "100000 nested maps: %s", err.msg);
    free(buf);
}

static void check_dup_ids(void)
{
    ak_err err = {0};
    char dir[] = "/tmp/ak-dup-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return;
    snprintf(path, sizeof path, "%s/d.ak", dir);
    /* 3 streams: ids unique in each, repeated across them; then one with a
     * repeat after 2000 others (the id set grows past its first size). */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ak_writer *w, *w2;
    ak_writer_open_fd(&w, fd, path, &err);
    ak_header *h = ak_header_new();
    int wrc = 0, refused = 0;
    for (int s = 0; s < 4; s++) {
        wrc |= ak_write_header(w, h, &err);
        int ndocs = s < 3 ? 3 : 2000;
        for (int i = 0; i < ndocs; i++) {
            char id[32];
            snprintf(id, sizeof id, "doc%d", i);
            ak_doc *d = ak_doc_new(id);
            wrc |= ak_write_doc(w, d, &err);
            ak_doc_free(d);
        }
        if (s < 3)
            wrc |= ak_write_end(w, -1, &err);
    }
    ak_doc *again = ak_doc_new("doc1234");
    refused = ak_write_doc(w, again, &err) == AK_EDATA && strstr(err.msg, "'doc1234' is already");
    CHECK(wrc == 0 && refused, "the writer refuses an id it wrote in this stream (%s)", err.msg);
    /* A second writer on the same file knows nothing of the first's ids:
     * the reader must catch the repeat. */
    ak_writer_open_fd(&w2, fd, path, &err);
    ak_write_doc(w2, again, &err);
    ak_write_end(w2, 2001, &err);
    ak_writer_close(w2, &err);
    ak_doc_free(again);
    ak_writer_close(w, &err);
    close(fd);
    ak_header_free(h);
    ak_reader *r;
    ak_record rec;
    int rc, docs = 0;
    ak_reader_open_path(&r, path, &err);
    while ((rc = ak_reader_next(r, &rec, &err)) == 1) {
        docs += rec.type == AK_REC_DOC;
        ak_record_free(&rec);
    }
    ak_reader_close(r);
    CHECK(rc == AK_EDATA && docs == 9 + 2000 && strstr(err.msg, "'doc1234' appears twice") &&
          strstr(err.msg, "first in record 1251"),
          "ids may repeat across streams, not within one: %d documents read, then: %s", docs,
          err.msg);
    unlink(path);
    rmdir(dir);
}

static void check_escape(void)
{
    char out[128];
    static const struct { const char *in; int flags; const char *want; const char *what; } c[] = {
        {"a\tb\nc\rd", 0, "a\\tb\\nc\\rd", "tab, newline, CR"},
        {"\x1b[31mred\x7f", 0, "\\x1b[31mred\\x7f", "ESC and DEL"},
        {"\xc2\x85\xc2\x9b", 0, "\\u0085\\u009b", "C1 controls (NEL, CSI)"},
        {"x\xe2\x80\xaey", AK_ESC_FORMAT, "x\\u202ey", "bidi override, format flag"},
        {"x\xe2\x80\xaey", 0, "x\xe2\x80\xaey", "bidi override kept without the flag"},
        {"\xe2\x80\xa8\xe2\x81\xa6", AK_ESC_FORMAT, "\\u2028\\u2066", "line separator, isolate"},
        {"caf\xe9 \xed\xa0\x80", 0, "caf\\xe9 \\xed\\xa0\\x80", "bytes that are not UTF-8"},
        {"\"q\" \\", AK_ESC_QUOTE, "\\\"q\\\" \\\\", "quote flag"},
        {"\"q\" \\", 0, "\"q\" \\", "quotes kept without the flag"},
        {"r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", AK_ESC_FORMAT,
         "r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", "printable UTF-8 untouched"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        ak_escape(out, sizeof out, c[i].in, strlen(c[i].in), c[i].flags);
        CHECK(strcmp(out, c[i].want) == 0, "escape: %s", c[i].what);
    }
    size_t n = ak_escape(out, 6, "ab\x1b" "cd", 5, 0);
    CHECK(n == 2 && strcmp(out, "ab") == 0, "escape: an escape that does not fit is left out whole");
}

/* The C writer's crc32 is zlib's over the raw bytes, compressed or not. */
static void check_written_crc(const char *path)
{
    size_t n;
    unsigned char *file = slurp(path, &n);
    ak_doc *d = sample_doc();
    int found = 0;
    for (size_t i = 0; file && i < d->ntensors; i++) {
        const ak_tensor *t = d->tensors[i];
        uint32_t want = (uint32_t)crc32(0, t->data, (uInt)t->nbytes);
        unsigned char pat[11] = {0xa5, 'c', 'r', 'c', '3', '2', 0xce, (unsigned char)(want >> 24),
                                 (unsigned char)(want >> 16), (unsigned char)(want >> 8),
                                 (unsigned char)want};
        found += memmem(file, n, pat, sizeof pat) != NULL;
    }
    CHECK(file && found == (int)d->ntensors, "%s: every tensor carries zlib's crc32 of its raw "
          "bytes (%d of %zu)", path, found, d->ntensors);
    ak_doc_free(d);
    free(file);
}

/* ak_meta_int: found (0, value set), absent (1, distinct from every AK_E*
 * code), of another kind (AK_EDATA); booleans read as 0/1. */
static void check_meta_int(void)
{
    ak_metamap m = {0};
    int64_t x = 42;
    ak_meta_set_int(&m, "window", -1);
    ak_meta_set_str(&m, "name", "unit");
    CHECK(ak_meta_int(&m, "window", &x) == 0 && x == -1, "meta int: found, value -1 read");
    x = 42;
    int rc = ak_meta_int(&m, "causal", &x);
    CHECK(rc == 1 && x == 42, "meta int: absent is 1 (not AK_EUSAGE), value untouched (rc %d)", rc);
    CHECK(rc != AK_EUSAGE && rc != AK_EDATA && rc != 0, "meta int: absent differs from errors");
    CHECK(ak_meta_int(&m, "name", &x) == AK_EDATA && x == 42, "meta int: a string is AK_EDATA");
    ak_meta_clear(&m);
    CHECK(ak_meta_int(&m, "window", &x) == 1, "meta int: absent after clear");
}

int main(int argc, char **argv)
{
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--write") == 0)
        return write_sample(argv[2], argc == 4 ? atoi(argv[3]) : 0);
    char dir[] = "/tmp/ak-stream-XXXXXX", p0[64], p6[64], pt[64], vec[4096];
    if (!mkdtemp(dir))
        return 1;
    snprintf(p0, sizeof p0, "%s/plain.ak", dir);
    snprintf(p6, sizeof p6, "%s/zlib.ak", dir);
    snprintf(pt, sizeof pt, "%s/pass.ak", dir);
    CHECK(write_sample(p0, 0) == 0, "write plain stream");
    CHECK(write_sample(p6, 6) == 0, "write compressed stream");
    check_sample(p0, "plain");
    check_sample(p6, "zlib");
    const char *top = getenv("AK_TOP");
    snprintf(vec, sizeof vec, "%s/formats/vectors/newer-minor.ak", top ? top : ".");
    check_passthrough(vec, pt);
    check_written_crc(p0);
    check_written_crc(p6);
    check_half();
    check_shapes();
    check_utf8();
    check_writer_utf8(dir);
    check_depth();
    check_dup_ids();
    check_escape();
    const char *flips[] = {"minimal.ak", "all-dtypes.ak", "v1.0-no-crc.ak"};
    for (int i = 0; i < 3; i++) {
        snprintf(vec, sizeof vec, "%s/formats/vectors/%s", top ? top : ".", flips[i]);
        bit_flips(vec, i < 2);
    }
    check_meta_int();
    unlink(p0); unlink(p6); unlink(pt);
    rmdir(dir);
    TEST_DONE();
}
