"""日本語の文章の体裁: 段落の途中の改行は、HTML では日本語の文の間に余計な空白として表示される。

Markdown の段落は 1 行に書く (箇条書き・表・数式・コードは除く)。
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT

CJK_END = r"[\u3040-\u30ff\u3400-\u9fff、。」）)]"
CJK_START = r"\s*[\u3040-\u30ff\u3400-\u9fff(（「A-Za-z$`]"
SYNTAX = re.compile(r"\s*([-*>|#]|\d+\.|\$\$|```|:::)")


def soft_breaks(text: str) -> list[str]:
    found, infence = [], False
    lines = text.split("\n")
    for a, b in zip(lines, lines[1:]):
        if a.strip().startswith("```"):
            infence = not infence
        if infence or not a.strip() or not b.strip() or SYNTAX.match(b) \
                or a.strip().startswith(("|", "$$", "#", "```")):
            continue
        if re.search(CJK_END + "$", a.rstrip()) and re.match(CJK_START, b):
            found.append(f"…{a[-15:]}⏎{b[:15]}…")
    return found


def _documents():
    yield "intro.md", (ROOT / "intro.md").read_text(encoding="utf-8")
    for name in ("README.md", "CONTRIBUTING.md", "glossary.md"):
        yield name, (ROOT / name).read_text(encoding="utf-8")
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for i, c in enumerate(cells):
            if c["cell_type"] == "markdown":
                src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                yield f"{nb.name} セル {i}", src


@pytest.mark.parametrize("where, text", list(_documents()))
def test_no_soft_line_breaks_inside_japanese_paragraphs(where, text):
    assert not soft_breaks(text), (where, soft_breaks(text))


def test_detector_finds_a_break():
    assert soft_breaks("これは文です。\n次の文です。")
    assert not soft_breaks("- 項目です。\n- 次の項目です。")
