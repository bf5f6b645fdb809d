"""採点規則 (Python 版)。Web サイトの ``static/quiz.js`` は同じ規則を JavaScript で実装する。

どちらも「問題 (検証済みの辞書)」と「回答」から :class:`Result` を作る。
回答の型が違う・空・長すぎる、といった入力は例外にせず ``status="invalid"`` の
結果として日本語で理由を返す (記録もしない)。規則が 2 つの実装で同じであることは
``tests/test_grading_parity.py`` が同じ事例を両方に通して確かめる。
"""
from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from .result import Result

__all__ = [
    "Result",
    "grade",
    "normalize_text",
    "parse_number",
    "MAX_SHORT",
    "MAX_NUMERIC",
    "MAX_ESSAY",
]

MAX_SHORT = 200
MAX_NUMERIC = 50
MAX_ESSAY = 4000

# 表記ゆれとして無視する文字: 空白、中黒、ハイフン類、長音符 (デコーダー / デコーダ)、
# かぎ括弧、句読点
_IGNORED = set(" \t\r\n\u3000・-‐‑‒–—―−ー_「」『』。、，．,.()（）")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_PAREN_RE = re.compile(r"^(.+?)\((.+)\)$")
_FRAC_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)$")


def _invalid(msg: str) -> Result:
    return Result("invalid", 0.0, msg)


def _mark(status: str) -> str:
    return {"correct": "○ 正解", "partial": "△ 一部正解", "incorrect": "× 不正解"}[status]


def normalize_text(s: str) -> str:
    """短答の比較用に正規化する。

    NFKC (全角/半角をそろえる)、小文字化、ひらがな→カタカナ、記号・空白・長音符を除く。
    """
    s = unicodedata.normalize("NFKC", s).lower()
    out = []
    for ch in s:
        if ch in _IGNORED:
            continue
        code = ord(ch)
        if 0x3041 <= code <= 0x3096:  # ひらがな → カタカナ
            ch = chr(code + 0x60)
        out.append(ch)
    return "".join(out)


def parse_number(text: str) -> float | None:
    """「8」「８」「0.5」「1e-3」「2/3」「50%」を数に直す。読めなければ ``None``。"""
    s = (
        unicodedata.normalize("NFKC", text)
        .strip()
        .replace(",", "")
        .replace("_", "")
        .replace(" ", "")
    )
    s = s.replace("−", "-")
    if s.endswith("%"):
        v = parse_number(s[:-1]) if len(s) > 1 and not s[:-1].endswith("%") else None
        return None if v is None else v / 100
    if _NUM_RE.match(s):
        v = float(s)
    else:
        m = _FRAC_RE.match(s)
        if not m:
            return None
        den = float(m.group(2))
        if den == 0:
            return None
        v = float(m.group(1)) / den
    return v if math.isfinite(v) else None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def near(value: float, target: float, tol: float) -> bool:
    """``value`` が ``target`` の許容誤差 ``tol`` の内か (quiz.js の ``near`` と同じ)。"""
    return abs(value - target) <= tol + 1e-9 * max(1.0, abs(target))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ---------------------------------------------------------------- 種類ごとの採点


def _grade_single(q, resp) -> Result:
    n = len(q["choices"])
    if resp is None:
        return _invalid("選択肢を 1 つ選んでください。")
    if not _is_int(resp) or not (0 <= resp < n):
        return _invalid(
            f"回答は 0〜{n - 1} の選択肢番号 (整数) で渡してください。受け取った値: {resp!r:.60}"
        )
    choice = q["choices"][resp]
    status = "correct" if choice["correct"] else "incorrect"
    details = [f"あなたの選択「{choice['text']}」: {choice['why']}"]
    if not choice["correct"]:
        right = next(c for c in q["choices"] if c["correct"])
        details.append(f"正解「{right['text']}」: {right['why']}")
    return Result(status, 1.0 if choice["correct"] else 0.0, _mark(status), details)


def _grade_multi(q, resp) -> Result:
    n = len(q["choices"])
    if isinstance(resp, (set, tuple)):
        resp = sorted(resp)
    if not isinstance(resp, list) or not all(_is_int(i) and 0 <= i < n for i in resp):
        return _invalid(
            f"回答は選んだ選択肢番号 (0〜{n - 1} の整数) のリストで渡してください。受け取った値: "
            f"{resp!r:.60}"
        )
    if len(set(resp)) != len(resp):
        return _invalid("同じ選択肢が 2 回選ばれています。")
    if not resp:
        return _invalid("少なくとも 1 つ選んでください (正解は 1 つ以上あります)。")
    picked = set(resp)
    n_correct = sum(c["correct"] for c in q["choices"])
    hits = sum(1 for i in picked if q["choices"][i]["correct"])
    misses = len(picked) - hits
    details = []
    for i, c in enumerate(q["choices"]):
        chosen = i in picked
        if chosen and not c["correct"]:
            details.append(f"「{c['text']}」は選ぶべきではありません: {c['why']}")
        elif not chosen and c["correct"]:
            details.append(f"「{c['text']}」も正しい選択肢です: {c['why']}")
        elif chosen:
            details.append(f"「{c['text']}」○: {c['why']}")
    # 得点 = max(0, (正しく選んだ数 − 誤って選んだ数) / 正解の数)。全部に印を付けると 0 点になる
    score = max(0.0, (hits - misses) / n_correct)
    status = (
        "correct"
        if hits == n_correct and misses == 0
        else ("partial" if score > 0 else "incorrect")
    )
    if status != "correct":
        details.append(
            f"得点の付け方: (正しく選んだ数 {hits} − 誤って選んだ数 {misses})"
            f" ÷ 正解の数 {n_correct} (0 未満は 0 点)。"
            "当てずっぽうに多く選ぶと、誤りの分だけ減ります。"
        )
    return Result(
        status, score,
        f"{_mark(status)} (正解 {n_correct} 個のうち {hits} 個を選び、誤りを {misses} 個選んだ)",
        details,
    )


def _grade_numeric(q, resp) -> Result:
    if isinstance(resp, bool) or resp is None:
        return _invalid("数値を入力してください。")
    if isinstance(resp, (int, float)):
        value = float(resp)
        if not math.isfinite(value):
            return _invalid("有限の数値を入力してください。")
    elif isinstance(resp, str):
        if not resp.strip():
            return _invalid("数値を入力してください (空欄です)。")
        if len(resp) > MAX_NUMERIC:
            return _invalid(
                f"入力が長すぎます ({len(resp)} 文字、上限 {MAX_NUMERIC} 文字)。"
                "数値だけを入力してください。"
            )
        value = parse_number(resp)
        if value is None:
            return _invalid(
                "数値として読めません。例: 8、0.5、1e-3、2/3、50% のように入力してください。"
            )
    else:
        return _invalid(
            f"回答は数値か数値の文字列で渡してください。受け取った型: {type(resp).__name__}"
        )
    ans, tol = q["answer"], q["tolerance"]
    ok = near(value, ans, tol)
    status = "correct" if ok else "incorrect"
    unit = q.get("unit", "")
    details = [] if ok else [f"あなたの答え {_fmt(value)}{unit} は、正解 {_fmt(ans)}{unit}"
                             + (f" (許容誤差 ±{_fmt(tol)})" if tol else "") + " と違います。"]
    # よくある誤答 (例: 標準偏差の代わりに分散) には、なぜ違うかを添える
    details += [h["why"] for h in q.get("hints", []) if not ok and near(value, h["value"], tol)][:1]
    return Result(status, 1.0 if ok else 0.0, _mark(status), details)


def _grade_short(q, resp) -> Result:
    if resp is None or (isinstance(resp, str) and not resp.strip()):
        return _invalid("答えを入力してください (空欄です)。")
    if not isinstance(resp, str):
        return _invalid(f"回答は文字列で渡してください。受け取った型: {type(resp).__name__}")
    if len(resp) > MAX_SHORT:
        return _invalid(
            f"入力が長すぎます ({len(resp)} 文字、上限 {MAX_SHORT} 文字)。"
            "用語だけを入力してください。"
        )
    got = normalize_text(resp)
    if not got:
        return _invalid("記号と空白だけでは答えになりません。")
    # よくある誤答 (例: 「カジュアルマスク」) は、なぜ違うかを添えて不正解にする
    for wrong in q.get("rejects", []):
        if got == normalize_text(wrong["answer"]):
            return Result(
                "incorrect", 0.0, _mark("incorrect"),
                [
                    f"「{wrong['answer']}」: {wrong['why']}",
                    f"正解の例: {' / '.join(q['answers'][:3])}",
                ],
            )
    accepted = {normalize_text(a) for a in q["answers"]}
    ok = got in accepted
    # 「RNN (リカレントニューラルネットワーク)」のように、かっこの外と中がどちらも正解の表記なら正解
    m = _PAREN_RE.match(unicodedata.normalize("NFKC", resp).strip())
    if not ok and m:
        ok = normalize_text(m.group(1)) in accepted and normalize_text(m.group(2)) in accepted
    status = "correct" if ok else "incorrect"
    details = [] if ok else [f"正解の例: {' / '.join(q['answers'][:3])}"]
    return Result(status, 1.0 if ok else 0.0, _mark(status), details)


def _grade_matching(q, resp) -> Result:
    n = len(q["pairs"])
    if isinstance(resp, tuple):
        resp = list(resp)
    if not isinstance(resp, list) or len(resp) != n:
        return _invalid(
            f"回答は {n} 個の要素を持つリスト (左の各項目に選んだ説明の番号) で渡してください。"
        )
    if any(r is None for r in resp):
        return _invalid("まだ選んでいない項目があります。すべての項目に説明を選んでください。")
    if not all(_is_int(r) and 0 <= r < n for r in resp):
        return _invalid(
            f"説明の番号は 0〜{n - 1} の整数で渡してください。受け取った値: {resp!r:.60}"
        )
    right = sum(1 for i, r in enumerate(resp) if r == i)
    details = []
    for i, r in enumerate(resp):
        if r != i:
            details.append(f"「{q['pairs'][i]['left']}」の説明は「{q['pairs'][i]['right']}」です。")
    score = right / n
    status = "correct" if right == n else ("partial" if right > 0 else "incorrect")
    return Result(status, score, f"{_mark(status)} ({right}/{n} 組が正しい対応)", details)


def _grade_ordering(q, resp) -> Result:
    n = len(q["items"])
    if isinstance(resp, tuple):
        resp = list(resp)
    if not isinstance(resp, list) or len(resp) != n or not all(_is_int(r) for r in resp) \
            or sorted(resp) != list(range(n)):
        return _invalid(
            f"回答は 0〜{n - 1} をちょうど 1 回ずつ含む並び (リスト) で渡してください。"
        )
    right = sum(1 for i, r in enumerate(resp) if r == i)
    status = "correct" if right == n else ("partial" if right > 0 else "incorrect")
    details = []
    if status != "correct":
        first = next(i for i, r in enumerate(resp) if r != i)
        details.append(f"{first + 1} 番目は「{q['items'][first]}」です。")
        details.append("正しい順: " + " → ".join(q["items"]))
        details.append(
            f"得点の付け方: 正しい位置 (何番目か) に置けた項目の数 ÷ 項目の数 = {right}/{n}。"
            "前後関係ではなく、それぞれの位置が合っているかで数えます。"
        )
    return Result(status, right / n, f"{_mark(status)} ({right}/{n} 個が正しい位置)", details)


def _grade_essay(q, resp) -> Result:
    if not isinstance(resp, dict) or "text" not in resp:
        return _invalid(
            "記述問題の回答は {'text': 自分の答え, 'ticked': [押さえた要点の番号]} "
            "で渡してください。"
        )
    text = resp.get("text")
    if not isinstance(text, str) or not text.strip():
        return _invalid("まず自分の言葉で答えを書いてください。書いてから模範解答と要点を見ます。")
    if len(text) > MAX_ESSAY:
        return _invalid(
            f"答えが長すぎます ({len(text)} 文字、上限 {MAX_ESSAY} 文字)。"
            "要点をしぼって書き直してください (入力は消えません)。"
        )
    ticked = resp.get("ticked", [])
    k = len(q["key_ideas"])
    if isinstance(ticked, (set, tuple)):
        ticked = sorted(ticked)
    if (
        not isinstance(ticked, list)
        or not all(_is_int(i) and 0 <= i < k for i in ticked)
        or len(set(ticked)) != len(ticked)
    ):
        return _invalid(f"押さえた要点は 0〜{k - 1} の番号のリストで渡してください。")
    score = len(ticked) / k
    return Result("self_assessed", score,
                  f"自己採点: 要点 {len(ticked)}/{k} 個を押さえた (自動採点ではありません)",
                  [("☑ " if i in ticked else "☐ ") + idea for i, idea in enumerate(q["key_ideas"])])


def grade(question: dict[str, Any], response: Any) -> Result:
    """検証済みの問題と回答から :class:`Result` を作る。

    コード課題は :func:`llmbook.quiz.codecheck.grade_code` で採点する。
    """
    qtype = question.get("type")
    if qtype == "code":
        from .codecheck import grade_code

        return _with_explanation(question, grade_code(question, response))
    fn = {
        "single": _grade_single,
        "multi": _grade_multi,
        "numeric": _grade_numeric,
        "short": _grade_short,
        "matching": _grade_matching,
        "ordering": _grade_ordering,
        "essay": _grade_essay,
    }.get(qtype)
    if fn is None:
        return Result("error", 0.0, f"未知の問題の種類です: {qtype!r}")
    return _with_explanation(question, fn(question, response))


def _with_explanation(question: dict[str, Any], result: Result) -> Result:
    """記録される自動採点の結果に、問題の解説 (``explanation``) を付ける (quiz.js も同じ)。"""
    if result.recordable and result.status != "self_assessed":
        result.explanation = question.get("explanation", "") or ""
    return result
