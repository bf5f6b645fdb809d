"""乱数の種をそろえる (序章「この本の読み方」で紹介する共通部品)。"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["set_seed"]


def set_seed(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Python・NumPy・PyTorch の乱数をまとめて ``seed`` で初期化する。

    ``deterministic`` が真で CUDA があれば、PyTorch に決定的なアルゴリズムを使うよう頼む
    (同じデバイスなら 2 回の実行で同じ数値が出る)。CPU だけのときは頼まない: この本の演算は
    CPU では決定的で、頼むと初回に torch._inductor の読み込みで 2〜3 秒かかるため。
    戻り値は、この seed で初期化した CPU 用の ``torch.Generator`` (データの並べ替えなどに使う)。
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed には整数を渡してください (受け取った値: {seed!r})")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
