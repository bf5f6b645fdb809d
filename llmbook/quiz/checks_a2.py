"""A-2「Transformer の全体構造」のコード課題の採点関数 (``a2.yaml`` の ``checker:`` が名指しする)。

どれも読者の関数 ``fn`` を受け取り、:func:`~llmbook.quiz.codecheck.check_against_reference` で
参照実装と比べ、性質のチェックと、よくある誤りの診断も行う。参照実装そのものが A-2 の
``sinusoidal_encoding`` / PyTorch の ``nn.LayerNorm`` と一致することは tests/test_a2.py で確かめる。
"""

from __future__ import annotations

import torch

from .codecheck import Case, check_against_reference

__all__ = [
    "reference_sinusoidal_encoding",
    "check_sinusoidal_encoding",
    "reference_layer_norm",
    "check_layer_norm",
]


# ---------------------------------------------------------------------------
# 課題 1: 正弦波の位置エンコーディング
# ---------------------------------------------------------------------------


def reference_sinusoidal_encoding(n_positions: int, d_model: int) -> torch.Tensor:
    """正弦波の位置エンコーディングの参照実装 (A-2 §10 のコード課題 1、式は §4)。

    戻り値: (n_positions, d_model) の float32。PE[p, 2i] = sin(p / 10000^(2i/d))、
    PE[p, 2i+1] = cos(同じ角度)。
    """
    if d_model % 2:
        raise ValueError(f"d_model ({d_model}) は偶数にしてください")
    p = torch.arange(n_positions, dtype=torch.float64)[:, None]
    angle = p / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (P, d/2)
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return pe.float()


def _pe_variant(
    swap: bool = False, halves: bool = False, exponent_i: bool = False, dtype=torch.float32
):
    """よくある誤りの実装: sin と cos が逆、前半 sin・後半 cos、指数が i/d、dtype が違う。"""

    def impl(n_positions, d_model):
        p = torch.arange(n_positions, dtype=torch.float64)[:, None]
        i = torch.arange(d_model // 2, dtype=torch.float64)
        angle = p / 10000 ** ((i if exponent_i else 2 * i) / d_model)
        first, second = (
            (torch.cos(angle), torch.sin(angle)) if swap else (torch.sin(angle), torch.cos(angle))
        )
        if halves:
            return torch.cat([first, second], dim=1).to(dtype)
        pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = first, second
        return pe.to(dtype)

    return impl


def check_sinusoidal_encoding(fn) -> object:
    """A-2 のコード課題 1: ``my_sinusoidal_encoding(n_positions, d_model)`` の採点。"""

    def odd_d_model_raises(f):
        try:
            f(4, 7)
        except ValueError:
            return None
        except Exception as exc:  # noqa: BLE001 - 読者のコードの失敗は説明に変える
            return f"奇数の d_model には ValueError を出します (出たのは {type(exc).__name__})。"
        return (
            "d_model = 7 (奇数) でも ValueError になりませんでした。"
            "sin と cos の組を作れないので止めます。"
        )

    def shift_is_rotation(f):
        pe = f(40, 16)
        if not isinstance(pe, torch.Tensor) or pe.shape != (40, 16):
            return "(40, 16) の Tensor が返らないので、回転の性質を確かめられません。"
        pe = pe.double()
        gram = pe @ pe.T  # 内積は位置の差だけで決まるはず
        spread = max(
            (torch.diagonal(gram, o).max() - torch.diagonal(gram, o).min()).item()
            for o in range(-39, 40)
        )
        if spread > 1e-4:
            return (
                f"PE(p)·PE(q) が位置の差 p − q だけで決まっていません (ばらつき {spread:.2g})。"
                "sin と cos を同じ角度の組にします。"
            )
        return None

    cases = [
        Case("小さな入力 (4 位置, d=2)", 4, 2),
        Case("10 位置, d=8", 10, 8),
        Case("50 位置, d=64 (遅い組まで確かめる)", 50, 64),
        Case("1 位置, d=6", 1, 6),
    ]
    return check_against_reference(
        fn,
        reference_sinusoidal_encoding,
        cases,
        hint="p = torch.arange(n)[:, None] と i2 = torch.arange(0, d, 2) (= 2i) から角度 "
        "p / 10000 ** (i2 / d) を作り、pe[:, 0::2] = sin、pe[:, 1::2] = cos に入れて "
        "float32 で返します。"
        "d が奇数なら最初に ValueError を出します。",
        atol=1e-5,
        properties=[
            ("奇数の d_model は ValueError", odd_d_model_raises),
            ("内積が位置の差だけで決まる", shift_is_rotation),
        ],
        diagnoses=[
            (
                _pe_variant(swap=True),
                "sin と cos が逆です。偶数番目の次元 (0, 2, 4, …) が sin、奇数番目が cos です。",
            ),
            (
                _pe_variant(halves=True),
                "前半に sin、後半に cos をまとめて並べています。この本の式では sin と cos を "
                "1 次元おきに交互に並べます (pe[:, 0::2] と pe[:, 1::2])。",
            ),
            (
                _pe_variant(exponent_i=True),
                "角速度の指数が i / d になっています。組の番号を i とすると 2i / d "
                "(torch.arange(0, d, 2) / d) です。",
            ),
            (
                _pe_variant(dtype=torch.float64),
                "値は正しいのに dtype が float64 です。最後に .float() で float32 にします。",
            ),
        ],
    )


# ---------------------------------------------------------------------------
# 課題 2: レイヤー正規化
# ---------------------------------------------------------------------------


def reference_layer_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """レイヤー正規化の参照実装 (A-2 §10 のコード課題 2、式は §5)。

    x: (..., d)、weight・bias: (d,)。分散は d で割る。
    """
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def _ln_unbiased(x, weight, bias, eps=1e-5):
    mu = x.mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(x.var(dim=-1, keepdim=True) + eps) * weight + bias


def _ln_eps_outside(x, weight, bias, eps=1e-5):
    mu = x.mean(dim=-1, keepdim=True)
    return (x - mu) / (((x - mu) ** 2).mean(dim=-1, keepdim=True).sqrt() + eps) * weight + bias


def _ln_no_eps(x, weight, bias, eps=1e-5):
    mu = x.mean(dim=-1, keepdim=True)
    return (x - mu) / ((x - mu) ** 2).mean(dim=-1, keepdim=True).sqrt() * weight + bias


def _ln_batch_axis(x, weight, bias, eps=1e-5):
    mu = x.mean(dim=0, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=0, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def _ln_no_affine(x, weight, bias, eps=1e-5):
    return reference_layer_norm(x, torch.ones_like(weight), torch.zeros_like(bias), eps)


def _ln_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return [
        Case(
            "(B, T, d) = (2, 3, 8)、倍率とずらし幅つき",
            r(2, 3, 8) * 2 + 1,
            1 + 0.3 * r(8),
            0.3 * r(8),
        ),
        Case("(N, d) = (5, 16)", r(5, 16) * 4 - 2, 1 + 0.3 * r(16), 0.3 * r(16)),
        Case("トークン 1 つ (1, 4)", r(1, 4), torch.ones(4), torch.zeros(4)),
        Case(
            "すべての成分が同じ値 (分散 0) の行を含む",
            torch.cat([torch.full((1, 6), 3.0), r(2, 6)]),
            torch.ones(6),
            torch.zeros(6),
        ),
        Case("eps を大きく (eps=0.5)", r(3, 8), torch.ones(8), torch.zeros(8), eps=0.5),
    ]


def check_layer_norm(fn) -> object:
    """A-2 のコード課題 2: ``my_layer_norm(x, weight, bias, eps=1e-5)`` の採点。"""

    def matches_pytorch(f):
        g = torch.Generator().manual_seed(2)
        x = torch.randn(4, 7, 32, generator=g) * 3
        ln = torch.nn.LayerNorm(32)
        with torch.no_grad():
            ln.weight.normal_(1.0, 0.2, generator=g)
            ln.bias.normal_(0.0, 0.2, generator=g)
            want = ln(x)
            got = f(x, ln.weight.detach().clone(), ln.bias.detach().clone())
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return "nn.LayerNorm と同じ形の Tensor が返りませんでした。"
        err = (got.detach() - want).abs().max().item()
        if not err <= 1e-5:
            return f"nn.LayerNorm との最大の差が {err:.2g} です (1e-5 以下になるはず)。"
        return None

    return check_against_reference(
        fn,
        reference_layer_norm,
        _ln_cases(),
        hint="最後の次元で mu = x.mean(-1, keepdim=True)、"
        "var = ((x - mu) ** 2).mean(-1, keepdim=True) を作り "
        "(d で割る分散)、(x - mu) / torch.sqrt(var + eps) に weight を掛けて bias を足します。",
        atol=1e-5,
        properties=[("nn.LayerNorm と一致する", matches_pytorch)],
        diagnoses=[
            (
                _ln_unbiased,
                "分散を d − 1 で割っています (x.var の既定は不偏分散)。"
                "レイヤー正規化の分散は d で割ります "
                "(x.var(-1, unbiased=False) か ((x - mu) ** 2).mean(-1))。",
            ),
            (
                _ln_eps_outside,
                "eps を平方根の外で足しています。"
                "sqrt(var + eps) のように、分散に足してから平方根をとります。",
            ),
            (
                _ln_no_eps,
                "eps を使っていないようです。すべての成分が同じ値の行では分散が 0 になり、"
                "0 / 0 で NaN になります。sqrt(var + eps) のように、分散に eps を足してから"
                "平方根をとります。",
            ),
            (
                _ln_batch_axis,
                "最初の次元 (バッチの方向) で平均をとっています。それはバッチ正規化の向きです。"
                "レイヤー正規化は最後の次元 (dim=-1) で平均と分散をとります。",
            ),
            (_ln_no_affine, "weight を掛けることと bias を足すことを忘れているようです。"),
        ],
    )
