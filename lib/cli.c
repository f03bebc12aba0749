/* cli.c - program name, one-line errors, exit codes, option values. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AK_DEFAULT_MODEL_DIR
#define AK_DEFAULT_MODEL_DIR "/usr/local/share/attnkit/all-MiniLM-L6-v2"
#endif
#ifndef AK_INSTALLED_MODEL_DIR
#define AK_INSTALLED_MODEL_DIR AK_DEFAULT_MODEL_DIR
#endif
/* Where `make` installs the other models (.cache/models while developing). */
#ifndef AK_MODELS_DIR
#define AK_MODELS_DIR "/usr/local/share/attnkit/models"
#endif

static const char *progname = "attnkit";

void ak_cli_init(const char *name)
{
    progname = name;
    /* A parent may have ignored SIGPIPE; we want `prog | head` to end
     * quietly the way Unix filters do. */
    signal(SIGPIPE, SIG_DFL);
    opterr = 0;
}

void ak_bad_option(char *const argv[])
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (optopt && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", optopt) &&
        arg[0] == '-' && arg[1] != '-' && strchr(arg + 1, optopt) == NULL)
        ak_usage_error("option requires an argument: -%c", optopt);
    ak_usage_error("unknown option or missing argument: %s", arg);
}

const char *ak_progname(void) { return progname; }

static void vmsg(const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* One line: a message must never spill over several. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "%s: %s\n", progname, buf);
}

void ak_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void ak_die(const ak_err *err)
{
    fflush(stdout);
    ak_warn("%s", err->msg[0] ? err->msg : "unknown error");
    exit(ak_exit_code(err->code ? err->code : AK_EINTERNAL));
}

void ak_dief(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(ak_exit_code(code));
}

void ak_usage_error(const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ak_warn("%s (try '%s -h')", buf, progname);
    exit(64);
}

static const char *default_model(void)
{
    /* The build tree's copy while developing, the installed one after
     * `make install`. */
    struct stat st;
    if (stat(AK_DEFAULT_MODEL_DIR, &st) == 0 || stat(AK_INSTALLED_MODEL_DIR, &st) != 0)
        return AK_DEFAULT_MODEL_DIR;
    return AK_INSTALLED_MODEL_DIR;
}

/* Short names of the models the build installs; a file or directory of
 * that name in the current directory wins. */
static const char *short_name(const char *name)
{
    static const struct { const char *name, *sub; } known[] = {
        {"smollm2", "smollm2"},   /* SmolLM2-135M-Instruct.Q4_1.gguf */
        {"gemma3", "gemma3"},     /* gemma-3-270m-q4_k_m.gguf */
    };
    static char path[4096];
    struct stat st;
    if (!strcmp(name, "minilm"))
        return stat(name, &st) == 0 ? name : default_model();
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i].name) && stat(name, &st) != 0) {
            snprintf(path, sizeof path, "%s/%s", AK_MODELS_DIR, known[i].sub);
            return path;
        }
    return name;
}

const char *ak_model_dir(const char *opt)
{
    if (opt && *opt)
        return short_name(opt);
    const char *env = getenv("ATTNKIT_MODEL");
    if (env && *env)
        return short_name(env);
    return default_model();
}

long ak_parse_long(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        ak_usage_error("%s: '%s' is not an integer in [%ld, %ld]", opt, s, min, max);
    return v;
}

double ak_parse_double(const char *opt, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        ak_usage_error("%s: '%s' is not a number in [%g, %g]", opt, s, min, max);
    return v;
}

void ak_parse_range(const char *opt, const char *s, long *lo, long *hi)
{
    const char *dash = strchr(s, '-');
    if (!dash) {
        *lo = *hi = ak_parse_long(opt, s, 0, 1L << 20);
        return;
    }
    char a[32];
    size_t n = (size_t)(dash - s);
    if (n == 0 || n >= sizeof a)
        ak_usage_error("%s: expected A-B, got '%s'", opt, s);
    memcpy(a, s, n);
    a[n] = 0;
    *lo = ak_parse_long(opt, a, 0, 1L << 20);
    *hi = ak_parse_long(opt, dash + 1, 0, 1L << 20);
    if (*hi < *lo)
        ak_usage_error("%s: %ld-%ld is empty", opt, *lo, *hi);
}
