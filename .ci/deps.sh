#!/bin/sh
# Installs what attnkit needs to build and test, when it is missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# Python packages used by tests and benchmarks (as references only) go into
# .cache/py, never into the system.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)

debs="build-essential pkg-config clang libclang-rt-14-dev perl man-db groff-base \
libmsgpack-dev zlib1g-dev libjansson-dev libpcre2-dev libutf8proc-dev libopenblas-dev"
py=${PYTHON:-python3}
# The tests' reference checks need a Python with pip; a fresh Debian has
# neither until they are installed.
if ! "$py" -m pip --version >/dev/null 2>&1; then
    debs="$debs python3 python3-pip"
fi
# tests/analysis/report.t opens report's page in headless Chromium (with a font for
# its screenshots); without root the test skips that part, so these are
# installed as root and only mentioned otherwise.
browser_debs="chromium fonts-dejavu-core"
missing=""
for p in $debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
for p in $browser_debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" && continue
    if [ "$(id -u)" = 0 ]; then
        missing="$missing $p"
    else
        echo "deps: $p is not installed: tests/analysis/report.t skips its browser checks" \
             "(as root: apt-get install -y --no-install-recommends $p)" >&2
    fi
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "deps: installing$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null 2>&1 || apt-get update
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "deps: missing Debian packages; run as root:" >&2
        echo "  apt-get install -y$missing" >&2
        exit 1
    fi
fi

# Python references for the tests (numpy, msgpack, tokenizers) in .cache/py.
pydir="$top/.cache/py"
if ! PYTHONPATH="$pydir" "$py" -c "import numpy, msgpack, tokenizers" 2>/dev/null; then
    if ! command -v "$py" >/dev/null 2>&1; then
        echo "deps: python3 is needed for the tests' reference checks" >&2
        exit 1
    fi
    echo "deps: installing numpy msgpack tokenizers into $pydir" >&2
    "$py" -m pip install -q --disable-pip-version-check --target "$pydir" \
        numpy msgpack tokenizers >/dev/null
fi
# llama.cpp's own GGUF reader and dequantization, the reference of
# tests/model/gguf_test.py: pure Python; at import it needs numpy and pyyaml only
# (requests and tqdm are imported lazily by code the tests do not use).
if ! PYTHONPATH="$pydir" "$py" -c "import gguf, yaml" 2>/dev/null; then
    echo "deps: installing gguf==0.19.0 pyyaml into $pydir" >&2
    "$py" -m pip install -q --disable-pip-version-check --target "$pydir" --no-deps \
        gguf==0.19.0 pyyaml >/dev/null
fi
