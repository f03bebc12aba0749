"""kvcache against references:

  * greedy generation equals Hugging Face generate (do_sample=False) token
    for token: SmolLM2-135M-Instruct on 5 chat prompts (64 new tokens; the
    prompts from tokenize --chat equal apply_chat_template's) and every
    tiny model (goldens by tests/model/make_generate_goldens.py);
  * the cache file read by an independent reader written from
    formats/kvcache.md: ids, positions, keys equal to attend --kv's, mass
    equal to attend's attn.mass and mass_last to attend --mass-last's
    summed over each KV head's query heads (and attend --mass-last equal to
    the last W rows of attn.probs);
  * each eviction policy keeps, per (layer, KV head), the entries the
    policy's definition picks from those scores; protected tokens stay;
  * --extend on a saved cache equals running everything at once (target
    log-likelihood, generated tokens); --target under an evicted cache
    differs from the full cache's, under a budget that evicts nothing it
    is the same;
  * bad input: a cache from another model, shapes that disagree with the
    model, a corrupt and a truncated file, --generate on an encoder, a
    budget below the protected tokens: one line, the table's exit code."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402

MODELS = os.environ.get("ATTNKIT_MODELS_DIR", os.path.join(TOP, ".cache", "models"))
SMOL = os.path.join(MODELS, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
TINY = os.path.join(TOP, "tests", "model")
tmp = tempfile.mkdtemp(prefix="ak_kvcache_test.")
import tap  # noqa: E402
from tap import check  # noqa: E402


def run(args, data=b""):
    p = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def token_stream(docs):
    """docs: [(id, ids, segments or None)]"""
    out = []
    for i, ids, seg in docs:
        ts = [s.tensor("tokens", np.array(ids, np.int32))]
        if seg is not None:
            ts.append(s.tensor("segments", np.array(seg, np.int32)))
        out.append(s.doc(i, ts))
    return s.pack_stream(out)


def one_doc(data):
    return [r for r in s.read_records(data) if r.get("type") == "doc"]


from akcache import read_cache, sections, write_cache  # noqa: E402  (the independent reader of formats/kvcache.md)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if b.size else 0.0


# ---- 1. generation against Hugging Face ----

def goldens():
    path = os.path.join(TINY, "generate_goldens.json")
    cases = json.load(open(path))
    smol = [c for c in cases if c["model"] == "smollm2"]
    if smol and os.path.exists(SMOL):
        # the chat prompts as tokenize --chat renders them
        same = True
        for c in smol:
            f = os.path.join(tmp, "q.txt")
            open(f, "w").write(c["text"])
            rc, out, err = run(["tokenize", "-m", SMOL, "--chat", f])
            d = s.docs_of(out)
            same &= rc == 0 and list(next(iter(d.values()))["tokens"]) == c["prompt_ids"]
        check(same, "smollm2: tokenize --chat gives apply_chat_template's prompt ids (5 prompts)")
        data = token_stream([("q%d" % i, c["prompt_ids"], None) for i, c in enumerate(smol)])
        rc, out, err = run(["kvcache", "-m", SMOL, "--generate", "64"], data)
        check(rc == 0, "smollm2: kvcache --generate 64 on 5 prompts (%s)" % err.strip())
        d = s.docs_of(out) if rc == 0 else {}
        for i, c in enumerate(smol):
            got = list(d.get("q%d" % i, {}).get("generated", []))
            check(got == c["generated"], "smollm2 prompt %d: %d tokens equal HF generate's%s"
                  % (i, len(c["generated"]), "" if got == c["generated"] else
                     " (differ at %d: %s vs %s)" % (next((j for j in range(min(len(got), len(c["generated"])))
                                                          if got[j] != c["generated"][j]), -1),
                                                    got[:12], c["generated"][:12])))
        # decode --generated prints them (HF's tokenizer decoded them to this
        # when the goldens were made)
        rc, txt, err = run(["decode", "-m", SMOL, "--generated"], out)
        check(rc == 0 and txt.startswith(b"The capital of France is Paris.<|im_end|>"),
              "decode --generated prints the answers: %r" % txt[:60])
    elif smol:
        print("# skip smollm2 goldens: no %s" % SMOL)
    for c in cases:
        if c["model"] == "smollm2":
            continue
        m = os.path.join(TOP, c["model"])
        rc, out, err = run(["kvcache", "-m", m, "--generate", str(c["max_new"]), "--stop", "none"],
                           token_stream([("p", c["prompt_ids"], None)]))
        got = list(s.docs_of(out)["p"]["generated"]) if rc == 0 else err
        check(got == c["generated"], "%s: %d greedy tokens equal HF generate's (%s)"
              % (c["model"], c["max_new"], got if got != c["generated"] else "same"))


# ---- 2. the cache file and the scores in it ----

GQA = os.path.join(TINY, "llama_gqa_llama3")
IDS = [(5 * i * i + 7 * i + 3) % 128 for i in range(40)]
SEG = [0] * 10 + [1] * 20 + [2] * 10


def file_and_scores():
    W = 6
    f = os.path.join(tmp, "full.kv")
    data = token_stream([("d", IDS, SEG)])
    rc, out, err = run(["kvcache", "-m", GQA, "--evict", "snapkv", "--window", str(W),
                        "--keep", "1", "--save", f], data)
    check(rc == 0, "llama_gqa: a full cache saved (%s)" % err.strip())
    c = read_cache(f)
    rc, out, err = run(["attend", "-m", GQA, "--kv", "--mass-last", str(W), "--probs", "all"],
                       run(["embed", "-m", GQA], data)[1])
    a = s.docs_of(out)["d"]
    L, Hkv = c["L"], c["Hkv"]
    H = a["attn.mass"].shape[1]
    g = H // Hkv
    check(c["n"] == 40 and list(c["ids"]) == IDS and c["arch"] == "llama" and c["last_w"] == W,
          "the file covers the 40 ids, arch llama, last_w %d" % W)
    check(all(list(h["pos"]) == list(range(40)) for lay in c["layers"] for h in lay),
          "every head keeps positions 0..39")
    dk = max(rel(c["layers"][l][h]["k"], a["kv.k"][l, h]) for l in range(L) for h in range(Hkv))
    dv = max(rel(c["layers"][l][h]["v"], a["kv.v"][l, h]) for l in range(L) for h in range(Hkv))
    check(dk <= 1e-5 and dv <= 1e-5, "keys and values equal attend --kv's (%.2g, %.2g)" % (dk, dv))
    dm = max(rel(c["layers"][l][h]["mass"], a["attn.mass"][l, h * g:(h + 1) * g].sum(0))
             for l in range(L) for h in range(Hkv))
    check(dm <= 1e-5, "mass equals attend's attn.mass summed over each KV head's %d query heads "
          "(%.2g)" % (g, dm))
    dl = max(rel(c["layers"][l][h]["mass_last"], a["attn.mass_last"][l, h * g:(h + 1) * g].sum(0))
             for l in range(L) for h in range(Hkv))
    check(dl <= 1e-5, "mass_last equals attend --mass-last's summed the same way (%.2g)" % dl)
    want = np.stack([a["attn.probs.%d" % l][:, -W:, :].astype(np.float64).sum(1) for l in range(L)])
    d = rel(a["attn.mass_last"], want)
    check(d <= 1e-5, "attend --mass-last %d equals the last %d rows of attn.probs (%.2g)" % (W, W, d))
    return c


def policies(full):
    data = token_stream([("d", IDS, SEG)])
    budget, W, sink = 12, 6, 4
    for pol in ["streaming", "h2o", "snapkv", "random", "first", "last"]:
        f = os.path.join(tmp, pol + ".kv")
        rc, out, err = run(["kvcache", "-m", GQA, "--evict", pol, "--keep-tokens", str(budget),
                            "--window", str(W), "--sink", str(sink), "--save", f], data)
        if rc:
            check(False, "%s: %s" % (pol, err.strip()))
            continue
        meta = one_doc(out)[0]["meta"]
        c = read_cache(f)
        ok = meta["kv_entries"] == budget * c["L"] * c["Hkv"] and meta["kv_policy"] == pol
        for l in range(c["L"]):
            for h in range(c["Hkv"]):
                got = set(c["layers"][l][h]["pos"].tolist())
                fh = full["layers"][l][h]
                if pol == "streaming":
                    want = set(range(sink)) | set(range(40 - (budget - sink), 40))
                elif pol == "h2o":
                    recent = set(range(40 - budget // 2, 40))
                    rest = [j for j in np.lexsort((-np.arange(40), -fh["mass"])) if j not in recent]
                    want = recent | set(int(j) for j in rest[:budget - len(recent)])
                elif pol == "snapkv":
                    win = set(range(40 - W, 40))
                    ml = fh["mass_last"]
                    pooled = np.array([ml[max(0, j - 3):j + 4].max() for j in range(40)])
                    rest = [j for j in np.lexsort((-np.arange(40), -pooled)) if j not in win]
                    want = win | set(int(j) for j in rest[:budget - W])  # ties: the later
                elif pol == "first":
                    want = set(range(budget))
                elif pol == "last":
                    want = set(range(40 - budget, 40))
                else:
                    want = None
                ok &= len(got) == budget and (want is None or got == want)
        check(ok, "--evict %s --keep-tokens %d: each (layer, KV head) keeps what the policy "
              "picks" % (pol, budget))
    f = os.path.join(tmp, "prot.kv")
    rc, out, err = run(["kvcache", "-m", GQA, "--evict", "last", "--keep", "0.5", "--protect",
                        "first", "--save", f], data)
    c = read_cache(f) if rc == 0 else None
    check(c is not None and all(set(range(10)) <= set(h["pos"].tolist()) and len(h["pos"]) == 20
                                for lay in c["layers"] for h in lay),
          "--protect first keeps the first block in every head under --keep 0.5")
    rc, out, err = run(["kvcache", "-m", GQA, "--evict", "h2o", "--keep-tokens", "9",
                        "--protect", "first"], data)
    check(rc == 64 and err.count("\n") == 1 and "below the 10 protected" in err,
          "a budget below the protected tokens: exit 64, %s" % err.strip())


# ---- 3. extend and target (SmolLM2) ----

def extend_and_target():
    if not os.path.exists(SMOL):
        print("# skip extend/target: no %s" % SMOL)
        return
    sysf, qf, tf = (os.path.join(tmp, n) for n in ("sys.txt", "q.txt", "t.txt"))
    open(sysf, "w").write("Gutenberg printed a Bible in Mainz around 1455 with movable metal type.")
    open(qf, "w").write(" Question: where did Gutenberg print? Answer:")
    open(tf, "w").write(" In Mainz.")
    both = os.path.join(tmp, "both.txt")
    open(both, "w").write(open(sysf).read() + open(qf).read())
    tok = lambda f, *a: run(["tokenize", "-m", SMOL, "--no-special", *a, f])[1]  # noqa: E731
    p = os.path.join(tmp, "sys.kv")
    rc, out, err = run(["kvcache", "-m", SMOL, "--save", p, "--compress"], tok(sysf))
    check(rc == 0, "smollm2: the system text's cache saved, compressed (%s)" % err.strip())
    ids_sys = list(s.docs_of(tok(sysf)).popitem()[1]["tokens"])
    ids_q = list(s.docs_of(tok(qf)).popitem()[1]["tokens"])
    whole = token_stream([("d", ids_sys + ids_q, None)])
    part = token_stream([("d", ids_q, None)])
    rc1, o1, e1 = run(["kvcache", "-m", SMOL, "--target", tf, "--generate", "8"], whole)
    rc2, o2, e2 = run(["kvcache", "-m", SMOL, "--load", p, "--extend", "--target", tf,
                       "--generate", "8"], part)
    ok = rc1 == 0 and rc2 == 0
    m1 = one_doc(o1)[0] if ok else {}
    m2 = one_doc(o2)[0] if ok else {}
    lp1 = m1.get("meta", {}).get("target_logprob", 0)
    lp2 = m2.get("meta", {}).get("target_logprob", 1)
    check(ok and abs(lp1 - lp2) <= 1e-5 * abs(lp1),
          "--extend on the saved cache: the target's log-likelihood equals one run's (%.6f, %.6f)"
          % (lp1, lp2))
    g1 = s.docs_of(o1)["d"]["generated"].tolist() if ok else 1
    g2 = s.docs_of(o2)["d"]["generated"].tolist() if ok else 2
    check(g1 == g2, "--extend: the same 8 generated tokens (%s)" % g1)
    # eviction damage
    n = len(ids_sys) + len(ids_q)
    rc3, o3, e3 = run(["kvcache", "-m", SMOL, "--target", tf, "--evict", "h2o", "--keep-tokens",
                       str(n)], whole)
    rc4, o4, e4 = run(["kvcache", "-m", SMOL, "--target", tf, "--evict", "streaming",
                       "--keep-tokens", "8"], whole)
    lp3 = one_doc(o3)[0]["meta"]["target_logprob"] if rc3 == 0 else 0
    lp4 = one_doc(o4)[0]["meta"]["target_logprob"] if rc4 == 0 else lp1
    check(rc3 == 0 and abs(lp3 - lp1) <= 1e-5 * abs(lp1),
          "a budget that evicts nothing leaves the log-likelihood as it is (%.6f)" % lp3)
    check(rc4 == 0 and abs(lp4 - lp1) > 1e-3,
          "streaming at 8 entries per head changes it (%.4f vs %.4f nats)" % (lp4, lp1))
    # --load alone: the last token rerun gives the same continuation
    rc5, o5, e5 = run(["kvcache", "-m", SMOL, "--load", p, "--target", tf])
    rc6, o6, e6 = run(["kvcache", "-m", SMOL, "--target", tf], tok(sysf))
    lp5 = one_doc(o5)[0]["meta"]["target_logprob"] if rc5 == 0 else 0
    lp6 = one_doc(o6)[0]["meta"]["target_logprob"] if rc6 == 0 else 1
    check(abs(lp5 - lp6) <= 1e-5 * abs(lp6), "--load without a stream scores as the prompt's own "
          "run (%.6f, %.6f)" % (lp5, lp6))


# ---- 4. bad input ----

def with_layers(src, dst, layers):
    """src's cache claiming `layers` layers, the last one repeated: a
    well-formed file whose shapes are not the model's."""
    secs = sections(src)
    meta = bytearray(secs[0][1])
    have = struct.unpack_from("<I", meta, 8)[0]
    struct.pack_into("<I", meta, 8, layers)
    secs[0][1] = bytes(meta)
    lay = [x for x in secs if x[0] == b"LAYR"]
    lay = (lay + [lay[-1]] * layers)[:layers]
    write_cache(dst, [secs[0], secs[1]] + lay + [secs[-1]])
    return have


def bad_input():
    data = token_stream([("d", IDS[:20], None)])
    lk = os.path.join(tmp, "gqa.kv")
    run(["kvcache", "-m", GQA, "--save", lk], data)
    other = os.path.join(TINY, "llama_linear_headdim")
    rc, out, err = run(["kvcache", "-m", other, "--load", lk, "--generate", "2"])
    check(rc == 65 and err.count("\n") == 1 and "another model" in err,
          "a cache from another model: exit 65, %s" % err.strip())
    bad = os.path.join(tmp, "shape.kv")
    good = os.path.join(tmp, "rewritten.kv")
    have = with_layers(lk, good, 2)
    rc, out, err = run(["kvcache", "-m", GQA, "--load", good, "--generate", "2"])
    check(have == 2 and rc == 0, "the file rewritten by a writer from formats/kvcache.md loads (%s)"
          % err.strip())
    with_layers(lk, bad, 3)
    rc, out, err = run(["kvcache", "-m", GQA, "--load", bad, "--generate", "2"])
    check(rc == 65 and err.count("\n") == 1 and "disagree" in err and "3 layers" in err,
          "a well-formed cache whose shapes disagree with the model: exit 65, %s" % err.strip())
    b = bytearray(open(lk, "rb").read())
    b[len(b) // 2] ^= 0x10
    open(bad, "wb").write(bytes(b))
    rc, out, err = run(["kvcache", "-m", GQA, "--load", bad])
    check(rc == 65 and err.count("\n") == 1 and "LAYR" in err and "corrupt" in err,
          "a flipped byte: exit 65 naming the section, %s" % err.strip())
    open(bad, "wb").write(open(lk, "rb").read()[:-40])
    rc, out, err = run(["kvcache", "-m", GQA, "--load", bad])
    check(rc == 65 and err.count("\n") == 1 and "truncated" in err,
          "a truncated file: exit 65, %s" % err.strip())
    rc, out, err = run(["kvcache", "-m", os.path.join(TINY, "bert_tiny"), "--generate", "4"], data)
    check(rc == 78 and err.count("\n") == 1 and "not causal" in err,
          "--generate on an encoder: exit 78, %s" % err.strip())
    rc, out, err = run(["kvcache", "-m", GQA, "--save", lk],
                       token_stream([("a", IDS[:5], None), ("b", IDS[:5], None)]))
    check(rc == 64 and err.count("\n") == 1, "--save with two documents: exit 64, %s" % err.strip())
    rc, out, err = run(["kvcache", "-m", GQA, "--evict", "h2o"], data)
    check(rc == 64 and "budget" in err, "--evict without a budget: exit 64, %s" % err.strip())
    # sampling is seeded; top-p near 0 is greedy
    a = [run(["kvcache", "-m", GQA, "--generate", "8", "--stop", "none", "--temperature", "100",
              "--seed", sd], data)[1] for sd in ("1", "1", "2")]
    ga = [s.docs_of(x)["d"]["generated"].tolist() for x in a]
    greedy = s.docs_of(run(["kvcache", "-m", GQA, "--generate", "8", "--stop", "none"], data)[1])
    nucleus = s.docs_of(run(["kvcache", "-m", GQA, "--generate", "8", "--stop", "none",
                             "--temperature", "1", "--top-p", "1e-9"], data)[1])
    check(ga[0] == ga[1] and ga[0] != ga[2], "sampling: the same seed, the same tokens; another "
          "seed, others (%s, %s)" % (ga[0], ga[2]))
    check(nucleus["d"]["generated"].tolist() == greedy["d"]["generated"].tolist(),
          "--top-p 1e-9 samples the greedy tokens")


try:
    goldens()
    full = file_and_scores()
    policies(full)
    extend_and_target()
    bad_input()
finally:
    subprocess.run(["rm", "-rf", tmp])
sys.exit(tap.status())
