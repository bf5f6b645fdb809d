"""静的 HTML: 問題データは安全に埋め込まれ、HTML やスクリプトは文字列のまま運ばれる。"""
from __future__ import annotations

import json
import re

from llmbook.quiz import load_bank
from llmbook.quiz.bank import Quiz
from llmbook.quiz.html import quiz_payload, render_quiz_html, render_summary_html, safe_json

EVIL = '</script><script>alert("x")</script><img src=x onerror=alert(1)> & \u2028'


def _evil_quiz():
    q = {
        "id": "e1", "type": "short", "prompt": EVIL, "explanation": EVIL, "answers": [EVIL],
        "placeholder": "",
    }
    return Quiz("zz", "evil", EVIL, [q], intro=EVIL)


def test_html_in_data_cannot_break_out():
    html = render_quiz_html(_evil_quiz())
    assert html.count("</script>") == 1  # 埋め込み用の 1 つだけ
    assert "<img" not in html and "<script>alert" not in html
    data = re.search(
        r'<script type="application/json" class="llmbook-quiz-data">(.*?)</script>', html, re.S
    ).group(1)
    assert json.loads(data)["questions"][0]["prompt"] == EVIL  # 中身はそのまま文字列として届く


def test_safe_json_roundtrip():
    assert json.loads(safe_json({"a": EVIL})) == {"a": EVIL}


def test_payload_has_no_checker_and_keeps_order(bank):
    for quiz in bank.quizzes:
        payload = quiz_payload(quiz)
        for q in payload["questions"]:
            assert "checker" not in q
            if q["type"] in ("matching", "ordering", "single", "multi"):
                assert sorted(q["order"]) == list(range(len(q["order"])))


def test_summary_lists_every_quiz(bank):
    html = render_summary_html(bank)
    data = json.loads(re.search(r"<script[^>]*>(.*?)</script>", html, re.S).group(1))
    assert [q["id"] for q in data["quizzes"]] == [q.id for q in bank.quizzes]


def test_fallback_text_for_no_js():
    html = render_quiz_html(load_bank("a6").quiz("q1"))
    assert "llmbook-quiz-fallback" in html and "言語モデルが何をするもの" in html


def test_static_page_gets_the_same_choice_order_as_the_widget(bank):
    """表示順は Python で一度だけ計算し、HTML に埋め込む (JS は並べ直さない)。"""
    for quiz in bank.quizzes:
        html = render_quiz_html(quiz)
        data = json.loads(
            re.search(r'class="llmbook-quiz-data">(.*?)</script>', html, re.S).group(1)
        )
        for q, sent in zip(quiz.questions, data["questions"]):
            if q["type"] in ("single", "multi"):
                assert sent["order"] == q["order"] and sent["choices"] == q["choices"]
            if q["type"] == "short":
                assert sent["rejects"] == q["rejects"]
