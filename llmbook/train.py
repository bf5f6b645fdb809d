"""コマンドラインの訓練プログラム: この本の GPT を任意のテキストで訓練する (A-5 で使う)。

``python -m llmbook.train --text PATH`` (本のコーパスなら ``--book``) は、A-5 の
:func:`~llmbook.chapters.a5.gpt` (A-2 の骨格 + A-3 のマルチヘッドアテンション + A-4 の GELU の
FFN。アテンションは KV キャッシュつきの :class:`~llmbook.chapters.a5.CachedMultiHeadAttention`)
を、文字をトークンとして訓練する。

- データは A-1 の読み込み (:func:`~llmbook.corpus.load_text`: UTF-8 / Shift_JIS の自動判定と
  青空文庫の注記の除去) と :func:`~llmbook.chapters.a1.make_a1_data` (末尾の 10% が検証用) を通る。
- 大きさと学習率などの既定値は ``--recipe`` の組 (:data:`RECIPES`)。既定の reference は小さな
  GPT の定番の CPU 向けの設定の数値。
- AdamW、ウォームアップ + コサイン減衰の学習率、勾配クリッピング。このファイルのコードは、
  訓練ループの中で評価のとき以外にホストとの同期 (``.item()`` など) をしない (章のコードの
  入力の検査は、CUDA ではマスクを調べるときに同期する)。
- 出力: 標準エラーに進捗バー (端末のときだけ)、評価ごとの損失、最後にチェックポイント
  (``--out`` の ``ckpt.pt``) と、A-5 の :func:`~llmbook.chapters.a5.generate` (KV キャッシュ) で
  生成した文章 (``sample.txt``)。標準出力の最後の行は JSON 1 つ (``iters``・``seconds``・
  ``best_val_loss``・``time_to_target`` (評価の時間を除いた訓練の秒数)・``params``・
  ``device``・``final_val_loss``・``iters_per_second``)。
- ``--sample N`` は ``--out`` のチェックポイントから N 文字を生成するだけで、訓練しない。
- ``torchrun --nproc_per_node N`` で起動すると DistributedDataParallel で訓練する
  (:mod:`llmbook.train_ddp`)。
- 入力の誤りは日本語のメッセージと終了コード 2 で知らせる (トレースバックは出さない)。
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmbook.chapters.a1 import get_batch, load_a1_data, make_a1_data, synchronize
from llmbook.chapters.a2 import DecoderLM
from llmbook.chapters.a5 import CachedMultiHeadAttention, gpt
from llmbook.chapters.a5 import generate as a5_generate
from llmbook.corpus import CharTokenizer, CorpusError, load_text
from llmbook.device import describe_device, get_device, mps_available
from llmbook.seed import set_seed
from llmbook.train_ddp import DistInfo, cleanup_dist, param_digest, setup_dist, wrap_ddp

__all__ = ["TrainError", "JapaneseArgumentParser", "build_parser", "check_args", "apply_recipe",
           "build_model", "lr_at", "draw_batch", "estimate_loss", "generate", "train",
           "sample_from_checkpoint", "main", "RECIPES", "DEFAULT_RECIPE", "CHECKPOINT_NAME",
           "SAMPLE_NAME", "SAMPLE_CHARS"]

#: 既定値の組 (レシピ)。reference は小さな GPT の定番の CPU 向けの設定 (nanoGPT の
#: shakespeare_char を CPU で: 4 層・4 ヘッド・d 128・文脈 64・バッチ 12・2,000 ステップ・学習率
#: 1e-3 → 1e-4・ウォームアップ 100・評価 250 ステップごとに 20 バッチ) の数値で、既定。
#: small は d_model を 64 にして学習率を上げ、ステップを増やした組: 本のコーパスでは reference の
#: 最後の検証用の損失に、reference より短い時間で届いた (benchmarks/README.md)。AdamW の betas
#: (0.9, 0.99)・重み減衰 0.1・勾配クリッピング 1.0・ドロップアウトなしは、どのレシピも同じ。
RECIPES = {
    "reference": {"n_layer": 4, "n_head": 4, "d_model": 128, "block_size": 64, "batch_size": 12,
                  "lr": 1e-3, "min_lr_ratio": 0.1, "warmup": 100, "max_iters": 2000,
                  "eval_interval": 250, "eval_iters": 20},
    "small": {"n_layer": 4, "n_head": 4, "d_model": 64, "block_size": 64, "batch_size": 12,
              "lr": 3e-3, "min_lr_ratio": 0.1, "warmup": 100, "max_iters": 3000,
              "eval_interval": 250, "eval_iters": 20},
}
DEFAULT_RECIPE = "reference"
_RECIPE_FLAGS = [            # (引数, 型, 説明): 既定値はレシピから
    ("--n-layer", int, "ブロックの数"),
    ("--n-head", int, "ヘッドの数"),
    ("--d-model", int, "埋め込みの次元"),
    ("--block-size", int, "文脈の長さ = 1 例の文字数"),
    ("--batch-size", int, "1 ステップのバッチの大きさ。torchrun では 1 プロセスあたり"),
    ("--lr", float, "最大の学習率"),
    ("--max-iters", int, "訓練のステップ数"),
    ("--eval-interval", int, "何ステップごとに評価するか (最初と最後にも評価する)"),
    ("--eval-iters", int, "評価 1 回に使うバッチの数"),
]
CHECKPOINT_NAME = "ckpt.pt"      # --out の中のチェックポイントのファイル名
SAMPLE_NAME = "sample.txt"       # 生成した文章を書くファイル名
SAMPLE_CHARS = 300               # 訓練の最後に生成する文字数
EXIT_USAGE = 2                   # 入力の誤りの終了コード


class TrainError(ValueError):
    """訓練プログラムへの入力の誤り (日本語のメッセージ。main が終了コード 2 にする)。"""


class JapaneseArgumentParser(argparse.ArgumentParser):
    """引数の誤りを日本語の 1 行にして、終了コード 2 で終わる ArgumentParser。"""

    def error(self, message: str):  # noqa: D401 - argparse の約束
        self.exit(EXIT_USAGE, f"エラー: 引数が正しくありません ({message})。"
                              f"使い方は {self.prog} --help で確かめてください。\n")


def build_parser() -> argparse.ArgumentParser:
    """``python -m llmbook.train`` の引数の定義 (既定値は小さな GPT の CPU 向けの定番の設定)。"""
    p = JapaneseArgumentParser(
        prog="python -m llmbook.train",
        description="この本の GPT (A-2 の骨格 + A-3 のマルチヘッドアテンション + A-4 の GELU の "
                    "FFN) を、文字をトークンとしてテキストで訓練する。末尾の 10% が検証用。",
        epilog="torchrun --nproc_per_node N -m llmbook.train ... で起動すると、N 個のプロセスで"
               "データ並列に訓練する (CPU は gloo、CUDA は nccl)。--batch-size は 1 プロセス"
               "あたりの大きさで、1 ステップの全体のバッチは N 倍になる。")
    p.add_argument("--text", type=Path, help="訓練に使うテキストファイル (UTF-8 か Shift_JIS)")
    p.add_argument("--book", action="store_true",
                   help="--text の代わりに本のコーパスで訓練する (A-1〜A-5 と同じ一節単位の分割)")
    p.add_argument("--encoding", default="auto",
                   help="文字コード (既定 auto: UTF-8、だめなら cp932 = Shift_JIS)")
    p.add_argument("--recipe", default=DEFAULT_RECIPE, choices=sorted(RECIPES),
                   help="下の大きさと学習率などの既定値の組 (既定 %(default)s)。reference は"
                        "小さな GPT の定番の CPU 向けの設定 (nanoGPT の shakespeare_char) の"
                        "数値を、この訓練プログラムで再現したもの。個別の引数が優先する")
    recipe = RECIPES[DEFAULT_RECIPE]
    for flag, kind, text in _RECIPE_FLAGS:
        p.add_argument(flag, type=kind, default=None,
                       help=f"{text} (既定 {recipe[flag[2:].replace('-', '_')]:g})")
    p.add_argument("--warmup", type=int, default=None,
                   help="ウォームアップのステップ数 (既定 min(レシピの値, max-iters / 10))")
    p.add_argument("--min-lr", type=float, default=None,
                   help="コサイン減衰の行き先の学習率 (既定 レシピの比 × --lr)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="計算に使うデバイス (既定 auto: CUDA があれば CUDA、なければ CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU の計算に使うスレッドの数 (既定は PyTorch の既定。ほかの処理と"
                        "コアを分け合う機械では 1 が速いことがある)")
    p.add_argument("--seed", type=int, default=0, help="乱数の種 (既定 0)")
    p.add_argument("--out", type=Path, default=Path("out-train"),
                   help="チェックポイントと生成した文章を書くフォルダ (既定 out-train)")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="訓練せず、--out のチェックポイントから N 文字を生成する")
    p.add_argument("--target-loss", type=float, default=None, metavar="X",
                   help="検証用の損失が X 以下になるまでの訓練の秒数 (評価の時間を除く) を "
                        "time_to_target に出す")
    p.add_argument("--compile", action="store_true",
                   help="訓練のモデルを torch.compile する (この本の CPU では 1 ステップは速く"
                        "なったが、コンパイルに数分かかり短い訓練では元が取れなかった。"
                        "benchmarks/README.md)")
    return p


def _positive(name: str, value, kind=int) -> None:
    ok = value > 0 and (kind is int or math.isfinite(value))
    if not ok:
        word = "正の整数" if kind is int else "正の有限の数"
        raise TrainError(f"{name} は{word}にしてください (受け取った値: {value})。")


def apply_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """指定しなかった引数 (None) をレシピの値で埋める。warmup と min_lr も決める。"""
    recipe = RECIPES[getattr(args, "recipe", None) or DEFAULT_RECIPE]
    for flag, _, _ in _RECIPE_FLAGS:
        name = flag[2:].replace("-", "_")
        if getattr(args, name, None) is None:
            setattr(args, name, recipe[name])
    if getattr(args, "warmup", None) is None:
        args.warmup = min(recipe["warmup"], args.max_iters // 10)
    if getattr(args, "min_lr", None) is None:
        args.min_lr = args.lr * recipe["min_lr_ratio"]
    return args


def check_args(args: argparse.Namespace) -> None:
    """大きさや学習率が意味のある値かを確かめる (誤りは日本語の :class:`TrainError`)。

    指定しなかった引数は先にレシピの値で埋める (:func:`apply_recipe`)。
    """
    apply_recipe(args)
    if args.threads is not None:
        _positive("--threads", args.threads)
    if args.sample is not None:
        _positive("--sample", args.sample)
        return
    if (args.text is None) == (not args.book):
        raise TrainError("訓練するテキストを --text PATH か --book (本のコーパス) のどちらか "
                         "1 つで指定してください (チェックポイントから生成するだけなら "
                         "--sample N)。")
    for name in ("n_layer", "n_head", "d_model", "block_size", "batch_size", "max_iters",
                 "eval_interval", "eval_iters"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    _positive("--lr", args.lr, float)
    if not (math.isfinite(args.min_lr) and 0 <= args.min_lr <= args.lr):
        raise TrainError(f"--min-lr は 0 以上 --lr ({args.lr:g}) 以下にしてください "
                         f"(受け取った値: {args.min_lr})。")
    if args.target_loss is not None:
        _positive("--target-loss", args.target_loss, float)
    if not 0 <= args.warmup <= args.max_iters:
        raise TrainError(f"--warmup は 0 以上 --max-iters ({args.max_iters}) 以下にしてください "
                         f"(受け取った値: {args.warmup})。")
    if args.out.exists() and not args.out.is_dir():
        raise TrainError(f"--out {args.out} はファイルです。出力を書くフォルダを指定してください。")
    if args.d_model % args.n_head:
        raise TrainError(f"--d-model ({args.d_model}) は --n-head ({args.n_head}) で割り切れる"
                         "大きさにしてください (各ヘッドが d_model / n_head 次元を受け持つため)。")


def resolve_device(name: str, dist: DistInfo) -> torch.device:
    """--device の名前からデバイスを決める (auto は :func:`llmbook.device.get_device` の方針)。"""
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda ですが、この環境では CUDA (NVIDIA の GPU) が使えません。")
    if name == "mps" and not mps_available():
        raise TrainError("--device mps ですが、この環境では Apple の GPU (MPS) が使えません。")
    try:
        device = get_device(verbose=False) if name == "auto" else torch.device(name)
    except ValueError as e:                        # 環境変数 LLMBOOK_DEVICE の誤り
        raise TrainError(str(e)) from None
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    return device


def build_model(vocab_size: int, n_layer: int, n_head: int, d_model: int,
                block_size: int, make_attn: Callable = CachedMultiHeadAttention) -> DecoderLM:
    """この本の GPT: A-5 の :func:`~llmbook.chapters.a5.gpt` (A-2 の骨格 + A-3 のアテンション +
    A-4 の GELU の FFN) を、学習する位置の埋め込みと文脈 block_size で作る。

    アテンションは既定で A-5 の KV キャッシュつき (パラメータは A-3 の MultiHeadAttention と
    同じ名前と形なので、A-3 のアテンションで保存したチェックポイントもそのまま読める)。
    """
    return gpt(vocab_size, n_layers=n_layer, n_heads=n_head, d_model=d_model,
               max_len=block_size, positions="learned", make_attn=make_attn)


def model_config(model: DecoderLM) -> dict:
    """チェックポイントに残す、モデルを作り直すための大きさ。"""
    return {"vocab_size": model.vocab_size, "n_layer": len(model.blocks),
            "n_head": model.blocks[0].attn.n_heads, "d_model": model.d_model,
            "block_size": model.max_len}


def lr_at(step: int, max_iters: int, warmup: int, lr: float, min_lr: float | None = None) -> float:
    """ステップ step (0 から) の学習率: 線形のウォームアップのあと、コサインで min_lr へ。

    min_lr の既定は lr / 10。
    """
    min_lr = lr / 10 if min_lr is None else min_lr
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, max_iters - warmup)              # 0 → 1
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1):
    """AdamW。重み減衰は行列 (2 次元以上) にだけ掛け、バイアスとレイヤー正規化には掛けない。"""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))


def draw_batch(ids: torch.Tensor, batch_size: int, block_size: int, g: torch.Generator,
               dist: DistInfo, device: torch.device) -> tuple:
    """全プロセスで共通の乱数から全体のバッチ (batch_size × world_size 本) を引き、自分の分を取る。

    どのプロセスも同じ ``g`` の列を引くので、プロセスごとに違う例を受け持ちつつ、1 プロセスで
    batch_size × world_size 本を引いた訓練とまったく同じ例を見る。戻り値は x, y (B, T)。
    """
    x, y = get_batch(ids, batch_size * dist.world_size, block_size, g)        # (W·B, T)
    rows = slice(dist.rank * batch_size, (dist.rank + 1) * batch_size)
    x, y = x[rows], y[rows]                                                     # (B, T)
    if device.type == "cuda":
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def _autocast(device: torch.device):
    """CUDA で bf16 が使えれば bf16 の autocast、それ以外は何もしない文脈。"""
    use = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """次の文字の平均交差エントロピー (スカラーの Tensor。ホストとの同期はしない)。"""
    with _autocast(x.device):
        logits = model(x)                                                       # (B, T, V)
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def estimate_loss(model: nn.Module, ids: torch.Tensor, batch_size: int, block_size: int,
                  eval_iters: int, seed: int, device: torch.device) -> float:
    """ランダムな eval_iters 個のバッチの平均損失。毎回同じ seed のバッチで測る (比べやすい)。"""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros((), device=device)
    for _ in range(eval_iters):
        x, y = get_batch(ids, batch_size, block_size, g, device)
        total += lm_loss(model, x, y)
    model.train(was_training)
    return total.item() / eval_iters


class _Banned(nn.Module):
    """モデルの包み: ロジット (B, T, V) の ``banned`` の ID を −∞ にする (その ID は選ばれない)。

    A-5 の :func:`~llmbook.chapters.a5.generate` が使う ``max_len``・``blocks`` (KV キャッシュの
    数) と、呼び出し (``cache``・``start_pos`` など) はそのまま中のモデルへ渡す。
    """

    def __init__(self, model: DecoderLM, banned: Sequence[int]):
        super().__init__()
        self.model, self.banned = model, list(banned)
        self.max_len, self.blocks = model.max_len, model.blocks

    def forward(self, ids: torch.Tensor, **kw) -> torch.Tensor:
        logits = self.model(ids, **kw).float()                                  # (B, T, V)
        logits[..., self.banned] = float("-inf")
        return logits


@torch.no_grad()
def generate(model: DecoderLM, prompt: torch.Tensor, n: int, g: torch.Generator,
             banned: Sequence[int] = (CharTokenizer.unk_id,)) -> list:
    """prompt (1, T0) の続きを n トークン、温度 1 のサンプリングで作る (A-5 の KV キャッシュ)。

    A-5 の :func:`~llmbook.chapters.a5.generate` (``use_cache=True``) を使う。アテンションが
    KV キャッシュつきでないモデル (A-3 の MultiHeadAttention) なら、毎回読み直す方法になる。
    ``banned`` の ID (既定は未知文字) は選ばない。g はモデルと同じデバイスの乱数生成器。
    戻り値は新しく作った ID のリスト。
    """
    cached = all(isinstance(b.attn, CachedMultiHeadAttention) for b in model.blocks)
    ids = a5_generate(_Banned(model, banned), prompt, n, generator=g, use_cache=cached)
    return ids[0, prompt.shape[1]:].tolist()


def _sample_text(model: DecoderLM, tok: CharTokenizer, n: int, seed: int,
                 device: torch.device, generate_fn: Callable = generate) -> str:
    """改行 (語彙になければ最初の文字) から始めて n 文字を生成し、文字列にする。"""
    start = tok.stoi.get("\n", 1)
    prompt = torch.tensor([[start]], dtype=torch.long, device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    return tok.decode(generate_fn(model, prompt, n, g))


class Progress:
    """標準エラーの簡単な進捗バー。端末でないとき (ログやノートブック) は何も書かない。"""

    def __init__(self, total: int, enabled: bool, stream=sys.stderr, width: int = 30):
        self.total, self.enabled, self.stream, self.width = total, enabled, stream, width
        self.t0 = self.last = time.perf_counter()
        self.open = False                                  # バーの行を書きかけか

    def update(self, step: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and step < self.total):
            return
        self.last, done = now, int(self.width * step / self.total)
        rate = step / max(now - self.t0, 1e-9)
        bar = "#" * done + "-" * (self.width - done)
        self.stream.write(f"\r訓練 [{bar}] {step}/{self.total} {rate:.1f} it/s ")
        self.stream.flush()
        self.open = True

    def close(self) -> None:
        """書きかけのバーの行を終える (評価の行をバーと混ぜないため)。"""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _load_data(args: argparse.Namespace):
    """テキストを読み、文字の ID にして末尾の 10% を検証用にする。短すぎれば TrainError。

    ``--book`` なら本のコーパスを A-1 と同じ一節単位の分割で使う (章の表と比べられるように)。
    """
    data = load_a1_data(seed=0) if args.book else make_a1_data(
        load_text(args.text, encoding=args.encoding))
    for name, ids in (("訓練用", data.train_ids), ("検証用", data.val_ids)):
        if len(ids) < args.block_size + 1:
            raise TrainError(
                f"{name}のテキスト ({len(ids):,} 文字) が --block-size ({args.block_size}) + 1 "
                "文字より短く、1 つも例を切り出せません。長いテキストを使うか、--block-size を"
                "小さくしてください (末尾の 10% が検証用です)。")
    return data


def train(args: argparse.Namespace, dist: DistInfo | None = None,
          log: Callable[[str], None] = print) -> dict:
    """args のとおりに訓練し、結果の辞書 (最後の行の JSON と同じキー) を返す。

    プロセスが複数なら (``dist.world_size > 1``) DDP で訓練し、rank 0 だけが評価・表示・保存する。
    """
    dist = dist or DistInfo()
    data = _load_data(args)
    device = resolve_device(args.device, dist)
    set_seed(args.seed)                                    # 初期値はどのプロセスでも同じ
    raw = build_model(data.vocab_size, args.n_layer, args.n_head, args.d_model,
                      args.block_size).to(device)
    model = wrap_ddp(raw, dist, device)
    if args.compile:
        model = torch.compile(model)
    opt = make_optimizer(raw, args.lr)
    g = torch.Generator().manual_seed(args.seed)           # バッチの乱数 (全プロセスで共通)
    n_params = sum(p.numel() for p in raw.parameters())
    main_rank = dist.rank == 0
    if main_rank:
        log(f"語彙 {data.vocab_size} 文字、訓練用 {len(data.train_ids):,} 文字、検証用 "
            f"{len(data.val_ids):,} 文字、パラメータ {n_params:,} 個、デバイス "
            f"{describe_device(device)} × {dist.world_size}")
    bar = Progress(args.max_iters, main_rank and sys.stderr.isatty())
    history, best, time_to_target, eval_seconds = [], math.inf, None, 0.0
    eval_batch = args.batch_size * dist.world_size         # 全体のバッチと同じ大きさで評価する
    t0 = time.perf_counter()
    model.train()
    for it in range(args.max_iters + 1):
        if main_rank and (it % args.eval_interval == 0 or it == args.max_iters):
            t_eval = time.perf_counter()
            losses = [estimate_loss(raw, ids, eval_batch, args.block_size, args.eval_iters,
                                    args.seed + 1, device)
                      for ids in (data.train_ids, data.val_ids)]
            elapsed = time.perf_counter() - t0
            eval_seconds += elapsed - (t_eval - t0)
            history.append({"iter": it, "train": losses[0], "val": losses[1], "seconds": elapsed,
                            "train_seconds": elapsed - eval_seconds})
            best = min(best, losses[1])
            if time_to_target is None and args.target_loss and losses[1] <= args.target_loss:
                time_to_target = elapsed - eval_seconds            # 評価の時間は数えない
            bar.close()
            log(f"ステップ {it:>6}: 訓練用の損失 {losses[0]:.4f}、検証用の損失 {losses[1]:.4f} "
                f"({elapsed:.1f} 秒)")
        if it == args.max_iters:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(it, args.max_iters, args.warmup, args.lr, args.min_lr)
        x, y = draw_batch(data.train_ids, args.batch_size, args.block_size, g, dist, device)
        loss = lm_loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(raw.parameters(), 1.0)     # 勾配クリッピング (同期なし)
        opt.step()
        bar.update(it + 1)
    synchronize(device)
    seconds = time.perf_counter() - t0
    bar.close()
    param_digest(raw, dist)                                # テスト用: 各プロセスの重みの要約
    rate = args.max_iters / max(seconds - eval_seconds, 1e-9)
    result = {"iters": args.max_iters, "seconds": round(seconds, 3), "best_val_loss": best,
              "time_to_target": None if time_to_target is None else round(time_to_target, 3),
              "params": n_params, "device": describe_device(device)
              + (f" × {dist.world_size}" if dist.world_size > 1 else ""),
              "final_val_loss": history[-1]["val"] if history else None,
              "iters_per_second": round(rate, 3)}
    if main_rank:
        log(f"訓練の速さ: {rate:.2f} ステップ/秒 (評価の {eval_seconds:.1f} 秒を除く)")
        torch.save({"model": raw.state_dict(), "config": model_config(raw),
                    "itos": data.tokenizer.itos, "history": history, "result": result,
                    "args": {k: str(v) if isinstance(v, Path) else v
                             for k, v in vars(args).items()}},
                   args.out / CHECKPOINT_NAME)
        sample = _sample_text(raw, data.tokenizer, SAMPLE_CHARS, args.seed, device)
        (args.out / SAMPLE_NAME).write_text(sample, encoding="utf-8")
        log(f"--- 生成した文章 ({SAMPLE_CHARS} 文字) ---\n{sample}\n---")
    return result


def load_checkpoint(out: Path, device: torch.device) -> tuple:
    """--out のチェックポイントから (モデル, トークナイザ, 保存した中身) を作り直す。"""
    path = out / CHECKPOINT_NAME
    if not path.is_file():
        raise TrainError(f"チェックポイント {path} がありません。先に --text PATH --out {out} で"
                         "訓練するか、--out に訓練の出力フォルダを指定してください。")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        tok = CharTokenizer("".join(ckpt["itos"][1:]))
        model = build_model(**{k: v for k, v in ckpt["config"].items() if k != "vocab_size"},
                            vocab_size=ckpt["config"]["vocab_size"]).to(device)
        model.load_state_dict(ckpt["model"])
    except Exception as e:                                  # 壊れたファイル・別の形式
        raise TrainError(f"チェックポイント {path} を読めませんでした ({type(e).__name__})。"
                         "このプログラムで訓練し直してください。") from None
    if tok.itos != list(ckpt["itos"]):
        raise TrainError(f"チェックポイント {path} の語彙が壊れています。訓練し直してください。")
    return model, tok, ckpt


def sample_from_checkpoint(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    """訓練せず、チェックポイントから args.sample 文字を生成する (結果は JSON と同じキー)。"""
    device = resolve_device(args.device, DistInfo())
    model, tok, ckpt = load_checkpoint(args.out, device)
    t0 = time.perf_counter()
    sample = _sample_text(model, tok, args.sample, args.seed, device)
    seconds = time.perf_counter() - t0
    (args.out / SAMPLE_NAME).write_text(sample, encoding="utf-8")
    log(f"--- 生成した文章 ({args.sample} 文字) ---\n{sample}\n---")
    return {"iters": 0, "seconds": round(seconds, 3),
            "best_val_loss": ckpt["result"]["best_val_loss"], "time_to_target": None,
            "params": sum(p.numel() for p in model.parameters()),
            "device": describe_device(device),
            "final_val_loss": ckpt["result"].get("final_val_loss"), "iters_per_second": None}


def _make_out_dir(out: Path) -> None:
    """出力フォルダを訓練の前に作る (書けないことに訓練のあとで気づかないように)。"""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainError(f"出力フォルダ {out} を作れません ({e.strerror})。"
                         "--out を確かめてください。") from None


def main(argv: Sequence[str] | None = None) -> int:
    """コマンドラインの入口。成功なら 0、入力の誤りなら日本語のメッセージを出して 2。"""
    args = build_parser().parse_args(argv)
    dist = DistInfo.from_env()
    try:
        check_args(args)
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        if args.sample is not None:
            result = sample_from_checkpoint(args)
        else:
            _make_out_dir(args.out)
            setup_dist(dist, args.device)
            try:
                result = train(args, dist)
            finally:
                cleanup_dist(dist)
    except (TrainError, CorpusError) as e:
        if dist.rank == 0:
            print(f"エラー: {e}", file=sys.stderr)
        return EXIT_USAGE
    if dist.rank == 0:
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
