"""A-3「マルチヘッドアテンション」のコード課題の採点関数 (``a3.yaml`` の ``checker:`` が名指し)。

どれも読者の関数 ``fn`` を受け取り、:func:`~llmbook.quiz.codecheck.check_against_reference` で
参照実装と比べ、よくある誤りの実装と一致すればその説明を添える。マルチヘッドアテンションの
参照は PyTorch の ``nn.MultiheadAttention`` そのもの (重みを写して使う)。ヘッドの分割と連結の
参照が A-3 の ``split_heads`` / ``merge_heads`` と一致することは tests/test_a3_quiz.py で確かめる。
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .codecheck import Case, check_against_reference, seeded_randn

__all__ = [
    "reference_split_heads",
    "check_split_heads",
    "reference_merge_heads",
    "check_merge_heads",
    "reference_multi_head_attention",
    "check_multi_head_attention",
]


# ---------------------------------------------------------------------------
# 課題 1: ヘッドに分ける
# ---------------------------------------------------------------------------


def reference_split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, d) → (B, h, T, d // h) の参照実装。ヘッド i は最後の次元の i 番目の d_k 個。"""
    B, T, d = x.shape
    return x.view(B, T, n_heads, d // n_heads).transpose(1, 2)


def _split_view_only(x, n_heads):
    B, T, d = x.shape
    return x.view(B, n_heads, T, d // n_heads)            # 形だけ合わせる (トークンが混ざる)


def _split_no_transpose(x, n_heads):
    B, T, d = x.shape
    return x.view(B, T, n_heads, d // n_heads)            # (B, T, h, d_k) のまま


def _split_wrong_transpose(x, n_heads):
    B, T, d = x.shape
    return x.view(B, T, n_heads, d // n_heads).transpose(2, 3)   # (B, T, d_k, h)


def _split_interleaved(x, n_heads):
    B, T, d = x.shape
    return x.view(B, T, d // n_heads, n_heads).permute(0, 3, 1, 2)   # h 個おきに配る


def check_split_heads(fn) -> object:
    """A-3 のコード課題 1: ``my_split_heads(x, n_heads)`` の採点。"""
    r = seeded_randn(0)
    cases = [
        Case("(B, T, d) = (2, 5, 12)、h = 3", r(2, 5, 12), 3),
        Case("(B, T, d) = (3, 7, 16)、h = 4", r(3, 7, 16), 4),
        Case("(B, T, d) = (1, 4, 8)、h = 2", r(1, 4, 8), 2),
        Case("h = 1 (ヘッド 1 つ)", r(2, 3, 6), 1),
    ]
    return check_against_reference(
        fn, reference_split_heads, cases,
        hint="x.view(B, T, h, d_k) で最後の次元を (h, d_k) に分け、transpose(1, 2) で h を "
        "2 番目の次元へ移します。ヘッド i は各トークンの成分 i·d_k〜(i+1)·d_k − 1 を受け持ちます。",
        diagnoses=[
            (
                _split_view_only,
                "形は (B, h, T, d_k) ですが、x.view(B, h, T, d_k) で直接切り直しています。"
                "メモリ上の並びは (B, T, d) のままなので、1 つのヘッドの「トークン」に別々の"
                "トークンの成分が混ざります。view(B, T, h, d_k) で分けてから transpose(1, 2) "
                "で h と T を入れ替えます。",
            ),
            (
                _split_no_transpose,
                "(B, T, h, d_k) のままです。transpose(1, 2) で h を 2 番目の次元へ移し、"
                "(B, h, T, d_k) にします (ヘッドをバッチのように並べて、まとめて計算するため)。",
            ),
            (
                _split_wrong_transpose,
                "入れ替える次元が違います (h と d_k を入れ替えています)。view(B, T, h, d_k) の後は "
                "transpose(1, 2) で T と h を入れ替えます。",
            ),
            (
                _split_interleaved,
                "ヘッドへの配り方が違います: view(B, T, d_k, h) で分けたので、ヘッド i が成分 i, "
                "i + h, i + 2h, … を受け持っています。ヘッド i が受け持つのは連続した d_k 個 "
                "(view(B, T, h, d_k)) です。",
            ),
        ],
    )


# ---------------------------------------------------------------------------
# 課題 2: ヘッドを連結する
# ---------------------------------------------------------------------------


def reference_merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, d_k) → (B, T, h·d_k) の参照実装 (split_heads の逆)。"""
    B, h, T, d_k = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d_k)


def _merge_no_transpose(x):
    B, h, T, d_k = x.shape
    return x.reshape(B, T, h * d_k)                        # 形だけ合わせる (トークンが混ざる)


def _merge_wrong_order(x):
    B, h, T, d_k = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, h * d_k)    # 成分が h 個おきに並ぶ


def _merge_not_flat(x):
    return x.transpose(1, 2)                               # (B, T, h, d_k) のまま


#: transpose せずに連結したときの説明 (課題 2 と課題 3 で同じ文を、変数名だけ変えて使う)
MERGE_NO_TRANSPOSE = (
    "transpose せずに reshape(B, T, {flat}) しています。形は合っても、"
    "メモリ上の並びは (B, h, T, d_k) のままなので、1 つのトークンの行に別々の"
    "トークンの成分が混ざります。先に {x}.transpose(1, 2) で (B, T, h, d_k) にします。"
)


def check_merge_heads(fn) -> object:
    """A-3 のコード課題 2: ``my_merge_heads(x)`` の採点。"""
    r = seeded_randn(1)
    cases = [
        Case("(B, h, T, d_k) = (2, 3, 5, 4)", r(2, 3, 5, 4)),
        Case("(B, h, T, d_k) = (1, 4, 6, 2)", r(1, 4, 6, 2)),
        Case("(B, h, T, d_k) = (3, 2, 7, 8)", r(3, 2, 7, 8)),
    ]
    return check_against_reference(
        fn, reference_merge_heads, cases,
        hint="transpose(1, 2) で (B, T, h, d_k) に戻してから reshape(B, T, h * d_k) で "
        "最後の 2 つを 1 つにまとめます。transpose した Tensor はメモリ上で連続でないので、"
        "view ではなく reshape (または .contiguous().view) を使います。",
        diagnoses=[
            (_merge_no_transpose, MERGE_NO_TRANSPOSE.format(flat="h * d_k", x="x")),
            (
                _merge_wrong_order,
                "成分の並び順が違います: ヘッドの番号が内側になり、成分が h 個おきに並んでいます。"
                "ヘッド 0 の d_k 個、ヘッド 1 の d_k 個、… と続けて並べます "
                "(transpose(1, 2) の後に reshape)。",
            ),
            (
                _merge_not_flat,
                "(B, T, h, d_k) のままです。最後の 2 つの次元を reshape(B, T, h * d_k) で "
                "1 つにまとめます。",
            ),
        ],
    )


# ---------------------------------------------------------------------------
# 課題 3: マルチヘッドアテンションの順伝播
# ---------------------------------------------------------------------------


def reference_multi_head_attention(
    x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
    w_o: torch.Tensor, n_heads: int, mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """PyTorch の ``nn.MultiheadAttention`` (バイアスなし) に重みを写して計算する参照。

    x: (B, T, d)、w_*: (d, d) (nn.Linear と同じく q = x @ w_q.T)。mask: None か bool の (T, T) で
    「True = 参照してよい」(PyTorch の bool の attn_mask は逆の約束なので ~mask を渡す)。
    """
    d = x.shape[-1]
    with torch.random.fork_rng(devices=[]):   # 初期化の乱数で読者の乱数の流れを変えない
        mha = nn.MultiheadAttention(d, n_heads, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q, w_k, w_v]))   # (3d, d)
        mha.out_proj.weight.copy_(w_o)
        out, _ = mha(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=False)
    return out


def _mha_variant(*, scale: str = "d_k", softmax_dim: int = -1, mask_use: str = "ok",
                 out_proj: bool = True, heads: bool = True, transpose_w: bool = True,
                 split: str = "ok"):
    """ゼロから書いたマルチヘッドアテンション。既定の引数では正しく、引数ごとによくある誤りになる。

    scale: "d_k" / "none" / "d_model"、mask_use: "ok" / "inverted" / "ignored"、
    heads=False なら分けずに 1 つのヘッド、transpose_w=False なら x @ w (転置なし)、
    split="view" ならヘッドの分割と連結を transpose なしの view/reshape で行い、
    split="merge" なら分割は正しく、連結だけを transpose なしの reshape で行う。
    """

    def impl(x, w_q, w_k, w_v, w_o, n_heads, mask=None):
        B, T, d = x.shape
        h = n_heads if heads else 1
        d_k = d // h
        proj = (lambda w: x @ w.T) if transpose_w else (lambda w: x @ w)

        def to_heads(t):                                   # (B, T, d) → (B, h, T, d_k)
            if split == "view":
                return t.reshape(B, h, T, d_k)     # transpose なし (トークンが混ざる)
            return t.view(B, T, h, d_k).transpose(1, 2)

        q, k, v = to_heads(proj(w_q)), to_heads(proj(w_k)), to_heads(proj(w_v))
        scores = q @ k.transpose(-2, -1)                   # (B, h, T, T)
        scores = scores / {"d_k": math.sqrt(d_k), "none": 1.0, "d_model": math.sqrt(d)}[scale]
        if mask is not None and mask_use != "ignored":
            scores = scores.masked_fill(mask if mask_use == "inverted" else ~mask, float("-inf"))
        out = scores.softmax(dim=softmax_dim) @ v          # (B, h, T, d_k)
        if split in ("view", "merge"):
            out = out.reshape(B, T, d)                     # transpose なし (トークンが混ざる)
        else:
            out = out.transpose(1, 2).reshape(B, T, d)
        if not out_proj:
            return out
        return out @ w_o.T if transpose_w else out @ w_o

    return impl


#: よくある誤り (マルチヘッドアテンション) と、その説明。
MHA_MISTAKES = [
    (
        _mha_variant(scale="none"),
        "スコアを √d_k で割っていないようです。q @ k.transpose(-2, -1) を math.sqrt(d_k) "
        "(d_k = d // n_heads) で割ります。",
    ),
    (
        _mha_variant(scale="d_model"),
        "スコアを √d_model で割っているようです。割るのは 1 つのヘッドの次元 d_k = d // n_heads "
        "の平方根です (内積は d_k 個の積の和だから)。",
    ),
    (
        _mha_variant(softmax_dim=-2),
        "softmax をとる次元が違うようです (dim=-2 で、キーではなくクエリの方向に足して 1 "
        "になっています)。各クエリの行 (最後の次元、dim=-1) で正規化します。",
    ),
    (
        _mha_variant(mask_use="inverted"),
        "mask の True と False を逆に使っているようです (masked_fill(mask, …))。この課題の mask は "
        "「True = 参照してよい」なので、-inf で埋めるのは ~mask (False) の位置です。"
        "nn.MultiheadAttention の bool の attn_mask (True = 参照しない) とは約束が逆です。",
    ),
    (
        _mha_variant(mask_use="ignored"),
        "mask を使っていないようです。スコアの mask が False の位置を -inf で埋めてから "
        "softmax をとります。",
    ),
    (
        _mha_variant(out_proj=False),
        "出力の射影 w_o を掛け忘れているようです。連結したヘッドの出力に最後に w_o を "
        "(x @ w_o.T の形で) 掛けて、ヘッドどうしの情報を混ぜます。",
    ),
    (
        _mha_variant(heads=False),
        "ヘッドに分けずに、d 次元のまま 1 つのアテンション (1 ヘッド) を計算しているようです。"
        "q・k・v を (B, n_heads, T, d_k) に分け、ヘッドごとに重みを計算します。",
    ),
    (
        _mha_variant(transpose_w=False),
        "重みを転置せずに x @ w_q と掛けているようです。nn.Linear と同じく x @ w_q.T "
        "(w_k・w_v・w_o も同じ) です。",
    ),
    (
        _mha_variant(split="view"),
        "ヘッドの分け方 (または連結のしかた) で transpose を忘れているようです。"
        "reshape(B, h, T, d_k) で直接切り直すとトークンが混ざります。"
        "view(B, T, h, d_k).transpose(1, 2) で分け、transpose(1, 2).reshape(B, T, d) で戻します。",
    ),
    (
        _mha_variant(split="merge"),
        "ヘッドの分け方は合っていますが、連結で " + MERGE_NO_TRANSPOSE.format(flat="d", x="out"),
    ),
]


def _mha_cases() -> list[Case]:
    r = seeded_randn(2)

    def w(d):
        return r(d, d) / math.sqrt(d)                     # nn.Linear の初期値くらいの大きさ

    def args(B, T, d):
        return (r(B, T, d), w(d), w(d), w(d), w(d))

    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    band = causal & ~torch.ones(6, 6, dtype=torch.bool).tril(-3)   # 自分と直前 2 つだけ
    return [
        Case("(B, T, d) = (2, 5, 16)、h = 4、マスクなし", *args(2, 5, 16), 4),
        Case("(B, T, d) = (2, 6, 32)、h = 4、因果マスク", *args(2, 6, 32), 4, mask=causal),
        Case("(B, T, d) = (1, 6, 64)、h = 8、直前 2 つまでのマスク", *args(1, 6, 64), 8, mask=band),
        Case("h = 1 (ヘッド 1 つ)、因果マスク", *args(2, 6, 8), 1, mask=causal),
    ]


def check_multi_head_attention(fn) -> object:
    """A-3 のコード課題 3: ``my_multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, mask)``。"""

    def ignores_the_future(f):
        # 因果マスクのもとでは、後ろのトークンを変えても前の位置の出力は変わらない
        r = seeded_randn(3)
        x, ws = r(1, 6, 16), [r(16, 16) / 4 for _ in range(4)]
        causal = torch.ones(6, 6, dtype=torch.bool).tril()
        x2 = x.clone()
        x2[:, 3:] = r(1, 3, 16)
        a, b = f(x, *ws, 4, mask=causal), f(x2, *ws, 4, mask=causal.clone())
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != x.shape:
            return "(1, 6, 16) の Tensor が返らないので、未来を見ていないか確かめられません。"
        if not torch.allclose(a[:, :3], b[:, :3], atol=1e-5, equal_nan=True):
            return "因果マスクを渡しても、位置 3 以降を変えると位置 0〜2 の出力が変わりました。"
        return None

    return check_against_reference(
        fn, reference_multi_head_attention, _mha_cases(),
        hint="(1) q = x @ w_q.T などで射影 → (2) view(B, T, h, d_k).transpose(1, 2) で"
        "ヘッドに分ける → (3) q @ k.transpose(-2, -1) / √d_k → (4) mask が False の所を -inf に → "
        "(5) softmax(dim=-1) @ v → (6) transpose(1, 2).reshape(B, T, d) で連結 → (7) @ w_o.T。"
        "落ちた項目と「考えられる原因」から、どの段がずれているかを探します。",
        properties=[("因果マスクで未来を見ない", ignores_the_future)],
        diagnoses=MHA_MISTAKES,
    )
