"""Python の採点 (grading.py) と Web サイトの採点 (static/quiz.js) が同じ規則であることを、
同じ事例を Node.js で両方に通して確かめる。"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llmbook.quiz import grade, load_bank
from llmbook.quiz.bank import available_chapters
from test_grading import (
    ESSAY,
    MATCH,
    MULTI,
    NUMERIC,
    NUMERIC_HINT,
    NUMERIC_TOL,
    ORDER,
    SHORT,
    SHORT_REJECT,
    SINGLE,
)

QUIZ_JS = Path(__file__).resolve().parent.parent / "llmbook" / "quiz" / "static" / "quiz.js"

CASES = [
    (SINGLE, [1, 0, 2, None, -1, 3, 1.5, "1", True]),
    (
        MULTI,
        [
            [0, 2], [0], [1, 3], [0, 1, 2, 3], [0, 1], [0, 1, 2], [2], [], [0, 0], [9], "0,2", None,
            [2, 0],
        ],
    ),
    (
        NUMERIC,
        [
            "8", "８", " 8.0 ", "8e0", "+8", "16/2", "１６／２", "7", 8, 8.0001, "", "八", "1/0",
            "nan", "1e999", "8" + " " * 60, True, None, [8], "１，０２４", "−8", ".5", "8.", "800%",
            "%", "8%%", "８００％", "0.0000015", "1234567.5", "0.00012345678", "-2.5e-7",
        ],
    ),
    (NUMERIC_TOL, ["2/3", "0.667", "0.68", "0.6666667", "2/3.0", "66.7%", "67%", "66.7 %"]),
    (NUMERIC_HINT, ["64", "64.005", "64.02", "8192", "8", "65", "6400%"]),
    (
        SHORT,
        [
            "ソフトマックス", "softmax", "SOFTMAX", "ＳｏｆｔＭａｘ", "そふとまっくす", "ｿﾌﾄﾏｯｸｽ",
            " Soft max ", "「ソフトマックス」", "シグモイド", "", "・・ 」", 3, "あ" * 201,
            "<script>alert(1)</script>", None, "ソフト\u3000マックス", "Soft-Max",
            "ソフトマックス。", "ソフトマックス", "ソフトマクス", "ソフトマックス (softmax)",
            "Softmax（ソフトマックス関数）", "ソフトマックス (シグモイド)", "(softmax)",
            "softmax ()", "ソフトマックス(softmax)(x)",
        ],
    ),
    (
        SHORT_REJECT,
        [
            "カジュアルマスク", "カジュアル・マスク", "かじゅあるますく", "因果マスク",
            "Causal Mask", "コーザルマスク",
        ],
    ),
    (MATCH, [[0, 1, 2], [0, 2, 1], [1, 2, 0], [0, None, 2], [0, 1], "012", [0, 1, 5]]),
    (
        ORDER,
        [
            [0, 1, 2, 3], [0, 2, 1, 3], [1, 0, 3, 2], [0, 1, 2], [0, 0, 1, 2], [0, 1, 2, 4],
            ["0", 1, 2, 3], None,
        ],
    ),
    (
        ESSAY,
        [
            {"text": "k1 k2", "ticked": []}, {"text": "答え", "ticked": [0, 2]},
            {"text": "答え", "ticked": [0, 1, 2, 3]}, None, "text", {"ticked": [0]}, {"text": "  "},
            {"text": "a", "ticked": [9]}, {"text": "a", "ticked": [0, 0]}, {"text": "a" * 4001},
            {"text": "答え"},
        ],
    ),
]


def _real_bank_cases():
    """実際のすべてのバンクの全問 (コード課題を除く) に、正解と誤答を当てる。

    複数選択は全部に印を付けた回答も当てる。
    """
    out = []
    for quiz in [qz for ch in available_chapters() for qz in load_bank(ch).quizzes]:
        for q in quiz.questions:
            t = q["type"]
            if t == "single":
                out.append((q, [i for i in range(len(q["choices"]))]))
            elif t == "multi":
                right = [i for i, c in enumerate(q["choices"]) if c["correct"]]
                wrong = [i for i, c in enumerate(q["choices"]) if not c["correct"]]
                out.append((q, [right, [0], right[:1] + wrong[:1], list(range(len(q["choices"])))]))
            elif t == "numeric":
                out.append((q, [str(q["answer"]), q["answer"] + 1, "x"]
                            + [h["value"] for h in q["hints"]]))
            elif t == "short":
                out.append((q, q["answers"] + [r["answer"] for r in q["rejects"]] + ["まちがい"]))
            elif t in ("matching", "ordering"):
                n = len(q["pairs"] if t == "matching" else q["items"])
                out.append((q, [list(range(n)), list(q["order"]), list(reversed(range(n)))]))
            elif t == "essay":
                out.append((q, [{"text": "書いた", "ticked": [0, 1]}]))
    return out


def _head(message: str) -> str:
    """メッセージの最初の文 (受け取った値などの補足を除いた部分) を比べる。"""
    return message.split("。")[0].split(" (")[0]


@pytest.mark.skipif(
    shutil.which("node") is None, reason="Node.js がない (CI では .ci/run が入れる)"
)
def test_python_and_js_grade_the_same():
    cases = []
    for q, responses in CASES + _real_bank_cases():
        for r in responses:
            cases.append({"q": q, "r": r})
    script = (
        "const q = require(process.argv[1]); let s = ''; process.stdin.setEncoding('utf8');"
        "process.stdin.on('data', d => s += d); process.stdin.on('end', () => {"
        "  const cases = JSON.parse(s);"
        "  process.stdout.write(JSON.stringify(cases.map("
        "c => q.grade(c.q, c.r === null ? null : c.r))));"
        "});"
    )
    proc = subprocess.run(
        ["node", "-e", script, str(QUIZ_JS)], input=json.dumps(cases, ensure_ascii=False),
        capture_output=True, text=True, timeout=60, check=True,
    )
    js_results = json.loads(proc.stdout)
    assert len(js_results) == len(cases)
    mismatches = []
    for case, js in zip(cases, js_results):
        py = grade(case["q"], case["r"])
        graded = py.status not in ("invalid", "error")
        if (
            py.status != js["status"]
            or abs(py.score - js["score"]) > 1e-9
            or _head(py.message) != _head(js["message"])
            # 採点できた回答では、理由の説明と解説も一字一句同じ
            or (graded and (py.details != js["details"] or py.explanation != js["explanation"]))
        ):
            mismatches.append((case["q"]["id"], case["r"], py.as_dict(), js))
    assert not mismatches, mismatches[:5]
    assert len(cases) > 150


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js がない")
def test_points_display_is_the_same():
    from llmbook.quiz.widgets import points

    values = [0, 0.125, 0.25, 1 / 3, 0.5, 2 / 3, 0.755, 1, 1.5, 2.005, 12.345, 19.999]
    proc = subprocess.run(
        [
            "node", "-e",
            "const q=require(process.argv[1]);"
            "console.log(JSON.stringify(JSON.parse(process.argv[2]).map(q.points)))",
            str(QUIZ_JS), json.dumps(values),
        ],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout) == [points(v) for v in values]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js がない")
def test_score_text_is_the_same():
    """小テストと章の合計の表示 (最高点と最新の得点) が同じ文面になる。

    ウィジェットと Web サイトで比べる。
    """
    from llmbook.quiz.widgets import score_text

    totals = [
        {
            "auto": 2, "auto_last": 1, "auto_max": 3, "self": 0.75, "self_last": 0.25,
            "self_max": 1, "answered": 3, "total": 4,
        },
        {
            "auto": 0, "auto_last": 0, "auto_max": 5, "self": 0, "self_last": 0, "self_max": 0,
            "answered": 0, "total": 5,
        },
        {
            "auto": 0, "auto_last": 0, "auto_max": 0, "self": 0.5, "self_last": 0.5, "self_max": 2,
            "answered": 1, "total": 2,
        },
    ]
    proc = subprocess.run(
        [
            "node", "-e",
            "const q=require(process.argv[1]);"
            "console.log(JSON.stringify(JSON.parse(process.argv[2])"
            ".map(s => q.scoreText({...s, code: 0}))))",
            str(QUIZ_JS), json.dumps(totals),
        ],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout) == [score_text(t) for t in totals]
    assert "最高 2 / 3 点 (最新 1 点)" in score_text(totals[0])
