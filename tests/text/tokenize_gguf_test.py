"""tokenize and decode with tokenizers read from GGUF files (SmolLM2: gpt2
byte-level BPE; Gemma 3: llama SentencePiece BPE) against Hugging Face
transformers' own GGUF tokenizer (AutoTokenizer.from_pretrained(dir,
gguf_file=...)), whose ids for the whole corpus and chat renderings are the
committed goldens tests/tokenize/ref/gguf_NAME.txt and chat_NAME.jsonl (made
by tests/tokenize/make_gguf_reference.py): ids with and without special
tokens, offsets, the tokenize | decode round trip, tokenize --chat token for
token, the stream identity, and GGUF files that must be refused."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "tokenize"))
import akstream  # noqa: E402
import hfref  # noqa: E402

TOP = os.environ["AK_TOP"]
REF = os.path.join(TOP, "tests", "tokenize", "ref")
MODELS = {
    "smollm2": os.path.join(TOP, ".cache", "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": os.path.join(TOP, ".cache", "models", "gemma3", "gemma-3-270m-q4_k_m.gguf"),
}
# Bytes SmolLM2's byte-level vocabulary has no token for: HF drops them, and
# its offsets of the word's later tokens then shift; ours do not.
MISSING_BYTES = {"smollm2": {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2} | set(range(0xF5, 0x100)),
                 "gemma3": set()}

import tap  # noqa: E402
from tap import check  # noqa: E402


def run(args, stdin=None):
    p = subprocess.run(args, input=stdin, capture_output=True)
    if p.returncode and p.returncode not in (64, 65, 78):
        sys.stderr.write(p.stderr.decode(errors="replace"))
    return p


def read_ref(name):
    return hfref.read_ref(os.path.join(REF, "gguf_%s.txt" % name))


def write_docs(texts, prefix):
    paths = []
    for i, t in enumerate(texts):
        p = os.path.join(tmp, "%s%03d.txt" % (prefix, i))
        with open(p, "wb") as f:
            f.write(t.encode("utf-8"))
        paths.append(p)
    return paths


def gguf_parse(path):
    """The file's bytes (its first 64 MB), each metadata entry's (key, start,
    end) and where the tensor infos end: a small parser of the GGUF layout."""
    with open(path, "rb") as f:
        data = f.read(64 << 20)
    pos = 24
    _, _, nt, nkv = struct.unpack_from("<IIQQ", data, 0)

    def skip_value(t):
        nonlocal pos
        size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if t in size:
            pos += size[t]
        elif t == 8:
            (n,) = struct.unpack_from("<Q", data, pos)
            pos += 8 + n
        else:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if et in size:
                pos += size[et] * n
            else:
                for _ in range(n):
                    skip_value(et)
    kvs = []
    for _ in range(nkv):
        start = pos
        (kl,) = struct.unpack_from("<Q", data, pos)
        key = data[pos + 8:pos + 8 + kl].decode()
        pos += 8 + kl
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        skip_value(t)
        kvs.append((key, start, pos))
    for _ in range(nt):
        (nl,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + nl
        (nd,) = struct.unpack_from("<I", data, pos)
        pos += 4 + 8 * nd + 4 + 8
    return data, kvs, pos


def gguf_meta_crc(path):
    """CRC-32 of the header, metadata and tensor infos (the model identity)."""
    data, _, end = gguf_parse(path)
    return zlib.crc32(data[:end])


def gguf_tokenizer_copy(path, template):
    """A metadata-only GGUF with path's architecture and tokenizer and the
    given tokenizer.chat_template."""
    data, kvs, _ = gguf_parse(path)
    keep = [data[a:b] for k, a, b in kvs if (k.startswith("tokenizer.") or k == "general.architecture")
            and k != "tokenizer.chat_template"]
    t = template.encode("utf-8")
    k = b"tokenizer.chat_template"
    keep.append(struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, len(t)) + t)
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(keep)) + b"".join(keep)
    return out + b"\0" * ((32 - len(out) % 32) % 32)


def gguf_bytes(kvs):
    """A GGUF v3 file with metadata only: kvs is a list of (key, type, value);
    type 8 string, 7 bool, 4 u32, (9, et) array of et."""
    def s(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def val(t, v):
        if t == 8:
            return s(v)
        if t == 7:
            return struct.pack("<B", 1 if v else 0)
        if t == 4:
            return struct.pack("<I", v)
        if t == 5:
            return struct.pack("<i", v)
        if t == 6:
            return struct.pack("<f", v)
        et = t[1]
        return struct.pack("<IQ", et, len(v)) + b"".join(val(et, x) for x in v)
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", 9 if isinstance(t, tuple) else t) + val(t, v)
    return out + b"\0" * ((32 - len(out) % 32) % 32)


def check_chat(name, model, trims):
    """tokenize --chat against apply_chat_template, token for token."""
    with open(os.path.join(REF, "chat_%s.jsonl" % name), encoding="utf-8") as f:
        chat = [json.loads(line) for line in f]
    systems = []
    for c in chat:
        if c["system"] not in systems:
            systems.append(c["system"])
    n_same = n_all = 0
    tiled = True
    for system in systems:
        rows = [c for c in chat if c["system"] == system]
        sel = [chat_paths[chat_texts.index(c["text"])] for c in rows]
        a = run(["tokenize", "--chat", "-m", model] + (["--system", system] if system is not None else []) + sel)
        if not check(a.returncode == 0, "%s: tokenize --chat%s runs" % (name, " --system" if system else "")):
            continue
        d = akstream.docs_of(a.stdout)
        for c, x in zip(rows, sel):
            g = d[x]
            n_all += 1
            ids = g["tokens"].tolist()
            n_same += ids == c["ids"]
            if ids != c["ids"]:
                print("#   %r system %r:\n#   got %s\n#   ref %s" % (c["text"], system, ids, c["ids"]))
            # the template's tokens are special and cover nothing; the
            # others tile the user's text (trimmed where the template trims)
            offs = g["offsets"].tolist()
            sp = g["special"].tolist()
            own = [o for o, s in zip(offs, sp) if not (s and o[0] == o[1])]
            text = c["text"].encode("utf-8")
            if trims:  # Jinja's trim
                lo = len(text) - len(c["text"].lstrip().encode("utf-8"))
                body = range(lo, lo + len(c["text"].strip().encode("utf-8")))
            else:
                body = range(len(text))
            cover = set()
            for o in own:  # a byte-level token inside a character covers all of it
                cover |= set(range(o[0], o[1]))
            segs = g["segments"].tolist()
            tiled &= cover == set(body) and g["text"].tobytes() == text + b"\n" and \
                all(sg == -1 for sg, s, o in zip(segs, sp, offs) if s and o[0] == o[1])
        if system is None:
            m = run(["decode", "--mark", "-m", model], stdin=a.stdout)
            check(m.returncode == 0 and m.stdout == b"".join(c["text"].encode("utf-8") + b"\n" for c in rows),
                  "%s: decode --mark of a --chat stream shows the user's own text" % name)
    check(n_all and n_same == n_all, "%s: tokenize --chat ids identical to apply_chat_template on %d/%d prompts" %
          (name, n_same, n_all))
    check(tiled, "%s: --chat template tokens special with empty offsets, the rest tiling the user's text" % name)
    check_split(name, model, chat)


def check_split(name, model, chat):
    """tokenize --chat --split: the whole turn's ids are apply_chat_template's
    (the marker cut out), and --prefix + --suffix are exactly those ids."""
    mark = "\u2063SPLIT\u2063"
    n_all = n_whole = n_parts = 0
    for k, c in enumerate(c for c in chat if c["system"] is None):
        t = c["text"]
        # split after a blank line when there is one, else after the middle space
        cut = t.rfind("\n\n") + 2 if "\n\n" in t.strip() else (t.find(" ", len(t) // 2) + 1 or len(t) // 2)
        f = os.path.join(tmp, "split%s%03d.txt" % (name, k))
        with open(f, "wb") as fh:
            fh.write((t[:cut] + mark + t[cut:] + "\n").encode("utf-8"))
        outs = [run(["tokenize", "--chat", "-m", model, "--split", mark] + part + [f])
                for part in ([], ["--prefix"], ["--suffix"])]
        if any(o.returncode for o in outs):
            print("# " + " | ".join(o.stderr.decode().strip() for o in outs))
            n_all += 1
            continue
        w, pre, suf = [akstream.docs_of(o.stdout)[f] for o in outs]
        n_all += 1
        n_whole += w["tokens"].tolist() == c["ids"]
        k0 = [r for r in akstream.read_records(outs[0].stdout) if r.get("type") == "doc"][0]["meta"].get(
            "chat_prefix_tokens")
        joined = pre["tokens"].tolist() + suf["tokens"].tolist()
        text = (t + "\n").encode("utf-8")
        n_parts += joined == c["ids"] and k0 == len(pre["tokens"]) and \
            pre["text"].tobytes() + suf["text"].tobytes() == text and \
            all(o[1] <= len(pre["text"]) for o in pre["offsets"].tolist()) and \
            all(0 <= o[0] <= o[1] <= len(suf["text"]) for o in suf["offsets"].tolist())
    check(n_all and n_whole == n_all, "%s: tokenize --chat --split: the whole turn is apply_chat_template's "
          "ids (%d/%d)" % (name, n_whole, n_all))
    check(n_all and n_parts == n_all, "%s: --prefix + --suffix = the whole turn's ids, texts and offsets "
          "in their parts (%d/%d)" % (name, n_parts, n_all))


tmp = tempfile.mkdtemp()
docs = hfref.corpus()
longdoc = "\n".join(docs)
paths = write_docs(docs + [longdoc], "doc")

with open(os.path.join(REF, "chat_smollm2.jsonl"), encoding="utf-8") as f:
    chat_texts = []
    for line in f:
        t = json.loads(line)["text"]
        if t not in chat_texts:
            chat_texts.append(t)
# each file holds its text and one final newline, which tokenize --chat
# leaves out of the turn (as llama.cpp's -f does): the ids are still
# apply_chat_template's of the text
chat_paths = write_docs([t + "\n" for t in chat_texts], "chat")

for name, model in MODELS.items():
    if not check(os.path.exists(model), "%s: the model file is installed (make test installs it)" % name):
        continue
    ref = read_ref(name)
    check(len(ref) == len(docs) + 1, "%s: the reference has every document and the long one" % name)
    p = run(["tokenize", "-m", model] + paths)
    if not check(p.returncode == 0, "%s: tokenize runs on the corpus" % name):
        continue
    got = akstream.docs_of(p.stdout)
    got = [got[x] for x in paths]
    q = run(["tokenize", "--no-special", "-m", model] + paths)
    plain = akstream.docs_of(q.stdout) if q.returncode == 0 else {}
    bad = [i for i, g in enumerate(got) if g["tokens"].tolist() != ref[i][0]]
    check(not bad, "%s: ids identical to transformers' GGUF tokenizer on %d/%d documents%s" %
          (name, len(got) - len(bad), len(got), " (first differing: doc %d %r)" % (bad[0], (docs + [longdoc])[bad[0]][:40])
                                                 if bad else ""))
    bad = [i for i, x in enumerate(paths) if x not in plain or plain[x]["tokens"].tolist() != ref[i][2]]
    check(not bad, "%s: --no-special ids identical on %d/%d documents" % (name, len(paths) - len(bad), len(paths)))
    texts = docs + [longdoc]
    check(all(g["text"].tobytes() == t.encode("utf-8") for g, t in zip(got, texts)),
          "%s: the text tensor holds the input" % name)
    bad, n_off = [], 0
    for i, (g, t) in enumerate(zip(got, texts)):
        if set(t.encode("utf-8")) & MISSING_BYTES[name]:
            continue
        n_off += 1
        offs = [tuple(x) for x in g["offsets"].tolist()]
        sp = g["special"].tolist()
        keep = [k for k in range(len(offs)) if not (sp[k] and offs[k][0] == offs[k][1])]
        if g["tokens"].tolist() != ref[i][0] or [offs[k] for k in keep] != [ref[i][1][k] for k in keep]:
            bad.append(i)
    check(not bad, "%s: byte offsets identical to transformers' on %d/%d documents%s" %
          (name, n_off - len(bad), n_off, " (first differing: doc %d)" % bad[0] if bad else ""))
    sp = got[0]["special"].tolist()
    check(name != "gemma3" or (got[0]["tokens"][0] == 2 and sp[0] == 1 and got[0]["offsets"][0].tolist() == [0, 0]),
          "%s: add_bos_token honoured: BOS first, special, covering nothing" % name)

    # round trip, for documents the vocabulary can give back: SmolLM2 lacks
    # some bytes; Gemma's decoder turns U+2581 into a space
    eligible = [i for i, t in enumerate(texts) if not set(t.encode("utf-8")) & MISSING_BYTES[name]
                and "\u2581" not in t]
    t = run(["tokenize", "-m", model] + [paths[i] for i in eligible])
    r = run(["decode", "-m", model], stdin=t.stdout)
    want = b"".join(texts[i].encode("utf-8") for i in eligible)
    check(t.returncode == 0 and r.returncode == 0 and r.stdout == want,
          "%s: tokenize | decode returns %d/%d documents byte for byte" % (name, len(eligible), len(texts)))

    # identity: the file's name and the metadata checksum the model side uses
    h = akstream.read_records(p.stdout)[0]["model"]
    try:
        import gguf
        base = gguf.GGUFReader(model).fields["general.name"].contents()
    except ImportError:
        base = h.get("name")
    check(h.get("name") == base and h.get("tokenizer_crc32") == gguf_meta_crc(model),
          "%s: the stream header names %s (general.name) with the GGUF metadata checksum" % (name, base))

    check_chat(name, model, trims=name == "gemma3")

    # --from-ids with a GGUF model: the ids tokenize gave, the same header, the text back
    f = paths[0]
    a = run(["tokenize", "-m", model, f])
    ids = " ".join(str(i) for i in akstream.docs_of(a.stdout)[f]["tokens"].tolist())
    b = run(["tokenize", "--from-ids", "-m", model], stdin=ids.encode())
    da = akstream.docs_of(a.stdout)[f] if a.returncode == 0 else None
    db = akstream.docs_of(b.stdout).get("<stdin>") if b.returncode == 0 else None
    ha = akstream.read_records(a.stdout)[0]["model"] if a.returncode == 0 else None
    hb = akstream.read_records(b.stdout)[0]["model"] if b.returncode == 0 else {}
    check(db is not None and db["tokens"].tolist() == da["tokens"].tolist() and ha == hb and
          (name != "smollm2" or db["text"].tobytes() == docs[0].encode("utf-8")),
          "%s: tokenize --from-ids takes the GGUF model (%s)" % (name, b.stderr.decode().strip()))

# a Hugging Face directory's chat template (tokenizer_config.json): Qwen 3's ChatML
check_chat("qwen3", hfref.tokenizer_dir("qwen3"), trims=False)

# other templates of the two families (ref/chat_templates.jsonl): Qwen 2.5's
# ChatML with an escaped default system turn, Gemma 3's with a one-newline
# separator, Gemma 2's without a system turn (refused with --system)
with open(os.path.join(REF, "chat_templates.jsonl"), encoding="utf-8") as f:
    # Gemma's variants without a system turn render as Gemma 3's, tested above
    variants = [v for v in map(json.loads, f) if v["tokenizer"] != "gemma3" or v["system"] is not None]
n_same = n_all = 0
for vname in dict.fromkeys(v["variant"] for v in variants):
    rows = [v for v in variants if v["variant"] == vname]
    if rows[0]["tokenizer"] == "qwen3":
        model = os.path.join(tmp, vname)
        os.makedirs(model)
        os.symlink(os.path.join(hfref.tokenizer_dir("qwen3"), "tokenizer.json"), os.path.join(model, "tokenizer.json"))
        with open(os.path.join(model, "tokenizer_config.json"), "w") as f:
            json.dump({"chat_template": rows[0]["template"]}, f)
    elif os.path.exists(MODELS[rows[0]["tokenizer"]]):
        model = os.path.join(tmp, vname + ".gguf")
        with open(model, "wb") as f:
            f.write(gguf_tokenizer_copy(MODELS[rows[0]["tokenizer"]], rows[0]["template"]))
    else:
        continue
    for system in dict.fromkeys(v["system"] for v in rows):
        sel = [v for v in rows if v["system"] == system]
        a = run(["tokenize", "--chat", "-m", model] + (["--system", system] if system else []) +
                [chat_paths[chat_texts.index(v["text"])] for v in sel])
        if sel[0]["ids"] is None:
            err = a.stderr.decode().splitlines()
            check(a.returncode == 78 and len(err) == 1 and "no system turn" in err[0],
                  "%s: --system refused in one line, exit 78, as the template refuses it" % vname)
            continue
        d = akstream.docs_of(a.stdout) if a.returncode == 0 else {}
        for v in sel:
            x = chat_paths[chat_texts.index(v["text"])]
            n_all += 1
            n_same += x in d and d[x]["tokens"].tolist() == v["ids"]
check(n_all and n_same == n_all, "other templates of the families: --chat ids identical to apply_chat_template "
      "on %d/%d prompts" % (n_same, n_all))

# a stream from one GGUF model is refused by another
sm, ge = MODELS["smollm2"], MODELS["gemma3"]
if os.path.exists(sm) and os.path.exists(ge):
    a = run(["tokenize", "-m", sm, paths[0]])
    r = run(["decode", "-m", ge], stdin=a.stdout)
    err = r.stderr.decode().splitlines()
    check(r.returncode == 65 and len(err) == 1 and err[0].startswith("decode: "),
          "decode refuses a SmolLM2 stream with the Gemma 3 tokenizer (one line, exit 65)")
    # a directory holding the one GGUF file is the model too
    r = run(["tokenize", "-m", os.path.dirname(sm), paths[0]])
    check(r.returncode == 0 and akstream.docs_of(r.stdout)[paths[0]]["tokens"].tolist() == read_ref("smollm2")[0][0],
          "a directory holding one .gguf file names that model")
    # truncated inside the vocabulary
    with open(sm, "rb") as f:
        head = f.read(200000)
    tp = os.path.join(tmp, "truncated.gguf")
    with open(tp, "wb") as f:
        f.write(head)
    r = run(["tokenize", "-m", tp, paths[0]])
    err = r.stderr.decode().splitlines()
    check(r.returncode == 65 and len(err) == 1 and err[0].startswith("tokenize: "),
          "a truncated GGUF file is refused with one line, exit 65")

# GGUF files whose tokenizer is not supported: one line naming it, exit 78
toks = ["<unk>", "a", "b", "ab"]
cases = [
    ("unknown tokenizer model", [("tokenizer.ggml.model", 8, "t5"), ("tokenizer.ggml.tokens", (9, 8), toks)], "t5"),
    ("unknown pre-tokenizer", [("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "no-such-pre"),
                               ("tokenizer.ggml.tokens", (9, 8), toks), ("tokenizer.ggml.merges", (9, 8), ["a b"])],
     "no-such-pre"),
    ("no tokenizer at all", [("general.architecture", 8, "llama")], "tokenizer.ggml.model"),
]
for what, kvs, word in cases:
    gp = os.path.join(tmp, "bad.gguf")
    with open(gp, "wb") as f:
        f.write(gguf_bytes(kvs))
    r = run(["tokenize", "-m", gp, paths[0]])
    err = r.stderr.decode().splitlines()
    check(r.returncode == 78 and len(err) == 1 and err[0].startswith("tokenize: ") and word in err[0],
          "%s: refused with one line naming %s, exit 78 (%s)" % (what, word, err[0] if err else "no message"))

# a small llama (SentencePiece by scores) vocabulary: merges derived from
# the scores, byte fallback, add_space_prefix; the reference is the same
# vocabulary and merges as HF tokenizers builds them (see tok_gguf.c)
sp_toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + \
          ["\u2581", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "llo", "hello", "\u2581hello", "\u2581w", "or",
           "\u2581wor", "ld", "\u2581world"]
scores = [0.0] * 259 + [-1.0 * i for i in range(len(sp_toks) - 259)]
types = [2, 3, 3] + [6] * 256 + [1] * (len(sp_toks) - 259)
gp = os.path.join(tmp, "spm.gguf")
with open(gp, "wb") as f:
    f.write(gguf_bytes([("general.architecture", 8, "llama"), ("tokenizer.ggml.model", 8, "llama"),
                        ("tokenizer.ggml.tokens", (9, 8), sp_toks), ("tokenizer.ggml.scores", (9, 6), scores),
                        ("tokenizer.ggml.token_type", (9, 5), types), ("tokenizer.ggml.bos_token_id", 4, 1),
                        ("tokenizer.ggml.eos_token_id", 4, 2), ("tokenizer.ggml.unknown_token_id", 4, 0)]))
try:
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.processors import TemplateProcessing
    have_tokenizers = True
except ImportError:
    have_tokenizers = False
if check(have_tokenizers, "tokenizers (the reference) is importable"):
    vocab = {t: i for i, t in enumerate(sp_toks)}
    # transformers' generate_merges: splits of each token, by the token's score
    merges = []
    for tok, sc in zip(sp_toks, scores):
        local = [(tok[:k], tok[k:], sc) for k in range(1, len(tok)) if tok[:k] in vocab and tok[k:] in vocab]
        merges += sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
    merges = [(a, b) for a, b, _ in sorted(merges, key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)]
    hf = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    hf.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    hf.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(content=" ", left=1)])
    hf.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    hf.add_special_tokens(["<s>", "</s>"])
    texts = ["hello world", "hello  world", " hello", "héllo wörld!", "<s>hello</s> world", "dlrow olleh", ""]
    sel = write_docs(texts, "spm")
    a = run(["tokenize", "-m", gp] + sel)
    ok = a.returncode == 0
    if ok:
        d = akstream.docs_of(a.stdout)
        for t, x in zip(texts, sel):
            if d[x]["tokens"].tolist() != hf.encode(t).ids:
                ok = False
                print("#   %r: got %s, HF %s" % (t, d[x]["tokens"].tolist(), hf.encode(t).ids))
    check(ok, "llama GGUF vocabulary by scores: ids identical to HF tokenizers on %d texts" % len(texts))
    # transformers 5.24 loading this file (AutoTokenizer, gguf_file=) gave these
    tf_ids = [[1, 271, 276], [1, 271, 259, 276], [1, 271], [1, 259, 260, 198, 172, 269, 272, 198, 185, 265, 275, 36],
              [1, 1, 270, 2, 276], [1, 259, 266, 262, 265, 263, 264, 259, 263, 268, 261, 260], [1]]
    check([hf.encode(t).ids for t in texts] == tf_ids, "the tokenizers reference equals transformers' GGUF tokenizer")
    a = run(["tokenize", "--no-special", "-m", gp] + sel)
    r = run(["decode", "-m", gp], stdin=a.stdout)
    want = "".join(hf.decode(hf.encode(t, add_special_tokens=False).ids, skip_special_tokens=False) for t in texts)
    check(r.returncode == 0 and r.stdout.decode() == want, "llama GGUF vocabulary: decode equals HF's decode")

# bert: the default model's WordPiece vocabulary in llama.cpp's spelling
# (convert_hf_to_gguf.py: U+2581 before a word's first piece, "##" dropped,
# [NAMES] kept); transformers cannot read such a file, so the reference is
# HF tokenizers on the model's own tokenizer.json
if have_tokenizers:
    minilm_tok = hfref.load("default")  # no padding or truncation
    inv = sorted((i, t) for t, i in minilm_tok.get_vocab().items())
    check([i for i, _ in inv] == list(range(len(inv))), "the default model's vocabulary has ids 0..n-1")

    def phantom(t):
        if t.startswith("[") and t.endswith("]"):
            return t
        return t[2:] if t.startswith("##") else "\u2581" + t
    btoks = [phantom(t) for _, t in inv]
    names = {"[PAD]": "padding", "[UNK]": "unknown", "[CLS]": "cls", "[SEP]": "seperator", "[MASK]": "mask"}
    kv = [("general.architecture", 8, "bert"), ("tokenizer.ggml.model", 8, "bert"),
          ("tokenizer.ggml.tokens", (9, 8), btoks),
          ("tokenizer.ggml.token_type", (9, 5), [3 if t in names else 1 for t in btoks])]
    kv += [("tokenizer.ggml.%s_token_id" % v, 4, btoks.index(k)) for k, v in names.items()]
    bp = os.path.join(tmp, "bert.gguf")
    with open(bp, "wb") as f:
        f.write(gguf_bytes(kv))
    a = run(["tokenize", "-m", bp] + paths)
    ok = a.returncode == 0
    if ok:
        d = akstream.docs_of(a.stdout)
        bad = [i for i, (t, x) in enumerate(zip(docs + [longdoc], paths))
               if d[x]["tokens"].tolist() != minilm_tok.encode(t).ids or
               d[x]["token_types"].tolist() != minilm_tok.encode(t).type_ids]
        ok = not bad
        if bad:
            print("#   first differing: doc %d %r" % (bad[0], (docs + [longdoc])[bad[0]][:40]))
    check(ok, "bert GGUF vocabulary: ids and token types identical to HF tokenizers on the corpus")

# --chat: a model without a template or turn tokens needs --chat-format
minilm = os.environ["ATTNKIT_MODEL"]
r = run(["tokenize", "--chat", "-m", minilm, chat_paths[0]])
err = r.stderr.decode().splitlines()
check(r.returncode == 78 and len(err) == 1 and "--chat-format" in err[0],
      "tokenize --chat without a chat template: one line pointing to --chat-format, exit 78")
r = run(["tokenize", "--chat", "-m", hfref.tokenizer_dir("llama3"), chat_paths[0]])
err = r.stderr.decode().splitlines()
check(r.returncode == 78 and len(err) == 1 and "not one of the known" in err[0],
      "tokenize --chat with Llama 3's template (another family): one line, exit 78")
r = run(["tokenize", "--chat", "--chat-format", "chatml", "-m", minilm, chat_paths[0]])
check(r.returncode == 0, "--chat-format renders a family the model's template does not name")
r = run(["tokenize", "--system", "x", "-m", minilm, chat_paths[0]])
check(r.returncode == 64, "--system without --chat is a usage error")
r = run(["tokenize", "--chat", "--chat-format", "vicuna", "-m", minilm, chat_paths[0]])
check(r.returncode == 64, "an unknown --chat-format is a usage error")

sys.exit(tap.status())
