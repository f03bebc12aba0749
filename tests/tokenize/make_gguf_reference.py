#!/usr/bin/env python3
"""Writes the Hugging Face references for tokenizers read from GGUF files:
transformers' own GGUF tokenizer (AutoTokenizer.from_pretrained(dir,
gguf_file=name)) on every document of corpus.jsonl, and its chat template
renderings.  Needs transformers (not used by the test suite at run time):

    /work/refpy/bin/python tests/tokenize/make_gguf_reference.py

ref/gguf_NAME.txt: one line per document, as ref/NAME.txt (ids<TAB>offsets
<TAB>ids-without-special), then one line "#long" and the same for the whole
corpus joined by newlines as one document.
ref/chat_NAME.jsonl: {"text", "system" (or null), "rendered", "ids"} per line
(also for Qwen 3's directory in ../shared/tokenizers, by its tokenizer_config.json):
apply_chat_template([system?, user], add_generation_prompt=True), rendered and
tokenized.  The Gemma 3 file carries no tokenizer.chat_template; its renderings
use Gemma 3's published template (google/gemma-3-270m-it, tokenizer_config.json),
written out below.
ref/chat_templates.jsonl (argument "templates"): other templates of the two
families rendered with these tokenizers."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfref  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODELS = {
    "smollm2": os.path.join(TOP, ".cache", "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": os.path.join(TOP, ".cache", "models", "gemma3", "gemma-3-270m-q4_k_m.gguf"),
}

GEMMA3_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n"
)

# other templates of the two families, for ref/chat_templates.jsonl: the
# ChatML one of Qwen 2.5 (its default system turn written with \\n escapes;
# the tools branch cut short), Gemma 3's with a one-newline system separator
# (as some GGUF conversions carry it), Gemma 2's (no system turn)
QWEN25_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {{- '# Tools' }}\n{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n")
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}")


def template_variants():
    """(name, tokenizer to render with, template)"""
    return [("qwen25", "qwen3", QWEN25_TEMPLATE),
            ("gemma3_nl", "gemma3", GEMMA3_TEMPLATE.replace("'\\n\\n'", "'\\n'")),
            ("gemma2", "gemma3", GEMMA2_TEMPLATE)]


# user texts for the chat renderings: plain, padded with white space (Gemma
# trims it), starting with a newline, several lines, special-token text,
# non-ASCII, empty
CHAT_TEXTS = [
    "Hello, world!",
    "What is the capital of France?",
    "  padded question with spaces \n\n",
    "\nstarts with a newline",
    "Line one\nLine two\n\nParagraph two.\n",
    "Explain <|im_end|> and <end_of_turn> please",
    "Café, naïve, 日本語 and emoji 🤖",
    "def f(x):\n    return x ** 2\n",
    "",
]
SYSTEMS = [None, "You are a terse assistant.", "Answer in French.\n"]


# Hugging Face directories whose tokenizer_config.json has a chat template:
# chat renderings only (their ids are ref/NAME.txt's)
CHAT_DIRS = {"qwen3": hfref.tokenizer_dir("qwen3")}


def load(name):
    if name in CHAT_DIRS:
        return AutoTokenizer.from_pretrained(CHAT_DIRS[name])
    p = MODELS[name]
    return AutoTokenizer.from_pretrained(os.path.dirname(p), gguf_file=os.path.basename(p))


def write_chat(tok, path):
    with open(path, "w") as f:
        for system in SYSTEMS:
            for text in CHAT_TEXTS:
                msgs = ([{"role": "system", "content": system}] if system is not None else []) + \
                       [{"role": "user", "content": text}]
                r = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
                ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
                if hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                f.write(json.dumps({"text": text, "system": system, "rendered": r, "ids": list(ids)},
                                   ensure_ascii=False) + "\n")


def row(tok, text):
    e = tok(text, return_offsets_mapping=True)
    n = tok(text, add_special_tokens=False)
    offs = hfref.byte_offsets(text, e["offset_mapping"])
    return "%s\t%s\t%s\n" % (" ".join(map(str, e["input_ids"])), " ".join("%d,%d" % o for o in offs),
                             " ".join(map(str, n["input_ids"])))


def write_variants(out):
    toks = {}
    with open(os.path.join(out, "chat_templates.jsonl"), "w") as f:
        for vname, tname, template in template_variants():
            tok = toks.get(tname) or toks.setdefault(tname, load(tname))
            tok.chat_template = template
            for system in SYSTEMS[:2]:
                for text in CHAT_TEXTS[:4]:
                    msgs = ([{"role": "system", "content": system}] if system is not None else []) + \
                           [{"role": "user", "content": text}]
                    try:
                        r = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
                        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
                        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
                    except Exception as e:  # the template refuses (a system turn it lacks)
                        r, ids = None, None
                        print(vname, "refuses:", e)
                    f.write(json.dumps({"variant": vname, "tokenizer": tname, "template": template, "system": system,
                                        "text": text, "rendered": r, "ids": ids}, ensure_ascii=False) + "\n")


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref")
    docs = hfref.corpus()
    if sys.argv[1:] == ["templates"]:
        write_variants(out)
        return
    for name in sys.argv[1:] or sorted(MODELS) + sorted(CHAT_DIRS):
        tok = load(name)
        if name in CHAT_DIRS:
            write_chat(tok, os.path.join(out, "chat_%s.jsonl" % name))
            print(name, "ok")
            continue
        with open(os.path.join(out, "gguf_%s.txt" % name), "w") as f:
            f.write("# transformers %s (GGUF tokenizer of %s), %d documents\n" %
                    (transformers.__version__, os.path.basename(MODELS[name]), len(docs)))
            for text in docs:
                f.write(row(tok, text))
            f.write("#long\n")
            f.write(row(tok, "\n".join(docs)))
        if not tok.chat_template:
            tok.chat_template = GEMMA3_TEMPLATE
        write_chat(tok, os.path.join(out, "chat_%s.jsonl" % name))
        print(name, "ok")


if __name__ == "__main__":
    main()
