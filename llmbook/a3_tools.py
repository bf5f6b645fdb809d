"""A-3 (マルチヘッドアテンション) の裏方: 入力の検査など、章の本文で教えない部分。

章のノートブックが教えるコード (アテンションの関数、ヘッドの分割、MultiHeadAttention) は
``llmbook/chapters/a3.py`` に書き出される。ここには、それらが使う検査だけを置く。
"""
from __future__ import annotations

import torch

from llmbook.a2_tools import check_d_model_heads

__all__ = ["check_qkv", "check_attn_mask", "check_heads_tensor", "check_split_input"]


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"形 {tuple(x.shape)}、{x.dtype} の Tensor"
    return type(x).__name__


def check_qkv(q, k, v) -> None:
    """q (..., T_q, d_k)、k (..., T_k, d_k)、v (..., T_k, d_v) の形と型を確かめる (A-3 §1)。"""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 2:
            raise TypeError(f"{name} は 2 次元以上の浮動小数点の Tensor (..., T, d) で"
                            "渡してください "
                            f"(受け取ったもの: {_describe(t)})")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q と k の最後の次元 (d_k) をそろえてください。内積を取るためです "
                         f"(q: {tuple(q.shape)}、k: {tuple(k.shape)})")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k と v のトークン数 (後ろから 2 番目の次元 T_k) をそろえてください。"
                         "キー 1 つに値 1 つが対応します "
                         f"(k: {tuple(k.shape)}、v: {tuple(v.shape)})")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        shapes = f"q: {tuple(q.shape)}、k: {tuple(k.shape)}、v: {tuple(v.shape)}"
        raise ValueError(
            f"q・k・v の前の次元 (バッチやヘッド) がそろっていません ({shapes})") from None
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        raise ValueError("トークンが 0 個です。T_q と T_k は 1 以上にしてください")


def check_attn_mask(mask, t_q: int, t_k: int) -> None:
    """mask が bool (True = 参照してよい) の (..., T_q, T_k) で、どの行にも True があるか。"""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(
            "mask は bool の Tensor (True = 参照してよい) で渡してください "
            f"(受け取ったもの: {_describe(mask)})。−inf を並べた float のマスクは PyTorch の"
            "約束です。因果マスクは causal_mask(T) で作れます")
    if mask.ndim < 2 or mask.shape[-2] not in (1, t_q) or mask.shape[-1] != t_k:
        raise ValueError(f"mask の最後の 2 つの次元は (T_q, T_k) = ({t_q}, {t_k}) にしてください "
                         f"(受け取った形: {tuple(mask.shape)})")
    if not mask.any(-1).all():
        raise ValueError(
            "mask に、すべて False の行があります。参照できるキーが 1 つもないクエリは、"
            "ソフトマックスが 0/0 になり NaN を出します。この本の約束は True = 参照してよい で、"
            "nn.MultiheadAttention の bool の attn_mask (True = 参照しない) とは逆です")


def check_heads_tensor(x, name: str = "x") -> None:
    """ヘッドに分けた Tensor (B, h, T, d_k) であることを確かめる (A-3 §2)。"""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"{name} はヘッドに分けた (B, h, T, d_k) の 4 次元 Tensor で"
                         "渡してください "
                         f"(受け取ったもの: {_describe(x)})")


def check_split_input(x, n_heads: int) -> None:
    """split_heads の入力が (B, T, d) の浮動小数点の Tensor で d が h で割り切れるか (A-3 §2)。"""
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or not x.is_floating_point():
        raise ValueError(f"x は (B, T, d) の 3 次元の浮動小数点の Tensor で渡してください "
                         f"(受け取ったもの: {_describe(x)})")
    check_d_model_heads(x.shape[-1], n_heads)
