#!/bin/sh
# bench/gpu_check.sh OUTDIR [T ...] - on a machine with a CUDA device and nvcc
# (but perhaps none of the Debian -dev packages): builds the attention
# library alone, runs its unit test (CPU against CUDA in f32, bf16 and f16 on
# awkward sizes), the same test's small cases under compute-sanitizer, and
# the GPU benchmark against PyTorch.  Used with the lent GPU machine.
set -eu
out=${1:-.}
shift || true
b=build/gpu; mkdir -p "$b"
arch=${CUDA_ARCH:-90}
nv="nvcc -O3 -std=c++17 -Ilib -gencode arch=compute_$arch,code=sm_$arch"
for f in lib/cuda/*.cu; do
    $nv -c "$f" -o "$b/$(basename "$f" .cu)_cu.o" &
done
wait
# OpenBLAS only where its -dev package is (the lent machine may lack it)
blas="-DAK_NO_BLAS"; blaslib=""
if pkg-config --exists openblas 2>/dev/null; then blas="$(pkg-config --cflags openblas)"; blaslib="$(pkg-config --libs openblas)"; fi
cc="gcc -std=c11 -D_GNU_SOURCE -O3 -g -pthread -Ilib -DAK_HAVE_CUDA=1 $blas"
cuda=$(dirname "$(dirname "$(command -v nvcc)")")
libs="$b/*_cu.o -L$cuda/lib64 -lcudart -lstdc++ $blaslib -lm -pthread"
$cc -Itests -o $b/attention_test tests/unit/attention.c lib/attention.c lib/device.c lib/ak.c $libs
$cc -o $b/attention_gpu bench/attention_gpu.c lib/attention.c lib/device.c lib/ak.c $libs
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
rc=0
$b/attention_test > "$out/attention_test.txt" 2>&1 || rc=1
grep -v '^ok' "$out/attention_test.txt" || true
echo "unit test rc=$rc, $(grep -c '^ok' "$out/attention_test.txt") ok"
# the WMMA kernels (head sizes other than 64 and 128) on every case too
ATTNKIT_CUDA_WMMA=1 $b/attention_test > "$out/attention_test_wmma.txt" 2>&1 || rc=1
grep -v '^ok' "$out/attention_test_wmma.txt" || true
if command -v compute-sanitizer >/dev/null; then
    ATTNKIT_TEST_SMALL=1 timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
        $b/attention_test > "$out/sanitizer.txt" 2>&1 || rc=1
    tail -3 "$out/sanitizer.txt"
fi
$b/attention_test --bench | tee "$out/attention_bench_small.txt"
python3 bench/attention_gpu.py $b/attention_gpu ${*:-1024 4096 16384} | tee "$out/attention_gpu.tsv"
exit $rc
