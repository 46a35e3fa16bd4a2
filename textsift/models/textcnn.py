"""TextCNN (Kim 2014): parallel 1-D convolutions of several widths, max-over-time pooling, linear head."""
from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, TextModel
from textsift.registry import MODELS


class TextCNNParams(ModelParams):
    kernel_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        [2, 3, 4], min_length=1, description="Convolution widths in tokens, one filter bank per width.")
    num_filters: int = Field(128, ge=1, description="Filters (feature maps) per kernel size.")


@MODELS.register("textcnn", params=TextCNNParams)
class TextCNN(TextModel):
    """TextCNN (Kim 2014): parallel n-gram convolutions with max-over-time pooling.

    Max-over-time pooling only looks at windows that start inside the text, so padding never changes the
    result; a text shorter than a kernel keeps its first window (the rest of it reads zero padding).
    """

    def __init__(self, params: TextCNNParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        self.embedding = nn.Embedding(vocab_size, params.embedding_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(
            nn.Conv1d(params.embedding_dim, params.num_filters, k) for k in params.kernel_sizes)
        self.head = ClassifierHead(params.num_filters * len(params.kernel_sizes), num_labels, params.dropout)

    def min_length(self) -> int:
        # A "valid" convolution needs at least one full window.
        return max(self.params.kernel_sizes)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        seq = input_ids.size(1)
        short = self.min_length() - seq
        if short > 0:  # callers usually pad to min_length(); do it here too so direct calls work
            input_ids = F.pad(input_ids, (0, short), value=self.pad_id)
            padded_mask = F.pad(mask, (0, short), value=False)
        else:
            padded_mask = mask
        lengths = padded_mask.sum(1, keepdim=True)  # (batch, 1)
        # Zero padded positions explicitly, whatever id they hold.
        x = self.embedding(input_ids) * padded_mask.unsqueeze(-1)  # (batch, seq, emb)
        x = x.transpose(1, 2)  # (batch, emb, seq): Conv1d wants channels first
        pooled = []
        for conv, k in zip(self.convs, self.params.kernel_sizes):
            c = torch.relu(conv(x))  # (batch, filters, seq - k + 1)
            starts = torch.arange(c.size(-1), device=c.device).unsqueeze(0)  # (1, windows)
            valid = (starts + k - 1 < lengths) | (starts == 0)  # (batch, windows): window inside the text
            pooled.append(c.masked_fill(~valid.unsqueeze(1), float("-inf")).max(-1).values)  # (batch, filters)
        pooled = torch.cat(pooled, dim=1)  # (batch, filters * len(kernel_sizes))
        return ModelOutput(logits=self.head(pooled), pooled=pooled, mask=mask)
