"""テスト共通の準備: 学習記録はテストごとの一時ファイルに書く (ホームフォルダを汚さない)。"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBOOK_PROGRESS", str(tmp_path / "progress.json"))
    import llmbook.quiz.progress as progress

    monkeypatch.setattr(progress, "_STORE", None)
    yield


@pytest.fixture(scope="session")
def data():
    """A-1 の本のコーパス (A-1 のテストで共有する)。"""
    from llmbook.chapters.a1 import load_a1_data

    return load_a1_data()


@pytest.fixture(scope="session")
def ngrams(data):
    from llmbook.chapters.a1 import fit_ngrams

    return fit_ngrams(data.train_ids, data.vocab_size)


@pytest.fixture(scope="session")
def ngrams_addk(data):
    from llmbook.chapters.a1 import fit_ngrams

    return fit_ngrams(data.train_ids, data.vocab_size, smoothing="add_k", k=0.01)


def correct_response(q):
    """自動採点の問題 q に対する正解の回答 (バンクのテストで共有する)。"""
    t = q["type"]
    if t == "single":
        return next(i for i, c in enumerate(q["choices"]) if c["correct"])
    if t == "multi":
        return [i for i, c in enumerate(q["choices"]) if c["correct"]]
    if t == "numeric":
        return str(q["answer"])
    if t == "short":
        return q["answers"][0]
    if t in ("matching", "ordering"):
        return list(range(len(q["pairs"] if t == "matching" else q["items"])))
    raise AssertionError(t)


def assert_auto_questions_grade(bank):
    """自動採点の各問が正解を受け入れ、間違い (単一選択の誤り・ずれた数値) を退けることを確かめる。

    コード課題 (採点関数ごとのテストがある) と記述問題 (自己採点) は除く。
    """
    from llmbook.quiz import grade

    for quiz in bank.quizzes:
        for q in quiz.questions:
            if q["type"] in ("code", "essay"):
                continue
            assert grade(q, correct_response(q)).correct, q["id"]
            if q["type"] == "single":
                wrong = next(i for i, c in enumerate(q["choices"]) if not c["correct"])
                assert grade(q, wrong).status == "incorrect", q["id"]
            if q["type"] == "numeric":
                assert not grade(q, str(q["answer"] * 1.5 + 1)).correct, q["id"]


def find_question(bank, qid: str) -> dict:
    """バンクのどのクイズにあっても、id で問題を引く。"""
    return next(q for quiz in bank.quizzes for q in quiz.questions if q["id"] == qid)


def correct_texts(q: dict) -> list:
    """選択問題の正しい選択肢の本文。"""
    return [c["text"] for c in q["choices"] if c["correct"]]


@pytest.fixture(scope="module")
def one_thread():
    """小さな行列ばかりのテストを 1 スレッドで (共有の 2 コアでは、2 スレッドが何十倍も遅い)。"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def diagnoses(result) -> list[str]:
    """コード課題の採点結果のうち、「考えられる原因」の行。"""
    return [d for d in result.details if d.startswith("考えられる原因")]


def assert_mistake_gets_zero_and_its_diagnosis(check, mistakes, words, index: int) -> None:
    """よくある誤り mistakes[index] が 0 点で、その誤りの説明 (words[index] を含む) だけが出る。"""
    assert len(words) == len(mistakes)
    wrong, why = mistakes[index]
    r = check(wrong)
    assert r.status == "incorrect" and r.score == 0
    advice = diagnoses(r)
    assert len(advice) == 1 and why in advice[0] and words[index] in advice[0], advice


def assert_code_solutions_pass_and_starters_fail(bank):
    """各コード課題で、模範解答は満点、ひな形 (None を返す) は 0 点で理由が出ることを確かめる。"""
    from llmbook.quiz import grade

    for q in bank.quiz("code").questions:
        ns: dict = {}
        exec(q["solution"], ns)  # noqa: S102
        assert grade(q, ns[q["function_name"]]).correct, q["id"]
        ns = {}
        exec(q["starter"], ns)  # noqa: S102 - ひな形は実行してもエラーにならない
        r = grade(q, ns[q["function_name"]])
        assert r.status == "incorrect" and r.score == 0, q["id"]
        assert "None" in " ".join(r.details), q["id"]


@pytest.fixture
def bank():
    from llmbook.quiz import load_bank

    return load_bank("a6")


@pytest.fixture
def questions(bank):
    """A-6 のバンクから種類ごとに 1 問ずつ (コピーを返す)。"""
    out = {}
    for quiz in bank.quizzes:
        for q in quiz.questions:
            out.setdefault(q["type"], copy.deepcopy(q))
    return out


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    # nbval が章を実行するカーネルの通信を暗号化する (暗号化なしの TCP への警告を出さない)
    import llmbook.sphinxext

    llmbook.sphinxext.encrypt_kernel_transport()
