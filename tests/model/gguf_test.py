#!/usr/bin/env python3
"""The GGUF reader (lib/format/gguf.c) and the dequantization (lib/format/quant.c), through
the unit binary's driver modes, against llama.cpp's own Python package
`gguf` (gguf.GGUFReader and gguf.quants.dequantize):

  - a file written here by gguf.GGUFWriter (an independent writer) with every
    metadata value type, a nested array, and a tensor of each of the eleven
    supported types filled with random bytes (so every bit pattern of every
    block field is exercised, including the types the real models lack:
    F16, BF16, Q4_0, Q5_1, Q5_K);
  - both real models, SmolLM2-135M (Q4_1, Q8_0, F32) and Gemma 3 270M (Q5_0,
    Q4_K, Q6_K, Q8_0, F32): every metadata key, every tensor's name, type,
    shape and file offset, and every tensor's values.

Values must be bit-identical (NaN equal to NaN): ggml, the gguf package and
lib/format/quant.c all compute each element as the same float32 products and sums in
the same order, so there is no rounding difference to allow for.  To keep the
test fast, a tensor of more than MAX_ELEMS elements is compared on a sample of
its rows spread evenly from the first to the last (whole rows, so every block
position within a row is covered); all others are compared whole.
"""
import json
import mmap
import os
import subprocess
import sys
import tempfile

import numpy as np

top = os.environ.get("AK_TOP", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
build = os.environ.get("AK_BUILD", os.path.join(top, "build", "asan"))
binary = os.path.join(build, "unit", "gguf")
if not os.access(binary, os.X_OK):
    binary = os.path.join(top, "build", "rel", "unit", "gguf")
models = os.environ.get("AK_MODELS", os.path.join(top, ".cache", "models"))
MODELS = [
    os.path.join(models, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    os.path.join(models, "gemma3", "gemma-3-270m-q4_k_m.gguf"),
]
MAX_ELEMS = 1 << 16
failed = 0

try:
    import gguf
    from gguf import GGUFReader, GGUFValueType, GGMLQuantizationType as QT
    import gguf.quants
except ImportError as e:
    print(f"not ok - the gguf package is needed (make deps installs it into .cache/py): {e}")
    sys.exit(1)


def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed |= not cond
    return cond


def driver(*args, capture=True):
    r = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode:
        raise RuntimeError(f"{binary} {' '.join(args)}: exit {r.returncode}: {r.stderr.decode()}")
    return r.stdout


def flatten(v):
    """Our nested-array JSON ({"atype", "v"}) as the flat leaf list GGUFReader keeps."""
    if v["atype"] != GGUFValueType.ARRAY:
        return v["v"]
    out = []
    for x in v["v"]:
        out += flatten(x)
    return out


def ref_value(field, t):
    """A GGUFReader field's leaves in the driver's encoding (strings as hex)."""
    leaf = field.types[-1]
    parts = [field.parts[i] for i in field.data]
    if leaf == GGUFValueType.STRING:
        return [p.tobytes().hex() for p in parts]
    if not parts:
        return []
    # .tolist() turns numpy scalars into Python ints and floats (f32 exactly)
    return np.concatenate(parts).tolist()


def read_reference(path):
    """GGUFReader over a plain read-only ndarray instead of its np.memmap: the
    same parsing, without np.memmap's per-slice overhead (the reader takes
    over a million slices of a 262144-token vocabulary; 5x faster)."""
    real = np.memmap
    f = open(path, "rb")
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    f.close()
    np.memmap = lambda p, mode="r": np.frombuffer(m, dtype=np.uint8)
    try:
        return GGUFReader(path)
    finally:
        np.memmap = real


def check_meta(path, label):
    ours = {}
    for line in driver("--meta", path).decode().splitlines():
        d = json.loads(line)
        ours[bytes.fromhex(d["k"]).decode("utf-8", "replace")] = d
    reader = read_reference(path)
    ref = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    ok(list(ours) == list(ref), f"{label}: the same {len(ref)} metadata keys in the same order")
    bad = []
    for k, f in ref.items():
        d = ours.get(k)
        if d is None:
            continue
        if d["t"] != int(f.types[0]):
            bad.append(f"{k}: type {d['t']} vs {int(f.types[0])}")
            continue
        if f.types[0] == GGUFValueType.ARRAY:
            mine = flatten(d["v"])
            if d["v"]["atype"] != int(f.types[1]) and d["v"]["v"]:
                bad.append(f"{k}: element type {d['v']['atype']} vs {int(f.types[1])}")
        else:
            mine = [d["v"]]
        if f.types[0] == GGUFValueType.BOOL:
            mine = [int(bool(x)) for x in mine]
        theirs = ref_value(f, d["t"])
        if mine != theirs:
            bad.append(f"{k}: {str(mine)[:80]} vs {str(theirs)[:80]}")
    ok(not bad, f"{label}: every metadata value equals GGUFReader's" + (f" ({len(bad)} differ: {bad[:3]})" if bad else ""))
    return reader


def sample_rows(nrows, ne0):
    if nrows * ne0 <= MAX_ELEMS:
        return np.arange(nrows)
    k = min(nrows, max(1, MAX_ELEMS // ne0))
    if k == 1:
        return np.array([0])
    return np.arange(k) * (nrows - 1) // (k - 1)


def check_tensors(path, reader, label, want_types=None):
    listing = [ln.split() for ln in driver("--list", path).decode().splitlines() if not ln.startswith("#")]
    tens = reader.tensors
    same = len(listing) == len(tens)
    for row, t in zip(listing, tens):
        ne = [int(x) for x in row[3:7]]
        shape = list(int(x) for x in t.shape) + [1] * (4 - len(t.shape))
        same &= (row[0] == t.name and int(row[1]) == int(t.tensor_type) and int(row[2]) == len(t.shape)
                 and ne == shape and int(row[7]) == int(t.n_bytes) and int(row[8]) == int(t.data_offset))
    ok(same, f"{label}: {len(tens)} tensors: names, types, shapes, sizes and offsets equal GGUFReader's")
    types = sorted({t.tensor_type.name for t in tens})
    if want_types is not None:
        ok(types == sorted(want_types), f"{label}: tensor types {types}")
    dump = driver("--dumpall", path, str(MAX_ELEMS))
    ours = np.frombuffer(dump, dtype=np.float32)
    pos, bad, n_elems, n_sampled = 0, [], 0, 0
    for t in tens:
        ne0 = int(t.shape[0])
        nrows = int(np.prod(t.shape)) // ne0
        raw = np.asarray(t.data).view(np.uint8).reshape(nrows, -1)
        rows = sample_rows(nrows, ne0)
        n_sampled += len(rows) < nrows
        ref = gguf.quants.dequantize(raw[rows], t.tensor_type).astype(np.float32).reshape(-1)
        mine = ours[pos:pos + ref.size]
        pos += ref.size
        n_elems += ref.size
        if mine.size != ref.size or not np.array_equal(mine.view(np.uint32), ref.view(np.uint32)):
            if mine.size != ref.size or not np.array_equal(mine, ref, equal_nan=True):
                where = np.flatnonzero(~((mine == ref) | (np.isnan(mine) & np.isnan(ref)))) if mine.size == ref.size else [0]
                bad.append(f"{t.name} ({t.tensor_type.name}) at {where[:3]}")
    ok(pos == ours.size, f"{label}: the driver dumped exactly the compared elements")
    ok(not bad, f"{label}: every tensor dequantizes bit-identically to gguf.quants.dequantize "
       f"({n_elems} elements; {n_sampled} large tensors on sampled rows)" + (f": {bad[:5]}" if bad else ""))


def synthetic(path):
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.bool", True)
    w.add_bool("t.false", False)
    w.add_string("t.string", "h\u00e9llo \u4e16\u754c")
    w.add_uint64("t.u64", 0xFEDCBA9876543210)
    w.add_int64("t.i64", -1234567890123)
    w.add_float64("t.f64", -2.5e-300)
    w.add_array("t.arr_i32", [-7, 9, 2**31 - 1])
    w.add_array("t.arr_f32", [-1.5, 3.25, 1e-20])
    w.add_array("t.arr_str", ["a", "", "ccc", "\u00ff"])
    w.add_array("t.arr_bool", [True, False])
    w.add_key_value("t.arr_u16", [1, 65535], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT16)
    w.add_key_value("t.arr_i64", [-(2**62), 5], GGUFValueType.ARRAY, sub_type=GGUFValueType.INT64)
    w.add_key_value("t.arr_f64", [0.1, -3.0], GGUFValueType.ARRAY, sub_type=GGUFValueType.FLOAT64)
    w.add_array("t.nested", [[1, 2], [3, 4, 5]])
    w.add_array("t.nested_str", [["x", "yz"], ["w"]])
    for qt, ne0, nrows in [(QT.F32, 64, 3), (QT.F16, 96, 2), (QT.BF16, 32, 5), (QT.Q8_0, 64, 3),
                           (QT.Q4_0, 96, 2), (QT.Q4_1, 32, 4), (QT.Q5_0, 64, 2), (QT.Q5_1, 128, 2),
                           (QT.Q4_K, 512, 2), (QT.Q5_K, 256, 3), (QT.Q6_K, 768, 1)]:
        be, bb = gguf.GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 256, size=(nrows, ne0 // be * bb), dtype=np.uint8)
        w.add_tensor(f"x.{qt.name.lower()}", raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if not os.access(binary, os.X_OK):
        ok(False, f"{binary} is built (make asan or make unit-bins)")
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "synthetic.gguf")
        synthetic(path)
        reader = check_meta(path, "GGUFWriter file")
        check_tensors(path, reader, "GGUFWriter file",
                      ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"])
    want = {"smollm2": ["Q4_1", "Q8_0", "F32"], "gemma3": ["Q5_0", "Q4_K", "Q6_K", "Q8_0", "F32"]}
    for path in MODELS:
        name = os.path.basename(os.path.dirname(path))
        if not ok(os.path.exists(path), f"{name}: model installed ({path}; make model installs it)"):
            continue
        reader = check_meta(path, name)
        check_tensors(path, reader, name, want[name])


main()
sys.exit(1 if failed else 0)
