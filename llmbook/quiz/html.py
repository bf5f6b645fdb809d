"""Web サイト (カーネルなし) 用の静的 HTML。描画と採点は ``static/quiz.js`` が行う。

問題データは ``<script type="application/json">`` に埋め込む。``<`` ``>`` ``&`` を
``\\u003c`` などに置き換えるので、問題文や回答に HTML やスクリプトがあっても
ページの構造は壊れない (JS 側は textContent だけで表示する)。JS が読み込まれない
環境 (GitHub のプレビューなど) のために、問題文だけの代替表示も入れておく。
"""
from __future__ import annotations

import html
import json
from typing import Any

from ..book import chapter_links
from .bank import Bank, Quiz

__all__ = ["quiz_payload", "render_quiz_html", "render_summary_html", "safe_json"]

_STATIC_KEYS_DROP = {"checker"}  # 採点関数のパスはブラウザに送らない


def safe_json(data: Any) -> str:
    """``<script>`` の中に置いても安全な JSON 文字列。"""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _static_question(q: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in q.items() if k not in _STATIC_KEYS_DROP}
    if q.get("ref"):
        # 公開済みの章だけリンクにする (同じ chapters/ フォルダの HTML への相対リンク)
        out["ref_links"] = [
            [label, f"{stem}.html" if stem else None] for label, stem in chapter_links(q["ref"])
        ]
    return out


def quiz_payload(quiz: Quiz) -> dict[str, Any]:
    return {
        "chapter": quiz.chapter,
        "quiz": quiz.id,
        "title": quiz.title,
        "intro": quiz.intro,
        "questions": [_static_question(q) for q in quiz.questions],
    }


def _fallback(quiz: Quiz) -> str:
    items = "".join(f"<li>{html.escape(q['prompt'])}</li>" for q in quiz.questions)
    return (
        f'<div class="llmbook-quiz-fallback"><p><strong>{html.escape(quiz.title)}</strong></p>'
        f"<ol>{items}</ol><p>このクイズは、本の Web サイトか、Jupyter / Colab "
        "でノートブックを実行すると回答できます。</p></div>"
    )


def render_quiz_html(quiz: Quiz) -> str:
    """1 つの小テストの静的 HTML。"""
    return (
        f'<div class="llmbook-quiz" data-chapter="{html.escape(quiz.chapter)}" '
        f'data-quiz="{html.escape(quiz.id)}">'
        f'<script type="application/json" class="llmbook-quiz-data">{safe_json(quiz_payload(quiz))}'
        '</script>'
        f"{_fallback(quiz)}</div>"
    )


def render_summary_html(bank: Bank) -> str:
    """章全体の得点のまとめ (ブラウザの記録から JS が計算する)。"""
    data = {
        "chapter": bank.chapter,
        "title": bank.title,
        "quizzes": [
            {
                "id": q.id, "title": q.title,
                "questions": [{"id": x["id"], "type": x["type"]} for x in q.questions],
            }
            for q in bank.quizzes
        ],
    }
    return (
        f'<div class="llmbook-summary" data-chapter="{html.escape(bank.chapter)}">'
        f'<script type="application/json" class="llmbook-summary-data">{safe_json(data)}</script>'
        f'<div class="llmbook-quiz-fallback"><p>{html.escape(bank.title)} の得点のまとめは、本の '
        'Web サイトか Jupyter で表示されます。</p></div>'
        "</div>"
    )
