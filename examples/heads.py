#!/usr/bin/env python3
"""examples/heads.py OUT MODEL HEADS_FILE [--split calibration] [--sizes 1000] [--top K]
                    [--baseline FILE]

Retrieval heads (Wu et al. 2024) for prune --heads, chosen on the
calibration items only: for each pqa item of the split, the question's rows
(attend --mass-rows last, the chat prompt as evaluate.py runs it), and per
(layer, head) the share of the question's attention on the context that
lands on the gold document, divided by the gold document's share of the
context's tokens (1: no preference; the sink and the chat template are not
context).  The K heads with the highest mean lift are written to
HEADS_FILE, one `LAYER HEAD` a line, best first, with their lift as a
comment; every head's lift goes to HEADS_FILE.tsv.

--baseline FILE: the positional calibration of "Found in the Middle"
(Hsieh et al. 2024) for prune --position-baseline: the attention the
question's rows (mean over layers and heads) give a token of an irrelevant
document (neither the gold nor the distractor), times T, in 20 bins of its
relative position i / T, the mean of each bin written as `POS VALUE` (POS
the bin's centre).
"""
import argparse
import csv
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from attnkit import stream  # noqa: E402

ENV = dict(os.environ, ATTNKIT_DEVICE="cpu",
           PATH=os.path.join(HERE, "..", "bin") + os.pathsep + os.environ.get("PATH", ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("model")
    ap.add_argument("heads_file")
    ap.add_argument("--split", default="calibration")
    ap.add_argument("--sizes", default="")
    ap.add_argument("--top", type=int, default=16)
    ap.add_argument("--baseline", default="")
    a = ap.parse_args()
    if a.split == "test":
        sys.exit("heads.py: heads are chosen on calibration items, never on test items")
    sizes = {x for x in a.sizes.split(",") if x}
    items = [r for r in csv.DictReader(open(os.path.join(a.out, "items.tsv")), delimiter="\t",
                                       quoting=csv.QUOTE_NONE)
             if r["task"] == "pqa" and r.get("split") == a.split and (not sizes or r["size"] in sizes)]
    if not items:
        sys.exit("heads.py: no pqa item in that split")
    files = [os.path.join(a.out, "pqa", r["name"] + ".txt") for r in items]
    p1 = subprocess.Popen(["tokenize", "-m", a.model, "--chat", "--segments", "paragraph"] + files,
                          stdout=subprocess.PIPE, env=ENV)
    p2 = subprocess.Popen(["embed", "-m", a.model], stdin=p1.stdout, stdout=subprocess.PIPE, env=ENV)
    p1.stdout.close()
    p3 = subprocess.run(["attend", "-m", a.model, "--mass-rows", "last"], stdin=p2.stdout,
                        capture_output=True, env=ENV)
    p2.wait()
    p1.wait()
    if p1.returncode or p2.returncode or p3.returncode:
        sys.exit("heads.py: the pipeline failed: " + p3.stderr.decode(errors="replace").strip())
    s = stream.read(p3.stdout)
    lifts = []
    nb = 20
    bsum, bcnt = np.zeros(nb), np.zeros(nb)
    for r, d in zip(items, s.docs):
        text = bytes(d["text"])                                # offsets are byte offsets
        off, seg = d["offsets"], d["segments"]
        m = d["attn.mass_last"].astype(np.float64)          # [L, H, T]
        answers = [x.lower() for x in (r.get("answers") or r["answer"]).split("|") if x]
        nblocks = int(seg.max()) + 1
        q = nblocks - 1                                        # the question: the last block
        gold = None
        for b in range(1, q):  # block 0 holds the instruction, then the documents
            idx = np.where(seg == b)[0]
            t = text[int(off[idx[0], 0]):int(off[idx[-1], 1])].decode("utf-8", "replace").lower()
            if any(x in t for x in answers):
                gold = b
        ctx = (seg >= 1) & (seg < q)
        ctx[0] = False                                         # the sink
        if gold is None or not ctx.any():
            print(f"heads.py: {r['name']}: no gold block found; skipped", file=sys.stderr)
            continue
        g = seg == gold
        share = g.sum() / ctx.sum()
        on_ctx = m[:, :, ctx].sum(-1)
        on_gold = m[:, :, g].sum(-1)
        lifts.append(np.where(on_ctx > 0, on_gold / np.maximum(on_ctx, 1e-30), 0) / share)
        import re
        dm = re.search(r"distractor, doc (\d+)", r["source"])
        irr = ctx & ~g & (seg != (int(dm.group(1)) if dm else -1))
        T = len(seg)
        tok = m.mean((0, 1)) / float(d.meta.get("mass_last_w", 1)) * T
        bins = np.minimum((np.arange(T) / T * nb).astype(int), nb - 1)
        np.add.at(bsum, bins[irr], tok[irr])
        np.add.at(bcnt, bins[irr], 1)
    if not lifts:
        sys.exit("heads.py: no item scored")
    lift = np.mean(lifts, 0)                                   # [L, H]
    L, H = lift.shape
    order = sorted(((lift[l, h], l, h) for l in range(L) for h in range(H)), reverse=True)
    with open(a.heads_file + ".tsv.tmp", "w") as f:
        f.write("layer\thead\tlift\n" + "".join(f"{l}\t{h}\t{v:.4f}\n" for v, l, h in order))
    os.replace(a.heads_file + ".tsv.tmp", a.heads_file + ".tsv")
    with open(a.heads_file + ".tmp", "w") as f:
        f.write(f"# retrieval heads of {a.model}: the {a.top} of {L * H} whose question rows put "
                f"the most on the gold document, over {len(lifts)} {a.split} pqa items "
                f"(examples/heads.py)\n")
        f.write("".join(f"{l} {h}  # lift {v:.3f}\n" for v, l, h in order[:a.top]))
    os.replace(a.heads_file + ".tmp", a.heads_file)
    if a.baseline:
        with open(a.baseline + ".tmp", "w") as f:
            f.write(f"# positional baseline of {a.model}: the question's attention on irrelevant "
                    f"documents' tokens x T by relative position, {len(lifts)} {a.split} pqa items "
                    f"(examples/heads.py)\n")
            f.write("".join(f"{(b + 0.5) / nb:.3f} {bsum[b] / bcnt[b]:.5f}\n" for b in range(nb)
                            if bcnt[b]))
        os.replace(a.baseline + ".tmp", a.baseline)
    print(f"heads.py: {len(lifts)} items; top lift {order[0][0]:.3f} (layer {order[0][1]} head "
          f"{order[0][2]}), median {float(np.median(lift)):.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
