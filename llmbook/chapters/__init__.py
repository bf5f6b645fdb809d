"""各章のノートブックの ``#| export`` セルから自動生成されるモジュール
(``python -m llmbook.export``)。

ここにあるファイルは手で編集しない。後の章は ``from llmbook.chapters.a1 import ...`` のように使う。
"""
