"""A-3「ソフトマックスのスケーリング」を手で試す表示。

カーネルではウィジェット、Web サイトでは HTML/JS で、同じものを計算して見せる。

ノートブックでは次のように使う::

    from llmbook.scaling_explorer import show_scaling_explorer
    show_scaling_explorer()            # セルの最後の式にする

1 つのクエリ q と N 個のキー k_1..k_N (成分はどれも標準正規分布、種を固定) を一度だけ作る。
次元 d_k のスコアは、先頭 d_k 成分だけの内積 (部分和) q[:d_k]·k[:d_k] とする。
こうすると q·k の分散は本文のとおり d_k に比例して増える。重みは
softmax(スコア / (√d_k で割るなら √d_k) / 温度 τ)。

表示オブジェクトは 1 つの出力に 2 つの形を持つ (クイズの ``QuizDisplay`` と同じ作り):
``application/vnd.jupyter.widget-view+json`` (ipywidgets のコア部品だけのウィジェット) と
``text/html`` (外部のファイルを読まない HTML/JS。計算は ``scaling_static/scaling.js``)。
どちらも同じスコアの表から、同じ式 (:func:`scaling_stats`) で計算する。
"""
from __future__ import annotations

import math
import uuid
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from .plotting import OKABE_ITO
from .quiz.html import safe_json

__all__ = [
    "D_K_VALUES",
    "N_KEYS",
    "TEMPERATURES",
    "ScalingDisplay",
    "fmt",
    "render_scaling_html",
    "scaling_stats",
    "score_table",
    "show_scaling_explorer",
]

#: 乱数の種・キーの数・スコアを作る最大の次元
SEED = 0
N_KEYS = 16
D_MAX = 1024
#: スライダーで選べる d_k と温度 (ウィジェットと Web サイトで同じ値を使う)
D_K_VALUES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TEMPERATURES = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

_JS_PATH = Path(__file__).resolve().parent / "scaling_static" / "scaling.js"
# 一様な重みの破線は文字と同じ色 (Okabe-Ito の黒。ダークモードでは明るい色になる)
_COLORS = {"bar": OKABE_ITO[0], "max": OKABE_ITO[1], "uniform": "currentColor"}
#: 棒グラフ (SVG) の寸法。JS も同じ値で棒の高さを計算する
_GEOM = {"width": 620, "left": 48, "base": 200, "height": 170, "step": 31}
_STYLE = {"description_width": "initial"}  # 日本語の長い説明が切れないように


# ---------------------------------------------------------------- データと計算


@lru_cache(maxsize=1)
def _partial_sums() -> np.ndarray:
    """(N_KEYS, D_MAX): 列 d-1 が、先頭 d 成分だけで計算した内積 q·k_i。"""
    rng = np.random.default_rng(SEED)
    q = rng.standard_normal(D_MAX)  # (D_MAX,)
    keys = rng.standard_normal((N_KEYS, D_MAX))  # (N, D_MAX)
    return np.cumsum(keys * q, axis=1)  # (N, D_MAX)


def score_table() -> dict[int, list[float]]:
    """スライダーの各 d_k について、N 個のキーのスコア q·k (HTML に埋め込む表と同じもの)。"""
    sums = _partial_sums()
    return {d: [float(v) for v in sums[:, d - 1]] for d in D_K_VALUES}


def _check_d_k(d_k: Any) -> int:
    ok = isinstance(d_k, Real) and not isinstance(d_k, bool) and math.isfinite(float(d_k))
    if not ok or float(d_k) != int(d_k) or not 1 <= int(d_k) <= D_MAX:
        raise ValueError(
            f"d_k には 1 以上 {D_MAX} 以下の整数を渡してください (受け取った値: {d_k!r})"
        )
    return int(d_k)


def _check_temperature(temperature: Any) -> float:
    ok = isinstance(temperature, Real) and not isinstance(temperature, bool)
    if not ok or not math.isfinite(float(temperature)) or float(temperature) <= 0:
        raise ValueError(
            f"温度 temperature には正の有限な数を渡してください (受け取った値: {temperature!r})"
        )
    return float(temperature)


def _stats_from_scores(scores: list[float], d_k: int, temperature: float,
                       scaled: bool) -> dict[str, Any]:
    """scaling.js の ``stats`` と同じ式・同じ順序の計算 (倍精度)。"""
    n = len(scores)
    div = math.sqrt(d_k) if scaled else 1.0
    logits = [s / div / temperature for s in scores]
    m = max(logits)
    e = [math.exp(x - m) for x in logits]
    total = 0.0
    for v in e:
        total += v
    p = [v / total for v in e]
    entropy, max_weight, argmax = 0.0, 0.0, 0
    for i, pi in enumerate(p):
        if pi > 0:
            entropy -= pi * math.log(pi)
        if pi > max_weight:
            max_weight, argmax = pi, i
    acc = 0.0  # ヤコビ行列 J = diag(p) - p p^T のフロベニウスノルムの 2 乗
    for i in range(n):
        for j in range(n):
            v = (p[i] if i == j else 0.0) - p[i] * p[j]
            acc += v * v
    mean = 0.0
    for x in logits:
        mean += x
    mean /= n
    vs = 0.0
    for x in logits:
        vs += (x - mean) * (x - mean)
    return {
        "logits": logits, "weights": p, "entropy": entropy, "max_weight": max_weight,
        "argmax": argmax, "jacobian_norm": math.sqrt(acc), "logit_std": math.sqrt(vs / n),
    }


def scaling_stats(d_k: int, temperature: float = 1.0, scaled: bool = True) -> dict[str, Any]:
    """次元 ``d_k``・温度 ``temperature`` での 1 つのクエリのアテンションの重みと、その要約。

    重みは softmax(q·k_i / √d_k / τ) (``scaled=False`` なら √d_k で割らない)。返す辞書:
    ``scores`` (q·k_i)、``logits`` (ソフトマックスに入れる値)、``weights`` (N 個の重み)、
    ``entropy`` (重みのエントロピー、nat。一様なら ln N)、``max_weight`` (最大の重み)、
    ``argmax``、``jacobian_norm`` (ヤコビ行列 diag(p) − p pᵀ のフロベニウスノルム。
    飽和すると 0 に近づき、勾配が流れなくなる)、``logit_std`` (ロジットの標準偏差)。
    """
    d = _check_d_k(d_k)
    t = _check_temperature(temperature)
    scaled = _check_scaled(scaled)
    scores = [float(v) for v in _partial_sums()[:, d - 1]]
    out = _stats_from_scores(scores, d, t, scaled)
    return {"d_k": d, "temperature": t, "scaled": scaled, "scores": scores, **out}


def _fixed(x: float, places: int) -> str:
    """JS の ``x.toFixed(places)`` と同じ文字列。

    2 進の正確な値を丸め、ちょうど中間なら絶対値の大きい方へ丸める (JS の規則)。
    """
    return str(Decimal(x).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


def fmt(x: float) -> str:
    """数値の表示 (scaling.js の ``fmt`` と同じ)。

    0.001 以上は小数 4 桁、それより小さければ 1.23e-5 の形。
    """
    if x == 0:
        return "0"
    if abs(x) >= 0.001:
        return _fixed(x, 4)
    d = Decimal(x)
    e = d.adjusted()
    mant = d.scaleb(-e).quantize(Decimal("0.01"), ROUND_HALF_UP)
    if abs(mant) >= 10:
        mant, e = (mant / 10).quantize(Decimal("0.01"), ROUND_HALF_UP), e + 1
    return f"{mant}e{e}"


# ---------------------------------------------------------------- 描画 (SVG と数値)


def _bars_svg(st: dict[str, Any]) -> str:
    """重みの棒グラフ (SVG)。Web サイトでは JS が同じ寸法で棒の高さを書き換える。"""
    g, n = _GEOM, len(st["weights"])
    left, base, hgt, step = g["left"], g["base"], g["height"], g["step"]
    right = left + n * step
    parts = [
        f'<svg class="llmbook-scaling-svg" viewBox="0 0 {g["width"]} {base + 44}" role="img" '
        'aria-label="1 つのクエリから 16 個のキーへのアテンションの重みの棒グラフ" '
        'style="max-width:100%;height:auto" font-size="13" fill="currentColor">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = base - tick * hgt
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="currentColor" '
            f'stroke-opacity="0.2"/>'
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{tick:g}</text>'
        )
    uy = base - hgt / n
    parts.append(
        f'<line x1="{left}" x2="{right}" y1="{uy}" y2="{uy}" stroke="{_COLORS["uniform"]}" '
        f'stroke-dasharray="5 4" stroke-width="1.5"/>'
        f'<text x="{right + 4}" y="{uy + 4}" font-size="12">一様 1/{n}</text>'
    )
    for k, w in enumerate(st["weights"]):
        x, h = left + k * step + 4, w * hgt
        fill = _COLORS["max"] if k == st["argmax"] else _COLORS["bar"]
        parts.append(
            f'<rect class="llmbook-scaling-bar" x="{x}" y="{base - h}" width="{step - 8}" '
            f'height="{h}" fill="{fill}" data-weight="{w!r}"/>'
            f'<text x="{x + (step - 8) / 2}" y="{base + 16}" text-anchor="middle" '
            f'font-size="11">k{k + 1}</text>'
        )
    mx = left + (st["argmax"] + 0.5) * step
    parts.append(
        f'<text class="llmbook-scaling-maxlabel" x="{mx}" y="{base - st["max_weight"] * hgt - 6}" '
        f'text-anchor="middle" font-size="12">{_fixed(st["max_weight"], 2)}</text>'
        f'<text x="{left + n * step / 2}" y="{base + 38}" text-anchor="middle">'
        "キー (最大の重みはオレンジ、破線は一様な重み 1/N)</text>"
        f'<text x="14" y="{base - hgt / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {base - hgt / 2})">重み</text></svg>'
    )
    return "".join(parts)


_ROWS = (
    ("entropy", "重みのエントロピー (nat)", "一様なら最大 ln 16 ≈ 2.7726、1 つに集中すると 0"),
    ("max_weight", "最大の重み", "一様なら 1/16 = 0.0625、1 つに集中すると 1"),
    ("jacobian_norm", "ヤコビ行列 diag(p) − p pᵀ のノルム", "0 に近いほど勾配が流れない"),
    ("logit_std", "ソフトマックスに入る値の標準偏差", "スコア ÷ (√d_k) ÷ τ の N 個の散らばり"),
)


def _stats_table(st: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{label}</th><td><span data-stat="{key}">{fmt(st[key])}</span></td>'
        f'<td class="llmbook-scaling-hint">{hint}</td></tr>'
        for key, label, hint in _ROWS
    )
    return (
        f'<table class="llmbook-scaling-table" aria-live="polite"><tbody>{rows}</tbody></table>'
    )


def _draw_note() -> str:
    """スコアが 1 組の乱数から来ていることの断り書き (散らばりは平均ではなく、この 1 組の値)。"""
    spread = scaling_stats(D_MAX, 1.0, False)["logit_std"]
    return (
        '<p class="llmbook-scaling-hint llmbook-scaling-draw">q と 16 個のキーは 1 組の乱数 '
        "(種を固定) で、d_k を変えても同じ乱数の先頭 d_k 成分を使います。表の値はこの 1 組のもの"
        "なので、多くの乱数で測った平均とはずれます (たとえば d_k = 1024 で割らないときの"
        f"散らばりは √1024 = 32 ではなく {spread:.0f})。</p>"
    )


def _caption(st: dict[str, Any]) -> str:
    how = "√d_k で割る" if st["scaled"] else "√d_k で割らない"
    return (
        f'<div class="llmbook-scaling-state">d_k = <span data-stat="d_k">{st["d_k"]}</span>、'
        f'温度 τ = <span data-stat="temperature">{st["temperature"]:g}</span>、{how}</div>'
    )


# ---------------------------------------------------------------- Web サイト用の HTML


_CSS = """
.llmbook-scaling{--ls-border:var(--pst-color-border,#c8ccd0);--ls-muted:var(--pst-color-text-muted,#59636e);
 --ls-focus:var(--pst-color-info,#0969da);color:var(--pst-color-text-base,inherit);
 border:1px solid var(--ls-border);border-radius:6px;padding:.6em .9em;margin:1em 0}
.llmbook-scaling-title{font-weight:bold;margin-bottom:.3em}
.llmbook-scaling-controls{display:grid;gap:.35em .8em;align-items:center;margin:.4em 0;
 grid-template-columns:max-content minmax(8em,22em) max-content}
.llmbook-scaling-controls input[type=range]{width:100%}
.llmbook-scaling-controls output{font-weight:bold;min-width:4em}
.llmbook-scaling-controls input:focus-visible{outline:3px solid var(--ls-focus);outline-offset:2px}
.llmbook-scaling-check{grid-column:1/-1}
.llmbook-scaling-table{border-collapse:collapse;margin:.3em 0}
.llmbook-scaling-table th,.llmbook-scaling-table td{border:1px solid var(--ls-border);
 padding:.15em .6em;text-align:left}
.llmbook-scaling-table td span{font-weight:bold;font-variant-numeric:tabular-nums}
.llmbook-scaling-hint,.llmbook-scaling-nojs,.llmbook-scaling-state{color:var(--ls-muted);font-size:.92em}
.llmbook-scaling-nojs{border-left:4px solid var(--ls-muted);padding-left:.5em}
"""


@lru_cache(maxsize=1)
def _js_source() -> str:
    return _JS_PATH.read_text(encoding="utf-8")


def _pick(value: Any, choices: tuple, name: str) -> tuple[int, Any]:
    """スライダーの値 ``value`` の位置と、その値そのもの (選べない値なら日本語の ValueError)。"""
    if isinstance(value, Real) and not isinstance(value, bool) and value in choices:
        i = choices.index(value)
        return i, choices[i]
    raise ValueError(
        f"{name} はスライダーの値 {', '.join(f'{c:g}' for c in choices)} から選んでください "
        f"(受け取った値: {value!r})"
    )


def _check_scaled(scaled: Any) -> bool:
    if not isinstance(scaled, (bool, np.bool_)):
        raise ValueError(f"scaled には True か False を渡してください (受け取った値: {scaled!r})")
    return bool(scaled)


def render_scaling_html(d_k: int = 64, temperature: float = 1.0, scaled: bool = False) -> str:
    """Web サイト用の HTML (外部のファイルを読まない)。最初の状態は SVG と数値に描いておく。"""
    i, d_k = _pick(d_k, D_K_VALUES, "d_k")
    j, temperature = _pick(temperature, TEMPERATURES, "温度 temperature")
    scaled = _check_scaled(scaled)
    st = scaling_stats(d_k, temperature, scaled)
    uid = f"llmbook-scaling-{uuid.uuid4().hex[:12]}"
    table = score_table()
    data = {
        "d_k": list(D_K_VALUES), "temperatures": list(TEMPERATURES),
        "scores": [table[d] for d in D_K_VALUES], "geometry": _GEOM, "colors": _COLORS,
    }
    how = "割る" if scaled else "割らない"
    checked = " checked" if scaled else ""
    controls = (
        '<div class="llmbook-scaling-controls">'
        f'<label for="{uid}-dk">キーの次元 d_k</label>'
        f'<input type="range" id="{uid}-dk" class="llmbook-scaling-dk" min="0" '
        f'max="{len(D_K_VALUES) - 1}" step="1" value="{i}" aria-valuetext="d_k = {d_k}" disabled>'
        f'<output for="{uid}-dk" data-stat="d_k">{d_k}</output>'
        f'<label for="{uid}-temp">温度 τ</label>'
        f'<input type="range" id="{uid}-temp" class="llmbook-scaling-temp" min="0" '
        f'max="{len(TEMPERATURES) - 1}" step="1" value="{j}" '
        f'aria-valuetext="温度 τ = {temperature:g}" disabled>'
        f'<output for="{uid}-temp" data-stat="temperature">{temperature:g}</output>'
        f'<label class="llmbook-scaling-check"><input type="checkbox" '
        f'class="llmbook-scaling-scaled"{checked} disabled> スコアを √d_k で割る</label></div>'
    )
    nojs = (
        '<p class="llmbook-scaling-nojs">JavaScript が動かない環境なので、スライダーは動きません。'
        f"図と数値は d_k = {d_k}、温度 τ = {temperature:g}、√d_k で{how}場合です。"
        "本の Web サイトか、Jupyter / Colab でノートブックを実行すると操作できます。</p>"
    )
    return (
        f'<div class="llmbook-scaling" id="{uid}"><style>{_CSS}</style>'
        '<div class="llmbook-scaling-title">ソフトマックスのスケーリングを試す</div>'
        f'<script type="application/json" class="llmbook-scaling-data">{safe_json(data)}</script>'
        f"{controls}{_bars_svg(st)}{_stats_table(st)}{_draw_note()}{nojs}"
        f'<script>(function(){{\n{_js_source()}\nllmbookScaling.mount("{uid}");\n}})();</script>'
        "</div>"
    )


# ---------------------------------------------------------------- カーネル用のウィジェット


class ScalingWidget:
    """ipywidgets のコア部品だけで作る explorer (スライダー 2 本とチェックボックス)。"""

    def __init__(self, d_k: int = 64, temperature: float = 1.0, scaled: bool = False):
        import ipywidgets as W

        _, d_k = _pick(d_k, D_K_VALUES, "d_k")
        _, temperature = _pick(temperature, TEMPERATURES, "温度 temperature")
        self.d_k = W.SelectionSlider(
            options=list(D_K_VALUES), value=d_k, description="キーの次元 d_k",
            style=_STYLE, continuous_update=True, layout=W.Layout(width="30em"),
        )
        self.temperature = W.SelectionSlider(
            options=[(f"{t:g}", t) for t in TEMPERATURES], value=temperature,
            description="温度 τ", style=_STYLE, layout=W.Layout(width="30em"),
        )
        self.scaled = W.Checkbox(
            value=bool(scaled), description="スコアを √d_k で割る", indent=False, style=_STYLE
        )
        self.view = W.HTML()
        title = W.HTML("<b>ソフトマックスのスケーリングを試す</b>")
        self.box = W.VBox([title, self.d_k, self.temperature, self.scaled, self.view])
        for w in (self.d_k, self.temperature, self.scaled):
            w.observe(lambda _change: self.refresh(), names="value")
        self.stats: dict[str, Any] = {}
        self.refresh()

    def refresh(self) -> None:
        self.stats = scaling_stats(self.d_k.value, self.temperature.value, self.scaled.value)
        self.view.value = (
            _caption(self.stats) + _bars_svg(self.stats) + _stats_table(self.stats) + _draw_note()
        )


class ScalingDisplay:
    """explorer の表示オブジェクト (ウィジェット + 静的 HTML)。"""

    def __init__(self, d_k: int = 64, temperature: float = 1.0, scaled: bool = False):
        _, d_k = _pick(d_k, D_K_VALUES, "d_k")
        _, temperature = _pick(temperature, TEMPERATURES, "温度 temperature")
        self.initial = (d_k, temperature, _check_scaled(scaled))
        self._widget: ScalingWidget | None = None

    @property
    def widget(self) -> ScalingWidget:
        if self._widget is None:
            self._widget = ScalingWidget(*self.initial)
        return self._widget

    def _repr_html_(self) -> str:
        return render_scaling_html(*self.initial)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = dict(self.widget.box._repr_mimebundle_() or {})
        bundle["text/html"] = render_scaling_html(*self.initial)
        d_k, t, scaled = self.initial
        bundle["text/plain"] = (
            f"ソフトマックスのスケーリングの explorer (d_k = {d_k}、温度 τ = {t:g}、"
            f"√d_k で{'割る' if scaled else '割らない'})"
        )
        return bundle


def show_scaling_explorer(d_k: int = 64, temperature: float = 1.0,
                          scaled: bool = False) -> ScalingDisplay:
    """ソフトマックスのスケーリングの explorer を表示する (セルの最後の式にする)。

    ``d_k`` は 1, 2, 4, …, 1024、``temperature`` は 0.1〜10 のスライダーの値から選ぶ。
    """
    return ScalingDisplay(d_k, temperature, scaled)
