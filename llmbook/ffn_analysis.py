"""A-4 §5〜§6 の裏方: 訓練したモデルの FFN のニューロンを集め、測り、描く部品。

章のノートブックは、教える中身 (死んだ ReLU の定義、選択性のスコアの定義、出力側の重みを
語彙へ写す計算、活性化関数の比べ方と判定) を本文のセルに置く。ここに置くのは配管だけです。

- 訓練: :func:`train_with_probe` (A-1 の ``train_char_model`` と同じ訓練ループに、途中の測定を足す)
- 活性の収集: :func:`ffn_hidden` (各ブロックの FFN の活性化後の値)、:func:`ffn_activations`
  (長い ID 列を、どの位置にも一定の長さの文脈があるように窓に切って集める)
- 位置の印: :func:`quote_mask` (「…」の中)、:func:`word_end_mask` (語の最後の文字)、
  :func:`char_mask` (指定した文字)
- 文脈の表示: :func:`top_contexts`、:func:`print_top_contexts`、:func:`precision_at_k`
- 図: :func:`plot_relu_history`、:func:`plot_seed_losses`
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook.attn_analysis import (  # A-3 の裏方と同じ検査を使う
    _block_parts,
    _check_ids,
    _check_int,
    _record,
)
from llmbook.chapters.a1 import TrainConfig, get_batch, lr_factor
from llmbook.lm.plots import visible
from llmbook.plotting import OKABE_ITO, setup_japanese

__all__ = [
    "train_with_probe",
    "ffn_hidden",
    "Activations",
    "ffn_activations",
    "quote_mask",
    "word_end_mask",
    "char_mask",
    "top_contexts",
    "print_top_contexts",
    "precision_at_k",
    "plot_relu_history",
    "plot_seed_losses",
]


# --------------------------------------------------------------------------- 検査
def _ffn_modules(model) -> list:
    return _block_parts(model, "ffn", "keep_hidden", "活性を集められるのは、A-4 の FeedForward か "
                        "GatedFeedForward を差し込んだ DecoderLM だけです")


def _as_1d(values, name: str = "values") -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"{name} は長さ 1 以上の 1 次元の列にしてください "
                         f"(受け取った形: {arr.shape})")
    return arr


def _check_same_length(chars: Sequence[str], arr: np.ndarray, name: str) -> None:
    if len(chars) != len(arr):
        raise ValueError(f"{name} ({len(arr)} 個) と文字の列 ({len(chars)} 文字) の長さが違います。"
                         "同じ位置どうしを並べてください")


# --------------------------------------------------------------------------- 訓練
def train_with_probe(model: nn.Module, train_ids: torch.Tensor, config: TrainConfig,
                     probe: Callable[[nn.Module], object], every: int, *,
                     stop: int | None = None) -> tuple:
    """A-1 の ``train_char_model`` と同じ訓練 (AdamW、ウォームアップと減衰、勾配クリッピング) に、
    ``every`` ステップごとの測定 ``probe(model)`` を足したもの。

    測定はステップ 0 (訓練前) と、``every`` の倍数のステップと、最後のステップの後に行う。
    ``stop`` を渡すと、学習率の予定は ``config.steps`` のまま、``stop`` ステップで打ち切る
    (学習率だけを変えた実行を、同じ予定の途中まで比べるため)。
    戻り値は (各ステップの損失のリスト, {ステップ: probe の戻り値})。
    """
    _check_int("every", every)
    if not callable(probe):
        raise TypeError(f"probe には model を受け取る関数を渡してください "
                        f"(受け取ったもの: {type(probe).__name__})")
    last = config.steps if stop is None else _check_int("stop", stop)
    if last > config.steps:
        raise ValueError(f"stop ({last}) は config.steps ({config.steps}) 以下にしてください")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config))
    losses, records = [], {}
    for step in range(last):
        if step % every == 0:
            records[step] = probe(model)
        model.train()
        x, y = get_batch(train_ids, config.batch_size, config.seq_len, g, device)   # (B, T)
        logits = model(x)                                                            # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    records[last] = probe(model)
    model.eval()
    return losses, records


# --------------------------------------------------------------------------- 活性の収集
@torch.no_grad()
def ffn_hidden(model: nn.Module, ids: torch.Tensor) -> list:
    """ID (B, T) を通したときの、各ブロックの FFN の活性化後の値 [(B, T, d_ff), ...] (層の順)。

    モデルは評価モードで動かし、``keep_hidden`` と訓練モードは元に戻す。
    """
    ffns = _ffn_modules(model)
    ids = _check_ids(ids, ndim=2)
    return _record(model, ffns, "keep_hidden", "hidden", ids)


class Activations(NamedTuple):
    """:func:`ffn_activations` の戻り値。``values[i]`` は ``ids[start + i]`` を読んだ位置の活性。"""

    values: torch.Tensor
    start: int


def ffn_activations(model: nn.Module, ids: torch.Tensor, *, layer: int = -1,
                    seq_len: int | None = None, min_context: int = 32,
                    batch_size: int = 64) -> Activations:
    """1 次元の ID 列の各位置での、ある層の FFN の活性 (N, d_ff) を集める。

    長さ ``seq_len`` (既定は ``model.max_len``) の窓を ``seq_len − min_context`` ずつずらして
    並べ、各窓の後ろの部分だけを使う。こうすると、どの位置も ``min_context`` 文字以上の文脈を
    読んだ後の値になり、使う部分はすき間なく続く (``values[i]`` ↔ ``ids[start + i]``、
    ``start = min_context``)。
    """
    ids = _check_ids(ids, ndim=1)
    seq_len = getattr(model, "max_len", None) if seq_len is None else seq_len
    _check_int("seq_len", seq_len, 2)
    _check_int("min_context", min_context, 0)
    _check_int("batch_size", batch_size)
    n_layers = len(_ffn_modules(model))
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer は {-n_layers}〜{n_layers - 1} の整数にしてください "
                         f"(受け取った値: {layer!r})")
    stride = seq_len - min_context
    if stride < 1:
        raise ValueError(f"min_context ({min_context}) は seq_len ({seq_len}) より小さくします")
    n = (len(ids) - seq_len) // stride + 1
    if n < 1:
        raise ValueError(f"ID 列 ({len(ids)} 個) が短すぎて、長さ {seq_len} の窓を作れません")
    starts = torch.arange(n) * stride
    windows = ids[starts[:, None] + torch.arange(seq_len)]                   # (n, seq_len)
    parts = [ffn_hidden(model, chunk)[layer][:, min_context:]                # (b, stride, d_ff)
             for chunk in windows.split(batch_size)]
    values = torch.cat(parts).reshape(-1, parts[0].shape[-1])                # (n · stride, d_ff)
    return Activations(values, min_context)


# --------------------------------------------------------------------------- 位置の印
def _check_chars(chars) -> list:
    if isinstance(chars, str):
        return list(chars)
    if not isinstance(chars, Sequence) or not all(isinstance(c, str) and len(c) == 1
                                                  for c in chars):
        raise TypeError("chars には文字列か、1 文字の文字列の列を渡してください")
    return list(chars)


def quote_mask(chars, open_char: str = "「", close_char: str = "」") -> np.ndarray:
    """「…」の中の位置が True の bool 配列 (開きかっこの直後から、閉じかっこの直前まで)。

    かっこそのものは False。入れ子は深さで数え、対応のない閉じかっこは無視する。
    """
    chars = _check_chars(chars)
    out, depth = np.zeros(len(chars), dtype=bool), 0
    for i, c in enumerate(chars):
        if c == open_char:
            depth += 1
        elif c == close_char:
            depth = max(0, depth - 1)
        else:
            out[i] = depth > 0
    return out


def word_end_mask(chars, words: Iterable[str]) -> np.ndarray:
    """words のどれかが現れた所の、最後の文字の位置が True の bool 配列。"""
    chars = _check_chars(chars)
    words = list(words)
    if not words or not all(isinstance(w, str) and w for w in words):
        raise ValueError("words には空でない文字列を 1 つ以上渡してください")
    text, out = "".join(chars), np.zeros(len(chars), dtype=bool)
    for w in words:
        k = text.find(w)
        while k >= 0:
            out[k + len(w) - 1] = True
            k = text.find(w, k + 1)
    return out


def char_mask(chars, targets: str) -> np.ndarray:
    """targets のどれかの文字の位置が True の bool 配列。"""
    chars = _check_chars(chars)
    if not isinstance(targets, str) or not targets:
        raise ValueError("targets には 1 文字以上の文字列を渡してください")
    return np.array([c in targets for c in chars], dtype=bool)


# --------------------------------------------------------------------------- 文脈の表示
def top_contexts(values, chars, k: int = 8, width: int = 12) -> list:
    """values (N,) の大きい順に k 個: [(位置, 値, 直前 width 文字, その位置の文字), ...]。

    同じ値なら前の位置が先。改行などは見える記号 (⏎) にする。
    """
    v = _as_1d(values)
    chars = _check_chars(chars)
    _check_same_length(chars, v, "values")
    _check_int("k", k)
    _check_int("width", width, 0)
    order = np.argsort(-v, kind="stable")[:k]
    return [(int(i), float(v[i]), "".join(visible(chars[max(0, i - width):i])),
             "".join(visible(chars[i]))) for i in order]


def print_top_contexts(values, chars, k: int = 8, width: int = 12, *,
                       mask=None, title: str = "") -> None:
    """:func:`top_contexts` を 1 行ずつ印字する。その位置の文字は 〔 〕 で囲む。

    mask (N,) を渡すと、印の付いた位置に ○ を付ける。
    """
    v = _as_1d(values)
    m = None if mask is None else _as_1d(mask, "mask").astype(bool)
    if m is not None:
        _check_same_length(_check_chars(chars), m, "mask")
    if title:
        print(title)
    for rank, (i, value, left, token) in enumerate(top_contexts(v, chars, k, width), 1):
        mark = "" if m is None else ("  ○" if m[i] else "  ·")
        print(f"  {rank:2d}. {value:6.3f}  {left:>{width}}〔{token}〕{mark}")


def precision_at_k(values, mask, k: int = 20) -> float:
    """values の大きい順の k 個のうち、mask が True の位置の割合。"""
    v, m = _as_1d(values), _as_1d(mask, "mask").astype(bool)
    if len(v) != len(m):
        raise ValueError(f"values ({len(v)} 個) と mask ({len(m)} 個) の長さが違います")
    _check_int("k", k)
    return float(m[np.argsort(-v, kind="stable")[:k]].mean())


# --------------------------------------------------------------------------- 図
def plot_relu_history(runs: Mapping[str, Mapping[int, Sequence[Sequence[float]]]]):
    """{実行の名前: {ステップ: [(死んだ割合, 0 の割合) × 層]}} を、左右 2 枚の折れ線で描く。

    左は死んだニューロンの割合、右はトークンごとの 0 の割合 (平均)。層ごとに色、実行ごとに
    線の種類を変える。
    """
    setup_japanese()
    if not runs:
        raise ValueError("runs が空です。"
                         "{名前: {ステップ: [(死んだ割合, 0 の割合), ...]}} を渡します")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    styles = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))
    for (name, history), (ls, marker) in zip(runs.items(), styles):
        steps = sorted(history)
        n_layers = len(history[steps[0]])
        for layer in range(n_layers):
            for col, ax in enumerate(axes):
                ax.plot(steps, [100 * history[s][layer][col] for s in steps], ls=ls,
                        marker=marker, ms=5, color=OKABE_ITO[layer % len(OKABE_ITO)],
                        label=f"{name}・層 {layer}")
    axes[0].set(xlabel="ステップ", ylabel="割合 (%)",
                title="死んだニューロン (検証用バッチのどのトークンでも 0)")
    axes[1].set(xlabel="ステップ", ylabel="割合 (%)",
                title="0 になる活性 (全トークン・全ニューロン)")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=10)
    fig.tight_layout()
    return fig


def plot_seed_losses(results: Mapping[str, Sequence[float]], *, ylabel: str = "検証用の損失 (nat)",
                     title: str = ""):
    """{名前: seed ごとの値} を、seed ごとの点と平均の横線で描く (名前ごとに色を変える)。"""
    setup_japanese()
    if not results:
        raise ValueError("results が空です。{名前: seed ごとの値のリスト} を渡します")
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(results) + 2), 4.2))
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    for k, (name, vals) in enumerate(results.items()):
        v = _as_1d(vals, f"results[{name!r}]")
        color = OKABE_ITO[k % len(OKABE_ITO)]
        offsets = np.linspace(-0.12, 0.12, len(v)) if len(v) > 1 else np.zeros(1)
        ax.plot(k + offsets, v, markers[k % len(markers)], color=color, ms=8, ls="none")
        ax.hlines(v.mean(), k - 0.25, k + 0.25, color=color, lw=2.5)
    ax.set_xticks(range(len(results)), list(results))
    ax.set_xlim(-0.6, len(results) - 0.4)
    ax.set(ylabel=ylabel, title=title or "seed ごとの値 (点) と平均 (横線)")
    ax.margins(y=0.2)
    fig.tight_layout()
    return fig
