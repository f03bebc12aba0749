/* Unit tests for lib/format/safetensors.c: well-formed files read back exactly
 * (f32 in place, f16/bf16 converted), and every kind of lying header is
 * refused before any tensor data is touched. */
#include "attnkit/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/ak-st-XXXXXX";

/* Writes header JSON + data as a safetensors file; returns its path. */
static const char *write_st(const char *name, const char *json, const void *data, size_t n,
                            int64_t claimed_len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint64_t len = claimed_len >= 0 ? (uint64_t)claimed_len : strlen(json);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(json, 1, strlen(json), f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

static int rejects(const char *what, const char *json, const void *data, size_t n, int64_t claimed,
                   const char *needle)
{
    ak_safetensors st;
    ak_err err = {0};
    int rc = ak_st_open_file(&st, write_st("bad.safetensors", json, data, n, claimed), &err);
    CHECK(rc == AK_EDATA && strstr(err.msg, needle), "rejects %s: %s", what, err.msg);
    return rc;
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    /* f32 [2,2], f16 [3], bf16 [2] back to back, 4-byte aligned. */
    float f32[4] = {1.5f, -2.0f, 3.25f, 1e-3f};
    uint16_t f16[3] = {0x3c00, 0xc000, 0x7bff};   /* 1, -2, 65504 */
    uint16_t bf16[2] = {0x3f80, 0x4049};          /* 1, 3.140625 */
    unsigned char data[4 * 4 + 3 * 2 + 2 * 2];
    memcpy(data, f32, 16);
    memcpy(data + 16, f16, 6);
    memcpy(data + 22, bf16, 4);
    const char *good =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22,26]}}   ";
    ak_safetensors st;
    ak_err err = {0};
    int rc = ak_st_open_file(&st, write_st("good.safetensors", good, data, sizeof data, -1), &err);
    CHECK(rc == 0, "reads a well-formed file (%s)", err.msg);
    if (rc == 0) {
        CHECK(st.ntensors == 3, "three tensors, metadata skipped");
        const ak_st_tensor *a = ak_st_find(&st, "a"), *h = ak_st_find(&st, "h"), *b = ak_st_find(&st, "b");
        CHECK(a && a->dtype == AK_F32 && a->ndim == 2 && a->shape[1] == 2, "f32 tensor found with its shape");
        CHECK(!ak_st_find(&st, "zz") && !ak_st_find(&st, "__metadata__"), "absent names are not found");
        float out[4];
        CHECK(a && ak_st_to_f32(a, out, 4, &err) == 0 && !memcmp(out, f32, 16), "f32 values exact");
        CHECK(h && ak_st_to_f32(h, out, 3, &err) == 0 && out[0] == 1 && out[1] == -2 && out[2] == 65504,
              "f16 converted to f32");
        CHECK(b && ak_st_to_f32(b, out, 2, &err) == 0 && out[0] == 1 && out[1] == 3.140625f,
              "bf16 converted to f32");
        CHECK(h && ak_st_to_f32(h, out, 4, &err) == AK_EDATA, "element count mismatch refused");
        ak_st_close(&st);
    }
    rejects("header longer than the file", good, data, sizeof data, 1 << 20, "exceeds the file");
    rejects("absurd header length", good, data, sizeof data, INT64_MAX, "exceeds");
    rejects("data shorter than the offsets", good, data, 20, -1, "outside the data section");
    rejects("offsets reversed",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", data, 8, -1, "outside");
    rejects("shape and bytes disagree",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 16, -1, "need 12");
    rejects("dimension overflow",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,8]}}",
            data, 16, -1, "oversized");
    rejects("overlap",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 16, -1, "overlap");
    rejects("unknown dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            data, 4, -1, "unknown dtype");
    rejects("too many dimensions",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
            data, 4, -1, "dimensions");
    rejects("not an object", "[1,2,3]", data, 0, -1, "not a JSON object");
    rejects("duplicate names",
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", data, 4, -1, "not valid JSON");
    rejects("missing fields", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", data, 4, -1, "data_offsets");
    rejects("truncated JSON", "{\"a\":{\"dtype\"", data, 0, -1, "not valid JSON");
    rejects("zero-length header", "", data, 0, 0, "not valid JSON");
    {
        ak_safetensors s2;
        char path[256];
        snprintf(path, sizeof path, "%s/empty", dir);
        fclose(fopen(path, "wb"));
        rc = ak_st_open_file(&s2, path, &err);
        CHECK(rc == AK_EDATA && strstr(err.msg, "truncated"), "zero-byte file refused: %s", err.msg);
        unlink(path);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        return 1;
    TEST_DONE();
}
