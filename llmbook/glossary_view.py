"""用語集をノートブックで読める形に描く (A-6 §1 で使う)。

用語集の元データは ``llmbook/data/glossary.yaml`` の 1 か所だけにある。Web サイトの
用語集ページ (本文の ``{term}`` リンクの行き先、Sphinx の glossary) は書き出しのときに
同じ YAML から作られる。このモジュールは同じ YAML を、JupyterLab・Colab・Web サイトの
どこでも読める HTML にする:

- 分類ごとの見出し、日本語名と英語名、定義、別名、主に扱う章 (公開済みの章だけリンク)
- 中身はすべて HTML としてエスケープする (定義に ``<`` などがあってもページは壊れない)
- 色は周りの文字色を引き継ぎ、線と背景は半透明の灰色にする (明るいテーマでも暗いテーマでも読める)
- 表は使わず、幅が足りなければ 1 列に並ぶカードにする (幅 390 px のスマートフォンでも読める)

1 つの出力に 2 つの形を持たせる (クイズと同じ考え方): カーネルでは ipywidgets の HTML
(章へのリンクはノートブック ``.ipynb``)、Web サイトでは ``text/html`` (リンクは ``.html``)。
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from .book import chapter_links

__all__ = ["GlossaryDisplay", "glossary_html", "glossary_text", "show_glossary"]

_REQUIRED = ("id", "ja", "en", "category", "chapter", "definition")
_LINK_SUFFIX = {"site": ".html", "notebook": ".ipynb"}

_STYLE = """
.llmbook-glossary{color:inherit;line-height:1.65;max-width:100%;overflow-wrap:anywhere}
.llmbook-glossary .lg-cat{font-weight:700;font-size:1.1em;margin:1.1em 0 .4em;
 padding-bottom:.2em;border-bottom:1px solid rgba(128,128,128,.45)}
.llmbook-glossary .lg-grid{display:grid;gap:.6em;
 grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr))}
.llmbook-glossary .lg-term{border:1px solid rgba(128,128,128,.35);border-left:4px solid #0072B2;
 border-radius:4px;padding:.5em .75em;background:rgba(128,128,128,.07);min-width:0}
.llmbook-glossary .lg-name{margin:0 0 .25em}
.llmbook-glossary .lg-ja{font-weight:700;font-size:1.05em}
.llmbook-glossary .lg-en{opacity:.8;margin-left:.4em}
.llmbook-glossary .lg-def{margin:0 0 .3em}
.llmbook-glossary .lg-meta{margin:0;font-size:.88em;opacity:.85}
.llmbook-glossary a{color:inherit;text-decoration:underline}
""".strip()


def _check_terms(terms: Any) -> list[dict[str, Any]]:
    if not isinstance(terms, (list, tuple)):
        raise TypeError("terms には用語 (辞書) のリストを渡してください。"
                        f"受け取った型: {type(terms).__name__}")
    if not terms:
        raise ValueError("terms が空です。用語を 1 つ以上渡してください")
    for i, t in enumerate(terms):
        if not isinstance(t, dict):
            raise TypeError(f"terms[{i}] は辞書にしてください (受け取った型: {type(t).__name__})")
        missing = [k for k in _REQUIRED if not isinstance(t.get(k), str) or not t.get(k)]
        if missing:
            raise ValueError(f"terms[{i}] に文字列のフィールド {', '.join(missing)} がありません")
        if not isinstance(t.get("aliases", []), (list, tuple)):
            raise TypeError(f"terms[{i}] の aliases は文字列のリストにしてください")
    return list(terms)


def _load(terms: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if terms is None:
        from .quiz.bank import load_glossary

        terms = load_glossary()
    return _check_terms(terms)


def _chapters_html(ref: str, suffix: str) -> str:
    """「A-2・A-5」を、公開済みの章だけリンクにした HTML にする (未公開の章は「準備中」)。"""
    target = ' target="_blank"' if suffix == ".ipynb" else ""
    parts = [f'<a href="{html.escape(stem + suffix)}"{target}>{html.escape(label)}</a>' if stem
             else f"{html.escape(label)} (準備中)" for label, stem in chapter_links(ref)]
    return "・".join(parts) or html.escape(ref)


def _term_html(t: dict[str, Any], suffix: str) -> str:
    esc = html.escape
    aliases = "、".join(esc(str(a)) for a in t.get("aliases", []))
    alias_line = f'<p class="lg-meta">別名: {aliases}</p>' if aliases else ""
    return (f'<div class="lg-term" id="llmbook-glossary-{esc(t["id"])}">'
            f'<p class="lg-name"><span class="lg-ja" lang="ja">{esc(t["ja"])}</span>'
            f'<span class="lg-en" lang="en">{esc(t["en"])}</span></p>'
            f'<p class="lg-def">{esc(t["definition"])}</p>{alias_line}'
            f'<p class="lg-meta">主に扱う章: {_chapters_html(t["chapter"], suffix)}</p></div>')


def glossary_html(terms: Sequence[dict[str, Any]] | None = None, *, target: str = "site") -> str:
    """用語集を自己完結した HTML (``<style>`` つき) にする。

    ``terms`` を省くと ``llmbook/data/glossary.yaml`` を読む。``target`` は章へのリンクの行き先で、
    ``"site"`` なら Web サイトの ``.html``、``"notebook"`` なら同じフォルダの
    ノートブック ``.ipynb``。
    """
    if target not in _LINK_SUFFIX:
        raise ValueError(f"target は 'site' か 'notebook' にしてください。受け取った値: {target!r}")
    items = _load(terms)
    suffix = _LINK_SUFFIX[target]
    categories: list[str] = []
    for t in items:
        if t["category"] not in categories:
            categories.append(t["category"])
    body = []
    for cat in categories:
        cards = "".join(_term_html(t, suffix) for t in items if t["category"] == cat)
        body.append(f'<div class="lg-cat" role="heading" aria-level="3">{html.escape(cat)}</div>'
                    f'<div class="lg-grid">{cards}</div>')
    return (f'<div class="llmbook-glossary" lang="ja"><style>{_STYLE}</style>'
            f'{"".join(body)}</div>')


def glossary_text(terms: Sequence[dict[str, Any]] | None = None) -> str:
    """HTML を表示できない環境 (端末など) 向けの、用語の一覧の文字列。"""
    items = _load(terms)
    lines = [f"用語集 ({len(items)} 語)"]
    lines += [f"- {t['ja']} ({t['en']}): {t['definition']}" for t in items]
    return "\n".join(lines)


class GlossaryDisplay:
    """用語集の表示オブジェクト。カーネルではウィジェット、Web サイトでは HTML として描かれる。"""

    def __init__(self, terms: Sequence[dict[str, Any]] | None = None):
        self.terms = _load(terms)

    def _repr_html_(self) -> str:
        return glossary_html(self.terms, target="site")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        try:
            import ipywidgets

            widget = ipywidgets.HTML(value=glossary_html(self.terms, target="notebook"),
                                    layout=ipywidgets.Layout(width="100%"))
            bundle.update(widget._repr_mimebundle_() or {})
        except ImportError:  # pragma: no cover - ipywidgets がない環境では HTML だけ
            pass
        bundle["text/html"] = glossary_html(self.terms, target="site")
        bundle["text/plain"] = glossary_text(self.terms)
        return bundle


def show_glossary(terms: Sequence[dict[str, Any]] | None = None) -> GlossaryDisplay:
    """用語集を表示する (セルの最後の式にする)。``terms`` を省くと本の用語集 20 語。"""
    return GlossaryDisplay(terms)
