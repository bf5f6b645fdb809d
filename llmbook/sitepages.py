"""リポジトリの URL に合わせて作るサイトの部品 (小さな Sphinx 拡張。``_config.yml`` で読み込む)。

URL を書くのは ``_config.yml`` の ``repository.url`` の 1 か所だけで、ここでも ``llmbook.export``
(Colab 用セルと README の表を作る) と同じ関数で読む。

- **404 ページ**: GitHub Pages は、ないアドレスを開かれると、そのアドレスのまま ``/404.html`` の
  中身を返す。アドレスの深さは決まっていないので、404 ページの CSS・JavaScript・リンクはサイトの
  根からの絶対パスで書く。その仕事は sphinx-notfound-page (PyPI) に任せ、ここでは絶対パスの頭
  (``notfound_urls_prefix``。プロジェクトサイトなら ``/<リポジトリ名>/``) と、日本語の本文
  (表紙と各章へのリンク。章の一覧は ``llmbook.book`` から) を渡す。
- **本文で使う置き換え** (MyST の substitution): ``{{ readme_link }}`` はリポジトリの README への
  リンクになる (表紙のページが使う)。
"""
from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["notfound_body", "readme_link", "setup", "urls_prefix"]

TITLE = "ページが見つかりません"


def urls_prefix(repository_url: str) -> str:
    """サイトの根の絶対パス。GitHub のプロジェクトサイトなら ``/<リポジトリ名>/``、ほかは ``/``。"""
    from llmbook.export import site_address

    site = site_address(repository_url.rstrip("/"))
    path = urlparse(site).path if site else "/"
    return path if path.endswith("/") else path + "/"


def notfound_body(prefix: str, root_uri: str = "intro.html",
                  glossary_uri: str | None = "glossary.html") -> str:
    """404 ページの本文 (HTML)。リンクはすべて ``prefix`` から始まる絶対パス。"""
    from llmbook.book import CHAPTERS, PUBLISHED

    items = [
        f'<li><a href="{html.escape(prefix)}chapters/{stem}.html">{key} {html.escape(title)}</a>'
        "</li>" for key, (stem, title) in CHAPTERS.items() if key in PUBLISHED
    ]
    if glossary_uri:
        items.append(f'<li><a href="{html.escape(prefix + glossary_uri)}">用語集</a></li>')
    return (
        f"<h1>{TITLE}</h1>\n"
        "<p>開こうとしたページは、この本のサイトにありません。アドレスが変わったか、"
        "打ち間違えたのかもしれません。</p>\n"
        f'<p><a href="{html.escape(prefix + root_uri)}">表紙 (この本について)</a> に戻るか、'
        "次の章から選んでください。左の目次や検索も使えます。</p>\n"
        f'<ul class="llmbook-404-chapters">\n{chr(10).join(items)}\n</ul>\n'
    )


def readme_link(repository_url: str, branch: str) -> str:
    """リポジトリの README.md への Markdown のリンク (GitHub の表示のページ)。"""
    return f"[README.md]({repository_url.rstrip('/')}/blob/{branch}/README.md)"


def _configure(app, config) -> None:
    from llmbook.export import read_repository

    url, branch = read_repository(Path(app.srcdir))
    config.notfound_urls_prefix = urls_prefix(url)
    config.myst_substitutions = {**(config.myst_substitutions or {}),
                                 "readme_link": readme_link(url, branch)}


def _context(app) -> list:
    """本文は章の一覧と出力ファイル名が決まってから作る (notfound の html-collect-pages より先)。"""
    prefix = app.config.notfound_urls_prefix
    root = app.builder.get_target_uri(app.config.root_doc)
    glossary = app.builder.get_target_uri("glossary") if "glossary" in app.env.all_docs else None
    app.config.notfound_context = {"title": TITLE, "body": notfound_body(prefix, root, glossary)}
    return []


def setup(app):
    app.setup_extension("notfound.extension")
    app.connect("config-inited", _configure)
    app.connect("html-collect-pages", _context, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
