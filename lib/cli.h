/* cli.h - what every attnkit program does the same way: its name in
 * messages, exit codes, SIGPIPE, the default model, --device. */
#ifndef AK_CLI_H
#define AK_CLI_H

#include "ak.h"

/* Call first in main(): remembers the program name for messages,
 * restores SIGPIPE's default action, so `prog | head` ends quietly, and
 * silences getopt's own messages (see ak_bad_option). */
void ak_cli_init(const char *progname);
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
 * model installed by the build (all-MiniLM-L6-v2).  A Hugging Face
 * directory, a .gguf file, a directory holding one, or a short name of an
 * installed model: minilm, smollm2, gemma3. */
const char *ak_model_dir(const char *opt);

/* Strict number parsing for option values; on failure ak_usage_error()
 * naming the option. */
long ak_parse_long(const char *opt, const char *s, long min, long max);
double ak_parse_double(const char *opt, const char *s, double min, double max);
/* "N" or "A-B" (non-negative, A <= B) into *lo, *hi. */
void ak_parse_range(const char *opt, const char *s, long *lo, long *hi);

#endif
