"""引数の検証 (A-1 §3 から使う配管)。誤りは、何をどう直せばよいかを日本語で伝える。"""
from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch

__all__ = [
    "japanese_call_errors",
    "check_keywords",
    "check_positive_int",
    "check_fraction",
    "check_ids_tensor",
    "as_id_array",
    "check_log_probs",
    "check_ngram_args",
    "check_ppl",
    "check_text",
]


def check_keywords(func: str, given: Mapping[str, object], allowed: Iterable[str]) -> None:
    """``**kwargs`` で受け取った名前が ``allowed`` にあるかを確かめる。

    つづりの誤り (``sed=0`` など) は Python の英語の ``TypeError`` ではなく、使える名前と
    「もしかして」の候補を書いた日本語の ``TypeError`` にする。
    """
    allowed = list(allowed)
    for name in given:
        if name in allowed:
            continue
        near = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
        hint = f" もしかして {near[0]!r} ですか?" if near else ""
        raise TypeError(f"{func} には {name!r} という引数はありません。{hint}"
                        f" 使える名前: {', '.join(allowed)}")


def japanese_call_errors(hint: str = "") -> Callable:
    """関数の呼び出し方の誤りを日本語の ``TypeError`` にする飾り (デコレータ)。

    名前のつづりの誤りは :func:`check_keywords` と同じ「もしかして」つきのメッセージに、位置引数の
    渡しすぎなどは ``hint`` (正しい呼び方) を添えたメッセージにする。教える関数のシグネチャを
    ``*extra, **unknown`` のような検証用の引数で汚さずに済む。
    """

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            check_keywords(fn.__name__, kwargs, sig.parameters)
            try:
                sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{fn.__name__} の引数の渡し方が違います ({e})。{hint}") from None
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def check_positive_int(name: str, value: object) -> int:
    """1 以上の整数 (bool は除く) であることを確かめて返す。"""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} は 1 以上の整数にしてください (受け取った値: {value!r})。")
    return value


def check_fraction(name: str, value: object, error: type[Exception] = ValueError) -> float:
    """0 より大きく 1 より小さい数であることを確かめて返す。"""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise error(f"{name} は 0 より大きく 1 より小さい数にしてください "
                    f"(受け取った値: {value!r})。")
    return float(value)


def check_ids_tensor(ids: object, seq_len: int) -> torch.Tensor:
    """``get_batch`` の入力: 1 次元の ``torch.long`` で、``seq_len + 1`` 文字以上あること。"""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or ids.dtype != torch.long:
        raise ValueError("ids は 1 次元の torch.long の Tensor で渡してください "
                         "(CharTokenizer.encode_tensor の戻り値など)。")
    if len(ids) < seq_len + 1:
        raise ValueError(f"ID 列 ({len(ids)} 文字) が短すぎます。seq_len = {seq_len} なら"
                         f"少なくとも {seq_len + 1} 文字必要です。")
    return ids


def as_id_array(ids: object, vocab_size: int) -> np.ndarray:
    """ID の列 (Tensor・list・ndarray) を確かめて、int64 の 1 次元 ndarray にする。"""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError("ID の列は整数の 1 次元の列で渡してください "
                         f"(受け取った形: {arr.shape}, 型: {arr.dtype})。")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"ID は 0 以上 vocab_size ({vocab_size}) 未満にしてください "
                         "(別のトークナイザで作った ID を渡していませんか?)。")
    return arr


def check_log_probs(log_probs: object) -> torch.Tensor:
    """正解の対数確率の列を確かめ、float64 の 1 次元 Tensor にして返す。"""
    lp = torch.as_tensor(log_probs, dtype=torch.float64)
    if lp.ndim != 1 or lp.numel() == 0:
        raise ValueError("対数確率は空でない 1 次元の列で渡してください "
                         f"(受け取った形: {tuple(lp.shape)})。")
    if torch.isnan(lp).any() or (lp > 1e-9).any():
        raise ValueError("対数確率は 0 以下の数のはずです "
                         "(確率そのものや、符号を反転した損失を渡していませんか?)。")
    return lp


def check_ngram_args(n: object, vocab_size: object, smoothing: object, discount: object,
                     k: object) -> None:
    """``NGramLM`` の設定を確かめる。"""
    check_positive_int("n", n)
    check_positive_int("vocab_size", vocab_size)
    if smoothing not in ("interp", "add_k"):
        raise ValueError(f"smoothing は 'interp' か 'add_k' です (受け取った値: {smoothing!r})。")
    if not isinstance(discount, (int, float)) or not 0 < discount < 1:
        raise ValueError(f"discount は 0 と 1 のあいだの数にしてください "
                         f"(受け取った値: {discount!r})。")
    if not isinstance(k, (int, float)) or not k > 0:
        raise ValueError(f"k は正の数にしてください (受け取った値: {k!r})。")
    if vocab_size ** n >= 2 ** 62:  # type: ignore[operator]
        raise ValueError(f"vocab_size ** n が大きすぎて 64 ビット整数に収まりません (n = {n})。")


def check_ppl(name: str, value: object) -> float:
    """パープレキシティ (1 以上の有限の数) であることを確かめて float で返す。"""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 1:
        raise ValueError(f"{name} は 1 以上の有限の数にしてください (パープレキシティは 1 未満に"
                         f"なりません)。受け取った値: {value!r}")
    return float(value)


def check_text(text: object, min_chars: int) -> str:
    """読者のテキスト: 文字列で、``min_chars`` 文字以上あること (誤りは ``CorpusError``)。"""
    from llmbook.corpus import CorpusError

    if not isinstance(text, str):
        raise CorpusError("テキストは文字列 (str) で渡してください "
                          f"(受け取った型: {type(text).__name__})。")
    if len(text) < min_chars:
        raise CorpusError(f"テキストが短すぎます ({len(text):,} 文字)。訓練用と検証用に分けるには、"
                          f"少なくとも {min_chars:,} 文字必要です。")
    return text
