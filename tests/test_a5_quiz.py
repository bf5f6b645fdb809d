"""A-5 の問題バンクとコード課題の採点関数のテスト。

バンクの数値は式と A-5 の実装 (gpt・top_p_filter・KVCache など) から計算し直し、説明の主張
(温度と順位、top-p の候補の数、キャッシュが正確な理由) は小さな実験で確かめる。採点関数は
正解を受け入れ、よくある誤りのそれぞれに 0 点とその誤り専用の説明を返すことを確かめる。
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import (
    assert_auto_questions_grade,
    assert_code_solutions_pass_and_starters_fail,
    assert_mistake_gets_zero_and_its_diagnosis,
    correct_response,
    correct_texts,
    find_question,
)
from llmbook.chapters.a2 import causal_mask
from llmbook.chapters.a3 import scaled_dot_product_attention
from llmbook.chapters.a5 import (
    CachedMultiHeadAttention,
    apply_temperature,
    generate,
    gpt,
    greedy,
    new_cache,
    sample_next,
    top_k_filter,
    top_p_filter,
)
from llmbook.quiz import ProgressStore, grade, load_bank
from llmbook.quiz import checks_a5 as C
from llmbook.quiz.html import render_quiz_html
from llmbook.quiz.widgets import QuizWidget

V = 745                                    # この本の語彙の大きさ (A-1 のコーパス)
HAND = torch.tensor(C.HAND_PROBS)          # 章の §3 の手で作った 5 トークンの分布


@pytest.fixture(scope="module")
def bank():
    return load_bank("a5", reload=True)


pytestmark = pytest.mark.usefixtures("one_thread")   # 小さな行列ばかり: 1 スレッドで


def _kept(z: torch.Tensor) -> list:
    return (z > float("-inf")).nonzero().flatten().tolist()


def _hint_values(q) -> set:
    return {h["value"] for h in q["hints"]}


def _assert_hints_shown(q):
    for h in q["hints"]:
        r = grade(q, f"{h['value']:g}")
        assert not r.correct and h["why"] in r.details, (q["id"], h["value"])


# ---------------------------------------------------------------- バンクの形と採点


def test_bank_has_the_contracted_quizzes(bank):
    assert [q.id for q in bank.quizzes] == ["mask", "sampling", "kvcache", "gpt", "code"]
    types = [q["type"] for quiz in bank.quizzes for q in quiz.questions]
    assert {"matching", "single", "multi", "numeric", "ordering", "essay", "code"} <= set(types)
    assert types.count("essay") == 1
    assert [q["function_name"] for q in bank.quiz("code").questions] == [
        "my_causal_attention", "my_top_p_filter",
    ]


def test_every_auto_question_accepts_its_answer_and_rejects_a_wrong_one(bank):
    assert_auto_questions_grade(bank)
    for quiz in bank.quizzes:
        for q in quiz.questions:
            if q["type"] == "multi":                         # 全部に印を付けても 0 点
                right = sum(c["correct"] for c in q["choices"])
                assert len(q["choices"]) - right >= right, q["id"]
                assert grade(q, list(range(len(q["choices"])))).score == 0, q["id"]
                assert grade(q, correct_response(q)).score == 1, q["id"]


def test_choices_are_shuffled_without_tells(bank):
    """tests/test_bank.py の「長さ・先頭の位置で答えが分からない」規則を、A-5 にも当てる。"""
    singles = [q for qz in bank.quizzes for q in qz.questions if q["type"] == "single"]
    for q in singles:
        assert sorted(q["order"]) == list(range(len(q["choices"]))), q["id"]
    longest = [q["id"] for q in singles
               if len(next(c for c in q["choices"] if c["correct"])["text"])
               == max(len(c["text"]) for c in q["choices"])]
    assert len(longest) <= len(singles) / 3, longest
    first = [q["id"] for q in singles if q["choices"][q["order"][0]]["correct"]]
    assert len(first) <= sum(1 / len(q["choices"]) for q in singles) + 1, first


def test_every_option_explains_itself(bank):
    for quiz in bank.quizzes:
        for q in quiz.questions:
            for c in q.get("choices", []):
                assert len(c["why"]) >= 20, (q["id"], c["text"])
            for h in q.get("hints", []):
                assert len(h["why"]) >= 20, (q["id"], h["value"])


def test_essay_is_self_assessed_against_key_ideas(bank):
    q = find_question(bank, "gpt-essay")
    r = grade(q, {"text": "未来を隠すので、位置ごとに別の問題になる", "ticked": [0]})
    assert r.status == "self_assessed" and r.score == pytest.approx(1 / len(q["key_ideas"]))
    ideas = " ".join(q["key_ideas"])
    for words in ("位置 0〜t", "T 個", "写す", "逐次", "KV キャッシュ"):
        assert words in ideas, words


# ---------------------------------------------------------------- 因果マスク


def test_mask_item_is_the_chapter_mask(bank):
    T = 6
    i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    assert torch.equal(causal_mask(T), j <= i)
    assert correct_texts(find_question(bank, "mask-allow"))[0].startswith("j ≤ i")
    # 対角を外す (j < i) と位置 0 は参照できるキーがなく、softmax が NaN になる
    s = torch.randn(T, T).masked_fill(~(j < i), float("-inf"))
    assert torch.isnan(s.softmax(-1)[0]).all() and not torch.isnan(s.softmax(-1)[1:]).any()


def test_minus_infinity_gives_exact_zeros_and_zero_fill_does_not(bank):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 5, generator=g)
    allowed = causal_mask(5)
    w = s.masked_fill(~allowed, float("-inf")).softmax(-1)
    assert (w[~allowed] == 0).all() and torch.allclose(w.sum(-1), torch.ones(5))
    assert torch.tensor(-1e9).exp().item() == 0.0           # −10⁹ でも float32 では 0
    assert (s.masked_fill(~allowed, 0.0).softmax(-1)[~allowed] > 0).all()   # 0 で埋めると残る
    after = s.softmax(-1) * allowed                          # 掛けるだけでは和が 1 未満
    assert (after.sum(-1)[:-1] < 1 - 1e-3).all()
    assert "exp(−∞) = 0" in correct_texts(find_question(bank, "mask-zero"))[0]


def test_mask_conventions_match_pytorch(bank):
    T = 4
    allowed = causal_mask(T)
    pairs = {p["left"]: p["right"] for p in find_question(bank, "mask-conventions")["pairs"]}
    assert len(pairs) == 4
    float_mask = nn.Transformer.generate_square_subsequent_mask(T)
    assert torch.equal(float_mask == 0, allowed) and (float_mask[~allowed] == float("-inf")).all()
    assert torch.equal(~allowed, torch.ones(T, T, dtype=torch.bool).triu(1))   # 対角を含まない右上
    # nn.MultiheadAttention (bool、True = 参照しない) に ~mask を渡すと、この本の向きと一致
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(1, T, 8)
    ours = mha(x, x, x, attn_mask=~allowed)[0]
    theirs = mha(x, x, x, attn_mask=float_mask)[0]
    assert torch.allclose(ours, theirs, atol=1e-6)
    q, k, v = torch.randn(3, 1, 2, T, 4).unbind(0)
    assert torch.allclose(F.scaled_dot_product_attention(q, k, v, is_causal=True),
                          scaled_dot_product_attention(q, k, v, allowed)[0], atol=1e-6)
    # 向きを取り違えた (PyTorch の向きの) マスクは、この本の関数が日本語で止める (解説のとおり)
    with pytest.raises(ValueError, match="すべて False の行"):
        scaled_dot_product_attention(q, k, v, ~allowed)


def test_property_item_matches_the_model(bank):
    torch.manual_seed(0)
    model = gpt(V).eval()
    ids = torch.randint(1, V, (2, 16))
    changed = ids.clone()
    changed[:, 9:] = torch.randint(1, V, (2, 7))              # p = 8
    with torch.no_grad():
        a, b = model(ids), model(changed)
        unmasked = gpt(V, causal=False).eval()
        unmasked.load_state_dict(model.state_dict())
        leak = (unmasked(ids)[:, :9] - unmasked(changed)[:, :9]).abs().max().item()
    assert (a[:, :9] - b[:, :9]).abs().max().item() == 0       # ちょうど同じ
    assert (a[:, 9:] - b[:, 9:]).abs().max().item() > 1e-3     # 入れ替えた位置は変わる
    assert leak > 1e-3                                         # マスクがなければ漏れる
    right = correct_texts(find_question(bank, "mask-property"))[0]
    assert right.startswith("位置 0〜p のロジットはちょうど同じ")


def test_no_mask_item_says_only_what_the_chapter_asserts(bank):
    q = find_question(bank, "mask-nomask")
    right = correct_texts(q)
    # 測った値 (損失など) は問わず、向きだけを問う
    assert len(right) == 3 and all(re.search(r"\d\.\d", t) is None for t in right)
    wrong = [c["text"] for c in q["choices"] if not c["correct"]]
    assert any("NaN" in t for t in wrong)


def test_training_needs_the_mask_item(bank):
    right = correct_texts(find_question(bank, "mask-train-only"))[0]
    assert right.startswith("誤り。") and "T 個の位置" in right


# ---------------------------------------------------------------- 選び方


def test_top_p_numbers_come_from_the_chapter_function(bank):
    logits = HAND.log()
    kept = _kept(top_p_filter(logits, 0.8))
    q = find_question(bank, "samp-topp-count")
    assert len(kept) == q["answer"] == 3 and kept == [1, 3, 4]
    # ヒント: 累積が p に届く前で止める (2)、届いた後も足す (4)、最大だけ (1)、全部 (5)
    assert _hint_values(q) == {2, 4, 1, 5}
    assert len(_kept(top_p_filter(logits, 0.96))) == 5
    assert len(_kept(top_p_filter(logits, 0.94))) == 4
    _assert_hints_shown(q)

    renorm = top_p_filter(logits, 0.8).softmax(-1)
    q = find_question(bank, "samp-topp-renorm")
    assert renorm[3].item() == pytest.approx(q["answer"], abs=1e-6)
    assert q["answer"] == pytest.approx(0.40 / 0.85)
    assert sorted(_hint_values(q)) == pytest.approx(sorted([0.4, 0.5, 0.4 / 0.7, 1 / 3]),
                                                    abs=1e-6)
    _assert_hints_shown(q)
    for qid, text in (("samp-topp-renorm", "0.471"), ("samp-topp-renorm", "47.1%")):
        assert grade(find_question(bank, qid), text).correct
    assert f"{0.30 / 0.85:.3f}" in q["explanation"] and f"{0.15 / 0.85:.3f}" in q["explanation"]


def test_temperature_claims():
    g = torch.Generator().manual_seed(1)
    z = 2 * torch.randn(20, 50, generator=g)
    temps = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 50.0]
    ent = [torch.special.entr(apply_temperature(z, t).softmax(-1)).sum(-1) for t in temps]
    for a, b in zip(ent, ent[1:]):                          # 温度とともにエントロピーは増える
        assert (a <= b + 1e-6).all()
    assert (ent[-1] < math.log(50)).all() and (ent[-1] > math.log(50) - 0.05).all()
    for t in temps:                                         # 順位は変わらない
        assert torch.equal(apply_temperature(z, t).argsort(-1), z.argsort(-1))
        assert torch.equal(top_k_filter(apply_temperature(z, t), 5) > float("-inf"),
                           top_k_filter(z, 5) > float("-inf"))
    top = apply_temperature(z, 0.001).softmax(-1).max(-1)    # τ → 0 で貪欲法
    assert (top.values > 0.999).all() and torch.equal(top.indices, greedy(z))
    p = apply_temperature(z, 0.5).softmax(-1)               # τ < 1 で最大の確率が上がる
    assert (p.max(-1).values > z.softmax(-1).max(-1).values).all()
    with pytest.raises(ValueError, match="top_k=1"):
        apply_temperature(z, 0)


def test_lower_temperature_never_enlarges_the_nucleus(bank):
    g = torch.Generator().manual_seed(2)
    z = 3 * torch.randn(500, 40, generator=g)
    for p in (0.5, 0.8, 0.9, 0.95):
        n1 = (top_p_filter(z, p) > float("-inf")).sum(-1)
        n05 = (top_p_filter(apply_temperature(z, 0.5), p) > float("-inf")).sum(-1)
        assert (n05 <= n1).all() and (n05 < n1).any()
    assert correct_texts(find_question(bank, "samp-temp-topp"))[0].startswith("減るか、変わらない")


def test_top_k_and_top_p_on_peaked_and_flat_distributions(bank):
    peaked = torch.full((50,), 0.05 / 49)
    peaked[0] = 0.95
    flat = torch.full((50,), 1 / 50)
    flat += 1e-4 * torch.linspace(-1, 1, 50)                # ほぼ同じ確率 (並びを決めるだけ)
    for dist in (peaked, flat):
        assert len(_kept(top_k_filter(dist.log(), 5))) == 5
    assert len(_kept(top_p_filter(peaked.log(), 0.9))) == 1
    n_flat = len(_kept(top_p_filter(flat.log(), 0.9)))
    assert 40 <= n_flat < 50                                # 「数十個」「40 個以上」
    assert "40 個以上" in find_question(bank, "samp-shape")["choices"][0]["why"]


def test_sampling_order_item_matches_sample_next(bank):
    items = find_question(bank, "samp-order")["items"]
    assert ["温度" in items[0], "top-k" in items[1], "top-p" in items[2],
            "割り直す" in items[3], "multinomial" in items[4]] == [True] * 5
    g = torch.Generator().manual_seed(3)
    z = 2 * torch.randn(6, 30, generator=g)
    manual = top_p_filter(top_k_filter(apply_temperature(z, 0.7), 10), 0.8).softmax(-1)
    want = torch.multinomial(manual, 1, generator=torch.Generator().manual_seed(4)).view(6)
    got = sample_next(z, temperature=0.7, top_k=10, top_p=0.8,
                      generator=torch.Generator().manual_seed(4))
    assert torch.equal(got, want)
    assert torch.equal(sample_next(z, top_k=1), greedy(z))  # top_k = 1 は貪欲法


# ---------------------------------------------------------------- KV キャッシュ


@pytest.fixture(scope="module")
def small_cached():
    torch.manual_seed(0)
    return gpt(V, make_attn=CachedMultiHeadAttention, d_model=128, n_layers=4, n_heads=4,
               max_len=64, positions="learned").eval()


def test_kv_memory_numbers_match_the_cache(bank, small_cached):
    cache = new_cache(small_cached)
    ids = torch.randint(1, V, (1, 10))
    with torch.no_grad():
        small_cached(ids, cache=cache)
    per_layer = [(c.k.numel() + c.v.numel()) * c.k.element_size() / 10 for c in cache]
    attn = small_cached.blocks[0].attn
    assert (attn.n_heads, attn.d_k) == (4, 32)
    q_layer, q_token = find_question(bank, "kv-mem-layer"), find_question(bank, "kv-mem-token")
    assert per_layer == [q_layer["answer"]] * 4 and sum(per_layer) == q_token["answer"]
    h, d_k, L, b = 4, 32, 4, 4
    assert _hint_values(q_layer) == {h * d_k * b, 2 * h * d_k, 2 * L * h * d_k * b, d_k * b}
    assert _hint_values(q_token) == {2 * h * d_k * b, L * h * d_k * b, 2 * L * h * h * d_k * b}
    _assert_hints_shown(q_layer)
    _assert_hints_shown(q_token)
    assert q_token["answer"] * 512 == 2 * 2 ** 20                     # 512 トークンで 2 MiB
    assert 2 * 32 * 32 * 128 * 2 == 128 * q_token["answer"]            # A-3 の例は 128 倍
    assert 2 * L * 1 * d_k * b == q_token["answer"] / 4                # MQA で 1/4


def test_cache_is_exact_with_the_mask_and_not_without(bank, small_cached):
    ids = torch.randint(1, V, (1, 12))
    with torch.no_grad():
        full = small_cached(ids)
        cache = new_cache(small_cached)
        parts = [small_cached(ids[:, :5], cache=cache)]
        for t in range(5, 12):
            parts.append(small_cached(ids[:, t:t + 1], cache=cache, start_pos=t))
        assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
        # マスクがなければ、トークンを足すと前の位置の層 1 の入力 (→ キーとバリュー) が変わる
        unmasked = gpt(V, causal=False, d_model=128, n_layers=4, n_heads=4, max_len=64,
                       positions="learned").eval()
        unmasked.load_state_dict(small_cached.state_dict())
        hidden = {}
        hook = unmasked.blocks[1].register_forward_pre_hook(
            lambda m, args: hidden.setdefault(args[0].shape[1], args[0]))
        unmasked(ids[:, :5])
        unmasked(ids[:, :6])
        hook.remove()
    assert (hidden[5] - hidden[6][:, :5]).abs().max() > 1e-3
    assert "因果マスク" in correct_texts(find_question(bank, "kv-exact"))[0]


def test_model_refuses_positions_past_max_len(bank, small_cached):
    with pytest.raises(ValueError, match="max_len"):
        small_cached(torch.ones(1, 1, dtype=torch.long), cache=new_cache(small_cached),
                     start_pos=64)
    assert "プレフィル" in correct_texts(find_question(bank, "kv-full"))[0]


def test_cost_item_counts_positions(bank):
    """FFN を通る位置の数: キャッシュなしは 1 + 2 + … + N、キャッシュありは N。"""
    torch.manual_seed(0)
    model = gpt(V, make_attn=CachedMultiHeadAttention).eval()      # 章の小さなモデル (文脈 32)
    seen = []
    hook = model.blocks[0].ffn.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].shape[-2]))
    prompt, N = torch.randint(1, V, (1, 1)), 20
    counts = {}
    for use_cache in (False, True):
        seen.clear()
        generate(model, prompt, N, top_k=1, use_cache=use_cache)
        counts[use_cache] = sum(seen)
    hook.remove()
    assert counts == {False: N * (N + 1) // 2, True: N}
    assert correct_texts(find_question(bank, "kv-cost"))[0].startswith("キャッシュなしは N² に比例")


# ---------------------------------------------------------------- GPT の組み立て


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_block_and_model_parameter_counts(bank):
    d = 128
    model = gpt(V, d_model=d, n_layers=4, n_heads=4, max_len=512, positions="learned")
    block = model.blocks[0]
    q = find_question(bank, "gpt-block")
    assert _n_params(block) == q["answer"] == 12 * d * d + 13 * d
    assert _n_params(block.attn) == 4 * d * d + 4 * d and _n_params(block.ffn) == 8 * d * d + 5 * d
    assert _hint_values(q) == {12 * d * d, 12 * d * d + 9 * d, 12 * d * d + 11 * d,
                               6 * d * d + 10 * d}
    _assert_hints_shown(q)

    q = find_question(bank, "gpt-total")
    total = _n_params(model)
    assert total == q["answer"] and model.head.weight is model.tok_emb.weight
    blocks = 4 * _n_params(block)
    assert _hint_values(q) == {total + V * d, total - 512 * d, total - 2 * d, blocks}
    assert f"{blocks:,}" in q["explanation"] and blocks / total > 0.8          # 「8 割以上」
    _assert_hints_shown(q)


def test_perplexity_item(bank):
    q = find_question(bank, "gpt-ppl")
    assert q["answer"] == pytest.approx(math.exp(2.0))
    assert sorted(_hint_values(q)) == pytest.approx(sorted([4.0, 100.0, math.exp(-2.0), 7.4]))
    _assert_hints_shown(q)
    assert grade(q, "7.39").correct and not grade(q, "7.2").correct
    assert not grade(q, "7.4").correct                     # 丸めすぎ: 小数第 2 位までのヒント


# ---------------------------------------------------------------- コード課題


def test_references_equal_the_chapter_and_pytorch():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 7, 8, generator=g).unbind(0)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(C.reference_causal_attention(q, k, v), want, atol=1e-6)
    assert torch.allclose(C._causal_variant()(q, k, v), want, atol=1e-6)

    assert _kept(C.reference_top_p_filter(HAND.log(), 0.8)) == [1, 3, 4]
    z = 2 * torch.randn(4, 30, generator=g)
    assert torch.equal(C.reference_top_p_filter(z, 0.9), top_p_filter(z, 0.9))
    assert torch.equal(C._top_p_variant()(z, 0.9), top_p_filter(z, 0.9))


def test_top_p_cases_stay_clear_of_ties_at_p():
    """採点の入力で、どのトークンの「前の累積」も p から離れている (書き方の違う正解が揃う)。"""
    for case in C._top_p_cases():
        logits, p = case.args
        probs = logits.double().softmax(-1).sort(-1, descending=True).values
        before = probs.cumsum(-1) - probs
        if p < 1:
            assert (before - p).abs().min() > 1e-4, case.label


def test_checkers_leave_the_global_random_state_alone(bank):
    before = torch.get_rng_state()
    for q in bank.quiz("code").questions:
        ns: dict = {}
        exec(q["solution"], ns)  # noqa: S102
        assert grade(q, ns[q["function_name"]]).correct, q["id"]
    assert torch.equal(before, torch.get_rng_state())


def test_code_solutions_pass_and_starters_fail_gracefully(bank):
    assert_code_solutions_pass_and_starters_fail(bank)
    for q in bank.quiz("code").questions:
        ns: dict = {}
        exec(q["starter"], ns)  # noqa: S102
        r = grade(q, ns[q["function_name"]])
        assert "return を書き忘れていませんか" in " ".join(r.details), q["id"]


def test_other_correct_ways_of_writing_them_pass():
    def causal_big_negative(q, k, v):                      # −∞ の代わりに −10⁹
        T = q.shape[-2]
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), -1e9)
        return s.softmax(-1) @ v

    def causal_torch(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def causal_renormalised(q, k, v):                      # 掛けてから割り直す
        T = q.shape[-2]
        w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
        w = w * torch.ones(T, T).tril()
        return w / w.sum(-1, keepdim=True) @ v

    def top_p_hf(logits, p):                               # 昇順に並べて 1 − p と比べる書き方
        s, idx = logits.sort(dim=-1)
        remove = s.softmax(-1).cumsum(-1) <= 1 - p
        remove[..., -1] = False
        return logits.masked_fill(remove.scatter(-1, idx, remove), float("-inf"))

    def top_p_shift(logits, p):                            # 累積 > p を 1 つ右へずらす書き方
        probs, idx = logits.softmax(-1).sort(-1, descending=True)
        remove = probs.cumsum(-1) > p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        out = logits.clone()
        out[remove.scatter(-1, idx, remove)] = float("-inf")
        return out

    for fn in (causal_big_negative, causal_torch, causal_renormalised):
        assert C.check_causal_attention(fn).status == "correct", fn.__name__
    for fn in (top_p_hf, top_p_shift):
        assert C.check_top_p_filter(fn).status == "correct", fn.__name__


#: 採点関数ごとの「よくある誤り」の説明に入っているはずの言葉 (誤りの並びと同じ順)
WORDS = {
    "causal": ["上下逆", "√d_k で割っていない", "d_k で割っている", "割り直していない",
               "0 で埋めている", "対角 (自分自身) を含んでいない", "True と False を逆",
               "マスクをかけていない", "softmax をとる次元"],
    "top_p": ["cumsum < p", "1 つ 1 つの確率", "ID の順のまま", "低い順 (昇順)",
              "ロジットのまま累積", "元の ID の順に戻さず", "並べ替えた順のロジット",
              "確率 (外したトークンは 0)", "割り直した確率"],
}
CHECKS = {"causal": (C.check_causal_attention, C.CAUSAL_MISTAKES),
          "top_p": (C.check_top_p_filter, C.TOP_P_MISTAKES)}


@pytest.mark.parametrize("name, index", [(name, i) for name, (_, mistakes) in CHECKS.items()
                                         for i in range(len(mistakes))])
def test_each_known_mistake_gets_zero_and_its_own_diagnosis(name, index):
    check, mistakes = CHECKS[name]
    assert_mistake_gets_zero_and_its_diagnosis(check, mistakes, WORDS[name], index)


def test_nan_and_future_leaks_are_reported_in_words():
    strict = C.CAUSAL_MISTAKES[5][0]                       # tril(-1): 行 0 が NaN
    text = " ".join(C.check_causal_attention(strict).details)
    assert "NaN" in text
    leaky = C.CAUSAL_MISTAKES[0][0]                        # triu: 未来を見る
    text = " ".join(C.check_causal_attention(leaky).details)
    assert "未来が漏れています" in text


def test_empty_nucleus_is_explained():
    """cumsum < p の書き方は、最大の確率が p を超える分布で候補が空 (すべて −∞) になる。"""
    wrong, why = C.TOP_P_MISTAKES[0]
    z = torch.tensor([3.0, 0.0, -1.0])                      # 最大の確率 ≈ 0.94 > p
    assert (wrong(z, 0.5) == float("-inf")).all() and _kept(top_p_filter(z, 0.5)) == [0]
    assert "候補が 1 つもなくなります" in why


def test_in_place_answers_get_zero():
    def in_place(logits, p):
        return logits.masked_fill_(C._top_p_variant(out="logits")(logits, p) == float("-inf"),
                                   float("-inf"))

    r = C.check_top_p_filter(in_place)
    assert r.status == "incorrect" and r.score == 0
    assert "入力のテンソルをその場で書き換えています" in " ".join(r.details)


def test_broken_answers_get_a_clear_message_not_a_crash(bank):
    def boom(q, k, v):
        raise RuntimeError("まだ書いていません")

    def wrong_shape(q, k, v):
        return q[..., :-1]

    def not_a_tensor(logits, p):
        return [1, 2, 3]

    q = find_question(bank, "code-causal")
    r = grade(q, boom)
    assert r.status == "incorrect" and "実行中にエラー: RuntimeError" in " ".join(r.details)
    r = grade(q, wrong_shape)
    text = " ".join(r.details)
    assert r.status == "incorrect" and "形が違います" in text and "(2, 3, 6, 7)" in text
    r = grade(find_question(bank, "code-top-p"), not_a_tensor)
    assert r.status == "incorrect" and "Tensor を返すはずが list" in " ".join(r.details)
    r = grade(find_question(bank, "code-top-p"), "my_top_p_filter(logits, 0.9)")
    assert r.status == "invalid" and "関数そのもの" in r.message


# ---------------------------------------------------------------- HTML とウィジェット


def test_static_html_carries_every_quiz_safely(bank):
    for quiz in bank.quizzes:
        html = render_quiz_html(quiz)
        assert html.count("</script>") == 1 and 'class="llmbook-quiz"' in html
        data = json.loads(re.search(r'class="llmbook-quiz-data">(.*?)</script>', html, re.S)
                          .group(1))
        assert [q["id"] for q in data["questions"]] == [q["id"] for q in quiz.questions]
        assert all("checker" not in q for q in data["questions"])


def test_html_in_an_answer_is_escaped(bank, tmp_path):
    w = QuizWidget(bank.quiz("kvcache"), ProgressStore(tmp_path / "p.json"))
    qw = w.question("kv-mem-layer")
    qw.text.value = "<b>1024</b>"
    qw.button.click()
    assert "数値として読めません" in qw.feedback.value and "<b>1024</b>" not in qw.feedback.value
    qw.text.value = "512"                                   # よくある誤り: 理由つきで × になる
    qw.button.click()
    assert "× 不正解" in qw.feedback.value and "2 倍" in qw.feedback.value
    qw.text.value = "1,024"
    qw.button.click()
    assert "○ 正解" in qw.feedback.value
