"""PGD: K projected gradient-ascent steps on the token embedding table (Madry et al. 2018)."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.registry import TRICKS
from textsift.tricks.adversarial import (RowBackup, add_grads, adversarial_backward, embedding_weight, grad_rows,
                                         put_grads, take_grads, trainable, unit)
from textsift.tricks.base import Trick


class PGDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(3, ge=1, description="Ascent steps K; the loss at the K-th perturbation is trained on.")
    alpha: float = Field(0.3, gt=0, description="Step size: each step adds alpha * g / ||g|| to the embedding rows.")
    epsilon: float = Field(1.0, gt=0, description="Radius of the L2 ball the total embedding perturbation is "
                           "projected onto after every step.")


@TRICKS.register("pgd", params=PGDParams)
class PGD(Trick):
    """PGD (Madry et al. 2018): K projected ascent steps on the token embeddings, trained on the last one.

    Paper: "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018); applied to the
    token embedding table as in the usual text implementations.

    backward: the clean gradients of this micro-batch are kept aside; then K times: add
    ``alpha * g / ||g||`` to the embedding rows of the batch's tokens (g: the latest gradient on the
    table), project the total perturbation r onto ``||r|| <= epsilon`` (L2 over the table), and forward
    again. The first K - 1 of these passes only supply the next g; before the K-th, the clean gradients
    are put back and the K-th adversarial loss (scaled like the given one) adds its gradients to them.
    Finally the embedding rows are copied back exactly.
    """

    name = "pgd"
    owns_backward = True

    def __init__(self, params: Optional[PGDParams] = None):
        super().__init__(params or PGDParams())

    def setup(self, model: nn.Module) -> None:
        self.weight = embedding_weight(model, self.name)

    def backward(self, model: nn.Module, batch: dict, loss: torch.Tensor, loss_fn: Callable) -> None:
        p, w = self.params, self.weight
        params = trainable(model)
        earlier = take_grads(params)  # earlier micro-batches of a gradient accumulation
        loss.backward()
        self.sync_grads([w])
        grad = w.grad
        clean = take_grads(params)
        backup = RowBackup(w)
        # a table frozen for now (hf unfreeze_after) gets no gradient: nothing to attack, one pass
        steps = p.steps if grad is not None else 1
        try:
            for t in range(steps):
                if grad is not None:
                    rows, g = grad_rows(grad)
                    direction = unit(g.float())
                    if direction is not None:
                        backup.add(rows, p.alpha * direction)
                        backup.project(p.epsilon)
                if t == steps - 1:
                    put_grads(params, clean)
                adversarial_backward(model, batch, loss_fn, self.loss_scale)
                if t < steps - 1:
                    self.sync_grads([w])
                    grad = w.grad
                    take_grads(params)  # only needed for the next direction
        finally:
            backup.restore()
        add_grads(params, earlier)
