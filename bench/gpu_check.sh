#!/bin/sh
# bench/gpu_check.sh OUTDIR - on a machine with a CUDA device and nvcc (but
# perhaps none of the Debian -dev packages): builds the attention library
# alone, runs its unit test (CPU against CUDA on awkward sizes) and the GPU
# benchmark against PyTorch.  Used with the lent GPU machine.
set -eu
out=${1:-.}
b=build/gpu; mkdir -p "$b"
nv="nvcc -O3 -std=c++17 -Ilib -gencode arch=compute_90,code=sm_90"
$nv -c lib/cuda/attention.cu -o $b/attention_cu.o
$nv -c lib/cuda/device.cu -o $b/device_cu.o
cc="gcc -std=c11 -D_GNU_SOURCE -O3 -g -pthread -Ilib -DAK_HAVE_CUDA=1"
cuda=$(dirname "$(dirname "$(command -v nvcc)")")
libs="$b/attention_cu.o $b/device_cu.o -L$cuda/lib64 -lcudart -lstdc++ -lm -pthread"
$cc -Itests -o $b/attention_test tests/unit/attention.c lib/attention.c lib/device.c lib/ak.c $libs
$cc -o $b/attention_gpu bench/attention_gpu.c lib/attention.c lib/device.c lib/ak.c $libs
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
$b/attention_test | tee "$out/attention_test.txt"
$b/attention_test --bench | tee "$out/attention_bench_small.txt"
python3 bench/attention_gpu.py $b/attention_gpu 1024 4096 16384 | tee "$out/attention_gpu.tsv"
