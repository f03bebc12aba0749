#!/usr/bin/env python3
"""Prefill speed of the GGUF causal models on the CPU: attnkit against
PyTorch and llama.cpp, in one run, same threads, same tokens.

For SmolLM2-135M-Instruct (Q4_1), Gemma 3 270M (Q4_K_M) and the two
Qwen2.5-Coder instruct models (0.5B, 1.5B Q4_K_M; a missing file is noted), at 512 and 4096
tokens of a real text (the GPL-3 licence, tokenized by attnkit's tokenize
and truncated):

- attnkit `embed | attend` (attention statistics, no extra outputs), and the
  same with `--logits last`; whole processes (start, model mapping, stream
  I/O included); peak RSS of attend by /usr/bin/time;
- transformers on the same GGUF, dequantized to float32
  (`from_pretrained(dir, gguf_file=...)`): eager attention with
  `output_attentions=True` (the probabilities, what attend's statistics
  are computed from) and SDPA without; the forward call only;
- llama.cpp through llama-cpp-python on the same GGUF (weights quantized):
  `eval` of the ids (prefill, n_batch 512, logits of the last token only);
  the eval call only.

PyTorch and llama.cpp each live in one persistent process whose runs
interleave with ours, so all see the same machine load.  Their peak RSS is
per run (VmHWM, reset through /proc/self/clear_refs before each).  Thread
count N everywhere: ATTNKIT_THREADS=N, torch.set_num_threads(N),
n_threads=n_threads_batch=N.

usage: python3 bench/model_gguf.py [--threads N] [--reps N] [--reps-long N]
       [--tokens 512,4096] [--models smollm2,gemma3,qwen0.5b,qwen1.5b] [--no-torch] [--no-llama]
Needs bin/tokenize, bin/embed, bin/attend (make), the models (make model),
and for the comparisons llama_cpp (bench/deps.sh installs it into
.cache/bench-py) and torch, transformers, gguf (BENCH_TORCH=1 bench/deps.sh);
a missing one is skipped with a note.
"""
import os
import sys

# bench/ holds scripts named like standard modules (tokenize.py): keep it
# off the import path.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the standard library
from machine import machine, load  # noqa: E402
import akstream as s  # noqa: E402

BIN = os.environ.get("AK_BIN") or os.path.join(TOP, "bin")
MODELS_DIR = os.environ.get("ATTNKIT_MODELS_DIR") or os.path.join(TOP, ".cache", "models")
MODELS = {
    # name: (title, file, heads, layers)
    "smollm2": ("SmolLM2-135M-Instruct Q4_1", "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 9, 30),
    "gemma3": ("Gemma 3 270M Q4_K_M", "gemma3/gemma-3-270m-q4_k_m.gguf", 4, 18),
    "qwen0.5b": ("Qwen2.5-Coder 0.5B Instruct", "qwen0.5b/qwen2.5-coder-0.5b-instruct.gguf", 14, 24),
    "qwen1.5b": ("Qwen2.5-Coder 1.5B Instruct Q4_K_M", "qwen1.5b/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                 12, 28),
}
TEXT = "/usr/share/common-licenses/GPL-3"   # 35 KB of real English, on every Debian


def mem_available_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def text_ids(path, text):
    """attnkit's tokens of the text for the model (BOS included where the
    model adds one)."""
    r = subprocess.run([f"{BIN}/tokenize", "-m", path, text], capture_output=True, check=True)
    (doc,) = s.docs_of(r.stdout).values()
    return [int(t) for t in doc["tokens"]]


def run_pipeline(path, stream, threads, extra=()):
    """Wall time of embed | attend, the CPU time of both (user + system) and
    attend's peak RSS (KiB), measured by /usr/bin/time (ru_maxrss of a
    child forked from this Python process would carry this process's
    high-water mark across exec)."""
    env = dict(os.environ, ATTNKIT_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), ATTNKIT_DEVICE="cpu")
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "in.ak")
        with open(inp, "wb") as f:
            f.write(stream)
        te, ta = os.path.join(d, "e"), os.path.join(d, "a")
        cmd = (f"/usr/bin/time -f '%M %U %S' -o {te} {BIN}/embed -m '{path}' <{inp} | "
               f"/usr/bin/time -f '%M %U %S' -o {ta} {BIN}/attend -m '{path}' {' '.join(extra)} "
               ">/dev/null")
        t0 = time.perf_counter()
        r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env)
        wall = time.perf_counter() - t0
        if r.returncode:
            raise SystemExit(f"pipeline failed (exit {r.returncode})")
        e, a = (open(x).read().split()[-3:] for x in (te, ta))
    return {"time": wall, "cpu": sum(float(v) for v in e[1:] + a[1:]), "rss": int(a[0]),
            "embed_rss": int(e[0])}


# Both children read one JSON request a line and answer one JSON line.
PEAK = r"""
def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # resets VmHWM to the current RSS
    except OSError:
        pass

def peak_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

TORCH_CHILD = PEAK + r"""
import json, os, sys, time
import torch, transformers
torch.set_num_threads(int(sys.argv[3]))
base = peak_kib()
model = transformers.AutoModelForCausalLM.from_pretrained(
    sys.argv[1], gguf_file=sys.argv[2], dtype=torch.float32, attn_implementation="eager").eval()
print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                  "import_rss": base}), flush=True)
with torch.inference_mode():
    for line in sys.stdin:
        req = json.loads(line)
        model.set_attn_implementation(req["impl"])
        ids = torch.tensor([req["ids"]])
        reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        out = model(input_ids=ids, output_attentions=(req["impl"] == "eager"), use_cache=False,
                    logits_to_keep=1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rss = peak_kib()
        del out
        print(json.dumps({"time": dt, "cpu": dc, "rss": rss}), flush=True)
"""

LLAMA_CHILD = PEAK + r"""
import json, sys, time
import llama_cpp

path, threads = sys.argv[1], int(sys.argv[2])
print(json.dumps({"llama_cpp": llama_cpp.__version__, "import_rss": peak_kib()}), flush=True)
llm, n_ctx = None, 0
for line in sys.stdin:
    req = json.loads(line)
    ids = req["ids"]
    if len(ids) != n_ctx:   # a context sized for this prompt, as a user would make it
        llm = None
        llm = llama_cpp.Llama(model_path=path, n_ctx=len(ids), n_threads=threads,
                              n_threads_batch=threads, n_batch=512, logits_all=False,
                              verbose=False)
        n_ctx = len(ids)
    llm.reset()   # eval then drops the whole KV cache (kv_cache_seq_rm from 0)
    reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    llm.eval(ids)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"time": dt, "cpu": dc, "rss": peak_kib()}), flush=True)
"""


class Child:
    """A persistent reference process: started once per model, then timed
    one request at a time so that its runs interleave with ours."""

    def __init__(self, code, args, threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads), TRANSFORMERS_VERBOSITY="error",
                   HF_HUB_DISABLE_PROGRESS_BARS="1", TQDM_DISABLE="1")
        self.p = subprocess.Popen([sys.executable, "-c", code] + [str(a) for a in args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited ({self.p.wait()})")
        self.info = json.loads(line)

    def run(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited ({self.p.wait()})")
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def start(what, code, args, threads, notes):
    try:
        return Child(code, args, threads)
    except Exception as e:   # package missing or model not loadable: our figures alone
        notes.append(f"{what} skipped: {e}")
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3, help="interleaved runs at the shorter lengths")
    ap.add_argument("--reps-long", type=int, default=1, help="interleaved runs at 4096 and above")
    ap.add_argument("--tokens", default="512,4096")
    ap.add_argument("--models", default="smollm2,gemma3,qwen0.5b,qwen1.5b")
    ap.add_argument("--all-rows", action="store_true",
                    help="the statistics-only attnkit row at 4096 too (the --logits last row "
                         "computes the same and the head's last row)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--eager-max-gib", type=float, default=None,
                    help="skip eager attention when its probabilities would need more "
                         "(default: half the available memory)")
    args = ap.parse_args()
    lengths = sorted(int(x) for x in args.tokens.split(",") if x)
    N = args.threads
    # PyTorch is installed only when asked (BENCH_TORCH=1 bench/deps.sh):
    # without it, one comment line instead of a child's traceback per model
    torch_note = None
    if not args.no_torch and importlib.util.find_spec("torch") is None:
        args.no_torch = True
        torch_note = "PyTorch and transformers not installed (BENCH_TORCH=1 make bench installs them): skipped"
    print(f"# machine: {machine()}; threads: {N}; load average at start: {load()}")
    print(f"# text: {TEXT}, tokenized by attnkit and truncated; best of the interleaved runs; "
          f"attnkit's times are whole processes, the others' the forward / eval call only")
    print("# cpu_s: CPU time (user + system) of the same runs, least of them: on a machine "
          "shared with other jobs it is steadier than the wall time")
    print("# ratio columns: attnkit time / reference time (below 1: attnkit faster), same length; "
          "attnkit's statistics row against eager and SDPA, its --logits last row against llama.cpp "
          "(which always computes the last token's logits; PyTorch runs with logits_to_keep=1); "
          "at 4096 tokens the --logits last row alone, against all")
    print("# one table: each model's versions and notes in the comment lines before its rows")
    if torch_note:
        print(f"# {torch_note}")
    print(f"{'model':<9} {'tokens':>6} {'implementation':<44} {'time_s':>8} {'tok/s':>8} {'cpu_s':>8} "
          f"{'peak_MiB':>9} {'/eager':>7} {'/SDPA':>7} {'/llama':>7} {'cpu/eager':>9} "
          f"{'cpu/SDPA':>9} {'cpu/llama':>9}")
    for name in args.models.split(","):
        title, rel, H, L = MODELS[name]
        path = os.path.join(MODELS_DIR, rel)
        if not os.path.exists(path):
            print(f"# {name}: {title}: {path} missing (make model)")
            continue
        ids_all = text_ids(path, TEXT)
        if len(ids_all) < lengths[-1]:
            raise SystemExit(f"{TEXT} gives only {len(ids_all)} tokens for {name}")
        notes = []
        torch_c = None if args.no_torch else start(
            "PyTorch", TORCH_CHILD, [os.path.dirname(path), os.path.basename(path), N], N, notes)
        llama_c = None if args.no_llama else start("llama.cpp", LLAMA_CHILD, [path, N], N, notes)
        vers = []
        if torch_c:
            vers.append(f"PyTorch {torch_c.info['torch']}, transformers {torch_c.info['transformers']}")
        if llama_c:
            vers.append(f"llama-cpp-python {llama_c.info['llama_cpp']}")
        print(f"# {name}: {title} ({os.path.getsize(path) / 2**20:.0f} MiB file); {'; '.join(vers)}")
        for n in notes:
            print(f"# {name}: {n}")
        for T in lengths:
            ids = ids_all[:T]
            stream = s.pack_stream([s.doc("gpl3", [s.tensor("tokens", np.array(ids, np.int32))])])
            impls = {}
            if T < 4096 or args.all_rows:   # at 4096 the --logits last row alone (it does both)
                impls["attnkit"] = lambda: run_pipeline(path, stream, N)
            impls["attnkit --logits last"] = lambda: run_pipeline(path, stream, N, ["--logits", "last"])
            if torch_c:
                need = L * H * T * T * 4 / 2**30
                limit = args.eager_max_gib if args.eager_max_gib is not None else mem_available_gib() / 2
                if need <= limit:
                    impls["eager"] = lambda: torch_c.run(impl="eager", ids=ids)
                else:
                    print(f"# {name}, {T} tokens: PyTorch eager skipped: its probabilities ({L} layers x {H} "
                          f"heads x {T}^2 f32) would need {need:.1f} GiB, over {limit:.1f} GiB")
                impls["SDPA"] = lambda: torch_c.run(impl="sdpa", ids=ids)
            if llama_c:
                impls["llama.cpp"] = lambda: llama_c.run(ids=ids)
            reps = args.reps if T < 4096 else args.reps_long
            if T == lengths[0]:   # warm-up: page cache, lazy initialisation, allocator
                for k in impls:
                    if k != "eager":
                        impls[k]()
            runs = {k: [] for k in impls}
            loads = [load()]
            for _ in range(reps):   # interleaved: the same machine load for all
                for k, f in impls.items():
                    runs[k].append(f())
            loads.append(load())
            best = {k: min(r["time"] for r in v) for k, v in runs.items()}
            cpu = {k: min(r["cpu"] for r in v) for k, v in runs.items()}
            peak = {k: max(r["rss"] for r in v) for k, v in runs.items()}
            labels = {"attnkit": "attnkit embed|attend (statistics)",
                      "attnkit --logits last": "attnkit embed|attend --logits last",
                      "eager": "PyTorch eager, output_attentions=True",
                      "SDPA": "PyTorch SDPA, no probabilities",
                      "llama.cpp": "llama.cpp eval (last logits)"}
            for k in impls:
                ratio, cratio = ["", "", ""], ["", "", ""]
                for i, ref in enumerate(("eager", "SDPA", "llama.cpp")):
                    # the statistics row against PyTorch, the logits row against
                    # llama.cpp (and against all when it is alone)
                    mine = "attnkit" if ref != "llama.cpp" and "attnkit" in best else "attnkit --logits last"
                    if k == mine and ref in best:
                        ratio[i] = f"{best[k] / best[ref]:.2f}"
                        cratio[i] = f"{cpu[k] / cpu[ref]:.2f}"
                print(f"{name:<9} {T:6d} {labels[k]:<44} {best[k]:8.2f} {T / best[k]:8.0f} {cpu[k]:8.2f} "
                      f"{peak[k] / 1024:9.0f} {ratio[0]:>7} {ratio[1]:>7} {ratio[2]:>7} "
                      f"{cratio[0]:>9} {cratio[1]:>9} {cratio[2]:>9}")
            print(f"# {name}, {T} tokens: best of {reps}; load average {loads[0]} before, {loads[1]} after")
        for c in (torch_c, llama_c):
            if c:
                c.close()
    print(f"# load average at end: {load()}")


if __name__ == "__main__":
    main()
