"""A-4「FFN と活性化関数」のコード課題の採点関数 (``a4.yaml`` の ``checker:`` が名指し)。

どれも読者の関数 ``fn`` を受け取り、:func:`~llmbook.quiz.codecheck.check_against_reference` で
参照実装と比べ、よくある誤りの実装と一致すればその説明を添える。GELU の参照は PyTorch の
``F.gelu`` そのもの、SwiGLU の FFN の参照は ``F.silu`` と行列の積で書いた式。これらが A-4 の
``gelu`` / ``GatedFeedForward`` と一致することは tests/test_a4_quiz.py で確かめる。
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .codecheck import Case, check_against_reference, seeded_randn

__all__ = [
    "reference_gelu",
    "check_gelu",
    "reference_swiglu_ffn",
    "check_swiglu_ffn",
]


# ---------------------------------------------------------------------------
# 課題 1: GELU (正確な式と tanh 近似)
# ---------------------------------------------------------------------------


def reference_gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """PyTorch の ``F.gelu`` (approximate="none" は erf の式、"tanh" は tanh 近似)。"""
    return F.gelu(x, approximate=approximate)


def _exact(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu_sigmoid(x, approximate="none"):
    if approximate == "tanh":
        return _tanh(x)
    return x * torch.sigmoid(1.702 * x)                   # シグモイドによる別の近似


def _gelu_no_half(x, approximate="none"):
    if approximate == "tanh":
        return x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return x * (1 + torch.erf(x / math.sqrt(2)))          # 0.5 を忘れて 2 倍


def _gelu_erf_no_sqrt2(x, approximate="none"):
    if approximate == "tanh":
        return _tanh(x)
    return 0.5 * x * (1 + torch.erf(x))                   # erf(x / √2) ではなく erf(x)


def _gelu_always_exact(x, approximate="none"):
    return _exact(x)                                      # approximate を見ていない


def _gelu_always_tanh(x, approximate="none"):
    return _tanh(x)                                       # 既定 ("none") でも tanh 近似


def _gelu_elementwise(x, approximate="none"):
    if approximate == "tanh":
        return _tanh(x)
    # 要素ごとに math.erf で計算して、平らな (1 次元の) Tensor を作る
    return torch.tensor([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.flatten().tolist()])


def _gelu_tanh_square(x, approximate="none"):
    if approximate == "tanh":                             # x³ ではなく x² と書き違えた
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 2)))
    return _exact(x)


def _gelu_float32(x, approximate="none"):
    x = x.float()                                         # 入力の dtype を捨てる
    return _tanh(x) if approximate == "tanh" else _exact(x)


#: よくある誤り (GELU) と、その説明。
GELU_MISTAKES = [
    (
        _gelu_sigmoid,
        "x · sigmoid(1.702 x) の近似を使っているようです。これも GELU の近似の 1 つですが、"
        "正確な GELU とは最大 0.02 ほど違います。approximate=\"none\" では "
        "0.5 · x · (1 + erf(x / √2)) (= x · Φ(x)) を計算します。",
    ),
    (
        _gelu_no_half,
        "値がちょうど 2 倍になっています: 先頭の 0.5 を忘れているようです。"
        "Φ(x) = 0.5 · (1 + erf(x / √2)) なので、GELU は 0.5 · x · (1 + erf(x / √2)) です "
        "(tanh 近似も 0.5 · x · (1 + tanh(…)))。",
    ),
    (
        _gelu_erf_no_sqrt2,
        "erf(x / √2) ではなく erf(x) を使っているようです。標準正規分布の累積分布関数は "
        "Φ(x) = 0.5 · (1 + erf(x / √2)) で、erf の中で x を √2 で割ります。",
    ),
    (
        _gelu_always_exact,
        "approximate=\"tanh\" を渡しても tanh 近似になっていません (erf の式のままです)。"
        "if approximate == \"tanh\": の分岐で "
        "0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) を返します。",
    ),
    (
        _gelu_always_tanh,
        "approximate を渡さない (\"none\") ときも tanh 近似になっています。既定の \"none\" は "
        "erf を使う正確な式 0.5 · x · (1 + erf(x / √2)) で、tanh 近似は approximate == \"tanh\" "
        "のときだけです。",
    ),
    (
        _gelu_elementwise,
        "要素ごとに math.erf で計算して、平らな 1 次元の Tensor を返しているようです。"
        "戻り値は x と同じ形にします。torch.erf を使えば、ループなしで x の形のまま計算できます。",
    ),
    (
        _gelu_tanh_square,
        "tanh 近似の中が x + 0.044715 · x² になっているようです (x³ ではなく x²)。"
        "tanh 近似は 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) で、3 乗は x ** 3 です。",
    ),
    (
        _gelu_float32,
        "入力を float32 に変えて計算しているようです (x.float() など)。float64 の入力には "
        "float64 で返します。x の dtype のまま計算すれば、そうなります。",
    ),
]


def _gelu_cases() -> list[Case]:
    r = seeded_randn(0)
    grid = torch.linspace(-4, 4, 17)   # −4, −3.5, …, 4 (tanh 近似との差が大きい |x| ≈ 2.5〜3 も)
    x64 = 2 * r(4, 6).double()
    return [
        Case("(17,) の等間隔の点 −4〜4、approximate を渡さない", grid),
        Case("(3, 5) の乱数、approximate=\"none\"", 2 * r(3, 5), approximate="none"),
        Case("(17,) の等間隔の点 −4〜4、approximate=\"tanh\"", grid.clone(), approximate="tanh"),
        Case("(2, 3, 4) の乱数、approximate=\"tanh\"", 2 * r(2, 3, 4), approximate="tanh"),
        Case("float64 の (4, 6)、approximate を渡さない", x64),
        Case("float64 の (4, 6)、approximate=\"tanh\"", x64.clone(), approximate="tanh"),
    ]


#: GELU の採点の「得点の付け方」。どの項目も、よくある誤りの実装のどれかでも通るので
#: (tests/test_a4_quiz.py が確かめる)、部分点はなく、全項目を通ったときだけ正解になる。
GELU_SCORING = (
    "得点の付け方: この課題では、どの項目も、よくある誤りの実装でも通ってしまうので数えません。"
    "approximate を渡さない・\"none\" の 3 項目は tanh の分岐を書かない実装でも通り、"
    "approximate=\"tanh\" の 3 項目は正確な式の方を書かない (または間違えた) 実装でも通ります。"
    "片方の分岐だけでは得点にならず、6 項目すべてを通ったときだけ正解 (1 点) です。"
)


def check_gelu(fn) -> object:
    """A-4 のコード課題 1: ``my_gelu(x, approximate="none")`` の採点。

    部分点がない理由は、codecheck の一般的な説明の代わりに :data:`GELU_SCORING` で具体的に示す。
    """
    result = check_against_reference(
        fn, reference_gelu, _gelu_cases(),
        hint="正確な GELU は 0.5 * x * (1 + torch.erf(x / math.sqrt(2))) です (x · Φ(x))。"
        "approximate == \"tanh\" のときだけ、0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) "
        "* (x + 0.044715 * x ** 3))) を返します。x を書き換えず、x と同じ形・dtype で返します。",
        diagnoses=GELU_MISTAKES,
    )
    if result.status != "correct":
        result.message = result.message.replace(
            "誤った実装でも通る項目は得点に数えません", "全項目を通ったときだけ得点になります")
        result.details = [GELU_SCORING if d.startswith("得点の付け方") else d
                          for d in result.details]
    return result


# ---------------------------------------------------------------------------
# 課題 2: SwiGLU の FFN
# ---------------------------------------------------------------------------


def reference_swiglu_ffn(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor,
                         w_down: torch.Tensor) -> torch.Tensor:
    """SwiGLU の FFN: (silu(x W_gateᵀ) ⊙ x W_upᵀ) W_downᵀ。重みは nn.Linear (バイアスなし) の形。

    x: (..., d)、w_gate・w_up: (d_ff, d)、w_down: (d, d_ff) → (..., d)。
    """
    return (F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def _swiglu_variant(*, gate=F.silu, swap: bool = False, combine: str = "mul",
                    transpose: bool = True, down: bool = True, down_transpose: bool = True):
    """SwiGLU の FFN。既定の引数では正しく、引数ごとによくある誤りになる。

    gate: ゲートの活性化関数、swap=True なら活性化を値側 (w_up) にかける、combine="add" なら
    掛けずに足す、combine="silu_after" なら積 a ⊙ b の後に SiLU を通す、transpose=False なら
    x @ w (転置なし)、down=False なら w_down を掛けない、down_transpose=False なら h @ w_down
    (w_down だけ転置なし)。
    """

    def impl(x, w_gate, w_up, w_down):
        def proj(t, w):
            return t @ w.T if transpose else t @ w

        a, b = proj(x, w_gate), proj(x, w_up)             # (..., d_ff)
        if swap:
            a, b = b, a
        if combine == "silu_after":
            h = gate(a * b)                               # 積の後に活性化
        else:
            h = gate(a) * b if combine == "mul" else gate(a) + b
        if not down:
            return h
        return proj(h, w_down) if down_transpose else h @ w_down   # (..., d)

    return impl


#: よくある誤り (SwiGLU の FFN) と、その説明。
SWIGLU_MISTAKES = [
    (
        _swiglu_variant(swap=True),
        "SiLU をかける側が逆のようです: silu(x @ w_up.T) * (x @ w_gate.T) になっています。"
        "活性化関数を通すのはゲート側 (w_gate) で、値側 (w_up) はそのまま掛けます。",
    ),
    (
        _swiglu_variant(gate=torch.sigmoid),
        "ゲートに SiLU ではなくシグモイドを使っているようです (それは GLU です)。"
        "SwiGLU のゲートは silu(a) = a · sigmoid(a) です。",
    ),
    (
        _swiglu_variant(gate=F.gelu),
        "ゲートに SiLU ではなく GELU を使っているようです (それは GEGLU です)。"
        "SwiGLU のゲートは F.silu (= a · sigmoid(a)) です。",
    ),
    (
        _swiglu_variant(transpose=False),
        "重みを転置せずに x @ w_gate のように掛けているようです。重みは nn.Linear と同じ "
        "(出力, 入力) の形なので、x @ w_gate.T、x @ w_up.T、h @ w_down.T と転置して掛けます "
        "(d_ff ≠ d なら、転置しないと形が合わずエラーになります)。",
    ),
    (
        _swiglu_variant(combine="add"),
        "ゲートと値を足しているようです。SwiGLU では要素ごとに掛けます: "
        "silu(x @ w_gate.T) * (x @ w_up.T)。掛けるので、ゲートが 0 に近い成分は値が通りません。",
    ),
    (
        _swiglu_variant(down=False),
        "w_down を掛け忘れているようです: (…, d_ff) の中間の値をそのまま返しています。"
        "最後に @ w_down.T で d_model 次元に戻します。",
    ),
    (
        _swiglu_variant(down_transpose=False),
        "最後の w_down を転置せずに h @ w_down と掛けているようです。"
        "w_down は (d, d_ff) の形なので、(…, d_ff) の h には h @ w_down.T と転置して掛けます "
        "(d ≠ d_ff なら、転置しないと形が合わずエラーになります)。",
    ),
    (
        _swiglu_variant(combine="silu_after"),
        "SiLU を、ゲートと値の積の後に通しているようです: silu((x @ w_gate.T) * (x @ w_up.T))。"
        "SiLU はゲート側の x @ w_gate.T だけに通し、その結果に値側 x @ w_up.T を掛けます。",
    ),
]


def _swiglu_cases() -> list[Case]:
    r = seeded_randn(1)

    def w(d_out, d_in):
        return r(d_out, d_in) / math.sqrt(d_in)           # nn.Linear の初期値くらいの大きさ

    def args(x_shape, d_ff):
        d = x_shape[-1]
        return (r(*x_shape), w(d_ff, d), w(d_ff, d), w(d, d_ff))

    return [
        Case("x (2, 5, 8)、d_ff = 12", *args((2, 5, 8), 12)),
        Case("x (3, 16)、d_ff = 40", *args((3, 16), 40)),
        Case("x (8,) (1 トークン)、d_ff = 20", *args((8,), 20)),
        Case("x (2, 4, 6)、d_ff = d = 6 (正方行列)", *args((2, 4, 6), 6)),
    ]


def check_swiglu_ffn(fn) -> object:
    """A-4 のコード課題 2: ``my_swiglu_ffn(x, w_gate, w_up, w_down)`` の採点。"""
    return check_against_reference(
        fn, reference_swiglu_ffn, _swiglu_cases(),
        hint="(1) gate = F.silu(x @ w_gate.T) → (2) up = x @ w_up.T → (3) h = gate * up "
        "(要素ごとの積、形は (…, d_ff)) → (4) h @ w_down.T で (…, d) に戻す。"
        "F.silu を使わないなら a * torch.sigmoid(a) です。",
        diagnoses=SWIGLU_MISTAKES,
    )
