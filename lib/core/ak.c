/* ak.c - error messages and exit codes shared by the library and programs. */
#include "attnkit/ak.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ak_fail(ak_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ak_wrap(ak_err *err, const char *fmt, ...)
{
    if (!err)
        return AK_EINTERNAL;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t m = strnlen(old, sizeof old);
    if (m > sizeof err->msg - n - 3)
        m = sizeof err->msg - n - 3;
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = 0;
    return err->code;
}

int ak_exit_code(int code)
{
    switch (code) {
    case AK_OK: return 0;
    case AK_EUSAGE: return 64;    /* EX_USAGE */
    case AK_EDATA: return 65;     /* EX_DATAERR */
    case AK_ENOINPUT: return 66;  /* EX_NOINPUT */
    case AK_ENOMEM: return 70;    /* EX_SOFTWARE */
    case AK_ECANTCREAT: return 73; /* EX_CANTCREAT */
    case AK_EIO: return 74;       /* EX_IOERR */
    case AK_ECONFIG: return 78;   /* EX_CONFIG */
    default: return 70;
    }
}

int ak_mul_size(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b)
        return -1;
    *out = a * b;
    return 0;
}

int ak_add_size(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return -1;
    *out = a + b;
    return 0;
}
