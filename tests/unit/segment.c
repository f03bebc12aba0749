/* segment.c - the sentence rule (include/attnkit/segment.h) and that prune's sentence
 * ids follow it token for token. */
#include "attnkit/prune.h"
#include "attnkit/segment.h"
#include "test.h"

#include <string.h>

static void starts_are(const char *text, int mode, const char *want, const char *what)
{
    int64_t *s;
    size_t n;
    ak_err err;
    char buf[256] = "";
    size_t k = 0;
    int rc = ak_text_blocks(text, strlen(text), mode, &s, &n, &err);
    for (size_t j = 0; !rc && j < n; j++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", j ? " " : "", (long long)s[j]);
    free(s);
    CHECK(!rc && !strcmp(buf, want), "%s: starts \"%s\" (want \"%s\")", what, buf, want);
}

/* One token per white-space separated word: prune's sentence ids are the
 * blocks ak_token_blocks gives (what tokenize --segments sentence writes). */
static void ids_agree(const char *text, const char *want, const char *what)
{
    size_t len = strlen(text), T = 0;
    int64_t off[128];
    for (size_t i = 0; i < len && T < 63;) {
        while (i < len && strchr(" \n\t", text[i]))
            i++;
        if (i >= len)
            break;
        off[2 * T] = (int64_t)i;
        while (i < len && !strchr(" \n\t", text[i]))
            i++;
        off[2 * T + 1] = (int64_t)i;
        T++;
    }
    int32_t ids[64], blocks[64];
    int64_t *s;
    size_t n;
    ak_err err;
    int rc = ak_sentence_ids((const uint8_t *)text, len, off, (int64_t)T, ids, &err) ||
             ak_text_blocks(text, len, AK_SEG_SENTENCE, &s, &n, &err);
    if (!rc) {
        ak_token_blocks(text, len, off, T, s, n, blocks);
        free(s);
    }
    char buf[256] = "";
    size_t k = 0;
    for (size_t i = 0; !rc && i < T; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? " " : "", ids[i]);
    CHECK(!rc && !memcmp(ids, blocks, T * sizeof *ids) && !strcmp(buf, want),
          "%s: prune's sentence ids \"%s\" = tokenize's blocks (want \"%s\")", what, buf, want);
}

int main(void)
{
    starts_are("One. Two! Three?\nFour\n\nFive.", AK_SEG_SENTENCE, "5 10 17 23", "ASCII ends");
    starts_are("He said \"Stop.\" Then left.", AK_SEG_SENTENCE, "16", "closing quote");
    starts_are("\xE2\x80\x9CGo.\xE2\x80\x9D She went.", AK_SEG_SENTENCE, "10", "closing curly quote");
    starts_are("(Done.) Next. \xC2\xABOui.\xC2\xBB Non.", AK_SEG_SENTENCE, "8 14 23", "bracket and guillemet");
    starts_are("Wait\xE2\x80\xA6 what? Yes.", AK_SEG_SENTENCE, "8 14", "ellipsis then a space");
    starts_are("well\xE2\x80\xA6maybe so.", AK_SEG_SENTENCE, "", "ellipsis inside a word ends nothing");
    starts_are("\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x81"
               "\xE5\x86\x8D\xE8\xA7\x81", AK_SEG_SENTENCE, "9 21", "CJK full stops, no space");
    starts_are("Pi is 3.14 and e.g. this.", AK_SEG_SENTENCE, "20", "a decimal point ends nothing");
    starts_are("Really?! Yes...  No.", AK_SEG_SENTENCE, "9 17", "runs of marks");
    starts_are("a\n \t\nb\nc", AK_SEG_SENTENCE, "5", "a blank line with spaces");
    starts_are("a\n \t\nb\nc", AK_SEG_PARAGRAPH, "5", "paragraph");
    starts_are("a\n \t\nb\nc", AK_SEG_LINE, "5 7", "line (the blank one adds no block)");

    ids_agree("He said \"Stop.\" Then left.", "0 0 0 1 1", "closing quote");
    ids_agree("Wait\xE2\x80\xA6 what? Yes.", "0 1 2", "ellipsis");
    ids_agree("\xE4\xBD\xA0\xE3\x80\x82\xE6\x88\x91 \xE5\xA5\xBD", "0 1",
              "CJK full stop inside a token: the token's first byte decides");
    ids_agree("One. Two.\n\nThree four", "0 1 2 2", "blank line");

    /* empty spans (special tokens) are outside every sentence */
    int64_t off[6] = {0, 0, 0, 3, 0, 0};
    int32_t ids[3];
    ak_err err;
    CHECK(ak_sentence_ids((const uint8_t *)"Hi.", 3, off, 3, ids, &err) == 0 && ids[0] == -1 &&
          ids[1] == 0 && ids[2] == -1, "empty spans get -1");
    TEST_DONE();
}
