"""AWP: adversarial weight perturbation (Wu et al. 2020)."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.errors import TextsiftError
from textsift.registry import TRICKS
from textsift.tricks.adversarial import (RowBackup, add_grads, adversarial_backward, grad_rows, take_grads,
                                         trainable)
from textsift.tricks.base import Trick


class AWPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adv_lr: float = Field(1.0, ge=0, description="Perturbation size relative to the weight: "
                          "r = adv_lr * g / ||g|| * ||w|| (then clamped by adv_eps); 0 turns AWP off.")
    adv_eps: float = Field(0.001, ge=0, description="Element-wise bound: each perturbed weight stays within "
                           "w ± adv_eps * |w|.")
    adv_param: str = Field("weight", min_length=1, description="Perturb the trainable parameters whose name "
                           "contains this string (the default takes every weight matrix, embeddings and "
                           "norm weights included, not biases).")
    start_step: int = Field(0, ge=0, description="Optimizer steps of plain training before AWP starts "
                            "(e.g. one epoch's worth: AWP helps once the model has learned something).")


@TRICKS.register("awp", params=AWPParams)
class AWP(Trick):
    """Adversarial Weight Perturbation (Wu et al. 2020): train on the loss at adversarially perturbed weights.

    Paper: "Adversarial Weight Perturbation Helps Robust Generalization" (NeurIPS 2020); this follows
    the widely used Kaggle implementation.

    backward: the loss's gradients (this micro-batch's) give, for every trainable parameter whose name
    contains ``adv_param``, ``r = adv_lr * g / (||g|| + 1e-6) * (||w|| + 1e-6)``; the perturbed weight is
    clamped to ``[w - adv_eps |w|, w + adv_eps |w|]`` (for sparse embedding gradients only the touched
    rows move). The clean gradients are then dropped and the gradients of the loss at the perturbed
    weights (scaled like the given loss) are kept, as in the paper's update and the Kaggle code; the
    weights are copied back exactly. Before ``start_step`` optimizer steps, backward is plain.
    """

    name = "awp"
    owns_backward = True

    def __init__(self, params: Optional[AWPParams] = None):
        super().__init__(params or AWPParams())
        self.step = 0

    def setup(self, model: nn.Module) -> None:
        self.targets = [(n, p) for n, p in model.named_parameters() if self.params.adv_param in n]
        if not self.targets:
            raise TextsiftError(f"train.tricks: awp.adv_param: no parameter name of model {type(model).__name__} "
                                f"contains '{self.params.adv_param}'; try 'weight'")

    def backward(self, model: nn.Module, batch: dict, loss: torch.Tensor, loss_fn: Callable) -> None:
        p = self.params
        if self.step < p.start_step or p.adv_lr == 0:
            loss.backward()
            return
        params = trainable(model)
        earlier = take_grads(params)
        loss.backward()
        self.sync_grads([w for _, w in self.targets])
        backups = [self._perturb(w) for _, w in self.targets if w.requires_grad and w.grad is not None]
        take_grads(params)  # the step uses the gradient at the perturbed weights only
        try:
            adversarial_backward(model, batch, loss_fn, self.loss_scale)
        finally:
            for backup in backups:
                backup.restore()
        add_grads(params, earlier)

    def _perturb(self, w: nn.Parameter) -> RowBackup:
        backup = RowBackup(w)
        rows, g = grad_rows(w.grad)
        g = g.float()
        g_norm = float(g.norm())
        if not (g_norm > 0 and math.isfinite(g_norm)):
            return backup
        w_norm = float(w.detach().float().norm())
        backup.save(rows)
        orig = backup.saved.float()
        bound = self.params.adv_eps * orig.abs()
        moved = orig + self.params.adv_lr * g / (g_norm + 1e-6) * (w_norm + 1e-6)
        backup.write(torch.minimum(torch.maximum(moved, orig - bound), orig + bound))
        return backup

    def after_step(self, model: nn.Module, step: int) -> None:
        self.step = step

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state.get("step", 0))
