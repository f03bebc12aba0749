/* libFuzzer target: a tokenizer.json from a stranger.  The input is split
 * at its first NUL byte: before it the tokenizer file, after it a text to
 * encode (a fixed sentence when there is none); the ids are decoded back.
 * An input starting with "GGUF" is a whole GGUF file instead (its
 * tokenizer.* metadata), encoding the fixed sentence; both also try
 * tokenize --chat's rendering.  The text is handed to the encoder as it
 * is, invalid UTF-8 included (the --target path): the encoder checks it. */
#include "attnkit/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    static char path[96], gpath[96];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-tok-%d", (int)getpid());
        mkdir(dir, 0700);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        snprintf(gpath, sizeof gpath, "%s.gguf", dir);
    }
    int gguf = size >= 4 && !memcmp(data, "GGUF", 4);
    const uint8_t *nul = gguf ? NULL : memchr(data, 0, size);
    size_t flen = nul ? (size_t)(nul - data) : size;
    const char *text = "Hello, world! It's 2026: naïve café 東京 🙂\n  x";
    size_t tlen = strlen(text);
    if (nul) {
        text = (const char *)nul + 1;
        tlen = size - flen - 1;
    }
    FILE *f = fopen(gguf ? gpath : path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, flen, f);
    fclose(f);
    ak_tokenizer *tk;
    ak_err err;
    if (ak_tokenizer_load(&tk, gguf ? gpath : dir, &err) == 0) {
        ak_encoding enc = {0};
        /* unchecked, as kvcache --target reads a file: encode checks it */
        if (ak_tokenizer_encode(tk, text, tlen, 0, &enc, &err) == 0 &&
            ak_tokenizer_post(tk, &enc, (int64_t)tlen, &err) == 0) {
            char *out = NULL;
            size_t outlen = 0;
            ak_tokenizer_decode(tk, enc.ids, enc.n, NULL, &out, &outlen, NULL, &err);
            free(out);
        }
        ak_encoding_free(&enc);
        if (ak_utf8_check(text, tlen, &err) == 0)
            ak_tokenizer_chat(tk, NULL, "Be brief.", text, tlen, &enc, &err);
        ak_encoding_free(&enc);
        ak_tokenizer_free(tk);
    }
    return 0;
}
