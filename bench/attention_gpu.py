#!/usr/bin/env python3
"""GPU attention, side by side in one run on one device: attnkit's CUDA kernel
(bf16 tensor cores and f32 CUDA cores: output + per-query entropy, then
per-key received mass) against
PyTorch's scaled_dot_product_attention (cuDNN, flash, efficient and math
backends, bf16 and f32) and against eager attention that materialises the
probabilities (what output_attentions=True does).  Causal, 32 heads x 128.
    python3 bench/attention_gpu.py BENCH_BINARY [T ...]
FLOP/s count the causal half of 4*T*T*Dh*H (QK^T and PV) for every method."""
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

binary = sys.argv[1]
lengths = [int(x) for x in sys.argv[2:]] or [1024, 4096, 16384]
H, D = 32, 128
dev = torch.device("cuda")
name = torch.cuda.get_device_name(0)


def flops(t):
    return 4.0 * t * t * D * H / 2


def timed(fn, reps=10):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def eager(q, k, v):
    s = (q @ k.transpose(-1, -2)) * (D ** -0.5)
    t = q.shape[-2]
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    p = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
    ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    mass = p.sum(-2)
    return p @ v, ent, mass


ours = {}
out = subprocess.run([binary] + [str(t) for t in lengths], capture_output=True, text=True)
if out.returncode != 0:
    sys.exit(out.stderr)
for line in out.stdout.split():
    pass
for line in out.stdout.splitlines():
    v = line.split()
    ours[int(v[0])] = [float(x) for x in v[1:]]

print(f"# device: {name}; causal, {H} heads x {D}; median of 10 after a warm-up")
print("T\tmethod\tdtype\tms\tTFLOP/s\tattnkit_bf16_all_ms/this_ms")
for t in lengths:
    rows = []
    o = ours[t]
    b = o[3]  # the reference for the ratio column: bf16 tensor cores, out+entropy+mass
    rows.append(("attnkit tc forward+entropy", "bf16", o[2]))
    rows.append(("attnkit tc forward+entropy+mass", "bf16", o[3]))
    rows.append(("attnkit tc fast-pv forward+entropy", "bf16", o[4]))
    rows.append(("attnkit tc fast-pv forward+entropy+mass", "bf16", o[5]))
    rows.append(("attnkit cuda-core forward+entropy", "f32", o[0]))
    rows.append(("attnkit cuda-core forward+entropy+mass", "f32", o[1]))
    for dtype, dn in ((torch.bfloat16, "bf16"), (torch.float32, "f32")):
        q, k, v = (torch.randn(1, H, t, D, device=dev, dtype=dtype) for _ in range(3))
        for backend, bn in ((SDPBackend.CUDNN_ATTENTION, "sdpa cudnn"),
                            (SDPBackend.FLASH_ATTENTION, "sdpa flash"),
                            (SDPBackend.EFFICIENT_ATTENTION, "sdpa efficient")):
            try:
                with sdpa_kernel(backend):
                    ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
                rows.append((bn, dn, ms))
            except Exception as e:  # backend not available for this dtype/shape
                rows.append((bn + f" (n/a: {type(e).__name__})", dn, float("nan")))
        try:
            ms = timed(lambda: eager(q, k, v), reps=3)
            rows.append(("eager with probabilities", dn, ms))
        except torch.OutOfMemoryError:
            rows.append(("eager with probabilities (out of memory)", dn, float("nan")))
        del q, k, v
        torch.cuda.empty_cache()
    for m, dn, ms in rows:
        tf = flops(t) / (ms * 1e-3) / 1e12 if ms == ms else float("nan")
        print(f"{t}\t{m}\t{dn}\t{ms:.3f}\t{tf:.1f}\t{b / ms if ms == ms else float('nan'):.2f}")
