"""embed | attend against two references, on tiny random models of every
family (tests/model/*/) and on the default model with real sentences:

  1. Hugging Face transformers, eager attention, output_attentions=True
     (outputs made by tests/model/make_models.py and committed: ref.npz);
  2. an independent forward pass written here in numpy (float64), reading
     the same safetensors files.

Attention probabilities, entropies, received mass, visible-key counts,
input embeddings, final hidden states, logits and K/V must agree to a
relative error of 1e-4 (max |a - b| / max |b| over each tensor)."""
import glob
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402

REL = 1e-4
import tap  # noqa: E402
from tap import check, rel_err  # noqa: E402


def close(a, b, what):
    e = rel_err(a, b)
    check(e <= REL, f"{what}: relative error {e:.2e}")


# ---- an independent numpy forward pass ------------------------------------

def load_safetensors(d):
    files = [os.path.join(d, "model.safetensors")]
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted({os.path.join(d, v) for v in json.load(f)["weight_map"].values()})
    out = {}
    for path in files:
        with open(path, "rb") as f:
            raw = f.read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        base = 8 + n
        for name, t in header.items():
            if name == "__metadata__":
                continue
            b, e = t["data_offsets"]
            buf = raw[base + b:base + e]
            if t["dtype"] == "BF16":
                a = (np.frombuffer(buf, "<u2").astype("<u4") << 16).view("<f4")
            else:
                a = np.frombuffer(buf, {"F32": "<f4", "F16": "<f2", "I64": "<i8"}[t["dtype"]])
            out[name] = a.reshape(t["shape"]).astype(np.float64)
    return out


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def gelu_erf(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1 + np.exp(-x))


def attention(q, k, v, mask, scale):
    """q [H, T, Dh], k/v [H, T, Dh] (already expanded), mask [T, T] bool."""
    sc = np.einsum("hid,hjd->hij", q, k) * scale
    sc = np.where(mask, sc, -np.inf)
    sc -= sc.max(-1, keepdims=True)
    p = np.exp(sc)
    p /= p.sum(-1, keepdims=True)
    return np.einsum("hij,hjd->hid", p, v), p


def rope_freqs(cfg, dh):
    rp = cfg.get("rope_parameters") or dict(cfg.get("rope_scaling") or {},
                                            rope_theta=cfg.get("rope_theta", 10000.0))
    theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (np.arange(0, dh, 2) / dh)
    kind = rp.get("rope_type", rp.get("type", "default"))
    if kind == "linear":
        inv = inv / rp["factor"]
    elif kind == "llama3":
        f, lo, hi, old = (rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"],
                          rp["original_max_position_embeddings"])
        wl = 2 * math.pi / inv
        out = np.where(wl > old / lo, inv / f, inv)
        smooth = (old / wl - lo) / (hi - lo)
        mid = (wl >= old / hi) & (wl <= old / lo)
        out = np.where(mid, (1 - smooth) * out / f + smooth * out, out)
        inv = out
    return inv


def apply_rope(x, inv):
    """x [T, H, Dh], rotate_half convention."""
    T, _, dh = x.shape
    ang = np.arange(T)[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
    half = dh // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def numpy_forward(d, ids, types=None):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    W = load_safetensors(d)
    mt = cfg["model_type"]
    if mt == "gemma3":   # Gemma3ForConditionalGeneration: its text model
        cfg, mt = cfg["text_config"], "gemma3_text"
        W = {k.removeprefix("language_model."): v for k, v in W.items()}
    T = len(ids)
    res = {"probs": [], "k": [], "v": [], "windows": []}
    pos = np.arange(T)
    if mt == "bert":
        pre = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
        D, H, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
        dh = D // H
        e = pre + "embeddings."
        tt = np.zeros(T, int) if types is None else np.asarray(types)
        x = W[e + "word_embeddings.weight"][ids] + W[e + "token_type_embeddings.weight"][tt] \
            + W[e + "position_embeddings.weight"][pos]
        x = layernorm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
        res["embed"] = x
        act = gelu_erf if cfg["hidden_act"] == "gelu" else gelu_tanh
        mask = np.ones((T, T), bool)
        for layer in range(cfg["num_hidden_layers"]):
            p = f"{pre}encoder.layer.{layer}."
            lin = lambda n, a: a @ W[p + n + ".weight"].T + W[p + n + ".bias"]  # noqa: E731
            q, k, v = (lin(f"attention.self.{n}", x).reshape(T, H, dh).transpose(1, 0, 2)
                       for n in ("query", "key", "value"))
            o, pr = attention(q, k, v, mask, 1 / math.sqrt(dh))
            res["probs"].append(pr)
            res["windows"].append(0)
            x = layernorm(x + lin("attention.output.dense", o.transpose(1, 0, 2).reshape(T, D)),
                          W[p + "attention.output.LayerNorm.weight"],
                          W[p + "attention.output.LayerNorm.bias"], eps)
            x = layernorm(x + lin("output.dense", act(lin("intermediate.dense", x))),
                          W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
        res["final"] = x
        res["causal"] = False
        return res
    causal = np.tril(np.ones((T, T), bool))
    res["causal"] = True
    if mt == "gpt2":
        pre = "transformer." if "transformer.wte.weight" in W else ""
        D, H, eps = cfg["n_embd"], cfg["n_head"], cfg.get("layer_norm_epsilon", 1e-5)
        dh = D // H
        x = W[pre + "wte.weight"][ids] + W[pre + "wpe.weight"][pos]
        res["embed"] = x
        for layer in range(cfg["n_layer"]):
            p = f"{pre}h.{layer}."
            conv = lambda n, a: a @ W[p + n + ".weight"] + W[p + n + ".bias"]  # Conv1D [in, out]  # noqa: E731
            h = layernorm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            qkv = conv("attn.c_attn", h)
            q, k, v = (qkv[:, i * D:(i + 1) * D].reshape(T, H, dh).transpose(1, 0, 2) for i in range(3))
            o, pr = attention(q, k, v, causal, 1 / math.sqrt(dh))
            res["probs"].append(pr)
            res["k"].append(k)
            res["v"].append(v)
            res["windows"].append(0)
            x = x + conv("attn.c_proj", o.transpose(1, 0, 2).reshape(T, D))
            h = layernorm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            x = x + conv("mlp.c_proj", gelu_tanh(conv("mlp.c_fc", h)))
        x = layernorm(x, W[pre + "ln_f.weight"], W[pre + "ln_f.bias"], eps)
        res["final"] = x
        res["logits"] = x @ W[pre + "wte.weight"].T
        return res
    if mt == "gemma3_text":
        return gemma3_forward(cfg, W, ids, res, causal)
    # llama, mistral, qwen2
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    dh = cfg.get("head_dim") or D // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    L = cfg["num_hidden_layers"]
    inv = rope_freqs(cfg, dh)
    if "layer_types" in cfg:
        windows = [cfg["sliding_window"] if t == "sliding_attention" else 0 for t in cfg["layer_types"]]
    elif mt == "mistral":
        windows = [cfg.get("sliding_window") or 0] * L
    elif mt == "qwen2" and cfg.get("use_sliding_window"):
        windows = [cfg["sliding_window"] if i >= cfg.get("max_window_layers", 28) else 0 for i in range(L)]
    else:
        windows = [0] * L
    x = W["model.embed_tokens.weight"][ids]
    res["embed"] = x

    def lin(n, a):
        y = a @ W[n + ".weight"].T
        return y + W[n + ".bias"] if n + ".bias" in W else y

    for layer in range(L):
        p = f"model.layers.{layer}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = apply_rope(lin(p + "self_attn.q_proj", h).reshape(T, H, dh), inv)
        k = apply_rope(lin(p + "self_attn.k_proj", h).reshape(T, Hkv, dh), inv)
        v = lin(p + "self_attn.v_proj", h).reshape(T, Hkv, dh)
        k, v = k.transpose(1, 0, 2), v.transpose(1, 0, 2)
        rep = H // Hkv
        mask = causal.copy()
        if windows[layer]:
            mask &= (pos[:, None] - pos[None, :]) < windows[layer]
        o, pr = attention(q.transpose(1, 0, 2), np.repeat(k, rep, 0), np.repeat(v, rep, 0), mask,
                          1 / math.sqrt(dh))
        res["probs"].append(pr)
        res["k"].append(k)
        res["v"].append(v)
        res["windows"].append(windows[layer])
        x = x + lin(p + "self_attn.o_proj", o.transpose(1, 0, 2).reshape(T, H * dh))
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(p + "mlp.down_proj", silu(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h))
    x = rmsnorm(x, W["model.norm.weight"], eps)
    res["final"] = x
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    res["logits"] = x @ head.T
    return res


def gemma3_forward(cfg, W, ids, res, causal):
    """Gemma 3 (Gemma3ForCausalLM): scaled embeddings, (1 + w) RMSNorms
    before and after attention and MLP, QK-norm, GELU-tanh gate, local
    layers with their own RoPE base."""
    D, H, Hkv, dh = (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
                     cfg["head_dim"])
    eps, L, T = cfg.get("rms_norm_eps", 1e-6), cfg["num_hidden_layers"], len(ids)
    pos = np.arange(T)
    rp = cfg.get("rope_parameters")
    if rp:
        glob_rp, loc_rp = rp["full_attention"], rp["sliding_attention"]
    else:
        glob_rp = dict(cfg.get("rope_scaling") or {}, rope_theta=cfg.get("rope_theta", 1e6))
        loc_rp = {"rope_theta": cfg.get("rope_local_base_freq", 10000.0)}
    inv_g = rope_freqs({"rope_parameters": glob_rp}, dh)
    inv_l = rope_freqs({"rope_parameters": loc_rp}, dh)
    if "layer_types" in cfg:
        local = [t == "sliding_attention" for t in cfg["layer_types"]]
    else:
        pat = cfg.get("sliding_window_pattern", 6)
        local = [(i + 1) % pat != 0 for i in range(L)]
    norm = lambda x, n: rmsnorm(x, 1 + W[n + ".weight"], eps)  # noqa: E731
    x = W["model.embed_tokens.weight"][ids] * math.sqrt(D)
    res["embed"] = x
    for layer in range(L):
        p = f"model.layers.{layer}."
        a = f"{p}self_attn."
        h = norm(x, p + "input_layernorm")
        inv = inv_l if local[layer] else inv_g
        q = norm((h @ W[a + "q_proj.weight"].T).reshape(T, H, dh), a + "q_norm")
        k = norm((h @ W[a + "k_proj.weight"].T).reshape(T, Hkv, dh), a + "k_norm")
        q, k = apply_rope(q, inv), apply_rope(k, inv)
        v = (h @ W[a + "v_proj.weight"].T).reshape(T, Hkv, dh)
        k, v = k.transpose(1, 0, 2), v.transpose(1, 0, 2)
        window = cfg["sliding_window"] if local[layer] else 0
        mask = causal.copy()
        if window:
            mask &= (pos[:, None] - pos[None, :]) < window
        rep = H // Hkv
        o, pr = attention(q.transpose(1, 0, 2), np.repeat(k, rep, 0), np.repeat(v, rep, 0), mask,
                          cfg["query_pre_attn_scalar"] ** -0.5)
        res["probs"].append(pr)
        res["k"].append(k)
        res["v"].append(v)
        res["windows"].append(window)
        x = x + norm(o.transpose(1, 0, 2).reshape(T, H * dh) @ W[a + "o_proj.weight"].T,
                     p + "post_attention_layernorm")
        h = norm(x, p + "pre_feedforward_layernorm")
        m = gelu_tanh(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T)
        x = x + norm(m @ W[p + "mlp.down_proj.weight"].T, p + "post_feedforward_layernorm")
    x = norm(x, "model.norm")
    res["final"] = x
    res["logits"] = x @ W["model.embed_tokens.weight"].T
    return res


def derived(probs):
    p = np.stack(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    return p, ent, p.sum(-2), (p > 0).sum(-1)[:, 0, :]


# ---- running the programs ---------------------------------------------------

def run(args, data):
    r = subprocess.run(args, input=data, capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def token_stream(ids, types=None):
    ts = [s.tensor("tokens", np.asarray(ids, np.int32))]
    if types is not None:
        ts.append(s.tensor("token_types", np.asarray(types, np.int32)))
    return s.pack_stream([s.doc("d0", ts)])


def pipeline(model, ids, types, attend_args, model_args=True):
    m = ["-m", model] if model_args else []
    rc, emb, err = run(["embed", *m], token_stream(ids, types))
    if rc:
        return None, None, f"embed: exit {rc}: {err.strip()}"
    rc, out, err = run(["attend", *m, *attend_args], emb)
    if rc:
        return None, None, f"attend: exit {rc}: {err.strip()}"
    return s.docs_of(emb)["d0"], s.docs_of(out)["d0"], ""


def check_model(d):
    name = os.path.basename(d)
    ref = dict(np.load(os.path.join(d, "ref.npz")))
    ids, types = ref["ids"], ref.get("token_types")
    causal = "logits" in ref
    extra = ["--logits", "all", "--kv"] if causal else []
    emb, out, err = pipeline(d, ids.tolist(), None if types is None else types.tolist(),
                             ["--probs", "all", "--hidden", *extra])
    check(out is not None, f"{name}: embed | attend runs {err}")
    if out is None:
        return
    npy = numpy_forward(d, ids, types)
    p, ent, mass, vis = derived(npy["probs"])
    L, H, T = p.shape[:3]
    # The numpy reference itself agrees with transformers (checks the checker).
    close(p, ref["probs"], f"{name}: numpy reference probabilities vs transformers")
    close(npy["final"], ref["final"], f"{name}: numpy reference final hidden vs transformers")
    close(emb["hidden"], ref["embed"], f"{name}: embed hidden vs transformers")
    close(emb["hidden"], npy["embed"], f"{name}: embed hidden vs numpy")
    check(out.get("hidden") is None, f"{name}: attend consumes hidden")
    probs = np.stack([out[f"attn.probs.{l}"] for l in range(L)]) if all(
        f"attn.probs.{l}" in out for l in range(L)) else None
    check(probs is not None and all((out[f"attn.probs.{l}.heads"] == np.arange(H)).all()
                                    for l in range(L)), f"{name}: --probs all gives every layer and head")
    for what, ours, hf, mine in [("probabilities", probs, ref["probs"], p),
                                 ("entropy", out["attn.entropy"], ref["entropy"], ent),
                                 ("received mass", out["attn.mass"], ref["mass"], mass),
                                 ("final hidden", out["hidden.final"], ref["final"], npy["final"])]:
        close(ours, hf, f"{name}: {what} vs transformers")
        close(ours, mine, f"{name}: {what} vs numpy")
    check(out["attn.visible"].shape == (L, T) and (out["attn.visible"] == vis).all(),
          f"{name}: attn.visible counts the unmasked keys")
    if causal:
        close(out["logits"], ref["logits"], f"{name}: logits vs transformers")
        close(out["logits"], npy["logits"], f"{name}: logits vs numpy")
        kk = np.stack(npy["k"])
        close(out["kv.k"], kk, f"{name}: kv.k (after RoPE) vs numpy")
        close(out["kv.v"], np.stack(npy["v"]), f"{name}: kv.v vs numpy")
        # --logits last is the last row of all; heads subset in order.
        _, o2, err = pipeline(d, ids.tolist(), None, ["--logits", "last", "--probs", f"{L - 1}:0,{H - 1}"])
        check(o2 is not None and o2["logits"].shape == (1, ref["logits"].shape[1])
              and rel_err(o2["logits"][0], ref["logits"][-1]) <= REL, f"{name}: --logits last {err}")
        check(o2 is not None and f"attn.probs.{L - 1}" in o2 and "attn.probs.0" not in o2
              and list(o2[f"attn.probs.{L - 1}.heads"]) == [0, H - 1]
              and rel_err(o2[f"attn.probs.{L - 1}"], ref["probs"][L - 1][[0, H - 1]]) <= REL,
              f"{name}: --probs LAYER:HEADS keeps the chosen heads")


def check_meta(d, want_causal, want_window):
    ref = dict(np.load(os.path.join(d, "ref.npz")))
    emb = run(["embed", "-m", d], token_stream(ref["ids"][:5].tolist()))[1]
    rc, out, _ = run(["attend", "-m", d], emb)
    recs = [r for r in s.read_records(out) if r.get("type") == "doc"]
    meta = recs[0]["meta"] if rc == 0 and recs else {}
    check(meta.get("causal") == want_causal and meta.get("window") == want_window,
          f"{os.path.basename(d)}: meta causal={want_causal} window={want_window} ({meta})")


def check_default_model():
    ref = dict(np.load(os.path.join(TOP, "tests", "model", "minilm_ref.npz")))
    model = os.environ["ATTNKIT_MODEL"]
    for i in range(2):
        r = {k.split(".", 1)[1]: v for k, v in ref.items() if k.startswith(f"s{i}.")}
        # No -m: the default model ($ATTNKIT_MODEL) is used.
        _, out, err = pipeline(model, r["ids"].tolist(), r["token_types"].tolist(),
                               ["--probs", "all", "--hidden"], model_args=False)
        check(out is not None, f"default model sentence {i}: runs {err}")
        if out is None:
            continue
        npy = numpy_forward(model, r["ids"], r["token_types"])
        p, ent, mass, _ = derived(npy["probs"])
        L = p.shape[0]
        probs = np.stack([out[f"attn.probs.{l}"] for l in range(L)])
        for what, ours, hf, mine in [("probabilities", probs, r["probs"], p),
                                     ("entropy", out["attn.entropy"], r["entropy"], ent),
                                     ("received mass", out["attn.mass"], r["mass"], mass),
                                     ("final hidden", out["hidden.final"], r["final"], npy["final"])]:
            close(ours, hf, f"default model sentence {i} ({len(r['ids'])} tokens): {what} vs transformers")
            close(ours, mine, f"default model sentence {i}: {what} vs numpy")


def check_text_pipeline():
    """tokenize | embed | attend on real text, the way users run it, against
    transformers on the same sentence (tokenized by HF tokenizers there)."""
    import shutil
    if not shutil.which("tokenize"):
        check(True, "# SKIP tokenize not built")
        return
    ref = dict(np.load(os.path.join(TOP, "tests", "model", "minilm_ref.npz")))
    text = b"The quick brown fox jumps over the lazy dog.\n"
    rc, toks, err = run(["tokenize"], text)
    check(rc == 0, f"tokenize runs on the sentence {err.strip()}")
    if rc:
        return
    rc, emb, err = run(["embed"], toks)
    rc2, out, err2 = run(["attend", "--hidden"], emb) if rc == 0 else (rc, b"", err)
    check(rc == 0 and rc2 == 0, f"tokenize | embed | attend on the default model {err.strip()} {err2.strip()}")
    if rc or rc2:
        return
    doc = next(iter(s.docs_of(out).values()))
    check(list(doc["tokens"]) == list(ref["s0.ids"]), "tokenize gives the ids transformers was run on")
    if list(doc["tokens"]) == list(ref["s0.ids"]):
        close(doc["attn.entropy"], ref["s0.entropy"], "text pipeline: entropy vs transformers")
        close(doc["attn.mass"], ref["s0.mass"], "text pipeline: received mass vs transformers")
        close(doc["hidden.final"], ref["s0.final"], "text pipeline: final hidden vs transformers")


for d in sorted(glob.glob(os.path.join(TOP, "tests", "model", "*", "ref.npz"))):
    check_model(os.path.dirname(d))
check_meta(os.path.join(TOP, "tests", "model", "mistral_swa_sharded"), 1, 8)
check_meta(os.path.join(TOP, "tests", "model", "bert_tiny"), 0, 0)
check_meta(os.path.join(TOP, "tests", "model", "gemma3_tiny"), 1, 6)
check_default_model()
check_text_pipeline()
sys.exit(tap.status())
