/* model.c - config.json parsing and weight binding for the families in
 * model.h.  The forward pass is in forward.c. */
#include "attnkit/model.h"
#include "arch.h"
#include "format/gguf.h"
#include "format/regfile.h"
#include "attnkit/io.h"
#include "attnkit/mask.h"
#include "format/quant.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- config.json ---------------------------------------------------------- */

static int cfg_int(json_t *cfg, const char *key, int def, int min, int max, int *out,
                   ak_err *err)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        if (def < min)
            return ak_fail(err, AK_ECONFIG, "config.json: missing \"%s\"", key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return ak_fail(err, AK_ECONFIG, "config.json: \"%s\" must be an integer in [%d, %d]", key,
                       min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_num(json_t *cfg, const char *key, double def, double *out, ak_err *err)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return ak_fail(err, AK_ECONFIG, "config.json: \"%s\" must be a number", key);
    *out = json_number_value(v);
    return 0;
}

static int cfg_bool(json_t *cfg, const char *key, int def)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static const char *cfg_str(json_t *cfg, const char *key)
{
    return json_string_value(json_object_get(cfg, key));
}

static int parse_act(const char *s, ak_act *out, ak_err *err)
{
    if (!s)
        return ak_fail(err, AK_ECONFIG, "config.json: no activation function named");
    if (!strcmp(s, "gelu"))
        *out = AK_ACT_GELU_ERF;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast"))
        *out = AK_ACT_GELU_TANH;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish"))
        *out = AK_ACT_SILU;
    else if (!strcmp(s, "relu"))
        *out = AK_ACT_RELU;
    else
        return ak_fail(err, AK_ECONFIG, "config.json: unsupported activation \"%s\"", s);
    return 0;
}

/* The activation config.json names under KEY, or the architecture's own. */
static int config_act(json_t *cfg, const char *key, const ak_arch *a, ak_act *out, ak_err *err)
{
    const char *s = cfg_str(cfg, key);
    if (!s) {
        *out = a->act;
        return 0;
    }
    return parse_act(s, out, err);
}

/* RoPE frequencies: inv_freq[i] = theta^(-2i/d), then scaled as sp says
 * (a rope_scaling or rope_parameters object, or NULL for none; the types
 * are transformers' modeling_rope_utils). */
static int rope_table(ak_model *m, double theta, json_t *sp, float **out, ak_rope_type *kind,
                      ak_err *err)
{
    int rc;
    if (sp && (rc = cfg_num(sp, "rope_theta", theta, &theta, err)))
        return rc;
    if (!(theta > 0))
        return ak_fail(err, AK_ECONFIG, "config.json: rope_theta must be positive");
    const char *type = "default";
    if (sp) {
        type = cfg_str(sp, "rope_type");
        if (!type)
            type = cfg_str(sp, "type");
        if (!type)
            type = "default";
    }
    int half = m->head_dim / 2;
    float *f = malloc((size_t)(half ? half : 1) * sizeof *f);
    if (!f)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    /* transformers computes this in f32: 1 / base ** (float(2i) / dim). */
    for (int i = 0; i < half; i++)
        f[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)m->head_dim);
    if (!strcmp(type, "default")) {
        *kind = AK_ROPE_DEFAULT;
    } else if (!strcmp(type, "linear")) {
        double factor;
        if ((rc = cfg_num(sp, "factor", 1.0, &factor, err)) || !(factor > 0)) {
            free(f);
            return rc ? rc : ak_fail(err, AK_ECONFIG, "config.json: rope factor must be positive");
        }
        for (int i = 0; i < half; i++)
            f[i] = (float)(f[i] / factor);
        *kind = AK_ROPE_LINEAR;
    } else if (!strcmp(type, "llama3")) {
        double factor, lo, hi, old;
        if ((rc = cfg_num(sp, "factor", 8.0, &factor, err)) ||
            (rc = cfg_num(sp, "low_freq_factor", 1.0, &lo, err)) ||
            (rc = cfg_num(sp, "high_freq_factor", 4.0, &hi, err)) ||
            (rc = cfg_num(sp, "original_max_position_embeddings", 8192, &old, err))) {
            free(f);
            return rc;
        }
        if (!(factor > 0) || !(lo > 0) || !(hi > lo) || !(old > 0)) {
            free(f);
            return ak_fail(err, AK_ECONFIG, "config.json: bad llama3 rope_scaling parameters");
        }
        /* Llama 3.1: long wavelengths divided by factor, short kept, the
         * band between interpolated smoothly. */
        double lo_wavelen = old / lo, hi_wavelen = old / hi;
        for (int i = 0; i < half; i++) {
            double wavelen = 2 * M_PI / f[i];
            double scaled = wavelen > lo_wavelen ? f[i] / factor : f[i];
            if (!(wavelen < hi_wavelen) && !(wavelen > lo_wavelen)) {
                double smooth = (old / wavelen - lo) / (hi - lo);
                scaled = (1 - smooth) * scaled / factor + smooth * scaled;
            }
            f[i] = (float)scaled;
        }
        *kind = AK_ROPE_LLAMA3;
    } else {
        free(f);
        return ak_fail(err, AK_ECONFIG, "config.json: unsupported rope type \"%s\"", type);
    }
    *out = f;
    return 0;
}

/* The model's RoPE: rope_parameters (transformers >= 5; for Gemma 3 one
 * object per layer type) or rope_theta + rope_scaling (older configs;
 * Gemma 3's local layers then use rope_local_base_freq unscaled). */
static int parse_rope(ak_model *m, json_t *cfg, ak_err *err)
{
    json_t *params = json_object_get(cfg, "rope_parameters");
    json_t *scaling = json_object_get(cfg, "rope_scaling");
    int gemma = m->family == AK_FAMILY_GEMMA3;
    double theta, local_theta;
    int rc;
    if ((rc = cfg_num(cfg, "rope_theta", ak_arch_find(m->arch, AK_ARCH_HF)->rope_theta, &theta, err)) ||
        (rc = cfg_num(cfg, "rope_local_base_freq", 10000.0, &local_theta, err)))
        return rc;
    json_t *sp = NULL, *local_sp = NULL;
    if (json_is_object(params) && json_is_object(json_object_get(params, "full_attention"))) {
        sp = json_object_get(params, "full_attention");
        local_sp = json_object_get(params, "sliding_attention");
        if (local_sp && !json_is_object(local_sp))
            return ak_fail(err, AK_ECONFIG, "config.json: rope_parameters.sliding_attention must be an object");
    } else if (json_is_object(params)) {
        sp = params;
    } else if (json_is_object(scaling)) {
        sp = scaling;
    }
    ak_rope_type kind;
    if ((rc = rope_table(m, theta, sp, &m->inv_freq, &m->rope, err)))
        return rc;
    if (gemma && (rc = rope_table(m, local_theta, local_sp, &m->inv_freq_local, &kind, err)))
        return rc;
    return 0;
}

static int parse_config(ak_model *m, json_t *cfg, ak_err *err)
{
    const char *mt = cfg_str(cfg, "model_type");
    if (!mt) {
        json_t *arch = json_array_get(json_object_get(cfg, "architectures"), 0);
        return ak_fail(err, AK_ECONFIG, "config.json: no model_type%s%s", arch ? "; architecture " : "",
                       arch && json_string_value(arch) ? json_string_value(arch) : "");
    }
    const ak_arch *a = ak_arch_find(mt, AK_ARCH_HF);
    if (!a) {
        json_t *arch = json_array_get(json_object_get(cfg, "architectures"), 0);
        char names[160];
        ak_arch_names(AK_ARCH_HF, names, sizeof names);
        return ak_fail(err, AK_ECONFIG, "unsupported architecture \"%s\"%s%s%s (supported: %s)",
                       mt, arch && json_string_value(arch) ? " (" : "",
                       arch && json_string_value(arch) ? json_string_value(arch) : "",
                       arch && json_string_value(arch) ? ")" : "", names);
    }
    snprintf(m->arch, sizeof m->arch, "%s", mt);
    m->family = a->family;
    int rc;
    const int BIG = 1 << 24;
    if (m->family == AK_FAMILY_BERT) {
        double eps;
        const char *pet = cfg_str(cfg, "position_embedding_type");
        if (pet && strcmp(pet, "absolute"))
            return ak_fail(err, AK_ECONFIG, "config.json: bert position_embedding_type \"%s\" is not supported", pet);
        if ((rc = cfg_int(cfg, "vocab_size", -1, 1, BIG, &m->vocab_size, err)) ||
            (rc = cfg_int(cfg, "hidden_size", -1, 1, 1 << 16, &m->hidden_size, err)) ||
            (rc = cfg_int(cfg, "num_hidden_layers", -1, 1, 1024, &m->n_layers, err)) ||
            (rc = cfg_int(cfg, "num_attention_heads", -1, 1, 4096, &m->n_heads, err)) ||
            (rc = cfg_int(cfg, "intermediate_size", -1, 1, 1 << 20, &m->intermediate_size, err)) ||
            (rc = cfg_int(cfg, "max_position_embeddings", -1, 1, BIG, &m->max_positions, err)) ||
            (rc = cfg_int(cfg, "type_vocab_size", 2, 0, 1 << 16, &m->type_vocab_size, err)) ||
            (rc = cfg_num(cfg, "layer_norm_eps", 1e-12, &eps, err)) ||
            (rc = config_act(cfg, "hidden_act", a, &m->act, err)))
            return rc;
        m->norm_eps = (float)eps;
        m->n_kv_heads = m->n_heads;
        /* transformers' BertModel: is_decoder makes self-attention causal;
         * it always adds token-type embedding 0, so an empty table cannot run */
        m->causal = cfg_bool(cfg, "is_decoder", 0);
        if (m->type_vocab_size == 0)
            return ak_fail(err, AK_ECONFIG, "config.json: bert type_vocab_size 0 is not supported "
                           "(BertModel always adds token-type embedding 0)");
    } else if (m->family == AK_FAMILY_GPT2) {
        double eps;
        if ((rc = cfg_int(cfg, "vocab_size", -1, 1, BIG, &m->vocab_size, err)) ||
            (rc = cfg_int(cfg, "n_embd", -1, 1, 1 << 16, &m->hidden_size, err)) ||
            (rc = cfg_int(cfg, "n_layer", -1, 1, 1024, &m->n_layers, err)) ||
            (rc = cfg_int(cfg, "n_head", -1, 1, 4096, &m->n_heads, err)) ||
            (rc = cfg_int(cfg, "n_positions", -1, 1, BIG, &m->max_positions, err)) ||
            (rc = cfg_num(cfg, "layer_norm_epsilon", 1e-5, &eps, err)))
            return rc;
        json_t *inner = json_object_get(cfg, "n_inner");
        m->intermediate_size = 4 * m->hidden_size;
        if (inner && !json_is_null(inner) &&
            (rc = cfg_int(cfg, "n_inner", -1, 1, 1 << 20, &m->intermediate_size, err)))
            return rc;
        if ((rc = config_act(cfg, "activation_function", a, &m->act, err)))
            return rc;
        m->norm_eps = (float)eps;
        m->n_kv_heads = m->n_heads;
        m->causal = 1;
        if (!cfg_bool(cfg, "scale_attn_weights", 1))
            m->attn_scale = 1;
        m->attn_scale_by_layer = cfg_bool(cfg, "scale_attn_by_inverse_layer_idx", 0);
    } else if (m->family == AK_FAMILY_LLAMA) {
        double eps;
        if ((rc = cfg_int(cfg, "vocab_size", -1, 1, BIG, &m->vocab_size, err)) ||
            (rc = cfg_int(cfg, "hidden_size", -1, 1, 1 << 16, &m->hidden_size, err)) ||
            (rc = cfg_int(cfg, "num_hidden_layers", -1, 1, 1024, &m->n_layers, err)) ||
            (rc = cfg_int(cfg, "num_attention_heads", -1, 1, 4096, &m->n_heads, err)) ||
            (rc = cfg_int(cfg, "num_key_value_heads", m->n_heads, 1, 4096, &m->n_kv_heads, err)) ||
            (rc = cfg_int(cfg, "intermediate_size", -1, 1, 1 << 20, &m->intermediate_size, err)) ||
            (rc = cfg_int(cfg, "max_position_embeddings", 1 << 30, 1, INT_MAX, &m->max_positions, err)) ||
            (rc = cfg_num(cfg, "rms_norm_eps", 1e-6, &eps, err)) ||
            (rc = config_act(cfg, "hidden_act", a, &m->act, err)))
            return rc;
        m->norm_eps = (float)eps;
        m->causal = 1;
    } else {
        double eps, qscale;
        if ((rc = cfg_int(cfg, "vocab_size", -1, 1, BIG, &m->vocab_size, err)) ||
            (rc = cfg_int(cfg, "hidden_size", -1, 1, 1 << 16, &m->hidden_size, err)) ||
            (rc = cfg_int(cfg, "num_hidden_layers", -1, 1, 1024, &m->n_layers, err)) ||
            (rc = cfg_int(cfg, "num_attention_heads", -1, 1, 4096, &m->n_heads, err)) ||
            (rc = cfg_int(cfg, "num_key_value_heads", m->n_heads, 1, 4096, &m->n_kv_heads, err)) ||
            (rc = cfg_int(cfg, "intermediate_size", -1, 1, 1 << 20, &m->intermediate_size, err)) ||
            (rc = cfg_int(cfg, "max_position_embeddings", 1 << 30, 1, INT_MAX, &m->max_positions, err)) ||
            (rc = cfg_num(cfg, "rms_norm_eps", 1e-6, &eps, err)) ||
            (rc = cfg_num(cfg, "query_pre_attn_scalar", 256, &qscale, err)) ||
            (rc = config_act(cfg, "hidden_activation", a, &m->act, err)))
            return rc;
        json_t *cap = json_object_get(cfg, "attn_logit_softcapping");
        if (cap && !json_is_null(cap))
            return ak_fail(err, AK_ECONFIG, "config.json: attention logit softcapping is not supported");
        if (cfg_bool(cfg, "use_bidirectional_attention", 0))
            return ak_fail(err, AK_ECONFIG, "config.json: bidirectional Gemma 3 attention is not supported");
        double softcap = 0;
        json_t *fcap = json_object_get(cfg, "final_logit_softcapping");
        if (fcap && !json_is_null(fcap) && (rc = cfg_num(cfg, "final_logit_softcapping", 0, &softcap, err)))
            return rc;
        if (!(qscale > 0) || softcap < 0)
            return ak_fail(err, AK_ECONFIG, "config.json: query_pre_attn_scalar and final_logit_softcapping must be positive");
        m->logit_softcap = (float)softcap;
        m->attn_scale = (float)(1.0 / sqrt(qscale));
        m->norm_eps = (float)eps;
        m->causal = 1;
    }
    if (!(m->norm_eps > 0) || !isfinite(m->norm_eps))
        return ak_fail(err, AK_ECONFIG, "config.json: norm epsilon %g must be finite and positive",
                       (double)m->norm_eps);
    if (m->hidden_size % m->n_heads && m->family != AK_FAMILY_GEMMA3)
        return ak_fail(err, AK_ECONFIG, "config.json: hidden size %d is not a multiple of %d heads",
                       m->hidden_size, m->n_heads);
    if (m->n_heads % m->n_kv_heads)
        return ak_fail(err, AK_ECONFIG, "config.json: %d heads are not a multiple of %d key/value heads",
                       m->n_heads, m->n_kv_heads);
    m->head_dim = m->hidden_size / m->n_heads;
    if (m->family == AK_FAMILY_LLAMA || m->family == AK_FAMILY_GEMMA3) {
        if ((rc = cfg_int(cfg, "head_dim", m->family == AK_FAMILY_GEMMA3 ? 256 : m->head_dim, 1,
                          1 << 14, &m->head_dim, err)))
            return rc;
        if (m->head_dim % 2)
            return ak_fail(err, AK_ECONFIG, "config.json: RoPE needs an even head_dim, not %d", m->head_dim);
        if ((rc = parse_rope(m, cfg, err)))
            return rc;
    }
    if (!m->attn_scale)
        m->attn_scale = 1.0f / sqrtf((float)m->head_dim);
    return 0;
}

/* Sliding windows per layer: layer_types when the config lists them
 * (transformers >= 4.54 writes it), else mistral's window on every layer,
 * qwen2's on layers >= max_window_layers when use_sliding_window. */
static int parse_windows(ak_model *m, json_t *cfg, ak_err *err)
{
    if (m->family != AK_FAMILY_LLAMA && m->family != AK_FAMILY_GEMMA3)
        return 0;
    int window = 0, rc;
    json_t *sw = json_object_get(cfg, "sliding_window");
    if (sw && !json_is_null(sw) && (rc = cfg_int(cfg, "sliding_window", 0, 0, INT_MAX, &window, err)))
        return rc;
    json_t *types = json_object_get(cfg, "layer_types");
    ak_window_rule rule = ak_arch_find(m->arch, AK_ARCH_HF)->windows;
    if (rule == AK_WINDOWS_NONE)
        window = 0;
    if (json_is_array(types)) {
        if (json_array_size(types) != (size_t)m->n_layers)
            return ak_fail(err, AK_ECONFIG, "config.json: layer_types lists %zu layers, not %d",
                           json_array_size(types), m->n_layers);
        for (int l = 0; l < m->n_layers; l++) {
            const char *t = json_string_value(json_array_get(types, (size_t)l));
            if (t && !strcmp(t, "sliding_attention")) {
                if (!window)
                    return ak_fail(err, AK_ECONFIG, "config.json: layer %d slides but sliding_window is not set", l);
                m->layers[l].window = window;
            } else if (!t || strcmp(t, "full_attention")) {
                return ak_fail(err, AK_ECONFIG, "config.json: unsupported layer type \"%s\"", t ? t : "?");
            }
        }
        return 0;
    }
    if (rule == AK_WINDOWS_PATTERN) {
        /* Before layer_types: every sliding_window_pattern-th layer is global. */
        int pattern;
        if ((rc = cfg_int(cfg, "sliding_window_pattern", 6, 1, INT_MAX, &pattern, err)) ||
            (!json_object_get(cfg, "sliding_window_pattern") &&
             (rc = cfg_int(cfg, "_sliding_window_pattern", 6, 1, INT_MAX, &pattern, err))))
            return rc;
        for (int l = 0; l < m->n_layers; l++)
            m->layers[l].window = (l + 1) % pattern ? window : 0;
        return 0;
    }
    int first = 0;
    if (rule == AK_WINDOWS_FROM_LAYER) {
        if (!cfg_bool(cfg, "use_sliding_window", 0))
            window = 0;
        if ((rc = cfg_int(cfg, "max_window_layers", 28, 0, INT_MAX, &first, err)))
            return rc;
    }
    for (int l = first; l < m->n_layers; l++)
        m->layers[l].window = window;
    return 0;
}

/* Each layer's RoPE frequencies: Gemma 3's sliding layers have their own. */
static void set_layer_rope(ak_model *m)
{
    for (int l = 0; l < m->n_layers; l++)
        m->layers[l].inv_freq = m->inv_freq_local && m->layers[l].window ? m->inv_freq_local
                                                                         : m->inv_freq;
}

/* ---- weights -------------------------------------------------------------- */

/* n floats the model owns (ak_model_free frees them), or NULL with err set;
 * what names them in the message. */
static float *owned_floats(ak_model *m, size_t n, const char *what, ak_err *err)
{
    float **owned = realloc(m->owned, (m->nowned + 1) * sizeof *owned);
    if (!owned) {
        ak_fail(err, AK_ENOMEM, "out of memory");
        return NULL;
    }
    m->owned = owned;
    float *buf = malloc(n ? n * sizeof *buf : 1);
    if (!buf) {
        ak_fail(err, AK_ENOMEM, "out of memory converting %s", what);
        return NULL;
    }
    m->owned[m->nowned++] = buf;
    return buf;
}

/* The f32 data of a tensor whose shape must be exactly dims[0..ndim). */
static int bind(ak_model *m, const char *name, int ndim, const int64_t *dims, int optional,
                const float **out, ak_err *err)
{
    *out = NULL;
    const ak_st_tensor *t = ak_st_find(&m->st, name);
    if (!t) {
        if (optional)
            return 0;
        return ak_fail(err, AK_EDATA, "model weights: tensor %s is missing", name);
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == dims[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)dims[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return ak_fail(err, AK_EDATA, "model weights: tensor %s has shape [%s], the config needs [%s]",
                       name, got, want);
    }
    size_t n = t->nbytes / (t->dtype == AK_F32 ? 4 : 2);
    if (t->dtype == AK_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        const uint16_t probe = 1;
        if (*(const uint8_t *)&probe == 1) {   /* little-endian host: use in place */
            *out = t->data;
            return 0;
        }
    }
    if (t->dtype != AK_F32 && t->dtype != AK_F16 && t->dtype != AK_BF16)
        return ak_fail(err, AK_ECONFIG, "model weights: tensor %s: dtype not f32, f16 or bf16", name);
    float *buf = owned_floats(m, n, name, err);
    if (!buf)
        return err->code;
    int rc = ak_st_to_f32(t, buf, n, err);
    *out = buf;
    return rc;
}

static int bind1(ak_model *m, const char *name, int64_t d0, int optional, const float **out, ak_err *err)
{
    int64_t d[1] = {d0};
    return bind(m, name, 1, d, optional, out, err);
}

static int bind2(ak_model *m, const char *name, int64_t d0, int64_t d1, int optional,
                 const float **out, ak_err *err)
{
    int64_t d[2] = {d0, d1};
    return bind(m, name, 2, d, optional, out, err);
}

/* An nn.Linear named prefix.weight [out, in] (+ prefix.bias [out]). */
static int bind_linear(ak_model *m, const char *prefix, int in, int out, int bias, ak_linear *l,
                       ak_err *err)
{
    char name[512];
    l->in = in;
    l->out = out;
    l->ldw = in;
    l->in_out = 0;
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = bind2(m, name, out, in, 0, &l->w, err);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return bias ? bind1(m, name, out, bias == 2, &l->b, err) : 0;
}

static int bind_bert(ak_model *m, ak_err *err)
{
    const char *pre = ak_st_find(&m->st, "bert.embeddings.word_embeddings.weight") ? "bert." : "";
    int D = m->hidden_size, I = m->intermediate_size, rc;
    char n[512];
#define NAME(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
    if ((rc = bind2(m, NAME("%sembeddings.word_embeddings.weight", pre), m->vocab_size, D, 0, &m->tok_emb, err)) ||
        (rc = bind2(m, NAME("%sembeddings.position_embeddings.weight", pre), m->max_positions, D, 0, &m->pos_emb, err)) ||
        (m->type_vocab_size &&
         (rc = bind2(m, NAME("%sembeddings.token_type_embeddings.weight", pre), m->type_vocab_size, D, 0, &m->type_emb, err))) ||
        (rc = bind1(m, NAME("%sembeddings.LayerNorm.weight", pre), D, 0, &m->emb_norm_w, err)) ||
        (rc = bind1(m, NAME("%sembeddings.LayerNorm.bias", pre), D, 0, &m->emb_norm_b, err)))
        return rc;
    for (int l = 0; l < m->n_layers; l++) {
        ak_layer *L = &m->layers[l];
        char p[256];
        snprintf(p, sizeof p, "%sencoder.layer.%d.", pre, l);
        if ((rc = bind_linear(m, NAME("%sattention.self.query", p), D, D, 1, &L->q, err)) ||
            (rc = bind_linear(m, NAME("%sattention.self.key", p), D, D, 1, &L->k, err)) ||
            (rc = bind_linear(m, NAME("%sattention.self.value", p), D, D, 1, &L->v, err)) ||
            (rc = bind_linear(m, NAME("%sattention.output.dense", p), D, D, 1, &L->o, err)) ||
            (rc = bind1(m, NAME("%sattention.output.LayerNorm.weight", p), D, 0, &L->norm1_w, err)) ||
            (rc = bind1(m, NAME("%sattention.output.LayerNorm.bias", p), D, 0, &L->norm1_b, err)) ||
            (rc = bind_linear(m, NAME("%sintermediate.dense", p), D, I, 1, &L->up, err)) ||
            (rc = bind_linear(m, NAME("%soutput.dense", p), I, D, 1, &L->down, err)) ||
            (rc = bind1(m, NAME("%soutput.LayerNorm.weight", p), D, 0, &L->norm2_w, err)) ||
            (rc = bind1(m, NAME("%soutput.LayerNorm.bias", p), D, 0, &L->norm2_b, err)))
            return rc;
    }
    return 0;
}

/* GPT-2's Conv1D stores weights [in, out]. */
static int bind_conv1d(ak_model *m, const char *prefix, int in, int out, ak_linear *l, ak_err *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s.weight", prefix);
    l->in = in;
    l->out = out;
    l->ldw = out;
    l->in_out = 1;
    int rc = bind2(m, name, in, out, 0, &l->w, err);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return bind1(m, name, out, 0, &l->b, err);
}

static int bind_gpt2(ak_model *m, ak_err *err)
{
    const char *pre = ak_st_find(&m->st, "transformer.wte.weight") ? "transformer." : "";
    int D = m->hidden_size, I = m->intermediate_size, rc;
    char n[512];
    if ((rc = bind2(m, NAME("%swte.weight", pre), m->vocab_size, D, 0, &m->tok_emb, err)) ||
        (rc = bind2(m, NAME("%swpe.weight", pre), m->max_positions, D, 0, &m->pos_emb, err)) ||
        (rc = bind1(m, NAME("%sln_f.weight", pre), D, 0, &m->final_norm_w, err)) ||
        (rc = bind1(m, NAME("%sln_f.bias", pre), D, 0, &m->final_norm_b, err)))
        return rc;
    for (int l = 0; l < m->n_layers; l++) {
        ak_layer *L = &m->layers[l];
        char p[256];
        snprintf(p, sizeof p, "%sh.%d.", pre, l);
        ak_linear qkv = {0};   /* copied whole into q, k, v: no field left unset */
        if ((rc = bind_conv1d(m, NAME("%sattn.c_attn", p), D, 3 * D, &qkv, err)) ||
            (rc = bind_conv1d(m, NAME("%sattn.c_proj", p), D, D, &L->o, err)) ||
            (rc = bind_conv1d(m, NAME("%smlp.c_fc", p), D, I, &L->up, err)) ||
            (rc = bind_conv1d(m, NAME("%smlp.c_proj", p), I, D, &L->down, err)) ||
            (rc = bind1(m, NAME("%sln_1.weight", p), D, 0, &L->norm1_w, err)) ||
            (rc = bind1(m, NAME("%sln_1.bias", p), D, 0, &L->norm1_b, err)) ||
            (rc = bind1(m, NAME("%sln_2.weight", p), D, 0, &L->norm2_w, err)) ||
            (rc = bind1(m, NAME("%sln_2.bias", p), D, 0, &L->norm2_b, err)))
            return rc;
        /* The fused [D, 3D] projection, sliced by columns into q | k | v. */
        for (int i = 0; i < 3; i++) {
            ak_linear *dst = i == 0 ? &L->q : i == 1 ? &L->k : &L->v;
            *dst = qkv;
            dst->out = D;
            dst->w = qkv.w + (size_t)i * D;
            dst->b = qkv.b + (size_t)i * D;
        }
    }
    m->lm_head = (ak_linear){.w = m->tok_emb, .in = D, .out = m->vocab_size, .ldw = D};
    return 0;
}

static int bind_llama(ak_model *m, json_t *cfg, ak_err *err)
{
    int D = m->hidden_size, I = m->intermediate_size, rc;
    int qd = m->n_heads * m->head_dim, kvd = m->n_kv_heads * m->head_dim;
    char n[512];
    if ((rc = bind2(m, "model.embed_tokens.weight", m->vocab_size, D, 0, &m->tok_emb, err)) ||
        (rc = bind1(m, "model.norm.weight", D, 0, &m->final_norm_w, err)))
        return rc;
    for (int l = 0; l < m->n_layers; l++) {
        ak_layer *L = &m->layers[l];
        char p[256];
        snprintf(p, sizeof p, "model.layers.%d.", l);
        /* Biases are bound when present (qwen2 q/k/v, attention_bias, mlp_bias). */
        if ((rc = bind_linear(m, NAME("%sself_attn.q_proj", p), D, qd, 2, &L->q, err)) ||
            (rc = bind_linear(m, NAME("%sself_attn.k_proj", p), D, kvd, 2, &L->k, err)) ||
            (rc = bind_linear(m, NAME("%sself_attn.v_proj", p), D, kvd, 2, &L->v, err)) ||
            (rc = bind_linear(m, NAME("%sself_attn.o_proj", p), qd, D, 2, &L->o, err)) ||
            (rc = bind_linear(m, NAME("%smlp.gate_proj", p), D, I, 2, &L->gate, err)) ||
            (rc = bind_linear(m, NAME("%smlp.up_proj", p), D, I, 2, &L->up, err)) ||
            (rc = bind_linear(m, NAME("%smlp.down_proj", p), I, D, 2, &L->down, err)) ||
            (rc = bind1(m, NAME("%sinput_layernorm.weight", p), D, 0, &L->norm1_w, err)) ||
            (rc = bind1(m, NAME("%spost_attention_layernorm.weight", p), D, 0, &L->norm2_w, err)))
            return rc;
    }
    if (ak_st_find(&m->st, "lm_head.weight")) {
        if ((rc = bind_linear(m, "lm_head", D, m->vocab_size, 0, &m->lm_head, err)))
            return rc;
    } else if (cfg_bool(cfg, "tie_word_embeddings", 0)) {
        m->lm_head = (ak_linear){.w = m->tok_emb, .in = D, .out = m->vocab_size, .ldw = D};
    }
    return 0;
#undef NAME
}

/* A Gemma norm weight, held as (1 + w) (Gemma3RMSNorm multiplies by 1 + w
 * in f32; GGUF files store 1 + w already). */
static int bind_norm1p(ak_model *m, const char *name, int64_t d0, const float **out, ak_err *err)
{
    const float *w;
    int rc = bind1(m, name, d0, 0, &w, err);
    if (rc)
        return rc;
    float *buf = owned_floats(m, (size_t)d0, name, err);
    if (!buf)
        return err->code;
    for (int64_t i = 0; i < d0; i++)
        buf[i] = 1.0f + w[i];
    *out = buf;
    return 0;
}

static int bind_gemma3(ak_model *m, ak_err *err)
{
    int D = m->hidden_size, I = m->intermediate_size, Dh = m->head_dim, rc;
    int qd = m->n_heads * Dh, kvd = m->n_kv_heads * Dh;
    char n[512];
#define NAME(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
    /* Gemma3ForCausalLM, or the text model of Gemma3ForConditionalGeneration
     * as transformers 4 and 5 save it */
    const char *base = "model.", *head = "lm_head";
    if (!ak_st_find(&m->st, "model.embed_tokens.weight")) {
        if (ak_st_find(&m->st, "language_model.model.embed_tokens.weight"))
            base = "language_model.model.", head = "language_model.lm_head";
        else if (ak_st_find(&m->st, "model.language_model.embed_tokens.weight"))
            base = "model.language_model.";
    }
    if ((rc = bind2(m, NAME("%sembed_tokens.weight", base), m->vocab_size, D, 0, &m->tok_emb, err)) ||
        (rc = bind_norm1p(m, NAME("%snorm.weight", base), D, &m->final_norm_w, err)))
        return rc;
    for (int l = 0; l < m->n_layers; l++) {
        ak_layer *L = &m->layers[l];
        char p[256];
        snprintf(p, sizeof p, "%slayers.%d.", base, l);
        if ((rc = bind_linear(m, NAME("%sself_attn.q_proj", p), D, qd, 2, &L->q, err)) ||
            (rc = bind_linear(m, NAME("%sself_attn.k_proj", p), D, kvd, 2, &L->k, err)) ||
            (rc = bind_linear(m, NAME("%sself_attn.v_proj", p), D, kvd, 2, &L->v, err)) ||
            (rc = bind_linear(m, NAME("%sself_attn.o_proj", p), qd, D, 2, &L->o, err)) ||
            (rc = bind_norm1p(m, NAME("%sself_attn.q_norm.weight", p), Dh, &L->q_norm_w, err)) ||
            (rc = bind_norm1p(m, NAME("%sself_attn.k_norm.weight", p), Dh, &L->k_norm_w, err)) ||
            (rc = bind_linear(m, NAME("%smlp.gate_proj", p), D, I, 0, &L->gate, err)) ||
            (rc = bind_linear(m, NAME("%smlp.up_proj", p), D, I, 0, &L->up, err)) ||
            (rc = bind_linear(m, NAME("%smlp.down_proj", p), I, D, 0, &L->down, err)) ||
            (rc = bind_norm1p(m, NAME("%sinput_layernorm.weight", p), D, &L->norm1_w, err)) ||
            (rc = bind_norm1p(m, NAME("%spost_attention_layernorm.weight", p), D, &L->post_attn_norm_w, err)) ||
            (rc = bind_norm1p(m, NAME("%spre_feedforward_layernorm.weight", p), D, &L->norm2_w, err)) ||
            (rc = bind_norm1p(m, NAME("%spost_feedforward_layernorm.weight", p), D, &L->post_mlp_norm_w, err)))
            return rc;
    }
    m->emb_scale = sqrtf((float)D);
    /* Gemma3ForCausalLM ties its head to the embeddings. */
    if (ak_st_find(&m->st, NAME("%s.weight", head)))
        return bind_linear(m, head, D, m->vocab_size, 0, &m->lm_head, err);
    m->lm_head = (ak_linear){.w = m->tok_emb, .in = D, .out = m->vocab_size, .ldw = D};
    return 0;
#undef NAME
}

void ak_model_free(ak_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nowned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    free(m->inv_freq_local);
    ak_workspace_free(m->ws);
    if (m->gguf) {
        ak_gguf_close(m->gguf);
        free(m->gguf);
    }
    ak_st_close(&m->st);
    free(m);
}

/* ---- GGUF models ---------------------------------------------------------- */

/* {arch}.KEY as an integer in [min, max]; def when absent (def < min: required). */
static int gg_int(ak_model *m, const char *key, int64_t def, int64_t min, int64_t max, int *out,
                  ak_err *err)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", m->arch, key);
    int64_t v;
    int rc = ak_gguf_get_i64(m->gguf, k, &v, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if (def < min)
            return ak_fail(err, AK_ECONFIG, "GGUF metadata: missing %s", k);
        v = def;
    }
    if (v < min || v > max)
        return ak_fail(err, AK_ECONFIG, "GGUF metadata: %s = %lld is outside [%lld, %lld]", k,
                       (long long)v, (long long)min, (long long)max);
    *out = (int)v;
    return 0;
}

static int gg_num(ak_model *m, const char *key, double def, double *out, ak_err *err)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", m->arch, key);
    int rc = ak_gguf_get_f64(m->gguf, k, out, err);
    if (rc == 1)
        *out = def;
    if (rc < 0)
        return rc;
    if (!isfinite(*out))
        return ak_fail(err, AK_ECONFIG, "GGUF metadata: %s is not finite", k);
    return 0;
}

static int gg_tensor_type_ok(const ak_gguf_tensor *t, ak_err *err)
{
    if (ak_ggml_supported(t->type))
        return 0;
    const char *tn = ak_ggml_type_name(t->type);
    if (tn)
        return ak_fail(err, AK_ECONFIG, "tensor %s has type %s, which attnkit cannot compute with",
                       t->name, tn);
    return ak_fail(err, AK_ECONFIG, "tensor %s has unknown ggml type %d", t->name, t->type);
}

static const ak_gguf_tensor *gg_find(ak_model *m, const char *name, int ndim, int64_t ne0,
                                     int64_t ne1, int optional, ak_err *err, int *rc)
{
    *rc = 0;
    const ak_gguf_tensor *t = ak_gguf_tensor_find(m->gguf, name);
    if (!t) {
        if (!optional)
            *rc = ak_fail(err, AK_EDATA, "GGUF: tensor %s is missing", name);
        return NULL;
    }
    int64_t n1 = 1;
    for (int i = 1; i < t->ndim; i++)
        n1 *= t->ne[i];
    if (ndim == 1 ? t->ndim != 1 || t->ne[0] != ne0 : t->ne[0] != ne0 || n1 != ne1) {
        *rc = ak_fail(err, AK_EDATA, "GGUF: tensor %s has shape [%lld, %lld], the metadata needs [%lld, %lld]",
                      name, (long long)t->ne[0], (long long)(t->ndim > 1 ? n1 : 1), (long long)ne0,
                      (long long)(ndim > 1 ? ne1 : 1));
        return NULL;
    }
    if ((*rc = gg_tensor_type_ok(t, err)))
        return NULL;
    return t;
}

/* A vector (norm weight, bias) as f32: in place when the file stores f32,
 * else converted once. */
static int gg_vec(ak_model *m, const char *name, int64_t n, int optional, const float **out,
                  ak_err *err)
{
    int rc;
    *out = NULL;
    const ak_gguf_tensor *t = gg_find(m, name, 1, n, 1, optional, err, &rc);
    if (!t)
        return rc;
    if (t->type == AK_GGML_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = t->data;
        return 0;
    }
    size_t be, bb;
    if (ak_ggml_block(t->type, &be, &bb) || n % (int64_t)be)
        return ak_fail(err, AK_EDATA, "GGUF: tensor %s: %lld elements are not whole %s blocks", name,
                       (long long)n, ak_ggml_type_name(t->type));
    float *buf = owned_floats(m, (size_t)n, name, err);
    if (!buf)
        return err->code;
    ak_dequant_row(t->type, t->data, buf, n);
    *out = buf;
    return 0;
}

/* A matrix of out rows of in elements ([in, out] in ggml's order), used
 * as the file stores it. */
static int gg_linear(ak_model *m, const char *name, int in, int out, int optional, ak_linear *l,
                     ak_err *err)
{
    int rc;
    memset(l, 0, sizeof *l);
    const ak_gguf_tensor *t = gg_find(m, name, 2, in, out, optional, err, &rc);
    if (!t)
        return rc;
    size_t be, bb;
    if (ak_ggml_block(t->type, &be, &bb) || in % (int64_t)be)
        return ak_fail(err, AK_EDATA, "GGUF: tensor %s: rows of %d elements are not whole %s blocks",
                       name, in, ak_ggml_type_name(t->type));
    l->in = l->ldw = in;
    l->out = out;
    l->type = t->type;
    if (t->type == AK_GGML_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        l->w = t->data;
    } else {
        l->wq = t->data;
        l->row_bytes = ak_ggml_row_bytes(t->type, in);
    }
    return 0;
}

/* Rows r0 .. r0 + n of a matrix: q, k or v of a fused projection. */
static ak_linear gg_rows(const ak_linear *l, int r0, int n)
{
    ak_linear s = *l;
    s.out = n;
    if (s.w)
        s.w += (size_t)r0 * l->ldw;
    else
        s.wq = (const char *)l->wq + (size_t)r0 * l->row_bytes;
    if (s.b)
        s.b += r0;
    return s;
}

static int gg_bias(ak_model *m, const char *prefix, ak_linear *l, ak_err *err)
{
    char n[256];
    snprintf(n, sizeof n, "%s.bias", prefix);
    return gg_vec(m, n, l->out, 1, &l->b, err);
}

/* RoPE from {arch}.rope.*: freq_base, scaling (none, linear), and llama 3's
 * per-frequency divisors in the rope_freqs tensor, as llama.cpp applies them. */
static int gg_rope(ak_model *m, ak_err *err)
{
    double theta, factor;
    int rc, dims;
    if ((rc = gg_num(m, "rope.freq_base", ak_arch_find(m->arch, AK_ARCH_GGUF)->rope_theta, &theta, err)) ||
        (rc = gg_num(m, "rope.scaling.factor", 1.0, &factor, err)) ||
        (rc = gg_int(m, "rope.dimension_count", m->head_dim, 1, 1 << 14, &dims, err)))
        return rc;
    if (dims != m->head_dim)
        return ak_fail(err, AK_ECONFIG, "GGUF: RoPE over %d of %d head dimensions is not supported",
                       dims, m->head_dim);
    char k[160];
    const char *type = "none";
    size_t tl = 4;
    snprintf(k, sizeof k, "%s.rope.scaling.type", m->arch);
    if ((rc = ak_gguf_get_str(m->gguf, k, &type, &tl, err)) < 0)
        return rc;
    if (!(tl == 4 && !memcmp(type, "none", 4)) && !(tl == 6 && !memcmp(type, "linear", 6)))
        return ak_fail(err, AK_ECONFIG, "GGUF: RoPE scaling \"%.*s\" is not supported", (int)tl, type);
    if (tl == 4)
        factor = 1.0;
    if (!(theta > 0) || !(factor > 0))
        return ak_fail(err, AK_ECONFIG, "GGUF: rope.freq_base and rope.scaling.factor must be positive");
    int half = m->head_dim / 2;
    for (int g = 0; g < (m->family == AK_FAMILY_GEMMA3 ? 2 : 1); g++) {
        float *f = malloc((size_t)(half ? half : 1) * sizeof *f);
        if (!f)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        /* Gemma 3's local layers: base 10000, unscaled (llama.cpp's value). */
        double base = g ? 10000.0 : theta, fac = g ? 1.0 : factor;
        for (int i = 0; i < half; i++)
            f[i] = (float)(1.0f / powf((float)base, (float)(2 * i) / (float)m->head_dim) / fac);
        if (g)
            m->inv_freq_local = f;
        else
            m->inv_freq = f;
    }
    m->rope = factor != 1.0 ? AK_ROPE_LINEAR : AK_ROPE_DEFAULT;
    const float *rf;
    if ((rc = gg_vec(m, "rope_freqs.weight", half, 1, &rf, err)))
        return rc;
    if (rf) {
        for (int i = 0; i < half; i++) {
            if (!(rf[i] > 0))
                return ak_fail(err, AK_EDATA, "GGUF: rope_freqs.weight holds a non-positive factor");
            m->inv_freq[i] /= rf[i];
        }
        m->rope = AK_ROPE_LLAMA3;
    }
    return 0;
}

/* Opens the GGUF file into m->gguf and finds its architecture. */
static int gg_open_arch(ak_model *m, const char *file, const ak_arch **ap, ak_err *err)
{
    m->gguf = calloc(1, sizeof *m->gguf);
    if (!m->gguf)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int rc = ak_gguf_open(m->gguf, file, err);
    if (rc) {
        free(m->gguf);
        m->gguf = NULL;
        return rc;
    }
    m->config_crc32 = ak_gguf_arch_crc32(m->gguf);
    const char *arch;
    size_t al;
    if ((rc = ak_gguf_get_str(m->gguf, "general.architecture", &arch, &al, err)) < 0)
        return rc;
    if (rc == 1)
        return ak_fail(err, AK_ECONFIG, "GGUF metadata: no general.architecture");
    if (memchr(arch, 0, al))
        return ak_fail(err, AK_EDATA, "GGUF metadata: general.architecture holds a NUL byte");
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(al < 63 ? al : 63), arch);
    const ak_arch *a = al < sizeof m->arch ? ak_arch_find(m->arch, AK_ARCH_GGUF) : NULL;
    if (!a) {
        char names[160];
        ak_arch_names(AK_ARCH_GGUF, names, sizeof names);
        return ak_fail(err, AK_ECONFIG, "unsupported GGUF architecture \"%.*s\" (supported: %s)",
                       (int)(al < 200 ? al : 200), arch, names);
    }
    m->family = a->family;
    *ap = a;
    return 0;
}

/* The hyperparameters from the metadata, checked; the layers allocated,
 * with their RoPE and sliding windows. */
static int gg_hparams(ak_model *m, const ak_arch *a, ak_err *err)
{
    int rc, gpt2 = m->family == AK_FAMILY_GPT2, gemma = m->family == AK_FAMILY_GEMMA3;
    const int BIG = 1 << 24;
    int experts;
    if ((rc = gg_int(m, "expert_count", 0, 0, INT_MAX, &experts, err)))
        return rc;
    if (experts > 0)
        return ak_fail(err, AK_ECONFIG, "GGUF: mixture-of-experts %s models (%d experts) are not supported",
                       m->arch, experts);
    double eps;
    if ((rc = gg_int(m, "embedding_length", -1, 1, 1 << 16, &m->hidden_size, err)) ||
        (rc = gg_int(m, "block_count", -1, 1, 1024, &m->n_layers, err)) ||
        (rc = gg_int(m, "feed_forward_length", -1, 1, 1 << 20, &m->intermediate_size, err)) ||
        (rc = gg_int(m, "attention.head_count", -1, 1, 4096, &m->n_heads, err)) ||
        (rc = gg_int(m, "attention.head_count_kv", m->n_heads, 1, 4096, &m->n_kv_heads, err)) ||
        (rc = gg_int(m, "context_length", gpt2 ? -1 : 1 << 30, 1, INT_MAX, &m->max_positions, err)) ||
        (rc = gg_num(m, gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon",
                     gpt2 ? 1e-5 : 1e-6, &eps, err)))
        return rc;
    if (!(eps > 0) || !isfinite(eps))
        return ak_fail(err, AK_ECONFIG, "GGUF: norm epsilon %g must be finite and positive", eps);
    /* llama.cpp refuses a file whose layers' tensors go past block_count */
    for (size_t i = 0; i < m->gguf->ntensors; i++) {
        const char *tn = m->gguf->tensors[i].name;
        if (strncmp(tn, "blk.", 4))
            continue;
        char *end;
        long b = strtol(tn + 4, &end, 10);
        if (end != tn + 4 && *end == '.' && (b < 0 || b >= m->n_layers))
            return ak_fail(err, AK_EDATA, "GGUF: tensor %s belongs to layer %ld, but block_count "
                           "is %d", tn, b, m->n_layers);
    }
    int D = m->hidden_size, H = m->n_heads, Hkv = m->n_kv_heads, vl;
    if ((rc = gg_int(m, "attention.key_length", D / H ? D / H : 1, 1, 1 << 14, &m->head_dim, err)) ||
        (rc = gg_int(m, "attention.value_length", m->head_dim, 1, 1 << 14, &vl, err)))
        return rc;
    if (vl != m->head_dim)
        return ak_fail(err, AK_ECONFIG, "GGUF: key length %d and value length %d differ", m->head_dim, vl);
    if (H % Hkv)
        return ak_fail(err, AK_ECONFIG, "GGUF: %d heads are not a multiple of %d key/value heads", H, Hkv);
    if (!gemma && m->head_dim * H != D && gpt2)
        return ak_fail(err, AK_ECONFIG, "GGUF: %d heads of %d do not make hidden size %d", H, m->head_dim, D);
    if (!gpt2 && m->head_dim % 2)
        return ak_fail(err, AK_ECONFIG, "GGUF: RoPE needs an even head size, not %d", m->head_dim);
    m->norm_eps = (float)eps;
    m->causal = 1;
    m->act = a->act;
    m->attn_scale = 1.0f / sqrtf((float)m->head_dim);
    /* llama.cpp's convert script orders llama q/k rows for its RoPE. */
    m->qk_interleaved = a->qk_interleaved;
    const ak_gguf_tensor *te = ak_gguf_tensor_find(m->gguf, "token_embd.weight");
    if (!te || te->ndim != 2)
        return ak_fail(err, AK_EDATA, "GGUF: tensor token_embd.weight is missing or not a matrix");
    if (te->ne[1] < 1 || te->ne[1] > BIG)
        return ak_fail(err, AK_EDATA, "GGUF: token_embd.weight has %lld rows", (long long)te->ne[1]);
    m->vocab_size = (int)te->ne[1];
    if (gemma) {
        double cap;
        if ((rc = gg_num(m, "attn_logit_softcapping", 0, &cap, err)))
            return rc;
        if (cap != 0)
            return ak_fail(err, AK_ECONFIG, "GGUF: attention logit softcapping is not supported");
        if ((rc = gg_num(m, "final_logit_softcapping", 0, &cap, err)))
            return rc;
        m->logit_softcap = cap > 0 ? (float)cap : 0;
        m->emb_scale = sqrtf((float)D);
        /* llama.cpp: the 27B model (62 layers) scales by hidden / heads */
        if (m->n_layers == 62)
            m->attn_scale = 1.0f / sqrtf((float)D / H);
    }
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (!gpt2 && (rc = gg_rope(m, err)))
        return rc;
    if (gemma) {
        int window;
        if ((rc = gg_int(m, "attention.sliding_window", 0, 0, INT_MAX, &window, err)))
            return rc;
        /* every sixth layer global, the others sliding (llama.cpp's pattern) */
        for (int l = 0; l < m->n_layers; l++)
            m->layers[l].window = (l + 1) % 6 ? window : 0;
    }
    set_layer_rope(m);
    return 0;
}

/* Layer l's tensors, bound (views into the mapped file). */
static int gg_bind_layer(ak_model *m, int l, ak_err *err)
{
    int rc, gpt2 = m->family == AK_FAMILY_GPT2, gemma = m->family == AK_FAMILY_GEMMA3;
    int D = m->hidden_size, F = m->intermediate_size, H = m->n_heads, Hkv = m->n_kv_heads;
    int qd = H * m->head_dim, kvd = Hkv * m->head_dim;
    char n[128], p[64]; /* "blk.L." and the longest tensor name fit */
#define NAME(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
    ak_layer *L = &m->layers[l];
    snprintf(p, sizeof p, "blk.%d.", l);
    if ((rc = gg_vec(m, NAME("%sattn_norm.weight", p), D, 0, &L->norm1_w, err)) ||
        (rc = gg_vec(m, NAME("%sffn_norm.weight", p), D, 0, &L->norm2_w, err)) ||
        (rc = gg_linear(m, NAME("%sattn_output.weight", p), qd, D, 0, &L->o, err)) ||
        (rc = gg_linear(m, NAME("%sffn_up.weight", p), D, F, 0, &L->up, err)) ||
        (rc = gg_linear(m, NAME("%sffn_down.weight", p), F, D, 0, &L->down, err)))
        return rc;
    if (gpt2) {
        ak_linear qkv;
        if ((rc = gg_vec(m, NAME("%sattn_norm.bias", p), D, 0, &L->norm1_b, err)) ||
            (rc = gg_vec(m, NAME("%sffn_norm.bias", p), D, 0, &L->norm2_b, err)) ||
            (rc = gg_linear(m, NAME("%sattn_qkv.weight", p), D, 3 * D, 0, &qkv, err)) ||
            (rc = gg_bias(m, NAME("%sattn_qkv", p), &qkv, err)) ||
            (rc = gg_bias(m, NAME("%sattn_output", p), &L->o, err)) ||
            (rc = gg_bias(m, NAME("%sffn_up", p), &L->up, err)) ||
            (rc = gg_bias(m, NAME("%sffn_down", p), &L->down, err)))
            return rc;
        L->q = gg_rows(&qkv, 0, D);
        L->k = gg_rows(&qkv, D, D);
        L->v = gg_rows(&qkv, 2 * D, D);
        return 0;
    }
    if ((rc = gg_linear(m, NAME("%sattn_q.weight", p), D, qd, 0, &L->q, err)) ||
        (rc = gg_linear(m, NAME("%sattn_k.weight", p), D, kvd, 0, &L->k, err)) ||
        (rc = gg_linear(m, NAME("%sattn_v.weight", p), D, kvd, 0, &L->v, err)) ||
        (rc = gg_linear(m, NAME("%sffn_gate.weight", p), D, F, 0, &L->gate, err)) ||
        (rc = gg_bias(m, NAME("%sattn_q", p), &L->q, err)) ||
        (rc = gg_bias(m, NAME("%sattn_k", p), &L->k, err)) ||
        (rc = gg_bias(m, NAME("%sattn_v", p), &L->v, err)))
        return rc;
    if (gemma &&
        ((rc = gg_vec(m, NAME("%sattn_q_norm.weight", p), m->head_dim, 0, &L->q_norm_w, err)) ||
         (rc = gg_vec(m, NAME("%sattn_k_norm.weight", p), m->head_dim, 0, &L->k_norm_w, err)) ||
         (rc = gg_vec(m, NAME("%spost_attention_norm.weight", p), D, 0, &L->post_attn_norm_w, err)) ||
         (rc = gg_vec(m, NAME("%spost_ffw_norm.weight", p), D, 0, &L->post_mlp_norm_w, err))))
        return rc;
#undef NAME
    return 0;
}

/* The model's tensors: embeddings, final norm, every layer's, the head. */
static int gg_bind_tensors(ak_model *m, ak_err *err)
{
    int rc, gpt2 = m->family == AK_FAMILY_GPT2, D = m->hidden_size;
    /* the embedding table: f32 in place, else rows dequantized on demand */
    ak_linear emb;
    if ((rc = gg_linear(m, "token_embd.weight", D, m->vocab_size, 0, &emb, err)))
        return rc;
    m->tok_emb = emb.w;
    m->tok_q = emb;
    if (gpt2) {
        if ((rc = gg_vec(m, "output_norm.weight", D, 0, &m->final_norm_w, err)) ||
            (rc = gg_vec(m, "output_norm.bias", D, 0, &m->final_norm_b, err)))
            return rc;
        ak_linear pos;
        if ((rc = gg_linear(m, "position_embd.weight", D, m->max_positions, 0, &pos, err)))
            return rc;
        if (pos.w) {
            m->pos_emb = pos.w;
        } else {
            /* small: [P, D] converted once */
            float *buf = owned_floats(m, (size_t)m->max_positions * D, "position_embd.weight", err);
            if (!buf)
                return err->code;
            for (int r = 0; r < m->max_positions; r++)
                ak_dequant_row(pos.type, (const char *)pos.wq + (size_t)r * pos.row_bytes,
                               buf + (size_t)r * D, D);
            m->pos_emb = buf;
        }
    } else {
        if ((rc = gg_vec(m, "output_norm.weight", D, 0, &m->final_norm_w, err)))
            return rc;
    }
    for (int l = 0; l < m->n_layers; l++)
        if ((rc = gg_bind_layer(m, l, err)))
            return rc;
    if ((rc = gg_linear(m, "output.weight", D, m->vocab_size, 1, &m->lm_head, err)))
        return rc;
    if (!m->lm_head.in)   /* absent: tied to the embeddings */
        m->lm_head = emb;
    return 0;
}

static int load_gguf(ak_model *m, const char *file, ak_err *err)
{
    const ak_arch *a = NULL;
    int rc;
    if ((rc = gg_open_arch(m, file, &a, err)) || (rc = gg_hparams(m, a, err)) ||
        (rc = gg_bind_tensors(m, err)))
        return rc;
    return 0;
}

/* The name: the directory's base name (formats/tensor-stream.md, section
 * 2), or a GGUF file's general.name (else its base name without ".gguf"). */
static void set_name(ak_model *m, const char *dir, int gguf)
{
    const char *gn;
    size_t gl;
    ak_err e;
    if (gguf && m->gguf && ak_gguf_get_str(m->gguf, "general.name", &gn, &gl, &e) == 0 && gl &&
        !memchr(gn, 0, gl)) {
        snprintf(m->name, sizeof m->name, "%.*s", (int)(gl < 255 ? gl : 255), gn);
        return;
    }
    char *real = realpath(dir, NULL);
    const char *d = real ? real : dir;
    size_t dl = strlen(d);
    while (dl > 1 && d[dl - 1] == '/')
        dl--;
    size_t b = dl;
    while (b > 0 && d[b - 1] != '/')
        b--;
    if (gguf && dl - b > 5 && !strncmp(d + dl - 5, ".gguf", 5))
        dl -= 5;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(dl - b), d + b);
    free(real);
}

int ak_model_load(ak_model **out, const char *dir, ak_err *err)
{
    *out = NULL;
    ak_model *m = calloc(1, sizeof *m);
    if (!m)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    char path[4096];
    char *text = NULL;
    size_t len;
    json_t *cfg = NULL;
    int rc;
    int where = ak_gguf_locate(dir, path, sizeof path);
    if (where < 0) {
        ak_model_free(m);
        return ak_gguf_ambiguous(dir, path, err);
    }
    if (where) {
        set_name(m, path, 1);
        if ((rc = load_gguf(m, path, err))) {
            ak_model_free(m);
            /* the reader's messages name the file already */
            return strncmp(err->msg, path, strlen(path)) ? ak_wrap(err, "model %s", dir) : rc;
        }
        set_name(m, path, 1);  /* now general.name, when the file has one */
        *out = m;
        return 0;
    }
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path) {
        rc = ak_fail(err, AK_EUSAGE, "model directory name too long");
        goto fail;
    }
    if ((rc = ak_read_regular(path, (size_t)16 << 20, &text, &len, err)))
        goto fail;
    json_error_t je;
    cfg = json_loadb(text, len, 0, &je);
    /* The identity streams carry: the same config.json in any directory is
     * the same model (formats/tensor-stream.md, section 2). */
    m->config_crc32 = (uint32_t)crc32(0, (const Bytef *)text, (uInt)len);
    free(text);
    if (!json_is_object(cfg)) {
        rc = ak_fail(err, AK_ECONFIG, "%s: not a JSON object (%s, line %d)", path,
                     cfg ? "wrong type" : je.text, je.line);
        goto fail;
    }
    set_name(m, dir, 0);
    /* Gemma3ForConditionalGeneration: the text model is text_config, its
     * weights under a language-model prefix (bind_gemma3 finds it). */
    json_t *mcfg = cfg, *tc = json_object_get(cfg, "text_config");
    if (cfg_str(cfg, "model_type") && !strcmp(cfg_str(cfg, "model_type"), "gemma3") &&
        json_is_object(tc)) {
        mcfg = tc;
        if (!cfg_str(tc, "model_type"))
            json_object_set_new(tc, "model_type", json_string("gemma3_text"));
    }
    if ((rc = parse_config(m, mcfg, err)))
        goto fail;
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = parse_windows(m, mcfg, err)))
        goto fail;
    set_layer_rope(m);
    if ((rc = ak_st_open_dir(&m->st, dir, err)))
        goto fail;
    switch (m->family) {
    case AK_FAMILY_BERT: rc = bind_bert(m, err); break;
    case AK_FAMILY_GPT2: rc = bind_gpt2(m, err); break;
    case AK_FAMILY_LLAMA: rc = bind_llama(m, cfg, err); break;
    case AK_FAMILY_GEMMA3: rc = bind_gemma3(m, err); break;
    }
    if (rc)
        goto fail;
    json_decref(cfg);
    *out = m;
    return 0;
fail:
    json_decref(cfg);
    ak_model_free(m);
    return ak_wrap(err, "model %s", dir);
}

int ak_model_identity(const ak_model *m, ak_metamap *id, ak_err *err)
{
    if (ak_meta_set_str(id, "name", m->name) || ak_meta_set_str(id, "arch", m->arch) ||
        ak_meta_set_int(id, "vocab_size", m->vocab_size) ||
        ak_meta_set_int(id, "config_crc32", m->config_crc32))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}

int ak_model_check_identity(const ak_model *m, const ak_metamap *id, ak_err *err)
{
    const char *name = ak_meta_str(id, "name"), *arch = ak_meta_str(id, "arch");
    int64_t vocab, crc;
    if (ak_meta_int(id, "vocab_size", &vocab) == 0 && vocab != m->vocab_size)
        return ak_fail(err, AK_EDATA, "stream was made for a vocabulary of %lld tokens, model %s has %d",
                       (long long)vocab, m->name, m->vocab_size);
    if (arch && strcmp(arch, m->arch))
        return ak_fail(err, AK_EDATA, "stream was made for a %s model, model %s is %s", arch,
                       m->name, m->arch);
    /* The name is the directory's, so two copies of one model differ in it;
     * the config's (or GGUF metadata's) checksum tells models apart. */
    if (ak_meta_int(id, "config_crc32", &crc) == 0 && (uint32_t)crc != m->config_crc32)
        return ak_fail(err, AK_EDATA, "stream was made for model %s (another %s), not %s",
                       name ? name : "?", m->gguf ? "GGUF file: its architecture's metadata differs"
                                                  : "config.json", m->name);
    return 0;
}

/* ---- input embeddings ----------------------------------------------------- */

/* LayerNorm over each row: (x - mean) / sqrt(var + eps) * w + b, biased
 * variance, accumulated in double. */
void ak_layernorm(float *y, const float *x, int T, int D, const float *w, const float *b, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * D;
        float *yr = y + (size_t)t * D;
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++)
            mean += xr[i];
        mean /= D;
        for (int i = 0; i < D; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        var /= D;
        double inv = 1.0 / sqrt(var + eps);
        for (int i = 0; i < D; i++)
            yr[i] = (float)((xr[i] - mean) * inv) * w[i] + (b ? b[i] : 0.0f);
    }
}

int ak_model_embed(const ak_model *m, const int32_t *ids, const int32_t *types, int T,
                   float *hidden, ak_err *err)
{
    return ak_model_embed_at(m, ids, types, T, 0, hidden, err);
}

int ak_model_embed_at(const ak_model *m, const int32_t *ids, const int32_t *types, int T,
                      int pos0, float *hidden, ak_err *err)
{
    int D = m->hidden_size;
    if (pos0 < 0 || (m->pos_emb && (int64_t)pos0 + T > m->max_positions))
        return ak_fail(err, AK_EDATA, "%lld tokens, model %s has %d positions",
                       (long long)pos0 + T, m->name, m->max_positions);
    for (int t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= m->vocab_size)
            return ak_fail(err, AK_EDATA, "token %d: id %d is outside model %s's vocabulary of %d",
                           t, (int)ids[t], m->name, m->vocab_size);
        if (types && types[t] && (types[t] < 0 || types[t] >= m->type_vocab_size || !m->type_emb))
            return ak_fail(err, AK_EDATA, "token %d: token type %d, model %s has %d", t,
                           (int)types[t], m->name, m->type_emb ? m->type_vocab_size : 0);
    }
    for (int t = 0; t < T; t++) {
        float *h = hidden + (size_t)t * D;
        if (m->tok_emb) {
            const float *e = m->tok_emb + (size_t)ids[t] * D;
            for (int i = 0; i < D; i++)
                h[i] = e[i];
        } else {   /* a GGUF table: only the rows asked for are dequantized */
            ak_dequant_row(m->tok_q.type, (const char *)m->tok_q.wq + (size_t)ids[t] * m->tok_q.row_bytes,
                           h, D);
        }
        /* Gemma: times sqrt(hidden), a constant in the weights' dtype (f32 here) */
        if (m->emb_scale)
            for (int i = 0; i < D; i++)
                h[i] *= m->emb_scale;
        if (m->family == AK_FAMILY_BERT) {
            /* transformers adds word + token type first, then position. */
            const float *ty = m->type_emb ? m->type_emb + (size_t)(types ? types[t] : 0) * D : NULL;
            for (int i = 0; ty && i < D; i++)
                h[i] += ty[i];
        }
        if (m->pos_emb) {
            const float *p = m->pos_emb + ((size_t)pos0 + t) * D;
            for (int i = 0; i < D; i++)
                h[i] += p[i];
        }
    }
    if (m->emb_norm_w)
        ak_layernorm(hidden, hidden, T, D, m->emb_norm_w, m->emb_norm_b, m->norm_eps);
    return 0;
}

int ak_model_visible(const ak_model *m, int layer, int i, int j)
{
    return ak_mask_sees(m->causal, m->layers[layer].window, i, j);
}
