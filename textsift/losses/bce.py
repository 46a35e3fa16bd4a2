"""Binary cross-entropy over labels for multi-label classification."""
from __future__ import annotations

from typing import Optional, Union

import torch
from pydantic import Field
from torch import nn

from textsift.losses.base import LossParams, resolve_weights
from textsift.registry import LOSSES


class BCEParams(LossParams):
    pos_weight: Optional[Union[list[float], str]] = Field(
        None, description="Weight of positives per label, or 'balanced' (negatives/positives in train, capped at 100).")


@LOSSES.register("bce", params=BCEParams)
class BinaryCrossEntropy(nn.Module):
    """Sigmoid binary cross-entropy per label, with optional pos_weight and class weights (multi-label)."""

    def __init__(self, params: BCEParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        if params.pos_weight == "balanced":
            pos = train_targets.sum(0).clamp(min=1.0)
            pos_weight = ((len(train_targets) - pos) / pos).clamp(max=100.0)
        else:
            pos_weight = resolve_weights(params.pos_weight, num_labels, train_targets, "pos_weight")
        weight = resolve_weights(params.class_weights, num_labels, train_targets, "class_weights")
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(num_labels))
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_labels))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(
            logits.float(), targets, weight=self.weight, pos_weight=self.pos_weight)
