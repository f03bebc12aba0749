"""attnkit from Python: the tensor stream as numpy arrays (attnkit.stream)
and prompt compression over the installed programs.

    import attnkit
    r = attnkit.compress(open("context.txt").read(), keep=0.3,
                         question="Which river flows through the most countries?")
    print(r["compressed_prompt"])          # ready to send to an LLM
    print(r["origin_tokens"], r["compressed_tokens"], r["ratio"])

    # LLMLingua's call: documents ranked as documents, its result fields
    r = attnkit.compress_prompt(docs, question=q, rate=0.3)   # "ratio": "3.3x"

    # many prompts, one model load
    with attnkit.Compressor(rate=0.3) as c:
        for docs, q in items:
            print(c.compress_prompt(docs, question=q)["compressed_prompt"])

No compiled extension: the programs run as subprocesses, found in
bin_dir=, $ATTNKIT_BIN, $PATH, the bin/ of the checkout this package was
installed from, then sys.prefix/bin; the pruned stream is read with
attnkit.stream.

The default is cheap and question-aware (see compress()): the question
ranks the paragraphs (the documents, for a list) by how much each one
helps the model predict it (prune --policy qppl, LongLLMLingua's coarse
step; with an encoder model, the embedding similarity), then whole
sentences of the best ones fill the budget.  No attention probabilities
are computed unless asked (policy="query", probs=True).
"""
import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np

from . import stream

__all__ = ["compress", "compress_prompt", "Compressor", "stream", "AttnkitError"]

_HERE = os.path.dirname(os.path.abspath(__file__))


class AttnkitError(RuntimeError):
    """A program of the pipeline failed; the message is its stderr (the
    first program that failed on its own, not one that a later failure
    cut off)."""


# ---- finding the programs ----

def _bin_dirs(bin_dir):
    dirs = [bin_dir, os.environ.get("ATTNKIT_BIN")]
    dirs += os.environ.get("PATH", "").split(os.pathsep)
    # the checkout: python/attnkit/ in a source tree, or recorded by setup.py
    dirs.append(os.path.join(_HERE, "..", "..", "bin"))
    try:
        from . import _where  # written by python/setup.py at install
        dirs.append(_where.BIN)
    except ImportError:
        pass
    dirs.append(os.path.join(sys.prefix, "bin"))
    return [d for d in dirs if d]


def _prog(name, bin_dir):
    for d in _bin_dirs(bin_dir):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise AttnkitError(f"{name}: not found (build attnkit with make, or set ATTNKIT_BIN "
                       "to its bin/, or put the installed programs on PATH)")


# ---- running pipelines ----

def _failure(cmds, rcs, msgs):
    """The message of the first program that failed on its own: one cut off
    by a later failure (SIGPIPE, a broken pipe) is skipped."""
    failed = [(c, rc, m) for c, rc, m in zip(cmds, rcs, msgs) if rc != 0]
    if not failed:
        return None
    own = [f for f in failed if f[1] != -signal.SIGPIPE and "Broken pipe" not in f[2]]
    c, rc, m = (own or failed)[0]
    name = os.path.basename(c[0])
    if m:
        return m
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        return f"{name}: killed by {sig}"
    return f"{name}: exited {rc} without a message"


def _pipeline(cmds, stdin=None):
    """Runs cmds connected by pipes, stdin (bytes, or None) into the first;
    returns the last one's stdout, or raises AttnkitError with the message
    of the first program that failed."""
    procs, errs = [], []
    inp = None
    if stdin is not None:
        inp = tempfile.TemporaryFile()
        inp.write(stdin)
        inp.seek(0)
    prev = inp
    try:
        for c in cmds:
            e = tempfile.TemporaryFile()
            errs.append(e)
            p = subprocess.Popen(c, stdin=prev if prev is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=e)
            if prev is not None and prev is not inp:
                prev.close()
            prev = p.stdout
            procs.append(p)
        out = procs[-1].stdout.read()
        procs[-1].stdout.close()
        rcs, msgs = [], []
        for p, e in zip(procs, errs):
            rcs.append(p.wait())
            e.seek(0)
            msgs.append(e.read().decode("utf-8", "replace").strip())
    finally:
        for e in errs:
            e.close()
        if inp is not None:
            inp.close()
    fail = _failure(cmds, rcs, msgs)
    if fail:
        raise AttnkitError(fail)
    return out


# ---- models ----

_ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra",
                  "nomic-bert", "jina-bert-v2", "modernbert"}


def _gguf_arch(path):
    """general.architecture of a GGUF file (None when it cannot be read)."""
    import struct
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    key = b"general.architecture"
    i = head.find(key)
    if head[:4] != b"GGUF" or i < 0 or len(head) < i + len(key) + 12:
        return None
    j = i + len(key)
    (vtype,) = struct.unpack_from("<I", head, j)
    if vtype != 8:  # string
        return None
    (n,) = struct.unpack_from("<Q", head, j + 4)
    return head[j + 12:j + 12 + n].decode("utf-8", "replace")


def _is_encoder(model):
    """True for a bidirectional (BERT-like) model: it has no language-model
    head, so the question ranks blocks by embedding similarity instead of
    by how well each helps predict it."""
    m = model or os.environ.get("ATTNKIT_MODEL") or "smollm2"
    if m in ("minilm",):
        return True
    if os.path.isdir(m):
        cfg = os.path.join(m, "config.json")
        if os.path.isfile(cfg):
            try:
                c = json.load(open(cfg, encoding="utf-8"))
            except (OSError, ValueError):
                return False
            archs = " ".join(c.get("architectures") or [])
            return c.get("model_type") in _ENCODER_TYPES or "MaskedLM" in archs
        ggufs = [f for f in os.listdir(m) if f.endswith(".gguf")]
        if len(ggufs) == 1:
            m = os.path.join(m, ggufs[0])
    if os.path.isfile(m):
        return (_gguf_arch(m) or "") in _ENCODER_TYPES
    return False


# ---- the prompt as blocks ----

def _layout(prompt, question, instruction=None):
    """The text tokenize reads, and its parts' byte spans: a list prompt's
    documents (one block each), or None for a string (tokenize's paragraphs
    are its blocks); the instruction's and the question's spans (each one
    block, whatever blank lines they hold)."""
    parts, spans = [], []
    pos = 0

    def add(s):
        nonlocal pos
        start = pos
        b = s.encode("utf-8")
        parts.append(s)
        pos += len(b)
        return start, pos

    if isinstance(prompt, str):
        docs = None
        body = prompt.strip("\n")
    else:
        docs = [d.strip() for d in prompt if d and d.strip()]
        body = None
    ins = q = None
    if instruction:
        ins = add(instruction.strip())
        add("\n\n")
    if docs is None:
        if body:
            b0, b1 = add(body)
            spans.append((b0, b1))
            add("\n\n")
    else:
        for k, d in enumerate(docs):
            spans.append(add(d))
            add("\n\n")
    if question and question.strip():
        q = add(question.strip())
        add("\n")
    text = "".join(parts)
    if not text.endswith("\n"):
        text = text.rstrip("\n") + "\n"
    return text, (spans if docs is not None else None), ins, q


def _resegment(raw, layout, doc_id, source):
    """tokenize's stream with the blocks compress() wants: the instruction,
    each document of a list (or tokenize's paragraphs of a string) and the
    question, one block each, numbered in text order; the document renamed
    doc_id, its meta.source source.  Returns (bytes, the question's token
    count, the document)."""
    s = stream.read(raw)
    d = s.docs[0]
    text = bytes(d["text"])
    _, docs, ins, q = layout
    offs = d["offsets"]
    seg = np.array(d["segments"], dtype=np.int32)
    n = len(seg)
    # a token's position: its first non-space byte (tokenize's rule)
    pos = np.empty(n, dtype=np.int64)
    ws = b" \t\n\r\f\v"
    for i in range(n):
        p, e = int(offs[i][0]), len(text)
        while p < e and text[p] in ws:
            p += 1
        pos[i] = p

    def inside(span):
        return (pos >= span[0]) & (pos < span[1] + 1) if span else np.zeros(n, bool)

    live = seg >= 0
    key = np.where(live, seg.astype(np.int64), -1)
    if docs is not None:
        key = np.full(n, -1, np.int64)
        for k, sp in enumerate(docs):
            key[inside(sp) & live] = 10 + k
        # separators between documents join the document before them
        last = 10
        for i in range(n):
            if live[i] and key[i] < 0:
                key[i] = last
            elif key[i] >= 0:
                last = key[i]
    else:
        key = np.where(live, key + 10, -1)
    big = 1 << 40
    if ins:
        key[inside(ins) & live] = 0
    nq = 0
    if q:
        mq = (pos >= q[0]) & live
        key[mq] = big
        nq = int(((pos >= q[0])).sum())
    # renumber 0.. in text order
    uniq = sorted(set(int(k) for k in key[live]))
    ren = {k: i for i, k in enumerate(uniq)}
    new = np.array([ren[int(k)] if k >= 0 else -1 for k in key], dtype=np.int32)
    d.tensors["segments"] = new
    d.id = doc_id
    d.meta["source"] = source
    return stream.pack([d], s.model, s.history), nq, d


# ---- the options of one compression ----

_POLICIES = ("qppl", "similarity", "query", "surprisal", "score", "mass", "entropy", "heavy",
             "random", "first", "last")
_UNITS = ("word", "token", "sentence", "block")


def _plan(has_question, model, lm, policy, unit, keep, max_tokens, count_with, protect,
          first_block, nq, probs, bin_dir):
    """(the commands after tokenize, the model tokenize uses)."""
    encoder = _is_encoder(lm or model) if lm is None else False
    if policy is None:
        if has_question:
            policy = "qppl" if (lm or not encoder) else "similarity"
        else:
            policy = "mass" if encoder else "surprisal"
    if policy not in _POLICIES:
        raise ValueError(f"policy {policy!r}: one of {', '.join(_POLICIES)}")
    if unit is None:
        unit = "sentence"
    if unit not in _UNITS:
        raise ValueError(f"unit {unit!r}: one of {', '.join(_UNITS)}")
    if policy in ("qppl", "similarity") and not has_question:
        raise ValueError(f"policy {policy!r} ranks by the question: give question=")
    if lm is not None and policy != "qppl":
        raise ValueError(f"lm= is qppl's model, and the policy is {policy!r}")
    tok_model = (lm or model) if policy == "qppl" else model
    m = ["-m", tok_model] if tok_model else []
    budget = []
    if max_tokens is not None:
        budget += ["--max-tokens", str(int(max_tokens))]
    if keep is not None:
        budget += ["--keep", repr(float(keep))]
    pr = [_prog("prune", bin_dir), "--policy", policy] + budget
    fine = policy == "qppl" and unit in ("word", "token")
    pr += ["--unit", unit]
    if fine:
        pr += ["--fine"]
    if policy == "qppl" and (lm or model):
        pr += ["--lm", lm or model]
    if policy == "similarity" and model:
        pr += ["--encoder", model]
    if count_with:
        pr += ["--count-with", count_with]
    if first_block:
        pr += ["--protect", "first"]
    if not has_question:
        pr += ["--no-protect-query"]
    for r in protect:
        pr += ["--protect-regex", r]
    cmds = []
    if policy in ("qppl", "similarity") and not fine:
        pass  # they read tokenize's stream as it is
    elif policy in ("qppl", "surprisal"):
        cmds = [[_prog("embed", bin_dir)] + m, [_prog("attend", bin_dir), "--surprisal"] + m]
    elif policy == "query":
        if probs:
            a = ["--probs", "all"]
        else:
            a = ["--mass-last", str(max(1, nq))]
        cmds = [[_prog("embed", bin_dir)] + m, [_prog("attend", bin_dir)] + a + m]
    else:
        cmds = [[_prog("embed", bin_dir)] + m, [_prog("attend", bin_dir)] + m]
        if policy == "score":
            cmds.append([_prog("entropy", bin_dir)])
    return cmds + [pr], m


def _as_list(x):
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _literal(s):
    """A PCRE2 pattern matching s literally."""
    return "\\Q" + s.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def _result(out, kept_text, d_in):
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


class _Job:
    """One compression's inputs, prepared: the tokenized, re-blocked
    document and the commands that prune it."""

    def __init__(self, prompt, keep, question, model, max_tokens, unit, policy, lm,
                 count_with, protect_regex, force_tokens, force_reserve_digit, instruction,
                 probs, doc_id, bin_dir, source=None):
        if keep is None and max_tokens is None:
            raise ValueError("give keep (a share) or max_tokens (a budget)")
        if not isinstance(prompt, str) and not all(isinstance(p, str) for p in prompt):
            raise TypeError("prompt: a string, or a list of strings (documents)")
        self.layout = _layout(prompt, question, instruction)
        text = self.layout[0]
        protect = _as_list(protect_regex)
        protect += [_literal(t) for t in _as_list(force_tokens)]
        if force_reserve_digit:
            protect.append("[0-9]")
        has_q = self.layout[3] is not None
        self.doc_id = doc_id
        self.source = source if source is not None else doc_id
        self.bin_dir = bin_dir
        self.text = text
        self._args = (has_q, model, lm, policy, unit, keep, max_tokens, count_with, protect,
                      self.layout[2] is not None, probs, bin_dir)

    def commands(self, nq):
        (has_q, model, lm, policy, unit, keep, max_tokens, count_with, protect, first,
         probs, bin_dir) = self._args
        return _plan(has_q, model, lm, policy, unit, keep, max_tokens, count_with, protect,
                     first, nq, probs, bin_dir)

    def tokenized(self, tmp):
        _, m = self.commands(1)
        src = os.path.join(tmp, "prompt.txt")
        with open(src, "w", encoding="utf-8") as f:
            f.write(self.text)
        raw = _pipeline([[_prog("tokenize", self.bin_dir), "--segments", "paragraph"] + m
                          + [src]])
        return _resegment(raw, self.layout, self.doc_id, self.source)


def _decode(out, m, tmp, bin_dir):
    pruned = os.path.join(tmp, "pruned.ak")
    with open(pruned, "wb") as f:
        f.write(out)
    return _pipeline([[_prog("decode", bin_dir), "--text"] + m + [pruned]])


def compress(prompt, keep=0.5, question=None, model=None, *, max_tokens=None, unit=None,
             policy=None, lm=None, count_with=None, protect_regex=None, force_tokens=None,
             force_reserve_digit=False, instruction=None, probs=False, id="prompt",
             bin_dir=None):
    """Prunes prompt to about keep of its tokens and returns a dict:

      compressed_prompt  the kept text, clean (decode --text)
      origin_tokens      tokens of the prompt (count_with's, else the model's)
      compressed_tokens  tokens kept, in the same units
      rate               compressed_tokens / origin_tokens (a float)
      ratio              "N.Nx", origin / compressed, as LLMLingua prints it
      keep               numpy u8 mask over the model's tokens (1 = kept)
      token_scores       the score of each kept token's unit
      dropped            [n, 2] byte spans of the prompt that were dropped
      meta               prune's meta (budget, policy, unit, source = id, ...)

    prompt: a string (its paragraphs are the blocks) or a list of strings
    (documents, one block each, joined by blank lines).  question: put
    last, one block whatever blank lines it holds, always kept whole.
    instruction: put first, one block, always kept.

    The default (policy None) is cheap and question-aware, with bounded
    memory (no attention probabilities):
      - with a question and a causal model: prune --policy qppl, each
        block ranked by how much it raises the log-probability of the
        question (LongLLMLingua's coarse step; one short forward pass per
        block), then whole sentences of the best blocks fill the budget;
      - with a question and an encoder (minilm): --policy similarity, the
        blocks ranked by the cosine of their embedding to the question's;
      - without a question: surprisal (Selective Context; attend
        --surprisal) with a causal model, the attention mass with an encoder.
    policy: any prune policy; "query" reads the question's attention rows
    from attend --mass-last (probs=True: attend --probs all, the full
    probabilities, a gigabyte per thousand tokens).  unit: sentence
    (default), word, token or block; qppl with word or token adds the fine
    step (--fine: the lowest-surprisal words of the kept blocks dropped).
    model: a name (minilm, smollm2, gemma3), a Hugging Face directory or
    a GGUF file (default $ATTNKIT_MODEL, else SmolLM2-135M-Instruct).  lm:
    qppl's causal model (it then also tokenizes the prompt).  count_with: a
    tokenizer to count the budget in, e.g. the target LLM's.  max_tokens:
    a budget in tokens (with keep, the smaller wins; keep=None for
    max_tokens alone).  protect_regex: PCRE2 patterns whose matches are
    kept; force_tokens: strings kept wherever they occur;
    force_reserve_digit: every number kept (these keep the whole unit
    holding them: a sentence, with the default unit).  id: the document's
    id in the stream (meta.source)."""
    job = _Job(prompt, keep, question, model, max_tokens, unit, policy, lm, count_with,
               protect_regex, force_tokens, force_reserve_digit, instruction, probs, id,
               bin_dir)
    tmp = tempfile.mkdtemp(prefix="attnkit-")
    try:
        data, nq, d_in = job.tokenized(tmp)
        cmds, m = job.commands(nq)
        out = _pipeline(cmds, stdin=data)
        return _result(out, _decode(out, m, tmp, bin_dir), d_in)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- LLMLingua's call ----

_RANK_METHODS = {"longllmlingua": "qppl", "llmlingua": "surprisal", "sentbert": "similarity",
                 "bge": "similarity"}
_PROMPT_KEYWORDS = ("context", "instruction", "question", "rate", "target_token",
                    "force_tokens", "force_reserve_digit", "keep_split", "rank_method",
                    "use_token_level_filter", "model", "lm", "unit", "policy", "count_with",
                    "protect_regex", "probs", "id", "bin_dir")


def _check_keywords(kw, fn):
    for k in kw:
        if k not in _PROMPT_KEYWORDS:
            near = difflib.get_close_matches(k, _PROMPT_KEYWORDS, n=1, cutoff=0.0)
            raise TypeError(f"{fn}() got an unexpected keyword argument {k!r}"
                            + (f" (did you mean {near[0]!r}?)" if near else ""))


def _lingua_args(context, instruction, question, rate, target_token, force_tokens,
                 force_reserve_digit, keep_split, rank_method, use_token_level_filter, kw):
    if isinstance(context, str):
        context = [context]
    policy = kw.pop("policy", None)
    if rank_method is not None:
        if policy is not None:
            raise ValueError("give rank_method or policy, not both")
        policy = _RANK_METHODS.get(rank_method, rank_method)
        if policy not in _POLICIES:
            raise ValueError(f"rank_method {rank_method!r}: one of "
                             f"{', '.join(sorted(_RANK_METHODS))} or a prune policy "
                             f"({', '.join(_POLICIES)})")
    unit = kw.pop("unit", None)
    if use_token_level_filter:
        if unit not in (None, "word", "token"):
            raise ValueError(f"use_token_level_filter with unit {unit!r}")
        unit = unit or "word"
    if target_token is not None and target_token < 0:
        target_token = None  # LLMLingua's "no token budget"
    if keep_split not in (True, False):
        raise TypeError("keep_split: True or False")
    return dict(prompt=context, keep=rate if target_token is None else None,
                question=question or None, instruction=instruction or None,
                max_tokens=target_token, force_tokens=force_tokens,
                force_reserve_digit=force_reserve_digit, policy=policy, unit=unit, **kw)


def _lingua_result(r):
    o, c = r["origin_tokens"], r["compressed_tokens"]
    r = dict(r)
    r["rate"] = f"{100.0 * c / o:.1f}%" if o else "0.0%"
    r["saving"] = f", Saving ${(o - c) * 0.06 / 1000:.1f} in GPT-4."
    return r


def compress_prompt(context, instruction="", question="", rate=0.5, target_token=-1, *,
                    force_tokens=None, force_reserve_digit=False, keep_split=False,
                    rank_method=None, use_token_level_filter=False, **kw):
    """LLMLingua's PromptCompressor.compress_prompt over compress():
    context, a string or a list of documents (each ranked as one block);
    instruction first and question last, both always kept whole; rate the
    share of tokens kept, or target_token (> 0) a budget in tokens;
    force_tokens strings always kept; force_reserve_digit every number
    kept; rank_method longllmlingua (qppl), llmlingua (surprisal), sentbert
    or bge (similarity), or any prune policy; use_token_level_filter the
    word-level fine step after the ranking.  keep_split: the blank lines
    between kept paragraphs are always kept (both values accepted).  Other
    keywords: those of compress() (model, lm, unit, policy, count_with,
    protect_regex, probs, id, bin_dir); any other is a TypeError naming the
    closest supported one.

    Returns LLMLingua's fields: compressed_prompt, origin_tokens,
    compressed_tokens, ratio ("3.3x"), rate ("30.0%", kept / origin),
    saving (", Saving $0.1 in GPT-4."), plus compress()'s keep,
    token_scores, dropped and meta."""
    _check_keywords(kw, "compress_prompt")
    a = _lingua_args(context, instruction, question, rate, target_token, force_tokens,
                     force_reserve_digit, keep_split, rank_method, use_token_level_filter, kw)
    return _lingua_result(compress(**a))


# ---- one model loaded across calls ----

class Compressor:
    """Compresses many prompts with the model loaded once:

        with attnkit.Compressor(model="smollm2", rate=0.3) as c:
            for docs, q in items:
                r = c.compress_prompt(docs, question=q)

    The programs that load a model (prune for qppl, embed and attend for
    the others) run as one long-lived pipeline that reads a stream of
    documents on its standard input and writes each pruned document as soon
    as it is done; each call tokenizes its prompt (tokenize loads only the
    tokenizer), writes the document into the pipeline, reads the pruned one
    back and decodes it (decode --text).  Calls whose options give the same
    commands share one pipeline (a new combination starts another: keep
    rate, unit and policy fixed across calls to load the model once).
    Keywords given here are the defaults of every call; close() (or the
    with block) ends the pipelines.  Not thread-safe: one call at a time."""

    def __init__(self, model=None, **defaults):
        _check_keywords(defaults, "Compressor")
        if "context" in defaults or "question" in defaults or "instruction" in defaults:
            raise TypeError("Compressor: context, question and instruction are per call")
        self.model = model
        self.defaults = defaults
        self._pipes = {}
        self._tmp = tempfile.mkdtemp(prefix="attnkit-")
        self.calls = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def close(self):
        for p in list(self._pipes.values()):
            p.close()
        self._pipes.clear()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def compress_prompt(self, context, instruction="", question="", **kw):
        """As attnkit.compress_prompt, the model kept loaded."""
        _check_keywords(kw, "compress_prompt")
        o = dict(self.defaults)
        o.update(kw)
        lingua = {k: o.pop(k) for k in ("rate", "target_token", "force_tokens",
                                        "force_reserve_digit", "keep_split", "rank_method",
                                        "use_token_level_filter") if k in o}
        a = _lingua_args(context, instruction, question, lingua.get("rate", 0.5),
                         lingua.get("target_token", -1), lingua.get("force_tokens"),
                         lingua.get("force_reserve_digit", False),
                         lingua.get("keep_split", False), lingua.get("rank_method"),
                         lingua.get("use_token_level_filter", False), o)
        return _lingua_result(self._run(**a))

    def compress(self, prompt, keep=0.5, question=None, **kw):
        """As attnkit.compress, the model kept loaded."""
        o = dict(self.defaults)
        o.pop("rate", None)
        o.update(kw)
        return self._run(prompt=prompt, keep=keep, question=question, **o)

    def _run(self, prompt, keep=0.5, question=None, max_tokens=None, unit=None, policy=None,
             lm=None, count_with=None, protect_regex=None, force_tokens=None,
             force_reserve_digit=False, instruction=None, probs=False, id=None,
             bin_dir=None, model=None):
        model = model if model is not None else self.model
        self.calls += 1
        job = _Job(prompt, keep, question, model, max_tokens, unit, policy, lm, count_with,
                   protect_regex, force_tokens, force_reserve_digit, instruction, probs,
                   f"{self.calls}:{id or 'prompt'}", bin_dir, source=id or "prompt")
        data, nq, d_in = job.tokenized(self._tmp)
        cmds, m = job.commands(nq)
        key = tuple(tuple(c) for c in cmds)
        p = self._pipes.get(key)
        if p is None:
            p = self._pipes[key] = _LivePipeline(cmds)
        try:
            out = p.run(data)
        except AttnkitError:
            p.close()
            del self._pipes[key]
            raise
        return _result(out, _decode(out, m, self._tmp, bin_dir), d_in)


class _LivePipeline:
    """A pipeline that stays up: the stream's header goes in once, then a
    document per call, and each call reads one document back."""

    def __init__(self, cmds):
        import msgpack
        self.cmds = cmds
        self.procs, self.errs = [], []
        prev = subprocess.PIPE
        for i, c in enumerate(cmds):
            e = tempfile.TemporaryFile()
            self.errs.append(e)
            p = subprocess.Popen(c, stdin=prev, stdout=subprocess.PIPE, stderr=e)
            if i > 0:
                prev.close()
            prev = p.stdout
            self.procs.append(p)
        self.stdin = self.procs[0].stdin
        self.out = self.procs[-1].stdout
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=0)
        self.header_out = None
        self.started = False
        self.closed = False
        self.ndocs = 0

    def _fail(self):
        try:
            self.stdin.close()
        except (OSError, ValueError):
            pass
        rcs, msgs = [], []
        for p, e in zip(self.procs, self.errs):
            try:
                rcs.append(p.wait(timeout=30))
            except subprocess.TimeoutExpired:
                p.kill()
                rcs.append(p.wait())
            e.seek(0)
            msgs.append(e.read().decode("utf-8", "replace").strip())
        fail = _failure(self.cmds, rcs, msgs) or \
            f"{os.path.basename(self.cmds[-1][0])}: the pipeline ended early"
        return AttnkitError(fail)

    def _record(self):
        import msgpack
        while True:
            try:
                return self.unpacker.unpack()
            except msgpack.OutOfData:
                pass
            chunk = os.read(self.out.fileno(), 1 << 16)
            if not chunk:
                raise self._fail()
            self.unpacker.feed(chunk)

    def run(self, data):
        import msgpack
        up = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=0)
        up.feed(data)
        header, doc = next(up), next(up)
        try:
            if not self.started:
                self.stdin.write(msgpack.packb(header, use_bin_type=True))
                self.started = True
            self.stdin.write(msgpack.packb(doc, use_bin_type=True))
            self.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._fail() from None
        self.ndocs += 1
        if self.header_out is None:
            self.header_out = self._record()
        d = self._record()
        if not isinstance(d, dict) or d.get("type") != "doc":
            raise self._fail()
        return (msgpack.packb(self.header_out, use_bin_type=True) +
                msgpack.packb(d, use_bin_type=True) +
                msgpack.packb({"type": "end", "docs": 1}, use_bin_type=True))

    def close(self):
        import msgpack
        if self.closed:
            return
        self.closed = True
        try:
            if self.started and not self.stdin.closed:
                self.stdin.write(msgpack.packb({"type": "end", "docs": self.ndocs},
                                               use_bin_type=True))
            self.stdin.close()
        except (OSError, ValueError):
            pass
        for p in self.procs:
            try:
                p.stdout.close()
            except OSError:
                pass
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for e in self.errs:
            e.close()
