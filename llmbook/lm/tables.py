"""パープレキシティの表 (A-1 §10 で導入し、後の章が行を足す)。

データ (``add`` で足し、``table["5-gram"].val_ppl`` で読む) と表示 (テキスト・Markdown・
HTML・横棒グラフ) を 1 つにまとめる。A-1 の表の中身を作る ``build_a1_table`` と、それを
最初から計算し直す ``a1_baselines`` は ``llmbook.chapters.a1`` にある。
"""
from __future__ import annotations

import copy
import html
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from .validation import check_ppl

__all__ = ["PerplexityRow", "PerplexityTable"]


@dataclass(frozen=True)
class PerplexityRow:
    """パープレキシティの表の 1 行 (A-1 §10 で導入)。"""

    model: str
    val_ppl: float
    train_ppl: float | None = None
    params: int | None = None
    context: str = ""
    chapter: str = "A-1"
    note: str = ""


def _width(s: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in s)   # 全角は 2 桁


class PerplexityTable:
    """モデル名をキーにした、検証用パープレキシティの表 (A-1 §10 で導入。A-5 が行を足す)。

    ``add`` で行を足し、``table["5-gram"].val_ppl`` のように読む。ノートブックでは HTML の
    表として、``print`` ではテキストの表として表示される。``plot`` で横棒グラフを描く。
    """

    HEADER = ("モデル", "検証用 PPL", "訓練用 PPL", "パラメータ数", "見える文脈", "章")

    def __init__(self, title: str = "検証用テキストでのパープレキシティ (文字単位、低いほど良い)"):
        self.title = title
        self._rows: dict[str, PerplexityRow] = {}

    def add(self, model: str, val_ppl: float, *, train_ppl: float | None = None,
            params: int | None = None, context: str = "", chapter: str = "A-1", note: str = "",
            replace: bool = False) -> PerplexityRow:
        """1 行を足して返す。同じモデル名がすでにあれば、replace=True のときだけ置き換える。"""
        if not isinstance(model, str) or not model.strip():
            raise ValueError("モデル名は空でない文字列にしてください。")
        val = check_ppl("val_ppl", val_ppl)
        train = None if train_ppl is None else check_ppl("train_ppl", train_ppl)
        if model in self._rows and not replace:
            raise ValueError(f"モデル {model!r} の行はすでにあります "
                             "(置き換えるなら replace=True)。")
        row = PerplexityRow(model, val, train, None if params is None else int(params), context,
                            chapter, note)
        self._rows[model] = row
        return row

    def __getitem__(self, model: str) -> PerplexityRow:
        if model not in self._rows:
            raise KeyError(f"表にモデル {model!r} はありません (あるもの: {', '.join(self._rows)})")
        return self._rows[model]

    def __contains__(self, model: object) -> bool:
        return model in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[PerplexityRow]:
        return iter(self._rows.values())

    def models(self) -> list[str]:
        """モデル名のリスト (足した順)。"""
        return list(self._rows)

    def best(self) -> PerplexityRow:
        """検証用パープレキシティがいちばん低い行。"""
        return min(self._rows.values(), key=lambda r: r.val_ppl)

    def as_dict(self) -> dict[str, dict[str, object]]:
        """{モデル名: {列名: 値}} の辞書。"""
        return {r.model: asdict(r) for r in self}

    def copy(self) -> PerplexityTable:
        """独立した複製 (行を足しても元の表は変わらない)。"""
        return copy.deepcopy(self)

    # --- 表示 -------------------------------------------------------------
    def _cells(self, r: PerplexityRow) -> tuple[str, ...]:
        return (r.model, f"{r.val_ppl:.3f}", "—" if r.train_ppl is None else f"{r.train_ppl:.3f}",
                "—" if r.params is None else f"{r.params:,}", r.context or "—", r.chapter)

    def to_text(self) -> str:
        """固定幅のテキストの表。"""
        rows = [self.HEADER] + [self._cells(r) for r in self]
        cols = [max(_width(row[i]) for row in rows) for i in range(len(self.HEADER))]
        lines = [self.title]
        for j, row in enumerate(rows):
            lines.append("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, cols)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in cols))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown の表。"""
        lines = ["| " + " | ".join(self.HEADER) + " |", "|" + "---|" * len(self.HEADER)]
        lines += ["| " + " | ".join(self._cells(r)) + " |" for r in self]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from llmbook.display import table_html

        rows = [self._cells(r) for r in self]
        title = f"<div><strong>{html.escape(self.title)}</strong></div>"
        return title + table_html(self.HEADER, rows)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"PerplexityTable({len(self)} 行: {', '.join(self._rows)})"

    def plot(self, ax=None):
        """検証用パープレキシティの横棒グラフ (線形目盛、大きすぎる棒は端で切る) を返す。"""
        from .plots import plot_perplexity_table

        return plot_perplexity_table(self, ax=ax)
