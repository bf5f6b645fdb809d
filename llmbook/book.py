"""本の章の一覧 (どの章が公開済みか)。クイズや用語集から章へリンクするときに使う。

章を公開したら ``PUBLISHED`` に足し、``_toc.yml`` にも載せる (tests が両者の一致を確かめる)。
"""
from __future__ import annotations

import re

__all__ = ["CHAPTERS", "PUBLISHED", "REVIEW_CHAPTERS", "chapter_links"]

#: 章の番号 → (ノートブックのファイル名 (拡張子なし), 題名)
CHAPTERS: dict[str, tuple[str, str]] = {
    "A-1": ("a1_language_models", "言語モデルの進化"),
    "A-2": ("a2_transformer_overview", "Transformer の全体構造"),
    "A-3": ("a3_multi_head_attention", "マルチヘッドアテンション"),
    "A-4": ("a4_ffn_activations", "FFN と活性化関数"),
    "A-5": ("a5_causal_generation", "因果マスクと自己回帰生成"),
    "A-6": ("a6_glossary_review", "用語集と確認問題"),
}
#: 公開済みの章 (``_toc.yml`` に載っているもの)
PUBLISHED: tuple[str, ...] = ("A-1", "A-2", "A-3", "A-4", "A-5", "A-6")
#: 復習の章 (確認問題そのものが本文。まとめと得点は最後の問題の後ろ)。ほかの章は
#: 「まとめ」→「章末クイズ」の順で終わる (tests/test_chapters.py が確かめる)
REVIEW_CHAPTERS: tuple[str, ...] = ("A-6",)


def chapter_links(ref: str) -> list[tuple[str, str | None]]:
    """「A-2・A-5」のような章の参照を [(表示, ファイル名), ...] に分ける (未公開の章は None)。"""
    out = []
    for label in re.findall(r"A-[1-6]", ref):
        stem = CHAPTERS[label][0] if label in PUBLISHED else None
        out.append((label, stem))
    return out
