/* 「大規模言語モデル入門」A-5: アテンションの行き先を見る静的ページ版 (カーネルなし)。
 * セルの HTML は llmbook/attn_explorer.py の grid_html と同じ文字列を作る (テストで突き合わせる)。
 * HTML の script 要素に埋め込まれ、llmbookAttn.mount(id) が 1 つの表示を動かす。
 * Node.js からは require して gridHtml / color / fmt を呼べる。 */
var llmbookAttn = (function () {
  "use strict";

  // attn_explorer.py の LIGHT, DARK, WHITE_TEXT_FROM, SHOW と同じ値
  var LIGHT = [255, 255, 255], DARK = [8, 48, 107], WHITE_TEXT_FROM = 660;
  var SHOW = { " ": "␣", "\u3000": "␣", "\n": "⏎", "\t": "⇥" };

  function esc(s) {  // Python の html.escape(s, quote=True) と同じ
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
  }

  function show(c) { return Object.prototype.hasOwnProperty.call(SHOW, c) ? SHOW[c] : c; }

  function fmt(m) {  // 1/1000 単位の整数 -> 小数 3 桁
    var r = String(m % 1000);
    while (r.length < 3) { r = "0" + r; }
    return String(Math.floor(m / 1000)) + "." + r;
  }

  function hex2(v) { var h = v.toString(16); return h.length < 2 ? "0" + h : h; }

  function color(m) {  // [背景色, 文字色]
    var bg = "#";
    for (var i = 0; i < 3; i++) {
      bg += hex2(LIGHT[i] - Math.floor((LIGHT[i] - DARK[i]) * m / 1000));
    }
    return [bg, m >= WHITE_TEXT_FROM ? "#fff" : "#000"];
  }

  function top(row) {
    var best = 0;
    for (var k = 0; k < row.length; k++) { if (row[k] > row[best]) { best = k; } }
    return best;
  }

  function statusText(data, s, q) {
    var tokens = data.sentences[s].tokens;
    return "クエリ: 位置 " + q + "「" + show(tokens[q]) + "」。各セルは、このトークンから各位置への重み";
  }

  function gridHtml(data, s, q) {
    var entry = data.sentences[s], tokens = entry.tokens, parts = [];
    for (var l = 0; l < data.layers; l++) {
      parts.push('<div class="llmbook-attn-layer"><div class="llmbook-attn-lname">層 ' + l +
        '</div><div class="llmbook-attn-heads">');
      for (var h = 0; h < data.heads; h++) {
        var row = entry.w[l][h][q];
        parts.push('<div class="llmbook-attn-cell" role="group" aria-label="層 ' + l + "・ヘッド " +
          h + '"><div class="llmbook-attn-hname">ヘッド ' + h + "</div>" +
          '<div class="llmbook-attn-keys">');
        for (var k = 0; k < tokens.length; k++) {
          var tok = esc(show(tokens[k]));
          var mark = k === q ? " llmbook-attn-q" : "";
          if (k < row.length) {
            var c = color(row[k]);
            parts.push('<span class="llmbook-attn-k' + mark + '" style="background:' + c[0] +
              ";color:" + c[1] + '" title="位置 ' + k + "「" + tok + "」: " + fmt(row[k]) + '">' +
              tok + "</span>");
          } else {
            parts.push('<span class="llmbook-attn-k llmbook-attn-m' + mark + '" title="位置 ' + k +
              "「" + tok + '」: 因果マスクで見えない">' + tok + "</span>");
          }
        }
        var t = top(row);
        parts.push('</div><div class="llmbook-attn-top">最大 ' + fmt(row[t]) + ": 位置 " + t +
          "「" + esc(show(tokens[t])) + "」</div></div>");
      }
      parts.push("</div></div>");
    }
    return parts.join("");
  }

  function mount(id) {
    var root = document.getElementById(id);
    if (!root || root.getAttribute("data-ready") === "1") { return; }
    var data = JSON.parse(root.querySelector("script.llmbook-attn-data").textContent);
    var select = root.querySelector("select.llmbook-attn-sent");
    var group = root.querySelector(".llmbook-attn-tokens");
    var status = root.querySelector(".llmbook-attn-status");
    var grid = root.querySelector(".llmbook-attn-grid");
    var s = 0, q = data.sentences[0].tokens.length - 1;

    function buttons() { return group.querySelectorAll("button.llmbook-attn-tok"); }

    function draw() {
      var bs = buttons();
      for (var k = 0; k < bs.length; k++) {
        bs[k].setAttribute("aria-pressed", k === q ? "true" : "false");
        bs[k].tabIndex = k === q ? 0 : -1;  // Tab で 1 度入り、矢印キーで動く
      }
      status.textContent = statusText(data, s, q);
      grid.innerHTML = gridHtml(data, s, q);
    }

    function setSentence(i) {
      s = i;
      var tokens = data.sentences[s].tokens;
      q = tokens.length - 1;
      group.textContent = "";
      for (var k = 0; k < tokens.length; k++) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "llmbook-attn-tok";
        b.setAttribute("data-pos", String(k));
        b.setAttribute("aria-pressed", "false");
        b.setAttribute("aria-label", "位置 " + k + "「" + show(tokens[k]) + "」");
        b.textContent = show(tokens[k]);
        group.appendChild(b);
      }
      draw();
    }

    group.addEventListener("click", function (ev) {
      var b = ev.target.closest ? ev.target.closest("button.llmbook-attn-tok") : null;
      if (!b || !group.contains(b)) { return; }
      q = Number(b.getAttribute("data-pos"));
      draw();
    });
    group.addEventListener("keydown", function (ev) {
      var n = data.sentences[s].tokens.length, next = q;
      if (ev.key === "ArrowRight" || ev.key === "ArrowDown") { next = Math.min(n - 1, q + 1); }
      else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") { next = Math.max(0, q - 1); }
      else if (ev.key === "Home") { next = 0; }
      else if (ev.key === "End") { next = n - 1; }
      else { return; }
      ev.preventDefault();
      q = next;
      draw();
      buttons()[q].focus();
    });
    select.addEventListener("change", function () {
      var i = Math.round(Number(select.value));
      if (!isFinite(i) || i < 0 || i >= data.sentences.length) { i = 0; }
      setSentence(i);
    });

    select.disabled = false;
    var bs = buttons();
    for (var k = 0; k < bs.length; k++) { bs[k].disabled = false; }
    var note = root.querySelector(".llmbook-attn-nojs");
    if (note) { note.hidden = true; }
    root.setAttribute("data-ready", "1");
    draw();
  }

  return { esc: esc, fmt: fmt, color: color, statusText: statusText, gridHtml: gridHtml,
    mount: mount };
})();

if (typeof module !== "undefined" && module.exports) { module.exports = llmbookAttn; }
