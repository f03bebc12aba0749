/* gguf.c - unit tests for lib/format/gguf.c and lib/format/quant.c on GGUF files written
 * here byte by byte, plus a driver for tests/model/gguf_test.py:
 *   gguf                       run the checks
 *   gguf --list FILE           one line per tensor: name type ndim ne0..ne3 nbytes
 *                              file offset of its data
 *   gguf --dump FILE NAME [ROWS]  the tensor dequantized, raw f32 on stdout
 *                              (ROWS: comma-separated row numbers, else all rows)
 *   gguf --dumpall FILE MAXEL  every supported tensor in file order, dequantized,
 *                              raw f32: all rows when it has at most MAXEL
 *                              elements, else K = max(1, MAXEL / ne0) rows
 *                              i * (nrows - 1) / (K - 1), i = 0..K-1
 *   gguf --meta FILE           every metadata pair as a JSON line, strings hex
 *   gguf --open FILE           opens the file: "ok" or the error line, exit code
 */
#include "format/gguf.h"
#include "format/quant.h"
#include "attnkit/tensor.h"
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a byte buffer that writes GGUF ----------------------------------------- */
typedef struct { uint8_t *p; size_t n, cap; } buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void le(buf *b, uint64_t v, int n)
{
    uint8_t t[8];
    for (int i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)n);
}
static void u32(buf *b, uint32_t v) { le(b, v, 4); }
static void u64(buf *b, uint64_t v) { le(b, v, 8); }
static void str(buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void f32v(buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); u32(b, u); }
static void f64v(buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); u64(b, u); }
static void key(buf *b, const char *k, uint32_t t) { str(b, k); u32(b, t); }
static void pad(buf *b, size_t align) { while (b->n % align) le(b, 0, 1); }

static char tmpdir[256];

static const char *write_file(const char *name, const buf *b)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    /* A new file each time: ext4 flushes a file truncated and rewritten at
     * close (auto_da_alloc), which made the thousands of truncations wait
     * on the disk. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    fwrite(b->p, 1, b->n, f);
    fclose(f);
    return path;
}

/* Bitwise CRC-32 (the zlib polynomial), independent of the library's zlib call. */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? c >> 1 ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

/* ---- the good file ---------------------------------------------------------- */
typedef struct { const char *name; int type; int ndim; int64_t ne[4]; } tspec;
static const tspec good_tensors[] = {
    {"a.f32", AK_GGML_F32, 2, {4, 3, 1, 1}},
    {"b.f16", AK_GGML_F16, 1, {8, 1, 1, 1}},
    {"c.q8_0", AK_GGML_Q8_0, 2, {64, 2, 1, 1}},
    {"d.q4_k", AK_GGML_Q4_K, 3, {256, 1, 2, 1}},
    {"e.bf16", AK_GGML_BF16, 4, {2, 1, 1, 3}},
    {"f.q6_k", AK_GGML_Q6_K, 1, {256, 1, 1, 1}},   /* last: ends at end of file */
};
#define NGOOD (sizeof good_tensors / sizeof good_tensors[0])

static size_t spec_bytes(const tspec *t)
{
    return ak_ggml_row_bytes(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

/* Writes a complete file: every metadata value type, nested arrays, then
 * the tensors with the given alignment (0: no general.alignment, i.e. 32).
 * *infos_end receives where the tensor infos end. */
static void build_good(buf *b, uint32_t version, uint32_t align, size_t *infos_end)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, NGOOD);
    u64(b, 19 + (align != 0));
    key(b, "t.u8", AK_GGUF_U8); le(b, 200, 1);
    key(b, "t.i8", AK_GGUF_I8); le(b, (uint8_t)-100, 1);
    key(b, "t.u16", AK_GGUF_U16); le(b, 60000, 2);
    key(b, "t.i16", AK_GGUF_I16); le(b, (uint16_t)-30000, 2);
    key(b, "t.u32", AK_GGUF_U32); u32(b, 4000000000u);
    key(b, "t.i32", AK_GGUF_I32); u32(b, (uint32_t)-2000000000);
    key(b, "t.f32", AK_GGUF_F32); f32v(b, 0.15625f);
    key(b, "t.bool", AK_GGUF_BOOL); le(b, 1, 1);
    key(b, "t.string", AK_GGUF_STRING); str(b, "héllo");
    key(b, "t.u64", AK_GGUF_U64); u64(b, 0xfedcba9876543210ull);
    key(b, "t.i64", AK_GGUF_I64); u64(b, (uint64_t)-1234567890123ll);
    key(b, "t.f64", AK_GGUF_F64); f64v(b, -2.5e-300);
    key(b, "t.arr_u8", AK_GGUF_ARRAY); u32(b, AK_GGUF_U8); u64(b, 3); le(b, 1, 1); le(b, 2, 1); le(b, 255, 1);
    key(b, "t.arr_i32", AK_GGUF_ARRAY); u32(b, AK_GGUF_I32); u64(b, 2); u32(b, (uint32_t)-7); u32(b, 9);
    key(b, "t.arr_f32", AK_GGUF_ARRAY); u32(b, AK_GGUF_F32); u64(b, 2); f32v(b, -1.5f); f32v(b, 3.25f);
    key(b, "t.arr_str", AK_GGUF_ARRAY); u32(b, AK_GGUF_STRING); u64(b, 3); str(b, "a"); str(b, ""); str(b, "ccc");
    key(b, "t.arr_empty", AK_GGUF_ARRAY); u32(b, AK_GGUF_BOOL); u64(b, 0);
    /* [[ "x", "yz" ], [], [ "w" ]] and [[1, 2], [3]] */
    key(b, "t.nested_str", AK_GGUF_ARRAY); u32(b, AK_GGUF_ARRAY); u64(b, 3);
    u32(b, AK_GGUF_STRING); u64(b, 2); str(b, "x"); str(b, "yz");
    u32(b, AK_GGUF_STRING); u64(b, 0);
    u32(b, AK_GGUF_STRING); u64(b, 1); str(b, "w");
    key(b, "t.nested_i16", AK_GGUF_ARRAY); u32(b, AK_GGUF_ARRAY); u64(b, 2);
    u32(b, AK_GGUF_I16); u64(b, 2); le(b, 1, 2); le(b, 2, 2);
    u32(b, AK_GGUF_I16); u64(b, 1); le(b, (uint16_t)-3, 2);
    if (align) {
        key(b, "general.alignment", AK_GGUF_U32);
        u32(b, align);
    }
    size_t al = align ? align : 32, off = 0;
    for (size_t k = 0; k < NGOOD; k++) {
        const tspec *t = &good_tensors[k];
        str(b, t->name);
        u32(b, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            u64(b, (uint64_t)t->ne[d]);
        u32(b, (uint32_t)t->type);
        u64(b, off);
        off += spec_bytes(t);
        off = (off + al - 1) / al * al;
    }
    *infos_end = b->n;
    pad(b, al);
    size_t data0 = b->n;
    for (size_t k = 0; k < NGOOD; k++) {
        pad(b, al);
        size_t nb = spec_bytes(&good_tensors[k]);
        /* deterministic bytes; halves kept finite: every 2nd byte < 0x78 */
        for (size_t i = 0; i < nb; i++)
            le(b, (uint8_t)(((k + 1) * 131 + i * 29 + (i >> 3)) % 0x78), 1);
    }
    (void)data0;
}

static void check_good(uint32_t version, uint32_t align)
{
    buf b = {0};
    size_t infos_end;
    build_good(&b, version, align, &infos_end);
    char name[64];
    snprintf(name, sizeof name, "good_v%u_a%u.gguf", version, align);
    const char *path = write_file(name, &b);
    ak_gguf g;
    ak_err err = {0};
    int rc = ak_gguf_open(&g, path, &err);
    CHECK(rc == 0, "v%u align %u: opens (%s)", version, align, rc ? err.msg : "");
    if (rc) {
        free(b.p);
        return;
    }
    CHECK(g.version == version && g.alignment == (align ? align : 32) && g.nkv == 19u + (align != 0) &&
              g.ntensors == NGOOD, "v%u align %u: header", version, align);
    CHECK(g.meta_crc32 == crc32_ref(b.p, infos_end), "v%u align %u: meta_crc32 covers bytes 0..%zu",
          version, align, infos_end);
    uint64_t u;
    int64_t i;
    double f;
    int bl;
    const char *s;
    size_t len;
    CHECK(ak_gguf_get_u64(&g, "t.u8", &u, &err) == 0 && u == 200, "u8");
    CHECK(ak_gguf_get_i64(&g, "t.i8", &i, &err) == 0 && i == -100, "i8");
    CHECK(ak_gguf_get_u64(&g, "t.u16", &u, &err) == 0 && u == 60000, "u16");
    CHECK(ak_gguf_get_i64(&g, "t.i16", &i, &err) == 0 && i == -30000, "i16");
    CHECK(ak_gguf_get_u64(&g, "t.u32", &u, &err) == 0 && u == 4000000000u, "u32");
    CHECK(ak_gguf_get_i64(&g, "t.i32", &i, &err) == 0 && i == -2000000000, "i32");
    CHECK(ak_gguf_get_f64(&g, "t.f32", &f, &err) == 0 && f == 0.15625, "f32");
    CHECK(ak_gguf_get_bool(&g, "t.bool", &bl, &err) == 0 && bl == 1, "bool");
    CHECK(ak_gguf_get_str(&g, "t.string", &s, &len, &err) == 0 && len == 6 && !memcmp(s, "héllo", 6),
          "string");
    CHECK(ak_gguf_get_u64(&g, "t.u64", &u, &err) == 0 && u == 0xfedcba9876543210ull, "u64");
    CHECK(ak_gguf_get_i64(&g, "t.i64", &i, &err) == 0 && i == -1234567890123ll, "i64");
    CHECK(ak_gguf_get_f64(&g, "t.f64", &f, &err) == 0 && f == -2.5e-300, "f64");
    CHECK(ak_gguf_get_f64(&g, "t.u32", &f, &err) == 0 && f == 4e9, "an integer read as f64");
    CHECK(ak_gguf_get_u64(&g, "absent", &u, &err) == 1, "absent key: 1");
    rc = ak_gguf_get_u64(&g, "t.string", &u, &err);
    CHECK(rc == AK_EDATA && strstr(err.msg, "t.string") && strstr(err.msg, "string"),
          "wrong type names the key: %s", err.msg);
    rc = ak_gguf_get_u64(&g, "t.i8", &u, &err);
    CHECK(rc == AK_EDATA && strstr(err.msg, "negative"), "negative as u64 refused: %s", err.msg);
    CHECK(ak_gguf_get_i64(&g, "t.u64", &i, &err) == AK_EDATA, "u64 above INT64_MAX as i64 refused");
    CHECK(ak_gguf_get_str(&g, "t.u8", &s, &len, &err) == AK_EDATA, "u8 as string refused");
    CHECK(ak_gguf_get_bool(&g, "t.u8", &bl, &err) == AK_EDATA, "u8 as bool refused");

    const ak_gguf_kv *kv = ak_gguf_get(&g, "t.arr_u8");
    CHECK(kv && kv->type == AK_GGUF_ARRAY && kv->atype == AK_GGUF_U8 && kv->alen == 3 &&
              ak_gguf_arr_i64(kv, 2) == 255 && ak_gguf_arr_f64(kv, 0) == 1, "u8 array");
    kv = ak_gguf_get(&g, "t.arr_i32");
    CHECK(kv && kv->alen == 2 && ak_gguf_arr_i64(kv, 0) == -7 && ak_gguf_arr_i64(kv, 1) == 9, "i32 array");
    kv = ak_gguf_get(&g, "t.arr_f32");
    CHECK(kv && kv->alen == 2 && ak_gguf_arr_f64(kv, 0) == -1.5 && ak_gguf_arr_f64(kv, 1) == 3.25,
          "f32 array");
    kv = ak_gguf_get(&g, "t.arr_str");
    const char *e0 = kv ? ak_gguf_arr_str(kv, 0, &len) : NULL;
    int ok0 = e0 && len == 1 && e0[0] == 'a';
    const char *e1 = kv ? ak_gguf_arr_str(kv, 1, &len) : NULL;
    int ok1 = e1 && len == 0;
    const char *e2 = kv ? ak_gguf_arr_str(kv, 2, &len) : NULL;
    CHECK(kv && kv->alen == 3 && ok0 && ok1 && e2 && len == 3 && !memcmp(e2, "ccc", 3) &&
              ak_gguf_arr_str(kv, 3, &len) == NULL, "string array");
    kv = ak_gguf_get(&g, "t.arr_empty");
    CHECK(kv && kv->atype == AK_GGUF_BOOL && kv->alen == 0 && kv->abytes == 0, "empty array");
    kv = ak_gguf_get(&g, "t.nested_str");
    ak_gguf_kv sub, sub2;
    CHECK(kv && kv->atype == AK_GGUF_ARRAY && kv->alen == 3 && ak_gguf_arr_nested(kv, 0, &sub) == 0 &&
              sub.atype == AK_GGUF_STRING && sub.alen == 2 && (s = ak_gguf_arr_str(&sub, 1, &len)) &&
              len == 2 && !memcmp(s, "yz", 2) && ak_gguf_arr_nested(kv, 1, &sub) == 0 && sub.alen == 0 &&
              ak_gguf_arr_nested(kv, 2, &sub2) == 0 && (s = ak_gguf_arr_str(&sub2, 0, &len)) &&
              len == 1 && s[0] == 'w' && ak_gguf_arr_nested(kv, 3, &sub) == -1,
          "nested string arrays");
    kv = ak_gguf_get(&g, "t.nested_i16");
    CHECK(kv && ak_gguf_arr_nested(kv, 1, &sub) == 0 && sub.atype == AK_GGUF_I16 && sub.alen == 1 &&
              ak_gguf_arr_i64(&sub, 0) == -3 && ak_gguf_arr_nested(kv, 0, &sub) == 0 &&
              ak_gguf_arr_i64(&sub, 1) == 2, "nested i16 arrays");

    int tensors_ok = 1;
    for (size_t k = 0; k < NGOOD; k++) {
        const tspec *t = &good_tensors[k];
        const ak_gguf_tensor *gt = ak_gguf_tensor_find(&g, t->name);
        if (!gt || gt != &g.tensors[k] || gt->type != t->type || gt->ndim != t->ndim ||
            gt->nbytes != spec_bytes(t) || (size_t)((const uint8_t *)gt->data - (const uint8_t *)g.map) %
            (align ? align : 32) || memcmp(gt->ne, t->ne, sizeof t->ne))
            tensors_ok = 0;
    }
    CHECK(tensors_ok, "v%u align %u: tensor infos, aligned data", version, align);
    const ak_gguf_tensor *last = &g.tensors[NGOOD - 1];
    CHECK((const uint8_t *)last->data + last->nbytes == (const uint8_t *)g.map + g.size,
          "the last tensor ends at the end of the file");
    CHECK(ak_gguf_tensor_find(&g, "nope") == NULL, "absent tensor: NULL");
    /* The F32 tensor reads back as the bytes say. */
    const ak_gguf_tensor *ft = ak_gguf_tensor_find(&g, "a.f32");
    float row[4], want;
    ak_dequant_row(ft->type, (const uint8_t *)ft->data + 16, row, 4);
    memcpy(&want, (const uint8_t *)ft->data + 20, 4);
    CHECK(row[1] == want || (isnan(row[1]) && isnan(want)), "f32 row through ak_dequant_row");
    float all[12], r1[4];
    CHECK(ak_gguf_tensor_f32(&g, ft, all, 12, &err) == 0 && !memcmp(all + 4, row, sizeof row) &&
              ak_gguf_tensor_rows(ft) == 3, "ak_gguf_tensor_f32: the whole tensor, rows in order");
    ak_gguf_tensor_row(ft, 2, r1);
    CHECK(!memcmp(all + 8, r1, sizeof r1), "ak_gguf_tensor_row: row 2");
    rc = ak_gguf_tensor_f32(&g, ft, all, 11, &err);
    CHECK(rc == AK_EDATA && strstr(err.msg, "a.f32") && strstr(err.msg, "12 elements"),
          "ak_gguf_tensor_f32 with the wrong count: %s", err.msg);
    ak_gguf_close(&g);

    /* Truncated at every length: all refused with a message, no crash. */
    int all_refused = 1, msgs = 1;
    char shortname[64];
    snprintf(shortname, sizeof shortname, "short_v%u_a%u.gguf", version, align);
    for (size_t n = 0; n < b.n; n++) {
        buf t = {b.p, n, n};
        const char *sp = write_file(shortname, &t);
        err.msg[0] = 0;
        rc = ak_gguf_open(&g, sp, &err);
        if (rc == 0) {
            all_refused = 0;
            ak_gguf_close(&g);
        } else if (rc != AK_EDATA || !strstr(err.msg, sp)) {
            msgs = 0;
            fprintf(stderr, "length %zu: rc %d: %s\n", n, rc, err.msg);
        }
    }
    CHECK(all_refused && msgs, "v%u align %u: truncated at each of %zu lengths: refused (AK_EDATA, path named)",
          version, align, b.n);
    free(b.p);
}

/* ---- bad files -------------------------------------------------------------- */
static void head(buf *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, nt);
    u64(b, nkv);
}

/* One tensor info. */
static void tinfo(buf *b, const char *name, int ndim, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(b, name);
    u32(b, (uint32_t)ndim);
    for (int d = 0; d < ndim; d++)
        u64(b, ne[d]);
    u32(b, type);
    u64(b, off);
}

static void expect_bad(const char *what, buf *b, int code, const char *needle)
{
    const char *path = write_file("bad.gguf", b);
    ak_gguf g;
    ak_err err = {0};
    int rc = ak_gguf_open(&g, path, &err);
    if (rc == 0)
        ak_gguf_close(&g);
    CHECK(rc == code && strstr(err.msg, path) && (!needle || strstr(err.msg, needle)) &&
              !strchr(err.msg, '\n') && strstr(err.msg, "(at byte "),
          "%s: refused: %s", what, err.msg);
}

/* A file with tensors of the given offsets, each F32 [8] (32 bytes), data
 * section of data_bytes. */
static void offsets_file(buf *b, int n, const uint64_t *offs, size_t data_bytes, uint32_t align)
{
    head(b, 3, (uint64_t)n, align ? 1 : 0);
    if (align) {
        key(b, "general.alignment", AK_GGUF_U32);
        u32(b, align);
    }
    uint64_t ne[1] = {8};
    for (int k = 0; k < n; k++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", k);
        tinfo(b, name, 1, ne, AK_GGML_F32, offs[k]);
    }
    pad(b, align ? align : 32);
    for (size_t i = 0; i < data_bytes; i++)
        le(b, 0, 1);
}

static void check_bad(void)
{
    buf b = {0};
    uint64_t ne1[1] = {32};

    head(&b, 3, 0, 0);
    b.p[0] = 'X';
    expect_bad("bad magic", &b, AK_EDATA, "not a GGUF file");
    head(&b, 1, 0, 0);
    expect_bad("version 1", &b, AK_ECONFIG, "version 1");
    head(&b, 4, 0, 0);
    expect_bad("version 4", &b, AK_ECONFIG, "version 4");
    head(&b, 0x03000000, 0, 0);
    expect_bad("big-endian", &b, AK_ECONFIG, "big-endian");

    head(&b, 3, 0, 0);
    {
        ak_gguf g;
        ak_err err;
        const char *p = write_file("empty_ok.gguf", &b);
        int rc = ak_gguf_open(&g, p, &err);
        CHECK(rc == 0 && g.nkv == 0 && g.ntensors == 0, "a header with nothing else opens");
        if (!rc)
            ak_gguf_close(&g);
    }

    head(&b, 3, 0, 1);
    key(&b, "arr", AK_GGUF_ARRAY); u32(&b, AK_GGUF_U8); u64(&b, 1ull << 62);
    expect_bad("array count 2^62", &b, AK_EDATA, "cannot fit");
    head(&b, 3, 0, 1);
    key(&b, "arr", AK_GGUF_ARRAY); u32(&b, AK_GGUF_STRING); u64(&b, 1ull << 62);
    expect_bad("string array count 2^62", &b, AK_EDATA, "cannot fit");
    head(&b, 3, 0, 1);
    key(&b, "arr", AK_GGUF_ARRAY); u32(&b, AK_GGUF_ARRAY); u64(&b, 1);
    u32(&b, AK_GGUF_U64); u64(&b, 1ull << 62);
    expect_bad("nested array count 2^62", &b, AK_EDATA, "cannot fit");
    head(&b, 3, 0, 1);
    key(&b, "s", AK_GGUF_STRING); u64(&b, 1ull << 63);
    expect_bad("string length 2^63", &b, AK_EDATA, "string length");
    head(&b, 3, 0, 1);
    u64(&b, 1ull << 63);
    u64(&b, 0);
    expect_bad("key length 2^63", &b, AK_EDATA, "string length");
    head(&b, 3, 0, 1ull << 62);
    expect_bad("metadata count 2^62", &b, AK_EDATA, "metadata pairs");
    head(&b, 3, 1ull << 62, 0);
    expect_bad("tensor count 2^62", &b, AK_EDATA, "tensor infos");
    head(&b, 3, 0, 1);
    key(&b, "x", 13); u32(&b, 0);
    expect_bad("unknown value type 13", &b, AK_EDATA, "unknown value type 13");
    head(&b, 3, 0, 1);
    key(&b, "x", AK_GGUF_ARRAY); u32(&b, 99); u64(&b, 0);
    expect_bad("unknown array element type", &b, AK_EDATA, "unknown array element type 99");
    head(&b, 3, 0, 1);
    key(&b, "deep", AK_GGUF_ARRAY);
    for (int d = 0; d < 20; d++) { u32(&b, AK_GGUF_ARRAY); u64(&b, 1); }
    u32(&b, AK_GGUF_U8); u64(&b, 0);
    expect_bad("arrays nested 20 deep", &b, AK_EDATA, "nested deeper");
    head(&b, 3, 0, 2);
    key(&b, "k", AK_GGUF_U8); le(&b, 1, 1);
    key(&b, "k", AK_GGUF_U8); le(&b, 2, 1);
    expect_bad("duplicate key", &b, AK_EDATA, "appears twice");
    head(&b, 3, 0, 1);
    u64(&b, 3); put(&b, "a\0b", 3); u32(&b, AK_GGUF_U8); le(&b, 1, 1);
    expect_bad("NUL in a key", &b, AK_EDATA, "NUL");
    head(&b, 3, 0, 1);
    key(&b, "", AK_GGUF_U8); le(&b, 1, 1);
    expect_bad("empty key", &b, AK_EDATA, "empty");

    static const uint32_t bad_aligns[] = {0, 3, 48};
    for (size_t k = 0; k < 3; k++) {
        head(&b, 3, 0, 1);
        key(&b, "general.alignment", AK_GGUF_U32); u32(&b, bad_aligns[k]);
        char what[64];
        snprintf(what, sizeof what, "alignment %u", bad_aligns[k]);
        expect_bad(what, &b, AK_EDATA, "general.alignment");
    }
    head(&b, 3, 0, 1);
    key(&b, "general.alignment", AK_GGUF_STRING); str(&b, "32");
    expect_bad("alignment as a string", &b, AK_EDATA, "general.alignment");

    uint64_t ne5[5] = {32, 1, 1, 1, 1};
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 5, ne5, AK_GGML_F32, 0);
    pad(&b, 32); for (int i = 0; i < 128; i++) le(&b, 0, 1);
    expect_bad("n_dims 5", &b, AK_EDATA, "5 dimensions");
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 0, ne5, AK_GGML_F32, 0);
    pad(&b, 32); for (int i = 0; i < 128; i++) le(&b, 0, 1);
    expect_bad("n_dims 0", &b, AK_EDATA, "0 dimensions");
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne1, 99, 0);
    pad(&b, 32); for (int i = 0; i < 128; i++) le(&b, 0, 1);
    expect_bad("ggml type 99", &b, AK_EDATA, "unknown ggml type 99");
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne1, 4, 0);   /* Q4_2: removed from ggml */
    pad(&b, 32); for (int i = 0; i < 128; i++) le(&b, 0, 1);
    expect_bad("ggml type 4 (removed)", &b, AK_EDATA, "unknown ggml type 4");
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne1, AK_GGML_Q4_K, 0);
    pad(&b, 32); for (int i = 0; i < 256; i++) le(&b, 0, 1);
    expect_bad("row of 32 in Q4_K", &b, AK_EDATA, "multiple of Q4_K's block of 256");
    uint64_t ne0[2] = {32, 0};
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 2, ne0, AK_GGML_F32, 0);
    pad(&b, 32);
    expect_bad("a zero dimension", &b, AK_EDATA, "dimension 1 is 0");
    uint64_t nebig[4] = {1ull << 40, 1ull << 40, 1, 1};
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 2, nebig, AK_GGML_F32, 0);
    pad(&b, 32);
    expect_bad("element count overflow", &b, AK_EDATA, "overflows");
    uint64_t nesz[2] = {1ull << 61, 2};
    head(&b, 3, 1, 0);
    tinfo(&b, "t", 2, nesz, AK_GGML_F32, 0);
    pad(&b, 32);
    expect_bad("byte size overflow", &b, AK_EDATA, NULL);
    head(&b, 3, 2, 0);
    tinfo(&b, "t", 1, ne1, AK_GGML_F32, 0);
    tinfo(&b, "t", 1, ne1, AK_GGML_F32, 128);
    pad(&b, 32); for (int i = 0; i < 256; i++) le(&b, 0, 1);
    expect_bad("duplicate tensor name", &b, AK_EDATA, "appears twice");

    uint64_t o_out[] = {0, 64};
    offsets_file(&b, 2, o_out, 64, 0);
    expect_bad("offset past the end", &b, AK_EDATA, "outside");
    uint64_t o_huge[] = {0xffffffffffffffe0ull};
    offsets_file(&b, 1, o_huge, 64, 0);
    expect_bad("offset near 2^64", &b, AK_EDATA, "outside");
    uint64_t o_ovl[] = {0, 32, 0};
    offsets_file(&b, 3, o_ovl, 96, 32);
    expect_bad("overlapping tensors", &b, AK_EDATA, "overlap");
    uint64_t o_mis[] = {16};
    offsets_file(&b, 1, o_mis, 64, 0);
    expect_bad("misaligned offset (16, alignment 32)", &b, AK_EDATA, "not a multiple of the alignment");
    uint64_t o_mis64[] = {0, 32};
    offsets_file(&b, 2, o_mis64, 128, 64);
    expect_bad("misaligned offset (32, alignment 64)", &b, AK_EDATA, "alignment 64");
    uint64_t o_fine[] = {32, 0};
    offsets_file(&b, 2, o_fine, 64, 32);
    {
        ak_gguf g;
        ak_err err;
        int rc = ak_gguf_open(&g, write_file("fine.gguf", &b), &err);
        CHECK(rc == 0 && g.tensors[0].data == g.data + 32, "out-of-order offsets that do not overlap open");
        if (!rc)
            ak_gguf_close(&g);
    }

    /* A type ggml has and attnkit does not compute with: the file opens
     * (it is laid out), ak_gguf_tensor_check names type and tensor. */
    head(&b, 3, 2, 0);
    uint64_t ne256[1] = {256};
    tinfo(&b, "blk.0.ffn_up.weight", 1, ne256, AK_GGML_Q2_K, 0);
    tinfo(&b, "ok.q6_k", 1, ne256, AK_GGML_Q6_K, 96);
    pad(&b, 32); for (int i = 0; i < 96 + 210; i++) le(&b, 0, 1);
    {
        ak_gguf gq;
        ak_err e2 = {0};
        int r2 = ak_gguf_open(&gq, write_file("q2k.gguf", &b), &e2);
        CHECK(r2 == 0 && gq.tensors[0].nbytes == 84, "a Q2_K tensor is laid out (84 bytes a block)");
        if (!r2) {
            int c1 = ak_gguf_tensor_check(&gq, &gq.tensors[0], &e2);
            CHECK(c1 == AK_ECONFIG && ak_exit_code(c1) == 78 && strstr(e2.msg, "blk.0.ffn_up.weight") &&
                      strstr(e2.msg, "Q2_K"), "Q2_K refused by ak_gguf_tensor_check (exit 78): %s", e2.msg);
            CHECK(ak_gguf_tensor_check(&gq, &gq.tensors[1], &e2) == 0, "Q6_K accepted by ak_gguf_tensor_check");
            float q2[256];
            CHECK(ak_gguf_tensor_f32(&gq, &gq.tensors[0], q2, 256, &e2) == AK_ECONFIG,
                  "ak_gguf_tensor_f32 refuses Q2_K");
            ak_gguf_close(&gq);
        }
    }

    /* Not regular files: a directory and a FIFO (must not block). */
    ak_gguf g;
    ak_err err;
    int rc = ak_gguf_open(&g, tmpdir, &err);
    CHECK(rc == AK_ENOINPUT && strstr(err.msg, "not a regular file"), "a directory: %s", err.msg);
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", tmpdir);
    if (mkfifo(fifo, 0600) == 0) {
        rc = ak_gguf_open(&g, fifo, &err);
        CHECK(rc == AK_ENOINPUT && strstr(err.msg, "not a regular file"), "a FIFO, without blocking: %s",
              err.msg);
        unlink(fifo);
    }
    rc = ak_gguf_open(&g, "/nonexistent/x.gguf", &err);
    CHECK(rc == AK_ENOINPUT && strstr(err.msg, "/nonexistent/x.gguf"), "a missing file: %s", err.msg);
    free(b.p);
}

/* ---- ak_gguf_locate ---------------------------------------------------------- */
static void check_locate(void)
{
    char d[512], out[512], p[600];
    snprintf(d, sizeof d, "%s/loc", tmpdir);
    mkdir(d, 0700);
    CHECK(ak_gguf_locate(d, out, sizeof out) == 0, "locate: a directory without .gguf: 0");
    snprintf(p, sizeof p, "%s/m.gguf", d);
    fclose(fopen(p, "w"));
    CHECK(ak_gguf_locate(d, out, sizeof out) == 1 && !strcmp(out, p), "locate: a directory with one .gguf");
    CHECK(ak_gguf_locate(p, out, sizeof out) == 1 && !strcmp(out, p), "locate: a .gguf file");
    CHECK(ak_gguf_locate("x.safetensors", out, sizeof out) == 0, "locate: other names: 0");
    CHECK(ak_gguf_locate(p, out, 5) == 0, "locate: output too small: 0");
    snprintf(p, sizeof p, "%s/n.gguf", d);
    fclose(fopen(p, "w"));
    CHECK(ak_gguf_locate(d, out, sizeof out) == -1 && strstr(out, ".gguf, "), "locate: two .gguf files: -1 (ambiguous), both named");
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", d);
    fclose(fopen(p, "w"));
    CHECK(ak_gguf_locate(d, out, sizeof out) == 0, "locate: a Hugging Face directory: 0");
    unlink(p);
    snprintf(p, sizeof p, "%s/m.gguf", d);
    unlink(p);
    rmdir(d);
}

/* ---- the driver ---------------------------------------------------------------- */
static void hex(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)s[i]);
    putchar('"');
}

static void print_elem(const ak_gguf_kv *kv, uint64_t k);

static void print_array(const ak_gguf_kv *kv)
{
    printf("{\"atype\":%d,\"v\":[", kv->atype);
    for (uint64_t k = 0; k < kv->alen; k++) {
        if (k)
            putchar(',');
        print_elem(kv, k);
    }
    printf("]}");
}

static void print_elem(const ak_gguf_kv *kv, uint64_t k)
{
    size_t len;
    const char *s;
    ak_gguf_kv sub;
    switch (kv->atype) {
    case AK_GGUF_STRING: s = ak_gguf_arr_str(kv, k, &len); hex(s, len); break;
    case AK_GGUF_ARRAY: ak_gguf_arr_nested(kv, k, &sub); print_array(&sub); break;
    case AK_GGUF_F32: case AK_GGUF_F64: printf("%.17g", ak_gguf_arr_f64(kv, k)); break;
    case AK_GGUF_U64: printf("%llu", (unsigned long long)ak_gguf_arr_i64(kv, k)); break;
    default: printf("%lld", (long long)ak_gguf_arr_i64(kv, k)); break;
    }
}

static int open_or_say(ak_gguf *g, const char *path)
{
    ak_err err;
    int rc = ak_gguf_open(g, path, &err);
    if (rc)
        fprintf(stderr, "gguf: %s\n", err.msg);
    return rc ? ak_exit_code(rc) : 0;
}

static int driver(int argc, char **argv)
{
    ak_gguf g;
    int rc = open_or_say(&g, argv[2]);
    if (rc)
        return rc;
    if (!strcmp(argv[1], "--open")) {
        printf("ok\n");
    } else if (!strcmp(argv[1], "--list")) {
        printf("# version %u alignment %llu crc32 %08x\n", g.version, (unsigned long long)g.alignment,
               g.meta_crc32);
        for (size_t k = 0; k < g.ntensors; k++) {
            const ak_gguf_tensor *t = &g.tensors[k];
            printf("%s %d %d %lld %lld %lld %lld %zu %td\n", t->name, t->type, t->ndim, (long long)t->ne[0],
                   (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], t->nbytes,
                   (const uint8_t *)t->data - (const uint8_t *)g.map);
        }
    } else if (!strcmp(argv[1], "--meta")) {
        for (size_t k = 0; k < g.nkv; k++) {
            const ak_gguf_kv *kv = &g.kv[k];
            printf("{\"k\":");
            hex(kv->key, strlen(kv->key));
            printf(",\"t\":%d,\"v\":", kv->type);
            switch (kv->type) {
            case AK_GGUF_STRING: hex(kv->str, kv->slen); break;
            case AK_GGUF_ARRAY: print_array(kv); break;
            case AK_GGUF_F32: case AK_GGUF_F64: printf("%.17g", kv->f); break;
            case AK_GGUF_U8: case AK_GGUF_U16: case AK_GGUF_U32: case AK_GGUF_U64: case AK_GGUF_BOOL:
                printf("%llu", (unsigned long long)kv->u);
                break;
            default: printf("%lld", (long long)kv->i); break;
            }
            printf("}\n");
        }
    } else if (!strcmp(argv[1], "--dumpall") && argc >= 4) {
        int64_t maxel = strtoll(argv[3], NULL, 10);
        for (size_t k = 0; k < g.ntensors; k++) {
            const ak_gguf_tensor *t = &g.tensors[k];
            if (!ak_ggml_supported(t->type))
                continue;
            int64_t nrows = t->ne[1] * t->ne[2] * t->ne[3], K = nrows;
            if (nrows * t->ne[0] > maxel) {
                K = maxel / t->ne[0] < 1 ? 1 : maxel / t->ne[0];
                K = K > nrows ? nrows : K;
            }
            size_t rb = ak_ggml_row_bytes(t->type, t->ne[0]);
            float *row = malloc((size_t)t->ne[0] * sizeof *row);
            for (int64_t i = 0; i < K; i++) {
                int64_t r = K == nrows ? i : K == 1 ? 0 : i * (nrows - 1) / (K - 1);
                ak_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, row, t->ne[0]);
                fwrite(row, sizeof *row, (size_t)t->ne[0], stdout);
            }
            free(row);
        }
    } else if (!strcmp(argv[1], "--dump") && argc >= 4) {
        const ak_gguf_tensor *t = ak_gguf_tensor_find(&g, argv[3]);
        if (!t || !ak_ggml_supported(t->type)) {
            fprintf(stderr, "gguf: %s: %s\n", argv[3], t ? "unsupported type" : "no such tensor");
            ak_gguf_close(&g);
            return 1;
        }
        int64_t nrows = t->ne[1] * t->ne[2] * t->ne[3];
        size_t rb = ak_ggml_row_bytes(t->type, t->ne[0]);
        float *row = malloc((size_t)t->ne[0] * sizeof *row);
        const char *sel = argc >= 5 ? argv[4] : NULL;
        for (int64_t r = 0; r < nrows || sel; r++) {
            int64_t which = r;
            if (sel) {
                if (!*sel)
                    break;
                char *end;
                which = strtoll(sel, &end, 10);
                sel = *end == ',' ? end + 1 : end;
                if (which < 0 || which >= nrows)
                    break;
            }
            ak_dequant_row(t->type, (const uint8_t *)t->data + (size_t)which * rb, row, t->ne[0]);
            fwrite(row, sizeof *row, (size_t)t->ne[0], stdout);
        }
        free(row);
    } else {
        fprintf(stderr, "gguf: unknown driver mode %s\n", argv[1]);
        rc = 64;
    }
    ak_gguf_close(&g);
    return rc;
}

/* ---- dequantization on hand-made blocks ----------------------------------------- */
static uint16_t h16(float f) { return ak_f32_to_f16(f); }

static void check_dequant_hand(void)
{
    uint8_t b[210];
    float y[256];
    /* Q4_0: d = 0.5, byte j = (j & 15) | (15 - (j & 15)) << 4 */
    uint16_t d = h16(0.5f), m = h16(-1.0f);
    memcpy(b, &d, 2);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    ak_dequant_row(AK_GGML_Q4_0, b, y, 32);
    CHECK(y[0] == -4 && y[15] == 3.5f && y[16] == 3.5f && y[31] == -4, "Q4_0 by hand");
    /* Q4_1: + m */
    memcpy(b + 2, &m, 2);
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | (15 - j) << 4);
    ak_dequant_row(AK_GGML_Q4_1, b, y, 32);
    CHECK(y[0] == -1 && y[15] == 6.5f && y[16] == 6.5f && y[31] == -1, "Q4_1 by hand");
    /* Q5_0: qh bit 0 and bit 31 set */
    memset(b, 0, sizeof b);
    memcpy(b, &d, 2);
    b[2] = 1;       /* element 0 */
    b[4] = 2;       /* bit 17: element 17 */
    b[5] = 0x80;    /* bit 31: element 31 */
    ak_dequant_row(AK_GGML_Q5_0, b, y, 32);
    CHECK(y[0] == 0 && y[1] == -8 && y[31] == 0 && y[16] == -8 && y[17] == 0 && y[13] == -8,
          "Q5_0 by hand (fifth bits)");
    /* Q8_0 */
    memcpy(b, &d, 2);
    b[2] = (uint8_t)-128;
    b[33] = 127;
    ak_dequant_row(AK_GGML_Q8_0, b, y, 32);
    CHECK(y[0] == -64 && y[31] == 63.5f, "Q8_0 by hand");
    /* Q6_K: d = 1, scales all 2, ql = qh = 0: every element 2 * -32 */
    memset(b, 0, sizeof b);
    for (int k = 0; k < 16; k++)
        b[192 + k] = 2;
    uint16_t one = h16(1.0f);
    memcpy(b + 208, &one, 2);
    b[0] = 0x0f;    /* element 0 low 4 bits: 15 -> 2 * (15 - 32) */
    b[128] = 0xc0;  /* element 96 high 2 bits: 3 -> 2 * (48 - 32) */
    ak_dequant_row(AK_GGML_Q6_K, b, y, 256);
    CHECK(y[0] == -34 && y[1] == -64 && y[96] == 32 && y[255] == -64, "Q6_K by hand");
    /* Q4_K: d = 1, dmin = 1, sub-block 0 scale 3 min 1, sub-block 5 scale 33 min 2 */
    memset(b, 0, sizeof b);
    memcpy(b, &one, 2);
    memcpy(b + 2, &one, 2);
    b[4 + 0] = 3;
    b[4 + 4] = 1;
    b[4 + 9] = 0x21;          /* scale 5 low nibble 1, min 5 low nibble 2 */
    b[4 + 1] |= 2 << 6;       /* scale 5 bits 4-5: 2 -> 1 | 32 = 33 */
    b[16] = 0x07;             /* element 0: 7 */
    b[16 + 64] = 0x40;        /* element 128 + 32 = 160 (sub-block 5): 4 */
    ak_dequant_row(AK_GGML_Q4_K, b, y, 256);
    CHECK(y[0] == 3 * 7 - 1 && y[1] == -1 && y[160] == 33 * 4 - 2 && y[161] == -2, "Q4_K by hand");
    /* Q5_K: the same plus qh bit 0 of byte 0 (element 0) and bit 5 of byte 0 (element 160) */
    uint8_t c[176] = {0};
    memcpy(c, b, 16);
    c[16] = 1 | 1 << 5;
    memcpy(c + 48, b + 16, 128);
    ak_dequant_row(AK_GGML_Q5_K, c, y, 256);
    CHECK(y[0] == 3 * 23 - 1 && y[160] == 33 * 20 - 2 && y[161] == -2, "Q5_K by hand");
    /* Geometry of every supported type and of some others. */
    size_t be, bb;
    CHECK(ak_ggml_block(AK_GGML_Q2_K, &be, &bb) == 0 && be == 256 && bb == 84 &&
              ak_ggml_block(23, &be, &bb) == 0 && bb == 136 && ak_ggml_block(4, &be, &bb) == -1 &&
              ak_ggml_block(1000, &be, &bb) == -1 && ak_ggml_block(-1, &be, &bb) == -1,
          "block geometry (Q2_K, IQ4_XS, removed 4, 1000, -1)");
    CHECK(ak_ggml_supported(AK_GGML_Q6_K) && !ak_ggml_supported(AK_GGML_Q2_K) &&
              !strcmp(ak_ggml_type_name(AK_GGML_BF16), "BF16") && ak_ggml_type_name(5) == NULL,
          "supported set and names");
    CHECK(ak_ggml_row_bytes(AK_GGML_Q4_K, 512) == 288 && ak_ggml_row_bytes(AK_GGML_F16, 3) == 6,
          "row bytes");
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strncmp(argv[1], "--", 2))
        return driver(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "%s/akgguf.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("not ok - mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    check_good(3, 0);
    check_good(3, 64);
    check_good(2, 32);
    check_bad();
    check_locate();
    check_dequant_hand();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {
    }
    TEST_DONE();
}
