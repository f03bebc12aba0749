"""Issue 19's attention policies against numpy over attend --probs (attend
itself is checked against transformers elsewhere), on the tiny GQA model
(6 query heads over 2 KV heads) and a 40-token document of three blocks:

  * attend --mass-rows SPAN: attn.mass_last is the column sums of exactly
    the query span's rows (the last block; the blocks holding a marker; the
    tokens a regex matches, first to last), meta mass_last_w = the rows,
    mass_rows_first / _last = the span; prune -p query from it alone equals
    prune -p query from attn.probs with the same span;
  * prune --unit-score max / topK / mean: a block's score is the max, the
    mean of the K highest, the mean of its tokens' scores;
  * prune --sinks N: the first N tokens' scores are left out of their
    unit's score (a unit of sinks only: 0);
  * prune --heads FILE: the query scores are the mean over the named
    (layer, head) pairs, from attn.probs and from attn.mass_last alike;
  * prune --position-baseline FILE: the query scores minus the baseline
    at each token's relative position, interpolated, divided by T;
  * prune --keep-numbers (-u word, all-MiniLM-L6-v2's tokens): under every
    budget "30 days", "Version 2, June 1991", "Mark Adler" are kept or
    dropped whole, where plain words split some of them;
  * the errors: one line, the exit status of the kind of error."""
import os
import sys
import tempfile

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402
import tap  # noqa: E402
from tap import check, run  # noqa: E402

GQA = os.path.join(TOP, "tests", "model", "llama_gqa_llama3")
tmp = tempfile.mkdtemp(prefix="ak_query_policies.")

IDS = [(5 * i * i + 7 * i + 3) % 128 for i in range(40)]
SEG = [0] * 10 + [1] * 20 + [2] * 10
text, offs = "", []
for i in range(40):
    if i:
        text += "\n\n" if SEG[i] != SEG[i - 1] else " "
    offs.append((len(text), len(text) + len("w%d" % i)))
    text += "w%d" % i


def stream(with_text=True):
    ts = [s.tensor("tokens", np.array(IDS, np.int32)),
          s.tensor("offsets", np.array(offs, np.int64).reshape(-1, 2)),
          s.tensor("segments", np.array(SEG, np.int32))]
    if with_text:
        ts.append(s.tensor("text", np.frombuffer(text.encode(), np.uint8)))
    return s.pack_stream([s.doc("d", ts)])


def first(data):
    recs = [r for r in s.read_records(data) if r.get("type") == "doc"]
    return recs[0]["meta"], s.docs_of(data)[recs[0]["id"]]


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def drop(data, prefix):
    import msgpack
    recs = s.read_records(data)
    for r in recs:
        if r.get("type") == "doc":
            r["tensors"] = [t for t in r["tensors"] if not t["name"].startswith(prefix)]
    return b"".join(msgpack.packb(r, use_bin_type=True) for r in recs)


_, emb, err = run(["embed", "-m", GQA], stream())
rc, full, err = run(["attend", "-m", GQA, "--probs", "all"], emb)
check(rc == 0, "attend --probs all on the tiny GQA model " + err.strip())
_, fd = first(full)
L = sum(1 for k in fd if k.startswith("attn.probs.") and not k.endswith(".heads"))
P = np.stack([fd["attn.probs.%d" % l].astype(np.float64) for l in range(L)])  # [L, H, T, T]
H = P.shape[1]

# ---- attend --mass-rows ----
for spec, r0, r1 in [("last", 30, 39), ("marker:w15", 10, 29), ("regex:w3[2-4]", 32, 34),
                     ("regex:w(5|7)\\b", 5, 7)]:
    rc, out, err = run(["attend", "-m", GQA, "--mass-rows", spec], emb)
    if not check(rc == 0, "--mass-rows %s runs %s" % (spec, err.strip())):
        continue
    meta, d = first(out)
    want = P[:, :, r0:r1 + 1, :].sum(2)
    check(meta.get("mass_last_w") == r1 - r0 + 1 and meta.get("mass_rows_first") == r0 and
          meta.get("mass_rows_last") == r1,
          "--mass-rows %s: rows %d-%d recorded (%s)" % (spec, r0, r1,
                                                      {k: meta.get(k) for k in ("mass_last_w", "mass_rows_first", "mass_rows_last")}))
    check(rel(d["attn.mass_last"], want) <= 1e-5,
          "--mass-rows %s: attn.mass_last = the column sums of rows %d-%d of attn.probs (%.2g)"
          % (spec, r0, r1, rel(d["attn.mass_last"], want)))

# prune -p query: the marker's span from attn.mass_last alone = from attn.probs
rc, mr, err = run(["attend", "-m", GQA, "--mass-rows", "marker:w15", "--probs", "all"], emb)
pq = ["prune", "-p", "query", "-u", "token", "-k", "0.5", "--query-marker", "w15"]
rc1, a, e1 = run(pq, mr)
rc2, b, e2 = run(pq, drop(mr, "attn.probs."))
_, da = first(a)
_, db = first(b)
check(rc1 == 0 and rc2 == 0 and list(da["keep"]) == list(db["keep"]) and
      rel(db["dropped.score"], da["dropped.score"]) <= 1e-5,
      "prune -p query: --mass-rows' attn.mass_last gives the scores and selection of attn.probs "
      "over the same span %s %s" % (e1.strip(), e2.strip()))

for args, code, what in [(["--mass-rows", "last", "--mass-last", "4"], 64, "both"),
                         (["--mass-rows", "first"], 64, "expected last"),
                         (["--mass-rows", "marker:"], 64, "expected last"),
                         (["--mass-rows", "marker:nowhere"], 65, "no query span")]:
    rc, out, err = run(["attend", "-m", GQA] + args, emb)
    check(rc == code and what in err and err.count("\n") == 1,
          "attend %s: exit %d, one line (%s)" % (" ".join(args), code, err.strip()))
rc, out, err = run(["attend", "-m", GQA, "--mass-rows", "last"], run(["embed", "-m", GQA], stream(False))[1])
check(rc == 65 and "text" in err and err.count("\n") == 1,
      "--mass-rows on a document without text: exit 65 naming it (%s)" % err.strip())


# ---- --unit-score, --sinks ----
# four blocks of 10 tokens: the question is the last; one of the others fits
# a budget of 20, the best by the unit score
SEG4 = [i // 10 for i in range(40)]
text4, offs4 = "", []
for i in range(40):
    if i:
        text4 += "\n\n" if SEG4[i] != SEG4[i - 1] else " "
    offs4.append((len(text4), len(text4) + len("w%d" % i)))
    text4 += "w%d" % i
four = s.pack_stream([s.doc("d", [s.tensor("tokens", np.array(IDS, np.int32)),
                                  s.tensor("offsets", np.array(offs4, np.int64).reshape(-1, 2)),
                                  s.tensor("segments", np.array(SEG4, np.int32)),
                                  s.tensor("text", np.frombuffer(text4.encode(), np.uint8))])])
rc, full4, err = run(["attend", "-m", GQA, "--probs", "all"], run(["embed", "-m", GQA], four)[1])


def qscore(heads=None):
    """numpy: the query span's (the last block's) rows, mean over layers,
    heads (or the named pairs) and rows."""
    rows = P[:, :, 30:, :].mean(2)      # [L, H, T]
    if heads is None:
        return rows.mean((0, 1))
    return np.mean([rows[l, h] for l, h in heads], 0)


def spans(per_token, dropped):
    """dropped.score: the mean over each run of dropped tokens of their
    units' scores."""
    out, cur = [], []
    for i, x in enumerate(dropped):
        if x:
            cur.append(per_token[i])
        elif cur:
            out.append(np.mean(cur))
            cur = []
    if cur:
        out.append(np.mean(cur))
    return np.array(out)


tok = qscore()
for args, f, sinks in [([], np.mean, 0), (["--unit-score", "mean"], np.mean, 0),
                       (["--unit-score", "max"], np.max, 0),
                       (["--unit-score", "top3"], lambda x: np.sort(x)[-3:].mean(), 0),
                       (["--unit-score", "top50"], np.mean, 0),
                       (["--sinks", "3"], np.mean, 3), (["--sinks", "3", "--unit-score", "max"], np.max, 3),
                       (["--sinks", "10", "--unit-score", "top2"], lambda x: np.sort(x)[-2:].mean(), 10)]:
    rc, out, err = run(["prune", "-p", "query", "-u", "block", "-n", "20"] + args, full4)
    if not check(rc == 0, "prune -u block %s runs %s" % (" ".join(args), err.strip())):
        continue
    _, d = first(out)
    ub = [f(tok[max(10 * b, sinks):10 * b + 10]) if 10 * b + 10 > sinks else 0.0 for b in range(3)]
    per_token = np.array([ub[i // 10] if i < 30 else 0.0 for i in range(40)])
    keep = d["keep"].astype(bool)
    kept = [b for b in range(3) if keep[10 * b]]
    want = spans(per_token, ~keep)
    check(kept == [int(np.argmax(ub))] and rel(d["dropped.score"], want) <= 1e-5,
          "-u block %s: the blocks score %s, block %s is kept (%s)"
          % (" ".join(args) or "(default)", ["%.4g" % x for x in ub], kept,
             ["%.4g" % x for x in d["dropped.score"]]))
rc, out, err = run(["prune", "-p", "query", "-u", "token", "-k", "0.5", "--sinks", "1"], full)
_, d = first(out) if rc == 0 else ({}, {})
check(rc == 0 and not d["keep"][0], "--sinks 1 -u token: token 0 is dropped first (%s)" % err.strip())

for args, what in [(["-p", "random", "--sinks", "2"], "go with"),
                   (["-p", "query", "-u", "token", "--unit-score", "max"], "own unit"),
                   (["-p", "query", "--unit-score", "top0"], "--unit-score"),
                   (["-p", "query", "--unit-score", "median"], "expected mean")]:
    rc, out, err = run(["prune", "-k", "0.5"] + args, full)
    check(rc == 64 and what in err and err.count("\n") == 1,
          "prune %s: exit 64 (%s)" % (" ".join(args), err.strip()))

# ---- --heads ----
hf = os.path.join(tmp, "heads.txt")
pairs = [(0, 1), (1, 4), (1, 5)]
with open(hf, "w") as f:
    f.write("# layer head\n0 1\n\n1 4   # a comment\n 1 5\n")
rc, ml, err = run(["attend", "-m", GQA, "--mass-rows", "last"], emb)
want = qscore(pairs)
for name, data in [("attn.probs", full), ("attn.mass_last", ml)]:
    rc, out, err = run(["prune", "-p", "query", "-u", "token", "-k", "0.5", "--heads", hf], data)
    if not check(rc == 0, "--heads from %s runs %s" % (name, err.strip())):
        continue
    _, d = first(out)
    dropped = ~d["keep"].astype(bool)
    # each dropped span's score is the mean of its tokens' scores
    check(rel(d["dropped.score"], spans(want, dropped)) <= 1e-5,
          "--heads from %s: the query scores are the mean over the 3 named heads (%.2g)"
          % (name, rel(d["dropped.score"], spans(want, dropped))))
for content, code, what in [("0 1\n1 x\n", 65, ":2: expected"), ("0 1 2\n", 65, ":1: expected"),
                            ("# nothing\n", 65, "names no head"), ("0 6\n", 65, "head 6"),
                            ("9 0\n", 65, "layer 9")]:
    with open(hf, "w") as f:
        f.write(content)
    rc, out, err = run(["prune", "-p", "query", "-k", "0.5", "--heads", hf], full)
    check(rc == code and what in err and err.count("\n") == 1,
          "--heads %r: exit %d (%s)" % (content, code, err.strip()))
rc, out, err = run(["prune", "-p", "query", "-k", "0.5", "--heads", os.path.join(tmp, "none")], full)
check(rc == 66 and err.count("\n") == 1, "--heads: a missing file, exit 66 (%s)" % err.strip())
rc, out, err = run(["prune", "-p", "mass", "-k", "0.5", "--heads", hf], full)
check(rc == 64 and "--policy query" in err, "--heads with -p mass: exit 64 (%s)" % err.strip())
# ---- --position-baseline ----
bf = os.path.join(tmp, "base.txt")
with open(bf, "w") as f:
    f.write("# pos value\n0.1 2.0\n0.5 0.5\n0.9 1.5\n")
T = 40
xs = np.arange(T) / T
base = np.interp(xs, [0.1, 0.5, 0.9], [2.0, 0.5, 1.5])    # nearest point outside, as np.interp
want = qscore() - base / T
rc, out, err = run(["prune", "-p", "query", "-u", "token", "-k", "0.5", "--position-baseline", bf], full)
if check(rc == 0, "--position-baseline runs " + err.strip()):
    _, d = first(out)
    keep = d["keep"].astype(bool)
    check(rel(d["dropped.score"], spans(want, ~keep)) <= 1e-5 and
          set(np.where(keep[:30])[0]) == set(np.argsort(-want[:30])[:10]),
          "--position-baseline: token i's query score loses the baseline at i/T over T "
          "(interpolated), and the best 10 of the context are kept")
for content, what in [("0.5 1\n0.4 2\n", ":2: expected"), ("1.5 1\n", ":1: expected"),
                      ("0.5 nan\n", ":1: expected"), ("\n", "no point")]:
    with open(bf, "w") as f:
        f.write(content)
    rc, out, err = run(["prune", "-p", "query", "-k", "0.5", "--position-baseline", bf], full)
    check(rc == 65 and what in err and err.count("\n") == 1,
          "--position-baseline %r: exit 65 (%s)" % (content, err.strip()))
rc, out, err = run(["prune", "-p", "mass", "-k", "0.5", "--position-baseline", bf], full)
check(rc == 64, "--position-baseline with -p mass: exit 64 (%s)" % err.strip())

# ---- --keep-numbers ----
sent = os.path.join(tmp, "num.txt")
with open(sent, "w") as f:
    f.write("Cure it within 30 days of notice. Version 2, June 1991 by Mark Adler and the Free "
            "Software Foundation (see 1,230 kilometres).\n")
rc, toks, err = run(["tokenize", "-m", "minilm", sent])
groups = ["30 days", "Version 2, June 1991", "Mark Adler", "Free Software Foundation", "1,230 kilometres"]


def kept_text(n, extra):
    rc, out, err = run(["prune", "-p", "first", "-n", str(n)] + extra, toks)
    if rc:
        return None
    rc, txt, err = run(["decode", "-m", "minilm", "--text"], out)
    return txt.decode() if rc == 0 else None


def broken(t):
    """a group cut: some of its words kept, not all"""
    return [g for g in groups if any(w in t.split() for w in g.replace(",", "").split()) and g not in t]


with_, without = [], []
for n in range(3, 30):
    t1, t2 = kept_text(n, ["--keep-numbers"]), kept_text(n, [])
    if t1 is None or t2 is None:
        with_.append((n, "failed"))
        continue
    with_ += [(n, g) for g in broken(t1)]
    without += [(n, g) for g in broken(t2)]
check(not with_, "--keep-numbers: with every budget, numbers with their units, dates and names "
      "are kept or dropped whole %s" % with_[:3])
check(any(g == "30 days" for _, g in without),
      "without it, some budget keeps \"30\" and drops \"days\" (%s)" % without[:3])
rc, out, err = run(["prune", "-p", "first", "-n", "5", "-u", "token", "--keep-numbers"], toks)
check(rc == 64 and "--unit word" in err, "--keep-numbers with -u token: exit 64 (%s)" % err.strip())
sys.exit(tap.status())
