"""benchmarks/run.py のテスト: --quick を別のプロセスで実行し、表と最後の行の JSON を確かめる。

時間の値そのものは確かめない (速さは機械と負荷で変わる。記録は benchmarks/README.md)。
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "run.py"
NUMBERS = ["kv_speedup", "kv_cached_s", "kv_uncached_s", "train_target_loss",
           "train_iters_per_second", "train_final_val_loss"]
NULLABLE = ["kv_speedup_512", "train_time_to_target", "reference_iters_per_second",
            "reference_train_seconds", "reference_final_val_loss",
            "time_to_target_vs_reference", "chapters_seconds"]


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def quick() -> tuple:
    proc = run("--quick")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


def test_quick_prints_tables(quick):
    lines, _ = quick
    text = "\n".join(lines[:-1])
    for heading in ("## KV キャッシュ", "## 訓練", "## アテンション"):
        assert heading in text
    assert "| キャッシュあり |" in text and "| small |" in text
    assert "## 章の実行時間" not in text                      # --chapters を付けていない


def test_quick_json_keys_and_types(quick):
    _, res = quick
    assert res["quick"] is True and res["threads"] == 1
    for key in NUMBERS:
        assert isinstance(res[key], float) and res[key] > 0, key
    for key in NULLABLE:
        assert key in res, key
    assert res["kv_speedup_512"] is None and res["kv_new_tokens"] == 48   # --quick は小さく
    assert res["chapters_seconds"] is None
    assert isinstance(res["train_time_to_target"], (float, type(None)))
    assert [r["L"] for r in res["attention"]] == [64, 128]
    for row in res["attention"]:
        assert {"ours_ms", "sdpa_ms", "ours_mib", "sdpa_mib"} <= set(row)
        assert all(isinstance(row[k], float) and row[k] >= 0 for k in row if k != "L")
    assert isinstance(res["load_before"], (list, type(None)))


@pytest.mark.parametrize("args", [["--threads", "0"], ["--threads", "two"], ["--fast"],
                                  ["--quick", "--chapters"]])
def test_bad_flags_exit_2_in_japanese(args):
    proc = run(*args, timeout=120)
    assert proc.returncode == 2
    assert "エラー" in proc.stderr and "Traceback" not in proc.stderr
    assert any("\u3040" <= c <= "\u30ff" for c in proc.stderr)     # かなを含む日本語
    assert proc.stdout == ""
