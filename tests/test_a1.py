"""A-1「言語モデルの進化」のテスト: 書き出したモジュール・配管 (llmbook.lm)・問題バンク・採点関数。

本文の主張 (N グラムの確率の和が 1、スパース性、勾配消失、忘却ゲートのバイアス、N グラムには遠くが
見えないこと、決定性) を、ノートブックより小さな設定で確かめる。章の形 (出力なし・節の番号・
クイズ・ひな形・セルの長さ) は tests/test_chapters.py がどの章にも確かめる。
読者のテキストで章全体が動くことは、小さなテキストファイルでノートブックのセルを実行して確かめる。
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook import set_seed
from llmbook.chapters.a1 import (
    A1_TRAIN,
    CausalSelfAttention,
    CharRNN,
    NGramLM,
    TinyAttentionLM,
    TrainConfig,
    cross_entropy,
    get_batch,
    gradient_by_distance,
    load_a1_data,
    lr_factor,
    make_a1_data,
    make_a1_model,
    measure_time,
    ngram_stats,
    perplexity,
    perplexity_from_log_probs,
    rnn_forward_loop,
    synchronize,
    train_char_model,
)
from llmbook.corpus import CorpusError
from llmbook.quiz.checks_a1 import (
    reference_bigram_probs,
)

# ---------------------------------------------------------------------------
# §1 交差エントロピーとパープレキシティ
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 11), (2, 2, 3, 30)])
def test_cross_entropy_matches_pytorch(shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64) * 4
    targets = torch.randint(0, shape[-1], shape[:-1], generator=g)
    want = F.cross_entropy(logits.reshape(-1, shape[-1]), targets.reshape(-1))
    assert torch.allclose(cross_entropy(logits, targets), want, atol=1e-12)
    assert math.isclose(perplexity(logits, targets), math.exp(want.item()), rel_tol=1e-12)
    # 大きなスコアでもあふれない
    big = logits + 1e4
    assert torch.allclose(cross_entropy(big, targets), want, atol=1e-8)


@pytest.mark.parametrize("V", [2, 50, 745])
def test_uniform_model_perplexity_is_vocab_size(V):
    targets = torch.arange(40) % V
    assert math.isclose(
        perplexity(torch.zeros(40, V, dtype=torch.float64), targets), V, rel_tol=1e-12
    )
    assert math.isclose(perplexity_from_log_probs(np.full(40, -math.log(V))), V, rel_tol=1e-12)


def test_exercise_small_score_gap_gives_perplexity_3_4():
    """§1 の「やってみよう」: 正解だけ +3 (V = 50) なら PPL = (e^3 + 49) / e^3 ≈ 3.4。"""
    targets = torch.randint(0, 50, (4, 16), generator=torch.Generator().manual_seed(0))
    ppl = perplexity(F.one_hot(targets, 50).float() * 3, targets)
    assert math.isclose(ppl, (math.exp(3) + 49) / math.exp(3), rel_tol=1e-5)
    assert round(ppl, 1) == 3.4


def test_perplexity_from_log_probs_rejects_bad_input():
    for bad in ([], [[-1.0, -2.0]], [0.5, -1.0], [float("nan")]):
        with pytest.raises(ValueError):
            perplexity_from_log_probs(bad)


# ---------------------------------------------------------------------------
# §3 データの読み込みとバッチ (不正な入力を含む)
# ---------------------------------------------------------------------------


def test_load_a1_data_is_the_book_corpus(data):
    corpus = data.corpus
    assert data.vocab_size == 745 == len(set(corpus.text)) + 1
    assert data.tokenizer.decode(data.train_ids) == corpus.train_text
    assert data.tokenizer.decode(data.val_ids) == corpus.val_text
    assert data.train_ids.dtype == torch.long and data.train_ids.ndim == 1
    assert torch.equal(data.train_eval_ids, data.train_ids[: len(data.val_ids)])


def test_make_a1_data_splits_reader_text():
    text = "あいうえお。かきくけこ。\n" * 100
    d = make_a1_data(text, val_fraction=0.2)
    assert d.corpus is None
    assert len(d.train_ids) + len(d.val_ids) == len(text)
    assert len(d.val_ids) == int(len(text) * 0.2)
    assert d.tokenizer.decode(torch.cat([d.train_ids, d.val_ids])) == text


@pytest.mark.parametrize(
    "text, frac, words",
    [
        (b"bytes" * 300, 0.1, "文字列"),
        ("短い文章です。", 0.1, "短すぎ"),
        ("あ" * 2000, 0.0, "val_fraction"),
        ("あ" * 2000, 1.0, "val_fraction"),
        ("あ" * 2000, True, "val_fraction"),
        ("あ" * 2000, "0.1", "val_fraction"),
    ],
)
def test_make_a1_data_bad_inputs(text, frac, words):
    with pytest.raises(CorpusError, match=words):
        make_a1_data(text, val_fraction=frac)


def test_load_a1_data_from_reader_files(tmp_path: Path):
    good = tmp_path / "mine.txt"
    good.write_text("今日は雨が降っていた。\n" * 120, encoding="utf-8")
    d = load_a1_data(path=good)
    assert (
        len(d.train_ids) + len(d.val_ids) == len("今日は雨が降っていた。\n" * 120) - 1
    )  # 末尾の改行は落とす
    sjis = tmp_path / "sjis.txt"
    sjis.write_text("今日は雨が降っていた。\n" * 120, encoding="cp932")
    assert load_a1_data(sjis).tokenizer.decode(
        load_a1_data(sjis).val_ids
    )  # 既定で Shift_JIS も読む
    with pytest.raises(CorpusError, match="UTF-8"):
        load_a1_data(sjis, encoding="utf-8")
    with pytest.raises(CorpusError, match="見つかりません"):
        load_a1_data(path=tmp_path / "nai.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="空"):
        load_a1_data(path=empty)
    short = tmp_path / "short.txt"
    short.write_text("短い。", encoding="utf-8")
    with pytest.raises(CorpusError, match="短すぎ"):
        load_a1_data(path=short)
    with pytest.raises(CorpusError, match="フォルダ"):
        load_a1_data(path=tmp_path)


def test_load_a1_data_takes_the_path_first_and_explains_wrong_arguments(tmp_path: Path):
    mine = tmp_path / "mine.txt"
    mine.write_text("今日は雨が降っていた。\n" * 120, encoding="utf-8")
    assert load_a1_data(mine).corpus is None and load_a1_data(str(mine)).corpus is None
    assert load_a1_data(seed=0).is_book and not load_a1_data(mine).is_book
    with pytest.raises(TypeError, match="seed=1"):  # 以前の書き方 load_a1_data(0)
        load_a1_data(0)
    with pytest.raises(TypeError, match="キーワード"):
        load_a1_data(mine, 0)
    with pytest.raises(TypeError, match="もしかして 'seed'"):  # つづりの誤りは日本語で
        load_a1_data(sed=0)
    with pytest.raises(TypeError, match="val_fraction"):
        load_a1_data(mine, val_frac=0.2)
    n_chars = len("今日は雨が降っていた。\n" * 120) - 1  # 末尾の改行は落とす
    assert len(load_a1_data(mine, val_fraction=0.5).val_ids) == n_chars // 2


def test_get_batch_shapes_shift_and_determinism(data):
    x, y = get_batch(data.train_ids, 5, 17, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (5, 17) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    x2, y2 = get_batch(data.train_ids, 5, 17, torch.Generator().manual_seed(3))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = get_batch(data.train_ids, 5, 17, torch.Generator().manual_seed(4))
    assert not torch.equal(x, x3)
    # ちょうど seq_len + 1 文字の列からも切り出せる
    x4, y4 = get_batch(torch.arange(9), 2, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x4[0], torch.arange(8)) and torch.equal(y4[0], torch.arange(1, 9))


@pytest.mark.parametrize(
    "ids, bs, T, words",
    [
        (torch.arange(100).view(10, 10), 2, 4, "1 次元"),
        (torch.arange(100).float(), 2, 4, "1 次元"),
        (list(range(100)), 2, 4, "1 次元"),
        (torch.arange(10), 2, 10, "短すぎ"),
        (torch.arange(100), 0, 4, "batch_size"),
        (torch.arange(100), 2, 0, "seq_len"),
        (torch.arange(100), 2, True, "seq_len"),
        (torch.arange(100), 2.0, 4, "batch_size"),
    ],
)
def test_get_batch_bad_inputs(ids, bs, T, words):
    with pytest.raises(ValueError, match=words):
        get_batch(ids, bs, T, torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------------
# §4 N グラム
# ---------------------------------------------------------------------------


def _brute_force_interp(
    train: list[int], V: int, n: int, D: float, context: list[int], w: int
) -> float:
    """補間つき絶対ディスカウントを、式どおりに Counter で計算する (NGramLM の検算用)。"""

    def p(order: int) -> float:
        if order == 0:
            return 1.0 / V
        h = tuple(context[len(context) - (order - 1) :]) if order > 1 else ()
        if len(h) != order - 1:
            return p(order - 1)
        grams = Counter(tuple(train[i : i + order]) for i in range(len(train) - order + 1))
        c_h = sum(c for g, c in grams.items() if g[:-1] == h)
        if c_h == 0:
            return p(order - 1)
        n_h = sum(1 for g in grams if g[:-1] == h)
        return (max(grams.get(h + (w,), 0) - D, 0) + D * n_h * p(order - 1)) / c_h

    return p(n)


def test_ngram_matches_the_formula_on_a_toy_text():
    train = [1, 2, 1, 2, 1, 3, 2, 2, 1, 2, 3]
    V, D = 5, 0.75
    for n in (1, 2, 3):
        model = NGramLM(n, V, discount=D).fit(train)
        for context in ([], [1], [2, 1], [4, 4], [3, 2]):
            got = model.next_token_probs(context)
            want = [
                _brute_force_interp(train, V, n, D, context[-(n - 1) :] if n > 1 else [], w)
                for w in range(V)
            ]
            assert np.allclose(got, want, atol=1e-12), (n, context)


def test_ngram_counts_match_counter(data):
    ids = data.val_ids[:2000].tolist()
    V = data.vocab_size
    model = NGramLM(3, V).fit(ids)
    tri = Counter(zip(ids, ids[1:], ids[2:]))
    query = np.array([(a * V + b) * V + c for a, b, c in tri])
    c_hw, c_h, n_h = ngram_stats(model, 3, query)
    assert c_hw.tolist() == list(tri.values())
    ctx = Counter((a, b) for a, b, _ in zip(ids, ids[1:], ids[2:]))
    assert c_h.tolist() == [ctx[(a, b)] for a, b, _ in tri]
    assert n_h.tolist() == [sum(1 for g in tri if g[:2] == (a, b)) for a, b, _ in tri]


@pytest.mark.parametrize("smoothing", ["interp", "add_k"])
def test_ngram_probs_sum_to_one_and_unseen_is_nonzero(data, ngrams, ngrams_addk, smoothing):
    family = ngrams if smoothing == "interp" else ngrams_addk
    rng = np.random.default_rng(0)
    V = data.vocab_size
    for n, model in family.items():
        for _ in range(10):
            p = model.next_token_probs(rng.integers(0, V, size=n - 1))  # ほとんどは未出現の文脈
            assert p.shape == (V,) and abs(p.sum() - 1) < 1e-9 and p.min() > 0
        seen = data.val_ids[100 : 100 + n - 1].tolist()  # 実際の文脈
        p = model.next_token_probs(seen)
        assert abs(p.sum() - 1) < 1e-9 and p.min() > 0  # 続いたことのない文字にも確率が残る
        assert p[0] > 0  # 未知文字 (ID 0) にも


def test_token_probs_agree_with_next_token_probs(data, ngrams):
    ids = data.val_ids[:300].tolist()
    for n in (1, 3, 5):
        tp = ngrams[n].token_probs(ids)
        for t in (0, 1, 2, 7, 150, 299):
            ctx = ids[max(0, t - n + 1) : t]
            assert math.isclose(tp[t], ngrams[n].next_token_probs(ctx)[ids[t]], rel_tol=1e-12)


def test_sparsity_and_perplexity_trends(data, ngrams, ngrams_addk):
    """本文の主張: n とともに訓練用 PPL は下がり、未出現の並びは増え、add-k は大きな n で悪化。"""
    tr = [ngrams[n].perplexity(data.train_eval_ids) for n in range(1, 6)]
    va = [ngrams[n].perplexity(data.val_ids) for n in range(1, 6)]
    unseen = [ngrams[n].unseen_rates(data.val_ids)[1] for n in range(1, 6)]
    addk_va = [ngrams_addk[n].perplexity(data.val_ids) for n in range(1, 6)]
    assert all(a > b for a, b in zip(tr, tr[1:]))
    assert all(a < b for a, b in zip(unseen, unseen[1:])) and unseen[-1] > 0.03
    assert all(v / t > 1 for t, v in zip(tr[2:], va[2:]))  # n ≥ 3 では検証用の方が高い
    assert va[4] / tr[4] > va[2] / tr[2]  # 差は n とともに開く
    assert addk_va[4] > min(addk_va)  # add-k は n = 5 で最小ではない
    assert va[4] < va[3] < va[2]  # 補間は下がり続ける


def test_ngram_validation():
    with pytest.raises(ValueError):
        NGramLM(0, 10)
    with pytest.raises(ValueError):
        NGramLM(2, 10, smoothing="laplace")
    with pytest.raises(ValueError):
        NGramLM(2, 10).fit([1, 2, 10])  # ID が語彙の外
    with pytest.raises(RuntimeError):
        NGramLM(2, 10).next_token_probs([1])  # fit の前


def test_addk_bigram_equals_the_exercise_reference(data):
    ids = data.val_ids[:3000]
    V = data.vocab_size
    model = NGramLM(2, V, smoothing="add_k", k=0.5).fit(ids)
    ref = reference_bigram_probs(ids, V, 0.5)
    for a in (0, int(ids[0]), int(ids[10]), int(ids[2000])):
        assert np.allclose(model.next_token_probs([a]), ref[a].double().numpy(), atol=1e-6)


def test_ngram_generation_is_seeded(ngrams, data):
    prompt = data.tokenizer.encode("その日は")
    assert ngrams[3].generate(prompt, 30, seed=1) == ngrams[3].generate(prompt, 30, seed=1)
    assert ngrams[3].generate(prompt, 30, seed=1)[:4] == prompt


# ---------------------------------------------------------------------------
# §5・§6 ニューラルモデル
# ---------------------------------------------------------------------------


def test_rnn_loop_matches_nn_rnn():
    set_seed(0)
    ref = nn.RNN(6, 9, batch_first=True)
    x = torch.randn(4, 13, 6)
    h0 = torch.randn(4, 9)
    want, h_want = ref(x, h0[None])
    got, h_got = rnn_forward_loop(
        x, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0, h0
    )
    assert torch.allclose(got, want, atol=1e-6) and torch.allclose(h_got, h_want[0], atol=1e-6)


def test_causal_self_attention_matches_sdpa_and_never_looks_ahead():
    set_seed(0)
    layer = CausalSelfAttention(16, 4)
    x = torch.randn(3, 7, 16)
    out, w = layer(x, return_weights=True)
    q, k, v = layer.qkv(x).view(3, 7, 3, 4, 4).permute(2, 0, 3, 1, 4)
    want = layer.out(
        F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(3, 7, 16)
    )
    assert torch.allclose(out, want, atol=1e-5)
    assert torch.all(w.triu(1) == 0) and torch.allclose(w.sum(-1), torch.ones(3, 4, 7))
    x2 = x.clone()
    x2[:, -1] += 5  # 最後の位置だけ変える
    assert torch.equal(layer(x2)[:, :-1], out[:, :-1])  # それより前の出力は変わらない
    with pytest.raises(ValueError):
        CausalSelfAttention(10, 4)


@pytest.mark.parametrize("kind", list(A1_TRAIN))
def test_model_shapes_and_evaluation_api(kind):
    V = 30
    set_seed(0)
    model = make_a1_model(kind, V)
    ids = torch.randint(0, V, (3, 20))
    assert model(ids).shape == (3, 20, V)  # (B, T, V)
    stream = torch.randint(0, V, (150,))
    lp = model.token_log_probs(stream)
    assert lp.shape == (149,) and lp.dtype == torch.float64 and (lp <= 0).all()
    probs = model.next_probs(stream[None, :40].expand(2, 40))
    assert probs.shape == (2, V) and torch.allclose(
        probs.sum(-1), torch.ones(2, dtype=torch.float64)
    )
    preds = model.predict_at(stream, [1, 5, 64, 149])
    assert preds.shape == (4,) and preds.dtype == torch.long
    out = model.generate([1, 2, 3], 10, seed=0)
    assert len(out) == 13 and out == model.generate([1, 2, 3], 10, seed=0)
    # 評価の約束: 先頭の部分は、その部分だけをまとめて読んだときと同じ対数確率
    L = model.context_len or 150
    direct = (
        torch.log_softmax(model(stream[None, :L])[0].double(), -1)[:-1]
        .gather(-1, stream[1:L, None])
        .squeeze(-1)
    )
    assert torch.allclose(lp[: L - 1], direct, atol=1e-5)


def test_attention_model_window_limit_and_sliding_evaluation():
    set_seed(0)
    model = TinyAttentionLM(20, d_model=16, n_heads=2, max_len=8)
    with pytest.raises(ValueError, match="8 文字"):
        model(torch.zeros(1, 9, dtype=torch.long))
    stream = torch.randint(0, 20, (50,))
    lp = model.token_log_probs(stream)
    # 位置 t の対数確率は、t で終わる長さ 8 以下のどこかの窓から計算される (文脈は少なくとも 4 文字)
    for t in range(8, 50):
        target = stream[t]
        candidates = [
            torch.log_softmax(model(stream[None, s:t])[0, -1].double(), -1)[target]
            for s in range(max(0, t - 8), t - 3)
        ]
        assert any(torch.isclose(lp[t - 1], c, atol=1e-5) for c in candidates), t


def test_make_a1_model_rejects_unknown_kind():
    with pytest.raises(ValueError, match="RNN"):
        make_a1_model("GRU", 10)
    with pytest.raises(ValueError):
        CharRNN(10, cell="gru")


def test_training_is_deterministic_and_learns(data):
    cfg = TrainConfig(steps=40, batch_size=8, seq_len=24, lr=1e-2, seed=5)

    def run(seed=0):
        set_seed(seed)
        model = CharRNN(data.vocab_size, emb_dim=16, hidden_size=32)
        losses = train_char_model(model, data.train_ids, cfg)
        return losses, [p.detach().clone() for p in model.parameters()]

    l1, p1 = run()
    l2, p2 = run()
    assert l1 == l2 and all(torch.equal(a, b) for a, b in zip(p1, p2))
    l3, _ = run(seed=1)
    assert l3 != l1
    assert np.mean(l1[-5:]) < np.mean(l1[:5]) - 1.0  # 損失は下がる


# ---------------------------------------------------------------------------
# §7 勾配消失
# ---------------------------------------------------------------------------


def test_vanishing_gradient_rnn_but_not_attention(data):
    """本文の主張: RNN の勾配は距離とともに何桁も小さくなるが、自己注意 (構造上) はそうならない。"""
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, len(data.val_ids) - 65, (8,), generator=g)
    chunk = data.val_ids[starts[:, None] + torch.arange(65)]
    grads = {}
    for kind in A1_TRAIN:
        set_seed(0)
        grads[kind] = gradient_by_distance(make_a1_model(kind, data.vocab_size), chunk)
        assert grads[kind].shape == (64,)
    for bias in (1.0, 3.0):
        set_seed(0)
        model = make_a1_model("LSTM", data.vocab_size, forget_bias=bias)
        grads[f"LSTM b_f={bias:g}"] = gradient_by_distance(model, chunk)
    ratio = {kind: (gn[63] / gn[1]).item() for kind, gn in grads.items()}
    assert ratio["RNN"] < 1e-8 and ratio["LSTM"] < 1e-6  # 何桁も小さくなる
    assert ratio["Attention-1L"] > 0.3  # 距離によらない
    assert grads["Attention-1L"][63] > 1e6 * grads["RNN"][63]
    # 既定の LSTM (f ≈ 0.5) は速く縮み、b_f = 1 で緩やかに、b_f = 3 (f ≈ 0.95) ではほぼ縮まない
    assert ratio["LSTM"] < 1e-4 * ratio["LSTM b_f=1"] < 1e-4
    assert ratio["LSTM b_f=3"] > 0.1  # 本文の「やってみよう」


def test_forget_bias_sets_only_the_forget_gate():
    set_seed(0)
    model = CharRNN(10, emb_dim=4, hidden_size=6, cell="lstm", forget_bias=1.0)
    b_ih, b_hh = model.rnn.bias_ih_l0.detach(), model.rnn.bias_hh_l0.detach()
    assert torch.all(b_ih[6:12] == 1.0) and torch.all(b_hh[6:12] == 0.0)
    assert not torch.all(b_ih[:6] == 1.0)  # ほかのゲートはそのまま
    with pytest.raises(ValueError, match="LSTM"):
        CharRNN(10, cell="rnn", forget_bias=1.0)


def test_learning_rate_peaks_at_lr():
    cfg = TrainConfig()
    f = [lr_factor(s, cfg) for s in range(cfg.steps)]
    assert f[0] == 1 / cfg.warmup and max(f) == 1.0 == f[cfg.warmup - 1]
    assert math.isclose(f[-1], 0.1) and all(
        a >= b for a, b in zip(f[cfg.warmup - 1 :], f[cfg.warmup :])
    )
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)  # LambdaLR での実際の学習率
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    seen = []
    for _ in range(cfg.steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(seen) == 0.5 and math.isclose(seen[-1], 0.05)


def test_gradient_by_distance_index_means_distance():
    """k = 0 が最後の入力: 最後の入力だけに効く (線形の) モデルで確かめる。"""
    set_seed(0)
    model = CharRNN(10, emb_dim=4, hidden_size=4)
    with torch.no_grad():
        model.rnn.weight_hh_l0.zero_()  # 過去とのつながりを切る
    chunk = torch.randint(0, 10, (2, 9))
    gn = gradient_by_distance(model, chunk)
    assert gn[0] > 0 and torch.all(gn[1:] == 0)


# ---------------------------------------------------------------------------
# §8 時間の測定
# ---------------------------------------------------------------------------


def test_measure_time_and_synchronize():
    synchronize("cpu")
    calls = []
    t = measure_time(lambda: calls.append(sum(range(2000))), "cpu", repeats=3, warmup=2)
    assert 0 < t < 1 and len(calls) == 5
