"""attnkit from Python: the tensor stream as numpy arrays (attnkit.stream)
and prompt compression over the installed programs (compress).

    import attnkit
    r = attnkit.compress(open("context.txt").read(), keep=0.5,
                         question="Which river flows through the most countries?")
    print(r["compressed_prompt"])          # ready to send to an LLM
    print(r["origin_tokens"], r["compressed_tokens"], r["rate"])

No compiled extension: compress() runs tokenize | embed | attend | entropy
| prune | decode --text as subprocesses (found on $ATTNKIT_BIN, else on
$PATH) and reads the pruned stream with attnkit.stream.
"""
import os
import shutil
import subprocess
import tempfile

from . import stream

__all__ = ["compress", "compress_prompt", "stream", "AttnkitError"]


class AttnkitError(RuntimeError):
    """A program of the pipeline failed; the message is its stderr line."""


def _prog(name, bin_dir):
    d = bin_dir or os.environ.get("ATTNKIT_BIN")
    if d:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    p = shutil.which(name)
    if not p:
        raise AttnkitError(f"{name}: not found (install attnkit, or set ATTNKIT_BIN)")
    return p


def _pipeline(cmds, stdin=None):
    """Runs cmds connected by pipes; returns the last one's stdout, or
    raises AttnkitError with the first failing program's message."""
    procs, errs = [], []
    prev = stdin
    for c in cmds:
        e = tempfile.TemporaryFile()
        p = subprocess.Popen(c, stdin=prev if prev is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=e)
        if prev is not None and prev is not stdin:
            prev.close()
        prev = p.stdout
        procs.append(p)
        errs.append(e)
    out = procs[-1].stdout.read()
    procs[-1].stdout.close()
    fail = None
    for c, p, e in zip(cmds, procs, errs):
        rc = p.wait()
        e.seek(0)
        msg = e.read().decode("utf-8", "replace").strip()
        e.close()
        if rc != 0 and fail is None:
            fail = (rc, msg or f"{os.path.basename(c[0])} exited {rc}")
    if fail:
        raise AttnkitError(fail[1])
    return out


def compress(prompt, keep=0.5, question=None, model=None, *, max_tokens=None, unit="word",
             policy=None, count_with=None, protect_regex=None, bin_dir=None):
    """Prunes prompt to about keep of its tokens and returns a dict:

      compressed_prompt  the kept text, clean (decode --text)
      origin_tokens      tokens of the prompt (count_with's, else the model's)
      compressed_tokens  tokens kept, in the same units
      rate               compressed_tokens / origin_tokens
      ratio              "N.Nx", origin / compressed, as LLMLingua prints it
      keep               numpy u8 mask over the model's tokens (1 = kept)
      token_scores       the score of each kept token's unit
      dropped            [n, 2] byte spans of the prompt that were dropped
      meta               prune's meta (budget, policy, unit, ...)

    question: appended as the prompt's last paragraph, always kept (without
    one nothing is protected but the special tokens), and
    (policy None) the attention of its tokens scores the rest (prune
    --policy query; a prompt longer than the model's context falls back to
    the mass policy).  model: a name (minilm, smollm2, gemma3), a Hugging
    Face directory or a GGUF file (default $ATTNKIT_MODEL, else SmolLM2-135M-Instruct).
    unit: word (default), token, sentence or block (paragraphs).
    count_with: a tokenizer (name, directory or tokenizer.json) to count
    the budget in, e.g. the target LLM's.  max_tokens: a budget in tokens
    instead of keep."""
    text = prompt if question is None else prompt.rstrip("\n") + "\n\n" + question.strip() + "\n"
    m = ["-m", model] if model else []
    tmp = tempfile.mkdtemp(prefix="attnkit-")
    try:
        src = os.path.join(tmp, "prompt.txt")
        with open(src, "w", encoding="utf-8") as f:
            f.write(text)
        budget = ["--max-tokens", str(int(max_tokens))] if max_tokens is not None else \
            ["--keep", repr(float(keep))]
        pr = [_prog("prune", bin_dir)] + budget + ["--unit", unit]
        if count_with:
            pr += ["--count-with", count_with]
        if question is None:  # prune would keep the last paragraph as the question
            pr += ["--no-protect-query"]
        for r in ([protect_regex] if isinstance(protect_regex, str) else protect_regex or []):
            pr += ["--protect-regex", r]
        want_query = policy == "query" or (policy is None and question is not None)
        if policy and policy != "query":
            pr += ["--policy", policy]
        seg = "paragraph" if unit != "sentence" else "sentence"
        head = [[_prog("tokenize", bin_dir), "--segments", seg] + m + [src],
                [_prog("embed", bin_dir)] + m]
        tail = [[_prog("entropy", bin_dir)], pr]
        out = None
        if want_query:
            try:
                out = _pipeline(head + [[_prog("attend", bin_dir), "--probs", "all"] + m]
                                + [pr + ["--policy", "query"]])
            except AttnkitError as e:
                if "one window" not in str(e):
                    raise
        if out is None:
            out = _pipeline(head + [[_prog("attend", bin_dir)] + m] + tail)
        pruned = os.path.join(tmp, "pruned.ak")
        with open(pruned, "wb") as f:
            f.write(out)
        kept_text = _pipeline([[_prog("decode", bin_dir), "--text"] + m + [pruned]])
        s = stream.read(out)
        d = s.docs[0]
        total = int(d.meta.get("prune_total", len(d["keep"])))
        kept = int(d.meta.get("prune_kept", int(d["keep"].sum())))
        return {"compressed_prompt": kept_text.decode("utf-8", "replace"),
                "origin_tokens": total, "compressed_tokens": kept,
                "rate": kept / total if total else 0.0,
                "ratio": f"{total / kept:.1f}x" if kept else "inf",
                "keep": d["keep"], "token_scores": d.get("score.token"),
                "dropped": d.get("dropped"), "meta": d.meta}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compress_prompt(context, instruction="", question="", rate=0.5, target_token=None, **kw):
    """LLMLingua's call: context (a string or a list of them, joined as
    paragraphs), an instruction put first and always kept, the question
    last; rate the share of tokens to keep, or target_token a budget.
    Other keywords go to compress()."""
    if not isinstance(context, str):
        context = "\n\n".join(c.strip() for c in context)
    prompt = context
    if instruction:
        prompt = instruction.strip() + "\n\n" + context
        kw.setdefault("protect_regex", [])
        if isinstance(kw["protect_regex"], str):
            kw["protect_regex"] = [kw["protect_regex"]]
        # the instruction's text, matched literally at the start
        kw["protect_regex"] = list(kw["protect_regex"]) + [
            "\\A\\Q" + instruction.strip().replace("\\E", "\\E\\\\E\\Q") + "\\E"]
    return compress(prompt, keep=rate, question=question or None,
                    max_tokens=target_token, **kw)
