#!/bin/sh
# Untrusted model files and mismatched input: each is one clear line on
# stderr and a non-zero exit, never a crash (the sanitized build runs this).
. "$AK_TOP/tests/lib.sh"
M="$AK_TOP/tests/model/bert_tiny"

# A bad copy of bert_tiny: $1 = directory name, $2 = Python that edits
# `header` (the JSON dict) and/or `raw` (the whole file's bytes).
bad_model() {
    mkdir -p "$T/$1" && cp "$M/config.json" "$T/$1/" &&
    python3 - "$M/model.safetensors" "$T/$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
exec(sys.argv[3])
if "raw_out" not in dir():
    h = json.dumps(header).encode()
    raw_out = struct.pack("<Q", len(h)) + h + data
open(sys.argv[2], "wb").write(raw_out)
PY
}

tokens() { # ids... -> a token stream on stdout
    python3 -c '
import os, sys
sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
import akstream as s, numpy as np
sys.stdout.buffer.write(s.pack_stream([s.doc("d0", [s.tensor("tokens", np.array([int(a) for a in sys.argv[1:]], np.int32))])]))
' "$@"
}
tokens 1 2 3 4 5 >"$T/ok.ak"

ok "embed reads a good model" embed -m "$M" "$T/ok.ak"

bad_model truncated 'raw_out = raw[:len(raw) // 2]'
rejects "truncated safetensors" embed embed -m "$T/truncated" "$T/ok.ak"
grep -q "outside the data section" "$T/.err" && pass "truncation is named" || fail "truncation is named"

bad_model short 'raw_out = raw[:5]'
rejects "file shorter than its header length" embed embed -m "$T/short" "$T/ok.ak"

bad_model hugelen 'raw_out = struct.pack("<Q", 1 << 62) + raw[8:]'
rejects "absurd header length" embed embed -m "$T/hugelen" "$T/ok.ak"

bad_model pastend 'header["encoder.layer.0.output.dense.bias"]["data_offsets"] = [len(data) - 4, len(data) + 140]'
rejects "offsets past the end of the file" embed embed -m "$T/pastend" "$T/ok.ak"

bad_model shape 't = header["embeddings.word_embeddings.weight"]; t["shape"] = [t["shape"][0], t["shape"][1] + 1]'
rejects "shape does not match the byte range" embed embed -m "$T/shape" "$T/ok.ak"

bad_model overlap 'a = header["embeddings.LayerNorm.bias"]; b = header["embeddings.LayerNorm.weight"]; b["data_offsets"] = list(a["data_offsets"])'
rejects "overlapping tensors" embed embed -m "$T/overlap" "$T/ok.ak"
grep -q "overlap" "$T/.err" && pass "overlap is named" || fail "overlap is named"

bad_model negative 'header["embeddings.LayerNorm.bias"]["shape"] = [-36]'
rejects "negative dimension" embed embed -m "$T/negative" "$T/ok.ak"

bad_model dtype 'header["embeddings.LayerNorm.bias"]["dtype"] = "F33"'
rejects "unknown dtype" embed embed -m "$T/dtype" "$T/ok.ak"

bad_model notjson 'raw_out = struct.pack("<Q", 10) + b"{not json}" + data'
rejects "header is not JSON" embed embed -m "$T/notjson" "$T/ok.ak"

bad_model missing 'del header["encoder.layer.1.output.dense.weight"]'
rejects "missing tensor" embed embed -m "$T/missing" "$T/ok.ak"
grep -q "encoder.layer.1.output.dense.weight" "$T/.err" && pass "missing tensor is named" || fail "missing tensor is named"

bad_model wrongshape 'header["embeddings.position_embeddings.weight"]["shape"] = [36, 64]'
rejects "tensor shape differs from the config" embed embed -m "$T/wrongshape" "$T/ok.ak"

mkdir -p "$T/t5" && cp "$M/model.safetensors" "$T/t5/" &&
    sed 's/"model_type": "bert"/"model_type": "t5"/' "$M/config.json" >"$T/t5/config.json"
rejects "unknown architecture" embed embed -m "$T/t5" "$T/ok.ak"
grep -q '"t5"' "$T/.err" && pass "unknown architecture is named" || fail "unknown architecture is named"

mkdir -p "$T/shards" && cp "$M/config.json" "$M/model.safetensors" "$T/shards/" &&
    printf '{"weight_map": {"embeddings.LayerNorm.bias": "../bert_tiny/model.safetensors"}}' \
        >"$T/shards/model.safetensors.index.json"
rejects "shard index naming a file outside the directory" embed embed -m "$T/shards" "$T/ok.ak"

rejects "missing model directory" embed embed -m "$T/nonexistent" "$T/ok.ak"

# Config values that cannot describe a model: one line naming the problem.
L="$AK_TOP/tests/model/llama_gqa_llama3"
bad_config() { # name, python editing cfg
    mkdir -p "$T/$1" && cp "$L/model.safetensors" "$T/$1/" &&
    python3 -c 'import json, sys
cfg = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(cfg, open(sys.argv[2], "w"))' "$L/config.json" "$T/$1/config.json" "$2"
}
bad_config heads 'cfg["num_attention_heads"] = 5'
rejects "hidden size not a multiple of the heads" embed embed -m "$T/heads" "$T/ok.ak"
bad_config kvheads 'cfg["num_key_value_heads"] = 4'
rejects "heads not a multiple of the KV heads" embed embed -m "$T/kvheads" "$T/ok.ak"
bad_config act 'cfg["hidden_act"] = "mish"'
rejects "unsupported activation" embed embed -m "$T/act" "$T/ok.ak"
bad_config rope 'cfg["rope_scaling"]["rope_type"] = "yarn"'
rejects "unsupported RoPE scaling" embed embed -m "$T/rope" "$T/ok.ak"
grep -q yarn "$T/.err" && pass "the RoPE type is named" || fail "the RoPE type is named"
bad_config vocab 'cfg["vocab_size"] = "many"'
rejects "vocab_size not a number" embed embed -m "$T/vocab" "$T/ok.ak"
bad_config neg 'cfg["num_hidden_layers"] = -2'
rejects "negative layer count" embed embed -m "$T/neg" "$T/ok.ak"
bad_config types 'cfg["layer_types"] = ["full_attention"]'
rejects "layer_types of the wrong length" embed embed -m "$T/types" "$T/ok.ak"
bad_config notype 'del cfg["model_type"]'
rejects "config without model_type" embed embed -m "$T/notype" "$T/ok.ak"
mkdir -p "$T/cfgjunk" && cp "$L/model.safetensors" "$T/cfgjunk/" && printf '{"model_type": ' >"$T/cfgjunk/config.json"
rejects "config.json not JSON" embed embed -m "$T/cfgjunk" "$T/ok.ak"

tokens 1 2 120 >"$T/big.ak"
rejects "token id >= vocabulary size" embed embed -m "$M" "$T/big.ak"
grep -q "id 120 is outside" "$T/.err" && pass "the bad id is named" || fail "the bad id is named"
tokens 1 -3 >"$T/neg.ak"
rejects "negative token id" embed embed -m "$M" "$T/neg.ak"

embed -m "$M" "$T/ok.ak" >"$T/bert.ak"
rejects "stream embedded for another model" embed embed -m "$AK_TOP/tests/model/gpt2_tiny" "$T/bert.ak"

done_testing
