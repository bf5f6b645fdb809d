"""問題バンク (章ごとの YAML ファイル) を読み込み、検証する。

問題バンクは 1 章 1 ファイル (``llmbook/quiz/banks/<章>.yaml``)。読み込むたびに検証し、
形がおかしければ「どのファイルの、どの問題の、どのフィールドか」を日本語で示す
:class:`BankError` を出す。カーネル上のウィジェットも、Web サイトの静的 HTML も、
ここで検証した同じデータから作る。
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BankError",
    "Bank",
    "Quiz",
    "QUESTION_TYPES",
    "AUTO_TYPES",
    "load_bank",
    "load_bank_file",
    "load_glossary",
    "available_chapters",
]

BANK_DIR = Path(__file__).parent / "banks"
GLOSSARY_PATH = Path(__file__).resolve().parent.parent / "data" / "glossary.yaml"

#: 問題の種類。essay は自己採点、code はカーネルでだけ採点できる。
QUESTION_TYPES = ("single", "multi", "numeric", "short", "matching", "ordering", "essay", "code")
#: 自動採点される種類 (essay 以外)。
AUTO_TYPES = ("single", "multi", "numeric", "short", "matching", "ordering", "code")

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_COMMON = {"id", "type", "prompt", "explanation", "ref"}
_FIELDS = {
    "single": _COMMON | {"choices"},
    "multi": _COMMON | {"choices"},
    "numeric": _COMMON | {"answer", "tolerance", "unit", "hints"},
    "short": _COMMON | {"answers", "placeholder", "rejects"},
    "matching": _COMMON | {"pairs", "left_label", "right_label"},
    "ordering": _COMMON | {"items"},
    "essay": _COMMON | {"model_answer", "key_ideas"},
    "code": _COMMON | {"function_name", "starter", "checker", "hint", "solution"},
}
_CHOICE_FIELDS = {"text", "correct", "why"}
#: 1 つの文字列フィールドの長さの上限 (壊れたバンクや巨大な文字列から守る)。
MAX_TEXT = 5000


class BankError(ValueError):
    """問題バンクの形がおかしい。メッセージはファイル・問題 id・フィールドを名指しする。"""

    def __init__(self, file: str | Path, qid: str | None, field_name: str | None, message: str):
        self.file = str(file)
        self.qid = qid
        self.field = field_name
        where = f"{self.file}"
        if qid:
            where += f" の問題 '{qid}'"
        if field_name:
            where += f" のフィールド '{field_name}'"
        super().__init__(f"問題バンクの誤り: {where}: {message}")


@dataclass
class Quiz:
    """小テスト 1 つ (章の中の 1 か所に表示される問題のまとまり)。"""

    chapter: str
    id: str
    title: str
    questions: list[dict[str, Any]]
    intro: str = ""

    def question(self, qid: str) -> dict[str, Any]:
        for q in self.questions:
            if q["id"] == qid:
                return q
        raise KeyError(f"小テスト '{self.id}' に問題 '{qid}' はありません")


@dataclass
class Bank:
    """1 章分の問題バンク。"""

    chapter: str
    title: str
    path: Path
    quizzes: list[Quiz] = field(default_factory=list)

    def quiz(self, quiz_id: str) -> Quiz:
        for q in self.quizzes:
            if q.id == quiz_id:
                return q
        ids = ", ".join(q.id for q in self.quizzes)
        raise KeyError(f"{self.path.name} に小テスト '{quiz_id}' はありません (あるもの: {ids})")


def available_chapters() -> list[str]:
    return sorted(p.stem for p in BANK_DIR.glob("*.yaml"))


# ---------------------------------------------------------------- 小さな検証関数


def _str(file, qid, name, value, *, allow_empty=False) -> str:
    if not isinstance(value, str):
        raise BankError(file, qid, name, f"文字列が必要です (実際の型: {type(value).__name__})")
    if not allow_empty and not value.strip():
        raise BankError(file, qid, name, "空の文字列です")
    if len(value) > MAX_TEXT:
        raise BankError(file, qid, name, f"長すぎます ({len(value)} 文字、上限 {MAX_TEXT})")
    return value


def _num(file, qid, name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BankError(file, qid, name, f"数値が必要です (実際の値: {value!r})")
    if value != value or value in (float("inf"), float("-inf")):
        raise BankError(file, qid, name, "有限の数値が必要です")
    return float(value)


def _list(file, qid, name, value, *, min_len=1, max_len=50) -> list:
    if not isinstance(value, list):
        raise BankError(file, qid, name, f"リストが必要です (実際の型: {type(value).__name__})")
    if not (min_len <= len(value) <= max_len):
        raise BankError(
            file, qid, name,
            f"要素数は {min_len}〜{max_len} 個にしてください (実際: {len(value)} 個)",
        )
    return value


def display_order(key: str, n: int, *, derange: bool = True) -> list[int]:
    """``key`` (「章/問題 id」) だけから決まる表示順。ビルドのたび・マシンが変わっても同じ順になる。

    Python の ``hash()`` (実行ごとに変わる) ではなく SHA-256 を種にした Fisher–Yates で並べる。
    ``derange=True`` なら正解の並び (0, 1, …) そのものは避ける (並べ替え・対応づけの問題用)。
    順はここで一度だけ計算し、ウィジェットにも Web サイトの HTML (``order``) にも同じものを渡す。
    """
    order = list(range(n))
    if n < 2:
        return order
    state = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    for i in range(n - 1, 0, -1):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)  # 線形合同法
        j = (state >> 33) % (i + 1)  # 下位ビットは周期が短いので上位ビットを使う
        order[i], order[j] = order[j], order[i]
    if derange and order == list(range(n)):
        order = order[1:] + order[:1]
    return order


def checker_module(chapter: str) -> str:
    """章 ``chapter`` のコード課題の採点関数を置くモジュール名 (1 章 1 モジュール)。"""
    return f"{__package__}.checks_{chapter}"


def resolve_checker(chapter: str, name: str):
    """問題バンクの ``checker:`` (関数名) を、その章の採点モジュールの関数に解決する。"""
    return getattr(importlib.import_module(checker_module(chapter)), name)


def _rejects(file, qid, raw: Any, accepted: list[str]) -> list[dict[str, str]]:
    """よくある誤答と、なぜ違うかの説明 (短答問題と用語集で使う)。

    正解の表記と重なってはいけない。
    """
    from .grading import normalize_text

    out = []
    ok = {normalize_text(a) for a in accepted}
    for i, r in enumerate(_list(file, qid, "rejects", raw, min_len=0, max_len=10)):
        name = f"rejects[{i}]"
        if not isinstance(r, dict) or set(r) != {"answer", "why"}:
            raise BankError(
                file, qid, name, "answer (誤答) と why (なぜ違うか) だけを持つ辞書にしてください"
            )
        item = {
            "answer": _str(file, qid, f"{name}.answer", r["answer"]),
            "why": _str(file, qid, f"{name}.why", r["why"]),
        }
        if normalize_text(item["answer"]) in ok:
            raise BankError(
                file, qid, f"{name}.answer",
                f"「{item['answer']}」は正解の表記と同じです (正解と誤答の両方にはできません)",
            )
        out.append(item)
    return out


def _hints(file, qid, raw: Any, answer: float, tol: float) -> list[dict[str, Any]]:
    """数値問題のよくある誤答 ``value`` と理由 ``why``。正解の範囲に入ってはいけない。"""
    from .grading import near

    out = []
    for i, h in enumerate(_list(file, qid, "hints", raw, min_len=0, max_len=10)):
        name = f"hints[{i}]"
        if not isinstance(h, dict) or set(h) != {"value", "why"}:
            raise BankError(file, qid, name, "value (誤答) と why (理由) だけの辞書にします")
        item = {"value": _num(file, qid, f"{name}.value", h["value"]),
                "why": _str(file, qid, f"{name}.why", h["why"])}
        if near(item["value"], answer, tol):
            raise BankError(file, qid, f"{name}.value", "正解の許容範囲に入る値です")
        out.append(item)
    return out


def _validate_question(file, raw: Any, seen: set[str], chapter: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BankError(
            file, None, None, f"問題は辞書 (キー: 値) で書いてください (実際: {raw!r:.80})"
        )
    qid = raw.get("id")
    if not isinstance(qid, str) or not _ID_RE.match(qid):
        raise BankError(file, str(qid) if qid is not None else None, "id",
                        "英小文字・数字・- _ だけの id が必要です")
    if qid in seen:
        raise BankError(file, qid, "id", "同じ id の問題が 2 つあります")
    seen.add(qid)
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        raise BankError(
            file, qid, "type", f"'{qtype}' は使えません。使える種類: {', '.join(QUESTION_TYPES)}"
        )
    unknown = set(raw) - _FIELDS[qtype]
    if unknown:
        raise BankError(
            file, qid, sorted(unknown)[0],
            f"種類 {qtype} の問題にはないフィールドです (書き間違い?)。使えるもの: "
            f"{', '.join(sorted(_FIELDS[qtype]))}",
        )
    q: dict[str, Any] = {
        "id": qid, "type": qtype, "prompt": _str(file, qid, "prompt", raw.get("prompt")),
    }
    q["explanation"] = _str(file, qid, "explanation", raw.get("explanation", ""), allow_empty=True)
    if "ref" in raw:
        q["ref"] = _str(file, qid, "ref", raw["ref"])

    if qtype in ("single", "multi"):
        choices = _list(file, qid, "choices", raw.get("choices"), min_len=2, max_len=10)
        out = []
        for i, c in enumerate(choices):
            name = f"choices[{i}]"
            if not isinstance(c, dict):
                raise BankError(
                    file, qid, name, "選択肢は text / correct / why を持つ辞書にしてください"
                )
            extra = set(c) - _CHOICE_FIELDS
            if extra:
                raise BankError(
                    file, qid, f"{name}.{sorted(extra)[0]}", "選択肢にないフィールドです"
                )
            correct = c.get("correct", False)
            if not isinstance(correct, bool):
                raise BankError(file, qid, f"{name}.correct", "true か false で書いてください")
            out.append({
                "text": _str(file, qid, f"{name}.text", c.get("text")),
                "correct": correct,
                "why": _str(file, qid, f"{name}.why", c.get("why")),
            })
        n_correct = sum(c["correct"] for c in out)
        if qtype == "single" and n_correct != 1:
            raise BankError(
                file, qid, "choices",
                f"単一選択の正解はちょうど 1 つにしてください (実際: {n_correct} 個)",
            )
        if qtype == "multi" and n_correct < 1:
            raise BankError(file, qid, "choices", "複数選択には正解が少なくとも 1 つ必要です")
        q["choices"] = out
        # 表示順 (正解の位置で答えが分からないように)。採点は元の並びの番号 = 選択肢そのもので行う
        q["order"] = display_order(f"{chapter}/{qid}", len(out), derange=False)
    elif qtype == "numeric":
        q["answer"] = _num(file, qid, "answer", raw.get("answer"))
        tol = _num(file, qid, "tolerance", raw.get("tolerance", 0))
        if tol < 0:
            raise BankError(file, qid, "tolerance", "許容誤差は 0 以上にしてください")
        q["tolerance"] = tol
        q["unit"] = _str(file, qid, "unit", raw.get("unit", ""), allow_empty=True)
        q["hints"] = _hints(file, qid, raw.get("hints", []), q["answer"], tol)
    elif qtype == "short":
        from .grading import normalize_text

        answers = _list(file, qid, "answers", raw.get("answers"), max_len=30)
        q["answers"] = [_str(file, qid, f"answers[{i}]", a) for i, a in enumerate(answers)]
        if any(not normalize_text(a) for a in q["answers"]):
            raise BankError(file, qid, "answers", "正規化すると空になる答えがあります")
        q["placeholder"] = _str(
            file, qid, "placeholder", raw.get("placeholder", ""), allow_empty=True
        )
        q["rejects"] = _rejects(file, qid, raw.get("rejects", []), q["answers"])
    elif qtype == "matching":
        pairs = _list(file, qid, "pairs", raw.get("pairs"), min_len=2, max_len=12)
        out = []
        for i, p in enumerate(pairs):
            if not isinstance(p, dict) or set(p) != {"left", "right"}:
                raise BankError(
                    file, qid, f"pairs[{i}]", "left と right だけを持つ辞書にしてください"
                )
            out.append({"left": _str(file, qid, f"pairs[{i}].left", p["left"]),
                        "right": _str(file, qid, f"pairs[{i}].right", p["right"])})
        rights = [p["right"] for p in out]
        if len(set(rights)) != len(rights):
            raise BankError(
                file, qid, "pairs", "right に同じ文字列が 2 回あります (どちらが正解か決まりません)"
            )
        q["pairs"] = out
        q["left_label"] = _str(file, qid, "left_label", raw.get("left_label", "用語"))
        q["right_label"] = _str(file, qid, "right_label", raw.get("right_label", "説明"))
        q["order"] = display_order(f"{chapter}/{qid}", len(out))
    elif qtype == "ordering":
        items = _list(file, qid, "items", raw.get("items"), min_len=2, max_len=12)
        q["items"] = [_str(file, qid, f"items[{i}]", it) for i, it in enumerate(items)]
        if len(set(q["items"])) != len(q["items"]):
            raise BankError(file, qid, "items", "同じ項目が 2 回あります")
        q["order"] = display_order(f"{chapter}/{qid}", len(q["items"]))
    elif qtype == "essay":
        q["model_answer"] = _str(file, qid, "model_answer", raw.get("model_answer"))
        ideas = _list(file, qid, "key_ideas", raw.get("key_ideas"), min_len=3, max_len=5)
        q["key_ideas"] = [_str(file, qid, f"key_ideas[{i}]", k) for i, k in enumerate(ideas)]
    elif qtype == "code":
        name = _str(file, qid, "function_name", raw.get("function_name"))
        if not name.isidentifier():
            raise BankError(
                file, qid, "function_name", f"'{name}' は Python の関数名として使えません"
            )
        q["function_name"] = name
        q["starter"] = _str(file, qid, "starter", raw.get("starter"))
        q["hint"] = _str(file, qid, "hint", raw.get("hint"))
        q["solution"] = _str(file, qid, "solution", raw.get("solution"))
        checker = _str(file, qid, "checker", raw.get("checker"))
        if not checker.isidentifier():
            raise BankError(file, qid, "checker", f"'{checker}' は関数名ではありません。"
                            f"{checker_module(chapter)} の中の採点関数の名前だけを書きます")
        try:
            fn = resolve_checker(chapter, checker)
        except Exception as exc:  # noqa: BLE001 - どんな失敗でもバンクの誤りとして報告する
            raise BankError(
                file, qid, "checker",
                f"採点関数 {checker_module(chapter)}.{checker} を読み込めません ({exc})",
            ) from None
        if not callable(fn):
            raise BankError(file, qid, "checker", f"'{checker}' は関数ではありません")
        q["checker"] = f"{checker_module(chapter)}:{checker}"
    return q


# ---------------------------------------------------------------- 用語集


#: 定義→用語の問題文 (quiz_prompt) と定義 (definition) の似かたの上限。
#: これ以上似ていたら書き直しを求める。
MAX_PROMPT_SIMILARITY = 0.45
#: 定義とそっくり同じ文字列が続いてよい長さの上限 (文字数)。
MAX_PROMPT_COMMON_RUN = 10


def _names(entry: dict[str, Any]) -> list[str]:
    """用語クイズで正解にする表記: 日本語名・英語名・別名 (aliases)・表記ゆれ (accept)。"""
    return [entry["ja"], entry["en"], *entry["aliases"], *entry.get("accept", [])]


def _check_quiz_prompt(path, entry: dict[str, Any]) -> None:
    """quiz_prompt は定義の言い換え (または穴埋め) で、用語そのものや別名を含まないこと。"""
    from .grading import normalize_text

    prompt, definition = entry["quiz_prompt"], entry["definition"]
    flat = normalize_text(prompt)
    plain = unicodedata.normalize("NFKC", prompt).lower()
    for name in _names(entry):
        raw = unicodedata.normalize("NFKC", name).lower()
        if raw.isascii():  # 英語名は単語として (「K」が「d_k」の k に当たらないように)
            found = re.search(rf"(?<![a-z0-9]){re.escape(raw)}(?![a-z0-9])", plain) is not None
        else:
            # 日本語名はそのまま。表記ゆれ (長音・ひらがな) をならした形は、
            # 3 文字以上の名前だけ比べる
            norm = normalize_text(name)
            found = raw in plain or (len(norm) >= 3 and norm in flat)
        if found:
            raise BankError(
                path, entry["id"], "quiz_prompt",
                f"問題文に用語 (またはその別名)「{name}」が入っています。答えが見えてしまいます",
            )
    matcher = difflib.SequenceMatcher(None, prompt, definition, autojunk=False)
    ratio = matcher.ratio()
    run = max((b.size for b in matcher.get_matching_blocks()), default=0)
    if ratio > MAX_PROMPT_SIMILARITY or run > MAX_PROMPT_COMMON_RUN:
        raise BankError(
            path, entry["id"], "quiz_prompt",
            f"定義とほとんど同じです (似かた {ratio:.2f}、同じ文字列が {run} 文字続く。上限は "
            f"{MAX_PROMPT_SIMILARITY} と {MAX_PROMPT_COMMON_RUN} 文字)。"
            "用語集の文を探すだけで答えられないよう、"
            "別の言葉で言い換えるか穴埋めにしてください",
        )


def load_glossary(path: str | Path | None = None) -> list[dict[str, Any]]:
    """用語集 (``llmbook/data/glossary.yaml``) を読み、検証して返す (A-6 §1 で使う)。

    各用語は ``definition`` (用語集に載せる定義) のほかに、定義→用語の問題で見せる ``quiz_prompt``
    (定義とは違う言葉の言い換えか穴埋め) を持つ。よくある誤答は ``rejects`` に理由つきで書く。
    ``aliases`` は実際に使われる別の呼び名 (用語集に「別名」として載る)、``accept`` は用語クイズで
    正解にするだけの表記ゆれ (複数形やひらがな書きなど。用語集には載らない)。
    """
    path = Path(path) if path else GLOSSARY_PATH
    data = _read_yaml(path)
    terms = data.get("terms") if isinstance(data, dict) else None
    terms = _list(path, None, "terms", terms, min_len=1, max_len=200)
    seen: set[str] = set()
    out = []
    for i, t in enumerate(terms):
        if not isinstance(t, dict):
            raise BankError(path, None, f"terms[{i}]", "用語は辞書で書いてください")
        tid = t.get("id")
        if not isinstance(tid, str) or not _ID_RE.match(tid) or tid in seen:
            raise BankError(path, str(tid), "id", "重複しない英小文字の id が必要です")
        seen.add(tid)
        allowed = {
            "id", "en", "ja", "aliases", "accept", "category", "chapter", "definition",
            "quiz_prompt", "rejects",
        }
        extra = set(t) - allowed
        if extra:
            raise BankError(path, tid, sorted(extra)[0], "用語にないフィールドです")
        entry = {k: _str(path, tid, k, t.get(k))
                 for k in ("en", "ja", "category", "chapter", "definition", "quiz_prompt")}
        for key in ("aliases", "accept"):
            entry[key] = [
                _str(path, tid, key, a) for a in _list(path, tid, key, t.get(key, []), min_len=0)
            ]
        entry["id"] = tid
        for name in (entry["ja"], entry["en"]):
            if name.lower() in entry["definition"].lower():
                raise BankError(
                    path, tid, "definition",
                    f"定義の中に用語そのもの「{name}」が入っています "
                    "(定義→用語の問題が成り立ちません)",
                )
        entry["rejects"] = _rejects(path, tid, t.get("rejects", []), _names(entry))
        _check_quiz_prompt(path, entry)
        out.append(entry)
    return out


def _glossary_quizzes(file, spec: dict, chapter: str) -> list[Quiz]:
    """``generate: glossary`` から、用語→定義 (対応づけ) と 定義→用語 (記述) の小テストを作る。

    定義→用語の問題は、用語集の定義そのものではなく ``quiz_prompt`` (言い換え・穴埋め) を
    問題文にし、問題の順も小テストの id から決まる順に混ぜる (用語集と同じ順に同じ文を
    探すだけでは解けないように)。
    """
    terms = load_glossary()
    categories: list[str] = []
    for t in terms:
        if t["category"] not in categories:
            categories.append(t["category"])
    base = spec["id"]
    match_qs = []
    for ci, cat in enumerate(categories):
        group = [t for t in terms if t["category"] == cat]
        match_qs.append(_validate_question(file, {
            "id": f"{base}-match-{ci + 1}",
            "type": "matching",
            "prompt": f"【{cat}】それぞれの用語に合う説明を選んでください。",
            "left_label": "用語",
            "right_label": "説明",
            "pairs": [{"left": f"{t['ja']} ({t['en']})", "right": t["definition"]} for t in group],
            "explanation": "用語集の定義と照らし合わせて確認しましょう。",
        }, set(), chapter))
    short_qs = []
    for t in terms:
        short_qs.append(_validate_question(file, {
            "id": f"{base}-term-{t['id']}",
            "type": "short",
            "prompt": ("次の説明に当たる用語は何ですか (日本語でも英語でも可)。\n"
                       f"{t['quiz_prompt']}"),
            "answers": _names(t),
            "rejects": t["rejects"],
            "placeholder": "用語を入力",
            "explanation": (f"正解は「{t['ja']}」({t['en']})。用語集の定義: {t['definition']} "
                            f"({t['chapter']} で扱います)"),
        }, set(), chapter))
    d2t_id = f"{base}-d2t"
    short_qs = [short_qs[i] for i in display_order(f"{chapter}/{d2t_id}", len(short_qs))]
    title = spec.get("title", "用語集")
    return [
        Quiz(
            chapter, f"{base}-t2d", f"{title}: 用語 → 定義", match_qs,
            intro="用語ごとに、合う説明をプルダウンから選びます。",
        ),
        Quiz(
            chapter, d2t_id, f"{title}: 説明 → 用語", short_qs,
            intro=(
                "用語集とは違う言い方で書いた説明 (または穴埋め) を読んで、"
                "用語を日本語か英語で入力します "
                "(全角・半角、カタカナ・英語の表記ゆれは同じものとして扱います)。"
                "問題の順は用語集の順とは違います。"
            ),
        ),
    ]


# ---------------------------------------------------------------- 読み込み


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BankError(path, None, None, "ファイルが見つかりません") from None
    except UnicodeDecodeError:
        raise BankError(
            path, None, None, "UTF-8 で読めません。UTF-8 で保存し直してください"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" ({mark.line + 1} 行目付近)" if mark is not None else ""
        raise BankError(
            path, None, None, f"YAML として読めません{where}: {getattr(exc, 'problem', exc)}"
        ) from None


def load_bank_file(path: str | Path) -> Bank:
    """任意のパスの問題バンクを読み、検証して :class:`Bank` を返す。"""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise BankError(
            path, None, None, "最上位は chapter / title / quizzes を持つ辞書にしてください"
        )
    extra = set(data) - {"chapter", "title", "quizzes"}
    if extra:
        raise BankError(path, None, sorted(extra)[0], "最上位にないフィールドです")
    chapter = _str(path, None, "chapter", data.get("chapter"))
    title = _str(path, None, "title", data.get("title"))
    quizzes_raw = _list(path, None, "quizzes", data.get("quizzes"), min_len=1, max_len=100)
    bank = Bank(chapter=chapter, title=title, path=path)
    seen_q: set[str] = set()
    seen_quiz: set[str] = set()
    for i, spec in enumerate(quizzes_raw):
        if not isinstance(spec, dict):
            raise BankError(path, None, f"quizzes[{i}]", "小テストは辞書で書いてください")
        qzid = spec.get("id")
        if not isinstance(qzid, str) or not _ID_RE.match(qzid):
            raise BankError(
                path, str(qzid), f"quizzes[{i}].id", "英小文字・数字・- _ だけの id が必要です"
            )
        extra = set(spec) - {"id", "title", "intro", "questions", "generate"}
        if extra:
            raise BankError(path, qzid, sorted(extra)[0], "小テストにないフィールドです")
        if "generate" in spec:
            if spec["generate"] != "glossary":
                raise BankError(path, qzid, "generate", "使えるのは 'glossary' だけです")
            generated = _glossary_quizzes(path, spec, chapter)
        else:
            title_q = _str(path, qzid, "title", spec.get("title"))
            raw_qs = _list(path, qzid, "questions", spec.get("questions"), min_len=1, max_len=60)
            qs = [_validate_question(path, copy.deepcopy(r), seen_q, chapter) for r in raw_qs]
            generated = [
                Quiz(
                    chapter, qzid, title_q, qs,
                    intro=_str(path, qzid, "intro", spec.get("intro", ""), allow_empty=True),
                )
            ]
        for qz in generated:
            if qz.id in seen_quiz:
                raise BankError(path, qz.id, "id", "同じ id の小テストが 2 つあります")
            seen_quiz.add(qz.id)
            bank.quizzes.append(qz)
    return bank


_CACHE: dict[str, Bank] = {}


def load_bank(chapter: str, *, reload: bool = False) -> Bank:
    """章の問題バンク (例: ``"a6"``) を読む。同じ章は一度だけ読み込む。"""
    if not isinstance(chapter, str) or not _ID_RE.match(chapter):
        raise BankError(
            BANK_DIR / f"{chapter}.yaml", None, None,
            f"章の名前 {chapter!r} が正しくありません (例: 'a6')",
        )
    if reload or chapter not in _CACHE:
        _CACHE[chapter] = load_bank_file(BANK_DIR / f"{chapter}.yaml")
    return _CACHE[chapter]
