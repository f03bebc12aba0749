"""A small, independent reader/writer of the attnkit tensor stream in
Python (msgpack + numpy + zlib), written from formats/tensor-stream.md.
Tests use it as the reference side of interoperability checks."""
import zlib

import msgpack
import numpy as np

DTYPES = {"u8": "<u1", "i32": "<i4", "i64": "<i8", "f16": "<f2", "f32": "<f4"}


def tensor(name, array, dtype=None, compress=False, crc=True):
    """A tensor record from a numpy array; dtype 'bf16' takes float32 input.
    crc: add the format 1.1 crc32 field (zlib.crc32 of the raw bytes)."""
    if dtype == "bf16":
        a = np.ascontiguousarray(array, dtype="<f4")
        bits = a.view("<u4")
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
        data, shape = rounded.tobytes(), list(a.shape)
    else:
        dtype = dtype or {np.dtype("uint8"): "u8", np.dtype("int32"): "i32",
                          np.dtype("int64"): "i64", np.dtype("float16"): "f16",
                          np.dtype("float32"): "f32"}[np.asarray(array).dtype]
        a = np.ascontiguousarray(array, dtype=DTYPES[dtype])
        data, shape = a.tobytes(), list(a.shape)
    t = {"name": name, "dtype": dtype, "shape": shape, "data": data}
    if compress:
        t["data"] = zlib.compress(data)
        t["compression"] = "zlib"
        t["raw_bytes"] = len(data)
    if crc:
        t["crc32"] = zlib.crc32(data)
    return t


def header(model=None, history=None, version=(1, 1)):
    return {"type": "header", "format": "attnkit-stream", "version": list(version),
            "model": model or {}, "history": history or []}


def doc(doc_id, tensors, meta=None):
    return {"type": "doc", "id": doc_id, "meta": meta or {}, "tensors": tensors}


def end(n):
    return {"type": "end", "docs": n}


def pack_stream(docs, model=None, history=None):
    out = msgpack.packb(header(model, history), use_bin_type=True)
    for d in docs:
        out += msgpack.packb(d, use_bin_type=True)
    return out + msgpack.packb(end(len(docs)), use_bin_type=True)


def array_of(t):
    """The numpy array held by a tensor record (as read by msgpack)."""
    data = t["data"]
    if t.get("compression") == "zlib":
        data = zlib.decompress(data)
        assert len(data) == t["raw_bytes"]
    if "crc32" in t:
        assert zlib.crc32(data) == t["crc32"], f"tensor {t['name']}: crc32 mismatch"
    if t["dtype"] == "bf16":
        bits = np.frombuffer(data, dtype="<u2").astype("<u4") << 16
        return bits.view("<f4").reshape(t["shape"])
    return np.frombuffer(data, dtype=DTYPES[t["dtype"]]).reshape(t["shape"])


def read_records(data):
    """All records of a byte string, as dicts."""
    up = msgpack.Unpacker(raw=False, strict_map_key=False)
    up.feed(data)
    return list(up)


def docs_of(data):
    """{doc id: {tensor name: array}} for every document in the stream."""
    out = {}
    for r in read_records(data):
        if r.get("type") == "doc":
            out[r["id"]] = {t["name"]: array_of(t) for t in r["tensors"]}
    return out
