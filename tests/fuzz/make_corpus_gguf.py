#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_gguf.c: small GGUF files made
by llama.cpp's own writer (gguf.GGUFWriter), each under the fuzzer's 4 KB
input limit.  Run with PYTHONPATH=.cache/py; the output is committed."""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT, GGUFValueType as VT

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_gguf")
rng = np.random.default_rng(11)


def tensor(w, name, qt, ne0, nrows):
    be, bb = gguf.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(nrows, ne0 // be * bb), dtype=np.uint8)
    if qt not in (QT.F32, QT.F16, QT.BF16):
        raw[:, :2] = [0x00, 0x3C]   # keep each first block's d at 1.0 (finite)
    w.add_tensor(name, raw, raw_dtype=qt)


def write(name, w, version=3):
    path = os.path.join(out, name)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(version.to_bytes(4, "little"))
    assert os.path.getsize(path) <= 4096, (name, os.path.getsize(path))


os.makedirs(out, exist_ok=True)

w = gguf.GGUFWriter(os.path.join(out, "llama_tiny.gguf"), "llama")
w.add_context_length(64)
w.add_embedding_length(64)
w.add_block_count(1)
w.add_head_count(2)
w.add_head_count_kv(1)
w.add_layer_norm_rms_eps(1e-5)
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("smollm")
w.add_token_list(["<|endoftext|>", "a", "b", "ab", "\u0120c", "<|im_start|>"])
w.add_token_types([3, 1, 1, 1, 1, 3])
w.add_token_merges(["a b"])
w.add_bos_token_id(0)
w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
tensor(w, "token_embd.weight", QT.Q8_0, 64, 6)
tensor(w, "output_norm.weight", QT.F32, 64, 1)
tensor(w, "blk.0.attn_q.weight", QT.Q4_1, 64, 4)
write("llama_tiny.gguf", w)

w = gguf.GGUFWriter(os.path.join(out, "kquants_a64.gguf"), "gemma3")
w.add_custom_alignment(64)
w.add_array("gemma3.attention.sliding_window_pattern", [True, False])
tensor(w, "q4_k", QT.Q4_K, 256, 1)
tensor(w, "q5_k", QT.Q5_K, 256, 1)
tensor(w, "q6_k", QT.Q6_K, 256, 1)
tensor(w, "q5_0", QT.Q5_0, 32, 2)
write("kquants_a64.gguf", w)

w = gguf.GGUFWriter(os.path.join(out, "values_v2.gguf"), "test")
w.add_uint8("t.u8", 200)
w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000)
w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000)
w.add_int32("t.i32", -2000000000)
w.add_float32("t.f32", 0.1)
w.add_bool("t.bool", True)
w.add_string("t.string", "h\u00e9llo")
w.add_uint64("t.u64", 2**64 - 1)
w.add_int64("t.i64", -(2**63))
w.add_float64("t.f64", -2.5e-300)
w.add_key_value("t.arr_u16", [1, 65535], VT.ARRAY, sub_type=VT.UINT16)
w.add_key_value("t.arr_f64", [0.1, -3.0], VT.ARRAY, sub_type=VT.FLOAT64)
w.add_array("t.arr_str", ["a", "", "ccc"])
w.add_array("t.nested", [[1, 2], [3]])
w.add_array("t.nested_str", [["x", "yz"], ["w"]])
tensor(w, "f16", QT.F16, 16, 2)
tensor(w, "bf16", QT.BF16, 8, 1)
tensor(w, "q4_0", QT.Q4_0, 32, 2)
tensor(w, "q5_1", QT.Q5_1, 64, 1)
write("values_v2.gguf", w, version=2)

w = gguf.GGUFWriter(os.path.join(out, "empty.gguf"), "none")
write("empty.gguf", w)
