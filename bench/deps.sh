#!/bin/sh
# bench/deps.sh [DIR] - the reference implementations the GGUF benchmarks
# (bench/model_gguf.py, bench/generate_speed.py) compare attnkit against, in a
# virtual environment of their own (default .cache/bench-py): llama.cpp
# through llama-cpp-python, built from its PyPI source distribution so that
# llama.cpp is compiled for this machine's CPU (6.5 minutes on the 2-core VM, one core busy),
# with numpy and msgpack for the scripts.  PyTorch, transformers, accelerate
# and gguf only when asked (BENCH_TORCH=1): PyPI's torch brings gigabytes of
# CUDA libraries.  Does nothing when DIR already holds what is asked; prints
# a line per step with the time it took.  Only the benchmarks use this; the
# test suite never does.
set -eu
cd "$(dirname "$0")/.."
# the environment is the benchmarks' own, and they run it with PYTHONPATH
# empty: packages found through a PYTHONPATH (make bench's .cache/py holds
# numpy and msgpack) must neither satisfy pip nor pass the check below
unset PYTHONPATH
dir=${1:-.cache/bench-py}
py=$dir/bin/python
mods=llama_cpp,numpy,msgpack
pkgs="numpy msgpack"
if [ "${BENCH_TORCH:-0}" = 1 ]; then
    mods=$mods,torch,transformers,accelerate,gguf
    pkgs="$pkgs torch transformers accelerate gguf"
fi
if [ -x "$py" ] && "$py" -c "import $mods" 2>/dev/null; then
    exit 0
fi
start=$(date +%s)
step() { echo "bench/deps.sh: [$1/3] $2 ($(( $(date +%s) - start )) s so far)" >&2; }
step 1 "virtual environment $dir"
[ -x "$py" ] || python3 -m venv "$dir"
"$py" -m pip install --quiet --upgrade pip
step 2 "$pkgs"
"$py" -m pip install --quiet $pkgs
step 3 "llama-cpp-python, compiling llama.cpp from source (6.5 minutes measured on a 2-core VM)"
# llama.cpp's CMake build picks the host's instruction set (GGML_NATIVE);
# its tests, examples and tools are not needed
CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF}" \
    "$py" -m pip install --quiet --no-binary llama-cpp-python llama-cpp-python
"$py" -c "import $mods"
echo "bench/deps.sh: done in $(( $(date +%s) - start )) s" >&2
