"""A-5「因果マスクと自己回帰型生成」のコード課題の採点関数 (``a5.yaml`` の ``checker:`` が名指し)。

どれも読者の関数 ``fn`` を受け取り、:func:`~llmbook.quiz.codecheck.check_against_reference` で
参照実装と比べ、よくある誤りの実装と一致すればその説明を添える。因果アテンションの参照は
A-3 の ``scaled_dot_product_attention`` に A-2 の ``causal_mask`` を渡したもの、top-p の参照は
A-5 の ``top_p_filter`` そのもの。これらが PyTorch の ``is_causal=True`` や章の手計算の例と
一致することは tests/test_a5_quiz.py で確かめる。
"""

from __future__ import annotations

import math

import torch

from .codecheck import Case, check_against_reference, seeded_randn

__all__ = [
    "reference_causal_attention",
    "check_causal_attention",
    "reference_top_p_filter",
    "check_top_p_filter",
]

NEG_INF = float("-inf")


# ---------------------------------------------------------------------------
# 課題 1: 因果マスクつきのアテンション
# ---------------------------------------------------------------------------


def reference_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A-3 の scaled_dot_product_attention に A-2 の causal_mask (True = 参照してよい) を渡す。

    q, k, v: (B, h, T, d_k) → (B, h, T, d_k)。
    """
    from llmbook.chapters.a2 import causal_mask
    from llmbook.chapters.a3 import scaled_dot_product_attention

    mask = causal_mask(q.shape[-2]).to(q.device)                  # (T, T) 自分と過去が True
    return scaled_dot_product_attention(q, k, v, mask)[0]


def _causal_variant(*, mask: str = "tril", scale: str = "sqrt", fill: str = "-inf",
                    softmax_dim: int = -1):
    """因果アテンション。既定の引数では正しく、引数ごとによくある誤りになる。

    mask: "tril" (正しい)、"triu" (上下逆)、"strict" (tril(-1): 対角を含まない)、
    "inverted" (許す所を −∞ で埋める)、"none" (マスクなし)。scale: "sqrt" / "none" / "d_k"。
    fill: "-inf" (正しい)、"zero" (0 で埋める)、"after" (softmax の後に 0 を掛け、割り直さない)。
    """

    def impl(q, k, v):
        T, d_k = q.shape[-2], q.shape[-1]
        ones = torch.ones(T, T, dtype=torch.bool, device=q.device)
        allowed = {"tril": ones.tril(), "triu": ones.triu(), "strict": ones.tril(-1),
                   "inverted": ~ones.tril(), "none": ones}[mask]
        scores = q @ k.transpose(-2, -1) / {"sqrt": math.sqrt(d_k), "none": 1.0, "d_k": d_k}[scale]
        if fill == "after":
            return (scores.softmax(dim=softmax_dim) * allowed) @ v     # 割り直さない
        scores = scores.masked_fill(~allowed, NEG_INF if fill == "-inf" else 0.0)
        return scores.softmax(dim=softmax_dim) @ v                     # (B, h, T, d_k)

    return impl


#: よくある誤り (因果アテンション) と、その説明。
CAUSAL_MISTAKES = [
    (
        _causal_variant(mask="triu"),
        "マスクが上下逆のようです (tril ではなく triu)。これでは各位置が自分と「後ろ」(未来) "
        "だけを見ます。位置 i が見てよいのは j ≤ i (自分と過去) なので、"
        "torch.ones(T, T, dtype=torch.bool).tril() が True の所を残します。",
    ),
    (
        _causal_variant(scale="none"),
        "スコアを √d_k で割っていないようです。q @ k.transpose(-2, -1) を "
        "math.sqrt(d_k) (d_k = q.shape[-1]) で割ってから、マスクと softmax をかけます。",
    ),
    (
        _causal_variant(scale="d_k"),
        "スコアを d_k で割っているようです。割るのは d_k の平方根 math.sqrt(d_k) です "
        "(内積の標準偏差が √d_k 倍になるのを戻すため。A-3 §1)。",
    ),
    (
        _causal_variant(fill="after"),
        "softmax の後で未来の重みに 0 を掛け、割り直していないようです。これでは各行の重みの和が "
        "1 より小さくなります。softmax の前に、未来のスコアを float(\"-inf\") で埋めます "
        "(そうすれば、見てよい位置だけで和が 1 になります)。",
    ),
    (
        _causal_variant(fill="zero"),
        "未来のスコアを −∞ ではなく 0 で埋めているようです。exp(0) = 1 なので、未来にも正の"
        "重みが残り、未来のバリューが混ざります。masked_fill(~allowed, float(\"-inf\")) と "
        "−∞ で埋めます。",
    ),
    (
        _causal_variant(mask="strict"),
        "マスクが対角 (自分自身) を含んでいないようです (tril(-1) など)。位置 0 は参照できるキーが"
        "1 つもなくなり、−∞ だけの行の softmax が 0/0 で NaN になります。"
        "対角を含めた tril() (j ≤ i) を使います。",
    ),
    (
        _causal_variant(mask="inverted"),
        "マスクの True と False を逆に使っているようです (masked_fill(allowed, …) のように、"
        "見てよい所を −∞ にしています)。最後の位置は参照できるキーがなくなり NaN になります。"
        "−∞ で埋めるのは ~allowed (未来) の方です。PyTorch の bool の attn_mask (True = 見ない) "
        "と、この本の約束 (True = 見てよい) は逆です。",
    ),
    (
        _causal_variant(mask="none"),
        "マスクをかけていないようです (ふつうの自己注意になっています)。softmax の前に、"
        "j > i (未来) のスコアを float(\"-inf\") で埋めます。",
    ),
    (
        _causal_variant(softmax_dim=-2),
        "softmax をとる次元が違うようです (dim=-2 で、キーではなくクエリの方向に足して 1 "
        "になっています)。各クエリの行 (最後の次元、dim=-1) で正規化します。",
    ),
]


def _causal_cases() -> list[Case]:
    r = seeded_randn(5)

    def qkv(*shape):
        return r(*shape), r(*shape), r(*shape)

    return [
        Case("(B, h, T, d_k) = (2, 3, 6, 8)", *qkv(2, 3, 6, 8)),
        Case("(B, h, T, d_k) = (1, 4, 5, 16)", *qkv(1, 4, 5, 16)),
        Case("(B, h, T, d_k) = (3, 1, 7, 4) (ヘッド 1 つ)", *qkv(3, 1, 7, 4)),
        Case("float64 の (1, 2, 4, 8)", *(t.double() for t in qkv(1, 2, 4, 8))),
    ]


def check_causal_attention(fn) -> object:
    """A-5 のコード課題 1: ``my_causal_attention(q, k, v)`` の採点。"""

    def ignores_the_future(f):
        # 位置 3 以降の q・k・v を変えても、位置 0〜2 の出力は変わらない
        r = seeded_randn(6)
        q, k, v = r(1, 2, 6, 8), r(1, 2, 6, 8), r(1, 2, 6, 8)
        q2, k2, v2 = q.clone(), k.clone(), v.clone()
        for t in (q2, k2, v2):
            t[:, :, 3:] = r(1, 2, 3, 8)
        a, b = f(q, k, v), f(q2, k2, v2)
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != q.shape:
            return "(1, 2, 6, 8) の Tensor が返らないので、未来を見ていないか確かめられません。"
        if not torch.allclose(a[:, :, :3], b[:, :, :3], atol=1e-6, equal_nan=True):
            return ("位置 3 以降の q・k・v を変えると、位置 0〜2 の出力が変わりました "
                    "(未来が漏れています)。")
        return None

    return check_against_reference(
        fn, reference_causal_attention, _causal_cases(),
        hint="(1) scores = q @ k.transpose(-2, -1) / math.sqrt(d_k) で (B, h, T, T) → "
        "(2) allowed = torch.ones(T, T, dtype=torch.bool).tril() (位置 i は j ≤ i が True) → "
        "(3) scores.masked_fill(~allowed, float(\"-inf\")) → (4) softmax(dim=-1) @ v。",
        properties=[("未来の q・k・v を変えても過去の出力は同じ", ignores_the_future)],
        diagnoses=CAUSAL_MISTAKES,
    )


# ---------------------------------------------------------------------------
# 課題 2: top-p (核サンプリング) のフィルター
# ---------------------------------------------------------------------------


def reference_top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """A-5 §3 の ``top_p_filter`` そのもの (累積が p に届くまでを残し、ほかを −∞ に)。"""
    from llmbook.chapters.a5 import top_p_filter

    return top_p_filter(logits, p)


def _top_p_variant(*, sort: str = "desc", rule: str = "before", source: str = "probs",
                   scatter: bool = True, out: str = "logits"):
    """top-p のフィルター。既定の引数では正しく、引数ごとによくある誤りになる。

    sort: "desc" / "asc" (昇順) / "none" (並べ替えない)。rule: "before" (自分より前の累積が p
    未満なら残す、正しい) / "cumsum" (自分を含めた累積が p 未満だけ残す) / "each" (1 つ 1 つの
    確率が p 以上だけ残す)。source: "probs" / "logits" (softmax を忘れてロジットを足す)。
    scatter=False なら並べた順の印を元の順に戻さずに使う。out: "logits" / "probs" (確率、外した所は
    0) / "renorm" (割り直した確率) / "sorted" (並べた順のロジットを返す)。
    """

    def impl(logits, p):
        values = logits.softmax(dim=-1) if source == "probs" else logits
        if sort == "none":
            order = torch.arange(values.shape[-1]).expand_as(values)
            ranked = values
        else:
            ranked, order = values.sort(dim=-1, descending=sort == "desc")
        if rule == "before":
            drop = ranked.cumsum(dim=-1) - ranked >= p
        elif rule == "cumsum":
            drop = ranked.cumsum(dim=-1) >= p
        else:
            drop = ranked < p
        if out == "sorted":
            return logits.gather(-1, order).masked_fill(drop, NEG_INF)
        if scatter:
            drop = torch.zeros_like(drop).scatter(-1, order, drop)      # 元の ID の順へ
        if out == "logits":
            return logits.masked_fill(drop, NEG_INF)
        probs = logits.softmax(dim=-1).masked_fill(drop, 0.0)
        return probs / probs.sum(dim=-1, keepdim=True) if out == "renorm" else probs

    return impl


#: よくある誤り (top-p) と、その説明。
TOP_P_MISTAKES = [
    (
        _top_p_variant(rule="cumsum"),
        "自分を含めた累積が p 未満のトークンだけを残しているようです (cumsum < p)。これでは "
        "累積を p に届かせるトークンが外れ、いちばん高い確率が p を超える分布では候補が 1 つも"
        "なくなります。残すのは「自分より前 (高い方) の累積が p 未満」のトークン、つまり "
        "cumsum − probs < p です。",
    ),
    (
        _top_p_variant(rule="each"),
        "1 つ 1 つの確率を p と比べているようです (probs >= p だけを残す)。top-p は、確率の高い順に"
        "足した「累積」が p に届くまでを残します。",
    ),
    (
        _top_p_variant(sort="none"),
        "確率を高い順に並べずに、ID の順のまま累積をとっているようです。"
        "probs.sort(dim=-1, descending=True) で高い順に並べてから cumsum します。",
    ),
    (
        _top_p_variant(sort="asc"),
        "確率を低い順 (昇順) に並べているようです。これでは確率の低いトークンから残ります。"
        "sort(dim=-1, descending=True) で高い順に並べます。",
    ),
    (
        _top_p_variant(source="logits"),
        "softmax をとらずに、ロジットのまま累積をとっているようです。p と比べる累積は確率の和です。"
        "logits.softmax(dim=-1) を並べて cumsum します。",
    ),
    (
        _top_p_variant(scatter=False),
        "高い順に並べたときの「外す印」を、元の ID の順に戻さずにロジットに当てているようです。"
        "印は並べた順 (order) のものなので、drop.scatter(-1, order, drop) や "
        "torch.zeros_like(drop).scatter(-1, order, drop) で元の順に戻してから masked_fill します。",
    ),
    (
        _top_p_variant(out="sorted"),
        "並べ替えた順のロジットを返しているようです。戻り値は入力と同じ ID の順にします "
        "(位置 i は、いつもトークン i のロジット)。外す印を元の順に戻して、元の logits を "
        "masked_fill します。",
    ),
    (
        _top_p_variant(out="probs"),
        "ロジットではなく確率 (外したトークンは 0) を返しているようです。戻り値はロジットの"
        "ままにし、外すトークンを float(\"-inf\") にします (次の softmax で確率 0 になります)。",
    ),
    (
        _top_p_variant(out="renorm"),
        "割り直した確率を返しているようです。割り直しは、この後の softmax がしてくれます。"
        "戻り値はロジットのままにし、外すトークンだけを float(\"-inf\") にします。",
    ),
]


#: 手で作った 5 トークンの分布 (章の §3 と同じ)。ID 0〜4 の確率。
HAND_PROBS = (0.05, 0.30, 0.10, 0.40, 0.15)


def _top_p_cases() -> list[Case]:
    r = seeded_randn(7)
    hand = torch.tensor(HAND_PROBS).log()
    return [
        Case("章の 5 トークンの分布、p = 0.8", hand, 0.8),
        Case("(8, 50) のロジット、p = 0.9", 2 * r(8, 50), 0.9),
        Case("(2, 3, 100) のロジット、p = 0.5", 3 * r(2, 3, 100), 0.5),
        Case("尖った分布 (4, 20)、p = 0.3", 6 * r(4, 20), 0.3),
        Case("float64 の (3, 30)、p = 0.95", r(3, 30).double(), 0.95),
        Case("(5, 40) のロジット、p = 1 (すべて残る)", r(5, 40), 1.0),
    ]


def _huge_negative_as_inf(fn):
    """外すトークンを −1e9 などの大きな負の数にした答えも、−∞ と同じに扱う (次の softmax で
    確率がちょうど 0 になるので、選ばれるトークンは同じ)。"""

    def wrapped(logits, p):
        out = fn(logits, p)
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out is not logits:
            out = out.masked_fill(out < -1e4, NEG_INF)
        return out

    wrapped.__name__ = getattr(fn, "__name__", "my_top_p_filter")
    return wrapped


def check_top_p_filter(fn) -> object:
    """A-5 のコード課題 2: ``my_top_p_filter(logits, p)`` の採点。"""
    if callable(fn):
        fn = _huge_negative_as_inf(fn)
    return check_against_reference(
        fn, reference_top_p_filter, _top_p_cases(),
        hint="(1) probs, order = logits.softmax(dim=-1).sort(dim=-1, descending=True) → "
        "(2) before = probs.cumsum(dim=-1) - probs (自分より前の累積) → (3) drop = before >= p → "
        "(4) drop を scatter(-1, order, drop) で元の ID の順に戻す → "
        "(5) logits.masked_fill(drop, float(\"-inf\"))。",
        diagnoses=TOP_P_MISTAKES,
    )
