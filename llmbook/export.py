"""ノートブックとパッケージを同期する: コードは 1 か所 (ノートブック) にだけ置く。

各章のノートブックでは、後の章でも使う部品を ``#| export`` で始まるセルに書き、
書き出し先を ``#| default_exp a1`` のように 1 度だけ宣言する。このコマンドは
それらのセルを集めて ``llmbook/chapters/a1.py`` を作り、後の章は
``from llmbook.chapters.a1 import ...`` で同じコードを使う (d2l の ``#@save``、
nbdev の ``#| export`` と同じ考え方)。書き出すモジュールでは:

- export セルの import はモジュールの先頭にまとめ、重複を除いて並べる (ruff の isort と同じ順)。
- ``__all__`` は、export セルで定義した公開の名前 (``_`` で始まらない関数・クラス・変数) から作る。
- 区切りのコメントはセルの番号ではなく、直前の Markdown の見出しを書く
  (セルを 1 つ足しても、後ろの区切りがすべて書き換わることはない)。

あわせて次のものも生成する:

- 各ノートブックの先頭の Colab 用セル (リポジトリの URL は ``_config.yml`` の 1 か所だけ)
- サイトの用語集ページ ``glossary.md`` (``llmbook/data/glossary.yaml`` から。本文の ``{term}``
  リンクの行き先。A-6 のノートブックでは同じ YAML を HTML で表示する)

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
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "Drift",
    "ExportError",
    "colab_cell_source",
    "glossary_page",
    "main",
    "module_for",
    "plan",
]

ROOT = Path(__file__).resolve().parent.parent
EXPORT_RE = re.compile(r"^#\|\s*export\s*$")
DEFAULT_EXP_RE = re.compile(r"^#\|\s*default_exp\s+([a-z][a-z0-9_]*)\s*$")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
COLAB_TAG = "colab-setup"
#: サイトの用語集ページ (リポジトリの直下。``_toc.yml`` で A-6 の直後に置く)
GLOSSARY_PAGE = "glossary.md"
#: 書き出すモジュールの 1 行の長さの上限 (pyproject.toml の ruff と同じ。全角は 2 桁)
LINE_LENGTH = 100


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
        raise ExportError(
            "_config.yml の repository.url に https:// で始まるリポジトリの URL を書いてください")
    return url.rstrip("/"), branch


def colab_cell_source(url: str, branch: str) -> str:
    """各章の先頭に置く Colab 用セルの中身。Colab でだけ llmbook を入れ、torch には触れない。"""
    return (
        "# 【Colab 用の準備】Google Colab で開いたときだけ、この本のパッケージ llmbook を\n"
        "# 入れます。\n"
        "# --no-deps なので、Colab にある torch などはそのまま使います (入れ直しません)。\n"
        "# 手元の Jupyter や本のビルドでは何もしません。\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    # リポジトリは _config.yml の repository から生成\n"
        f'    REPO = "git+{url}@{branch}"\n'
        '    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]\n'
        '    subprocess.run([*pip, "matplotlib-fontja", REPO], check=True)'
    )


# ---------------------------------------------------------------------------
# README の章の表 (Web サイトのアドレスと Colab のバッジ)
# ---------------------------------------------------------------------------

README_START = "<!-- 章の表: python -m llmbook.export が _config.yml の repository から生成 -->"
README_END = "<!-- 章の表ここまで -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def site_address(url: str) -> str | None:
    """GitHub のリポジトリ URL から GitHub Pages のアドレスを作る (GitHub 以外は None)。"""
    parts = url.removeprefix("https://github.com/").split("/")
    if not url.startswith("https://github.com/") or len(parts) != 2 or not all(parts):
        return None
    owner, name = parts[0].lower(), parts[1]
    if name.lower() == f"{owner}.github.io":                  # ユーザーのサイト (根に公開される)
        return f"https://{owner}.github.io/"
    return f"https://{owner}.github.io/{name}/"


def readme_block(url: str, branch: str) -> str:
    """README の章の表: 章ごとに Web サイトのページと Colab で開くバッジ (repository.url から)。"""
    from llmbook.book import CHAPTERS, PUBLISHED

    site = site_address(url)
    lines = [README_START, ""]
    if site is None:
        lines += ["(repository.url が GitHub のリポジトリではないので、Web サイトと Colab の"
                  "リンクは作りません)", ""]
    else:
        lines += [f"Web サイト: <{site}>", ""]
    lines += ["| 章 | 題名 | Web サイト | Colab |", "| --- | --- | --- | --- |"]
    for key, (stem, title) in CHAPTERS.items():
        if key not in PUBLISHED:
            lines.append(f"| {key} | {title} | 準備中 | |")
        elif site is None:
            lines.append(f"| {key} | {title} | | |")
        else:
            colab = (f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}"
                     f"/blob/{branch}/chapters/{stem}.ipynb")
            lines.append(f"| {key} | {title} | [ページ]({site}chapters/{stem}.html) | "
                         f"[![Colab で開く]({COLAB_BADGE})]({colab}) |")
    return "\n".join([*lines, "", README_END])


def with_readme_block(text: str, url: str, branch: str) -> str:
    """README の本文の、生成する表の部分 (目印の行の間) を置き換えた本文を返す。"""
    if README_START not in text or README_END not in text:
        raise ExportError(f"README.md に目印の行がありません。章の表を置く所に {README_START} と "
                          f"{README_END} の 2 行を書いてください")
    head, rest = text.split(README_START, 1)
    return head + readme_block(url, branch) + rest.split(README_END, 1)[1]


# ---------------------------------------------------------------------------
# 用語集ページ
# ---------------------------------------------------------------------------


def _chapter_md(ref: str, prefix: str = "chapters/") -> str:
    """「A-2・A-5」を、公開済みの章だけ Markdown のリンクにする (未公開の章は「準備中」)。"""
    from .book import chapter_links

    return "・".join(f"[{label}]({prefix}{stem}.ipynb)" if stem else f"{label} (準備中)"
                    for label, stem in chapter_links(ref))


def glossary_page(terms: list[dict] | None = None) -> str:
    """サイトの用語集ページ ``glossary.md`` (Sphinx の glossary) を ``glossary.yaml`` から作る。

    各用語の Sphinx の見出し語は日本語名 (``ja``) と英語名 (``en``) の 2 つ。本文の
    ``{term}`自己注意``` や ``{term}`Self-Attention``` はここへのリンクになる。
    別名 (``aliases``) と主に扱う章は定義の後ろに書く。
    """
    if terms is None:
        from .quiz.bank import load_glossary

        terms = load_glossary()
    lines = [
        "# 用語集", "",
        f"この本で使う {len(terms)} の用語の、日本語名・英語名・定義と、主に扱う章です。"
        "本文の用語のリンクはこのページの定義を指します。"
        "[A-6](chapters/a6_glossary_review.ipynb) では、同じ用語集をノートブックの中で読める形で"
        "表示し、用語のクイズで確かめます。",
        "",
    ]
    categories = list(dict.fromkeys(t["category"] for t in terms))
    for cat in categories:
        lines += [f"## {cat}", "", "```{glossary}"]
        for t in (t for t in terms if t["category"] == cat):
            aliases = "、".join(t.get("aliases") or [])
            extra = f"別名: {aliases}。" if aliases else ""
            lines += [t["ja"], t["en"],
                      f"  {t['definition']}{extra}主に扱う章: {_chapter_md(t['chapter'])}。", ""]
        lines[-1:] = ["```", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------
# export セル → モジュール
# ---------------------------------------------------------------------------


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _width(s: str) -> int:
    """表示上の桁数 (全角は 2 桁。ruff の行の長さと同じ数え方)。"""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _parse(nb_path: Path, index: int, code: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise ExportError(f"{nb_path.name} のセル {index}: export セルが Python として読めません "
                          f"({exc.msg}, {exc.lineno} 行目)") from None


def _check_docstrings(nb_path: Path, index: int, tree: ast.Module) -> None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and not node.name.startswith("_"):
            doc = ast.get_docstring(node) or ""
            if not re.search(r"A-[1-6]", doc):
                raise ExportError(
                    f"{nb_path.name} のセル {index}: {node.name} の docstring に、導入した節 "
                    "(例: 「A-1 §3 で導入」) を書いてください")


def _public_names(tree: ast.Module) -> list[str]:
    """セルの一番外側で定義した、``_`` で始まらない名前 (関数・クラス・変数)。"""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_") and n != "__all__"]


class _Imports:
    """export セルの一番外側の import を集め、重複を除いて ruff (isort) と同じ順に並べる。"""

    def __init__(self) -> None:
        self.plain: set[tuple[str, str | None]] = set()          # import mod [as alias]
        self.members: dict[tuple[int, str], set[str]] = {}       # from mod import a, b as c

    def add(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            self.plain.update((a.name, a.asname) for a in node.names)
            return
        key = (node.level, node.module or "")
        self.members.setdefault(key, set()).update(
            a.name if a.asname is None else f"{a.name} as {a.asname}" for a in node.names)

    @staticmethod
    def _section(module: str, level: int) -> int:
        top = module.split(".")[0]
        if level:
            return 4
        if top == "__future__":
            return 0
        if top in sys.stdlib_module_names:
            return 1
        return 3 if top == "llmbook" else 2

    @staticmethod
    def _member_key(name: str) -> tuple[int, str]:
        base = name.split(" as ")[0]
        kind = 0 if base.isupper() and len(base) > 1 else 1 if base[:1].isupper() else 2
        return kind, base

    def _from_lines(self, level: int, module: str, names: list[str]) -> list[str]:
        src = "." * level + module
        one = f"from {src} import {', '.join(names)}"
        if _width(one) <= LINE_LENGTH:
            return [one]
        return [f"from {src} import (", *(f"    {n}," for n in names), ")"]

    def render(self) -> str:
        sections: dict[int, list[tuple[int, str, list[str]]]] = {}
        for mod, alias in self.plain:
            line = f"import {mod}" + (f" as {alias}" if alias else "")
            sections.setdefault(self._section(mod, 0), []).append((0, mod.lower(), [line]))
        for (level, mod), names in self.members.items():
            plain = sorted((n for n in names if " as " not in n), key=self._member_key)
            aliased = sorted((n for n in names if " as " in n), key=self._member_key)
            groups = ([plain] if plain else []) + [[n] for n in aliased]
            for group in groups:
                sections.setdefault(self._section(mod, level), []).append(
                    (1, "." * level + mod.lower(), self._from_lines(level, mod, group)))
        blocks = ["\n".join(line for _, _, lines in sorted(items) for line in lines)
                  for _, items in sorted(sections.items())]
        return "\n\n".join(blocks)


def _heading(cell: dict) -> str | None:
    """Markdown セルの最後の見出し (``## 4. N グラム`` なら ``4. N グラム``)。"""
    found = None
    for line in _source(cell).splitlines():
        m = HEADING_RE.match(line)
        if m:
            found = m.group(2)
    return found


def _strip_lines(code: str, nodes: list[ast.stmt]) -> str:
    drop = {i for n in nodes for i in range(n.lineno, (n.end_lineno or n.lineno) + 1)}
    lines = [line for i, line in enumerate(code.split("\n"), start=1) if i not in drop]
    return "\n".join(lines).strip("\n")


def _marker(nb_name: str, heading: str | None) -> str:
    text = f"# --- {nb_name}: {heading}" if heading else f"# --- export from {nb_name}"
    while _width(text) > LINE_LENGTH:
        text = text[:-2] + "…"
    return text


def module_for(nb_path: Path, nb: dict) -> tuple[str | None, str | None]:
    """``#| export`` セルから書き出すモジュールの名前と中身 (export がなければ (None, None))。

    import はまとめて先頭へ、``__all__`` は公開の名前から作り、区切りには直前の見出しを書く。
    """
    name = None
    imports = _Imports()
    public: list[str] = []
    chunks: list[str] = []
    heading: str | None = None
    last_marker: str | None = None
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "markdown":
            heading = _heading(cell) or heading
            continue
        if cell.get("cell_type") != "code":
            continue
        lines = _source(cell).splitlines()
        for line in lines:
            m = DEFAULT_EXP_RE.match(line)
            if m:
                if name and name != m.group(1):
                    raise ExportError(
                        f"{nb_path.name}: default_exp が 2 つあります ({name}, {m.group(1)})")
                name = m.group(1)
        if not (lines and EXPORT_RE.match(lines[0])):
            continue
        code = "\n".join(lines[1:]).strip("\n")
        tree = _parse(nb_path, i, code)
        _check_docstrings(nb_path, i, tree)
        hoisted = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in hoisted:
            imports.add(node)
        public += [n for n in _public_names(tree) if n not in public]
        body = _strip_lines(code, hoisted)
        if not body:
            continue
        marker = _marker(nb_path.name, heading)
        chunks.append(body if marker == last_marker else f"{marker}\n{body}")
        last_marker = marker
    if not chunks and not public:
        return None, None
    if not name:
        raise ExportError(
            f"{nb_path.name}: export セルがあるのに '#| default_exp 名前' がありません")
    header = (
        f'"""{nb_path.name} の ``#| export`` セルから自動生成したモジュール。\n\n'
        "このファイルは編集しないでください。ノートブックを直してから\n"
        "``python -m llmbook.export`` を実行します (tests がずれを検出します)。\n"
        '"""\n'
    )
    parts = [header + imports.render()] if imports.plain or imports.members else [header.rstrip()]
    parts.append("__all__ = [\n" + "".join(f'    "{n}",\n' for n in public) + "]")
    return name, "\n\n\n".join([parts[0] + "\n\n" + parts[1], *chunks]) + "\n"


def _lines(text: str) -> list[str]:
    """ノートブックの ``source`` の形 (行ごとのリスト。git の差分が行単位になる)。"""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _dump_nb(nb: dict) -> str:
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), str):
            cell["source"] = _lines(cell["source"])
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
                             "metadata": {"tags": [COLAB_TAG, "remove-cell"]}, "outputs": [],
                             "source": _lines(colab)})
            changed.append("先頭の Colab 用セルがありません")
        elif _source(first) != colab:
            first["source"] = _lines(colab)
            changed.append("Colab 用セルが _config.yml の repository と合っていません")
        if changed:
            drifts.append(Drift(nb_path, "、".join(changed), _dump_nb(nb)))
        name, module = module_for(nb_path, nb)
        if name:
            target = root / "llmbook" / "chapters" / f"{name}.py"
            produced.add(target)
            current = target.read_text(encoding="utf-8") if target.exists() else None
            if current != module:
                reason = (f"{nb_path.name} の export セルと中身が違います" if current is not None
                          else f"{nb_path.name} から書き出すモジュールがありません")
                drifts.append(Drift(target, reason, module))
    for py in sorted((root / "llmbook" / "chapters").glob("*.py")):
        if py.name != "__init__.py" and py not in produced:
            reason = "どのノートブックからも書き出されないモジュールです (古い生成物?)"
            drifts.append(Drift(py, reason, None))
    readme = root / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        want = with_readme_block(text, url, branch)
        if want != text:
            reason = "README の章の表が _config.yml の repository と合っていません"
            drifts.append(Drift(readme, reason, want))
    page = root / GLOSSARY_PAGE
    want = glossary_page()
    if not page.exists() or page.read_text(encoding="utf-8") != want:
        drifts.append(Drift(page, "用語集ページが llmbook/data/glossary.yaml と合っていません"
                            if page.exists() else "用語集ページがありません", want))
    return drifts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llmbook.export",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="書き換えず、ずれがあれば一覧を出して終了コード 1")
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
