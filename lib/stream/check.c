/* check.c - finite values and offsets (see check.h). */
#include "check.h"

#include <math.h>
#include <stdio.h>

size_t ak_first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

void ak_tensor_index(const ak_tensor *t, size_t i, char *buf, size_t size)
{
    size_t idx[AK_MAX_DIMS] = {0};
    for (int d = t->ndim - 1; d >= 0; d--) {
        size_t n = t->shape[d] > 0 ? (size_t)t->shape[d] : 1;
        idx[d] = i % n;
        i /= n;
    }
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < t->ndim && used < size; d++) {
        int w = snprintf(buf + used, size - used, "%s%zu", d ? ", " : "", idx[d]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int ak_check_f32_range(const ak_tensor *t, double lo, double hi, ak_err *err)
{
    if (t->dtype != AK_F32)
        return 0;
    const float *x = t->data;
    size_t n = ak_tensor_count(t);
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (isfinite(v) && v >= lo && v <= hi)
            continue;
        char at[128];
        ak_tensor_index(t, i, at, sizeof at);
        if (!isfinite(v))
            return ak_fail(err, AK_EDATA, "%s[%s] is %s", t->name, at,
                           isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        if (isinf(hi))
            return ak_fail(err, AK_EDATA, "%s[%s] = %g is below %g", t->name, at, v, lo);
        return ak_fail(err, AK_EDATA, "%s[%s] = %g is outside [%g, %g]", t->name, at, v, lo, hi);
    }
    return 0;
}

int ak_check_offsets(const int64_t *offsets, int64_t T, size_t len, ak_err *err)
{
    int64_t last_a = 0, last_b = 0;
    for (int64_t i = 0; i < T; i++) {
        int64_t a = offsets[2 * i], b = offsets[2 * i + 1];
        if (a < 0 || b < a || (uint64_t)b > len)
            return ak_fail(err, AK_EDATA, "offsets[%lld] = [%lld, %lld) is not a span of the "
                           "%zu bytes of text", (long long)i, (long long)a, (long long)b, len);
        if (a == b)
            continue;
        if (a < last_a || b < last_b)
            return ak_fail(err, AK_EDATA, "offsets[%lld] = [%lld, %lld) comes before the "
                           "previous token's [%lld, %lld): offsets are not in text order",
                           (long long)i, (long long)a, (long long)b, (long long)last_a,
                           (long long)last_b);
        last_a = a;
        last_b = b;
    }
    return 0;
}

int ak_offsets_in_text(size_t len, const int64_t *offsets, int64_t T, ak_err *err)
{
    for (int64_t i = 0; i < T; i++) {
        int64_t a = offsets[2 * i], b = offsets[2 * i + 1];
        if (a < 0 || b < a || (uint64_t)b > len)
            return ak_fail(err, AK_EDATA, "offsets[%lld] = [%lld, %lld) outside the %zu bytes of text",
                           (long long)i, (long long)a, (long long)b, len);
    }
    return 0;
}

int ak_doc_tokens(const ak_doc *d, ak_tensor **tok, ak_tensor **off, ak_err *err)
{
    if (!(*tok = ak_doc_need(d, "tokens", AK_I32, 1, err)) ||
        !(*off = ak_doc_need(d, "offsets", AK_I64, 2, err)))
        return err->code;
    int64_t T = (*tok)->shape[0];
    if ((*off)->shape[0] != T || (*off)->shape[1] != 2)
        return ak_fail(err, AK_EDATA, "document '%s': offsets is [%lld, %lld], tokens has %lld",
                       d->id, (long long)(*off)->shape[0], (long long)(*off)->shape[1],
                       (long long)T);
    return 0;
}
