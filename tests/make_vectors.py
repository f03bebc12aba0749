#!/usr/bin/env python3
"""Writes formats/vectors/: valid and invalid attnkit streams, each with what
a reader must do.  Rerun after changing the format; the files are committed.
    python3 tests/make_vectors.py [OUTDIR]
Valid vectors come with their expected `peek -f NAME` output in
vectors.tsv; invalid ones with a phrase the error line must contain."""
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
import msgpack  # noqa: E402
import numpy as np  # noqa: E402

import akstream as s  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "formats", "vectors")
os.makedirs(out, exist_ok=True)
rows = []


def p(obj):
    return msgpack.packb(obj, use_bin_type=True)


def valid(name, data, field, expect, what):
    open(os.path.join(out, name + ".ak"), "wb").write(data)
    rows.append((name + ".ak", "valid", field, expect, what))


def invalid(name, data, phrase, what):
    open(os.path.join(out, name + ".ak"), "wb").write(data)
    rows.append((name + ".ak", "invalid", "-", phrase, what))


tok = s.tensor("tokens", np.array([101, 7592, 2088, 102], np.int32))
H = p(s.header({"name": "vectors"}))
E1 = p(s.end(1))

# ---- valid ----
valid("minimal", s.pack_stream([s.doc("d0", [tok])]), "tokens", "101 7592 2088 102",
      "one document, one i32 tensor")
valid("empty-stream", s.pack_stream([]), "-", "", "a header and an end, no documents")
valid("empty-input", b"", "-", "", "zero bytes: zero streams")
valid("all-dtypes", s.pack_stream([s.doc("d0", [
    s.tensor("u8", np.array([0, 255], np.uint8)),
    s.tensor("i32", np.array([-2147483648, 2147483647], np.int32)),
    s.tensor("i64", np.array([-9007199254740993, 9007199254740993], np.int64)),
    s.tensor("f16", np.array([0.5, -65504], np.float16)),
    s.tensor("bf16", np.array([1.5, -3.0e38], np.float32), dtype="bf16"),
    s.tensor("f32", np.array([0.1, -1e-45, 3.4028235e38], np.float32))])]),
    "i64", "-9007199254740993 9007199254740993", "every dtype, extreme values")
valid("zlib", s.pack_stream([s.doc("d0", [s.tensor("x", np.arange(300, dtype=np.int32),
                                                   compress=True)])]),
      "x", " ".join(str(i) for i in range(300)), "a zlib-compressed tensor")
valid("scalar-and-zero", s.pack_stream([s.doc("d0", [
    s.tensor("scalar", np.array(7, np.int32)), s.tensor("zero", np.zeros((0, 3), np.float32))])]),
    "scalar", "7", "a 0-d tensor and a tensor with a zero dimension")
cat = s.pack_stream([s.doc("a", [s.tensor("n", np.array([1], np.int32))])]) + \
    s.pack_stream([s.doc("b", [s.tensor("n", np.array([2], np.int32))])])
valid("concatenated", cat, "n", "1\n2", "two streams back to back (cat a b)")
fut = dict(s.header()); fut["version"] = [1, 7]; fut["shiny"] = {"new": [1, 2]}
d = s.doc("d0", [dict(tok, colour="blue")]); d["future"] = True
valid("newer-minor", p(fut) + p(d) + p({"type": "annotation", "x": 1}) + E1, "tokens",
      "101 7592 2088 102", "minor version 7, unknown fields and an unknown record type: accepted")

# ---- invalid ----
full = s.pack_stream([s.doc("d0", [tok])])
invalid("truncated-record", full[:-20], "truncated", "input ends inside a record")
invalid("no-end", H + p(s.doc("d0", [tok])), "without its end record", "the end record is missing")
invalid("doc-before-header", p(s.doc("d0", [tok])) + E1, "no header", "a document with no header")
invalid("not-a-map", p([1, 2, 3]), "not a map", "a record that is an array")
invalid("no-type", p({"format": "attnkit-stream"}), "type", "a map without 'type'")
invalid("bad-byte", b"\xc1", "not MessagePack", "0xc1 is never valid MessagePack")
bad = dict(s.header()); bad["format"] = "other"
invalid("wrong-format", p(bad) + p(s.end(0)), "format", "format name is not attnkit-stream")
bad = dict(s.header()); bad["version"] = [2, 0]
invalid("major-version", p(bad) + p(s.end(0)), "version 2.0", "a major version this reader does not know")
invalid("end-count", H + p(s.doc("d0", [tok])) + p(s.end(2)), "end record says 2",
        "the end record's count differs")
t = dict(tok); t["dtype"] = "f64"
invalid("unknown-dtype", H + p(s.doc("d0", [t])) + E1, "dtype", "dtype f64 is not in the format")
t = dict(tok); t["shape"] = [5]
invalid("short-data", H + p(s.doc("d0", [t])) + E1, "shape needs", "data shorter than the shape says")
t = dict(tok); t["shape"] = [-4]
invalid("negative-dim", H + p(s.doc("d0", [t])) + E1, "dimension", "a negative dimension")
t = dict(tok); t["shape"] = [2**32, 2**32, 2**32]
invalid("shape-overflow", H + p(s.doc("d0", [t])) + E1, "overflows",
        "a shape whose byte count overflows 64 bits")
t = dict(tok); t["shape"] = [1] * 9
invalid("too-many-dims", H + p(s.doc("d0", [t])) + E1, "dimensions", "nine dimensions")
z = s.tensor("x", np.arange(64, dtype=np.int32), compress=True); z["raw_bytes"] = 128
z["shape"] = [32]
invalid("zlib-past-size", H + p(s.doc("d0", [z])) + E1, "inflates past",
        "the payload inflates to more than raw_bytes")
z = s.tensor("x", np.arange(64, dtype=np.int32), compress=True); z["data"] = z["data"][:-9]
invalid("zlib-corrupt", H + p(s.doc("d0", [z])) + E1, "zlib", "a cut zlib payload")
z = s.tensor("x", np.zeros(1, np.int32), compress=True); z["shape"] = [2**40]
z["raw_bytes"] = 2**42
invalid("zlib-bomb-claim", H + p(s.doc("d0", [z])) + E1, "cannot hold",
        "claims 4 TiB from a few bytes: refused before allocating")
invalid("huge-array", H + b"\xdd\xff\xff\xff\xff", "truncated",
        "an array header claiming 4 billion elements, then nothing")
invalid("huge-bin", H + b"\x82\xa4type\xa3doc\xa7tensors\xc6\xff\xff\xff\xf0", "truncated",
        "a bin header claiming 4 GiB, then nothing: truncated, nothing allocated for it")
invalid("dup-tensor", H + p(s.doc("d0", [tok, tok])) + E1, "twice", "two tensors with one name")
t = dict(tok); t["name"] = "a\x00b"
invalid("nul-in-name", H + p(s.doc("d0", [t])) + E1, "name", "a tensor name with a NUL byte")

with open(os.path.join(out, "vectors.tsv"), "w") as f:
    f.write("# file\tkind\tfield\texpect (valid: peek -f FIELD output, \\n between lines;"
            " invalid: phrase in the error)\twhat it tests\n")
    for r in rows:
        f.write("\t".join(r[:3]) + "\t" + r[3].replace("\n", "\\n") + "\t" + r[4] + "\n")
print(f"{len(rows)} vectors in {out}")
