"""A-6「用語集と確認問題」のコード課題の採点関数
(問題バンク ``a6.yaml`` の ``checker:`` から名指しされる)。

コード課題の採点関数は 1 章 1 モジュール (``llmbook/quiz/checks_<章>.py``) に置き、バンクの
``checker:`` には関数名だけを書く。どれも読者の関数 ``fn`` を受け取り、
:func:`~llmbook.quiz.codecheck.check_against_reference` で参照実装と比べる。参照実装そのものが
PyTorch の実装と一致することは ``tests/test_codecheck.py`` で確かめる。
"""
from __future__ import annotations

import math

import torch

from .codecheck import Case, check_against_reference

__all__ = [
    "reference_attention", "check_scaled_dot_product_attention", "reference_causal_mask",
    "check_causal_mask",
]


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(Q Kᵀ / √d_k) V の参照実装 (A-6 問5 のコード課題。A-3 で詳しく組み立てる)。

    q: (..., L_q, d_k), k: (..., L_k, d_k), v: (..., L_k, d_v),
    mask: (L_q, L_k) の bool (True = 参照してよい)。戻り値: (..., L_q, d_v)
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L_q, L_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    return [
        Case("小さな入力 (L=3, d_k=4)", r(3, 4), r(3, 4), r(3, 4)),
        Case("バッチとヘッドの次元つき (2, 2, 5, 8)", r(2, 2, 5, 8), r(2, 2, 5, 8), r(2, 2, 5, 8)),
        Case("d_k=256 (スケーリングを忘れると大きくずれる)", r(4, 256), r(6, 256), r(6, 3)),
        Case("因果マスクつき (L=5)", r(5, 8), r(5, 8), r(5, 8), mask=causal),
    ]


def check_scaled_dot_product_attention(fn) -> object:
    """A-6 問5 のコード課題: scaled_dot_product_attention(q, k, v, mask=None) の採点。"""

    def rows_are_convex(f):
        # v を単位行列にすると、出力はアテンションの重みそのもの。
        # 各行が確率分布 (非負・和 1) になるはず
        g = torch.Generator().manual_seed(1)
        q, k = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
        w = f(q, k, torch.eye(4))
        if not isinstance(w, torch.Tensor) or w.shape != (4, 4):
            return "v に単位行列を入れたとき、出力の形が (4, 4) になりませんでした。"
        if (w < -1e-6).any() or not torch.allclose(w.sum(-1), torch.ones(4), atol=1e-5):
            return (
                "v に単位行列を入れたとき、各行が確率分布 (非負で和が 1) になりませんでした。"
                "softmax の dim を確認しましょう。"
            )
        return None

    return check_against_reference(
        fn, reference_attention, _attention_cases(),
        hint=(
            "式 softmax(QKᵀ / √d_k) V を 4 段 (スコア → マスク → softmax → v との積) に分け、"
            "落ちた項目 (と、出ていれば「考えられる原因」) を手がかりに、どの段がずれているかを"
            "探します。k の転置は最後の 2 つの次元だけを入れ替えます。"
        ),
        properties=[("アテンションの重みは各行が確率分布", rows_are_convex)],
        diagnoses=[
            (
                _attention_scaled_by(1.0),
                "√d_k で割っていないようです。スコアを math.sqrt(d_k) で割ります。",
            ),
            (
                _attention_scaled_by_dk,
                "√d_k ではなく d_k で割っているようです。割るのは d_k の平方根です。",
            ),
            (
                _attention_ignoring_mask,
                "mask を無視しているようです。mask が False の位置を -inf で埋めます。",
            ),
            (
                _attention_inverted_mask,
                "mask の True と False を逆に使っているようです (masked_fill(mask, …))。"
                "この課題の mask は True = 参照してよい なので、-inf で埋めるのは ~mask "
                "(False) の位置です。nn.MultiheadAttention の attn_mask (True = 参照できない) "
                "とは約束が逆です。",
            ),
        ],
    )


def _attention_scaled_by(divisor: float):
    def impl(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / divisor
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v
    return impl


def _attention_scaled_by_dk(q, k, v, mask=None):
    return _attention_scaled_by(float(q.shape[-1]))(q, k, v, mask)


def _attention_ignoring_mask(q, k, v, mask=None):
    return reference_attention(q, k, v)


def _attention_inverted_mask(q, k, v, mask=None):
    return reference_attention(q, k, v, None if mask is None else ~mask)


def reference_causal_mask(n: int) -> torch.Tensor:
    """長さ n の因果マスク (A-6 問8 のコード課題。A-5 で詳しく扱う)。

    戻り値: (n, n) の bool、True = 参照してよい。
    """
    return torch.ones(n, n, dtype=torch.bool).tril()


def check_causal_mask(fn) -> object:
    """A-6 問8 のコード課題: causal_mask(n) の採点。"""

    def no_future(f):
        m = f(6)
        if not isinstance(m, torch.Tensor) or m.shape != (6, 6):
            return (
                "causal_mask(6) が (6, 6) のテンソルを返さないので、"
                "未来を隠せているか確かめられません。"
            )
        for i in range(6):
            for j in range(i + 1, 6):
                if bool(m[i, j]):
                    return f"位置 {i} のトークンが未来の位置 {j} を参照できてしまいます。"
        return None

    return check_against_reference(
        fn, reference_causal_mask, [Case("n=1", 1), Case("n=4", 4), Case("n=7", 7)],
        hint=(
            "n = 3 なら [[T, F, F], [T, T, F], [T, T, T]] になります。"
            "どの部分が True か (対角を含むか、上と下のどちらか) を見て、"
            "torch にある三角行列を取り出す関数を探しましょう。"
        ),
        properties=[("未来の位置を参照しない", no_future)],
        diagnoses=[
            (
                lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1),
                "対角 (自分自身) も True にします。位置 i は自分自身を参照できます。",
            ),
            (
                lambda n: torch.ones(n, n, dtype=torch.bool).triu(1),
                "True と False が逆です (未来の位置が True)。この課題は True = 参照してよい "
                "の約束で、nn.MultiheadAttention の attn_mask (True = 参照できない、"
                ".triu(1) で作る) とは逆です。",
            ),
            (
                lambda n: torch.ones(n, n, dtype=torch.bool).triu(),
                "上下が逆です。True にするのは対角を含む下三角 (j ≤ i) です。",
            ),
            (
                lambda n: torch.ones(n, n, dtype=torch.bool),
                "すべて True になっています。未来の位置 (j > i) は False にします。",
            ),
            (
                lambda n: torch.ones(n, n).tril(),
                "値は合っていますが dtype が bool ではありません。dtype=torch.bool で作ります。",
            ),
        ],
    )
