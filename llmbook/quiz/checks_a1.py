"""A-1「言語モデルの進化」のコード課題の採点関数
(問題バンク ``a1.yaml`` の ``checker:`` から名指しされる)。

どれも読者の関数 ``fn`` を受け取り、:func:`~llmbook.quiz.codecheck.check_against_reference` で
参照実装と比べ、性質のチェックも行う。参照実装そのものが PyTorch の実装 (``F.cross_entropy``) や
A-1 の ``NGramLM`` と一致することは ``tests/test_a1.py`` で確かめる。
"""
from __future__ import annotations

import math

import torch

from .codecheck import Case, check_against_reference

__all__ = [
    "reference_perplexity",
    "check_perplexity_from_logits",
    "reference_bigram_probs",
    "check_bigram_probs",
]


# ---------------------------------------------------------------------------
# 課題 1: ロジットからパープレキシティ
# ---------------------------------------------------------------------------


def reference_perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """exp(平均交差エントロピー) の参照実装 (A-1 §12 のコード課題 1、式は §1)。

    logits: (..., V) のスコア、targets: (...) の正解 ID。戻り値は Python の float。
    """
    V = logits.shape[-1]
    log_p = torch.log_softmax(logits.reshape(-1, V).double(), dim=-1)       # (N, V)
    nll = -log_p.gather(-1, targets.reshape(-1, 1)).squeeze(-1).mean()      # 平均交差エントロピー
    return math.exp(nll.item())


def _ppl_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    t = lambda hi, *s: torch.randint(0, hi, s, generator=g)  # noqa: E731
    return [
        Case("小さな入力 (N=5, V=4)", r(5, 4), t(4, 5)),
        Case("(B, T, V) = (2, 3, 10) の 3 次元の入力", r(2, 3, 10) * 2, t(10, 2, 3)),
        Case("すべてのスコアに +1000 (そのまま exp するとあふれる)", r(6, 8) + 1000, t(8, 6)),
        Case("すべてのスコアに −1000 (そのまま exp すると 0 になる)", r(6, 8) - 1000, t(8, 6)),
        Case("一様なスコア (V=13)", torch.zeros(7, 13), t(13, 7)),
    ]


def check_perplexity_from_logits(fn) -> object:
    """A-1 のコード課題 1: ``perplexity_from_logits(logits, targets)`` の採点。"""

    def uniform_gives_vocab_size(f):
        for V in (3, 50):
            got = f(torch.zeros(4, V), torch.arange(4) % V)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if (
                not isinstance(got, (int, float))
                or isinstance(got, bool)
                or not math.isclose(got, V, rel_tol=1e-4)
            ):
                return (
                    f"すべてのスコアが同じ (一様分布) なら、パープレキシティは語彙の大きさ V = {V} "
                    f"になるはずです (出力: {got!r:.40})。"
                )
        return None

    def confident_gives_one(f):
        targets = torch.tensor([2, 0, 1])
        logits = torch.nn.functional.one_hot(targets, 5).float() * 40       # 正解だけスコア +40
        got = f(logits, targets)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not abs(got - 1) < 1e-3:
            return (
                "正解にほぼ確率 1 を置くロジットなら、パープレキシティは 1 に近いはずです "
                f"(出力: {got!r:.40})。"
            )
        return None

    def large_scores_stay_finite(f):
        got = f(torch.tensor([[1000.0, 999.0, 998.0]]), torch.tensor([1]))
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, float) and not math.isfinite(got):
            return (
                f"スコア [1000, 999, 998] で {got} になりました。最大値を引いていない? "
                "exp(1000) は float であふれます。各行の最大値を引いてから exp します。"
            )
        return None

    return check_against_reference(
        fn, reference_perplexity, _ppl_cases(),
        hint=(
            "logits を (N, V) に、targets を (N,) に reshape します。各行の最大値 m を引いてから "
            "log Σ exp をとり (log_z = log(exp(z - m).sum()) + m)、"
            "正解のスコアとの差 log_z − z[正解] を平均して exp します。"
        ),
        properties=[
            ("一様なスコアなら PPL = V", uniform_gives_vocab_size),
            ("正解に確率 1 近くを置けば PPL ≈ 1", confident_gives_one),
            ("大きなスコアでもあふれない", large_scores_stay_finite),
        ],
        diagnoses=[
            (
                _ppl_without_max,
                "最大値を引いていないようです。exp(1000) は float であふれ (inf)、"
                "exp(−1000) は 0 になるので、inf / inf や 0 / 0 が nan になります。"
                "各行の最大値 m を引いてから exp します (log_z = log(exp(z − m).sum()) + m)。",
            ),
            (
                lambda logits, targets: math.log(reference_perplexity(logits, targets)),
                "平均交差エントロピーそのもの (log PPL) を返しているようです。最後に exp します "
                "(一様なスコアなら PPL = V ですが、返した値は log V になっています)。",
            ),
        ],
    )


def _ppl_without_max(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """よくある誤り: 最大値を引かずに exp するので、大きなスコアで inf / inf = nan になる。"""
    V = logits.shape[-1]
    z = logits.reshape(-1, V).double()
    p = z.exp() / z.exp().sum(dim=-1, keepdim=True)                         # (N, V)
    return math.exp(-p.gather(-1, targets.reshape(-1, 1)).log().mean().item())


# ---------------------------------------------------------------------------
# 課題 2: 加算スムージングつきのバイグラム
# ---------------------------------------------------------------------------


def reference_bigram_probs(ids: torch.Tensor, vocab_size: int, k: float = 1.0) -> torch.Tensor:
    """加算スムージングつきの文字バイグラムの確率表の参照実装 (A-1 §12 のコード課題 2、式は §4)。

    ids: (N,) の torch.long。戻り値: (V, V) の float32 で、[a, b] = (c(a b) + k) / (c(a) + k V)。
    c(a) は「a の後に 1 文字続いた回数」(= 行 a の回数の和)。
    """
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    counts.index_put_(
        (ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.float64), accumulate=True
    )
    return ((counts + k) / (counts.sum(dim=1, keepdim=True) + k * vocab_size)).float()


def _bigram_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case("短い列 (V=3, k=1)", torch.tensor([0, 1, 1, 2, 0, 1]), 3, 1.0),
        Case("k=0.5", torch.tensor([2, 2, 0, 1, 2, 0, 0]), 3, 0.5),
        Case("ランダムな列 (V=10, 長さ 200, k=0.1)",
             torch.randint(0, 10, (200,), generator=g), 10, 0.1),
        Case("一度も現れない文字がある (V=6)", torch.tensor([0, 1, 2, 3, 0, 1, 3, 3]), 6, 1.0),
    ]


def check_bigram_probs(fn) -> object:
    """A-1 のコード課題 2: ``bigram_probs(ids, vocab_size, k=1.0)`` の採点。"""

    def rows_are_distributions(f):
        g = torch.Generator().manual_seed(1)
        P = f(torch.randint(0, 7, (50,), generator=g), 7, 0.3)
        if not isinstance(P, torch.Tensor) or P.shape != (7, 7):
            return "(V, V) の Tensor が返りませんでした。"
        if (P <= 0).any():
            return "加算スムージングでは、一度も現れない並びにも 0 より大きい確率が残るはずです。"
        if not torch.allclose(P.double().sum(dim=1), torch.ones(7, dtype=torch.float64), atol=1e-5):
            return (
                "各行 P[a, :] の和が 1 になっていません "
                "(分母は「a の後に続いた回数の合計 + k V」です)。"
            )
        return None

    return check_against_reference(
        fn, reference_bigram_probs, _bigram_cases(),
        hint=(
            "counts = torch.zeros(V, V) を作り、隣り合う組 (ids[:-1], ids[1:]) ごとに 1 を足します "
            "(ループでも index_put_(..., accumulate=True) でもよい)。"
            "分母は counts.sum(dim=1, keepdim=True) + k * V です。"
        ),
        properties=[("各行が確率分布 (正で和が 1)", rows_are_distributions)],
        diagnoses=[
            (
                lambda ids, V, k=1.0: reference_bigram_probs(ids, V, k).double(),
                "値は正しいのに dtype が float64 です。最後に .float() を付けて float32 にします。",
            ),
            (
                _bigram_without_accumulate,
                "同じ組が何度現れても 1 しか足されていないようです。counts[a, b] += 1 "
                "をまとめて書くと重複が数えられません。"
                "ループで足すか、counts.index_put_((a, b), torch.ones(len(a)), accumulate=True) "
                "を使います。",
            ),
        ],
    )


def _bigram_without_accumulate(ids: torch.Tensor, vocab_size: int, k: float = 1.0) -> torch.Tensor:
    """よくある誤り: 添字でまとめて += 1 すると、重複した組が 1 回しか数えられない。"""
    counts = torch.zeros(vocab_size, vocab_size)
    counts[ids[:-1], ids[1:]] += 1
    return (counts + k) / (counts.sum(dim=1, keepdim=True) + k * vocab_size)
