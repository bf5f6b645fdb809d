"""a2_transformer_overview.ipynb の ``#| export`` セルから自動生成したモジュール。

このファイルは編集しないでください。ノートブックを直してから
``python -m llmbook.export`` を実行します (tests がずれを検出します)。
"""
import collections
import heapq
import math
import re
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook.a2_tools import (
    apply_merge,
    check_d_model_heads,
    check_ids,
    check_lm_config,
    check_mask,
    check_sequence,
    check_token_stream,
    index_pairs,
)

__all__ = [
    "trace_shapes",
    "PRETOKENIZE",
    "merge_pair",
    "train_bpe",
    "BPETokenizer",
    "sample_skipgram_batch",
    "train_skipgram",
    "nearest_tokens",
    "sinusoidal_encoding",
    "shift_rotation",
    "layer_norm",
    "causal_mask",
    "TorchSelfAttention",
    "MLP",
    "TransformerBlock",
    "DecoderLM",
    "count_parameters",
    "expected_parameters",
]


# --- a2_transformer_overview.ipynb: 1. 全体の地図
def trace_shapes(model: nn.Module, *inputs, depth: int = 2) -> list:
    """model(*inputs) を 1 回実行し、各部品の出力の形を forward フックで記録する (A-2 §1 で導入)。

    名前の階層が ``depth`` 以下のモジュール (``blocks.0`` は 2 階層目) にフックを付け、
    forward が終わった順に ``[(名前, クラス名, 出力の形), ...]`` を返す。呼ばれなかった
    モジュール (ModuleList など) は現れない。フックは最後に必ず外すので、モデルは元のまま。
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model には nn.Module を渡してください (型: {type(model).__name__})")
    records, handles = [], []

    def make_hook(name):
        def hook(module, args, out):
            out = out[0] if isinstance(out, tuple) else out
            records.append((name, type(module).__name__, tuple(out.shape)))
        return hook

    for name, module in model.named_modules():
        if name and name.count(".") < depth:
            handles.append(module.register_forward_hook(make_hook(name)))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return records


# --- a2_transformer_overview.ipynb: 2. トークン化: 文字とサブワード
#: BPE の事前分割: 句読点・かっこ・空白・改行は 1 文字で 1 かたまり、それ以外はその間の文字の並び。
PRETOKENIZE = re.compile(r"[^、。「」！？（）【】\s]+|[\s\S]")


def merge_pair(tokens: list, pair: tuple) -> list:
    """隣り合う ``pair`` を、左から順に重ならないように 1 つにつなぐ (A-2 §2 で導入)。"""
    a, b = pair
    out, j = [], 0
    while j < len(tokens):
        if j + 1 < len(tokens) and tokens[j] == a and tokens[j + 1] == b:
            out.append(a + b)
            j += 2
        else:
            out.append(tokens[j])
            j += 1
    return out


# --- a2_transformer_overview.ipynb: 小さな例で 1 ステップずつ
def train_bpe(text: str, n_merges: int) -> tuple:
    """text で BPE の結合規則を最大 ``n_merges`` 個学習する (A-2 §2 で導入。Sennrich ほか 2016)。

    戻り値は (結合した組のリスト, そのときの出現回数のリスト)。同じ回数なら文字列の順で前の組。
    2 回以上の組がなくなれば止まる。結果は素朴な BPE (結合ごとに数え直す) と同じ。"""
    if not isinstance(text, str) or not text:
        raise ValueError("BPE を訓練するテキストが空です。1 文字以上の文字列を渡してください。")
    if isinstance(n_merges, bool) or not isinstance(n_merges, int) or n_merges < 0:
        raise ValueError(f"n_merges は 0 以上の整数にしてください (受け取った値: {n_merges!r})")
    chunks = collections.Counter(PRETOKENIZE.findall(text))      # かたまり → 回数
    words, freqs = [list(w) for w in chunks], list(chunks.values())
    pairs, where = index_pairs(words, freqs)        # 組の回数と、組を含むかたまりの番号
    heap = [(-c, p) for p, c in pairs.items()]                   # 回数の多い順に取り出すヒープ
    heapq.heapify(heap)
    merges, counts = [], []
    while len(merges) < n_merges and heap:
        c, p = heapq.heappop(heap)
        if pairs.get(p, 0) != -c:
            continue                                             # 回数が変わった古い記録は捨てる
        if -c < 2:
            break
        merges.append(p)
        counts.append(-c)
        for q in apply_merge(words, freqs, where, pairs, p, merge=merge_pair):
            heapq.heappush(heap, (-pairs[q], q))                 # 回数が変わった組を入れ直す
    return merges, counts


class BPETokenizer:
    """バイトフォールバックつきの BPE トークナイザ (A-2 §2 で導入)。``train`` で作る。

    ID 0〜255 は UTF-8 の 1 バイト (訓練用テキストにない文字に使う)、次に訓練用テキストの
    文字 (文字コード順)、次に結合で作ったトークン (結合した順)。
    """

    n_bytes = 256

    def __init__(self, chars, merges: list):
        self.chars = sorted(set(chars))
        self.merges = [tuple(m) for m in merges]
        self.ranks = {p: k for k, p in enumerate(self.merges)}      # 組 → 結合の順番
        byte_names = [f"<0x{b:02X}>" for b in range(self.n_bytes)]
        self.itos = byte_names + self.chars + [a + b for a, b in self.merges]
        # 文字列 → ID。違う結合で同じ文字列ができたら (あ+あい と ああ+い)、小さい方の ID
        self.stoi = {s: i for i, s in reversed(list(enumerate(self.itos))) if i >= self.n_bytes}
        self._cache: dict = {}

    @classmethod
    def train(cls, text: str, n_merges: int) -> "BPETokenizer":
        """text で結合を学習したトークナイザ。``merge_counts`` に各結合の出現回数を持つ。"""
        merges, counts = train_bpe(text, n_merges)
        tokenizer = cls(set(text), merges)
        tokenizer.merge_counts = counts
        return tokenizer

    def truncated(self, k: int) -> "BPETokenizer":
        """最初の k 個の結合だけを使うトークナイザ (結合の数と列の長さの関係を調べるのに使う)。"""
        return type(self)(self.chars, self.merges[:k])

    @property
    def vocab_size(self) -> int:
        """語彙の大きさ (256 のバイト + 文字 + 結合で作ったトークン)。"""
        return len(self.itos)


def _encode_chunk(self, chunk: str) -> list:
    """かたまりを、結合の順が早い組からつないで ID の列にする (未知の文字はバイト)。"""
    if chunk not in self._cache:
        parts = list(chunk)
        none = len(self.merges)                                     # 「結合の規則にない」の印
        while len(parts) > 1:
            pairs = zip(parts, parts[1:])
            rank, j = min((self.ranks.get(p, none), j) for j, p in enumerate(pairs))
            if rank == none:
                break                                               # もうつなげる組がない
            parts = merge_pair(parts, self.merges[rank])
        ids = [[self.stoi[s]] if s in self.stoi else list(s.encode()) for s in parts]
        self._cache[chunk] = [i for part in ids for i in part]
    return self._cache[chunk]


def _encode(self, text: str) -> list:
    """テキストを ID の列にする (A-2 §2 で導入)。どんな文字列でもエンコードできる。"""
    if not isinstance(text, str):
        raise TypeError(f"エンコードするのは文字列 (str) です (型: {type(text).__name__})")
    return [i for chunk in PRETOKENIZE.findall(text) for i in self._encode_chunk(chunk)]


BPETokenizer._encode_chunk, BPETokenizer.encode = _encode_chunk, _encode


def _decode(self, ids) -> str:
    """ID の列を文字列に戻す (A-2 §2 で導入)。続いたバイトの ID はまとめて UTF-8 として読む。"""
    out, pending = [], bytearray()
    for i in (ids.tolist() if hasattr(ids, "tolist") else ids):
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self.itos):
            raise ValueError(f"ID {i!r} は語彙 (0〜{len(self.itos) - 1}) の範囲外です")
        if i < self.n_bytes:
            pending.append(i)                                       # バイトはためておく
        else:
            out.append(pending.decode("utf-8", errors="replace") + self.itos[i])
            pending.clear()
    return "".join(out) + pending.decode("utf-8", errors="replace")


BPETokenizer.decode = _decode


# --- a2_transformer_overview.ipynb: 文字のベクトルを学習する
def sample_skipgram_batch(ids: torch.Tensor, cdf: torch.Tensor, window: int, negatives: int,
                          batch_size: int, g: torch.Generator) -> tuple:
    """skip-gram の 1 バッチ: (中心の ID (B,), 文脈の ID (B, 1 + K)) (A-2 §3 で導入)。

    文脈の 0 列目は中心から前後 ``window`` 以内の正例、残り K 列は累積分布 ``cdf`` から選ぶ負例。
    """
    center = torch.randint(window, len(ids) - window, (batch_size,), generator=g)
    offset = torch.randint(1, window + 1, (batch_size,), generator=g)
    offset = offset * (torch.randint(0, 2, (batch_size,), generator=g) * 2 - 1)      # 前か後ろ
    u = torch.rand(batch_size, negatives, generator=g, dtype=torch.float64)
    neg = torch.searchsorted(cdf, u).clamp(max=len(cdf) - 1)                     # (B, K) 負例
    return ids[center], torch.cat([ids[center + offset, None], neg], dim=1)     # (B,), (B, 1 + K)


def train_skipgram(ids: torch.Tensor, vocab_size: int, dim: int = 32, window: int = 2,
                   negatives: int = 5, steps: int = 150, batch_size: int = 2048, lr: float = 0.03,
                   seed: int = 0) -> tuple:
    """文字の skip-gram を負例サンプリングで訓練する (A-2 §3 で導入。Mikolov ほか 2013)。

    ids: (N,) の torch.long。負例は頻度の 0.75 乗に比例して選ぶ。戻り値は (埋め込み u
    (vocab_size, dim), 損失のリスト)。乱数は ``seed`` の CPU の Generator だけから引く。
    """
    check_token_stream(ids, window)                                     # 形と長さ (裏方)
    g = torch.Generator().manual_seed(seed)
    w_in = ((torch.rand(vocab_size, dim, generator=g) - 0.5) / dim).requires_grad_()  # u: 中心
    w_out = torch.zeros(vocab_size, dim, requires_grad=True)                          # v: 周り
    freq = torch.bincount(ids, minlength=vocab_size).double() ** 0.75
    cdf = freq.cumsum(0) / freq.sum()                                   # 負例を選ぶ累積分布
    sign = torch.tensor([1.0] + [-1.0] * negatives)                     # 正例は +、負例は −
    opt, losses = torch.optim.Adam([w_in, w_out], lr=lr), []
    for _ in range(steps):
        center, ctx = sample_skipgram_batch(ids, cdf, window, negatives, batch_size, g)
        scores = (w_out[ctx] @ w_in[center, :, None]).squeeze(-1)       # (B, 1 + K) 内積
        loss = -F.logsigmoid(scores * sign).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return w_in.detach(), losses


def nearest_tokens(embeddings: torch.Tensor, index: int, k: int = 8) -> list:
    """埋め込み (V, d) で ``index`` の行とのコサイン類似度が高い順に k 個の ID (A-2 §3 で導入)。"""
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        raise ValueError("embeddings は (V, d) の 2 次元の Tensor で渡してください")
    if not 0 <= index < len(embeddings):
        raise ValueError(f"index {index} は 0〜{len(embeddings) - 1} の範囲にしてください")
    unit = F.normalize(embeddings, dim=-1)
    sim = unit @ unit[index]                                  # (V,)
    sim[index] = -float("inf")
    return sim.topk(k).indices.tolist()


# --- a2_transformer_overview.ipynb: 正弦波の位置エンコーディング
def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """正弦波の位置エンコーディングを一から作る: (n_positions, d_model) の float32 (A-2 §4 で導入)。

    PE[p, 2i] = sin(ω_i p)、PE[p, 2i+1] = cos(ω_i p)、ω_i = base^(−2i/d_model) (Vaswani ほか 2017)。
    角度は float64 で計算してから float32 にする (大きな p でも精度を保つため)。
    """
    for name, value in (("n_positions", n_positions), ("d_model", d_model)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} は 1 以上の整数にしてください (受け取った値: {value!r})")
    if d_model % 2:
        raise ValueError(f"d_model ({d_model}) は偶数にしてください (sin と cos で 2 次元ずつ使う)")
    p = torch.arange(n_positions, dtype=torch.float64)[:, None]                     # (P, 1)
    i2 = torch.arange(0, d_model, 2, dtype=torch.float64)                   # 2i = 0, 2, 4, …
    omega = base ** (-i2 / d_model)                                         # (d/2,) 各組の角速度
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(p * omega)                                              # 偶数番目の次元
    pe[:, 1::2] = torch.cos(p * omega)                                              # 奇数番目の次元
    return pe.float()


# --- a2_transformer_overview.ipynb: 位置のずれは回転
def shift_rotation(k: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """PE(p + k) = R_k PE(p) を満たす (d_model, d_model) の行列 R_k (float64) (A-2 §4 で導入)。

    組 i ごとに角度 ω_i k の 2 × 2 の回転を対角に並べたブロック対角行列で、p にはよらない。
    """
    if d_model % 2 or d_model < 2:
        raise ValueError(f"d_model ({d_model}) は 2 以上の偶数にしてください")
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    c, s = torch.cos(omega * k), torch.sin(omega * k)
    blocks = [torch.tensor([[ci, si], [-si, ci]], dtype=torch.float64) for ci, si in zip(c, s)]
    return torch.block_diag(*blocks)


# --- a2_transformer_overview.ipynb: 5. レイヤー正規化
def layer_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """最後の次元 (特徴) で標準化するレイヤー正規化を一から書く (A-2 §5 で導入。Ba ほか 2016)。

    x: (..., d)。各トークンのベクトルから平均を引き、sqrt(分散 + eps) で割ってから、
    weight (d,) を掛けて bias (d,) を足す。分散は d で割る。``nn.LayerNorm(d)`` と同じ計算。
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or not x.is_floating_point():
        raise ValueError("x は浮動小数点の Tensor (..., d) で渡してください")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (x.shape[-1],):
            raise ValueError(f"{name} の形は (d,) = ({x.shape[-1]},) にします (受け取った形: "
                             f"{tuple(p.shape)})")
    mu = x.mean(dim=-1, keepdim=True)                      # (..., 1) トークンごとの平均
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)       # (..., 1) d で割る分散
    y = (x - mu) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


# --- a2_transformer_overview.ipynb: 6. Transformer ブロック: 差し込み口つきの部品
def causal_mask(t_q: int, t_k: int | None = None) -> torch.Tensor:
    """因果マスク (t_q, t_k) の bool、True = 参照してよい (A-2 §6 で導入。A-5 で詳しく扱う)。

    クエリ t_q 個は、キー t_k 個 (既定は t_q) の最後の t_q 個と同じ位置とし、自分と前だけを見る。
    """
    t_k = t_q if t_k is None else t_k
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in (t_q, t_k)) \
            or not 1 <= t_q <= t_k:
        raise ValueError(f"1 <= t_q <= t_k の整数にしてください (受け取った値: {t_q!r}, {t_k!r})")
    return torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q)


class TorchSelfAttention(nn.Module):
    """nn.MultiheadAttention を、この本の差し込み口 attn(x, mask) に合わせて包む (A-2 §6 で導入)。

    x: (B, T, d) → (B, T, d)。mask: None か (T, T) の bool で True = 参照してよい (PyTorch と逆)。
    KV キャッシュなどの追加の引数は持たない (A-5 の自作のアテンションで扱う)。
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        check_d_model_heads(d_model, n_heads)
        self.mha = nn.MultiheadAttention(d_model, n_heads, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, **kw) -> torch.Tensor:
        if any(v is not None for v in kw.values()):
            raise TypeError(f"TorchSelfAttention は追加の引数 {sorted(kw)} を受け取れません "
                            "(KV キャッシュは A-5 の自作のアテンションで使います)")
        if mask is not None:
            check_mask(mask, x.shape[1], x.shape[1])
        attn_mask = None if mask is None else ~mask                 # PyTorch は True = 参照しない
        return self.mha(x, x, x, attn_mask=attn_mask, need_weights=False)[0]


class MLP(nn.Module):
    """位置ごとの 2 層の全結合ネット d → d_ff → d (間に GELU) (A-2 §6 で導入。A-4 で詳しく扱う)。"""

    def __init__(self, d_model: int, d_ff: int | None = None):
        super().__init__()
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.fc1, self.act, self.fc2 = nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))            # (B, T, d) → (B, T, d_ff) → (B, T, d)


class TransformerBlock(nn.Module):
    """アテンションと FFN を差し込んで使う Transformer ブロック (A-2 §6 で導入)。

    attn(x, mask, **kw) と ffn(x) は (B, T, d) → (B, T, d) の nn.Module。mask は None か
    (T, T_k) の bool (True = 参照してよい)。pre_ln=True (既定) なら x + Attn(LN(x))、False なら
    LN(x + Attn(x)) (Post-LN)。
    """

    def __init__(self, d_model: int, attn: nn.Module, ffn: nn.Module, *, pre_ln: bool = True):
        super().__init__()
        for name, part in (("attn", attn), ("ffn", ffn)):
            if not isinstance(part, nn.Module):
                raise TypeError(f"{name} には nn.Module を渡します (型: {type(part).__name__})")
        self.d_model, self.pre_ln = d_model, pre_ln
        self.ln1, self.attn = nn.LayerNorm(d_model), attn
        self.ln2, self.ffn = nn.LayerNorm(d_model), ffn

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, **attn_kw) -> torch.Tensor:
        check_sequence(x, self.d_model)
        if mask is not None:
            check_mask(mask, x.shape[1])                          # (T, T_k)、対角が True
        if self.pre_ln:                                           # attn_kw は attn へそのまま
            x = x + self.attn(self.ln1(x), mask, **attn_kw)       # アテンション: 位置どうしを混ぜる
            return x + self.ffn(self.ln2(x))                      # FFN: 位置ごとに変換する
        x = self.ln1(x + self.attn(x, mask, **attn_kw))
        return self.ln2(x + self.ffn(x))


# --- a2_transformer_overview.ipynb: 7. デコーダーのみ型の骨格
class DecoderLM(nn.Module):
    """デコーダーのみ型の言語モデルの骨格 (A-2 §7 で導入。A-3〜A-5 が部品を差し替えて使う)。

    埋め込み + 位置 → ブロック × n_layers → 最後の LayerNorm (Pre-LN のとき) → 出力層。部品は
    make_attn(d_model, n_heads)・make_ffn(d_model) が作る。causal なら mask の既定は因果マスク。"""

    def __init__(self, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 max_len: int = 128, *, positions: str = "learned", pre_ln: bool = True,
                 tie_weights: bool = True, causal: bool = True, make_attn: Callable | None = None,
                 make_ffn: Callable | None = None):
        super().__init__()
        check_lm_config(vocab_size, d_model, n_layers, n_heads, max_len, positions)   # 裏方
        self.vocab_size, self.d_model, self.max_len = vocab_size, d_model, max_len
        self.causal = causal
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model) if positions == "learned" else None
        if positions == "sinusoidal":
            self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)
        make_attn, make_ffn = make_attn or TorchSelfAttention, make_ffn or MLP
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, make_attn(d_model, n_heads), make_ffn(d_model), pre_ln=pre_ln)
            for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model) if pre_ln else nn.Identity()   # Post-LN は正規化済み
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        std = 0.02 if self.pos_emb is not None else d_model ** -0.5   # 正弦波では √d 倍して使う
        nn.init.normal_(self.tok_emb.weight, std=std)
        if self.pos_emb is not None:
            nn.init.normal_(self.pos_emb.weight, std=0.02)
        if tie_weights:
            self.head.weight = self.tok_emb.weight                    # 重み共有: 同じ Parameter


def _forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None, *, start_pos: int = 0,
             cache: list | None = None, **attn_kw) -> torch.Tensor:
    """ID (B, T) → ロジット (B, T, V) (A-2 §7 で導入)。

    mask: None か (T, T_k) の bool (True = 参照してよい)。None で causal なら因果マスク
    (T, start_pos + T)。start_pos: ids の先頭の位置。cache: ブロックごとの KV キャッシュ (A-5)。
    """
    check_ids(ids, self.max_len, start_pos)
    if cache is not None and len(cache) != len(self.blocks):
        raise ValueError(f"cache はブロックの数 ({len(self.blocks)}) と同じ長さのリストにします")
    T = ids.shape[1]
    if mask is None and self.causal:
        mask = causal_mask(T, start_pos + T).to(ids.device)
    pos = torch.arange(start_pos, start_pos + T, device=ids.device)
    h = self.tok_emb(ids)                                                 # (B, T, d)
    if self.pos_emb is not None:
        h = h + self.pos_emb(pos)                                     # (T, d) をバッチ方向に足す
    else:
        h = h * math.sqrt(self.d_model) + self.pe[pos]                # Vaswani ほかと同じく √d 倍
    for i, block in enumerate(self.blocks):
        kw = attn_kw if cache is None else {**attn_kw, "cache": cache[i]}
        h = block(h, mask, **kw)                                          # (B, T, d) のまま
    return self.head(self.ln_f(h))                                        # (B, T, V)


DecoderLM.forward = _forward


# --- a2_transformer_overview.ipynb: パラメータを数える
def count_parameters(model: "DecoderLM") -> dict:
    """DecoderLM のパラメータを部品ごとに数える (A-2 §7 で導入)。共有した重みは 1 回だけ数える。"""
    parts = dict.fromkeys(["トークンの埋め込み", "位置の埋め込み", "アテンション", "FFN",
                           "レイヤー正規化", "出力層"], 0)
    for name, p in model.named_parameters():      # 共有した重みは tok_emb の名前で 1 回だけ出る
        if name.startswith("tok_emb."):
            parts["トークンの埋め込み"] += p.numel()
        elif name.startswith("pos_emb."):
            parts["位置の埋め込み"] += p.numel()
        elif ".attn." in name:
            parts["アテンション"] += p.numel()
        elif ".ffn." in name:
            parts["FFN"] += p.numel()
        elif ".ln" in name or name.startswith("ln_f."):
            parts["レイヤー正規化"] += p.numel()
        else:
            parts["出力層"] += p.numel()
    return parts


def expected_parameters(vocab_size: int, d_model: int, n_layers: int, max_len: int, *,
                        d_ff: int | None = None, positions: str = "learned",
                        tie_weights: bool = True, pre_ln: bool = True) -> dict:
    """DecoderLM (既定の部品) のパラメータ数を、部品ごとに式から計算する (A-2 §7 で導入)。"""
    d, f = d_model, 4 * d_model if d_ff is None else d_ff
    return {"トークンの埋め込み": vocab_size * d,
            "位置の埋め込み": max_len * d if positions == "learned" else 0,
            "アテンション": n_layers * (4 * d * d + 4 * d),
            "FFN": n_layers * (2 * d * f + f + d),
            "レイヤー正規化": n_layers * 4 * d + (2 * d if pre_ln else 0),
            "出力層": 0 if tie_weights else vocab_size * d}
