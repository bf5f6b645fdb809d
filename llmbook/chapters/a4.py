"""a4_ffn_activations.ipynb の ``#| export`` セルから自動生成したモジュール。

このファイルは編集しないでください。ノートブックを直してから
``python -m llmbook.export`` を実行します (tests がずれを検出します)。
"""
import math

import torch
import torch.nn as nn

from llmbook.a4_tools import (
    check_activation_name,
    check_d_ff,
    check_d_model,
    check_ffn_input,
    check_float_tensor,
)

__all__ = [
    "relu",
    "ACTIVATIONS",
    "FeedForward",
    "gelu",
    "silu",
    "GATES",
    "GatedFeedForward",
    "make_ffn",
]


# --- a4_ffn_activations.ipynb: 1. 位置ごとの FFN
def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU: max(0, x) (A-4 §1 で導入)。x と同じ形の Tensor を返す。"""
    check_float_tensor(x)                 # 裏方: 浮動小数点の Tensor か
    return x.clamp_min(0)                 # 負の成分は 0 に、正の成分はそのまま


ACTIVATIONS = {"relu": relu}              # 名前 → 活性化関数 (§2 で GELU と SiLU を足す)


class FeedForward(nn.Module):
    """位置ごとの FFN: d_model → d_ff → d_model、間に活性化関数 (A-4 §1 で導入)。

    x: (..., d_model) → 同じ形。位置どうしは混ぜず、どの位置にも同じ 2 層のネットを当てる。
    activation は ACTIVATIONS の名前。keep_hidden=True なら活性化後の値 (..., d_ff) を
    self.hidden に残す (ニューロンの観察用)。
    """

    def __init__(self, d_model: int, d_ff: int | None = None, activation: str = "gelu", *,
                 bias: bool = True):
        super().__init__()
        check_d_model(d_model)                              # 裏方: 正の整数か
        d_ff = 4 * d_model if d_ff is None else d_ff
        check_d_ff(d_ff)
        check_activation_name(activation, list(ACTIVATIONS))
        self.d_model, self.d_ff, self.activation = d_model, d_ff, activation
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)      # 上げる: d → d_ff
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)      # 戻す: d_ff → d
        self.keep_hidden, self.hidden = False, None


def _forward(self, x: torch.Tensor) -> torch.Tensor:
    """x (..., d_model) → (..., d_model) (A-4 §1 で導入)。"""
    check_ffn_input(x, self.d_model)                    # 裏方: 浮動小数点で最後の次元が d か
    h = ACTIVATIONS[self.activation](self.fc1(x))       # φ(x W₁ + b₁): (..., d_ff)
    if self.keep_hidden:
        self.hidden = h.detach()                        # ニューロンの観察用に残す
    return self.fc2(h)                                  # (..., d)


FeedForward.forward = _forward


# --- a4_ffn_activations.ipynb: GELU と SiLU (Swish)
def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU: x Φ(x) (Φ は標準正規分布の累積分布関数) (A-4 §2 で導入)。

    approximate="tanh" なら tanh 近似。x と同じ形の Tensor を返す。
    """
    check_float_tensor(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if approximate != "none":
        raise ValueError(f'approximate は "none" か "tanh" です (受け取った値: {approximate!r})')
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))       # x · Φ(x)


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU (β = 1 の Swish): x σ(x) (A-4 §2 で導入)。x と同じ形の Tensor を返す。"""
    check_float_tensor(x)
    return x * torch.sigmoid(x)


ACTIVATIONS.update(gelu=gelu, gelu_tanh=lambda x: gelu(x, "tanh"), silu=silu)


# --- a4_ffn_activations.ipynb: ゲートつきの FFN: GLU・GEGLU・SwiGLU
GATES = {"glu": torch.sigmoid, "geglu": gelu, "swiglu": silu}   # ゲート側に通す関数


class GatedFeedForward(nn.Module):
    """ゲートつき FFN (GLU・GEGLU・SwiGLU, Shazeer 2020): (act(x W) ⊙ x V) W_2 (A-4 §2 で導入)。

    x: (..., d_model) → 同じ形。variant は GATES の名前。d_ff の既定は round(8 d_model / 3):
    行列が 3 枚になるので、幅 4d の FFN とパラメータ数をそろえる。keep_hidden は
    FeedForward と同じ。
    """

    def __init__(self, d_model: int, d_ff: int | None = None, variant: str = "swiglu", *,
                 bias: bool = False):
        super().__init__()
        check_d_model(d_model)
        d_ff = round(8 * d_model / 3) if d_ff is None else d_ff
        check_d_ff(d_ff)
        check_activation_name(variant, list(GATES))
        self.d_model, self.d_ff, self.variant = d_model, d_ff, variant
        self.w_gate = nn.Linear(d_model, d_ff, bias=bias)   # ゲート側: act(x W)
        self.w_up = nn.Linear(d_model, d_ff, bias=bias)     # 値側: x V
        self.w_down = nn.Linear(d_ff, d_model, bias=bias)   # 戻す: d_ff → d
        self.keep_hidden, self.hidden = False, None


def _forward(self, x: torch.Tensor) -> torch.Tensor:
    """x (..., d_model) → (..., d_model): (act(x W) ⊙ x V) W₂ (A-4 §2 で導入)。"""
    check_ffn_input(x, self.d_model)
    h = GATES[self.variant](self.w_gate(x)) * self.w_up(x)   # ゲート ⊙ 値: (..., d_ff)
    if self.keep_hidden:
        self.hidden = h.detach()
    return self.w_down(h)                                     # (..., d)


GatedFeedForward.forward = _forward


# --- a4_ffn_activations.ipynb: 名前から FFN を作る
def make_ffn(kind: str, d_model: int, d_ff: int | None = None) -> nn.Module:
    """名前から FFN を作る (A-4 §2 で導入)。"relu" などは FeedForward、"swiglu" などはゲートつき。

    kind は ACTIVATIONS か GATES の名前。A-2 の差し込み口には
    DecoderLM(V, make_ffn=lambda d: make_ffn("swiglu", d)) のように渡す。
    """
    check_activation_name(kind, [*ACTIVATIONS, *GATES])
    if kind in GATES:
        return GatedFeedForward(d_model, d_ff, kind)
    return FeedForward(d_model, d_ff, kind)
