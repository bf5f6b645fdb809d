"""採点規則 (llmbook.quiz.grading) の単体テスト。

種類ごとに、正解・不正解・部分点・不正な入力を確かめる。
"""
from __future__ import annotations

import pytest

from llmbook.quiz import grade, grade_answer, normalize_text, parse_number
from llmbook.quiz.grading import MAX_ESSAY, MAX_NUMERIC, MAX_SHORT
from test_bank import GOOD_HEAD

SINGLE = {"id": "s", "type": "single", "prompt": "p", "explanation": "",
          "choices": [{"text": "a", "correct": False, "why": "wa"},
                      {"text": "b", "correct": True, "why": "wb"},
                      {"text": "c", "correct": False, "why": "wc"}]}
MULTI = {"id": "m", "type": "multi", "prompt": "p", "explanation": "",
         "choices": [{"text": "a", "correct": True, "why": "wa"},
                     {"text": "b", "correct": False, "why": "wb"},
                     {"text": "c", "correct": True, "why": "wc"},
                     {"text": "d", "correct": False, "why": "wd"}]}
NUMERIC = {
    "id": "n", "type": "numeric", "prompt": "p", "explanation": "", "answer": 8.0, "tolerance": 0.0,
    "unit": "",
}
NUMERIC_TOL = {**NUMERIC, "answer": 0.6666667, "tolerance": 0.005}
NUMERIC_HINT = {
    **NUMERIC, "answer": 8.0, "tolerance": 0.01, "unit": "KiB",
    "hints": [{"value": 64.0, "why": "64 は分散です。"},
              {"value": 8192.0, "why": "単位は KiB です。"}],
}
SHORT = {"id": "t", "type": "short", "prompt": "p", "explanation": "", "placeholder": "",
         "answers": ["ソフトマックス", "Softmax", "ソフトマックス関数"], "rejects": []}
SHORT_REJECT = {
    "id": "r", "type": "short", "prompt": "p", "explanation": "", "placeholder": "",
    "answers": ["因果マスク", "causal mask"],
    "rejects": [{"answer": "カジュアルマスク", "why": "casual と causal は別の語です。"}],
}
MATCH = {
    "id": "x", "type": "matching", "prompt": "p", "explanation": "", "left_label": "用語",
    "right_label": "説明",
    "pairs": [
        {"left": "A", "right": "1"}, {"left": "B", "right": "2"}, {"left": "C", "right": "3"},
    ],
    "order": [2, 0, 1],
}
ORDER = {
    "id": "o", "type": "ordering", "prompt": "p", "explanation": "",
    "items": ["一", "二", "三", "四"], "order": [3, 1, 0, 2],
}
ESSAY = {"id": "e", "type": "essay", "prompt": "p", "explanation": "", "model_answer": "m",
         "key_ideas": ["k1", "k2", "k3", "k4"]}


def test_single():
    r = grade(SINGLE, 1)
    assert r.status == "correct" and r.score == 1 and r.message.startswith("○")
    r = grade(SINGLE, 0)
    assert r.status == "incorrect" and r.score == 0 and r.message.startswith("×")
    assert any("wa" in d for d in r.details) and any("wb" in d for d in r.details), (
        "なぜ違うか・なぜ正しいかの両方を示す"
    )


@pytest.mark.parametrize("bad", [None, -1, 3, 1.0, "1", True, [1]])
def test_single_invalid(bad):
    r = grade(SINGLE, bad)
    assert r.status == "invalid" and r.score == 0 and not r.recordable


def test_multi_scores():
    """得点 = max(0, (正しく選んだ数 − 誤って選んだ数) / 正解の数)。"""
    assert grade(MULTI, [0, 2]).status == "correct" and grade(MULTI, [0, 2]).score == 1
    r = grade(MULTI, [0])  # 正解 2 つのうち 1 つ
    assert r.status == "partial" and r.score == pytest.approx(0.5)
    assert any("も正しい" in d for d in r.details)
    r = grade(MULTI, [0, 2, 1])  # 正解 2 つ + 誤り 1 つ
    assert r.status == "partial" and r.score == pytest.approx(0.5)
    for wrong in ([1, 3], [0, 1], [0, 1, 2, 3]):  # すべて逆 / 正誤 1 つずつ / 全部に印
        r = grade(MULTI, wrong)
        assert r.status == "incorrect" and r.score == 0, wrong
    assert grade(MULTI, (2, 0)).status == "correct"  # タプルや集合も受け付ける
    assert grade(MULTI, {0, 2}).status == "correct"


@pytest.mark.parametrize("bad", [[], [0, 0], [9], "0,2", None, [True]])
def test_multi_invalid(bad):
    assert grade(MULTI, bad).status == "invalid"


@pytest.mark.parametrize("text", ["8", "８", " 8.0 ", "8e0", "+8", "16/2", "１６／２"])
def test_numeric_accepts_forms(text):
    assert grade(NUMERIC, text).status == "correct"


def test_numeric_hint_explains_a_known_wrong_value():
    r = grade(NUMERIC_HINT, "64")
    assert r.status == "incorrect" and r.details == [
        "あなたの答え 64KiB は、正解 8KiB (許容誤差 ±0.01) と違います。", "64 は分散です。"
    ]
    assert grade(NUMERIC_HINT, "64.005").details[1:] == ["64 は分散です。"]  # 同じ許容誤差で照合
    assert grade(NUMERIC_HINT, "8192").details[1:] == ["単位は KiB です。"]
    assert len(grade(NUMERIC_HINT, "65").details) == 1  # 誤答の一覧にない値は、いつもの文だけ
    assert grade(NUMERIC_HINT, "8").details == []


def test_numeric_values():
    assert grade(NUMERIC, 8).status == "correct"
    assert grade(NUMERIC, 8.0001).status == "incorrect"
    r = grade(NUMERIC, "7")
    assert r.status == "incorrect" and "正解 8" in r.details[0]
    assert grade(NUMERIC_TOL, "2/3").status == "correct"
    assert grade(NUMERIC_TOL, "0.667").status == "correct"
    assert grade(NUMERIC_TOL, "0.68").status == "incorrect"


@pytest.mark.parametrize(
    "bad", ["", "   ", "八", "abc", "1/0", "nan", "inf", "1e999", True, None, [8], float("nan")]
)
def test_numeric_invalid(bad):
    r = grade(NUMERIC, bad)
    assert r.status == "invalid", bad
    assert r.message  # 日本語の説明がある


def test_numeric_too_long():
    r = grade(NUMERIC, "8" + " " * MAX_NUMERIC)
    assert r.status == "invalid" and "長すぎます" in r.message


@pytest.mark.parametrize(
    "text",
    [
        "ソフトマックス", "softmax", "SOFTMAX", "ＳｏｆｔＭａｘ", "そふとまっくす", "ｿﾌﾄﾏｯｸｽ",
        " Soft max ", "ソフトマックス関数", "「ソフトマックス」",
    ],
)
def test_short_spellings(text):
    assert grade(SHORT, text).status == "correct", text


def test_short_with_both_spellings_in_parentheses():
    assert grade(SHORT, "ソフトマックス (softmax)").status == "correct"
    assert grade(SHORT, "Softmax（ソフトマックス関数）").status == "correct"
    # かっこの中も正解でなければ×
    assert grade(SHORT, "ソフトマックス (シグモイド)").status == "incorrect"
    assert grade(SHORT, "シグモイド (softmax)").status == "incorrect"


def test_short_wrong_and_invalid():
    r = grade(SHORT, "シグモイド")
    assert r.status == "incorrect" and "正解の例" in r.details[0]
    assert grade(SHORT, "").status == "invalid"
    assert grade(SHORT, "・・ 」").status == "invalid"
    assert grade(SHORT, 3).status == "invalid"
    assert grade(SHORT, "あ" * (MAX_SHORT + 1)).status == "invalid"


def test_short_known_wrong_answer_is_rejected_with_reason():
    r = grade(SHORT_REJECT, "カジュアル・マスク")
    assert (
        r.status == "incorrect"
        and "casual と causal" in r.details[0]
        and "正解の例" in r.details[1]
    )
    assert grade(SHORT_REJECT, "因果マスク").correct


def test_short_html_is_plain_text():
    r = grade(SHORT, "<script>alert('x')</script>")
    assert r.status == "incorrect"  # 例外にもならず、ただの文字列として扱う


def test_normalize_and_parse():
    assert normalize_text("Ｓｏｆｔ・Ｍａｘ") == "softmax"
    assert normalize_text("とーくん") == normalize_text("トークン") == "トクン"  # 長音符は無視
    assert parse_number("１，０２４") == 1024
    assert parse_number("−3") == -3
    assert parse_number("2/3") == pytest.approx(2 / 3)
    assert parse_number("x") is None
    assert parse_number("50%") == 0.5 and parse_number("６６．７％") == pytest.approx(0.667)
    assert parse_number("%") is None and parse_number("5%%") is None
    assert normalize_text("デコーダーのみ型") == normalize_text("デコーダのみ型")


def test_matching():
    assert grade(MATCH, [0, 1, 2]).status == "correct"
    r = grade(MATCH, [0, 2, 1])
    assert r.status == "partial" and r.score == pytest.approx(1 / 3)
    assert any("「B」の説明は「2」" in d for d in r.details)
    assert grade(MATCH, [1, 2, 0]).status == "incorrect"
    assert grade(MATCH, [0, None, 2]).status == "invalid"
    assert grade(MATCH, [0, 1]).status == "invalid"
    assert grade(MATCH, "012").status == "invalid"


def test_ordering():
    assert grade(ORDER, [0, 1, 2, 3]).status == "correct"
    r = grade(ORDER, [0, 2, 1, 3])
    assert r.status == "partial" and r.score == 0.5 and "正しい順" in r.details[1]
    assert grade(ORDER, [1, 0, 3, 2]).status == "incorrect"
    for bad in ([0, 1, 2], [0, 0, 1, 2], [0, 1, 2, 4], ["0", 1, 2, 3], None):
        assert grade(ORDER, bad).status == "invalid"


def test_essay_is_self_assessed_never_keyword_scored():
    # 要点の言葉をすべて含む答えでも、印を付けなければ 0 点 (キーワードで採点しない)
    r = grade(ESSAY, {"text": "k1 k2 k3 k4", "ticked": []})
    assert r.status == "self_assessed" and r.score == 0
    r = grade(ESSAY, {"text": "ぜんぜん関係ない答え", "ticked": [0, 2]})
    assert r.status == "self_assessed" and r.score == 0.5 and "自己採点" in r.message
    assert not r.correct


@pytest.mark.parametrize(
    "bad",
    [
        None, "text", {"ticked": [0]}, {"text": "  "}, {"text": "a", "ticked": [9]},
        {"text": "a", "ticked": [0, 0]}, {"text": "a" * (MAX_ESSAY + 1)},
    ],
)
def test_essay_invalid(bad):
    assert grade(ESSAY, bad).status == "invalid"


def test_unknown_type_is_error_not_crash():
    assert grade({"type": "riddle"}, 1).status == "error"


def test_grade_answer_api_on_real_bank():
    assert grade_answer("a6", "q5", "q5-sqrt", "8").correct
    assert grade_answer("a6", "q4", "q4-dk", 64).correct
    assert not grade_answer("a6", "q1", "q1-output", 0).correct
    assert grade_answer(
        "a6", "glossary-d2t", "glossary-term-rnn", "recurrent neural network"
    ).correct
    assert (
        grade_answer("a6", "glossary-d2t", "glossary-term-self-attention", "じこちゅうい").status
        == "incorrect"
    )
    assert grade_answer("a6", "glossary-d2t", "glossary-term-self-attention", "自己注意").correct
    assert grade_answer(
        "a6", "glossary-d2t", "glossary-term-self-attention", "セルフアテンション"
    ).correct


# 問題で挙がった、よく使われる正しい表記 (用語 id → 表記)
ALIASES = [
    ("attention", "アテンションメカニズム"), ("layer-normalization", "LN"),
    ("layer-normalization", "層正規化"), ("multi-head-attention", "マルチヘッド自己注意"),
    ("embedding", "エンベッディング"), ("embedding", "埋込み"), ("embedding", "トークン埋め込み"),
    ("ffn", "順伝播型ニューラルネットワーク"), ("ffn", "フィードフォワード層"),
    ("self-attention", "自己アテンション"),
    ("scaled-dot-product-attention", "スケールドドット積アテンション"),
    ("causal-attention-mask", "因果アテンションマスク"),
    ("positional-encoding", "位置エンベディング"), ("residual-connection", "残差コネクション"),
    ("rnn", "再帰型ニューラルネットワーク"), ("n-gram", "N-gram モデル"),
    ("transformer", "Transformers"), ("layer-normalization", "Layer Normalisation"),
]


@pytest.mark.parametrize("term, text", ALIASES)
def test_common_spellings_are_accepted(term, text):
    assert grade_answer("a6", "glossary-d2t", f"glossary-term-{term}", text).correct, text


def test_a1_short_answers_accept_common_spellings():
    assert grade_answer("a1", "terms", "terms-rnn", "再帰型ニューラルネットワーク").correct
    assert grade_answer("a1", "terms", "terms-ngram", "N-gram モデル").correct
    assert grade_answer("a1", "terms", "terms-transformer", "Transformers").correct


def test_casual_mask_and_language_modeling_are_rejected_with_why():
    r = grade_answer(
        "a6", "glossary-d2t", "glossary-term-causal-attention-mask", "カジュアルマスク"
    )
    assert r.status == "incorrect" and "causal" in r.details[0] and "casual" in r.details[0]
    for quiz, qid in (("terms", "terms-lm"), ):
        r = grade_answer("a1", quiz, qid, "言語モデリング")
        assert r.status == "incorrect" and "課題" in r.details[0]
    r = grade_answer("a6", "glossary-d2t", "glossary-term-language-model", "言語モデリング")
    assert r.status == "incorrect" and "課題" in r.details[0]
    r = grade_answer("a6", "glossary-d2t", "glossary-term-causal-attention-mask", "Casual Mask")
    assert r.status == "incorrect" and "causal" in r.details[0] and "casual" in r.details[0]


def test_attention_for_self_attention_gets_a_targeted_hint():
    for text in ("アテンション", "attention"):
        r = grade_answer("a6", "glossary-d2t", "glossary-term-self-attention", text)
        assert r.status == "incorrect" and "同じ系列" in r.details[0], text


def _all_questions():
    from llmbook.quiz import load_bank
    from llmbook.quiz.bank import available_chapters

    return [
        q for ch in available_chapters() for quiz in load_bank(ch).quizzes for q in quiz.questions
    ]


def test_ticking_every_box_earns_nothing_in_every_multi_item():
    multis = [q for q in _all_questions() if q["type"] == "multi"]
    assert len(multis) >= 3
    for q in multis:
        r = grade(q, list(range(len(q["choices"]))))
        assert r.score == 0 and r.status == "incorrect", q["id"]


def test_scoring_rules_are_stated_in_the_feedback():
    r = grade(MULTI, [0, 1])
    assert r.status == "incorrect" and "(正しく選んだ数 1 − 誤って選んだ数 1)" in r.details[-1]
    r = grade(MULTI, [0])
    assert r.status == "partial" and r.details[-1].startswith("得点の付け方")
    assert not any(d.startswith("得点の付け方") for d in grade(MULTI, [0, 2]).details)
    r = grade(ORDER, [0, 2, 1, 3])
    assert r.status == "partial" and "2/4" in r.details[-1] and "位置" in r.details[-1]


def test_result_carries_the_explanation_for_every_graded_type():
    r = grade_answer("a6", "q1", "q1-chain", "0.02")   # 数値の問題にも解説が付く
    assert r.status == "incorrect" and r.explanation.startswith("連鎖律により")
    assert r.as_dict()["explanation"] == r.explanation
    # 採点できない入力には付けない
    assert grade_answer("a6", "q1", "q1-chain", "").explanation == ""



_HINT_BANK = (
    GOOD_HEAD.replace("{", "{{").replace("}", "}}")
    + "      - {{id: n1, type: numeric, prompt: 問, answer: 8, tolerance: 0.01, hints: {hints}}}\n"
)


@pytest.mark.parametrize(("hints", "why"), [
    ("[{value: 8.005, why: 近すぎる}]", "正解の許容範囲"),
    ("[{value: 64}]", "why .理由. だけの辞書"),
    ("[{value: 64, why: w, extra: 1}]", "why .理由. だけの辞書"),
    ("[{value: x, why: w}]", "数値が必要"),
    ("[{value: 64, why: ''}]", "空の文字列"),
    ("{value: 64, why: w}", "リストが必要"),
])
def test_bank_rejects_malformed_numeric_hints(tmp_path, hints, why):
    from llmbook.quiz import BankError, load_bank_file

    p = tmp_path / "zz.yaml"
    p.write_text(_HINT_BANK.format(hints=hints), encoding="utf-8")
    with pytest.raises(BankError, match=why) as exc:
        load_bank_file(p)
    assert exc.value.qid == "n1" and exc.value.field.startswith("hints")


def test_bank_keeps_numeric_hints(tmp_path):
    from llmbook.quiz import load_bank_file

    p = tmp_path / "zz.yaml"
    p.write_text(_HINT_BANK.format(hints="[{value: 64, why: 分散です}]"), encoding="utf-8")
    q = load_bank_file(p).quizzes[0].questions[0]
    assert q["hints"] == [{"value": 64.0, "why": "分散です"}]
    assert grade(q, "64").details[1:] == ["分散です"]
