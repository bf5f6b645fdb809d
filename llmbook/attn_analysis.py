"""A-3 §5〜§7 の裏方: 訓練したモデルのアテンションを集め、測り、描く部品。

章のノートブックは、教える中身 (訓練ループ、ヘッドのスコアの定義、ヘッドを切る考え方、
KV キャッシュの式) を本文のセルに置く。ここに置くのは、それを支える配管だけです。

- 重みの収集: :func:`attention_maps` (各層の ``MultiHeadAttention.weights`` を集める)
- 測定の道具: :func:`logits_with_cut_paths` (層 0 のヘッドを層 1 のキーなどからだけ切る)、
  :func:`weights_at_offset` (i → i − offset の重み)、:func:`quote_pairs`
  (「…」の中の位置と、その開きかっこの組)、:func:`val_windows` と :func:`token_losses`
- 誘導ヘッドのデータ: :func:`planted_pair_batch` ([A][B] … [A] を 1 組埋めた列)、
  :func:`repeat_twice_batch` (BOS とランダムな L 個を 2 回)
- 図: :func:`plot_head_grid`、:func:`plot_head_bars`、:func:`plot_phase_change`、:func:`plot_cost`
- メモリ: :func:`peak_memory` (CPU はプロファイラの確保と解放の記録、CUDA は
  ``max_memory_allocated``)、:func:`ops_run` (どの演算 (カーネル) が動いたか)
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook.lm.plots import visible
from llmbook.plotting import HEATMAP_CMAP, OKABE_ITO, setup_japanese

__all__ = [
    "head_labels",
    "attention_maps",
    "weights_at_offset",
    "quote_pairs",
    "val_windows",
    "token_losses",
    "logits_with_cut_paths",
    "PlantedBatch",
    "planted_pair_batch",
    "repeat_twice_batch",
    "plot_head_grid",
    "plot_head_bars",
    "plot_phase_change",
    "peak_memory",
    "ops_run",
    "plot_cost",
]


# --------------------------------------------------------------------------- 検査
def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"形 {tuple(x.shape)}、{x.dtype} の Tensor"
    return type(x).__name__


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} は {minimum} 以上の整数にしてください (受け取った値: {value!r})")
    return value


def _check_ids(ids, name: str = "ids", ndim: int | None = None) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise TypeError(f"{name} は torch.long の Tensor で渡してください "
                        f"(受け取ったもの: {_describe(ids)})")
    if ndim is not None and ids.ndim != ndim:
        raise ValueError(f"{name} は {ndim} 次元の Tensor にしてください "
                         f"(受け取った形: {tuple(ids.shape)})")
    return ids


def _block_parts(model, part: str, flag: str, needs: str) -> list:
    """DecoderLM の各ブロックの部品 (attn か ffn) を集め、記録の旗 flag を持つかを確かめる。"""
    blocks = getattr(model, "blocks", None)
    if not isinstance(model, nn.Module) or blocks is None:
        raise TypeError("model には blocks を持つ DecoderLM を渡してください "
                        f"(受け取ったもの: {type(model).__name__})")
    parts = [getattr(b, part, None) for b in blocks]
    if not parts or not all(hasattr(x, flag) for x in parts):
        raise TypeError(f"{needs} (各ブロックの {part} に {flag} が要ります)")
    return parts


def _attention_modules(model) -> list:
    return _block_parts(model, "attn", "keep_weights", "重みを集められるのは、"
                        "make_attn=MultiHeadAttention で作った DecoderLM だけです")


def head_labels(n_layers: int, n_heads: int) -> list:
    """「層 0・ヘッド 0」から順に、層ごとにヘッドを並べた名前 (番号はコードと同じく 0 から)。"""
    _check_int("n_layers", n_layers)
    _check_int("n_heads", n_heads)
    return [f"層 {layer}・ヘッド {h}" for layer in range(n_layers) for h in range(n_heads)]


# --------------------------------------------------------------------------- 重みの収集と測定
@torch.no_grad()
def attention_maps(model, ids: torch.Tensor) -> list:
    """ids (B, T) または (T,) を読んだときの、各層のアテンションの重みのリスト。

    要素は (B, h, T, T) (ids が 1 次元なら B = 1)。一時的に ``keep_weights`` を True にし、
    終わったら元に戻す。モデルは評価モード (eval) で動かし、その後も元のモードに戻す。
    """
    attns = _attention_modules(model)
    ids = _check_ids(ids)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2:
        raise ValueError(f"ids は (B, T) か (T,) にしてください (受け取った形: {tuple(ids.shape)})")
    return _record(model, attns, "keep_weights", "weights", ids)


def _record(model, parts: list, flag: str, attr: str, ids: torch.Tensor) -> list:
    """parts の旗 flag を立てて評価モードで 1 回 forward し、各部品の attr を集める。

    旗と訓練モードは元に戻す (A-3 の重み、A-4 の FFN の活性で使う)。
    """
    saved, was_training = [getattr(x, flag) for x in parts], model.training
    try:
        for x in parts:
            setattr(x, flag, True)
        model.eval()
        model(ids)
        return [getattr(x, attr) for x in parts]
    finally:
        for x, keep in zip(parts, saved):
            setattr(x, flag, keep)
        model.train(was_training)


def weights_at_offset(weights: torch.Tensor, offset) -> torch.Tensor:
    """各クエリ i が、キー i − offset に置いた重み。weights (..., T, T) → (..., T)。

    offset は 0 以上の整数 (0 なら自分自身、1 なら直前の位置) か、行ごとの値 (B,) の
    torch.long (weights は (B, h, T, T))。i − offset < 0 の位置は NaN にする (その位置には
    対応するキーがないので、平均から外せるように)。
    """
    if not isinstance(weights, torch.Tensor) or weights.ndim < 2 \
            or weights.shape[-1] != weights.shape[-2]:
        raise ValueError("weights は (..., T, T) の Tensor で渡してください "
                         f"(受け取ったもの: {_describe(weights)})")
    T = weights.shape[-1]
    i = torch.arange(T, device=weights.device)
    if isinstance(offset, torch.Tensor):
        if weights.ndim != 4 or offset.shape != (weights.shape[0],) or offset.dtype != torch.long:
            raise ValueError("行ごとの offset は (B,) の torch.long で、weights は (B, h, T, T) に"
                             f"してください (offset: {_describe(offset)}、weights: "
                             f"{tuple(weights.shape)})")
        key = i - offset.to(weights.device).view(-1, 1, 1)                 # (B, 1, T)
        key = key.expand(-1, weights.shape[1], -1)                          # (B, h, T)
    else:
        key = i - _check_int("offset", offset, minimum=0)                   # (T,)
        key = key.expand(weights.shape[:-1])                                # (..., T)
    picked = weights.gather(-1, key.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(key < 0, float("nan"))


def quote_pairs(ids: torch.Tensor, open_id: int, close_id: int, min_gap: int = 2) -> torch.Tensor:
    """「…」の中の位置 i と、その開きかっこ 「 の位置 j の組を True にした (B, T, T) の bool。

    i は開きかっこより後で、対応する閉じかっこ 」 の位置まで (」 自身を含む)。かっこの入れ子は
    いちばん内側の 「 を使う。直前の位置と区別するため、i − j >= min_gap の組だけを数える。
    """
    ids = _check_ids(ids, ndim=2)
    _check_int("min_gap", min_gap)
    pairs = torch.zeros(*ids.shape, ids.shape[1], dtype=torch.bool)
    for b, row in enumerate(ids.tolist()):
        stack = []                                   # まだ閉じていない 「 の位置
        for i, token in enumerate(row):
            if stack and i - stack[-1] >= min_gap:
                pairs[b, i, stack[-1]] = True
            if token == open_id:
                stack.append(i)
            elif token == close_id and stack:
                stack.pop()
    return pairs


def val_windows(ids: torch.Tensor, seq_len: int, n: int | None = None) -> torch.Tensor:
    """1 次元の ID 列を、重ならない長さ seq_len + 1 の窓に切る: (N, seq_len + 1)。

    各窓の先頭 seq_len 個が入力、1 つずらした seq_len 個が正解になる。n を渡すと先頭の n 個。
    """
    ids = _check_ids(ids, ndim=1)
    _check_int("seq_len", seq_len)
    count = len(ids) // (seq_len + 1)
    if count == 0:
        raise ValueError(f"ID 列 ({len(ids)} 個) が短すぎて、長さ {seq_len + 1} の窓を 1 つも"
                         "作れません")
    if n is not None:
        count = min(count, _check_int("n", n))
    return ids[: count * (seq_len + 1)].view(count, seq_len + 1)


@torch.no_grad()
def token_losses(model: nn.Module, windows: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """窓 (N, T + 1) の各位置の、次のトークンの交差エントロピー (nat): (N, T)。

    入力は各窓の先頭 T 個、正解は 1 つずらした T 個。モデルは評価モードで動かし、元に戻す。
    """
    windows = _check_ids(windows, "windows", ndim=2)
    _check_int("batch_size", batch_size)
    if windows.shape[1] < 2:
        raise ValueError("windows の長さは 2 以上にしてください (入力と正解で 1 つずつずらすため)")
    was_training = model.training
    model.eval()
    try:
        out = []
        for chunk in windows.split(batch_size):
            logits = model(chunk[:, :-1])                                    # (b, T, V)
            out.append(F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none"))
        return torch.cat(out)                                                # (N, T)
    finally:
        model.train(was_training)


_PATHS = {"Q": "クエリ", "K": "キー", "V": "バリュー", "R": "残差の流れ"}


@torch.no_grad()
def logits_with_cut_paths(model, ids: torch.Tensor, cut_heads: Sequence[int],
                          paths: str) -> torch.Tensor:
    """2 層のモデルで、層 0 のヘッド cut_heads を切った流れを、層 1 の一部の入力にだけ渡す。

    paths は "Q"・"K"・"V"・"R" (層 1 のアテンションのクエリ・キー・バリューと、残差接続で
    そのまま先へ進む流れ) から選んだ文字列。選んだ入力は層 0 のヘッドを切った流れ、残りは
    切らない流れから作る。"QKVR" なら層 0 の head_gate で切ったのと同じ、"" なら何も切らない
    のと同じ。ids (B, T) → ロジット (B, T, V)。Pre-LN の DecoderLM で、層は 2 つだけ。
    """
    from llmbook.chapters.a2 import causal_mask
    from llmbook.chapters.a3 import merge_heads, scaled_dot_product_attention, split_heads

    attn0, attn1 = _attention_modules(model)[0], _attention_modules(model)[-1]
    if len(model.blocks) != 2 or not model.blocks[0].pre_ln or not hasattr(attn1, "w_q"):
        raise ValueError("logits_with_cut_paths は、MultiHeadAttention を使う Pre-LN の 2 層の "
                         "DecoderLM 専用です")
    ids = _check_ids(ids, ndim=2)
    if not isinstance(paths, str) or set(paths) - set(_PATHS):
        raise ValueError(f"paths は {''.join(_PATHS)} から選んだ文字列にしてください "
                         f"(受け取った値: {paths!r})")
    heads = [_check_int("cut_heads の要素", h, minimum=0) for h in cut_heads]
    if any(h >= attn0.n_heads for h in heads):
        raise ValueError(f"cut_heads は 0〜{attn0.n_heads - 1} にしてください ({heads})")
    was_training, old_gate = model.training, attn0.head_gate
    model.eval()
    try:
        T = ids.shape[1]
        mask = causal_mask(T).to(ids.device)
        h0 = model.tok_emb(ids)                                              # (B, T, d)
        pos = torch.arange(T, device=ids.device)
        h0 = h0 + model.pos_emb(pos) if model.pos_emb is not None \
            else h0 * model.d_model ** 0.5 + model.pe[pos]
        block0, block1 = model.blocks
        attn0.head_gate = None
        full = block0(h0, mask)                                              # 切らない流れ
        gate = torch.ones(attn0.n_heads)
        gate[heads] = 0.0
        attn0.head_gate = gate
        cut = block0(h0, mask)                                               # 切った流れ
        src = {p: cut if p in paths else full for p in _PATHS}
        x = {p: block1.ln1(src[p]) for p in "QKV"}
        q, k, v = (split_heads(w(x[p]), attn1.n_heads)
                   for w, p in ((attn1.w_q, "Q"), (attn1.w_k, "K"), (attn1.w_v, "V")))
        out, _ = scaled_dot_product_attention(q, k, v, mask)                 # (B, h, T, d_k)
        h2 = src["R"] + attn1.w_o(merge_heads(out))
        h2 = h2 + block1.ffn(block1.ln2(h2))
        return model.head(model.ln_f(h2))                                    # (B, T, V)
    finally:
        attn0.head_gate = old_gate
        model.train(was_training)


# --------------------------------------------------------------------------- 誘導ヘッドのデータ
def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator には torch.Generator を渡してください "
                        f"(受け取ったもの: {type(generator).__name__})")
    return generator


class PlantedBatch(NamedTuple):
    """:func:`planted_pair_batch` の戻り値。

    - ``ids``: (B, T) の ID。位置 0 は BOS (= vocab_size)、最後の位置は A
    - ``target``: (B,) の正解 B (= 最後の位置で予測するトークン)
    - ``pos``: (B,) の A の前の出現の位置 p (B は位置 p + 1 にある)
    """

    ids: torch.Tensor
    target: torch.Tensor
    pos: torch.Tensor


def planted_pair_batch(batch_size: int, vocab_size: int, seq_len: int,
                       generator: torch.Generator) -> PlantedBatch:
    """「[A][B] … [A]」を 1 組だけ埋めた列のバッチ。最後の位置で B を当てる問題になる。

    位置 0 は BOS (ID = vocab_size)、残りはランダムなトークン。p を 1〜seq_len − 3 から一様に
    選び、A = ids[p]、B = ids[p + 1] とする。位置 1〜seq_len − 2 にある p 以外の A は、A でない
    ランダムなトークンに替え、最後の位置に A を置く。乱数は generator だけから引く。
    """
    for name, value in (("batch_size", batch_size), ("vocab_size", vocab_size)):
        _check_int(name, value)
    _check_int("seq_len", seq_len, minimum=4)
    _check_int("vocab_size", vocab_size, minimum=2)
    _check_generator(generator)
    n, rows = batch_size, torch.arange(batch_size)
    ids = torch.randint(0, vocab_size, (n, seq_len), generator=generator)
    ids[:, 0] = vocab_size                                                   # BOS
    pos = torch.randint(1, seq_len - 2, (n,), generator=generator)           # A の位置 p
    a = ids[rows, pos]
    clash = ids == a[:, None]
    clash[rows, pos] = False                                                 # p の A だけ残す
    other = (ids + 1 + torch.randint(0, vocab_size - 1, ids.shape, generator=generator))
    ids = torch.where(clash, other % vocab_size, ids)                        # A 以外に替える
    ids[:, -1] = a
    return PlantedBatch(ids, ids[rows, pos + 1], pos)


def repeat_twice_batch(batch_size: int, vocab_size: int, length: int,
                       generator: torch.Generator) -> torch.Tensor:
    """BOS と、互いに違うランダムなトークン L 個と、その同じ L 個: (B, 1 + 2L) の ID。

    BOS の ID は vocab_size。2 回目の位置 i (1 + L 以降) の次のトークンは、i − L + 1 にある。
    """
    _check_int("batch_size", batch_size)
    _check_int("length", length)
    _check_int("vocab_size", vocab_size)
    if length > vocab_size:
        raise ValueError(f"length ({length}) 個の違うトークンを、語彙 {vocab_size} 個からは"
                         "選べません")
    _check_generator(generator)
    pick = torch.rand(batch_size, vocab_size, generator=generator).argsort(-1)[:, :length]
    bos = torch.full((batch_size, 1), vocab_size)
    return torch.cat([bos, pick, pick], dim=1)


# --------------------------------------------------------------------------- 図
def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def plot_head_grid(maps: Sequence, tokens: Sequence[str], *, title: str = "",
                   marks: Mapping | None = None, size: float = 4.6):
    """各層・各ヘッドの重みを 1 枚に並べる: 行 = ヘッド、列 = 層 (番号は 0 から)。

    maps は層ごとの (h, T, T) (A-3 の attention_maps の 1 行分)。tokens は T 文字で、改行や
    空白は ⏎・␣ で見せる。marks は {(層, ヘッド): 添える一言} で、その図の題に付ける。
    """
    setup_japanese()
    arrays = [_as_array(m) for m in maps]
    if not arrays or any(a.ndim != 3 or a.shape[1:] != arrays[0].shape[1:] for a in arrays):
        raise ValueError("maps は、層ごとに同じ形 (h, T, T) の重みを並べたリストで渡してください")
    heads, T = arrays[0].shape[0], arrays[0].shape[-1]
    shown = visible(tokens)
    if len(shown) != T:
        raise ValueError(f"tokens の数 ({len(shown)}) と重みの T ({T}) が合いません")
    wide = max(map(len, shown)) > 1                      # 2 文字以上の名前は縦に書く
    fig, axes = plt.subplots(heads, len(arrays), figsize=(size * len(arrays) + 1.2, size * heads),
                             squeeze=False, layout="constrained")
    for layer, a in enumerate(arrays):
        for h in range(heads):
            ax = axes[h, layer]
            im = ax.imshow(a[h], cmap=HEATMAP_CMAP, vmin=0, vmax=1)
            ax.set_xticks(range(T), shown, fontsize=11, rotation=90 if wide else 0)
            ax.set_yticks(range(T), shown, fontsize=11)
            note = (marks or {}).get((layer, h))
            ax.set_title(f"層 {layer}・ヘッド {h}" + (f"\n{note}" if note else ""), fontsize=13)
    for ax in axes[-1]:
        ax.set_xlabel("キー (参照される位置)")
    for ax in axes[:, 0]:
        ax.set_ylabel("クエリ (予測している位置)")
    fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02, label="アテンションの重み")
    if title:
        fig.suptitle(title)
    return fig


def plot_head_bars(values: Sequence[float], n_heads: int, *, ylabel: str, title: str = "",
                   reference: float | None = None, reference_label: str = ""):
    """ヘッドごとの値の棒グラフ (層ごとに色を変え、棒の上に値を書く)。values は層の順に並べる。"""
    setup_japanese()
    v = _as_array(values).ravel()
    _check_int("n_heads", n_heads)
    if len(v) == 0 or len(v) % n_heads:
        raise ValueError(f"values の数 ({len(v)}) は n_heads ({n_heads}) の倍数にしてください")
    labels = head_labels(len(v) // n_heads, n_heads)
    colors = [OKABE_ITO[(k // n_heads) % len(OKABE_ITO)] for k in range(len(v))]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(v) + 1.5), 4.2))
    bars = ax.bar(range(len(v)), v, color=colors)
    ax.bar_label(bars, labels=[f"{x:.3f}" for x in v], fontsize=10, padding=2)
    ax.set_xticks(range(len(v)), [lab.replace("・", "\n") for lab in labels], fontsize=11)
    if reference is not None:
        ax.axhline(reference, color="gray", ls=":", label=reference_label)
        ax.legend()
    ax.set(ylabel=ylabel, title=title)
    ax.margins(y=0.15)
    fig.tight_layout()
    return fig


def plot_phase_change(losses: Sequence[float], steps: Sequence[int], accuracy: Sequence[float],
                      induction, previous, *, jump: int | None = None, window: int = 10):
    """誘導ヘッドの訓練の 3 つの曲線を、ステップを横軸にして並べる。

    左: 訓練の損失 (window ステップの移動平均) と、確かめ用の正解率。中: 層 1 の各ヘッドの誘導
    スコア。右: 層 0 の各ヘッドの直前スコア。induction と previous は (記録の数, h)。jump を渡すと
    そのステップに縦の点線を引く。
    """
    setup_japanese()
    _check_int("window", window)
    ind, prev = _as_array(induction), _as_array(previous)
    x = np.asarray(steps)
    if ind.ndim != 2 or ind.shape != prev.shape or len(x) != len(ind) or len(accuracy) != len(x):
        raise ValueError("steps・accuracy・induction・previous の記録の数をそろえ、induction と "
                         "previous は (記録の数, h) にしてください")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharex=True)
    y = np.convolve(_as_array(losses), np.ones(window) / window, mode="valid")
    axes[0].plot(np.arange(len(y)) + window, y, color="gray", label="訓練の損失 (移動平均)")
    axes[0].set(xlabel="ステップ", ylabel="交差エントロピー", title="損失と正解率")
    twin = axes[0].twinx()
    twin.plot(x, _as_array(accuracy), "o-", color=OKABE_ITO[0], ms=4, label="正解率 (確かめ用)")
    twin.set(ylim=(0, 1.05), ylabel="正解率")
    lines = axes[0].get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    axes[0].legend(lines, [ln.get_label() for ln in lines], fontsize=10, loc="center right")
    panels = ((axes[1], ind, "層 1 の誘導スコア", "p + 1 への重み"),
              (axes[2], prev, "層 0 の直前スコア", "i − 1 への重みの平均"))
    for ax, values, title, name in panels:
        for h, (color, marker) in enumerate(zip(OKABE_ITO, "os^D")):
            ax.plot(x, values[:, h], marker=marker, ms=4, color=color, label=f"ヘッド {h}")
        ax.set(xlabel="ステップ", ylabel=name, ylim=(0, 1.05), title=title)
        ax.legend(fontsize=10)
    if jump is not None:
        for ax in axes:
            ax.axvline(jump, color="gray", ls=":")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- 時間とメモリ
@contextlib.contextmanager
def _quiet_native_stderr():
    """プロファイラが C++ から標準エラーに直接書く開始・終了の記録 (USDT: …) を見せない。"""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:                    # 標準エラーがファイル記述子を持たない環境では何もしない
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profile_cpu(fn: Callable[[], object]):
    from torch.profiler import ProfilerActivity, profile

    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU],
                                          profile_memory=True) as prof:
        fn()
    return prof


def _memory_events(prof) -> list:
    """プロファイラの 1 回ごとの確保 (+) と解放 (−) の記録 [memory]: 時刻の順の (時刻, バイト)。"""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            events = json.load(f)["traceEvents"]
    return sorted((e["ts"], int(e["args"]["Bytes"])) for e in events
                  if e.get("name") == "[memory]" and "Bytes" in e.get("args", {}))


def peak_memory(fn: Callable[[], object], device) -> int:
    """fn() の実行中に確保されたメモリの最大値 (バイト、実行前からあった分は除く)。

    CUDA では ``torch.cuda.max_memory_allocated`` の増分。CPU では PyTorch のプロファイラ
    (profile_memory=True) が記録した 1 回ごとの確保と解放 ([memory] の記録) を時刻の順に足し、
    その最大値を取る。1 つの演算の中で確保して解放した作業用の領域も、こうすれば数えられる
    (演算ごとの差し引き self_cpu_memory_usage を足すと、それが 0 に見えてしまう)。
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    if device.type != "cpu":
        raise ValueError(f"メモリを測れるのは CPU と CUDA だけです (受け取ったデバイス: {device})")
    current = peak = 0
    for _, nbytes in _memory_events(_profile_cpu(fn)):
        current += nbytes                                # 確保は +、解放は −
        peak = max(peak, current)
    return peak


def ops_run(fn: Callable[[], object], contains: str = "") -> list:
    """fn() の中で動いた PyTorch の演算 (aten::…) の名前。contains を含むものだけ、重複なしで。"""
    if not isinstance(contains, str):
        raise TypeError("contains は文字列で渡してください "
                        f"(受け取ったもの: {_describe(contains)})")
    names = {e.name for e in _profile_cpu(fn).events()}
    return sorted(n for n in names if contains in n and n != "[memory]")


def plot_cost(lengths: Sequence[int], times: Mapping[str, Sequence[float]],
              memory: Mapping[str, Sequence[float]], device: str):
    """系列長 L と、時間 (ミリ秒)・メモリの最大値 (MiB) を両対数で 2 つ並べて描く。"""
    setup_japanese()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    panels = ((axes[0], times, "時間 (ミリ秒)"), (axes[1], memory, "メモリの最大値 (MiB)"))
    for ax, table, unit in panels:
        for (name, ys), color, marker in zip(table.items(), OKABE_ITO, "os^D"):
            ax.loglog(lengths, _as_array(ys), marker=marker, color=color, label=name)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="系列長 L (対数目盛)", ylabel=f"{unit}、対数目盛")
        ax.legend(fontsize=10)
    axes[0].set_title(f"アテンション 1 回の時間 ({device})")
    axes[1].set_title(f"アテンション 1 回のメモリ ({device})")
    fig.tight_layout()
    return fig
