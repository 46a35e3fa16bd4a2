"""Text → token ids: tokenizer + vocab + hashed n-grams (fastText style), saved as one JSON file.

Id layout: ``[0, len(vocab))`` are vocab tokens (0 = ``<pad>``, 1 = ``<unk>``); when
``cfg.ngrams > 1``, ``[len(vocab), len(vocab) + ngram_buckets)`` are hash buckets shared by all
n-gram orders. The hash is fixed (not Python's salted ``hash()``), so ids are the same in every
process and every run, and saved models stay valid:

* token hash: 32-bit FNV-1a of the token's UTF-8 bytes (as fastText hashes words);
* n-gram hash: ``h = fnv(t1)``, then ``h = (h * 116049371 + fnv(tk)) mod 2**64`` for each following
  token (fastText's word n-gram combination); the bucket is ``h % ngram_buckets``.

Combining token hashes (instead of hashing joined strings) needs no separator and hashes each
distinct token once, which keeps encoding fast.

With ``cfg.word_ngrams = N`` (char tokenizer), the words of the ``word`` tokenizer (jieba for Chinese)
and their n-grams up to order N also go into the buckets, after the character n-grams. Their hash
starts from a salt, ``h = WORD_SALT``, then ``h = (h * 116049371 + fnv(wk)) mod 2**64`` for each word,
so the word "北京" and the character bigram "北" "京" are different features (as two stacked TF-IDF
vectorizers would keep them).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Union

from pydantic import ValidationError

from textsift.config.schema import TokenizerConfig
from textsift.errors import TextsiftError
from textsift.tokenizers.base import build_tokenizer
from textsift.tokenizers.vocab import Vocab

FORMAT, VERSION = "textsift.text_encoder", 1
_NGRAM_MULT, _MASK64 = 116049371, (1 << 64) - 1
WORD_SALT = 0x776F7264  # "word": starts the hash of word features (cfg.word_ngrams)
_HASH_CACHE_LIMIT = 1_000_000  # distinct tokens remembered; the cache is reset when it fills up


def fnv1a_32(token: str) -> int:
    """32-bit FNV-1a hash of ``token``'s UTF-8 bytes (stable across processes, unlike ``hash()``)."""
    h = 0x811C9DC5
    for byte in token.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


class _TokenHashes(dict):
    """token → ``fnv1a_32(token)``, computed on first lookup (each distinct token is hashed once)."""

    def __missing__(self, token: str) -> int:
        self[token] = h = fnv1a_32(token)
        return h


def read_encoder_json(path: Union[str, Path]) -> dict:
    """The JSON content of an encoder file, with clear errors for a missing or damaged file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TextsiftError(f"{path}: encoder file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TextsiftError(f"{path}: not a valid JSON encoder file ({err})") from None


class TextEncoder:
    """Turns texts into lists of ids for the models.

    Args:
        cfg: the ``tokenizer`` config section.
        vocab: the token vocabulary (usually from ``TextEncoder.fit`` or ``TextEncoder.load``).
    """

    def __init__(self, cfg: TokenizerConfig, vocab: Vocab):
        self.cfg, self.vocab = cfg, vocab
        self.tokenizer = build_tokenizer(cfg)
        # Word features of a char tokenizer: the word tokenizer with the same normalisation options.
        self._words = build_tokenizer(cfg.model_copy(update={"name": "word"})) if cfg.word_ngrams else None
        self._hashes = _TokenHashes()

    @classmethod
    def fit(cls, cfg: TokenizerConfig, texts: Iterable[str], extra_words: Iterable[str] = ()) -> "TextEncoder":
        """Build the vocab from training texts (``cfg.min_freq`` and ``cfg.max_size`` apply), then append
        ``extra_words`` (e.g. words with pretrained vectors) that the tokenizer keeps as one token each and the
        vocab does not hold yet, in their order (neither min_freq nor max_size applies to them)."""
        tokenizer = build_tokenizer(cfg)
        vocab = Vocab.build((tokenizer.tokenize(t) for t in texts), cfg.min_freq, cfg.max_size)
        have, extra = set(vocab.tokens), []
        for word in extra_words:
            tokens = tokenizer.tokenize(word)
            if len(tokens) == 1 and tokens[0] not in have:
                have.add(tokens[0])
                extra.append(tokens[0])
        return cls(cfg, Vocab(vocab.tokens + extra) if extra else vocab)

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids: the embedding table size."""
        return len(self.vocab) + (self.cfg.ngram_buckets if self._hashed else 0)

    @property
    def _hashed(self) -> bool:
        """Whether ids past the vocabulary (hash buckets) are used."""
        return self.cfg.ngrams > 1 or self.cfg.word_ngrams > 0

    @property
    def pad_id(self) -> int:
        return self.vocab.pad_id

    @property
    def unk_id(self) -> int:
        return self.vocab.unk_id

    def encode(self, text: str, max_length: int) -> list[int]:
        """Encode one text.

        Args:
            text: raw text (normalization is part of tokenization).
            max_length: tokens kept from the start of the text.

        Returns:
            The ids of the first ``max_length`` tokens (unknown tokens → ``unk_id``), followed, when
            ``cfg.ngrams > 1``, by one bucket id per n-gram of those tokens, all bigrams first, then
            trigrams, and so on. So the result holds at most ``max_length`` unigram ids plus
            ``max_length - n + 1`` ids per order n. With ``cfg.word_ngrams = N``, one bucket id per
            word n-gram (n = 1..N) of the first ``max_length`` words follows. Never empty: a text
            without tokens gives ``[unk_id]``.
        """
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        text = self.tokenizer.normalize(text)
        tokens = self.tokenizer.split(text)[:max_length]
        if not tokens:
            return [self.vocab.unk_id]
        ids = self.vocab.ids(tokens)
        if self.cfg.ngrams > 1 and len(tokens) > 1:
            ids.extend(self._ngram_ids(tokens))
        if self._words is not None:
            ids.extend(self._word_ids(self._words.split(text)[:max_length]))
        return ids

    def encode_batch(self, texts: Iterable[str], max_length: int) -> list[list[int]]:
        """``[encode(t, max_length) for t in texts]``."""
        return [self.encode(text, max_length) for text in texts]

    def _token_hashes(self, tokens: list[str]) -> list[int]:
        if len(self._hashes) > _HASH_CACHE_LIMIT:
            self._hashes.clear()
        return list(map(self._hashes.__getitem__, tokens))

    def _bucket_ids(self, rolling: list[int], token_hashes: list[int], orders: range) -> list[int]:
        """Bucket ids of the n-grams of each order in ``orders`` (consecutive), orders in turn; ``rolling``
        holds the hashes of the n-grams of the order before the first, one per start position."""
        offset, buckets = len(self.vocab), self.cfg.ngram_buckets
        out: list[int] = []
        for n in orders:
            rolling = [(h * _NGRAM_MULT + t) & _MASK64 for h, t in zip(rolling, token_hashes[n - 1:])]
            out += [offset + h % buckets for h in rolling]
        return out

    def _ngram_ids(self, tokens: list[str]) -> list[int]:
        token_hashes = self._token_hashes(tokens)
        offset, buckets = len(self.vocab), self.cfg.ngram_buckets
        # (h * mult + t) of two 32-bit hashes stays below 2**64, so bigrams need no mask.
        bigrams = [a * _NGRAM_MULT + b for a, b in zip(token_hashes, token_hashes[1:])]
        return [offset + h % buckets for h in bigrams] + \
            self._bucket_ids(bigrams, token_hashes, range(3, min(self.cfg.ngrams, len(tokens)) + 1))

    def _word_ids(self, words: list[str]) -> list[int]:
        """Bucket ids of the word n-grams of orders 1..``cfg.word_ngrams``, unigrams first."""
        return self._bucket_ids([WORD_SALT] * len(words), self._token_hashes(words),
                                range(1, min(self.cfg.word_ngrams, len(words)) + 1))

    def coverage(self, texts: Iterable[str]) -> dict:
        """How much of ``texts`` the vocab knows (whole texts, no truncation).

        Returns:
            ``tokens`` and ``types`` (counts), ``token_coverage`` (fraction of running tokens in the
            vocab), ``type_coverage`` (fraction of distinct tokens in the vocab; both 1.0 when there
            are no tokens) and ``top_unknown`` (the 10 most frequent unknown tokens with counts).
        """
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.tokenizer.tokenize(text))
        known = {t: c for t, c in counts.items() if t in self.vocab}
        total, known_total = sum(counts.values()), sum(known.values())
        unknown = Counter({t: c for t, c in counts.items() if t not in known})
        return {
            "tokens": total,
            "types": len(counts),
            "token_coverage": known_total / total if total else 1.0,
            "type_coverage": len(known) / len(counts) if counts else 1.0,
            "top_unknown": unknown.most_common(10),
        }

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "tokenizer": self.cfg.model_dump(),
                "vocab": self.vocab.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, source: str = "encoder") -> "TextEncoder":
        """Inverse of ``to_dict``; ``source`` names the file in error messages.

        Raises:
            TextsiftError: not an encoder, an unsupported version, or an invalid config/vocab.
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise TextsiftError(f"{source}: expected a text encoder file (format '{FORMAT}'), found {found!r}")
        if d.get("version") != VERSION:
            raise TextsiftError(f"{source}: encoder format version {d.get('version')!r} is not supported "
                                f"(expected {VERSION}); re-train or upgrade textsift")
        try:
            cfg = TokenizerConfig(**d.get("tokenizer", {}))
        except ValidationError as err:
            raise TextsiftError(f"{source}: invalid tokenizer config: {err}") from None
        try:
            vocab = Vocab.from_dict(d.get("vocab"))
        except TextsiftError as err:
            raise TextsiftError(f"{source}: {err}") from None
        return cls(cfg, vocab)

    def save(self, path: Union[str, Path]) -> None:
        """Write the tokenizer config and vocab to one UTF-8 JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "TextEncoder":
        """Read a file written by ``save``.

        Raises:
            TextsiftError: missing file, invalid JSON, or invalid content.
        """
        return cls.from_dict(read_encoder_json(path), source=str(path))

    def __repr__(self) -> str:
        return (f"TextEncoder(tokenizer={self.cfg.name!r}, vocab={len(self.vocab)}, "
                f"ngrams={self.cfg.ngrams}, vocab_size={self.vocab_size})")
