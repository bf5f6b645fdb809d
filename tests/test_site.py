"""ビルドした Web サイトを headless Chromium で開き、読者と同じ操作でクイズを確かめる。

先に ``jupyter-book build .`` が必要。サイトがなければ skip する (CI は .ci/run が
LLMBOOK_REQUIRE_SITE=1 を付けて実行するので、そこでは skip ではなく失敗になる)。
MathJax もサイトに同梱しているので (sphinx-mathjax-offline)、どのページも外へ 1 つも要求を出さない。
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading

import pytest

from conftest import ROOT

SITE = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not (SITE / "chapters" / "a6_glossary_review.html").exists():
    if os.environ.get("LLMBOOK_REQUIRE_SITE"):
        raise RuntimeError(
            "_build/html がありません。jupyter-book build . を先に実行してください。"
        )
    pytest.skip("サイトが未ビルド (jupyter-book build . を先に実行)", allow_module_level=True)

if not os.path.exists(CHROMIUM):
    if os.environ.get("LLMBOOK_REQUIRE_SITE"):
        raise RuntimeError(
            "Chromium がありません (Debian: apt-get install chromium fonts-noto-cjk)。"
        )
    pytest.skip(
        "Chromium がない (apt-get install chromium fonts-noto-cjk)", allow_module_level=True
    )

playwright = pytest.importorskip("playwright.sync_api")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE))
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True,
            viewport={"width": 1280, "height": 900},
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser, server):
    pg = browser.new_page()
    errors: list[str] = []

    def on_console(msg):
        if (
            msg.type == "error"
            and "ERR_NAME_NOT_RESOLVED" not in msg.text
            and "favicon" not in msg.text
        ):
            errors.append(msg.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    pg.goto(server + "/chapters/a6_glossary_review.html")
    pg.evaluate("localStorage.clear()")
    pg.reload()
    pg.wait_for_selector(".llmbook-quiz-body")
    yield pg
    assert not [e for e in errors if "404" not in e], errors
    pg.close()


def quiz(pg, quiz_id):
    return pg.locator(f'.llmbook-quiz[data-quiz="{quiz_id}"]')


def question(pg, qid):
    return pg.locator(f'.llmbook-q[data-qid="{qid}"]')


def test_page_shows_glossary_and_all_quizzes(page):
    assert page.locator(".llmbook-quiz").count() == 12
    assert page.locator(".llmbook-quiz-fallback").count() == 0  # JS が描画した
    # 用語集は HTML の表示 (Sphinx の glossary は用語集のページ glossary.html にある)
    assert page.locator(".llmbook-glossary [id^='llmbook-glossary-']").count() == 20
    for q in range(1, 11):
        assert quiz(page, f"q{q}").locator(".llmbook-q").count() >= 2
    assert page.locator(".llmbook-summary .llmbook-summary-table tbody tr").count() == 12
    # 公開済みの章への「関連する章」はリンク (いまは全章が公開済み)
    assert (
        quiz(page, "q1").locator(".llmbook-ref a").first.get_attribute("href")
        == "a1_language_models.html"
    )
    assert (
        quiz(page, "q5").locator(".llmbook-ref a").first.get_attribute("href")
        == "a3_multi_head_attention.html"
    )
    assert (
        quiz(page, "q8").locator(".llmbook-ref a").first.get_attribute("href")
        == "a5_causal_generation.html"
    )
    assert page.locator(".llmbook-glossary a[href*='a1_language_models']").count() >= 3
    # 図 (PNG) が実行結果として載っている
    assert page.locator("img[src*='_images/']").count() >= 4


def test_numeric_wrong_then_right_with_score(page):
    q = question(page, "q5-sqrt")
    q.locator("input").fill("7")
    q.locator("button.llmbook-submit").click()
    fb = q.locator(".llmbook-feedback")
    assert "× 不正解" in fb.inner_text() and "正解 8" in fb.inner_text()
    assert fb.get_attribute("aria-live") == "polite"
    q.locator("input").fill("８")
    q.locator("input").press("Enter")  # Enter でも採点できる
    assert "○ 正解" in fb.inner_text()
    assert (
        "自動採点 最高 1 / 2 点 (最新 1 点)"
        in quiz(page, "q5").locator(".llmbook-score").inner_text()
    )
    assert "自動採点 最高 1 /" in page.locator(".llmbook-summary .llmbook-score").inner_text()
    q.locator("input").fill("7")  # あとから間違えても最高点は残り、最新の得点と並べて見せる
    q.locator("button.llmbook-submit").click()
    assert (
        "自動採点 最高 1 / 2 点 (最新 0 点)"
        in quiz(page, "q5").locator(".llmbook-score").inner_text()
    )


def test_ime_composition_enter_does_not_submit(page):
    q = question(page, "glossary-term-softmax")
    q.locator("input").fill("そふとまっくす")
    q.locator("input").evaluate(
        "el => el.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', keyCode: 229, "
        "isComposing: true, bubbles: true}))"
    )
    assert q.locator(".llmbook-feedback").inner_text() == ""
    q.locator("input").press("Enter")
    assert "○ 正解" in q.locator(".llmbook-feedback").inner_text()


def test_single_choice_explains_why(page):
    q = question(page, "q6-why")
    # 誤り (表示順は混ぜてあるので文で選ぶ)
    q.locator("label", has_text="訓練で知識がたまる").click()
    q.locator("button.llmbook-submit").click()
    text = q.locator(".llmbook-feedback").inner_text()
    assert "× 不正解" in text and "固定" in text and "正解「" in text


def test_multi_matching_and_ordering(page):
    q = question(page, "q10-changes")
    for text in ("Pre-LN", "RoPE", "GELU"):
        q.locator("label", has_text=text).click()
    q.locator("button.llmbook-submit").click()
    assert "○ 正解" in q.locator(".llmbook-feedback").inner_text()
    for box in q.locator("input[type=checkbox]").all():  # 全部に印を付けると 0 点
        box.check()
    q.locator("button.llmbook-submit").click()
    assert "× 不正解" in q.locator(".llmbook-feedback").inner_text()

    m = page.locator(".llmbook-quiz[data-quiz='glossary-t2d'] .llmbook-q").first
    selects = m.locator("select")
    for i in range(selects.count()):
        selects.nth(i).select_option(str(i))
    m.locator("button.llmbook-submit").click()
    assert "○ 正解" in m.locator(".llmbook-feedback").inner_text()
    selects.nth(0).select_option(str(1))
    m.locator("button.llmbook-submit").click()
    assert (
        "△ 一部正解" in m.locator(".llmbook-feedback").inner_text()
        or "× 不正解" in m.locator(".llmbook-feedback").inner_text()
    )

    o = question(page, "q2-history")
    o.locator("button.llmbook-submit").click()  # 最初の並びは必ず正解と違う
    assert "正しい順" in o.locator(".llmbook-feedback").inner_text()
    items = lambda: o.locator("ol.llmbook-order li span").all_inner_texts()  # noqa: E731
    correct = ["出現回数を数える", "ゲートで", "アテンションつき", "再帰を使わない"]
    for target, prefix in enumerate(correct):
        while not items()[target].startswith(prefix):
            pos = next(i for i, t in enumerate(items()) if t.startswith(prefix))
            # キーボードで ↑
            o.locator("ol.llmbook-order li").nth(pos).locator("button").first.press("Enter")
    o.locator("button.llmbook-submit").click()
    assert "○ 正解" in o.locator(".llmbook-feedback").inner_text()


def test_choices_are_shown_in_the_order_computed_in_python(page):
    """選択肢の表示順は Python (bank.py) が決めて HTML に埋め込んだ順。ウィジェットと同じになる。"""
    from llmbook.quiz import load_bank

    for qid, quiz_id in (("q1-output", "q1"), ("q2-facts", "q2"), ("q7-cause", "q7")):
        q = load_bank("a6").quiz(quiz_id).question(qid)
        want = [f"{'ABCDEFGHIJKL'[k]}. {q['choices'][j]['text']}" for k, j in enumerate(q["order"])]
        assert question(page, qid).locator(".llmbook-choice label").all_inner_texts() == want


def test_known_wrong_short_answer_explains_why(page):
    q = question(page, "glossary-term-causal-attention-mask")
    q.locator("input").fill("カジュアルマスク")
    q.locator("button.llmbook-submit").click()
    text = q.locator(".llmbook-feedback").inner_text()
    assert "× 不正解" in text and "causal" in text and "casual" in text


def test_code_starter_is_styled_as_code(page):
    pre = question(page, "q8-code").locator("pre.llmbook-code").first
    assert "monospace" in pre.evaluate("el => getComputedStyle(el).fontFamily")


def test_essay_is_self_assessed(page):
    q = question(page, "q7-essay")
    q.locator("button", has_text="模範解答と要点を見る").click()
    assert "まず自分の言葉で" in q.locator(".llmbook-feedback").inner_text()
    assert q.locator(".llmbook-model").is_hidden()
    q.locator("textarea").fill("並べ替えても出力が入れ替わるだけなので、位置を教える必要がある。")
    q.locator("button", has_text="模範解答と要点を見る").click()
    assert q.locator(".llmbook-model").is_visible()
    q.locator(".llmbook-model input[type=checkbox]").nth(0).check()
    q.locator("button.llmbook-submit").click()
    assert "自己採点: 要点 1/5" in q.locator(".llmbook-feedback").inner_text()
    assert (
        "記述 (自己採点) 最高 0.2 / 1 点"
        in quiz(page, "q7").locator(".llmbook-score").inner_text()
    )


def test_progress_survives_reload_and_reset(page):
    q = question(page, "q4-dk")
    q.locator("input").fill("64")
    q.locator("button.llmbook-submit").click()
    page.reload()
    page.wait_for_selector(".llmbook-quiz-body")
    assert "前回の記録: ○ 正解" in question(page, "q4-dk").locator(".llmbook-previous").inner_text()
    reset = page.locator(".llmbook-summary button", has_text="リセット")
    reset.click()
    assert "もう一度" in page.locator(".llmbook-summary").inner_text()
    page.locator(".llmbook-summary button", has_text="もう一度").click()
    assert "件の記録を消しました" in page.locator(".llmbook-summary").inner_text()
    assert question(page, "q4-dk").locator(".llmbook-previous").inner_text() == ""


def test_corrupted_browser_store_is_reset_with_warning(page):
    page.evaluate("localStorage.setItem('llmbook-progress-v1', '{not json')")
    page.reload()
    page.wait_for_selector(".llmbook-quiz-body")
    assert "壊れていた" in page.locator(".llmbook-warning").first.inner_text()
    assert page.evaluate("localStorage.getItem('llmbook-progress-v1-corrupt')") == "{not json"
    q = question(page, "q4-dk")
    q.locator("input").fill("64")
    q.locator("button.llmbook-submit").click()
    assert "○ 正解" in q.locator(".llmbook-feedback").inner_text()


def test_html_in_answer_stays_text(page):
    q = question(page, "glossary-term-rnn")
    evil = "<img src=x onerror=\"window.pwned=1\">"
    q.locator("input").fill(evil)
    q.locator("button.llmbook-submit").click()
    assert "× 不正解" in q.locator(".llmbook-feedback").inner_text()
    assert q.locator("img").count() == 0 and page.evaluate("window.pwned") is None
    long = "あ" * 500
    q.locator("input").fill(long)
    q.locator("button.llmbook-submit").click()
    assert "長すぎます" in q.locator(".llmbook-feedback").inner_text()


def test_glossary_page_backs_term_links(browser, server):
    pg = browser.new_page()
    pg.goto(server + "/glossary.html")
    assert pg.locator("dl.glossary > dt").count() == 40  # 20 語 × (日本語名 + 英語名)
    assert pg.locator("dl.glossary a[href*='a1_language_models']").count() >= 3
    # 本文の {term} のリンクは用語集のページの項目を指す
    pg.goto(server + "/chapters/a1_language_models.html")
    hrefs = pg.eval_on_selector_all("a[href*='glossary.html#term-']", "els => els.map(e => e.href)")
    assert hrefs, "A-1 に用語集へのリンクがない"
    pg.close()


def test_code_exercise_offers_hint_and_solution_without_kernel(page):
    q = question(page, "q8-code")
    assert "Jupyter / Colab" in q.inner_text()
    q.locator("button", has_text="解答例を見る").click()
    assert "tril" in q.locator(".llmbook-extra").inner_text()


def _luminance(rgb):
    def ch(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = rgb
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_quiz_text_is_readable_in_both_themes(page, mode):
    page.evaluate(f"document.documentElement.dataset.theme = '{mode}'")
    colors = page.locator(".llmbook-quiz-body").first.evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
    fg, bg = (
        [int(float(x)) for x in c[c.index("(") + 1 : c.index(")")].split(",")[:3]] for c in colors
    )
    l1, l2 = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    assert (l1 + 0.05) / (l2 + 0.05) >= 4.5, (mode, colors)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("自己注意", "A-6"), ("残差接続", "A-6"), ("層", "A-6"), ("softmax", "A-6"),
        ("ソフトマックス", "A-6"),
        # 複合語と、各章の語 (どの章も少なくとも 1 語)
        ("勾配消失", "A-1"), ("パープレキシティ", "A-1"), ("位置エンコーディング", "A-2"),
        ("自己注意", "A-3"), ("誘導ヘッド", "A-3"), ("活性化関数", "A-4"), ("SwiGLU", "A-4"),
        ("因果マスク", "A-5"), ("KV キャッシュ", "A-5"), ("貪欲法", "A-5"),
    ],
)
def test_japanese_search_finds_pages(browser, server, query, expected):
    """検索窓の語を分かち書きし、1 文字の漢字 (層) も見つかる (Sphinx の既定では見つからない)。"""
    pg = browser.new_page()
    pg.goto(f"{server}/search.html?q={query}")
    # 検索が終わると見出しが「検索中」から「検索結果」に変わる
    pg.wait_for_function(
        "document.querySelector('#search-results h2') && "
        "document.querySelector('#search-results h2').innerText.trim() === '検索結果'"
    )
    results = pg.locator("#search-results ul.search li")
    assert results.count() >= 1, query
    assert any(expected in t for t in results.all_inner_texts()), results.all_inner_texts()
    pg.close()


def test_a1_page_shows_results_and_grades(browser, server):
    """A-1 のページ: 図・表・クイズがそろい、カーネルなしで正誤を判定できる。"""
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + "/chapters/a1_language_models.html")
    pg.wait_for_selector(".llmbook-quiz-body")
    assert pg.locator("img[src*='_images/']").count() >= 5
    assert pg.locator(".cell_output table").count() >= 5
    assert pg.locator(".llmbook-quiz").count() == 5 and pg.locator(".llmbook-summary").count() == 1
    # 用語集へのリンク
    assert pg.locator("a.reference.internal:has(span.xref.std-term)").count() >= 5
    q = pg.locator('.llmbook-q[data-qid="q3-decay"]')
    q.locator("input").fill("19")
    q.locator("button.llmbook-submit").click()
    assert "× 不正解" in q.locator(".llmbook-feedback").inner_text()
    q.locator("input").fill("20")
    q.locator("button.llmbook-submit").click()
    assert "○ 正解" in q.locator(".llmbook-feedback").inner_text()
    assert "自動採点 最高 1 /" in pg.locator(".llmbook-summary .llmbook-score").inner_text()
    assert not errors
    pg.close()


def _open_chapter(browser, server, stem):
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{server}/chapters/{stem}.html")
    pg.wait_for_selector(".llmbook-quiz-body")
    return pg, errors


def test_a3_scaling_explorer_redraws_without_a_kernel(browser, server):
    """A-3 のスライダー: 静的なページで、カーネルなしに d_k を動かすと数値と棒が描き直される。"""
    from llmbook.scaling_explorer import D_K_VALUES, fmt, scaling_stats

    pg, errors = _open_chapter(browser, server, "a3_multi_head_attention")
    box = pg.locator(".llmbook-scaling").first
    box.wait_for()
    assert not box.locator(".llmbook-scaling-dk").is_disabled()     # JS が動いて有効になった
    entropy = box.locator('span[data-stat="entropy"]')
    before = entropy.inner_text()
    dk = box.locator(".llmbook-scaling-dk")
    dk.focus()
    dk.press("End")                                                  # d_k を最大に
    pg.wait_for_function(
        "([el, old]) => el.innerText !== old", arg=[entropy.element_handle(), before])
    scaled = box.locator(".llmbook-scaling-scaled").is_checked()
    temp = float(box.locator('output[data-stat="temperature"]').inner_text())
    want = scaling_stats(D_K_VALUES[-1], temp, scaled=scaled)
    assert entropy.inner_text() == fmt(want["entropy"])
    assert box.locator('output[data-stat="d_k"]').inner_text() == str(D_K_VALUES[-1])
    assert pg.locator("img[src*='_images/']").count() >= 5          # 静的な図も載っている
    assert not errors
    pg.close()


def _grade_wrong_then_right(pg, qid: str, wrong: str, right: str) -> None:
    """数値の問い qid に、誤りの値・正しい値の順に答えて、それぞれの判定を確かめる。"""
    q = pg.locator(f'.llmbook-q[data-qid="{qid}"]')
    for value, verdict in ((wrong, "× 不正解"), (right, "○ 正解")):
        q.locator("input").fill(value)
        q.locator("button.llmbook-submit").click()
        assert verdict in q.locator(".llmbook-feedback").inner_text(), (qid, value)


def test_a3_and_a4_pages_show_figures_quizzes_and_grade(browser, server):
    """A-3・A-4 のページ: 図・クイズ・得点表がそろい、カーネルなしで数値の問いを採点できる。"""
    for stem, qid, wrong, right in [
        ("a3_multi_head_attention", "scale-std", "64", "8"),
        ("a4_ffn_activations", "params-swiglu-dff", "3072", "2048"),
    ]:
        pg, errors = _open_chapter(browser, server, stem)
        assert pg.locator("img[src*='_images/']").count() >= 4, stem
        assert pg.locator(".llmbook-quiz").count() == 5, stem
        assert pg.locator(".llmbook-summary").count() == 1, stem
        assert pg.locator("a.reference.internal:has(span.xref.std-term)").count() >= 3, stem
        _grade_wrong_then_right(pg, qid, wrong, right)
        assert not errors, (stem, errors)
        pg.close()


def test_a5_page_explorer_generator_and_quiz_work_without_a_kernel(browser, server):
    """A-5 のページ: アテンションの探索器がクリックで描き直され、生成例の表・図・クイズがある。"""
    pg, errors = _open_chapter(browser, server, "a5_causal_generation")
    box = pg.locator(".llmbook-attn").first
    box.wait_for()
    status = box.locator(".llmbook-attn-status")
    before = status.inner_text()
    box.locator("button.llmbook-attn-tok").nth(3).click()
    pg.wait_for_function("([el, old]) => el.innerText !== old",
                         arg=[status.element_handle(), before])
    assert box.locator('button.llmbook-attn-tok[aria-pressed="true"]').count() == 1
    assert box.locator(".llmbook-attn-cell").count() == 16              # 4 層 × 4 ヘッド
    gen = pg.locator(".llmbook-gen")
    assert gen.count() == 1 and "貪欲法" in gen.inner_text()
    assert pg.locator("img[src*='_images/']").count() >= 3
    assert pg.locator(".llmbook-quiz").count() == 5
    assert pg.locator(".llmbook-progress").count() >= 2                 # 進捗バーは最後の 1 行だけ
    _grade_wrong_then_right(pg, "kv-mem-layer", "512", "1024")
    assert not errors, errors
    pg.close()


def _site_pages() -> list:
    """サイトのページ。404.html はリンクがサイトの根 (/<リポジトリ名>/) からの絶対パスなので
    除く (その場所で開くテストは別にある)。"""
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                  if "_static" not in p.parts and "_sources" not in p.parts
                  and p.name != "404.html")


def test_every_page_stays_on_the_local_server_and_typesets_math(browser, server):
    """どのページも外部 (CDN など) に要求を出さず、コンソールのエラーもなく、数式が描かれる。"""
    outside: list[str] = []
    route = _only_local(server, outside)
    pages = _site_pages()
    assert len(pages) >= 10, pages
    for name in pages:
        pg = browser.new_page()
        pg.route("**/*", route)
        errors: list[str] = []
        pg.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
        pg.goto(f"{server}/{name}", wait_until="load")
        if name.startswith("chapters/a3"):                      # 数式の多い章: TeX が描かれた
            pg.wait_for_selector("mjx-container", timeout=15000)
            assert "\\sqrt" not in pg.inner_text("body"), name
        pg.wait_for_timeout(300)
        assert not errors, (name, errors)
        pg.close()
    assert not outside, sorted(set(outside))


# ---- 検索の入り口・印刷・404 ページ・表紙 (issue 11) ------------------------------------------


def _visible_search_entries(pg):
    return pg.locator(".search-button__button:visible, input[type=search]:visible")


@pytest.mark.parametrize("width", [1280, 390])
def test_one_search_entry_with_a_japanese_placeholder(browser, server, width):
    """幅 1280 px では検索の入り口が 1 つだけ (ヘッダーとサイドバーに 2 つ並ばない)。390 px でも
    入り口があり、開いた検索欄の案内の文字は日本語 (_config.yml の search_bar_text)。"""
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    want = cfg["sphinx"]["config"]["html_theme_options"]["search_bar_text"]
    pg = browser.new_page()
    pg.set_viewport_size({"width": width, "height": 900})
    pg.goto(server + "/intro.html")
    entries = _visible_search_entries(pg)
    assert entries.count() == 1, entries.evaluate_all("els => els.map(e => e.outerHTML)")
    entries.first.click()
    box = pg.locator("#pst-search-dialog input[type=search]")
    box.wait_for(state="visible")
    assert box.get_attribute("placeholder") == want
    box.fill("自己注意")
    box.press("Enter")
    pg.wait_for_url("**/search.html?q=*")
    assert pg.locator("input[type=search][placeholder='Search this book...']").count() == 0
    pg.close()


def test_print_view_hides_answers_and_points_to_the_site(page):
    """印刷 (media=print) では、読者が開いた採点結果・模範解答・解答例も、入力欄とボタンも載らず、
    問題文と「サイトかノートブックで」の案内が載る。画面に戻すと元どおり。"""
    q = question(page, "q5-sqrt")
    q.locator("input").fill("7")
    q.locator("button.llmbook-submit").click()
    essay = question(page, "q7-essay")
    essay.locator("textarea").fill("位置を区別できないから。")
    essay.locator("button", has_text="模範解答と要点を見る").click()
    code = question(page, "q8-code")
    code.locator("button", has_text="解答例を見る").click()
    shown = [q.locator(".llmbook-feedback"), essay.locator(".llmbook-model"),
             code.locator(".llmbook-extra"), q.locator("input"), q.locator("button").first,
             essay.locator("textarea"), page.locator(".llmbook-summary")]
    assert all(loc.is_visible() for loc in shown)
    page.emulate_media(media="print")
    assert not any(loc.is_visible() for loc in shown)
    assert page.locator(".llmbook-quiz input:visible, .llmbook-quiz button:visible, "
                        ".llmbook-quiz select:visible").count() == 0
    assert q.locator(".llmbook-prompt").is_visible()
    assert question(page, "q7-perm").locator(".llmbook-choice label").first.is_visible()
    note = page.locator(".llmbook-quiz-body").first.evaluate(
        "el => getComputedStyle(el, '::before').content")
    assert "Web サイトかノートブック" in note, note
    assert page.pdf()[:4] == b"%PDF"
    page.emulate_media(media="screen")
    assert all(loc.is_visible() for loc in shown)


def test_print_view_keeps_explorers_within_the_page(browser, server):
    """印刷では探索器に「サイトかノートブックで」の案内を載せ、A4 の幅 (約 700 px) に収める。"""
    for stem, boxes in (("a3_multi_head_attention", [".llmbook-scaling"]),
                        ("a5_causal_generation", [".llmbook-attn", ".llmbook-gen"])):
        pg, errors = _open_chapter(browser, server, stem)
        pg.set_viewport_size({"width": 700, "height": 1000})
        pg.emulate_media(media="print")
        for sel in boxes:
            box = pg.locator(sel).first
            note = box.evaluate("el => getComputedStyle(el, '::before').content")
            assert "ノートブック" in note, (stem, sel, note)
            over = box.evaluate(
                "el => [el.getBoundingClientRect().right, document.documentElement.clientWidth,"
                " el.scrollWidth - el.clientWidth]")
            assert over[0] <= over[1] and over[2] <= 1, (stem, sel, over)
        assert not errors, (stem, errors)
        pg.close()


def _only_local(base: str, outside: list[str]):
    """pg.route に渡す関数: base 以外への要求は止めて、その URL を outside に記録する。"""

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    return route


class _Pages(_Quiet):
    """GitHub Pages のまね: サイトを prefix (/<リポジトリ名>/) の下に置き、ないアドレスには
    そのアドレスのまま 404.html の中身を状態 404 で返す。"""

    prefix = "/"

    def do_GET(self):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path.startswith(self.prefix):
            rel = path[len(self.prefix):] or "index.html"
            target = (SITE / rel).resolve()
            if target.is_dir():
                target = target / "index.html"
            if target.is_file() and SITE.resolve() in target.parents:
                self.path = "/" + target.relative_to(SITE.resolve()).as_posix()
                return super().do_GET()
        body = (SITE / "404.html").read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_404_page_is_japanese_and_its_links_work(browser):
    """ない深いアドレスでも 404 ページが CSS つきで表示され、外へ要求を出さず、
    表紙・各章・用語集へのリンクがどれも開ける (リンクの頭は repository.url から作る)。"""
    from llmbook.book import PUBLISHED
    from llmbook.export import read_repository
    from llmbook.sitepages import urls_prefix

    prefix = urls_prefix(read_repository(ROOT)[0])
    handler = type("Handler", (_Pages,), {"prefix": prefix})
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(SITE)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    pg = browser.new_page()
    outside, failed, errors = [], [], []
    pg.route("**/*", _only_local(base, outside))
    missing = f"{base}{prefix}chapters/no-such-dir/no-such-page.html"
    # 状態 404 の本体そのものについての「Failed to load resource」だけは、意図したもの
    pg.on("console", lambda m: errors.append((m.text, m.location.get("url")))
          if m.type == "error" and m.location.get("url") != missing else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("response", lambda r: failed.append((r.status, r.url))
          if r.status >= 400 and r.url != missing else None)
    try:
        assert pg.goto(missing).status == 404
        pg.wait_for_timeout(300)
        assert pg.locator("html").get_attribute("lang") == "ja"
        assert "ページが見つかりません" in pg.title()
        assert pg.locator("article h1").inner_text() == "ページが見つかりません"
        # テーマの CSS が届いている (左の目次はサイドバーに並び、本文より左にある)
        nav = pg.locator(".bd-sidebar-primary").bounding_box()
        assert nav and nav["x"] < pg.locator("article h1").bounding_box()["x"]
        links = pg.locator("article ul.llmbook-404-chapters a")
        assert links.count() == len(PUBLISHED) + 1                     # 各章と用語集
        hrefs = [*links.evaluate_all("els => els.map(e => e.getAttribute('href'))"),
                 pg.locator("article a", has_text="表紙").get_attribute("href")]
        for href in hrefs:
            assert href.startswith(prefix), href
            assert pg.request.get(base + href).status == 200, href
        pg.locator("article a", has_text="表紙").click()
        pg.wait_for_url(f"{base}{prefix}intro.html")
        assert "大規模言語モデル入門" in pg.locator("article h1").first.inner_text()
        assert not failed and not errors and not outside, (failed, errors, outside)
    finally:
        pg.close()
        srv.shutdown()


def test_intro_links_the_readme_and_launch_buttons_are_on_chapter_pages(browser, server):
    """表紙: README はリポジトリの README へのリンク。ロケット (Colab) のボタンは各章の
    ページにあり、表紙にはない (表紙の文もそう書く)。"""
    from llmbook.export import read_repository

    url, branch = read_repository(ROOT)
    pg = browser.new_page()
    pg.goto(server + "/intro.html")
    assert pg.locator(f'main a[href="{url}/blob/{branch}/README.md"]').count() == 1
    assert "{{" not in pg.locator("main").inner_text()
    assert "各章のページの上部" in pg.locator("main").inner_text()
    assert pg.locator(".dropdown-launch-buttons").count() == 0
    pg.goto(server + "/chapters/a1_language_models.html")
    assert pg.locator(".dropdown-launch-buttons").count() == 1
    pg.close()
