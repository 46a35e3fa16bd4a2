"""DPCNN (Johnson & Zhang 2017): region embedding, then residual conv blocks that halve the length."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, TextModel
from textsift.registry import MODELS

POOL_PADDING = 1  # of the (k=3, s=2) downsampling pool


class DPCNNParams(ModelParams):
    num_filters: int = Field(250, ge=1, description="Channels of every conv layer (kept fixed, as in the paper).")


class PreActConvs(nn.Module):
    """Two 'same' width-3 convolutions, each preceded by ReLU (pre-activation); padding is re-zeroed after each."""

    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, 3, padding=1) for _ in range(2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            # Zeroed padding is exactly what an unpadded text sees past its end ('same' zero padding).
            x = conv(torch.relu(x)).masked_fill(~mask.unsqueeze(1), 0.0)  # (batch, channels, seq)
        return x


@MODELS.register("dpcnn", params=DPCNNParams)
class DPCNN(TextModel):
    """DPCNN (Johnson & Zhang 2017): deep pyramid CNN, residual conv blocks halving the length down to 1.

    Region embedding (width-3 conv) + residual conv pair, then a block [max-pool k=3 s=2 → residual conv pair]
    repeated until each text is one position long. The block's weights are shared across repetitions, so any
    length works. Every text is processed as if alone: padding is zeroed after each conv, excluded from the
    pools, and a text that reached length 1 is left unchanged while longer texts in the batch keep pooling.
    """

    export_dynamic_length = False  # the pooling pyramid's depth follows the sequence length

    def __init__(self, params: DPCNNParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        self.embedding = nn.Embedding(vocab_size, params.embedding_dim, padding_idx=pad_id)
        self.region = nn.Conv1d(params.embedding_dim, params.num_filters, 3, padding=1)
        self.stem = PreActConvs(params.num_filters)
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2, padding=POOL_PADDING)
        self.block = PreActConvs(params.num_filters)
        self.head = ClassifierHead(params.num_filters, num_labels, params.dropout)

    def _downsample(self, x: torch.Tensor, lengths: torch.Tensor):
        """One pyramid block; returns the new features and each text's new length."""
        seq_mask = self._mask(lengths, x.size(-1))
        pooled = self.pool(x.masked_fill(~seq_mask.unsqueeze(1), float("-inf")))  # (batch, channels, ~seq / 2)
        lengths = (lengths + 2 * POOL_PADDING - 3) // 2 + 1  # what the pool gives each text alone
        pooled_mask = self._mask(lengths, pooled.size(-1))
        pooled = pooled.masked_fill(~pooled_mask.unsqueeze(1), 0.0)  # windows of pure padding held -inf
        return pooled + self.block(pooled, pooled_mask), lengths  # residual: shortcut from the pooled input

    @staticmethod
    def _mask(lengths: torch.Tensor, seq: int) -> torch.Tensor:
        return torch.arange(seq, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)  # (batch, seq)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        lengths = mask.sum(1).clamp(min=1)  # (batch,); an empty text is one padding token
        seq_mask = self._mask(lengths, input_ids.size(1))
        x = self.embedding(input_ids).masked_fill(~seq_mask.unsqueeze(-1), 0.0)  # (batch, seq, emb)
        x = self.region(x.transpose(1, 2)).masked_fill(~seq_mask.unsqueeze(1), 0.0)  # (batch, channels, seq)
        x = x + self.stem(x, seq_mask)
        while bool((lengths > 1).any()):
            active = lengths > 1  # texts already at length 1 stop here, exactly as they would alone
            new_x, new_lengths = self._downsample(x, lengths)
            # A finished text keeps its single position 0 (the rest of its row is zero padding).
            x = torch.where(active.view(-1, 1, 1), new_x, x[..., :new_x.size(-1)])
            lengths = torch.where(active, new_lengths, lengths)
        pooled = x[..., 0]  # (batch, channels): every text is now one position long
        return ModelOutput(logits=self.head(pooled), pooled=pooled, mask=mask)
