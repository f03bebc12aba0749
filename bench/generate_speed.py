#!/usr/bin/env python3
"""Generation and prefill speed of the GGUF causal models on the CPU, for
one or more builds of attnkit side by side (before / after a change) and
llama.cpp when llama_cpp is importable, runs interleaved so that all see the
same machine load.

- generation: `kvcache -m M --generate 64 --stop none` after a chat prompt of about 100
  tokens (bench/prompt_chat.txt through `tokenize --chat`), greedy; its
  tokens/s is 63 / (t(--generate 64) - t(--generate 1)): whole processes,
  model load and prefill taken out by the difference.  llama.cpp: eval of the
  prompt, then 64 greedy tokens one eval at a time; the 63 evals after the
  first token are timed.
- prefill: `embed | attend` (statistics: entropy and received mass) over the
  first 512 tokens of the GPL-3 text, whole processes; llama.cpp: eval of the
  same ids (logits of the last token), the eval call only.

- error (--fast and llama.cpp, which quantize the activations to 8 bits,
  against the first build, exact): max and mean |logit difference| over the
  vocabulary for the token after the first 8 tokens of the text (every
  product of such a short prompt takes the 8-bit path: `embed | attend
  --logits last`; llama.cpp: eval of the 8 ids), and how many of the 64
  greedy tokens equal the first build's before the first that differs.

usage: python3 bench/generate_speed.py [--bins NAME=DIR[+FLAGS],...] [--threads 1,2]
       [--reps 3] [--models smollm2,gemma3,qwen0.5b,qwen1.5b] [--new 64]
       [--prefill 512] [--no-llama] [--no-warmup]
  (DIR holds tokenize, embed, attend, kvcache; FLAGS, e.g. +--fast, are
  passed to kvcache and attend; default: attnkit=bin)
Best of the interleaved runs.  llama.cpp: bench/deps.sh installs it into
.cache/bench-py; run this script with that environment's python, or with
PYTHONPATH pointing at a directory holding llama_cpp.
"""
import os
import sys

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the standard library
from machine import machine, load  # noqa: E402
sys.path.append(os.path.join(TOP, ".cache", "py"))
import numpy as np  # noqa: E402
import akstream as s  # noqa: E402

MODELS_DIR = os.environ.get("ATTNKIT_MODELS_DIR") or os.path.join(TOP, ".cache", "models")
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct Q4_1", "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("Gemma 3 270M Q4_K_M", "gemma3/gemma-3-270m-q4_k_m.gguf"),
    "qwen0.5b": ("Qwen2.5-Coder 0.5B Instruct", "qwen0.5b/qwen2.5-coder-0.5b-instruct.gguf"),
    "qwen1.5b": ("Qwen2.5-Coder 1.5B Instruct Q4_K_M", "qwen1.5b/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
}
PROMPT = os.path.join(TOP, "bench", "prompt_chat.txt")
TEXT = "/usr/share/common-licenses/GPL-3"

LLAMA_CHILD = r"""
import json, sys, time
import llama_cpp
import numpy as np
path, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                      n_batch=512, verbose=False)
print(json.dumps({"llama_cpp": llama_cpp.__version__}), flush=True)


def last_logits():
    # llm.scores stays zero without logits_all (llama-cpp-python 0.3.x samples
    # inside its sampler): the context's logits of the batch's last token
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


for line in sys.stdin:
    req = json.loads(line)
    ids = req["ids"]
    llm.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    llm.eval(ids)
    pre, pre_cpu = time.perf_counter() - t0, time.process_time() - c0
    gen = gen_cpu = 0.0
    if req["new"] > 1:
        tok = int(np.argmax(last_logits()))
        t1, c1 = time.perf_counter(), time.process_time()
        for _ in range(req["new"] - 1):
            llm.eval([tok])
            tok = int(np.argmax(last_logits()))
        gen, gen_cpu = time.perf_counter() - t1, time.process_time() - c1
    out = {"prefill": pre, "gen": gen, "prefill_cpu": pre_cpu, "gen_cpu": gen_cpu}
    if req.get("logits"):
        out["logits"] = [float(v) for v in last_logits()]
    if req.get("tokens"):
        out["tokens"] = [int(t) for t in llm.eval_tokens][len(ids):]
        out["tokens"].append(tok)
    print(json.dumps(out), flush=True)
"""


def env_for(threads):
    return dict(os.environ, ATTNKIT_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                OMP_NUM_THREADS=str(threads), ATTNKIT_DEVICE="cpu")


def reply(child):
    """The next line of llama.cpp's process, or one clear line and exit 1
    when it died (its own traceback is above, on stderr)."""
    line = child.stdout.readline()
    if not line:
        sys.exit(f"generate_speed: llama.cpp's process exited with status {child.wait()} "
                 "(its error is above; bench/deps.sh installs its environment)")
    return json.loads(line)


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, threads):
    """Wall time and CPU time (user + system, all processes of the command)."""
    t0, c0 = time.perf_counter(), child_cpu()
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env_for(threads),
                       stdout=subprocess.DEVNULL)
    if r.returncode:
        raise SystemExit(f"failed (exit {r.returncode}): {cmd}")
    return time.perf_counter() - t0, child_cpu() - c0


def run_out(cmd, threads):
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env_for(threads),
                          capture_output=True, check=True).stdout


def first_diff(a, b):
    """How many leading entries a and b share."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def ids_of(stream):
    (doc,) = s.docs_of(stream).values()
    return [int(t) for t in doc["tokens"]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bins", default=f"attnkit={os.path.join(TOP, 'bin')}")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--models", default="smollm2,gemma3,qwen0.5b,qwen1.5b")
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--no-warmup", action="store_true", help="no warm-up round (slow models)")
    args = ap.parse_args()
    bins = []
    for b in args.bins.split(","):
        name, rest = b.split("=", 1)
        bd, _, flags = rest.partition("+")
        bins.append((name, bd, flags.replace("+", " ")))
    first_bin = bins[0][1]
    have_llama = False
    if not args.no_llama:
        try:
            import llama_cpp  # noqa: F401
            have_llama = True
        except ImportError:
            pass
    print(f"# machine: {machine()}; load average at start: {load()}")
    print(f"# generation: {args.new} greedy tokens after the chat prompt {os.path.relpath(PROMPT, TOP)}; "
          f"prefill: embed | attend (statistics) on {args.prefill} tokens of {TEXT}; best of "
          f"{args.reps} interleaved runs" + ("" if have_llama else "; llama.cpp not importable: skipped"))
    print("# tok/s: per second of wall time; tok/cpu_s: per second of CPU time (user + system of the "
          "processes, llama.cpp's process during its eval calls: steadier on a shared machine, but "
          "spinning threads count as busy)")
    print(f"{'model':<10} {'thr':>3} {'implementation':<22} {'gen_tok/s':>9} {'prefill_tok/s':>13} "
          f"{'gen_tok/cpu_s':>13} {'prefill_tok/cpu_s':>17} {'max|dlogit|':>11} {'mean|dlogit|':>12} "
          f"{'same_tokens':>11}")
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            title, rel = MODELS[name]
            path = os.path.join(MODELS_DIR, rel)
            if not os.path.exists(path):
                print(f"# {title}: {path} missing")
                continue
            chat = os.path.join(d, f"{name}.chat.ak")
            subprocess.run(f"'{first_bin}/tokenize' -m '{path}' --chat '{PROMPT}' > '{chat}'",
                           shell=True, check=True)
            with open(chat, "rb") as f:
                chat_ids = ids_of(f.read())
            r = subprocess.run([f"{first_bin}/tokenize", "-m", path, TEXT], capture_output=True, check=True)
            pre_ids = ids_of(r.stdout)[:args.prefill]
            pre = os.path.join(d, f"{name}.pre.ak")
            with open(pre, "wb") as f:
                f.write(s.pack_stream([s.doc("gpl3", [s.tensor("tokens", np.array(pre_ids, np.int32))])]))
            short_ids = pre_ids[:8]
            short = os.path.join(d, f"{name}.short.ak")
            with open(short, "wb") as f:
                f.write(s.pack_stream([s.doc("short", [s.tensor("tokens", np.array(short_ids, np.int32))])]))
            # the error columns: each build's next-token logits after the 8
            # ids and its 64 greedy tokens, against the first build's
            logits, tokens = {}, {}
            for b, bd, fl in bins:
                (doc,) = s.docs_of(run_out(f"'{bd}/embed' -m '{path}' < '{short}' | "
                                           f"'{bd}/attend' -m '{path}' --logits last {fl}", 1)).values()
                logits[b] = np.asarray(doc["logits"], np.float64).ravel()
                (doc,) = s.docs_of(run_out(f"'{bd}/kvcache' -m '{path}' --generate {args.new} "
                                           f"--stop none {fl} < '{chat}'", 1)).values()
                tokens[b] = [int(t) for t in doc["generated"]]
            for th in (int(x) for x in args.threads.split(",")):
                llama = None
                if have_llama:
                    llama = subprocess.Popen([sys.executable, "-c", LLAMA_CHILD, path, str(th)],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                             env=env_for(th))
                    info = reply(llama)

                def ask(ids, new, **more):
                    llama.stdin.write(json.dumps({"ids": ids, "new": new, **more}) + "\n")
                    llama.stdin.flush()
                    return reply(llama)
                res = {b: {"gen": [], "pre": [], "gen_cpu": [], "pre_cpu": []} for b, _, _ in bins}
                res["llama.cpp"] = {"gen": [], "pre": [], "gen_cpu": [], "pre_cpu": []}
                # the first round warms the page cache (--no-warmup: it counts too)
                if llama:
                    logits["llama.cpp"] = np.asarray(ask(short_ids, 1, logits=1)["logits"])
                    tokens["llama.cpp"] = ask(chat_ids, args.new, tokens=1)["tokens"]
                for rep in range(args.reps + (0 if args.no_warmup else 1)):
                    for b, bd, fl in bins:
                        kv = f"'{bd}/kvcache' -m '{path}' --generate %d --stop none {fl} < '{chat}'"
                        (t64, c64), (t1, c1) = timed(kv % args.new, th), timed(kv % 1, th)
                        tp, cp = timed(f"'{bd}/embed' -m '{path}' < '{pre}' | '{bd}/attend' -m '{path}' {fl}",
                                       th)
                        if rep or args.no_warmup:
                            # the difference of two whole processes: under load
                            # it can come out at or below zero (a run with no
                            # figure, not an infinite rate)
                            res[b]["gen"].append((args.new - 1) / (t64 - t1) if t64 > t1 else None)
                            res[b]["gen_cpu"].append((args.new - 1) / (c64 - c1) if c64 > c1 else None)
                            res[b]["pre"].append(args.prefill / tp)
                            res[b]["pre_cpu"].append(args.prefill / max(cp, 1e-9))
                    if llama:
                        g = ask(chat_ids, args.new)
                        p = ask(pre_ids, 1)
                        if rep or args.no_warmup:
                            res["llama.cpp"]["gen"].append((args.new - 1) / g["gen"])
                            res["llama.cpp"]["pre"].append(args.prefill / p["prefill"])
                            res["llama.cpp"]["gen_cpu"].append((args.new - 1) / max(g["gen_cpu"], 1e-9))
                            res["llama.cpp"]["pre_cpu"].append(args.prefill / max(p["prefill_cpu"], 1e-9))
                def best(xs, width, prec):
                    xs = [x for x in xs if x is not None]
                    return f"{max(xs):{width}.{prec}f}" if xs else f"{'-':>{width}}"

                for k, v in res.items():
                    if v["gen"]:
                        label = k if k != "llama.cpp" else f"llama.cpp {info['llama_cpp']}"
                        cpu = (f" {best(v['gen_cpu'], 13, 1)} {best(v['pre_cpu'], 17, 0)}" if v["gen_cpu"]
                               else f" {'':>13} {'':>17}")
                        ref = bins[0][0]
                        err = f" {'':>11} {'':>12} {'':>11}"
                        if k in logits and k != ref:
                            dl = np.abs(logits[k] - logits[ref])
                            err = (f" {dl.max():11.3f} {dl.mean():12.4f} "
                                   f"{first_diff(tokens[k], tokens[ref]):>5d} of {len(tokens[ref]):<3d}")
                        print(f"{name:<10} {th:>3} {label:<22} {best(v['gen'], 9, 1)} {best(v['pre'], 13, 0)}"
                              + cpu + err, flush=True)
                if llama:
                    llama.stdin.close()
                    llama.wait()
            print(f"# {name}: {len(chat_ids)}-token chat prompt; load average now {load()}", flush=True)


if __name__ == "__main__":
    main()
