"""A-6 (用語集と確認問題) の章と、用語集の HTML 表示 (llmbook.glossary_view) のテスト。

章の形 (出力なし・セルの長さ・クイズ id など) の共通の検査は、全章に共通のテストが受け持つ。
ここでは A-6 に固有のこと (用語集の表示、assert の日本語メッセージ、誤解の訂正) を確かめる。
"""
from __future__ import annotations

import ast
import html
import json
import re

import pytest

from conftest import ROOT
from llmbook.book import CHAPTERS
from llmbook.glossary_view import GlossaryDisplay, glossary_html, glossary_text, show_glossary
from llmbook.quiz import load_glossary

NB = ROOT / "chapters" / "a6_glossary_review.ipynb"
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _cells():
    cells = json.loads(NB.read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", []))
            for c in cells]


def _term(**kw):
    base = {"id": "t", "ja": "用語", "en": "Term", "category": "分類", "chapter": "A-1",
            "definition": "説明です。", "aliases": []}
    return {**base, **kw}


# ---------------------------------------------------------------- 用語集の HTML


def test_every_glossary_term_is_rendered_in_yaml_order():
    terms = load_glossary()
    assert len(terms) == 20
    page = glossary_html()
    positions = []
    for t in terms:
        for field in ("ja", "en", "definition"):
            assert glossary_html([t]).count(html.escape(t[field])) >= 1, (t["id"], field)
        positions.append(page.index(f'id="llmbook-glossary-{t["id"]}"'))
    assert positions == sorted(positions)  # YAML の順に並ぶ
    assert page.count('class="lg-term"') == 20
    categories = list(dict.fromkeys(t["category"] for t in terms))
    assert page.count('role="heading"') == len(categories)


def test_everything_is_html_escaped():
    evil = _term(ja="<b>太字</b>", en='"quoted" & <i>',
                 definition="<script>alert(1)</script> a < b",
                 aliases=["<img src=x onerror=alert(1)>"], category="<h1>分類</h1>")
    out = glossary_html([evil])
    for raw in ("<script>", "<b>", "<img", "<h1>", "<i>"):
        assert raw not in out, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a &lt; b" in out
    assert "&quot;quoted&quot; &amp; &lt;i&gt;" in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out


def test_chapter_links_only_to_published_chapters(monkeypatch):
    import llmbook.book

    monkeypatch.setattr(llmbook.book, "PUBLISHED", ("A-1",))   # A-3 はまだ公開していない扱い
    site = glossary_html([_term(chapter="A-1・A-3")])
    stem = CHAPTERS["A-1"][0]
    assert f'href="{stem}.html"' in site and ".ipynb" not in site
    assert "A-3 (準備中)" in site and "a3_" not in site
    notebook = glossary_html([_term(chapter="A-1・A-3")], target="notebook")
    assert f'href="{stem}.ipynb"' in notebook and f"{stem}.html" not in notebook


def test_aliases_shown_and_omitted_when_empty():
    assert "別名: LM、言語の模型" in glossary_html([_term(aliases=["LM", "言語の模型"])])
    assert "別名" not in glossary_html([_term(aliases=[])])


def test_quiz_only_spellings_are_not_shown_as_aliases():
    """accept (クイズで正解にするだけの表記ゆれ) は、用語集の「別名」に出さない。"""
    page = glossary_html()
    site_page = (ROOT / "glossary.md").read_text(encoding="utf-8")
    for t in load_glossary():
        for spelling in t["accept"]:
            assert f"、{html.escape(spelling)}<" not in page and f" {spelling}<" not in page
            assert f"、{spelling}。" not in site_page and f": {spelling}。" not in site_page
    assert "げんごもでる" not in page and "げんごもでる" not in site_page
    assert "別名: LM<" in page and "別名: LM。" in site_page


def test_style_follows_the_theme_and_fits_a_phone():
    style = re.search(r"<style>(.*?)</style>", glossary_html(), re.S).group(1)
    # 文字色は周りのテーマから引き継ぐ (明るい・暗いテーマのどちらでも読める)
    assert set(re.findall(r"(?<![-\w])color:([^;}]+)", style)) == {"inherit"}
    assert "background:rgba(" in style  # 背景は半透明 (どちらのテーマでも薄く見える)
    # 390 px の画面に収まらない固定幅を使わない
    widths = [int(w) for w in re.findall(r"width:(\d+)px", style)]
    assert all(w <= 390 for w in widths)
    assert "min(100%" in style and "<table" not in glossary_html()


@pytest.mark.parametrize("bad, exc", [
    ("用語", TypeError),
    ([], ValueError),
    (["用語"], TypeError),
    ([{"id": "x", "ja": "用語"}], ValueError),
    ([_term(aliases="LM")], TypeError),
])
def test_bad_terms_get_a_japanese_message(bad, exc):
    with pytest.raises(exc) as info:
        glossary_html(bad)
    assert JAPANESE.search(str(info.value))


def test_bad_target_gets_a_japanese_message():
    with pytest.raises(ValueError, match="site"):
        glossary_html([_term()], target="pdf")


def test_display_has_widget_site_html_and_plain_text():
    display = show_glossary()
    assert isinstance(display, GlossaryDisplay)
    bundle = display._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab・Colab
    assert bundle["text/html"] == glossary_html(target="site")    # Web サイト
    assert bundle["text/plain"].startswith("用語集 (20 語)")
    assert display._repr_html_() == bundle["text/html"]
    assert glossary_text().count("\n- ") == 20


# ---------------------------------------------------------------- 章のノートブック


def test_glossary_is_a_rendered_cell_not_a_sphinx_directive():
    cells = _cells()
    assert not any("```{glossary}" in src for _, src, _ in cells)
    shown = [(kind, tags) for kind, src, tags in cells if "show_glossary()" in src]
    assert shown == [("code", ["remove-input"])]
    prose = "\n".join(src for kind, src, _ in cells if kind == "markdown")
    # Web サイトの用語集ページ ({term} リンクの行き先) へ案内する
    assert "](../glossary.md)" in prose


def test_every_assert_has_a_japanese_message():
    for kind, src, _ in _cells():
        if kind != "code":
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Assert):
                msg = node.msg
                ok = isinstance(msg, ast.Constant) and JAPANESE.search(str(msg.value))
                assert ok, ast.unparse(node)


def test_code_cells_are_short_and_experiments_stay_on_the_cpu():
    for kind, src, _ in _cells():
        if kind == "code":
            assert len(src.splitlines()) <= 40, src[:60]
            assert "get_device" not in src and ".cuda(" not in src and "mps" not in src


def test_misconceptions_are_named_near_their_questions():
    cells = _cells()
    prose = "\n".join(src for kind, src, _ in cells if kind == "markdown")
    assert prose.count("よくある誤解") >= 4
    for needle in ("時間方向", "同変", "ReZero", "Fixup", "T-Fixup", "LSTM でも", "Kaplan",
                   "固定長のボトルネック", "Bahdanau", "経路の長さが 1"):
        assert needle in prose, needle


def test_book_vocabulary_in_the_prose():
    prose = "\n".join(src for kind, src, _ in _cells() if kind == "markdown")
    for wrong in ("層正規化", "セルフアテンション", "手書きの規則", "passage", "注意マップ"):
        assert wrong not in prose.replace("レイヤー正規化", ""), wrong
    assert prose.count("注意機構") <= 1  # アテンションの言い換えとして 1 度だけ
