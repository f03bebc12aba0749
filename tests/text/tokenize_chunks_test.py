"""tokenize normalizes BERT-style text in 1 MiB chunks cut at white space
(lib/text/tokenizer.c encode_segment): documents longer than a chunk, with
awkward text just where the cut falls (combining marks after a space, NUL,
runs of white space, CJK, unassigned code points), must still give Hugging
Face `tokenizers`' ids and byte offsets exactly.  Outside the sanitizer
build it also checks peak memory stays a small multiple of the input."""
import os
import resource
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "tokenize"))
import akstream  # noqa: E402
import hfref  # noqa: E402

CHUNK = 1 << 20
import tap  # noqa: E402
from tap import check  # noqa: E402


# no added-token strings ([SEP]...): the text must be one segment to be chunked
filler = " ".join(hfref.corpus()[:60]).replace("\x00", " ").replace("[", "(")
snippets = [
    "ab\u0301 \u0301cd \u0301",          # combining marks on both sides of the cut
    "x\x00y \x00 z\x00\x00 w",            # NUL (removed by clean_text) next to the cut
    "word  \t\n\n   \r\n  next",          # a run of white space across the cut
    "\u6771\u4eac \u6771\u4eac\u3002\u0378\u0379 \ue000x",   # CJK, unassigned, private use
    "caf\u00e9\u0301 na\u0308ive \u2028 \u00a0 end",
]
docs = []
for k, snip in enumerate(snippets):
    head = (filler * (CHUNK // len(filler) + 2))
    # CHUNK bytes end inside a long word that runs into the snippet, so the
    # cut (the first white space after them) falls inside the snippet
    b = head.encode()[:CHUNK - 5 - k]
    b = b[:b.rindex(b" ") + 1].decode()
    b += "x" * (CHUNK - 5 - k - len(b.encode()))
    text = b + "unbelievably" + snip + " " + filler[:5000]
    docs.append(text)

tok = hfref.load("default")
with tempfile.TemporaryDirectory() as d:
    paths = []
    for i, t in enumerate(docs):
        p = os.path.join(d, "%d.txt" % i)
        with open(p, "w", encoding="utf-8") as f:
            f.write(t)
        paths.append(p)
    r = subprocess.run(["tokenize"] + paths, capture_output=True)
    check(r.returncode == 0, "tokenize of %d documents of %d bytes each (%s)" % (
        len(docs), len(docs[0].encode()), r.stderr.decode().strip()))
    got = akstream.docs_of(r.stdout) if r.returncode == 0 else {}
    for i, (p, t) in enumerate(zip(paths, docs)):
        # BERT-style tokens depend only on their word: HF on the text from a
        # space some 4 KB before the cut is the reference for every token after it
        raw = t.encode()
        w0 = raw.rindex(b" ", 0, CHUNK - 4096) + 1
        e = tok.encode(raw[w0:].decode(), add_special_tokens=False)
        want = list(zip(e.ids, [(a + w0, b + w0) for a, b in hfref.byte_offsets(raw[w0:].decode(), e.offsets)]))
        g = got.get(p)
        mine = [] if g is None else [(int(x), (int(a), int(b))) for x, (a, b) in
                                     zip(g["tokens"][1:-1], g["offsets"][1:-1]) if a >= w0]
        check(mine == want, "document %d (%r at the cut): ids and offsets from byte %d equal HF's (%d tokens)"
              % (i, snippets[i][:12], w0, len(want)))

    if os.path.basename(os.environ.get("AK_BUILD", "")) != "asan":
        big = os.path.join(d, "big.txt")
        with open(big, "w", encoding="utf-8") as f:
            f.write(filler * (8 * CHUNK // len(filler)))
        size = os.path.getsize(big)
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "tokenize", "-o", os.path.join(d, "big.ak"), big],
                           capture_output=True, check=True)
        peak = int(r.stderr.split()[-1]) * 1024
        check(peak < 16 * size + (64 << 20), "peak memory %.1f MB for %.1f MB of text (< 16x + 64 MB)"
              % (peak / 1e6, size / 1e6))
sys.exit(tap.status())
