"""llmbook.train (コマンドラインの訓練プログラム) のテスト。どれも小さなモデルで数秒。"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from llmbook.chapters.a2 import DecoderLM
from llmbook.chapters.a3 import MultiHeadAttention
from llmbook.chapters.a4 import make_ffn
from llmbook.chapters.a5 import CachedMultiHeadAttention
from llmbook.corpus import CharTokenizer, generate_corpus
from llmbook.train import (
    CHECKPOINT_NAME,
    RECIPES,
    SAMPLE_NAME,
    apply_recipe,
    build_model,
    build_parser,
    generate,
    lr_at,
    main,
)
from llmbook.train_ddp import DIGEST_ENV

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"iters", "seconds", "best_val_loss", "time_to_target", "params", "device",
        "final_val_loss", "iters_per_second"}
TINY = ["--n-layer", "2", "--n-head", "2", "--d-model", "32", "--block-size", "32",
        "--batch-size", "8", "--eval-iters", "4", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _one_thread():
    """2 コアを共有する機械では、1 スレッドの方がずっと速く安定する。"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    """本のコーパスの先頭 約 6,000 文字 (UTF-8)。"""
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(generate_corpus(0, min_chars=6000).text, encoding="utf-8")
    return path


def run_main(capsys, *argv) -> tuple:
    """main を同じプロセスで呼び、(終了コード, 標準出力, 標準エラー) を返す。"""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:               # argparse の誤りは SystemExit(2)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(text_file, tmp_path_factory) -> tuple:
    """30 ステップ訓練した出力フォルダと、その標準出力。"""
    out_dir, buf = tmp_path_factory.mktemp("run"), io.StringIO()
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(buf):
        code = main(["--text", str(text_file), *TINY, "--max-iters", "30", "--eval-interval",
                     "10", "--lr", "3e-3", "--target-loss", "5.8", "--out", str(out_dir)])
    assert code == 0
    return out_dir, buf.getvalue()


def test_tiny_run_prints_json_and_saves_checkpoint(trained):
    out_dir, out = trained
    result = last_json(out)
    assert set(result) == KEYS
    assert result["iters"] == 30 and result["device"].startswith("cpu")
    assert result["time_to_target"] is not None and result["time_to_target"] <= result["seconds"]
    assert "検証用の損失" in out                           # 評価ごとの損失
    ckpt = torch.load(out_dir / CHECKPOINT_NAME, weights_only=True)
    vals = [h["val"] for h in ckpt["history"]]
    assert [h["iter"] for h in ckpt["history"]] == [0, 10, 20, 30]
    assert vals[-1] < vals[0] - 0.5, vals                  # 損失が下がった
    assert result["best_val_loss"] == pytest.approx(min(vals))
    assert result["final_val_loss"] == pytest.approx(vals[-1])
    assert result["iters_per_second"] > 0
    train_seconds = [h["train_seconds"] for h in ckpt["history"]]
    assert train_seconds == sorted(train_seconds)            # 評価を除いた訓練の時間は増えるだけ
    assert result["time_to_target"] in [pytest.approx(t, abs=1e-3) for t in train_seconds]
    model = build_model(**ckpt["config"])
    assert result["params"] == sum(p.numel() for p in model.parameters())
    assert len((out_dir / SAMPLE_NAME).read_text(encoding="utf-8")) == 300


def test_sample_uses_checkpoint_without_training(trained, text_file, capsys):
    trained = trained[0]
    ckpt_file = trained / CHECKPOINT_NAME
    before = ckpt_file.stat().st_mtime_ns
    code, out, err = run_main(capsys, "--sample", "80", "--out", trained, "--device", "cpu",
                              "--threads", "1")
    assert code == 0, err
    result = last_json(out)
    assert set(result) == KEYS and result["iters"] == 0
    assert ckpt_file.stat().st_mtime_ns == before          # 訓練も保存もしていない
    sample = (trained / SAMPLE_NAME).read_text(encoding="utf-8")
    vocab = set(CharTokenizer(text_file.read_text(encoding="utf-8")).itos[1:])
    assert len(sample) == 80 and set(sample) <= vocab     # 未知文字 (ID 0) も出さない
    assert sample in out


def test_lr_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 100, 10, 1e-3) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))   # ピークのあとは下がるだけ
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)
    assert lr_at(100, 100, 10, 3e-3, 2e-5) == pytest.approx(2e-5)    # 行き先は min_lr


def test_reference_recipe_is_the_classic_cpu_setting():
    """--recipe reference は定番の CPU 向けの設定の数値。個別の引数はレシピより優先する。"""
    args = apply_recipe(build_parser().parse_args(["--book", "--recipe", "reference"]))
    got = {k: getattr(args, k) for k in ("n_layer", "n_head", "d_model", "block_size",
                                         "batch_size", "lr", "min_lr", "warmup", "max_iters",
                                         "eval_interval", "eval_iters")}
    assert got == {"n_layer": 4, "n_head": 4, "d_model": 128, "block_size": 64,
                   "batch_size": 12, "lr": 1e-3, "min_lr": pytest.approx(1e-4), "warmup": 100,
                   "max_iters": 2000, "eval_interval": 250, "eval_iters": 20}
    args = apply_recipe(build_parser().parse_args(["--book", "--lr", "2e-3", "--max-iters",
                                                   "50"]))
    assert args.recipe in RECIPES and args.lr == 2e-3 and args.max_iters == 50
    assert args.warmup == 5 and args.min_lr == pytest.approx(2e-3 * RECIPES[args.recipe]
                                                              ["min_lr_ratio"])


def _old_style_model(vocab_size: int, max_len: int = 32) -> DecoderLM:
    """A-5 より前の build_model と同じ作り方 (A-3 の MultiHeadAttention)。"""
    return DecoderLM(vocab_size, 32, 2, 2, max_len, make_attn=MultiHeadAttention,
                     make_ffn=lambda d: make_ffn("gelu", d))


def test_model_is_a5_gpt_with_the_old_parameter_names():
    torch.manual_seed(0)
    new, old = build_model(50, 2, 2, 32, 32), _old_style_model(50)
    assert all(isinstance(b.attn, CachedMultiHeadAttention) for b in new.blocks)
    assert new.pos_emb is not None                          # 学習する位置の埋め込み
    assert {k: v.shape for k, v in new.state_dict().items()} == \
        {k: v.shape for k, v in old.state_dict().items()}
    new.load_state_dict(old.state_dict())
    ids = torch.randint(0, 50, (2, 20))
    torch.testing.assert_close(new(ids), old(ids))


def test_old_checkpoint_still_samples(text_file, tmp_path, capsys):
    """A-3 のアテンションで保存した形式のチェックポイントも --sample で読める。"""
    tok = CharTokenizer(text_file.read_text(encoding="utf-8"))
    torch.manual_seed(1)
    old = _old_style_model(tok.vocab_size)
    config = {"vocab_size": tok.vocab_size, "n_layer": 2, "n_head": 2, "d_model": 32,
              "block_size": 32}
    torch.save({"model": old.state_dict(), "config": config, "itos": tok.itos, "history": [],
                "result": {"best_val_loss": 3.0}, "args": {}}, tmp_path / CHECKPOINT_NAME)
    code, out, err = run_main(capsys, "--sample", "40", "--out", tmp_path, "--device", "cpu")
    assert code == 0, err
    result = last_json(out)
    assert set(result) == KEYS and result["best_val_loss"] == 3.0
    assert len((tmp_path / SAMPLE_NAME).read_text(encoding="utf-8")) == 40


class _FavoursUnknown(nn.Module):
    """ID 0 (未知文字) のロジットを大きくする包み (禁止が効くかを確かめるため)。"""

    def __init__(self, model):
        super().__init__()
        self.model, self.max_len, self.blocks = model, model.max_len, model.blocks

    def forward(self, ids, **kw):
        logits = self.model(ids, **kw)
        return logits + 20.0 * (torch.arange(logits.shape[-1]) == 0)


def test_generate_uses_the_cache_and_never_picks_banned_ids():
    torch.manual_seed(0)
    cached = build_model(30, 2, 2, 32, 16)
    plain = _old_style_model(30, 16).eval()
    plain.load_state_dict(cached.state_dict())
    prompt = torch.tensor([[3, 4, 5]])
    a = generate(cached, prompt, 40, torch.Generator().manual_seed(7))   # 文脈 16 を越える
    b = generate(plain, prompt, 40, torch.Generator().manual_seed(7))
    assert a == b and len(a) == 40                          # キャッシュあり = なし
    favoured = generate(_FavoursUnknown(cached), prompt, 40, torch.Generator().manual_seed(7))
    assert 0 not in favoured and len(favoured) == 40
    unbanned = generate(_FavoursUnknown(cached), prompt, 40, torch.Generator().manual_seed(7),
                        banned=())
    assert unbanned.count(0) > 30                           # 禁止しなければ ID 0 ばかり


def test_book_corpus_tiny_run(tmp_path, capsys):
    """--book は本のコーパス (A-1 と同じ分割、語彙 745) で訓練する。"""
    code, out, err = run_main(capsys, "--book", *TINY, "--max-iters", "2", "--eval-iters", "1",
                              "--eval-interval", "2", "--out", tmp_path)
    assert code == 0, err
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["config"]["vocab_size"] == 745 and ckpt["args"]["book"] is True
    assert "訓練用 287,713 文字" in out


def _write(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD_CASES = {
    "missing": lambda p: ["--text", p / "nothing.txt"],
    "empty": lambda p: ["--text", _write(p, "empty.txt", b"  \n")],
    "undecodable": lambda p: ["--text", _write(p, "bad.txt", bytes([0x82, 0xFF, 0xFE]) * 500)],
    "too_short_for_block": lambda p: ["--text", _write(p, "short.txt", "あいうえお。".encode()
                                                       * 250), "--block-size", "200"],
    "heads_do_not_divide": lambda p: ["--text", p / "x.txt", "--d-model", "30", "--n-head", "4"],
    "zero_layers": lambda p: ["--text", p / "x.txt", "--n-layer", "0"],
    "negative_lr": lambda p: ["--text", p / "x.txt", "--lr", "-1"],
    "min_lr_above_lr": lambda p: ["--text", p / "x.txt", "--lr", "1e-3", "--min-lr", "1e-2"],
    "unknown_recipe": lambda p: ["--text", p / "x.txt", "--recipe", "turbo"],
    "text_and_book": lambda p: ["--text", p / "x.txt", "--book"],
    "zero_threads": lambda p: ["--text", p / "x.txt", "--threads", "0"],
    "not_a_number": lambda p: ["--text", p / "x.txt", "--batch-size", "many"],
    "sample_without_checkpoint": lambda p: ["--sample", "10", "--out", p / "no_run"],
    "no_text": lambda p: [],
    "out_is_a_file": lambda p: ["--text", p / "x.txt", "--out", _write(p, "f.txt", b"x")],
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_exits_2_in_japanese(case, tmp_path, capsys):
    code, out, err = run_main(capsys, *BAD_CASES[case](tmp_path), "--device", "cpu")
    assert code == 2
    assert "エラー" in err and "Traceback" not in err + out
    assert any("\u3040" <= c <= "\u30ff" for c in err)     # かなを含む日本語のメッセージ


def test_bad_input_from_the_command_line(tmp_path):
    """本物のコマンドでも、トレースバックなしで終了コード 2。"""
    proc = subprocess.run([sys.executable, "-m", "llmbook.train", "--text",
                           str(tmp_path / "nothing.txt")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert "ファイルが見つかりません" in proc.stderr and "Traceback" not in proc.stderr


def test_shift_jis_input(tmp_path, capsys):
    text = generate_corpus(0, min_chars=3000).text
    path = _write(tmp_path, "sjis.txt", text.encode("cp932"))
    code, out, err = run_main(capsys, "--text", path, *TINY, "--max-iters", "3",
                              "--eval-interval", "3", "--out", tmp_path / "run")
    assert code == 0, err
    ckpt = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["itos"] == CharTokenizer(text).itos        # 文字化けせずに読めた


def _digests(folder: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("rank*.json")}


def test_ddp_two_processes_match_one_process(text_file, tmp_path, capsys, monkeypatch):
    """2 プロセス × バッチ 4 の DDP と、1 プロセス × バッチ 8 は同じ例を見て同じ重みになる。"""
    common = ["--text", text_file, *TINY[:-4], "--eval-iters", "2", "--max-iters", "4",
              "--eval-interval", "2", "--lr", "3e-3", "--device", "cpu"]
    env = {**os.environ, DIGEST_ENV: str(tmp_path / "ddp"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "llmbook.train", *map(str, common), "--batch-size", "4",
           "--out", str(tmp_path / "out_ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = _digests(tmp_path / "ddp")
    assert set(ddp) == {"rank0", "rank1"}
    assert ddp["rank0"]["sha256"] == ddp["rank1"]["sha256"]     # 2 つのプロセスの重みは同じ
    assert proc.stdout.count("検証用の損失") == 3                 # rank 0 だけが表示する
    ddp_result = last_json(proc.stdout)

    monkeypatch.setenv(DIGEST_ENV, str(tmp_path / "single"))
    code, out, err = run_main(capsys, *common, "--batch-size", "8", "--out", tmp_path / "out1")
    assert code == 0, err
    single = _digests(tmp_path / "single")["rank0"]
    assert single["abs_sum"] == pytest.approx(ddp["rank0"]["abs_sum"], rel=1e-5)
    assert last_json(out)["best_val_loss"] == pytest.approx(ddp_result["best_val_loss"], abs=1e-5)
    h1, h2 = (torch.load(d / CHECKPOINT_NAME, weights_only=True)["history"]
              for d in (tmp_path / "out1", tmp_path / "out_ddp"))
    for a, b in zip(h1, h2, strict=True):
        assert a["train"] == pytest.approx(b["train"], abs=1e-5)
        assert a["val"] == pytest.approx(b["val"], abs=1e-5)
