"""Text → token ids with a pretrained encoder's own Hugging Face tokenizer.

Used by the ``hf`` model: its tokenizer comes with the checkpoint (``AutoTokenizer``), so the
``tokenizer`` config section does not apply. The encoder saves the tokenizer files into the run
directory (``hf/``) so that evaluation, prediction and export work offline.

Truncation keeps the ``head``, the ``tail`` or ``head_tail`` (the first ``head_tokens`` tokens plus
the last ones; Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?") of the text's
tokens. Without chunking, the result is wrapped in the family's special tokens (``[CLS] x [SEP]``,
``<s> x </s>``, ``x <sep> <cls>`` …) and ``max_length`` counts them. With chunking
(``model.chunk_size``), the ids are returned without special tokens, up to ``max_length`` of them,
and the model cuts them into overlapping windows and adds the special tokens to each window itself.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from textsift.errors import TextsiftError

FORMAT, VERSION = "textsift.hf_encoder", 1
HF_DIR = "hf"  # the run-directory folder holding the tokenizer files and the encoder's config.json
_PROBE = "hello"


def quiet_transformers() -> None:
    """No download or weight-loading progress bars and no advisory warnings in textsift's output."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_hf_tokenizer(source: Union[str, Path], what: str = "model.pretrained"):
    """``AutoTokenizer.from_pretrained(source)`` (a fast tokenizer), with a clear error when it fails."""
    quiet_transformers()
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(source))
    except Exception as err:  # OSError, ValueError, ... depending on what is wrong with the folder/name
        raise TextsiftError(f"{what}: cannot load a tokenizer from '{source}' ({_first_line(err)}). Expected a "
                            "local folder written by save_pretrained (with tokenizer.json or vocab files) or, "
                            "with network access, a Hugging Face hub name") from None
    if not getattr(tok, "is_fast", False):
        raise TextsiftError(f"{what}: '{source}' has only a slow (Python) tokenizer; textsift needs a fast one "
                            "(tokenizer.json). Convert it once with transformers and save_pretrained")
    return tok


def special_layout(tok) -> tuple[list[int], list[int]]:
    """The special-token ids the tokenizer puts before and after one text's tokens.

    Found by tokenizing a probe word with and without special tokens, so it is right for every family
    (``[CLS] x [SEP]``, ``<s> x </s>``, XLNet's ``x <sep> <cls>``) without knowing the family.
    """
    with_specials = tok(_PROBE, add_special_tokens=True)["input_ids"]
    plain = tok(_PROBE, add_special_tokens=False)["input_ids"]
    for start in range(len(with_specials) - len(plain) + 1):
        if with_specials[start:start + len(plain)] == plain:
            return with_specials[:start], with_specials[start + len(plain):]
    raise TextsiftError(f"tokenizer {type(tok).__name__}: cannot find where it places special tokens")


def pad_token_id(tok) -> int:
    for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tok, name, None)
        if value is not None:
            return int(value)
    raise TextsiftError(f"tokenizer {type(tok).__name__}: has no pad, eos or unk token to pad batches with")


def truncate(ids: list[int], budget: int, how: str, head_tokens: Optional[int]) -> list[int]:
    """Keep ``budget`` of ``ids``: the first ones (head), the last ones (tail), or both ends (head_tail)."""
    if len(ids) <= budget:
        return ids
    if how == "head":
        return ids[:budget]
    if how == "tail":
        return ids[len(ids) - budget:]
    head = min(budget, head_tokens if head_tokens is not None else budget // 4)
    return ids[:head] + ids[len(ids) - (budget - head):] if budget > head else ids[:head]


class HFTextEncoder:
    """The ``TextEncoder`` contract (``encode_batch``, ``pad_id``, ``vocab_size``, ``save``/``load``)
    over a Hugging Face fast tokenizer.

    Args:
        tokenizer: a fast tokenizer (from ``load_hf_tokenizer``).
        truncation: ``head``, ``tail`` or ``head_tail``.
        head_tokens: tokens kept from the start with ``head_tail`` (default: a quarter of the budget).
        chunked: return content ids only (no special tokens); the model windows them.
    """

    def __init__(self, tokenizer, truncation: str = "head", head_tokens: Optional[int] = None, chunked: bool = False):
        self.tokenizer, self.truncation, self.head_tokens, self.chunked = tokenizer, truncation, head_tokens, chunked
        self.prefix, self.suffix = special_layout(tokenizer)

    @classmethod
    def from_params(cls, params) -> "HFTextEncoder":
        """From the ``hf`` model's parameters (``pretrained``, ``truncation``, ``head_tokens``, ``chunk_size``)."""
        return cls(load_hf_tokenizer(params.pretrained), params.truncation, params.head_tokens,
                   params.chunk_size is not None)

    @property
    def pad_id(self) -> int:
        return pad_token_id(self.tokenizer)

    @property
    def unk_id(self) -> Optional[int]:
        return self.tokenizer.unk_token_id

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def tokenize_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of whole texts, without special tokens and without truncation."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TextsiftError(f"tokenizer: expected a text string, got {type(text).__name__} ({text!r})")
        out: list[list[int]] = []
        for start in range(0, len(texts), 1024):  # bounded memory for big files; the Rust side batches
            out += self.tokenizer(texts[start:start + 1024], add_special_tokens=False)["input_ids"]
        return out

    def encode_batch(self, texts: Iterable[str], max_length: int) -> list[list[int]]:
        """Ids per text: special tokens included and ``max_length`` in all, or (chunked) content ids only."""
        n_special = len(self.prefix) + len(self.suffix)
        budget = max_length if self.chunked else max_length - n_special
        if budget < 1:
            raise TextsiftError(f"train.max_length: {max_length} leaves no room for text after the "
                                f"{n_special} special tokens of this tokenizer; use at least {n_special + 1}")
        out = []
        for ids in self.tokenize_ids(list(texts)):
            ids = truncate(ids, budget, self.truncation, self.head_tokens)
            if not self.chunked:
                ids = self.prefix + ids + self.suffix
            elif not ids:  # the model needs at least one position per text
                ids = [self.unk_id if self.unk_id is not None else self.pad_id]
            out.append(ids)
        return out

    def encode(self, text: str, max_length: int) -> list[int]:
        return self.encode_batch([text], max_length)[0]

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "dir": HF_DIR, "truncation": self.truncation,
                "head_tokens": self.head_tokens, "chunked": self.chunked,
                "tokenizer_class": type(self.tokenizer).__name__}

    def save(self, path: Union[str, Path]) -> None:
        """Write the tokenizer files to ``<dir of path>/hf/`` and the settings to ``path`` (JSON)."""
        path = Path(path)
        self.tokenizer.save_pretrained(str(path.parent / HF_DIR))
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict, source: Path) -> "HFTextEncoder":
        if d.get("version") != VERSION:
            raise TextsiftError(f"{source}: hf encoder format version {d.get('version')!r} is not supported "
                                f"(expected {VERSION}); re-train or upgrade textsift")
        folder = source.parent / d.get("dir", HF_DIR)
        if not folder.is_dir():
            raise TextsiftError(f"{source}: the tokenizer folder {folder} is missing; the run directory is "
                                "incomplete (copy the whole run directory)")
        return cls(load_hf_tokenizer(folder, what=str(source)), d.get("truncation", "head"), d.get("head_tokens"),
                   bool(d.get("chunked")))

    def __repr__(self) -> str:
        return (f"HFTextEncoder({type(self.tokenizer).__name__}, vocab_size={self.vocab_size}, "
                f"truncation={self.truncation!r}, chunked={self.chunked})")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
