"""共通部品: デバイスの選択、乱数の種、日本語の図と注意マップ。"""
from __future__ import annotations

import re
import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import llmbook  # noqa: E402
from llmbook import device as dev  # noqa: E402
from llmbook.plotting import plot_attention, setup_japanese  # noqa: E402


@pytest.fixture
def fake_devices(monkeypatch):
    """CUDA と MPS が使えるかどうかを差し替える (set(cuda=..., mps=...))。環境変数は消しておく。"""
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU")

    def set_available(cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_available


def test_cuda_is_used_when_present(fake_devices, capsys):
    fake_devices(cuda=True, mps=True)
    assert llmbook.get_device().type == "cuda"
    assert "cuda (Fake GPU)" in capsys.readouterr().out


def test_mps_is_not_used_unless_the_reader_opts_in(fake_devices, monkeypatch, capsys):
    fake_devices(cuda=False, mps=True)
    assert llmbook.get_device().type == "cpu"
    out = capsys.readouterr().out
    assert "使用デバイス: cpu" in out and "GPU なし" not in out
    assert "LLMBOOK_DEVICE=mps" in out  # なぜ使わないか、どうすれば使えるかを 1 行で
    monkeypatch.setenv("LLMBOOK_DEVICE", "mps")
    assert llmbook.get_device().type == "mps"
    assert "mps (Apple GPU)" in capsys.readouterr().out
    monkeypatch.setenv("LLMBOOK_DEVICE", " MPS ")  # 大文字・空白も受け付ける
    assert llmbook.get_device(verbose=False).type == "mps"


def test_cpu_only_machine(fake_devices, capsys):
    fake_devices(cuda=False, mps=False)
    assert llmbook.get_device().type == "cpu"
    out = capsys.readouterr().out
    assert "cpu (GPU なし)" in out and "MPS" not in out
    assert dev.describe_device(torch.device("cpu")).startswith("cpu")


@pytest.mark.parametrize("value, cuda, mps, expected", [
    ("cpu", True, True, "cpu"),
    ("cuda", True, True, "cuda"),
    ("auto", True, False, "cuda"),
    ("auto", False, True, "cpu"),
    ("", False, True, "cpu"),
])
def test_env_var_forces_a_device(fake_devices, monkeypatch, value, cuda, mps, expected):
    fake_devices(cuda=cuda, mps=mps)
    monkeypatch.setenv("LLMBOOK_DEVICE", value)
    assert llmbook.get_device(verbose=False).type == expected


@pytest.mark.parametrize("value, cuda, mps, words", [
    ("cuda", False, True, "CUDA (NVIDIA の GPU) が使えません"),
    ("mps", True, False, "Apple の GPU (MPS) が使えません"),
    ("gpu", True, True, "'gpu' は使えません"),
])
def test_env_var_errors_are_explained(fake_devices, monkeypatch, value, cuda, mps, words):
    fake_devices(cuda=cuda, mps=mps)
    monkeypatch.setenv("LLMBOOK_DEVICE", value)
    with pytest.raises(ValueError, match=re.escape(words)):
        llmbook.get_device(verbose=False)


def test_get_device_signature_is_compatible(fake_devices):
    fake_devices(cuda=False, mps=False)
    assert llmbook.get_device(False).type == "cpu"  # 位置引数の verbose も今までどおり


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


def test_figures_use_larger_fonts():
    """Web サイトで縮めて表示しても読めるよう、図の文字は matplotlib の既定 (10 pt) より大きい。"""
    from llmbook.plotting import FONT_SIZES

    setup_japanese()
    for key, size in FONT_SIZES.items():
        assert matplotlib.rcParams[key] == size, key
    assert matplotlib.rcParams["font.size"] > 10 and matplotlib.rcParams["xtick.labelsize"] > 10


def test_kernel_transport_is_encrypted_when_supported():
    """サイトのビルドでは、章を実行するカーネルとの通信を CurveZMQ で暗号化する。"""
    zmq = pytest.importorskip("zmq")
    manager = pytest.importorskip("jupyter_client.manager")
    from llmbook.sphinxext import encrypt_kernel_transport

    trait = manager.KernelManager.class_traits().get("transport_encryption")
    if trait is None:
        pytest.skip("この jupyter_client には transport_encryption がありません (警告も出ない版)")
    before = trait.default_value
    try:
        assert encrypt_kernel_transport() == zmq.has("curve")
        if zmq.has("curve"):
            assert manager.KernelManager().transport_encryption == "auto"
    finally:
        trait.default_value = before


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
    # 狭い画面では横スクロールの枠の中に入り、数のセルは折り返さない
    assert html.startswith('<div class="llmbook-table"') and "overflow-x:auto" in html
    assert html.count('class="num"') == 2 and "<table>" in html
    assert "<td>5-gram</td>" in html  # 「5-gram」は数ではない


@pytest.mark.parametrize("value, expected", [
    (3, True), (1.25, True), ("1,234", True), ("45%", True), ("1e-3", True), ("−0.5", True),
    ("2.5 倍", True), (True, False), ("5-gram", False), ("A-1", False), ("", False), (None, False),
])
def test_number_cells_are_recognised(value, expected):
    from llmbook.display import is_number

    assert is_number(value) is expected
