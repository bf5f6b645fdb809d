/* 「大規模言語モデル入門」: テーマのボタンの読み上げ名を、画面に見える文字と合わせる
   (axe-core の label-content-name-mismatch)。
   - 検索のボタン: 見える文字は「検索 Ctrl+K」なのに aria-label は「検索」だけなので、
     aria-label を外し、見える文字そのものを名前にする。
   - 配色のボタン: 見えるのはアイコンだけなので、アイコン (と Font Awesome が中に入れる
     title) を読み上げから外し、日本語の名前を付ける。 */
(function () {
  "use strict";
  function fix() {
    document.querySelectorAll(".search-button__button").forEach(function (b) {
      if (b.textContent.trim()) { b.removeAttribute("aria-label"); }
    });
    document.querySelectorAll(".theme-switch-button").forEach(function (b) {
      b.querySelectorAll("i, svg").forEach(function (i) {
        i.setAttribute("aria-hidden", "true");
        i.removeAttribute("aria-labelledby");
      });
      b.querySelectorAll("svg title").forEach(function (t) { t.remove(); });
      b.setAttribute("aria-label", "配色 (ライト・ダーク・システムの設定) を切り替える");
    });
  }
  /* アイコンの <i> は Font Awesome の JS があとで <svg> (中に title) に置き換えるので、
     読み込みの終わりと、その少しあとにも直す。 */
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fix);
  } else {
    fix();
  }
  window.addEventListener("load", function () { fix(); setTimeout(fix, 300); });
})();
