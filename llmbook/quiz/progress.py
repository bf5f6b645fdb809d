"""学習の記録 (カーネル側)。ホームフォルダの JSON ファイルに、問題ごとの最新の結果を残す。

- 置き場所: 環境変数 ``LLMBOOK_PROGRESS`` があればそのパス、なければ ``~/.llmbook/progress.json``。
- 壊れたファイルは消さずに ``progress.json.corrupt-<日時>`` へ退避し、警告を出して空から始める。
- 書き込めない場所でも止まらない (その回の記録はメモリにだけ残し、警告を 1 度出す)。
Web サイト側 (``static/quiz.js``) はブラウザの localStorage に同じ形で記録する。
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Any

from .grading import Result

__all__ = ["ProgressStore", "default_path", "get_store", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
_MAX_SAVED_RESPONSE = 4000  # 記録する回答の長さの上限 (文字数)


def default_path() -> Path:
    env = os.environ.get("LLMBOOK_PROGRESS")
    return Path(env).expanduser() if env else Path.home() / ".llmbook" / "progress.json"


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _valid(data: Any) -> bool:
    if not isinstance(data, dict) or data.get("version") != SCHEMA_VERSION:
        return False
    answers = data.get("answers")
    if not isinstance(answers, dict):
        return False
    for key, rec in answers.items():
        if not isinstance(key, str) or not isinstance(rec, dict):
            return False
        score = rec.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            return False
        if not isinstance(rec.get("status"), str):
            return False
    return True


class ProgressStore:
    """問題ごとの結果を保存する。

    形は ``{"version": 1, "answers": {"章/小テスト/問題": {...}}}``。
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.warnings: list[str] = []
        self._writable = True
        self.data = self._load()

    # -------------------------------------------------------------- 読み書き
    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        warnings.warn(msg, stacklevel=3)

    def _load(self) -> dict[str, Any]:
        empty = {"version": SCHEMA_VERSION, "answers": {}}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return empty
        except (OSError, UnicodeDecodeError) as exc:
            self._warn(
                f"学習記録 {self.path} を読めませんでした ({exc})。今回は空の記録から始めます。"
            )
            return empty
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if _valid(data):
            return data
        backup = self.path.with_name(
            self.path.name + ".corrupt-" + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        )
        try:
            self.path.replace(backup)
            where = f"元のファイルは {backup} に残しました"
        except OSError:
            where = "元のファイルは移動できなかったのでそのままです"
        self._warn(f"学習記録 {self.path} が壊れていたため、空の記録から始めます ({where})。")
        return empty

    def save(self) -> None:
        if not self._writable:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            self._writable = False
            self._warn(
                f"学習記録を {self.path} に保存できません ({exc})。"
                "このセッションの間だけ記録を保ちます。"
            )

    # -------------------------------------------------------------- 操作
    @staticmethod
    def key(chapter: str, quiz_id: str, qid: str) -> str:
        return f"{chapter}/{quiz_id}/{qid}"

    def record(
        self, chapter: str, quiz_id: str, qid: str, result: Result, response: Any = None
    ) -> None:
        """採点結果を記録する (invalid / error の結果は記録しない)。"""
        if not result.recordable:
            return
        k = self.key(chapter, quiz_id, qid)
        prev = self.data["answers"].get(k, {})
        try:
            saved = json.loads(json.dumps(response, ensure_ascii=False, default=str))
        except (TypeError, ValueError):
            saved = None
        if isinstance(saved, str) and len(saved) > _MAX_SAVED_RESPONSE:
            saved = saved[:_MAX_SAVED_RESPONSE]
        if isinstance(saved, dict) and isinstance(saved.get("text"), str):
            saved["text"] = saved["text"][:_MAX_SAVED_RESPONSE]
        self.data["answers"][k] = {
            "status": result.status,
            "score": float(result.score),
            "best": max(float(result.score), float(prev.get("best", 0.0))),
            "attempts": int(prev.get("attempts", 0)) + 1,
            "response": saved if not callable(response) else None,
            "updated": _now(),
        }
        self.save()

    def get(self, chapter: str, quiz_id: str, qid: str) -> dict[str, Any] | None:
        return self.data["answers"].get(self.key(chapter, quiz_id, qid))

    def reset(self, chapter: str | None = None) -> int:
        """記録を消す (``chapter`` を指定すればその章だけ)。消した件数を返す。"""
        answers = self.data["answers"]
        keys = [k for k in answers if chapter is None or k.startswith(chapter + "/")]
        for k in keys:
            del answers[k]
        self.save()
        return len(keys)


_STORE: ProgressStore | None = None


def get_store(reload: bool = False) -> ProgressStore:
    """カーネル全体で共有する記録を返す (パスが変わっていれば読み直す)。"""
    global _STORE
    if reload or _STORE is None or _STORE.path != default_path():
        _STORE = ProgressStore()
    return _STORE
