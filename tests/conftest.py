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
