#!/usr/bin/env python3
"""Reference outputs of Hugging Face transformers for the two real GGUF
models (SmolLM2-135M-Instruct Q4_1, Gemma 3 270M Q4_K_M) on a real prompt
(tests/model/gguf/prompt.txt), which tests/model/gguf_model_test.py checks
attnkit's embed | attend against.

transformers loads each GGUF itself (from_pretrained(dir, gguf_file=...):
weights dequantized by the gguf package, float32, eager attention,
output_attentions=True) and tokenizes the prompt with the tokenizer it
builds from the same file.  Needs torch, transformers, accelerate and gguf (CI has
none of them: the outputs are committed).  Rerun after changing the prompt:

    /work/refpy/bin/python tests/model/make_gguf_goldens.py [MODELS_DIR]

Writes tests/model/gguf/<short name>.npz, compact (selected rows, f32):
  ids                       the prompt's token ids [T]
  layers, rows              the layers and query/token rows kept
  probs                     attention probabilities [layers, H, rows, T]
  entropy, mass             every layer, head and token, from the
                            probabilities in float64 [L, H, T]
  embed, final              input embeddings and final hidden states
                            (after the final norm) at rows [rows, D]
  logits_last               the last position's logits [V]
  kv_layers, kv_k, kv_v     keys (after RoPE) and values [kv_layers, Hkv, rows, Dh]
                            of the kept layers that attend to every position
"""
import os
import sys

import numpy as np
import torch
import transformers as tf

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {
    "smollm2": ("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("gemma3", "gemma-3-270m-q4_k_m.gguf"),
}


def main():
    torch.set_num_threads(2)
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", ".cache", "models")
    only = sys.argv[2:] or list(MODELS)
    with open(os.path.join(HERE, "gguf", "prompt.txt"), encoding="utf-8") as f:
        text = f.read()
    for short in only:
        sub, fname = MODELS[short]
        d = os.path.join(root, sub)
        tok = tf.AutoTokenizer.from_pretrained(d, gguf_file=fname)
        ids = tok(text)["input_ids"]
        model = tf.AutoModelForCausalLM.from_pretrained(
            d, gguf_file=fname, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        T = len(ids)
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_attentions=True,
                        output_hidden_states=True, use_cache=True)
        L = len(out.attentions)
        p = np.stack([a[0].double().numpy() for a in out.attentions])   # [L, H, T, T]
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
        mass = p.sum(-2)
        # a local and a global layer for Gemma (every sixth is global)
        layers = sorted({0, 5 if L > 6 else 1, L // 2, L - 1})
        rows = sorted({r for r in (0, 37, 256, 511, 512, 513, T - 2, T - 1)
                       if 0 <= r < T})
        # K/V of the kept layers whose cache holds every position (a sliding
        # layer's cache keeps only its window)
        cache = out.past_key_values
        kv_layers = [l for l in layers if cache.layers[l].keys.shape[2] == T]
        kk = np.stack([cache.layers[l].keys[0].numpy()[:, rows] for l in kv_layers])
        vv = np.stack([cache.layers[l].values[0].numpy()[:, rows] for l in kv_layers])
        ref = {
            "ids": np.array(ids, np.int32),
            "layers": np.array(layers, np.int32),
            "rows": np.array(rows, np.int32),
            "probs": p[layers][:, :, rows].astype(np.float32),
            "entropy": ent.astype(np.float32),
            "mass": mass.astype(np.float32),
            "embed": out.hidden_states[0][0].numpy()[rows],
            "final": out.hidden_states[-1][0].numpy()[rows],
            "logits_last": out.logits[0, -1].numpy(),
            "kv_layers": np.array(kv_layers, np.int32),
            "kv_k": kk,
            "kv_v": vv,
        }
        path = os.path.join(HERE, "gguf", short + ".npz")
        np.savez_compressed(path, **ref)
        print(short, T, "tokens", L, "layers", os.path.getsize(path), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
