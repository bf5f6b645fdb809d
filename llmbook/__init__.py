"""「大規模言語モデル入門 — Transformer 基礎理論 A-1〜A-6」の共有コード。

- :mod:`llmbook.device` — デバイスを選ぶ: CUDA があれば CUDA、なければ CPU。Apple の GPU (MPS) は
  ``LLMBOOK_DEVICE=mps`` と指定したときだけ使う
- :mod:`llmbook.seed` — 乱数の種をそろえる
- :mod:`llmbook.plotting` — 日本語の図と注意マップ
- :mod:`llmbook.quiz` — 章末クイズ (ウィジェットと静的 HTML)
- :mod:`llmbook.export` — ノートブックの ``#| export`` セルをパッケージへ書き出す

各章のノートブックで定義した部品は ``llmbook.chapters`` 以下に書き出され、
後の章はそれを import して使う (コードは 1 か所にだけ置く)。
"""
from .device import describe_device, get_device
from .seed import set_seed

__version__ = "0.1.0"
__all__ = ["get_device", "describe_device", "set_seed", "__version__"]
