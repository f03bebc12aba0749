"""Hugging Face `tokenizers` as the reference for attnkit's tokenize.

Shared by make_reference.py (writes the committed reference ids) and
tests/tokenize_live_test.py (compares live).  Each tokenizer is loaded the way
Hugging Face would load its folder: tokenizer.json as it is; GPT-2's
vocab.json + merges.txt with the ByteLevel pre-tokenizer (no prefix space,
as GPT2TokenizerFast) and <|endoftext|> as a special token."""
import json
import os


NAMES = ["gpt2", "llama2", "llama3", "qwen3", "deepseek_v3", "gpt4o", "default"]


def tokenizer_dir(name):
    if name == "default":
        return os.environ["ATTNKIT_MODEL"]
    shared = os.environ.get("AK_SHARED") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
    return os.path.join(shared, "tokenizers", name)


def load(name):
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    d = tokenizer_dir(name)
    if os.path.exists(os.path.join(d, "tokenizer.json")):
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        return tok
    tok = Tokenizer(BPE.from_file(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def corpus():
    with open(os.path.join(os.path.dirname(__file__), "corpus.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def byte_offsets(text, offsets):
    """HF's character offsets to byte offsets into the UTF-8 text."""
    pos = [0]
    for ch in text:
        pos.append(pos[-1] + len(ch.encode("utf-8")))
    return [(pos[s], pos[e]) for s, e in offsets]


def encode(tok, text):
    """(ids with special tokens, their byte offsets, ids without)."""
    e = tok.encode(text)
    n = tok.encode(text, add_special_tokens=False)
    return e.ids, byte_offsets(text, e.offsets), n.ids


def read_ref(path):
    """A reference file of make_reference.py / make_gguf_reference.py: per
    line, the ids, the (start, end) byte offsets and the special-token
    flags, tab-separated; '#' lines are comments."""
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            a, b, c = line.rstrip("\n").split("\t")
            rows.append(([int(x) for x in a.split()], [tuple(map(int, x.split(","))) for x in b.split()],
                         [int(x) for x in c.split()]))
    return rows
