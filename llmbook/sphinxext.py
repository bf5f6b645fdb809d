"""この本のサイトを組み立てるときだけ使う小さな Sphinx 拡張 (``_config.yml`` で読み込む)。

- sphinx-thebe が同じ設定スクリプトを 2 度差し込み、ブラウザのコンソールに
  「THEBE_JS_URL は宣言済み」というエラーが出るのを防ぐ (同じスクリプトは 1 度だけにする)。
- テーマの表示モードの既定値 (auto) を明示し、初回表示時のコンソールエラーを防ぐ。
- 日本語の検索を直す: Sphinx の日本語検索は 1 文字の語 (「層」など) を索引から落とし、
  検索窓の「自己注意」のような語も分かち書きしない。sphinx-tsegsearch (TinySegmenter で
  検索語を分ける) を土台に、1 文字の漢字・カタカナの語は索引にも検索語にも残す
  (1 文字のひらがな = 助詞などは従来どおり捨てる)。
- 章を実行するカーネルとの通信を暗号化する: ipykernel 7 は暗号化されていない TCP で動くと
  章ごとに「Kernel is running over TCP without encryption」と警告する。jupyter_client の
  ``KernelManager.transport_encryption`` の既定値を ``auto`` にして、カーネルが対応していれば
  (kernelspec の ``supported_encryption``) CurveZMQ の鍵を配る。警告を隠すのではなく、
  警告の原因をなくす。古い jupyter_client や CurveZMQ のない pyzmq では何もしない。
"""
from __future__ import annotations

import re

from sphinx.errors import ExtensionError

__all__ = ["setup"]


def _dedupe_scripts(app, pagename, templatename, context, doctree):  # noqa: ARG001
    files = context.get("script_files")
    if not files:
        return
    seen = set()
    unique = []
    for js in files:
        attrs = getattr(js, "attributes", {}) or {}
        name = str(getattr(js, "filename", js) or "")
        key = (name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    context["script_files"] = unique


def _theme_defaults(app, config):  # noqa: ARG001
    ctx = dict(config.html_context or {})
    ctx.setdefault("default_mode", "auto")
    config.html_context = ctx


_KEEP_SINGLE = re.compile(r"[\u3400-\u9fff\u30a1-\u30fa]")
_TSEG_FILTER = "return result.filter(function(s){ return s.length>1; }, result);"
_OUR_FILTER = ("return result.filter(function(s){ return s.length > 1 || "
               "/[\\u3400-\\u9fff\\u30a1-\\u30fa]/.test(s); });")


def _register_search(app):
    if app.builder.name != "html":
        return
    from sphinx_tsegsearch import SearchJapaneseWithJSSplitter as Base

    code = Base.js_splitter_code
    if _TSEG_FILTER not in code:
        raise ExtensionError("sphinx-tsegsearch の検索語分割コードが想定と違います "
                             "(版が変わった?)。llmbook/sphinxext.py を確認してください")

    class BookJapanese(Base):
        js_splitter_code = code.replace(_TSEG_FILTER, _OUR_FILTER)

        def word_filter(self, stemmed_word: str) -> bool:
            return len(stemmed_word) > 1 or bool(_KEEP_SINGLE.fullmatch(stemmed_word))

    app.add_search_language(BookJapanese)


def encrypt_kernel_transport() -> bool:
    """章を実行するカーネルの通信を (対応していれば) CurveZMQ で暗号化する。した場合は True。"""
    try:
        import zmq
        from jupyter_client.manager import KernelManager
    except ImportError:  # pragma: no cover - jupyter_client がなければ実行もしない
        return False
    trait = KernelManager.class_traits().get("transport_encryption")
    if trait is None or not zmq.has("curve"):
        return False
    trait.default_value = "auto"
    return True


def setup(app):
    encrypt_kernel_transport()
    app.setup_extension("sphinx_tsegsearch")
    app.connect("builder-inited", _register_search, priority=900)
    app.connect("config-inited", _theme_defaults)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
