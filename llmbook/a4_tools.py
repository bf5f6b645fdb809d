"""A-4 (FFN と活性化関数) の裏方: 入力の検査など、章の本文で教えない部分。

章のノートブックが教えるコード (活性化関数、FFN、ゲートつき FFN) は ``llmbook/chapters/a4.py`` に
書き出される。ここには、それらが使う検査だけを置く。
"""
from __future__ import annotations

import torch

from llmbook.a2_tools import check_positive_int

__all__ = [
    "check_activation_name",
    "check_d_ff",
    "check_d_model",
    "check_ffn_input",
    "check_float_tensor",
]


def check_d_model(d_model) -> None:
    """FFN の入出力の幅 d_model が正の整数かを確かめる (A-4 §1)。"""
    check_positive_int("d_model", d_model)


def check_d_ff(d_ff) -> None:
    """FFN の中間の幅 d_ff が正の整数かを確かめる (A-4 §1)。"""
    check_positive_int("d_ff", d_ff)


def check_activation_name(name, known) -> None:
    """活性化関数の名前が知っているものかを確かめる (A-4 §2)。"""
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"活性化関数 {name!r} は知りません。使えるのは {', '.join(known)} です")


def check_float_tensor(x, name: str = "x") -> None:
    """x が浮動小数点の Tensor かを確かめる (活性化関数の入力)。"""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"{x.dtype} の Tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} は浮動小数点の Tensor で渡してください (受け取ったもの: {got})")


def check_ffn_input(x, d_model: int) -> None:
    """FFN の入力が (..., d_model) の浮動小数点の Tensor かを確かめる (A-4 §1)。"""
    check_float_tensor(x)
    if x.ndim < 1 or x.shape[-1] != d_model:
        raise ValueError(f"FFN の入力の最後の次元は d_model = {d_model} にしてください "
                         f"(受け取った形: {tuple(x.shape)})")
