#!/bin/sh
# bench/deps.sh [DIR] - the reference implementations that bench/model_gguf.py
# compares attnkit against, in a virtual environment of their own (default
# .cache/bench-py): PyTorch, transformers, accelerate and gguf (transformers
# dequantizes the GGUF files with it), and llama-cpp-python built from its
# PyPI source distribution, so that llama.cpp is compiled for this machine's
# CPU (the build takes a long time: 15-30 minutes on 2 cores).  numpy and
# msgpack for the benchmark script itself.  Does nothing when DIR already
# holds all of them.  Only the test-free benchmarks use this; the test suite
# never does.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-.cache/bench-py}
py=$dir/bin/python
if [ -x "$py" ] && "$py" -c 'import torch, transformers, accelerate, gguf, llama_cpp, numpy, msgpack' 2>/dev/null; then
    exit 0
fi
echo "bench/deps.sh: installing torch, transformers, accelerate, gguf and llama-cpp-python (from source) into $dir" >&2
[ -x "$py" ] || python3 -m venv "$dir"
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet numpy msgpack torch transformers accelerate gguf
# llama.cpp's CMake build picks the host's instruction set (GGML_NATIVE)
"$py" -m pip install --quiet --no-binary llama-cpp-python llama-cpp-python
"$py" -c 'import torch, transformers, accelerate, gguf, llama_cpp, numpy, msgpack'
