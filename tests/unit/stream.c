/* Unit tests of the stream library: round trips of every dtype, with and
 * without compression, metadata, unknown fields passed through, the test
 * vectors, half-precision conversions.
 *   stream                 run the tests
 *   stream --write FILE    write the sample stream the Python interop test reads */
#include "stream.h"
#include "io.h"
#include "test.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static ak_doc *sample_doc(void)
{
    ak_err err;
    ak_doc *d = ak_doc_new("sample.txt");
    ak_meta_set_str(&d->meta, "source", "sample.txt");
    ak_meta_set_int(&d->meta, "causal", 1);
    ak_meta_set_float(&d->meta, "temperature", 0.25);
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
    ak_atomic a;
    ak_writer *w;
    if (ak_atomic_open(&a, path, &err) || ak_writer_open_fd(&w, a.fd, path, &err))
        return 1;
    ak_writer_set_compress(w, level);
    ak_header *h = ak_header_new();
    ak_meta_set_str(&h->model, "name", "unit");
    char *argv[] = {"stream", "--write", (char *)path};
    ak_header_add_stage(h, "stream-test", 3, argv);
    ak_doc *d = sample_doc();
    int rc = ak_write_header(w, h, &err) || ak_write_doc(w, d, &err) || ak_write_end(w, -1, &err);
    rc |= ak_writer_close(w, &err);
    ak_header_free(h);
    ak_doc_free(d);
    if (rc) {
        ak_atomic_abort(&a);
        return 1;
    }
    return ak_atomic_commit(&a, &err) ? 1 : 0;
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
    if (argc == 3 && strcmp(argv[1], "--write") == 0)
        return write_sample(argv[2], 0);
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
    check_half();
    check_shapes();
    check_meta_int();
    unlink(p0); unlink(p6); unlink(pt);
    rmdir(dir);
    TEST_DONE();
}
