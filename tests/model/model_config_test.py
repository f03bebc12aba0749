"""Model configurations and weights that must be honoured or refused, not
ignored (issue 8):

  - bert with is_decoder: true is causal in transformers' BertModel: attend
    must match its probabilities (tests/model/bert_decoder_ref.npz, made by
    tests/model/make_models.py --bert-config-variants from bert_tiny);
  - bert with type_vocab_size 0 cannot run in transformers (it still adds
    token-type embedding 0): refused, exit 78;
  - a norm epsilon that is negative or zero: refused, exit 78;
  - NaN or Inf in a weight: attend fails (exit 65) naming the layer where
    the first non-finite value appeared, instead of writing NaN statistics."""
import json
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

BERT = os.path.join(TOP, "tests", "model", "bert_tiny")
import tap  # noqa: E402
from tap import check  # noqa: E402


def run(args, data):
    r = subprocess.run(args, input=data, capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def variant(tmp, name, config=None, weights=None):
    """A copy of bert_tiny with config.json edited by config(cfg) and the
    weights edited by weights({name: array})."""
    d = os.path.join(tmp, name, "bert_tiny")  # the name is part of the model's identity
    os.makedirs(d)
    with open(os.path.join(BERT, "config.json")) as f:
        cfg = json.load(f)
    if config:
        config(cfg)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
    else:  # the same bytes: the same identity (config_crc32)
        shutil.copy(os.path.join(BERT, "config.json"), d)
    src = os.path.join(BERT, "model.safetensors")
    if not weights:
        shutil.copy(src, d)
        return d
    with open(src, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    arrays = {k: np.frombuffer(data, "<f4", count=int(np.prod(v["shape"])),
                               offset=v["data_offsets"][0]).reshape(v["shape"])
              for k, v in hdr.items() if k != "__metadata__"}
    arrays = {k: a.copy() for k, a in arrays.items()}
    weights(arrays)
    for k, a in arrays.items():
        b, e = hdr[k]["data_offsets"]
        data[b:e] = a.astype("<f4").tobytes()
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(raw[:8 + n] + bytes(data))
    return d


def tokens(ids, types):
    return s.pack_stream([s.doc("d0", [s.tensor("tokens", np.asarray(ids, np.int32)),
                                       s.tensor("token_types", np.asarray(types, np.int32))])])


ref = dict(np.load(os.path.join(TOP, "tests", "model", "bert_decoder_ref.npz")))
ids, types = ref["ids"].tolist(), ref["token_types"].tolist()
with tempfile.TemporaryDirectory() as tmp:
    # is_decoder: causal, as transformers runs it.
    d = variant(tmp, "decoder", lambda c: c.update(is_decoder=True))
    rc, emb, err = run(["embed", "-m", d], tokens(ids, types))
    rc2, out, err2 = run(["attend", "-m", d, "--probs", "all", "--hidden"], emb) if not rc else (rc, b"", err)
    check(rc == 0 and rc2 == 0, f"is_decoder: embed | attend runs {err}{err2}")
    if rc == 0 and rc2 == 0:
        o = s.docs_of(out)["d0"]
        L = ref["probs"].shape[0]
        probs = np.stack([o[f"attn.probs.{l}"] for l in range(L)])
        T = len(ids)
        check(np.abs(np.triu(ref["probs"][0, 0], 1)).max() == 0,
              "is_decoder: transformers' reference is causal (checks the checker)")
        for what, ours, hf in [("probabilities", probs, ref["probs"]),
                               ("entropy", o["attn.entropy"], ref["entropy"]),
                               ("received mass", o["attn.mass"], ref["mass"]),
                               ("final hidden", o["hidden.final"], ref["final"])]:
            e = float(np.abs(ours - hf).max() / np.abs(hf).max())
            check(e <= 1e-4, f"is_decoder: {what} vs transformers: relative error {e:.2e}")
        check((o["attn.visible"][0] == np.arange(1, T + 1)).all(),
              "is_decoder: attn.visible counts 1..T")
        meta = [r for r in s.read_records(out) if r.get("type") == "doc"][0]["meta"]
        check(meta.get("causal") == 1, f"is_decoder: meta causal=1 ({meta})")

    # Refused configurations: exit 78, one line naming the key.
    for name, edit, word in [
            ("type_vocab_size 0", lambda c: c.update(type_vocab_size=0), "type_vocab_size"),
            ("negative layer_norm_eps", lambda c: c.update(layer_norm_eps=-1e-12), "epsilon"),
            ("zero layer_norm_eps", lambda c: c.update(layer_norm_eps=0), "epsilon"),
            ("layer_norm_eps that is 0 in f32", lambda c: c.update(layer_norm_eps=1e-60), "epsilon")]:
        d = variant(tmp, name.replace(" ", "_"), edit)
        rc, _, err = run(["embed", "-m", d], tokens(ids[:4], types[:4]))
        check(rc == 78 and err.count("\n") == 1 and err.startswith("embed: ") and word in err,
              f"{name}: refused with exit 78 ({rc}: {err.strip()})")

    # Non-finite weights: the layer where it shows is named.
    good = run(["embed", "-m", BERT], tokens(ids, types))[1]
    for name, w, val, want in [
            ("NaN in layer 1's query weight", "encoder.layer.1.attention.self.query.weight",
             np.nan, "layer 1:"),
            ("Inf in layer 0's value weight", "encoder.layer.0.attention.self.value.weight",
             np.inf, "layer 1:"),
            ("NaN in the last layer's output weight", "encoder.layer.1.output.dense.weight",
             np.nan, "final hidden state"),
            ("1e38 in layer 0's key weight (overflows f32)", "encoder.layer.0.attention.self.key.weight",
             3e38, "layer 0:")]:
        def edit(a, w=w, val=val):
            a[w][3, 5] = val
        d = variant(tmp, "w_" + w, weights=edit)
        rc, out, err = run(["attend", "-m", d], good)
        check(rc == 65 and err.count("\n") == 1 and err.startswith("attend: doc d0: ") and want in err
              and "not finite" in err, f"{name}: attend refuses ({rc}: {err.strip()})")
sys.exit(tap.status())
