"""A-4 の問題バンクとコード課題の採点関数のテスト。

バンクの数値・グラフの説明は式と A-4 の実装から計算し直し、採点関数は正解を受け入れ、
よくある誤りのそれぞれに 0 点とその誤り専用の説明を返すことを確かめる。
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import (
    assert_auto_questions_grade,
    assert_code_solutions_pass_and_starters_fail,
    assert_mistake_gets_zero_and_its_diagnosis,
    correct_response,
    correct_texts,
    diagnoses,
    find_question,
)
from llmbook.chapters.a2 import causal_mask
from llmbook.chapters.a3 import MultiHeadAttention
from llmbook.chapters.a4 import FeedForward, GatedFeedForward, gelu
from llmbook.quiz import checks_a4 as C
from llmbook.quiz import grade, load_bank
from llmbook.quiz.codecheck import _passes


@pytest.fixture(scope="module")
def bank():
    return load_bank("a4", reload=True)


def _n_params(module, weights_only=False):
    return sum(p.numel() for p in module.parameters() if not weights_only or p.ndim == 2)


# ---------------------------------------------------------------- バンクの形と採点


def test_bank_has_the_contracted_quizzes(bank):
    assert [q.id for q in bank.quizzes] == ["ffn", "activations", "params", "memory", "code"]
    types = [q["type"] for quiz in bank.quizzes for q in quiz.questions]
    assert {"matching", "single", "multi", "numeric", "essay", "code"} <= set(types)
    assert types.count("essay") == 1
    assert [q["function_name"] for q in bank.quiz("code").questions] == [
        "my_gelu", "my_swiglu_ffn",
    ]


def test_every_auto_question_accepts_its_answer_and_rejects_a_wrong_one(bank):
    assert_auto_questions_grade(bank)         # 記述問題 (自己採点) は下で別に確かめる
    for quiz in bank.quizzes:
        for q in quiz.questions:
            if q["type"] == "multi":  # 全部に印を付けても 0 点
                assert grade(q, list(range(len(q["choices"])))).score == 0, q["id"]
                assert grade(q, correct_response(q)).score == 1, q["id"]


def test_shares_accept_fractions_decimals_and_percentages(bank):
    for qid, answers in [("params-share", ["2/3", "0.667", "66.7%", "67%"]),
                         ("params-embed", ["1/2", "0.5", "50%"])]:
        q = find_question(bank, qid)
        assert all(grade(q, a).correct for a in answers), qid
    # 50 は 50% ではない (5,000%)
    assert not grade(find_question(bank, "params-embed"), "50").correct


def test_essay_is_self_assessed_against_key_ideas(bank):
    q = find_question(bank, "mem-essay")
    r = grade(q, {"text": "幅を広げると多く覚えられる", "ticked": [1]})
    assert r.status == "self_assessed" and r.score == pytest.approx(1 / len(q["key_ideas"]))
    ideas = " ".join(q["key_ideas"])
    # 測った容量、章で見つかったニューロン (文字の 2 つ組、文脈に選択的なものはなし)、
    # 分散した表現とアテンション、測ってから主張する
    for words in ("d_ff とともに増える", "文字の 2 つ組", "見つからなかった", "アテンションも",
                  "測った範囲"):
        assert words in ideas, words


# ---------------------------------------------------------------- 位置ごとの FFN


def _changed_positions(layer, x, t=3):
    x2 = x.clone()
    x2[:, t] = torch.randn(x.shape[-1], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        diff = (layer(x2) - layer(x)).abs().amax(dim=(0, 2))   # 位置ごとの変化
    return {i for i, v in enumerate(diff.tolist()) if v > 1e-6}


def test_perturbation_item_matches_ffn_and_attention():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16)
    ffn = FeedForward(16)
    mha = MultiHeadAttention(16, 4)
    measured = {
        "FFN": _changed_positions(ffn, x),
        "因果マスクつきの自己注意": _changed_positions(lambda h: mha(h, causal_mask(6)), x),
        "マスクのない自己注意": _changed_positions(lambda h: mha(h), x),
    }
    stated = {"位置 3 だけ": {3}, "位置 3, 4, 5 (位置 3 とそれより後ろ)": {3, 4, 5},
              "位置 0〜5 のすべて": set(range(6))}
    q = find_question(load_bank("a4"), "ffn-perturb")
    assert "T = 6" in q["prompt"] and "位置 3" in q["prompt"]
    assert {p["left"]: stated[p["right"]] for p in q["pairs"]} == measured


def test_ffn_is_the_same_mlp_at_every_position_and_never_sees_other_tokens(bank):
    torch.manual_seed(1)
    ffn = FeedForward(8, 20, "relu")
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        loop = torch.stack([ffn(x[:, t]) for t in range(5)], dim=1)
        assert torch.allclose(ffn(x), loop, atol=1e-6)                 # ffn-position
        assert torch.allclose(ffn(x), ffn(x.reshape(15, 8)).reshape(3, 5, 8), atol=1e-6)
    # FFN だけを (残差接続つきで) 積んだネットでも、位置 t の出力は位置 t の入力だけで決まる
    # (ffn-no-attn)
    stack = [FeedForward(8, 16) for _ in range(3)]

    def net(h):
        for f in stack:
            h = h + f(F.layer_norm(h, (8,)))
        return h

    jac = torch.autograd.functional.jacobian(net, x[0])             # (5, 8, 5, 8)
    across = jac.abs().sum(dim=(1, 3))                               # (出力の位置, 入力の位置)
    assert torch.count_nonzero(across - torch.diag(torch.diagonal(across))) == 0
    assert correct_texts(find_question(bank, "ffn-no-attn"))[0].startswith("位置 t のトークン")


# ---------------------------------------------------------------- 活性化関数


def _minimum(fn):
    x = torch.linspace(-4, 0, 400_001, dtype=torch.float64)
    y = fn(x)
    i = int(y.argmin())
    return x[i].item(), y[i].item()


def _grad(fn, x):
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g


def test_activation_plot_descriptions_are_true(bank):
    pairs = {p["left"]: p["right"] for p in find_question(bank, "act-match")["pairs"]}
    for left, fn in [("GELU: x Φ(x)", F.gelu), ("SiLU (Swish): x σ(x)", F.silu)]:
        where, value = _minimum(fn)
        x_text, y_text = re.search(r"x ≈ (−[\d.]+) で最小値 ≈ (−[\d.]+)", pairs[left]).groups()
        assert float(x_text.replace("−", "-")) == round(where, 2)
        assert float(y_text.replace("−", "-")) == round(value, 2)
    assert _minimum(F.silu)[1] == pytest.approx(-0.2785, abs=1e-4)   # 本文の −0.278 にも合う
    assert _minimum(F.silu)[0] == pytest.approx(-1.2785, abs=1e-3)
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    # GELU は大きな負では 0 に近づき、SiLU は大きな正で y = x に近づく
    assert abs(F.gelu(torch.tensor(-8.0)).item()) < 1e-12
    assert abs(F.silu(torch.tensor(12.0)).item() - 12.0) < 1e-4
    # ReLU の導関数は 0 と 1 の 2 段 (x = 0 ちょうどでは PyTorch は 0)
    assert set(_grad(F.relu, x).tolist()) == {0.0, 1.0}
    assert _grad(F.relu, torch.zeros(1)).item() == 0.0
    # シグモイドは (0, 1) の S 字、x = 0 で 0.5、導関数の最大は x = 0 で 0.25
    s, ds = torch.sigmoid(x), _grad(torch.sigmoid, x)
    assert 0 < s.min() and s.max() < 1 and torch.sigmoid(torch.tensor(0.0)).item() == 0.5
    assert ds.max().item() == pytest.approx(0.25) and x[ds.argmax()].item() == pytest.approx(0)
    assert "0.25" in pairs["シグモイド σ(x) (GLU のゲート)"]


def test_negative_values_item(bank):
    x = torch.linspace(-6, 0, 6001, dtype=torch.float64)
    fns = {"GELU": F.gelu, "SiLU (Swish)": F.silu, "ReLU": F.relu, "シグモイド": torch.sigmoid}
    negative = {name for name, fn in fns.items() if fn(x).min() < 0}
    q = find_question(bank, "act-negative")
    assert set(correct_texts(q)) == negative
    assert {c["text"] for c in q["choices"]} == set(fns)


def test_tanh_approximation_numbers(bank):
    x = torch.linspace(-8, 8, 160_001, dtype=torch.float64)
    diff = (F.gelu(x) - F.gelu(x, approximate="tanh")).abs()
    assert diff.max() < 1e-3                                          # 「0.001 未満」
    assert round(diff.max().item() * 1e4) == 5                        # 「約 5 × 10⁻⁴」
    assert round(abs(x[diff.argmax()].item()), 1) == 2.7              # 「|x| ≈ 2.7 のあたり」
    # 近似にも負の側の谷が残る / erf は微分できる (導関数 (2/√π) e^(−x²))
    assert F.gelu(x, approximate="tanh").min() < -0.16
    g = _grad(torch.erf, x)
    assert torch.allclose(g, 2 / math.sqrt(math.pi) * torch.exp(-x ** 2))
    q = find_question(bank, "act-tanh")
    assert "0.001 未満" in correct_texts(q)[0] and "5 × 10⁻⁴" in q["choices"][0]["why"]
    # 差は採点の許容誤差 (1e-5) よりずっと大きい (コード課題の解説)
    assert diff.max() > 10 * 1e-5


def test_dead_relu_neuron_gets_no_gradient(bank):
    torch.manual_seed(2)
    ffn = FeedForward(8, 16, "relu")
    with torch.no_grad():
        ffn.fc1.bias[0] = -100.0                  # どの入力でも活性化前の値が負
    x = torch.randn(64, 8)
    ffn(x).pow(2).sum().backward()
    assert ffn.fc1.weight.grad[0].abs().max() == 0 and ffn.fc1.bias.grad[0] == 0
    assert ffn.fc1.weight.grad[1:].abs().sum() > 0
    # GELU では x < 0 でも傾きが 0 でないので、同じように負に寄せたニューロンにも勾配が届く
    ffn_g = FeedForward(8, 16, "gelu")
    with torch.no_grad():
        ffn_g.fc1.bias[0] = -1.0
    ffn_g(x).pow(2).sum().backward()
    assert ffn_g.fc1.weight.grad[0].abs().max() > 0
    right = correct_texts(find_question(bank, "act-dead"))[0]
    assert right.startswith("活性化前の値がどの入力でも負")


# ---------------------------------------------------------------- パラメータ数


def test_numeric_hints_are_the_typical_slips_and_are_shown(bank):
    d, d_ff, d_big = 512, 2048, 768
    slips = {"params-ffn": {2 * d * d_ff, 2 * d * d_ff + d_ff},            # バイアスなし・片方だけ
             "params-swiglu-dff": {4 * d_big},                              # 4d のまま
             "params-swiglu-count": {2 * d_big * 2048, 3 * d_big * 4 * d_big}}   # 2 枚・4d のまま
    for qid, values in slips.items():
        q = find_question(bank, qid)
        assert {h["value"] for h in q["hints"]} == values, qid
        for h in q["hints"]:
            r = grade(q, f"{h['value']:.0f}")
            assert not r.correct and h["why"] in r.details, qid


def test_parameter_counts_match_the_chapter_modules(bank):
    d, d_ff = 512, 2048
    assert _n_params(FeedForward(d, d_ff)) == find_question(bank, "params-ffn")["answer"]
    assert find_question(bank, "params-ffn")["answer"] == 2 * d * d_ff + d_ff + d
    assert "2,560" in find_question(bank, "params-ffn")["explanation"]
    assert round(100 * (d_ff + d) / (2 * d * d_ff + d_ff + d), 1) == 0.1

    d = 64
    ffn_w = _n_params(FeedForward(d), weights_only=True)
    attn_w = _n_params(MultiHeadAttention(d, 4), weights_only=True)
    assert (attn_w, ffn_w) == (16_384, 32_768)
    share = find_question(bank, "params-share")["answer"]
    assert ffn_w / (ffn_w + attn_w) == pytest.approx(share, abs=1e-6)

    d = 768
    swiglu = GatedFeedForward(d)
    assert swiglu.d_ff == find_question(bank, "params-swiglu-dff")["answer"] == 8 * d / 3
    n = _n_params(swiglu)
    assert n == find_question(bank, "params-swiglu-count")["answer"] == 8 * d * d
    assert n == _n_params(FeedForward(d, bias=False))                # 4d の FFN と同じ
    # 4d のまま 3 枚にすると 1.5 倍 (params-rule の解説)
    assert _n_params(GatedFeedForward(d, 4 * d)) == 1.5 * n == 12 * d * d


@pytest.mark.parametrize("d", [48, 96, 384, 768])
def test_the_8_3_rule_keeps_the_parameter_count(d):
    for variant in ("glu", "geglu", "swiglu"):
        assert _n_params(GatedFeedForward(d, variant=variant)) == _n_params(
            FeedForward(d, bias=False))


def test_embedding_share_item(bank):
    q = find_question(bank, "params-embed")
    V, d, L = (int(re.search(rf"{k} = ([\d,]+)", q["prompt"]).group(1).replace(",", ""))
               for k in ("V", "d", "L"))
    share = V * d / (V * d + L * 12 * d * d)
    assert share == q["answer"] and V == 12 * d * L
    assert f"{V * d:,}" in q["explanation"] and f"{L * 12 * d * d:,}" in q["explanation"]
    small = 256 * d / (256 * d + L * 12 * d * d)
    assert round(100 * small, 1) == 0.5                                # 「0.5% ほど」


# ---------------------------------------------------------------- キー・バリュー記憶


def test_ffn_is_a_sum_of_values_weighted_by_key_matches(bank):
    torch.manual_seed(3)
    ffn = FeedForward(8, 12, "relu", bias=False)
    x = torch.randn(8)
    keys, values = ffn.fc1.weight, ffn.fc2.weight                      # (d_ff, d), (d, d_ff)
    with torch.no_grad():
        coef = torch.relu(torch.stack([k @ x for k in keys]))           # W_1 の各行と内積
        summed = sum(c * values[:, i] for i, c in enumerate(coef))      # W_2 の各列を足す
        assert torch.allclose(ffn(x), summed, atol=1e-6)
        assert abs(coef.sum().item() - 1) > 1e-3                        # ソフトマックスではない
    q = find_question(bank, "mem-kv")
    right = sum(c["correct"] for c in q["choices"])
    assert right == 3 and len(q["choices"]) - right >= right


# ---------------------------------------------------------------- コード課題


def test_references_equal_the_chapter_and_pytorch():
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(4, 7, generator=g)
    for approx in ("none", "tanh"):
        assert torch.allclose(C.reference_gelu(x, approx), gelu(x, approx), atol=1e-6)
    assert torch.allclose(C.reference_gelu(x), C._exact(x), atol=1e-6)
    assert torch.allclose(C.reference_gelu(x, "tanh"), C._tanh(x), atol=1e-6)

    x = torch.randn(2, 5, 12, generator=g)
    for variant, gate in [("swiglu", F.silu), ("glu", torch.sigmoid), ("geglu", F.gelu)]:
        ffn = GatedFeedForward(12, 20, variant)
        ws = [lin.weight.detach() for lin in (ffn.w_gate, ffn.w_up, ffn.w_down)]
        with torch.no_grad():
            want = ffn(x)
        assert torch.allclose(C._swiglu_variant(gate=gate)(x, *ws), want, atol=1e-6), variant
        if variant == "swiglu":
            assert torch.allclose(C.reference_swiglu_ffn(x, *ws), want, atol=1e-6)


def test_checkers_leave_the_global_random_state_alone(bank):
    before = torch.get_rng_state()
    for q in bank.quiz("code").questions:
        ns: dict = {}
        exec(q["solution"], ns)  # noqa: S102
        assert grade(q, ns[q["function_name"]]).correct, q["id"]
    assert torch.equal(before, torch.get_rng_state())


def test_code_solutions_pass_and_starters_fail_gracefully(bank):
    assert_code_solutions_pass_and_starters_fail(bank)
    for q in bank.quiz("code").questions:
        ns: dict = {}
        exec(q["starter"], ns)  # noqa: S102
        r = grade(q, ns[q["function_name"]])
        assert "return を書き忘れていませんか" in " ".join(r.details), q["id"]


#: 採点関数ごとの「よくある誤り」の説明に入っているはずの言葉 (誤りの並びと同じ順)
WORDS = {
    "gelu": ["sigmoid(1.702 x) の近似", "0.5 を忘れて", "erf(x) を使って",
             "tanh 近似になっていません", "ときも tanh 近似になっています",
             "平らな 1 次元の Tensor", "x³ ではなく x²", "float32 に変えて"],
    "swiglu": ["SiLU をかける側が逆", "シグモイドを使っている", "GELU を使っている",
               "重みを転置せずに", "ゲートと値を足している", "w_down を掛け忘れて",
               "h @ w_down と掛けている", "積の後に通している"],
}
CHECKS = {"gelu": (C.check_gelu, C.GELU_MISTAKES),
          "swiglu": (C.check_swiglu_ffn, C.SWIGLU_MISTAKES)}


@pytest.mark.parametrize("name, index", [(name, i) for name, (_, mistakes) in CHECKS.items()
                                         for i in range(len(mistakes))])
def test_each_known_mistake_gets_zero_and_its_own_diagnosis(name, index):
    check, mistakes = CHECKS[name]
    assert_mistake_gets_zero_and_its_diagnosis(check, mistakes, WORDS[name], index)


def test_gelu_swapped_branches_get_both_branch_diagnoses():
    def swapped(x, approximate="none"):
        return C._exact(x) if approximate == "tanh" else C._tanh(x)

    r = C.check_gelu(swapped)
    assert r.status == "incorrect" and r.score == 0
    advice = " ".join(diagnoses(r))
    assert "tanh 近似になっていません" in advice and "ときも tanh 近似になっています" in advice


def test_gelu_scoring_note_is_true_and_replaces_the_generic_one():
    # GELU_SCORING は「どの項目も、よくある誤りのどれかでも通る」と言う: それを確かめる
    for case in C._gelu_cases():
        expected = C.reference_gelu(*case.args, **case.kwargs)
        assert any(_passes(w, case, expected, 1e-5, 1e-4) for w, _ in C.GELU_MISTAKES), case.label

    def exact_only(x, approximate="none"):                   # tanh の分岐を書いていない
        return C._exact(x)

    r = C.check_gelu(exact_only)
    assert r.score == 0 and "3/6 項目を通過" in r.message and "全項目を通ったとき" in r.message
    assert C.GELU_SCORING in r.details
    assert not any(d.startswith("得点の付け方") and d != C.GELU_SCORING for d in r.details)


def test_gelu_written_in_place_gets_zero_and_says_so():
    def in_place(x, approximate="none"):
        return x.mul_(0.5 * (1 + torch.erf(x / math.sqrt(2))))   # 値は正しいが x を書き換える

    r = C.check_gelu(in_place)
    assert r.status == "incorrect" and r.score == 0
    assert "入力のテンソルをその場で書き換えています" in " ".join(r.details)


def test_broken_answers_get_a_clear_message_not_a_crash(bank):
    def boom(x, w_gate, w_up, w_down):
        raise RuntimeError("まだ書いていません")

    def wrong_shape(x, w_gate, w_up, w_down):
        return x[..., :-1]

    def not_a_tensor(x, approximate="none"):
        return [1, 2, 3]

    q = find_question(bank, "code-swiglu")
    r = grade(q, boom)
    assert r.status == "incorrect" and "実行中にエラー: RuntimeError" in " ".join(r.details)
    r = grade(q, wrong_shape)
    text = " ".join(r.details)
    assert r.status == "incorrect" and "形が違います" in text and "(2, 5, 7)" in text
    r = grade(find_question(bank, "code-gelu"), not_a_tensor)
    assert r.status == "incorrect" and "Tensor を返すはずが list" in " ".join(r.details)
    r = grade(find_question(bank, "code-gelu"), "my_gelu(x)")
    assert r.status == "invalid" and "関数そのもの" in r.message
