#!/usr/bin/env python3
"""bench/kvcache_speed.py [PROMPT_TOKENS] [NEW_TOKENS] [THREADS] - prefill and
greedy generation speed on the CPU for SmolLM2-135M-Instruct (the same Q4_1
GGUF), same thread count: attnkit's kvcache, Hugging Face transformers
(float32 weights dequantized from the GGUF, eager attention, its KV cache)
and llama.cpp (llama_cpp, when importable).  Also the cache's bytes per
token.  Run with /work/refpy/bin/python (torch, transformers, llama_cpp);
prints a table, bench/results/kvcache_speed.txt keeps a run.

attnkit's times are wall-clock times of whole runs, its model load taken
out: prefill = run(P tokens) - run(1 token); generation = run(P tokens,
N new) - run(P tokens), N - 1 steps (the first new token comes from the
prefill's logits)."""
import os
import sys
# bench/tokenize.py would shadow the standard library's tokenize (torch needs it)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import subprocess  # noqa: E402
import tempfile
import time

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "py"))
sys.path.insert(0, os.path.join(TOP, ".cache", "py"))
import akstream as s  # noqa: E402

P = int(sys.argv[1]) if len(sys.argv) > 1 else 256
N = int(sys.argv[2]) if len(sys.argv) > 2 else 32
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
GGUF = os.path.join(TOP, ".cache", "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
ids = np.resize(np.load(os.path.join(TOP, "tests", "model", "gguf", "smollm2.npz"))["ids"], P)
ids = ids.astype(np.int32)
tmp = tempfile.mkdtemp(prefix="ak-speed.")
env = dict(os.environ, ATTNKIT_THREADS=str(THREADS), PATH=os.path.join(TOP, "bin") + ":" + os.environ["PATH"])


def stream(path, x):
    open(path, "wb").write(s.pack_stream([s.doc("d", [s.tensor("tokens", x)])]))


def timed(args, reps=2):
    best = None
    for _ in range(reps):
        t = time.time()
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
        dt = time.time() - t
        best = dt if best is None or dt < best else best
    return best


one, full = os.path.join(tmp, "one.ak"), os.path.join(tmp, "full.ak")
stream(one, ids[:1])
stream(full, ids)
kv = os.path.join(tmp, "c.kv")
t1 = timed(["kvcache", "-m", GGUF, one])
tp = timed(["kvcache", "-m", GGUF, "--save", kv, full])
tg = timed(["kvcache", "-m", GGUF, "--generate", str(N), "--stop", "none", full])
rows = [("attnkit", P / (tp - t1), (N - 1) / (tg - tp))]
cache_bytes = os.path.getsize(kv) / P

import torch  # noqa: E402
import transformers as tf  # noqa: E402

torch.set_num_threads(THREADS)
m = tf.AutoModelForCausalLM.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF),
                                            dtype=torch.float32, attn_implementation="eager").eval()
x = torch.tensor([ids.tolist()])
with torch.no_grad():
    m(x[:, :8])
    t = time.time()
    out = m(x, use_cache=True)
    pre = time.time() - t
    # greedy steps on its own KV cache, as generate takes them
    past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    t = time.time()
    for _ in range(N - 1):
        out = m(nxt, past_key_values=past, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    gen = time.time() - t
rows.append(("transformers", P / pre, (N - 1) / gen))
try:
    import llama_cpp  # noqa: E402
    llm = llama_cpp.Llama(model_path=GGUF, n_ctx=P + N + 8, n_threads=THREADS, n_batch=512,
                          verbose=False)
    toks = ids.tolist()
    llm.reset()
    t = time.time()
    llm.eval(toks)
    pre = time.time() - t
    t = time.time()
    for _ in range(N - 1):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    gen = time.time() - t
    rows.append(("llama.cpp", P / pre, (N - 1) / gen))
except ImportError:
    pass
print("# SmolLM2-135M-Instruct Q4_1, %d prompt tokens, %d new, %d threads, %d CPUs" % (P, N, THREADS, os.cpu_count()))
print("engine\tprefill_tok_s\tgenerate_tok_s")
for name, a, b in rows:
    print("%s\t%.1f\t%.1f" % (name, a, b))
print("# attnkit generation: %.2fx transformers%s" % (rows[0][2] / rows[1][2], "" if len(rows) < 3 else
      ", %.2fx llama.cpp" % (rows[0][2] / rows[2][2])))
print("# cache: %.0f bytes per token (f32 K and V of 30 layers x 3 KV heads x 64, positions and scores)" % cache_bytes)
subprocess.run(["rm", "-rf", tmp])
