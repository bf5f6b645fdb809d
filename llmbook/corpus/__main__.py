"""``python -m llmbook.corpus`` の入口。"""
from . import main

main()
