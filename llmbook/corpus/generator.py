"""この本のコーパスを生成する: データ構造と組み立て (A-1 §2「コーパス」で導入)。

:mod:`llmbook.corpus.templates` の文の型と語彙から、乱数の種 ``seed`` だけで決まる形で
一節 (日常の小さな物語・日記・会話・説明文・手紙) を作って並べ、長距離の手がかりが要る
位置を :class:`LongRangeItem` として記録する。Python 標準の ``random.Random(seed)`` だけを
使うので、どの環境でも同じ本文になる。
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import templates as T

__all__ = [
    "LongRangeItem",
    "Corpus",
    "generate_corpus",
    "split_train_val",
    "VAL_FRACTION",
    "PASSAGE_SEPARATOR",
    "DEFAULT_MIN_CHARS",
    "NAME_MIN_DISTANCE",
    "NAME_TARGET_MAX_DISTANCE",
    "QUOTE_MIN_LEN",
    "QUOTE_MAX_LEN",
]

# ---------------------------------------------------------------------------
# 定数
# ---------------------------------------------------------------------------

#: 検証用に回す一節の割合 (最後の 10%)。全章で同じ値を使う。
VAL_FRACTION: float = 0.1
#: 一節と一節のあいだに置く区切り (空行 1 つ)。一節の中には現れない。
PASSAGE_SEPARATOR: str = "\n\n"
#: 既定で生成する最小の文字数 (30 万字に少し余裕を持たせた値)。
DEFAULT_MIN_CHARS: int = 320_000
#: 人名の再登場は、紹介の位置から少なくともこの文字数だけ後ろに置く。
NAME_MIN_DISTANCE: int = 40
#: 人名の再登場までの目標距離の上限 (実際の距離は最後の 1 文の分だけ超えうる)。
NAME_TARGET_MAX_DISTANCE: int = 320
#: 「…」の中身の長さの範囲 (かっこを除く文字数)。
QUOTE_MIN_LEN: int = 10
QUOTE_MAX_LEN: int = 60




# ---------------------------------------------------------------------------
# データ構造
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LongRangeItem:
    """長距離の手がかりが要る予測位置 1 つ (A-1 §2「コーパス」で導入)。

    - ``kind``: ``"name"`` (人名の再登場) か ``"quote_close"`` (「…」を閉じる 」)。
    - ``position``: 当てるべき文字列 ``target`` が始まる、本文中の文字位置。
    - ``target``: 当てるべき文字列 (人名なら下の名前、閉じかっこなら ``"」"``)。
    - ``distance``: 手がかりまでの距離 (文字数)。人名なら一節の冒頭で紹介された
      同じ名前の位置まで、閉じかっこなら対応する 「 の位置まで。
    """

    kind: str
    position: int
    target: str
    distance: int

    def shifted(self, offset: int) -> LongRangeItem:
        """``position`` を ``offset`` だけずらした複製を返す。"""
        return LongRangeItem(self.kind, self.position + offset, self.target, self.distance)


@dataclass
class Corpus:
    """生成したコーパス一式と、全章共通の訓練用 / 検証用分割 (A-1 §2「コーパス」で導入)。

    ``text`` は ``passages`` を :data:`PASSAGE_SEPARATOR` (空行) でつないだもの。
    分割は一節単位で、**最後の 10% (少なくとも 1 つ) の一節が検証用**、
    残りが訓練用。1 つの一節が両側にまたがることはない。
    ``train_text == text[:len(train_text)]``、``val_text == text[val_offset:]`` が成り立つ。
    """

    text: str
    passages: list[str]
    items: list[LongRangeItem]
    seed: int = 0
    val_fraction: float = VAL_FRACTION
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self._starts:
            starts, pos = [], 0
            for p in self.passages:
                starts.append(pos)
                pos += len(p) + len(PASSAGE_SEPARATOR)
            self._starts = starts

    # --- 分割 -------------------------------------------------------------
    @property
    def n_val_passages(self) -> int:
        """検証用の一節の数 (``round(全体 × val_fraction)``、少なくとも 1)。"""
        return max(1, round(len(self.passages) * self.val_fraction))

    @property
    def n_train_passages(self) -> int:
        """訓練用の一節の数。"""
        return len(self.passages) - self.n_val_passages

    @property
    def passage_starts(self) -> list[int]:
        """各一節が ``text`` の中で始まる文字位置。"""
        return list(self._starts)

    @property
    def val_offset(self) -> int:
        """検証用テキストが ``text`` の中で始まる文字位置。"""
        return self._starts[self.n_train_passages]

    @property
    def train_text(self) -> str:
        """訓練用テキスト (最初の 90% の一節を空行でつないだもの)。"""
        return PASSAGE_SEPARATOR.join(self.passages[: self.n_train_passages])

    @property
    def val_text(self) -> str:
        """検証用テキスト (最後の 10% の一節を空行でつないだもの)。"""
        return PASSAGE_SEPARATOR.join(self.passages[self.n_train_passages :])

    @property
    def train_items(self) -> list[LongRangeItem]:
        """訓練用テキストの中の長距離項目 (位置は ``train_text`` の中の位置)。"""
        end = self.val_offset
        return [it for it in self.items if it.position < end]

    @property
    def val_items(self) -> list[LongRangeItem]:
        """検証用テキストの中の長距離項目 (位置は ``val_text`` の中の位置に付け直す)。"""
        off = self.val_offset
        return [it.shifted(-off) for it in self.items if it.position >= off]

    # --- 要約 -------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        """文字数・一節の数・長距離項目の数と距離の範囲をまとめた辞書を返す。

        ``sha256`` は本文の指紋。``assets/corpus/stats.json`` と比べれば、手元で生成した
        コーパスがこの本のものと同じかどうかを確かめられる。
        """
        out: dict[str, object] = {
            "seed": self.seed,
            "sha256": hashlib.sha256(self.text.encode("utf-8")).hexdigest(),
            "chars": len(self.text),
            "unique_chars": len(set(self.text)),
            "passages": len(self.passages),
            "train_passages": self.n_train_passages,
            "val_passages": self.n_val_passages,
            "train_chars": self.val_offset - len(PASSAGE_SEPARATOR),
            "val_chars": len(self.text) - self.val_offset,
        }
        for kind in ("name", "quote_close"):
            ds = [it.distance for it in self.items if it.kind == kind]
            out[f"{kind}_items"] = len(ds)
            out[f"{kind}_val_items"] = sum(
                1 for it in self.items if it.kind == kind and it.position >= self.val_offset
            )
            out[f"{kind}_distance_min"] = min(ds) if ds else None
            out[f"{kind}_distance_max"] = max(ds) if ds else None
            out[f"{kind}_distance_mean"] = round(sum(ds) / len(ds), 1) if ds else None
        return out


def split_train_val(corpus: Corpus) -> tuple[str, str]:
    """全章共通の分割 ``(train_text, val_text)`` を返す (A-1 §2「コーパス」で導入)。

    一節単位で、最後の 10% が検証用 (``corpus.train_text`` / ``corpus.val_text`` と同じ)。
    """
    return corpus.train_text, corpus.val_text


# ---------------------------------------------------------------------------
# 穴埋めの仕組み
# ---------------------------------------------------------------------------

_KANJI_DIGITS = "〇一二三四五六七八九"
_WEEKDAYS = "月火水木金土日"


def _kanji_number(n: int) -> str:
    """1〜9999 の整数を漢数字にする (例: 380 → 三百八十)。"""
    out = ""
    for value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _KANJI_DIGITS[q]) + unit
    if n:
        out += _KANJI_DIGITS[n]
    return out


def _time_phrase(rng: random.Random) -> str:
    prefix, lo, hi = rng.choice(
        (("午前", 6, 11), ("午後", 1, 8), ("朝", 6, 9), ("夕方", 4, 6), ("夜", 7, 10))
    )
    hour = _kanji_number(rng.randint(lo, hi)) + "時"
    r = rng.random()
    if r < 0.4:
        return prefix + hour
    if r < 0.7:
        return prefix + hour + "半"
    return prefix + hour + _kanji_number(rng.choice((5, 10, 15, 20, 40, 45, 50, 55))) + "分"


def _date_phrase(rng: random.Random) -> str:
    day = _dt.date(2023, 1, 1) + _dt.timedelta(days=rng.randrange(365))
    return f"{day.month}月{day.day}日（{_WEEKDAYS[day.weekday()]}）"


_DYNAMIC: dict[str, Callable[[random.Random], str]] = {
    "time": _time_phrase,
    "wake_time": lambda rng: (
        "朝" + _kanji_number(rng.randint(5, 9)) + "時" + rng.choice(("", "半", "すぎ"))
    ),
    "date": _date_phrase,
    "price": lambda rng: _kanji_number(rng.randrange(8, 200) * 10) + "円",
    "count": lambda rng: _kanji_number(rng.randint(2, 6)) + "つ",
    "minutes": lambda rng: _kanji_number(rng.choice((3, 5, 10, 15, 20, 30))) + "分",
    "years": lambda rng: _kanji_number(rng.randint(2, 30)) + "年",
}

_SLOT_RE = re.compile(r"\{([a-z_]+)\}")
_MARKER_RE = re.compile(r"\{(FULL|NAME|Q)\}")


def _fill(template: str, rng: random.Random, ctx: dict[str, str]) -> str:
    """``{slot}`` を語彙リストから選んだ語で埋める (入れ子の穴も埋める)。"""

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in ctx:
            return ctx[key]
        if key in _DYNAMIC:
            return _DYNAMIC[key](rng)
        return _fill(rng.choice(T.BANK[key]), rng, ctx)

    return _SLOT_RE.sub(repl, template)


def _join_utterances(parts: Sequence[str]) -> str:
    out = ""
    for i, u in enumerate(parts):
        out += u
        if i < len(parts) - 1:
            out += "　" if u.endswith(("！", "？")) else "。"
    return out


class _PassageBuilder:
    """1 つの一節を組み立て、長距離項目の位置を記録する。"""

    def __init__(self, rng: random.Random, family: str, given: str, ctx: dict[str, str]) -> None:
        self.rng = rng
        self.family = family
        self.given = given
        self.ctx = ctx
        self.parts: list[str] = []
        self.length = 0
        self.last = ""
        self.intro_pos: int | None = None
        self.items: list[LongRangeItem] = []

    def _add(self, s: str) -> None:
        if s:
            self.parts.append(s)
            self.length += len(s)
            self.last = s[-1]

    def _quote(self, pool: Sequence[str]) -> str:
        # 発話を 1〜3 個つなぐ (1 個が多め)。10 字に届かなければ足し、60 字を超えたら選び直す。
        rng = self.rng
        n_goal = rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0]
        parts: list[str] = []
        used: set[str] = set()
        for _ in range(50):
            tpl = rng.choice(pool)
            if tpl in used and len(used) < len(pool):
                continue
            u = _fill(tpl, rng, self.ctx)
            if len(_join_utterances(parts + [u])) > QUOTE_MAX_LEN:
                continue
            used.add(tpl)
            parts.append(u)
            if len(parts) >= n_goal and len(_join_utterances(parts)) >= QUOTE_MIN_LEN:
                break
        content = _join_utterances(parts)
        if not QUOTE_MIN_LEN <= len(content) <= QUOTE_MAX_LEN:  # pragma: no cover - 語彙の誤り
            raise RuntimeError(f"引用の長さが範囲外です: {content!r}")
        return content

    def emit(self, template: str, quote_pool: Sequence[str] = T.UTTERANCES) -> None:
        if template.startswith("\n") and (self.length == 0 or self.last == "\n"):
            template = template[1:]
        pieces = _MARKER_RE.split(template)
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                self._add(_fill(piece, self.rng, self.ctx))
            elif piece == "FULL":
                self.intro_pos = self.length + len(self.family)
                self._add(self.family + self.given)
            elif piece == "NAME":
                assert self.intro_pos is not None
                self.items.append(
                    LongRangeItem("name", self.length, self.given, self.length - self.intro_pos)
                )
                self._add(self.given)
            else:  # Q
                content = self._quote(quote_pool)
                close = self.length + 1 + len(content)
                self.items.append(LongRangeItem("quote_close", close, "」", len(content) + 1))
                self._add("「" + content + "」")

    def gap(self) -> int:
        """紹介の位置から現在位置までの文字数。"""
        assert self.intro_pos is not None
        return self.length - self.intro_pos

    def text(self) -> str:
        return "".join(self.parts).rstrip("\n")


def _fill_until(
    b: _PassageBuilder, pool: Sequence[str], target_gap: int, max_sentences: int = 12
) -> None:
    """紹介からの距離が ``target_gap`` 以上になるまで、``pool`` の文を重ならないように足す。"""
    rng = b.rng
    order = list(range(len(pool)))
    rng.shuffle(order)
    k = 0
    while (b.gap() < target_gap and k < max_sentences) or b.gap() < NAME_MIN_DISTANCE:
        b.emit(pool[order[k % len(order)]])
        k += 1


def _emit_some(b: _PassageBuilder, pool: Sequence[str], lo: int, hi: int) -> None:
    """``pool`` から重ならないように ``lo``〜``hi`` 文を選んで足す。"""
    for t in b.rng.sample(pool, b.rng.randint(lo, hi)):
        b.emit(t)


def _story(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    b.ctx["spot"] = rng.choice(T.BANK["place"])
    intro = rng.choice(T.STORY_INTRO)
    b.emit(intro)
    b.emit(T.STORY_SETTING[1] if intro.startswith("{season}") else rng.choice(T.STORY_SETTING))
    b.emit(rng.choice(T.STORY_OUTING))
    scene = list(T.STORY_SCENE)
    talk = list(T.STORY_TALK)
    rng.shuffle(scene)
    rng.shuffle(talk)
    # 場面の描写と会話を交互に足していき、目標の距離に近づいたら帰り道の文を置く。
    k = 0
    while b.gap() < target_gap - 40 and k < 10:
        b.emit((scene if k % 2 == 0 else talk)[k // 2])
        k += 1
    _emit_some(b, T.STORY_RETURN, 1, 2)
    while b.gap() < NAME_MIN_DISTANCE:  # pragma: no cover - 保険
        b.emit(scene[-1])
    b.emit(rng.choice(T.STORY_REF))
    _emit_some(b, T.STORY_END, 0, 2)


def _diary(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    b.emit(rng.choice(T.DIARY_INTRO))
    _emit_some(b, T.DIARY_MORNING, 0, 2)
    _fill_until(b, T.DIARY_DAY, target_gap - 40, max_sentences=8)
    _emit_some(b, T.DIARY_EVENING, 1, 2)
    b.emit(rng.choice(T.DIARY_REF))
    b.emit(rng.choice(T.DIARY_END))


def _talk(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    b.emit(rng.choice(T.TALK_INTRO))
    _fill_until(b, T.TALK_MID, target_gap)
    b.emit(rng.choice(T.TALK_REF))


def _howto(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    title, experts, steps, tips = rng.choice(T.HOWTO_TOPICS)
    b.ctx["title"] = title
    b.ctx["expert"] = rng.choice(experts)
    b.emit(rng.choice(T.HOWTO_INTRO))
    quote_at = rng.randrange(5)
    for i, step in enumerate(steps):
        b.emit(rng.choice(T.STEP_CONNECT[i]) + step + "。")
        if rng.random() < 0.3:
            b.emit("{step_comment}")
        if i == quote_at:
            b.emit(rng.choice(T.HOWTO_QUOTE), quote_pool=tips)
    if quote_at == 4:
        b.emit(rng.choice(T.HOWTO_QUOTE), quote_pool=tips)
    while b.gap() < NAME_MIN_DISTANCE:  # 手順が短いときの保険 (実際にはほぼ起きない)
        b.emit("{step_comment}")
    b.emit(rng.choice(T.HOWTO_REF))
    b.emit(rng.choice(T.HOWTO_END))


def _letter(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    intro = rng.choice(T.LETTER_INTRO)
    b.emit(intro)
    if intro.endswith("\n"):
        b.emit("お元気ですか。")
    b.emit("こちらでは、{letter_season}。")
    _fill_until(b, T.LETTER_MID, min(target_gap, 200), max_sentences=6)
    b.emit(rng.choice(T.LETTER_REF))
    b.emit(rng.choice(T.LETTER_END))


_PASSAGE_KINDS: tuple[tuple[Callable[[_PassageBuilder, int], None], float], ...] = (
    (_story, 0.35), (_diary, 0.25), (_talk, 0.15), (_howto, 0.15), (_letter, 0.10),
)


def _make_passage(rng: random.Random) -> tuple[str, list[LongRangeItem]]:
    kinds = [k for k, _ in _PASSAGE_KINDS]
    weights = [w for _, w in _PASSAGE_KINDS]
    for _ in range(100):
        make = rng.choices(kinds, weights)[0]
        family = rng.choice(T.FAMILY_NAMES)
        given = rng.choice(T.GIVEN_NAMES)
        ctx = {"who": rng.choice(T.BANK["who"]), "me": rng.choice(("わたし", "ぼく", "私"))}
        b = _PassageBuilder(rng, family, given, ctx)
        make(b, rng.randint(NAME_MIN_DISTANCE, NAME_TARGET_MAX_DISTANCE))
        text = b.text()
        # 名前は紹介と再登場の 2 回だけ (偶然ほかの語の中に現れたら作り直す)。
        if text.count(given) == 2 and PASSAGE_SEPARATOR not in text:
            return text, b.items
    raise RuntimeError("一節を作れませんでした")  # pragma: no cover


def generate_corpus(seed: int = 0, *, min_chars: int = DEFAULT_MIN_CHARS) -> Corpus:
    """この本の訓練用コーパスを生成する (A-1 §2「コーパス」で導入)。

    テンプレートと語彙リスト (すべて :mod:`llmbook.corpus.templates` に書いたもの) から、
    日常の小さな物語・日記・会話・説明文・手紙の一節を、合計が ``min_chars`` 文字以上に
    なるまで作る。同じ ``seed`` なら毎回まったく同じ本文になる (Python 標準の
    ``random.Random(seed)`` だけを使う)。

    各一節には長距離依存が入っている。

    - 人名: 冒頭で「姓+名」を紹介し、40 字以上あとで名だけをもう一度書く。
      直前の文脈は固定の言い回し (例:「いちばん早く起きたのは」) なので、どの名前かは
      紹介の部分を覚えていないと当てられない。
    - 引用: 「…」の中身は 10〜60 字。閉じかっこの位置は中身の長さしだい。

    これらは :class:`LongRangeItem` として ``Corpus.items`` に記録される。
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed には整数を渡してください (受け取った値: {seed!r})")
    rng = random.Random(seed)
    passages: list[str] = []
    items: list[LongRangeItem] = []
    starts: list[int] = []
    total = 0
    while total < min_chars:
        text, p_items = _make_passage(rng)
        start = total + (len(PASSAGE_SEPARATOR) if passages else 0)
        starts.append(start)
        passages.append(text)
        items.extend(it.shifted(start) for it in p_items)
        total = start + len(text)
    return Corpus(
        text=PASSAGE_SEPARATOR.join(passages), passages=passages, items=items,
        seed=seed, _starts=starts,
    )
