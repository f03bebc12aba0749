#!/usr/bin/env python3
"""Greedy generation by Hugging Face transformers (generate, do_sample=False,
float32, eager attention), which tests/model/kvcache_test.py checks `kvcache
--generate` against token for token:

  * SmolLM2-135M-Instruct (the Q4_1 GGUF, loaded by transformers itself with
    gguf_file=..., weights dequantized by the gguf package): 64 new tokens on
    5 questions in its chat template (apply_chat_template with the
    generation prompt, as `tokenize --chat -m smollm2` renders it), stopping
    at the ids `kvcache` stops at by default (the vocabulary's <|im_end|>,
    <end_of_turn>, <|eot_id|>, <|endoftext|>, <eos>, </s>);
  * every tiny model of tests/model (random weights): 24 new tokens after a
    fixed prompt of 12 ids, no stop id.

Needs torch, transformers, accelerate and gguf (the test suite has none: the
output is committed).  Rerun with

    /work/refpy/bin/python tests/model/make_generate_goldens.py [MODELS_DIR]

Writes tests/model/generate_goldens.json: a list of
{"model", "text" (the question, for smollm2), "prompt_ids", "stop_ids",
"max_new", "generated"}; "model" is a
path under the repository or, for the real model, "smollm2".
"""
import json
import os
import sys

import torch
import transformers as tf

HERE = os.path.dirname(os.path.abspath(__file__))
STOP_NAMES = ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>", "<eos>", "</s>"]
QUESTIONS = [
    "What is the capital of France? Answer in one sentence.",
    "Write a haiku about the sea.",
    "Explain in two sentences why the sky is blue.",
    "List three uses of a paperclip.",
    "Who invented the printing press with movable metal type in Europe, and around when?",
]
TINY = ["gpt2_tiny", "llama_gqa_llama3", "llama_linear_headdim", "mistral_swa_sharded",
        "qwen2_bias_bf16", "gemma3_tiny", "gguf/tiny_llama.gguf", "gguf/tiny_qwen2.gguf",
        "gguf/tiny_gpt2.gguf"]


def greedy(model, ids, max_new, stop):
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max_new, do_sample=False, temperature=None, top_p=None,
                             top_k=None, repetition_penalty=1.0, eos_token_id=stop or None,
                             pad_token_id=stop[0] if stop else 0, min_new_tokens=0)
    return out[0, len(ids):].tolist()


def load(path, gguf=None):
    kw = dict(dtype=torch.float32, attn_implementation="eager")
    if gguf:
        kw["gguf_file"] = gguf
    m = tf.AutoModelForCausalLM.from_pretrained(path, **kw)
    m.eval()
    m.generation_config.eos_token_id = None   # the stop ids are passed explicitly
    return m


def main():
    torch.set_num_threads(2)
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", ".cache", "models")
    cases = []
    d, fname = os.path.join(root, "smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = tf.AutoTokenizer.from_pretrained(d, gguf_file=fname)
    vocab = tok.get_vocab()
    stop = [vocab[n] for n in STOP_NAMES if n in vocab]
    model = load(d, fname)
    for q in QUESTIONS:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                      tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        gen = greedy(model, list(ids), 64, stop)
        print(q, "->", repr(tok.decode(gen)), file=sys.stderr)
        cases.append({"model": "smollm2", "text": q, "prompt_ids": list(ids), "stop_ids": stop, "max_new": 64,
                      "generated": gen})
    for name in TINY:
        path = os.path.join(HERE, name)
        model = load(os.path.dirname(path), os.path.basename(path)) if name.endswith(".gguf") else load(path)
        V = model.config.vocab_size if hasattr(model.config, "vocab_size") else model.config.text_config.vocab_size
        ids = [(7 * i * i + 3 * i + 1) % V for i in range(12)]
        gen = greedy(model, ids, 24, [])
        print(name, "->", gen, file=sys.stderr)
        cases.append({"model": "tests/model/" + name, "prompt_ids": ids, "stop_ids": [], "max_new": 24,
                      "generated": gen})
    with open(os.path.join(HERE, "generate_goldens.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
