"""The tokenizer contract: ``normalize`` (NFKC, lowercase) then ``split`` into string tokens.

Tokenizers are pure functions of their ``TokenizerConfig``: no state is learnt, so an encoder file only
needs the config to rebuild one. Each concrete tokenizer lives in its own file and registers itself::

    @TOKENIZERS.register("char")
    class CharTokenizer(Tokenizer): ...
"""
from __future__ import annotations

import unicodedata

from textsift.config.schema import TokenizerConfig
from textsift.errors import TextsiftError
from textsift.registry import TOKENIZERS

# Characters that are one token each in the char tokenizer and segmented by jieba in the word
# tokenizer. Han: CJK unified ideographs and extensions A-H, compatibility ideographs, radicals,
# 々 〆 〇 and Hangzhou numerals.
HAN = ("\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
       "\uf900-\ufaff\U00020000-\U000323af")
# Kana (hiragana, katakana, half-width katakana), bopomofo and Hangul (syllables and jamo).
KANA_HANGUL = ("\u1100-\u11ff\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff"
               "\ua960-\ua97f\uac00-\ud7ff\uff66-\uffdc")
# Invisible characters dropped like whitespace: controls, soft hyphen, zero-width (non-)joiners and
# spaces, bidi marks, variation selectors (so "❤️" and "❤" are the same token) and the BOM.
IGNORED = "\x00-\x1f\x7f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff"


class Tokenizer:
    """Base class: ``tokenize(text)`` = ``split(normalize(text))``.

    Args:
        cfg: the ``tokenizer`` config section (``lowercase`` and ``normalize`` are used here).
    """

    def __init__(self, cfg: TokenizerConfig):
        self.cfg = cfg
        self._nfkc = cfg.normalize == "nfkc"
        self._lower = cfg.lowercase

    def normalize(self, text) -> str:
        """NFKC-fold (full-width → half-width, ligatures, circled digits) and/or lowercase.

        Raises:
            TextsiftError: when ``text`` is not a string (e.g. a null field in the data).
        """
        if not isinstance(text, str):
            raise TextsiftError(f"tokenizer: expected a text string, got {type(text).__name__} ({text!r})")
        if self._nfkc:
            text = unicodedata.normalize("NFKC", text)
        if self._lower:
            text = text.lower()
        return text

    def tokenize(self, text: str) -> list[str]:
        """Normalize, then split into tokens (whitespace and invisible characters are dropped)."""
        return self.split(self.normalize(text))

    def split(self, text: str) -> list[str]:  # pragma: no cover
        """Split already-normalized text; subclasses implement this."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lowercase={self._lower}, normalize={self.cfg.normalize!r})"


def build_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    """Build the tokenizer registered as ``cfg.name``.

    Raises:
        TextsiftError: unknown name, listing the known ones and the closest match.
    """
    try:
        cls = TOKENIZERS.entry(cfg.name).obj
    except TextsiftError as err:
        raise TextsiftError(f"tokenizer.name: {err}") from None
    return cls(cfg)
