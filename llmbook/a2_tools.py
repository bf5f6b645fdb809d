"""A-2「Transformer の全体構造」の裏方 (手で書いたモジュール)。

章が教える本体 (BPE の結合、ブロック、骨格) は ``llmbook/chapters/a2.py`` (ノートブックから生成) に
あり、ここには次のような、本文の流れから外した方が読みやすい部分を置く。

- BPE の訓練を速くする帳簿づけ (:func:`index_pairs`、:func:`apply_merge`)
- 入力の検証と日本語のエラー (:func:`check_positive_int`、:func:`check_d_model_heads`、
  :func:`check_sequence`、:func:`check_mask`、:func:`check_ids`、
  :func:`check_lm_config`、:func:`check_token_stream`)
- 文字のラベルが重なりにくい散布図 (:func:`scatter_with_labels`)
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import torch

__all__ = [
    "index_pairs",
    "apply_merge",
    "check_positive_int",
    "check_d_model_heads",
    "check_sequence",
    "check_mask",
    "check_ids",
    "check_lm_config",
    "check_token_stream",
    "scatter_with_labels",
]


# ---------------------------------------------------------------------------
# BPE の帳簿づけ
# ---------------------------------------------------------------------------


def index_pairs(words: list, freqs: list) -> tuple:
    """かたまりの列から (組 → 回数の Counter, 組 → その組を含むかたまりの番号の集合) を作る。

    回数は「かたまりの中で隣り合う回数 × そのかたまりの頻度」の合計。
    """
    pairs, where = collections.Counter(), collections.defaultdict(set)
    for i, (w, f) in enumerate(zip(words, freqs)):
        for p in zip(w, w[1:]):
            pairs[p] += f
            where[p].add(i)
    return pairs, where


def apply_merge(words: list, freqs: list, where: dict, pairs: collections.Counter, pair: tuple,
                merge: Callable[[list, tuple], list]) -> list:
    """``pair`` を含むかたまりだけを ``merge`` で書き換え、``pairs`` と ``where`` を更新する。

    テキスト全体を数え直さず、書き換えたかたまりでの組の増減 (回数 × かたまりの頻度) だけを
    反映する。回数が 0 になった組は ``pairs`` から消す。戻り値は回数が変わり、まだ残っている組
    (ヒープに入れ直すもの) のリスト。
    """
    delta = collections.Counter()
    for i in where.pop(pair, ()):
        old = words[i]
        new = merge(old, pair)
        if len(new) == len(old):
            continue                                     # もう含まない (古い記録)
        words[i] = new
        diff = collections.Counter(zip(new, new[1:]))
        diff.subtract(collections.Counter(zip(old, old[1:])))
        for q, n in diff.items():
            if n:
                delta[q] += n * freqs[i]
                if n > 0:
                    where[q].add(i)
    changed = []
    for q, n in delta.items():
        pairs[q] += n
        if pairs[q] > 0:
            changed.append(q)
        else:
            del pairs[q]
    return changed


# ---------------------------------------------------------------------------
# 入力の検証
# ---------------------------------------------------------------------------


def check_positive_int(name: str, value) -> None:
    """value が 1 以上の整数 (bool は除く) であることを確かめる。"""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} は 1 以上の整数にしてください (受け取った値: {value!r})")


def check_d_model_heads(d_model: int, n_heads: int) -> None:
    """d_model と n_heads が正の整数で、割り切れるかを確かめる (A-2 §6)。"""
    check_positive_int("d_model", d_model)
    check_positive_int("n_heads", n_heads)
    if d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) は n_heads ({n_heads}) で割り切れる必要があります")


def check_sequence(x, d_model: int) -> None:
    """x が (B, T, d_model) の浮動小数点の Tensor であることを確かめる (A-2 §6)。"""
    ok = isinstance(x, torch.Tensor) and x.ndim == 3 and x.shape[-1] == d_model
    if not ok or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"入力は (B, T, d_model) = (B, T, {d_model}) の浮動小数点の Tensor に"
                         f"してください (受け取った形: {got})")


def check_mask(mask, t_q: int, t_k: int | None = None) -> None:
    """この本のマスク (T_q, T_k) の bool、True = 参照してよい、であることを確かめる (A-2 §6)。

    クエリ T_q 個はキー T_k 個の最後の T_q 個と同じ位置とみなし (KV キャッシュのときは
    T_k = キャッシュの長さ + T_q)、各クエリが自分自身を参照できること (対角が True) を求める。
    これで、どの行にも True が 1 つはあることと、逆向きの約束のマスクの取り違えを見つける。
    ``t_k`` が None なら T_k >= T_q だけを求める。
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = f"{mask.dtype} の Tensor" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(
            f"mask は bool の Tensor (True = 参照してよい) で渡してください "
            f"(受け取ったもの: {got})。"
            "nn.Transformer.generate_square_subsequent_mask の float のマスク (−inf = 参照しない) "
            "は PyTorch の約束です。因果マスクは causal_mask(T) か "
            "torch.ones(T, T, dtype=torch.bool).tril() で作ります。")
    want = f"({t_q}, {t_k if t_k is not None else 'T_k'})"
    if mask.ndim != 2 or mask.shape[0] != t_q or mask.shape[1] < t_q or (
            t_k is not None and mask.shape[1] != t_k):
        raise ValueError(f"mask の形は (T_q, T_k) = {want} にしてください "
                         f"(受け取った形: {tuple(mask.shape)})")
    if not mask.diagonal(mask.shape[1] - t_q).all():
        raise ValueError(
            "mask で、自分自身の位置を参照できないクエリがあります (対角に False)。"
            "この本の約束は True = 参照してよい で、nn.MultiheadAttention の bool の attn_mask "
            "(True = 参照しない) とは逆です。~mask のように反転していないか確かめてください。")


def check_ids(ids, max_len: int, start_pos: int = 0) -> None:
    """ids が (B, T) の torch.long で、位置 start_pos〜start_pos+T−1 が max_len に収まるか。

    (A-2 §7 の DecoderLM が使う。)
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype != torch.long:
        is_tensor = isinstance(ids, torch.Tensor)
        got = f"{tuple(ids.shape)}, {ids.dtype}" if is_tensor else type(ids).__name__
        raise ValueError(f"ids は (B, T) の torch.long の Tensor にします (受け取ったもの: {got})")
    if isinstance(start_pos, bool) or not isinstance(start_pos, int) or start_pos < 0:
        raise ValueError(f"start_pos は 0 以上の整数にしてください (受け取った値: {start_pos!r})")
    end = start_pos + ids.shape[1]
    if end > max_len:
        raise ValueError(f"一度に読めるのは max_len = {max_len} トークンまでです "
                         f"(位置 {start_pos}〜{end - 1})")


# ---------------------------------------------------------------------------
# 図
# ---------------------------------------------------------------------------


def scatter_with_labels(ax, xy, labels: list, *, fontsize: int = 11) -> None:
    """点 xy (n, 2) の横に labels を置く。ほかの点やラベルと重なりにくい向きを 8 方向から選ぶ。

    データ座標を軸の幅で割った「見た目の距離」で、置いたラベルと全部の点からいちばん離れる
    向きを、左の点から順に貪欲に選ぶ (完全ではないが、密集したところの重なりを減らす)。
    """
    xy = [tuple(map(float, p)) for p in xy]
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    sx, sy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    dirs = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    step = 0.025                                   # ラベルを点から離す距離 (軸の幅に対する割合)
    placed: list = []
    for k in sorted(range(len(xy)), key=lambda i: xy[i]):
        x, y = xy[k]

        def crowding(d, x=x, y=y, k=k):
            cx, cy = x + d[0] * step * sx, y + d[1] * step * sy
            others = placed + [p for j, p in enumerate(xy) if j != k]
            return min((((cx - px) / sx) ** 2 + ((cy - py) / sy) ** 2 for px, py in others),
                       default=1.0)

        d = max(dirs, key=crowding)
        placed.append((x + d[0] * step * sx, y + d[1] * step * sy))
        ax.annotate(labels[k], (x, y), xytext=(d[0] * 5, d[1] * 5), textcoords="offset points",
                    fontsize=fontsize, ha={1: "left", 0: "center", -1: "right"}[d[0]],
                    va={1: "bottom", 0: "center", -1: "top"}[d[1]])
    ax.margins(0.08)                               # 端のラベルが枠からはみ出さないように


# ---------------------------------------------------------------------------
# 設定の検証 (DecoderLM と train_skipgram が使う)
# ---------------------------------------------------------------------------


def check_lm_config(vocab_size: int, d_model: int, n_layers: int, n_heads: int, max_len: int,
                    positions: str) -> None:
    """DecoderLM の大きさと positions を確かめる (A-2 §7)。"""
    for name, value in (("vocab_size", vocab_size), ("n_layers", n_layers), ("max_len", max_len)):
        check_positive_int(name, value)
    check_d_model_heads(d_model, n_heads)
    if positions not in ("learned", "sinusoidal"):
        raise ValueError(f"positions は 'learned' か 'sinusoidal' です ({positions!r})")


def check_token_stream(ids, window: int) -> None:
    """ids が 1 次元の torch.long で、前後 window の窓より長いか (A-2 §3 の skip-gram)。"""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or ids.dtype != torch.long:
        raise ValueError("ids は 1 次元の torch.long の Tensor で渡してください")
    check_positive_int("window", window)
    if len(ids) <= 2 * window:
        raise ValueError(f"ids が短すぎます ({len(ids)} 個)。窓 (前後 {window}) より長くします")
