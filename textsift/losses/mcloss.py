"""MCLoss of C-HMCNN (Giunchiglia & Lukasiewicz 2020), on logits for numerical stability.

For node ``A`` with descendants-or-self ``D(A)``: a positive target is scored by the max logit over the
*positive* nodes of ``D(A)``, a negative one by the max logit over all of ``D(A)`` (MCM); then binary
cross-entropy. Sigmoid is monotonic, so max over logits = max over probabilities, as in the paper's
``get_constr_out`` code. Needs the hierarchy: only for ``task: hierarchical`` (the scheme attaches it).
"""
from __future__ import annotations

import torch
from torch import nn

from textsift.losses.base import LossParams
from textsift.registry import LOSSES


@LOSSES.register("mcloss", params=LossParams)
class MCLoss(nn.Module):
    """Max-constraint loss over the nodes of a label hierarchy (``hierarchy.method: max_constraint``)."""

    def __init__(self, params: LossParams, num_labels: int, train_targets: torch.Tensor):
        super().__init__()
        from textsift.losses.base import resolve_weights

        weight = resolve_weights(params.class_weights, num_labels, train_targets, "class_weights")
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_labels))
        self.register_buffer("descendants", torch.eye(num_labels))  # replaced by set_hierarchy

    def set_hierarchy(self, descendants, parents) -> None:
        """``descendants``: ``(L, L)`` 0/1, ``[i, j] = 1`` when label j is label i or below it (``parents``
        unused here)."""
        self.descendants = torch.as_tensor(descendants, dtype=torch.float, device=self.weight.device)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from textsift.data.hier_scheme import max_constraint

        logits = logits.float()  # (batch, L)
        constrained = max_constraint(logits, self.descendants)  # (batch, L): MCM over all descendants
        positive_only = logits.masked_fill(targets <= 0, float("-inf"))
        on_positives = max_constraint(positive_only, self.descendants)  # (batch, L); -inf where no positive
        scores = torch.where(targets > 0, on_positives, constrained)
        return nn.functional.binary_cross_entropy_with_logits(scores, targets, weight=self.weight)
