# report: the HTML page, in a real browser (headless Chromium), and the
# figures.  The page's values after a scripted click on a head are checked
# against numpy from the stream, so a click that re-tints nothing, or with
# the wrong head's numbers, fails.
. "$AK_TOP/tests/lib.sh"
cd "$AK_TOP"

tokenize --segments paragraph examples/prompt.txt | embed | attend --probs all | entropy \
    >"$T/full.ak" || fail "pipeline to entropy"
prune --keep 0.5 --unit block --protect last <"$T/full.ak" >"$T/pruned.ak" || fail "prune"

ok "report -h exits 0" report -h
grep -q '^usage: report' "$T/.out" && pass "report -h prints usage" || fail "report -h prints usage"
grep -q 'Exit status:' "$T/.out" && pass "report -h lists exit codes" || fail "report -h lists exit codes"

# bad input: one line, non-zero
echo "not a stream" >"$T/text.txt"
rejects "not a stream" report report -o "$T/x.html" "$T/text.txt"
tokenize examples/prompt.txt | embed >"$T/embedded.ak"
rejects "a stream before attend" report report -o "$T/x.html" "$T/embedded.ak"
head -c 2000 "$T/full.ak" >"$T/trunc.ak"
rejects "a truncated stream" report report -o "$T/x.html" "$T/trunc.ak"
rejects "missing file" report report "$T/nonexistent.ak"
rejects "unknown statistic" report report -s best "$T/full.ak"
rejects "layer out of range" report report -l 6 "$T/full.ak"
mkdir -p "$T/other/examples"
sed 's/Rhine/Rhone/' examples/prompt.txt >"$T/other/examples/prompt.txt"
(cd "$T/other" && tokenize examples/prompt.txt | embed | attend | entropy >"$T/other.ak")
rejects "same id, another text" report report -o "$T/x.html" "$T/full.ak" "$T/other.ak"
[ ! -e "$T/x.html" ] && pass "no page left by failed runs" || fail "no page left by failed runs"
echo old >"$T/keep.html"
report -o "$T/keep.html" "$T/trunc.ak" 2>/dev/null
is "a failed run leaves the old page" "$(cat "$T/keep.html")" "old"
code=0; report "$T/trunc.ak" >/dev/null 2>&1 || code=$?
is "truncated: exit 65" "$code" 65

# the pipeline through prune alone (attention statistics are gone: the page
# shows the scores and the dropped spans), and merged with entropy's stream
ok "prune | report" sh -c "report -o '$T/pruned.html' <'$T/pruned.ak'"
ok "report full + pruned" report -o "$T/page.html" "$T/full.ak" "$T/pruned.ak"
for p in page pruned; do
    if grep -Eiq 'https?:|//cdn|src=|<link|@import|url\( *["'"'"']?[a-z]+:' "$T/$p.html"; then
        fail "$p.html loads nothing from outside"; grep -Eio '.{30}(https?:|//cdn|src=|<link).{30}' "$T/$p.html" | head -3
    else pass "$p.html loads nothing from outside"; fi
done
grep -q '"dropped":\[\[' "$T/page.html" && pass "page carries the dropped spans" ||
    fail "page carries the dropped spans"

# figures: SVG parses as XML, PNG decodes (signature, CRCs, zlib, size)
ok "figures" report --svg "$T/fig" --png "$T/fig" "$T/full.ak" "$T/pruned.ak"
python3 - "$T/fig" <<'PY' && pass "figures are valid SVG and PNG" || fail "figures are valid SVG and PNG"
import sys, os, struct, zlib, xml.etree.ElementTree as ET
d = sys.argv[1]
names = sorted(os.listdir(d))
want = ["1-examples_prompt.txt.%s.%s" % (k, e) for e in ("png", "svg") for k in ("heads", "tokens")]
assert sorted(want) == names, names
for n in names:
    b = open(os.path.join(d, n), "rb").read()
    if n.endswith(".svg"):
        root = ET.fromstring(b)
        assert root.tag.endswith("svg") and len(root) > 10, n
        continue
    assert b[:8] == b"\x89PNG\r\n\x1a\n", n
    i, idat, w = 8, b"", None
    while i < len(b):
        ln, = struct.unpack(">I", b[i:i + 4]); typ = b[i + 4:i + 8]; data = b[i + 8:i + 8 + ln]
        crc, = struct.unpack(">I", b[i + 8 + ln:i + 12 + ln])
        assert zlib.crc32(typ + data) == crc, (n, typ)
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[:10]); assert (depth, ctype) == (8, 2)
        if typ == b"IDAT": idat += data
        i += 12 + ln
    raw = zlib.decompress(idat)
    assert len(raw) == h * (3 * w + 1) and w > 50 and h > 50, (n, w, h)
    assert len(set(raw[1 + 3 * w * 3 // 2 : 3 * w * h // 2])) > 3, n  # not blank
PY

# ---- in a browser ----
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
    if [ "$(id -u)" = 0 ]; then
        fail "chromium is installed (.ci/deps.sh installs it as root)"
    else
        echo "ok - # SKIP chromium not installed (as root, .ci/deps.sh installs it)"
    fi
    done_testing
fi
browse() { # OUT URL-FRAGMENT [more flags]: the DOM after the page's script ran
    out=$1 frag=$2; shift 2
    timeout 20 "$chrome" --headless --disable-gpu --no-sandbox --no-first-run \
        --user-data-dir="$T/chrome" --virtual-time-budget=5000 "$@" \
        "file://$T/page.html#$frag" >"$out" 2>"$T/chrome.err"
}
browse "$T/dom.html" "test-click=2,3" --dump-dom ||
    { fail "chromium --dump-dom"; tail -5 "$T/chrome.err"; }
browse "$T/dom2.html" "test-stat=norm&test-click=1,4&test-token=7&test-hover=2" --dump-dom ||
    { fail "chromium --dump-dom (token)"; tail -5 "$T/chrome.err"; }
python3 - "$T/dom.html" "$T/dom2.html" "$T/full.ak" <<'PY'
import sys, re
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
dom, dom2 = open(sys.argv[1]).read(), open(sys.argv[2]).read()
d = ak.docs_of(open(sys.argv[3], "rb").read())["examples/prompt.txt"]
def check(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else "  # " + str(detail)[:300]))
body = re.search(r"<body[^>]*>", dom).group(0)
check("page ran without script errors", 'data-errors=""' in body, body)
check("page finished loading", 'data-ready="1"' in body, body)
# the click on head (2, 3), the corrected mass chosen (the default): tint and values
check("head click re-tints by that head", 'data-tint="corrected:2,3"' in body, body)
vals = {int(i): float(v) for i, v in re.findall(r'data-i="(\d+)"[^>]*data-v="([^"]+)"', dom)}
T = d["tokens"].shape[0]
check("every token is on the page", sorted(vals) == list(range(T)), len(vals))
# bidirectional: every key is seen by all T queries
want = d["attn.mass"][2, 3] / T
got = np.array([vals.get(i, np.nan) for i in range(T)])
check("tints are head (2,3)'s corrected mass", np.allclose(got, want, rtol=1e-2, atol=1e-6),
      np.abs(got - want).max())
mean = d["attn.mass"].mean(axis=(0, 1)) / T
check("and not the mean of all heads", not np.allclose(got, mean, rtol=0.1))
colours = set(re.findall(r'class="t[^"]*"[^>]*style="background-color: ([^"]+)"', dom))
check("tokens are tinted in more than 5 shades", len(colours) > 5, len(colours))
# clicking token 7 with head (1, 4) chosen: its attention row of attn.probs.1
body2 = re.search(r"<body[^>]*>", dom2).group(0)
check("token click shows its attention row", 'data-tint="row:1,4:7"' in body2, body2)
vals2 = {int(i): float(v) for i, v in re.findall(r'data-i="(\d+)"[^>]*data-v="([^"]+)"', dom2)}
got2 = np.array([vals2.get(i, np.nan) for i in range(T)])
check("the row is attn.probs.1[head 4, query 7]", np.allclose(got2, d["attn.probs.1"][4, 7], rtol=1e-2, atol=1e-6),
      np.nanmax(np.abs(got2 - d["attn.probs.1"][4, 7])))
tip = re.search(r'<div id="tip"[^>]*>(.*?)</div>', dom2, re.S)
tip = tip.group(1) if tip else ""
m = re.search(r"normalised entropy +([0-9.e-]+)", tip)
want_norm = d["attn.entropy"][1, 4, 2] / np.log(T)
check("hover shows the token's numbers", tip.startswith("token 2  id %d" % d["tokens"][2]) and m and
      abs(float(m.group(1)) - want_norm) < 1e-2 * want_norm, tip)
check("the page has the 6 x 12 head grid with sinks",
      len(re.findall(r'<td[^>]*data-l="', dom)) == 72 and re.search(r'<td class="sink', dom))
check("dropped text is struck through with its score", 'class="ds"' in dom and 'class="x"' in dom)
PY
# a causal document without text (tokenize --from-ids): the corrected mass
# divides by the T - j queries that see key j; the tokens show as their ids
python3 - "$T/causal.ak" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
T, L, H = 12, 2, 3
rng = np.random.default_rng(7)
p = rng.uniform(0.01, 1, (L, H, T, T)) * np.tril(np.ones((T, T)))
p /= p.sum(axis=3, keepdims=True)
p = p.astype(np.float32)
ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(axis=3).astype(np.float32)
mass = p.sum(axis=2).astype(np.float32)
vis = np.broadcast_to(np.arange(1, T + 1, dtype=np.int32), (L, T)).copy()
t = [ak.tensor("tokens", np.arange(100, 100 + T, dtype=np.int32)),
     ak.tensor("attn.entropy", ent), ak.tensor("attn.mass", mass), ak.tensor("attn.visible", vis)]
t += [ak.tensor("attn.probs.%d" % l, p[l]) for l in range(L)]
t += [ak.tensor("attn.probs.%d.heads" % l, np.arange(H, dtype=np.int32)) for l in range(L)]
open(sys.argv[1], "wb").write(ak.pack_stream([ak.doc("ids", t, meta={"causal": 1, "window": 0})]))
np.save(sys.argv[1] + ".npy", mass)
PY
ok "report on a causal stream without text" report -o "$T/causal.html" "$T/causal.ak"
timeout 20 "$chrome" --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir="$T/chrome" \
    --virtual-time-budget=5000 --dump-dom "file://$T/causal.html#test-click=1,2" >"$T/dom3.html" 2>"$T/chrome.err" ||
    { fail "chromium --dump-dom (causal)"; tail -5 "$T/chrome.err"; }
python3 - "$T/dom3.html" "$T/causal.ak.npy" <<'PY'
import sys, re, numpy as np
dom = open(sys.argv[1]).read()
mass = np.load(sys.argv[2])
T = mass.shape[2]
def check(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else "  # " + str(detail)[:300]))
body = re.search(r"<body[^>]*>", dom).group(0)
check("causal page: no script errors, head (1,2) chosen", 'data-errors=""' in body and
      'data-tint="corrected:1,2"' in body, body)
vals = {int(i): float(v) for i, v in re.findall(r'data-i="(\d+)"[^>]*data-v="([^"]+)"', dom)}
got = np.array([vals.get(i, np.nan) for i in range(T)])
want = mass[1, 2] / (T - np.arange(T))
check("causal: corrected mass = mass / (T - j)", np.allclose(got, want, rtol=1e-2), np.nanmax(np.abs(got - want)))
check("tokens without text show as their ids", ">#100<" in dom and ">#111<" in dom)
PY


# ---- several prunings of one document, the question's rows, jumps ----
tokenize --segments paragraph examples/prompt.txt | embed | attend --mass-last 12 | entropy \
    >"$T/ml.ak" || fail "pipeline with --mass-last"
prune -p query -k 0.5 "$T/ml.ak" >"$T/pq.ak" && prune -p mass -k 0.4 "$T/ml.ak" >"$T/pm.ak" ||
    fail "two prunings"
report -o "$T/page.html" "$T/ml.ak" "$T/pq.ak" "$T/pm.ak" 2>"$T/.err" && [ ! -s "$T/.err" ] &&
    pass "report of a stream and two prunings of it: no warning" || fail "report of two prunings: $(cat "$T/.err")"
report -o "$T/rep.html" "$T/ml.ak" "$T/ml.ak" 2>"$T/.err"; rc=$?
[ "$rc" -eq 0 ] && grep -q "^report: .*appears again with nothing to compare" "$T/.err" &&
    [ "$(wc -l <"$T/.err")" -eq 1 ] && pass "a repeated id with nothing to compare: one warning, exit 0" ||
    fail "repeated id: exit $rc, $(cat "$T/.err")"
browse "$T/dom4.html" "test-stat=last&test-jump=question" --dump-dom ||
    { fail "chromium --dump-dom (prunings)"; tail -5 "$T/chrome.err"; }
browse "$T/dom5.html" "test-pruning=1&test-jump=dropped" --dump-dom ||
    { fail "chromium --dump-dom (pruning 1)"; tail -5 "$T/chrome.err"; }
python3 - "$T/dom4.html" "$T/dom5.html" "$T/ml.ak" "$T/pq.ak" "$T/pm.ak" <<'PY'
import sys, re
sys.path.insert(0, __import__("os").environ["AK_TOP"] + "/tests/py")
import numpy as np, akstream as ak
dom, dom5 = open(sys.argv[1]).read(), open(sys.argv[2]).read()
recs = [r for r in ak.read_records(open(sys.argv[3], "rb").read()) if r.get("type") == "doc"]
d = ak.docs_of(open(sys.argv[3], "rb").read())["examples/prompt.txt"]
kq = ak.docs_of(open(sys.argv[4], "rb").read())["examples/prompt.txt"]["keep"]
km = ak.docs_of(open(sys.argv[5], "rb").read())["examples/prompt.txt"]["keep"]
def check(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else "  # " + str(detail)[:300]))
body = re.search(r"<body[^>]*>", dom).group(0)
check("prunings page: no script errors", 'data-errors=""' in body and 'data-ready="1"' in body, body)
check("both prunings named by policy", 'data-prunings="query, word, 50 of 100 | mass, word, 40 of 100"' in body, body)
text = ~((d["special"] == 1) & (d["offsets"][:, 0] == d["offsets"][:, 1]))
n = (kq.astype(int) + km)[text]
want = "all %d, some %d, none %d" % ((n == 2).sum(), (n == 1).sum(), (n == 0).sum())
check("compared token by token: kept by both, one, none (%s)" % want, 'data-cmp="%s"' % want in body, body)
some = [int(i) for i in re.findall(r'class="t some"[^>]*data-i="(\d+)"', dom)]
check("tokens kept by one pruning are marked", sorted(some) == [i for i in range(len(kq)) if text[i] and kq[i] + km[i] == 1], some)
# the question's rows: attn.mass_last / W, mean over layers and heads
W = recs[0]["meta"].get("mass_last_w", 12)
want_v = d["attn.mass_last"].mean(axis=(0, 1)) / W
vals = {int(i): float(v) for i, v in re.findall(r'data-i="(\d+)"[^>]*data-v="([^"]+)"', dom)}
got = np.array([vals.get(i, np.nan) for i in range(len(want_v))])
check("tint by the question's attention: attn.mass_last / W", 'data-tint="last:-1,-1"' in body and
      np.allclose(got, want_v, rtol=2e-2, atol=1e-6), np.nanmax(np.abs(got - want_v)))
seg = d["segments"]
q0 = int(np.flatnonzero(seg == seg.max())[0])
check("jump to the question: the last block's first token", 'data-jump="%d"' % q0 in body, body)
body5 = re.search(r"<body[^>]*>", dom5).group(0)
drop = ~km.astype(bool) & text
starts = [i for i in range(len(km)) if drop[i] and (i == 0 or not drop[i - 1])]
check("one pruning chosen, two jumps: the second dropped run of it",
      'data-pruning="1"' in body5 and len(starts) > 1 and 'data-jump="%d"' % starts[1] in body5, (body5, starts[:3]))
check("the bar colours have a legend", 'class="lg"' in dom and "corrected mass" in dom and "normalised entropy" in dom)
PY

browse "$T/shot.out" "" --hide-scrollbars --window-size=1200,900 --screenshot="$T/shot.png" ||
    fail "chromium --screenshot"
[ -s "$T/shot.png" ] && [ "$(od -An -tx1 -N4 "$T/shot.png" | tr -d ' ')" = 89504e47 ] &&
    pass "screenshot saved" || fail "screenshot saved"
# the page's script is a real file (cmd/report/page.js, embedded at build
# time): it parses as JavaScript where node is installed
if command -v node >/dev/null 2>&1; then
    ok "cmd/report/page.js parses (node --check)" node --check "$AK_TOP/cmd/report/page.js"
else
    echo "# skip node --check: no node"
fi
done_testing
