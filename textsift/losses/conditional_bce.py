"""Conditional binary cross-entropy for ``hierarchy.method: conditional``.

Each node's logit models ``p(node | all its parents)``: its binary cross-entropy counts only on the examples
whose gold labels hold every parent of the node (roots count everywhere), so a child learns to tell its
siblings apart instead of re-learning its parent. The scheme chains these conditionals into probabilities.
Needs the hierarchy: only for ``task: hierarchical`` (the scheme attaches it).
"""
from __future__ import annotations

import torch
from torch import nn

from textsift.losses.base import LossParams, resolve_weights
from textsift.registry import LOSSES


@LOSSES.register("conditional_bce", params=LossParams)
class ConditionalBCE(nn.Module):
    """BCE of each node given its parents (``hierarchy.method: conditional``)."""

    def __init__(self, params: LossParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        weight = resolve_weights(params.class_weights, num_labels, train_targets, "class_weights")
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_labels))
        self.register_buffer("parents", torch.zeros(num_labels, num_labels))  # replaced by set_hierarchy

    def set_hierarchy(self, descendants, parents) -> None:
        """``parents``: ``(L, L)`` 0/1, ``[i, j] = 1`` when label j is a parent of label i."""
        self.parents = torch.as_tensor(parents, dtype=torch.float, device=self.weight.device)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_label = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), targets, weight=self.weight, reduction="none")  # (batch, L)
        missing_parents = (1 - targets) @ self.parents.T  # (batch, L): gold-negative parents of each node
        counted = (missing_parents == 0).float()
        return (per_label * counted).sum() / counted.sum().clamp(min=1.0)
