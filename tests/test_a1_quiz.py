"""A-1 の問題バンクとコード課題の採点関数のテスト (正解を受け入れ、よくある誤りを診断する)。"""

from __future__ import annotations

import math
from collections import Counter

import torch
import torch.nn.functional as F

from conftest import assert_auto_questions_grade, assert_code_solutions_pass_and_starters_fail
from llmbook.chapters.a1 import (
    perplexity,
)
from llmbook.quiz import grade, load_bank, load_glossary
from llmbook.quiz.checks_a1 import (
    check_bigram_probs,
    check_perplexity_from_logits,
    reference_bigram_probs,
    reference_perplexity,
)

# ---------------------------------------------------------------------------
# 問題バンクとコード課題の採点関数
# ---------------------------------------------------------------------------


def test_bank_loads_with_terms_review_and_code_quizzes():
    bank = load_bank("a1", reload=True)
    assert [q.id for q in bank.quizzes] == ["terms", "q1", "q2", "q3", "code"]
    terms = bank.quiz("terms").questions
    pairs = terms[0]["pairs"]
    glossary = {t["id"]: t for t in load_glossary()}
    for pair, term in zip(pairs, ("language-model", "n-gram", "rnn", "transformer")):
        assert (
            pair["left"] == f"{glossary[term]['ja']} ({glossary[term]['en']})"
            or glossary[term]["en"] in pair["left"]
        )
    for quiz in bank.quizzes[1:4]:
        assert (
            sum(q["type"] in ("single", "multi", "numeric", "ordering") for q in quiz.questions)
            >= 3
        )
        assert all(q["type"] != "essay" for q in quiz.questions)  # 記述版は A-6 にある
    assert [q["function_name"] for q in bank.quiz("code").questions] == [
        "perplexity_from_logits",
        "bigram_probs",
    ]


def test_every_auto_question_accepts_its_answer_and_rejects_a_wrong_one():
    bank = load_bank("a1", reload=True)
    assert_auto_questions_grade(bank)
    # 英語・カタカナの表記ゆれも正解
    terms = bank.quiz("terms")
    assert grade(terms.question("terms-ngram"), "n-gram").correct
    assert grade(terms.question("terms-transformer"), "とらんすふぉーまー").correct


def test_code_solutions_pass_and_starters_fail_gracefully():
    assert_code_solutions_pass_and_starters_fail(load_bank("a1", reload=True))


def test_quiz_grades_in_a_kernel_widget(tmp_path):
    """カーネル (ウィジェット) でも採点できる: 数値の問いと、名前空間の関数を採点するコード課題。"""
    from llmbook.quiz import ProgressStore
    from llmbook.quiz.widgets import QuizWidget

    bank = load_bank("a1", reload=True)
    store = ProgressStore(tmp_path / "p.json")
    w = QuizWidget(bank.quiz("q3"), store, None)
    qw = w.question("q3-decay")
    qw.text.value = "19"
    qw.button.click()
    assert "× 不正解" in qw.feedback.value
    qw.text.value = "20"
    qw.button.click()
    assert "○ 正解" in qw.feedback.value and store.get("a1", "q3", "q3-decay")["attempts"] == 2
    ns: dict = {}
    code = QuizWidget(bank.quiz("code"), store, ns)
    cw = code.question("code-bigram")
    cw.button.click()
    assert "まだ定義されていません" in cw.feedback.value
    exec(bank.quiz("code").question("code-bigram")["solution"], ns)  # noqa: S102
    cw.button.click()
    assert "○ 正解" in cw.feedback.value


def test_reference_perplexity_matches_pytorch():
    g = torch.Generator().manual_seed(0)
    for shape in ((5, 4), (2, 3, 10), (64, 745)):
        logits = torch.randn(*shape, generator=g)
        targets = torch.randint(0, shape[-1], shape[:-1], generator=g)
        want = math.exp(
            F.cross_entropy(logits.reshape(-1, shape[-1]).double(), targets.reshape(-1)).item()
        )
        assert math.isclose(reference_perplexity(logits, targets), want, rel_tol=1e-12)
        assert math.isclose(
            reference_perplexity(logits, targets),
            perplexity(logits.double(), targets),
            rel_tol=1e-9,
        )


def test_reference_bigram_matches_counting():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (80,), generator=g)
    P = reference_bigram_probs(ids, 6, 0.5)
    pairs = Counter(zip(ids[:-1].tolist(), ids[1:].tolist()))
    for a in range(6):
        c_a = sum(c for (x, _), c in pairs.items() if x == a)
        for b in range(6):
            assert math.isclose(
                P[a, b].item(), (pairs[(a, b)] + 0.5) / (c_a + 0.5 * 6), rel_tol=1e-6
            )
    assert P.dtype == torch.float32 and torch.allclose(P.sum(1), torch.ones(6))


def test_ppl_checker_accepts_reference_and_rejects_wrong_answers():
    assert check_perplexity_from_logits(reference_perplexity).correct

    def naive(logits, targets):  # 最大値を引かない: ±1000 であふれる
        V = logits.shape[-1]
        p = logits.reshape(-1, V).exp()
        p = p / p.sum(-1, keepdim=True)
        return math.exp(-p.gather(-1, targets.reshape(-1, 1)).log().mean().item())

    def summed(logits, targets):  # 平均ではなく和
        return math.exp(
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
            ).item()
        )

    def returns_loss(logits, targets):  # exp を忘れた
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).item()

    def boom(logits, targets):
        raise RuntimeError("まだ書いていません")

    def per_token(logits, targets):  # 形が違う (位置ごとの値を返す)
        return torch.exp(
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
            )
        )

    r = check_perplexity_from_logits(naive)       # 最大値を引かない: 通る項目も得点にしない
    assert r.status == "incorrect" and "最大値を引いていない" in " ".join(r.details)
    r = check_perplexity_from_logits(returns_loss)
    assert "最後に exp します" in " ".join(r.details)
    for wrong in (summed, returns_loss, boom, per_token):
        r = check_perplexity_from_logits(wrong)
        assert not r.correct and r.details, wrong.__name__
    assert "RuntimeError" in " ".join(check_perplexity_from_logits(boom).details)


def test_bigram_checker_accepts_reference_and_rejects_wrong_answers():
    assert check_bigram_probs(reference_bigram_probs).correct

    def transposed(ids, V, k=1.0):  # P[b, a] にしてしまった
        return reference_bigram_probs(ids, V, k).T.contiguous()

    def no_smoothing(ids, V, k=1.0):  # k を足し忘れた
        counts = torch.zeros(V, V)
        for a, b in zip(ids[:-1].tolist(), ids[1:].tolist()):
            counts[a, b] += 1
        return counts / counts.sum(1, keepdim=True).clamp(min=1)

    def wrong_shape(ids, V, k=1.0):
        return reference_bigram_probs(ids, V, k)[0]

    def float64(ids, V, k=1.0):
        return reference_bigram_probs(ids, V, k).double()

    def boom(ids, V, k=1.0):
        raise IndexError("index out of range")

    for wrong, words in (
        (transposed, "値"),
        (no_smoothing, "0 より大きい"),
        (wrong_shape, "形"),
        (float64, "dtype"),
        (boom, "IndexError"),
    ):
        r = check_bigram_probs(wrong)
        assert not r.correct and words in " ".join(r.details), (wrong.__name__, r.details)


