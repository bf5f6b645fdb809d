"""A-5 のアテンションの explorer (llmbook.attn_explorer)。

埋め込むデータがモデルの重みと一致すること、HTML の安全さ、日本語のエラー、ウィジェット、
JS と Python の描画の一致 (Node.js)、headless Chromium での操作を確かめる。
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch

import test_scaling_explorer as scaling_tests
from conftest import ROOT
from llmbook.attn_explorer import (
    MAX_CHARS,
    WHITE_TEXT_FROM,
    attention_explorer,
    cell_colors,
    grid_html,
    status_text,
)
from llmbook.corpus.tokenizer import CharTokenizer

EXPLORER_JS = ROOT / "llmbook" / "attn_static" / "explorer.js"
SENTENCES = ["今日は朝五時すぎに起きた。", "「ねえ、見て！」と友だちが笑った。",
             "これは、城跡のある町の話だ。"]


@pytest.fixture(scope="module")
def book(data):
    """本のトークナイザ (conftest の data) と、小さなランダムの GPT (KV キャッシュつき)。"""
    from llmbook.chapters.a5 import CachedMultiHeadAttention, gpt

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 共有の 2 コアでは 1 スレッドの方が速い
    torch.manual_seed(0)
    yield gpt(data.vocab_size, make_attn=CachedMultiHeadAttention, max_len=32), data.tokenizer
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def explorer(book):
    return attention_explorer(*book, SENTENCES)


def _embedded(page: str) -> dict:
    return json.loads(re.search(r'llmbook-attn-data">(.*?)</script>', page, re.S).group(1))


def _model_weights(model, tokenizer, sentence):
    """keep_weights を直接立てて 1 回 forward した各層の重み (h, T, T)。"""
    attns = [b.attn for b in model.blocks]
    for a in attns:
        a.keep_weights = True
    try:
        model.eval()
        with torch.no_grad():
            model(torch.tensor([tokenizer.encode(sentence)]))
        return [a.weights[0] for a in attns]
    finally:
        for a in attns:
            a.keep_weights = False


def test_embedded_weights_equal_the_model(book, explorer):
    model, tok = book
    page = explorer.html()
    data = _embedded(page)
    assert data["layers"] == 2 and data["heads"] == 4 and data["causal"] is True
    assert [e["text"] for e in data["sentences"]] == SENTENCES
    for s, entry, pub in zip(SENTENCES, data["sentences"], explorer.sentences):
        T = len(s)
        assert entry["tokens"] == list(s) == pub["tokens"]
        ref = _model_weights(model, tok, s)
        for layer in range(2):
            w = torch.tensor(pub["weights"][layer])  # (h, T, T) 小数 3 桁
            assert w.shape == (4, T, T)
            assert (w - ref[layer]).abs().max() <= 0.0005 + 1e-6
            assert torch.equal(w.triu(1), torch.zeros_like(w))  # 未来 (対角より上) は 0
            # 行の和は 1 (丸めの分だけずれる)
            assert (w.sum(-1) - 1).abs().max() <= T * 0.0005 + 1e-6
            for h in range(4):
                for q in range(T):  # JSON は q 以下の位置だけ (1/1000 単位の整数)
                    row = entry["w"][layer][h][q]
                    assert len(row) == q + 1 and all(isinstance(m, int) for m in row)
                    assert [m / 1000 for m in row] == pub["weights"][layer][h][q][: q + 1]
    # 全部が一様ではない (重みが実際にモデルから来ている)
    assert len({tuple(r) for r in data["sentences"][0]["w"][0][0][5:]}) > 1


def test_page_is_self_contained_with_unique_ids(book, explorer):
    page = explorer.html()
    other = attention_explorer(*book, SENTENCES[:1]).html()
    ids = re.findall(r'<div class="llmbook-attn" id="([^"]+)"', page)
    assert len(ids) == 1 and ids != re.findall(r'class="llmbook-attn" id="([^"]+)"', other)
    assert not re.search(r"https?:|src=|@import|url\(", page)
    assert page.count("<script") == 2 and page.count("</script>") == 2
    # JS がなくても最初の状態 (最初の文の最後のトークン) が読める
    data = _embedded(page)
    last = len(SENTENCES[0]) - 1
    assert grid_html(data, 0, last) in page
    assert "JavaScript が動かない環境" in page and 'aria-pressed="true"' in page
    assert page.count("<button") == len(SENTENCES[0])
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "2 層 × 4 ヘッド" in bundle["text/plain"]


def test_grid_marks_masked_future_and_top_key(explorer):
    data = explorer.data
    g = grid_html(data, 0, 4)
    T = len(SENTENCES[0])
    # 層 × ヘッド = 8 セル、各セルで未来の T − 5 個がマスクされ、クエリ自身に印
    assert g.count('class="llmbook-attn-cell"') == 8
    assert g.count("因果マスクで見えない") == 8 * (T - 5)
    assert g.count("llmbook-attn-q") == 8
    row = data["sentences"][0]["w"][1][2][4]
    top = max(range(5), key=lambda k: (row[k], -k))
    assert f"最大 {row[top] / 1000:.3f}: 位置 {top}" in g
    assert status_text(data, 0, 4) == ("クエリ: 位置 4「五」。"
                                       "各セルは、このトークンから各位置への重み")


def _contrast(hex_a: str, hex_b: str) -> float:
    def lum(h):
        h = h.lstrip("#")
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        ch = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in ch]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    a, b = sorted((lum(hex_a), lum(hex_b)))
    return (b + 0.05) / (a + 0.05)


def test_colours_are_one_hue_with_readable_text():
    previous = None
    for m in range(1001):
        bg, fg = cell_colors(m)
        assert _contrast(bg, fg) >= 4.5, (m, bg, fg)
        assert fg == ("#fff" if m >= WHITE_TEXT_FROM else "#000")
        rgb = [int(bg[i:i + 2], 16) for i in (1, 3, 5)]
        if previous is not None:  # 重みが大きいほど、どの成分も暗く (同じ色相の濃淡)
            assert all(x <= y for x, y in zip(rgb, previous))
        previous = rgb
    assert cell_colors(0)[0] == "#ffffff" and cell_colors(1000)[0] == "#08306b"
    assert _contrast("#eeeeee", "#666666") >= 4.5  # マスクした位置の灰色


def test_html_in_sentences_is_escaped():
    """語彙に < > & " ' がある読者のコーパスでも、文は HTML として解釈されない。"""
    from llmbook.chapters.a5 import gpt

    tok = CharTokenizer("<b>&\"'あいう/script")
    torch.manual_seed(1)
    model = gpt(tok.vocab_size, max_len=32)
    page = attention_explorer(model, tok, ["<b>あ&'\"</script>"]).html()
    assert "<b>" not in page and page.count("</script>") == 2
    assert "&lt;b&gt;あ&amp;&#x27;&quot;&lt;/script&gt;" in page  # 文の選択肢
    assert 'aria-label="位置 0「&lt;」"' in page
    assert _embedded(page)["sentences"][0]["text"] == "<b>あ&'\"</script>"


@pytest.mark.parametrize("sentences, err, match", [
    ([], ValueError, "sentences が空です"),
    (["今日は", ""], ValueError, "1 番目の文が空です"),
    ("今日は", TypeError, "文字列のリスト"),
    ([3], TypeError, "0 番目の文が文字列ではありません"),
    (["今日は<b>x"], ValueError, r"語彙にない文字があります: 「<」\(U\+003C\)、「b」"),
    (["今日は" * 11], ValueError, "32 文字以内"),  # 33 文字 > 文脈 32
    (["今"] * 9, ValueError, "文は 8 個まで"),
])
def test_bad_sentences_get_japanese_errors(book, sentences, err, match):
    with pytest.raises(err, match=match):
        attention_explorer(*book, sentences)


def test_sentence_cap_is_forty_chars_for_long_context():
    from llmbook.chapters.a5 import gpt

    tok = CharTokenizer("あい")
    model = gpt(tok.vocab_size, max_len=64, n_layers=1)
    assert len(attention_explorer(model, tok, ["あい" * 20]).data["sentences"][0]["tokens"]) == 40
    with pytest.raises(ValueError, match=f"{MAX_CHARS} 文字以内"):
        attention_explorer(model, tok, ["あ" * 41])
    with pytest.raises(TypeError, match="CharTokenizer"):
        attention_explorer(model, object(), ["あ"])


def test_widget_redraws_with_the_same_python_function(explorer):
    w = explorer.widget
    data = explorer.data
    last = len(SENTENCES[0]) - 1
    assert w.token.value == last and grid_html(data, 0, last) in w.view.value
    w.token.value = 2
    assert grid_html(data, 0, 2) in w.view.value and "位置 2「は」" in w.view.value
    w.sentence.value = 1
    assert len(w.token.options) == len(SENTENCES[1])
    assert w.token.value == len(SENTENCES[1]) - 1
    assert grid_html(data, 1, len(SENTENCES[1]) - 1) in w.view.value
    assert w.sentence.style.description_width == "initial"
    assert w.token.style.description_width == "initial"


# ---------------------------------------------------------------- JS と Python の一致

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js がない")


@needs_node
def test_js_draws_the_same_html_as_python(explorer):
    data = explorer.data
    cases = [(s, q) for s, e in enumerate(data["sentences"]) for q in range(len(e["tokens"]))]
    script = (
        "const A = require(process.argv[1]); let s = ''; process.stdin.setEncoding('utf8');"
        "process.stdin.on('data', d => s += d); process.stdin.on('end', () => {"
        " const p = JSON.parse(s); process.stdout.write(JSON.stringify({"
        " grid: p.cases.map(c => A.gridHtml(p.data, c[0], c[1])),"
        " status: p.cases.map(c => A.statusText(p.data, c[0], c[1])),"
        " color: p.ms.map(A.color), fmt: p.ms.map(A.fmt), esc: A.esc(p.esc)}));});"
    )
    ms = list(range(1001))
    proc = subprocess.run(
        ["node", "-e", script, str(EXPLORER_JS)],
        input=json.dumps({"data": data, "cases": cases, "ms": ms, "esc": "<a href='x'>&\"</a>"}),
        capture_output=True, text=True, timeout=60, check=True,
    )
    js = json.loads(proc.stdout)
    assert js["grid"] == [grid_html(data, s, q) for s, q in cases]
    assert js["status"] == [status_text(data, s, q) for s, q in cases]
    assert js["color"] == [list(cell_colors(m)) for m in ms]
    assert js["fmt"][:3] == ["0.000", "0.001", "0.002"] and js["fmt"][1000] == "1.000"
    assert js["esc"] == "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;&lt;/a&gt;"


# ---------------------------------------------------------------- headless Chromium
# A-3 の explorer のテストと同じ道具 (Chromium を起動する fixture、外への要求を止めて開く _open)
browser_context = scaling_tests.browser_context
needs_browser, _open = scaling_tests.needs_browser, scaling_tests._open


@pytest.fixture
def standalone(tmp_path, book, explorer):
    """explorer を 2 つ載せた単独の HTML ページ (3 文のものと 1 文のもの)。"""
    other = attention_explorer(*book, [SENTENCES[2]])
    path = tmp_path / "attn.html"
    path.write_text(
        '<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>attn</title></head>'
        '<body style="max-width:800px;margin:auto;font-family:sans-serif">'
        f"{explorer.html()}{other.html()}</body></html>",
        encoding="utf-8",
    )
    return path, other

def _same_grid(page, root, data, s, q):
    """ブラウザの格子が、Python の grid_html をブラウザで読んだものと同じ。"""
    parsed = page.evaluate(
        "h => { const t = document.createElement('template'); t.innerHTML = h; "
        "return t.innerHTML; }", grid_html(data, s, q))
    assert root.locator(".llmbook-attn-grid").inner_html() == parsed
    assert root.locator(".llmbook-attn-status").inner_text() == status_text(data, s, q)


@needs_browser
def test_static_page_click_and_keyboard_update_the_grid(browser_context, standalone,
                                                        explorer):
    path, other = standalone
    ctx, page, outside, errors = _open(browser_context, path)
    one, two = page.locator(".llmbook-attn").nth(0), page.locator(".llmbook-attn").nth(1)
    assert one.get_attribute("id") != two.get_attribute("id")
    assert one.locator(".llmbook-attn-nojs").is_hidden()
    data, last = explorer.data, len(SENTENCES[0]) - 1
    _same_grid(page, one, data, 0, last)
    button = one.get_by_role("button", name="位置 4「五」")
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    assert one.locator('button[aria-pressed="true"]').count() == 1
    _same_grid(page, one, data, 0, 4)
    page.keyboard.press("ArrowLeft")  # キーボードで位置 3 へ
    assert one.get_by_role("button", name="位置 3「朝」").get_attribute("aria-pressed") == "true"
    _same_grid(page, one, data, 0, 3)
    page.keyboard.press("Home")
    _same_grid(page, one, data, 0, 0)
    one.get_by_label("文").select_option("1")  # 文を変えると、ボタンが作り直される
    assert one.locator("button.llmbook-attn-tok").count() == len(SENTENCES[1])
    _same_grid(page, one, data, 1, len(SENTENCES[1]) - 1)
    one.get_by_role("button", name="位置 0「「」").click()
    _same_grid(page, one, data, 1, 0)
    _same_grid(page, two, other.data, 0, len(SENTENCES[2]) - 1)  # もう 1 つは変わらない
    assert not outside and not errors, (outside, errors)
    ctx.close()


@needs_browser
def test_static_page_without_javascript_says_so(browser_context, standalone, explorer):
    path, _ = standalone
    ctx, page, outside, _errors = _open(browser_context, path, javascript=False)
    one = page.locator(".llmbook-attn").nth(0)
    assert one.locator(".llmbook-attn-nojs").is_visible()
    assert one.locator("button.llmbook-attn-tok").first.is_disabled()
    assert one.locator(".llmbook-attn-cell").count() == 8
    assert not outside
    ctx.close()
