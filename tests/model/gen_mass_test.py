"""kvcache --gen-mass and --targets, and prune's query policy from
attn.mass_last and attn.mass_gen (--query-rows):

  * attn.mass_gen for G generated tokens equals the column sums over the
    prompt keys of those G rows of attend --probs run on the prompt and
    the generated tokens together (attend is checked against references
    elsewhere): a GQA model, so the query heads are H, not the KV heads;
    also with G = N (the last token runs for its mass) and on a stream
    pruned before kvcache (T = the kept tokens);
  * gen_mass_rows: G, fewer when a stop token ends the answer;
  * --targets: each document's log-likelihood equals --target run on that
    document alone; ids match exactly or by base name without extension;
    escapes; a document without a line, --target with --targets: errors;
  * prune -p query without attn.probs uses attn.mass_last / rows; with the
    last W tokens as its query span it equals the attn.probs scores;
    --query-rows answer / both (the default with attn.mass_gen) equal the
    numpy means; errors name what is missing."""
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
SMOL = os.path.join(MODELS, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GQA = os.path.join(TOP, "tests", "model", "llama_gqa_llama3")
tmp = tempfile.mkdtemp(prefix="ak_gen_mass_test.")


def first(data):
    recs = [r for r in s.read_records(data) if r.get("type") == "doc"]
    return recs[0]["meta"], s.docs_of(data)[recs[0]["id"]]


def span_means(score, dropped):
    """dropped.score as prune writes it: the mean token score of each run
    of consecutive dropped tokens (the spans of this text never touch)."""
    out, run_ = [], []
    for i, dr in enumerate(dropped):
        if dr:
            run_.append(score[i])
        elif run_:
            out.append(np.mean(run_))
            run_ = []
    if run_:
        out.append(np.mean(run_))
    return np.array(out)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# a 40-token document with text, offsets and three blocks (10, 20, 10)
IDS = [(5 * i * i + 7 * i + 3) % 128 for i in range(40)]
SEG = [0] * 10 + [1] * 20 + [2] * 10
words = ["w%d" % i for i in range(40)]
text = ""
offs = []
for i, wd in enumerate(words):
    if i:
        text += "\n\n" if SEG[i] != SEG[i - 1] else " "
    offs.append((len(text), len(text) + len(wd)))
    text += wd


def stream(ids=IDS, n=40):
    return s.pack_stream([s.doc("d", [
        s.tensor("tokens", np.array(ids, np.int32)),
        s.tensor("offsets", np.array(offs[:n], np.int64).reshape(-1, 2)),
        s.tensor("segments", np.array(SEG[:n], np.int32)),
        s.tensor("text", np.frombuffer(text.encode(), np.uint8))])])


def probs_of(ids):
    data = s.pack_stream([s.doc("d", [s.tensor("tokens", np.array(ids, np.int32))])])
    rc, out, err = run(["attend", "-m", GQA, "--probs", "all"], run(["embed", "-m", GQA], data)[1])
    a = s.docs_of(out)["d"]
    L = sum(1 for k in a if k.startswith("attn.probs.") and not k.endswith(".heads"))
    return np.stack([a["attn.probs.%d" % l].astype(np.float64) for l in range(L)])


# ---- 1. attn.mass_gen against attend --probs ----

def gen_mass():
    for N, G in [(6, 4), (4, 4)]:
        rc, out, err = run(["kvcache", "-m", GQA, "--generate", str(N), "--gen-mass", str(G)],
                           stream())
        if not check(rc == 0, "--generate %d --gen-mass %d runs (%s)" % (N, G, err.strip())):
            continue
        meta, d = first(out)
        gen, mg = list(d["generated"]), d["attn.mass_gen"]
        P = probs_of(IDS + gen[:G])                   # [L, H, T+G, T+G]
        want = P[:, :, 40:40 + G, :40].sum(2)
        H = P.shape[1]
        check(mg.shape == (P.shape[0], H, 40) and H == 6,
              "attn.mass_gen is [L, H, T] over the 6 query heads (%s)" % (mg.shape,))
        check(meta.get("gen_mass_rows") == G and len(gen) == N,
              "gen_mass_rows %s = G, %d tokens generated" % (meta.get("gen_mass_rows"), len(gen)))
        check(mg.shape == want.shape and rel(mg, want) <= 1e-5,
              "N=%d G=%d: mass_gen equals the column sums of attend --probs' %d generated rows "
              "over the prompt keys (%.2g)" % (N, G, G, rel(mg, want) if mg.shape == want.shape
                                               else np.inf))
    # a stop token at once: no rows
    rc, out, err = run(["kvcache", "-m", GQA, "--generate", "6", "--gen-mass", "4"], stream())
    g0 = int(first(out)[1]["generated"][0])
    rc, out, err = run(["kvcache", "-m", GQA, "--generate", "6", "--gen-mass", "4", "--stop",
                        str(g0)], stream())
    meta, d = first(out)
    check(rc == 0 and meta.get("gen_mass_rows") == 0 and not d["attn.mass_gen"].any(),
          "a stop token first: gen_mass_rows 0, attn.mass_gen all zero")
    # a pruned stream: T = the kept tokens
    rc, pr, err = run(["prune", "-k", "0.5", "-u", "block", "-p", "first", "-P", "last"], stream())
    pm, pd = first(pr)
    kept = list(pd["tokens"])
    rc, out, err = run(["kvcache", "-m", GQA, "--generate", "3", "--gen-mass", "3"], pr)
    meta, d = first(out)
    gen, mg = list(d["generated"]), d["attn.mass_gen"]
    P = probs_of(kept + gen)
    T = len(kept)
    check(rc == 0 and T < 40 and mg.shape[2] == T and
          rel(mg, P[:, :, T:T + 3, :T].sum(2)) <= 1e-5,
          "a pruned stream: mass_gen over its %d kept tokens equals attend --probs' (%s)"
          % (T, err.strip()))
    for args, code, words_ in [(["--gen-mass", "2"], 64, "--generate"),
                               (["--generate", "2", "--gen-mass", "3"], 64, "more than")]:
        rc, out, err = run(["kvcache", "-m", GQA] + args, stream())
        check(rc == code and words_ in err and err.count("\n") == 1,
              "%s: exit %d (%s)" % (" ".join(args), code, err.strip()))


# ---- 2. prune -p query from mass_last and mass_gen ----

def query_rows():
    W = 10   # the last block: the query span
    rc, att, err = run(["attend", "-m", GQA, "--mass-last", str(W), "--probs", "all"],
                       run(["embed", "-m", GQA], stream())[1])
    meta, a = first(att)
    check(rc == 0 and meta.get("mass_last_w") == W, "attend --mass-last records mass_last_w %d"
          % W)
    L = a["attn.mass_last"].shape[0]

    def scores(data, extra=()):
        rc, out, err = run(["prune", "-p", "query", "-u", "token", "-k", "0.5"] + list(extra),
                           data)
        if rc:
            return None, None, err.strip()
        m, d = first(out)
        keep = d["keep"].astype(bool)
        return d["dropped.score"], m, ~keep

    def drop(name, data=att):
        recs = s.read_records(data)
        for r in recs:
            if r.get("type") == "doc":
                r["tensors"] = [t for t in r["tensors"] if not t["name"].startswith(name)]
        import msgpack
        return b"".join(msgpack.packb(r, use_bin_type=True) for r in recs)

    sp, mp, dp = scores(att)
    noprobs = drop("attn.probs.")
    sl, ml, dl = scores(noprobs)
    q_probs = np.stack([a["attn.probs.%d" % l][:, 30:, :].astype(np.float64).mean((0, 1))
                        for l in range(L)]).mean(0)
    q_last = a["attn.mass_last"].astype(np.float64).mean((0, 1)) / W
    check(sl is not None and rel(sl, span_means(q_last, dl)) <= 1e-5,
          "no attn.probs: the query scores are attn.mass_last / W, mean over layers and heads "
          "(%s)" % (ml if sl is None else "%.2g" % rel(sl, span_means(q_last, dl))))
    check(sp is not None and rel(sp, span_means(q_probs, dp)) <= 1e-5 and
          rel(q_last, q_probs) <= 1e-5 and list(dp) == list(dl),
          "with the last W tokens as the query span, attn.probs and attn.mass_last give the same "
          "scores and the same selection")
    check(ml.get("prune_query_rows") == "question", "prune_query_rows question")
    rc, out, err = run(["prune", "-p", "query", "-k", "0.5", "--query-rows", "answer"], noprobs)
    check(rc == 65 and "attn.mass_gen" in err and err.count("\n") == 1,
          "--query-rows answer without attn.mass_gen: exit 65 naming it (%s)" % err.strip())
    rc, out, err = run(["prune", "-p", "query", "-k", "0.5"], drop("attn.mass_last", noprobs))
    check(rc == 65 and "attn.mass_last" in err and "attn.probs" in err,
          "neither attn.probs nor attn.mass_last: exit 65 naming both (%s)" % err.strip())
    rc, out, err = run(["prune", "-p", "mass", "-k", "0.5", "--query-rows", "both"], noprobs)
    check(rc == 64, "--query-rows with -p mass: usage error (%s)" % err.strip())

    # the answer's rows: kvcache passes attn.mass_last on and adds attn.mass_gen
    rc, kv, err = run(["kvcache", "-m", GQA, "--generate", "5", "--gen-mass", "3"], noprobs)
    meta, k = first(kv)
    ans = k["attn.mass_gen"].astype(np.float64).mean((0, 1)) / 3
    for rows, want, name in [(None, 0.5 * (q_last + ans), "both"), (["--query-rows", "answer"],
                             ans, "answer"), (["--query-rows", "question"], q_last, "question")]:
        sc, m, dk = scores(kv, rows or [])
        check(sc is not None and m.get("prune_query_rows") == name and
              rel(sc, span_means(want, dk)) <= 1e-5,
              "%s: the %s rows' scores (%s)" % ("default" if rows is None else " ".join(rows),
                                                name, m if sc is None else
                                                "%.2g" % rel(sc, span_means(want, dk))))


# ---- 3. --targets (SmolLM2) ----

def targets():
    if not os.path.exists(SMOL):
        print("# skip --targets: no %s" % SMOL)
        return
    docs = {"alpha.txt": "The capital of France is", "dir/beta.md": "Two plus two makes"}
    paths = []
    for name, t in docs.items():
        p = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(t)
        paths.append(p)
    gold = {paths[0]: " Paris.\nYes", "beta": " four\tor 4 \\ ok"}
    tsv = os.path.join(tmp, "gold.tsv")
    with open(tsv, "w") as f:
        f.write("%s\t Paris.\\nYes\n" % paths[0])        # the exact id
        f.write("beta\t four\\tor 4 \\\\ ok\n")           # the base name without extension
        f.write("unused\tx\n")
    rc, toks, err = run(["tokenize", "-m", SMOL] + paths)
    rc, out, err = run(["kvcache", "-m", SMOL, "--targets", tsv], toks)
    check(rc == 0, "--targets runs over two documents (%s)" % err.strip())
    if rc:
        return
    got = {r["id"]: r["meta"] for r in s.read_records(out) if r.get("type") == "doc"}
    for p, key in zip(paths, [paths[0], "beta"]):
        tf = os.path.join(tmp, "t_" + os.path.basename(p))
        with open(tf, "w") as f:
            f.write(gold[key])
        one = run(["tokenize", "-m", SMOL, p])[1]
        rc, o1, err = run(["kvcache", "-m", SMOL, "--target", tf], one)
        m1 = first(o1)[0] if rc == 0 else {}
        m2 = got.get(p, {})
        check(rc == 0 and abs(m1.get("target_logprob", 0) - m2.get("target_logprob", 1)) < 1e-4
              and m1.get("target_tokens") == m2.get("target_tokens"),
              "%s: --targets gives --target's log-likelihood on the document alone (%s, %s)"
              % (os.path.basename(p), m1.get("target_logprob"), m2.get("target_logprob")))
    with open(tsv, "w") as f:
        f.write("beta\tx\n")
    rc, out, err = run(["kvcache", "-m", SMOL, "--targets", tsv], toks)
    check(rc == 65 and "alpha.txt" in err and err.count("\n") == 1,
          "a document with no line: exit 65 naming it (%s)" % err.strip())
    rc, out, err = run(["kvcache", "-m", SMOL, "--targets", tsv, "--target", tsv], toks)
    check(rc == 64, "--target with --targets: exit 64 (%s)" % err.strip())
    with open(tsv, "w") as f:
        f.write("beta\tbad \\q escape\n")
    rc, out, err = run(["kvcache", "-m", SMOL, "--targets", tsv], toks)
    check(rc == 65 and ":1:" in err, "a bad escape: exit 65 naming the line (%s)" % err.strip())


gen_mass()
query_rows()
targets()
sys.exit(tap.status())
