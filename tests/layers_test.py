"""The library's layers (lib/README.md): each folder of lib/ includes only
headers of its own layer or of the layers below it; the public headers in
include/attnkit/ include only each other; no two .c files of lib/ include each
other's header (no cycle); and the programs in cmd/ include the public API,
lib/cli/cli.h and only the internal headers lib/README.md lists, with the
reason, under "What the programs use from inside"."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py"))
import tap  # noqa: E402
from tap import check  # noqa: E402

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# bottom to top; cuda is the model layer's GPU side, cli is above everything
ORDER = ["core", "stream", "format", "model", "cuda", "text", "analysis", "cli"]
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(path):
    with open(path, encoding="utf-8") as f:
        return INC.findall(f.read())


def lib_files():
    for d in ORDER:
        dd = os.path.join(TOP, "lib", d)
        if os.path.isdir(dd):
            for n in sorted(os.listdir(dd)):
                if n.endswith((".c", ".h", ".cu")):
                    yield d, os.path.join(dd, n)


# a public header's layer: the folder of the .c of the same name (ak.h: core)
PUBLIC = sorted(os.listdir(os.path.join(TOP, "include", "attnkit")))
sources = {os.path.splitext(os.path.basename(p))[0]: d for d, p in lib_files() if p.endswith(".c")}
public_layer = {h: sources.get(h[:-2]) for h in PUBLIC}
public_layer["ak.h"] = "core"
public_layer["mask.h"] = "model"       # the mask has no .c: the attention's
for h, d in sorted(public_layer.items()):
    check(d in ORDER, f"include/attnkit/{h} belongs to a layer ({d})")


def layer_of(inc, here):
    if inc.startswith("attnkit/"):
        return public_layer.get(inc[len("attnkit/"):])
    if "/" in inc:
        return inc.split("/")[0] if inc.split("/")[0] in ORDER else None
    return here       # a header beside the file


for d, p in lib_files():
    rel = os.path.relpath(p, TOP)
    for inc in includes(p):
        if d == "cuda" and inc == "ak_cuda.h":
            continue
        t = layer_of(inc, d)
        exists = os.path.exists(os.path.join(TOP, "include", inc)) or \
            os.path.exists(os.path.join(TOP, "lib", inc)) or \
            os.path.exists(os.path.join(os.path.dirname(p), inc))
        check(exists and t is not None, f"{rel}: {inc} is a header of the tree")
        if t is None:
            continue
        below = ORDER.index(t) <= ORDER.index(d) or (d == "model" and t == "cuda")
        check(below, f"{rel} ({d}) may include {inc} ({t})")

for h in PUBLIC:
    bad = [i for i in includes(os.path.join(TOP, "include", "attnkit", h)) if i not in PUBLIC]
    check(not bad, f"include/attnkit/{h} includes only public headers {bad or ''}")

# no cycle: A.c includes B's header and B.c includes A's
uses = {}
for d, p in lib_files():
    if p.endswith(".c"):
        b = os.path.splitext(os.path.basename(p))[0]
        uses[b] = {os.path.splitext(os.path.basename(i))[0] for i in includes(p)} - {b}
cycles = sorted(f"{a}.c <-> {b}.c" for a in uses for b in uses[a]
                if b in uses and a in uses[b] and a < b)
check(not cycles, f"no two lib/ files include each other's header {cycles or ''}")

# the programs: public API, cli.h, their own report.h, and the listed ones
with open(os.path.join(TOP, "lib", "README.md"), encoding="utf-8") as f:
    readme = f.read()
m = re.search(r"^## What the programs use from inside\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
check(m is not None, "lib/README.md lists what the programs use from inside")
listed = dict(re.findall(r"^- `([a-z]+/[a-z_]+\.h)`: (\S.*)$", m.group(1), re.M)) if m else {}
check(len(listed) > 0 and all(len(r) > 20 for r in listed.values()), "each listed header says why")
used = set()
for root in ("cmd", os.path.join("cmd", "report")):
    for n in sorted(os.listdir(os.path.join(TOP, root))):
        if not n.endswith((".c", ".h")):
            continue
        for inc in includes(os.path.join(TOP, root, n)):
            if inc.startswith("attnkit/") or inc in ("cli/cli.h", "report.h", "report/report.h"):
                continue
            used.add(inc)
            check(inc in listed, f"{root}/{n}: {inc} is public or listed in lib/README.md")
stale = sorted(set(listed) - used)
check(not stale, f"every header lib/README.md lists is still used by a program {stale or ''}")

sys.exit(tap.status())
