"""entropy, prune and score on malformed documents: every case ends with a
non-zero exit (not a signal, not a sanitizer report) and exactly one stderr
line naming the program, or succeeds where the input is merely unusual.
Each case corrupts one tensor of a valid document (shapes, dtypes, values)."""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ.get("AK_TOP", "."), "tests", "py"))
import akstream as ak  # noqa: E402

import tap  # noqa: E402
from tap import check  # noqa: E402


T, L, H = 6, 2, 2
text = b"aa bb. cc dd ee"


def base():
    p = np.full((L, H, T, T), 1.0 / T, np.float32)
    return {
        "text": ak.tensor("text", np.frombuffer(text, np.uint8)),
        "tokens": ak.tensor("tokens", np.arange(T, dtype=np.int32)),
        "offsets": ak.tensor("offsets", np.array([[0, 0], [0, 2], [3, 6], [7, 9], [10, 15],
                                                  [15, 15]], np.int64)),
        "segments": ak.tensor("segments", np.array([-1, 0, 0, 1, 1, -1], np.int32)),
        "special": ak.tensor("special", np.array([1, 0, 0, 0, 0, 1], np.uint8)),
        "attn.entropy": ak.tensor("attn.entropy", np.full((L, H, T), np.log(T), np.float32)),
        "attn.mass": ak.tensor("attn.mass", np.ones((L, H, T), np.float32)),
        "attn.visible": ak.tensor("attn.visible", np.full((L, T), T, np.int32)),
        "attn.probs.1": ak.tensor("attn.probs.1", p[1]),
    }


def bad(name, array):
    d = base()
    if array is None:
        del d[name]
    else:
        d[name] = ak.tensor(name, array)
    return ak.pack_stream([ak.doc("d", list(d.values()))])


cases = {
    "mass NaN": bad("attn.mass", np.full((L, H, T), np.nan, np.float32)),
    "mass negative": bad("attn.mass", -np.ones((L, H, T), np.float32)),
    "mass sums wrong": bad("attn.mass", np.full((L, H, T), 3, np.float32)),
    "entropy too high": bad("attn.entropy", np.full((L, H, T), 9, np.float32)),
    "entropy wrong shape": bad("attn.entropy", np.zeros((L, H, T + 1), np.float32)),
    "entropy i32": bad("attn.entropy", np.zeros((L, H, T), np.int32)),
    "mass rank 2": bad("attn.mass", np.ones((L * H, T), np.float32)),
    "visible wrong": bad("attn.visible", np.full((L, T), 2, np.int32)),
    "visible shape": bad("attn.visible", np.full((L + 1, T), T, np.int32)),
    "segments -2": bad("segments", np.array([-2, 0, 0, 1, 1, -1], np.int32)),
    "segments huge": bad("segments", np.array([-1, 0, 0, 2**31 - 1, 1, -1], np.int32)),
    "segments short": bad("segments", np.zeros(T - 1, np.int32)),
    "offsets reversed": bad("offsets", np.array([[0, 0], [2, 0], [3, 6], [7, 9], [10, 15],
                                                  [15, 15]], np.int64)),
    "offsets past text": bad("offsets", np.array([[0, 0], [0, 2], [3, 6], [7, 9], [10, 99],
                                                   [15, 15]], np.int64)),
    "offsets negative": bad("offsets", np.full((T, 2), -5, np.int64)),
    "offsets rank 1": bad("offsets", np.zeros(T * 2, np.int64)),
    "no tokens": bad("tokens", None),
    "no text": bad("text", None),
    "special wrong length": bad("special", np.zeros(2, np.uint8)),
    "keep inconsistent": bad("keep", np.zeros(3, np.uint8)),
    "dropped without score": bad("dropped", np.zeros((1, 2), np.int64)),
    "probs wrong shape": bad("attn.probs.1", np.zeros((H, T, T + 1), np.float32)),
    "probs NaN": bad("attn.probs.1", np.full((H, T, T), np.nan, np.float32)),
    "score.token short": bad("score.token", np.zeros(2, np.float32)),
    "score.block long": bad("score.block", np.zeros(9, np.float32)),
    "text invalid UTF-8": bad("text", np.frombuffer(b"aa \xff\xfe. cc dd ee", np.uint8)),
}
commands = [
    ["entropy"], ["entropy", "-f", "json", "-b", "layer,head,token,block"],
    ["prune", "--keep", "0.5", "-p", "query"],
    ["prune", "--keep", "0.5", "-u", "block", "-P", "first,last", "-r", "c+", "--protect-marker", "dd",
     "-p", "heavy"],
]
for what, data in cases.items():
    ok = True
    notes = []
    for cmd in commands:
        p = subprocess.run(cmd, input=data, capture_output=True)
        err = p.stderr.decode(errors="replace").splitlines()
        if p.returncode == 0:
            if err:
                ok = False
                notes.append(f"{' '.join(cmd)}: exit 0 with stderr {err[:1]}")
        elif not (0 < p.returncode < 128 and p.returncode not in (98, 99) and len(err) == 1
                  and err[0].startswith(cmd[0] + ": ")):
            ok = False
            notes.append(f"{' '.join(cmd)}: exit {p.returncode}, stderr {err[:3]}")
    check(ok, f"{what}: refused with one line or handled, by every command")
    for n in notes[:3]:
        print("#   " + n)
# the ones entropy must refuse (exit 65), not just survive
for what in ["mass NaN", "mass negative", "mass sums wrong", "entropy too high",
             "entropy wrong shape", "entropy i32", "visible wrong", "segments -2",
             "segments huge"]:
    p = subprocess.run(["entropy"], input=cases[what], capture_output=True)
    check(p.returncode == 65, f"entropy refuses: {what} ({p.stderr.decode().strip()})")
p = subprocess.run(["prune", "--keep", "0.5", "-p", "query"], input=cases["probs wrong shape"],
                   capture_output=True)
check(p.returncode == 65, f"prune -p query refuses probabilities of the wrong shape ({p.stderr.decode().strip()})")
for what in ["offsets past text", "offsets reversed", "text invalid UTF-8"]:
    p = subprocess.run(["prune", "--keep", "0.5", "-u", "sentence", "-r", "c"],
                       input=cases[what], capture_output=True)
    check(p.returncode == 65, f"prune -u sentence -r refuses: {what} ({p.stderr.decode().strip()})")
sys.exit(tap.status())
