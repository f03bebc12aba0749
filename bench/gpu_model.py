#!/usr/bin/env python3
"""The real models through whole `attend` processes on a GPU machine, same
tokens, in one run: on the CPU, with the attention on the device
(--device cuda: projections and MLPs still on the CPU), and with the whole
forward pass on the device (ATTNKIT_CUDA_FORWARD=1: TF32 GEMMs; with f32 and
bf16 attention).  Wall time of the attend process: start, model load (and
for the device forward, the weights' upload), stream I/O included; embed is
run once beforehand and not timed.  The CPU is skipped above 8192 tokens
(minutes).  bench/gpu_check.sh runs it (make gpu-check).  Exit 1 when a
model is missing or a run failed.  Prints TSV:
    model  T  mode  seconds  note
GPU_CHECK_QUICK=1: 2048 tokens only."""
import os
import subprocess
import sys
import time

import numpy as np

TOP = os.environ.get("AK_TOP", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402

MODELS = os.environ.get("ATTNKIT_MODELS_DIR", os.path.join(TOP, ".cache", "models"))
QUICK = os.environ.get("GPU_CHECK_QUICK") == "1"
FILES = [("SmolLM2-135M Q4_1", "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 8192),
         ("Gemma 3 270M Q4_K_M", "gemma3/gemma-3-270m-q4_k_m.gguf", 32768)]
MODES = [("cpu", "cpu", {}, "f32"),
         ("cuda attention", "cuda", {}, "f32"),
         ("cuda attention bf16", "cuda", {}, "bf16"),
         ("cuda forward tf32", "cuda", {"ATTNKIT_CUDA_FORWARD": "1"}, "f32"),
         ("cuda forward tf32 + bf16 attention", "cuda", {"ATTNKIT_CUDA_FORWARD": "1"}, "bf16")]


def main():
    bad = 0
    rng = np.random.default_rng(3)
    print("model\tT\tmode\tseconds\tnote")
    for name, f, max_t in FILES:
        path = os.path.join(MODELS, f)
        if not os.path.isfile(path):
            print(f"{name}\t-\t-\tnan\tnot installed ({path})")
            bad += 1
            continue
        lengths = [2048] if QUICK else [t for t in (2048, 8192, 32768) if t <= max_t]
        for T in lengths:
            ids = rng.integers(1000, 20000, T).astype(np.int32)
            toks = s.pack_stream([s.doc("d0", [s.tensor("tokens", ids)])])
            r = subprocess.run(["embed", "-m", path], input=toks, capture_output=True)
            if r.returncode:
                print(f"{name}\t{T}\tembed\tnan\t{r.stderr.decode().strip()}")
                bad += 1
                continue
            emb = r.stdout
            for mode, dev, env, dtype in MODES:
                # past 8192 tokens the CPU's share takes minutes: no CPU run, and
                # one attention-only run (its projections are the CPU's)
                if T > 8192 and (dev == "cpu" or mode == "cuda attention bf16"):
                    continue
                args = ["attend", "-m", path, "--device", dev, "--attn-dtype", dtype, "--hidden"]
                t0 = time.time()
                try:
                    r = subprocess.run(args, input=emb, capture_output=True, timeout=300,
                                       env={**os.environ, "ATTNKIT_CUDA_FORWARD": "0", **env})
                    dt = time.time() - t0
                    note = r.stderr.decode().strip()[:200] if r.returncode else ""
                    if r.returncode:
                        dt = float("nan")
                except subprocess.TimeoutExpired:
                    dt, note = float("nan"), "over 300 s"
                bad += dt != dt
                print(f"{name}\t{T}\t{mode}\t{dt:.2f}\t{note}")
                sys.stdout.flush()
    return 1 if bad else 0


sys.exit(main())
