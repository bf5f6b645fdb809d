"""a1_language_models.ipynb の ``#| export`` セルから自動生成したモジュール。

このファイルは編集しないでください。ノートブックを直してから
``python -m llmbook.export`` を実行します (tests がずれを検出します)。
"""
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook.corpus import CharTokenizer, Corpus, CorpusError, generate_corpus, load_text
from llmbook.lm.eval import NGramEvalMixin, StreamingLMMixin
from llmbook.lm.tables import PerplexityTable
from llmbook.lm.validation import (
    as_id_array,
    check_fraction,
    check_ids_tensor,
    check_log_probs,
    check_ngram_args,
    check_positive_int,
    check_text,
    japanese_call_errors,
)
from llmbook.seed import set_seed

__all__ = [
    "cross_entropy",
    "perplexity",
    "perplexity_from_log_probs",
    "A1Data",
    "MIN_TEXT_CHARS",
    "make_a1_data",
    "load_a1_data",
    "get_batch",
    "NGramCounts",
    "ngram_stats",
    "NGramLM",
    "fit_ngrams",
    "rnn_forward_loop",
    "CharLM",
    "CharRNN",
    "TrainConfig",
    "lr_factor",
    "train_char_model",
    "A1_TRAIN",
    "make_a1_model",
    "train_a1_model",
    "CausalSelfAttention",
    "TinyAttentionLM",
    "gradient_by_distance",
    "synchronize",
    "measure_time",
    "long_range_accuracy",
    "quote_cue_effect",
    "build_a1_table",
    "a1_baselines",
]


# --- a1_language_models.ipynb: 交差エントロピーとパープレキシティ
def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """平均交差エントロピー (自然対数、単位は nat) を一から計算する (A-1 §1 で導入)。

    logits: (..., V) のスコア、targets: (...) の正解 id。戻り値はスカラーの Tensor。
    log-softmax は「最大値を引いてから exp」で計算するので、大きなロジットでもあふれない。
    """
    V = logits.shape[-1]
    logits, targets = logits.reshape(-1, V), targets.reshape(-1)       # (N, V), (N,)
    m = logits.max(dim=-1, keepdim=True).values                        # (N, 1) あふれ防止
    log_z = (logits - m).exp().sum(dim=-1).log() + m.squeeze(-1)       # (N,)  log Σ_v exp(z_v)
    log_p = logits.gather(-1, targets[:, None]).squeeze(-1) - log_z    # (N,)  log P(正解)
    return -log_p.mean()


def perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """パープレキシティ exp(平均交差エントロピー) を返す (A-1 §1 で導入)。"""
    return math.exp(cross_entropy(logits, targets).item())


def perplexity_from_log_probs(log_probs) -> float:
    """正解の対数確率 log P(x_t | 文脈) の列からパープレキシティを計算する (A-1 §1 で導入)。

    N グラムでもニューラルネットでも、「正解にどれだけの確率を置いたか」さえ分かれば同じ式で比べ
    られる。log_probs: (N,) の Tensor・ndarray・list (自然対数、どれも 0 以下)。
    """
    return math.exp(-check_log_probs(log_probs).mean().item())


# --- a1_language_models.ipynb: 3. 文字トークナイザとバッチ
@dataclass
class A1Data:
    """全章共通のデータ一式: トークナイザと、訓練用・検証用の ID 列 (A-1 §3 で導入)。

    - ``train_ids`` / ``val_ids``: (N,) の ``torch.long``。本のコーパスなら一節単位の分割
      (最後の 10% が検証用)、読者のテキストなら末尾の ``val_fraction`` が検証用。
    - ``corpus``: 本のコーパスのときだけ :class:`~llmbook.corpus.Corpus` (長距離項目を持つ)。
    """

    tokenizer: CharTokenizer
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    corpus: Corpus | None = None

    @property
    def vocab_size(self) -> int:
        """語彙の大きさ V (未知文字の ID 0 を含む)。"""
        return self.tokenizer.vocab_size

    @property
    def is_book(self) -> bool:
        """本のコーパスなら True (長距離項目を使う §9 は、本のコーパスでだけ動く)。"""
        return self.corpus is not None

    @property
    def train_eval_ids(self) -> torch.Tensor:
        """訓練用 PPL を測る部分: 訓練用テキストの先頭から、検証用と同じ文字数。"""
        return self.train_ids[: len(self.val_ids)]


#: 読者自身のテキストに求める最小の文字数 (訓練用と検証用に分けて意味のある評価をするため)。
MIN_TEXT_CHARS = 1000


def make_a1_data(text: str, *, val_fraction: float = 0.1) -> A1Data:
    """テキストを文字単位の ID にし、末尾の ``val_fraction`` を検証用にする (A-1 §3 で導入)。"""
    check_text(text, MIN_TEXT_CHARS)                     # 文字列で、短すぎないこと
    check_fraction("val_fraction", val_fraction, CorpusError)
    split = len(text) - max(1, int(len(text) * val_fraction))
    tok = CharTokenizer(text)
    return A1Data(tok, tok.encode_tensor(text[:split]), tok.encode_tensor(text[split:]))


@japanese_call_errors("本のコーパスの seed は load_a1_data(seed=1) のようにキーワードで渡します。")
def load_a1_data(path=None, *, seed: int = 0, val_fraction: float = 0.1,
                 encoding: str | None = "auto", aozora: bool | None = None) -> A1Data:
    """本のコーパス (``path=None``) か、読者のファイル ``path`` から A1Data を作る (A-1 §3 で導入)。

    ``seed`` は本のコーパスの seed、``val_fraction`` は読者のテキストの検証用の割合、
    ``encoding``・``aozora`` は :func:`~llmbook.corpus.load_text` に渡す (どれもキーワードで)。
    """
    if not (path is None or isinstance(path, (str, os.PathLike))):
        raise TypeError("load_a1_data の最初の引数はテキストファイルのパスです (本のコーパスなら"
                        "省く)。本のコーパスの seed は load_a1_data(seed=1) のようにキーワードで"
                        "渡してください。")
    if path is not None:
        text = load_text(path, encoding=encoding, aozora=aozora)
        return make_a1_data(text, val_fraction=val_fraction)
    corpus = generate_corpus(seed)
    tok = CharTokenizer(corpus.text)
    return A1Data(tok, tok.encode_tensor(corpus.train_text), tok.encode_tensor(corpus.val_text),
                  corpus)


def get_batch(ids: torch.Tensor, batch_size: int, seq_len: int,
              generator: torch.Generator | None = None, device=None) -> tuple:
    """ID 列のランダムな位置から、長さ seq_len の部分列を batch_size 本切り出す (A-1 §3 で導入)。

    戻り値は入力 ``x`` と、1 文字ずらした正解 ``y`` で、どちらも (B, T) = (batch_size, seq_len)。
    ``y[b, t]`` は ``x[b, :t+1]`` を読んだあとに当てるべき次の文字。乱数は ``generator``
    (CPU の ``torch.Generator``) からだけ引くので、同じ seed なら同じバッチが出る。
    """
    check_positive_int("batch_size", batch_size)
    check_ids_tensor(ids, check_positive_int("seq_len", seq_len))
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)   # (B,)
    chunk = ids[starts[:, None] + torch.arange(seq_len + 1)]                           # (B, T+1)
    x, y = chunk[:, :-1], chunk[:, 1:]                                                  # (B, T)
    return (x, y) if device is None else (x.to(device), y.to(device))


# --- a1_language_models.ipynb: 速く数える
class NGramCounts:
    """1〜n 文字の並びの回数を数えて持つ部分 (A-1 §4 で導入。確率にするのは :class:`NGramLM`)。"""

    def __init__(self, n: int, vocab_size: int, smoothing: str = "interp",
                 discount: float = 0.75, k: float = 0.01):
        check_ngram_args(n, vocab_size, smoothing, discount, k)
        self.n, self.vocab_size, self.smoothing = n, vocab_size, smoothing
        self.discount, self.k, self.tables = discount, k, []

    def _keys(self, ids: np.ndarray, order: int) -> np.ndarray:
        """位置 order-1 … N-1 で終わる order 文字の並びを、V 進数の 1 つの整数にする。"""
        m = max(len(ids) - order + 1, 0)
        key = np.zeros(m, dtype=np.int64)
        for j in range(order):
            key = key * self.vocab_size + ids[j:j + m]
        return key

    def fit(self, ids) -> "NGramCounts":
        """訓練用の ID 列から、1〜n 文字の並びの回数を数える。自分自身を返す。"""
        arr = as_id_array(ids, self.vocab_size)
        if len(arr) < self.n:
            raise ValueError(f"訓練用の ID 列が短すぎます ({len(arr)} < n = {self.n})。")
        self.tables = []
        for order in range(1, self.n + 1):
            grams, counts = np.unique(self._keys(arr, order), return_counts=True)  # h·w, c(h·w)
            ctx, inv = np.unique(grams // self.vocab_size, return_inverse=True)    # 文脈 h
            self.tables.append((grams, counts, ctx, np.bincount(inv, weights=counts),  # c(h)
                                np.bincount(inv)))                    # N1+(h): 続いた文字の種類
        return self


def ngram_stats(model: NGramCounts, order: int, query: np.ndarray) -> tuple:
    """order 文字の並び query (V 進数、(M,)) の c(h·w)・c(h)・N1+(h) を返す (A-1 §4 で導入)。"""
    if not model.tables:
        raise RuntimeError("先に fit(訓練用の ID 列) で回数を数えてください。")
    grams, counts, ctx, ctx_count, ctx_types = model.tables[order - 1]

    def lookup(keys, values, q):                      # ソート済みの keys から q の値 (なければ 0)
        i = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        return np.where(keys[i] == q, values[i], 0)

    h = query // model.vocab_size
    return lookup(grams, counts, query), lookup(ctx, ctx_count, h), lookup(ctx, ctx_types, h)


class NGramLM(NGramCounts, NGramEvalMixin):
    """文字 N グラム言語モデル: 数えた回数からスムージングした確率を出す (A-1 §4 で導入)。

    ``smoothing="interp"`` (既定) は補間つき絶対ディスカウント (値 ``discount``)、``"add_k"`` は
    加算スムージング (値 ``k``)。文脈は直前 n-1 文字だけで、それより前は予測に影響しない。
    """

    def _smooth(self, order: int, query: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """order 文字の並び query の確率。lower は 1 つ短い文脈 h' での確率。"""
        c_hw, c_h, n_h = ngram_stats(self, order, query)           # c(h·w), c(h), N1+(h)
        if self.smoothing == "add_k":
            return (c_hw + self.k) / (c_h + self.k * self.vocab_size)
        D = self.discount
        mixed = (np.maximum(c_hw - D, 0.0) + D * n_h * lower) / np.maximum(c_h, 1)
        return np.where(c_h > 0, mixed, lower)                     # h を見ていなければ P_{n-1}

    def token_probs(self, ids) -> np.ndarray:
        """各位置 t の P(ids[t] | 直前 n-1 文字): (N,)。先頭の文脈が足りない位置は短い文脈で。"""
        arr = as_id_array(ids, self.vocab_size)
        p = np.full(len(arr), 1.0 / self.vocab_size)               # いちばん下の段: 一様分布
        for order in range(1, min(self.n, len(arr)) + 1):
            p[order - 1:] = self._smooth(order, self._keys(arr, order), p[order - 1:])
        return p

    def next_token_probs(self, context) -> np.ndarray:
        """文脈 (ID の列) の次に来る文字の確率分布: (V,)。使うのは最後の n-1 文字だけ。"""
        ctx = [int(c) for c in context][-(self.n - 1):] if self.n > 1 else []
        V, h = self.vocab_size, 0                                  # h: 直前 order-1 文字 (V 進数)
        p = np.full(V, 1.0 / V)                                    # いちばん下の段: 一様分布
        for order in range(1, len(ctx) + 2):
            p = self._smooth(order, h * V + np.arange(V, dtype=np.int64), p)
            if order <= len(ctx):
                h += ctx[-order] * V ** (order - 1)                # 文脈を 1 文字前へ伸ばす
        return p


def fit_ngrams(train_ids, vocab_size: int, orders=range(1, 6), **options) -> dict:
    """n = orders のそれぞれの NGramLM を数える (A-1 §4 で導入)。戻り値は {n: モデル}。"""
    return {n: NGramLM(n, vocab_size, **options).fit(train_ids) for n in orders}


# --- a1_language_models.ipynb: 5. RNN と LSTM
def rnn_forward_loop(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
                     b_ih: torch.Tensor, b_hh: torch.Tensor,
                     h0: torch.Tensor | None = None) -> tuple:
    """単純な RNN (tanh) の forward を、時刻のループで一から計算する (A-1 §5 で導入)。

    x: (B, T, E)、w_ih: (H, E)、w_hh: (H, H)、b_ih・b_hh: (H,)、h0: (B, H) または None (ゼロ)。
    戻り値は全時刻の隠れ状態 (B, T, H) と最後の隠れ状態 (B, H)。nn.RNN(batch_first=True) と同じ。
    """
    B, T, _ = x.shape
    h = x.new_zeros(B, w_hh.shape[0]) if h0 is None else h0     # (B, H)
    xs = x @ w_ih.T + b_ih                                      # (B, T, H) 入力側はまとめて計算
    outs = []
    for t in range(T):                                          # 逐次: h_t には h_{t-1} が要る
        h = torch.tanh(xs[:, t] + h @ w_hh.T + b_hh)            # (B, H)
        outs.append(h)
    return torch.stack(outs, dim=1), h


class CharLM(StreamingLMMixin, nn.Module):
    """この章の文字単位のニューラル言語モデルに共通の形 (A-1 §5 で導入)。

    サブクラスは ``embed`` (nn.Embedding)、``features`` (埋め込み (B, T, E) → 特徴 (B, T, H))、
    ``head`` (nn.Linear(H, V)) を持つ。``context_len`` は一度に見られる文字数 (None なら制限なし)。
    評価 (``token_log_probs``)・予測 (``predict_at``)・生成 (``generate``) は StreamingLMMixin。
    """

    context_len: int | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """埋め込み済みの入力 (B, T, E) → ロジット (B, T, V) (§7 の勾配の測定に使う)。"""
        return self.head(self.features(x))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ID (B, T) → ロジット (B, T, V)。位置 t のロジットは ids[:, t+1] の予測。"""
        return self.forward_embeddings(self.embed(ids))


class CharRNN(CharLM):
    """文字単位の RNN / LSTM 言語モデル: 埋め込み → nn.RNN か nn.LSTM → 出力層 (A-1 §5 で導入)。

    ``forget_bias`` を与えると、LSTM の忘却ゲートのバイアス b_f をその値にする (PyTorch の既定は
    0 の近く、つまり f ≈ 0.5。Gers ほか 2000、Jozefowicz ほか 2015 は 1 を勧めた)。
    """

    def __init__(self, vocab_size: int, emb_dim: int = 64, hidden_size: int = 128,
                 cell: str = "rnn", forget_bias: float | None = None):
        super().__init__()
        if cell not in ("rnn", "lstm"):
            raise ValueError(f"cell は 'rnn' か 'lstm' です (受け取った値: {cell!r})。")
        if forget_bias is not None and cell != "lstm":
            raise ValueError("forget_bias は LSTM (cell='lstm') のときだけ指定できます。")
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, emb_dim)
        self.rnn = (nn.RNN if cell == "rnn" else nn.LSTM)(emb_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)
        if forget_bias is not None:
            H = hidden_size          # PyTorch の LSTM のゲートの並び: 入力 i, 忘却 f, g, 出力 o
            with torch.no_grad():
                self.rnn.bias_ih_l0[H:2 * H].fill_(forget_bias)
                self.rnn.bias_hh_l0[H:2 * H].zero_()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]                                      # (B, T, E) → (B, T, H)


@dataclass(frozen=True)
class TrainConfig:
    """訓練ループの設定 (A-1 §5 で導入)。"""

    steps: int = 200
    batch_size: int = 16
    seq_len: int = 64      # 1 本の訓練例の長さ (モデルが一度に読む文字数)
    lr: float = 1e-2
    warmup: int = 20
    clip: float = 1.0
    seed: int = 0          # バッチの取り出し順を決める seed


def lr_factor(step: int, config: TrainConfig) -> float:
    """ステップ step (0 から) の学習率の倍率 (A-1 §5 で導入)。

    最初の ``warmup`` ステップで 1/warmup から 1 まで上げ、そこから最後のステップで 0.1 に
    なるまで直線的に下げる。いちばん大きい値はちょうど 1 (学習率 = lr)。
    """
    if step < config.warmup:
        return (step + 1) / config.warmup
    return 1.0 - 0.9 * (step - config.warmup + 1) / (config.steps - config.warmup)


def train_char_model(model: nn.Module, train_ids: torch.Tensor, config: TrainConfig,
                     on_step=None) -> list:
    """次の文字の交差エントロピーを AdamW で下げる、最小限の訓練ループ (A-1 §5 で導入)。

    model は ID (B, T) → ロジット (B, T, V)。戻り値は各ステップの損失のリスト。バッチは
    ``config.seed`` の CPU 乱数だけで決まるので、同じ初期値・同じデバイスなら同じ結果になる。
    on_step があれば、各ステップのあとに on_step(ステップ数, 損失) を呼ぶ (A-5 の進捗バー)。
    """
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config))
    model.train()
    losses = []
    for _ in range(config.steps):
        x, y = get_batch(train_ids, config.batch_size, config.seq_len, g, device)   # (B, T)
        logits = model(x)                                                            # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)       # 勾配クリッピング
        opt.step()
        sched.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(len(losses), losses[-1])
    model.eval()
    return losses


#: この章の 3 つのニューラルモデルの訓練設定 (§5・§6)。章全体を 1 分以内で動かすための
#: 短い訓練で、学習率はいくつか試して損失がよく下がった値。自己注意モデルは下がり方が
#: 遅いので 300 ステップ。
A1_TRAIN = {"RNN": TrainConfig(lr=2e-2), "LSTM": TrainConfig(lr=3e-2),
            "Attention-1L": TrainConfig(steps=300, lr=1.3e-2)}


def make_a1_model(kind: str, vocab_size: int, **options) -> CharLM:
    """この章のニューラルモデルを作る (A-1 §5 で導入)。kind は ``A1_TRAIN`` のキー。

    自己注意モデルの窓の長さは訓練の ``seq_len`` にそろえる。options (LSTM の ``forget_bias``
    など) はモデルのクラスにそのまま渡す。
    """
    if kind in ("RNN", "LSTM"):
        return CharRNN(vocab_size, emb_dim=64, hidden_size=128, cell=kind.lower(), **options)
    if kind == "Attention-1L":
        return TinyAttentionLM(vocab_size, d_model=128, n_heads=4,
                               max_len=A1_TRAIN[kind].seq_len, **options)   # §6 で定義
    raise ValueError(f"kind は {list(A1_TRAIN)} のどれかです (受け取った値: {kind!r})。")


def train_a1_model(kind: str, data: A1Data, device=None, seed: int = 0, **options) -> tuple:
    """seed で作ったモデルを A1_TRAIN[kind] で訓練し、(モデル, 損失) を返す (A-1 §5 で導入)。

    device を省くと CPU (章で assert した数値は CPU で訓練した結果なので、同じ数値を再現するため)。
    """
    set_seed(seed)
    model = make_a1_model(kind, data.vocab_size, **options).to(device or "cpu")
    return model, train_char_model(model, data.train_ids, A1_TRAIN[kind])


# --- a1_language_models.ipynb: 6. 小さな自己注意モデル
class CausalSelfAttention(nn.Module):
    """因果マスクつきのマルチヘッド自己注意を式どおりに書いたもの (A-1 §6 で導入。詳しくは A-3)。"""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) は n_heads ({n_heads}) で割り切れる数に"
                             "してください。")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)     # Q, K, V をまとめて作る
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        """x: (B, T, d) → (B, T, d)。return_weights なら重み (B, heads, T, T) も返す。"""
        B, T, D = x.shape
        d_k = D // self.n_heads
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, d_k)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                                   # 各 (B, h, T, d_k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)                      # (B, h, T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()      # s ≤ t だけ True
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)  # 各行の和は 1
        y = self.out((weights @ v).transpose(1, 2).reshape(B, T, D))           # (B, T, d)
        return (y, weights) if return_weights else y


class TinyAttentionLM(CharLM):
    """自己注意 1 層の文字言語モデル (Transformer のブロック 1 つ分、A-1 §6 で導入)。

    埋め込み + 位置の埋め込み → [LN → 因果的自己注意 → 残差] → [LN → FFN → 残差] → LN → 出力層。
    一度に見られるのは直前 ``max_len`` 文字まで。
    """

    def __init__(self, vocab_size: int, d_model: int = 128, n_heads: int = 4, max_len: int = 64):
        super().__init__()
        self.context_len = max_len
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.ln1, self.ln2, self.ln_f = (nn.LayerNorm(d_model) for _ in range(3))
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model))
        self.head = nn.Linear(d_model, vocab_size)

    def features(self, x: torch.Tensor, return_weights: bool = False):
        T = x.shape[1]
        if T > self.context_len:
            raise ValueError(f"このモデルが一度に見られるのは {self.context_len} 文字までです"
                             f" (入力の長さ: {T})。")
        h = x + self.pos(torch.arange(T, device=x.device))        # (B, T, d)
        a, weights = self.attn(self.ln1(h), return_weights=True)
        h = h + a
        h = self.ln_f(h + self.ffn(self.ln2(h)))
        return (h, weights) if return_weights else h

    @torch.no_grad()
    def attention_weights(self, ids: torch.Tensor) -> torch.Tensor:
        """ID (B, T) を読んだときのアテンションの重み (B, heads, T, T)。"""
        return self.features(self.embed(ids.to(self._device())), return_weights=True)[1]


# --- a1_language_models.ipynb: 7. 勾配消失を測る
def gradient_by_distance(model: CharLM, chunk: torch.Tensor) -> torch.Tensor:
    """最後の位置の損失から、k 文字前の入力の埋め込みへの勾配のノルムを測る (A-1 §7 で導入)。

    chunk: (B, T+1) の ID。入力は chunk[:, :T]、当てるのは chunk[:, T] (最後の位置の次の文字)。
    戻り値: (T,) の Tensor (CPU)。要素 k は ‖∂ℓ / ∂e_{T-1-k}‖ のバッチ平均 (k = 0 は最後の入力)。
    """
    chunk = chunk.to(model._device())
    x, target = chunk[:, :-1], chunk[:, -1]
    e = model.embed(x).detach().requires_grad_(True)                 # (B, T, E) 勾配を測りたい入力
    logits = model.forward_embeddings(e)                             # (B, T, V)
    loss = F.cross_entropy(logits[:, -1], target, reduction="sum")   # 各系列の最後の位置の損失
    (grad,) = torch.autograd.grad(loss, e)                           # (B, T, E) .grad は汚さない
    return grad.norm(dim=-1).mean(0).flip(0).cpu()                   # (T,) k = 0, 1, …, T-1


# --- a1_language_models.ipynb: 8. 逐次計算と並列計算
def synchronize(device) -> None:
    """GPU の非同期な計算が終わるまで待つ (CPU では何もしない。A-1 §8 で導入)。"""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_time(fn: Callable[[], object], device, repeats: int = 5, warmup: int = 2) -> float:
    """fn() の実行時間 (秒) を repeats 回測り、中央値を返す (A-1 §8 で導入)。

    ほかの処理の割り込みで遅くなった回に引きずられないよう、平均ではなく中央値を使う。
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


# --- a1_language_models.ipynb: 9. 長距離の手がかりを当てられるか
def long_range_accuracy(model, ids: torch.Tensor, items: Sequence, tokenizer) -> dict:
    """長距離項目の種類ごとに (正解数, 総数) を返す (A-1 §9 で導入)。

    model は ``predict_at(ids, positions)`` を持つもの (NGramLM・CharLM)。判定は、項目の位置で
    いちばん確率の高い次の文字が ``target`` の最初の 1 文字と一致するか。
    """
    out = {}
    for kind in sorted({it.kind for it in items}):
        chosen = [it for it in items if it.kind == kind]
        targets = torch.tensor([tokenizer.encode(it.target[0])[0] for it in chosen])
        preds = model.predict_at(ids, [it.position for it in chosen])
        out[kind] = (int((preds == targets).sum()), len(chosen))
    return out


def quote_cue_effect(model, ids: torch.Tensor, items: Sequence, tokenizer,
                     window: int = 64) -> dict:
    """閉じかっこの予測が、開きかっこ 「 にどれだけ頼っているかを測る (A-1 §9 で導入)。

    各閉じかっこで、直前 ``window`` 文字 (元の文脈) と、そこから対応する 「 だけを除いて
    1 文字前から読み始めた文脈で、次が 」 である確率を比べる。
    戻り値は {"with": (n,), "without": (n,)} の確率。
    """
    close = tokenizer.encode("」")[0]
    orig, cut = [], []
    for it in items:
        if it.kind != "quote_close" or it.distance >= window or it.position < window + 1:
            continue
        p, o = it.position, it.position - it.distance                 # 」 と 「 の位置
        orig.append(ids[p - window:p])
        cut.append(torch.cat([ids[p - window - 1:o], ids[o + 1:p]]))  # 「 を除いた同じ長さの文脈
    orig, cut = torch.stack(orig), torch.stack(cut)                   # (n, window)
    return {"with": model.next_probs(orig)[:, close], "without": model.next_probs(cut)[:, close]}


# --- a1_language_models.ipynb: 10. パープレキシティの表
def build_a1_table(data: A1Data, ngrams: dict, neural: dict) -> PerplexityTable:
    """A-1 のモデルたちの表を作る: 一様分布、N グラム (補間)、ニューラルモデル (A-1 §10 で導入)。

    ngrams は {n: NGramLM}、neural は {"RNN": CharLM, ...}。訓練用 PPL は data.train_eval_ids で。
    """
    table = PerplexityTable()
    V = float(data.vocab_size)
    table.add("uniform", V, train_ppl=V, params=0, context="なし (一様分布)")
    for n, model in sorted(ngrams.items()):
        table.add(f"{n}-gram", model.perplexity(data.val_ids), train_ppl=model.perplexity(
            data.train_eval_ids), params=model.n_entries, context=f"直前 {n - 1} 文字")
    for kind, model in neural.items():
        ppl = {split: perplexity_from_log_probs(model.token_log_probs(ids))
               for split, ids in (("val", data.val_ids), ("train", data.train_eval_ids))}
        context = ("原理上は無制限 (隠れ状態)" if model.context_len is None
                   else f"直前 {model.context_len} 文字")
        table.add(kind, ppl["val"], train_ppl=ppl["train"],
                  params=sum(p.numel() for p in model.parameters()), context=context)
    return table


_BASELINES: dict = {}


def a1_baselines(seed: int = 0, device=None, include_neural: bool = True) -> PerplexityTable:
    """A-1 の表を最初から計算し直す (A-1 §10 で導入)。後の章がコードを写さずに比較に使う。

    データ・N グラム (n = 1〜5、補間)・ニューラルモデル (``A1_TRAIN`` と ``train_a1_model``) は
    A-1 のノートブックと同じ手順なので、同じデバイス (既定は CPU) なら同じ数値になる。
    ``include_neural=False`` なら N グラムまで (数秒)。同じプロセスで同じ引数なら計算し直さず、
    表の複製を返す (行を足しても、次に返す表は変わらない)。
    """
    key = (seed, str(device or "cpu"), include_neural, tuple(A1_TRAIN.items()))
    if key not in _BASELINES:
        data = load_a1_data(seed=seed)
        ngrams = fit_ngrams(data.train_ids, data.vocab_size)
        neural = {kind: train_a1_model(kind, data, device)[0] for kind in A1_TRAIN} \
            if include_neural else {}
        _BASELINES[key] = build_a1_table(data, ngrams, neural)
    return _BASELINES[key].copy()
