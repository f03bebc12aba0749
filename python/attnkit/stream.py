"""The attnkit tensor stream (formats/tensor-stream.md) as numpy arrays.

    from attnkit import stream
    s = stream.read("scored.ak")            # a path, bytes or a binary file
    for d in s.docs:
        print(d.id, d.meta, d["tokens"], d["score.token"])
    stream.write("out.ak", s.docs, model=s.model)

Needs msgpack and numpy only.  Tensors are read-only numpy views of the
stream's bytes (copy to edit); bf16 is widened to float32 when read and
written from float32.
"""
import io
import zlib

import msgpack
import numpy as np

__all__ = ["Doc", "Stream", "read", "write", "pack"]

_NP = {"u8": "<u1", "i32": "<i4", "i64": "<i8", "f16": "<f2", "f32": "<f4"}
_DT = {np.dtype("uint8"): "u8", np.dtype("int32"): "i32", np.dtype("int64"): "i64",
       np.dtype("float16"): "f16", np.dtype("float32"): "f32"}


class Doc:
    """One document: id, meta (a dict) and tensors (name -> numpy array)."""

    def __init__(self, id, tensors=None, meta=None):
        self.id = id
        self.tensors = dict(tensors or {})
        self.meta = dict(meta or {})

    def __getitem__(self, name):
        return self.tensors[name]

    def __contains__(self, name):
        return name in self.tensors

    def get(self, name, default=None):
        return self.tensors.get(name, default)

    @property
    def text(self):
        """The document's text as str (bytes that are not UTF-8 replaced)."""
        t = self.tensors.get("text")
        return None if t is None else bytes(t).decode("utf-8", "replace")

    def __repr__(self):
        return f"Doc({self.id!r}, tensors={sorted(self.tensors)}, meta={self.meta})"


class Stream:
    """A whole stream: the (first) header's model identity and history, and
    the documents in order."""

    def __init__(self, docs, model=None, history=None, version=(1, 1)):
        self.docs = list(docs)
        self.model = dict(model or {})
        self.history = list(history or [])
        self.version = tuple(version)

    def __iter__(self):
        return iter(self.docs)

    def __len__(self):
        return len(self.docs)

    def __getitem__(self, key):
        """A document by position or by id."""
        if isinstance(key, int):
            return self.docs[key]
        for d in self.docs:
            if d.id == key:
                return d
        raise KeyError(key)


def _array(t):
    data = t["data"]
    if t.get("compression") == "zlib":
        data = zlib.decompress(data)
        if len(data) != t.get("raw_bytes", len(data)):
            raise ValueError(f"tensor {t['name']}: raw_bytes does not match")
    elif t.get("compression") not in (None, "none"):
        raise ValueError(f"tensor {t['name']}: unknown compression {t['compression']!r}")
    if "crc32" in t and zlib.crc32(data) != t["crc32"]:
        raise ValueError(f"tensor {t['name']}: crc32 mismatch")
    shape = [int(x) for x in t["shape"]]
    if t["dtype"] == "bf16":
        bits = np.frombuffer(data, dtype="<u2").astype("<u4") << 16
        return bits.view("<f4").reshape(shape)
    if t["dtype"] not in _NP:
        raise ValueError(f"tensor {t['name']}: unknown dtype {t['dtype']!r}")
    return np.frombuffer(data, dtype=_NP[t["dtype"]]).reshape(shape)


def read(src):
    """A Stream from a path, bytes, or a binary file object."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        f = io.BytesIO(bytes(src))
    elif hasattr(src, "read"):
        f = src
    else:
        f = open(src, "rb")
    try:
        up = msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=0)
        docs, header, ended = [], None, False
        for r in up:
            if not isinstance(r, dict):
                raise ValueError("not an attnkit stream: a record is not a map")
            kind = r.get("type")
            if kind == "header":
                if r.get("format") != "attnkit-stream":
                    raise ValueError("not an attnkit stream (format is not attnkit-stream)")
                header = header or r
            elif kind == "doc":
                if header is None:
                    raise ValueError("a document before the stream's header")
                docs.append(Doc(r["id"], {t["name"]: _array(t) for t in r.get("tensors", [])},
                                r.get("meta", {})))
            elif kind == "end":
                ended = True
        if header is None:
            raise ValueError("not an attnkit stream (no header)")
        if not ended:
            raise ValueError("truncated stream: no end record")
        return Stream(docs, header.get("model"), header.get("history"),
                      header.get("version", (1, 1)))
    finally:
        if f is not src:
            f.close()


def _tensor(name, a, compress):
    if isinstance(a, tuple):  # (array, "bf16")
        a, dtype = a
    else:
        a = np.asarray(a)
        dtype = _DT.get(a.dtype)
        if dtype is None:
            raise TypeError(f"tensor {name}: dtype {a.dtype} has no stream type "
                            "(u8, i32, i64, f16, f32)")
    if dtype == "bf16":
        bits = np.ascontiguousarray(a, dtype="<f4").view("<u4")
        data = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
    else:
        data = np.ascontiguousarray(a, dtype=_NP[dtype]).tobytes()
    t = {"name": name, "dtype": dtype, "shape": list(np.shape(a)), "data": data,
         "crc32": zlib.crc32(data)}
    if compress:
        t.update(data=zlib.compress(data), compression="zlib", raw_bytes=len(data))
    return t


def pack(docs, model=None, history=None, compress=False):
    """The bytes of a stream holding docs (Doc objects, or (id, {name:
    array}) pairs)."""
    out = [msgpack.packb({"type": "header", "format": "attnkit-stream", "version": [1, 1],
                          "model": dict(model or {}), "history": list(history or [])},
                         use_bin_type=True)]
    n = 0
    for d in docs:
        if not isinstance(d, Doc):
            d = Doc(*d)
        out.append(msgpack.packb({"type": "doc", "id": d.id, "meta": d.meta,
                                  "tensors": [_tensor(k, v, compress)
                                              for k, v in d.tensors.items()]},
                                 use_bin_type=True))
        n += 1
    out.append(msgpack.packb({"type": "end", "docs": n}, use_bin_type=True))
    return b"".join(out)


def write(dst, docs, model=None, history=None, compress=False):
    """Writes a stream to a path or a binary file object."""
    data = pack(docs, model, history, compress)
    if hasattr(dst, "write"):
        dst.write(data)
    else:
        with open(dst, "wb") as f:
            f.write(data)
