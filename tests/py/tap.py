"""What the Python tests share: check() prints a TAP line "ok - WHAT" or
"not ok - WHAT", remembers a failure and returns cond, run() runs a program on bytes and
returns (exit status, stdout bytes, stderr text), sh() runs a shell pipeline
(its failure's stderr printed as a TAP comment), rel_err() is the largest
difference relative to the reference's largest magnitude, status() is the
test's exit status at the end (sys.exit(tap.status()))."""
import subprocess
import sys

_failed = False


def check(cond, what):
    global _failed
    print(("ok - " if cond else "not ok - ") + what)
    sys.stdout.flush()
    _failed |= not cond
    return cond


def run(args, data=b""):
    p = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def sh(cmd, data=None, quiet=False):
    p = subprocess.run(["sh", "-c", cmd], input=data, capture_output=True)
    if p.returncode != 0 and not quiet:
        print("# " + cmd + ": " + p.stderr.decode(errors="replace").strip()[:500])
        sys.stdout.flush()
    return p


def rel_err(a, b):
    """max |a - b| / max |b| (1 where b is all zero); inf when the shapes differ."""
    import numpy as np
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not b.size:
        return 0.0
    return float(np.abs(a - b).max() / (np.abs(b).max() or 1.0))


def status():
    return 1 if _failed else 0
