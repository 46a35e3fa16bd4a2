"""Asymmetric loss for multi-label classification (Ridnik et al. 2021)."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from textsift.errors import ConfigError
from textsift.losses.base import LossParams, resolve_weights
from textsift.registry import LOSSES

# Floor of the focusing power's base: with gamma < 1 its gradient at exactly 0 is inf * 0 = nan. Where the
# floor applies, the log term it multiplies is ~0, so the value does not change.
TINY = 1e-12


class ASLParams(LossParams):
    gamma_pos: float = Field(0.0, ge=0, description="Focusing power on positives: (1 - p)^gamma_pos.")
    gamma_neg: float = Field(4.0, ge=0, description="Focusing power on negatives: p_m^gamma_neg.")
    clip: float = Field(0.05, ge=0, lt=1, description="Probability margin m for negatives: p_m = max(p - m, 0), "
                                                      "so easy negatives (p <= m) add nothing.")


@LOSSES.register("asl", params=ASLParams)
class AsymmetricLoss(nn.Module):
    """Asymmetric loss: focusing and a probability margin on negatives (Ridnik et al. 2021) (multi-label).

    Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021. Per label, with p = sigmoid(s):
    -[y (1-p)^gamma_pos log p + (1-y) p_m^gamma_neg log(1 - p_m)], p_m = max(p - clip, 0). Summed over
    labels (as the reference code does) and averaged over the batch (the reference also sums over the batch;
    a mean keeps the scale independent of batch size). ``class_weights`` multiply each label's term before
    the sum. Logs are computed as log-sigmoid, so no eps clamp is needed. With both gammas and clip 0 it is
    BCE summed over labels.
    """

    def __init__(self, params: ASLParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        if train_targets.dim() != 2:
            raise ConfigError(["loss.name: 'asl' is a multi-label loss but this task is single_label; "
                               "use ce, focal or poly"])
        weight = resolve_weights(params.class_weights, num_labels, train_targets, "class_weights")
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_labels))
        self.gamma_pos, self.gamma_neg, self.clip = params.gamma_pos, params.gamma_neg, params.clip

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, y = logits.float(), targets.float()
        p = logits.sigmoid()  # (batch, labels)
        p_m = (p - self.clip).clamp(min=0)
        # log(1 - p_m): exact log-sigmoid without a margin; with one, 1 - p_m >= clip keeps the log finite
        log_neg = nn.functional.logsigmoid(-logits) if self.clip == 0 else torch.log1p(-p_m)
        pos = (1 - p).clamp(min=TINY) ** self.gamma_pos * nn.functional.logsigmoid(logits)
        neg = p_m.clamp(min=TINY) ** self.gamma_neg * log_neg
        return -((y * pos + (1 - y) * neg) * self.weight).sum(-1).mean()
