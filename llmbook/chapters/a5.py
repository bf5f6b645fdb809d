"""a5_causal_generation.ipynb の ``#| export`` セルから自動生成したモジュール。

このファイルは編集しないでください。ノートブックを直してから
``python -m llmbook.export`` を実行します (tests がずれを検出します)。
"""
import torch
import torch.nn.functional as F

from llmbook.a2_tools import check_sequence
from llmbook.a3_tools import check_attn_mask
from llmbook.a5_tools import (
    check_kv,
    check_logits,
    check_prompt,
    check_sampling,
    check_temperature,
    check_top_k,
    check_top_p,
)
from llmbook.chapters.a2 import DecoderLM
from llmbook.chapters.a3 import (
    MultiHeadAttention,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from llmbook.chapters.a4 import make_ffn

__all__ = [
    "gpt",
    "greedy",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "sample_next",
    "KVCache",
    "new_cache",
    "CachedMultiHeadAttention",
    "generate",
]


# --- a5_causal_generation.ipynb: 性質のテスト: 未来を変えても、過去のロジットは変わらない
def gpt(vocab_size: int, *, causal: bool = True, make_attn=MultiHeadAttention,
        **size) -> DecoderLM:
    """この本の GPT: A-2 の骨格 + A-3 のアテンション + A-4 の GELU の FFN (A-5 §1 で導入)。

    size は DecoderLM の大きさ (d_model・n_layers・n_heads・max_len・positions)。既定はこの章の
    小さなモデル: 2 層・4 ヘッド・d_model 64・文脈 32・正弦波の位置 (短い訓練でも位置の
    関係を使いやすい。A-3 §5)。causal=False でマスクを外す (§2 の実験用)。
    """
    size = {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 32,
            "positions": "sinusoidal", **size}
    return DecoderLM(vocab_size, **size, causal=causal, make_attn=make_attn,
                     make_ffn=lambda d: make_ffn("gelu", d))


# --- a5_causal_generation.ipynb: 3. 次のトークンの選び方
def greedy(logits: torch.Tensor) -> torch.Tensor:
    """貪欲法: ロジット (..., V) → いちばん大きいトークンの ID (...,) (A-5 §3 で導入)。"""
    check_logits(logits)                                     # 裏方: 浮動小数点の (..., V) か
    return logits.argmax(dim=-1)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """ロジット (..., V) を温度で割る (A-5 §3 で導入)。τ < 1 で分布が尖り、τ > 1 で平らになる。"""
    check_logits(logits)
    check_temperature(temperature)                           # 正の数か (0 以下は日本語のエラー)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """ロジット (..., V) の大きい方から k 個を残し、ほかを −∞ にする (A-5 §3 で導入)。"""
    check_logits(logits)
    check_top_k(k)                                           # 1 以上の整数か
    values, index = logits.topk(min(k, logits.shape[-1]), dim=-1)    # (..., k)
    return torch.full_like(logits, float("-inf")).scatter(-1, index, values)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """確率の高い順に、累積が p に届くまでを残し、ほかを −∞ にする (A-5 §3 で導入)。"""
    check_logits(logits)
    check_top_p(p)                                           # 0 < p <= 1 か
    if p >= 1:
        return logits                                        # すべて残す (float の和の丸めを避ける)
    probs, order = logits.softmax(-1).sort(dim=-1, descending=True)   # (..., V) 高い順
    before = probs.cumsum(-1) - probs                        # 自分より前 (高い方) の確率の和
    drop = before >= p                                       # 前だけで p に届いていれば外す
    drop = drop.scatter(-1, order, drop)                     # 元の並び (ID の順) に戻す
    return logits.masked_fill(drop, float("-inf"))           # 最も高いトークンは必ず残る


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None):
    """ロジット (..., V) から次のトークン (...,) を選ぶ (A-5 §3 で導入)。

    温度 → top-k → top-p の順に絞り、残った確率で引く。top_k=1 は貪欲法 (乱数を使わない)。
    """
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
        if top_k == 1:
            return greedy(logits)                            # 貪欲法: 乱数を使わない
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = logits.softmax(dim=-1).reshape(-1, logits.shape[-1])        # (N, V)
    return torch.multinomial(probs, 1, generator=generator).view(logits.shape[:-1])


# --- a5_causal_generation.ipynb: 4. KV キャッシュ
class KVCache:
    """1 つの層の KV キャッシュ (A-5 §4 で導入)。k, v: (B, h, T, d_k)。

    append で新しいトークンの分を時間の次元 (dim=2) の後ろに足し、たまった全部を返す。
    """

    def __init__(self):
        self.k = self.v = None

    def __len__(self) -> int:                                # たまったトークンの数
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple:
        check_kv(k, v, self.k)                               # 裏方: 形がそろっているか
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=2)           # (B, h, T_past + T, d_k)
            self.v = torch.cat([self.v, v], dim=2)
        return self.k, self.v


def new_cache(model) -> list:
    """model のブロックの数だけ、空の KVCache を並べたリスト (A-5 §4 で導入)。"""
    return [KVCache() for _ in model.blocks]


class CachedMultiHeadAttention(MultiHeadAttention):
    """KV キャッシュを使えるマルチヘッドアテンション (A-5 §4 で導入)。パラメータは A-3 と同じ。

    cache (KVCache) を渡すと、x (B, T, d) は新しいトークンだけで、mask は (T, T_past + T)。
    重みを残す・ヘッドを止める実験のときは A-3 の自作の計算、それ以外は PyTorch の融合
    カーネル F.scaled_dot_product_attention (A-3 §1 で一致を確認) で計算する。
    """

    def forward(self, x, mask=None, *, cache: KVCache | None = None, **kw):
        experiment = self.keep_weights or self.head_gate is not None
        if cache is None and (experiment or any(v is not None for v in kw.values())):
            return super().forward(x, mask, **kw)            # A-3 とまったく同じ計算
        if any(value is not None for value in kw.values()):
            raise TypeError(f"KV キャッシュと {sorted(kw)} は一緒に使えません")
        check_sequence(x, self.d_model)
        q, k, v = (split_heads(w(x), self.n_heads) for w in (self.w_q, self.w_k, self.w_v))
        if cache is not None:                                # (B, h, T, d_k): 新しい分だけ
            k, v = cache.append(k, v)                        # 足して (B, h, T_past + T, d_k)
        if mask is not None:
            check_attn_mask(mask, q.shape[-2], k.shape[-2])  # 裏方: 形と向き
        if experiment:
            out, w = scaled_dot_product_attention(q, k, v, mask)
            if self.keep_weights:
                self.weights = w.detach()                    # (B, h, T, T_past + T)
            if self.head_gate is not None:
                out = out * self.head_gate.view(1, -1, 1, 1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)   # 融合カーネル
        return self.w_o(merge_heads(out))                    # (B, T, d)


@torch.no_grad()
def generate(model, prompt_ids: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """prompt_ids (B, T0) の続きを作り、(B, T0 + max_new_tokens) を返す (A-5 §4 で導入)。

    use_cache=True なら新しいトークンだけを計算する (アテンションは CachedMultiHeadAttention)。
    文脈 max_len が満杯になったら最後の max_len 個を読み直す。選び方は sample_next と同じ。
    """
    check_prompt(prompt_ids, max_new_tokens, model.max_len)  # 裏方: 空でないか、長すぎないか
    check_sampling(temperature, top_k, top_p)
    model.eval()
    ids, cache, pos = prompt_ids, None, 0
    for _ in range(max_new_tokens):
        if not use_cache:
            logits = model(ids[:, -model.max_len:])[:, -1]            # 毎回、全部を読み直す
        elif cache is None or pos == model.max_len:                   # 最初か、文脈が満杯
            window = ids[:, -model.max_len:]
            cache, pos = new_cache(model), window.shape[1]
            logits = model(window, cache=cache)[:, -1]                # まとめて読む (プレフィル)
        else:
            logits = model(ids[:, -1:], cache=cache, start_pos=pos)[:, -1]   # 新しい 1 個だけ
            pos += 1
        nxt = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                          generator=generator)                        # (B,)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    return ids
