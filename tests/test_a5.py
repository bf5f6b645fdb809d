"""A-5「因果マスクと自己回帰生成」のテスト: 書き出したモジュール (llmbook/chapters/a5.py) と裏方。

本文の主張 (因果マスクで未来が漏れないこと、選び方の関数が残す候補、KV キャッシュで出る
トークンが変わらないこと、キャッシュの大きさ、同梱の GPT の検証用の損失) を、ノートブックとは
違う大きさ・乱数で確かめる。誤った入力には日本語のエラー。
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from llmbook import set_seed
from llmbook.a5_tools import StreamingGPT, load_book_gpt
from llmbook.chapters.a3 import MultiHeadAttention
from llmbook.chapters.a5 import (
    CachedMultiHeadAttention,
    KVCache,
    apply_temperature,
    generate,
    gpt,
    greedy,
    new_cache,
    sample_next,
    top_k_filter,
    top_p_filter,
)
from llmbook.display import ProgressBar

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
V = 50


pytestmark = pytest.mark.usefixtures("one_thread")   # 小さな行列ばかり: 1 スレッドで


def _small(**kw):
    set_seed(0)
    size = {"d_model": 32, "n_layers": 3, "n_heads": 4, "max_len": 24, **kw}
    return gpt(V, make_attn=CachedMultiHeadAttention, **size).eval()


# ---------------------------------------------------------------- §1 因果マスク
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_future_tokens_never_change_earlier_logits(positions):
    model = _small(positions=positions)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (3, 20), generator=g)
    with torch.no_grad():
        base = model(ids)
        for p in (0, 5, 18):
            changed = ids.clone()
            changed[:, p + 1:] = torch.randint(0, V, (3, 19 - p), generator=g)
            new = model(changed)
            assert torch.equal(new[:, :p + 1], base[:, :p + 1])
            assert (new[:, p + 1:] - base[:, p + 1:]).abs().max() > 1e-4


def test_unmasked_model_leaks_the_future():
    model = _small()
    open_model = gpt(V, causal=False, make_attn=CachedMultiHeadAttention, d_model=32,
                     n_layers=3, n_heads=4, max_len=24).eval()
    open_model.load_state_dict(model.state_dict())
    ids = torch.randint(0, V, (1, 10))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % V
    with torch.no_grad():
        assert (open_model(changed)[:, 0] - open_model(ids)[:, 0]).abs().max() > 1e-5


# ---------------------------------------------------------------- §3 選び方
def test_filters_keep_the_expected_candidates():
    probs = torch.tensor([0.05, 0.30, 0.10, 0.40, 0.15])
    logits = probs.log()
    kept = lambda z: (z > float("-inf")).nonzero().flatten().tolist()   # noqa: E731
    assert greedy(logits).item() == 3
    assert kept(top_k_filter(logits, 2)) == [1, 3]
    assert kept(top_p_filter(logits, 0.7)) == [1, 3]           # ちょうど 0.70 で届く
    assert kept(top_p_filter(logits, 0.71)) == [1, 3, 4]
    assert kept(top_p_filter(logits, 1e-9)) == [3]             # 最も高いものは必ず残る


@pytest.mark.parametrize("seed", range(3))
def test_top_p_is_the_smallest_prefix_reaching_p(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 30, generator=g) * 2
    for p in (0.1, 0.5, 0.9):
        out = top_p_filter(logits, p)
        probs = logits.softmax(-1)
        for row in range(4):
            keep = out[row] > float("-inf")
            mass = probs[row][keep].sum()
            assert mass >= p - 1e-6
            smallest = probs[row][keep].min()
            assert mass - smallest < p + 1e-6               # 1 つでも減らすと p に届かない
            assert (probs[row][~keep] <= smallest + 1e-7).all()


def test_temperature_shapes_the_distribution():
    logits = torch.randn(100) * 3
    ent = [-(z.softmax(-1) * z.log_softmax(-1)).sum().item()
           for z in (apply_temperature(logits, t) for t in (0.3, 1.0, 3.0))]
    assert ent[0] < ent[1] < ent[2] < math.log(100)


def test_sample_next_top_k_one_is_greedy_and_seeded_sampling_repeats():
    logits = torch.randn(5, 40)
    assert torch.equal(sample_next(logits, top_k=1, temperature=0.3), logits.argmax(-1))
    a = sample_next(logits, top_p=0.9, generator=torch.Generator().manual_seed(3))
    b = sample_next(logits, top_p=0.9, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (5,)


@pytest.mark.parametrize("call", [
    lambda z: apply_temperature(z, 0), lambda z: apply_temperature(z, float("nan")),
    lambda z: top_k_filter(z, 0), lambda z: top_k_filter(z, 2.5),
    lambda z: top_p_filter(z, 0), lambda z: top_p_filter(z, 1.01),
    lambda z: greedy(z.long()), lambda z: greedy([1.0, 2.0]),
])
def test_bad_sampling_arguments_get_japanese_errors(call):
    with pytest.raises((ValueError, TypeError)) as e:
        call(torch.randn(6))
    assert JAPANESE.search(str(e.value))


# ---------------------------------------------------------------- §4 KV キャッシュ
def test_cache_appends_along_time_and_checks_shapes():
    cache = KVCache()
    k, v = torch.randn(2, 2, 3, 5, 8).unbind(0)
    cache.append(k, v)
    k2, v2 = cache.append(k[:, :, :1], v[:, :, :1])
    assert len(cache) == 6 and k2.shape == (2, 3, 6, 8)
    with pytest.raises(ValueError) as e:
        cache.append(torch.randn(2, 2, 1, 8), torch.randn(2, 2, 1, 8))    # h が違う
    assert JAPANESE.search(str(e.value))


@pytest.mark.parametrize("kw", [{"top_k": 1}, {"temperature": 0.8, "top_p": 0.9},
                                {"temperature": 1.3, "top_k": 7}])
def test_cache_gives_identical_tokens_across_a_full_context(kw):
    model = _small()
    prompt = torch.randint(0, V, (2, 5))
    n = 40                                     # max_len 24 を超える: プレフィルのやり直しも通る
    a = generate(model, prompt, n, generator=torch.Generator().manual_seed(0), **kw)
    b = generate(model, prompt, n, generator=torch.Generator().manual_seed(0), use_cache=False,
                 **kw)
    assert a.shape == (2, 5 + n) and torch.equal(a, b)


def test_cached_attention_equals_plain_attention_without_a_cache():
    set_seed(0)
    plain = MultiHeadAttention(16, 4)
    cached = CachedMultiHeadAttention(16, 4)
    cached.load_state_dict(plain.state_dict())
    x = torch.randn(2, 7, 16)
    mask = torch.ones(7, 7, dtype=torch.bool).tril()
    assert torch.allclose(cached(x, mask), plain(x, mask), atol=1e-6)    # 融合カーネル
    cached.keep_weights = True                                           # 実験のときは A-3 の計算
    assert torch.equal(cached(x, mask), plain(x, mask))
    assert cached.weights.shape == (2, 4, 7, 7)
    with pytest.raises(ValueError) as e:
        cached.keep_weights = False
        cached(x, mask[:, :5])                                           # マスクの形の誤り
    assert JAPANESE.search(str(e.value))


def test_cache_size_is_two_h_dk_per_token_per_layer():
    model = _small()
    cache = new_cache(model)
    with torch.no_grad():
        model(torch.randint(0, V, (1, 11)), cache=cache)
    attn = model.blocks[0].attn
    for c in cache:
        assert (c.k.numel() + c.v.numel()) == 2 * attn.n_heads * attn.d_k * 11


@pytest.mark.parametrize("prompt, kw", [
    (torch.zeros(1, 0, dtype=torch.long), {}),
    (torch.zeros(1, 25, dtype=torch.long), {}),
    (torch.zeros(5, dtype=torch.long), {}),
    (torch.zeros(1, 3), {}),
    (torch.zeros(1, 3, dtype=torch.long), {"temperature": 0}),
    (torch.zeros(1, 3, dtype=torch.long), {"top_k": 0}),
    (torch.zeros(1, 3, dtype=torch.long), {"top_p": 1.5}),
])
def test_generate_rejects_bad_input_in_japanese(prompt, kw):
    with pytest.raises((ValueError, TypeError)) as e:
        generate(_small(), prompt, 3, **kw)
    assert JAPANESE.search(str(e.value))


# ---------------------------------------------------------------- §5 同梱の GPT
def test_book_gpt_loads_and_reaches_its_recorded_validation_loss(data):
    model, tok, info = load_book_gpt()
    assert tok.itos == data.tokenizer.itos
    assert isinstance(model.blocks[0].attn, CachedMultiHeadAttention)
    n = sum(p.numel() for p in model.parameters())
    assert n == info["result"]["params"]
    # 検証用テキストの先頭 4,096 文字を、窓いっぱいの文脈で評価する (チェックポイントの記録と
    # 同じ大きさの値になり、A-1 の 5-gram より低いはず)
    ids = data.val_ids[: 8 * model.max_len + 1]
    x, y = ids[:-1].view(8, -1), ids[1:].view(8, -1)
    with torch.no_grad():
        loss = F.cross_entropy(model(x).transpose(1, 2), y).item()
    recorded = info["history"][-1]["val"]
    assert abs(loss - recorded) < 0.15, (loss, recorded)
    assert loss < math.log(1.925)                       # A-1 の 5-gram の検証用 PPL


def test_streaming_wrapper_matches_a_direct_forward(data):
    model, _, _ = load_book_gpt()
    stream = StreamingGPT(model)
    ids = data.val_ids[: model.max_len]
    lp = stream.token_log_probs(ids)
    with torch.no_grad():
        direct = model(ids[None])[0].log_softmax(-1)
    want = direct[:-1].gather(-1, ids[1:, None]).squeeze(-1).double()
    assert torch.allclose(lp, want, atol=1e-5)


def test_load_book_gpt_missing_folder_is_japanese(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_book_gpt(tmp_path)
    assert JAPANESE.search(str(e.value))
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError) as e:
        load_book_gpt(tmp_path)
    assert JAPANESE.search(str(e.value))


# ---------------------------------------------------------------- 進捗バー
def test_progress_bar_outside_ipython_prints_only_the_last_line(capsys):
    with ProgressBar(3, "テスト") as bar:
        for step in range(1, 4):
            bar.update(step, 1.5 / step)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("テスト: 3/3 ステップ、損失 0.500")
    with pytest.raises(ValueError) as e:
        ProgressBar(0)
    assert JAPANESE.search(str(e.value))
