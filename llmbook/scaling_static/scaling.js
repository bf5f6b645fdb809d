/* 「大規模言語モデル入門」A-3: ソフトマックスのスケーリングを試す静的ページ版 (カーネルなし)。
 * 計算は llmbook/scaling_explorer.py の scaling_stats と同じ式・同じ順序で行う (テストで突き合わせる)。
 * HTML の <script> に埋め込まれ、llmbookScaling.mount(id) が 1 つの表示を動かす。
 * Node.js からは require して stats / fmt を呼べる。 */
var llmbookScaling = (function () {
  "use strict";

  function clampIndex(value, n) {
    var i = Math.round(Number(value));
    if (!isFinite(i)) { i = 0; }
    return Math.min(n - 1, Math.max(0, i));
  }

  // scaling_explorer._stats_from_scores と同じ計算
  function stats(scores, dk, temperature, scaled) {
    var n = scores.length, i, j;
    var div = scaled ? Math.sqrt(dk) : 1.0;
    var logits = [], m = -Infinity;
    for (i = 0; i < n; i++) { logits.push(scores[i] / div / temperature); }
    for (i = 0; i < n; i++) { if (logits[i] > m) { m = logits[i]; } }
    var e = [], total = 0.0;
    for (i = 0; i < n; i++) { e.push(Math.exp(logits[i] - m)); total += e[i]; }
    var p = [];
    for (i = 0; i < n; i++) { p.push(e[i] / total); }
    var entropy = 0.0, maxWeight = 0.0, argmax = 0;
    for (i = 0; i < n; i++) {
      if (p[i] > 0) { entropy -= p[i] * Math.log(p[i]); }
      if (p[i] > maxWeight) { maxWeight = p[i]; argmax = i; }
    }
    // ソフトマックスのヤコビ行列 J = diag(p) - p p^T のフロベニウスノルム
    var acc = 0.0;
    for (i = 0; i < n; i++) {
      for (j = 0; j < n; j++) {
        var v = (i === j ? p[i] : 0.0) - p[i] * p[j];
        acc += v * v;
      }
    }
    var mean = 0.0;
    for (i = 0; i < n; i++) { mean += logits[i]; }
    mean /= n;
    var vs = 0.0;
    for (i = 0; i < n; i++) { vs += (logits[i] - mean) * (logits[i] - mean); }
    return {
      logits: logits, weights: p, entropy: entropy, max_weight: maxWeight, argmax: argmax,
      jacobian_norm: Math.sqrt(acc), logit_std: Math.sqrt(vs / n)
    };
  }

  // scaling_explorer.fmt と同じ表示: 0.001 以上は小数 4 桁、それより小さければ 1.23e-5 の形
  function fmt(x) {
    if (x === 0) { return "0"; }
    if (Math.abs(x) >= 0.001) { return x.toFixed(4); }
    var s = x.toExponential(2).split("e");
    return s[0] + "e" + String(parseInt(s[1], 10));
  }

  function mount(id) {
    var root = document.getElementById(id);
    if (!root || root.getAttribute("data-ready") === "1") { return; }
    var data = JSON.parse(root.querySelector("script.llmbook-scaling-data").textContent);
    var dk = root.querySelector("input.llmbook-scaling-dk");
    var tp = root.querySelector("input.llmbook-scaling-temp");
    var sc = root.querySelector("input.llmbook-scaling-scaled");
    var bars = root.querySelectorAll("rect.llmbook-scaling-bar");
    var label = root.querySelector("text.llmbook-scaling-maxlabel");
    var g = data.geometry;

    function put(name, text) {
      var el = root.querySelector('[data-stat="' + name + '"]');
      if (el) { el.textContent = text; }
    }

    function update() {
      var i = clampIndex(dk.value, data.d_k.length);
      var j = clampIndex(tp.value, data.temperatures.length);
      dk.value = String(i);
      tp.value = String(j);
      var d = data.d_k[i], t = data.temperatures[j];
      var st = stats(data.scores[i], d, t, sc.checked);
      dk.setAttribute("aria-valuetext", "d_k = " + d);
      tp.setAttribute("aria-valuetext", "温度 τ = " + t);
      put("d_k", String(d));
      put("temperature", String(t));
      put("entropy", fmt(st.entropy));
      put("max_weight", fmt(st.max_weight));
      put("jacobian_norm", fmt(st.jacobian_norm));
      put("logit_std", fmt(st.logit_std));
      for (var k = 0; k < bars.length; k++) {
        var h = st.weights[k] * g.height;
        bars[k].setAttribute("y", String(g.base - h));
        bars[k].setAttribute("height", String(h));
        bars[k].setAttribute("fill", k === st.argmax ? data.colors.max : data.colors.bar);
        bars[k].setAttribute("data-weight", String(st.weights[k]));
      }
      if (label) {
        label.setAttribute("x", String(g.left + (st.argmax + 0.5) * g.step));
        label.setAttribute("y", String(g.base - st.max_weight * g.height - 6));
        label.textContent = st.max_weight.toFixed(2);
      }
    }

    dk.disabled = false;
    tp.disabled = false;
    sc.disabled = false;
    dk.addEventListener("input", update);
    dk.addEventListener("change", update);
    tp.addEventListener("input", update);
    tp.addEventListener("change", update);
    sc.addEventListener("change", update);
    var note = root.querySelector(".llmbook-scaling-nojs");
    if (note) { note.hidden = true; }
    root.setAttribute("data-ready", "1");
    update();
  }

  return { stats: stats, fmt: fmt, mount: mount, clampIndex: clampIndex };
})();

if (typeof module !== "undefined" && module.exports) { module.exports = llmbookScaling; }
