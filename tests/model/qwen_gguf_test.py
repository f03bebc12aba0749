"""The two Qwen2.5-Coder Instruct GGUF models (`-m qwen0.5b`, `-m qwen1.5b`,
installed by .ci/model.sh) against references that are not attnkit:

- the tokenizer: the GGUF's byte-level BPE vocabulary and merges are those
  of Qwen's tokenizer.json (../shared/tokenizers/qwen3: Qwen 2 and 3 share
  the 151643 tokens and their merges), and our ids for the whole tokenizer
  corpus, and `tokenize --chat`'s ChatML with Qwen 2.5's default system
  prompt, are Hugging Face tokenizers' ids from that tokenizer.json;
- the forward pass: an independent float64 numpy Qwen2 (QKV biases,
  rotate-half RoPE, GQA, untied head) over weights dequantized by the gguf
  package (Q5_0, Q8_0, Q4_K, Q6_K, F32), on qwen0.5b and qwen1.5b: input embeddings,
  probabilities, entropy, received mass, final hidden and last logits to a
  relative error of 1e-4 (transformers with gguf_file= needs PyTorch,
  which the test environment does not have);
- the task: the greedy answer to examples/prompt.txt names the Danube;
- the short names resolve to the installed files (arch qwen2).
Skipped when the models are not installed (make test installs them)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
sys.path.insert(0, os.path.join(TOP, "tests", "tokenize"))
import akstream as s  # noqa: E402
import hfref  # noqa: E402
import tap  # noqa: E402
from tap import check, rel_err  # noqa: E402

MODELS = os.environ.get("ATTNKIT_MODELS_DIR", os.path.join(TOP, ".cache", "models"))
FILES = {
    "qwen0.5b": os.path.join(MODELS, "qwen0.5b", "qwen2.5-coder-0.5b-instruct.gguf"),
    "qwen1.5b": os.path.join(MODELS, "qwen1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
}
SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
BASE_VOCAB = 151643   # the BPE tokens; the specials follow


def run(args, data=None):
    r = subprocess.run(args, input=data, capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def close(a, b, what, rel=1e-4):
    e = rel_err(a, b)
    check(e <= rel, f"{what}: relative error {e:.2e}")


# ---- tokenizer ---------------------------------------------------------------

def gguf_fields(path):
    import gguf
    r = gguf.GGUFReader(path)
    f = r.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    merges = f["tokenizer.ggml.merges"].contents()
    return r, tokens, merges, f["tokenizer.ggml.pre"].contents()


def check_tokenizer(short, r_tokens_merges):
    import json
    from tokenizers import Tokenizer
    _, tokens, merges, pre = r_tokens_merges
    d = hfref.tokenizer_dir("qwen3")
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    vocab = tj["model"]["vocab"]
    by_id = [None] * BASE_VOCAB
    for t, i in vocab.items():
        if i < BASE_VOCAB:
            by_id[i] = t
    tj_merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    check(pre == "qwen2" and tokens[:BASE_VOCAB] == by_id and merges == tj_merges,
          f"{short}: the GGUF's {BASE_VOCAB} BPE tokens and {len(merges)} merges are Qwen's tokenizer.json's")
    added = {a["content"]: a["id"] for a in tj["added_tokens"]}
    same = all(tokens[i] == t for t, i in added.items() if i < 151665)
    check(same, f"{short}: and its special tokens <|endoftext|>, <|im_start|>, <|im_end|>... have the same ids")
    # Qwen 3's tokens after Qwen 2.5's last (<think>... from 151665 on) are
    # not Qwen 2.5's: the reference leaves them out
    last = next(i for i in range(BASE_VOCAB, len(tokens)) if tokens[i].startswith("[PAD"))
    tj["added_tokens"] = [a for a in tj["added_tokens"] if a["id"] < last]
    tj["model"]["vocab"] = {t: i for t, i in vocab.items() if i < last}
    hf = Tokenizer.from_str(json.dumps(tj))
    texts = hfref.corpus()
    paths = []
    for i, t in enumerate(texts):
        p = os.path.join(tmp, f"c{i:04d}.txt")
        with open(p, "wb") as f:
            f.write(t.encode("utf-8"))
        paths.append(p)
    rc, out, err = run(["tokenize", "-m", short, "--no-special", *paths])
    check(rc == 0, f"{short}: tokenize runs on the {len(texts)} corpus texts {err.strip()}")
    if rc:
        return
    docs = s.docs_of(out)
    bad = [i for i, (t, p) in enumerate(zip(texts, paths))
           if docs[p]["tokens"].tolist() != hf.encode(t, add_special_tokens=False).ids]
    check(not bad, f"{short}: ids equal tokenizers' on all {len(texts)} corpus texts"
          + (f" (differ: {bad[:5]})" if bad else ""))
    q = os.path.join(tmp, "q.txt")
    text = "Which river flows through the most countries?\n\nAnswer in one word."
    with open(q, "w") as f:
        f.write(text)
    rc, out, err = run(["tokenize", "-m", short, "--chat", q])
    want = hf.encode(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n"
                     "<|im_start|>assistant\n", add_special_tokens=False).ids
    got = s.docs_of(out)[q]["tokens"].tolist() if rc == 0 else []
    check(got == want, f"{short}: tokenize --chat is ChatML with Qwen 2.5's default system prompt {err.strip()}")


# ---- an independent float64 Qwen2 forward pass ------------------------------

def numpy_qwen2(reader, ids, dt=np.float64, layers=None):
    """Embeddings, probabilities [L, H, T, T], final hidden and last logits
    in dt; with layers=N only the first N layers' probabilities."""
    import gguf
    from gguf.quants import dequantize
    f = reader.fields
    D = int(f["qwen2.embedding_length"].contents())
    L = int(f["qwen2.block_count"].contents())
    H = int(f["qwen2.attention.head_count"].contents())
    Hkv = int(f["qwen2.attention.head_count_kv"].contents())
    eps = float(f["qwen2.attention.layer_norm_rms_epsilon"].contents())
    theta = float(f["qwen2.rope.freq_base"].contents())
    W = {t.name: t for t in reader.tensors}
    dh, T = D // H, len(ids)

    def w(name, rows=None):
        t = W[name]
        data = t.data if rows is None else t.data[rows]
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            return np.asarray(data, dt)
        return dequantize(np.asarray(data), t.tensor_type).astype(dt)

    rms = lambda x, g: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g  # noqa: E731
    inv = 1.0 / theta ** (np.arange(0, dh, 2) / dh)
    ang = np.arange(T)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :].astype(dt), np.sin(ang)[:, None, :].astype(dt)

    def rope(x):   # rotate_half over (i, i + dh/2): llama.cpp's NEOX type for qwen2
        a, b = x[..., :dh // 2], x[..., dh // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)

    x = w("token_embd.weight", np.asarray(ids))
    emb = x.copy()
    causal = np.tril(np.ones((T, T), bool))
    probs = []
    for l in range(L if layers is None else layers):
        p = f"blk.{l}."
        h = rms(x, w(p + "attn_norm.weight"))
        q = rope((h @ w(p + "attn_q.weight").T + w(p + "attn_q.bias")).reshape(T, H, dh)).transpose(1, 0, 2)
        k = rope((h @ w(p + "attn_k.weight").T + w(p + "attn_k.bias")).reshape(T, Hkv, dh)).transpose(1, 0, 2)
        v = (h @ w(p + "attn_v.weight").T + w(p + "attn_v.bias")).reshape(T, Hkv, dh).transpose(1, 0, 2)
        k, v = np.repeat(k, H // Hkv, 0), np.repeat(v, H // Hkv, 0)
        sc = np.where(causal, np.einsum("hid,hjd->hij", q, k) / dt(np.sqrt(dh)), -np.inf)
        pr = np.exp(sc - sc.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        probs.append(pr)
        if layers is not None:
            continue
        x = x + np.einsum("hij,hjd->ihd", pr, v).reshape(T, D) @ w(p + "attn_output.weight").T
        h = rms(x, w(p + "ffn_norm.weight"))
        g = h @ w(p + "ffn_gate.weight").T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w(p + "ffn_up.weight").T)) @ w(p + "ffn_down.weight").T
    if layers is not None:
        return emb, np.stack(probs), None, None
    x = rms(x, w("output_norm.weight"))
    head = "output.weight" if "output.weight" in W else "token_embd.weight"
    n = W[head].data.shape[0]
    logits = np.concatenate([w(head, np.arange(a, min(a + 16384, n))) @ x[-1] for a in range(0, n, 16384)])
    return emb, np.stack(probs), x, logits


def check_forward(short, reader, ids):
    tokens = s.pack_stream([s.doc("d0", [s.tensor("tokens", np.asarray(ids, np.int32))])])
    rc, e, err = run(["embed", "-m", short], tokens)
    if rc == 0:
        rc, o, err = run(["attend", "-m", short, "--probs", "all", "--hidden", "--logits", "last"], e)
    check(rc == 0, f"{short}: embed | attend on {len(ids)} tokens {err.strip()}")
    if rc:
        return
    emb, out = s.docs_of(e)["d0"], s.docs_of(o)["d0"]
    ref_e, p, final, logits = numpy_qwen2(reader, ids)
    L = p.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    close(emb["hidden"], ref_e, f"{short}: input embeddings vs numpy float64 (gguf's dequantization)")
    # Qwen's first layer has attention scores in the thousands (12,408 on
    # the 1.5B), where f32 itself cannot hold a probability to 1e-4: that
    # layer is held to twice what numpy in float32 gets, if more than 1e-4
    p32 = numpy_qwen2(reader, ids, np.float32, layers=1)[1][0]
    floor = rel_err(p32, p[0])
    close(out["attn.probs.0"], p[0], f"{short}: layer 0's probabilities vs numpy float64 "
          f"(numpy float32: {floor:.2e})", rel=max(1e-4, 2 * floor))
    close(np.stack([out[f"attn.probs.{l}"] for l in range(1, L)]), p[1:],
          f"{short}: probabilities of layers 1-{L - 1} vs numpy float64")
    close(out["attn.entropy"], ent, f"{short}: entropy vs numpy float64")
    close(out["attn.mass"], p.sum(-2), f"{short}: received mass vs numpy float64")
    close(out["hidden.final"], final, f"{short}: final hidden vs numpy float64")
    close(out["logits"][0], logits, f"{short}: last logits vs numpy float64")
    check(int(np.argmax(out["logits"][0])) == int(np.argmax(logits)), f"{short}: the same next token")


def check_answer(short):
    prompt = os.path.join(TOP, "examples", "prompt.txt")
    rc, chat, err = run(["tokenize", "-m", short, "--chat", prompt])
    if rc == 0:
        rc, gen, err = run(["kvcache", "-m", short, "--generate", "8"], chat)
    if rc == 0:
        rc, ans, err = run(["decode", "-m", short, "--generated"], gen)
    a = ans.decode(errors="replace") if rc == 0 else ""
    check(rc == 0 and "Danube" in a, f"{short}: the greedy answer to examples/prompt.txt names the Danube: {a!r} {err.strip()}")


def check_names():
    ids = s.pack_stream([s.doc("d0", [s.tensor("tokens", np.asarray([785, 17968, 482], np.int32))])])
    for short in FILES:
        rc, c, err = run(["embed", "-m", short], ids)
        hdr = s.read_records(c)[0] if rc == 0 else {}
        check(rc == 0 and hdr.get("model", {}).get("arch") == "qwen2", f"-m {short} names the installed model {err.strip()}")


tmp = tempfile.mkdtemp()
try:
    missing = [k for k, f in FILES.items() if not os.path.exists(f)]
    if missing:
        print(f"ok - # SKIP models not installed: {', '.join(missing)} (make test installs them)")
    else:
        check_names()
        small = gguf_fields(FILES["qwen0.5b"])
        check_tokenizer("qwen0.5b", small)
        big = gguf_fields(FILES["qwen1.5b"])
        check_tokenizer("qwen1.5b", big)
        del big
        # a real sentence and the chat template's first tokens, 40 tokens
        hf_ids = [151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364, 14817, 13, 151645, 198,
                  151644, 872, 198, 785, 17968, 482, 37168, 304, 279, 29691, 92900, 323, 27455, 10200, 1526,
                  9856, 1573, 432, 24491, 279, 4787, 15029, 304, 279, 25662]
        check_forward("qwen0.5b", small[0], hf_ids)
        check_answer("qwen0.5b")
        del small
        # the 1.5B (Q4_K_M: Q4_K, Q6_K, Q8_0 here), on the first 24 tokens
        big = gguf_fields(FILES["qwen1.5b"])
        check_forward("qwen1.5b", big[0], hf_ids[:24])
finally:
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(tap.status())
