#!/usr/bin/env python3
"""examples/analyze.py OUT RESULTS.tsv SUMMARY.md

Reads OUT/items.tsv and OUT/*/rows*.tsv (evaluate.py) and writes:

  RESULTS.tsv  one row per model, task, policy and keep ratio: the items,
               the share of tokens kept, and each measure with its 95 %
               bootstrap interval (2000 resamples of the items, percentile):
     acc       exact match of the generated answer, all items
     acc_fc    the same on the items the full prompt answers correctly
               (n_fc of them): the accuracy the pruning keeps
     contains  the gold answer anywhere in the generated text (all items)
     agree     the answer equals the full prompt's answer (all items)
     dll       log-likelihood of the gold continuation, pruned minus full,
               in nats per gold token (0: no loss; continuation: the only
               measure)
     prune_ms  the wall time of the pruning step per item (prune alone; the
               statistics it reads come from the one full run all share)
  SUMMARY.md   the tables examples/README.md quotes: per model and task, the
               policies ranked at each keep ratio.

Exact match: QA, the first generated word is the gold word (case and
punctuation aside); key-value, the generated text starts with the value.
Agreement compares the same part of the two answers.
"""
import csv
import glob
import math
import os
import random
import re
import sys
from collections import defaultdict

B = 2000


def words(s):
    return [w for w in re.split(r"[^\w-]+", s.lower()) if w]


def first_word(s):
    w = words(s)
    return w[0] if w else ""


def norm(s):
    return " ".join(s.lower().replace("*", "").split())


def gold_of(it):
    """What judge compares with: pqa and needle's accepted answers
    (|-separated), else the answer."""
    return it.get("answers") or it["answer"]


def judge(task, answer, gen):
    """(exact, contains, key) where key is what agreement compares.  pqa,
    needle (chat answers, 8 tokens): correct when one of the accepted
    answers is in the answer (for multivalue and vartrack one of the values
    or names: 8 tokens hold one)."""
    if task in ("pqa", "needle"):
        ok = any(norm(a) in norm(gen) for a in answer.split("|") if a)
        return (ok, ok, norm(gen)[:40])
    if task == "qa":
        return (first_word(gen) == answer.lower(), answer.lower() in words(gen), first_word(gen))
    if task == "kv":
        g = gen.strip()
        return (g.startswith(answer), answer in g, g[:8])
    return (None, None, None)


def bootstrap(v, cell):
    """The mean and its 95 % percentile-bootstrap interval.  The resampling
    is seeded by the cell's own name, so a cell's interval does not move when
    other cells are added to or dropped from a run."""
    rng = random.Random("|".join(map(str, cell)))
    v = [x for x in v if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return (float("nan"),) * 3
    m = sum(v) / len(v)
    if len(v) == 1:
        return (m, m, m)
    means = sorted(sum(rng.choice(v) for _ in v) / len(v) for _ in range(B))
    return (m, means[int(0.025 * B)], means[int(0.975 * B) - 1])


def fmt(x, d=3):
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


ATTENTION = ("mass", "entropy", "heavy", "query", "query+answer", "mass/block", "query/block",
             "query+answer/block", "query/block:max", "query/block:top3", "query:numbers",
             "query/block:heads", "query/block:calibrated")
BASELINES = ("surprisal", "qppl/block", "qppl+surprisal", "similarity/block")


def item_measure(task, r, it, f, measure):
    if measure == "dll":
        g = int(r["gold_tokens"])
        return (float(r["logprob"]) - float(f["logprob"])) / g if g and f else None
    ex, _, _ = judge(task, gold_of(it), r["answer"])
    fex, _, _ = judge(task, gold_of(it), f["answer"]) if f else (None, None, None)
    return float(ex) if fex else None


def head_to_head(rows, items, full, models):
    """Per model, task and keep: the best attention policy against the
    best baseline (each chosen by its mean on these items, so both are
    favoured alike), their difference per item with a paired bootstrap."""
    by = defaultdict(dict)
    for r in rows:
        it = items[r["name"]]
        for meas in ("acc", "dll"):
            if meas == "acc" and r["task"] == "cont":
                continue
            v = item_measure(r["task"], r, it, full.get((r["model"], r["name"])), meas)
            if v is not None:
                by[(r["model"], r["task"] + ":" + meas, r["keep"], r["policy"])][r["name"]] = v
    out = ["### Attention against the baselines, head to head", "",
           "The best attention policy against the best baseline at each keep ratio "
           "(each picked by its mean here, which favours both alike), the difference "
           "per item (attention minus baseline) with a 95 % paired bootstrap interval: "
           "acc, accuracy on the full-correct items; dll, Δ log-likelihood of the gold "
           "(nats/token, all items).", "",
           "| model | task | keep | attention | baseline | difference |", "|---|---|---|---|---|---|"]
    for model in models:
        for task in ("qa:acc", "qa:dll", "kv:acc", "kv:dll", "cont:dll", "pqa:acc", "pqa:dll",
                     "needle:acc", "needle:dll"):
            keeps = sorted({k for (m, t, k, p) in by if m == model and t == task and
                            p in ATTENTION}, key=float)
            for keep in keeps:
                def best(names):
                    c = [(sum(by[(model, task, keep, p)].values()) / len(by[(model, task, keep, p)]), p)
                         for p in names if by.get((model, task, keep, p))]
                    return max(c) if c else None
                a, b = best(ATTENTION), best(BASELINES)
                if not a or not b:
                    continue
                va, vb = by[(model, task, keep, a[1])], by[(model, task, keep, b[1])]
                common = sorted(set(va) & set(vb))
                d = [va[n] - vb[n] for n in common]
                m, lo, hi = bootstrap(d, (model, task, keep, a[1], b[1]))
                out.append(f"| {model} | {task} | {keep} | {a[1]} {fmt(a[0], 2)} | "
                           f"{b[1]} {fmt(b[0], 2)} | {fmt(m, 2)} [{fmt(lo, 2)}, {fmt(hi, 2)}] "
                           f"(n={len(d)}) |")
    out.append("")
    return out


def main():
    out, res_path, sum_path = sys.argv[1:4]
    items = {r["name"]: r for r in csv.DictReader(open(os.path.join(out, "items.tsv")),
                                                  delimiter="\t", quoting=csv.QUOTE_NONE)}
    rows = []
    for p in sorted(glob.glob(os.path.join(out, "*", "rows*.tsv"))):
        rows += list(csv.DictReader(open(p), delimiter="\t", quoting=csv.QUOTE_NONE))
    for r in rows:
        r["answer"] = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]),
                             r["answer"])
    full = {(r["model"], r["name"]): r for r in rows if r["policy"] == "full"}
    groups = defaultdict(list)
    order = []
    for r in rows:
        pos = items[r["name"]]["position"]
        for p in ["all"] + ([pos] if pos != "-" else []):
            k = (r["model"], r["task"], p, r["policy"], r["unit"], r["keep"])
            if k not in groups:
                order.append(k)
            groups[k].append(r)

    table = []
    for k in order:
        model, task, position, pol, unit, keep = k
        g = groups[k]
        acc, acc_fc, cont, agree, dll, kept, ms, ans_ms, st_ms = [], [], [], [], [], [], [], [], []
        for r in g:
            it = items[r["name"]]
            f = full.get((model, r["name"]))
            ex, co, key = judge(task, gold_of(it), r["answer"])
            if task != "cont" and f:
                fex, _, fkey = judge(task, gold_of(it), f["answer"])
                acc.append(float(ex))
                cont.append(float(co))
                agree.append(float(key == fkey))
                if fex:
                    acc_fc.append(float(ex))
            if f and int(r["gold_tokens"]) > 0:
                dll.append((float(r["logprob"]) - float(f["logprob"])) / int(r["gold_tokens"]))
            kept.append(float(r["kept"]))
            if r["prune_s"]:
                ms.append(1000 * float(r["prune_s"]))
            if r["answer_s"]:
                ans_ms.append(1000 * float(r["answer_s"]))
            if r["stats_s"]:
                st_ms.append(1000 * float(r["stats_s"]))
        m = dict(model=model, task=task, position=position, policy=pol, unit=unit, keep=keep,
                 n=len(g), kept=sum(kept) / len(kept), n_fc=len(acc_fc))
        for name, v in (("acc", acc), ("acc_fc", acc_fc), ("contains", cont),
                        ("agree", agree), ("dll", dll)):
            m[name], m[name + "_lo"], m[name + "_hi"] = bootstrap(v, k + (name,))
        for name, v in (("prune_ms", ms), ("answer_ms", ans_ms), ("stats_ms", st_ms)):
            m[name] = sum(v) / len(v) if v else float("nan")
        table.append(m)

    cols = ["model", "task", "position", "policy", "unit", "keep", "n", "kept", "acc", "acc_lo",
            "acc_hi", "n_fc", "acc_fc", "acc_fc_lo", "acc_fc_hi", "contains", "agree", "agree_lo",
            "agree_hi", "dll", "dll_lo", "dll_hi", "prune_ms", "answer_ms", "stats_ms"]
    with open(res_path + ".tmp", "w") as f:
        f.write("\t".join(cols) + "\n")
        for m in table:
            f.write("\t".join(fmt(m[c], 1 if c.endswith("_ms") else 3) if isinstance(m[c], float)
                              else str(m[c]) for c in cols) + "\n")
    os.replace(res_path + ".tmp", res_path)

    # the summary tables
    bypos = [m for m in table if m["position"] != "all"]
    table = [m for m in table if m["position"] == "all"]
    lines = []
    models = sorted({m["model"] for m in table})
    for model in models:
        fulls = [m for m in table if m["model"] == model and m["policy"] == "full"]
        st = [m["stats_ms"] for m in fulls if not math.isnan(m["stats_ms"])]
        an = [m["answer_ms"] for m in fulls if not math.isnan(m["answer_ms"])]
        if st and an:
            lines.append(f"{model}: the statistics every policy reads (tokenize | embed | attend "
                         f"with --mass-last 32 or, for pqa and needle, --mass-rows last) cost {fmt(sum(st) / len(st), 0)} ms per item, "
                         f"the full prompt's answer (kvcache --generate --gen-mass --targets) "
                         f"{fmt(sum(an) / len(an), 0)} ms, one thread.")
            lines.append("")
    for model in models:
        for task in ("qa", "kv", "cont", "pqa", "needle"):
            ts = [m for m in table if m["model"] == model and m["task"] == task]
            if not ts:
                continue
            keeps = sorted({m["keep"] for m in ts if m["policy"] not in ("full", "none")},
                           key=float)
            base = {m["policy"]: m for m in ts if m["policy"] in ("full", "none")}
            measures = (["dll"] if task == "cont" else
                        ["acc_fc", "dll"] if task in ("pqa", "needle") else ["acc_fc"])
            for measure in measures:
                what = ("Δ log-likelihood of the gold continuation, nats/token" if measure == "dll"
                        else "accuracy on the items the full prompt answers")
                n = base["full"]["n"] if "full" in base else ts[0]["n"]
                nfc = base["full"]["n_fc"] if "full" in base else "?"
                lines.append(f"### {model}, {task}: {what}")
                lines.append("")
                if task != "cont" and "full" in base:
                    b = base["full"]
                    lines.append(f"{n} items; the full prompt answers {nfc} "
                                 f"(accuracy {fmt(b['acc'], 2)}); with the question alone "
                                 f"(no context) {fmt(base['none']['acc'], 2) if 'none' in base else '?'}.")
                elif "none" in base:
                    lines.append(f"{n} items; the question alone (no context) loses "
                                 f"{fmt(-base['none']['dll'], 2)} nats/token.")
                lines.append("")
                pols = []
                for m in ts:
                    if m["policy"] not in ("full", "none") and m["policy"] not in pols:
                        pols.append(m["policy"])
                cell = {(m["policy"], m["keep"]): m for m in ts}
                mean_of = {}
                for p in pols:
                    v = [cell[(p, k)][measure] for k in keeps if (p, k) in cell]
                    v = [x for x in v if not math.isnan(x)]
                    mean_of[p] = sum(v) / len(v) if v else float("-inf")
                pols.sort(key=lambda p: -mean_of[p])
                lines.append("| policy | " + " | ".join(f"keep {k}" for k in keeps) +
                             " | mean | prune ms |")
                lines.append("|---|" + "---|" * (len(keeps) + 2))
                # a cell over fewer items than the table's most (a policy not
                # yet run on every size) says how many
                count = "n_fc" if measure == "acc_fc" else "n"
                most = max(m[count] for m in ts)
                for p in pols:
                    cs = []
                    for k in keeps:
                        c = cell.get((p, k))
                        if not c or math.isnan(c[measure]):
                            cs.append("–")
                        else:
                            cs.append(f"{fmt(c[measure], 2)} [{fmt(c[measure + '_lo'], 2)}, "
                                      f"{fmt(c[measure + '_hi'], 2)}]" +
                                      (f" ({c[count]} items)" if c[count] < most else ""))
                    msv = [cell[(p, k)]["prune_ms"] for k in keeps if (p, k) in cell]
                    msv = [x for x in msv if not math.isnan(x)]
                    ms = fmt(sum(msv) / len(msv), 0) if msv else "–"
                    mean = fmt(mean_of[p], 2) if mean_of[p] > float("-inf") else "–"
                    lines.append(f"| {p} | " + " | ".join(cs) + f" | {mean} | {ms} |")
                lines.append("")
                if task == "cont":
                    continue
                pcell = defaultdict(list)
                for m in bypos:
                    if m["model"] == model and m["task"] == task and m["policy"] in pols + ["full", "none"]:
                        if not math.isnan(m[measure]):
                            pcell[(m["policy"], m["position"])].append(m[measure])
                lines.append(f"By the gold's position (mean over the keep ratios; full prompt "
                             f"and no context as they are):")
                lines.append("")
                lines.append("| policy | start | middle | end |")
                lines.append("|---|---|---|---|")
                for p in ["full", "none"] + pols:
                    cs = []
                    for pos in ("start", "middle", "end"):
                        v = pcell.get((p, pos))
                        cs.append(fmt(sum(v) / len(v), 2) if v else "–")
                    lines.append(f"| {p} | " + " | ".join(cs) + " |")
                lines.append("")
    lines += head_to_head(rows, items, full, models)
    with open(sum_path + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(sum_path + ".tmp", sum_path)


if __name__ == "__main__":
    main()
