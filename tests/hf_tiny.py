"""Tiny, fully-offline Hugging Face model fixtures for tests.

``make_tiny_model(family, out_dir, texts)`` builds a randomly-initialised encoder of the
requested family (hidden size 32, 2 layers, 2 heads, intermediate 37) together with a
tokenizer built locally from ``texts`` with the ``tokenizers`` library, and saves both with
``save_pretrained`` so that ``AutoTokenizer.from_pretrained(out_dir)`` (a *fast*
tokenizer) and ``AutoModel.from_pretrained(out_dir)`` (the family's base encoder class)
work without any network access.

How the tokenizers are built (transformers 5.x / tokenizers 0.23 notes)
-----------------------------------------------------------------------
* In transformers 5.x every tokenizer class is a ``TokenizersBackend`` (the old ``*Fast``
  names -- ``BertTokenizerFast``, ``XLNetTokenizerFast``, ... -- are aliases of the same
  class; ``ElectraTokenizer(Fast)`` *is* ``BertTokenizer``).  When a family-specific class
  is loaded from ``tokenizer.json`` it only takes the *vocab* (plus BPE merges and the
  post-processor) from the file: its ``__init__`` rebuilds normalizer and pre-tokenizer
  itself.  A tokenizer built with a custom pipeline would silently change behaviour after
  a save/reload round trip.  So we always (1) instantiate the family's own class with its
  default vocab, (2) derive the vocab from ``texts`` with *that class's* normalizer and
  pre-tokenizer, putting special tokens at the family's real ids, and (3) construct the
  family class again with ``vocab=`` (and ``merges=``).  The special-token layout is then
  the family's own post-processor.  (No family needs a sentencepiece ``.model`` file, so
  no ``PreTrainedTokenizerFast`` + ``TemplateProcessing`` fallback is needed.)
* Determinism: the ``tokenizers`` trainers are NOT reproducible across processes for
  WordPiece (ids of "##x" tokens follow Rust hash-map order, and merge ties are broken by
  id, so even the vocabulary *set* changes) and Unigram (EM scores drift by ~1e-3 between
  runs).  Byte-level BPE is reproducible (all 256 base ids are fixed up front), so
  RoBERTa uses ``BpeTrainer``; WordPiece and Unigram vocabularies are built
  deterministically from word counts instead: every character seen (plus its "##"
  continuation form for WordPiece) and every whole word, with log-frequency scores for
  Unigram (words always beat their character decomposition).  Unseen words fall back to
  characters; unseen characters map to the unk token.

Special-token layouts (ids) reproduce the real checkpoints where the class allows it:

* bert / electra / distilbert / ernie: WordPiece, [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4,
  ``[CLS] x [SEP]``, pad id 0.  BERT normalizer splits CJK: one token per character.
* roberta: byte-level BPE, <s>=0 <pad>=1 </s>=2 <unk>=3, <mask>=last, ``<s> x </s>``,
  pad 1 (``<unk>`` is never produced: CJK becomes byte pieces).
* xlm-roberta: Unigram, <s>=0 <pad>=1 </s>=2 <unk>=3, <mask>=last, ``<s> x </s>``, pad 1.
* albert: Unigram, <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4, ``[CLS] x [SEP]``, pad 0.
* deberta-v2: Unigram, [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3, [MASK]=last, ``[CLS] x [SEP]``, pad 0.
* xlnet: Unigram, <unk>=0 <s>=1 </s>=2 <cls>=3 <sep>=4 <pad>=5 <mask>=6 <eod>=7 <eop>=8,
  ``x <sep> <cls>`` (CLS at the END), pad 5, and -- like the real checkpoints -- the
  tokenizer pads on the LEFT by default (``padding_side="left"``); pass
  ``padding_side="right"`` to ``make_tiny_model`` to override.
  Unigram tokenizers (Metaspace) keep CJK runs as one "word", segmented into characters.

Models: RoBERTa/XLM-R get ``max_position_embeddings = 128 + pad_id + 1`` (their position ids
start after the pad id, like 514 in the real checkpoints); ALBERT and ELECTRA use
``embedding_size=16``; DeBERTa-v2 is v3-style (relative attention, no absolute positions);
XLNet has no position table.  Left padding changes the outputs of the absolute-position
families (bert, electra, albert, distilbert, ernie) -- as with the real models.
"""

from __future__ import annotations

import json
import math
import os
import string
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FAMILIES = (
    "bert",
    "roberta",
    "albert",
    "electra",
    "xlnet",
    "deberta-v2",
    "xlm-roberta",
    "distilbert",
    "ernie",
)

HIDDEN = 32
LAYERS = 2
HEADS = 2
INTERMEDIATE = 37
MAX_POSITIONS = 128

_BPE_VOCAB = 400  # BpeTrainer target for roberta (the byte-level alphabet alone is 256)
_MAX_PIECE_CHARS = 16  # longest whole-word piece (sentencepiece's default max_piece_length)
_CHAR_PENALTY = 8.0  # Unigram: character pieces score log(freq) - this, below any word

_WORDPIECE_FAMILIES = ("bert", "electra", "distilbert", "ernie")
_WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Unigram families: special tokens at the front (in id order), unk token, and a mask token
# appended as the LAST id (None = the mask is already in the front list).
_UNIGRAM_SPECIALS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "albert": (("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"), "<unk>", None),
    "xlnet": (("<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"), "<unk>", None),
    "deberta-v2": (("[PAD]", "[CLS]", "[SEP]", "[UNK]"), "[UNK]", "[MASK]"),
    "xlm-roberta": (("<s>", "<pad>", "</s>", "<unk>"), "<unk>", "<mask>"),
}


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def _is_cjk_like(ch: str) -> bool:
    # CJK radicals/ideographs/punctuation, kana, hangul, full-width forms ("▁" U+2581 is below).
    return ord(ch) >= 0x2E80


def _word_counts(backend: Any, texts: Sequence[str]) -> Counter:
    """Words of ``texts`` as the class's own normalizer + pre-tokenizer produce them."""
    counts: Counter = Counter()
    for text in texts:
        normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalized):
            counts[word] += 1
    return counts


def _wordpiece_tokenizer(family: str, texts: Sequence[str]):
    from transformers import BertTokenizer, DistilBertTokenizer

    # electra / ernie have no tokenizer class of their own in transformers 5.x
    # (ElectraTokenizerFast is BertTokenizer; AutoTokenizer maps ernie -> BertTokenizer).
    cls = DistilBertTokenizer if family == "distilbert" else BertTokenizer
    template = cls()  # BertNormalizer(lowercase, CJK chars split off) + BertPreTokenizer
    counts = _word_counts(template.backend_tokenizer, texts)
    chars = sorted({c for word in counts for c in word})
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    tokens = list(_WORDPIECE_SPECIALS) + chars + ["##" + c for c in chars] + words
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    return cls(vocab=vocab, model_max_length=MAX_POSITIONS)


def _roberta_tokenizer(texts: Sequence[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import RobertaTokenizer

    template = RobertaTokenizer()  # ByteLevel(add_prefix_space=False) pre-tokenizer
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB,
        min_frequency=1,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = template.backend_tokenizer.pre_tokenizer
    tok.train_from_iterator(list(texts), trainer=trainer, length=len(texts))
    trained = json.loads(tok.to_str())["model"]
    vocab = dict(trained["vocab"])
    assert [vocab[t] for t in specials] == [0, 1, 2, 3], vocab
    vocab["<mask>"] = len(vocab)  # real RoBERTa: <mask> is the last id
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_POSITIONS)


def _unigram_pieces(backend: Any, texts: Sequence[str], specials: Sequence[str]) -> list[tuple[str, float]]:
    """Deterministic sentencepiece-style Unigram vocab: whole words + every character."""
    counts = _word_counts(backend, texts)
    words: Counter = Counter()
    for word, n in counts.items():
        # the bare word of "▁it." / "▁plot," becomes a piece too
        core = "▁" * word.startswith("▁") + word.lstrip("▁").strip(string.punctuation)
        for w in {word, core}:
            # unsegmented CJK runs would become one piece per sentence: keep those as characters
            if w not in ("", "▁") and len(w) <= _MAX_PIECE_CHARS and not any(map(_is_cjk_like, w)):
                words[w] += n
    chars: Counter = Counter()
    for word, n in counts.items():
        for c in word:
            chars[c] += n
    n_words, n_chars = sum(words.values()) or 1, sum(chars.values())
    scores = {c: math.log(n / n_chars) - _CHAR_PENALTY for c, n in chars.items()}
    scores.update({w: math.log(n / n_words) for w, n in words.items() if len(w) > 1})
    special_set = set(specials)
    return [(p, s) for p, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])) if p not in special_set]


def _unigram_tokenizer(family: str, texts: Sequence[str]):
    from transformers import AlbertTokenizer, DebertaV2Tokenizer, XLMRobertaTokenizer, XLNetTokenizer

    cls = {
        "albert": AlbertTokenizer,
        "xlnet": XLNetTokenizer,
        "deberta-v2": DebertaV2Tokenizer,
        "xlm-roberta": XLMRobertaTokenizer,
    }[family]
    specials, unk, mask_last = _UNIGRAM_SPECIALS[family]
    template = cls()  # the class's own sentencepiece-style normalizer + Metaspace pre-tokenizer
    vocab = [(t, 0.0) for t in specials] + _unigram_pieces(template.backend_tokenizer, texts, specials)
    if mask_last is not None:
        vocab.append((mask_last, 0.0))
    # albert / xlm-roberta hard-code unk_id (1 / 3), deberta-v2 looks it up, xlnet takes it
    kwargs: dict[str, Any] = {"vocab": vocab, "model_max_length": MAX_POSITIONS}
    if family == "xlnet":
        kwargs["unk_id"] = specials.index(unk)
    tok = cls(**kwargs)
    assert tok.unk_token_id == specials.index(unk)
    return tok


def make_tiny_tokenizer(family: str, texts: Sequence[str]):
    """Build the family's fast tokenizer from ``texts`` (deterministic, no downloads)."""
    _check_family(family)
    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("texts must not be empty")
    if family in _WORDPIECE_FAMILIES:
        return _wordpiece_tokenizer(family, texts)
    if family == "roberta":
        return _roberta_tokenizer(texts)
    return _unigram_tokenizer(family, texts)


def make_tiny_config(family: str, tokenizer):
    """Tiny config of ``family`` matching ``tokenizer`` (vocab size and special-token ids)."""
    import transformers as tf

    _check_family(family)
    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
    }
    bert_like: dict[str, Any] = {
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": MAX_POSITIONS,
    }
    if family == "bert":
        return tf.BertConfig(**common, **bert_like)
    if family == "ernie":
        # ernie-3.0 style: task-type embeddings on
        return tf.ErnieConfig(**common, **bert_like, use_task_id=True, task_type_vocab_size=3)
    if family == "electra":
        # ELECTRA-small style: embedding_size < hidden_size (exercises embeddings_project)
        return tf.ElectraConfig(**common, **bert_like, embedding_size=16)
    if family == "albert":
        return tf.AlbertConfig(
            **common,
            **bert_like,
            embedding_size=16,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
    if family in ("roberta", "xlm-roberta"):
        # RoBERTa position ids start at pad_token_id + 1, so the table needs pad+1 extra
        # rows to serve MAX_POSITIONS tokens (cf. 514 = 512 + 2 in the real checkpoints).
        cfg_cls = tf.RobertaConfig if family == "roberta" else tf.XLMRobertaConfig
        kw = dict(bert_like, max_position_embeddings=MAX_POSITIONS + tokenizer.pad_token_id + 1)
        return cfg_cls(
            **common, **kw, type_vocab_size=1, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
        )
    if family == "deberta-v2":
        # DeBERTa-v3 style relative attention
        return tf.DebertaV2Config(
            **common,
            **bert_like,
            type_vocab_size=0,
            relative_attention=True,
            position_buckets=16,
            max_relative_positions=-1,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
        )
    if family == "distilbert":
        return tf.DistilBertConfig(
            **common,
            dim=HIDDEN,
            n_layers=LAYERS,
            n_heads=HEADS,
            hidden_dim=INTERMEDIATE,
            max_position_embeddings=MAX_POSITIONS,
        )
    if family == "xlnet":
        # relative positions only: no max_position_embeddings
        return tf.XLNetConfig(
            **common,
            d_model=HIDDEN,
            n_layer=LAYERS,
            n_head=HEADS,
            d_inner=INTERMEDIATE,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            mem_len=None,
        )
    raise AssertionError(family)  # pragma: no cover


def make_tiny_model(
    family: str,
    out_dir: Path,
    texts: Sequence[str],
    *,
    padding_side: str | None = None,
) -> Path:
    """Build a tiny randomly-initialised model of `family` plus a tokenizer trained locally on `texts`,
    save both with save_pretrained into out_dir, return out_dir.

    ``padding_side`` optionally overrides the tokenizer's default (only xlnet defaults to "left").
    """
    import torch
    from transformers import AutoModel

    out_dir = Path(out_dir)
    tokenizer = make_tiny_tokenizer(family, texts)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    config = make_tiny_config(family, tokenizer)
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


__all__ = ["FAMILIES", "make_tiny_model", "make_tiny_tokenizer", "make_tiny_config"]
