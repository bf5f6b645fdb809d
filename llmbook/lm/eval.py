"""長いテキストの評価・予測・生成 (A-1 §4・§5 から使う配管)。

モデルが教えるのは「文脈から次の文字の確率を出す」ことだけで、ここはそれを長い ID 列に
当てはめる部分。N グラムと、この本のニューラルモデル (``embed`` → ``features`` → ``head``)
のどちらも、同じ約束で評価する:

- ``token_log_probs(ids)``: 2 文字目から最後までの log P(ids[t] | それより前)、(N-1,) の float64
- ``next_probs(windows)``: 文脈の窓 (B, W) それぞれの次の文字の分布、(B, V) の float64
- ``predict_at(ids, positions)``: 位置 p で ids[:p] から予測した、いちばん確率の高い文字
- ``generate(prompt, length, seed)``: 分布からのサンプリングで続きを作る
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["SamplingMixin", "NGramEvalMixin", "StreamingLMMixin", "RNN_EVAL_CONTEXT",
           "window_starts"]

#: RNN を長い列で評価するとき、各位置で少なくとも読ませる直前の文字数 (§5)。
#: 区間に分けて並列に読むための約束で、これより前の文字の影響は §7 の測定のとおり無視できる。
RNN_EVAL_CONTEXT = 1024


class SamplingMixin:
    """``next_probs`` から文章を生成する部分 (N グラムとニューラルモデルで共通)。"""

    #: 生成のときに渡す文脈の長さ (None ならすべて)
    sample_context: int | None = None

    def generate(self, prompt: Sequence[int], length: int, seed: int = 0) -> list[int]:
        """prompt (ID の列) の続きを length 文字、確率分布からのサンプリングで作る。

        乱数は CPU の ``torch.Generator(seed)`` からだけ引くので、同じ seed なら同じ文になる。
        """
        out = [int(i) for i in prompt]
        g = torch.Generator().manual_seed(seed)
        for _ in range(length):
            ctx = out if self.sample_context is None else out[-self.sample_context:]
            p = self.next_probs(torch.tensor([ctx], dtype=torch.long))[0]
            out.append(int(torch.multinomial(p, 1, generator=g)))
        return out


class NGramEvalMixin(SamplingMixin):
    """N グラムの ``token_probs``・``next_token_probs`` を、評価・予測・生成に広げる部分。"""

    def token_log_probs(self, ids) -> torch.Tensor:
        """2 文字目から最後までの log P(ids[t] | 文脈): (N-1,) の float64。"""
        return torch.from_numpy(np.log(self.token_probs(ids)[1:]))

    def perplexity(self, ids) -> float:
        """ID 列のパープレキシティ (2 文字目から最後までの平均)。"""
        lp = self.token_log_probs(ids)
        if lp.numel() == 0:
            raise ValueError("パープレキシティを測るには、少なくとも 2 文字の ID 列が要ります。")
        return float(torch.exp(-lp.mean()))

    @property
    def n_entries(self) -> int:
        """保存している並びの数 (1〜n 文字の、異なる並びの合計)。モデルの「大きさ」の目安。"""
        return int(sum(len(t[0]) for t in self.tables))

    def unseen_rates(self, ids) -> tuple[float, float]:
        """ids の n 文字の並びのうち、(文脈が, 並び全体が) 訓練用に一度も現れなかった割合。"""
        from .validation import as_id_array

        if not self.tables:
            raise RuntimeError("先に fit(訓練用の ID 列) で回数を数えてください。")
        q = self._keys(as_id_array(ids, self.vocab_size), self.n)
        grams, _, ctx, _, _ = self.tables[self.n - 1]
        ctx_unseen = 0.0 if self.n == 1 else float(1 - np.isin(q // self.vocab_size, ctx).mean())
        return ctx_unseen, float(1 - np.isin(q, grams).mean())

    def next_probs(self, windows: torch.Tensor) -> torch.Tensor:
        """文脈の窓 (B, W) それぞれについて、次の文字の確率分布を返す: (B, V) の float64。"""
        rows = [self.next_token_probs([int(i) for i in w]) for w in windows]
        return torch.from_numpy(np.stack(rows))

    def predict_at(self, ids, positions: Sequence[int]) -> torch.Tensor:
        """各位置 p について、ids[:p] から予測した「いちばん確率の高い次の文字」。"""
        arr = [int(i) for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids)]
        k = self.n - 1
        preds = [int(np.argmax(self.next_token_probs(arr[max(0, p - k):p]))) for p in positions]
        return torch.tensor(preds, dtype=torch.long)


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """長さ n の列を、長さ window の窓で stride ずつ覆うときの開始位置 (最後は端に合わせる)。"""
    if n <= window:
        return [0]
    return list(range(0, n - window, stride)) + [n - window]


class StreamingLMMixin(SamplingMixin):
    """ニューラルモデル (``embed``・``features``・``head``・``context_len``) の評価の配管。

    長い列 (検証用テキスト全体など) は、窓に切ってバッチでまとめて読む:

    - 一度に見られる長さ ``context_len = L`` のモデル (自己注意) は、長さ L の窓を L/2 ずつ
      ずらす。各位置は少なくとも L/2 文字の文脈を持つ窓から評価する。
    - 長さに制限のないモデル (RNN) は、長さ 2 × ``RNN_EVAL_CONTEXT`` の窓を
      ``RNN_EVAL_CONTEXT`` ずつずらす。各位置は直前の ``RNN_EVAL_CONTEXT`` 文字以上を読んだ
      隠れ状態で評価する (先頭から 1 本で読み通すのとほぼ同じ値で、十数倍速い)。
    """

    context_len: int | None = None

    @property
    def sample_context(self) -> int:
        return self.context_len or RNN_EVAL_CONTEXT

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _stream_key(self, ids: torch.Tensor) -> tuple:
        """同じ ID 列・同じ重みなら同じになる鍵 (重みを書き換えると ``_version`` が増える)。"""
        params = tuple((id(p), p._version) for p in self.parameters())
        return (ids.data_ptr(), ids.storage_offset(), tuple(ids.shape), ids._version,
                str(ids.device), params)

    @torch.no_grad()
    def stream_features(self, ids: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """長い ID 列 (N,) の各位置の特徴 (N, H)。位置 t の特徴は ids[:t+1] の一部から計算する。

        検証用テキスト全体のような長い列は、評価 (§5)・予測 (§9)・表 (§10) で何度も読むので、
        直前に読んだ 1 本の結果を覚えておき、同じ列・同じ重みなら計算し直さない (列そのものも
        持っておくので、そのメモリが別の列に使い回されて鍵が偶然一致することはない)。
        """
        key = self._stream_key(ids)
        cached = self.__dict__.get("_stream_cache")
        if cached is not None and cached[0] == key:
            return cached[2]
        feats = self._stream_features(ids.to(self._device()), batch)
        self.__dict__["_stream_cache"] = (key, ids, feats)
        return feats

    def _stream_features(self, ids: torch.Tensor, batch: int) -> torch.Tensor:
        if self.context_len is None:
            window, stride = 2 * RNN_EVAL_CONTEXT, RNN_EVAL_CONTEXT
        else:
            window, stride = self.context_len, self.context_len // 2
        window = min(window, len(ids))
        starts = window_starts(len(ids), window, stride)
        feats = torch.empty(len(ids), self.head.in_features, device=ids.device)
        done = 0
        arange = torch.arange(window, device=ids.device)
        for i in range(0, len(starts), batch):
            chunk = starts[i:i + batch]
            win = ids[torch.tensor(chunk, device=ids.device)[:, None] + arange]   # (b, window)
            f = self.features(self.embed(win))                                    # (b, window, H)
            for j, s in enumerate(chunk):
                feats[done:s + window] = f[j, done - s:]
                done = s + window
        return feats

    @torch.no_grad()
    def token_log_probs(self, ids: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """2 文字目から最後までの log P(ids[t] | それより前): (N-1,) の float64 (CPU)。"""
        feats = self.stream_features(ids)[:-1]                                    # (N-1, H)
        targets = ids[1:].cpu()
        out = []
        for i in range(0, len(targets), chunk):
            logits = self.head(feats[i:i + chunk]).cpu().double()       # float64 は CPU で
            lp = torch.log_softmax(logits, dim=-1)
            out.append(lp.gather(-1, targets[i:i + chunk, None]).squeeze(-1))
        return torch.cat(out)

    @torch.no_grad()
    def next_probs(self, windows: torch.Tensor) -> torch.Tensor:
        """文脈の窓 (B, W) それぞれの次の文字の分布: (B, V) の float64 (CPU)。"""
        if windows.shape[-1] == 0:
            raise ValueError("文脈の窓には少なくとも 1 文字が要ります。")
        if self.context_len is not None:
            windows = windows[:, -self.context_len:]
        logits = self(windows.to(self._device()))[:, -1]                          # (B, V)
        return torch.softmax(logits.cpu().double(), dim=-1)

    @torch.no_grad()
    def predict_at(self, ids: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
        """各位置 p (1 以上) で、ids[:p] を読んで予測した「いちばん確率の高い次の文字」。

        自己注意モデルは窓いっぱい (直前 ``context_len`` 文字) を、RNN は ``stream_features`` と
        同じく直前 ``RNN_EVAL_CONTEXT`` 文字以上を読んだ隠れ状態で予測する。
        """
        if self.context_len is None:       # RNN: 長い列をまとめて読んだ特徴 (p の予測は p-1)
            feats = self.stream_features(ids)
            idx = torch.tensor([int(p) - 1 for p in positions], device=feats.device)
            return self.head(feats[idx]).argmax(-1).cpu()
        return self.next_probs_at(ids, positions).argmax(-1)

    @torch.no_grad()
    def next_probs_at(self, ids: torch.Tensor, positions: Sequence[int]) -> torch.Tensor:
        """各位置 p (1 以上) で、直前 min(p, ``sample_context``) 文字を窓として読んだ次の文字の
        分布: (len(positions), V) の float64 (CPU)。``predict_at`` と同じ窓 (A-5 §5 でも使う)。"""
        ctx = self.sample_context
        probs: list = [None] * len(positions)
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(positions):
            groups.setdefault(min(int(p), ctx), []).append(i)
        for width, idx in groups.items():
            for k in range(0, len(idx), 64):
                part = idx[k:k + 64]
                ends = [int(positions[i]) for i in part]
                win = torch.stack([ids[e - width:e] for e in ends])
                for i, row in zip(part, self.next_probs(win)):
                    probs[i] = row
        return torch.stack(probs)
