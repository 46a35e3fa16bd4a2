"""R-Drop: two dropout passes, their task losses plus a symmetric KL between them (Liang et al. 2021)."""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.registry import TRICKS
from textsift.tricks.base import Trick


class RDropParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(1.0, ge=0, description="Weight of the symmetric KL term (per example: summed over "
                         "labels, averaged over the batch); the paper tunes it in 0.1-5 for classification.")


def symmetric_kl(a: torch.Tensor, b: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """``(KL(P_a || P_b) + KL(P_b || P_a)) / 2`` between the predictive distributions of logits ``a`` and
    ``b`` (batch, num_labels): softmax for single-label, one Bernoulli (sigmoid) per label for
    multi-label; summed over labels, averaged over the batch.

    Both KLs together are ``sum (p - q) (log p - log q)``; for a Bernoulli that is ``(p - q) (a - b)``
    (the log-odds difference), which needs no logarithm of a probability near 0 or 1.
    """
    a, b = a.float(), b.float()
    if multi_label:
        both = (torch.sigmoid(a) - torch.sigmoid(b)) * (a - b)  # (batch, num_labels)
    else:
        la, lb = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
        both = (la.exp() - lb.exp()) * (la - lb)  # (batch, num_labels)
    return both.sum(-1).mean() / 2


@TRICKS.register("rdrop", params=RDropParams)
class RDrop(Trick):
    """R-Drop (Liang et al. 2021): two dropout passes, their mean task loss + alpha * their symmetric KL.

    Paper: "R-Drop: Regularized Dropout for Neural Networks" (NeurIPS 2021).

    Multi-label targets (float, (batch, num_labels)) use the KL between per-label Bernoulli
    distributions. The KL is averaged over the batch (the paper's code sums it), so alpha does not
    depend on the batch size. In eval mode (no dropout) both passes agree and the KL is 0.
    """

    name = "rdrop"

    def __init__(self, params: Optional[RDropParams] = None):
        super().__init__(params or RDropParams())

    def compute_loss(self, model: nn.Module, batch: dict, loss_fn: Callable) -> Optional[torch.Tensor]:
        ids, mask, targets = batch["input_ids"], batch["mask"], batch["targets"]
        a = model(ids, mask).logits.float()  # (batch, num_labels)
        b = model(ids, mask).logits.float()  # (batch, num_labels), another dropout mask
        task = (loss_fn(a, targets) + loss_fn(b, targets)) / 2
        multi_label = targets.is_floating_point() and targets.dim() == 2
        return task + self.params.alpha * symmetric_kl(a, b, multi_label)
