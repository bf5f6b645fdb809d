"""A-2 の問題バンクとコード課題の採点関数のテスト (正解を受け入れ、よくある誤りを診断する)。"""

from __future__ import annotations

import torch

from conftest import assert_auto_questions_grade, assert_code_solutions_pass_and_starters_fail
from llmbook.chapters.a2 import (
    expected_parameters,
    layer_norm,
    sinusoidal_encoding,
)
from llmbook.quiz import checks_a2 as C
from llmbook.quiz import grade, load_bank

# ---------------------------------------------------------------- 問題バンクと採点


def test_bank_has_every_required_kind_of_question():
    bank = load_bank("a2", reload=True)
    assert [q.id for q in bank.quizzes] == ["terms", "shapes", "positions", "norms", "code"]
    types = {q["type"] for quiz in bank.quizzes for q in quiz.questions}
    assert {"matching", "short", "single", "multi", "numeric", "ordering", "code"} <= types
    # 章の関数を上書きしない名前 (ひな形を実行しても §4・§5 の関数は残る)
    assert [q["function_name"] for q in bank.quiz("code").questions] == [
        "my_sinusoidal_encoding",
        "my_layer_norm",
    ]


def test_every_auto_question_accepts_its_answer_and_rejects_a_wrong_one():
    bank = load_bank("a2", reload=True)
    assert_auto_questions_grade(bank)
    assert grade(bank.quiz("terms").question("terms-bpe"), "byte pair encoding").correct


def test_numeric_answers_match_the_formulas():
    shapes = load_bank("a2", reload=True).quiz("shapes")
    per_block = expected_parameters(745, 64, 1, 0, d_ff=256)
    assert shapes.question("shapes-attn-params")["answer"] == per_block["アテンション"]
    assert shapes.question("shapes-ffn-params")["answer"] == per_block["FFN"]
    assert shapes.question("shapes-tying")["answer"] == 745 * 64


def test_code_solutions_pass_and_starters_fail_gracefully():
    assert_code_solutions_pass_and_starters_fail(load_bank("a2", reload=True))


def test_checkers_accept_the_chapter_code_and_diagnose_common_mistakes():
    assert C.check_sinusoidal_encoding(sinusoidal_encoding).correct
    assert C.check_layer_norm(layer_norm).correct
    for wrong, words in [
        (C._pe_variant(swap=True), "sin と cos が逆"),
        (C._pe_variant(halves=True), "前半に sin"),
        (C._pe_variant(exponent_i=True), "2i / d"),
        (C._pe_variant(dtype=torch.float64), "float64"),
    ]:
        r = C.check_sinusoidal_encoding(wrong)
        assert not r.correct and words in " ".join(r.details), words

    def no_raise(n, d):  # 奇数でも止めない (値は偶数なら正しい)
        return C.reference_sinusoidal_encoding(n, d + d % 2)[:, :d]

    r = C.check_sinusoidal_encoding(no_raise)
    assert not r.correct and "ValueError" in " ".join(r.details)
    for wrong, words in [
        (C._ln_unbiased, "d − 1"),
        (C._ln_eps_outside, "平方根の外"),
        (C._ln_no_eps, "eps を使っていない"),
        (C._ln_batch_axis, "バッチ正規化"),
        (C._ln_no_affine, "weight"),
    ]:
        r = C.check_layer_norm(wrong)
        assert not r.correct and words in " ".join(r.details), words

    def boom(x, weight, bias, eps=1e-5):
        raise RuntimeError("まだ書いていません")

    assert "RuntimeError" in " ".join(C.check_layer_norm(boom).details)


