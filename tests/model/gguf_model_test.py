"""The two real GGUF models (SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M
Q4_K_M) through embed | attend on a real prompt of 500+ tokens, against
Hugging Face transformers loading the same files (float32, eager attention;
goldens made by tests/model/make_gguf_goldens.py and committed), and
SmolLM2 on a shorter prompt against an independent float64 numpy forward
pass that reads and dequantizes the GGUF itself (Q4_1, Q8_0, F32).

Logits, attention probabilities, entropy, received mass, final hidden
states, input embeddings and K/V must agree to a relative error of 1e-4
(max |a - b| / max |b| over each tensor).  Also: model naming (a .gguf
file, a directory holding one, the short names), the GGUF identity in the
stream header, and unknown architectures and tensor types (exit 78)."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402

REL = 1e-4
MODELS = os.environ.get("ATTNKIT_MODELS_DIR", os.path.join(TOP, ".cache", "models"))
FILES = {
    "smollm2": os.path.join(MODELS, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": os.path.join(MODELS, "gemma3", "gemma-3-270m-q4_k_m.gguf"),
}
import tap  # noqa: E402
from tap import check, rel_err  # noqa: E402


def close(a, b, what, rel=REL):
    e = rel_err(a, b)
    check(e <= rel, f"{what}: relative error {e:.2e}")


def run(args, data, env=None):
    r = subprocess.run(args, input=data, capture_output=True,
                       env=dict(os.environ, **env) if env else None)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def token_stream(ids):
    return s.pack_stream([s.doc("d0", [s.tensor("tokens", np.asarray(ids, np.int32))])])


def pipeline(model, ids, attend_args):
    rc, emb, err = run(["embed", "-m", model], token_stream(ids))
    if rc:
        return None, None, f"embed: exit {rc}: {err.strip()}"
    rc, out, err = run(["attend", "-m", model, *attend_args], emb)
    if rc:
        return None, None, f"attend: exit {rc}: {err.strip()}"
    return s.docs_of(emb)["d0"], s.docs_of(out)["d0"], ""


def check_against_transformers(short):
    ref = dict(np.load(os.path.join(TOP, "tests", "model", "gguf", short + ".npz")))
    ids, layers, rows = ref["ids"], ref["layers"], ref["rows"]
    spec = ",".join(str(int(l)) for l in layers)
    emb, out, err = pipeline(FILES[short], ids.tolist(),
                             ["--probs", spec, "--hidden", "--kv", "--logits", "last"])
    check(out is not None, f"{short}: embed | attend on {len(ids)} tokens runs {err}")
    if out is None:
        return
    L, H, T = ref["entropy"].shape
    close(emb["hidden"][rows], ref["embed"], f"{short}: input embeddings vs transformers")
    probs = np.stack([out[f"attn.probs.{l}"] for l in layers])[:, :, rows]
    close(probs, ref["probs"], f"{short}: probabilities of layers {spec} vs transformers")
    close(out["attn.entropy"], ref["entropy"], f"{short}: entropy ({L} layers, {H} heads) vs transformers")
    close(out["attn.mass"], ref["mass"], f"{short}: received mass vs transformers")
    close(out["hidden.final"][rows], ref["final"], f"{short}: final hidden vs transformers")
    close(out["logits"][0], ref["logits_last"], f"{short}: last logits vs transformers")
    check(int(np.argmax(out["logits"][0])) == int(np.argmax(ref["logits_last"])),
          f"{short}: the same next token")
    kvl = ref["kv_layers"]
    close(out["kv.k"][kvl][:, :, rows], ref["kv_k"], f"{short}: keys after RoPE (layers {[int(x) for x in kvl]}) vs transformers")
    close(out["kv.v"][kvl][:, :, rows], ref["kv_v"], f"{short}: values vs transformers")


def check_tiny(arch):
    """A tiny GGUF of another architecture, written as llama.cpp's converter
    writes it (tests/model/make_gguf_tiny.py), against transformers."""
    d = os.path.join(TOP, "tests", "model", "gguf")
    ref = dict(np.load(os.path.join(d, f"tiny_{arch}.npz")))
    emb, out, err = pipeline(os.path.join(d, f"tiny_{arch}.gguf"), ref["ids"].tolist(),
                             ["--probs", "all", "--hidden", "--kv", "--logits", "all"])
    check(out is not None, f"tiny {arch} GGUF: embed | attend runs {err}")
    if out is None:
        return
    L = ref["probs"].shape[0]
    probs = np.stack([out[f"attn.probs.{l}"] for l in range(L)])
    for what, ours, hf in [("input embeddings", emb["hidden"], ref["embed"]),
                           ("probabilities", probs, ref["probs"]),
                           ("entropy", out["attn.entropy"], ref["entropy"]),
                           ("received mass", out["attn.mass"], ref["mass"]),
                           ("final hidden", out["hidden.final"], ref["final"]),
                           ("logits", out["logits"], ref["logits"]),
                           ("keys", out["kv.k"], ref["kv_k"]), ("values", out["kv.v"], ref["kv_v"])]:
        close(ours, hf, f"tiny {arch} GGUF: {what} vs transformers")
    if arch == "llama":
        # The quantized products split rows over threads; any count gives the same.
        path = os.path.join(d, f"tiny_{arch}.gguf")
        rc, e2, _ = run(["embed", "-m", path], token_stream(ref["ids"].tolist()))
        for n in ("1", "3"):
            rc, o, err = run(["attend", "-m", path, "--hidden", "--logits", "all"], e2,
                             env={"ATTNKIT_THREADS": n})
            o = s.docs_of(o)["d0"] if rc == 0 else {}
            check(rc == 0 and rel_err(o["logits"], out["logits"]) <= 1e-6
                  and rel_err(o["hidden.final"], out["hidden.final"]) <= 1e-6,
                  f"tiny llama GGUF: ATTNKIT_THREADS={n} gives the same logits {err.strip()}")


# ---- an independent numpy reader and float64 forward pass (SmolLM2) ---------

def read_gguf(path):
    """Metadata and tensors of a GGUF v3 file (only what SmolLM2 holds)."""
    with open(path, "rb") as f:
        raw = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, raw, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        v = raw[pos:pos + n].decode()
        pos += n
        return v

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert raw[:4] == b"GGUF"
    pos = 4
    _, nt, nkv = take("I"), take("Q"), take("Q")
    meta = {}
    for _ in range(nkv):
        k = string()
        meta[k] = value(take("I"))
    infos = []
    for _ in range(nt):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        infos.append((name, ne, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    return meta, {n: (ne, t, raw, base + off) for n, ne, t, off in infos}


def dequant(entry, rows=None):
    """F32, Q8_0 and Q4_1 as ggml defines them, to float64 [rows, ne0]."""
    ne, t, raw, off = entry
    n0 = ne[0]
    nrows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
    sel = np.arange(nrows) if rows is None else np.asarray(rows)
    if t == 0:
        a = np.frombuffer(raw, "<f4", n0 * nrows, off).reshape(nrows, n0)
        return a[sel].astype(np.float64)
    nb = n0 // 32
    if t == 8:   # Q8_0: f16 scale d, 32 int8 q: x = d * q
        bs = 34
        blk = np.frombuffer(raw, np.uint8, nrows * nb * bs, off).reshape(nrows, nb, bs)[sel]
        d = blk[..., :2].copy().view("<f2").astype(np.float64)
        q = blk[..., 2:].view(np.int8).astype(np.float64)
        return (d * q).reshape(len(sel), n0)
    if t == 3:   # Q4_1: f16 d, f16 m, 16 bytes of nibbles: x = d * q + m (low nibbles first)
        bs = 20
        blk = np.frombuffer(raw, np.uint8, nrows * nb * bs, off).reshape(nrows, nb, bs)[sel]
        d = blk[..., 0:2].copy().view("<f2").astype(np.float64)
        m = blk[..., 2:4].copy().view("<f2").astype(np.float64)
        qs = blk[..., 4:]
        q = np.concatenate([qs & 15, qs >> 4], -1).astype(np.float64)
        return (d * q + m).reshape(len(sel), n0)
    raise ValueError(f"type {t}")


def numpy_smollm2(path, ids):
    meta, W = read_gguf(path)
    D, L = meta["llama.embedding_length"], meta["llama.block_count"]
    H, Hkv = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    eps, theta = meta["llama.attention.layer_norm_rms_epsilon"], meta["llama.rope.freq_base"]
    dh, T = D // H, len(ids)
    w = lambda n: dequant(W[n])  # noqa: E731
    vec = lambda n: dequant(W[n])[0]  # noqa: E731
    rms = lambda x, g: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g  # noqa: E731

    def unpermute(a, heads):
        # llama.cpp's converter stores each head's rows as RoPE pairs (2i, 2i+1)
        return a.reshape(heads, dh // 2, 2, -1).swapaxes(1, 2).reshape(a.shape)

    inv = 1.0 / theta ** (np.arange(0, dh, 2) / dh)
    ang = np.arange(T)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rope(x):   # rotate_half over (i, i + dh/2)
        a, b = x[..., :dh // 2], x[..., dh // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)

    x = dequant(W["token_embd.weight"], ids)
    emb = x.copy()
    causal = np.tril(np.ones((T, T), bool))
    probs = []
    for l in range(L):
        p = f"blk.{l}."
        h = rms(x, vec(p + "attn_norm.weight"))
        q = rope((h @ unpermute(w(p + "attn_q.weight"), H).T).reshape(T, H, dh)).transpose(1, 0, 2)
        k = rope((h @ unpermute(w(p + "attn_k.weight"), Hkv).T).reshape(T, Hkv, dh)).transpose(1, 0, 2)
        v = (h @ w(p + "attn_v.weight").T).reshape(T, Hkv, dh).transpose(1, 0, 2)
        k, v = np.repeat(k, H // Hkv, 0), np.repeat(v, H // Hkv, 0)
        sc = np.where(causal, np.einsum("hid,hjd->hij", q, k) / np.sqrt(dh), -np.inf)
        pr = np.exp(sc - sc.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        probs.append(pr)
        x = x + np.einsum("hij,hjd->ihd", pr, v).reshape(T, D) @ w(p + "attn_output.weight").T
        h = rms(x, vec(p + "ffn_norm.weight"))
        g = h @ w(p + "ffn_gate.weight").T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w(p + "ffn_up.weight").T)) @ w(p + "ffn_down.weight").T
    x = rms(x, vec("output_norm.weight"))
    head = W.get("output.weight", W["token_embd.weight"])
    logits = x[-1] @ dequant(head).T
    return emb, np.stack(probs), x, logits


def check_against_numpy(ids):
    path = FILES["smollm2"]
    emb, out, err = pipeline(path, ids, ["--probs", "all", "--hidden", "--logits", "last"])
    check(out is not None, f"smollm2: {len(ids)} tokens for the numpy check {err}")
    if out is None:
        return
    e, p, final, logits = numpy_smollm2(path, ids)
    L = p.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    close(emb["hidden"], e, "smollm2: input embeddings vs numpy float64")
    close(np.stack([out[f"attn.probs.{l}"] for l in range(L)]), p, "smollm2: probabilities vs numpy float64")
    close(out["attn.entropy"], ent, "smollm2: entropy vs numpy float64")
    close(out["attn.mass"], p.sum(-2), "smollm2: received mass vs numpy float64")
    close(out["hidden.final"], final, "smollm2: final hidden vs numpy float64")
    close(out["logits"][0], logits, "smollm2: last logits vs numpy float64")


# ---- naming, identity, bad files --------------------------------------------

def check_naming_and_identity(tmp):
    ids = [1, 504, 2234, 6612, 347]
    d = os.path.join(tmp, "onegguf")
    os.makedirs(d)
    os.symlink(FILES["smollm2"], os.path.join(d, "model.gguf"))
    rc1, a, err1 = run(["embed", "-m", FILES["smollm2"]], token_stream(ids))
    rc2, b, err2 = run(["embed", "-m", d], token_stream(ids))
    check(rc1 == 0 and rc2 == 0 and (s.docs_of(a)["d0"]["hidden"] == s.docs_of(b)["d0"]["hidden"]).all(),
          f"a directory holding one .gguf is that model {err1} {err2}")
    for short in ("smollm2", "gemma3"):
        rc, c, err = run(["embed", "-m", short], token_stream(ids))
        hdr = s.read_records(c)[0] if rc == 0 else {}
        check(rc == 0 and hdr.get("model", {}).get("arch") == ("llama" if short == "smollm2" else "gemma3"),
              f"-m {short} names the installed model {err.strip()}")
    rc, c, err = run(["embed", "-m", "minilm"], token_stream(ids))
    check(rc == 0 and s.read_records(c)[0]["model"].get("arch") == "bert", f"-m minilm names all-MiniLM-L6-v2 {err.strip()}")
    # A stream embedded by one model is refused by the other (GGUF identity).
    rc, out, err = run(["attend", "-m", FILES["gemma3"]], a)
    check(rc == 65 and "stream was made for" in err, f"gemma3 refuses smollm2's stream: exit {rc}: {err.strip()}")
    hdr = s.read_records(a)[0]["model"]
    check(isinstance(hdr.get("config_crc32"), int), f"the stream header carries the GGUF identity ({hdr})")
    # the identity and name against the gguf package's reading of the file:
    # config_crc32 hashes the architecture's entries as stored, name is general.name
    try:
        import zlib
        import gguf
    except ImportError:
        print("ok - # SKIP the gguf package is not installed")
        return
    for short in ("smollm2", "gemma3"):
        r = gguf.GGUFReader(FILES[short])
        arch = r.fields["general.architecture"].contents()
        raw = b"".join(b"".join(bytes(p) for p in f.parts) for k, f in r.fields.items()
                       if k == "general.architecture" or k.startswith(arch + "."))
        rc, c, err = run(["embed", "-m", FILES[short]], token_stream(ids))
        h = s.read_records(c)[0]["model"] if rc == 0 else {}
        t = s.read_records(run(["tokenize", "-m", FILES[short]], b"hi")[1])[0]["model"]
        check(h.get("config_crc32") == zlib.crc32(raw) and h.get("config_crc32") != t.get("tokenizer_crc32"),
              f"{short}: config_crc32 is the CRC-32 of general.architecture and {arch}.* as stored "
              f"({h.get('config_crc32')}), not the tokenizer's")
        check(h.get("name") == r.fields["general.name"].contents() == t.get("name"),
              f"{short}: the model's name is general.name ({h.get('name')!r}), in tokenize's header too")


def patched(src, dst, edit):
    """A copy of the GGUF at src with its metadata or tensor infos edited:
    edit(raw) returns the new bytes."""
    with open(src, "rb") as f:
        raw = f.read()
    with open(dst, "wb") as f:
        f.write(edit(raw))


def check_unsupported(tmp):
    src = os.path.join(TOP, "tests", "model", "gguf", "tiny_llama.gguf")

    def arch(raw):   # "llama" -> "llamb" in general.architecture's value
        key = b"general.architecture"
        i = raw.index(key) + len(key) + 4 + 8
        assert raw[i:i + 5] == b"llama"
        return raw[:i] + b"llamb" + raw[i + 5:]

    p = os.path.join(tmp, "arch.gguf")
    patched(src, p, arch)
    rc, _, err = run(["embed", "-m", p], token_stream([1, 2]))
    check(rc == 78 and "llamb" in err and err.count("\n") == 1, f"unknown architecture: exit {rc}: {err.strip()}")

    def retype(raw, tname, tnum):
        # the tensor info's ggml type; IQ4_NL has Q5_0's block length and
        # fewer bytes, so the data still lies inside the file
        i = raw.index(struct.pack("<Q", len(tname)) + tname) + 8 + len(tname)
        nd = struct.unpack_from("<I", raw, i)[0]
        j = i + 4 + 8 * nd
        assert struct.unpack_from("<I", raw, j)[0] == 6   # Q5_0
        return raw[:j] + struct.pack("<I", tnum) + raw[j + 4:]

    # Damaged files through the programs: one line, exit 65.
    def huge_array(raw):   # tokenizer.ggml.tokens claims 2^62 strings
        key = b"tokenizer.ggml.tokens"
        i = raw.index(struct.pack("<Q", len(key)) + key) + 8 + len(key) + 4 + 4
        return raw[:i] + struct.pack("<Q", 1 << 62) + raw[i + 8:]

    for what, edit in (("cut short", lambda raw: raw[:len(raw) * 2 // 3]),
                       ("an array of 2^62 elements", huge_array)):
        p = os.path.join(tmp, "bad.gguf")
        patched(src, p, edit)
        rc, _, err = run(["embed", "-m", p], token_stream([1, 2]))
        check(rc == 65 and err.count("\n") == 1 and err.startswith("embed: "),
              f"a GGUF {what}: exit {rc}: {err.strip()}")

    # Same architecture and vocabulary, other hyperparameters (the RoPE base):
    # another model.  Another general.name only: the same model, as two
    # copies of one config.json are (the identity is the architecture's
    # metadata).
    def rope_base(raw):
        key = b"llama.rope.freq_base"
        i = raw.index(struct.pack("<Q", len(key)) + key) + 8 + len(key) + 4
        return raw[:i] + struct.pack("<f", 10000.0) + raw[i + 4:]

    p = os.path.join(tmp, "rebased.gguf")
    patched(src, p, rope_base)
    rc, a, err = run(["embed", "-m", src], token_stream([1, 2, 3]))
    rc2, _, err2 = run(["attend", "-m", p], a)
    check(rc == 0 and rc2 == 65 and "another GGUF file" in err2,
          f"a stream embedded with one GGUF is refused by another architecture: exit {rc2}: {err2.strip()}")
    p = os.path.join(tmp, "renamed.gguf")
    patched(src, p, lambda raw: raw.replace(b"tiny llama", b"tiny llamb", 1))
    rc2, _, err2 = run(["attend", "-m", p], a)
    check(rc2 == 0, f"... and taken by a copy with another general.name: exit {rc2}: {err2.strip()}")
    rc2, _, err2 = run(["attend", "-m", src], a)
    check(rc2 == 0, f"and accepted by the same file {err2.strip()}")

    p = os.path.join(tmp, "ttype.gguf")
    patched(src, p, lambda raw: retype(raw, b"blk.1.attn_q.weight", 20))
    rc, _, err = run(["embed", "-m", p], token_stream([1, 2]))
    check(rc == 78 and "IQ4_NL" in err and "blk.1.attn_q.weight" in err and err.count("\n") == 1,
          f"tensor type IQ4_NL: exit {rc}: {err.strip()}")


tmp = tempfile.mkdtemp()
try:
    for arch in ("llama", "qwen2", "gpt2"):
        check_tiny(arch)
    check_unsupported(tmp)
    missing = [k for k, f in FILES.items() if not os.path.exists(f)]
    if missing:
        print(f"ok - # SKIP models not installed: {', '.join(missing)} (make test installs them)")
    else:
        check_against_transformers("smollm2")
        check_against_transformers("gemma3")
        ref = np.load(os.path.join(TOP, "tests", "model", "gguf", "smollm2.npz"))
        check_against_numpy(ref["ids"][:48].tolist())
        check_naming_and_identity(tmp)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(tap.status())
