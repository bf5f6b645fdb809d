"""A-4「FFN と活性化関数」のテスト: 書き出したモジュール (llmbook/chapters/a4.py)。

本文の主張 (活性化関数が F.* と一致すること、導関数の式、FFN が位置を混ぜないこと、ゲートつき
FFN が式と F.glu に一致すること、8/3 の規則のパラメータ数、A-2 の骨格に差し込めること) を、
ノートブックとは違う形・乱数・dtype で確かめる。誤った入力には日本語のエラー。
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from llmbook import set_seed
from llmbook.chapters.a2 import MLP, DecoderLM, count_parameters
from llmbook.chapters.a3 import MultiHeadAttention
from llmbook.chapters.a4 import (
    ACTIVATIONS,
    GATES,
    FeedForward,
    GatedFeedForward,
    gelu,
    make_ffn,
    relu,
    silu,
)

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
TORCH_ACTS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
              "silu": F.silu}
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- §2 活性化関数
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(3))
def test_activations_match_torch_for_random_inputs(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    shape = tuple(int(n) for n in torch.randint(1, 6, (int(torch.randint(1, 4, (1,))),),
                                                generator=g))
    x = (torch.randn(shape, generator=g) * 4).to(dtype)
    for name, theirs in TORCH_ACTS.items():
        out = ACTIVATIONS[name](x)
        assert out.shape == x.shape and out.dtype == dtype, name
        assert (out - theirs(x)).abs().max() <= TOL[dtype], (name, dtype)


def test_activations_handle_extremes_like_torch():
    x = torch.tensor([-1e4, -50.0, -0.0, 0.0, 50.0, 1e4, float("inf"), float("-inf")])
    for name, theirs in TORCH_ACTS.items():
        ours, ref = ACTIVATIONS[name](x), theirs(x)
        assert torch.allclose(ours, ref, equal_nan=True), (name, ours, ref)


def test_gelu_tanh_is_close_to_but_not_equal_to_exact_gelu():
    x = torch.linspace(-8, 8, 16001, dtype=torch.float64)
    gap = (gelu(x) - gelu(x, "tanh")).abs()
    assert 1e-4 < gap.max() < 1e-3
    assert 2 < x[gap.argmax()].abs() < 3.5


def _grad(f, x):
    x = x.detach().clone().requires_grad_()
    f(x).sum().backward()
    return x.grad


def test_derivatives_match_closed_forms_and_torch_autograd():
    x = torch.linspace(-7, 7, 1000, dtype=torch.float64)          # 0 ちょうどは含まない
    assert not (x == 0).any()
    pdf = torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    sig = torch.sigmoid(x)
    closed = {"relu": (x > 0).double(), "gelu": cdf + x * pdf, "silu": sig * (1 + x * (1 - sig))}
    for name, expected in closed.items():
        assert (_grad(ACTIVATIONS[name], x) - expected).abs().max() <= 1e-12, name
    for name, theirs in TORCH_ACTS.items():
        assert (_grad(ACTIVATIONS[name], x) - _grad(theirs, x)).abs().max() <= 1e-12, name


def test_relu_gradient_at_exactly_zero_is_the_clamp_convention():
    zero = torch.zeros(3)
    assert torch.equal(_grad(relu, zero), torch.ones(3))         # clamp_min: 1 (本文で印字)
    assert torch.equal(_grad(F.relu, zero), torch.zeros(3))      # PyTorch の F.relu: 0


def test_gelu_and_silu_have_their_negative_minimum():
    x = torch.linspace(-4, 0, 40001, dtype=torch.float64)
    for f, (y_min, x_min) in ((gelu, (-0.170, -0.752)), (silu, (-0.2785, -1.2785))):
        y = f(x)
        assert abs(y.min() - y_min) < 1e-3 and abs(x[y.argmin()] - x_min) < 1e-2


# ---------------------------------------------------------------- §1 位置ごとの FFN
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(6,), (4, 6), (2, 5, 6), (2, 3, 4, 6)])
def test_feedforward_equals_its_formula_and_a_loop_over_positions(activation, shape):
    set_seed(1)
    ffn = FeedForward(6, 10, activation)
    x = torch.randn(shape)
    with torch.no_grad():
        out = ffn(x)
        flat = x.reshape(-1, 6)
        loop = torch.stack([ffn(row) for row in flat]).reshape(shape)
        formula = ACTIVATIONS[activation](x @ ffn.fc1.weight.T + ffn.fc1.bias) @ ffn.fc2.weight.T \
            + ffn.fc2.bias
    assert out.shape == shape
    assert (out - loop).abs().max() <= 1e-6 and (out - formula).abs().max() <= 1e-6


@pytest.mark.parametrize("kind", ["gelu", "swiglu"])
def test_ffn_never_mixes_positions(kind):
    set_seed(2)
    ffn = make_ffn(kind, 4, 7)
    x = torch.randn(5, 4)                                         # (T, d)
    jac = torch.autograd.functional.jacobian(ffn, x)              # (T, d, T, d)
    for t in range(5):
        for s in range(5):
            block = jac[t, :, s, :]
            if s == t:
                assert block.abs().max() > 0
            else:
                assert torch.equal(block, torch.zeros_like(block)), (t, s)


def test_default_feedforward_is_a2_mlp():
    set_seed(3)
    mlp, ffn = MLP(12), FeedForward(12)
    ffn.load_state_dict(mlp.state_dict())
    x = torch.randn(3, 4, 12)
    assert ffn.d_ff == 48 and ffn.activation == "gelu"
    assert (ffn(x) - mlp(x)).abs().max() <= 1e-6


@pytest.mark.parametrize("d, d_ff, bias", [(8, None, True), (8, 5, True), (16, 40, False)])
def test_feedforward_parameter_count(d, d_ff, bias):
    f = 4 * d if d_ff is None else d_ff
    expected = 2 * d * f + (f + d if bias else 0)
    assert _count(FeedForward(d, d_ff, "relu", bias=bias)) == expected


@pytest.mark.parametrize("kind", [*ACTIVATIONS, *GATES])
def test_keep_hidden_stores_the_post_activation_values(kind):
    set_seed(4)
    ffn = make_ffn(kind, 6, 9)
    x = torch.randn(2, 3, 6, requires_grad=True)
    ffn(x)
    assert ffn.hidden is None                                     # 既定では残さない
    ffn.keep_hidden = True
    out = ffn(x)
    assert ffn.hidden.shape == (2, 3, 9) and not ffn.hidden.requires_grad
    if kind in GATES:
        expected = GATES[kind](ffn.w_gate(x)) * ffn.w_up(x)
        back = ffn.w_down(ffn.hidden)
    else:
        expected = ACTIVATIONS[kind](ffn.fc1(x))
        back = ffn.fc2(ffn.hidden)
    assert torch.allclose(ffn.hidden, expected.detach()) and torch.allclose(back, out)
    if kind == "relu":
        assert (ffn.hidden >= 0).all()


# ---------------------------------------------------------------- §2 ゲートつき FFN
@pytest.mark.parametrize("seed", range(3))
def test_glu_ffn_equals_f_glu_with_values_first(seed):
    set_seed(seed)
    g = GatedFeedForward(10, 7, "glu")
    x = torch.randn(3, 4, 10)
    with torch.no_grad():
        right = g.w_down(F.glu(x @ torch.cat([g.w_up.weight, g.w_gate.weight]).T, dim=-1))
        wrong = g.w_down(F.glu(x @ torch.cat([g.w_gate.weight, g.w_up.weight]).T, dim=-1))
        out = g(x)
    assert (out - right).abs().max() <= 1e-6
    assert (out - wrong).abs().max() > 1e-3


@pytest.mark.parametrize("variant, act", [("glu", torch.sigmoid), ("geglu", F.gelu),
                                          ("swiglu", F.silu)])
def test_gated_variants_equal_their_formulas(variant, act):
    set_seed(5)
    g = GatedFeedForward(9, 13, variant, bias=True)
    x = torch.randn(2, 6, 9, dtype=torch.float64)
    g = g.double()
    with torch.no_grad():
        gate = act(x @ g.w_gate.weight.T + g.w_gate.bias)
        up = x @ g.w_up.weight.T + g.w_up.bias
        expected = (gate * up) @ g.w_down.weight.T + g.w_down.bias
        assert (g(x) - expected).abs().max() <= 1e-12


def test_swiglu_differs_from_geglu_and_glu_with_the_same_weights():
    set_seed(6)
    outs = {}
    x = torch.randn(4, 8)
    for variant in GATES:
        set_seed(6)
        outs[variant] = GatedFeedForward(8, 12, variant)(x)
    assert not torch.allclose(outs["swiglu"], outs["geglu"], atol=1e-4)
    assert not torch.allclose(outs["swiglu"], outs["glu"], atol=1e-4)


@pytest.mark.parametrize("d", [3, 12, 48, 96, 768])
def test_eight_thirds_rule_matches_the_4d_ffn_exactly_when_divisible(d):
    gated = GatedFeedForward(d)
    assert gated.d_ff == 8 * d // 3
    assert _count(gated) == 8 * d * d == _count(FeedForward(d, activation="relu", bias=False))


@pytest.mark.parametrize("d", [1, 2, 4, 10, 64, 100, 1000])
def test_eight_thirds_rule_is_off_only_by_rounding(d):
    gated = GatedFeedForward(d)
    assert gated.d_ff == round(8 * d / 3)
    diff = _count(gated) - 8 * d * d
    assert diff == 3 * d * gated.d_ff - 8 * d * d and abs(diff) <= 1.5 * d


def test_make_ffn_builds_the_right_class_and_width():
    for kind in ACTIVATIONS:
        f = make_ffn(kind, 12)
        assert isinstance(f, FeedForward) and f.d_ff == 48 and f.activation == kind
    for kind in GATES:
        f = make_ffn(kind, 12)
        assert isinstance(f, GatedFeedForward) and f.d_ff == 32 and f.variant == kind
        assert f.w_gate.bias is None
    assert make_ffn("swiglu", 12, 20).d_ff == 20 and make_ffn("relu", 12, 20).d_ff == 20


# ---------------------------------------------------------------- A-2 の骨格に差し込む
@pytest.mark.parametrize("kind", [*ACTIVATIONS, *GATES])
def test_decoder_lm_with_each_ffn_runs_trains_and_counts(kind):
    set_seed(7)
    V, d, L = 30, 24, 3
    lm = DecoderLM(V, d, L, 4, 16, make_attn=MultiHeadAttention,
                   make_ffn=lambda m: make_ffn(kind, m))
    ids = torch.randint(0, V, (2, 10))
    logits = lm(ids)
    assert logits.shape == (2, 10, V)
    F.cross_entropy(logits.reshape(-1, V), ids.roll(-1, 1).reshape(-1)).backward()
    for block in lm.blocks:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.ffn.parameters())
    f = lm.blocks[0].ffn.d_ff
    formula = L * 3 * d * f if kind in GATES else L * (2 * d * f + f + d)
    n = count_parameters(lm)
    assert n["FFN"] == formula == sum(_count(b.ffn) for b in lm.blocks)
    assert sum(n.values()) == _count(lm)


def test_ffn_share_of_the_books_block_is_two_thirds_for_matrices():
    lm = DecoderLM(50, 64, 2, 4, make_attn=MultiHeadAttention,
                   make_ffn=lambda m: make_ffn("gelu", m))
    mats = {part: sum(p.numel() for name, p in lm.named_parameters()
                      if f".{part}." in name and p.ndim == 2) for part in ("attn", "ffn")}
    assert 3 * mats["ffn"] == 2 * (mats["attn"] + mats["ffn"])


# ---------------------------------------------------------------- 誤った入力
BAD = {
    "d_ff = 0": (ValueError, "d_ff", lambda: FeedForward(8, 0)),
    "d_ff < 0 (gated)": (ValueError, "d_ff", lambda: GatedFeedForward(8, -2)),
    "d_ff float": (ValueError, "d_ff", lambda: make_ffn("relu", 8, 2.5)),
    "d_ff bool": (ValueError, "d_ff", lambda: FeedForward(8, True)),
    "d_model = 0": (ValueError, "d_model", lambda: FeedForward(0)),
    "d_model float": (ValueError, "d_model", lambda: GatedFeedForward(6.0)),
    "d_model str": (ValueError, "d_model", lambda: make_ffn("gelu", "64")),
    "unknown activation": (ValueError, "tanh", lambda: FeedForward(8, 16, "tanh")),
    "activation not str": (ValueError, "None", lambda: FeedForward(8, 16, None)),
    "unknown gate": (ValueError, "reglu", lambda: GatedFeedForward(8, 16, "reglu")),
    "make_ffn unknown": (ValueError, "swiglu", lambda: make_ffn("swish", 8)),
    "wrong last dim": (ValueError, "d_model = 8", lambda: FeedForward(8)(torch.randn(2, 3, 5))),
    "wrong last dim gated": (ValueError, "(4, 7)", lambda: GatedFeedForward(8)(torch.randn(4, 7))),
    "scalar input": (ValueError, "d_model", lambda: FeedForward(1)(torch.tensor(1.0))),
    "int tensor to ffn": (TypeError, "int64", lambda: FeedForward(4)(torch.ones(2, 4).long())),
    "list to ffn": (TypeError, "list", lambda: FeedForward(4)([[1.0] * 4])),
    "int tensor to relu": (TypeError, "int64", lambda: relu(torch.arange(3))),
    "bool tensor to silu": (TypeError, "bool", lambda: silu(torch.tensor([True]))),
    "list to gelu": (TypeError, "list", lambda: gelu([0.5])),
    "number to relu": (TypeError, "float", lambda: relu(1.0)),
    "bad approximate": (ValueError, "fast", lambda: gelu(torch.randn(2), approximate="fast")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_raise_japanese_errors(case):
    err_type, fragment, call = BAD[case]
    with pytest.raises(err_type) as info:
        call()
    message = str(info.value)
    assert JAPANESE.search(message), message
    assert fragment in message, message
