"""図の共通設定と注意マップの描画 (序章「この本の読み方」で紹介する共通部品)。

- 日本語のラベルが豆腐 (□) にならないよう、matplotlib-fontja の IPAex ゴシックを使う。
- 色覚の多様性に配慮し、線の色は Okabe–Ito パレット、ヒートマップは viridis 系にする。
- 図の中の文字は大きめにする (Web サイトでは図が本文の幅に縮められ、スマートフォンでは
  さらに小さくなるため。既定の 10 pt では目盛りや凡例が読みにくい)。
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "FONT_SIZES",
    "HEATMAP_CMAP",
    "OKABE_ITO",
    "japanese_font_name",
    "plot_attention",
    "setup_japanese",
]

#: 色覚の多様性に配慮した 8 色 (Okabe & Ito, 2008)。
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: 注意マップなどのヒートマップに使う、知覚的に一様で色覚多様性に配慮したカラーマップ。
HEATMAP_CMAP = "viridis"

#: 図の中の文字の大きさ (pt)。matplotlib の既定 (本文 10、目盛り 10) より大きい。
FONT_SIZES: dict[str, float] = {
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.title_fontsize": 12,
    "figure.titlesize": 15,
}

_done = False


def japanese_font_name() -> str:
    """日本語用に登録したフォントの名前。"""
    import matplotlib_fontja.matplotlib_fontja as mf

    return mf.FONT_NAME


def setup_japanese() -> None:
    """matplotlib で日本語を表示できるようにし、本全体の図の体裁をそろえる。何度呼んでもよい。"""
    global _done
    import matplotlib_fontja

    matplotlib_fontja.japanize()
    matplotlib.rcParams.update(
        {
            "axes.unicode_minus": False,  # IPAex にない U+2212 の代わりに ASCII のマイナス
            "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
            "image.cmap": HEATMAP_CMAP,
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (6.4, 4.0),
            **FONT_SIZES,
        }
    )
    _done = True


def plot_attention(
    weights,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    annotate: bool | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = HEATMAP_CMAP,
):
    """アテンションの重み (行 = クエリ、列 = キー) をトークン名つきのヒートマップで描く。

    ``weights`` は形が ``(len(query_tokens), len(key_tokens))`` の配列か Tensor。
    各行の和は 1 (softmax の出力) を想定している。戻り値は描いた ``Axes``。
    """
    if not _done:
        setup_japanese()
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    w = np.asarray(weights, dtype=float)
    key_tokens = list(query_tokens if key_tokens is None else key_tokens)
    query_tokens = list(query_tokens)
    if w.ndim != 2:
        raise ValueError(
            "アテンションの重みは 2 次元 (クエリ × キー) で渡してください。"
            f"受け取った形: {w.shape}")
    if w.shape != (len(query_tokens), len(key_tokens)):
        raise ValueError(
            f"重みの形 {w.shape} とトークン数 (クエリ {len(query_tokens)}, "
            f"キー {len(key_tokens)}) が合いません。"
        )
    if ax is None:
        size = max(3.0, 0.45 * max(w.shape) + 1.5)
        _, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(w, cmap=cmap, vmin=vmin, vmax=vmax)
    long_keys = max(map(len, key_tokens), default=0) > 2
    ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=90 if long_keys else 0)
    ax.set_yticks(range(len(query_tokens)), query_tokens)
    ax.set_xlabel("キー (参照される側のトークン)")
    ax.set_ylabel("クエリ (参照する側のトークン)")
    if title:
        ax.set_title(title)
    if annotate is None:
        annotate = max(w.shape) <= 10
    if annotate:
        mid = (vmin + vmax) / 2
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=10,
                        color="black" if w[i, j] > mid else "white")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="アテンションの重み")
    return ax
