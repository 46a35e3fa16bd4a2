"""What every model is: token ids + mask in, a fixed ``ModelOutput`` record out.

Models never compute the loss (the label scheme does) and never apply softmax/sigmoid: ``logits`` are
raw scores of shape ``(batch, num_labels)``. The fixed record is what lets one trainer, one distiller
and one exporter work with every model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (batch, num_labels)
    pooled: torch.Tensor  # (batch, features) — the vector the head reads
    hidden_states: Optional[tuple[torch.Tensor, ...]] = None  # each (batch, seq, hidden), when the model has them
    attentions: Optional[tuple[torch.Tensor, ...]] = None  # each (batch, heads, seq, seq)
    mask: Optional[torch.Tensor] = None  # (batch, seq) bool, True at real tokens


class ModelParams(BaseModel):
    """Parameters every classic model takes; models subclass this and add their own fields."""

    model_config = ConfigDict(extra="forbid")
    embedding_dim: int = Field(128, ge=1, description="Token embedding size.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before the classifier head.")
    init: Literal["default", "xavier", "kaiming", "normal"] = Field(
        "xavier", description="Weight initialisation of linear/conv/recurrent weights.")
    vectors: Optional[str] = Field(None, description="Pretrained word vectors (word2vec text/binary or GloVe "
                                   "file) loaded into the embedding layer; embedding_dim defaults to their size. "
                                   "A folder instead takes a pretrained encoder's input embeddings (a Hugging "
                                   "Face model folder, or a textsift `hf` run such as a distillation teacher): "
                                   "each word gets the mean of its word pieces' rows.")
    vectors_format: Literal["auto", "word2vec_text", "word2vec_binary", "glove", "hf"] = Field(
        "auto", description="Format of `vectors`; auto detects it (a folder = hf).")
    vectors_vocab: int = Field(0, ge=0, description="Also put up to this many words of `vectors` into the "
                               "vocabulary beyond the training texts' words (a file's first words, the most "
                               "frequent; a folder's tokenizer entries that start a word), so a word never seen in "
                               "training keeps its pretrained vector instead of <unk>; 0 = off.")
    freeze_embeddings: bool = Field(False, description="Keep the embedding layer fixed (e.g. pretrained vectors).")

    @model_validator(mode="after")
    def _vectors_vocab_needs_vectors(self):
        if self.vectors_vocab and not self.vectors:
            raise ValueError(f"vectors_vocab: {self.vectors_vocab} words of which vectors? Set model.vectors to a "
                             "vectors file or folder, or remove vectors_vocab")
        return self


class TextModel(nn.Module):
    """Base class. Subclasses build layers in ``__init__`` and implement ``forward``.

    Args:
        params: the model's validated parameter object (a ``ModelParams`` subclass).
        vocab_size: number of token ids (vocabulary plus n-gram buckets).
        num_labels: size of the output layer.
        pad_id: id of the padding token; its embedding stays zero.
    """

    pretrained_tokenizer = False  # True: the model brings its own tokenizer (see tokenizers.build_encoder)
    prefers_bf16 = False  # True: train.precision=auto picks bf16 autocast where the hardware has it
    amp_dtype: Optional[torch.dtype] = None  # autocast dtype for forward passes (set from train.precision)
    # False: the forward pass loops a number of times set by the sequence length, so an exported graph
    # is traced at a fixed length (train.max_length) and inputs are padded to it (see engines/export.py)
    export_dynamic_length = True

    def __init__(self, params: ModelParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__()
        self.params, self.vocab_size, self.num_labels, self.pad_id = params, vocab_size, num_labels, pad_id

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:  # pragma: no cover
        raise NotImplementedError

    def fit_data(self, ids, targets: torch.Tensor, multi_label: bool, dev=None) -> bool:
        """Data-dependent set-up before training, given the encoded training texts and their targets
        (and ``dev = (ids, targets)`` for choices made on dev data).

        Returns True when this already fits the model completely (no gradient training needed), as
        for closed-form or liblinear-fitted linear models. The default does nothing.
        """
        return False

    def refit(self, ids, targets: torch.Tensor, multi_label: bool) -> bool:
        """Fit again on more data with the settings ``fit_data`` chose; False when not supported."""
        return False

    def min_length(self) -> int:
        """Shortest sequence the model accepts; shorter batches are right-padded to it."""
        return 1

    def embedding_layer(self) -> Optional[nn.Module]:
        """The token embedding (``nn.Embedding``/``EmbeddingBag``) that adversarial tricks perturb, or None."""
        return getattr(self, "embedding", None)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """The head alone: logits from ``ModelOutput.pooled`` (dropout included in training mode)."""
        head = getattr(self, "head", None)
        if head is None:
            raise NotImplementedError(f"{type(self).__name__} has no separate classifier head")
        return head(pooled)

    def pooled_width(self) -> int:
        """Width of ``ModelOutput.pooled``: the input width of the head's (first) linear layer."""
        head = getattr(self, "head", None) or getattr(self, "classifier", None)
        layers = [m for m in head.modules() if isinstance(m, nn.Linear)] if head is not None else []
        if not layers:
            raise NotImplementedError(f"{type(self).__name__} has no linear classifier head to read a width from")
        return layers[0].in_features

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups with their learning rates (models with per-layer rates override)."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based), e.g. to freeze or unfreeze layers."""

    def save_assets(self, folder) -> None:
        """Write files the model needs besides its weights to rebuild offline (none for classic models)."""

    def check_max_length(self, max_length: int) -> None:
        """Raise ``TextsiftError`` when texts of ``max_length`` tokens cannot be handled."""

    def reset_parameters(self) -> None:
        """Apply ``params.init`` to weight matrices; biases to zero; the padding embedding to zero."""
        init = self.params.init
        for module in self.modules():
            if init != "default":
                for name, p in module.named_parameters(recurse=False):
                    if p.dim() < 2 or isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                        continue
                    if init == "xavier":
                        nn.init.xavier_uniform_(p)
                    elif init == "kaiming":
                        nn.init.kaiming_uniform_(p, nonlinearity="relu")
                    else:
                        nn.init.normal_(p, std=0.02)
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU: 16 random bits per element, four elements per 64-bit
    draw, instead of torch's per-element Bernoulli sampling (about 3x faster here, which matters in a
    transformer's 13+ dropouts per forward pass). The keep probability is exact to 2**-16. Written by
    hand because torch has no fast CPU dropout; on other devices it is plain ``nn.Dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        # random_() alone leaves the top bit 0; the explicit range gives all 64 bits
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2 ** 63, 2 ** 63 - 1)
        bits = bits.view(torch.int16)[:n].view(x.shape)
        keep = bits >= round(self.p * 65536) - 32768  # P(keep) = 1 - p for int16 values uniform on [-2**15, 2**15)
        return x * keep * (1.0 / (1.0 - self.p))


def use_fast_dropout(module: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` inside ``module`` by ``FastDropout`` (same ``p``); returns how many."""
    count = 0
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p, child.inplace))
                count += 1
    return count


class ClassifierHead(nn.Sequential):
    """Dropout + linear layer from pooled features to one logit per label."""

    def __init__(self, in_features: int, num_labels: int, dropout: float):
        super().__init__(nn.Dropout(dropout), nn.Linear(in_features, num_labels))


def build_model(name: str, params, vocab_size: int, num_labels: int, pad_id: int = 0,
                pretrained_weights: bool = True) -> TextModel:
    """Build a registered model from its name and (raw or validated) parameters.

    ``pretrained_weights=False`` builds a pretrained model from its config only (the run directory's
    own weights are loaded into it afterwards)."""
    from pydantic import BaseModel as _Params

    from textsift.registry import MODELS

    entry = MODELS.entry(name)
    if not isinstance(params, _Params):
        params = entry.params(**(params or {}))
    kwargs = {} if not entry.obj.pretrained_tokenizer else {"pretrained_weights": pretrained_weights}
    model = entry.obj(params, vocab_size=vocab_size, num_labels=num_labels, pad_id=pad_id, **kwargs)
    model.reset_parameters()
    return model


def embedding_bag(bag: nn.EmbeddingBag, ids: torch.Tensor, per_sample_weights: Optional[torch.Tensor] = None):
    """``bag(ids, per_sample_weights=...)`` for 2-d ``ids`` (one bag per row, ``padding_idx`` left out).

    ONNX has no EmbeddingBag with ``padding_idx``, so while exporting the same sum/mean is spelled out
    as a lookup and a masked reduction; everywhere else the fused (and sparse-gradient) op is used."""
    if not torch.onnx.is_in_onnx_export():
        return bag(ids, per_sample_weights=per_sample_weights)
    keep = (ids != bag.padding_idx).to(bag.weight.dtype) if bag.padding_idx is not None else torch.ones_like(
        ids, dtype=bag.weight.dtype)  # (batch, seq)
    if per_sample_weights is not None:
        keep = keep * per_sample_weights
    total = torch.einsum("bs,bsd->bd", keep, nn.functional.embedding(ids, bag.weight))  # (batch, dim)
    if bag.mode == "sum":
        return total
    if bag.mode != "mean":
        raise NotImplementedError(f"ONNX export of EmbeddingBag mode={bag.mode!r}")
    return total / keep.sum(1, keepdim=True).clamp(min=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (batch, seq, dim) over real positions of ``mask`` (batch, seq); empty rows give zeros."""
    x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # fill, not multiply: padded outputs may be non-finite
    return x.sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(x.dtype)  # (batch, dim)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max of ``x`` (batch, seq, dim) over real positions of ``mask`` (batch, seq); empty rows give zeros."""
    pooled = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values  # (batch, dim)
    return pooled.masked_fill(~mask.any(1, keepdim=True), 0.0)
