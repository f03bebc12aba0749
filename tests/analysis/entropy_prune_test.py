"""entropy, prune and score driven through real pipes on streams synthesized
here, checked against numpy computations written from the definitions in
include/attnkit/metrics.h (not from the C code):

  entropy[l,h,i] = -sum_j p log p, visible from the mask, mass = sum_i p,
  corrected = mass / (queries that can see the key).

Documents: causal, causal with a sliding window, and bidirectional, with
random attention probabilities (L=2, H=3)."""
import json
import math
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ.get("AK_TOP", "."), "tests", "py"))
import akstream as ak  # noqa: E402

import tap  # noqa: E402
from tap import check  # noqa: E402


def run(args, data):
    p = subprocess.run(args, input=data, capture_output=True)
    if p.returncode != 0:
        print("# " + " ".join(args) + ": " + p.stderr.decode(errors="replace").strip())
    return p


L, H = 2, 3
WORDS = ("Alpha beta gamma. Delta epsilon zeta eta. Theta iota kappa lambda mu. "
         "Question: what is nu?").split(" ")


def make_doc(doc_id, causal, window, rng, probs=False):
    text = " ".join(WORDS)
    offs, pos = [[0, 0]], 0
    for w in WORDS:
        offs.append([pos, pos + len(w)])
        pos += len(w) + 1
    offs.append([len(text), len(text)])
    T = len(offs)
    # blocks: the sentences (3 context sentences, the question)
    seg, b = [-1], 0
    for w in WORDS:
        seg.append(b)
        if w.endswith(".") or w.endswith("?"):
            b += 1
    seg.append(-1)
    special = [1] + [0] * len(WORDS) + [1]
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    vis = np.ones((T, T), bool)
    if causal:
        vis &= j <= i
    if window:
        vis &= (i - j) < window
    logits = rng.normal(size=(L, H, T, T)) * 2
    logits[..., ~vis] = -np.inf
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p = p.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0).sum(-1)
    mass = p.sum(-2)
    visible = np.broadcast_to(vis.sum(-1), (L, T)).astype(np.int32)
    seers = vis.sum(0)
    tensors = [ak.tensor("text", np.frombuffer(text.encode(), np.uint8)),
               ak.tensor("tokens", np.arange(100, 100 + T, dtype=np.int32)),
               ak.tensor("offsets", np.array(offs, np.int64)),
               ak.tensor("segments", np.array(seg, np.int32)),
               ak.tensor("special", np.array(special, np.uint8)),
               ak.tensor("attn.entropy", ent.astype(np.float32)),
               ak.tensor("attn.mass", mass.astype(np.float32)),
               ak.tensor("attn.visible", visible),
               ak.tensor("hidden.final", rng.normal(size=(T, 8)).astype(np.float32))]
    if probs:
        tensors.append(ak.tensor("attn.probs.1", p[1]))
        tensors.append(ak.tensor("attn.probs.1.heads", np.arange(H, dtype=np.int32)))
    meta = {"source": doc_id, "causal": int(causal), "window": int(window)}
    ref = dict(T=T, p=p, ent=ent, mass=mass, visible=visible, seers=seers, seg=np.array(seg),
               special=np.array(special), offs=np.array(offs), text=text)
    return ak.doc(doc_id, tensors, meta), ref


rng = np.random.default_rng(5)
cases = [("causal.txt", 1, 0), ("window.txt", 1, 3), ("bidir.txt", 0, 0)]
docs, refs = [], {}
for name, c, w in cases:
    d, r = make_doc(name, c, w, rng, probs=True)
    docs.append(d)
    refs[name] = r
stream = ak.pack_stream(docs)


def corrected(r, layers=slice(None), agg="mean"):
    c = r["mass"][layers] / r["seers"][None, None, :]
    c = c.reshape(-1, r["T"])
    return c.mean(0) if agg == "mean" else c.max(0)


# ---- entropy: tables ----
p = run(["entropy", "--format", "tsv", "--by", "token"], stream)
rows = [line.split("\t") for line in p.stdout.decode().splitlines()]
check(p.returncode == 0 and rows and rows[0][0] == "doc", "entropy --format tsv --by token")
for name, r in refs.items():
    got = np.array([[float(x) for x in row[6:10]] for row in rows[1:] if row[0] == name])
    want_c = corrected(r)
    want_m = r["mass"].reshape(-1, r["T"]).mean(0)
    want_e = r["ent"].reshape(-1, r["T"]).mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vis = r["visible"][:, None, :]
        ne = np.where(vis > 1, r["ent"] / np.log(np.maximum(vis, 2)), 0)
    want_n = ne.reshape(-1, r["T"]).mean(0)
    check(got.shape == (r["T"], 4), f"{name}: a row per token")
    if got.shape == (r["T"], 4):
        check(np.allclose(got[:, 3], want_c, rtol=1e-4, atol=1e-6),
              f"{name}: corrected mass = mass / seers, mean over heads and layers (numpy)")
        check(np.allclose(got[:, 2], want_m, rtol=1e-4, atol=1e-6), f"{name}: raw mass")
        check(np.allclose(got[:, 0], want_e, rtol=1e-4, atol=1e-6), f"{name}: entropy (nats)")
        check(np.allclose(got[:, 1], want_n, rtol=1e-4, atol=1e-6),
              f"{name}: entropy / log(visible keys)")

p = run(["entropy", "-f", "tsv", "-b", "token", "--agg", "max", "--layers", "1-1"], stream)
rows = [line.split("\t") for line in p.stdout.decode().splitlines()[1:]]
got = np.array([float(row[9]) for row in rows if row[0] == "window.txt"])
check(np.allclose(got, corrected(refs["window.txt"], slice(1, 2), "max"), rtol=1e-4, atol=1e-6),
      "windowed: --agg max --layers 1-1 matches numpy")

p = run(["entropy", "-f", "tsv", "-b", "head", "-u", "bits"], stream)
rows = [line.split("\t") for line in p.stdout.decode().splitlines()[1:]]
r = refs["causal.txt"]
got = np.array([float(row[3]) for row in rows if row[0] == "causal.txt"])
check(np.allclose(got, r["ent"].mean(-1).reshape(-1) / math.log(2), rtol=1e-4),
      "head table: mean entropy in bits")
sink = np.array([float(row[5]) for row in rows if row[0] == "causal.txt"])
check(np.allclose(sink, (r["mass"][..., 0] / r["T"]).reshape(-1), rtol=1e-4),
      "head table: first-token share = mass[0] / T")

p = run(["entropy", "-f", "json", "-b", "layer,block"], stream)
objs = [json.loads(x) for x in p.stdout.decode().splitlines()]
check(len(objs) == 3 and len(objs[0]["by_layer"]) == L, "json: one object per document")
r = refs["bidir.txt"]
blk = next(o for o in objs if o["doc"] == "bidir.txt")["by_block"]
c = corrected(r)
want = [c[r["seg"] == b].mean() for b in range(4)]
check(np.allclose([b["mass_corrected"] for b in blk], want, rtol=1e-4),
      "json: block corrected mass = mean over the block's tokens")
check([b["tokens"] for b in blk] == [3, 4, 5, 4], "json: block sizes")

# ---- entropy from full probabilities when attend's statistics are absent ----
only_probs = []
for d in docs:
    only_probs.append(dict(d, tensors=[t for t in d["tensors"]
                                       if t["name"] not in ("attn.entropy", "attn.mass",
                                                            "attn.visible")]))
p = run(["entropy", "-f", "tsv", "-b", "head,token"], ak.pack_stream(only_probs))
text_out = p.stdout.decode().split("\n\n")
ok = p.returncode == 0
for name, r in refs.items() if ok else []:
    heads = [line.split("\t") for chunk in text_out for line in chunk.splitlines()
             if line.startswith(name + "\t") and len(line.split("\t")) == 8]
    ok &= [row[1] for row in heads] == ["1"] * H
    ok &= np.allclose([float(row[3]) for row in heads], r["ent"][1].mean(-1), rtol=1e-4)
    toks = [line.split("\t") for chunk in text_out for line in chunk.splitlines()
            if line.startswith(name + "\t") and len(line.split("\t")) == 12]
    ok &= np.allclose([float(row[9]) for row in toks], corrected(r, slice(1, 2)), rtol=1e-4,
                      atol=1e-6)
check(ok, "entropy from attn.probs.1 alone: layer 1's head entropies and corrected mass")

# ---- entropy: stream ----
p = run(["entropy"], stream)
out = ak.docs_of(p.stdout)
check(p.returncode == 0 and all("score.token" in d for d in out.values()),
      "stream: score.token added")
for name, r in refs.items():
    check(np.allclose(out[name]["score.token"], corrected(r), rtol=1e-4, atol=1e-6),
          f"{name}: score.token is the corrected mass")
    check(len(out[name]["score.block"]) == 4, f"{name}: score.block per block")
scored = p.stdout

# ---- prune: every policy keeps the protected question and the specials ----
POLICIES = ["score", "mass", "query", "entropy", "heavy", "random", "first", "last"]
for unit in ["token", "sentence", "block"]:
    for pol in POLICIES:
        p = run(["prune", "--keep", "0.4", "--policy", pol, "--unit", unit,
                 "--protect-regex", "Question:.*"], scored)
        ok = p.returncode == 0
        for name, r in refs.items() if ok else []:
            d = ak.docs_of(p.stdout)[name]
            keep = d["keep"].astype(bool)
            q = r["offs"][:, 0] >= r["text"].index("Question:")
            q &= r["offs"][:, 0] < r["offs"][:, 1]
            ok &= bool(keep[q].all()) and bool(keep[r["special"] == 1].all())
            ok &= len(d["tokens"]) == keep.sum() and bytes(d["text"]) == r["text"].encode()
            ok &= np.array_equal(d["offsets"], r["offs"][keep])
            ok &= not any(k.startswith("attn.") or k == "hidden.final" for k in d)
            # dropped spans cover exactly the bytes of the dropped tokens
            covered = np.zeros(len(r["text"]), bool)
            for a, b in d["dropped"]:
                covered[a:b] = True
            for (a, b), k in zip(r["offs"], keep):
                if a < b:
                    ok &= bool(covered[a:b].all()) != bool(k)
            budget = round(0.4 * r["T"])
            ok &= keep.sum() <= max(budget, (q | (r["special"] == 1)).sum() + 6)
        check(ok, f"prune --policy {pol} --unit {unit}: question, specials kept; spans exact")

# mass policy at token level equals numpy's top-k of the corrected mass
p = run(["prune", "--keep", "0.5", "--policy", "mass", "--unit", "token", "--no-protect-query"],
        stream)
for name, r in refs.items():
    keep = ak.docs_of(p.stdout)[name]["keep"].astype(bool)
    c = corrected(r)
    budget = int(math.floor(0.5 * r["T"] + 0.5))
    cand = [i for i in np.argsort(-c, kind="stable") if r["special"][i] == 0]
    want = r["special"] == 1
    want[cand[:budget - want.sum()]] = True
    check(np.array_equal(keep, want), f"{name}: mass keeps the top corrected-mass tokens")

# query policy: the scores are the mean attention of the question's rows
p = run(["prune", "--keep", "0.5", "--policy", "query", "--unit", "token"], stream)
r = refs["bidir.txt"]
d = ak.docs_of(p.stdout)["bidir.txt"]
qrows = r["seg"] == 3
s = r["p"][1][:, qrows, :].mean(axis=(0, 1))
budget = int(math.floor(0.5 * r["T"] + 0.5))
fixed = (r["special"] == 1) | qrows
cand = [i for i in np.argsort(-s, kind="stable") if not fixed[i]]
want = fixed.copy()
want[cand[:budget - fixed.sum()]] = True
check(np.array_equal(d["keep"].astype(bool), want),
      "query: rows of the last block, averaged over heads (numpy)")

# ---- score: cosine of mean-pooled hidden.final, target log-likelihood ----
full = ak.docs_of(stream)
pr = run(["prune", "--keep", "0.5", "--policy", "first"], stream)
pruned_docs = []
for name in refs:
    d = ak.docs_of(pr.stdout)[name]
    hf = full[name]["hidden.final"][d["keep"].astype(bool)] * 0.5 + 0.1
    pruned_docs.append(ak.doc(name, [ak.tensor("tokens", d["tokens"]),
                                     ak.tensor("hidden.final", hf.astype(np.float32))]))
open_dir = os.environ.get("TMPDIR", "/tmp")
fpath = os.path.join(open_dir, f"ep_full_{os.getpid()}.s")
ppath = os.path.join(open_dir, f"ep_pruned_{os.getpid()}.s")
with open(fpath, "wb") as f:
    f.write(stream)
with open(ppath, "wb") as f:
    f.write(ak.pack_stream(pruned_docs))
p = run(["score", fpath, ppath], b"")
rows = [line.split("\t") for line in p.stdout.decode().splitlines()]
ok = p.returncode == 0 and len(rows) == 4
for row in rows[1:] if ok else []:
    a = full[row[0]]["hidden.final"].mean(0)
    b = ak.docs_of(ak.pack_stream(pruned_docs))[row[0]]["hidden.final"].mean(0)
    want = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    ok &= abs(float(row[4]) - want) < 1e-5
check(ok, "score: cosine of mean-pooled hidden.final (numpy)")

# causal LM: log-likelihood of the continuation from per-position logits
V = 7
text = "ab cd ef"
offs = np.array([[0, 2], [3, 5], [6, 8]], np.int64)
toks = np.array([1, 4, 6], np.int32)
lg = rng.normal(size=(3, V)).astype(np.float32)
lg2 = rng.normal(size=(3, V)).astype(np.float32)


def lm_doc(logits):
    return ak.doc("lm.txt", [ak.tensor("text", np.frombuffer(text.encode(), np.uint8)),
                             ak.tensor("tokens", toks), ak.tensor("offsets", offs),
                             ak.tensor("logits", logits)])


def logsm(x):
    return x - x.max() - math.log(np.exp(x - x.max()).sum())


with open(fpath, "wb") as f:
    f.write(ak.pack_stream([lm_doc(lg)]))
with open(ppath, "wb") as f:
    f.write(ak.pack_stream([lm_doc(lg2)]))
tpath = fpath + ".target"
with open(tpath, "w") as f:
    f.write("cd ef")
p = run(["score", "--target", tpath, fpath, ppath], b"")
rows = [line.split("\t") for line in p.stdout.decode().splitlines()]
want_full = logsm(lg[0].astype(np.float64))[4] + logsm(lg[1].astype(np.float64))[6]
want_pr = logsm(lg2[0].astype(np.float64))[4] + logsm(lg2[1].astype(np.float64))[6]
check(p.returncode == 0 and abs(float(rows[1][5]) - want_full) < 1e-3 and
      abs(float(rows[1][7]) - (want_pr - want_full)) < 1e-3,
      "score --target: log-likelihood of the continuation tokens (numpy log-softmax)")
with open(tpath, "w") as f:
    f.write("zz")
p = run(["score", "--target", tpath, fpath, ppath], b"")
check(p.returncode == 65 and p.stderr.decode().startswith("score: "),
      "score --target: a text that does not end with the target is refused")
for x in (fpath, ppath, tpath):
    os.unlink(x)
sys.exit(tap.status())
