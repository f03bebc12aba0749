"""entropy, prune and score on causal models (the tiny random-weight models
in tests/model), through the real embed | attend:

- the corrected mass of a causal model (mass / (T - j)) and of a sliding
  window model (mistral_swa_sharded, window 8: mass / (min(T, j + 8) - j))
  equals numpy's computation from the full probabilities attend wrote
  (--probs all), and attend's attn.visible agrees with the mask entropy
  derives from meta causal/window (entropy refuses a disagreement);
- score --target: the log-likelihood of the continuation with full and
  pruned context equals numpy's log-softmax over the logits attend wrote.
Token ids are synthesized (the tiny models have no tokenizer): token k
covers the bytes of the k-th word of the text."""
import os
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ.get("AK_TOP", ".")
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as ak  # noqa: E402

import tap  # noqa: E402
from tap import check, sh  # noqa: E402


tmp = tempfile.mkdtemp()
rng = np.random.default_rng(11)
CONT = "w28 w29 w30"  # the continuation: the last three words


def doc_stream(vocab, T=31):
    words = [f"w{i}" for i in range(T)]
    text = " ".join(words)
    offs, pos = [], 0
    for w in words:
        offs.append([pos, pos + len(w)])
        pos += len(w) + 1
    seg = np.array([i // 8 for i in range(T)], np.int32)
    ids = rng.integers(0, vocab, size=T).astype(np.int32)
    t = [ak.tensor("text", np.frombuffer(text.encode(), np.uint8)), ak.tensor("tokens", ids),
         ak.tensor("offsets", np.array(offs, np.int64)), ak.tensor("segments", seg),
         ak.tensor("special", np.zeros(T, np.uint8))]
    return ak.pack_stream([ak.doc("lm.txt", t)]), text


for model, vocab, window in [("gpt2_tiny", 110, 0), ("mistral_swa_sharded", 96, 8)]:
    mdir = os.path.join(TOP, "tests", "model", model)
    src, text = doc_stream(vocab)
    full = os.path.join(tmp, model + ".ak")
    p = sh(f"embed -m '{mdir}' | attend -m '{mdir}' --probs all --logits all > '{full}'", src)
    check(p.returncode == 0, f"{model}: embed | attend --probs all --logits all")
    if p.returncode:
        continue
    d = ak.docs_of(open(full, "rb").read())["lm.txt"]
    T = len(d["tokens"])
    L = d["attn.mass"].shape[0]
    probs = np.stack([d[f"attn.probs.{l}"] for l in range(L)])      # [L, H, T, T]
    j = np.arange(T)
    seers = (np.minimum(T, j + window) if window else T) - j
    want = (probs.sum(-2) / seers).mean((0, 1))
    p = sh(f"entropy -f tsv -b token '{full}'")
    rows = [r.split("\t") for r in p.stdout.decode().splitlines()[1:]]
    got = np.array([float(r[9]) for r in rows])
    check(p.returncode == 0 and got.shape == want.shape and
          np.allclose(got, want, rtol=1e-4, atol=1e-6),
          f"{model}: corrected mass = mass / seers from attend's probabilities"
          f"{' (window 8)' if window else ' (causal)'}")
    vis = d["attn.visible"][0]
    want_vis = np.minimum(j + 1, window) if window else j + 1
    check(np.array_equal(vis, want_vis), f"{model}: attn.visible is what the mask gives")
    # the continuation's log-likelihood, full and pruned
    tgt = os.path.join(tmp, "target.txt")
    with open(tgt, "w") as f:
        f.write(CONT)
    pr = os.path.join(tmp, model + ".pruned.ak")
    p = sh(f"prune --keep 0.5 --protect-regex '{CONT}$' '{full}' | embed -m '{mdir}' "
           f"| attend -m '{mdir}' --logits all > '{pr}'")
    check(p.returncode == 0, f"{model}: prune --protect-regex (the continuation) | embed | attend")
    p = sh(f"score --target '{tgt}' '{full}' '{pr}'")
    rows = [r.split("\t") for r in p.stdout.decode().splitlines()]
    ok = p.returncode == 0 and len(rows) == 2

    def ll(doc):
        lg = doc["logits"].astype(np.float64)
        toks = doc["tokens"]
        start = len(text) - len(CONT)
        s = 0.0
        for q in range(1, len(toks)):
            if doc["offsets"][q, 0] >= start:
                row = lg[q - 1]
                s += row[toks[q]] - row.max() - np.log(np.exp(row - row.max()).sum())
        return s

    dp = ak.docs_of(open(pr, "rb").read())["lm.txt"] if ok else None
    ok = ok and abs(float(rows[1][5]) - ll(d)) < 1e-3 and abs(float(rows[1][6]) - ll(dp)) < 1e-3
    check(ok, f"{model}: score --target log-likelihoods equal numpy's log-softmax")
    if ok:
        print(f"#   ll_full {rows[1][5]}, ll_pruned {rows[1][6]}, delta {rows[1][7]}")
    # one stream: score runs the model itself on full.tokens and the kept tokens
    p = sh(f"prune --keep 0.5 --protect-regex '{CONT}$' '{full}' | score -m '{mdir}' --target '{tgt}'")
    rows1 = [r.split("\t") for r in p.stdout.decode().splitlines()]
    check(ok and p.returncode == 0 and len(rows1) == 2 and rows1[1][1:4] == rows[1][1:4] and
          abs(float(rows1[1][5]) - ll(d)) < 1e-3 and abs(float(rows1[1][6]) - ll(dp)) < 1e-3,
          f"{model}: prune | score -m --target (one stream) gives the two-stream log-likelihoods")
sys.exit(tap.status())
