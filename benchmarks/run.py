"""この本のベンチマーク: 表を印字し、最後の行に結果の JSON を 1 つ書く。

``python benchmarks/run.py`` (既定は 1 スレッド) が測るもの:

- **KV キャッシュ** (A-5): 4 層・4 ヘッド・d_model 128・文脈 576 の GPT で、16 トークンの
  プロンプトのあとに 512 トークンを貪欲法で生成する時間を、キャッシュあり・なしで比べる
  (``llmbook.chapters.a5.generate``。生成したトークンが同じことを assert する)。
- **訓練** (``python -m llmbook.train --book``): small のレシピ (d_model 64) の速さ
  (ステップ/秒) と、目標の検証用の損失に届くまでの訓練の秒数 (評価の時間を除く)。目標は
  reference のレシピ (定番の CPU 向けの設定の数値をこの訓練プログラムで再現したもの) の最後の
  検証用の損失。``--compare`` を付けると reference も訓練し、その場で測った値を目標にして並べる
  (reference だけで 1 スレッドの 5〜9 分)。
- **アテンションの時間とメモリ** (A-3 §7 と同じ測り方: ``llmbook.chapters.a1.measure_time`` と
  ``llmbook.attn_analysis.peak_memory``): 自作と ``F.scaled_dot_product_attention``。
- ``--chapters``: 各章のノートブックを ``jupyter nbconvert --execute`` で実行した時間 (約 5 分)。

``--quick`` はどれも小さくして 1 分以内に終える (テスト用。数値の意味は薄い)。
結果の記録は benchmarks/README.md。
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from llmbook.attn_analysis import peak_memory
from llmbook.chapters.a1 import measure_time
from llmbook.chapters.a2 import causal_mask
from llmbook.chapters.a3 import scaled_dot_product_attention
from llmbook.chapters.a5 import CachedMultiHeadAttention, generate, gpt
from llmbook.device import describe_device
from llmbook.train import JapaneseArgumentParser

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 745                     # 本のコーパスの語彙 (A-1 の CharTokenizer、ID 0 = 未知文字)
#: --compare なしのときの目標の損失: --compare で測った reference の最後の検証用の損失
#: (seed 0 で決まる値。benchmarks/README.md の表と同じ)。
REFERENCE_VAL_LOSS = 0.5839

#: 通常と --quick の大きさ。
FULL = {"kv_new": 512, "kv_max_len": 576, "lengths": [256, 512, 1024, 2048],
        "train": []}
QUICK = {"kv_new": 48, "kv_max_len": 64, "lengths": [64, 128],
         "train": ["--n-layer", "2", "--n-head", "2", "--d-model", "32", "--block-size", "32",
                   "--batch-size", "8", "--max-iters", "30", "--eval-interval", "10",
                   "--eval-iters", "2", "--lr", "3e-3"]}
QUICK_TARGET = 5.5              # --quick の小さな訓練の目標の損失 (ln 745 ≈ 6.6 から)


def build_parser() -> JapaneseArgumentParser:
    p = JapaneseArgumentParser(
        prog="python benchmarks/run.py",
        description="この本のベンチマーク (KV キャッシュ・訓練・アテンション・章の実行時間)。"
                    "表を印字し、最後の行に JSON を 1 つ書く。")
    p.add_argument("--quick", action="store_true",
                   help="どれも小さくして 1 分以内に終える (テスト用)")
    p.add_argument("--compare", action="store_true",
                   help="reference のレシピも訓練して、small と並べる (5〜9 分増える)")
    p.add_argument("--chapters", action="store_true",
                   help="各章のノートブックを実行した時間も測る (約 5 分)")
    p.add_argument("--threads", type=int, default=1,
                   help="計算に使うスレッドの数 (既定 1。2 コアを共有する機械では 1 が安定)")
    return p


def load_average() -> list | None:
    """直近 1・5・15 分の負荷 (os.getloadavg)。測れない OS では None。"""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------- KV キャッシュ
def kv_cache_speedup(new_tokens: int, max_len: int, prompt_len: int = 16, seed: int = 0) -> dict:
    """キャッシュあり・なしで new_tokens 個を貪欲法で生成する時間 (秒) と、その比。"""
    torch.manual_seed(seed)
    model = gpt(VOCAB, n_layers=4, n_heads=4, d_model=128, max_len=max_len,
                positions="learned", make_attn=CachedMultiHeadAttention).eval()
    prompt = torch.randint(1, VOCAB, (1, prompt_len),
                           generator=torch.Generator().manual_seed(seed))        # (1, T0)
    out, seconds = {}, {}
    for use_cache in (True, False):
        generate(model, prompt, 4, top_k=1, use_cache=use_cache)               # 慣らし運転
        t0 = time.perf_counter()
        out[use_cache] = generate(model, prompt, new_tokens, top_k=1, use_cache=use_cache)
        seconds[use_cache] = time.perf_counter() - t0
    assert torch.equal(out[True], out[False]), \
        "KV キャッシュあり・なしで、貪欲法の生成したトークンが違います"
    return {"new_tokens": new_tokens, "max_len": max_len, "cached_s": round(seconds[True], 3),
            "uncached_s": round(seconds[False], 3),
            "speedup": round(seconds[False] / seconds[True], 2)}


# --------------------------------------------------------------------------- 訓練
def run_trainer(extra: list, threads: int, out_dir: Path) -> dict:
    """``python -m llmbook.train --book`` を別のプロセスで実行し、最後の行の JSON を返す。"""
    cmd = [sys.executable, "-m", "llmbook.train", "--book", "--device", "cpu",
           "--threads", str(threads), "--out", str(out_dir), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"訓練プログラムが失敗しました (終了コード {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def training(quick: bool, compare: bool, threads: int) -> dict:
    """small のレシピ (と、--compare なら reference) を本のコーパスで訓練した結果。"""
    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            run = run_trainer([*QUICK["train"], "--target-loss", str(QUICK_TARGET)], threads,
                              Path(tmp) / "quick")
            return {"small": run, "reference": None, "target": QUICK_TARGET}
        ref, target = None, REFERENCE_VAL_LOSS
        if compare:
            ref = run_trainer(["--recipe", "reference"], threads, Path(tmp) / "reference")
            target = ref["final_val_loss"]
        small = run_trainer(["--recipe", "small", "--target-loss", f"{target:.4f}"], threads,
                            Path(tmp) / "small")
    return {"small": small, "reference": ref, "target": target}


# --------------------------------------------------------------------------- アテンション
def attention_cost(lengths: list, heads: int = 4, d_k: int = 32) -> list:
    """A-3 §7 と同じ測り方で、系列長 L ごとの時間 (ミリ秒) とメモリの最大値 (MiB)。"""
    funcs = {"ours": lambda q, k, v, m: scaled_dot_product_attention(q, k, v, m)[0],
             "sdpa": lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, is_causal=True)}
    rows = []
    torch.manual_seed(0)
    with torch.no_grad():
        for L in lengths:
            q, k, v = torch.randn(3, 1, heads, L, d_k).unbind(0)           # 各 (1, h, L, d_k)
            m = causal_mask(L)                                              # (L, L) の bool
            row = {"L": L}
            for name, fn in funcs.items():
                call = lambda fn=fn, q=q, k=k, v=v, m=m: fn(q, k, v, m)     # noqa: E731
                row[f"{name}_ms"] = round(measure_time(call, "cpu", repeats=3, warmup=1) * 1e3, 3)
                row[f"{name}_mib"] = round(peak_memory(call, "cpu") / 2**20, 3)
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- 章の実行時間
def chapter_times(threads: int) -> dict:
    """chapters/*.ipynb をそれぞれ nbconvert で実行した時間 (秒)。出力は一時フォルダへ。"""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
            cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   "--ExecutePreprocessor.timeout=900", "--output-dir", tmp, str(nb)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT / "chapters",
                                  env=env, timeout=1800)
            times[nb.stem] = round(time.perf_counter() - t0, 1) if proc.returncode == 0 else None
    return times


# --------------------------------------------------------------------------- 表と JSON
def _fmt(x, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def print_table(res: dict) -> None:
    kv, tr = res["kv"], res["train"]
    print(f"# ベンチマーク {res['date']} ({res['device']}、スレッド {res['threads']}、"
          f"負荷 {res['load_before']} → {res['load_after']})")
    print(f"\n## KV キャッシュ ({kv['new_tokens']} トークンを貪欲法で、文脈 {kv['max_len']})")
    print("| | 秒 | ミリ秒/トークン |\n|---|---:|---:|")
    for name, key in (("キャッシュあり", "cached_s"), ("キャッシュなし", "uncached_s")):
        print(f"| {name} | {kv[key]:.2f} | {kv[key] / kv['new_tokens'] * 1e3:.1f} |")
    print(f"速くなった倍率: {kv['speedup']:.1f} 倍 (生成したトークンは同じ)")
    print(f"\n## 訓練 (本のコーパス、目標の検証用の損失 {tr['target']:.4f})")
    print("| レシピ | ステップ | ステップ/秒 | 訓練の秒数 (評価込み) | 最後の検証用の損失 | "
          "目標までの秒数 (評価を除く) |\n|---|---:|---:|---:|---:|---:|")
    for name in ("reference", "small"):
        r = tr[name]
        if r is not None:
            print(f"| {name} | {r['iters']} | {r['iters_per_second']:.2f} | {r['seconds']:.1f} | "
                  f"{r['final_val_loss']:.4f} | {_fmt(r['time_to_target'], '.1f')} |")
    print("\n## アテンション 1 回 (1 × 4 ヘッド × L × 32、因果マスク)")
    print("| L | 自作: ミリ秒 | SDPA: ミリ秒 | 自作: MiB | SDPA: MiB |\n|---:|---:|---:|---:|---:|")
    for r in res["attention"]:
        print(f"| {r['L']} | {r['ours_ms']:.2f} | {r['sdpa_ms']:.2f} | {r['ours_mib']:.2f} | "
              f"{r['sdpa_mib']:.2f} |")
    if res["chapters_seconds"] is not None:
        print("\n## 章の実行時間 (jupyter nbconvert --execute)\n| 章 | 秒 |\n|---|---:|")
        for name, s in res["chapters_seconds"].items():
            print(f"| {name} | {'失敗 (実行が止まった)' if s is None else f'{s:.1f}'} |")


def summary(res: dict) -> dict:
    """最後の行の JSON: 主な数値を平らなキーで。"""
    kv, tr = res["kv"], res["train"]
    fast, ref = tr["small"], tr["reference"]
    ratio = None
    if ref is not None and fast["time_to_target"] is not None:
        ref_train = ref["iters"] / ref["iters_per_second"]         # 評価を除いた訓練の秒数
        ratio = round(fast["time_to_target"] / ref_train, 3)
    return {
        "date": res["date"], "quick": res["quick"], "threads": res["threads"],
        "device": res["device"], "torch": torch.__version__, "load_before": res["load_before"],
        "load_after": res["load_after"],
        "kv_speedup_512": kv["speedup"] if kv["new_tokens"] == 512 else None,
        "kv_speedup": kv["speedup"], "kv_new_tokens": kv["new_tokens"],
        "kv_cached_s": kv["cached_s"], "kv_uncached_s": kv["uncached_s"],
        "train_target_loss": tr["target"],
        "train_iters_per_second": fast["iters_per_second"],
        "train_time_to_target": fast["time_to_target"],
        "train_final_val_loss": fast["final_val_loss"],
        "reference_iters_per_second": None if ref is None else ref["iters_per_second"],
        "reference_train_seconds": None if ref is None
        else round(ref["iters"] / ref["iters_per_second"], 1),
        "reference_final_val_loss": None if ref is None else ref["final_val_loss"],
        "time_to_target_vs_reference": ratio,
        "attention": res["attention"], "chapters_seconds": res["chapters_seconds"],
    }


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        print(f"エラー: --threads は正の整数にしてください (受け取った値: {args.threads})。",
              file=sys.stderr)
        return 2
    if args.quick and (args.compare or args.chapters):
        print("エラー: --quick は --compare・--chapters と一緒には使えません "
              "(--quick は 1 分以内に終える小さな測定です)。", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    size = QUICK if args.quick else FULL
    res = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "quick": args.quick, "threads": args.threads, "load_before": load_average(),
           "device": f"{describe_device(torch.device('cpu'))}, {platform.machine()}, "
                     f"{os.cpu_count()} コア"}
    say = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,  # noqa: E731
                            flush=True)
    say("KV キャッシュを測っています")
    res["kv"] = kv_cache_speedup(size["kv_new"], size["kv_max_len"])
    say("訓練を測っています" + (" (reference と small)" if args.compare else ""))
    res["train"] = training(args.quick, args.compare, args.threads)
    say("アテンションを測っています")
    res["attention"] = attention_cost(size["lengths"])
    if args.chapters:
        say("章のノートブックを実行しています")
    res["chapters_seconds"] = chapter_times(args.threads) if args.chapters else None
    res["load_after"] = load_average()
    print_table(res)
    print(json.dumps(summary(res), ensure_ascii=False, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
