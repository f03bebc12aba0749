#!/usr/bin/env python3
"""examples/plot.py RESULTS.tsv OUT.svg - the experiment's measures against
the share of the prompt kept, one row of panels per model: QA and key-value
accuracy on the items the full prompt answers, and the continuation's
Δ log-likelihood.  Attention policies are solid lines, the baselines
(surprisal, qppl, similarity, random, first, last) dashed, the cache
evictions dotted; the grey lines are the full prompt and the question
alone.  Written by hand as SVG: no plotting library needed."""
import csv
import html
import math
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t", quoting=csv.QUOTE_NONE))
PANELS = [("qa", "acc_fc", "QA accuracy", (0, 1)),
          ("kv", "acc_fc", "key-value accuracy", (0, 1)),
          ("cont", "dll", "continuation ΔLL (nats/token)", None)]
ATTENTION = ("mass", "entropy", "heavy", "query")
PALETTE = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#1f77b4", "#17becf",
           "#2ca02c", "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]

models = sorted({r["model"] for r in rows})
policies = []
for r in rows:
    if r["policy"] not in ("full", "none") and r["policy"] not in policies:
        policies.append(r["policy"])
color = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(policies)}


def style(p):
    if p.startswith("evict:"):
        return "2,3"
    if p.split("/")[0].split("+")[0] in ATTENTION:
        return ""
    return "7,4"


data = defaultdict(dict)
for r in rows:
    try:
        v = float(r[[m for t, m, _, _ in PANELS if t == r["task"]][0]]) if r.get("position", "all") == "all" else float("nan")
    except (IndexError, ValueError):
        continue
    if not math.isnan(v):
        data[(r["model"], r["task"], r["policy"])][float(r["keep"])] = v

PW, PH, ML, MT, GAP = 300, 220, 60, 40, 50
LEG = 230
W = ML + len(PANELS) * (PW + GAP) + LEG
H = MT + len(models) * (PH + 70) + 20
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="DejaVu Sans, sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for mi, model in enumerate(models):
    y0 = MT + mi * (PH + 70)
    for pi, (task, meas, title, yr) in enumerate(PANELS):
        x0 = ML + pi * (PW + GAP)
        series = {p: data.get((model, task, p), {}) for p in policies + ["full", "none"]}
        vals = [v for s in series.values() for v in s.values()]
        if yr is None:
            lo = min(vals + [0]) if vals else -1
            lo = math.floor(lo * 4) / 4 if lo < 0 else -0.25
            yr = (lo, 0.05)
        ylo, yhi = yr

        def X(k):
            return x0 + k / 0.8 * PW

        def Y(v):
            return y0 + PH - (v - ylo) / (yhi - ylo) * PH

        out.append(f'<text x="{x0}" y="{y0 - 8}" font-weight="bold">'
                   f'{html.escape(model)}: {html.escape(title)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{PW}" height="{PH}" fill="none" stroke="#999"/>')
        for i in range(5):
            v = ylo + (yhi - ylo) * i / 4
            out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                       f'stroke="#eee"/><text x="{x0 - 5}" y="{Y(v) + 4:.1f}" '
                       f'text-anchor="end">{v:.2f}</text>')
        for k in (0.1, 0.2, 0.3, 0.5, 0.7):
            out.append(f'<text x="{X(k):.1f}" y="{y0 + PH + 14}" text-anchor="middle">{k}</text>')
        out.append(f'<text x="{x0 + PW / 2}" y="{y0 + PH + 28}" text-anchor="middle">'
                   f'share of the prompt kept</text>')
        for p, dash in (("full", "4,2"), ("none", "1,2")):
            s = series[p]
            if s:
                v = list(s.values())[0]
                out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                           f'stroke="#888" stroke-width="1.5" stroke-dasharray="{dash}"/>'
                           f'<text x="{x0 + PW - 3}" y="{Y(v) + (12 if Y(v) < y0 + 20 else -3):.1f}" text-anchor="end" '
                           f'fill="#666">{"full prompt" if p == "full" else "no context"}</text>')
        for p in policies:
            s = sorted(series[p].items())
            if not s:
                continue
            pts = " ".join(f"{X(k):.1f},{Y(v):.1f}" for k, v in s)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color[p]}" '
                       f'stroke-width="1.6" stroke-dasharray="{style(p)}"/>')
            for k, v in s:
                out.append(f'<circle cx="{X(k):.1f}" cy="{Y(v):.1f}" r="2.2" fill="{color[p]}"/>')
lx = ML + len(PANELS) * (PW + GAP)
for i, p in enumerate(policies):
    y = MT + 10 + i * 16
    out.append(f'<line x1="{lx}" x2="{lx + 28}" y1="{y}" y2="{y}" stroke="{color[p]}" '
               f'stroke-width="2" stroke-dasharray="{style(p)}"/>'
               f'<text x="{lx + 34}" y="{y + 4}">{html.escape(p)}</text>')
out.append("</svg>")
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(out) + "\n")
import os  # noqa: E402
os.replace(tmp, sys.argv[2])
