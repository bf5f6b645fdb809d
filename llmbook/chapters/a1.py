"""a1_language_models.ipynb の ``#| export`` セルから自動生成したモジュール。

このファイルは編集しないでください。ノートブックを直してから
``python -m llmbook.export`` を実行します (tests がずれを検出します)。
"""
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook.corpus import CharTokenizer, Corpus, CorpusError, generate_corpus, load_text
from llmbook.seed import set_seed

__all__ = [
    "cross_entropy",
    "perplexity",
    "perplexity_from_log_probs",
    "MIN_TEXT_CHARS",
    "A1Data",
    "make_a1_data",
    "load_a1_data",
    "get_batch",
    "NGramLM",
    "fit_ngrams",
    "rnn_forward_loop",
    "CharLM",
    "CharRNN",
    "TrainConfig",
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
    "PerplexityRow",
    "PerplexityTable",
    "build_a1_table",
    "a1_baselines",
]


# --- a1_language_models.ipynb: 交差エントロピーとパープレキシティ
def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """平均交差エントロピー (自然対数、単位は nat) を一から計算する (A-1 §1 で導入)。

    logits: (..., V) のスコア、targets: (...) の正解 id。戻り値はスカラーの Tensor。
    log-softmax は「最大値を引いてから exp」で計算するので、大きなロジットでもあふれない。
    ``F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))`` と同じ値になる。
    """
    V = logits.shape[-1]
    logits = logits.reshape(-1, V)                                     # (N, V)
    targets = targets.reshape(-1)                                      # (N,)
    m = logits.max(dim=-1, keepdim=True).values                        # (N, 1) exp があふれないように
    log_z = (logits - m).exp().sum(dim=-1).log() + m.squeeze(-1)       # (N,)  log Σ_v exp(z_v)
    log_p = logits.gather(-1, targets[:, None]).squeeze(-1) - log_z    # (N,)  log P(正解)
    return -log_p.mean()


def perplexity(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """パープレキシティ exp(平均交差エントロピー) を返す (A-1 §1 で導入)。"""
    return math.exp(cross_entropy(logits, targets).item())


def perplexity_from_log_probs(log_probs) -> float:
    """各位置の正解の対数確率 log P(x_t | 文脈) の列からパープレキシティを計算する (A-1 §1 で導入)。

    N グラムでもニューラルネットでも、「正解にどれだけの確率を置いたか」さえ分かれば同じ式で比べられる。
    log_probs: (N,) の Tensor・ndarray・list (自然対数、どれも 0 以下)。
    """
    lp = torch.as_tensor(log_probs, dtype=torch.float64)
    if lp.ndim != 1 or lp.numel() == 0:
        raise ValueError(f"対数確率は空でない 1 次元の列で渡してください (受け取った形: {tuple(lp.shape)})")
    if torch.isnan(lp).any() or (lp > 1e-9).any():
        raise ValueError("対数確率は 0 以下の数のはずです (確率そのものや、符号を反転した損失を渡していませんか?)")
    return math.exp(-lp.mean().item())


# --- a1_language_models.ipynb: 3. 文字トークナイザとバッチ
#: 読者自身のテキストに求める最小の文字数 (これより短いと、学習用と検証用に分けても意味のある評価にならない)。
MIN_TEXT_CHARS = 1000


@dataclass
class A1Data:
    """全章共通の学習データ一式: トークナイザと、学習用・検証用の ID 列 (A-1 §3 で導入)。

    - ``train_ids`` / ``val_ids``: (N,) の ``torch.long``。本のコーパスなら passage 単位の分割
      (最後の 10% が検証用)、読者のテキストなら末尾の ``val_fraction`` が検証用。
    - ``corpus``: 本のコーパスのときだけ :class:`~llmbook.corpus.Corpus` (長距離項目を持つ)。
    """

    tokenizer: CharTokenizer
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    corpus: Optional[Corpus] = None

    @property
    def vocab_size(self) -> int:
        """語彙の大きさ V (未知文字の ID 0 を含む)。"""
        return self.tokenizer.vocab_size

    @property
    def train_eval_ids(self) -> torch.Tensor:
        """学習用 PPL を測る部分: 学習用テキストの先頭から、検証用と同じ文字数。"""
        return self.train_ids[: len(self.val_ids)]


def make_a1_data(text: str, *, val_fraction: float = 0.1) -> A1Data:
    """任意のテキストを 1 文字 1 トークンで ID にし、末尾の ``val_fraction`` を検証用に分ける (A-1 §3 で導入)。"""
    if not isinstance(text, str):
        raise CorpusError(f"テキストは文字列 (str) で渡してください (受け取った型: {type(text).__name__})。")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise CorpusError(f"val_fraction は 0 より大きく 1 より小さい数にしてください (受け取った値: {val_fraction!r})。")
    if len(text) < MIN_TEXT_CHARS:
        raise CorpusError(
            f"テキストが短すぎます ({len(text):,} 文字)。学習用と検証用に分けるには、少なくとも "
            f"{MIN_TEXT_CHARS:,} 文字必要です。")
    split = len(text) - max(1, int(len(text) * val_fraction))
    tok = CharTokenizer(text)
    return A1Data(tok, tok.encode_tensor(text[:split]), tok.encode_tensor(text[split:]))


def load_a1_data(seed: int = 0, path=None, *, val_fraction: float = 0.1, **load_kwargs) -> A1Data:
    """この本のコーパス、または読者のテキストファイルから学習データを作る (A-1 §3 で導入)。

    ``path`` を省くと :func:`~llmbook.corpus.generate_corpus` で本のコーパス (``seed``) を作る。
    ``path`` を渡すと :func:`~llmbook.corpus.load_text` で読み (``load_kwargs`` の ``encoding`` や
    ``aozora`` はそのまま渡す)、:func:`make_a1_data` で分ける。読めないファイルや短すぎるテキストは、
    日本語のメッセージ付きの ``CorpusError`` になる。
    """
    if path is not None:
        return make_a1_data(load_text(path, **load_kwargs), val_fraction=val_fraction)
    corpus = generate_corpus(seed)
    tok = CharTokenizer(corpus.text)
    return A1Data(tok, tok.encode_tensor(corpus.train_text), tok.encode_tensor(corpus.val_text), corpus)


def get_batch(ids: torch.Tensor, batch_size: int, seq_len: int, generator: Optional[torch.Generator] = None,
              device=None) -> tuple:
    """ID 列のランダムな位置から、長さ ``seq_len`` の部分列を ``batch_size`` 本切り出す (A-1 §3 で導入)。

    戻り値は入力 ``x`` と、1 文字ずらした正解 ``y`` で、どちらも (B, T) = (batch_size, seq_len)。
    ``y[b, t]`` は ``x[b, :t+1]`` を読んだあとに当てるべき次の文字。乱数は ``generator``
    (CPU の ``torch.Generator``) からだけ引くので、同じ seed なら同じバッチが出る。
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or ids.dtype != torch.long:
        raise ValueError("ids は 1 次元の torch.long の Tensor で渡してください (CharTokenizer.encode_tensor の戻り値など)。")
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} は 1 以上の整数にしてください (受け取った値: {value!r})。")
    if len(ids) < seq_len + 1:
        raise ValueError(f"ID 列 ({len(ids)} 文字) が短すぎます。seq_len = {seq_len} なら少なくとも {seq_len + 1} 文字必要です。")
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)   # (B,)
    chunk = ids[starts[:, None] + torch.arange(seq_len + 1)]                           # (B, T + 1)
    x, y = chunk[:, :-1], chunk[:, 1:]                                                  # (B, T), (B, T)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


# --- a1_language_models.ipynb: 4. N グラム言語モデル
def _as_id_array(ids, vocab_size: int) -> np.ndarray:
    """ID の列 (Tensor・list・ndarray) を検証して int64 の 1 次元 ndarray にする。"""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"ID の列は整数の 1 次元の列で渡してください (受け取った形: {arr.shape}, 型: {arr.dtype})")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"ID は 0 以上 vocab_size ({vocab_size}) 未満にしてください")
    return arr


class NGramLM:
    """文字 N グラム言語モデル (A-1 §4 で導入)。

    ``smoothing="interp"`` (既定) は補間つき絶対ディスカウント (値 ``discount``)、``"add_k"`` は
    加算スムージング (値 ``k``)。``fit`` で学習用の ID 列から 1〜n 文字の並びを数える。
    文脈は直前の ``n - 1`` 文字だけで、それより前の文字は予測にまったく影響しない。
    """

    def __init__(self, n: int, vocab_size: int, smoothing: str = "interp", discount: float = 0.75, k: float = 0.01):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n は 1 以上の整数にしてください (受け取った値: {n!r})")
        if smoothing not in ("interp", "add_k"):
            raise ValueError(f"smoothing は 'interp' か 'add_k' です (受け取った値: {smoothing!r})")
        if not 0 < discount < 1 or not k > 0:
            raise ValueError("discount は 0 と 1 のあいだ、k は正の数にしてください")
        if vocab_size ** n >= 2 ** 62:
            raise ValueError(f"vocab_size ** n が大きすぎて 64 ビット整数に収まりません (n = {n})")
        self.n, self.vocab_size, self.smoothing, self.discount, self.k = n, vocab_size, smoothing, discount, k
        self.tables: list = []

    def __repr__(self) -> str:
        return f"NGramLM(n={self.n}, vocab_size={self.vocab_size}, smoothing={self.smoothing!r})"

    def _keys(self, ids: np.ndarray, order: int) -> np.ndarray:
        """位置 t = order-1 … N-1 で終わる order 文字の並びを、V 進数の 1 つの整数にする。"""
        m = len(ids) - order + 1
        key = np.zeros(max(m, 0), dtype=np.int64)
        for j in range(order):
            key = key * self.vocab_size + ids[j:j + max(m, 0)]
        return key

    def fit(self, ids) -> "NGramLM":
        """学習用の ID 列から、1〜n 文字の並びの回数を数える。自分自身を返す。"""
        arr = _as_id_array(ids, self.vocab_size)
        if len(arr) < self.n:
            raise ValueError(f"学習用の ID 列が短すぎます ({len(arr)} < n = {self.n})")
        self.tables = []
        for order in range(1, self.n + 1):
            grams, counts = np.unique(self._keys(arr, order), return_counts=True)   # 並び h·w とその回数 c(h·w)
            ctx, inv = np.unique(grams // self.vocab_size, return_inverse=True)     # 文脈 h (最後の 1 文字を除く)
            ctx_count = np.bincount(inv, weights=counts)                            # c(h)
            ctx_types = np.bincount(inv)                                            # N_{1+}(h): 続いた文字の種類
            self.tables.append((grams, counts, ctx, ctx_count, ctx_types))
        return self

    @property
    def n_entries(self) -> int:
        """保存している並びの数 (1〜n 文字の、異なる並びの合計)。モデルの「大きさ」の目安。"""
        return int(sum(len(t[0]) for t in self.tables))

    @staticmethod
    def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
        i = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(keys[i] == query, values[i], 0)

    def _smooth(self, order: int, query: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """order 文字の並び query (V 進数) の確率。lower は 1 つ短い文脈での確率。"""
        if not self.tables:
            raise RuntimeError("先に fit(学習用の ID 列) で回数を数えてください")
        grams, counts, ctx, ctx_count, ctx_types = self.tables[order - 1]
        h = query // self.vocab_size
        c_hw = self._lookup(grams, counts, query)            # c(h·w)
        c_h = self._lookup(ctx, ctx_count, h)                # c(h)
        if self.smoothing == "add_k":
            return (c_hw + self.k) / (c_h + self.k * self.vocab_size)
        n_h = self._lookup(ctx, ctx_types, h)                # N_{1+}(h)
        D = self.discount
        mixed = (np.maximum(c_hw - D, 0.0) + D * n_h * lower) / np.maximum(c_h, 1)
        return np.where(c_h > 0, mixed, lower)

    def token_probs(self, ids) -> np.ndarray:
        """各位置 t の P(ids[t] | 直前 n-1 文字) を返す: (N,)。先頭の文脈が足りない位置は短い文脈で計算する。"""
        arr = _as_id_array(ids, self.vocab_size)
        p = np.full(len(arr), 1.0 / self.vocab_size)
        for order in range(1, min(self.n, len(arr)) + 1):
            p[order - 1:] = self._smooth(order, self._keys(arr, order), p[order - 1:])
        return p

    def token_log_probs(self, ids) -> torch.Tensor:
        """2 文字目から最後までの log P(ids[t] | 文脈): (N-1,) の float64 (ニューラルモデルと同じ約束)。"""
        return torch.from_numpy(np.log(self.token_probs(ids)[1:]))

    def perplexity(self, ids) -> float:
        """ID 列のパープレキシティ (2 文字目から最後までの平均)。"""
        return perplexity_from_log_probs(self.token_log_probs(ids))

    def next_token_probs(self, context: Sequence[int]) -> np.ndarray:
        """文脈 (ID の列) の次に来る文字の確率分布: (V,)。使うのは最後の n-1 文字だけ。"""
        ctx = [int(c) for c in context][-(self.n - 1):] if self.n > 1 else []
        V = self.vocab_size
        cand = np.arange(V, dtype=np.int64)
        p = np.full(V, 1.0 / V)
        for order in range(1, len(ctx) + 2):
            h = 0
            for c in ctx[len(ctx) - (order - 1):] if order > 1 else []:
                h = h * V + c
            p = self._smooth(order, h * V + cand, p)
        return p

    def next_probs(self, windows: torch.Tensor) -> torch.Tensor:
        """文脈の窓 (B, W) それぞれについて、次の文字の確率分布を返す: (B, V) の float64。"""
        return torch.from_numpy(np.stack([self.next_token_probs(w.tolist()) for w in windows]))

    def predict_at(self, ids, positions: Sequence[int]) -> torch.Tensor:
        """各位置 p について、ids[:p] から予測した「いちばん確率の高い次の文字」: (len(positions),)。"""
        arr = [int(i) for i in _as_id_array(ids, self.vocab_size)]
        return torch.tensor([int(self.next_token_probs(arr[max(0, p - self.n + 1):p]).argmax()) for p in positions],
                            dtype=torch.long)

    def unseen_rates(self, ids) -> tuple:
        """ids の中の n 文字の並びのうち、(文脈が, 並び全体が) 学習用に一度も現れなかった割合。"""
        arr = _as_id_array(ids, self.vocab_size)
        grams, _, ctx, _, _ = self.tables[self.n - 1]
        q = self._keys(arr, self.n)
        ctx_unseen = 0.0 if self.n == 1 else float(1 - np.isin(q // self.vocab_size, ctx).mean())
        return ctx_unseen, float(1 - np.isin(q, grams).mean())

    def generate(self, prompt: Sequence[int], length: int, seed: int = 0) -> list:
        """prompt の続きを、確率分布からのサンプリングで length 文字作る (numpy の seed で決まる)。"""
        rng = np.random.default_rng(seed)
        out = [int(i) for i in prompt]
        for _ in range(length):
            p = self.next_token_probs(out)
            out.append(int(rng.choice(self.vocab_size, p=p / p.sum())))
        return out


def fit_ngrams(train_ids, vocab_size: int, orders: Iterable[int] = range(1, 6), **kwargs) -> dict:
    """n = orders のそれぞれについて NGramLM を作って数える (A-1 §4 で導入)。戻り値は {n: モデル}。"""
    return {n: NGramLM(n, vocab_size, **kwargs).fit(train_ids) for n in orders}


# --- a1_language_models.ipynb: 5. RNN と LSTM
def rnn_forward_loop(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor,
                     h0: Optional[torch.Tensor] = None) -> tuple:
    """単純な RNN (tanh) の forward を、時刻のループで一から計算する (A-1 §5 で導入)。

    x: (B, T, E)、w_ih: (H, E)、w_hh: (H, H)、b_ih・b_hh: (H,)、h0: (B, H) または None (ゼロ)。
    戻り値は全時刻の隠れ状態 (B, T, H) と最後の隠れ状態 (B, H)。``nn.RNN(batch_first=True)`` と同じ計算。
    """
    B, T, _ = x.shape
    h = x.new_zeros(B, w_hh.shape[0]) if h0 is None else h0     # (B, H)
    xs = x @ w_ih.T + b_ih                                      # (B, T, H) 入力の変換は先にまとめて計算できる
    outs = []
    for t in range(T):                                          # ここは逐次: h_t には h_{t-1} が要る
        h = torch.tanh(xs[:, t] + h @ w_hh.T + b_hh)            # (B, H)
        outs.append(h)
    return torch.stack(outs, dim=1), h


class CharLM(nn.Module):
    """この章の文字単位のニューラル言語モデルに共通の部分 (A-1 §5 で導入)。

    サブクラスは ``embed`` (nn.Embedding)、``features`` (埋め込み (B, T, E) → 特徴 (B, T, H))、
    ``head`` (nn.Linear(H, V)) を持つ。``context_len`` は一度に見られる文字数で、None なら制限なし (RNN)。
    評価の約束は N グラムと同じで、2 文字目から最後までの各文字を、それより前の文字から当てる。
    """

    context_len: Optional[int] = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """埋め込み済みの入力 (B, T, E) からロジット (B, T, V) を計算する (勾配の測定に使う)。"""
        return self.head(self.features(x))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ID (B, T) → ロジット (B, T, V)。位置 t のロジットは ids[:, t+1] の予測。"""
        return self.forward_embeddings(self.embed(ids))

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def _stream_features(self, ids: torch.Tensor) -> torch.Tensor:
        """長い ID 列 (N,) を読み、各位置の特徴 (N, H) を返す。位置 t の特徴は ids[:t+1] から計算する。"""
        ids = ids.to(self._device())
        L, N = self.context_len, len(ids)
        if L is None or N <= L:                                   # RNN は先頭から 1 回で読み通す
            return self.features(self.embed(ids[None]))[0]
        # 窓 (長さ L) を L/2 ずつずらし、各位置は少なくとも L/2 文字の文脈を持つ窓から特徴を取る
        stride = L // 2
        starts = list(range(0, N - L, stride)) + [N - L]
        feats = torch.empty(N, self.head.in_features, device=ids.device)
        done = 0
        for i in range(0, len(starts), 256):
            batch_starts = starts[i:i + 256]
            win = ids[torch.tensor(batch_starts, device=ids.device)[:, None] + torch.arange(L, device=ids.device)]
            f = self.features(self.embed(win))                     # (b, L, H)
            for j, s in enumerate(batch_starts):
                feats[done:s + L] = f[j, done - s:]
                done = s + L
        return feats

    @torch.no_grad()
    def token_log_probs(self, ids: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """2 文字目から最後までの log P(ids[t] | それより前): (N-1,) の float64 (CPU)。"""
        feats = self._stream_features(ids)[:-1]                   # (N-1, H)
        targets = ids[1:].to(feats.device)
        out = []
        for i in range(0, len(targets), chunk):
            lp = torch.log_softmax(self.head(feats[i:i + chunk]).cpu().double(), dim=-1)   # float64 は CPU で
            out.append(lp.gather(-1, targets[i:i + chunk, None].cpu()).squeeze(-1))
        return torch.cat(out)

    @torch.no_grad()
    def next_probs(self, windows: torch.Tensor) -> torch.Tensor:
        """文脈の窓 (B, W) それぞれについて、次の文字の確率分布を返す: (B, V) の float64 (CPU)。"""
        if self.context_len is not None:
            windows = windows[:, -self.context_len:]
        logits = self(windows.to(self._device()))[:, -1]         # (B, V)
        return torch.softmax(logits.cpu().double(), dim=-1)       # float64 は CPU で (MPS は float64 を持たない)

    @torch.no_grad()
    def predict_at(self, ids: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
        """各位置 p について、ids[:p] から予測した「いちばん確率の高い次の文字」: (len(positions),)。

        RNN は先頭から読み通した隠れ状態で、自己注意モデルは p の直前 context_len 文字で予測する。
        """
        positions = [int(p) for p in positions]
        if self.context_len is None:
            feats = self._stream_features(ids)
            idx = torch.tensor(positions, device=feats.device) - 1
            return self.head(feats[idx]).argmax(-1).cpu()
        L = self.context_len
        preds = torch.empty(len(positions), dtype=torch.long)
        full = [i for i, p in enumerate(positions) if p >= L]
        if full:
            win = torch.stack([ids[positions[i] - L:positions[i]] for i in full])
            preds[full] = self.next_probs(win).argmax(-1)
        for i, p in enumerate(positions):
            if p < L:
                preds[i] = self.next_probs(ids[None, :p]).argmax(-1)[0]
        return preds

    @torch.no_grad()
    def generate(self, prompt: Sequence[int], length: int, seed: int = 0) -> list:
        """prompt の続きを、確率分布からのサンプリングで length 文字作る (CPU の乱数 seed で決まる)。"""
        g = torch.Generator().manual_seed(seed)
        out = [int(i) for i in prompt]
        for _ in range(length):
            ctx = out if self.context_len is None else out[-self.context_len:]
            p = self.next_probs(torch.tensor([ctx]))[0]
            out.append(int(torch.multinomial(p, 1, generator=g)))
        return out


class CharRNN(CharLM):
    """文字単位の RNN / LSTM 言語モデル: 埋め込み → nn.RNN か nn.LSTM → 出力層 (A-1 §5 で導入)。"""

    def __init__(self, vocab_size: int, emb_dim: int = 64, hidden_size: int = 128, cell: str = "rnn"):
        super().__init__()
        if cell not in ("rnn", "lstm"):
            raise ValueError(f"cell は 'rnn' か 'lstm' です (受け取った値: {cell!r})")
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, emb_dim)
        self.rnn = (nn.RNN if cell == "rnn" else nn.LSTM)(emb_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]                                      # (B, T, E) → (B, T, H)


@dataclass(frozen=True)
class TrainConfig:
    """学習ループの設定 (A-1 §5 で導入)。"""

    steps: int = 400
    batch_size: int = 16
    seq_len: int = 64
    lr: float = 1e-2
    warmup: int = 20
    clip: float = 1.0
    seed: int = 0          # バッチの取り出し順を決める seed


def train_char_model(model: nn.Module, train_ids: torch.Tensor, config: TrainConfig, device=None) -> list:
    """次の文字の交差エントロピーを AdamW で下げる、最小限の学習ループ (A-1 §5 で導入)。

    model は ID (B, T) → ロジット (B, T, V) を返すもの。戻り値は各ステップの損失のリスト。
    バッチは ``config.seed`` の CPU 乱数だけで決まるので、同じ初期値・同じデバイスなら同じ結果になる。
    """
    device = device if device is not None else next(model.parameters()).device
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = lambda s: min(1.0, (s + 1) / config.warmup) * (1.0 - 0.9 * s / config.steps)  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    losses = []
    for _ in range(config.steps):
        x, y = get_batch(train_ids, config.batch_size, config.seq_len, g, device)   # (B, T), (B, T)
        logits = model(x)                                                            # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


#: この章の 3 つのニューラルモデルの学習設定 (§5・§6)。LSTM は 1e-2 では 400 ステップで学習が進みきらなかったので 2e-2 にしている。
A1_TRAIN = {
    "RNN": TrainConfig(lr=1e-2),
    "LSTM": TrainConfig(lr=2e-2),
    "Attention-1L": TrainConfig(lr=1e-2),
}


def make_a1_model(kind: str, vocab_size: int) -> "CharLM":
    """この章のニューラルモデルを作る (A-1 §5 で導入)。kind は ``A1_TRAIN`` のキー。"""
    if kind == "RNN":
        return CharRNN(vocab_size, emb_dim=64, hidden_size=128, cell="rnn")
    if kind == "LSTM":
        return CharRNN(vocab_size, emb_dim=64, hidden_size=128, cell="lstm")
    if kind == "Attention-1L":
        return TinyAttentionLM(vocab_size, d_model=128, n_heads=4, max_len=64)   # §6 で定義
    raise ValueError(f"kind は {list(A1_TRAIN)} のどれかです (受け取った値: {kind!r})")


def train_a1_model(kind: str, data: "A1Data", device=None, seed: int = 0) -> tuple:
    """``seed`` で初期化したモデルを ``A1_TRAIN[kind]`` で学習し、(モデル, 損失のリスト) を返す (A-1 §5 で導入)。"""
    set_seed(seed)
    model = make_a1_model(kind, data.vocab_size)
    if device is not None:
        model = model.to(device)
    losses = train_char_model(model, data.train_ids, A1_TRAIN[kind], device)
    return model, losses


# --- a1_language_models.ipynb: 6. 小さな自己注意モデル
class CausalSelfAttention(nn.Module):
    """因果マスクつきのマルチヘッド自己注意を、式どおりに一から書いたもの (A-1 §6 で導入。詳しくは A-3・A-5)。"""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) は n_heads ({n_heads}) で割り切れる必要があります")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)     # Q, K, V をまとめて作る
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        """x: (B, T, d) → (B, T, d)。return_weights なら注意の重み (B, heads, T, T) も返す。"""
        B, T, D = x.shape
        d_k = D // self.n_heads
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, d_k).permute(2, 0, 3, 1, 4)   # 各 (B, heads, T, d_k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)                                # (B, heads, T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()                # True = 参照してよい (s ≤ t)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)        # 各行の和は 1
        y = self.out((weights @ v).transpose(1, 2).reshape(B, T, D))                     # (B, T, d)
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
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def features(self, x: torch.Tensor, return_weights: bool = False):
        T = x.shape[1]
        if T > self.context_len:
            raise ValueError(f"このモデルが一度に見られるのは {self.context_len} 文字までです (入力の長さ: {T})")
        h = x + self.pos(torch.arange(T, device=x.device))        # (B, T, d)
        a, weights = self.attn(self.ln1(h), return_weights=True)
        h = h + a
        h = h + self.ffn(self.ln2(h))
        h = self.ln_f(h)
        return (h, weights) if return_weights else h

    @torch.no_grad()
    def attention_weights(self, ids: torch.Tensor) -> torch.Tensor:
        """ID (B, T) を読んだときの注意の重み (B, heads, T, T)。"""
        return self.features(self.embed(ids.to(self._device())), return_weights=True)[1]


# --- a1_language_models.ipynb: 7. 勾配消失を測る
def gradient_by_distance(model: "CharLM", chunk: torch.Tensor) -> torch.Tensor:
    """最後の位置の損失から、k 文字前の入力の埋め込みへの勾配のノルムを測る (A-1 §7 で導入)。

    chunk: (B, T+1) の ID。入力は chunk[:, :T]、当てるのは chunk[:, T] (最後の位置の次の文字)。
    戻り値: (T,) の Tensor (CPU)。要素 k は ‖∂ℓ / ∂e_{T-1-k}‖ のバッチ平均 (k = 0 は最後の入力自身)。
    """
    x, target = chunk[:, :-1], chunk[:, -1]
    e = model.embed(x).detach().requires_grad_(True)                 # (B, T, E) 勾配を測りたい入力
    logits = model.forward_embeddings(e)                             # (B, T, V)
    loss = F.cross_entropy(logits[:, -1], target, reduction="sum")   # 各系列の最後の位置の損失の和
    (grad,) = torch.autograd.grad(loss, e)                           # (B, T, E) モデルの .grad は汚さない
    return grad.norm(dim=-1).mean(0).flip(0).cpu()                   # (T,) k = 0, 1, …, T-1


# --- a1_language_models.ipynb: 8. 逐次計算と並列計算
def synchronize(device) -> None:
    """GPU の非同期な計算が終わるまで待つ (CPU では何もしない)。時間の測定の前後で呼ぶ (A-1 §8 で導入)。"""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_time(fn: Callable[[], object], device, repeats: int = 7, warmup: int = 2) -> float:
    """fn() の実行時間 (秒) を repeats 回測り、中央値を返す (A-1 §8 で導入)。

    ほかの処理の割り込みで遅くなった回に引きずられないよう、平均ではなく中央値を使う。
    測った値は実行のたびに少し変わる (この章で、実行ごとに変わる数値はこれだけ)。
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
    """長距離項目の種類ごとに、予測が正しかった数と項目の数 (正解数, 総数) を返す (A-1 §9 で導入)。

    model は ``predict_at(ids, positions)`` を持つもの (NGramLM・CharLM)。判定は、項目の位置で
    いちばん確率の高い次の文字が ``target`` の最初の 1 文字と一致するか (人名は最初の 1 文字で判定)。
    """
    out = {}
    for kind in sorted({it.kind for it in items}):
        chosen = [it for it in items if it.kind == kind]
        targets = torch.tensor([tokenizer.stoi[it.target[0]] for it in chosen])
        preds = model.predict_at(ids, [it.position for it in chosen])
        out[kind] = (int((preds == targets).sum()), len(chosen))
    return out


def quote_cue_effect(model, ids: torch.Tensor, items: Sequence, tokenizer, window: int = 64) -> dict:
    """閉じかっこの予測が、遠くの開きかっこ 「 にどれだけ頼っているかを測る (A-1 §9 で導入)。

    各閉じかっこについて、直前 ``window`` 文字 (元の文脈) と、そこから対応する 「 だけを除いて 1 文字前から
    読み始めた文脈 (手がかりなし) で、次の文字が 」 である確率を比べる。戻り値は
    ``{"with": (n,), "without": (n,)}`` の確率の Tensor (float64)。
    """
    close = tokenizer.stoi["」"]
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
@dataclass(frozen=True)
class PerplexityRow:
    """パープレキシティの表の 1 行 (A-1 §10 で導入)。"""

    model: str
    val_ppl: float
    train_ppl: Optional[float] = None
    params: Optional[int] = None
    context: str = ""
    chapter: str = "A-1"
    note: str = ""


class PerplexityTable:
    """モデル名をキーにした、検証用パープレキシティの表 (A-1 §10 で導入。A-5 で Transformer の行を足す)。

    ``add`` で行を足し、``table["5-gram"].val_ppl`` のように読む。ノートブックでは HTML の表として、
    ``print`` ではテキストの表として表示される。``plot`` で横棒グラフを描く。
    """

    def __init__(self, title: str = "検証用テキストでのパープレキシティ (文字単位、低いほど良い)"):
        self.title = title
        self._rows: dict = {}

    def add(self, model: str, val_ppl: float, *, train_ppl: Optional[float] = None, params: Optional[int] = None,
            context: str = "", chapter: str = "A-1", note: str = "", replace: bool = False) -> PerplexityRow:
        """1 行を足して返す。同じモデル名がすでにあれば、replace=True のときだけ置き換える。"""
        if not isinstance(model, str) or not model.strip():
            raise ValueError("モデル名は空でない文字列にしてください")
        for name, value in (("val_ppl", val_ppl), ("train_ppl", train_ppl)):
            if value is None and name == "train_ppl":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
                raise ValueError(f"{name} は 1 以上の有限の数にしてください (パープレキシティは 1 未満になりません)。受け取った値: {value!r}")
        if model in self._rows and not replace:
            raise ValueError(f"モデル {model!r} の行はすでにあります (置き換えるなら replace=True)")
        row = PerplexityRow(model, float(val_ppl), None if train_ppl is None else float(train_ppl),
                            None if params is None else int(params), context, chapter, note)
        self._rows[model] = row
        return row

    def __getitem__(self, model: str) -> PerplexityRow:
        if model not in self._rows:
            raise KeyError(f"表にモデル {model!r} はありません (あるもの: {', '.join(self._rows)})")
        return self._rows[model]

    def __contains__(self, model: object) -> bool:
        return model in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self):
        return iter(self._rows.values())

    def models(self) -> list:
        """モデル名のリスト (足した順)。"""
        return list(self._rows)

    def best(self) -> PerplexityRow:
        """検証用パープレキシティがいちばん低い行。"""
        return min(self._rows.values(), key=lambda r: r.val_ppl)

    def as_dict(self) -> dict:
        """{モデル名: {列名: 値}} の辞書。"""
        return {r.model: dict(r.__dict__) for r in self}

    _HEADER = ("モデル", "検証用 PPL", "学習用 PPL", "パラメータ数", "見える文脈", "章")

    def _cells(self, r: PerplexityRow) -> tuple:
        return (r.model, f"{r.val_ppl:.3f}", "—" if r.train_ppl is None else f"{r.train_ppl:.3f}",
                "—" if r.params is None else f"{r.params:,}", r.context or "—", r.chapter)

    def to_text(self) -> str:
        """固定幅のテキストの表。"""
        rows = [self._HEADER] + [self._cells(r) for r in self]
        width = lambda s: sum(2 if ord(c) > 0x2E7F else 1 for c in s)  # noqa: E731 全角は 2 桁
        cols = [max(width(row[i]) for row in rows) for i in range(len(self._HEADER))]
        lines = [self.title]
        for j, row in enumerate(rows):
            lines.append("  ".join(c + " " * (w - width(c)) for c, w in zip(row, cols)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in cols))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown の表。"""
        lines = ["| " + " | ".join(self._HEADER) + " |", "|" + "---|" * len(self._HEADER)]
        lines += ["| " + " | ".join(self._cells(r)) + " |" for r in self]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        from llmbook.display import table_html

        return f"<div><strong>{html.escape(self.title)}</strong></div>" + table_html(self._HEADER, [self._cells(r) for r in self])

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"PerplexityTable({len(self)} 行: {', '.join(self._rows)})"

    def plot(self, ax=None):
        """検証用パープレキシティの横棒グラフ (対数目盛) を描き、Axes を返す。色は章ごと。"""
        import matplotlib.pyplot as plt

        from llmbook.plotting import OKABE_ITO, setup_japanese

        setup_japanese()
        rows = list(self)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
        # 色: 数え上げのモデル (一様分布と n-gram) は 1 色、ニューラルモデルは章ごとに別の色
        counting = lambda r: r.model == "uniform" or r.model.endswith("-gram")  # noqa: E731
        groups = list(dict.fromkeys("数え上げ" if counting(r) else f"ニューラル ({r.chapter})" for r in rows))
        palette = [OKABE_ITO[1], OKABE_ITO[0], OKABE_ITO[2], OKABE_ITO[4], OKABE_ITO[5], OKABE_ITO[3]]
        y = list(range(len(rows)))[::-1]
        for yi, r in zip(y, rows):
            group = "数え上げ" if counting(r) else f"ニューラル ({r.chapter})"
            ax.barh(yi, r.val_ppl, color=palette[groups.index(group) % len(palette)],
                    label=group if group not in ax.get_legend_handles_labels()[1] else None)
            ax.text(r.val_ppl * 1.05, yi, f"{r.val_ppl:.2f}", va="center", fontsize=9)
        ax.set_yticks(y, [r.model for r in rows])
        ax.set_xscale("log")
        ax.set_xlim(1, max(r.val_ppl for r in rows) * 3)
        ax.legend(loc="lower right")
        ax.set_xlabel("検証用パープレキシティ (対数目盛、低いほど良い)")
        ax.set_title(self.title)
        return ax


def build_a1_table(data: "A1Data", ngrams: dict, neural: dict) -> PerplexityTable:
    """A-1 のモデルたちの表を作る: 一様分布、n-gram (補間)、ニューラルモデル (A-1 §10 で導入)。

    ngrams は {n: NGramLM}、neural は {"RNN": CharLM, ...}。学習用 PPL は ``data.train_eval_ids`` で測る。
    """
    V = data.vocab_size
    table = PerplexityTable()
    table.add("uniform", float(V), train_ppl=float(V), params=0, context="なし (一様分布)")
    for n, model in sorted(ngrams.items()):
        table.add(f"{n}-gram", model.perplexity(data.val_ids), train_ppl=model.perplexity(data.train_eval_ids),
                  params=model.n_entries, context=f"直前 {n - 1} 文字")
    for kind, model in neural.items():
        context = "先頭からすべて (隠れ状態に要約)" if model.context_len is None else f"直前 {model.context_len} 文字"
        table.add(kind, perplexity_from_log_probs(model.token_log_probs(data.val_ids)),
                  train_ppl=perplexity_from_log_probs(model.token_log_probs(data.train_eval_ids)),
                  params=sum(p.numel() for p in model.parameters()), context=context)
    return table


def a1_baselines(seed: int = 0, device=None, include_neural: bool = True) -> PerplexityTable:
    """A-1 の表を最初から計算し直す (A-1 §10 で導入)。A-5 などの後の章が、コードを写さずに比較に使う。

    データ (``load_a1_data(seed)``)・N グラム (n = 1〜5、補間)・ニューラルモデル (``A1_TRAIN`` の設定と
    ``train_a1_model``) は、A-1 のノートブックとまったく同じ手順なので、同じデバイスなら同じ数値になる。
    ``include_neural=False`` なら N グラムまで (数秒)。
    """
    data = load_a1_data(seed)
    ngrams = fit_ngrams(data.train_ids, data.vocab_size)
    neural = {kind: train_a1_model(kind, data, device)[0] for kind in A1_TRAIN} if include_neural else {}
    return build_a1_table(data, ngrams, neural)
