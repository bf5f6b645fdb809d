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
    assert_mistake_gets_zero_and_its_diagnosis,
    correct_response,
    correct_texts,
    diagnoses,
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
    # §5 で名前を付けたのは開きかぎかっこのヘッドと近くを見るヘッド。直前のトークンを見る
    # ヘッドは §5 では見つからず、§6 の 2 層モデルの層 0 に現れた (模範解答もそう書く)
    model = q["model_answer"]
    assert "開きかぎかっこを見るヘッド" in model and "近くを見るヘッド" in model
    assert "直前のトークンに置く重みなどをスコア" not in model and "層 0 で初めて現れた" in model


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
    # 分散 64 や 1/√64 を答えると、なぜ違うかが添えられる
    q = find_question(bank, "scale-std")
    assert [h["value"] for h in q["hints"]] == [64, 1 / math.sqrt(64)]
    assert "分散" in grade(q, "64").details[1] and "割る" in grade(q, "1/8").details[1]


def test_softmax_slope_matches_autograd(bank):
    def slope(p1):
        s = torch.log(torch.tensor([p1, 1 - p1], dtype=torch.float64)).requires_grad_()
        return torch.autograd.grad(s.softmax(-1)[0], s)[0][0].item()

    q = find_question(bank, "scale-slope")
    assert "(0.95, 0.05)" in q["prompt"]
    assert abs(slope(0.95) - q["answer"]) <= q["tolerance"] / 10
    assert abs(0.5 * 0.5 / q["answer"] - 5) < 0.5  # 解説の「約 5 分の 1」
    assert abs(0.5 * 0.5 / slope(0.99) - 25) < 0.5 and "0.0099" in q["explanation"]  # 約 25 分の 1
    # p_1 や p_2 だけを答えると不正解で、なぜ違うかが添えられる
    for wrong in ("0.05", "0.95", "5%", "95%"):
        r = grade(q, wrong)
        assert r.status == "incorrect" and len(r.details) == 2, wrong
        assert "積" in r.details[1]


def test_temperature_flattens_but_keeps_the_order(bank):
    s = torch.tensor([2.0, 0.5, -1.0, 1.0])
    ws = [(s / tau).softmax(-1) for tau in (0.5, 1.0, 4.0)]
    ent = [-(w * w.log()).sum().item() for w in ws]
    assert ent[0] < ent[1] < ent[2]
    assert all(torch.equal(w.argsort(), ws[0].argsort()) for w in ws)
    q = find_question(bank, "scale-temp")
    assert correct_texts(q)[0].startswith("一様分布に近づき")
    assert "温度 τ = √d_k で割る" in next(c["why"] for c in q["choices"] if c["correct"])


def test_shapes_numbers_match_the_chapter_code(bank):
    x = torch.randn(2, 10, 64)
    shape = tuple(split_heads(x, 8).shape)
    q = find_question(bank, "shapes-split")
    assert correct_texts(q) == [str(shape)] and str(shape) in q["explanation"]
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
    # 単位は KiB と問いに書き、バイトで答えたらそう言う。ヘッドの次元は本文と同じ d_k
    for qid, kib in (("kv-mha", mha), ("kv-gqa", gqa)):
        q = find_question(bank, qid)
        assert q["unit"] == "KiB" and "KiB の数で入力" in q["prompt"] and "d_k" in q["prompt"]
        r = grade(q, str(int(kib * 1024)))
        assert r.status == "incorrect" and "バイトの数" in r.details[1], qid
    assert "1 つのヘッドの次元で、d_model / h" in find_question(bank, "kv-mha")["prompt"]
    assert "d_k = d_model / h" in find_question(bank, "kv-mqa")["prompt"]
    assert "d_head" not in " ".join(find_question(bank, k)["prompt"] for k in ("kv-mha", "kv-gqa"))
    assert "h_kv = 8" in grade(find_question(bank, "kv-gqa"), "512").details[1]


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
    advice = diagnoses(result)
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
    "連結で transpose せずに reshape(B, T, d)",
]


@pytest.mark.parametrize("index", range(len(C.MHA_MISTAKES)))
def test_mha_mistakes_get_zero_and_their_diagnosis(index):
    assert_mistake_gets_zero_and_its_diagnosis(C.check_multi_head_attention, C.MHA_MISTAKES,
                                               MHA_WORDS, index)


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


def _mha_by_hand(merge):
    """正しく分け、``merge(out, B, T, d)`` で連結するマルチヘッドアテンション (誤りの例を作る)。"""
    def fn(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
        B, T, d = x.shape
        d_k = d // n_heads
        q, k, v = (
            (x @ w.T).view(B, T, n_heads, d_k).transpose(1, 2) for w in (w_q, w_k, w_v)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return merge(torch.softmax(scores, -1) @ v, B, T, d) @ w_o.T
    return fn


def test_mha_and_merge_share_the_no_transpose_diagnosis():
    """課題 3 で連結の transpose だけを忘れたら、課題 2 と同じ説明 (変数名だけ違う) が出る。"""
    merge_only_wrong = _mha_by_hand(lambda out, B, T, d: out.reshape(B, T, d))  # transpose なし
    r = C.check_multi_head_attention(merge_only_wrong)
    assert r.status == "incorrect" and r.score == 0
    advice = _only_diagnosis(r)
    assert C.MERGE_NO_TRANSPOSE.format(flat="d", x="out") in advice
    merge = _only_diagnosis(C.check_merge_heads(C._merge_no_transpose))
    assert C.MERGE_NO_TRANSPOSE.format(flat="h * d_k", x="x") in merge


@pytest.mark.parametrize("qid", ["code-merge", "code-mha"])
def test_view_after_transpose_is_explained_in_japanese(bank, qid):
    """transpose の後の view は PyTorch の英語の RuntimeError になる: 日本語で理由を添える。"""
    def merge(x):
        B, h, T, d_k = x.shape
        return x.transpose(1, 2).view(B, T, h * d_k)

    mha = _mha_by_hand(lambda out, B, T, d: out.transpose(1, 2).view(B, T, d))
    r = grade(find_question(bank, qid), merge if qid == "code-merge" else mha)
    assert r.status == "incorrect" and r.score == 0
    advice = _only_diagnosis(r)
    assert "メモリ上で連続でない" in advice and "reshape" in advice
    assert "view size is not compatible" in " ".join(r.details)   # 元のエラーも残す


def test_code_mha_prompt_says_what_may_be_called(bank):
    prompt = find_question(bank, "code-mha")["prompt"]
    assert "my_split_heads・my_merge_heads は呼ばずに" in prompt
    assert "F.softmax" in prompt and "F.scaled_dot_product_attention" in prompt

    def with_sdpa(x, w_q, w_k, w_v, w_o, n_heads, mask=None):   # プロンプトのとおり、これも通る
        B, T, d = x.shape
        q, k, v = (
            (x @ w.T).view(B, T, n_heads, d // n_heads).transpose(1, 2) for w in (w_q, w_k, w_v)
        )
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(B, T, d) @ w_o.T

    assert grade(find_question(bank, "code-mha"), with_sdpa).correct
