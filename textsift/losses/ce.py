"""Cross-entropy for single-label classification."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from textsift.losses.base import LossParams, resolve_weights
from textsift.registry import LOSSES


class CEParams(LossParams):
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing (Szegedy et al. 2016).")


@LOSSES.register("ce", params=CEParams)
class CrossEntropy(nn.Module):
    """Softmax cross-entropy with optional label smoothing and class weights (single-label)."""

    def __init__(self, params: CEParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        weight = resolve_weights(params.class_weights, num_labels, train_targets, "class_weights")
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_labels))
        self.label_smoothing = params.label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), targets, weight=self.weight,
                                           label_smoothing=self.label_smoothing)
