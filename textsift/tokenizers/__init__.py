"""Tokenizers (registered by name in ``textsift.registry.TOKENIZERS``), the vocabulary and the encoders.

Two encoders share one contract (``encode_batch(texts, max_length)``, ``pad_id``, ``vocab_size``,
``save``/``load``): ``TextEncoder`` (our tokenizers + a vocabulary learnt from the training data, for
classic models) and ``HFTextEncoder`` (a pretrained encoder's own Hugging Face tokenizer).
"""
from __future__ import annotations

from pathlib import Path
from textsift.tokenizers import char, word  # noqa: F401  (importing registers them)
from textsift.tokenizers.base import Tokenizer, build_tokenizer
from textsift.tokenizers.encoder import TextEncoder, fnv1a_32, read_encoder_json
from textsift.tokenizers.vocab import Vocab

__all__ = ["Tokenizer", "build_tokenizer", "TextEncoder", "Vocab", "fnv1a_32", "build_encoder", "load_encoder"]


def build_encoder(cfg, texts):
    """The encoder for ``cfg.model``: the checkpoint's own tokenizer for models that bring one (``hf``),
    else a ``TextEncoder`` whose vocabulary is learnt from ``texts`` (the training texts), plus the first
    ``model.vectors_vocab`` words of ``model.vectors`` when that is set."""
    from textsift.registry import MODELS

    entry = MODELS.entry(cfg.model.name)
    if getattr(entry.obj, "pretrained_tokenizer", False):
        from textsift.tokenizers.hf import HFTextEncoder

        params = entry.params(**{k: v for k, v in cfg.model.model_dump().items() if k != "name"})
        return HFTextEncoder.from_params(params)
    extra = (cfg.model.model_extra or {})
    words = ()
    if extra.get("vectors") and extra.get("vectors_vocab"):
        from textsift.models.vectors import vector_words

        words = vector_words(extra["vectors"], extra.get("vectors_format", "auto"), int(extra["vectors_vocab"]))
    return TextEncoder.fit(cfg.tokenizer, texts, words)


def load_encoder(path):
    """Load the encoder file of a run directory (``tokenizer.json``), whichever kind it is."""
    path = Path(path)
    d = read_encoder_json(path)
    if isinstance(d, dict) and d.get("format") == "textsift.hf_encoder":
        from textsift.tokenizers.hf import HFTextEncoder

        return HFTextEncoder.from_dict(d, path)
    return TextEncoder.from_dict(d, source=str(path))
