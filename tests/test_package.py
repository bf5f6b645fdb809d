"""共通部品: デバイスの選択、乱数の種、日本語の図と注意マップ。"""
from __future__ import annotations

import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import llmbook  # noqa: E402
from llmbook import device as dev  # noqa: E402
from llmbook.plotting import plot_attention, setup_japanese  # noqa: E402


def test_device_order(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU")
    assert llmbook.get_device().type == "cuda"
    assert "cuda (Fake GPU)" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert llmbook.get_device(verbose=False).type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert llmbook.get_device().type == "cpu"
    assert "cpu" in capsys.readouterr().out
    assert dev.describe_device(torch.device("cpu")).startswith("cpu")


def test_seed_is_deterministic():
    llmbook.set_seed(123)
    a = (torch.randn(5), torch.rand(1).item())
    llmbook.set_seed(123)
    b = (torch.randn(5), torch.rand(1).item())
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    with pytest.raises(TypeError, match="整数"):
        llmbook.set_seed("1")


def test_japanese_text_renders_without_missing_glyphs():
    setup_japanese()
    fig, ax = plt.subplots()
    ax.set_title("注意の重み・クエリとキー (ソフトマックス)")
    ax.set_xlabel("ひらがな カタカナ 漢字 ABC 123 −")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 「Glyph … missing from font」が出たら失敗
        fig.canvas.draw()
    plt.close(fig)


def test_plot_attention_labels_and_errors():
    w = torch.softmax(torch.randn(3, 4), dim=-1)
    ax = plot_attention(w, ["私", "は", "猫"], ["今日", "は", "晴れ", "だ"], title="テスト")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["私", "は", "猫"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["今日", "は", "晴れ", "だ"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="合いません"):
        plot_attention(w, ["a", "b"])
    with pytest.raises(ValueError, match="2 次元"):
        plot_attention(torch.ones(2, 2, 2), ["a", "b"])


def test_table_html_escapes_and_shapes():
    from llmbook.display import table_html

    html = table_html(["モデル", "PPL"], [("<b>RNN</b>", 3.1), ("5-gram", 1.9)])
    assert html.count("<tr>") == 3 and "&lt;b&gt;RNN&lt;/b&gt;" in html and "<b>" not in html
