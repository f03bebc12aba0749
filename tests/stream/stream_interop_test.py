"""Interoperability with Python's msgpack: peek reads what Python writes
(peek -f prints exactly the numbers Python wrote, every dtype, compressed or
not, awkward shapes, with format 1.1's crc32), and Python reads what the C
library writes (crc32 as zlib.crc32 computes it, every string decodable as
UTF-8).  The C reader's UTF-8 check agrees with Python's decoder."""
import os
import subprocess
import sys
import tempfile
import zlib

import msgpack
import numpy as np

sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
import akstream as s  # noqa: E402

import tap  # noqa: E402
from tap import check  # noqa: E402


rng = np.random.default_rng(1234)
tmp = tempfile.mkdtemp()
cases = []
for i, (dtype, shape) in enumerate([("f32", (7,)), ("f32", (3, 5, 2)), ("f16", (33,)),
                                    ("bf16", (4, 4)), ("i32", (17,)), ("i64", (2, 9)),
                                    ("u8", (255,)), ("f32", (1, 1, 1, 1, 1, 1, 1, 3))]):
    if dtype in ("f32", "bf16"):
        a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-30, 30, shape)).astype(np.float32)
    elif dtype == "f16":
        a = rng.standard_normal(shape).astype(np.float16)
    elif dtype == "i32":
        a = rng.integers(-2**31, 2**31, shape, dtype=np.int64).astype(np.int32)
    elif dtype == "i64":
        a = rng.integers(-2**62, 2**62, shape, dtype=np.int64)
    else:
        a = rng.integers(0, 256, shape, dtype=np.int64).astype(np.uint8)
    cases.append((f"t{i}", dtype, a, i % 2 == 1))

docs = [s.doc("py", [s.tensor(n, a, dtype=d, compress=c) for n, d, a, c in cases],
              meta={"source": "python"})]
path = os.path.join(tmp, "py.ak")
open(path, "wb").write(s.pack_stream(docs, model={"name": "py"}))
written = s.docs_of(open(path, "rb").read())["py"]
for name, dtype, a, comp in cases:
    out = subprocess.run(["peek", "-f", name, path], capture_output=True, text=True)
    if out.returncode != 0:
        check(False, f"peek -f {name}: {out.stderr.strip()}")
        continue
    nums = out.stdout.split()
    want = written[name].ravel()
    if dtype in ("f32", "f16", "bf16"):
        got = np.array([float(x) for x in nums], dtype=np.float64)
        same = len(got) == len(want) and np.array_equal(
            got.astype(np.float32), want.astype(np.float32))
    else:
        same = [int(x) for x in nums] == [int(x) for x in want]
    check(same, f"peek -f {name} ({dtype}{list(a.shape)}, {'zlib' if comp else 'raw'}) "
          "prints exactly the values Python wrote")

# C writes, Python reads.
cpath = os.path.join(tmp, "c.ak")
rc = subprocess.run([os.path.join(os.environ["AK_BUILD"], "unit", "stream"), "--write", cpath])
check(rc.returncode == 0, "the C library writes a sample stream")
recs = s.read_records(open(cpath, "rb").read())
check([r["type"] for r in recs] == ["header", "doc", "end"], "Python sees header, doc, end")
check(recs[0]["format"] == "attnkit-stream" and recs[0]["version"] == [1, 1],
      "header format and version 1.1")
check(recs[0]["history"][0]["args"][1] == "--write", "history args")
d = {t["name"]: s.array_of(t) for t in recs[1]["tensors"]}
check(d["tokens"].tolist() == [101, -7, 2147483647], "i32 tokens")
check(np.array_equal(d["x"].ravel(), (np.arange(6, dtype=np.float32) / np.float32(3) - 1)), "f32 values")
check(d["half"].tolist() == [1.0, -0.5, 65504.0], "f16 values")
check(d["brain"][:2].tolist() == [1.0, -2.5], "bf16 values")
check(d["offsets"].ravel().tolist() == [i * 5000000000 for i in range(6)], "i64 values")
check(recs[1]["meta"] == {"source": "sample.txt", "causal": 1, "temperature": 0.25,
                          "title": "na\u00efve \u2014 \u65e5\u672c"}, "metadata (UTF-8 string)")
check(recs[0]["history"][0]["args"][3] == "caf\ufffd.txt",
      "a Latin-1 argument reaches Python with U+FFFD")
zpath = os.path.join(tmp, "cz.ak")
rc = subprocess.run([os.path.join(os.environ["AK_BUILD"], "unit", "stream"), "--write", zpath, "6"])
zrecs = s.read_records(open(zpath, "rb").read()) if rc.returncode == 0 else [{}, {"tensors": []}]
for what, rr in (("plain", recs), ("zlib level 6", zrecs)):
    ts = rr[1]["tensors"]
    crcs = [(t.get("crc32"), zlib.crc32(zlib.decompress(t["data"]) if t.get("compression")
                                        else t["data"])) for t in ts]
    check(len(ts) == 6 and all(c == want for c, want in crcs),
          f"{what}: every tensor's crc32 is zlib.crc32 of its raw bytes ({len(ts)} tensors, "
          f"{sum(1 for t in ts if t.get('compression'))} compressed)")

# A 1.0 reader's view: Python without crc32 knowledge reads the same values.
t0 = dict(recs[1]["tensors"][0]); del t0["crc32"]
check(s.array_of(t0).tolist() == d["tokens"].tolist(), "the crc32 field is ignorable")

# The C reader's UTF-8 check against Python's decoder, on edge cases and
# random bytes: peek accepts a document id exactly when Python decodes it.
rng2 = np.random.default_rng(7)
cases = [b"\x7f", b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xee\x80\x80",
         b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x9f\xbf",
         b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
         b"\xff", b"\x80", b"\xe2\x82", b"ok\xe2\x82\xac"]
cases += [bytes(rng2.integers(0x80, 0x100, int(rng2.integers(1, 6)), dtype=np.int64).astype(np.uint8))
          for _ in range(20)]
agree = []
for raw in cases:
    try:
        raw.decode("utf-8")
        py_ok = True
    except UnicodeDecodeError:
        py_ok = False
    doc = msgpack.packb(s.doc("@ID@", []), use_bin_type=True)
    doc = doc.replace(msgpack.packb("@ID@"), bytes([0xa0 | len(raw)]) + raw)
    data = msgpack.packb(s.header(), use_bin_type=True) + doc + msgpack.packb(s.end(1))
    path = os.path.join(tmp, "u.ak")
    open(path, "wb").write(data)
    rc = subprocess.run(["peek", path], capture_output=True).returncode
    agree.append((rc == 0) == py_ok and rc in (0, 65))
check(all(agree), f"peek accepts a document id exactly when Python decodes it as UTF-8 "
      f"({sum(agree)} of {len(cases)} agree)")
check(recs[2]["docs"] == 1, "end count")
sys.exit(tap.status())
