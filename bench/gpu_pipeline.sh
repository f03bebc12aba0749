#!/bin/sh
# bench/gpu_pipeline.sh DEBDIR OUTDIR - on a GPU machine without the Debian
# -dev packages: unpacks the .deb files in DEBDIR (msgpack-c, jansson, pcre2,
# utf8proc, openblas), builds the programs against them with CUDA, and checks
# that `attend --device cuda` gives what `attend --device cpu` gives on the
# tiny models of every family in tests/model, then times both on long prompts.
set -eu
debs=$1 out=${2:-.}
deps=/tmp/attnkit-deps
mkdir -p $deps
for f in "$debs"/*.deb; do dpkg -x "$f" $deps; done
L=$deps/usr/lib/x86_64-linux-gnu
make -j16 B=build/gpu OUT_BIN=build/gpu/bin \
  PKG_CFLAGS="-I$deps/usr/include -I$deps/usr/include/x86_64-linux-gnu/openblas-pthread" \
  PKG_LIBS="-L$L -L$L/openblas-pthread -Wl,-rpath,$L -Wl,-rpath,$L/openblas-pthread -lmsgpackc -ljansson -lpcre2-8 -lutf8proc -lopenblas -lz" \
  build/gpu/bin/embed build/gpu/bin/attend build/gpu/bin/peek >/dev/null
export PATH="$PWD/build/gpu/bin:$PATH"
python3 - "$out" <<'PY'
import os, subprocess, sys, time
import numpy as np
sys.path.insert(0, "tests/py")
import akstream as s
out = sys.argv[1]
rng = np.random.default_rng(7)
def run(model, tokens, device, probs=True, dtype="f32"):
    import json
    cfg = json.load(open(os.path.join(model, "config.json")))
    vocab = cfg["vocab_size"]
    ids = (tokens % vocab).astype(np.int32)
    stream = s.pack_stream([s.doc("d", [s.tensor("tokens", ids)])], model={"vocab_size": vocab})
    emb = subprocess.run(["embed", "-m", model], input=stream, capture_output=True, check=True).stdout
    args = ["attend", "-m", model, "--device", device, "--hidden", "--attn-dtype", dtype] + (["--probs", "all"] if probs else [])
    t0 = time.time()
    r = subprocess.run(args, input=emb, capture_output=True)
    dt = time.time() - t0
    if r.returncode:
        raise SystemExit(f"attend {device} on {model}: {r.stderr.decode().strip()}")
    return s.docs_of(r.stdout)["d"], dt
def rel(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b.astype(np.float64)), 1e-30))
worst = 0.0
lines = []
for name in sorted(os.listdir("tests/model")):
    model = os.path.join("tests/model", name)
    if not os.path.isfile(os.path.join(model, "config.json")):
        continue
    toks = rng.integers(0, 1 << 30, 40)
    for dtype, bound in (("f32", 1e-5), ("bf16", 1e-3)):
        cpu, _ = run(model, toks, "cpu", dtype=dtype)
        gpu, _ = run(model, toks, "cuda", dtype=dtype)
        for t in sorted(cpu):
            if t.startswith(("attn.", "hidden")) and cpu[t].dtype.kind == "f":
                e = rel(gpu[t], cpu[t])
                if dtype == "f32":
                    worst = max(worst, e)
                lines.append(f"{'ok' if e <= bound else 'not ok'} - {name} {dtype} {t}: cuda vs cpu rel {e:.2e}")
for l in lines:
    print(l)
print(f"# worst f32 cuda-vs-cpu relative error: {worst:.2e}")
# Timing: a long prompt through a tiny causal model, attention dominant.
for name in ("llama_gqa_llama3", "mistral_swa_sharded"):
    model = os.path.join("tests/model", name)
    for T in (2048, 8192):
        toks = rng.integers(0, 1 << 30, T)
        try:
            _, tc = run(model, toks, "cpu", probs=False)
            _, tg = run(model, toks, "cuda", probs=False)
            print(f"# {name} T={T}: attend cpu {tc:.2f} s, cuda {tg:.2f} s (whole process, 16-core host)")
        except SystemExit as e:
            print(f"# {name} T={T}: {e}")
PY
