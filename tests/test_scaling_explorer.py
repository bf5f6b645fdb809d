"""A-3 のソフトマックスのスケーリングの explorer。

Python の計算、JS との一致、ウィジェット、headless Chromium での静的ページを確かめる。
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from conftest import ROOT
from llmbook.scaling_explorer import (
    D_K_VALUES,
    N_KEYS,
    TEMPERATURES,
    fmt,
    scaling_stats,
    score_table,
    show_scaling_explorer,
)

SCALING_JS = ROOT / "llmbook" / "scaling_static" / "scaling.js"
SETTINGS = [
    (d, t, s) for d in (1, 4, 64, 1024) for t in (0.1, 1.0, 10.0) for s in (False, True)
] + [(3, 0.37, True), (777, 2.5, False)]


def _torch_reference(d_k, temperature, scaled):
    """定義どおりに作り直した q・キーから、torch でスコア・重み・ヤコビ行列を計算する。"""
    rng = np.random.default_rng(0)
    q = torch.tensor(rng.standard_normal(1024))
    keys = torch.tensor(rng.standard_normal((N_KEYS, 1024)))
    scores = keys[:, :d_k] @ q[:d_k]  # (N,)
    logits = scores / (math.sqrt(d_k) if scaled else 1.0) / temperature
    p = torch.softmax(logits, dim=-1)
    jac = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, dim=-1), logits)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return scores, logits, p, jac, entropy


@pytest.mark.parametrize("d_k, temperature, scaled", SETTINGS)
def test_stats_equal_torch(d_k, temperature, scaled):
    st = scaling_stats(d_k, temperature, scaled)
    scores, logits, p, jac, entropy = _torch_reference(d_k, temperature, scaled)
    assert np.allclose(st["scores"], scores.numpy(), rtol=1e-12, atol=1e-9)
    assert np.allclose(st["logits"], logits.numpy(), rtol=1e-12, atol=1e-9)
    assert np.allclose(st["weights"], p.numpy(), rtol=1e-9, atol=1e-12)
    assert abs(sum(st["weights"]) - 1) < 1e-12
    assert st["entropy"] == pytest.approx(entropy.item(), rel=1e-9, abs=1e-12)
    assert st["max_weight"] == pytest.approx(p.max().item(), rel=1e-12)
    assert st["argmax"] == int(p.argmax())
    assert st["jacobian_norm"] == pytest.approx(torch.linalg.norm(jac).item(), rel=1e-7, abs=1e-12)
    assert st["logit_std"] == pytest.approx(logits.std(unbiased=False).item(), rel=1e-9)


def test_scaling_keeps_softmax_alive_and_no_scaling_saturates():
    """本文の主張: 割らないと d_k とともに飽和して勾配が消え、√d_k で割ると消えない。"""
    big = scaling_stats(1024, 1.0, scaled=False)
    assert big["max_weight"] > 0.99 and big["jacobian_norm"] < 1e-3
    assert big["logit_std"] > 10 * scaling_stats(4, 1.0, scaled=False)["logit_std"]
    for d in D_K_VALUES:
        st = scaling_stats(d, 1.0, scaled=True)
        assert st["entropy"] > 0.5 * math.log(N_KEYS) and st["jacobian_norm"] > 0.2, d
        assert 0.1 < st["logit_std"] < 3, d
    # 温度を上げると一様に近づき、下げると飽和する
    assert scaling_stats(64, 10.0)["entropy"] > scaling_stats(64, 0.1)["entropy"]


def test_score_table_is_what_stats_use():
    table = score_table()
    assert list(table) == list(D_K_VALUES)
    for d in D_K_VALUES:
        assert len(table[d]) == N_KEYS and table[d] == scaling_stats(d)["scores"]


@pytest.mark.parametrize("call, match", [
    (lambda: scaling_stats(0), "d_k には 1 以上"),
    (lambda: scaling_stats(-4), "d_k には 1 以上"),
    (lambda: scaling_stats(2.5), "d_k には 1 以上"),
    (lambda: scaling_stats(5000), "d_k には 1 以上"),
    (lambda: scaling_stats("64"), "d_k には 1 以上"),
    (lambda: scaling_stats(None), "d_k には 1 以上"),
    (lambda: scaling_stats(True), "d_k には 1 以上"),
    (lambda: scaling_stats(float("nan")), "d_k には 1 以上"),
    (lambda: scaling_stats(64, 0), "温度 temperature には正の"),
    (lambda: scaling_stats(64, -1.0), "温度 temperature には正の"),
    (lambda: scaling_stats(64, float("inf")), "温度 temperature には正の"),
    (lambda: scaling_stats(64, "1"), "温度 temperature には正の"),
    (lambda: scaling_stats(64, 1.0, "yes"), "scaled には True か False"),
    (lambda: show_scaling_explorer(d_k=3), "d_k はスライダーの値"),
    (lambda: show_scaling_explorer(d_k=True), "d_k はスライダーの値"),
    (lambda: show_scaling_explorer(temperature=0.4), "温度 temperature はスライダーの値"),
    (lambda: show_scaling_explorer(temperature="1"), "温度 temperature はスライダーの値"),
    (lambda: show_scaling_explorer(scaled=1), "scaled には True か False"),
])
def test_bad_input_gets_japanese_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_integral_float_d_k_is_accepted():
    assert scaling_stats(64.0)["d_k"] == 64 and scaling_stats(np.int64(64))["d_k"] == 64


def test_mimebundle_has_widget_and_html_with_unique_ids():
    bundle = show_scaling_explorer()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    page = bundle["text/html"]
    ids = re.findall(r'<div class="llmbook-scaling" id="([^"]+)"', page)
    again = show_scaling_explorer()._repr_html_()
    other = re.findall(r'class="llmbook-scaling" id="([^"]+)"', again)
    assert len(ids) == 1 and ids != other
    # 外部に何も読みに行かない (CDN も画像も)
    assert not re.search(r"https?:|src=|@import|url\(", page)
    # 埋め込んだ表は Python の表と同じ数値 (JSON の往復で値が変わらない)
    data = json.loads(re.search(r'llmbook-scaling-data">(.*?)</script>', page).group(1))
    assert data["scores"] == [score_table()[d] for d in D_K_VALUES]
    assert data["d_k"] == list(D_K_VALUES) and data["temperatures"] == list(TEMPERATURES)
    # JS なしでも最初の状態が読める
    st = scaling_stats(64, 1.0, scaled=False)
    assert f'data-stat="entropy">{fmt(st["entropy"])}<' in page
    assert "JavaScript が動かない環境" in page
    # 温度は τ (T は本ではトークンの数)
    assert "温度 τ" in page and "温度 T" not in page and "温度 T" not in bundle["text/plain"]


def test_note_says_the_spread_is_one_random_draw():
    """d_k = 1024 の散らばりはこの 1 組の乱数の値 (平均の √d_k = 32 ではない) と断る。"""
    spread = scaling_stats(1024, 1.0, False)["logit_std"]
    assert abs(spread - 32) >= 0.5  # 丸めても 32 と見分けられる (種が変われば知らせる)
    note = f"√1024 = 32 ではなく {spread:.0f}"
    assert note in show_scaling_explorer()._repr_html_()
    w = show_scaling_explorer().widget
    assert note in w.view.value and "1 組の乱数" in w.view.value
    assert "温度 τ" in w.temperature.description


def test_widget_redraws_when_values_change():
    w = show_scaling_explorer(d_k=64, temperature=1.0, scaled=False).widget
    before = w.view.value
    assert fmt(scaling_stats(64, 1.0, False)["entropy"]) in before
    w.d_k.value = 1024
    st = scaling_stats(1024, 1.0, False)
    assert w.stats["d_k"] == 1024 and fmt(st["jacobian_norm"]) in w.view.value
    w.scaled.value = True
    st = scaling_stats(1024, 1.0, True)
    assert w.stats["scaled"] and fmt(st["entropy"]) in w.view.value
    w.temperature.value = 0.1
    assert fmt(scaling_stats(1024, 0.1, True)["entropy"]) in w.view.value
    assert "d_k = <span data-stat=\"d_k\">1024</span>" in w.view.value
    assert w.d_k.style.description_width == "initial"
    assert "温度 τ = <span" in w.view.value


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js がない")


def _node(expr: str, payload) -> list:
    script = (
        "const S = require(process.argv[1]); let s = ''; process.stdin.setEncoding('utf8');"
        "process.stdin.on('data', d => s += d); process.stdin.on('end', () => {"
        f" const cases = JSON.parse(s); process.stdout.write(JSON.stringify({expr})); }});"
    )
    proc = subprocess.run(
        ["node", "-e", script, str(SCALING_JS)], input=json.dumps(payload),
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(proc.stdout)


@needs_node
def test_js_stats_equal_python():
    settings = [(d, t, s) for d in D_K_VALUES for t in (0.1, 0.7, 1.0, 10.0) for s in (False, True)]
    cases = [{"scores": score_table()[d], "d": d, "t": t, "s": s} for d, t, s in settings]
    js = _node("cases.map(c => S.stats(c.scores, c.d, c.t, c.s))", cases)
    assert len(js) == len(settings)
    for (d, t, s), got in zip(settings, js):
        py = scaling_stats(d, t, s)
        for key in ("entropy", "max_weight", "jacobian_norm", "logit_std"):
            assert abs(got[key] - py[key]) <= 1e-9, (d, t, s, key, got[key], py[key])
        assert got["argmax"] == py["argmax"]
        assert np.abs(np.array(got["weights"]) - py["weights"]).max() <= 1e-9
        assert np.abs(np.array(got["logits"]) - py["logits"]).max() <= 1e-9 * max(
            1, np.abs(py["logits"]).max()
        )


@needs_node
def test_js_number_format_equals_python():
    values = [
        0.0, -0.0, 1.0, 0.5, 2.772588722239781, 0.03125, 0.00125, 0.001, 0.0009999, 0.00099996,
        1e-20, 4.97e-8, 9.995e-6, 9.996e-6, -0.123456, 123.45678, 0.06255, 1 / 3, 2 / 3, 42.08295,
    ]
    values += [st[k] for d in D_K_VALUES for st in [scaling_stats(d, 1.0, False)]
               for k in ("entropy", "max_weight", "jacobian_norm")]
    assert _node("cases.map(S.fmt)", values) == [fmt(v) for v in values]
    assert fmt(0.03125) == "0.0313" and fmt(1e-20) == "1.00e-20" and fmt(0.0009999) == "1.00e-3"


# ---------------------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Chromium がない (apt-get install chromium fonts-noto-cjk)"
)


@pytest.fixture
def standalone(tmp_path):
    """explorer を 2 つ載せた単独の HTML ページ (d_k = 64 割らない / d_k = 4 割る)。"""
    a = show_scaling_explorer()._repr_mimebundle_()["text/html"]
    b = show_scaling_explorer(d_k=4, temperature=1.0, scaled=True)._repr_mimebundle_()["text/html"]
    path = tmp_path / "scaling.html"
    path.write_text(
        '<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>scaling</title></head>'
        f'<body style="max-width:760px;margin:auto;font-family:sans-serif">{a}{b}</body></html>',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def browser_context():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def _open(browser, path, *, javascript=True):
    ctx = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 900, "height": 1300}
    )
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    return ctx, page, outside, errors


def _shown(root, key):
    return root.locator(f'.llmbook-scaling-table [data-stat="{key}"]').inner_text()


def _weights(root):
    return [float(x) for x in root.locator("rect.llmbook-scaling-bar").evaluate_all(
        "els => els.map(e => e.getAttribute('data-weight'))")]


def _assert_matches(root, d_k, temperature, scaled):
    st = scaling_stats(d_k, temperature, scaled)
    for key in ("entropy", "max_weight", "jacobian_norm", "logit_std"):
        assert _shown(root, key) == fmt(st[key]), key
    assert np.abs(np.array(_weights(root)) - st["weights"]).max() <= 1e-9


@needs_browser
def test_static_page_slider_redraws_without_kernel(browser_context, standalone):
    ctx, page, outside, errors = _open(browser_context, standalone)
    one, two = page.locator(".llmbook-scaling").nth(0), page.locator(".llmbook-scaling").nth(1)
    assert one.get_attribute("id") != two.get_attribute("id")
    assert one.locator(".llmbook-scaling-nojs").is_hidden()
    _assert_matches(one, 64, 1.0, False)
    _assert_matches(two, 4, 1.0, True)
    heights = one.locator("rect.llmbook-scaling-bar").evaluate_all(
        "els => els.map(e => e.getAttribute('height'))")
    dk = one.get_by_label("キーの次元 d_k")  # ラベル付きの <input type=range>
    dk.focus()
    page.keyboard.press("ArrowRight")  # キーボードで 64 -> 128
    assert dk.get_attribute("aria-valuetext") == "d_k = 128"
    _assert_matches(one, 128, 1.0, False)
    page.keyboard.press("Home")  # 1
    assert one.locator('output[data-stat="d_k"]').inner_text() == "1"
    _assert_matches(one, 1, 1.0, False)
    assert one.locator("rect.llmbook-scaling-bar").evaluate_all(
        "els => els.map(e => e.getAttribute('height'))") != heights
    one.get_by_label("温度 τ").fill("0")  # 0.1
    _assert_matches(one, 1, 0.1, False)
    assert one.get_by_label("温度 τ").get_attribute("aria-valuetext") == "温度 τ = 0.1"
    page.keyboard.press("End")  # d_k はそのまま、温度 10
    _assert_matches(one, 1, 10.0, False)
    _assert_matches(two, 4, 1.0, True)  # もう 1 つは変わらない
    two.get_by_label("スコアを √d_k で割る").uncheck()
    _assert_matches(two, 4, 1.0, False)
    _assert_matches(one, 1, 10.0, False)
    assert not outside and not errors, (outside, errors)
    page.screenshot(path=str(standalone.with_suffix(".png")), full_page=True)
    ctx.close()


@needs_browser
def test_static_page_without_javascript_says_so_and_shows_initial_state(
    browser_context, standalone
):
    ctx, page, outside, errors = _open(browser_context, standalone, javascript=False)
    one = page.locator(".llmbook-scaling").nth(0)
    note = one.locator(".llmbook-scaling-nojs")
    assert note.is_visible() and "d_k = 64" in note.inner_text()
    assert one.get_by_label("キーの次元 d_k").is_disabled()
    _assert_matches(one, 64, 1.0, False)  # サーバー側で描いた最初の状態
    assert not outside
    ctx.close()
