#!/usr/bin/env python3
"""examples/tasks.py OUT [--per-position N] [--cont N] [--seed S]

Writes the pruning experiment's items, made from real text that Debian
ships in every installation (/usr/share/common-licenses, package
base-files), with their ground truth:

  OUT/qa/NAME.txt    multi-document QA ("Lost in the Middle"): K license
                     paragraphs, then a question answered by exactly one of
                     them, the gold one, put first, in the middle or last.
                     The question quotes eight words of the gold paragraph
                     and asks for what follows; the phrase occurs in no
                     other paragraph of the item.
  OUT/kv/NAME.txt    key-value retrieval: a JSON object of random hex
                     pairs, asked for one key's value, the pair first, in
                     the middle or last.
  OUT/cont/NAME.txt  a long real document (consecutive paragraphs of one
                     license); its gold continuation is the next paragraph.
  OUT/TASK/gold.tsv  NAME<TAB>the gold continuation (kvcache --targets)
  OUT/items.tsv      task, name, position, answer, and where the text came
                     from, one line per item
  OUT/sources.tsv    sha256 of every source file read

A file's text ends where the model's answer starts (no newline): the tasks
are completions, so the answer is what a model continues with.  The same
seed gives the same items from the same files.

Why these formats: the two causal models (SmolLM2-135M-Instruct, Gemma 3
270M) are small.  Measured with the full prompt (examples/README.md): asked
in words ("which word comes right after ...?") they answered none of 6
through the chat template and 2 to 7 of 10 as plain completions; asked to
continue a quote they copy it.  With 36-character UUIDs as keys and values
neither model retrieved one value of 10 even among 3 pairs (their first 8
characters matched about as often as chance among three), so keys and
values here are 8 hex digits, the first group of a random UUID.
"""
import argparse
import hashlib
import json
import os
import random
import re
import sys
import uuid

LICENSES = "/usr/share/common-licenses"
# Fixed order: the same items on every machine with these files.
FILES = ["GPL-3", "GPL-2", "LGPL-2.1", "LGPL-3", "Apache-2.0", "MPL-2.0", "MPL-1.1",
         "GFDL-1.3", "GFDL-1.2", "Artistic", "CC0-1.0", "GPL-1"]
POSITIONS = ["start", "middle", "end"]
QA_DOCS = 5          # paragraphs per QA item
QA_PHRASE = 8        # words quoted in the question
QA_GOLD = 3          # words of gold continuation
KV_PAIRS = 6
CONT_MIN_WORDS = 420  # the document before the continuation
CONT_GOLD_WORDS = 40


def paragraphs(path):
    with open(path, encoding="utf-8") as f:
        t = f.read()
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", t) if p.strip()]


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def tsv_escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def gold_index(pos, k):
    return {"start": 0, "middle": k // 2, "end": k - 1}[pos]


def qa_items(rng, corpus, n):
    pool = [(f, p) for f, p in corpus if 40 <= len(p.split()) <= 100]
    out = []
    for pos in POSITIONS:
        made = 0
        while made < n:
            docs = rng.sample(pool, QA_DOCS)
            if len({p for _, p in docs}) < QA_DOCS:
                continue
            g = gold_index(pos, QA_DOCS)
            words = docs[g][1].split()
            j = rng.randrange(0, len(words) - QA_PHRASE - QA_GOLD)
            phrase = " ".join(words[j:j + QA_PHRASE])
            gold = " ".join(words[j + QA_PHRASE:j + QA_PHRASE + QA_GOLD])
            answer = re.sub(r"^\W+|\W+$", "", words[j + QA_PHRASE])
            if not answer or any(phrase in p for i, (_, p) in enumerate(docs) if i != g):
                continue
            if docs[g][1].count(phrase) != 1:
                continue
            ctx = "\n\n".join(f"Document [{i + 1}]: {p}" for i, (_, p) in enumerate(docs))
            text = ctx + "\n\nQuote the documents above exactly.\n" + phrase
            src = ";".join(f for f, _ in docs)
            out.append(dict(task="qa", position=pos, text=text, answer=answer,
                            gold=" " + gold, source=f"{src} (gold {docs[g][0]})"))
            made += 1
    return out


def kv_items(rng, n):
    out = []
    for pos in POSITIONS:
        for _ in range(n):
            pairs = {}
            while len(pairs) < KV_PAIRS:
                k = str(uuid.UUID(int=rng.getrandbits(128)))[:8]
                v = str(uuid.UUID(int=rng.getrandbits(128)))[:8]
                pairs[k] = v
            keys = list(pairs)
            key = keys[gold_index(pos, KV_PAIRS)]
            text = ("JSON data:\n" + json.dumps(pairs, indent=1) +
                    f'\n\nThe value of "{key}" in the JSON data above:\n "{key}": "')
            out.append(dict(task="kv", position=pos, text=text, answer=pairs[key],
                            gold=pairs[key] + '"', source="random"))
    return out


def cont_items(rng, lic, n):
    out = []
    names = [f for f in FILES if len(lic[f]) >= 12]
    tries = 0
    while len(out) < n and tries < 1000:
        tries += 1
        f = rng.choice(names)
        ps = lic[f]
        a = rng.randrange(0, len(ps) - 4)
        b, words = a, 0
        while b < len(ps) - 1 and words < CONT_MIN_WORDS:
            words += len(ps[b].split())
            b += 1
        nxt = ps[b].split() if b < len(ps) else []
        if words < CONT_MIN_WORDS or len(nxt) < 12:
            continue
        if any(o["source"] == f"{f} paragraphs {a + 1}-{b}" for o in out):
            continue
        text = "\n\n".join(ps[a:b])
        gold = "\n\n" + " ".join(nxt[:CONT_GOLD_WORDS])
        out.append(dict(task="cont", position="-", text=text, answer="", gold=gold,
                        source=f"{f} paragraphs {a + 1}-{b}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--per-position", type=int, default=2,
                    help="QA and key-value items per gold position (default 2)")
    ap.add_argument("--cont", type=int, default=3, help="continuation items (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--licenses", default=LICENSES)
    a = ap.parse_args()

    lic, sources = {}, []
    for f in FILES:
        path = os.path.join(a.licenses, f)
        try:
            with open(path, "rb") as fh:
                sources.append((path, hashlib.sha256(fh.read()).hexdigest()))
            lic[f] = paragraphs(path)
        except OSError as e:
            sys.exit(f"tasks.py: {path}: {e.strerror} (Debian's base-files ships it)")
    corpus = [(f, p) for f in FILES for p in lic[f]]

    rng = random.Random(a.seed)
    items = (qa_items(rng, corpus, a.per_position) + kv_items(rng, a.per_position) +
             cont_items(rng, lic, a.cont))
    os.makedirs(a.out, exist_ok=True)
    rows = ["task\tname\tposition\tanswer\tsource"]
    gold = {}
    count = {}
    for it in items:
        t = it["task"]
        count[t] = count.get(t, 0) + 1
        name = f"{t}{count[t]:03d}-{it['position']}" if it["position"] != "-" else f"{t}{count[t]:03d}"
        os.makedirs(os.path.join(a.out, t), exist_ok=True)
        write(os.path.join(a.out, t, name + ".txt"), it["text"])
        gold.setdefault(t, []).append(f"{name}\t{tsv_escape(it['gold'])}")
        rows.append("\t".join([t, name, it["position"], it["answer"], it["source"]]))
    for t, lines in gold.items():
        write(os.path.join(a.out, t, "gold.tsv"), "\n".join(lines) + "\n")
    write(os.path.join(a.out, "items.tsv"), "\n".join(rows) + "\n")
    write(os.path.join(a.out, "sources.tsv"),
          "".join(f"{p}\t{h}\n" for p, h in sources))


if __name__ == "__main__":
    main()
