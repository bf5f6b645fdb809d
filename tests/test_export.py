"""コードは 1 か所に: ノートブックとパッケージ (と Colab セル、用語集セル) のずれを検出する。"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types

import pytest
import yaml

from llmbook import export
from conftest import ROOT


def test_repository_is_in_sync():
    drifts = export.plan(ROOT)
    assert not drifts, "python -m llmbook.export を実行してください: " + "; ".join(f"{d.path.name}: {d.reason}" for d in drifts)


def test_check_cli_exit_code():
    proc = subprocess.run([sys.executable, "-m", "llmbook.export", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def mini_repo(tmp_path):
    """本物の _config.yml と、export セルを持つ小さなノートブックからなる一時的なリポジトリ。"""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "llmbook" / "chapters").mkdir(parents=True)
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# テスト章"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "#| default_exp zz\nimport torch"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": '#| export\ndef twice(x):\n    """2 倍にする (A-1 §9 で導入)。"""\n    return 2 * x'},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "print(twice(3))"},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "chapters" / "zz.ipynb").write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return tmp_path


def test_export_writes_module_and_colab_cell_then_is_clean(mini_repo):
    assert export.main(["--root", str(mini_repo)]) == 0
    module = (mini_repo / "llmbook" / "chapters" / "zz.py").read_text(encoding="utf-8")
    assert "def twice(x):" in module and "print(twice" not in module
    nb = json.loads((mini_repo / "chapters" / "zz.ipynb").read_text(encoding="utf-8"))
    assert "colab-setup" in nb["cells"][0]["metadata"]["tags"]
    assert export.plan(mini_repo) == []
    ns: dict = {}
    exec(module, ns)  # noqa: S102
    assert ns["twice"](4) == 8


def test_drift_is_detected_both_ways(mini_repo):
    export.main(["--root", str(mini_repo)])
    # パッケージ側を直接書き換えた
    target = mini_repo / "llmbook" / "chapters" / "zz.py"
    target.write_text(target.read_text(encoding="utf-8").replace("2 * x", "3 * x"), encoding="utf-8")
    assert [d.path for d in export.plan(mini_repo)] == [target]
    assert export.main(["--root", str(mini_repo), "--check"]) == 1
    export.main(["--root", str(mini_repo)])
    # ノートブック側を書き換えた
    nbp = mini_repo / "chapters" / "zz.ipynb"
    nb = json.loads(nbp.read_text(encoding="utf-8"))
    nb["cells"][3]["source"] = nb["cells"][3]["source"].replace("2 * x", "2 * x + 0")
    nbp.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    assert [d.path for d in export.plan(mini_repo)] == [target]
    # 古い生成物
    (mini_repo / "llmbook" / "chapters" / "old.py").write_text("x = 1\n", encoding="utf-8")
    assert any(d.new_text is None and d.path.name == "old.py" for d in export.plan(mini_repo))


def test_export_requires_section_in_docstring(mini_repo):
    nbp = mini_repo / "chapters" / "zz.ipynb"
    nb = json.loads(nbp.read_text(encoding="utf-8"))
    nb["cells"][2]["source"] = "#| export\ndef twice(x):\n    return 2 * x"
    nbp.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(export.ExportError, match="twice の docstring"):
        export.plan(mini_repo)


def test_colab_url_comes_from_config_only(mini_repo):
    cfg = yaml.safe_load((mini_repo / "_config.yml").read_text(encoding="utf-8"))
    cfg["repository"]["url"] = "https://example.org/someone/book"
    (mini_repo / "_config.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    export.main(["--root", str(mini_repo)])
    nb = json.loads((mini_repo / "chapters" / "zz.ipynb").read_text(encoding="utf-8"))
    assert "git+https://example.org/someone/book@main" in nb["cells"][0]["source"]


def _colab_cells():
    for nbp in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nbp.read_text(encoding="utf-8"))
        yield nbp.name, nb["cells"][0]


@pytest.mark.parametrize("name, cell", list(_colab_cells()))
def test_colab_cell_simulated(name, cell, monkeypatch):
    """Colab を模して先頭セルを実行: llmbook を --no-deps で入れ、torch には触れない。Colab 以外では何もしない。"""
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


def test_glossary_cell_matches_data():
    nb = json.loads((ROOT / "chapters" / "a6_glossary_review.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "glossary" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1
    src = cells[0]["source"] if isinstance(cells[0]["source"], str) else "".join(cells[0]["source"])
    assert src == export.glossary_markdown() and src.count("```{glossary}") == 3


def test_published_chapters_match_toc():
    from llmbook.book import CHAPTERS, PUBLISHED

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files == [f"chapters/{CHAPTERS[label][0]}" for label in PUBLISHED]
    for label in PUBLISHED:
        assert (ROOT / "chapters" / f"{CHAPTERS[label][0]}.ipynb").exists()


def test_refs_link_only_to_published_chapters(monkeypatch):
    import llmbook.book as book
    from llmbook.quiz.html import quiz_payload
    from llmbook.quiz import load_bank

    monkeypatch.setattr(book, "PUBLISHED", ("A-3", "A-6"))
    assert book.chapter_links("A-2・A-3") == [("A-2", None), ("A-3", "a3_multi_head_attention")]
    q5 = quiz_payload(load_bank("a6").quiz("q5"))["questions"][0]
    assert q5["ref_links"] == [["A-3", "a3_multi_head_attention.html"]]
    assert "[A-3](a3_multi_head_attention.ipynb)" in export.glossary_markdown()
