"""What prune tells about its choice, checked against numpy on the stream:

  - after a policy other than score, the pruned stream's score.block is the
    policy's block score: the mean over each block's tokens of the token
    score, here the query policy's from attn.mass_last (mass from the last
    W queries / W, averaged over layers and heads, per prune(1)), not
    entropy's;
  - prune -v names the blocks kept whole and in part, as the keep mask and
    the input's segments say;
  - --layers / --agg with a policy that does not read them is a usage
    error before any model is loaded or input read (the rule asked of lib);
  - an empty document says "empty document" under the question policies.
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.environ.get("AK_TOP", ".")
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
import akstream as ak  # noqa: E402
import tap  # noqa: E402
from tap import check  # noqa: E402


def sh(cmd, data=None):
    return subprocess.run(["sh", "-c", cmd], input=data, capture_output=True)


tmp = tempfile.mkdtemp()
src = os.path.join(TOP, "examples", "prompt.txt")
full = os.path.join(tmp, "full.ak")
W = 12
p = sh(f"tokenize --segments paragraph '{src}' | embed | attend --mass-last {W} | entropy > '{full}'")
check(p.returncode == 0, "the scored stream (" + p.stderr.decode().strip() + ")")
d_in = ak.docs_of(open(full, "rb").read())
(doc_id, din), = d_in.items()
meta_in = [r for r in ak.read_records(open(full, "rb").read()) if r.get("type") == "doc"][0]["meta"]

p = sh(f"prune -p query -k 0.5 -v '{full}'")
check(p.returncode == 0, "prune -p query -k 0.5 -v runs")
dout = ak.docs_of(p.stdout)[doc_id]
seg = din["segments"]
ml = din["attn.mass_last"].astype(np.float64)            # [L, H, T]
w = meta_in.get("mass_last_w", W)
q = (ml / w).mean(axis=(0, 1))                            # the query policy's token score
nb = int(seg.max()) + 1
want = np.array([q[seg == b].mean() for b in range(nb)])
got = dout["score.block"]
check(got.shape == (nb,) and np.allclose(got, want, rtol=1e-4, atol=1e-7),
      f"after -p query, score.block is the query score's block mean ({got[:3]} vs {want[:3]})")
check(not np.allclose(din["score.block"], got),
      "... and no longer entropy's score.block")

# -v: the blocks kept whole and in part, from keep and the input's segments
keep = dout["keep"].astype(bool)
whole = [b for b in range(nb) if keep[seg == b].all()]
part = [b for b in range(nb) if keep[seg == b].any() and not keep[seg == b].all()]


def ranges(ids):
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out) or "none"


line = p.stderr.decode().strip()
expect = f"blocks kept {ranges(whole)}" + (f", in part {ranges(part)}" if part else "")
check(line.endswith(expect) and line.startswith(f"prune: {doc_id}: budget "),
      f"prune -v lists the kept blocks ({line!r}; want ...{expect!r})")
p = sh(f"prune -p query -u block -k 0.5 -v '{full}'")
d2 = ak.docs_of(p.stdout)[doc_id] if p.returncode == 0 else None
kb = sorted(set(int(b) for b in d2["segments"] if b >= 0)) if d2 is not None else []
check(p.returncode == 0 and p.stderr.decode().strip().endswith(f"blocks kept {ranges(kb)}"),
      f"-u block: every kept block whole ({p.stderr.decode().strip()})")

# --layers / --agg: one rule, asked before anything is loaded
for args, what in (("-p qppl --layers 0-1", "--layers: policy qppl"),
                   ("-p surprisal --agg max", "--agg: policy surprisal"),
                   ("-p query --agg max", "--agg: policy query"),
                   ("-p similarity --layers 0-0", "--layers: policy similarity")):
    p = sh(f"prune -k 0.5 {args} /nonexistent.ak")
    err = p.stderr.decode().strip().splitlines()
    check(p.returncode == 64 and len(err) == 1 and err[0].startswith("prune: " + what),
          f"prune {args}: usage error before reading ({err})")
p = sh(f"prune -k 0.5 -p mass --layers 0-1 --agg max '{full}'")
check(p.returncode == 0, "prune -p mass --layers --agg still runs")

# an empty document
empty = os.path.join(tmp, "empty.txt")
open(empty, "w").close()
p = sh(f"tokenize '{empty}' | embed | attend --mass-last 4 | prune -k 0.5 -p query")
err = p.stderr.decode().strip()
check(p.returncode == 65 and "empty document" in err and "query span" not in err,
      f"an empty document says so ({err})")
sys.exit(tap.status())
