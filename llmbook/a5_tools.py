"""A-5 (因果マスクと自己回帰型生成) の裏方: 入力の検査と、測定の小道具。

章のノートブックが教えるコード (KV キャッシュ、キャッシュつきのアテンション、サンプリングの
関数、``generate``) は ``llmbook/chapters/a5.py`` に書き出される。ここには、それらが使う
検査と、時間を測る小道具だけを置く。
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from llmbook.lm.eval import StreamingLMMixin

__all__ = ["check_logits", "check_temperature", "check_top_k", "check_top_p", "check_prompt",
           "check_kv", "check_sampling", "best_time", "BOOK_GPT_DIR", "load_book_gpt",
           "StreamingGPT"]


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"形 {tuple(x.shape)}、{x.dtype} の Tensor"
    return type(x).__name__


def check_logits(logits) -> None:
    """logits が (..., V) の浮動小数点の Tensor で、V >= 1 か。"""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim < 1:
        raise TypeError("logits は浮動小数点の Tensor (..., V) で渡してください "
                        f"(受け取ったもの: {_describe(logits)})")
    if logits.shape[-1] == 0:
        raise ValueError("logits の語彙の次元 V が 0 です。1 以上にしてください")


def check_temperature(temperature) -> None:
    """温度は正の有限の数。0 以下は割り算ができないので、貪欲法は top_k=1 で選ぶ。"""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"温度 temperature は正の数にしてください "
                         f"(受け取った値: {temperature!r})。"
                         "温度 0 の代わりに、いちばん確率の高いトークンを選ぶ貪欲法は top_k=1 "
                         "で使えます")


def check_top_k(top_k) -> None:
    """top-k の k は 1 以上の整数 (語彙より大きければ、すべてを残す)。"""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k は 1 以上の整数にしてください (受け取った値: {top_k!r})。"
                         "k = 1 が貪欲法です")


def check_top_p(top_p) -> None:
    """top-p の p は 0 より大きく 1 以下 (1 ならすべてを残す)。"""
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) \
            or not 0 < top_p <= 1:
        raise ValueError(f"top_p は 0 より大きく 1 以下の数にしてください "
                         f"(受け取った値: {top_p!r})。確率の累積がこの値に届くまでの"
                         "トークンを残します")


def check_prompt(prompt_ids, max_new_tokens, max_len: int) -> None:
    """プロンプトが (B, T0) の torch.long で空でなく、T0 + 生成する数が文脈に収まるか。"""
    if not isinstance(prompt_ids, torch.Tensor) or prompt_ids.dtype != torch.long \
            or prompt_ids.ndim != 2:
        raise TypeError("prompt_ids は (B, T0) の torch.long の Tensor で渡してください "
                        f"(受け取ったもの: {_describe(prompt_ids)})。1 本なら "
                        "torch.tensor([tok.encode(文字列)]) のように 2 次元にします")
    if prompt_ids.shape[0] == 0 or prompt_ids.shape[1] == 0:
        raise ValueError("プロンプトが空です。1 トークン以上を渡してください "
                         "(文章の始まりから生成するなら、改行などの 1 文字を置きます)")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens は 0 以上の整数にしてください "
                         f"(受け取った値: {max_new_tokens!r})")
    if prompt_ids.shape[1] > max_len:
        raise ValueError(f"プロンプト ({prompt_ids.shape[1]} トークン) がモデルの文脈の長さ "
                         f"max_len = {max_len} を超えています。プロンプトを短くしてください")


def check_kv(k, v, past_k=None) -> None:
    """KV キャッシュに足す k, v が (B, h, T, d_k) で、それまでの中身と形が合うか。"""
    for name, t in (("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise TypeError(f"{name} は (B, h, T, d_k) の Tensor で渡してください "
                            f"(受け取ったもの: {_describe(t)})")
    if k.shape != v.shape:
        raise ValueError(f"k と v の形をそろえてください "
                         f"(k: {tuple(k.shape)}、v: {tuple(v.shape)})")
    if past_k is not None and (past_k.shape[:2] != k.shape[:2] or past_k.shape[3] != k.shape[3]):
        raise ValueError(f"キャッシュの中身 {tuple(past_k.shape)} と、足す k {tuple(k.shape)} の "
                         "B・h・d_k が合いません。別の入力には新しいキャッシュを使ってください")


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """fn() を repeats 回実行した中で、いちばん短い経過時間 (秒)。

    ほかの処理 (同じ機械で動くプログラム) の影響を減らすため、平均ではなく最小を取る。
    """
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def check_sampling(temperature, top_k, top_p) -> None:
    """generate の選び方の引数 (温度・top_k・top_p) をまとめて確かめる。"""
    check_temperature(temperature)
    if top_k is not None:
        check_top_k(top_k)
    if top_p is not None:
        check_top_p(top_p)


# ---------------------------------------------------------------- この本の訓練済み GPT (§5)
#: 訓練済みの GPT のチェックポイント (``llmbook.train`` の出力フォルダと同じ形: ckpt.pt)。
#: パッケージのデータなので、pip で入れた Colab でも読める。作り方のコマンドと設定は
#: assets/gpt_book/README.md にある。
BOOK_GPT_DIR = Path(__file__).with_name("data") / "gpt_book"


def load_book_gpt(folder=None, device=None):
    """この本の訓練済み GPT を読み込み、(model, tokenizer, info) を返す (A-5 §5 で使う)。

    model は ``llmbook.train`` と同じ作り方の DecoderLM (アテンションは KV キャッシュつき) で、
    評価モード。info はチェックポイントに残した訓練の設定・結果 (``args``・``result``・
    ``history``)。ファイルがない・壊れているときは日本語の FileNotFoundError / ValueError。
    """
    from llmbook.train import TrainError, load_checkpoint

    folder = Path(folder) if folder is not None else BOOK_GPT_DIR
    if not (folder / "ckpt.pt").is_file():
        raise FileNotFoundError(f"訓練済みの GPT のファイル {folder / 'ckpt.pt'} がありません。"
                                "assets/gpt_book/README.md のコマンドで作り直せます")
    try:
        model, tok, ckpt = load_checkpoint(folder, torch.device(device or "cpu"))
    except TrainError as e:
        raise ValueError(str(e)) from None
    return model.eval(), tok, {k: ckpt[k] for k in ("args", "result", "history") if k in ckpt}


class StreamingGPT(StreamingLMMixin, nn.Module):
    """DecoderLM を A-1 の評価の約束 (``embed`` → ``features`` → ``head``) に合わせる包み。

    これで A-1 の ``token_log_probs`` (パープレキシティ)・``predict_at`` (長距離の項目)・
    ``next_probs`` を、A-1 のモデルとまったく同じ手順で GPT に使える。一度に見られるのは
    ``model.max_len`` 文字 (窓を半分ずつずらして読む)。
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.context_len = model.max_len
        self.embed = nn.Identity()                 # ID のまま features に渡す
        self.head = model.head

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """ID (B, T) → 最後のレイヤー正規化の出力 (B, T, d) (出力層の直前)。"""
        out = {}
        hook = self.model.ln_f.register_forward_hook(lambda m, i, o: out.setdefault("h", o))
        try:
            self.model(ids)
        finally:
            hook.remove()
        return out["h"]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)
