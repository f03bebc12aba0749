#!/usr/bin/env python3
"""examples/evaluate.py OUT MODEL... [--keeps K,...] [--policies P,...] [--jobs N]

Runs the pruning experiment over the items tasks.py wrote in OUT, with the
installed programs (on $PATH), and writes one row per item and
configuration to OUT/MODEL/rows.tsv (rows.SPLIT.SIZES.tsv for a --split or
--sizes run, so that runs of other sizes keep theirs): this run's
configurations and those earlier chunks left in OUT/MODEL for the same split
and sizes (other keep ratios, other policies), so chunks add up.  Per model and task, once:

  tokenize -m M --segments S OUT/TASK/*.txt | embed -m M \\
    | attend -m M --surprisal --mass-last 32 \\
    | kvcache -m M --generate G --gen-mass 8 --targets OUT/TASK/gold.tsv > full.ak

(the full prompt's answer, the gold continuation's log-likelihood, and every
statistic the policies read), then per configuration one of

  prune -k KEEP -p POLICY -u UNIT ... full.ak | kvcache -m M --generate G --targets gold.tsv
  kvcache -m M --evict POLICY --keep KEEP --protect-regex Q --generate G --targets gold.tsv full.ak

over all the task's items at once.  Every command is printed to
OUT/MODEL/commands.log.  A configuration whose output exists is not run
again (delete OUT to start over).
"""
import argparse
import concurrent.futures as cf
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from attnkit import stream  # noqa: E402

# Per task: how blocks are made, the question (query span, always kept),
# what kvcache protects when it evicts, and how many tokens to generate.
TASKS = {
    "qa": dict(segments=["--segments", "paragraph"], query=[],
               protect=["--protect", "last"], generate=6),
    "kv": dict(segments=["--segments", "line"],
               query=["--query-regex", r'(?s)\nThe value of ".*'],
               protect=["--protect-regex", r'(?s)\nThe value of ".*'], generate=8),
    "cont": dict(segments=["--segments", "paragraph"], query=[],
                 protect=["--protect", "last"], generate=0),
    # issue 19: chat prompts (tokenize --chat), the question and the line
    # asking for a short answer the last block;
    # its rows exactly (attend --mass-rows last), 8 greedy tokens
    "pqa": dict(segments=["--chat", "--segments", "paragraph"], query=[],
                protect=["--protect-regex", "(?s)Question: .*"], generate=8,
                rows=["--mass-rows", "last"]),
    "needle": dict(segments=["--chat", "--segments", "paragraph"], query=[],
                   protect=["--protect-regex", "(?s)Question: .*"], generate=8,
                   rows=["--mass-rows", "last"]),
}

# name: (kind, unit, extra arguments).  kind: prune, evict, full, none.
POLICIES = {
    "full":            ("full", "-", []),
    "none":            ("none", "-", []),
    "mass":            ("prune", "word", ["-p", "mass"]),
    "entropy":         ("prune", "word", ["-p", "entropy"]),
    "heavy":           ("prune", "word", ["-p", "heavy"]),
    "query":           ("prune", "word", ["-p", "query", "--query-rows", "question"]),
    "query+answer":    ("prune", "word", ["-p", "query", "--query-rows", "both"]),
    "surprisal":       ("prune", "word", ["-p", "surprisal"]),
    "random":          ("prune", "word", ["-p", "random"]),
    "first":           ("prune", "word", ["-p", "first"]),
    "last":            ("prune", "word", ["-p", "last"]),
    "mass/block":      ("prune", "block", ["-p", "mass"]),
    "query/block":     ("prune", "block", ["-p", "query", "--query-rows", "question"]),
    "query+answer/block": ("prune", "block", ["-p", "query", "--query-rows", "both"]),
    "qppl/block":      ("prune", "block", ["-p", "qppl"]),
    "qppl+surprisal":  ("prune", "word", ["-p", "qppl", "--fine"]),
    "similarity/block": ("prune", "block", ["-p", "similarity"]),
    "random/block":    ("prune", "block", ["-p", "random"]),
    "evict:streaming": ("evict", "cache", ["--evict", "streaming"]),
    "evict:h2o":       ("evict", "cache", ["--evict", "h2o"]),
    "evict:snapkv":    ("evict", "cache", ["--evict", "snapkv"]),
    # issue 19's attention policies: a block by its most-attended tokens,
    # word units that keep numbers, dates and names whole
    "query/block:max": ("prune", "block", ["-p", "query", "--query-rows", "question",
                                           "--unit-score", "max"]),
    "query/block:top3": ("prune", "block", ["-p", "query", "--query-rows", "question",
                                            "--unit-score", "top3"]),
    "query:numbers":   ("prune", "word", ["-p", "query", "--query-rows", "question",
                                          "--keep-numbers"]),
    # the retrieval heads examples/heads.py chose on the calibration items
    # (OUT/heads-MODEL.txt; the policy is skipped without it)
    "query/block:heads": ("prune", "block", ["-p", "query", "--query-rows", "question",
                                             "--heads", "{heads}"]),
    # the positional baseline heads.py --baseline measured on the calibration
    # items (OUT/baseline-MODEL.txt; skipped without it)
    "query/block:calibrated": ("prune", "block", ["-p", "query", "--query-rows", "question",
                                                  "--position-baseline", "{baseline}"]),
}

# one thread per pipeline (--jobs run side by side), the CPU (timings
# comparable), and this checkout's programs first on the PATH
ENV = dict(os.environ, ATTNKIT_THREADS="1", OPENBLAS_NUM_THREADS="1", ATTNKIT_DEVICE="cpu",
           PATH=os.path.join(HERE, "..", "bin") + os.pathsep + os.environ.get("PATH", ""))


class Failed(RuntimeError):
    pass


def run(cmds, out_path, log):
    """cmds: list of argv lists piped together, the last one's stdout to
    out_path (atomically).  Returns the wall seconds of each command."""
    with open(log, "a") as f:
        f.write(" | ".join(shlex.join(c) for c in cmds) + " > " + out_path + "\n")
    tmp = out_path + ".tmp"
    procs, errs, t0 = [], [], time.monotonic()
    prev = subprocess.DEVNULL
    with open(tmp, "wb") as out:
        for i, c in enumerate(cmds):
            if not shutil.which(c[0], path=ENV["PATH"]):
                raise Failed(f"{c[0]}: not found (make in the top directory builds bin/)")
            e = open(tmp + f".err{i}", "w+b")
            p = subprocess.Popen(c, stdin=prev, stdout=out if i == len(cmds) - 1 else subprocess.PIPE,
                                 stderr=e, env=ENV)
            if prev is not subprocess.DEVNULL:
                prev.close()
            prev = p.stdout
            procs.append(p)
            errs.append(e)
        times = []
        for p in procs:
            p.wait()
            times.append(time.monotonic() - t0)
    msgs = []
    for i, (c, p, e) in enumerate(zip(cmds, procs, errs)):
        e.seek(0)
        m = e.read().decode("utf-8", "replace").strip()
        e.close()
        os.unlink(tmp + f".err{i}")
        if p.returncode != 0:
            msgs.append(f"{c[0]} exited {p.returncode}: {m}")
    if msgs:
        os.unlink(tmp)
        raise Failed("; ".join(msgs))
    os.replace(tmp, out_path)
    return times


def run_each(cmd, out_path, log):
    """kvcache refuses a whole stream when one document's budget is below
    its protected tokens (the question): run it per document, keep the
    documents that fit and note the others in out_path + ".na".  cmd ends
    with the input stream's path."""
    src = stream.read(cmd[-1])
    parts, na, t = [], [], [0.0]
    for i, d in enumerate(src.docs):
        one = f"{out_path}.doc{i}.ak"
        with open(one, "wb") as f:
            f.write(stream.pack([d], model=src.model))
        try:
            t = [a + b for a, b in zip(t, run([cmd[:-1] + [one]], one + ".out", log))]
            parts.append(one + ".out")
        except Failed as e:
            if "protected tokens" not in str(e):
                raise
            na.append(f"{d.id}\t{e}")
        os.unlink(one)
    docs = []
    model = src.model
    for p in parts:
        r = stream.read(p)
        docs += r.docs
        model = r.model
        os.unlink(p)
    if not docs:
        raise Failed("every document's budget is below its protected tokens")
    stream.write(out_path, docs, model=model)
    with open(out_path + ".na", "w") as f:
        f.write("".join(x + "\n" for x in na))
    return t


SEP = "\n@@ATTNKIT-DOC@@\n"
_sep_ids = {}


def sep_ids(model):
    """The token ids of SEP under model's tokenizer (tokenize --no-special)."""
    if model not in _sep_ids:
        p = subprocess.run(["tokenize", "-m", model, "--no-special"], input=SEP.encode(),
                           capture_output=True, env=ENV)
        if p.returncode:
            raise Failed(f"tokenize: {p.stderr.decode(errors='replace').strip()}")
        _sep_ids[model] = stream.read(p.stdout).docs[0]["tokens"]
    return _sep_ids[model]


def decode_answers(model, ak, log):
    """{doc id: generated text} from kvcache's output: one decode over all
    documents, a separator document between them (decode prints documents
    one after another; a tokenizer load costs a second for Gemma 3)."""
    s = stream.read(ak)
    docs, ids = [], []
    for d in s.docs:
        g = d["generated"] if "generated" in d else np.zeros(0, dtype=np.int32)
        if docs:
            docs.append(stream.Doc(f"sep{len(docs)}", {"generated": sep_ids(model)}))
        docs.append(stream.Doc(d.id, {"generated": g}))
        ids.append(d.id)
    if not docs:
        return {}
    p = subprocess.run(["decode", "-m", model, "--generated"],
                       input=stream.pack(docs, model=s.model), capture_output=True, env=ENV)
    if p.returncode:
        raise Failed(f"decode: {p.stderr.decode(errors='replace').strip()}")
    text = p.stdout.decode("utf-8", "replace")
    parts = text.split(SEP)
    if len(parts) != len(ids):  # a tokenizer that does not give SEP back exactly
        parts = re.split(r"\s*@@ATTNKIT-DOC@@\n?", text)
    if len(parts) != len(ids):
        raise Failed(f"decode: {len(parts)} answers for {len(ids)} documents in {ak}")
    return dict(zip(ids, parts))


def summarize(model, ak, log):
    """{doc id: dict(tokens, total, logprob, gold_tokens, answer)}"""
    s = stream.read(ak)
    answers = decode_answers(model, ak, log)
    out = {}
    for d in s.docs:
        name = os.path.splitext(os.path.basename(d.id))[0]
        total = int(d.meta.get("prune_total", len(d["tokens"])))
        kept = int(d.meta.get("kv_entries", 0)) / max(1, int(d.meta.get("kv_entries_full", 1))) \
            if d.meta.get("kv_policy", "none") != "none" else len(d["tokens"]) / max(1, total)
        out[name] = dict(kept=kept, total=total, logprob=float(d.meta.get("target_logprob", "nan")),
                         gold_tokens=int(d.meta.get("target_tokens", 0)),
                         answer=answers.get(d.id, ""))
    return out


def earlier_outputs(mdir, prep, jobs):
    """The configurations of the same items and split that earlier chunks
    ran with other policies or keep ratios: rows.tsv holds every result
    OUT/MODEL has, so chunks of different --keeps and --policies add up."""
    have = {j[3] for j in jobs}
    more = []
    for task, (full, _, _, _, sfx) in prep.items():
        for pol, (kind, _, _) in POLICIES.items():
            if kind == "full":
                continue
            tag = pol.replace("/", "_").replace(":", "_").replace("+", "_")
            head = f"{task}{sfx}.{tag}."
            for f in sorted(os.listdir(mdir)):
                m = re.fullmatch(r"(\d+(?:\.\d+)?)\.ak", f[len(head):]) if f.startswith(head) else None
                out = os.path.join(mdir, f)
                if m and out not in have:
                    more.append((task, pol, m.group(1), out, None))
                    have.add(out)
    return more


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--keeps", default="0.1,0.2,0.3,0.5,0.7")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--collect", action="store_true",
                    help="run nothing: write rows.tsv from the outputs OUT holds")
    ap.add_argument("--split", default="all", choices=["all", "test", "calibration"],
                    help="only the items of this split (items.tsv's split column; items "
                         "without one are in every split)")
    ap.add_argument("--sizes", default="",
                    help="only the items of these context sizes (items.tsv's size column, "
                         "e.g. 1000,2000; items without one are always in)")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="start no configuration after this many minutes (0: no limit): a "
                         "chunk; the next run resumes where it stopped")
    a = ap.parse_args()
    t_start = time.monotonic()
    sizes = {x for x in a.sizes.split(",") if x}
    excluded = set()
    if a.split != "all" or sizes:
        import csv
        with open(os.path.join(a.out, "items.tsv")) as f:
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if (a.split != "all" and r.get("split") and r["split"] != a.split) or \
                        (sizes and r.get("size") and r["size"] not in sizes):
                    excluded.add((r["task"], r["name"]))
    keeps = [k for k in a.keeps.split(",") if k]
    pols = [p for p in a.policies.split(",") if p]
    for p in pols:
        if p not in POLICIES:
            sys.exit(f"evaluate.py: unknown policy {p} (known: {', '.join(POLICIES)})")
    tasks = [t for t in a.tasks.split(",") if t]

    for model in a.models:
        mdir = os.path.join(a.out, model)
        os.makedirs(mdir, exist_ok=True)
        log = os.path.join(mdir, "commands.log")
        jobs = []
        prep = {}
        rows_sfx = ("" if a.split == "all" else "." + a.split) + \
            ("" if not sizes else "." + "-".join(sorted(sizes)))
        surp = ["--surprisal"] if any("surprisal" in p for p in pols) else []
        for task in tasks:
            tdir = os.path.join(a.out, task)
            if not os.path.isdir(tdir):
                continue
            cfg = TASKS[task]
            gold = os.path.join(tdir, "gold.tsv")
            names = sorted(f for f in os.listdir(tdir) if f.endswith(".txt") and
                           (task, f[:-4]) not in excluded)
            if not names:
                continue
            files = [os.path.join(tdir, f) for f in names]
            sfx = rows_sfx
            full = os.path.join(mdir, f"{task}{sfx}.full.ak")
            gen = ["--generate", str(cfg["generate"]), "--gen-mass", str(min(8, cfg["generate"]))] \
                if cfg["generate"] else []
            times_path = full + ".time"
            if a.collect and not os.path.exists(full):
                continue  # --collect runs nothing, not even the statistics pass
            if not os.path.exists(full):
                t = run([["tokenize", "-m", model] + cfg["segments"] + files,
                         ["embed", "-m", model],
                         ["attend", "-m", model] + cfg.get("rows", ["--mass-last", "32"]) + surp,
                         ["kvcache", "-m", model] + gen + ["--targets", gold]], full, log)
                with open(times_path, "w") as f:  # tokenize..attend, kvcache
                    f.write(f"{t[2]:.3f}\t{t[3] - t[2]:.3f}\n")
            prep[task] = (full, gold, cfg, len(files), sfx)
            gen_only = ["--generate", str(cfg["generate"])] if cfg["generate"] else []
            for pol in pols:
                kind, unit, extra = POLICIES[pol]
                if "both" in extra and not cfg["generate"]:
                    continue  # no answer rows without an answer
                for ph, fname in (("{heads}", "heads"), ("{baseline}", "baseline")):
                    if ph in extra:
                        hf = os.path.join(a.out, f"{fname}-{model}.txt")
                        if not os.path.exists(hf):
                            print(f"evaluate: {model}: {pol} needs {hf} (examples/heads.py on "
                                  f"the calibration items); skipped", file=sys.stderr)
                            extra = None
                            break
                        extra = [hf if x == ph else x for x in extra]
                if extra is None:
                    continue
                for keep in (keeps if kind in ("prune", "evict") else ["1"]):
                    if kind == "none" and keep != "1":
                        continue
                    tag = pol.replace("/", "_").replace(":", "_").replace("+", "_")
                    out = os.path.join(mdir, f"{task}{sfx}.{tag}.{keep}.ak")
                    if kind == "full":
                        jobs.append((task, pol, "1", full, None))
                        continue
                    if os.path.exists(out):
                        jobs.append((task, pol, keep, out, None))
                        continue
                    if kind == "evict":
                        cmds = [["kvcache", "-m", model] + extra + ["--keep", keep] + cfg["protect"] +
                                gen_only + ["--targets", gold, full]]
                    else:
                        k = "0" if kind == "none" else keep
                        p = extra if kind == "prune" else ["-p", "first"]
                        u = unit if kind == "prune" else "word"
                        pr = ["prune", "-k", k, "-u", u] + p + cfg["query"]
                        if "qppl" in pr:
                            pr += ["--lm", model]
                        cmds = [pr + [full], ["kvcache", "-m", model] + gen_only + ["--targets", gold]]
                        cmds = ("two", cmds)
                    jobs.append((task, pol, keep, out, cmds))

        def work(j):
            task, pol, keep, out, cmds = j
            if cmds is None:
                return j, None
            if a.max_minutes and time.monotonic() - t_start > 60 * a.max_minutes:
                return j, "deferred"
            try:
                if cmds[0] == "two":  # prune alone (timed), then the model on its output
                    pruned = out[:-3] + ".pruned.ak"
                    t = run([cmds[1][0]], pruned, log)
                    t += run([cmds[1][1] + [pruned]], out, log)
                    os.unlink(pruned)
                else:
                    try:
                        t = run(cmds, out, log)
                    except Failed as e:
                        if "protected tokens" not in str(e):
                            raise
                        t = run_each(cmds[0], out, log)
            except Failed as e:
                return j, str(e)
            with open(out + ".time", "w") as f:
                f.write(f"{t[0]:.3f}\t{t[-1]:.3f}\n")
            return j, None

        todo = [j for j in jobs if j[4] is not None]
        if a.collect:
            todo = []
            jobs = [j[:4] + (None,) for j in jobs]
        print(f"evaluate: {model}: {len(todo)} of {len(jobs)} configurations to run", file=sys.stderr)
        failed = {}
        skipped = []
        done = deferred = 0
        with cf.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            for j, err in ex.map(work, jobs):
                if j[4] is None:
                    continue
                if err == "deferred":
                    deferred += 1
                    continue
                done += 1
                if err and "protected tokens" in err and "below" in err:
                    # a budget smaller than the question kvcache must keep:
                    # refused by design, a cell left empty, not a failure
                    skipped.append(f"{j[0]}\t{j[1]}\t{j[2]}\t{err}")
                elif err:
                    failed[(j[0], j[1], j[2])] = err
                    print(f"evaluate: {model} {j[0]} {j[1]} {j[2]}: {err}", file=sys.stderr)
                elif done % 10 == 0:
                    print(f"evaluate: {model}: {done}/{len(todo)}", file=sys.stderr)

        if deferred:
            print(f"evaluate: {model}: {deferred} configurations left for the next "
                  f"chunk (--max-minutes {a.max_minutes:g})", file=sys.stderr)
        rows = ["model\ttask\tname\tpolicy\tunit\tkeep\tkept\ttotal\tlogprob\tgold_tokens"
                "\tprune_s\tanswer_s\tstats_s\tanswer"]
        for task, pol, keep, out, _ in jobs + earlier_outputs(mdir, prep, jobs):
            if not os.path.exists(out):
                continue
            full, gold, cfg, n, _ = prep[task]
            tpath = out + ".time"
            prune_s = answer_s = stats_s = ""
            if os.path.exists(tpath):
                t = [float(x) for x in open(tpath).read().split("\t")]
                if POLICIES[pol][0] == "full":  # tokenize..attend, then kvcache
                    answer_s = "%.4f" % (t[1] / n)
                    stats_s = "%.4f" % (t[0] / n)
                else:
                    answer_s = "%.4f" % (t[-1] / n)
                if POLICIES[pol][0] == "prune":
                    prune_s = "%.4f" % (t[0] / n)
            for name, r in sorted(summarize(model, out, log).items()):
                ans = r["answer"].replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                rows.append("\t".join([model, task, name, pol, POLICIES[pol][1], keep,
                                       "%.4f" % r["kept"], str(r["total"]), "%.4f" % r["logprob"],
                                       str(r["gold_tokens"]), prune_s, answer_s, stats_s, ans]))
        with open(os.path.join(mdir, "skipped.tsv"), "w") as f:
            f.write("".join(x + "\n" for x in skipped))
        if skipped:
            print(f"evaluate: {model}: {len(skipped)} configurations not applicable "
                  f"(see {mdir}/skipped.tsv)", file=sys.stderr)
        path = os.path.join(mdir, f"rows{rows_sfx}.tsv")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(rows) + "\n")
        os.replace(path + ".tmp", path)
        if failed:
            sys.exit(f"evaluate: {model}: {len(failed)} configurations failed (see above)")


if __name__ == "__main__":
    main()
