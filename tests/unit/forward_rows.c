/* forward_rows.c - the weights the device forward pass uploads
 * (ak_linear_rows_f32), checked on the CPU, where they can be: for every
 * projection of the first and last layers and the LM head of models of
 * each layout (safetensors f32 and bf16, GPT-2's Conv1D, GGUF llama with
 * its RoPE-pair rows, quantized GGUF), x . rows^T + bias must equal what
 * lib/model/forward.c computes on the CPU: cblas_sgemm on the weight as the
 * model holds it (for quantized rows, ak_dot_row straight from the blocks,
 * as generation and short inputs take them), followed by the CPU's
 * deinterleave of q and k.  The device cannot be run here; this is the
 * part of its upload that can. */
#include "attnkit/model.h"
#include "format/quant.h"
#include "test.h"

#include <cblas.h>
#include <string.h>
#include <unistd.h>

enum { T = 3 };

/* y[T, out] the CPU's way: x W^T + b, then deinterleave when rope_dh > 0
 * (forward.c: new v[i] = old v[2i], new v[half + i] = old v[2i + 1]). */
static void cpu_product(const ak_linear *l, const float *x, int rope_dh, float *y)
{
    if (l->wq) {
        float *row = malloc((size_t)l->in * sizeof(float));
        for (int o = 0; o < l->out; o++) {
            const char *src = (const char *)l->wq + (size_t)o * l->row_bytes;
            for (int t = 0; t < T; t++) {
                float dot;
                if (ak_dot_row(l->type, src, x + (size_t)t * l->in, l->in, &dot) != 0) {
                    ak_dequant_row(l->type, src, row, l->in);
                    double acc = 0;
                    for (int i = 0; i < l->in; i++)
                        acc += (double)row[i] * x[(size_t)t * l->in + i];
                    dot = (float)acc;
                }
                y[(size_t)t * l->out + o] = dot;
            }
        }
        free(row);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, l->in_out ? CblasNoTrans : CblasTrans, T, l->out,
                    l->in, 1.0f, x, l->in, l->w, l->ldw, 0.0f, y, l->out);
    }
    for (int t = 0; t < T && l->b; t++)
        for (int o = 0; o < l->out; o++)
            y[(size_t)t * l->out + o] += l->b[o];
    if (rope_dh <= 0)
        return;
    int half = rope_dh / 2;
    float *tmp = malloc((size_t)rope_dh * sizeof(float));
    for (size_t r = 0; r < (size_t)T * l->out / rope_dh; r++) {
        float *v = y + r * rope_dh;
        for (int i = 0; i < half; i++) {
            tmp[i] = v[2 * i];
            tmp[i + half] = v[2 * i + 1];
        }
        memcpy(v, tmp, (size_t)rope_dh * sizeof(float));
    }
    free(tmp);
}

/* The same product from the rows the device gets, in double. */
static void device_product(const ak_linear *l, const float *x, int rope_dh, float *y)
{
    float *w = malloc((size_t)l->out * l->in * sizeof(float));
    /* in two pieces, as the upload goes a chunk of rows at a time */
    int first = l->out / 3;
    ak_linear_rows_f32(l, 0, first, rope_dh, w);
    ak_linear_rows_f32(l, first, l->out - first, rope_dh, w + (size_t)first * l->in);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < l->out; o++) {
            double acc = l->b ? l->b[ak_linear_source_row(o, rope_dh)] : 0.0;
            for (int i = 0; i < l->in; i++)
                acc += (double)w[(size_t)o * l->in + i] * x[(size_t)t * l->in + i];
            y[(size_t)t * l->out + o] = (float)acc;
        }
    free(w);
}

static void check_linear(const char *name, const char *what, const ak_linear *l, int rope_dh)
{
    if (!l->in || (!l->w && !l->wq))
        return;
    size_t ny = (size_t)T * l->out;
    float *x = malloc((size_t)T * l->in * sizeof(float));
    float *a = malloc(ny * sizeof(float)), *b = malloc(ny * sizeof(float));
    uint32_t s = 2463534242u;
    for (int i = 0; i < T * l->in; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    cpu_product(l, x, rope_dh, a);
    device_product(l, x, rope_dh, b);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < ny; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst ? d : worst;
        scale = fabs(a[i]) > scale ? fabs(a[i]) : scale;
    }
    double rel = worst / (scale > 0 ? scale : 1);
    CHECK(rel <= 1e-5, "%s: %s [%d, %d]%s%s%s: device rows against the CPU product, %.2g", name,
          what, l->out, l->in, l->wq ? " quantized" : "", l->in_out ? " Conv1D" : "",
          rope_dh ? " RoPE pairs" : "", rel);
    free(x);
    free(a);
    free(b);
}

static void model(const char *top, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", top, rel);
    if (access(path, R_OK) != 0) {
        printf("# skip %s: not installed\n", path);
        return;
    }
    ak_model *m = NULL;
    ak_err err = {0};
    int rc = ak_model_load(&m, path, &err);
    CHECK(rc == 0, "%s: load (%s)", rel, err.msg);
    if (rc)
        return;
    int dh = m->qk_interleaved ? m->head_dim : 0;
    int layers[2] = {0, m->n_layers - 1};
    for (int k = 0; k < (m->n_layers > 1 ? 2 : 1); k++) {
        const ak_layer *ly = &m->layers[layers[k]];
        char what[64];
        const struct { const char *n; const ak_linear *l; int rope; } ls[] = {
            {"q", &ly->q, dh}, {"k", &ly->k, dh}, {"v", &ly->v, 0}, {"o", &ly->o, 0},
            {"up", &ly->up, 0}, {"gate", &ly->gate, 0}, {"down", &ly->down, 0}};
        for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
            snprintf(what, sizeof what, "layer %d %s", layers[k], ls[i].n);
            check_linear(rel, what, ls[i].l, ls[i].rope);
        }
    }
    check_linear(rel, "lm_head", &m->lm_head, 0);
    ak_model_free(m);
}

int main(void)
{
    const char *top = getenv("AK_TOP");
    if (!top)
        top = ".";
    static const char *models[] = {
        "tests/model/bert_tiny",         "tests/model/gpt2_tiny",
        "tests/model/llama_gqa_llama3",  "tests/model/qwen2_bias_bf16",
        "tests/model/gemma3_tiny",       "tests/model/gguf/tiny_llama.gguf",
        "tests/model/gguf/tiny_qwen2.gguf", "tests/model/gguf/tiny_gpt2.gguf",
        ".cache/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        model(top, models[i]);
    TEST_DONE();
}
