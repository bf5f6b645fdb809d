"""読者自身のテキストを読む (A-1 §2「コーパス」で導入)。

- :func:`load_text` — テキストファイルを読み、本文を返す。文字コードは既定で自動判定
  (UTF-8、だめなら青空文庫に多い Shift_JIS = cp932)。読めないときは、原因ごとに違う
  日本語のメッセージ (バイナリファイル・UTF-16・どの文字コードでも読めない・指定した
  文字コードで読めない) を付けた :class:`CorpusError` を送出する。
- :func:`strip_aozora_markup` — 青空文庫形式のルビ・注記・表題・底本の情報を取り除く。
"""
from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

__all__ = ["CorpusError", "load_text", "strip_aozora_markup", "decode_text"]


class CorpusError(ValueError):
    """コーパスやテキストの読み込みで起きた誤り (A-1 §2「コーパス」で導入)。

    メッセージは日本語で、どのファイルの何が問題か・どう直せばよいかを書く。
    """


# ---------------------------------------------------------------------------
# 青空文庫の記法
# ---------------------------------------------------------------------------

_AOZORA_SYMBOL_NOTE = "【テキスト中に現れる記号について】"
_HYPHEN_LINE_RE = re.compile(r"^[-－]{10,}\s*$")
_RUBY_RE = re.compile(r"《[^《》\n]*》")
_ANNOTATION_RE = re.compile(r"※?［＃[^］\n]*］")
_FOOTER_RE = re.compile(r"^底本：", re.MULTILINE)

def _looks_like_aozora(text: str) -> bool:
    return (
        _AOZORA_SYMBOL_NOTE in text
        or "［＃" in text
        or _FOOTER_RE.search(text) is not None
        or _RUBY_RE.search(text) is not None
    )


def strip_aozora_markup(text: str) -> str:
    """青空文庫形式の注記を取り除き、本文だけを返す (A-1 §2「コーパス」で導入)。

    取り除くもの: 冒頭の表題・著者名と、ハイフンの行 ``-----`` ではさまれた
    【テキスト中に現れる記号について】の説明、``底本：`` で始まる行から末尾まで、
    ルビ ``《…》``、ルビの始まりを示す ``｜``、入力者注 ``［＃…］``
    (外字注記 ``※［＃…］`` は ※ ごと取り除く)。改行は ``\\n`` にそろえてから渡すこと。
    """
    lines = text.split("\n")
    # 1) ヘッダー: ハイフン行で囲まれた記号の説明までを捨てる。
    hyphens = [i for i, line in enumerate(lines[:80]) if _HYPHEN_LINE_RE.match(line)]
    if len(hyphens) >= 2:
        lines = lines[hyphens[1] + 1 :]
    elif _FOOTER_RE.search(text):
        # 記号の説明がないファイル: 最初の空行までの短い行 (表題・著者名) を捨てる。
        head = 0
        while head < len(lines) and not lines[head].strip():
            head += 1
        end = head
        while end < len(lines) and lines[end].strip():
            end += 1
        if 0 < end - head <= 4 and all(len(x.strip()) <= 40 for x in lines[head:end]):
            lines = lines[end:]
    # 2) フッター: 「底本：」で始まる行から最後まで。
    for i, line in enumerate(lines):
        if line.startswith("底本："):
            lines = lines[:i]
            break
    # 3) ルビ・注記。注記だけの行 (［＃改ページ］など) は行ごと消す。
    out: list[str] = []
    for line in lines:
        cleaned = _ANNOTATION_RE.sub("", line)
        cleaned = _RUBY_RE.sub("", cleaned).replace("｜", "").rstrip()
        if line.strip() and not cleaned.strip():
            continue
        if not cleaned.strip() and out and not out[-1].strip():
            continue  # 空行が続くときは 1 行にまとめる
        out.append(cleaned)
    return "\n".join(out).strip("\n")


# ---------------------------------------------------------------------------
# 文字コード: 自動判定と、原因ごとのメッセージ
# ---------------------------------------------------------------------------

#: 自動判定 (``encoding="auto"``) で順に試す文字コード。
AUTO_ENCODINGS: tuple[str, ...] = ("utf-8-sig", "cp932")

_MSG_WIDE = (
    "{name} は {kind} で保存されたテキストのようです (先頭の BOM か、NUL バイトの並び方で"
    "分かります)。この本は UTF-8 と Shift_JIS を自動で読みます。"
    "`iconv -f {kind} -t UTF-8 元のファイル.txt > utf8版.txt` で UTF-8 に変換するか、"
    "load_text(path, encoding='{enc}') のように文字コードを指定してください "
    "(メモ帳などのエディタなら、文字コードに UTF-8 を選んで保存し直すのが簡単です)。"
)
_MSG_BINARY = (
    "{name} はテキストではなくバイナリファイルのようです ({pos} バイト目に、"
    "テキストには現れない NUL バイトがあります)。{what}"
)
_WHAT_ZIP = "ZIP ファイル (青空文庫の配布形式) です。展開して、中の .txt を指定してください。"
_WHAT_OTHER = "PDF や Word の文書なら、テキスト (.txt、UTF-8) で保存し直してから指定してください。"
_MSG_AUTO = (
    "{name} は UTF-8 としても cp932 (Shift_JIS) としても読めません (両方を試しました: "
    "UTF-8 は {utf8} バイト目、cp932 は {sjis} バイト目で読めないバイトに当たりました)。"
    "EUC-JP などほかの文字コードなら、"
    "`iconv -f EUC-JP -t UTF-8 元のファイル.txt > utf8版.txt` で UTF-8 に変換するか、"
    "load_text(path, encoding='euc_jp') のように文字コードを指定してください。"
)
_MSG_EXPLICIT = (
    "{name} は指定された文字コード {enc} として読めません ({pos} バイト目で、{enc} には"
    "ないバイトの並びに当たりました)。{hint}"
)
_HINT_UTF8 = (
    "青空文庫のテキストは Shift_JIS (cp932) のことが多いので、encoding を省くか (既定の "
    "'auto' は UTF-8 と cp932 を順に試します)、encoding='cp932' を指定してください。"
)
_HINT_OTHER = "文字コードを確かめるか、encoding を省いて自動判定 (UTF-8 → cp932) に任せてください。"


def _codec(encoding: object) -> str | None:
    """``encoding`` を正式な名前にする。自動判定なら None。"""
    if encoding is None:
        return None
    if not isinstance(encoding, str):
        raise TypeError(
            "encoding には文字コードの名前を文字列で渡してください "
            f"(例: 'auto', 'utf-8', 'cp932')。受け取った値: {encoding!r}"
        )
    if encoding.strip().lower() == "auto":
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise CorpusError(
            f"文字コード {encoding!r} は知らない名前です (例: 'auto', 'utf-8', 'cp932', 'euc_jp')。"
        ) from None


def _utf16_kind(raw: bytes) -> str | None:
    """BOM か NUL バイトの並び方から UTF-16/UTF-32 らしければその名前を返す。"""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    head = raw[:4096]
    if head.count(0) < 4:
        return None
    # ASCII の文字 (改行など) は UTF-16 では「文字 + NUL」になる。両方の向きで読んでみて、
    # 日本語の文章にありそうな文字 (ASCII・かな・漢字・全角記号) がほとんどなら UTF-16 とみなす。
    body = head[: len(head) // 2 * 2]
    best = 0.0
    for enc in ("utf-16-le", "utf-16-be"):
        text = body.decode(enc, errors="replace")
        best = max(best, sum(map(_plausible, text)) / len(text))
    return "UTF-16" if best >= 0.9 else None


def _plausible(c: str) -> bool:
    o = ord(c)
    return (0x20 <= o < 0x7F or c in "\n\r\t" or 0x3000 <= o <= 0x30FF or 0x4E00 <= o <= 0x9FFF
            or 0xFF01 <= o <= 0xFF9F)


def decode_text(raw: bytes, encoding: str | None = "auto", *, name: str = "このデータ") -> str:
    """バイト列を文字列にする (A-1 §2「コーパス」で導入。:func:`load_text` が使う)。

    ``encoding="auto"`` (既定) なら :data:`AUTO_ENCODINGS` を順に試す。読めないときの
    :class:`CorpusError` は原因ごとに別のメッセージになる (``name`` はメッセージでの呼び名)。

    - NUL バイトを含む: UTF-16 (BOM か NUL の並び方で分かる) なら、そう伝えて変換の仕方を示す。
      そうでなければバイナリファイル (ZIP・PDF・Word など) として扱う。
    - 自動判定で UTF-8 と cp932 のどちらでも読めない: 両方試したことと、それぞれ何バイト目で
      つまずいたかを伝える。
    - 指定した文字コードで読めない: その文字コードの名前と位置を伝える。
    """
    codec = _codec(encoding)
    if codec is None or not codec.startswith(("utf-16", "utf-32")):
        kind = _utf16_kind(raw)
        if kind:
            raise CorpusError(_MSG_WIDE.format(name=name, kind=kind, enc=kind.lower()))
        if b"\x00" in raw:
            what = _WHAT_ZIP if raw.startswith(b"PK\x03\x04") else _WHAT_OTHER
            raise CorpusError(_MSG_BINARY.format(name=name, pos=raw.index(0) + 1, what=what))
    if codec is None:
        failures: list[UnicodeDecodeError] = []
        for cand in AUTO_ENCODINGS:
            try:
                return raw.decode(cand)
            except UnicodeDecodeError as e:
                failures.append(e)
        utf8, sjis = failures
        msg = _MSG_AUTO.format(name=name, utf8=utf8.start + 1, sjis=sjis.start + 1)
        raise CorpusError(msg) from utf8
    try:
        return raw.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as e:
        hint = _HINT_UTF8 if codec == "utf-8" else _HINT_OTHER
        msg = _MSG_EXPLICIT.format(name=name, enc=encoding, pos=e.start + 1, hint=hint)
        raise CorpusError(msg) from e


# ---------------------------------------------------------------------------
# ファイルを読む
# ---------------------------------------------------------------------------


def load_text(
    path: str | os.PathLike[str],
    *,
    aozora: bool | None = None,
    encoding: str | None = "auto",
) -> str:
    """読者自身のテキストファイルを読み、本文を返す (A-1 §2「コーパス」で導入)。

    - 文字コードは既定 (``encoding="auto"``) で自動判定する: UTF-8 (BOM 付きも可) で読めれば
      UTF-8、だめなら cp932 (Shift_JIS。青空文庫のテキストの多くはこれ)。``encoding='utf-8'``
      や ``'euc_jp'`` のように指定すればその文字コードだけで読む。先頭の BOM は取り除き、
      改行 (CRLF / CR) は ``\\n`` にそろえる。
    - ``aozora=None`` (既定) なら青空文庫の記法 (ルビ《》・注記［＃］・底本：など) を
      自動で見分け、見つかれば :func:`strip_aozora_markup` で取り除く。``True`` / ``False``
      で強制できる。
    - ファイルがない・フォルダである・中身が空・バイナリや UTF-16 のファイル・
      どの文字コードでも読めない、といった場合は、原因ごとの日本語のメッセージ付きで
      :class:`CorpusError` を送出する (:func:`decode_text`)。
    """
    p = Path(path)
    if not p.exists():
        raise CorpusError(
            f"ファイルが見つかりません: {p} (パスのつづりと、今いるフォルダを確かめてください)")
    if p.is_dir():
        raise CorpusError(
            f"{p} はフォルダ (ディレクトリ) です。テキストファイルのパスを指定してください。")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise CorpusError(f"ファイル {p} を読めませんでした: {e}") from e

    text = decode_text(raw, encoding, name=f"ファイル {p}")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"ファイル {p} は空です (空白と改行しかありません)。")
    if aozora is None:
        aozora = _looks_like_aozora(text)
    if aozora:
        text = strip_aozora_markup(text)
        if not text.strip():
            raise CorpusError(
                f"ファイル {p} から青空文庫の注記を取り除いたら、本文が残りませんでした。"
            )
    else:
        text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return text
