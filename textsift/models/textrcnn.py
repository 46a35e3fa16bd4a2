"""TextRCNN (Lai et al. 2015): each word seen with its left and right context, then max pooling."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, masked_max
from textsift.models.textrnn import RNN_CELLS, RecurrentModel, run_rnn
from textsift.registry import MODELS


class TextRCNNParams(ModelParams):
    cell: Literal["lstm", "gru"] = Field("lstm", description="Recurrent cell computing the contexts.")
    hidden_size: int = Field(128, ge=1, description="Size of the left and of the right context vector.")
    num_layers: int = Field(1, ge=1, description="Stacked bidirectional recurrent layers.")
    projection_dim: int = Field(128, ge=1, description="Size of the tanh layer over [left; word; right].")


@MODELS.register("textrcnn", params=TextRCNNParams)
class TextRCNN(RecurrentModel):
    """TextRCNN (Lai et al. 2015): BiRNN left/right context around each word, tanh layer, max pooling.

    As in the paper, word i is represented by ``[c_l(i); e(i); c_r(i)]`` where the left context is the forward
    state *before* word i and the right context the backward state *after* it (zero at the text's ends).
    """

    def __init__(self, params: TextRCNNParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        self.embedding = nn.Embedding(vocab_size, params.embedding_dim, padding_idx=pad_id)
        self.rnn = RNN_CELLS[params.cell](
            params.embedding_dim, params.hidden_size, num_layers=params.num_layers,
            bidirectional=True, batch_first=True)
        self.projection = nn.Linear(2 * params.hidden_size + params.embedding_dim, params.projection_dim)
        self.head = ClassifierHead(params.projection_dim, num_labels, params.dropout)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        x = self.embedding(input_ids)  # (batch, seq, emb)
        out, _, valid = run_rnn(self.rnn, x, mask)  # (batch, seq, 2 * hidden), zero at padding
        forward, backward = out.chunk(2, dim=-1)  # each (batch, seq, hidden)
        # Shift by one token: c_l(i) = forward state at i-1, c_r(i) = backward state at i+1. The backward
        # state after the last real word is a padded output, which pad_packed_sequence leaves at zero.
        left = F.pad(forward, (0, 0, 1, 0))[:, :-1]  # (batch, seq, hidden)
        right = F.pad(backward, (0, 0, 0, 1))[:, 1:]  # (batch, seq, hidden)
        y = torch.tanh(self.projection(torch.cat([left, x, right], dim=-1)))  # (batch, seq, projection)
        pooled = masked_max(y, valid)  # (batch, projection): the paper's element-wise max over words
        return ModelOutput(logits=self.head(pooled), pooled=pooled, hidden_states=(y,), mask=mask)
