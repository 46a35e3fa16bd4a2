"""Vocabulary pruning: keep only the tokens a corpus uses (plus special tokens), shrinking the embedding
matrix and the tokenizer together, so texts the kept vocabulary covers get exactly the same ids (mapped)
and the same logits.

Works for textsift's own vocabularies (every classic model; hashed n-gram buckets are kept) and for
WordPiece tokenizers (BERT, MiniLM, ELECTRA, ERNIE...). For WordPiece the greedy longest-match
segmentation of a covered text cannot change: every piece it used is kept, and the new vocabulary has
no piece the old one lacked. The rebuilt tokenizer is checked on the corpus before it is used.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from textsift.errors import TextsiftError

log = logging.getLogger("textsift")


def prune_vocabulary(model, encoder, texts: Sequence[str], folder: Path):
    """Shrink ``model``'s embeddings and ``encoder``'s vocabulary to what ``texts`` use.

    Returns the new encoder; for pretrained tokenizers its files are written to ``folder`` (the new
    run's ``hf/``). The model is changed in place (``vocab_size`` and its embedding tables)."""
    if hasattr(encoder, "vocab"):
        new_encoder, rows = _classic(encoder, texts)
    else:
        new_encoder, rows = _wordpiece(encoder, texts, folder)
    old = model.vocab_size
    _shrink_tables(model, old, torch.as_tensor(rows))
    model.vocab_size = len(rows)
    new_id = {o: n for n, o in enumerate(rows)}
    model.pad_id = new_id[model.pad_id]
    for name in ("prefix_ids", "suffix_ids"):  # an `hf` model's special-token ids (used by windowing)
        ids = getattr(model, name, None)
        if ids is not None:
            setattr(model, name, torch.tensor([new_id[int(i)] for i in ids], dtype=ids.dtype))
    log.info("vocabulary pruned to %d of %d ids using %d texts", len(rows), old, len(texts))
    return new_encoder


def _classic(encoder, texts):
    from textsift.tokenizers.encoder import TextEncoder
    from textsift.tokenizers.vocab import Vocab

    seen = {tok for text in texts for tok in encoder.tokenizer.tokenize(text)}
    vocab = encoder.vocab
    kept = [0, 1] + [i for i, tok in enumerate(vocab.tokens) if i > 1 and tok in seen]
    new = TextEncoder(encoder.cfg, Vocab([vocab.tokens[i] for i in kept]))
    buckets = list(range(len(vocab), encoder.vocab_size))  # hashed n-gram rows follow the vocabulary
    return new, kept + buckets


def _wordpiece(encoder, texts, folder: Path):
    from textsift.tokenizers.hf import HFTextEncoder, load_hf_tokenizer

    tok = encoder.tokenizer
    spec = json.loads(tok.backend_tokenizer.to_str())
    if spec["model"]["type"] != "WordPiece":
        raise TextsiftError(f"--vocab-from: vocabulary pruning supports WordPiece tokenizers (BERT-style) and "
                            f"textsift's own vocabularies; this tokenizer is {spec['model']['type']}")
    old_ids = tok(list(texts), add_special_tokens=True)["input_ids"]
    kept = sorted({i for ids in old_ids for i in ids} | set(tok.all_special_ids))
    new_id = {old: new for new, old in enumerate(kept)}
    id_to_token = {i: t for t, i in spec["model"]["vocab"].items()}
    spec["model"]["vocab"] = {id_to_token[old]: new for old, new in new_id.items()}
    for added in spec.get("added_tokens", []):
        added["id"] = new_id[added["id"]]
    for special in (spec.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    source = Path(tok.name_or_path)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder) if source.is_dir() else folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    (folder / "vocab.txt").write_text("".join(id_to_token[old] + "\n" for old in kept), encoding="utf-8")
    config_file = folder / "tokenizer_config.json"
    if config_file.is_file():
        cfg = json.loads(config_file.read_text(encoding="utf-8"))
        if "added_tokens_decoder" in cfg:
            cfg["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in cfg["added_tokens_decoder"].items()}
        config_file.write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    new_tok = load_hf_tokenizer(folder)
    if new_tok(list(texts), add_special_tokens=True)["input_ids"] != [[new_id[i] for i in ids] for ids in old_ids]:
        raise TextsiftError("--vocab-from: the pruned tokenizer does not reproduce the original ids on the corpus; "
                            "this tokenizer cannot be pruned safely (nothing was written to the run)")
    return HFTextEncoder(new_tok, encoder.truncation, encoder.head_tokens, encoder.chunked), kept


def _shrink_tables(model: nn.Module, old_size: int, rows: torch.Tensor) -> None:
    """Every embedding table (and per-id buffer, e.g. TF-IDF's idf) with ``old_size`` rows keeps ``rows``."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Embedding, nn.EmbeddingBag)) and child.num_embeddings == old_size:
                setattr(parent, name, _rows_of(child, rows))
        for name, buf in list(parent.named_buffers(recurse=False)):
            if buf is not None and buf.dim() >= 1 and buf.size(0) == old_size:
                parent.register_buffer(name, buf[rows].clone(), persistent=name in parent.state_dict())
    config = getattr(getattr(model, "encoder", None), "config", None)
    if config is not None and getattr(config, "vocab_size", None) == old_size:
        config.vocab_size = len(rows)


def _rows_of(table, rows: torch.Tensor):
    w = table.weight.detach()[rows]
    pad = table.padding_idx
    new_pad = int((rows == pad).nonzero()[0]) if pad is not None and bool((rows == pad).any()) else None
    if isinstance(table, nn.EmbeddingBag):
        new = nn.EmbeddingBag(len(rows), w.size(1), mode=table.mode, padding_idx=new_pad, sparse=table.sparse)
    else:
        new = nn.Embedding(len(rows), w.size(1), padding_idx=new_pad, sparse=table.sparse)
    with torch.no_grad():
        new.weight.copy_(w)
    new.weight.requires_grad_(table.weight.requires_grad)
    return new
