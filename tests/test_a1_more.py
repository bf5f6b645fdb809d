"""A-1 のテスト (続き): 長距離の手がかり・パープレキシティの表・ノートブック (用語のリンク、
書き出し、読者のテキストでの実行)・配管 (llmbook.lm)・「やってみよう」の答え。"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from llmbook import set_seed
from llmbook.chapters import a1
from llmbook.chapters.a1 import (
    NGramLM,
    PerplexityTable,
    a1_baselines,
    build_a1_table,
    fit_ngrams,
    long_range_accuracy,
    make_a1_model,
    quote_cue_effect,
)
from llmbook.corpus import GIVEN_NAMES
from llmbook.quiz import load_glossary

NOTEBOOK = ROOT / "chapters" / "a1_language_models.ipynb"


def _nb_cells():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]


def _src(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


# ---------------------------------------------------------------------------
# §9 長距離の手がかり
# ---------------------------------------------------------------------------


def test_ngram_cannot_see_beyond_its_window_but_rnn_can(data, ngrams):
    """5-gram の予測は 4 文字より前をどう変えても同じ。RNN の出力は変わる (原理的に見えている)。"""
    val, items, tok = data.val_ids, data.corpus.val_items, data.tokenizer
    cue = quote_cue_effect(ngrams[5], val, items, tok)
    assert len(cue["with"]) > 200 and torch.equal(cue["with"], cue["without"])
    # 人名の紹介を別の (同じ長さの) 名前に差し替える
    item = next(it for it in items if it.kind == "name" and it.distance < 150)
    intro = item.position - item.distance
    other = next(n for n in GIVEN_NAMES if len(n) == len(item.target) and n != item.target)
    swapped = val.clone()
    swapped[intro : intro + len(other)] = torch.tensor(tok.encode(other))
    ctx, ctx_swapped = val[: item.position], swapped[: item.position]
    assert not torch.equal(ctx, ctx_swapped)
    assert np.array_equal(
        ngrams[5].next_token_probs(ctx.tolist()), ngrams[5].next_token_probs(ctx_swapped.tolist())
    )
    set_seed(0)
    rnn = make_a1_model("RNN", data.vocab_size)
    p = rnn.next_probs(torch.stack([ctx[-150:], ctx_swapped[-150:]]))
    assert not torch.equal(p[0], p[1])


class _CopyNameModel:
    """遠くを見るモデルの例: 直前 450 文字に出てきた名前 (GIVEN_NAMES) の最初の文字を予測する。"""

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def predict_at(self, ids, positions):
        out = []
        for p in positions:
            before = self.tok.decode(ids[max(0, p - 450) : p])
            found = [(before.rfind(n), n) for n in GIVEN_NAMES if n in before]
            out.append(self.tok.stoi[max(found)[1][0]] if found else 0)
        return torch.tensor(out)


def test_name_items_need_far_context(data, ngrams):
    """本文の主張: 直前 4 文字しか見ない 5-gram は人名をほぼ当てられず、遠くを見れば当てられる。"""
    items = data.corpus.val_items
    n_names = sum(it.kind == "name" for it in items)
    acc = {n: long_range_accuracy(ngrams[n], data.val_ids, items, data.tokenizer) for n in (2, 5)}
    far = long_range_accuracy(_CopyNameModel(data.tokenizer), data.val_ids, items, data.tokenizer)
    for n in (2, 5):
        correct, total = acc[n]["name"]
        assert total == n_names == 133 and correct / total < 0.1
    assert far["name"][0] / n_names > 0.9
    # 閉じかっこは近くの手がかり (会話文の終わり方) だけでもかなり当たる
    assert 0.5 < acc[5]["quote_close"][0] / acc[5]["quote_close"][1] < 0.95


# ---------------------------------------------------------------------------
# §10 パープレキシティの表
# ---------------------------------------------------------------------------


def test_perplexity_table_api():
    t = PerplexityTable("テスト")
    t.add("5-gram", 1.9, train_ppl=1.6, params=10, context="直前 4 文字")
    t.add("RNN", 3.1)
    assert t.models() == ["5-gram", "RNN"] and len(t) == 2 and "RNN" in t
    assert t.best().model == "5-gram" and t["RNN"].train_ppl is None
    with pytest.raises(ValueError, match="すでに"):
        t.add("RNN", 3.0)
    t.add("RNN", 3.0, replace=True)
    assert t["RNN"].val_ppl == 3.0
    for bad in (0.5, float("nan"), float("inf"), True, "3"):
        with pytest.raises(ValueError):
            t.add("X", bad)
    with pytest.raises(ValueError):
        t.add("", 2.0)
    with pytest.raises(KeyError, match="Transformer"):
        t["Transformer"]
    t.add("Transformer <A-5>", 1.5, chapter="A-5")
    text, md, html_ = t.to_text(), t.to_markdown(), t._repr_html_()
    assert "5-gram" in text and "1.900" in text and str(t) == text
    assert md.count("\n") == 4 and "| Transformer <A-5> |" in md
    assert "&lt;A-5&gt;" in html_ and "<table>" in html_
    assert t.as_dict()["5-gram"]["params"] == 10
    ax = t.plot()
    assert len(ax.patches) == 3
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a1_baselines_reproduce_the_ngram_rows(data, ngrams):
    table = a1_baselines(include_neural=False)
    assert table.models() == ["uniform", "1-gram", "2-gram", "3-gram", "4-gram", "5-gram"]
    assert table["uniform"].val_ppl == data.vocab_size
    for n, model in ngrams.items():
        assert table[f"{n}-gram"].val_ppl == model.perplexity(data.val_ids)
        assert table[f"{n}-gram"].train_ppl == model.perplexity(data.train_eval_ids)
        assert table[f"{n}-gram"].params == model.n_entries
    again = a1_baselines(include_neural=False)
    assert again.as_dict() == table.as_dict()


def test_build_a1_table_with_a_neural_row(data, ngrams):
    set_seed(0)
    model = make_a1_model("Attention-1L", data.vocab_size)
    table = build_a1_table(data, {5: ngrams[5]}, {"Attention-1L": model})
    row = table["Attention-1L"]
    assert row.context == "直前 64 文字" and row.params == sum(
        p.numel() for p in model.parameters()
    )
    assert row.val_ppl > table["5-gram"].val_ppl  # 学習前のモデルは悪い


# ---------------------------------------------------------------------------
# ノートブック: 用語のリンク・docstring の節・書き出し・読者のテキストでの実行
# ---------------------------------------------------------------------------


def test_glossary_links_use_existing_terms():
    names = {t[k] for t in load_glossary() for k in ("ja", "en")}
    used = [
        m
        for c in _nb_cells()
        if c["cell_type"] == "markdown"
        for m in re.findall(r"\{term\}`([^`]+)`", _src(c))
    ]
    assert {"言語モデル", "N グラム", "RNN", "Transformer", "自己注意"} <= set(used)
    assert set(used) <= names, set(used) - names


def test_exported_docstrings_name_a_section_that_exists():
    sections = {
        int(n)
        for c in _nb_cells()
        if c["cell_type"] == "markdown"
        for n in re.findall(r"^## (\d+)\. ", _src(c), re.M)
    }
    tree = ast.parse(Path(a1.__file__).read_text(encoding="utf-8"))
    public = [
        n
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    ]
    assert len(public) >= 20
    for node in public:
        m = re.search(r"A-1 §(\d+)", ast.get_docstring(node) or "")
        assert m and int(m.group(1)) in sections, node.name


def test_module_is_generated_from_the_notebook():
    from llmbook import export

    drifts = [d for d in export.plan(ROOT) if "a1" in d.path.name]
    assert not drifts, [d.reason for d in drifts]


# ---------------------------------------------------------------------------
# 配管 (llmbook.lm) と「やってみよう」の答え
# ---------------------------------------------------------------------------


def test_rnn_streaming_evaluation_matches_one_pass():
    """RNN の評価は区間に分けて並列に読むが、先頭から 1 本で読み通したときとほぼ同じ値になる。"""
    from llmbook.lm.eval import RNN_EVAL_CONTEXT

    set_seed(0)
    for kind in ("RNN", "LSTM"):
        model = make_a1_model(kind, 30)
        stream = torch.randint(
            0, 30, (3 * RNN_EVAL_CONTEXT + 77,), generator=torch.Generator().manual_seed(1)
        )
        with torch.no_grad():
            logits = model(stream[None])[0].double()  # (N, V) 1 本で読み通す
        want = torch.log_softmax(logits, -1)[:-1].gather(-1, stream[1:, None]).squeeze(-1)
        got = model.token_log_probs(stream)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), kind


def test_a1_baselines_returns_independent_copies():
    first = a1_baselines(include_neural=False)
    first.add("Transformer", 1.5, chapter="A-5")
    again = a1_baselines(include_neural=False)
    assert "Transformer" not in again and len(again) == 6


@pytest.mark.parametrize("discount", [0.5, 0.9])
def test_exercise_discount_changes_5gram_little(data, ngrams, discount):
    """§4 の「やってみよう」: D を 0.5 や 0.9 にしても、5-gram の検証用 PPL の差は数 % 以内。"""
    base = ngrams[5].perplexity(data.val_ids)
    other = (
        NGramLM(5, data.vocab_size, discount=discount).fit(data.train_ids).perplexity(data.val_ids)
    )
    assert abs(other / base - 1) < 0.05, (discount, base, other)


def test_exercise_longer_ngrams(data, ngrams, ngrams_addk):
    """§4 の「やってみよう」: n = 6 で add-k はさらに悪く、補間はほぼ同じ。n = 7 は収まらない。"""
    V = data.vocab_size
    more = fit_ngrams(data.train_ids, V, orders=[6])[6]
    more_addk = fit_ngrams(data.train_ids, V, orders=[6], smoothing="add_k", k=0.01)[6]
    with pytest.raises(ValueError, match="64 ビット"):
        NGramLM(7, V)
    assert more_addk.perplexity(data.val_ids) > ngrams_addk[5].perplexity(data.val_ids)
    assert abs(more.perplexity(data.val_ids) / ngrams[5].perplexity(data.val_ids) - 1) < 0.05


READER_TEXT = (
    "朝から雨が降っていた。窓の外では、傘をさした人たちが駅のほうへ急いでいる。"
    "「今日は寒いね」と姉が言った。Ωの記号が書かれた古い時計は、まだ七時を指していた。\n"
) * 40


def _notebook_code(replacements: dict[str, str]) -> list[str]:
    """章末クイズの手前までのコードセル (置き換えたもの)。置き換えは必ずちょうど 1 回起きること。"""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    end = next(
        i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## 12." in _src(c)
    )
    code = [_src(c) for c in cells[1:end] if c["cell_type"] == "code"]
    joined = "\n".join(code)
    for old in replacements:
        assert joined.count(old) == 1, f"ノートブックに {old!r} がちょうど 1 回ありません"
    return [
        functools.reduce(lambda s, kv: s.replace(*kv), replacements.items(), src) for src in code
    ]


def test_notebook_runs_on_a_readers_text(tmp_path, monkeypatch):
    """MY_TEXT を読者のテキストにすると、本のコーパスにない文字があっても章全体が動き、§9 は飛ばす。

    時間を短くするため、訓練のステップ数と §8 の系列長だけを小さくする。
    """
    import matplotlib

    matplotlib.use("Agg")
    mine = tmp_path / "mine.txt"
    mine.write_text(READER_TEXT, encoding="utf-8")
    fast = (
        'A1_TRAIN = {"RNN": TrainConfig(lr=2e-2), "LSTM": TrainConfig(lr=3e-2),\n'
        '            "Attention-1L": TrainConfig(steps=300, lr=1.3e-2)}'
    )
    short = "TrainConfig(steps=4, warmup=2, lr="
    code = _notebook_code(
        {
            "MY_TEXT = None": f"MY_TEXT = {str(mine)!r}",
            fast: fast.replace("TrainConfig(steps=300, lr=", short)
            .replace("TrainConfig(lr=", short),
            "lengths = [32, 64, 128, 256, 512, 1024]": "lengths = [8, 16]",
        }
    )
    printed: list[str] = []
    ns: dict = {
        "display": lambda *a, **k: None,
        "print": lambda *a, **k: printed.append(" ".join(map(str, a))),
    }
    monkeypatch.setattr("matplotlib.pyplot.show", lambda *a, **k: None)
    for src in code:
        exec(compile(src, "<a1 cell>", "exec"), ns)  # noqa: S102 - ノートブックのセルを順に実行する
    assert ns["BOOK"] is False and ns["data"].tokenizer.stoi.get("Ω")
    assert any("§9 は本のコーパス" in line for line in printed)
    assert len(ns["table"]) == 9  # 一様分布 + 5 つ + 3 つ
