"""訓練プログラム (:mod:`llmbook.train`) のデータ並列の部分: torchrun と DistributedDataParallel。

``torchrun --nproc_per_node N -m llmbook.train ...`` は、環境変数 ``RANK``・``WORLD_SIZE``・
``LOCAL_RANK`` を付けて N 個のプロセスを起動する。ここではそれを読み、プロセスグループを
作り (CPU は gloo、CUDA は nccl)、モデルを DDP で包む。勾配は backward の中で全プロセスの
平均になるので、どのプロセスの重みも毎ステップ同じに保たれる。

テスト用に、環境変数 ``LLMBOOK_TRAIN_DIGEST_DIR`` があれば、訓練の最後に各プロセスが重みの
要約 (SHA-256 と和) を ``rank<r>.json`` に書く (プロセスどうしがそろっているかを確かめるため)。
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as torch_dist
import torch.nn as nn

__all__ = ["DistInfo", "setup_dist", "cleanup_dist", "wrap_ddp", "param_digest", "DIGEST_ENV"]

DIGEST_ENV = "LLMBOOK_TRAIN_DIGEST_DIR"


@dataclass(frozen=True)
class DistInfo:
    """このプロセスの番号 (rank)、プロセスの総数 (world_size)、同じ機械の中の番号 (local_rank)。"""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistInfo:
        """torchrun が付けた環境変数から作る (なければ 1 プロセス)。"""
        get = os.environ.get
        return cls(int(get("RANK", 0)), int(get("WORLD_SIZE", 1)), int(get("LOCAL_RANK", 0)))


def _wants_cuda(device_name: str) -> bool:
    return device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available()
                                     and os.environ.get("LLMBOOK_DEVICE", "auto") in ("", "auto",
                                                                                      "cuda"))


def setup_dist(dist: DistInfo, device_name: str) -> None:
    """プロセスが複数ならプロセスグループを作る (CUDA は nccl、それ以外は gloo)。"""
    if dist.world_size <= 1:
        return
    cuda = _wants_cuda(device_name) and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(dist.local_rank)
    torch_dist.init_process_group("nccl" if cuda else "gloo", rank=dist.rank,
                                  world_size=dist.world_size)


def cleanup_dist(dist: DistInfo) -> None:
    """プロセスグループを片付ける (作っていなければ何もしない)。"""
    if dist.world_size > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def wrap_ddp(model: nn.Module, dist: DistInfo, device: torch.device) -> nn.Module:
    """プロセスが複数なら DDP で包む (初期の重みは rank 0 のものが全プロセスに配られる)。"""
    if dist.world_size <= 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def param_digest(model: nn.Module, dist: DistInfo) -> dict | None:
    """環境変数 DIGEST_ENV があれば、重みの要約を rank<r>.json に書く (テスト用)。"""
    folder = os.environ.get(DIGEST_ENV)
    if not folder:
        return None
    h, total = hashlib.sha256(), 0.0
    for name, p in sorted(model.state_dict().items()):
        t = p.detach().float().cpu().contiguous()
        h.update(name.encode())
        h.update(t.numpy().tobytes())
        total += float(t.double().abs().sum())
    digest = {"rank": dist.rank, "sha256": h.hexdigest(), "abs_sum": total}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank{dist.rank}.json").write_text(json.dumps(digest), encoding="utf-8")
    return digest
