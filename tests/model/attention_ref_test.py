#!/usr/bin/env python3
"""The attention routine (lib/model/attention.c through the unit binary's --run
driver) against an independent numpy implementation in float64: output,
per-query entropy (nats), per-key received mass and the probabilities, for
causal, bidirectional, sliding-window, grouped-query and continued (q_offset)
attention, in f32 and with bf16/f16-rounded inputs (rounded here by numpy)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

top = os.environ.get("AK_TOP", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
build = os.environ.get("AK_BUILD", os.path.join(top, "build", "asan"))
binary = os.path.join(build, "unit", "attention")
if not os.access(binary, os.X_OK):
    binary = os.path.join(top, "build", "rel", "unit", "attention")
failed = 0


def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed |= not cond


def round_bf16(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def reference(q, k, v, q_off, causal, window, scale):
    n_q, H, D = q.shape
    n_k, Hkv, _ = k.shape
    g = np.arange(H) // (H // Hkv)
    qd, kd, vd = q.astype(np.float64), k[:, g].astype(np.float64), v[:, g].astype(np.float64)
    s = np.einsum("ihd,jhd->hij", qd, kd) * np.float64(np.float32(scale))
    pos = q_off + np.arange(n_q)[:, None]
    j = np.arange(n_k)[None, :]
    vis = np.ones((n_q, n_k), bool)
    if causal:
        vis &= j <= pos
    if window:
        vis &= pos - j < window
    s = np.where(vis[None], s, -np.inf)
    s -= s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0).sum(-1)
    out = np.einsum("hij,jhd->ihd", p, vd)
    return out, ent, p.sum(1), p


def run(q, k, v, q_off, causal, window, scale, dtype, probs=True):
    n_q, H, D = q.shape
    n_k, Hkv, _ = k.shape
    with tempfile.TemporaryDirectory() as d:
        fin, fout = os.path.join(d, "in"), os.path.join(d, "out")
        with open(fin, "wb") as f:
            f.write(np.array([n_q, n_k, q_off, H, Hkv, D, causal, window, dtype], np.int32).tobytes())
            f.write(np.float32(scale).tobytes())
            f.write(np.int32(probs).tobytes())
            for a in (q, k, v):
                f.write(np.ascontiguousarray(a, np.float32).tobytes())
        env = dict(os.environ, ATTNKIT_DEVICE="cpu")
        r = subprocess.run([binary, "--run", fin, fout], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            return None, (r.stderr + r.stdout).strip()
        b = np.fromfile(fout, np.float32)
    sizes = [n_q * H * D, H * n_q, H * n_k] + ([H * n_q * n_k] if probs else [])
    parts, o = [], 0
    for n in sizes:
        parts.append(b[o:o + n].astype(np.float64))
        o += n
    return parts, ""


def rel(a, b, floor):
    return float(np.max(np.abs(a - b) / (np.abs(b) + floor))) if a.size else 0.0


rng = np.random.default_rng(20261123)
cases = [
    # name, n_q, n_k, q_off, H, Hkv, D, causal, window, amp
    ("causal 1 token", 1, 1, 0, 2, 2, 8, 1, 0, 1.0),
    ("causal 37 GQA 8/2 d64", 37, 37, 0, 8, 2, 64, 1, 0, 1.5),
    ("bidirectional 129 d80", 129, 129, 0, 4, 4, 80, 0, 0, 1.0),
    ("causal window 17, 200 tokens", 200, 200, 0, 4, 2, 32, 1, 17, 1.2),
    ("bidirectional window 9", 50, 50, 0, 2, 1, 16, 0, 9, 1.0),
    ("30 queries after 70 cached, GQA 6/3", 30, 100, 70, 6, 3, 24, 1, 0, 1.5),
    ("window 11 after 40 cached", 25, 65, 40, 3, 1, 40, 1, 11, 2.0),
    ("sharp rows (large scores)", 45, 45, 0, 2, 2, 16, 1, 0, 4.0),
]
if not os.access(binary, os.X_OK):
    print("not ok - the unit binary %s is missing (make asan)" % binary)
    sys.exit(1)
for name, n_q, n_k, q_off, H, Hkv, D, causal, window, amp in cases:
    q = (rng.uniform(-1, 1, (n_q, H, D)) * amp).astype(np.float32)
    k = (rng.uniform(-1, 1, (n_k, Hkv, D)) * amp).astype(np.float32)
    v = rng.uniform(-1, 1, (n_k, Hkv, D)).astype(np.float32)
    scale = 1 / np.sqrt(D)
    for dt, dn in ((0, "f32"), (1, "bf16"), (2, "f16")):
        if dt == 1:
            rq, rk, rv = round_bf16(q), round_bf16(k), round_bf16(v)
        elif dt == 2:
            rq, rk, rv = (a.astype(np.float16).astype(np.float32) for a in (q, k, v))
        else:
            rq, rk, rv = q, k, v
        ref = reference(rq, rk, rv, q_off, causal, window, scale)
        got, msg = run(q, k, v, q_off, causal, window, scale, dt)
        ok(got is not None, f"{name} {dn}: runs {msg}")
        if got is None:
            continue
        out, ent, mass, probs = got
        r = [rel(out, ref[0].ravel(), 5e-2), rel(ent, ref[1].ravel(), 1e-3),
             rel(mass, ref[2].ravel(), 1e-3), rel(probs, ref[3].ravel(), 1e-6)]
        # scores near 100 carry f32 rounding of ~100 * 6e-8 into each p
        tol = 1e-4 if amp >= 4 else 1e-5
        ok(max(r) < tol, f"{name} {dn}: out {r[0]:.2g}, entropy {r[1]:.2g}, mass {r[2]:.2g}, "
           f"probs {r[3]:.2g} (max rel vs numpy float64)")
        ok(abs(mass.sum() - H * n_q) < 1e-4 * H * n_q, f"{name} {dn}: mass sums to heads x queries")

# Errors, not crashes: a query that sees no key; heads not divisible.
q = rng.uniform(-1, 1, (3, 2, 8)).astype(np.float32)
got, msg = run(q, q, q, 5, 1, 0, 0.3, 0)
ok(got is None and "attention" in msg, f"causal queries past the keys: error ({msg})")
k = rng.uniform(-1, 1, (3, 3, 8)).astype(np.float32)
got, msg = run(q, k, k, 0, 1, 0, 0.3, 0)
ok(got is None and "bad shape" in msg, f"2 heads over 3 kv heads: error ({msg})")
sys.exit(1 if failed else 0)
