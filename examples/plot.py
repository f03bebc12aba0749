#!/usr/bin/env python3
"""examples/plot.py RESULTS.tsv OUT.svg - the experiment's measures against
the share of the prompt kept, one row of panels per model, the panels
chosen from the tasks the file holds:

  the first experiment (qa, kv, cont): QA and key-value accuracy on the
  items the full prompt answers, and the continuation's Δ log-likelihood,
  lines over the keep ratios;
  issue 19 (pqa, needle): accuracy on the items the full prompt answers and
  Δ log-likelihood of the gold answer for each task, every point with its
  95 % bootstrap interval as an error bar, the policies side by side around
  each keep ratio so the bars do not overlap (issue 19's runs have one keep
  ratio or a few).

Attention policies are solid lines, the baselines (surprisal, qppl,
similarity, random, first, last) dashed, the cache evictions dotted; the
grey lines are the full prompt and the question alone.  Only rows over all
gold positions (position "all") are drawn.  Written by hand as SVG: no
plotting library needed."""
import csv
import html
import math
import os
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t", quoting=csv.QUOTE_NONE))
# (task, measure, title, y range or None for a Δ log-likelihood, error bars)
KNOWN_PANELS = [("qa", "acc_fc", "QA accuracy", (0, 1), False),
                ("kv", "acc_fc", "key-value accuracy", (0, 1), False),
                ("cont", "dll", "continuation ΔLL (nats/token)", None, False),
                ("pqa", "acc_fc", "pqa accuracy", (0, 1), True),
                ("pqa", "dll", "pqa ΔLL, nats/token", None, True),
                ("needle", "acc_fc", "needle accuracy", (0, 1), True),
                ("needle", "dll", "needle ΔLL, nats/token", None, True)]
tasks_present = {r["task"] for r in rows}
PANELS = [p for p in KNOWN_PANELS if p[0] in tasks_present]
if not PANELS:
    sys.exit(f"plot.py: {sys.argv[1]} holds none of the tasks "
             f"{', '.join(sorted({p[0] for p in KNOWN_PANELS}))}")
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
    if p.startswith(ATTENTION) or "heads" in p or "baseline" in p:
        return ""
    return "7,4"


def marker(p, x, y):
    """a point in the error-bar panels, its shape saying the policy's kind as
    the dashes do where there is a line: attention a circle, a baseline a
    square, an eviction a diamond"""
    if style(p) == "":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{color[p]}"/>'
    if p.startswith("evict:"):
        return f'<path d="M{x:.1f},{y - 4:.1f}l4,4l-4,4l-4,-4z" fill="{color[p]}"/>'
    return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{color[p]}"/>'


def number(s):
    try:
        return float(s)
    except ValueError:
        return float("nan")


def nice_range(lo, hi):
    """an axis from lo to hi, both rounded out to a multiple of the smallest
    step in 0.25, 0.5, 1, 2, 5, 10 that needs at most six intervals:
    (range, intervals)"""
    for step in (0.25, 0.5, 1, 2, 5, 10):
        a, b = math.floor(lo / step) * step, math.ceil(hi / step) * step
        if b == a:
            b = a + step
        if (b - a) / step <= 6:
            break
    return (a, b), round((b - a) / step)


# (model, task, measure, policy) -> {keep: (value, low, high)}; low and
# high are nan where the file has no interval
data = defaultdict(dict)
counted = {}  # (model, task, measure) -> the items the measure is over
for r in rows:
    if r.get("position", "all") != "all":
        continue
    for task, meas, _, _, _ in PANELS:
        if task != r["task"]:
            continue
        v = number(r[meas])
        if not math.isnan(v):
            data[(r["model"], task, meas, r["policy"])][float(r["keep"])] = (
                v, number(r.get(meas + "_lo", "nan")), number(r.get(meas + "_hi", "nan")))
        if r["policy"] == "full":
            counted[(r["model"], task, meas)] = r["n_fc" if meas == "acc_fc" else "n"]

PW, PH, ML, MT, GAP = 300, 220, 60, 40, 50
LEG = 230
W = ML + len(PANELS) * (PW + GAP) + LEG
H = MT + len(models) * (PH + 70) + 20
# the keep ratios the error-bar panels share: a linear axis over them,
# padded, with each policy's points offset within a band around each ratio
bar_tasks = {p[0] for p in PANELS if p[4]}
bar_keeps = sorted({k for (_, task, _, p), s in data.items() if task in bar_tasks and p not in ("full", "none")
                    for k in s})
if bar_keeps:
    span = bar_keeps[-1] - bar_keeps[0]
    pad = max(0.1, 0.25 * span)
    bar_lo, bar_hi = bar_keeps[0] - pad, bar_keeps[-1] + pad
    gaps = [b - a for a, b in zip(bar_keeps, bar_keeps[1:])] or [2 * pad]
    band = min(0.75 * PW, 0.7 * min(gaps) / (bar_hi - bar_lo) * PW)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="DejaVu Sans, sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for mi, model in enumerate(models):
    y0 = MT + mi * (PH + 70)
    for pi, (task, meas, title, yr, bars) in enumerate(PANELS):
        x0 = ML + pi * (PW + GAP)
        series = {p: data.get((model, task, meas, p), {}) for p in policies + ["full", "none"]}
        vals = [v for s in series.values() for v, _, _ in s.values()]
        if bars:
            vals += [x for p in policies for _, lo, hi in series[p].values()
                     for x in (lo, hi) if not math.isnan(x)]
        ticks = 4
        if yr is None and bars:
            yr, ticks = nice_range(min(vals + [0]), max(vals + [0]))
        elif yr is None:
            lo = min(vals + [0]) if vals else -1
            lo = math.floor(lo * 4) / 4 if lo < 0 else -0.25
            yr = (lo, 0.05)
        ylo, yhi = yr
        drawn = [p for p in policies if series[p]]

        if bars:
            def X(k, p=None):
                x = x0 + (k - bar_lo) / (bar_hi - bar_lo) * PW
                if p is not None and len(drawn) > 1:
                    # at most 24 px between neighbours: a few policies stay near their keep ratio
                    x += min(band, 24 * (len(drawn) - 1)) * (drawn.index(p) / (len(drawn) - 1) - 0.5)
                return x
        else:
            def X(k, p=None):
                return x0 + k / 0.8 * PW

        def Y(v):
            return y0 + PH - (v - ylo) / (yhi - ylo) * PH

        heading = f'{html.escape(model)}: {html.escape(title)}'
        if bars:
            n = counted.get((model, task, meas))
            if n:
                heading += f' ({html.escape(n)} items)'
        out.append(f'<text x="{x0}" y="{y0 - 8}" font-weight="bold">{heading}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{PW}" height="{PH}" fill="none" stroke="#999"/>')
        for i in range(ticks + 1):
            v = ylo + (yhi - ylo) * i / ticks
            out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                       f'stroke="#eee"/><text x="{x0 - 5}" y="{Y(v) + 4:.1f}" '
                       f'text-anchor="end">{v:.2f}</text>')
        for k in bar_keeps if bars else (0.1, 0.2, 0.3, 0.5, 0.7):
            out.append(f'<text x="{X(k):.1f}" y="{y0 + PH + 14}" text-anchor="middle">{k}</text>')
        out.append(f'<text x="{x0 + PW / 2}" y="{y0 + PH + 28}" text-anchor="middle">'
                   f'share of the prompt kept</text>')
        for p, dash in (("full", "4,2"), ("none", "1,2")):
            s = series[p]
            if s:
                v = list(s.values())[0][0]
                label = "full prompt" if p == "full" else "question alone" if bars else "no context"
                out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                           f'stroke="#888" stroke-width="1.5" stroke-dasharray="{dash}"/>'
                           f'<text x="{x0 + PW - 3}" y="{Y(v) + (12 if Y(v) < y0 + 20 else -3):.1f}" text-anchor="end" '
                           f'fill="#666">{label}</text>')
        for p in drawn:
            s = sorted(series[p].items())
            pts = " ".join(f"{X(k, p if bars else None):.1f},{Y(v):.1f}" for k, (v, _, _) in s)
            if bars:
                # one group per series, named for the policy (a tooltip in a browser)
                out.append(f'<g class="series"><title>{html.escape(p)}</title>')
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color[p]}" '
                       f'stroke-width="1.6" stroke-dasharray="{style(p)}"/>')
            for k, (v, lo, hi) in s:
                x = X(k, p if bars else None)
                if bars and not (math.isnan(lo) or math.isnan(hi)):
                    out.append(f'<path class="ci" d="M{x - 3:.1f},{Y(lo):.1f}H{x + 3:.1f}M{x:.1f},{Y(lo):.1f}'
                               f'V{Y(hi):.1f}M{x - 3:.1f},{Y(hi):.1f}H{x + 3:.1f}" '
                               f'stroke="{color[p]}" stroke-width="1.2" fill="none"/>')
                out.append(marker(p, x, Y(v)) if bars else
                           f'<circle cx="{x:.1f}" cy="{Y(v):.1f}" r="2.2" fill="{color[p]}"/>')
            if bars:
                out.append('</g>')
lx = ML + len(PANELS) * (PW + GAP)
for i, p in enumerate(policies):
    y = MT + 10 + i * 16
    out.append(f'<line x1="{lx}" x2="{lx + 28}" y1="{y}" y2="{y}" stroke="{color[p]}" '
               f'stroke-width="2" stroke-dasharray="{style(p)}"/>'
               f'<text x="{lx + 34}" y="{y + 4}">{html.escape(p)}</text>')
    if bar_keeps:
        out.append(marker(p, lx + 14, y))
if bar_keeps:
    y = MT + 10 + len(policies) * 16 + 10
    for i, line in enumerate(("bars: 95 % bootstrap intervals over", "the items (all gold positions);",
                              "at each keep ratio the policies", "stand side by side in legend order")):
        out.append(f'<text x="{lx}" y="{y + i * 14}" fill="#666">{line}</text>')
out.append("</svg>")
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(out) + "\n")
os.replace(tmp, sys.argv[2])
