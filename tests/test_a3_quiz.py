"""A-3 の問題バンクとコード課題の採点関数のテスト。

バンクの数値は式と A-3 の実装から計算し直し、採点関数は正解を受け入れ、よくある誤りの
それぞれに 0 点とその誤り専用の説明を返すことを確かめる。
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn as nn

from conftest import (
    assert_auto_questions_grade,
    assert_code_solutions_pass_and_starters_fail,
    correct_response,
    correct_texts,
    find_question,
)
from llmbook.chapters.a3 import (
    MultiHeadAttention,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from llmbook.quiz import checks_a3 as C
from llmbook.quiz import grade, load_bank, load_glossary


@pytest.fixture(scope="module")
def bank():
    return load_bank("a3", reload=True)


# ---------------------------------------------------------------- バンクの形と採点


def test_bank_has_the_contracted_quizzes(bank):
    assert [q.id for q in bank.quizzes] == ["terms", "scaling", "shapes", "maps", "code"]
    types = [q["type"] for quiz in bank.quizzes for q in quiz.questions]
    assert {"matching", "short", "single", "multi", "numeric", "essay", "code"} <= set(types)
    assert types.count("essay") == 1
    assert [q["function_name"] for q in bank.quiz("code").questions] == [
        "my_split_heads", "my_merge_heads", "my_multi_head_attention",
    ]


def test_every_auto_question_accepts_its_answer_and_rejects_a_wrong_one(bank):
    assert_auto_questions_grade(bank)         # 記述問題 (自己採点) は下で別に確かめる
    for quiz in bank.quizzes:
        for q in quiz.questions:
            if q["type"] == "multi":  # 全部に印を付けても 0 点
                assert grade(q, list(range(len(q["choices"])))).score == 0, q["id"]
                assert grade(q, correct_response(q)).score == 1, q["id"]
            for r in q.get("rejects", []):  # よくある誤答は理由つきで退ける
                res = grade(q, r["answer"])
                assert not res.correct and r["why"] in " ".join(res.details), r["answer"]


def test_short_answers_accept_every_name_in_the_glossary(bank):
    terms = {t["id"]: t for t in load_glossary()}
    for qid, tid in [("terms-sdpa", "scaled-dot-product-attention"),
                     ("terms-self", "self-attention")]:
        t = terms[tid]
        names = [t["ja"], t["en"], *t["aliases"], *t["accept"]]
        q = find_question(bank, qid)
        assert set(names) <= set(q["answers"]), qid
        assert all(grade(q, n).correct for n in names), qid
        assert q["answers"][0] == t["ja"]  # 本の語が先頭 (解説でもこの語を使う)


def test_essay_is_self_assessed_against_key_ideas(bank):
    q = find_question(bank, "maps-essay")
    r = grade(q, {"text": "ヘッドごとに別の場所を見られる", "ticked": [0, 1]})
    assert r.status == "self_assessed" and r.score == pytest.approx(2 / len(q["key_ideas"]))
    # 章が示すこと (スコアで名前を付ける・切る実験) と、その限界 (冗長、Michel ほか 2019)
    ideas = " ".join(q["key_ideas"])
    assert "スコア" in ideas and "切って" in ideas and "Michel" in ideas


def test_matching_uses_the_book_headwords(bank):
    lefts = [p["left"] for p in find_question(bank, "terms-match")["pairs"]]
    for t in load_glossary():
        if t["id"] in ("query", "key", "value", "self-attention", "multi-head-attention",
                       "scaled-dot-product-attention"):
            assert f"{t['ja']} ({t['en']})" in lefts, t["id"]


# ---------------------------------------------------------------- 数値は計算で確かめる


def test_scaling_numbers(bank):
    g = torch.Generator().manual_seed(0)
    n = 100_000
    for d_k, qid, scaled in [(64, "scale-std", False), (512, "scale-after", True)]:
        q, k = torch.randn(n, d_k, generator=g), torch.randn(n, d_k, generator=g)
        dots = (q * k).sum(-1) / (math.sqrt(d_k) if scaled else 1.0)
        answer = find_question(bank, qid)["answer"]
        assert answer == (1.0 if scaled else math.sqrt(d_k))
        assert abs(dots.std().item() / answer - 1) < 0.02, qid  # 標本でもそうなる
    assert find_question(bank, "scale-ratio")["answer"] == math.sqrt(256) / math.sqrt(16)


def test_softmax_slope_matches_autograd(bank):
    s = torch.log(torch.tensor([0.99, 0.01], dtype=torch.float64)).requires_grad_()
    p = s.softmax(-1)
    (slope,) = torch.autograd.grad(p[0], s)
    q = find_question(bank, "scale-slope")
    assert abs(slope[0].item() - q["answer"]) <= q["tolerance"] / 10
    assert abs(0.5 * 0.5 / q["answer"] - 25) < 0.5  # 解説の「約 25 分の 1」


def test_temperature_flattens_but_keeps_the_order(bank):
    s = torch.tensor([2.0, 0.5, -1.0, 1.0])
    ws = [(s / tau).softmax(-1) for tau in (0.5, 1.0, 4.0)]
    ent = [-(w * w.log()).sum().item() for w in ws]
    assert ent[0] < ent[1] < ent[2]
    assert all(torch.equal(w.argsort(), ws[0].argsort()) for w in ws)
    assert correct_texts(find_question(bank, "scale-temp"))[0].startswith("一様分布に近づき")


def test_shapes_numbers_match_the_chapter_code(bank):
    x = torch.randn(2, 10, 64)
    shape = tuple(split_heads(x, 8).shape)
    assert correct_texts(find_question(bank, "shapes-split")) == [str(shape)]
    # view だけでは形は同じでも中身が違い、エラーにもならない (shapes-view)
    viewed = x.view(2, 8, 10, 8)
    assert viewed.shape == shape and not torch.equal(viewed, split_heads(x, 8))

    mha = MultiHeadAttention(16, 8)
    mha.keep_weights = True
    mha(torch.randn(4, 256, 16))
    answer = find_question(bank, "shapes-scores")["answer"]
    assert mha.weights.numel() == answer == 4 * 8 * 256 * 256

    answer = find_question(bank, "shapes-params")["answer"]
    for h in (1, 2, 4, 8, 16):  # h によらない
        assert sum(p.numel() for p in MultiHeadAttention(128, h).parameters()) == answer
    assert sum(p.numel() for p in nn.MultiheadAttention(128, 8).parameters()) == answer


def test_kv_cache_numbers(bank):
    def kib_per_token(n_layers, h_kv, d_k, bytes_per):
        return 2 * n_layers * h_kv * d_k * bytes_per / 1024

    mha, gqa, mqa = (kib_per_token(32, h_kv, 128, 2) for h_kv in (32, 8, 1))
    assert find_question(bank, "kv-mha")["answer"] == mha == 512
    assert find_question(bank, "kv-gqa")["answer"] == gqa == 128
    assert find_question(bank, "kv-mqa")["answer"] == mha / mqa == 32
    assert "16 KiB" in find_question(bank, "kv-mqa")["explanation"] and mqa == 16
    assert round(1000 * mha / 1024) == 500  # 解説の「1,000 トークンで約 500 MiB」


def test_mask_item_matches_the_attention_weights(bank):
    q = find_question(bank, "maps-mask")
    rows = re.findall(r"クエリ (\d): ([TF ]+)", q["prompt"])
    mask = torch.tensor([[c == "T" for c in row.split()] for _, row in rows])
    assert mask.shape == (4, 4)
    g = torch.Generator().manual_seed(0)
    qk = torch.randn(4, 8, generator=g)
    _, w = scaled_dot_product_attention(qk, qk, qk, mask)
    allowed = [f"キー {j}" for j in range(4) if w[3, j] > 0]
    assert allowed == correct_texts(q)


def test_an_all_false_mask_row_gives_nan_and_the_book_stops_it(bank):
    scores = torch.full((1, 3), float("-inf"))
    assert torch.isnan(scores.softmax(-1)).all()
    mask = torch.tensor([[True, False], [False, False]])
    with pytest.raises(ValueError, match="すべて False"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, 4), mask)
    assert "NaN" in correct_texts(find_question(bank, "maps-empty-row"))[0]


def test_induction_item_describes_an_induction_pattern(bank):
    q = find_question(bank, "maps-induction")
    tokens = re.search(r"「([A-Z ]+)」", q["prompt"]).group(1).split()
    for t_q, tok_q, t_k, tok_k in re.findall(r"クエリ (\d) \((\w)\) → キー (\d) \((\w)\)",
                                             q["prompt"]):
        t_q, t_k = int(t_q), int(t_k)
        assert tokens[t_q] == tok_q and tokens[t_k] == tok_k
        earlier = max(i for i in range(t_q) if tokens[i] == tokens[t_q])
        assert t_k == earlier + 1                        # 前の同じトークンの、すぐ次
        assert tokens[t_k] == tokens[t_q + 1]            # そこを写せば次のトークンが当たる
    assert correct_texts(q)[0].startswith("誘導ヘッド")


# ---------------------------------------------------------------- コード課題


def test_references_equal_the_chapter_and_pytorch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 12, generator=g)
    assert torch.equal(C.reference_split_heads(x, 3), split_heads(x, 3))
    y = torch.randn(2, 3, 5, 4, generator=g)
    assert torch.equal(C.reference_merge_heads(y), merge_heads(y))
    assert torch.equal(merge_heads(split_heads(x, 3)), x)

    ours = MultiHeadAttention(16, 4, bias=False)
    x = torch.randn(2, 6, 16, generator=g)
    ws = [lin.weight.detach() for lin in (ours.w_q, ours.w_k, ours.w_v, ours.w_o)]
    for mask in (None, torch.ones(6, 6, dtype=torch.bool).tril()):
        want = C.reference_multi_head_attention(x, *ws, 4, mask)      # nn.MultiheadAttention
        with torch.no_grad():
            assert (ours(x, mask) - want).abs().max() < 1e-6
        assert (C._mha_variant()(x, *ws, 4, mask) - want).abs().max() < 1e-6


def test_checker_leaves_the_global_random_state_alone(bank):
    ns: dict = {}
    exec(find_question(bank, "code-mha")["solution"], ns)  # noqa: S102
    before = torch.get_rng_state()
    assert C.check_multi_head_attention(ns["my_multi_head_attention"]).correct
    assert torch.equal(before, torch.get_rng_state())


def test_code_solutions_pass_and_starters_fail_gracefully(bank):
    assert_code_solutions_pass_and_starters_fail(bank)
    for q in bank.quiz("code").questions:
        ns: dict = {}
        exec(q["starter"], ns)  # noqa: S102
        r = grade(q, ns[q["function_name"]])
        assert "return を書き忘れていませんか" in " ".join(r.details), q["id"]


def _only_diagnosis(result) -> str:
    advice = [d for d in result.details if d.startswith("考えられる原因")]
    assert len(advice) == 1, advice
    return advice[0]


@pytest.mark.parametrize("check, wrong, words", [
    (C.check_split_heads, C._split_view_only, "view(B, h, T, d_k) で直接"),
    (C.check_split_heads, C._split_no_transpose, "(B, T, h, d_k) のままです"),
    (C.check_split_heads, C._split_wrong_transpose, "入れ替える次元が違います"),
    (C.check_split_heads, C._split_interleaved, "ヘッドへの配り方が違います"),
    (C.check_merge_heads, C._merge_no_transpose, "transpose せずに reshape"),
    (C.check_merge_heads, C._merge_wrong_order, "成分の並び順が違います"),
    (C.check_merge_heads, C._merge_not_flat, "(B, T, h, d_k) のままです"),
])
def test_split_and_merge_mistakes_get_zero_and_their_diagnosis(check, wrong, words):
    r = check(wrong)
    assert r.status == "incorrect" and r.score == 0
    assert words in _only_diagnosis(r)


MHA_WORDS = [
    "√d_k で割っていない",
    "√d_model で割っている",
    "softmax をとる次元が違う",
    "True と False を逆に",
    "mask を使っていない",
    "出力の射影 w_o を掛け忘れて",
    "ヘッドに分けずに",
    "重みを転置せずに",
    "transpose を忘れて",
]


@pytest.mark.parametrize("index", range(len(C.MHA_MISTAKES)))
def test_mha_mistakes_get_zero_and_their_diagnosis(index):
    wrong, why = C.MHA_MISTAKES[index]
    assert len(MHA_WORDS) == len(C.MHA_MISTAKES)
    r = C.check_multi_head_attention(wrong)
    assert r.status == "incorrect" and r.score == 0
    advice = _only_diagnosis(r)
    assert why in advice and MHA_WORDS[index] in advice


def test_broken_answers_get_a_clear_message_not_a_crash(bank):
    def boom(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
        raise RuntimeError("まだ書いていません")

    def wrong_shape(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
        return x[..., :-1]

    def not_a_tensor(x, n_heads):
        return [1, 2, 3]

    q = find_question(bank, "code-mha")
    r = grade(q, boom)
    assert r.status == "incorrect" and "実行中にエラー: RuntimeError" in " ".join(r.details)
    r = grade(q, wrong_shape)
    text = " ".join(r.details)
    assert r.status == "incorrect" and "形が違います" in text and "(1, 6, 16) の Tensor" in text
    r = grade(find_question(bank, "code-split"), not_a_tensor)
    assert r.status == "incorrect" and "Tensor を返すはずが list" in " ".join(r.details)
    r = grade(find_question(bank, "code-merge"), "my_merge_heads(x)")
    assert r.status == "invalid" and "関数そのもの" in r.message
