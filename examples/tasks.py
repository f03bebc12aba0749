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
  OUT/pqa/NAME.txt   paraphrased multi-document QA (issue 19): documents
                     of Debian text (licences, /usr/share/doc/*/copyright)
                     of about 1K, 2K or 4K tokens, one gold paragraph
                     (first, middle or last), one distractor holding a
                     near-miss fact, and a question written by hand in
                     other words than the gold (examples/pqa.py); a chat
                     prompt: the question is the user's last line
  OUT/needle/NAME.txt needles in Debian text (RULER, Hsieh et al. 2024):
                     single key, multi-key, multi-value and variable
                     tracking, haystacks of about 1K, 2K and 4K tokens
  OUT/TASK/gold.tsv  NAME<TAB>the gold continuation (kvcache --targets)
  OUT/items.tsv      task, name, position, answer, and where the text came
                     from, one line per item; for pqa and needle also the
                     split (calibration or test: by question for pqa, by
                     item for needle, fixed seed), the context size aimed
                     at, the kind, the answers accepted (|-separated) and,
                     for pqa, the question's overlap with its gold
                     paragraph (content words shared, longest shared run)
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

import pqa

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


# ---- issue 19: paraphrased QA and needles (chat prompts) -------------------

SIZES = [1000, 2000, 4000]      # context sizes aimed at, in tokens
CHARS_PER_TOKEN = 4.6           # licence text in Qwen2.5 tokens (measured: 4.5-4.7)
MAX_DOCS = 20
CALIBRATION = 1 / 3             # the share of questions (pqa) or items (needle) in calibration
STOP = set("""a an the and or but if of to in on at by for from with without as is are was were be been
being do does did done have has had having it its it's this that these those there their they them
he she his her you your yours we our us i me my who whom whose which what when where why how
not no nor so than too very can could may might must shall should will would also any all each
some such only own same other into onto over under about after before again further then once
up down out off above below between both few more most one s t just don now""".split())


def content_words(text):
    return [w for w in re.findall(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*", text.lower()) if w not in STOP]


def overlap(question, gold):
    """(content words of the question found in the gold, the longest run of
    consecutive content words of the question found consecutively in it)."""
    q, g = content_words(question), content_words(gold)
    shared = sorted(set(q) & set(g))
    best = 0
    for i in range(len(q)):
        for j in range(len(g)):
            k = 0
            while i + k < len(q) and j + k < len(g) and q[i + k] == g[j + k]:
                k += 1
            best = max(best, k)
    return shared, best


def find_paragraph(paras, anchor, n, path):
    hits = [i for i, p in enumerate(paras) if anchor in p]
    if len(hits) != 1:
        sys.exit(f"tasks.py: {path}: {len(hits)} paragraphs hold {anchor!r} (one expected)")
    return " ".join(paras[hits[0]:hits[0] + n])


def title(path):
    return os.path.basename(path) if "/common-licenses/" in path else path.split("/")[-2] + " copyright"


# The last line of every chat prompt.  Asked "in a few words" at the top
# alone, Qwen2.5 restates the question ("After 60 days without such a
# message does their permission") and 8 greedy tokens hold no answer; with
# this line after the question it answers "60 days" (6 pqa items, qwen0.5b
# and qwen1.5b).  It sits in the question's block, so it is kept and is part
# of the question's rows.
ANSWER_ONLY = "Reply with the short answer only (a number, name, date or phrase)."


def chat_prompt(docs, question):
    ctx = "\n\n".join(f"Document [{i + 1}] ({t}): {p}" for i, (t, p) in enumerate(docs))
    return ("Answer the question from the documents below, in a few words.\n\n" + ctx +
            "\n\nQuestion: " + question + "\n" + ANSWER_ONLY)


def split_of(rng, names):
    """A fixed share of names in calibration, the rest test."""
    names = sorted(names)
    rng.shuffle(names)
    k = round(len(names) * CALIBRATION)
    return {n: ("calibration" if i < k else "test") for i, n in enumerate(names)}


def pqa_items(seed, filler, read):
    """Each question three times: gold first, middle, last; the sizes turn
    so that every question meets every size."""
    rng = random.Random(f"pqa-{seed}")
    split = split_of(random.Random(f"pqa-split-{seed}"), range(len(pqa.QUESTIONS)))
    out = []
    for qi, q in enumerate(pqa.QUESTIONS):
        gold = find_paragraph(read(q["gold"][0]), q["gold"][1], q["gold"][2], q["gold"][0])
        dis = find_paragraph(read(q["distractor"][0]), q["distractor"][1], q["distractor"][2],
                             q["distractor"][0])
        low = [a.lower() for a in q["answers"]]
        if not any(a in gold.lower() for a in low):
            sys.exit(f"tasks.py: pqa question {qi + 1}: no accepted answer in its gold paragraph")
        if any(a in dis.lower() for a in low):
            sys.exit(f"tasks.py: pqa question {qi + 1}: its distractor holds an accepted answer")
        shared, run = overlap(q["question"], gold)
        if run >= 3:
            sys.exit(f"tasks.py: pqa question {qi + 1} shares a run of {run} content words with its gold")
        qwords = content_words(q["question"])
        pool = [(t, p) for t, p in filler if not any(a in p.lower() for a in low) and p != gold and p != dis]
        for pi, pos in enumerate(POSITIONS):
            size = SIZES[(qi + pi) % len(SIZES)]
            budget = size * CHARS_PER_TOKEN - len(gold) - len(dis) - len(q["question"]) - 80
            # fillers: the longest needed to stay within MAX_DOCS documents
            fill, used = [], 0
            cand = pool[:]
            rng.shuffle(cand)
            need = max(1, MAX_DOCS - 2)
            for t, p in cand:
                if used >= budget or len(fill) >= need:
                    break
                if used + len(p) > budget + 400:
                    continue
                if len(fill) < need - 1 and (budget - used) / (need - len(fill)) > len(p) * 1.6 and size > 2000:
                    continue    # too short to reach 4K within MAX_DOCS
                fill.append((t, p))
                used += len(p) + 30
            k = len(fill) + 2
            g = gold_index(pos, k)
            d = rng.choice([i for i in range(k) if i != g])
            docs, it = [], iter(fill)
            for i in range(k):
                docs.append((title(q["gold"][0]), gold) if i == g else
                            (title(q["distractor"][0]), dis) if i == d else next(it))
            out.append(dict(task="pqa", position=pos, text=chat_prompt(docs, q["question"]),
                            answer=q["answers"][0], gold=q["answers"][0], answers="|".join(q["answers"]),
                            split=split[qi], size=str(size), kind="paraphrased", docs=str(k),
                            overlap=f"{len(shared)}/{len(set(qwords))} shared, run {run}",
                            source=f"{title(q['gold'][0])} (gold, q{qi + 1}); {title(q['distractor'][0])} "
                                   f"(distractor, doc {d + 1})"))
    return out


NEEDLE_KEYS = ["lighthouse", "walnut", "saddle", "harbour", "violin", "meadow", "lantern", "glacier",
               "pepper", "orchard", "compass", "thimble", "falcon", "quarry", "ribbon", "tundra",
               "cobbler", "anchor", "juniper", "marble", "kettle", "badger", "canyon", "pillow"]
NEEDLE_KINDS = ["single", "multikey", "multivalue", "vartrack"]


def needle_items(seed, corpus_paras, n):
    """RULER's synthetic tasks in Debian text: sentences placed in a
    haystack of licence paragraphs at a depth (start, middle, end); the
    question is the last line."""
    rng = random.Random(f"needle-{seed}")
    out = []
    for kind in NEEDLE_KINDS:
        for pi, pos in enumerate(POSITIONS):
            for j in range(n):
                size = SIZES[(pi + j) % len(SIZES)]
                paras, used, target = [], 0, size * CHARS_PER_TOKEN - 300
                while used < target:
                    p = rng.choice(corpus_paras)
                    if p in paras:
                        continue
                    paras.append(p)
                    used += len(p) + 2
                num = lambda: str(rng.randrange(10000, 100000))  # noqa: E731
                keys = rng.sample(NEEDLE_KEYS, 4)
                if kind == "single":
                    vals = [num()]
                    needles = [f"One of the special magic numbers for {keys[0]} is: {vals[0]}."]
                    q = f"What is the special magic number for {keys[0]} mentioned in the text above?"
                    answers = vals
                elif kind == "multikey":
                    vals = [num() for _ in keys]
                    needles = [f"One of the special magic numbers for {k} is: {v}." for k, v in zip(keys, vals)]
                    rng.shuffle(needles)
                    q = f"What is the special magic number for {keys[0]} mentioned in the text above?"
                    answers = vals[:1]
                elif kind == "multivalue":
                    vals = [num() for _ in range(3)]
                    needles = [f"One of the special magic numbers for {keys[0]} is: {v}." for v in vals]
                    q = (f"What are all the special magic numbers for {keys[0]} mentioned in the text above? "
                         "List them separated by commas.")
                    answers = [", ".join(vals)] + vals
                else:
                    names = ["".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
                             for _ in range(3)]
                    v = num()
                    needles = [f"VAR {names[0]} = {v}.", f"VAR {names[1]} = VAR {names[0]}.",
                               f"VAR {names[2]} = VAR {names[1]}."]
                    q = (f"Which variables are assigned the value {v}, directly or through other "
                         "variables? List them separated by commas.")
                    answers = [", ".join(names)] + names
                    vals = [v]
                # the needles at the depth: the first in the first, middle or
                # last tenth of the haystack, the others after it in order
                k = len(paras)
                at = {"start": 0, "middle": k // 2, "end": k}[pos]
                for i, sentence in enumerate(needles):
                    paras.insert(min(at + 2 * i, len(paras)), sentence)
                text = ("Read the text below and answer the question after it.\n\n" +
                        "\n\n".join(paras) + "\n\nQuestion: " + q + "\n" + ANSWER_ONLY)
                out.append(dict(task="needle", position=pos, text=text, answer=answers[0],
                                gold=answers[0], answers="|".join(answers), size=str(size), kind=kind,
                                docs=str(len(paras)), overlap="", source=f"common-licenses, {kind}"))
    split = split_of(random.Random(f"needle-split-{seed}"), range(len(out)))
    for i, it in enumerate(out):
        it["split"] = split[i]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--per-position", type=int, default=2,
                    help="QA and key-value items per gold position (default 2)")
    ap.add_argument("--cont", type=int, default=3, help="continuation items (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--licenses", default=LICENSES)
    ap.add_argument("--needles", type=int, default=4,
                    help="needle items per kind and depth (default 4: 48 in all)")
    ap.add_argument("--no-issue19", action="store_true",
                    help="only the first experiment's tasks (qa, kv, cont)")
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
    if not a.no_issue19:
        cache = {}

        def read(path):
            if path not in cache:
                try:
                    with open(path, "rb") as fh:
                        sources.append((path, hashlib.sha256(fh.read()).hexdigest()))
                    cache[path] = paragraphs(path)
                except OSError as e:
                    sys.exit(f"tasks.py: {path}: {e.strerror}")
            return cache[path]
        filler = [(f, p) for f, p in corpus if 30 <= len(p.split()) <= 260]
        items += pqa_items(a.seed, filler, read)
        items += needle_items(a.seed, [p for _, p in filler], a.needles)
    os.makedirs(a.out, exist_ok=True)
    extra = ["split", "size", "kind", "answers", "docs", "overlap"]
    rows = ["\t".join(["task", "name", "position", "answer", "source"] + extra)]
    gold = {}
    count = {}
    for it in items:
        t = it["task"]
        count[t] = count.get(t, 0) + 1
        name = f"{t}{count[t]:03d}-{it['position']}" if it["position"] != "-" else f"{t}{count[t]:03d}"
        os.makedirs(os.path.join(a.out, t), exist_ok=True)
        write(os.path.join(a.out, t, name + ".txt"), it["text"])
        gold.setdefault(t, []).append(f"{name}\t{tsv_escape(it['gold'])}")
        rows.append("\t".join([t, name, it["position"], it["answer"], it["source"]] +
                               [it.get(k, "") for k in extra]))
    for t, lines in gold.items():
        write(os.path.join(a.out, t, "gold.tsv"), "\n".join(lines) + "\n")
    write(os.path.join(a.out, "items.tsv"), "\n".join(rows) + "\n")
    write(os.path.join(a.out, "sources.tsv"),
          "".join(f"{p}\t{h}\n" for p, h in sources))


if __name__ == "__main__":
    main()
