"""plot.py RESULTS.tsv OUT.svg|OUT.png - accuracy cost vs keep ratio per policy.

Reads the experiment's results.tsv and draws, with matplotlib when it is
installed (SVG or PNG by the output's extension) or else by writing the SVG
by hand (no plotting library needed): left panel, mean cosine similarity between the mean-pooled
sentence embeddings of full and pruned passages; right panel, the share of
queries whose pruned passage still ranks first.  Random is averaged over its
seeds.  Examples are not the product, so Python is fine here."""
import csv
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
series = defaultdict(lambda: defaultdict(list))
for r in rows:
    label = r["policy"] if r["unit"] == "token" else f'{r["policy"]} ({r["unit"]})'
    k = float(r["keep"])
    series[label][k].append((float(r["cosine"]), float(r["top1_pruned"]), float(r["kept"])))

COLORS = {"mass": "#d62728", "entropy": "#ff7f0e", "heavy": "#9467bd", "random": "#7f7f7f",
          "first": "#1f77b4", "last": "#17becf", "mass (sentence)": "#e377c2",
          "random (sentence)": "#bcbd22", "mass (block)": "#8c564b",
          "random (block)": "#2ca02c"}
W, H, PAD, PW = 980, 460, 60, 360
NOTE = "all-MiniLM-L6-v2, 20 passages of /usr/share/common-licenses; random: mean of 3 seeds"


def mean(v, idx):
    return sum(p[idx] for p in v) / len(v)


def with_matplotlib(out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    titles = ["cosine(full, pruned), mean-pooled embeddings",
              "retrieval: pruned passage still ranks first"]
    for idx, ax in enumerate(axes):
        for label, pts in sorted(series.items()):
            ks = sorted(pts)  # x: the share of tokens actually kept (units may not fill the budget)
            ax.plot([mean(pts[k], 2) for k in ks], [mean(pts[k], idx) for k in ks], marker="o",
                    label=label,
                    color=COLORS.get(label, "#000"), linestyle="--" if "(" in label else "-")
        ax.set_title(titles[idx], fontsize=11)
        ax.set_xlabel("share of tokens kept")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=9, loc="lower right")
    fig.text(0.5, 0.005, NOTE, ha="center", fontsize=9, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out, metadata={"Date": None} if out.endswith(".svg") else None)


try:
    with_matplotlib(sys.argv[2])
    sys.exit(0)
except ImportError:
    pass


def panel(x0, title, idx, ylo, yhi):
    out = [f'<text x="{x0 + PW / 2}" y="30" text-anchor="middle" font-size="15">{title}</text>',
           f'<rect x="{x0}" y="{PAD}" width="{PW}" height="{H - 2 * PAD}" fill="none" stroke="#333"/>']
    keeps = [0.1, 0.3, 0.5, 0.7, 0.9]
    kx = lambda k: x0 + (k - 0.1) / 0.9 * PW
    vy = lambda v: PAD + (yhi - v) / (yhi - ylo) * (H - 2 * PAD)
    for k in keeps:
        out.append(f'<text x="{kx(k):.1f}" y="{H - PAD + 18}" text-anchor="middle" font-size="11">{k:g}</text>')
    steps = 5
    for i in range(steps + 1):
        v = ylo + (yhi - ylo) * i / steps
        out.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{vy(v):.1f}" y2="{vy(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{vy(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.2f}</text>')
    out.append(f'<text x="{x0 + PW / 2}" y="{H - PAD + 38}" text-anchor="middle" font-size="12">share of tokens kept</text>')
    for label, pts in sorted(series.items()):
        xy = [(kx(mean(v, 2)), vy(mean(v, idx))) for k, v in sorted(pts.items())]
        c = COLORS.get(label, "#000")
        dash = ' stroke-dasharray="5,3"' if "(" in label else ""
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{c}"/>' for x, y in xy]
    return out


def lo(idx):
    v = min(sum(p[idx] for p in pts) / len(pts) for s in series.values() for pts in s.values())
    return max(0.0, int(v * 10) / 10)


svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
svg += panel(PAD + 10, "cosine(full, pruned) of mean-pooled embeddings", 0, lo(0), 1.0)
svg += panel(PAD + PW + 90, "retrieval: pruned passage still ranks first", 1, lo(1), 1.0)
for i, label in enumerate(sorted(series)):
    y = PAD + 14 + 18 * i
    x = PAD + 2 * PW + 110
    c = COLORS.get(label, "#000")
    dash = ' stroke-dasharray="5,3"' if "(" in label else ""
    svg.append(f'<line x1="{x}" x2="{x + 22}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="2"{dash}/>')
    svg.append(f'<text x="{x + 28}" y="{y + 4}" font-size="12">{label}</text>')
svg.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="11" fill="#555">'
           f'{NOTE}</text>')
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
