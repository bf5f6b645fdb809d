"""表の表示 (A-1 §1 で導入し、どの章でも使う共通部品)。

ノートブックの出力の Markdown の表は、この本の Web サイトでは表として描かれない
(出力は CommonMark として扱われる) ので、表は HTML で出す。中身は必ずエスケープする。
"""
from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["table_html", "show_table"]


def table_html(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """見出しと行から HTML の表を作る (値は文字列にしてエスケープする)。"""
    cell = lambda tag, x: f"<{tag}>{html.escape(str(x))}</{tag}>"  # noqa: E731
    head = "".join(cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def show_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> None:
    """表を表示する。Jupyter・Colab・Web サイトで同じ表になる。"""
    from IPython.display import HTML, display

    display(HTML(table_html(header, rows)))
