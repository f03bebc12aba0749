"""The whole pipeline on the default model, checked against Hugging Face
transformers (reference values in tests/analysis/entropy_ref.npz, written by
tests/analysis/make_entropy_ref.py):

  tokenize | embed | attend --hidden | entropy     per-token corrected mass,
                                                   per-head entropy and
                                                   first-token share
  ... | prune --keep 0.5 --protect last | decode --mark   the question survives
  score FULL PRUNED                                cosine of pooled embeddings
"""
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


ref = np.load(os.path.join(TOP, "tests", "analysis", "entropy_ref.npz"))
tmp = tempfile.mkdtemp()
prompt = os.path.join(tmp, "prompt.txt")
with open(prompt, "wb") as f:
    f.write(ref["prompt"].tobytes())
full = os.path.join(tmp, "full.ak")
p = sh(f"tokenize --segments paragraph '{prompt}' | embed | attend --hidden | entropy > '{full}'")
check(p.returncode == 0, "tokenize | embed | attend --hidden | entropy on the default model")
d = ak.docs_of(open(full, "rb").read()) if p.returncode == 0 else {}
d = next(iter(d.values()), {})
check(np.array_equal(d.get("tokens", np.array([])), ref["ids"]),
      "token ids equal Hugging Face tokenizers'")
got = d.get("score.token", np.zeros(0))
check(got.shape == ref["token_corrected"].shape and
      np.allclose(got, ref["token_corrected"], rtol=1e-3, atol=1e-5),
      "score.token = corrected mass matches transformers' attentions (rtol 1e-3)")
if got.shape == ref["token_corrected"].shape:
    print(f"#   max relative error {np.max(np.abs(got / ref['token_corrected'] - 1)):.2e}")

p = sh(f"entropy -f tsv -b head '{full}'")
rows = [line.split("\t") for line in p.stdout.decode().splitlines()[1:]]
he = np.array([float(r[3]) for r in rows]) if rows else np.zeros(0)
sink = np.array([float(r[5]) for r in rows]) if rows else np.zeros(0)
check(he.shape == (72,) and np.allclose(he, ref["head_entropy"].reshape(-1), rtol=1e-3),
      "per-head mean entropy matches transformers (72 heads)")
check(sink.shape == (72,) and np.allclose(sink, ref["head_sink"].reshape(-1), rtol=1e-3,
                                          atol=1e-5),
      "per-head first-token share matches transformers")
hf = d.get("hidden.final")
if hf is not None:
    v = hf.mean(0)
    c = float(v @ ref["pooled"] / np.linalg.norm(v) / np.linalg.norm(ref["pooled"]))
    check(c > 0.99999, f"mean-pooled hidden.final matches transformers (cosine {c:.7f})")
else:
    check(False, "hidden.final present")

pruned = os.path.join(tmp, "pruned.ak")
p = sh(f"prune --keep 0.5 --protect last '{full}' | embed | attend --hidden > '{pruned}'")
check(p.returncode == 0, "prune --keep 0.5 --protect last | embed | attend --hidden")
p = sh(f"prune --keep 0.5 --protect last '{full}' | decode --mark")
check(p.returncode == 0 and b"Question: which entries survive eviction?" in p.stdout,
      "decode --mark of the pruned prompt keeps the protected question verbatim")
p = sh(f"score '{full}' '{pruned}'")
rows = [line.split("\t") for line in p.stdout.decode().splitlines()]
ok = p.returncode == 0 and len(rows) == 2
check(ok and 0.5 < float(rows[1][4]) < 1.0 and float(rows[1][3]) <= 0.55,
      "score: kept about half, cosine between 0.5 and 1")
if ok:
    print(f"#   kept {rows[1][3]}, cosine {rows[1][4]}")
sys.exit(tap.status())
