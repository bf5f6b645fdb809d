"""表の表示 (A-1 §1 で導入し、どの章でも使う共通部品)。

ノートブックの出力の Markdown の表は、この本の Web サイトでは表として描かれない
(出力は CommonMark として扱われる) ので、表は HTML で出す。中身は必ずエスケープする。

表は横スクロールの枠 (``<div class="llmbook-table">``) に入れる: 幅 390 px の画面でも列を
押しつぶさず、はみ出す分だけ横にスクロールする。数のセル (``class="num"``) は折り返さず右に
そろえる。見た目は Web サイトでは ``llmbook/site_static/book.css``、JupyterLab や Colab では
最小限のインラインの style で決まる。
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

__all__ = ["is_number", "show_table", "table_html"]

_NUMBER_RE = re.compile(
    r"^[+\-−]?(\d[\d,]*(\.\d+)?|\.\d+)([eE][+\-−]?\d+)?\s*(%|倍|桁|字|秒|ms|s)?$")
_WRAP_STYLE = "overflow-x:auto;max-width:100%"
_NUM_STYLE = "white-space:nowrap;text-align:right"


def is_number(value: object) -> bool:
    """表のセルの値が数 (``3``、``1.25``、``"1,234"``、``"45%"``、``"1e-3"`` など) か。"""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and bool(_NUMBER_RE.match(value.strip()))


def _td(value: object) -> str:
    text = html.escape(str(value))
    if is_number(value):
        return f'<td class="num" style="{_NUM_STYLE}">{text}</td>'
    return f"<td>{text}</td>"


def table_html(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """見出しと行から HTML の表を作る (値は文字列にしてエスケープする)。

    表は横スクロールの枠に入り、数のセルには ``class="num"`` が付く (折り返さない)。
    """
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows)
    return (f'<div class="llmbook-table" style="{_WRAP_STYLE}">'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def show_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> None:
    """表を表示する。Jupyter・Colab・Web サイトで同じ表になる。"""
    from IPython.display import HTML, display

    display(HTML(table_html(header, rows)))
