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

# mutable state at file scope: only what lib/README.md lists
m = re.search(r"^## Process-wide state\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
check(m is not None, "lib/README.md lists the process-wide state")
listed_state = set()
for line in (m.group(1) if m else "").splitlines():
    f = re.match(r"^- `([a-z]+/[a-z_]+\.(?:c|cu))` (.*)$", line)
    if f:
        listed_state |= {(f.group(1), n) for n in re.findall(r"`([a-z_][a-z0-9_]*)`", f.group(2))}
# what the compiler put in writable sections of the library's objects (the
# build the tests run on): file-scope and function-static variables alike;
# the CUDA objects hold nvcc's own stubs and are left out, cli is not the
# library
import glob  # noqa: E402
import subprocess  # noqa: E402
objs = sorted(glob.glob(os.path.join(os.environ.get("AK_BUILD", os.path.join(TOP, "build", "asan")),
                                     "lib", "*", "*.o")))
objs = [o for o in objs if os.path.basename(os.path.dirname(o)) != "cli"]
check(len(objs) > 30, f"the library's objects are there to read ({len(objs)})")
WRITABLE = (".data", ".bss", ".data.rel", ".data.rel.local")
for o in objs:
    out = subprocess.run(["objdump", "-t", o], capture_output=True, text=True).stdout
    rel = os.path.relpath(o, os.path.dirname(os.path.dirname(o)))
    src = rel[:-2] + ".c"
    for line in out.splitlines():
        f = line.split()
        if len(f) < 5 or f[-3] not in WRITABLE or f[-1].startswith((".", "_")):
            continue
        name = f[-1].split(".")[0]
        check((src, name) in listed_state, f"lib/{src}: writable '{name}' is listed in lib/README.md")

sys.exit(tap.status())
