"""公開の仕組み: GitHub Pages のワークフロー、404 ページ、リポジトリの URL から作るリンク。

ワークフロー (.github/workflows/pages.yml) は .ci/run と同じ手順で本をビルドする。両方を読んで、
コマンドが同じ並びであることを確かめる (どちらかだけを直すとここで失敗する)。
"""
from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT
from llmbook.book import CHAPTERS, PUBLISHED
from llmbook.export import read_repository
from llmbook.sitepages import notfound_body, readme_link, urls_prefix

WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
CI_RUN = ROOT / ".ci" / "run"


def _commands(script: str) -> list[str]:
    """シェルスクリプトのコマンドの行 (空行・コメント・echo を除き、前後の空白を落とす)。"""
    lines = (line.strip() for line in script.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "echo "))]


def ci_build_commands() -> list[str]:
    """.ci/run のうち、システムのパッケージからビルドまで (テストの前まで) のコマンド。"""
    text = CI_RUN.read_text(encoding="utf-8")
    start = text.index('echo "== システムのパッケージ')
    end = text.index('echo "== テスト')
    return _commands(text[start:end])


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def workflow_build_commands() -> list[str]:
    steps = workflow()["jobs"]["build"]["steps"]
    return [cmd for step in steps if "run" in step for cmd in _commands(step["run"])]


def test_workflow_builds_the_book_exactly_like_ci_run():
    ci = ci_build_commands()
    assert "jupyter-book build . -W -n --keep-going" in ci and "ruff check ." in ci, ci
    assert any("pip install" in c and "-r requirements.txt" in c for c in ci), ci
    assert workflow_build_commands() == ci


def test_command_parser_sees_a_drift():
    """比べ方そのものの確認: 1 行でも違えば等しくならない。"""
    ci = ci_build_commands()
    drifted = "\n".join(ci).replace("-W -n --keep-going", "-n")
    assert _commands(drifted) != ci
    assert _commands("# コメント\necho hi\n\n  ruff check .  \n") == ["ruff check ."]


def test_workflow_publishes_to_pages_on_push_to_main():
    wf = workflow()
    on = wf.get("on", wf.get(True))  # PyYAML は YAML 1.1 の on を True と読む
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    assert wf["concurrency"]["group"]
    uses = {step["uses"].split("@")[0]: step for job in wf["jobs"].values()
            for step in job["steps"] if "uses" in step}
    for action in ("actions/configure-pages", "actions/upload-pages-artifact",
                   "actions/deploy-pages"):
        assert action in uses, action
    upload = uses["actions/upload-pages-artifact"]["with"]
    assert upload["path"] == "_build/html"
    assert upload["include-hidden-files"] is True   # .nojekyll を落とさない (v4 以降の既定は除外)
    assert wf["jobs"]["deploy"]["needs"] == "build"
    assert wf["jobs"]["deploy"]["environment"]["name"] == "github-pages"
    # .ci/run と同じ Debian の apt (chromium・fonts-noto-cjk) が使えるコンテナで、root で動かす
    assert wf["jobs"]["build"]["container"].startswith("python:3.11")


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def test_site_extensions_and_theme_options():
    sphinx = _config()["sphinx"]
    ext = sphinx["extra_extensions"]
    assert "llmbook.sitepages" in ext          # 404 ページと README へのリンク
    assert "sphinx.ext.githubpages" in ext     # _build/html/.nojekyll
    # html_theme_options は html: と repository: から作られた設定に足す (置き換えると
    # リポジトリのボタンやロケットのボタンが消える)
    assert sphinx["recursive_update"] is True
    text = sphinx["config"]["html_theme_options"]["search_bar_text"]
    assert re.search(r"[\u3040-\u30ff\u3400-\u9fff]", text), text
    req = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^sphinx-notfound-page==\d+\.\d+(\.\d+)?\s", req, re.M), "版を固定する"


@pytest.mark.parametrize(
    "url, prefix",
    [
        ("https://github.com/llm-intro-ja/transformer-basics", "/transformer-basics/"),
        ("https://github.com/someone/my-fork/", "/my-fork/"),
        ("https://gitlab.com/someone/book", "/"),   # GitHub 以外はサイトの根を / とみなす
    ],
)
def test_urls_prefix_follows_repository_url(url, prefix):
    assert urls_prefix(url) == prefix


def test_404_links_start_with_the_prefix_from_config():
    url, branch = read_repository(ROOT)
    prefix = urls_prefix(url)
    assert prefix == "/" + url.rstrip("/").rsplit("/", 1)[1] + "/"
    body = notfound_body(prefix)
    hrefs = re.findall(r'href="([^"]+)"', body)
    assert hrefs and all(h.startswith(prefix) for h in hrefs), hrefs
    for key in PUBLISHED:
        stem, title = CHAPTERS[key]
        assert f'href="{prefix}chapters/{stem}.html">{key} {title}<' in body
    assert f'href="{prefix}intro.html"' in body and f'href="{prefix}glossary.html"' in body
    assert "ページが見つかりません" in body
    assert readme_link(url, branch) == f"[README.md]({url}/blob/{branch}/README.md)"


def test_intro_links_readme_and_does_not_promise_buttons_it_lacks():
    intro = (ROOT / "intro.md").read_text(encoding="utf-8")
    assert "{{ readme_link }}" in intro
    assert "`README.md` のとおり" not in intro
    assert "各ページ上部" not in intro and "各章のページの上部" in intro


def test_built_site_has_nojekyll_and_404():
    site = ROOT / "_build" / "html"
    if not (site / "intro.html").exists():
        pytest.skip("サイトが未ビルド (jupyter-book build . を先に実行)")
    assert (site / ".nojekyll").exists()
    page = (site / "404.html").read_text(encoding="utf-8")
    prefix = urls_prefix(read_repository(ROOT)[0])
    assert '<html lang="ja"' in page and "ページが見つかりません" in page
    # CSS・JavaScript・リンクは、どの深さのアドレスで返されても届く絶対パス
    for ref in re.findall(r'(?:src|href)="([^"#][^"]*)"', page):
        assert ref.startswith((prefix, "https://")), ref
