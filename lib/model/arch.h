/* arch.h - the one table of model architectures: the name a model gives
 * (config.json's model_type, or a GGUF file's general.architecture) and
 * everything that name decides.  model.c and tok_gguf.c look names up here
 * and compare no architecture names of their own; what differs between
 * config.json layouts (gpt2's n_embd against hidden_size) stays in
 * model.c's per-family readers.  Internal to the library. */
#ifndef AK_ARCH_H
#define AK_ARCH_H

#include "attnkit/model.h"

/* Where a name is known: a Hugging Face config.json (model_type), a GGUF
 * model (general.architecture), or only a GGUF tokenizer's architecture
 * (a file attnkit can tokenize for but not run). */
enum { AK_ARCH_HF = 1, AK_ARCH_GGUF = 2, AK_ARCH_GGUF_TOKENIZER = 4 };

/* How config.json's sliding_window applies to the layers when the config
 * has no layer_types list. */
typedef enum {
    AK_WINDOWS_NONE,        /* llama: the window is ignored */
    AK_WINDOWS_ALL,         /* mistral: every layer */
    AK_WINDOWS_FROM_LAYER,  /* qwen2: layers >= max_window_layers, when use_sliding_window */
    AK_WINDOWS_PATTERN,     /* gemma3: every sliding_window_pattern-th layer global */
} ak_window_rule;

typedef struct ak_arch {
    const char *name;
    unsigned where;              /* AK_ARCH_* */
    ak_family family;            /* (tokenizer-only rows: unused) */
    ak_act act;                  /* the activation when the file names none */
    ak_window_rule windows;      /* config.json's sliding windows */
    double rope_theta;           /* RoPE base when the file gives none */
    unsigned qk_interleaved : 1; /* GGUF: llama.cpp's converter permuted q/k rows for its RoPE */
    unsigned tok_nfc : 1;        /* GGUF tokenizer: NFC before the split (transformers' Qwen2Converter) */
    unsigned tok_gemma : 1;      /* GGUF SentencePiece tokenizer: Gemma's conventions */
} ak_arch;

/* The table's row for NAME known in WHERE (an AK_ARCH_* bit), or NULL. */
const ak_arch *ak_arch_find(const char *name, unsigned where);

/* "a, b, c": the names known in WHERE, in table order, for error messages,
 * into buf (truncated to size). */
void ak_arch_names(unsigned where, char *buf, size_t size);

#endif
