#!/bin/sh
# bench/gpu_check.sh - what `make gpu-check` runs, on a machine with a CUDA
# device and nvcc, in one go (at most about 8 minutes; GPU_CHECK_QUICK=1
# about 4; GPU_CHECK_BUDGET=SECONDS, default 480 or 300, after which the
# benchmarks not yet started are skipped):
#   1. the CUDA build into build/gpu (CUDA_ARCH, default 90);
#   2. the CUDA attention unit test (CPU against CUDA in f32, bf16 and f16 on
#      awkward sizes), again with the WMMA kernels for every head size, its
#      small cases under compute-sanitizer memcheck, and one opt-in device
#      forward pass (ATTNKIT_CUDA_FORWARD=1) per family under memcheck;
#   3. tests/model/gpu_agree_test.py: embed | attend --device cuda against
#      --device cpu for every model family, attention-only and whole-forward;
#   4. the benchmarks: the unit test's --bench, bench/attention_gpu.py
#      (attnkit's kernels beside PyTorch's SDPA and eager attention, when
#      PyTorch with CUDA is installed) and bench/gpu_model.py (real models,
#      whole processes, CPU against the device);
#   5. bench/results/gpu-DATE.md: the GPU (nvidia-smi), every test's tally
#      and the rows for bench/RESULTS.md; raw outputs in bench/results/gpu-DATE/.
# Without a device it stops at once with one line on stderr and exit 69
# (EX_UNAVAILABLE), building nothing.  The libraries come from pkg-config,
# or from the .deb files in GPU_CHECK_DEBS (a GPU machine without the
# Debian -dev packages: they are unpacked, not installed); with neither,
# only the attention library is built (step 2's unit test and the kernel
# benchmarks run, the rest is reported as not run).  Exit 0 only when
# everything ran and passed.
set -u
cd "$(dirname "$0")/.."
smi=${NVIDIA_SMI:-nvidia-smi}

no_device() { echo "make gpu-check: no CUDA device ($*)" >&2; exit 69; }
command -v "$smi" >/dev/null 2>&1 || no_device "nvidia-smi not found"
gpus=$("$smi" -L 2>&1) || no_device "nvidia-smi -L: $(printf '%s\n' "$gpus" | head -1)"
printf '%s\n' "$gpus" | grep -q '^GPU [0-9]' ||
    no_device "nvidia-smi -L lists none: $(printf '%s\n' "$gpus" | head -1)"
nvcc=${NVCC:-$(command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)}
[ -n "$nvcc" ] && [ -x "$nvcc" ] || { echo "make gpu-check: no nvcc (set NVCC)" >&2; exit 69; }

arch=${CUDA_ARCH:-90}
quick=${GPU_CHECK_QUICK:-0}
stamp=$(date -u +%Y-%m-%d-%H%M)
out=${GPU_CHECK_OUT:-bench/results/gpu-$stamp}
md=$out.md
mkdir -p "$out"
B=build/gpu
jobs=$(nproc 2>/dev/null || echo 4)
cuda_home=$(dirname "$(dirname "$nvcc")")
status=0
start=$(date +%s)
log() { echo "gpu-check: $* ($(( $(date +%s) - start ))s)"; }
# step NAME: records NAME's outcome (the exit status of the command before)
results=$out/steps.tsv
: >"$results"
step() { rc=$1; shift; printf '%s\t%s (done at %ss)\n' "$rc" "$*" $(( $(date +%s) - start )) >>"$results"
         [ "$rc" -eq 0 ] || status=1; }
notrun() { printf 'not run\t%s\n' "$*" >>"$results"; status=1; }
# The run's time budget (a lent GPU has 15 minutes in all): a benchmark that
# would start after it is skipped, and says so.
budget=${GPU_CHECK_BUDGET:-$([ "$quick" = 1 ] && echo 300 || echo 480)}
in_budget() { [ $(( $(date +%s) - start )) -lt "$budget" ] || { notrun "$* (past the ${budget}s budget, GPU_CHECK_BUDGET)"; false; }; }

"$smi" --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >"$out/gpu.txt" 2>&1
log "$(sed -n 2p "$out/gpu.txt"), sm_$arch, quick=$quick"

# ---- 1. build -------------------------------------------------------------
PKGS="msgpack jansson libpcre2-8 libutf8proc openblas zlib"
mk="make --no-print-directory -j$jobs B=$B OUT_BIN=$B/bin CUDA_ARCH=$arch NVCC=$nvcc"
full=1
if pkg-config --exists $PKGS 2>/dev/null; then
    $mk programs unit-bins gpu-bench-bins >"$out/build.txt" 2>&1
    step $? "CUDA build (make programs unit-bins, sm_$arch)"
elif [ -n "${GPU_CHECK_DEBS:-}" ]; then
    deps=$B/deps
    mkdir -p "$deps"
    for f in "$GPU_CHECK_DEBS"/*.deb; do dpkg -x "$f" "$deps"; done
    L=$PWD/$deps/usr/lib/x86_64-linux-gnu I=$PWD/$deps/usr/include
    $mk PKG_CFLAGS="-I$I -I$I/x86_64-linux-gnu/openblas-pthread" \
        PKG_LIBS="-L$L -L$L/openblas-pthread -Wl,-rpath,$L -Wl,-rpath,$L/openblas-pthread -lmsgpackc -ljansson -lpcre2-8 -lutf8proc -lopenblas -lz" \
        programs unit-bins gpu-bench-bins >"$out/build.txt" 2>&1
    step $? "CUDA build against the .deb files of $GPU_CHECK_DEBS (sm_$arch)"
else
    # the attention library alone (it needs none of the packages)
    full=0
    mkdir -p $B/unit $B/bench
    nv="$nvcc -O3 -std=c++17 -Xcompiler -fPIC -Iinclude -Ilib -gencode arch=compute_$arch,code=sm_$arch"
    for f in lib/cuda/*.cu; do $nv -c "$f" -o "$B/$(basename "$f" .cu)_cu.o" & done
    wait
    # the CUDA side is a plugin the library loads (lib/cuda/ak_cuda.h)
    plugin=$PWD/$B/libattnkit-cuda.so
    cc="${CC:-cc} -std=c11 -D_GNU_SOURCE -O3 -g -pthread -Iinclude -Ilib -DAK_HAVE_CUDA=1 -DAK_NO_BLAS"
    libs="-ldl -lm -pthread"
    { ${CC:-cc} -shared -fPIC -std=c11 -D_GNU_SOURCE -O3 -Iinclude -Ilib -o "$plugin" $B/*_cu.o lib/core/ak.c \
          -L$cuda_home/lib64 -Wl,-rpath,$cuda_home/lib64 -lcublas -lcudart -lstdc++ -lm -pthread &&
      $cc -DAK_CUDA_PLUGIN="\"$plugin\"" -Itests -o $B/unit/attention tests/unit/attention.c lib/model/attention.c \
          lib/model/device.c lib/core/ak.c lib/core/pool.c lib/core/simd.c $libs &&
      $cc -DAK_CUDA_PLUGIN="\"$plugin\"" -o $B/bench/attention_gpu bench/attention_gpu.c lib/model/attention.c \
          lib/model/device.c lib/core/ak.c lib/core/pool.c lib/core/simd.c $libs; } \
        >"$out/build.txt" 2>&1
    step $? "attention library only (pkg-config lacks $PKGS; set GPU_CHECK_DEBS for the rest)"
fi
if [ ! -x $B/unit/attention ]; then
    tail -20 "$out/build.txt" >&2
    log "the build failed: $out/build.txt"
    exit 1
fi
log "built"
# the test-time Python (numpy, msgpack) the model steps need
if [ $full = 1 ] && ! PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}" python3 -c 'import numpy, msgpack' 2>/dev/null; then
    notrun "the model steps: forward memcheck, tests/model/gpu_agree_test.py, bench/gpu_model.py (python3 lacks numpy or msgpack: pip install numpy msgpack)"
    full=0
fi

# ---- 2. the CUDA unit test, and memcheck ------------------------------------
tally() { echo "$(grep -c '^ok' "$1") ok, $(grep -c '^not ok' "$1") not ok"; }
timeout 300 $B/unit/attention >"$out/attention_test.txt" 2>&1
step $? "unit/attention (CUDA against CPU): $(tally "$out/attention_test.txt")"
small=$([ "$quick" = 1 ] && echo ATTNKIT_TEST_SMALL=1)   # quick: the WMMA pass on the small cases only
env ATTNKIT_CUDA_WMMA=1 $small timeout 300 $B/unit/attention >"$out/attention_test_wmma.txt" 2>&1
step $? "unit/attention with the WMMA kernels for every head size: $(tally "$out/attention_test_wmma.txt")"
# on a GPU machine the CUDA cases must have run, not been skipped
! grep -q 'skip no CUDA' "$out/attention_test.txt"
step $? "unit/attention ran its CUDA cases (no 'skip no CUDA device')"
log "unit test"
if command -v compute-sanitizer >/dev/null 2>&1; then
    san="compute-sanitizer --tool memcheck --error-exitcode 9"
    ATTNKIT_TEST_SMALL=1 timeout $([ "$quick" = 1 ] && echo 90 || echo 150) $san \
        $B/unit/attention >"$out/sanitizer.txt" 2>&1
    step $? "compute-sanitizer memcheck, unit/attention small cases: $(grep 'ERROR SUMMARY' "$out/sanitizer.txt" | tail -1)"
    if [ $full = 1 ]; then
        export PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
        fams="bert_tiny gpt2_tiny llama_gqa_llama3 mistral_swa_sharded qwen2_bias_bf16 gemma3_tiny"
        [ "$quick" = 1 ] && fams="bert_tiny llama_gqa_llama3 gemma3_tiny"
        for m in $fams; do
            python3 -c 'import sys; sys.path.insert(0, "tests/py"); import akstream as s, numpy as np
sys.stdout.buffer.write(s.pack_stream([s.doc("d0", [s.tensor("tokens", np.arange(40, dtype=np.int32) % 90)])]))' \
                >"$out/tokens.ak" &&
            $B/bin/embed -m tests/model/$m "$out/tokens.ak" >"$out/emb.ak" &&
            ATTNKIT_CUDA_FORWARD=1 timeout 120 $san $B/bin/attend -m tests/model/$m --device cuda \
                --hidden "$out/emb.ak" >/dev/null 2>"$out/sanitizer_forward_$m.txt"
            step $? "compute-sanitizer memcheck, device forward pass on $m: $(grep 'ERROR SUMMARY' "$out/sanitizer_forward_$m.txt" | tail -1)"
        done
        rm -f "$out/tokens.ak" "$out/emb.ak"
    fi
    log "memcheck"
else
    notrun "compute-sanitizer (not on the PATH)"
fi

# ---- 3. CPU against CUDA on every model family --------------------------------
if [ $full = 1 ]; then
    AK_TOP=$PWD PATH="$PWD/$B/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}" \
        ATTNKIT_DEVICE=cpu timeout 300 python3 tests/model/gpu_agree_test.py >"$out/gpu_agree.txt" 2>&1
    step $? "tests/model/gpu_agree_test.py (every family, attention-only and whole forward): $(tally "$out/gpu_agree.txt")"
    ! grep -q 'skip: no CUDA device' "$out/gpu_agree.txt"
    step $? "tests/model/gpu_agree_test.py found the device (no 'skip: no CUDA device')"
    grep '^not ok\|^# worst\|skip' "$out/gpu_agree.txt"
    log "agreement"
else
    notrun "tests/model/gpu_agree_test.py (no programs: the libraries are missing)"
fi

# ---- 4. benchmarks ------------------------------------------------------------
if in_budget "unit/attention --bench"; then
    timeout 120 $B/unit/attention --bench >"$out/attention_bench_small.txt" 2>&1
    step $? "unit/attention --bench"
fi
if [ "$quick" = 1 ]; then lens="1024 4096"; else lens="1024 4096 16384 32768"; fi
if ! in_budget "bench/attention_gpu.py"; then
    :
elif python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    timeout 240 python3 bench/attention_gpu.py $B/bench/attention_gpu $lens >"$out/attention_gpu.tsv" 2>"$out/attention_gpu.err"
    step $? "bench/attention_gpu.py $lens"
else
    $B/bench/attention_gpu $lens >"$out/attention_gpu_ours.txt" 2>&1
    step $? "bench/attention_gpu (attnkit's kernels only)"
    notrun "bench/attention_gpu.py (no PyTorch with CUDA: python3 -m pip install torch)"
fi
log "attention benchmark"
if [ $full = 1 ] && in_budget "bench/gpu_model.py"; then
    AK_TOP=$PWD PATH="$PWD/$B/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}" \
        GPU_CHECK_QUICK=$quick timeout $([ "$quick" = 1 ] && echo 120 || echo 240) python3 bench/gpu_model.py >"$out/gpu_model.tsv" 2>"$out/gpu_model.err"
    step $? "bench/gpu_model.py"
    log "model benchmark"
elif [ $full = 0 ]; then
    notrun "bench/gpu_model.py (no programs)"
fi

# ---- 5. the report ------------------------------------------------------------
python3 bench/gpu_report.py "$out" "$arch" "$quick" "$(git describe --always --dirty 2>/dev/null)" >"$md"
log "done: $md"
cat "$md"
exit $status
