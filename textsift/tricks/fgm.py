"""FGM: one adversarial step on the token embedding table (Miyato et al. 2017)."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.registry import TRICKS
from textsift.tricks.adversarial import (RowBackup, add_grads, adversarial_backward, embedding_weight, grad_rows,
                                         take_grads, unit)
from textsift.tricks.base import Trick


class FGMParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epsilon: float = Field(1.0, gt=0, description="L2 norm of the perturbation r = epsilon * g / ||g|| added to "
                           "the embedding rows of the batch's tokens (g: their loss gradient).")


@TRICKS.register("fgm", params=FGMParams)
class FGM(Trick):
    """Fast Gradient Method (Miyato et al. 2017): one adversarial step of size epsilon on the token embeddings.

    Paper: "Adversarial Training Methods for Semi-Supervised Text Classification" (ICLR 2017).

    backward: the loss's gradient g on the embedding table (this micro-batch's only; rows of the
    batch's tokens) gives ``r = epsilon * g / ||g||`` (L2 over the whole table); the batch is forwarded
    again with ``W + r`` and the adversarial loss (scaled like the given one) is backpropagated on top,
    so the step uses clean + adversarial gradients. The touched rows are then copied back exactly.
    """

    name = "fgm"
    owns_backward = True

    def __init__(self, params: Optional[FGMParams] = None):
        super().__init__(params or FGMParams())

    def setup(self, model: nn.Module) -> None:
        self.weight = embedding_weight(model, self.name)

    def backward(self, model: nn.Module, batch: dict, loss: torch.Tensor, loss_fn: Callable) -> None:
        w = self.weight
        earlier = take_grads([w])
        loss.backward()
        self.sync_grads([w])
        backup = RowBackup(w)
        if w.grad is not None:
            rows, g = grad_rows(w.grad)
            direction = unit(g.float())
            if direction is not None:
                backup.add(rows, self.params.epsilon * direction)
        try:
            adversarial_backward(model, batch, loss_fn, self.loss_scale)
        finally:
            backup.restore()
        add_grads([w], earlier)
