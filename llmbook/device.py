"""計算に使うデバイスを選ぶ (序章「この本の読み方」で紹介する共通部品)。"""
from __future__ import annotations

import torch

__all__ = ["get_device", "describe_device"]


def get_device(verbose: bool = True) -> torch.device:
    """cuda → mps → cpu の順に、使えるデバイスを 1 つ選んで返す。

    どのノートブックもこの関数だけを使ってデバイスを決める。``verbose`` が真なら、
    選んだデバイスを日本語で 1 行表示する (GPU の名前も分かる範囲で)。
    """
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(f"使用デバイス: {describe_device(device)}")
    return device


def describe_device(device: torch.device) -> str:
    """デバイスを人が読める文字列にする (例: ``cuda (NVIDIA H200)``)。"""
    if device.type == "cuda":
        try:
            return f"cuda ({torch.cuda.get_device_name(device)})"
        except Exception:  # pragma: no cover - ドライバ次第
            return "cuda"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return "cpu (GPU なし)"
