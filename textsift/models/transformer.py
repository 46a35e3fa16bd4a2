"""A small Transformer encoder (Vaswani et al. 2017) trained from scratch, with masked pooling."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from textsift.errors import TextsiftError
from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, TextModel, masked_max, masked_mean
from textsift.registry import MODELS


class TransformerParams(ModelParams):
    num_layers: int = Field(2, ge=1, description="Encoder layers.")
    num_heads: int = Field(4, ge=1, description="Attention heads; must divide embedding_dim.")
    ffn_dim: int = Field(512, ge=1, description="Inner size of each layer's feed-forward block.")
    max_positions: int = Field(512, ge=1, description="Longest sequence (learned positional embeddings), [CLS] included.")
    encoder_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout inside the encoder (embeddings, attention, FFN).")
    activation: Literal["relu", "gelu"] = Field("gelu", description="Feed-forward activation.")
    pooling: Literal["mean", "cls", "max"] = Field(
        "mean", description="Masked mean or max over tokens, or a learned [CLS] vector prepended to the text.")

    @model_validator(mode="after")
    def _heads_divide_dim(self):
        if self.embedding_dim % self.num_heads:
            raise ValueError(
                f"embedding_dim ({self.embedding_dim}) must be divisible by num_heads ({self.num_heads}); "
                f"change one of them, e.g. num_heads={_largest_divisor(self.embedding_dim, self.num_heads)}")
        return self


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, at_most + 1) if n % d == 0)


@MODELS.register("transformer", params=TransformerParams)
class Transformer(TextModel):
    """Transformer encoder (Vaswani et al. 2017): small pre-norm encoder trained from scratch.

    Pre-norm layers (stable without warm-up tricks), learned positions, key-padding mask. Layers are kept
    in a list rather than ``nn.TransformerEncoder`` so every layer's output is returned in ``hidden_states``
    (distillers read them) and no nested-tensor conversion runs. PyTorch's eval fast path may leave
    arbitrary values at padded positions, so pooling always goes through the mask.
    """

    def __init__(self, params: TransformerParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        dim = params.embedding_dim
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.positions = nn.Embedding(params.max_positions, dim)
        self.cls = nn.Parameter(torch.randn(dim) * 0.02) if params.pooling == "cls" else None
        self.dropout = nn.Dropout(params.encoder_dropout)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, params.num_heads, params.ffn_dim, params.encoder_dropout,
                                       activation=params.activation, batch_first=True, norm_first=True)
            for _ in range(params.num_layers))
        self.norm = nn.LayerNorm(dim)  # pre-norm layers leave the last output un-normalised
        self.head = ClassifierHead(dim, num_labels, params.dropout)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        x = self.embedding(input_ids)  # (batch, seq, dim)
        keep = mask
        if self.cls is not None:  # [CLS] at position 0, always attended to
            x = torch.cat([self.cls.expand(x.size(0), 1, -1), x], dim=1)  # (batch, 1 + seq, dim)
            keep = torch.cat([mask.new_ones(mask.size(0), 1), mask], dim=1)
        seq = x.size(1)
        if seq > self.params.max_positions:
            raise TextsiftError(
                f"transformer: sequence of {seq} positions exceeds max_positions={self.params.max_positions}; "
                f"lower train.max_length or raise model.max_positions")
        x = self.dropout(x + self.positions(torch.arange(seq, device=x.device)))  # (batch, seq, dim)
        hidden = [x]
        for i, layer in enumerate(self.layers):
            x = layer(x, src_key_padding_mask=~keep)  # (batch, seq, dim); True in the mask = ignore key
            hidden.append(self.norm(x) if i == len(self.layers) - 1 else x)
        x = hidden[-1]
        if self.cls is not None:
            pooled = x[:, 0]  # (batch, dim)
            hidden = [h[:, 1:] for h in hidden]  # keep hidden states aligned with the input tokens and mask
        elif self.params.pooling == "mean":
            pooled = masked_mean(x, mask)
        else:
            pooled = masked_max(x, mask)
        return ModelOutput(logits=self.head(pooled), pooled=pooled, hidden_states=tuple(hidden), mask=mask)
