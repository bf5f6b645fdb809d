"""採点結果 :class:`Result` (採点規則 ``grading`` とコード課題 ``codecheck`` の両方が使う)。

どちらの採点モジュールもここから ``Result`` を読むので、``grading`` と ``codecheck`` が
互いを import し合うことはない (``grading.grade`` はコード課題のときだけ ``codecheck`` を呼ぶ)。
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Result"]


@dataclass
class Result:
    """1 問の採点結果。

    status: ``correct`` / ``partial`` / ``incorrect`` / ``self_assessed`` / ``invalid`` / ``error``
    score: 0〜1 の得点 (invalid と error は 0 で、記録しない)
    message: 最初に見せる 1 行 (○/× を文字でも示す)
    details: 理由の説明 (選択肢ごとの「なぜ」など)
    explanation: 問題の解説 (バンクの ``explanation``)。:func:`~llmbook.quiz.grading.grade` が、
        記録される自動採点の結果にだけ付ける (ウィジェットも Web サイトも「解説」として表示する)
    """

    status: str
    score: float
    message: str
    details: list[str] = field(default_factory=list)
    max_score: float = 1.0
    explanation: str = ""

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    @property
    def recordable(self) -> bool:
        return self.status not in ("invalid", "error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "score": self.score, "message": self.message,
            "details": list(self.details), "explanation": self.explanation,
        }
