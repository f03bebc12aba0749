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


def raw_str(packed, placeholder, raw):
    """packed with the string placeholder replaced by the bytes raw, which
    need not be UTF-8 (msgpack cannot pack such a str itself)."""
    old = p(placeholder)
    assert packed.count(old) == 1 and len(raw) < 32
    return packed.replace(old, bytes([0xa0 | len(raw)]) + raw)


def nested(depth):
    """A value that is depth arrays deep: [[...[1]...]]."""
    v = 1
    for _ in range(depth):
        v = [v]
    return v


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

t10 = s.tensor("tokens", np.array([101, 7592, 2088, 102], np.int32), crc=False)
valid("v1.0-no-crc", p(s.header({"name": "vectors"}, version=(1, 0))) + p(s.doc("d0", [t10])) + E1,
      "tokens", "101 7592 2088 102", "a 1.0 stream: no crc32 fields, read as before")
valid("crc32", s.pack_stream([s.doc("d0", [s.tensor("x", np.arange(300, dtype=np.int32),
                                                     compress=True),
                                            s.tensor("y", np.array([1.5, -2], np.float32))])]),
      "y", "1.5 -2", "1.1: crc32 of a plain tensor and of a zlib tensor (of its inflated bytes)")
valid("utf8-strings", s.pack_stream([s.doc("r\u00e9sum\u00e9 \u65e5\u672c \U0001f600",
                                           [s.tensor("\u00df", np.array([3], np.int32))],
                                           meta={"cl\u00e9": "\u4e2d\u6587 \u202e"})],
                                    model={"name": "mod\u00e8le"}),
      "\u00df", "3", "non-ASCII UTF-8 in an id, a tensor name, metadata and the model name")
valid("same-id-two-streams", s.pack_stream([s.doc("d0", [s.tensor("n", np.array([1], np.int32))])])
      + s.pack_stream([s.doc("d0", [s.tensor("n", np.array([2], np.int32))])]), "n", "1\n2",
      "one document id in two concatenated streams: ids are unique per stream only")
d = s.doc("d0", [tok]); d["deep"] = nested(127)
valid("nested-128", H + p(d) + E1, "tokens", "101 7592 2088 102",
      "an unknown field nested so that the record is 128 levels deep: the most allowed")

# ---- invalid ----
full = s.pack_stream([s.doc("d0", [tok])])
invalid("empty-input", b"", "no stream", "zero bytes: no stream (a failed program before)")
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

# crc32 (format 1.1)
t = dict(tok); t["data"] = bytes([t["data"][0] ^ 0x10]) + t["data"][1:]
invalid("crc-mismatch", H + p(s.doc("d0", [t])) + E1, "CRC-32 mismatch",
        "one bit of the payload flipped: crc32 no longer matches")
z = s.tensor("x", np.arange(300, dtype=np.int32), compress=True); z["crc32"] = zlib.crc32(z["data"])
invalid("crc-of-compressed", H + p(s.doc("d0", [z])) + E1, "CRC-32 mismatch",
        "a zlib tensor whose crc32 is of the compressed bytes, not of the inflated ones")
for name, v, what in [("crc-not-int", "5a3c1f00", "a string"), ("crc-too-big", 2**32, "2^32"),
                      ("crc-negative", -1, "a negative integer")]:
    t = dict(tok); t["crc32"] = v
    invalid(name, H + p(s.doc("d0", [t])) + E1, "crc32 is", f"crc32 is {what}")

# strings: UTF-8 only
for name, obj, placeholder, raw, phrase, what in [
        ("utf8-id", s.doc("@ID@", [tok]), "@ID@", b"d\xff", "id is not valid UTF-8",
         "a document id with the byte 0xff"),
        ("utf8-meta-key", s.doc("d0", [tok], meta={"@K@": 1}), "@K@", b"\xc0\xaf",
         "a key in meta is not valid UTF-8", "a metadata key in overlong form (C0 AF)"),
        ("utf8-meta-value", s.doc("d0", [tok], meta={"source": "@V@"}), "@V@", b"a\xed\xa0\x80",
         "meta.source is not valid UTF-8", "a metadata string holding a UTF-16 surrogate"),
        ("utf8-tensor-name", s.doc("d0", [dict(tok, name="@N@")]), "@N@", b"tok\xe2\x82",
         "tensors[0].name is not valid UTF-8", "a tensor name cut inside a character"),
        ("utf8-unknown-field", dict(s.doc("d0", [tok]), future={"x": [1, "@F@"]}), "@F@",
         b"\xf8\x88\x80\x80\x80", "future.x[1] is not valid UTF-8",
         "a five-byte sequence deep in an unknown field")]:
    invalid(name, H + raw_str(p(obj), placeholder, raw) + E1, phrase, what)
for name, obj, placeholder, raw, phrase, what in [
        ("utf8-history-arg", s.header(history=[{"program": "tokenize", "version": "0.1.0",
                                               "args": ["tokenize", "@A@"]}]), "@A@",
         b"caf\xe9.txt", "history[0].args[1] is not valid UTF-8",
         "a Latin-1 file name in the history"),
        ("utf8-model-name", s.header({"name": "@M@"}), "@M@", b"\xf4\x90\x80\x80",
         "model.name is not valid UTF-8", "a code point above U+10FFFF in the model name")]:
    invalid(name, raw_str(p(obj), placeholder, raw) + p(s.end(0)), phrase, what)
invalid("utf8-other-record", H + raw_str(p({"type": "annotation", "note": "@O@"}), "@O@", b"\x80")
        + p(s.end(0)), "note is not valid UTF-8",
        "an unknown record type holding a lone continuation byte")

# typed header and document fields
for name, field, v, phrase in [
        ("header-format-type", "format", 1, "format is an integer"),
        ("header-version-type", "version", "1.1", "version is a string"),
        ("header-version-items", "version", [1, "1"], "version is a malformed array"),
        ("header-model-type", "model", "bert", "model is a string, not a map"),
        ("header-history-type", "history", {"program": "tokenize"}, "history is a map, not an array"),
        ("header-history-entry", "history", ["tokenize"], "history entry 0 is a string, not a map"),
        ("header-history-program", "history", [{"program": 7}], "program is an integer"),
        ("header-history-no-program", "history", [{"version": "0.1"}], "history entry 0 has no program"),
        ("header-history-version", "history", [{"program": "t", "version": 1}], "version is an integer"),
        ("header-history-args", "history", [{"program": "t", "args": "t -m x"}],
         "args is a string, not an array"),
        ("header-history-arg", "history", [{"program": "t", "args": ["t", 1]}],
         "argument 1 is an integer")]:
    bad = dict(s.header()); bad[field] = v
    invalid(name, p(bad) + p(s.end(0)), phrase, f"header {field} = {v!r}")
d = s.doc("d0", [tok]); d["id"] = 7
invalid("doc-id-type", H + p(d) + E1, "document id is an integer", "a document id that is a number")
d = s.doc("d0", [tok]); del d["id"]
invalid("doc-no-id", H + p(d) + E1, "without an id", "a document without an id")
invalid("dup-doc-id", H + p(s.doc("d0", [tok])) + p(s.doc("d1", [tok])) + p(s.doc("d0", [tok]))
        + p(s.end(3)), "document id 'd0' appears twice", "two documents with one id in one stream")
d = p(s.doc("d0", [tok]))
assert d[0] == 0x84
invalid("dup-field", H + bytes([0x85]) + d[1:] + p("tensors") + p([]) + E1,
        "two 'tensors' fields", "a document map with the key 'tensors' twice")

# nesting
d = s.doc("d0", [tok]); d["deep"] = nested(128)
invalid("nested-129", H + p(d) + E1, "nested deeper than 128 levels",
        "an unknown field one level deeper than allowed (valid MessagePack, refused as data)")
invalid("nested-100000", H + b"\x81\xa4type" + b"\x91" * 100000 + b"\xc0", "nested deeper than",
        "100000 nested arrays: refused without recursion")

with open(os.path.join(out, "vectors.tsv"), "w") as f:
    f.write("# file\tkind\tfield\texpect (valid: peek -f FIELD output, \\n between lines;"
            " invalid: phrase in the error)\twhat it tests\n")
    for r in rows:
        f.write("\t".join(r[:3]) + "\t" + r[3].replace("\n", "\\n") + "\t" + r[4] + "\n")
print(f"{len(rows)} vectors in {out}")
