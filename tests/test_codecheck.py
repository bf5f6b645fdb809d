"""コード課題の採点: 読者のコードが何をしてもカーネルは止まらず、日本語で理由が返る。"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmbook.quiz import grade_answer, load_bank
from llmbook.quiz.checks_a6 import reference_attention, reference_causal_mask


def sdpa_ok(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def g(qid, fn):
    quiz = "q5" if qid == "q5-code" else "q8"
    return grade_answer("a6", quiz, qid, fn)


def test_reference_implementations_match_pytorch():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=gen) for _ in range(3))
    mask = reference_causal_mask(6)
    assert torch.allclose(
        reference_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-6
    )
    assert torch.allclose(
        reference_attention(q, k, v, mask), F.scaled_dot_product_attention(q, k, v, is_causal=True),
        atol=1e-6,
    )
    assert torch.equal(reference_causal_mask(4), torch.tril(torch.ones(4, 4)).bool())


def test_correct_solutions_pass():
    assert g("q5-code", sdpa_ok).correct
    assert g(
        "q5-code",
        lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
    ).correct
    assert g("q8-code", lambda n: torch.ones(n, n, dtype=torch.bool).tril()).correct


def test_bank_solutions_pass():
    """バンクに載せた解答例そのものが採点を通る (解答例の誤りを防ぐ)。"""
    bank = load_bank("a6")
    for quiz in bank.quizzes:
        for q in quiz.questions:
            if q["type"] != "code":
                continue
            ns: dict = {}
            exec(q["solution"], ns)  # noqa: S102 - 本に載せる解答例
            assert grade_answer("a6", quiz.id, q["id"], ns[q["function_name"]]).correct, q["id"]
            ns = {}
            exec(q["starter"], ns)  # noqa: S102 - ひな形はそのままでは不正解 (None を返す)
            r = grade_answer("a6", quiz.id, q["id"], ns[q["function_name"]])
            assert r.status == "incorrect" and "None" in " ".join(r.details)


@pytest.mark.parametrize(
    "fn, expected",
    [
        # スケール忘れ
        (
            lambda q, k, v, mask=None: torch.softmax(q @ k.transpose(-2, -1), -1) @ v,
            "値が参照実装と合いません",
        ),
        # v を掛け忘れ
        (lambda q, k, v, mask=None: (q @ k.transpose(-2, -1)).softmax(-1), "形が違います"),
        (lambda q, k, v, mask=None: sdpa_ok(q, k, v, mask).double(), "dtype が違います"),
        (lambda q, k, v, mask=None: sdpa_ok(q, k, v, mask).to("meta"), "デバイスが違います"),
        (lambda q, k, v, mask=None: sdpa_ok(q, k, v, mask) * float("nan"), "NaN"),
        (lambda q, k, v, mask=None: None, "None"),
        (lambda q, k, v, mask=None: sdpa_ok(q, k, v, mask).tolist(), "Tensor を返すはず"),
        (lambda q, k, v, mask=None: 1 / 0, "ZeroDivisionError"),
        (lambda q, k, v: sdpa_ok(q, k, v), "TypeError"),  # mask 引数を忘れた
    ],
)
def test_wrong_solutions_get_reasons(fn, expected):
    r = g("q5-code", fn)
    assert r.status in ("incorrect", "partial")
    text = " ".join(r.details)
    assert expected in text, text
    assert any(d.startswith("ヒント") for d in r.details)


@pytest.mark.parametrize(
    "fn, advice",
    [
        (
            lambda q, k, v, mask=None: torch.softmax(q @ k.transpose(-2, -1), -1) @ v,
            "√d_k で割っていない",
        ),
        (
            lambda q, k, v, mask=None: torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1], -1) @ v,
            "d_k で割っている",
        ),
        (lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v), "mask を無視"),
    ],
)
def test_common_attention_mistakes_are_diagnosed(fn, advice):
    r = g("q5-code", fn)
    assert r.details[0].startswith("考えられる原因") and advice in r.details[0]


@pytest.mark.parametrize("fn, advice", [
    (lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1), "対角"),
    (lambda n: torch.ones(n, n, dtype=torch.bool).triu(), "上下が逆"),
    (lambda n: torch.ones(n, n).tril(), "bool ではありません"),
])
def test_common_mask_mistakes_are_diagnosed(fn, advice):
    r = g("q8-code", fn)
    assert not r.correct and advice in r.details[0]


def test_all_reference_cases_failing_is_incorrect_even_if_properties_pass():
    r = g("q5-code", lambda q, k, v, mask=None: torch.softmax(q @ k.transpose(-2, -1), -1) @ v)
    # 「各行が確率分布」はスケールを忘れた実装でも通るので、通っても得点にならない
    assert r.status == "incorrect" and r.score == 0 and "1/5 項目を通過" in r.message
    assert "誤った実装でも通る項目は得点に数えません" in r.message
    # どの項目を数えないかを名指しし、通った数と得点の数を同じ文で言う (矛盾に見えないように)
    assert "1/5 項目を通過、得点になるのは 0 項目" in r.message
    scoring = next(d for d in r.details if d.startswith("得点の付け方"))
    assert "通った項目のうち【アテンションの重みは各行が確率分布】は" in scoring
    assert "0 個 ÷ 全 5 項目 = 0.00 点" in scoring


@pytest.mark.parametrize("wrong", [
    lambda n: torch.ones(n, n, dtype=torch.bool).triu(),   # 上下が逆 (n=1 だけは偶然通る)
    lambda n: torch.ones(n, n, dtype=torch.bool),          # すべて True (n=1 だけは偶然通る)
])
def test_wrong_mask_earns_nothing_for_cases_it_passes_by_accident(wrong):
    r = g("q8-code", wrong)
    assert r.status == "incorrect" and r.score == 0, r.message
    assert "項目を通過" in r.message and "× 不正解" in r.message


def test_ignoring_the_mask_earns_nothing_for_unmasked_cases():
    r = g("q5-code", lambda q, k, v, mask=None: F.scaled_dot_product_attention(q, k, v))
    assert r.status == "incorrect" and r.score == 0


def test_partial_credit_only_for_cases_that_tell_right_from_wrong():
    """参照と合うケースのうち、よくある誤りでは通らないものだけが部分点になる。

    1 点は全項目を通ったときだけ。
    """
    def no_batch(q, k, v, mask=None):  # 2 次元の入力だけ正しく扱える (バッチ次元で形が崩れる)
        if q.dim() > 2:
            raise ValueError("バッチ次元には未対応")
        return sdpa_ok(q, k, v, mask)
    r = g("q5-code", no_batch)
    assert r.status == "partial" and 0 < r.score < 1, r.message


def test_softmax_over_wrong_dim_fails_property():
    r = g(
        "q5-code",
        lambda q, k, v, mask=None: (
            torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2) @ v
        ),
    )
    assert not r.correct and "確率分布" in " ".join(r.details)


def test_mutating_input_is_reported():
    def mutating(q, k, v, mask=None):
        q.mul_(1.0 / math.sqrt(q.shape[-1]))
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    r = g("q5-code", mutating)
    assert not r.correct and "書き換えて" in " ".join(r.details)


def test_infinite_loop_times_out(monkeypatch):
    import llmbook.quiz.codecheck as cc

    monkeypatch.setattr(cc, "TIME_LIMIT", 0.2)

    def forever(n):
        while True:
            pass
    r = g("q8-code", forever)
    assert not r.correct and "秒以内に終わりませんでした" in " ".join(r.details)


@pytest.mark.parametrize("value, expected", [(None, "まだ定義されていません"), (42, "関数そのもの"),
                                             (torch.ones(3), "関数そのもの")])
def test_not_a_function(value, expected):
    r = g("q8-code", value)
    assert r.status == "invalid" and expected in r.message


def test_error_shows_user_line():
    def broken(n):
        x = torch.ones(n)
        return x @ torch.ones(n + 1)  # 形が合わない
    r = g("q8-code", broken)
    text = " ".join(r.details)
    assert "RuntimeError" in text and "broken" in text


def _inverted_mask_attention(q, k, v, mask=None):
    """mask を「True = 参照できない」(nn.MultiheadAttention の約束) と取り違えた実装。"""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))   # 本当は ~mask
    return torch.softmax(scores, dim=-1) @ v


def test_inverted_attention_mask_is_diagnosed_even_though_it_gives_nan():
    r = g("q5-code", _inverted_mask_attention)
    assert r.status == "incorrect" and r.score == 0
    assert r.details[0].startswith("考えられる原因") and "逆" in r.details[0]
    assert "NaN" in " ".join(r.details)


def test_inverted_causal_mask_gets_only_the_inverted_diagnosis():
    """triu(1) (True = 未来) は n=1 で「対角を忘れた」実装と同じ出力になる。

    それでも、的外れな説明 (対角) は出さない。
    """
    r = g("q8-code", lambda n: torch.ones(n, n, dtype=torch.bool).triu(1))
    advice = [d for d in r.details if d.startswith("考えられる原因")]
    assert len(advice) == 1 and "逆" in advice[0] and "triu(1)" in advice[0]
    assert "対角" not in advice[0]


def test_partial_credit_explains_how_it_was_scored():
    def batch_unaware(q, k, v, mask=None):  # k.T などで、バッチ次元があると形が崩れる
        if q.dim() > 2:
            raise RuntimeError("形が合いません")
        return sdpa_ok(q, k, v, mask)
    r = g("q5-code", batch_unaware)
    assert r.status == "partial" and "4/5 項目を通過" in r.message, r.message
    scoring = [d for d in r.details if d.startswith("得点の付け方")]
    assert len(scoring) == 1 and "1 個 ÷ 全 5 項目" in scoring[0]


@pytest.mark.parametrize("qid, solution_words", [
    ("q5-code", ("masked_fill", "torch.softmax(scores")), ("q8-code", ("tril", "torch.ones")),
])
def test_hints_are_hints_not_the_solution(qid, solution_words):
    r = g(qid, lambda *a, **k: None)
    hint = next(d for d in r.details if d.startswith("ヒント"))
    assert not any(w in hint for w in solution_words), hint


def test_known_pytorch_errors_are_explained_in_japanese():
    def view_after_transpose(q, k, v, mask=None):
        out = sdpa_ok(q, k, v, mask)
        return out.transpose(-2, -1).view(out.shape)      # 連続でない Tensor の view
    r = g("q5-code", view_after_transpose)
    advice = [d for d in r.details if d.startswith("考えられる原因")]
    assert r.status == "incorrect" and len(advice) == 1
    assert "メモリ上で連続でない" in advice[0] and "reshape" in advice[0]
    # 同じ説明は 1 度だけ、元の英語のエラーは項目の行に残す
    assert "view size is not compatible" in " ".join(r.details)
    r = g("q5-code", lambda q, k, v, mask=None: None)
    assert not any("連続でない" in d for d in r.details)   # 関係のない誤りには出さない
