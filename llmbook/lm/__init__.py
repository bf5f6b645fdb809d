"""言語モデルの章 (A-1 から) が使う配管: 入力の検証、長いテキストの評価、表と図。

章のノートブックが教えるもの (モデル、N グラムの数え上げ、訓練のステップ) は
``llmbook.chapters.a1`` に書き出す。ここにあるのは、その周りで毎回同じになる部分:

- :mod:`~llmbook.lm.validation` — 引数を確かめ、日本語のメッセージで知らせる
- :mod:`~llmbook.lm.eval` — 長い ID 列の評価 (窓をずらす・区間に分ける)、予測、生成
- :mod:`~llmbook.lm.tables` — パープレキシティの表の表示 (テキスト・Markdown・HTML・図)
- :mod:`~llmbook.lm.plots` — A-1 の図 (バイグラムのヒートマップ、学習曲線、ヘッドごとの
  アテンションの重み、距離と勾配、系列長と時間)
"""
from __future__ import annotations

from .validation import check_keywords

__all__ = ["check_keywords"]
