"""Focal loss for single-label classification (Lin et al. 2017)."""
from __future__ import annotations

from typing import Optional, Union

import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from textsift.errors import ConfigError
from textsift.losses.base import LossParams, resolve_weights
from textsift.registry import LOSSES

# (1 - p_t) is floored here before the power: with gamma < 1 the power's gradient at exactly 0 (a saturated
# softmax) is inf * 0 = nan. The floor changes the value by at most tiny^gamma * log(p_t) ~ 0.
TINY = 1e-12


class FocalParams(LossParams):
    gamma: float = Field(2.0, ge=0, description="Focusing parameter: (1 - p_t)^gamma down-weights easy examples; "
                                                "0 is cross-entropy.")
    alpha: Optional[Union[list[float], str]] = Field(
        None, description="Per-class weight alpha_t of the true class, in label order, or 'balanced' (inverse "
                          "frequency in train). The same thing as class_weights: set one of the two.")

    @field_validator("alpha")
    @classmethod
    def _one_weight_knob(cls, v, info: ValidationInfo):
        if v is not None and info.data.get("class_weights") is not None:
            raise ValueError("alpha and class_weights are the same per-class weight in focal; set only one")
        return v


@LOSSES.register("focal", params=FocalParams)
class FocalLoss(nn.Module):
    """Focal loss -alpha_t (1 - p_t)^gamma log p_t, mean over the batch (Lin et al. 2017) (single-label).

    Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", ICCV 2017. ``alpha`` (or,
    equivalently, ``class_weights``) gives the weight of each example's true class; the loss is then a
    plain mean over the batch, as in the paper, not the weighted mean that ``ce`` uses with class weights.
    With ``gamma=0`` and no weights it is exactly cross-entropy.
    """

    def __init__(self, params: FocalParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        if train_targets.dim() == 2:
            raise ConfigError(["loss.name: 'focal' is a single-label loss but this task is multi_label; "
                               "use bce, zlpr or asl"])
        key = "alpha" if params.alpha is not None else "class_weights"
        alpha = resolve_weights(params.alpha if params.alpha is not None else params.class_weights,
                                num_labels, train_targets, key)
        self.register_buffer("alpha", alpha if alpha is not None else torch.ones(num_labels))
        self.gamma = params.gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_pt = torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).squeeze(1)  # (batch,)
        focus = (1 - log_pt.exp()).clamp(min=TINY) ** self.gamma  # (batch,)
        return -(self.alpha[targets] * focus * log_pt).mean()
