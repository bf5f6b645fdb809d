"""カーネルの中で動くクイズ (ipywidgets のコア部品だけを使うので Colab・VS Code でも動く)。

採点は :func:`llmbook.quiz.grading.grade` (Python) が行い、結果は
:class:`~llmbook.quiz.progress.ProgressStore` に残る。
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..book import chapter_links
from .bank import AUTO_TYPES, Bank, Quiz
from .grading import Result, grade
from .progress import ProgressStore, get_store

__all__ = ["QuizWidget", "SummaryWidget", "QuestionWidget"]

LETTERS = "ABCDEFGHIJKL"
_WIDE = W.Layout(width="100%")
_STYLE = {"description_width": "initial"}  # 日本語の長い説明が切れないように
_NONE = -1  # 対応づけのプルダウンの「—」(まだ選んでいない)。None にすると空欄で表示されてしまう
#: コード (ひな形・解答例) の見た目。ウィジェットの HTML の中でも等幅で、背景を付けて本文と区別する
_PRE = (
    "white-space:pre-wrap;font-family:var(--jp-code-font-family,monospace);"
    "font-size:var(--jp-code-font-size,0.9em);background:var(--jp-layout-color2,#f6f8fa);"
    "border:1px solid var(--jp-border-color2,#ddd);border-radius:4px;padding:6px 8px;margin:4px 0"
)
_listeners: list[Callable[[], None]] = []


def _esc(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _html(text: str, **kw) -> W.HTML:
    # 幅は指定しない (縦並びの箱の中では自動で横いっぱいに伸び、枠からはみ出さない)
    return W.HTML(value=text, layout=W.Layout(**kw))


def _button(description: str, **kw) -> W.Button:
    # 日本語の長いラベルが「…」で切れないよう、幅は中身に合わせる
    return W.Button(description=description, layout=W.Layout(width="auto", min_width="6em"), **kw)


_COLORS = {
    "correct": "var(--jp-success-color1, #1a7f37)",
    "partial": "var(--jp-warn-color1, #9a6700)",
    "incorrect": "var(--jp-error-color1, #cf222e)",
    "invalid": "var(--jp-warn-color1, #9a6700)",
    "error": "var(--jp-error-color1, #cf222e)",
    "self_assessed": "var(--jp-brand-color1, #0969da)",
}


def _ref_html(ref: str | None) -> str:
    """関連する章。公開済みの章は同じフォルダのノートブックへのリンクにする。"""
    if not ref:
        return ""
    parts = [f"<a href='{stem}.ipynb' target='_blank'>{label}</a>" if stem else f"{label} (準備中)"
             for label, stem in chapter_links(ref)]
    return f"<div><small>関連する章: {'・'.join(parts)}</small></div>"


def feedback_html(result: Result) -> str:
    color = _COLORS.get(result.status, "inherit")
    parts = [
        f'<div role="status" style="border-left:4px solid {color};padding:4px 8px;margin:4px 0">'
        f'<strong style="color:{color}">{_esc(result.message)}</strong>'
    ]
    if result.details:
        parts.append(
            "<ul style='margin:4px 0'>"
            + "".join(f"<li>{_esc(d)}</li>" for d in result.details)
            + "</ul>"
        )
    if result.explanation:  # grade() が、記録される自動採点の結果にだけ付ける
        parts.append(f"<div>解説: {_esc(result.explanation)}</div>")
    parts.append("</div>")
    return "".join(parts)


def _notify() -> None:
    for fn in list(_listeners):
        try:
            fn()
        except Exception:  # noqa: BLE001 - まとめ表示の失敗でクイズは止めない
            pass


class QuestionWidget:
    """1 問分のウィジェット。``response()`` で今の回答を取り出し、``submit()`` で採点する。"""

    def __init__(self, chapter: str, quiz_id: str, q: dict[str, Any], store: ProgressStore,
                 on_graded: Callable[[], None], namespace: dict | None = None):
        self.chapter, self.quiz_id, self.q, self.store = chapter, quiz_id, q, store
        self.on_graded = on_graded
        self.namespace = namespace
        self.feedback = _html("")
        self.button = _button("採点する", button_style="primary", tooltip="この問題を採点します")
        self.button.on_click(lambda _b: self.submit())
        self.last: Result | None = None
        body = getattr(self, f"_build_{q['type']}")()
        prompt = _html(f"<div><strong>{_esc(q['prompt'])}</strong></div>" + _ref_html(q.get("ref")))
        prev = store.get(chapter, quiz_id, q["id"])
        self.previous = _html(self._previous_text(prev))
        self.box = W.VBox(
            [prompt, *body, self.feedback, self.previous],
            layout=W.Layout(
                border="1px solid var(--jp-border-color2, #ccc)",
                padding="6px", margin="6px 0", width="auto", overflow="visible",
            ),
        )
        if prev and q["type"] == "essay" and isinstance(prev.get("response"), dict):
            self.text.value = str(prev["response"].get("text", ""))

    # -------------------------------------------------------------- 種類ごとの部品
    def _choice_list(self) -> W.HTML:
        # 表示順は bank.py が問題 id から決めた q["order"] (Web サイトと同じ順)。
        # 記号 A, B, … は表示位置に付く
        choices = self.q["choices"]
        rows = "".join(f"<li><strong>{LETTERS[k]}.</strong> {_esc(choices[j]['text'])}</li>"
                       for k, j in enumerate(self.q["order"]))
        return _html(f"<ul style='list-style:none;padding-left:0'>{rows}</ul>")

    def _build_single(self):
        order, choices = self.q["order"], self.q["choices"]
        # 値は選択肢の元の番号 (採点は選択肢そのもので行い、表示位置には左右されない)
        self.picker = W.ToggleButtons(
            options=[(LETTERS[k], j) for k, j in enumerate(order)], index=None,
            button_style="info",  # 色は最初から決めておく (押した後で変えると 2 回目から効く)
            # 記号と ✓ の印が並んで収まる幅
            style={"button_width": "5em", "description_width": "initial"},
            tooltips=[choices[j]["text"][:80] for j in order],
        )
        self.chosen = _html("")
        self.picker.observe(lambda _change: self._mark_choice(), names="value")
        return [
            self._choice_list(), W.HBox([W.Label("答え:"), self.picker, self.chosen]),
            W.HBox([self.button]),
        ]

    def _mark_choice(self):
        """選んだボタンを見間違えないよう、✓ の印と「選んだ答え: B」を出す。

        押された色だけでは薄い。
        """
        value = self.picker.value
        self.picker.icons = ["check" if j == value else "" for j in self.q["order"]]
        k = self.q["order"].index(value) if value is not None else None
        self.chosen.value = "" if k is None else f"<strong>選んだ答え: {LETTERS[k]}</strong>"

    def _build_multi(self):
        self.checks = [
            W.Checkbox(
                description=LETTERS[k], indent=False, layout=W.Layout(width="4em"), style=_STYLE
            )
            for k in range(len(self.q["order"]))
        ]
        return [
            self._choice_list(), _html("<small>当てはまるものをすべて選びます。</small>"),
            W.HBox(self.checks), W.HBox([self.button]),
        ]

    def _build_numeric(self):
        self.text = W.Text(
            placeholder="数値 (例: 8、0.5、2/3、50%)", description="答え:", style=_STYLE
        )
        unit = W.Label(self.q.get("unit", ""))
        return [W.HBox([self.text, unit]), W.HBox([self.button])]

    def _build_short(self):
        self.text = W.Text(
            placeholder=self.q.get("placeholder") or "答えを入力", description="答え:",
            style=_STYLE, layout=W.Layout(width="60%"),
        )
        return [self.text, W.HBox([self.button])]

    def _build_matching(self):
        order = self.q["order"]
        rights = "".join(
            f"<li><strong>{LETTERS[k]}.</strong> {_esc(self.q['pairs'][j]['right'])}</li>"
            for k, j in enumerate(order)
        )
        self.drops = []
        rows = []
        for p in self.q["pairs"]:
            d = W.Dropdown(
                options=[("—", _NONE)] + [(LETTERS[k], j) for k, j in enumerate(order)],
                value=_NONE, layout=W.Layout(width="6em"),
            )
            self.drops.append(d)
            rows.append(W.HBox([d, _html(_esc(p["left"]))]))
        head = _html(
            f"<div>{_esc(self.q['right_label'])}:</div>"
            f"<ul style='list-style:none;padding-left:0'>{rights}</ul>"
            f"<div>{_esc(self.q['left_label'])}ごとに、合う記号を選びます。</div>"
        )
        return [head, *rows, W.HBox([self.button])]

    def _build_ordering(self):
        self.current = list(self.q["order"])
        self.rows_box = W.VBox()
        self._render_order()
        return [_html("<small>↑ ↓ で並べ替えます。</small>"), self.rows_box, W.HBox([self.button])]

    def _render_order(self):
        rows = []
        for pos, idx in enumerate(self.current):
            up = W.Button(
                description="↑", layout=W.Layout(width="3em"), disabled=pos == 0, tooltip="上へ"
            )
            down = W.Button(
                description="↓", layout=W.Layout(width="3em"),
                disabled=pos == len(self.current) - 1, tooltip="下へ",
            )
            up.on_click(lambda _b, p=pos: self._move(p, -1))
            down.on_click(lambda _b, p=pos: self._move(p, +1))
            rows.append(W.HBox([up, down, _html(f"{pos + 1}. {_esc(self.q['items'][idx])}")]))
        self.rows_box.children = rows

    def _move(self, pos: int, delta: int):
        j = pos + delta
        if 0 <= j < len(self.current):
            self.current[pos], self.current[j] = self.current[j], self.current[pos]
            self._render_order()

    def _build_essay(self):
        self.text = W.Textarea(placeholder="まず自分の言葉で書いてみましょう", rows=5, layout=_WIDE)
        self.reveal = _button("模範解答と要点を見る", tooltip="書いた答えと見比べて自己採点します")
        self.reveal.on_click(lambda _b: self._reveal())
        self.ideas = [
            W.Checkbox(value=False, indent=False, layout=W.Layout(width="2em"))
            for _ in self.q["key_ideas"]
        ]
        self.answer_box = W.VBox(layout=_WIDE)
        self.button.description = "自己採点を記録"
        self.button.disabled = True
        return [self.text, W.HBox([self.reveal]), self.answer_box, W.HBox([self.button])]

    def _reveal(self):
        if not self.text.value.strip():
            self.feedback.value = feedback_html(
                Result(
                    "invalid", 0,
                    "まず自分の言葉で答えを書いてください。書いてから模範解答と要点を見ます。",
                )
            )
            return
        rows = [
            W.HBox([cb, _html(_esc(idea))]) for cb, idea in zip(self.ideas, self.q["key_ideas"])
        ]
        self.answer_box.children = [
            _html(
                f"<div><strong>模範解答</strong></div><div>{_esc(self.q['model_answer'])}</div>"
                "<div><strong>自己採点 (自動採点ではありません)</strong>: "
                "自分の答えに入っていた要点に ☑ を付けます。</div>"
            ),
            *rows,
        ]
        self.button.disabled = False
        self.feedback.value = ""

    def _build_code(self):
        name = self.q["function_name"]
        self.button.description = f"{name} を採点する"
        self.hint_button = _button("ヒント")
        self.solution_button = _button("解答例を見る")
        self.extra = _html("")
        self.hint_button.on_click(lambda _b: self._show_extra("ヒント", self.q["hint"]))
        self.solution_button.on_click(
            lambda _b: self._show_extra("解答例", self.q["solution"], code=True)
        )
        starter = _html(
            "<div>下のひな形 (ノートブックでは、このクイズの上のコードセル) で "
            f"<code>{_esc(name)}</code> を完成させて"
            f"セルを実行してから、「{_esc(self.button.description)}」を押します。</div>"
            f"<pre style='{_PRE}'><code>{html.escape(self.q['starter'])}</code></pre>"
        )
        return [starter, W.HBox([self.button, self.hint_button, self.solution_button]), self.extra]

    def _show_extra(self, label: str, text: str, code: bool = False):
        body = (
            f"<pre style='{_PRE}'><code>{html.escape(text)}</code></pre>"
            if code
            else f"<div>{_esc(text)}</div>"
        )
        self.extra.value = f"<div><strong>{label}</strong>{body}</div>"

    # -------------------------------------------------------------- 回答と採点
    def response(self) -> Any:
        t = self.q["type"]
        if t == "single":
            return self.picker.value
        if t == "multi":
            return sorted(j for j, c in zip(self.q["order"], self.checks) if c.value)
        if t in ("numeric", "short"):
            return self.text.value
        if t == "matching":
            return [None if d.value == _NONE else d.value for d in self.drops]
        if t == "ordering":
            return list(self.current)
        if t == "essay":
            return {
                "text": self.text.value, "ticked": [i for i, c in enumerate(self.ideas) if c.value],
            }
        if t == "code":
            ns = self.namespace
            if ns is None:
                try:
                    from IPython import get_ipython

                    ip = get_ipython()
                    ns = ip.user_ns if ip is not None else {}
                except ImportError:  # pragma: no cover
                    ns = {}
            return ns.get(self.q["function_name"])
        raise ValueError(t)

    def submit(self) -> Result:
        response = self.response()
        result = grade(self.q, response)
        self.last = result
        self.feedback.value = feedback_html(result)
        if result.recordable:
            # 関数は記録されない
            self.store.record(self.chapter, self.quiz_id, self.q["id"], result, response)
            self.previous.value = ""
        self.on_graded()
        return result

    @staticmethod
    def _previous_text(prev: dict | None) -> str:
        if not prev:
            return ""
        label = {"correct": "○ 正解", "partial": "△ 一部正解", "incorrect": "× 不正解",
                 "self_assessed": "自己採点"}.get(prev.get("status"), prev.get("status"))
        score = prev.get("score", 0)
        return (
            f"<small>前回の記録: {html.escape(str(label))} (最新の得点 {points(score)}、"
            f"最高 {points(prev.get('best', score))}、挑戦 {prev.get('attempts', 0)} 回)</small>"
        )


def quiz_score(quiz: Quiz, store: ProgressStore) -> dict[str, float]:
    """記録から小テストの得点を数える。

    自動採点と自己採点を分け、各問の最高点と最新の得点の両方を数える。
    """
    s = {
        "auto": 0.0, "auto_last": 0.0, "auto_max": 0.0, "self": 0.0, "self_last": 0.0,
        "self_max": 0.0, "answered": 0, "total": len(quiz.questions),
    }
    for q in quiz.questions:
        rec = store.get(quiz.chapter, quiz.id, q["id"])
        kind = "auto" if q["type"] in AUTO_TYPES else "self"
        s[kind + "_max"] += 1
        if rec:
            s[kind] += rec.get("best", rec["score"])      # 最高点 (記録の best)
            s[kind + "_last"] += rec["score"]              # 最新の回答の得点
            s["answered"] += 1
    return s


def points(x: float) -> str:
    """得点の表示 (小数 2 桁で四捨五入し、末尾の 0 を省く)。quiz.js の points() と同じ規則。"""
    text = f"{math.floor(x * 100 + 0.5 + 1e-9) / 100:.2f}"
    return text.rstrip("0").rstrip(".")


def score_text(s: dict[str, float]) -> str:
    """「自動採点 最高 2 / 3 点 (最新 1 点)」の形。quiz.js の scoreText() と同じ文面。"""
    parts = []
    if s["auto_max"]:
        parts.append(
            f"自動採点 最高 {points(s['auto'])} / {points(s['auto_max'])} 点 (最新 "
            f"{points(s['auto_last'])} 点)"
        )
    if s["self_max"]:
        parts.append(
            f"記述 (自己採点) 最高 {points(s['self'])} / {points(s['self_max'])} 点 (最新 "
            f"{points(s['self_last'])} 点)"
        )
    parts.append(f"回答済み {s['answered']}/{s['total']} 問")
    return " ・ ".join(parts)


class QuizWidget:
    """小テスト 1 つ分のウィジェット。"""

    def __init__(
        self, quiz: Quiz, store: ProgressStore | None = None, namespace: dict | None = None
    ):
        self.quiz = quiz
        self.store = store or get_store()
        self.score = _html("")
        self.questions = [
            QuestionWidget(quiz.chapter, quiz.id, q, self.store, self._graded, namespace)
            for q in quiz.questions
        ]
        head = f"<h4 style='margin:4px 0'>{_esc(quiz.title)}</h4>"
        if quiz.intro:
            head += f"<div>{_esc(quiz.intro)}</div>"
        warn = "".join(
            f"<div style='color:var(--jp-warn-color1,#9a6700)'>⚠ {_esc(w)}</div>"
            for w in self.store.warnings
        )
        self.box = W.VBox(
            [_html(head + warn), *[q.box for q in self.questions], self.score], layout=_WIDE
        )
        self._update_score()

    def _update_score(self):
        self.score.value = (
            "<div><strong>この小テストの得点</strong>: "
            f"{score_text(quiz_score(self.quiz, self.store))}</div>"
        )

    def _graded(self):
        self._update_score()
        _notify()

    def question(self, qid: str) -> QuestionWidget:
        for q in self.questions:
            if q.q["id"] == qid:
                return q
        raise KeyError(qid)


class SummaryWidget:
    """章全体の得点のまとめ。どのクイズを採点しても自動で更新される。"""

    def __init__(self, bank: Bank, store: ProgressStore | None = None):
        self.bank = bank
        self.store = store or get_store()
        self.table = _html("")
        self.refresh_button = _button("更新")
        self.reset_button = _button("この章の記録をリセット", button_style="warning")
        self.message = _html("")
        self._armed = False
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.reset_button.on_click(lambda _b: self.reset())
        self.box = W.VBox(
            [self.table, W.HBox([self.refresh_button, self.reset_button]), self.message],
            layout=_WIDE,
        )
        _listeners.append(self.refresh)
        self.refresh()

    def totals(self) -> dict[str, float]:
        tot = {
            "auto": 0.0, "auto_last": 0.0, "auto_max": 0.0, "self": 0.0, "self_last": 0.0,
            "self_max": 0.0, "answered": 0, "total": 0,
        }
        for quiz in self.bank.quizzes:
            for k, v in quiz_score(quiz, self.store).items():
                tot[k] += v
        return tot

    def refresh(self):
        rows = "".join(
            f"<tr><td>{_esc(q.title)}</td>"
            f"<td>{_esc(score_text(quiz_score(q, self.store)))}</td></tr>"
            for q in self.bank.quizzes
        )
        tot = self.totals()
        pct = (
            f"{math.floor(100 * tot['auto'] / tot['auto_max'] + 0.5 + 1e-9)}%"
            if tot["auto_max"]
            else "—"
        )
        self.table.value = (
            f"<h4 style='margin:4px 0'>{_esc(self.bank.title)}: 得点のまとめ</h4>"
            "<table><thead><tr><th>小テスト</th><th>得点</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f"<div><strong>章の合計</strong>: {_esc(score_text(tot))} "
            f"(自動採点の正答率 {pct}、各問の最高点で)</div>"
        )

    def reset(self):
        if not self._armed:
            self._armed = True
            self.reset_button.description = "本当に消す? もう一度押す"
            self.message.value = (
                "<small>もう一度押すと、この章の記録 (この PC のファイル) を消します。</small>"
            )
            return
        n = self.store.reset(self.bank.chapter)
        self._armed = False
        self.reset_button.description = "この章の記録をリセット"
        self.message.value = (
            f"<small>{n} 件の記録を消しました。上のクイズの表示は、"
            "セルを再実行すると初期状態に戻ります。</small>"
        )
        self.refresh()
