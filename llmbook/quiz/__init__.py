"""章末クイズ。1 つの問題バンクから、カーネルではウィジェット、Web サイトでは静的 HTML を作る。

ノートブックでは次のように使う::

    from llmbook.quiz import show_quiz, show_summary
    show_quiz("a6", "q5")      # 小テスト 1 つ
    show_summary("a6")         # 章全体の得点のまとめ

表示オブジェクトは 1 つの出力に 2 つの形を持つ: ``application/vnd.jupyter.widget-view+json``
(JupyterLab・VS Code・Colab が描くウィジェット) と ``text/html`` (本の Web サイトが描く、
ブラウザだけで採点する HTML/JS)。同じ採点を Python から直接呼ぶには :func:`grade_answer`。
"""
from __future__ import annotations

from typing import Any

from .bank import (
    AUTO_TYPES,
    QUESTION_TYPES,
    Bank,
    BankError,
    Quiz,
    load_bank,
    load_bank_file,
    load_glossary,
)
from .grading import Result, grade, normalize_text, parse_number
from .html import render_quiz_html, render_summary_html
from .progress import ProgressStore, get_store

__all__ = [
    "show_quiz",
    "show_summary",
    "grade_answer",
    "reset_progress",
    "QuizDisplay",
    "SummaryDisplay",
    "Result",
    "BankError",
    "Bank",
    "Quiz",
    "load_bank",
    "load_bank_file",
    "load_glossary",
    "grade",
    "normalize_text",
    "parse_number",
    "ProgressStore",
    "QUESTION_TYPES",
    "AUTO_TYPES",
]


class QuizDisplay:
    """小テスト 1 つの表示オブジェクト (ウィジェット + 静的 HTML)。"""

    def __init__(
        self, quiz: Quiz, store: ProgressStore | None = None, namespace: dict | None = None
    ):
        self.quiz = quiz
        self._store = store
        self._namespace = namespace
        self._widget = None

    @property
    def widget(self):
        if self._widget is None:
            from .widgets import QuizWidget

            self._widget = QuizWidget(self.quiz, self._store, self._namespace)
        return self._widget

    def _repr_html_(self) -> str:
        return render_quiz_html(self.quiz)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = dict(self.widget.box._repr_mimebundle_() or {})
        bundle["text/html"] = render_quiz_html(self.quiz)
        bundle["text/plain"] = f"クイズ「{self.quiz.title}」({len(self.quiz.questions)} 問)"
        return bundle


class SummaryDisplay:
    """章全体の得点のまとめの表示オブジェクト。"""

    def __init__(self, bank: Bank, store: ProgressStore | None = None):
        self.bank = bank
        self._store = store
        self._widget = None

    @property
    def widget(self):
        if self._widget is None:
            from .widgets import SummaryWidget

            self._widget = SummaryWidget(self.bank, self._store)
        return self._widget

    def _repr_html_(self) -> str:
        return render_summary_html(self.bank)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = dict(self.widget.box._repr_mimebundle_() or {})
        bundle["text/html"] = render_summary_html(self.bank)
        bundle["text/plain"] = f"{self.bank.title}: 得点のまとめ"
        return bundle


def show_quiz(chapter: str, quiz_id: str, *, store: ProgressStore | None = None) -> QuizDisplay:
    """章 ``chapter`` の小テスト ``quiz_id`` を表示する (セルの最後の式にする)。"""
    return QuizDisplay(load_bank(chapter).quiz(quiz_id), store)


def show_summary(chapter: str, *, store: ProgressStore | None = None) -> SummaryDisplay:
    """章 ``chapter`` の得点のまとめを表示する。"""
    return SummaryDisplay(load_bank(chapter), store)


def grade_answer(chapter: str, quiz_id: str, qid: str, response: Any, *, record: bool = False,
                 store: ProgressStore | None = None) -> Result:
    """ウィジェットを使わずに 1 問を採点する (テストやスクリプト用)。"""
    quiz = load_bank(chapter).quiz(quiz_id)
    result = grade(quiz.question(qid), response)
    if record:
        # 関数そのものは記録されない
        (store or get_store()).record(chapter, quiz_id, qid, result, response)
    return result


def reset_progress(chapter: str | None = None) -> int:
    """カーネル側の学習記録を消す (``chapter`` を省くとすべて)。消した件数を返す。"""
    return get_store().reset(chapter)
