/* libFuzzer target: a safetensors file from a stranger.  Opens it, looks
 * every tensor up by name and converts the float ones to f32. */
#include "attnkit/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz-st-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    ak_safetensors st;
    ak_err err;
    memset(&st, 0, sizeof st);
    if (ak_st_open_file(&st, path, &err) == 0) {
        for (size_t i = 0; i < st.ntensors; i++) {
            const ak_st_tensor *t = &st.tensors[i];
            if (ak_st_find(&st, t->name) != t)
                __builtin_trap(); /* lookup must find what the header named */
            size_t n = t->nbytes / (ak_dtype_size(t->dtype) ? ak_dtype_size(t->dtype) : 1);
            if (n <= (1u << 20) && (t->dtype == AK_F32 || t->dtype == AK_F16 || t->dtype == AK_BF16)) {
                float *buf = malloc((n ? n : 1) * sizeof *buf);
                if (buf)
                    ak_st_to_f32(t, buf, n, &err);
                free(buf);
            }
        }
        ak_st_close(&st);
    }
    unlink(path);
    return 0;
}
