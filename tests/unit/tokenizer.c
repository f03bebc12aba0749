/* Unit tests of lib/text/tokenizer.c and lib/tok_*.c: BPE merge order, byte
 * fallback, unknown-token fusing, added tokens with rstrip, the template
 * post-processor, WordPiece (values from Hugging Face tokenizers 0.23),
 * UTF-8 checking, block boundaries, a long word in O(n log n), random text
 * round trips, and mutated tokenizer files that must load or fail cleanly. */
#include "attnkit/tokenizer.h"
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static const char TINY[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"c\":3,\"ab\":4,\"bc\":5,"
    "\"abc\":6,\"<0xC3>\":7,\"<0xA9>\":8},\"merges\":[\"b c\",\"a b\",\"a bc\"],"
    "\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"fuse_unk\":true},"
    "\"added_tokens\":[{\"id\":9,\"content\":\"<X>\",\"special\":true,\"normalized\":false,"
    "\"lstrip\":false,\"rstrip\":true,\"single_word\":false}],"
    "\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<X>\","
    "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<X>\",\"type_id\":1}}],"
    "\"special_tokens\":{\"<X>\":{\"id\":\"<X>\",\"ids\":[9],\"tokens\":[\"<X>\"]}}}}";

static int write_tok(const char *json, size_t n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    fwrite(json, 1, n, f);
    return fclose(f);
}

/* "ids|offsets" of text, e.g. "4 4|0 2 2 4" */
static const char *enc_str(ak_tokenizer *tk, const char *text, int special)
{
    static char buf[4096];
    ak_err err = {0};
    ak_encoding e = {0};
    size_t n = strlen(text), k = 0;
    if (ak_tokenizer_encode(tk, text, n, 0, &e, &err) || (special && ak_tokenizer_post(tk, &e, (int64_t)n, &err))) {
        snprintf(buf, sizeof buf, "error: %s", err.msg);
        ak_encoding_free(&e);
        return buf;
    }
    buf[0] = 0;
    for (size_t i = 0; i < e.n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? " " : "", e.ids[i]);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "|");
    for (size_t i = 0; i < e.n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld %lld", i ? " " : "", (long long)e.offsets[2 * i],
                              (long long)e.offsets[2 * i + 1]);
    ak_encoding_free(&e);
    return buf;
}

#define IS(got, want, what) do { const char *_g = (got); int _same = !strcmp(_g, want); \
    CHECK(_same, "%s", what); if (!_same) printf("#   got '%s', want '%s'\n", _g, want); } while (0)

static void tiny(void)
{
    ak_err err = {0};
    ak_tokenizer *tk;
    write_tok(TINY, sizeof TINY - 1);
    int rc = ak_tokenizer_load(&tk, tmpdir, &err);
    CHECK(rc == 0, "tiny BPE loads (%s)", err.msg);
    if (rc)
        return;
    IS(enc_str(tk, "abc", 0), "6|0 3", "lowest rank merges first: b c, then a bc");
    IS(enc_str(tk, "abab", 0), "4 4|0 2 2 4", "equal ranks merge leftmost first");
    IS(enc_str(tk, "\xC3\xA9", 0), "7 8|0 2 0 2", "byte fallback: both bytes cover the character");
    IS(enc_str(tk, "xyz", 0), "0|0 3", "unknown characters fuse into one <unk>");
    IS(enc_str(tk, "a<X>  b", 0), "1 9 2|0 1 1 6 6 7", "added token with rstrip takes the spaces after it");
    IS(enc_str(tk, "abc", 1), "9 6 9|0 0 0 3 3 3", "template adds <X> around the sequence");
    ak_encoding e = {0};
    ak_tokenizer_encode(tk, "abc", 3, 100, &e, &err);
    CHECK(e.n == 1 && e.offsets[0] == 100 && e.offsets[1] == 103, "base shifts offsets");
    ak_tokenizer_post(tk, &e, 3, &err);
    CHECK(e.n == 3 && e.type_ids[0] == 0 && e.type_ids[2] == 1 && e.special[0] && !e.special[1],
          "template type ids and special flags");
    ak_encoding_free(&e);
    CHECK(ak_tokenizer_post_prefix(tk) == 1, "one token before the sequence");
    char *out;
    size_t len;
    int32_t ids[] = {4, 3, 9};
    int64_t ends[3];
    rc = ak_tokenizer_decode(tk, ids, 3, NULL, &out, &len, ends, &err);
    CHECK(rc == 0 && len == 6 && !memcmp(out, "abc<X>", 6) && ends[0] == 2 && ends[1] == 3 && ends[2] == 6,
          "decode concatenates pieces and reports their ends");
    if (!rc)
        free(out);
    int32_t bad[] = {1, 99};
    CHECK(ak_tokenizer_decode(tk, bad, 2, NULL, &out, &len, NULL, &err) == AK_EDATA, "decode refuses an unknown id");
    ak_tokenizer_free(tk);
}

static void wordpiece(void)
{
    const char *dir = getenv("ATTNKIT_MODEL");
    ak_err err = {0};
    ak_tokenizer *tk;
    if (!dir || ak_tokenizer_load(&tk, dir, &err)) {
        CHECK(0, "default model's tokenizer loads (%s)", err.msg);
        return;
    }
    IS(enc_str(tk, "unaffable", 0), "14477 20961 3468|0 3 3 6 6 9", "WordPiece: ## continuations");
    IS(enc_str(tk, "H\xC3\xA9llo, WORLD!", 0), "7592 1010 2088 999|0 6 6 7 8 13 13 14",
       "BERT: lowercase, accents stripped, punctuation split; byte offsets");
    IS(enc_str(tk, "\xE4\xB8\xAD\xE6\x96\x87x", 0), "1746 1861 1060|0 3 3 6 6 7", "BERT: CJK characters split");
    char longw[102];
    memset(longw, 'a', 101);
    longw[101] = 0;
    IS(enc_str(tk, longw, 0), "100|0 101", "a word over 100 characters is [UNK]");
    IS(enc_str(tk, "hello", 1), "101 7592 102|0 0 0 5 5 5", "CLS and SEP");
    CHECK(ak_tokenizer_has_token_types(tk) && !ak_tokenizer_round_trips(tk), "BERT: token types, no round trip");
    CHECK(ak_tokenizer_vocab_size(tk) == 30522, "vocab_size from config.json");
    ak_tokenizer_free(tk);
}

static void utf8(void)
{
    ak_err err = {0};
    CHECK(ak_utf8_check("ab\xF0\x9F\x98\x80", 6, &err) == 0, "valid 4-byte UTF-8");
    CHECK(ak_utf8_check("ab\xff" "cd", 5, &err) == AK_EDATA && strstr(err.msg, "byte 2"), "bad byte named: %s", err.msg);
    CHECK(ak_utf8_check("\xC0\x80", 2, &err) == AK_EDATA && strstr(err.msg, "byte 0"), "overlong NUL refused");
    CHECK(ak_utf8_check("x\xED\xA0\x80", 4, &err) == AK_EDATA && strstr(err.msg, "byte 1"), "surrogate refused");
    CHECK(ak_utf8_check("abc\xE2\x82", 5, &err) == AK_EDATA && strstr(err.msg, "byte 3"), "truncated sequence at the end");
    char *o;
    size_t n, bad;
    CHECK(ak_utf8_repair("a\xff\xfe" "b", 4, &o, &n, &bad, &err) == 0 && bad == 2 && n == 8 &&
          !memcmp(o, "a\xEF\xBF\xBD\xEF\xBF\xBD" "b", 8), "repair: one U+FFFD per bad byte");
    free(o);
}

static void blocks(void)
{
    const char *t = "One. Two! Three?\nFour\n\nFive.";
    struct { int mode; const char *want; const char *what; } c[] = {
        {AK_SEG_SENTENCE, "5 10 17 23", "sentence starts"},
        {AK_SEG_PARAGRAPH, "23", "paragraph starts"},
        {AK_SEG_LINE, "17 23", "line starts (a blank line adds no block)"},
    };
    for (int i = 0; i < 3; i++) {
        int64_t *s;
        size_t n;
        ak_err err;
        char buf[128] = "";
        size_t k = 0;
        ak_text_blocks(t, strlen(t), c[i].mode, &s, &n, &err);
        for (size_t j = 0; j < n; j++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", j ? " " : "", (long long)s[j]);
        free(s);
        IS(buf, c[i].want, c[i].what);
    }
    int64_t *s;
    size_t n;
    ak_err err;
    const char *q = "He said \"Stop.\" Then left.";
    ak_text_blocks(q, strlen(q), AK_SEG_SENTENCE, &s, &n, &err);
    CHECK(n == 1 && s[0] == 16, "closing quote stays with its sentence");
    free(s);
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static size_t put_cp(char *o, uint32_t c)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) { o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 63)); o[2] = (char)(0x80 | (c & 63)); return 3; }
    o[0] = (char)(0xF0 | c >> 18); o[1] = (char)(0x80 | (c >> 12 & 63)); o[2] = (char)(0x80 | (c >> 6 & 63));
    o[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* Random text from awkward code point ranges: ASCII, Latin, combining
 * marks, CJK, emoji, ZWJ, spaces of every kind. */
static size_t random_text(char *o, size_t max)
{
    static const uint32_t lo[] = {0x20, 0x09, 0xC0, 0x300, 0x4E00, 0x1F600, 0x200D, 0x2000, 0x1780, 0x0A, 0x30};
    static const uint32_t span[] = {95, 2, 200, 100, 500, 80, 1, 12, 80, 1, 10};
    size_t n = 0;
    while (n + 4 < max) {
        int k = (int)(rnd() % 11);
        n += put_cp(o + n, lo[k] + rnd() % span[k]);
        if (rnd() % 40 == 0)
            break;
    }
    return n;
}

static void random_round_trips(const char *dir, const char *what)
{
    ak_err err = {0};
    ak_tokenizer *tk;
    if (ak_tokenizer_load(&tk, dir, &err)) {
        CHECK(0, "%s loads (%s)", what, err.msg);
        return;
    }
    int bad_off = 0, bad_trip = 0;
    char text[600];
    ak_encoding e = {0};
    for (int it = 0; it < 300; it++) {
        size_t n = random_text(text, sizeof text);
        ak_encoding_clear(&e);
        if (ak_tokenizer_encode(tk, text, n, 0, &e, &err)) {
            bad_off++;
            continue;
        }
        int64_t prev = 0;
        for (size_t i = 0; i < e.n; i++) {
            if (e.offsets[2 * i] < prev || e.offsets[2 * i] > e.offsets[2 * i + 1] || e.offsets[2 * i + 1] > (int64_t)n)
                bad_off++;
            prev = e.offsets[2 * i];
        }
        char *out;
        size_t len;
        if (ak_tokenizer_decode(tk, e.ids, e.n, NULL, &out, &len, NULL, &err) == 0) {
            bad_trip += len != n || memcmp(out, text, n);
            free(out);
        } else
            bad_trip++;
    }
    ak_encoding_free(&e);
    CHECK(bad_off == 0, "%s: 300 random texts, offsets ordered and inside the text", what);
    CHECK(bad_trip == 0, "%s: 300 random texts decode back byte for byte (%d did not)", what, bad_trip);
    ak_tokenizer_free(tk);
}

static void long_word(const char *dir)
{
    ak_err err = {0};
    ak_tokenizer *tk;
    if (ak_tokenizer_load(&tk, dir, &err)) {
        CHECK(0, "gpt2 loads (%s)", err.msg);
        return;
    }
    size_t n = 1 << 20;
    char *w = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = (char)('a' + (i * 7 + i / 3) % 26);
    ak_encoding e = {0};
    clock_t t0 = clock();
    int rc = ak_tokenizer_encode(tk, w, n, 0, &e, &err);
    double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(rc == 0 && e.n > 1000 && e.offsets[2 * e.n - 1] == (int64_t)n, "a 1 MiB word tokenizes to its end");
    /* quadratic re-scanning would take minutes; the heap takes well under a second
     * (seconds under sanitizers) */
    CHECK(s < 20, "a 1 MiB word takes %.2f s", s);
    ak_encoding_free(&e);
    free(w);
    ak_tokenizer_free(tk);
}

static void mutations(void)
{
    ak_err err = {0};
    char buf[sizeof TINY + 64];
    int loaded = 0, refused = 0;
    for (int it = 0; it < 400; it++) {
        size_t n = sizeof TINY - 1;
        memcpy(buf, TINY, n);
        for (int m = 0; m < 1 + (int)(rnd() % 4); m++) {
            size_t at = rnd() % n;
            switch (rnd() % 3) {
            case 0: buf[at] = (char)("0123456789\"{}[],:-9x\\"[rnd() % 21]); break;
            case 1: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;
            default: memmove(buf + at + 1, buf + at, n - at), buf[at] = (char)(rnd() % 128), n++;
            }
        }
        write_tok(buf, n);
        ak_tokenizer *tk;
        int rc = ak_tokenizer_load(&tk, tmpdir, &err);
        if (rc) {
            refused += rc == AK_ECONFIG || rc == AK_EDATA;
            continue;
        }
        loaded++;
        char text[300];
        size_t tn = random_text(text, sizeof text);
        ak_encoding e = {0};
        if (ak_tokenizer_encode(tk, text, tn, 0, &e, &err) == 0 && ak_tokenizer_post(tk, &e, (int64_t)tn, &err) == 0) {
            char *out;
            size_t len;
            if (ak_tokenizer_decode(tk, e.ids, e.n, NULL, &out, &len, NULL, &err) == 0)
                free(out);
        }
        ak_encoding_free(&e);
        ak_tokenizer_free(tk);
    }
    CHECK(loaded + refused == 400, "400 mutated tokenizer.json files: %d loaded, %d refused, none crashed", loaded,
          refused);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ak-tok-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    tiny();
    wordpiece();
    utf8();
    blocks();
    mutations();
    const char *shared = getenv("AK_SHARED");
    char dir[1024];
    if (shared) {
        snprintf(dir, sizeof dir, "%s/tokenizers/gpt2", shared);
        random_round_trips(dir, "gpt2");
        long_word(dir);
        snprintf(dir, sizeof dir, "%s/tokenizers/llama2", shared);
        random_round_trips(dir, "llama2");
    } else
        CHECK(0, "AK_SHARED is set");
    char p[128];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    TEST_DONE();
}
