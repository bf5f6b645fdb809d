"""計算に使うデバイスを選ぶ (序章「この本の読み方」で紹介する共通部品)。

この本の方針:

- **CUDA (NVIDIA の GPU) があれば CUDA**、なければ **CPU**。どの章の実験も CPU だけで
  1 分ほどで終わる大きさなので、GPU がなくても困らない。
- **Apple の GPU (MPS) は、読者が選んだときだけ使う。** PyTorch の MPS バックエンドには、
  エラーも警告も出さずに違う数値を返す不具合が繰り返し報告されている。例えば
  PyTorch の issue #92615 (LSTM の訓練結果が CPU や CUDA より大きく悪い) と #123151
  (同じモデルが MPS でだけ意味のない文章を生成する)、LLMs-from-scratch の #791
  (同じノートブックの損失が CPU では約 3.8、MPS では約 19.9) と #1020。この本は本文の数値を
  ``assert`` で確かめるので、MPS ではそれが失敗したり、本文と合わない数値が出たりしうる。
  MPS が使える Mac でも既定では CPU を選び、そのことを 1 行で知らせる。
- 環境変数 ``LLMBOOK_DEVICE`` で選び方を変えられる: ``mps`` (MPS を使う)、``cpu``
  (GPU があっても CPU)、``cuda`` (CUDA を必ず使う)、``auto`` または空 (上の既定の方針)。
  使えないデバイスを指定したときは、理由を書いた ``ValueError`` になる。

どのノートブックも :func:`get_device` だけでデバイスを決める。
"""
from __future__ import annotations

import os

import torch

__all__ = ["ENV_VAR", "describe_device", "get_device", "mps_available"]

#: デバイスの選び方を変える環境変数の名前
ENV_VAR = "LLMBOOK_DEVICE"
_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    """Apple の GPU (MPS) がこの環境で使えるか (PyTorch の版が古くて MPS がなければ False)。"""
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def _requested() -> str:
    raw = os.environ.get(ENV_VAR, "")
    choice = raw.strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(
            f"環境変数 {ENV_VAR} の値 {raw!r} は使えません。"
            f"{', '.join(_CHOICES)} のどれかにするか、変数を消してください。"
        )
    return choice


def get_device(verbose: bool = True) -> torch.device:
    """この本の方針 (モジュールの説明を参照) でデバイスを 1 つ選んで返す。

    既定では CUDA があれば CUDA、なければ CPU。Apple の GPU (MPS) は環境変数
    ``LLMBOOK_DEVICE=mps`` で選んだときだけ使う (静かに違う数値を返す不具合が報告されて
    いるため)。``verbose`` が真なら、選んだデバイスを日本語で 1 行表示する
    (GPU の名前も分かる範囲で。MPS を使わなかったときはその理由と使い方も)。
    """
    choice = _requested()
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{ENV_VAR}=cuda ですが、この環境では CUDA (NVIDIA の GPU) が使えません。")
    if choice == "mps" and not mps_available():
        raise ValueError(f"{ENV_VAR}=mps ですが、この環境では Apple の GPU (MPS) が使えません。")
    if choice in ("cpu", "mps"):
        device = torch.device(choice)
    else:  # auto か cuda
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if verbose:
        note = ""
        if choice == "auto" and device.type == "cpu" and mps_available():
            note = (f" (Apple の GPU (MPS) は、数値が CPU と合わない不具合が報告されているため"
                    f"既定では使いません。使うときは環境変数 {ENV_VAR}=mps)")
        print(f"使用デバイス: {describe_device(device)}{note}")
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
    if device.type == "cpu" and not torch.cuda.is_available() and not mps_available():
        return "cpu (GPU なし)"
    return str(device)
