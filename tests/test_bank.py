"""問題バンクと用語集の検証。

壊れたバンクは、ファイル・問題 id・フィールドを名指しする日本語のエラーになる。
"""
from __future__ import annotations

import textwrap
from pathlib import Path

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
            assert sorted(display_order(key, n, derange=False)) == list(range(n))


def test_display_order_is_stable_between_builds():
    """順は SHA-256 だけから決まる (Python の hash() や実行ごとの乱数、ファイルの置き場所に
    よらない)。この値が変わったら、読者の画面の並びが変わる: 意図した変更のときだけ更新する。"""
    assert display_order("a6/q1-output", 4, derange=False) == [2, 3, 0, 1]
    assert display_order("a6/q2-history", 4) == display_order("a6/q2-history", 4)
    # 偶然そのままの順になることもある
    assert display_order("a1/q3-slow", 4, derange=False) == [0, 1, 2, 3]
    import subprocess
    import sys

    code = (
        "from llmbook.quiz.bank import display_order; "
        "print(display_order('a6/q1-output', 4, derange=False))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert out.stdout.strip() == "[2, 3, 0, 1]"


def test_bank_copied_elsewhere_keeps_its_display_orders(tmp_path):
    src = Path(load_bank("a6").path)
    copy = tmp_path / "a6.yaml"
    copy.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    here = {q["id"]: q.get("order") for qz in load_bank("a6").quizzes for q in qz.questions}
    there = {q["id"]: q.get("order") for qz in load_bank_file(copy).quizzes for q in qz.questions}
    assert here == there


def _singles(chapter):
    return [q for qz in load_bank(chapter).quizzes for q in qz.questions if q["type"] == "single"]


@pytest.mark.parametrize("chapter", ["a1", "a2", "a3", "a4", "a5", "a6"])
def test_choices_are_shown_in_a_shuffled_order_without_tells(chapter):
    singles = _singles(chapter)
    multis = [q for qz in load_bank(chapter).quizzes for q in qz.questions if q["type"] == "multi"]
    for q in singles + multis:
        assert sorted(q["order"]) == list(range(len(q["choices"]))), q["id"]
    # 正解が一番長い選択肢である問題は 1/3 まで (長さで答えが分からないように)
    longest = [
        q["id"]
        for q in singles
        if len(next(c for c in q["choices"] if c["correct"])["text"])
        == max(len(c["text"]) for c in q["choices"])
    ]
    assert len(longest) <= len(singles) / 3, longest
    # 表示したときに正解が先頭に来る問題は、偶然 (1/選択肢の数) で期待される数 + 1 まで
    first = [q["id"] for q in singles if q["choices"][q["order"][0]]["correct"]]
    expected = sum(1 / len(q["choices"]) for q in singles)
    assert len(first) <= expected + 1, first


def test_every_multi_item_has_at_least_as_many_wrong_as_right_options():
    """全部に印を付けると 0 点になるための条件 (得点 = max(0, (正 − 誤) / 正解の数))。"""
    for ch in available_chapters():
        for qz in load_bank(ch).quizzes:
            for q in qz.questions:
                if q["type"] == "multi":
                    right = sum(c["correct"] for c in q["choices"])
                    assert len(q["choices"]) - right >= right, q["id"]


def test_code_checkers_live_in_one_module_per_chapter():
    import importlib

    for ch in available_chapters():
        for qz in load_bank(ch).quizzes:
            for q in qz.questions:
                if q["type"] == "code":
                    module, _, name = q["checker"].partition(":")
                    assert module == f"llmbook.quiz.checks_{ch}", q["id"]
                    assert callable(getattr(importlib.import_module(module), name))
    with pytest.raises(ImportError):
        importlib.import_module("llmbook.quiz.checks")  # A-6 の採点関数は checks_a6 へ移した


def test_grading_and_codecheck_do_not_import_each_other():
    import ast

    quiz_dir = Path(__file__).resolve().parent.parent / "llmbook" / "quiz"

    def imports(name, top_level_only):
        tree = ast.parse((quiz_dir / f"{name}.py").read_text(encoding="utf-8"))
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        return {n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module}

    assert "grading" not in imports("codecheck", top_level_only=False)
    # コード課題のときだけ関数の中で読む
    assert "codecheck" not in imports("grading", top_level_only=True)
    assert "result" in imports("codecheck", top_level_only=True) and "result" in imports(
        "grading", top_level_only=True
    )


def test_checker_must_be_a_function_in_the_chapter_module(tmp_path):
    body = (
        GOOD_HEAD
        + "      - {id: c1, type: code, prompt: 問, function_name: f, starter: s, hint: h, "
          "solution: s, checker: check_causal_mask}\n"
    )
    with pytest.raises(BankError, match="checks_zz") as exc:
        load_bank_file(_write(tmp_path, body))
    assert exc.value.field == "checker"


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


@pytest.mark.parametrize(
    "question, qid, field",
    [
        (
            "      - {id: q1, type: single, prompt: 問, choices: [{text: a, why: w}, {text: b, why:"
            " w}]}",
            "q1", "choices",
        ),
        (
            "      - {id: q2, type: single, prompt: 問, choices: [{text: a, correct: yes-ish, why: "
            "w}, {text: b, correct: true, why: w}]}",
            "q2", "choices[0].correct",
        ),
        ("      - {id: q3, type: numeric, prompt: 問, answer: '八'}", "q3", "answer"),
        ("      - {id: q4, type: riddle, prompt: 問}", "q4", "type"),
        ("      - {id: q5, type: short, prompt: 問, answers: [a], answer: b}", "q5", "answer"),
        (
            "      - {id: q6, type: essay, prompt: 問, model_answer: m, key_ideas: [a, b]}", "q6",
            "key_ideas",
        ),
        ("      - {id: q7, type: short, prompt: '', answers: [a]}", "q7", "prompt"),
        ("      - {id: Q8!, type: short, prompt: 問, answers: [a]}", "Q8!", "id"),
        (
            "      - {id: q9, type: code, prompt: 問, function_name: f, starter: s, hint: h, "
            "solution: s, checker: 'nope.mod:fn'}",
            "q9", "checker",
        ),
        (
            "      - {id: q10, type: code, prompt: 問, function_name: '1f', starter: s, hint: h, "
            "solution: s, checker: 'llmbook.quiz.checks:check_causal_mask'}",
            "q10", "function_name",
        ),
        (
            "      - {id: q11, type: matching, prompt: 問, pairs: [{left: a, right: x}, {left: b, "
            "right: x}]}",
            "q11", "pairs",
        ),
        ("      - {id: q12, type: ordering, prompt: 問, items: [a]}", "q12", "items"),
        (
            "      - {id: q13, type: multi, prompt: 問, choices: [{text: a, why: w}, {text: b, why:"
            " w}]}",
            "q13", "choices",
        ),
        ("      - {id: q14, type: short, prompt: 問, answers: ['・・']}", "q14", "answers"),
    ],
)
def test_malformed_question_names_file_id_and_field(tmp_path, question, qid, field):
    p = _write(tmp_path, GOOD_HEAD + question + "\n")
    with pytest.raises(BankError) as exc:
        load_bank_file(p)
    err = exc.value
    assert err.file == str(p) and err.qid == qid and err.field == field
    msg = str(err)
    assert "broken.yaml" in msg and qid in msg and field in msg


def test_duplicate_ids_and_yaml_errors(tmp_path):
    dup = (
        GOOD_HEAD
        + "      - {id: a, type: short, prompt: 問, answers: [x]}\n      - {id: a, type: short, "
          "prompt: 問, answers: [y]}\n"
    )
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


def _glossary(tmp_path, **fields):
    entry = {
        "id": "sm", "category": "c", "ja": "ソフトマックス", "en": "Softmax", "chapter": "A-3",
        "aliases": ["ソフトマックス関数"],
        "definition": "実数の並びの各成分を exp で正にしてから総和で割り、確率分布にする関数。",
        "quiz_prompt": "点数の列を、どれも正で合計がちょうど 1 の割合に直す計算。",
        **fields,
    }
    p = tmp_path / "g.yaml"
    import yaml

    p.write_text(yaml.safe_dump({"terms": [entry]}, allow_unicode=True), encoding="utf-8")
    return p


def test_glossary_definition_must_not_contain_its_term(tmp_path):
    assert load_glossary(_glossary(tmp_path))[0]["quiz_prompt"]
    with pytest.raises(BankError) as exc:
        load_glossary(_glossary(tmp_path, definition="softmax は確率に変える関数"))
    assert exc.value.qid == "sm" and exc.value.field == "definition"


@pytest.mark.parametrize(
    "prompt, why",
    [
        ("点数の列を、合計 1 の割合に直すソフトマックス関数。", "用語"),  # 別名がそのまま入っている
        ("点数の列を、合計 1 の割合に直す SOFTMAX。", "用語"),  # 英語名 (大文字小文字を問わない)
        # 定義の写し
        ("実数の並びの各成分を exp で正にしてから総和で割り、確率分布にする関数。", "ほとんど同じ"),
        ("各成分を exp で正にしてから総和で割る関数。", "ほとんど同じ"),  # 定義の一部をそのまま使う
    ],
)
def test_glossary_quiz_prompt_must_be_a_real_paraphrase(tmp_path, prompt, why):
    with pytest.raises(BankError, match=why) as exc:
        load_glossary(_glossary(tmp_path, quiz_prompt=prompt))
    assert exc.value.field == "quiz_prompt"


def test_glossary_rejects_cannot_be_an_accepted_spelling(tmp_path):
    with pytest.raises(BankError, match="正解の表記と同じ"):
        load_glossary(_glossary(tmp_path, rejects=[{"answer": "ソフト・マックス", "why": "x"}]))
    with pytest.raises(BankError):
        load_glossary(_glossary(tmp_path, quiz_prompt=None))  # quiz_prompt は必須


def test_glossary_uses_the_book_vocabulary_with_stable_ids():
    terms = {t["id"]: t for t in load_glossary()}
    assert (
        terms["self-attention"]["ja"] == "自己注意"
        and "セルフアテンション" in terms["self-attention"]["aliases"]
    )
    assert (
        terms["layer-normalization"]["ja"] == "レイヤー正規化"
        and "層正規化" in terms["layer-normalization"]["aliases"]
    )
    assert "カジュアルマスク" not in terms["causal-attention-mask"]["aliases"]
    assert [r["answer"] for r in terms["causal-attention-mask"]["rejects"]] == [
        "カジュアルマスク", "casual mask"
    ]


def test_glossary_accept_spellings_are_quiz_only(tmp_path, bank):
    """accept (クイズで正解にするだけの表記ゆれ) は正解になるが、別名 (aliases) とは別に持つ。"""
    terms = {t["id"]: t for t in load_glossary()}
    lm = terms["language-model"]
    assert "げんごもでる" in lm["accept"] and "げんごもでる" not in lm["aliases"]
    q = bank.quiz("glossary-d2t").question("glossary-term-language-model")
    assert "げんごもでる" in q["answers"] and "LM" in q["answers"]
    # accept の表記も問題文に入れてはいけない (答えが見えてしまう)
    with pytest.raises(BankError, match="正規化指数関数"):
        load_glossary(_glossary(tmp_path, accept=["正規化指数関数"],
                                quiz_prompt="点数の並びを割合に変える正規化指数関数。"))
    with pytest.raises(BankError, match="accept"):
        load_glossary(_glossary(tmp_path, accept="softmax function"))


def test_glossary_d2t_quiz_is_shuffled_and_not_the_glossary_text(bank):
    terms = load_glossary()
    d2t = bank.quiz("glossary-d2t")
    ids = [q["id"].removeprefix("glossary-term-") for q in d2t.questions]
    assert sorted(ids) == sorted(t["id"] for t in terms) and ids != [t["id"] for t in terms]
    assert ids == [
        q["id"].removeprefix("glossary-term-")
        for q in load_bank("a6", reload=True).quiz("glossary-d2t").questions
    ]
    by_id = {t["id"]: t for t in terms}
    for q, tid in zip(d2t.questions, ids):
        assert (
            by_id[tid]["quiz_prompt"] in q["prompt"] and by_id[tid]["definition"] not in q["prompt"]
        )


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
