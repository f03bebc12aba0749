/* cli.h - what every attnkit program does the same way: its name in
 * messages, exit codes, SIGPIPE, the environment, the default model,
 * --device.  Not part of libattnkit: these helpers exit, so they live in
 * libattnkit-cli.a, linked into the programs and tests. */
#ifndef AK_CLI_H
#define AK_CLI_H

#include "attnkit/ak.h"
#include "attnkit/filter.h"
#include "attnkit/model.h"
#include "attnkit/stream.h"

/* Call first in main(): remembers the program name for messages, puts
 * /dev/null on a closed stdin, stdout or stderr (reading or writing the
 * first two then fails as closed), makes the signals that end the program
 * (SIGPIPE too, even if ignored, so `prog | head` ends quietly) remove the
 * output's temporary file first, as exit() does, and silences getopt's own
 * messages (see ak_bad_option), and reads the
 * environment (ak_cli_env). */
void ak_cli_init(const char *progname);
/* Reads the environment once: ATTNKIT_THREADS (1..256, a model's CPU
 * threads), ATTNKIT_CUDA_FORWARD (0..2), ATTNKIT_MAX_RECORD (bytes, the
 * largest stream record), ATTNKIT_COMPRESS (0..9, zlib level of written
 * tensors), ATTNKIT_PROGRESS, ATTNKIT_SIMD; keeps ATTNKIT_MODEL and
 * ATTNKIT_DEVICE for ak_model_dir and ak_device_opt.  An invalid value is
 * a usage error naming the variable. */
void ak_cli_env(void);
/* Hand those settings to what the program opens: a model (threads, CUDA
 * forward, the progress line), a stream read to its end (ak_filter_path
 * with the largest record), a writer (compression), ak_filter_run's
 * readers and writer. */
void ak_cli_model(ak_model *m);
int ak_cli_read(const char *path, ak_record_fn fn, void *ctx, ak_err *err);
void ak_cli_writer(ak_writer *w);
void ak_cli_filter_args(ak_filter_args *a);
/* The progress line: on standard error, rewritten at most four times a
 * second, "PROG: N tokens, R tokens/s" with, inside a pass over many tokens,
 * its layer and the pass's estimated time left; cleared before any message
 * and at exit.  On when force is non-zero (a --progress option), or when
 * ATTNKIT_PROGRESS=1, or when standard error is a terminal and
 * ATTNKIT_PROGRESS is not 0 (ak_cli_init calls it with 0).  Call before
 * ak_cli_model, which reports each model's passes on it. */
void ak_cli_progress(int force);
const char *ak_progname(void);

/* "PROG: message" on stderr, then exit with ak_exit_code(err->code). */
_Noreturn void ak_die(const ak_err *err);
/* "PROG: message" and exit with the status for code. */
_Noreturn void ak_dief(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "PROG: message" and "Try 'PROG -h' for help.", exit 64. */
_Noreturn void ak_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* For getopt_long's '?': names the bad option or missing argument, exit 64.
 * (ak_cli_init sets opterr = 0 so getopt prints nothing itself.) */
_Noreturn void ak_bad_option(char *const argv[]);
/* "PROG: message" on stderr, no exit. */
void ak_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The model to use: opt if given, else $ATTNKIT_MODEL, else the default
 * model installed by the build (SmolLM2-135M-Instruct).  A Hugging Face
 * directory, a .gguf file, a directory holding one, or a short name of an
 * installed model: minilm, smollm2, gemma3, qwen0.5b, qwen1.5b. */
const char *ak_model_dir(const char *opt);
/* The device name to use (for ak_device_parse): opt if given, else
 * $ATTNKIT_DEVICE, else NULL (auto). */
const char *ak_device_opt(const char *opt);

/* Strict number parsing for option values; on failure ak_usage_error()
 * naming the option. */
long ak_parse_long(const char *opt, const char *s, long min, long max);
double ak_parse_double(const char *opt, const char *s, double min, double max);
/* "N" or "A-B" (non-negative, A <= B) into *lo, *hi. */
void ak_parse_range(const char *opt, const char *s, long *lo, long *hi);

#endif
