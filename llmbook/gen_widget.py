"""A-5「文章を生成してみる」: プロンプトと選び方 (温度・top-k・top-p) を変えて生成する表示。

カーネルではウィジェット (ボタンで生成)、Web サイトでは固定した設定の生成例の表 (JS なし)。
ノートブックでは次のように使う::

    from llmbook.gen_widget import generation_widget
    generation_widget(model, tok, prompts=["今日は", "これは、"], n_chars=60, seed=0)

どちらの形も同じ関数 :func:`continue_text` (中身は ``llmbook.chapters.a5.generate``、
KV キャッシュあり、種を固定した ``torch.Generator``) で生成するので、同じ設定・同じ種なら
表とウィジェットの文章は一致する。
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .a5_tools import check_sampling

__all__ = [
    "DEFAULT_PROMPTS",
    "DEFAULT_SETTINGS",
    "MAX_CHARS",
    "GenerationDisplay",
    "GenerationWidget",
    "continue_text",
    "generation_widget",
    "settings_label",
]

#: 静的な表の既定の設定 (貪欲法、温度 3 通り、top-k、top-p)
DEFAULT_SETTINGS = (
    {"top_k": 1},
    {"temperature": 0.7},
    {"temperature": 1.0},
    {"temperature": 1.5},
    {"top_k": 10},
    {"top_p": 0.9},
)
DEFAULT_PROMPTS = ("今日は", "これは、")
#: 1 回に生成する文字数の上限
MAX_CHARS = 500
_KEYS = {"temperature", "top_k", "top_p", "label"}
_STYLE = {"description_width": "initial"}  # 日本語の長い説明が切れないように


# ---------------------------------------------------------------- 入力の検査と生成


def _check_model(model) -> None:
    from .chapters.a5 import CachedMultiHeadAttention

    blocks = getattr(model, "blocks", None)
    if not isinstance(model, torch.nn.Module) or blocks is None \
            or not isinstance(getattr(model, "max_len", None), int):
        raise TypeError("model には DecoderLM を渡してください "
                        f"(受け取ったもの: {type(model).__name__})")
    if not all(isinstance(getattr(b, "attn", None), CachedMultiHeadAttention) for b in blocks):
        raise TypeError("KV キャッシュで生成するので、model は "
                        "gpt(V, make_attn=CachedMultiHeadAttention) のように作ってください")


def _check_prompt(tokenizer, prompt: Any, max_len: int) -> list[int]:
    if not isinstance(prompt, str):
        raise TypeError("プロンプトは文字列で渡してください "
                        f"(受け取ったもの: {type(prompt).__name__})")
    if not prompt:
        raise ValueError("プロンプトが空です。1 文字以上を入れてください")
    stoi = getattr(tokenizer, "stoi", None)
    if not isinstance(stoi, dict):
        raise TypeError("tokenizer には本の CharTokenizer (stoi を持つもの) を渡してください "
                        f"(受け取ったもの: {type(tokenizer).__name__})")
    unk = getattr(tokenizer, "unk_char", "\ufffd")
    unknown = list(dict.fromkeys(c for c in prompt if c not in stoi or c == unk))
    if unknown:
        names = "、".join(f"「{c}」" if c.strip() else f"U+{ord(c):04X}" for c in unknown)
        ascii_hint = ("半角の空白は語彙にありません (全角の空白「　」は使えます)。"
                      if " " in unknown and "\u3000" in stoi else "")
        raise ValueError(f"プロンプトに、語彙にない文字があります: {names}。{ascii_hint}"
                         "訓練用テキストに出てくる文字だけで書いてください")
    if len(prompt) > max_len:
        raise ValueError(f"プロンプト ({len(prompt)} 文字) がモデルの文脈の長さ "
                         f"max_len = {max_len} を超えています。プロンプトを短くしてください")
    return tokenizer.encode(prompt)


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} は {lo} 以上 {hi} 以下の整数にしてください "
                         f"(受け取った値: {value!r})")
    return int(value)


@torch.no_grad()
def continue_text(model, tokenizer, prompt: str, *, n_chars: int = 60, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
    """prompt の続きを n_chars 文字生成し、続きの部分だけを返す (ウィジェットと表で共通)。

    ``llmbook.chapters.a5.generate`` を KV キャッシュありで呼び、乱数は種 ``seed`` の
    ``torch.Generator`` からだけ引く。``top_k=1`` は貪欲法。入力が悪ければ日本語の
    ValueError / TypeError。
    """
    from .chapters.a5 import generate

    _check_model(model)
    ids = _check_prompt(tokenizer, prompt, model.max_len)
    n_chars = _check_int("生成する文字数 n_chars", n_chars, 1, MAX_CHARS)
    seed = _check_int("乱数の種 seed", seed, 0, 2**63 - 1)
    check_sampling(temperature, top_k, top_p)
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    prompt_ids = torch.tensor([ids], dtype=torch.long, device=device)      # (1, T0)
    out = generate(model, prompt_ids, n_chars, temperature=temperature, top_k=top_k,
                   top_p=top_p, generator=gen, use_cache=True)            # (1, T0 + n_chars)
    return tokenizer.decode(out[0, len(ids):].tolist())


def _check_settings(settings: Any) -> list[dict[str, Any]]:
    if isinstance(settings, Mapping) or not isinstance(settings, Sequence) or not settings:
        raise TypeError("static_settings には、設定の辞書 (temperature・top_k・top_p・label) を"
                        "1 つ以上並べたリストを渡してください")
    out = []
    for i, s in enumerate(settings):
        if not isinstance(s, Mapping):
            raise TypeError(f"static_settings の {i} 番目が辞書ではありません "
                            f"(受け取ったもの: {type(s).__name__})")
        extra = sorted(set(s) - _KEYS)
        if extra:
            raise ValueError(f"static_settings の {i} 番目に知らないキー {extra} があります。"
                             f"使えるのは {sorted(_KEYS)} です")
        d = {"temperature": s.get("temperature", 1.0), "top_k": s.get("top_k"),
             "top_p": s.get("top_p")}
        check_sampling(d["temperature"], d["top_k"], d["top_p"])
        d["label"] = str(s.get("label") or settings_label(**d))
        out.append(d)
    return out


def settings_label(temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> str:
    """設定の名前 (表の行の見出し)。top_k = 1 は貪欲法。"""
    if top_k == 1:
        return "貪欲法 (top-k 1)"
    parts = [f"温度 τ {temperature:g}"]
    if top_k is not None:
        parts.append(f"top-k {top_k}")
    if top_p is not None:
        parts.append(f"top-p {top_p:g}")
    return "・".join(parts)


# ---------------------------------------------------------------- Web サイト用の表


_CSS = """
.llmbook-gen{--lg-border:var(--pst-color-border,#c8ccd0);--lg-muted:var(--pst-color-text-muted,#59636e);
 color:var(--pst-color-text-base,inherit);border:1px solid var(--lg-border);border-radius:6px;
 padding:.6em .9em;margin:1em 0}
.llmbook-gen-title{font-weight:bold;margin-bottom:.3em}
.llmbook-gen-scroll{overflow-x:auto}
.llmbook-gen table{border-collapse:collapse;margin:.3em 0;width:100%}
.llmbook-gen caption{caption-side:top;text-align:left;font-size:.92em;padding-bottom:.2em}
.llmbook-gen th,.llmbook-gen td{border:1px solid var(--lg-border);padding:.25em .5em;
 text-align:left;vertical-align:top}
.llmbook-gen th[scope=row]{white-space:nowrap;font-weight:normal}
.llmbook-gen td{min-width:12em;white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.6}
@media (max-width:640px){.llmbook-gen thead{display:none}
 .llmbook-gen table,.llmbook-gen tbody,.llmbook-gen tr,.llmbook-gen th,.llmbook-gen td,
 .llmbook-gen caption{display:block}
 .llmbook-gen tr{margin-bottom:.5em}.llmbook-gen th[scope=row]{font-weight:bold}
 .llmbook-gen td::before{content:attr(data-prompt);display:block;font-size:.85em;
 color:var(--lg-muted)}}
.llmbook-gen-prompt{font-weight:bold;text-decoration:underline;text-decoration-thickness:2px}
.llmbook-gen-out{white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.6;margin:.4em 0;
 border-left:4px solid var(--lg-border);padding-left:.6em}
.llmbook-gen-error{color:#b00020;font-weight:bold;margin:.4em 0}
.llmbook-gen-hint{color:var(--lg-muted);font-size:.92em}
"""


def _sample_html(prompt: str, text: str) -> str:
    return (f'<span class="llmbook-gen-prompt">{html.escape(prompt)}</span>'
            f"{html.escape(text)}")


def render_table_html(samples: list[list[str]], prompts: list[str],
                      settings: list[dict[str, Any]], n_chars: int, seed: int) -> str:
    """設定 × プロンプトの生成例の表 (JS なし)。samples[i][j] は設定 i・プロンプト j の続き。"""
    head = "".join(f'<th scope="col">プロンプト「{html.escape(p)}」</th>' for p in prompts)
    rows = "".join(
        f'<tr><th scope="row">{html.escape(s["label"])}</th>'
        + "".join(f'<td data-prompt="プロンプト「{html.escape(p)}」">{_sample_html(p, t)}</td>'
                  for p, t in zip(prompts, row)) + "</tr>"
        for s, row in zip(settings, samples)
    )
    note = (f"このページは静的なので、生成例はページを作ったときに固定の設定で作ったものです "
               f"(各 {n_chars} 文字、乱数の種 seed = {seed}。下線がプロンプト)。プロンプトや温度を"
               "変えて試すには、ノートブックを Jupyter / Colab で開いて実行し、このセルの"
               "ウィジェットで「生成」を押してください。同じ設定と種なら同じ文章になります。")
    return (f'<div class="llmbook-gen"><style>{_CSS}</style>'
            '<div class="llmbook-gen-title">文章を生成してみる: 選び方による違い</div>'
            f'<p class="llmbook-gen-hint">{note}</p><div class="llmbook-gen-scroll"><table>'
            "<caption>選び方 (行) とプロンプト (列) ごとの生成例</caption>"
            f'<thead><tr><th scope="col">選び方</th>{head}</tr></thead><tbody>{rows}</tbody>'
            "</table></div></div>")


# ---------------------------------------------------------------- カーネル用のウィジェット


class GenerationWidget:
    """プロンプト・温度・top-k・top-p・長さ・種を選び、「生成」ボタンで続きを作るウィジェット。"""

    def __init__(self, model, tokenizer, *, prompt: str = "", n_chars: int = 60, seed: int = 0):
        import ipywidgets as W

        self.model, self.tokenizer = model, tokenizer
        wide = W.Layout(width="32em")
        self.prompt = W.Text(value=prompt, description="プロンプト", style=_STYLE, layout=wide)
        self.temperature = W.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05,
                                         description="温度 τ", style=_STYLE, layout=wide)
        self.top_k = W.IntSlider(value=0, min=0, max=50, description="top-k (0 = 使わない)",
                                 style=_STYLE, layout=wide)
        self.top_p = W.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05,
                                   description="top-p (1 = 使わない)", style=_STYLE, layout=wide)
        self.n_chars = W.IntSlider(value=min(max(n_chars, 1), 200), min=1, max=200,
                                   description="生成する文字数", style=_STYLE, layout=wide)
        self.seed = W.IntText(value=seed, description="乱数の種 seed", style=_STYLE)
        self.button = W.Button(description="生成", button_style="primary",
                               tooltip="プロンプトの続きを生成する")
        self.output = W.HTML(f'<style>{_CSS}</style><div class="llmbook-gen-hint">'
                             "「生成」を押すと、プロンプトの続きがここに出ます。top-k 1 は"
                             "貪欲法です。</div>")
        title = W.HTML("<b>文章を生成してみる</b>")
        self.box = W.VBox([title, self.prompt, self.temperature, self.top_k, self.top_p,
                           self.n_chars, self.seed, self.button, self.output])
        self.button.on_click(lambda _b: self.run())
        self.text: str | None = None   # 最後に生成した続き (失敗したら None)
        self.error: str | None = None  # 最後のエラーの文 (成功したら None)

    def settings(self) -> dict[str, Any]:
        """いまのウィジェットの値を continue_text の引数にする (0 と 1 は「使わない」)。"""
        # スライダーの値は刻み (0.05) に丸める (0.9 が 0.9000000000000001 にならないように)
        top_p = round(float(self.top_p.value), 4)
        return {"temperature": round(float(self.temperature.value), 4),
                "top_k": int(self.top_k.value) or None,
                "top_p": None if math.isclose(top_p, 1.0) else top_p,
                "n_chars": int(self.n_chars.value), "seed": self.seed.value}

    def run(self) -> None:
        """生成して表示する。悪い入力は例外にせず、日本語の文をウィジェットに出す。"""
        prompt = self.prompt.value
        try:
            self.text = continue_text(self.model, self.tokenizer, prompt, **self.settings())
            self.error = None
        except (ValueError, TypeError) as e:
            self.text, self.error = None, str(e)
        except Exception as e:  # noqa: BLE001  ウィジェットの中では例外を投げず、知らせる
            self.text, self.error = None, f"生成できませんでした ({type(e).__name__}: {e})"
        if self.error is not None:
            body = f'<div class="llmbook-gen-error" role="alert">⚠ {html.escape(self.error)}</div>'
        else:
            s = self.settings()
            label = settings_label(s["temperature"], s["top_k"], s["top_p"])
            body = (f'<div class="llmbook-gen-out">{_sample_html(prompt, self.text)}</div>'
                    f'<div class="llmbook-gen-hint">{html.escape(label)}、{s["n_chars"]} 文字、'
                    f"seed = {s['seed']} (下線がプロンプト)</div>")
        self.output.value = f'<style>{_CSS}</style><div class="llmbook-gen">{body}</div>'


class GenerationDisplay:
    """生成の表示オブジェクト (ウィジェット + 静的な生成例の表)。"""

    def __init__(self, model, tokenizer, *, static_settings=None, prompts=None,
                 n_chars: int = 60, seed: int = 0):
        _check_model(model)
        self.model, self.tokenizer = model, tokenizer
        self.n_chars = _check_int("生成する文字数 n_chars", n_chars, 1, MAX_CHARS)
        self.seed = _check_int("乱数の種 seed", seed, 0, 2**63 - 1)
        self.settings = _check_settings(DEFAULT_SETTINGS if static_settings is None
                                        else static_settings)
        prompts = DEFAULT_PROMPTS if prompts is None else prompts
        if isinstance(prompts, str) or not isinstance(prompts, Sequence) \
                or not 1 <= len(prompts) <= 3:
            raise ValueError("prompts には 1〜3 個のプロンプトをリストで渡してください "
                             "(1 個でも [\"今日は\"] の形にします)")
        prompts = list(prompts)
        for p in prompts:
            _check_prompt(tokenizer, p, model.max_len)
        self.prompts = prompts
        self._widget: GenerationWidget | None = None

    def samples(self) -> list[list[str]]:
        """表の中身: samples[i][j] は設定 i・プロンプト j の続き (表示のたびに生成する)。"""
        return [[continue_text(self.model, self.tokenizer, p, n_chars=self.n_chars,
                               temperature=s["temperature"], top_k=s["top_k"], top_p=s["top_p"],
                               seed=self.seed) for p in self.prompts] for s in self.settings]

    def html(self) -> str:
        return render_table_html(self.samples(), self.prompts, self.settings, self.n_chars,
                                 self.seed)

    @property
    def widget(self) -> GenerationWidget:
        if self._widget is None:
            self._widget = GenerationWidget(self.model, self.tokenizer, prompt=self.prompts[0],
                                            n_chars=self.n_chars, seed=self.seed)
        return self._widget

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = dict(self.widget.box._repr_mimebundle_() or {})
        bundle["text/html"] = self.html()
        bundle["text/plain"] = (f"文章の生成のウィジェット (静的な表: {len(self.settings)} 通りの"
                                f"選び方 × {len(self.prompts)} 個のプロンプト、seed = {self.seed})")
        return bundle


def generation_widget(model, tokenizer, *, static_settings=None, prompts=None, n_chars: int = 60,
                      seed: int = 0) -> GenerationDisplay:
    """文章を生成するウィジェットと、その静的な双子 (生成例の表) を作る。セルの最後の式にする。

    ``model`` は ``gpt(V, make_attn=CachedMultiHeadAttention)`` のような KV キャッシュを使える
    DecoderLM。``static_settings`` は表の行 (辞書 {temperature, top_k, top_p, label} のリスト、
    既定は貪欲法・τ 0.7・τ 1.0・τ 1.5・top-k 10・top-p 0.9)、``prompts`` は表の列 (1〜3 個)。
    """
    return GenerationDisplay(model, tokenizer, static_settings=static_settings, prompts=prompts,
                             n_chars=n_chars, seed=seed)
