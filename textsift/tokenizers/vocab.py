"""Token ↔ id mapping with ``<pad>`` = 0 and ``<unk>`` = 1, built deterministically from counts."""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

from textsift.errors import TextsiftError


class Vocab:
    """An ordered list of tokens; a token's id is its position.

    Ids 0 and 1 are always ``<pad>`` and ``<unk>``; real tokens follow, most frequent first.
    Build one with ``Vocab.build`` or restore one with ``Vocab.from_dict``.
    """

    PAD, UNK = "<pad>", "<unk>"
    pad_id, unk_id = 0, 1

    def __init__(self, tokens: list[str]):
        """Args:
            tokens: every token in id order, starting with ``<pad>``, ``<unk>``.

        Raises:
            TextsiftError: specials missing or misplaced, or a token listed twice.
        """
        if list(tokens[:2]) != [self.PAD, self.UNK]:
            raise TextsiftError(f"vocab: expected the first tokens to be ['{self.PAD}', '{self.UNK}'], "
                                f"found {list(tokens[:2])}")
        self.tokens: list[str] = list(tokens)
        self._ids: dict[str, int] = {token: i for i, token in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            dupes = sorted(t for t, n in Counter(self.tokens).items() if n > 1)[:5]
            raise TextsiftError(f"vocab: every token must appear once, found duplicates {dupes}")

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int = 1,
              max_size: Optional[int] = None) -> "Vocab":
        """Count tokens and keep the frequent ones.

        Args:
            token_lists: one token list per text.
            min_freq: drop tokens seen fewer times than this.
            max_size: keep at most this many real tokens (``<pad>`` and ``<unk>`` not counted);
                ``None`` keeps all.

        Returns:
            A vocab ordered by decreasing count, ties by first appearance (so the same data always
            gives the same ids).
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        counts.pop(cls.PAD, None)
        counts.pop(cls.UNK, None)
        # Counter keeps first-insertion order and sorted() is stable: ties stay in order of appearance.
        ranked = sorted((item for item in counts.items() if item[1] >= min_freq), key=lambda kv: -kv[1])
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls([cls.PAD, cls.UNK] + [token for token, _ in ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.tokens[2:7]})"

    def id(self, token: str) -> int:
        """The token's id, or ``unk_id`` when it is not in the vocab."""
        return self._ids.get(token, self.unk_id)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        get, unk = self._ids.get, self.unk_id
        return [get(token, unk) for token in tokens]

    def token(self, id: int) -> str:
        """The token with this id.

        Raises:
            IndexError: ``id`` outside ``[0, len(vocab))``.
        """
        if not 0 <= id < len(self.tokens):
            raise IndexError(f"token id {id} out of range: the vocab has ids 0..{len(self.tokens) - 1}")
        return self.tokens[id]

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        """Inverse of ``to_dict``.

        Raises:
            TextsiftError: ``d`` has no ``tokens`` list, or the list is malformed.
        """
        tokens = d.get("tokens") if isinstance(d, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            found = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise TextsiftError(f"vocab: expected {{'tokens': [str, ...]}}, found {found}")
        return cls(tokens)
