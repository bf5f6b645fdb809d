"""llmbook.ffn_analysis (A-4 §5〜§6 の裏方) のテスト: 訓練と測定、活性の収集、位置の印、文脈、図。

どれも小さな入力で、答えが手で分かる場合や、素朴な計算と比べる。悪い入力には日本語のエラーが
出ることも確かめる。
"""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from llmbook import set_seed
from llmbook.chapters.a1 import TrainConfig, train_char_model
from llmbook.chapters.a2 import DecoderLM
from llmbook.chapters.a3 import MultiHeadAttention
from llmbook.chapters.a4 import FeedForward, make_ffn
from llmbook.ffn_analysis import (
    char_mask,
    ffn_activations,
    ffn_hidden,
    plot_relu_history,
    plot_seed_losses,
    precision_at_k,
    print_top_contexts,
    quote_mask,
    top_contexts,
    train_with_probe,
    word_end_mask,
)

matplotlib.use("Agg")


def tiny_lm(kind="relu", seed=0, max_len=12):
    set_seed(seed)
    return DecoderLM(11, d_model=16, n_layers=2, n_heads=4, max_len=max_len,
                     make_attn=MultiHeadAttention, make_ffn=lambda d: make_ffn(kind, d))


# --------------------------------------------------------------------------- 訓練
def test_train_with_probe_matches_a1_loop_and_records_steps():
    ids = torch.randint(0, 11, (400,), generator=torch.Generator().manual_seed(0))
    config = TrainConfig(steps=12, batch_size=4, seq_len=8, lr=1e-2, warmup=3)
    a, b = tiny_lm(), tiny_lm()
    seen = []
    losses, records = train_with_probe(a, ids, config, lambda m: seen.append(m.training) or 7,
                                       every=5)
    ref = train_char_model(b, ids, config)
    assert losses == pytest.approx(ref, abs=1e-6)                # 測定は訓練を変えない
    assert sorted(records) == [0, 5, 10, 12] and set(records.values()) == {7}
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert not a.training


def test_train_with_probe_stop_keeps_schedule_of_full_run():
    ids = torch.randint(0, 11, (400,), generator=torch.Generator().manual_seed(1))
    config = TrainConfig(steps=10, batch_size=4, seq_len=8, lr=1e-2, warmup=2)
    full, _ = train_with_probe(tiny_lm(), ids, config, lambda m: None, every=100)
    part, records = train_with_probe(tiny_lm(), ids, config, lambda m: None, every=100, stop=4)
    assert part == pytest.approx(full[:4], abs=1e-6) and sorted(records) == [0, 4]


@pytest.mark.parametrize("kwargs, err", [
    ({"every": 0}, ValueError), ({"every": 2, "stop": 11}, ValueError),
    ({"every": 2, "stop": 0}, ValueError), ({"every": 2, "probe": "x"}, TypeError)])
def test_train_with_probe_bad_input(kwargs, err):
    ids = torch.arange(100) % 11
    kwargs = {"probe": lambda m: None, **kwargs}
    with pytest.raises(err, match="[ぁ-ん]"):
        train_with_probe(tiny_lm(), ids, TrainConfig(steps=10), kwargs.pop("probe"), **kwargs)


# --------------------------------------------------------------------------- 活性の収集
def test_ffn_hidden_is_post_activation_and_restores_state():
    model = tiny_lm()
    model.train()
    ids = torch.randint(0, 11, (3, 7), generator=torch.Generator().manual_seed(0))
    hidden = ffn_hidden(model, ids)
    assert len(hidden) == 2 and all(h.shape == (3, 7, 64) for h in hidden)
    assert all((h >= 0).all() for h in hidden)                      # ReLU の後
    assert model.training and not any(b.ffn.keep_hidden for b in model.blocks)
    with torch.no_grad():                                           # 層 0 は手で計算して比べる
        x = model.tok_emb(ids) + model.pos_emb(torch.arange(7))
        block = model.blocks[0]
        x = x + block.attn(block.ln1(x), torch.ones(7, 7, dtype=torch.bool).tril())
        ref = torch.relu(block.ffn.fc1(block.ln2(x)))
    assert torch.allclose(hidden[0], ref, atol=1e-6)


def test_ffn_hidden_gated_ffn_and_bad_models():
    hidden = ffn_hidden(tiny_lm("swiglu"), torch.zeros(1, 4, dtype=torch.long))
    assert hidden[0].shape == (1, 4, round(8 * 16 / 3))
    plain = DecoderLM(11, d_model=16, n_layers=1, n_heads=4, max_len=8)   # A-2 の MLP
    with pytest.raises(TypeError, match="keep_hidden"):
        ffn_hidden(plain, torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="DecoderLM"):
        ffn_hidden(torch.nn.Linear(2, 2), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.long"):
        ffn_hidden(tiny_lm(), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="2 次元"):
        ffn_hidden(tiny_lm(), torch.zeros(4, dtype=torch.long))


def test_ffn_activations_each_position_has_min_context():
    model = tiny_lm(max_len=8)
    ids = torch.randint(0, 11, (40,), generator=torch.Generator().manual_seed(2))
    acts = ffn_activations(model, ids, layer=-1, min_context=3, batch_size=2)
    stride = 8 - 3
    n = (40 - 8) // stride + 1
    assert acts.start == 3 and acts.values.shape == (n * stride, 64)
    for i in (0, 4, 5, 17, n * stride - 1):                         # 位置 p = start + i
        p = acts.start + i
        window_start = (i // stride) * stride                       # その位置を使った窓
        h = ffn_hidden(model, ids[window_start: window_start + 8][None])[-1][0]
        assert torch.allclose(acts.values[i], h[p - window_start], atol=1e-6)
        assert p - window_start >= 3                                # 3 文字以上の文脈


@pytest.mark.parametrize("kwargs, match", [
    ({"layer": 2}, "layer"), ({"layer": -3}, "layer"), ({"min_context": 8}, "min_context"),
    ({"seq_len": 1}, "seq_len"), ({"batch_size": 0}, "batch_size"), ({}, "min_context")])
def test_ffn_activations_bad_input(kwargs, match):
    kwargs = {"min_context": 2, **kwargs} if kwargs else kwargs     # {} は既定の 32 > seq_len 8
    with pytest.raises(ValueError, match=match):
        ffn_activations(tiny_lm(max_len=8), torch.arange(30) % 11, **kwargs)


def test_ffn_activations_too_short():
    with pytest.raises(ValueError, match="短すぎ"):
        ffn_activations(tiny_lm(max_len=8), torch.arange(5) % 11, min_context=2)


# --------------------------------------------------------------------------- 位置の印
def test_quote_mask_inside_only_and_nesting():
    text = "あ「いう」え「お「か」き」く」"
    got = "".join("1" if m else "0" for m in quote_mask(text))
    assert got == "001100010101000"                                 # かっこ自身と外は 0
    assert quote_mask(list("「あ")).tolist() == [False, True]         # 閉じていなくても中
    with pytest.raises(TypeError, match="文字"):
        quote_mask(["ab"])


def test_word_end_mask_and_char_mask():
    text = "佐倉みのりと小野寺さくら、佐倉"
    m = word_end_mask(text, ["佐倉", "小野寺"])
    assert [i for i, v in enumerate(m) if v] == [1, 8, 14]
    overlapping = word_end_mask("ああああ", ["ああ"])                 # 重なりも数える
    assert overlapping.tolist() == [False, True, True, True]
    assert char_mask("a。b！", "。！").tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match="空でない"):
        word_end_mask(text, [""])
    with pytest.raises(ValueError, match="1 文字以上"):
        char_mask(text, "")


# --------------------------------------------------------------------------- 文脈の表示
def test_top_contexts_order_and_context():
    chars = "abc\ndef"
    values = np.array([0.0, 3.0, 1.0, 5.0, 1.0, 0.5, 2.0])
    top = top_contexts(values, chars, k=3, width=2)
    assert [t[0] for t in top] == [3, 1, 6]
    assert top[0] == (3, 5.0, "bc", "⏎") and top[1][2] == "a" and top[2][2:] == ("de", "f")
    assert [t[0] for t in top_contexts(np.ones(4), "abcd", k=2)] == [0, 1]   # 同点は前から


def test_print_top_contexts_marks(capsys):
    print_top_contexts(torch.tensor([0.0, 2.0, 1.0]), "xyz", k=2, width=1,
                       mask=[False, True, False], title="見出し")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "見出し" and "x〔y〕  ○" in out[1] and "y〔z〕  ·" in out[2]


def test_precision_at_k():
    values = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    mask = np.array([True, False, True, False, False])
    assert precision_at_k(values, mask, 2) == 0.5 and precision_at_k(values, mask, 3) == 2 / 3
    with pytest.raises(ValueError, match="長さが違い"):
        precision_at_k(values, mask[:3], 2)
    with pytest.raises(ValueError, match="長さが違い"):
        top_contexts(values, "abc", 2)
    with pytest.raises(ValueError, match="1 次元"):
        top_contexts(np.zeros((2, 2)), "ab", 1)


# --------------------------------------------------------------------------- 図
def test_plots_draw_all_lines_and_points():
    history = {0: [(0.0, 0.5), (0.1, 0.5)], 10: [(0.0, 0.6), (0.2, 0.7)]}
    fig = plot_relu_history({"a": history, "b": {0: history[0]}})
    assert [len(ax.lines) for ax in fig.axes] == [4, 4]
    assert fig.axes[0].lines[1].get_ydata().tolist() == pytest.approx([10.0, 20.0])
    fig = plot_seed_losses({"relu": [4.0, 4.1, 4.2], "gelu": [4.05]})
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and [t.get_text() for t in ax.get_xticklabels()] == ["relu", "gelu"]
    with pytest.raises(ValueError, match="空"):
        plot_relu_history({})
    with pytest.raises(ValueError, match="空"):
        plot_seed_losses({})


def test_feedforward_in_lm_collects_relu_zeros():
    set_seed(0)
    model = DecoderLM(11, d_model=16, n_layers=1, n_heads=4, max_len=8,
                      make_attn=MultiHeadAttention,
                      make_ffn=lambda d: FeedForward(d, activation="relu"))
    h = ffn_hidden(model, torch.randint(0, 11, (4, 8), generator=torch.Generator().manual_seed(0)))
    zero = (h[0] == 0).float().mean().item()
    assert 0.2 < zero < 0.8                                         # 初期値ではおよそ半分が 0
