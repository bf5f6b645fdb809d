"""A-5「アテンションの行き先を見る」: トークンを選ぶと、層・ヘッドごとの重みを見せる表示。

カーネルではウィジェット、Web サイトでは HTML/JS (カーネルなし、外部のファイルなし) で見せる。
ノートブックでは次のように使う::

    from llmbook.attn_explorer import attention_explorer
    attention_explorer(model, tok, ["今日は朝五時すぎに起きた。", "「ねえ、見て！」と笑った。"])

モデルは 1 文ごとに 1 回だけ実行し (:func:`llmbook.attn_analysis.attention_maps`)、重みを
小数 3 桁に丸めて持つ。表示オブジェクトは 1 つの出力に 2 つの形を持つ (A-3 の
``scaling_explorer`` と同じ作り): ``application/vnd.jupyter.widget-view+json`` (ipywidgets) と
``text/html`` (計算済みの重みを JSON で埋め込み、``attn_static/explorer.js`` が描く)。
セルの HTML は Python の :func:`grid_html` と JS の ``gridHtml`` が同じ文字列を作る
(テストで突き合わせる)。
"""
from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .attn_analysis import attention_maps
from .quiz.html import safe_json

__all__ = [
    "MAX_CHARS",
    "MAX_SENTENCES",
    "AttentionExplorer",
    "attention_explorer",
    "cell_colors",
    "grid_html",
    "status_text",
]

#: 1 文の最大の文字数 (埋め込む JSON を小さく保つ) と、文の最大の数
MAX_CHARS = 40
MAX_SENTENCES = 8
#: 重みの色: 白 (0) から濃い青 (1) への 1 色の濃淡。濃い側では文字を白にする (WCAG 4.5:1 以上)
LIGHT, DARK = (255, 255, 255), (8, 48, 107)
WHITE_TEXT_FROM = 660  # 重み (1/1000 単位) がこれ以上なら白い文字
#: 空白などの見えない文字の表示 (JS の SHOW と同じ)
SHOW = {" ": "␣", "\u3000": "␣", "\n": "⏎", "\t": "⇥"}

_JS_PATH = Path(__file__).resolve().parent / "attn_static" / "explorer.js"
_STYLE = {"description_width": "initial"}  # 日本語の長い説明が切れないように


# ---------------------------------------------------------------- 入力の検査


def _check_sentences(tokenizer, sentences: Any, max_chars: int) -> list[str]:
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError("sentences には文字列のリストを渡してください "
                        f"(受け取ったもの: {type(sentences).__name__})。"
                        "1 文でも [\"…\"] の形にします")
    if len(sentences) == 0:
        raise ValueError("sentences が空です。見たい文を 1 つ以上、リストで渡してください")
    if len(sentences) > MAX_SENTENCES:
        raise ValueError(f"文は {MAX_SENTENCES} 個までにしてください "
                         f"(受け取った数: {len(sentences)})。埋め込むデータを小さく保つためです")
    stoi = getattr(tokenizer, "stoi", None)
    if not isinstance(stoi, dict):
        raise TypeError("tokenizer には本の CharTokenizer (stoi を持つもの) を渡してください "
                        f"(受け取ったもの: {type(tokenizer).__name__})")
    unk = getattr(tokenizer, "unk_char", "\ufffd")
    out = []
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"{i} 番目の文が文字列ではありません "
                            f"(受け取ったもの: {type(s).__name__})")
        if not s:
            raise ValueError(f"{i} 番目の文が空です。1 文字以上の文を渡してください")
        if len(s) > max_chars:
            raise ValueError(f"{i} 番目の文「{s[:12]}…」は {len(s)} 文字です。"
                             f"{max_chars} 文字以内にしてください "
                             "(モデルの文脈の長さと、埋め込むデータの大きさの上限)")
        unknown = list(dict.fromkeys(c for c in s if c not in stoi or c == unk))
        if unknown:
            names = "、".join(f"「{SHOW.get(c, c)}」(U+{ord(c):04X})" for c in unknown)
            raise ValueError(f"{i} 番目の文に、語彙にない文字があります: {names}。"
                             "訓練用テキストに出てくる文字だけで書いてください")
        out.append(s)
    return out


# ---------------------------------------------------------------- データ


@torch.no_grad()
def explorer_data(model, tokenizer, sentences: Sequence[str]) -> dict[str, Any]:
    """モデルを 1 文ごとに 1 回実行し、埋め込む JSON と同じ辞書を作る。

    ``w[l][h][q]`` は層 l・ヘッド h で、位置 q のトークンが位置 0, 1, … に置く重みを
    1/1000 単位の整数に丸めたもの。因果マスクのあるモデルでは q 以下の位置だけを持つ
    (それより後は重み 0)。
    """
    max_len = getattr(model, "max_len", None)
    if not isinstance(max_len, int):
        raise TypeError("model には DecoderLM (max_len と blocks を持つもの) を渡してください "
                        f"(受け取ったもの: {type(model).__name__})")
    sentences = _check_sentences(tokenizer, sentences, min(MAX_CHARS, max_len))
    causal = bool(getattr(model, "causal", True))
    device = next(model.parameters()).device
    entries = []
    for s in sentences:
        ids = torch.tensor([tokenizer.encode(s)], dtype=torch.long, device=device)  # (1, T)
        maps = attention_maps(model, ids)                      # 層ごとに (1, h, T, T)
        milli = [(m[0].float().cpu() * 1000).round().long() for m in maps]  # (h, T, T)
        T = len(s)
        w = [[[row[: q + 1 if causal else T].tolist() for q, row in enumerate(head)]
              for head in layer] for layer in milli]
        entries.append({"text": s, "tokens": list(s), "w": w})
    return {"layers": len(entries[0]["w"]), "heads": len(entries[0]["w"][0]), "causal": causal,
            "sentences": entries}


# ---------------------------------------------------------------- 描画 (explorer.js と同じ文字列)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _show(c: str) -> str:
    return SHOW.get(c, c)


def _fmt(m: int) -> str:
    """1/1000 単位の整数 m を小数 3 桁の文字列に (JS の fmt と同じ)。"""
    return f"{m // 1000}.{m % 1000:03d}"


def cell_colors(m: int) -> tuple[str, str]:
    """重み m (1/1000 単位) の背景色と文字色。白から濃い青への 1 色の濃淡 (JS の color と同じ)。"""
    rgb = [a - (a - b) * m // 1000 for a, b in zip(LIGHT, DARK)]  # LIGHT >= DARK (各成分)
    bg = "#" + "".join(f"{v:02x}" for v in rgb)
    return bg, "#fff" if m >= WHITE_TEXT_FROM else "#000"


def _top(row: list[int]) -> int:
    """重みが最大の位置 (同じ重みなら前の位置)。"""
    best = 0
    for k, m in enumerate(row):
        if m > row[best]:
            best = k
    return best


def status_text(data: dict[str, Any], s: int, q: int) -> str:
    """いま選んでいるトークンの説明 (画面読み上げにも伝える 1 行)。"""
    tokens = data["sentences"][s]["tokens"]
    return f"クエリ: 位置 {q}「{_show(tokens[q])}」。各セルは、このトークンから各位置への重み"


def grid_html(data: dict[str, Any], s: int, q: int) -> str:
    """文 s の位置 q のトークンについて、層 × ヘッドのセルを並べた HTML。"""
    entry = data["sentences"][s]
    tokens = entry["tokens"]
    parts = []
    for layer in range(data["layers"]):
        parts.append(f'<div class="llmbook-attn-layer"><div class="llmbook-attn-lname">'
                     f'層 {layer}</div><div class="llmbook-attn-heads">')
        for head in range(data["heads"]):
            row = entry["w"][layer][head][q]
            parts.append(f'<div class="llmbook-attn-cell" role="group" aria-label="層 {layer}・'
                         f'ヘッド {head}"><div class="llmbook-attn-hname">ヘッド {head}</div>'
                         '<div class="llmbook-attn-keys">')
            for k, c in enumerate(tokens):
                tok = _esc(_show(c))
                mark = " llmbook-attn-q" if k == q else ""
                if k < len(row):
                    bg, fg = cell_colors(row[k])
                    parts.append(f'<span class="llmbook-attn-k{mark}" style="background:{bg};'
                                 f'color:{fg}" title="位置 {k}「{tok}」: {_fmt(row[k])}">'
                                 f"{tok}</span>")
                else:
                    parts.append(f'<span class="llmbook-attn-k llmbook-attn-m{mark}" '
                                 f'title="位置 {k}「{tok}」: 因果マスクで見えない">{tok}</span>')
            top = _top(row)
            parts.append(f'</div><div class="llmbook-attn-top">最大 {_fmt(row[top])}: 位置 {top}'
                         f"「{_esc(_show(tokens[top]))}」</div></div>")
        parts.append("</div></div>")
    return "".join(parts)


def _legend(causal: bool) -> str:
    steps = "".join(
        f'<span class="llmbook-attn-k" style="background:{bg};color:{fg}">{m / 1000:g}</span>'
        for m in (0, 250, 500, 750, 1000) for bg, fg in [cell_colors(m)]
    )
    masked = ('、<span class="llmbook-attn-k llmbook-attn-m">字</span> は因果マスクで見えない'
              "未来の位置 (重み 0)" if causal else "")
    return (f'<p class="llmbook-attn-legend">重み {steps} (濃いほど大きい)、'
            f'<span class="llmbook-attn-k llmbook-attn-q">字</span> はクエリ自身{masked}。'
            "各セルの下の行は、重みが最大の位置とその重み。</p>")


_CSS = """
.llmbook-attn{--la-border:var(--pst-color-border,#c8ccd0);--la-muted:var(--pst-color-text-muted,#59636e);
 --la-focus:var(--pst-color-info,#0969da);color:var(--pst-color-text-base,inherit);
 border:1px solid var(--la-border);border-radius:6px;padding:.6em .9em;margin:1em 0}
.llmbook-attn-title{font-weight:bold;margin-bottom:.3em}
.llmbook-attn-controls{display:flex;flex-wrap:wrap;gap:.3em .6em;align-items:center}
.llmbook-attn-controls select{max-width:100%;font-size:1em;padding:.15em}
.llmbook-attn-tokens{display:flex;flex-wrap:wrap;gap:.25em;margin:.5em 0}
.llmbook-attn-tok{min-width:2.1em;padding:.15em .3em;font-size:1.05em;line-height:1.4;
 cursor:pointer;border:1px solid var(--la-border);border-radius:4px;background:transparent;
 color:inherit}
.llmbook-attn-tok[aria-pressed=true]{background:#08306b;color:#fff;border-color:#08306b;
 font-weight:bold}
.llmbook-attn-tok:disabled{cursor:default}
.llmbook-attn button:focus-visible,.llmbook-attn select:focus-visible{
 outline:3px solid var(--la-focus);outline-offset:2px}
.llmbook-attn-layer{display:flex;flex-wrap:wrap;gap:.2em .4em;margin:.35em 0}
.llmbook-attn-lname{font-weight:bold;padding-top:.3em;flex:0 0 3em}
.llmbook-attn-heads{flex:1 1 17em;min-width:0;display:grid;gap:.35em;
 grid-template-columns:repeat(auto-fit,minmax(min(100%,8.5em),1fr))}
.llmbook-attn-cell{border:1px solid var(--la-border);border-radius:4px;padding:.25em .35em;
 min-width:0}
.llmbook-attn-hname,.llmbook-attn-top{font-size:.85em;color:var(--la-muted)}
.llmbook-attn-top{font-variant-numeric:tabular-nums}
.llmbook-attn-keys{display:flex;flex-wrap:wrap;gap:2px;margin:.15em 0}
.llmbook-attn-k{display:inline-block;min-width:1.35em;text-align:center;line-height:1.45;
 border:1px solid transparent;border-radius:2px}
.llmbook-attn-m{background:#eee;color:#666;border:1px dashed #888}
.llmbook-attn-q{outline:2px solid #D55E00;outline-offset:0}
.llmbook-attn-legend .llmbook-attn-k{min-width:2.2em;font-size:.85em;border-color:var(--la-border)}
.llmbook-attn-legend,.llmbook-attn-nojs,.llmbook-attn-status{color:var(--la-muted);
 font-size:.92em;margin:.3em 0}
.llmbook-attn-nojs{border-left:4px solid var(--la-muted);padding-left:.5em}
"""


@lru_cache(maxsize=1)
def _js_source() -> str:
    return _JS_PATH.read_text(encoding="utf-8")


def _token_buttons(data: dict[str, Any], s: int, q: int, disabled: bool = True) -> str:
    off = " disabled" if disabled else ""
    return "".join(
        f'<button type="button" class="llmbook-attn-tok" data-pos="{k}" '
        f'aria-pressed="{"true" if k == q else "false"}" '
        f'aria-label="位置 {k}「{_esc(_show(c))}」"{off}>{_esc(_show(c))}</button>'
        for k, c in enumerate(data["sentences"][s]["tokens"])
    )


def render_explorer_html(data: dict[str, Any]) -> str:
    """Web サイト用の HTML (外部のファイルを読まない)。最初の状態 (文 0 の最後のトークン) は
    Python で描いておき、JS がトークンのボタンと文の選択で描き直す。"""
    uid = f"llmbook-attn-{uuid.uuid4().hex[:12]}"
    q = len(data["sentences"][0]["tokens"]) - 1
    options = "".join(f'<option value="{i}">{_esc(e["text"])}</option>'
                      for i, e in enumerate(data["sentences"]))
    nojs = ('<p class="llmbook-attn-nojs">JavaScript が動かない環境なので、ボタンは動きません。'
            "セルは最初の文の最後のトークンについての重みです。本の Web サイトか、"
            "Jupyter / Colab でノートブックを実行すると操作できます。</p>")
    return (
        f'<div class="llmbook-attn" id="{uid}"><style>{_CSS}</style>'
        '<div class="llmbook-attn-title">アテンションの行き先を見る</div>'
        f'<script type="application/json" class="llmbook-attn-data">{safe_json(data)}</script>'
        f'<div class="llmbook-attn-controls"><label for="{uid}-sent">文</label>'
        f'<select id="{uid}-sent" class="llmbook-attn-sent" disabled>{options}</select></div>'
        '<div class="llmbook-attn-tokens" role="group" aria-label="クエリにするトークン '
        f'(左右の矢印キーでも移動)">{_token_buttons(data, 0, q)}</div>'
        f'<p class="llmbook-attn-status" aria-live="polite">{_esc(status_text(data, 0, q))}</p>'
        f'<div class="llmbook-attn-grid">{grid_html(data, 0, q)}</div>'
        f"{_legend(data['causal'])}{nojs}"
        f'<script>(function(){{\n{_js_source()}\nllmbookAttn.mount("{uid}");\n}})();</script>'
        "</div>"
    )


# ---------------------------------------------------------------- カーネル用のウィジェット


class AttentionWidget:
    """ipywidgets のコア部品だけで作る探索器 (文の Dropdown とトークンの ToggleButtons)。"""

    def __init__(self, data: dict[str, Any]):
        import ipywidgets as W

        self.data = data
        self.sentence = W.Dropdown(
            options=[(e["text"], i) for i, e in enumerate(data["sentences"])], value=0,
            description="文", style=_STYLE, layout=W.Layout(width="max-content"),
        )
        self.token = W.ToggleButtons(description="クエリにするトークン", style={
            **_STYLE, "button_width": "2.4em"})
        self.view = W.HTML()
        title = W.HTML(f"<style>{_CSS}</style><b>アテンションの行き先を見る</b>")
        legend = W.HTML(_legend(data["causal"]))
        self.box = W.VBox([title, self.sentence, self.token, self.view, legend])
        self._set_tokens()
        self.sentence.observe(lambda _change: self._set_tokens(), names="value")
        self.token.observe(lambda _change: self.refresh(), names="value")

    def _set_tokens(self) -> None:
        tokens = self.data["sentences"][self.sentence.value]["tokens"]
        self.token.options = [(_show(c), k) for k, c in enumerate(tokens)]  # 値は位置 0 になる
        self.token.tooltips = [f"位置 {k}「{_show(c)}」" for k, c in enumerate(tokens)]
        self.token.value = len(tokens) - 1  # 最初は最後のトークン (静的な HTML と同じ)
        self.refresh()

    def refresh(self) -> None:
        s, q = self.sentence.value, self.token.value
        if q is None:
            return
        self.view.value = (
            f'<div class="llmbook-attn"><p class="llmbook-attn-status">'
            f"{_esc(status_text(self.data, s, q))}</p>"
            f'<div class="llmbook-attn-grid">{grid_html(self.data, s, q)}</div></div>'
        )


class AttentionExplorer:
    """アテンションの探索器の表示オブジェクト (ウィジェット + 静的 HTML)。

    ``sentences`` は文ごとに ``{"text", "tokens", "weights"}`` (weights は
    [層][ヘッド][クエリ][キー] の小数 3 桁の重み。因果マスクで見えない位置は 0)。
    """

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.layers, self.heads, self.causal = data["layers"], data["heads"], data["causal"]
        self._widget: AttentionWidget | None = None

    @property
    def sentences(self) -> list[dict[str, Any]]:
        out = []
        for e in self.data["sentences"]:
            T = len(e["tokens"])
            weights = [[[[row[k] / 1000 if k < len(row) else 0.0 for k in range(T)]
                         for row in head] for head in layer] for layer in e["w"]]
            out.append({"text": e["text"], "tokens": list(e["tokens"]), "weights": weights})
        return out

    @property
    def widget(self) -> AttentionWidget:
        if self._widget is None:
            self._widget = AttentionWidget(self.data)
        return self._widget

    def html(self) -> str:
        return render_explorer_html(self.data)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = dict(self.widget.box._repr_mimebundle_() or {})
        bundle["text/html"] = self.html()
        n = len(self.data["sentences"])
        bundle["text/plain"] = (f"アテンションの探索器 ({n} 文、{self.layers} 層 × "
                                f"{self.heads} ヘッド)")
        return bundle


def attention_explorer(model, tokenizer, sentences: list[str]) -> AttentionExplorer:
    """文ごとにモデルを 1 回実行し、トークンを選ぶと層・ヘッドごとの重みを見せる表示を作る。

    ``model`` は A-3 の MultiHeadAttention (か A-5 の CachedMultiHeadAttention) で作った
    DecoderLM、``tokenizer`` は本の CharTokenizer。文は 1〜8 個、各 40 文字
    (とモデルの文脈の長さ) 以内で、語彙にある文字だけ。セルの最後の式にする。
    """
    return AttentionExplorer(explorer_data(model, tokenizer, sentences))
