"""表の表示 (A-1 §1 で導入し、どの章でも使う共通部品)。

ノートブックの出力の Markdown の表は、この本の Web サイトでは表として描かれない
(出力は CommonMark として扱われる) ので、表は HTML で出す。中身は必ずエスケープする。

表は横スクロールの枠 (``<div class="llmbook-table">``) に入れる: 幅 390 px の画面でも列を
押しつぶさず、はみ出す分だけ横にスクロールする。数のセル (``class="num"``) は折り返さず右に
そろえる。見た目は Web サイトでは ``llmbook/site_static/book.css``、JupyterLab や Colab では
最小限のインラインの style で決まる。枠は ``tabindex="0"`` でキーボードからもフォーカスでき、
矢印キーで横にスクロールできる (axe-core の scrollable-region-focusable)。
"""
from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Sequence

__all__ = ["is_number", "show_table", "table_html", "ProgressBar"]

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
    return (f'<div class="llmbook-table" style="{_WRAP_STYLE}" tabindex="0">'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def show_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> None:
    """表を表示する。Jupyter・Colab・Web サイトで同じ表になる。"""
    from IPython.display import HTML, display

    display(HTML(table_html(header, rows)))


class ProgressBar:
    """ノートブックの進捗バー (A-5 の訓練で使う)。

    1 つの出力を ``display_id`` で書き換えるだけなので、実行し終えたノートブック (と Web サイト)
    には最後の状態の 1 行だけが残る。IPython の外 (スクリプト) では何も表示せず、``close`` で
    最後の 1 行だけを print する。``update(step, loss)`` は 0.25 秒に 1 回だけ描き直す。
    """

    def __init__(self, total: int, label: str = "訓練", min_interval: float = 0.25):
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"ProgressBar の total は 1 以上の整数にしてください (受け取った値: "
                             f"{total!r})")
        self.total, self.label, self.min_interval = total, str(label), min_interval
        self.step, self.loss = 0, None
        self.t0 = self.last = time.perf_counter()
        self.handle = None
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display
            if get_ipython() is not None:
                self.handle = display(HTML(self._html()), display_id=True)
        except ImportError:                                  # IPython のない環境
            pass

    def text(self) -> str:
        """いまの状態の 1 行 (例: 「マスクあり: 200/200 ステップ、損失 2.358、11.2 秒」)。"""
        loss = "" if self.loss is None else f"、損失 {self.loss:.3f}"
        return (f"{self.label}: {self.step}/{self.total} ステップ{loss}、"
                f"{time.perf_counter() - self.t0:.1f} 秒")

    def _html(self) -> str:
        label = html.escape(self.label)
        return (f'<div class="llmbook-progress"><progress value="{self.step}" max="{self.total}" '
                f'aria-label="{label} の進み具合"></progress> '
                f"<span>{html.escape(self.text())}</span></div>")

    def update(self, step: int, loss: float | None = None) -> None:
        self.step, self.loss = step, loss
        now = time.perf_counter()
        if self.handle is not None and (now - self.last >= self.min_interval
                                        or step >= self.total):
            from IPython.display import HTML
            self.handle.update(HTML(self._html()))
            self.last = now

    def close(self) -> None:
        """最後の状態を描く (IPython の外では 1 行を print する)。"""
        if self.handle is not None:
            from IPython.display import HTML
            self.handle.update(HTML(self._html()))
        else:
            print(self.text())

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
