"""カーネル側のウィジェット: 値を入れてボタンを押し、表示と記録を確かめる。"""
from __future__ import annotations

import torch

from llmbook.quiz import ProgressStore, QuizDisplay, load_bank, show_quiz, show_summary
from llmbook.quiz.widgets import QuizWidget, SummaryWidget


def make(quiz_id, tmp_path, namespace=None):
    store = ProgressStore(tmp_path / "p.json")
    return QuizWidget(load_bank("a6").quiz(quiz_id), store, namespace), store


def test_display_object_carries_widget_and_html():
    bundle = show_quiz("a6", "q5")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert 'class="llmbook-quiz"' in bundle["text/html"] and 'data-quiz="q5"' in bundle["text/html"]
    assert "text/plain" in bundle
    summary = show_summary("a6")._repr_mimebundle_()
    assert (
        "application/vnd.jupyter.widget-view+json" in summary
        and "llmbook-summary" in summary["text/html"]
    )


def test_single_choice_right_and_wrong(tmp_path):
    w, store = make("q1", tmp_path)
    qw = w.question("q1-output")
    qw.picker.value = 0
    qw.button.click()
    assert "× 不正解" in qw.feedback.value and "確率の分布" in qw.feedback.value  # なぜ違うか
    qw.picker.value = 1
    qw.button.click()
    assert "○ 正解" in qw.feedback.value
    assert store.get("a6", "q1", "q1-output")["attempts"] == 2
    assert "自動採点 最高 1 / 3 点 (最新 1 点)" in w.score.value
    qw.picker.value = 0  # あとから間違えても、最高点は残り、最新の得点と並べて見せる
    qw.button.click()
    assert "自動採点 最高 1 / 3 点 (最新 0 点)" in w.score.value


def test_choices_follow_the_shared_display_order_and_grade_by_identity(tmp_path):
    w, _ = make("q1", tmp_path)
    qw = w.question("q1-output")
    order = qw.q["order"]
    assert order != list(range(len(order)))  # この問題では並びが変わる
    # ボタン A, B, … は表示順。値は選択肢の元の番号なので、採点は位置ではなく選択肢そのもので決まる
    assert [v for _, v in qw.picker.options] == order
    listed = qw.box.children[1].value
    texts = [qw.q["choices"][j]["text"] for j in order]
    assert [listed.index(t) for t in texts] == sorted(listed.index(t) for t in texts)
    correct = next(j for j, c in enumerate(qw.q["choices"]) if c["correct"])
    qw.picker.value = correct
    qw.button.click()
    assert "○ 正解" in qw.feedback.value


def test_selected_single_choice_is_unmistakable(tmp_path):
    w, _ = make("q1", tmp_path)
    qw = w.question("q1-output")
    assert qw.chosen.value == "" and set(qw.picker.icons) <= {""}
    qw.picker.value = qw.q["order"][2]
    assert qw.picker.icons[2] == "check" and sum(i == "check" for i in qw.picker.icons) == 1
    assert "選んだ答え: C" in qw.chosen.value and "<strong>" in qw.chosen.value


def test_nothing_selected_is_explained_not_recorded(tmp_path):
    w, store = make("q1", tmp_path)
    qw = w.question("q1-output")
    qw.button.click()
    assert "選んでください" in qw.feedback.value
    assert store.get("a6", "q1", "q1-output") is None


def test_numeric_and_short_text(tmp_path):
    w, _ = make("q5", tmp_path)
    qw = w.question("q5-sqrt")
    qw.text.value = "８"
    qw.button.click()
    assert "○ 正解" in qw.feedback.value
    qw.text.value = "<b>八</b>"
    qw.button.click()
    assert "数値として読めません" in qw.feedback.value and "<b>八</b>" not in qw.feedback.value
    g, _ = make("glossary-d2t", tmp_path)
    sq = g.question("glossary-term-softmax")
    sq.text.value = "ＳＯＦＴＭＡＸ"
    sq.button.click()
    assert "○ 正解" in sq.feedback.value


def test_html_in_answer_is_escaped(tmp_path):
    g, _ = make("glossary-d2t", tmp_path)
    sq = g.question("glossary-term-softmax")
    sq.text.value = "<script>alert(1)</script>"
    sq.button.click()
    assert "<script>" not in sq.feedback.value and "× 不正解" in sq.feedback.value


def test_multi_matching_ordering(tmp_path):
    w, _ = make("q2", tmp_path)
    mq = w.question("q2-facts")
    for box, j in zip(mq.checks, mq.q["order"]):  # チェックボックスは表示順に並ぶ
        box.value = mq.q["choices"][j]["correct"]
    mq.button.click()
    assert "○ 正解" in mq.feedback.value
    for box in mq.checks:  # 全部に印を付けると 0 点
        box.value = True
    mq.button.click()
    assert "× 不正解" in mq.feedback.value
    oq = w.question("q2-history")
    # ↑ ↓ ボタンで正しい順に並べ替える (選択ソートの要領でクリックする)
    for target in range(len(oq.current)):
        while oq.current.index(target) != target:
            pos = oq.current.index(target)
            oq.rows_box.children[pos].children[0].click()  # ↑
    assert oq.current == list(range(len(oq.current)))
    oq.button.click()
    assert "○ 正解" in oq.feedback.value
    t, _ = make("glossary-t2d", tmp_path)
    mt = t.questions[0]
    assert all(d.index == 0 and d.label == "—" for d in mt.drops)  # 空欄ではなく「—」から始まる
    assert mt.response() == [None] * len(mt.drops)
    for i, d in enumerate(mt.drops):
        d.value = i
    mt.button.click()
    assert "○ 正解" in mt.feedback.value
    mt.drops[0].index = 0
    mt.button.click()
    assert "まだ選んでいない" in mt.feedback.value


def test_essay_flow_is_self_assessed(tmp_path):
    w, store = make("q5", tmp_path)
    eq = w.question("q5-essay")
    assert eq.button.disabled
    eq.reveal.click()  # 何も書かずに見ようとすると、まず書くよう促す
    assert "まず自分の言葉で" in eq.feedback.value and not eq.answer_box.children
    eq.text.value = "内積の分散が大きくなるから"
    eq.reveal.click()
    assert eq.answer_box.children and not eq.button.disabled
    eq.ideas[0].value = True
    eq.button.click()
    assert "自己採点: 要点 1/4" in eq.feedback.value
    rec = store.get("a6", "q5", "q5-essay")
    assert (
        rec["status"] == "self_assessed" and rec["response"]["text"] == "内積の分散が大きくなるから"
    )
    # 次に開いたとき、書いた答えが戻ってくる (入力は失われない)
    w2 = QuizWidget(load_bank("a6").quiz("q5"), ProgressStore(tmp_path / "p.json"))
    assert w2.question("q5-essay").text.value == "内積の分散が大きくなるから"
    assert "前回の記録" in w2.question("q5-essay").previous.value


def test_code_question_uses_namespace_and_survives_errors(tmp_path):
    ns: dict = {}
    w, store = make("q8", tmp_path, namespace=ns)
    cq = w.question("q8-code")
    cq.button.click()
    assert "まだ定義されていません" in cq.feedback.value

    def causal_mask(n):
        raise ValueError("まだ途中")
    ns["causal_mask"] = causal_mask
    cq.button.click()
    assert "ValueError" in cq.feedback.value and "ヒント" in cq.feedback.value
    ns["causal_mask"] = lambda n: torch.ones(n, n, dtype=torch.bool).tril()
    cq.button.click()
    assert "○ 正解" in cq.feedback.value
    assert store.get("a6", "q8", "q8-code")["response"] is None  # 関数そのものは記録しない
    cq.solution_button.click()
    assert "tril" in cq.extra.value and "monospace" in cq.extra.value


def test_starter_code_is_shown_as_code(tmp_path):
    w, _ = make("q8", tmp_path, namespace={})
    starter = w.question("q8-code").box.children[1].value
    assert (
        "<pre" in starter
        and "<code>" in starter
        and "monospace" in starter
        and "def causal_mask" in starter
    )


def test_previous_record_shows_best_and_latest(tmp_path):
    w, store = make("q4", tmp_path)
    q = w.question("q4-dk")
    for answer in ("64", "32"):
        q.text.value = answer
        q.button.click()
    again = QuizWidget(load_bank("a6").quiz("q4"), store)
    text = again.question("q4-dk").previous.value
    assert "最新の得点 0" in text and "最高 1" in text and "挑戦 2 回" in text
    assert "最高 1 / 2 点 (最新 0 点)" in again.score.value


def test_summary_updates_and_resets_with_confirmation(tmp_path):
    store = ProgressStore(tmp_path / "p.json")
    bank = load_bank("a6")
    summary = SummaryWidget(bank, store)
    w = QuizWidget(bank.quiz("q4"), store)
    q = w.question("q4-dk")
    q.text.value = "64"
    q.button.click()
    assert "自動採点 最高 1 /" in summary.table.value
    summary.reset_button.click()  # 1 回目は確認だけ
    assert store.get("a6", "q4", "q4-dk") is not None and "もう一度" in summary.message.value
    summary.reset_button.click()
    assert store.get("a6", "q4", "q4-dk") is None and "1 件" in summary.message.value
    assert "自動採点 最高 0 /" in summary.table.value


def test_corrupted_store_warns_in_widget(tmp_path):
    (tmp_path / "p.json").write_text("{broken", encoding="utf-8")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = ProgressStore(tmp_path / "p.json")
    w = QuizWidget(load_bank("a6").quiz("q4"), store)
    assert "壊れていた" in w.box.children[0].value


def test_quiz_display_is_lazy_and_reusable(tmp_path):
    d = QuizDisplay(load_bank("a6").quiz("q3"), ProgressStore(tmp_path / "p.json"))
    assert d._widget is None
    d._repr_mimebundle_()
    first = d.widget
    d._repr_mimebundle_()
    assert d.widget is first
