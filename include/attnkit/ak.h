/* ak.h - what every attnkit module shares: error reporting and exit codes.
 *
 * Library functions return 0 on success or a negative AK_E* code, and fill
 * an ak_err with one line of text (no program name, no newline).  Programs
 * decide how to report it (see cli.h).  The library never exits.
 */
#ifndef AK_AK_H
#define AK_AK_H

#include <stddef.h>
#include <stdint.h>

#define AK_VERSION "0.1.0"

/* Marks the public API: libattnkit.so is built with -fvisibility=hidden,
 * so only what carries AK_API is exported. */
#if defined(__GNUC__)
#define AK_API __attribute__((visibility("default")))
#else
#define AK_API
#endif

enum {
    AK_OK = 0,
    AK_EUSAGE = -1,   /* bad arguments                      -> exit 64 */
    AK_EDATA = -2,    /* malformed or inconsistent input    -> exit 65 */
    AK_ENOINPUT = -3, /* cannot open / read an input file   -> exit 66 */
    AK_ENOMEM = -4,   /* allocation failed or limit reached -> exit 70 */
    AK_EIO = -5,      /* read/write error                   -> exit 74 */
    AK_ECONFIG = -6,  /* unsupported model / configuration  -> exit 78 */
    AK_EINTERNAL = -7, /* a bug or a device failure         -> exit 70 */
    AK_ECANTCREAT = -8 /* cannot create an output file      -> exit 73 */
};

typedef struct ak_err {
    int code;
    char msg[512];
} ak_err;

/* Sets err (may be NULL) and returns code, so callers can write
 * `return ak_fail(err, AK_EDATA, "tensor %s: bad shape", name);` */
AK_API int ak_fail(ak_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes context to an existing message: "ctx: old message". */
AK_API int ak_wrap(ak_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exit status for an AK_E* code (sysexits.h vocabulary). */
AK_API int ak_exit_code(int code);

/* Overflow-checked size arithmetic: return 0 and set *out, or -1. */
AK_API int ak_mul_size(size_t a, size_t b, size_t *out);
AK_API int ak_add_size(size_t a, size_t b, size_t *out);

#endif
