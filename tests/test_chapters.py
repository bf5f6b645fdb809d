"""どの章にも同じ形を求めるテスト: ``_toc.yml`` に載せた章は、書くだけでこのテストを受ける。

- ノートブックに出力を保存しない (ビルドのたびに実行する)
- 各セルの source は行ごとのリスト (git の差分が行単位になる)
- 先頭は ``python -m llmbook.export`` が作る Colab 用セル
- 節には番号を振る (``## 1. …``、``## 2. …``)
- 「まとめ」の節があり、章末クイズはその後ろ (復習の章では、確認問題の後ろにまとめと得点)
- ``show_quiz(章, id)`` の id は問題バンクにあり、バンクのクイズはどれも 1 度ずつ表示する
- コード課題のひな形 (starter) は、ノートブックのセルとバンクで同じ
- コードセルは 40 行以内 (長い配管はパッケージのモジュールへ)
"""
from __future__ import annotations

import ast
import json
import re

import pytest
import yaml

from conftest import ROOT
from llmbook import export
from llmbook.book import CHAPTERS, REVIEW_CHAPTERS
from llmbook.quiz import load_bank

MAX_CODE_LINES = 40
SECTION_RE = re.compile(r"^## (\d+)\. (.+?)\s*$", re.M)


def _toc_notebooks() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f for f in files if (ROOT / f"{f}.ipynb").exists()]


NOTEBOOKS = _toc_notebooks()
_LABELS = {f"chapters/{stem}": label for label, (stem, _) in CHAPTERS.items()}


def _src(cell: dict) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


class Chapter:
    def __init__(self, toc_file: str) -> None:
        self.path = ROOT / f"{toc_file}.ipynb"
        self.cells = json.loads(self.path.read_text(encoding="utf-8"))["cells"]
        self.label = _LABELS[toc_file]                    # "A-1"
        self.key = self.label.lower().replace("-", "")    # "a1" (問題バンクの名前)

    @property
    def code(self) -> list[dict]:
        return [c for c in self.cells if c["cell_type"] == "code"]

    def sections(self) -> list[tuple[int, int, str]]:
        """(セルの位置, 節の番号, 題) の一覧。"""
        return [(i, int(n), title) for i, c in enumerate(self.cells) if c["cell_type"] == "markdown"
                for n, title in SECTION_RE.findall(_src(c))]

    def calls(self, name: str) -> list[tuple[int, list[object]]]:
        """``name(...)`` の呼び出し (セルの位置, 定数の引数) の一覧。"""
        found = []
        for i, c in enumerate(self.cells):
            if c["cell_type"] != "code":
                continue
            try:
                tree = ast.parse(_src(c))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id == name:
                    args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
                    found.append((i, args))
        return found


@pytest.fixture(params=NOTEBOOKS, ids=lambda f: f.split("/")[-1])
def chapter(request) -> Chapter:
    return Chapter(request.param)


def test_toc_lists_chapters():
    assert NOTEBOOKS, "_toc.yml に章のノートブックがありません"
    unknown = set(NOTEBOOKS) - set(_LABELS)
    assert not unknown, f"llmbook/book.py の CHAPTERS にない章が _toc.yml にあります: {unknown}"


def test_no_stored_outputs(chapter):
    stored = [i for i, c in enumerate(chapter.cells) if c["cell_type"] == "code"
              and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not stored, f"{chapter.path.name}: 出力か実行番号が残っているセル {stored}"


def test_sources_are_lists_of_lines(chapter):
    for i, c in enumerate(chapter.cells):
        src = c["source"]
        where = f"{chapter.path.name} セル {i}"
        assert isinstance(src, list), f"{where}: source を行のリストにしてください"
        assert all(line.endswith("\n") for line in src[:-1]), where
        assert all("\n" not in line[:-1] for line in src), where


def test_first_cell_is_the_generated_colab_cell(chapter):
    first = chapter.cells[0]
    assert first["cell_type"] == "code" and "colab-setup" in first["metadata"].get("tags", [])
    assert _src(first) == export.colab_cell_source(*export.read_repository(ROOT))


def test_sections_are_numbered(chapter):
    numbers = [n for _, n, _ in chapter.sections()]
    assert numbers == list(range(1, len(numbers) + 1)), f"{chapter.path.name}: 節の番号 {numbers}"
    assert len(numbers) >= 2


def test_summary_comes_before_the_chapter_quiz(chapter):
    sections = chapter.sections()
    summary = [i for i, _, title in sections if title == "まとめ"]
    assert len(summary) == 1, f"{chapter.path.name}: 「## N. まとめ」の節がちょうど 1 つ要ります"
    quizzes = [i for i, _ in chapter.calls("show_quiz")]
    totals = [i for i, _ in chapter.calls("show_summary")]
    assert quizzes and len(totals) == 1, f"{chapter.path.name}: show_quiz と show_summary が要る"
    assert summary[0] < totals[0], "得点 (show_summary) はまとめの後ろに置きます"
    if chapter.label in REVIEW_CHAPTERS:
        # 復習の章は確認問題そのものが本文: まとめと得点は最後の問題の後ろ
        assert max(quizzes) < summary[0] < totals[0]
        return
    titles = [title for _, _, title in sections]
    assert titles[-2] == "まとめ" and "クイズ" in titles[-1], (
        f"{chapter.path.name}: 最後の 2 節は「まとめ」と「章末クイズ」にします ({titles[-2:]})")
    assert summary[0] < min(quizzes), "章末クイズはまとめの後ろに置きます"
    assert max(quizzes) < totals[0]


def test_quiz_ids_exist_in_the_bank(chapter):
    bank = load_bank(chapter.key, reload=True)
    shown = []
    for i, args in chapter.calls("show_quiz"):
        assert len(args) == 2 and all(isinstance(a, str) for a in args), (
            f"{chapter.path.name} セル {i}: show_quiz(\"{chapter.key}\", \"id\") の形で書きます")
        assert args[0] == chapter.key, f"{chapter.path.name} セル {i}: 章は {chapter.key!r}"
        shown.append(args[1])
    ids = [q.id for q in bank.quizzes]
    assert set(shown) <= set(ids), f"バンクにないクイズ: {sorted(set(shown) - set(ids))}"
    assert sorted(shown) == sorted(ids), f"表示していない/2 度表示したクイズ: {shown} / {ids}"
    assert [args for _, args in chapter.calls("show_summary")] == [[chapter.key]]


def test_starters_match_the_bank(chapter):
    bank = load_bank(chapter.key, reload=True)
    sources = {_src(c).strip() for c in chapter.code}
    for quiz in bank.quizzes:
        for q in quiz.questions:
            if q.get("type") != "code":
                continue
            starter = q["starter"].strip()
            assert starter in sources, f"{quiz.id}/{q['id']}: ひな形がノートブックのセルと違います"
            ns: dict = {}
            exec(starter, ns)  # noqa: S102 - ひな形は実行してもエラーにならない
            assert callable(ns.get(q["function_name"])), q["id"]


def test_code_cells_are_short(chapter):
    long = {i: len(_src(c).splitlines()) for i, c in enumerate(chapter.cells)
            if c["cell_type"] == "code" and len(_src(c).splitlines()) > MAX_CODE_LINES}
    assert not long, (f"{chapter.path.name}: {MAX_CODE_LINES} 行を超えるコードセル {long} "
                      "(部品に分けるか、配管は llmbook のモジュールへ)")
