"""学習記録 (カーネル側): 記録・リセット・壊れたファイル・書き込めない場所。"""
from __future__ import annotations

import json

import pytest

from llmbook.quiz import ProgressStore, grade_answer, reset_progress
from llmbook.quiz.grading import Result
from llmbook.quiz.progress import get_store


def test_record_and_reload(tmp_path):
    path = tmp_path / "p.json"
    s = ProgressStore(path)
    s.record("a6", "q5", "q5-sqrt", Result("incorrect", 0.0, "×"), "7")
    s.record("a6", "q5", "q5-sqrt", Result("correct", 1.0, "○"), "8")
    s.record("a6", "q5", "q5-std", Result("invalid", 0.0, "?"), "x")  # invalid は記録しない
    again = ProgressStore(path)
    rec = again.get("a6", "q5", "q5-sqrt")
    assert (
        rec["score"] == 1.0
        and rec["best"] == 1.0
        and rec["attempts"] == 2
        and rec["response"] == "8"
    )
    assert again.get("a6", "q5", "q5-std") is None


def test_best_score_survives_a_worse_later_attempt(tmp_path):
    s = ProgressStore(tmp_path / "p.json")
    s.record("a6", "q5", "q5-sqrt", Result("correct", 1.0, "○"), "8")
    s.record("a6", "q5", "q5-sqrt", Result("incorrect", 0.0, "×"), "7")
    rec = ProgressStore(tmp_path / "p.json").get("a6", "q5", "q5-sqrt")
    assert rec["score"] == 0.0 and rec["best"] == 1.0 and rec["attempts"] == 2


def test_essay_text_is_kept(tmp_path):
    s = ProgressStore(tmp_path / "p.json")
    s.record(
        "a6", "q1", "q1-essay", Result("self_assessed", 0.5, ""),
        {"text": "自分の答え", "ticked": [0, 1]},
    )
    assert (
        ProgressStore(tmp_path / "p.json").get("a6", "q1", "q1-essay")["response"]["text"]
        == "自分の答え"
    )


def test_reset_one_chapter(tmp_path):
    s = ProgressStore(tmp_path / "p.json")
    s.record("a6", "q1", "x", Result("correct", 1.0, ""))
    s.record("a1", "q1", "x", Result("correct", 1.0, ""))
    assert s.reset("a6") == 1
    assert s.get("a1", "q1", "x") and not s.get("a6", "q1", "x")
    assert s.reset() == 1


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]", '{"version": 99, "answers": {}}',
        '{"version": 1, "answers": {"k": {"score": 7, "status": "correct"}}}',
        '{"version": 1, "answers": []}', "\x00\x01",
    ],
)
def test_corrupted_file_is_backed_up_with_warning(tmp_path, content):
    path = tmp_path / "p.json"
    path.write_text(content, encoding="utf-8")
    with pytest.warns(UserWarning, match="壊れていた"):
        s = ProgressStore(path)
    assert s.data["answers"] == {}
    backups = list(tmp_path.glob("p.json.corrupt-*"))
    # 元のデータは消さない
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == content
    s.record("a6", "q1", "x", Result("correct", 1.0, ""))
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 1


def test_non_utf8_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes("{壊れ".encode("cp932"))
    with pytest.warns(UserWarning):
        s = ProgressStore(path)
    assert s.data["answers"] == {}


def test_path_is_a_directory_keeps_going(tmp_path):
    d = tmp_path / "dir.json"
    d.mkdir()
    with pytest.warns(UserWarning):
        s = ProgressStore(d)
    with pytest.warns(UserWarning, match="保存できません"):
        s.record("a6", "q1", "x", Result("correct", 1.0, ""))
    assert s.get("a6", "q1", "x")["score"] == 1.0  # メモリには残る


def test_env_var_and_api(tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    monkeypatch.setenv("LLMBOOK_PROGRESS", str(path))
    assert grade_answer("a6", "q5", "q5-sqrt", "8", record=True).correct
    assert json.loads(path.read_text(encoding="utf-8"))["answers"]["a6/q5/q5-sqrt"]["score"] == 1.0
    assert get_store().path == path
    assert reset_progress("a6") == 1
