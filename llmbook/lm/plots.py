"""A-1 の図 (配管): 章のセルは、数値を計算してここに渡すだけにする。

どの図も日本語のラベル (:func:`llmbook.plotting.setup_japanese`) と、色覚の多様性に配慮した
Okabe–Ito の色・viridis のヒートマップを使う。戻り値は描いた Figure か Axes。
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from llmbook.plotting import HEATMAP_CMAP, OKABE_ITO, setup_japanese

__all__ = [
    "visible",
    "plot_bigram_heatmap",
    "plot_ngram_curves",
    "plot_learning_curves",
    "plot_heads",
    "plot_gradients",
    "plot_timings",
    "plot_perplexity_table",
]

_SHOWN = {"\n": "⏎", "\u3000": "␣", " ": "␣"}


def visible(chars: Sequence[str] | str) -> list[str]:
    """改行や空白を、図や表で見える記号 (⏎・␣) に置き換えた文字のリスト。"""
    return [_SHOWN.get(c, c) for c in chars]


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def plot_bigram_heatmap(probs, labels: Sequence[str], ax=None):
    """バイグラムの条件付き確率 P(次 | いま) の一部 (行 = いまの文字、列 = 次の文字) を描く。"""
    setup_japanese()
    p = _as_array(probs)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 6.2))
    im = ax.imshow(p, cmap=HEATMAP_CMAP, vmin=0)
    shown = visible(labels)
    ax.set_xticks(range(len(shown)), shown)
    ax.set_yticks(range(len(shown)), shown)
    ax.set_xlabel("次の文字")
    ax.set_ylabel("いまの文字")
    ax.set_title("数えたバイグラム P(次 | いま) (頻度の高い文字だけ)")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="確率")
    return ax


def plot_ngram_curves(rows: Mapping[int, tuple]):
    """N グラムの訓練用・検証用 PPL (2 つのスムージング) と、未出現の並びの割合を並べて描く。

    rows: {n: ((補間の訓練用, 検証用), (add-k の訓練用, 検証用), (文脈の未出現率, 並びの未出現率))}
    """
    setup_japanese()
    ns = sorted(rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    styles = [(0, 0, "o-", 0, "補間: 訓練用"), (0, 1, "s-", 1, "補間: 検証用"),
              (1, 0, "^--", 2, "add-k: 訓練用"), (1, 1, "v--", 4, "add-k: 検証用")]
    for fam, split, style, color, label in styles:       # add-k は中抜きの印 (n = 1, 2 で重なる)
        hollow = {"markerfacecolor": "none", "markersize": 9} if fam else {}
        ax.plot(ns, [rows[n][fam][split] for n in ns], style, color=OKABE_ITO[color], label=label,
                **hollow)
    ax.set_yscale("log")
    ticks = [1.5, 2, 3, 5, 10, 20, 50, 100, 200]
    ax.set_yticks(ticks, labels=[f"{t:g}" for t in ticks])   # 対数目盛でもふつうの数で読めるように
    ax.minorticks_off()
    ax.set(xticks=ns, xlabel="n (直前 n-1 文字を見る)", ylabel="パープレキシティ (対数目盛)",
           title="N グラムのパープレキシティ")
    ax.legend()
    ax = axes[1]
    ax.plot(ns[1:], [100 * rows[n][2][0] for n in ns[1:]], "o-", color=OKABE_ITO[4],
            label="文脈が未出現")
    ax.plot(ns, [100 * rows[n][2][1] for n in ns], "s-", color=OKABE_ITO[5],
            label="並び全体が未出現")
    ax.set(xticks=ns, xlabel="n", ylabel="検証用の並びに占める割合 (%)",
           title="訓練用に一度も現れなかった並び")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_learning_curves(curves: Mapping[str, Sequence[float]], reference: float | None = None,
                         reference_label: str = "", window: int = 20):
    """訓練の損失の移動平均 (window ステップ) を描く。reference は比較の目安の水平線。"""
    setup_japanese()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for (name, losses), color in zip(curves.items(), OKABE_ITO):
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(len(smooth)) + window, smooth, color=color, label=name)
    if reference is not None:
        ax.axhline(reference, color="gray", ls=":", label=reference_label)
    ax.set(xlabel="訓練のステップ", ylabel="訓練用バッチの交差エントロピー (nat)",
           title=f"短い訓練の学習曲線 ({window} ステップの移動平均)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_heads(weights, tokens: Sequence[str], title: str = ""):
    """アテンションの重み (heads, T, T) を、ヘッドごとのヒートマップで並べる (平均しない)。"""
    setup_japanese()
    w = _as_array(weights)
    heads = w.shape[0]
    cols = 2 if heads > 1 else 1
    rows = (heads + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 5.2 * rows), squeeze=False)
    shown = visible(tokens)
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.axis("off")
            continue
        im = ax.imshow(w[h], cmap=HEATMAP_CMAP, vmin=0, vmax=1)
        ax.set_xticks(range(len(shown)), shown, fontsize=10)
        ax.set_yticks(range(len(shown)), shown, fontsize=10)
        ax.set_title(f"ヘッド {h}")
        ax.set_xlabel("参照される位置 (キー)")
        ax.set_ylabel("予測している位置 (クエリ)")
    fig.subplots_adjust(hspace=0.35)
    fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02, label="アテンションの重み")
    if title:
        fig.suptitle(title)
    return fig


def plot_gradients(grads: Mapping[str, Mapping[str, object]]):
    """距離 k と勾配のノルム (対数目盛) を、訓練前と訓練後に分けて描く。"""
    setup_japanese()
    fig, axes = plt.subplots(1, len(grads), figsize=(6 * len(grads), 4.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (phase, table) in zip(axes, grads.items()):
        for (kind, gn), color in zip(table.items(), OKABE_ITO):
            g = _as_array(gn)
            ls = "--" if "b_f" in kind else "-"
            ax.semilogy(np.arange(len(g)), g, ls, color=color,
                        label=kind.replace("b_f", "$b_f$"))          # 凡例では数式の b_f に
        ax.set(xlabel="さかのぼる文字数 k", title=f"{phase}のモデル")
        ax.legend(fontsize=10)
    axes[0].set_ylabel(r"勾配のノルム $\|\partial \ell_t / \partial e_{t-k}\|$")
    fig.tight_layout()
    return fig


def plot_timings(lengths: Sequence[int], timings: Mapping[str, Sequence[float]], device: str):
    """系列長 L と forward の時間 (ミリ秒) を両対数で描く。"""
    setup_japanese()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for (name, ts), color, marker in zip(timings.items(), OKABE_ITO, "os^"):
        ax.loglog(lengths, np.array(ts) * 1e3, marker=marker, color=color, label=name)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="系列長 L (対数目盛)", ylabel="forward の時間 (ミリ秒、対数目盛)",
           title=f"系列長と forward の時間 ({device})")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_perplexity_table(table, ax=None):
    """パープレキシティの表の横棒グラフ (線形目盛)。数え上げのモデルは 1 色、ニューラルは章ごと。

    小さい値どうしの差が読めるよう、20 以下の値に合わせた幅で描き、それを超える棒 (一様分布や
    1-gram) は端で切って、値と「→」を書く。
    """
    setup_japanese()
    rows = list(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.6))

    def group(r) -> str:
        counting = r.model == "uniform" or r.model.endswith("-gram")
        return "数え上げ" if counting else f"ニューラル ({r.chapter})"

    groups = list(dict.fromkeys(group(r) for r in rows))
    palette = [OKABE_ITO[1], OKABE_ITO[0], OKABE_ITO[2], OKABE_ITO[4], OKABE_ITO[5], OKABE_ITO[3]]
    y = list(range(len(rows)))[::-1]
    small = [r.val_ppl for r in rows if r.val_ppl <= 20] or [r.val_ppl for r in rows]
    cap = max(small) * 1.35                                   # これを超える棒は端で切る
    seen: set[str] = set()
    for yi, r in zip(y, rows):
        g = group(r)
        ax.barh(yi, min(r.val_ppl, cap), color=palette[groups.index(g) % len(palette)],
                label=None if g in seen else g)
        seen.add(g)
        if r.val_ppl > cap:
            ax.text(cap * 0.98, yi, f"{r.val_ppl:.3f} →", va="center", ha="right", fontsize=11,
                    color="white")
        else:
            ax.text(r.val_ppl + cap * 0.01, yi, f"{r.val_ppl:.3f}", va="center", fontsize=11)
    ax.set_yticks(y, [r.model for r in rows])
    ax.set_xlim(0, cap)
    ax.legend(loc="center right")
    ax.set_xlabel(f"検証用パープレキシティ (低いほど良い。{cap:.0f} を超える棒は端で切っています)")
    ax.set_title(table.title, fontsize=12)
    return ax
