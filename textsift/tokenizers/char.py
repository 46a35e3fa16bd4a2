"""Character tokenizer: CJK per character, other letters and digits as runs, symbols one by one."""
from __future__ import annotations

import re

from textsift.registry import TOKENIZERS
from textsift.tokenizers.base import HAN, IGNORED, KANA_HANGUL, Tokenizer

_CJK = HAN + KANA_HANGUL
# Alternatives in order: one CJK character | a run of letters/digits of any other script (a word
# character that is neither "_" nor CJK) | any other visible character (punctuation, "_", emoji).
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|[^\s{IGNORED}]")
# Variants: runs split into characters (split_runs), whitespace kept as a boundary token (keep_spaces).
_SINGLE = re.compile(rf"[^\s{IGNORED}]")
_SPACE = re.compile(r"\s+")
SPACE_TOKEN = "\u2581"  # "▁", as SentencePiece marks word boundaries


@TOKENIZERS.register("char")
class CharTokenizer(Tokenizer):
    """Chinese/Japanese/Korean per character; Latin (and other) letter-digit runs as one token.

    ``"iPhone15发布了！👍"`` → ``["iphone15", "发", "布", "了", "!", "👍"]`` (with the default NFKC and
    lowercase). Whitespace and invisible characters (zero-width, variation selectors) are dropped;
    every other character (punctuation, emoji, ``_``) is a token of its own. Emoji sequences joined
    by zero-width joiners therefore become their component emoji.
    """

    def split(self, text: str) -> list[str]:
        pattern = _SINGLE if self.cfg.split_runs else _TOKEN
        if not self.cfg.keep_spaces:
            return pattern.findall(text)
        tokens: list[str] = []
        for i, part in enumerate(_SPACE.split(text.strip())):
            if i:
                tokens.append(SPACE_TOKEN)
            tokens += pattern.findall(part)
        return tokens
