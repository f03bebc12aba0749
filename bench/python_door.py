#!/usr/bin/env python3
"""bench/python_door.py [--old] - the Python door's compress_prompt on the
example of issue 20: 29 paragraphs of the GPL-3 (sections 7 to 11,
/usr/share/common-licenses/GPL-3) and a question whose answer, "30 days",
is in one of them; 1,602 SmolLM2 tokens with the question; rate 0.3.

For each way of compressing, in a child process of its own: the wall time,
the peak RSS of the largest program it ran (getrusage RUSAGE_CHILDREN, the
pipeline's programs run at once, so their sum can be higher, at most the
figure times the number of model-loading programs), the tokens kept, and
whether "30 days" survived.

  default      compress_prompt(paragraphs, question=q, rate=0.3): qppl ranks
               the documents by the question, sentences fill the budget
  word         the same with use_token_level_filter=True (qppl --fine: the
               lowest-surprisal words of the kept paragraphs dropped;
               attend --surprisal runs too)
  old          (--old) what the default was: attend --probs all, prune
               --policy query --unit word (the issue measured 88 s, 5.3 GB)
  compressor   five prompts (windows of the same license, the same
               question) through one Compressor, against five
               compress_prompt calls: the time per prompt; and, when
               .cache/models/qwen0.5b is there, five short prompts (4
               paragraphs) with Qwen2.5-Coder-0.5B, whose load is most of
               a call's time

Model: SmolLM2-135M-Instruct (.cache/models/smollm2).  Prints a table;
bench/results/python_door.txt keeps a run."""
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPL = "/usr/share/common-licenses/GPL-3"
QUESTION = ("How many days after receiving the copyright holder's notice of a violation "
            "do you have to cure it?")


def paragraphs():
    with open(GPL, encoding="utf-8") as f:
        t = f.read()
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", t) if p.strip()]


def example():
    """The issue's kind of prompt: (paragraphs, question)."""
    return paragraphs()[60:89], QUESTION


def model():
    return os.path.join(os.environ.get("AK_MODELS", os.path.join(TOP, ".cache", "models")),
                        "smollm2")


def one(kind):
    sys.path.insert(0, os.path.join(TOP, "python"))
    import attnkit
    paras, q = example()
    m = model()
    t0 = time.time()
    if kind == "default":
        r = attnkit.compress_prompt(paras, question=q, rate=0.3, model=m)
    elif kind == "word":
        r = attnkit.compress_prompt(paras, question=q, rate=0.3, model=m,
                                    use_token_level_filter=True)
    elif kind == "old":
        tmp = tempfile.mkdtemp()
        src = os.path.join(tmp, "p.txt")
        with open(src, "w") as f:
            f.write("\n\n".join(paras) + "\n\n" + q + "\n")
        b = os.path.join(TOP, "bin")
        out = subprocess.run(
            f"{b}/tokenize -m {m} --segments paragraph {src} | {b}/embed -m {m} | "
            f"{b}/attend -m {m} --probs all | {b}/prune --keep 0.3 --unit word --policy query "
            f"| {b}/decode -m {m} --text", shell=True, capture_output=True, text=True, check=True)
        r = {"compressed_prompt": out.stdout, "compressed_tokens": -1, "origin_tokens": -1}
    elif kind.startswith("compressor"):
        items = [(paragraphs()[60 + 4 * k:80 + 4 * k], q) for k in range(5)]
        if kind.endswith("-qwen"):  # a model whose load is most of a short prompt's time
            m = os.path.join(os.path.dirname(model()), "qwen0.5b")
            items = [(paragraphs()[72 + k:76 + k], q) for k in range(5)]
        if kind.startswith("compressor-calls"):
            rs = [attnkit.compress_prompt(d, question=qq, rate=0.3, model=m) for d, qq in items]
        else:
            with attnkit.Compressor(model=m, rate=0.3) as c:
                rs = [c.compress_prompt(d, question=qq) for d, qq in items]
        r = rs[0]
    wall = time.time() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"kind": kind, "wall": wall, "rss_kb": ru,
                      "kept": r["compressed_tokens"], "total": r["origin_tokens"],
                      "answer": "30 days" in r["compressed_prompt"]}))


def main():
    if not os.path.isdir(model()) or not os.path.exists(GPL):
        print("bench/python_door.py: needs .cache/models/smollm2 and " + GPL, file=sys.stderr)
        return 0
    kinds = ["default", "word"] + (["old"] if "--old" in sys.argv else []) + \
        ["compressor", "compressor-calls"]
    if os.path.isdir(os.path.join(os.path.dirname(model()), "qwen0.5b")):
        kinds += ["compressor-qwen", "compressor-calls-qwen"]
    print(f"{'way':<44} {'wall s':>8} {'peak RSS MB':>12} {'kept/total':>12}  30 days kept")
    for k in kinds:
        p = subprocess.run([sys.executable, __file__, "--one", k], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{k:<44} failed: {p.stderr.strip()[-300:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        wall = r["wall"] / 5 if k.startswith("compressor") else r["wall"]
        label = {"compressor": "Compressor /prompt", "compressor-calls": "5 calls /prompt",
                 "compressor-qwen": "Compressor /prompt (Qwen 0.5B, 4 paragraphs)",
                 "compressor-calls-qwen": "5 calls /prompt (Qwen 0.5B, 4 paragraphs)"}.get(k, k)
        print(f"{label:<44} {wall:>8.1f} {r['rss_kb'] / 1024:>12.0f} "
              f"{str(r['kept']) + '/' + str(r['total']):>12}  {'yes' if r['answer'] else 'no'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2])
    else:
        sys.exit(main())
