/* arch.c - the table of model architectures (arch.h). */
#include "arch.h"

#include <stdio.h>
#include <string.h>

#define HF AK_ARCH_HF
#define GGUF AK_ARCH_GGUF
#define TOK AK_ARCH_GGUF_TOKENIZER

static const ak_arch ARCHS[] = {
    /* name         where      family            act               windows                theta  qk nfc gemma */
    {"bert",        HF,        AK_FAMILY_BERT,   AK_ACT_GELU_ERF,  AK_WINDOWS_NONE,       0,     0, 0, 0},
    {"gpt2",        HF | GGUF, AK_FAMILY_GPT2,   AK_ACT_GELU_TANH, AK_WINDOWS_NONE,       0,     0, 0, 0},
    {"llama",       HF | GGUF, AK_FAMILY_LLAMA,  AK_ACT_SILU,      AK_WINDOWS_NONE,       1e4,   1, 0, 0},
    {"mistral",     HF,        AK_FAMILY_LLAMA,  AK_ACT_SILU,      AK_WINDOWS_ALL,        1e4,   0, 0, 0},
    {"qwen2",       HF | GGUF, AK_FAMILY_LLAMA,  AK_ACT_SILU,      AK_WINDOWS_FROM_LAYER, 1e4,   0, 1, 0},
    {"gemma3_text", HF,        AK_FAMILY_GEMMA3, AK_ACT_GELU_TANH, AK_WINDOWS_PATTERN,    1e6,   0, 0, 0},
    {"gemma3",      GGUF,      AK_FAMILY_GEMMA3, AK_ACT_GELU_TANH, AK_WINDOWS_PATTERN,    1e6,   0, 0, 1},
    /* GGUF files whose tokenizer attnkit reads, but not their models */
    {"gemma",       TOK,       AK_FAMILY_LLAMA,  AK_ACT_GELU_TANH, AK_WINDOWS_NONE,       0,     0, 0, 1},
    {"gemma2",      TOK,       AK_FAMILY_LLAMA,  AK_ACT_GELU_TANH, AK_WINDOWS_NONE,       0,     0, 0, 1},
    {"qwen2moe",    TOK,       AK_FAMILY_LLAMA,  AK_ACT_SILU,      AK_WINDOWS_NONE,       0,     0, 1, 0},
    {"qwen3",       TOK,       AK_FAMILY_LLAMA,  AK_ACT_SILU,      AK_WINDOWS_NONE,       0,     0, 1, 0},
    {"qwen3moe",    TOK,       AK_FAMILY_LLAMA,  AK_ACT_SILU,      AK_WINDOWS_NONE,       0,     0, 1, 0},
};

const ak_arch *ak_arch_find(const char *name, unsigned where)
{
    /* a model's architecture is also its tokenizer's */
    if (where & AK_ARCH_GGUF_TOKENIZER)
        where |= AK_ARCH_GGUF;
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS; i++)
        if ((ARCHS[i].where & where) && !strcmp(ARCHS[i].name, name))
            return &ARCHS[i];
    return NULL;
}

void ak_arch_names(unsigned where, char *buf, size_t size)
{
    size_t n = 0;
    if (size)
        buf[0] = 0;
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS && n < size; i++)
        if (ARCHS[i].where & where)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", ARCHS[i].name);
}
