"""この本のサイトを組み立てるときだけ使う小さな Sphinx 拡張 (``_config.yml`` の extra_extensions)。

- sphinx-thebe が同じ設定スクリプトを 2 度差し込み、ブラウザのコンソールに
  「THEBE_JS_URL は宣言済み」というエラーが出るのを防ぐ (同じスクリプトは 1 度だけにする)。
- テーマの表示モードの既定値 (auto) を明示し、初回表示時のコンソールエラーを防ぐ。
"""
from __future__ import annotations

__all__ = ["setup"]


def _dedupe_scripts(app, pagename, templatename, context, doctree):  # noqa: ARG001
    files = context.get("script_files")
    if not files:
        return
    seen = set()
    unique = []
    for js in files:
        attrs = getattr(js, "attributes", {}) or {}
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    context["script_files"] = unique


def _theme_defaults(app, config):  # noqa: ARG001
    ctx = dict(config.html_context or {})
    ctx.setdefault("default_mode", "auto")
    config.html_context = ctx


def setup(app):
    app.connect("config-inited", _theme_defaults)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
