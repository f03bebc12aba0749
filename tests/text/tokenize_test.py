"""tokenize and decode against Hugging Face `tokenizers`: the ids of every
document of tests/tokenize/corpus.jsonl, for every tokenizer in
$AK_SHARED/tokenizers and the default model's, with and without special
tokens; byte offsets; the text; and the tokenize | decode round trip.

The reference is tests/tokenize/ref/NAME.txt (made by make_reference.py);
when `tokenizers` is importable it is also recomputed live, so a stale
reference file fails too."""
import os
import subprocess
import sys
import tempfile
import unicodedata

sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "tokenize"))
import akstream  # noqa: E402
import hfref  # noqa: E402

import tap  # noqa: E402
from tap import check  # noqa: E402


def run(args, stdin=None):
    p = subprocess.run(args, input=stdin, capture_output=True)
    if p.returncode:
        sys.stderr.write(p.stderr.decode(errors="replace"))
    return p


try:
    import tokenizers  # noqa: F401
    live = True
except ImportError:
    live = False

docs = hfref.corpus()
tmp = tempfile.mkdtemp()
paths = []
for i, text in enumerate(docs):
    p = os.path.join(tmp, "doc%03d.txt" % i)
    with open(p, "wb") as f:
        f.write(text.encode("utf-8"))
    paths.append(p)


def read_ref(name):
    return hfref.read_ref(os.path.join(os.environ["AK_TOP"], "tests", "tokenize", "ref", name + ".txt"))


def stream_docs(out):
    d = akstream.docs_of(out)
    return [d[p] for p in paths]


for name in hfref.NAMES:
    d = hfref.tokenizer_dir(name)
    ref = read_ref(name)
    check(len(ref) == len(docs), "%s: reference has every document" % name)
    if live:
        tok = hfref.load(name)
        stale = [i for i, t in enumerate(docs) if hfref.encode(tok, t) != (ref[i][0], ref[i][1], ref[i][2])]
        check(not stale, "%s: committed reference equals live tokenizers output%s" %
              (name, " (differs on docs %s)" % stale[:5] if stale else ""))
    p = run(["tokenize", "-m", d] + paths)
    if not check(p.returncode == 0, "%s: tokenize runs on the corpus" % name):
        continue
    got = stream_docs(p.stdout)
    q = run(["tokenize", "--no-special", "-m", d] + paths)
    plain = stream_docs(q.stdout) if q.returncode == 0 else None
    same = same_plain = same_off = text_ok = 0
    bad, bad_off = [], []
    off_docs = 0
    for i, (text, g) in enumerate(zip(docs, got)):
        ids = g["tokens"].tolist()
        same += ids == ref[i][0]
        if ids != ref[i][0]:
            bad.append(i)
        if plain is not None:
            same_plain += plain[i]["tokens"].tolist() == ref[i][2]
        text_ok += g["text"].tobytes() == text.encode("utf-8")
        # offsets: all but the post-processor's tokens (they cover no text;
        # HF gives them (0, 0), we give the end of text to trailing ones).
        # Where NFC changes the text (qwen3), HF maps a composed character to
        # its first code point only; we map it to the whole sequence.
        if name == "qwen3" and unicodedata.normalize("NFC", text) != text:
            continue
        off_docs += 1
        offs = [tuple(x) for x in g["offsets"].tolist()]
        sp = g["special"].tolist()
        keep = [k for k in range(len(offs)) if not (sp[k] and offs[k][0] == offs[k][1])]
        ok = ids == ref[i][0] and [offs[k] for k in keep] == [ref[i][1][k] for k in keep]
        same_off += ok
        if not ok:
            bad_off.append(i)
    n = len(docs)
    check(same == n, "%s: ids identical to HF tokenizers on %d/%d documents%s" %
          (name, same, n, " (first differing: doc %d %r)" % (bad[0], docs[bad[0]][:40]) if bad else ""))
    check(same_plain == n, "%s: --no-special ids identical on %d/%d documents" % (name, same_plain, n))
    check(same_off == off_docs, "%s: byte offsets identical to HF's on %d/%d documents%s" %
          (name, same_off, off_docs, " (first differing: doc %d)" % bad_off[0] if bad_off else ""))
    check(text_ok == n, "%s: text tensor holds the input byte for byte" % name)
    # offsets are always well-formed: inside the text, start <= end
    wf = all(((g["offsets"][:, 0] <= g["offsets"][:, 1]).all() and
              (g["offsets"][:, 1] <= len(t.encode("utf-8"))).all()) if len(g["offsets"]) else True
             for t, g in zip(docs, got))
    check(wf, "%s: offsets lie within the text" % name)

    # round trip: tokenize | decode gives the input back, for the documents
    # the tokenizer can give back (see man/decode.1)
    if name == "default":
        eligible = []  # lowercasing WordPiece cannot round-trip
    elif name == "qwen3":
        eligible = [i for i, t in enumerate(docs) if unicodedata.normalize("NFC", t) == t]
    elif name == "llama2":
        eligible = [i for i, t in enumerate(docs)
                    if not any(s in t for s in ("<s>", "</s>", "<unk>", "\u2581"))]
    else:
        eligible = list(range(n))
    if eligible:
        sel = [paths[i] for i in eligible]
        t = run(["tokenize", "-m", d] + sel)
        r = run(["decode", "-m", d], stdin=t.stdout)
        want = b"".join(docs[i].encode("utf-8") for i in eligible)
        check(t.returncode == 0 and r.returncode == 0 and r.stdout == want,
              "%s: tokenize | decode returns %d/%d documents byte for byte" % (name, len(eligible), n))
        if r.stdout != want:
            for i in eligible:  # name the first one that does not
                a = run(["tokenize", "-m", d, paths[i]])
                b = run(["decode", "-m", d], stdin=a.stdout)
                if b.stdout != docs[i].encode("utf-8"):
                    print("#   doc %d %r -> %r" % (i, docs[i][:60], b.stdout[:60]))
                    break
    # one long document: pre-tokenizer output in batches, a long Llama 2 word
    if live:
        longdoc = ("\n".join(docs) * 4).encode("utf-8")
        lp = os.path.join(tmp, "long.txt")
        with open(lp, "wb") as f:
            f.write(longdoc)
        a = run(["tokenize", "-m", d, lp])
        ok = a.returncode == 0
        if ok:
            g = akstream.docs_of(a.stdout)[lp]
            e = tok.encode(longdoc.decode("utf-8"))
            ok = g["tokens"].tolist() == e.ids
            if name != "qwen3":
                offs = [tuple(x) for x in g["offsets"].tolist()]
                sp = g["special"].tolist()
                want = hfref.byte_offsets(longdoc.decode("utf-8"), e.offsets)
                ok = ok and all(offs[k] == want[k] for k in range(len(offs)) if not (sp[k] and offs[k][0] == offs[k][1]))
        check(ok, "%s: a %d KB document: ids%s identical to HF" % (name, len(longdoc) // 1000,
                                                                    "" if name == "qwen3" else " and offsets"))

    # decode agrees with HF's decode (no special tokens skipped) where the
    # text is not normalized away
    if live and name in ("gpt2", "llama3", "gpt4o", "deepseek_v3", "llama2"):
        sample = list(range(0, n, 4))
        a = run(["tokenize", "--no-special", "-m", d] + [paths[i] for i in sample])
        b = run(["decode", "-m", d], stdin=a.stdout)
        want = "".join(tok.decode(ref[i][2], skip_special_tokens=False) for i in sample)
        check(b.returncode == 0 and b.stdout.decode("utf-8", "replace") == want,
              "%s: decode equals HF decode on %d sampled documents" % (name, len(sample)))

# decode --mark: the original text with prune's dropped spans replaced
import numpy as np  # noqa: E402

text = "Keep this. Drop this. Keep that.".encode("utf-8")
g2 = hfref.tokenizer_dir("gpt2")
st = akstream.pack_stream([akstream.doc("d", [akstream.tensor("text", np.frombuffer(text, np.uint8)),
                                              akstream.tensor("tokens", np.array([9175], np.int32)),
                                              akstream.tensor("dropped", np.array([[10, 21], [31, 32]], np.int64))])])
r = run(["decode", "-m", g2, "--mark"], stdin=st)
check(r.returncode == 0 and r.stdout == "Keep this.[…] Keep that[…]".encode("utf-8"), "decode --mark replaces dropped spans")
r = run(["decode", "-m", g2, "--mark=<cut>"], stdin=st)
check(r.stdout == b"Keep this.<cut> Keep that<cut>", "decode --mark=STR uses STR")
bad = akstream.pack_stream([akstream.doc("d", [akstream.tensor("text", np.frombuffer(text, np.uint8)),
                                               akstream.tensor("dropped", np.array([[10, 40]], np.int64))])])
r = run(["decode", "-m", g2, "--mark"], stdin=bad)
err = r.stderr.decode().splitlines()
check(r.returncode == 65 and len(err) == 1 and err[0].startswith("decode: "), "decode --mark refuses a span past the text")

sys.exit(tap.status())
