#!/usr/bin/env python3
"""bench/gpu_report.py OUTDIR ARCH QUICK COMMIT - the markdown report of one
`make gpu-check` run (bench/gpu_check.sh writes OUTDIR): the GPU, every
step's outcome, the worst CPU-vs-CUDA errors, and the rows for
bench/RESULTS.md in its tables' columns.  Only the standard library."""
import csv
import math
import os
import sys

out, arch, quick, commit = sys.argv[1:5]


def read(name):
    p = os.path.join(out, name)
    return open(p, errors="replace").read() if os.path.isfile(p) else ""


def tsv(name):
    text = read(name)
    rows = [r for r in csv.reader((l for l in text.splitlines() if l and not l.startswith("#")),
                                  delimiter="\t")]
    return rows[1:] if rows else []


gpu = read("gpu.txt").strip().splitlines()
print(f"# make gpu-check: {os.path.basename(out)}")
print()
print(f"Commit {commit}, built for sm_{arch}, GPU_CHECK_QUICK={quick}.  GPU (nvidia-smi): "
      f"{gpu[1] if len(gpu) > 1 else 'unknown'}.")
print()
print("## Steps")
print()
print("| outcome | step |")
print("|---|---|")
steps = [l.split("\t", 1) for l in read("steps.tsv").splitlines() if "\t" in l]
bad = 0
for rc, what in steps:
    ok = rc == "0"
    bad += not ok
    print(f"| {'passed' if ok else 'NOT RUN' if rc == 'not run' else f'FAILED ({rc})'} | {what} |")
print()
print("All steps passed: the device forward pass (ATTNKIT_CUDA_FORWARD) may be called verified "
      "on this GPU." if bad == 0 and steps else
      f"{bad} step(s) failed or did not run: the device forward pass stays unverified.")
worst = [l for l in read("gpu_agree.txt").splitlines() if l.startswith("# worst")]
failing = [l for l in read("gpu_agree.txt").splitlines() if l.startswith("not ok")]
if worst or failing:
    print()
    print("Worst CPU-vs-CUDA error per mode (max |cuda - cpu| / max |cpu| over hidden.final, "
          "attn.entropy, attn.mass, logits; tests/model/gpu_agree_test.py):")
    print()
    for l in worst:
        print(f"- {l[len('# worst '):]}")
    for l in failing[:20]:
        print(f"- {l}")

# ---- GPU attention ---------------------------------------------------------
rows = tsv("attention_gpu.tsv")
if rows:
    by = {}
    for r in rows:
        t, method, dt, ms, tf, ratio = r[:6]
        by[(int(t), method, dt)] = (float(ms), float(tf), float(ratio))

    def cell(t, method, dt, base=None):
        """ms and TFLOP/s, and with base (attnkit's method): base's time / this one's"""
        v = by.get((t, method, dt))
        if v is None:
            for (tt, m, d), val in by.items():   # "(n/a: ...)" and "(out of memory)" rows
                if tt == t and d == dt and m.startswith(method):
                    return m[len(method):].strip(" ()") or "n/a"
            return "—"
        ms, tf, _ = v
        if math.isnan(ms):
            return "n/a"
        s = f"{ms:.3g} ms, {tf:.0f} TFLOP/s"
        b = by.get((t, base[0], base[1])) if base else None
        if b and not math.isnan(b[0]):
            s += f": {b[0] / ms:.2g}×"
        return s

    tc = ("attnkit tc forward+entropy+mass", "bf16")
    f32 = ("attnkit cuda-core forward+entropy+mass", "f32")
    print()
    print("## Rows for bench/RESULTS.md: GPU attention (bench/attention_gpu.py)")
    print()
    print("Causal, 32 heads × 128, batch 1, median of 10 after a warm-up, inputs on the device. "
          "Ratio = attnkit's out+entropy+mass time (bf16 tensor cores; f32 CUDA cores in the "
          "second table) / the other's: how many times slower attnkit is.")
    print()
    print("| T | attnkit bf16 out+entropy | attnkit bf16 out+entropy+mass | cuDNN SDPA bf16 (out only) "
          "| flash SDPA bf16 | efficient SDPA bf16 | eager bf16 with probabilities |")
    print("|---|---|---|---|---|---|---|")
    for t in sorted({k[0] for k in by}):
        print(f"| {t:,}".replace(",", " ") + " | " + " | ".join([
            cell(t, "attnkit tc forward+entropy", "bf16"), cell(t, *tc),
            cell(t, "sdpa cudnn", "bf16", tc), cell(t, "sdpa flash", "bf16", tc),
            cell(t, "sdpa efficient", "bf16", tc),
            cell(t, "eager with probabilities", "bf16", tc)]) + " |")
    print()
    print("| T | attnkit f32 CUDA cores out+entropy+mass | efficient SDPA f32 | eager f32 with probabilities |")
    print("|---|---|---|---|")
    for t in sorted({k[0] for k in by}):
        print(f"| {t:,}".replace(",", " ") + " | " + " | ".join([
            cell(t, *f32), cell(t, "sdpa efficient", "f32", f32),
            cell(t, "eager with probabilities", "f32", f32)]) + " |")
elif read("attention_gpu_ours.txt"):
    print()
    print("## GPU attention: attnkit's kernels only (no PyTorch on this machine)")
    print()
    print("T, then ms: f32 out+entropy, f32 all, bf16 out+entropy, bf16 all, bf16 fast-pv out+entropy, "
          "bf16 fast-pv all:")
    print()
    print("```")
    print(read("attention_gpu_ours.txt").strip())
    print("```")

# ---- real models -------------------------------------------------------------
rows = tsv("gpu_model.tsv")
if rows:
    modes = ["cpu", "cuda attention", "cuda attention bf16", "cuda forward tf32",
             "cuda forward tf32 + bf16 attention"]
    cells, notes = {}, []
    for r in rows:
        r += [""] * (5 - len(r))
        model, t, mode, sec, note = r[:5]
        cells[(model, t, mode)] = float(sec)
        if note:
            notes.append(f"{model} T={t} {mode}: {note}")
    print()
    print("## Rows for bench/RESULTS.md: real models, whole attend processes (bench/gpu_model.py)")
    print()
    print("Seconds of one `attend --hidden` process (start, model load, weight upload and stream "
          "I/O included), same tokens; × = the CPU's time / this one's.")
    print()
    print("| model | T | " + " | ".join(modes) + " |")
    print("|---|---|" + "---|" * len(modes))
    for model, t in dict.fromkeys((k[0], k[1]) for k in cells):
        base = cells.get((model, t, "cpu"))
        row = []
        for m in modes:
            v = cells.get((model, t, m))
            if v is None or math.isnan(v):
                row.append("—" if v is None else "failed")
            elif base and m != "cpu" and not math.isnan(base):
                row.append(f"{v:.2f} s ({base / v:.1f}×)")
            else:
                row.append(f"{v:.2f} s")
        print(f"| {model} | {t} | " + " | ".join(row) + " |")
    for n in notes:
        print(f"- {n}")
