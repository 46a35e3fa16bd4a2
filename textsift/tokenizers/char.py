"""Character tokenizer: CJK per character, other letters and digits as runs, symbols one by one."""
from __future__ import annotations

import re

from textsift.registry import TOKENIZERS
from textsift.tokenizers.base import HAN, IGNORED, KANA_HANGUL, Tokenizer

_CJK = HAN + KANA_HANGUL
# Alternatives in order: one CJK character | a run of letters/digits of any other script (a word
# character that is neither "_" nor CJK) | any other visible character (punctuation, "_", emoji).
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|[^\s{IGNORED}]")


@TOKENIZERS.register("char")
class CharTokenizer(Tokenizer):
    """Chinese/Japanese/Korean per character; Latin (and other) letter-digit runs as one token.

    ``"iPhone15发布了！👍"`` → ``["iphone15", "发", "布", "了", "!", "👍"]`` (with the default NFKC and
    lowercase). Whitespace and invisible characters (zero-width, variation selectors) are dropped;
    every other character (punctuation, emoji, ``_``) is a token of its own. Emoji sequences joined
    by zero-width joiners therefore become their component emoji.
    """

    def split(self, text: str) -> list[str]:
        return _TOKEN.findall(text)
