"""コード課題の採点 (カーネルの中だけで動く)。

採点関数は、読者が書いた関数そのものを受け取り、小さな乱数入力 (seed 固定) で
参照実装と比べ、性質のチェックも行う。読者のコードが例外を出しても、形・dtype・
デバイスが違っても、NaN を返しても、カーネルは止めずに日本語で理由を返す。
"""
from __future__ import annotations

import importlib
import math
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .result import Result

__all__ = ["grade_code", "Case", "check_against_reference", "describe_value", "CodeTimeout",
           "seeded_randn"]

#: 1 ケースの実行時間の上限 (秒)。無限ループでもカーネルが戻ってくるように。
TIME_LIMIT = 5.0


class CodeTimeout(Exception):
    """読者のコードが時間の上限を超えた。"""


class Case:
    """採点の 1 ケース: 説明、引数、キーワード引数。"""

    def __init__(self, label: str, *args: Any, **kwargs: Any):
        self.label = label
        self.args = args
        self.kwargs = kwargs

    def cloned(self) -> tuple[tuple, dict]:
        clone = lambda x: x.clone() if isinstance(x, torch.Tensor) else x  # noqa: E731
        return tuple(clone(a) for a in self.args), {k: clone(v) for k, v in self.kwargs.items()}


def seeded_randn(seed: int) -> Callable:
    """randn(*shape) を返す。採点用の入力を作るが、グローバルな乱数の状態には触れない。"""
    g = torch.Generator().manual_seed(seed)
    return lambda *shape: torch.randn(*shape, generator=g)


@contextmanager
def _time_limit(seconds: float):
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _raise(signum, frame):  # noqa: ARG001
        raise CodeTimeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def describe_value(x: Any) -> str:
    """値を短く日本語で説明する (形・dtype・デバイス)。"""
    if isinstance(x, torch.Tensor):
        return f"Tensor(形 {tuple(x.shape)}, dtype {x.dtype}, デバイス {x.device.type})"
    if x is None:
        return "None (return を書き忘れていませんか?)"
    return f"{type(x).__name__} 型の値 {x!r:.60}"


def _user_error(exc: BaseException) -> str:
    """読者のコードが出した例外を、どの行かが分かる 1〜2 行にまとめる。"""
    tb = traceback.extract_tb(exc.__traceback__)
    skip = (
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        os.path.dirname(torch.__file__),
    )
    user = [f for f in tb if not os.path.abspath(f.filename).startswith(skip)]
    where = ""
    if user:
        last = user[-1]
        where = (
            f" ({last.name} の {last.lineno} 行目: {last.line})"
            if last.line
            else f" ({last.name} の {last.lineno} 行目)"
        )
    return f"{type(exc).__name__}: {exc}{where}"


#: PyTorch のよくあるエラー (英語の文面の一部) と、その日本語の説明。
KNOWN_ERRORS = [
    (
        "view size is not compatible with input tensor's size and stride",
        "transpose (や permute) の後の Tensor はメモリ上で連続でないので、view で形を"
        "変えられません (RuntimeError: view size is not compatible …)。reshape を使うか、"
        ".contiguous() で連続にしてから view します。",
    ),
]


def _explain_error(exc: BaseException) -> str | None:
    """読者のコードが出した PyTorch の例外のうち、よくあるものを日本語で説明する。"""
    text = str(exc)
    return next((why for part, why in KNOWN_ERRORS if part in text), None)


def _compare(got: Any, expected: Any, atol: float, rtol: float) -> str | None:
    """一致しなければ理由 (日本語) を返す。"""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"Tensor を返すはずが {describe_value(got)} でした。"
        if got.shape != expected.shape:
            return f"形が違います: 期待 {tuple(expected.shape)}、あなたの出力 {tuple(got.shape)}。"
        if got.dtype != expected.dtype:
            return f"dtype が違います: 期待 {expected.dtype}、あなたの出力 {got.dtype}。"
        if got.device != expected.device:
            return (
                f"デバイスが違います: 期待 {expected.device}、あなたの出力 {got.device} "
                "(入力と同じデバイスで計算しましょう)。"
            )
        if got.is_floating_point() and torch.isnan(got).any():
            return (
                "出力に NaN が含まれています (0 での割り算や、-inf だけの行の softmax "
                "などを疑いましょう)。"
            )
        if got.is_floating_point():
            if not torch.allclose(got, expected, atol=atol, rtol=rtol):
                err = (got - expected).abs().max().item()
                return f"値が参照実装と合いません (最大の差 {err:.3g}、許容 {atol:g})。"
        elif not torch.equal(got, expected):
            wrong = (got != expected).sum().item()
            return f"値が {wrong} 個の要素で参照実装と違います。"
        return None
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"数値を返すはずが {describe_value(got)} でした。"
        if not math.isfinite(got):
            return f"有限の数値を返すはずが {got} でした。"
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"値が違います: 期待 {expected:.6g}、あなたの出力 {got:.6g}。"
        return None
    return None if got == expected else f"期待 {expected!r:.60}、あなたの出力 {got!r:.60}。"


def check_against_reference(
    fn: Callable,
    reference: Callable,
    cases: Sequence[Case],
    *,
    hint: str,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    properties: Iterable[tuple[str, Callable[[Callable], str | None]]] = (),
    diagnoses: Iterable[tuple[Callable[..., object], str]] = (),
) -> Result:
    """``fn`` を各ケースで ``reference`` と比べ、性質チェックも行って :class:`Result` を返す。

    ``diagnoses`` は「よくある誤りの実装」と説明の組。参照と合わなかったケースで読者の出力が
    その実装の出力と一致すれば、その説明を添える (例: 「√d_k で割っていないようです」)。
    合わなかったすべてのケースで一致する誤りがあれば、その説明だけを添える (n=1 のように
    いくつもの誤りが同じ出力になるケースで、的外れな説明が混ざらないように)。NaN は同じ位置に
    あれば一致とみなす (マスクの向きを逆にした実装は、すべて隠された行が NaN になる)。

    部分点は「誤りを見分けられる項目」だけで数える: よくある誤りの実装でも通ってしまう項目
    (例: n=1 の因果マスクは上下逆の triu でも通る) は、通っても得点にならない。
    全項目を通ったときだけ正解 (1 点) で、得点になる項目を 1 つも通らなければ不正解 (0 点)。
    """
    failures: list[str] = []
    explained: list[str] = []        # 読者のコードが出したよくあるエラーの日本語の説明
    uncounted: list[str] = []        # 通ったが、よくある誤りの実装でも通るので数えない項目
    passed = 0      # 通った項目
    earned = 0      # 通った項目のうち、誤りを見分けられる項目
    diagnoses = list(diagnoses)
    matches = [0] * len(diagnoses)   # 参照と合わなかったケースのうち、各誤りの実装と一致した数
    mismatched = 0                   # 実行できたが参照と合わなかったケースの数
    total = len(cases)
    for case in cases:
        args, kwargs = case.cloned()
        expected = reference(*args, **kwargs)
        telling = not any(
            _passes(wrong_impl, case, expected, atol, rtol) for wrong_impl, _ in diagnoses
        )
        args, kwargs = case.cloned()
        try:
            with _time_limit(TIME_LIMIT):
                got = fn(*args, **kwargs)
        except CodeTimeout:
            failures.append(
                f"【{case.label}】{TIME_LIMIT:g} 秒以内に終わりませんでした "
                "(無限ループになっていませんか?)。"
            )
            continue
        except Exception as exc:  # noqa: BLE001 - 読者のコードの失敗はすべて説明に変える
            failures.append(f"【{case.label}】実行中にエラー: {_user_error(exc)}")
            why = _explain_error(exc)
            if why and why not in explained:
                explained.append(why)
            continue
        orig_args, orig_kwargs = case.cloned()
        mutated = any(isinstance(a, torch.Tensor) and not torch.equal(a, b)
                      for a, b in zip(args, orig_args) if isinstance(b, torch.Tensor))
        problem = wrong_value = _compare(got, expected, atol, rtol)
        if problem is None and mutated:
            problem = (
                "入力のテンソルをその場で書き換えています "
                "(呼び出し元のデータが変わってしまいます)。"
            )
        if problem:
            failures.append(f"【{case.label}】{problem}")
            mismatched += bool(wrong_value)
            for i, (wrong_impl, _why) in enumerate(diagnoses if wrong_value else ()):
                try:
                    a, kw = case.cloned()
                    matches[i] += _same(got, wrong_impl(*a, **kw), atol, rtol)
                except Exception:  # noqa: BLE001 - 診断は補助なので失敗しても無視
                    pass
        else:
            passed += 1
            earned += telling
            if not telling:
                uncounted.append(case.label)
    for label, prop in properties:
        total += 1
        telling = not any(_property_holds(prop, wrong_impl) for wrong_impl, _ in diagnoses)
        try:
            with _time_limit(TIME_LIMIT):
                problem = prop(fn)
        except CodeTimeout:
            problem = f"{TIME_LIMIT:g} 秒以内に終わりませんでした。"
        except Exception as exc:  # noqa: BLE001
            problem = f"実行中にエラー: {_user_error(exc)}"
        if problem:
            failures.append(f"【{label}】{problem}")
        else:
            passed += 1
            earned += telling
            if not telling:
                uncounted.append(label)
    if not failures:
        return Result("correct", 1.0, f"○ 正解 (全 {total} 項目を通過)", [])
    failures = _merge_same(failures)
    status = "partial" if earned else "incorrect"
    mark = "△ 一部正解" if earned else "× 不正解"
    note = "" if earned == passed else (
        f"、得点になるのは {earned} 項目。誤った実装でも通る項目は得点に数えません"
    )
    everywhere = [why for (_, why), m in zip(diagnoses, matches) if mismatched and m == mismatched]
    # 一部の項目でだけ誤りの実装と同じだったときは、確かではないことを添える (その項目の
    # 出力がたまたま一致しただけで、原因は別のことがある)
    partly = [] if everywhere else [
        f"{why} (ただし、誤りの項目の一部でだけこの誤りと同じ出力でした。別の原因かもしれません)"
        for (_, why), m in zip(diagnoses, matches) if m]
    advice = [f"考えられる原因: {why}" for why in everywhere + partly + explained]
    scoring = [] if earned == passed else [
        f"得点の付け方: 通った項目のうち{''.join(f'【{u}】' for u in uncounted)}は、"
        "よくある誤りの実装でも通ってしまうので数えません (通っても、正しく書けた証拠に"
        f"ならないため)。得点 = 誤りを見分けられる項目のうち通った {earned} 個 ÷ 全 {total} 項目"
        f" = {earned / total:.2f} 点です。"
    ]
    return Result(status, earned / total, f"{mark} ({passed}/{total} 項目を通過{note})",
                  advice + failures + scoring + [f"ヒント: {hint}"])


def _same(got: Any, wrong: Any, atol: float, rtol: float) -> bool:
    """読者の出力が、よくある誤りの実装の出力と同じか (NaN は同じ位置にあれば同じとみなす)。"""
    if (
        isinstance(got, torch.Tensor) and isinstance(wrong, torch.Tensor)
        and got.is_floating_point() and got.shape == wrong.shape and got.dtype == wrong.dtype
        and got.device == wrong.device
    ):
        return torch.allclose(got, wrong, atol=atol, rtol=rtol, equal_nan=True)
    return _compare(got, wrong, atol, rtol) is None


def _passes(wrong_impl: Callable, case: Case, expected: Any, atol: float, rtol: float) -> bool:
    """よくある誤りの実装が、このケースを通ってしまうか。

    通るなら、このケースでは誤りを見分けられない。
    """
    try:
        a, kw = case.cloned()
        return _compare(wrong_impl(*a, **kw), expected, atol, rtol) is None
    except Exception:  # noqa: BLE001 - 誤りの実装が落ちるなら、このケースは見分けられる
        return False


def _property_holds(prop: Callable[[Callable], str | None], wrong_impl: Callable) -> bool:
    try:
        return prop(wrong_impl) is None
    except Exception:  # noqa: BLE001
        return False


def _merge_same(failures: list[str]) -> list[str]:
    """同じ理由で落ちたケースを 1 行にまとめる (「【A・B】理由」)。"""
    groups: dict[str, list[str]] = {}
    for f in failures:
        label, _, problem = f[1:].partition("】")
        groups.setdefault(problem, []).append(label)
    return [f"【{'・'.join(labels)}】{problem}" for problem, labels in groups.items()]


def grade_code(question: dict[str, Any], fn: Any) -> Result:
    """コード課題を採点する。``fn`` は読者が定義した関数そのもの。"""
    name = question["function_name"]
    if fn is None:
        return Result(
            "invalid", 0.0,
            f"関数 {name} がまだ定義されていません。上のコードセルで def {name}(...) "
            "を書いて実行してから採点してください。",
        )
    if not callable(fn):
        return Result(
            "invalid", 0.0,
            f"関数そのもの ({name}) を渡してください。{name}(...) と呼び出した結果ではありません。"
            f"受け取った値: {describe_value(fn)}",
        )
    # bank.py が「章の採点モジュール:関数」に解決済み
    mod_name, _, func_name = question["checker"].partition(":")
    checker = getattr(importlib.import_module(mod_name), func_name)
    try:
        return checker(fn)
    except Exception as exc:  # noqa: BLE001 - 採点側の不具合でもカーネルは止めない
        return Result(
            "error", 0.0,
            "採点の途中で予期しないエラーが起きました (本の不具合の可能性があります): "
            f"{type(exc).__name__}: {exc}",
        )
