"""llmbook.attn_analysis (A-3 §5〜§7 の裏方) のテスト: 重みの収集・測定・データ・図・メモリ。

どれも小さな入力で、答えが手で分かる場合と比べる。悪い入力には日本語のエラーが出ることも確かめる。
"""
from __future__ import annotations

import math

import matplotlib
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook import set_seed
from llmbook.attn_analysis import (
    attention_maps,
    head_labels,
    logits_with_cut_paths,
    ops_run,
    peak_memory,
    planted_pair_batch,
    plot_cost,
    plot_head_bars,
    plot_head_grid,
    plot_phase_change,
    quote_pairs,
    repeat_twice_batch,
    token_losses,
    val_windows,
    weights_at_offset,
)
from llmbook.chapters.a2 import DecoderLM
from llmbook.chapters.a3 import MultiHeadAttention

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tiny_lm():
    set_seed(0)
    return DecoderLM(11, d_model=16, n_layers=2, n_heads=4, max_len=12,
                     make_attn=MultiHeadAttention)


def test_head_labels():
    assert head_labels(2, 3) == ["層 0・ヘッド 0", "層 0・ヘッド 1", "層 0・ヘッド 2",
                                 "層 1・ヘッド 0", "層 1・ヘッド 1", "層 1・ヘッド 2"]
    with pytest.raises(ValueError, match="1 以上の整数"):
        head_labels(0, 4)


def test_attention_maps_shapes_rows_and_restores_flags(tiny_lm):
    tiny_lm.train()
    ids = torch.randint(0, 11, (3, 12))
    maps = attention_maps(tiny_lm, ids)
    assert [tuple(w.shape) for w in maps] == [(3, 4, 12, 12)] * 2
    for w in maps:
        assert torch.allclose(w.sum(-1), torch.ones(3, 4, 12))           # 各行は確率分布
        assert torch.all(w.triu(diagonal=1) == 0)                        # 因果マスク
    assert all(not b.attn.keep_weights for b in tiny_lm.blocks)          # 元に戻る
    assert tiny_lm.training
    assert attention_maps(tiny_lm, ids[0])[0].shape == (1, 4, 12, 12)    # 1 次元も受け取る


def test_attention_maps_rejects_other_models():
    torch_model = DecoderLM(11, d_model=16, n_layers=1, n_heads=4, max_len=8)   # 既定の部品
    with pytest.raises(TypeError, match="MultiHeadAttention"):
        attention_maps(torch_model, torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="DecoderLM"):
        attention_maps(nn.Linear(2, 2), torch.zeros(1, 4, dtype=torch.long))


def test_attention_maps_rejects_float_ids(tiny_lm):
    with pytest.raises(TypeError, match="torch.long"):
        attention_maps(tiny_lm, torch.zeros(1, 4))


def test_weights_at_offset_int_and_per_row():
    w = torch.arange(2 * 1 * 4 * 4, dtype=torch.float).view(2, 1, 4, 4)
    prev = weights_at_offset(w, 1)                                       # (2, 1, 4)
    assert torch.isnan(prev[..., 0]).all()
    assert prev[0, 0, 1:].tolist() == [w[0, 0, i, i - 1].item() for i in range(1, 4)]
    per_row = weights_at_offset(w, torch.tensor([0, 2]))
    assert per_row[0, 0].tolist() == w[0, 0].diagonal().tolist()
    assert torch.isnan(per_row[1, 0, :2]).all()
    assert per_row[1, 0, 2:].tolist() == [w[1, 0, 2, 0].item(), w[1, 0, 3, 1].item()]


def test_weights_at_offset_bad_input():
    with pytest.raises(ValueError, match="0 以上の整数"):
        weights_at_offset(torch.ones(3, 3), -1)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, T\)"):
        weights_at_offset(torch.ones(3, 4), 1)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        weights_at_offset(torch.ones(2, 1, 3, 3), torch.tensor([1, 1, 1]))


def test_quote_pairs_by_hand():
    o, c = 5, 6
    ids = torch.tensor([[1, o, 2, 2, c, 2, 1, o, 2, c]])
    got = sorted(map(tuple, quote_pairs(ids, o, c).nonzero()[:, 1:].tolist()))
    assert got == [(3, 1), (4, 1), (9, 7)]                   # (クエリ, 「 の位置)、」 を含む
    assert quote_pairs(ids, o, c, min_gap=1).sum() == 5      # 「 の直後も数える
    nested = torch.tensor([[o, 2, o, 2, 2, c, 2, 2]])        # 入れ子は内側の 「
    assert sorted(map(tuple, quote_pairs(nested, o, c).nonzero()[:, 1:].tolist())) == \
        [(2, 0), (4, 2), (5, 2), (6, 0), (7, 0)]


def test_val_windows_and_token_losses(tiny_lm):
    ids = torch.arange(50) % 11
    win = val_windows(ids, seq_len=9)
    assert win.shape == (5, 10) and win[1, 0] == ids[10]
    assert val_windows(ids, seq_len=9, n=2).shape == (2, 10)
    losses = token_losses(tiny_lm, win, batch_size=2)
    logits = tiny_lm(win[:, :-1])
    expected = F.cross_entropy(logits.reshape(-1, 11), win[:, 1:].reshape(-1), reduction="none")
    assert losses.shape == (5, 9)
    assert torch.allclose(losses.flatten(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="短すぎて"):
        val_windows(ids[:5], seq_len=9)


def test_head_gate_ablation_changes_loss(tiny_lm):
    win = val_windows(torch.arange(60) % 11, seq_len=11)
    base = token_losses(tiny_lm, win).mean()
    attn = tiny_lm.blocks[0].attn
    attn.head_gate = torch.tensor([1.0, 0.0, 1.0, 1.0])
    try:
        cut = token_losses(tiny_lm, win).mean()
    finally:
        attn.head_gate = None
    assert cut != base
    assert token_losses(tiny_lm, win).mean() == base


def test_planted_pair_batch_structure():
    g = torch.Generator().manual_seed(0)
    V, T = 12, 12
    b = planted_pair_batch(256, V, T, g)
    assert b.ids.shape == (256, T) and b.target.shape == b.pos.shape == (256,)
    assert (b.ids[:, 0] == V).all() and (b.ids[:, 1:] < V).all()          # BOS は位置 0 だけ
    assert b.pos.min() >= 1 and b.pos.max() <= T - 3
    rows = torch.arange(256)
    a = b.ids[:, -1]
    assert torch.equal(b.ids[rows, b.pos], a)                              # p に A
    assert torch.equal(b.target, b.ids[rows, b.pos + 1])                   # B は p + 1
    assert ((b.ids == a[:, None]).sum(1) == 2).all()                       # A は p と最後だけ
    assert (b.target != a).all()
    assert len(set(b.pos.tolist())) == T - 3                               # p は全部の候補に散る
    again = planted_pair_batch(256, V, T, torch.Generator().manual_seed(0))
    assert torch.equal(again.ids, b.ids)                                   # generator だけで決まる


def test_repeat_twice_batch_structure():
    ids = repeat_twice_batch(64, 12, 5, torch.Generator().manual_seed(0))
    assert ids.shape == (64, 11) and (ids[:, 0] == 12).all()
    assert torch.equal(ids[:, 1:6], ids[:, 6:])                            # 2 回目 = 1 回目
    assert all(len(set(row)) == 5 for row in ids[:, 1:6].tolist())        # 5 個は互いに違う
    assert (ids[:, 1:] < 12).all()


def test_induction_data_bad_input():
    g = torch.Generator()
    with pytest.raises(ValueError, match="seq_len"):
        planted_pair_batch(2, 10, 3, g)
    with pytest.raises(TypeError, match="Generator"):
        planted_pair_batch(2, 10, 8, 0)
    with pytest.raises(ValueError, match="vocab_size"):
        planted_pair_batch(2, 1, 8, g)
    with pytest.raises(ValueError, match="選べません"):
        repeat_twice_batch(2, 4, 5, g)
    with pytest.raises(TypeError, match="Generator"):
        repeat_twice_batch(2, 10, 5, None)


def test_plots_return_figures():
    w = torch.softmax(torch.randn(2, 3, 5, 5), -1)
    fig = plot_head_grid(list(w), "あい\nうえ", marks={(0, 1): "テスト"}, title="題")
    assert len(fig.axes) == 2 * 3 + 1                                  # 6 枚 + カラーバー
    assert fig.axes[0].get_xticklabels()[2].get_text() == "⏎"
    with pytest.raises(ValueError, match="tokens"):
        plot_head_grid(list(w), "あい")
    bars = plot_head_bars([0.1, 0.2, 0.3, 0.4], 2, ylabel="y", reference=0.2,
                          reference_label="基準")
    assert len(bars.axes[0].patches) == 4
    with pytest.raises(ValueError, match="倍数"):
        plot_head_bars([0.1, 0.2, 0.3], 2, ylabel="y")
    steps = [10, 20, 30]
    phase = plot_phase_change([math.log(10)] * 30, steps, [0.1, 0.5, 1.0], torch.rand(3, 4),
                              torch.rand(3, 4), jump=20)
    assert len(phase.axes) == 4                                        # 3 枚 + 正解率の右の軸
    assert len(phase.axes[1].lines) == 4 + 1                           # 4 ヘッド + 縦の点線
    with pytest.raises(ValueError, match="記録の数"):
        plot_phase_change([1.0] * 30, steps, [0.1, 0.5], torch.rand(3, 4), torch.rand(3, 4))
    cost = plot_cost([1, 2], {"a": [1.0, 2.0]}, {"a": [1.0, 4.0]}, "CPU")
    assert len(cost.axes) == 2
    matplotlib.pyplot.close("all")


def test_peak_memory_cpu_sees_a_new_tensor():
    x = torch.randn(256, 256)
    peak = peak_memory(lambda: x @ x, "cpu")                 # 出力 256 × 256 の float32
    assert 256 * 256 * 4 <= peak < 4 * 256 * 256 * 4
    with pytest.raises(ValueError, match="CPU と CUDA"):
        peak_memory(lambda: None, "meta")


def test_peak_memory_cpu_sees_memory_freed_inside_one_op():
    # MATH の SDPA は 1 つの演算 (aten::scaled_dot_product_attention) の中で L × L のスコアを
    # 確保して解放する。演算ごとの差し引き (self_cpu_memory_usage) を足す測り方では 0 に見えた
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = torch.randn(3, 1, 1, 256, 8).unbind(0)
    scores = 256 * 256 * 4                                   # float32 の (1, 1, L, L)

    def math_sdpa():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    with torch.no_grad():
        assert peak_memory(math_sdpa, "cpu") >= scores
        assert any("math" in n for n in ops_run(math_sdpa, "attention"))
        x = torch.randn(256, 256)
        assert peak_memory(lambda: x.exp().sum(), "cpu") >= 256 * 256 * 4   # 途中の exp も数える


def test_ops_run_lists_names_and_checks_input():
    x = torch.randn(4, 4)
    assert "aten::mm" in ops_run(lambda: x @ x)
    assert ops_run(lambda: x @ x, "softmax") == []
    with pytest.raises(TypeError, match="contains"):
        ops_run(lambda: x @ x, 3)


def test_logits_with_cut_paths_matches_whole_model_at_the_extremes(tiny_lm):
    ids = torch.randint(0, 11, (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = tiny_lm(ids)
        attn = tiny_lm.blocks[0].attn
        attn.head_gate = torch.tensor([1.0, 0.0, 0.0, 1.0])
        try:
            gated = tiny_lm(ids)
        finally:
            attn.head_gate = None
    assert torch.allclose(logits_with_cut_paths(tiny_lm, ids, [1, 2], ""), full, atol=1e-5)
    assert torch.allclose(logits_with_cut_paths(tiny_lm, ids, [1, 2], "QKVR"), gated, atol=1e-5)
    keys_only = logits_with_cut_paths(tiny_lm, ids, [1, 2], "K")
    assert not torch.allclose(keys_only, full) and not torch.allclose(keys_only, gated)
    assert attn.head_gate is None                                      # 元に戻っている


def test_logits_with_cut_paths_bad_input(tiny_lm):
    ids = torch.zeros(1, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="paths"):
        logits_with_cut_paths(tiny_lm, ids, [0], "X")
    with pytest.raises(ValueError, match="cut_heads"):
        logits_with_cut_paths(tiny_lm, ids, [4], "K")
    set_seed(0)
    three = DecoderLM(11, d_model=16, n_layers=3, n_heads=4, max_len=12,
                      make_attn=MultiHeadAttention)
    with pytest.raises(ValueError, match="2 層"):
        logits_with_cut_paths(three, ids, [0], "K")
