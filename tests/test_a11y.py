"""アクセシビリティ: ビルドしたサイトの全ページで axe-core を実行し、重大な違反がないか確かめる。

axe-core は npm の registry から入れる (README と .ci/run):
``npm install --no-save --prefix .cache/npm axe-core@4.14.1``。
なければ skip する (LLMBOOK_REQUIRE_SITE=1 のときは失敗)。判定は impact が serious と critical
の違反が 0 件であること (コントラスト、入力やスライダーのラベル、ボタンの名前、キーボード
でスクロールできる枠など)。ページは JS が動き終わった状態 (クイズ・探索器が描かれたあと) で調べる。
"""
from __future__ import annotations

import os

import pytest

from conftest import ROOT
from test_site import SITE, _site_pages, browser, server  # noqa: F401 (fixture)

AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"

if not AXE.exists():
    if os.environ.get("LLMBOOK_REQUIRE_SITE"):
        raise RuntimeError("axe-core がありません。npm install --no-save --prefix .cache/npm "
                           "axe-core@4.14.1 を実行してください。")
    pytest.skip("axe-core がない (npm install --no-save --prefix .cache/npm axe-core@4.14.1)",
                allow_module_level=True)

RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ` +
         v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_no_serious_accessibility_violations_on_any_page(browser, server, width):  # noqa: F811
    axe = AXE.read_text(encoding="utf-8")
    found = {}
    pg = browser.new_page()
    pg.set_viewport_size({"width": width, "height": 900})
    for rel in _site_pages():
        pg.goto(f"{server}/{rel}")
        pg.wait_for_load_state("load")
        pg.wait_for_timeout(400)                 # アイコンの置き換えなど、読み込み後の JS を待つ
        pg.add_script_tag(content=axe)
        bad = pg.evaluate(RUN_AXE)
        if bad:
            found[rel] = bad
    pg.close()
    assert not found, found


def test_quiz_and_explorer_controls_are_labelled_and_keyboard_operable(browser, server):  # noqa: F811
    """クイズの入力と探索器のボタン・スライダーに名前があり、Tab とキーで操作できる。"""
    pg = browser.new_page()
    pg.goto(f"{server}/chapters/a5_causal_generation.html")
    box = pg.locator(".llmbook-attn").first
    box.wait_for()
    tok = box.locator("button.llmbook-attn-tok").nth(2)
    tok.focus()
    pg.keyboard.press("Enter")
    assert tok.get_attribute("aria-pressed") == "true"
    pg.keyboard.press("ArrowRight")
    assert box.locator("button.llmbook-attn-tok").nth(3).get_attribute("aria-pressed") == "true"
    q = pg.locator('.llmbook-q[data-qid="kv-mem-layer"]')
    field = q.locator("input")
    assert field.get_attribute("aria-label") or field.get_attribute("aria-labelledby") \
        or field.get_attribute("id") and pg.locator(f'label[for="{field.get_attribute("id")}"]')
    field.focus()
    pg.keyboard.type("1024")
    pg.keyboard.press("Tab")
    pg.keyboard.press("Enter")                   # 次のフォーカスは「採点する」のボタン
    assert "○ 正解" in q.locator(".llmbook-feedback").inner_text()
    pg.close()
