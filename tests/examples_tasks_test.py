"""examples/tasks.py's issue-19 tasks (pqa, needle): counts, positions,
sizes, the calibration/test split, the answers present where they must be
and absent where they must not, the paraphrase rule (no run of three
content words shared with the gold paragraph, recomputed here with its own
stop list and a plain n-gram check), and the same items from the same seed.
Needs Debian's /usr/share/common-licenses and the copyright files of a
minimal system; skipped where they are missing.

First, examples/plot.py on both committed results files (the first
experiment's and issue 19's): an SVG that parses, equal to the committed
plot, one series per policy and panel, and for issue 19 one error bar per
row with an interval, around its point.  Then analyze.py on issue 19's
committed rows: the committed results and summary, byte for byte."""
import csv
import math
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

TOP = os.environ["AK_TOP"]
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
sys.path.insert(0, os.path.join(TOP, "examples"))
import tap  # noqa: E402
from tap import check  # noqa: E402

STOP = set("a an the and or of to in on at by for from with as is are was be it its this that their "
           "they you your who what when which how not any all one can may must after before do does "
           "did has have had so than there".split())


def ngrams(text, n):
    w = [x for x in re.findall(r"[a-z0-9]+", text.lower()) if x not in STOP]
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def make(out, *extra):
    r = subprocess.run([sys.executable, os.path.join(TOP, "examples", "tasks.py"), out, *extra],
                       capture_output=True, text=True)
    return r.returncode, r.stderr.strip()


SVG = "{http://www.w3.org/2000/svg}"
PLOT_PANELS = {"qa": ("acc_fc",), "kv": ("acc_fc",), "cont": ("dll",),
               "pqa": ("acc_fc", "dll"), "needle": ("acc_fc", "dll")}


def finite(*xs):
    try:
        return all(math.isfinite(float(x)) for x in xs)
    except ValueError:
        return False


def plot(results, svg):
    """runs plot.py; the parsed SVG's root, or None with the reason as a TAP comment"""
    r = subprocess.run([sys.executable, os.path.join(TOP, "examples", "plot.py"), results, svg],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("# plot.py: " + r.stderr.strip())
        return None
    try:
        return ET.parse(svg).getroot()
    except ET.ParseError as e:
        print(f"# {svg}: {e}")
        return None


def expected_series(rows):
    """(model, task, measure, policy) drawn: position all, a finite value, not full or none"""
    return {(r["model"], r["task"], m, r["policy"]) for r in rows if r["position"] == "all"
            and r["policy"] not in ("full", "none") for m in PLOT_PANELS.get(r["task"], ()) if finite(r[m])}


def marker_at(el):
    """the centre of a point in the error-bar panels (circle, square or diamond)"""
    if el.tag == SVG + "circle":
        return float(el.get("cx")), float(el.get("cy"))
    if el.tag == SVG + "rect":
        return float(el.get("x")) + 3, float(el.get("y")) + 3
    x, y = map(float, re.match(r"M([-\d.]+),([-\d.]+)", el.get("d")).groups())
    return x, y + 4


def bars_around_points(root):
    """every error bar's vertical stroke passes through a point of its series at its x"""
    for g in root.iter(SVG + "g"):
        points = [marker_at(e) for e in g if e.tag in (SVG + "circle", SVG + "rect")
                  or (e.tag == SVG + "path" and e.get("class") != "ci")]
        for ci in g.findall(SVG + "path[@class='ci']"):
            x, y1, y2 = map(float, re.search(r"M([-\d.]+),([-\d.]+)V([-\d.]+)", ci.get("d")).groups())
            if not any(abs(px - x) < 0.06 and min(y1, y2) - 0.06 <= py <= max(y1, y2) + 0.06 for px, py in points):
                return False
    return True


tmp = tempfile.mkdtemp()
for results, committed, target in (("results.tsv", "plot.svg", "publish"),
                                   ("issue19/results.tsv", "issue19/plot.svg", "publish19")):
    path = os.path.join(TOP, "examples", results)
    rows = list(csv.DictReader(open(path), delimiter="\t", quoting=csv.QUOTE_NONE))
    svg = os.path.join(tmp, committed.replace("/", "-"))
    root = plot(path, svg)
    if not check(root is not None and root.tag == SVG + "svg", f"plot.py {results}: an SVG that parses"):
        continue
    check(open(svg, "rb").read() == open(os.path.join(TOP, "examples", committed), "rb").read(),
          f"examples/{committed} is what plot.py makes of examples/{results} (make {target})")
    want = expected_series(rows)
    policies = {k[3] for k in want}
    texts = {t.text for t in root.iter(SVG + "text")}
    check(policies <= texts,
          f"plot.py {results}: the legend names all {len(policies)} policies {sorted(policies - texts)}")
    bars = {r["task"] for r in rows} & {"pqa", "needle"}
    if bars:
        groups = [g.findtext(SVG + "title") for g in root.iter(SVG + "g") if g.get("class") == "series"]
        check(len(groups) == len(want) and set(groups) == policies,
              f"plot.py {results}: one series per policy, model and panel ({len(groups)}, want {len(want)})")
        n_ci = sum(1 for r in rows if r["position"] == "all" and r["policy"] not in ("full", "none")
                   for m in PLOT_PANELS.get(r["task"], ()) if finite(r[m], r[m + "_lo"], r[m + "_hi"]))
        got = len(root.findall(f".//{SVG}path[@class='ci']"))
        check(n_ci > 0 and got == n_ci,
              f"plot.py {results}: one error bar per row and measure with an interval ({got}, want {n_ci})")
        check(bars_around_points(root), f"plot.py {results}: every error bar passes through its point")
        # without intervals the same series are drawn and no bar: the count above comes from the file
        blank = os.path.join(tmp, "blank.tsv")
        with open(path) as f, open(blank, "w") as g:
            head = f.readline()
            cols = head.rstrip("\n").split("\t")
            g.write(head)
            for line in f:
                g.write("\t".join("nan" if c.endswith(("_lo", "_hi")) else v
                                   for c, v in zip(cols, line.rstrip("\n").split("\t"))) + "\n")
        root2 = plot(blank, os.path.join(tmp, "blank.svg"))
        check(root2 is not None and not root2.findall(f".//{SVG}path[@class='ci']")
              and len([g for g in root2.iter(SVG + "g") if g.get("class") == "series"]) == len(want),
              f"plot.py {results} with its intervals blanked: the same series, no error bars")
    else:
        lines = list(root.iter(SVG + "polyline"))
        check(len(lines) == len(want),
              f"plot.py {results}: one line per policy, model and panel ({len(lines)}, want {len(want)})")
        check(not root.findall(f".//{SVG}path[@class='ci']"),
              f"plot.py {results}: the first experiment's lines, no error bars")

# analyze.py on issue 19's committed rows (and the calibration run's) gives
# the committed results.tsv and summary.md byte for byte: the README's tables
# come from the committed run, and a publish that left one file behind fails
for sub in ("", "calibration-qwen0.5b"):
    d = os.path.join(TOP, "examples", "issue19", sub)
    with tempfile.TemporaryDirectory() as out:
        os.makedirs(os.path.join(out, "all"))
        for src, dst in (("items.tsv", "items.tsv"), (os.path.join(sub, "rows.tsv"), "all/rows.tsv")):
            with open(os.path.join(TOP, "examples", "issue19", src), "rb") as f, \
                    open(os.path.join(out, dst), "wb") as g:
                g.write(f.read())
        r = subprocess.run([sys.executable, os.path.join(TOP, "examples", "analyze.py"), out,
                            os.path.join(out, "results.tsv"), os.path.join(out, "summary.md")],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"analyze.py on issue19/{sub + '/' if sub else ''}rows.tsv runs ({r.stderr.strip()[-200:]})")
        for name in ("results.tsv", "summary.md"):
            got = open(os.path.join(out, name), "rb").read() if r.returncode == 0 else b""
            check(got == open(os.path.join(d, name), "rb").read(),
                  f"analyze.py on issue19/{sub + '/' if sub else ''}rows.tsv gives the committed {name}")

# evaluate.py: rows.tsv gathers what earlier chunks ran with other --keeps and
# --policies, not only this run's configurations
import evaluate  # noqa: E402
with tempfile.TemporaryDirectory() as md:
    for f in ("pqa.test.1000.query_block.0.3.ak", "pqa.test.1000.query_block_top3.0.1.ak",
              "pqa.test.1000.query_block.0.5.ak.tmp", "pqa.test.1000.similarity_block.0.3.ak",
              "pqa.calibration.1000.query_block.0.3.ak", "needle.test.1000.random_block.0.3.ak"):
        open(os.path.join(md, f), "w").close()
    prep = {"pqa": (None, None, None, 1, ".test.1000")}
    have = [("pqa", "similarity/block", "0.3", os.path.join(md, "pqa.test.1000.similarity_block.0.3.ak"), None)]
    got = sorted((t, p, k, os.path.basename(o)) for t, p, k, o, _ in evaluate.earlier_outputs(md, prep, have))
    check(got == [("pqa", "query/block", "0.3", "pqa.test.1000.query_block.0.3.ak"),
                  ("pqa", "query/block:top3", "0.1", "pqa.test.1000.query_block_top3.0.1.ak")],
          f"evaluate.py: rows.tsv takes the same split's outputs of other chunks, no temporary, "
          f"other split or task, nor one already listed ({got})")

need = ["/usr/share/common-licenses/GPL-3"] + [f"/usr/share/doc/{p}/copyright" for p in
                                               ("zlib1g", "gzip", "libbz2-1.0", "tar", "mawk")]
if not all(os.path.exists(p) for p in need):
    print("ok - # SKIP not a Debian system with base-files and the minimal packages' copyright files")
    sys.exit(tap.status())

import pqa  # noqa: E402

a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
rc, err = make(a)
check(rc == 0, f"tasks.py writes the items {err}")
rc2, err2 = make(b)
same = rc2 == 0 and all(open(os.path.join(a, t, f), "rb").read() == open(os.path.join(b, t, f), "rb").read()
                        for t in ("pqa", "needle") for f in os.listdir(os.path.join(a, t)))
check(same, "the same seed gives the same pqa and needle items")
rows = list(csv.DictReader(open(os.path.join(a, "items.tsv")), delimiter="\t"))
pq = [r for r in rows if r["task"] == "pqa"]
nd = [r for r in rows if r["task"] == "needle"]
check(len(pq) == 3 * len(pqa.QUESTIONS) >= 60, f"pqa: {len(pq)} items, three per question (at least 60)")
check(len(nd) == 48, f"needle: {len(nd)} items (4 kinds x 3 depths x 4)")
check({(r["position"], r["size"]) for r in pq} == {(p, s) for p in ("start", "middle", "end")
                                                  for s in ("1000", "2000", "4000")},
      "pqa: every gold position meets every size")

texts = {r["name"]: open(os.path.join(a, r["task"], r["name"] + ".txt"), encoding="utf-8").read() for r in pq + nd}
check(all(texts[r["name"]].rsplit("\n\n", 1)[1].startswith("Question: ") for r in pq + nd),
      "every item ends with its question, a paragraph of its own")

bad_run, bad_ans, bad_pos = [], [], []
for i, q in enumerate(pqa.QUESTIONS):
    items = pq[3 * i:3 * i + 3]
    for r in items:
        docs = re.findall(r"^Document \[(\d+)\] \([^)]*\): (.*)$", texts[r["name"]], re.M)
        holding = [int(n) for n, d in docs if any(x.lower() in d.lower() for x in r["answers"].split("|"))]
        k = len(docs)
        want = {"start": 1, "middle": k // 2 + 1, "end": k}[r["position"]]
        if holding != [want]:
            bad_pos.append((r["name"], holding, want))
        gold = docs[want - 1][1]
        if ngrams(q["question"], 3) & ngrams(gold, 3):
            bad_run.append(r["name"])
        if r["answer"] not in gold:
            bad_ans.append(r["name"])
check(not bad_pos, f"pqa: exactly one document holds an answer, at the item's position {bad_pos[:3]}")
check(not bad_run, f"pqa: no question shares three consecutive content words with its gold {bad_run[:3]}")
check(not bad_ans, f"pqa: the gold answer is in the gold document {bad_ans[:3]}")
splits = {}
for i in range(len(pqa.QUESTIONS)):
    splits[i] = {r["split"] for r in pq[3 * i:3 * i + 3]}
check(all(len(v) == 1 for v in splits.values()), "pqa: a question's three items are all calibration or all test")
ntest = sum(r["split"] == "test" for r in pq)
check(30 <= ntest < len(pq), f"pqa: {ntest} test items, the rest calibration")
ntest = sum(r["split"] == "test" for r in nd)
check(30 <= ntest < len(nd), f"needle: {ntest} test items, the rest calibration")

bad = []
for r in nd:
    t = texts[r["name"]]
    if r["kind"] == "vartrack":
        names = r["answer"].split(", ")
        v = re.search(r"assigned the value (\d+)", t).group(1)
        chain = [f"VAR {names[0]} = {v}.", f"VAR {names[1]} = VAR {names[0]}.", f"VAR {names[2]} = VAR {names[1]}."]
        if not all(c in t for c in chain):
            bad.append(r["name"])
    else:
        vals = r["answers"].split("|")[1:] if r["kind"] == "multivalue" else [r["answer"]]
        key = re.search(r"magic numbers? for (\w+)", t.rsplit("Question: ", 1)[1]).group(1)
        got = re.findall(rf"special magic numbers for {key} is: (\d+)\.", t)
        if sorted(got) != sorted(vals):
            bad.append(r["name"])
check(not bad, f"needle: the asked key's values (or the variable chain) are in the haystack, and only those {bad[:3]}")
depth_ok = all(
    (lambda t, pos: (lambda i, n: {"start": i < n * 0.15, "middle": 0.3 < i / n < 0.7, "end": i > n * 0.7}[pos])(
        t.find("magic numbers for") if "magic" in t.split("Question:")[0] else t.find("VAR "), len(t)))(
        texts[r["name"]], r["position"]) for r in nd)
check(depth_ok, "needle: the first needle sits at the item's depth (start, middle or end of the haystack)")

# the paraphrase rule is enforced: a question quoting its gold is refused
bad_q = dict(pqa.QUESTIONS[0], question="How long to cure the violation prior to the notice?")
probe = os.path.join(tmp, "probe")
os.makedirs(probe)
with open(os.path.join(probe, "pqa.py"), "w") as f:
    f.write("from importlib.machinery import SourceFileLoader as _L\n"
            f"_m = _L('pqa0', {os.path.join(TOP, 'examples', 'pqa.py')!r}).load_module()\n"
            f"QUESTIONS = [{bad_q!r}] + _m.QUESTIONS[1:]\n")
r = subprocess.run([sys.executable, "-c",
                    f"import sys; sys.path.insert(0, {probe!r}); sys.path.insert(1, {os.path.join(TOP, 'examples')!r}); "
                    f"sys.argv = ['tasks.py', {os.path.join(tmp, 'c')!r}]; import tasks; tasks.main()"],
                   capture_output=True, text=True)
check(r.returncode != 0 and "shares a run of" in r.stderr,
      f"a question sharing a run of content words with its gold is refused: {r.stderr.strip()}")
sys.exit(tap.status())
