#!/usr/bin/env python3
"""CPU attention, side by side in one run on one machine: attnkit's
ak_attention (f32: output + per-query entropy + per-key received mass, through
the unit binary's --run driver; the time is the call itself, measured inside
the process) against numpy (materialised probabilities, float32, head by head,
with entropy and mass) and PyTorch's CPU scaled_dot_product_attention (output
only) and eager attention with probabilities, when torch is installed.
Causal, H heads x D.  Median of REPS runs.
    python3 bench/attention_cpu.py [--heads H] [--dim D] [--reps N] T ..."""
import os
import sys

# bench/tokenize.py would shadow the standard module torch's import needs
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import argparse  # noqa: E402
import platform
import subprocess
import tempfile
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("lengths", nargs="*", type=int, default=[1024, 4096])
ap.add_argument("--heads", type=int, default=32)
ap.add_argument("--dim", type=int, default=128)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--binary", default="build/rel/unit/attention")
a = ap.parse_args()
H, D = a.heads, a.dim
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def ours(q, k, v, t):
    with tempfile.TemporaryDirectory() as d:
        fin, fout = os.path.join(d, "in"), os.path.join(d, "out")
        with open(fin, "wb") as f:
            f.write(np.array([t, t, 0, H, H, D, 1, 0, 0], np.int32).tobytes())
            f.write(np.float32(D ** -0.5).tobytes())
            f.write(np.int32(0).tobytes())
            for x in (q, k, v):
                f.write(x.tobytes())
        times = []
        for _ in range(a.reps):
            subprocess.run([a.binary, "--run", fin, fout], check=True,
                           env=dict(os.environ, ATTNKIT_DEVICE="cpu"))
            times.append(float(np.fromfile(fout, np.float64, offset=os.path.getsize(fout) - 8)[0]))
    return median(times)


def numpy_attn(q, k, v, t):
    mask = np.triu(np.ones((t, t), bool), 1)
    out = np.empty_like(q)
    for h in range(H):
        s = (q[:, h] @ k[:, h].T) * np.float32(D ** -0.5)
        s[mask] = -np.inf
        s -= s.max(-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            _ent = -np.where(p > 0, p * np.log(p), 0).sum(-1)
        _mass = p.sum(0)
        out[:, h] = p @ v[:, h]
    return out


def timed(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return median(ts)


print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
      f"causal, {H} heads x {D}, f32; median of {a.reps}"
      + (f"; torch {torch.__version__} with {torch.get_num_threads()} threads" if torch else "; no torch"))
print("T\tmethod\ts\tGFLOP/s\tthis_s/attnkit_s")
rng = np.random.default_rng(1)
for t in a.lengths:
    q, k, v = (rng.standard_normal((t, H, D), dtype=np.float32) for _ in range(3))
    flops = 4.0 * t * t * D * H / 2
    rows = [("attnkit out+entropy+mass", ours(q, k, v, t))]
    if t <= 8192:
        rows.append(("numpy materialised out+entropy+mass", timed(lambda: numpy_attn(q, k, v, t), 1)))
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(x).transpose(0, 1).contiguous() for x in (q, k, v))
        with torch.no_grad():
            rows.append(("torch sdpa (output only)", timed(
                lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=True), a.reps)))
            if t <= 8192:
                def eager():
                    s = (tq @ tk.transpose(-1, -2)) * D ** -0.5
                    m = torch.ones(t, t, dtype=torch.bool).triu(1)
                    p = torch.softmax(s.masked_fill(m, float("-inf")), -1)
                    return p @ tv, -(p * torch.log(p.clamp_min(1e-30))).sum(-1), p.sum(-2)
                rows.append(("torch eager with probabilities", timed(eager, 1)))
    base = rows[0][1]
    for name, s in rows:
        print(f"{t}\t{name}\t{s:.3f}\t{flops / s / 1e9:.1f}\t{s / base:.2f}", flush=True)
