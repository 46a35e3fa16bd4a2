"""ZLPR, the multi-label categorical cross-entropy (Su 2022)."""
from __future__ import annotations

import torch
from pydantic import Field, field_validator
from torch import nn

from textsift.errors import ConfigError
from textsift.losses.base import LossParams
from textsift.registry import LOSSES


class ZLPRParams(LossParams):
    class_weights: None = Field(None, description="Not supported: zlpr has no per-label terms to weight.")

    @field_validator("class_weights", mode="before")
    @classmethod
    def _no_weights(cls, v):
        if v is not None:
            raise ValueError("zlpr has no per-label weights (labels share two log-sum-exp terms); "
                             "remove class_weights, or use bce or asl, which take them")
        return v


@LOSSES.register("zlpr", params=ZLPRParams)
class ZLPR(nn.Module):
    """ZLPR: log(1 + sum_neg e^s) + log(1 + sum_pos e^-s), mean over the batch (Su 2022) (multi-label).

    Su, "Extending softmax cross-entropy to multi-label classification" (kexue.fm/archives/7359, 2020), and
    Su et al., "ZLPR: A Novel Loss for Multi-label Classification", arXiv:2208.02955, 2022. Every positive
    logit is pushed above every negative one and the decision threshold is logit 0. textsift decides
    multi-label outputs by sigmoid probabilities with thresholds tuned on dev, which is compatible:
    sigmoid(0) = 0.5 is the natural threshold and tuning only moves it.
    """

    def __init__(self, params: ZLPRParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        if train_targets.dim() != 2:
            raise ConfigError(["loss.name: 'zlpr' is a multi-label loss but this task is single_label; "
                               "use ce, focal or poly"])

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        pos = targets > 0.5  # (batch, labels)
        zero = logits.new_zeros(len(logits), 1)  # the "1 +" inside each log: an extra logit of 0
        neg_term = torch.logsumexp(torch.cat([logits.masked_fill(pos, float("-inf")), zero], -1), -1)  # (batch,)
        pos_term = torch.logsumexp(torch.cat([(-logits).masked_fill(~pos, float("-inf")), zero], -1), -1)
        return (neg_term + pos_term).mean()
