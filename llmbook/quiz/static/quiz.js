/*
 * 「大規模言語モデル入門」章末クイズ: Web サイト (カーネルなし) 用の描画と採点。
 *
 * 採点規則は llmbook/quiz/grading.py と同じ (tests/test_grading_parity.py が同じ事例を
 * 両方に通して確かめる)。問題データはページに埋め込まれた JSON から読み、表示には
 * textContent だけを使う (問題文や回答に HTML が含まれていても解釈しない)。
 * 記録はブラウザの localStorage に保存し、壊れていたら退避してから空で始める。
 * Node.js からは require() で採点関数だけを使える。
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  } else {
    root.LLMBookQuiz = api;
    if (typeof document !== "undefined") {
      if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", api.init);
      } else {
        api.init();
      }
    }
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var MAX_SHORT = 200, MAX_NUMERIC = 50, MAX_ESSAY = 4000;
  var AUTO_TYPES = ["single", "multi", "numeric", "short", "matching", "ordering", "code"];
  var IGNORED = " \t\r\n\u3000・-‐‑‒–—―−ー_「」『』。、，．,.()（）";
  var NUM_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
  var PAREN_RE = /^(.+?)\((.+)\)$/;
  var FRAC_RE = /^([+-]?\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/;
  var LETTERS = "ABCDEFGHIJKL";
  var STORE_KEY = "llmbook-progress-v1";

  // ------------------------------------------------------------ 採点 (grading.py と同じ規則)
  function cpLen(s) { return Array.from(s).length; }
  function isInt(x) { return typeof x === "number" && Number.isInteger(x); }
  // Python の f"{x:g}" と同じ表記 (有効数字 6 桁、指数が -4 未満か 6 以上なら 1e-06 の形)
  function fmt(x) {
    if (Number.isInteger(x)) return String(x);
    var parts = x.toExponential(5).split("e"), exp = parseInt(parts[1], 10);
    if (exp >= -4 && exp < 6) return String(Number(x.toPrecision(6)));
    var mantissa = parts[0].replace(/\.?0+$/, "");
    return mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
  }
  function mark(status) { return { correct: "○ 正解", partial: "△ 一部正解", incorrect: "× 不正解" }[status]; }
  function result(status, score, message, details) {
    return { status: status, score: score, message: message, details: details || [], explanation: "" };
  }
  function invalid(msg) { return result("invalid", 0, msg); }

  function normalizeText(s) {
    s = s.normalize("NFKC").toLowerCase();
    var out = "";
    for (var ch of s) {
      if (IGNORED.indexOf(ch) >= 0) continue;
      var code = ch.codePointAt(0);
      if (code >= 0x3041 && code <= 0x3096) ch = String.fromCodePoint(code + 0x60);
      out += ch;
    }
    return out;
  }

  function parseNumber(text) {
    var s = text.normalize("NFKC").trim().split(",").join("").split("_").join("").split(" ").join("");
    s = s.split("−").join("-");
    if (s.slice(-1) === "%") {
      var p = s.length > 1 && s.slice(-2, -1) !== "%" ? parseNumber(s.slice(0, -1)) : null;
      return p === null ? null : p / 100;
    }
    var v;
    if (NUM_RE.test(s)) {
      v = parseFloat(s);
    } else {
      var m = FRAC_RE.exec(s);
      if (!m) return null;
      var den = parseFloat(m[2]);
      if (den === 0) return null;
      v = parseFloat(m[1]) / den;
    }
    return isFinite(v) ? v : null;
  }

  function gradeSingle(q, r) {
    var n = q.choices.length;
    if (r === null || r === undefined) return invalid("選択肢を 1 つ選んでください。");
    if (!isInt(r) || r < 0 || r >= n) return invalid("回答は 0〜" + (n - 1) + " の選択肢番号 (整数) で渡してください。");
    var c = q.choices[r];
    var status = c.correct ? "correct" : "incorrect";
    var details = ["あなたの選択「" + c.text + "」: " + c.why];
    if (!c.correct) {
      var right = q.choices.filter(function (x) { return x.correct; })[0];
      details.push("正解「" + right.text + "」: " + right.why);
    }
    return result(status, c.correct ? 1 : 0, mark(status), details);
  }

  function gradeMulti(q, r) {
    var n = q.choices.length;
    if (!Array.isArray(r) || !r.every(function (i) { return isInt(i) && i >= 0 && i < n; })) {
      return invalid("回答は選んだ選択肢番号 (0〜" + (n - 1) + " の整数) のリストで渡してください。");
    }
    if (new Set(r).size !== r.length) return invalid("同じ選択肢が 2 回選ばれています。");
    if (r.length === 0) return invalid("少なくとも 1 つ選んでください (正解は 1 つ以上あります)。");
    var picked = new Set(r), details = [];
    var nCorrect = q.choices.filter(function (c) { return c.correct; }).length;
    var hits = r.filter(function (i) { return q.choices[i].correct; }).length, misses = r.length - hits;
    q.choices.forEach(function (c, i) {
      var chosen = picked.has(i);
      if (chosen && !c.correct) details.push("「" + c.text + "」は選ぶべきではありません: " + c.why);
      else if (!chosen && c.correct) details.push("「" + c.text + "」も正しい選択肢です: " + c.why);
      else if (chosen) details.push("「" + c.text + "」○: " + c.why);
    });
    // 得点 = max(0, (正しく選んだ数 − 誤って選んだ数) / 正解の数)。全部に印を付けると 0 点になる
    var score = Math.max(0, (hits - misses) / nCorrect);
    var status = hits === nCorrect && misses === 0 ? "correct" : (score > 0 ? "partial" : "incorrect");
    if (status !== "correct") details.push("得点の付け方: (正しく選んだ数 " + hits + " − 誤って選んだ数 " + misses + ") ÷ 正解の数 " + nCorrect + " (0 未満は 0 点)。当てずっぽうに多く選ぶと、誤りの分だけ減ります。");
    return result(status, score, mark(status) + " (正解 " + nCorrect + " 個のうち " + hits + " 個を選び、誤りを " + misses + " 個選んだ)", details);
  }

  function gradeNumeric(q, r) {
    var value;
    if (r === null || r === undefined || typeof r === "boolean") return invalid("数値を入力してください。");
    if (typeof r === "number") {
      if (!isFinite(r)) return invalid("有限の数値を入力してください。");
      value = r;
    } else if (typeof r === "string") {
      if (!r.trim()) return invalid("数値を入力してください (空欄です)。");
      if (cpLen(r) > MAX_NUMERIC) return invalid("入力が長すぎます (" + cpLen(r) + " 文字、上限 " + MAX_NUMERIC + " 文字)。数値だけを入力してください。");
      value = parseNumber(r);
      if (value === null) return invalid("数値として読めません。例: 8、0.5、1e-3、2/3、50% のように入力してください。");
    } else {
      return invalid("回答は数値か数値の文字列で渡してください。");
    }
    var near = function (t) { return Math.abs(value - t) <= q.tolerance + 1e-9 * Math.max(1, Math.abs(t)); };
    var ok = near(q.answer);
    var status = ok ? "correct" : "incorrect";
    var unit = q.unit || "";
    var details = ok ? [] : ["あなたの答え " + fmt(value) + unit + " は、正解 " + fmt(q.answer) + unit +
      (q.tolerance ? " (許容誤差 ±" + fmt(q.tolerance) + ")" : "") + " と違います。"];
    // よくある誤答には、なぜ違うかを添える (grading.py と同じ)
    var hint = ok ? null : (q.hints || []).filter(function (h) { return near(h.value); })[0];
    if (hint) details.push(hint.why);
    return result(status, ok ? 1 : 0, mark(status), details);
  }

  function gradeShort(q, r) {
    if (r === null || r === undefined || (typeof r === "string" && !r.trim())) return invalid("答えを入力してください (空欄です)。");
    if (typeof r !== "string") return invalid("回答は文字列で渡してください。");
    if (cpLen(r) > MAX_SHORT) return invalid("入力が長すぎます (" + cpLen(r) + " 文字、上限 " + MAX_SHORT + " 文字)。用語だけを入力してください。");
    var got = normalizeText(r);
    if (!got) return invalid("記号と空白だけでは答えになりません。");
    // よくある誤答 (例: 「カジュアルマスク」) は、なぜ違うかを添えて不正解にする
    var wrong = (q.rejects || []).filter(function (w) { return normalizeText(w.answer) === got; })[0];
    if (wrong) return result("incorrect", 0, mark("incorrect"), ["「" + wrong.answer + "」: " + wrong.why, "正解の例: " + q.answers.slice(0, 3).join(" / ")]);
    var accepted = q.answers.map(normalizeText);
    var ok = accepted.indexOf(got) >= 0;
    // 「RNN (リカレントニューラルネットワーク)」のように、かっこの外と中がどちらも正解の表記なら正解
    var m = PAREN_RE.exec(r.normalize("NFKC").trim());
    if (!ok && m) ok = accepted.indexOf(normalizeText(m[1])) >= 0 && accepted.indexOf(normalizeText(m[2])) >= 0;
    var status = ok ? "correct" : "incorrect";
    return result(status, ok ? 1 : 0, mark(status), ok ? [] : ["正解の例: " + q.answers.slice(0, 3).join(" / ")]);
  }

  function gradeMatching(q, r) {
    var n = q.pairs.length;
    if (!Array.isArray(r) || r.length !== n) return invalid("回答は " + n + " 個の要素を持つリスト (左の各項目に選んだ説明の番号) で渡してください。");
    if (r.some(function (x) { return x === null || x === undefined; })) return invalid("まだ選んでいない項目があります。すべての項目に説明を選んでください。");
    if (!r.every(function (x) { return isInt(x) && x >= 0 && x < n; })) return invalid("説明の番号は 0〜" + (n - 1) + " の整数で渡してください。");
    var right = 0, details = [];
    r.forEach(function (x, i) {
      if (x === i) right += 1;
      else details.push("「" + q.pairs[i].left + "」の説明は「" + q.pairs[i].right + "」です。");
    });
    var status = right === n ? "correct" : (right > 0 ? "partial" : "incorrect");
    return result(status, right / n, mark(status) + " (" + right + "/" + n + " 組が正しい対応)", details);
  }

  function gradeOrdering(q, r) {
    var n = q.items.length;
    var okShape = Array.isArray(r) && r.length === n && r.every(isInt) &&
      r.slice().sort(function (a, b) { return a - b; }).every(function (x, i) { return x === i; });
    if (!okShape) return invalid("回答は 0〜" + (n - 1) + " をちょうど 1 回ずつ含む並び (リスト) で渡してください。");
    var right = r.filter(function (x, i) { return x === i; }).length;
    var status = right === n ? "correct" : (right > 0 ? "partial" : "incorrect");
    var details = [];
    if (status !== "correct") {
      var first = r.findIndex(function (x, i) { return x !== i; });
      details.push((first + 1) + " 番目は「" + q.items[first] + "」です。");
      details.push("正しい順: " + q.items.join(" → "));
      details.push("得点の付け方: 正しい位置 (何番目か) に置けた項目の数 ÷ 項目の数 = " + right + "/" + n + "。前後関係ではなく、それぞれの位置が合っているかで数えます。");
    }
    return result(status, right / n, mark(status) + " (" + right + "/" + n + " 個が正しい位置)", details);
  }

  function gradeEssay(q, r) {
    if (!r || typeof r !== "object" || Array.isArray(r) || !("text" in r)) {
      return invalid("記述問題の回答は {'text': 自分の答え, 'ticked': [押さえた要点の番号]} で渡してください。");
    }
    if (typeof r.text !== "string" || !r.text.trim()) return invalid("まず自分の言葉で答えを書いてください。書いてから模範解答と要点を見ます。");
    if (cpLen(r.text) > MAX_ESSAY) return invalid("答えが長すぎます (" + cpLen(r.text) + " 文字、上限 " + MAX_ESSAY + " 文字)。要点をしぼって書き直してください (入力は消えません)。");
    var k = q.key_ideas.length, ticked = r.ticked === undefined ? [] : r.ticked;
    if (!Array.isArray(ticked) || !ticked.every(function (i) { return isInt(i) && i >= 0 && i < k; }) || new Set(ticked).size !== ticked.length) {
      return invalid("押さえた要点は 0〜" + (k - 1) + " の番号のリストで渡してください。");
    }
    return result("self_assessed", ticked.length / k, "自己採点: 要点 " + ticked.length + "/" + k + " 個を押さえた (自動採点ではありません)",
      q.key_ideas.map(function (idea, i) { return (ticked.indexOf(i) >= 0 ? "☑ " : "☐ ") + idea; }));
  }

  var GRADERS = { single: gradeSingle, multi: gradeMulti, numeric: gradeNumeric, short: gradeShort, matching: gradeMatching, ordering: gradeOrdering, essay: gradeEssay };

  function grade(q, r) {
    if (q.type === "code") return invalid("コード課題は Jupyter / Colab でノートブックを実行して採点します (ブラウザでは Python を動かせません)。");
    if (!Object.prototype.hasOwnProperty.call(GRADERS, q.type)) return result("error", 0, "未知の問題の種類です: " + q.type);
    var res = GRADERS[q.type](q, r);
    // 記録される自動採点の結果にだけ、問題の解説を付ける (grading.py の _with_explanation と同じ)
    res.explanation = (res.status !== "invalid" && res.status !== "error" && res.status !== "self_assessed") ? (q.explanation || "") : "";
    return res;
  }

  // ------------------------------------------------------------ 記録 (localStorage)
  var memoryStore = null, storeWarning = "";

  function validStore(d) {
    if (!d || typeof d !== "object" || d.version !== 1 || !d.answers || typeof d.answers !== "object" || Array.isArray(d.answers)) return false;
    return Object.keys(d.answers).every(function (k) {
      var rec = d.answers[k];
      return rec && typeof rec === "object" && typeof rec.score === "number" && rec.score >= 0 && rec.score <= 1 && typeof rec.status === "string";
    });
  }

  function loadStore() {
    if (memoryStore) return memoryStore;
    var empty = { version: 1, answers: {} }, raw = null;
    try { raw = window.localStorage.getItem(STORE_KEY); } catch (e) {
      storeWarning = "このブラウザでは記録を保存できません (この画面を閉じると消えます)。";
      memoryStore = empty;
      return memoryStore;
    }
    if (raw === null) { memoryStore = empty; return memoryStore; }
    var data = null;
    try { data = JSON.parse(raw); } catch (e) { data = null; }
    if (validStore(data)) { memoryStore = data; return memoryStore; }
    try { window.localStorage.setItem(STORE_KEY + "-corrupt", raw); } catch (e) { /* 退避できなくても続ける */ }
    storeWarning = "保存されていた学習記録が壊れていたため、空の記録から始めます (元のデータは " + STORE_KEY + "-corrupt に退避しました)。";
    if (typeof console !== "undefined") console.warn("llmbook: " + storeWarning);
    memoryStore = empty;
    saveStore();
    return memoryStore;
  }

  function saveStore() {
    try { window.localStorage.setItem(STORE_KEY, JSON.stringify(memoryStore)); } catch (e) {
      storeWarning = "記録を保存できませんでした (この画面を閉じると消えます)。";
    }
  }

  function recordResult(chapter, quiz, qid, res, response) {
    if (res.status === "invalid" || res.status === "error") return;
    var store = loadStore(), key = chapter + "/" + quiz + "/" + qid, prev = store.answers[key] || {};
    if (response && typeof response === "object" && typeof response.text === "string") {
      response = { text: response.text.slice(0, MAX_ESSAY), ticked: response.ticked };
    }
    store.answers[key] = {
      status: res.status, score: res.score, best: Math.max(res.score, prev.best || 0),
      attempts: (prev.attempts || 0) + 1, response: response === undefined ? null : response,
      updated: new Date().toISOString().slice(0, 19)
    };
    saveStore();
    document.dispatchEvent(new CustomEvent("llmbook-progress", { detail: { chapter: chapter } }));
  }

  function getRecord(chapter, quiz, qid) { return loadStore().answers[chapter + "/" + quiz + "/" + qid] || null; }

  function resetChapter(chapter) {
    var store = loadStore(), n = 0;
    Object.keys(store.answers).forEach(function (k) {
      if (k.indexOf(chapter + "/") === 0) { delete store.answers[k]; n += 1; }
    });
    saveStore();
    return n;
  }

  // 各問の最高点 (記録の best) と最新の得点の両方を数える。widgets.py の quiz_score() と同じ
  function quizScore(chapter, quizId, questions, countCode) {
    var s = { auto: 0, auto_last: 0, auto_max: 0, self: 0, self_last: 0, self_max: 0, code: 0, answered: 0, total: questions.length };
    questions.forEach(function (q) {
      var rec = getRecord(chapter, quizId, q.id);
      if (q.type === "code" && !countCode) { s.code += 1; return; }
      var kind = AUTO_TYPES.indexOf(q.type) >= 0 ? "auto" : "self";
      s[kind + "_max"] += 1;
      if (rec) { s[kind] += typeof rec.best === "number" ? rec.best : rec.score; s[kind + "_last"] += rec.score; s.answered += 1; }
    });
    return s;
  }

  // 得点の表示 (小数 2 桁で四捨五入し、末尾の 0 を省く)。widgets.py の points() と同じ規則。
  function points(x) {
    return (Math.floor(x * 100 + 0.5 + 1e-9) / 100).toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
  }

  function scoreText(s) {
    var parts = [];
    if (s.auto_max) parts.push("自動採点 最高 " + points(s.auto) + " / " + points(s.auto_max) + " 点 (最新 " + points(s.auto_last) + " 点)");
    if (s.self_max) parts.push("記述 (自己採点) 最高 " + points(s.self) + " / " + points(s.self_max) + " 点 (最新 " + points(s.self_last) + " 点)");
    parts.push("回答済み " + s.answered + "/" + (s.total - s.code) + " 問");
    if (s.code) parts.push("コード課題 " + s.code + " 問は Jupyter / Colab で採点");
    return parts.join(" ・ ");
  }

  // ------------------------------------------------------------ 描画 (DOM は textContent だけで組み立てる)
  var uid = 0;
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function multiline(text, cls) {
    var div = el("div", { class: cls || "" });
    text.split("\n").forEach(function (line, i) {
      if (i) div.appendChild(el("br"));
      div.appendChild(document.createTextNode(line));
    });
    return div;
  }
  function onEnter(input, fn) {
    input.addEventListener("keydown", function (e) {
      // 日本語入力の変換確定の Enter では採点しない
      if (e.key === "Enter" && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); fn(); }
    });
  }

  function showFeedback(box, res) {
    box.textContent = "";
    box.className = "llmbook-feedback llmbook-" + res.status;
    box.appendChild(el("strong", { text: res.message }));
    if (res.details.length) box.appendChild(el("ul", {}, res.details.map(function (d) { return el("li", { text: d }); })));
    if (res.explanation) box.appendChild(el("div", { class: "llmbook-explanation", text: "解説: " + res.explanation }));
  }

  function previousText(rec) {
    if (!rec) return "";
    var label = { correct: "○ 正解", partial: "△ 一部正解", incorrect: "× 不正解", self_assessed: "自己採点" }[rec.status] || rec.status;
    var best = typeof rec.best === "number" ? rec.best : rec.score;
    return "前回の記録: " + label + " (最新の得点 " + points(rec.score) + "、最高 " + points(best) + "、挑戦 " + rec.attempts + " 回)";
  }

  function renderQuestion(data, q, onGraded) {
    var id = "llmbook-q-" + (++uid);
    var feedback = el("div", { class: "llmbook-feedback", "aria-live": "polite", role: "status" });
    var prev = el("div", { class: "llmbook-previous", text: previousText(getRecord(data.chapter, data.quiz, q.id)) });
    var section = el("section", { class: "llmbook-q", "aria-labelledby": id + "-prompt", "data-qid": q.id, "data-type": q.type });
    var prompt = multiline(q.prompt, "llmbook-prompt");
    prompt.id = id + "-prompt";
    section.appendChild(prompt);
    if (q.ref) {
      var ref = el("div", { class: "llmbook-ref" }, ["関連する章: "]);
      (q.ref_links || [[q.ref, null]]).forEach(function (link, i) {
        if (i) ref.appendChild(document.createTextNode("・"));
        ref.appendChild(link[1] ? el("a", { href: link[1], text: link[0] }) : el("span", { text: link[0] + " (準備中)" }));
      });
      section.appendChild(ref);
    }
    var getResponse, submit = el("button", { type: "button", class: "llmbook-btn llmbook-submit", text: "採点する" });

    function doSubmit() {
      var response = getResponse();
      var res = grade(q, response);
      showFeedback(feedback, res);
      recordResult(data.chapter, data.quiz, q.id, res, response);
      if (res.status !== "invalid" && res.status !== "error") prev.textContent = "";
      onGraded();
    }
    submit.addEventListener("click", doSubmit);

    if (q.type === "single" || q.type === "multi") {
      var kind = q.type === "single" ? "radio" : "checkbox";
      var inputs = [];
      var fs = el("fieldset", { class: "llmbook-choices" }, [el("legend", { class: "llmbook-sr", text: q.type === "single" ? "選択肢 (1 つ選ぶ)" : "選択肢 (当てはまるものをすべて選ぶ)" })]);
      // 表示順は Python (bank.py) が問題 id から決めた q.order。値は選択肢の元の番号なので、採点は位置に左右されない
      q.order.forEach(function (j, k) {
        var input = el("input", { type: kind, name: id, id: id + "-" + k, value: String(j) });
        inputs.push(input);
        fs.appendChild(el("div", { class: "llmbook-choice" }, [input, el("label", { for: id + "-" + k, text: LETTERS[k] + ". " + q.choices[j].text })]));
      });
      if (q.type === "multi") section.appendChild(el("div", { class: "llmbook-note", text: "当てはまるものをすべて選びます。" }));
      section.appendChild(fs);
      getResponse = function () {
        var picked = inputs.filter(function (x) { return x.checked; }).map(function (x) { return Number(x.value); });
        return q.type === "single" ? (picked.length ? picked[0] : null) : picked.sort(function (a, b) { return a - b; });
      };
    } else if (q.type === "numeric" || q.type === "short") {
      var input = el("input", {
        type: "text", id: id + "-input", class: "llmbook-input", autocomplete: "off",
        placeholder: q.type === "numeric" ? "数値 (例: 8、0.5、2/3、50%)" : (q.placeholder || "答えを入力")
      });
      onEnter(input, doSubmit);
      section.appendChild(el("div", { class: "llmbook-row" }, [el("label", { for: id + "-input", text: "答え: " }), input, q.unit ? el("span", { text: " " + q.unit }) : null]));
      getResponse = function () { return input.value; };
    } else if (q.type === "matching") {
      section.appendChild(el("div", { text: q.right_label + ":" }));
      section.appendChild(el("ul", { class: "llmbook-rights" }, q.order.map(function (j, k) {
        return el("li", {}, [el("strong", { text: LETTERS[k] + ". " }), q.pairs[j].right]);
      })));
      section.appendChild(el("div", { class: "llmbook-note", text: q.left_label + "ごとに、合う記号を選びます。" }));
      var selects = q.pairs.map(function (p, i) {
        var sel = el("select", { id: id + "-m" + i }, [el("option", { value: "", text: "—" })].concat(
          q.order.map(function (j, k) { return el("option", { value: String(j), text: LETTERS[k] }); })));
        section.appendChild(el("div", { class: "llmbook-row" }, [sel, " ", el("label", { for: id + "-m" + i, text: p.left })]));
        return sel;
      });
      getResponse = function () { return selects.map(function (s) { return s.value === "" ? null : Number(s.value); }); };
    } else if (q.type === "ordering") {
      var current = q.order.slice();
      var list = el("ol", { class: "llmbook-order" });
      var draw = function (focusPos, focusDir) {
        list.textContent = "";
        current.forEach(function (idx, pos) {
          var up = el("button", { type: "button", class: "llmbook-btn llmbook-small", "aria-label": q.items[idx] + " を上へ", text: "↑" });
          var down = el("button", { type: "button", class: "llmbook-btn llmbook-small", "aria-label": q.items[idx] + " を下へ", text: "↓" });
          up.disabled = pos === 0; down.disabled = pos === current.length - 1;
          up.addEventListener("click", function () { move(pos, -1); });
          down.addEventListener("click", function () { move(pos, 1); });
          list.appendChild(el("li", {}, [up, down, " ", el("span", { text: q.items[idx] })]));
          if (pos === focusPos) (focusDir < 0 ? (pos === 0 ? down : up) : (pos === current.length - 1 ? up : down)).focus();
        });
      };
      var move = function (pos, d) {
        var j = pos + d;
        if (j < 0 || j >= current.length) return;
        var t = current[pos]; current[pos] = current[j]; current[j] = t;
        draw(j, d);
      };
      draw(-1, 0);
      section.appendChild(el("div", { class: "llmbook-note", text: "↑ ↓ のボタンで並べ替えます (Tab で移動、Enter/Space で押す)。" }));
      section.appendChild(list);
      getResponse = function () { return current.slice(); };
    } else if (q.type === "essay") {
      var rec = getRecord(data.chapter, data.quiz, q.id);
      var ta = el("textarea", { id: id + "-essay", rows: "5", class: "llmbook-textarea", placeholder: "まず自分の言葉で書いてみましょう" });
      if (rec && rec.response && typeof rec.response.text === "string") ta.value = rec.response.text;
      var answerBox = el("div", { class: "llmbook-model", hidden: "hidden" });
      var ideaInputs = q.key_ideas.map(function (idea, i) {
        return el("input", { type: "checkbox", id: id + "-k" + i });
      });
      answerBox.appendChild(el("div", {}, [el("strong", { text: "模範解答" })]));
      answerBox.appendChild(multiline(q.model_answer));
      answerBox.appendChild(el("div", {}, [el("strong", { text: "自己採点 (自動採点ではありません)" }), ": 自分の答えに入っていた要点に ☑ を付けます。"]));
      q.key_ideas.forEach(function (idea, i) {
        answerBox.appendChild(el("div", { class: "llmbook-choice" }, [ideaInputs[i], el("label", { for: id + "-k" + i, text: idea })]));
      });
      var reveal = el("button", { type: "button", class: "llmbook-btn", text: "模範解答と要点を見る" });
      submit.textContent = "自己採点を記録";
      submit.hidden = true;
      reveal.addEventListener("click", function () {
        if (!ta.value.trim()) {
          showFeedback(feedback, invalid("まず自分の言葉で答えを書いてください。書いてから模範解答と要点を見ます。"));
          ta.focus();
          return;
        }
        answerBox.hidden = false;
        submit.hidden = false;
        feedback.textContent = "";
        feedback.className = "llmbook-feedback";
      });
      section.appendChild(el("label", { for: id + "-essay", class: "llmbook-sr", text: "あなたの答え" }));
      section.appendChild(ta);
      section.appendChild(el("div", { class: "llmbook-row" }, [reveal]));
      section.appendChild(answerBox);
      getResponse = function () {
        return { text: ta.value, ticked: ideaInputs.map(function (x, i) { return x.checked ? i : -1; }).filter(function (i) { return i >= 0; }) };
      };
    } else if (q.type === "code") {
      section.appendChild(el("div", { class: "llmbook-note", text: "コード課題: 下のひな形を Jupyter / Colab で完成させ、ノートブックの同じクイズの「採点する」で採点します (Web サイトでは Python を実行できないため、ここではヒントと解答例だけを見られます)。" }));
      section.appendChild(el("pre", { class: "llmbook-code", text: q.starter }));
      var extra = el("div", { class: "llmbook-extra" });
      var hint = el("button", { type: "button", class: "llmbook-btn", text: "ヒント" });
      var sol = el("button", { type: "button", class: "llmbook-btn", text: "解答例を見る" });
      hint.addEventListener("click", function () { extra.textContent = ""; extra.appendChild(el("strong", { text: "ヒント: " })); extra.appendChild(document.createTextNode(q.hint)); });
      sol.addEventListener("click", function () { extra.textContent = ""; extra.appendChild(el("strong", { text: "解答例" })); extra.appendChild(el("pre", { class: "llmbook-code", text: q.solution })); });
      section.appendChild(el("div", { class: "llmbook-row" }, [hint, " ", sol]));
      section.appendChild(extra);
      section.appendChild(prev);
      return section;
    }
    section.appendChild(el("div", { class: "llmbook-row" }, [submit]));
    section.appendChild(feedback);
    section.appendChild(prev);
    return section;
  }

  function renderQuiz(container) {
    var script = container.querySelector("script.llmbook-quiz-data");
    var data;
    try { data = JSON.parse(script.textContent); } catch (e) {
      container.appendChild(el("div", { class: "llmbook-feedback llmbook-error", text: "クイズのデータを読めませんでした。" }));
      return;
    }
    var old = container.querySelector(".llmbook-quiz-body");
    if (old) old.remove();
    var fallback = container.querySelector(".llmbook-quiz-fallback");
    if (fallback) fallback.remove();
    var body = el("div", { class: "llmbook-quiz-body" });
    body.appendChild(el("div", { class: "llmbook-quiz-title", role: "heading", "aria-level": "4", text: data.title }));
    if (data.intro) body.appendChild(multiline(data.intro, "llmbook-intro"));
    loadStore();
    if (storeWarning) body.appendChild(el("div", { class: "llmbook-warning", role: "alert", text: "⚠ " + storeWarning }));
    var score = el("div", { class: "llmbook-score", "aria-live": "polite" });
    var update = function () { score.textContent = "この小テストの得点: " + scoreText(quizScore(data.chapter, data.quiz, data.questions, false)); };
    data.questions.forEach(function (q) { body.appendChild(renderQuestion(data, q, update)); });
    body.appendChild(score);
    update();
    container.appendChild(body);
  }

  function renderSummary(container) {
    var data;
    try { data = JSON.parse(container.querySelector("script.llmbook-summary-data").textContent); } catch (e) { return; }
    var fallback = container.querySelector(".llmbook-quiz-fallback");
    if (fallback) fallback.remove();
    var body = el("div", { class: "llmbook-quiz-body" });
    var tbody = el("tbody");
    var total = el("div", { class: "llmbook-score", "aria-live": "polite" });
    var msg = el("div", { class: "llmbook-note", "aria-live": "polite" });
    var armed = false;
    var reset = el("button", { type: "button", class: "llmbook-btn llmbook-warn", text: "この章の記録をリセット" });
    var refresh = function () {
      tbody.textContent = "";
      var tot = { auto: 0, auto_last: 0, auto_max: 0, self: 0, self_last: 0, self_max: 0, code: 0, answered: 0, total: 0 };
      data.quizzes.forEach(function (qz) {
        var s = quizScore(data.chapter, qz.id, qz.questions, false);
        Object.keys(tot).forEach(function (k) { tot[k] += s[k]; });
        tbody.appendChild(el("tr", {}, [el("td", { text: qz.title }), el("td", { text: scoreText(s) })]));
      });
      var pct = tot.auto_max ? Math.floor(100 * tot.auto / tot.auto_max + 0.5 + 1e-9) + "%" : "—";
      total.textContent = "章の合計: " + scoreText(tot) + " (自動採点の正答率 " + pct + "、各問の最高点で)";
    };
    reset.addEventListener("click", function () {
      if (!armed) {
        armed = true;
        reset.textContent = "本当に消す? もう一度押す";
        msg.textContent = "もう一度押すと、このブラウザに保存したこの章の記録を消します。";
        return;
      }
      var n = resetChapter(data.chapter);
      armed = false;
      reset.textContent = "この章の記録をリセット";
      msg.textContent = n + " 件の記録を消しました。";
      document.querySelectorAll('.llmbook-quiz[data-chapter="' + data.chapter + '"]').forEach(renderQuiz);
      refresh();
    });
    body.appendChild(el("div", { class: "llmbook-quiz-title", role: "heading", "aria-level": "4", text: data.title + ": 得点のまとめ" }));
    body.appendChild(el("table", { class: "llmbook-summary-table" }, [
      el("thead", {}, [el("tr", {}, [el("th", { text: "小テスト" }), el("th", { text: "得点" })])]), tbody]));
    body.appendChild(total);
    body.appendChild(el("div", { class: "llmbook-row" }, [reset]));
    body.appendChild(msg);
    container.appendChild(body);
    refresh();
    document.addEventListener("llmbook-progress", function (e) { if (e.detail.chapter === data.chapter) refresh(); });
  }

  function init() {
    document.querySelectorAll(".llmbook-quiz").forEach(renderQuiz);
    document.querySelectorAll(".llmbook-summary").forEach(renderSummary);
  }

  return { grade: grade, normalizeText: normalizeText, parseNumber: parseNumber, points: points, scoreText: scoreText, init: init,
           _resetMemory: function () { memoryStore = null; storeWarning = ""; } };
});
