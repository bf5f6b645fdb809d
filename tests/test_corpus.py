"""llmbook.corpus のテスト (生成コーパス・分割・読み込み・文字トークナイザ)。"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from llmbook.corpus import (
    AUTO_ENCODINGS,
    GIVEN_NAMES,
    NAME_MIN_DISTANCE,
    PASSAGE_SEPARATOR,
    QUOTE_MAX_LEN,
    QUOTE_MIN_LEN,
    VAL_FRACTION,
    CharTokenizer,
    Corpus,
    CorpusError,
    LongRangeItem,
    decode_text,
    generate_corpus,
    load_text,
    split_train_val,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
AOZORA_SAMPLE = DATA / "aozora_sample.txt"

# 人名の再登場の距離の上限 (目標距離 320 字 + 最後に足す数文ぶんの余裕)。
NAME_MAX_DISTANCE = 500


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate_corpus(0)


# ---------------------------------------------------------------------------
# 生成
# ---------------------------------------------------------------------------


def test_deterministic_for_same_seed(corpus: Corpus) -> None:
    again = generate_corpus(0)
    assert again.text == corpus.text
    assert again.items == corpus.items
    assert again.passages == corpus.passages


def test_different_seed_gives_different_text(corpus: Corpus) -> None:
    other = generate_corpus(1)
    assert other.text != corpus.text
    assert len(other.text) >= 300_000


def test_seed_must_be_int() -> None:
    with pytest.raises(TypeError):
        generate_corpus("0")  # type: ignore[arg-type]


def test_size(corpus: Corpus) -> None:
    assert len(corpus.text) >= 300_000
    assert len(corpus.passages) >= 500
    assert corpus.text == PASSAGE_SEPARATOR.join(corpus.passages)


def test_generation_is_fast() -> None:
    # 目安は 0.1 秒程度。遅い CI でも落ちないよう上限は広めにとる。
    t0 = time.perf_counter()
    generate_corpus(3)
    assert time.perf_counter() - t0 < 3.0


def test_passages_are_clean(corpus: Corpus) -> None:
    for p in corpus.passages:
        assert p and p == p.strip("\n")
        assert PASSAGE_SEPARATOR not in p
        assert "{" not in p and "}" not in p  # 埋め忘れの穴がない


def test_both_item_kinds_present(corpus: Corpus) -> None:
    kinds = defaultdict(int)
    for it in corpus.items:
        kinds[it.kind] += 1
    assert set(kinds) == {"name", "quote_close"}
    # passage ごとに人名の再登場がちょうど 1 つ
    assert kinds["name"] == len(corpus.passages)
    assert kinds["quote_close"] >= 1000
    assert corpus.items == sorted(corpus.items, key=lambda it: it.position)


def test_items_point_at_target(corpus: Corpus) -> None:
    text = corpus.text
    for it in corpus.items:
        assert text[it.position : it.position + len(it.target)] == it.target
    tr, va = corpus.train_text, corpus.val_text
    assert corpus.train_items and corpus.val_items
    for it in corpus.train_items:
        assert tr[it.position : it.position + len(it.target)] == it.target
    for it in corpus.val_items:
        assert va[it.position : it.position + len(it.target)] == it.target
    assert len(corpus.train_items) + len(corpus.val_items) == len(corpus.items)


def test_name_items(corpus: Corpus) -> None:
    text = corpus.text
    assert len(GIVEN_NAMES) >= 40 and len(set(GIVEN_NAMES)) == len(GIVEN_NAMES)
    assert all(2 <= len(n) <= 4 for n in GIVEN_NAMES)
    names = [it for it in corpus.items if it.kind == "name"]
    assert len({it.target for it in names}) >= 40
    for it in names:
        assert it.target in GIVEN_NAMES
        assert NAME_MIN_DISTANCE <= it.distance <= NAME_MAX_DISTANCE
        intro = it.position - it.distance
        # 手がかり (紹介) はちょうど distance 文字前にあり、あいだに同じ名前は出てこない
        assert text[intro : intro + len(it.target)] == it.target
        between = text[intro + len(it.target) : it.position]
        assert it.target not in between
        assert len(between) >= NAME_MIN_DISTANCE - len(it.target)
        assert PASSAGE_SEPARATOR not in between


def test_quote_items(corpus: Corpus) -> None:
    text = corpus.text
    quotes = [it for it in corpus.items if it.kind == "quote_close"]
    for it in quotes:
        assert it.target == "」"
        assert QUOTE_MIN_LEN + 1 <= it.distance <= QUOTE_MAX_LEN + 1
        opening = it.position - it.distance
        assert text[opening] == "「"
        inside = text[opening + 1 : it.position]
        assert "「" not in inside and "」" not in inside and "\n" not in inside
    ds = [it.distance for it in quotes]
    # 長さがばらついていること (閉じる位置が局所的には決まらない)
    assert min(ds) <= QUOTE_MIN_LEN + 3 and max(ds) >= QUOTE_MAX_LEN - 5
    assert len(set(ds)) >= 40


def test_every_quote_is_closed_and_recorded(corpus: Corpus) -> None:
    text = corpus.text
    depth = 0
    closes = []
    for i, ch in enumerate(text):
        if ch == "「":
            assert depth == 0, f"入れ子の 「 が {i} 文字目にある"
            depth = 1
        elif ch == "」":
            assert depth == 1, f"対応のない 」 が {i} 文字目にある"
            depth = 0
            closes.append(i)
    assert depth == 0
    assert closes == [it.position for it in corpus.items if it.kind == "quote_close"]


# ---------------------------------------------------------------------------
# 分割
# ---------------------------------------------------------------------------


def test_split_by_passage(corpus: Corpus) -> None:
    n = len(corpus.passages)
    assert corpus.n_val_passages == max(1, round(n * VAL_FRACTION))
    assert corpus.n_train_passages + corpus.n_val_passages == n
    tr, va = corpus.train_text, corpus.val_text
    assert tr == PASSAGE_SEPARATOR.join(corpus.passages[: corpus.n_train_passages])
    assert va == PASSAGE_SEPARATOR.join(corpus.passages[corpus.n_train_passages :])
    # 本文 = 学習用 + 区切り + 検証用 (passage は片側にしかない)
    assert tr + PASSAGE_SEPARATOR + va == corpus.text
    assert corpus.text[corpus.val_offset :] == va
    assert corpus.passage_starts[corpus.n_train_passages] == corpus.val_offset
    assert split_train_val(corpus) == (tr, va)
    assert 0.05 < len(va) / len(corpus.text) < 0.15


def test_split_is_the_same_every_time(corpus: Corpus) -> None:
    again = generate_corpus(0)
    assert again.train_text == corpus.train_text
    assert again.val_text == corpus.val_text
    assert again.val_items == corpus.val_items


def test_item_shift() -> None:
    it = LongRangeItem("name", 100, "みのり", 50)
    assert it.shifted(-40) == LongRangeItem("name", 60, "みのり", 50)


# ---------------------------------------------------------------------------
# N-gram では覚えきれないこと
# ---------------------------------------------------------------------------


def test_validation_is_not_memorised_by_char_6grams(corpus: Corpus) -> None:
    """検証用の文字 6-gram のうち、学習用に現れるものの割合。

    文字 5-gram モデルは「直前 5 文字 → 次の 1 文字」を数えるので、検証用の 6-gram が
    すべて学習用にあれば丸暗記で済んでしまう。seed=0 で測った値は約 0.89 (5-gram で
    約 0.93、8-gram で約 0.79)。テンプレートの固定句は当然よく当たるが、穴埋めの語の
    組み合わせと人名・数・発話の並びで 1 割以上は学習用に現れない。上限 0.95 は
    「丸暗記ではない」こと、下限 0.6 は「N-gram で学べる規則性が十分ある」ことの確認。
    """
    tr, va = corpus.train_text, corpus.val_text
    n = 6
    seen = {tr[i : i + n] for i in range(len(tr) - n + 1)}
    total = len(va) - n + 1
    hit = sum(va[i : i + n] in seen for i in range(total))
    frac = hit / total
    assert 0.6 < frac < 0.95, frac


def test_names_are_unpredictable_from_local_context(corpus: Corpus) -> None:
    """名前の直前 10 文字が同じ位置どうしで、続く名前が 5 種類以上あること。"""
    text = corpus.text
    followers: dict[str, set[str]] = defaultdict(set)
    for it in corpus.items:
        if it.kind == "name":
            followers[text[it.position - 10 : it.position]].add(it.target)
    assert followers
    for ctx, names in followers.items():
        assert len(names) >= 5, (ctx, names)


def test_name_cues_always_lead_to_a_name(corpus: Corpus) -> None:
    """名前の直前 10 文字 (固定の言い回し) は、コーパス中で必ず名前の前にだけ現れる。

    つまりその位置では「名前が来る」ことまでは局所文脈で分かるが、
    「どの名前か」は passage 冒頭の紹介を覚えていないと分からない。
    """
    text = corpus.text
    per_ctx: dict[str, int] = defaultdict(int)
    for it in corpus.items:
        if it.kind == "name":
            per_ctx[text[it.position - 10 : it.position]] += 1
    for ctx, n in per_ctx.items():
        assert text.count(ctx) == n, ctx


def test_stats_file_matches_generated_corpus(corpus: Corpus) -> None:
    """assets/corpus/stats.json (seed=0 の統計と本文の sha256) と一致すること。

    テンプレートや語彙を変えたら ``python -m llmbook.corpus > assets/corpus/stats.json``
    で作り直す (全章の数値が変わるので、変えるときは本文の記述も見直す)。
    """
    stats_path = ROOT / "assets" / "corpus" / "stats.json"
    saved = json.loads(stats_path.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(corpus.stats()))


# ---------------------------------------------------------------------------
# load_text
# ---------------------------------------------------------------------------


def _check_aozora_stripped(text: str) -> None:
    for mark in ("《", "》", "｜", "［＃", "※", "【テキスト中に現れる記号について】", "-----"):
        assert mark not in text, mark
    # ヘッダー (表題・著者名) とフッター (底本以下) が残っていない
    assert "雨あがりの郵便受け" not in text
    assert "見本　花子" not in text
    assert "底本" not in text and "入力：" not in text and "校正：" not in text
    # 本文は残っている (ルビを外した形で)
    assert "朝から降っていた雨が、昼すぎにようやくやんだ。" in text
    assert "玄関の前の郵便受けには" in text
    assert "切手の絵は小さな灯台だった" in text
    assert "「裏の柿の木に、今年も実がなりました」" in text
    assert text.endswith("返事を書くことにした。")
    assert "\r" not in text and "\ufeff" not in text


def test_load_aozora_sample() -> None:
    text = load_text(AOZORA_SAMPLE)
    _check_aozora_stripped(text)
    assert "\n\n\n" not in text


def test_load_aozora_can_be_turned_off() -> None:
    raw = load_text(AOZORA_SAMPLE, aozora=False)
    assert "《ゆうびんう》" in raw and "底本：" in raw


def test_load_aozora_crlf_bom(tmp_path: Path) -> None:
    p = tmp_path / "crlf.txt"
    content = AOZORA_SAMPLE.read_text(encoding="utf-8").replace("\n", "\r\n")
    p.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    _check_aozora_stripped(load_text(p))


def test_load_plain_text_untouched(tmp_path: Path) -> None:
    p = tmp_path / "mine.txt"
    p.write_text("　一行目です。\n二行目です。\n", encoding="utf-8")
    assert load_text(p) == "　一行目です。\n二行目です。"


def test_load_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nai.txt"
    with pytest.raises(CorpusError) as e:
        load_text(p)
    assert "見つかりません" in str(e.value) and str(p) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as e:
        load_text(tmp_path)
    assert "ディレクトリ" in str(e.value) and str(tmp_path) in str(e.value)


@pytest.mark.parametrize("content", ["", "  \n\n　\r\n"])
def test_load_empty_file(tmp_path: Path, content: str) -> None:
    p = tmp_path / "empty.txt"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError) as e:
        load_text(p)
    assert "空" in str(e.value) and str(p) in str(e.value)


def test_load_only_aozora_markup(tmp_path: Path) -> None:
    p = tmp_path / "only.txt"
    p.write_text("［＃改ページ］\n\n底本：なし\n", encoding="utf-8")
    with pytest.raises(CorpusError) as e:
        load_text(p)
    assert "本文が残りませんでした" in str(e.value)


def test_load_shift_jis_without_being_told(tmp_path: Path) -> None:
    """青空文庫の多くのファイルと同じ Shift_JIS (cp932) を、文字コードを指定せずに読める。"""
    p = tmp_path / "sjis.txt"
    p.write_bytes(AOZORA_SAMPLE.read_text(encoding="utf-8").replace("\n", "\r\n").encode("cp932"))
    _check_aozora_stripped(load_text(p))
    _check_aozora_stripped(load_text(p, encoding="auto"))
    _check_aozora_stripped(load_text(p, encoding="cp932"))
    _check_aozora_stripped(load_text(p, encoding="Shift_JIS"))


def test_load_utf8_is_tried_first(tmp_path: Path) -> None:
    # UTF-8 として読める文章は、cp932 としても (文字化けして) 読めてしまうことがある。UTF-8 が先。
    p = tmp_path / "utf8.txt"
    p.write_text("春はあけぼの。やうやう白くなりゆく山ぎは。", encoding="utf-8")
    assert load_text(p) == "春はあけぼの。やうやう白くなりゆく山ぎは。"
    assert AUTO_ENCODINGS == ("utf-8-sig", "cp932")


def test_explicit_utf8_on_shift_jis_file(tmp_path: Path) -> None:
    p = tmp_path / "sjis.txt"
    p.write_text(AOZORA_SAMPLE.read_text(encoding="utf-8"), encoding="cp932")
    with pytest.raises(CorpusError) as e:
        load_text(p, encoding="utf-8")
    msg = str(e.value)
    assert str(p) in msg and "指定された文字コード utf-8 として読めません" in msg
    assert "Shift_JIS" in msg and "cp932" in msg and "auto" in msg
    assert isinstance(e.value.__cause__, UnicodeDecodeError)


def test_explicit_other_encoding_failure(tmp_path: Path) -> None:
    p = tmp_path / "utf8.txt"
    p.write_text("日本語の文章です。", encoding="utf-8")
    with pytest.raises(CorpusError) as e:
        load_text(p, encoding="ascii")
    msg = str(e.value)
    assert "指定された文字コード ascii として読めません" in msg and "1 バイト目" in msg
    assert "自動判定" in msg and "Shift_JIS" not in msg


def test_auto_says_both_encodings_were_tried(tmp_path: Path) -> None:
    p = tmp_path / "broken.txt"
    # 0x81 0x7F: UTF-8 では先頭に来ない続きのバイト、cp932 では 2 バイト目に使えない組
    p.write_bytes(b"abc\x81\x7f end\n")
    for enc in ("auto", None):
        with pytest.raises(CorpusError) as e:
            load_text(p, encoding=enc)
        msg = str(e.value)
        assert str(p) in msg and "UTF-8 としても cp932 (Shift_JIS) としても読めません" in msg
        assert "両方を試しました" in msg and "EUC-JP" in msg and "euc_jp" in msg
        assert "UTF-8 は 4 バイト目、cp932 は 4 バイト目" in msg
        assert "バイナリ" not in msg and "UTF-16" not in msg


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_gets_its_own_message(tmp_path: Path, encoding: str) -> None:
    """BOM 付き (utf-16) と BOM なし (-le / -be: NUL の並び方で分かる) の UTF-16。"""
    p = tmp_path / "u16.txt"
    text = AOZORA_SAMPLE.read_text(encoding="utf-8")
    p.write_text(text, encoding=encoding)
    for enc in ("auto", "utf-8", "cp932"):
        with pytest.raises(CorpusError) as e:
            load_text(p, encoding=enc)
        msg = str(e.value)
        assert str(p) in msg and "UTF-16 で保存されたテキストのようです" in msg, enc
        assert "iconv -f UTF-16 -t UTF-8" in msg and "encoding='utf-16'" in msg
        assert "Shift_JIS (cp932) のことが多い" not in msg and "バイナリ" not in msg
    # 言われたとおりに文字コードを指定すれば読める
    _check_aozora_stripped(load_text(p, encoding=encoding))


def test_utf32_with_bom_is_named(tmp_path: Path) -> None:
    p = tmp_path / "u32.txt"
    p.write_text("本文です。\n", encoding="utf-32")
    with pytest.raises(CorpusError, match="UTF-32 で保存された"):
        load_text(p)
    assert load_text(p, encoding="utf-32") == "本文です。"


def test_binary_file_gets_its_own_message(tmp_path: Path) -> None:
    p = tmp_path / "image.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\xff\x10\x00\x07")
    for enc in ("auto", "utf-8", "cp932"):
        with pytest.raises(CorpusError) as e:
            load_text(p, encoding=enc)
        msg = str(e.value)
        assert str(p) in msg and "バイナリファイルのようです" in msg and "9 バイト目" in msg, enc
        assert "NUL" in msg and "UTF-16" not in msg and "Shift_JIS" not in msg


def test_zip_file_says_to_unpack(tmp_path: Path) -> None:
    import zipfile

    p = tmp_path / "aozora.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("sample.txt", AOZORA_SAMPLE.read_bytes())
    with pytest.raises(CorpusError) as e:
        load_text(p)
    assert "バイナリファイル" in str(e.value) and "ZIP" in str(e.value) and "展開" in str(e.value)


def test_a_stray_nul_in_japanese_text_is_not_utf16(tmp_path: Path) -> None:
    p = tmp_path / "nul.txt"
    p.write_bytes("日本語の文章".encode() + b"\x00" + "続き".encode())
    with pytest.raises(CorpusError, match="バイナリファイル"):
        load_text(p)


def test_decode_text_directly() -> None:
    assert decode_text("あい".encode("cp932")) == "あい"
    assert decode_text(b"\xef\xbb\xbfabc") == "abc"
    with pytest.raises(CorpusError, match="^入力 は"):
        decode_text(b"\x81\x7f", name="入力")


def test_load_unknown_encoding(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("本文", encoding="utf-8")
    with pytest.raises(CorpusError, match="文字コード 'no-such-codec' は知らない名前"):
        load_text(p, encoding="no-such-codec")
    with pytest.raises(TypeError, match="文字列で渡してください"):
        load_text(p, encoding=932)  # type: ignore[arg-type]


def test_load_bom_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "bom.txt"
    p.write_bytes("\ufeff一行目\r\n二行目\r\n三行目\r\n".encode("utf-8"))
    assert load_text(p) == "一行目\n二行目\n三行目"


# ---------------------------------------------------------------------------
# CharTokenizer
# ---------------------------------------------------------------------------


def test_tokenizer_round_trip(corpus: Corpus) -> None:
    tok = CharTokenizer(corpus.text)
    assert tok.vocab_size == len(set(corpus.text)) + 1 == len(tok)
    sample = corpus.val_text[:2000]
    ids = tok.encode(sample)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == sample
    t = tok.encode_tensor(sample)
    assert t.dtype == torch.long and t.shape == (len(sample),)
    assert tok.decode(t) == sample


def test_tokenizer_is_deterministic() -> None:
    a = CharTokenizer("かきくけこあいうえお")
    b = CharTokenizer("おえういあこけくきか")
    assert a.itos == b.itos and a.itos[1:] == sorted("あいうえおかきくけこ")
    assert a.encode("あい") == [1, 2]


def test_tokenizer_unknown() -> None:
    tok = CharTokenizer("あいう")
    assert tok.vocab_size == 4
    assert tok.encode("あzう") == [1, 0, 3]
    assert tok.decode([1, 0, 3]) == "あ" + tok.unk_char + "う"
    assert tok.decode([99]) == tok.unk_char
    # 未知文字を表す文字そのものは語彙に入らない (id 0 を使う)
    tok2 = CharTokenizer("あ\ufffd")
    assert tok2.vocab_size == 2 and tok2.encode("\ufffd") == [0]
