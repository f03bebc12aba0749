"""An independent reader of the attnkit cache file, written from
formats/kvcache.md (versions 1.0 and 1.1): the tests' reference side."""
import struct
import zlib

import numpy as np


def read_cache(path):
    b = open(path, "rb").read()
    major, minor = struct.unpack_from("<II", b, 8)
    assert b[:8] == b"AKKVCACH" and major == 1 and minor in (0, 1)
    at = 16

    def section(tag):
        nonlocal at
        h = b[at:at + 32]
        t, flags, stored, raw, pcrc, hcrc = struct.unpack("<4sIQQII", h)
        assert t == tag and zlib.crc32(h[:28]) == hcrc
        payload = b[at + 32:at + 32 + stored]
        assert zlib.crc32(payload) == pcrc
        at += 32 + stored
        data = zlib.decompress(payload) if flags & 1 else payload
        assert len(data) == raw
        return data

    meta = section(b"META")
    V, crc, L, Hkv, Dh, n, last_w, an = struct.unpack_from("<8I", meta, 0)
    arch = meta[32:32 + an].decode()
    ids = np.frombuffer(section(b"IDS "), "<i4")
    text = None
    if minor == 1 and b[at:at + 4] == b"TEXT":
        p = section(b"TEXT")
        (tl,) = struct.unpack_from("<Q", p, 0)
        text = p[8:8 + tl].decode("utf-8")
        offsets = np.frombuffer(p, "<i8", 2 * n, 8 + tl).reshape(n, 2)
        (hs,) = struct.unpack_from("<I", p, 8 + tl + 16 * n)
        segs = np.frombuffer(p, "<i4", n, 12 + tl + 16 * n) if hs else None
        assert len(p) == 12 + tl + 16 * n + (4 * n if hs else 0)
        text = {"text": text, "offsets": offsets, "segments": segs}
    layers = []
    for _ in range(L):
        p, o, heads = section(b"LAYR"), 0, []
        for _ in range(Hkv):
            (k,) = struct.unpack_from("<I", p, o)
            o += 4

            def take(count, dt):
                nonlocal o
                a = np.frombuffer(p, dt, count, o)
                o += count * 4
                return a
            pos, mass, ml = take(k, "<i4"), take(k, "<f4"), take(k, "<f4")
            K, Vv = take(k * Dh, "<f4").reshape(k, Dh), take(k * Dh, "<f4").reshape(k, Dh)
            heads.append({"pos": pos, "mass": mass, "mass_last": ml, "k": K, "v": Vv})
        assert o == len(p)
        layers.append(heads)
    assert section(b"END ") == b"" and at == len(b)
    return {"vocab_size": V, "crc": crc, "L": L, "Hkv": Hkv, "Dh": Dh, "n": n, "last_w": last_w,
            "arch": arch, "ids": ids, "layers": layers, "text": text}


def sections(path):
    b, at, out = open(path, "rb").read(), 16, []
    while at < len(b):
        t, flags, stored, raw, pcrc, hcrc = struct.unpack_from("<4sIQQII", b, at)
        p = b[at + 32:at + 32 + stored]
        out.append([t, zlib.decompress(p) if flags & 1 else p])
        at += 32 + stored
    return out


def write_cache(path, secs):
    """A writer from formats/kvcache.md (no compression)."""
    b = b"AKKVCACH" + struct.pack("<II", 1, 0)
    for t, p in secs:
        h = struct.pack("<4sIQQI", t, 0, len(p), len(p), zlib.crc32(p))
        b += h + struct.pack("<I", zlib.crc32(h)) + p
    open(path, "wb").write(b)
