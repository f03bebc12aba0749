"""Long documents in windows (lib/model/window.c, embed --window, attend):

  - the window plan and owners recomputed here from the rule of window.h;
  - each token's entropy and hidden.final equal those of a plain pass over
    its owner window alone (the plain pass is checked against transformers
    in entropy_model_test.py), the corrected mass equals the owner window's
    up to one factor per layer and head, attn.visible is the mask over T
    and every mass row sums to T;
  - a document past MiniLM's 512 positions goes through embed | attend |
    entropy | prune with one budget over the whole document.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ.get("AK_TOP", ".")
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as ak  # noqa: E402

import tap  # noqa: E402
from tap import check  # noqa: E402


def run(cmd, data=b""):
    p = subprocess.run(["sh", "-c", cmd], input=data, capture_output=True)
    if p.returncode != 0:
        print("# " + cmd + ": " + p.stderr.decode(errors="replace").strip()[:500])
    return p


tmp = tempfile.mkdtemp()
text = open(os.path.join(TOP, "examples", "prompt.txt")).read()
src = os.path.join(tmp, "two.txt")
with open(src, "w") as f:
    f.write(text + "\n" + text)
W, K = 64, 16
tok = run(f"tokenize '{src}'").stdout
merged_s = run(f"embed --window {W} --overlap {K} | attend --hidden", tok).stdout
d = ak.docs_of(merged_s)["two.txt" if "two.txt" in ak.docs_of(merged_s) else src]
T = len(d["tokens"])
check(T > 2 * W, f"the document ({T} tokens) spans several windows of {W}")

# the plan, from window.h's rule
stride = W - K
n = 1 + -(-(T - W) // stride)
starts = [k * stride for k in range(n)]
starts[-1] = T - W
owner = []
for i in range(T):
    best, bk = -1, -1
    for k, s in enumerate(starts):
        if s <= i < s + W:
            c = min(i - s, s + W - 1 - i)
            if c > best:
                best, bk = c, k
    owner.append(bk)
owner = np.array(owner)

full = ak.docs_of(tok)
fd = next(iter(full.values()))
ent_ok = hid_ok = mass_ok = True
ratios = []
for k, s in enumerate(starts):
    sub = [ak.tensor("text", fd["text"]), ak.tensor("tokens", fd["tokens"][s:s + W])]
    if "token_types" in fd:
        sub.append(ak.tensor("token_types", fd["token_types"][s:s + W]))
    p = run("embed | attend --hidden", ak.pack_stream([ak.doc("w", sub)]))
    w = ak.docs_of(p.stdout)["w"]
    own = np.nonzero(owner == k)[0]
    r = own - s
    ent_ok &= np.allclose(d["attn.entropy"][:, :, own], w["attn.entropy"][:, :, r], atol=1e-5)
    hid_ok &= np.allclose(d["hidden.final"][own], w["hidden.final"][r], atol=1e-4)
    # bidirectional: corrected = mass / seers; seers W in the window, T merged
    ratios.append((d["attn.mass"][:, :, own] / T) / (w["attn.mass"][:, :, r] / W))
check(ent_ok, "entropy of each token = its owner window's (a plain pass over that window)")
check(hid_ok, "hidden.final of each token = its owner window's")
rat = np.concatenate(ratios, axis=2)
spread = np.abs(rat / rat.mean(axis=2, keepdims=True) - 1).max()
check(spread < 1e-4, f"corrected mass = the owner window's up to a factor per layer and head "
      f"(spread {spread:.2e})")
check(np.allclose(d["attn.mass"].sum(axis=2), T, rtol=1e-4), "every mass row sums to T")
check(np.all(d["attn.visible"] == T), "attn.visible is the mask over T (bidirectional: T)")
check(not any(k == "hidden" for k in d), "hidden consumed")

# one budget over a document longer than the model's 512 positions
big = os.path.join(tmp, "big.txt")
with open(big, "w") as f:
    f.write("\n".join([text] * 6))
p = run(f"tokenize '{big}' | embed | attend | entropy | prune -v --keep 0.4")
out = ak.read_records(p.stdout)
docs = [r for r in out if r.get("type") == "doc"]
ok = p.returncode == 0 and len(docs) == 1
meta = docs[0]["meta"] if ok else {}
check(ok and meta.get("prune_total", 0) > 512 and
      abs(meta["prune_kept"] - round(0.4 * meta["prune_total"])) <= 3,
      f"past 512 positions: one budget over the whole document ({meta.get('prune_kept')} of "
      f"{meta.get('prune_total')})")
check(ok and meta.get("ctx_window") == 512 and meta.get("ctx_overlap") == 128,
      "meta records the window (512) and overlap (128)")
p = run(f"tokenize '{big}' | embed | attend | entropy | prune --keep 0.5 | score")
rows = [r.split("\t") for r in p.stdout.decode().splitlines()]
check(p.returncode == 0 and len(rows) == 2 and 0.5 < float(rows[1][4]) <= 1.0 and
      int(rows[1][1]) > 512, f"prune | score on a document past 512 tokens (cosine "
      f"{rows[1][4] if len(rows) == 2 else '?'})")

# a causal model (gpt2_tiny: 64 positions): owner windows, causal seers
gdir = os.path.join(TOP, "tests", "model", "gpt2_tiny")
rng = np.random.default_rng(5)
Tc, Wc, Kc = 150, 64, 16
ids = rng.integers(0, 110, size=Tc).astype(np.int32)
txt = " ".join(f"w{i}" for i in range(Tc)).encode()
cdoc = [ak.tensor("text", np.frombuffer(txt, np.uint8)), ak.tensor("tokens", ids)]
p = run(f"embed -m '{gdir}' | attend -m '{gdir}' --hidden --logits all",
        ak.pack_stream([ak.doc("c", cdoc)]))
ok = p.returncode == 0
cd = ak.docs_of(p.stdout)["c"] if ok else {}
stride = Wc - Kc
nw = 1 + -(-(Tc - Wc) // stride)
cst = [k * stride for k in range(nw)]
cst[-1] = Tc - Wc
good = ok
rat = []
for k, s0 in enumerate(cst):
    own = [i for i in range(Tc) if max(((min(i - s, s + Wc - 1 - i), -j) for j, s in enumerate(cst)
                                        if s <= i < s + Wc))[1] == -k]
    own = np.array(own)
    if not ok or len(own) == 0:
        continue
    sub = [ak.tensor("text", np.frombuffer(txt, np.uint8)), ak.tensor("tokens", ids[s0:s0 + Wc])]
    w = ak.docs_of(run(f"embed -m '{gdir}' | attend -m '{gdir}' --hidden --logits all",
                       ak.pack_stream([ak.doc("w", sub)])).stdout)["w"]
    r = own - s0
    good &= np.allclose(cd["attn.entropy"][:, :, own], w["attn.entropy"][:, :, r], atol=1e-5)
    good &= np.allclose(cd["logits"][own], w["logits"][r], atol=1e-4)
    # corrected = mass / seers: Wc - r in the window, Tc - i in the document
    rat.append((cd["attn.mass"][:, :, own] / (Tc - own)) / (w["attn.mass"][:, :, r] / (Wc - r)))
check(good, "causal (gpt2_tiny, 64 positions): entropy and logits of each token = its owner window's")
if rat:
    rr = np.concatenate(rat, axis=2)
    spread = np.abs(rr / rr.mean(axis=2, keepdims=True) - 1).max()
    check(spread < 1e-3, f"causal: corrected mass = the owner window's up to a factor per layer "
          f"and head (spread {spread:.1e})")
    check(np.array_equal(cd["attn.visible"][0], np.arange(1, Tc + 1)),
          "causal: attn.visible counts 1..T over the whole document")

p = run(f"tokenize '{big}' | embed | attend --probs 0")
check(p.returncode == 64 and p.stderr.decode().count("\n") == 1 and b"one window" in p.stderr,
      "attend --probs on a windowed document: refused in one line")
p = run(f"tokenize '{src}' | embed --window 8 --overlap 8")
check(p.returncode == 64 and p.stderr.decode().startswith("embed: "), "embed --overlap >= --window: usage error")
shutil.rmtree(tmp)
sys.exit(tap.status())
