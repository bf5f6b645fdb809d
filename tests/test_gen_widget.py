"""A-5 の生成のウィジェットと、その静的な双子 (llmbook.gen_widget)。

静的な表とウィジェットのボタンが ``generate`` と同じ文章を出すこと、悪い入力が例外にならず
日本語の文で知らされること、HTML の安全さを確かめる。
"""
from __future__ import annotations

import html
import re

import pytest
import torch

import test_attn_explorer as attn_tests
from llmbook.corpus.tokenizer import CharTokenizer
from llmbook.gen_widget import (
    DEFAULT_SETTINGS,
    continue_text,
    generation_widget,
    settings_label,
)

N = 24  # 生成する文字数 (文脈 32 を超えるので、読み直し (プレフィル) の道も通る)
PROMPTS = ["今日は", "これは、城跡のある町"]


# 本のトークナイザと、小さなランダムの GPT (KV キャッシュつき、文脈 32)。explorer のテストと同じ
book = attn_tests.book


@pytest.fixture(scope="module")
def display(book):
    return generation_widget(*book, prompts=PROMPTS, n_chars=N, seed=3)


def _reference(model, tok, prompt, seed, **kw):
    """generate を直接呼んだ続き (ウィジェットを通さない)。"""
    from llmbook.chapters.a5 import generate

    ids = torch.tensor([tok.encode(prompt)])
    out = generate(model, ids, N, generator=torch.Generator().manual_seed(seed), use_cache=True,
                   **kw)
    return tok.decode(out[0, ids.shape[1]:].tolist())


def _cells(page):
    """表の本体: 行ごとに (見出し, [セルの HTML, …])。"""
    body = re.search(r"<tbody>(.*)</tbody>", page, re.S).group(1)
    return [(m.group(1), re.findall(r"<td[^>]*>(.*?)</td>", m.group(2), re.S))
            for m in re.finditer(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', body, re.S)]


def test_static_table_equals_generate(book, display):
    model, tok = book
    page = display._repr_mimebundle_()["text/html"]
    rows = _cells(page)
    assert [r[0] for r in rows] == ["貪欲法 (top-k 1)", "温度 τ 0.7", "温度 τ 1", "温度 τ 1.5",
                                    "温度 τ 1・top-k 10", "温度 τ 1・top-p 0.9"]
    texts = {}
    for (label, cells), s in zip(rows, DEFAULT_SETTINGS):
        for prompt, cell in zip(PROMPTS, cells):
            ref = _reference(model, tok, prompt, 3, temperature=s.get("temperature", 1.0),
                             top_k=s.get("top_k"), top_p=s.get("top_p"))
            assert len(ref) == N
            assert cell == (f'<span class="llmbook-gen-prompt">{html.escape(prompt)}</span>'
                            f"{html.escape(ref)}"), label
            texts[label, prompt] = ref
    assert len(set(texts.values())) > len(PROMPTS)  # 選び方で文章が変わる
    # 表示のたびに作り直しても同じ (種を固定している)
    assert display.html() == page


def test_page_is_static_and_says_how_to_run(display):
    page = display.html()
    assert not re.search(r"https?:|src=|@import|url\(|<script", page)
    assert "静的" in page and "ノートブック" in page and "seed = 3" in page
    assert f"各 {N} 文字" in page
    bundle = display._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "6 通りの選び方 × 2 個のプロンプト" in bundle["text/plain"]


@pytest.mark.parametrize("row", range(len(DEFAULT_SETTINGS)))
def test_button_gives_the_same_text_as_the_table(display, row):
    s = DEFAULT_SETTINGS[row]
    w = display.widget
    w.prompt.value = PROMPTS[1]
    w.temperature.value = s.get("temperature", 1.0)
    w.top_k.value = s.get("top_k") or 0
    w.top_p.value = s.get("top_p") or 1.0
    w.n_chars.value = N
    w.seed.value = 3
    w.button.click()
    assert w.error is None
    cell = _cells(display.html())[row][1][1]  # 設定 row・2 つ目のプロンプト
    assert w.text == html.unescape(cell.split("</span>", 1)[1])
    assert settings_label(w.settings()["temperature"], w.settings()["top_k"],
                          w.settings()["top_p"]) == _cells(display.html())[row][0]
    assert html.escape(w.text) in w.output.value and 'role="alert"' not in w.output.value


def test_widget_controls(display):
    w = display.widget
    assert (w.temperature.min, w.temperature.max) == (0.1, 2.0)
    assert (w.top_p.min, w.top_p.max) == (0.05, 1.0)
    assert w.top_k.min == 0 and w.button.description == "生成"
    for c in (w.prompt, w.temperature, w.top_k, w.top_p, w.n_chars, w.seed):
        assert c.style.description_width == "initial"
    w.top_k.value, w.top_p.value = 0, 1.0
    assert w.settings()["top_k"] is None and w.settings()["top_p"] is None  # 0 と 1 は使わない


@pytest.mark.parametrize("prompt, seed, match", [
    ("", 0, "プロンプトが空です"),
    ("今日は<b>", 0, "語彙にない文字があります: 「<」、「b」、「>」"),
    ("今日は" * 11, 0, "max_len = 32 を超えています"),
    ("今日は", -1, "乱数の種 seed は 0 以上"),
])
def test_bad_input_shows_a_message_without_raising(display, prompt, seed, match):
    w = display.widget
    w.prompt.value, w.seed.value = prompt, seed
    w.temperature.value, w.top_k.value, w.top_p.value = 1.0, 0, 1.0
    w.button.click()  # 例外にならない
    assert w.text is None and match in w.error
    assert 'role="alert"' in w.output.value and html.escape(match) in w.output.value


def test_unexpected_errors_are_shown_too(display, monkeypatch):
    import llmbook.gen_widget as gw

    def boom(*a, **k):
        raise RuntimeError("壊れた")

    monkeypatch.setattr(gw, "continue_text", boom)
    w = display.widget
    w.prompt.value, w.seed.value = "今日は", 0
    w.button.click()
    assert w.text is None and "生成できませんでした" in w.error and "壊れた" in w.output.value


@pytest.mark.parametrize("kwargs, err, match", [
    ({"prompts": ["今日は<"]}, ValueError, "語彙にない文字があります: 「<」"),
    ({"prompts": "今日は"}, ValueError, "1〜3 個のプロンプト"),
    ({"prompts": []}, ValueError, "1〜3 個のプロンプト"),
    ({"prompts": [""]}, ValueError, "プロンプトが空です"),
    ({"n_chars": 0}, ValueError, "n_chars は 1 以上"),
    ({"seed": 1.5}, ValueError, "seed は 0 以上"),
    ({"static_settings": [{"temperature": 0}]}, ValueError, "温度 temperature は正の数"),
    ({"static_settings": [{"top_p": 1.5}]}, ValueError, "top_p は 0 より大きく 1 以下"),
    ({"static_settings": [{"top_k": 0}]}, ValueError, "top_k は 1 以上"),
    ({"static_settings": [{"temp": 1.0}]}, ValueError, "知らないキー"),
    ({"static_settings": {"top_k": 1}}, TypeError, "リスト"),
])
def test_bad_arguments_get_japanese_errors(book, kwargs, err, match):
    with pytest.raises(err, match=match):
        generation_widget(*book, **kwargs)


def test_model_without_cache_is_refused():
    from llmbook.chapters.a5 import gpt

    tok = CharTokenizer("あいう")
    with pytest.raises(TypeError, match="CachedMultiHeadAttention"):
        generation_widget(gpt(tok.vocab_size), tok, prompts=["あ"])
    with pytest.raises(TypeError, match="DecoderLM"):
        continue_text(object(), tok, "あ")


def test_html_in_prompts_and_samples_is_escaped():
    """語彙に < > & がある読者のコーパスでも、プロンプトも生成した文字も HTML にならない。"""
    from llmbook.chapters.a5 import CachedMultiHeadAttention, gpt

    tok = CharTokenizer("<b>&\"'")
    torch.manual_seed(2)
    model = gpt(tok.vocab_size, make_attn=CachedMultiHeadAttention, max_len=16, n_layers=1)
    d = generation_widget(model, tok, prompts=["<b>"], n_chars=30,
                          static_settings=[{"temperature": 2.0, "label": "<i>熱い</i>"}])
    page = d.html()
    assert "<b>" not in page and "<i>" not in page
    assert "プロンプト「&lt;b&gt;」" in page and "&lt;i&gt;熱い&lt;/i&gt;" in page
    sample = continue_text(model, tok, "<b>", n_chars=30, temperature=2.0)
    assert html.escape(sample) in page and set(sample) & set("<>&")  # 特殊な文字も生成された
