"""この本のコーパスと、読者自身のテキストの読み込み (A-1 §2「コーパス」で導入)。

A-1 (N グラムから RNN、Transformer へ) とそれ以降のすべての章は、ここで作る同じ
コーパスで訓練・評価する。コーパスは外部の文章を一切使わず、この本のために書いた
テンプレートと語彙リストから、乱数の種 ``seed`` だけで決まる形で毎回生成する
(ファイルとして配布しない。来歴とライセンスは ``assets/corpus/README.md``)。

- :func:`generate_corpus` — 日常の小さな物語・日記・会話・説明文・手紙の一節を並べた
  約 32 万字のコーパスを作る (:mod:`~llmbook.corpus.generator`。材料は
  :mod:`~llmbook.corpus.templates`)。
- :class:`Corpus` — 本文・一節 (``passages``)・長距離依存の記録と、全章共通の
  訓練用 / 検証用の分割 (最後の 10% の一節が検証用)。
- :class:`LongRangeItem` — N グラムでは当てられない「遠くの手がかり」が要る位置
  (人名の再登場と、「…」の閉じかっこ)。
- :func:`load_text` — 読者自身のテキスト (UTF-8 か Shift_JIS。青空文庫形式も可) を読む
  (:mod:`~llmbook.corpus.reader`)。
- :class:`CharTokenizer` — 文字単位のトークナイザ (:mod:`~llmbook.corpus.tokenizer`)。

``python -m llmbook.corpus`` は seed=0 のコーパスの統計を JSON で表示する
(``assets/corpus/stats.json`` の作り直しに使う)。
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .generator import (
    DEFAULT_MIN_CHARS,
    NAME_MIN_DISTANCE,
    NAME_TARGET_MAX_DISTANCE,
    PASSAGE_SEPARATOR,
    QUOTE_MAX_LEN,
    QUOTE_MIN_LEN,
    VAL_FRACTION,
    Corpus,
    LongRangeItem,
    generate_corpus,
    split_train_val,
)
from .reader import AUTO_ENCODINGS, CorpusError, decode_text, load_text, strip_aozora_markup
from .templates import GIVEN_NAMES
from .tokenizer import CharTokenizer

__all__ = [
    "CorpusError",
    "LongRangeItem",
    "Corpus",
    "generate_corpus",
    "split_train_val",
    "load_text",
    "decode_text",
    "strip_aozora_markup",
    "CharTokenizer",
    "GIVEN_NAMES",
    "VAL_FRACTION",
    "PASSAGE_SEPARATOR",
    "DEFAULT_MIN_CHARS",
    "NAME_MIN_DISTANCE",
    "NAME_TARGET_MAX_DISTANCE",
    "QUOTE_MIN_LEN",
    "QUOTE_MAX_LEN",
    "AUTO_ENCODINGS",
]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m llmbook.corpus``: コーパスの統計を JSON で表示する (``--out`` で本文も書く)。"""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m llmbook.corpus", description="この本のコーパスを生成して統計を表示する")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="本文を UTF-8 で書き出すファイル")
    args = parser.parse_args(argv)
    corpus = generate_corpus(args.seed)
    if args.out is not None:
        args.out.write_text(corpus.text + "\n", encoding="utf-8")
    print(json.dumps(corpus.stats(), ensure_ascii=False, indent=2))
