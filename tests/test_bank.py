"""問題バンクと用語集の検証。壊れたバンクは、ファイル・問題 id・フィールドを名指しする日本語のエラーになる。"""
from __future__ import annotations

import textwrap

import pytest

from llmbook.quiz import BankError, load_bank, load_bank_file, load_glossary
from llmbook.quiz.bank import QUESTION_TYPES, available_chapters, display_order


def test_every_shipped_bank_loads():
    assert "a6" in available_chapters()
    for ch in available_chapters():
        bank = load_bank(ch, reload=True)
        assert bank.quizzes and all(q.questions for q in bank.quizzes)


def test_glossary_has_20_terms_with_all_fields():
    terms = load_glossary()
    assert len(terms) == 20
    assert len({t["ja"] for t in terms}) == 20 and len({t["en"] for t in terms}) == 20
    for t in terms:
        assert t["definition"] and t["chapter"].startswith("A-")
        assert t["ja"] not in t["definition"] and t["en"].lower() not in t["definition"].lower()


def test_a6_has_ten_review_questions_each_with_essay_and_auto_companion(bank):
    reviews = [q for q in bank.quizzes if q.id.startswith("q")]
    assert [q.id for q in reviews] == [f"q{i}" for i in range(1, 11)]
    for quiz in reviews:
        types = [q["type"] for q in quiz.questions]
        assert types.count("essay") == 1, quiz.id
        assert any(t not in ("essay",) for t in types), quiz.id
        essay = next(q for q in quiz.questions if q["type"] == "essay")
        assert 3 <= len(essay["key_ideas"]) <= 5


def test_glossary_quiz_covers_every_term_in_both_directions(bank):
    terms = load_glossary()
    t2d = bank.quiz("glossary-t2d")
    lefts = [p["left"] for q in t2d.questions for p in q["pairs"]]
    assert len(lefts) == 20 and all(any(t["ja"] in left for left in lefts) for t in terms)
    d2t = bank.quiz("glossary-d2t")
    assert len(d2t.questions) == 20
    assert all(q["type"] == "short" for q in d2t.questions)


def test_every_question_type_is_used_somewhere(bank):
    used = {q["type"] for quiz in bank.quizzes for q in quiz.questions}
    assert used == set(QUESTION_TYPES)


def test_display_order_is_deterministic_and_never_the_answer():
    for n in range(2, 12):
        for key in ("a", "b", "q5-x"):
            order = display_order(key, n)
            assert sorted(order) == list(range(n)) and order != list(range(n))
            assert order == display_order(key, n)


def _write(tmp_path, body: str):
    p = tmp_path / "broken.yaml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


GOOD_HEAD = """\
chapter: zz
title: テスト
quizzes:
  - id: quiz1
    title: 小テスト
    questions:
"""


@pytest.mark.parametrize("question, qid, field", [
    ("      - {id: q1, type: single, prompt: 問, choices: [{text: a, why: w}, {text: b, why: w}]}", "q1", "choices"),
    ("      - {id: q2, type: single, prompt: 問, choices: [{text: a, correct: yes-ish, why: w}, {text: b, correct: true, why: w}]}", "q2", "choices[0].correct"),
    ("      - {id: q3, type: numeric, prompt: 問, answer: '八'}", "q3", "answer"),
    ("      - {id: q4, type: riddle, prompt: 問}", "q4", "type"),
    ("      - {id: q5, type: short, prompt: 問, answers: [a], answer: b}", "q5", "answer"),
    ("      - {id: q6, type: essay, prompt: 問, model_answer: m, key_ideas: [a, b]}", "q6", "key_ideas"),
    ("      - {id: q7, type: short, prompt: '', answers: [a]}", "q7", "prompt"),
    ("      - {id: Q8!, type: short, prompt: 問, answers: [a]}", "Q8!", "id"),
    ("      - {id: q9, type: code, prompt: 問, function_name: f, starter: s, hint: h, solution: s, checker: 'nope.mod:fn'}", "q9", "checker"),
    ("      - {id: q10, type: code, prompt: 問, function_name: '1f', starter: s, hint: h, solution: s, checker: 'llmbook.quiz.checks:check_causal_mask'}", "q10", "function_name"),
    ("      - {id: q11, type: matching, prompt: 問, pairs: [{left: a, right: x}, {left: b, right: x}]}", "q11", "pairs"),
    ("      - {id: q12, type: ordering, prompt: 問, items: [a]}", "q12", "items"),
    ("      - {id: q13, type: multi, prompt: 問, choices: [{text: a, why: w}, {text: b, why: w}]}", "q13", "choices"),
    ("      - {id: q14, type: short, prompt: 問, answers: ['・・']}", "q14", "answers"),
])
def test_malformed_question_names_file_id_and_field(tmp_path, question, qid, field):
    p = _write(tmp_path, GOOD_HEAD + question + "\n")
    with pytest.raises(BankError) as exc:
        load_bank_file(p)
    err = exc.value
    assert err.file == str(p) and err.qid == qid and err.field == field
    msg = str(err)
    assert "broken.yaml" in msg and qid in msg and field in msg


def test_duplicate_ids_and_yaml_errors(tmp_path):
    dup = GOOD_HEAD + "      - {id: a, type: short, prompt: 問, answers: [x]}\n      - {id: a, type: short, prompt: 問, answers: [y]}\n"
    with pytest.raises(BankError, match="同じ id"):
        load_bank_file(_write(tmp_path, dup))
    with pytest.raises(BankError, match="YAML として読めません.*行目"):
        load_bank_file(_write(tmp_path, "chapter: [unclosed\n"))
    with pytest.raises(BankError, match="ファイルが見つかりません"):
        load_bank_file(tmp_path / "missing.yaml")
    (tmp_path / "sjis.yaml").write_bytes("chapter: 第一章".encode("cp932"))
    with pytest.raises(BankError, match="UTF-8"):
        load_bank_file(tmp_path / "sjis.yaml")
    with pytest.raises(BankError, match="最上位"):
        load_bank_file(_write(tmp_path, "- just a list\n"))


def test_bad_chapter_name():
    with pytest.raises(BankError):
        load_bank("../etc")
    with pytest.raises(BankError, match="ファイルが見つかりません"):
        load_bank("zz")


def test_glossary_definition_must_not_contain_its_term(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("terms:\n  - {id: sm, category: c, ja: ソフトマックス, en: Softmax, chapter: A-3, "
                 "definition: softmax は確率に変える関数}\n", encoding="utf-8")
    with pytest.raises(BankError) as exc:
        load_glossary(p)
    assert exc.value.qid == "sm" and exc.value.field == "definition"


def _strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from _strings(v)


def test_no_stray_spaces_inside_japanese_text():
    """YAML の折り返しで日本語の間に空白が入る事故 (「それ までの」) を防ぐ。"""
    import re

    cjk = r"[\u3040-\u30ff\u3400-\u9fff「」、。]"
    bad = re.compile(f"{cjk} {cjk}")
    texts = list(_strings(load_glossary()))
    for ch in available_chapters():
        for quiz in load_bank(ch).quizzes:
            texts += list(_strings(quiz.questions)) + [quiz.title, quiz.intro]
    offenders = [t for t in texts if bad.search(t)]
    assert not offenders, offenders[:3]
