"""A-3「マルチヘッドアテンション」のテスト: 書き出したモジュール (llmbook/chapters/a3.py)。

本文の主張 (F.scaled_dot_product_attention・nn.MultiheadAttention との一致、split_heads と
merge_heads が互いに逆、A-2 の骨格に差し込めること) と、あとの節が使う機能 (keep_weights、
head_gate、kv) を、ノートブックとは違う形と乱数で確かめる。誤った入力には日本語のエラー。
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook import set_seed
from llmbook.chapters.a2 import DecoderLM, causal_mask, count_parameters
from llmbook.chapters.a3 import (
    MultiHeadAttention,
    copy_from_torch,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _random_mask(shape, g) -> torch.Tensor:
    """どの行 (最後の次元) にも True が 1 つはある、ランダムな bool のマスク。"""
    mask = torch.rand(shape, generator=g) < 0.4
    first = torch.randint(0, shape[-1], shape[:-1], generator=g)
    return mask | F.one_hot(first, shape[-1]).bool()


def _pair(d, h, seed=0):
    set_seed(seed)
    theirs = nn.MultiheadAttention(d, h, batch_first=True)
    return copy_from_torch(MultiHeadAttention(d, h), theirs), theirs


# ---------------------------------------------------------------- §1 スケール付き内積アテンション
@pytest.mark.parametrize("seed", range(6))
def test_attention_matches_torch_for_random_shapes_and_broadcast_masks(seed):
    g = torch.Generator().manual_seed(seed)
    B, h, t_q, t_k, d_k, d_v = (int(n) for n in torch.randint(1, 9, (6,), generator=g))
    q = torch.randn(B, h, t_q, d_k, generator=g)
    k, v = torch.randn(B, h, t_k, d_k, generator=g), torch.randn(B, h, t_k, d_v, generator=g)
    masks = [None, _random_mask((t_q, t_k), g), _random_mask((B, 1, t_q, t_k), g),
             _random_mask((B, h, t_q, t_k), g), _random_mask((1, t_k), g)]
    for mask in masks:
        out, w = scaled_dot_product_attention(q, k, v, mask)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert out.shape == (B, h, t_q, d_v) and w.shape == (B, h, t_q, t_k)
        assert (out - ref).abs().max() <= 1e-6, (seed, None if mask is None else mask.shape)


def test_attention_3d_inputs_is_causal_and_scale_match_torch():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(3, 7, 5, generator=g) for _ in range(3))    # (B, T, d_k)
    ours, _ = scaled_dot_product_attention(q, k, v, causal_mask(7))
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    ours, _ = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, scale=1.0), atol=1e-6)
    assert not torch.allclose(ours, scaled_dot_product_attention(q, k, v)[0], atol=1e-3)


def test_attention_weights_rows_sum_to_one_and_masked_entries_are_zero():
    g = torch.Generator().manual_seed(2)
    q, k, v = torch.randn(2, 4, 6, generator=g), torch.randn(2, 9, 6, generator=g), \
        torch.randn(2, 9, 3, generator=g)
    mask = _random_mask((2, 4, 9), g)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(w.sum(-1), torch.ones(2, 4))
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()
    assert torch.allclose(out, w @ v)


def test_a_query_picks_out_the_matching_key():
    keys = 4.0 * torch.eye(5)                                     # (5, 5)
    values = torch.arange(5.0).view(5, 1) * 10                    # (5, 1)
    out, w = scaled_dot_product_attention(keys[3:4], keys, values, scale=1.0)
    assert w.argmax() == 3 and w[0, 3] > 0.99 and abs(out.item() - 30) < 0.5


# ---------------------------------------------------------------- §2 ヘッド
@pytest.mark.parametrize("B, T, d, h", [(1, 1, 4, 1), (2, 5, 12, 3), (3, 7, 16, 8)])
def test_split_and_merge_are_inverse_and_keep_tokens_apart(B, T, d, h):
    x = torch.randn(B, T, d)
    heads = split_heads(x, h)
    d_k = d // h
    assert heads.shape == (B, h, T, d_k)
    for i in range(h):                       # ヘッド i の位置 t = トークン t の i 番目の区画
        assert torch.equal(heads[:, i], x[:, :, i * d_k:(i + 1) * d_k])
    assert torch.equal(merge_heads(heads), x)
    y = torch.randn(B, h, T, d_k)
    assert torch.equal(split_heads(merge_heads(y), h), y)


def test_naive_view_differs_from_split_heads():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    assert not torch.equal(x.view(2, 2, 3, 4), split_heads(x, 2))


@pytest.mark.parametrize("d", [8, 48])
def test_parameter_count_is_independent_of_heads(d):
    counts = {sum(p.numel() for p in MultiHeadAttention(d, h).parameters())
              for h in range(1, d + 1) if d % h == 0}
    assert counts == {4 * d * d + 4 * d}
    assert sum(p.numel() for p in MultiHeadAttention(d, 2, bias=False).parameters()) == 4 * d * d


# ---------------------------------------------------------------- §3 PyTorch との一致
@pytest.mark.parametrize("seed", range(5))
def test_mha_matches_nn_multihead_attention(seed):
    g = torch.Generator().manual_seed(100 + seed)
    h = int(torch.randint(1, 5, (1,), generator=g))
    d = h * int(torch.randint(1, 9, (1,), generator=g))
    B, T = (int(n) for n in torch.randint(1, 12, (2,), generator=g))
    ours, theirs = _pair(d, h, seed)
    ours.keep_weights = True
    x = torch.randn(B, T, d, generator=g)
    for mask in (None, causal_mask(T), _random_mask((T, T), g)):
        ref, ref_w = theirs(x, x, x, attn_mask=None if mask is None else ~mask,
                            average_attn_weights=False)
        out = ours(x, mask)
        assert (out - ref).abs().max() <= 1e-6, (seed, B, T, d, h)
        assert (ours.weights - ref_w).abs().max() <= 1e-6


def test_cross_attention_with_kv_has_query_length_and_matches_torch():
    ours, theirs = _pair(24, 3, seed=3)
    x, memory = torch.randn(2, 4, 24), torch.randn(2, 11, 24)
    mask = _random_mask((4, 11), torch.Generator().manual_seed(0))
    ours.keep_weights = True
    out = ours(x, mask, kv=memory)
    ref = theirs(x, memory, memory, attn_mask=~mask)[0]
    assert out.shape == (2, 4, 24) and ours.weights.shape == (2, 3, 4, 11)
    assert (out - ref).abs().max() <= 1e-6


def test_gradients_reach_every_parameter_and_the_input():
    set_seed(0)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 6, 16, requires_grad=True)
    mha(x, causal_mask(6)).pow(2).sum().backward()
    for name, p in mha.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_future_tokens_do_not_change_earlier_outputs_with_a_causal_mask():
    set_seed(0)
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(1, 6, 16)
    x2 = x.clone()
    x2[0, -1] += 1.0
    a, b = mha(x, causal_mask(6)), mha(x2, causal_mask(6))
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1], atol=1e-3)


def test_keep_weights_is_off_by_default_and_detached():
    set_seed(0)
    mha = MultiHeadAttention(12, 3)
    x = torch.randn(2, 5, 12)
    mha(x)
    assert mha.weights is None
    mha.keep_weights = True
    mask = causal_mask(5)
    mha(x, mask)
    w = mha.weights
    assert w.shape == (2, 3, 5, 5) and not w.requires_grad
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5))
    assert (w[..., ~mask] == 0).all()


def test_head_gate_zero_removes_exactly_that_heads_contribution():
    set_seed(0)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        full = mha(x, causal_mask(6))
        mha.head_gate = torch.tensor([1.0, 0.0, 1.0, 1.0])
        gated = mha(x, causal_mask(6))
        assert (gated - full).abs().max() > 1e-3                   # 切ると出力が変わる
        for lin in (mha.w_q, mha.w_k, mha.w_v):                   # ヘッド 1 の射影を壊しても
            lin.weight[4:8] += torch.randn(4, 16)
            lin.bias[4:8] += 1.0
        assert torch.allclose(mha(x, causal_mask(6)), gated, atol=1e-6)   # 出力は同じ
        mha.head_gate = torch.tensor([2.0, 0.0, 1.0, 1.0])          # ゲートは掛け算
        doubled = mha(x, causal_mask(6))
    q, k, v = (split_heads(w(x), 4) for w in (mha.w_q, mha.w_k, mha.w_v))
    heads = scaled_dot_product_attention(q, k, v, causal_mask(6))[0]
    heads = heads * torch.tensor([2.0, 0.0, 1.0, 1.0]).view(1, 4, 1, 1)
    assert torch.allclose(doubled, mha.w_o(merge_heads(heads)), atol=1e-6)


def test_extra_keyword_none_is_accepted_but_values_are_refused():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    assert mha(x, cache=None).shape == (1, 3, 8)
    with pytest.raises(TypeError, match="受け取れません"):
        mha(x, cache=[])


def test_plugs_into_decoder_lm_with_same_parameters_and_logits():
    config = dict(d_model=16, n_layers=2, n_heads=2, max_len=12)
    set_seed(0)
    lm_torch = DecoderLM(30, **config)
    lm_ours = DecoderLM(30, **config, make_attn=MultiHeadAttention)
    assert all(isinstance(b.attn, MultiHeadAttention) for b in lm_ours.blocks)
    assert count_parameters(lm_torch) == count_parameters(lm_ours)
    rest = {k: v for k, v in lm_torch.state_dict().items() if ".attn." not in k}
    lm_ours.load_state_dict(rest, strict=False)
    ids = torch.randint(0, 30, (3, 12))
    assert (lm_ours(ids) - lm_torch(ids)).abs().max() > 1e-3     # アテンションを写す前は違う
    for a, b in zip(lm_ours.blocks, lm_torch.blocks):
        copy_from_torch(a.attn, b.attn.mha)
    assert (lm_ours(ids) - lm_torch(ids)).abs().max() <= 1e-5


# ---------------------------------------------------------------- 誤った入力
def _no_row_mask():
    m = causal_mask(4).clone()
    m[1] = False
    return m


_MHA, _X = MultiHeadAttention(8, 2), torch.randn(2, 4, 8)
_R = torch.randn
BAD_INPUTS = {
    "heads do not divide d_model": (ValueError, lambda: MultiHeadAttention(10, 3)),
    "zero heads": (ValueError, lambda: MultiHeadAttention(8, 0)),
    "integer q": (TypeError, lambda: scaled_dot_product_attention(
        torch.ones(3, 4, dtype=torch.long), _R(3, 4), _R(3, 4))),
    "1-D k": (TypeError, lambda: scaled_dot_product_attention(_R(3, 4), _R(4), _R(3, 4))),
    "v is a list": (TypeError, lambda: scaled_dot_product_attention(_R(3, 4), _R(3, 4), [1.0])),
    "d_k differs": (ValueError, lambda: scaled_dot_product_attention(_R(3, 4), _R(3, 5), _R(3, 5))),
    "T_k differs": (ValueError, lambda: scaled_dot_product_attention(_R(3, 4), _R(3, 4), _R(2, 4))),
    "batch dims differ": (ValueError, lambda: scaled_dot_product_attention(
        _R(2, 3, 4), _R(3, 3, 4), _R(3, 3, 4))),
    "no tokens": (ValueError, lambda: scaled_dot_product_attention(_R(0, 4), _R(0, 4), _R(0, 4))),
    "float mask": (TypeError, lambda: _MHA(_X, causal_mask(4).float())),
    "mask wrong shape": (ValueError, lambda: _MHA(_X, causal_mask(5))),
    "mask 1-D": (ValueError, lambda: scaled_dot_product_attention(
        _R(3, 4), _R(3, 4), _R(3, 4), torch.ones(3, dtype=torch.bool))),
    "all-False row": (ValueError, lambda: _MHA(_X, _no_row_mask())),
    "input d differs": (ValueError, lambda: _MHA(_R(2, 4, 6))),
    "input 2-D": (ValueError, lambda: _MHA(_R(4, 8))),
    "kv d differs": (ValueError, lambda: _MHA(_X, kv=_R(2, 5, 6))),
    "split 2-D": (ValueError, lambda: split_heads(_R(4, 8), 2)),
    "split not divisible": (ValueError, lambda: split_heads(_R(1, 4, 10), 3)),
    "split integer": (ValueError, lambda: split_heads(torch.ones(1, 4, 8, dtype=torch.long), 2)),
    "merge 3-D": (ValueError, lambda: merge_heads(_R(2, 4, 8))),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_with_a_japanese_message(name):
    kind, call = BAD_INPUTS[name]
    with pytest.raises(kind) as info:
        call()
    assert JAPANESE.search(str(info.value)), (name, str(info.value))
