"""ノートブックとパッケージを同期する: コードは 1 か所 (ノートブック) にだけ置く。

各章のノートブックでは、後の章でも使う部品を ``#| export`` で始まるセルに書き、
書き出し先を ``#| default_exp a1`` のように 1 度だけ宣言する。このコマンドは
それらのセルを集めて ``llmbook/chapters/a1.py`` を作り、後の章は
``from llmbook.chapters.a1 import ...`` で同じコードを使う (d2l の ``#@save``、
nbdev の ``#| export`` と同じ考え方)。あわせて次のものも生成する:

- 各ノートブックの先頭の Colab 用セル (リポジトリの URL は ``_config.yml`` の 1 か所だけ)
- A-6 の用語集セル (``llmbook/data/glossary.yaml`` から)

使い方::

    python -m llmbook.export           # 書き出す
    python -m llmbook.export --check   # ずれを一覧にして終了コード 1 (tests と CI が使う)
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Drift", "plan", "main", "colab_cell_source", "glossary_markdown", "ExportError"]

ROOT = Path(__file__).resolve().parent.parent
EXPORT_RE = re.compile(r"^#\|\s*export\s*$")
DEFAULT_EXP_RE = re.compile(r"^#\|\s*default_exp\s+([a-z][a-z0-9_]*)\s*$")
COLAB_TAG = "colab-setup"
GLOSSARY_TAG = "glossary"


class ExportError(ValueError):
    """ノートブックの書き方の誤り (どのファイルのどのセルかを示す)。"""


@dataclass
class Drift:
    """生成すべき内容と、いまの内容のずれ 1 件。"""

    path: Path
    reason: str
    new_text: str | None  # None なら削除すべきファイル


def read_repository(root: Path) -> tuple[str, str]:
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = cfg.get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch", "main")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ExportError("_config.yml の repository.url に https:// で始まるリポジトリの URL を書いてください")
    return url.rstrip("/"), branch


def colab_cell_source(url: str, branch: str) -> str:
    """各章の先頭に置く Colab 用セルの中身。Colab でだけ llmbook を入れ、torch には触れない。"""
    return (
        "# 【Colab 用の準備】Google Colab で開いたときだけ、この本のパッケージ llmbook を入れます。\n"
        "# --no-deps なので、Colab にある torch などはそのまま使います (入れ直しません)。\n"
        "# 手元の Jupyter や本のビルドでは何もしません。\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    REPO = "git+{url}@{branch}"  # _config.yml の repository から生成\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "matplotlib-fontja", REPO], check=True)'
    )


def _chapter_md(ref: str) -> str:
    """「A-2・A-5」を、公開済みの章だけ Markdown のリンクにする (JupyterLab でも Web サイトでも辿れる)。"""
    from .book import chapter_links

    return "・".join(f"[{label}]({stem}.ipynb)" if stem else label for label, stem in chapter_links(ref))


def glossary_markdown() -> str:
    """A-6 の用語集セル (Sphinx の glossary ディレクティブ) を ``glossary.yaml`` から作る。"""
    from .quiz.bank import load_glossary

    terms = load_glossary()
    lines = ["## 1. 用語集 (20 語)", "",
             "各用語の英語名・日本語名・この本での定義と、主に扱う章です。本文からこの用語集へリンクできます。", ""]
    categories: list[str] = []
    for t in terms:
        if t["category"] not in categories:
            categories.append(t["category"])
    for cat in categories:
        lines += [f"### {cat}", "", "```{glossary}"]
        for t in terms:
            if t["category"] != cat:
                continue
            lines += [t["ja"], t["en"], f"  {t['definition']} (主に扱う章: {_chapter_md(t['chapter'])})", ""]
        if lines[-1] == "":
            lines.pop()
        lines += ["```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _check_docstrings(nb_path: Path, index: int, code: str) -> None:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise ExportError(f"{nb_path.name} のセル {index}: export セルが Python として読めません ({exc.msg}, {exc.lineno} 行目)") from None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            doc = ast.get_docstring(node) or ""
            if not re.search(r"A-[1-6]", doc):
                raise ExportError(
                    f"{nb_path.name} のセル {index}: {node.name} の docstring に、導入した節 (例: 「A-1 §3 で導入」) を書いてください")


def module_for(nb_path: Path, nb: dict) -> tuple[str | None, str | None]:
    """ノートブックの ``#| export`` セルから書き出すモジュール名と中身。export がなければ (None, None)。"""
    name = None
    chunks = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        lines = _source(cell).splitlines()
        for line in lines:
            m = DEFAULT_EXP_RE.match(line)
            if m:
                if name and name != m.group(1):
                    raise ExportError(f"{nb_path.name}: default_exp が 2 つあります ({name}, {m.group(1)})")
                name = m.group(1)
        if lines and EXPORT_RE.match(lines[0]):
            code = "\n".join(lines[1:]).strip("\n")
            _check_docstrings(nb_path, i, code)
            chunks.append(f"# --- {nb_path.name} セル {i}\n{code}\n")
    if not chunks:
        return None, None
    if not name:
        raise ExportError(f"{nb_path.name}: export セルがあるのに '#| default_exp 名前' がありません")
    header = (
        f'"""{nb_path.name} の ``#| export`` セルから自動生成したモジュール。\n\n'
        "このファイルは編集しないでください。ノートブックを直してから\n"
        "``python -m llmbook.export`` を実行します (tests がずれを検出します)。\n"
        '"""\n'
    )
    return name, header + "\n\n".join(chunks)


def _dump_nb(nb: dict) -> str:
    return json.dumps(nb, ensure_ascii=False, indent=1) + "\n"


def plan(root: Path = ROOT) -> list[Drift]:
    """いまのリポジトリで、生成物とずれている箇所をすべて返す (書き換えはしない)。"""
    drifts: list[Drift] = []
    url, branch = read_repository(root)
    colab = colab_cell_source(url, branch)
    produced: set[Path] = set()
    for nb_path in sorted((root / "chapters").glob("*.ipynb")):
        text = nb_path.read_text(encoding="utf-8")
        nb = json.loads(text)
        cells = nb.get("cells", [])
        changed = []
        first = cells[0] if cells else None
        if not first or COLAB_TAG not in first.get("metadata", {}).get("tags", []):
            cells.insert(0, {"cell_type": "code", "execution_count": None, "id": "colab-setup",
                             "metadata": {"tags": [COLAB_TAG, "remove-cell"]}, "outputs": [], "source": colab})
            changed.append("先頭の Colab 用セルがありません")
        elif _source(first) != colab:
            first["source"] = colab
            changed.append("Colab 用セルが _config.yml の repository と合っていません")
        for cell in cells:
            if GLOSSARY_TAG in cell.get("metadata", {}).get("tags", []):
                want = glossary_markdown()
                if _source(cell) != want:
                    cell["source"] = want
                    changed.append("用語集セルが glossary.yaml と合っていません")
        if changed:
            drifts.append(Drift(nb_path, "、".join(changed), _dump_nb(nb)))
        name, module = module_for(nb_path, nb)
        if name:
            target = root / "llmbook" / "chapters" / f"{name}.py"
            produced.add(target)
            current = target.read_text(encoding="utf-8") if target.exists() else None
            if current != module:
                drifts.append(Drift(target, f"{nb_path.name} の export セルと中身が違います" if current is not None
                                    else f"{nb_path.name} から書き出すモジュールがありません", module))
    for py in sorted((root / "llmbook" / "chapters").glob("*.py")):
        if py.name != "__init__.py" and py not in produced:
            drifts.append(Drift(py, "どのノートブックからも書き出されないモジュールです (古い生成物?)", None))
    return drifts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llmbook.export", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="書き換えず、ずれがあれば一覧を出して終了コード 1")
    ap.add_argument("--root", type=Path, default=ROOT)
    args = ap.parse_args(argv)
    try:
        drifts = plan(args.root)
    except ExportError as exc:
        print(f"エラー: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for d in drifts:
            print(f"ずれ: {d.path.relative_to(args.root)}: {d.reason}")
        if drifts:
            print("python -m llmbook.export を実行して同期してください。", file=sys.stderr)
        return 1 if drifts else 0
    for d in drifts:
        if d.new_text is None:
            d.path.unlink()
            print(f"削除: {d.path.relative_to(args.root)}")
        else:
            d.path.parent.mkdir(parents=True, exist_ok=True)
            d.path.write_text(d.new_text, encoding="utf-8")
            print(f"更新: {d.path.relative_to(args.root)} ({d.reason})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
