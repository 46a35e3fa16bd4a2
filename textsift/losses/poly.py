"""Poly-1 loss for single-label classification (Leng et al. 2022)."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from textsift.errors import ConfigError
from textsift.losses.base import LossParams, resolve_weights
from textsift.registry import LOSSES


class PolyParams(LossParams):
    epsilon: float = Field(1.0, ge=-1, description="Weight of the added (1 - p_t) term; 0 is cross-entropy, "
                                                   "and the paper keeps it >= -1.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of both the CE part and p_t.")


@LOSSES.register("poly", params=PolyParams)
class PolyLoss(nn.Module):
    """Poly-1 loss: cross-entropy + epsilon (1 - p_t) (Leng et al. 2022) (single-label).

    Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions", ICLR 2022.
    The CE part is exactly ``ce`` (same ``label_smoothing`` and ``class_weights``, the latter applied to the
    CE part only, as its weighted mean); the epsilon term is a plain mean over the batch. As in the paper's
    reference code, p_t = sum(smoothed one-hot * softmax), so with smoothing p_t is not just the true class's
    probability. ``epsilon=0`` gives ``ce`` exactly.
    """

    def __init__(self, params: PolyParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        if train_targets.dim() == 2:
            raise ConfigError(["loss.name: 'poly' is a single-label loss but this task is multi_label; "
                               "use bce, zlpr or asl"])
        weight = resolve_weights(params.class_weights, num_labels, train_targets, "class_weights")
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_labels))
        self.epsilon, self.label_smoothing, self.num_labels = params.epsilon, params.label_smoothing, num_labels

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        ce = nn.functional.cross_entropy(logits, targets, weight=self.weight, label_smoothing=self.label_smoothing)
        smoothed = nn.functional.one_hot(targets, self.num_labels).float() * (1 - self.label_smoothing) \
            + self.label_smoothing / self.num_labels  # (batch, labels)
        pt = (smoothed * logits.softmax(-1)).sum(-1)  # (batch,)
        return ce + self.epsilon * (1 - pt).mean()
