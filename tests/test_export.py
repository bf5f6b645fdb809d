"""コードは 1 か所に: ノートブックとパッケージ (と Colab セル、用語集セル) のずれを検出する。"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import types

import pytest
import yaml

from conftest import ROOT
from llmbook import export


def test_repository_is_in_sync():
    drifts = export.plan(ROOT)
    found = "; ".join(f"{d.path.name}: {d.reason}" for d in drifts)
    assert not drifts, "python -m llmbook.export を実行してください: " + found


def test_check_cli_exit_code():
    proc = subprocess.run([sys.executable, "-m", "llmbook.export", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _code(src: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": src.splitlines(keepends=True)}


def _md(src: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": src.splitlines(keepends=True)}


@pytest.fixture
def mini_repo(tmp_path):
    """本物の _config.yml と、export セルを持つ小さなノートブックからなる一時的なリポジトリ。"""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "llmbook" / "chapters").mkdir(parents=True)
    nb = {"cells": [
        _md("# テスト章"),
        _code("#| default_exp zz\nimport torch"),
        _code('#| export\ndef twice(x):\n    """2 倍にする (A-1 §9 で導入)。"""\n    return 2 * x'),
        _code("print(twice(3))"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    _write_nb(tmp_path, nb)
    return tmp_path


def _write_nb(root, nb):
    path = root / "chapters" / "zz.ipynb"
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")


def _read_nb(root):
    return json.loads((root / "chapters" / "zz.ipynb").read_text(encoding="utf-8"))


def _module(root):
    return (root / "llmbook" / "chapters" / "zz.py").read_text(encoding="utf-8")


def test_export_writes_module_and_colab_cell_then_is_clean(mini_repo):
    assert export.main(["--root", str(mini_repo)]) == 0
    module = _module(mini_repo)
    assert "def twice(x):" in module and "print(twice" not in module
    nb = _read_nb(mini_repo)
    assert "colab-setup" in nb["cells"][0]["metadata"]["tags"]
    # 書き直したノートブックの source は行ごとのリスト
    assert all(isinstance(c["source"], list) for c in nb["cells"])
    assert (mini_repo / "glossary.md").read_text(encoding="utf-8") == export.glossary_page()
    assert export.plan(mini_repo) == []
    ns: dict = {}
    exec(module, ns)  # noqa: S102
    assert ns["twice"](4) == 8 and ns["__all__"] == ["twice"]


def test_drift_is_detected_both_ways(mini_repo):
    export.main(["--root", str(mini_repo)])
    # パッケージ側を直接書き換えた
    target = mini_repo / "llmbook" / "chapters" / "zz.py"
    edited = target.read_text(encoding="utf-8").replace("2 * x", "3 * x")
    target.write_text(edited, encoding="utf-8")
    assert [d.path for d in export.plan(mini_repo)] == [target]
    assert export.main(["--root", str(mini_repo), "--check"]) == 1
    export.main(["--root", str(mini_repo)])
    # ノートブック側を書き換えた
    nb = _read_nb(mini_repo)
    cell = next(c for c in nb["cells"] if "".join(c["source"]).startswith("#| export"))
    cell["source"] = [line.replace("2 * x", "2 * x + 0") for line in cell["source"]]
    _write_nb(mini_repo, nb)
    assert [d.path for d in export.plan(mini_repo)] == [target]
    # 古い生成物
    (mini_repo / "llmbook" / "chapters" / "old.py").write_text("x = 1\n", encoding="utf-8")
    assert any(d.new_text is None and d.path.name == "old.py" for d in export.plan(mini_repo))
    # 用語集ページを手で書き換えた
    page = mini_repo / "glossary.md"
    page.write_text(page.read_text(encoding="utf-8") + "手で足した行\n", encoding="utf-8")
    assert any(d.path == page for d in export.plan(mini_repo))


def test_export_requires_section_in_docstring(mini_repo):
    nb = _read_nb(mini_repo)
    nb["cells"][2] = _code("#| export\ndef twice(x):\n    return 2 * x")
    _write_nb(mini_repo, nb)
    with pytest.raises(export.ExportError, match="twice の docstring"):
        export.plan(mini_repo)


def test_colab_url_comes_from_config_only(mini_repo):
    cfg = yaml.safe_load((mini_repo / "_config.yml").read_text(encoding="utf-8"))
    cfg["repository"]["url"] = "https://example.org/someone/book"
    cfg_text = yaml.safe_dump(cfg, allow_unicode=True)
    (mini_repo / "_config.yml").write_text(cfg_text, encoding="utf-8")
    export.main(["--root", str(mini_repo)])
    colab = "".join(_read_nb(mini_repo)["cells"][0]["source"])
    assert "git+https://example.org/someone/book@main" in colab


def test_readme_table_follows_the_repository_url(mini_repo):
    readme = mini_repo / "README.md"
    readme.write_text(f"# 本\n\n{export.README_START}\n古い表\n{export.README_END}\n\n後ろ\n",
                      encoding="utf-8")
    cfg = yaml.safe_load((mini_repo / "_config.yml").read_text(encoding="utf-8"))
    cfg["repository"]["url"] = "https://github.com/Someone/my-book"
    (mini_repo / "_config.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True),
                                           encoding="utf-8")
    assert export.main(["--root", str(mini_repo)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "古い表" not in text and text.endswith("\n\n後ろ\n")
    assert "Web サイト: <https://someone.github.io/my-book/>" in text
    assert ("https://colab.research.google.com/github/Someone/my-book/blob/main/chapters/"
            "a5_causal_generation.ipynb") in text
    assert export.main(["--root", str(mini_repo), "--check"]) == 0


def test_readme_without_markers_or_github_url(mini_repo, capsys):
    assert export.site_address("https://example.org/someone/book") is None
    assert "colab" not in export.readme_block("https://example.org/someone/book", "main")
    (mini_repo / "README.md").write_text("# 目印のない README\n", encoding="utf-8")
    assert export.main(["--root", str(mini_repo)]) == 2
    assert "目印" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# 書き出すモジュールの形: 区切り・import・__all__
# ---------------------------------------------------------------------------

TWO_SECTIONS = [
    _md("# テスト章"),
    _code("#| default_exp zz"),
    _md("## 1. 数える"),
    _code('#| export\nimport math\nfrom typing import Optional\n\nimport torch\n\n'
          'LIMIT = 3\n_cache = {}\n\n\ndef count(x: Optional[int]) -> int:\n'
          '    """数える (A-1 §1 で導入)。"""\n    return math.floor(torch.tensor(x or 0).item())'),
    _code("print(count(2))"),
    _md("## 2. 並べる\n\n本文。"),
    _code('#| export\nimport torch\nimport numpy as np\nfrom typing import Optional, Callable\n'
          'from llmbook.corpus import load_text, CharTokenizer, VAL_FRACTION\n\n\n'
          'class Row:\n    """1 行 (A-1 §2 で導入)。"""\n\n    n: Optional[int] = None\n'),
    _code('#| export\ndef rows() -> list:\n    """行の一覧 (A-1 §2 で導入)。"""\n'
          '    import json  # 関数の中の import はそのまま\n    return [Row(), json]'),
]


def _export_two_sections(root, cells):
    _write_nb(root, {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    assert export.main(["--root", str(root)]) == 0
    return _module(root)


def test_markers_name_the_heading_not_the_cell_number(mini_repo):
    module = _export_two_sections(mini_repo, copy.deepcopy(TWO_SECTIONS))
    markers = [line for line in module.splitlines() if line.startswith("# ---")]
    assert markers == ["# --- zz.ipynb: 1. 数える", "# --- zz.ipynb: 2. 並べる"]
    assert not re.search(r"セル ?\d", module)
    # 途中にセルを足しても、モジュールは 1 文字も変わらない
    cells = copy.deepcopy(TWO_SECTIONS)
    cells.insert(2, _code("x = 1  # 足したセル"))
    cells.insert(5, _md("ここに説明を足した。"))
    assert _export_two_sections(mini_repo, cells) == module


def test_imports_are_hoisted_sorted_and_deduplicated(mini_repo):
    module = _export_two_sections(mini_repo, copy.deepcopy(TWO_SECTIONS))
    head = module.split("__all__")[0]
    assert head.count("import torch\n") == 1 and module.count("import torch\n") == 1
    assert "from typing import Callable, Optional\n" in head
    assert head.index("import math") < head.index("import numpy as np") < head.index(
        "from llmbook.corpus import VAL_FRACTION, CharTokenizer, load_text")
    assert "    import json  # 関数の中の import はそのまま" in module
    ns: dict = {}
    exec(module, ns)  # noqa: S102
    assert ns["count"](2) == 2 and len(ns["rows"]()) == 2


def test_all_lists_public_names_in_order(mini_repo):
    module = _export_two_sections(mini_repo, copy.deepcopy(TWO_SECTIONS))
    ns: dict = {}
    exec(module, ns)  # noqa: S102
    assert ns["__all__"] == ["LIMIT", "count", "Row", "rows"]


def test_generated_modules_pass_ruff(mini_repo):
    """書き出しで作る部分 (import の並び・区切り・__all__) は ruff (isort と行の長さ) を通る。"""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff が入っていません (pip install -r requirements.txt)")
    module = _export_two_sections(mini_repo, copy.deepcopy(TWO_SECTIONS))
    for path, text in [("llmbook/chapters/zz.py", module)]:
        proc = subprocess.run([ruff, "check", "--select", "I,E501", "--stdin-filename", path, "-"],
                              input=text, capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout


def test_long_from_import_is_wrapped(mini_repo):
    names = ", ".join(f"name_{i:02d}" for i in range(12))
    cells = copy.deepcopy(TWO_SECTIONS)
    cells[3] = _code(f"#| export\nfrom llmbook.corpus import {names}\n\nLIMIT = 1")
    cells = cells[:4]
    _write_nb(mini_repo, {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    _, module = export.module_for(mini_repo / "chapters" / "zz.ipynb", {"cells": cells})
    assert "from llmbook.corpus import (\n    name_00,\n" in module and "    name_11,\n)" in module


def _colab_cells():
    for nbp in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nbp.read_text(encoding="utf-8"))
        yield nbp.name, nb["cells"][0]


@pytest.mark.parametrize("name, cell", list(_colab_cells()))
def test_colab_cell_simulated(name, cell, monkeypatch):
    """Colab を模して先頭セルを実行: llmbook を --no-deps で入れ、torch には触れない。

    Colab 以外では何もしない。
    """
    src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    exec(compile(src, name, "exec"), {})  # noqa: S102 - Colab 以外
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(src, name, "exec"), {})  # noqa: S102 - Colab を模す
    assert len(calls) == 1
    cmd = calls[0]
    url, branch = export.read_repository(ROOT)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in cmd
    assert f"git+{url}@{branch}" in cmd
    assert not any("torch" in part for part in cmd)


def test_glossary_page_matches_data():
    """glossary.md (サイトの用語集) は glossary.yaml から生成する。見出し語は日本語名と英語名。"""
    from llmbook.quiz import load_glossary

    page = (ROOT / "glossary.md").read_text(encoding="utf-8")
    assert page == export.glossary_page()
    terms = load_glossary()
    categories = {t["category"] for t in terms}
    assert page.startswith("# 用語集\n") and page.count("```{glossary}") == len(categories)
    for t in terms:
        assert f"\n{t['ja']}\n{t['en']}\n  {t['definition']}" in page, t["id"]
        for alias in t["aliases"]:
            assert alias in page, (t["id"], alias)
    assert "[A-1](chapters/a1_language_models.ipynb)" in page


def test_a6_glossary_cell_is_optional(mini_repo):
    """A-6 のノートブックに Sphinx の用語集セルがなくても書き出しはずれにならない。"""
    export.main(["--root", str(mini_repo)])
    nb = _read_nb(mini_repo)
    nb["cells"].append({**_md("## 用語集\n"), "metadata": {"tags": ["glossary"]}})
    _write_nb(mini_repo, nb)
    assert export.plan(mini_repo) == []


def test_published_chapters_match_toc():
    from llmbook.book import CHAPTERS, PUBLISHED

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    chapters = [f"chapters/{CHAPTERS[label][0]}" for label in PUBLISHED]
    assert [f for f in files if f.startswith("chapters/")] == chapters
    # 用語集のページは A-6 のすぐ後ろ
    assert files[files.index(f"chapters/{CHAPTERS['A-6'][0]}") + 1] == "glossary"
    assert set(files) == {*chapters, "glossary"}
    for label in PUBLISHED:
        assert (ROOT / "chapters" / f"{CHAPTERS[label][0]}.ipynb").exists()


def test_refs_link_only_to_published_chapters(monkeypatch):
    import llmbook.book as book
    from llmbook.quiz import load_bank
    from llmbook.quiz.html import quiz_payload

    monkeypatch.setattr(book, "PUBLISHED", ("A-3", "A-6"))
    assert book.chapter_links("A-2・A-3") == [("A-2", None), ("A-3", "a3_multi_head_attention")]
    q5 = quiz_payload(load_bank("a6").quiz("q5"))["questions"][0]
    assert q5["ref_links"] == [["A-3", "a3_multi_head_attention.html"]]
    assert "[A-3](chapters/a3_multi_head_attention.ipynb)" in export.glossary_page()
