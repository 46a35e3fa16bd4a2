"""Tokenizers (registered by name in ``textsift.registry.TOKENIZERS``), the vocabulary and the encoder."""
from textsift.tokenizers import char, word  # noqa: F401  (importing registers them)
from textsift.tokenizers.base import Tokenizer, build_tokenizer
from textsift.tokenizers.encoder import TextEncoder, fnv1a_32
from textsift.tokenizers.vocab import Vocab

__all__ = ["Tokenizer", "build_tokenizer", "TextEncoder", "Vocab", "fnv1a_32"]
