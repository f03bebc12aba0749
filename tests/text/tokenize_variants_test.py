"""tokenize against Hugging Face `tokenizers` on tokenizer.json variants that
the shipped tokenizers do not exercise: every Split behaviour and invert,
Whitespace, Digits, NFD/NFKC/NFKD, Lowercase, StripAccents, Replace,
Prepend, BertProcessing, added tokens with lstrip/rstrip/single_word and
normalized ones.  Each variant is made here from the default model's
WordPiece tokenizer or from GPT-2 (as hfref builds it), saved by HF itself,
and both sides tokenize the whole corpus."""
import copy
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "py"))
sys.path.insert(0, os.path.join(os.environ["AK_TOP"], "tests", "tokenize"))
import akstream  # noqa: E402
import hfref  # noqa: E402
try:
    from tokenizers import AddedToken, Tokenizer
except ImportError:  # the reference is missing: say so, do not pretend
    print("not ok - tokenizers (the reference) is not installed; run .ci/deps.sh")
    sys.exit(1)

import tap  # noqa: E402
from tap import check  # noqa: E402


docs = hfref.corpus()
# one long document, so the pre-tokenizers' output comes in several batches
docs.append("\n".join(docs) * 4)
tmp = tempfile.mkdtemp()
paths = []
for i, text in enumerate(docs):
    paths.append(os.path.join(tmp, "doc%03d.txt" % i))
    with open(paths[-1], "wb") as f:
        f.write(text.encode("utf-8"))

bert = json.loads(hfref.load("default").to_str())
llama2 = json.loads(hfref.load("llama2").to_str())
gpt2 = json.loads(hfref.load("gpt2").to_str())


def split(pattern, behavior, invert=False, regex=True):
    return {"type": "Split", "pattern": {"Regex" if regex else "String": pattern}, "behavior": behavior,
            "invert": invert}


def bert_with(normalizer=None, pre=None, post="keep"):
    j = copy.deepcopy(bert)
    if normalizer is not None:
        j["normalizer"] = normalizer
    if pre is not None:
        j["pre_tokenizer"] = pre
    if post != "keep":
        j["post_processor"] = post
    return j


def gpt2_with(pre):
    j = copy.deepcopy(gpt2)
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": pre + [
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    return j


lower = {"type": "Lowercase"}
ws = {"type": "WhitespaceSplit"}
def metaspace(scheme, split_, decoder=False):
    j = copy.deepcopy(llama2)
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split_}
    if decoder:
        j["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split_}
    return j


variants = {
    "metaspace-first": metaspace("first", False),
    "metaspace-always-split": metaspace("always", True, decoder=True),
    "metaspace-never-split": metaspace("never", True),
    "split-removed": bert_with(lower, {"type": "Sequence", "pretokenizers": [split(r"[\s,.!?]+", "Removed")]}),
    "split-merged-prev": bert_with(lower, {"type": "Sequence", "pretokenizers": [split(r"[-,.!?']", "MergedWithPrevious"), ws]}),
    "split-merged-next": bert_with(lower, {"type": "Sequence", "pretokenizers": [split(r"[-,.!?']", "MergedWithNext"), ws]}),
    "split-contiguous": bert_with(lower, {"type": "Sequence", "pretokenizers": [split(r"[-,.!?']", "Contiguous"), ws]}),
    "split-invert": bert_with(lower, {"type": "Sequence", "pretokenizers": [split(r"\p{L}+", "Removed", True)]}),
    "split-string": bert_with(lower, {"type": "Sequence", "pretokenizers": [split(" ", "Isolated", regex=False), ws]}),
    "whitespace-digits": bert_with(lower, {"type": "Sequence", "pretokenizers": [
        {"type": "Whitespace"}, {"type": "Digits", "individual_digits": True}]}),
    "nfd-strip-lower": bert_with({"type": "Sequence", "normalizers": [
        {"type": "NFD"}, {"type": "StripAccents"}, lower]}, {"type": "Whitespace"}),
    "nfkc-lower": bert_with({"type": "Sequence", "normalizers": [{"type": "NFKC"}, lower]}, {"type": "Whitespace"}),
    "nfkd-replace": bert_with({"type": "Sequence", "normalizers": [
        {"type": "NFKD"}, {"type": "Replace", "pattern": {"String": "th"}, "content": "X"}, lower]},
        {"type": "BertPreTokenizer"}),
    "bert-keep-accents": bert_with({"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": False,
                                    "strip_accents": False, "lowercase": True}),
    "bert-processing": bert_with(post={"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]}),
    "gpt2-merged-prev": gpt2_with([split(r"\s+", "MergedWithPrevious")]),
    "gpt2-prepend": dict(gpt2_with([split(r"\p{N}", "Isolated")]), normalizer={"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "_"}, {"type": "NFC"}]}),
}

added_variant = Tokenizer.from_str(json.dumps(bert))
added_variant.add_tokens([AddedToken("hello", single_word=True, normalized=True),
                          AddedToken("[mask]", lstrip=True, rstrip=True, normalized=False),
                          AddedToken("sp", single_word=False, normalized=True),
                          AddedToken("QUICK Brown", normalized=True)])
added_variant.add_special_tokens([AddedToken("<|endoftext|>", lstrip=True, normalized=False)])

for name, j in list(variants.items()) + [("added-tokens", None)]:
    tok = added_variant if j is None else Tokenizer.from_str(json.dumps(j))
    tok.no_padding()
    tok.no_truncation()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    tok.save(os.path.join(d, "tokenizer.json"))
    p = subprocess.run(["tokenize", "-m", d] + paths, capture_output=True)
    if p.returncode:
        check(False, "%s: tokenize runs (%s)" % (name, p.stderr.decode(errors="replace").strip()))
        continue
    got = akstream.docs_of(p.stdout)
    same, first = 0, None
    for i, text in enumerate(docs):
        want = tok.encode(text).ids
        mine = got[paths[i]]["tokens"].tolist()
        same += want == mine
        if want != mine and first is None:
            first = (i, text[:40], want[:12], mine[:12])
    check(same == len(docs), "%s: ids identical to HF on %d/%d documents%s" %
          (name, same, len(docs), "" if first is None else " (doc %d %r: HF %s, got %s)" % first))
    if name.startswith("metaspace"):
        r = subprocess.run(["decode", "--special", "-m", d], input=p.stdout, capture_output=True)
        want = "".join(tok.decode(tok.encode(t).ids, skip_special_tokens=False) for t in docs)
        check(r.returncode == 0 and r.stdout.decode("utf-8", "replace") == want,
              "%s: decode --special equals HF decode" % name)

sys.exit(tap.status())
