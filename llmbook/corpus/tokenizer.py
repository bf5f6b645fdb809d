"""文字単位のトークナイザ (A-1 §3「文字トークナイザ」で導入)。"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CharTokenizer"]


class CharTokenizer:
    """文字単位のトークナイザ (A-1 §3「文字トークナイザ」で導入)。

    与えたテキストに現れる文字を Unicode のコードポイント順に並べ、1 から順に
    番号 (id) を振る。**id 0 は未知文字のために予約**してあり、作るときに
    見なかった文字はすべて 0 になる (``decode`` では ``unk_char`` = ``"\\ufffd"`` に戻る)。
    同じテキストからは、いつも同じ対応表ができる。
    """

    unk_id: int = 0
    unk_char: str = "\ufffd"

    def __init__(self, text: str) -> None:
        chars = sorted(set(text) - {self.unk_char})
        self.itos: list[str] = [self.unk_char] + chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        """語彙の大きさ (未知文字の id 0 を含む)。"""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """文字列を id の列にする (知らない文字は 0)。"""
        get = self.stoi.get
        return [get(c, 0) for c in text]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """id の列を文字列に戻す (範囲外の id も未知文字として扱う)。"""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        n = len(self.itos)
        return "".join(self.itos[i] if 0 <= i < n else self.unk_char for i in ids)

    def encode_tensor(self, text: str) -> torch.Tensor:
        """文字列を ``torch.long`` の 1 次元テンソルにする。"""
        return torch.tensor(self.encode(text), dtype=torch.long)
