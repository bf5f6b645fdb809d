"""a3_multi_head_attention.ipynb の ``#| export`` セルから自動生成したモジュール。

このファイルは編集しないでください。ノートブックを直してから
``python -m llmbook.export`` を実行します (tests がずれを検出します)。
"""
import math

import torch
import torch.nn as nn

from llmbook.a2_tools import check_d_model_heads, check_sequence
from llmbook.a3_tools import check_attn_mask, check_heads_tensor, check_qkv, check_split_input

__all__ = [
    "scaled_dot_product_attention",
    "split_heads",
    "merge_heads",
    "MultiHeadAttention",
    "copy_from_torch",
]


# --- a3_multi_head_attention.ipynb: ⑤ スケール付き内積アテンション
def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, *,
                                 scale: float | None = None) -> tuple:
    """スケール付き内積アテンション softmax(q k^T / √d_k) v (A-3 §1 で導入)。

    q: (..., T_q, d_k)、k: (..., T_k, d_k)、v: (..., T_k, d_v)。mask: None か bool の
    (..., T_q, T_k) で True = 参照してよい。scale: 既定は 1/√d_k。
    戻り値は (出力 (..., T_q, d_v), 重み (..., T_q, T_k))。
    """
    check_qkv(q, k, v)                                        # 裏方: 形と型の検査
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale                  # (..., T_q, T_k)
    if mask is not None:
        check_attn_mask(mask, q.shape[-2], k.shape[-2])
        scores = scores.masked_fill(~mask, float("-inf"))     # 参照しない所は −∞ → 重み 0
    weights = scores.softmax(dim=-1)                          # 各行 (クエリ) の和が 1
    return weights @ v, weights                               # (..., T_q, d_v), (..., T_q, T_k)


# --- a3_multi_head_attention.ipynb: 2. ヘッドに分ける
def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, d) → (B, h, T, d_k): 最後の次元を h 個のヘッドに分ける (A-3 §2 で導入)。"""
    check_split_input(x, n_heads)                     # 裏方: (B, T, d) で d が h で割り切れるか
    B, T, d = x.shape
    return x.view(B, T, n_heads, d // n_heads).transpose(1, 2)   # (B, T, h, d_k) → (B, h, T, d_k)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, d_k) → (B, T, h·d_k): split_heads の逆 (A-3 §2 で導入)。"""
    check_heads_tensor(x)
    B, h, T, d_k = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d_k)   # 連続でないので view でなく reshape


# --- a3_multi_head_attention.ipynb: 全ヘッドを 1 回のバッチの積で
class MultiHeadAttention(nn.Module):
    """自作のマルチヘッドアテンション (A-3 §2 で導入)。A-2 の差し込み口 attn(x, mask) に合う。

    x: (B, T, d) → (B, T, d)。mask: None か bool (T_q, T_k)、True = 参照してよい。kv: キーと
    バリューを作る別の列 (クロスアテンション)。keep_weights=True なら最後の重み (B, h, T_q, T_k)
    を self.weights に残す。head_gate (h,): 各ヘッドの出力に掛ける数 (0 でそのヘッドを切る)。
    """

    def __init__(self, d_model: int, n_heads: int, *, bias: bool = True):
        super().__init__()
        check_d_model_heads(d_model, n_heads)
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)     # h 個のヘッドの W_Q を横に並べたもの
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)     # 連結したヘッドを混ぜる出力の射影
        self.keep_weights, self.weights, self.head_gate = False, None, None


def _forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *,
             kv: torch.Tensor | None = None, **kw) -> torch.Tensor:
    """x (B, T_q, d) → (B, T_q, d) (A-3 §2 で導入)。kv: キーとバリューを作る列 (既定は x)。"""
    if any(v is not None for v in kw.values()):
        raise TypeError(f"MultiHeadAttention は追加の引数 {sorted(kw)} を受け取れません "
                        "(KV キャッシュは A-5 で加えます)")
    check_sequence(x, self.d_model)
    kv = x if kv is None else kv
    check_sequence(kv, self.d_model)
    q = split_heads(self.w_q(x), self.n_heads)            # (B, h, T_q, d_k)
    k = split_heads(self.w_k(kv), self.n_heads)           # (B, h, T_k, d_k)
    v = split_heads(self.w_v(kv), self.n_heads)           # (B, h, T_k, d_k)
    out, w = scaled_dot_product_attention(q, k, v, mask)  # 全ヘッドを 1 回のバッチの積で
    if self.keep_weights:
        self.weights = w.detach()                         # (B, h, T_q, T_k)
    if self.head_gate is not None:
        out = out * self.head_gate.view(1, -1, 1, 1)      # ヘッドごとに掛ける
    return self.w_o(merge_heads(out))                     # (B, T_q, d)


MultiHeadAttention.forward = _forward


# --- a3_multi_head_attention.ipynb: 3. PyTorch と同じ答えを出す
@torch.no_grad()
def copy_from_torch(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> MultiHeadAttention:
    """nn.MultiheadAttention の重みを自作の MultiHeadAttention に写す (A-3 §3 で導入)。

    PyTorch は W_Q・W_K・W_V を縦に積んだ in_proj_weight (3d, d) を 1 つ持つ。
    """
    w_q, w_k, w_v = theirs.in_proj_weight.chunk(3)             # それぞれ (d, d)
    b_q, b_k, b_v = theirs.in_proj_bias.chunk(3)
    for lin, w, b in ((ours.w_q, w_q, b_q), (ours.w_k, w_k, b_k), (ours.w_v, w_v, b_v),
                      (ours.w_o, theirs.out_proj.weight, theirs.out_proj.bias)):
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    return ours
