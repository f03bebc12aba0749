/* test.h - minimal TAP-style checks for C unit tests: "ok - what" lines,
 * exit status 1 if any failed. */
#ifndef AK_TEST_H
#define AK_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int t_failed, t_count;
#define CHECK(cond, ...) do { int _ok = !!(cond); t_count++; \
    printf(_ok ? "ok - " : "not ok - "); if (!_ok) t_failed = 1; \
    printf(__VA_ARGS__); printf("%s\n", _ok ? "" : "  [" #cond "]"); \
    fflush(stdout); } while (0)
#define CHECK_NEAR(a, b, rel, ...) do { double _a = (a), _b = (b); \
    double _d = fabs(_a - _b), _s = fabs(_b) > 1e-30 ? fabs(_b) : 1; \
    t_count++; if (_d / _s <= (rel) || _d <= 1e-30) printf("ok - "); \
    else { printf("not ok - "); t_failed = 1; } printf(__VA_ARGS__); \
    printf(" (%.9g vs %.9g)\n", _a, _b); } while (0)
#define TEST_DONE() do { if (t_count == 0) { printf("not ok - no checks ran\n"); \
    return 1; } return t_failed; } while (0)
#endif
