#!/usr/bin/env python3
"""Benchmark of entropy and prune, side by side with numpy in the same run.

A synthetic document with attend's statistics of the default model's shape
(6 layers x 12 heads) at several lengths goes through `entropy` (stream:
corrected mass per token and block) and `entropy | prune --keep 0.5`; numpy
computes the same (mass / seers, mean over heads and layers, block means,
top-k under the budget) on arrays already in memory.  The C timings include
process start, reading and writing the stream; numpy_s does not,
numpy_io_s adds reading and writing the same stream with Python's msgpack.

usage: python3 bench/entropy_prune.py [--lengths 512,4096,32768] [--reps 5]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as ak  # noqa: E402

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the standard library
from machine import machine  # noqa: E402

BIN = os.environ.get("AK_BIN") or os.path.join(TOP, "bin")


def make_doc(T, rng, L=6, H=12):
    words = ["w%d" % i for i in range(T - 2)]
    text = " ".join(words).encode()
    offs, pos = [[0, 0]], 0
    for w in words:
        offs.append([pos, pos + len(w)])
        pos += len(w) + 1
    offs.append([len(text), len(text)])
    mass = rng.gamma(1.0, size=(L, H, T)).astype(np.float32)
    mass *= T / mass.sum(-1, keepdims=True)
    ent = (rng.uniform(0.1, 0.9, size=(L, H, T)) * np.log(T)).astype(np.float32)
    seg = np.array([-1] + [i // 40 for i in range(T - 2)] + [-1], np.int32)
    special = np.zeros(T, np.uint8)
    special[[0, -1]] = 1
    tensors = [ak.tensor("text", np.frombuffer(text, np.uint8)),
               ak.tensor("tokens", np.arange(T, dtype=np.int32)),
               ak.tensor("offsets", np.array(offs, np.int64)),
               ak.tensor("segments", seg), ak.tensor("special", special),
               ak.tensor("attn.entropy", ent), ak.tensor("attn.mass", mass)]
    return ak.pack_stream([ak.doc("bench", tensors)]), mass, seg, special


def numpy_side(mass, seg, special):
    T = mass.shape[-1]
    score = (mass / T).mean((0, 1))                      # bidirectional: T seers
    nb = seg.max() + 1
    blocks = np.bincount(seg[seg >= 0], weights=score[seg >= 0], minlength=nb) / \
        np.maximum(np.bincount(seg[seg >= 0], minlength=nb), 1)
    budget = int(np.floor(0.5 * T + 0.5))
    keep = special.astype(bool).copy()
    order = np.argsort(-score, kind="stable")
    order = order[~keep[order]]
    keep[order[:budget - keep.sum()]] = True
    return score, blocks, keep


def best(f, reps):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="512,4096,32768")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"# machine: {machine()}")
    print("# best of %d runs, seconds; ratio = attnkit / numpy (numpy: arrays in memory)" % a.reps)
    print("T\tentropy_s\tentropy+prune_s\tnumpy_s\tnumpy_io_s\tratio\tratio_io")
    with tempfile.TemporaryDirectory() as tmp:
        for T in [int(x) for x in a.lengths.split(",")]:
            data, mass, seg, special = make_doc(T, rng)
            path = os.path.join(tmp, "in.ak")
            with open(path, "wb") as f:
                f.write(data)
            ent = os.path.join(BIN, "entropy")
            prune = os.path.join(BIN, "prune")

            def c_entropy():
                subprocess.run(f"'{ent}' '{path}' > '{tmp}/e.ak'", shell=True, check=True)

            def c_both():
                subprocess.run(f"'{ent}' '{path}' | '{prune}' --keep 0.5 --unit token --no-protect-query > '{tmp}/p.ak'",
                               shell=True, check=True)

            te, tb = best(c_entropy, a.reps), best(c_both, a.reps)
            tn = best(lambda: numpy_side(mass, seg, special), a.reps)

            def numpy_io():  # the same through Python's msgpack: read, compute, write
                d = ak.docs_of(open(path, "rb").read())["bench"]
                _, blocks, keep = numpy_side(d["attn.mass"], d["segments"], d["special"])
                tensors = [ak.tensor(k, v) for k, v in d.items() if not k.startswith("attn.")]
                tensors.append(ak.tensor("keep", keep.astype(np.uint8)))
                with open(os.path.join(tmp, "n.ak"), "wb") as f:
                    f.write(ak.pack_stream([ak.doc("bench", tensors)]))

            tio = best(numpy_io, a.reps)
            # the two sides must agree before their times mean anything
            out = ak.docs_of(open(os.path.join(tmp, "p.ak"), "rb").read())["bench"]
            _, _, keep = numpy_side(mass, seg, special)
            assert np.array_equal(out["keep"].astype(bool), keep), "keep masks differ"
            print(f"{T}\t{te:.4f}\t{tb:.4f}\t{tn:.4f}\t{tio:.4f}\t{tb / tn:.2f}\t{tb / tio:.2f}")


if __name__ == "__main__":
    main()
