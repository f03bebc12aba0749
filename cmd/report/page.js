(function () {
"use strict";
var body = document.body, errors = [];
function fail(m) { errors.push(m); body.setAttribute("data-errors", errors.join(" | ")); }
window.onerror = function (m, s, l, c) { fail(String(m) + " (line " + l + ":" + c + ")"); };
window.addEventListener("unhandledrejection", function (e) { fail("rejection: " + e.reason); });
var $ = function (id) { return document.getElementById(id); };
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
/* Typed arrays travel as base64 of their little-endian bytes; bf16 is the
   upper half of a float32. */
function bytes(s) {
  var b = atob(s), n = b.length, u = new Uint8Array(n);
  for (var i = 0; i < n; i++) u[i] = b.charCodeAt(i);
  return u;
}
function f32(s) { return s ? new Float32Array(bytes(s).buffer) : null; }
function i32(s) { return s ? new Int32Array(bytes(s).buffer) : null; }
function u8(s) { return s ? bytes(s) : null; }
function bf16(s) {
  if (!s) return null;
  var u = bytes(s), n = u.length >> 1, o = new Float32Array(n), w = new Uint32Array(o.buffer);
  for (var i = 0; i < n; i++) w[i] = ((u[2 * i] | (u[2 * i + 1] << 8)) << 16) >>> 0;
  return o;
}
function fmt(v) {
  if (v == null || isNaN(v)) return "-";
  var a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

var DATA = JSON.parse($("akdata").textContent);
var TEST = {};
location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
  var p = kv.split("=");
  if (p[0]) TEST[p[0]] = p[1] || "";
});
var testing = Object.keys(TEST).some(function (k) { return k.indexOf("test") === 0; });

var STATS = {
  corrected: ["corrected mass", "mass received / queries that could see the key"],
  mass: ["received mass", "sum over queries of their probability on the key"],
  entropy: ["entropy", "entropy (nats) of the token's own query row"],
  norm: ["normalised entropy", "entropy / log(keys visible)"],
  score: ["prune score", "score.token, the score prune used"],
  last: ["question's attention", "attn.mass_last: the mass each key gets from the last W queries (attend --mass-last), / W: what the query policy reads"],
  gen: ["answer's attention", "attn.mass_gen: the mass each key gets from the generated tokens' queries (kvcache --gen-mass), / rows"],
  row: ["attention of clicked token", "the clicked token's row of attn.probs"]
};
var D = null, sel = {stat: "corrected", layer: -1, head: -1, row: -1}, spans = [], chunks = [];
var cache = {}, curVals = null;

function prep(d) {
  if (d.ready) return d;
  d.off = i32(d.off); d.tok = i32(d.tok); d.seg = i32(d.seg); d.special = u8(d.special);
  d.ent = bf16(d.ent); d.mass = bf16(d.mass); d.invSeers = f32(d.invSeers);
  d.invLogVis = f32(d.invLogVis); d.score = f32(d.score); d.keep = u8(d.keep);
  (d.probs || []).forEach(function (p) { p.data = bf16(p.data); });
  d.massLast = bf16(d.massLast); d.massGen = bf16(d.massGen);
  (d.prunings || []).forEach(function (p) { p.keep = u8(p.keep); });
  d.keep0 = d.keep; d.dropped0 = d.dropped;
  d.ready = true;
  return d;
}
/* mean over the selected layers (l < 0: all) and heads (h < 0: all) of
   arr[l, h, j] * (perLayer ? perLayer[l, j] : 1) */
function meanRows(arr, perLayer, l, h) {
  var T = D.T, H = D.H, out = new Float32Array(T), n = 0;
  for (var ll = 0; ll < D.L; ll++) {
    if (l >= 0 && ll !== l) continue;
    for (var hh = 0; hh < H; hh++) {
      if (h >= 0 && hh !== h) continue;
      var base = (ll * H + hh) * T, j;
      var pl = (D.visRows > 1 ? ll : 0) * T;
      if (perLayer) for (j = 0; j < T; j++) out[j] += arr[base + j] * perLayer[pl + j];
      else for (j = 0; j < T; j++) out[j] += arr[base + j];
      n++;
    }
  }
  for (var k = 0; n && k < T; k++) out[k] /= n;
  return out;
}
/* the same over a [L', H', T] array of its own shape (attn.mass_last, attn.mass_gen) */
function meanLH(arr, LH, l, h) {
  var T = D.T, out = new Float32Array(T), n = 0;
  for (var ll = 0; ll < LH[0]; ll++) {
    if (l >= 0 && ll !== l) continue;
    for (var hh = 0; hh < LH[1]; hh++) {
      if (h >= 0 && hh !== h) continue;
      var base = (ll * LH[1] + hh) * T;
      for (var j = 0; j < T; j++) out[j] += arr[base + j];
      n++;
    }
  }
  for (var k = 0; n && k < T; k++) out[k] /= n;
  return n ? out : null;
}
function probsLayers(l) {
  return (D.probs || []).filter(function (p) { return l < 0 || p.layer === l; });
}
/* the row of query i in the probabilities of the selected layer/head (means
   over what is selected and present) */
function probRow(i, l, h) {
  var T = D.T, out = new Float32Array(T), n = 0;
  probsLayers(l).forEach(function (p) {
    p.heads.forEach(function (hd, k) {
      if (h >= 0 && hd !== h) return;
      var base = (k * T + i) * T;
      for (var j = 0; j < T; j++) out[j] += p.data[base + j];
      n++;
    });
  });
  if (!n) return null;
  for (var j = 0; j < T; j++) out[j] /= n;
  return out;
}
function values(stat, l, h, row) {
  var key = [stat, l, h, row].join(",");
  if (cache[key]) return cache[key];
  var v = null, T = D.T;
  if (stat === "score") v = D.score;
  else if (stat === "row") v = probRow(row, l, h);
  else if (stat === "last") v = D.massLast ? meanLH(D.massLast, D.massLastLH, l, h) : null;
  else if (stat === "gen") v = D.massGen ? meanLH(D.massGen, D.massGenLH, l, h) : null;
  else if (D.ent) {
    if (stat === "mass") v = meanRows(D.mass, null, l, h);
    else if (stat === "entropy") v = meanRows(D.ent, null, l, h);
    else if (stat === "norm") v = meanRows(D.ent, D.invLogVis, l, h);
    else if (stat === "corrected") {
      v = meanRows(D.mass, null, l, h);
      for (var j = 0; j < T; j++) v[j] *= D.invSeers[j];
    }
  }
  cache[key] = v;
  return v;
}
function available(stat) {
  if (stat === "score") return !!D.score;
  if (stat === "row") return !!(D.probs && D.probs.length);
  if (stat === "last") return !!D.massLast;
  if (stat === "gen") return !!D.massGen;
  return !!D.ent;
}
/* Colour scale: mass-like statistics are skewed (sinks), so their top is
   the 99th percentile; entropies use their range. */
function scale(v, stat) {
  var a = Float32Array.from(v).sort();  /* numeric order; NaN last */
  var nf = a.length;
  while (nf > 0 && !isFinite(a[nf - 1])) nf--;
  a = a.subarray(0, nf);
  if (!a.length) return [0, 1];
  var lo = stat === "entropy" || stat === "norm" ? a[0] : 0;
  var hi = stat === "entropy" || stat === "norm" ? a[a.length - 1] : a[Math.min(a.length - 1, Math.floor(0.99 * (a.length - 1)))];
  if (!(hi > lo)) hi = lo + 1;
  return [lo, hi];
}
var shades = {};
function colour(x, stat) {
  /* 200 shades, each string made once */
  var blue = stat === "entropy" || stat === "norm", q = Math.round(Math.max(0, Math.min(1, x)) * 200);
  var key = (blue ? "b" : "o") + q;
  return shades[key] || (shades[key] = (blue ? "rgba(33,113,181," : "rgba(230,85,13,") + (q / 200 * 0.85).toFixed(3) + ")");
}
var range = [0, 1];
function tintSpan(s) {
  var i = +s.getAttribute("data-i");
  if (!curVals) { s.style.backgroundColor = ""; return; }
  s.style.backgroundColor = colour((curVals[i] - range[0]) / (range[1] - range[0]), sel.stat);
  if (testing) s.setAttribute("data-v", curVals[i].toPrecision(5));
}
function retint() {
  curVals = available(sel.stat) ? values(sel.stat, sel.layer, sel.head, sel.row) : null;
  if (curVals) range = scale(curVals, sel.stat);
  for (var c = 0; c < chunks.length; c++) {
    if (!chunks[c].filled) continue;
    var ss = chunks[c].spans;
    for (var k = 0; k < ss.length; k++) tintSpan(ss[k]);
  }
  $("legend").innerHTML = "";
  var lg = $("legend");
  lg.appendChild(el("span", null, curVals ? fmt(range[0]) : ""));
  var bar = el("i");
  bar.style.background = "linear-gradient(90deg," + colour(0, sel.stat) + "," + colour(1, sel.stat) + ")";
  lg.appendChild(bar);
  lg.appendChild(el("span", null, curVals ? fmt(range[1]) + "+" : ""));
  var what = STATS[sel.stat][0] + (sel.stat === "score" ? "" :
    " · layer " + (sel.layer < 0 ? "all (mean)" : sel.layer) + " · head " + (sel.head < 0 ? "mean" : sel.head));
  if (sel.stat === "row") what += " · query token " + sel.row;
  $("status").textContent = curVals ? "" : STATS[sel.stat][0] + " is not available for this document" +
    (sel.stat === "row" ? " / layer (attend --probs)" : "");
  $("what").textContent = what;
  body.setAttribute("data-tint", sel.stat + ":" + sel.layer + "," + sel.head + (sel.stat === "row" ? ":" + sel.row : ""));
  document.querySelectorAll("#heads td").forEach(function (td) {
    td.classList.toggle("on", +td.getAttribute("data-l") === sel.layer && +td.getAttribute("data-h") === sel.head);
  });
  drawMatrix();
}

/* The text as written, cut into pieces: tokens (spans), the text between
   them, and dropped spans (struck through, their score in front). */
function buildPieces() {
  var T = D.T, off = D.off, text = D.text, dr = D.dropped || [], P = [], pos = 0, k = 0;
  var labelled = {};
  function dropAt(x) {
    while (k < dr.length && dr[k][1] <= x) k++;
    return k < dr.length && dr[k][0] <= x ? k : -1;
  }
  function gap(s, e) {
    while (s < e) {
      var di = dropAt(s), stop = e;
      if (di >= 0) stop = Math.min(e, dr[di][1]);
      else if (k < dr.length && dr[k][0] < e) stop = dr[k][0];
      P.push([s, stop, -1, di]);
      s = stop;
    }
  }
  for (var i = 0; i < T; i++) {
    var s = Math.max(off[2 * i], pos), e = Math.max(off[2 * i + 1], s);
    if (s > pos) gap(pos, s);
    var di = D.keep && D.keep.length === T ? (D.keep[i] ? -1 : dropAt(s)) : dropAt(s);
    if (D.keep && D.keep.length === T && !D.keep[i] && di < 0) di = -2;
    P.push([s, e, i, di]);
    pos = e;
  }
  if (pos < text.length) gap(pos, text.length);
  return {P: P, labelled: labelled};
}
function fillChunk(c) {
  if (c.filled) return;
  var frag = document.createDocumentFragment(), D_ = D, text = D_.text, dr = D_.dropped || [];
  c.spans = [];
  for (var q = c.from; q < c.to; q++) {
    var p = c.pieces[q], s = p[0], e = p[1], ti = p[2], di = p[3], node;
    if (di >= 0 && !c.root.labelled[di]) {
      c.root.labelled[di] = true;
      var lab = el("span", "ds", fmt(dr[di][2]));
      lab.title = "dropped span, score " + dr[di][2];
      frag.appendChild(lab);
    }
    if (ti < 0) {
      node = di >= 0 ? el("span", "x", text.slice(s, e)) : document.createTextNode(text.slice(s, e));
    } else {
      var special = e === s;
      var cmpc = D_.cmp && !special ? (D_.cmp[ti] === 0 ? " x" : D_.cmp[ti] < D_.prunings.length ? " some" : "") : "";
      node = el("span", "t" + (special ? " sp" : "") + (di !== -1 ? " x" : "") + cmpc,
                special ? (D_.special && D_.special[ti] ? "\u27e8" + D_.tok[ti] + "\u27e9" : "\u00b7") : text.slice(s, e));
      node.setAttribute("data-i", ti);
      if (ti === sel.row && sel.stat === "row") node.classList.add("sel");
      spans[ti] = node;
      c.spans.push(node);
      tintSpan(node);
    }
    frag.appendChild(node);
  }
  c.div.textContent = "";
  c.div.appendChild(frag);
  c.filled = true;
}
function render() {
  var box = $("text");
  box.textContent = "";
  spans = []; chunks = [];
  var root = buildPieces(), P = root.P, from = 0, ntok = 0;
  /* chunks of about 500 tokens (a few ms each), cut after a newline where one comes soon */
  for (var q = 0; q <= P.length; q++) {
    var end = q === P.length;
    if (!end) {
      if (P[q][2] >= 0) ntok++;
      var nl = P[q][2] < 0 && D.text.slice(P[q][0], P[q][1]).indexOf("\n") >= 0;
      if (!((ntok >= 500 && nl) || ntok >= 1500)) continue;
    }
    var to = end ? P.length : q + 1;
    if (to > from) {
      var div = el("div", "ch");
      box.appendChild(div);
      chunks.push({div: div, from: from, to: to, pieces: P, root: root, filled: false});
    }
    from = to; ntok = 0;
  }
  curVals = available(sel.stat) ? values(sel.stat, sel.layer, sel.head, sel.row) : null;
  if (curVals) range = scale(curVals, sel.stat);
  var first = testing ? chunks.length : Math.min(2, chunks.length);
  for (var c = 0; c < first; c++) fillChunk(chunks[c]);
  /* the rest: near the viewport at once, the others one per frame */
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (es) {
      es.forEach(function (x) { if (x.isIntersecting) fillChunk(x.target._chunk); });
    }, {rootMargin: "1500px"});
    chunks.forEach(function (ch) { ch.div._chunk = ch; if (!ch.filled) { ch.div.style.minHeight = "600px"; io.observe(ch.div); } });
  }
  var next = 0, gen = (render.gen = (render.gen || 0) + 1);
  (function idle() {
    if (gen !== render.gen) return;
    while (next < chunks.length && chunks[next].filled) next++;
    if (next >= chunks.length) return;
    fillChunk(chunks[next]);
    chunks[next].div.style.minHeight = "";
    setTimeout(idle, 16);
  })();
  chunks.forEach(function (ch) { if (ch.filled) ch.div.style.minHeight = ""; });
}
function showTip(ev, i) {
  var tip = $("tip"), lines = [], T = D.T;
  var txt = D.off[2 * i + 1] > D.off[2 * i] ? D.text.slice(D.off[2 * i], D.off[2 * i + 1]) : "(special, no text)";
  lines.push("token " + i + "  id " + D.tok[i] + "  " + JSON.stringify(txt));
  if (D.seg) lines.push("block " + D.seg[i]);
  var L = sel.layer, H = sel.head;
  ["mass", "corrected", "entropy", "norm", "score"].forEach(function (st) {
    if (!available(st)) return;
    var v = values(st, L, H, -1);
    if (v) lines.push((STATS[st][0] + "            ").slice(0, 20) + fmt(v[i]));
  });
  if (sel.stat === "row" && curVals) lines.push("attention from " + sel.row + ": " + fmt(curVals[i]));
  if (D.keep && D.keep.length === T) lines.push(D.keep[i] ? "kept" : "dropped");
  if (D.cmp) lines.push("kept by " + (keptBy(i).join("; ") || "none"));
  if (sel.stat !== "score") lines.push("(layer " + (L < 0 ? "mean" : L) + ", head " + (H < 0 ? "mean" : H) + ")");
  tip.textContent = lines.join("\n");
  tip.style.display = "block";
  var x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  var y = ev.clientY + 16 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 10 : ev.clientY + 16;
  tip.style.left = x + "px"; tip.style.top = y + "px";
}
function clickToken(i) {
  if (!(D.probs && D.probs.length)) return;
  var prev = spans[sel.row];
  if (prev) prev.classList.remove("sel");
  if (sel.stat === "row" && sel.row === i) {
    sel.stat = sel.prevStat || "corrected"; sel.row = -1;
  } else {
    if (sel.stat !== "row") sel.prevStat = sel.stat;
    sel.stat = "row"; sel.row = i;
    if (spans[i]) spans[i].classList.add("sel");
  }
  $("stat").value = sel.stat;
  retint();
}
function buildHeads() {
  var box = $("heads"), t = el("table"), tr = el("tr");
  box.textContent = "";
  box.appendChild(el("h2", null, "Heads: mean normalised entropy (S: sink, > half the attention on the first token)"));
  if (!D.heads) { box.appendChild(el("div", "note", "no attention statistics in this document (prune removes them: give report the stream from entropy too)")); return; }
  tr.appendChild(el("th", null, "L\\H"));
  for (var h = 0; h < D.H; h++) tr.appendChild(el("th", null, String(h)));
  t.appendChild(tr);
  for (var l = 0; l < D.L; l++) {
    tr = el("tr");
    tr.appendChild(el("th", null, String(l)));
    for (h = 0; h < D.H; h++) {
      var k = l * D.H + h, v = D.heads.norm[k], sink = D.heads.sink[k];
      var td = el("td", sink ? "sink" : "", sink ? "S" : "");
      td.style.backgroundColor = "rgba(33,113,181," + (0.1 + 0.9 * Math.max(0, Math.min(1, v))).toFixed(3) + ")";
      if (v > 0.6) td.style.color = "#fff";
      td.setAttribute("data-l", l); td.setAttribute("data-h", h);
      td.title = "layer " + l + " head " + h + "\nnormalised entropy " + fmt(v) + "\nentropy " + fmt(D.heads.ent[k]) +
        " nats\nfirst-token share " + fmt(D.heads.sinkShare[k]) + "\n" + D.heads.cls[k] + (sink ? ", sink" : "");
      tr.appendChild(td);
    }
    t.appendChild(tr);
  }
  box.appendChild(t);
  box.appendChild(el("div", "note", "click a cell to tint the text by that head"));
  t.addEventListener("click", function (ev) {
    var td = ev.target.closest("td");
    if (!td) return;
    sel.layer = +td.getAttribute("data-l"); sel.head = +td.getAttribute("data-h");
    $("layer").value = sel.layer; $("head").value = sel.head;
    if (sel.stat === "score") { sel.stat = "corrected"; $("stat").value = sel.stat; }
    retint();
  });
}
function buildBlocks() {
  var box = $("blocks"), B = D.blocks;
  box.textContent = "";
  box.appendChild(el("h2", null, "Blocks: score, corrected mass, normalised entropy (mean of all layers and heads)"));
  if (!B || !B.n) { box.appendChild(el("div", "note", "no blocks (segments) in this document")); return; }
  var lg = el("div", "lg");
  [["#e6550d", "score (score.block)"], ["#fd8d3c", "corrected mass"], ["#2171b5", "normalised entropy"]].forEach(function (x) {
    var s = el("span"), sw = el("i");
    sw.style.background = x[0];
    s.appendChild(sw); s.appendChild(document.createTextNode(x[1]));
    lg.appendChild(s);
  });
  box.appendChild(lg);
  /* full width at the 95th percentile (one heavy block would flatten the rest) */
  var mx = function (a) {
    if (!a) return 1;
    var c = a.slice().sort(function (x, y) { return x - y; });
    return Math.max(c.length >= 20 ? c[Math.floor(0.95 * (c.length - 1))] : c[c.length - 1], 1e-30);
  };
  var ms = mx(B.score), mm = mx(B.mass), me = mx(B.norm);
  for (var b = 0; b < B.n; b++) {
    var row = el("div", "b"), bars = el("div", "bars"), st = B.kept ? B.kept[b] : null;
    row.appendChild(el("span", null, "block " + b));
    [["s", B.score, ms], ["m", B.mass, mm], ["e", B.norm, me]].forEach(function (x) {
      var d = el("div", x[0]);
      d.style.width = x[1] ? Math.min(100, 100 * x[1][b] / x[2]).toFixed(1) + "%" : "0";
      bars.appendChild(d);
    });
    row.appendChild(bars);
    row.appendChild(el("span", st == null ? "" : st >= 1 ? "kept" : st <= 0 ? "drop" : "", st == null ? "" : st >= 1 ? "kept" : st <= 0 ? "dropped" : Math.round(100 * st) + "% kept"));
    row.title = "block " + b + "\nscore " + (B.score ? fmt(B.score[b]) : "-") + "\ncorrected mass " + (B.mass ? fmt(B.mass[b]) : "-") +
      "\nnormalised entropy " + (B.norm ? fmt(B.norm[b]) : "-") + "\ntokens " + B.count[b];
    row.setAttribute("data-b", b);
    box.appendChild(row);
  }
  box.onclick = function (ev) {
    var r = ev.target.closest(".b");
    if (!r) return;
    var b = +r.getAttribute("data-b");
    for (var i = 0; i < D.T; i++) if (D.seg[i] === b) break;
    if (i >= D.T) return;
    jumpTo(i);
  };
}
function jumpTo(i) {
  chunks.forEach(function (c) { if (c.pieces.slice(c.from, c.to).some(function (p) { return p[2] === i; })) fillChunk(c); });
  if (spans[i]) spans[i].scrollIntoView({block: "center"});
  body.setAttribute("data-jump", i);
}
/* the question: the last block's first token that covers text (the query span
   prune takes by default) */
function questionToken() {
  if (!D.seg) return -1;
  var last = -1, i;
  for (i = 0; i < D.T; i++) if (D.seg[i] > last) last = D.seg[i];
  for (i = 0; i < D.T; i++) if (D.seg[i] === last && last >= 0) return i;
  return -1;
}
function isDropped(i) {
  if (D.cmp) return D.cmp[i] === 0;
  if (D.keep && D.keep.length === D.T) return !D.keep[i];
  var dr = D.dropped || [], s = D.off[2 * i];
  for (var k = 0; k < dr.length; k++) if (dr[k][0] <= s && s < dr[k][1]) return true;
  return false;
}
/* the next dropped run after the last jump, wrapping */
function nextDropped() {
  var from = +(body.getAttribute("data-jump") || -1), T = D.T;
  for (var n = 1; n <= T; n++) {
    var i = (from + n + T) % T;
    if (isDropped(i) && (i === 0 || !isDropped(i - 1))) return i;
  }
  return -1;
}
function keptBy(i) {
  return D.prunings.filter(function (p) { return p.keep && p.keep[i]; }).map(function (p) { return p.name; });
}
/* k >= 0: that pruning's keep and dropped spans; -1: all compared, token by token */
function choosePruning(k) {
  var P = D.prunings || [];
  D.cmp = null;
  if (k < 0 && P.length > 1 && P.every(function (p) { return p.keep && p.keep.length === D.T; })) {
    var c = new Uint8Array(D.T), n = [0, 0, 0];
    P.forEach(function (p) { for (var i = 0; i < D.T; i++) c[i] += p.keep[i]; });
    D.cmp = c; D.keep = null; D.dropped = [];
    for (var i = 0; i < D.T; i++) if (!(D.special && D.special[i] && D.off[2 * i] === D.off[2 * i + 1])) n[c[i] === 0 ? 2 : c[i] < P.length ? 1 : 0]++;
    body.setAttribute("data-cmp", "all " + n[0] + ", some " + n[1] + ", none " + n[2]);
  } else if (P.length) {
    var p = P[Math.max(0, k)];
    D.keep = p.keep; D.dropped = p.dropped;
    body.removeAttribute("data-cmp");
  }
  body.setAttribute("data-pruning", k);
}
function drawMatrix() {
  var box = $("matrix");
  if (!D.probs || !D.probs.length) { box.style.display = "none"; return; }
  box.style.display = "";
  var cv = $("mcanvas"), note = $("mnote"), T = D.T;
  if (T > 256) { cv.style.display = "none"; note.textContent = "matrix view for prompts of at most 256 tokens; click a token for its row"; return; }
  var ls = probsLayers(sel.layer);
  var m = new Float32Array(T * T), n = 0;
  ls.forEach(function (p) {
    p.heads.forEach(function (hd, k) {
      if (sel.head >= 0 && hd !== sel.head) return;
      var base = k * T * T;
      for (var x = 0; x < T * T; x++) m[x] += p.data[base + x];
      n++;
    });
  });
  if (!n) { cv.style.display = "none"; note.textContent = "no probabilities for this layer/head"; return; }
  cv.style.display = "";
  var px = Math.max(1, Math.floor(320 / T));
  cv.width = T * px; cv.height = T * px;
  var ctx = cv.getContext("2d"), img = ctx.createImageData(T * px, T * px), d = img.data;
  for (var i = 0; i < T; i++)
    for (var j = 0; j < T; j++) {
      var v = Math.sqrt(m[i * T + j] / n), hl = i === sel.row && sel.stat === "row";
      var r = 255 - v * 25, g = 255 - v * 170, b = 255 - v * 242;
      if (hl) { r = Math.min(r, 200); g = Math.min(g, 220); b = 255; }
      for (var y = 0; y < px; y++)
        for (var x2 = 0; x2 < px; x2++) {
          var o = ((i * px + y) * T * px + j * px + x2) * 4;
          d[o] = r; d[o + 1] = g; d[o + 2] = b; d[o + 3] = 255;
        }
    }
  ctx.putImageData(img, 0, 0);
  cv.style.width = Math.min(T * px, 320) * (px === 1 && T < 160 ? 2 : 1) + "px";
  note.textContent = "rows: queries, columns: keys (sqrt scale); layer " + (sel.layer < 0 ? "mean" : sel.layer) +
    ", head " + (sel.head < 0 ? "mean" : sel.head) + "; click a row to show it on the text";
  cv.onclick = function (ev) {
    var rect = cv.getBoundingClientRect(), i = Math.floor((ev.clientY - rect.top) / rect.height * T);
    if (i >= 0 && i < T) clickToken(i);
  };
}
function fillSelect(s, opts, val) {
  s.textContent = "";
  opts.forEach(function (o) {
    var op = el("option", null, o[1]);
    op.value = o[0];
    if (o[2]) op.disabled = true;
    s.appendChild(op);
  });
  s.value = val;
}
function showDoc(k) {
  D = prep(DATA.docs[k]);
  cache = {};
  sel = {stat: D.init.stat, layer: D.init.layer, head: D.init.head, row: -1};
  if (!available(sel.stat)) sel.stat = D.ent ? "corrected" : "score";
  var st = [];
  Object.keys(STATS).forEach(function (s) { st.push([s, STATS[s][0] + (available(s) ? "" : " (absent)"), !available(s)]); });
  fillSelect($("stat"), st, sel.stat);
  var ls = [[-1, "all (mean)"]], hs = [[-1, "mean"]];
  for (var l = 0; l < (D.L || 0); l++) ls.push([l, String(l)]);
  for (var h = 0; h < (D.H || 0); h++) hs.push([h, String(h)]);
  fillSelect($("layer"), ls, sel.layer);
  fillSelect($("head"), hs, sel.head);
  var P = D.prunings || [], po = P.map(function (p, k) { return [k, p.name]; });
  if (P.length > 1) po.unshift([-1, "compare all " + P.length + " (kept by all / some: wavy / none: struck)"]);
  fillSelect($("pruning"), po, P.length > 1 ? -1 : 0);
  $("prunlab").style.display = P.length ? "" : "none";
  body.setAttribute("data-prunings", P.map(function (p) { return p.name; }).join(" | "));
  choosePruning(P.length > 1 ? -1 : 0);
  var info = [D.id + ": " + D.T + " tokens"];
  if (D.L) info.push(D.L + " layers x " + D.H + " heads" + (D.causal ? ", causal" : ", bidirectional") + (D.window ? ", window " + D.window : ""));
  if (D.dropped && !D.cmp) info.push(D.dropped.length + " dropped span" + (D.dropped.length === 1 ? "" : "s"));
  if (P.length > 1) info.push(P.length + " prunings");
  if (D.probsNote) info.push(D.probsNote);
  $("info").textContent = info.join(" · ");
  buildHeads();
  buildBlocks();
  render();
  retint();
}
/* #perf: how long the rest of the text takes to render, chunk by
   chunk (the most work one scroll step can cause), and a re-tint of it all */
function perf() {
  var t0 = performance.now(), worst = 0, n = 0;
  chunks.forEach(function (c) {
    if (c.filled) return;
    var t = performance.now();
    fillChunk(c);
    c.div.style.minHeight = "";
    worst = Math.max(worst, performance.now() - t);
    n++;
  });
  var t1 = performance.now();
  sel.layer = Math.min(3, D.L - 1); sel.head = Math.min(1, D.H - 1);
  $("layer").value = sel.layer; $("head").value = sel.head;
  retint();
  var t2 = performance.now();
  body.setAttribute("data-perf", "chunks " + chunks.length + ", rendered later " + n + " in " +
    Math.round(t1 - t0) + " ms (worst chunk " + worst.toFixed(1) + " ms); re-tint of all " + D.T +
    " tokens by one head " + Math.round(t2 - t1) + " ms; spans " + document.querySelectorAll(".t").length);
}
function init() {
  var ds = $("doc");
  fillSelect(ds, DATA.docs.map(function (d, k) { return [k, d.id]; }), 0);
  ds.parentNode.style.display = DATA.docs.length > 1 ? "" : "none";
  $("model").textContent = DATA.model || "";
  if (!DATA.docs.length) { $("status").textContent = "the stream has no documents"; body.setAttribute("data-ready", "1"); return; }
  ds.onchange = function () { showDoc(+ds.value); };
  $("stat").onchange = function () { sel.stat = $("stat").value; if (sel.stat === "row" && sel.row < 0) sel.row = 0; retint(); };
  $("layer").onchange = function () { sel.layer = +$("layer").value; retint(); };
  $("head").onchange = function () { sel.head = +$("head").value; retint(); };
  $("pruning").onchange = function () { choosePruning(+$("pruning").value); render(); retint(); };
  $("jumpq").onclick = function () { var i = questionToken(); if (i >= 0) jumpTo(i); };
  $("jumpd").onclick = function () { var i = nextDropped(); if (i >= 0) jumpTo(i); };
  var tx = $("text");
  tx.addEventListener("mouseover", function (ev) { var t = ev.target.closest(".t"); if (t) showTip(ev, +t.getAttribute("data-i")); });
  tx.addEventListener("mousemove", function (ev) { var t = ev.target.closest(".t"); if (t) showTip(ev, +t.getAttribute("data-i")); });
  tx.addEventListener("mouseout", function () { $("tip").style.display = "none"; });
  tx.addEventListener("click", function (ev) { var t = ev.target.closest(".t"); if (t) clickToken(+t.getAttribute("data-i")); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && sel.stat === "row") clickToken(sel.row); });
  var k0 = TEST["test-doc"] ? +TEST["test-doc"] : 0;
  ds.value = k0;
  showDoc(k0);
  if (TEST["test-stat"]) { $("stat").value = TEST["test-stat"]; $("stat").onchange(); }
  if (TEST["test-click"]) {
    var lh = TEST["test-click"].split(",");
    var td = document.querySelector('#heads td[data-l="' + (+lh[0]) + '"][data-h="' + (+lh[1]) + '"]');
    if (!td) fail("test-click: no head cell " + TEST["test-click"]);
    else td.click();
  }
  if (TEST["test-token"]) clickToken(+TEST["test-token"]);
  if (TEST["test-pruning"]) { $("pruning").value = TEST["test-pruning"]; $("pruning").onchange(); }
  if (TEST["test-jump"] === "question") $("jumpq").onclick();
  if (TEST["test-jump"] === "dropped") { $("jumpd").onclick(); $("jumpd").onclick(); }
  if (TEST["test-hover"]) showTip({clientX: 200, clientY: 200}, +TEST["test-hover"]);
  body.setAttribute("data-ready-ms", Math.round(performance.now()));
  if ("perf" in TEST) perf();
  body.setAttribute("data-ready", "1");
}
init();
})();
