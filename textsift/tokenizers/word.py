r"""Word tokenizer: regex words for alphabetic scripts, jieba for runs of Chinese characters.

English follows the Penn Treebank convention that several shipped datasets (SST, MR, CR) are
already written in, so raw and pre-tokenized text give the same tokens: clitics are split off
(``"don't"`` → ``"do" "n't"``, ``"it's"`` → ``"it" "'s"``; ``"wo n't"`` stays ``"wo" "n't"``),
hyphenated words stay whole (``"state-of-the-art"``), numbers keep their separators
(``"5.93"``, ``"155,221"``), and punctuation is one token per character. The typographic
apostrophe ``’`` is read as ``'``. ``tokenizer.token_pattern`` replaces these rules by a regular
expression (e.g. scikit-learn's ``\b\w\w+\b``, which drops punctuation and one-character words).
"""
from __future__ import annotations

import logging
import re

from textsift.registry import TOKENIZERS
from textsift.tokenizers.base import HAN, IGNORED, Tokenizer

_CLITICS = r"n't|'s|'re|'ve|'ll|'d|'m"
# Alternatives in order: a run of Han characters (segmented by jieba) | a number with inner "." or
# "," | a word: letters/digits of a non-Han script, possibly joined by inner "'" or "-" | a clitic
# standing alone, as in PTB text ("it 's") | any other visible character.
_TOKEN = re.compile(
    rf"(?P<han>[{HAN}]+)"
    rf"|\d+(?:[.,]\d+)+"
    rf"|[^\W_{HAN}]+(?:['-][^\W_{HAN}]+)*"
    rf"|(?i:'(?:s|re|ve|ll|d|m)\b)"
    rf"|[^\s{IGNORED}]"
)
_CLITIC_SUFFIX = re.compile(rf"(?i)(.+?)({_CLITICS})")


@TOKENIZERS.register("word")
class WordTokenizer(Tokenizer):
    """Words by regex (PTB-style clitics, hyphenated words whole), Chinese segmented by jieba.

    ``"I don't like 北京烤鸭!"`` → ``["i", "do", "n't", "like", "北京", "烤鸭", "!"]``. Japanese and
    Korean text is better served by the ``char`` tokenizer (kana and Hangul runs are one word here).
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        self._pattern = re.compile(cfg.token_pattern) if cfg.token_pattern is not None else None

    def split(self, text: str) -> list[str]:
        if self._pattern is not None:
            return self._split_by_pattern(text)
        if "\u2019" in text:
            text = text.replace("\u2019", "'")
        tokens: list[str] = []
        for match in _TOKEN.finditer(text):
            token = match.group()
            if match.group("han") is not None:
                tokens.extend(_segment_chinese(token) if len(token) > 1 else (token,))
            elif "'" in token and len(token) > 1:
                clitic = _CLITIC_SUFFIX.fullmatch(token)
                tokens.extend(clitic.groups() if clitic else (token,))
            else:
                tokens.append(token)
        return tokens

    def _split_by_pattern(self, text: str) -> list[str]:
        """``tokenizer.token_pattern``: every match is a token (the whole match, even when the pattern
        has groups); a match made only of Han characters is segmented by jieba."""
        tokens: list[str] = []
        for match in self._pattern.finditer(text):
            token = match.group()
            if len(token) > 1 and _HAN_RUN.fullmatch(token):
                tokens.extend(_segment_chinese(token))
            elif token:
                tokens.append(token)
        return tokens


_HAN_RUN = re.compile(rf"[{HAN}]+")
_jieba = None


def _segment_chinese(run: str) -> list[str]:
    """Segment a run of Han characters with jieba (imported on first use: it is slow to load)."""
    global _jieba
    if _jieba is None:
        try:
            import jieba
        except ImportError:  # pragma: no cover - jieba is a declared dependency
            from textsift.errors import TextsiftError
            raise TextsiftError("the 'word' tokenizer needs jieba for Chinese: pip install jieba") from None
        jieba.setLogLevel(logging.WARNING)  # it logs dictionary loading at DEBUG to stderr otherwise
        _jieba = jieba
    return _jieba.lcut(run, HMM=True)
