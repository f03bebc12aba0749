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
written out below."""
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


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref")
    docs = hfref.corpus()
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
