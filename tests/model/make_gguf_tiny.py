#!/usr/bin/env python3
"""Tiny random-weight GGUF files of the llama, qwen2 and gpt2 architectures,
written the way llama.cpp's convert_hf_to_gguf.py lays them out (llama q/k
rows permuted into RoPE pairs, GPT-2's Conv1D weights transposed, weights
quantized by the gguf package), with the outputs of Hugging Face
transformers loading each GGUF (float32, eager attention) for
tests/model/gguf_model_test.py.

    /work/refpy/bin/python tests/model/make_gguf_tiny.py

Writes tests/model/gguf/tiny_<arch>.gguf and tiny_<arch>.npz (ids, embed,
probs [L, H, T, T], entropy, mass, final, logits [T, V], kv_k, kv_v).
"""
import os
import sys
import tempfile

import gguf
import numpy as np
import torch
import transformers as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import randomize  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf")
T = 37
Q = gguf.GGMLQuantizationType


def permute(w, heads):
    """llama.cpp's convert script: each head's rows as RoPE pairs (2i, 2i+1)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def put(wr, name, a, qtype):
    a = np.ascontiguousarray(a, np.float32)
    if qtype == Q.F32 or a.ndim == 1:
        wr.add_tensor(name, a)
    elif qtype == Q.F16:
        wr.add_tensor(name, a.astype(np.float16))
    else:
        wr.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)


def write(path, arch, cfg, tensors, kv):
    wr = gguf.GGUFWriter(path, arch)
    wr.add_name("tiny " + arch)
    for k, v in kv.items():
        wr.add_key_value(f"{arch}.{k}", v[0], v[1])
    # a minimal tokenizer (transformers reads one from every GGUF)
    wr.add_tokenizer_model("gpt2")
    toks = [f"t{i}" for i in range(cfg.vocab_size)]
    wr.add_token_list(toks)
    wr.add_token_types([1] * cfg.vocab_size)
    wr.add_token_merges([])
    wr.add_bos_token_id(0)
    wr.add_eos_token_id(0)
    for name, a, qtype in tensors:
        put(wr, name, a, qtype)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def reference(path, ids):
    d, f = os.path.split(path)
    model = tf.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                                    attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True,
                    output_hidden_states=True, use_cache=True)
    p = np.stack([a[0].double().numpy() for a in out.attentions])
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    ref = {"ids": np.array(ids, np.int32), "probs": p.astype(np.float32),
           "entropy": ent.astype(np.float32), "mass": p.sum(-2).astype(np.float32),
           "embed": out.hidden_states[0][0].numpy(), "final": out.hidden_states[-1][0].numpy(),
           "logits": out.logits[0].numpy()}
    cache = getattr(out, "past_key_values", None)
    if cache is not None and hasattr(cache, "layers"):
        ref["kv_k"] = np.stack([c.keys[0].numpy() for c in cache.layers])
        ref["kv_v"] = np.stack([c.values[0].numpy() for c in cache.layers])
    return ref


U32, F32 = gguf.GGUFValueType.UINT32, gguf.GGUFValueType.FLOAT32


def llama_like(arch, cls, cfg, seed, qtypes):
    torch.manual_seed(seed)
    m = cls(cfg)
    randomize(m, seed)
    W = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    H, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    ts = [("token_embd.weight", W["model.embed_tokens.weight"], qtypes[0]),
          ("output_norm.weight", W["model.norm.weight"], Q.F32)]
    if "lm_head.weight" in W and not cfg.tie_word_embeddings:
        ts.append(("output.weight", W["lm_head.weight"], qtypes[1]))
    for l in range(cfg.num_hidden_layers):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        q, k = W[p + "self_attn.q_proj.weight"], W[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = permute(q, H), permute(k, Hkv)
        qt = qtypes[(l + 1) % len(qtypes)]
        ts += [(b + "attn_q.weight", q, qt), (b + "attn_k.weight", k, qt),
               (b + "attn_v.weight", W[p + "self_attn.v_proj.weight"], qt),
               (b + "attn_output.weight", W[p + "self_attn.o_proj.weight"], qt),
               (b + "ffn_gate.weight", W[p + "mlp.gate_proj.weight"], qt),
               (b + "ffn_up.weight", W[p + "mlp.up_proj.weight"], qt),
               (b + "ffn_down.weight", W[p + "mlp.down_proj.weight"], qt),
               (b + "attn_norm.weight", W[p + "input_layernorm.weight"], Q.F32),
               (b + "ffn_norm.weight", W[p + "post_attention_layernorm.weight"], Q.F32)]
        for n in ("q", "k", "v"):
            if p + f"self_attn.{n}_proj.bias" in W:
                ts.append((b + f"attn_{n}.bias", W[p + f"self_attn.{n}_proj.bias"], Q.F32))
    kv = {"context_length": (cfg.max_position_embeddings, U32),
          "embedding_length": (cfg.hidden_size, U32), "block_count": (cfg.num_hidden_layers, U32),
          "feed_forward_length": (cfg.intermediate_size, U32),
          "attention.head_count": (H, U32), "attention.head_count_kv": (Hkv, U32),
          "attention.layer_norm_rms_epsilon": (cfg.rms_norm_eps, F32),
          "rope.freq_base": (cfg.rope_parameters["rope_theta"], F32),
          "rope.dimension_count": (cfg.hidden_size // H, U32),
          "vocab_size": (cfg.vocab_size, U32)}
    return ts, kv


def gpt2(cfg, seed, qtype):
    torch.manual_seed(seed)
    m = tf.GPT2LMHeadModel(cfg)
    randomize(m, seed)
    W = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    ts = [("token_embd.weight", W["transformer.wte.weight"], qtype),
          ("position_embd.weight", W["transformer.wpe.weight"], Q.F16),
          ("output_norm.weight", W["transformer.ln_f.weight"], Q.F32),
          ("output_norm.bias", W["transformer.ln_f.bias"], Q.F32)]
    for l in range(cfg.n_layer):
        p, b = f"transformer.h.{l}.", f"blk.{l}."
        for hf, gg in (("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"),
                       ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")):
            ts += [(b + gg + ".weight", W[p + hf + ".weight"].T, qtype),
                   (b + gg + ".bias", W[p + hf + ".bias"], Q.F32)]
        for hf, gg in (("ln_1", "attn_norm"), ("ln_2", "ffn_norm")):
            ts += [(b + gg + ".weight", W[p + hf + ".weight"], Q.F32),
                   (b + gg + ".bias", W[p + hf + ".bias"], Q.F32)]
    kv = {"context_length": (cfg.n_positions, U32), "embedding_length": (cfg.n_embd, U32),
          "block_count": (cfg.n_layer, U32), "feed_forward_length": (4 * cfg.n_embd, U32),
          "attention.head_count": (cfg.n_head, U32),
          "attention.layer_norm_epsilon": (cfg.layer_norm_epsilon, F32)}
    return ts, kv


def main():
    torch.set_num_threads(2)
    os.makedirs(HERE, exist_ok=True)
    rng = np.random.default_rng(11)
    made = {
        "llama": (tf.LlamaConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
                                 max_position_embeddings=128, tie_word_embeddings=True,
                                 rope_parameters={"rope_type": "default", "rope_theta": 1000.0}),
                  lambda c: llama_like("llama", tf.LlamaForCausalLM, c, 21, [Q.Q4_1, Q.Q8_0, Q.Q5_0])),
        "qwen2": (tf.Qwen2Config(vocab_size=80, hidden_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=1, intermediate_size=128,
                                 max_position_embeddings=128, tie_word_embeddings=False,
                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
                  lambda c: llama_like("qwen2", tf.Qwen2ForCausalLM, c, 22, [Q.Q8_0, Q.Q4_0, Q.Q5_1])),
        # 1024 positions: transformers reads gpt2.context_length as n_ctx, not n_positions
        "gpt2": (tf.GPT2Config(vocab_size=72, n_embd=64, n_layer=2, n_head=4, n_positions=1024,
                               activation_function="gelu_new", bos_token_id=0, eos_token_id=0),
                 lambda c: gpt2(c, 23, Q.F16)),
    }
    for arch, (cfg, build) in made.items():
        ts, kv = build(cfg)
        path = os.path.join(HERE, f"tiny_{arch}.gguf")
        write(path, arch, cfg, ts, kv)
        ids = rng.integers(0, cfg.vocab_size, T).tolist()
        ref = reference(path, ids)
        np.savez_compressed(os.path.join(HERE, f"tiny_{arch}.npz"), **ref)
        print(arch, os.path.getsize(path), "bytes", sorted(ref), file=sys.stderr)


if __name__ == "__main__":
    main()
